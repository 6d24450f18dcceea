/* test_cluster_s3: a cluster whose data root is on a real S3 server
 * (s3rver, tests/harness/s3server.h), always, whatever MICA_TEST_S3 says.
 * The whole core suite also reruns on S3 (the *_s3 ctest entries); this
 * program checks what only S3 has (docs/storage.md):
 *
 * - the layout: SSTables and manifests are objects under
 *   tablets/<id>/, manifests named MANIFEST-<epoch>-<gen> with the owner's
 *   assign_epoch, the master's log as a snapshot plus one part object per
 *   batch, no WAL object in the bucket (the WAL is in the servers' shared
 *   --wal-dir) and no lock object;
 * - garbage: an SSTable object no manifest ever referenced (a flush that
 *   died before its manifest write) is deleted when the tablet is next
 *   opened (here: moved), and so is a late manifest object of an old epoch
 *   (an upload of a fenced owner landing after the new owner took over),
 *   which no reader ever picks meanwhile;
 * - a split's parent: its objects and directory deleted once the
 *   daughters compacted its files away;
 * - kill -9 of the owner with acknowledged writes in its WAL: the tablet
 *   is reassigned, every write is read back, and the new owner's manifest
 *   carries its epoch. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"
#include "tabletserver/clog.h"
#include "tabletserver/manifest.h"

static cluster *g_c;

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.s3 = true;
  o.tservers = 2;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  static const char *const targs[] = {"--memtable-size", "64K", NULL};
  o.master_args = margs;
  o.tserver_args = targs;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

#define S(s) slice_from_str(s)

static void put_keys(const char *table, const char *prefix, int n) {
  char v[1024];
  memset(v, 'v', sizeof v - 1);
  v[sizeof v - 1] = '\0';
  for (int i = 0; i < n; i++) {
    char k[64];
    snprintf(k, sizeof k, "%s%05d", prefix, i);
    TU_OK(kvc_put(g_c, table, S(k), S(v), 30000));
  }
}

static void check_keys(const char *table, const char *prefix, int n) {
  buf got = BUF_INIT;
  for (int i = 0; i < n; i++) {
    char k[64];
    snprintf(k, sizeof k, "%s%05d", prefix, i);
    bool found = false;
    TU_OK(kvc_get(g_c, table, S(k), &found, &got, 30000));
    if (!found) fprintf(stderr, "\n  %s: acknowledged key %s lost\n", table, k);
    CU_ASSERT_TRUE(found);
    CU_ASSERT_EQUAL(got.len, 1023);
  }
  buf_free(&got);
}

/* The tablet holding `key` of `table`: id, server and assign epoch. */
static void locate(const char *table, const char *key, uint64_t *id,
                   uint64_t *server, uint64_t *epoch) {
  rpc_tablet_route *route = NULL;
  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_route(g_c, table, S(key), 30000, &route, &lr));
  *id = route->desc->tablet_id;
  *server = route->location->server_id;
  *epoch = route->location->assign_epoch;
  rpc_msg_free(lr);
}

static char *tablet_dir(uint64_t id) {
  char *p = xmalloc(4096);
  snprintf(p, 4096, "%s/tablets/%" PRIu64, cl_data_root(g_c), id);
  return p;
}

/* Counts the names in `dir` (of the bucket) for which `want` is true. */
static int count_names(const char *dir, bool (*want)(const char *)) {
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(cl_data_env(g_c), dir, &names, &n));
  int k = 0;
  for (size_t i = 0; i < n; i++) k += want(names[i]);
  env_free_names(names, n);
  return k;
}

static bool is_sst(const char *n) {
  return strncmp(n, "sst-", 4) == 0 && strstr(n, ".sst") != NULL;
}
static bool is_wal(const char *n) { return strncmp(n, "wal-", 4) == 0; }
static bool is_manifest(const char *n) { return man_is_name(n); }
static bool is_snap(const char *n) { return strncmp(n, "snap-", 5) == 0; }
static bool is_log_part(const char *n) {
  return strncmp(n, "log-", 4) == 0 && strchr(n, '.') != NULL;
}
static bool is_lock(const char *n) { return strcmp(n, "LOCK") == 0; }
static bool is_clog(const char *n) { return strncmp(n, "clog-", 5) == 0; }

/* The epoch in the name of the newest manifest in `dir`. */
static uint64_t manifest_epoch(const char *dir) {
  char *path = NULL;
  TU_OK(man_newest_path(cl_data_env(g_c), dir, &path));
  const char *base = path ? strrchr(path, '/') + 1 : "";
  uint64_t ep = 0, gen = 0;
  CU_ASSERT_TRUE(man_parse_name(base, &ep, &gen));
  free(path);
  return ep;
}

