/* test_tablet_basic: the tablet API one behaviour at a time — reads and
 * writes, validation, scans, snapshots, reopen and WAL replay, damaged
 * files (WAL tail and middle, missing SSTable, corrupt manifest), epoch
 * fencing, split by reference with garbage collection, middle key, size
 * estimates and the write stall. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/env.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"
#include "tabletserver/wal.h"
#include "tests/tabletserver/tt.h"
#include "tests/harness/testutil.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)

static const char *fresh_root(void) { return tu_tmpdir(); }

static tablet *open_t(res_pool *r, const char *root, uint64_t id, slice lo,
                      slice hi, uint64_t epoch) {
  tab_options o;
  tt_options(&o);
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, id), id, lo, hi, epoch, &o, &t));
  return t;
}

static void expect_value(tablet *t, const char *k, const char *v) {
  buf val = BUF_INIT;
  mica_err *err = tab_get(t, NULL, S(k), &val);
  if (v == NULL) {
    if (err_code(err) != MICA_NOT_FOUND)
      fprintf(stderr, "get %s: expected NOT_FOUND, got %s\n", k, err_msg(err));
    CU_ASSERT_EQUAL(err_code(err), MICA_NOT_FOUND);
  } else {
    if (err != NULL) fprintf(stderr, "get %s: %s\n", k, err_msg(err));
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT(slice_eq(buf_slice(&val), S(v)));
  }
  err_free(err);
  buf_free(&val);
}

static void test_put_get_delete(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 1 << 20);
  tablet *t = open_t(r, root, 1, NONE, NONE, 1);
  TU_OK(tab_put(t, S("a"), S("1"), false));
  TU_OK(tab_put(t, S("b"), S("2"), true));
  TU_OK(tab_put(t, S("a"), S("3"), false));
  expect_value(t, "a", "3");
  expect_value(t, "b", "2");
  expect_value(t, "c", NULL);
  TU_OK(tab_delete(t, S("b"), false));
  expect_value(t, "b", NULL);
  TU_OK(tab_flush(t));
  expect_value(t, "a", "3");
  expect_value(t, "b", NULL);
  TU_OK(tab_put(t, S("b"), S("4"), false));
  expect_value(t, "b", "4");
  TU_OK(tab_put(t, S("e"), S(""), false)); /* empty values are values */
  expect_value(t, "e", "");
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.puts, 5);
  CU_ASSERT_EQUAL(st.deletes, 1);
  CU_ASSERT_EQUAL(st.flushes, 1);
  CU_ASSERT(st.last_seq >= 6);
  TU_OK(tab_close(t));
  t = open_t(r, root, 1, NONE, NONE, 1);
  expect_value(t, "a", "3");
  expect_value(t, "b", "4");
  expect_value(t, "e", "");
  TU_OK(tab_close(t));
  res_free(r);
}

