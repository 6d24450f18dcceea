/* clog: the server's shared commit log (clog.h). This file keeps the
 * segment list, who pins which segment, rolling, deleting and the forced
 * flushes; the framing and group commit are wal.c's, one wal_writer per
 * segment. Each closed segment gets an index file listing the
 * (tablet, epoch) pairs in it, so that recovery skips segments without
 * its tablet. Formats: COMMITLOG_FORMAT.md. */
#include "tabletserver/clog.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* WAL framing (WAL_FORMAT.md, wal_frame_append), for object mode, which
 * builds each group object in memory. */
enum { FRAME_HEADER = 1, FRAME_DATA = 2 };
static const uint8_t WAL_MAGIC_BYTES[8] = {'M', 'I', 'C', 'A', '-', 'W', 'A', 'L'};
#define HEADER_PAYLOAD 28 /* magic 8, version 4, epoch 8, number 8 */
/* Largest group object a replay accepts: a group is closed at
 * batch_bytes, but one record may take it past that. */
#define OBJECT_MAX_BYTES ((uint64_t)1 << 30)

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
  /* Object mode: the group's bytes (header frame and records) until its
   * PUT, whether it is being or has been PUT, and the PUT's outcome. */
  buf data;
  uint64_t first_add_us; /* when its first record was added */
  bool sealed, written;
  mica_err *err;
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
  uint64_t asked_count; /* and its segments (object mode) */
  /* Object mode (`objects`): one writer thread PUTs the groups in order. */
  bool objects;
  pthread_t writer;
  bool writer_started, stop, flush_now;
  pthread_cond_t work_cv, done_cv;
  uint64_t puts, put_errors, put_bytes, put_micros, markers;
  /* Object mode: deletions go to a queue a deleter thread works off, so
   * a flush (a tablet's close, a move, a merge) never waits for the
   * HEAD + DELETE of every object it freed. */
  pthread_t deleter;
  bool deleter_started, stop_deleter;
  pthread_cond_t del_cv;
  clog_seg **dq;
  size_t n_dq;
  pthread_mutex_t marker_mu; /* serializes marker renewals */
  uint64_t marker_wall;      /* wall µs in the newest marker's name */
};

