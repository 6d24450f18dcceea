/* test_memtable: the skiplist memtable against a sorted-array model, and
 * one writer racing four lock-free readers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/ikey.h"
#include "tabletserver/memtable.h"
#include "tests/harness/testutil.h"

/* ---- model: every entry ever added, kept sorted by ikey_cmp ---- */

typedef struct mentry {
  buf ikey;
  buf value;
} mentry;

typedef struct model {
  mentry *e;
  size_t n, cap;
} model;

static int mentry_cmp(const void *a, const void *b) {
  return ikey_cmp(buf_slice(&((const mentry *)a)->ikey),
                  buf_slice(&((const mentry *)b)->ikey));
}

static void model_add(model *m, uint64_t seq, uint8_t kind, slice k, slice v) {
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 256;
    m->e = xrealloc(m->e, m->cap * sizeof(mentry));
  }
  mentry *e = &m->e[m->n++];
  memset(e, 0, sizeof(*e));
  ikey_append(&e->ikey, k, seq, kind);
  if (kind == IKEY_PUT) buf_append_slice(&e->value, v);
}

static void model_sort(model *m) { qsort(m->e, m->n, sizeof(mentry), mentry_cmp); }

static void model_free(model *m) {
  for (size_t i = 0; i < m->n; i++) {
    buf_free(&m->e[i].ikey);
    buf_free(&m->e[i].value);
  }
  free(m->e);
}

/* First index with ikey >= t (n if none). */
static size_t model_lower(const model *m, slice t) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ikey_cmp(buf_slice(&m->e[mid].ikey), t) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static enum mt_get_result model_get(const model *m, slice uk, uint64_t snap,
                                    slice *value) {
  buf t = BUF_INIT;
  ikey_append(&t, uk, snap, IKEY_SEEK_KIND);
  size_t i = model_lower(m, buf_slice(&t));
  buf_free(&t);
  if (i == m->n) return MT_ABSENT;
  ikey_parts p;
  CU_ASSERT_FATAL(ikey_parse(buf_slice(&m->e[i].ikey), &p));
  if (!slice_eq(p.user_key, uk)) return MT_ABSENT;
  if (p.kind == IKEY_DELETE) return MT_DELETED;
  *value = buf_slice(&m->e[i].value);
  return MT_FOUND;
}

/* Keys from a small alphabet and short lengths, so that many keys are
 * prefixes of others and versions pile up. */
static void random_user_key(buf *k) {
  buf_clear(k);
  size_t len = 1 + tu_rand_below(4);
  for (size_t i = 0; i < len; i++) buf_push(k, (uint8_t)("ab\0\xff"[tu_rand_below(4)]));
}

static void check_entry(iter *it, const model *m, size_t i) {
  CU_ASSERT_FATAL(iter_valid(it));
  CU_ASSERT_FATAL(i < m->n);
  CU_ASSERT(slice_eq(iter_key(it), buf_slice(&m->e[i].ikey)));
  CU_ASSERT(slice_eq(iter_value(it), buf_slice(&m->e[i].value)));
}

static void test_empty(void) {
  memtable *m = mt_new();
  CU_ASSERT_EQUAL(mt_count(m), 0);
  CU_ASSERT_EQUAL(mt_max_seq(m), 0);
  buf v = BUF_INIT;
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("x"), IKEY_MAX_SEQ, &v), MT_ABSENT);
  iter *it = mt_iter_new(m);
  iter_seek_to_first(it);
  CU_ASSERT(!iter_valid(it));
  iter_seek_to_last(it);
  CU_ASSERT(!iter_valid(it));
  buf t = BUF_INIT;
  ikey_append(&t, slice_from_str("x"), 5, IKEY_PUT);
  iter_seek(it, buf_slice(&t));
  CU_ASSERT(!iter_valid(it));
  iter_seek_for_prev(it, buf_slice(&t));
  CU_ASSERT(!iter_valid(it));
  CU_ASSERT_PTR_NULL(iter_status(it));
  iter_close(it);
  buf_free(&t);
  mt_unref(m);
  mt_unref(NULL);
}

