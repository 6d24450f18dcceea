/* test_metalog: the master's metadata log on disk.
 *
 * Round trips of snapshots and records, a torn tail cut at every possible
 * length (always a clean prefix, never an error), corruption before the end
 * (CORRUPTION naming file and offset), failed appends and syncs (the record
 * never resurfaces once the log rolls), the directory lock, and rolling
 * that deletes old generations. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/coding.h"
#include "master/metalog.h"
#include "tests/harness/testutil.h"

typedef struct rec {
  uint8_t type;
  buf payload;
} rec;

typedef struct seen {
  rec v[512];
  int n;
} seen;

static mica_err *collect(void *ctx, uint8_t type, slice payload) {
  seen *s = ctx;
  if (s->n == 512) return err_new(MICA_INTERNAL, "too many records");
  s->v[s->n].type = type;
  s->v[s->n].payload = (buf)BUF_INIT;
  buf_append_slice(&s->v[s->n].payload, payload);
  s->n++;
  return NULL;
}

static void seen_free(seen *s) {
  for (int i = 0; i < s->n; i++) buf_free(&s->v[i].payload);
  s->n = 0;
}

static char *master_dir(void) {
  const char *root = tu_tmpdir();
  return layout_master_dir(root);
}

static char *gen_file(const char *dir, const char *prefix, uint64_t gen) {
  char *p = xmalloc(strlen(dir) + 64);
  sprintf(p, "%s/%s%016" PRIu64, dir, prefix, gen);
  return p;
}

/* Writes `n` records of varying sizes after a snapshot "S"; returns the
 * generation. The written records are left in `want`. */
static uint64_t write_log(const char *dir, int n, seen *want) {
  mlog *m;
  seen s = {0};
  TU_OK(mlog_open(env_posix(), dir, collect, &s, &m));
  seen_free(&s);
  TU_OK(mlog_roll(m, 1, slice_from_str("S")));
  for (int i = 0; i < n; i++) {
    size_t len = (size_t)tu_rand_below(i % 7 == 0 ? 3000 : 40);
    buf p = BUF_INIT;
    buf_resize(&p, len);
    tu_rand_bytes(p.data, len);
    uint8_t type = (uint8_t)(2 + tu_rand_below(20));
    TU_OK(mlog_append(m, type, buf_slice(&p)));
    want->v[want->n].type = type;
    want->v[want->n].payload = p;
    want->n++;
  }
  uint64_t gen = mlog_generation(m);
  mlog_close(m);
  return gen;
}

static void expect_prefix(const seen *got, const seen *want, int n) {
  CU_ASSERT_EQUAL_FATAL(got->n, n);
  for (int i = 0; i < n; i++) {
    CU_ASSERT_EQUAL(got->v[i].type, want->v[i].type);
    CU_ASSERT(slice_eq(buf_slice(&got->v[i].payload),
                       buf_slice(&want->v[i].payload)));
  }
}

static void test_round_trip(void) {
  char *dir = master_dir();
  seen want = {0};
  uint64_t gen = write_log(dir, 100, &want);
  CU_ASSERT_EQUAL(gen, 1);

  mlog *m;
  seen got = {0};
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  /* The snapshot record first, then every appended record in order. */
  CU_ASSERT_EQUAL_FATAL(got.n, 101);
  CU_ASSERT_EQUAL(got.v[0].type, 1);
  CU_ASSERT(slice_eq(buf_slice(&got.v[0].payload), slice_from_str("S")));
  for (int i = 0; i < 100; i++) {
    CU_ASSERT_EQUAL(got.v[i + 1].type, want.v[i].type);
    CU_ASSERT(slice_eq(buf_slice(&got.v[i + 1].payload),
                       buf_slice(&want.v[i].payload)));
  }
  seen_free(&got);

  /* Appending before a roll is refused; rolling starts generation 2 and
   * deletes generation 1. */
  CU_ASSERT_TRUE(mlog_needs_roll(m));
  TU_ERR(mlog_append(m, 3, slice_from_str("x")), MICA_IO_ERROR);
  TU_OK(mlog_roll(m, 1, slice_from_str("T")));
  CU_ASSERT_EQUAL(mlog_generation(m), 2);
  TU_OK(mlog_append(m, 4, slice_from_str("after")));
  char *old_snap = gen_file(dir, "snap-", 1), *old_log = gen_file(dir, "log-", 1);
  CU_ASSERT_FALSE(env_exists(env_posix(), old_snap));
  CU_ASSERT_FALSE(env_exists(env_posix(), old_log));
  mlog_close(m);

  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL_FATAL(got.n, 2);
  CU_ASSERT(slice_eq(buf_slice(&got.v[0].payload), slice_from_str("T")));
  CU_ASSERT_EQUAL(got.v[1].type, 4);
  mlog_close(m);
  seen_free(&got);
  seen_free(&want);
  free(old_snap);
  free(old_log);
  free(dir);
}

