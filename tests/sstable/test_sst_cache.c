/* test_sst_cache: SSTable readers sharing one block cache.
 *
 * Eight threads read two files through one small cache at once (point
 * reads, forward and backward scans) and check every answer against the
 * model, while the main thread samples the cache's usage: it may exceed
 * the budget only by the blocks the threads pin at that moment. Also: a
 * scan that does not fill the cache leaves it alone, and a file rewritten
 * under the same name is never served from the old file's cached blocks. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/cache.h"
#include "common/env.h"
#include "common/ikey.h"
#include "sstable/sstable.h"
#include "tests/sstable/sstutil.h"
#include "tests/harness/testutil.h"

#define THREADS 8
#define OPS_PER_THREAD 10000
#define CAPACITY (512 * 1024)

static env *E(void) { return env_posix(); }

typedef struct shared {
  sst_reader *r[2];
  model *m[2];
  atomic_size_t wrong;
  atomic_size_t errors;
  atomic_int done; /* workers finished */
} shared;

typedef struct worker {
  shared *s;
  int id;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  shared *s = w->s;
  tu_rand_seed(tu_rand() ^ (uint64_t)w->id * 7919);
  buf v = BUF_INIT;
  size_t wrong = 0, errors = 0;
  for (int op = 0; op < OPS_PER_THREAD; op++) {
    int f = (int)((w->id + op) % 2);
    sst_reader *r = s->r[f];
    const model *m = s->m[f];
    size_t i = tu_rand_below(m->n);
    int kind = (int)tu_rand_below(4);
    if (kind < 2) {
      ikey_parts p;
      ikey_parse(buf_slice(&m->keys[i]), &p);
      sst_get_result res;
      mica_err *err = sst_reader_get(r, p.user_key, p.seq, &res, &v, NULL);
      if (err != NULL) {
        errors++;
        err_free(err);
      } else if (res != SST_GET_PUT || !slice_eq(buf_slice(&v), buf_slice(&m->vals[i]))) {
        wrong++;
      }
    } else {
      iter *it = sst_reader_iter_new(r, true);
      iter_seek(it, buf_slice(&m->keys[i]));
      bool fwd = kind == 2;
      for (int step = 0; step < 40; step++) {
        if (!iter_valid(it)) {
          if (fwd ? i != m->n : i != (size_t)-1) wrong++;
          break;
        }
        if (!slice_eq(iter_key(it), buf_slice(&m->keys[i])) ||
            !slice_eq(iter_value(it), buf_slice(&m->vals[i]))) {
          wrong++;
          break;
        }
        if (fwd) {
          iter_next(it);
          i++;
        } else {
          iter_prev(it);
          i--;
        }
      }
      if (iter_status(it) != NULL) errors++;
      iter_close(it);
    }
  }
  buf_free(&v);
  atomic_fetch_add(&s->wrong, wrong);
  atomic_fetch_add(&s->errors, errors);
  atomic_fetch_add(&s->done, 1);
  return NULL;
}

static size_t largest_block(sst_reader *r) {
  size_t max = 0;
  for (size_t i = 0; i < sst_reader_num_blocks(r); i++) {
    sst_block_info bi;
    sst_reader_block_info(r, i, &bi);
    if (bi.size > max) max = (size_t)bi.size;
  }
  return max;
}

