/* clog: the server's shared commit log (clog.h). This file keeps the
 * segment list, who pins which segment, rolling, deleting and the forced
 * flushes; the framing and group commit are wal.c's, one wal_writer per
 * segment. Each closed segment gets an index file listing the
 * (tablet, epoch) pairs in it, so that recovery skips segments without
 * its tablet. Formats: COMMITLOG_FORMAT.md. */
#include "tabletserver/clog.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/layout.h"
#include "common/path.h"
#include "tabletserver/manifest.h"
#include "tabletserver/wal.h"

static const uint8_t IDX_MAGIC[8] = {'M', 'I', 'C', 'A', '-', 'C', 'L', 'I'};
#define IDX_VERSION 1
#define IDX_HEADER 16 /* magic 8, version 4, count 4 */
#define IDX_ENTRY 32  /* tablet 8, epoch 8, min_seq 8, max_seq 8 */
#define IDX_MAX_BYTES (64u << 20)

/* What one segment holds of one tablet under one epoch. */
typedef struct seg_entry {
  uint64_t tablet, epoch, min_seq, max_seq;
} seg_entry;

typedef struct clog_seg {
  uint64_t number;
  char *path;
  wal_writer *w;     /* NULL once closed */
  int pending;       /* tickets added and not yet committed */
  bool active;       /* the segment records are added to */
  bool broken;       /* its writer failed: roll before the next add */
  uint64_t bytes;
  seg_entry *ents;
  size_t n_ents, cap_ents;
  size_t last_ent;   /* the entry touched last (a cheap cache) */
} clog_seg;

typedef struct reg {
  uint64_t tablet;
  clog_flush_fn fn;
  void *arg;
} reg;

typedef struct flushed_mark {
  uint64_t tablet, seq;
} flushed_mark;

struct clog {
  env *e;
  char *dir, *name;
  int lock_fd; /* <dir>/LOCK, held while the log lives (clog_collect_dead) */
  clog_options o;
  pthread_mutex_t mu;
  /* Guarded by mu: */
  clog_seg **segs; /* oldest first; the last one is the active one */
  size_t n_segs;
  uint64_t next_number;
  reg *regs;
  size_t n_regs;
  flushed_mark *flushed;
  size_t n_flushed;
  uint64_t deleted, flush_requests;
  uint64_t asked_for; /* oldest segment whose pinners were last asked */
  uint64_t asked_at;  /* the log's bytes then */
};

void clog_options_init(clog_options *o) {
  o->segment_bytes = 64u << 20;
  o->max_bytes = 512u << 20;
}

char *clog_dir_path(const char *logs_root, const char *name) {
  return path_join(logs_root, name);
}

char *clog_logs_root(const char *tablets_dir) {
  char *parent = NULL, *base = NULL;
  path_split(tablets_dir, &parent, &base);
  char *root = path_join(parent, "logs");
  free(parent);
  free(base);
  return root;
}

char *clog_segment_name(char *out, size_t size, uint64_t number) {
  snprintf(out, size, "clog-%020" PRIu64 ".log", number);
  return out;
}

static char *index_name(char *out, size_t size, uint64_t number) {
  snprintf(out, size, "clog-%020" PRIu64 ".idx", number);
  return out;
}

