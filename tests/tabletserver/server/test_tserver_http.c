/* test_tserver_http: /metrics and /healthz of a real mica-tserver, read
 * over HTTP with libcurl.
 *
 * Counters move with the calls that feed them (requests by method and
 * code, the latency histogram, keys and bytes per tablet and in total, WAL
 * syncs, memtable bytes); a tablet's figures stay in the server totals
 * after it is closed (the totals never go down) and its own series go
 * away; unknown paths get 404, other methods 405, a body 413; half-sent
 * requests and a client that never reads its answer do not hold up other
 * scrapes; a bad --http-listen is refused with a message naming the flag. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/server/tsh.h"

static tsh_proc srv;
static char http_addr[128];
static const tsh_ref T1 = {1, 1, 1};
static const tsh_ref T2 = {2, 1, 1};

#define S(str) slice_from_str(str)

typedef struct resp {
  CURLcode cc;
  long code;
  char ctype[128];
  buf body;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  buf_append(&((resp *)ud)->body, p, sz * n);
  return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  static const char k[] = "content-type:";
  size_t len = sz * n;
  if (len > sizeof(k) - 1 && strncasecmp(p, k, sizeof(k) - 1) == 0) {
    const char *v = p + sizeof(k) - 1;
    size_t vn = len - (sizeof(k) - 1);
    while (vn && *v == ' ') v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n')) vn--;
    if (vn >= sizeof(r->ctype)) vn = sizeof(r->ctype) - 1;
    memcpy(r->ctype, v, vn);
    r->ctype[vn] = '\0';
  }
  return len;
}

/* `method` on http://<http_addr><path>, with `body` when not NULL. The
 * body of the answer is NUL-terminated. */
static void http(const char *method, const char *path, const char *body,
                 resp *r) {
  memset(r, 0, sizeof(*r));
  char url[8192];
  snprintf(url, sizeof(url), "http://%s%s", http_addr, path);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (strcmp(method, "GET") != 0 || body)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  r->cc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
  curl_easy_cleanup(c);
  buf_push(&r->body, 0);
  r->body.len--;
}

static void resp_free(resp *r) { buf_free(&r->body); }

/* The value of the sample whose name and labels are exactly `series`
 * (`mica_x{a="b"}`), or -1 when the scrape has no such line. */
static double sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

/* Scrapes /metrics into `out` (freed by the caller with buf_free). */
static void scrape(buf *out) {
  resp r;
  http("GET", "/metrics", NULL, &r);
  CU_ASSERT_EQUAL(r.cc, CURLE_OK);
  CU_ASSERT_EQUAL(r.code, 200);
  CU_ASSERT_STRING_EQUAL(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
  *out = r.body;
}

static int suite_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char *dir = tu_tmpdir();
  char file[600];
  snprintf(file, sizeof(file), "%s/http.addr", dir);
  /* Small memtables, so a few hundred KiB of writes flush. */
  const char *extra[] = {"--http-address-file", file, "--memtable-size",
                         "64K", NULL};
  mica_err *e = tsh_start(dir, extra, &srv);
  buf addr = BUF_INIT;
  /* The RPC address file is written last: this one is there now. */
  if (e == NULL) e = env_read_file(env_posix(), file, 256, &addr);
  if (e != NULL) {
    fprintf(stderr, "start: %s\n", err_msg(e));
    err_free(e);
    buf_free(&addr);
    return 1;
  }
  while (addr.len && (addr.data[addr.len - 1] == '\n')) addr.len--;
  snprintf(http_addr, sizeof(http_addr), "%.*s", (int)addr.len,
           (const char *)addr.data);
  buf_free(&addr);
  return 0;
}

static int suite_clean(void) {
  int st = tsh_stop(&srv, SIGTERM);
  curl_global_cleanup();
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static void test_healthz(void) {
  CU_ASSERT(strncmp(http_addr, "127.0.0.1:", 10) == 0);
  resp r;
  http("GET", "/healthz", NULL, &r);
  CU_ASSERT_EQUAL(r.cc, CURLE_OK);
  CU_ASSERT_EQUAL(r.code, 200);
  CU_ASSERT_STRING_EQUAL((char *)r.body.data, "ok\n");
  resp_free(&r);
  http("HEAD", "/healthz", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 200);
  resp_free(&r);
}

static void test_bad_requests(void) {
  static const char *const missing[] = {"/", "/metrics/", "/metricsx",
                                        "/healthz/x", "/api/servers",
                                        "/%2e%2e/metrics", "/metrics%00"};
  for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
    resp r;
    http("GET", missing[i], NULL, &r);
    CU_ASSERT_EQUAL(r.cc, CURLE_OK);
    CU_ASSERT_EQUAL(r.code, 404);
    CU_ASSERT(strstr((char *)r.body.data, "not found") != NULL);
    resp_free(&r);
  }
  resp r;
  http("POST", "/metrics", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 405);
  resp_free(&r);
  http("DELETE", "/healthz", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 405);
  resp_free(&r);
  http("GET", "/metrics", "x=1", &r);
  CU_ASSERT_EQUAL(r.code, 413);
  resp_free(&r);
  char longpath[4000];
  memset(longpath, 'a', sizeof(longpath) - 1);
  longpath[0] = '/';
  longpath[sizeof(longpath) - 1] = '\0';
  http("GET", longpath, NULL, &r);
  CU_ASSERT_EQUAL(r.code, 414);
  resp_free(&r);
  /* The answers above are counted by class. */
  buf m;
  scrape(&m);
  CU_ASSERT(sample((char *)m.data,
                   "mica_tserver_http_responses_total{code=\"4xx\"}") >= 11);
  buf_free(&m);
}

