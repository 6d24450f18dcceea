/* test_client_fake: libmica against a scripted in-process server that plays
 * both master and tablet server, for the answers a real cluster gives only
 * by bad luck or never: routing errors carrying old news (which must not
 * be followed), a server that cannot be reached, a tablet that stays
 * without a location, the master answering UNAVAILABLE for a while, rows
 * out of order in a scan, a multi-get answer of the wrong shape, and the
 * prefetch count and backoff bounds the client uses.
 *
 * The fake serves one table "t" with one tablet (id 7, range epoch 3,
 * assign epoch 5) on its own address unless a test changes `g`. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "mica/mica.h"
#include "proto/rpc.h"
#include "tests/harness/testutil.h"

enum get_mode {
  GET_OK,        /* found, value "v" */
  GET_OLD_NEWS,  /* NOT_SERVING, moved_to an OLDER assign epoch */
  GET_MOVED,     /* NOT_SERVING, moved_to a newer epoch on this server */
};

static struct {
  rpc_server *srv;
  char address[64];
  char route_address[64]; /* what LookupTablets names */
  bool no_location;
  atomic_int lookups, gets, lookups_unavailable;
  atomic_uint last_count;
  int get_mode;
  uint64_t serve_epoch; /* assign epoch the fake tablet accepts */
  bool scan_out_of_order;
  bool multi_get_short;
} g;

static uint64_t now_ms(void) { return env_now_micros(env_posix()) / 1000; }

static void fill_route(rpc_tablet_route *r, rpc_tablet_descriptor *d,
                       rpc_location *l, uint64_t assign_epoch) {
  memset(r, 0, sizeof *r);
  memset(d, 0, sizeof *d);
  memset(l, 0, sizeof *l);
  d->tablet_id = 7;
  d->table_id = 1;
  d->table_name = "t";
  d->range_epoch = 3;
  r->desc = d;
  l->server_id = 1;
  l->address = g.route_address;
  l->assign_epoch = assign_epoch;
  if (!g.no_location) r->location = l;
}

static void h_lookup(rpc_call *call, const void *req, void *ctx) {
  (void)ctx;
  const rpc_lookup_tablets_request *q = (const rpc_lookup_tablets_request *)req;
  atomic_fetch_add(&g.lookups, 1);
  atomic_store(&g.last_count, q->count);
  rpc_lookup_tablets_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  mica_err *e = NULL;
  if (strcmp(q->table, "t") != 0) e = err_new(MICA_NOT_FOUND, "table '%s' not found", q->table);
  else if (atomic_load(&g.lookups_unavailable) > 0) {
    atomic_fetch_sub(&g.lookups_unavailable, 1);
    e = err_new(MICA_UNAVAILABLE, "master starting");
  }
  rpc_status_set(&st, e);
  resp.status = &st;
  rpc_tablet_route r;
  rpc_tablet_descriptor d;
  rpc_location l;
  if (e == NULL) {
    fill_route(&r, &d, &l, g.serve_epoch);
    resp.tablets = &r;
    resp.n_tablets = 1;
  }
  rpc_call_reply(call, &resp);
  err_free(e);
}

static void h_get(rpc_call *call, const void *req, void *ctx) {
  (void)ctx;
  const rpc_get_request *q = (const rpc_get_request *)req;
  atomic_fetch_add(&g.gets, 1);
  rpc_get_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_routing_error re = {0};
  rpc_location moved = {0};
  mica_err *e = NULL;
  if (g.get_mode == GET_OLD_NEWS) {
    moved.server_id = 2;
    moved.address = g.address;
    moved.assign_epoch = q->tablet->assign_epoch - 1; /* older than asked */
    re.moved_to = &moved;
    e = err_new(MICA_NOT_SERVING, "tablet 7 moved (old news)");
  } else if (q->tablet->assign_epoch != g.serve_epoch) {
    moved.server_id = 1;
    moved.address = g.address;
    moved.assign_epoch = g.serve_epoch;
    re.moved_to = &moved;
    e = err_new(MICA_NOT_SERVING, "tablet 7 moved");
  }
  rpc_status_set(&st, e);
  if (e != NULL) st.routing = &re;
  resp.status = &st;
  if (e == NULL) {
    resp.found = true;
    resp.value.data = (uint8_t *)"v";
    resp.value.len = 1;
  }
  rpc_call_reply(call, &resp);
  err_free(e);
}

static void h_multi_get(rpc_call *call, const void *req, void *ctx) {
  (void)ctx;
  const rpc_multi_get_request *q = (const rpc_multi_get_request *)req;
  rpc_multi_get_response resp = {0};
  rpc_status st, pst;
  memset(&st, 0, sizeof st);
  memset(&pst, 0, sizeof pst);
  resp.status = &st;
  rpc_multi_get_part_result pr = {0};
  pr.status = &pst;
  rpc_get_result res = {0};
  res.found = true;
  res.value.data = (uint8_t *)"v";
  res.value.len = 1;
  rpc_get_result rv[64];
  size_t nk = q->n_parts ? q->parts[0].n_keys : 0;
  for (size_t i = 0; i < nk && i < 64; i++) rv[i] = res;
  pr.results = rv;
  pr.n_results = g.multi_get_short && nk > 0 ? nk - 1 : nk;
  resp.parts = &pr;
  resp.n_parts = q->n_parts ? 1 : 0;
  rpc_call_reply(call, &resp);
}

