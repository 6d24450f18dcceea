/* tablet: one tablet's storage engine (see tablet.h and docs/engine.md).
 *
 * The pieces and the locks that guard them:
 *
 *   flush_mu    one flush at a time (background job, tab_flush, close)
 *   compact_mu  one compaction at a time
 *   man_mu      the durable state: t->man and the WAL segment set. Every
 *               change to the file set is "compute under mu, write the
 *               manifest with mu released, install under mu", all inside
 *               man_mu, so what was written is what gets installed.
 *   mu          the in-memory state: current version, sequence numbers,
 *               the writer queue, flags. Held only briefly: no reads,
 *               writes or syncs happen under it (dropping the last
 *               reference to an old version may unlink obsolete files).
 *
 * Lock order: flush_mu / compact_mu -> man_mu -> mu. The server-wide
 * pool's member lock may call our active_bytes / request_flush callbacks,
 * which take no tablet lock.
 *
 * The write path is LevelDB's: writers queue under mu; the writer at the
 * head (the leader) takes a group of queued batches, gives them their
 * sequence numbers, adds them to the WAL, and with mu released waits for
 * the WAL (one write and, if any asked for it, one fdatasync for the whole
 * group), inserts them into the memtable (the leader is the memtable's
 * only writer), then publishes the group's last sequence number and wakes
 * each member. A reader never sees a write before it is durable, and a
 * writer never returns before its write is visible. While a leader is
 * outside mu (t->writing), nothing else may switch the memtable or the
 * WAL segment. */
#include "tabletserver/tablet.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/coding.h"
#include "common/ikey.h"
#include "common/log.h"
#include "tabletserver/manifest.h"
#include "tabletserver/memtable.h"
#include "tabletserver/wal.h"

#define container_of(p, type, field) \
  ((type *)((char *)(p) - offsetof(type, field)))

/* ------------------------------------------------------------------ */
/* Names and paths                                                     */

static void sst_file_name(char *out, size_t size, uint64_t epoch,
                          uint64_t number) {
  snprintf(out, size, "sst-%020" PRIu64 "-%020" PRIu64 ".sst", epoch, number);
}

static bool is_sst_name(const char *name) {
  size_t n = strlen(name);
  return n > 8 && strncmp(name, "sst-", 4) == 0 &&
         strcmp(name + n - 4, ".sst") == 0;
}

static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = xmalloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* The directory holding `dir` (the tablets directory) and `dir`'s own
 * name, both newly allocated. */
static void split_dir(const char *dir, char **parent, char **base) {
  char *d = xstrdup(dir);
  size_t n = strlen(d);
  while (n > 1 && d[n - 1] == '/') d[--n] = '\0';
  char *slash = strrchr(d, '/');
  if (slash == NULL) {
    *parent = xstrdup(".");
    *base = xstrdup(d);
  } else {
    *base = xstrdup(slash + 1);
    if (slash == d) slash[1] = '\0';
    else *slash = '\0';
    *parent = xstrdup(d);
  }
  free(d);
}

void tab_dir_path(const char *tablets_dir, uint64_t tablet_id, buf *out) {
  char tmp[32];
  snprintf(tmp, sizeof(tmp), "%" PRIu64, tablet_id);
  buf_clear(out);
  buf_append(out, tablets_dir, strlen(tablets_dir));
  buf_push(out, '/');
  buf_append(out, tmp, strlen(tmp) + 1);
  out->len--;
}

/* ------------------------------------------------------------------ */
/* Key ranges. A range is [lo, hi): lo.len == 0 means unbounded below,
 * has_hi false unbounded above. */

static bool in_range(slice k, slice lo, slice hi, bool has_hi) {
  if (lo.len > 0 && slice_cmp(k, lo) < 0) return false;
  if (has_hi && slice_cmp(k, hi) >= 0) return false;
  return true;
}

/* ------------------------------------------------------------------ */
/* SSTable handles, shared by the versions that list them               */

typedef struct tfile {
  atomic_int refs;
  env *e;
  char *rel;   /* path as the manifest has it */
  char *path;  /* full path */
  bool own;    /* in this tablet's directory, deletable by it */
  atomic_bool obsolete; /* no longer in the current version */
  sst_reader *r;
  uint64_t size;
  buf lo, hi;  /* read range */
  bool has_hi;
  bool restrict_reads; /* the file holds keys outside [lo, hi) */
  uint64_t est_bytes;  /* data bytes inside [lo, hi) */
  uint64_t est_keys;
} tfile;

static void tfile_ref(tfile *f) { atomic_fetch_add(&f->refs, 1); }

static void tfile_unref(tfile *f) {
  if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1) return;
  sst_reader_close(f->r);
  if (f->own && atomic_load(&f->obsolete)) {
    mica_err *err = env_remove(f->e, f->path);
    if (err != NULL && err_code(err) != MICA_NOT_FOUND)
      LOG_W("tablet: cannot delete obsolete %s: %s", f->path, err_msg(err));
    err_free(err);
  }
  free(f->rel);
  free(f->path);
  buf_free(&f->lo);
  buf_free(&f->hi);
  free(f);
}

static void seek_key(buf *b, slice user, uint64_t seq, uint8_t kind) {
  buf_clear(b);
  ikey_append(b, user, seq, kind);
}