/* Puts, gets and a misrouted call move exactly the counters they feed. */
static void test_counters_move(void) {
  buf m;
  scrape(&m);
  const char *t = (const char *)m.data;
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_requests_total{method=\"Put\","
                            "code=\"OK\"}"), 0);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_writes_total"), 0);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_tablets{state=\"serving\"}"), 0);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_leased"), 1);
  CU_ASSERT(strstr(t, "mica_tserver_info{version=") != NULL);
  double syncs0 = sample(t, "mica_tserver_wal_syncs_total");
  CU_ASSERT(syncs0 >= 0);
  buf_free(&m);

  TU_OK(tsh_open(srv.ch, T1, NULL, "m"));
  TU_OK(tsh_open(srv.ch, T2, "m", NULL));
  for (int i = 0; i < 20; i++) {
    char k[16];
    snprintf(k, sizeof(k), "k%02d", i);
    TU_OK(tsh_put(srv.ch, T1, S(k), S("value")));
  }
  TU_OK(tsh_put(srv.ch, T2, S("x"), S("yz")));
  buf v = BUF_INIT;
  for (int i = 0; i < 7; i++) TU_OK(tsh_get(srv.ch, T1, S("k03"), &v));
  TU_ERR(tsh_get(srv.ch, T1, S("absent"), &v), MICA_NOT_FOUND);
  tsh_ref wrong = {99, 1, 1};
  TU_ERR(tsh_get(srv.ch, wrong, S("k03"), &v), MICA_NOT_SERVING);
  buf_free(&v);

  scrape(&m);
  t = (const char *)m.data;
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_requests_total{method=\"Put\","
                            "code=\"OK\"}"), 21);
  /* A Get of an absent key is an OK call that found nothing. */
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_requests_total{method=\"Get\","
                            "code=\"OK\"}"), 8);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_requests_total{method=\"Get\","
                            "code=\"NOT_SERVING\"}"), 1);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_requests_total{method="
                            "\"OpenTablet\",code=\"OK\"}"), 2);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_request_duration_seconds_count{"
                            "method=\"Put\"}"), 21);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_request_duration_seconds_bucket{"
                            "method=\"Get\",le=\"+Inf\"}"), 9);
  CU_ASSERT(sample(t, "mica_tserver_request_duration_seconds_sum{"
                      "method=\"Put\"}") > 0);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_writes_total"), 21);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_write_bytes_total"),
                  20 * (3 + 5) + 1 + 2);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_reads_total"), 8);
  CU_ASSERT_EQUAL(sample(t, "mica_tablet_writes_total{tablet_id=\"1\","
                            "table=\"t\"}"), 20);
  CU_ASSERT_EQUAL(sample(t, "mica_tablet_writes_total{tablet_id=\"2\","
                            "table=\"t\"}"), 1);
  CU_ASSERT(sample(t, "mica_tablet_memtable_bytes{tablet_id=\"1\","
                      "table=\"t\"}") > 0);
  CU_ASSERT(sample(t, "mica_tserver_memtable_bytes") >= 0);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_memtable_budget_bytes"),
                  256 << 20);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_tablets{state=\"serving\"}"), 2);
  /* Every acknowledged put was synced, in groups of at least one. */
  double syncs = sample(t, "mica_tserver_wal_syncs_total");
  CU_ASSERT(syncs >= syncs0 + 1);
  CU_ASSERT(syncs <= syncs0 + 21);
  /* The server's shared commit log holds those writes. */
  CU_ASSERT(sample(t, "mica_tserver_commit_log_segments") >= 1);
  CU_ASSERT(sample(t, "mica_tserver_commit_log_bytes") > 0);
  CU_ASSERT(sample(t, "mica_tserver_commit_log_flush_requests_total") >= 0);
  buf_free(&m);

  /* Writes past the memtable size flush while the tablet serves. */
  TU_OK(tsh_fill(srv.ch, T2, "n", 300, 1000, 50));
  bool flushed = false;
  for (int i = 0; i < 200 && !flushed; i++) {
    scrape(&m);
    flushed = sample((char *)m.data, "mica_tserver_flushes_total") >= 1;
    buf_free(&m);
    if (!flushed) usleep(50 * 1000);
  }
  CU_ASSERT(flushed);
  scrape(&m);
  t = (const char *)m.data;
  CU_ASSERT(sample(t, "mica_tserver_flush_bytes_total") > 0);
  CU_ASSERT(sample(t, "mica_tablet_flushes_total{tablet_id=\"2\","
                      "table=\"t\"}") >= 1);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_writes_total"), 321);
  double flushes = sample(t, "mica_tserver_flushes_total");
  buf_free(&m);

  /* Closing tablet 1: its series go, the totals keep its figures. */
  TU_OK(tsh_close(srv.ch, T1));
  scrape(&m);
  t = (const char *)m.data;
  CU_ASSERT_EQUAL(sample(t, "mica_tablet_writes_total{tablet_id=\"1\","
                            "table=\"t\"}"), -1);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_writes_total"), 321);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_reads_total"), 8);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_tablets{state=\"serving\"}"), 1);
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_requests_total{method="
                            "\"CloseTablet\",code=\"OK\"}"), 1);
  buf_free(&m);

  /* Reopened, tablet 1 starts its own counters again; the totals grow on
   * from where they were. */
  TU_OK(tsh_open(srv.ch, T1, NULL, "m"));
  TU_OK(tsh_put(srv.ch, T1, S("k99"), S("v")));
  TU_OK(tsh_close(srv.ch, T1));
  scrape(&m);
  t = (const char *)m.data;
  CU_ASSERT_EQUAL(sample(t, "mica_tserver_writes_total"), 322);
  CU_ASSERT(sample(t, "mica_tserver_flushes_total") >= flushes);
  buf_free(&m);
}