static void test_validation(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 1 << 20);
  tablet *t = open_t(r, root, 2, S("m"), S("t"), 1);
  TU_ERR(tab_put(t, S(""), S("x"), false), MICA_INVALID_ARGUMENT);
  buf big = BUF_INIT;
  buf_resize(&big, (16 << 10) + 1);
  memset(big.data, 'n', big.len);
  TU_ERR(tab_put(t, buf_slice(&big), S("x"), false), MICA_INVALID_ARGUMENT);
  big.len = 16 << 10; /* exactly the limit is fine */
  TU_OK(tab_put(t, buf_slice(&big), S("x"), false));
  buf_resize(&big, (8u << 20) + 1);
  TU_ERR(tab_put(t, S("n"), buf_slice(&big), false), MICA_INVALID_ARGUMENT);
  TU_ERR(tab_put(t, S("a"), S("x"), false), MICA_OUT_OF_RANGE);
  TU_ERR(tab_put(t, S("t"), S("x"), false), MICA_OUT_OF_RANGE);
  TU_OK(tab_put(t, S("m"), S("x"), false));
  TU_ERR(tab_delete(t, S("z"), false), MICA_OUT_OF_RANGE);
  buf v = BUF_INIT;
  TU_ERR(tab_get(t, NULL, S("z"), &v), MICA_OUT_OF_RANGE);
  TU_ERR(tab_get(t, NULL, S(""), &v), MICA_INVALID_ARGUMENT);

  /* A batch with one bad entry applies nothing. */
  wbatch *b = wbatch_new();
  wbatch_put(b, S("n1"), S("v"));
  wbatch_put(b, S("zz"), S("v"));
  TU_ERR(tab_write(t, b, false), MICA_OUT_OF_RANGE);
  expect_value(t, "n1", NULL);
  wbatch_clear(b);
  /* Over 32 MiB in one batch. */
  buf_resize(&big, 7u << 20);
  for (int i = 0; i < 5; i++) {
    char k[8];
    snprintf(k, sizeof(k), "p%d", i);
    wbatch_put(b, S(k), buf_slice(&big));
  }
  TU_ERR(tab_write(t, b, false), MICA_INVALID_ARGUMENT);
  expect_value(t, "p0", NULL);
  wbatch_clear(b);
  TU_OK(tab_write(t, b, false)); /* empty batch */
  wbatch_put(b, S("n2"), S("v2"));
  wbatch_delete(b, S("m"));
  wbatch_put(b, S("n2"), S("v3")); /* later entry wins */
  TU_OK(tab_write(t, b, true));
  expect_value(t, "n2", "v3");
  expect_value(t, "m", NULL);
  wbatch_free(b);
  buf_free(&big);
  buf_free(&v);

  /* Options and arguments of open. */
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 10;
  tablet *bad = NULL;
  TU_ERR(tab_open(r, tt_tablet_dir(root, 3), 3, NONE, NONE, 1, &o, &bad),
         MICA_INVALID_ARGUMENT);
  tt_options(&o);
  TU_ERR(tab_open(r, tt_tablet_dir(root, 3), 3, S("b"), S("a"), 1, &o, &bad),
         MICA_INVALID_ARGUMENT);
  o.create_if_missing = false;
  TU_ERR(tab_open(r, tt_tablet_dir(root, 4), 4, NONE, NONE, 1, &o, &bad),
         MICA_NOT_FOUND);
  CU_ASSERT_PTR_NULL(bad);
  TU_OK(tab_close(t));
  /* Reopening with another range or id is refused. */
  tt_options(&o);
  TU_ERR(tab_open(r, tt_tablet_dir(root, 2), 2, S("m"), S("u"), 1, &o, &bad),
         MICA_INVALID_ARGUMENT);
  TU_ERR(tab_open(r, tt_tablet_dir(root, 2), 5, S("m"), S("t"), 1, &o, &bad),
         MICA_INVALID_ARGUMENT);
  res_free(r);
}

static void test_scans_and_snapshots(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 1 << 20);
  tablet *t = open_t(r, root, 1, NONE, NONE, 1);
  tt_model m = {0};
  char k[16], v[16];
  for (int i = 0; i < 300; i++) {
    snprintf(k, sizeof(k), "k%03d", (i * 37) % 300);
    snprintf(v, sizeof(v), "v%d", i);
    TU_OK(tab_put(t, S(k), S(v), false));
    tt_model_put(&m, S(k), S(v));
    if (i % 7 == 0) {
      snprintf(k, sizeof(k), "k%03d", (i * 11) % 300);
      TU_OK(tab_delete(t, S(k), false));
      tt_model_del(&m, S(k));
    }
    if (i == 150) TU_OK(tab_flush(t));
  }
  tab_snapshot *snap = tab_snapshot_new(t);
  tt_model at_snap;
  tt_model_copy(&at_snap, &m);
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof(k), "k%03d", i * 3);
    TU_OK(tab_put(t, S(k), S("new"), false));
    tt_model_put(&m, S(k), S("new"));
  }
  TU_OK(tab_delete(t, S("k001"), false));
  tt_model_del(&m, S("k001"));
  TU_OK(tab_compact(t));

  tab_scan_options o;
  for (int rev = 0; rev < 2; rev++) {
    tab_scan_options_init(&o);
    o.reverse = rev;
    CU_ASSERT(tt_check_scan(t, &o, &m, NONE, NONE) > 200);
    o.start = S("k050");
    o.end = S("k100");
    CU_ASSERT(tt_check_scan(t, &o, &m, NONE, NONE) > 10);
    o.limit = 5;
    CU_ASSERT_EQUAL(tt_check_scan(t, &o, &m, NONE, NONE), 5);
    tab_scan_options_init(&o);
    o.reverse = rev;
    o.prefix = S("k1");
    CU_ASSERT(tt_check_scan(t, &o, &m, NONE, NONE) > 10);
    o.prefix = S("zz");
    CU_ASSERT_EQUAL(tt_check_scan(t, &o, &m, NONE, NONE), 0);
    o.prefix = NONE;
    o.snap = snap;
    CU_ASSERT(tt_check_scan(t, &o, &at_snap, NONE, NONE) > 200);
  }
  buf val = BUF_INIT;
  for (size_t i = 0; i < at_snap.n; i += 17) {
    TU_OK(tab_get(t, snap, buf_slice(&at_snap.keys[i]), &val));
    CU_ASSERT(slice_eq(buf_slice(&val), buf_slice(&at_snap.vals[i])));
  }
  TU_ERR(tab_get(t, snap, S("k000"), &val), MICA_NOT_FOUND);
  buf_free(&val);
  tab_scan_options_init(&o);
  o.start = S("b");
  o.end = S("a");
  iter *it = NULL;
  TU_ERR(tab_scan(t, &o, &it), MICA_INVALID_ARGUMENT);

  /* Direction changes in the middle of a scan. */
  tab_scan_options_init(&o);
  TU_OK(tab_scan(t, &o, &it));
  for (int i = 0; i < 20 && iter_valid(it); i++) iter_next(it);
  CU_ASSERT(iter_valid(it));
  buf cur = BUF_INIT;
  buf_append_slice(&cur, iter_key(it));
  iter_next(it);
  iter_prev(it);
  CU_ASSERT(iter_valid(it) && slice_eq(iter_key(it), buf_slice(&cur)));
  iter_prev(it);
  iter_next(it);
  CU_ASSERT(iter_valid(it) && slice_eq(iter_key(it), buf_slice(&cur)));
  buf_free(&cur);
  iter_close(it);

  tab_snapshot_free(snap);
  tt_model_free(&m);
  tt_model_free(&at_snap);
  TU_OK(tab_close(t));
  res_free(r);
}

