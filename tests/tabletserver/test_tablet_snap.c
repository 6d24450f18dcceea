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
  char *sdir = tab_snapshots_dir(tt_tablets_dir(root));
  char *pdir = path_join(sdir, "1");
  char *pin = path_join(pdir, "7");
  TU_OK(env_mkdirs(E, pdir));
  tab_pin_info info;
  TU_OK(tab_snapshot_pin(t, pin, &info));
  CU_ASSERT(info.files >= 1);
  char files[16][512];
  size_t n = pin_files(root, pin, files, 16);
  CU_ASSERT_EQUAL(n, info.files);
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
  TU_OK(env_remove_tree(E, pdir));
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(existing(files, 0 + n), 0);
  CU_ASSERT(removed >= n);
  buf v = BUF_INIT;
  TU_OK(tab_get(t, NULL, slice_from_str("k007"), &v));
  CU_ASSERT_EQUAL(v.len, 5);
  CU_ASSERT(memcmp(v.data, "new-7", 5) == 0);
  buf_free(&v);
  TU_OK(tab_close(t));
  res_free(res);
  free(pin);
  free(pdir);
  free(sdir);
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
  char *sdir = tab_snapshots_dir(tablets);
  char *pdir = path_join(sdir, "2");
  char *pin = path_join(pdir, "9");
  TU_OK(env_mkdirs(E, pdir));
  tab_pin_info info;
  TU_OK(tab_snapshot_pin(t, pin, &info));
  buf b = BUF_INIT;
  TU_OK(env_read_file(E, pin, MAN_MAX_BYTES, &b));
  TU_OK(man_decode(buf_slice(&b), pin, &m));
  CU_ASSERT_EQUAL(m.log_name.len, 0);
  CU_ASSERT_EQUAL(m.log_epoch, 0);
  CU_ASSERT(m.n_ssts >= 1);
  man_clear(&m);
  buf_free(&b);
  TU_OK(tab_close(t));
  TU_OK(clog_close(l));
  res_free(res);
  free(pin);
  free(pdir);
  free(sdir);
  free(logs);
  free(tablets);
}

static void test_dropped_dir(void) {
  char root[1024];
  snprintf(root, sizeof root, "%s/drop", tu_tmpdir());
  res_pool *res = tt_res(E, 1 << 20);
  tablet *t = open_tab(res, root, 3);
  put_all(t, "v-%d");
  char *sdir = tab_snapshots_dir(tt_tablets_dir(root));
  char *pdir = path_join(sdir, "2");
  char *pin = path_join(pdir, "3");
  TU_OK(env_mkdirs(E, pdir));
  tab_pin_info info;
  TU_OK(tab_snapshot_pin(t, pin, &info));
  TU_OK(tab_close(t));
  char files[16][512];
  size_t n = pin_files(root, pin, files, 16);
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
  TU_OK(env_remove_tree(E, pdir));
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_FALSE(env_exists(E, tt_tablet_dir(root, 3)));
  /* A directory never opened (no MANIFEST) goes at once. */
  TU_OK(env_mkdirs(E, tt_tablet_dir(root, 4)));
  TU_OK(tab_retire_dropped(E, tt_tablets_dir(root), 4));
  CU_ASSERT_FALSE(env_exists(E, tt_tablet_dir(root, 4)));
  res_free(res);
  free(pin);
  free(pdir);
  free(sdir);
}

static void test_damaged_shared(void) {
  char root[1024];
  snprintf(root, sizeof root, "%s/bad", tu_tmpdir());
  res_pool *res = tt_res(E, 1 << 20);
  tablet *t = open_tab(res, root, 5);
  put_all(t, "v-%d");
  char *sdir = tab_snapshots_dir(tt_tablets_dir(root));
  char *pdir = path_join(sdir, "3");
  char *pin = path_join(pdir, "5");
  TU_OK(env_mkdirs(E, pdir));
  tab_pin_info info;
  TU_OK(tab_snapshot_pin(t, pin, &info));
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
  size_t n = pin_files(root, pin, files, 16);
  TU_OK(env_remove_tree(E, pdir));
  uint64_t removed = 0;
  TU_OK(tab_collect_garbage(E, tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(removed, 0);
  CU_ASSERT_EQUAL(existing(files, n), n);
  res_free(res);
  free(shared);
  free(pin);
  free(pdir);
  free(sdir);
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
