/* memtable: the skiplist behind memtable.h.
 *
 * Each entry is one arena allocation: the node header, its tower of next
 * pointers, then the internal key and the value bytes. Keeping the key
 * inline saves a pointer chase per comparison on the search path.
 *
 * Publication order is what makes lock-free readers safe. The writer fills
 * in the whole node (key, value, and its own next pointers, which may be
 * relaxed because nobody can reach the node yet), then links it in from
 * level 0 upwards with release stores. A reader that loads a pointer with
 * acquire therefore sees the node's contents as they were at the store.
 * Linking level 0 first means a node reachable at any level is already in
 * the complete level-0 list, so a search that drops levels never misses it.
 * The list height only grows; a reader that sees a new height before the
 * head's pointers at those levels finds NULL there and simply descends. */
#include "tabletserver/memtable.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/coding.h"
#include "common/ikey.h"

#define MAX_HEIGHT 12
#define BRANCHING 4

struct node {
  uint32_t key_len; /* internal key: user key + 8-byte trailer */
  uint32_t value_len;
  int height;
  _Atomic(struct node *) next[]; /* height entries, then key and value */
};

static inline const uint8_t *node_key_ptr(const struct node *n) {
  return (const uint8_t *)(n->next + n->height);
}

static inline slice node_key(const struct node *n) {
  return slice_make(node_key_ptr(n), n->key_len);
}

static inline slice node_value(const struct node *n) {
  return slice_make(node_key_ptr(n) + n->key_len, n->value_len);
}

static inline struct node *next_acq(struct node *n, int level) {
  return atomic_load_explicit(&n->next[level], memory_order_acquire);
}

struct memtable {
  arena *arena;            /* written by the single writer only */
  struct node *head;       /* MAX_HEIGHT tower, no key */
  _Atomic int max_height;  /* grows only; relaxed (see top comment) */
  _Atomic uint64_t count;
  _Atomic uint64_t max_seq;
  _Atomic int refs;
  uint64_t rng; /* writer only: tower heights */
};

memtable *mt_new(void) {
  memtable *m = xcalloc(1, sizeof(*m));
  m->arena = arena_new();
  m->head = arena_alloc_aligned(
      m->arena, sizeof(struct node) + MAX_HEIGHT * sizeof(struct node *));
  m->head->key_len = 0;
  m->head->value_len = 0;
  m->head->height = MAX_HEIGHT;
  for (int i = 0; i < MAX_HEIGHT; i++)
    atomic_init(&m->head->next[i], NULL);
  atomic_init(&m->max_height, 1);
  atomic_init(&m->count, 0);
  atomic_init(&m->max_seq, 0);
  atomic_init(&m->refs, 1);
  m->rng = 0x2545f4914f6cdd1dull ^ (uint64_t)(uintptr_t)m;
  return m;
}