/* Writes that were synced, then a simulated power loss: all of them must
 * be there after reopening on the real env. */
static void crash_with_synced_writes(const char *root, uint64_t id, int n) {
  env_fault *f = env_fault_new(env_posix());
  res_pool *r = tt_res(env_fault_env(f), 1 << 20);
  tablet *t = open_t(r, root, id, NONE, NONE, 1);
  char k[16];
  for (int i = 0; i < n; i++) {
    snprintf(k, sizeof(k), "w%04d", i);
    TU_OK(tab_put(t, S(k), S(k), true));
  }
  env_fault_crash(f);
  mica_err *err = tab_close(t);
  CU_ASSERT_PTR_NOT_NULL(err);
  err_free(err);
  res_free(r);
  env_fault_free(f);
}

static char *live_segment(const char *root, uint64_t id) {
  man_state m;
  man_init(&m);
  TU_OK(man_read(env_posix(), tt_tablet_dir(root, id), &m));
  CU_ASSERT_FATAL(m.n_live == 1);
  char name[96];
  wal_segment_name(name, sizeof(name), m.live[0].epoch, m.live[0].number);
  man_clear(&m);
  char *p = xmalloc(1024);
  snprintf(p, 1024, "%s/%s", tt_tablet_dir(root, id), name);
  return p;
}

static mica_err *skip_record(void *arg, slice payload, uint64_t offset) {
  (void)arg;
  (void)payload;
  (void)offset;
  return NULL;
}

/* Where the segment's records end: its file runs on with the zeros the
 * WAL preallocated. */
static uint64_t records_end(const char *path) {
  wal_replay_stats st;
  TU_OK(wal_replay(env_posix(), path, skip_record, NULL, &st));
  CU_ASSERT_EQUAL(st.dropped, 0);
  return st.valid_end;
}

/* Writes `data` over the file's bytes at `off` (extending it if need be). */
static void write_raw_at(const char *path, uint64_t off, const void *data,
                         size_t n) {
  buf b = BUF_INIT;
  TU_OK(env_read_file(env_posix(), path, 1 << 30, &b));
  if (b.len < off + n) buf_resize(&b, (size_t)(off + n));
  memcpy(b.data + off, data, n);
  env_writer *w;
  TU_OK(env_open_writer(env_posix(), path, ENV_TRUNCATE, &w));
  TU_OK(env_append(w, b.data, b.len));
  TU_OK(env_sync(w));
  TU_OK(env_writer_close(w));
  buf_free(&b);
}

