/* test_tablet_clog: tablets sharing one server commit log (clog.h).
 *
 *  - group_commit: records of six tablets added together cost one
 *    fdatasync, and a reader gets each tablet's records only;
 *  - bad_input: a log name that is not a bare name, a reused name, a
 *    malformed or damaged record (CORRUPTION naming file and offset);
 *  - crash_every_sync: three tablets on one log (with segment rolls,
 *    segment deletion, flushes, a split, a move to a second server's log
 *    and a merge) crash at every sync point; a new "server" with its own
 *    log reopens them under a new epoch and finds every acknowledged
 *    write (the write in flight all or nothing); also one failed append
 *    at every append;
 *  - fenced_late_append: an old owner that keeps appending after a new
 *    owner took the tablet over is never replayed, even after the new
 *    owner crashes, while its late record is in its log;
 *  - two_new_owners: a dead server's four tablets recovered at once by two
 *    new owners, each reading only its tablets' records and skipping
 *    segments by their index;
 *  - concurrent_replays: four tablets replaying one dead log at once
 *    each get exactly their records (segment mode reads on its own:
 *    nothing shared), and a damaged segment is CORRUPTION naming it and
 *    the offset for each;
 *  - gc_and_forced_flush: segments are deleted once every tablet in them
 *    flushed, and a tablet that never flushes by itself is made to flush
 *    when the log passes its size bound, so the log stays bounded;
 *  - collect_dead_logs: a dead server's log stays while a tablet needs
 *    it and goes once that tablet was taken over; a live log stays;
 *  - switch_modes: a tablet crashed with unflushed writes in its own WAL
 *    reopens on a shared log and back, losing nothing.
 *
 * Crash runs use /dev/shm when available: the fault env decides what
 * survives a crash. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/layout.h"
#include "tabletserver/clog.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"
#include "tabletserver/tablet_merge.h"
#include "tabletserver/wal.h"
#include "tests/tabletserver/tt.h"
#include "tests/harness/testutil.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)

static clog *log_open(env *e, const char *root, const char *name,
                      uint64_t segment_bytes, uint64_t max_bytes) {
  clog_options lo;
  clog_options_init(&lo);
  if (segment_bytes) lo.segment_bytes = segment_bytes;
  if (max_bytes) lo.max_bytes = max_bytes;
  clog *l = NULL;
  TU_OK(clog_open(e, tt_logs_root(root), name, &lo, &l));
  return l;
}

/* ---- the log alone ---- */

static mica_err *count_record(void *arg, slice batch, const char *path,
                              uint64_t offset) {
  (void)path;
  (void)offset;
  wbatch *b = wbatch_new();
  mica_err *err = wbatch_decode(b, batch);
  if (err == NULL) *(uint64_t *)arg += wbatch_count(b);
  wbatch_free(b);
  return err;
}

static void test_group_commit(void) {
  const char *root = tu_tmpdir();
  env_fault *f = env_fault_new(env_posix());
  env *e = env_fault_env(f);
  clog *l = log_open(e, root, "s1", 0, 0);
  wbatch *b[6];
  clog_ticket tk[6];
  uint64_t syncs = env_fault_count(f, ENV_OP_SYNC);
  for (int i = 0; i < 6; i++) {
    b[i] = wbatch_new();
    for (int j = 0; j <= i; j++) wbatch_put(b[i], S("k"), S("v"));
    wbatch_set_seq(b[i], 10);
    TU_OK(clog_add(l, (uint64_t)i + 1, 7, wbatch_data(b[i]), true, &tk[i]));
  }
  for (int i = 0; i < 6; i++) TU_OK(clog_commit(l, &tk[i]));
  /* One group: one fdatasync for six tablets. */
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_SYNC) - syncs, 1);
  /* Each tablet reads back only its own record; another epoch nothing. */
  char *dir = clog_dir_path(tt_logs_root(root), "s1");
  for (int i = 0; i < 6; i++) {
    uint64_t n = 0;
    clog_replay_stats st;
    TU_OK(clog_replay(env_posix(), dir, (uint64_t)i + 1, 7, 1, 0,
                      count_record, &n, &st));
    CU_ASSERT_EQUAL(n, (uint64_t)i + 1);
    CU_ASSERT_EQUAL(st.records, 1);
    CU_ASSERT_EQUAL(st.records_seen, 6);
    n = 0;
    TU_OK(clog_replay(env_posix(), dir, (uint64_t)i + 1, 6, 1, 0,
                      count_record, &n, NULL));
    CU_ASSERT_EQUAL(n, 0);
    /* Everything up to seq 10 + i flushed: nothing left to replay. */
    TU_OK(clog_replay(env_posix(), dir, (uint64_t)i + 1, 7, 1, 10 + i,
                      count_record, &n, NULL));
    CU_ASSERT_EQUAL(n, 0);
  }
  /* Unsynced records are made durable by clog_sync, one fdatasync. */
  for (int i = 0; i < 3; i++) {
    TU_OK(clog_add(l, 1, 7, wbatch_data(b[0]), false, &tk[i]));
    TU_OK(clog_commit(l, &tk[i]));
  }
  syncs = env_fault_count(f, ENV_OP_SYNC);
  TU_OK(clog_sync(l));
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_SYNC) - syncs, 1);
  TU_OK(clog_sync(l)); /* nothing new: no sync */
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_SYNC) - syncs, 1);
  for (int i = 0; i < 6; i++) wbatch_free(b[i]);
  /* Nothing flushed: closing keeps the segment (it pins), and its index
   * lets a reader of another tablet skip it. */
  TU_OK(clog_close(l));
  clog_replay_stats st;
  uint64_t n = 0;
  TU_OK(clog_replay(env_posix(), dir, 99, 7, 1, 0, count_record, &n, &st));
  CU_ASSERT_EQUAL(st.segments_skipped, 1);
  CU_ASSERT_EQUAL(st.segments_read, 0);
  free(dir);
  env_fault_free(f);
}

