/* test_cluster_basic: the master and three tablet servers as real processes
 * on loopback, driven through the protocol: create / lookup / put / get,
 * pre-split tables, every bad request answered with a clear error, manual
 * split and move, balancer dry run and apply, merges (manual and of emptied
 * tablets), drop table with its files deleted, the master's flags, and a
 * clean exit on SIGTERM.
 *
 * One cluster serves the whole suite (starting one costs seconds); tests
 * use their own tables. Automatic merges are off at start so split tests
 * see their daughters, and the merge test switches them on. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/harness/cluster.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/testutil.h"

static cluster *g_c;

static const char *const g_master_args[] = {
    "--merge", "off", "--merge-min-age-ms", "500", "--merge-max-rate", "1000",
    NULL};

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.master_args = g_master_args;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static slice S(const char *s) { return slice_from_str(s); }

/* ---- helpers over master calls ---- */

static rpc_list_tablets_response *list_tablets(const char *table) {
  rpc_list_tablets_request q = {0};
  q.table = (char *)table;
  void *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000, &r));
  return (rpc_list_tablets_response *)r;
}

/* Waits until every tablet of `table` serves; returns the listing. */
static rpc_list_tablets_response *wait_serving(const char *table,
                                                   int timeout_ms) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    rpc_list_tablets_response *r = list_tablets(table);
    bool all = r->n_tablets > 0;
    for (size_t i = 0; i < r->n_tablets; i++)
      all = all && r->tablets[i].state == RPC_TABLET_SERVING;
    if (all) return r;
    rpc_msg_free(r);
    if (cl_now_ms() > until) {
      CU_FAIL_FATAL("tablets did not all serve in time");
    }
    cl_sleep_ms(20);
  }
}

static bool key_eq(slice b, const char *s) {
  return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

static void put_keys(const char *table, const char *fmt, int n) {
  for (int i = 0; i < n; i++) {
    char k[64], v[80];
    snprintf(k, sizeof(k), fmt, i);
    snprintf(v, sizeof(v), "value-%s", k);
    TU_OK(kvc_put(g_c, table, S(k), S(v), 20000));
  }
}

static void check_keys(const char *table, const char *fmt, int n) {
  buf v = BUF_INIT;
  for (int i = 0; i < n; i++) {
    char k[64], want[80];
    snprintf(k, sizeof(k), fmt, i);
    snprintf(want, sizeof(want), "value-%s", k);
    bool found = false;
    TU_OK(kvc_get(g_c, table, S(k), &found, &v, 20000));
    CU_ASSERT_TRUE(found);
    CU_ASSERT_TRUE(found && slice_eq(buf_slice(&v), S(want)));
  }
  buf_free(&v);
}

/* Asserts `err` has `code` and a message containing `needle`. */
static void expect(mica_err *err, int code, const char *needle,
                   const char *what) {
  if (err_code(err) != code ||
      (needle && (err == NULL || strstr(err_msg(err), needle) == NULL)))
    fprintf(stderr, "\n%s: got %s \"%s\", want %s mentioning \"%s\"\n", what,
            mica_code_name(err_code(err)), err ? err_msg(err) : "",
            mica_code_name(code), needle ? needle : "");
  CU_ASSERT_EQUAL(err_code(err), code);
  if (needle) CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), needle) : NULL);
  err_free(err);
}

static mica_err *split(uint64_t tablet, const char *key,
                       rpc_split_tablet_response **out) {
  rpc_split_tablet_request q = {0};
  q.tablet_id = tablet;
  if (key) {
    q.split_key.data = (uint8_t *)key;
    q.split_key.len = strlen(key);
  }
  void *r = NULL;
  mica_err *err = cl_call_master(g_c, &rpc_m_master_split_tablet, &q,
                                 30000, &r);
  if (out && err == NULL) *out = (rpc_split_tablet_response *)r;
  else rpc_msg_free(r);
  return err;
}