void clog_options_init(clog_options *o) {
  o->segment_bytes = 64u << 20;
  o->max_bytes = 512u << 20;
  o->batch_us = 10000;
  o->batch_bytes = 4u << 20;
  o->max_objects = 2048;
  o->marker_horizon_us = CLOG_MARKER_HORIZON_US;
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

/* The 20 decimal digits at `p` (no more than UINT64_MAX): *out; false
 * (and *out untouched) otherwise. */
static bool parse_digits20(const char *p, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < 20; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    uint64_t d = (uint64_t)(p[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool clog_parse_segment_name(const char *name, uint64_t *number) {
  if (strlen(name) != 5 + 20 + 4 || strncmp(name, "clog-", 5) != 0 ||
      strcmp(name + 25, ".log") != 0)
    return false;
  return parse_digits20(name + 5, number);
}

bool clog_parse_marker_name(const char *name, uint64_t *wall_us) {
  size_t pl = strlen(CLOG_MARKER_PREFIX);
  return strlen(name) == pl + 20 &&
         strncmp(name, CLOG_MARKER_PREFIX, pl) == 0 &&
         parse_digits20(name + pl, wall_us);
}

static char *marker_name(char *out, size_t size, uint64_t wall_us) {
  snprintf(out, size, CLOG_MARKER_PREFIX "%020" PRIu64, wall_us);
  return out;
}

bool clog_is_file_name(const char *name) {
  if (strcmp(name, CLOG_LOCK_NAME) == 0) return true;
  if (clog_parse_marker_name(name, &(uint64_t){0})) return true;
  size_t n = strlen(name);
  if (n != 5 + 20 + 4 || strcmp(name + 25, ".idx") != 0)
    return clog_parse_segment_name(name, &(uint64_t){0});
  char seg[5 + 20 + 4 + 1];
  memcpy(seg, name, 25);
  memcpy(seg + 25, ".log", 5);
  return clog_parse_segment_name(seg, &(uint64_t){0});
}

const char *clog_name(const clog *l) { return l->name; }

bool clog_objects(const clog *l) { return l->objects; }

/* ---- segments ---- */

static void seg_free(clog_seg *s) {
  if (s == NULL) return;
  err_free(wal_writer_close(s->w));
  free(s->path);
  free(s->ents);
  buf_free(&s->data);
  err_free(s->err);
  free(s);
}

static mica_err *seg_open(clog *l, uint64_t number, clog_seg **out) {
  char name[64];
  clog_segment_name(name, sizeof(name), number);
  clog_seg *s = xcalloc(1, sizeof(*s));
  s->number = number;
  s->path = path_join(l->dir, name);
  s->active = true;
  if (l->objects) {
    /* Nothing exists until the group's PUT. */
    *out = s;
    return NULL;
  }
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
    bool closed = l->objects ? s->written && s->pending == 0
                             : !s->active && s->w == NULL;
    if (closed && !pinned_locked(l, s)) out[n++] = s;
    else l->segs[k++] = s;
  }
  l->n_segs = k;
  l->deleted += n;
  return n;
}

static void delete_segments(clog *l, clog_seg **v, size_t n) {
  if (l->objects && n > 0) {
    /* One object per group, no index; all of them in as few requests as
     * the env allows (S3: one multi-object delete per 1000). A failed
     * PUT's object may exist (its answer was lost) or not. What a failed
     * request leaves is the collector's. */
    const char **paths = xcalloc(n, sizeof(*paths));
    for (size_t i = 0; i < n; i++) paths[i] = v[i]->path;
    mica_err *err = env_remove_many(l->e, paths, n);
    if (err != NULL) LOG_W("commit log %s: %s", l->name, err_msg(err));
    err_free(err);
    free(paths);
    for (size_t i = 0; i < n; i++) seg_free(v[i]);
    return;
  }
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
  uint64_t total = 0, count = l->n_segs;
  for (size_t i = 0; i < l->n_segs; i++) total += l->segs[i]->bytes;
  bool over_count = l->objects && count > l->o.max_objects;
  if ((total <= l->o.max_bytes && !over_count) || l->n_segs < 2) return;
  clog_seg *old = l->segs[0];
  if (l->asked_for == old->number &&
      total < l->asked_at + l->o.max_bytes / 2 &&
      (!over_count || count < l->asked_count + l->o.max_objects / 2))
    return;
  l->asked_for = old->number;
  l->asked_at = total;
  l->asked_count = count;
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

/* Whether the log in `dir` is written as segment files (true) or one
 * object per group (false). Asked for a segment's path, since a route
 * env (--wal-dir) decides by the file name. */
static bool dir_appends_in_place(env *e, const char *dir) {
  char name[64];
  clog_segment_name(name, sizeof(name), 1);
  char *p = path_join(dir, name);
  bool r = env_appends_in_place(e, p);
  free(p);
  return r;
}

/* ---- object mode: one PUT per group commit ---- */

/* The writer thread: closes the active group when it is due (batch_us
 * after its first record, batch_bytes full, a sync, or close), starts
 * the next one and PUTs the closed one; one PUT at a time, so the
 * objects appear in number order and a commit that returns NULL means
 * every earlier group was written too (or failed and told its own
 * writers). Runs until clog_close has it write what is left. */
static void *writer_main(void *arg) {
  clog *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    clog_seg *s = l->segs[l->n_segs - 1];
    if (s->data.len == 0) {
      if (l->stop) break;
      l->flush_now = false;
      pthread_cond_wait(&l->work_cv, &l->mu);
      continue;
    }
    uint64_t now = env_now_micros(l->e);
    uint64_t due = s->first_add_us + l->o.batch_us;
    if (!l->stop && !l->flush_now && s->data.len < l->o.batch_bytes &&
        now < due) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      uint64_t ns = (uint64_t)ts.tv_nsec + (due - now) * 1000;
      ts.tv_sec += (time_t)(ns / 1000000000u);
      ts.tv_nsec = (long)(ns % 1000000000u);
      pthread_cond_timedwait(&l->work_cv, &l->mu, &ts);
      continue;
    }
    l->flush_now = false;
    clog_seg *ns = NULL;
    err_free(seg_open(l, l->next_number++, &ns)); /* no I/O: cannot fail */
    l->segs = xrealloc(l->segs, (l->n_segs + 1) * sizeof(*l->segs));
    l->segs[l->n_segs++] = ns;
    s->active = false;
    s->sealed = true;
    buf data = s->data;
    s->data = (buf)BUF_INIT;
    pthread_mutex_unlock(&l->mu);

    uint64_t t0 = env_now_micros(l->e);
    mica_err *err = env_write_file_atomic(l->e, s->path, buf_slice(&data));
    uint64_t dt = env_now_micros(l->e) - t0;
    if (err != NULL) {
      err = err_wrap(err,
                     "commit log %s: group object %" PRIu64 " (%zu bytes) "
                     "not written; its writes are not acknowledged",
                     l->name, s->number, data.len);
      LOG_W("%s", err_msg(err));
    }

    pthread_mutex_lock(&l->mu);
    s->written = true;
    s->err = err;
    if (err == NULL) {
      l->puts++;
      l->put_bytes += data.len;
    } else {
      l->put_errors++;
    }
    l->put_micros += dt;
    buf_free(&data);
    pthread_cond_broadcast(&l->done_cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static void delete_segments(clog *l, clog_seg **v, size_t n);

/* The most objects one deletion takes (S3's multi-object delete takes up
 * to 1000 keys per request). */
enum { CLOG_DELETE_BATCH = 1000 };

/* The deleter thread (object mode): deletes the queued objects, oldest
 * first, in batches of up to CLOG_DELETE_BATCH (one request each on S3),
 * until clog_close has it finish the queue and stop. */
static void *deleter_main(void *arg) {
  clog *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    if (l->n_dq == 0) {
      if (l->stop_deleter) break;
      pthread_cond_wait(&l->del_cv, &l->mu);
      continue;
    }
    /* Up to one multi-object delete's worth at a time. */
    size_t k = l->n_dq < CLOG_DELETE_BATCH ? l->n_dq : CLOG_DELETE_BATCH;
    clog_seg **v = xcalloc(k, sizeof(*v));
    memcpy(v, l->dq, k * sizeof(*v));
    memmove(&l->dq[0], &l->dq[k], (l->n_dq - k) * sizeof(*l->dq));
    l->n_dq -= k;
    pthread_mutex_unlock(&l->mu);
    delete_segments(l, v, k);
    free(v);
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* Queues `n` segments taken out of the list for the deleter. Caller
 * holds mu. */
static void queue_deletions_locked(clog *l, clog_seg **v, size_t n) {
  if (n == 0) return;
  l->dq = xrealloc(l->dq, (l->n_dq + n) * sizeof(*l->dq));
  memcpy(&l->dq[l->n_dq], v, n * sizeof(*v));
  l->n_dq += n;
  pthread_cond_signal(&l->del_cv);
}

/* Writes a new marker object named by `wall` (its content is for people
 * reading the bucket; readers look at names only). */
static mica_err *put_marker(env *e, const char *dir, const char *log_name,
                            uint64_t wall) {
  char name[64];
  marker_name(name, sizeof(name), wall);
  char *path = path_join(dir, name);
  char text[256];
  snprintf(text, sizeof(text),
           "MICA commit log %s (one object per group commit; "
           "tabletserver/COMMITLOG_FORMAT.md)\n", log_name);
  mica_err *err = env_write_file_atomic(e, path, slice_from_str(text));
  free(path);
  return err;
}

/* clog_open in object mode: the directory must list nothing (a name is
 * one incarnation); its first marker object makes it a log. */
static mica_err *open_objects(clog *l) {
  char **names = NULL;
  size_t n = 0;
  mica_err *err = env_list(l->e, l->dir, &names, &n);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    err = NULL;
  }
  env_free_names(names, n);
  if (err == NULL && n > 0)
    err = err_new(MICA_ALREADY_EXISTS,
                  "commit log %s already exists (a log name is one server "
                  "incarnation and is never reused)",
                  l->dir);
  uint64_t wall = env_wall_micros(l->e);
  if (err == NULL) err = put_marker(l->e, l->dir, l->name, wall);
  if (err != NULL) return err;
  l->marker_wall = wall;
  l->markers = 1;
  return NULL;
}

mica_err *clog_anchor(clog *l, uint64_t *first_segment) {
  if (l->objects) {
    pthread_mutex_lock(&l->marker_mu);
    uint64_t now = env_wall_micros(l->e);
    mica_err *err = NULL;
    if (now < l->marker_wall ||
        now - l->marker_wall > l->o.marker_horizon_us / 2) {
      /* Renewed under a new name, never rewritten: a collector that
       * judged the old marker stale may delete it, not this one. */
      uint64_t old = l->marker_wall;
      err = put_marker(l->e, l->dir, l->name, now > old ? now : old + 1);
      if (err == NULL) {
        l->marker_wall = now > old ? now : old + 1;
        l->markers++;
        char name[64];
        char *path = path_join(l->dir, marker_name(name, sizeof(name), old));
        err_free(env_remove(l->e, path));
        free(path);
      }
    }
    pthread_mutex_unlock(&l->marker_mu);
    if (err != NULL) return err_wrap(err, "commit log %s: renewing its marker",
                                     l->name);
  }
  *first_segment = clog_current_segment(l);
  return NULL;
}

uint64_t clog_replay_floor(clog *l, uint64_t tablet_id, uint64_t epoch,
                           uint64_t flushed_seq, uint64_t current) {
  if (!l->objects) return current;
  pthread_mutex_lock(&l->mu);
  uint64_t best = l->segs[l->n_segs - 1]->number;
  for (size_t i = 0; i < l->n_segs; i++) {
    const clog_seg *s = l->segs[i];
    if (s->number >= best) continue;
    for (size_t j = 0; j < s->n_ents; j++)
      if (s->ents[j].tablet == tablet_id && s->ents[j].epoch == epoch &&
          s->ents[j].max_seq > flushed_seq) {
        best = s->number;
        break;
      }
  }
  pthread_mutex_unlock(&l->mu);
  /* Never backwards: replay_floor only narrows what a replay reads. */
  return best > current ? best : current;
}

/* ---- the public calls ---- */

/* The last of a log, on a failed open and on close: its locks and
 * condition variables, its names and itself. */
static void log_free(clog *l) {
  pthread_cond_destroy(&l->del_cv);
  pthread_cond_destroy(&l->work_cv);
  pthread_cond_destroy(&l->done_cv);
  pthread_mutex_destroy(&l->marker_mu);
  pthread_mutex_destroy(&l->mu);
  free(l->dir);
  free(l->name);
  free(l);
}

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
  if (!dir_appends_in_place(e, dir)) {
    /* Object mode (S3): no directory, no lock, one object per group. */
    if (o->batch_bytes == 0 || o->max_objects < 2 ||
        o->batch_us > 10000000) {
      free(dir);
      return err_new(MICA_INVALID_ARGUMENT,
                     "commit log: batch_bytes must be positive, "
                     "max_objects >= 2 and batch_us <= 10 s");
    }
    clog *l = xcalloc(1, sizeof(*l));
    l->e = e;
    l->dir = dir;
    l->lock_fd = -1;
    l->name = xstrdup(name);
    l->o = *o;
    l->objects = true;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->marker_mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->done_cv, NULL);
    pthread_cond_init(&l->del_cv, NULL);
    l->next_number = 1;
    mica_err *err = open_objects(l);
    if (err == NULL) {
      clog_seg *s = NULL;
      err_free(seg_open(l, l->next_number++, &s));
      l->segs = xcalloc(1, sizeof(*l->segs));
      l->segs[l->n_segs++] = s;
      if (pthread_create(&l->deleter, NULL, deleter_main, l) != 0)
        err = err_new(MICA_IO_ERROR, "commit log %s: cannot start its "
                      "deleter thread", name);
      else
        l->deleter_started = true;
    }
    if (err == NULL) {
      if (pthread_create(&l->writer, NULL, writer_main, l) != 0)
        err = err_new(MICA_IO_ERROR, "commit log %s: cannot start its writer "
                      "thread", name);
      else
        l->writer_started = true;
    }
    if (err != NULL) {
      if (l->deleter_started) {
        pthread_mutex_lock(&l->mu);
        l->stop_deleter = true;
        pthread_cond_signal(&l->del_cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->deleter, NULL);
      }
      for (size_t i = 0; i < l->n_segs; i++) seg_free(l->segs[i]);
      free(l->segs);
      log_free(l);
      return err_wrap(err, "commit log %s", name);
    }
    *out = l;
    return NULL;
  }
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
  pthread_mutex_init(&l->marker_mu, NULL);
  pthread_cond_init(&l->work_cv, NULL);
  pthread_cond_init(&l->done_cv, NULL);
  pthread_cond_init(&l->del_cv, NULL);
  l->next_number = 1;
  clog_seg *s = NULL;
  err = seg_open(l, l->next_number, &s);
  if (err != NULL) {
    env_unlock(e, l->lock_fd);
    log_free(l);
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
  if (l->objects) {
    /* Into the open group; the writer thread PUTs it when it is due. */
    if (s->data.len == 0) {
      uint8_t h[HEADER_PAYLOAD];
      memcpy(h, WAL_MAGIC_BYTES, 8);
      encode_fixed32(h + 8, WAL_VERSION_COMMITLOG);
      encode_fixed64(h + 12, 0);
      encode_fixed64(h + 20, s->number);
      wal_frame_append(&s->data, FRAME_HEADER, slice_make(h, sizeof(h)));
      s->first_add_us = env_now_micros(l->e);
    }
    for (size_t i = 0; i < n; i++) {
      slice b = batches[i];
      uint64_t seq = decode_fixed64(b.data);
      uint64_t count = decode_fixed32(b.data + 8);
      buf_resize(&rec, CLOG_RECORD_TAG + b.len);
      encode_fixed64((uint8_t *)rec.data, tablet_id);
      encode_fixed64((uint8_t *)rec.data + 8, epoch);
      memcpy(rec.data + CLOG_RECORD_TAG, b.data, b.len);
      wal_frame_append(&s->data, FRAME_DATA, buf_slice(&rec));
      seg_note(s, tablet_id, epoch, seq, count > 0 ? seq + count - 1 : seq);
    }
    s->bytes = s->data.len;
    s->pending++;
    tk->seg = s;
    tk->t = 0;
    (void)sync; /* every group is one durable PUT */
    pthread_cond_signal(&l->work_cv);
    maybe_force_flush_locked(l);
    pthread_mutex_unlock(&l->mu);
    buf_free(&rec);
    return NULL;
  }
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
  if (l->objects) {
    /* Acknowledged only once the group's PUT succeeded. */
    pthread_mutex_lock(&l->mu);
    while (!s->written) pthread_cond_wait(&l->done_cv, &l->mu);
    mica_err *err = err_dup(s->err);
    s->pending--;
    pthread_mutex_unlock(&l->mu);
    tk->seg = NULL;
    return err;
  }
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
  if (l->objects) {
    /* The open group if it holds records, else the last closed one. */
    clog_seg *target = s->data.len > 0 ? s : NULL;
    for (size_t i = l->n_segs - 1; target == NULL && i-- > 0;)
      if (l->segs[i]->sealed) target = l->segs[i];
    mica_err *err = NULL;
    if (target != NULL) {
      target->pending++; /* keeps it in the list while we wait */
      l->flush_now = true;
      pthread_cond_signal(&l->work_cv);
      while (!target->written) pthread_cond_wait(&l->done_cv, &l->mu);
      err = err_dup(target->err);
      target->pending--;
    }
    pthread_mutex_unlock(&l->mu);
    return err;
  }
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
  if (l->objects) {
    queue_deletions_locked(l, del, n);
    n = 0;
  }
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
  out->puts = l->puts;
  out->put_errors = l->put_errors;
  out->put_bytes = l->put_bytes;
  out->put_micros = l->put_micros;
  pthread_mutex_unlock(&l->mu);
  pthread_mutex_lock(&l->marker_mu);
  out->markers = l->markers;
  pthread_mutex_unlock(&l->marker_mu);
}

mica_err *clog_close(clog *l) {
  if (l == NULL) return NULL;
  mica_err *err = NULL;
  if (l->objects) {
    /* The writer PUTs what is left, then stops. */
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    if (l->writer_started) pthread_join(l->writer, NULL);
    for (size_t i = 0; i < l->n_segs && err == NULL; i++)
      if (l->segs[i]->err != NULL) err = err_dup(l->segs[i]->err);
    /* The deleter finishes its queue (a clean shutdown leaves no object
     * that every tablet flushed past), then stops. */
    pthread_mutex_lock(&l->mu);
    l->stop_deleter = true;
    pthread_cond_signal(&l->del_cv);
    pthread_mutex_unlock(&l->mu);
    if (l->deleter_started) pthread_join(l->deleter, NULL);
    free(l->dq);
  } else {
    clog_seg *s = l->segs[l->n_segs - 1];
    s->active = false;
    err = seg_close_locked(l, s);
  }
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
  log_free(l);
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

/* A NOT_FOUND from replaying segment or object `name` of log `dir` that
 * the listing named: it was deleted by its writer after a manifest write
 * said no tablet needs it, so the caller's manifest is out of date:
 * ABORTED. Any other error (or NULL) is returned as it is. */
static mica_err *deleted_during_replay(mica_err *err, const char *dir,
                                       const char *name) {
  if (err == NULL || err_code(err) != MICA_NOT_FOUND) return err;
  mica_err *w = err_new(MICA_ABORTED,
                        "commit log %s: %s was deleted during the replay: %s",
                        dir, name, err_msg(err));
  err_free(err);
  return w;
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

/* A group object read whole and checked once: its bytes, its data frames
 * in order and its first damage, if any (every frame before the damage is
 * listed, none after it). A replay of any tablet walks the frames; the
 * checks (checksums, types, lengths, the header) are not repeated. */
typedef struct obj_frame {
  uint64_t off; /* of the frame in the object */
  uint64_t tablet, epoch, seq;
  uint32_t count, len; /* len: the frame's payload bytes */
} obj_frame;

typedef struct obj_parsed {
  buf b;
  obj_frame *f;
  size_t nf;
  const char *why; /* the damage, NULL if none */
  uint64_t why_off;
} obj_parsed;

static void obj_parsed_free(obj_parsed *o) {
  buf_free(&o->b);
  free(o->f);
  memset(o, 0, sizeof(*o));
}

/* Checks group object `number` (its bytes `b`, taken) strictly: a PUT is
 * atomic, so an object is whole or absent and any damage is CORRUPTION,
 * never a torn tail. */
static void parse_object(uint64_t number, buf *b, obj_parsed *out) {
  memset(out, 0, sizeof(*out));
  out->b = *b;
  *b = (buf)BUF_INIT;
  uint64_t size = out->b.len;
  const uint8_t *p = (const uint8_t *)out->b.data;
  uint64_t off = 0;
  size_t cap = 0;
  bool header = true;
  while (off < size) {
    const char *why = NULL;
    uint32_t len = 0;
    if (size - off < WAL_FRAME_HEADER) {
      why = "partial frame header";
    } else {
      len = decode_fixed32(p + off + 4);
      uint8_t type = p[off + 8];
      if (type != (header ? FRAME_HEADER : FRAME_DATA))
        why = "bad record type";
      else if (len > size - off - WAL_FRAME_HEADER)
        why = "length runs past the end of the object";
      else if (crc32c_extend(0, p + off + 4, 5 + (size_t)len) !=
               crc32c_unmask(decode_fixed32(p + off)))
        why = "checksum mismatch";
    }
    const uint8_t *d = p + off + WAL_FRAME_HEADER;
    if (why == NULL && header) {
      if (len != HEADER_PAYLOAD || memcmp(d, WAL_MAGIC_BYTES, 8) != 0 ||
          decode_fixed32(d + 8) != WAL_VERSION_COMMITLOG)
        why = "not a commit log header";
      else if (decode_fixed64(d + 20) != number)
        why = "header names another object number";
    } else if (why == NULL && len < CLOG_RECORD_TAG + 12) {
      why = "record shorter than its tag and batch header";
    }
    if (why != NULL) {
      out->why = why;
      out->why_off = off;
      return;
    }
    if (header) {
      header = false;
      off += WAL_FRAME_HEADER + len;
      continue;
    }
    if (out->nf == cap) {
      cap = cap ? 2 * cap : 16;
      out->f = xrealloc(out->f, cap * sizeof(*out->f));
    }
    obj_frame *f = &out->f[out->nf++];
    f->off = off;
    f->tablet = decode_fixed64(d);
    f->epoch = decode_fixed64(d + 8);
    f->seq = decode_fixed64(d + CLOG_RECORD_TAG);
    f->count = decode_fixed32(d + CLOG_RECORD_TAG + 8);
    f->len = len;
    off += WAL_FRAME_HEADER + len;
  }
  if (header) {
    out->why = "empty object (no header)";
    out->why_off = 0;
  }
}

/* Passes the records of (tablet, epoch) above after_seq of a checked
 * object to `fn`, then reports its damage, if any, as CORRUPTION naming
 * the object and the offset. */
static mica_err *replay_parsed(const char *path, const obj_parsed *o,
                               uint64_t tablet, uint64_t epoch,
                               uint64_t after_seq, clog_record_fn fn,
                               void *arg, clog_replay_stats *st) {
  for (size_t i = 0; i < o->nf; i++) {
    const obj_frame *f = &o->f[i];
    st->records_seen++;
    if (f->tablet != tablet || f->epoch != epoch) continue;
    if (f->count == 0 || f->seq + f->count - 1 <= after_seq) continue;
    st->records++;
    const uint8_t *d = o->b.data + f->off + WAL_FRAME_HEADER;
    mica_err *err = fn(arg, slice_make(d + CLOG_RECORD_TAG,
                                       f->len - CLOG_RECORD_TAG),
                       path, f->off);
    if (err != NULL) return err;
  }
  if (o->why != NULL)
    return err_new(MICA_CORRUPTION, "commit log %s: offset %" PRIu64
                   ": %s (an object is written whole: this is damage)",
                   path, o->why_off, o->why);
  return NULL;
}

/* ---- one read of a log's objects for every tablet recovering from it ----
 *
 * A new owner of a dead server's tablets opens them at about the same
 * time, each replaying the same log. The replays of one log that overlap
 * in time share its objects: the first to need an object GETs and checks
 * it and keeps it here; the others take it from here, or wait for the
 * GET in flight. An object's name is never reused and an object is never
 * rewritten (a group's number is given once; a failed PUT's group is not
 * PUT again under it), so a kept object is what a GET would return, and
 * each replay still LISTs the log itself and takes only the objects its
 * own listing shows: it reads what it would have read alone.
 *
 * The kept objects of a log stay for a linger (10 s) after its last
 * replay ends, for the next open of the same log's tablets (a tablet
 * server opens one at a time), then the reaper thread drops them. All
 * the logs' kept objects together stay under a process-wide limit
 * (clog_replay_cache_set_limit); an object that does not fit is not kept,
 * and every replay reads it on its own (one GET each, as without sharing).
 * Segment mode does not share: segments are local files read through the
 * page cache, and closed ones are skipped by their index. */
enum { RC_FETCHING, RC_READY, RC_REFUSED };

typedef struct rc_obj {
  uint64_t number;
  int state;
  obj_parsed po; /* RC_READY */
  uint64_t bytes;
} rc_obj;

typedef struct rc_log {
  env *e;
  char *dir;
  unsigned users;
  uint64_t idle_since; /* monotonic µs when users fell to 0 */
  rc_obj **v; /* sorted by number */
  size_t n;
  struct rc_log *next;
} rc_log;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rc_log *logs;
  uint64_t limit, held, linger_us;
  uint64_t gets, shared, waits, refused, replays;
  bool reaper;             /* the reaper thread runs */
  pthread_cond_t reaper_cv;
} rc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
        CLOG_REPLAY_CACHE_BYTES, 0, CLOG_REPLAY_CACHE_LINGER_US, 0, 0, 0, 0, 0,
        false, PTHREAD_COND_INITIALIZER};

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* MICA_CLOG_REPLAY_CACHE_MB, read once, sets the limit's default (0
 * turns sharing off); a malformed value is logged and ignored. */
static pthread_once_t rc_once = PTHREAD_ONCE_INIT;
static bool rc_limit_set;

static void rc_read_environ(void) {
  const char *v = getenv("MICA_CLOG_REPLAY_CACHE_MB");
  if (v == NULL || v[0] == '\0') return;
  char *end = NULL;
  errno = 0;
  unsigned long long mb = strtoull(v, &end, 10);
  if (errno != 0 || *end != '\0' || v[0] == '-' || mb > (1ull << 40)) {
    LOG_W("MICA_CLOG_REPLAY_CACHE_MB=%s is not a number of MiB; keeping "
          "the default limit of %" PRIu64 " MiB for shared log replays",
          v, CLOG_REPLAY_CACHE_BYTES >> 20);
    return;
  }
  pthread_mutex_lock(&rc.mu);
  if (!rc_limit_set) rc.limit = (uint64_t)mb << 20;
  pthread_mutex_unlock(&rc.mu);
}

uint64_t clog_replay_cache_set_limit(uint64_t bytes) {
  pthread_once(&rc_once, rc_read_environ);
  pthread_mutex_lock(&rc.mu);
  rc_limit_set = true;
  uint64_t old = rc.limit;
  rc.limit = bytes;
  pthread_mutex_unlock(&rc.mu);
  return old;
}

void clog_replay_cache_get_stats(clog_replay_cache_stats *out) {
  pthread_mutex_lock(&rc.mu);
  memset(out, 0, sizeof(*out));
  out->gets = rc.gets;
  out->shared = rc.shared;
  out->waits = rc.waits;
  out->refused = rc.refused;
  out->held_bytes = rc.held;
  out->replays = rc.replays;
  for (rc_log *g = rc.logs; g != NULL; g = g->next) {
    out->logs++;
    if (g->users == 0) out->lingering++;
  }
  pthread_mutex_unlock(&rc.mu);
}

uint64_t clog_replay_cache_set_linger(uint64_t us) {
  pthread_mutex_lock(&rc.mu);
  uint64_t old = rc.linger_us;
  rc.linger_us = us;
  pthread_cond_broadcast(&rc.reaper_cv);
  pthread_mutex_unlock(&rc.mu);
  return old;
}

/* Unlinks log `g` (no replay uses it) and frees it with its objects.
 * Caller holds rc.mu. */
static void rc_drop_locked(rc_log *g) {
  rc_log **pp = &rc.logs;
  while (*pp != g) pp = &(*pp)->next;
  *pp = g->next;
  for (size_t i = 0; i < g->n; i++) {
    rc.held -= g->v[i]->bytes;
    obj_parsed_free(&g->v[i]->po);
    free(g->v[i]);
  }
  free(g->v);
  free(g->dir);
  free(g);
}

/* Drops every log no replay uses whose linger ended by `now` (all of
 * them when `all`), and returns the earliest end of a linger still
 * running (0 if none). Caller holds rc.mu. */
static uint64_t rc_expire_locked(uint64_t now, bool all) {
  uint64_t next = 0;
  for (rc_log *g = rc.logs, *nx; g != NULL; g = nx) {
    nx = g->next;
    if (g->users > 0) continue;
    uint64_t end = g->idle_since + rc.linger_us;
    if (all || end <= now) {
      rc_drop_locked(g);
    } else if (next == 0 || end < next) {
      next = end;
    }
  }
  return next;
}

/* The reaper: drops lingering logs when their linger ends; exits when
 * none is left. */
static void *rc_reaper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&rc.mu);
  for (;;) {
    uint64_t now = mono_us();
    uint64_t next = rc_expire_locked(now, false);
    if (next == 0) break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (next - now) * 1000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&rc.reaper_cv, &rc.mu, &ts);
  }
  rc.reaper = false;
  pthread_mutex_unlock(&rc.mu);
  return NULL;
}

