/* test_mjson: the strict JSON reader of the `mica` CLI (tools/mica/mjson.h).
 *
 * Valid documents decode to the right tree (escapes, surrogate pairs, NUL
 * inside strings, numbers); every kind of malformed text is refused with a
 * message naming an offset (cut short, trailing garbage, bad literals,
 * numbers outside the grammar, control bytes, bad escapes, lone surrogates,
 * invalid UTF-8, repeated or NUL-holding member names, nesting past the
 * limit); and random bytes, every truncation and random corruptions of a
 * real /api answer never crash or leak (run under ASan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"
#include "tests/harness/testutil.h"
#include "tools/mica/mjson.h"

static mj_val *parse(const char *s) {
  char why[200];
  return mj_parse(s, strlen(s), why, sizeof why);
}

/* Asserts that `len` bytes of `s` are refused with an offset message. */
static void refuse_n(const char *s, size_t len) {
  char why[200] = "unset";
  mj_val *v = mj_parse(s, len, why, sizeof why);
  if (v != NULL) fprintf(stderr, "\naccepted: %.*s\n", (int)len, s);
  CU_ASSERT_PTR_NULL(v);
  CU_ASSERT_PTR_NOT_NULL(strstr(why, "offset "));
  mj_free(v);
}

static void refuse(const char *s) { refuse_n(s, strlen(s)); }

