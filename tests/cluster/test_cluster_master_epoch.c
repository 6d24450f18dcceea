/* test_cluster_master_epoch: master-epoch fencing of the tablet servers
 * (docs/ha.md, "Fencing the tablet servers").
 *
 * A master run without ZooKeeper has master epoch 0. The test plays a
 * newer master: it sends one of its own commands to a tablet server with
 * master epoch 7. From then on the server must refuse what the real
 * (now deposed) master says:
 *
 *  - commands naming an older epoch (CloseTablet, OpenTablet,
 *    TsSplitTablet) are answered STALE_MASTER, naming both epochs, and
 *    change nothing: the tablet still serves;
 *  - the real master's heartbeat answers (epoch 0) renew no lease, so the
 *    server stops acknowledging writes within one lease;
 *  - an operator's split through the real master reaches the server, is
 *    refused STALE_MASTER, and the master, told so, exits with status 3
 *    without further action. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static void test_old_master_refused(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.lease_ms = 1500;
  o.lease_margin_ms = 300;
  cluster *c = NULL;
  TU_OK(cl_start(&o, &c));
  if (c == NULL) return;
  TU_OK(kvc_create_table(c, "t", NULL, 0));
  TU_OK(kvc_put(c, "t", slice_from_str("a"), slice_from_str("1"), 10000));
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

  /* A newer master's command: closing a tablet the server never had is
   * NOT_SERVING, and the server has now seen master epoch 7. */
  rpc_tablet_ref none = {0};
  none.tablet_id = 987654321;
  none.assign_epoch = 1;
  rpc_close_tablet_request cq = {0};
  cq.tablet = &none;
  cq.master_epoch = 7;
  void *resp = NULL;
  mica_err *err = cl_call(c, ts, &rpc_m_ts_close_tablet, &cq, 5000, &resp);
  CU_ASSERT_EQUAL(err_code(err), MICA_NOT_SERVING);
  err_free(err);
  rpc_msg_free(resp);

  /* Epoch 6 closing the real tablet: refused, naming both epochs. */
  cq.tablet = &ref;
  cq.master_epoch = 6;
  resp = NULL;
  err = cl_call(c, ts, &rpc_m_ts_close_tablet, &cq, 5000, &resp);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_MASTER);
  if (err != NULL) {
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "master epoch 6"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "seen master epoch 7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "CloseTablet"));
  }
  err_free(err);
  rpc_msg_free(resp);

  /* OpenTablet and TsSplitTablet from the real master's epoch 0. */
  rpc_open_tablet_request oq = {0};
  oq.desc = rt->desc;
  oq.assign_epoch = ref.assign_epoch + 1;
  oq.tablet_dir = "";
  resp = NULL;
  err = cl_call(c, ts, &rpc_m_ts_open_tablet, &oq, 5000, &resp);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_MASTER);
  err_free(err);
  rpc_msg_free(resp);
  rpc_ts_split_tablet_request sq = {0};
  sq.tablet = &ref;
  sq.split_key = slice_from_str("m");
  resp = NULL;
  err = cl_call(c, ts, &rpc_m_ts_split_tablet, &sq, 5000, &resp);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_MASTER);
  err_free(err);
  rpc_msg_free(resp);

  /* Nothing changed: the tablet serves under its epochs. */
  rpc_get_request gq = {0};
  gq.tablet = &ref;
  gq.key = slice_from_str("a");
  resp = NULL;
  err = cl_call(c, ts, &rpc_m_ts_get, &gq, 5000, &resp);
  /* OK, or LEASE_EXPIRED if the refused heartbeats already let it end. */
  CU_ASSERT(err == NULL || err_code(err) == MICA_LEASE_EXPIRED);
  if (err == NULL) {
    const rpc_get_response *g = resp;
    CU_ASSERT(g->found);
  }
  err_free(err);
  rpc_msg_free(resp);

  /* The real master's heartbeat answers carry epoch 0: no renewal, so
   * writes are refused within the lease (1.5 s) plus a heartbeat. */
  rpc_put_request pq = {0};
  pq.tablet = &ref;
  pq.key = slice_from_str("b");
  pq.value = slice_from_str("2");
  int last = MICA_OK;
  for (uint64_t until = cl_now_ms() + 5000; cl_now_ms() < until;) {
    resp = NULL;
    err = cl_call(c, ts, &rpc_m_ts_put, &pq, 5000, &resp);
    last = err_code(err);
    err_free(err);
    rpc_msg_free(resp);
    if (last == MICA_LEASE_EXPIRED) break;
    cl_sleep_ms(100);
  }
  CU_ASSERT_EQUAL(last, MICA_LEASE_EXPIRED);

  /* An operator's split through the deposed master: the server refuses
   * it, the master says why and exits 3. */
  rpc_split_tablet_request mq = {0};
  mq.tablet_id = ref.tablet_id;
  mq.split_key = slice_from_str("m");
  resp = NULL;
  err = cl_call_master(c, &rpc_m_master_split_tablet, &mq, 10000, &resp);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_MASTER);
  err_free(err);
  rpc_msg_free(resp);
  /* The master is gone within a moment: it answers nothing. */
  int code = MICA_OK;
  for (uint64_t until = cl_now_ms() + 5000; cl_now_ms() < until;) {
    rpc_list_tables_request lq = {0};
    resp = NULL;
    err = cl_call_master(c, &rpc_m_master_list_tables, &lq, 1000, &resp);
    code = err_code(err);
    err_free(err);
    rpc_msg_free(resp);
    if (code == MICA_UNAVAILABLE) break;
    cl_sleep_ms(50);
  }
  CU_ASSERT_EQUAL(code, MICA_UNAVAILABLE);
  err = cl_stop_master(c);
  CU_ASSERT_PTR_NOT_NULL(err); /* it exited by itself, with status 3 */
  if (err != NULL) CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "status 768"));
  err_free(err);
  rpc_msg_free(lk);
  cl_free(c);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("master_epoch", NULL, NULL);
  CU_add_test(s, "old_master_refused", test_old_master_refused);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
