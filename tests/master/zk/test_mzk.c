/* Tests of master/zk against a real ZooKeeper: a standalone server and a
 * 3-node ensemble, each started once per program by tools/zk-test-server.
 *
 * What must hold: at most one candidate is active at any moment and exactly
 * one soon after any change; a departure wakes only the next candidate;
 * every win takes a higher epoch than any before, across restarts; losing
 * ZooKeeper stops the active master at once, and the cluster elects again
 * when ZooKeeper returns. */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "master/zk/mzk.h"
#include "master/zk/mzk_int.h"
#include "tests/harness/zkserver.h"
#include "tests/harness/testutil.h"

#define TIMEOUT_MS 3000

static zks *g_zk;

static uint64_t now_ms(void) { return env_now_micros(env_posix()) / 1000; }
static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* A fresh chroot per test keeps tests apart on one server. */
static const char *spec(char *out, size_t n) {
  static int seq;
  snprintf(out, n, "%s/mzk-test-%d-%d", zks_connect(g_zk), (int)getpid(),
           ++seq);
  return out;
}

typedef struct cand {
  mzk_elector *e;
  atomic_int ups, downs;
  char rpc[32];
} cand;

static void cand_change(void *ctx, bool active, uint64_t epoch,
                        const char *why) {
  (void)epoch;
  (void)why;
  cand *c = ctx;
  if (active) atomic_fetch_add(&c->ups, 1);
  else atomic_fetch_add(&c->downs, 1);
}

static void cand_begin(cand *c, const char *zk, int i, uint64_t min_epoch,
                       int timeout_ms, bool wait_joined) {
  memset(c, 0, sizeof *c);
  snprintf(c->rpc, sizeof c->rpc, "10.0.0.%d:7000", i);
  mzk_elector_opts o = {.zk = zk,
                        .session_timeout_ms = timeout_ms,
                        .rpc_addr = c->rpc,
                        .http_addr = "10.0.0.1:8080",
                        .min_epoch = min_epoch,
                        .on_change = cand_change,
                        .ctx = c};
  TU_OK(mzk_elector_start(&o, &c->e));
  if (!wait_joined) return;
  /* Start in order: wait until this one's candidate node exists and it
   * has either won or set its watch on its predecessor. */
  mzk_elector_stats st;
  uint64_t deadline = now_ms() + 20000;
  do {
    mzk_elector_get_stats(c->e, &st);
    if (st.candidate[0] && (st.active || st.watching[0])) return;
    sleep_ms(10);
  } while (now_ms() < deadline);
  CU_FAIL_FATAL("candidate did not join within 20 s");
}

static void cand_start(cand *c, const char *zk, int i, uint64_t min_epoch,
                       int timeout_ms) {
  cand_begin(c, zk, i, min_epoch, timeout_ms, true);
}

static void cand_close(cand *c) {
  mzk_elector_close(c->e);
  c->e = NULL;
}

/* Index of the one active candidate, -1 for none; fails the test when two
 * are active at once. */
static int the_active(cand *v, int n, uint64_t *epoch) {
  int who = -1;
  for (int i = 0; i < n; i++) {
    uint64_t ep;
    if (v[i].e != NULL && mzk_elector_is_active(v[i].e, &ep)) {
      CU_ASSERT_EQUAL_FATAL(who, -1);
      who = i;
      if (epoch) *epoch = ep;
    }
  }
  return who;
}

/* Waits (checking at-most-one all along) until `want` is the active one
 * (-2: anyone); returns it, or -1 after timeout_ms. */
static int wait_active(cand *v, int n, int want, int timeout_ms,
                       uint64_t *epoch) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int w = the_active(v, n, epoch);
    if (w >= 0 && (want == -2 || w == want)) return w;
    if (now_ms() >= deadline) return -1;
    sleep_ms(10);
  }
}

static uint64_t watch_events(cand *c) {
  mzk_elector_stats st;
  mzk_elector_get_stats(c->e, &st);
  return st.watch_events;
}

/* ---- no server needed ---- */

