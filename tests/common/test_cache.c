/* test_cache: the sharded LRU cache — lookups, replacement, erasure, the
 * byte budget, pinning, deleter accounting, counters, and many threads at
 * once. Values are heap records that carry their own key, so a lookup that
 * returns the wrong value or a value already deleted is caught (the latter
 * by ASan in the sanitizer build). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cache.h"
#include "tests/harness/testutil.h"

typedef struct val {
  char key[32];
  size_t klen;
  int serial;
} val;

static atomic_int deleted, inserted;

static void deleter(slice key, void *value) {
  val *v = value;
  /* The deleter sees the entry's own key. */
  CU_ASSERT_FATAL(slice_eq(key, slice_make(v->key, v->klen)));
  free(v);
  atomic_fetch_add(&deleted, 1);
}

static cache_handle *put(cache *c, const char *key, int serial, size_t charge) {
  val *v = xcalloc(1, sizeof(*v));
  v->klen = strlen(key);
  memcpy(v->key, key, v->klen);
  v->serial = serial;
  atomic_fetch_add(&inserted, 1);
  return cache_insert(c, slice_make(v->key, v->klen), v, charge, deleter);
}

/* Serial of the value under `key`, or -1. */
static int get(cache *c, const char *key) {
  cache_handle *h = cache_lookup(c, slice_from_str(key));
  if (h == NULL) return -1;
  val *v = cache_value(h);
  CU_ASSERT(slice_eq(slice_make(v->key, v->klen), slice_from_str(key)));
  int s = v->serial;
  cache_release(c, h);
  return s;
}

static void reset_counts(void) {
  atomic_store(&deleted, 0);
  atomic_store(&inserted, 0);
}

static void test_basic(void) {
  reset_counts();
  cache *c = cache_new(1 << 20);
  CU_ASSERT_EQUAL(cache_capacity(c), 1 << 20);
  CU_ASSERT_EQUAL(get(c, "a"), -1);
  cache_release(c, put(c, "a", 1, 10));
  cache_release(c, put(c, "b", 2, 20));
  CU_ASSERT_EQUAL(get(c, "a"), 1);
  CU_ASSERT_EQUAL(get(c, "b"), 2);
  CU_ASSERT_EQUAL(cache_usage(c), 30);
  CU_ASSERT_EQUAL(cache_hits(c), 2);
  CU_ASSERT_EQUAL(cache_misses(c), 1);

  /* Replace: the old value is deleted, the new one found. */
  cache_release(c, put(c, "a", 3, 5));
  CU_ASSERT_EQUAL(atomic_load(&deleted), 1);
  CU_ASSERT_EQUAL(get(c, "a"), 3);
  CU_ASSERT_EQUAL(cache_usage(c), 25);

  cache_erase(c, slice_from_str("b"));
  CU_ASSERT_EQUAL(atomic_load(&deleted), 2);
  CU_ASSERT_EQUAL(get(c, "b"), -1);
  CU_ASSERT_EQUAL(cache_usage(c), 5);
  cache_erase(c, slice_from_str("never there"));

  /* Binary keys and the empty key. */
  cache_handle *h = cache_insert(c, slice_make("\0x\0", 3), xmalloc(1), 1, NULL);
  free(cache_value(h));
  cache_release(c, h);
  CU_ASSERT_PTR_NULL(cache_lookup(c, slice_make("\0x", 2)));
  h = cache_lookup(c, slice_make("\0x\0", 3));
  CU_ASSERT_PTR_NOT_NULL(h);
  cache_release(c, h);
  cache_release(c, put(c, "", 9, 1));
  CU_ASSERT_EQUAL(get(c, ""), 9);

  uint64_t id1 = cache_new_id(c), id2 = cache_new_id(c);
  CU_ASSERT_NOT_EQUAL(id1, id2);
  cache_free(c);
  CU_ASSERT_EQUAL(atomic_load(&deleted), atomic_load(&inserted));
  cache_free(NULL);
}

static void test_budget(void) {
  reset_counts();
  const size_t cap = 16 * 1000;
  cache *c = cache_new(cap);
  char key[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(key, sizeof(key), "k%d", (int)tu_rand_below(5000));
    cache_release(c, put(c, key, i, 1 + tu_rand_below(200)));
    CU_ASSERT_FATAL(cache_usage(c) <= cap);
    if (i % 7 == 0) get(c, key);
  }
  /* LRU: recently used keys survive a stream of new ones better than
   * untouched ones. Insert 40 hot keys, keep touching them while
   * streaming many cold ones; the hot ones must still be there. */
  for (int i = 0; i < 40; i++) {
    snprintf(key, sizeof(key), "hot%d", i);
    cache_release(c, put(c, key, i, 10));
  }
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof(key), "cold%d", i);
    cache_release(c, put(c, key, i, 10));
    snprintf(key, sizeof(key), "hot%d", i % 40);
    get(c, key);
  }
  int hot_found = 0;
  for (int i = 0; i < 40; i++) {
    snprintf(key, sizeof(key), "hot%d", i);
    hot_found += get(c, key) == i;
  }
  CU_ASSERT_EQUAL(hot_found, 40);
  int cold_found = 0;
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof(key), "cold%d", i);
    cold_found += get(c, key) >= 0;
  }
  CU_ASSERT(cold_found < 5000 - 40);
  CU_ASSERT(cache_usage(c) <= cap);
  /* Nothing evicted was leaked: every value not in the cache was deleted. */
  cache_free(c);
  CU_ASSERT_EQUAL(atomic_load(&deleted), atomic_load(&inserted));
}