static rc_log *rc_join(env *e, const char *dir) {
  pthread_once(&rc_once, rc_read_environ);
  pthread_mutex_lock(&rc.mu);
  rc_log *g = rc.logs;
  while (g != NULL && !(g->e == e && strcmp(g->dir, dir) == 0)) g = g->next;
  if (g == NULL) {
    g = xcalloc(1, sizeof(*g));
    g->e = e;
    g->dir = xstrdup(dir);
    g->next = rc.logs;
    rc.logs = g;
  }
  g->users++;
  rc.replays++;
  pthread_mutex_unlock(&rc.mu);
  return g;
}

/* The last replay of a log to end keeps its objects for the linger (a
 * tablet server opens tablets one at a time, so the next open of the
 * same dead log's tablets usually starts within it), then the reaper
 * drops them; with no linger they go at once. */
static void rc_leave(rc_log *g) {
  pthread_mutex_lock(&rc.mu);
  rc.replays--;
  if (--g->users > 0) {
    pthread_mutex_unlock(&rc.mu);
    return;
  }
  g->idle_since = mono_us();
  if (rc.linger_us == 0 || g->n == 0) {
    rc_drop_locked(g);
  } else if (!rc.reaper) {
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, rc_reaper_main, NULL) == 0)
      rc.reaper = true;
    else
      rc_drop_locked(g); /* no reaper: no linger */
    pthread_attr_destroy(&at);
  } else {
    pthread_cond_broadcast(&rc.reaper_cv);
  }
  pthread_mutex_unlock(&rc.mu);
}

