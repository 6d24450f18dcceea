/* test_cluster_answers: a real cluster answers as mica.proto says (issue 12,
 * "Answers that do not match the proto").
 *
 *   - every routing error echoes the requested tablet id, and a
 *     STALE_EPOCH for epochs newer than the server's carries the descriptor
 *     it serves;
 *   - a request whose string field is not UTF-8 (raw bytes ff fe, sent as
 *     bytes no encoder of ours would produce) is refused with
 *     INVALID_ARGUMENT naming the field, by the master and by a tablet
 *     server, and every answer decodes under the strict UTF-8 rule;
 *   - ListTablets carries the figures of the last heartbeat (writes, bytes,
 *     memtable) as the tablet server's TabletInfo reports them;
 *   - ListEvents "assign" events name their server;
 *   - CreateTable refuses more split keys than --max-split-keys, and a
 *     table of many tablets opens (at most --max-opens per server at a
 *     time) while a move and heartbeats proceed; dropping it takes its
 *     tablets out of ListServers' counts at once;
 *   - a tablet server whose disk is below its free-space reserve says so in
 *     its heartbeats, and the master starts no merge there. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#define S(x) slice_make((x), sizeof(x) - 1)

static cluster *g_c;

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  static const char *const margs[] = {"--max-split-keys", "400",
                                      "--max-opens", "8",
                                      "--merge", "off",
                                      "--balancer", "off", NULL};
  o.master_args = margs;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

/* The serving route of `key` in `table`; caller frees *resp. */
static const rpc_tablet_route *route_in(cluster *c, const char *table,
                                        slice key,
                                        rpc_lookup_tablets_response **resp) {
  rpc_tablet_route *r = NULL;
  TU_OK(kvc_route(c, table, key, 30000, &r, resp));
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(r->location);
  return r;
}

static const rpc_tablet_route *route_of(const char *table, slice key,
                                        rpc_lookup_tablets_response **resp) {
  return route_in(g_c, table, key, resp);
}

/* A Get of `key` naming `ref`, sent to `address`. */
static rpc_get_response *get_at(const char *address, rpc_tablet_ref ref,
                                slice key) {
  rpc_get_request q = {0};
  q.tablet = &ref;
  q.key = key;
  rpc_get_response *r = NULL;
  TU_OK(rpc_unary(cl_channel(g_c, address), &rpc_m_ts_get, &q, 10000,
                  (void **)&r));
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  return r;
}

static const char *other_server(const char *address) {
  for (int i = 0; i < cl_tserver_count(g_c); i++)
    if (strcmp(cl_tserver_address(g_c, i), address) != 0)
      return cl_tserver_address(g_c, i);
  CU_FAIL_FATAL("no other server");
  return NULL;
}

