/* test_cluster_slow_readers: a client that opens 1,000 Scan streams with no
 * deadline and never reads them must not decide whether others are served
 * (issue 12, section 1; docs/tserver.md, "Scans and slow readers").
 *
 * Two tablet servers; table "slow" has two tablets, A ["", "m") and
 * B ["m", ""), both moved to server X. The tablet servers run with
 * --max-streams 900, --max-streams-per-conn 700 and --stream-idle-timeout
 * 10000 (10 s; the default is 30 s, and the held phase takes under 1 s). Each tablet holds ~200 KiB and the scans ask for 16 KiB
 * chunks; the slow clients' channels have a fixed 64 KiB stream window, so
 * every admitted stream parks on a send its reader never takes.
 *   - Client 1 opens 1,000 streams on A: 700 are held, 300 refused with
 *     RESOURCE_EXHAUSTED naming the per-connection bound. Client 2 holds
 *     100 on B.
 *   - While they are held, puts to both tablets, a full scan from another
 *     client, TabletInfo on X, and a move of the held tablet A through the
 *     master all succeed within normal latency (each well under the 5 s
 *     that timed out before); the move cancels A's 700 parked scans
 *     (UNAVAILABLE, resumable) instead of waiting for their readers.
 *   - Clients 2 and 3 then fill the server's bound of 900; the excess is
 *     refused naming the per-server bound.
 *   - The idle timeout cancels all 900, freeing their snapshots: X's open
 *     count drops to 0 and its idle-cancel count is 900. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/testutil.h"

static cluster *g_c;

#define S(lit) slice_make((const uint8_t *)(lit), sizeof(lit) - 1)

/* Normal latency, with room for a loaded test machine; the stall this test
 * reproduces made every one of these calls time out after 5 s. */
#define FAST_MS 2500

/* --stream-idle-timeout: far longer than the checks take while the
 * streams are held (under a second unloaded). */
#define IDLE_MS 10000

static size_t on_body(char *p, size_t sz, size_t n, void *arg) {
  buf_append(arg, p, sz * n);
  return sz * n;
}

/* The value of metric `name` (a line "name value") at http://addr/metrics;
 * -1 when it cannot be read. */
static long long metric(const char *addr, const char *name) {
  char url[256];
  snprintf(url, sizeof(url), "http://%s/metrics", addr);
  buf b = BUF_INIT;
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  long long v = -1;
  if (curl_easy_perform(c) == CURLE_OK) {
    buf_push(&b, 0);
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *p = strstr((const char *)b.data, pat);
    if (p != NULL) v = atoll(p + strlen(pat));
  }
  curl_easy_cleanup(c);
  buf_free(&b);
  return v;
}

/* Waits up to `ms` for metric `name` on `addr` to equal `want`. */
static bool wait_metric(const char *addr, const char *name, long long want,
                        uint64_t ms) {
  uint64_t t0 = cl_now_ms();
  long long v;
  while ((v = metric(addr, name)) != want && cl_now_ms() - t0 < ms)
    cl_sleep_ms(50);
  if (v != want)
    fprintf(stderr, "%s on %s is %lld, expected %lld\n", name, addr, v, want);
  return v == want;
}

static const char *http_address_of(uint64_t server_id, char *out,
                                   size_t n) {
  rpc_list_servers_request q = {0};
  void *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 10000, &r));
  const rpc_list_servers_response *ls = r;
  out[0] = '\0';
  for (size_t i = 0; ls != NULL && i < ls->n_servers; i++)
    if (ls->servers[i].server_id == server_id)
      snprintf(out, n, "%s", ls->servers[i].http_address);
  rpc_msg_free(r);
  return out;
}

static mica_err *move(uint64_t tablet, uint64_t target, int64_t timeout_ms) {
  rpc_move_tablet_request q = {0};
  q.tablet_id = tablet;
  q.target_server_id = target;
  return cl_call_master(g_c, &rpc_m_master_move_tablet, &q, timeout_ms, NULL);
}

