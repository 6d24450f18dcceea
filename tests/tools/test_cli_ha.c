/* test_cli_ha: a highly available local cluster as a user runs it, the
 * README's two commands and then some: `tools/mica-cluster start --masters
 * 3` (a real ZooKeeper from Debian's package, three mica-master
 * candidates, two tablet servers) and `mica` given MICA_MASTER=zk://...
 *
 * Checked: the start names one active master and two standbys and lists
 * a status page for each; `mica status` names the active master (address,
 * epoch 1, HTTP address), both standbys and a connected ZooKeeper session
 * with the 3 s timeout mica-cluster asks for; `mica status --http` at a
 * standby's page shows the same (it follows to the active master);
 * `mica-cluster active` names the active one; after `mica-cluster kill
 * active` (kill -9) the CLI keeps working without being told anything: a
 * key written before is read, a new one is written, and `mica status`
 * names the new active master (another address, epoch 2, one standby);
 * `mica-cluster status` shows the dead master as stopped; `stop` leaves no
 * process. Bad input: a session outside what the local ZooKeeper grants,
 * and `active` on a cluster without --masters, exit 1 saying why. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/slice.h"
#include "tests/harness/proc.h"
#include "tests/harness/testutil.h"

static char g_dir[600];

/* Runs `cmd` through the shell with MICA_MASTER set to the cluster's
 * address when `zk` (MICA_BIN_DIR inherited); its status, its stdout and
 * stderr together in `out`. */
static int run(const char *cmd, bool zk, buf *out) {
  char full[8192];
  if (zk)
    snprintf(full, sizeof full,
             "export MICA_MASTER=\"$(%s/tools/mica-cluster --dir '%s' addr)\" "
             "&& %s 2>&1", MICA_SOURCE_DIR, g_dir, cmd);
  else
    snprintf(full, sizeof full, "%s 2>&1", cmd);
  th_result r;
  TU_OK(th_run_shell(full, NULL, 300000, &r));
  buf_clear(out);
  buf_append(out, r.out.data, r.out.len);
  buf_push(out, 0);
  out->len--;
  int rc = r.rc;
  th_result_free(&r);
  return rc;
}

static int cluster(const char *args, buf *out) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s/tools/mica-cluster --dir '%s' %s",
           MICA_SOURCE_DIR, g_dir, args);
  return run(cmd, false, out);
}

static int mica(const char *args, buf *out) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s/mica' --deadline 30000 %s",
           getenv("MICA_BIN_DIR"), args);
  return run(cmd, true, out);
}

static bool has(const buf *b, const char *needle) {
  return b->len && strstr((const char *)b->data, needle) != NULL;
}

static int count(const buf *b, const char *needle) {
  int n = 0;
  for (const char *p = (const char *)b->data; b->len && (p = strstr(p, needle));
       p++)
    n++;
  return n;
}

/* The word after `key` on the line that has it ("" when none). */
static void word_after(const buf *b, const char *key, char *out, size_t n) {
  out[0] = '\0';
  const char *p = b->len ? strstr((const char *)b->data, key) : NULL;
  if (p) snprintf(out, n, "%.*s", (int)strcspn(p + strlen(key), " \n;,()"),
                  p + strlen(key));
}

static pid_t pid_of(const char *name) {
  char path[1200];
  snprintf(path, sizeof path, "%s/run/%s.pid", g_dir, name);
  FILE *f = fopen(path, "r");
  long pid = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
  }
  return (pid_t)pid;
}

