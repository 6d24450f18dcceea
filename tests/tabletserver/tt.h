/* tt: helpers shared by the tablet suites.
 *
 * A model is an in-memory sorted map from key to value (the truth the
 * randomized suites check the engine against); tt_check_scan compares one
 * tablet scan with the model, entry by entry. tt_res/tt_open open a
 * tablet with small memtables so that rotations, flushes and compactions
 * happen within a few hundred writes.
 *
 * Thread-safety: a model belongs to one thread. */
#ifndef MICA_TESTS_TABLET_TT_H
#define MICA_TESTS_TABLET_TT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/env.h"
#include "common/slice.h"
#include "tabletserver/tablet.h"

typedef struct tt_model {
  buf *keys, *vals;
  size_t n, cap;
} tt_model;

void tt_model_put(tt_model *m, slice k, slice v);
void tt_model_del(tt_model *m, slice k);
/* Index of `k` or -1. */
long tt_model_find(const tt_model *m, slice k);
/* First index with key >= k. */
size_t tt_model_lower(const tt_model *m, slice k);
void tt_model_copy(tt_model *dst, const tt_model *src);
void tt_model_free(tt_model *m);

/* Checks a get of `k` from `t` against the model: the model's value, or
 * NOT_FOUND where the model has none; records CUnit failures and says
 * which key went wrong. */
void tt_check_get(tablet *t, const tt_model *m, slice k);

/* Checks the scan `o` of `t` against the model restricted to [lo, hi)
 * (the tablet's range; hi.len 0 = unbounded). Returns the number of
 * entries compared; records CUnit failures. */
size_t tt_check_scan(tablet *t, const tab_scan_options *o, const tt_model *m,
                     slice lo, slice hi);

/* Options used by most suites: small memtables and limits that make
 * background work frequent. */
void tt_options(tab_options *o);
res_pool *tt_res(env *e, size_t budget);

/* The data root's tablets directory and tablet `id`'s directory in it
 * (common/layout.h), in static-lifetime string pools. */
const char *tt_tablets_dir(const char *root);
const char *tt_tablet_dir(const char *root, uint64_t id);

/* The data root's commit-log root (clog_logs_root of its tablets
 * directory), in a static-lifetime string pool. */
const char *tt_logs_root(const char *root);

/* Puts k = v in `t` with a synced write; the test fails unless it
 * succeeds. */
void tt_put(tablet *t, const char *k, const char *v);

/* Checks that `t` reads k as v, or as not found when v is NULL; records
 * CUnit failures naming the key. */
void tt_expect(tablet *t, const char *k, const char *v);

/* Checks that `err` has code `code` and that its message contains `has`
 * and `has2` (each unless NULL); prints it as expected and frees it;
 * records CUnit failures. */
void tt_expect_err(mica_err *err, int code, const char *has, const char *has2);

/* Checks, after garbage collection, that every sst-* under the data
 * root's tablets directory is referenced by the manifest of a tablet not
 * retired (live or splitting), and that no WAL segment, temporary file or
 * temporary directory is left. Returns the number of tablet directories;
 * records CUnit failures. */
size_t tt_check_no_leaks(const char *root);

/* ---- split daughters collecting their parent ---- */

/* True when the manifest in `dir` lists at least one SSTable and every
 * one of them lies in `dir` itself (no "../" reference to another
 * tablet's directory). */
bool tt_only_own_files(const char *dir);

/* Tablet `parent_id` under `root` was split at `key` into `left` and
 * `right` (ids `left_id`, `right_id`), and nothing is written to them:
 * waits (up to 60 s on a loaded machine) until each daughter has
 * compacted the parent's files into its own and the parent's directory is
 * collected, then checks that no write reached the daughters, that
 * garbage collection finds nothing left, and that each scans as model `m`
 * within its half. Records CUnit failures; the daughters stay open.
 * Returns false when the wait gave up. */
bool tt_wait_daughters_own(const char *root, uint64_t parent_id,
                           tablet *left, uint64_t left_id, tablet *right,
                           uint64_t right_id, slice key, const tt_model *m);

/* Opens tablet `id` of `root` ([lo, hi), `epoch`, options `o`), runs its
 * maintenance and checks that it finds nothing to compact and scans as
 * model `m`; closes it. */
void tt_check_settled(res_pool *r, const char *root, uint64_t id, slice lo,
                      slice hi, uint64_t epoch, const tab_options *o,
                      const tt_model *m);

/* ---- a failure at every call of one kind ----
 *
 * The crash suites run one deterministic workload on a counting fault env
 * to learn how many calls of one kind it makes (N); then, for i in
 * 1..N+1, run it again on a fresh root with the i-th call failing (with
 * `crash`, every later one too, then a simulated power loss: whatever was
 * not synced is lost), and reopen on the real env to verify what
 * survived. The workload records what it wrote in a tt_run as it goes and
 * stops at its first failure. */

typedef struct tt_run {
  tt_model acked;   /* every acknowledged write applied */
  tt_model pending; /* acked plus the write in flight when it failed */
  bool failed;      /* a call failed: the workload stops */
} tt_run;

/* One workload step's result: true when it succeeded and nothing failed
 * before; otherwise marks the run failed. Frees `err`. */
bool tt_run_step(tt_run *r, mica_err *err);
/* A synced write of `b` to `t`, recorded in the run's models (in pending
 * first, in acked once acknowledged). False when it failed or the run
 * had failed already (nothing is written then). */
bool tt_run_write(tt_run *r, tablet *t, wbatch *b);
/* tt_run_write of one put. */
bool tt_run_put(tt_run *r, tablet *t, slice key, slice value);
/* tt_run_write of one batch over keys k<first>..k<first + n - 1> (three
 * digits): every key divisible by 3 deleted, the others set to
 * b<i>-<gen>. */
bool tt_run_batch(tt_run *r, tablet *t, int first, int n, int gen);
/* Reads tablets ts[0..n) whole (ranges disjoint) and records a CUnit
 * failure unless they hold exactly what the run acknowledged, or, when
 * it failed, that plus the write in flight (all or nothing). `at` is the
 * failed call's number, for messages. */
void tt_run_check(const tt_run *r, tablet **ts, size_t n, uint64_t at);
/* Frees the run's models; the run is empty afterwards. */
void tt_run_free(tt_run *r);

typedef struct tt_fail_plan {
  enum env_op op;     /* the kind of call that fails */
  bool crash;         /* every later call fails too, then a power loss;
                       * otherwise just that one call fails (an I/O error) */
  const char *what;   /* the calls' name in messages ("syncs") */
  uint64_t min_calls; /* the dry run must make more than this many */
  /* Optional: builds the starting state in a fresh `root` on the real env
   * before each run, adding what it acknowledged to r->acked. */
  void (*prepare)(const char *root, tt_run *r, void *arg);
  /* The workload, on `e`, under `root`; stops at its first failure. */
  void (*workload)(env *e, const char *root, tt_run *r, void *arg);
  /* Reopens what the run under `root` left, on the real env, and checks
   * it (tt_run_check); `at` is the failed call's number. */
  void (*verify)(const char *root, tt_run *r, uint64_t at, void *arg);
  void *arg;
} tt_fail_plan;

/* Runs plan `p` as described above, under $TMPDIR (set to /dev/shm when
 * writable: the fault env decides what survives, so real fsyncs would
 * only cost time). Checks that the dry run does not fail and makes more
 * than p->min_calls calls, and that a crash run fails. */
void tt_fail_every(const tt_fail_plan *p);

#endif