bool clog_parse_segment_name(const char *name, uint64_t *number) {
  if (strlen(name) != 5 + 20 + 4 || strncmp(name, "clog-", 5) != 0 ||
      strcmp(name + 25, ".log") != 0)
    return false;
  uint64_t v = 0;
  for (int i = 5; i < 25; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    uint64_t d = (uint64_t)(name[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *number = v;
  return true;
}

bool clog_is_file_name(const char *name) {
  if (strcmp(name, CLOG_LOCK_NAME) == 0) return true;
  size_t n = strlen(name);
  if (n != 5 + 20 + 4 || strcmp(name + 25, ".idx") != 0)
    return clog_parse_segment_name(name, &(uint64_t){0});
  char seg[5 + 20 + 4 + 1];
  memcpy(seg, name, 25);
  memcpy(seg + 25, ".log", 5);
  return clog_parse_segment_name(seg, &(uint64_t){0});
}

const char *clog_name(const clog *l) { return l->name; }

/* ---- segments ---- */

static void seg_free(clog_seg *s) {
  if (s == NULL) return;
  err_free(wal_writer_close(s->w));
  free(s->path);
  free(s->ents);
  free(s);
}

static mica_err *seg_open(clog *l, uint64_t number, clog_seg **out) {
  char name[64];
  clog_segment_name(name, sizeof(name), number);
  clog_seg *s = xcalloc(1, sizeof(*s));
  s->number = number;
  s->path = path_join(l->dir, name);
  s->active = true;
  mica_err *err = wal_writer_open_version(l->e, s->path, WAL_VERSION_COMMITLOG,
                                          0, number, &s->w);
  if (err != NULL) {
    seg_free(s);
    return err_wrap(err, "commit log %s", l->name);
  }
  s->bytes = wal_writer_size(s->w);
  *out = s;
  return NULL;
}

static void seg_note(clog_seg *s, uint64_t tablet, uint64_t epoch,
                     uint64_t lo, uint64_t hi) {
  seg_entry *x = NULL;
  if (s->last_ent < s->n_ents && s->ents[s->last_ent].tablet == tablet &&
      s->ents[s->last_ent].epoch == epoch) {
    x = &s->ents[s->last_ent];
  } else {
    for (size_t i = s->n_ents; i-- > 0;)
      if (s->ents[i].tablet == tablet && s->ents[i].epoch == epoch) {
        x = &s->ents[i];
        s->last_ent = i;
        break;
      }
  }
  if (x == NULL) {
    if (s->n_ents == s->cap_ents) {
      s->cap_ents = s->cap_ents ? 2 * s->cap_ents : 8;
      s->ents = xrealloc(s->ents, s->cap_ents * sizeof(*s->ents));
    }
    s->last_ent = s->n_ents;
    s->ents[s->n_ents++] = (seg_entry){tablet, epoch, lo, hi};
    return;
  }
  if (lo < x->min_seq) x->min_seq = lo;
  if (hi > x->max_seq) x->max_seq = hi;
}

/* Writes the index of a closed segment (atomically; a crash leaves none,
 * and recovery then scans the segment). */
static mica_err *write_index(clog *l, const clog_seg *s) {
  buf b = BUF_INIT;
  buf_resize(&b, IDX_HEADER + s->n_ents * IDX_ENTRY + 4);
  uint8_t *p = (uint8_t *)b.data;
  memcpy(p, IDX_MAGIC, 8);
  encode_fixed32(p + 8, IDX_VERSION);
  encode_fixed32(p + 12, (uint32_t)s->n_ents);
  for (size_t i = 0; i < s->n_ents; i++) {
    uint8_t *q = p + IDX_HEADER + i * IDX_ENTRY;
    encode_fixed64(q, s->ents[i].tablet);
    encode_fixed64(q + 8, s->ents[i].epoch);
    encode_fixed64(q + 16, s->ents[i].min_seq);
    encode_fixed64(q + 24, s->ents[i].max_seq);
  }
  size_t body = IDX_HEADER + s->n_ents * IDX_ENTRY;
  encode_fixed32(p + body, crc32c_mask(crc32c_value(p, body)));
  char name[64];
  index_name(name, sizeof(name), s->number);
  char *path = path_join(l->dir, name);
  mica_err *err = env_write_file_atomic(l->e, path, buf_slice(&b));
  free(path);
  buf_free(&b);
  return err;
}

/* Closes a segment that is no longer active and has no pending ticket,
 * then writes its index. Returns the error (also logged): the segment's
 * writers were told of a write error already, and without an index
 * recovery scans the segment, which is only slower. Caller holds mu. */
static mica_err *seg_close_locked(clog *l, clog_seg *s) {
  mica_err *err = wal_writer_close(s->w);
  s->w = NULL;
  if (err == NULL) err = write_index(l, s);
  if (err != NULL)
    LOG_W("commit log %s: closing segment %" PRIu64 ": %s", l->name,
          s->number, err_msg(err));
  return err;
}

/* Starts the next segment and retires the active one: everything added
 * to it is written and synced first, so that a sync in the new segment
 * also covers every earlier record. Caller holds mu. */
static mica_err *roll_locked(clog *l) {
  clog_seg *ns = NULL;
  mica_err *err = seg_open(l, l->next_number, &ns);
  if (err != NULL) return err;
  l->next_number++;
  clog_seg *old = l->segs[l->n_segs - 1];
  if (!old->broken) {
    mica_err *serr = wal_sync(old->w);
    if (serr != NULL) {
      /* Its writers get the sticky error from their commits. */
      LOG_W("commit log %s: syncing segment %" PRIu64 ": %s", l->name,
            old->number, err_msg(serr));
      err_free(serr);
    }
  }
  old->active = false;
  if (old->pending == 0) err_free(seg_close_locked(l, old));
  l->segs = xrealloc(l->segs, (l->n_segs + 1) * sizeof(*l->segs));
  l->segs[l->n_segs++] = ns;
  return NULL;
}

static uint64_t flushed_seq_locked(const clog *l, uint64_t tablet) {
  for (size_t i = 0; i < l->n_flushed; i++)
    if (l->flushed[i].tablet == tablet) return l->flushed[i].seq;
  return 0;
}

static bool pinned_locked(const clog *l, const clog_seg *s) {
  for (size_t i = 0; i < s->n_ents; i++)
    if (flushed_seq_locked(l, s->ents[i].tablet) < s->ents[i].max_seq)
      return true;
  return false;
}

/* Takes the closed segments nothing pins out of the list (into `out`,
 * which has room for n_segs). Caller holds mu and deletes them with mu
 * released. */
static size_t take_deletable_locked(clog *l, clog_seg **out) {
  size_t n = 0, k = 0;
  for (size_t i = 0; i < l->n_segs; i++) {
    clog_seg *s = l->segs[i];
    if (!s->active && s->w == NULL && !pinned_locked(l, s)) out[n++] = s;
    else l->segs[k++] = s;
  }
  l->n_segs = k;
  l->deleted += n;
  return n;
}

static void delete_segments(clog *l, clog_seg **v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char name[64];
    index_name(name, sizeof(name), v[i]->number);
    char *ip = path_join(l->dir, name);
    /* The index first. A crash between the two removals leaves either
     * file alone, which replay handles: it lists segments and only then
     * looks for their index, and a segment without one is scanned. */
    mica_err *err = env_remove(l->e, ip);
    if (err != NULL && err_code(err) != MICA_NOT_FOUND)
      LOG_W("commit log %s: %s", l->name, err_msg(err));
    err_free(err);
    free(ip);
    err = env_remove(l->e, v[i]->path);
    if (err != NULL && err_code(err) != MICA_NOT_FOUND)
      LOG_W("commit log %s: %s", l->name, err_msg(err));
    err_free(err);
    seg_free(v[i]);
  }
}

/* When the live segments pass max_bytes, asks every registered tablet that
 * pins the oldest segment to flush: once per oldest segment, and again
 * each time the log grew by another half of max_bytes while that segment
 * stayed the oldest (a flush that failed, say on a full disk, is asked
 * for again). Caller holds mu. */
static void maybe_force_flush_locked(clog *l) {
  uint64_t total = 0;
  for (size_t i = 0; i < l->n_segs; i++) total += l->segs[i]->bytes;
  if (total <= l->o.max_bytes || l->n_segs < 2) return;
  clog_seg *old = l->segs[0];
  if (l->asked_for == old->number && total < l->asked_at + l->o.max_bytes / 2)
    return;
  l->asked_for = old->number;
  l->asked_at = total;
  for (size_t i = 0; i < old->n_ents; i++) {
    const seg_entry *x = &old->ents[i];
    if (flushed_seq_locked(l, x->tablet) >= x->max_seq) continue;
    for (size_t j = 0; j < l->n_regs; j++)
      if (l->regs[j].tablet == x->tablet) {
        l->flush_requests++;
        l->regs[j].fn(l->regs[j].arg);
      }
  }
}

/* ---- the public calls ---- */

mica_err *clog_open(env *e, const char *logs_root, const char *name,
                    const clog_options *o, clog **out) {
  *out = NULL;
  if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
      strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "commit log name \"%s\" is not a bare file name",
                   name ? name : "");
  clog_options def;
  if (o == NULL) {
    clog_options_init(&def);
    o = &def;
  }
  if (o->segment_bytes < 4096 || o->max_bytes < o->segment_bytes)
    return err_new(MICA_INVALID_ARGUMENT,
                   "commit log: segment_bytes %" PRIu64
                   " must be >= 4096 and <= max_bytes %" PRIu64,
                   o->segment_bytes, o->max_bytes);
  char *dir = clog_dir_path(logs_root, name);
  size_t tl = strlen(dir) + 8;
  char *tmp = xmalloc(tl);
  snprintf(tmp, tl, "%s" CLOG_NEW_SUFFIX, dir);
  mica_err *err = NULL;
  if (env_exists(e, dir) || env_exists(e, tmp))
    err = err_new(MICA_ALREADY_EXISTS,
                  "commit log %s already exists (a log name is one server "
                  "incarnation and is never reused)",
                  dir);
  /* The directory appears under its name already locked (made as
   * <name>.new, locked, renamed), so clog_collect_dead never finds a
   * live log unlocked. */
  int lock_fd = -1;
  if (err == NULL) err = env_mkdirs(e, tmp);
  if (err == NULL) {
    char *lp = path_join(tmp, CLOG_LOCK_NAME);
    err = env_lock(e, lp, &lock_fd);
    free(lp);
  }
  if (err == NULL) err = env_rename(e, tmp, dir);
  if (err == NULL) err = env_sync_dir(e, logs_root);
  free(tmp);
  if (err != NULL) {
    env_unlock(e, lock_fd);
    free(dir);
    return err_wrap(err, "commit log %s", name);
  }
  clog *l = xcalloc(1, sizeof(*l));
  l->e = e;
  l->dir = dir;
  l->lock_fd = lock_fd;
  l->name = xstrdup(name);
  l->o = *o;
  pthread_mutex_init(&l->mu, NULL);
  l->next_number = 1;
  clog_seg *s = NULL;
  err = seg_open(l, l->next_number, &s);
  if (err != NULL) {
    env_unlock(e, l->lock_fd);
    pthread_mutex_destroy(&l->mu);
    free(l->dir);
    free(l->name);
    free(l);
    return err;
  }
  l->next_number++;
  l->segs = xcalloc(1, sizeof(*l->segs));
  l->segs[l->n_segs++] = s;
  *out = l;
  return NULL;
}

uint64_t clog_current_segment(clog *l) {
  pthread_mutex_lock(&l->mu);
  uint64_t n = l->segs[l->n_segs - 1]->number;
  pthread_mutex_unlock(&l->mu);
  return n;
}

mica_err *clog_add(clog *l, uint64_t tablet_id, uint64_t epoch, slice batch,
                   bool sync, clog_ticket *tk) {
  return clog_add_batches(l, tablet_id, epoch, &batch, 1, sync, tk);
}

mica_err *clog_add_batches(clog *l, uint64_t tablet_id, uint64_t epoch,
                           const slice *batches, size_t n, bool sync,
                           clog_ticket *tk) {
  tk->seg = NULL;
  if (n == 0)
    return err_new(MICA_INVALID_ARGUMENT, "commit log %s: no batch to add",
                   l->name);
  for (size_t i = 0; i < n; i++)
    if (batches[i].len < 12 ||
        batches[i].len > WAL_MAX_PAYLOAD - CLOG_RECORD_TAG)
      return err_new(MICA_INVALID_ARGUMENT,
                     "commit log %s: batch of %zu bytes is shorter than its "
                     "header or longer than a record may be",
                     l->name, batches[i].len);
  buf rec = BUF_INIT;
  pthread_mutex_lock(&l->mu);
  clog_seg *s = l->segs[l->n_segs - 1];
  mica_err *err = NULL;
  if (s->broken || s->bytes >= l->o.segment_bytes) {
    err = roll_locked(l);
    s = l->segs[l->n_segs - 1];
  }
  uint64_t ticket = 0;
  size_t added = 0;
  for (size_t i = 0; i < n && err == NULL; i++) {
    slice b = batches[i];
    uint64_t seq = decode_fixed64(b.data);
    uint64_t count = decode_fixed32(b.data + 8);
    buf_resize(&rec, CLOG_RECORD_TAG + b.len);
    encode_fixed64((uint8_t *)rec.data, tablet_id);
    encode_fixed64((uint8_t *)rec.data + 8, epoch);
    memcpy(rec.data + CLOG_RECORD_TAG, b.data, b.len);
    err = wal_add(s->w, buf_slice(&rec), sync, &ticket);
    if (err == NULL) {
      seg_note(s, tablet_id, epoch, seq, count > 0 ? seq + count - 1 : seq);
      added++;
    }
  }
  if (added > 0) s->bytes = wal_writer_size(s->w);
  if (err == NULL) {
    s->pending++;
    tk->seg = s;
    tk->t = ticket;
    maybe_force_flush_locked(l);
  } else {
    s->broken = true;
  }
  pthread_mutex_unlock(&l->mu);
  buf_free(&rec);
  return err;
}

mica_err *clog_commit(clog *l, clog_ticket *tk) {
  clog_seg *s = tk->seg;
  mica_err *err = wal_commit(s->w, tk->t);
  pthread_mutex_lock(&l->mu);
  if (err != NULL) s->broken = true;
  s->pending--;
  if (!s->active && s->pending == 0 && s->w != NULL)
    err_free(seg_close_locked(l, s));
  pthread_mutex_unlock(&l->mu);
  tk->seg = NULL;
  return err;
}

mica_err *clog_sync(clog *l) {
  pthread_mutex_lock(&l->mu);
  clog_seg *s = l->segs[l->n_segs - 1];
  mica_err *err = wal_sync(s->w);
  if (err != NULL) s->broken = true;
  pthread_mutex_unlock(&l->mu);
  return err;
}

void clog_register(clog *l, uint64_t tablet_id, clog_flush_fn fn, void *arg) {
  pthread_mutex_lock(&l->mu);
  size_t i = 0;
  while (i < l->n_regs && l->regs[i].tablet != tablet_id) i++;
  if (i == l->n_regs) {
    l->regs = xrealloc(l->regs, (l->n_regs + 1) * sizeof(*l->regs));
    l->n_regs++;
  }
  l->regs[i] = (reg){tablet_id, fn, arg};
  pthread_mutex_unlock(&l->mu);
}

void clog_unregister(clog *l, uint64_t tablet_id, void *arg) {
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->n_regs; i++)
    if (l->regs[i].tablet == tablet_id && l->regs[i].arg == arg) {
      l->regs[i] = l->regs[--l->n_regs];
      break;
    }
  pthread_mutex_unlock(&l->mu);
}

