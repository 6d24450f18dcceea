/* tablet_iter: the iterators a tablet scan is made of, innermost first.
 * rng_iter restricts an internal-key iterator to a user-key range (a
 * shared file read for one half only, or a scan's bounds); level_iter
 * reads one level >= 1 (disjoint files in key order) with only the file
 * under its position open; the version iterator merges the memtables, the
 * level-0 files and one iterator per level; user_iter shows
 * the newest version of each key at a snapshot with deletes hidden; and
 * scan_iter adds scan order and the limit. Each follows common/iter.h. */
#include "tabletserver/tablet_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"

/* Restricts an internal-key iterator to user keys in [lo, hi). One
 * allocation: the seek keys of lo and hi (each user key + the trailer
 * that sorts before every version of it) are in the bytes that follow the
 * struct, and lo and hi are their user-key parts. */
typedef struct rng_iter {
  iter base;
  iter *in;
  slice lo, hi;
  slice lo_seek, hi_seek;
  bool has_hi;
} rng_iter;

static bool rng_valid(iter *it) {
  rng_iter *r = (rng_iter *)it;
  if (!iter_valid(r->in)) return false;
  return in_range(ikey_user_key(iter_key(r->in)), r->lo,
                  r->hi, r->has_hi);
}

static void rng_seek_to_first(iter *it) {
  rng_iter *r = (rng_iter *)it;
  if (r->lo.len == 0) {
    iter_seek_to_first(r->in);
    return;
  }
  iter_seek(r->in, r->lo_seek);
}

static void rng_seek_to_last(iter *it) {
  rng_iter *r = (rng_iter *)it;
  if (!r->has_hi) {
    iter_seek_to_last(r->in);
    return;
  }
  iter_seek_for_prev(r->in, r->hi_seek);
  if (iter_valid(r->in) &&
      slice_cmp(ikey_user_key(iter_key(r->in)), r->hi) >= 0)
    iter_prev(r->in);
}

static void rng_seek(iter *it, slice target) {
  rng_iter *r = (rng_iter *)it;
  if (r->lo.len > 0 && slice_cmp(ikey_user_key(target), r->lo) < 0)
    rng_seek_to_first(it);
  else
    iter_seek(r->in, target);
}

static void rng_seek_for_prev(iter *it, slice target) {
  rng_iter *r = (rng_iter *)it;
  if (r->has_hi && slice_cmp(ikey_user_key(target), r->hi) >= 0)
    rng_seek_to_last(it);
  else
    iter_seek_for_prev(r->in, target);
}

static void rng_next(iter *it) { iter_next(((rng_iter *)it)->in); }
static void rng_prev(iter *it) { iter_prev(((rng_iter *)it)->in); }
static slice rng_key(iter *it) { return iter_key(((rng_iter *)it)->in); }
static slice rng_value(iter *it) { return iter_value(((rng_iter *)it)->in); }
static const mica_err *rng_status(iter *it) {
  return iter_status(((rng_iter *)it)->in);
}
static void rng_close(iter *it) {
  rng_iter *r = (rng_iter *)it;
  iter_close(r->in);
  free(r);
}

static const struct iter_ops rng_ops = {
    rng_valid, rng_seek_to_first, rng_seek_to_last, rng_seek,
    rng_seek_for_prev, rng_next, rng_prev, rng_key, rng_value, rng_status,
    rng_close};

/* Takes ownership of `in`. */
/* Writes user key `k` and the trailer that sorts before every version of
 * it at `p`; returns the internal key. */
static slice put_seek_key(uint8_t *p, slice k) {
  if (k.len > 0) memcpy(p, k.data, k.len);
  encode_fixed64(p + k.len, IKEY_MAX_SEQ << 8 | IKEY_SEEK_KIND);
  return slice_make(p, k.len + IKEY_TRAILER);
}

