/* Snapshots, exports, restores and clones on an S3 data root, with the
 * master's requests going through the test tree's fault-injecting,
 * signature-checking proxy (tests/common/s3_proxy.js) in front of a real
 * S3 server (s3rver), so that faults land in the middle of the master's
 * work (docs/storage.md, "Snapshots", "Conditional writes"). One master
 * (--s3-endpoint = the proxy) and two tablet servers (straight to s3rver).
 *
 *   levels_kept          a table compacted into level >= 1, snapshotted,
 *                        exported and restored: the restored tablets hold
 *                        the snapshot's files at the snapshot's levels
 *                        and read the same values. The same export
 *                        rewritten as format version 1 still restores,
 *                        every file at level 0; one with a level of 7 is
 *                        refused naming EXPORT, the offset and the field,
 *                        and creates no table.
 *   export_holds_snapshot an export slowed by the proxy: dropping its
 *                        snapshot meanwhile is refused (UNAVAILABLE,
 *                        "being exported"): a client whose deadline
 *                        ends first gets DEADLINE_EXCEEDED with that
 *                        message; a client with time to spare retries
 *                        until the export is done (EXPORT written) and
 *                        then drops it; the export restores.
 *   clone_fails_partway  the third of four clone manifests answered 412
 *                        (a second writer won): the clone fails with that
 *                        error, the half-made table goes, and every
 *                        tablet directory it wrote is deleted; the
 *                        manifests and log parts the master wrote all
 *                        carried If-None-Match: *. The same clone then
 *                        succeeds.
 *   clone_master_killed  the master killed -9 while a clone is between
 *                        its second and third manifest: the next master
 *                        drops the unfinished clone and deletes what it
 *                        wrote; the same clone then succeeds.
 *   clone_late_manifest  the same, with the clone's second manifest PUT
 *                        held back by the proxy until after the next
 *                        master's cleanup: the directory it recreates
 *                        (a live manifest of no table) is retired and
 *                        deleted by the master's sweep at the next
 *                        dropped snapshot; the same clone then
 *                        succeeds.
 *   posix_root_s3_export a second cluster on a POSIX data root (its
 *                        master has only the AWS_* variables, no S3
 *                        flags) exports a snapshot to s3:// and restores
 *                        it from there; the S3 cluster restores the same
 *                        export: both read the snapshot's values. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/path.h"
#include "master/server/export_fmt.h"
#include "mica/mica.h"
#include "tests/cluster/mcheck.h"
#include "tabletserver/manifest.h"
#include "tests/common/s3_harness.h"
#include "tests/harness/cluster.h"
#include "tests/harness/s3server.h"
#include "tests/harness/testutil.h"
#include "tests/master/server/xp_v1.h"

static cluster *g_c;
static char *g_exports; /* s3:// prefix for export directories */

static mica_client *client(int deadline_ms) {
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = deadline_ms;
  mica_client *c = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), &o, &c), MICA_OK);
  return c;
}

static void fill(mica_client *c, const char *t, const char *tag) {
  for (int i = 0; i < 100; i++) {
    char k[16], v[32];
    mcheck_key(i, k);
    snprintf(v, sizeof v, "%s-%d", tag, i);
    int rc = mica_put(c, t, k, strlen(k), v, strlen(v));
    if (rc != MICA_OK) fprintf(stderr, "put %s %s: %s\n", t, k, mica_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, MICA_OK);
  }
}

/* Keys of `t` that do not read "<tag>-<i>". */
static int bad_values(mica_client *c, const char *t, const char *tag) {
  int bad = 0;
  for (int i = 0; i < 100; i++) {
    char k[16], w[32];
    mcheck_key(i, k);
    snprintf(w, sizeof w, "%s-%d", tag, i);
    void *v = NULL;
    size_t vl = 0;
    int rc = mica_get(c, t, k, strlen(k), &v, &vl);
    if (rc != MICA_OK || vl != strlen(w) || memcmp(v, w, vl) != 0) {
      if (bad++ < 3)
        fprintf(stderr, "%s %s: rc %d \"%.*s\", expected \"%s\"\n", t, k, rc,
                rc == MICA_OK ? (int)vl : 0, rc == MICA_OK ? (char *)v : "",
                w);
    }
    mica_free(v);
  }
  return bad;
}

