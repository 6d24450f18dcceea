/* test_tablet_merge: a merged tablet made by reference (tablet_merge.h).
 *
 *  - model: a tablet is split, its daughters written and one of them
 *    compacted (so the inputs mix own files with files shared from the
 *    parent), then merged back: every key (present or deleted) reads as
 *    the model says, scans in both directions are exact, and so they stay
 *    after more writes, a reopen and a full compaction; after which
 *    garbage collection has removed the inputs' and the parent's
 *    directories and every SSTable left is referenced by a live manifest.
 *    Preparing again is a no-op; an input opened after the merge answers
 *    NOT_SERVING;
 *  - bad inputs: not adjacent, the same tablet twice, an input owned by a
 *    newer epoch, a missing input, a directory that is not a sibling, an
 *    input already merged elsewhere;
 *  - crash at every sync point: one input still holds WAL data (its
 *    owner crashed) so the merge replays it first; for every i the i-th
 *    sync of "prepare, open, write, close" fails, power is lost, and the
 *    merge is re-sent on the real env: every acknowledged write is there
 *    (the one in flight entirely or not), nothing leaks after garbage
 *    collection, both inputs are retired or collected.
 *
 * Background work is off in the crash suite so every sync happens on the
 * test thread in the same order each run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"
#include "tabletserver/tablet_merge.h"
#include "tests/tabletserver/tt.h"
#include "tests/harness/testutil.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)
#define NKEYS 1000

static char *tdir(const char *root, uint64_t id) {
  return xstrdup(tt_tablet_dir(root, id));
}

static void key_of(int i, char *k) { sprintf(k, "k%04d", i); }

/* A random put (3 in 4) or delete of a key in [lo, hi), on `t` and `m`. */
static void random_op(tablet *t, tt_model *m, int lo, int hi, int gen) {
  char k[16], v[64];
  key_of(lo + (int)tu_rand_below((uint64_t)(hi - lo)), k);
  if (tu_rand_below(4) == 0) {
    TU_OK(tab_delete(t, S(k), false));
    tt_model_del(m, S(k));
  } else {
    int n = snprintf(v, sizeof(v), "v%d-%llu-", gen,
                     (unsigned long long)tu_rand_below(1000000));
    while (n < 40) v[n++] = 'x';
    v[n] = '\0';
    TU_OK(tab_put(t, S(k), S(v), false));
    tt_model_put(m, S(k), S(v));
  }
}

/* Every key through tab_get, and full scans both ways. */
static void check_all(tablet *t, const tt_model *m) {
  buf v = BUF_INIT;
  int bad = 0;
  for (int i = 0; i < NKEYS; i++) {
    char k[16];
    key_of(i, k);
    if (slice_cmp(S(k), tab_start(t)) < 0 ||
        (tab_end(t).len > 0 && slice_cmp(S(k), tab_end(t)) >= 0))
      continue;
    long at = tt_model_find(m, S(k));
    mica_err *e = tab_get(t, NULL, S(k), &v);
    bool ok = at < 0 ? err_code(e) == MICA_NOT_FOUND
                     : e == NULL &&
                           slice_eq(buf_slice(&v), buf_slice(&m->vals[at]));
    if (!ok && bad++ < 3)
      fprintf(stderr, "%s: %s, got \"%.*s\", want %.*s\n", k,
              e ? err_msg(e) : "found", (int)v.len, (const char *)v.data,
              at < 0 ? 6 : (int)m->vals[at].len,
              at < 0 ? "absent" : (const char *)m->vals[at].data);
    err_free(e);
  }
  if (bad) fprintf(stderr, "%d keys read wrong\n", bad);
  CU_ASSERT_EQUAL(bad, 0);
  buf_free(&v);
  tab_scan_options o;
  tab_scan_options_init(&o);
  size_t n = tt_check_scan(t, &o, m, tab_start(t), tab_end(t));
  o.reverse = true;
  CU_ASSERT_EQUAL(tt_check_scan(t, &o, m, tab_start(t), tab_end(t)), n);
}

