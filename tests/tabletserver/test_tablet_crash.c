/* test_tablet_crash: a simulated power loss at every sync point.
 *
 * One deterministic workload (synced puts and batches, flushes, a
 * compaction, a split by reference, writes to and a compaction of a
 * daughter, closes) runs first on a counting fault env to learn how many
 * syncs it makes (N). Then for i in 1..N it runs again on a fresh
 * directory with the i-th sync failing (and every later one), stops at
 * the first error, simulates the crash (everything not synced is lost),
 * and reopens on the real env under a new assign_epoch:
 *
 *  - every acknowledged write is present with its value;
 *  - the one write that was in flight (a batch) is there entirely or not
 *    at all;
 *  - whatever state the split was in, the right tablets open (an
 *    interrupted split is finished by reopening the parent);
 *  - after closing and collecting garbage, no SSTable is left that no live
 *    manifest references, and no WAL segment is left at all.
 *
 * The same workload also runs with one failed append or rename (an I/O
 * error, no crash) at every such call.
 *
 * Background work is off (auto-compaction disabled, a large memtable and
 * budget) so that every sync happens on the test's thread, in the same
 * order on every run. Runs in /dev/shm when available: the fault env
 * decides what survives, so real fsyncs would only cost time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"
#include "tests/tabletserver/tt.h"
#include "tests/harness/testutil.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)
#define SPLIT_KEY "k050"

static void opts(tab_options *o) {
  tt_options(o);
  o->memtable_bytes = 1 << 20;
  o->auto_compact = false;
}

static bool put(tt_run *r, tablet *t, int i, int gen) {
  char k[16], v[32];
  snprintf(k, sizeof(k), "k%03d", i);
  snprintf(v, sizeof(v), "v%d-%d", i, gen);
  return tt_run_put(r, t, S(k), S(v));
}

/* The workload. Stops at the first failure. */
static void workload(env *e, const char *root, tt_run *r, void *arg) {
  (void)arg;
  res_pool *res = tt_res(e, 64 << 20);
  tab_options o;
  opts(&o);
  tablet *t = NULL, *left = NULL, *right = NULL;
  if (!tt_run_step(r, tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 1,
                               &o, &t)))
    goto out;
  for (int i = 0; i < 30; i += 3)
    if (!put(r, t, i, 0)) goto out;
  if (!tt_run_batch(r, t, 40, 5, 0)) goto out;
  if (!tt_run_step(r, tab_flush(t))) goto out;
  for (int i = 1; i < 90; i += 7)
    if (!put(r, t, i, 1)) goto out;
  if (!tt_run_batch(r, t, 60, 5, 1)) goto out;
  if (!tt_run_step(r, tab_flush(t))) goto out;
  for (int i = 0; i < 100; i += 11)
    if (!put(r, t, i, 2)) goto out;
  if (!tt_run_step(r, tab_compact(t))) goto out;
  if (!tt_run_batch(r, t, 45, 5, 2)) goto out;
  {
    mica_err *err = tab_split(t, S(SPLIT_KEY), 2, 3, &o, &left, &right);
    t = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
  for (int i = 2; i < 100; i += 13)
    if (!put(r, i < 50 ? left : right, i, 3)) goto out;
  if (!tt_run_batch(r, right, 70, 5, 3)) goto out;
  if (!tt_run_step(r, tab_compact(left))) goto out;
  if (!put(r, left, 5, 4)) goto out;
  {
    mica_err *err = tab_close(left);
    left = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
  {
    mica_err *err = tab_close(right);
    right = NULL;
    if (!tt_run_step(r, err)) goto out;
  }
out:
  err_free(tab_close(t));
  err_free(tab_close(left));
  err_free(tab_close(right));
  res_free(res);
}

/* Reopens whatever the crash left and checks it against the run. */
static void verify(const char *root, tt_run *r, uint64_t crash_at,
                   void *arg) {
  (void)arg;
  /* crash_at: the failing call's number, for messages. */
  res_pool *res = tt_res(env_posix(), 64 << 20);
  tab_options o;
  opts(&o);
  o.create_if_missing = false;
  tablet *ts[2] = {NULL, NULL};
  size_t n = 0;
  tablet *t = NULL;
  mica_err *err = tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t);
  if (err_code(err) == MICA_NOT_FOUND) {
    /* Crashed before the tablet's first manifest: nothing was acked.
     * Creating it (as the master's retry would) cleans up. */
    CU_ASSERT_EQUAL(r->acked.n, 0);
    err_free(err);
    o.create_if_missing = true;
    TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, NONE, NONE, 2, &o, &t));
    ts[0] = t;
    n = 1;
  } else if (err_code(err) == MICA_NOT_SERVING) {
    err_free(err);
    /* Split (now) complete: open the daughters. */
    TU_OK(tab_open(res, tt_tablet_dir(root, 2), 2, NONE, S(SPLIT_KEY), 2, &o,
                   &ts[0]));
    TU_OK(tab_open(res, tt_tablet_dir(root, 3), 3, S(SPLIT_KEY), NONE, 2, &o,
                   &ts[1]));
    n = 2;
  } else {
    if (err != NULL)
      fprintf(stderr, "crash at sync %llu: reopen: %s\n",
              (unsigned long long)crash_at, err_msg(err));
    TU_OK(err);
    ts[0] = t;
    n = 1;
  }
  tt_run_check(r, ts, n, crash_at);
  for (size_t i = 0; i < n; i++) TU_OK(tab_close(ts[i]));
  char tablets[1200];
  snprintf(tablets, sizeof(tablets), "%s", tt_tablets_dir(root));
  TU_OK(tab_collect_garbage(env_posix(), tablets, NULL));
  tt_check_no_leaks(root);
  res_free(res);
}

/* Runs the workload once per call of `op` it makes, failing the i-th
 * call (and every later one when `crash`, followed by a simulated power
 * loss; just that one call otherwise), then reopens and verifies. */
static void fail_every(enum env_op op, bool crash, const char *what) {
  tt_fail_plan p = {op, crash, what, 10, NULL, workload, verify, NULL};
  tt_fail_every(&p);
}

static void test_crash_every_sync(void) {
  fail_every(ENV_OP_SYNC, true, "syncs");
}

/* An I/O error that is not a crash: one failed append (WAL, SSTable or
 * manifest). The write or job in progress fails; nothing acknowledged is
 * lost and the failed batch is all or nothing after a reopen. */
static void test_io_error_every_write(void) {
  fail_every(ENV_OP_WRITE, false, "appends");
}

/* A failed rename is the failed install of a manifest. */
static void test_io_error_every_rename(void) {
  fail_every(ENV_OP_RENAME, false, "renames");
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"crash_every_sync", test_crash_every_sync},
      {"io_error_every_write", test_io_error_every_write},
      {"io_error_every_rename", test_io_error_every_rename},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_crash", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
