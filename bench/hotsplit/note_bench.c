/* mica-load-note-bench: the request-path cost of load sampling
 * (ts_load_note, tabletserver/server/ts_load.h) in nanoseconds per key,
 * sampling on against off, in one process and one run.
 *
 * One tablet's sampler is fed keys drawn from 10,000 distinct 24-byte keys
 * by 1 and by 2 threads at once (the tablet server calls ts_load_note from
 * its polling and write threads concurrently), in alternating rounds of
 * "on" and "off" (off: the same call returning at its first check). Every
 * --reset keys the sample is emptied, as a cold tick or a verdict does, so
 * the expensive fill of the first 128 slots is included at a realistic
 * rate (default once per 100,000 keys: a tablet at 100,000 ops/s has one
 * window start per second at most).
 *
 * Usage: mica-load-note-bench [--keys N] [--rounds N] [--reset N] */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tabletserver/server/ts_int.h"
#include "tabletserver/server/ts_load.h"

#define DISTINCT 10000
#define KEY_LEN 24

static char g_keys[DISTINCT][KEY_LEN];

typedef struct worker {
  ts_server *s;
  ts_tab *tt;
  uint64_t n, reset, seed;
  pthread_barrier_t *bar;
} worker;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *work(void *arg) {
  worker *w = arg;
  uint64_t x = w->seed;
  pthread_barrier_wait(w->bar);
  for (uint64_t i = 0; i < w->n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const char *k = g_keys[(x >> 33) % DISTINCT];
    ts_load_note(w->s, w->tt, TS_LOAD_READ, slice_make(k, KEY_LEN));
    if (w->reset != 0 && i % w->reset == w->reset - 1)
      ts_load_tab_reset(w->tt->load);
  }
  return NULL;
}

/* ns per key with `threads` threads feeding one sampler. */
static double run(ts_server *s, ts_tab *tt, int threads, uint64_t keys,
                  uint64_t reset) {
  pthread_t th[2];
  worker w[2];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    w[i] = (worker){s, tt, keys / (uint64_t)threads, reset,
                    0x9e3779b97f4a7c15ull * (uint64_t)(i + 1), &bar};
    pthread_create(&th[i], NULL, work, &w[i]);
  }
  uint64_t t0 = now_ns();
  pthread_barrier_wait(&bar);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  uint64_t t1 = now_ns();
  pthread_barrier_destroy(&bar);
  return (double)(t1 - t0) / (double)keys;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  uint64_t keys = 20000000, reset = 100000;
  int rounds = 5;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--keys") == 0)
      keys = strtoull(argv[++i], NULL, 10);
    else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--reset") == 0)
      reset = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: mica-load-note-bench [--keys N] [--rounds N] "
                      "[--reset N]\nexample: mica-load-note-bench --keys "
                      "20000000 --rounds 5\n");
      return 2;
    }
  }
  if (keys < 2 || rounds < 1 || rounds > 100) {
    fprintf(stderr, "mica-load-note-bench: --keys >= 2, --rounds 1..100\n");
    return 2;
  }
  for (int i = 0; i < DISTINCT; i++)
    snprintf(g_keys[i], KEY_LEN, "user%019d", i * 7919);
  ts_server *s = xcalloc(1, sizeof(*s));
  ts_tab *tt = xcalloc(1, sizeof(*tt));
  tt->load = ts_load_tab_new();
  printf("%" PRIu64 " keys per run, sample emptied every %" PRIu64
         " keys, %d rounds, medians:\n", keys, reset, rounds);
  printf("| threads | on ns/key | off ns/key | on - off ns/key |\n");
  printf("|---:|---:|---:|---:|\n");
  for (int threads = 1; threads <= 2; threads++) {
    double on[100], off[100];
    for (int r = 0; r < rounds; r++) {
      atomic_store(&s->load.on, true);
      on[r] = run(s, tt, threads, keys, reset);
      atomic_store(&s->load.on, false);
      off[r] = run(s, tt, threads, keys, reset);
    }
    double mon = median(on, rounds), moff = median(off, rounds);
    printf("| %d | %.1f | %.1f | %.1f |\n", threads, mon, moff, mon - moff);
  }
  ts_load_tab_free(tt->load);
  free(tt);
  free(s);
  return 0;
}
