/* test_ha_http: what the masters' HTTP side says about high availability,
 * against a real ZooKeeper and real `mica-master --zk` processes.
 *
 * Two candidates (session 3 s, a cluster name). Checked:
 *  - the active master's /api/cluster has role "active" and "ha" naming
 *    itself as active (RPC and HTTP address, epoch 1), the other as its
 *    one standby (both addresses, read from ZooKeeper), and a connected
 *    session with the granted 3 s timeout; its /metrics agree
 *    (mica_master_active 1, mica_master_epoch 1, one standby, the
 *    session-state and peer samples);
 *  - the standby serves HTTP on the address it printed: /api/cluster with
 *    role "standby", the same election facts and no cluster state at all;
 *    every other /api/ path answers 503 naming the active master; its
 *    /metrics have mica_master_active 0 and no server or table metrics;
 *    its page, rendered by chromium when present, says it is a standby and
 *    links to the active master's page;
 *  - ZooKeeper stopped: the standby reports its session "connecting" (and
 *    the metric follows); the active master exits with status 3 (its
 *    leadership lease ran out);
 *  - ZooKeeper back: the standby wins (epoch 2) and the same HTTP server,
 *    same address, now serves the active master: role "active", epoch 2,
 *    /api/servers answered; the first master started again shows up as
 *    its standby. */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "tests/harness/proc.h"
#include "tests/harness/testutil.h"
#include "tests/harness/zkserver.h"
#include "tools/mica/mjson.h"

#define SESSION_MS 3000

static zks *g_zk;
static char g_root[512], g_logs[600], g_zkc[300];

typedef struct master {
  th_proc *p;
  char out[700];
  char rpc[128], http[128];
} master;
static master g_m[2];

/* ---- HTTP ---- */

static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
  buf_append(ctx, p, size * n);
  return size * n;
}

/* GET http://addr/path; the status code (0 when unreachable), the body in
 * `out` (NUL-terminated). */
static long get(const char *addr, const char *path, buf *out) {
  char url[400];
  snprintf(url, sizeof url, "http://%s%s", addr, path);
  CURL *h = curl_easy_init();
  out->len = 0;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  long code = 0;
  if (curl_easy_perform(h) == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(h);
  buf_push(out, 0);
  out->len--;
  return code;
}

static mj_val *get_json(const char *addr, const char *path, long want) {
  buf b = BUF_INIT;
  long code = get(addr, path, &b);
  CU_ASSERT_EQUAL(code, want);
  char why[200];
  mj_val *v = mj_parse((const char *)b.data, b.len, why, sizeof why);
  if (v == NULL) fprintf(stderr, "%s%s: not JSON: %s: %s\n", addr, path, why,
                         (const char *)b.data);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  buf_free(&b);
  return v;
}

/* The member at a dotted path ("ha.active.rpc"). */
static const mj_val *at(const mj_val *v, const char *path) {
  char p[200];
  snprintf(p, sizeof p, "%s", path);
  for (char *save = NULL, *t = strtok_r(p, ".", &save); t && v;
       t = strtok_r(NULL, ".", &save))
    v = mj_get(v, t);
  return v;
}

static const char *str_at(const mj_val *v, const char *path) {
  const mj_val *x = at(v, path);
  return x && x->type == MJ_STRING ? x->str : "(missing)";
}

static int64_t num_at(const mj_val *v, const char *path) {
  uint64_t u;
  const mj_val *x = at(v, path);
  return x && mj_u64(x, &u) ? (int64_t)u : -1;
}

#define EXPECT_STR(v, path, want)                                          \
  do {                                                                     \
    const char *got_ = str_at(v, path);                                    \
    if (strcmp(got_, want) != 0)                                           \
      fprintf(stderr, "%s: got '%s', want '%s'\n", path, got_, want);      \
    CU_ASSERT_STRING_EQUAL(got_, want);                                    \
  } while (0)

static bool has_line(const buf *b, const char *line) {
  size_t n = strlen(line);
  const char *p = (const char *)b->data;
  for (;;) {
    if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
      return true;
    p = strchr(p, '\n');
    if (p == NULL) return false;
    p++;
  }
}

/* ---- masters ---- */

static void read_line_value(const char *path, const char *key, char *out,
                            size_t n) {
  buf f = BUF_INIT;
  TU_OK(env_read_file(env_posix(), path, 1 << 16, &f));
  buf_push(&f, 0);
  const char *p = (const char *)f.data, *last = NULL;
  size_t kl = strlen(key);
  for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, key, kl) == 0) last = p + kl;
  out[0] = '\0';
  if (last) {
    size_t l = strcspn(last, "\n");
    snprintf(out, n, "%.*s", (int)l, last);
  }
  buf_free(&f);
}

