/* test_tablet_clog_s3: the server commit log on S3 (clog.h, object mode:
 * one object PUT per group commit), against a real S3 server (s3rver)
 * behind the signature-checking, fault-injecting proxy
 * (tests/common/s3_harness.h).
 *
 *  - group_batching: records of six tablets added within one batch window
 *    are one PUT; a group that reaches the byte limit is PUT without
 *    waiting for the window; each tablet reads back only its records;
 *  - ordering_and_replay: many groups from three tablets replay in order,
 *    from a first object on, after a flushed sequence number;
 *    clog_replay_floor names the first object a replay still needs; a
 *    damaged object is CORRUPTION naming it and the offset, a log without
 *    its marker NOT_FOUND;
 *  - put_failure: a group whose PUT keeps failing is not acknowledged,
 *    leaves no object and nothing is replayed of it; the next group is
 *    written;
 *  - killed_owner_and_late_put: a tablet server process (forked) is
 *    killed with kill -9 after acknowledged writes; a new owner recovers
 *    every one of them from S3; a fenced old owner's PUT that lands after
 *    the take-over is never replayed, even after the new owner is killed
 *    too;
 *  - delete_after_flush_and_collect: a flush deletes the objects every
 *    tablet flushed past; a dead log's objects stay while a manifest needs
 *    them and go (with the marker, once old) after the take-over; both
 *    deletions are multi-object deletes (POST ?delete), not a DELETE per
 *    object;
 *  - wal_dir_elsewhere: through the tablet server's route env, the log
 *    lives under another s3:// prefix (--wal-dir s3://...);
 *  - replay_many_objects: a log of many objects replays every record in
 *    order with one GET per object and no HEAD (read ahead in parallel,
 *    checked in order); a damaged object in the middle is CORRUPTION
 *    naming it, and nothing after it is replayed; a listed object deleted
 *    before its turn is ABORTED naming it;
 *  - concurrent_recovery_one_read: six tablets' replays of one log at
 *    once fetch each object once (one GET for all), and each passes
 *    exactly its records (its epoch only, from its first object, above
 *    its flushed sequence number); with sharing off every replay reads
 *    every object; over the memory limit the objects not kept are read
 *    by each replay on its own, with the same records; a damaged object
 *    is CORRUPTION naming it and the offset for every replay; nothing
 *    stays held once the replays end;
 *  - sequential_recovery_linger: six replays of one log one after
 *    another (a tablet server's opens are serialized) read each object
 *    once, kept for the linger; the reaper drops them when it ends;
 *  - concurrent_opens_fenced_late_put: a killed server's four tablets
 *    opened at once by a new owner, one of them taken over earlier by a
 *    third server while the fenced old owner went on to PUT a late write
 *    for it: the late write is in the objects the other three replays
 *    share and is never replayed;
 *  - accept_lost_posix_log: a POSIX log lost with its machine keeps its
 *    tablet from opening until the operator accepts that log's loss by
 *    name (tab_options.accept_lost_logs, --accept-lost-commit-log);
 *  - failed_split_keeps_opened_daughter: a split whose right daughter's
 *    manifest PUT fails, the left daughter opened and written, then the
 *    parent reopened to finish: the left daughter keeps its write. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "common/env_route.h"
#include "common/path.h"
#include "common/s3/s3_client.h"
#include "tabletserver/clog.h"
#include "tabletserver/tablet.h"
#include "tabletserver/wbatch.h"
#include "tests/common/s3_harness.h"
#include "tests/tabletserver/tt.h"
#include "tests/harness/testutil.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)

static uint64_t g_horizon = CLOG_MARKER_HORIZON_US;

static clog *log_open(env *e, const char *root, const char *name,
                      uint64_t batch_us, uint64_t batch_bytes) {
  clog_options lo;
  clog_options_init(&lo);
  lo.batch_us = batch_us;
  lo.marker_horizon_us = g_horizon;
  if (batch_bytes) lo.batch_bytes = batch_bytes;
  clog *l = NULL;
  TU_OK(clog_open(e, tt_logs_root(root), name, &lo, &l));
  return l;
}

/* The log's objects: *groups group objects, *markers marker objects. */
static void count_objects(env *e, const char *root, const char *name,
                          size_t *groups, size_t *markers) {
  char *dir = clog_dir_path(tt_logs_root(root), name);
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(e, dir, &names, &n));
  *groups = *markers = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t v;
    if (clog_parse_segment_name(names[i], &v)) (*groups)++;
    else if (clog_parse_marker_name(names[i], &v)) (*markers)++;
  }
  env_free_names(names, n);
  free(dir);
}

/* Waits (up to 20 s) until the log holds `want` group objects: the log
 * deletes objects in the background. */
static size_t wait_groups(env *e, const char *root, const char *name,
                          size_t want) {
  size_t groups = 0, markers = 0;
  for (int i = 0; i < 400; i++) {
    count_objects(e, root, name, &groups, &markers);
    if (groups == want) break;
    usleep(50000);
  }
  return groups;
}

typedef struct seen {
  uint64_t seqs[256];
  size_t n;
} seen;

static mica_err *collect(void *arg, slice batch, const char *path,
                         uint64_t offset) {
  (void)path;
  (void)offset;
  seen *s = arg;
  wbatch *b = wbatch_new();
  mica_err *err = wbatch_decode(b, batch);
  if (err == NULL && s->n < 256) s->seqs[s->n++] = wbatch_seq(b);
  wbatch_free(b);
  return err;
}

static wbatch *batch_at(uint64_t seq, size_t value_bytes) {
  wbatch *b = wbatch_new();
  char *v = xcalloc(1, value_bytes + 1);
  memset(v, 'v', value_bytes);
  wbatch_put(b, S("k"), S(v));
  free(v);
  wbatch_set_seq(b, seq);
  return b;
}

/* ---- group batching ---- */

