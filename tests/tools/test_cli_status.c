/* test_cli_status: `mica status` as a user runs it, and the Master.GetInfo
 * call it starts from, against a real cluster (two tablet servers, two
 * tables, a named cluster).
 *
 * Checked: GetInfo over RPC and through libmica reports the master's own
 * RPC address, the HTTP address the master wrote to --http-address-file,
 * the version, a plausible start time and the cluster name; the summary
 * names the master, counts the live servers, has one line per server and
 * per table; --json is one valid JSON object with the three answers (by
 * python3's json module when present, and by the CLI's own reader always)
 * that agree with the cluster; --http works without asking the master; a
 * dead HTTP port, an unreachable master, an answer other than 200, and
 * answers that are not JSON or not the documented shape (served by a tiny
 * HTTP server inside this test) all exit 1 with one line naming the URL or
 * the master and print nothing on stdout; so does a master that reports no
 * usable HTTP address (a scripted RPC server); bad flags exit 2; --help shows
 * an example. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/slice.h"
#include "mica/mica.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/testutil.h"
#include "tools/mica/mjson.h"

static cluster *g_c;
static char g_mica[4096];

static const char *const g_master_args[] = {"--merge", "off", "--balancer", "off",
                                            "--cluster-name", "statustest", NULL};

/* ---- running the CLI ---- */

/* Runs the NULL-terminated `argv` (argv[0] a path or a name in PATH) with
 * `in` on stdin. */
static th_result run_argv(const char *const *argv, const char *in) {
  th_result r;
  TU_OK(th_run(argv, NULL, in, 0, &r));
  return r;
}

/* mica --master <the cluster's> --deadline 5000 ARGS... */
static th_result mica(const char *const *args) {
  const char *argv[32] = {"--deadline", "5000"};
  int n = 2;
  for (int i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
  argv[n] = NULL;
  th_result r;
  TU_OK(th_mica_cli(cl_master_address(g_c), NULL, argv, 0, &r));
  return r;
}

#define MICA(...) mica((const char *const[]){__VA_ARGS__, NULL})

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Asserts a failure: exit 1, nothing on stdout, one line on stderr that
 * contains `needle`. */
static void expect_fail(th_result r, const char *needle) {
  if (r.rc != 1 || strstr(th_err(&r), needle) == NULL || r.out.len != 0 ||
      count_lines(th_err(&r)) != 1)
    fprintf(stderr, "\nexit %d (want 1), want '%s' in stderr:\n%s\nstdout:\n%s\n", r.rc,
            needle, th_err(&r), th_out(&r));
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), needle));
  CU_ASSERT_EQUAL(r.out.len, 0);
  CU_ASSERT_EQUAL(count_lines(th_err(&r)), 1);
  th_result_free(&r);
}

/* ---- a tiny HTTP server serving canned answers ---- */

typedef struct fake_http {
  int fd;
  int port;
  pthread_t thread;
  pthread_mutex_t mu;
  const char *status_line; /* "200 OK" */
  const char *bodies[3];   /* /api/cluster, /api/servers, /api/tables */
  int requests;
} fake_http;

static void *fake_loop(void *arg) {
  fake_http *f = arg;
  for (;;) {
    int c = accept(f->fd, NULL, NULL);
    if (c < 0) return NULL;
    char req[2048];
    size_t n = 0;
    while (n < sizeof req - 1) {
      ssize_t k = read(c, req + n, sizeof req - 1 - n);
      if (k <= 0) break;
      n += (size_t)k;
      req[n] = '\0';
      if (strstr(req, "\r\n\r\n") != NULL || strncmp(req, "QUIT", 4) == 0) break;
    }
    req[n] = '\0';
    if (strncmp(req, "QUIT", 4) == 0) {
      close(c);
      return NULL;
    }
    pthread_mutex_lock(&f->mu);
    f->requests++;
    const char *body = "{}";
    if (strncmp(req, "GET /api/cluster ", 17) == 0) body = f->bodies[0];
    else if (strncmp(req, "GET /api/servers ", 17) == 0) body = f->bodies[1];
    else if (strncmp(req, "GET /api/tables ", 16) == 0) body = f->bodies[2];
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     f->status_line, strlen(body));
    if (write(c, head, (size_t)h) < 0 || write(c, body, strlen(body)) < 0) {
      /* the client went away: nothing to do */
    }
    pthread_mutex_unlock(&f->mu);
    close(c);
  }
}

