/* Leveled compaction (docs/engine.md, "Levels"): the level invariant after
 * random writes, deletes, flushes and compactions; how many SSTables a
 * get looks into; old versions and deletes dropped; snapshots kept whole
 * across compactions; manifests of format version 1 (no levels) still
 * read; split daughters with 1, 2 or 3 of the parent's files always
 * compacting them away so the parent's directory is collected; and a
 * merge of two tablets keeping every level disjoint. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/env.h"
#include "common/path.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"
#include "tabletserver/tablet_merge.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/tt.h"

#define S(str) slice_from_str(str)
#define NONE slice_make(NULL, 0)
#define NLEVELS 7

/* Small bounds, so that a few thousand writes fill three levels. */
static void lvl_options(tab_options *o) {
  tt_options(o);
  o->memtable_bytes = 8 << 10;
  o->compaction_trigger = 2;
  o->level_base_bytes = 24 << 10;
  o->level_file_bytes = 8 << 10;
}

static tablet *open_dir(res_pool *r, const char *dir, uint64_t id, slice lo,
                        slice hi, const tab_options *o) {
  tablet *t = NULL;
  TU_OK(tab_open(r, dir, id, lo, hi, 1, o, &t));
  CU_ASSERT_FATAL(t != NULL);
  return t;
}

static void key_of(char *k, size_t n, int i) { snprintf(k, n, "k%05d", i); }

static void put_model(tablet *t, tt_model *m, int i, size_t vlen) {
  char k[16];
  key_of(k, sizeof(k), i);
  buf v = BUF_INIT;
  buf_resize(&v, vlen);
  for (size_t j = 0; j < vlen; j++) v.data[j] = (uint8_t)('a' + tu_rand_below(26));
  TU_OK(tab_put(t, S(k), buf_slice(&v), false));
  tt_model_put(m, S(k), buf_slice(&v));
  buf_free(&v);
}

static void del_model(tablet *t, tt_model *m, int i) {
  char k[16];
  key_of(k, sizeof(k), i);
  TU_OK(tab_delete(t, S(k), false));
  tt_model_del(m, S(k));
}

/* Compares a get of key i with the model. */
static void check_get(tablet *t, const tt_model *m, int i) {
  char k[16];
  key_of(k, sizeof(k), i);
  tt_check_get(t, m, S(k));
}

/* Seeks: a scan from key i (forward) and one up to key i (reverse) start
 * where the model says, and the next few entries match. Exercises the
 * level iterators' seeks across file boundaries in both directions. */
static void check_seek(tablet *t, const tt_model *m, int i) {
  char k[16];
  key_of(k, sizeof(k), i);
  for (int rev = 0; rev < 2; rev++) {
    tab_scan_options so;
    tab_scan_options_init(&so);
    so.reverse = rev;
    if (rev) so.end = S(k);
    else so.start = S(k);
    iter *it = NULL;
    TU_OK(tab_scan(t, &so, &it));
    long at = (long)tt_model_lower(m, S(k));
    if (rev) at--;
    for (int step = 0; step < 5; step++) {
      bool want = at >= 0 && at < (long)m->n;
      CU_ASSERT_EQUAL(iter_valid(it), want);
      if (!want || !iter_valid(it)) break;
      CU_ASSERT(slice_eq(iter_key(it), buf_slice(&m->keys[at])));
      CU_ASSERT(slice_eq(iter_value(it), buf_slice(&m->vals[at])));
      iter_next(it);
      at += rev ? -1 : 1;
    }
    CU_ASSERT_PTR_NULL(iter_status(it));
    iter_close(it);
  }
}

/* Waits (bounded) until background compaction has nothing left to do:
 * none is due, over several maintenance rounds. */
static void settle(tablet *t) {
  int quiet = 0;
  for (int i = 0; i < 3000 && quiet < 3; i++) {
    tab_maintain(t);
    env_sleep_micros(env_posix(), 20000);
    tab_stats st;
    tab_get_stats(t, &st);
    quiet = st.compaction_due ? 0 : quiet + 1;
  }
  CU_ASSERT(quiet >= 3);
}

