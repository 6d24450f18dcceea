/* iter: the empty iterator, the generic seek_for_prev, and the merging
 * iterator that turns many sorted children into one sorted sequence.
 *
 * Merge order. Entries are ordered by (key, child index, position within
 * the child): equal keys from different children come lower index first
 * going forward, and exactly the reverse going backward, so a forward
 * pass and a backward pass yield mirror-image sequences.
 *
 * Positioning invariant. While moving forward, every child other than the
 * current one sits at its first entry that comes after the current entry
 * in merge order; while moving backward, at its last entry before it. A
 * change of direction re-seeks the other children around the current key
 * to restore the invariant for the new direction (the LevelDB approach),
 * and the current child stays where it is.
 *
 * The children sit in a binary heap (min-heap of merge order going
 * forward, max-heap going backward). Compactions and tablet reads merge a
 * memtable, immutable memtables and a growing number of SSTables, so the
 * child count is not bounded by a small constant; a heap makes next/prev
 * O(log n) key comparisons where a linear scan would be O(n), and for the
 * handful of children of a point read it costs about the same.
 *
 * Comparisons. Every step compares keys a few times, so each valid child's
 * current key is kept in keys[] (refreshed whenever that child moves; the
 * slice stays valid until the child moves again, by the iterator
 * contract) rather than fetched through two indirect calls per
 * comparison, and when the comparator is ikey_cmp the comparison is done
 * inline, eight bytes at a time, with the same result sign.
 *
 * Errors. A child reports an error by becoming invalid with a status, so
 * each child that turns invalid has its status checked; the first error is
 * copied, the merge becomes invalid and stays so (every later move is a
 * no-op), and status() returns it. */
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/ikey.h"
#include "common/iter.h"

/* ---- iter_empty ---- */

typedef struct empty_iter {
  iter base;
  mica_err *status;
} empty_iter;

static bool empty_valid(iter *it) {
  (void)it;
  return false;
}
static void empty_move(iter *it) { (void)it; }
static void empty_seek(iter *it, slice t) { (void)it, (void)t; }
static slice empty_kv(iter *it) {
  (void)it;
  return slice_make(NULL, 0);
}
static const mica_err *empty_status(iter *it) {
  return ((empty_iter *)it)->status;
}
static void empty_close(iter *it) {
  err_free(((empty_iter *)it)->status);
  free(it);
}

static const struct iter_ops empty_ops = {
    .valid = empty_valid,
    .seek_to_first = empty_move,
    .seek_to_last = empty_move,
    .seek = empty_seek,
    .seek_for_prev = empty_seek,
    .next = empty_move,
    .prev = empty_move,
    .key = empty_kv,
    .value = empty_kv,
    .status = empty_status,
    .close = empty_close,
};

iter *iter_empty(mica_err *status) {
  empty_iter *it = xmalloc(sizeof(*it));
  it->base.ops = &empty_ops;
  it->status = status;
  return &it->base;
}

/* ---- generic seek_for_prev ---- */

/* Exact for iterators whose keys are distinct (every memtable, block and
 * table iterator: internal keys never repeat). */
void iter_generic_seek_for_prev(iter *it, slice target, key_cmp_fn cmp) {
  iter_seek(it, target);
  if (!iter_valid(it)) {
    if (iter_status(it) == NULL) iter_seek_to_last(it);
  } else if (cmp(iter_key(it), target) > 0) {
    iter_prev(it);
  }
}

/* ---- merging iterator ---- */

enum { DIR_FORWARD, DIR_REVERSE };

typedef struct merge_iter {
  iter base;
  iter **child;
  size_t n;
  key_cmp_fn cmp;
  int dir;
  bool icmp;    /* cmp is ikey_cmp: compare inline */
  size_t *heap; /* child indices; heap[0] is the current child (after keys,
                   in this struct's allocation) */
  size_t hn;    /* children in the heap: exactly the valid ones */
  slice *keys;  /* keys[j]: child j's current key while j is in the heap
                   (just past this struct, in its allocation) */
  mica_err *err; /* first child error; the merge is invalid once set */
  buf saved;     /* current key, copied across a direction change */
} merge_iter;