static void test_routing_errors(void) {
  slice split[] = {S("m")};
  TU_OK(kvc_create_table(g_c, "route", split, 1));
  rpc_lookup_tablets_response *lr = NULL;
  const rpc_tablet_route *rt = route_of("route", S("h001"), &lr);
  const rpc_tablet_descriptor *d = rt->desc;
  const char *addr = rt->location->address;
  rpc_tablet_ref ref = {.tablet_id = d->tablet_id,
                        .range_epoch = d->range_epoch,
                        .assign_epoch = rt->location->assign_epoch};

  /* Served as asked: no error. */
  rpc_get_response *g = get_at(addr, ref, S("h001"));
  TU_OK(rpc_status_err(g->status));
  rpc_msg_free(g);

  /* A key outside the tablet: OUT_OF_RANGE with the id and the route. */
  g = get_at(addr, ref, S("z"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(g->status);
  CU_ASSERT_EQUAL(g->status->code, MICA_OUT_OF_RANGE);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g->status->routing);
  CU_ASSERT_EQUAL(g->status->routing->requested_tablet_id, d->tablet_id);
  rpc_msg_free(g);

  /* Epochs older than served: STALE_EPOCH with the id and the route. */
  rpc_tablet_ref old = ref;
  old.assign_epoch = ref.assign_epoch - 1;
  g = get_at(addr, old, S("h001"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(g->status);
  CU_ASSERT_EQUAL(g->status->code, MICA_STALE_EPOCH);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g->status->routing);
  CU_ASSERT_EQUAL(g->status->routing->requested_tablet_id, d->tablet_id);
  CU_ASSERT_EQUAL_FATAL(g->status->routing->n_current, 1);
  rpc_msg_free(g);

  /* Future epochs: still the id, and the descriptor served now. */
  static const uint64_t bumps[][2] = {{0, 5}, {3, 0}, {2, 2}};
  for (size_t i = 0; i < 3; i++) {
    rpc_tablet_ref fut = ref;
    fut.range_epoch += bumps[i][0];
    fut.assign_epoch += bumps[i][1];
    g = get_at(addr, fut, S("h001"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->status);
    CU_ASSERT_EQUAL(g->status->code, MICA_STALE_EPOCH);
    const rpc_routing_error *re = g->status->routing;
    CU_ASSERT_PTR_NOT_NULL_FATAL(re);
    CU_ASSERT_EQUAL(re->requested_tablet_id, d->tablet_id);
    CU_ASSERT_EQUAL_FATAL(re->n_current, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(re->current[0].desc);
    CU_ASSERT_EQUAL(re->current[0].desc->tablet_id, d->tablet_id);
    CU_ASSERT_EQUAL(re->current[0].desc->range_epoch, d->range_epoch);
    CU_ASSERT_PTR_NOT_NULL_FATAL(re->current[0].location);
    CU_ASSERT_EQUAL(re->current[0].location->assign_epoch, ref.assign_epoch);
    rpc_msg_free(g);
  }

  /* The other server does not serve it: NOT_SERVING; any routing error
   * that comes with it echoes the id. */
  g = get_at(other_server(addr), ref, S("h001"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(g->status);
  CU_ASSERT_EQUAL(g->status->code, MICA_NOT_SERVING);
  if (g->status->routing != NULL)
    CU_ASSERT_EQUAL(g->status->routing->requested_tablet_id, d->tablet_id);
  rpc_msg_free(g);
  rpc_msg_free(lr);
}

/* ---- non-UTF-8 strings ---- */

static void pb_len(buf *b, unsigned num, const void *data, size_t len) {
  buf_push(b, (uint8_t)(num << 3 | 2));
  CU_ASSERT_FATAL(len < 128);
  buf_push(b, (uint8_t)len);
  buf_append(b, data, len);
}

/* Sends `req` raw to `path` at `address`: refused before any handler
 * sees it, as every request that does not decode is, with the gRPC status
 * INVALID_ARGUMENT and a message (UTF-8 itself) naming `field`. */
static void expect_refused(const char *address, const char *path,
                           const buf *req, const char *field) {
  buf out = BUF_INIT;
  mica_err *e = rpc_unary_raw(cl_channel(g_c, address), path, buf_slice(req),
                              10000, &out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  const char *msg = err_msg(e);
  if (strstr(msg, field) == NULL || strstr(msg, "UTF-8") == NULL) {
    fprintf(stderr, "%s: %s\n", path, msg);
    CU_FAIL("message does not name the field");
  }
  CU_ASSERT(rpc_utf8_valid(msg, strlen(msg)));
  CU_ASSERT_EQUAL(out.len, 0);
  err_free(e);
  buf_free(&out);
}

static void test_non_utf8_refused(void) {
  static const uint8_t bad[] = {0xff, 0xfe};
  const char *master = cl_master_address(g_c);
  static const struct {
    const char *path;
    const char *field;
  } m[] = {
      {"/mica.v1.Master/CreateTable", "CreateTableRequest.name"},
      {"/mica.v1.Master/LookupTablets", "LookupTabletsRequest.table"},
      {"/mica.v1.Master/DropTable", "DropTableRequest.name"},
      {"/mica.v1.Master/ListTablets", "ListTabletsRequest.table"},
  };
  buf b = BUF_INIT, sub = BUF_INIT;
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    buf_clear(&b);
    pb_len(&b, 1, bad, sizeof bad);
    expect_refused(master, m[i].path, &b, m[i].field);
  }
  /* RegisterServer's address, and a nested one at a tablet server:
   * OpenTablet's descriptor table name, CloseTablet's moved_to address. */
  buf_clear(&b);
  pb_len(&b, 1, bad, sizeof bad);
  expect_refused(master, "/mica.v1.Master/RegisterServer", &b,
                 "RegisterServerRequest.address");
  const char *ts = cl_tserver_address(g_c, 0);
  buf_clear(&sub);
  pb_len(&sub, 3, bad, sizeof bad);
  buf_clear(&b);
  pb_len(&b, 1, sub.data, sub.len);
  expect_refused(ts, "/mica.v1.TabletServer/OpenTablet", &b,
                 "OpenTabletRequest.desc.table_name");
  buf_clear(&sub);
  pb_len(&sub, 2, bad, sizeof bad);
  buf_clear(&b);
  pb_len(&b, 2, sub.data, sub.len);
  expect_refused(ts, "/mica.v1.TabletServer/CloseTablet", &b,
                 "CloseTabletRequest.moved_to.address");
  buf_free(&b);
  buf_free(&sub);

  /* A name that is UTF-8 but not a valid table name is quoted escaped. */
  rpc_create_table_request q = {.name = "t\xc3\xa9\x01"};
  void *r = NULL;
  mica_err *e = cl_call_master(g_c, &rpc_m_master_create_table, &q, 10000, &r);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "t\\xc3\\xa9\\x01"));
  err_free(e);
  rpc_msg_free(r);
}

/* ---- figures and events ---- */

static void test_list_tablets_stats(void) {
  TU_OK(kvc_create_table(g_c, "stats", NULL, 0));
  enum { N = 166 };
  for (int i = 0; i < N; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%04d", i);
    TU_OK(kvc_put(g_c, "stats", slice_from_str(k), S("value"), 20000));
  }
  rpc_lookup_tablets_response *lr = NULL;
  const rpc_tablet_route *rt = route_of("stats", S("k"), &lr);
  uint64_t id = rt->desc->tablet_id;
  /* The server's own figures. */
  rpc_tablet_info_request iq = {.tablet_ids = &id, .n_tablet_ids = 1};
  rpc_tablet_info_response *ir = NULL;
  TU_OK(rpc_unary(cl_channel(g_c, rt->location->address),
                  &rpc_m_ts_tablet_info, &iq, 10000, (void **)&ir));
  TU_OK(rpc_status_err(ir->status));
  CU_ASSERT_EQUAL_FATAL(ir->n_tablets, 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ir->tablets[0].stats);
  CU_ASSERT_EQUAL(ir->tablets[0].stats->writes, N);
  rpc_msg_free(ir);

  /* The master's, once a heartbeat has carried them (200 ms apart). */
  bool seen = false;
  for (uint64_t end = cl_now_ms() + 15000; !seen && cl_now_ms() < end;) {
    rpc_list_tablets_request q = {.table = "stats"};
    rpc_list_tablets_response *r = NULL;
    TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 10000,
                         (void **)&r));
    CU_ASSERT_EQUAL_FATAL(r->n_tablets, 1);
    const rpc_tablet_stats *st = r->tablets[0].stats;
    if (st != NULL && st->writes == N) {
      seen = true;
      CU_ASSERT(st->write_bytes >= N * (5 + 5));
      CU_ASSERT(st->memtable_bytes > 0 || st->sstable_count > 0);
      CU_ASSERT(st->approx_bytes > 0);
    }
    rpc_msg_free(r);
    if (!seen) cl_sleep_ms(100);
  }
  CU_ASSERT(seen);
  rpc_msg_free(lr);
}

static void test_assign_events(void) {
  TU_OK(kvc_create_table(g_c, "events", NULL, 0));
  rpc_lookup_tablets_response *lr = NULL;
  const rpc_tablet_route *rt = route_of("events", S(""), &lr);
  uint64_t id = rt->desc->tablet_id;
  uint64_t srv = rt->location->server_id;
  rpc_msg_free(lr);
  rpc_list_events_request q = {0};
  rpc_list_events_response *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_events, &q, 10000,
                       (void **)&r));
  bool found = false;
  for (size_t i = 0; i < r->n_events; i++) {
    const rpc_event *e = &r->events[i];
    if (strcmp(e->kind, "assign") != 0) continue;
    CU_ASSERT_NOT_EQUAL(e->server_id, 0);
    char want[48];
    snprintf(want, sizeof want, "server %" PRIu64, e->server_id);
    CU_ASSERT_PTR_NOT_NULL(strstr(e->text, want));
    if (e->tablet_id == id) {
      found = true;
      CU_ASSERT_EQUAL(e->server_id, srv);
    }
  }
  CU_ASSERT(found);
  rpc_msg_free(r);
}

