/* zkserver: see zkserver.h. The script does the work; this file runs it. */
#include "tests/master/zk/zkserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct zks {
  int nodes;
  char dir[512];
  char connect[512];
};

static const char *script(void) {
  return MICA_SOURCE_DIR "/tools/zk-test-server";
}

/* Runs the script with `args`; captures stdout into out (n bytes). */
static mica_err *run(const char *args, char *out, size_t n) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s", script(), args);
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return err_new(MICA_INTERNAL, "cannot run %s: %m", script());
  size_t got = 0;
  if (out != NULL && n > 0) {
    got = fread(out, 1, n - 1, p);
    out[got] = '\0';
  } else {
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
  }
  int st = pclose(p);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return err_new(MICA_UNAVAILABLE, "%s %s failed (status %d)", script(),
                   args, st);
  return NULL;
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
  zks *z = calloc(1, sizeof *z);
  if (z == NULL) return err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  z->nodes = nodes;
  char args[256], text[2048];
  snprintf(args, sizeof args, "start --nodes %d --owner-pid %d", nodes,
           (int)getpid());
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
  char args[700];
  if (node == 0) snprintf(args, sizeof args, "stop '%s'", z->dir);
  else snprintf(args, sizeof args, "stop '%s' %d", z->dir, node);
  return run(args, NULL, 0);
}

mica_err *zks_restart(zks *z, int node) {
  char args[700];
  int len = snprintf(args, sizeof args, "start-node '%s'", z->dir);
  for (int i = 1; i <= z->nodes; i++) {
    if (node != 0 && i != node) continue;
    char pidf[600];
    snprintf(pidf, sizeof pidf, "%s/n%d/pid", z->dir, i);
    if (node == 0 && access(pidf, F_OK) == 0) continue; /* still running */
    len += snprintf(args + len, sizeof args - (size_t)len, " %d", i);
  }
  return run(args, NULL, 0);
}

void zks_destroy(zks *z) {
  if (z == NULL) return;
  mica_err *e = zks_stop(z, 0);
  if (e != NULL) {
    fprintf(stderr, "zks_destroy: %s\n", err_msg(e));
    err_free(e);
  }
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", z->dir);
  if (system(cmd) != 0) fprintf(stderr, "zks_destroy: %s failed\n", cmd);
  free(z);
}
