/* test_ts_load: the load-split chooser (tabletserver/server/ts_load.h).
 *
 * Sampled keys go in, a verdict comes out: the split key that halves the
 * sampled load (not the key space or the bytes), hot keys for a load that
 * is one key, and no split where no cut can take a quarter of the load
 * off the busier side. Requests to one key never straddle the split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tabletserver/server/ts_load.h"
#include "tests/harness/testutil.h"

#define S(str) slice_from_str(str)

/* A sample set being built: keys formatted into owned strings. */
typedef struct samples {
  ts_load_sample v[1024];
  char *keys[1024];
  size_t n;
} samples;

static void add(samples *s, const char *key, int kind, size_t times) {
  for (size_t i = 0; i < times; i++) {
    CU_ASSERT_FATAL(s->n < 1024);
    s->keys[s->n] = strdup(key);
    s->v[s->n].key = slice_from_str(s->keys[s->n]);
    s->v[s->n].kind = kind;
    s->n++;
  }
}

static void add_range(samples *s, int from, int to, int kind, size_t times) {
  char k[32];
  for (int i = from; i < to; i++) {
    snprintf(k, sizeof k, "k%06d", i);
    add(s, k, kind, times);
  }
}

static void samples_free(samples *s) {
  for (size_t i = 0; i < s->n; i++) free(s->keys[i]);
  s->n = 0;
}

/* Share of the samples strictly below `key`. */
static double below(const samples *s, slice key) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++)
    if (slice_cmp(s->v[i].key, key) < 0) n++;
  return (double)n / (double)s->n;
}

/* Load on a narrow range of a wide tablet: the split lands inside the hot
 * range, at its load median, far from the middle of the key space. */
static void test_hot_range_split_inside(void) {
  samples s = {0};
  add_range(&s, 0, 100, TS_LOAD_READ, 1);      /* cold: one each */
  add_range(&s, 500, 520, TS_LOAD_WRITE, 20);  /* hot: 400 of 500 */
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_TRUE(vd.split);
  CU_ASSERT_EQUAL(vd.used, 500);
  slice k = buf_slice(&vd.split_key);
  CU_ASSERT_TRUE(slice_cmp(k, S("k000500")) > 0);
  CU_ASSERT_TRUE(slice_cmp(k, S("k000520")) < 0);
  double l = below(&s, k);
  CU_ASSERT_TRUE(l >= 0.4 && l <= 0.6);
  CU_ASSERT_DOUBLE_EQUAL(vd.left_share, l, 1e-9);
  CU_ASSERT_EQUAL(vd.n_hot, 0); /* no key carries 30% */
  ts_load_verdict_free(&vd);
  samples_free(&s);
}

/* Uniform load: the split is at the load median. */
static void test_uniform_median(void) {
  samples s = {0};
  add_range(&s, 0, 200, TS_LOAD_READ, 1);
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_TRUE(vd.split);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.split_key), S("k000100")), 0);
  CU_ASSERT_DOUBLE_EQUAL(vd.left_share, 0.5, 1e-9);
  ts_load_verdict_free(&vd);
  samples_free(&s);
}

/* One key takes everything: it is hot, and there is no split. */
static void test_single_key_no_split(void) {
  samples s = {0};
  add(&s, "celebrity", TS_LOAD_READ, 100);
  add(&s, "celebrity", TS_LOAD_WRITE, 10);
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_FALSE(vd.split);
  CU_ASSERT_EQUAL(vd.split_key.len, 0);
  CU_ASSERT_EQUAL_FATAL(vd.n_hot, 1);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.hot[0].key), S("celebrity")), 0);
  CU_ASSERT_DOUBLE_EQUAL(vd.hot[0].share, 1.0, 1e-9);
  CU_ASSERT_EQUAL(vd.hot[0].kind, TS_LOAD_READ);
  ts_load_verdict_free(&vd);
  samples_free(&s);
}

/* A dominant key with light load on both sides: any cut leaves the
 * busier side with more than 75%, so no split; the key is reported. */
static void test_dominant_key_no_split(void) {
  samples s = {0};
  add_range(&s, 0, 10, TS_LOAD_READ, 1);
  add(&s, "k000050", TS_LOAD_WRITE, 80);
  add_range(&s, 90, 100, TS_LOAD_READ, 1);
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_FALSE(vd.split);
  CU_ASSERT_EQUAL_FATAL(vd.n_hot, 1);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.hot[0].key), S("k000050")), 0);
  CU_ASSERT_EQUAL(vd.hot[0].kind, TS_LOAD_WRITE);
  ts_load_verdict_free(&vd);
  samples_free(&s);
}