static mica_err *wal_count_fn(void *arg, slice payload, uint64_t offset) {
  (void)arg;
  (void)payload;
  (void)offset;
  return NULL;
}

static void test_bad_input(void) {
  const char *root = tu_tmpdir();
  clog *l = NULL;
  TU_ERR(clog_open(env_posix(), tt_logs_root(root), "a/b", NULL, &l),
         MICA_INVALID_ARGUMENT);
  TU_ERR(clog_open(env_posix(), tt_logs_root(root), "..", NULL, &l),
         MICA_INVALID_ARGUMENT);
  clog_options lo;
  clog_options_init(&lo);
  lo.segment_bytes = 10;
  TU_ERR(clog_open(env_posix(), tt_logs_root(root), "x", &lo, &l),
         MICA_INVALID_ARGUMENT);
  l = log_open(env_posix(), root, "once", 0, 0);
  clog_ticket tk;
  TU_ERR(clog_add(l, 1, 1, S("short"), true, &tk), MICA_INVALID_ARGUMENT);
  wbatch *b = wbatch_new();
  wbatch_put(b, S("k"), S("v"));
  wbatch_set_seq(b, 1);
  TU_OK(clog_add(l, 1, 1, wbatch_data(b), true, &tk));
  TU_OK(clog_commit(l, &tk));
  TU_OK(clog_add(l, 1, 1, wbatch_data(b), true, &tk));
  TU_OK(clog_commit(l, &tk));
  clog *again = NULL;
  TU_ERR(clog_open(env_posix(), tt_logs_root(root), "once", NULL, &again),
         MICA_ALREADY_EXISTS);
  /* Keep the records: nothing flushed them. */
  TU_OK(clog_close(l));
  wbatch_free(b);

  /* Damage the first record: a valid record follows, so CORRUPTION. */
  char *dir = clog_dir_path(tt_logs_root(root), "once");
  char name[64];
  clog_segment_name(name, sizeof(name), 1);
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  /* A commit log segment is not a tablet's own segment, and back. */
  TU_ERR(wal_replay(env_posix(), path, wal_count_fn, NULL, NULL),
         MICA_CORRUPTION);
  {
    char tdir[1024], tpath[1100];
    snprintf(tdir, sizeof(tdir), "%s/tabletlike", root);
    TU_OK(env_mkdirs(env_posix(), tdir));
    snprintf(tpath, sizeof(tpath), "%s/%s", tdir, name);
    wal_writer *w = NULL;
    TU_OK(wal_writer_open(env_posix(), tpath, 1, 1, &w));
    TU_OK(wal_writer_close(w));
    uint64_t m = 0;
    /* Without a LOCK the directory is no log at all (a listing of a
     * missing directory may answer empty, as on S3): NOT_FOUND. */
    TU_ERR(clog_replay(env_posix(), tdir, 1, 1, 1, 0, count_record, &m, NULL),
           MICA_NOT_FOUND);
    char lpath[1100];
    snprintf(lpath, sizeof(lpath), "%s/%s", tdir, CLOG_LOCK_NAME);
    TU_OK(env_write_file_atomic(env_posix(), lpath, slice_make(NULL, 0)));
    TU_ERR(clog_replay(env_posix(), tdir, 1, 1, 1, 0, count_record, &m, NULL),
           MICA_CORRUPTION);
  }
  FILE *fp = fopen(path, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  fseek(fp, WAL_FRAME_HEADER + 28 + WAL_FRAME_HEADER + 3, SEEK_SET);
  fputc('X', fp);
  fclose(fp);
  /* The index is gone too (it would let a reader skip it otherwise). */
  snprintf(path, sizeof(path), "%s/clog-%020d.idx", dir, 1);
  TU_OK(env_remove(env_posix(), path));
  uint64_t n = 0;
  mica_err *err = clog_replay(env_posix(), dir, 1, 1, 1, 0, count_record, &n,
                              NULL);
  tt_expect_err(err, MICA_CORRUPTION, "offset 37", NULL);
  TU_ERR(clog_replay(env_posix(), "/nonexistent/log", 1, 1, 1, 0,
                     count_record, &n, NULL),
         MICA_NOT_FOUND);
  free(dir);
}

/* ---- crash at every sync point, three tablets and a split ---- */

static bool put(tt_run *r, tablet *t, int i, int gen) {
  char k[16], v[48];
  snprintf(k, sizeof(k), "k%03d", i);
  snprintf(v, sizeof(v), "value-%d-%d-padding-padding", i, gen);
  return tt_run_put(r, t, S(k), S(v));
}

static void crash_opts(tab_options *o, clog *l) {
  tt_options(o);
  o->memtable_bytes = 1 << 20;
  o->auto_compact = false;
  o->log = l;
}

/* Tablet i of 1..3 owns [k(30(i-1)), k(30i)); the last is unbounded. */
static slice lo_of(int i) {
  static const char *lo[] = {"", "", "k030", "k060"};
  return i == 1 ? NONE : S(lo[i]);
}
static slice hi_of(int i) {
  static const char *hi[] = {"", "k030", "k060", ""};
  return i == 3 ? NONE : S(hi[i]);
}
#define SPLIT_KEY "k080"

/* Writes round-robin to the three tablets (rolling 4 KiB segments),
 * flushes tablet 1 (its segments become deletable), splits tablet 3 into
 * 4 and 5, writes to the daughters, moves tablet 2 to a second server
 * (its own log, epoch 2), merges the daughters into tablet 6 (epoch 2),
 * writes to it, and closes everything. */
static void crash_workload(env *e, const char *root, tt_run *r,
                           void *arg) {
  (void)arg;
  res_pool *res = tt_res(e, 64 << 20);
  clog *l = NULL, *l2 = NULL;
  tablet *t[7] = {NULL};
  tab_options o2;
  clog_options lo;
  clog_options_init(&lo);
  lo.segment_bytes = 4096;
  lo.max_bytes = 1 << 20;
  if (!tt_run_step(r, clog_open(e, tt_logs_root(root), "dead", &lo, &l)))
    goto out;
  tab_options o;
  crash_opts(&o, l);
  for (int i = 1; i <= 3; i++)
    if (!tt_run_step(r, tab_open(res, tt_tablet_dir(root, (uint64_t)i),
                                 (uint64_t)i, lo_of(i), hi_of(i), 1, &o,
                                 &t[i])))
      goto out;
  for (int i = 0; i < 90; i += 2)
    if (!put(r, t[1 + i / 30], i, 0)) goto out;
  if (!tt_run_batch(r, t[2], 40, 4, 0)) goto out;
  if (!tt_run_step(r, tab_flush(t[1]))) goto out;
  for (int i = 1; i < 90; i += 3)
    if (!put(r, t[1 + i / 30], i, 1)) goto out;
  {
    mica_err *err = tab_split(t[3], S(SPLIT_KEY), 4, 5, &o, &t[4], &t[5]);
    t[3] = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
  for (int i = 60; i < 100; i += 5)
    if (!put(r, i < 80 ? t[4] : t[5], i, 2)) goto out;
  if (!tt_run_batch(r, t[5], 90, 4, 2)) goto out;
  if (!put(r, t[1], 7, 3)) goto out;
  {
    mica_err *err = tab_close(t[2]);
    t[2] = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
  if (!put(r, t[4], 61, 4)) goto out;
  /* A move: tablet 2 (closed above) opens on "another server" with its
   * own log, under epoch 2. */
  if (!tt_run_step(r, clog_open(e, tt_logs_root(root), "other", &lo, &l2)))
    goto out;
  crash_opts(&o2, l2);
  if (!tt_run_step(r, tab_open(res, tt_tablet_dir(root, 2), 2, lo_of(2),
                               hi_of(2), 2, &o2, &t[2])))
    goto out;
  if (!put(r, t[2], 33, 5)) goto out;
  /* A merge of the daughters into tablet 6 under epoch 2, on this
   * server, and writes to it. */
  for (int i = 4; i <= 5; i++) {
    mica_err *err = tab_close(t[i]);
    t[i] = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
  {
    tab_merge_input in[2] = {{tt_tablet_dir(root, 4), 4},
                             {tt_tablet_dir(root, 5), 5}};
    if (!tt_run_step(r, tab_merge_prepare(res, tt_tablet_dir(root, 6), 6, in,
                                          2, &o)))
      goto out;
  }
  if (!tt_run_step(r, tab_open(res, tt_tablet_dir(root, 6), 6, S("k060"),
                               NONE, 2, &o, &t[6])))
    goto out;
  if (!put(r, t[6], 66, 6)) goto out;
  if (!tt_run_batch(r, t[6], 93, 4, 6)) goto out;
  /* A clean end: every tablet closes (flushes) and the logs then delete
   * themselves. A crash at any of these syncs is verified too. */
  for (int i = 1; i <= 6; i++) {
    if (t[i] == NULL) continue;
    mica_err *err = tab_close(t[i]);
    t[i] = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
  {
    mica_err *err = clog_close(l);
    l = NULL;
    if (!tt_run_step(r, err)) goto out;
    err = clog_close(l2);
    l2 = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
out:
  /* After a failure the servers "die": their tablets are dropped without
   * flushing and their writes are only in the logs. */
  for (int i = 1; i <= 6; i++) err_free(tab_close(t[i]));
  err_free(clog_close(l));
  err_free(clog_close(l2));
  res_free(res);
}

/* Opens tablet `id` for verification, creating it when a crash came
 * before its first manifest (nothing of it was acknowledged then). */
static tablet *reopen(res_pool *res, const char *root, uint64_t id, slice lo,
                      slice hi, clog *l, uint64_t crash_at) {
  tab_options o;
  crash_opts(&o, l);
  o.create_if_missing = false;
  tablet *t = NULL;
  mica_err *err = tab_open(res, tt_tablet_dir(root, id), id, lo, hi, 3, &o, &t);
  if (err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    o.create_if_missing = true;
    TU_OK(tab_open(res, tt_tablet_dir(root, id), id, lo, hi, 3, &o, &t));
    return t;
  }
  if (err != NULL && err_code(err) != MICA_NOT_SERVING)
    fprintf(stderr, "crash at %llu: reopen tablet %llu: %s\n",
            (unsigned long long)crash_at, (unsigned long long)id,
            err_msg(err));
  if (err_code(err) == MICA_NOT_SERVING) {
    err_free(err);
    return NULL;
  }
  TU_OK(err);
  return t;
}

static void crash_verify(const char *root, tt_run *r, uint64_t crash_at,
                         void *arg) {
  (void)arg;
  res_pool *res = tt_res(env_posix(), 64 << 20);
  clog *l = log_open(env_posix(), root, "new", 0, 0);
  tablet *ts[4] = {NULL};
  size_t n = 0;
  for (int i = 1; i <= 3; i++) {
    tablet *t = reopen(res, root, (uint64_t)i, lo_of(i), hi_of(i), l, crash_at);
    if (t != NULL) {
      ts[n++] = t;
    } else if (i == 3) {
      if (man_exists(env_posix(), tt_tablet_dir(root, 6))) {
        /* The merge's result exists: finish it (as a re-sent OpenTablet
         * does) and open it. */
        tab_options o;
        crash_opts(&o, l);
        tab_merge_input in[2] = {{tt_tablet_dir(root, 4), 4},
                                 {tt_tablet_dir(root, 5), 5}};
        TU_OK(tab_merge_prepare(res, tt_tablet_dir(root, 6), 6, in, 3, &o));
        ts[n++] = reopen(res, root, 6, S("k060"), NONE, l, crash_at);
      } else {
        ts[n++] = reopen(res, root, 4, S("k060"), S(SPLIT_KEY), l, crash_at);
        ts[n++] = reopen(res, root, 5, S(SPLIT_KEY), NONE, l, crash_at);
      }
    }
  }
  for (size_t i = 0; i < n; i++) CU_ASSERT_PTR_NOT_NULL_FATAL(ts[i]);
  tt_run_check(r, ts, n, crash_at);
  for (size_t i = 0; i < n; i++) TU_OK(tab_close(ts[i]));
  /* Every tablet closed cleanly and names no log: every log of every
   * "server" of this run goes, the crashed ones included. */
  TU_OK(clog_close(l));
  TU_OK(clog_collect_dead(env_posix(), tt_tablets_dir(root), NULL));
  char **logs = NULL;
  size_t nlogs = 0;
  TU_OK(env_list(env_posix(), tt_logs_root(root), &logs, &nlogs));
  {
    for (size_t i = 0; i < nlogs; i++) {
      bool creating = strstr(logs[i], CLOG_NEW_SUFFIX) != NULL;
      if (!creating)
        fprintf(stderr, "crash at %llu: log %s left behind\n",
                (unsigned long long)crash_at, logs[i]);
      CU_ASSERT(creating);
    }
    env_free_names(logs, nlogs);
  }
  /* No tablet directory holds a WAL segment of its own. */
  for (uint64_t id = 1; id <= 6; id++) {
    char **names;
    size_t nn;
    mica_err *lerr = env_list(env_posix(), tt_tablet_dir(root, id), &names, &nn);
    if (lerr != NULL) {
      err_free(lerr); /* a tablet this run never created */
      continue;
    }
    for (size_t j = 0; j < nn; j++)
      CU_ASSERT(strncmp(names[j], "wal-", 4) != 0);
    env_free_names(names, nn);
  }
  res_free(res);
}

static void fail_every(enum env_op op, bool crash, const char *what) {
  tt_fail_plan p = {op, crash, what, 50, NULL, crash_workload, crash_verify,
                    NULL};
  tt_fail_every(&p);
}

static void test_crash_every_sync(void) {
  fail_every(ENV_OP_SYNC, true, "syncs");
}

static void test_io_error_every_write(void) {
  fail_every(ENV_OP_WRITE, false, "appends");
}

/* ---- fencing ---- */

static void test_fenced_late_append(void) {
  const char *root = tu_tmpdir();
  tab_options o;
  /* Server A, epoch 1. */
  res_pool *ra = tt_res(env_posix(), 64 << 20);
  clog *la = log_open(env_posix(), root, "a", 0, 0);
  crash_opts(&o, la);
  tablet *ta = NULL;
  TU_OK(tab_open(ra, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &ta));
  tt_put(ta, "k1", "from-a");

  /* Server B (which will crash) takes the tablet over under epoch 2. */
  env_fault *fb = env_fault_new(env_posix());
  res_pool *rb = tt_res(env_fault_env(fb), 64 << 20);
  clog *lb = log_open(env_fault_env(fb), root, "b", 0, 0);
  crash_opts(&o, lb);
  tablet *tb = NULL;
  TU_OK(tab_open(rb, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &tb));
  tt_expect(tb, "k1", "from-a");

  /* A is fenced but does not know it: its late write reaches its log
   * under epoch 1 (the server's lease keeps it from being acknowledged
   * to a client; the engine's job is never to replay it). */
  tt_put(ta, "k2", "late-from-a");
  tt_put(tb, "k3", "from-b");
  /* A's flush finds the newer epoch and stops. */
  TU_ERR(tab_flush(ta), MICA_STALE_EPOCH);

  /* B crashes with k3 only in its log. */
  env_fault_crash(fb);
  err_free(tab_close(tb));
  err_free(clog_close(lb));
  res_free(rb);
  env_fault_free(fb);

  /* C recovers from B's log, never from A's. */
  res_pool *rc = tt_res(env_posix(), 64 << 20);
  clog *lc = log_open(env_posix(), root, "c", 0, 0);
  crash_opts(&o, lc);
  tablet *tc = NULL;
  TU_OK(tab_open(rc, tt_tablet_dir(root, 1), 1, NONE, NONE, 3, &o, &tc));
  tt_expect(tc, "k1", "from-a");
  tt_expect(tc, "k3", "from-b");
  tt_expect(tc, "k2", NULL);
  tab_stats st;
  tab_get_stats(tc, &st);
  CU_ASSERT_EQUAL(st.wal_replayed_records, 1); /* k3 */

  /* The late record is in A's log: it was written, and skipped. */
  char *adir = clog_dir_path(tt_logs_root(root), "a");
  uint64_t n = 0;
  TU_OK(clog_replay(env_posix(), adir, 1, 1, 1, 0, count_record, &n, NULL));
  CU_ASSERT_EQUAL(n, 2);
  TU_ERR(tab_close(ta), MICA_STALE_EPOCH);
  /* A's records were never flushed by A: its log keeps them. */
  TU_OK(clog_close(la));
  CU_ASSERT(env_exists(env_posix(), adir));
  free(adir);
  res_free(ra);
  TU_OK(tab_close(tc));
  TU_OK(clog_close(lc));
  res_free(rc);
}

/* ---- two new owners of one dead server's tablets ---- */

#define OWNERS_TABLETS 4
#define OWNERS_WRITES 60

typedef struct owner {
  const char *root;
  const char *name;
  uint64_t ids[2];
  tablet *t[2];
  mica_err *err;
} owner;

static slice olo(uint64_t id) {
  static const char *lo[] = {"", "", "b", "c", "d"};
  return id == 1 ? NONE : S(lo[id]);
}
static slice ohi(uint64_t id) {
  static const char *hi[] = {"", "b", "c", "d", ""};
  return id == 4 ? NONE : S(hi[id]);
}

static void *owner_main(void *arg) {
  owner *w = arg;
  res_pool *res = tt_res(env_posix(), 64 << 20);
  clog_options lo;
  clog_options_init(&lo);
  clog *l = NULL;
  w->err = clog_open(env_posix(), tt_logs_root(w->root), w->name, &lo, &l);
  tab_options o;
  crash_opts(&o, l);
  o.create_if_missing = false;
  for (int i = 0; i < 2 && w->err == NULL; i++)
    w->err = tab_open(res, tt_tablet_dir(w->root, w->ids[i]), w->ids[i],
                      olo(w->ids[i]), ohi(w->ids[i]), 2, &o, &w->t[i]);
  for (int i = 0; i < 2 && w->t[i] != NULL; i++) {
    tab_stats st;
    tab_get_stats(w->t[i], &st);
    /* Tablet 1 got 10 writes, the others OWNERS_WRITES each. */
    CU_ASSERT_EQUAL(st.wal_replayed_records,
                    w->ids[i] == 1 ? 10 : OWNERS_WRITES);
    char k[16], v[32];
    int n = w->ids[i] == 1 ? 10 : OWNERS_WRITES;
    for (int j = 0; j < n; j++) {
      snprintf(k, sizeof(k), "%c%03d", (char)('a' + w->ids[i] - 1), j);
      snprintf(v, sizeof(v), "v%d", j);
      tt_expect(w->t[i], k, v);
    }
    TU_OK(tab_close(w->t[i]));
  }
  TU_OK(clog_close(l));
  res_free(res);
  return NULL;
}

static void test_two_new_owners(void) {
  const char *root = tu_tmpdir();
  env_fault *f = env_fault_new(env_posix());
  env *e = env_fault_env(f);
  res_pool *res = tt_res(e, 64 << 20);
  clog *l = log_open(e, root, "dead", 4096, 1 << 20);
  tab_options o;
  crash_opts(&o, l);
  tablet *t[OWNERS_TABLETS + 1] = {NULL};
  for (uint64_t id = 1; id <= OWNERS_TABLETS; id++)
    TU_OK(tab_open(res, tt_tablet_dir(root, id), id, olo(id), ohi(id), 1, &o,
                   &t[id]));
  /* Tablet 1 is written only at first, so later segments lack it. */
  for (int j = 0; j < OWNERS_WRITES; j++)
    for (uint64_t id = 1; id <= OWNERS_TABLETS; id++) {
      if (id == 1 && j >= 10) continue;
      char k[16], v[32];
      snprintf(k, sizeof(k), "%c%03d", (char)('a' + id - 1), j);
      snprintf(v, sizeof(v), "v%d", j);
      tt_put(t[id], k, v);
    }
  clog_stats ls;
  clog_get_stats(l, &ls);
  CU_ASSERT(ls.segments >= 3);
  /* kill -9 of the whole server: only what was synced survives. */
  env_fault_crash(f);
  for (uint64_t id = 1; id <= OWNERS_TABLETS; id++) err_free(tab_close(t[id]));
  err_free(clog_close(l));
  res_free(res);
  env_fault_free(f);

  /* Tablet 1's reader skips the segments written after its last record
   * thanks to their index. */
  char *dir = clog_dir_path(tt_logs_root(root), "dead");
  uint64_t n = 0;
  clog_replay_stats st;
  TU_OK(clog_replay(env_posix(), dir, 1, 1, 1, 0, count_record, &n, &st));
  CU_ASSERT_EQUAL(n, 10);
  CU_ASSERT(st.segments_skipped >= 1);
  free(dir);

  owner a = {root, "owner-a", {1, 2}, {NULL, NULL}, NULL};
  owner b = {root, "owner-b", {3, 4}, {NULL, NULL}, NULL};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, owner_main, &a);
  pthread_create(&tb, NULL, owner_main, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  TU_OK(a.err);
  TU_OK(b.err);
}

/* ---- several tablets replaying one POSIX log at once ---- */

typedef struct preplay {
  const char *dir;
  uint64_t tablet;
  uint64_t n;
  clog_replay_stats st;
  mica_err *err;
} preplay;

static void *preplay_main(void *arg) {
  preplay *p = arg;
  p->err = clog_replay(env_posix(), p->dir, p->tablet, 5, 1, 0, count_record,
                       &p->n, &p->st);
  return NULL;
}

static void run_preplays(const char *dir, preplay *p, int n) {
  pthread_t th[8];
  for (int i = 0; i < n; i++) {
    p[i] = (preplay){dir, (uint64_t)i + 1, 0, {0}, NULL};
    CU_ASSERT_EQUAL(pthread_create(&th[i], NULL, preplay_main, &p[i]), 0);
  }
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

/* Segment mode does not share reads between replays (clog.h): each
 * replay of four at once reads the segments it needs itself and gets
 * exactly its tablet's records; a damaged segment is CORRUPTION naming it
 * and the offset for every replay that reads it. */
static void test_concurrent_replays(void) {
  const char *root = tu_tmpdir();
  clog *l = log_open(env_posix(), root, "cr", 4096, 0);
  enum { T = 4, W = 60 };
  for (int j = 0; j < W; j++)
    for (int i = 0; i < T; i++) {
      wbatch *b = wbatch_new();
      wbatch_put(b, S("key"), S("value-value-value-value"));
      wbatch_set_seq(b, (uint64_t)j + 1);
      clog_ticket tk;
      TU_OK(clog_add(l, (uint64_t)i + 1, 5, wbatch_data(b), true, &tk));
      TU_OK(clog_commit(l, &tk));
      wbatch_free(b);
    }
  clog_stats ls;
  clog_get_stats(l, &ls);
  CU_ASSERT(ls.segments >= 3);
  TU_OK(clog_close(l)); /* nothing flushed: every segment stays */
  char *dir = clog_dir_path(tt_logs_root(root), "cr");
  preplay p[T];
  clog_replay_cache_stats c0, c1;
  clog_replay_cache_get_stats(&c0);
  run_preplays(dir, p, T);
  clog_replay_cache_get_stats(&c1);
  for (int i = 0; i < T; i++) {
    TU_OK(p[i].err);
    CU_ASSERT_EQUAL(p[i].n, W);
    CU_ASSERT_EQUAL(p[i].st.records, W);
    CU_ASSERT_EQUAL(p[i].st.segments_read, ls.segments);
    CU_ASSERT_EQUAL(p[i].st.objects_shared, 0);
  }
  CU_ASSERT_EQUAL(c1.gets, c0.gets);
  CU_ASSERT_EQUAL(c1.shared, c0.shared);

  /* Segment 2's first record damaged, valid records after it. */
  char path[1200];
  snprintf(path, sizeof(path), "%s/clog-%020d.log", dir, 2);
  FILE *fp = fopen(path, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  fseek(fp, WAL_FRAME_HEADER + 28 + WAL_FRAME_HEADER + 3, SEEK_SET);
  fputc('X', fp);
  fclose(fp);
  run_preplays(dir, p, T);
  for (int i = 0; i < T; i++) {
    tt_expect_err(p[i].err, MICA_CORRUPTION, "clog-00000000000000000002.log",
                  "offset 37");
    CU_ASSERT(p[i].n < W);
  }
  free(dir);
}

/* ---- deleting segments, and the tablet that never flushes ---- */

static void test_gc_and_forced_flush(void) {
  const char *root = tu_tmpdir();
  res_pool *res = tt_res(env_posix(), 64 << 20);
  const uint64_t seg = 4096, max = 16384;
  clog *l = log_open(env_posix(), root, "s", seg, max);
  tab_options busy, idle;
  tt_options(&busy);
  busy.log = l;
  idle = busy;
  idle.memtable_bytes = 8 << 20; /* never fills by itself */
  tablet *tb = NULL, *ti = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, S("m"), 1, &busy, &tb));
  TU_OK(tab_open(res, tt_tablet_dir(root, 2), 2, S("m"), NONE, 1, &idle, &ti));
  tt_put(ti, "z", "idle");
  char v[128];
  memset(v, 'x', sizeof(v) - 1);
  v[sizeof(v) - 1] = '\0';
  for (int i = 0; i < 3000; i++) {
    char k[16];
    snprintf(k, sizeof(k), "a%05d", i);
    TU_OK(tab_put(tb, S(k), S(v), false));
  }
  /* Background flushes catch up; the log must come back under a small
   * multiple of its bound (without the forced flush, the idle tablet's
   * one record would pin every segment: about 100 of them). */
  clog_stats ls;
  for (int i = 0; i < 1000; i++) {
    TU_OK(tab_flush(tb));
    clog_get_stats(l, &ls);
    if (ls.bytes <= max + 2 * seg) break;
    usleep(10000);
  }
  fprintf(stderr, "log: %llu segments, %llu bytes, %llu deleted, %llu forced "
          "flush requests\n", (unsigned long long)ls.segments,
          (unsigned long long)ls.bytes,
          (unsigned long long)ls.segments_deleted,
          (unsigned long long)ls.flush_requests);
  CU_ASSERT(ls.bytes <= max + 2 * seg);
  CU_ASSERT(ls.segments_deleted >= 50);
  CU_ASSERT(ls.flush_requests >= 1);
  tab_stats st;
  tab_get_stats(ti, &st);
  CU_ASSERT(st.flushes >= 1);
  tt_expect(ti, "z", "idle");
  /* The files on disk are the live segments (plus their indexes). */
  char *dir = clog_dir_path(tt_logs_root(root), "s");
  char **names;
  size_t n;
  TU_OK(env_list(env_posix(), dir, &names, &n));
  size_t logs = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t num;
    if (clog_parse_segment_name(names[i], &num)) logs++;
  }
  env_free_names(names, n);
  clog_get_stats(l, &ls);
  CU_ASSERT_EQUAL(logs, ls.segments);
  TU_OK(tab_close(tb));
  TU_OK(tab_close(ti));
  TU_OK(clog_close(l));
  uint64_t removed = 0;
  TU_OK(clog_collect_dead(env_posix(), tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(removed, 1);
  CU_ASSERT_FALSE(env_exists(env_posix(), dir));
  free(dir);
  res_free(res);
}

/* ---- collecting the logs of dead servers ---- */

static void test_collect_dead_logs(void) {
  const char *root = tu_tmpdir();
  const char *tablets = tt_tablets_dir(root);
  res_pool *res = tt_res(env_posix(), 64 << 20);
  clog *live = log_open(env_posix(), root, "live", 0, 0);
  tab_options o;
  crash_opts(&o, live);
  tablet *t1 = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, S("m"), 1, &o, &t1));
  tt_put(t1, "a", "live");

  /* A second server writes tablet 2 and dies (kill -9: its lock goes). */
  env_fault *f = env_fault_new(env_posix());
  res_pool *rd = tt_res(env_fault_env(f), 64 << 20);
  clog *dead = log_open(env_fault_env(f), root, "dead", 0, 0);
  tab_options od;
  crash_opts(&od, dead);
  tablet *t2 = NULL;
  TU_OK(tab_open(rd, tt_tablet_dir(root, 2), 2, S("m"), NONE, 1, &od, &t2));
  tt_put(t2, "x", "only-in-the-dead-log");
  env_fault_crash(f);
  err_free(tab_close(t2));
  err_free(clog_close(dead));
  res_free(rd);
  env_fault_free(f);

  char *dead_dir = clog_dir_path(tt_logs_root(root), "dead");
  char *live_dir = clog_dir_path(tt_logs_root(root), "live");
  /* Tablet 2's only copy of "x" is in the dead log: it stays; the live
   * log is locked by its server: it stays. */
  uint64_t removed = 99;
  TU_OK(clog_collect_dead(env_posix(), tablets, &removed));
  CU_ASSERT_EQUAL(removed, 0);
  CU_ASSERT(env_exists(env_posix(), dead_dir));
  CU_ASSERT(env_exists(env_posix(), live_dir));

  /* The live server takes tablet 2 over: the dead log is needed no
   * more, and goes. */
  TU_OK(tab_open(res, tt_tablet_dir(root, 2), 2, S("m"), NONE, 2, &o, &t2));
  tt_expect(t2, "x", "only-in-the-dead-log");
  TU_OK(clog_collect_dead(env_posix(), tablets, &removed));
  CU_ASSERT_EQUAL(removed, 1);
  CU_ASSERT_FALSE(env_exists(env_posix(), dead_dir));
  CU_ASSERT(env_exists(env_posix(), live_dir));
  tt_expect(t1, "a", "live");
  TU_OK(tab_close(t1));
  TU_OK(tab_close(t2));
  TU_OK(clog_close(live));
  TU_OK(clog_collect_dead(env_posix(), tablets, &removed));
  CU_ASSERT_EQUAL(removed, 1);
  CU_ASSERT_FALSE(env_exists(env_posix(), live_dir));
  free(dead_dir);
  free(live_dir);
  res_free(res);
}

/* ---- switching between a shared log and per-tablet segments ---- */

/* Writes `k`=`v` to tablet 1 under `epoch` (through `l`, or its own WAL
 * when NULL) after checking what earlier lives left, then "crashes". */
static void one_life(const char *root, clog *l, uint64_t epoch,
                     const char *const *expect_keys, const char *k,
                     const char *v) {
  env_fault *f = env_fault_new(env_posix());
  res_pool *res = tt_res(env_fault_env(f), 64 << 20);
  tab_options o;
  crash_opts(&o, l);
  tablet *t = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, epoch, &o, &t));
  for (size_t i = 0; expect_keys[i] != NULL; i += 2)
    tt_expect(t, expect_keys[i], expect_keys[i + 1]);
  tt_put(t, k, v);
  man_state m;
  man_init(&m);
  TU_OK(man_read(env_posix(), tt_tablet_dir(root, 1), &m));
  if (l != NULL) {
    /* The shared log is named; no segment of the tablet's own is live. */
    CU_ASSERT(slice_eq(buf_slice(&m.log_name), S(clog_name(l))));
    CU_ASSERT_EQUAL(m.n_live, 0);
  } else {
    CU_ASSERT_EQUAL(m.log_name.len, 0);
    CU_ASSERT_EQUAL(m.n_live, 1);
  }
  man_clear(&m);
  env_fault_crash(f);
  err_free(tab_close(t));
  res_free(res);
  env_fault_free(f);
}

static void test_switch_modes(void) {
  const char *root = tu_tmpdir();
  const char *none[] = {NULL};
  one_life(root, NULL, 1, none, "a", "own-wal");
  clog *l1 = log_open(env_posix(), root, "first", 0, 0);
  const char *after1[] = {"a", "own-wal", NULL};
  one_life(root, l1, 2, after1, "b", "shared");
  TU_OK(clog_close(l1));
  const char *after2[] = {"a", "own-wal", "b", "shared", NULL};
  one_life(root, NULL, 3, after2, "c", "own-wal-again");
  const char *after3[] = {"a", "own-wal", "b", "shared", "c",
                          "own-wal-again", NULL};
  clog *l2 = log_open(env_posix(), root, "second", 0, 0);
  res_pool *res = tt_res(env_posix(), 64 << 20);
  tab_options o;
  crash_opts(&o, l2);
  tablet *t = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 4, &o, &t));
  for (size_t i = 0; after3[i] != NULL; i += 2) tt_expect(t, after3[i], after3[i + 1]);
  TU_OK(tab_close(t));
  TU_OK(clog_close(l2));
  /* Closed cleanly: no log is needed, both go. */
  uint64_t removed = 0;
  TU_OK(clog_collect_dead(env_posix(), tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(removed, 2);
  res_free(res);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"group_commit", test_group_commit},
      {"bad_input", test_bad_input},
      {"fenced_late_append", test_fenced_late_append},
      {"two_new_owners", test_two_new_owners},
      {"concurrent_replays", test_concurrent_replays},
      {"gc_and_forced_flush", test_gc_and_forced_flush},
      {"collect_dead_logs", test_collect_dead_logs},
      {"switch_modes", test_switch_modes},
      {"crash_every_sync", test_crash_every_sync},
      {"io_error_every_write", test_io_error_every_write},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_clog", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
