/* test_cluster_obs: what a cluster tells an operator about its tablet
 * servers.
 *
 * Every tablet server announces its HTTP address when it registers; the
 * master lists it (ListServers and /api/servers), keeps it across its own
 * restart (it is in the metadata log), and the status page has a column
 * linking to each server's /metrics. Each listed address really serves
 * that server's /metrics (its server id) and /healthz. */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  buf_append(ud, p, sz * n);
  return sz * n;
}

/* GET http://<addr><path>: the status code, the body (NUL-terminated) in
 * `out`. */
static long get(const char *addr, const char *path, buf *out) {
  char url[512];
  snprintf(url, sizeof(url), "http://%s%s", addr, path);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  long code = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  buf_push(out, 0);
  out->len--;
  return code;
}

static int suite_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  mica_err *e = cl_start(&o, &g_c);
  if (e != NULL) {
    fprintf(stderr, "cluster: %s\n", err_msg(e));
    err_free(e);
    return 1;
  }
  return 0;
}

static int suite_clean(void) {
  cl_free(g_c);
  curl_global_cleanup();
  return 0;
}

/* ListServers of the live servers; caller frees with rpc_msg_free. */
static rpc_list_servers_response *list_servers(void) {
  rpc_list_servers_request q = {0};
  void *r = NULL;
  mica_err *e = cl_call_master(g_c, &rpc_m_master_list_servers, &q, 10000,
                               &r);
  TU_OK(e);
  return r;
}

/* Checks that every live server lists an HTTP address that serves its
 * own /metrics, and that /api/servers shows the same address. */
static void check_listed(void) {
  rpc_list_servers_response *ls = list_servers();
  CU_ASSERT_EQUAL_FATAL(ls->n_servers, 2);
  buf api = BUF_INIT;
  CU_ASSERT_EQUAL(get(cl_master_http_address(g_c), "/api/servers", &api),
                  200);
  for (size_t i = 0; i < ls->n_servers; i++) {
    const rpc_server_info *s = &ls->servers[i];
    CU_ASSERT_FATAL(s->http_address != NULL);
    CU_ASSERT(strncmp(s->http_address, "127.0.0.1:", 10) == 0);
    CU_ASSERT(strcmp(s->http_address, s->address) != 0);
    char want[300];
    snprintf(want, sizeof(want), "\"address\":\"%s\",\"http_address\":\"%s\"",
             s->address, s->http_address);
    CU_ASSERT(strstr((char *)api.data, want) != NULL);

    buf b = BUF_INIT;
    CU_ASSERT_EQUAL(get(s->http_address, "/healthz", &b), 200);
    buf_clear(&b);
    CU_ASSERT_EQUAL(get(s->http_address, "/metrics", &b), 200);
    snprintf(want, sizeof(want), "\nmica_tserver_server_id %" PRIu64 "\n",
             s->server_id);
    CU_ASSERT(strstr((char *)b.data, want) != NULL);
    snprintf(want, sizeof(want), "http_address=\"%s\"", s->http_address);
    CU_ASSERT(strstr((char *)b.data, want) != NULL);
    buf_free(&b);
  }
  buf_free(&api);
  rpc_msg_free(ls);
}

static void test_servers_list_http(void) {
  check_listed();
  /* The status page has the column its script fills with the links. */
  buf page = BUF_INIT;
  CU_ASSERT_EQUAL(get(cl_master_http_address(g_c), "/", &page), 200);
  CU_ASSERT(strstr((char *)page.data, "<th>metrics</th>") != NULL);
  buf_free(&page);
  buf js = BUF_INIT;
  CU_ASSERT_EQUAL(get(cl_master_http_address(g_c), "/static/status.js", &js),
                  200);
  CU_ASSERT(strstr((char *)js.data, "s.http_address") != NULL);
  CU_ASSERT(strstr((char *)js.data, "'/metrics'") != NULL);
  buf_free(&js);
}

/* The addresses are still listed after a master restart (the log keeps
 * them; tests/master's state simulator checks the replay itself). */
static void test_http_after_master_restart(void) {
  TU_OK(cl_stop_master(g_c));
  TU_OK(cl_restart_master(g_c));
  TU_OK(cl_wait_registered(g_c, 30000));
  check_listed();
}

static const CU_TestInfo tests[] = {
    {"servers_list_http", test_servers_list_http},
    {"http_after_master_restart", test_http_after_master_restart},
    CU_TEST_INFO_NULL};

static void add_suites(void) {
  CU_SuiteInfo suites[] = {
      {"cluster_obs", suite_init, suite_clean, NULL, NULL,
       (CU_TestInfo *)tests},
      CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
