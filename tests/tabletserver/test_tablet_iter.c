/* Tablet iterators and read-triggered compaction (docs/engine.md, "What a
 * scan costs to build" and "Read-triggered compaction"): scans over a
 * memtable, level 0 and two deeper levels holding several versions and
 * deletes of the same keys, in both directions, with bounds, a prefix,
 * limits, starts past the end and empty ranges, all against a model;
 * scans opened and closed in an interleaved order on one thread (the
 * per-thread reuse of scan stacks and table iterators must never share
 * state between two open scans); a tablet with no files and empty levels;
 * and reads that look into several files asking for a compaction, by
 * gets and by seeks, and not when auto_compact is off. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "tabletserver/tablet.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/tt.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)

static tablet *open_dir(res_pool *r, const char *dir, const tab_options *o) {
  tablet *t = NULL;
  TU_OK(tab_open(r, dir, 1, NONE, NONE, 1, o, &t));
  CU_ASSERT_FATAL(t != NULL);
  return t;
}

static void key_of(char *k, size_t n, int i) { snprintf(k, n, "k%05d", i); }

static void put_model(tablet *t, tt_model *m, int i) {
  char k[16], v[64];
  key_of(k, sizeof(k), i);
  snprintf(v, sizeof(v), "v%d-%u", i, (unsigned)tu_rand_below(1000000));
  TU_OK(tab_put(t, S(k), S(v), false));
  tt_model_put(m, S(k), S(v));
}

static void del_model(tablet *t, tt_model *m, int i) {
  char k[16];
  key_of(k, sizeof(k), i);
  TU_OK(tab_delete(t, S(k), false));
  tt_model_del(m, S(k));
}

static tab_stats stats(tablet *t) {
  tab_stats st;
  tab_get_stats(t, &st);
  return st;
}

/* Every kind of scan of `t` against the model: whole, bounded, reversed,
 * limited, prefixed, starting past the last key, and empty ranges. */
static void check_scans(tablet *t, const tt_model *m, int keys) {
  tab_scan_options o;
  for (int rev = 0; rev < 2; rev++) {
    tab_scan_options_init(&o);
    o.reverse = rev;
    tt_check_scan(t, &o, m, NONE, NONE);
    for (int round = 0; round < 40; round++) {
      char a[16], b[16];
      int x = (int)tu_rand_below((uint64_t)keys + 20);
      int y = x + (int)tu_rand_below(200);
      key_of(a, sizeof(a), x);
      key_of(b, sizeof(b), y);
      tab_scan_options_init(&o);
      o.reverse = rev;
      o.start = S(a);
      if (round % 3 != 0) o.end = S(b);
      if (round % 4 == 1) o.limit = 1 + tu_rand_below(10);
      tt_check_scan(t, &o, m, NONE, NONE);
    }
    /* Past the last key, before the first, and empty ranges. */
    tab_scan_options_init(&o);
    o.reverse = rev;
    o.start = S("z");
    CU_ASSERT_EQUAL(tt_check_scan(t, &o, m, NONE, NONE), 0);
    tab_scan_options_init(&o);
    o.reverse = rev;
    o.end = S("a");
    CU_ASSERT_EQUAL(tt_check_scan(t, &o, m, NONE, NONE), 0);
    tab_scan_options_init(&o);
    o.reverse = rev;
    o.start = S("k00100");
    o.end = S("k00100");
    CU_ASSERT_EQUAL(tt_check_scan(t, &o, m, NONE, NONE), 0);
    /* A prefix holding about a tenth of the keys. */
    tab_scan_options_init(&o);
    o.reverse = rev;
    o.prefix = S("k001");
    tt_check_scan(t, &o, m, NONE, NONE);
  }
}

/* Scans of a tablet whose versions and deletes of the same keys lie in
 * the memtable, level 0 and the levels below, with a snapshot taken
 * halfway that must keep showing what it saw. */
