/* s3server: the test program's S3 server (s3server.h). */
#include "tests/harness/s3server.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/slice.h"
#include "tests/harness/testutil.h"

static char server_dir[4096];
static char endpoint_url[256];
static bool failed;

static void stop_server(void) {
  if (endpoint_url[0] == '\0') return;
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "'%s/tools/s3-test-server' stop '%s'",
           MICA_SOURCE_DIR, server_dir);
  if (system(cmd) != 0) fprintf(stderr, "s3-test-server stop failed\n");
  endpoint_url[0] = '\0';
}

mica_err *th_s3_start(const char **endpoint) {
  *endpoint = NULL;
  if (endpoint_url[0] != '\0') {
    *endpoint = endpoint_url;
    return NULL;
  }
  if (failed)
    return err_new(MICA_UNAVAILABLE, "the S3 test server failed to start "
                   "earlier in this process");
  failed = true;
  snprintf(server_dir, sizeof server_dir, "%s/s3server", tu_tmpdir());
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "MICA_S3_OWNER_PID=%ld '%s/tools/s3-test-server' start '%s' %s",
           (long)getpid(), MICA_SOURCE_DIR, server_dir, TH_S3_BUCKET);
  FILE *f = popen(cmd, "r");
  if (f == NULL) return err_new(MICA_INTERNAL, "popen %s failed", cmd);
  char line[512] = "";
  if (fgets(line, sizeof line, f) == NULL) line[0] = '\0';
  int rc = pclose(f);
  char url[256] = "";
  if (rc != 0 || sscanf(line, "%255s", url) != 1 ||
      strncmp(url, "http://", 7) != 0)
    return err_new(MICA_UNAVAILABLE, "tools/s3-test-server start %s failed "
                   "(exit %d): '%s' (is node installed? tools/install-deps)",
                   server_dir, rc, line);
  snprintf(endpoint_url, sizeof endpoint_url, "%s", url);
  atexit(stop_server);
  failed = false;
  *endpoint = endpoint_url;
  return NULL;
}

mica_err *th_s3_export_env(void) {
  const char *ep;
  mica_err *err = th_s3_start(&ep);
  if (err != NULL) return err;
  if (setenv("AWS_ENDPOINT_URL", ep, 1) != 0 ||
      setenv("AWS_REGION", "us-east-1", 1) != 0 ||
      setenv("AWS_ACCESS_KEY_ID", TH_S3_KEY, 1) != 0 ||
      setenv("AWS_SECRET_ACCESS_KEY", TH_S3_KEY, 1) != 0)
    return err_new(MICA_INTERNAL, "setenv failed");
  unsetenv("AWS_ENDPOINT_URL_S3");
  unsetenv("AWS_SESSION_TOKEN");
  unsetenv("MICA_S3_ADDRESSING");
  return NULL;
}

char *th_s3_new_root(const char *what) {
  static int n;
  char *p = xmalloc(256);
  snprintf(p, 256, "s3://" TH_S3_BUCKET "/%s-%ld-%d-%llu", what,
           (long)getpid(), ++n, (unsigned long long)tu_rand_below(1000000));
  return p;
}