static void test_valid(void) {
  mj_val *v = parse(" {\"a\": [1, -2.5e1, 0, true, false, null, \"x\"],\n"
                    "  \"b\": {}, \"c\": [], \"\": \"empty name\"} ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  CU_ASSERT_EQUAL(v->type, MJ_OBJECT);
  CU_ASSERT_EQUAL(v->len, 4);
  const mj_val *a = mj_get(v, "a");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL(a->type, MJ_ARRAY);
  CU_ASSERT_EQUAL_FATAL(a->len, 7);
  CU_ASSERT_EQUAL(a->items[0]->number, 1);
  CU_ASSERT_EQUAL(a->items[1]->number, -25);
  CU_ASSERT_EQUAL(a->items[3]->type, MJ_BOOL);
  CU_ASSERT(a->items[3]->boolean);
  CU_ASSERT(!a->items[4]->boolean);
  CU_ASSERT_EQUAL(a->items[5]->type, MJ_NULL);
  CU_ASSERT_STRING_EQUAL(a->items[6]->str, "x");
  CU_ASSERT_EQUAL(mj_get(v, "b")->type, MJ_OBJECT);
  CU_ASSERT_EQUAL(mj_get(v, "c")->len, 0);
  CU_ASSERT_STRING_EQUAL(mj_get(v, "")->str, "empty name");
  CU_ASSERT_PTR_NULL(mj_get(v, "missing"));
  CU_ASSERT_PTR_NULL(mj_get(a, "a")); /* not an object */
  CU_ASSERT_PTR_NULL(mj_get(NULL, "a"));
  mj_free(v);

  /* Escapes: the two-character ones, \u in all UTF-8 lengths, a pair,
   * and \u0000 kept inside the string with its length. */
  v = parse("\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t|\\u0041\\u00e9\\u20ac\\ud83d\\ude00|\\u0000z\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  const char want[] = "q\"b\\s/\b\f\n\r\t|A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\0z";
  CU_ASSERT_EQUAL(v->len, sizeof want - 1);
  CU_ASSERT(memcmp(v->str, want, sizeof want - 1) == 0);
  CU_ASSERT_EQUAL(v->str[v->len], '\0');
  mj_free(v);

  /* Raw UTF-8 of every length passes through. */
  v = parse("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  CU_ASSERT_EQUAL(v->len, 9);
  mj_free(v);

  /* Scalars at the top level are JSON texts too. */
  v = parse("0");
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  CU_ASSERT_EQUAL(v->type, MJ_NUMBER);
  mj_free(v);
}

static void test_u64(void) {
  static const struct {
    const char *text;
    bool ok;
    uint64_t want;
  } cases[] = {{"0", true, 0},
               {"42", true, 42},
               {"1e3", true, 1000},
               {"9007199254740992", true, 9007199254740992ull},
               {"9007199254740994", false, 0},
               {"1.5", false, 0},
               {"-1", false, 0},
               {"-0", true, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mj_val *v = parse(cases[i].text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    uint64_t u = 12345;
    bool ok = mj_u64(v, &u);
    if (ok != cases[i].ok) fprintf(stderr, "\nmj_u64(%s) = %d\n", cases[i].text, ok);
    CU_ASSERT_EQUAL(ok, cases[i].ok);
    if (ok) CU_ASSERT_EQUAL(u, cases[i].want);
    mj_free(v);
  }
  mj_val *s = parse("\"7\"");
  uint64_t u;
  CU_ASSERT(!mj_u64(s, &u));
  CU_ASSERT(!mj_u64(NULL, &u));
  mj_free(s);
}

static void test_refused(void) {
  static const char *const bad[] = {
      "", " ", "{", "}", "[", "[1,]", "[,1]", "[1 2]", "{\"a\":1,}", "{\"a\" 1}",
      "{a:1}", "{\"a\":}", "{1:2}", "[1] x", "[1][2]", "nul", "tru", "falsey",
      "True", "NaN", "Infinity", "-Infinity", "01", "-01", "1.", ".5", "-", "+1",
      "1e", "1e+", "0x10", "1e999", "-1e999", "\"abc", "\"a\\\"", "\"\\x41\"",
      "\"\\'\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"", "\"\\ud800x\"",
      "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"tab\there\"", "\"nl\nhere\"",
      "\"\xff\"", "\"\xc0\x80\"", "\"\xc3\"", "\"\xe2\x82\"", "\"\xed\xa0\x80\"",
      "\"\xf4\x90\x80\x80\"", "\"\x80\"", "\xef\xbb\xbf{}", "{\"a\":1,\"a\":2}",
      "{\"a\\u0000b\":1}", "/* c */ {}", "{} // c", "'x'"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) refuse(bad[i]);
  /* A NUL byte outside strings, and inside a string raw. */
  refuse_n("[1]\0", 4);
  refuse_n("\"a\0b\"", 5);
  /* A NULL or zero-sized message buffer is allowed. */
  CU_ASSERT_PTR_NULL(mj_parse("[", 1, NULL, 0));
}

static void test_depth_and_size(void) {
  char deep[2 * MJ_MAX_DEPTH + 8];
  size_t n = 0;
  for (int i = 0; i < MJ_MAX_DEPTH; i++) deep[n++] = '[';
  for (int i = 0; i < MJ_MAX_DEPTH; i++) deep[n++] = ']';
  mj_val *v = mj_parse(deep, n, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL(v);
  mj_free(v);
  n = 0;
  for (int i = 0; i <= MJ_MAX_DEPTH; i++) deep[n++] = '[';
  for (int i = 0; i <= MJ_MAX_DEPTH; i++) deep[n++] = ']';
  refuse_n(deep, n);

  /* A very deep text is refused at the limit, without recursing further. */
  size_t big = 1 << 20;
  char *t = malloc(big);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  memset(t, '[', big);
  refuse_n(t, big);
  memset(t, '{', big);
  refuse_n(t, big);

  /* Objects hold at most MJ_MAX_MEMBERS members. */
  buf b = BUF_INIT;
  for (int pass = 0; pass < 2; pass++) {
    buf_clear(&b);
    buf_push(&b, '{');
    int members = MJ_MAX_MEMBERS + pass;
    for (int i = 0; i < members; i++) {
      char m[32];
      int k = snprintf(m, sizeof m, "%s\"k%d\":%d", i ? "," : "", i, i);
      buf_append(&b, m, (size_t)k);
    }
    buf_push(&b, '}');
    v = mj_parse((const char *)b.data, b.len, NULL, 0);
    if (pass == 0) {
      CU_ASSERT_PTR_NOT_NULL(v);
      if (v) CU_ASSERT_EQUAL(v->len, MJ_MAX_MEMBERS);
    } else {
      CU_ASSERT_PTR_NULL(v);
    }
    mj_free(v);
  }
  buf_free(&b);
  /* A long array is fine. */
  memset(t, ' ', big);
  t[0] = '[';
  size_t k = 1;
  for (int i = 0; i < 100000; i++) {
    t[k++] = '1';
    t[k++] = ',';
  }
  t[k - 1] = ']';
  v = mj_parse(t, k, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL(v);
  if (v) CU_ASSERT_EQUAL(v->len, 100000);
  mj_free(v);
  free(t);
}

/* A real /api/servers answer of the shape docs/http-api.md gives. */
static const char g_sample[] =
    "{\"servers\": [{\"id\": 1, \"address\": \"127.0.0.1:7101\", \"state\": \"live\",\n"
    "  \"lease_age_ms\": 500, \"last_heartbeat_ms\": null,\n"
    "  \"registered_ms\": 1795257841000, \"tablets\": 6, \"bytes\": 20971520,\n"
    "  \"keys\": 209712, \"read_rate\": 60.000, \"write_rate\": 20.000, \"splits\": 1,\n"
    "  \"name\": \"a\\\"\\\\x5c\\\\x0a\\\\xff\\u00e9\"}]}";

static void test_fuzz(void) {
  mj_val *v = parse(g_sample);
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  mj_free(v);
  size_t n = sizeof g_sample - 1;
  /* Every proper prefix is cut short and must be refused. */
  for (size_t i = 0; i < n; i++) refuse_n(g_sample, i);
  char *t = malloc(n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  for (int round = 0; round < 20000; round++) {
    memcpy(t, g_sample, n);
    int flips = 1 + (int)tu_rand_below(4);
    for (int f = 0; f < flips; f++) t[tu_rand_below(n)] = (char)tu_rand_below(256);
    char why[64];
    mj_free(mj_parse(t, n - tu_rand_below(4), why, sizeof why));
  }
  for (int round = 0; round < 5000; round++) {
    size_t len = tu_rand_below(n);
    for (size_t i = 0; i < len; i++)
      t[i] = "{}[]\",:\\u0123456789eE.-+ tfnalsru\xff"[tu_rand_below(35)];
    mj_free(mj_parse(t, len, NULL, 0));
  }
  free(t);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {{"valid", test_valid},
                                      {"u64", test_u64},
                                      {"refused", test_refused},
                                      {"depth_and_size", test_depth_and_size},
                                      {"fuzz", test_fuzz},
                                      CU_TEST_INFO_NULL};
  tu_add_suite("mjson", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