static void test_versions_and_snapshots(void) {
  memtable *m = mt_new();
  slice k = slice_from_str("key");
  mt_add(m, 10, IKEY_PUT, k, slice_from_str("v10"));
  mt_add(m, 20, IKEY_DELETE, k, slice_from_str("ignored"));
  mt_add(m, 30, IKEY_PUT, k, slice_from_str("v30"));
  mt_add(m, 25, IKEY_PUT, slice_from_str("ke"), slice_from_str("short"));
  buf v = BUF_INIT;
  CU_ASSERT_EQUAL(mt_get(m, k, 9, &v), MT_ABSENT);
  CU_ASSERT_EQUAL(mt_get(m, k, 10, &v), MT_FOUND);
  CU_ASSERT(slice_eq(buf_slice(&v), slice_from_str("v10")));
  CU_ASSERT_EQUAL(mt_get(m, k, 19, &v), MT_FOUND);
  CU_ASSERT_EQUAL(mt_get(m, k, 20, &v), MT_DELETED);
  CU_ASSERT_EQUAL(mt_get(m, k, 29, &v), MT_DELETED);
  CU_ASSERT_EQUAL(mt_get(m, k, 30, &v), MT_FOUND);
  CU_ASSERT(slice_eq(buf_slice(&v), slice_from_str("v30")));
  CU_ASSERT_EQUAL(mt_get(m, k, UINT64_MAX, &v), MT_FOUND);
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("k"), 100, &v), MT_ABSENT);
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("keyz"), 100, &v), MT_ABSENT);
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("ke"), 24, &v), MT_ABSENT);
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("ke"), 25, &v), MT_FOUND);
  CU_ASSERT(slice_eq(buf_slice(&v), slice_from_str("short")));
  CU_ASSERT_EQUAL(mt_count(m), 4);
  CU_ASSERT_EQUAL(mt_max_seq(m), 30);
  CU_ASSERT(mt_memory_usage(m) > 0);

  /* Order: "ke"@25, then "key" newest first; the delete has no value. */
  iter *it = mt_iter_new(m);
  iter_seek_to_first(it);
  uint64_t seqs[] = {25, 30, 20, 10};
  for (int i = 0; i < 4; i++) {
    CU_ASSERT_FATAL(iter_valid(it));
    ikey_parts p;
    CU_ASSERT_FATAL(ikey_parse(iter_key(it), &p));
    CU_ASSERT_EQUAL(p.seq, seqs[i]);
    if (p.kind == IKEY_DELETE) CU_ASSERT_EQUAL(iter_value(it).len, 0);
    iter_next(it);
  }
  CU_ASSERT(!iter_valid(it));
  /* A bare user key as target sorts before all its versions. */
  iter_seek(it, slice_from_str("key"));
  CU_ASSERT_FATAL(iter_valid(it));
  ikey_parts p;
  CU_ASSERT_FATAL(ikey_parse(iter_key(it), &p));
  CU_ASSERT_EQUAL(p.seq, 30);
  iter_seek_for_prev(it, slice_from_str("key"));
  CU_ASSERT_FATAL(iter_valid(it));
  CU_ASSERT_FATAL(ikey_parse(iter_key(it), &p));
  CU_ASSERT_EQUAL(p.seq, 25);
  iter_close(it);
  buf_free(&v);
  mt_unref(m);
}

/* An iterator keeps the memtable alive after its creator lets go (ASan
 * would report a use after free otherwise). */
static void test_refcount(void) {
  memtable *m = mt_new();
  mt_add(m, 1, IKEY_PUT, slice_from_str("a"), slice_from_str("1"));
  iter *it = mt_iter_new(m);
  mt_ref(m);
  mt_unref(m);
  mt_unref(m);
  iter_seek_to_first(it);
  CU_ASSERT_FATAL(iter_valid(it));
  CU_ASSERT(slice_eq(iter_value(it), slice_from_str("1")));
  iter_close(it);
}

static void test_apply_batch(void) {
  memtable *m = mt_new();
  wbatch *b = wbatch_new();
  wbatch_set_seq(b, 100);
  wbatch_put(b, slice_from_str("x"), slice_from_str("first"));
  wbatch_delete(b, slice_from_str("y"));
  wbatch_put(b, slice_from_str("x"), slice_from_str("second"));
  mt_apply_batch(m, b);
  CU_ASSERT_EQUAL(mt_count(m), 3);
  CU_ASSERT_EQUAL(mt_max_seq(m), 102);
  buf v = BUF_INIT;
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("x"), 100, &v), MT_FOUND);
  CU_ASSERT(slice_eq(buf_slice(&v), slice_from_str("first")));
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("x"), 102, &v), MT_FOUND);
  CU_ASSERT(slice_eq(buf_slice(&v), slice_from_str("second")));
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("y"), 101, &v), MT_DELETED);
  CU_ASSERT_EQUAL(mt_get(m, slice_from_str("y"), 100, &v), MT_ABSENT);
  buf_free(&v);
  wbatch_free(b);
  mt_unref(m);
}