static void test_spec_parse(void) {
  char *h, *c;
  TU_OK(mzk_spec_parse("127.0.0.1:2181", &h, &c));
  CU_ASSERT_STRING_EQUAL(h, "127.0.0.1:2181");
  CU_ASSERT_STRING_EQUAL(c, "");
  free(h);
  free(c);
  TU_OK(mzk_spec_parse("a:1,b.example:65535/mica/prod", &h, &c));
  CU_ASSERT_STRING_EQUAL(h, "a:1,b.example:65535");
  CU_ASSERT_STRING_EQUAL(c, "/mica/prod");
  free(h);
  free(c);
  const char *bad[] = {"",           "host",       ":2181",
                       "h:0",        "h:70000",    "h:12a",
                       "h:1,,h:2",   "h:1,",       "h:1/",
                       "h:1/a//b",   "h:1/a/../b", "h:1/.",
                       "/chroot",    "h:/x",       "h :1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mica_err *e = mzk_spec_parse(bad[i], &h, &c);
    if (err_code(e) != MICA_INVALID_ARGUMENT)
      fprintf(stderr, "spec '%s' was accepted\n", bad[i]);
    CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(h);
    if (bad[i][0]) CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), bad[i]));
    err_free(e);
  }
}

static void test_record(void) {
  mzk_master m = {.epoch = 42}, got;
  strcpy(m.rpc_addr, "10.77.0.2:7000");
  char text[1024];
  int n = mzk_record_format(&m, text, sizeof text);
  CU_ASSERT_STRING_EQUAL(text, "mica-active-master 1\nepoch 42\n"
                               "rpc 10.77.0.2:7000\nhttp -\n");
  TU_OK(mzk_record_parse(text, n, &got));
  CU_ASSERT_EQUAL(got.epoch, 42);
  CU_ASSERT_STRING_EQUAL(got.rpc_addr, "10.77.0.2:7000");
  CU_ASSERT_STRING_EQUAL(got.http_addr, "");
  const char *bad[] = {
      "mica-active-master 2\nepoch 1\nrpc a:1\nhttp -\n",
      "mica-active-master 1\nepoch 0\nrpc a:1\nhttp -\n",
      "mica-active-master 1\nepoch x\nrpc a:1\nhttp -\n",
      "mica-active-master 1\nepoch 1\nrpc a:1\n",
      "mica-active-master 1\nepoch 1\nrpc \nhttp -\n",
      "mica-active-master 1\nepoch 99999999999999999999\nrpc a:1\nhttp -\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    TU_ERR(mzk_record_parse(bad[i], (int)strlen(bad[i]), &got),
           MICA_INVALID_ARGUMENT);
  TU_ERR(mzk_record_parse("", 0, &got), MICA_INVALID_ARGUMENT);
}

/* A candidate's record: round trip, the bare address of earlier versions,
 * and refusals; the session-state names. */