static void test_concurrent_readers(void) {
  cache *c = cache_new(CAPACITY);
  model m[2] = {{0}, {0}};
  shared s = {0};
  size_t max_block = 0;
  for (int f = 0; f < 2; f++) {
    gen_opts g = {.entries = 30000, .min_key = 8, .max_key = 24, .min_val = 20,
                  .max_val = 200, .max_versions = 1};
    model_gen(&m[f], &g);
    const char *path = tmp_path("cache.sst");
    sst_options o;
    sst_options_init(&o);
    o.compression = f == 0 ? SST_COMPRESS_NONE : SST_COMPRESS_LZ4;
    build_file(E(), path, &o, &m[f], NULL);
    TU_OK(sst_reader_open(E(), path, c, &s.r[f]));
    s.m[f] = &m[f];
    size_t mb = largest_block(s.r[f]);
    if (mb > max_block) max_block = mb;
    CU_ASSERT(sst_reader_properties(s.r[f])->data_size > 4 * CAPACITY);
  }
  pthread_t th[THREADS];
  worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){&s, i};
    CU_ASSERT_FATAL(pthread_create(&th[i], NULL, work, &w[i]) == 0);
  }
  /* Each thread pins at most one block at a time (an iterator's current
   * block, or the block a get is reading), charged at its uncompressed
   * size plus a small header. Blocks are at most ~block_size + one entry;
   * LZ4 blocks uncompress to about that too. */
  size_t bound = CAPACITY + THREADS * (max_block + 8192 + 256);
  size_t max_usage = 0, samples = 0;
  while (atomic_load(&s.done) < THREADS) {
    size_t u = cache_usage(c);
    if (u > max_usage) max_usage = u;
    samples++;
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  fprintf(stderr, "\n  usage max %zu (capacity %d, bound %zu), %zu samples, hits %llu, "
          "misses %llu", max_usage, CAPACITY, bound, samples,
          (unsigned long long)cache_hits(c), (unsigned long long)cache_misses(c));
  CU_ASSERT_EQUAL(atomic_load(&s.wrong), 0);
  CU_ASSERT_EQUAL(atomic_load(&s.errors), 0);
  CU_ASSERT(max_usage <= bound);
  CU_ASSERT(cache_usage(c) <= CAPACITY);
  CU_ASSERT(cache_hits(c) > 0 && cache_misses(c) > 0);
  for (int f = 0; f < 2; f++) {
    sst_reader_close(s.r[f]);
    model_free(&m[f]);
  }
  cache_free(c);
}

static void test_fill_and_no_fill(void) {
  cache *c = cache_new(CAPACITY);
  model m = {0};
  gen_opts g = {.entries = 20000, .min_key = 8, .max_key = 24, .min_val = 20,
                .max_val = 200};
  model_gen(&m, &g);
  const char *path = tmp_path("fill.sst");
  build_file(E(), path, NULL, &m, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, c, &r));
  check_scans(r, &m); /* fills the cache */
  size_t after_fill = cache_usage(c);
  CU_ASSERT(after_fill <= CAPACITY);
  /* Blocks spread over the shards: a full scan leaves the cache mostly
   * full rather than one shard churning. */
  CU_ASSERT(after_fill >= CAPACITY / 2);
  sst_reader_close(r);
  cache_free(c);

  /* A scan that does not fill leaves a fresh cache empty. */
  c = cache_new(CAPACITY);
  TU_OK(sst_reader_open(E(), path, c, &r));
  iter *it = sst_reader_iter_new(r, false);
  size_t n = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) n++;
  CU_ASSERT_EQUAL(n, m.n);
  iter_close(it);
  CU_ASSERT_EQUAL(cache_usage(c), 0);
  sst_reader_close(r);
  cache_free(c);
  model_free(&m);
}

/* A file rewritten under the same name and reopened with the same cache
 * gets a new cache id, so the old blocks are never returned for it. */
static void test_reopen_new_id(void) {
  cache *c = cache_new(8 << 20);
  const char *path = tmp_path("reopen.sst");
  model a = {0}, b = {0};
  gen_opts g = {.entries = 3000, .min_key = 8, .max_key = 12, .min_val = 10,
                .max_val = 50};
  model_gen(&a, &g);
  model_gen(&b, &g);
  build_file(E(), path, NULL, &a, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, c, &r));
  check_scans(r, &a);
  sst_reader_close(r);
  CU_ASSERT(cache_usage(c) > 0);
  TU_OK(env_remove(E(), path));
  build_file(E(), path, NULL, &b, NULL);
  TU_OK(sst_reader_open(E(), path, c, &r));
  check_scans(r, &b);
  sst_reader_close(r);
  cache_free(c);
  model_free(&a);
  model_free(&b);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"8 concurrent readers, small cache", test_concurrent_readers},
      {"fill_cache on and off", test_fill_and_no_fill},
      {"reopened file gets a new cache id", test_reopen_new_id},
      CU_TEST_INFO_NULL};
  tu_add_suite("sstable block cache", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