static void test_pinned(void) {
  reset_counts();
  const size_t cap = 16 * 100;
  cache *c = cache_new(cap);
  cache_handle *pin = put(c, "pinned", 7, 50);
  char key[32];
  for (int i = 0; i < 2000; i++) {
    snprintf(key, sizeof(key), "x%d", i);
    cache_release(c, put(c, key, i, 30));
  }
  /* Still there and still ours, though far older than anything else. */
  CU_ASSERT_EQUAL(((val *)cache_value(pin))->serial, 7);
  CU_ASSERT_EQUAL(get(c, "pinned"), 7);
  int before = atomic_load(&deleted);
  cache_release(c, pin);
  /* Unpinned now: a stream of inserts into every shard evicts it. */
  for (int i = 0; i < 2000; i++) {
    snprintf(key, sizeof(key), "y%d", i);
    cache_release(c, put(c, key, i, 30));
  }
  CU_ASSERT_EQUAL(get(c, "pinned"), -1);
  CU_ASSERT(atomic_load(&deleted) > before);

  /* Erase and replace while pinned: the value lives until release, and
   * its deleter runs exactly once, then. */
  reset_counts();
  cache_handle *h = put(c, "e", 1, 10);
  cache_erase(c, slice_from_str("e"));
  CU_ASSERT_EQUAL(get(c, "e"), -1);
  CU_ASSERT_EQUAL(atomic_load(&deleted), 0);
  CU_ASSERT_EQUAL(((val *)cache_value(h))->serial, 1);
  cache_release(c, h);
  CU_ASSERT_EQUAL(atomic_load(&deleted), 1);

  h = put(c, "r", 1, 10);
  cache_handle *h2 = cache_lookup(c, slice_from_str("r"));
  cache_release(c, put(c, "r", 2, 10));
  CU_ASSERT_EQUAL(get(c, "r"), 2);
  CU_ASSERT_EQUAL(((val *)cache_value(h))->serial, 1);
  cache_release(c, h);
  CU_ASSERT_EQUAL(atomic_load(&deleted), 1); /* h2 still holds it */
  CU_ASSERT_EQUAL(((val *)cache_value(h2))->serial, 1);
  cache_release(c, h2);
  CU_ASSERT_EQUAL(atomic_load(&deleted), 2);

  /* An entry larger than the whole budget: usable while held, gone after. */
  size_t u = cache_usage(c);
  h = put(c, "huge", 1, cap * 4);
  CU_ASSERT(cache_usage(c) >= cap * 4);
  CU_ASSERT_EQUAL(get(c, "huge"), 1);
  cache_release(c, h);
  CU_ASSERT_EQUAL(get(c, "huge"), -1);
  CU_ASSERT(cache_usage(c) <= u);
  CU_ASSERT(cache_usage(c) <= cap);
  cache_free(c);
}

static void test_zero_capacity(void) {
  reset_counts();
  cache *c = cache_new(0);
  cache_handle *h = put(c, "a", 1, 1);
  CU_ASSERT_EQUAL(((val *)cache_value(h))->serial, 1);
  cache_release(c, h);
  CU_ASSERT_EQUAL(get(c, "a"), -1);
  CU_ASSERT_EQUAL(cache_usage(c), 0);
  CU_ASSERT_EQUAL(atomic_load(&deleted), 1);
  cache_free(c);
}

/* ---- concurrency ---- */

enum { THREADS = 8, OPS = 40000, KEYS = 2000 };
static const size_t conc_cap = 16 * 4000;