static void test_candidate_record(void) {
  mzk_member m = {.rpc_addr = "10.77.0.3:7000", .http_addr = "10.77.0.3:8080"};
  mzk_member got;
  char text[3 * MZK_ADDR_MAX];
  int n = mzk_cand_format(&m, text, sizeof text);
  CU_ASSERT_STRING_EQUAL(text, "mica-candidate 1\nrpc 10.77.0.3:7000\n"
                               "http 10.77.0.3:8080\n");
  TU_OK(mzk_cand_parse(text, n, &got));
  CU_ASSERT_STRING_EQUAL(got.rpc_addr, "10.77.0.3:7000");
  CU_ASSERT_STRING_EQUAL(got.http_addr, "10.77.0.3:8080");
  m.http_addr[0] = '\0';
  n = mzk_cand_format(&m, text, sizeof text);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nhttp -\n"));
  TU_OK(mzk_cand_parse(text, n, &got));
  CU_ASSERT_STRING_EQUAL(got.http_addr, "");
  TU_OK(mzk_cand_parse("10.0.0.9:7000", 13, &got)); /* earlier versions */
  CU_ASSERT_STRING_EQUAL(got.rpc_addr, "10.0.0.9:7000");
  CU_ASSERT_STRING_EQUAL(got.http_addr, "");
  CU_ASSERT_EQUAL(mzk_cand_format(&m, text, 10), -1);
  const char *bad[] = {
      "mica-candidate 2\nrpc a:1\nhttp -\n",
      "mica-candidate 1\nrpc \nhttp -\n",
      "mica-candidate 1\nrpc a:1\n",
      "mica-candidate 1\nhttp -\nrpc a:1\n",
      "no-colon-here",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    TU_ERR(mzk_cand_parse(bad[i], (int)strlen(bad[i]), &got),
           MICA_INVALID_ARGUMENT);
  TU_ERR(mzk_cand_parse("", 0, &got), MICA_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(mzk_session_state_name(MZK_SESSION_CONNECTED),
                         "connected");
  CU_ASSERT_STRING_EQUAL(mzk_session_state_name(MZK_SESSION_CONNECTING),
                         "connecting");
  CU_ASSERT_STRING_EQUAL(mzk_session_state_name(MZK_SESSION_EXPIRED),
                         "expired");
}

static void test_bad_options(void) {
  mzk_elector *e;
  mzk_elector_opts o = {.zk = "127.0.0.1:1/x", .rpc_addr = NULL};
  TU_ERR(mzk_elector_start(&o, &e), MICA_INVALID_ARGUMENT);
  o.rpc_addr = "a:1";
  o.zk = "nohostport";
  TU_ERR(mzk_elector_start(&o, &e), MICA_INVALID_ARGUMENT);
  o.zk = "127.0.0.1:1";
  o.session_timeout_ms = -1;
  TU_ERR(mzk_elector_start(&o, &e), MICA_INVALID_ARGUMENT);
  mzk_reader *r;
  TU_ERR(mzk_reader_open("h:1/a/", 0, NULL, NULL, &r), MICA_INVALID_ARGUMENT);
}

/* ---- against a server ---- */

static int server_setup(int nodes) {
  mica_err *e = zks_start(nodes, &g_zk);
  if (e != NULL) {
    fprintf(stderr, "cannot start ZooKeeper: %s\n", err_msg(e));
    err_free(e);
    return -1;
  }
  return 0;
}
static int standalone_setup(void) { return server_setup(1); }
static int ensemble_setup(void) { return server_setup(3); }
static int server_cleanup(void) {
  zks_destroy(g_zk);
  g_zk = NULL;
  return 0;
}

/* Three candidates: the first is active, the reader sees it; each
 * departure wakes only the next candidate, which wins a higher epoch. */
static void test_one_of_three_and_no_herd(void) {
  char zk[600];
  spec(zk, sizeof zk);
  mzk_reader *r;
  TU_OK(mzk_reader_open(zk, TIMEOUT_MS, NULL, NULL, &r));
  cand c[3];
  for (int i = 0; i < 3; i++) cand_start(&c[i], zk, i + 1, 0, TIMEOUT_MS);
  uint64_t e0 = 0, e1 = 0, e2 = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 0, 20000, &e0), 0);
  CU_ASSERT(e0 >= 1);
  mzk_master m;
  TU_OK(mzk_reader_wait(r, e0, 10000, &m));
  CU_ASSERT_EQUAL(m.epoch, e0);
  CU_ASSERT_STRING_EQUAL(m.rpc_addr, c[0].rpc);
  CU_ASSERT_STRING_EQUAL(m.http_addr, "10.0.0.1:8080");
  /* Stays exactly one for a while: nobody else campaigns. */
  for (int i = 0; i < 20; i++) {
    CU_ASSERT_EQUAL(the_active(c, 3, NULL), 0);
    sleep_ms(25);
  }
  CU_ASSERT_EQUAL(watch_events(&c[1]), 0);
  CU_ASSERT_EQUAL(watch_events(&c[2]), 0);

  cand_close(&c[0]);
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 1, 20000, &e1), 1);
  CU_ASSERT(e1 > e0);
  TU_OK(mzk_reader_wait(r, e1, 10000, &m));
  CU_ASSERT_STRING_EQUAL(m.rpc_addr, c[1].rpc);
  sleep_ms(300); /* let any stray notification arrive */
  CU_ASSERT_EQUAL(watch_events(&c[1]), 1);
  CU_ASSERT_EQUAL(watch_events(&c[2]), 0); /* the herd stayed asleep */
  CU_ASSERT_EQUAL(atomic_load(&c[2].ups), 0);

  cand_close(&c[1]);
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 2, 20000, &e2), 2);
  CU_ASSERT(e2 > e1);
  CU_ASSERT_EQUAL(watch_events(&c[2]), 1);
  cand_close(&c[2]);
  /* No candidate: the reader sees no active master. */
  uint64_t deadline = now_ms() + 10000;
  while (mzk_reader_get(r, &m) && now_ms() < deadline) sleep_ms(10);
  CU_ASSERT_FALSE(mzk_reader_get(r, &m));
  mzk_reader_close(r);
}

