/* test_tablet_gc: garbage collection of split parents racing another
 * collector.
 *
 * tab_collect_garbage may run anywhere at any time (tablet.h): every
 * daughter's compaction that drops a parent file runs it on a background
 * thread, a server may run it, and so may another server sharing the data
 * root. Two collectors that both find a parent directory collectible both
 * try to remove it, so one of them finds it gone half-way. That is no
 * error. It used to be NOT_FOUND "list <parent dir>: No such file or
 * directory": test_tablet_model's background collections hit it under
 * load, and when its own tab_collect_garbage lost the race the failed
 * TU_OK ended the ASan build's run as "Subprocess aborted"
 * (docs/engine.md, "Deleting files").
 *
 *   - "parent removed by another collector": deterministic. An env that
 *     wraps the POSIX one removes a collectible parent's directory just
 *     before the collector lists it, as a collector that got there first
 *     would. The collection succeeds and still collects the next parent.
 *   - "two collectors at once": both threads collect the same parents; both
 *     succeed, every parent goes, every daughter still reads every key.
 *
 * Parents are made collectible without being collected by a tablet
 * directory whose MANIFEST is damaged while they are built: a collection
 * that cannot read every manifest deletes nothing (docs/engine.md), which
 * holds off the collections the daughters' compactions run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/env_impl.h"
#include "common/log.h"
#include "tabletserver/tablet.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/tt.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)

/* ------------------------------------------------------------------ */
/* An env that loses a race: forwards everything to its base env, except
 * that the first env_list of `victim` first removes `victim` (through the
 * base env), as another collector that got there first would. Readers and
 * writers are the base env's own (their owner is the base), so only the
 * env-level operations are here. */

typedef struct race_env {
  struct env env; /* first: the env handed to the code under test */
  env *base;
  char victim[4096];
  int fired;
} race_env;

static env *base_of(env *e) { return ((race_env *)e)->base; }

static mica_err *re_open_reader(env *e, const char *path, env_reader **out) {
  return env_open_reader(base_of(e), path, out);
}
static mica_err *re_open_writer(env *e, const char *path, int mode,
                                env_writer **out) {
  return env_open_writer(base_of(e), path, mode, out);
}
static mica_err *re_rename(env *e, const char *from, const char *to) {
  return env_rename(base_of(e), from, to);
}
static mica_err *re_remove(env *e, const char *path) {
  return env_remove(base_of(e), path);
}
static mica_err *re_mkdirs(env *e, const char *path) {
  return env_mkdirs(base_of(e), path);
}
static mica_err *re_remove_tree(env *e, const char *path) {
  return env_remove_tree(base_of(e), path);
}
static mica_err *re_sync_dir(env *e, const char *path) {
  return env_sync_dir(base_of(e), path);
}
static bool re_exists(env *e, const char *path) {
  return env_exists(base_of(e), path);
}
static mica_err *re_file_size(env *e, const char *path, uint64_t *size) {
  return env_file_size(base_of(e), path, size);
}
static mica_err *re_free_space(env *e, const char *path, uint64_t *avail,
                               uint64_t *total) {
  return env_free_space(base_of(e), path, avail, total);
}
static mica_err *re_list(env *e, const char *dir, char ***names, size_t *n) {
  race_env *r = (race_env *)e;
  if (!r->fired && strcmp(dir, r->victim) == 0) {
    r->fired = 1;
    TU_OK(env_remove_tree(r->base, dir));
  }
  return env_list(r->base, dir, names, n);
}
static mica_err *re_write_file_atomic(env *e, const char *path, slice data) {
  return env_write_file_atomic(base_of(e), path, data);
}
static mica_err *re_lock(env *e, const char *path, int *fd) {
  return env_lock(base_of(e), path, fd);
}
static void re_unlock(env *e, int fd) { env_unlock(base_of(e), fd); }
static uint64_t re_now(env *e) { return env_now_micros(base_of(e)); }
static uint64_t re_wall(env *e) { return env_wall_micros(base_of(e)); }
static void re_sleep(env *e, uint64_t us) { env_sleep_micros(base_of(e), us); }