static bool running(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

static void expect(int rc, int want, const buf *out) {
  if (rc != want) fprintf(stderr, "exit %d, want %d:\n%s\n", rc, want,
                          (const char *)out->data);
  CU_ASSERT_EQUAL(rc, want);
}

static void test_ha_cluster(void) {
  snprintf(g_dir, sizeof g_dir, "%s/ha", tu_tmpdir());
  buf out = BUF_INIT;
  /* Bad input first: nothing starts. */
  expect(cluster("start --masters 3 --zk-session 500", &out), 1, &out);
  CU_ASSERT(has(&out, "--zk-session wants milliseconds in 1000..10000"));

  int rc = cluster("start --masters 3 --servers 2", &out);
  expect(rc, 0, &out);
  CU_ASSERT_FATAL(rc == 0);
  CU_ASSERT_EQUAL(count(&out, "(active)"), 1);
  CU_ASSERT_EQUAL(count(&out, "(standby)"), 2);
  CU_ASSERT_EQUAL(count(&out, "status page http://127.0.0.1:"), 3);
  CU_ASSERT(has(&out, "MICA_MASTER=zk://127.0.0.1:"));

  expect(cluster("active", &out), 0, &out);
  char active[32], active_addr[64];
  word_after(&out, "", active, sizeof active);
  word_after(&out, " ", active_addr, sizeof active_addr);
  CU_ASSERT_FATAL(strncmp(active, "master-", 7) == 0);
  pid_t apid = pid_of(active);
  CU_ASSERT(running(apid));

  expect(mica("create t --splits m", &out), 0, &out);
  expect(mica("put t apple red", &out), 0, &out);

  /* `mica status` names the active master, its epoch and the standbys. */
  expect(mica("status", &out), 0, &out);
  char line[300];
  snprintf(line, sizeof line, "masters: active %s (epoch 1, http 127.0.0.1:",
           active_addr);
  CU_ASSERT(has(&out, line));
  CU_ASSERT(has(&out, "; 2 standbys 127.0.0.1:"));
  CU_ASSERT(has(&out, "; ZooKeeper session connected (timeout 3.0 s)\n"));
  CU_ASSERT_EQUAL(strlen((const char *)out.data), out.len); /* no NUL */
  CU_ASSERT(has(&out, "servers: 2 live"));

  /* At a standby's status page, `mica status` follows to the active. */
  char standby[32] = "", sb_http[64] = "";
  for (int i = 1; i <= 3 && sb_http[0] == '\0'; i++) {
    char n[16], path[1200];
    snprintf(n, sizeof n, "master-%d", i);
    if (strcmp(n, active) == 0) continue;
    snprintf(standby, sizeof standby, "%s", n);
    snprintf(path, sizeof path, "%s/run/%s.http", g_dir, n);
    FILE *f = fopen(path, "r");
    if (f) {
      if (fscanf(f, "%63s", sb_http) != 1) sb_http[0] = '\0';
      fclose(f);
    }
  }
  CU_ASSERT_FATAL(sb_http[0] != '\0');
  char args[200];
  snprintf(args, sizeof args, "status --http %s", sb_http);
  expect(mica(args, &out), 0, &out);
  CU_ASSERT(has(&out, line));

  /* kill -9 of the active master: the CLI keeps working. */
  expect(cluster("kill active", &out), 0, &out);
  snprintf(line, sizeof line, "killed %s (kill -9)", active);
  CU_ASSERT(has(&out, line));
  CU_ASSERT(!running(apid));
  expect(mica("get t apple", &out), 0, &out);
  CU_ASSERT(has(&out, "red"));
  expect(mica("put t banana yellow", &out), 0, &out);
  expect(mica("get t banana", &out), 0, &out);
  CU_ASSERT(has(&out, "yellow"));
  expect(mica("status", &out), 0, &out);
  CU_ASSERT(has(&out, "(epoch 2, http 127.0.0.1:"));
  CU_ASSERT(has(&out, "; 1 standby 127.0.0.1:"));
  char now[64];
  word_after(&out, "masters: active ", now, sizeof now);
  CU_ASSERT(now[0] != '\0' && strcmp(now, active_addr) != 0);
  expect(cluster("active", &out), 0, &out);
  CU_ASSERT(!has(&out, active));
  expect(cluster("status", &out), 0, &out);
  CU_ASSERT(has(&out, "stopped"));
  CU_ASSERT(has(&out, "(active)"));
  CU_ASSERT(has(&out, "(standby)"));
  CU_ASSERT(has(&out, "zookeeper   127.0.0.1:"));

  pid_t pids[5];
  int np = 0;
  static const char *const names[] = {"master-1", "master-2", "master-3",
                                      "tserver-1", "tserver-2"};
  for (int i = 0; i < 5; i++) pids[np++] = pid_of(names[i]);
  expect(cluster("stop", &out), 0, &out);
  for (int i = 0; i < np; i++) CU_ASSERT(!running(pids[i]));
  buf_free(&out);
}

static void test_active_needs_masters(void) {
  snprintf(g_dir, sizeof g_dir, "%s/single", tu_tmpdir());
  buf out = BUF_INIT;
  expect(cluster("start --servers 1", &out), 0, &out);
  expect(cluster("active", &out), 1, &out);
  CU_ASSERT(has(&out, "active needs a cluster started with --masters"));
  /* A single master: `mica status` says so. */
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "'%s/mica' --master \"$(%s/tools/mica-cluster --dir '%s' addr)\" "
           "status", getenv("MICA_BIN_DIR"), MICA_SOURCE_DIR, g_dir);
  expect(run(cmd, false, &out), 0, &out);
  CU_ASSERT(has(&out, "masters: single 127.0.0.1:"));
  CU_ASSERT(has(&out, "(epoch 0, http 127.0.0.1:"));
  CU_ASSERT(has(&out, "; no ZooKeeper, no standbys\n"));
  expect(cluster("stop", &out), 0, &out);
  buf_free(&out);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("cli_ha", NULL, NULL);
  CU_add_test(s, "ha_cluster_kill_active", test_ha_cluster);
  CU_add_test(s, "active_needs_masters", test_active_needs_masters);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