/* The HTTP address set after winning reaches readers, with the same epoch;
 * a bad one is refused. */
static void test_http_address_republished(void) {
  char zk[600];
  spec(zk, sizeof zk);
  mzk_reader *r;
  TU_OK(mzk_reader_open(zk, TIMEOUT_MS, NULL, NULL, &r));
  cand c;
  cand_start(&c, zk, 1, 0, TIMEOUT_MS);
  uint64_t ep = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(&c, 1, 0, 20000, &ep), 0);
  mzk_master m;
  TU_OK(mzk_reader_wait(r, ep, 10000, &m));
  CU_ASSERT_STRING_EQUAL(m.http_addr, "10.0.0.1:8080");
  TU_OK(mzk_elector_set_http_addr(c.e, "10.0.0.1:9090"));
  uint64_t deadline = now_ms() + 10000;
  while (mzk_reader_get(r, &m) && strcmp(m.http_addr, "10.0.0.1:9090") != 0 &&
         now_ms() < deadline)
    sleep_ms(10);
  CU_ASSERT_STRING_EQUAL(m.http_addr, "10.0.0.1:9090");
  CU_ASSERT_EQUAL(m.epoch, ep);
  CU_ASSERT_EQUAL(the_active(&c, 1, NULL), 0);
  TU_ERR(mzk_elector_set_http_addr(c.e, "a\nb"), MICA_INVALID_ARGUMENT);
  cand_close(&c);
  mzk_reader_close(r);
}

/* Waits until the view shows `n` standbys (and an active master when
 * `active`); false after 10 s. */
static bool wait_view(mzk_elector *e, mzk_reader *r, const char *self,
                      size_t n, bool active, mzk_view *v) {
  uint64_t deadline = now_ms() + 10000;
  do {
    mzk_view_get(e, r, self, TIMEOUT_MS, v);
    if (v->standbys_known && v->n_standbys == n && v->have_active == active)
      return true;
    sleep_ms(10);
  } while (now_ms() < deadline);
  return false;
}

/* What a master's status page shows: a reader that follows the
 * candidates lists the standbys in election order with their HTTP
 * addresses, leaving out the active one; a departure and a failover
 * reach it by watches; the elector reports its session. A reader that
 * does not follow them knows no list. */