/* Opens the SSTable at `rel` (relative to `dir`) for reading [lo, hi). */
static mica_err *tfile_open(env *e, cache *c, const char *dir,
                            const char *rel, uint64_t expect_size, slice lo,
                            slice hi, bool has_hi, tfile **out) {
  *out = NULL;
  char *path = path_join(dir, rel);
  sst_reader *r;
  mica_err *err = sst_reader_open(e, path, c, &r);
  if (err != NULL) {
    int code = err_code(err) == MICA_NOT_FOUND ? MICA_CORRUPTION : err_code(err);
    mica_err *w = err_new(code, "SSTable %s listed in %s/MANIFEST: %s", path,
                          dir, err_msg(err));
    err_free(err);
    free(path);
    return w;
  }
  if (expect_size != 0 && sst_reader_file_size(r) != expect_size) {
    err = err_new(MICA_CORRUPTION,
                  "SSTable %s listed in %s/MANIFEST: %" PRIu64
                  " bytes, manifest says %" PRIu64,
                  path, dir, sst_reader_file_size(r), expect_size);
    sst_reader_close(r);
    free(path);
    return err;
  }
  tfile *f = xcalloc(1, sizeof(*f));
  atomic_init(&f->refs, 1);
  atomic_init(&f->obsolete, false);
  f->e = e;
  f->rel = xstrdup(rel);
  f->path = path;
  f->own = strchr(rel, '/') == NULL;
  f->r = r;
  f->size = sst_reader_file_size(r);
  buf_append_slice(&f->lo, lo);
  f->has_hi = has_hi;
  if (has_hi) buf_append_slice(&f->hi, hi);

  const sst_properties *p = sst_reader_properties(r);
  f->est_bytes = p->data_size;
  f->est_keys = p->num_entries;
  if (p->num_entries > 0) {
    slice smallest = ikey_user_key(buf_slice(&p->smallest_key));
    slice largest = ikey_user_key(buf_slice(&p->largest_key));
    f->restrict_reads = (lo.len > 0 && slice_cmp(smallest, lo) < 0) ||
                        (has_hi && slice_cmp(largest, hi) >= 0);
    if (f->restrict_reads) {
      buf k = BUF_INIT;
      uint64_t a = 0, b = p->data_size;
      if (lo.len > 0) {
        seek_key(&k, lo, IKEY_MAX_SEQ, IKEY_SEEK_KIND);
        a = sst_reader_approximate_offset(r, buf_slice(&k));
      }
      if (has_hi) {
        seek_key(&k, hi, IKEY_MAX_SEQ, IKEY_SEEK_KIND);
        b = sst_reader_approximate_offset(r, buf_slice(&k));
      }
      buf_free(&k);
      f->est_bytes = b > a ? b - a : 0;
      f->est_keys = p->data_size == 0
                        ? 0
                        : (uint64_t)((double)p->num_entries *
                                     ((double)f->est_bytes / (double)p->data_size));
    }
  }
  *out = f;
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Versions                                                            */

typedef struct version {
  atomic_int refs;
  memtable *mem;     /* active */
  memtable **imm;    /* immutable, newest first */
  size_t n_imm;
  tfile **files;     /* newest data first */
  size_t n_files;
} version;

static version *version_new(memtable *mem, memtable **imm, size_t n_imm,
                            tfile **files, size_t n_files) {
  version *v = xcalloc(1, sizeof(*v));
  atomic_init(&v->refs, 1);
  v->mem = mem;
  mt_ref(mem);
  v->imm = xcalloc(n_imm + 1, sizeof(*v->imm));
  v->n_imm = n_imm;
  for (size_t i = 0; i < n_imm; i++) {
    v->imm[i] = imm[i];
    mt_ref(imm[i]);
  }
  v->files = xcalloc(n_files + 1, sizeof(*v->files));
  v->n_files = n_files;
  for (size_t i = 0; i < n_files; i++) {
    v->files[i] = files[i];
    tfile_ref(files[i]);
  }
  return v;
}

static void version_ref(version *v) { atomic_fetch_add(&v->refs, 1); }

static void version_unref(version *v) {
  if (v == NULL || atomic_fetch_sub(&v->refs, 1) != 1) return;
  mt_unref(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) mt_unref(v->imm[i]);
  for (size_t i = 0; i < v->n_files; i++) tfile_unref(v->files[i]);
  free(v->imm);
  free(v->files);
  free(v);
}

/* ------------------------------------------------------------------ */
/* The tablet                                                          */

/* An immutable memtable waiting for flush, with the WAL segment that holds
 * its writes and the bytes it counts against the server's budget. */
typedef struct imm_entry {
  memtable *mem;
  uint64_t segment;
  size_t charged;
} imm_entry;

/* A queued writer; lives on the writer's stack. */
typedef struct wnode {
  wbatch *b;
  bool sync;
  bool done;
  mica_err *err;       /* its outcome once done */
  pthread_cond_t cv;   /* signalled when done or when it became the head */
  struct wnode *next;
} wnode;

struct tablet {
  res_pool *res;
  env *e;
  char *dir;
  char *tablets_dir; /* parent directory of dir */
  char *dir_name;    /* last component of dir */
  uint64_t id, epoch;
  buf start, end;    /* range; end.len == 0: unbounded */
  bool has_end;
  tab_options o;

  pthread_mutex_t flush_mu, compact_mu, man_mu, mu;
  pthread_cond_t cv; /* with mu: versions, leader done, rotation, closing */

  /* Guarded by man_mu (written), mu (read by info calls): */
  man_state man;

  /* Guarded by mu: */
  version *cur;
  imm_entry *imms; /* oldest first; parallel to cur->imm reversed */
  size_t n_imm;
  wal_writer *wal;
  uint64_t wal_number;
  uint64_t last_seq;    /* assigned */
  uint64_t visible_seq; /* every write <= it is in and acknowledged */
  uint64_t next_file;
  wnode *queue_head, *queue_tail; /* writers waiting, leader first */
  bool writing;  /* a leader is applying a group outside mu */
  bool rotating;
  bool closing;
  mica_err *failed;     /* sticky: writes refused */
  mica_err *bg_error;   /* last background failure, for stall messages */
  size_t active_charged; /* bytes of cur->mem charged to the budget */

  atomic_bool flush_requested;
  atomic_size_t active_bytes;
  res_job flush_job, compact_job;
  res_member member;
  bool member_added;

  /* Statistics (atomic, relaxed). */
  atomic_uint_fast64_t st_puts, st_deletes, st_batches, st_bytes, st_gets,
      st_scans, st_flushes, st_flush_bytes, st_compactions, st_cread, st_cwrite,
      st_stalls, st_stall_micros, st_stall_timeouts;
  uint64_t replayed_records, dropped_bytes;
};

static void stat_add(atomic_uint_fast64_t *s, uint64_t v) {
  atomic_fetch_add_explicit(s, v, memory_order_relaxed);
}

static slice t_start(const tablet *t) { return buf_slice(&t->start); }
static slice t_end(const tablet *t) { return buf_slice(&t->end); }

static bool t_in_range(const tablet *t, slice k) {
  return in_range(k, t_start(t), t_end(t), t->has_end);
}

/* Waits on t->cv until `deadline` (env clock) at most, in slices of 10 ms
 * because the condition variable runs on the wall clock. Caller holds mu.
 * Returns false once the deadline has passed. */
static bool wait_until(tablet *t, uint64_t deadline) {
  uint64_t now = env_now_micros(t->e);
  if (now >= deadline) return false;
  uint64_t wait = deadline - now;
  if (wait > 10000) wait = 10000;
  uint64_t at = env_wall_micros(t->e) + wait;
  struct timespec ts = {(time_t)(at / 1000000), (long)(at % 1000000) * 1000};
  pthread_cond_timedwait(&t->cv, &t->mu, &ts);
  return true;
}

/* Replaces the current version. Caller holds mu. */
static void install_version(tablet *t, memtable *mem, tfile **files,
                            size_t n_files) {
  memtable **imm = xcalloc(t->n_imm + 1, sizeof(*imm));
  for (size_t i = 0; i < t->n_imm; i++) imm[i] = t->imms[t->n_imm - 1 - i].mem;
  version *v = version_new(mem, imm, t->n_imm, files, n_files);
  free(imm);
  version_unref(t->cur);
  t->cur = v;
  pthread_cond_broadcast(&t->cv);
}

static version *current_version(tablet *t, uint64_t *seq) {
  pthread_mutex_lock(&t->mu);
  version *v = t->cur;
  version_ref(v);
  if (seq != NULL) *seq = t->visible_seq;
  pthread_mutex_unlock(&t->mu);
  return v;
}

/* Makes the tablet refuse writes from now on. Caller holds mu; takes
 * ownership of `err`. */
static void fail_locked(tablet *t, mica_err *err) {
  if (t->failed == NULL) {
    LOG_E("tablet %" PRIu64 ": refusing writes: %s", t->id, err_msg(err));
    t->failed = err;
  } else {
    err_free(err);
  }
  pthread_cond_broadcast(&t->cv);
}

static void set_bg_error(tablet *t, const mica_err *err) {
  pthread_mutex_lock(&t->mu);
  err_free(t->bg_error);
  t->bg_error = err_dup(err);
  pthread_mutex_unlock(&t->mu);
}

/* Rebuilds the SSTable list of `m` from `files`. */
static void man_set_files(man_state *m, tfile **files, size_t n) {
  man_state tmp;
  man_copy(&tmp, m);
  for (size_t i = 0; i < tmp.n_ssts; i++) {
    free(tmp.ssts[i].path);
    buf_free(&tmp.ssts[i].lo);
    buf_free(&tmp.ssts[i].hi);
  }
  free(tmp.ssts);
  tmp.ssts = NULL;
  tmp.n_ssts = 0;
  for (size_t i = 0; i < n; i++)
    man_add_sst(&tmp, files[i]->rel, files[i]->size, buf_slice(&files[i]->lo),
                buf_slice(&files[i]->hi), files[i]->has_hi);
  man_clear(m);
  *m = tmp;
}

/* Writes `m` as the tablet's manifest after checking that no newer epoch
 * has taken the tablet over (the fencing rule: a stale owner must not
 * overwrite the new owner's manifest). Caller holds man_mu. */
static mica_err *write_manifest(tablet *t, man_state *m) {
  man_state disk;
  man_init(&disk);
  mica_err *err = man_read(t->e, t->dir, &disk);
  if (err == NULL && disk.epoch > t->epoch) {
    mica_err *stale = err_new(
        MICA_STALE_EPOCH,
        "tablet %" PRIu64 ": assign_epoch %" PRIu64
        " took over; this owner (epoch %" PRIu64 ") is fenced",
        t->id, disk.epoch, t->epoch);
    man_clear(&disk);
    pthread_mutex_lock(&t->mu);
    fail_locked(t, err_dup(stale));
    pthread_mutex_unlock(&t->mu);
    return stale;
  }
  man_clear(&disk);
  if (err != NULL && err_code(err) != MICA_NOT_FOUND) return err;
  err_free(err);
  m->epoch = t->epoch;
  return man_write(t->e, t->dir, m);
}

/* ------------------------------------------------------------------ */
/* Iterators                                                           */

/* Restricts an internal-key iterator to user keys in [lo, hi). */
typedef struct rng_iter {
  iter base;
  iter *in;
  buf lo, hi;
  bool has_hi;
  buf tmp;
} rng_iter;

static bool rng_valid(iter *it) {
  rng_iter *r = (rng_iter *)it;
  if (!iter_valid(r->in)) return false;
  return in_range(ikey_user_key(iter_key(r->in)), buf_slice(&r->lo),
                  buf_slice(&r->hi), r->has_hi);
}

static void rng_seek_to_first(iter *it) {
  rng_iter *r = (rng_iter *)it;
  if (r->lo.len == 0) {
    iter_seek_to_first(r->in);
    return;
  }
  seek_key(&r->tmp, buf_slice(&r->lo), IKEY_MAX_SEQ, IKEY_SEEK_KIND);
  iter_seek(r->in, buf_slice(&r->tmp));
}

static void rng_seek_to_last(iter *it) {
  rng_iter *r = (rng_iter *)it;
  if (!r->has_hi) {
    iter_seek_to_last(r->in);
    return;
  }
  seek_key(&r->tmp, buf_slice(&r->hi), IKEY_MAX_SEQ, IKEY_SEEK_KIND);
  iter_seek_for_prev(r->in, buf_slice(&r->tmp));
  if (iter_valid(r->in) &&
      slice_cmp(ikey_user_key(iter_key(r->in)), buf_slice(&r->hi)) >= 0)
    iter_prev(r->in);
}

static void rng_seek(iter *it, slice target) {
  rng_iter *r = (rng_iter *)it;
  if (r->lo.len > 0 && slice_cmp(ikey_user_key(target), buf_slice(&r->lo)) < 0)
    rng_seek_to_first(it);
  else
    iter_seek(r->in, target);
}

static void rng_seek_for_prev(iter *it, slice target) {
  rng_iter *r = (rng_iter *)it;
  if (r->has_hi && slice_cmp(ikey_user_key(target), buf_slice(&r->hi)) >= 0)
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
  buf_free(&r->lo);
  buf_free(&r->hi);
  buf_free(&r->tmp);
  free(r);
}

static const struct iter_ops rng_ops = {
    rng_valid, rng_seek_to_first, rng_seek_to_last, rng_seek,
    rng_seek_for_prev, rng_next, rng_prev, rng_key, rng_value, rng_status,
    rng_close};

/* Takes ownership of `in`. */
static iter *rng_iter_new(iter *in, slice lo, slice hi, bool has_hi) {
  rng_iter *r = xcalloc(1, sizeof(*r));
  r->base.ops = &rng_ops;
  r->in = in;
  buf_append_slice(&r->lo, lo);
  r->has_hi = has_hi;
  if (has_hi) buf_append_slice(&r->hi, hi);
  return &r->base;
}

/* The merge of every source of a version, newest first, restricted to
 * [lo, hi). */
static iter *version_iter(version *v, slice lo, slice hi, bool has_hi,
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
      fi = rng_iter_new(fi, buf_slice(&f->lo), buf_slice(&f->hi), f->has_hi);
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
  return rng_iter_new(m, lo, hi, has_hi);
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
  version_unref(u->v);
  buf_free(&u->key);
  buf_free(&u->val);
  buf_free(&u->tmp);
  err_free(u->err);
  free(u);
}

static const struct iter_ops ui_ops = {
    ui_valid, ui_seek_to_first, ui_seek_to_last, ui_seek, ui_seek_for_prev,
    ui_next, ui_prev, ui_key, ui_value, ui_status, ui_close};

/* Takes ownership of `in` and of one reference to `v`. */
static iter *user_iter_new(iter *in, version *v, uint64_t seq) {
  user_iter *u = xcalloc(1, sizeof(*u));
  u->base.ops = &ui_ops;
  u->in = in;
  u->v = v;
  u->seq = seq;
  u->forward = true;
  return &u->base;
}

/* Scan order and limit over a user iterator. */
typedef struct scan_iter {
  iter base;
  iter *u;
  bool rev;
  uint64_t limit, count;
} scan_iter;

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
  free(s);
}

static const struct iter_ops sc_ops = {
    sc_valid, sc_seek_to_first, sc_seek_to_last, sc_seek, sc_seek_for_prev,
    sc_next, sc_prev, sc_key, sc_value, sc_status, sc_close};

/* ------------------------------------------------------------------ */
/* Writing SSTables (flush and compaction)                             */

/* Writes the newest entry of each user key of `in` (a sorted internal-key
 * iterator, positioned by this function) to a new SSTable numbered
 * `number`, dropping deletes when `drop_deletes`. *out is NULL when
 * nothing was left to write. `read_bytes` (may be NULL) gets the bytes of
 * entries read. */
static mica_err *write_sst(tablet *t, iter *in, bool drop_deletes,
                           uint64_t number, tfile **out,
                           uint64_t *read_bytes) {
  *out = NULL;
  char name[96];
  sst_file_name(name, sizeof(name), t->epoch, number);
  char *path = path_join(t->dir, name);
  sst_builder *b = NULL;
  mica_err *err = NULL;
  buf last = BUF_INIT;
  bool have_last = false;
  uint64_t nread = 0;
  for (iter_seek_to_first(in); iter_valid(in); iter_next(in)) {
    slice k = iter_key(in), val = iter_value(in);
    nread += k.len + val.len;
    ikey_parts p;
    if (!ikey_parse(k, &p)) {
      err = err_new(MICA_CORRUPTION, "tablet %" PRIu64
                    ": malformed internal key while writing %s", t->id, path);
      break;
    }
    if (have_last && slice_eq(p.user_key, buf_slice(&last))) continue;
    buf_clear(&last);
    buf_append_slice(&last, p.user_key);
    have_last = true;
    if (p.kind == IKEY_DELETE && drop_deletes) continue;
    if (b == NULL) {
      err = sst_builder_new(t->e, path, &t->o.sst, &b);
      if (err != NULL) break;
    }
    err = sst_builder_add(b, k, val);
    if (err != NULL) break;
  }
  if (err == NULL && iter_status(in) != NULL) err = err_dup(iter_status(in));
  buf_free(&last);
  if (read_bytes != NULL) *read_bytes = nread;
  if (err != NULL) {
    sst_builder_abandon(b);
    free(path);
    return err;
  }
  if (b == NULL) {
    free(path);
    return NULL;
  }
  err = sst_builder_finish(b, NULL);
  /* The file's directory entry must be durable before a manifest that
   * names it can be. */
  if (err == NULL) err = env_sync_dir(t->e, t->dir);
  if (err == NULL) {
    err = tfile_open(t->e, res_cache(t->res), t->dir, name, 0, t_start(t),
                     t_end(t), t->has_end, out);
    if (err != NULL) err_free(env_remove(t->e, path));
  }
  free(path);
  return err;
}