static const struct env_ops race_ops = {
    .open_reader = re_open_reader,
    .open_writer = re_open_writer,
    .rename = re_rename,
    .remove = re_remove,
    .mkdirs = re_mkdirs,
    .remove_tree = re_remove_tree,
    .sync_dir = re_sync_dir,
    .exists = re_exists,
    .file_size = re_file_size,
    .free_space = re_free_space,
    .list = re_list,
    .write_file_atomic = re_write_file_atomic,
    .lock = re_lock,
    .unlock = re_unlock,
    .now_micros = re_now,
    .wall_micros = re_wall,
    .sleep_micros = re_sleep,
};

/* ------------------------------------------------------------------ */

typedef struct fixture {
  const char *root;
  char tablets[1024];
  char blocker[1100];
  int log_level; /* restored by unblock */
  res_pool *res;
  tt_model m; /* every key written, in whichever daughter holds it */
} fixture;

/* Holds off deleting collections: a tablet id no test uses, holding a
 * MANIFEST no one can read. The warning each blocked collection logs is
 * expected meanwhile, so warnings are off until unblock(). */
static void block(fixture *f) {
  char man[1200];
  snprintf(man, sizeof(man), "%s/MANIFEST", f->blocker);
  TU_OK(env_mkdirs(env_posix(), f->blocker));
  TU_OK(env_write_file_atomic(env_posix(), man, S("not a manifest")));
  f->log_level = log_get_level();
  if (getenv("MICA_LOG_LEVEL") == NULL) log_set_level(LOG_ERROR);
}

/* Lets collections delete again. */
static void unblock(fixture *f) {
  TU_OK(env_remove_tree(env_posix(), f->blocker));
  log_set_level(f->log_level);
}

static void setup(fixture *f) {
  memset(f, 0, sizeof(*f));
  f->root = tu_tmpdir();
  snprintf(f->tablets, sizeof(f->tablets), "%s", tt_tablets_dir(f->root));
  snprintf(f->blocker, sizeof(f->blocker), "%s/999999", f->tablets);
  block(f);
  f->res = tt_res(env_posix(), 8 << 20);
}

static void teardown(fixture *f) {
  tt_model_free(&f->m);
  res_free(f->res);
}

static bool exists_tablet(const fixture *f, uint64_t id) {
  return env_exists(env_posix(), tt_tablet_dir(f->root, id));
}

/* Tablet `id` with keys "k<id>-00".."k<id>-19" in one SSTable, split at
 * "k<id>-10" into id+1 and id+2, both of which then compact away their
 * references and close. The parent is left retired and referenced by no
 * one: collectible. */
static void make_collectible_parent(fixture *f, uint64_t id) {
  tab_options o;
  tt_options(&o);
  tablet *t = NULL;
  TU_OK(tab_open(f->res, tt_tablet_dir(f->root, id), id, NONE, NONE, 1, &o,
                 &t));
  char k[32], mid[32];
  for (int i = 0; i < 20; i++) {
    snprintf(k, sizeof(k), "k%03d-%02d", (int)id, i);
    TU_OK(tab_put(t, S(k), S(k), false));
    tt_model_put(&f->m, S(k), S(k));
  }
  TU_OK(tab_flush(t));
  snprintf(mid, sizeof(mid), "k%03d-10", (int)id);
  tablet *l = NULL, *r = NULL;
  TU_OK(tab_split(t, S(mid), id + 1, id + 2, &o, &l, &r));
  CU_ASSERT_FATAL(l != NULL && r != NULL);
  TU_OK(tab_compact(l));
  TU_OK(tab_compact(r));
  TU_OK(tab_close(l));
  TU_OK(tab_close(r));
  /* The damaged manifest kept the daughters' collections from deleting. */
  CU_ASSERT_FATAL(exists_tablet(f, id));
}

/* Every daughter of the parents `ids` reopens and holds exactly its half
 * of the parent's keys. */