static void fake_start(fake_http *f) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  f->fd = socket(AF_INET, SOCK_STREAM, 0);
  CU_ASSERT_FATAL(f->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CU_ASSERT_FATAL(bind(f->fd, (struct sockaddr *)&a, sizeof a) == 0);
  CU_ASSERT_FATAL(listen(f->fd, 16) == 0);
  CU_ASSERT_FATAL(getsockname(f->fd, (struct sockaddr *)&a, &al) == 0);
  f->port = ntohs(a.sin_port);
  CU_ASSERT_FATAL(pthread_create(&f->thread, NULL, fake_loop, f) == 0);
}

static void fake_set(fake_http *f, const char *status, const char *cluster_body,
                     const char *servers_body, const char *tables_body) {
  pthread_mutex_lock(&f->mu);
  f->status_line = status;
  f->bodies[0] = cluster_body;
  f->bodies[1] = servers_body;
  f->bodies[2] = tables_body;
  pthread_mutex_unlock(&f->mu);
}

static void fake_stop(fake_http *f) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (c >= 0 && connect(c, (struct sockaddr *)&a, sizeof a) == 0 &&
      write(c, "QUIT", 4) == 4) {
    pthread_join(f->thread, NULL);
  } else {
    CU_FAIL("cannot stop the fake HTTP server");
  }
  if (c >= 0) close(c);
  close(f->fd);
  pthread_mutex_destroy(&f->mu);
}

/* ---- suite ---- */

static int suite_init(void) {
  const char *bin = getenv("MICA_BIN_DIR");
  snprintf(g_mica, sizeof g_mica, "%s/mica", bin ? bin : ".");
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  o.master_args = g_master_args;
  if (cl_suite_start(&o, &g_c) != 0) return 1;
  mica_client *c = NULL;
  int rc = mica_open(cl_master_address(g_c), NULL, &c);
  mica_key splits[] = {{"m", 1}};
  if (rc == MICA_OK) rc = mica_create_table(c, "alpha", splits, 1);
  if (rc == MICA_OK) rc = mica_create_table(c, "beta.2", NULL, 0);
  for (int i = 0; i < 20 && rc == MICA_OK; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%02d", i);
    rc = mica_put(c, "alpha", k, strlen(k), "v", 1);
  }
  if (rc != MICA_OK) fprintf(stderr, "setup: %s\n", mica_errmsg());
  mica_close(c);
  return rc == MICA_OK ? 0 : 1;
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

/* ---- GetInfo ---- */

static void test_get_info(void) {
  rpc_get_info_request req = {0};
  void *msg = NULL;
  uint64_t now_ms = (uint64_t)time(NULL) * 1000;
  TU_OK(cl_call_master(g_c, &rpc_m_master_get_info, &req, 5000, &msg));
  CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
  const rpc_get_info_response *r = (const void *)msg;
  CU_ASSERT_STRING_EQUAL(r->http_address, cl_master_http_address(g_c));
  CU_ASSERT(r->http_address[0] != '\0');
  CU_ASSERT_STRING_EQUAL(r->rpc_address, cl_master_address(g_c));
  CU_ASSERT_STRING_EQUAL(r->version, MICA_VERSION);
  CU_ASSERT_STRING_EQUAL(r->cluster_name, "statustest");
  /* Started during this test program, which runs for minutes at most. */
  CU_ASSERT(r->start_time_ms <= now_ms + 1000);
  CU_ASSERT(r->start_time_ms + 600000 >= now_ms);

  /* libmica reports the same. */
  mica_client *c = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), NULL, &c), MICA_OK);
  mica_master_info *info = NULL;
  CU_ASSERT_EQUAL(mica_get_master_info(c, &info), MICA_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(info);
  CU_ASSERT_STRING_EQUAL(info->http_address, r->http_address);
  CU_ASSERT_STRING_EQUAL(info->rpc_address, r->rpc_address);
  CU_ASSERT_STRING_EQUAL(info->version, mica_version());
  CU_ASSERT_STRING_EQUAL(info->cluster_name, "statustest");
  CU_ASSERT_EQUAL(info->start_time_ms, r->start_time_ms);
  mica_free(info);
  mica_close(c);
  rpc_msg_free(msg);

  /* An unreachable master: UNAVAILABLE or DEADLINE_EXCEEDED, no info. */
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = 300;
  CU_ASSERT_EQUAL_FATAL(mica_open("127.0.0.1:1", &o, &c), MICA_OK);
  static mica_master_info stale;
  info = &stale; /* must be reset */
  int code = mica_get_master_info(c, &info);
  CU_ASSERT(code == MICA_UNAVAILABLE || code == MICA_DEADLINE_EXCEEDED);
  CU_ASSERT_PTR_NULL(info);
  mica_close(c);
}

