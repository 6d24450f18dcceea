/* test_cluster_s3_faults: a cluster on a real S3 server (s3rver) whose
 * every S3 request goes through the fault-injecting proxy
 * (tests/common/s3_proxy.js, started by tests/harness/s3proxy.h), while
 * writers keep writing (issue 16, "Failure handling").
 *
 * Tablet servers flush a 64 KiB memtable, so writes turn into SSTable and
 * manifest PUTs all the time. Phase by phase the proxy makes S3 fail the
 * ways it does: 500, 503, SlowDown, connection resets before an answer,
 * uploads cut in half, answers lost after the request took effect,
 * requests held past the attempt timeout (a timeout; the request lands
 * late), and GET bodies cut short (a short read), during:
 *
 *  - flushes under writes (PUTs of SSTables and manifests);
 *  - a split (manifests, listings, deletes);
 *  - a move (the old owner's close, the new owner's cold open and reads);
 *  - the master's own log (its PUTs under master/) while it creates a
 *    table and moves a tablet;
 *  - an outage longer than the servers' S3 deadline: flushes fail, and the
 *    failure is logged naming the request, the object and S3's answer;
 *    writes are acknowledged again once S3 is back;
 *  - kill -9 of a tablet server, its tablets reopened through faults.
 *
 * After each phase: every fault armed was injected (the proxy's log says
 * so), every process still runs, and a scan finds every acknowledged
 * write with its value and no row with a wrong value. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/s3proxy.h"
#include "tests/harness/s3server.h"
#include "tests/harness/testutil.h"

#define WRITERS 2
#define MAXSEQ 200000

static cluster *g_c;

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.s3 = true;
  o.s3_proxy = true;
  o.tservers = 2;
  /* A held request is a timeout after 1.5 s; the servers give one S3
   * operation 6 s, so the outage below outlasts it. */
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      "--s3-attempt-timeout-ms", "1500",
                                      NULL};
  static const char *const targs[] = {"--memtable-size", "64K",
                                      "--s3-attempt-timeout-ms", "1500",
                                      "--s3-deadline-ms", "6000", NULL};
  o.master_args = margs;
  o.tserver_args = targs;
  o.lease_ms = 4000;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

/* ---- writers: w<id>-<seq>; acked[seq] once acknowledged ---- */

typedef struct writer {
  pthread_t th;
  int id;
  atomic_bool acked[MAXSEQ];
  atomic_int next, n_acked, n_failed;
  char first_err[512];
} writer;

static writer *g_w[WRITERS];
static atomic_bool g_stop;

static void key_of(int w, int seq, char *k, size_t n) {
  snprintf(k, n, "w%d-%07d", w, seq);
}

/* 600 bytes that only this key has. */
static void value_of(const char *k, char *v, size_t n) {
  size_t kl = strlen(k);
  size_t i = 0;
  while (i + 1 < n && i < 600) {
    v[i] = k[i % kl];
    i++;
  }
  v[i] = '\0';
}

static void *writer_main(void *arg) {
  writer *w = arg;
  while (!atomic_load(&g_stop)) {
    int seq = atomic_load(&w->next);
    if (seq >= MAXSEQ) break;
    char k[32], v[700];
    key_of(w->id, seq, k, sizeof k);
    value_of(k, v, sizeof v);
    mica_err *err = kvc_put(g_c, "faults", slice_from_str(k),
                            slice_from_str(v), 30000);
    if (err == NULL) {
      atomic_store(&w->acked[seq], true);
      atomic_fetch_add(&w->n_acked, 1);
    } else {
      /* Not acknowledged: may or may not be there, with its own value. */
      if (atomic_fetch_add(&w->n_failed, 1) == 0)
        snprintf(w->first_err, sizeof w->first_err, "%s", err_msg(err));
      err_free(err);
    }
    atomic_store(&w->next, seq + 1);
  }
  return NULL;
}

static int total_acked(void) {
  int n = 0;
  for (int i = 0; i < WRITERS; i++) n += atomic_load(&g_w[i]->n_acked);
  return n;
}

/* ---- checks ---- */

typedef struct scan_state {
  int rows, wrong;
  bool *seen[WRITERS];
} scan_state;

