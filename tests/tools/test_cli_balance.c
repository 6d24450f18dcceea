/* test_cli_balance: `mica balance --plan/--apply/--mode`, `mica drain` and
 * `mica undrain` against a real cluster (three tablet servers, balancer
 * off): a plan written, reviewed and applied; a stale plan (a tablet split
 * after planning) refused whole, naming the stale move, with no tablet
 * moved; malformed plan files refused naming the field; drain to empty
 * with progress, undrain; usage errors (exit 2) and failures (exit 1). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/testutil.h"
#include "tools/mica/mjson.h"

static cluster *g_c;

static const char *const g_master_args[] = {"--merge", "off", "--balancer",
                                            "off", NULL};

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.master_args = g_master_args;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static th_result run(const char *const *args) {
  th_result r;
  TU_OK(th_mica_cli(cl_master_address(g_c), NULL, args, 60000, &r));
  return r;
}

#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

static void expect_rc(th_result *r, int rc, const char *in_out,
                      const char *in_err) {
  if (r->rc != rc || (in_out && !strstr(th_out(r), in_out)) ||
      (in_err && !strstr(th_err(r), in_err)))
    fprintf(stderr, "\nexit %d (want %d)\nstdout:\n%s\nstderr:\n%s\n", r->rc,
            rc, th_out(r), th_err(r));
  CU_ASSERT_EQUAL(r->rc, rc);
  if (in_out) CU_ASSERT_PTR_NOT_NULL(strstr(th_out(r), in_out));
  if (in_err) CU_ASSERT_PTR_NOT_NULL(strstr(th_err(r), in_err));
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

/* Every tablet's server and assign epoch, as one string. */
static void placement(buf *out) {
  rpc_list_tablets_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000, &m));
  const rpc_list_tablets_response *r = m;
  buf_clear(out);
  for (size_t i = 0; r && i < r->n_tablets; i++) {
    char line[96];
    const rpc_tablet_entry *e = &r->tablets[i];
    snprintf(line, sizeof(line), "%" PRIu64 "@%" PRIu64 "/%" PRIu64 ";",
             e->desc->tablet_id, e->location ? e->location->server_id : 0,
             e->location ? e->location->assign_epoch : 0);
    buf_append(out, line, strlen(line));
  }
  buf_push(out, 0);
  rpc_msg_free(m);
}

static void test_usage(void) {
  static const char *const cmds[] = {"balance", "drain", "undrain"};
  for (int i = 0; i < 3; i++) {
    th_result r = RUN(cmds[i], "--help");
    expect_rc(&r, 0, "Example:", NULL);
    th_result_free(&r);
  }
  const char *const *bad[] = {
      (const char *const[]){"balance", "--plan", "--dry-run", NULL},
      (const char *const[]){"balance", "--mode", "sometimes", NULL},
      (const char *const[]){"balance", "--apply", NULL},
      (const char *const[]){"balance", "extra", NULL},
      (const char *const[]){"drain", NULL},
      (const char *const[]){"drain", "nocolon", NULL},
      (const char *const[]){"drain", "1", "--timeout", "0", NULL},
      (const char *const[]){"undrain", "1", "2", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    th_result r = run(bad[i]);
    expect_rc(&r, 2, NULL, "usage: mica");
    CU_ASSERT_EQUAL(r.out.len, 0);
    th_result_free(&r);
  }
  /* Unknown servers: the master's NOT_FOUND, exit 1. */
  th_result r = RUN("drain", "999");
  expect_rc(&r, 1, NULL, "NOT_FOUND");
  th_result_free(&r);
  r = RUN("undrain", "127.0.0.1:1");
  expect_rc(&r, 1, NULL, "no live server");
  th_result_free(&r);
}

static void test_bad_plans(void) {
  char path[512];
  snprintf(path, sizeof(path), "%s/bad.json", tu_tmpdir());
  static const struct {
    const char *text, *why;
  } cases[] = {
      {"not json", "bad.json"},
      {"{\"version\": 2, \"moves\": []}", "version: expected 1"},
      {"{\"version\": 1}", "moves: expected an array"},
      {"{\"version\": 1, \"moves\": [{\"tablet_id\": 3}]}",
       "moves[0].from_server_id"},
      {"{\"version\": 1, \"moves\": [{\"tablet_id\": 3, \"from_server_id\": 1,"
       " \"to_server_id\": 2, \"range_epoch\": 1, \"assign_epoch\": -1}]}",
       "moves[0].assign_epoch"},
      {"{\"version\": 1, \"moves\": [{\"tablet_id\": 3, \"from_server_id\": 1,"
       " \"to_server_id\": 2, \"range_epoch\": 1, \"assign_epoch\": 1, "
       "\"reason\": 7}]}", "moves[0].reason"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_file(path, cases[i].text);
    th_result r = RUN("balance", "--apply", path);
    expect_rc(&r, 1, NULL, cases[i].why);
    th_result_free(&r);
  }
  th_result r = RUN("balance", "--apply", "/nonexistent/plan.json");
  expect_rc(&r, 1, NULL, "/nonexistent/plan.json");
  th_result_free(&r);
  /* A move of an unknown tablet is stale at the master. */
  write_file(path, "{\"version\": 1, \"moves\": [{\"tablet_id\": 9999, "
             "\"from_server_id\": 1, \"to_server_id\": 2, \"range_epoch\": 1,"
             " \"assign_epoch\": 1}]}");
  r = RUN("balance", "--apply", path);
  expect_rc(&r, 1, NULL, "STALE_EPOCH");
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "no longer exists"));
  th_result_free(&r);
}