static int raw_connect(void) {
  const char *colon = strrchr(http_addr, ':');
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(colon + 1));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static double secs_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Half-sent requests and a client that never reads its answers hold
 * connection slots, not the threads that answer others. */
static void test_slow_clients(void) {
  int fds[12];
  for (int i = 0; i < 12; i++) {
    fds[i] = raw_connect();
    CU_ASSERT_FATAL(fds[i] >= 0);
    static const char half[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    CU_ASSERT(send(fds[i], half, sizeof(half) - 1, MSG_NOSIGNAL) > 0);
  }
  int rd = raw_connect();
  CU_ASSERT_FATAL(rd >= 0);
  int small = 1024;
  setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  static const char full[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  CU_ASSERT(send(rd, full, sizeof(full) - 1, MSG_NOSIGNAL) > 0);
  usleep(200 * 1000);

  for (int i = 0; i < 5; i++) {
    double t0 = secs_now();
    resp r;
    http("GET", i % 2 ? "/healthz" : "/metrics", NULL, &r);
    CU_ASSERT_EQUAL(r.cc, CURLE_OK);
    CU_ASSERT_EQUAL(r.code, 200);
    CU_ASSERT(secs_now() - t0 < 2.0);
    resp_free(&r);
  }
  /* The data path is not held up either. */
  TU_OK(tsh_put(srv.ch, T2, S("slow"), S("clients")));
  for (int i = 0; i < 12; i++) close(fds[i]);
  close(rd);
}

/* A malformed or taken --http-listen stops the process with a message
 * naming the flag. */
static void test_bad_listen(void) {
  static const char *const bad[] = {"nonsense", "127.0.0.1:99999",
                                    "127.0.0.1:"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/bad%zu", tu_tmpdir(), i);
    TU_OK(env_mkdirs(env_posix(), dir));
    tsh_proc p;
    const char *extra[] = {"--http-listen", bad[i], NULL};
    mica_err *e = tsh_start(dir, extra, &p);
    CU_ASSERT(e != NULL);
    if (e == NULL) {
      tsh_stop(&p, SIGKILL);
      continue;
    }
    /* th_node_start names the node's stderr log <log_dir>/<name>.log. */
    char logpath[700];
    snprintf(logpath, sizeof(logpath), "%s/tserver.log", dir);
    buf log = BUF_INIT;
    TU_OK(env_read_file(env_posix(), logpath, 1 << 20, &log));
    buf_push(&log, 0);
    CU_ASSERT(strstr((char *)log.data, "--http-listen") != NULL);
    buf_free(&log);
    err_free(e);
  }
  /* The address this server already serves HTTP on is taken. */
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/taken", tu_tmpdir());
  TU_OK(env_mkdirs(env_posix(), dir));
  tsh_proc p;
  const char *extra[] = {"--http-listen", http_addr, NULL};
  mica_err *e = tsh_start(dir, extra, &p);
  CU_ASSERT(e != NULL);
  if (e == NULL) tsh_stop(&p, SIGKILL);
  err_free(e);
}

static const CU_TestInfo tests[] = {
    {"healthz", test_healthz},
    {"bad_requests", test_bad_requests},
    {"counters_move", test_counters_move},
    {"slow_clients", test_slow_clients},
    {"bad_listen", test_bad_listen},
    CU_TEST_INFO_NULL};

static void add_suites(void) {
  CU_SuiteInfo suites[] = {
      {"tserver_http", suite_init, suite_clean, NULL, NULL,
       (CU_TestInfo *)tests},
      CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
