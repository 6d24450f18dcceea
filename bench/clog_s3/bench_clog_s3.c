/* mica-clog-s3-bench: durable puts through the server commit log on S3
 * (tabletserver/clog.h object mode: one PUT per group commit) at several
 * batch windows, against the same log on a POSIX directory, interleaved
 * in one run (docs/benchmarks.md, "Commit log on S3 (issue 16)").
 *
 * Each configuration: --threads threads make --writes durable puts
 * (tab_put with sync) of --value_size bytes spread over --tablets tablets
 * sharing one log; every put's latency is recorded. Prints throughput,
 * p50/p99/max latency, and for S3 the log's PUTs and the requests the log
 * costs per 1,000 writes (its PUTs while writing), and the objects the
 * closing flush made unneeded and deleted by then (in multi-object
 * deletes: one request per up to 1,000 objects, env_remove_many).
 *
 * S3 settings come from the environment (AWS_ENDPOINT_URL, AWS_REGION,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the root from --s3-root
 * s3://BUCKET/PREFIX; the POSIX log goes to --dir (emptied first). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/layout.h"
#include "common/s3/env_s3.h"
#include "bench/engine/clog_bench.h"
#include "tabletserver/clog.h"
#include "tabletserver/resources.h"
#include "tabletserver/tablet.h"

static int g_tablets = 4, g_threads = 16, g_rounds = 3, g_value = 100;
static long g_writes = 4000;
static const char *g_dir = "/tmp/mica-clog-s3-bench";
static const char *g_s3_root = NULL;
static int g_batches[8] = {5, 10, 20};
static int g_n_batches = 3;

static void die(const char *what, mica_err *err) {
  fprintf(stderr, "mica-clog-s3-bench: %s: %s\n", what,
          err ? err_msg(err) : "");
  exit(1);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* batch_ms < 0: the POSIX log. */
