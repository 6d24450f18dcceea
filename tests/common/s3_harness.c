/* s3_harness: the S3 test programs' shared server, proxy and helpers
 * (s3_harness.h). */
#include "tests/common/s3_harness.h"
#include "tests/harness/s3proxy.h"
#include "tests/harness/s3server.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the shared servers ---- */

char s3h_proxy_endpoint[256];
int s3h_proxy_port;
static bool servers_up, servers_failed;

/* s3rver and the proxy in front of it: the harness's, shared with the
 * clusters of tests/harness (s3proxy.h). */
int s3h_start(void) {
  if (servers_up) return 0;
  if (servers_failed) return 1;
  servers_failed = true;
  const char *ep;
  mica_err *err = th_s3_proxy_start(&ep, &s3h_proxy_port);
  if (err != NULL) {
    fprintf(stderr, "%s\n", err_msg(err));
    err_free(err);
    return 1;
  }
  snprintf(s3h_proxy_endpoint, sizeof(s3h_proxy_endpoint), "%s", ep);
  servers_up = true;
  servers_failed = false;
  return 0;
}

/* ---- the proxy's control and log ---- */

static size_t collect(char *p, size_t size, size_t nmemb, void *ud) {
  buf_append(ud, p, size * nmemb);
  return size * nmemb;
}

/* `method` /__proxy/`what`; the answer's body in `out` if not NULL. */
void s3h_proxy_ctl(const char *method, const char *what, buf *out) {
  char url[2048];
  snprintf(url, sizeof(url), "%s/__proxy/%s", s3h_proxy_endpoint, what);
  CURL *h = curl_easy_init();
  buf b = BUF_INIT;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "POST") == 0) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  CU_ASSERT_EQUAL_FATAL(rc, CURLE_OK);
  CU_ASSERT_EQUAL_FATAL(status, 200);
  buf_push(&b, 0);
  if (out != NULL) *out = b;
  else buf_free(&b);
}

void s3h_fault(const char *spec) {
  char what[1024];
  snprintf(what, sizeof(what), "fault?%s", spec);
  s3h_proxy_ctl("POST", what, NULL);
}

void s3h_log_reset(void) { s3h_proxy_ctl("POST", "reset", NULL); }

/* The proxy's log since the last reset; caller frees. */
char *s3h_log_text(void) {
  buf b;
  s3h_proxy_ctl("GET", "log", &b);
  return (char *)b.data;
}

/* Lines of `text` containing every one of the NULL-ended needles. */
int s3h_count_lines(const char *text, const char *const *needles) {
  int n = 0;
  const char *p = text;
  while (*p) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char *line = xmemdup(p, len + 1);
    line[len] = '\0';
    bool all = true;
    for (const char *const *s = needles; *s && all; s++)
      all = strstr(line, *s) != NULL;
    n += all;
    free(line);
    p += len + (end ? 1 : 0);
  }
  return n;
}

/* Every request so far was correctly signed. */
void s3h_assert_all_signed(void) {
  char *t = s3h_log_text();
  int bad = S3H_COUNT(t, "sig=bad");
  if (bad != 0) fprintf(stderr, "\nbadly signed requests:\n%s", t);
  CU_ASSERT_EQUAL(bad, 0);
  free(t);
}

/* ---- envs ---- */

/* The test server's credentials and, with `short_deadline`, a 3 s
 * deadline of 1 s attempts for the fault tests; otherwise the defaults
 * (s3rver lists slowly: it walks its whole bucket directory). */
void s3h_config_for(s3_config *c, const char *endpoint, bool short_deadline) {
  TU_OK(s3_config_from_environ(c));
  TU_OK(s3_config_set(c, "endpoint", endpoint));
  TU_OK(s3_config_set(c, "region", "us-east-1"));
  TU_OK(s3_config_set(c, "access-key", "S3RVER"));
  TU_OK(s3_config_set(c, "secret-key", "S3RVER"));
  TU_OK(s3_config_set(c, "session-token", ""));
  TU_OK(s3_config_set(c, "backoff-base-ms", "10"));
  TU_OK(s3_config_set(c, "backoff-max-ms", "200"));
  if (short_deadline) {
    TU_OK(s3_config_set(c, "deadline-ms", "3000"));
    TU_OK(s3_config_set(c, "attempt-timeout-ms", "1000"));
  }
}

void s3h_base_config(s3_config *c, const char *endpoint) {
  s3h_config_for(c, endpoint, true);
}

/* A fresh s3:// root for one test. */
char *s3h_new_root(void) {
  static int n;
  char *p = xmalloc(128);
  snprintf(p, 128, "s3://" S3H_BUCKET "/t%ld-%d-%llu", (long)getpid(), ++n,
           (unsigned long long)tu_rand_below(1000000));
  return p;
}

char *s3h_path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = xmalloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

void s3h_expect_err(mica_err *e, int code, const char *needle) {
  if (err_code(e) != code || strstr(err_msg(e), needle) == NULL)
    fprintf(stderr, "\n  got %s: %s; want %s naming %s\n",
            mica_code_name(err_code(e)), err_msg(e), mica_code_name(code),
            needle);
  CU_ASSERT_EQUAL(err_code(e), code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), needle));
  err_free(e);
}

void s3h_write_file(env *e, const char *path, int mode, const char *data) {
  env_writer *w;
  TU_OK(env_open_writer(e, path, mode, &w));
  TU_OK(env_append(w, data, strlen(data)));
  TU_OK(env_sync(w));
  TU_OK(env_writer_close(w));
}

char *s3h_slurp(env *e, const char *path) {
  buf b = BUF_INIT;
  mica_err *err = env_read_file(e, path, 64 << 20, &b);
  if (err != NULL) {
    fprintf(stderr, "\n  s3h_slurp: %s\n", err_msg(err));
    err_free(err);
    buf_free(&b);
    return NULL;
  }
  buf_push(&b, 0);
  return (char *)b.data;
}

bool s3h_names_contain(char **names, size_t n, const char *want) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], want) == 0) return true;
  return false;
}

/* ---- the shared envs ---- */

env *s3h_env, *s3h_fast_env;

static void free_envs(void) {
  env_s3_free(s3h_env);
  env_s3_free(s3h_fast_env);
}

int s3h_setup(void) {
  if (s3h_start() != 0) return 1;
  if (s3h_env != NULL) return 0;
  s3_config c;
  if (s3_config_from_environ(&c) != NULL) return 1;
  s3_config_set(&c, "endpoint", s3h_proxy_endpoint);
  s3_config_set(&c, "access-key", "S3RVER");
  s3_config_set(&c, "secret-key", "S3RVER");
  s3_config_set(&c, "backoff-base-ms", "10");
  s3_config_set(&c, "backoff-max-ms", "200");
  mica_err *err = env_s3_new(&c, &s3h_env);
  if (err == NULL) {
    s3_config_set(&c, "deadline-ms", "3000");
    s3_config_set(&c, "attempt-timeout-ms", "1000");
    err = env_s3_new(&c, &s3h_fast_env);
  }
  s3_config_free(&c);
  if (err != NULL) {
    fprintf(stderr, "env_s3_new: %s\n", err_msg(err));
    err_free(err);
    return 1;
  }
  atexit(free_envs);
  return 0;
}
