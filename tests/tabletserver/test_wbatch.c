/* test_wbatch: the write batch's encoding, and its decoder's refusal of
 * every kind of malformed input (the decoder reads WAL bytes after a
 * crash, so it must never trust them). */
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/ikey.h"
#include "tabletserver/wbatch.h"
#include "tests/harness/testutil.h"

typedef struct entry {
  uint64_t seq;
  uint8_t kind;
  buf key, value;
} entry;

typedef struct collected {
  entry *e;
  size_t n, cap;
  size_t stop_at; /* return an error at this index (SIZE_MAX: never) */
} collected;

static mica_err *collect(void *arg, uint64_t seq, uint8_t kind, slice key,
                         slice value) {
  collected *c = arg;
  if (c->n == c->stop_at) return err_new(MICA_ABORTED, "stop at %zu", c->n);
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 16;
    c->e = xrealloc(c->e, c->cap * sizeof(entry));
  }
  entry *e = &c->e[c->n++];
  memset(e, 0, sizeof(*e));
  e->seq = seq;
  e->kind = kind;
  buf_append_slice(&e->key, key);
  buf_append_slice(&e->value, value);
  return NULL;
}

static void collected_free(collected *c) {
  for (size_t i = 0; i < c->n; i++) {
    buf_free(&c->e[i].key);
    buf_free(&c->e[i].value);
  }
  free(c->e);
  memset(c, 0, sizeof(*c));
}

/* Builds a random batch and the model of what it holds. */
static wbatch *random_batch(size_t n, collected *model) {
  wbatch *b = wbatch_new();
  uint64_t seq = tu_rand() & IKEY_MAX_SEQ;
  wbatch_set_seq(b, seq);
  memset(model, 0, sizeof(*model));
  model->stop_at = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t kl = tu_rand_below(4) == 0 ? tu_rand_below(300) : tu_rand_below(20);
    size_t vl = tu_rand_below(8) == 0 ? tu_rand_below(70000) : tu_rand_below(50);
    uint8_t *k = xmalloc(kl + 1), *v = xmalloc(vl + 1);
    tu_rand_bytes(k, kl);
    tu_rand_bytes(v, vl);
    if (tu_rand_below(3) == 0) {
      wbatch_delete(b, slice_make(k, kl));
      collect(model, seq + i, IKEY_DELETE, slice_make(k, kl), slice_make(NULL, 0));
    } else {
      wbatch_put(b, slice_make(k, kl), slice_make(v, vl));
      collect(model, seq + i, IKEY_PUT, slice_make(k, kl), slice_make(v, vl));
    }
    free(k);
    free(v);
  }
  return b;
}

static void check_same(const wbatch *b, const collected *model) {
  collected got = {.stop_at = SIZE_MAX};
  TU_OK(wbatch_iterate(b, collect, &got));
  CU_ASSERT_EQUAL_FATAL(got.n, model->n);
  CU_ASSERT_EQUAL(wbatch_count(b), model->n);
  for (size_t i = 0; i < got.n; i++) {
    CU_ASSERT_EQUAL(got.e[i].seq, model->e[i].seq);
    CU_ASSERT_EQUAL(got.e[i].kind, model->e[i].kind);
    CU_ASSERT(slice_eq(buf_slice(&got.e[i].key), buf_slice(&model->e[i].key)));
    CU_ASSERT(slice_eq(buf_slice(&got.e[i].value), buf_slice(&model->e[i].value)));
  }
  collected_free(&got);
}

static void test_empty(void) {
  wbatch *b = wbatch_new();
  CU_ASSERT_EQUAL(wbatch_count(b), 0);
  CU_ASSERT_EQUAL(wbatch_seq(b), 0);
  CU_ASSERT_EQUAL(wbatch_byte_size(b), WBATCH_HEADER);
  slice d = wbatch_data(b);
  CU_ASSERT_EQUAL(d.len, WBATCH_HEADER);
  wbatch *c = wbatch_new();
  TU_OK(wbatch_decode(c, d));
  CU_ASSERT_EQUAL(wbatch_count(c), 0);
  wbatch_free(b);
  wbatch_free(c);
  wbatch_free(NULL);
}

/* The documented layout, byte for byte. */
static void test_layout(void) {
  wbatch *b = wbatch_new();
  wbatch_set_seq(b, 0x0102030405ull);
  wbatch_put(b, slice_from_str("k"), slice_from_str("vv"));
  wbatch_delete(b, slice_from_str("xy"));
  static const uint8_t want[] = {0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, /* seq */
                                 2,    0,    0,    0,                   /* count */
                                 1,    1,    'k',  2,    'v',  'v',     /* put */
                                 0,    2,    'x',  'y'};                /* delete */
  slice d = wbatch_data(b);
  CU_ASSERT_EQUAL_FATAL(d.len, sizeof(want));
  CU_ASSERT(memcmp(d.data, want, sizeof(want)) == 0);
  CU_ASSERT_EQUAL(wbatch_byte_size(b), sizeof(want));
  wbatch_free(b);
}