static void h_scan(rpc_call *call, const void *req, void *ctx) {
  (void)ctx;
  (void)req;
  rpc_scan_chunk ch = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  ch.status = &st;
  rpc_key_value kv[3];
  const char *keys[3] = {"a", "c", "b"}; /* "b" after "c" when out of order */
  size_t n = g.scan_out_of_order ? 3 : 2;
  for (size_t i = 0; i < n; i++) {
    memset(&kv[i], 0, sizeof kv[i]);
    kv[i].key.data = (uint8_t *)keys[i];
    kv[i].key.len = 1;
  }
  ch.rows = kv;
  ch.n_rows = n;
  ch.last = true;
  ch.end = RPC_SCAN_END_RANGE;
  rpc_tablet_descriptor d = {0};
  d.tablet_id = 7;
  d.range_epoch = 3;
  ch.tablet = &d;
  mica_err *e = rpc_call_send(call, &ch);
  err_free(e);
  rpc_call_finish(call, NULL);
}

static int suite_init(void) {
  rpc_server_opts o = {0};
  o.listen = "127.0.0.1:0";
  o.threads = 1;
  if (rpc_server_new(&o, &g.srv) != NULL) return 1;
  rpc_handler h[] = {
      {&rpc_m_master_lookup_tablets, h_lookup, NULL, 0},
      {&rpc_m_ts_get, h_get, NULL, 0},
      {&rpc_m_ts_multi_get, h_multi_get, NULL, 0},
      {&rpc_m_ts_scan, h_scan, NULL, 0},
  };
  if (rpc_server_register(g.srv, h, sizeof h / sizeof h[0]) != NULL) return 1;
  if (rpc_server_start(g.srv) != NULL) return 1;
  snprintf(g.address, sizeof g.address, "%s", rpc_server_address(g.srv));
  return 0;
}

static int suite_clean(void) {
  rpc_server_free(g.srv);
  return 0;
}

/* Resets the script: a healthy tablet on the fake's own address. */
static void reset(void) {
  snprintf(g.route_address, sizeof g.route_address, "%s", g.address);
  g.no_location = false;
  atomic_store(&g.lookups, 0);
  atomic_store(&g.gets, 0);
  atomic_store(&g.lookups_unavailable, 0);
  g.get_mode = GET_OK;
  g.serve_epoch = 5;
  g.scan_out_of_order = false;
  g.multi_get_short = false;
}

static mica_client *open_fake(int64_t deadline_ms, uint32_t prefetch) {
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = deadline_ms;
  o.prefetch = prefetch;
  mica_client *c = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(g.address, &o, &c), MICA_OK);
  return c;
}

static int get(mica_client *c) {
  void *v = NULL;
  size_t n = 0;
  int rc = mica_get(c, "t", "k", 1, &v, &n);
  if (rc == MICA_OK) CU_ASSERT(n == 1 && memcmp(v, "v", 1) == 0);
  mica_free(v);
  return rc;
}

static void test_prefetch_and_cache(void) {
  reset();
  mica_client *c = open_fake(2000, 17);
  CU_ASSERT_EQUAL(get(c), MICA_OK);
  CU_ASSERT_EQUAL(get(c), MICA_OK);
  CU_ASSERT_EQUAL(atomic_load(&g.lookups), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.last_count), 17);
  mica_stats s;
  mica_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.master_lookups, 1);
  CU_ASSERT_EQUAL(s.cache_misses, 1);
  CU_ASSERT_EQUAL(s.cache_hits, 1);
  CU_ASSERT_EQUAL(s.server_rpcs, 2);
  void *v = NULL;
  size_t n;
  CU_ASSERT_EQUAL(mica_get(c, "other", "k", 1, &v, &n), MICA_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "other"));
  mica_close(c);
}

/* A move answer newer than the cached route is followed at once; one that
 * is older than what the client used is not (it goes to the master). */
static void test_moved_newer_and_old_news(void) {
  reset();
  mica_client *c = open_fake(2000, 4);
  CU_ASSERT_EQUAL(get(c), MICA_OK);
  g.serve_epoch = 6; /* "moved" to epoch 6 on the same address */
  CU_ASSERT_EQUAL(get(c), MICA_OK);
  mica_stats s;
  mica_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.routing_answers, 1);
  CU_ASSERT_EQUAL(s.master_lookups, 1);

  /* Old news: every answer points at an older epoch. The client must not
   * bounce on it: it asks the master, backs off, and gives up at its
   * deadline with the server's message. */
  g.get_mode = GET_OLD_NEWS;
  uint64_t t0 = now_ms();
  int rc = get(c);
  uint64_t took = now_ms() - t0;
  CU_ASSERT(rc == MICA_DEADLINE_EXCEEDED || rc == MICA_NOT_SERVING);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "old news"));
  mica_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.routing_answers, 1); /* none followed */
  CU_ASSERT(s.master_lookups > 2);
  /* Backoff keeps the attempts few: far below one per millisecond. */
  CU_ASSERT(atomic_load(&g.gets) < 40);
  CU_ASSERT(took >= 1500 && took < 3500);
  mica_close(c);
}