static inline uint64_t load_be64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}

/* ikey_cmp's order (user keys bytewise, then the trailer descending) for
 * keys that hold a trailer, as every key of a merged internal iterator
 * does. Only the sign matches ikey_cmp's result. */
static inline int ikey_cmp_inline(slice a, slice b) {
  size_t ua = a.len - IKEY_TRAILER, ub = b.len - IKEY_TRAILER;
  size_t n = ua < ub ? ua : ub, i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = load_be64(a.data + i), y = load_be64(b.data + i);
    if (x != y) return x < y ? -1 : 1;
  }
  for (; i < n; i++)
    if (a.data[i] != b.data[i]) return a.data[i] < b.data[i] ? -1 : 1;
  if (ua != ub) return ua < ub ? -1 : 1;
  uint64_t ta = decode_fixed64(a.data + ua), tb = decode_fixed64(b.data + ub);
  return ta > tb ? -1 : ta < tb ? 1 : 0;
}

/* True if child a comes before child b in the current direction's order. */
static inline bool m_before(merge_iter *m, size_t a, size_t b) {
  int c = m->icmp ? ikey_cmp_inline(m->keys[a], m->keys[b])
                  : m->cmp(m->keys[a], m->keys[b]);
  if (m->dir == DIR_FORWARD) return c < 0 || (c == 0 && a < b);
  return c > 0 || (c == 0 && a > b);
}

static void m_sift_down(merge_iter *m, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, best = i;
    if (l < m->hn && m_before(m, m->heap[l], m->heap[best])) best = l;
    if (l + 1 < m->hn && m_before(m, m->heap[l + 1], m->heap[best]))
      best = l + 1;
    if (best == i) return;
    size_t t = m->heap[i];
    m->heap[i] = m->heap[best];
    m->heap[best] = t;
    i = best;
  }
}

/* Records the child's error if it went invalid because of one. */
static void m_check(merge_iter *m, size_t j) {
  if (m->err != NULL || iter_valid(m->child[j])) return;
  const mica_err *e = iter_status(m->child[j]);
  if (e != NULL) m->err = err_dup(e);
}

/* Rebuilds the heap from every valid child for direction `dir`. */
static void m_rebuild(merge_iter *m, int dir) {
  m->dir = dir;
  m->hn = 0;
  for (size_t j = 0; j < m->n; j++) {
    if (iter_valid(m->child[j])) {
      m->keys[j] = iter_key(m->child[j]);
      m->heap[m->hn++] = j;
    } else
      m_check(m, j);
  }
  if (m->err != NULL) {
    m->hn = 0;
    return;
  }
  for (size_t i = m->hn / 2; i-- > 0;) m_sift_down(m, i);
}

/* After the current child moved: restore the heap or drop the child. */
static void m_fix_top(merge_iter *m) {
  size_t j = m->heap[0];
  if (iter_valid(m->child[j])) {
    m->keys[j] = iter_key(m->child[j]);
    m_sift_down(m, 0);
    return;
  }
  m_check(m, j);
  if (m->err != NULL) {
    m->hn = 0;
    return;
  }
  m->heap[0] = m->heap[--m->hn];
  if (m->hn > 0) m_sift_down(m, 0);
}

static bool m_valid(iter *it) {
  merge_iter *m = (merge_iter *)it;
  return m->err == NULL && m->hn > 0;
}

static void m_seek_to_first(iter *it) {
  merge_iter *m = (merge_iter *)it;
  if (m->err != NULL) return;
  for (size_t j = 0; j < m->n; j++) iter_seek_to_first(m->child[j]);
  m_rebuild(m, DIR_FORWARD);
}

static void m_seek_to_last(iter *it) {
  merge_iter *m = (merge_iter *)it;
  if (m->err != NULL) return;
  for (size_t j = 0; j < m->n; j++) iter_seek_to_last(m->child[j]);
  m_rebuild(m, DIR_REVERSE);
}

static void m_seek(iter *it, slice target) {
  merge_iter *m = (merge_iter *)it;
  if (m->err != NULL) return;
  for (size_t j = 0; j < m->n; j++) iter_seek(m->child[j], target);
  m_rebuild(m, DIR_FORWARD);
}