/* The route of the tablet of "slow" holding `key` (caller frees `lr`). */
static const rpc_tablet_route *route_of(const char *key,
                                        rpc_lookup_tablets_response **lr) {
  const rpc_tablet_route *r = NULL;
  mica_err *e = kvc_route(g_c, "slow", slice_make((const uint8_t *)key,
                                                  strlen(key)),
                          20000, (rpc_tablet_route **)&r, lr);
  TU_OK(e);
  return r;
}

/* Opens a Scan of the tablet `r` names with no deadline; never read. */
static rpc_stream *open_scan(rpc_channel *ch, const rpc_tablet_route *r) {
  rpc_tablet_ref ref = {r->desc->tablet_id, r->desc->range_epoch,
                        r->location->assign_epoch};
  rpc_scan_request q = {0};
  q.tablet = &ref;
  q.chunk_max_bytes = 16 << 10;
  rpc_stream *st = NULL;
  TU_OK(rpc_stream_open(ch, &rpc_m_ts_scan, &q, 0, &st));
  return st;
}

/* Reads a stream to its end; its final code, and its message in msg. */
static int drain(rpc_stream *st, char *msg, size_t n) {
  void *m = NULL;
  mica_err *e;
  while ((e = rpc_stream_next(st, &m)) == NULL && m != NULL) {
    const rpc_scan_chunk *c = m;
    bool last = c->last;
    rpc_msg_free(m);
    if (last) break;
  }
  int code = e != NULL ? err_code(e) : MICA_OK;
  snprintf(msg, n, "%s", e != NULL ? err_msg(e) : "");
  err_free(e);
  return code;
}

static bool count_row(void *arg, slice k, slice v) {
  (void)k, (void)v;
  (*(size_t *)arg)++;
  return true;
}