/* Two equally hot keys: split between them (at the second), each side one
 * key; both are reported hot, hottest first. Requests to one key never
 * straddle the cut. */
static void test_two_hot_keys(void) {
  samples s = {0};
  add(&s, "b", TS_LOAD_READ, 60);
  add(&s, "a", TS_LOAD_SCAN, 40);
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_TRUE(vd.split);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.split_key), S("b")), 0);
  CU_ASSERT_DOUBLE_EQUAL(vd.left_share, 0.4, 1e-9);
  CU_ASSERT_EQUAL_FATAL(vd.n_hot, 2);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.hot[0].key), S("b")), 0);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.hot[1].key), S("a")), 0);
  CU_ASSERT_EQUAL(vd.hot[1].kind, TS_LOAD_SCAN);
  ts_load_verdict_free(&vd);
  samples_free(&s);
}

/* The split key is strictly inside the tablet: a hot tablet whose load is
 * its own start key and one other key splits at the other key only, and
 * samples outside the range (left over from before a split) are ignored. */
static void test_range_bounds(void) {
  samples s = {0};
  add(&s, "m", TS_LOAD_READ, 50);  /* the tablet's start key */
  add(&s, "p", TS_LOAD_READ, 50);
  add(&s, "a", TS_LOAD_READ, 200); /* outside [m, t) */
  add(&s, "t", TS_LOAD_READ, 200); /* outside: end is exclusive */
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S("m"), S("t"), &vd);
  CU_ASSERT_EQUAL(vd.used, 100);
  CU_ASSERT_TRUE(vd.split);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.split_key), S("p")), 0);
  ts_load_verdict_free(&vd);
  samples_free(&s);

  /* All of it on the start key: nothing to cut. */
  add(&s, "m", TS_LOAD_WRITE, 64);
  ts_load_choose(s.v, s.n, S("m"), S("t"), &vd);
  CU_ASSERT_FALSE(vd.split);
  CU_ASSERT_EQUAL(vd.n_hot, 1);
  ts_load_verdict_free(&vd);
  samples_free(&s);
}

/* Too few samples decide nothing, even if they all agree. */
static void test_too_few_samples(void) {
  samples s = {0};
  add_range(&s, 0, TS_LOAD_MIN_SAMPLES - 1, TS_LOAD_READ, 1);
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_FALSE(vd.split);
  CU_ASSERT_EQUAL(vd.n_hot, 0);
  ts_load_verdict_free(&vd);
  samples_free(&s);
  ts_load_choose(NULL, 0, S(""), S(""), &vd);
  CU_ASSERT_FALSE(vd.split);
  ts_load_verdict_free(&vd);
}

/* Hot keys are those with at least 30% of the samples (so at most three,
 * TS_LOAD_MAX_HOT), hottest first. */
static void test_hot_key_cap(void) {
  samples s = {0};
  /* Five keys at 20% each are below the hot share: none reported. */
  add(&s, "a", TS_LOAD_READ, 20);
  add(&s, "b", TS_LOAD_READ, 20);
  add(&s, "c", TS_LOAD_READ, 20);
  add(&s, "d", TS_LOAD_READ, 20);
  add(&s, "e", TS_LOAD_READ, 20);
  ts_load_verdict vd;
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_EQUAL(vd.n_hot, 0);
  CU_ASSERT_TRUE(vd.split);
  ts_load_verdict_free(&vd);
  samples_free(&s);
  /* Three at a third each: all three, in order of share. */
  add(&s, "x", TS_LOAD_READ, 30);
  add(&s, "y", TS_LOAD_READ, 36);
  add(&s, "z", TS_LOAD_READ, 34);
  ts_load_choose(s.v, s.n, S(""), S(""), &vd);
  CU_ASSERT_EQUAL_FATAL(vd.n_hot, 3); /* x has exactly 30%: hot */
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.hot[0].key), S("y")), 0);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.hot[1].key), S("z")), 0);
  CU_ASSERT_EQUAL(slice_cmp(buf_slice(&vd.hot[2].key), S("x")), 0);
  ts_load_verdict_free(&vd);
  samples_free(&s);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"hot_range_split_inside", test_hot_range_split_inside},
      {"uniform_median", test_uniform_median},
      {"single_key_no_split", test_single_key_no_split},
      {"dominant_key_no_split", test_dominant_key_no_split},
      {"two_hot_keys", test_two_hot_keys},
      {"range_bounds", test_range_bounds},
      {"too_few_samples", test_too_few_samples},
      {"hot_key_cap", test_hot_key_cap},
      CU_TEST_INFO_NULL};
  tu_add_suite("ts_load_choose", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