iter *tb_rng_iter_new(iter *in, slice lo, slice hi, bool has_hi) {
  size_t hlen = has_hi ? hi.len : 0;
  rng_iter *r =
      xcalloc(1, sizeof(*r) + lo.len + hlen + 2 * IKEY_TRAILER);
  uint8_t *tail = (uint8_t *)(r + 1);
  r->base.ops = &rng_ops;
  r->in = in;
  r->lo_seek = put_seek_key(tail, lo);
  r->lo = slice_make(tail, lo.len);
  r->has_hi = has_hi;
  uint8_t *h = tail + r->lo_seek.len;
  r->hi_seek = put_seek_key(h, has_hi ? hi : slice_make(NULL, 0));
  r->hi = slice_make(h, hlen);
  return &r->base;
}

/* A level >= 1 read as one iterator: its files hold disjoint key ranges
 * in key order, so only the file under the position is open (LevelDB's
 * two-level iterator over a level's file list). A seek binary-searches
 * the level's key spans and opens one file. */
typedef struct level_iter {
  iter base;
  version *v;       /* not referenced: the caller keeps it alive */
  int level;
  size_t first, end; /* the level is v->files[first .. end) */
  size_t at;        /* the open file, or end */
  iter *cur;        /* its iterator, or NULL */
  bool fill_cache;
  mica_err *err;    /* an error of a file closed since */
} level_iter;

/* Opens file `i` (closing the previous one), or none when i == end. */
static void lv_open(level_iter *l, size_t i) {
  if (l->cur != NULL && i == l->at) return;
  if (l->cur != NULL) {
    if (l->err == NULL && iter_status(l->cur) != NULL)
      l->err = err_dup(iter_status(l->cur));
    iter_close(l->cur);
    l->cur = NULL;
  }
  l->at = i;
  if (i == l->end) return;
  tfile *f = l->v->files[i];
  l->cur = sst_reader_iter_new(f->r, l->fill_cache);
  if (f->restrict_reads)
    l->cur = tb_rng_iter_new(l->cur, buf_slice(&f->lo), buf_slice(&f->hi),
                             f->has_hi);
}

/* From the open file on, the first file with an entry (forward). */
static void lv_skip_forward(level_iter *l) {
  while (l->cur != NULL && !iter_valid(l->cur)) {
    if (iter_status(l->cur) != NULL) return;
    lv_open(l, l->at + 1);
    if (l->cur != NULL) iter_seek_to_first(l->cur);
  }
}

static void lv_skip_backward(level_iter *l) {
  while (l->cur != NULL && !iter_valid(l->cur)) {
    if (iter_status(l->cur) != NULL) return;
    if (l->at == l->first) {
      lv_open(l, l->end);
      return;
    }
    lv_open(l, l->at - 1);
    iter_seek_to_last(l->cur);
  }
}

static bool lv_valid(iter *it) {
  level_iter *l = (level_iter *)it;
  return l->cur != NULL && iter_valid(l->cur);
}

static void lv_seek_to_first(iter *it) {
  level_iter *l = (level_iter *)it;
  lv_open(l, l->first);
  if (l->cur != NULL) iter_seek_to_first(l->cur);
  lv_skip_forward(l);
}

static void lv_seek_to_last(iter *it) {
  level_iter *l = (level_iter *)it;
  if (l->end == l->first) return;
  lv_open(l, l->end - 1);
  iter_seek_to_last(l->cur);
  lv_skip_backward(l);
}

static void lv_seek(iter *it, slice target) {
  level_iter *l = (level_iter *)it;
  /* The first file whose span does not end before the target's user key:
   * every entry at or after the target is there or in a later file. */
  lv_open(l, tb_level_find(l->v, l->level, ikey_user_key(target)));
  if (l->cur != NULL) iter_seek(l->cur, target);
  lv_skip_forward(l);
}

static void lv_seek_for_prev(iter *it, slice target) {
  level_iter *l = (level_iter *)it;
  /* The last file whose span starts at or before the target's user key. */
  slice u = ikey_user_key(target);
  size_t i = tb_level_find(l->v, l->level, u);
  if (i == l->end ||
      slice_cmp(buf_slice(&l->v->files[i]->klo), u) > 0) {
    if (i == l->first) {
      lv_open(l, l->end);
      return;
    }
    i--;
  }
  lv_open(l, i);
  iter_seek_for_prev(l->cur, target);
  lv_skip_backward(l);
}