static void start_master(int i) {
  master *m = &g_m[i];
  char name[32], errp[700], bin[512], tmo[16];
  snprintf(name, sizeof name, "master-%d", i);
  snprintf(m->out, sizeof m->out, "%s/%s.out", g_logs, name);
  snprintf(errp, sizeof errp, "%s/%s.log", g_logs, name);
  remove(m->out);
  TU_OK(th_bin("mica-master", bin, sizeof bin));
  snprintf(tmo, sizeof tmo, "%d", SESSION_MS);
  const char *argv[] = {bin, "--data-dir", g_root, "--zk", g_zkc,
                        "--zk-session-ms", tmo, "--cluster-name", "hatest",
                        "--lease-ms", "3000", "--heartbeat-ms", "300", NULL};
  th_spawn s = {.name = name, .argv = argv, .out_path = m->out,
                .err_path = errp};
  th_proc_free(m->p);
  m->p = NULL;
  TU_OK(th_proc_start(&s, &m->p));
  TU_OK(th_proc_wait_line(m->p, "standby-http ", 30000));
  read_line_value(m->out, "standby ", m->rpc, sizeof m->rpc);
  read_line_value(m->out, "standby-http ", m->http, sizeof m->http);
  CU_ASSERT_FATAL(m->rpc[0] != '\0' && m->http[0] != '\0');
}

static bool is_active(int i) {
  char l[128];
  read_line_value(g_m[i].out, "listening ", l, sizeof l);
  return l[0] != '\0' && th_proc_running(g_m[i].p);
}

/* Polls `addr`'s /api/cluster until `path` has the string `want`. */
static bool wait_cluster_str(const char *addr, const char *path,
                             const char *want, int timeout_ms) {
  for (uint64_t until = th_now_ms() + (uint64_t)timeout_ms;
       th_now_ms() < until; th_sleep_ms(50)) {
    buf b = BUF_INIT;
    long code = get(addr, "/api/cluster", &b);
    char why[100];
    mj_val *v = code == 200 ? mj_parse((const char *)b.data, b.len, why,
                                       sizeof why) : NULL;
    bool ok = v && strcmp(str_at(v, path), want) == 0;
    mj_free(v);
    buf_free(&b);
    if (ok) return true;
  }
  return false;
}

/* ---- the test ---- */

static void check_active(const master *a, const master *s, int64_t epoch) {
  mj_val *c = get_json(a->http, "/api/cluster", 200);
  EXPECT_STR(c, "role", "active");
  EXPECT_STR(c, "cluster", "hatest");
  EXPECT_STR(c, "ha.role", "active");
  CU_ASSERT_EQUAL(num_at(c, "ha.epoch"), epoch);
  EXPECT_STR(c, "ha.self.rpc", a->rpc);
  EXPECT_STR(c, "ha.active.rpc", a->rpc);
  EXPECT_STR(c, "ha.active.http", a->http);
  CU_ASSERT_EQUAL(num_at(c, "ha.active.epoch"), epoch);
  const mj_val *sb = at(c, "ha.standbys");
  CU_ASSERT_FATAL(sb != NULL && sb->type == MJ_ARRAY);
  CU_ASSERT_EQUAL(sb->len, s ? 1u : 0u);
  if (s && sb->len == 1) {
    EXPECT_STR(sb->items[0], "rpc", s->rpc);
    EXPECT_STR(sb->items[0], "http", s->http);
  }
  CU_ASSERT_EQUAL(num_at(c, "ha.standbys_total"), s ? 1 : 0);
  EXPECT_STR(c, "ha.zookeeper.session", "connected");
  CU_ASSERT_EQUAL(num_at(c, "ha.zookeeper.session_timeout_ms"), SESSION_MS);
  CU_ASSERT_PTR_NOT_NULL(at(c, "servers.live")); /* the cluster's state */
  mj_free(c);

  buf m = BUF_INIT;
  CU_ASSERT_EQUAL(get(a->http, "/metrics", &m), 200);
  char line[400];
  CU_ASSERT(has_line(&m, "mica_master_active 1"));
  snprintf(line, sizeof line, "mica_master_epoch %" PRId64, epoch);
  CU_ASSERT(has_line(&m, line));
  CU_ASSERT(has_line(&m, s ? "mica_master_standbys 1" : "mica_master_standbys 0"));
  CU_ASSERT(has_line(&m, "mica_master_zk_session_state{state=\"connected\"} 1"));
  CU_ASSERT(has_line(&m, "mica_master_zk_session_state{state=\"expired\"} 0"));
  CU_ASSERT(has_line(&m, "mica_master_zk_session_timeout_seconds 3"));
  snprintf(line, sizeof line, "mica_master_peer_info{role=\"active\","
           "address=\"%s\",http=\"%s\"} 1", a->rpc, a->http);
  CU_ASSERT(has_line(&m, line));
  if (s) {
    snprintf(line, sizeof line, "mica_master_peer_info{role=\"standby\","
             "address=\"%s\",http=\"%s\"} 1", s->rpc, s->http);
    CU_ASSERT(has_line(&m, line));
  }
  CU_ASSERT_PTR_NOT_NULL(strstr((const char *)m.data, "mica_master_servers{"));
  buf_free(&m);
}

