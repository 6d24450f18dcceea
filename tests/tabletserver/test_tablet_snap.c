/* The engine's side of snapshots (tabletserver/tablet_snap.c,
 * docs/storage.md "Snapshots"): a pin keeps a tablet's files through its
 * compactions, a reopen and the collector; the collector deletes them once
 * the pin is gone; a dropped table's retired directory stays while a pin
 * reads it and goes after; a damaged SHARED file stops the open and the
 * collector (naming the file) instead of losing track of a pinned file. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/path.h"
#include "tabletserver/manifest.h"
#include "tabletserver/clog.h"
#include "tabletserver/tablet.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/tt.h"

static env *E;

static tablet *open_tab(res_pool *res, const char *root, uint64_t id) {
  tab_options o;
  tt_options(&o);
  o.auto_compact = false;
  tablet *t = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, id), id, slice_make("", 0),
                 slice_make("", 0), 1, &o, &t));
  return t;
}

static void put_all(tablet *t, const char *fmt) {
  for (int i = 0; i < 50; i++) {
    char k[16], v[32];
    snprintf(k, sizeof k, "k%03d", i);
    snprintf(v, sizeof v, fmt, i);
    TU_OK(tab_put(t, slice_from_str(k), slice_from_str(v), true));
  }
}

/* A pin of one tablet for one snapshot, as the master's snapshot makes
 * it: the pin's manifest in the snapshot's directory under the data
 * root's snapshots directory. */
typedef struct snap_pin {
  char *dir;  /* the snapshot's directory: removing it drops the pin */
  char *path; /* the pin's manifest */
  tab_pin_info info;
} snap_pin;

/* Pins tablet `t` (id `id`) of `root` for snapshot `snap`. Free with
 * pin_free(). */
static void pin_make(tablet *t, const char *root, uint64_t snap, uint64_t id,
                     snap_pin *p) {
  char *sdir = tab_snapshots_dir(tt_tablets_dir(root));
  char name[32];
  snprintf(name, sizeof name, "%" PRIu64, snap);
  p->dir = path_join(sdir, name);
  snprintf(name, sizeof name, "%" PRIu64, id);
  p->path = path_join(p->dir, name);
  free(sdir);
  TU_OK(env_mkdirs(E, p->dir));
  TU_OK(tab_snapshot_pin(t, p->path, &p->info));
}

static void pin_free(snap_pin *p) {
  free(p->dir);
  free(p->path);
}

/* The pin's files, as paths under the tablets directory. */
static size_t pin_files(const char *root, const char *pin, char out[][512],
                        size_t max) {
  buf b = BUF_INIT;
  man_state m;
  man_init(&m);
  TU_OK(env_read_file(E, pin, MAN_MAX_BYTES, &b));
  TU_OK(man_decode(buf_slice(&b), pin, &m));
  size_t n = 0;
  for (size_t i = 0; i < m.n_ssts && n < max; i++) {
    CU_ASSERT(strncmp(m.ssts[i].path, "../", 3) == 0);
    snprintf(out[n++], 512, "%s/%s", tt_tablets_dir(root), m.ssts[i].path + 3);
  }
  man_clear(&m);
  buf_free(&b);
  return n;
}

static size_t existing(char f[][512], size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += env_exists(E, f[i]);
  return k;
}

static void test_pin_keeps_files(void) {
  char root[1024];
  snprintf(root, sizeof root, "%s/pin", tu_tmpdir());
  res_pool *res = tt_res(E, 1 << 20);
  tablet *t = open_tab(res, root, 7);
  put_all(t, "old-%d");
  snap_pin p;
  pin_make(t, root, 1, 7, &p);
  CU_ASSERT(p.info.files >= 1);
  char files[16][512];
  size_t n = pin_files(root, p.path, files, 16);
  CU_ASSERT_EQUAL(n, p.info.files);
  /* New data and a full compaction replace every pinned file. */
  put_all(t, "new-%d");
  TU_OK(tab_compact(t));
  CU_ASSERT_EQUAL(existing(files, n), n);
  uint64_t removed = 0;
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(existing(files, n), n);
  /* A reopen's cleanup keeps them too (SHARED). */
  TU_OK(tab_close(t));
  t = open_tab(res, root, 7);
  CU_ASSERT_EQUAL(existing(files, n), n);
  /* The pin gone, the collector deletes them; the tablet reads on. */
  TU_OK(env_remove_tree(E, p.dir));
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(existing(files, n), 0);
  CU_ASSERT(removed >= n);
  buf v = BUF_INIT;
  TU_OK(tab_get(t, NULL, slice_from_str("k007"), &v));
  CU_ASSERT_EQUAL(v.len, 5);
  CU_ASSERT(memcmp(v.data, "new-7", 5) == 0);
  buf_free(&v);
  TU_OK(tab_close(t));
  res_free(res);
  pin_free(&p);
}

/* A tablet on the server's shared commit log: its manifest names the log,
 * its pin does not (the flush put everything in the pinned files), so a
 * clone never depends on a log the servers may collect. */
