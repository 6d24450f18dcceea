/* test_cluster_disk: a tablet server whose data root fills up (issue 12,
 * "A full disk makes a table unreadable"; docs/tserver.md, "A full disk").
 *
 * One master and one tablet server with their data root on a 48 MiB tmpfs
 * that this test mounts, a 4 MiB split threshold and small memtables. A
 * client loads 500-byte rows until the server refuses them for good (it
 * retries a refused batch while background work frees space). Then:
 *
 *  - the refusal is RESOURCE_EXHAUSTED, names the data root and the free
 *    space, and comes at once, every time (not after a stall);
 *  - every acknowledged row reads back (a full scan and single gets), and
 *    every tablet has a server: no split left the table unreadable;
 *  - no split starts while the disk is below the reserve: the tablet list
 *    does not change over several split checks;
 *  - the server, killed and restarted on the full disk, serves every
 *    acknowledged row again (opening a tablet writes nothing first);
 *  - `mica load` prints the server's message;
 *  - after the tmpfs is enlarged (remount), writes resume without a
 *    restart or an operator, and every acknowledged row is present.
 *
 * Mounting needs root. The test first moves itself into a private mount
 * namespace (the servers it starts inherit it), so the tmpfs is visible to
 * this process tree only and disappears with it even if the test is killed;
 * it is also unmounted explicitly, at the end and at exit. Without root
 * the test says so and passes; test_tablet_disk covers the engine's side
 * with the fault env's disk-full mode. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mica/mica.h"
#include "mica/status.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#define TABLE "full"
#define VALUE_LEN 500
#define BATCH 100
#define MAX_ROWS 400000

static char g_mnt[4096]; /* the tmpfs mount point, "" when not mounted */

static void unmount_tmpfs(void) {
  if (g_mnt[0] == '\0') return;
  if (umount2(g_mnt, 0) != 0 && umount2(g_mnt, MNT_DETACH) != 0)
    fprintf(stderr, "test_cluster_disk: umount %s: %s\n", g_mnt,
            strerror(errno));
  g_mnt[0] = '\0';
}

/* Row i: a key spread over the key space (so every tablet takes writes)
 * and a value derived from i. */
static void row(uint64_t i, char *key, size_t kn, char *val) {
  uint32_t h = (uint32_t)(i * 2654435761u);
  snprintf(key, kn, "r%08" PRIx32 "-%07" PRIu64, h, i);
  for (int j = 0; j < VALUE_LEN; j++) val[j] = (char)('a' + (i + (uint64_t)j) % 26);
  snprintf(val, 24, "v%07" PRIu64 "|", i);
  val[strlen(val)] = '.';
}

static uint64_t parse_row(const void *key, size_t len) {
  char tmp[64];
  if (len == 0 || len >= sizeof tmp) return UINT64_MAX;
  memcpy(tmp, key, len);
  tmp[len] = '\0';
  const char *dash = strchr(tmp, '-');
  return dash ? strtoull(dash + 1, NULL, 10) : UINT64_MAX;
}

/* Scans the table: every row below `acked` (and each of `extra_from` ..
 * `extra_to`) must be present with its value; rows of the batch whose
 * outcome is unknown may be there, with their value. */
static void check_rows(mica_client *cl, uint64_t acked, uint64_t extra_from,
                       uint64_t extra_to, uint64_t limit) {
  uint8_t *seen = calloc(limit, 1);
  mica_scanner *sc = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_scan_open(cl, TABLE, NULL, &sc), MICA_OK);
  uint64_t rows = 0;
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    int rc = mica_scan_next(sc, &has, &k, &kl, &v, &vl);
    if (rc != MICA_OK) {
      fprintf(stderr, "scan: %s\n", mica_errmsg());
      CU_FAIL("scan failed");
      break;
    }
    if (!has) break;
    uint64_t i = parse_row(k, kl);
    CU_ASSERT(i < limit);
    if (i >= limit) continue;
    char key[64], val[VALUE_LEN];
    row(i, key, sizeof key, val);
    CU_ASSERT(kl == strlen(key) && memcmp(k, key, kl) == 0);
    CU_ASSERT(vl == VALUE_LEN && memcmp(v, val, VALUE_LEN) == 0);
    seen[i] = 1;
    rows++;
  }
  mica_scan_close(sc);
  uint64_t missing = 0;
  for (uint64_t i = 0; i < limit; i++)
    if ((i < acked || (i >= extra_from && i < extra_to)) && !seen[i]) missing++;
  if (missing > 0)
    fprintf(stderr, "%" PRIu64 " acknowledged rows missing of %" PRIu64 "\n",
            missing, acked + (extra_to - extra_from));
  CU_ASSERT_EQUAL(missing, 0);
  free(seen);
}