/* ---- the summary ---- */

static void test_summary(void) {
  th_result r = MICA("status");
  if (r.rc != 0) fprintf(stderr, "\nstatus: %s\n", th_err(&r));
  CU_ASSERT_EQUAL_FATAL(r.rc, 0);
  const char *out = th_out(&r);
  char want[256];
  snprintf(want, sizeof want, "cluster statustest: master %s, version %s, up ",
           cl_master_address(g_c), MICA_VERSION);
  if (strncmp(out, want, strlen(want)) != 0) fprintf(stderr, "\nsummary:\n%s\n", out);
  CU_ASSERT_NSTRING_EQUAL(out, want, strlen(want));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "servers: 2 live, 0 suspect, 0 dead; tables: 2; "
                                     "tablets: 3 ("));
  /* The masters line: a single master, no ZooKeeper (docs/ha.md). */
  snprintf(want, sizeof want, "\nmasters: single %s (epoch 0, http %s); no "
           "ZooKeeper, no standbys\n", cl_master_address(g_c),
           cl_master_http_address(g_c));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
  CU_ASSERT_EQUAL(strlen(out), r.out.len); /* no NUL byte in the output */
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "SERVER  ADDRESS"));
  /* One line per server, starting with its id and naming its address. */
  for (int i = 0; i < 2; i++) {
    char line[128];
    snprintf(line, sizeof line, "\n%" PRIu64 " ", cl_tserver_id(g_c, i));
    const char *at = strstr(out, line);
    CU_ASSERT_PTR_NOT_NULL(at);
    const char *addr = strstr(out, cl_tserver_address(g_c, i));
    CU_ASSERT_PTR_NOT_NULL(addr);
    if (at && addr) CU_ASSERT(addr > at && strchr(at + 1, '\n') > addr);
    if (at) CU_ASSERT_PTR_NOT_NULL(strstr(at, " live "));
  }
  /* One line per table: name, tablets. */
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nTABLE "));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nalpha   2  "));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nbeta.2  1  "));
  /* Three header lines (no warnings: all live, balancer and merges off
   * warn though), blank, server header + 2, blank, table header + 2. */
  int warnings = 0;
  for (const char *p = strstr(out, "\nwarning: "); p; p = strstr(p + 1, "\nwarning: "))
    warnings++;
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nwarning: ")); /* balancer/merges off */
  CU_ASSERT_EQUAL(count_lines(out), 3 + warnings + 1 + 3 + 1 + 3);
  th_result_free(&r);

  /* --http skips the master: a wrong --master does not matter. */
  const char *argv[] = {g_mica, "--master", "127.0.0.1:1", "--deadline", "300", "status",
                        "--http", cl_master_http_address(g_c), NULL};
  r = run_argv(argv, NULL);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "\nbeta.2  1  "));
  th_result_free(&r);
}

/* ---- --json ---- */