static void test_round_trip(void) {
  for (int round = 0; round < 50; round++) {
    collected model;
    wbatch *b = random_batch(tu_rand_below(200), &model);
    check_same(b, &model);
    CU_ASSERT_EQUAL(wbatch_byte_size(b), wbatch_data(b).len);
    wbatch *c = wbatch_new();
    wbatch_put(c, slice_from_str("stale"), slice_from_str("contents"));
    TU_OK(wbatch_decode(c, wbatch_data(b)));
    CU_ASSERT_EQUAL(wbatch_seq(c), wbatch_seq(b));
    CU_ASSERT_EQUAL(wbatch_byte_size(c), wbatch_byte_size(b));
    check_same(c, &model);
    wbatch_free(b);
    wbatch_free(c);
    collected_free(&model);
  }
}

static void test_clear_and_append(void) {
  collected m1, m2;
  wbatch *a = random_batch(30, &m1);
  wbatch *b = random_batch(20, &m2);
  size_t sa = wbatch_byte_size(a), sb = wbatch_byte_size(b);
  wbatch_append(a, b);
  CU_ASSERT_EQUAL(wbatch_count(a), 50);
  CU_ASSERT_EQUAL(wbatch_byte_size(a), sa + sb - WBATCH_HEADER);
  /* b's entries now follow a's, numbered from a's seq. */
  for (size_t i = 0; i < m2.n; i++) {
    collect(&m1, m1.e[0].seq + 30 + i, m2.e[i].kind, buf_slice(&m2.e[i].key),
            buf_slice(&m2.e[i].value));
  }
  check_same(a, &m1);
  wbatch_clear(a);
  CU_ASSERT_EQUAL(wbatch_count(a), 0);
  CU_ASSERT_EQUAL(wbatch_seq(a), 0);
  CU_ASSERT_EQUAL(wbatch_byte_size(a), WBATCH_HEADER);
  wbatch_put(a, slice_from_str("a"), slice_from_str("b"));
  CU_ASSERT_EQUAL(wbatch_count(a), 1);
  wbatch_free(a);
  wbatch_free(b);
  collected_free(&m1);
  collected_free(&m2);
}

static void test_iterate_stops_on_error(void) {
  collected model;
  wbatch *b = random_batch(10, &model);
  collected got = {.stop_at = 4};
  TU_ERR(wbatch_iterate(b, collect, &got), MICA_ABORTED);
  CU_ASSERT_EQUAL(got.n, 4);
  collected_free(&got);
  collected_free(&model);
  wbatch_free(b);
}

/* Decoding must fail with CORRUPTION, mention an offset where one makes
 * sense, and leave the batch empty. */
static void expect_corrupt(slice data, const char *needle) {
  wbatch *b = wbatch_new();
  wbatch_put(b, slice_from_str("old"), slice_from_str("entry"));
  mica_err *e = wbatch_decode(b, data);
  CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
  if (needle != NULL && strstr(err_msg(e), needle) == NULL) {
    fprintf(stderr, "\nmessage \"%s\" lacks \"%s\"\n", err_msg(e), needle);
    CU_FAIL("error message");
  }
  err_free(e);
  CU_ASSERT_EQUAL(wbatch_count(b), 0);
  CU_ASSERT_EQUAL(wbatch_byte_size(b), WBATCH_HEADER);
  wbatch_free(b);
}

static void test_truncated_everywhere(void) {
  collected model;
  wbatch *b = random_batch(25, &model);
  slice d = wbatch_data(b);
  for (size_t len = 0; len < d.len; len++)
    expect_corrupt(slice_make(d.data, len), len < WBATCH_HEADER ? "header" : "offset");
  /* One trailing byte too many. */
  buf longer = BUF_INIT;
  buf_append_slice(&longer, d);
  buf_push(&longer, 0);
  expect_corrupt(buf_slice(&longer), "trailing");
  buf_free(&longer);
  collected_free(&model);
  wbatch_free(b);
}