static mica_err *move(uint64_t tablet, uint64_t target,
                      rpc_move_tablet_response **out) {
  rpc_move_tablet_request q = {0};
  q.tablet_id = tablet;
  q.target_server_id = target;
  void *r = NULL;
  mica_err *err = cl_call_master(g_c, &rpc_m_master_move_tablet, &q,
                                 30000, &r);
  if (out && err == NULL) *out = (rpc_move_tablet_response *)r;
  else rpc_msg_free(r);
  return err;
}

static mica_err *configure(int balancer, int merge) {
  rpc_configure_request q = {0};
  if (balancer >= 0) {
    q.has_balancer_enabled = true;
    q.balancer_enabled = balancer;
  }
  if (merge >= 0) {
    q.has_merge_enabled = true;
    q.merge_enabled = merge;
  }
  return cl_call_master(g_c, &rpc_m_master_configure, &q, 5000, NULL);
}

/* ---- tests ---- */

static void test_create_lookup_put_get(void) {
  TU_OK(kvc_create_table(g_c, "t1", NULL, 0));
  rpc_list_tablets_response *lt = wait_serving("t1", 10000);
  CU_ASSERT_EQUAL_FATAL(lt->n_tablets, 1);
  CU_ASSERT_EQUAL(lt->tablets[0].desc->start_key.len, 0);
  CU_ASSERT_EQUAL(lt->tablets[0].desc->end_key.len, 0);
  CU_ASSERT_STRING_EQUAL(lt->tablets[0].desc->table_name, "t1");
  uint64_t id = lt->tablets[0].desc->tablet_id;
  rpc_msg_free(lt);

  rpc_lookup_tablets_response *r = NULL;
  TU_OK(kvc_lookup(g_c, "t1", S("anything"), 5, false, &r));
  CU_ASSERT_EQUAL_FATAL(r->n_tablets, 1);
  CU_ASSERT_EQUAL(r->tablets[0].desc->tablet_id, id);
  CU_ASSERT_PTR_NOT_NULL_FATAL(r->tablets[0].location);
  /* The location names one of our running servers. */
  CU_ASSERT_TRUE(cl_tserver_slot(g_c, r->tablets[0].location->address) >= 0);
  rpc_msg_free(r);

  put_keys("t1", "key%04d", 100);
  check_keys("t1", "key%04d", 100);
  bool found = true;
  buf v = BUF_INIT;
  TU_OK(kvc_get(g_c, "t1", S("missing"), &found, &v, 5000));
  CU_ASSERT_FALSE(found);
  buf_free(&v);

  /* The status server answers. */
  CU_ASSERT_TRUE(strlen(cl_master_http_address(g_c)) > 0);

  /* The table is listed with its tablet. */
  rpc_list_tables_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tables, &q, 5000, &m));
  const rpc_list_tables_response *tl = (const void *)m;
  bool listed = false;
  for (size_t i = 0; i < tl->n_tables; i++)
    if (strcmp(tl->tables[i].name, "t1") == 0)
      listed = tl->tables[i].tablet_count == 1;
  CU_ASSERT_TRUE(listed);
  rpc_msg_free(m);
}

/* t2's keys, ten in each of its three tablets. */
static void check_t2(void) {
  check_keys("t2", "a%02d", 10);
  check_keys("t2", "h%02d", 10);
  check_keys("t2", "q%02d", 10);
}

