/* test_cluster_merge_successor: after a merge, a client holding a route to
 * either input reaches the merged tablet without asking the master.
 *
 * Two tablet servers, one table of two tablets, one on each server. A
 * client (libmica) caches routes to both, then the operator merges them:
 * the merged tablet opens where the left input was, and the right input's
 * server was only told CloseTablet. The master's heartbeat reply tells
 * that server where its input went once the merged tablet serves; from
 * then on it answers requests for the input with STALE_EPOCH carrying the
 * merged tablet's route. The client's reads of keys in both inputs then
 * succeed with its master lookup count unchanged. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mica/mica.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2; /* the harness starts the master with merges and the
                    * balancer off: only the operator's merge happens */
  mica_err *e = cl_start(&o, &g_c);
  if (e != NULL) {
    fprintf(stderr, "cluster: %s\n", err_msg(e));
    err_free(e);
    return 1;
  }
  return 0;
}

static int suite_clean(void) {
  cl_free(g_c);
  return 0;
}

/* The current tablets of `table`; caller frees with rpc_msg_free. */
static rpc_list_tablets_response *tablets_of(const char *table) {
  rpc_list_tablets_request q = {0};
  q.table = table;
  void *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 10000, &r));
  return r;
}

static mica_err *call_master(const rpc_method *m, const void *q) {
  void *r = NULL;
  mica_err *e = cl_call_master(g_c, m, q, 30000, &r);
  rpc_msg_free(r);
  return e;
}

/* The current tablets of `table` once all of them serve. */
static rpc_list_tablets_response *serving_tablets_of(const char *table) {
  uint64_t until = cl_now_ms() + 30000;
  for (;;) {
    rpc_list_tablets_response *l = tablets_of(table);
    bool all = l->n_tablets > 0;
    for (size_t i = 0; i < l->n_tablets; i++)
      all = all && l->tablets[i].location != NULL &&
            l->tablets[i].state == RPC_TABLET_SERVING;
    if (all || cl_now_ms() > until) return l;
    rpc_msg_free(l);
    cl_sleep_ms(50);
  }
}

/* Asks `addr` for `key` naming tablet `ref`: the answer's Status. Caller
 * frees the response with rpc_msg_free. */
static rpc_get_response *get_at(const char *addr, const rpc_tablet_ref *ref,
                                const char *key) {
  rpc_get_request q = {0};
  q.tablet = (rpc_tablet_ref *)ref;
  q.key = slice_from_str(key);
  void *r = NULL;
  mica_err *e = rpc_unary(cl_channel(g_c, addr), &rpc_m_ts_get, &q, 5000, &r);
  TU_OK(e);
  return r;
}