static void check_against_model(memtable *m, model *md, uint64_t max_seq) {
  model_sort(md);
  CU_ASSERT_EQUAL(mt_count(m), md->n);
  buf k = BUF_INIT, v = BUF_INIT, t = BUF_INIT;
  /* Gets at random snapshots. */
  for (int i = 0; i < 2000; i++) {
    random_user_key(&k);
    uint64_t snap = tu_rand_below(max_seq + 2);
    slice want_v = {0};
    enum mt_get_result want = model_get(md, buf_slice(&k), snap, &want_v);
    buf_clear(&v);
    enum mt_get_result got = mt_get(m, buf_slice(&k), snap, &v);
    CU_ASSERT_EQUAL(got, want);
    if (got == MT_FOUND && want == MT_FOUND) CU_ASSERT(slice_eq(buf_slice(&v), want_v));
  }
  /* Whole scans both ways. */
  iter *it = mt_iter_new(m);
  size_t i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) check_entry(it, md, i++);
  CU_ASSERT_EQUAL(i, md->n);
  i = md->n;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) check_entry(it, md, --i);
  CU_ASSERT_EQUAL(i, 0);
  /* Seeks to random internal keys, then a random walk both ways. */
  for (int s = 0; s < 1000; s++) {
    random_user_key(&k);
    buf_clear(&t);
    ikey_append(&t, buf_slice(&k), tu_rand_below(max_seq + 2),
                (uint8_t)tu_rand_below(2));
    size_t lo = model_lower(md, buf_slice(&t));
    bool for_prev = tu_rand_below(2);
    size_t pos; /* md->n means "not valid" */
    if (for_prev) {
      iter_seek_for_prev(it, buf_slice(&t));
      /* Last entry <= t. */
      if (lo < md->n && ikey_cmp(buf_slice(&md->e[lo].ikey), buf_slice(&t)) == 0)
        pos = lo;
      else
        pos = lo == 0 ? md->n : lo - 1;
    } else {
      iter_seek(it, buf_slice(&t));
      pos = lo;
    }
    for (int step = 0; step < 20; step++) {
      if (pos == md->n) {
        CU_ASSERT(!iter_valid(it));
        break;
      }
      check_entry(it, md, pos);
      if (tu_rand_below(2)) {
        iter_next(it);
        pos = pos + 1;
      } else {
        iter_prev(it);
        pos = pos == 0 ? md->n : pos - 1;
      }
    }
  }
  iter_close(it);
  buf_free(&k);
  buf_free(&v);
  buf_free(&t);
}

static void test_model(void) {
  for (int round = 0; round < 4; round++) {
    memtable *m = mt_new();
    model md = {0};
    buf k = BUF_INIT, v = BUF_INIT;
    uint64_t seq = 0;
    int n = 500 + (int)tu_rand_below(3000);
    size_t last_usage = mt_memory_usage(m);
    for (int i = 0; i < n; i++) {
      random_user_key(&k);
      buf_resize(&v, tu_rand_below(4) == 0 ? tu_rand_below(3000) : tu_rand_below(20));
      tu_rand_bytes(v.data, v.len);
      uint8_t kind = tu_rand_below(4) == 0 ? IKEY_DELETE : IKEY_PUT;
      /* Sequence numbers rise with gaps, like a tablet's across batches. */
      seq += 1 + tu_rand_below(3);
      mt_add(m, seq, kind, buf_slice(&k), buf_slice(&v));
      model_add(&md, seq, kind, buf_slice(&k), buf_slice(&v));
      CU_ASSERT(mt_memory_usage(m) >= last_usage);
      last_usage = mt_memory_usage(m);
    }
    CU_ASSERT_EQUAL(mt_max_seq(m), seq);
    check_against_model(m, &md, seq);
    buf_free(&k);
    buf_free(&v);
    model_free(&md);
    mt_unref(m);
  }
}

/* ---- one writer, four readers ---- */

#define CONC_ENTRIES 200000
#define READERS 4

typedef struct conc {
  memtable *m;
  atomic_bool done;
  atomic_ulong checks;
  atomic_int failures;
} conc;

/* Value = user key, '#', seq as 8 bytes: a reader can tell a complete
 * entry from a torn one by checking the value against the key. */
static void make_value(buf *v, slice uk, uint64_t seq) {
  buf_clear(v);
  buf_append_slice(v, uk);
  buf_push(v, '#');
  put_fixed64(v, seq);
}

static bool value_ok(slice ik, slice v) {
  ikey_parts p;
  if (!ikey_parse(ik, &p)) return false;
  if (p.kind == IKEY_DELETE) return v.len == 0;
  if (v.len != p.user_key.len + 9) return false;
  if (memcmp(v.data, p.user_key.data, p.user_key.len) != 0) return false;
  if (v.data[p.user_key.len] != '#') return false;
  return decode_fixed64(v.data + p.user_key.len + 1) == p.seq;
}

static void conc_key(buf *k, uint64_t r) {
  buf_clear(k);
  char s[32];
  int n = snprintf(s, sizeof(s), "k%05u", (unsigned)(r % 20000));
  buf_append(k, s, (size_t)n);
}

