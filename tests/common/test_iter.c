/* test_iter: the merging iterator against a model.
 *
 * Children are sorted arrays (with duplicate keys inside a child and
 * across children, and empty children). The model is the concatenation of
 * all entries sorted by (key, child index, position in child), which is
 * the order merge_iter_new promises; every operation is checked against
 * an index into it, including direction changes in the middle of runs of
 * equal keys. Values name their child and position, so a wrong entry with
 * the right key is caught. Errors from children, at the start and in the
 * middle of an iteration, must stop the merge and be reported.
 *
 * The scans and random moves run twice: with a plain bytewise comparator,
 * and with internal keys (user key + 8-byte trailer) under ikey_cmp, for
 * which the merge compares inline; user keys there are long enough to
 * cover its eight-bytes-at-a-time loop and hold bytes above 0x7f. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ikey.h"
#include "common/iter.h"
#include "tests/harness/testutil.h"

typedef struct entry {
  char key[24];
  size_t klen;
  char val[24];
  int child, pos;
} entry;

/* The comparator of the current test: every child, the model and the
 * merge order keys by it. */
static int cmp_key(slice a, slice b) { return slice_cmp(a, b); }
static key_cmp_fn g_cmp = cmp_key;

/* ---- an array iterator ---- */

typedef struct arr_iter {
  iter base;
  entry *e;
  int n, i;       /* i in [0, n) when valid */
  int fail_after; /* moves left before failing; -1 never */
  mica_err *err;
} arr_iter;

static slice ekey(const entry *e) { return slice_make(e->key, e->klen); }

static bool a_valid(iter *it) {
  arr_iter *a = (arr_iter *)it;
  return a->err == NULL && a->i >= 0 && a->i < a->n;
}

/* Counts a move; when the budget runs out the iterator fails. */
static bool a_moved(arr_iter *a) {
  if (a->err != NULL) return false;
  if (a->fail_after == 0) {
    a->err = err_new(MICA_IO_ERROR, "child read failed");
    return false;
  }
  if (a->fail_after > 0) a->fail_after--;
  return true;
}

static void a_first(iter *it) {
  arr_iter *a = (arr_iter *)it;
  if (a_moved(a)) a->i = 0;
}
static void a_last(iter *it) {
  arr_iter *a = (arr_iter *)it;
  if (a_moved(a)) a->i = a->n - 1;
}
static void a_seek(iter *it, slice t) {
  arr_iter *a = (arr_iter *)it;
  if (!a_moved(a)) return;
  a->i = 0;
  while (a->i < a->n && g_cmp(ekey(&a->e[a->i]), t) < 0) a->i++;
}
static void a_seek_for_prev(iter *it, slice t) {
  arr_iter *a = (arr_iter *)it;
  if (!a_moved(a)) return;
  a->i = a->n - 1;
  while (a->i >= 0 && g_cmp(ekey(&a->e[a->i]), t) > 0) a->i--;
}
static void a_next(iter *it) {
  arr_iter *a = (arr_iter *)it;
  CU_ASSERT_FATAL(a_valid(it));
  if (a_moved(a)) a->i++;
}
static void a_prev(iter *it) {
  arr_iter *a = (arr_iter *)it;
  CU_ASSERT_FATAL(a_valid(it));
  if (a_moved(a)) a->i--;
}
static slice a_key(iter *it) {
  arr_iter *a = (arr_iter *)it;
  CU_ASSERT_FATAL(a_valid(it));
  return ekey(&a->e[a->i]);
}
static slice a_value(iter *it) {
  arr_iter *a = (arr_iter *)it;
  CU_ASSERT_FATAL(a_valid(it));
  return slice_from_str(a->e[a->i].val);
}
static const mica_err *a_status(iter *it) { return ((arr_iter *)it)->err; }
static int closed;
static void a_close(iter *it) {
  arr_iter *a = (arr_iter *)it;
  err_free(a->err);
  free(a->e);
  free(a);
  closed++;
}

static const struct iter_ops arr_ops = {
    a_valid, a_first, a_last, a_seek, a_seek_for_prev, a_next,
    a_prev,  a_key,   a_value, a_status, a_close,
};

static iter *arr_new(const entry *e, int n, int fail_after) {
  arr_iter *a = xcalloc(1, sizeof(*a));
  a->base.ops = &arr_ops;
  a->e = xmemdup(e, (size_t)n * sizeof(*e));
  a->n = n;
  a->i = -1;
  a->fail_after = fail_after;
  return &a->base;
}

/* ---- model ---- */