static void flip_byte(const char *path, uint64_t off) {
  buf data = BUF_INIT;
  TU_OK(env_read_file(env_posix(), path, 1 << 30, &data));
  CU_ASSERT_FATAL(off < data.len);
  data.data[off] ^= 0x40;
  env_writer *w;
  TU_OK(env_open_writer(env_posix(), path, ENV_TRUNCATE, &w));
  TU_OK(env_append(w, data.data, data.len));
  TU_OK(env_sync(w));
  TU_OK(env_writer_close(w));
  buf_free(&data);
}

static void test_replay_and_wal_damage(void) {
  const char *root = fresh_root();
  /* Clean replay. */
  crash_with_synced_writes(root, 1, 50);
  res_pool *r = tt_res(env_posix(), 1 << 20);
  tablet *t = open_t(r, root, 1, NONE, NONE, 2);
  expect_value(t, "w0000", "w0000");
  expect_value(t, "w0049", "w0049");
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.wal_replayed_records, 50);
  TU_OK(tab_put(t, S("after"), S("x"), true));
  TU_OK(tab_close(t));
  /* Close leaves no WAL segment listed and none on disk. */
  man_state m;
  man_init(&m);
  TU_OK(man_read(env_posix(), tt_tablet_dir(root, 1), &m));
  CU_ASSERT_EQUAL(m.n_live, 0);
  CU_ASSERT_EQUAL(m.epoch, 2);
  man_clear(&m);
  char **names;
  size_t n;
  TU_OK(env_list(env_posix(), tt_tablet_dir(root, 1), &names, &n));
  for (size_t i = 0; i < n; i++) CU_ASSERT(strncmp(names[i], "wal-", 4) != 0);
  env_free_names(names, n);

  /* A torn tail (garbage after the last record, in the preallocated
   * zeros) is dropped; the zeros after it are not counted. */
  crash_with_synced_writes(root, 2, 20);
  char *seg = live_segment(root, 2);
  write_raw_at(seg, records_end(seg), "\x12\x34\x56\x78\x00\x10\x07", 7);
  t = open_t(r, root, 2, NONE, NONE, 2);
  expect_value(t, "w0019", "w0019");
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.wal_dropped_bytes, 7);
  TU_OK(tab_close(t));
  free(seg);

  /* Damage in the middle is an error naming the segment. */
  crash_with_synced_writes(root, 3, 20);
  seg = live_segment(root, 3);
  flip_byte(seg, records_end(seg) / 2);
  tab_options o;
  tt_options(&o);
  mica_err *err = tab_open(r, tt_tablet_dir(root, 3), 3, NONE, NONE, 2, &o, &t);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "wal-"));
  err_free(err);
  /* The refused open changed nothing: the segment is still there. */
  CU_ASSERT(env_exists(env_posix(), seg));
  free(seg);
  res_free(r);
}

static void test_missing_sst_and_bad_manifest(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 1 << 20);
  tablet *t = open_t(r, root, 1, NONE, NONE, 1);
  TU_OK(tab_put(t, S("a"), S("1"), false));
  TU_OK(tab_close(t));
  man_state m;
  man_init(&m);
  TU_OK(man_read(env_posix(), tt_tablet_dir(root, 1), &m));
  CU_ASSERT_FATAL(m.n_ssts == 1);
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", tt_tablet_dir(root, 1), m.ssts[0].path);
  char moved[1100];
  snprintf(moved, sizeof(moved), "%s.away", path);
  TU_OK(env_rename(env_posix(), path, moved));
  tab_options o;
  tt_options(&o);
  mica_err *err = tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), m.ssts[0].path));
  err_free(err);
  TU_OK(env_rename(env_posix(), moved, path));
  man_clear(&m);

  /* Corrupt manifest: every kind of damage is a clear CORRUPTION. */
  char *man = NULL;
  TU_OK(man_newest_path(env_posix(), tt_tablet_dir(root, 1), &man));
  uint64_t size;
  TU_OK(env_file_size(env_posix(), man, &size));
  for (uint64_t off = 0; off < size; off += 3) {
    flip_byte(man, off);
    err = tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t);
    CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "MANIFEST"));
    err_free(err);
    flip_byte(man, off);
  }
  free(man);
  t = open_t(r, root, 1, NONE, NONE, 1);
  expect_value(t, "a", "1");
  TU_OK(tab_close(t));
  res_free(r);
}

/* Temporary files of an interrupted manifest write (either naming) are
 * removed at the next open; the manifest itself is kept. */