static void *writer_main(void *arg) {
  conc *c = arg;
  buf k = BUF_INIT, v = BUF_INIT;
  for (uint64_t seq = 1; seq <= CONC_ENTRIES; seq++) {
    conc_key(&k, tu_rand());
    uint8_t kind = seq % 5 == 0 ? IKEY_DELETE : IKEY_PUT;
    make_value(&v, buf_slice(&k), seq);
    mt_add(c->m, seq, kind, buf_slice(&k), buf_slice(&v));
  }
  buf_free(&k);
  buf_free(&v);
  atomic_store(&c->done, true);
  return NULL;
}

static void *reader_main(void *arg) {
  conc *c = arg;
  iter *it = mt_iter_new(c->m);
  buf prev = BUF_INIT, k = BUF_INIT, v = BUF_INIT, t = BUF_INIT;
  int bad = 0;
  uint64_t last_count = 0;
  while (!atomic_load(&c->done) || last_count == 0) {
    uint64_t cnt = mt_count(c->m);
    if (cnt < last_count) bad++;
    last_count = cnt;
    /* A full pass in one direction: strictly sorted, complete entries, and
     * at least as many entries as the count read before it started. */
    bool fwd = tu_rand_below(2);
    uint64_t seen = 0;
    buf_clear(&prev);
    if (fwd)
      iter_seek_to_first(it);
    else
      iter_seek_to_last(it);
    for (; iter_valid(it); fwd ? iter_next(it) : iter_prev(it)) {
      slice ik = iter_key(it);
      if (!value_ok(ik, iter_value(it))) bad++;
      if (prev.len > 0) {
        int r = ikey_cmp(buf_slice(&prev), ik);
        if (fwd ? r >= 0 : r <= 0) bad++;
      }
      buf_clear(&prev);
      buf_append_slice(&prev, ik);
      seen++;
    }
    if (seen < cnt) bad++;
    /* Point reads and seeks. */
    for (int i = 0; i < 200; i++) {
      conc_key(&k, tu_rand());
      buf_clear(&v);
      enum mt_get_result r = mt_get(c->m, buf_slice(&k), IKEY_MAX_SEQ, &v);
      if (r == MT_FOUND) {
        if (v.len != k.len + 9 || memcmp(v.data, k.data, k.len) != 0) bad++;
      }
      buf_clear(&t);
      ikey_append(&t, buf_slice(&k), IKEY_MAX_SEQ, IKEY_SEEK_KIND);
      iter_seek(it, buf_slice(&t));
      if (iter_valid(it)) {
        if (ikey_cmp(iter_key(it), buf_slice(&t)) < 0) bad++;
        if (!value_ok(iter_key(it), iter_value(it))) bad++;
      }
      iter_seek_for_prev(it, buf_slice(&t));
      if (iter_valid(it) && ikey_cmp(iter_key(it), buf_slice(&t)) > 0) bad++;
    }
    atomic_fetch_add(&c->checks, 1);
  }
  iter_close(it);
  buf_free(&prev);
  buf_free(&k);
  buf_free(&v);
  buf_free(&t);
  atomic_fetch_add(&c->failures, bad);
  return NULL;
}

static void test_concurrent_readers(void) {
  conc c = {.m = mt_new()};
  pthread_t w, r[READERS];
  for (int i = 0; i < READERS; i++) pthread_create(&r[i], NULL, reader_main, &c);
  pthread_create(&w, NULL, writer_main, &c);
  pthread_join(w, NULL);
  for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
  CU_ASSERT_EQUAL(atomic_load(&c.failures), 0);
  /* Readers must have overlapped the writer, or the test proves nothing. */
  fprintf(stderr, "(%lu reader rounds) ", (unsigned long)atomic_load(&c.checks));
  CU_ASSERT(atomic_load(&c.checks) >= 2 * READERS);
  CU_ASSERT_EQUAL(mt_count(c.m), CONC_ENTRIES);
  /* After the writer is done the list holds every entry in order. */
  iter *it = mt_iter_new(c.m);
  uint64_t n = 0;
  buf prev = BUF_INIT;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), n++) {
    if (prev.len) CU_ASSERT(ikey_cmp(buf_slice(&prev), iter_key(it)) < 0);
    buf_clear(&prev);
    buf_append_slice(&prev, iter_key(it));
  }
  CU_ASSERT_EQUAL(n, CONC_ENTRIES);
  buf_free(&prev);
  iter_close(it);
  mt_unref(c.m);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"empty", test_empty},
      {"versions_and_snapshots", test_versions_and_snapshots},
      {"refcount", test_refcount},
      {"apply_batch", test_apply_batch},
      {"model", test_model},
      {"concurrent_readers", test_concurrent_readers},
      CU_TEST_INFO_NULL,
  };
  tu_add_suite("memtable", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