/* ------------------------------------------------------------------ */
/* Flush                                                               */

static void charge_memory(tablet *t, int64_t delta) {
  if (delta != 0) res_mem_add(t->res, delta);
}

/* Flushes the oldest immutable memtable: writes it as an SSTable, then in
 * one manifest write adds the file and retires its WAL segment. Sets
 * *did to whether there was one. */
static mica_err *flush_one(tablet *t, bool *did) {
  *did = false;
  pthread_mutex_lock(&t->flush_mu);
  pthread_mutex_lock(&t->mu);
  if (t->n_imm == 0) {
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&t->flush_mu);
    return NULL;
  }
  imm_entry victim = t->imms[0];
  uint64_t number = t->next_file++;
  pthread_mutex_unlock(&t->mu);

  iter *in = mt_iter_new(victim.mem);
  tfile *f = NULL;
  mica_err *err = write_sst(t, in, false, number, &f, NULL);
  iter_close(in);
  if (err != NULL) {
    err = err_wrap(err, "tablet %" PRIu64 ": flush", t->id);
    pthread_mutex_unlock(&t->flush_mu);
    return err;
  }

  pthread_mutex_lock(&t->man_mu);
  pthread_mutex_lock(&t->mu);
  size_t n = t->cur->n_files + 1, k = 0;
  tfile **files = xcalloc(n, sizeof(*files));
  if (f != NULL) files[k++] = f;
  for (size_t i = 0; i < t->cur->n_files; i++) files[k++] = t->cur->files[i];
  man_state m;
  man_copy(&m, &t->man);
  man_set_files(&m, files, k);
  m.n_live = 0;
  for (size_t i = 0; i < t->man.n_live; i++)
    if (t->man.live[i].number != victim.segment ||
        t->man.live[i].epoch != t->epoch)
      man_add_live(&m, t->man.live[i].epoch, t->man.live[i].number);
  man_add_retired(&m, t->epoch, victim.segment);
  m.last_seq = t->last_seq;
  m.next_file = t->next_file;
  pthread_mutex_unlock(&t->mu);

  err = write_manifest(t, &m);
  if (err != NULL) {
    /* Whether the new manifest replaced the old one is unknown, so the
     * file stays on disk; a reopen deletes it if no manifest lists it. */
    man_clear(&m);
    free(files);
    tfile_unref(f);
    pthread_mutex_unlock(&t->man_mu);
    pthread_mutex_unlock(&t->flush_mu);
    return err_wrap(err, "tablet %" PRIu64 ": flush", t->id);
  }
  pthread_mutex_lock(&t->mu);
  man_clear(&t->man);
  t->man = m;
  memmove(&t->imms[0], &t->imms[1], (t->n_imm - 1) * sizeof(*t->imms));
  t->n_imm--;
  install_version(t, t->cur->mem, files, k);
  pthread_mutex_unlock(&t->mu);
  free(files);
  if (f != NULL) {
    stat_add(&t->st_flushes, 1);
    stat_add(&t->st_flush_bytes, f->size);
    tfile_unref(f); /* the version holds it now */
  }

  /* The segment is retired in the manifest; delete it, then forget it. */
  char name[96];
  wal_segment_name(name, sizeof(name), t->epoch, victim.segment);
  char *path = path_join(t->dir, name);
  mica_err *rm = env_remove(t->e, path);
  if (rm == NULL || err_code(rm) == MICA_NOT_FOUND) {
    pthread_mutex_lock(&t->mu);
    man_state *cm = &t->man;
    for (size_t i = 0; i < cm->n_retired; i++) {
      if (cm->retired[i].epoch == t->epoch &&
          cm->retired[i].number == victim.segment) {
        cm->retired[i] = cm->retired[--cm->n_retired];
        break;
      }
    }
    pthread_mutex_unlock(&t->mu);
  }
  err_free(rm);
  free(path);
  pthread_mutex_unlock(&t->man_mu);

  res_mem_release(t->res, victim.charged);
  mt_unref(victim.mem);
  *did = true;
  pthread_mutex_lock(&t->mu);
  bool compact = t->o.auto_compact && !t->closing &&
                 t->cur->n_files >= (size_t)t->o.compaction_trigger;
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&t->flush_mu);
  if (compact) res_job_schedule(t->res, &t->compact_job);
  return NULL;
}

/* Makes the active memtable immutable behind a new WAL segment. Caller
 * holds mu (released while doing I/O and reacquired); t->rotating keeps
 * writers out meanwhile. With `new_segment` false (close, split), the WAL
 * is closed instead and no writes may follow. */
static mica_err *rotate_locked(tablet *t, bool new_segment) {
  t->rotating = true;
  while (t->writing) pthread_cond_wait(&t->cv, &t->mu);
  uint64_t number = new_segment ? t->next_file++ : 0;
  pthread_mutex_unlock(&t->mu);

  mica_err *err = NULL;
  wal_writer *nw = NULL;
  char *path = NULL;
  pthread_mutex_lock(&t->man_mu);
  if (new_segment) {
    char name[96];
    wal_segment_name(name, sizeof(name), t->epoch, number);
    path = path_join(t->dir, name);
    err = wal_writer_open(t->e, path, t->epoch, number, &nw);
    if (err == NULL) {
      man_state m;
      pthread_mutex_lock(&t->mu);
      man_copy(&m, &t->man);
      m.last_seq = t->last_seq;
      m.next_file = t->next_file;
      pthread_mutex_unlock(&t->mu);
      man_add_live(&m, t->epoch, number);
      err = write_manifest(t, &m);
      if (err == NULL) {
        pthread_mutex_lock(&t->mu);
        man_clear(&t->man);
        t->man = m;
        pthread_mutex_unlock(&t->mu);
      } else {
        /* The manifest may or may not have been replaced: keep the
         * segment file (a reopen deletes it if no manifest lists it). */
        man_clear(&m);
        err_free(wal_writer_close(nw));
        nw = NULL;
      }
    }
  }
  if (err == NULL) {
    /* Everything the old segment was given is written and synced before
     * its memtable can be flushed and the segment retired. No writer
     * touches t->wal while t->rotating is set, so mu is not needed. */
    mica_err *cerr = wal_writer_close(t->wal);
    t->wal = NULL;
    if (cerr != NULL) {
      /* Writers of that segment were already told about this error. */
      LOG_W("tablet %" PRIu64 ": closing WAL segment: %s", t->id,
            err_msg(cerr));
      err_free(cerr);
    }
  }
  pthread_mutex_lock(&t->mu);
  if (err == NULL) {
    t->wal = nw;
    uint64_t old_number = t->wal_number;
    t->wal_number = number;
    t->imms = xrealloc(t->imms, (t->n_imm + 1) * sizeof(*t->imms));
    memtable *old = t->cur->mem;
    mt_ref(old);
    t->imms[t->n_imm++] = (imm_entry){old, old_number, t->active_charged};
    res_mem_freeze(t->res, t->active_charged);
    t->active_charged = 0;
    atomic_store(&t->active_bytes, 0);
    memtable *fresh = mt_new();
    install_version(t, fresh, t->cur->files, t->cur->n_files);
    mt_unref(fresh);
  }
  pthread_mutex_unlock(&t->man_mu);
  t->rotating = false;
  pthread_cond_broadcast(&t->cv);
  free(path);
  if (err == NULL && new_segment) res_job_schedule(t->res, &t->flush_job);
  return err;
}

/* Flushes every immutable memtable, in order. */
static mica_err *flush_all_imm(tablet *t) {
  for (;;) {
    bool did;
    mica_err *err = flush_one(t, &did);
    if (err != NULL || !did) return err;
  }
}

/* ------------------------------------------------------------------ */
/* Compaction                                                          */

/* Picks a run of consecutive (by age) SSTables to merge, size-tiered: the
 * first run, newest first, of at least `trigger` files each within a
 * factor of two of the run's average size. When the tablet is close to
 * the write stall and no such run exists, the newest `trigger` files.
 * `force` picks everything. Returns the run length (0: nothing). */
static size_t pick_compaction(tablet *t, version *v, bool force,
                              size_t *first) {
  size_t n = v->n_files;
  *first = 0;
  if (force) return n >= 2 || (n == 1 && v->files[0]->restrict_reads) ? n : 0;
  size_t trigger = (size_t)t->o.compaction_trigger;
  if (n < trigger) return 0;
  for (size_t s = 0; s + trigger <= n; s++) {
    uint64_t total = v->files[s]->est_bytes + 1;
    size_t e = s + 1;
    while (e < n && e - s < 32) {
      uint64_t avg = total / (e - s);
      uint64_t sz = v->files[e]->est_bytes + 1;
      if (sz > 2 * avg || 2 * sz < avg) break;
      total += sz;
      e++;
    }
    if (e - s >= trigger) {
      *first = s;
      return e - s;
    }
  }
  if (n + 4 >= (size_t)t->o.stall_sst_count) return trigger;
  return 0;
}