void mt_ref(memtable *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void mt_unref(memtable *m) {
  if (m == NULL) return;
  /* acq_rel: the last owner must see every write other owners made. */
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
  arena_free(m->arena);
  free(m);
}

size_t mt_memory_usage(const memtable *m) { return arena_memory_usage(m->arena); }

uint64_t mt_count(const memtable *m) {
  return atomic_load_explicit(&m->count, memory_order_acquire);
}

uint64_t mt_max_seq(const memtable *m) {
  return atomic_load_explicit(&m->max_seq, memory_order_acquire);
}

static int random_height(memtable *m) {
  int h = 1;
  for (;;) {
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    if (h >= MAX_HEIGHT || (m->rng >> 32) % BRANCHING != 0) return h;
    h++;
  }
}

/* The search target: an internal key given as its parts, so lookups by
 * user key need not build one. */
typedef struct target {
  slice user_key;
  uint64_t trailer; /* seq << 8 | kind */
} target;

static target target_of(slice ikey) {
  target t = {ikey_user_key(ikey),
              decode_fixed64(ikey.data + ikey.len - IKEY_TRAILER)};
  return t;
}

/* ikey_cmp(node key, target) without materialising the target. Every
 * insert and search calls this a dozen or more times, so the user keys
 * are compared inline, 8 bytes at a time, rather than through slice_cmp
 * and a libc memcmp call (the calls showed in profiles of seeks and
 * fills: docs/benchmarks.md, "Tablet iterators and seeks"). Only the sign
 * of the result is meaningful. */
static inline int cmp_node(const struct node *n, const target *t) {
  const uint8_t *a = node_key_ptr(n), *b = t->user_key.data;
  size_t ua = n->key_len - IKEY_TRAILER, ub = t->user_key.len;
  size_t len = ua < ub ? ua : ub, i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t x, y;
    memcpy(&x, a + i, 8);
    memcpy(&y, b + i, 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  }
  for (; i < len; i++)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  if (ua != ub) return ua < ub ? -1 : 1;
  uint64_t tr = decode_fixed64(a + ua);
  return tr > t->trailer ? -1 : tr < t->trailer ? 1 : 0;
}

/* First node with key >= t, or NULL. If prev is not NULL, fills prev[i]
 * with the last node at level i whose key < t (the splice points). */
static struct node *find_ge(memtable *m, const target *t,
                            struct node **prev) {
  struct node *x = m->head;
  int level = atomic_load_explicit(&m->max_height, memory_order_relaxed) - 1;
  for (;;) {
    struct node *nx = next_acq(x, level);
    /* Where the search goes if it descends here, fetched while nx is
     * compared: in a memtable larger than the CPU caches each node is a
     * cache miss, and this overlaps two of them. */
    if (level > 0)
      __builtin_prefetch(
          atomic_load_explicit(&x->next[level - 1], memory_order_relaxed));
    if (nx != NULL && cmp_node(nx, t) < 0) {
      x = nx;
      continue;
    }
    if (prev != NULL) prev[level] = x;
    if (level == 0) return nx;
    level--;
  }
}

/* Last node with key < t (or <= t when or_equal), or NULL for none. */
static struct node *find_before(memtable *m, const target *t, bool or_equal) {
  struct node *x = m->head;
  int level = atomic_load_explicit(&m->max_height, memory_order_relaxed) - 1;
  for (;;) {
    struct node *nx = next_acq(x, level);
    int c = nx == NULL ? 1 : cmp_node(nx, t);
    if (c < 0 || (or_equal && c == 0)) {
      x = nx;
      continue;
    }
    if (level == 0) return x == m->head ? NULL : x;
    level--;
  }
}

static struct node *find_last(memtable *m) {
  struct node *x = m->head;
  int level = atomic_load_explicit(&m->max_height, memory_order_relaxed) - 1;
  for (;;) {
    struct node *nx = next_acq(x, level);
    if (nx != NULL) {
      x = nx;
      continue;
    }
    if (level == 0) return x == m->head ? NULL : x;
    level--;
  }
}

void mt_add(memtable *m, uint64_t seq, uint8_t kind, slice user_key,
            slice value) {
  if (kind != IKEY_PUT) value = slice_make(NULL, 0);
  target t = {user_key, seq << 8 | kind};
  struct node *prev[MAX_HEIGHT];
  find_ge(m, &t, prev);

  int height = random_height(m);
  int cur = atomic_load_explicit(&m->max_height, memory_order_relaxed);
  if (height > cur) {
    for (int i = cur; i < height; i++) prev[i] = m->head;
    /* Readers that see the new height early find NULL at the head's new
     * levels and descend, which is correct. */
    atomic_store_explicit(&m->max_height, height, memory_order_relaxed);
  }

  size_t key_len = user_key.len + IKEY_TRAILER;
  struct node *n = arena_alloc_aligned(
      m->arena, sizeof(struct node) + (size_t)height * sizeof(struct node *) +
                    key_len + value.len);
  n->key_len = (uint32_t)key_len;
  n->value_len = (uint32_t)value.len;
  n->height = height;
  uint8_t *kp = (uint8_t *)(n->next + height);
  if (user_key.len) memcpy(kp, user_key.data, user_key.len);
  encode_fixed64(kp + user_key.len, t.trailer);
  if (value.len) memcpy(kp + key_len, value.data, value.len);

  for (int i = 0; i < height; i++) {
    /* Relaxed: n is not reachable yet; the release below publishes it. */
    atomic_store_explicit(
        &n->next[i],
        atomic_load_explicit(&prev[i]->next[i], memory_order_relaxed),
        memory_order_relaxed);
    atomic_store_explicit(&prev[i]->next[i], n, memory_order_release);
  }
  atomic_fetch_add_explicit(&m->count, 1, memory_order_release);
  if (seq > atomic_load_explicit(&m->max_seq, memory_order_relaxed))
    atomic_store_explicit(&m->max_seq, seq, memory_order_release);
}

static mica_err *apply_entry(void *arg, uint64_t seq, uint8_t kind, slice key,
                             slice value) {
  mt_add(arg, seq, kind, key, value);
  return NULL;
}

void mt_apply_batch(memtable *m, const wbatch *b) {
  /* A wbatch is well formed by construction and apply_entry never fails,
   * so iterate cannot return an error here. */
  err_free(wbatch_iterate(b, apply_entry, m));
}

enum mt_get_result mt_get(memtable *m, slice user_key, uint64_t snapshot_seq,
                          buf *value) {
  if (snapshot_seq > IKEY_MAX_SEQ) snapshot_seq = IKEY_MAX_SEQ;
  target t = {user_key, snapshot_seq << 8 | IKEY_SEEK_KIND};
  struct node *n = find_ge(m, &t, NULL);
  if (n == NULL) return MT_ABSENT;
  slice k = node_key(n);
  if (!slice_eq(ikey_user_key(k), user_key)) return MT_ABSENT;
  uint8_t kind = k.data[k.len - IKEY_TRAILER]; /* low byte of the trailer */
  if (kind == IKEY_DELETE) return MT_DELETED;
  slice v = node_value(n);
  buf_clear(value);
  buf_append_slice(value, v);
  return MT_FOUND;
}

/* ---- iterator ---- */

typedef struct mt_iter {
  iter base;
  memtable *m;
  struct node *n; /* NULL when not valid */
} mt_iter;

static bool it_valid(iter *it) { return ((mt_iter *)it)->n != NULL; }

static void it_seek_to_first(iter *it) {
  mt_iter *i = (mt_iter *)it;
  i->n = next_acq(i->m->head, 0);
}

static void it_seek_to_last(iter *it) {
  mt_iter *i = (mt_iter *)it;
  i->n = find_last(i->m);
}

/* Targets are internal keys; one too short to carry a trailer is taken as
 * a bare user key, placed before every version of that key. */
static target target_of_seek(slice t) {
  if (t.len >= IKEY_TRAILER) return target_of(t);
  target tt = {t, UINT64_MAX};
  return tt;
}

static void it_seek(iter *it, slice t) {
  mt_iter *i = (mt_iter *)it;
  target tt = target_of_seek(t);
  i->n = find_ge(i->m, &tt, NULL);
}

static void it_seek_for_prev(iter *it, slice t) {
  mt_iter *i = (mt_iter *)it;
  target tt = target_of_seek(t);
  i->n = find_before(i->m, &tt, true);
}

static void it_next(iter *it) {
  mt_iter *i = (mt_iter *)it;
  i->n = next_acq(i->n, 0);
}

static void it_prev(iter *it) {
  mt_iter *i = (mt_iter *)it;
  target tt = target_of(node_key(i->n));
  i->n = find_before(i->m, &tt, false);
}

static slice it_key(iter *it) { return node_key(((mt_iter *)it)->n); }
static slice it_value(iter *it) { return node_value(((mt_iter *)it)->n); }

static const mica_err *it_status(iter *it) {
  (void)it;
  return NULL;
}

static void it_close(iter *it) {
  mt_iter *i = (mt_iter *)it;
  mt_unref(i->m);
  free(i);
}

static const struct iter_ops mt_iter_ops = {
    .valid = it_valid,
    .seek_to_first = it_seek_to_first,
    .seek_to_last = it_seek_to_last,
    .seek = it_seek,
    .seek_for_prev = it_seek_for_prev,
    .next = it_next,
    .prev = it_prev,
    .key = it_key,
    .value = it_value,
    .status = it_status,
    .close = it_close,
};

iter *mt_iter_new(memtable *m) {
  mt_iter *i = xcalloc(1, sizeof(*i));
  i->base.ops = &mt_iter_ops;
  mt_ref(m);
  i->m = m;
  i->n = NULL;
  return &i->base;
}