static void test_presplit(void) {
  slice splits[] = {S("g"), S("p")};
  TU_OK(kvc_create_table(g_c, "t2", splits, 2));
  rpc_list_tablets_response *lt = wait_serving("t2", 10000);
  CU_ASSERT_EQUAL_FATAL(lt->n_tablets, 3);
  CU_ASSERT_TRUE(key_eq(lt->tablets[0].desc->end_key, "g"));
  CU_ASSERT_TRUE(key_eq(lt->tablets[1].desc->start_key, "g"));
  CU_ASSERT_TRUE(key_eq(lt->tablets[1].desc->end_key, "p"));
  CU_ASSERT_TRUE(key_eq(lt->tablets[2].desc->start_key, "p"));
  /* Assignment spreads new tablets over the least-loaded servers. */
  uint64_t s0 = lt->tablets[0].location->server_id;
  bool spread = false;
  for (size_t i = 1; i < 3; i++)
    spread |= lt->tablets[i].location->server_id != s0;
  CU_ASSERT_TRUE(spread);
  rpc_msg_free(lt);

  rpc_lookup_tablets_response *r = NULL;
  TU_OK(kvc_lookup(g_c, "t2", S("h"), 5, false, &r));
  CU_ASSERT_EQUAL_FATAL(r->n_tablets, 2);
  CU_ASSERT_TRUE(key_eq(r->tablets[0].desc->start_key, "g"));
  CU_ASSERT_TRUE(key_eq(r->tablets[1].desc->start_key, "p"));
  rpc_msg_free(r);
  /* A key equal to a boundary belongs to the tablet starting there. */
  TU_OK(kvc_lookup(g_c, "t2", S("p"), 1, false, &r));
  CU_ASSERT_TRUE(key_eq(r->tablets[0].desc->start_key, "p"));
  rpc_msg_free(r);
  /* Before mode: the tablet holding keys just below "p", then downwards. */
  TU_OK(kvc_lookup(g_c, "t2", S("p"), 5, true, &r));
  CU_ASSERT_EQUAL_FATAL(r->n_tablets, 2);
  CU_ASSERT_TRUE(key_eq(r->tablets[0].desc->start_key, "g"));
  CU_ASSERT_EQUAL(r->tablets[1].desc->start_key.len, 0);
  rpc_msg_free(r);
  /* Before mode with an empty key: the last tablet. */
  TU_OK(kvc_lookup(g_c, "t2", slice_make("", 0), 1, true, &r));
  CU_ASSERT_TRUE(key_eq(r->tablets[0].desc->start_key, "p"));
  rpc_msg_free(r);

  put_keys("t2", "a%02d", 10);
  put_keys("t2", "h%02d", 10);
  put_keys("t2", "q%02d", 10);
  check_t2();
}

static uint64_t first_tablet(const char *table, const char *key) {
  rpc_lookup_tablets_response *r = NULL;
  TU_OK(kvc_lookup(g_c, table, S(key), 1, false, &r));
  uint64_t id = r->tablets[0].desc->tablet_id;
  rpc_msg_free(r);
  return id;
}

static int find_dead_slot = -1;