static void test_manifest_leftovers(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 1 << 20);
  tablet *t = open_t(r, root, 1, NONE, NONE, 3);
  TU_OK(tab_put(t, S("a"), S("1"), true));
  TU_OK(tab_close(t));
  const char *dir = tt_tablet_dir(root, 1);
  char old_tmp[1200], new_tmp[1200];
  snprintf(old_tmp, sizeof old_tmp, "%s/MANIFEST.tmp.12.3", dir);
  snprintf(new_tmp, sizeof new_tmp,
           "%s/MANIFEST-00000000000000000003-00000000000000000009.tmp.12.4",
           dir);
  TU_OK(env_write_file_atomic(env_posix(), old_tmp, S("x")));
  TU_OK(env_write_file_atomic(env_posix(), new_tmp, S("y")));
  t = open_t(r, root, 1, NONE, NONE, 3);
  CU_ASSERT_FALSE(env_exists(env_posix(), old_tmp));
  CU_ASSERT_FALSE(env_exists(env_posix(), new_tmp));
  CU_ASSERT_TRUE(man_exists(env_posix(), dir));
  expect_value(t, "a", "1");
  TU_OK(tab_close(t));
  res_free(r);
}

static void test_epoch_fencing(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 1 << 20);
  tablet *old = open_t(r, root, 1, NONE, NONE, 1);
  TU_OK(tab_put(old, S("a"), S("old-acked"), true));
  /* A new owner takes over while the old one still runs. */
  tablet *nw = open_t(r, root, 1, NONE, NONE, 2);
  expect_value(nw, "a", "old-acked");
  /* The old owner appends to its (now retired) segment. */
  TU_OK(tab_put(old, S("b"), S("late"), true));
  expect_value(nw, "b", NULL);
  /* It cannot install files or segments: its manifest writes are fenced. */
  TU_ERR(tab_flush(old), MICA_STALE_EPOCH);
  TU_ERR(tab_put(old, S("c"), S("x"), true), MICA_STALE_EPOCH);
  mica_err *err = tab_close(old);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_EPOCH);
  err_free(err);
  /* Opening with the old epoch again is refused. */
  tab_options o;
  tt_options(&o);
  tablet *t = NULL;
  TU_ERR(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t),
         MICA_STALE_EPOCH);
  TU_OK(tab_put(nw, S("d"), S("new"), true));
  TU_OK(tab_close(nw));
  /* A third owner sees the second's data and never the late write. */
  t = open_t(r, root, 1, NONE, NONE, 3);
  expect_value(t, "a", "old-acked");
  expect_value(t, "b", NULL);
  expect_value(t, "d", "new");
  TU_OK(tab_close(t));
  /* No segment of epoch 1 is left behind. */
  char **names;
  size_t n;
  TU_OK(env_list(env_posix(), tt_tablet_dir(root, 1), &names, &n));
  for (size_t i = 0; i < n; i++) {
    uint64_t ep, num;
    if (wal_parse_segment_name(names[i], &ep, &num)) CU_ASSERT(ep >= 3);
  }
  env_free_names(names, n);
  res_free(r);
}

static void fill(tablet *t, tt_model *m, int n, int vlen) {
  char k[32];
  buf v = BUF_INIT;
  buf_resize(&v, (size_t)vlen);
  for (int i = 0; i < n; i++) {
    snprintf(k, sizeof(k), "key%06d", (int)tu_rand_below(100000));
    memset(v.data, 'a' + (int)tu_rand_below(26), v.len);
    TU_OK(tab_put(t, S(k), buf_slice(&v), false));
    if (m != NULL) tt_model_put(m, S(k), buf_slice(&v));
  }
  buf_free(&v);
}

static bool dir_exists_with(const char *dir, const char *prefix) {
  char **names;
  size_t n;
  if (env_list(env_posix(), dir, &names, &n) != NULL) return false;
  bool yes = false;
  for (size_t i = 0; i < n; i++)
    if (strncmp(names[i], prefix, strlen(prefix)) == 0) yes = true;
  env_free_names(names, n);
  return yes;
}