static void check_daughters(fixture *f, const uint64_t *ids, size_t n) {
  tab_options o;
  tt_options(&o);
  for (size_t i = 0; i < n; i++) {
    char mid[32], lo[32], hi[32];
    snprintf(mid, sizeof(mid), "k%03d-10", (int)ids[i]);
    snprintf(lo, sizeof(lo), "k%03d-00", (int)ids[i]);
    snprintf(hi, sizeof(hi), "k%03d-99", (int)ids[i]);
    for (int side = 0; side < 2; side++) {
      uint64_t d = ids[i] + 1 + (uint64_t)side;
      slice start = side == 0 ? NONE : S(mid);
      slice end = side == 0 ? S(mid) : NONE;
      tablet *t = NULL;
      TU_OK(tab_open(f->res, tt_tablet_dir(f->root, d), d, start, end, 1, &o,
                     &t));
      /* Only this parent's keys: the model holds every parent's. */
      tab_scan_options so;
      tab_scan_options_init(&so);
      so.start = side == 0 ? S(lo) : S(mid);
      so.end = side == 0 ? S(mid) : S(hi);
      CU_ASSERT_EQUAL(tt_check_scan(t, &so, &f->m, start, end), 10);
      TU_OK(tab_close(t));
    }
  }
}

static void test_parent_removed_by_another_collector(void) {
  fixture f;
  setup(&f);
  uint64_t ids[] = {10, 20};
  for (size_t i = 0; i < 2; i++) make_collectible_parent(&f, ids[i]);
  uint64_t removed = 0;
  /* Blocked: nothing deleted, no error. */
  TU_OK(tab_collect_garbage(env_posix(), f.tablets, &removed));
  CU_ASSERT_EQUAL(removed, 0);
  CU_ASSERT(exists_tablet(&f, 10) && exists_tablet(&f, 20));
  unblock(&f);

  /* Parent 10 is listed first ("10" < "20") and disappears just before
   * the collector lists its files. */
  race_env re;
  memset(&re, 0, sizeof(re));
  re.env.ops = &race_ops;
  re.base = env_posix();
  snprintf(re.victim, sizeof(re.victim), "%s", tt_tablet_dir(f.root, 10));
  mica_err *err = tab_collect_garbage(&re.env, f.tablets, &removed);
  if (err != NULL) fprintf(stderr, "\ncollection: %s\n", err_msg(err));
  CU_ASSERT_PTR_NULL(err);
  err_free(err);
  CU_ASSERT_EQUAL(re.fired, 1);
  CU_ASSERT(!exists_tablet(&f, 10));
  /* The vanished directory did not end the round: the next parent went
   * too (its SSTable, its MANIFEST and the directory). */
  CU_ASSERT(!exists_tablet(&f, 20));
  CU_ASSERT(removed >= 2);
  /* Nothing is left to do, and the daughters lost nothing. */
  TU_OK(tab_collect_garbage(env_posix(), f.tablets, &removed));
  CU_ASSERT_EQUAL(removed, 0);
  check_daughters(&f, ids, 2);
  teardown(&f);
}

typedef struct collector {
  const char *tablets;
  pthread_barrier_t *start;
  mica_err *err;
} collector;

static void *collect_main(void *arg) {
  collector *c = arg;
  pthread_barrier_wait(c->start);
  c->err = tab_collect_garbage(env_posix(), c->tablets, NULL);
  return NULL;
}

static void test_two_collectors_at_once(void) {
  fixture f;
  setup(&f);
  enum { PARENTS = 6, ROUNDS = 2 };
  uint64_t ids[PARENTS * ROUNDS];
  size_t n = 0;
  for (int round = 0; round < ROUNDS; round++) {
    if (round > 0) block(&f); /* while the next parents are built */
    size_t first = n;
    for (int i = 0; i < PARENTS; i++) {
      ids[n] = 10 + 10 * (uint64_t)n;
      make_collectible_parent(&f, ids[n]);
      n++;
    }
    unblock(&f);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    collector c[2] = {{f.tablets, &start, NULL}, {f.tablets, &start, NULL}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
      CU_ASSERT_FATAL(pthread_create(&th[i], NULL, collect_main, &c[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) {
      if (c[i].err != NULL)
        fprintf(stderr, "\nround %d, collector %d: %s\n", round, i,
                err_msg(c[i].err));
      CU_ASSERT_PTR_NULL(c[i].err);
      err_free(c[i].err);
    }
    /* Each collector either saw a stable set of directories and deleted,
     * or saw the other's deletions and retried: between them, every
     * parent is gone. */
    for (size_t i = first; i < n; i++) CU_ASSERT(!exists_tablet(&f, ids[i]));
  }
  check_daughters(&f, ids, n);
  teardown(&f);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"parent removed by another collector",
       test_parent_removed_by_another_collector},
      {"two collectors at once", test_two_collectors_at_once},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_gc", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