static void test_both_inputs_reach_merged(void) {
  slice split = slice_from_str("m");
  TU_OK(kvc_create_table(g_c, "mt", &split, 1));
  rpc_list_tablets_response *l = serving_tablets_of("mt");
  CU_ASSERT_EQUAL_FATAL(l->n_tablets, 2);
  uint64_t left = l->tablets[0].desc->tablet_id;
  uint64_t right = l->tablets[1].desc->tablet_id;
  CU_ASSERT_FATAL(l->tablets[0].location && l->tablets[1].location);
  uint64_t lsrv = l->tablets[0].location->server_id;
  uint64_t rsrv = l->tablets[1].location->server_id;
  rpc_msg_free(l);
  if (lsrv == rsrv) {
    /* Put the right input on the other server. */
    uint64_t other = cl_tserver_id(g_c, 0) == lsrv ? cl_tserver_id(g_c, 1)
                                                   : cl_tserver_id(g_c, 0);
    rpc_move_tablet_request mv = {0};
    mv.tablet_id = right;
    mv.target_server_id = other;
    TU_OK(call_master(&rpc_m_master_move_tablet, &mv));
  }
  l = serving_tablets_of("mt");
  CU_ASSERT_FATAL(l->tablets[1].location != NULL);
  rsrv = l->tablets[1].location->server_id;
  char raddr[128];
  snprintf(raddr, sizeof(raddr), "%s", l->tablets[1].location->address);
  rpc_tablet_ref rref = {0};
  rref.tablet_id = right;
  rref.range_epoch = l->tablets[1].desc->range_epoch;
  rref.assign_epoch = l->tablets[1].location->assign_epoch;
  CU_ASSERT_NOT_EQUAL(rsrv, l->tablets[0].location->server_id);
  rpc_msg_free(l);

  /* A client with routes to both inputs. */
  mica_client *mc = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), NULL, &mc), 0);
  CU_ASSERT_EQUAL(mica_put(mc, "mt", "apple", 5, "1", 1), 0);
  CU_ASSERT_EQUAL(mica_put(mc, "mt", "zebra", 5, "2", 1), 0);
  void *v = NULL;
  size_t vn = 0;
  CU_ASSERT_EQUAL(mica_get(mc, "mt", "apple", 5, &v, &vn), 0);
  mica_free(v);
  CU_ASSERT_EQUAL(mica_get(mc, "mt", "zebra", 5, &v, &vn), 0);
  mica_free(v);
  mica_stats before;
  mica_get_stats(mc, &before);
  CU_ASSERT(before.cached_routes >= 2);

  /* The operator merges; the answer comes once the merged tablet serves. */
  rpc_merge_tablets_request mq = {0};
  mq.left_tablet_id = left;
  mq.right_tablet_id = right;
  TU_OK(call_master(&rpc_m_master_merge_tablets, &mq));
  l = serving_tablets_of("mt");
  CU_ASSERT_EQUAL_FATAL(l->n_tablets, 1);
  uint64_t merged = l->tablets[0].desc->tablet_id;
  CU_ASSERT_FATAL(l->tablets[0].location != NULL);
  char maddr[128];
  snprintf(maddr, sizeof(maddr), "%s", l->tablets[0].location->address);
  CU_ASSERT_STRING_NOT_EQUAL(maddr, raddr);
  rpc_msg_free(l);

  /* The right input's server learns the successor with a heartbeat. */
  bool learnt = false;
  uint64_t until = cl_now_ms() + 15000;
  while (!learnt && cl_now_ms() < until) {
    rpc_get_response *g = get_at(raddr, &rref, "zebra");
    const rpc_status *st = g->status;
    if (st && st->code == MICA_STALE_EPOCH && st->routing &&
        st->routing->n_current == 1) {
      const rpc_tablet_route *rt = &st->routing->current[0];
      CU_ASSERT_EQUAL(rt->desc->tablet_id, merged);
      CU_ASSERT_FATAL(rt->location != NULL);
      CU_ASSERT_STRING_EQUAL(rt->location->address, maddr);
      learnt = true;
    } else {
      /* Until then: closed here, nothing to route to. */
      CU_ASSERT(st && st->code == MICA_NOT_SERVING);
      cl_sleep_ms(50);
    }
    rpc_msg_free(g);
  }
  CU_ASSERT_FATAL(learnt);

  /* The client reaches the merged tablet from both cached inputs, without
   * a master lookup. */
  CU_ASSERT_EQUAL(mica_get(mc, "mt", "zebra", 5, &v, &vn), 0);
  CU_ASSERT(vn == 1 && memcmp(v, "2", 1) == 0);
  mica_free(v);
  CU_ASSERT_EQUAL(mica_get(mc, "mt", "apple", 5, &v, &vn), 0);
  CU_ASSERT(vn == 1 && memcmp(v, "1", 1) == 0);
  mica_free(v);
  CU_ASSERT_EQUAL(mica_put(mc, "mt", "middle", 6, "3", 1), 0);
  mica_stats after;
  mica_get_stats(mc, &after);
  CU_ASSERT_EQUAL(after.master_lookups, before.master_lookups);
  CU_ASSERT_EQUAL(after.master_calls, before.master_calls);
  /* The first answer installs the merged route, which covers (and, being
   * fresher, replaces) the cached route of the other input as well. */
  CU_ASSERT(after.routing_answers >= before.routing_answers + 1);
  mica_close(mc);
}

static const CU_TestInfo tests[] = {
    {"both_inputs_reach_merged", test_both_inputs_reach_merged},
    CU_TEST_INFO_NULL};

static void add_suites(void) {
  CU_SuiteInfo suites[] = {
      {"cluster_merge_successor", suite_init, suite_clean, NULL, NULL,
       (CU_TestInfo *)tests},
      CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