static void test_split_by_reference(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tablet *t = open_t(r, root, 10, NONE, NONE, 5);
  tt_model m = {0};
  fill(t, &m, 3000, 50);
  uint64_t size = tab_approximate_size(t);
  CU_ASSERT(size > 100000);
  CU_ASSERT(tab_approximate_keys(t) >= m.n / 2);
  buf mid = BUF_INIT;
  TU_OK(tab_middle_key(t, &mid));
  size_t below = tt_model_lower(&m, buf_slice(&mid));
  /* By bytes, with same-sized entries: roughly half the keys below. */
  CU_ASSERT(below > m.n / 4 && below < 3 * m.n / 4);

  tab_options o;
  tt_options(&o);
  o.auto_compact = false;
  tablet *left = NULL, *right = NULL;
  TU_ERR(tab_split(t, S(""), 11, 12, &o, &left, &right),
         MICA_INVALID_ARGUMENT);
  TU_ERR(tab_split(t, buf_slice(&mid), 11, 11, &o, &left, &right),
         MICA_INVALID_ARGUMENT);
  TU_OK(tab_split(t, buf_slice(&mid), 11, 12, &o, &left, &right));
  CU_ASSERT_FATAL(left != NULL && right != NULL);
  CU_ASSERT(slice_eq(tab_end(left), buf_slice(&mid)));
  CU_ASSERT(slice_eq(tab_start(right), buf_slice(&mid)));
  CU_ASSERT_EQUAL(tab_epoch(left), 5);
  /* The daughters share the parent's files: nothing was copied. */
  CU_ASSERT(!dir_exists_with(tt_tablet_dir(root, 11), "sst-"));
  CU_ASSERT(dir_exists_with(tt_tablet_dir(root, 10), "sst-"));
  uint64_t ls = tab_approximate_size(left), rs = tab_approximate_size(right);
  CU_ASSERT(ls > size / 5 && rs > size / 5);
  CU_ASSERT(ls + rs < size + size / 4);

  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(left, &so, &m, NONE, buf_slice(&mid));
  tt_check_scan(right, &so, &m, buf_slice(&mid), NONE);
  so.reverse = true;
  tt_check_scan(left, &so, &m, NONE, buf_slice(&mid));
  TU_ERR(tab_put(left, buf_slice(&mid), S("x"), false), MICA_OUT_OF_RANGE);

  /* The parent cannot be opened any more; garbage collection keeps its
   * files while a daughter reads them. */
  tablet *p = NULL;
  TU_ERR(tab_open(r, tt_tablet_dir(root, 10), 10, NONE, NONE, 5, &o, &p),
         MICA_NOT_SERVING);
  uint64_t removed = 0;
  char tablets[600];
  snprintf(tablets, sizeof(tablets), "%s", tt_tablets_dir(root));
  TU_OK(tab_collect_garbage(env_posix(), tablets, &removed));
  CU_ASSERT_EQUAL(removed, 0);
  /* Compacting one daughter writes only its own half... */
  TU_OK(tab_compact(left));
  CU_ASSERT(dir_exists_with(tt_tablet_dir(root, 11), "sst-"));
  CU_ASSERT(tab_approximate_size(left) < size * 3 / 4);
  CU_ASSERT(dir_exists_with(tt_tablet_dir(root, 10), "sst-"));
  /* ...and once both have, the parent's directory goes. */
  TU_OK(tab_compact(right));
  TU_OK(tab_collect_garbage(env_posix(), tablets, &removed));
  CU_ASSERT(!env_exists(env_posix(), tt_tablet_dir(root, 10)));
  tab_scan_options_init(&so);
  tt_check_scan(left, &so, &m, NONE, buf_slice(&mid));
  tt_check_scan(right, &so, &m, buf_slice(&mid), NONE);
  TU_OK(tab_close(left));
  TU_OK(tab_close(right));
  /* Reopen the daughters from their manifests. */
  left = open_t(r, root, 11, NONE, buf_slice(&mid), 5);
  tt_check_scan(left, &so, &m, NONE, buf_slice(&mid));
  TU_OK(tab_close(left));
  buf_free(&mid);
  tt_model_free(&m);
  res_free(r);
}

/* The audit's case: a parent with fewer files than the compaction trigger
 * is split and its daughters are never written to. No flush ever runs in
 * them, so only the rule "a tablet that reads another's files compacts
 * them away" (tb_compaction_due_locked) gets them compacted; then the
 * parent's directory is collected. Background work, so the test waits
 * (bounded) for it. */