/* A plan from `mica balance --plan`, its moves' tablet ids in `ids`. */
static size_t plan(const char *path, uint64_t *ids, size_t max) {
  th_result r = RUN("balance", "--plan");
  expect_rc(&r, 0, "\"version\": 1", NULL);
  write_file(path, th_out(&r));
  char why[160];
  mj_val *v = mj_parse(th_out(&r), r.out.len, why, sizeof(why));
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  const mj_val *moves = mj_get(v, "moves");
  size_t n = moves ? moves->len : 0;
  for (size_t i = 0; i < n && i < max; i++) {
    uint64_t e = 0;
    CU_ASSERT(mj_u64(mj_get(moves->items[i], "tablet_id"), &ids[i]));
    CU_ASSERT(mj_u64(mj_get(moves->items[i], "range_epoch"), &e) && e > 0);
    CU_ASSERT(mj_u64(mj_get(moves->items[i], "assign_epoch"), &e) && e > 0);
  }
  mj_free(v);
  th_result_free(&r);
  return n;
}

static void test_plan_apply(void) {
  th_result r = RUN("create", "p", "--splits", "b,c,d,e,f,g,h");
  expect_rc(&r, 0, NULL, NULL);
  th_result_free(&r);
  /* Everything onto the first server, so the balancer has work. */
  uint64_t s0 = cl_tserver_id(g_c, 0);
  rpc_list_tablets_request q = {.table = "p"};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000, &m));
  const rpc_list_tablets_response *lt = m;
  for (size_t i = 0; lt && i < lt->n_tablets; i++) {
    if (lt->tablets[i].location->server_id == s0) continue;
    char id[24], to[24];
    snprintf(id, sizeof(id), "%" PRIu64, lt->tablets[i].desc->tablet_id);
    snprintf(to, sizeof(to), "%" PRIu64, s0);
    r = RUN("move", id, to);
    expect_rc(&r, 0, "moved tablet", NULL);
    th_result_free(&r);
  }
  rpc_msg_free(m);

  char path[512];
  snprintf(path, sizeof(path), "%s/plan.json", tu_tmpdir());
  uint64_t ids[64];
  size_t n = plan(path, ids, 64);
  CU_ASSERT_FATAL(n >= 2);
  /* Planning moved nothing. */
  buf before = BUF_INIT, after = BUF_INIT;
  placement(&before);

  /* The first planned tablet is split: the plan is stale as a whole. */
  char id[24], key[80] = "a";
  snprintf(id, sizeof(id), "%" PRIu64, ids[0]);
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000, &m));
  lt = m;
  for (size_t i = 0; lt && i < lt->n_tablets; i++)
    if (lt->tablets[i].desc->tablet_id == ids[0] &&
        lt->tablets[i].desc->start_key.len > 0)
      snprintf(key, sizeof(key), "%.*sx",
               (int)lt->tablets[i].desc->start_key.len,
               (const char *)lt->tablets[i].desc->start_key.data);
  rpc_msg_free(m);
  r = RUN("split", id, key);
  expect_rc(&r, 0, "split tablet", NULL);
  th_result_free(&r);
  placement(&before);
  r = RUN("balance", "--apply", path);
  expect_rc(&r, 1, NULL, "none was made");
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "was split"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "STALE_EPOCH"));
  th_result_free(&r);
  cl_sleep_ms(500);
  placement(&after);
  CU_ASSERT_STRING_EQUAL((char *)before.data, (char *)after.data);

  /* A fresh plan applies, and the servers end balanced by count. */
  n = plan(path, ids, 64);
  CU_ASSERT_FATAL(n >= 2);
  r = RUN("balance", "--apply", path);
  expect_rc(&r, 0, "moving tablet", NULL);
  th_result_free(&r);
  uint64_t until = cl_now_ms() + 20000;
  size_t left = n;
  while (cl_now_ms() < until && left > 0) {
    cl_sleep_ms(200);
    th_result d = RUN("balance", "--dry-run");
    left = strstr(th_out(&d), "no moves planned") ? 0 : 1;
    th_result_free(&d);
  }
  CU_ASSERT_EQUAL(left, 0);
  /* Applying the same plan again: every move stale (the epochs moved). */
  r = RUN("balance", "--apply", path);
  expect_rc(&r, 1, NULL, "assign epoch");
  th_result_free(&r);
  buf_free(&before);
  buf_free(&after);

  r = RUN("balance", "--mode", "suggest");
  expect_rc(&r, 0, "balancer mode: suggest", NULL);
  th_result_free(&r);
  r = RUN("balance", "--mode", "off");
  expect_rc(&r, 0, "balancer mode: off", NULL);
  th_result_free(&r);
}