static void run_one(env *s3, int batch_ms, int round) {
  char root[1024];
  bool on_s3 = batch_ms >= 0;
  if (on_s3)
    snprintf(root, sizeof root, "%s/r%d-b%d-%d", g_s3_root, round, batch_ms,
             (int)getpid());
  else
    snprintf(root, sizeof root, "%s/r%d", g_dir, round);
  env *e = on_s3 ? s3 : env_posix();
  mica_err *err = env_remove_tree(e, root);
  if (err != NULL) die("rm", err);
  cb_setup s = {"mica-clog-s3-bench", e, g_tablets, NULL, NULL, NULL};
  clog_options lo;
  clog_options_init(&lo);
  lo.batch_us = on_s3 ? (uint64_t)batch_ms * 1000 : 0;
  cb_open(&s, root, true, &lo, "bench", 1);
  long per = g_writes / g_threads, done = per * g_threads;
  uint64_t *lat = calloc((size_t)done, sizeof(*lat));
  pthread_t th[256];
  cb_writer args[256];
  clog_stats c0, c1, c2;
  clog_get_stats(s.log, &c0);
  uint64_t t0 = env_now_micros(env_posix());
  for (int i = 0; i < g_threads; i++) {
    args[i] = (cb_writer){&s, i, per, g_value, lat + (size_t)i * (size_t)per};
    pthread_create(&th[i], NULL, cb_write, &args[i]);
  }
  for (int i = 0; i < g_threads; i++) pthread_join(th[i], NULL);
  uint64_t us = env_now_micros(env_posix()) - t0;
  clog_get_stats(s.log, &c1);
  /* Close: flushes every tablet, after which the log's objects go. */
  for (int i = 0; i < g_tablets; i++) {
    err = tab_flush(s.t[i]);
    if (err != NULL) die("flush", err);
  }
  clog_get_stats(s.log, &c2);
  qsort(lat, (size_t)done, sizeof(*lat), cmp_u64);
  char mode[32];
  if (on_s3) snprintf(mode, sizeof mode, "s3 %2d ms", batch_ms);
  else snprintf(mode, sizeof mode, "posix");
  printf("round %d %-9s %7.0f writes/s  p50 %6.2f ms  p99 %6.2f ms  "
         "max %7.2f ms",
         round, mode, done / (us / 1e6), lat[done / 2] / 1000.0,
         lat[(size_t)(done * 0.99)] / 1000.0, lat[done - 1] / 1000.0);
  if (on_s3) {
    uint64_t puts = c1.puts - c0.puts;
    uint64_t dels = c2.segments_deleted - c0.segments_deleted;
    printf("  %" PRIu64 " PUTs (%.1f writes each), per 1000 writes: "
           "%.1f PUT, %.1f objects deleted",
           puts, (double)done / (double)(puts ? puts : 1),
           1000.0 * (double)puts / (double)done,
           1000.0 * (double)dels / (double)done);
  }
  printf("\n");
  fflush(stdout);
  cb_close(&s);
  free(lat);
  if ((err = env_remove_tree(e, root)) != NULL) die("rm", err);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0) {
      printf("usage: mica-clog-s3-bench --s3-root=s3://BUCKET/PREFIX "
             "[--batch-ms=5,10,20] [--tablets=N] [--threads=N] "
             "[--writes=N] [--value_size=N] [--rounds=N] [--dir=DIR]\n"
             "  durable puts through the commit log on S3 at each batch "
             "window and on a POSIX directory, interleaved; S3 settings "
             "from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, "
             "AWS_SECRET_ACCESS_KEY\n"
             "example: bench/clog_s3/run.sh\n");
      return 0;
    } else if (strncmp(a, "--tablets=", 10) == 0) g_tablets = atoi(a + 10);
    else if (strncmp(a, "--threads=", 10) == 0) g_threads = atoi(a + 10);
    else if (strncmp(a, "--writes=", 9) == 0) g_writes = atol(a + 9);
    else if (strncmp(a, "--value_size=", 13) == 0) g_value = atoi(a + 13);
    else if (strncmp(a, "--rounds=", 9) == 0) g_rounds = atoi(a + 9);
    else if (strncmp(a, "--dir=", 6) == 0) g_dir = a + 6;
    else if (strncmp(a, "--s3-root=", 10) == 0) g_s3_root = a + 10;
    else if (strncmp(a, "--batch-ms=", 11) == 0) {
      g_n_batches = 0;
      for (const char *p = a + 11; *p && g_n_batches < 8;) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1000) {
          fprintf(stderr, "mica-clog-s3-bench: --batch-ms: '%s' is not a "
                  "comma-separated list of 0..1000\n", a + 11);
          return 2;
        }
        g_batches[g_n_batches++] = (int)v;
        p = *end == ',' ? end + 1 : end;
      }
    } else {
      fprintf(stderr, "mica-clog-s3-bench: unknown option %s (see --help)\n",
              a);
      return 2;
    }
  }
  if (g_s3_root == NULL || !env_s3_is_path(g_s3_root) || g_tablets < 1 ||
      g_tablets > 999 || g_threads < 1 || g_threads > 256 ||
      g_writes < g_threads || g_value < 1 || g_rounds < 1) {
    fprintf(stderr, "mica-clog-s3-bench: --s3-root=s3://BUCKET/PREFIX is "
            "required; --tablets 1..999, --threads 1..256, --writes >= "
            "threads, --value_size and --rounds positive\n");
    return 2;
  }
  s3_config c;
  mica_err *err = s3_config_from_environ(&c);
  env *s3 = NULL;
  if (err == NULL) err = env_s3_new(&c, &s3);
  s3_config_free(&c);
  if (err != NULL) die("S3 env", err);
  printf("mica-clog-s3-bench: %d tablets, %d threads, %ld durable puts of "
         "%d bytes per configuration, %d rounds\n",
         g_tablets, g_threads, g_writes, g_value, g_rounds);
  for (int r = 1; r <= g_rounds; r++) {
    /* Interleaved, in a rotating order. */
    int n = g_n_batches + 1;
    for (int k = 0; k < n; k++) {
      int j = (k + r - 1) % n;
      run_one(s3, j == 0 ? -1 : g_batches[j - 1], r);
    }
  }
  env_s3_free(s3);
  return 0;
}