static char *tablets_dir(void) { return layout_tablets_dir(cl_data_root(g_c)); }

/* The tablet directories under the data root, sorted, as one string. */
static char *dir_set(void) {
  char *d = tablets_dir();
  char **names = NULL;
  size_t n = 0;
  mica_err *err = layout_list_tablets(cl_data_env(g_c), d, &names, &n);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    err = NULL;
  }
  TU_OK(err);
  uint64_t *ids = xcalloc(n + 1, sizeof(uint64_t));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (layout_parse_tablet_name(names[i], &ids[k])) k++;
  for (size_t i = 1; i < k; i++)
    for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
      uint64_t x = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = x;
    }
  buf b = BUF_INIT;
  for (size_t i = 0; i < k; i++) {
    char one[32];
    snprintf(one, sizeof one, "%" PRIu64 " ", ids[i]);
    buf_append(&b, one, strlen(one));
  }
  buf_push(&b, 0);
  free(ids);
  env_free_names(names, n);
  free(d);
  return (char *)b.data;
}

/* Adds the number of SSTables at each level of the current tablets of
 * table `t` (their newest manifests) to counts[]. */
static void table_levels(mica_client *c, const char *t, int counts[MAN_LEVELS]) {
  mica_tablet_info *tv = NULL;
  size_t tn = 0;
  CU_ASSERT_EQUAL_FATAL(mica_list_tablets(c, t, &tv, &tn), MICA_OK);
  char *d = tablets_dir();
  for (size_t i = 0; i < tn; i++) {
    buf dir = BUF_INIT;
    layout_tablet_dir(d, tv[i].tablet_id, &dir);
    man_state m;
    man_init(&m);
    TU_OK(man_read(cl_data_env(g_c), (const char *)dir.data, &m));
    for (size_t k = 0; k < m.n_ssts; k++) counts[m.ssts[k].level]++;
    man_clear(&m);
    buf_free(&dir);
  }
  free(d);
  mica_free(tv);
}

/* Every tablet of `t` has a file at level >= 1. */
static bool all_leveled(mica_client *c, const char *t) {
  mica_tablet_info *tv = NULL;
  size_t tn = 0;
  if (mica_list_tablets(c, t, &tv, &tn) != MICA_OK) return false;
  bool ok = tn > 0;
  for (size_t i = 0; i < tn && ok; i++) {
    char *d = tablets_dir();
    buf dir = BUF_INIT;
    layout_tablet_dir(d, tv[i].tablet_id, &dir);
    man_state m;
    man_init(&m);
    mica_err *err = man_read(cl_data_env(g_c), (const char *)dir.data, &m);
    bool deep = false;
    for (size_t k = 0; err == NULL && k < m.n_ssts; k++)
      deep |= m.ssts[k].level >= 1;
    ok = err == NULL && deep;
    err_free(err);
    man_clear(&m);
    buf_free(&dir);
    free(d);
  }
  mica_free(tv);
  return ok;
}

/* Adds the levels of every pin of snapshot `id` to counts[]. */
static void pin_levels(uint64_t id, int counts[MAN_LEVELS]) {
  char num[32];
  snprintf(num, sizeof num, "snapshots/%" PRIu64, id);
  char *pdir = path_join(cl_data_root(g_c), num);
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(cl_data_env(g_c), pdir, &names, &n));
  CU_ASSERT(n > 0);
  for (size_t i = 0; i < n; i++) {
    char *p = path_join(pdir, names[i]);
    buf b = BUF_INIT;
    man_state m;
    man_init(&m);
    TU_OK(env_read_file(cl_data_env(g_c), p, MAN_MAX_BYTES, &b));
    TU_OK(man_decode(buf_slice(&b), p, &m));
    for (size_t k = 0; k < m.n_ssts; k++) counts[m.ssts[k].level]++;
    man_clear(&m);
    buf_free(&b);
    free(p);
  }
  env_free_names(names, n);
  free(pdir);
}

static char *export_dir(const char *name) { return path_join(g_exports, name); }

