/* test_cluster_s3wal: a cluster on S3 (s3rver) with the commit log on S3
 * too (no --wal-dir, the default on an s3:// root; docs/storage.md).
 *
 * wiped_machine: a table of four tablets over three tablet servers takes
 * acknowledged writes that stay in memtables (nothing flushed: they exist
 * only in the servers' commit logs, as group objects in the bucket). One
 * tablet server is killed with kill -9 and its whole "machine" is removed
 * (rm -rf of every local directory it used: its disk cache; it has no
 * WAL directory). Every acknowledged write is then read back from the new
 * owners, which replayed the dead server's log from S3; writes go on, and
 * a server started on a fresh, empty machine serves again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/env.h"
#include "common/path.h"
#include "tabletserver/clog.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.s3 = true;
  o.s3_wal = true;
  o.tservers = 3;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  o.master_args = margs;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

#define S(s) slice_from_str(s)

static void put_keys(const char *table, const char *prefix, int n) {
  char v[512];
  for (int i = 0; i < n; i++) {
    char k[64];
    snprintf(k, sizeof k, "%s%04d", prefix, i);
    snprintf(v, sizeof v, "value-of-%s", k);
    TU_OK(kvc_put(g_c, table, S(k), S(v), 30000));
  }
}

static int check_keys(const char *table, const char *prefix, int n) {
  buf got = BUF_INIT;
  int lost = 0;
  for (int i = 0; i < n; i++) {
    char k[64], v[512];
    snprintf(k, sizeof k, "%s%04d", prefix, i);
    snprintf(v, sizeof v, "value-of-%s", k);
    bool found = false;
    TU_OK(kvc_get(g_c, table, S(k), &found, &got, 60000));
    if (!found || !slice_eq(buf_slice(&got), S(v))) {
      fprintf(stderr, "\n  %s: acknowledged key %s lost or wrong\n", table, k);
      lost++;
    }
  }
  buf_free(&got);
  return lost;
}

static uint64_t server_of(const char *table, const char *key) {
  rpc_tablet_route *route = NULL;
  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_route(g_c, table, S(key), 30000, &route, &lr));
  uint64_t s = route ? route->location->server_id : 0;
  rpc_msg_free(lr);
  return s;
}

/* Group objects under <root>/logs, over every log. */
static int count_log_objects(void) {
  env *e = cl_data_env(g_c);
  char *logs = path_join(cl_data_root(g_c), "logs");
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(e, logs, &names, &n));
  int k = 0;
  for (size_t i = 0; i < n; i++) {
    char *dir = path_join(logs, names[i]);
    char **objs = NULL;
    size_t no = 0;
    TU_OK(env_list(e, dir, &objs, &no));
    for (size_t j = 0; j < no; j++) {
      uint64_t v;
      k += clog_parse_segment_name(objs[j], &v);
    }
    env_free_names(objs, no);
    free(dir);
  }
  env_free_names(names, n);
  free(logs);
  return k;
}

static void test_wiped_machine(void) {
  static const char *const split[] = {"b", "c", "d"};
  slice sp[3];
  for (int i = 0; i < 3; i++) sp[i] = S(split[i]);
  TU_OK(kvc_create_table(g_c, "w", sp, 3));
  static const char *const prefixes[] = {"a", "b", "c", "d"};
  for (int p = 0; p < 4; p++) put_keys("w", prefixes[p], 60);
  /* Nothing flushed (8 MiB memtables): the writes are in the logs, on S3. */
  CU_ASSERT_TRUE(count_log_objects() > 0);
  CU_ASSERT_TRUE(cl_logs_contain(g_c, "the commit log is on S3"));

  uint64_t victim = server_of("w", "a0000");
  int slot = -1;
  for (int i = 0; i < cl_tserver_count(g_c); i++)
    if (cl_tserver_id(g_c, i) == victim) slot = i;
  CU_ASSERT_NOT_EQUAL_FATAL(slot, -1);
  char machine[1200];
  cl_tserver_machine_dir(g_c, slot, machine, sizeof machine);
  struct stat sb;
  CU_ASSERT_EQUAL(stat(machine, &sb), 0); /* its disk cache lives there */

  /* The machine is lost: kill -9 and every local directory it had. */
  TU_OK(cl_kill_tserver(g_c, slot));
  TU_OK(env_remove_tree(env_posix(), machine));
  CU_ASSERT_NOT_EQUAL(stat(machine, &sb), 0);
  /* No WAL directory was ever used. */
  char wal[1200];
  snprintf(wal, sizeof wal, "%s/wal", cl_local_dir(g_c));
  CU_ASSERT_NOT_EQUAL(stat(wal, &sb), 0);

  /* Reassigned after the lease; every acknowledged write is there. */
  int lost = 0;
  for (int p = 0; p < 4; p++) lost += check_keys("w", prefixes[p], 60);
  CU_ASSERT_EQUAL(lost, 0);
  CU_ASSERT_NOT_EQUAL(server_of("w", "a0000"), victim);

  /* Writes go on, and a server on a fresh, empty machine joins. */
  put_keys("w", "e", 20);
  TU_OK(cl_restart_tserver(g_c, slot));
  for (int p = 0; p < 4; p++) CU_ASSERT_EQUAL(check_keys("w", prefixes[p], 60), 0);
  CU_ASSERT_EQUAL(check_keys("w", "e", 20), 0);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"wiped_machine", test_wiped_machine},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("cluster_s3wal", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName != NULL; t++)
    CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