static void test_lock(void) {
  char *dir = master_dir();
  mlog *a, *b;
  seen s = {0};
  TU_OK(mlog_open(env_posix(), dir, collect, &s, &a));
  TU_ERR(mlog_open(env_posix(), dir, collect, &s, &b), MICA_UNAVAILABLE);
  mlog_close(a);
  TU_OK(mlog_open(env_posix(), dir, collect, &s, &b));
  mlog_close(b);
  free(dir);
}

static void test_torn_tail_every_length(void) {
  char *dir = master_dir();
  seen want = {0};
  uint64_t gen = write_log(dir, 12, &want);
  char *log = gen_file(dir, "log-", gen);
  buf full = BUF_INIT;
  TU_OK(env_read_file(env_posix(), log, 1 << 20, &full));

  /* Record boundaries: 24-byte file header, then 9-byte record headers. */
  size_t ends[13];
  size_t off = 24;
  for (int i = 0; i < 12; i++) {
    off += 9 + want.v[i].payload.len;
    ends[i] = off;
  }
  CU_ASSERT_EQUAL_FATAL(off, full.len);

  for (size_t len = 0; len <= full.len; len++) {
    TU_OK(env_write_file_atomic(env_posix(), log, slice_make(full.data, len)));
    int complete = 0;
    while (complete < 12 && ends[complete] <= len) complete++;
    mlog *m;
    seen got = {0};
    mica_err *err = mlog_open(env_posix(), dir, collect, &got, &m);
    if (err) {
      fprintf(stderr, "length %zu: %s\n", len, err_msg(err));
      err_free(err);
      CU_FAIL_FATAL("a torn tail must not be an error");
    }
    /* snapshot + the complete records */
    CU_ASSERT_EQUAL(got.n, complete + 1);
    if (got.n == complete + 1) {
      seen rest = {0};
      for (int i = 1; i < got.n; i++) rest.v[rest.n++] = got.v[i];
      expect_prefix(&rest, &want, complete);
    }
    mlog_close(m);
    seen_free(&got);
  }

  /* A zero-filled tail (a file extended but never written) is torn too. */
  buf z = BUF_INIT;
  buf_append(&z, full.data, full.len);
  buf_resize(&z, full.len + 100);
  TU_OK(env_write_file_atomic(env_posix(), log, buf_slice(&z)));
  mlog *m;
  seen got = {0};
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL(got.n, 13);
  mlog_close(m);
  seen_free(&got);

  /* The master rolls at every open, so a torn tail is never appended to:
   * after a roll and more records, everything replays. */
  TU_OK(env_write_file_atomic(env_posix(), log,
                              slice_make(full.data, full.len - 3)));
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL(got.n, 12);
  seen_free(&got);
  TU_OK(mlog_roll(m, 1, slice_from_str("U")));
  TU_OK(mlog_append(m, 9, slice_from_str("more")));
  mlog_close(m);
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL(got.n, 2);
  mlog_close(m);
  seen_free(&got);

  buf_free(&z);
  buf_free(&full);
  seen_free(&want);
  free(log);
  free(dir);
}