static void test_bad_count(void) {
  wbatch *b = wbatch_new();
  for (int i = 0; i < 5; i++) wbatch_put(b, slice_from_str("key"), slice_from_str("val"));
  buf d = BUF_INIT;
  buf_append_slice(&d, wbatch_data(b));
  uint32_t counts[] = {0, 4, 6, 1000, UINT32_MAX};
  for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
    encode_fixed32(d.data + 8, counts[i]);
    expect_corrupt(buf_slice(&d), "offset");
  }
  encode_fixed32(d.data + 8, 5);
  wbatch *c = wbatch_new();
  TU_OK(wbatch_decode(c, buf_slice(&d)));
  CU_ASSERT_EQUAL(wbatch_count(c), 5);
  wbatch_free(c);
  buf_free(&d);
  wbatch_free(b);
}

static void test_bad_kind(void) {
  wbatch *b = wbatch_new();
  wbatch_put(b, slice_from_str("a"), slice_from_str("1"));
  wbatch_delete(b, slice_from_str("b"));
  buf d = BUF_INIT;
  buf_append_slice(&d, wbatch_data(b));
  /* First entry's kind is at 12; second's at 12 + 1 + 2 + 2 = 17. */
  size_t at[] = {12, 17};
  uint8_t kinds[] = {2, 7, 0x80, 0xff};
  for (size_t i = 0; i < 2; i++) {
    for (size_t k = 0; k < sizeof(kinds); k++) {
      uint8_t saved = d.data[at[i]];
      d.data[at[i]] = kinds[k];
      char needle[64];
      snprintf(needle, sizeof(needle), "offset %zu has unknown kind %u", at[i], kinds[k]);
      expect_corrupt(buf_slice(&d), needle);
      d.data[at[i]] = saved;
    }
  }
  buf_free(&d);
  wbatch_free(b);
}

static void test_length_past_end(void) {
  wbatch *b = wbatch_new();
  wbatch_put(b, slice_from_str("key"), slice_from_str("value"));
  buf d = BUF_INIT;
  buf_append_slice(&d, wbatch_data(b));
  /* Key length byte at 13, value length byte at 17. */
  d.data[13] = 100;
  expect_corrupt(buf_slice(&d), "key length 100 at offset 13 runs past the end");
  d.data[13] = 3;
  d.data[17] = 6;
  expect_corrupt(buf_slice(&d), "value length 6 at offset 17 runs past the end");
  d.data[17] = 5;
  /* A varint that never ends, and one too long for 32 bits. */
  buf bad = BUF_INIT;
  buf_append(&bad, d.data, 13);
  static const uint8_t never[] = {0x80, 0x80, 0x80};
  buf_append(&bad, never, sizeof(never));
  expect_corrupt(buf_slice(&bad), "key length at offset 13");
  buf_clear(&bad);
  buf_append(&bad, d.data, 13);
  static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'k'};
  buf_append(&bad, huge, sizeof(huge));
  expect_corrupt(buf_slice(&bad), "offset 13");
  buf_free(&bad);
  wbatch *c = wbatch_new();
  TU_OK(wbatch_decode(c, buf_slice(&d)));
  wbatch_free(c);
  buf_free(&d);
  wbatch_free(b);
}

/* Random byte damage must never crash the decoder, and whatever it accepts
 * must iterate cleanly with the announced count. */
static void test_random_damage(void) {
  collected model;
  wbatch *b = random_batch(40, &model);
  buf d = BUF_INIT;
  wbatch *c = wbatch_new();
  for (int round = 0; round < 3000; round++) {
    buf_clear(&d);
    buf_append_slice(&d, wbatch_data(b));
    int flips = 1 + (int)tu_rand_below(4);
    for (int f = 0; f < flips; f++) d.data[tu_rand_below(d.len)] ^= (uint8_t)(1 + tu_rand_below(255));
    mica_err *e = wbatch_decode(c, slice_make(d.data, tu_rand_below(d.len + 1)));
    if (e == NULL) {
      collected got = {.stop_at = SIZE_MAX};
      TU_OK(wbatch_iterate(c, collect, &got));
      CU_ASSERT_EQUAL(got.n, wbatch_count(c));
      collected_free(&got);
    } else {
      CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
      err_free(e);
    }
  }
  wbatch_free(c);
  buf_free(&d);
  collected_free(&model);
  wbatch_free(b);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"empty", test_empty},
      {"layout", test_layout},
      {"round_trip", test_round_trip},
      {"clear_and_append", test_clear_and_append},
      {"iterate_stops_on_error", test_iterate_stops_on_error},
      {"truncated_everywhere", test_truncated_everywhere},
      {"bad_count", test_bad_count},
      {"bad_kind", test_bad_kind},
      {"length_past_end", test_length_past_end},
      {"random_damage", test_random_damage},
      CU_TEST_INFO_NULL,
  };
  tu_add_suite("wbatch", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