typedef struct worker {
  cache *c;
  int id;
  uint64_t ids[64];
  int bad;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  tu_rand_seed(tu_rand() ^ (uint64_t)w->id * 0x9e3779b97f4a7c15ull);
  char key[32];
  for (int i = 0; i < OPS; i++) {
    snprintf(key, sizeof(key), "key%d", (int)tu_rand_below(KEYS));
    uint64_t r = tu_rand_below(100);
    if (r < 60) {
      cache_handle *h = cache_lookup(w->c, slice_from_str(key));
      if (h == NULL) {
        h = put(w->c, key, i, 1 + tu_rand_below(100));
      } else {
        val *v = cache_value(h);
        if (!slice_eq(slice_make(v->key, v->klen), slice_from_str(key)))
          w->bad++;
      }
      cache_release(w->c, h);
    } else if (r < 90) {
      cache_release(w->c, put(w->c, key, i, 1 + tu_rand_below(100)));
    } else if (r < 98) {
      cache_erase(w->c, slice_from_str(key));
    } else {
      (void)cache_usage(w->c);
    }
    if (i < 64) w->ids[i] = cache_new_id(w->c);
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_concurrent(void) {
  reset_counts();
  cache *c = cache_new(conc_cap);
  worker w[THREADS];
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){.c = c, .id = i};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  uint64_t ids[THREADS * 64];
  for (int i = 0; i < THREADS; i++) {
    CU_ASSERT_EQUAL(w[i].bad, 0);
    memcpy(ids + i * 64, w[i].ids, sizeof(w[i].ids));
  }
  qsort(ids, THREADS * 64, sizeof(uint64_t), cmp_u64);
  for (int i = 1; i < THREADS * 64; i++) CU_ASSERT_NOT_EQUAL(ids[i], ids[i - 1]);
  CU_ASSERT(cache_usage(c) <= conc_cap);
  CU_ASSERT(cache_hits(c) + cache_misses(c) > 0);
  cache_free(c);
  CU_ASSERT_EQUAL(atomic_load(&deleted), atomic_load(&inserted));
}

/* cache_insert_copy: the entry holds its own copy of the value (the
 * caller's may go at once); the deleter gets that copy, once, when the
 * entry goes by replacement, erasure, eviction or cache_free, and frees
 * only what the copy points to (ASan catches a copy freed twice or read
 * after its entry went). Keys of every length, values 16-byte aligned. */
typedef struct boxed {
  int serial;
  char *owned; /* freed by the deleter */
  char pad[21];
} boxed;

static void boxed_deleter(slice key, void *value) {
  boxed *b = value;
  CU_ASSERT_EQUAL(((uintptr_t)value) % 16, 0);
  CU_ASSERT_FATAL(slice_eq(key, slice_from_str(b->owned)));
  free(b->owned);
  atomic_fetch_add(&deleted, 1);
}

static cache_handle *put_copy(cache *c, const char *key, int serial,
                              size_t charge) {
  boxed b;
  memset(&b, 0xa5, sizeof b);
  b.serial = serial;
  b.owned = xstrdup(key);
  atomic_fetch_add(&inserted, 1);
  return cache_insert_copy(c, slice_from_str(key), &b, sizeof b, charge,
                           boxed_deleter);
}

static int get_copy(cache *c, const char *key) {
  cache_handle *h = cache_lookup(c, slice_from_str(key));
  if (h == NULL) return -1;
  boxed *b = cache_value(h);
  CU_ASSERT_EQUAL(((uintptr_t)b) % 16, 0);
  CU_ASSERT_STRING_EQUAL(b->owned, key);
  CU_ASSERT_EQUAL((unsigned char)b->pad[20], 0xa5);
  int s = b->serial;
  cache_release(c, h);
  return s;
}

static void test_copied_values(void) {
  reset_counts();
  /* 16 shards of 40 bytes: room for a few 10-byte entries in each. */
  cache *c = cache_new(16 * 40);
  const char *keys[] = {"", "k", "0123456789abcdef",
                        "a key longer than one cache line, to be sure of it!"};
  for (int i = 0; i < 4; i++) cache_release(c, put_copy(c, keys[i], i, 10));
  for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(get_copy(c, keys[i]), i);
  /* Replace, erase, a pinned entry outliving its erasure. */
  cache_release(c, put_copy(c, "k", 7, 10));
  CU_ASSERT_EQUAL(atomic_load(&deleted), 1);
  CU_ASSERT_EQUAL(get_copy(c, "k"), 7);
  cache_handle *h = cache_lookup(c, slice_from_str("0123456789abcdef"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  cache_erase(c, slice_from_str("0123456789abcdef"));
  CU_ASSERT_EQUAL(atomic_load(&deleted), 1);
  CU_ASSERT_EQUAL(((boxed *)cache_value(h))->serial, 2);
  cache_release(c, h);
  CU_ASSERT_EQUAL(atomic_load(&deleted), 2);
  /* Eviction: 200 more entries of 10 bytes in a 640-byte cache. */
  char k[16];
  for (int i = 0; i < 200; i++) {
    snprintf(k, sizeof k, "e%d", i);
    cache_release(c, put_copy(c, k, 100 + i, 10));
  }
  CU_ASSERT(cache_usage(c) <= 16 * 40);
  CU_ASSERT(atomic_load(&deleted) >= 200 - 64);
  cache_free(c);
  CU_ASSERT_EQUAL(atomic_load(&deleted), atomic_load(&inserted));
}

static CU_TestInfo tests[] = {
    {"values copied into the entry", test_copied_values},
    {"insert lookup erase replace", test_basic},
    {"byte budget and LRU order", test_budget},
    {"pinned entries and deleters", test_pinned},
    {"zero capacity", test_zero_capacity},
    {"8 threads", test_concurrent},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) { tu_add_suite("cache", tests); }

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