/* Copies export `from` to `to` with EXPORT replaced by `xbytes`. */
static void copy_export(const char *from, const char *to, slice xbytes) {
  env *e = cl_data_env(g_c);
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(e, from, &names, &n));
  for (size_t i = 0; i < n; i++) {
    if (strcmp(names[i], "EXPORT") == 0) continue;
    char *a = path_join(from, names[i]), *b = path_join(to, names[i]);
    buf data = BUF_INIT;
    TU_OK(env_read_file(e, a, (size_t)64 << 20, &data));
    TU_OK(env_write_file_atomic(e, b, buf_slice(&data)));
    buf_free(&data);
    free(a);
    free(b);
  }
  env_free_names(names, n);
  char *x = path_join(to, "EXPORT");
  TU_OK(env_write_file_atomic(e, x, xbytes));
  free(x);
}

/* ---- the suite ---- */

static int suite_init(void) {
  if (s3h_setup() != 0) return 1;
  static const char *args[3];
  args[0] = "--s3-endpoint";
  args[1] = s3h_proxy_endpoint;
  args[2] = NULL;
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  o.s3 = true;
  o.master_args = args;
  g_exports = th_s3_new_root("exports");
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) {
  free(g_exports);
  g_exports = NULL;
  return cl_suite_stop(&g_c);
}

static void test_levels_kept(void) {
  mica_client *c = client(30000);
  mcheck_create(c, "t", 2);
  /* Each snapshot flushes every tablet: six level-0 files per tablet, more
   * than the four that start a compaction into level 1. */
  for (int round = 0; round < 6; round++) {
    char tag[16];
    snprintf(tag, sizeof tag, "v%d", round);
    fill(c, "t", tag);
    mcheck_rc(mica_snapshot_create(c, "t", "flush", NULL), MICA_OK, NULL,
              "flushing snapshot");
    mcheck_rc(mica_snapshot_drop(c, "flush"), MICA_OK, NULL, "drop flush");
  }
  uint64_t until = cl_now_ms() + 30000;
  while (!all_leveled(c, "t") && cl_now_ms() < until) cl_sleep_ms(200);
  CU_ASSERT_FATAL(all_leveled(c, "t"));
  mica_snapshot_info *info = NULL;
  mcheck_rc(mica_snapshot_create(c, "t", "s1", &info), MICA_OK, NULL, "s1");
  CU_ASSERT_PTR_NOT_NULL_FATAL(info);
  int want[MAN_LEVELS] = {0};
  pin_levels(info->snapshot_id, want);
  mica_free(info);
  int deep = 0;
  for (int l = 1; l < MAN_LEVELS; l++) deep += want[l];
  CU_ASSERT(deep > 0);

  char *x1 = export_dir("x1");
  mcheck_rc(mica_snapshot_export(c, "s1", x1, NULL, NULL), MICA_OK, NULL,
            "export s1");
  mcheck_rc(mica_snapshot_restore(c, x1, "r1", NULL, NULL), MICA_OK, NULL,
            "restore r1");
  CU_ASSERT_EQUAL(bad_values(c, "r1", "v5"), 0);
  int got[MAN_LEVELS] = {0};
  table_levels(c, "r1", got);
  for (int l = 0; l < MAN_LEVELS; l++) {
    if (got[l] != want[l])
      fprintf(stderr, "level %d: restored %d files, snapshot had %d\n", l,
              got[l], want[l]);
    CU_ASSERT_EQUAL(got[l], want[l]);
  }

  /* The same export as version 1: every file at level 0. */
  char *xpath = path_join(x1, "EXPORT");
  buf b = BUF_INIT;
  TU_OK(env_read_file(cl_data_env(g_c), xpath, (size_t)1 << 20, &b));
  xport x;
  TU_OK(xp_decode(buf_slice(&b), xpath, &x));
  CU_ASSERT_EQUAL(x.version, 2);
  buf p1 = BUF_INIT, f1 = BUF_INIT;
  xp_v1_payload(&x, &p1);
  xp_frame(&p1, 1, &f1);
  char *xv1 = export_dir("x1-v1");
  copy_export(x1, xv1, buf_slice(&f1));
  mcheck_rc(mica_snapshot_restore(c, xv1, "r1v1", NULL, NULL), MICA_OK, NULL,
            "restore r1v1 (format version 1)");
  CU_ASSERT_EQUAL(bad_values(c, "r1v1", "v5"), 0);
  int got1[MAN_LEVELS] = {0}, total = 0;
  table_levels(c, "r1v1", got1);
  for (int l = 0; l < MAN_LEVELS; l++) total += want[l];
  CU_ASSERT_EQUAL(got1[0], total);

  /* A level of 7 in a version 2 file: refused before anything exists. */
  for (size_t i = 0; i < x.n_parts; i++)
    if (x.parts[i].n_ssts > 0) x.parts[i].ssts[0].level = 7;
  buf bad = BUF_INIT;
  xp_encode(&x, &bad);
  char *xbad = export_dir("x1-bad");
  copy_export(x1, xbad, buf_slice(&bad));
  int rc = mica_snapshot_restore(c, xbad, "rbad", NULL, NULL);
  mcheck_rc(rc, MICA_CORRUPTION, "bad SSTable level", "level 7");
  if (rc == MICA_CORRUPTION)
    CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "x1-bad/EXPORT: offset "));
  CU_ASSERT(!mcheck_table_listed(c, "rbad"));
  buf_free(&bad);
  buf_free(&p1);
  buf_free(&f1);
  buf_free(&b);
  xp_free(&x);
  free(xbad);
  free(xv1);
  free(xpath);
  free(x1);
  mica_close(c);
}