void clog_flushed(clog *l, uint64_t tablet_id, uint64_t seq) {
  pthread_mutex_lock(&l->mu);
  size_t i = 0;
  while (i < l->n_flushed && l->flushed[i].tablet != tablet_id) i++;
  if (i == l->n_flushed) {
    l->flushed = xrealloc(l->flushed, (l->n_flushed + 1) * sizeof(*l->flushed));
    l->flushed[l->n_flushed++] = (flushed_mark){tablet_id, 0};
  }
  if (seq > l->flushed[i].seq) l->flushed[i].seq = seq;
  clog_seg **del = xcalloc(l->n_segs, sizeof(*del));
  size_t n = take_deletable_locked(l, del);
  pthread_mutex_unlock(&l->mu);
  delete_segments(l, del, n);
  free(del);
}

void clog_get_stats(clog *l, clog_stats *out) {
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&l->mu);
  out->segments = l->n_segs;
  for (size_t i = 0; i < l->n_segs; i++) out->bytes += l->segs[i]->bytes;
  out->segments_deleted = l->deleted;
  out->flush_requests = l->flush_requests;
  pthread_mutex_unlock(&l->mu);
}

mica_err *clog_close(clog *l) {
  if (l == NULL) return NULL;
  clog_seg *s = l->segs[l->n_segs - 1];
  s->active = false;
  mica_err *err = seg_close_locked(l, s);
  clog_seg **del = xcalloc(l->n_segs, sizeof(*del));
  size_t n = take_deletable_locked(l, del);
  delete_segments(l, del, n);
  free(del);
  /* The directory itself goes with clog_collect_dead, which deletes a
   * log only once no manifest names it: a tablet whose last manifest
   * write failed still names this log, and must find it. */
  for (size_t i = 0; i < l->n_segs; i++) seg_free(l->segs[i]);
  env_unlock(l->e, l->lock_fd);
  free(l->segs);
  free(l->regs);
  free(l->flushed);
  pthread_mutex_destroy(&l->mu);
  free(l->dir);
  free(l->name);
  free(l);
  return err;
}