static int entry_order(const void *pa, const void *pb) {
  const entry *a = pa, *b = pb;
  int c = g_cmp(ekey(a), ekey(b));
  if (c != 0) return c;
  if (a->child != b->child) return a->child < b->child ? -1 : 1;
  return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Few distinct keys, so that equal keys meet often. Under ikey_cmp: a
 * user key of 0 to 11 bytes (differing before, at and after byte 8) and
 * a trailer with one of four sequence numbers and either kind. */
static void rand_key(char *k, size_t *len) {
  if (g_cmp != ikey_cmp) {
    *len = tu_rand_below(4);
    for (size_t i = 0; i < *len; i++) k[i] = (char)("ab\xff"[tu_rand_below(3)]);
    return;
  }
  size_t ulen = tu_rand_below(2) ? tu_rand_below(3) : 7 + tu_rand_below(5);
  for (size_t i = 0; i < ulen; i++)
    k[i] = (char)(i < 6 ? 'p' : "ab\xff"[tu_rand_below(3)]);
  uint64_t trailer = tu_rand_below(4) << 8 | tu_rand_below(2);
  for (int i = 0; i < 8; i++) k[ulen + i] = (char)(trailer >> (8 * i));
  *len = ulen + IKEY_TRAILER;
}

typedef struct world {
  entry *all; /* model order */
  int total;
  iter **children;
  int nchildren;
} world;

/* Random children; returns the model. */
static void make_world(world *w, int nchildren, int max_per_child) {
  w->all = xmalloc((size_t)(nchildren * max_per_child + 1) * sizeof(entry));
  w->total = 0;
  w->children = xmalloc((size_t)(nchildren + 1) * sizeof(iter *));
  w->nchildren = nchildren;
  for (int c = 0; c < nchildren; c++) {
    int n = tu_rand_below(4) == 0 ? 0 : (int)tu_rand_below((uint64_t)max_per_child + 1);
    entry *e = xcalloc((size_t)n + 1, sizeof(entry));
    for (int i = 0; i < n; i++) rand_key(e[i].key, &e[i].klen);
    /* Sort keys within the child; positions follow the sorted order. */
    for (int i = 0; i < n; i++) e[i].child = c, e[i].pos = 0;
    qsort(e, (size_t)n, sizeof(entry), entry_order);
    for (int i = 0; i < n; i++) {
      e[i].pos = i;
      snprintf(e[i].val, sizeof(e[i].val), "c%dp%d", c, i);
      w->all[w->total++] = e[i];
    }
    w->children[c] = arr_new(e, n, -1);
    free(e);
  }
  qsort(w->all, (size_t)w->total, sizeof(entry), entry_order);
}

static void check_at(iter *m, const world *w, int pos) {
  if (pos < 0 || pos >= w->total) {
    CU_ASSERT_FALSE_FATAL(iter_valid(m));
    return;
  }
  CU_ASSERT_TRUE_FATAL(iter_valid(m));
  CU_ASSERT_FATAL(slice_eq(iter_key(m), ekey(&w->all[pos])));
  CU_ASSERT_FATAL(slice_eq(iter_value(m), slice_from_str(w->all[pos].val)));
}

static int model_seek(const world *w, slice t) {
  int i = 0;
  while (i < w->total && g_cmp(ekey(&w->all[i]), t) < 0) i++;
  return i;
}

static int model_seek_for_prev(const world *w, slice t) {
  int i = w->total - 1;
  while (i >= 0 && g_cmp(ekey(&w->all[i]), t) > 0) i--;
  return i;
}

static void test_full_scans(void) {
  for (int round = 0; round < 300; round++) {
    world w;
    make_world(&w, 1 + (int)tu_rand_below(8), 12);
    iter *m = merge_iter_new(w.children, (size_t)w.nchildren, g_cmp);
    iter_seek_to_first(m);
    for (int i = 0; i < w.total; i++) {
      check_at(m, &w, i);
      iter_next(m);
    }
    CU_ASSERT_FALSE(iter_valid(m));
    iter_seek_to_last(m);
    for (int i = w.total - 1; i >= 0; i--) {
      check_at(m, &w, i);
      iter_prev(m);
    }
    CU_ASSERT_FALSE(iter_valid(m));
    CU_ASSERT_PTR_NULL(iter_status(m));
    iter_close(m);
    free(w.all);
  }
}

static void test_random_moves(void) {
  for (int round = 0; round < 400; round++) {
    world w;
    make_world(&w, 1 + (int)tu_rand_below(40), 10);
    iter *m = merge_iter_new(w.children, (size_t)w.nchildren, g_cmp);
    for (int s = 0; s < 20; s++) {
      int pos;
      char t[24];
      size_t tlen;
      rand_key(t, &tlen);
      switch (tu_rand_below(4)) {
        case 0:
          iter_seek(m, slice_make(t, tlen));
          pos = model_seek(&w, slice_make(t, tlen));
          break;
        case 1:
          iter_seek_for_prev(m, slice_make(t, tlen));
          pos = model_seek_for_prev(&w, slice_make(t, tlen));
          break;
        case 2:
          iter_seek_to_first(m);
          pos = 0;
          break;
        default:
          iter_seek_to_last(m);
          pos = w.total - 1;
          break;
      }
      check_at(m, &w, pos);
      for (int k = 0; k < 30 && pos >= 0 && pos < w.total; k++) {
        if (tu_rand_below(2)) {
          iter_next(m);
          pos++;
        } else {
          iter_prev(m);
          pos--;
        }
        check_at(m, &w, pos);
      }
    }
    CU_ASSERT_PTR_NULL(iter_status(m));
    iter_close(m);
    free(w.all);
  }
}

static void test_full_scans_ikeys(void) {
  g_cmp = ikey_cmp;
  test_full_scans();
  g_cmp = cmp_key;
}

static void test_random_moves_ikeys(void) {
  g_cmp = ikey_cmp;
  test_random_moves();
  g_cmp = cmp_key;
}

/* Forward and backward sequences are exact mirror images, even with equal
 * keys in every child. */
static void test_equal_keys(void) {
  entry e[3];
  memset(e, 0, sizeof(e));
  iter *kids[3];
  for (int c = 0; c < 3; c++) {
    for (int i = 0; i < 3; i++) {
      e[i].key[0] = 'k';
      e[i].klen = 1;
      e[i].child = c;
      e[i].pos = i;
      snprintf(e[i].val, sizeof(e[i].val), "c%dp%d", c, i);
    }
    kids[c] = arr_new(e, 3, -1);
  }
  iter **children = xmemdup(kids, sizeof(kids));
  iter *m = merge_iter_new(children, 3, cmp_key);
  const char *want[9] = {"c0p0", "c0p1", "c0p2", "c1p0", "c1p1",
                         "c1p2", "c2p0", "c2p1", "c2p2"};
  iter_seek(m, slice_from_str("k"));
  for (int i = 0; i < 9; i++) {
    CU_ASSERT_TRUE_FATAL(iter_valid(m));
    CU_ASSERT(slice_eq(iter_value(m), slice_from_str(want[i])));
    iter_next(m);
  }
  CU_ASSERT_FALSE(iter_valid(m));
  iter_seek_for_prev(m, slice_from_str("k"));
  for (int i = 8; i >= 0; i--) {
    CU_ASSERT_TRUE_FATAL(iter_valid(m));
    CU_ASSERT(slice_eq(iter_value(m), slice_from_str(want[i])));
    iter_prev(m);
  }
  CU_ASSERT_FALSE(iter_valid(m));
  /* Turn around in the middle of the run, both ways. */
  iter_seek_to_first(m);
  for (int i = 0; i < 4; i++) iter_next(m);
  CU_ASSERT(slice_eq(iter_value(m), slice_from_str(want[4])));
  iter_prev(m);
  CU_ASSERT(slice_eq(iter_value(m), slice_from_str(want[3])));
  iter_prev(m);
  CU_ASSERT(slice_eq(iter_value(m), slice_from_str(want[2])));
  iter_next(m);
  CU_ASSERT(slice_eq(iter_value(m), slice_from_str(want[3])));
  iter_close(m);
}

static void test_empty_and_none(void) {
  iter *m = merge_iter_new(xmalloc(sizeof(iter *)), 0, cmp_key);
  iter_seek_to_first(m);
  CU_ASSERT_FALSE(iter_valid(m));
  iter_seek_to_last(m);
  CU_ASSERT_FALSE(iter_valid(m));
  CU_ASSERT_PTR_NULL(iter_status(m));
  iter_close(m);

  iter **kids = xmalloc(2 * sizeof(iter *));
  kids[0] = iter_empty(NULL);
  kids[1] = iter_empty(NULL);
  m = merge_iter_new(kids, 2, cmp_key);
  iter_seek(m, slice_from_str("x"));
  CU_ASSERT_FALSE(iter_valid(m));
  iter_seek_for_prev(m, slice_from_str("x"));
  CU_ASSERT_FALSE(iter_valid(m));
  CU_ASSERT_PTR_NULL(iter_status(m));
  iter_close(m);
  iter_close(NULL);
}

static void test_child_error(void) {
  /* An error child among good ones: nothing is yielded, status says why. */
  for (int where = 0; where < 3; where++) {
    world w;
    make_world(&w, 3, 5);
    iter_close(w.children[where]);
    w.children[where] = iter_empty(err_new(MICA_IO_ERROR, "disk on fire"));
    iter *m = merge_iter_new(w.children, 3, cmp_key);
    iter_seek_to_first(m);
    CU_ASSERT_FALSE(iter_valid(m));
    CU_ASSERT_EQUAL(err_code(iter_status(m)), MICA_IO_ERROR);
    CU_ASSERT_STRING_EQUAL(err_msg(iter_status(m)), "disk on fire");
    /* Sticky: later seeks do not bring it back. */
    iter_seek_to_last(m);
    CU_ASSERT_FALSE(iter_valid(m));
    iter_seek(m, slice_from_str("a"));
    CU_ASSERT_FALSE(iter_valid(m));
    CU_ASSERT_EQUAL(err_code(iter_status(m)), MICA_IO_ERROR);
    iter_close(m);
    free(w.all);
  }

  /* A child that fails in the middle of a scan (forward and backward):
   * every entry yielded before the failure is right, and the scan stops. */
  for (int round = 0; round < 200; round++) {
    entry e[20];
    memset(e, 0, sizeof(e));
    iter **kids = xmalloc(3 * sizeof(iter *));
    int total = 0;
    entry all[60];
    for (int c = 0; c < 3; c++) {
      for (int i = 0; i < 20; i++) {
        e[i].klen = (size_t)snprintf(e[i].key, sizeof(e[i].key), "%02d", i * 3 + c);
        e[i].child = c;
        e[i].pos = i;
        snprintf(e[i].val, sizeof(e[i].val), "c%dp%d", c, i);
        all[total++] = e[i];
      }
      kids[c] = arr_new(e, 20, c == 1 ? (int)tu_rand_below(21) : -1);
    }
    qsort(all, 60, sizeof(entry), entry_order);
    iter *m = merge_iter_new(kids, 3, cmp_key);
    bool backward = tu_rand_below(2);
    int seen = 0;
    if (backward) {
      iter_seek_to_last(m);
      for (; iter_valid(m); iter_prev(m), seen++)
        CU_ASSERT_FATAL(slice_eq(iter_key(m), ekey(&all[59 - seen])));
    } else {
      iter_seek_to_first(m);
      for (; iter_valid(m); iter_next(m), seen++)
        CU_ASSERT_FATAL(slice_eq(iter_key(m), ekey(&all[seen])));
    }
    /* Child 1 fails within 20 moves; a full scan needs 21 of it. */
    CU_ASSERT(seen < 60);
    CU_ASSERT_EQUAL(err_code(iter_status(m)), MICA_IO_ERROR);
    iter_close(m);
  }
}

static void test_close_frees_children(void) {
  closed = 0;
  world w;
  make_world(&w, 7, 3);
  iter *m = merge_iter_new(w.children, 7, cmp_key);
  iter_seek_to_first(m);
  iter_close(m);
  CU_ASSERT_EQUAL(closed, 7);
  free(w.all);
}

static void test_generic_seek_for_prev(void) {
  entry e[4];
  memset(e, 0, sizeof(e));
  const char *keys[4] = {"b", "d", "f", "h"};
  for (int i = 0; i < 4; i++) {
    e[i].klen = 1;
    e[i].key[0] = keys[i][0];
    snprintf(e[i].val, sizeof(e[i].val), "%d", i);
  }
  iter *a = arr_new(e, 4, -1);
  struct {
    const char *target;
    int want; /* index or -1 */
  } cases[] = {{"a", -1}, {"b", 0}, {"c", 0}, {"d", 1}, {"e", 1},
               {"h", 3},  {"z", 3}, {"", -1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    iter_generic_seek_for_prev(a, slice_from_str(cases[i].target), cmp_key);
    if (cases[i].want < 0) {
      CU_ASSERT_FALSE(iter_valid(a));
    } else {
      CU_ASSERT_TRUE_FATAL(iter_valid(a));
      CU_ASSERT(slice_eq(iter_key(a), slice_from_str(keys[cases[i].want])));
    }
  }
  iter_close(a);
  /* An iterator failing its seek is left failed, not moved to the end. */
  iter *f = arr_new(e, 4, 0);
  iter_generic_seek_for_prev(f, slice_from_str("z"), cmp_key);
  CU_ASSERT_FALSE(iter_valid(f));
  CU_ASSERT_EQUAL(err_code(iter_status(f)), MICA_IO_ERROR);
  iter_close(f);
}

static CU_TestInfo tests[] = {
    {"full forward and backward scans", test_full_scans},
    {"random seeks and direction changes", test_random_moves},
    {"internal keys: full scans (inline compare)", test_full_scans_ikeys},
    {"internal keys: random moves (inline compare)", test_random_moves_ikeys},
    {"equal keys mirror", test_equal_keys},
    {"no children, empty children", test_empty_and_none},
    {"child errors stop the merge", test_child_error},
    {"close frees children", test_close_frees_children},
    {"generic seek_for_prev", test_generic_seek_for_prev},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) { tu_add_suite("merge iterator", tests); }

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