static void test_scans_across_levels(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 8 << 10;
  o.compaction_trigger = 2;
  o.level_base_bytes = 24 << 10;
  o.level_file_bytes = 8 << 10;
  tablet *t = open_dir(r, dir, &o);
  tt_model m = {0}, at_snap = {0};
  enum { KEYS = 1500 };
  tab_snapshot *snap = NULL;
  for (int round = 0; round < 6; round++) {
    for (int i = 0; i < 1500; i++) {
      int k = (int)tu_rand_below(KEYS);
      if (tu_rand_below(5) == 0) del_model(t, &m, k);
      else put_model(t, &m, k);
    }
    TU_OK(tab_flush(t));
    if (round == 3) {
      snap = tab_snapshot_new(t);
      tt_model_copy(&at_snap, &m);
    }
  }
  /* Some versions stay in the memtable. */
  for (int i = 0; i < 200; i++) put_model(t, &m, (int)tu_rand_below(KEYS));
  for (int i = 0; i < 50; i++) del_model(t, &m, (int)tu_rand_below(KEYS));
  tab_stats st = stats(t);
  int deep = 0;
  for (int l = 0; l < 7; l++)
    if (st.level_files[l] > 0) deep = l;
  fprintf(stderr, "files per level:");
  for (int l = 0; l < 7; l++)
    fprintf(stderr, " %llu", (unsigned long long)st.level_files[l]);
  fprintf(stderr, "\n");
  CU_ASSERT(deep >= 2);
  check_scans(t, &m, KEYS);
  /* The snapshot's scans see the data as it was. */
  tab_scan_options so;
  tab_scan_options_init(&so);
  so.snap = snap;
  tt_check_scan(t, &so, &at_snap, NONE, NONE);
  so.reverse = true;
  so.start = S("k00400");
  so.end = S("k01000");
  tt_check_scan(t, &so, &at_snap, NONE, NONE);
  tab_snapshot_free(snap);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  tt_model_free(&at_snap);
  res_free(r);
}

/* Walks `it` (a forward scan from `from`) `n` steps against the model. */
static void expect_steps(iter *it, const tt_model *m, size_t *at, int n) {
  for (int s = 0; s < n; s++) {
    if (*at >= m->n) {
      CU_ASSERT_FALSE(iter_valid(it));
      return;
    }
    CU_ASSERT_FATAL(iter_valid(it));
    CU_ASSERT(slice_eq(iter_key(it), buf_slice(&m->keys[*at])));
    CU_ASSERT(slice_eq(iter_value(it), buf_slice(&m->vals[*at])));
    iter_next(it);
    (*at)++;
  }
}

static iter *scan_from(tablet *t, const char *k) {
  tab_scan_options o;
  tab_scan_options_init(&o);
  o.start = S(k);
  iter *it = NULL;
  TU_OK(tab_scan(t, &o, &it));
  CU_ASSERT_FATAL(it != NULL);
  return it;
}

/* Several scans open at once on one thread, closed and reopened in
 * interleaved order, more of them than a thread keeps spare: none may
 * see another's position or keys. */
static void test_interleaved_scans(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  tt_options(&o);
  o.auto_compact = false;
  tablet *t = open_dir(r, dir, &o);
  tt_model m = {0};
  enum { KEYS = 3000 };
  for (int f = 0; f < 4; f++) {
    for (int i = 0; i < 800; i++) put_model(t, &m, (int)tu_rand_below(KEYS));
    TU_OK(tab_flush(t));
  }
  for (int i = 0; i < 100; i++) put_model(t, &m, (int)tu_rand_below(KEYS));
  enum { OPEN = 24 };
  iter *its[OPEN] = {0};
  size_t at[OPEN];
  for (int round = 0; round < 400; round++) {
    int j = (int)tu_rand_below(OPEN);
    if (its[j] != NULL && tu_rand_below(3) == 0) {
      iter_close(its[j]);
      its[j] = NULL;
    }
    if (its[j] == NULL) {
      char k[16];
      int x = (int)tu_rand_below(KEYS + 10);
      key_of(k, sizeof(k), x);
      its[j] = scan_from(t, k);
      at[j] = tt_model_lower(&m, S(k));
    }
    expect_steps(its[j], &m, &at[j], 1 + (int)tu_rand_below(40));
  }
  for (int j = 0; j < OPEN; j++) iter_close(its[j]);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  res_free(r);
}

/* No files at all, then only deletes, then files with every level below
 * 0 empty: scans yield exactly the model. */
static void test_empty_levels(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  tt_options(&o);
  o.auto_compact = false;
  o.memtable_bytes = 1 << 20; /* files only where the test flushes */
  tablet *t = open_dir(r, dir, &o);
  tt_model m = {0};
  check_scans(t, &m, 10);
  for (int i = 0; i < 50; i++) del_model(t, &m, i);
  TU_OK(tab_flush(t));
  check_scans(t, &m, 50);
  for (int i = 0; i < 300; i++) put_model(t, &m, i);
  TU_OK(tab_flush(t));
  tab_stats st = stats(t);
  CU_ASSERT_EQUAL(st.level_files[0], 2);
  for (int l = 1; l < 7; l++) CU_ASSERT_EQUAL(st.level_files[l], 0);
  check_scans(t, &m, 300);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  res_free(r);
}

/* Three overlapping level-0 files under a compaction trigger they do
 * not reach; `filters` false writes files without Bloom filters, so that
 * every get of a key held only by the oldest file reads the newer ones
 * first. */
