/* test_tserver_crash: durability and the master lease, against real
 * mica-tserver processes.
 *
 * - kill -9 while 8 clients write durably: a new process over the same
 *   data root reopens the tablet, and every acknowledged write is there.
 * - SIGTERM while clients write: exit status 0, and after a reopen every
 *   acknowledged write is there.
 * - A fake master (an RPC server in this process answering RegisterServer,
 *   Heartbeat and ReportSplit): the server registers and heartbeats; when
 *   heartbeats stop being answered OK it stops acknowledging reads and
 *   writes once its lease is over (LEASE_EXPIRED), re-registers when the
 *   master no longer knows it, reporting its tablets, and resumes serving
 *   with the same data; a split goes through ReportSplit and the daughters
 *   the master assigned serve; a tablet listed in close_tablets is closed. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/server/tsh.h"

#define S(str) slice_from_str(str)
#define WRITERS 8
#define MAX_PER_WRITER 100000

typedef struct writer {
  int id;
  const char *addr;
  tsh_ref ref;
  atomic_int acked; /* keys 0..acked-1 were acknowledged */
  atomic_bool stop;
} writer;

static void key_of(int w, int i, char *out, size_t n) {
  snprintf(out, n, "w%d-%06d", w, i);
}

static void *writer_main(void *p) {
  writer *w = p;
  rpc_channel *ch = NULL;
  if (rpc_channel_new(w->addr, NULL, &ch) != NULL) return NULL;
  char key[32];
  for (int i = 0; i < MAX_PER_WRITER && !atomic_load(&w->stop); i++) {
    key_of(w->id, i, key, sizeof key);
    mica_err *e = tsh_put(ch, w->ref, S(key), S(key));
    if (e != NULL) {
      err_free(e);
      break;
    }
    atomic_store(&w->acked, i + 1);
  }
  rpc_channel_free(ch);
  return NULL;
}

/* Runs WRITERS clients against `p` until at least `min_acked` writes were
 * acknowledged, then sends `sig` while they are still writing. Returns the
 * process's exit status. */
static int write_and_signal(tsh_proc *p, tsh_ref ref, writer *ws,
                            int min_acked, int sig) {
  pthread_t th[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    ws[i].id = i;
    ws[i].addr = p->addr;
    ws[i].ref = ref;
    atomic_init(&ws[i].acked, 0);
    atomic_init(&ws[i].stop, false);
    pthread_create(&th[i], NULL, writer_main, &ws[i]);
  }
  for (int t = 0; t < 6000; t++) {
    int total = 0;
    for (int i = 0; i < WRITERS; i++) total += atomic_load(&ws[i].acked);
    if (total >= min_acked) break;
    usleep(5000);
  }
  int st = tsh_stop(p, sig);
  for (int i = 0; i < WRITERS; i++) {
    atomic_store(&ws[i].stop, true);
    pthread_join(th[i], NULL);
  }
  return st;
}

/* Every acknowledged key of `ws` is readable through `ref` on `p`. */
static void check_acked(tsh_proc *p, tsh_ref ref, writer *ws) {
  buf v = BUF_INIT;
  char key[32];
  int total = 0, missing = 0;
  for (int w = 0; w < WRITERS; w++)
    for (int i = 0; i < atomic_load(&ws[w].acked); i++) {
      key_of(w, i, key, sizeof key);
      mica_err *e = tsh_get(p->ch, ref, S(key), &v);
      if (e != NULL || !slice_eq(buf_slice(&v), S(key))) missing++;
      err_free(e);
      total++;
    }
  CU_ASSERT(total > 0);
  CU_ASSERT_EQUAL(missing, 0);
  if (missing) fprintf(stderr, "\n%d of %d acknowledged writes lost\n",
                       missing, total);
  buf_free(&v);
}

static void test_kill9(void) {
  const char *dir = tu_tmpdir();
  tsh_proc p;
  TU_OK(tsh_start(dir, NULL, &p));
  tsh_ref r = {1, 1, 1};
  TU_OK(tsh_open(p.ch, r, NULL, NULL));
  writer ws[WRITERS];
  int st = write_and_signal(&p, r, ws, 2000, SIGKILL);
  CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  TU_OK(tsh_start(dir, NULL, &p));
  tsh_ref r2 = {1, 1, 2};
  TU_OK(tsh_open(p.ch, r2, NULL, NULL));
  check_acked(&p, r2, ws);
  /* And once more, killed again right after the reopen. */
  CU_ASSERT(WIFSIGNALED(tsh_stop(&p, SIGKILL)));
  TU_OK(tsh_start(dir, NULL, &p));
  tsh_ref r3 = {1, 1, 3};
  TU_OK(tsh_open(p.ch, r3, NULL, NULL));
  check_acked(&p, r3, ws);
  CU_ASSERT_EQUAL(tsh_stop(&p, SIGTERM), 0);
}

