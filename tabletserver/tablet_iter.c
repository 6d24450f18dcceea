/* tablet_iter: the iterators a tablet scan is made of, innermost first.
 * rng_iter restricts an internal-key iterator to a user-key range (a
 * shared file read for one half only, or a scan's bounds); the version
 * iterator merges every memtable and SSTable of a version; user_iter shows
 * the newest version of each key at a snapshot with deletes hidden; and
 * scan_iter adds scan order and the limit. Each follows common/iter.h. */
#include "tabletserver/tablet_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/coding.h"

/* Restricts an internal-key iterator to user keys in [lo, hi). One
 * allocation: lo and hi point into the bytes that follow the struct. */
typedef struct rng_iter {
  iter base;
  iter *in;
  slice lo, hi;
  bool has_hi;
  buf tmp;
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
  seek_key(&r->tmp, r->lo, IKEY_MAX_SEQ, IKEY_SEEK_KIND);
  iter_seek(r->in, buf_slice(&r->tmp));
}

static void rng_seek_to_last(iter *it) {
  rng_iter *r = (rng_iter *)it;
  if (!r->has_hi) {
    iter_seek_to_last(r->in);
    return;
  }
  seek_key(&r->tmp, r->hi, IKEY_MAX_SEQ, IKEY_SEEK_KIND);
  iter_seek_for_prev(r->in, buf_slice(&r->tmp));
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
  buf_free(&r->tmp);
  free(r);
}

static const struct iter_ops rng_ops = {
    rng_valid, rng_seek_to_first, rng_seek_to_last, rng_seek,
    rng_seek_for_prev, rng_next, rng_prev, rng_key, rng_value, rng_status,
    rng_close};

/* Takes ownership of `in`. */
iter *tb_rng_iter_new(iter *in, slice lo, slice hi, bool has_hi) {
  size_t hlen = has_hi ? hi.len : 0;
  rng_iter *r = xcalloc(1, sizeof(*r) + lo.len + hlen);
  uint8_t *tail = (uint8_t *)(r + 1);
  r->base.ops = &rng_ops;
  r->in = in;
  if (lo.len > 0) memcpy(tail, lo.data, lo.len);
  r->lo = slice_make(tail, lo.len);
  r->has_hi = has_hi;
  if (hlen > 0) memcpy(tail + lo.len, hi.data, hlen);
  r->hi = slice_make(tail + lo.len, hlen);
  return &r->base;
}

/* The merge of every source of a version, newest first, restricted to
 * [lo, hi). */
iter *tb_version_iter(version *v, slice lo, slice hi, bool has_hi,
                      bool fill_cache) {
  size_t n = 1 + v->n_imm + v->n_files, k = 0;
  iter **kids = xcalloc(n, sizeof(*kids));
  /* An empty memtable adds nothing but a comparison per step. */
  if (mt_count(v->mem) > 0) kids[k++] = mt_iter_new(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) kids[k++] = mt_iter_new(v->imm[i]);
  for (size_t i = 0; i < v->n_files; i++) {
    tfile *f = v->files[i];
    iter *fi = sst_reader_iter_new(f->r, fill_cache);
    if (f->restrict_reads)
      fi = tb_rng_iter_new(fi, buf_slice(&f->lo), buf_slice(&f->hi), f->has_hi);
    kids[k++] = fi;
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
} scan_stack;

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
  buf_free(&u->key);
  buf_free(&u->val);
  buf_free(&u->tmp);
  err_free(u->err);
  /* Part of its scan_stack, which sc_close frees. */
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
  free(s); /* the whole scan_stack */
}

static const struct iter_ops sc_ops = {
    sc_valid, sc_seek_to_first, sc_seek_to_last, sc_seek, sc_seek_for_prev,
    sc_next, sc_prev, sc_key, sc_value, sc_status, sc_close};

iter *tb_tablet_iter_new(version *v, uint64_t seq, slice lo, slice hi,
                         bool has_hi, const tab_scan_options *o) {
  scan_stack *st = xcalloc(1, sizeof(*st));
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