static void test_split_daughters_compact_without_writes(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 16 << 20);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 4 << 20; /* no flush but the two below */
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 10), 10, NONE, NONE, 5, &o, &t));
  tt_model m = {0};
  fill(t, &m, 400, 50);
  TU_OK(tab_flush(t));
  fill(t, &m, 400, 50);
  TU_OK(tab_flush(t));
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.num_ssts, 2);
  CU_ASSERT(st.num_ssts < (uint64_t)o.compaction_trigger);
  CU_ASSERT_EQUAL(st.compactions, 0);

  tablet *left = NULL, *right = NULL;
  TU_OK(tab_split(t, S("key050000"), 11, 12, &o, &left, &right));
  CU_ASSERT_FATAL(left != NULL && right != NULL);
  /* Nothing is written to the daughters. Wait for their compactions and
   * the collection of the parent. */
  tt_wait_daughters_own(root, 10, left, 11, right, 12, S("key050000"), &m);
  CU_ASSERT(dir_exists_with(tt_tablet_dir(root, 11), "sst-"));
  CU_ASSERT(dir_exists_with(tt_tablet_dir(root, 12), "sst-"));
  tab_stats ls, rs;
  tab_get_stats(left, &ls);
  tab_get_stats(right, &rs);
  CU_ASSERT_EQUAL(ls.num_ssts, 1);
  CU_ASSERT_EQUAL(rs.num_ssts, 1);
  TU_OK(tab_close(left));
  TU_OK(tab_close(right));
  /* Once compacted, maintenance finds nothing more to do. */
  tt_check_settled(r, root, 11, NONE, S("key050000"), 5, &o, &m);
  tt_model_free(&m);
  res_free(r);
}

/* A parent reopened while SPLITTING finishes its split (engine.md, "Split
 * by reference") without touching a daughter that already exists. After a
 * failed split (one daughter's manifest write or the SPLIT write failed,
 * e.g. S3 errors past the retries) ts_split_tablet opens whatever
 * daughter it can, and that daughter takes writes; a daughter that was
 * not written answers NOT_FOUND and makes a server reopen the parent
 * (finish_split). Redoing the existing daughter from scratch would delete
 * its directory with those acknowledged writes. */
static void test_resplit_keeps_existing_daughter(void) {
  const char *root = fresh_root();
  env *e = env_posix();
  res_pool *r = tt_res(e, 16 << 20);
  tab_options o;
  tt_options(&o);
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 10), 10, NONE, NONE, 5, &o, &t));
  TU_OK(tab_put(t, S("a"), S("parent"), false));
  TU_OK(tab_put(t, S("z"), S("parent"), false));
  TU_OK(tab_split(t, S("m"), 11, 12, &o, NULL, NULL));
  /* As if the split stopped after the left daughter: the parent says
   * SPLITTING and the right daughter was never written. */
  man_state pm;
  man_init(&pm);
  TU_OK(man_read(e, tt_tablet_dir(root, 10), &pm));
  CU_ASSERT_EQUAL(pm.state, MAN_SPLIT);
  pm.state = MAN_SPLITTING;
  TU_OK(man_write(e, tt_tablet_dir(root, 10), &pm));
  man_clear(&pm);
  TU_OK(env_remove_tree(e, tt_tablet_dir(root, 12)));
  /* The left daughter opened anyway and acknowledged a write. */
  tablet *l = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 11), 11, NONE, S("m"), 5, &o, &l));
  TU_OK(tab_put(l, S("b"), S("daughter"), true));
  TU_OK(tab_close(l));
  /* The right daughter is missing: the parent is reopened to finish. */
  tablet *p = NULL;
  mica_err *err =
      tab_open(r, tt_tablet_dir(root, 10), 10, NONE, NONE, 5, &o, &p);
  CU_ASSERT_EQUAL(err_code(err), MICA_NOT_SERVING);
  err_free(err);
  CU_ASSERT_PTR_NULL(p);
  TU_OK(tab_open(r, tt_tablet_dir(root, 11), 11, NONE, S("m"), 5, &o, &l));
  expect_value(l, "b", "daughter");
  expect_value(l, "a", "parent");
  TU_OK(tab_close(l));
  tablet *rt = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 12), 12, S("m"), NONE, 5, &o, &rt));
  expect_value(rt, "z", "parent");
  TU_OK(tab_close(rt));
  res_free(r);
}