static void lv_next(iter *it) {
  level_iter *l = (level_iter *)it;
  iter_next(l->cur);
  lv_skip_forward(l);
}

static void lv_prev(iter *it) {
  level_iter *l = (level_iter *)it;
  iter_prev(l->cur);
  lv_skip_backward(l);
}

static slice lv_key(iter *it) { return iter_key(((level_iter *)it)->cur); }
static slice lv_value(iter *it) {
  return iter_value(((level_iter *)it)->cur);
}

static const mica_err *lv_status(iter *it) {
  level_iter *l = (level_iter *)it;
  if (l->err != NULL) return l->err;
  return l->cur != NULL ? iter_status(l->cur) : NULL;
}

static void lv_close(iter *it) {
  level_iter *l = (level_iter *)it;
  iter_close(l->cur);
  err_free(l->err);
  free(l);
}

static const struct iter_ops lv_ops = {
    lv_valid, lv_seek_to_first, lv_seek_to_last, lv_seek, lv_seek_for_prev,
    lv_next, lv_prev, lv_key, lv_value, lv_status, lv_close};

static iter *level_iter_new(version *v, int level, bool fill_cache) {
  level_iter *l = xcalloc(1, sizeof(*l));
  l->base.ops = &lv_ops;
  l->v = v;
  l->level = level;
  l->first = v->lvl[level];
  l->end = v->lvl[level + 1];
  l->at = l->end;
  l->fill_cache = fill_cache;
  return &l->base;
}

/* An iterator over one SSTable, inside its read range. */
static iter *file_iter(tfile *f, bool fill_cache) {
  iter *fi = sst_reader_iter_new(f->r, fill_cache);
  if (f->restrict_reads)
    fi = tb_rng_iter_new(fi, buf_slice(&f->lo), buf_slice(&f->hi), f->has_hi);
  return fi;
}

/* The merge of every source of a version, newest first, restricted to
 * [lo, hi): the memtables, each level-0 file whose key span meets the
 * range, and one iterator per level below (a single file when only one
 * meets the range). */
iter *tb_version_iter(version *v, slice lo, slice hi, bool has_hi,
                      bool fill_cache) {
  size_t n = 1 + v->n_imm + v->n_files, k = 0;
  iter **kids = xcalloc(n, sizeof(*kids));
  /* An empty memtable adds nothing but a comparison per step. */
  if (mt_count(v->mem) > 0) kids[k++] = mt_iter_new(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) kids[k++] = mt_iter_new(v->imm[i]);
  for (int l = 0; l < TB_LEVELS; l++) {
    size_t a = v->lvl[l], b = v->lvl[l + 1], first = b, hits = 0;
    for (size_t i = a; i < b; i++) {
      tfile *f = v->files[i];
      if (!tb_tfile_meets(f, lo, hi, has_hi)) continue;
      if (l == 0) {
        kids[k++] = file_iter(f, fill_cache);
      } else {
        if (hits++ == 0) first = i;
      }
    }
    if (l == 0 || hits == 0) continue;
    kids[k++] = hits == 1 ? file_iter(v->files[first], fill_cache)
                          : level_iter_new(v, l, fill_cache);
  }
  iter *m;
  if (k == 1) {
    m = kids[0];
    free(kids);
  } else {
    m = merge_iter_new(kids, k, ikey_cmp); /* takes kids, also when empty */
  }
  if (lo.len == 0 && !has_hi) return m;
  return tb_rng_iter_new(m, lo, hi, has_hi);
}

/* User-key view of an internal iterator at a snapshot: the newest version
 * of each key with seq <= snapshot, deletes hidden. Going forward, the
 * inner iterator sits on the entry shown; going backward it sits before
 * every entry of the key shown (which is saved in key/val). */