static void test_bad_requests(void) {
  expect(kvc_create_table(g_c, "t1", NULL, 0), MICA_ALREADY_EXISTS, "t1",
         "duplicate table");
  expect(kvc_create_table(g_c, "bad name", NULL, 0), MICA_INVALID_ARGUMENT,
         "bad name", "bad table name");
  expect(kvc_create_table(g_c, "", NULL, 0), MICA_INVALID_ARGUMENT, NULL,
         "empty table name");
  slice unsorted[] = {S("m"), S("c")};
  expect(kvc_create_table(g_c, "t_unsorted", unsorted, 2),
         MICA_INVALID_ARGUMENT, "sort", "unsorted split keys");
  slice dup[] = {S("m"), S("m")};
  expect(kvc_create_table(g_c, "t_dup", dup, 2), MICA_INVALID_ARGUMENT,
         "repeats", "repeated split key");

  rpc_lookup_tablets_response *r = NULL;
  expect(kvc_lookup(g_c, "no_such_table", S("k"), 1, false, &r),
         MICA_NOT_FOUND, "no_such_table", "lookup of an unknown table");
  char big[20000];
  memset(big, 'x', sizeof(big));
  expect(kvc_lookup(g_c, "t1", slice_make(big, sizeof(big)), 1, false, &r),
         MICA_INVALID_ARGUMENT, "limit", "oversized lookup key");

  rpc_drop_table_request dq = {0};
  dq.name = "no_such_table";
  expect(cl_call_master(g_c, &rpc_m_master_drop_table, &dq, 5000, NULL),
         MICA_NOT_FOUND, "no_such_table", "drop of an unknown table");
  rpc_list_tablets_request lq = {0};
  lq.table = "no_such_table";
  expect(cl_call_master(g_c, &rpc_m_master_list_tablets, &lq, 5000,
                        NULL), MICA_NOT_FOUND, "no_such_table",
         "list of an unknown table");

  /* t2's middle tablet is [g, p). */
  uint64_t mid = first_tablet("t2", "h");
  expect(split(mid, "z", NULL), MICA_INVALID_ARGUMENT, "\"z\"",
         "split key above the tablet");
  expect(split(mid, "a", NULL), MICA_INVALID_ARGUMENT, "\"a\"",
         "split key below the tablet");
  expect(split(mid, "g", NULL), MICA_INVALID_ARGUMENT, "inside",
         "split key at the tablet start");
  expect(split(999999, "k", NULL), MICA_NOT_FOUND, "999999",
         "split of an unknown tablet");
  expect(move(999999, 0, NULL), MICA_NOT_FOUND, "999999",
         "move of an unknown tablet");
  expect(move(mid, 424242, NULL), MICA_NOT_FOUND, "424242",
         "move to an unknown server");

  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_lookup(g_c, "t2", S("h"), 1, false, &lr));
  uint64_t owner = lr->tablets[0].location->server_id;
  rpc_msg_free(lr);
  expect(move(mid, owner, NULL), MICA_INVALID_ARGUMENT, "already",
         "move to the current server");

  rpc_merge_tablets_request mq = {0};
  mq.left_tablet_id = first_tablet("t2", "a");
  mq.right_tablet_id = first_tablet("t2", "q");
  expect(cl_call_master(g_c, &rpc_m_master_merge_tablets, &mq, 5000,
                        NULL), MICA_INVALID_ARGUMENT, "adjacent",
         "merge of tablets that are not neighbours");

  rpc_heartbeat_request hq = {0};
  hq.server_id = 777777;
  expect(cl_call_master(g_c, &rpc_m_master_heartbeat, &hq, 5000, NULL),
         MICA_NOT_FOUND, "777777", "heartbeat of an unknown server");
  rpc_tablet_ref pref = {0};
  pref.tablet_id = mid;
  pref.range_epoch = 99;
  pref.assign_epoch = 99;
  rpc_report_split_request sq = {0};
  sq.server_id = owner;
  sq.parent = &pref;
  sq.split_key.data = (uint8_t *)"k";
  sq.split_key.len = 1;
  expect(cl_call_master(g_c, &rpc_m_master_report_split, &sq, 5000,
                        NULL), MICA_STALE_EPOCH, NULL,
         "split proposal with stale epochs");

  /* A move to a dead server: add a fourth server, kill it, wait until the
   * master declares it dead (lease + margin), then ask. */
  int slot;
  TU_OK(cl_add_tserver(g_c, &slot));
  uint64_t dead_id = cl_tserver_id(g_c, slot);
  CU_ASSERT_NOT_EQUAL_FATAL(dead_id, 0);
  find_dead_slot = slot;
  TU_OK(cl_kill_tserver(g_c, slot));
  uint64_t until = cl_now_ms() + 15000;
  bool dead = false;
  while (!dead && cl_now_ms() < until) {
    rpc_list_servers_request q = {0};
    q.include_dead = true;
    void *m = NULL;
    TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000, &m));
    const rpc_list_servers_response *ls = (const void *)m;
    for (size_t i = 0; i < ls->n_servers; i++)
      if (ls->servers[i].server_id == dead_id)
        dead = ls->servers[i].state == RPC_SERVER_DEAD;
    rpc_msg_free(m);
    if (!dead) cl_sleep_ms(100);
  }
  CU_ASSERT_TRUE_FATAL(dead);
  char idtext[32];
  snprintf(idtext, sizeof(idtext), "%" PRIu64, dead_id);
  expect(move(mid, dead_id, NULL), MICA_UNAVAILABLE, idtext,
         "move to a dead server");
  /* Whatever the dead server held is served elsewhere again. */
  rpc_list_tablets_response *lt = wait_serving("t2", 15000);
  for (size_t i = 0; i < lt->n_tablets; i++)
    CU_ASSERT_NOT_EQUAL(lt->tablets[i].location->server_id, dead_id);
  rpc_msg_free(lt);
  check_t2();
}