static void test_corruption_in_middle(void) {
  char *dir = master_dir();
  seen want = {0};
  uint64_t gen = write_log(dir, 10, &want);
  char *log = gen_file(dir, "log-", gen);
  buf full = BUF_INIT;
  TU_OK(env_read_file(env_posix(), log, 1 << 20, &full));
  size_t off = 24;
  for (int i = 0; i < 4; i++) off += 9 + want.v[i].payload.len;

  /* Flip one payload byte (or, for an empty payload, the type byte) of the
   * fifth record: its checksum fails with records after it. */
  buf bad = BUF_INIT;
  buf_append(&bad, full.data, full.len);
  bad.data[off + 8 + (want.v[4].payload.len ? 1 : 0)] ^= 0x40;
  TU_OK(env_write_file_atomic(env_posix(), log, buf_slice(&bad)));
  mlog *m = NULL;
  seen got = {0};
  mica_err *err = mlog_open(env_posix(), dir, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  char where[64];
  snprintf(where, sizeof(where), "offset %zu", off);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), where));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "log-"));
  CU_ASSERT_PTR_NULL(m);
  err_free(err);
  seen_free(&got);

  /* A length that runs past the end of the file, with records after it,
   * cannot be told from a torn tail by position alone; a length that lands
   * inside the file on garbage is caught by the checksum. */
  buf_clear(&bad);
  buf_append(&bad, full.data, full.len);
  encode_fixed32(bad.data + off + 4, (uint32_t)want.v[4].payload.len + 1);
  TU_OK(env_write_file_atomic(env_posix(), log, buf_slice(&bad)));
  err = mlog_open(env_posix(), dir, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), where));
  err_free(err);
  seen_free(&got);

  /* A damaged file header. */
  buf_clear(&bad);
  buf_append(&bad, full.data, full.len);
  bad.data[2] ^= 1;
  TU_OK(env_write_file_atomic(env_posix(), log, buf_slice(&bad)));
  err = mlog_open(env_posix(), dir, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "offset 0"));
  err_free(err);
  seen_free(&got);

  /* A damaged snapshot is never a torn tail (it is written atomically). */
  TU_OK(env_write_file_atomic(env_posix(), log, buf_slice(&full)));
  char *snap = gen_file(dir, "snap-", gen);
  buf s = BUF_INIT;
  TU_OK(env_read_file(env_posix(), snap, 1 << 20, &s));
  s.data[s.len - 1] ^= 0xff;
  TU_OK(env_write_file_atomic(env_posix(), snap, buf_slice(&s)));
  err = mlog_open(env_posix(), dir, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "snap-"));
  err_free(err);
  seen_free(&got);

  /* A log without its snapshot. */
  TU_OK(env_remove(env_posix(), snap));
  err = mlog_open(env_posix(), dir, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  err_free(err);
  seen_free(&got);

  buf_free(&s);
  buf_free(&bad);
  buf_free(&full);
  seen_free(&want);
  free(snap);
  free(log);
  free(dir);
}

/* The replay callback's error stops the replay and names file and offset. */
static mica_err *reject_third(void *ctx, uint8_t type, slice payload) {
  (void)type, (void)payload;
  int *n = ctx;
  if (++*n == 3) return err_new(MICA_CORRUPTION, "bad record");
  return NULL;
}

static void test_replay_error_names_offset(void) {
  char *dir = master_dir();
  seen want = {0};
  write_log(dir, 5, &want);
  mlog *m = NULL;
  int n = 0;
  mica_err *err = mlog_open(env_posix(), dir, reject_third, &n, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  char where[64];
  snprintf(where, sizeof(where), "offset %zu", (size_t)(24 + 9 +
                                                        want.v[0].payload.len));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), where));
  err_free(err);
  seen_free(&want);
  free(dir);
}

static void test_failed_sync_never_resurfaces(void) {
  char *dir = master_dir();
  env_fault *f = env_fault_new(env_posix());
  env *fe = env_fault_env(f);
  mlog *m;
  seen got = {0};
  TU_OK(mlog_open(fe, dir, collect, &got, &m));
  TU_OK(mlog_roll(m, 1, slice_from_str("S")));
  TU_OK(mlog_append(m, 2, slice_from_str("one")));
  env_fault_fail_nth(f, ENV_OP_SYNC, 1, false);
  TU_ERR(mlog_append(m, 2, slice_from_str("lost")), MICA_IO_ERROR);
  CU_ASSERT_TRUE(mlog_needs_roll(m));
  TU_ERR(mlog_append(m, 2, slice_from_str("refused")), MICA_IO_ERROR);

  /* A failing roll keeps refusing; a good one starts clean. */
  env_fault_fail_nth(f, ENV_OP_WRITE, 1, false);
  CU_ASSERT_NOT_EQUAL(err_take_code(mlog_roll(m, 1, slice_from_str("S+one"))),
                      MICA_OK);
  CU_ASSERT_TRUE(mlog_needs_roll(m));
  TU_OK(mlog_roll(m, 1, slice_from_str("S+one")));
  TU_OK(mlog_append(m, 2, slice_from_str("two")));
  mlog_close(m);

  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL_FATAL(got.n, 2);
  CU_ASSERT(slice_eq(buf_slice(&got.v[0].payload), slice_from_str("S+one")));
  CU_ASSERT(slice_eq(buf_slice(&got.v[1].payload), slice_from_str("two")));
  mlog_close(m);
  seen_free(&got);
  env_fault_free(f);
  free(dir);
}

