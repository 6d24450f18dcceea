/* mica-seek-cost-bench: what building and seeking one tablet iterator
 * costs, without the noise of a whole db_bench run: the heap allocations
 * per seek (every malloc, calloc and realloc of the process is counted,
 * through the linker's --wrap) and the thread CPU time per seek.
 *
 * A tablet with default options (auto compaction off, so that the file
 * count stays as built) gets `files` flushed SSTables of `per_file` random
 * 16-byte keys with 100-byte values each and a memtable of 1,000 more;
 * then `seeks` tab_scan calls with a random start key, each closed at
 * once, as mica-engine-bench's seekrandom does. Results:
 * docs/benchmarks.md, "Tablet iterators and seeks". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/env.h"
#include "tabletserver/resources.h"
#include "tabletserver/tablet.h"

static uint64_t g_allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) {
  g_allocs++;
  return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
  g_allocs++;
  return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
  g_allocs++;
  return __real_realloc(p, n);
}

static void die(const char *what, mica_err *err) {
  fprintf(stderr, "mica-seek-cost-bench: %s: %s\n", what, err_msg(err));
  exit(1);
}

static long arg(const char *s, const char *name, long def) {
  size_t n = strlen(name);
  if (strncmp(s, name, n) != 0 || s[n] != '=') return def;
  char *end;
  long v = strtol(s + n + 1, &end, 10);
  if (*end != '\0' || v <= 0) {
    fprintf(stderr, "mica-seek-cost-bench: %s wants a positive number\n",
            name);
    exit(2);
  }
  return v;
}

static void random_key(char *k, size_t n, long space) {
  snprintf(k, n, "%016ld", (long)(rand() % space));
}

static void seek_once(tablet *t, long space) {
  char k[32];
  random_key(k, sizeof(k), space);
  tab_scan_options so;
  tab_scan_options_init(&so);
  so.start = slice_from_str(k);
  iter *it;
  mica_err *err = tab_scan(t, &so, &it);
  if (err != NULL) die("scan", err);
  iter_close(it);
}

int main(int argc, char **argv) {
  const char *db = "/tmp/mica-seek-cost-bench";
  long files = 3, per_file = 10000, seeks = 200000;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--db=", 5) == 0) {
      db = argv[i] + 5;
      continue;
    }
    long f = arg(argv[i], "--files", -1), p = arg(argv[i], "--per_file", -1),
         s = arg(argv[i], "--seeks", -1);
    if (f > 0) files = f;
    else if (p > 0) per_file = p;
    else if (s > 0) seeks = s;
    else {
      printf("usage: mica-seek-cost-bench [--db=DIR] [--files=N] "
             "[--per_file=N] [--seeks=N]\n(DIR is emptied first)\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  mica_err *err = env_remove_tree(env_posix(), db);
  if (err != NULL) die("emptying the db directory", err);
  res_options ro;
  res_options_init(&ro);
  res_pool *r;
  if ((err = res_new(env_posix(), &ro, &r)) != NULL) die("pool", err);
  tab_options o;
  tab_options_init(&o);
  o.create_if_missing = true;
  o.auto_compact = false;
  tablet *t;
  err = tab_open(r, db, 1, slice_make(NULL, 0), slice_make(NULL, 0), 1, &o,
                 &t);
  if (err != NULL) die("open", err);
  long space = files * per_file * 3;
  char k[32], v[100];
  memset(v, 'v', sizeof(v));
  for (long f = 0; f <= files; f++) {
    long n = f < files ? per_file : 1000;
    for (long i = 0; i < n; i++) {
      random_key(k, sizeof(k), space);
      err = tab_put(t, slice_from_str(k), slice_make((uint8_t *)v, sizeof(v)),
                    false);
      if (err != NULL) die("put", err);
    }
    if (f < files && (err = tab_flush(t)) != NULL) die("flush", err);
  }
  for (long i = 0; i < 2000; i++) seek_once(t, space); /* warm the cache */
  uint64_t a0 = g_allocs;
  struct timespec c0, c1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  for (long i = 0; i < seeks; i++) seek_once(t, space);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
  uint64_t allocs = g_allocs - a0;
  double ns = ((double)(c1.tv_sec - c0.tv_sec) * 1e9 +
               (double)(c1.tv_nsec - c0.tv_nsec)) / (double)seeks;
  tab_stats st;
  tab_get_stats(t, &st);
  printf("%" PRIu64 " SSTables + memtable, %ld seeks: %.2f allocations and "
         "%.0f ns of CPU per seek\n",
         st.num_ssts, seeks, (double)allocs / (double)seeks, ns);
  if ((err = tab_close(t)) != NULL) die("close", err);
  res_free(r);
  err_free(env_remove_tree(env_posix(), db));
  return 0;
}