typedef struct user_iter {
  iter base;
  iter *in;
  version *v;      /* held until close */
  uint64_t seq;
  bool valid;
  bool forward;
  buf key, val, tmp;
  mica_err *err;   /* corruption found here (bad internal key) */
} user_iter;

/* A tablet scan's own iterators in one allocation (tb_tablet_iter_new):
 * the scan order on top of the user-key view. */
typedef struct scan_iter {
  iter base;
  iter *u;
  bool rev;
  uint64_t limit, count;
} scan_iter;

typedef struct scan_stack {
  scan_iter s; /* first: freeing the stack is freeing &s */
  user_iter u;
  struct scan_stack *next_spare; /* in a thread's spare list */
} scan_stack;

/* Spare scan stacks, per thread: a seek builds and closes one, so a
 * closed stack is kept with its key and value buffers for the thread's
 * next scan, up to SPARE_STACKS (the rest are freed, as are buffers grown
 * past SPARE_BUF_BYTES by a large value). Freed when the thread exits. */
#define SPARE_STACKS 4
#define SPARE_BUF_BYTES 4096

typedef struct stack_spares {
  scan_stack *head;
  int n;
} stack_spares;

static pthread_key_t g_stack_key;
static pthread_once_t g_stack_once = PTHREAD_ONCE_INIT;

static void stack_free(scan_stack *st) {
  buf_free(&st->u.key);
  buf_free(&st->u.val);
  buf_free(&st->u.tmp);
  free(st);
}

static void stack_spares_free(void *p) {
  stack_spares *l = p;
  while (l->head != NULL) {
    scan_stack *st = l->head;
    l->head = st->next_spare;
    stack_free(st);
  }
  free(l);
}

static void stack_key_init(void) {
  if (pthread_key_create(&g_stack_key, stack_spares_free) != 0) abort();
}

static stack_spares *thread_stacks(void) {
  pthread_once(&g_stack_once, stack_key_init);
  stack_spares *l = pthread_getspecific(g_stack_key);
  if (l == NULL) {
    l = xcalloc(1, sizeof(*l));
    if (pthread_setspecific(g_stack_key, l) != 0) {
      free(l);
      return NULL;
    }
  }
  return l;
}

/* Keeps a buffer for reuse unless a large entry grew it. */
static void keep_buf(buf *b) {
  if (b->cap > SPARE_BUF_BYTES) buf_free(b);
  b->len = 0;
}

static scan_stack *stack_new(void) {
  stack_spares *l = thread_stacks();
  if (l == NULL || l->head == NULL) return xcalloc(1, sizeof(scan_stack));
  scan_stack *st = l->head;
  l->head = st->next_spare;
  l->n--;
  buf key = st->u.key, val = st->u.val, tmp = st->u.tmp;
  memset(st, 0, sizeof(*st));
  st->u.key = key;
  st->u.val = val;
  st->u.tmp = tmp;
  return st;
}

static void stack_release(scan_stack *st) {
  stack_spares *l = thread_stacks();
  if (l == NULL || l->n >= SPARE_STACKS) {
    stack_free(st);
    return;
  }
  keep_buf(&st->u.key);
  keep_buf(&st->u.val);
  keep_buf(&st->u.tmp);
  st->next_spare = l->head;
  l->head = st;
  l->n++;
}

/* The next three run once per internal entry of every scan, so they are
 * inlined here rather than called (ikey_parse, slice_eq, buf_append). */

/* ikey_parse of the inner iterator's key; on a malformed key the scan
 * stops with CORRUPTION. */
static inline bool parse_or_fail(user_iter *u, ikey_parts *p) {
  slice ik = iter_key(u->in);
  if (ik.len >= IKEY_TRAILER) {
    uint64_t t = decode_fixed64(ik.data + ik.len - IKEY_TRAILER);
    if ((t & 0xff) <= IKEY_PUT) {
      p->user_key = slice_make(ik.data, ik.len - IKEY_TRAILER);
      p->seq = t >> 8;
      p->kind = (uint8_t)(t & 0xff);
      return true;
    }
  }
  if (u->err == NULL)
    u->err = err_new(MICA_CORRUPTION, "tablet scan: malformed internal key");
  u->valid = false;
  return false;
}