static int deepest_level(const tab_stats *st) {
  int d = 0;
  for (int l = 0; l < NLEVELS; l++)
    if (st->level_files[l] > 0) d = l;
  return d;
}

/* Random puts, deletes, flushes and the odd full compaction: after each
 * round every level below 0 is disjoint, every get matches the model,
 * and a snapshot taken halfway still shows exactly what it saw. */
static void test_random_ops_keep_levels(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  lvl_options(&o);
  tablet *t = open_dir(r, dir, 1, NONE, NONE, &o);
  tt_model m = {0}, snap_model = {0};
  tab_snapshot *snap = NULL;
  int deepest = 0;
  enum { KEYS = 700, ROUNDS = 24, OPS = 250 };
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < OPS; i++) {
      int k = (int)tu_rand_below(KEYS);
      if (tu_rand_below(5) == 0) del_model(t, &m, k);
      else put_model(t, &m, k, 20 + tu_rand_below(150));
    }
    if (round % 3 == 0) TU_OK(tab_flush(t));
    if (round == 10) {
      snap = tab_snapshot_new(t);
      tt_model_copy(&snap_model, &m);
    }
    if (round == 17) TU_OK(tab_compact(t));
    mica_err *err = tab_check_levels(t);
    if (err != NULL) fprintf(stderr, "round %d: %s\n", round, err_msg(err));
    CU_ASSERT_PTR_NULL(err);
    err_free(err);
    for (int i = 0; i < 60; i++) check_get(t, &m, (int)tu_rand_below(KEYS));
    for (int i = 0; i < 20; i++) check_seek(t, &m, (int)tu_rand_below(KEYS + 1));
    tab_stats st;
    tab_get_stats(t, &st);
    if (deepest_level(&st) > deepest) deepest = deepest_level(&st);
  }
  settle(t);
  TU_OK(tab_check_levels(t));
  tab_stats st;
  tab_get_stats(t, &st);
  if (deepest_level(&st) > deepest) deepest = deepest_level(&st);
  /* The test means something only if data went below level 1. */
  CU_ASSERT(deepest >= 2);
  CU_ASSERT(st.compactions > 5);
  CU_ASSERT(st.level_files[0] < (uint64_t)o.compaction_trigger);

  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  so.reverse = true;
  tt_check_scan(t, &so, &m, NONE, NONE);
  tab_scan_options_init(&so);
  so.snap = snap;
  tt_check_scan(t, &so, &snap_model, NONE, NONE);
  tab_snapshot_free(snap);

  /* Reopened from the manifest, the levels are the same and still hold. */
  TU_OK(tab_close(t));
  o.auto_compact = false;
  t = open_dir(r, dir, 1, NONE, NONE, &o);
  TU_OK(tab_check_levels(t));
  tab_stats st2;
  tab_get_stats(t, &st2);
  for (int l = 1; l < NLEVELS; l++)
    CU_ASSERT_EQUAL(st2.level_files[l], st.level_files[l]);
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  for (int i = 0; i < KEYS; i++) check_get(t, &m, i);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  tt_model_free(&snap_model);
  res_free(r);
}

/* A get looks into at most every level-0 file plus one file per level
 * below that holds any: counted by the tablet (get_file_probes) on a
 * quiet tablet whose shape cannot change meanwhile. */