static void test_json(void) {
  th_result r = MICA("status", "--json");
  if (r.rc != 0) fprintf(stderr, "\nstatus --json: %s\n", th_err(&r));
  CU_ASSERT_EQUAL_FATAL(r.rc, 0);

  /* Python's json module agrees it is JSON with the three keys. */
  if (system("python3 -c 'pass' >/dev/null 2>&1") == 0) {
    const char *py[] = {"python3", "-c",
                        "import json,sys\n"
                        "d = json.load(sys.stdin)\n"
                        "assert sorted(d) == ['cluster', 'servers', 'tables'], sorted(d)\n"
                        "print(len(d['servers']['servers']), "
                        "' '.join(t['name'] for t in d['tables']['tables']))\n",
                        NULL};
    th_result p = run_argv(py, th_out(&r));
    if (p.rc != 0) fprintf(stderr, "\npython3: %s\n", th_err(&p));
    CU_ASSERT_EQUAL(p.rc, 0);
    CU_ASSERT_STRING_EQUAL(th_out(&p), "2 alpha beta.2\n");
    th_result_free(&p);
  } else {
    fprintf(stderr, "\n(python3 missing: JSON checked by mjson only)\n");
  }

  char why[200];
  mj_val *v = mj_parse(th_out(&r), r.out.len, why, sizeof why);
  if (v == NULL) fprintf(stderr, "\n--json output: %s\n", why);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  CU_ASSERT_EQUAL(v->type, MJ_OBJECT);
  CU_ASSERT_EQUAL(v->len, 3);
  const mj_val *cl = mj_get(v, "cluster");
  const mj_val *ma = mj_get(cl, "master_address");
  CU_ASSERT_PTR_NOT_NULL_FATAL(ma);
  CU_ASSERT_STRING_EQUAL(ma->str, cl_master_address(g_c));
  const mj_val *ha = mj_get(cl, "http_address");
  CU_ASSERT_PTR_NOT_NULL_FATAL(ha);
  CU_ASSERT_STRING_EQUAL(ha->str, cl_master_http_address(g_c));
  const mj_val *sv = mj_get(mj_get(v, "servers"), "servers");
  CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
  CU_ASSERT_EQUAL(sv->len, 2);
  const mj_val *tb = mj_get(mj_get(v, "tables"), "tables");
  CU_ASSERT_PTR_NOT_NULL_FATAL(tb);
  CU_ASSERT_EQUAL_FATAL(tb->len, 2);
  CU_ASSERT_STRING_EQUAL(mj_get(tb->items[0], "name")->str, "alpha");
  CU_ASSERT_STRING_EQUAL(mj_get(tb->items[1], "name")->str, "beta.2");
  mj_free(v);
  th_result_free(&r);
}

/* ---- failures ---- */

/* A loopback port bound but not listening: connections are refused, and
 * no other process can take it while the socket is open. */
static int dead_port(int *fd) {
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CU_ASSERT_FATAL(*fd >= 0 && bind(*fd, (struct sockaddr *)&a, sizeof a) == 0);
  CU_ASSERT_FATAL(getsockname(*fd, (struct sockaddr *)&a, &al) == 0);
  return ntohs(a.sin_port);
}

static void test_unreachable(void) {
  int fd;
  int port = dead_port(&fd);
  char addr[64], url[128];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  snprintf(url, sizeof url, "http://%s/api/cluster", addr);
  expect_fail(MICA("status", "--http", addr), url);
  expect_fail(MICA("status", "--json", "--http", addr), url);

  /* The master itself unreachable: the line names its address. */
  const char *argv[] = {g_mica, "--master", addr, "--deadline", "500", "status", NULL};
  th_result r = run_argv(argv, NULL);
  char want[128];
  snprintf(want, sizeof want, "cannot reach the master at %s", addr);
  expect_fail(r, want);
  close(fd);
}