static void test_manual_split_and_move(void) {
  TU_OK(kvc_create_table(g_c, "t3", NULL, 0));
  put_keys("t3", "k%03d", 200);
  uint64_t id = first_tablet("t3", "k000");
  rpc_split_tablet_response *sr = NULL;
  TU_OK(split(id, "k100", &sr));
  CU_ASSERT_PTR_NOT_NULL_FATAL(sr->left);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sr->right);
  CU_ASSERT_TRUE(key_eq(sr->left->desc->end_key, "k100"));
  CU_ASSERT_TRUE(key_eq(sr->right->desc->start_key, "k100"));
  CU_ASSERT_NOT_EQUAL(sr->left->desc->tablet_id, id);
  CU_ASSERT_NOT_EQUAL(sr->right->desc->tablet_id, id);
  uint64_t left = sr->left->desc->tablet_id;
  uint64_t right = sr->right->desc->tablet_id;
  rpc_msg_free(sr);
  rpc_list_tablets_response *lt = wait_serving("t3", 10000);
  CU_ASSERT_EQUAL(lt->n_tablets, 2);
  rpc_msg_free(lt);
  check_keys("t3", "k%03d", 200);
  /* The parent is gone: splitting it again is refused. */
  mica_err *err = split(id, "k050", NULL);
  CU_ASSERT_PTR_NOT_NULL(err);
  err_free(err);

  /* A split at the middle chosen by the server. */
  TU_OK(split(right, NULL, &sr));
  CU_ASSERT_TRUE(sr->left->desc->end_key.len > 0);
  rpc_msg_free(sr);
  lt = wait_serving("t3", 10000);
  CU_ASSERT_EQUAL(lt->n_tablets, 3);
  rpc_msg_free(lt);
  check_keys("t3", "k%03d", 200);

  /* Move the left daughter to another server. */
  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_lookup(g_c, "t3", S("k000"), 1, false, &lr));
  uint64_t from = lr->tablets[0].location->server_id;
  uint64_t epoch = lr->tablets[0].location->assign_epoch;
  rpc_msg_free(lr);
  uint64_t to = 0;
  for (int i = 0; i < cl_tserver_count(g_c) && to == 0; i++)
    if (cl_tserver_running(g_c, i) && cl_tserver_id(g_c, i) != from)
      to = cl_tserver_id(g_c, i);
  CU_ASSERT_NOT_EQUAL_FATAL(to, 0);
  rpc_move_tablet_response *mr = NULL;
  TU_OK(move(left, to, &mr));
  CU_ASSERT_PTR_NOT_NULL_FATAL(mr->tablet);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mr->tablet->location);
  CU_ASSERT_EQUAL(mr->tablet->location->server_id, to);
  CU_ASSERT_TRUE(mr->tablet->location->assign_epoch > epoch);
  rpc_msg_free(mr);
  TU_OK(kvc_lookup(g_c, "t3", S("k000"), 1, false, &lr));
  CU_ASSERT_EQUAL(lr->tablets[0].location->server_id, to);
  rpc_msg_free(lr);
  check_keys("t3", "k%03d", 200);
  put_keys("t3", "k%03d-after-move", 20);
  check_keys("t3", "k%03d-after-move", 20);
  /* Move it back with target 0: the least-loaded other server. */
  TU_OK(move(left, 0, &mr));
  CU_ASSERT_NOT_EQUAL(mr->tablet->location->server_id, to);
  rpc_msg_free(mr);
  check_keys("t3", "k%03d", 200);
}