static inline bool same_key(slice a, const buf *b) {
  return a.len == b->len && (a.len == 0 || memcmp(a.data, b->data, a.len) == 0);
}

static inline void set_key(buf *b, slice k) {
  b->len = 0;
  if (b->cap < k.len) buf_reserve(b, k.len);
  if (k.len > 0) memcpy(b->data, k.data, k.len);
  b->len = k.len;
}

static void ui_find_next(user_iter *u, bool skipping) {
  u->forward = true;
  while (iter_valid(u->in)) {
    ikey_parts p;
    if (!parse_or_fail(u, &p)) return;
    if (p.seq <= u->seq) {
      if (skipping && same_key(p.user_key, &u->key)) {
        /* An older version of a key already decided. */
      } else if (p.kind == IKEY_DELETE) {
        set_key(&u->key, p.user_key);
        skipping = true;
      } else {
        /* The value stays in the inner iterator, which does not move
         * until we do; the key is kept for skipping older versions. */
        set_key(&u->key, p.user_key);
        u->valid = true;
        return;
      }
    }
    iter_next(u->in);
  }
  u->valid = false;
}

static void ui_find_prev(user_iter *u) {
  u->forward = false;
  int kind = IKEY_DELETE;
  while (iter_valid(u->in)) {
    ikey_parts p;
    if (!parse_or_fail(u, &p)) return;
    if (p.seq <= u->seq) {
      if (kind != IKEY_DELETE && slice_cmp(p.user_key, buf_slice(&u->key)) < 0)
        break;
      kind = p.kind;
      if (kind == IKEY_DELETE) {
        buf_clear(&u->key);
        buf_clear(&u->val);
      } else {
        buf_clear(&u->key);
        buf_append_slice(&u->key, p.user_key);
        buf_clear(&u->val);
        buf_append_slice(&u->val, iter_value(u->in));
      }
    }
    iter_prev(u->in);
  }
  u->valid = kind != IKEY_DELETE && u->err == NULL;
}

static bool ui_valid(iter *it) { return ((user_iter *)it)->valid; }

static void ui_seek_to_first(iter *it) {
  user_iter *u = (user_iter *)it;
  iter_seek_to_first(u->in);
  ui_find_next(u, false);
}

static void ui_seek_to_last(iter *it) {
  user_iter *u = (user_iter *)it;
  iter_seek_to_last(u->in);
  ui_find_prev(u);
}

static void ui_seek(iter *it, slice target) {
  user_iter *u = (user_iter *)it;
  seek_key(&u->tmp, target, u->seq, IKEY_SEEK_KIND);
  iter_seek(u->in, buf_slice(&u->tmp));
  ui_find_next(u, false);
}

static void ui_seek_for_prev(iter *it, slice target) {
  user_iter *u = (user_iter *)it;
  seek_key(&u->tmp, target, 0, IKEY_DELETE);
  iter_seek_for_prev(u->in, buf_slice(&u->tmp));
  ui_find_prev(u);
}

static void ui_next(iter *it) {
  user_iter *u = (user_iter *)it;
  if (!u->forward) {
    /* The inner iterator is before the current key: jump past every
     * version of it ((key, 0, DELETE) is its last possible entry). */
    seek_key(&u->tmp, buf_slice(&u->key), 0, IKEY_DELETE);
    iter_seek(u->in, buf_slice(&u->tmp));
    ui_find_next(u, true);
    return;
  }
  iter_next(u->in);
  ui_find_next(u, true);
}

static void ui_prev(iter *it) {
  user_iter *u = (user_iter *)it;
  if (u->forward) {
    /* Move before every version of the current key. */
    seek_key(&u->tmp, buf_slice(&u->key), IKEY_MAX_SEQ, IKEY_SEEK_KIND);
    iter_seek_for_prev(u->in, buf_slice(&u->tmp));
  }
  ui_find_prev(u);
}