static void test_bad_answers(void) {
  fake_http f;
  fake_start(&f);
  char addr[64], base[96];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", f.port);
  snprintf(base, sizeof base, "http://%s/api/", addr);
  const char *good_cluster =
      "{\"cluster\": \"fake\", \"master_address\": \"m:1\", \"version\": \"9.9\", "
      "\"uptime_s\": 3725, \"servers\": {\"live\": 1, \"suspect\": 0, \"dead\": 1}, "
      "\"tables\": 1, \"tablets\": {\"current\": 4, \"in_transition\": 1}, "
      "\"bytes\": 3145728, \"keys\": 10, \"warnings\": [{\"kind\": \"server_down\", "
      "\"text\": \"server 2 (h\\\\x1b[31m:2) is dead\"}]}";
  const char *good_servers =
      "{\"servers\": [{\"id\": 1, \"address\": \"h:1\", \"state\": \"live\", "
      "\"tablets\": 4, \"bytes\": 3145728, \"read_rate\": 1.25, \"write_rate\": 0}, "
      "{\"id\": 2, \"address\": \"h\\u001b[31m:2\", \"state\": \"dead\", \"tablets\": 0, "
      "\"bytes\": 0, \"read_rate\": 0, \"write_rate\": 0}]}";
  const char *good_tables =
      "{\"tables\": [{\"name\": \"t\", \"tablets\": 4, \"bytes\": 3145728, \"keys\": 10}]}";

  /* The well-formed fake first: uptime, sizes and raw bytes escaped. */
  fake_set(&f, "200 OK", good_cluster, good_servers, good_tables);
  th_result r = MICA("status", "--http", addr);
  if (r.rc != 0) fprintf(stderr, "\nfake status: %s\n", th_err(&r));
  CU_ASSERT_EQUAL(r.rc, 0);
  const char *out = th_out(&r);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "cluster fake: master m:1, version 9.9, up 1h02m\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "servers: 1 live, 0 suspect, 1 dead; tables: 1; "
                                     "tablets: 4 (1 in transition); 3.0 MiB, 10 keys\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning: server 2 (h\\x1b[31m:2) is dead\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "2       h\\x1b[31m:2  dead   0        0 B"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "1.2"));
  CU_ASSERT_PTR_NULL(strchr(out, 0x1b)); /* no raw escape reaches a terminal */
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt      4        3.0 MiB  10\n"));
  th_result_free(&r);

  /* A status other than 200. */
  fake_set(&f, "404 Not Found", "{\"error\": \"no\"}", good_servers, good_tables);
  char url[160];
  snprintf(url, sizeof url, "%scluster: HTTP status 404", base);
  expect_fail(MICA("status", "--http", addr), url);
  fake_set(&f, "500 Internal Server Error", "{}", "{}", "{}");
  expect_fail(MICA("status", "--json", "--http", addr), "HTTP status 500");

  /* Not JSON, cut short, or JSON of the wrong shape: each named by URL
   * and, for shapes, by the JSON path. */
  static const struct {
    int which; /* 0 cluster, 1 servers, 2 tables */
    const char *body;
    const char *needle;
  } cases[] = {
      {0, "<html>hello</html>", "not JSON: offset 0: "},
      {0, "{\"cluster\": \"x\"", "not JSON: offset"},
      {1, "[1, 2]", "expected an object, got array"},
      {1, "{\"servers\": {}}", "servers: expected array, got object"},
      {1, "{\"servers\": [7]}", "servers[0]: expected object, got number"},
      {1, "{\"servers\": [{\"id\": \"1\"}]}", "servers[0].id: expected number, got string"},
      {1, "{\"servers\": [{\"id\": 1.5}]}", "servers[0].id: expected a whole number >= 0, got 1.5"},
      {1, "{\"servers\": [{\"id\": 1, \"address\": \"a\", \"state\": \"live\", "
          "\"tablets\": 1, \"bytes\": 1, \"read_rate\": -1, \"write_rate\": 0}]}",
       "servers[0].read_rate: expected a rate >= 0, got -1"},
      {2, "{\"tables\": [{\"name\": 5}]}", "tables[0].name: expected string, got number"},
      {2, "{\"tables\": [{\"name\": \"t\", \"tablets\": 1, \"bytes\": 1}]}",
       "tables[0].keys: missing"},
      {0, "{\"cluster\": \"c\", \"master_address\": \"m\", \"version\": \"v\", "
          "\"uptime_s\": 1, \"servers\": null}",
       "servers: expected object, got null"},
      {2, "{\"tables\": []} trailing", "unexpected bytes after the value"},
      {0, "{\"cluster\": \"c\", \"master_address\": \"m\", \"version\": \"v\", "
          "\"uptime_s\": 1, \"ha\": 5}",
       "ha: expected object, got number"},
      {0, "{\"cluster\": \"c\", \"master_address\": \"m\", \"version\": \"v\", "
          "\"uptime_s\": 1, \"ha\": {\"role\": \"active\", \"epoch\": \"1\"}}",
       "ha.epoch: expected number, got string"},
      {0, "{\"cluster\": \"c\", \"role\": \"standby\", \"ha\": {\"active\": null}}",
       "is a standby master and names no active master"},
      {1, "{\"servers\": [], \"servers\": []}", "repeated member name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *b[3] = {good_cluster, good_servers, good_tables};
    b[cases[i].which] = cases[i].body;
    fake_set(&f, "200 OK", b[0], b[1], b[2]);
    static const char *const ep[] = {"cluster", "servers", "tables"};
    snprintf(url, sizeof url, "%s%s", base, ep[cases[i].which]);
    th_result rr = MICA("status", "--http", addr);
    if (strstr(th_err(&rr), url) == NULL) fprintf(stderr, "\ncase %zu: no URL %s\n", i, url);
    CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&rr), url));
    expect_fail(rr, cases[i].needle);
  }
  /* --json refuses answers that are not JSON objects, so its output is
   * always valid JSON. */
  fake_set(&f, "200 OK", good_cluster, "[1]", good_tables);
  expect_fail(MICA("status", "--json", "--http", addr), "expected an object, got array");
  fake_set(&f, "200 OK", good_cluster, "{\"a\":", good_tables);
  expect_fail(MICA("status", "--json", "--http", addr), "not JSON");
  /* ... but passes a well-formed object through whatever its fields. */
  fake_set(&f, "200 OK", "{\"anything\": [1, {\"x\": null}]}\n", "{}", "{ }");
  r = MICA("status", "--json", "--http", addr);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_STRING_EQUAL(th_out(&r), "{\"cluster\": {\"anything\": [1, {\"x\": null}]},\n"
                                     " \"servers\": {},\n \"tables\": { }}\n");
  th_result_free(&r);
  pthread_mutex_lock(&f.mu);
  CU_ASSERT(f.requests > 20);
  pthread_mutex_unlock(&f.mu);
  fake_stop(&f);
}