/* Runs one compaction. Sets *did when it merged something. */
static mica_err *compact_once(tablet *t, bool force, bool *did) {
  *did = false;
  pthread_mutex_lock(&t->compact_mu);
  version *v = current_version(t, NULL);
  size_t first, len = pick_compaction(t, v, force, &first);
  if (len == 0) {
    version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return NULL;
  }
  bool oldest = first + len == v->n_files;
  pthread_mutex_lock(&t->mu);
  uint64_t number = t->next_file++;
  pthread_mutex_unlock(&t->mu);

  iter **kids = xcalloc(len, sizeof(*kids));
  uint64_t in_bytes = 0;
  bool foreign = false;
  for (size_t i = 0; i < len; i++) {
    tfile *f = v->files[first + i];
    kids[i] = sst_reader_iter_new(f->r, false);
    /* A file shared with other tablets is read only inside its own range:
     * a merged tablet lists one input's file for that input's half only,
     * and the rest of the file may hold older versions of the other
     * half's keys (tablet_merge.h). */
    if (f->restrict_reads)
      kids[i] = rng_iter_new(kids[i], buf_slice(&f->lo), buf_slice(&f->hi),
                             f->has_hi);
    in_bytes += f->size;
    if (!f->own) foreign = true;
  }
  /* Only the tablet's own range is written, so a daughter's compaction
   * never copies its sibling's half of a shared parent file. */
  iter *in = rng_iter_new(merge_iter_new(kids, len, ikey_cmp), t_start(t),
                          t_end(t), t->has_end);
  tfile *out = NULL;
  uint64_t read_bytes = 0;
  mica_err *err = write_sst(t, in, oldest, number, &out, &read_bytes);
  iter_close(in);
  if (err != NULL) {
    version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return err_wrap(err, "tablet %" PRIu64 ": compaction", t->id);
  }

  pthread_mutex_lock(&t->man_mu);
  pthread_mutex_lock(&t->mu);
  /* Flushes may have added newer files in front since the pick; the run
   * is still contiguous and in the same order (only compactions remove
   * files, and they are serialized by compact_mu). */
  version *c = t->cur;
  size_t shift = c->n_files - v->n_files;
  tfile **files = xcalloc(c->n_files + 1, sizeof(*files));
  size_t k = 0;
  for (size_t i = 0; i < first + shift; i++) files[k++] = c->files[i];
  if (out != NULL) files[k++] = out;
  for (size_t i = first + shift + len; i < c->n_files; i++)
    files[k++] = c->files[i];
  man_state m;
  man_copy(&m, &t->man);
  man_set_files(&m, files, k);
  m.last_seq = t->last_seq;
  m.next_file = t->next_file;
  pthread_mutex_unlock(&t->mu);
  err = write_manifest(t, &m);
  if (err != NULL) {
    /* As in flush_one: the output may be listed; leave it to reopen. */
    man_clear(&m);
    free(files);
    tfile_unref(out);
    pthread_mutex_unlock(&t->man_mu);
    version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return err_wrap(err, "tablet %" PRIu64 ": compaction", t->id);
  }
  pthread_mutex_lock(&t->mu);
  man_clear(&t->man);
  t->man = m;
  for (size_t i = 0; i < len; i++)
    atomic_store(&v->files[first + i]->obsolete, true);
  install_version(t, t->cur->mem, files, k);
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&t->man_mu);
  free(files);
  stat_add(&t->st_compactions, 1);
  stat_add(&t->st_cread, in_bytes);
  if (out != NULL) {
    stat_add(&t->st_cwrite, out->size);
    tfile_unref(out);
  }
  version_unref(v); /* the inputs go when the last reader lets go */
  *did = true;
  pthread_mutex_unlock(&t->compact_mu);

  if (foreign) {
    /* This compaction dropped references to a split parent's files: they
     * may now be unreferenced everywhere. */
    uint64_t removed = 0;
    mica_err *gerr = tab_collect_garbage(t->e, t->tablets_dir, &removed);
    if (gerr != NULL) {
      LOG_W("tablet %" PRIu64 ": garbage collection: %s", t->id,
            err_msg(gerr));
      err_free(gerr);
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Background jobs                                                     */

static void flush_job_fn(res_job *job) {
  tablet *t = container_of(job, tablet, flush_job);
  mica_err *err = NULL;
  if (atomic_exchange(&t->flush_requested, false)) {
    pthread_mutex_lock(&t->mu);
    if (!t->closing && !t->rotating && t->failed == NULL &&
        mt_count(t->cur->mem) > 0)
      err = rotate_locked(t, true);
    pthread_mutex_unlock(&t->mu);
  }
  if (err == NULL) err = flush_all_imm(t);
  if (err != NULL) {
    LOG_W("%s", err_msg(err));
    set_bg_error(t, err);
    err_free(err);
  }
}

static void compact_job_fn(res_job *job) {
  tablet *t = container_of(job, tablet, compact_job);
  pthread_mutex_lock(&t->mu);
  bool closing = t->closing;
  pthread_mutex_unlock(&t->mu);
  if (closing) return;
  bool did;
  mica_err *err = compact_once(t, false, &did);
  if (err != NULL) {
    LOG_W("%s", err_msg(err));
    set_bg_error(t, err);
    err_free(err);
    return;
  }
  if (did) res_job_schedule(t->res, &t->compact_job);
}

static size_t member_active_bytes(void *arg) {
  return atomic_load(&((tablet *)arg)->active_bytes);
}

static void member_request_flush(void *arg) {
  tablet *t = arg;
  atomic_store(&t->flush_requested, true);
  res_job_schedule(t->res, &t->flush_job);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */

void tab_options_init(tab_options *o) {
  memset(o, 0, sizeof(*o));
  o->memtable_bytes = 8u << 20;
  o->max_immutable = 2;
  o->compaction_trigger = 4;
  o->stall_sst_count = 24;
  o->stall_timeout_micros = 10 * 1000 * 1000;
  o->auto_compact = true;
  o->create_if_missing = false;
  o->max_key = 16 << 10;
  o->max_value = 8u << 20;
  o->max_batch = 32u << 20;
  sst_options_init(&o->sst);
}

void tab_scan_options_init(tab_scan_options *o) {
  memset(o, 0, sizeof(*o));
  o->fill_cache = true;
}

static mica_err *check_options(const tab_options *o) {
  if (o->memtable_bytes < 1024)
    return err_new(MICA_INVALID_ARGUMENT, "tablet: memtable_bytes %zu < 1024",
                   o->memtable_bytes);
  if (o->max_immutable < 1 || o->max_immutable > 64)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: max_immutable %d not in 1..64", o->max_immutable);
  if (o->compaction_trigger < 2 || o->compaction_trigger > 64)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: compaction_trigger %d not in 2..64",
                   o->compaction_trigger);
  if (o->stall_sst_count <= o->compaction_trigger)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: stall_sst_count %d must exceed compaction_trigger",
                   o->stall_sst_count);
  if (o->max_key < 1 || o->max_value < 1 || o->max_batch < 1)
    return err_new(MICA_INVALID_ARGUMENT, "tablet: limits must be positive");
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Open                                                                */

typedef struct replay_ctx {
  memtable *mem;
  wbatch *b;
  const char *path;
  uint64_t max_seq;
} replay_ctx;

static mica_err *replay_record(void *arg, slice payload, uint64_t offset) {
  replay_ctx *c = arg;
  mica_err *err = wbatch_decode(c->b, payload);
  if (err != NULL)
    return err_wrap(err, "WAL %s: record at offset %" PRIu64, c->path, offset);
  uint64_t seq = wbatch_seq(c->b), n = wbatch_count(c->b);
  if (n == 0) return NULL;
  if (seq == 0 || seq + n - 1 > IKEY_MAX_SEQ)
    return err_new(MICA_CORRUPTION,
                   "WAL %s: record at offset %" PRIu64
                   ": sequence %" PRIu64 " out of range",
                   c->path, offset, seq);
  mt_apply_batch(c->mem, c->b);
  if (seq + n - 1 > c->max_seq) c->max_seq = seq + n - 1;
  return NULL;
}

/* Writes both daughters of a split recorded in `m` (state SPLITTING or
 * SPLIT) next to `dir`, each referencing the parent's SSTables restricted
 * to its half. Idempotent: an interrupted run is redone from scratch. */
static mica_err *write_daughters(env *e, const char *dir, const man_state *m) {
  char *tablets_dir, *base;
  split_dir(dir, &tablets_dir, &base);
  mica_err *err = NULL;
  buf ddir = BUF_INIT;
  for (int side = 0; side < 2 && err == NULL; side++) {
    uint64_t id = side == 0 ? m->left_id : m->right_id;
    tab_dir_path(tablets_dir, id, &ddir);
    const char *dpath = (const char *)ddir.data;
    man_state d;
    man_init(&d);
    d.tablet_id = id;
    d.epoch = m->epoch;
    d.last_seq = m->last_seq;
    d.next_file = 1;
    d.state = MAN_LIVE;
    d.parent_id = m->tablet_id;
    slice dlo = side == 0 ? buf_slice(&m->start_key) : buf_slice(&m->split_key);
    slice dhi = side == 0 ? buf_slice(&m->split_key) : buf_slice(&m->end_key);
    bool dhas_hi = side == 0 ? true : m->has_end;
    buf_append_slice(&d.start_key, dlo);
    buf_append_slice(&d.end_key, dhas_hi ? dhi : slice_make(NULL, 0));
    d.has_end = dhas_hi;
    for (size_t i = 0; i < m->n_ssts; i++) {
      const man_sst *s = &m->ssts[i];
      slice lo = buf_slice(&s->lo), hi = buf_slice(&s->hi);
      if (dlo.len > 0 && (lo.len == 0 || slice_cmp(dlo, lo) > 0)) lo = dlo;
      bool has_hi = s->has_hi;
      if (dhas_hi && (!has_hi || slice_cmp(dhi, hi) < 0)) {
        hi = dhi;
        has_hi = true;
      }
      if (has_hi && slice_cmp(lo, hi) >= 0) continue; /* no overlap */
      buf rel = BUF_INIT;
      if (strchr(s->path, '/') == NULL) {
        /* The parent's own file, seen from a sibling directory. */
        buf_append(&rel, "../", 3);
        buf_append(&rel, base, strlen(base));
        buf_push(&rel, '/');
      }
      buf_append(&rel, s->path, strlen(s->path) + 1);
      man_add_sst(&d, (const char *)rel.data, s->size, lo, hi, has_hi);
      buf_free(&rel);
    }
    /* Built under a temporary name and renamed into place, so that a
     * daughter's directory never exists without its manifest: garbage
     * collection relies on that (see tab_collect_garbage). */
    size_t tlen = ddir.len + 16;
    char *tmp = xmalloc(tlen);
    snprintf(tmp, tlen, "%s.split-tmp", dpath);
    err = env_remove_tree(e, tmp);
    if (err == NULL) err = env_mkdirs(e, tmp);
    if (err == NULL) err = man_write(e, tmp, &d);
    if (err == NULL) err = env_remove_tree(e, dpath);
    if (err == NULL) err = env_rename(e, tmp, dpath);
    free(tmp);
    man_clear(&d);
  }
  if (err == NULL) err = env_sync_dir(e, tablets_dir);
  buf_free(&ddir);
  free(tablets_dir);
  free(base);
  return err_wrap(err, "split of tablet %" PRIu64, m->tablet_id);
}

static mica_err *split_done_error(const man_state *m) {
  buf k = BUF_INIT;
  slice_escape(buf_slice(&m->split_key), &k);
  mica_err *err = err_new(MICA_NOT_SERVING,
                          "tablet %" PRIu64 " was split at \"%s\" into %" PRIu64
                          " and %" PRIu64,
                          m->tablet_id, (const char *)k.data, m->left_id,
                          m->right_id);
  buf_free(&k);
  return err;
}

/* Deletes what a crash or a fenced owner may have left in the tablet's
 * own directory: SSTables and WAL segments the manifest does not list,
 * and temporary manifests. Runs before the tablet writes anything. */
static void clean_own_dir(tablet *t) {
  char **names;
  size_t n;
  mica_err *err = env_list(t->e, t->dir, &names, &n);
  if (err != NULL) {
    LOG_W("tablet %" PRIu64 ": listing %s: %s", t->id, t->dir, err_msg(err));
    err_free(err);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const char *name = names[i];
    bool keep = true;
    uint64_t ep, num;
    if (is_sst_name(name)) {
      keep = false;
      for (size_t j = 0; j < t->man.n_ssts && !keep; j++)
        keep = strcmp(t->man.ssts[j].path, name) == 0;
    } else if (wal_parse_segment_name(name, &ep, &num)) {
      keep = false;
      for (size_t j = 0; j < t->man.n_live && !keep; j++)
        keep = t->man.live[j].epoch == ep && t->man.live[j].number == num;
    } else if (strncmp(name, MAN_FILE_NAME ".tmp.", strlen(MAN_FILE_NAME) + 5) ==
               0) {
      keep = false;
    }
    if (!keep) {
      char *p = path_join(t->dir, name);
      mica_err *rm = env_remove(t->e, p);
      if (rm == NULL) LOG_I("tablet %" PRIu64 ": removed unreferenced %s", t->id, p);
      err_free(rm);
      free(p);
    }
  }
  env_free_names(names, n);
}

static void tablet_free(tablet *t) {
  if (t == NULL) return;
  version_unref(t->cur);
  for (size_t i = 0; i < t->n_imm; i++) mt_unref(t->imms[i].mem);
  free(t->imms);
  err_free(wal_writer_close(t->wal));
  man_clear(&t->man);
  err_free(t->failed);
  err_free(t->bg_error);
  buf_free(&t->start);
  buf_free(&t->end);
  free(t->dir);
  free(t->tablets_dir);
  free(t->dir_name);
  pthread_mutex_destroy(&t->flush_mu);
  pthread_mutex_destroy(&t->compact_mu);
  pthread_mutex_destroy(&t->man_mu);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
}

/* Returns memory charged to the budget and drops the tablet without
 * flushing (after a failure, or once everything was flushed). */
static void tablet_release(tablet *t) {
  if (t->member_added) {
    res_member_remove(t->res, &t->member);
    t->member_added = false;
  }
  res_job_cancel(t->res, &t->flush_job);
  res_job_cancel(t->res, &t->compact_job);
  charge_memory(t, -(int64_t)t->active_charged);
  t->active_charged = 0;
  for (size_t i = 0; i < t->n_imm; i++) {
    res_mem_release(t->res, t->imms[i].charged);
    t->imms[i].charged = 0;
  }
  tablet_free(t);
}

static bool same_range(const man_state *m, slice start, slice end) {
  if (!slice_eq(buf_slice(&m->start_key), start)) return false;
  if (m->has_end != (end.len > 0)) return false;
  return !m->has_end || slice_eq(buf_slice(&m->end_key), end);
}

mica_err *tab_open(res_pool *res, const char *dir, uint64_t tablet_id,
                   slice start, slice end, uint64_t assign_epoch,
                   const tab_options *opts, tablet **out) {
  *out = NULL;
  tab_options def;
  if (opts == NULL) {
    tab_options_init(&def);
    opts = &def;
  }
  mica_err *err = check_options(opts);
  if (err != NULL) return err;
  if (tablet_id == 0)
    return err_new(MICA_INVALID_ARGUMENT, "tablet: id 0 is reserved");
  if (assign_epoch == 0)
    return err_new(MICA_INVALID_ARGUMENT, "tablet %" PRIu64 ": epoch 0",
                   tablet_id);
  if (end.len > 0 && slice_cmp(start, end) >= 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet %" PRIu64 ": start key not below end key",
                   tablet_id);
  env *e = res_env(res);

  tablet *t = xcalloc(1, sizeof(*t));
  t->res = res;
  t->e = e;
  t->dir = xstrdup(dir);
  split_dir(dir, &t->tablets_dir, &t->dir_name);
  t->id = tablet_id;
  t->epoch = assign_epoch;
  t->o = *opts;
  buf_append_slice(&t->start, start);
  if (end.len > 0) buf_append_slice(&t->end, end);
  t->has_end = end.len > 0;
  pthread_mutex_init(&t->flush_mu, NULL);
  pthread_mutex_init(&t->compact_mu, NULL);
  pthread_mutex_init(&t->man_mu, NULL);
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  atomic_init(&t->flush_requested, false);
  atomic_init(&t->active_bytes, 0);
  res_job_init(&t->flush_job, flush_job_fn, RES_PRIO_HIGH);
  res_job_init(&t->compact_job, compact_job_fn, RES_PRIO_LOW);
  man_init(&t->man);

  err = man_read(e, dir, &t->man);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    if (!opts->create_if_missing) {
      mica_err *w = err_new(
          MICA_NOT_FOUND,
          "tablet %" PRIu64 ": no MANIFEST in %s (a daughter of an interrupted "
          "split appears once its parent is reopened)",
          tablet_id, dir);
      err_free(err);
      tablet_free(t);
      return w;
    }
    err_free(err);
    err = env_mkdirs(e, dir);
    if (err == NULL) err = env_sync_dir(e, t->tablets_dir);
    if (err != NULL) {
      tablet_free(t);
      return err;
    }
    man_clear(&t->man);
    t->man.tablet_id = tablet_id;
    t->man.epoch = assign_epoch;
    t->man.next_file = 1;
    buf_append_slice(&t->man.start_key, start);
    buf_append_slice(&t->man.end_key, end);
    t->man.has_end = end.len > 0;
  } else if (err != NULL) {
    tablet_free(t);
    return err_wrap(err, "open tablet %" PRIu64, tablet_id);
  }
  man_state *m = &t->man;
  if (m->tablet_id != tablet_id) {
    err = err_new(MICA_INVALID_ARGUMENT,
                  "tablet %" PRIu64 ": %s/MANIFEST belongs to tablet %" PRIu64,
                  tablet_id, dir, m->tablet_id);
  } else if (m->epoch > assign_epoch) {
    err = err_new(MICA_STALE_EPOCH,
                  "tablet %" PRIu64 ": opened with assign_epoch %" PRIu64
                  " but epoch %" PRIu64 " already owns it",
                  tablet_id, assign_epoch, m->epoch);
  } else if (!same_range(m, start, end)) {
    err = err_new(MICA_INVALID_ARGUMENT,
                  "tablet %" PRIu64 ": key range differs from its MANIFEST",
                  tablet_id);
  } else if (m->state == MAN_SPLITTING) {
    /* The split was decided; finish it so the daughters can open. */
    m->epoch = assign_epoch;
    err = write_daughters(e, dir, m);
    if (err == NULL) {
      m->state = MAN_SPLIT;
      err = man_write(e, dir, m);
    }
    if (err == NULL) err = split_done_error(m);
  } else if (m->state == MAN_SPLIT) {
    err = split_done_error(m);
  } else if (m->state == MAN_MERGED) {
    err = err_new(MICA_NOT_SERVING,
                  "tablet %" PRIu64 " was merged into %" PRIu64, m->tablet_id,
                  m->left_id);
  }
  if (err != NULL) {
    tablet_free(t);
    return err;
  }

  /* Open every SSTable, newest first. */
  size_t nf = m->n_ssts;
  tfile **files = xcalloc(nf + 2, sizeof(*files));
  uint64_t max_seq = m->last_seq;
  for (size_t i = 0; i < nf && err == NULL; i++) {
    const man_sst *s = &m->ssts[i];
    err = tfile_open(e, res_cache(res), dir, s->path, s->size,
                     buf_slice(&s->lo), buf_slice(&s->hi), s->has_hi,
                     &files[i]);
    if (err == NULL) {
      uint64_t ls = sst_reader_properties(files[i]->r)->largest_seq;
      if (ls > max_seq) max_seq = ls;
    }
  }
  if (err != NULL) err = err_wrap(err, "open tablet %" PRIu64, tablet_id);

  /* Replay every live WAL segment into one memtable. */
  memtable *replayed = mt_new();
  wbatch *b = wbatch_new();
  for (size_t i = 0; i < m->n_live && err == NULL; i++) {
    char name[96];
    wal_segment_name(name, sizeof(name), m->live[i].epoch, m->live[i].number);
    char *path = path_join(dir, name);
    replay_ctx c = {replayed, b, path, 0};
    wal_replay_stats st;
    memset(&st, 0, sizeof(st));
    err = wal_replay(e, path, replay_record, &c, &st);
    if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
      mica_err *w = err_new(MICA_CORRUPTION,
                            "WAL segment %s listed in %s/MANIFEST is missing",
                            path, dir);
      err_free(err);
      err = w;
    }
    if (c.max_seq > max_seq) max_seq = c.max_seq;
    t->replayed_records += st.records;
    t->dropped_bytes += st.dropped;
    if (err == NULL && st.dropped > 0)
      LOG_W("tablet %" PRIu64 ": %s: ignored a torn tail of %" PRIu64
            " bytes at offset %" PRIu64,
            tablet_id, path, st.dropped, st.valid_end);
    free(path);
  }
  wbatch_free(b);
  if (err != NULL) {
    for (size_t i = 0; i < nf; i++) tfile_unref(files[i]);
    free(files);
    mt_unref(replayed);
    tablet_free(t);
    return err_wrap(err, "open tablet %" PRIu64, tablet_id);
  }

  t->last_seq = t->visible_seq = max_seq;
  t->next_file = m->epoch == assign_epoch ? (m->next_file ? m->next_file : 1) : 1;
  clean_own_dir(t);

  /* Make the replayed writes durable in this owner's own SSTable. */
  tfile *flushed = NULL;
  if (mt_count(replayed) > 0) {
    iter *in = mt_iter_new(replayed);
    err = write_sst(t, in, false, t->next_file++, &flushed, NULL);
    iter_close(in);
  }
  mt_unref(replayed);
  if (flushed != NULL) {
    memmove(&files[1], &files[0], nf * sizeof(*files));
    files[0] = flushed;
    nf++;
  }

  /* Our own segment, then one manifest write that lists it, adds the
   * flushed file and retires every older segment. */
  uint64_t seg = t->next_file++;
  char *segpath = NULL;
  if (err == NULL) {
    char name[96];
    wal_segment_name(name, sizeof(name), assign_epoch, seg);
    segpath = path_join(dir, name);
    err = wal_writer_open(e, segpath, assign_epoch, seg, &t->wal);
  }
  man_state nm;
  man_init(&nm);
  if (err == NULL) {
    man_copy(&nm, m);
    man_set_files(&nm, files, nf);
    for (size_t i = 0; i < m->n_live; i++)
      man_add_retired(&nm, m->live[i].epoch, m->live[i].number);
    nm.n_live = 0;
    man_add_live(&nm, assign_epoch, seg);
    nm.last_seq = max_seq;
    nm.next_file = t->next_file;
    nm.state = MAN_LIVE;
    pthread_mutex_lock(&t->man_mu);
    err = write_manifest(t, &nm);
    pthread_mutex_unlock(&t->man_mu);
  }
  if (err != NULL) {
    /* The new files stay: the manifest write may have happened, and the
     * next open deletes whatever no manifest lists. */
    man_clear(&nm);
    err_free(wal_writer_close(t->wal));
    t->wal = NULL;
    for (size_t i = 0; i < nf; i++) tfile_unref(files[i]);
    free(files);
    free(segpath);
    tablet_free(t);
    return err_wrap(err, "open tablet %" PRIu64, tablet_id);
  }
  free(segpath);
  man_clear(&t->man);
  t->man = nm;
  t->wal_number = seg;

  /* The retired segments are no longer read by anyone: delete them and
   * forget those that are gone. */
  size_t keep = 0;
  for (size_t i = 0; i < t->man.n_retired; i++) {
    char name[96];
    wal_segment_name(name, sizeof(name), t->man.retired[i].epoch,
                     t->man.retired[i].number);
    char *p = path_join(dir, name);
    mica_err *rm = env_remove(e, p);
    if (rm != NULL && err_code(rm) != MICA_NOT_FOUND)
      t->man.retired[keep++] = t->man.retired[i];
    err_free(rm);
    free(p);
  }
  t->man.n_retired = keep;

  memtable *mem = mt_new();
  t->cur = version_new(mem, NULL, 0, files, nf);
  mt_unref(mem);
  for (size_t i = 0; i < nf; i++) tfile_unref(files[i]);
  free(files);

  t->member.active_bytes = member_active_bytes;
  t->member.request_flush = member_request_flush;
  t->member.arg = t;
  res_member_add(res, &t->member);
  t->member_added = true;
  if (opts->auto_compact && nf >= (size_t)opts->compaction_trigger)
    res_job_schedule(res, &t->compact_job);
  *out = t;
  return NULL;
}