/* Writes rows [from, to) in batches. A batch refused for space is tried
 * again every 200 ms (flushes and deletions free space after writes stop,
 * and splits run while the disk is above the reserve) until the refusals
 * have lasted `full_ms`: the disk is then full for good. `full_ms` 0: stop
 * at the first failure. Returns the first row not acknowledged (== to when
 * all were) and the code of the last failure (MICA_OK if none), its
 * message in `msg`. */
static uint64_t load(mica_client *cl, uint64_t from, uint64_t to,
                     uint64_t full_ms, int *code, char *msg, size_t mn) {
  mica_batch *b = mica_batch_new();
  char key[64], val[VALUE_LEN];
  *code = MICA_OK;
  uint64_t i = from, refused_since = 0;
  while (i < to) {
    mica_batch_clear(b);
    uint64_t end = i + BATCH < to ? i + BATCH : to;
    for (uint64_t j = i; j < end; j++) {
      row(j, key, sizeof key, val);
      mica_batch_put(b, key, strlen(key), val, VALUE_LEN);
    }
    *code = mica_batch_write(cl, TABLE, b, 0, NULL);
    if (*code == MICA_OK) {
      refused_since = 0;
      i = end;
      continue;
    }
    snprintf(msg, mn, "%s", mica_errmsg());
    if (*code != MICA_RESOURCE_EXHAUSTED || full_ms == 0) break;
    uint64_t now = cl_now_ms();
    if (refused_since == 0) refused_since = now;
    if (now - refused_since >= full_ms) break;
    cl_sleep_ms(200);
  }
  mica_batch_free(b);
  return i;
}

static size_t serving_tablets(mica_client *cl, bool *all_placed) {
  mica_tablet_info *ts = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL_FATAL(mica_list_tablets(cl, TABLE, &ts, &n), MICA_OK);
  *all_placed = true;
  for (size_t i = 0; i < n; i++)
    if (ts[i].server_id == 0 || strcmp(ts[i].state, "serving") != 0) {
      fprintf(stderr, "tablet %" PRIu64 " is %s on server %" PRIu64 "\n",
              ts[i].tablet_id, ts[i].state, ts[i].server_id);
      *all_placed = false;
    }
  mica_free(ts);
  return n;
}

/* Runs `mica --master M load full FILE`; returns the exit status and its
 * stderr in `err`. */
