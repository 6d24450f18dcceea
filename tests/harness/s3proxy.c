/* s3proxy: the test program's S3 fault proxy (s3proxy.h). */
#include "tests/harness/s3proxy.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness/s3server.h"

static char proxy_endpoint[256];
static int proxy_port;
static pid_t proxy_pid = -1;
static bool failed;

static void stop_proxy(void) {
  if (proxy_pid > 0) {
    kill(proxy_pid, SIGTERM);
    waitpid(proxy_pid, NULL, 0);
    proxy_pid = -1;
  }
}

mica_err *th_s3_proxy_start(const char **endpoint, int *port) {
  if (endpoint) *endpoint = NULL;
  if (port) *port = 0;
  if (proxy_port > 0) {
    if (endpoint) *endpoint = proxy_endpoint;
    if (port) *port = proxy_port;
    return NULL;
  }
  if (failed)
    return err_new(MICA_UNAVAILABLE, "the S3 proxy failed to start earlier "
                   "in this process");
  failed = true;
  const char *upstream;
  mica_err *err = th_s3_start(&upstream);
  if (err) return err;
  int fds[2];
  if (pipe(fds) != 0) return err_new(MICA_INTERNAL, "pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return err_new(MICA_INTERNAL, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    /* The proxy dies with this process, even one killed by a timeout. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("node", "node", MICA_SOURCE_DIR "/tests/common/s3_proxy.js",
           upstream, TH_S3_KEY, TH_S3_KEY, "us-east-1", (char *)NULL);
    perror("exec node");
    _exit(127);
  }
  close(fds[1]);
  proxy_pid = pid;
  atexit(stop_proxy);
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
  int got = atoi(line);
  if (got <= 0)
    return err_new(MICA_UNAVAILABLE, "tests/common/s3_proxy.js did not "
                   "start (it printed '%s'; is node installed?)", line);
  proxy_port = got;
  snprintf(proxy_endpoint, sizeof proxy_endpoint, "http://127.0.0.1:%d", got);
  failed = false;
  if (endpoint) *endpoint = proxy_endpoint;
  if (port) *port = proxy_port;
  return NULL;
}

static size_t collect(char *p, size_t size, size_t nmemb, void *ud) {
  buf_append(ud, p, size * nmemb);
  return size * nmemb;
}

mica_err *th_s3_proxy_ctl(const char *method, const char *what, buf *out) {
  if (proxy_port <= 0)
    return err_new(MICA_UNAVAILABLE, "/__proxy/%s: the S3 proxy is "
                   "not running (th_s3_proxy_start)", what);
  char url[2048];
  snprintf(url, sizeof url, "%s/__proxy/%s", proxy_endpoint, what);
  CURL *h = curl_easy_init();
  if (h == NULL) return err_new(MICA_INTERNAL, "curl_easy_init failed");
  buf b = BUF_INIT;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "POST") == 0) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  buf_push(&b, 0);
  mica_err *err = NULL;
  if (rc != CURLE_OK)
    err = err_new(MICA_UNAVAILABLE, "%s %s: %s", method, url,
                  curl_easy_strerror(rc));
  else if (status != 200)
    err = err_new(MICA_INTERNAL, "%s %s: status %ld: %s", method, url, status,
                  (const char *)b.data);
  if (err == NULL && out != NULL) {
    *out = b;
    return NULL;
  }
  buf_free(&b);
  return err;
}

mica_err *th_s3_fault(const char *spec) {
  char what[1024];
  snprintf(what, sizeof what, "fault?%s", spec);
  return th_s3_proxy_ctl("POST", what, NULL);
}

mica_err *th_s3_faults_clear(void) {
  return th_s3_proxy_ctl("POST", "clear", NULL);
}