static void test_group_batching(void) {
  char *root = s3h_new_root();
  /* A long window: six tablets' records added inside it are one group. */
  clog *l = log_open(s3h_env, root, "g", 300000, 0);
  s3h_log_reset();
  wbatch *b[6];
  clog_ticket tk[6];
  for (int i = 0; i < 6; i++) {
    b[i] = batch_at(10, 8);
    TU_OK(clog_add(l, (uint64_t)i + 1, 7, wbatch_data(b[i]), true, &tk[i]));
  }
  for (int i = 0; i < 6; i++) TU_OK(clog_commit(l, &tk[i]));
  clog_stats st;
  clog_get_stats(l, &st);
  CU_ASSERT_EQUAL(st.puts, 1);
  CU_ASSERT_EQUAL(st.put_errors, 0);
  char *text = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(text, "PUT ", "/clog-"), 1);
  free(text);
  size_t groups, markers;
  count_objects(s3h_env, root, "g", &groups, &markers);
  CU_ASSERT_EQUAL(groups, 1);
  CU_ASSERT_EQUAL(markers, 1);
  /* Each tablet reads back its own record only; another epoch nothing. */
  char *dir = clog_dir_path(tt_logs_root(root), "g");
  for (int i = 0; i < 6; i++) {
    seen s = {{0}, 0};
    TU_OK(clog_replay(s3h_env, dir, (uint64_t)i + 1, 7, 1, 0, collect, &s,
                      NULL));
    CU_ASSERT_EQUAL(s.n, 1);
    seen none = {{0}, 0};
    TU_OK(clog_replay(s3h_env, dir, (uint64_t)i + 1, 8, 1, 0, collect, &none,
                      NULL));
    CU_ASSERT_EQUAL(none.n, 0);
    wbatch_free(b[i]);
  }
  free(dir);
  TU_OK(clog_close(l));

  /* The byte limit closes a group at once: a 5-second window, and a
   * record larger than the 4 KiB limit is PUT without waiting for it. */
  l = log_open(s3h_env, root, "big", 5000000, 4096);
  wbatch *big = batch_at(1, 6000);
  clog_ticket t1;
  uint64_t t0 = env_now_micros(s3h_env);
  TU_OK(clog_add(l, 1, 1, wbatch_data(big), true, &t1));
  TU_OK(clog_commit(l, &t1));
  CU_ASSERT(env_now_micros(s3h_env) - t0 < 4000000);
  wbatch_free(big);
  TU_OK(clog_close(l));
  s3h_assert_all_signed();
  free(root);
}

/* ---- ordering and replay ---- */

static void test_ordering_and_replay(void) {
  char *root = s3h_new_root();
  clog *l = log_open(s3h_env, root, "o", 0, 0);
  CU_ASSERT(clog_objects(l));
  /* Three tablets, 30 writes each, committed one by one: many groups. */
  for (uint64_t seq = 1; seq <= 30; seq++)
    for (uint64_t t = 1; t <= 3; t++) {
      wbatch *b = batch_at(seq, 4);
      clog_ticket tk;
      TU_OK(clog_add(l, t, 5, wbatch_data(b), true, &tk));
      TU_OK(clog_commit(l, &tk));
      wbatch_free(b);
    }
  size_t groups, markers;
  count_objects(s3h_env, root, "o", &groups, &markers);
  CU_ASSERT(groups >= 30);
  char *dir = clog_dir_path(tt_logs_root(root), "o");
  seen s = {{0}, 0};
  clog_replay_stats rs;
  TU_OK(clog_replay(s3h_env, dir, 2, 5, 1, 10, collect, &s, &rs));
  CU_ASSERT_EQUAL(s.n, 20);
  for (size_t i = 0; i < s.n; i++) CU_ASSERT_EQUAL(s.seqs[i], 11 + i);
  CU_ASSERT_EQUAL(rs.records, 20);
  CU_ASSERT_EQUAL(rs.records_seen, 90);

  /* Tablet 2 flushed through 20: the floor is the object holding 21,
   * and a replay from there still finds 21..30. */
  uint64_t floor = clog_replay_floor(l, 2, 5, 20, 1);
  CU_ASSERT(floor > 1);
  seen f = {{0}, 0};
  TU_OK(clog_replay(s3h_env, dir, 2, 5, floor, 20, collect, &f, &rs));
  CU_ASSERT_EQUAL(f.n, 10);
  CU_ASSERT(f.n > 0 && f.seqs[0] == 21);
  CU_ASSERT(rs.records_seen < 90);
  /* Never backwards, and the current object when nothing is left. */
  CU_ASSERT_EQUAL(clog_replay_floor(l, 2, 5, 20, floor + 1000), floor + 1000);
  CU_ASSERT_EQUAL(clog_replay_floor(l, 2, 5, 30, 1), clog_current_segment(l));
  TU_OK(clog_close(l));

  /* A byte flipped inside an object: CORRUPTION naming it and where. */
  char name[64];
  char *p = path_join(dir, clog_segment_name(name, sizeof name, 3));
  buf obj = BUF_INIT;
  TU_OK(env_read_file(s3h_env, p, 1 << 20, &obj));
  obj.data[obj.len - 2] ^= 0x20;
  TU_OK(env_write_file_atomic(s3h_env, p, buf_slice(&obj)));
  seen d = {{0}, 0};
  mica_err *err = clog_replay(s3h_env, dir, 1, 5, 1, 0, collect, &d, NULL);
  tt_expect_err(err, MICA_CORRUPTION, name, "offset 37");
  buf_free(&obj);
  free(p);

  /* No marker, no log: NOT_FOUND (the tablet reports CORRUPTION). */
  char *other = clog_dir_path(tt_logs_root(root), "never-opened");
  char *q = path_join(other, clog_segment_name(name, sizeof name, 1));
  TU_OK(env_write_file_atomic(s3h_env, q, S("x")));
  TU_ERR(clog_replay(s3h_env, other, 1, 5, 1, 0, collect, &d, NULL),
         MICA_NOT_FOUND);
  /* A name is one incarnation: a log that lists anything is refused. */
  clog *again = NULL;
  TU_ERR(clog_open(s3h_env, tt_logs_root(root), "o", NULL, &again),
         MICA_ALREADY_EXISTS);
  free(q);
  free(other);
  free(dir);
  free(root);
}

/* ---- a failed PUT ---- */