static void test_write_stall(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 64 << 10);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 8 << 10;
  o.max_immutable = 1;
  o.stall_timeout_micros = 200 * 1000;
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t));
  res_pause(r, true); /* flushes fall behind */
  mica_err *err = NULL;
  char k[16];
  int i;
  for (i = 0; i < 10000 && err == NULL; i++) {
    snprintf(k, sizeof(k), "s%05d", i);
    err = tab_put(t, S(k), S("0123456789012345678901234567890123456789"), false);
  }
  CU_ASSERT_EQUAL(err_code(err), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "write stall"));
  err_free(err);
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT(st.stall_timeouts >= 1);
  CU_ASSERT(st.stall_micros >= 150 * 1000);
  /* The refused write left nothing behind; the flushes catch up. */
  snprintf(k, sizeof(k), "s%05d", i - 1);
  expect_value(t, k, NULL);
  res_pause(r, false);
  TU_OK(tab_put(t, S(k), S("late"), false));
  expect_value(t, k, "late");
  expect_value(t, "s00000", "0123456789012345678901234567890123456789");
  TU_OK(tab_close(t));
  res_free(r);
}

static void test_memory_budget_flushes_largest(void) {
  const char *root = fresh_root();
  res_pool *r = tt_res(env_posix(), 256 << 10);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 4 << 20; /* never full by itself */
  tablet *small = NULL, *big = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &small));
  TU_OK(tab_open(r, tt_tablet_dir(root, 2), 2, NONE, NONE, 1, &o, &big));
  fill(small, NULL, 100, 100);
  fill(big, NULL, 4000, 100);
  /* The budget made the big tablet flush; the small one kept its data in
   * memory. */
  for (int i = 0; i < 200; i++) {
    tab_stats st;
    tab_get_stats(big, &st);
    if (st.flushes > 0 && res_mem_usage(r) < (512 << 10)) break;
    env_sleep_micros(env_posix(), 10000);
  }
  tab_stats sb, ss;
  tab_get_stats(big, &sb);
  tab_get_stats(small, &ss);
  CU_ASSERT(sb.flushes > 0);
  CU_ASSERT_EQUAL(ss.flushes, 0);
  CU_ASSERT(res_mem_usage(r) < (512 << 10));
  TU_OK(tab_close(small));
  TU_OK(tab_close(big));
  CU_ASSERT_EQUAL(res_mem_usage(r), 0);
  res_free(r);
}


static int thread_count(void) {
  char **names;
  size_t n;
  if (env_list(env_posix(), "/proc/self/task", &names, &n) != NULL) return -1;
  env_free_names(names, n);
  return (int)n;
}

/* Many small tablets share the pool's threads and cost little memory. */
static void test_many_small_tablets(void) {
  const char *tmp = getenv("TMPDIR");
  char *saved = tmp ? xstrdup(tmp) : NULL;
  if (env_exists(env_posix(), "/dev/shm")) setenv("TMPDIR", "/dev/shm", 1);
  const char *root = fresh_root();
  if (saved) setenv("TMPDIR", saved, 1);
  else unsetenv("TMPDIR");
  free(saved);
  res_pool *r = tt_res(env_posix(), 64 << 20);
  int before = thread_count();
  enum { N = 300 };
  static tablet *ts[N];
  char k[16];
  for (int i = 0; i < N; i++) {
    ts[i] = open_t(r, root, (uint64_t)i + 1, NONE, NONE, 1);
    snprintf(k, sizeof(k), "key%d", i);
    TU_OK(tab_put(ts[i], S(k), S("v"), false));
  }
  /* No thread per tablet, and well under 16 KiB of memtable each. */
  CU_ASSERT_EQUAL(thread_count(), before);
  CU_ASSERT(res_mem_usage(r) < (size_t)N * (16 << 10));
  for (int i = 0; i < N; i += 37) {
    snprintf(k, sizeof(k), "key%d", i);
    expect_value(ts[i], k, "v");
  }
  for (int i = 0; i < N; i++) TU_OK(tab_close(ts[i]));
  CU_ASSERT_EQUAL(res_mem_usage(r), 0);
  res_free(r);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"put_get_delete", test_put_get_delete},
      {"validation", test_validation},
      {"scans_and_snapshots", test_scans_and_snapshots},
      {"replay_and_wal_damage", test_replay_and_wal_damage},
      {"missing_sst_and_bad_manifest", test_missing_sst_and_bad_manifest},
      {"epoch_fencing", test_epoch_fencing},
      {"manifest_leftovers", test_manifest_leftovers},
      {"split_by_reference", test_split_by_reference},
      {"resplit_keeps_existing_daughter",
       test_resplit_keeps_existing_daughter},
      {"split_daughters_compact_without_writes",
       test_split_daughters_compact_without_writes},
      {"write_stall", test_write_stall},
      {"memory_budget_flushes_largest", test_memory_budget_flushes_largest},
      {"many_small_tablets", test_many_small_tablets},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