static void check_standby(const master *s, const master *a) {
  mj_val *c = get_json(s->http, "/api/cluster", 200);
  EXPECT_STR(c, "role", "standby");
  EXPECT_STR(c, "cluster", "hatest");
  EXPECT_STR(c, "master_address", s->rpc);
  EXPECT_STR(c, "http_address", s->http);
  EXPECT_STR(c, "ha.role", "standby");
  CU_ASSERT_EQUAL(num_at(c, "ha.epoch"), 1);
  EXPECT_STR(c, "ha.active.rpc", a->rpc);
  EXPECT_STR(c, "ha.active.http", a->http);
  const mj_val *sb = at(c, "ha.standbys");
  CU_ASSERT_FATAL(sb != NULL && sb->type == MJ_ARRAY && sb->len == 1);
  EXPECT_STR(sb->items[0], "rpc", s->rpc);
  EXPECT_STR(c, "ha.zookeeper.session", "connected");
  CU_ASSERT_EQUAL(num_at(c, "ha.zookeeper.session_timeout_ms"), SESSION_MS);
  /* No cluster state, stale or otherwise. */
  CU_ASSERT_PTR_NULL(at(c, "servers"));
  CU_ASSERT_PTR_NULL(at(c, "tables"));
  CU_ASSERT_PTR_NULL(at(c, "tablets"));
  CU_ASSERT_PTR_NULL(at(c, "warnings"));
  mj_free(c);

  static const char *const refused[] = {"/api/servers", "/api/tables",
                                        "/api/tables/t/tablets",
                                        "/api/events"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    mj_val *r = get_json(s->http, refused[i], 503);
    const char *e = str_at(r, "error");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "is a standby"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, a->rpc));
    EXPECT_STR(r, "active_master.rpc", a->rpc);
    EXPECT_STR(r, "active_master.http", a->http);
    mj_free(r);
  }

  buf m = BUF_INIT;
  CU_ASSERT_EQUAL(get(s->http, "/metrics", &m), 200);
  char line[400];
  CU_ASSERT(has_line(&m, "mica_master_active 0"));
  CU_ASSERT(has_line(&m, "mica_master_epoch 1"));
  CU_ASSERT(has_line(&m, "mica_master_zk_session_state{state=\"connected\"} 1"));
  snprintf(line, sizeof line, "mica_master_peer_info{role=\"active\","
           "address=\"%s\",http=\"%s\"} 1", a->rpc, a->http);
  CU_ASSERT(has_line(&m, line));
  CU_ASSERT_PTR_NULL(strstr((const char *)m.data, "mica_master_servers"));
  CU_ASSERT_PTR_NULL(strstr((const char *)m.data, "mica_table_"));
  buf_free(&m);

  CU_ASSERT_EQUAL(get(s->http, "/", &m), 200);
  CU_ASSERT_PTR_NOT_NULL(strstr((const char *)m.data, "id=\"masters\""));
  CU_ASSERT_EQUAL(get(s->http, "/healthz", &m), 200);
  buf_free(&m);
}

/* The standby's page as a browser builds it (skipped without chromium). */
static void check_standby_page(const master *s, const master *a) {
  if (system("command -v chromium >/dev/null 2>&1") != 0) {
    printf("\n  no chromium: page not rendered\n");
    return;
  }
  char cmd[1400], path[700];
  snprintf(path, sizeof path, "%s/dom.html", g_logs);
  snprintf(cmd, sizeof cmd,
           "timeout 120 chromium --headless --no-sandbox --disable-gpu "
           "--virtual-time-budget=4000 --dump-dom http://%s/ >%s "
           "2>/dev/null", s->http, path);
  CU_ASSERT_FATAL(system(cmd) == 0);
  buf dom = BUF_INIT;
  TU_OK(env_read_file(env_posix(), path, 1 << 22, &dom));
  buf_push(&dom, 0);
  const char *d = (const char *)dom.data;
  CU_ASSERT_PTR_NOT_NULL(strstr(d, "is a standby"));
  char want[300];
  snprintf(want, sizeof want, "The active master is %s", a->rpc);
  CU_ASSERT_PTR_NOT_NULL(strstr(d, want));
  snprintf(want, sizeof want, "href=\"http://%s/\"", a->http);
  CU_ASSERT_PTR_NOT_NULL(strstr(d, want));
  /* The cluster sections are hidden, not filled with stale data. */
  CU_ASSERT_PTR_NOT_NULL(strstr(d, "<section hidden=\"\">"));
  buf_free(&dom);
}