/* Power loss: every record whose append returned is there afterwards. */
static void test_crash_keeps_synced_records(void) {
  char *dir = master_dir();
  env_fault *f = env_fault_new(env_posix());
  mlog *m;
  seen got = {0};
  TU_OK(mlog_open(env_fault_env(f), dir, collect, &got, &m));
  TU_OK(mlog_roll(m, 1, slice_from_str("S")));
  for (int i = 0; i < 20; i++) {
    char p[16];
    snprintf(p, sizeof(p), "r%d", i);
    TU_OK(mlog_append(m, 2, slice_from_str(p)));
  }
  env_fault_crash(f);
  mlog_close(m);
  env_fault_free(f);
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL(got.n, 21);
  CU_ASSERT(slice_eq(buf_slice(&got.v[20].payload), slice_from_str("r19")));
  mlog_close(m);
  seen_free(&got);
  free(dir);
}

/* Several records, one write and one sync; a cut inside keeps a prefix. */
static void test_batch(void) {
  char *dir = master_dir();
  mlog *m;
  seen got = {0};
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  TU_OK(mlog_roll(m, 1, slice_from_str("S")));
  uint8_t types[5] = {2, 3, 4, 5, 6};
  slice p[5] = {slice_from_str("a"), slice_from_str("bb"), slice_from_str(""),
                slice_from_str("dddd"), slice_from_str("eeeee")};
  TU_OK(mlog_append_batch(m, 5, types, p));
  char *log = gen_file(dir, "log-", mlog_generation(m));
  mlog_close(m);
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL_FATAL(got.n, 6);
  for (int i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL(got.v[i + 1].type, types[i]);
    CU_ASSERT(slice_eq(buf_slice(&got.v[i + 1].payload), p[i]));
  }
  mlog_close(m);
  seen_free(&got);
  buf f = BUF_INIT;
  TU_OK(env_read_file(env_posix(), log, 1 << 20, &f));
  /* Cut in the middle of the fourth record. */
  size_t cut = 24 + (9 + 1) + (9 + 2) + (9 + 0) + 5;
  TU_OK(env_write_file_atomic(env_posix(), log, slice_make(f.data, cut)));
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  CU_ASSERT_EQUAL(got.n, 4);
  mlog_close(m);
  seen_free(&got);
  buf_free(&f);
  free(log);
  free(dir);
}

static bool g_active;
static bool still_active(void *ctx) {
  (void)ctx;
  return g_active;
}

static bool exists_in(const char *dir, const char *name) {
  char *p = xmalloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  bool r = env_exists(env_posix(), p);
  free(p);
  return r;
}

/* Per-epoch logs (docs/ha.md, "Fencing the metadata log"): a master of a
 * newer epoch replays the older epochs' files, writes its own, and retires
 * the old ones; an older epoch can neither open the directory again nor
 * have its late files read; an append made after leadership ended is not
 * acknowledged. */