static void test_sigterm(void) {
  const char *dir = tu_tmpdir();
  tsh_proc p;
  TU_OK(tsh_start(dir, NULL, &p));
  tsh_ref r = {5, 1, 1};
  TU_OK(tsh_open(p.ch, r, "w", "x"));
  writer ws[WRITERS];
  int st = write_and_signal(&p, r, ws, 2000, SIGTERM);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  TU_OK(tsh_start(dir, NULL, &p));
  tsh_ref r2 = {5, 1, 2};
  TU_OK(tsh_open(p.ch, r2, "w", "x"));
  check_acked(&p, r2, ws);
  CU_ASSERT_EQUAL(tsh_stop(&p, SIGTERM), 0);
}

/* ---- a fake master ---- */

static pthread_mutex_t fm_mu = PTHREAD_MUTEX_INITIALIZER;
static int fm_heartbeat_code; /* what heartbeats answer */
static int fm_registers, fm_heartbeats, fm_splits;
static size_t fm_last_register_tablets;
static uint64_t fm_split_parent, fm_split_server;
static uint64_t fm_close_id, fm_close_ae; /* listed in close_tablets */

static void fm_register(rpc_call *call, const void *request,
                        void *ctx) {
  (void)ctx;
  const rpc_register_server_request *req =
      (const rpc_register_server_request *)request;
  rpc_register_server_response resp =
      {0};
  rpc_status st = {0};
  pthread_mutex_lock(&fm_mu);
  fm_registers++;
  fm_last_register_tablets = req->n_tablets;
  pthread_mutex_unlock(&fm_mu);
  resp.status = &st;
  resp.server_id = 42;
  resp.lease_ms = 1500;
  resp.heartbeat_interval_ms = 100;
  rpc_call_reply(call, &resp);
}

static void fm_heartbeat(rpc_call *call, const void *request,
                         void *ctx) {
  (void)ctx;
  const rpc_heartbeat_request *req =
      (const rpc_heartbeat_request *)request;
  rpc_heartbeat_response resp = {0};
  rpc_status st = {0};
  rpc_tablet_ref ref = {0};
  pthread_mutex_lock(&fm_mu);
  fm_heartbeats++;
  st.code = fm_heartbeat_code;
  if (fm_close_id != 0)
    for (size_t i = 0; i < req->n_tablets; i++)
      if (req->tablets[i].tablet->tablet_id == fm_close_id) {
        ref.tablet_id = fm_close_id;
        ref.assign_epoch = fm_close_ae;
        resp.close_tablets = &ref;
        resp.n_close_tablets = 1;
      }
  pthread_mutex_unlock(&fm_mu);
  if (st.code != 0) st.message = "fake master says no";
  resp.status = &st;
  resp.lease_ms = 1500;
  rpc_call_reply(call, &resp);
}

static void fm_report_split(rpc_call *call, const void *request,
                            void *ctx) {
  (void)ctx;
  const rpc_report_split_request *req =
      (const rpc_report_split_request *)request;
  rpc_report_split_response resp = {0};
  rpc_status st = {0};
  rpc_tablet_route l = {0},
                        r = {0};
  rpc_tablet_descriptor ld = {0},
                             rd = {0};
  rpc_location loc = {0};
  pthread_mutex_lock(&fm_mu);
  fm_splits++;
  fm_split_parent = req->parent ? req->parent->tablet_id : 0;
  fm_split_server = req->server_id;
  pthread_mutex_unlock(&fm_mu);
  loc.server_id = 42;
  loc.assign_epoch = req->parent->assign_epoch;
  ld.tablet_id = 11;
  ld.range_epoch = req->parent->range_epoch + 1;
  ld.end_key = req->split_key;
  rd.tablet_id = 12;
  rd.range_epoch = req->parent->range_epoch + 1;
  rd.start_key = req->split_key;
  l.desc = &ld;
  l.location = &loc;
  r.desc = &rd;
  r.location = &loc;
  resp.status = &st;
  resp.left = &l;
  resp.right = &r;
  rpc_call_reply(call, &resp);
}

static int fm_get(int *v) {
  pthread_mutex_lock(&fm_mu);
  int x = *v;
  pthread_mutex_unlock(&fm_mu);
  return x;
}

/* Waits up to `ms` for `cond` to become true. */
#define WAIT_FOR(cond, ms)                                   \
  do {                                                       \
    for (int w_ = 0; w_ < (ms) / 10 && !(cond); w_++)        \
      usleep(10000);                                         \
  } while (0)

