/* Tests of mica-bench's generators and latency histogram: YCSB's key
 * hash and names, the zeta sum and its Euler-Maclaurin tail, the zipfian's
 * head probability and growth, the scrambled and latest choosers staying in
 * range with the expected skew, the acknowledged counter under concurrent
 * out-of-order completion, and percentile accuracy of the histogram. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/testutil.h"
#include "tools/mica-bench/gen.h"
#include "tools/mica-bench/hist.h"

static void test_keys(void) {
  /* YCSB's first keys: FNV-1a of the id's eight bytes, made non-negative. */
  CU_ASSERT_EQUAL(gen_fnv64(0), UINT64_C(6284781860667377211));
  CU_ASSERT_EQUAL(gen_fnv64(1), UINT64_C(8517097267634966620));
  CU_ASSERT_EQUAL(gen_fnv64(12345), UINT64_C(1792800413050876852));
  for (uint64_t i = 0; i < 100000; i++) CU_ASSERT((int64_t)gen_fnv64(i * 7919) >= 0);
  char k[GEN_KEY_MAX];
  CU_ASSERT_EQUAL(gen_key(0, 1, k), strlen("user6284781860667377211"));
  CU_ASSERT_STRING_EQUAL(k, "user6284781860667377211");
  CU_ASSERT_EQUAL(gen_key(42, 0, k), 16);
  CU_ASSERT_STRING_EQUAL(k, "user000000000042");
  /* Ordered keys sort as their ids do. */
  char k2[GEN_KEY_MAX];
  gen_key(999, 0, k);
  gen_key(1000, 0, k2);
  CU_ASSERT(strcmp(k, k2) < 0);
}