static void test_view(void) {
  char zk[600];
  spec(zk, sizeof zk);
  mzk_reader *r, *plain;
  TU_OK(mzk_reader_open(zk, TIMEOUT_MS, NULL, NULL, &r));
  TU_OK(mzk_reader_open(zk, TIMEOUT_MS, NULL, NULL, &plain));
  mzk_reader_follow_candidates(r);
  mzk_view v;
  /* Nothing yet: no candidate, no active master, not connected before a
   * session (the elector may be NULL: not started). */
  mzk_view_get(NULL, r, NULL, 4321, &v);
  CU_ASSERT_EQUAL(v.session, MZK_SESSION_CONNECTING);
  CU_ASSERT_EQUAL(v.session_timeout_ms, 4321);
  CU_ASSERT_FALSE(v.self_active);
  CU_ASSERT_TRUE(wait_view(NULL, r, NULL, 0, false, &v));
  cand c[3];
  for (int i = 0; i < 3; i++) cand_start(&c[i], zk, i + 1, 0, TIMEOUT_MS);
  uint64_t e0 = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 0, 20000, &e0), 0);
  /* As the active master sees it. */
  CU_ASSERT_TRUE(wait_view(c[0].e, r, c[0].rpc, 2, true, &v));
  CU_ASSERT_TRUE(v.self_active);
  CU_ASSERT_EQUAL(v.self_epoch, e0);
  CU_ASSERT_EQUAL(v.session, MZK_SESSION_CONNECTED);
  CU_ASSERT_EQUAL(v.session_timeout_ms, TIMEOUT_MS);
  CU_ASSERT(v.session_id != 0);
  CU_ASSERT_STRING_EQUAL(v.active.rpc_addr, c[0].rpc);
  CU_ASSERT_EQUAL(v.active.epoch, e0);
  CU_ASSERT_EQUAL(v.n_shown, 2);
  CU_ASSERT_STRING_EQUAL(v.standbys[0].rpc_addr, c[1].rpc); /* next first */
  CU_ASSERT_STRING_EQUAL(v.standbys[1].rpc_addr, c[2].rpc);
  CU_ASSERT_STRING_EQUAL(v.standbys[0].http_addr, "10.0.0.1:8080");
  /* As a standby sees it. */
  mzk_view_get(c[1].e, r, c[1].rpc, TIMEOUT_MS, &v);
  CU_ASSERT_FALSE(v.self_active);
  CU_ASSERT_EQUAL(v.self_epoch, 0);
  CU_ASSERT_STRING_EQUAL(v.active.rpc_addr, c[0].rpc);
  /* Without following, no list. */
  mzk_view_get(NULL, plain, NULL, TIMEOUT_MS, &v);
  CU_ASSERT_FALSE(v.standbys_known);
  CU_ASSERT_EQUAL(v.n_standbys, 0);
  /* A standby leaves; then the active one: the view follows. */
  cand_close(&c[2]);
  CU_ASSERT_TRUE(wait_view(c[0].e, r, c[0].rpc, 1, true, &v));
  CU_ASSERT_STRING_EQUAL(v.standbys[0].rpc_addr, c[1].rpc);
  cand_close(&c[0]);
  uint64_t e1 = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 1, 20000, &e1), 1);
  CU_ASSERT_TRUE(wait_view(c[1].e, r, c[1].rpc, 0, true, &v));
  CU_ASSERT_STRING_EQUAL(v.active.rpc_addr, c[1].rpc);
  CU_ASSERT_EQUAL(v.self_epoch, e1);
  cand_close(&c[1]);
  CU_ASSERT_TRUE(wait_view(NULL, r, NULL, 0, false, &v));
  mzk_reader_close(plain);
  mzk_reader_close(r);
}

/* A standby in the middle leaves: only the one behind it is woken, and the
 * active master keeps its epoch (no election happened). */
static void test_middle_departure(void) {
  char zk[600];
  spec(zk, sizeof zk);
  cand c[3];
  for (int i = 0; i < 3; i++) cand_start(&c[i], zk, i + 1, 0, TIMEOUT_MS);
  uint64_t e0 = 0, e1 = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 0, 20000, &e0), 0);
  cand_close(&c[1]);
  uint64_t deadline = now_ms() + 10000;
  while (watch_events(&c[2]) == 0 && now_ms() < deadline) sleep_ms(10);
  CU_ASSERT_EQUAL(watch_events(&c[2]), 1);
  CU_ASSERT_EQUAL(watch_events(&c[0]), 0);
  sleep_ms(300);
  CU_ASSERT_EQUAL(the_active(c, 3, &e1), 0);
  CU_ASSERT_EQUAL(e1, e0);
  CU_ASSERT_EQUAL(atomic_load(&c[0].ups), 1);
  /* The last one now watches the first and wins when it goes. */
  cand_close(&c[0]);
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 2, 20000, &e1), 2);
  CU_ASSERT(e1 > e0);
  CU_ASSERT_EQUAL(watch_events(&c[2]), 2);
  cand_close(&c[2]);
}

/* Epochs grow across complete restarts of every candidate, and the owner's
 * floor (the highest epoch its own log has seen) is respected. */