static int run_cli_load(const char *master, const char *file, buf *err) {
  const char *bin = getenv("MICA_BIN_DIR");
  char mica[4096], errpath[4096];
  snprintf(mica, sizeof mica, "%s/mica", bin ? bin : ".");
  int fe = tu_mkstemp("cli-err", errpath, sizeof errpath);
  CU_ASSERT_FATAL(fe >= 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fe, 2);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    execl(mica, mica, "--master", master, "load", TABLE, file, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  lseek(fe, 0, SEEK_SET);
  char tmp[4096];
  ssize_t n;
  while ((n = read(fe, tmp, sizeof tmp)) > 0) buf_append(err, tmp, (size_t)n);
  buf_push(err, 0);
  close(fe);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_full_disk(void) {
  if (geteuid() != 0) {
    fprintf(stderr, "(not root: no tmpfs to fill; test_tablet_disk covers the "
                    "engine with the fault env) ");
    return;
  }
  const char *outer_tmp = tu_tmpdir(); /* on the real disk */
  /* A private mount namespace: the tmpfs never shows outside this tree. */
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    fprintf(stderr, "(no private mount namespace: %s; mounting in the "
                    "current one) ", strerror(errno));
  snprintf(g_mnt, sizeof g_mnt, "%s/tmpfs", outer_tmp);
  CU_ASSERT_EQUAL_FATAL(mkdir(g_mnt, 0700), 0);
  if (mount("tmpfs", g_mnt, "tmpfs", 0, "size=48m") != 0) {
    fprintf(stderr, "mount tmpfs on %s: %s\n", g_mnt, strerror(errno));
    g_mnt[0] = '\0';
    CU_FAIL_FATAL("cannot mount a tmpfs as root");
  }
  atexit(unmount_tmpfs);

  /* The cluster's data root goes on the tmpfs. */
  char *old_tmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
  setenv("TMPDIR", g_mnt, 1);
  static const char *const targs[] = {
      "--reserve-space", "6M", "--memtable-size", "1M", "--memory-budget",
      "8M",
      /* The rows compress several-fold; uncompressed, MAX_ROWS of them
       * surely fill the disk. */
      "--compression", "none", NULL};
  cl_options o;
  cl_options_init(&o);
  o.s3 = false; /* reads the data root's files as POSIX files */
  o.tservers = 1;
  o.split_threshold = 4u << 20;
  o.tserver_args = targs;
  cluster *c = NULL;
  mica_err *e = cl_start(&o, &c);
  if (old_tmp) setenv("TMPDIR", old_tmp, 1);
  else unsetenv("TMPDIR");
  free(old_tmp);
  TU_OK(e);
  const char *root = cl_data_root(c);

  mica_options mo;
  mica_options_init(&mo);
  mo.deadline_ms = 30000;
  mica_client *cl = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(c), &mo, &cl), MICA_OK);
  CU_ASSERT_EQUAL_FATAL(mica_create_table(cl, TABLE, NULL, 0), MICA_OK);

  /* A third of the disk, then wait for the server's split check (once a
   * second) to split the table, so that the rest of the load fills a disk
   * under a split table whatever the machine's speed. */
  int code;
  char msg[2048];
  uint64_t first = load(cl, 0, 30000, 5000, &code, msg, sizeof msg);
  CU_ASSERT_EQUAL_FATAL(first, 30000);
  bool placed;
  uint64_t deadline = cl_now_ms() + 30000;
  while (serving_tablets(cl, &placed) < 2 && cl_now_ms() < deadline)
    cl_sleep_ms(200);

  /* Then load until the server refuses for good. */
  uint64_t acked = load(cl, first, MAX_ROWS, 5000, &code, msg, sizeof msg);
  fprintf(stderr, "\n  refused after %" PRIu64 " rows (%" PRIu64
                  " MiB): %s\n", acked, acked * VALUE_LEN >> 20, msg);
  CU_ASSERT_EQUAL_FATAL(code, MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, root));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "free"));
  /* 16 MiB at least went in before the reserve (of 42 MiB above it).
   * Usually 20 MiB; less when the table split again near the end: until
   * both daughters compacted down to their own files, the parent's files
   * and the daughters' copies take the space twice (38,100 rows, 18 MiB,
   * in one sanitizer run with 4 tablets). */
  CU_ASSERT(acked > 34000);
  uint64_t unknown_to = acked + BATCH; /* the refused batch: either way */

  /* Refused at once, again and again (the engine's stall would take 10 s;
   * the client does not retry RESOURCE_EXHAUSTED). */
  for (int k = 0; k < 5; k++) {
    char key[64], val[VALUE_LEN];
    row(MAX_ROWS + (uint64_t)k, key, sizeof key, val);
    uint64_t t0 = cl_now_ms();
    int rc = mica_put(cl, TABLE, key, strlen(key), val, VALUE_LEN);
    uint64_t took = cl_now_ms() - t0;
    CU_ASSERT_EQUAL(rc, MICA_RESOURCE_EXHAUSTED);
    CU_ASSERT(took < 5000);
    CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), root));
  }

  /* Reads keep being served; every tablet has its server. */
  size_t tablets = serving_tablets(cl, &placed);
  fprintf(stderr, "  %zu tablets\n", tablets);
  CU_ASSERT(placed);
  CU_ASSERT(tablets > 1); /* the load split the table */
  check_rows(cl, acked, 0, 0, unknown_to);
  for (uint64_t i = 0; i < acked; i += acked / 97 + 1) {
    char key[64], val[VALUE_LEN];
    row(i, key, sizeof key, val);
    void *v = NULL;
    size_t vl = 0;
    CU_ASSERT_EQUAL(mica_get(cl, TABLE, key, strlen(key), &v, &vl), MICA_OK);
    CU_ASSERT(vl == VALUE_LEN && v && memcmp(v, val, VALUE_LEN) == 0);
    mica_free(v);
  }

  /* No split starts below the reserve: the server checks for splits every
   * second; over four checks the tablets stay as they are. */
  cl_sleep_ms(4000);
  size_t later = serving_tablets(cl, &placed);
  CU_ASSERT(placed);
  CU_ASSERT_EQUAL(later, tablets);

  /* A server killed on a full disk comes back serving reads: opening a
   * tablet writes nothing before it serves (its WAL is replayed into
   * memory and made durable once there is room). */
  TU_OK(cl_kill_tserver(c, 0));
  TU_OK(cl_restart_tserver(c, 0));
  check_rows(cl, acked, 0, 0, unknown_to);
  later = serving_tablets(cl, &placed);
  CU_ASSERT(placed);
  CU_ASSERT_EQUAL(later, tablets);
  {
    char key[64], val[VALUE_LEN];
    row(MAX_ROWS + 7, key, sizeof key, val);
    CU_ASSERT_EQUAL(mica_put(cl, TABLE, key, strlen(key), val, VALUE_LEN),
                    MICA_RESOURCE_EXHAUSTED);
  }

  /* The CLI prints the server's message. */
  char file[4096];
  int fd = tu_mkstemp("rows", file, sizeof file);
  CU_ASSERT_FATAL(fd >= 0);
  FILE *f = fdopen(fd, "w");
  for (uint64_t i = MAX_ROWS + 10; i < MAX_ROWS + 60; i++) {
    char key[64], val[VALUE_LEN + 1];
    row(i, key, sizeof key, val);
    val[VALUE_LEN] = '\0';
    fprintf(f, "%s\t%s\n", key, val);
  }
  fclose(f);
  buf err = BUF_INIT;
  int rc = run_cli_load(cl_master_address(c), file, &err);
  CU_ASSERT_NOT_EQUAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)err.data, "RESOURCE_EXHAUSTED"));
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)err.data, root));
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)err.data, "free"));
  if (rc == 0 || strstr((char *)err.data, root) == NULL)
    fprintf(stderr, "mica load: exit %d: %s\n", rc, (char *)err.data);
  buf_free(&err);

  /* Space returns: writes resume by themselves. */
  CU_ASSERT_EQUAL_FATAL(
      mount(NULL, g_mnt, NULL, MS_REMOUNT, "size=160m"), 0);
  uint64_t from = unknown_to;
  uint64_t upto = load(cl, from, from + 20000, 0, &code, msg, sizeof msg);
  if (code != MICA_OK) fprintf(stderr, "after remount: %s\n", msg);
  CU_ASSERT_EQUAL(code, MICA_OK);
  CU_ASSERT_EQUAL(upto, from + 20000);
  check_rows(cl, acked, from, upto, from + 20000);

  mica_close(cl);
  if (getenv("MICA_KEEP_TMP") != NULL) { /* the logs die with the tmpfs */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -r %s/logs %s/", root, outer_tmp);
    if (system(cmd) == 0) fprintf(stderr, "logs kept in %s/logs\n", outer_tmp);
  }
  cl_free(c);
  unmount_tmpfs();
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {{"full_disk", test_full_disk},
                                      CU_TEST_INFO_NULL};
  tu_add_suite("cluster_disk", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