struct job {
  const char *a, *b;
  int which; /* 0 export a to b, 1 clone a as b */
  int deadline_ms;
  int rc;
  char msg[512];
};

static void *job_thread(void *arg) {
  struct job *j = arg;
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = j->deadline_ms;
  mica_client *c = NULL;
  j->rc = mica_open(cl_master_address(g_c), &o, &c);
  if (j->rc == MICA_OK)
    j->rc = j->which == 0 ? mica_snapshot_export(c, j->a, j->b, NULL, NULL)
                          : mica_snapshot_clone(c, j->a, j->b);
  snprintf(j->msg, sizeof j->msg, "%s", j->rc != MICA_OK ? mica_errmsg() : "");
  mica_close(c);
  return NULL;
}

/* Waits until the proxy has held back a request with fault `kind`. */
static bool fault_taken(const char *kind) {
  char want[32];
  snprintf(want, sizeof want, "fault=%s", kind);
  uint64_t until = cl_now_ms() + 15000;
  while (cl_now_ms() < until) {
    char *t = s3h_log_text();
    bool hit = strstr(t, want) != NULL;
    free(t);
    if (hit) return true;
    cl_sleep_ms(50);
  }
  return false;
}

static void test_export_holds_snapshot(void) {
  mica_client *c = client(30000), *quick = client(1000);
  char *x2 = export_dir("x2");
  char *x2file = path_join(x2, "EXPORT");
  s3h_log_reset();
  /* The master's first read of an SSTable for the export waits 3 s. */
  s3h_fault("kind=delay&ms=3000&method=GET&match=.sst&count=1");
  struct job j = {"s1", x2, 0, 30000, -1, ""};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, job_thread, &j), 0);
  CU_ASSERT(fault_taken("delay"));
  /* Refused while the export runs; the client retries UNAVAILABLE until
   * its deadline, so a short one ends with the refusal's message... */
  mcheck_rc(mica_snapshot_drop(quick, "s1"), MICA_DEADLINE_EXCEEDED,
            "s1 is being exported (1 export running)", "drop during export");
  CU_ASSERT(!env_exists(cl_data_env(g_c), x2file));
  /* ...and a long one waits for the export and then drops. */
  mcheck_rc(mica_snapshot_drop(c, "s1"), MICA_OK, NULL, "drop that waits");
  CU_ASSERT(env_exists(cl_data_env(g_c), x2file));
  pthread_join(th, NULL);
  if (j.rc != MICA_OK) fprintf(stderr, "export: %s\n", j.msg);
  CU_ASSERT_EQUAL(j.rc, MICA_OK);
  mcheck_rc(mica_snapshot_restore(c, x2, "r2", NULL, NULL), MICA_OK, NULL,
            "restore r2");
  CU_ASSERT_EQUAL(bad_values(c, "r2", "v5"), 0);
  free(x2file);
  free(x2);
  mica_close(quick);
  mica_close(c);
}