static void collect(const char *root) {
  char tablets[1200];
  snprintf(tablets, sizeof(tablets), "%s", tt_tablets_dir(root));
  TU_OK(tab_collect_garbage(env_posix(), tablets, NULL));
}

static man_tablet_state state_of(const char *dir) {
  man_state m;
  man_init(&m);
  mica_err *e = man_read(env_posix(), dir, &m);
  man_tablet_state st = e == NULL ? m.state : (man_tablet_state)-1;
  err_free(e);
  man_clear(&m);
  return st;
}

/* ---- model ---- */

static void test_model(void) {
  const char *root = tu_tmpdir();
  char *p = tdir(root, 1), *l = tdir(root, 2), *r = tdir(root, 3),
       *m = tdir(root, 4);
  res_pool *res = tt_res(env_posix(), 32 << 20);
  tab_options o;
  tt_options(&o);
  tt_model model;
  memset(&model, 0, sizeof(model));
  tablet *t = NULL, *lt = NULL, *rt = NULL;
  TU_OK(tab_open(res, p, 1, NONE, NONE, 1, &o, &t));
  for (int i = 0; i < 1500; i++) {
    random_op(t, &model, 0, NKEYS, 0);
    if (i % 400 == 399) TU_OK(tab_flush(t));
  }
  TU_OK(tab_split(t, S("k0500"), 2, 3, &o, &lt, &rt));
  for (int i = 0; i < 600; i++) {
    random_op(lt, &model, 0, 500, 1);
    random_op(rt, &model, 500, NKEYS, 1);
    if (i % 250 == 249) {
      TU_OK(tab_flush(lt));
      TU_OK(tab_flush(rt));
    }
  }
  TU_OK(tab_compact(lt));
  /* The right input keeps the parent's files plus its own. */
  TU_OK(tab_close(lt));
  TU_OK(tab_close(rt));

  /* Inputs in reverse key order: the merge sorts them by range. */
  tab_merge_input in[2] = {{r, 3}, {l, 2}};
  TU_OK(tab_merge_prepare(res, m, 4, in, 2, &o));
  CU_ASSERT_EQUAL(state_of(l), MAN_MERGED);
  CU_ASSERT_EQUAL(state_of(r), MAN_MERGED);
  CU_ASSERT_EQUAL(state_of(m), MAN_LIVE);
  /* A retired input is never served again. */
  TU_ERR(tab_open(res, l, 2, NONE, S("k0500"), 3, &o, &lt), MICA_NOT_SERVING);
  /* Preparing again changes nothing. */
  TU_OK(tab_merge_prepare(res, m, 4, in, 2, &o));
  /* Collecting now must keep every file the merged tablet references
   * (the inputs are retired, their files are not garbage). */
  collect(root);
  CU_ASSERT(env_exists(env_posix(), l));
  CU_ASSERT(env_exists(env_posix(), r));

  o.create_if_missing = false;
  TU_OK(tab_open(res, m, 4, NONE, NONE, 2, &o, &t));
  check_all(t, &model);
  for (int i = 0; i < 800; i++) random_op(t, &model, 0, NKEYS, 2);
  check_all(t, &model);
  TU_OK(tab_close(t));
  TU_OK(tab_open(res, m, 4, NONE, NONE, 2, &o, &t));
  check_all(t, &model);
  /* The merged tablet's compaction rewrites everything into its own file:
   * nothing references the inputs or the parent any more. */
  TU_OK(tab_compact(t));
  check_all(t, &model);
  TU_OK(tab_close(t));
  collect(root);
  CU_ASSERT_FALSE(env_exists(env_posix(), p));
  CU_ASSERT_FALSE(env_exists(env_posix(), l));
  CU_ASSERT_FALSE(env_exists(env_posix(), r));
  CU_ASSERT_EQUAL(tt_check_no_leaks(root), 1);
  /* A re-sent open after the inputs were collected still works. */
  TU_OK(tab_merge_prepare(res, m, 4, in, 2, &o));
  TU_OK(tab_open(res, m, 4, NONE, NONE, 3, &o, &t));
  check_all(t, &model);
  TU_OK(tab_close(t));
  tt_model_free(&model);
  res_free(res);
  free(p);
  free(l);
  free(r);
  free(m);
}