static void test_put_failure(void) {
  char *root = s3h_new_root();
  clog *l = log_open(s3h_fast_env, root, "f", 0, 0);
  /* Every PUT of a group object fails until the deadline (3 s). */
  s3h_fault("kind=500&count=100000&method=PUT&match=clog-");
  wbatch *b1 = batch_at(1, 4), *b2 = batch_at(2, 4);
  clog_ticket t1, t2;
  TU_OK(clog_add(l, 1, 1, wbatch_data(b1), true, &t1));
  TU_OK(clog_add(l, 1, 1, wbatch_data(b2), true, &t2));
  mica_err *e1 = clog_commit(l, &t1), *e2 = clog_commit(l, &t2);
  CU_ASSERT_PTR_NOT_NULL(e1);
  CU_ASSERT_PTR_NOT_NULL(e2);
  CU_ASSERT(e1 != NULL && strstr(err_msg(e1), "not acknowledged") != NULL);
  if (e1 != NULL) fprintf(stderr, "\n  (expected) %s\n", err_msg(e1));
  err_free(e1);
  err_free(e2);
  s3h_proxy_ctl("POST", "clear", NULL);
  size_t groups, markers;
  count_objects(s3h_env, root, "f", &groups, &markers);
  CU_ASSERT_EQUAL(groups, 0);
  char *dir = clog_dir_path(tt_logs_root(root), "f");
  seen s = {{0}, 0};
  TU_OK(clog_replay(s3h_env, dir, 1, 1, 1, 0, collect, &s, NULL));
  CU_ASSERT_EQUAL(s.n, 0);
  /* The next group is written and acknowledged; only it replays. */
  wbatch *b3 = batch_at(3, 4);
  clog_ticket t3;
  TU_OK(clog_add(l, 1, 1, wbatch_data(b3), true, &t3));
  TU_OK(clog_commit(l, &t3));
  TU_OK(clog_replay(s3h_env, dir, 1, 1, 1, 0, collect, &s, NULL));
  CU_ASSERT_EQUAL(s.n, 1);
  CU_ASSERT_EQUAL(s.seqs[0], 3);
  clog_stats st;
  clog_get_stats(l, &st);
  /* The two failed writes went out as one group or, when the writer
   * thread took the first before the second was added, as two. */
  CU_ASSERT(st.put_errors >= 1 && st.put_errors <= 2);
  CU_ASSERT_EQUAL(st.puts, 1);
  /* The failed group's records pin its (absent) object like any other;
   * close reports its error. */
  mica_err *ce = clog_close(l);
  CU_ASSERT_PTR_NOT_NULL(ce);
  err_free(ce);
  wbatch_free(b1);
  wbatch_free(b2);
  wbatch_free(b3);
  free(dir);
  free(root);
}

/* ---- a killed owner, and a fenced owner's late PUT ---- */

/* Forks a child that runs `body(arg)` (which _exits on any failure),
 * then tells the parent through a pipe and waits to be killed. Returns
 * the child's pid once it has told, or -1. */
static pid_t spawn_ready(void (*body)(const void *arg), const void *arg) {
  int p[2];
  if (pipe(p) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    body(arg);
    if (write(p[1], "ok", 2) != 2) _exit(7);
    for (;;) pause();
  }
  close(p[1]);
  char got[2] = {0, 0};
  ssize_t n = read(p[0], got, 2);
  close(p[0]);
  CU_ASSERT_EQUAL(n, 2);
  return pid;
}

typedef struct owner_arg {
  const char *root, *name;
  uint64_t epoch;
  const char *key, *val;
} owner_arg;

/* A forked "tablet server": opens tablet 1 under `epoch` with its own
 * log `name` on its own S3 env, writes `key`=`val` (acknowledged), tells
 * the parent and waits to be killed. */
static void owner_body(const void *arg) {
  const owner_arg *w = arg;
  const char *root = w->root, *name = w->name, *key = w->key, *val = w->val;
  uint64_t epoch = w->epoch;
  s3_config c;
  s3h_config_for(&c, s3h_proxy_endpoint, false);
  env *e = NULL;
  if (env_s3_new(&c, &e) != NULL) _exit(3);
  res_pool *res = tt_res(e, 64 << 20);
  clog_options lo;
  clog_options_init(&lo);
  clog *l = NULL;
  if (clog_open(e, tt_logs_root(root), name, &lo, &l) != NULL) _exit(4);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 1 << 20;
  o.auto_compact = false;
  o.log = l;
  tablet *t = NULL;
  mica_err *err = tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE,
                           epoch, &o, &t);
  if (err != NULL) {
    fprintf(stderr, "child open: %s\n", err_msg(err));
    _exit(5);
  }
  if (tab_put(t, S(key), S(val), true) != NULL) _exit(6);
}

static pid_t spawn_owner(const char *root, const char *name, uint64_t epoch,
                         const char *key, const char *val) {
  owner_arg w = {root, name, epoch, key, val};
  return spawn_ready(owner_body, &w);
}

static void kill9(pid_t pid) {
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
}

static void test_killed_owner_and_late_put(void) {
  char *root = s3h_new_root();
  tab_options o;
  /* Server A (this process), epoch 1. */
  res_pool *ra = tt_res(s3h_env, 64 << 20);
  clog *la = log_open(s3h_env, root, "a", 0, 0);
  tt_options(&o);
  o.memtable_bytes = 1 << 20;
  o.auto_compact = false;
  o.log = la;
  tablet *ta = NULL;
  TU_OK(tab_open(ra, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &ta));
  tt_put(ta, "k1", "from-a");

  /* Server B (a process) takes the tablet over under epoch 2, writes k3
   * (acknowledged), and is killed with kill -9: k3 is only in B's log. */
  pid_t b = spawn_owner(root, "b", 2, "k3", "from-b");
  /* A is fenced but does not know it: its late write is PUT into its own
   * log after B's take-over (the lease keeps it from being acknowledged
   * to a client; the log's job is never to replay it). */
  tt_put(ta, "k2", "late-from-a");
  kill9(b);

  /* C recovers from B's log, never from A's. */
  res_pool *rc = tt_res(s3h_env, 64 << 20);
  clog *lc = log_open(s3h_env, root, "c", 0, 0);
  o.log = lc;
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
  seen s = {{0}, 0};
  TU_OK(clog_replay(s3h_env, adir, 1, 1, 1, 0, collect, &s, NULL));
  CU_ASSERT_EQUAL(s.n, 2);
  free(adir);
  TU_ERR(tab_close(ta), MICA_STALE_EPOCH);
  TU_OK(clog_close(la));
  res_free(ra);
  TU_OK(tab_close(tc));
  TU_OK(clog_close(lc));
  res_free(rc);
  free(root);
}

/* ---- deletion ---- */

