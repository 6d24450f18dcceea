/* test_master_sweep: the master's orphan sweep (msrv_sweep_orphans,
 * master/server/msrv_snapshot.c; docs/storage.md, "Export and restore")
 * on a real cluster, whatever its data root (POSIX, or S3 in the S3
 * rerun).
 *
 * late_restore_write: a restore fails (a damaged export), its half-made
 *   table is dropped and removed; then a late SSTable copy of it lands in
 *   the directory of one of its tablets, which has no manifest. With the
 *   sweep's period at 10 minutes nothing collects it at once; a restarted
 *   master sweeps at start and removes it. With a 300 ms period a second
 *   orphan (another of the failed restore's tablets) goes without a
 *   restart. Through all of it the sweep leaves alone: every directory
 *   of the live table and the restored table (their data reads back), a
 *   directory without a manifest under an id the master never gave out,
 *   and a dropped table's directory whose files a snapshot still pins
 *   (the snapshot still clones and reads). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/layout.h"
#include "common/path.h"
#include "mica/mica.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#define NKEYS 40

static void key_of(int i, char *k, size_t n) { snprintf(k, n, "k%03d", i); }

static void put_all(mica_client *c, const char *table, const char *tag) {
  for (int i = 0; i < NKEYS; i++) {
    char k[16], v[32];
    key_of(i, k, sizeof k);
    snprintf(v, sizeof v, "%s-%d", tag, i);
    int rc = mica_put(c, table, k, strlen(k), v, strlen(v));
    if (rc != MICA_OK) fprintf(stderr, "\nput %s %s: %s\n", table, k, mica_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, MICA_OK);
  }
}

/* Every key of `table` reads `tag`-i. */
static void check_all(mica_client *c, const char *table, const char *tag) {
  for (int i = 0; i < NKEYS; i++) {
    char k[16], want[32];
    key_of(i, k, sizeof k);
    snprintf(want, sizeof want, "%s-%d", tag, i);
    void *v = NULL;
    size_t n = 0;
    int rc = mica_get(c, table, k, strlen(k), &v, &n);
    if (rc != MICA_OK || n != strlen(want) || memcmp(v, want, n) != 0)
      fprintf(stderr, "\nget %s %s: %s (%.*s)\n", table, k,
              mica_code_name(rc), rc == MICA_OK ? (int)n : 0,
              rc == MICA_OK ? (const char *)v : "");
    CU_ASSERT_EQUAL(rc, MICA_OK);
    CU_ASSERT(rc == MICA_OK && n == strlen(want) && memcmp(v, want, n) == 0);
    mica_free(v);
  }
}

/* Asserts MICA_OK (fatally), printing the error otherwise. */
#define OK(call)                                                            \
  do {                                                                      \
    int rc_ = (call);                                                       \
    if (rc_ != MICA_OK)                                                     \
      fprintf(stderr, "\n%s: %s: %s\n", #call, mica_code_name(rc_),        \
              mica_errmsg());                                               \
    CU_ASSERT_EQUAL_FATAL(rc_, MICA_OK);                                    \
  } while (0)

/* Tablet ids of `table`, at most `max`, into ids; their count. */
static size_t tablet_ids(mica_client *c, const char *table, uint64_t *ids,
                         size_t max) {
  mica_tablet_info *v = NULL;
  size_t n = 0;
  OK(mica_list_tablets(c, table, &v, &n));
  size_t k = 0;
  for (size_t i = 0; i < n && k < max; i++) ids[k++] = v[i].tablet_id;
  mica_free(v);
  return k;
}

static char *tablet_dir(cluster *cl, uint64_t id) {
  char *tablets = layout_tablets_dir(cl_data_root(cl));
  buf d = BUF_INIT;
  layout_tablet_dir(tablets, id, &d);
  char *s = xstrdup((const char *)d.data);
  buf_free(&d);
  free(tablets);
  return s;
}

/* Files under tablet `id`'s directory (0 when it is gone). */
static size_t files_in(cluster *cl, uint64_t id) {
  char *d = tablet_dir(cl, id);
  char **names = NULL;
  size_t n = 0;
  mica_err *err = env_list(cl_data_env(cl), d, &names, &n);
  if (err != NULL) {
    CU_ASSERT_EQUAL(err_code(err), MICA_NOT_FOUND);
    err_free(err);
    n = 0;
  } else {
    env_free_names(names, n);
  }
  free(d);
  return n;
}

