/* test_tablet_disk: the engine on a full disk (docs/engine.md, "A full
 * disk"), through the fault env's disk-full mode, which fails appends and
 * preallocations with RESOURCE_EXHAUSTED and reports 0 bytes free:
 *
 *  - writes are refused at once, naming the data root and the free space,
 *    and change nothing; reads keep being served; no compaction starts;
 *    once space returns, writes resume without a reopen;
 *  - a tablet opened on a full disk (after its previous owner died with
 *    data in its WAL, and a split daughter) serves reads without writing
 *    a single byte, refuses writes, takes itself over on the first write
 *    after space returns, and a later owner finds everything;
 *  - split daughters opened on a full disk and never written to are
 *    taken over and compacted down to their own files by tab_maintain
 *    once space returns (not before), and the parent's files go;
 *  - closing a tablet that could not take over fails cleanly and keeps
 *    the data for the next owner;
 *  - a WAL write that hits a full disk with no reserve configured fails
 *    that write only; the next write after space returns starts a new
 *    segment, and a reopen finds every acknowledged write;
 *  - the reserve's arithmetic (percentage, cap, absolute), and how often
 *    the free space is read. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/log.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/tt.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)

/* A pool over `e` whose reserve is `reserve` bytes of the file system of
 * `root` (0: only a full disk refuses); `watch` false: no data root, no
 * reserve checks at all. */
static res_pool *pool(env *e, const char *root, uint64_t reserve, bool watch) {
  res_options ro;
  res_options_init(&ro);
  ro.memtable_budget = 64 << 20;
  ro.block_cache_bytes = 1 << 20;
  ro.data_root = watch ? root : NULL;
  ro.reserve_percent = 0;
  ro.reserve_bytes = reserve;
  ro.space_refresh_micros = 0; /* the fault env's disk fills at once */
  res_pool *r = NULL;
  TU_OK(res_new(e, &ro, &r));
  return r;
}

static void opts(tab_options *o) {
  tt_options(o);
  o->memtable_bytes = 8 << 10;
}

static void key_of(char *k, size_t n, int i) { snprintf(k, n, "k%05d", i); }

/* Puts keys [from, to) with value "v<i>-<tag>", into the model too. */
static void put_range(tablet *t, tt_model *m, int from, int to, int tag) {
  for (int i = from; i < to; i++) {
    char k[16], v[64];
    key_of(k, sizeof k, i);
    snprintf(v, sizeof v, "v%d-%d-padding-padding-padding", i, tag);
    TU_OK(tab_put(t, S(k), S(v), i % 7 == 0));
    tt_model_put(m, S(k), S(v));
  }
}

/* Every key of the model reads back with its value, and a full scan
 * matches the model (within [lo, hi)). */
static void check_all(tablet *t, const tt_model *m, slice lo, slice hi) {
  buf v = BUF_INIT;
  for (size_t i = 0; i < m->n; i++) {
    slice k = buf_slice(&m->keys[i]);
    if (lo.len > 0 && slice_cmp(k, lo) < 0) continue;
    if (hi.len > 0 && slice_cmp(k, hi) >= 0) continue;
    TU_OK(tab_get(t, NULL, k, &v));
    CU_ASSERT(slice_eq(buf_slice(&v), buf_slice(&m->vals[i])));
  }
  buf_free(&v);
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, m, lo, hi);
}

/* The error is RESOURCE_EXHAUSTED and names the data root and free space. */
static void assert_space_error(mica_err *err, const char *root) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  CU_ASSERT_EQUAL(err_code(err), MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), root));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "free"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "reserve"));
  err_free(err);
}

static void test_full_disk_reads_and_resume(void) {
  const char *root = tu_tmpdir();
  env_fault *f = env_fault_new(env_posix());
  env *e = env_fault_env(f);
  res_pool *r = pool(e, root, 1 << 20, true);
  tab_options o;
  opts(&o);
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t));
  tt_model m = {0};
  put_range(t, &m, 0, 600, 1);
  /* No background flush or compaction may still be writing when the disk
   * fills (that would count as a write of the refused calls): compact, then
   * put a few keys that stay in the memtable and the WAL. */
  TU_OK(tab_compact(t));
  put_range(t, &m, 600, 620, 1);
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT(st.flushes > 0); /* data in SSTables, memtables and the WAL */

  env_fault_set_disk_full(f, true);
  uint64_t writes = env_fault_count(f, ENV_OP_WRITE);
  uint64_t last = tab_last_seq(t);
  assert_space_error(tab_put(t, S("k00001"), S("lost"), true), root);
  assert_space_error(tab_delete(t, S("k00002"), false), root);
  wbatch *b = wbatch_new();
  wbatch_put(b, S("k00003"), S("lost"));
  assert_space_error(tab_write(t, b, true), root);
  wbatch_free(b);
  /* Refused at once: nothing was written, nothing applied. */
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_WRITE), writes);
  CU_ASSERT_EQUAL(tab_last_seq(t), last);
  check_all(t, &m, NONE, NONE);

  /* No compaction starts below the reserve. */
  tab_get_stats(t, &st);
  uint64_t compactions = st.compactions;
  assert_space_error(tab_compact(t), root);
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.compactions, compactions);

  /* Space returns: writes resume by themselves. */
  env_fault_set_disk_full(f, false);
  put_range(t, &m, 300, 900, 2);
  check_all(t, &m, NONE, NONE);
  TU_OK(tab_close(t));
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t));
  check_all(t, &m, NONE, NONE);
  TU_OK(tab_close(t));
  res_free(r);
  env_fault_free(f);
  tt_model_free(&m);
}