static void test_delete_after_flush_and_collect(void) {
  char *root = s3h_new_root();
  res_pool *res = tt_res(s3h_env, 64 << 20);
  /* The collector below runs with a zero marker horizon, so this server
   * must use the same: it then renews its marker at every take-over. */
  g_horizon = 0;
  clog *l = log_open(s3h_env, root, "live", 0, 0);
  g_horizon = CLOG_MARKER_HORIZON_US;
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 1 << 20;
  o.auto_compact = false;
  o.log = l;
  tablet *t = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, 2), 2, NONE, NONE, 1, &o, &t));
  for (int i = 0; i < 5; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    tt_put(t, k, "v");
  }
  size_t groups, markers;
  count_objects(s3h_env, root, "live", &groups, &markers);
  CU_ASSERT_EQUAL(groups, 5);
  /* Flushed past every record: the log's objects go (in the
   * background: a flush does not wait for their deletion), by
   * multi-object delete (POST ?delete), not one DELETE each. */
  s3h_log_reset();
  TU_OK(tab_flush(t));
  CU_ASSERT_EQUAL(wait_groups(s3h_env, root, "live", 0), 0);
  char *text = s3h_log_text();
  CU_ASSERT(S3H_COUNT(text, "POST ", "?delete") >= 1);
  CU_ASSERT(S3H_COUNT(text, "POST ", "?delete") <= 5);
  CU_ASSERT_EQUAL(S3H_COUNT(text, "DELETE ", "/clog-"), 0);
  free(text);
  count_objects(s3h_env, root, "live", &groups, &markers);
  CU_ASSERT_EQUAL(markers, 1);
  clog_stats cs;
  clog_get_stats(l, &cs);
  CU_ASSERT_EQUAL(cs.segments_deleted, 5);
  TU_OK(tab_close(t));

  /* A killed server's log: its tablet's manifest needs it, so the
   * collector (even with a zero marker horizon) leaves it alone. */
  pid_t d = spawn_owner(root, "dead", 2, "kd", "from-dead");
  kill9(d);
  /* tablet 1 lives in another directory; tablet 2 stays closed */
  uint64_t removed = 9;
  TU_OK(clog_collect_dead_horizon(s3h_env, tt_tablets_dir(root), 0,
                                  &removed));
  count_objects(s3h_env, root, "dead", &groups, &markers);
  CU_ASSERT_EQUAL(groups, 1);
  CU_ASSERT_EQUAL(markers, 1);
  /* The live log is needed by nothing now: with a zero horizon its
   * marker goes too (a take-over renews it, below). */
  CU_ASSERT_EQUAL(removed, 1);

  /* The take-over (this server, epoch 3) recovers the acknowledged write
   * and names the live log, renewing its marker. */
  tablet *t1 = NULL;
  o.log = l;
  clog_get_stats(l, &cs);
  uint64_t markers_before = cs.markers;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 3, &o, &t1));
  tt_expect(t1, "kd", "from-dead");
  clog_get_stats(l, &cs);
  CU_ASSERT(cs.markers > markers_before);
  tt_put(t1, "after", "x");
  /* Now the dead log goes, objects (one multi-object delete) and
   * marker; the live one, named by tablet 1's manifest, keeps its objects
   * and marker. */
  s3h_log_reset();
  TU_OK(clog_collect_dead_horizon(s3h_env, tt_tablets_dir(root), 0,
                                  &removed));
  text = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(text, "POST ", "?delete"), 1);
  CU_ASSERT_EQUAL(S3H_COUNT(text, "DELETE ", "/clog-"), 0);
  free(text);
  CU_ASSERT_EQUAL(removed, 1);
  count_objects(s3h_env, root, "dead", &groups, &markers);
  CU_ASSERT_EQUAL(groups + markers, 0);
  count_objects(s3h_env, root, "live", &groups, &markers);
  CU_ASSERT_EQUAL(groups, 1);
  CU_ASSERT_EQUAL(markers, 1);
  TU_OK(tab_close(t1));
  TU_OK(clog_close(l));
  res_free(res);
  free(root);
}

/* ---- accepting a lost POSIX log ---- */

/* A forked server on the POSIX root `root` (arg[0]), log `name`
 * (arg[1]): tablet 1 under epoch 1, k1 flushed to an SSTable, k2 only in
 * the log; then it waits to be killed. */
static void posix_owner_body(const void *arg) {
  const char *const *a = arg;
  const char *root = a[0], *name = a[1];
  res_pool *res = tt_res(env_posix(), 64 << 20);
  clog *l = NULL;
  if (clog_open(env_posix(), tt_logs_root(root), name, NULL, &l) != NULL)
    _exit(4);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 1 << 20;
  o.auto_compact = false;
  o.log = l;
  tablet *t = NULL;
  if (tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 1, &o, &t) !=
      NULL)
    _exit(5);
  if (tab_put(t, S("k1"), S("flushed"), true) != NULL) _exit(6);
  if (tab_flush(t) != NULL) _exit(6);
  if (tab_put(t, S("k2"), S("only-in-the-log"), true) != NULL) _exit(6);
}

static pid_t spawn_posix_owner(const char *root, const char *name) {
  const char *a[2] = {root, name};
  return spawn_ready(posix_owner_body, a);
}

/* A server whose commit log was on its own disk is gone with the disk:
 * its tablet does not open elsewhere (CORRUPTION naming the log and the
 * way out) until the operator accepts the loss of that log by name;
 * then it opens with what its SSTables hold, says so in its stats, and
 * takes writes. Another name accepts nothing. */
static void test_accept_lost_posix_log(void) {
  const char *root = tu_tmpdir();
  pid_t a = spawn_posix_owner(root, "ts-lost");
  kill9(a);
  char *adir = clog_dir_path(tt_logs_root(root), "ts-lost");
  TU_OK(env_remove_tree(env_posix(), adir)); /* the machine's disk */
  free(adir);
  res_pool *res = tt_res(env_posix(), 64 << 20);
  clog *l = NULL;
  TU_OK(clog_open(env_posix(), tt_logs_root(root), "ts-new", NULL, &l));
  tab_options o;
  tt_options(&o);
  o.log = l;
  tablet *t = NULL;
  mica_err *err = tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o,
                           &t);
  tt_expect_err(err, MICA_CORRUPTION, "ts-lost",
                "--accept-lost-commit-log ts-lost");
  static const char *const other[] = {"ts-other", NULL};
  o.accept_lost_logs = other;
  TU_ERR(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t),
         MICA_CORRUPTION);
  static const char *const lost[] = {"ts-other", "ts-lost", NULL};
  o.accept_lost_logs = lost;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t));
  tt_expect(t, "k1", "flushed");
  tt_expect(t, "k2", NULL);
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_TRUE(st.lost_log_accepted);
  tt_put(t, "k3", "after");
  TU_OK(tab_close(t));
  /* Its manifest names no lost log any more: a plain open works. */
  o.accept_lost_logs = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 3, &o, &t));
  tt_expect(t, "k3", "after");
  tab_get_stats(t, &st);
  CU_ASSERT_FALSE(st.lost_log_accepted);
  TU_OK(tab_close(t));
  TU_OK(clog_close(l));
  res_free(res);
}

/* ---- --wal-dir s3://elsewhere ---- */

static bool is_log_name(const char *name) { return clog_is_file_name(name); }

/* The tablet server's route env with the log under another S3 prefix
 * (main.c: --wal-dir s3://BUCKET/PREFIX): the log's objects, marker
 * included, land there and nowhere under the data root, and replay
 * through the same env finds them. */