static bool has_manifest(cluster *cl, uint64_t id) {
  char *d = tablet_dir(cl, id);
  char **names = NULL;
  size_t n = 0;
  bool found = false;
  mica_err *err = env_list(cl_data_env(cl), d, &names, &n);
  for (size_t i = 0; err == NULL && i < n; i++)
    found |= strncmp(names[i], "MANIFEST", 8) == 0;
  if (err == NULL) env_free_names(names, n);
  err_free(err);
  free(d);
  return found;
}

/* What a late SSTable copy of a restore leaves: the tablet's directory
 * holding one SSTable (the name a restore gives it) and no manifest. With
 * `racing`, a sweep may remove it while it is being made (a directory
 * gone between its creation and the file's write is no failure). */
static void plant_late_copy(cluster *cl, uint64_t id, bool racing) {
  env *e = cl_data_env(cl);
  char *d = tablet_dir(cl, id);
  char *f = path_join(d, "sst-00000000000000000000-00000000000000000001.sst");
  const char junk[] = "the bytes of an SSTable copy that arrived late";
  mica_err *err = env_mkdirs(e, d);
  if (err == NULL)
    err = env_write_file_atomic(e, f, slice_make(junk, sizeof junk - 1));
  if (err != NULL && !(racing && err_code(err) == MICA_NOT_FOUND))
    fprintf(stderr, "\nplanting %s: %s\n", f, err_msg(err));
  CU_ASSERT(err == NULL || (racing && err_code(err) == MICA_NOT_FOUND));
  err_free(err);
  free(f);
  free(d);
  if (!racing) CU_ASSERT_EQUAL(files_in(cl, id), 1);
}

/* The master's log line for removing orphan `id`. */
static bool removal_logged(cluster *cl, uint64_t id) {
  char what[160];
  snprintf(what, sizeof what, "tablet directory %" PRIu64 " of no table "
           "held no manifest", id);
  return cl_logs_contain(cl, what);
}

/* Waits up to `ms` for tablet `id`'s directory to be gone. */
static bool gone_within(cluster *cl, uint64_t id, int ms) {
  uint64_t until = cl_now_ms() + (uint64_t)ms;
  while (files_in(cl, id) != 0) {
    if (cl_now_ms() > until) return false;
    cl_sleep_ms(100);
  }
  return true;
}

/* Waits for the master to log the removal of a dropped table, so that its
 * tablet ids are forgotten. */
static void wait_removed(cluster *cl, const char *table) {
  char what[200];
  snprintf(what, sizeof what, "table %s (id", table);
  uint64_t until = cl_now_ms() + 30000;
  while (!cl_has_event(cl, what)) {
    if (cl_now_ms() > until) CU_FAIL_FATAL("dropped table never removed");
    cl_sleep_ms(100);
  }
  cl_sleep_ms(300); /* the removal event comes with its record */
}