/* Leaves tablet 1 under epoch 1 with its recent writes only in its WAL:
 * the owner "dies" (a simulated power loss after synced writes; every
 * write here is synced), as a server killed mid-load would. */
static void die_with_wal(const char *root, tt_model *m) {
  env_fault *f = env_fault_new(env_posix());
  res_pool *r = tt_res(env_fault_env(f), 64 << 20);
  tab_options o;
  opts(&o);
  o.memtable_bytes = 1 << 20; /* everything stays in the WAL */
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t));
  for (int i = 0; i < 300; i++) {
    char k[16], v[32];
    key_of(k, sizeof k, i);
    snprintf(v, sizeof v, "wal-%d", i);
    TU_OK(tab_put(t, S(k), S(v), true));
    tt_model_put(m, S(k), S(v));
  }
  env_fault_crash(f);
  mica_err *err = tab_close(t); /* fails: the env is gone; frees t */
  CU_ASSERT_PTR_NOT_NULL(err);
  err_free(err);
  res_free(r);
  env_fault_free(f);
}

static void test_open_on_full_disk_writes_nothing(void) {
  const char *root = tu_tmpdir();
  tt_model m = {0};
  die_with_wal(root, &m);

  env_fault *f = env_fault_new(env_posix());
  env *e = env_fault_env(f);
  res_pool *r = pool(e, root, 1 << 20, true);
  tab_options o;
  opts(&o);
  o.create_if_missing = false;
  env_fault_set_disk_full(f, true);
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t));
  /* Serving, and not one file was created, appended, renamed or removed. */
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_OPEN), 0);
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_WRITE), 0);
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_RENAME), 0);
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_REMOVE), 0);
  check_all(t, &m, NONE, NONE);
  assert_space_error(tab_put(t, S("k00001"), S("x"), true), root);
  /* A flush cannot make the replayed writes durable either; the tablet
   * keeps serving. */
  mica_err *err = tab_flush(t);
  CU_ASSERT_PTR_NOT_NULL(err);
  err_free(err);
  check_all(t, &m, NONE, NONE);

  /* Space returns: the first write takes the tablet over. */
  env_fault_set_disk_full(f, false);
  TU_OK(tab_put(t, S("k00001"), S("after"), true));
  tt_model_put(&m, S("k00001"), S("after"));
  check_all(t, &m, NONE, NONE);
  /* The previous owner's segments are retired and deleted. */
  char **names;
  size_t n;
  TU_OK(env_list(env_posix(), tt_tablet_dir(root, 1), &names, &n));
  for (size_t i = 0; i < n; i++)
    CU_ASSERT_PTR_NULL(strstr(names[i], "wal-00000000000000000001-"));
  env_free_names(names, n);

  /* Split it; a daughter opened on a full disk serves reads at once. */
  TU_OK(tab_split(t, S("k00150"), 2, 3, &o, NULL, NULL));
  env_fault_set_disk_full(f, true);
  uint64_t opens = env_fault_count(f, ENV_OP_OPEN);
  uint64_t writes = env_fault_count(f, ENV_OP_WRITE);
  tablet *l = NULL, *rt = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 2), 2, NONE, S("k00150"), 3, &o, &l));
  TU_OK(tab_open(r, tt_tablet_dir(root, 3), 3, S("k00150"), NONE, 3, &o, &rt));
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_OPEN), opens);
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_WRITE), writes);
  check_all(l, &m, NONE, S("k00150"));
  check_all(rt, &m, S("k00150"), NONE);
  assert_space_error(tab_put(rt, S("k00200"), S("x"), false), root);

  /* Closing a daughter that could not take over fails and loses
   * nothing: the next owner opens it as if this one never had. */
  err = tab_close(rt);
  CU_ASSERT_PTR_NOT_NULL(err);
  CU_ASSERT_EQUAL(err_code(err), MICA_RESOURCE_EXHAUSTED);
  err_free(err);

  env_fault_set_disk_full(f, false);
  TU_OK(tab_put(l, S("k00002"), S("left"), true));
  tt_model_put(&m, S("k00002"), S("left"));
  TU_OK(tab_close(l));
  TU_OK(tab_open(r, tt_tablet_dir(root, 2), 2, NONE, S("k00150"), 4, &o, &l));
  TU_OK(tab_open(r, tt_tablet_dir(root, 3), 3, S("k00150"), NONE, 4, &o, &rt));
  check_all(l, &m, NONE, S("k00150"));
  check_all(rt, &m, S("k00150"), NONE);
  TU_OK(tab_put(rt, S("k00201"), S("right"), true));
  TU_OK(tab_close(l));
  TU_OK(tab_close(rt));
  res_free(r);
  env_fault_free(f);
  tt_model_free(&m);
}