/* Waits until the tablet directories are `want` again and `table` is
 * gone: the failed clone's leftovers are deleted. */
static bool cleaned_up(mica_client *c, const char *table, const char *want) {
  uint64_t until = cl_now_ms() + 40000;
  char *now = NULL;
  for (;;) {
    free(now);
    now = dir_set();
    bool done = strcmp(now, want) == 0 && !mcheck_table_listed(c, table);
    if (done || cl_now_ms() > until) break;
    cl_sleep_ms(200);
  }
  bool ok = strcmp(now, want) == 0 && !mcheck_table_listed(c, table);
  if (!ok)
    fprintf(stderr, "tablet directories: \"%s\", before the clone \"%s\"\n",
            now, want);
  free(now);
  return ok;
}

static void test_clone_fails_partway(void) {
  mica_client *c = client(30000);
  mcheck_create(c, "p", 4);
  fill(c, "p", "p");
  mcheck_rc(mica_snapshot_create(c, "p", "sp", NULL), MICA_OK, NULL, "sp");
  char *before = dir_set();
  s3h_log_reset();
  /* Clones write their manifests under epoch 0, the only epoch-0 writes. */
  s3h_fault("kind=412&method=PUT&match=/MANIFEST-00000000000000000000-&skip=2");
  int rc = mica_snapshot_clone(c, "sp", "pc");
  mcheck_rc(rc, MICA_ALREADY_EXISTS, "a second writer won", "clone with 412");
  if (rc == MICA_ALREADY_EXISTS) {
    CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "clone pc of snapshot sp "
                                                 "not made"));
    CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "HTTP 412"));
  }
  char *t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "PUT ", "/MANIFEST-00000000000000000000-",
                            "inm=*"), 3);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "PUT ", "/MANIFEST-", "inm=-"), 0);
  CU_ASSERT(S3H_COUNT(t, "PUT ", "/master/log-", "inm=*") >= 2);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "PUT ", "/master/log-", "inm=-"), 0);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "sig=bad"), 0);
  free(t);
  CU_ASSERT(cleaned_up(c, "pc", before));
  mcheck_rc(mica_snapshot_clone(c, "sp", "pc"), MICA_OK, NULL, "clone again");
  CU_ASSERT_EQUAL(bad_values(c, "pc", "p"), 0);
  free(before);
  mica_close(c);
}

static void test_clone_master_killed(void) {
  mica_client *c = client(30000);
  char *before = dir_set();
  s3h_log_reset();
  /* The clone reads each pin just before writing that tablet's manifest:
   * the third read waits while the master is killed. */
  s3h_fault("kind=delay&ms=4000&method=GET&match=/snapshots/&skip=2&count=1");
  struct job j = {"sp", "pk", 1, 3000, -1, ""};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, job_thread, &j), 0);
  CU_ASSERT(fault_taken("delay"));
  char *t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "PUT ", "/MANIFEST-00000000000000000000-"), 2);
  free(t);
  CU_ASSERT_EQUAL_FATAL(cl_kill_master(g_c), NULL);
  pthread_join(th, NULL);
  CU_ASSERT_NOT_EQUAL(j.rc, MICA_OK);
  CU_ASSERT_EQUAL_FATAL(cl_restart_master(g_c), NULL);
  CU_ASSERT(cleaned_up(c, "pk", before));
  CU_ASSERT(cl_has_event(g_c, "clone pk left unfinished"));
  mcheck_rc(mica_snapshot_clone(c, "sp", "pk"), MICA_OK, NULL, "clone again");
  CU_ASSERT_EQUAL(bad_values(c, "pk", "p"), 0);
  free(before);
  mica_close(c);
}