/* A merged tablet that is split again and whose daughter is merged with
 * its sibling: references to the grandparent's files travel unchanged. */
static void test_merge_split_merge(void) {
  const char *root = tu_tmpdir();
  res_pool *res = tt_res(env_posix(), 32 << 20);
  tab_options o;
  tt_options(&o);
  /* The references must survive until the explicit compaction below:
   * with auto_compact on, every tablet here that reads another's files
   * would compact them away in the background right after its open. */
  o.auto_compact = false;
  tt_model model;
  memset(&model, 0, sizeof(model));
  char *d[8];
  for (int i = 1; i < 8; i++) d[i] = tdir(root, (uint64_t)i);
  tablet *t = NULL, *a = NULL, *b = NULL;
  TU_OK(tab_open(res, d[1], 1, NONE, NONE, 1, &o, &t));
  for (int i = 0; i < 1200; i++) random_op(t, &model, 0, NKEYS, 0);
  TU_OK(tab_flush(t));
  TU_OK(tab_split(t, S("k0300"), 2, 3, &o, &a, &b));
  for (int i = 0; i < 300; i++) random_op(b, &model, 300, NKEYS, 1);
  TU_OK(tab_close(a));
  TU_OK(tab_close(b));
  tab_merge_input in[2] = {{d[2], 2}, {d[3], 3}};
  TU_OK(tab_merge_prepare(res, d[4], 4, in, 2, &o));
  o.create_if_missing = false;
  TU_OK(tab_open(res, d[4], 4, NONE, NONE, 2, &o, &t));
  check_all(t, &model);
  TU_OK(tab_split(t, S("k0700"), 5, 6, &o, &a, &b));
  check_all(a, &model);
  check_all(b, &model);
  for (int i = 0; i < 300; i++) random_op(a, &model, 0, 700, 2);
  TU_OK(tab_close(a));
  TU_OK(tab_close(b));
  tab_merge_input in2[2] = {{d[5], 5}, {d[6], 6}};
  TU_OK(tab_merge_prepare(res, d[7], 7, in2, 3, &o));
  TU_OK(tab_open(res, d[7], 7, NONE, NONE, 3, &o, &t));
  check_all(t, &model);
  TU_OK(tab_close(t));
  /* Still shared: the parent's and the inputs' files that 7 reads. */
  collect(root);
  CU_ASSERT(tt_check_no_leaks(root) > 1);
  TU_OK(tab_open(res, d[7], 7, NONE, NONE, 3, &o, &t));
  check_all(t, &model);
  TU_OK(tab_compact(t));
  check_all(t, &model);
  TU_OK(tab_close(t));
  collect(root);
  CU_ASSERT_EQUAL(tt_check_no_leaks(root), 1);
  for (int i = 1; i < 8; i++) free(d[i]);
  tt_model_free(&model);
  res_free(res);
}

/* ---- bad inputs ---- */

static void make_tablet(res_pool *res, const char *dir, uint64_t id,
                        slice start, slice end, uint64_t epoch) {
  tab_options o;
  tt_options(&o);
  tablet *t = NULL;
  TU_OK(tab_open(res, dir, id, start, end, epoch, &o, &t));
  char k[16];
  key_of(start.len > 0 ? 800 : 100, k);
  TU_OK(tab_put(t, S(k), S("v"), false));
  TU_OK(tab_close(t));
}