mica_err *tab_close(tablet *t) {
  if (t == NULL) return NULL;
  pthread_mutex_lock(&t->mu);
  t->closing = true;
  while (t->queue_head != NULL || t->writing || t->rotating)
    pthread_cond_wait(&t->cv, &t->mu);
  bool failed = t->failed != NULL;
  pthread_mutex_unlock(&t->mu);
  res_member_remove(t->res, &t->member);
  t->member_added = false;
  res_job_cancel(t->res, &t->flush_job);
  res_job_cancel(t->res, &t->compact_job);
  mica_err *err = NULL;
  if (failed) {
    pthread_mutex_lock(&t->mu);
    err = err_dup(t->failed);
    pthread_mutex_unlock(&t->mu);
  } else {
    pthread_mutex_lock(&t->mu);
    err = rotate_locked(t, false);
    pthread_mutex_unlock(&t->mu);
    if (err == NULL) err = flush_all_imm(t);
  }
  tablet_release(t);
  return err;
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */

static mica_err *range_error(const tablet *t, slice key) {
  buf k = BUF_INIT;
  slice_escape(slice_make(key.data, key.len > 64 ? 64 : key.len), &k);
  mica_err *err = err_new(MICA_OUT_OF_RANGE,
                          "key \"%s%s\" is outside tablet %" PRIu64, k.data,
                          key.len > 64 ? "..." : "", t->id);
  buf_free(&k);
  return err;
}

typedef struct check_ctx {
  const tablet *t;
  uint64_t puts, deletes;
} check_ctx;

static mica_err *check_entry(void *arg, uint64_t seq, uint8_t kind, slice key,
                             slice value) {
  (void)seq;
  check_ctx *c = arg;
  const tablet *t = c->t;
  if (key.len == 0)
    return err_new(MICA_INVALID_ARGUMENT, "empty key");
  if (key.len > t->o.max_key)
    return err_new(MICA_INVALID_ARGUMENT, "key of %zu bytes exceeds %zu",
                   key.len, t->o.max_key);
  if (kind == IKEY_PUT && value.len > t->o.max_value)
    return err_new(MICA_INVALID_ARGUMENT, "value of %zu bytes exceeds %zu",
                   value.len, t->o.max_value);
  if (!t_in_range(t, key)) return range_error(t, key);
  if (kind == IKEY_PUT) c->puts++;
  else c->deletes++;
  return NULL;
}

/* Waits until the tablet can take a write: room in the memtable (rotating
 * when full), not too many immutable memtables or SSTables, memory under
 * the server's limit. Caller holds mu. */
static mica_err *make_room(tablet *t) {
  uint64_t start = 0, deadline = 0;
  bool stalled = false;
  mica_err *err = NULL;
  for (;;) {
    if (t->failed != NULL) {
      err = err_dup(t->failed);
      break;
    }
    if (t->closing) {
      err = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is closing", t->id);
      break;
    }
    const char *why = NULL;
    char detail[160];
    if (t->rotating) {
      why = "";
    } else if (mt_memory_usage(t->cur->mem) >= t->o.memtable_bytes &&
               mt_count(t->cur->mem) > 0) {
      if (t->n_imm < (size_t)t->o.max_immutable) {
        err = rotate_locked(t, true);
        if (err != NULL) {
          fail_locked(t, err_dup(err));
          break;
        }
        continue;
      }
      snprintf(detail, sizeof(detail),
               "%zu immutable memtables waiting for flush", t->n_imm);
      why = detail;
    } else if (t->cur->n_files >= (size_t)t->o.stall_sst_count) {
      snprintf(detail, sizeof(detail), "%zu SSTables waiting for compaction",
               t->cur->n_files);
      why = detail;
      res_job_schedule(t->res, &t->compact_job);
    } else if (res_mem_usage(t->res) > 2 * res_mem_budget(t->res)) {
      snprintf(detail, sizeof(detail),
               "memtables of all tablets hold %zu bytes, over twice the "
               "budget of %zu",
               res_mem_usage(t->res), res_mem_budget(t->res));
      why = detail;
    }
    if (why == NULL) break;
    if (*why == '\0') { /* a rotation in progress: short, not a stall */
      pthread_cond_wait(&t->cv, &t->mu);
      continue;
    }
    if (!stalled) {
      stalled = true;
      start = env_now_micros(t->e);
      deadline = start + t->o.stall_timeout_micros;
      stat_add(&t->st_stalls, 1);
    }
    if (!wait_until(t, deadline)) {
      stat_add(&t->st_stall_timeouts, 1);
      err = err_new(MICA_UNAVAILABLE,
                    "write stall: tablet %" PRIu64 ": %s for %" PRIu64
                    " ms%s%s",
                    t->id, why, t->o.stall_timeout_micros / 1000,
                    t->bg_error ? "; last background error: " : "",
                    t->bg_error ? err_msg(t->bg_error) : "");
      break;
    }
  }
  if (stalled)
    stat_add(&t->st_stall_micros, env_now_micros(t->e) - start);
  return err;
}

/* Largest group a leader takes: LevelDB's rule, so that a small write is
 * not held up behind a megabyte of others. */
static size_t group_limit(size_t first) {
  return first <= (128u << 10) ? first + (128u << 10) : (1u << 20);
}

/* Removes the leader's group (up to and including `last`) from the queue,
 * hands each member the outcome, and wakes the next head. Caller holds
 * mu. */
static void finish_group(tablet *t, wnode *last, const mica_err *err) {
  for (;;) {
    wnode *w = t->queue_head;
    t->queue_head = w->next;
    if (t->queue_head == NULL) t->queue_tail = NULL;
    w->err = err_dup(err);
    w->done = true;
    pthread_cond_signal(&w->cv);
    if (w == last) break;
  }
  if (t->queue_head != NULL) pthread_cond_signal(&t->queue_head->cv);
}

mica_err *tab_write(tablet *t, wbatch *b, bool sync) {
  uint32_t count = wbatch_count(b);
  if (count == 0) return NULL;
  if (wbatch_byte_size(b) > t->o.max_batch)
    return err_new(MICA_INVALID_ARGUMENT, "batch of %zu bytes exceeds %zu",
                   wbatch_byte_size(b), t->o.max_batch);
  check_ctx cc = {t, 0, 0};
  mica_err *err = wbatch_iterate(b, check_entry, &cc);
  if (err != NULL) return err_wrap(err, "tablet %" PRIu64, t->id);

  wnode w;
  memset(&w, 0, sizeof(w));
  w.b = b;
  w.sync = sync;
  pthread_cond_init(&w.cv, NULL);
  pthread_mutex_lock(&t->mu);
  if (t->queue_tail != NULL) t->queue_tail->next = &w;
  else t->queue_head = &w;
  t->queue_tail = &w;
  while (!w.done && t->queue_head != &w) pthread_cond_wait(&w.cv, &t->mu);
  if (w.done) {
    /* A leader wrote this batch as part of its group. */
    pthread_mutex_unlock(&t->mu);
    pthread_cond_destroy(&w.cv);
    err = w.err;
    goto out;
  }

  /* The leader. */
  err = make_room(t);
  if (err != NULL) {
    finish_group(t, &w, err);
    err_free(w.err);
    pthread_mutex_unlock(&t->mu);
    pthread_cond_destroy(&w.cv);
    return err;
  }
  /* Take the group and log it. A group is synced if any member asked. */
  wnode *last = &w;
  size_t bytes = wbatch_byte_size(b), limit = group_limit(bytes);
  bool group_sync = sync;
  for (wnode *n = w.next; n != NULL; n = n->next) {
    if (bytes + wbatch_byte_size(n->b) > limit) break;
    bytes += wbatch_byte_size(n->b);
    group_sync |= n->sync;
    last = n;
  }
  uint64_t ticket = 0;
  for (wnode *n = &w;; n = n->next) {
    wbatch_set_seq(n->b, t->last_seq + 1);
    err = wal_add(t->wal, wbatch_data(n->b), group_sync, &ticket);
    if (err != NULL) break;
    t->last_seq += wbatch_count(n->b);
    if (n == last) break;
  }
  if (err != NULL) {
    /* Records already added may reach the file: fail the tablet so that
     * nothing after them is acknowledged, and reopen sorts it out. */
    fail_locked(t, err_dup(err));
    finish_group(t, last, err);
    err_free(w.err);
    pthread_mutex_unlock(&t->mu);
    pthread_cond_destroy(&w.cv);
    return err;
  }
  uint64_t group_last_seq = t->last_seq;
  wal_writer *wal = t->wal;
  memtable *mem = t->cur->mem;
  t->writing = true;
  pthread_mutex_unlock(&t->mu);

  err = wal_commit(wal, ticket);
  int64_t delta = 0;
  if (err == NULL) {
    size_t before = mt_memory_usage(mem);
    for (wnode *n = &w;; n = n->next) {
      mt_apply_batch(mem, n->b);
      if (n == last) break;
    }
    delta = (int64_t)(mt_memory_usage(mem) - before);
  }

  pthread_mutex_lock(&t->mu);
  t->writing = false;
  if (err != NULL) {
    fail_locked(t, err_dup(err));
  } else {
    t->visible_seq = group_last_seq;
    t->active_charged += (size_t)delta;
    atomic_store(&t->active_bytes, t->active_charged);
  }
  finish_group(t, last, err);
  pthread_cond_broadcast(&t->cv); /* rotation, close and split wait */
  pthread_mutex_unlock(&t->mu);
  pthread_cond_destroy(&w.cv);
  err_free(err);
  err = w.err;
  charge_memory(t, delta);

out:
  if (err != NULL) return err;
  stat_add(&t->st_puts, cc.puts);
  stat_add(&t->st_deletes, cc.deletes);
  stat_add(&t->st_batches, 1);
  stat_add(&t->st_bytes, wbatch_byte_size(b));
  return NULL;
}

/* Single puts and deletes reuse one batch per thread instead of
 * allocating one per call; the key's destructor frees it when the thread
 * exits. A batch is only read by tab_write until it returns. */
static pthread_key_t g_batch_key;
static pthread_once_t g_batch_once = PTHREAD_ONCE_INIT;

static void batch_key_free(void *b) { wbatch_free(b); }
static void batch_key_init(void) {
  pthread_key_create(&g_batch_key, batch_key_free);
}

static wbatch *thread_batch(void) {
  pthread_once(&g_batch_once, batch_key_init);
  wbatch *b = pthread_getspecific(g_batch_key);
  if (b == NULL) {
    b = wbatch_new();
    pthread_setspecific(g_batch_key, b);
  }
  wbatch_clear(b);
  return b;
}

mica_err *tab_put(tablet *t, slice key, slice value, bool sync) {
  wbatch *b = thread_batch();
  wbatch_put(b, key, value);
  return tab_write(t, b, sync);
}

mica_err *tab_delete(tablet *t, slice key, bool sync) {
  wbatch *b = thread_batch();
  wbatch_delete(b, key);
  return tab_write(t, b, sync);
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */

struct tab_snapshot {
  version *v;
  uint64_t seq;
};

tab_snapshot *tab_snapshot_new(tablet *t) {
  tab_snapshot *s = xcalloc(1, sizeof(*s));
  s->v = current_version(t, &s->seq);
  return s;
}

void tab_snapshot_free(tab_snapshot *s) {
  if (s == NULL) return;
  version_unref(s->v);
  free(s);
}

uint64_t tab_snapshot_seq(const tab_snapshot *s) { return s->seq; }

mica_err *tab_get(tablet *t, const tab_snapshot *snap, slice key,
                  buf *value) {
  if (key.len == 0 || key.len > t->o.max_key)
    return err_new(MICA_INVALID_ARGUMENT, "tablet %" PRIu64
                   ": key of %zu bytes not in 1..%zu", t->id, key.len,
                   t->o.max_key);
  if (!t_in_range(t, key)) return range_error(t, key);
  stat_add(&t->st_gets, 1);
  uint64_t seq;
  version *v;
  if (snap != NULL) {
    v = snap->v;
    version_ref(v);
    seq = snap->seq;
  } else {
    v = current_version(t, &seq);
  }
  mica_err *err = NULL;
  int found = MT_ABSENT;
  found = mt_get(v->mem, key, seq, value);
  for (size_t i = 0; found == MT_ABSENT && i < v->n_imm; i++)
    found = mt_get(v->imm[i], key, seq, value);
  for (size_t i = 0; found == MT_ABSENT && i < v->n_files; i++) {
    tfile *f = v->files[i];
    if (!in_range(key, buf_slice(&f->lo), buf_slice(&f->hi), f->has_hi))
      continue;
    sst_get_result r;
    err = sst_reader_get(f->r, key, seq, &r, value, NULL);
    if (err != NULL) break;
    found = r == SST_GET_PUT ? MT_FOUND
            : r == SST_GET_DELETED ? MT_DELETED
                                   : MT_ABSENT;
  }
  version_unref(v);
  if (err != NULL) return err;
  if (found != MT_FOUND) {
    buf_clear(value);
    return err_new(MICA_NOT_FOUND, "key not found");
  }
  return NULL;
}

/* The smallest key greater than every key starting with `prefix`; false
 * when there is none (the prefix is all 0xff). */
static bool prefix_successor(slice prefix, buf *out) {
  size_t n = prefix.len;
  while (n > 0 && prefix.data[n - 1] == 0xff) n--;
  if (n == 0) return false;
  buf_clear(out);
  buf_append(out, prefix.data, n);
  out->data[n - 1]++;
  return true;
}

mica_err *tab_scan(tablet *t, const tab_scan_options *o, iter **out) {
  *out = NULL;
  tab_scan_options def;
  if (o == NULL) {
    tab_scan_options_init(&def);
    o = &def;
  }
  if (o->start.len > 0 && o->end.len > 0 && slice_cmp(o->start, o->end) > 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet %" PRIu64 ": scan start is after its end", t->id);
  /* lo = max(tablet start, scan start, prefix); hi = min(tablet end, scan
   * end, successor of prefix). */
  buf lo = BUF_INIT, hi = BUF_INIT, succ = BUF_INIT;
  bool has_hi = t->has_end;
  buf_append_slice(&lo, t_start(t));
  if (has_hi) buf_append_slice(&hi, t_end(t));
  if (o->start.len > 0 && slice_cmp(o->start, buf_slice(&lo)) > 0) {
    buf_clear(&lo);
    buf_append_slice(&lo, o->start);
  }
  if (o->prefix.len > 0 && slice_cmp(o->prefix, buf_slice(&lo)) > 0) {
    buf_clear(&lo);
    buf_append_slice(&lo, o->prefix);
  }
  if (o->end.len > 0 && (!has_hi || slice_cmp(o->end, buf_slice(&hi)) < 0)) {
    buf_clear(&hi);
    buf_append_slice(&hi, o->end);
    has_hi = true;
  }
  if (o->prefix.len > 0 && prefix_successor(o->prefix, &succ) &&
      (!has_hi || slice_cmp(buf_slice(&succ), buf_slice(&hi)) < 0)) {
    buf_clear(&hi);
    buf_append_slice(&hi, buf_slice(&succ));
    has_hi = true;
  }
  stat_add(&t->st_scans, 1);
  uint64_t seq;
  version *v;
  if (o->snap != NULL) {
    v = o->snap->v;
    version_ref(v);
    seq = o->snap->seq;
  } else {
    v = current_version(t, &seq);
  }
  /* An empty range still gets an iterator (with no entries). */
  iter *in = version_iter(v, buf_slice(&lo), buf_slice(&hi), has_hi,
                          o->fill_cache);
  iter *u = user_iter_new(in, v, seq);
  if (has_hi && lo.len > 0 && slice_cmp(buf_slice(&lo), buf_slice(&hi)) >= 0) {
    iter_close(u);
    u = iter_empty(NULL);
  }
  buf_free(&lo);
  buf_free(&hi);
  buf_free(&succ);
  scan_iter *s = xcalloc(1, sizeof(*s));
  s->base.ops = &sc_ops;
  s->u = u;
  s->rev = o->reverse;
  s->limit = o->limit;
  sc_seek_to_first(&s->base);
  *out = &s->base;
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Maintenance                                                         */

mica_err *tab_flush(tablet *t) {
  pthread_mutex_lock(&t->mu);
  mica_err *err = NULL;
  if (t->failed != NULL) err = err_dup(t->failed);
  else if (t->closing)
    err = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is closing", t->id);
  else {
    while (t->rotating) pthread_cond_wait(&t->cv, &t->mu);
    if (mt_count(t->cur->mem) > 0) {
      err = rotate_locked(t, true);
      if (err != NULL) fail_locked(t, err_dup(err));
    }
  }
  pthread_mutex_unlock(&t->mu);
  if (err == NULL) err = flush_all_imm(t);
  return err;
}

mica_err *tab_compact(tablet *t) {
  mica_err *err = tab_flush(t);
  bool did;
  if (err == NULL) err = compact_once(t, true, &did);
  return err;
}

mica_err *tab_split(tablet *t, slice split_key, uint64_t left_id,
                    uint64_t right_id, const tab_options *opts,
                    tablet **left, tablet **right) {
  if (left != NULL) *left = NULL;
  if (right != NULL) *right = NULL;
  if (split_key.len == 0 || split_key.len > t->o.max_key ||
      !t_in_range(t, split_key) || slice_eq(split_key, t_start(t)))
    return err_new(MICA_INVALID_ARGUMENT,
                   "split of tablet %" PRIu64
                   ": the key must lie strictly inside the tablet's range",
                   t->id);
  if (left_id == 0 || right_id == 0 || left_id == right_id ||
      left_id == t->id || right_id == t->id)
    return err_new(MICA_INVALID_ARGUMENT,
                   "split of tablet %" PRIu64 ": bad daughter ids %" PRIu64
                   ", %" PRIu64,
                   t->id, left_id, right_id);
  tab_options o = opts != NULL ? *opts : t->o;
  char *tablets_dir = xstrdup(t->tablets_dir);
  uint64_t epoch = t->epoch;
  buf lstart = BUF_INIT, rend = BUF_INIT;
  buf_append_slice(&lstart, t_start(t));
  buf_append_slice(&rend, t_end(t));

  /* Stop writes and background work, flush everything. */
  pthread_mutex_lock(&t->mu);
  t->closing = true;
  while (t->queue_head != NULL || t->writing || t->rotating)
    pthread_cond_wait(&t->cv, &t->mu);
  mica_err *err = t->failed != NULL ? err_dup(t->failed) : NULL;
  pthread_mutex_unlock(&t->mu);
  res_member_remove(t->res, &t->member);
  t->member_added = false;
  res_job_cancel(t->res, &t->flush_job);
  res_job_cancel(t->res, &t->compact_job);
  if (err == NULL) {
    pthread_mutex_lock(&t->mu);
    err = rotate_locked(t, false);
    pthread_mutex_unlock(&t->mu);
  }
  if (err == NULL) err = flush_all_imm(t);

  /* Commit: SPLITTING (intent), daughters, SPLIT (done). */
  if (err == NULL) {
    pthread_mutex_lock(&t->man_mu);
    man_state m;
    man_copy(&m, &t->man);
    m.state = MAN_SPLITTING;
    m.left_id = left_id;
    m.right_id = right_id;
    buf_clear(&m.split_key);
    buf_append_slice(&m.split_key, split_key);
    m.last_seq = t->last_seq;
    err = write_manifest(t, &m);
    if (err == NULL) err = write_daughters(t->e, t->dir, &m);
    if (err == NULL) {
      m.state = MAN_SPLIT;
      err = write_manifest(t, &m);
    }
    man_clear(&m);
    pthread_mutex_unlock(&t->man_mu);
  }
  res_pool *res = t->res;
  buf split_copy = BUF_INIT;
  buf_append_slice(&split_copy, split_key);
  tablet_release(t);

  buf dpath = BUF_INIT;
  if (err == NULL && left != NULL) {
    tab_dir_path(tablets_dir, left_id, &dpath);
    err = tab_open(res, (const char *)dpath.data, left_id, buf_slice(&lstart),
                   buf_slice(&split_copy), epoch, &o, left);
  }
  if (err == NULL && right != NULL) {
    tab_dir_path(tablets_dir, right_id, &dpath);
    err = tab_open(res, (const char *)dpath.data, right_id,
                   buf_slice(&split_copy), buf_slice(&rend), epoch, &o, right);
    if (err != NULL && left != NULL) {
      err_free(tab_close(*left));
      *left = NULL;
    }
  }
  buf_free(&dpath);
  buf_free(&split_copy);
  buf_free(&lstart);
  buf_free(&rend);
  free(tablets_dir);
  return err;
}

/* ------------------------------------------------------------------ */
/* Garbage collection of split parents' files                          */

static bool all_digits(const char *s) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tablet directory names under `tablets_dir`, sorted. */
static mica_err *list_tablet_dirs(env *e, const char *tablets_dir,
                                  char ***out, size_t *n) {
  char **names;
  size_t cnt;
  mica_err *err = env_list(e, tablets_dir, &names, &cnt);
  if (err != NULL) return err;
  size_t k = 0;
  for (size_t i = 0; i < cnt; i++) {
    if (all_digits(names[i])) names[k++] = names[i];
    else free(names[i]);
  }
  if (k > 0) qsort(names, k, sizeof(*names), cmp_str);
  *out = names;
  *n = k;
  return NULL;
}

static bool same_names(char **a, size_t na, char **b, size_t nb) {
  if (na != nb) return false;
  for (size_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i]) != 0) return false;
  return true;
}

mica_err *tab_collect_garbage(env *e, const char *tablets_dir,
                              uint64_t *removed) {
  if (removed != NULL) *removed = 0;
  /* References only move from a parent to its daughters (or from the
   * inputs of a merge to the merged tablet, tablet_merge.h), and the new
   * tablets appear (by rename) with their manifests before the old ones
   * retire: so
   * a scan that sees the same set of directories before and after reading
   * every manifest has seen every live reference (see docs/engine.md).
   * Otherwise it deletes nothing and tries again. */
  for (int attempt = 0; attempt < 3; attempt++) {
    char **before, **after;
    size_t nb, na;
    mica_err *err = list_tablet_dirs(e, tablets_dir, &before, &nb);
    if (err != NULL) return err;
    char **refs = NULL;
    size_t nrefs = 0;
    char **retired = NULL;
    size_t nretired = 0;
    bool complete = true;
    for (size_t i = 0; i < nb && complete; i++) {
      char *dir = path_join(tablets_dir, before[i]);
      man_state m;
      man_init(&m);
      mica_err *merr = man_read(e, dir, &m);
      free(dir);
      if (merr != NULL && err_code(merr) == MICA_NOT_FOUND) {
        /* A tablet being created (it references nothing yet: daughters
         * appear by rename, manifest included) or a retired one being
         * removed (its references no longer count). */
        err_free(merr);
        continue;
      }
      if (merr != NULL) {
        /* Damaged or unreadable: not knowing what it references, delete
         * nothing this round. */
        LOG_W("garbage collection: %s", err_msg(merr));
        err_free(merr);
        complete = false;
        break;
      }
      if (m.state == MAN_SPLIT || m.state == MAN_MERGED) {
        retired = xrealloc(retired, (nretired + 1) * sizeof(*retired));
        retired[nretired++] = xstrdup(before[i]);
      } else {
        for (size_t j = 0; j < m.n_ssts; j++) {
          const char *p = m.ssts[j].path;
          size_t len = strlen(before[i]) + strlen(p) + 2;
          char *canon = xmalloc(len);
          if (strncmp(p, "../", 3) == 0) snprintf(canon, len, "%s", p + 3);
          else snprintf(canon, len, "%s/%s", before[i], p);
          refs = xrealloc(refs, (nrefs + 1) * sizeof(*refs));
          refs[nrefs++] = canon;
        }
      }
      man_clear(&m);
    }
    err = list_tablet_dirs(e, tablets_dir, &after, &na);
    bool stable = err == NULL && complete && same_names(before, nb, after, na);
    if (err == NULL) env_free_names(after, na);
    env_free_names(before, nb);
    if (stable) {
      if (nrefs > 0) qsort(refs, nrefs, sizeof(*refs), cmp_str);
      for (size_t i = 0; i < nretired && err == NULL; i++) {
        char *dir = path_join(tablets_dir, retired[i]);
        char **files;
        size_t nfiles;
        err = env_list(e, dir, &files, &nfiles);
        if (err != NULL) {
          free(dir);
          break;
        }
        bool still_used = false;
        for (size_t j = 0; j < nfiles; j++) {
          uint64_t ep, num;
          if (wal_parse_segment_name(files[j], &ep, &num)) {
            /* A split parent flushed everything before the split began;
             * a segment left by an interrupted cleanup holds nothing. */
            char *p = path_join(dir, files[j]);
            mica_err *rm = env_remove(e, p);
            if (rm == NULL && removed != NULL) (*removed)++;
            err_free(rm);
            free(p);
            continue;
          }
          if (!is_sst_name(files[j])) continue;
          size_t len = strlen(retired[i]) + strlen(files[j]) + 2;
          char *canon = xmalloc(len);
          snprintf(canon, len, "%s/%s", retired[i], files[j]);
          if (nrefs > 0 &&
              bsearch(&canon, refs, nrefs, sizeof(*refs), cmp_str) != NULL) {
            still_used = true;
          } else {
            char *p = path_join(dir, files[j]);
            mica_err *rm = env_remove(e, p);
            if (rm == NULL && removed != NULL) (*removed)++;
            err_free(rm);
            free(p);
          }
          free(canon);
        }
        env_free_names(files, nfiles);
        if (!still_used) {
          /* Nothing references the retired tablet any more. */
          err = env_remove_tree(e, dir);
          if (err == NULL && removed != NULL) (*removed)++;
        }
        free(dir);
      }
    }
    for (size_t i = 0; i < nrefs; i++) free(refs[i]);
    free(refs);
    for (size_t i = 0; i < nretired; i++) free(retired[i]);
    free(retired);
    if (err != NULL || stable) return err;
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Information                                                         */

uint64_t tab_id(const tablet *t) { return t->id; }
uint64_t tab_epoch(const tablet *t) { return t->epoch; }
slice tab_start(const tablet *t) { return t_start(t); }
slice tab_end(const tablet *t) { return t_end(t); }

uint64_t tab_last_seq(tablet *t) {
  pthread_mutex_lock(&t->mu);
  uint64_t s = t->visible_seq;
  pthread_mutex_unlock(&t->mu);
  return s;
}

uint64_t tab_approximate_size(tablet *t) {
  version *v = current_version(t, NULL);
  uint64_t n = mt_memory_usage(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) n += mt_memory_usage(v->imm[i]);
  for (size_t i = 0; i < v->n_files; i++) n += v->files[i]->est_bytes;
  version_unref(v);
  return n;
}

uint64_t tab_approximate_keys(tablet *t) {
  version *v = current_version(t, NULL);
  uint64_t n = mt_count(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) n += mt_count(v->imm[i]);
  for (size_t i = 0; i < v->n_files; i++) n += v->files[i]->est_keys;
  version_unref(v);
  return n;
}

typedef struct block_mark {
  size_t key_off;   /* in the shared key buffer while collecting */
  slice key;        /* set once the buffer stops growing */
  uint64_t bytes;
} block_mark;

static int cmp_mark(const void *a, const void *b) {
  return slice_cmp(((const block_mark *)a)->key, ((const block_mark *)b)->key);
}

/* True when the tablet has a live key below `m` and one at or above it. */
static bool splits_live_keys(tablet *t, slice m) {
  iter *it;
  tab_scan_options o;
  tab_scan_options_init(&o);
  o.fill_cache = false;
  if (tab_scan(t, &o, &it) != NULL) return false;
  bool ok = iter_valid(it) && slice_cmp(iter_key(it), m) < 0;
  if (ok) {
    iter_seek(it, m);
    ok = iter_valid(it);
  }
  iter_close(it);
  return ok;
}

mica_err *tab_middle_key(tablet *t, buf *out) {
  version *v = current_version(t, NULL);
  /* Every data block of every file inside the range, as (last key, bytes),
   * sorted by key; the middle is where the running sum passes half. */
  buf keys = BUF_INIT;
  block_mark *marks = NULL;
  size_t nm = 0, cap = 0;
  uint64_t total = 0;
  tfile *largest = NULL;
  for (size_t i = 0; i < v->n_files; i++) {
    tfile *f = v->files[i];
    if (largest == NULL || f->est_bytes > largest->est_bytes) largest = f;
    size_t nb = sst_reader_num_blocks(f->r);
    for (size_t j = 0; j < nb; j++) {
      sst_block_info bi;
      sst_reader_block_info(f->r, j, &bi);
      if (bi.index_key.len < IKEY_TRAILER) continue;
      slice uk = ikey_user_key(bi.index_key);
      /* Also inside the file's own listed range: a merged tablet may list
       * one shared file twice, each entry for one input's half. */
      if (!in_range(uk, t_start(t), t_end(t), t->has_end) ||
          !in_range(uk, buf_slice(&f->lo), buf_slice(&f->hi), f->has_hi))
        continue;
      if (nm == cap) {
        cap = cap ? 2 * cap : 256;
        marks = xrealloc(marks, cap * sizeof(*marks));
      }
      marks[nm++] = (block_mark){keys.len, slice_make(NULL, uk.len), bi.size};
      buf_append_slice(&keys, uk);
      total += bi.size;
    }
  }
  mica_err *err = NULL;
  bool found = false;
  if (nm > 0) {
    for (size_t i = 0; i < nm; i++)
      marks[i].key = slice_make(keys.data + marks[i].key_off, marks[i].key.len);
    qsort(marks, nm, sizeof(*marks), cmp_mark);
    uint64_t sum = 0;
    for (size_t i = 0; i < nm && !found; i++) {
      sum += marks[i].bytes;
      if (2 * sum >= total) {
        /* Try this block boundary, then the following ones. */
        for (size_t j = i; j < nm && j < i + 4 && !found; j++) {
          slice m = marks[j].key;
          if (splits_live_keys(t, m)) {
            buf_clear(out);
            buf_append_slice(out, m);
            found = true;
          }
        }
        break;
      }
    }
  }
  if (!found && largest != NULL) {
    buf m = BUF_INIT;
    slice hi = t->has_end ? t_end(t) : slice_make(NULL, 0);
    slice lo = t->start.len > 0 ? t_start(t) : slice_make(NULL, 0);
    mica_err *merr = sst_reader_middle_key(largest->r, lo, hi, &m);
    if (merr == NULL && splits_live_keys(t, buf_slice(&m))) {
      buf_clear(out);
      buf_append_slice(out, buf_slice(&m));
      found = true;
    }
    err_free(merr);
    buf_free(&m);
  }
  if (!found) {
    /* Small tablets whose data is still in memory: walk the keys. */
    iter *it;
    tab_scan_options o;
    tab_scan_options_init(&o);
    o.snap = NULL;
    err = tab_scan(t, &o, &it);
    if (err == NULL) {
      uint64_t all = 0, n = 0;
      for (; iter_valid(it); iter_next(it)) {
        all += iter_key(it).len + iter_value(it).len;
        n++;
      }
      if (n >= 2) {
        uint64_t sum = 0;
        iter_seek_to_first(it);
        iter_next(it); /* the first key can never be the split key */
        for (; iter_valid(it); iter_next(it)) {
          sum += iter_key(it).len + iter_value(it).len;
          if (2 * sum >= all || !iter_valid(it)) break;
        }
        if (!iter_valid(it)) iter_seek_to_last(it);
        buf_clear(out);
        buf_append_slice(out, iter_key(it));
        found = true;
      }
      iter_close(it);
    }
  }
  free(marks);
  buf_free(&keys);
  version_unref(v);
  if (err == NULL && !found)
    err = err_new(MICA_NOT_FOUND,
                  "tablet %" PRIu64 ": fewer than two keys, no middle key",
                  t->id);
  return err;
}

void tab_get_stats(tablet *t, tab_stats *s) {
  memset(s, 0, sizeof(*s));
  s->puts = atomic_load(&t->st_puts);
  s->deletes = atomic_load(&t->st_deletes);
  s->batches = atomic_load(&t->st_batches);
  s->bytes_written = atomic_load(&t->st_bytes);
  s->gets = atomic_load(&t->st_gets);
  s->scans = atomic_load(&t->st_scans);
  s->flushes = atomic_load(&t->st_flushes);
  s->flush_bytes = atomic_load(&t->st_flush_bytes);
  s->compactions = atomic_load(&t->st_compactions);
  s->compact_read_bytes = atomic_load(&t->st_cread);
  s->compact_write_bytes = atomic_load(&t->st_cwrite);
  s->stalls = atomic_load(&t->st_stalls);
  s->stall_micros = atomic_load(&t->st_stall_micros);
  s->stall_timeouts = atomic_load(&t->st_stall_timeouts);
  s->wal_replayed_records = t->replayed_records;
  s->wal_dropped_bytes = t->dropped_bytes;
  pthread_mutex_lock(&t->mu);
  s->num_ssts = t->cur->n_files;
  s->num_immutable = t->n_imm;
  s->memtable_bytes = mt_memory_usage(t->cur->mem);
  s->last_seq = t->visible_seq;
  pthread_mutex_unlock(&t->mu);
}