static void test_wal_dir_elsewhere(void) {
  char *root = s3h_new_root();
  char *walroot = s3h_new_root();
  env *route = env_route_new(s3h_env, root, s3h_env, walroot, is_log_name);
  clog *l = log_open(route, root, "w", 0, 0);
  CU_ASSERT(clog_objects(l));
  wbatch *b = batch_at(4, 8);
  clog_ticket tk;
  TU_OK(clog_add(l, 9, 2, wbatch_data(b), true, &tk));
  TU_OK(clog_commit(l, &tk));
  wbatch_free(b);
  size_t groups, markers;
  count_objects(s3h_env, walroot, "w", &groups, &markers);
  CU_ASSERT_EQUAL(groups, 1);
  CU_ASSERT_EQUAL(markers, 1);
  count_objects(s3h_env, root, "w", &groups, &markers);
  CU_ASSERT_EQUAL(groups + markers, 0);
  char *dir = clog_dir_path(tt_logs_root(root), "w");
  seen s = {{0}, 0};
  TU_OK(clog_replay(route, dir, 9, 2, 1, 0, collect, &s, NULL));
  CU_ASSERT_EQUAL(s.n, 1);
  free(dir);
  TU_OK(clog_close(l));
  env_route_free(route);
  free(walroot);
  free(root);
}

/* A split whose right daughter's manifest PUT keeps failing leaves the
 * parent SPLITTING and the left daughter written; the left daughter opens
 * (as ts_split_tablet does after a failed split) and acknowledges a
 * write. Reopening the parent to finish the split (the missing daughter
 * makes a server do that) writes the right daughter and keeps the left
 * one with its write. */
static void test_failed_split_keeps_opened_daughter(void) {
  char *root = s3h_new_root();
  res_pool *r = tt_res(s3h_fast_env, 64 << 20);
  clog *l = log_open(s3h_fast_env, root, "s", 0, 0);
  tab_options o;
  tt_options(&o);
  o.log = l;
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 10), 10, NONE, NONE, 5, &o, &t));
  tt_put(t, "a", "parent");
  tt_put(t, "z", "parent");
  const char *rd = tt_tablet_dir(root, 12);
  char spec[256];
  snprintf(spec, sizeof(spec),
           "kind=500&count=100000&method=PUT&match=%s/MANIFEST",
           strrchr(rd, '/') + 1);
  s3h_fault(spec);
  mica_err *err = tab_split(t, S("m"), 11, 12, &o, NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL(err);
  if (err != NULL) fprintf(stderr, "\n  (expected) %s\n", err_msg(err));
  err_free(err);
  s3h_proxy_ctl("POST", "clear", NULL);
  tablet *d = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 11), 11, NONE, S("m"), 5, &o, &d));
  tt_put(d, "b", "daughter");
  TU_OK(tab_close(d));
  tablet *p = NULL;
  err = tab_open(r, tt_tablet_dir(root, 10), 10, NONE, NONE, 5, &o, &p);
  CU_ASSERT_EQUAL(err_code(err), MICA_NOT_SERVING);
  err_free(err);
  d = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 11), 11, NONE, S("m"), 5, &o, &d));
  if (d != NULL) {
    tt_expect(d, "b", "daughter");
    tt_expect(d, "a", "parent");
    TU_OK(tab_close(d));
  }
  d = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 12), 12, S("m"), NONE, 5, &o, &d));
  if (d != NULL) {
    tt_expect(d, "z", "parent");
    TU_OK(tab_close(d));
  }
  TU_OK(clog_close(l));
  res_free(r);
  free(root);
}

/* ---- a log of many objects ---- */

typedef struct deleter {
  seen s;
  const char *path; /* removed when the record of sequence `at` arrives */
  uint64_t at;
} deleter;

static mica_err *collect_then_delete(void *arg, slice batch,
                                     const char *path, uint64_t offset) {
  deleter *d = arg;
  mica_err *err = collect(&d->s, batch, path, offset);
  if (err == NULL && d->s.n > 0 && d->s.seqs[d->s.n - 1] == d->at)
    err = env_remove(s3h_env, d->path);
  return err;
}

static void test_replay_many_objects(void) {
  char *root = s3h_new_root();
  clog *l = log_open(s3h_env, root, "m", 0, 0);
  enum { N = 40 };
  for (uint64_t seq = 1; seq <= N; seq++) {
    wbatch *b = batch_at(seq, 8);
    clog_ticket tk;
    TU_OK(clog_add(l, 7, 3, wbatch_data(b), true, &tk));
    TU_OK(clog_commit(l, &tk));
    wbatch_free(b);
  }
  TU_OK(clog_close(l));
  size_t groups, markers;
  count_objects(s3h_env, root, "m", &groups, &markers);
  CU_ASSERT_EQUAL(groups, N);
  char *dir = clog_dir_path(tt_logs_root(root), "m");

  /* Every record, in order; one GET per object, no HEAD, one LIST. */
  s3_stats a, b;
  s3_get_stats(&a);
  seen s = {{0}, 0};
  clog_replay_stats rs;
  TU_OK(clog_replay(s3h_env, dir, 7, 3, 1, 0, collect, &s, &rs));
  s3_get_stats(&b);
  CU_ASSERT_EQUAL(s.n, N);
  for (size_t i = 0; i < s.n; i++) CU_ASSERT_EQUAL(s.seqs[i], i + 1);
  CU_ASSERT_EQUAL(rs.segments_read, N);
  CU_ASSERT_EQUAL(rs.records, N);
  CU_ASSERT_EQUAL(b.requests[S3_REQ_HEAD] - a.requests[S3_REQ_HEAD], 0);
  /* (Every attempt is counted: a retried GET is one request.) */
  CU_ASSERT_EQUAL(b.requests[S3_REQ_GET] - a.requests[S3_REQ_GET] -
                      (b.retries - a.retries),
                  N);
  CU_ASSERT_EQUAL(b.requests[S3_REQ_LIST] - a.requests[S3_REQ_LIST], 1);

  /* From a later object and after a sequence number: only what follows. */
  seen t = {{0}, 0};
  TU_OK(clog_replay(s3h_env, dir, 7, 3, 11, 25, collect, &t, &rs));
  CU_ASSERT_EQUAL(t.n, N - 25);
  CU_ASSERT(t.n > 0 && t.seqs[0] == 26 && t.seqs[t.n - 1] == N);
  CU_ASSERT_EQUAL(rs.segments_read, N - 10);

  /* Object 23 damaged: CORRUPTION naming it and the offset; the records
   * of objects 1-22 were replayed, none after (read-ahead fetched later
   * objects, but the replay takes them in order and stops). */
  char name[64];
  char *p = path_join(dir, clog_segment_name(name, sizeof name, 23));
  buf obj = BUF_INIT;
  TU_OK(env_read_file(s3h_env, p, 1 << 20, &obj));
  buf good = BUF_INIT;
  buf_append(&good, obj.data, obj.len);
  obj.data[obj.len - 2] ^= 0x20;
  TU_OK(env_write_file_atomic(s3h_env, p, buf_slice(&obj)));
  seen d = {{0}, 0};
  mica_err *err = clog_replay(s3h_env, dir, 7, 3, 1, 0, collect, &d, NULL);
  tt_expect_err(err, MICA_CORRUPTION, name, "offset 37");
  CU_ASSERT_EQUAL(d.n, 22);
  CU_ASSERT(d.n > 0 && d.seqs[d.n - 1] == 22);
  /* Truncated to nothing: CORRUPTION too (an empty object). */
  TU_OK(env_write_file_atomic(s3h_env, p, NONE));
  seen z = {{0}, 0};
  err = clog_replay(s3h_env, dir, 7, 3, 1, 0, collect, &z, NULL);
  tt_expect_err(err, MICA_CORRUPTION, name, NULL);
  CU_ASSERT_EQUAL(z.n, 22);
  TU_OK(env_write_file_atomic(s3h_env, p, buf_slice(&good)));

  /* Object 31 deleted during the replay, after the listing named it
   * (when the record of object 5 is delivered: read-ahead keeps at most
   * 8 objects ahead, so 31 is not fetched yet): ABORTED naming it, and
   * the records up to object 30 were replayed. */
  char name31[64];
  char *q = path_join(dir, clog_segment_name(name31, sizeof name31, 31));
  deleter g = {{{0}, 0}, q, 5};
  err = clog_replay(s3h_env, dir, 7, 3, 1, 0, collect_then_delete, &g, NULL);
  tt_expect_err(err, MICA_ABORTED, name31, NULL);
  CU_ASSERT_EQUAL(g.s.n, 30);
  free(q);
  buf_free(&good);
  buf_free(&obj);
  free(p);
  free(dir);
  free(root);
}