static void test_pin_names_no_log(void) {
  char root[1024];
  snprintf(root, sizeof root, "%s/pinlog", tu_tmpdir());
  res_pool *res = tt_res(E, 1 << 20);
  char *tablets = xstrdup(tt_tablets_dir(root));
  char *logs = clog_logs_root(tablets);
  clog_options lo;
  clog_options_init(&lo);
  clog *l = NULL;
  TU_OK(clog_open(E, logs, "ts-a", &lo, &l));
  tab_options o;
  tt_options(&o);
  o.auto_compact = false;
  o.log = l;
  tablet *t = NULL;
  TU_OK(tab_open(res, tt_tablet_dir(root, 9), 9, slice_make("", 0),
                 slice_make("", 0), 1, &o, &t));
  put_all(t, "v-%d");
  man_state m;
  man_init(&m);
  TU_OK(man_read(E, tt_tablet_dir(root, 9), &m));
  CU_ASSERT(m.log_name.len > 0); /* the tablet itself names the log */
  man_clear(&m);
  snap_pin p;
  pin_make(t, root, 2, 9, &p);
  buf b = BUF_INIT;
  TU_OK(env_read_file(E, p.path, MAN_MAX_BYTES, &b));
  TU_OK(man_decode(buf_slice(&b), p.path, &m));
  CU_ASSERT_EQUAL(m.log_name.len, 0);
  CU_ASSERT_EQUAL(m.log_epoch, 0);
  CU_ASSERT(m.n_ssts >= 1);
  man_clear(&m);
  buf_free(&b);
  TU_OK(tab_close(t));
  TU_OK(clog_close(l));
  res_free(res);
  pin_free(&p);
  free(logs);
  free(tablets);
}

static void test_dropped_dir(void) {
  char root[1024];
  snprintf(root, sizeof root, "%s/drop", tu_tmpdir());
  res_pool *res = tt_res(E, 1 << 20);
  tablet *t = open_tab(res, root, 3);
  put_all(t, "v-%d");
  snap_pin p;
  pin_make(t, root, 2, 3, &p);
  TU_OK(tab_close(t));
  char files[16][512];
  size_t n = pin_files(root, p.path, files, 16);
  TU_OK(tab_retire_dropped(E, tt_tablets_dir(root), 3));
  /* A dropped tablet never opens again. */
  tab_options o;
  tt_options(&o);
  tablet *t2 = NULL;
  mica_err *e = tab_open(res, tt_tablet_dir(root, 3), 3, slice_make("", 0),
                         slice_make("", 0), 2, &o, &t2);
  CU_ASSERT(e != NULL && err_code(e) == MICA_NOT_SERVING);
  err_free(e);
  uint64_t removed = 0;
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(existing(files, n), n);
  CU_ASSERT(env_exists(E, tt_tablet_dir(root, 3)));
  TU_OK(env_remove_tree(E, p.dir));
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_FALSE(env_exists(E, tt_tablet_dir(root, 3)));
  /* A directory never opened (no MANIFEST) goes at once. */
  TU_OK(env_mkdirs(E, tt_tablet_dir(root, 4)));
  TU_OK(tab_retire_dropped(E, tt_tablets_dir(root), 4));
  CU_ASSERT_FALSE(env_exists(E, tt_tablet_dir(root, 4)));
  res_free(res);
  pin_free(&p);
}

static void test_damaged_shared(void) {
  char root[1024];
  snprintf(root, sizeof root, "%s/bad", tu_tmpdir());
  res_pool *res = tt_res(E, 1 << 20);
  tablet *t = open_tab(res, root, 5);
  put_all(t, "v-%d");
  snap_pin p;
  pin_make(t, root, 3, 5, &p);
  TU_OK(tab_close(t));
  char *shared = path_join(tt_tablet_dir(root, 5), TAB_SHARED_FILE);
  buf b = BUF_INIT;
  TU_OK(env_read_file(E, shared, 1 << 20, &b));
  CU_ASSERT(b.len > 21);
  b.data[b.len - 1] ^= 0x40; /* a name's last byte: checksum mismatch */
  TU_OK(env_write_file_atomic(E, shared, buf_slice(&b)));
  buf_free(&b);
  tab_options o;
  tt_options(&o);
  tablet *t2 = NULL;
  mica_err *e = tab_open(res, tt_tablet_dir(root, 5), 5, slice_make("", 0),
                         slice_make("", 0), 2, &o, &t2);
  CU_ASSERT(e != NULL && err_code(e) == MICA_CORRUPTION &&
            strstr(err_msg(e), "SHARED: offset 16: checksum mismatch") != NULL);
  if (e != NULL) fprintf(stderr, "(expected) %s\n", err_msg(e));
  err_free(e);
  /* The collector deletes nothing while it cannot read it. */
  char files[16][512];
  size_t n = pin_files(root, p.path, files, 16);
  TU_OK(env_remove_tree(E, p.dir));
  uint64_t removed = 0;
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(removed, 0);
  CU_ASSERT_EQUAL(existing(files, n), n);
  res_free(res);
  free(shared);
  pin_free(&p);
}

static void add_suites(void) {
  E = env_posix();
  CU_pSuite s = CU_add_suite("tablet snapshots", NULL, NULL);
  CU_add_test(s, "pin keeps files", test_pin_keeps_files);
  CU_add_test(s, "pin of a shared-log tablet names no log",
              test_pin_names_no_log);
  CU_add_test(s, "dropped directory", test_dropped_dir);
  CU_add_test(s, "damaged SHARED", test_damaged_shared);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