/* Moves `tablet` to the other server; returns the new assign epoch. */
static uint64_t move_away(uint64_t tablet, uint64_t from) {
  uint64_t to = 0;
  for (int i = 0; i < cl_tserver_count(g_c) && to == 0; i++)
    if (cl_tserver_running(g_c, i) && cl_tserver_id(g_c, i) != from)
      to = cl_tserver_id(g_c, i);
  CU_ASSERT_NOT_EQUAL_FATAL(to, 0);
  rpc_move_tablet_request q = {0};
  q.tablet_id = tablet;
  q.target_server_id = to;
  void *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_move_tablet, &q, 30000, &r));
  rpc_move_tablet_response *mr = r;
  uint64_t epoch = 0;
  if (mr != NULL && mr->tablet != NULL && mr->tablet->location != NULL) {
    CU_ASSERT_EQUAL(mr->tablet->location->server_id, to);
    epoch = mr->tablet->location->assign_epoch;
  }
  rpc_msg_free(r);
  return epoch;
}

static void test_layout(void) {
  TU_OK(kvc_create_table(g_c, "lay", NULL, 0));
  put_keys("lay", "k", 300); /* 300 KiB: several 64 KiB memtables */
  uint64_t id, server, epoch;
  locate("lay", "k00000", &id, &server, &epoch);
  char *dir = tablet_dir(id);
  /* Flushes run in the background: wait for the first SSTable object. */
  uint64_t until = cl_now_ms() + 20000;
  while (count_names(dir, is_sst) == 0 && cl_now_ms() < until)
    cl_sleep_ms(100);
  CU_ASSERT_TRUE(count_names(dir, is_sst) > 0);
  /* A manifest write removes the generation it replaced right after the
   * new one is durable: two names only in between, one once flushes
   * settle. */
  int mans = count_names(dir, is_manifest);
  CU_ASSERT_TRUE(mans == 1 || mans == 2);
  until = cl_now_ms() + 20000;
  while (count_names(dir, is_manifest) != 1 && cl_now_ms() < until)
    cl_sleep_ms(100);
  CU_ASSERT_EQUAL(count_names(dir, is_manifest), 1);
  CU_ASSERT_EQUAL(manifest_epoch(dir), epoch);
  CU_ASSERT_EQUAL(count_names(dir, is_wal), 0);
  /* The writes' log is the servers' commit logs (COMMITLOG_FORMAT.md),
   * in the servers' shared local directory, none of it in the bucket. */
  char local[4200];
  snprintf(local, sizeof local, "%s/wal/logs", cl_local_dir(g_c));
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(env_posix(), local, &names, &n));
  int segs = 0;
  for (size_t i = 0; i < n; i++) {
    char sub[4400];
    snprintf(sub, sizeof sub, "%s/%s", local, names[i]);
    char **files = NULL;
    size_t nf = 0;
    mica_err *lerr = env_list(env_posix(), sub, &files, &nf);
    if (lerr != NULL) { /* LOCK and other files are not directories */
      err_free(lerr);
      continue;
    }
    uint64_t num;
    for (size_t j = 0; j < nf; j++)
      segs += clog_parse_segment_name(files[j], &num);
    env_free_names(files, nf);
  }
  env_free_names(names, n);
  CU_ASSERT_TRUE(segs > 0);
  char blogs[4200];
  snprintf(blogs, sizeof blogs, "%s/logs", cl_data_root(g_c));
  bool in_bucket = false;
  mica_err *berr = env_list(cl_data_env(g_c), blogs, &names, &n);
  bool listed = berr == NULL;
  err_free(berr); /* no logs directory in the bucket at all: none there */
  if (listed) {
    for (size_t i = 0; i < n; i++) {
      char sub[4400];
      snprintf(sub, sizeof sub, "%s/%s", blogs, names[i]);
      in_bucket |= count_names(sub, is_clog) > 0;
    }
    env_free_names(names, n);
  }
  CU_ASSERT_FALSE(in_bucket);
  /* The master's log: a snapshot and part objects, no lock. */
  char mdir[4200];
  snprintf(mdir, sizeof mdir, "%s/master", cl_data_root(g_c));
  CU_ASSERT_TRUE(count_names(mdir, is_snap) >= 1);
  CU_ASSERT_TRUE(count_names(mdir, is_log_part) >= 1);
  CU_ASSERT_EQUAL(count_names(mdir, is_lock), 0);
  check_keys("lay", "k", 300);
  free(dir);
}