/* ---- several tablets recovering from one log at once ---- */

enum { RT = 6, RN = 24 };

/* Writes log `name`: RN group objects, each with one record of each of
 * the RT tablets 11.. under epoch 4 (sequence = the object's number) and
 * one record of tablet 11 under epoch 3 (sequence 1000 + number: another
 * owner's, never to be passed for epoch 4). */
static void write_shared_log(const char *root, const char *name) {
  clog *l = log_open(s3h_env, root, name, 200000, 0);
  for (uint64_t n = 1; n <= RN; n++) {
    clog_ticket tk[RT + 1];
    wbatch *b[RT + 1];
    for (int i = 0; i <= RT; i++) {
      b[i] = batch_at(i < RT ? n : 1000 + n, 40);
      TU_OK(clog_add(l, i < RT ? 11 + (uint64_t)i : 11, i < RT ? 4 : 3,
                     wbatch_data(b[i]), true, &tk[i]));
    }
    TU_OK(clog_sync(l));
    for (int i = 0; i <= RT; i++) {
      TU_OK(clog_commit(l, &tk[i]));
      wbatch_free(b[i]);
    }
  }
  TU_OK(clog_close(l));
  size_t groups, markers;
  count_objects(s3h_env, root, name, &groups, &markers);
  CU_ASSERT_EQUAL(groups, RN);
}

typedef struct replayer {
  const char *dir;
  uint64_t tablet, epoch, first, after;
  unsigned gate; /* wait at the first record until this many replays run */
  bool gated;
  seen s;
  clog_replay_stats st;
  mica_err *err;
} replayer;

/* collect(), but the first record waits until `gate` replays run in the
 * process (up to 30 s): so none ends before all have started, and they
 * overlap whatever the scheduling. */
static mica_err *gated_collect(void *arg, slice batch, const char *path,
                               uint64_t offset) {
  replayer *r = arg;
  if (!r->gated) {
    clog_replay_cache_stats cs;
    clog_replay_cache_get_stats(&cs);
    for (int i = 0; cs.replays < r->gate && i < 3000; i++) {
      usleep(10000);
      clog_replay_cache_get_stats(&cs);
    }
    if (cs.replays < r->gate)
      fprintf(stderr, "\n  gate: only %" PRIu64 " of %u replays ran after "
              "30 s\n", cs.replays, r->gate);
    r->gated = true;
  }
  return collect(&r->s, batch, path, offset);
}

static void *replayer_main(void *arg) {
  replayer *r = arg;
  r->err = clog_replay(s3h_env, r->dir, r->tablet, r->epoch, r->first,
                       r->after, gated_collect, r, &r->st);
  return NULL;
}

/* Runs the RT replays of tablets 11.. (tablet 11 after sequence 10,
 * tablet 12 from object 5, the others everything; with `all`, each
 * everything) at once. */
static void run_replayers(const char *dir, replayer *r, bool all) {
  pthread_t th[RT];
  for (int i = 0; i < RT; i++) {
    memset(&r[i], 0, sizeof(r[i]));
    r[i].dir = dir;
    r[i].tablet = 11 + (uint64_t)i;
    r[i].epoch = 4;
    r[i].first = i == 1 && !all ? 5 : 1;
    r[i].after = i == 0 && !all ? 10 : 0;
    r[i].gate = RT;
  }
  for (int i = 0; i < RT; i++)
    CU_ASSERT_EQUAL(pthread_create(&th[i], NULL, replayer_main, &r[i]), 0);
  for (int i = 0; i < RT; i++) pthread_join(th[i], NULL);
}

/* Each tablet got exactly its records of epoch 4, in order, from its
 * first object and above its flushed sequence number. */
static void check_replayers(const replayer *r) {
  for (int i = 0; i < RT; i++) {
    uint64_t from = i == 0 ? 11 : i == 1 ? 5 : 1;
    CU_ASSERT_EQUAL(r[i].s.n, RN - from + 1);
    for (size_t j = 0; j < r[i].s.n; j++)
      CU_ASSERT_EQUAL(r[i].s.seqs[j], from + j);
    CU_ASSERT_EQUAL(r[i].st.records, r[i].s.n);
  }
}

static uint64_t gets_of(const s3_stats *a, const s3_stats *b) {
  return b->requests[S3_REQ_GET] - a->requests[S3_REQ_GET] -
         (b->retries - a->retries);
}

