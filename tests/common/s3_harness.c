/* s3_harness: the S3 test programs' shared server, proxy and helpers
 * (s3_harness.h). */
#include "tests/common/s3_harness.h"
#include "tests/harness/s3server.h"

#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the shared servers ---- */

static char s3_endpoint[256];   /* s3rver, direct (tests/harness/s3server) */
char s3h_proxy_endpoint[256];
int s3h_proxy_port;
static pid_t proxy_pid = -1;
static bool servers_up, servers_failed;

static void stop_proxy(void) {
  if (proxy_pid > 0) {
    kill(proxy_pid, SIGTERM);
    waitpid(proxy_pid, NULL, 0);
    proxy_pid = -1;
  }
}

static bool start_proxy(void) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    /* The proxy dies with this process, even one killed by a timeout. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("node", "node", MICA_SOURCE_DIR "/tests/common/s3_proxy.js",
           s3_endpoint, "S3RVER", "S3RVER", "us-east-1", (char *)NULL);
    perror("exec node");
    _exit(127);
  }
  close(fds[1]);
  proxy_pid = pid;
  char line[64] = "";
  size_t n = 0;
  struct pollfd p = {fds[0], POLLIN, 0};
  while (n < sizeof(line) - 1 && poll(&p, 1, 30000) > 0) {
    ssize_t k = read(fds[0], line + n, 1);
    if (k <= 0 || line[n] == '\n') break;
    n++;
  }
  line[n] = '\0';
  close(fds[0]);
  s3h_proxy_port = atoi(line);
  if (s3h_proxy_port <= 0) {
    fprintf(stderr, "s3_proxy did not start (got '%s')\n", line);
    return false;
  }
  snprintf(s3h_proxy_endpoint, sizeof(s3h_proxy_endpoint), "http://127.0.0.1:%d",
           s3h_proxy_port);
  return true;
}

int s3h_start(void) {
  if (servers_up) return 0;
  if (servers_failed) return 1;
  servers_failed = true;
  const char *ep;
  mica_err *err = th_s3_start(&ep);
  if (err != NULL) {
    fprintf(stderr, "%s\n", err_msg(err));
    err_free(err);
    return 1;
  }
  snprintf(s3_endpoint, sizeof(s3_endpoint), "%s", ep);
  atexit(stop_proxy);
  if (!start_proxy()) return 1;
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