/* ---- many tablets ---- */

static uint32_t listed_tablets(void) {
  rpc_list_servers_request q = {0};
  rpc_list_servers_response *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 10000,
                       (void **)&r));
  uint32_t n = 0;
  for (size_t i = 0; i < r->n_servers; i++) {
    CU_ASSERT_EQUAL(r->servers[i].state, RPC_SERVER_LIVE);
    n += r->servers[i].tablet_count;
  }
  rpc_msg_free(r);
  return n;
}

static size_t serving_of(const char *table, size_t *total) {
  rpc_list_tablets_request q = {.table = table};
  rpc_list_tablets_response *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 10000,
                       (void **)&r));
  size_t n = 0;
  for (size_t i = 0; i < r->n_tablets; i++)
    n += r->tablets[i].state == RPC_TABLET_SERVING;
  *total = r->n_tablets;
  rpc_msg_free(r);
  return n;
}

static void test_many_tablets(void) {
  enum { CAP = 400, N = 300 };
  slice *keys = xcalloc(CAP + 1, sizeof(*keys));
  char (*kb)[8] = xcalloc(CAP + 1, sizeof(*kb));
  for (int i = 0; i <= CAP; i++) {
    snprintf(kb[i], sizeof kb[i], "k%04d", i);
    keys[i] = slice_from_str(kb[i]);
  }
  /* Over the cap: refused, naming it. */
  rpc_create_table_request q = {.name = "toomany", .split_keys = keys,
                                .n_split_keys = CAP + 1};
  void *r = NULL;
  mica_err *e = cl_call_master(g_c, &rpc_m_master_create_table, &q, 10000, &r);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "cap of 400 split keys"));
  err_free(e);
  rpc_msg_free(r);

  uint32_t before = listed_tablets();
  TU_OK(kvc_create_table(g_c, "many", keys, N));
  /* While its tablets open, a move of another table's tablet completes. */
  rpc_lookup_tablets_response *lr = NULL;
  const rpc_tablet_route *rt = route_of("route", S("a"), &lr);
  rpc_move_tablet_request mq = {.tablet_id = rt->desc->tablet_id};
  rpc_move_tablet_response *mr = NULL;
  size_t total = 0;
  size_t serving_at_move = serving_of("many", &total);
  TU_OK(cl_call_master(g_c, &rpc_m_master_move_tablet, &mq, 30000,
                       (void **)&mr));
  CU_ASSERT_PTR_NOT_NULL_FATAL(mr->tablet);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mr->tablet->location);
  CU_ASSERT_NOT_EQUAL(mr->tablet->location->server_id,
                      rt->location->server_id);
  rpc_msg_free(mr);
  rpc_msg_free(lr);
  fprintf(stderr, "  [%zu of %d tablets serving when the move started]\n",
          serving_at_move, N + 1);
  /* Every tablet opens, and the servers stay live throughout. */
  size_t serving = 0;
  for (uint64_t end = cl_now_ms() + 120000;
       (serving = serving_of("many", &total)) < N + 1 && cl_now_ms() < end;)
    cl_sleep_ms(200);
  CU_ASSERT_EQUAL_FATAL(serving, N + 1);
  CU_ASSERT_EQUAL(total, N + 1);
  CU_ASSERT_EQUAL(listed_tablets(), before + N + 1);

  /* Dropped: out of the per-server counts at once. */
  rpc_drop_table_request dq = {.name = "many"};
  r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_drop_table, &dq, 10000, &r));
  rpc_msg_free(r);
  CU_ASSERT_EQUAL(listed_tablets(), before);
  free(keys);
  free(kb);
}