static void test_bad_inputs(void) {
  const char *root = tu_tmpdir();
  res_pool *res = tt_res(env_posix(), 32 << 20);
  tab_options o;
  tt_options(&o);
  char *a = tdir(root, 10), *b = tdir(root, 11), *c = tdir(root, 12),
       *missing = tdir(root, 13), *m = tdir(root, 14), *m2 = tdir(root, 15);
  make_tablet(res, a, 10, NONE, S("k0500"), 1);
  make_tablet(res, b, 11, S("k0500"), NONE, 3);
  make_tablet(res, c, 12, S("k0700"), NONE, 1);
  {
    tab_merge_input in[2] = {{a, 10}, {c, 12}};
    TU_ERR(tab_merge_prepare(res, m, 14, in, 5, &o), MICA_INVALID_ARGUMENT);
  }
  {
    tab_merge_input in[2] = {{a, 10}, {a, 10}};
    TU_ERR(tab_merge_prepare(res, m, 14, in, 5, &o), MICA_INVALID_ARGUMENT);
  }
  {
    tab_merge_input in[2] = {{a, 10}, {missing, 13}};
    TU_ERR(tab_merge_prepare(res, m, 14, in, 5, &o), MICA_NOT_FOUND);
  }
  {
    /* 11 belongs to epoch 3: a merge under 2 is stale. */
    tab_merge_input in[2] = {{a, 10}, {b, 11}};
    TU_ERR(tab_merge_prepare(res, m, 14, in, 2, &o), MICA_STALE_EPOCH);
  }
  {
    /* The id in the MANIFEST must be the one named. */
    tab_merge_input in[2] = {{a, 10}, {b, 12}};
    TU_ERR(tab_merge_prepare(res, m, 14, in, 5, &o), MICA_INVALID_ARGUMENT);
  }
  {
    char other[1200];
    snprintf(other, sizeof(other), "%s/elsewhere/14", root);
    tab_merge_input in[2] = {{a, 10}, {b, 11}};
    TU_ERR(tab_merge_prepare(res, other, 14, in, 5, &o), MICA_INVALID_ARGUMENT);
  }
  /* None of the refusals changed anything. */
  CU_ASSERT_FALSE(env_exists(env_posix(), m));
  CU_ASSERT_EQUAL(state_of(a), MAN_LIVE);
  CU_ASSERT_EQUAL(state_of(b), MAN_LIVE);
  {
    tab_merge_input in[2] = {{a, 10}, {b, 11}};
    TU_OK(tab_merge_prepare(res, m, 14, in, 5, &o));
    /* Inputs already merged into 14 cannot go into 15. */
    TU_ERR(tab_merge_prepare(res, m2, 15, in, 6, &o), MICA_NOT_SERVING);
  }
  tablet *t = NULL;
  o.create_if_missing = false;
  TU_OK(tab_open(res, m, 14, NONE, NONE, 5, &o, &t));
  buf v = BUF_INIT;
  TU_OK(tab_get(t, NULL, S("k0100"), &v));
  TU_OK(tab_get(t, NULL, S("k0800"), &v));
  buf_free(&v);
  TU_OK(tab_close(t));
  free(a);
  free(b);
  free(c);
  free(missing);
  free(m);
  free(m2);
  res_free(res);
}

/* ---- crash at every sync point ---- */

/* Inputs 10 [, k0500) and 11 [k0500, ): closed cleanly, then 11 reopened
 * and written with synced puts by an owner that loses power, so its WAL
 * holds acknowledged data the merge must replay. Adds it to r->acked. */