static void test_epochs_never_reused(void) {
  char zk[600];
  spec(zk, sizeof zk);
  uint64_t last = 0;
  for (int round = 0; round < 3; round++) {
    cand c[2];
    for (int i = 0; i < 2; i++) cand_start(&c[i], zk, i + 1, 0, TIMEOUT_MS);
    uint64_t ep = 0;
    CU_ASSERT_FATAL(wait_active(c, 2, -2, 20000, &ep) >= 0);
    CU_ASSERT(ep > last);
    last = ep;
    for (int i = 0; i < 2; i++) cand_close(&c[i]);
  }
  cand f;
  cand_start(&f, zk, 9, 1000, TIMEOUT_MS);
  uint64_t ep = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(&f, 1, 0, 20000, &ep), 0);
  CU_ASSERT_EQUAL(ep, 1001);
  cand_close(&f);
  cand_start(&f, zk, 9, 0, TIMEOUT_MS);
  CU_ASSERT_EQUAL_FATAL(wait_active(&f, 1, 0, 20000, &ep), 0);
  CU_ASSERT_EQUAL(ep, 1002);
  cand_close(&f);
}

/* A damaged /master/epoch stops every election (rather than guess an epoch
 * that might be reused); once an operator restores it, the next win is
 * above the restored value. */
static void test_epoch_node_damaged(void) {
  char zk[600];
  spec(zk, sizeof zk);
  char *hosts, *chroot;
  TU_OK(mzk_spec_parse(zk, &hosts, &chroot));
  char epath[700];
  snprintf(epath, sizeof epath, "%s/master/epoch", chroot);
  cand c;
  cand_start(&c, zk, 1, 0, TIMEOUT_MS);
  uint64_t ep = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(&c, 1, 0, 20000, &ep), 0);
  cand_close(&c);

  zhandle_t *zh = zookeeper_init(hosts, NULL, TIMEOUT_MS, NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(zh);
  uint64_t deadline = now_ms() + 20000;
  while (zoo_state(zh) != ZOO_CONNECTED_STATE && now_ms() < deadline)
    sleep_ms(10);
  CU_ASSERT_EQUAL_FATAL(zoo_set(zh, epath, "garbage", 7, -1), ZOK);
  cand_begin(&c, zk, 2, 0, TIMEOUT_MS, false);
  for (int i = 0; i < 40; i++) {
    CU_ASSERT_EQUAL(the_active(&c, 1, NULL), -1);
    sleep_ms(50);
  }
  CU_ASSERT_EQUAL(zoo_set(zh, epath, "41", 2, -1), ZOK);
  CU_ASSERT_EQUAL(wait_active(&c, 1, 0, 20000, &ep), 0);
  CU_ASSERT_EQUAL(ep, 42);
  cand_close(&c);
  zookeeper_close(zh);
  free(hosts);
  free(chroot);
}

/* ZooKeeper down: the active master stops acting well before anyone could
 * win elsewhere, nobody is active during the outage, and one is active
 * again (with a new epoch) once ZooKeeper returns. */
static void test_zookeeper_outage(void) {
  char zk[600];
  spec(zk, sizeof zk);
  cand c[2];
  for (int i = 0; i < 2; i++) cand_start(&c[i], zk, i + 1, 0, TIMEOUT_MS);
  uint64_t e0 = 0, e1 = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 2, 0, 20000, &e0), 0);
  mzk_reader *r;
  TU_OK(mzk_reader_open(zk, TIMEOUT_MS, NULL, NULL, &r));
  mzk_master m;
  TU_OK(mzk_reader_wait(r, e0, 10000, &m));
  uint64_t t0 = now_ms();
  TU_OK(zks_stop(g_zk, 0));
  uint64_t stopped = now_ms();
  /* The lease bounds how long the master can believe it leads: half the
   * session timeout after the last answered write, which was sent before
   * the stop began. */
  while (the_active(c, 2, NULL) >= 0 && now_ms() < t0 + 20000) sleep_ms(5);
  uint64_t gone = now_ms();
  CU_ASSERT(gone <= stopped + TIMEOUT_MS / 2 + 50);
  CU_ASSERT(atomic_load(&c[0].downs) >= 1);
  for (int i = 0; i < 40; i++) {
    CU_ASSERT_EQUAL(the_active(c, 2, NULL), -1);
    sleep_ms(50);
  }
  TU_OK(zks_restart(g_zk, 0));
  int w = wait_active(c, 2, -2, 30000, &e1);
  CU_ASSERT_FATAL(w >= 0);
  CU_ASSERT(e1 > e0);
  /* The reader, cut off as long as the candidates, follows the new win. */
  TU_OK(mzk_reader_wait(r, e1, 20000, &m));
  CU_ASSERT_EQUAL(m.epoch, e1);
  CU_ASSERT_STRING_EQUAL(m.rpc_addr, c[w].rpc);
  mzk_reader_close(r);
  for (int i = 0; i < 2; i++) cand_close(&c[i]);
}