static void test_garbage_and_late_manifest(void) {
  TU_OK(kvc_create_table(g_c, "gc", NULL, 0));
  put_keys("gc", "g", 150);
  uint64_t id, server, epoch;
  locate("gc", "g00000", &id, &server, &epoch);
  char *dir = tablet_dir(id);
  env *e = cl_data_env(g_c);

  /* An SSTable object no manifest ever named, and a late manifest of an
   * older epoch holding nothing (as a fenced owner's delayed upload). */
  char orphan[4300], late[4300];
  snprintf(orphan, sizeof orphan, "%s/sst-%020" PRIu64 "-%020d.sst", dir,
           epoch, 999999);
  TU_OK(env_write_file_atomic(e, orphan, S("never referenced")));
  man_state m;
  man_init(&m);
  m.tablet_id = id;
  m.epoch = epoch > 1 ? epoch - 1 : 0;
  m.next_file = 1;
  buf enc = BUF_INIT;
  man_encode(&m, &enc);
  snprintf(late, sizeof late, "%s/MANIFEST-%020" PRIu64 "-%020d", dir,
           m.epoch, 77);
  TU_OK(env_write_file_atomic(e, late, buf_slice(&enc)));
  buf_free(&enc);
  man_clear(&m);
  /* The late object is never the one read: the data is all there. */
  check_keys("gc", "g", 150);

  uint64_t e2 = move_away(id, server);
  CU_ASSERT_TRUE(e2 > epoch);
  check_keys("gc", "g", 150);
  put_keys("gc", "h", 20);
  check_keys("gc", "h", 20);
  /* The new owner opened the tablet: the orphan is gone, and its manifest
   * writes removed every older name, the late one included. */
  uint64_t until = cl_now_ms() + 20000;
  while ((env_exists(e, orphan) || env_exists(e, late)) &&
         cl_now_ms() < until)
    cl_sleep_ms(100);
  CU_ASSERT_FALSE(env_exists(e, orphan));
  CU_ASSERT_FALSE(env_exists(e, late));
  CU_ASSERT_EQUAL(manifest_epoch(dir), e2);
  CU_ASSERT_EQUAL(count_names(dir, is_manifest), 1);
  free(dir);
}

static void test_kill_owner(void) {
  TU_OK(kvc_create_table(g_c, "kill", NULL, 0));
  put_keys("kill", "a", 200);
  uint64_t id, server, epoch;
  locate("kill", "a00000", &id, &server, &epoch);
  int slot = -1;
  for (int i = 0; i < cl_tserver_count(g_c); i++)
    if (cl_tserver_id(g_c, i) == server) slot = i;
  CU_ASSERT_NOT_EQUAL_FATAL(slot, -1);
  /* kill -9 with unflushed acknowledged writes in the WAL. */
  TU_OK(cl_kill_tserver(g_c, slot));
  check_keys("kill", "a", 200); /* waits out the lease, reassigned */
  uint64_t id2, server2, epoch2;
  locate("kill", "a00000", &id2, &server2, &epoch2);
  CU_ASSERT_EQUAL(id2, id);
  CU_ASSERT_NOT_EQUAL(server2, server);
  CU_ASSERT_TRUE(epoch2 > epoch);
  char *dir = tablet_dir(id);
  CU_ASSERT_EQUAL(manifest_epoch(dir), epoch2);
  put_keys("kill", "b", 20);
  TU_OK(cl_restart_tserver(g_c, slot));
  check_keys("kill", "a", 200);
  check_keys("kill", "b", 20);
  free(dir);
}

/* A split references the parent's SSTable objects; the daughters compact
 * them away soon after they open, and garbage collection then deletes the
 * parent's objects and its directory from the bucket. Every key stays. */
static void test_split_then_gc(void) {
  TU_OK(kvc_create_table(g_c, "sp", NULL, 0));
  put_keys("sp", "s", 200);
  uint64_t id, server, epoch;
  locate("sp", "s00000", &id, &server, &epoch);
  rpc_split_tablet_request q = {0};
  q.tablet_id = id;
  q.split_key.data = (uint8_t *)"s00100";
  q.split_key.len = 6;
  void *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_split_tablet, &q, 30000, &r));
  rpc_msg_free(r);
  check_keys("sp", "s", 200);
  uint64_t left, right, s2, e2;
  locate("sp", "s00000", &left, &s2, &e2);
  locate("sp", "s00150", &right, &s2, &e2);
  CU_ASSERT_NOT_EQUAL(left, id);
  CU_ASSERT_NOT_EQUAL(right, id);
  char *parent = tablet_dir(id), *ld = tablet_dir(left);
  CU_ASSERT_EQUAL(count_names(ld, is_manifest) >= 1, 1);
  uint64_t until = cl_now_ms() + 60000;
  while (env_exists(cl_data_env(g_c), parent) && cl_now_ms() < until)
    cl_sleep_ms(200);
  if (env_exists(cl_data_env(g_c), parent))
    fprintf(stderr, "\n  %s still in the bucket after 60 s\n", parent);
  CU_ASSERT_FALSE(env_exists(cl_data_env(g_c), parent));
  check_keys("sp", "s", 200);
  free(parent);
  free(ld);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("s3", suite_init, suite_clean);
  CU_add_test(s, "layout", test_layout);
  CU_add_test(s, "garbage_and_late_manifest", test_garbage_and_late_manifest);
  CU_add_test(s, "split_then_gc", test_split_then_gc);
  CU_add_test(s, "kill_owner", test_kill_owner);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