/* ---- recovery ---- */

/* Whether the index of segment `number` proves that the segment holds no
 * record of (tablet, epoch) above after_seq. A missing or damaged index
 * proves nothing (the segment is then scanned). */
static bool index_excludes(env *e, const char *dir, uint64_t number,
                           uint64_t tablet, uint64_t epoch,
                           uint64_t after_seq) {
  char name[64];
  index_name(name, sizeof(name), number);
  char *path = path_join(dir, name);
  buf b = BUF_INIT;
  mica_err *err = env_read_file(e, path, IDX_MAX_BYTES, &b);
  bool excludes = false;
  const uint8_t *p = (const uint8_t *)b.data;
  if (err == NULL && b.len >= IDX_HEADER + 4 &&
      memcmp(p, IDX_MAGIC, 8) == 0 && decode_fixed32(p + 8) == IDX_VERSION) {
    uint64_t count = decode_fixed32(p + 12);
    if (b.len == IDX_HEADER + count * IDX_ENTRY + 4 &&
        crc32c_unmask(decode_fixed32(p + b.len - 4)) ==
            crc32c_value(p, b.len - 4)) {
      excludes = true;
      for (uint64_t i = 0; i < count && excludes; i++) {
        const uint8_t *q = p + IDX_HEADER + i * IDX_ENTRY;
        if (decode_fixed64(q) == tablet && decode_fixed64(q + 8) == epoch &&
            decode_fixed64(q + 24) > after_seq)
          excludes = false;
      }
    } else {
      LOG_W("commit log index %s is damaged; scanning its segment", path);
    }
  } else if (err == NULL) {
    LOG_W("commit log index %s is damaged; scanning its segment", path);
  }
  err_free(err);
  buf_free(&b);
  free(path);
  return excludes;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static mica_err *replay_segment(env *e, const char *path, uint64_t tablet,
                                uint64_t epoch, uint64_t after_seq,
                                clog_record_fn fn, void *arg,
                                clog_replay_stats *st) {
  wal_reader *r = NULL;
  mica_err *err = wal_reader_open(e, path, &r);
  if (err != NULL) return err;
  uint32_t version = wal_reader_version(r);
  if (version != 0 && version != WAL_VERSION_COMMITLOG) {
    wal_reader_close(r);
    return err_new(MICA_CORRUPTION,
                   "commit log %s: header version %" PRIu32
                   " is not a commit log segment's",
                   path, version);
  }
  for (;;) {
    slice p;
    bool eof = false;
    err = wal_reader_next(r, &p, &eof);
    if (err != NULL || eof) break;
    st->records_seen++;
    uint64_t off = wal_reader_record_offset(r);
    if (p.len < CLOG_RECORD_TAG + 12) {
      err = err_new(MICA_CORRUPTION,
                    "commit log %s: record at offset %" PRIu64
                    " of %zu bytes is shorter than its tag and batch header",
                    path, off, p.len);
      break;
    }
    const uint8_t *d = (const uint8_t *)p.data;
    if (decode_fixed64(d) != tablet || decode_fixed64(d + 8) != epoch)
      continue;
    uint64_t seq = decode_fixed64(d + CLOG_RECORD_TAG);
    uint64_t count = decode_fixed32(d + CLOG_RECORD_TAG + 8);
    if (count > 0 && seq + count - 1 <= after_seq) continue;
    if (count == 0) continue;
    st->records++;
    err = fn(arg, slice_make(p.data + CLOG_RECORD_TAG,
                             p.len - CLOG_RECORD_TAG),
             path, off);
    if (err != NULL) break;
  }
  if (err == NULL) {
    st->dropped += wal_reader_dropped(r);
    if (wal_reader_dropped(r) > 0)
      LOG_W("commit log %s: ignored a torn tail of %" PRIu64
            " bytes at offset %" PRIu64,
            path, wal_reader_dropped(r), wal_reader_valid_end(r));
  }
  wal_reader_close(r);
  return err;
}

mica_err *clog_replay(env *e, const char *dir, uint64_t tablet_id,
                      uint64_t epoch, uint64_t first_segment,
                      uint64_t after_seq, clog_record_fn fn, void *arg,
                      clog_replay_stats *st) {
  clog_replay_stats local;
  if (st == NULL) st = &local;
  memset(st, 0, sizeof(*st));
  char **names = NULL;
  size_t n = 0;
  mica_err *err = env_list(e, dir, &names, &n);
  if (err != NULL) return err_wrap(err, "commit log %s", dir);
  /* A log's directory holds its LOCK from clog_open until the collector
   * removes both: no LOCK means no log, even where a listing of a
   * missing directory answers empty (an object store, or a route env
   * with the log directory on one side). */
  bool has_lock = false;
  for (size_t i = 0; i < n && !has_lock; i++)
    has_lock = strcmp(names[i], CLOG_LOCK_NAME) == 0;
  if (!has_lock) {
    env_free_names(names, n);
    return err_new(MICA_NOT_FOUND, "commit log %s: no such log (no %s)", dir,
                   CLOG_LOCK_NAME);
  }
  uint64_t *nums = xcalloc(n + 1, sizeof(*nums));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t num;
    if (clog_parse_segment_name(names[i], &num) && num >= first_segment)
      nums[k++] = num;
  }
  env_free_names(names, n);
  qsort(nums, k, sizeof(*nums), cmp_u64);
  for (size_t i = 0; i < k && err == NULL; i++) {
    if (index_excludes(e, dir, nums[i], tablet_id, epoch, after_seq)) {
      st->segments_skipped++;
      continue;
    }
    char name[64];
    clog_segment_name(name, sizeof(name), nums[i]);
    char *path = path_join(dir, name);
    st->segments_read++;
    err = replay_segment(e, path, tablet_id, epoch, after_seq, fn, arg, st);
    free(path);
  }
  free(nums);
  return err;
}