static void test_concurrent_recovery_one_read(void) {
  char *root = s3h_new_root();
  write_shared_log(root, "s");
  char *dir = clog_dir_path(tt_logs_root(root), "s");
  replayer r[RT];

  /* Six replays at once: each object fetched once (one GET) for all of
   * them, each replay LISTs the log itself, no HEAD. */
  s3_stats a, b;
  clog_replay_cache_stats c0, c1;
  clog_replay_cache_get_stats(&c0);
  s3_get_stats(&a);
  run_replayers(dir, r, false);
  s3_get_stats(&b);
  clog_replay_cache_get_stats(&c1);
  for (int i = 0; i < RT; i++) TU_OK(r[i].err);
  check_replayers(r);
  CU_ASSERT_EQUAL(gets_of(&a, &b), RN);
  CU_ASSERT_EQUAL(b.requests[S3_REQ_LIST] - a.requests[S3_REQ_LIST], RT);
  CU_ASSERT_EQUAL(b.requests[S3_REQ_HEAD] - a.requests[S3_REQ_HEAD], 0);
  uint64_t read = 0, shared = 0;
  for (int i = 0; i < RT; i++) {
    read += r[i].st.segments_read;
    shared += r[i].st.objects_shared;
  }
  CU_ASSERT_EQUAL(read, (uint64_t)RT * RN - 4); /* tablet 12 from 5 */
  CU_ASSERT_EQUAL(shared, read - RN);
  CU_ASSERT_EQUAL(c1.gets - c0.gets, RN);
  CU_ASSERT_EQUAL(c1.refused - c0.refused, 0);
  /* Dropped once the replays ended. */
  CU_ASSERT_EQUAL(c1.held_bytes, 0);
  CU_ASSERT_EQUAL(c1.logs, 0);
  CU_ASSERT_EQUAL(c1.replays, 0);

  /* The limit at 0: no sharing, every replay reads every object it needs
   * (the behaviour before sharing). */
  uint64_t old = clog_replay_cache_set_limit(0);
  CU_ASSERT_EQUAL(old, CLOG_REPLAY_CACHE_BYTES);
  s3_get_stats(&a);
  run_replayers(dir, r, false);
  s3_get_stats(&b);
  for (int i = 0; i < RT; i++) TU_OK(r[i].err);
  check_replayers(r);
  CU_ASSERT_EQUAL(gets_of(&a, &b), (uint64_t)RT * RN - 4);
  for (int i = 0; i < RT; i++) CU_ASSERT_EQUAL(r[i].st.objects_shared, 0);

  /* A limit of about 5 objects: the first objects kept are shared, the
   * rest refused and read by every replay on its own; every tablet still
   * gets exactly its records, and nothing stays held. */
  char name[64];
  char *p1 = path_join(dir, clog_segment_name(name, sizeof name, 1));
  buf o1 = BUF_INIT;
  TU_OK(env_read_file(s3h_env, p1, 1 << 20, &o1));
  clog_replay_cache_set_limit(5 * (o1.len + 2 * (RT + 1) * 48));
  clog_replay_cache_get_stats(&c0);
  s3_get_stats(&a);
  run_replayers(dir, r, false);
  s3_get_stats(&b);
  clog_replay_cache_get_stats(&c1);
  for (int i = 0; i < RT; i++) TU_OK(r[i].err);
  check_replayers(r);
  CU_ASSERT(c1.refused - c0.refused > 0);
  CU_ASSERT(gets_of(&a, &b) > RN);
  CU_ASSERT(gets_of(&a, &b) < (uint64_t)RT * RN - 4);
  CU_ASSERT_EQUAL(c1.held_bytes, 0);
  CU_ASSERT_EQUAL(c1.logs, 0);
  clog_replay_cache_set_limit(CLOG_REPLAY_CACHE_BYTES);

  /* Object 9 damaged: every replay that reads it fails with CORRUPTION
   * naming it and the offset, having passed the records before it only;
   * it was still fetched once for all. */
  char *p9 = path_join(dir, clog_segment_name(name, sizeof name, 9));
  buf obj = BUF_INIT;
  TU_OK(env_read_file(s3h_env, p9, 1 << 20, &obj));
  buf good = BUF_INIT;
  buf_append(&good, obj.data, obj.len);
  obj.data[obj.len - 2] ^= 0x20; /* the last record: tablet 11, epoch 3 */
  TU_OK(env_write_file_atomic(s3h_env, p9, buf_slice(&obj)));
  s3_get_stats(&a);
  run_replayers(dir, r, true);
  s3_get_stats(&b);
  /* The header frame is 37 bytes, then seven data frames of one size. */
  char off[64];
  snprintf(off, sizeof off, "offset %zu: checksum mismatch",
           37 + 6 * ((good.len - 37) / (RT + 1)));
  for (int i = 0; i < RT; i++) {
    tt_expect_err(r[i].err, MICA_CORRUPTION, name, off);
    r[i].err = NULL;
    /* Objects 1-8, and 9's record of epoch 4 before the damage. */
    CU_ASSERT_EQUAL(r[i].s.n, 9);
  }
  CU_ASSERT(gets_of(&a, &b) <= RN);
  TU_OK(env_write_file_atomic(s3h_env, p9, buf_slice(&good)));
  buf_free(&good);
  buf_free(&obj);
  buf_free(&o1);
  free(p9);
  free(p1);
  free(dir);
  s3h_assert_all_signed();
  free(root);
}

/* Replays one after another, as a tablet server's serialized opens: the
 * log's objects stay kept for the linger after each, so all six read each
 * object once; when the linger ends the reaper drops them. */
static void test_sequential_recovery_linger(void) {
  char *root = s3h_new_root();
  write_shared_log(root, "q");
  char *dir = clog_dir_path(tt_logs_root(root), "q");
  uint64_t old = clog_replay_cache_set_linger(60ull * 1000000u);
  s3_stats a, b;
  s3_get_stats(&a);
  for (int i = 0; i < RT; i++) {
    seen t = {{0}, 0};
    clog_replay_stats st;
    TU_OK(clog_replay(s3h_env, dir, 11 + (uint64_t)i, 4, 1, 0, collect, &t,
                      &st));
    CU_ASSERT_EQUAL(t.n, RN);
    CU_ASSERT_EQUAL(st.objects_shared, i == 0 ? 0 : RN);
  }
  s3_get_stats(&b);
  CU_ASSERT_EQUAL(gets_of(&a, &b), RN);
  clog_replay_cache_stats cs;
  clog_replay_cache_get_stats(&cs);
  CU_ASSERT_EQUAL(cs.logs, 1);
  CU_ASSERT_EQUAL(cs.lingering, 1);
  CU_ASSERT(cs.held_bytes > 0);
  /* The linger ends: dropped by the reaper without another replay. */
  clog_replay_cache_set_linger(1000);
  for (int i = 0; i < 500; i++) {
    clog_replay_cache_get_stats(&cs);
    if (cs.logs == 0) break;
    usleep(10000);
  }
  CU_ASSERT_EQUAL(cs.logs, 0);
  CU_ASSERT_EQUAL(cs.held_bytes, 0);
  clog_replay_cache_set_linger(old);
  free(dir);
  free(root);
}

/* A forked "tablet server" A: opens tablets 1-4 under epoch 1 with log
 * "a", writes k<id> = a<id> to each (acknowledged) and tells the parent;
 * then, on the parent's word (tablet 1 was taken over meanwhile), writes
 * a late k1 = late to tablet 1 (it does not know it is fenced), tells the
 * parent and waits to be killed. */