/* The position of object `number` in g->v, or where it would go. Caller
 * holds rc.mu. */
static size_t rc_pos(const rc_log *g, uint64_t number) {
  size_t lo = 0, hi = g->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (g->v[mid]->number < number)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void rc_remove_locked(rc_log *g, rc_obj *o) {
  size_t i = rc_pos(g, o->number);
  memmove(&g->v[i], &g->v[i + 1], (g->n - i - 1) * sizeof(*g->v));
  g->n--;
  free(o);
}

/* Object `number` (at `path`) of log `g`, checked: the kept copy, or read
 * now (one GET) into *own. Returns the object, or NULL with *err set (a
 * failed GET, kept by no one). *shared tells whether the copy was read by
 * another replay or an earlier object fetch of this one. */
static const obj_parsed *rc_get(rc_log *g, const char *path,
                                uint64_t number, obj_parsed *own,
                                mica_err **err, bool *shared) {
  *err = NULL;
  *shared = false;
  rc_obj *mine = NULL;
  pthread_mutex_lock(&rc.mu);
  for (;;) {
    size_t i = rc_pos(g, number);
    rc_obj *o = i < g->n && g->v[i]->number == number ? g->v[i] : NULL;
    if (o == NULL) {
      if (rc.limit > 0) {
        mine = xcalloc(1, sizeof(*mine));
        mine->number = number;
        mine->state = RC_FETCHING;
        g->v = xrealloc(g->v, (g->n + 1) * sizeof(*g->v));
        memmove(&g->v[i + 1], &g->v[i], (g->n - i) * sizeof(*g->v));
        g->v[i] = mine;
        g->n++;
      }
      break;
    }
    if (o->state == RC_READY) {
      rc.shared++;
      pthread_mutex_unlock(&rc.mu);
      *shared = true;
      return &o->po;
    }
    if (o->state == RC_REFUSED) break;
    rc.waits++;
    pthread_cond_wait(&rc.cv, &rc.mu);
  }
  rc.gets++;
  pthread_mutex_unlock(&rc.mu);
  buf b = BUF_INIT;
  *err = env_read_object(g->e, path, (size_t)OBJECT_MAX_BYTES, &b);
  obj_parsed po;
  if (*err == NULL) parse_object(number, &b, &po);
  buf_free(&b);
  if (mine == NULL) {
    if (*err != NULL) return NULL;
    *own = po;
    return own;
  }
  pthread_mutex_lock(&rc.mu);
  const obj_parsed *ret = NULL;
  if (*err != NULL) {
    /* Not kept: a waiter reads it itself and gets its own answer. */
    rc_remove_locked(g, mine);
  } else {
    uint64_t bytes = po.b.len + po.nf * sizeof(obj_frame) + sizeof(*mine);
    /* Lingering logs (no replay uses them) make room first. */
    if (rc.held + bytes > rc.limit) rc_expire_locked(0, true);
    if (rc.held + bytes <= rc.limit) {
      mine->po = po;
      mine->bytes = bytes;
      mine->state = RC_READY;
      rc.held += bytes;
      ret = &mine->po;
    } else {
      mine->state = RC_REFUSED;
      rc.refused++;
      *own = po;
      ret = own;
    }
  }
  pthread_cond_broadcast(&rc.cv);
  pthread_mutex_unlock(&rc.mu);
  return ret;
}

/* Group objects fetched ahead of the replay: a recovery reads every
 * object from the first one a tablet needs, and one request at a time
 * that is a round trip per object. Up to CLOG_READ_AHEAD objects are in
 * flight (or fetched and waiting), each read whole in one GET
 * (env_read_object) or taken from another replay of the same log
 * (rc_get); the replay still takes them strictly in number order, on the
 * calling thread, and stops at the first error. */
enum { CLOG_READ_AHEAD = 8 };

typedef struct fetched {
  obj_parsed own;       /* read by this replay alone */
  const obj_parsed *po; /* &own, a kept object, or NULL on error */
  bool shared;
  mica_err *err;
  bool done;
} fetched;

typedef struct prefetch {
  rc_log *g;
  const char *dir;
  const uint64_t *nums;
  size_t k;
  fetched *slots;  /* one per object */
  size_t next;     /* the next object no thread has claimed */
  size_t consumed; /* objects the replay has taken */
  bool stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} prefetch;

static char *object_path(const char *dir, uint64_t number, char *name,
                         size_t cap) {
  clog_segment_name(name, cap, number);
  return path_join(dir, name);
}

/* Fetches object i into its slot (called without the lock). */
static void fetch_one(prefetch *pf, size_t i) {
  char name[64];
  char *path = object_path(pf->dir, pf->nums[i], name, sizeof(name));
  obj_parsed own;
  memset(&own, 0, sizeof(own));
  mica_err *err = NULL;
  bool shared = false;
  const obj_parsed *po = rc_get(pf->g, path, pf->nums[i], &own, &err,
                                &shared);
  free(path);
  pthread_mutex_lock(&pf->mu);
  fetched *s = &pf->slots[i];
  if (po == &own) {
    s->own = own;
    po = &s->own;
  }
  s->po = po;
  s->shared = shared;
  s->err = err;
  s->done = true;
  pthread_cond_broadcast(&pf->cv);
  pthread_mutex_unlock(&pf->mu);
}

static void *prefetch_main(void *arg) {
  prefetch *pf = arg;
  pthread_mutex_lock(&pf->mu);
  for (;;) {
    while (!pf->stop && pf->next < pf->k &&
           pf->next >= pf->consumed + CLOG_READ_AHEAD)
      pthread_cond_wait(&pf->cv, &pf->mu);
    if (pf->stop || pf->next >= pf->k) break;
    size_t i = pf->next++;
    pthread_mutex_unlock(&pf->mu);
    fetch_one(pf, i);
    pthread_mutex_lock(&pf->mu);
  }
  pthread_mutex_unlock(&pf->mu);
  return NULL;
}

/* The object-mode replay of objects nums[0..k). */
static mica_err *replay_objects(env *e, const char *dir,
                                const uint64_t *nums, size_t k,
                                uint64_t tablet, uint64_t epoch,
                                uint64_t after_seq, clog_record_fn fn,
                                void *arg, clog_replay_stats *st) {
  prefetch pf = {.dir = dir, .nums = nums, .k = k};
  pf.g = rc_join(e, dir);
  pf.slots = xcalloc(k + 1, sizeof(*pf.slots));
  pthread_mutex_init(&pf.mu, NULL);
  pthread_cond_init(&pf.cv, NULL);
  /* The calling thread fetches too when no helper has claimed the object
   * it waits for, so a thread that cannot start costs only speed. */
  size_t want = k > 1 ? (k < CLOG_READ_AHEAD ? k : CLOG_READ_AHEAD) : 0;
  pthread_t th[CLOG_READ_AHEAD];
  size_t started = 0;
  for (size_t t = 0; t < want; t++)
    if (pthread_create(&th[started], NULL, prefetch_main, &pf) == 0)
      started++;
  mica_err *err = NULL;
  for (size_t i = 0; i < k && err == NULL; i++) {
    pthread_mutex_lock(&pf.mu);
    if (!pf.slots[i].done && pf.next == i) {
      pf.next++;
      pthread_mutex_unlock(&pf.mu);
      fetch_one(&pf, i);
      pthread_mutex_lock(&pf.mu);
    }
    while (!pf.slots[i].done) pthread_cond_wait(&pf.cv, &pf.mu);
    fetched *s = &pf.slots[i];
    obj_parsed own = s->own;
    const obj_parsed *po = s->po == &s->own ? &own : s->po;
    memset(&s->own, 0, sizeof(s->own));
    s->po = NULL;
    err = s->err;
    s->err = NULL;
    bool shared = s->shared;
    pf.consumed = i + 1;
    pthread_cond_broadcast(&pf.cv);
    pthread_mutex_unlock(&pf.mu);
    char name[64];
    char *path = object_path(dir, nums[i], name, sizeof(name));
    st->segments_read++;
    if (shared) st->objects_shared++;
    if (err == NULL)
      err = replay_parsed(path, po, tablet, epoch, after_seq, fn, arg, st);
    err = deleted_during_replay(err, dir, name);
    free(path);
    obj_parsed_free(&own);
  }
  pthread_mutex_lock(&pf.mu);
  pf.stop = true;
  pthread_cond_broadcast(&pf.cv);
  pthread_mutex_unlock(&pf.mu);
  for (size_t t = 0; t < started; t++) pthread_join(th[t], NULL);
  for (size_t i = 0; i < k; i++) {
    obj_parsed_free(&pf.slots[i].own);
    err_free(pf.slots[i].err);
  }
  free(pf.slots);
  pthread_cond_destroy(&pf.cv);
  pthread_mutex_destroy(&pf.mu);
  rc_leave(pf.g);
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
   * with the log directory on one side). In object mode a marker object
   * plays that part (the collector removes the markers last). */
  bool objects = !dir_appends_in_place(e, dir);
  bool has_lock = false;
  for (size_t i = 0; i < n && !has_lock; i++)
    has_lock = objects ? clog_parse_marker_name(names[i], &(uint64_t){0})
                       : strcmp(names[i], CLOG_LOCK_NAME) == 0;
  if (!has_lock) {
    env_free_names(names, n);
    return err_new(MICA_NOT_FOUND, "commit log %s: no such log (no %s)", dir,
                   objects ? CLOG_MARKER_PREFIX "* marker" : CLOG_LOCK_NAME);
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
  if (objects) {
    err = replay_objects(e, dir, nums, k, tablet_id, epoch, after_seq, fn,
                         arg, st);
    k = 0;
  }
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
    err = deleted_during_replay(err, dir, name);
    free(path);
  }
  free(nums);
  return err;
}

