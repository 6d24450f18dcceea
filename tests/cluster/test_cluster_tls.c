/* HTTPS of the master's status page and API and of the tablet servers'
 * /metrics and /healthz, and its certificate reload (docs/security.md,
 * "HTTPS"), on real processes with libcurl trusting the CA that
 * tools/mica-certs made.
 *
 * Suite "https": a TLS cluster (one master, one tablet server). The status
 * page, /api/cluster (https and rpc_tls true, insecure null) and a tablet
 * server's /metrics and /healthz answer over HTTPS to a client trusting the
 * cluster's CA; a client trusting another CA is refused, and so is plain
 * HTTP to the same port. `mica --ca` status reads the API over HTTPS.
 *
 * Suite "reload": a tablet server serving HTTPS with one CA's certificate;
 * the files are replaced (by rename) with another CA's: new connections
 * get the new certificate without a restart, the old CA is refused; a
 * broken certificate file is logged and the previous one keeps serving;
 * the process then stops cleanly. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/testutil.h"

static cluster *g_c;
static char g_ca[1024], g_other[1024]; /* mica-certs directories */

typedef struct answer {
  CURLcode cc;
  long code;
  buf body;
} answer;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  buf_append(&((answer *)ud)->body, p, sz * n);
  return sz * n;
}

/* GET `url` trusting the CA file `ca` (NULL: none given). The body is
 * NUL-terminated; free with answer_free. */
static void get(const char *url, const char *ca, answer *a) {
  memset(a, 0, sizeof(*a));
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
  /* A fresh connection every time: a reload must show on the next one. */
  curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
  if (ca) curl_easy_setopt(h, CURLOPT_CAINFO, ca);
  a->cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->code);
  curl_easy_cleanup(h);
  buf_push(&a->body, 0);
}

static void answer_free(answer *a) { buf_free(&a->body); }

static const char *body(const answer *a) { return (const char *)a->body.data; }

/* 200 over HTTPS trusting `cadir`/ca.pem. */
static bool https_ok(const char *addr, const char *path, const char *cadir) {
  char url[512], ca[1100];
  snprintf(url, sizeof url, "https://%s%s", addr, path);
  snprintf(ca, sizeof ca, "%s/ca.pem", cadir);
  answer a;
  get(url, ca, &a);
  bool ok = a.cc == CURLE_OK && a.code == 200;
  answer_free(&a);
  return ok;
}

static int make_certs(const char *dir) {
  char cmd[2300];
  snprintf(cmd, sizeof cmd, "'%s/tools/mica-certs' '%s' >/dev/null",
           MICA_SOURCE_DIR, dir);
  return system(cmd) == 0 ? 0 : 1;
}

static int certs_init(void) {
  snprintf(g_ca, sizeof g_ca, "%s/certs", tu_tmpdir());
  snprintf(g_other, sizeof g_other, "%s/other-ca", tu_tmpdir());
  return make_certs(g_ca) || make_certs(g_other);
}

/* ---- suite: https ---- */

static int https_init(void) {
  if (certs_init()) return 1;
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.tls_dir = g_ca;
  return cl_suite_start(&o, &g_c);
}

static int https_clean(void) { return cl_suite_stop(&g_c); }