/* Servers' tablet counts from ListServers. */
static void server_counts(uint64_t *min, uint64_t *max, size_t *n) {
  rpc_list_servers_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000, &m));
  const rpc_list_servers_response *ls = (const void *)m;
  *min = UINT64_MAX;
  *max = 0;
  *n = 0;
  for (size_t i = 0; i < ls->n_servers; i++) {
    if (ls->servers[i].state != RPC_SERVER_LIVE) continue;
    uint64_t c = ls->servers[i].tablet_count;
    if (c < *min) *min = c;
    if (c > *max) *max = c;
    (*n)++;
  }
  rpc_msg_free(m);
}

static void test_balance(void) {
  TU_OK(configure(0, -1));
  slice splits[9];
  char keys[9][8];
  for (int i = 0; i < 9; i++) {
    snprintf(keys[i], sizeof(keys[i]), "b%d", i + 1);
    splits[i] = S(keys[i]);
  }
  TU_OK(kvc_create_table(g_c, "t4", splits, 9));
  rpc_list_tablets_response *lt = wait_serving("t4", 10000);
  CU_ASSERT_EQUAL_FATAL(lt->n_tablets, 10);
  /* Pile every t4 tablet onto one server. */
  uint64_t target = lt->tablets[0].location->server_id;
  for (size_t i = 0; i < lt->n_tablets; i++)
    if (lt->tablets[i].location->server_id != target)
      TU_OK(move(lt->tablets[i].desc->tablet_id, target, NULL));
  rpc_msg_free(lt);
  uint64_t mn, mx;
  size_t n;
  server_counts(&mn, &mx, &n);
  CU_ASSERT_TRUE_FATAL(mx >= mn + 5);

  /* Dry run: a plan of moves off the loaded server, nothing applied. */
  rpc_balance_request bq = {0};
  bq.dry_run = true;
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_balance, &bq, 5000, &m));
  const rpc_balance_response *br = (const void *)m;
  CU_ASSERT_TRUE(br->n_moves >= 3);
  for (size_t i = 0; i < br->n_moves; i++) {
    CU_ASSERT_EQUAL(br->moves[i].from_server_id, target);
    CU_ASSERT_NOT_EQUAL(br->moves[i].to_server_id, target);
    CU_ASSERT_TRUE(strlen(br->moves[i].reason) > 0);
  }
  rpc_msg_free(m);
  cl_sleep_ms(500);
  uint64_t mn2, mx2;
  server_counts(&mn2, &mx2, &n);
  CU_ASSERT_EQUAL(mx2, mx);
  CU_ASSERT_EQUAL(mn2, mn);

  /* Balancer on: the servers come within the band. */
  TU_OK(configure(1, -1));
  uint64_t until = cl_now_ms() + 30000;
  do {
    cl_sleep_ms(200);
    server_counts(&mn, &mx, &n);
  } while (mx > mn + 2 && cl_now_ms() < until);
  CU_ASSERT_TRUE(mx <= mn + 2);
  lt = wait_serving("t4", 10000);
  rpc_msg_free(lt);
  put_keys("t4", "b%d-x", 10);
  check_keys("t4", "b%d-x", 10);
}

static size_t tablet_count(const char *table) {
  rpc_list_tablets_response *lt = list_tablets(table);
  size_t n = lt->n_tablets;
  rpc_msg_free(lt);
  return n;
}

/* Whether every live tablet server can open merged tablets: a refused
 * switch-on says no, and then it must be refused cleanly. */
static bool merges_supported(void) {
  mica_err *err = configure(-1, 1);
  if (err == NULL) return true;
  fprintf(stderr, "\n  merges refused: %s\n", err_msg(err));
  CU_ASSERT_EQUAL(err_code(err), MICA_NOT_SUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "cannot open merged"));
  err_free(err);
  return false;
}