static void test_thousand_unread_streams(void) {
  TU_OK(cl_call_master(g_c, &rpc_m_master_configure,
                       &(rpc_configure_request){.has_balancer_enabled = true,
                                                .balancer_enabled = false},
                       5000, NULL));
  slice split = S("m");
  TU_OK(kvc_create_table(g_c, "slow", &split, 1));
  uint64_t x = cl_tserver_id(g_c, 0), y = cl_tserver_id(g_c, 1);
  CU_ASSERT_FATAL(x != 0 && y != 0);
  /* Both tablets on X. */
  const char *probe[2] = {"a", "n"};
  for (int i = 0; i < 2; i++) {
    rpc_lookup_tablets_response *lr = NULL;
    const rpc_tablet_route *r = route_of(probe[i], &lr);
    CU_ASSERT_FATAL(r != NULL);
    if (r->location->server_id != x)
      TU_OK(move(r->desc->tablet_id, x, 30000));
    rpc_msg_free(lr);
  }
  /* ~200 KiB in each tablet. */
  enum { ROWS = 200 };
  static char val[1000];
  memset(val, 'v', sizeof(val));
  slice keys[ROWS], vals[ROWS];
  char kbuf[ROWS][16];
  for (int half = 0; half < 2; half++) {
    for (int i = 0; i < ROWS; i++) {
      snprintf(kbuf[i], sizeof(kbuf[i]), "%c%05d", half ? 'n' : 'a', i);
      keys[i] = slice_make((const uint8_t *)kbuf[i], strlen(kbuf[i]));
      vals[i] = slice_make((const uint8_t *)val, sizeof(val));
    }
    TU_OK(kvc_put_sorted(g_c, "slow", keys, vals, ROWS, 30000));
  }
  rpc_lookup_tablets_response *lra = NULL, *lrb = NULL;
  const rpc_tablet_route *ra = route_of("a", &lra);
  const rpc_tablet_route *rb = route_of("n", &lrb);
  CU_ASSERT_FATAL(ra != NULL && rb != NULL);
  CU_ASSERT_EQUAL_FATAL(ra->location->server_id, x);
  CU_ASSERT_EQUAL_FATAL(rb->location->server_id, x);
  uint64_t tablet_a = ra->desc->tablet_id;
  char xhttp[128];
  http_address_of(x, xhttp, sizeof(xhttp));
  CU_ASSERT_FATAL(xhttp[0] != '\0');
  CU_ASSERT_EQUAL(metric(xhttp, "mica_tserver_streams_open"), 0);

  /* Client 1: 1,000 unread streams on A; 700 are admitted, the rest
   * refused by the per-connection bound. Client 2: 100 on B. */
  rpc_channel *ch[4];
  /* A fixed 64 KiB window per stream, as a reader that stopped would
   * leave: the client holds at most that much of each stream. */
  rpc_channel_opts co = {0, 64 << 10};
  for (int i = 0; i < 4; i++)
    TU_OK(rpc_channel_new(rb->location->address, &co, &ch[i]));
  enum { N1 = 1000, N2 = 100, N2B = 600, N3 = 250 };
  rpc_stream **s1 = xcalloc(N1, sizeof(*s1));
  rpc_stream **s2 = xcalloc(N2 + N2B, sizeof(*s2));
  rpc_stream **s3 = xcalloc(N3, sizeof(*s3));
  for (int i = 0; i < N1; i++) s1[i] = open_scan(ch[0], ra);
  CU_ASSERT_FATAL(wait_metric(xhttp, "mica_tserver_streams_open", 700,
                              20000));
  CU_ASSERT(wait_metric(xhttp, "mica_tserver_streams_refused_total", 300,
                        20000));
  char msg[512];
  rpc_stream *over = open_scan(ch[0], ra);
  CU_ASSERT_EQUAL(drain(over, msg, sizeof(msg)), MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT(strstr(msg, "per-connection bound of 700") != NULL);
  rpc_stream_free(over);
  uint64_t held_since = cl_now_ms();
  for (int i = 0; i < N2; i++) s2[i] = open_scan(ch[1], rb);
  CU_ASSERT_FATAL(wait_metric(xhttp, "mica_tserver_streams_open", 800,
                              20000));

  /* Everyone else is served at normal latency while they are held. */
  for (int i = 0; i < 20; i++) {
    char k[16];
    snprintf(k, sizeof(k), "%c-put-%02d", i % 2 ? 'n' : 'a', i);
    uint64_t t0 = cl_now_ms();
    TU_OK(kvc_put(g_c, "slow", slice_make((const uint8_t *)k, strlen(k)),
                  S("v"), FAST_MS));
    CU_ASSERT(cl_now_ms() - t0 < FAST_MS);
  }
  size_t rows = 0;
  uint64_t t0 = cl_now_ms();
  TU_OK(kvc_scan(g_c, "slow", count_row, &rows, 2 * FAST_MS));
  CU_ASSERT(cl_now_ms() - t0 < 2 * FAST_MS);
  CU_ASSERT_EQUAL(rows, 2 * ROWS + 20);
  rpc_tablet_info_request iq = {0};
  void *ir = NULL;
  t0 = cl_now_ms();
  TU_OK(rpc_unary(cl_channel(g_c, rb->location->address), &rpc_m_ts_tablet_info,
                  &iq, FAST_MS, &ir));
  CU_ASSERT(cl_now_ms() - t0 < FAST_MS);
  CU_ASSERT_PTR_NULL(cl_response_err(ir));
  CU_ASSERT(ir != NULL &&
            ((const rpc_tablet_info_response *)ir)->n_tablets == 2);
  rpc_msg_free(ir);
  /* The held tablet moves: its 700 parked scans are cancelled (resumably),
   * not waited for. */
  t0 = cl_now_ms();
  TU_OK(move(tablet_a, y, 4 * FAST_MS));
  CU_ASSERT(cl_now_ms() - t0 < 2 * FAST_MS);
  CU_ASSERT(wait_metric(xhttp, "mica_tserver_streams_open", 100, 10000));
  rpc_lookup_tablets_response *lrm = NULL;
  const rpc_tablet_route *rm = route_of("a", &lrm);
  CU_ASSERT(rm != NULL && rm->location->server_id == y);
  rpc_msg_free(lrm);
  int unavailable = 0, refused = 0, other = 0;
  for (int i = 0; i < N1; i++) {
    int code = drain(s1[i], msg, sizeof(msg));
    if (code == MICA_UNAVAILABLE && strstr(msg, "closing") != NULL)
      unavailable++;
    else if (code == MICA_RESOURCE_EXHAUSTED &&
             strstr(msg, "per-connection bound of 700") != NULL)
      refused++;
    else
      other++, fprintf(stderr, "client 1 stream %d: %s %s\n", i,
                       mica_code_name(code), msg);
    rpc_stream_free(s1[i]);
  }
  CU_ASSERT_EQUAL(unavailable, 700);
  CU_ASSERT_EQUAL(refused, 300);
  CU_ASSERT_EQUAL(other, 0);

  /* The server's bound: client 2 fills its share (700), client 3 gets
   * the last 200 of the server's 900. */
  for (int i = N2; i < N2 + N2B; i++) s2[i] = open_scan(ch[1], rb);
  CU_ASSERT_FATAL(wait_metric(xhttp, "mica_tserver_streams_open", 700,
                              20000));
  for (int i = 0; i < N3; i++) s3[i] = open_scan(ch[2], rb);
  CU_ASSERT_FATAL(wait_metric(xhttp, "mica_tserver_streams_open", 900,
                              20000));
  CU_ASSERT(wait_metric(xhttp, "mica_tserver_streams_refused_total", 351,
                        20000));
  over = open_scan(ch[3], rb);
  CU_ASSERT_EQUAL(drain(over, msg, sizeof(msg)), MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT(strstr(msg, "per-server bound of 900") != NULL);
  rpc_stream_free(over);
  /* Everything above happened while client 2's first streams were held
   * (the idle timeout is IDLE_MS). */
  CU_ASSERT(cl_now_ms() - held_since < IDLE_MS);

  /* The idle timeout ends every held stream and frees its snapshot. The
   * first wave's cancellations let the client's transport take more of a
   * few other streams (seen: up to 8 of 900), which count as progressing
   * and are cancelled only after their own idle period, typically 20-40 s
   * later. */
  CU_ASSERT(wait_metric(xhttp, "mica_tserver_streams_open", 0, 8 * IDLE_MS));
  CU_ASSERT_EQUAL(
      metric(xhttp, "mica_tserver_streams_idle_cancelled_total"), 900);
  int idle = 0;
  refused = 0, other = 0;
  for (int i = 0; i < N2 + N2B + N3; i++) {
    rpc_stream *st = i < N2 + N2B ? s2[i] : s3[i - N2 - N2B];
    int code = drain(st, msg, sizeof(msg));
    if (code == MICA_CANCELLED && strstr(msg, "idle") != NULL)
      idle++;
    else if (code == MICA_RESOURCE_EXHAUSTED &&
             strstr(msg, "per-server bound of 900") != NULL)
      refused++;
    else
      other++, fprintf(stderr, "stream %d: %s %s\n", i,
                       mica_code_name(code), msg);
    rpc_stream_free(st);
  }
  CU_ASSERT_EQUAL(idle, 900);
  CU_ASSERT_EQUAL(refused, 50);
  CU_ASSERT_EQUAL(other, 0);
  /* And the server serves as before. */
  rows = 0;
  TU_OK(kvc_scan(g_c, "slow", count_row, &rows, 2 * FAST_MS));
  CU_ASSERT_EQUAL(rows, 2 * ROWS + 20);
  free(s1);
  free(s2);
  free(s3);
  for (int i = 0; i < 4; i++) rpc_channel_free(ch[i]);
  rpc_msg_free(lra);
  rpc_msg_free(lrb);
}

static int suite_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  static const char *const ts_args[] = {"--max-streams", "900",
                                        "--max-streams-per-conn", "700",
                                        "--stream-idle-timeout", "10000",
                                        NULL};
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  o.tserver_args = ts_args;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) {
  cl_suite_stop(&g_c);
  curl_global_cleanup();
  return 0;
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"1,000 unread Scan streams stall nobody",
       test_thousand_unread_streams},
      CU_TEST_INFO_NULL};
  CU_SuiteInfo suites[] = {{"slow readers", suite_init, suite_clean, NULL,
                            NULL, (CU_TestInfo *)tests},
                           CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