static void test_master_https(void) {
  const char *h = cl_master_http_address(g_c);
  char url[512], ca[1100], other[1100];
  snprintf(ca, sizeof ca, "%s/ca.pem", g_ca);
  snprintf(other, sizeof other, "%s/ca.pem", g_other);

  answer a;
  snprintf(url, sizeof url, "https://%s/api/cluster", h);
  get(url, ca, &a);
  CU_ASSERT_EQUAL(a.cc, CURLE_OK);
  CU_ASSERT_EQUAL(a.code, 200);
  CU_ASSERT_PTR_NOT_NULL(strstr(body(&a), "\"rpc_tls\":true,\"https\":true,"
                                          "\"insecure\":null"));
  answer_free(&a);

  snprintf(url, sizeof url, "https://%s/", h);
  get(url, ca, &a);
  CU_ASSERT_EQUAL(a.code, 200);
  CU_ASSERT_PTR_NOT_NULL(strstr(body(&a), "insecure-banner"));
  answer_free(&a);

  /* Another CA: the handshake fails, nothing is answered. */
  snprintf(url, sizeof url, "https://%s/api/cluster", h);
  get(url, other, &a);
  CU_ASSERT_EQUAL(a.cc, CURLE_PEER_FAILED_VERIFICATION);
  CU_ASSERT_EQUAL(a.code, 0);
  CU_ASSERT_EQUAL(a.body.len, 1);
  answer_free(&a);

  /* Plain HTTP to the HTTPS port gets no HTTP answer. */
  snprintf(url, sizeof url, "http://%s/healthz", h);
  get(url, NULL, &a);
  CU_ASSERT_NOT_EQUAL(a.cc, CURLE_OK);
  CU_ASSERT_NOT_EQUAL(a.code, 200);
  answer_free(&a);
}

static void test_tserver_https(void) {
  char url[512], ca[1100], other[1100];
  snprintf(ca, sizeof ca, "%s/ca.pem", g_ca);
  snprintf(other, sizeof other, "%s/ca.pem", g_other);
  /* The tablet server's HTTP address, as the master lists it. */
  answer a;
  snprintf(url, sizeof url, "https://%s/api/servers",
           cl_master_http_address(g_c));
  get(url, ca, &a);
  CU_ASSERT_EQUAL_FATAL(a.code, 200);
  const char *p = strstr(body(&a), "\"http_address\":\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  p += strlen("\"http_address\":\"");
  char addr[128];
  size_t n = strcspn(p, "\"");
  CU_ASSERT_FATAL(n > 0 && n < sizeof addr);
  memcpy(addr, p, n);
  addr[n] = '\0';
  answer_free(&a);

  snprintf(url, sizeof url, "https://%s/healthz", addr);
  get(url, ca, &a);
  CU_ASSERT_EQUAL(a.code, 200);
  CU_ASSERT_STRING_EQUAL(body(&a), "ok\n");
  answer_free(&a);
  snprintf(url, sizeof url, "https://%s/metrics", addr);
  get(url, ca, &a);
  CU_ASSERT_EQUAL(a.code, 200);
  CU_ASSERT_PTR_NOT_NULL(strstr(body(&a), "mica_tserver_info"));
  answer_free(&a);
  get(url, other, &a);
  CU_ASSERT_EQUAL(a.cc, CURLE_PEER_FAILED_VERIFICATION);
  answer_free(&a);
  snprintf(url, sizeof url, "http://%s/metrics", addr);
  get(url, NULL, &a);
  CU_ASSERT_NOT_EQUAL(a.code, 200);
  answer_free(&a);
}

/* `mica --ca CA status` reads the API over HTTPS; without --ca the RPC
 * call to the TLS master fails first. */
static void test_cli_status(void) {
  char ca[1100];
  snprintf(ca, sizeof ca, "%s/ca.pem", g_ca);
  const char *args[] = {"--ca", ca, "status", "--json", NULL};
  th_result r;
  TU_OK(th_mica_cli(cl_master_address(g_c), NULL, args, 30000, &r));
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "\"https\":true"));
  if (r.rc != 0) fprintf(stderr, "mica status: %s\n", th_err(&r));
  th_result_free(&r);
  const char *plain[] = {"--deadline", "2000", "status", NULL};
  TU_OK(th_mica_cli(cl_master_address(g_c), NULL, plain, 30000, &r));
  CU_ASSERT_NOT_EQUAL(r.rc, 0);
  th_result_free(&r);
}

/* ---- suite: reload ---- */

static int reload_init(void) { return certs_init(); }

/* Copies `from` to `to` through a temporary file renamed into place (how
 * certificates are meant to be replaced). */
