/* test_common_basics: the small pure pieces of common/ — status codes and
 * errors, integer coding, CRC32C, slices and escaping, the arena and the
 * internal key — each at its boundaries and against its failure cases. */
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/coding.h"
#include "common/crc32c.h"
#include "common/crc32c_internal.h"
#include "common/err.h"
#include "common/ikey.h"
#include "common/slice.h"
#include "tests/harness/testutil.h"

/* ---- status and err ---- */

static void test_status_names(void) {
  for (int c = 0; c < MICA_CODE_COUNT_; c++) {
    const char *name = mica_code_name(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
    CU_ASSERT(strlen(name) > 0);
    CU_ASSERT_STRING_NOT_EQUAL(name, "UNKNOWN");
    CU_ASSERT(strlen(mica_code_message(c)) > 0);
    /* Names are distinct. */
    for (int d = 0; d < c; d++)
      CU_ASSERT_STRING_NOT_EQUAL(name, mica_code_name(d));
  }
  CU_ASSERT_STRING_EQUAL(mica_code_name(MICA_NOT_FOUND), "NOT_FOUND");
  CU_ASSERT_STRING_EQUAL(mica_code_name(MICA_OUT_OF_RANGE), "OUT_OF_RANGE");
  CU_ASSERT_STRING_EQUAL(mica_code_message(MICA_NOT_FOUND), "not found");
  CU_ASSERT_STRING_EQUAL(mica_code_name(MICA_CODE_COUNT_), "UNKNOWN");
  CU_ASSERT_STRING_EQUAL(mica_code_name(-1), "UNKNOWN");
  CU_ASSERT_STRING_EQUAL(mica_code_name(100000), "UNKNOWN");
}

static void test_err(void) {
  CU_ASSERT_EQUAL(err_code(NULL), MICA_OK);
  CU_ASSERT_STRING_EQUAL(err_msg(NULL), "ok");
  err_free(NULL);

  mica_err *e = err_new(MICA_CORRUPTION, "block at %d bad", 4096);
  CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
  CU_ASSERT_STRING_EQUAL(err_msg(e), "block at 4096 bad");
  e = err_wrap(e, "sst %s", "000007.sst");
  CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
  CU_ASSERT_STRING_EQUAL(err_msg(e), "sst 000007.sst: block at 4096 bad");
  mica_err *d = err_dup(e);
  CU_ASSERT_PTR_NOT_EQUAL(d, e);
  CU_ASSERT_EQUAL(err_code(d), MICA_CORRUPTION);
  CU_ASSERT_STRING_EQUAL(err_msg(d), err_msg(e));
  err_free(e);
  CU_ASSERT_EQUAL(err_take_code(d), MICA_CORRUPTION);

  CU_ASSERT_PTR_NULL(err_wrap(NULL, "context"));
  CU_ASSERT_PTR_NULL(err_dup(NULL));
  /* MICA_OK is not an error code; it must not yield a "successful" error. */
  e = err_new(MICA_OK, "x");
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  err_free(e);
}

/* ---- coding ---- */

static void test_fixed(void) {
  uint64_t vals[] = {0, 1, 127, 128, 255, 256, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                     UINT64_MAX};
  buf b = BUF_INIT;
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    buf_clear(&b);
    put_fixed32(&b, (uint32_t)vals[i]);
    put_fixed64(&b, vals[i]);
    CU_ASSERT_EQUAL_FATAL(b.len, 12);
    CU_ASSERT_EQUAL(decode_fixed32(b.data), (uint32_t)vals[i]);
    CU_ASSERT_EQUAL(decode_fixed64(b.data + 4), vals[i]);
  }
  /* Little-endian on the wire whatever the host. */
  buf_clear(&b);
  put_fixed32(&b, 0x04030201u);
  CU_ASSERT(b.data[0] == 1 && b.data[1] == 2 && b.data[2] == 3 && b.data[3] == 4);
  buf_free(&b);
}