static void test_gets_touch_few_files(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  lvl_options(&o);
  o.compaction_trigger = 4; /* leave some files in level 0 */
  tablet *t = open_dir(r, dir, 1, NONE, NONE, &o);
  tt_model m = {0};
  enum { KEYS = 2000 };
  for (int i = 0; i < 6000; i++) put_model(t, &m, (int)tu_rand_below(KEYS), 100);
  for (int i = 0; i < 3; i++) {
    put_model(t, &m, (int)tu_rand_below(KEYS), 100);
    TU_OK(tab_flush(t));
  }
  settle(t);
  tab_stats st;
  tab_get_stats(t, &st);
  uint64_t bound = st.level_files[0], files = st.num_ssts;
  for (int l = 1; l < NLEVELS; l++)
    if (st.level_files[l] > 0) bound++;
  fprintf(stderr, "files %llu, per level:", (unsigned long long)files);
  for (int l = 0; l < NLEVELS; l++)
    fprintf(stderr, " %llu", (unsigned long long)st.level_files[l]);
  fprintf(stderr, "; bound per get %llu\n", (unsigned long long)bound);
  /* Far fewer files per get than files in the tablet. */
  CU_ASSERT(deepest_level(&st) >= 2);
  CU_ASSERT(bound + 3 <= files);
  uint64_t worst = 0, total = 0;
  for (int i = 0; i < 2 * KEYS; i++) {
    tab_stats a, b;
    tab_get_stats(t, &a);
    /* Hits and misses alike (keys up to 2 * KEYS; half never written). */
    check_get(t, &m, i % 2 == 0 ? i / 2 : KEYS + i / 2);
    tab_get_stats(t, &b);
    uint64_t p = b.get_file_probes - a.get_file_probes;
    CU_ASSERT(b.num_ssts == files);
    if (p > worst) worst = p;
    total += p;
  }
  fprintf(stderr, "probes per get: worst %llu, mean %.2f\n",
          (unsigned long long)worst, (double)total / (2.0 * KEYS));
  CU_ASSERT(worst <= bound);
  CU_ASSERT(worst >= 1);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  res_free(r);
}

/* Old versions go at the first compaction; deletes go once nothing below
 * the compaction's output holds older data for their keys. Counted by
 * the entries left in the files (tab_approximate_keys, exact for the
 * tablet's own unrestricted files). */
static void test_versions_and_deletes_dropped(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  lvl_options(&o);
  o.memtable_bytes = 1 << 20; /* only the flushes below */
  o.level_base_bytes = 1 << 20;
  o.level_file_bytes = 1 << 20;
  tablet *t = open_dir(r, dir, 1, NONE, NONE, &o);
  tt_model m = {0};
  for (int i = 0; i < 200; i++) put_model(t, &m, i, 50);
  TU_OK(tab_flush(t));
  for (int i = 0; i < 200; i++) put_model(t, &m, i, 50);
  TU_OK(tab_flush(t)); /* two files in level 0: compacted into level 1 */
  settle(t);
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.level_files[0], 0);
  CU_ASSERT_EQUAL(st.level_files[1], 1);
  CU_ASSERT_EQUAL(tab_approximate_keys(t), 200);

  /* Delete 150 keys; another flush triggers the next compaction, into
   * level 1, the lowest level: the deletes and what they hid go. */
  for (int i = 0; i < 150; i++) del_model(t, &m, i);
  TU_OK(tab_flush(t));
  put_model(t, &m, 999, 50);
  TU_OK(tab_flush(t));
  settle(t);
  tab_get_stats(t, &st);
  fprintf(stderr, "files per level: %llu %llu %llu, compactions %llu\n",
          (unsigned long long)st.level_files[0],
          (unsigned long long)st.level_files[1],
          (unsigned long long)st.level_files[2],
          (unsigned long long)st.compactions);
  CU_ASSERT_EQUAL(st.level_files[0], 0);
  CU_ASSERT_EQUAL(tab_approximate_keys(t), 51);
  for (int i = 0; i < 200; i++) check_get(t, &m, i);
  check_get(t, &m, 999);

  /* A lone file holding deletes is rewritten by a full compaction, not
   * moved: delete a key and compact twice (the second time, one file). */
  del_model(t, &m, 150);
  TU_OK(tab_compact(t));
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.num_ssts, 1);
  CU_ASSERT_EQUAL(tab_approximate_keys(t), 50);
  TU_OK(tab_delete(t, S("k00151"), false));
  tt_model_del(&m, S("k00151"));
  TU_OK(tab_flush(t));
  TU_OK(tab_compact(t)); /* two files: merged, the delete dropped */
  CU_ASSERT_EQUAL(tab_approximate_keys(t), 49);
  tab_get_stats(t, &st);
  uint64_t before = st.compactions;
  TU_OK(tab_compact(t)); /* one file, no deletes: nothing to do */
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.compactions, before);

  /* Delete everything: a full compaction leaves no file at all. */
  for (int i = 152; i < 200; i++) del_model(t, &m, i);
  del_model(t, &m, 999);
  TU_OK(tab_compact(t));
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.num_ssts, 0);
  CU_ASSERT_EQUAL(tab_approximate_keys(t), 0);
  for (int i = 0; i < 200; i++) check_get(t, &m, i);
  TU_OK(tab_close(t));
  tt_model_free(&m);
  res_free(r);
}