static bool check_row(void *arg, slice key, slice value) {
  scan_state *s = arg;
  char k[64], want[700];
  int w, seq;
  snprintf(k, sizeof k, "%.*s", (int)(key.len < 63 ? key.len : 63),
           (const char *)key.data);
  s->rows++;
  if (sscanf(k, "w%d-%d", &w, &seq) != 2 || w < 0 || w >= WRITERS ||
      seq < 0 || seq >= MAXSEQ) {
    fprintf(stderr, "\n  unexpected row %s", k);
    s->wrong++;
    return true;
  }
  value_of(k, want, sizeof want);
  if (!slice_eq(value, slice_from_str(want))) {
    fprintf(stderr, "\n  %s: wrong value (%zu bytes)", k, value.len);
    s->wrong++;
  }
  s->seen[w][seq] = true;
  return true;
}

/* A scan of the whole table: every acknowledged write there with its
 * value, nothing with a wrong value. */
static void check_data(const char *when) {
  scan_state s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < WRITERS; i++) s.seen[i] = xcalloc(MAXSEQ, sizeof(bool));
  /* Acknowledgements counted before the scan started: a write acked
   * during the scan may lie behind its cursor. */
  int upto[WRITERS];
  for (int i = 0; i < WRITERS; i++) upto[i] = atomic_load(&g_w[i]->next);
  TU_OK(kvc_scan(g_c, "faults", check_row, &s, 60000));
  int lost = 0;
  for (int i = 0; i < WRITERS; i++)
    for (int q = 0; q < upto[i]; q++)
      if (atomic_load(&g_w[i]->acked[q]) && !s.seen[i][q]) {
        if (lost++ < 5)
          fprintf(stderr, "\n  %s: acknowledged w%d-%07d lost", when, i, q);
      }
  fprintf(stderr, "\n  %s: %d rows scanned, %d acknowledged writes, %d lost, "
          "%d wrong\n", when, s.rows, total_acked(), lost, s.wrong);
  CU_ASSERT_EQUAL(lost, 0);
  CU_ASSERT_EQUAL(s.wrong, 0);
  for (int i = 0; i < WRITERS; i++) free(s.seen[i]);
}

/* Every process started is still running (none died of an S3 error). */
static void check_alive(int skip_slot) {
  CU_ASSERT(cl_master_pid(g_c) > 0 && kill(cl_master_pid(g_c), 0) == 0);
  for (int i = 0; i < cl_tserver_count(g_c); i++) {
    if (i == skip_slot) continue;
    pid_t p = cl_tserver_pid(g_c, i);
    if (p <= 0 || kill(p, 0) != 0)
      fprintf(stderr, "\n  tablet server slot %d is not running\n", i);
    CU_ASSERT(p > 0 && kill(p, 0) == 0);
  }
}

/* ---- faults ---- */

static void arm(const char *const *specs) {
  TU_OK(th_s3_proxy_ctl("POST", "reset", NULL));
  for (size_t i = 0; specs[i] != NULL; i++) TU_OK(th_s3_fault(specs[i]));
}

/* Lines of the proxy's log (since arm) that carry "fault=<kind> ". */
static int injected(const char *kind) {
  buf b = BUF_INIT;
  mica_err *err = th_s3_proxy_ctl("GET", "log", &b);
  if (err != NULL) {
    fprintf(stderr, "\n  proxy log: %s", err_msg(err));
    err_free(err);
    return 0;
  }
  char needle[64];
  snprintf(needle, sizeof needle, "fault=%s ", kind);
  int n = 0;
  for (const char *p = (const char *)b.data; (p = strstr(p, needle)); p++) n++;
  /* The last field of a line has no space after it. */
  snprintf(needle, sizeof needle, "fault=%s\n", kind);
  for (const char *p = (const char *)b.data; (p = strstr(p, needle)); p++) n++;
  buf_free(&b);
  return n;
}

/* Waits (writers running) until each kind was injected `want` times or
 * the deadline passes; then asserts it and drops what is left armed. */