static void test_varint(void) {
  uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX,
                     (uint64_t)UINT32_MAX + 1, UINT64_MAX - 1, UINT64_MAX};
  int lens[] = {1, 1, 1, 2, 2, 3, 5, 5, 10, 10};
  buf b = BUF_INIT;
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    buf_clear(&b);
    put_varint64(&b, vals[i]);
    CU_ASSERT_EQUAL(b.len, (size_t)lens[i]);
    CU_ASSERT_EQUAL(varint_length(vals[i]), lens[i]);
    uint64_t v = 12345;
    const uint8_t *end = get_varint64(b.data, b.data + b.len, &v);
    CU_ASSERT_PTR_EQUAL(end, b.data + b.len);
    CU_ASSERT_EQUAL(v, vals[i]);
    /* Every truncation fails. */
    for (size_t cut = 0; cut < b.len; cut++)
      CU_ASSERT_PTR_NULL(get_varint64(b.data, b.data + cut, &v));
    uint32_t v32;
    end = get_varint32(b.data, b.data + b.len, &v32);
    if (vals[i] <= UINT32_MAX) {
      CU_ASSERT_PTR_EQUAL(end, b.data + b.len);
      CU_ASSERT_EQUAL(v32, (uint32_t)vals[i]);
    } else {
      CU_ASSERT_PTR_NULL(end);
    }
  }
  /* Random round trips of many values back to back. */
  buf_clear(&b);
  uint64_t rv[1000];
  for (int i = 0; i < 1000; i++) {
    rv[i] = tu_rand() >> tu_rand_below(64);
    put_varint64(&b, rv[i]);
  }
  const uint8_t *p = b.data, *limit = b.data + b.len;
  for (int i = 0; i < 1000; i++) {
    uint64_t v;
    p = get_varint64(p, limit, &v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(v, rv[i]);
  }
  CU_ASSERT_PTR_EQUAL(p, limit);

  /* Overlong: 11 bytes of continuation, and a 10th byte that overflows. */
  uint8_t over[11];
  memset(over, 0x80, 10);
  over[10] = 0x00;
  uint64_t v;
  CU_ASSERT_PTR_NULL(get_varint64(over, over + 11, &v));
  memset(over, 0xff, 9);
  over[9] = 0x02;
  CU_ASSERT_PTR_NULL(get_varint64(over, over + 10, &v));
  over[9] = 0x01;
  CU_ASSERT_PTR_EQUAL(get_varint64(over, over + 10, &v), over + 10);
  CU_ASSERT_EQUAL(v, UINT64_MAX);
  buf_free(&b);
}