static void m_seek_for_prev(iter *it, slice target) {
  merge_iter *m = (merge_iter *)it;
  if (m->err != NULL) return;
  for (size_t j = 0; j < m->n; j++) iter_seek_for_prev(m->child[j], target);
  m_rebuild(m, DIR_REVERSE);
}

static void m_next(iter *it) {
  merge_iter *m = (merge_iter *)it;
  if (!m_valid(it)) return;
  if (m->dir == DIR_REVERSE) {
    /* Every other child must move to its first entry after (k, cur):
     * keys > k for lower-indexed children, keys >= k for higher ones. */
    size_t cur = m->heap[0];
    buf_clear(&m->saved);
    buf_append_slice(&m->saved, iter_key(m->child[cur]));
    slice k = buf_slice(&m->saved);
    for (size_t j = 0; j < m->n; j++) {
      if (j == cur) continue;
      iter *c = m->child[j];
      iter_seek(c, k);
      if (j < cur)
        while (iter_valid(c) && m->cmp(iter_key(c), k) == 0) iter_next(c);
    }
    m_rebuild(m, DIR_FORWARD);
    if (m->err != NULL) return;
    /* The current child is positioned at (k, cur), which precedes every
     * other child's position, so it is back on top. */
  }
  iter_next(m->child[m->heap[0]]);
  m_fix_top(m);
}

static void m_prev(iter *it) {
  merge_iter *m = (merge_iter *)it;
  if (!m_valid(it)) return;
  if (m->dir == DIR_FORWARD) {
    /* Every other child must move to its last entry before (k, cur):
     * keys <= k for lower-indexed children, keys < k for higher ones. */
    size_t cur = m->heap[0];
    buf_clear(&m->saved);
    buf_append_slice(&m->saved, iter_key(m->child[cur]));
    slice k = buf_slice(&m->saved);
    for (size_t j = 0; j < m->n; j++) {
      if (j == cur) continue;
      iter *c = m->child[j];
      if (j < cur) {
        iter_seek_for_prev(c, k);
      } else {
        iter_seek(c, k);
        if (iter_valid(c))
          iter_prev(c);
        else if (iter_status(c) == NULL)
          iter_seek_to_last(c);
      }
    }
    m_rebuild(m, DIR_REVERSE);
    if (m->err != NULL) return;
  }
  iter_prev(m->child[m->heap[0]]);
  m_fix_top(m);
}

static slice m_key(iter *it) {
  merge_iter *m = (merge_iter *)it;
  return m->keys[m->heap[0]];
}

static slice m_value(iter *it) {
  merge_iter *m = (merge_iter *)it;
  return iter_value(m->child[m->heap[0]]);
}

static const mica_err *m_status(iter *it) { return ((merge_iter *)it)->err; }

static void m_close(iter *it) {
  merge_iter *m = (merge_iter *)it;
  for (size_t j = 0; j < m->n; j++) iter_close(m->child[j]);
  free(m->child);
  err_free(m->err);
  buf_free(&m->saved);
  free(m);
}

static const struct iter_ops merge_ops = {
    .valid = m_valid,
    .seek_to_first = m_seek_to_first,
    .seek_to_last = m_seek_to_last,
    .seek = m_seek,
    .seek_for_prev = m_seek_for_prev,
    .next = m_next,
    .prev = m_prev,
    .key = m_key,
    .value = m_value,
    .status = m_status,
    .close = m_close,
};

iter *merge_iter_new(iter **children, size_t n, key_cmp_fn cmp) {
  if (n == 0) {
    free(children);
    return iter_empty(NULL);
  }
  /* One allocation for the iterator, its heap and its keys: a tablet
   * scan or seek builds one merge per call. */
  merge_iter *m = xcalloc(1, sizeof(*m) + n * (sizeof(*m->keys) + sizeof(*m->heap)));
  m->base.ops = &merge_ops;
  m->child = children;
  m->n = n;
  m->cmp = cmp;
  m->dir = DIR_FORWARD;
  m->icmp = cmp == ikey_cmp;
  m->keys = (slice *)(m + 1);
  m->heap = (size_t *)(m->keys + n);
  return &m->base;
}