/* ---- a server below its free-space reserve ---- */

static cluster *g_low;

/* One tablet server whose reserve exceeds any disk: its data root is always
 * "below the reserve", which its heartbeats must tell the master. */
static int low_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  static const char *const targs[] = {"--reserve-space", "1000000G", NULL};
  static const char *const margs[] = {"--balancer", "off", NULL};
  o.tserver_args = targs;
  o.master_args = margs;
  return cl_suite_start(&o, &g_low);
}

static int low_clean(void) { return cl_suite_stop(&g_low); }

static void test_disk_low_no_merge(void) {
  slice split[] = {S("m")};
  TU_OK(kvc_create_table(g_low, "low", split, 1));
  rpc_lookup_tablets_response *la = NULL, *lb = NULL;
  const rpc_tablet_route *a = route_in(g_low, "low", S("a"), &la);
  const rpc_tablet_route *b = route_in(g_low, "low", S("x"), &lb);
  uint64_t srv = a->location->server_id;

  /* The master learns it from the heartbeats (200 ms apart). */
  bool seen = false;
  for (uint64_t end = cl_now_ms() + 15000; !seen && cl_now_ms() < end;) {
    rpc_list_events_request q = {0};
    rpc_list_events_response *r = NULL;
    TU_OK(cl_call_master(g_low, &rpc_m_master_list_events, &q, 10000,
                         (void **)&r));
    for (size_t i = 0; i < r->n_events && !seen; i++)
      seen = strcmp(r->events[i].kind, "disk") == 0 &&
             r->events[i].server_id == srv &&
             strstr(r->events[i].text, "below") != NULL;
    rpc_msg_free(r);
    if (!seen) cl_sleep_ms(100);
  }
  CU_ASSERT_FATAL(seen);

  /* No merge starts there. */
  rpc_merge_tablets_request mq = {.left_tablet_id = a->desc->tablet_id,
                                  .right_tablet_id = b->desc->tablet_id};
  void *r = NULL;
  mica_err *e = cl_call_master(g_low, &rpc_m_master_merge_tablets, &mq,
                               10000, &r);
  CU_ASSERT_EQUAL(err_code(e), MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "reserve"));
  err_free(e);
  rpc_msg_free(r);
  /* Reads are still served. */
  bool found = true;
  buf v = BUF_INIT;
  TU_OK(kvc_get(g_low, "low", S("a"), &found, &v, 10000));
  CU_ASSERT_FALSE(found);
  buf_free(&v);
  rpc_msg_free(la);
  rpc_msg_free(lb);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"routing errors echo the tablet id", test_routing_errors},
      {"non-UTF-8 strings refused", test_non_utf8_refused},
      {"ListTablets stats from heartbeats", test_list_tablets_stats},
      {"assign events name the server", test_assign_events},
      {"many tablets: cap, paced opens, drop", test_many_tablets},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo low[] = {
      {"disk below reserve: no merge", test_disk_low_no_merge},
      CU_TEST_INFO_NULL};
  CU_SuiteInfo suites[] = {
      {"answers", suite_init, suite_clean, NULL, NULL, (CU_TestInfo *)tests},
      {"disk_low", low_init, low_clean, NULL, NULL, (CU_TestInfo *)low},
      CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