static void test_unreachable_server(void) {
  reset();
  snprintf(g.route_address, sizeof g.route_address, "127.0.0.1:1");
  mica_client *c = open_fake(1500, 4);
  uint64_t t0 = now_ms();
  int rc = get(c);
  uint64_t took = now_ms() - t0;
  CU_ASSERT(rc == MICA_DEADLINE_EXCEEDED || rc == MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "server 127.0.0.1:1"));
  CU_ASSERT(took >= 1000 && took < 3000);
  /* Each failure dropped the route, so each attempt asked the master. */
  mica_stats s;
  mica_get_stats(c, &s);
  CU_ASSERT(s.master_lookups >= 3);
  CU_ASSERT_EQUAL(s.master_lookups, s.retries + 1);
  mica_close(c);
}

static void test_no_location_then_master_unavailable(void) {
  reset();
  g.no_location = true;
  mica_client *c = open_fake(800, 4);
  CU_ASSERT_EQUAL(get(c), MICA_DEADLINE_EXCEEDED);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "has no server yet"));
  CU_ASSERT_EQUAL(atomic_load(&g.gets), 0);
  mica_close(c);

  reset();
  atomic_store(&g.lookups_unavailable, 3);
  c = open_fake(5000, 4);
  CU_ASSERT_EQUAL(get(c), MICA_OK);
  CU_ASSERT_EQUAL(atomic_load(&g.lookups), 4);
  mica_stats s;
  mica_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.retries, 3);
  mica_close(c);

  /* A budget of attempts ends the retries before the deadline. */
  reset();
  atomic_store(&g.lookups_unavailable, 100);
  mica_options o;
  mica_options_init(&o);
  o.max_attempts = 3;
  CU_ASSERT_EQUAL_FATAL(mica_open(g.address, &o, &c), MICA_OK);
  CU_ASSERT_EQUAL(get(c), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "3 attempts"));
  CU_ASSERT_EQUAL(atomic_load(&g.lookups), 3);
  mica_close(c);
}

static void test_bad_server_answers(void) {
  reset();
  mica_client *c = open_fake(2000, 4);
  mica_scanner *s = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_scan_open(c, "t", NULL, &s), MICA_OK);
  int has;
  const void *k, *v;
  size_t kl, vl;
  CU_ASSERT_EQUAL(mica_scan_next(s, &has, &k, &kl, &v, &vl), MICA_OK);
  CU_ASSERT(has && kl == 1 && memcmp(k, "a", 1) == 0);
  CU_ASSERT_EQUAL(mica_scan_next(s, &has, &k, &kl, &v, &vl), MICA_OK);
  CU_ASSERT(has && kl == 1 && memcmp(k, "c", 1) == 0);
  CU_ASSERT_EQUAL(mica_scan_next(s, &has, &k, &kl, &v, &vl), MICA_OK);
  CU_ASSERT_EQUAL(has, 0);
  mica_scan_close(s);

  g.scan_out_of_order = true;
  CU_ASSERT_EQUAL_FATAL(mica_scan_open(c, "t", NULL, &s), MICA_OK);
  CU_ASSERT_EQUAL(mica_scan_next(s, &has, &k, &kl, &v, &vl), MICA_OK);
  CU_ASSERT_EQUAL(mica_scan_next(s, &has, &k, &kl, &v, &vl), MICA_OK);
  CU_ASSERT_EQUAL(mica_scan_next(s, &has, &k, &kl, &v, &vl), MICA_INTERNAL);
  CU_ASSERT_EQUAL(has, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "out of order"));
  mica_scan_close(s);

  mica_key keys[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
  mica_value *vals = NULL;
  CU_ASSERT_EQUAL(mica_multi_get(c, "t", keys, 3, &vals), MICA_OK);
  for (int i = 0; i < 3; i++) CU_ASSERT(vals[i].code == MICA_OK && vals[i].len == 1);
  mica_free(vals);
  g.multi_get_short = true;
  CU_ASSERT_EQUAL(mica_multi_get(c, "t", keys, 3, &vals), MICA_INTERNAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "results for 3 keys"));
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(vals[i].code, MICA_INTERNAL);
  mica_free(vals);
  mica_close(c);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"prefetch_and_cache", test_prefetch_and_cache},
      {"moved_newer_and_old_news", test_moved_newer_and_old_news},
      {"unreachable_server", test_unreachable_server},
      {"no_location_then_master_unavailable", test_no_location_then_master_unavailable},
      {"bad_server_answers", test_bad_server_answers},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("client_fake", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName; t++) CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