static void build_inputs(const char *root, tt_run *r, void *arg) {
  (void)arg;
  tt_model *acked = &r->acked;
  res_pool *res = tt_res(env_posix(), 32 << 20);
  tab_options o;
  tt_options(&o);
  o.auto_compact = false;
  char *a = tdir(root, 10), *b = tdir(root, 11);
  tablet *ta = NULL, *tb = NULL;
  TU_OK(tab_open(res, a, 10, NONE, S("k0500"), 1, &o, &ta));
  TU_OK(tab_open(res, b, 11, S("k0500"), NONE, 1, &o, &tb));
  tu_rand_seed(7);
  for (int i = 0; i < 300; i++) {
    random_op(ta, acked, 0, 500, 0);
    random_op(tb, acked, 500, NKEYS, 0);
    if (i == 150) {
      TU_OK(tab_flush(ta));
      TU_OK(tab_flush(tb));
    }
  }
  TU_OK(tab_close(ta));
  TU_OK(tab_close(tb));
  res_free(res);

  env_fault *f = env_fault_new(env_posix());
  res = tt_res(env_fault_env(f), 32 << 20);
  TU_OK(tab_open(res, b, 11, S("k0500"), NONE, 2, &o, &tb));
  for (int i = 0; i < 20; i++) {
    char k[16];
    key_of(600 + i * 7, k);
    TU_OK(tab_put(tb, S(k), S("from-the-wal"), true));
    tt_model_put(acked, S(k), S("from-the-wal"));
  }
  env_fault_crash(f);
  err_free(tab_close(tb));
  res_free(res);
  env_fault_free(f);
  free(a);
  free(b);
}

/* The merge as the tablet server runs it, then writes and a close. */
static void merge_workload(env *e, const char *root, tt_run *r,
                           void *arg) {
  (void)arg;
  res_pool *res = tt_res(e, 32 << 20);
  tab_options o;
  tt_options(&o);
  o.auto_compact = false;
  o.create_if_missing = false;
  char *a = tdir(root, 10), *b = tdir(root, 11), *m = tdir(root, 20);
  tab_merge_input in[2] = {{a, 10}, {b, 11}};
  tablet *t = NULL;
  if (tt_run_step(r, tab_merge_prepare(res, m, 20, in, 3, &o)) &&
      tt_run_step(r, tab_open(res, m, 20, NONE, NONE, 3, &o, &t))) {
    for (int i = 0; i < 5 && !r->failed; i++) {
      char k[16];
      key_of(i * 211, k);
      tt_run_put(r, t, S(k), S("after-merge"));
    }
    mica_err *ce = tab_close(t);
    t = NULL;
    tt_run_step(r, ce);
  }
  err_free(tab_close(t));
  res_free(res);
  free(a);
  free(b);
  free(m);
}

static void verify(const char *root, tt_run *r, uint64_t at, void *arg) {
  (void)arg;
  res_pool *res = tt_res(env_posix(), 32 << 20);
  tab_options o;
  tt_options(&o);
  o.create_if_missing = false;
  char *a = tdir(root, 10), *b = tdir(root, 11), *m = tdir(root, 20);
  tab_merge_input in[2] = {{a, 10}, {b, 11}};
  /* The master re-sends OpenTablet (here with a newer epoch: the tablet
   * may have been reassigned after the crash). */
  mica_err *e = tab_merge_prepare(res, m, 20, in, 4, &o);
  if (e != NULL)
    fprintf(stderr, "crash at sync %llu: merge again: %s\n",
            (unsigned long long)at, err_msg(e));
  TU_OK(e);
  tablet *t = NULL;
  TU_OK(tab_open(res, m, 20, NONE, NONE, 4, &o, &t));
  if (t != NULL) {
    tt_run_check(r, &t, 1, at);
    TU_OK(tab_compact(t));
    TU_OK(tab_close(t));
  }
  CU_ASSERT(state_of(a) == MAN_MERGED || !env_exists(env_posix(), a));
  CU_ASSERT(state_of(b) == MAN_MERGED || !env_exists(env_posix(), b));
  collect(root);
  CU_ASSERT_EQUAL(tt_check_no_leaks(root), 1);
  res_free(res);
  free(a);
  free(b);
  free(m);
}

static void test_crash_every_sync(void) {
  tt_fail_plan p = {ENV_OP_SYNC, true, "syncs", 10, build_inputs,
                    merge_workload, verify, NULL};
  tt_fail_every(&p);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"model", test_model},
      {"merge_split_merge", test_merge_split_merge},
      {"bad_inputs", test_bad_inputs},
      {"crash_every_sync", test_crash_every_sync},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_merge", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