static void replace_file(const char *from, const char *to) {
  char cmd[8192]; /* four paths of at most about 1.2 KB each */
  snprintf(cmd, sizeof cmd, "cp '%s' '%s.new' && mv '%s.new' '%s'", from, to,
           to, to);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

static bool wait_https(const char *addr, const char *cadir, int ms) {
  for (uint64_t until = cl_now_ms() + (uint64_t)ms; cl_now_ms() < until;
       cl_sleep_ms(100))
    if (https_ok(addr, "/healthz", cadir)) return true;
  return false;
}

static bool log_has(const char *log, const char *text) {
  FILE *f = fopen(log, "r");
  if (f == NULL) return false;
  char line[2048];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, text);
  fclose(f);
  return found;
}

static void test_reload(void) {
  char dir[1100], logs[1100], data[1100];
  snprintf(dir, sizeof dir, "%s/live", tu_tmpdir());
  snprintf(logs, sizeof logs, "%s/reload-logs", tu_tmpdir());
  snprintf(data, sizeof data, "%s/reload-data", tu_tmpdir());
  char cmd[5000];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s' && cp -p '%s'/* '%s/'", logs,
           dir, g_ca, dir);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  char cert[1200], key[1200], ca[1200], ocert[1200], okey[1200];
  snprintf(cert, sizeof cert, "%s/server.pem", dir);
  snprintf(key, sizeof key, "%s/server.key", dir);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(ocert, sizeof ocert, "%s/server.pem", g_other);
  snprintf(okey, sizeof okey, "%s/server.key", g_other);
  const char *args[] = {"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca,
                        NULL};
  th_node_opts o = {.prog = "mica-tserver", .name = "reload",
                    .data_dir = data, .log_dir = logs, .http = true,
                    .args = args};
  th_node n = {0};
  TU_OK(th_node_start(&o, &n));
  const char *h = n.http_address;
  CU_ASSERT_TRUE(https_ok(h, "/healthz", g_ca));
  CU_ASSERT_FALSE(https_ok(h, "/healthz", g_other));

  /* Another CA's certificate, key first: in between the pair does not
   * match and the old certificate keeps serving. */
  replace_file(okey, key);
  replace_file(ocert, cert);
  CU_ASSERT_TRUE(wait_https(h, g_other, 10000));
  CU_ASSERT_FALSE(https_ok(h, "/healthz", g_ca));
  CU_ASSERT_TRUE(log_has(n.log, "http: certificate reloaded from"));

  /* A broken certificate: logged, the previous one keeps serving. */
  char junk[1200];
  snprintf(junk, sizeof junk, "%s/junk.pem", tu_tmpdir());
  FILE *f = fopen(junk, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("-----BEGIN CERTIFICATE-----\nnot a certificate\n"
        "-----END CERTIFICATE-----\n", f);
  fclose(f);
  replace_file(junk, cert);
  bool logged = false;
  for (uint64_t until = cl_now_ms() + 10000; !logged && cl_now_ms() < until;
       cl_sleep_ms(100))
    logged = log_has(n.log, "still serving the previous certificate");
  CU_ASSERT_TRUE(logged);
  CU_ASSERT_TRUE(https_ok(h, "/metrics", g_other));

  /* Back to a good certificate, then a clean stop (both daemons, the
   * quiesced one included, shut down without error). */
  replace_file(ocert, cert);
  cl_sleep_ms(1500);
  CU_ASSERT_TRUE(https_ok(h, "/healthz", g_other));
  TU_OK(th_node_stop(&n, 0));
  th_node_clear(&n);
}

static void add_suites(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CU_pSuite s = CU_add_suite("https", https_init, https_clean);
  CU_add_test(s, "master_https", test_master_https);
  CU_add_test(s, "tserver_https", test_tserver_https);
  CU_add_test(s, "cli_status", test_cli_status);
  s = CU_add_suite("reload", reload_init, NULL);
  CU_add_test(s, "reload", test_reload);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