/* ---- manifests of format version 1 ---- */

/* The bytes of `m` as format version 1 wrote them (MANIFEST_FORMAT.md
 * before levels): the SSTable records have no level. */
static void encode_v1(const man_state *m, buf *out) {
  buf p = BUF_INIT;
  put_varint64(&p, m->tablet_id);
  put_varint64(&p, m->epoch);
  put_varint64(&p, m->last_seq);
  put_varint64(&p, m->next_file);
  buf_push(&p, (uint8_t)m->state);
  put_length_prefixed(&p, buf_slice(&m->start_key));
  buf_push(&p, m->has_end ? 1 : 0);
  put_length_prefixed(&p, buf_slice(&m->end_key));
  put_varint64(&p, m->parent_id);
  put_varint32(&p, (uint32_t)m->n_ssts);
  for (size_t i = 0; i < m->n_ssts; i++) {
    put_length_prefixed(&p, slice_from_str(m->ssts[i].path));
    put_varint64(&p, m->ssts[i].size);
    put_length_prefixed(&p, buf_slice(&m->ssts[i].lo));
    buf_push(&p, m->ssts[i].has_hi ? 1 : 0);
    put_length_prefixed(&p, buf_slice(&m->ssts[i].hi));
  }
  put_varint32(&p, (uint32_t)m->n_live);
  for (size_t i = 0; i < m->n_live; i++) {
    put_varint64(&p, m->live[i].epoch);
    put_varint64(&p, m->live[i].number);
  }
  put_varint32(&p, (uint32_t)m->n_retired);
  for (size_t i = 0; i < m->n_retired; i++) {
    put_varint64(&p, m->retired[i].epoch);
    put_varint64(&p, m->retired[i].number);
  }
  CU_ASSERT_EQUAL_FATAL(m->state, MAN_LIVE);
  buf_append(out, "MICAMANF", 8);
  put_fixed32(out, 1);
  put_fixed32(out, (uint32_t)p.len);
  put_fixed32(out, crc32c_mask(crc32c_value(p.data, p.len)));
  buf_append_slice(out, buf_slice(&p));
  buf_free(&p);
}

/* Replaces the tablet's manifests (MANIFEST-<epoch>-<gen>) with one plain
 * MANIFEST holding `bytes`, as a version-1 server left it. */
static void write_raw_manifest(const char *dir, slice bytes) {
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(env_posix(), dir, &names, &n));
  for (size_t i = 0; i < n; i++) {
    if (!man_is_name(names[i])) continue;
    char *p = path_join(dir, names[i]);
    TU_OK(env_remove(env_posix(), p));
    free(p);
  }
  env_free_names(names, n);
  char *path = path_join(dir, MAN_FILE_NAME);
  TU_OK(env_write_file_atomic(env_posix(), path, bytes));
  free(path);
}

/* The format version of the manifest the tablet reads. */
static uint32_t manifest_version(const char *dir) {
  char *path = NULL;
  TU_OK(man_newest_path(env_posix(), dir, &path));
  CU_ASSERT_PTR_NOT_NULL_FATAL(path);
  buf b = BUF_INIT;
  TU_OK(env_read_file(env_posix(), path, MAN_MAX_BYTES, &b));
  uint32_t v = b.len >= 12 ? decode_fixed32(b.data + 8) : 0;
  buf_free(&b);
  free(path);
  return v;
}