static slice ui_key(iter *it) { return buf_slice(&((user_iter *)it)->key); }
static slice ui_value(iter *it) {
  user_iter *u = (user_iter *)it;
  return u->forward ? iter_value(u->in) : buf_slice(&u->val);
}

static const mica_err *ui_status(iter *it) {
  user_iter *u = (user_iter *)it;
  if (u->err != NULL) return u->err;
  return iter_status(u->in);
}

static void ui_close(iter *it) {
  user_iter *u = (user_iter *)it;
  iter_close(u->in);
  tb_version_unref(u->v);
  err_free(u->err);
  /* Part of its scan_stack, which sc_close frees or keeps with its
   * buffers. */
}

static const struct iter_ops ui_ops = {
    ui_valid, ui_seek_to_first, ui_seek_to_last, ui_seek, ui_seek_for_prev,
    ui_next, ui_prev, ui_key, ui_value, ui_status, ui_close};

/* Scan order and limit over a user iterator. */

static bool sc_valid(iter *it) {
  scan_iter *s = (scan_iter *)it;
  return (s->limit == 0 || s->count < s->limit) && iter_valid(s->u);
}
static void sc_seek_to_first(iter *it) {
  scan_iter *s = (scan_iter *)it;
  s->count = 0;
  if (s->rev) iter_seek_to_last(s->u);
  else iter_seek_to_first(s->u);
}
static void sc_seek_to_last(iter *it) {
  scan_iter *s = (scan_iter *)it;
  s->count = 0;
  if (s->rev) iter_seek_to_first(s->u);
  else iter_seek_to_last(s->u);
}
static void sc_seek(iter *it, slice t) {
  scan_iter *s = (scan_iter *)it;
  s->count = 0;
  if (s->rev) iter_seek_for_prev(s->u, t);
  else iter_seek(s->u, t);
}
static void sc_seek_for_prev(iter *it, slice t) {
  scan_iter *s = (scan_iter *)it;
  s->count = 0;
  if (s->rev) iter_seek(s->u, t);
  else iter_seek_for_prev(s->u, t);
}
static void sc_next(iter *it) {
  scan_iter *s = (scan_iter *)it;
  s->count++;
  if (s->rev) iter_prev(s->u);
  else iter_next(s->u);
}
static void sc_prev(iter *it) {
  scan_iter *s = (scan_iter *)it;
  if (s->count > 0) s->count--;
  if (s->rev) iter_next(s->u);
  else iter_prev(s->u);
}
static slice sc_key(iter *it) { return iter_key(((scan_iter *)it)->u); }
static slice sc_value(iter *it) { return iter_value(((scan_iter *)it)->u); }
static const mica_err *sc_status(iter *it) {
  return iter_status(((scan_iter *)it)->u);
}
static void sc_close(iter *it) {
  scan_iter *s = (scan_iter *)it;
  iter_close(s->u);
  stack_release((scan_stack *)s); /* the whole scan_stack */
}

static const struct iter_ops sc_ops = {
    sc_valid, sc_seek_to_first, sc_seek_to_last, sc_seek, sc_seek_for_prev,
    sc_next, sc_prev, sc_key, sc_value, sc_status, sc_close};

iter *tb_tablet_iter_new(version *v, uint64_t seq, slice lo, slice hi,
                         bool has_hi, const tab_scan_options *o) {
  scan_stack *st = stack_new();
  user_iter *u = &st->u;
  u->base.ops = &ui_ops;
  /* An empty range still gets an iterator (with no entries). */
  if (has_hi && lo.len > 0 && slice_cmp(lo, hi) >= 0)
    u->in = iter_empty(NULL);
  else
    u->in = tb_version_iter(v, lo, hi, has_hi, o->fill_cache);
  u->v = v;
  u->seq = seq;
  u->forward = true;
  scan_iter *s = &st->s;
  s->base.ops = &sc_ops;
  s->u = &u->base;
  s->rev = o->reverse;
  s->limit = o->limit;
  sc_seek_to_first(&s->base);
  return &s->base;
}