static void test_master_lease(void) {
  rpc_server *ms = NULL;
  TU_OK(rpc_server_new(NULL, &ms));
  const rpc_handler h[] = {
      {&rpc_m_master_register_server, fm_register, NULL, 0},
      {&rpc_m_master_heartbeat, fm_heartbeat, NULL, 0},
      {&rpc_m_master_report_split, fm_report_split, NULL, 0},
  };
  TU_OK(rpc_server_register(ms, h, 3));
  TU_OK(rpc_server_start(ms));
  const char *extra[] = {"--master", rpc_server_address(ms), "--lease-ms",
                         "1500", "--heartbeat-ms", "100", NULL};
  tsh_proc p;
  TU_OK(tsh_start(tu_tmpdir(), extra, &p));
  WAIT_FOR(fm_get(&fm_heartbeats) >= 2, 20000);
  CU_ASSERT_EQUAL_FATAL(fm_get(&fm_registers), 1);

  tsh_ref r = {1, 1, 1};
  TU_OK(tsh_open(p.ch, r, NULL, NULL));
  TU_OK(tsh_put(p.ch, r, S("a"), S("1")));
  buf v = BUF_INIT;
  TU_OK(tsh_get(p.ch, r, S("a"), &v));

  /* Heartbeats fail: after the lease, nothing is acknowledged. */
  pthread_mutex_lock(&fm_mu);
  fm_heartbeat_code = MICA_UNAVAILABLE;
  pthread_mutex_unlock(&fm_mu);
  mica_err *e = NULL;
  for (int i = 0; i < 500; i++) {
    e = tsh_get(p.ch, r, S("a"), &v);
    if (e != NULL) break;
    usleep(10000);
  }
  TU_ERR(e, MICA_LEASE_EXPIRED);
  TU_ERR(tsh_put(p.ch, r, S("b"), S("2")), MICA_LEASE_EXPIRED);
  TU_ERR(tsh_get(p.ch, r, S("a"), &v), MICA_LEASE_EXPIRED);
  rpc_tablet_info_request ir = {0};
  void *m = NULL;
  TU_OK(rpc_unary(p.ch, &rpc_m_ts_tablet_info, &ir, 10000, &m));
  const rpc_tablet_info_response *info =
      (const rpc_tablet_info_response *)m;
  CU_ASSERT_EQUAL(info->server_id, 42);
  CU_ASSERT(info->n_tablets == 1 && info->tablets[0].paused);
  rpc_msg_free(m);

  /* The master forgot the server: it registers again with its tablets
   * and serves the same data once renewed. */
  pthread_mutex_lock(&fm_mu);
  fm_heartbeat_code = MICA_NOT_FOUND;
  pthread_mutex_unlock(&fm_mu);
  WAIT_FOR(fm_get(&fm_registers) >= 2, 20000);
  pthread_mutex_lock(&fm_mu);
  fm_heartbeat_code = MICA_OK;
  CU_ASSERT(fm_registers >= 2);
  CU_ASSERT_EQUAL(fm_last_register_tablets, 1);
  pthread_mutex_unlock(&fm_mu);
  e = NULL;
  for (int i = 0; i < 500; i++) {
    err_free(e);
    e = tsh_get(p.ch, r, S("a"), &v);
    if (e == NULL) break;
    usleep(10000);
  }
  TU_OK(e);
  CU_ASSERT(slice_eq(buf_slice(&v), S("1")));
  TU_OK(tsh_put(p.ch, r, S("b"), S("2")));

  /* A split goes through ReportSplit; the daughters the master named
   * serve. */
  rpc_ts_split_tablet_request sreq = {0};
  rpc_tablet_ref sref = tsh_pb_ref(r);
  sreq.tablet = &sref;
  sreq.split_key = tsh_bin(S("b"));
  TU_OK(rpc_unary(p.ch, &rpc_m_ts_split_tablet, &sreq, 30000, &m));
  TU_OK(rpc_status_err(((rpc_ts_split_tablet_response *)m)->status));
  rpc_msg_free(m);
  CU_ASSERT_EQUAL(fm_get(&fm_splits), 1);
  pthread_mutex_lock(&fm_mu);
  CU_ASSERT_EQUAL(fm_split_parent, 1);
  CU_ASSERT_EQUAL(fm_split_server, 42);
  pthread_mutex_unlock(&fm_mu);
  TU_OK(tsh_get(p.ch, (tsh_ref){11, 2, 1}, S("a"), &v));
  TU_OK(tsh_get(p.ch, (tsh_ref){12, 2, 1}, S("b"), &v));

  /* The master lists daughter 12 in close_tablets: it stops serving. */
  pthread_mutex_lock(&fm_mu);
  fm_close_id = 12;
  fm_close_ae = 1;
  pthread_mutex_unlock(&fm_mu);
  e = NULL;
  for (int i = 0; i < 500; i++) {
    e = tsh_get(p.ch, (tsh_ref){12, 2, 1}, S("b"), &v);
    if (e != NULL) break;
    usleep(10000);
  }
  TU_ERR(e, MICA_NOT_SERVING);
  TU_OK(tsh_get(p.ch, (tsh_ref){11, 2, 1}, S("a"), &v));

  CU_ASSERT_EQUAL(tsh_stop(&p, SIGTERM), 0);
  rpc_server_free(ms);
  buf_free(&v);
}

static const CU_TestInfo tests[] = {
    {"kill9_during_writes", test_kill9},
    {"sigterm_during_writes", test_sigterm},
    {"master_lease", test_master_lease},
    CU_TEST_INFO_NULL};

static void add_suites(void) { tu_add_suite("tserver_crash", tests); }

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