static void test_version1_manifest(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  lvl_options(&o);
  o.auto_compact = false;
  o.memtable_bytes = 1 << 20;
  tablet *t = open_dir(r, dir, 1, NONE, NONE, &o);
  tt_model m = {0};
  for (int f = 0; f < 3; f++) {
    for (int i = 0; i < 100; i++) put_model(t, &m, (int)tu_rand_below(300), 40);
    TU_OK(tab_flush(t));
  }
  TU_OK(tab_close(t));
  CU_ASSERT_EQUAL(manifest_version(dir), 2);

  /* Rewrite the manifest as version 1 wrote it. */
  man_state ms;
  man_init(&ms);
  TU_OK(man_read(env_posix(), dir, &ms));
  CU_ASSERT_EQUAL_FATAL(ms.n_ssts, 3);
  buf v1 = BUF_INIT;
  encode_v1(&ms, &v1);
  man_state back;
  man_init(&back);
  TU_OK(man_decode(buf_slice(&v1), "v1", &back));
  CU_ASSERT_EQUAL(back.n_ssts, 3);
  for (size_t i = 0; i < back.n_ssts; i++) {
    CU_ASSERT_EQUAL(back.ssts[i].level, 0);
    CU_ASSERT_STRING_EQUAL(back.ssts[i].path, ms.ssts[i].path);
  }
  man_clear(&back);
  write_raw_manifest(dir, buf_slice(&v1));
  CU_ASSERT_EQUAL(manifest_version(dir), 1);

  /* Opened: every file in level 0, newest first as version 1 listed
   * them; the data reads the same. */
  t = open_dir(r, dir, 1, NONE, NONE, &o);
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.level_files[0], 3);
  CU_ASSERT_EQUAL(st.num_ssts, 3);
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  for (int i = 0; i < 300; i++) check_get(t, &m, i);
  /* Compacted into level 1, and written back as version 2. */
  TU_OK(tab_compact(t));
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.level_files[0], 0);
  CU_ASSERT(st.level_files[1] >= 1);
  TU_OK(tab_close(t));
  CU_ASSERT_EQUAL(manifest_version(dir), 2);
  man_clear(&ms);
  TU_OK(man_read(env_posix(), dir, &ms));
  for (size_t i = 0; i < ms.n_ssts; i++) CU_ASSERT_EQUAL(ms.ssts[i].level, 1);
  t = open_dir(r, dir, 1, NONE, NONE, &o);
  tt_check_scan(t, &so, &m, NONE, NONE);
  TU_OK(tab_close(t));
  man_clear(&ms);
  buf_free(&v1);
  tt_model_free(&m);
  res_free(r);
}

/* The worked examples of MANIFEST_FORMAT.md, versions 2 and 1. */
static void test_format_examples(void) {
  const char *path = "sst-00000000000000000003-00000000000000000002.sst";
  for (int version = 1; version <= 2; version++) {
    buf b = BUF_INIT;
    buf_append(&b, "MICAMANF", 8);
    put_fixed32(&b, (uint32_t)version);
    put_fixed32(&b, version == 2 ? 72 : 71);
    static const uint8_t crc2[4] = {0x71, 0x5b, 0x35, 0x6c};
    static const uint8_t crc1[4] = {0x1d, 0x75, 0x34, 0x46};
    buf_append(&b, version == 2 ? crc2 : crc1, 4);
    static const uint8_t head[] = {7, 3, 0x2a, 6, 0, 1, 'b', 0, 0, 0, 1, 49};
    buf_append(&b, head, sizeof(head));
    buf_append(&b, path, 49);
    static const uint8_t rec[] = {0x80, 0x20, 1, 'b', 0, 0};
    buf_append(&b, rec, sizeof(rec));
    if (version == 2) buf_push(&b, 1);
    static const uint8_t tail[] = {1, 3, 5, 0};
    buf_append(&b, tail, sizeof(tail));
    man_state m;
    man_init(&m);
    TU_OK(man_decode(buf_slice(&b), "example", &m));
    CU_ASSERT_EQUAL(m.tablet_id, 7);
    CU_ASSERT_EQUAL(m.last_seq, 42);
    CU_ASSERT_EQUAL_FATAL(m.n_ssts, 1);
    CU_ASSERT_STRING_EQUAL(m.ssts[0].path, path);
    CU_ASSERT_EQUAL(m.ssts[0].size, 4096);
    CU_ASSERT_EQUAL(m.ssts[0].level, version == 2 ? 1 : 0);
    CU_ASSERT_EQUAL(m.n_live, 1);
    if (version == 2) {
      /* And the encoder writes exactly these bytes. */
      buf e = BUF_INIT;
      man_encode(&m, &e);
      CU_ASSERT(slice_eq(buf_slice(&e), buf_slice(&b)));
      buf_free(&e);
    }
    man_clear(&m);
    buf_free(&b);
  }
}