/* ---- collecting the logs of dead incarnations ---- */

/* Whether any tablet under `tablets_dir` has writes that exist only in
 * log `name` (its manifest names the log above its flushed sequence
 * number). Errors other than a missing manifest count as "yes". */
static bool log_needed(env *e, const char *tablets_dir, const char *name) {
  char **dirs = NULL;
  size_t nd = 0;
  mica_err *err = layout_list_tablets(e, tablets_dir, &dirs, &nd);
  if (err != NULL) {
    err_free(err);
    return true;
  }
  bool needed = false;
  size_t len = strlen(name);
  for (size_t i = 0; i < nd && !needed; i++) {
    char *dir = path_join(tablets_dir, dirs[i]);
    man_state m;
    man_init(&m);
    err = man_read(e, dir, &m);
    if (err == NULL) {
      /* Only a tablet that can open again replays: a split, merged or
       * dropped one never does (tablet_open.c refuses it). */
      needed = (m.state == MAN_LIVE || m.state == MAN_SPLITTING) &&
               man_holds_writes(&m) && m.log_name.len == len &&
               memcmp(m.log_name.data, name, len) == 0;
    } else if (err_code(err) != MICA_NOT_FOUND) {
      needed = true;
    }
    err_free(err);
    man_clear(&m);
    free(dir);
  }
  env_free_names(dirs, nd);
  return needed;
}