static void four_owner_body(const char *root, int in, int out) {
  s3_config c;
  s3h_config_for(&c, s3h_proxy_endpoint, false);
  env *e = NULL;
  if (env_s3_new(&c, &e) != NULL) _exit(3);
  res_pool *res = tt_res(e, 64 << 20);
  clog_options lo;
  clog_options_init(&lo);
  clog *l = NULL;
  if (clog_open(e, tt_logs_root(root), "a", &lo, &l) != NULL) _exit(4);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 1 << 20;
  o.auto_compact = false;
  o.log = l;
  tablet *t[5] = {NULL};
  for (uint64_t id = 1; id <= 4; id++) {
    char k[8], v[8];
    snprintf(k, sizeof k, "k%" PRIu64, id);
    snprintf(v, sizeof v, "a%" PRIu64, id);
    if (tab_open(res, tt_tablet_dir(root, id), id, NONE, NONE, 1, &o,
                 &t[id]) != NULL ||
        tab_put(t[id], S(k), S(v), true) != NULL)
      _exit(5);
  }
  char x;
  if (write(out, "1", 1) != 1 || read(in, &x, 1) != 1) _exit(6);
  /* The late write: logged (PUT) under epoch 1 after the take-over. */
  if (tab_put(t[1], S("k1"), S("late"), true) != NULL) _exit(7);
  if (write(out, "2", 1) != 1) _exit(8);
  for (;;) pause();
}

typedef struct opener {
  res_pool *res;
  const char *dir;
  uint64_t id;
  tab_options o;
  tablet *t;
  mica_err *err;
} opener;

static void *opener_main(void *arg) {
  opener *p = arg;
  p->err = tab_open(p->res, p->dir, p->id, NONE, NONE, 3, &p->o, &p->t);
  return NULL;
}

static void test_concurrent_opens_fenced_late_put(void) {
  char *root = s3h_new_root();
  int to_child[2], from_child[2];
  CU_ASSERT_FATAL(pipe(to_child) == 0 && pipe(from_child) == 0);
  fflush(NULL);
  pid_t a = fork();
  if (a == 0) {
    close(to_child[1]);
    close(from_child[0]);
    four_owner_body(root, to_child[0], from_child[1]);
  }
  close(to_child[0]);
  close(from_child[1]);
  char x = 0;
  CU_ASSERT_EQUAL(read(from_child[0], &x, 1), 1);

  /* B (this process) takes tablet 1 over under epoch 2 (A is alive and
   * fenced), writes k1 = b1, and stops (its log is left as a dead one). */
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 1 << 20;
  o.auto_compact = false;
  res_pool *rb = tt_res(s3h_env, 64 << 20);
  clog *lb = log_open(s3h_env, root, "b", 0, 0);
  o.log = lb;
  tablet *tb = NULL;
  TU_OK(tab_open(rb, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &tb));
  tt_expect(tb, "k1", "a1");
  tt_put(tb, "k1", "b1");
  /* A's late write to tablet 1 lands in A's log after the take-over. */
  CU_ASSERT_EQUAL(write(to_child[1], "go", 1), 1);
  CU_ASSERT_EQUAL(read(from_child[0], &x, 1), 1);
  kill9(a);
  close(to_child[1]);
  close(from_child[0]);
  TU_OK(tab_close(tb));
  TU_OK(clog_close(lb));
  res_free(rb);

  /* C opens all four at once: tablets 2-4 from A's dead log (their
   * replays share its reads), tablet 1 from B's log: A's late k1 is in
   * the objects C reads for 2-4 and is never replayed into tablet 1. */
  res_pool *rc = tt_res(s3h_env, 64 << 20);
  clog *lc = log_open(s3h_env, root, "c", 0, 0);
  opener op[4];
  pthread_t th[4];
  clog_replay_cache_stats c0, c1;
  clog_replay_cache_get_stats(&c0);
  for (int i = 0; i < 4; i++) {
    memset(&op[i], 0, sizeof(op[i]));
    op[i].res = rc;
    op[i].id = (uint64_t)i + 1;
    op[i].dir = tt_tablet_dir(root, op[i].id);
    op[i].o = o;
    op[i].o.log = lc;
  }
  for (int i = 0; i < 4; i++)
    CU_ASSERT_EQUAL(pthread_create(&th[i], NULL, opener_main, &op[i]), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  clog_replay_cache_get_stats(&c1);
  for (int i = 0; i < 4; i++) TU_OK(op[i].err);
  if (op[0].t != NULL) tt_expect(op[0].t, "k1", "b1");
  for (int i = 1; i < 4; i++) {
    if (op[i].t == NULL) continue;
    char k[8], v[8];
    snprintf(k, sizeof k, "k%d", i + 1);
    snprintf(v, sizeof v, "a%d", i + 1);
    tt_expect(op[i].t, k, v);
    tt_expect(op[i].t, "k1", NULL);
  }
  CU_ASSERT_EQUAL(c1.held_bytes, 0);
  CU_ASSERT_EQUAL(c1.logs, 0);
  /* A's log holds the late record: written, and skipped. */
  char *adir = clog_dir_path(tt_logs_root(root), "a");
  seen s = {{0}, 0};
  TU_OK(clog_replay(s3h_env, adir, 1, 1, 1, 0, collect, &s, NULL));
  CU_ASSERT_EQUAL(s.n, 2);
  free(adir);
  for (int i = 0; i < 4; i++)
    if (op[i].t != NULL) TU_OK(tab_close(op[i].t));
  TU_OK(clog_close(lc));
  res_free(rc);
  free(root);
}

static void add_suites(void) {
  /* Tests here rewrite objects in place (to damage them) and replay
   * again: no kept objects between replays, but where a test sets it. */
  clog_replay_cache_set_linger(0);
  static const CU_TestInfo tests[] = {
      {"group_batching", test_group_batching},
      {"ordering_and_replay", test_ordering_and_replay},
      {"put_failure", test_put_failure},
      {"killed_owner_and_late_put", test_killed_owner_and_late_put},
      {"delete_after_flush_and_collect", test_delete_after_flush_and_collect},
      {"wal_dir_elsewhere", test_wal_dir_elsewhere},
      {"replay_many_objects", test_replay_many_objects},
      {"concurrent_recovery_one_read", test_concurrent_recovery_one_read},
      {"sequential_recovery_linger", test_sequential_recovery_linger},
      {"concurrent_opens_fenced_late_put",
       test_concurrent_opens_fenced_late_put},
      {"accept_lost_posix_log", test_accept_lost_posix_log},
      {"failed_split_keeps_opened_daughter",
       test_failed_split_keeps_opened_daughter},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("tablet_clog_s3", s3h_setup, NULL);
  for (const CU_TestInfo *t = tests; t->pName != NULL; t++)
    CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