static void test_merge(void) {
  TU_OK(kvc_create_table(g_c, "t5", NULL, 0));
  put_keys("t5", "m%03d", 50);
  rpc_split_tablet_response *sr = NULL;
  TU_OK(split(first_tablet("t5", "m000"), "m025", &sr));
  uint64_t l = sr->left->desc->tablet_id, r = sr->right->desc->tablet_id;
  rpc_msg_free(sr);
  rpc_list_tablets_response *lt = wait_serving("t5", 10000);
  rpc_msg_free(lt);
  rpc_merge_tablets_request mq = {0};
  mq.left_tablet_id = l;
  mq.right_tablet_id = r;
  void *m = NULL;

  if (!merges_supported()) {
    /* A manual merge is refused before anything changes: both tablets
     * keep serving and every key stays readable. */
    expect(cl_call_master(g_c, &rpc_m_master_merge_tablets, &mq, 30000,
                          NULL), MICA_NOT_SUPPORTED, "cannot open merged",
           "merge without servers able to merge");
    lt = wait_serving("t5", 10000);
    CU_ASSERT_EQUAL(lt->n_tablets, 2);
    rpc_msg_free(lt);
    check_keys("t5", "m%03d", 50);
    return;
  }
  TU_OK(configure(-1, 0));

  /* Manual merge of two split daughters. A daughter may be in a move the
   * balancer started (it parts split daughters) or still be taken over:
   * the master answers UNAVAILABLE "in transition, retry later", and a
   * caller retries, as libmica does. */
  mica_err *merr;
  uint64_t merge_until = cl_now_ms() + 20000;
  while ((merr = cl_call_master(g_c, &rpc_m_master_merge_tablets, &mq, 30000,
                                &m)) != NULL &&
         err_code(merr) == MICA_UNAVAILABLE && cl_now_ms() < merge_until) {
    err_free(merr);
    cl_sleep_ms(200);
  }
  TU_OK(merr);
  const rpc_merge_tablets_response *mr = (const void *)m;
  CU_ASSERT_PTR_NOT_NULL_FATAL(mr->merged);
  CU_ASSERT_EQUAL(mr->merged->desc->start_key.len, 0);
  CU_ASSERT_EQUAL(mr->merged->desc->end_key.len, 0);
  CU_ASSERT_TRUE(mr->merged->desc->tablet_id > r);
  rpc_msg_free(m);
  CU_ASSERT_EQUAL(tablet_count("t5"), 1);
  check_keys("t5", "m%03d", 50);

  /* Automatic merge of emptied tablets: split, delete everything, switch
   * merges on, and wait for the table to be one tablet again. */
  TU_OK(kvc_create_table(g_c, "t6", NULL, 0));
  put_keys("t6", "e%03d", 40);
  TU_OK(split(first_tablet("t6", "e000"), "e020", NULL));
  lt = wait_serving("t6", 10000);
  rpc_msg_free(lt);
  CU_ASSERT_EQUAL(tablet_count("t6"), 2);
  for (int i = 0; i < 40; i++) {
    char k[16];
    snprintf(k, sizeof(k), "e%03d", i);
    rpc_tablet_route *rt;
    rpc_lookup_tablets_response *lr;
    TU_OK(kvc_route(g_c, "t6", S(k), 10000, &rt, &lr));
    rpc_tablet_ref ref = {0};
    ref.tablet_id = rt->desc->tablet_id;
    ref.range_epoch = rt->desc->range_epoch;
    ref.assign_epoch = rt->location->assign_epoch;
    rpc_delete_request dq = {0};
    dq.tablet = &ref;
    dq.key.data = (uint8_t *)k;
    dq.key.len = strlen(k);
    void *dr = NULL;
    TU_OK(rpc_unary(cl_channel(g_c, rt->location->address), &rpc_m_ts_delete,
                    &dq, 5000, &dr));
    TU_OK(cl_response_err(dr));
    rpc_msg_free(dr);
    rpc_msg_free(lr);
  }
  TU_OK(configure(-1, 1));
  uint64_t until = cl_now_ms() + 60000;
  while (tablet_count("t6") != 1 && cl_now_ms() < until) cl_sleep_ms(200);
  CU_ASSERT_EQUAL(tablet_count("t6"), 1);
  lt = wait_serving("t6", 10000);
  rpc_msg_free(lt);
  bool found = true;
  buf v = BUF_INIT;
  TU_OK(kvc_get(g_c, "t6", S("e005"), &found, &v, 5000));
  CU_ASSERT_FALSE(found);
  buf_free(&v);
  put_keys("t6", "f%03d", 5);
  check_keys("t6", "f%03d", 5);
  /* Pre-split boundaries are never merged away. */
  CU_ASSERT_EQUAL(tablet_count("t2"), 3);
  TU_OK(configure(-1, 0));
}

