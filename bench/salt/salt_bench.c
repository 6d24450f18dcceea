/* mica-salt-bench: sequential inserts into a salted and an unsalted table
 * (docs/benchmarks.md, "Salted tables: sequential inserts").
 *
 * Keys that always grow (timestamps, counters) all land in the last tablet
 * of a table, so one server takes every write. A salted table
 * (docs/table-options.md) spreads them over its buckets. This program
 * starts a loopback cluster (one master, --tservers tablet servers,
 * binaries from $MICA_BIN_DIR, through the test cluster helper) and, in
 * --rounds interleaved rounds, fills a fresh unsalted table and a fresh
 * table with --salt buckets for --seconds each with --threads threads
 * writing keys "seq:<16-digit counter>" (one shared counter, so the key
 * order is the time order) and --value-size byte values. For each run it
 * reports the rate, each server's share of the rows written (the keys its
 * tablets of that table hold, from the master's tablet list), and the
 * tablet servers' CPU time per write (/proc/PID/stat, all servers), then
 * what the scan fan-out costs: one full keys-only scan (rows/s) and the
 * median time of 200 scans of 10 rows from random keys. The summary gives
 * medians over rounds and the salted/unsalted ratios.
 *
 * Usage: mica-salt-bench [--rounds N] [--seconds S] [--threads N]
 *                        [--salt N] [--tservers N] [--value-size N] */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "mica/mica.h"
#include "tests/harness/cluster.h"

typedef struct cfg {
  int rounds, seconds, threads, salt, tservers, value_size;
} cfg;

typedef struct run_ctx {
  mica_client *c;
  const char *table;
  const cfg *cf;
  atomic_uint_fast64_t *counter;
  uint64_t deadline_us;
  uint64_t done;
  int failed;
} run_ctx;

static uint64_t now_us(void) { return env_now_micros(env_posix()); }

static void *writer(void *arg) {
  run_ctx *r = arg;
  char key[32];
  char *val = malloc((size_t)r->cf->value_size + 1);
  memset(val, 'v', (size_t)r->cf->value_size);
  while (now_us() < r->deadline_us) {
    uint64_t n = atomic_fetch_add(r->counter, 1);
    int kl = snprintf(key, sizeof key, "seq:%016" PRIu64, n);
    int rc = mica_put(r->c, r->table, key, (size_t)kl, val, (size_t)r->cf->value_size);
    if (rc != MICA_OK) {
      fprintf(stderr, "put %s: %s\n", key, mica_errmsg());
      r->failed = 1;
      break;
    }
    r->done++;
  }
  free(val);
  return NULL;
}

/* User+system CPU seconds of process `pid` (0 when unreadable). */
static double cpu_seconds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  char line[2048];
  double out = 0;
  if (fgets(line, sizeof line, f) != NULL) {
    const char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* Fields after the command: state ppid pgrp session tty tpgid flags
     * minflt cminflt majflt cmajflt utime stime. */
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                    &ut, &st) == 2)
      out = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  }
  fclose(f);
  return out;
}

typedef struct result {
  double scan_rows_s; /* a full keys-only scan, rows per second */
  double short_ms;    /* median time of a 10-row scan from a random key */
  double rate;        /* writes per second */
  double max_share;   /* the busiest server's share of rows */
  double share[16];   /* per server slot */
  double cpu_us_op;   /* tablet-server CPU per write */
} result;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* What the fan-out costs readers: one full keys-only scan, and 200 scans
 * of 10 rows from random keys among the `rows` written. */
static void measure_scans(mica_client *c, const char *table, uint64_t rows,
                          result *res) {
  mica_scan_options o;
  memset(&o, 0, sizeof o);
  o.keys_only = 1;
  mica_scanner *sc = NULL;
  uint64_t t0 = now_us(), n = 0;
  if (mica_scan_open(c, table, &o, &sc) == MICA_OK) {
    for (;;) {
      int has = 0;
      const void *k, *v;
      size_t kl, vl;
      if (mica_scan_next(sc, &has, &k, &kl, &v, &vl) != MICA_OK || !has) break;
      n++;
    }
  }
  mica_scan_close(sc);
  res->scan_rows_s = (double)n / ((double)(now_us() - t0) / 1e6);
  enum { SHORT = 200 };
  uint64_t lat[SHORT];
  char start[32];
  for (int i = 0; i < SHORT; i++) {
    int sl = snprintf(start, sizeof start, "seq:%016" PRIu64,
                      rows ? (uint64_t)rand() % rows : 0);
    memset(&o, 0, sizeof o);
    o.start = start;
    o.start_len = (size_t)sl;
    o.limit = 10;
    uint64_t t1 = now_us();
    sc = NULL;
    if (mica_scan_open(c, table, &o, &sc) == MICA_OK) {
      for (;;) {
        int has = 0;
        const void *k, *v;
        size_t kl, vl;
        if (mica_scan_next(sc, &has, &k, &kl, &v, &vl) != MICA_OK || !has) break;
      }
    }
    mica_scan_close(sc);
    lat[i] = now_us() - t1;
  }
  qsort(lat, SHORT, sizeof lat[0], cmp_u64);
  res->short_ms = (double)lat[SHORT / 2] / 1000.0;
}