static void test_clone_late_manifest(void) {
  mica_client *c = client(30000);
  char *before = dir_set();
  s3h_log_reset();
  /* The clone's second manifest PUT reaches the server 8 s late, long
   * after its master was killed and the next one cleaned up. */
  s3h_fault("kind=delay&ms=8000&method=PUT&match=/MANIFEST-00000000000000000000-"
            "&skip=1&count=1");
  struct job j = {"sp", "pl", 1, 3000, -1, ""};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, job_thread, &j), 0);
  CU_ASSERT(fault_taken("delay"));
  uint64_t landed = cl_now_ms() + 8000;
  CU_ASSERT_EQUAL_FATAL(cl_kill_master(g_c), NULL);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL_FATAL(cl_restart_master(g_c), NULL);
  CU_ASSERT(cleaned_up(c, "pl", before));
  CU_ASSERT(cl_now_ms() < landed); /* else the test proves nothing */
  /* The late PUT lands: a live manifest of a tablet nobody knows. */
  uint64_t until = cl_now_ms() + 20000;
  char *now = dir_set();
  while (strcmp(now, before) == 0 && cl_now_ms() < until) {
    cl_sleep_ms(200);
    free(now);
    now = dir_set();
  }
  CU_ASSERT(strcmp(now, before) != 0);
  free(now);
  /* The next dropped snapshot's deletion sweeps it away. */
  mcheck_rc(mica_snapshot_create(c, "p", "sweep", NULL), MICA_OK, NULL,
            "sweep");
  mcheck_rc(mica_snapshot_drop(c, "sweep"), MICA_OK, NULL, "drop sweep");
  CU_ASSERT(cleaned_up(c, "pl", before));
  /* Only the orphan went: the other tables, restored and cloned ones
   * included, still read every value. */
  CU_ASSERT_EQUAL(bad_values(c, "p", "p"), 0);
  CU_ASSERT_EQUAL(bad_values(c, "pc", "p"), 0);
  CU_ASSERT_EQUAL(bad_values(c, "pk", "p"), 0);
  CU_ASSERT_EQUAL(bad_values(c, "r2", "v5"), 0);
  CU_ASSERT_EQUAL(bad_values(c, "t", "v5"), 0);
  mcheck_rc(mica_snapshot_clone(c, "sp", "pl"), MICA_OK, NULL, "clone again");
  CU_ASSERT_EQUAL(bad_values(c, "pl", "p"), 0);
  free(before);
  mica_close(c);
}


static void test_posix_root_s3_export(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.s3 = false;
  o.s3_wal = false;
  cluster *p = NULL;
  mica_err *err = cl_start(&o, &p);
  if (err != NULL) fprintf(stderr, "posix cluster: %s\n", err_msg(err));
  CU_ASSERT_PTR_NULL_FATAL(err);
  mica_options mo;
  mica_options_init(&mo);
  mo.deadline_ms = 30000;
  mica_client *pc = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(p), &mo, &pc), MICA_OK);
  mcheck_create(pc, "pt", 2);
  fill(pc, "pt", "posix");
  mcheck_rc(mica_snapshot_create(pc, "pt", "ps", NULL), MICA_OK, NULL,
            "snapshot on the POSIX cluster");
  fill(pc, "pt", "later");
  char *xp = export_dir("from-posix");
  uint64_t files = 0, bytes = 0;
  mcheck_rc(mica_snapshot_export(pc, "ps", xp, &files, &bytes), MICA_OK,
            NULL, "export from a POSIX root to s3://");
  CU_ASSERT(files >= 2);
  CU_ASSERT(bytes > 0);
  mcheck_rc(mica_snapshot_restore(pc, xp, "pr", NULL, NULL), MICA_OK, NULL,
            "restore from s3:// into a POSIX root");
  CU_ASSERT_EQUAL(bad_values(pc, "pr", "posix"), 0);
  mica_close(pc);
  cl_free(p);
  /* The same export, restored by the cluster on S3. */
  mica_client *c = client(30000);
  mcheck_rc(mica_snapshot_restore(c, xp, "from_posix", NULL, NULL), MICA_OK,
            NULL, "restore into the S3 cluster");
  CU_ASSERT_EQUAL(bad_values(c, "from_posix", "posix"), 0);
  mica_close(c);
  free(xp);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("snapshot_s3", suite_init, suite_clean);
  CU_add_test(s, "levels_kept", test_levels_kept);
  CU_add_test(s, "export_holds_snapshot", test_export_holds_snapshot);
  CU_add_test(s, "clone_fails_partway", test_clone_fails_partway);
  CU_add_test(s, "clone_master_killed", test_clone_master_killed);
  CU_add_test(s, "clone_late_manifest", test_clone_late_manifest);
  CU_add_test(s, "posix_root_s3_export", test_posix_root_s3_export);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