/* A level out of range, and a manifest whose level-1 files overlap, are
 * CORRUPTION naming what is wrong. */
static void test_bad_levels(void) {
  const char *dir = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 4 << 20);
  tab_options o;
  lvl_options(&o);
  o.auto_compact = false;
  o.memtable_bytes = 1 << 20;
  tablet *t = open_dir(r, dir, 1, NONE, NONE, &o);
  tt_model m = {0};
  for (int f = 0; f < 2; f++) {
    for (int i = 0; i < 100; i++) put_model(t, &m, i, 40); /* same keys */
    TU_OK(tab_flush(t));
  }
  TU_OK(tab_close(t));
  man_state ms;
  man_init(&ms);
  TU_OK(man_read(env_posix(), dir, &ms));
  CU_ASSERT_EQUAL_FATAL(ms.n_ssts, 2);

  ms.ssts[1].level = MAN_LEVELS;
  buf b = BUF_INIT;
  man_encode(&ms, &b);
  man_state x;
  man_init(&x);
  mica_err *err = man_decode(buf_slice(&b), "bad-level", &x);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), "SSTable level") : NULL);
  err_free(err);

  /* Both files hold the same keys: they cannot share level 1. */
  ms.ssts[0].level = 1;
  ms.ssts[1].level = 1;
  TU_OK(man_write(env_posix(), dir, &ms));
  t = NULL;
  err = tab_open(r, dir, 1, NONE, NONE, 1, &o, &t);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), "level 1") : NULL);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), "overlap") : NULL);
  CU_ASSERT_PTR_NULL(t);
  err_free(err);
  /* In different levels (the newer above) they are fine. */
  ms.ssts[0].level = 1;
  ms.ssts[1].level = 2;
  TU_OK(man_write(env_posix(), dir, &ms));
  t = open_dir(r, dir, 1, NONE, NONE, &o);
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  TU_OK(tab_close(t));
  buf_free(&b);
  man_clear(&ms);
  tt_model_free(&m);
  res_free(r);
}

/* ---- split daughters ---- */

/* The audit's worry: a daughter holding fewer files than the compaction
 * trigger and never written to must still compact its parent's files
 * away, so that the parent's directory is collected. For parents of 1, 2
 * and 3 files (below the trigger of 4), all in level 0 or with the
 * oldest already compacted into level 1, nothing is written to the
 * daughters; the test waits (bounded) for the parent to disappear. */
static void daughters_collect_parent(int nfiles, bool parent_has_level1) {
  const char *root = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 16 << 20);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 4 << 20; /* no flush but the ones below */
  o.compaction_trigger = 4;
  o.stall_sst_count = 40;
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, 10), 10, NONE, NONE, 5, &o, &t));
  tt_model m = {0};
  for (int f = 0; f < nfiles; f++) {
    for (int i = 0; i < 300; i++) put_model(t, &m, (int)tu_rand_below(1000), 40);
    TU_OK(tab_flush(t));
    if (f == 0 && parent_has_level1) TU_OK(tab_compact(t)); /* to level 1 */
  }
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.num_ssts, (uint64_t)nfiles);
  CU_ASSERT(st.num_ssts < (uint64_t)o.compaction_trigger);

  tablet *left = NULL, *right = NULL;
  TU_OK(tab_split(t, S("k00500"), 11, 12, &o, &left, &right));
  CU_ASSERT_FATAL(left != NULL && right != NULL);
  if (!tt_wait_daughters_own(root, 10, left, 11, right, 12, S("k00500"), &m))
    fprintf(stderr, "parent of %d files (level 1: %d) not collected\n",
            nfiles, parent_has_level1);
  TU_OK(tab_check_levels(left));
  TU_OK(tab_check_levels(right));
  for (int i = 0; i < 1000; i += 7) check_get(i < 500 ? left : right, &m, i);
  TU_OK(tab_close(left));
  TU_OK(tab_close(right));
  /* Reopened, nothing more is due. */
  tt_check_settled(r, root, 11, NONE, S("k00500"), 5, &o, &m);
  tt_model_free(&m);
  res_free(r);
}