/* A candidate process frozen (SIGSTOP) past its session timeout: the other
 * takes over with a higher epoch; the frozen one, thawed, reports itself
 * not active at once (its lease ran out while it slept) and rejoins as a
 * standby with a new session. */
static pid_t spawn_candidate(const char *zk, int i, const char *status) {
  /* mzk-candidate is built beside this program. */
  char exe[600], rpc[32], tmo[16];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
  CU_ASSERT_FATAL(n > 0);
  exe[n] = '\0';
  strcpy(strrchr(exe, '/') + 1, "mzk-candidate");
  snprintf(rpc, sizeof rpc, "10.0.0.%d:7000", i);
  snprintf(tmo, sizeof tmo, "%d", TIMEOUT_MS);
  pid_t p = fork();
  if (p == 0) {
    if (freopen("/dev/null", "w", stdout) == NULL) _exit(127);
    execl(exe, exe, "--zk", zk, "--rpc", rpc, "--timeout-ms", tmo,
          "--status", status, (char *)NULL);
    _exit(127);
  }
  return p;
}

/* Reads "key N" from a status file; -1 when absent. */
static long long status_get(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  char line[256];
  long long v = -1;
  size_t k = strlen(key);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, k) == 0 && line[k] == ' ') v = atoll(line + k + 1);
  fclose(f);
  return v;
}

static bool wait_status(const char *path, const char *key, long long want,
                        int timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  while (status_get(path, key) != want) {
    if (now_ms() >= deadline) return false;
    sleep_ms(20);
  }
  return true;
}

static void test_frozen_master_loses_session(void) {
  char zk[600], st[2][700];
  spec(zk, sizeof zk);
  pid_t p[2];
  for (int i = 0; i < 2; i++) {
    snprintf(st[i], sizeof st[i], "%s/cand%d", tu_tmpdir(), i);
    p[i] = spawn_candidate(zk, i + 1, st[i]);
    CU_ASSERT_FATAL(p[i] > 0);
    CU_ASSERT_FATAL(wait_status(st[i], "sessions", 1, 20000));
  }
  CU_ASSERT_FATAL(wait_status(st[0], "active", 1, 20000));
  long long e0 = status_get(st[0], "epoch");
  CU_ASSERT_EQUAL(status_get(st[1], "active"), 0);
  kill(p[0], SIGSTOP);
  CU_ASSERT(wait_status(st[1], "active", 1, TIMEOUT_MS * 4));
  CU_ASSERT(status_get(st[1], "epoch") > e0);
  long long frozen_at = status_get(st[0], "writes");
  kill(p[0], SIGCONT);
  /* Every status computed after waking must say "not active": its lease
   * ran out while it slept, whatever its ZooKeeper client has noticed yet.
   * (The first rename after waking may carry a status computed just before
   * the freeze; the second cannot.) */
  uint64_t deadline = now_ms() + 10000;
  while (status_get(st[0], "writes") <= frozen_at + 1 && now_ms() < deadline)
    sleep_ms(2);
  CU_ASSERT(status_get(st[0], "writes") > frozen_at + 1);
  CU_ASSERT_EQUAL(status_get(st[0], "active"), 0);
  CU_ASSERT(wait_status(st[0], "sessions", 2, 20000));
  sleep_ms(300);
  CU_ASSERT_EQUAL(status_get(st[0], "active"), 0);
  CU_ASSERT_EQUAL(status_get(st[1], "active"), 1);
  for (int i = 0; i < 2; i++) {
    kill(p[i], SIGTERM);
    int ws;
    waitpid(p[i], &ws, 0);
    CU_ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  }
}

