/* zkserver: see zkserver.h. The script does the work; this file runs it
 * with th_run, so its output is captured and a hung script is killed. */
#include "tests/harness/zkserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness/proc.h"

struct zks {
  int nodes;
  char dir[512];
  char connect[512];
};

static const char *script(void) {
  return MICA_SOURCE_DIR "/tools/zk-test-server";
}

/* Runs the script with `args` (NULL-terminated, after the script); on
 * success *out (may be NULL) gets its stdout. */
static mica_err *run(const char *const *args, char *out, size_t n) {
  const char *argv[16];
  size_t k = 0;
  argv[k++] = script();
  for (size_t i = 0; args[i] != NULL && k < 15; i++) argv[k++] = args[i];
  argv[k] = NULL;
  th_result r;
  /* Starting a 3-node ensemble under load can take a while; the script
   * gives up by itself after ZK_WAIT_S (60 s). */
  mica_err *e = th_run(argv, NULL, NULL, 180000, &r);
  if (e != NULL)
    e = err_wrap(e, "%s %s", script(), args[0]);
  else if (r.rc != 0)
    e = err_new(MICA_UNAVAILABLE, "%s %s failed (exit %d): %s", script(),
                args[0], r.rc, th_err(&r));
  else if (out != NULL && n > 0)
    snprintf(out, n, "%s", th_out(&r));
  th_result_free(&r);
  return e;
}

static int line_value(const char *text, const char *key, char *out,
                      size_t n) {
  size_t k = strlen(key);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, key, k) == 0 && p[k] == '=') {
      const char *v = p + k + 1;
      size_t l = strcspn(v, "\n");
      if (l >= n) return -1;
      memcpy(out, v, l);
      out[l] = '\0';
      return 0;
    }
  return -1;
}

mica_err *zks_start(int nodes, zks **out) {
  *out = NULL;
  zks *z = xcalloc(1, sizeof *z);
  z->nodes = nodes;
  char nb[16], pid[16], text[2048];
  snprintf(nb, sizeof nb, "%d", nodes);
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  const char *args[] = {"start", "--nodes", nb, "--owner-pid", pid, NULL};
  mica_err *e = run(args, text, sizeof text);
  if (e == NULL && (line_value(text, "dir", z->dir, sizeof z->dir) != 0 ||
                    line_value(text, "connect", z->connect,
                               sizeof z->connect) != 0))
    e = err_new(MICA_INTERNAL, "zk-test-server printed no dir/connect: %s",
                text);
  if (e != NULL) {
    free(z);
    return e;
  }
  *out = z;
  return NULL;
}

const char *zks_connect(zks *z) { return z->connect; }

mica_err *zks_stop(zks *z, int node) {
  char nb[16];
  snprintf(nb, sizeof nb, "%d", node);
  const char *args[] = {"stop", z->dir, node == 0 ? NULL : nb, NULL};
  return run(args, NULL, 0);
}

mica_err *zks_restart(zks *z, int node) {
  const char *args[16];
  char nb[8][8];
  size_t k = 0;
  args[k++] = "start-node";
  args[k++] = z->dir;
  for (int i = 1; i <= z->nodes && i <= 8; i++) {
    if (node != 0 && i != node) continue;
    char pidf[600];
    snprintf(pidf, sizeof pidf, "%s/n%d/pid", z->dir, i);
    if (node == 0 && access(pidf, F_OK) == 0) continue; /* still running */
    snprintf(nb[i - 1], sizeof nb[i - 1], "%d", i);
    args[k++] = nb[i - 1];
  }
  args[k] = NULL;
  return run(args, NULL, 0);
}

void zks_destroy(zks *z) {
  if (z == NULL) return;
  mica_err *e = zks_stop(z, 0);
  if (e != NULL) {
    fprintf(stderr, "zks_destroy: %s\n", err_msg(e));
    err_free(e);
  }
  const char *argv[] = {"rm", "-rf", z->dir, NULL};
  th_result r;
  e = th_run(argv, NULL, NULL, 60000, &r);
  if (e == NULL && r.rc != 0)
    fprintf(stderr, "zks_destroy: rm -rf %s failed: %s\n", z->dir, th_err(&r));
  th_result_free(&r);
  err_free(e);
  free(z);
}