/* Daughters opened on a full disk stay pending, so nothing schedules
 * their compaction; maintenance does once space returns. */
static void test_pending_daughters_compact_after_space(void) {
  const char *root = tu_tmpdir();
  env_fault *f = env_fault_new(env_posix());
  res_pool *r = pool(env_fault_env(f), root, 1 << 20, true);
  tab_options o;
  opts(&o);
  o.memtable_bytes = 1 << 20;
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t));
  tt_model m = {0};
  put_range(t, &m, 0, 300, 1);
  TU_OK(tab_flush(t));
  TU_OK(tab_split(t, S("k00150"), 2, 3, &o, NULL, NULL));

  env_fault_set_disk_full(f, true);
  tablet *l = NULL, *rt = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 2), 2, NONE, S("k00150"), 2, &o, &l));
  TU_OK(tab_open(r, tt_tablet_dir(root, 3), 3, S("k00150"), NONE, 2, &o, &rt));
  uint64_t writes = env_fault_count(f, ENV_OP_WRITE);
  /* No room: maintenance starts nothing. */
  tab_maintain(l);
  tab_maintain(rt);
  env_sleep_micros(env_posix(), 100000);
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_WRITE), writes);
  CU_ASSERT(env_exists(env_posix(), tt_tablet_dir(root, 1)));
  CU_ASSERT(!tt_only_own_files(tt_tablet_dir(root, 2)));

  env_fault_set_disk_full(f, false);
  bool done = false;
  for (int i = 0; i < 6000 && !done; i++) {
    if (i % 100 == 0) { /* as the server's maintenance thread does */
      tab_maintain(l);
      tab_maintain(rt);
    }
    done = !env_exists(env_posix(), tt_tablet_dir(root, 1)) &&
           tt_only_own_files(tt_tablet_dir(root, 2)) &&
           tt_only_own_files(tt_tablet_dir(root, 3));
    if (!done) env_sleep_micros(env_posix(), 10000);
  }
  CU_ASSERT_TRUE(done);
  check_all(l, &m, NONE, S("k00150"));
  check_all(rt, &m, S("k00150"), NONE);
  TU_OK(tab_close(l));
  TU_OK(tab_close(rt));
  res_free(r);
  env_fault_free(f);
  tt_model_free(&m);
}

/* Without a reserve the disk fills under the WAL itself. */
static void test_wal_full_disk_recovers(void) {
  const char *root = tu_tmpdir();
  env_fault *f = env_fault_new(env_posix());
  res_pool *r = pool(env_fault_env(f), root, 0, false);
  tab_options o;
  opts(&o);
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t));
  tt_model m = {0};
  put_range(t, &m, 0, 200, 1);
  env_fault_set_disk_full(f, true);
  for (int i = 0; i < 3; i++) {
    mica_err *err = tab_put(t, S("k00005"), S("unacked"), true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_EQUAL(err_code(err), MICA_RESOURCE_EXHAUSTED);
    err_free(err);
  }
  check_all(t, &m, NONE, NONE);
  env_fault_set_disk_full(f, false);
  /* Not failed for good: a new segment, and on. */
  put_range(t, &m, 100, 400, 2);
  check_all(t, &m, NONE, NONE);
  TU_OK(tab_close(t));
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t));
  check_all(t, &m, NONE, NONE);
  TU_OK(tab_close(t));
  res_free(r);
  env_fault_free(f);
  tt_model_free(&m);
}

/* A crash after a WAL write failed on a full disk: every acknowledged
 * write is there, and the failed one is there or not, whole. */
