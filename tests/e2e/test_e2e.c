/* End-to-end tests of the scripts a newcomer runs: tools/mica-cluster
 * (start, status, start again, kill -9, restart, stop) and tools/quickstart
 * (with a small data size), against the real binaries in MICA_BIN_DIR.
 * Every cluster is stopped at the end, and a check confirms that no process
 * it started is left running. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/slice.h"
#include "tests/harness/testutil.h"

/* Runs `cmd` through the shell; returns its exit status and its stdout and
 * stderr in `out` (NUL-terminated). */
static int run(const char *cmd, buf *out) {
  char full[8192];
  snprintf(full, sizeof(full), "MICA_BIN_DIR='%s' %s 2>&1", getenv("MICA_BIN_DIR"), cmd);
  buf_clear(out);
  FILE *p = popen(full, "r");
  if (p == NULL) return -1;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) buf_append(out, chunk, n);
  buf_push(out, 0);
  out->len--;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool has(const buf *b, const char *needle) {
  return b->len && strstr((const char *)b->data, needle) != NULL;
}

/* Pid in DIR/run/NAME.pid, or 0. */
static pid_t pid_of(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/run/%s.pid", dir, name);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  long pid = 0;
  if (fscanf(f, "%ld", &pid) != 1) pid = 0;
  fclose(f);
  return (pid_t)pid;
}

static bool running(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

static void cluster_cmd(char *cmd, size_t n, const char *dir, const char *args) {
  snprintf(cmd, n, "%s/tools/mica-cluster --dir '%s' %s", MICA_SOURCE_DIR, dir, args);
}

static void test_launcher(void) {
  const char *dir = tu_tmpdir();
  char cmd[8192];
  buf out = BUF_INIT;
  cluster_cmd(cmd, sizeof(cmd), dir, "start --servers 2 --lease-ms 2000");
  int rc = run(cmd, &out);
  if (rc != 0) fprintf(stderr, "%s\n", (char *)out.data);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT(has(&out, "status page http://127.0.0.1:"));
  pid_t master = pid_of(dir, "master"), ts1 = pid_of(dir, "tserver-1"),
        ts2 = pid_of(dir, "tserver-2");
  CU_ASSERT(running(master) && running(ts1) && running(ts2));

  /* A second start on the same directory reports, and starts nothing. */
  CU_ASSERT_EQUAL(run(cmd, &out), 0);
  CU_ASSERT(has(&out, "already running"));
  CU_ASSERT_EQUAL(pid_of(dir, "master"), master);

  cluster_cmd(cmd, sizeof(cmd), dir, "kill tserver-1");
  CU_ASSERT_EQUAL(run(cmd, &out), 0);
  CU_ASSERT(!running(ts1));
  cluster_cmd(cmd, sizeof(cmd), dir, "status");
  CU_ASSERT_EQUAL(run(cmd, &out), 0);
  CU_ASSERT(has(&out, "stopped"));

  cluster_cmd(cmd, sizeof(cmd), dir, "restart tserver-1");
  CU_ASSERT_EQUAL(run(cmd, &out), 0);
  pid_t ts1b = pid_of(dir, "tserver-1");
  CU_ASSERT(ts1b != ts1 && running(ts1b));

  cluster_cmd(cmd, sizeof(cmd), dir, "kill nobody");
  CU_ASSERT_EQUAL(run(cmd, &out), 1);
  CU_ASSERT(has(&out, "no process 'nobody'"));
  cluster_cmd(cmd, sizeof(cmd), dir, "frobnicate");
  CU_ASSERT_EQUAL(run(cmd, &out), 2);

  cluster_cmd(cmd, sizeof(cmd), dir, "stop");
  CU_ASSERT_EQUAL(run(cmd, &out), 0);
  CU_ASSERT(!running(master) && !running(ts1b) && !running(ts2));
  buf_free(&out);
}

static void test_quickstart(void) {
  const char *dir = tu_tmpdir();
  char cmd[8192];
  buf out = BUF_INIT;
  snprintf(cmd, sizeof(cmd),
           "MICA_QUICKSTART_DIR='%s' MICA_QUICKSTART_ROWS=30000 %s/tools/quickstart",
           dir, MICA_SOURCE_DIR);
  int rc = run(cmd, &out);
  if (rc != 0) fprintf(stderr, "%s\n", (char *)out.data);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(has(&out, "loaded 30000 rows"));
  /* The range scan printed the five rows from its start key. */
  CU_ASSERT(has(&out, "user:00001000 => name=user1000"));
  CU_ASSERT(has(&out, "user:00001004 => name=user1004"));
  CU_ASSERT(!has(&out, "user:00001005 =>"));
  CU_ASSERT(has(&out, "status page      http://127.0.0.1:"));
  /* About 4 MiB against a 1 MiB threshold: the table split, so the
   * tablet listing shows several serving tablets. */
  int serving = 0;
  for (const char *p = (const char *)out.data; (p = strstr(p, " serving ")); p++) serving++;
  CU_ASSERT(serving >= 2);

  /* Run again: it reuses the cluster and the table. */
  pid_t master = pid_of(dir, "master");
  CU_ASSERT_EQUAL(run(cmd, &out), 0);
  CU_ASSERT(has(&out, "exists already"));
  CU_ASSERT_EQUAL(pid_of(dir, "master"), master);

  cluster_cmd(cmd, sizeof(cmd), dir, "stop");
  CU_ASSERT_EQUAL(run(cmd, &out), 0);
  CU_ASSERT(!running(master));
  buf_free(&out);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {{"launcher", test_launcher},
                                      {"quickstart", test_quickstart},
                                      CU_TEST_INFO_NULL};
  tu_add_suite("e2e", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