mica_err *clog_collect_dead(env *e, const char *tablets_dir,
                            uint64_t *removed) {
  if (removed != NULL) *removed = 0;
  char *root = clog_logs_root(tablets_dir);
  char **names = NULL;
  size_t n = 0;
  mica_err *err = env_list(e, root, &names, &n);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    free(root);
    return NULL;
  }
  for (size_t i = 0; i < n && err == NULL; i++) {
    size_t nl = strlen(names[i]), sl = strlen(CLOG_NEW_SUFFIX);
    if (nl >= sl && strcmp(names[i] + nl - sl, CLOG_NEW_SUFFIX) == 0)
      continue; /* being created (or its creator died before the rename) */
    char *dir = path_join(root, names[i]);
    char *lp = path_join(dir, CLOG_LOCK_NAME);
    /* A log appears under its name already locked (clog_open): a free
     * lock means its server is gone. */
    int fd = -1;
    bool has_lock = env_exists(e, lp);
    mica_err *lerr = has_lock ? env_lock(e, lp, &fd) : NULL;
    if (has_lock && lerr == NULL) {
      /* Dead: no one appends to it again, so the set of manifests that
       * need it only shrinks (a take-over names the new owner's log).
       * Reading them after taking the lock therefore sees every one that
       * still does. */
      if (!log_needed(e, tablets_dir, names[i])) {
        err = env_remove_tree(e, dir);
        if (err == NULL) {
          LOG_I("removed commit log %s: its server is gone and every tablet "
                "logged in it was taken over or flushed", dir);
          if (removed != NULL) (*removed)++;
        }
      }
      env_unlock(e, fd);
    }
    err_free(lerr); /* UNAVAILABLE: a live server holds it */
    free(lp);
    free(dir);
  }
  env_free_names(names, n);
  free(root);
  return err;
}