/* ---- a master without HTTP ---- */

/* GetInfo of a master embedded without its HTTP server: an empty address
 * (`ctx` is the address to report). */
static void fake_get_info(rpc_call *call, const void *req, void *ctx) {
  (void)req;
  rpc_get_info_response resp = {0};
  resp.version = (char *)"0.0.0";
  resp.http_address = ctx;
  rpc_call_reply(call, &resp);
}

static void test_master_without_http(void) {
  static const char *const reported[] = {"", "not an address", "h:1/../x"};
  for (size_t i = 0; i < sizeof reported / sizeof reported[0]; i++) {
    rpc_server_opts o = {0};
    rpc_server *srv = NULL;
    TU_OK(rpc_server_new(&o, &srv));
    rpc_handler h = {&rpc_m_master_get_info, fake_get_info, (void *)reported[i], 0};
    TU_OK(rpc_server_register(srv, &h, 1));
    TU_OK(rpc_server_start(srv));
    const char *argv[] = {g_mica, "--master", rpc_server_address(srv), "--deadline", "3000",
                          "status", NULL};
    char want[160];
    snprintf(want, sizeof want, "the master at %s reports %s HTTP address",
             rpc_server_address(srv), i == 0 ? "no" : "an unusable");
    th_result r = run_argv(argv, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "give one with --http HOST:PORT"));
    expect_fail(r, want);
    rpc_server_free(srv);
  }
}

/* ---- usage ---- */

static void test_usage(void) {
  th_result r = MICA("status", "--help");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "usage: mica status [--json] [--http HOST:PORT]"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "Example:\n  mica"));
  th_result_free(&r);
  r = MICA("help", "status");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "--json"));
  th_result_free(&r);
  r = MICA("--help");
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "\n  status [--json] [--http HOST:PORT]"));
  th_result_free(&r);

  static const char *const bad[][4] = {
      {"status", "--bogus", NULL},        {"status", "extra", NULL},
      {"status", "--http", NULL},         {"status", "--http", "nocolon", NULL},
      {"status", "--http", "h:0", NULL},  {"status", "--http", "h:65536", NULL},
      {"status", "--http", "h:1/x", NULL}, {"status", "--http", "h/x:1", NULL},
      {"status", "--http", ":80", NULL},  {"status", "--json=1", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = mica(bad[i]);
    if (r.rc != 2) fprintf(stderr, "\ncase %zu: exit %d\n", i, r.rc);
    CU_ASSERT_EQUAL(r.rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "usage: mica status"));
    CU_ASSERT_EQUAL(r.out.len, 0);
    th_result_free(&r);
  }
  /* IPv6 literals are accepted as addresses (and refused as unreachable). */
  r = MICA("status", "--deadline", "1", "--http", "[::1]:1");
  CU_ASSERT_EQUAL(r.rc, 2); /* --deadline is a global flag, not status's */
  th_result_free(&r);
  int fd;
  char v6[64];
  snprintf(v6, sizeof v6, "[::1]:%d", dead_port(&fd));
  r = MICA("status", "--http", v6);
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "http://[::1]:"));
  th_result_free(&r);
  close(fd);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"get_info", test_get_info},       {"summary", test_summary},
      {"json", test_json},               {"unreachable", test_unreachable},
      {"bad_answers", test_bad_answers}, {"master_without_http", test_master_without_http},
      {"usage", test_usage},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("cli_status", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName; t++) CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