static void test_zeta(void) {
  /* The constant YCSB precomputes for its scrambled zipfian. */
  CU_ASSERT_DOUBLE_EQUAL(gen_zeta(10000000000ull, 0.99), 26.46902820178302, 1e-9);
  double exact = 0;
  for (int i = 1; i <= 50000; i++) exact += pow(i, -0.99);
  CU_ASSERT_DOUBLE_EQUAL(gen_zeta(50000, 0.99), exact, exact * 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(gen_zeta(1, 0.99), 1.0, 1e-15);
}

static void test_zipf(void) {
  gen_rng r;
  gen_rng_seed(&r, 7);
  gen_zipf z;
  const uint64_t items = 1000, draws = 400000;
  gen_zipf_init(&z, items, 0.99, 0);
  uint64_t *hits = calloc(items, sizeof *hits);
  for (uint64_t i = 0; i < draws; i++) {
    uint64_t v = gen_zipf_next(&z, &r, items);
    CU_ASSERT_FATAL(v < items);
    hits[v]++;
  }
  /* P(i) = (i+1)^-theta / zeta(items): exact for the first two items in
   * Gray's method, a continuous approximation beyond (within ~20%). */
  double zn = gen_zeta(items, 0.99);
  for (int i = 0; i < 6; i++) {
    double want = pow(i + 1, -0.99) / zn * (double)draws;
    CU_ASSERT(fabs((double)hits[i] - want) < (i < 2 ? 0.03 : 0.25) * want);
  }
  CU_ASSERT(hits[0] > hits[10] && hits[10] > hits[500]);
  free(hits);
  /* Growing the item count extends zeta to the exact sum of the new count. */
  gen_zipf_next(&z, &r, 2500);
  CU_ASSERT_DOUBLE_EQUAL(z.zetan, gen_zeta(2500, 0.99), 1e-9);
  CU_ASSERT_EQUAL(z.items, 2500);
}

static void test_scrambled_and_latest(void) {
  gen_rng r;
  gen_rng_seed(&r, 11);
  gen_scrambled s;
  const uint64_t items = 5000, draws = 200000;
  gen_scrambled_init(&s, items);
  uint64_t *hits = calloc(items, sizeof *hits);
  uint64_t top = 0, below_half = 0;
  for (uint64_t i = 0; i < draws; i++) {
    uint64_t v = gen_scrambled_next(&s, &r);
    CU_ASSERT_FATAL(v < items);
    hits[v]++;
    below_half += v < items / 2;
  }
  for (uint64_t i = 0; i < items; i++)
    if (hits[i] > hits[top]) top = i;
  /* The hottest item gets zipf's head, 1/zeta(10^10) = 3.8% of draws, and
   * it is not item 0: scrambling moved it. Popularity is spread over the
   * key space, not piled at its start. */
  CU_ASSERT((double)hits[top] > 0.03 * draws);
  CU_ASSERT_EQUAL(top, gen_fnv64(0) % items);
  CU_ASSERT(below_half > draws / 4 && below_half < draws * 3 / 4);
  free(hits);

  gen_latest l;
  gen_latest_init(&l, 1000, 0);
  uint64_t newest = 0, n = 0;
  for (uint64_t limit = 1000; limit < 3000; limit++)
    for (int i = 0; i < 50; i++) {
      uint64_t v = gen_latest_next(&l, &r, limit);
      CU_ASSERT_FATAL(v < limit);
      newest += v == limit - 1;
      n++;
    }
  /* The newest record is the most likely, about 1/zeta(limit) of draws. */
  double share = (double)newest / (double)n;
  CU_ASSERT(share > 0.10 && share < 0.16);
}

typedef struct ack_arg {
  gen_acked *a;
  int n;
} ack_arg;

static void *ack_thread(void *p) {
  ack_arg *arg = p;
  gen_rng r;
  gen_rng_seed(&r, (uint64_t)(uintptr_t)p);
  for (int i = 0; i < arg->n; i++) {
    uint64_t id = gen_acked_take(arg->a);
    /* Every id below the limit must have been completed already. */
    CU_ASSERT(id >= gen_acked_limit(arg->a));
    if (gen_rng_below(&r, 4) == 0) sched_yield();
    gen_acked_done(arg->a, id);
  }
  return NULL;
}

static void test_acked(void) {
  gen_acked a;
  gen_acked_init(&a, 100);
  CU_ASSERT_EQUAL(gen_acked_limit(&a), 100);
  uint64_t x = gen_acked_take(&a), y = gen_acked_take(&a), z = gen_acked_take(&a);
  CU_ASSERT_EQUAL(x, 100);
  gen_acked_done(&a, z);
  gen_acked_done(&a, y);
  CU_ASSERT_EQUAL(gen_acked_limit(&a), 100); /* 100 still in flight */
  gen_acked_done(&a, x);
  CU_ASSERT_EQUAL(gen_acked_limit(&a), 103);

  pthread_t t[4];
  ack_arg arg = {&a, 20000};
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, ack_thread, &arg);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  CU_ASSERT_EQUAL(gen_acked_limit(&a), 103 + 80000);
  gen_acked_destroy(&a);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_hist(void) {
  hist *h = malloc(sizeof *h), *h2 = malloc(sizeof *h2);
  hist_init(h);
  CU_ASSERT_EQUAL(hist_percentile(h, 99), 0);
  CU_ASSERT_EQUAL(hist_mean(h), 0);
  const int n = 100000;
  uint64_t *v = malloc(n * sizeof *v);
  gen_rng r;
  gen_rng_seed(&r, 3);
  for (int i = 0; i < n; i++) {
    /* Log-uniform from 1 us to about 17 s: every bucket regime. */
    v[i] = (uint64_t)exp(gen_rng_double(&r) * log(17e6)) + 1;
    hist_add(h, v[i]);
  }
  qsort(v, n, sizeof *v, cmp_u64);
  const double ps[] = {1, 50, 95, 99, 99.9};
  for (int i = 0; i < 5; i++) {
    uint64_t exact = v[(size_t)ceil(ps[i] / 100 * n) - 1];
    uint64_t got = hist_percentile(h, ps[i]);
    CU_ASSERT(fabs((double)got - (double)exact) <= (double)exact / 64 + 1);
  }
  CU_ASSERT_EQUAL(hist_percentile(h, 100), v[n - 1]);
  CU_ASSERT_EQUAL(h->max, v[n - 1]);
  CU_ASSERT_EQUAL(h->min, v[0]);
  /* Merging two halves equals adding everything to one. */
  hist_init(h2);
  hist_add(h2, 5);
  hist_add(h2, 70000000000ull);
  hist_merge(h, h2);
  CU_ASSERT_EQUAL(h->count, (uint64_t)n + 2);
  CU_ASSERT_EQUAL(h->max, 70000000000ull);
  CU_ASSERT_EQUAL(hist_percentile(h, 100), 70000000000ull);
  free(v);
  free(h);
  free(h2);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"keys", test_keys},
      {"zeta", test_zeta},
      {"zipf", test_zipf},
      {"scrambled_and_latest", test_scrambled_and_latest},
      {"acked", test_acked},
      {"hist", test_hist},
      CU_TEST_INFO_NULL,
  };
  tu_add_suite("bench_gen", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