static void await_faults(const char *phase, const char *const *kinds,
                         const int *want, int timeout_ms) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  bool all = false;
  while (!all && cl_now_ms() < until) {
    all = true;
    for (size_t i = 0; kinds[i] != NULL && all; i++)
      all = injected(kinds[i]) >= want[i];
    if (!all) cl_sleep_ms(200);
  }
  for (size_t i = 0; kinds[i] != NULL; i++) {
    int got = injected(kinds[i]);
    fprintf(stderr, "  %s: %d of %d %s faults injected\n", phase, got,
            want[i], kinds[i]);
    CU_ASSERT(got >= want[i]);
  }
  TU_OK(th_s3_faults_clear());
}

/* ---- master calls ---- */

static void locate(const char *table, const char *key, uint64_t *id,
                   uint64_t *server) {
  rpc_tablet_route *rt = NULL;
  rpc_lookup_tablets_response *lk = NULL;
  TU_OK(kvc_route(g_c, table, slice_from_str(key), 60000, &rt, &lk));
  *id = rt->desc->tablet_id;
  *server = rt->location->server_id;
  rpc_msg_free(lk);
}

/* Calls the master until it accepts (UNAVAILABLE while the tablet is in
 * transition) or 60 s pass. */
static mica_err *master_until_ok(const rpc_method *m, const void *q) {
  uint64_t until = cl_now_ms() + 60000;
  for (;;) {
    mica_err *err = cl_call_master(g_c, m, q, 30000, NULL);
    if (err == NULL || err_code(err) != MICA_UNAVAILABLE ||
        cl_now_ms() > until)
      return err;
    err_free(err);
    cl_sleep_ms(100);
  }
}

static uint64_t other_server(uint64_t from) {
  for (int i = 0; i < cl_tserver_count(g_c); i++) {
    uint64_t id = cl_tserver_id(g_c, i);
    if (cl_tserver_running(g_c, i) && id != 0 && id != from) return id;
  }
  return 0;
}

/* Waits until `table`'s tablet holding `key` serves on `server`. */
static void await_served_on(const char *table, const char *key,
                            uint64_t server) {
  uint64_t until = cl_now_ms() + 60000, id, at = 0;
  while (cl_now_ms() < until) {
    locate(table, key, &id, &at);
    if (at == server) return;
    cl_sleep_ms(100);
  }
  CU_ASSERT_EQUAL(at, server);
}

/* Reads every 7th acknowledged write by Get (point reads of a cold owner
 * go to S3 through whatever is armed). */
static void get_sample(const char *when) {
  buf v = BUF_INIT;
  int reads = 0, bad = 0;
  for (int w = 0; w < WRITERS; w++) {
    int upto = atomic_load(&g_w[w]->next);
    for (int q = 0; q < upto; q += 7) {
      if (!atomic_load(&g_w[w]->acked[q])) continue;
      char k[32], want[700];
      key_of(w, q, k, sizeof k);
      value_of(k, want, sizeof want);
      bool found = false;
      mica_err *err = kvc_get(g_c, "faults", slice_from_str(k), &found, &v,
                              30000);
      reads++;
      if (err != NULL) {
        fprintf(stderr, "\n  %s: get %s: %s", when, k, err_msg(err));
        err_free(err);
        bad++;
      } else if (!found || !slice_eq(buf_slice(&v), slice_from_str(want))) {
        fprintf(stderr, "\n  %s: get %s: %s", when, k,
                found ? "wrong value" : "acknowledged write missing");
        bad++;
      }
    }
  }
  buf_free(&v);
  fprintf(stderr, "  %s: %d gets, %d failed or wrong\n", when, reads, bad);
  CU_ASSERT(reads > 0);
  CU_ASSERT_EQUAL(bad, 0);
}

#define T "&match=/tablets/"