static void test_drain(void) {
  const char *addr = cl_tserver_address(g_c, 1);
  uint64_t id = cl_tserver_id(g_c, 1);
  th_result r = RUN("drain", addr, "--timeout", "30");
  char want[64];
  snprintf(want, sizeof(want), "server %" PRIu64 " drained", id);
  expect_rc(&r, 0, want, NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "tablets left"));
  th_result_free(&r);
  /* Draining the others too would leave nowhere to go. */
  char other[24];
  snprintf(other, sizeof(other), "%" PRIu64, cl_tserver_id(g_c, 0));
  r = RUN("drain", other, "--no-wait");
  expect_rc(&r, 0, "draining", NULL);
  th_result_free(&r);
  snprintf(other, sizeof(other), "%" PRIu64, cl_tserver_id(g_c, 2));
  r = RUN("drain", other, "--no-wait");
  expect_rc(&r, 1, NULL, "RESOURCE_EXHAUSTED");
  th_result_free(&r);
  snprintf(other, sizeof(other), "%" PRIu64, cl_tserver_id(g_c, 0));
  r = RUN("undrain", other);
  expect_rc(&r, 0, "takes tablets again", NULL);
  th_result_free(&r);
  r = RUN("servers", "--format", "json");
  expect_rc(&r, 0, "\"draining\": true", NULL);
  th_result_free(&r);
  r = RUN("servers", "--format", "tsv");
  expect_rc(&r, 0, "\tdraining\n", NULL);
  th_result_free(&r);
  snprintf(other, sizeof(other), "%" PRIu64, id);
  r = RUN("undrain", other);
  expect_rc(&r, 0, "takes tablets again", NULL);
  th_result_free(&r);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"usage", test_usage},
      {"bad plans", test_bad_plans},
      {"plan and apply", test_plan_apply},
      {"drain", test_drain},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("cli balance", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName; t++)
    CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