static void test_master_epochs(void) {
  char *dir = master_dir();
  seen got = {0};
  mlog *m;
  /* Epoch 0 (no ZooKeeper): the old names. */
  TU_OK(mlog_open(env_posix(), dir, collect, &got, &m));
  TU_OK(mlog_roll(m, 1, slice_from_str("S0")));
  TU_OK(mlog_append(m, 2, slice_from_str("a")));
  CU_ASSERT(exists_in(dir, "log-0000000000000001"));
  mlog_close(m);
  uint64_t ep = 99;
  TU_OK(mlog_peek_epoch(env_posix(), dir, &ep));
  CU_ASSERT_EQUAL(ep, 0);

  /* Epoch 4 replays epoch 0's snapshot and log, then writes its own. */
  TU_OK(mlog_open_epoch(env_posix(), dir, 4, collect, &got, &m));
  CU_ASSERT_EQUAL_FATAL(got.n, 2);
  CU_ASSERT(slice_eq(buf_slice(&got.v[1].payload), slice_from_str("a")));
  seen_free(&got);
  CU_ASSERT_EQUAL(mlog_epoch(m), 0);
  TU_OK(mlog_roll(m, 1, slice_from_str("S4")));
  CU_ASSERT_EQUAL(mlog_epoch(m), 4);
  TU_OK(mlog_append(m, 2, slice_from_str("b")));
  CU_ASSERT(exists_in(dir, "snap-0000000000000004-0000000000000002"));
  CU_ASSERT(exists_in(dir, "log-0000000000000004-0000000000000002"));
  CU_ASSERT(!exists_in(dir, "log-0000000000000001")); /* retired */
  CU_ASSERT(!exists_in(dir, "snap-0000000000000001"));

  /* The leadership check after every durable append. */
  g_active = true;
  mlog_set_guard(m, still_active, NULL);
  TU_OK(mlog_append(m, 2, slice_from_str("c")));
  g_active = false;
  mica_err *err = mlog_append(m, 2, slice_from_str("late"));
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_MASTER);
  if (err) CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "master epoch 4"));
  err_free(err);
  CU_ASSERT(mlog_needs_roll(m));
  mlog_close(m);
  TU_OK(mlog_peek_epoch(env_posix(), dir, &ep));
  CU_ASSERT_EQUAL(ep, 4);

  /* A deposed epoch-3 master's files, written late with a higher
   * generation, are older than epoch 4's: never read, deleted. */
  const char *late[] = {"snap-0000000000000003-0000000000000099",
                        "log-0000000000000003-0000000000000099"};
  for (int i = 0; i < 2; i++) {
    char *p = xmalloc(strlen(dir) + 64);
    sprintf(p, "%s/%s", dir, late[i]);
    TU_OK(env_write_file_atomic(env_posix(), p, slice_from_str("garbage")));
    free(p);
  }
  /* An older epoch may not open what a newer one wrote. */
  err = mlog_open_epoch(env_posix(), dir, 3, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_MASTER);
  if (err) CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "master epoch 4"));
  err_free(err);
  seen_free(&got);
  /* Epoch 5 reads epoch 4's records (the late one too: it is durable,
   * merely never acknowledged), not the garbage. */
  TU_OK(mlog_open_epoch(env_posix(), dir, 5, collect, &got, &m));
  CU_ASSERT_EQUAL_FATAL(got.n, 4);
  CU_ASSERT(slice_eq(buf_slice(&got.v[0].payload), slice_from_str("S4")));
  CU_ASSERT(slice_eq(buf_slice(&got.v[2].payload), slice_from_str("c")));
  seen_free(&got);
  TU_OK(mlog_roll(m, 1, slice_from_str("S5")));
  for (int i = 0; i < 2; i++) CU_ASSERT(!exists_in(dir, late[i]));
  CU_ASSERT(exists_in(dir, "snap-0000000000000005-0000000000000003"));
  mlog_close(m);
  /* Epoch 0 (a master run without ZooKeeper on this root) is refused too:
   * it would take the same epoch as the files it finds (mica-master). */
  err = mlog_open(env_posix(), dir, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_MASTER);
  err_free(err);
  seen_free(&got);
  free(dir);
}

/* On a store without in-place appends (object storage; here POSIX with
 * the fault env's switch) every batch is a new part file: nothing is ever
 * rewritten. Parts replay in order, roll away with their generation, a
 * missing part is CORRUPTION, and a part that lands after a failed append
 * (an upload delayed in the network) is never read once the log rolled. */
