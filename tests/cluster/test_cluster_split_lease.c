/* test_cluster_split_lease: an operator split that reaches a tablet server
 * between two leases (docs/ha.md, "An operator split right after a
 * failover").
 *
 * A master that has just started, or a standby that has just taken over,
 * serves admin calls before every tablet server has heartbeated to it. A
 * server whose lease ran out while no master was there refuses every call
 * with LEASE_EXPIRED, and it refuses a TsSplitTablet before touching the
 * tablet. The master must treat that refusal as "not yet": wait for the
 * server's first heartbeat (its lease renewed) and split then, within the
 * call's time, instead of failing the operator's call. test_ha_failover's
 * split right after a kill -9 of the active master met this window under
 * load.
 *
 * The window is made wide on purpose: a 3 s lease with 2 s heartbeats.
 * The master is killed, the server's lease is seen to lapse, the master
 * restarts on the same data root, and the server is seen to still refuse
 * (LEASE_EXPIRED) just before the split is sent. Should its heartbeat win
 * that race, the round is repeated. Then the split must succeed and both
 * daughters serve every key written before. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#define ROUNDS 5

static const char *const g_keys[] = {"a", "f", "k", "p", "u", "z"};
#define NKEYS (sizeof g_keys / sizeof g_keys[0])

/* A Get of "a" straight to the server: its status code (transport errors
 * count as their code too). */
static int ts_get_code(cluster *c, const char *addr, const rpc_tablet_ref *ref) {
  rpc_get_request q = {0};
  q.tablet = (rpc_tablet_ref *)ref;
  q.key = slice_from_str("a");
  mica_err *err = cl_call(c, addr, &rpc_m_ts_get, &q, 2000, NULL);
  int code = err_code(err);
  err_free(err);
  return code;
}

static void test_split_waits_for_lease(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.lease_ms = 3000;
  o.heartbeat_ms = 2000;
  cluster *c = NULL;
  TU_OK(cl_start(&o, &c));
  if (c == NULL) return;
  TU_OK(kvc_create_table(c, "t", NULL, 0));
  for (size_t i = 0; i < NKEYS; i++)
    TU_OK(kvc_put(c, "t", slice_from_str(g_keys[i]), slice_from_str(g_keys[i]),
                  10000));
  rpc_tablet_route *rt = NULL;
  rpc_lookup_tablets_response *lk = NULL;
  TU_OK(kvc_route(c, "t", slice_from_str("a"), 10000, &rt, &lk));
  if (rt == NULL) {
    cl_free(c);
    return;
  }
  const char *ts = cl_tserver_address(c, 0);
  rpc_tablet_ref ref;
  kvc_ref_of(rt, &ref);

  bool in_window = false;
  mica_err *split_err = NULL;
  rpc_split_tablet_response *sr = NULL;
  for (int round = 0; round < ROUNDS && !in_window; round++) {
    TU_OK(cl_kill_master(c));
    /* The server's lease runs out with no master to renew it. */
    int code = MICA_OK;
    for (uint64_t until = cl_now_ms() + 10000;
         cl_now_ms() < until && code != MICA_LEASE_EXPIRED; cl_sleep_ms(50))
      code = ts_get_code(c, ts, &ref);
    CU_ASSERT_EQUAL_FATAL(code, MICA_LEASE_EXPIRED);
    TU_OK(cl_restart_master(c));
    /* The master answers; the server has not heartbeated to it yet. */
    if (ts_get_code(c, ts, &ref) != MICA_LEASE_EXPIRED) {
      fprintf(stderr, "round %d: the server renewed before the split; "
              "again\n", round);
      TU_OK(cl_wait_registered(c, 20000));
      continue;
    }
    in_window = true;
    rpc_split_tablet_request q = {0};
    q.tablet_id = ref.tablet_id;
    q.split_key = slice_from_str("m");
    uint64_t t0 = cl_now_ms();
    split_err = cl_call_master(c, &rpc_m_master_split_tablet, &q, 20000,
                               (void **)&sr);
    printf("\nsplit answered after %" PRIu64 " ms (round %d)\n",
           cl_now_ms() - t0, round);
  }
  CU_ASSERT_FATAL(in_window);
  if (split_err != NULL)
    fprintf(stderr, "split: %s: %s\n", mica_code_name(err_code(split_err)),
            err_msg(split_err));
  CU_ASSERT_PTR_NULL(split_err);
  CU_ASSERT(split_err == NULL && sr != NULL && sr->left != NULL &&
            sr->right != NULL && sr->left->desc != NULL &&
            sr->right->desc != NULL &&
            sr->left->desc->tablet_id != ref.tablet_id &&
            sr->right->desc->tablet_id != ref.tablet_id);
  err_free(split_err);
  rpc_msg_free(sr);

  /* The parent now answers with its daughters, and they serve every key. */
  CU_ASSERT_EQUAL(ts_get_code(c, ts, &ref), MICA_STALE_EPOCH);
  for (size_t i = 0; i < NKEYS; i++) {
    bool found = false;
    buf v = BUF_INIT;
    TU_OK(kvc_get(c, "t", slice_from_str(g_keys[i]), &found, &v, 10000));
    CU_ASSERT(found && v.len == strlen(g_keys[i]) &&
              memcmp(v.data, g_keys[i], v.len) == 0);
    buf_free(&v);
  }
  rpc_lookup_tablets_response *after = NULL;
  TU_OK(kvc_lookup(c, "t", slice_from_str(""), 10, false, &after));
  CU_ASSERT(after != NULL && after->n_tablets == 2);
  rpc_msg_free(after);
  rpc_msg_free(lk);
  cl_free(c);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("split_lease", NULL, NULL);
  CU_add_test(s, "split_waits_for_lease", test_split_waits_for_lease);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