static void test_wal_full_disk_then_crash(void) {
  const char *root = tu_tmpdir();
  env_fault *f = env_fault_new(env_posix());
  res_pool *r = pool(env_fault_env(f), root, 0, false);
  tab_options o;
  opts(&o);
  o.memtable_bytes = 1 << 20;
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t));
  tt_model m = {0};
  for (int i = 0; i < 50; i++) {
    char k[16];
    key_of(k, sizeof k, i);
    TU_OK(tab_put(t, S(k), S("before"), true));
    tt_model_put(&m, S(k), S("before"));
  }
  env_fault_set_disk_full(f, true);
  TU_ERR(tab_put(t, S("k00001"), S("failed"), true), MICA_RESOURCE_EXHAUSTED);
  env_fault_set_disk_full(f, false);
  TU_OK(tab_put(t, S("k00002"), S("after"), true));
  tt_model_put(&m, S("k00002"), S("after"));
  env_fault_crash(f);
  err_free(tab_close(t));
  res_free(r);
  env_fault_free(f);

  r = tt_res(env_posix(), 64 << 20);
  TU_OK(tab_open(r, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t));
  buf v = BUF_INIT;
  TU_OK(tab_get(t, NULL, S("k00001"), &v));
  CU_ASSERT(slice_eq(buf_slice(&v), S("before")) ||
            slice_eq(buf_slice(&v), S("failed")));
  tt_model_put(&m, S("k00001"), buf_slice(&v));
  buf_free(&v);
  check_all(t, &m, NONE, NONE);
  TU_OK(tab_close(t));
  res_free(r);
  tt_model_free(&m);
}

static void test_reserve_arithmetic(void) {
  env *e = env_posix();
  res_options ro;
  res_options_init(&ro);
  CU_ASSERT_EQUAL(ro.reserve_percent, 5);
  CU_ASSERT_EQUAL(ro.reserve_bytes, (uint64_t)1 << 30);
  ro.data_root = tu_tmpdir();
  res_pool *r = NULL;
  TU_OK(res_new(e, &ro, &r));
  CU_ASSERT_EQUAL(res_reserve_for(r, (uint64_t)48 << 20),
                  ((uint64_t)48 << 20) / 100 * 5 +
                      ((uint64_t)48 << 20) % 100 * 5 / 100);
  CU_ASSERT_EQUAL(res_reserve_for(r, (uint64_t)100 << 30), (uint64_t)1 << 30);
  TU_OK(res_space_check(r, "writes")); /* $TMPDIR is not that full */
  res_free(r);

  ro.reserve_percent = 0;
  ro.reserve_bytes = 12345;
  TU_OK(res_new(e, &ro, &r));
  CU_ASSERT_EQUAL(res_reserve_for(r, (uint64_t)100 << 30), 12345);
  res_free(r);

  /* A reserve larger than any disk refuses everything, naming it. */
  ro.reserve_bytes = (uint64_t)1 << 62;
  TU_OK(res_new(e, &ro, &r));
  mica_err *err = res_space_check(r, "writes");
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), ro.data_root));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "writes refused"));
  err_free(err);
  res_free(r);

  ro.reserve_percent = 51;
  TU_ERR(res_new(e, &ro, &r), MICA_INVALID_ARGUMENT);
}

/* Above the reserve the free space is read at most every
 * space_refresh_micros; below it on every check, so a write after space
 * returns is not refused on an old reading. */
static void test_space_refresh(void) {
  env_fault *f = env_fault_new(env_posix());
  res_options ro;
  res_options_init(&ro);
  ro.data_root = tu_tmpdir();
  ro.reserve_percent = 0;
  ro.reserve_bytes = 4096;
  ro.space_refresh_micros = 60ull * 1000 * 1000;
  res_pool *r = NULL;
  TU_OK(res_new(env_fault_env(f), &ro, &r));
  env_fault_set_disk_full(f, true);
  TU_ERR(res_space_check(r, "writes"), MICA_RESOURCE_EXHAUSTED);
  TU_ERR(res_space_check(r, "writes"), MICA_RESOURCE_EXHAUSTED);
  env_fault_set_disk_full(f, false);
  TU_OK(res_space_check(r, "writes")); /* at once */
  env_fault_set_disk_full(f, true);
  TU_OK(res_space_check(r, "writes")); /* the reading of a moment ago */
  res_free(r);
  ro.space_refresh_micros = 0;
  TU_OK(res_new(env_fault_env(f), &ro, &r));
  TU_ERR(res_space_check(r, "writes"), MICA_RESOURCE_EXHAUSTED);
  res_free(r);
  env_fault_free(f);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"full_disk_reads_and_resume", test_full_disk_reads_and_resume},
      {"open_on_full_disk_writes_nothing",
       test_open_on_full_disk_writes_nothing},
      {"pending_daughters_compact_after_space",
       test_pending_daughters_compact_after_space},
      {"wal_full_disk_recovers", test_wal_full_disk_recovers},
      {"wal_full_disk_then_crash", test_wal_full_disk_then_crash},
      {"reserve_arithmetic", test_reserve_arithmetic},
      {"space_refresh", test_space_refresh},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_disk", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