static void test_ha_http(void) {
  snprintf(g_root, sizeof g_root, "%s/root", tu_tmpdir());
  snprintf(g_logs, sizeof g_logs, "%s/logs", tu_tmpdir());
  TU_OK(env_mkdirs(env_posix(), g_root));
  TU_OK(env_mkdirs(env_posix(), g_logs));
  snprintf(g_zkc, sizeof g_zkc, "%s/hahttp", zks_connect(g_zk));
  start_master(0);
  for (uint64_t until = th_now_ms() + 30000; !is_active(0) &&
       th_now_ms() < until;)
    th_sleep_ms(20);
  CU_ASSERT_FATAL(is_active(0));
  start_master(1);
  master *a = &g_m[0], *s = &g_m[1];
  /* The active record carries the HTTP address once published, and the
   * candidate list reaches each master's reader by its own watch: wait for
   * all three (the standby's own list may come after the active's). */
  CU_ASSERT(wait_cluster_str(s->http, "ha.active.http", a->http, 10000));
  for (uint64_t until = th_now_ms() + 10000; th_now_ms() < until;
       th_sleep_ms(50)) {
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
      mj_val *c = get_json(i == 0 ? a->http : s->http, "/api/cluster", 200);
      const mj_val *sb = at(c, "ha.standbys");
      ok = sb && sb->type == MJ_ARRAY && sb->len == 1;
      mj_free(c);
    }
    if (ok) break;
  }
  check_active(a, s, 1);
  check_standby(s, a);
  check_standby_page(s, a);

  /* ZooKeeper stops: the standby's session is connecting; the active
   * master's lease runs out and it exits with status 3. */
  TU_OK(zks_stop(g_zk, 0));
  CU_ASSERT(wait_cluster_str(s->http, "ha.zookeeper.session", "connecting",
                             10000));
  buf m = BUF_INIT;
  CU_ASSERT_EQUAL(get(s->http, "/metrics", &m), 200);
  CU_ASSERT(has_line(&m, "mica_master_zk_session_state{state=\"connecting\"} 1"));
  CU_ASSERT(has_line(&m, "mica_master_zk_session_state{state=\"connected\"} 0"));
  buf_free(&m);
  int status = 0;
  TU_OK(th_proc_wait_exit(a->p, 10000, &status));
  CU_ASSERT_EQUAL(th_exit_code(status), 3);

  /* ZooKeeper is back: the standby wins, and its HTTP server, on the same
   * address, serves the active master. */
  TU_OK(zks_restart(g_zk, 0));
  CU_ASSERT_FATAL(wait_cluster_str(s->http, "role", "active", 30000));
  /* The page turns active before the process prints `listening`. */
  for (uint64_t until = th_now_ms() + 10000; !is_active(1) &&
       th_now_ms() < until;)
    th_sleep_ms(20);
  CU_ASSERT(is_active(1));
  mj_val *c = get_json(s->http, "/api/servers", 200);
  mj_free(c);
  start_master(0);
  for (uint64_t until = th_now_ms() + 10000; th_now_ms() < until;
       th_sleep_ms(50)) {
    c = get_json(s->http, "/api/cluster", 200);
    const mj_val *sb = at(c, "ha.standbys");
    bool ok = sb && sb->type == MJ_ARRAY && sb->len == 1;
    mj_free(c);
    if (ok) break;
  }
  check_active(s, a, 2);
  for (int i = 0; i < 2; i++) {
    TU_OK(th_proc_stop_clean(g_m[i].p, 15, 20000));
    th_proc_free(g_m[i].p);
    g_m[i].p = NULL;
  }
}

static int setup(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mica_err *e = zks_start(1, &g_zk);
  if (e != NULL) {
    fprintf(stderr, "cannot start ZooKeeper: %s\n", err_msg(e));
    err_free(e);
    return -1;
  }
  return 0;
}

static int cleanup(void) {
  zks_destroy(g_zk);
  curl_global_cleanup();
  return 0;
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("ha_http", setup, cleanup);
  CU_add_test(s, "standby_and_active_pages", test_ha_http);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
