/* mica-clog-bench: one commit log per server against one WAL per tablet,
 * in the same run (docs/benchmarks.md, "One commit log per server").
 *
 * For each round and each mode (shared: every tablet appends to one
 * tabletserver/clog.h log; tablet: each tablet its own WAL segments), in
 * alternating order:
 *   write    --threads threads make --writes durable puts (fdatasync'd,
 *            group commit) spread over --tablets tablets; prints ops/s and
 *            how many fdatasyncs the WAL layer made;
 *   recover  the same tablets after a simulated power loss (nothing
 *            flushed: every write is only in the log), reopened one after
 *            the other under a new epoch, each replaying its writes;
 *            prints the time to reopen all of them.
 * Runs on --db (default /tmp/mica-clog-bench), emptied first. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/layout.h"
#include "bench/engine/clog_bench.h"
#include "tabletserver/clog.h"
#include "tabletserver/resources.h"
#include "tabletserver/tablet.h"
#include "tabletserver/wal.h"

static int g_tablets = 6, g_threads = 16, g_rounds = 3, g_value = 100;
static long g_writes = 16000;
static const char *g_dir = "/tmp/mica-clog-bench";

static void die(const char *what, mica_err *err) {
  fprintf(stderr, "mica-clog-bench: %s: %s\n", what, err ? err_msg(err) : "");
  exit(1);
}

static void run_mode(bool shared, int round) {
  char root[1024];
  snprintf(root, sizeof(root), "%s/%s-%d", g_dir, shared ? "shared" : "tablet",
           round);
  mica_err *err = env_remove_tree(env_posix(), root);
  if (err != NULL) die("rm", err);
  env_fault *f = env_fault_new(env_posix());
  cb_setup s = {"mica-clog-bench", env_fault_env(f), g_tablets, NULL, NULL, NULL};
  cb_open(&s, root, shared, NULL, "old", 1);
  wal_sums w0, w1;
  wal_get_sums(&w0);
  pthread_t th[256];
  cb_writer args[256];
  uint64_t t0 = env_now_micros(env_posix());
  for (int i = 0; i < g_threads; i++) {
    args[i] = (cb_writer){&s, i, g_writes / g_threads, g_value, NULL};
    pthread_create(&th[i], NULL, cb_write, &args[i]);
  }
  for (int i = 0; i < g_threads; i++) pthread_join(th[i], NULL);
  uint64_t us = env_now_micros(env_posix()) - t0;
  wal_get_sums(&w1);
  long done = g_writes / g_threads * g_threads;
  printf("round %d %-6s write   %8.0f ops/s  %6" PRIu64
         " fdatasyncs (%.1f writes each)\n",
         round, shared ? "shared" : "tablet", done / (us / 1e6),
         w1.syncs - w0.syncs, (double)done / (double)(w1.syncs - w0.syncs));
  /* Power loss: every write is only in the log. */
  env_fault_crash(f);
  cb_close(&s);
  env_fault_free(f);

  cb_setup r = {"mica-clog-bench", env_posix(), g_tablets, NULL, NULL, NULL};
  uint64_t r0 = env_now_micros(env_posix());
  cb_open(&r, root, shared, NULL, "new", 2);
  uint64_t rus = env_now_micros(env_posix()) - r0;
  uint64_t replayed = 0;
  for (int i = 0; i < g_tablets; i++) {
    tab_stats st;
    tab_get_stats(r.t[i], &st);
    replayed += st.wal_replayed_records;
  }
  printf("round %d %-6s recover %8.1f ms for %d tablets (%" PRIu64
         " records replayed)\n",
         round, shared ? "shared" : "tablet", rus / 1000.0, g_tablets,
         replayed);
  fflush(stdout);
  cb_close(&r);
  if ((err = env_remove_tree(env_posix(), root)) != NULL) die("rm", err);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0) {
      printf("usage: mica-clog-bench [--tablets=N] [--threads=N] "
             "[--writes=N] [--value_size=N] [--rounds=N] [--db=DIR]\n"
             "  durable puts from --threads threads over --tablets tablets "
             "(defaults 6, 16, 16000, 100 bytes, 3 rounds), with one shared "
             "commit log and with one WAL per tablet, then the time to "
             "reopen every tablet after a simulated power loss\n"
             "example: mica-clog-bench --tablets=6 --threads=16 "
             "--writes=16000\n");
      return 0;
    } else if (strncmp(a, "--tablets=", 10) == 0) g_tablets = atoi(a + 10);
    else if (strncmp(a, "--threads=", 10) == 0) g_threads = atoi(a + 10);
    else if (strncmp(a, "--writes=", 9) == 0) g_writes = atol(a + 9);
    else if (strncmp(a, "--value_size=", 13) == 0) g_value = atoi(a + 13);
    else if (strncmp(a, "--rounds=", 9) == 0) g_rounds = atoi(a + 9);
    else if (strncmp(a, "--db=", 5) == 0) g_dir = a + 5;
    else {
      fprintf(stderr, "mica-clog-bench: unknown option %s (see --help)\n", a);
      return 2;
    }
  }
  if (g_tablets < 1 || g_tablets > 999 || g_threads < 1 || g_threads > 256 ||
      g_writes < g_threads || g_value < 1 || g_rounds < 1) {
    fprintf(stderr, "mica-clog-bench: --tablets 1..999, --threads 1..256, "
            "--writes >= threads, --value_size and --rounds positive\n");
    return 2;
  }
  for (int r = 1; r <= g_rounds; r++) {
    run_mode(r % 2 == 1, r);
    run_mode(r % 2 == 0, r);
  }
  return 0;
}