static void test_daughters_collect_parent(void) {
  for (int n = 1; n <= 3; n++) {
    daughters_collect_parent(n, false);
    daughters_collect_parent(n, true);
  }
}

/* ---- merges ---- */

/* Two adjacent tablets, each with files in levels 0 and 1, merged by
 * reference: the merged tablet's levels are the union of the inputs',
 * still disjoint, and it compacts the inputs' files away. */
static void test_merge_keeps_levels_disjoint(void) {
  const char *root = tu_tmpdir();
  res_pool *r = tt_res(env_posix(), 16 << 20);
  tab_options o;
  lvl_options(&o);
  o.auto_compact = false;
  o.memtable_bytes = 1 << 20;
  o.level_file_bytes = 4 << 10; /* several files per level */
  char *dirs[3];
  for (int i = 0; i < 3; i++) dirs[i] = xstrdup(tt_tablet_dir(root, 20 + i));
  tablet *a = open_dir(r, dirs[0], 20, NONE, S("k00500"), &o);
  tablet *b = open_dir(r, dirs[1], 21, S("k00500"), NONE, &o);
  tt_model m = {0};
  for (int side = 0; side < 2; side++) {
    tablet *t = side == 0 ? a : b;
    for (int f = 0; f < 2; f++) {
      for (int i = 0; i < 200; i++)
        put_model(t, &m, side * 500 + (int)tu_rand_below(500), 60);
      TU_OK(tab_flush(t));
    }
    TU_OK(tab_compact(t)); /* level 1, in files of 4 KiB */
    for (int i = 0; i < 100; i++)
      put_model(t, &m, side * 500 + (int)tu_rand_below(500), 60);
    TU_OK(tab_flush(t)); /* level 0 */
  }
  tab_stats sa, sb;
  tab_get_stats(a, &sa);
  tab_get_stats(b, &sb);
  CU_ASSERT(sa.level_files[1] >= 2 && sb.level_files[1] >= 2);
  TU_OK(tab_close(a));
  TU_OK(tab_close(b));
  tab_merge_input in[2] = {{dirs[0], 20}, {dirs[1], 21}};
  TU_OK(tab_merge_prepare(r, dirs[2], 22, in, 1, &o));
  tablet *t = open_dir(r, dirs[2], 22, NONE, NONE, &o);
  TU_OK(tab_check_levels(t));
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.level_files[0], sa.level_files[0] + sb.level_files[0]);
  CU_ASSERT_EQUAL(st.level_files[1], sa.level_files[1] + sb.level_files[1]);
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  so.reverse = true;
  tt_check_scan(t, &so, &m, NONE, NONE);
  for (int i = 0; i < 1000; i += 3) check_get(t, &m, i);
  TU_OK(tab_close(t));
  /* With compaction on, it rewrites the inputs' files into its own. */
  o.auto_compact = true;
  t = open_dir(r, dirs[2], 22, NONE, NONE, &o);
  bool done = false;
  for (int i = 0; i < 6000 && !done; i++) {
    done = tt_only_own_files(dirs[2]);
    if (!done) env_sleep_micros(env_posix(), 10000);
  }
  CU_ASSERT_TRUE(done);
  TU_OK(tab_check_levels(t));
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, &m, NONE, NONE);
  TU_OK(tab_close(t));
  for (int i = 0; i < 3; i++) free(dirs[i]);
  tt_model_free(&m);
  res_free(r);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"random_ops_keep_levels", test_random_ops_keep_levels},
      {"gets_touch_few_files", test_gets_touch_few_files},
      {"versions_and_deletes_dropped", test_versions_and_deletes_dropped},
      {"version1_manifest", test_version1_manifest},
      {"format_examples", test_format_examples},
      {"bad_levels", test_bad_levels},
      {"daughters_collect_parent", test_daughters_collect_parent},
      {"merge_keeps_levels_disjoint", test_merge_keeps_levels_disjoint},
      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_level", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