static tablet *three_level0_files(res_pool *r, const char *dir, bool auto_compact,
                                  bool filters, tt_model *m, int keys) {
  tab_options o;
  tt_options(&o);
  o.compaction_trigger = 8;
  o.memtable_bytes = 1 << 20; /* files only where the test flushes */
  o.auto_compact = auto_compact;
  if (!filters) o.sst.bloom_bits_per_key = 0;
  tablet *t = open_dir(r, dir, &o);
  /* The oldest file holds every key, the newer two only even ones, so a
   * get of an odd key reads past both. */
  for (int i = 0; i < keys; i++) put_model(t, m, i);
  TU_OK(tab_flush(t));
  for (int f = 0; f < 2; f++) {
    for (int i = f; i < keys; i += 4) put_model(t, m, i * 2 % keys);
    TU_OK(tab_flush(t));
  }
  tab_stats st = stats(t);
  CU_ASSERT_EQUAL(st.level_files[0], 3);
  return t;
}

/* Waits (bounded) until level 0 is empty. */
static bool level0_drained(tablet *t) {
  for (int i = 0; i < 1500; i++) {
    tab_stats st = stats(t);
    if (st.level_files[0] == 0 && !st.compaction_due) return true;
    env_sleep_micros(env_posix(), 20000);
  }
  return false;
}

static void get_key(tablet *t, const tt_model *m, int i) {
  char k[16];
  key_of(k, sizeof(k), i);
  tt_check_get(t, m, S(k));
}

/* Gets that read past a file (no Bloom filters here) compact level 0 away
 * once the file's allowance (100 for a small file) is used up; the data
 * stays exactly the model's. */
static void test_gets_ask_for_compaction(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tt_model m = {0};
  enum { KEYS = 2000 };
  tablet *t = three_level0_files(r, dir, true, false, &m, KEYS);
  CU_ASSERT_EQUAL(stats(t).read_compactions, 0);
  /* Odd keys: only the oldest file holds them. */
  for (int i = 0; i < 1000; i++) get_key(t, &m, 2 * (int)tu_rand_below(KEYS / 2) + 1);
  CU_ASSERT_TRUE(level0_drained(t));
  tab_stats st = stats(t);
  CU_ASSERT(st.read_compactions >= 1);
  CU_ASSERT(st.level_files[1] >= 1);
  TU_OK(tab_check_levels(t));
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  for (int i = 0; i < KEYS + 10; i += 7) get_key(t, &m, i);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  res_free(r);
}

/* Seeks cannot use the filters: seeks that merge several files compact
 * level 0 away too, with filters on. */
static void test_seeks_ask_for_compaction(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tt_model m = {0};
  enum { KEYS = 2000 };
  tablet *t = three_level0_files(r, dir, true, true, &m, KEYS);
  for (int i = 0; i < 1000; i++) {
    char k[16];
    key_of(k, sizeof(k), (int)tu_rand_below(KEYS));
    iter *it = scan_from(t, k);
    size_t at = tt_model_lower(&m, S(k));
    expect_steps(it, &m, &at, 2);
    iter_close(it);
  }
  CU_ASSERT_TRUE(level0_drained(t));
  CU_ASSERT(stats(t).read_compactions >= 1);
  TU_OK(tab_check_levels(t));
  check_scans(t, &m, KEYS);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  res_free(r);
}

/* With auto_compact off, reads change nothing: the files stay as built
 * (tools and benchmarks that fix the shape rely on it). */
static void test_reads_respect_auto_compact_off(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tt_model m = {0};
  enum { KEYS = 2000 };
  tablet *t = three_level0_files(r, dir, false, false, &m, KEYS);
  for (int i = 0; i < 1000; i++) {
    get_key(t, &m, 2 * (int)tu_rand_below(KEYS / 2) + 1);
    char k[16];
    key_of(k, sizeof(k), (int)tu_rand_below(KEYS));
    iter_close(scan_from(t, k));
  }
  tab_maintain(t);
  env_sleep_micros(env_posix(), 100000);
  tab_stats st = stats(t);
  CU_ASSERT_EQUAL(st.level_files[0], 3);
  CU_ASSERT_EQUAL(st.compactions, 0);
  CU_ASSERT_EQUAL(st.read_compactions, 0);
  /* An explicit full compaction still works and keeps the data. */
  TU_OK(tab_compact(t));
  st = stats(t);
  CU_ASSERT_EQUAL(st.level_files[0], 0);
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  res_free(r);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"scans_across_levels", test_scans_across_levels},
      {"interleaved_scans", test_interleaved_scans},
      {"empty_levels", test_empty_levels},
      {"gets_ask_for_compaction", test_gets_ask_for_compaction},
      {"seeks_ask_for_compaction", test_seeks_ask_for_compaction},
      {"reads_respect_auto_compact_off", test_reads_respect_auto_compact_off},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_iter", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