/* ---- collecting the logs of dead incarnations ---- */

/* What the manifests say about logs, read in one pass: every log some
 * tablet that can open again may replay from, with the smallest first
 * segment such a manifest names. */
typedef struct need {
  char *name;
  uint64_t floor;
} need;

typedef struct needs {
  need *v;
  size_t n;
} needs;

static void needs_free(needs *nd) {
  for (size_t i = 0; i < nd->n; i++) free(nd->v[i].name);
  free(nd->v);
}

static const need *needs_find(const needs *nd, const char *name) {
  for (size_t i = 0; i < nd->n; i++)
    if (strcmp(nd->v[i].name, name) == 0) return &nd->v[i];
  return NULL;
}

/* Reads every manifest under `tablets_dir` once. An error other than a
 * missing manifest fails the pass (then nothing is deleted). */
static mica_err *read_needs(env *e, const char *tablets_dir, needs *out) {
  memset(out, 0, sizeof(*out));
  char **dirs = NULL;
  size_t nd = 0;
  mica_err *err = layout_list_tablets(e, tablets_dir, &dirs, &nd);
  if (err != NULL) return err;
  for (size_t i = 0; i < nd && err == NULL; i++) {
    char *dir = path_join(tablets_dir, dirs[i]);
    man_state m;
    man_init(&m);
    err = man_read(e, dir, &m);
    if (err == NULL) {
      /* Only a tablet that can open again replays: a split, merged or
       * dropped one never does (tablet_open.c refuses it). */
      if ((m.state == MAN_LIVE || m.state == MAN_SPLITTING) &&
          man_holds_writes(&m) && m.log_name.len > 0) {
        char *name = xmemdup(m.log_name.data, m.log_name.len + 1);
        name[m.log_name.len] = '\0';
        need *x = (need *)needs_find(out, name);
        if (x == NULL) {
          out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
          x = &out->v[out->n++];
          x->name = name;
          x->floor = m.log_first_segment;
        } else {
          free(name);
          if (m.log_first_segment < x->floor) x->floor = m.log_first_segment;
        }
      }
    } else if (err_code(err) == MICA_NOT_FOUND) {
      err_free(err); /* a directory being created or removed */
      err = NULL;
    } else {
      err = err_wrap(err, "reading %s", dir);
    }
    man_clear(&m);
    free(dir);
  }
  env_free_names(dirs, nd);
  if (err != NULL) needs_free(out);
  return err;
}