static void test_faults_under_writes(void) {
  TU_OK(kvc_create_table(g_c, "faults", NULL, 0));
  atomic_store(&g_stop, false);
  for (int i = 0; i < WRITERS; i++) {
    g_w[i] = xcalloc(1, sizeof(writer));
    g_w[i]->id = i;
    pthread_create(&g_w[i]->th, NULL, writer_main, g_w[i]);
  }
  while (total_acked() < 300) cl_sleep_ms(50);

  /* 1. Flushes under writes: every way a PUT fails. */
  {
    const char *const specs[] = {
        "kind=500&count=3&every=3&method=PUT" T,
        "kind=503&count=3&every=3&method=PUT" T,
        "kind=slowdown&count=3&every=3&method=PUT" T,
        "kind=reset&count=2&every=3&method=PUT" T,
        "kind=reset_upload&count=2&every=3&method=PUT" T,
        "kind=lost_answer&count=2&every=3&method=PUT" T,
        "kind=delay&ms=2500&count=1&every=3&method=PUT" T,
        NULL};
    const char *const kinds[] = {"500", "503", "slowdown", "reset",
                                 "reset_upload", "lost_answer", "delay",
                                 NULL};
    const int want[] = {3, 3, 3, 2, 2, 2, 1};
    arm(specs);
    await_faults("flushes", kinds, want, 60000);
    check_alive(-1);
    check_data("after PUT faults during flushes");
  }

  /* 2. A split through faults of every method. */
  {
    const char *const specs[] = {
        "kind=503&count=2&every=2" T,
        "kind=slowdown&count=2&every=2" T,
        "kind=reset&count=2&every=3" T,
        "kind=truncate&count=2&every=2&method=GET" T,
        "kind=lost_answer&count=2&every=2&method=PUT" T,
        NULL};
    const char *const kinds[] = {"503", "slowdown", "reset", NULL};
    const int want[] = {2, 2, 2};
    uint64_t id, server;
    locate("faults", "w1", &id, &server);
    arm(specs);
    rpc_split_tablet_request q = {0};
    q.tablet_id = id;
    q.split_key.data = (uint8_t *)"w1";
    q.split_key.len = 2;
    mica_err *err = master_until_ok(&rpc_m_master_split_tablet, &q);
    if (err) fprintf(stderr, "\n  split: %s\n", err_msg(err));
    CU_ASSERT(err == NULL);
    err_free(err);
    await_faults("split", kinds, want, 30000);
    uint64_t l, r;
    locate("faults", "w0", &l, &server);
    locate("faults", "w1", &r, &server);
    CU_ASSERT(l != r && l != id && r != id);
    check_alive(-1);
    check_data("after a split through faults");
  }

  /* 3. A move: the new owner opens cold and reads through short reads,
   * resets, 500s and timeouts. */
  {
    const char *const specs[] = {
        "kind=truncate&count=3&every=2&method=GET" T,
        "kind=reset&count=2&every=3&method=GET" T,
        "kind=500&count=2&every=3&method=GET" T,
        "kind=delay&ms=2500&count=1&every=2&method=GET" T,
        "kind=503&count=2&every=2&method=PUT" T,
        NULL};
    const char *const kinds[] = {"truncate", "reset", "500", "delay", NULL};
    const int want[] = {3, 2, 2, 1};
    uint64_t id, from;
    locate("faults", "w0", &id, &from);
    uint64_t to = other_server(from);
    CU_ASSERT_FATAL(to != 0);
    arm(specs);
    rpc_move_tablet_request q = {0};
    q.tablet_id = id;
    q.target_server_id = to;
    mica_err *err = master_until_ok(&rpc_m_master_move_tablet, &q);
    if (err) fprintf(stderr, "\n  move: %s\n", err_msg(err));
    CU_ASSERT(err == NULL);
    err_free(err);
    await_served_on("faults", "w0", to);
    get_sample("reads of the moved tablet through GET faults");
    await_faults("move", kinds, want, 30000);
    check_alive(-1);
    check_data("after a move through faults");
  }

  /* 4. The master's log: its PUTs fail while it creates a table and
   * moves a tablet. */
  {
    const char *const specs[] = {
        "kind=503&count=2&every=2&method=PUT&match=/master/",
        "kind=reset&count=1&every=2&method=PUT&match=/master/",
        "kind=lost_answer&count=1&every=2&method=PUT&match=/master/",
        NULL};
    const char *const kinds[] = {"503", "reset", "lost_answer", NULL};
    const int want[] = {2, 1, 1};
    arm(specs);
    slice splits[1] = {slice_from_str("m")};
    TU_OK(kvc_create_table(g_c, "faults2", splits, 1));
    uint64_t id, from;
    locate("faults2", "a", &id, &from);
    rpc_move_tablet_request q = {0};
    q.tablet_id = id;
    q.target_server_id = other_server(from);
    TU_OK(master_until_ok(&rpc_m_master_move_tablet, &q));
    await_served_on("faults2", "a", q.target_server_id);
    TU_OK(kvc_put(g_c, "faults2", slice_from_str("a"), slice_from_str("1"),
                  30000));
    TU_OK(kvc_put(g_c, "faults2", slice_from_str("z"), slice_from_str("2"),
                  30000));
    await_faults("master log", kinds, want, 30000);
    check_alive(-1);
  }

  /* 5. An outage longer than the servers' S3 deadline: the flushes fail
   * and say why; writes are acknowledged again once S3 answers. */
  {
    /* Until a flush (or compaction) gave up and said so: its error names
     * the request, the object, S3's answer and the attempts. An earlier
     * phase may have logged the same words already (a loaded machine
     * meets the deadline there too), so this phase waits for one more. */
    const char *gave_up = "HTTP 503 ServiceUnavailable: injected by s3_proxy "
                          "(gave up after";
    size_t earlier = cl_logs_count(g_c, gave_up);
    const char *const specs[] = {"kind=503&count=1000000&method=PUT" T, NULL};
    arm(specs);
    uint64_t t0 = cl_now_ms();
    while (cl_logs_count(g_c, gave_up) <= earlier &&
           cl_now_ms() - t0 < 40000)
      cl_sleep_ms(200);
    fprintf(stderr, "  outage: a failure logged after %" PRIu64 " ms\n",
            cl_now_ms() - t0);
    TU_OK(th_s3_faults_clear());
    CU_ASSERT(cl_logs_count(g_c, gave_up) > earlier);
    CU_ASSERT(cl_logs_contain(g_c, ": PUT s3://" TH_S3_BUCKET "/"));
    CU_ASSERT(injected("503") > 0);
    int before = total_acked();
    uint64_t until = cl_now_ms() + 60000;
    while (total_acked() < before + 200 && cl_now_ms() < until)
      cl_sleep_ms(100);
    fprintf(stderr, "  outage: %d writes acknowledged after it\n",
            total_acked() - before);
    CU_ASSERT(total_acked() >= before + 200);
    check_alive(-1);
    check_data("after an outage beyond the S3 deadline");
  }

  /* 6. kill -9 of the server holding w1's tablet; it reopens elsewhere
   * through GET and PUT faults. */
  {
    const char *const specs[] = {
        "kind=truncate&count=2&every=2&method=GET" T,
        "kind=503&count=2&every=2" T,
        "kind=reset&count=2&every=3" T,
        NULL};
    const char *const kinds[] = {"503", NULL};
    const int want[] = {2};
    uint64_t id, from;
    locate("faults", "w1", &id, &from);
    int slot = -1;
    for (int i = 0; i < cl_tserver_count(g_c); i++)
      if (cl_tserver_id(g_c, i) == from) slot = i;
    CU_ASSERT_FATAL(slot >= 0);
    arm(specs);
    TU_OK(cl_kill_tserver(g_c, slot));
    await_served_on("faults", "w1", other_server(from));
    await_faults("kill -9", kinds, want, 30000);
    check_alive(slot);
    atomic_store(&g_stop, true);
    for (int i = 0; i < WRITERS; i++) pthread_join(g_w[i]->th, NULL);
    check_data("after kill -9 of a tablet server");
    get_sample("reads after kill -9");
  }

  int failed = 0;
  for (int i = 0; i < WRITERS; i++) {
    failed += atomic_load(&g_w[i]->n_failed);
    if (g_w[i]->first_err[0])
      fprintf(stderr, "  writer %d: first refused write: %s\n", i,
              g_w[i]->first_err);
  }
  fprintf(stderr, "  %d writes acknowledged, %d not (their errors above)\n",
          total_acked(), failed);
  /* A refused write says why. */
  for (int i = 0; i < WRITERS; i++)
    CU_ASSERT(atomic_load(&g_w[i]->n_failed) == 0 || g_w[i]->first_err[0]);
  for (int i = 0; i < WRITERS; i++) free(g_w[i]);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("cluster_s3_faults", suite_init, suite_clean);
  CU_add_test(s, "faults_under_writes", test_faults_under_writes);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