static void test_length_prefixed(void) {
  buf b = BUF_INIT;
  put_length_prefixed(&b, slice_from_str("hello"));
  put_length_prefixed(&b, slice_make("", 0));
  slice s;
  const uint8_t *p = get_length_prefixed(b.data, b.data + b.len, &s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT(slice_eq(s, slice_from_str("hello")));
  p = get_length_prefixed(p, b.data + b.len, &s);
  CU_ASSERT_PTR_EQUAL(p, b.data + b.len);
  CU_ASSERT_EQUAL(s.len, 0);
  /* The length claims more bytes than the limit allows. */
  for (size_t cut = 0; cut < 6; cut++)
    CU_ASSERT_PTR_NULL(get_length_prefixed(b.data, b.data + cut, &s));
  buf_clear(&b);
  put_varint32(&b, UINT32_MAX);
  buf_append(&b, "abc", 3);
  CU_ASSERT_PTR_NULL(get_length_prefixed(b.data, b.data + b.len, &s));
  buf_free(&b);
}

/* ---- crc32c ---- */

static void test_crc_vectors(void) {
  CU_ASSERT_EQUAL(crc32c_value("123456789", 9), 0xe3069283u);
  uint8_t z[32], f[32], inc[32];
  memset(z, 0, 32);
  memset(f, 0xff, 32);
  for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
  CU_ASSERT_EQUAL(crc32c_value(z, 32), 0x8a9136aau);
  CU_ASSERT_EQUAL(crc32c_value(f, 32), 0x62a8ab43u);
  CU_ASSERT_EQUAL(crc32c_value(inc, 32), 0x46dd794eu);
  CU_ASSERT_EQUAL(crc32c_extend_portable(0, "123456789", 9), 0xe3069283u);
  CU_ASSERT_EQUAL(crc32c_extend_portable(0, z, 32), 0x8a9136aau);
  CU_ASSERT_EQUAL(crc32c_extend_portable(0, f, 32), 0x62a8ab43u);
  CU_ASSERT_EQUAL(crc32c_value("", 0), 0);
}

static void test_crc_extend_and_mask(void) {
  uint8_t data[300];
  tu_rand_bytes(data, sizeof(data));
  uint32_t whole = crc32c_value(data, sizeof(data));
  for (size_t split = 0; split <= sizeof(data); split += 7) {
    uint32_t c = crc32c_extend(crc32c_value(data, split), data + split,
                               sizeof(data) - split);
    CU_ASSERT_EQUAL(c, whole);
  }
  CU_ASSERT_EQUAL(crc32c_extend(crc32c_value("hello ", 6), "world", 5),
                  crc32c_value("hello world", 11));
  for (int i = 0; i < 1000; i++) {
    uint32_t c = (uint32_t)tu_rand();
    CU_ASSERT_NOT_EQUAL(crc32c_mask(c), c);
    CU_ASSERT_EQUAL(crc32c_unmask(crc32c_mask(c)), c);
    CU_ASSERT_NOT_EQUAL(crc32c_mask(crc32c_mask(c)), crc32c_mask(c));
  }
}

/* Lengths up to 20000 reach both stretch lengths of the three-chain
 * hardware path (768 and 6144 bytes) and every remainder after them. */
static void test_crc_hw_equals_table(void) {
  uint8_t *data = xmalloc(20000 + 16);
  for (int i = 0; i < 2000; i++) {
    size_t off = tu_rand_below(16), n = tu_rand_below(20001);
    tu_rand_bytes(data + off, n);
    uint32_t seed = (uint32_t)tu_rand();
    CU_ASSERT_EQUAL_FATAL(crc32c_extend(seed, data + off, n),
                          crc32c_extend_portable(seed, data + off, n));
  }
  free(data);
  fprintf(stderr, "[crc32c hardware path: %s] ", crc32c_hardware() ? "yes" : "no");
}

/* ---- slice ---- */

static void test_escape_roundtrip(void) {
  uint8_t all[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  buf esc = BUF_INIT, back = BUF_INIT;
  slice_escape(slice_make(all, 256), &esc);
  CU_ASSERT_EQUAL(strlen((char *)esc.data), esc.len);
  for (size_t i = 0; i < esc.len; i++)
    CU_ASSERT(esc.data[i] >= 0x20 && esc.data[i] < 0x7f);
  CU_ASSERT_TRUE(slice_unescape((char *)esc.data, &back));
  CU_ASSERT_EQUAL_FATAL(back.len, 256);
  CU_ASSERT_EQUAL(memcmp(back.data, all, 256), 0);
  /* Random binary strings too. */
  for (int i = 0; i < 200; i++) {
    uint8_t r[64];
    size_t n = tu_rand_below(65);
    tu_rand_bytes(r, n);
    buf_clear(&esc);
    buf_clear(&back);
    slice_escape(slice_make(r, n), &esc);
    CU_ASSERT_TRUE(slice_unescape((char *)esc.data, &back));
    CU_ASSERT(slice_eq(buf_slice(&back), slice_make(r, n)));
  }
  buf_clear(&back);
  CU_ASSERT_TRUE(slice_unescape("a\\\\b\\n\\t\\0\\x41\\xfF", &back));
  CU_ASSERT(slice_eq(buf_slice(&back), slice_make("a\\b\n\t\0A\xff", 8)));
  buf_free(&esc);
  buf_free(&back);
}

static void test_unescape_malformed(void) {
  const char *bad[] = {"\\", "abc\\", "\\x", "\\x4", "\\xg0", "\\x0g",
                       "\\q", "ok\\x4", "\\X41"};
  buf out = BUF_INIT;
  buf_append(&out, "keep", 4);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_FALSE(slice_unescape(bad[i], &out));
    CU_ASSERT_EQUAL(out.len, 4); /* unchanged */
  }
  CU_ASSERT_EQUAL(memcmp(out.data, "keep", 4), 0);
  buf_free(&out);
}

static void test_slice_cmp(void) {
  slice a = slice_make("\x01", 1), b = slice_make("\xff", 1);
  CU_ASSERT(slice_cmp(a, b) < 0); /* unsigned: 0xff is largest */
  CU_ASSERT(slice_cmp(b, a) > 0);
  CU_ASSERT(slice_cmp(slice_make("ab", 2), slice_make("abc", 3)) < 0);
  CU_ASSERT(slice_cmp(slice_make("abc", 3), slice_make("ab", 2)) > 0);
  CU_ASSERT(slice_cmp(slice_make("", 0), slice_make("\0", 1)) < 0);
  CU_ASSERT(slice_cmp(slice_make(NULL, 0), slice_make("", 0)) == 0);
  CU_ASSERT(slice_cmp(slice_make("a\0b", 3), slice_make("a\0c", 3)) < 0);
  CU_ASSERT(slice_cmp(slice_make("abc", 3), slice_make("abc", 3)) == 0);
  CU_ASSERT_TRUE(slice_eq(slice_make(NULL, 0), slice_make("", 0)));
  CU_ASSERT_TRUE(slice_starts_with(slice_make("abc", 3), slice_make("ab", 2)));
  CU_ASSERT_FALSE(slice_starts_with(slice_make("ab", 2), slice_make("abc", 3)));
  CU_ASSERT_TRUE(slice_starts_with(slice_make("ab", 2), slice_make(NULL, 0)));
}

static void test_buf(void) {
  buf b = BUF_INIT;
  for (int i = 0; i < 10000; i++) buf_push(&b, (uint8_t)i);
  CU_ASSERT_EQUAL(b.len, 10000);
  CU_ASSERT(b.cap >= b.len);
  for (int i = 0; i < 10000; i++) CU_ASSERT_EQUAL_FATAL(b.data[i], (uint8_t)i);
  buf_resize(&b, 20000);
  CU_ASSERT_EQUAL(b.data[19999], 0);
  buf_resize(&b, 3);
  CU_ASSERT_EQUAL(b.len, 3);
  buf_free(&b);
  CU_ASSERT_PTR_NULL(b.data);
  CU_ASSERT_EQUAL(b.len, 0);
}

/* ---- arena ---- */

static void test_arena(void) {
  arena *a = arena_new();
  size_t last = arena_memory_usage(a);
  enum { N = 20000 };
  uint8_t **ptrs = xmalloc(N * sizeof(*ptrs));
  size_t *lens = xmalloc(N * sizeof(*lens));
  for (int i = 0; i < N; i++) {
    size_t n = tu_rand_below(8) == 0 ? tu_rand_below(6000) : tu_rand_below(100);
    bool aligned = tu_rand_below(2);
    ptrs[i] = aligned ? arena_alloc_aligned(a, n) : arena_alloc(a, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ptrs[i]);
    if (aligned) CU_ASSERT_EQUAL((uintptr_t)ptrs[i] % 8, 0);
    lens[i] = n;
    memset(ptrs[i], i & 0xff, n);
    size_t u = arena_memory_usage(a);
    CU_ASSERT(u >= last);
    last = u;
  }
  /* Nothing overlapped: every allocation still holds its own pattern. */
  for (int i = 0; i < N; i++)
    for (size_t k = 0; k < lens[i]; k++)
      if (ptrs[i][k] != (uint8_t)(i & 0xff)) {
        CU_FAIL("arena allocation overwritten");
        i = N;
        break;
      }
  size_t total = 0;
  for (int i = 0; i < N; i++) total += lens[i];
  CU_ASSERT(arena_memory_usage(a) >= total);
  free(ptrs);
  free(lens);
  arena_free(a);
  arena_free(NULL);
}

/* ---- ikey ---- */

static void ik(buf *b, const char *user, uint64_t seq, uint8_t kind) {
  buf_clear(b);
  ikey_append(b, slice_from_str(user), seq, kind);
}

static void test_ikey_order(void) {
  buf a = BUF_INIT, b = BUF_INIT;
  ik(&a, "a", 5, IKEY_PUT);
  ik(&b, "b", 1, IKEY_PUT);
  CU_ASSERT(ikey_cmp(buf_slice(&a), buf_slice(&b)) < 0);
  ik(&b, "a", 4, IKEY_PUT);
  CU_ASSERT(ikey_cmp(buf_slice(&a), buf_slice(&b)) < 0); /* newer first */
  ik(&b, "a", 5, IKEY_DELETE);
  CU_ASSERT(ikey_cmp(buf_slice(&a), buf_slice(&b)) < 0); /* put before delete */
  ik(&b, "a", 5, IKEY_PUT);
  CU_ASSERT(ikey_cmp(buf_slice(&a), buf_slice(&b)) == 0);
  ik(&b, "", IKEY_MAX_SEQ, IKEY_PUT);
  CU_ASSERT(ikey_cmp(buf_slice(&b), buf_slice(&a)) < 0);
  /* A user key that is a prefix sorts first whatever the sequence. */
  ik(&a, "ab", IKEY_MAX_SEQ, IKEY_PUT);
  ik(&b, "a", 0, IKEY_DELETE);
  CU_ASSERT(ikey_cmp(buf_slice(&b), buf_slice(&a)) < 0);

  ikey_parts p;
  ik(&a, "key", IKEY_MAX_SEQ, IKEY_DELETE);
  CU_ASSERT_TRUE_FATAL(ikey_parse(buf_slice(&a), &p));
  CU_ASSERT(slice_eq(p.user_key, slice_from_str("key")));
  CU_ASSERT_EQUAL(p.seq, IKEY_MAX_SEQ);
  CU_ASSERT_EQUAL(p.kind, IKEY_DELETE);
  CU_ASSERT_FALSE(ikey_parse(slice_make(a.data, 7), &p));
  CU_ASSERT_FALSE(ikey_parse(slice_make(NULL, 0), &p));
  ik(&a, "k", 9, 2); /* reserved kind */
  CU_ASSERT_FALSE(ikey_parse(buf_slice(&a), &p));
  ik(&a, "k", 9, 0xff);
  CU_ASSERT_FALSE(ikey_parse(buf_slice(&a), &p));
  ik(&a, "", 0, IKEY_PUT);
  CU_ASSERT_TRUE(ikey_parse(buf_slice(&a), &p));
  CU_ASSERT_EQUAL(p.user_key.len, 0);
  buf_free(&a);
  buf_free(&b);
}

static void rand_ikey(buf *b) {
  static const uint8_t alphabet[] = {0x00, 0x01, 'a', 'b', 'c', 0xfe, 0xff};
  buf_clear(b);
  uint8_t u[12];
  size_t n = tu_rand_below(sizeof(u) + 1);
  for (size_t i = 0; i < n; i++)
    u[i] = tu_rand_below(4) ? alphabet[tu_rand_below(sizeof(alphabet))]
                            : (uint8_t)tu_rand();
  ikey_append(b, slice_make(u, n), tu_rand_below(4) ? tu_rand_below(10)
                                                   : tu_rand() & IKEY_MAX_SEQ,
              (uint8_t)tu_rand_below(2));
}

static void test_ikey_separator(void) {
  buf a = BUF_INIT, b = BUF_INIT, sep = BUF_INIT;
  int shortened = 0;
  for (int i = 0; i < 20000; i++) {
    rand_ikey(&a);
    rand_ikey(&b);
    int c = ikey_cmp(buf_slice(&a), buf_slice(&b));
    if (c == 0) continue;
    if (c > 0) {
      buf t = a;
      a = b;
      b = t;
    }
    buf_clear(&sep);
    ikey_separator(buf_slice(&a), buf_slice(&b), &sep);
    ikey_parts p;
    CU_ASSERT_TRUE_FATAL(ikey_parse(buf_slice(&sep), &p));
    CU_ASSERT_FATAL(ikey_cmp(buf_slice(&a), buf_slice(&sep)) <= 0);
    CU_ASSERT_FATAL(ikey_cmp(buf_slice(&sep), buf_slice(&b)) < 0);
    CU_ASSERT(sep.len <= a.len);
    if (sep.len < a.len) shortened++;

    buf_clear(&sep);
    ikey_separator(buf_slice(&a), slice_make(NULL, 0), &sep);
    CU_ASSERT_TRUE_FATAL(ikey_parse(buf_slice(&sep), &p));
    CU_ASSERT_FATAL(ikey_cmp(buf_slice(&a), buf_slice(&sep)) <= 0);
    CU_ASSERT(sep.len <= a.len);
  }
  CU_ASSERT(shortened > 0); /* it does shorten when it can */
  /* Appends: whatever was in `out` stays. */
  ik(&a, "apple", 3, IKEY_PUT);
  ik(&b, "cherry", 3, IKEY_PUT);
  buf_clear(&sep);
  buf_append(&sep, "XY", 2);
  ikey_separator(buf_slice(&a), buf_slice(&b), &sep);
  CU_ASSERT_EQUAL(memcmp(sep.data, "XY", 2), 0);
  CU_ASSERT_EQUAL(sep.len, 2 + 1 + IKEY_TRAILER); /* user key "b" */
  CU_ASSERT_EQUAL(sep.data[2], 'b');
  buf_free(&a);
  buf_free(&b);
  buf_free(&sep);
}

static CU_TestInfo status_tests[] = {
    {"names and messages", test_status_names},
    {"err new/wrap/dup", test_err},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo coding_tests[] = {
    {"fixed", test_fixed},
    {"varint", test_varint},
    {"length prefixed", test_length_prefixed},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo crc_tests[] = {
    {"known vectors", test_crc_vectors},
    {"extend and mask", test_crc_extend_and_mask},
    {"hardware equals table", test_crc_hw_equals_table},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo slice_tests[] = {
    {"escape round trip", test_escape_roundtrip},
    {"malformed escapes", test_unescape_malformed},
    {"compare", test_slice_cmp},
    {"buf", test_buf},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo arena_tests[] = {
    {"random allocations", test_arena},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo ikey_tests[] = {
    {"order and parse", test_ikey_order},
    {"separator", test_ikey_separator},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) {
  tu_add_suite("status", status_tests);
  tu_add_suite("coding", coding_tests);
  tu_add_suite("crc32c", crc_tests);
  tu_add_suite("slice", slice_tests);
  tu_add_suite("arena", arena_tests);
  tu_add_suite("ikey", ikey_tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