/* A log the collector may act on: in segment mode one whose LOCK it
 * took (its server is gone); in object mode every log, with what a LIST
 * showed of it before the manifests were read. */
typedef struct cand {
  char *name, *dir;
  int fd;
  uint64_t *objs; /* object numbers */
  size_t n_objs;
  uint64_t *marks; /* marker times */
  size_t n_marks;
} cand;

mica_err *clog_collect_dead_horizon(env *e, const char *tablets_dir,
                                    uint64_t marker_horizon_us,
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
  if (err != NULL) {
    free(root);
    return err;
  }
  cand *c = xcalloc(n + 1, sizeof(*c));
  size_t nc = 0;
  for (size_t i = 0; i < n && err == NULL; i++) {
    size_t nl = strlen(names[i]), sl = strlen(CLOG_NEW_SUFFIX);
    if (nl >= sl && strcmp(names[i] + nl - sl, CLOG_NEW_SUFFIX) == 0)
      continue; /* being created (or its creator died before the rename) */
    char *dir = path_join(root, names[i]);
    if (dir_appends_in_place(e, dir)) {
      char *lp = path_join(dir, CLOG_LOCK_NAME);
      /* A log appears under its name already locked (clog_open): a free
       * lock means its server is gone, and no one appends to it again,
       * so the set of manifests that need it only shrinks (a take-over
       * names the new owner's log). Reading them after taking the lock
       * therefore sees every one that still does. */
      int fd = -1;
      bool has_lock = env_exists(e, lp);
      mica_err *lerr = has_lock ? env_lock(e, lp, &fd) : NULL;
      free(lp);
      if (has_lock && lerr == NULL) {
        c[nc++] = (cand){xstrdup(names[i]), dir, fd, NULL, 0, NULL, 0};
        dir = NULL;
      }
      err_free(lerr); /* UNAVAILABLE: a live server holds it */
    } else {
      char **objs = NULL;
      size_t no = 0;
      err = env_list(e, dir, &objs, &no);
      if (err == NULL && no > 0) {
        cand x = {xstrdup(names[i]), dir, -1, xcalloc(no, sizeof(uint64_t)),
                  0, xcalloc(no, sizeof(uint64_t)), 0};
        bool old_marker = false;
        uint64_t now = env_wall_micros(e);
        for (size_t j = 0; j < no; j++) {
          uint64_t v;
          if (clog_parse_segment_name(objs[j], &v)) {
            x.objs[x.n_objs++] = v;
          } else if (clog_parse_marker_name(objs[j], &v)) {
            x.marks[x.n_marks++] = v;
            if (v + marker_horizon_us < now) old_marker = true;
          }
        }
        /* Nothing a pass could delete (no object, only young markers):
         * no candidate, so an idle cluster reads no manifest. */
        if (x.n_objs > 0 || old_marker) {
          c[nc++] = x;
          dir = NULL;
        } else {
          free(x.name);
          free(x.objs);
          free(x.marks);
        }
      }
      env_free_names(objs, no);
    }
    free(dir);
  }
  env_free_names(names, n);

  /* One pass over the manifests for every log. */
  needs nd = {NULL, 0};
  uint64_t read_at = env_wall_micros(e);
  if (err == NULL && nc > 0) err = read_needs(e, tablets_dir, &nd);
  for (size_t i = 0; i < nc; i++) {
    if (err == NULL) {
      const need *x = needs_find(&nd, c[i].name);
      if (c[i].fd >= 0 || c[i].objs == NULL) {
        if (x == NULL) {
          err = env_remove_tree(e, c[i].dir);
          if (err == NULL) {
            LOG_I("removed commit log %s: its server is gone and every "
                  "tablet logged in it was taken over or flushed", c[i].dir);
            if (removed != NULL) (*removed)++;
          }
        }
      } else {
        /* Object mode. Every object listed before the manifests were
         * read and below every needing manifest's first segment holds
         * nothing any tablet will replay (docs/storage.md). */
        uint64_t floor = x != NULL ? x->floor : UINT64_MAX;
        size_t left = 0, gone = 0;
        char **paths = xcalloc(c[i].n_objs + 1, sizeof(*paths));
        for (size_t j = 0; j < c[i].n_objs; j++) {
          if (c[i].objs[j] >= floor) {
            left++;
            continue;
          }
          char name[64];
          paths[gone++] = path_join(c[i].dir, clog_segment_name(
                                                  name, sizeof(name),
                                                  c[i].objs[j]));
        }
        /* One multi-object delete per 1000 on S3. */
        err = env_remove_many(e, (const char *const *)paths, gone);
        for (size_t j = 0; j < gone; j++) free(paths[j]);
        free(paths);
        /* Markers last, and only old ones: a server renews its marker
         * (under a new name) before a take-over names its log, so a
         * marker older than the horizon when no manifest needed the log
         * belongs to a log no manifest is about to name. */
        size_t marks_left = c[i].n_marks;
        for (size_t j = 0; j < c[i].n_marks && err == NULL && x == NULL &&
                           left == 0;
             j++) {
          if (c[i].marks[j] + marker_horizon_us >= read_at) continue;
          char name[64];
          char *path = path_join(c[i].dir, marker_name(name, sizeof(name),
                                                       c[i].marks[j]));
          err = env_remove_if_present(e, path);
          free(path);
          marks_left--;
        }
        if (err == NULL && gone > 0)
          LOG_I("commit log %s: deleted %zu objects no tablet needs", c[i].dir,
                gone);
        if (err == NULL && x == NULL && left == 0 && marks_left == 0) {
          LOG_I("removed commit log %s: no tablet needs it and its marker "
                "is older than the horizon", c[i].dir);
          if (removed != NULL) (*removed)++;
        }
      }
    }
    if (c[i].fd >= 0) env_unlock(e, c[i].fd);
    free(c[i].name);
    free(c[i].dir);
    free(c[i].objs);
    free(c[i].marks);
  }
  needs_free(&nd);
  free(c);
  free(root);
  return err;
}

mica_err *clog_collect_dead(env *e, const char *tablets_dir,
                            uint64_t *removed) {
  return clog_collect_dead_horizon(e, tablets_dir, CLOG_MARKER_HORIZON_US,
                                   removed);
}