static void test_parts(void) {
  char *dir = master_dir();
  env_fault *f = env_fault_new(env_posix());
  env_fault_set_no_append(f, true);
  env *e = env_fault_env(f);
  CU_ASSERT_FALSE(env_appends_in_place(e, dir));
  mlog *m;
  seen got = {0};
  TU_OK(mlog_open(e, dir, collect, &got, &m));
  TU_OK(mlog_roll(m, 1, slice_from_str("S")));
  CU_ASSERT_EQUAL(mlog_generation(m), 1);
  TU_OK(mlog_append(m, 2, slice_from_str("one")));
  uint8_t types[2] = {3, 4};
  slice pl[2] = {slice_from_str("two"), slice_from_str("three")};
  TU_OK(mlog_append_batch(m, 2, types, pl));
  /* No log-1 file, two parts; each part costs the roll decision 64 KiB. */
  CU_ASSERT(!exists_in(dir, "log-0000000000000001"));
  CU_ASSERT(exists_in(dir, "log-0000000000000001.0000000000000001"));
  CU_ASSERT(exists_in(dir, "log-0000000000000001.0000000000000002"));
  CU_ASSERT(mlog_log_bytes(m) >= 2 * (64u << 10));
  mlog_close(m);

  TU_OK(mlog_open(e, dir, collect, &got, &m));
  CU_ASSERT_EQUAL_FATAL(got.n, 4);
  CU_ASSERT(slice_eq(buf_slice(&got.v[0].payload), slice_from_str("S")));
  CU_ASSERT(slice_eq(buf_slice(&got.v[1].payload), slice_from_str("one")));
  CU_ASSERT(slice_eq(buf_slice(&got.v[2].payload), slice_from_str("two")));
  CU_ASSERT_EQUAL(got.v[3].type, 4);
  seen_free(&got);

  /* A failed append needs a roll; the roll retires generation 1's parts,
   * and a late copy of the failed part (written here by hand, as a delayed
   * upload would land) is never replayed. */
  TU_OK(mlog_roll(m, 1, slice_from_str("T")));
  CU_ASSERT(!exists_in(dir, "log-0000000000000001.0000000000000001"));
  env_fault_fail_nth(f, ENV_OP_OPEN, 1, false);
  mica_err *ferr = mlog_append(m, 5, slice_from_str("lost"));
  CU_ASSERT_PTR_NOT_NULL(ferr);
  err_free(ferr);
  CU_ASSERT_TRUE(mlog_needs_roll(m));
  TU_OK(mlog_roll(m, 1, slice_from_str("U")));
  {
    /* The failed part of generation 2, landing late. */
    buf b = BUF_INIT;
    buf_append(&b, "MICAMLOG", 8);
    char late[1200];
    snprintf(late, sizeof late, "%s/log-0000000000000002.0000000000000001",
             dir);
    TU_OK(env_write_file_atomic(env_posix(), late, buf_slice(&b)));
    buf_free(&b);
  }
  TU_OK(mlog_append(m, 6, slice_from_str("kept")));
  mlog_close(m);
  TU_OK(mlog_open(e, dir, collect, &got, &m));
  CU_ASSERT_EQUAL_FATAL(got.n, 2);
  CU_ASSERT(slice_eq(buf_slice(&got.v[0].payload), slice_from_str("U")));
  CU_ASSERT(slice_eq(buf_slice(&got.v[1].payload), slice_from_str("kept")));
  seen_free(&got);

  /* A gap in the parts is CORRUPTION naming the generation. */
  TU_OK(mlog_roll(m, 1, slice_from_str("V")));
  TU_OK(mlog_append(m, 7, slice_from_str("a")));
  TU_OK(mlog_append(m, 8, slice_from_str("b")));
  mlog_close(m);
  char gap[1200];
  snprintf(gap, sizeof gap, "%s/log-0000000000000004.0000000000000001", dir);
  TU_OK(env_remove(env_posix(), gap));
  mica_err *err = mlog_open(e, dir, collect, &got, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "a part is missing"));
  err_free(err);
  seen_free(&got);
  env_fault_free(f);
  free(dir);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"round_trip", test_round_trip},
      {"lock", test_lock},
      {"torn_tail_every_length", test_torn_tail_every_length},
      {"corruption_in_middle", test_corruption_in_middle},
      {"replay_error_names_offset", test_replay_error_names_offset},
      {"failed_sync_never_resurfaces", test_failed_sync_never_resurfaces},
      {"crash_keeps_synced_records", test_crash_keeps_synced_records},
      {"batch", test_batch},
      {"master_epochs", test_master_epochs},
      {"parts", test_parts},
      CU_TEST_INFO_NULL};
  tu_add_suite("metalog", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