static void test_late_restore_write(void) {
  /* margs[1] is changed before the second restart (the harness keeps the
   * pointer). */
  static const char *margs[] = {"--orphan-sweep-ms", "600000", "--merge",
                                "off", "--balancer", "off", NULL};
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.master_args = margs;
  cluster *cl = NULL;
  TU_OK(cl_start(&o, &cl));
  mica_options mo;
  mica_options_init(&mo);
  mo.deadline_ms = 30000;
  mica_client *c = NULL;
  OK(mica_open(cl_master_address(cl), &mo, &c));

  mica_key splits[] = {{"k010", 4}, {"k020", 4}, {"k030", 4}};
  OK(mica_create_table(c, "live", splits, 3));
  put_all(c, "live", "live");
  /* A table whose files only a snapshot keeps once it is dropped. */
  OK(mica_create_table(c, "pinned", splits, 1));
  put_all(c, "pinned", "pinned");
  OK(mica_snapshot_create(c, "pinned", "keep", NULL));
  uint64_t pinned_ids[4];
  size_t npinned = tablet_ids(c, "pinned", pinned_ids, 4);
  CU_ASSERT_EQUAL_FATAL(npinned, 2);

  /* An export, and a damaged copy of it that fails to restore. */
  char dest[1200], bad[1300], cmd[4000];
  snprintf(dest, sizeof dest, "%s/export-keep", tu_tmpdir());
  snprintf(bad, sizeof bad, "%s/export-bad", tu_tmpdir());
  OK(mica_snapshot_export(c, "keep", dest, NULL, NULL));
  snprintf(cmd, sizeof cmd,
           "cp -r '%s' '%s' && f=$(ls '%s'/*.sst | tail -1) && "
           "printf 'Z' | dd of=\"$f\" bs=1 seek=60 conv=notrunc 2>/dev/null",
           dest, bad, bad);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  uint64_t before[8];
  size_t nb = tablet_ids(c, "pinned", before, 8);
  uint64_t max_before = 0;
  for (size_t i = 0; i < nb; i++)
    if (before[i] > max_before) max_before = before[i];
  int rc = mica_snapshot_restore(c, bad, "failed", NULL, NULL);
  CU_ASSERT_EQUAL_FATAL(rc, MICA_CORRUPTION);
  wait_removed(cl, "failed");
  /* The restore took the two ids after the pinned table's (ids are given
   * out in order); the next table created takes the ones after. */
  OK(mica_create_table(c, "after", NULL, 0));
  uint64_t after_id;
  CU_ASSERT_EQUAL_FATAL(tablet_ids(c, "after", &after_id, 1), 1);
  CU_ASSERT_EQUAL_FATAL(after_id, max_before + 3);
  uint64_t lost[2] = {max_before + 1, max_before + 2};
  CU_ASSERT_EQUAL(files_in(cl, lost[0]), 0); /* cleaned up */
  CU_ASSERT_EQUAL(files_in(cl, lost[1]), 0);

  /* The pinned table is dropped: its directories stay for the snapshot. */
  OK(mica_drop_table(c, "pinned"));
  wait_removed(cl, "pinned");
  /* A restore that succeeds, for a table of restored files. */
  OK(mica_snapshot_restore(c, dest, "restored", NULL, NULL));

  /* The late copy lands; and a manifest-less directory under an id no
   * master gave out (not this master's to judge). */
  plant_late_copy(cl, lost[0], false);
  uint64_t alien = 900000;
  plant_late_copy(cl, alien, false);
  /* Sweeps run after drops and every 10 minutes here: nothing yet. */
  cl_sleep_ms(1500);
  CU_ASSERT_EQUAL(files_in(cl, lost[0]), 1);

  /* A restarted master sweeps at start. */
  TU_OK(cl_stop_master(cl));
  TU_OK(cl_restart_master(cl));
  TU_OK(cl_wait_registered(cl, 30000));
  CU_ASSERT(gone_within(cl, lost[0], 15000));
  CU_ASSERT(removal_logged(cl, lost[0]));
  CU_ASSERT(!removal_logged(cl, lost[1]));

  /* Every 300 ms: the second orphan goes without a restart. */
  margs[1] = "300";
  TU_OK(cl_stop_master(cl));
  TU_OK(cl_restart_master(cl));
  TU_OK(cl_wait_registered(cl, 30000));
  cl_sleep_ms(1000); /* the start sweep is over */
  plant_late_copy(cl, lost[1], true);
  CU_ASSERT(gone_within(cl, lost[1], 10000));
  CU_ASSERT(removal_logged(cl, lost[1]));
  cl_sleep_ms(1000); /* a few more sweeps */

  /* What the sweep must never take. */
  CU_ASSERT_EQUAL(files_in(cl, alien), 1);
  CU_ASSERT(!removal_logged(cl, alien));
  for (size_t i = 0; i < npinned; i++)
    CU_ASSERT(has_manifest(cl, pinned_ids[i]));
  uint64_t ids[8];
  size_t n = tablet_ids(c, "live", ids, 8);
  CU_ASSERT_EQUAL(n, 4);
  for (size_t i = 0; i < n; i++) CU_ASSERT(has_manifest(cl, ids[i]));
  check_all(c, "live", "live");
  check_all(c, "restored", "pinned");
  CU_ASSERT_EQUAL(mica_snapshot_clone(c, "keep", "cloned"), MICA_OK);
  check_all(c, "cloned", "pinned");

  /* Leave the root as the harness expects. */
  char *d = tablet_dir(cl, alien);
  TU_OK(env_remove_tree(cl_data_env(cl), d));
  free(d);
  mica_close(c);
  cl_free(cl);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"late_restore_write", test_late_restore_write},
      CU_TEST_INFO_NULL};
  tu_add_suite("sweep", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