static void test_drop_table(void) {
  rpc_list_tablets_response *lt = list_tablets("t1");
  CU_ASSERT_EQUAL_FATAL(lt->n_tablets, 1);
  uint64_t id = lt->tablets[0].desc->tablet_id;
  rpc_msg_free(lt);
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s/tablets/%" PRIu64, cl_data_root(g_c), id);
  CU_ASSERT_TRUE(env_exists(cl_data_env(g_c), dir));

  rpc_drop_table_request dq = {0};
  dq.name = "t1";
  TU_OK(cl_call_master(g_c, &rpc_m_master_drop_table, &dq, 5000, NULL));
  rpc_lookup_tablets_response *r = NULL;
  expect(kvc_lookup(g_c, "t1", S("key0001"), 1, false, &r), MICA_NOT_FOUND,
         "t1", "lookup of a dropped table");
  /* Its tablet is closed and its files deleted. */
  uint64_t until = cl_now_ms() + 15000;
  while (env_exists(cl_data_env(g_c), dir) && cl_now_ms() < until)
    cl_sleep_ms(50);
  CU_ASSERT_FALSE(env_exists(cl_data_env(g_c), dir));
  /* The name can be used again, for an empty table. */
  TU_OK(kvc_create_table(g_c, "t1", NULL, 0));
  bool found = true;
  buf v = BUF_INIT;
  TU_OK(kvc_get(g_c, "t1", S("key0001"), &found, &v, 10000));
  CU_ASSERT_FALSE(found);
  buf_free(&v);
  /* Other tables are untouched. */
  check_t2();
}

static void test_events(void) {
  rpc_list_events_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_events, &q, 5000, &m));
  const rpc_list_events_response *r = (const void *)m;
  bool split_ev = false, move_ev = false, dead_ev = false, drop_ev = false;
  for (size_t i = 0; i < r->n_events; i++) {
    split_ev |= strcmp(r->events[i].kind, "split") == 0;
    move_ev |= strcmp(r->events[i].kind, "move") == 0;
    dead_ev |= strcmp(r->events[i].kind, "server_dead") == 0;
    drop_ev |= strcmp(r->events[i].kind, "drop") == 0;
    if (i > 0) CU_ASSERT_TRUE(r->events[i].time_ms <= r->events[i - 1].time_ms);
  }
  CU_ASSERT_TRUE(split_ev && move_ev && dead_ev && drop_ev);
  rpc_msg_free(m);
}

static void test_clean_stop(void) {
  for (int i = 0; i < cl_tserver_count(g_c); i++)
    if (cl_tserver_running(g_c, i)) TU_OK(cl_stop_tserver(g_c, i));
  TU_OK(cl_stop_master(g_c));
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("cluster", suite_init, suite_clean);
  CU_add_test(s, "create_lookup_put_get", test_create_lookup_put_get);
  CU_add_test(s, "presplit", test_presplit);
  CU_add_test(s, "bad_requests", test_bad_requests);
  CU_add_test(s, "manual_split_and_move", test_manual_split_and_move);
  CU_add_test(s, "balance", test_balance);
  CU_add_test(s, "merge", test_merge);
  CU_add_test(s, "drop_table", test_drop_table);
  CU_add_test(s, "events", test_events);
  CU_add_test(s, "clean_stop", test_clean_stop);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