/* Ensemble: one ZooKeeper server killed; the election still works, and an
 * active master's departure still hands over to the next candidate. */
static void test_ensemble_node_killed(void) {
  char zk[600];
  spec(zk, sizeof zk);
  cand c[3];
  for (int i = 0; i < 3; i++) cand_start(&c[i], zk, i + 1, 0, TIMEOUT_MS);
  uint64_t e0 = 0, e1 = 0, e2 = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 0, 20000, &e0), 0);
  TU_OK(zks_stop(g_zk, 1));
  /* Whoever was connected to server 1 moves to another within the session
   * timeout; the first candidate may step down and win again meanwhile,
   * but never two at once, and one is active afterwards. */
  sleep_ms(TIMEOUT_MS);
  /* 60 s, not 20: the two ZooKeeper servers left must elect their own
   * leader before any client is served, and on a loaded 2-core machine
   * (the sanitizer run beside other tests) that Java election once took
   * longer than 20 s, every client refused meanwhile. It bounds
   * ZooKeeper, not Mica's election. */
  CU_ASSERT_FATAL(wait_active(c, 3, -2, 60000, &e1) >= 0);
  CU_ASSERT(e1 >= e0);
  int w = the_active(c, 3, NULL);
  CU_ASSERT_FATAL(w >= 0);
  cand_close(&c[w]);
  int w2 = wait_active(c, 3, -2, 20000, &e2);
  CU_ASSERT_FATAL(w2 >= 0);
  CU_ASSERT(w2 != w);
  CU_ASSERT(e2 > e1);
  for (int i = 0; i < 3; i++)
    if (c[i].e) cand_close(&c[i]);
  TU_OK(zks_restart(g_zk, 1));
}

/* Ensemble: a new leader election inside ZooKeeper is fine too, and the
 * same three-candidate handover works on a quorum. */
static void test_ensemble_three_candidates(void) {
  char zk[600];
  spec(zk, sizeof zk);
  cand c[3];
  for (int i = 0; i < 3; i++) cand_start(&c[i], zk, i + 1, 0, TIMEOUT_MS);
  uint64_t e0 = 0, e1 = 0;
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 0, 20000, &e0), 0);
  cand_close(&c[0]);
  CU_ASSERT_EQUAL_FATAL(wait_active(c, 3, 1, 20000, &e1), 1);
  CU_ASSERT(e1 > e0);
  CU_ASSERT_EQUAL(watch_events(&c[2]), 0);
  cand_close(&c[1]);
  cand_close(&c[2]);
}

static void add_suites(void) {
  static CU_TestInfo unit[] = {
      {"spec_parse", test_spec_parse},
      {"record", test_record},
      {"candidate_record", test_candidate_record},
      {"bad_options", test_bad_options},
      CU_TEST_INFO_NULL};
  tu_add_suite("mzk_unit", unit);
  static CU_TestInfo standalone[] = {
      {"one_of_three_and_no_herd", test_one_of_three_and_no_herd},
      {"middle_departure", test_middle_departure},
      {"view", test_view},
      {"http_address_republished", test_http_address_republished},
      {"epochs_never_reused", test_epochs_never_reused},
      {"frozen_master_loses_session", test_frozen_master_loses_session},
      {"epoch_node_damaged", test_epoch_node_damaged},
      {"zookeeper_outage", test_zookeeper_outage},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("mzk_standalone", standalone_setup,
                             server_cleanup);
  for (CU_TestInfo *t = standalone; t->pName; t++)
    CU_add_test(s, t->pName, t->pTestFunc);
  static CU_TestInfo ensemble[] = {
      {"three_candidates", test_ensemble_three_candidates},
      {"node_killed", test_ensemble_node_killed},
      CU_TEST_INFO_NULL};
  s = CU_add_suite("mzk_ensemble", ensemble_setup, server_cleanup);
  for (CU_TestInfo *t = ensemble; t->pName; t++)
    CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