static double total_cpu(cluster *cl, int n) {
  double t = 0;
  for (int i = 0; i < n; i++) t += cpu_seconds(cl_tserver_pid(cl, i));
  return t;
}

static int run_one(cluster *cl, mica_client *c, const cfg *cf, const char *table,
                   int salt, result *res) {
  mica_table_options o;
  mica_table_options_init(&o);
  o.salt_buckets = (uint32_t)salt;
  if (mica_create_table_opts(c, table, NULL, 0, &o) != MICA_OK) {
    fprintf(stderr, "create %s: %s\n", table, mica_errmsg());
    return 1;
  }
  /* Wait until every tablet serves (a put retries anyway; this keeps the
   * assignment out of the timed part). */
  for (int i = 0; i < 100; i++) {
    mica_tablet_info *t = NULL;
    size_t n = 0, serving = 0;
    if (mica_list_tablets(c, table, &t, &n) == MICA_OK)
      for (size_t k = 0; k < n; k++) serving += strcmp(t[k].state, "serving") == 0;
    mica_free(t);
    if (n > 0 && serving == n) break;
    usleep(50 * 1000);
  }
  atomic_uint_fast64_t counter;
  atomic_init(&counter, 0);
  run_ctx *rc = calloc((size_t)cf->threads, sizeof *rc);
  pthread_t *th = calloc((size_t)cf->threads, sizeof *th);
  double cpu0 = total_cpu(cl, cf->tservers);
  uint64_t t0 = now_us();
  for (int i = 0; i < cf->threads; i++) {
    rc[i] = (run_ctx){c, table, cf, &counter, t0 + (uint64_t)cf->seconds * 1000000, 0, 0};
    pthread_create(&th[i], NULL, writer, &rc[i]);
  }
  uint64_t done = 0;
  int failed = 0;
  for (int i = 0; i < cf->threads; i++) {
    pthread_join(th[i], NULL);
    done += rc[i].done;
    failed |= rc[i].failed;
  }
  double secs = (double)(now_us() - t0) / 1e6;
  double cpu1 = total_cpu(cl, cf->tservers);
  free(rc);
  free(th);
  if (failed) return 1;
  res->rate = (double)done / secs;
  res->cpu_us_op = done ? (cpu1 - cpu0) * 1e6 / (double)done : 0;
  /* Let the servers report their tablets' key counts (heartbeats). */
  uint64_t keys_total = 0;
  uint64_t per[16];
  for (int wait = 0; wait < 40; wait++) {
    usleep(250 * 1000);
    memset(per, 0, sizeof per);
    keys_total = 0;
    mica_tablet_info *t = NULL;
    size_t n = 0;
    if (mica_list_tablets(c, table, &t, &n) != MICA_OK) continue;
    for (size_t k = 0; k < n; k++) {
      for (int s = 0; s < cf->tservers && s < 16; s++)
        if (strcmp(t[k].address, cl_tserver_address(cl, s)) == 0)
          per[s] += t[k].approx_keys;
      keys_total += t[k].approx_keys;
    }
    mica_free(t);
    if (keys_total >= done) break;
  }
  res->max_share = 0;
  for (int s = 0; s < cf->tservers && s < 16; s++) {
    res->share[s] = keys_total ? (double)per[s] / (double)keys_total : 0;
    if (res->share[s] > res->max_share) res->max_share = res->share[s];
  }
  measure_scans(c, table, done, res);
  printf("%-10s salt %3d: %8.0f writes/s, %6.1f us server CPU/write, rows by server:",
         table, salt, res->rate, res->cpu_us_op);
  for (int s = 0; s < cf->tservers && s < 16; s++) printf(" %5.1f%%", 100 * res->share[s]);
  printf("; full scan %.0f rows/s, 10-row scan %.2f ms\n", res->scan_rows_s, res->short_ms);
  fflush(stdout);
  mica_drop_table(c, table);
  return 0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  cfg cf = {3, 10, 16, 12, 3, 100};
  for (int i = 1; i < argc; i++) {
    int *dst = NULL;
    if (strcmp(argv[i], "--rounds") == 0) dst = &cf.rounds;
    else if (strcmp(argv[i], "--seconds") == 0) dst = &cf.seconds;
    else if (strcmp(argv[i], "--threads") == 0) dst = &cf.threads;
    else if (strcmp(argv[i], "--salt") == 0) dst = &cf.salt;
    else if (strcmp(argv[i], "--tservers") == 0) dst = &cf.tservers;
    else if (strcmp(argv[i], "--value-size") == 0) dst = &cf.value_size;
    else if (strcmp(argv[i], "--help") == 0) {
      printf("usage: mica-salt-bench [--rounds N] [--seconds S] [--threads N] [--salt N]\n"
             "                       [--tservers N] [--value-size N]\n\n"
             "Sequential inserts into an unsalted and a salted table on a loopback\n"
             "cluster, interleaved: rate, each server's share of the rows, server CPU\n"
             "per write. Defaults: 3 rounds of 10 s, 16 threads, 12 buckets, 3 tablet\n"
             "servers, 100-byte values. Needs MICA_BIN_DIR (mica-master, mica-tserver).\n"
             "\nExample:\n  MICA_BIN_DIR=build/bin build/bin/mica-salt-bench --rounds 3\n");
      return 0;
    }
    if (dst == NULL || i + 1 >= argc || atoi(argv[i + 1]) <= 0) {
      fprintf(stderr, "mica-salt-bench: bad argument '%s' (see --help)\n", argv[i]);
      return 2;
    }
    *dst = atoi(argv[++i]);
  }
  if (cf.tservers > 16 || cf.salt < 2 || cf.salt > 255) {
    fprintf(stderr, "mica-salt-bench: --tservers at most 16, --salt 2..255\n");
    return 2;
  }
  static const char *const margs[] = {"--merge", "off", "--balancer", "off", NULL};
  cl_options o;
  cl_options_init(&o);
  o.tservers = cf.tservers;
  o.master_args = margs;
  cluster *cl = NULL;
  mica_err *e = cl_start(&o, &cl);
  if (e != NULL) {
    fprintf(stderr, "mica-salt-bench: %s\n", err_msg(e));
    return 1;
  }
  mica_client *c = NULL;
  if (mica_open(cl_master_address(cl), NULL, &c) != MICA_OK) {
    fprintf(stderr, "mica-salt-bench: %s\n", mica_errmsg());
    cl_free(cl);
    return 1;
  }
  printf("%d rounds, %d s each, %d threads, %d-byte values, %d tablet servers\n",
         cf.rounds, cf.seconds, cf.threads, cf.value_size, cf.tservers);
  double *ur = calloc((size_t)cf.rounds, sizeof(double)), *sr = calloc((size_t)cf.rounds, sizeof(double));
  double *um = calloc((size_t)cf.rounds, sizeof(double)), *sm = calloc((size_t)cf.rounds, sizeof(double));
  double *uc = calloc((size_t)cf.rounds, sizeof(double)), *sc = calloc((size_t)cf.rounds, sizeof(double));
  double *ratio = calloc((size_t)cf.rounds, sizeof(double));
  double *us = calloc((size_t)cf.rounds, sizeof(double)), *ss = calloc((size_t)cf.rounds, sizeof(double));
  double *ush = calloc((size_t)cf.rounds, sizeof(double)), *ssh = calloc((size_t)cf.rounds, sizeof(double));
  int rc = 0;
  for (int r = 0; r < cf.rounds && rc == 0; r++) {
    result u, s;
    memset(&u, 0, sizeof u);
    memset(&s, 0, sizeof s);
    char tu[32], ts[32];
    snprintf(tu, sizeof tu, "seq_plain_%d", r);
    snprintf(ts, sizeof ts, "seq_salt_%d", r);
    rc = run_one(cl, c, &cf, tu, 0, &u);
    if (rc == 0) rc = run_one(cl, c, &cf, ts, cf.salt, &s);
    ur[r] = u.rate, sr[r] = s.rate, um[r] = u.max_share, sm[r] = s.max_share;
    uc[r] = u.cpu_us_op, sc[r] = s.cpu_us_op;
    ratio[r] = u.rate > 0 ? s.rate / u.rate : 0;
    us[r] = u.scan_rows_s, ss[r] = s.scan_rows_s, ush[r] = u.short_ms, ssh[r] = s.short_ms;
  }
  if (rc == 0) {
    printf("\nmedians over %d rounds:\n", cf.rounds);
    printf("  unsalted: %8.0f writes/s, busiest server %5.1f%% of rows, %6.1f us CPU/write\n",
           median(ur, cf.rounds), 100 * median(um, cf.rounds), median(uc, cf.rounds));
    printf("  salt %3d: %8.0f writes/s, busiest server %5.1f%% of rows, %6.1f us CPU/write\n",
           cf.salt, median(sr, cf.rounds), 100 * median(sm, cf.rounds), median(sc, cf.rounds));
    printf("  salted/unsalted rate: %.2f (median of per-round ratios)\n",
           median(ratio, cf.rounds));
    printf("  full keys-only scan: unsalted %.0f rows/s, salted %.0f rows/s\n",
           median(us, cf.rounds), median(ss, cf.rounds));
    printf("  10-row scan from a random key (median): unsalted %.2f ms, salted %.2f ms\n",
           median(ush, cf.rounds), median(ssh, cf.rounds));
  }
  free(ur), free(sr), free(um), free(sm), free(uc), free(sc), free(ratio);
  free(us), free(ss), free(ush), free(ssh);
  mica_close(c);
  cl_free(cl);
  return rc;
}
