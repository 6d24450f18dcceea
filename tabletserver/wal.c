/* wal: segment writer with group commit, and the replaying reader.
 *
 * Writer. Records are framed into the open group under the mutex; the
 * first committer that finds no write in progress becomes the leader,
 * takes the whole open group (later records start a new one), and writes
 * it outside the mutex. Groups are therefore written strictly in ticket
 * order, one at a time, and "every group up to done_id is finished" is all
 * a waiter needs to know. A failure poisons the writer: the file may hold
 * a partial group, so nothing later may be acknowledged.
 *
 * Reader. Reads through a window buffer so that many small records cost a
 * few large positional reads. When a frame fails, the damage is classified
 * by scanning ahead for any frame that passes every check (see wal.h and
 * WAL_FORMAT.md for why that is the rule). */
#include "tabletserver/wal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/log.h"

enum { TYPE_ZERO = 0, TYPE_HEADER = 1, TYPE_DATA = 2 };

static const uint8_t WAL_MAGIC[8] = {'M', 'I', 'C', 'A', '-', 'W', 'A', 'L'};
/* Header versions: 1 is a tablet's own segment, 2 a server's commit log
 * segment (tabletserver/COMMITLOG_FORMAT.md); the framing is the same. */
#define WAL_VERSION 1
#define HEADER_PAYLOAD 28 /* magic 8, version 4, epoch 8, number 8 */
#define READ_WINDOW (256u << 10)

/* Preallocation of a segment's space (see wal.h): the leader extends the
 * allocated region to cover a group plus about as much again as the
 * segment already holds, clamped to [PREALLOC_MIN, PREALLOC_MAX], so that
 * the segments of idle or small tablets stay small while a busy one calls
 * fallocate a handful of times per segment. */
#define PREALLOC_MIN (1u << 20)
#define PREALLOC_MAX (16u << 20)

/* Group buffers come from one small server-wide free list instead of
 * malloc/free per group (a single-threaded writer forms one group per
 * record). Buffers that grew past POOL_BUF_MAX are freed, and at most
 * POOL_MAX are kept, so idle tablets hold no buffer and the pool holds at
 * most 1 MiB. */
#define GROUP_BUF_INIT (16u << 10)
#define POOL_BUF_MAX (64u << 10)
#define POOL_MAX 16

static struct {
  pthread_mutex_t mu;
  size_t n;               /* guarded by mu */
  buf bufs[POOL_MAX];     /* [0, n) are free, len 0; guarded by mu */
} g_pool = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}};

/* Gives `b` (empty, no memory) a buffer of at least `want` bytes. */
/* Process-wide figures for the tablet server's /metrics (wal_get_sums). */
static uint64_t g_groups, g_syncs, g_sync_micros; /* atomic adds */

void wal_get_sums(wal_sums *out) {
  out->groups = __atomic_load_n(&g_groups, __ATOMIC_RELAXED);
  out->syncs = __atomic_load_n(&g_syncs, __ATOMIC_RELAXED);
  out->sync_micros = __atomic_load_n(&g_sync_micros, __ATOMIC_RELAXED);
}

static void pool_get(buf *b, size_t want) {
  pthread_mutex_lock(&g_pool.mu);
  if (g_pool.n > 0) *b = g_pool.bufs[--g_pool.n];
  pthread_mutex_unlock(&g_pool.mu);
  buf_reserve(b, want < GROUP_BUF_INIT ? GROUP_BUF_INIT : want);
}

/* Takes `b`'s memory back (or frees it) and leaves `b` empty. */
static void pool_put(buf *b) {
  if (b->cap > 0 && b->cap <= POOL_BUF_MAX) {
    pthread_mutex_lock(&g_pool.mu);
    if (g_pool.n < POOL_MAX) {
      b->len = 0;
      g_pool.bufs[g_pool.n++] = *b;
      *b = (buf)BUF_INIT;
    }
    pthread_mutex_unlock(&g_pool.mu);
  }
  buf_free(b);
}

void wal_frame_append(buf *b, uint8_t type, slice payload) {
  uint8_t h[WAL_FRAME_HEADER];
  encode_fixed32(h + 4, (uint32_t)payload.len);
  h[8] = type;
  uint32_t crc = crc32c_extend(0, h + 4, 5);
  crc = crc32c_extend(crc, payload.data, payload.len);
  encode_fixed32(h, crc32c_mask(crc));
  buf_append(b, h, sizeof(h));
  buf_append_slice(b, payload);
}

/* ---- names ---- */

char *wal_segment_name(char *out, size_t size, uint64_t assign_epoch,
                       uint64_t number) {
  snprintf(out, size, "wal-%020" PRIu64 "-%020" PRIu64 ".log", assign_epoch,
           number);
  return out;
}

static bool parse_digits(const char *s, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < 20; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  *v = x;
  return true;
}

bool wal_parse_segment_name(const char *name, uint64_t *assign_epoch,
                            uint64_t *number) {
  /* "wal-" 20 digits "-" 20 digits ".log" */
  if (strlen(name) != 49 || memcmp(name, "wal-", 4) != 0 || name[24] != '-' ||
      strcmp(name + 45, ".log") != 0)
    return false;
  uint64_t e, n;
  if (!parse_digits(name + 4, &e) || !parse_digits(name + 25, &n)) return false;
  *assign_epoch = e;
  *number = n;
  return true;
}

/* ---- writer ---- */

struct wal_writer {
  env_writer *f; /* used by the leader only, or by open/close */
  char *path;
  /* Used by the leader only (like f): */
  uint64_t alloc_end;  /* file bytes preallocated so far */
  bool no_prealloc;    /* preallocation failed once: plain appends */

  pthread_mutex_t mu;
  pthread_cond_t cv; /* broadcast whenever a group finishes */
  /* Everything below is guarded by mu. */
  buf group;         /* framed records of the open group; no memory if empty */
  bool group_sync;   /* some record (or wal_sync) of the open group wants sync */
  uint64_t open_id;  /* ticket of the open group */
  uint64_t done_id;  /* every group with id <= done_id has finished */
  bool leading;      /* a leader is writing group done_id + 1 */
  bool unsynced;     /* bytes were written since the last successful sync */
  mica_err *err;     /* sticky failure */
  uint64_t failed_id; /* first failed group (valid when err != NULL) */
  uint64_t size;     /* file bytes including the open group */
};

static mica_err *sync_parent_dir(env *e, const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return env_sync_dir(e, ".");
  if (slash == path) return env_sync_dir(e, "/");
  char *dir = xmemdup(path, (size_t)(slash - path) + 1);
  dir[slash - path] = '\0';
  mica_err *err = env_sync_dir(e, dir);
  free(dir);
  return err;
}

mica_err *wal_writer_open(env *e, const char *path, uint64_t assign_epoch,
                          uint64_t number, wal_writer **out) {
  return wal_writer_open_version(e, path, WAL_VERSION, assign_epoch, number,
                                 out);
}

mica_err *wal_writer_open_version(env *e, const char *path, uint32_t version,
                                  uint64_t assign_epoch, uint64_t number,
                                  wal_writer **out) {
  *out = NULL;
  if (version != WAL_VERSION && version != WAL_VERSION_COMMITLOG)
    return err_new(MICA_INVALID_ARGUMENT, "wal open %s: unknown version %" PRIu32,
                   path, version);
  env_writer *f;
  mica_err *err = env_open_writer(e, path, ENV_CREATE_NEW, &f);
  if (err != NULL) return err_wrap(err, "wal open");

  uint8_t h[HEADER_PAYLOAD];
  memcpy(h, WAL_MAGIC, 8);
  encode_fixed32(h + 8, version);
  encode_fixed64(h + 12, assign_epoch);
  encode_fixed64(h + 20, number);
  buf frame = BUF_INIT;
  wal_frame_append(&frame, TYPE_HEADER, slice_make(h, sizeof(h)));
  err = env_append(f, frame.data, frame.len);
  buf_free(&frame);
  if (err == NULL) err = env_sync(f);
  if (err == NULL) err = sync_parent_dir(e, path);
  if (err != NULL) {
    /* A half-created segment holds nothing anyone was promised; removing
     * it lets the caller retry under the same name. */
    err_free(env_writer_close(f));
    err_free(env_remove(e, path));
    return err_wrap(err, "wal open %s", path);
  }

  wal_writer *w = xcalloc(1, sizeof(*w));
  w->f = f;
  w->path = xstrdup(path);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->open_id = 1;
  w->size = env_writer_size(f);
  *out = w;
  return NULL;
}

mica_err *wal_add(wal_writer *w, slice payload, bool sync, uint64_t *ticket) {
  if (payload.len > WAL_MAX_PAYLOAD)
    return err_new(MICA_INVALID_ARGUMENT,
                   "wal %s: record of %zu bytes exceeds the %u-byte limit",
                   w->path, payload.len, WAL_MAX_PAYLOAD);
  pthread_mutex_lock(&w->mu);
  if (w->err != NULL) {
    mica_err *e = err_dup(w->err);
    pthread_mutex_unlock(&w->mu);
    return e;
  }
  if (w->group.cap == 0) pool_get(&w->group, WAL_FRAME_HEADER + payload.len);
  wal_frame_append(&w->group, TYPE_DATA, payload);
  w->group_sync |= sync;
  w->size += WAL_FRAME_HEADER + payload.len;
  *ticket = w->open_id;
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Before the leader writes `n` bytes at `end`: makes sure they land in
 * preallocated space, so that the group's sync records no new file size.
 * Preallocation is an optimisation only: when it fails the segment is
 * written with plain appends from then on, which is still correct (the
 * append that follows reports a real disk-full condition). */
static void preallocate(wal_writer *w, uint64_t end, size_t n) {
  if (w->no_prealloc || end + n <= w->alloc_end) return;
  uint64_t grow = end < PREALLOC_MIN ? PREALLOC_MIN
                  : end > PREALLOC_MAX ? PREALLOC_MAX
                                       : end;
  mica_err *err = env_preallocate(w->f, end + n + grow);
  if (err != NULL) {
    LOG_W("wal %s: appending without preallocation: %s", w->path,
          err_msg(err));
    err_free(err);
    w->no_prealloc = true;
    return;
  }
  w->alloc_end = end + n + grow;
}

/* Called with mu held by a thread that found no leader and an unfinished
 * group: writes the open group (id done_id + 1) and returns with mu held. */
static void lead(wal_writer *w) {
  uint64_t id = w->open_id;
  buf g = w->group;
  bool sync = w->group_sync;
  w->group = (buf)BUF_INIT;
  w->group_sync = false;
  w->open_id++;
  w->leading = true;
  pthread_mutex_unlock(&w->mu);

  mica_err *err = NULL;
  if (g.len > 0) {
    preallocate(w, env_writer_size(w->f), g.len);
    err = env_append(w->f, g.data, g.len);
  }
  bool wrote = g.len > 0 && err == NULL;
  pool_put(&g);
  if (wrote) __atomic_fetch_add(&g_groups, 1, __ATOMIC_RELAXED);
  if (err == NULL && sync) {
    uint64_t t0 = env_now_micros(env_posix());
    err = env_sync(w->f);
    uint64_t t1 = env_now_micros(env_posix());
    __atomic_fetch_add(&g_syncs, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&g_sync_micros, t1 > t0 ? t1 - t0 : 0,
                       __ATOMIC_RELAXED);
  }

  pthread_mutex_lock(&w->mu);
  w->leading = false;
  w->done_id = id;
  if (err != NULL) {
    w->err = err_wrap(err, "wal %s", w->path);
    w->failed_id = id;
  } else if (sync) {
    w->unsynced = false;
  } else if (wrote) {
    w->unsynced = true;
  }
  pthread_cond_broadcast(&w->cv);
}

/* Waits for group `ticket`; mu held on entry and exit. */
static mica_err *commit_locked(wal_writer *w, uint64_t ticket) {
  for (;;) {
    if (ticket <= w->done_id) {
      if (w->err != NULL && ticket >= w->failed_id) return err_dup(w->err);
      return NULL;
    }
    /* Not finished, and the writer failed: the group can never be written. */
    if (w->err != NULL) return err_dup(w->err);
    if (!w->leading) {
      /* No leader means every group before the open one has finished, so
       * ticket (> done_id) is the open group. */
      lead(w);
      continue;
    }
    pthread_cond_wait(&w->cv, &w->mu);
  }
}

mica_err *wal_commit(wal_writer *w, uint64_t ticket) {
  pthread_mutex_lock(&w->mu);
  mica_err *e = commit_locked(w, ticket);
  pthread_mutex_unlock(&w->mu);
  return e;
}

mica_err *wal_append(wal_writer *w, slice payload, bool sync) {
  uint64_t t = 0;
  mica_err *e = wal_add(w, payload, sync, &t);
  if (e != NULL) return e;
  return wal_commit(w, t);
}

mica_err *wal_sync(wal_writer *w) {
  pthread_mutex_lock(&w->mu);
  mica_err *e;
  if (w->err != NULL) {
    e = err_dup(w->err);
  } else if (w->group.len == 0 && !w->leading && !w->unsynced) {
    e = NULL; /* everything written is already durable */
  } else {
    /* The open group may be empty: its leader then only syncs, which
     * covers every group written before it. */
    w->group_sync = true;
    e = commit_locked(w, w->open_id);
  }
  pthread_mutex_unlock(&w->mu);
  return e;
}

uint64_t wal_writer_size(wal_writer *w) {
  pthread_mutex_lock(&w->mu);
  uint64_t n = w->size;
  pthread_mutex_unlock(&w->mu);
  return n;
}

mica_err *wal_writer_error(wal_writer *w) {
  pthread_mutex_lock(&w->mu);
  mica_err *e = err_dup(w->err);
  pthread_mutex_unlock(&w->mu);
  return e;
}

mica_err *wal_writer_close(wal_writer *w) {
  if (w == NULL) return NULL;
  mica_err *err = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->err != NULL) {
    err = err_dup(w->err);
  } else if (w->group.len > 0 || w->unsynced) {
    w->group_sync = true;
    err = commit_locked(w, w->open_id);
  }
  pthread_mutex_unlock(&w->mu);
  mica_err *cerr = env_writer_close(w->f);
  if (err == NULL)
    err = err_wrap(cerr, "wal close %s", w->path);
  else
    err_free(cerr);
  pool_put(&w->group);
  err_free(w->err);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w->path);
  free(w);
  return err;
}

/* ---- reader ---- */

struct wal_reader {
  env_reader *f;
  char *path;
  uint64_t size;      /* file size at open */
  buf win;            /* file bytes [win_off, win_off + win.len) */
  uint64_t win_off;
  uint64_t pos;       /* offset of the next frame */
  uint64_t rec_off;   /* offset of the frame last returned */
  bool eof;
  uint64_t valid_end, dropped, zero_tail;
  mica_err *err;      /* sticky */
  uint32_t version;   /* from the header; 0 when there was none */
  uint64_t epoch, number;
};

/* Points *p at file bytes [off, off + n), which must lie within the file. */
static mica_err *ensure(wal_reader *r, uint64_t off, size_t n,
                        const uint8_t **p) {
  if (off >= r->win_off && off + n <= r->win_off + r->win.len) {
    *p = r->win.data + (off - r->win_off);
    return NULL;
  }
  uint64_t want = n > READ_WINDOW ? n : READ_WINDOW;
  if (want > r->size - off) want = r->size - off;
  buf_resize(&r->win, (size_t)want);
  size_t got = 0;
  mica_err *e = env_read(r->f, off, (size_t)want, r->win.data, &got);
  if (e == NULL && got != want)
    e = err_new(MICA_IO_ERROR,
                "short read of %zu bytes at offset %" PRIu64 " (got %zu)",
                (size_t)want, off, got);
  if (e != NULL) {
    r->win.len = 0;
    return err_wrap(e, "wal %s", r->path);
  }
  r->win_off = off;
  *p = r->win.data;
  return NULL;
}

/* Checks the frame at `off` expecting `type`. Sets *why to NULL and
 * *payload when it is valid, else *why to the reason. Only I/O fails. */
static mica_err *check_frame(wal_reader *r, uint64_t off, uint8_t type,
                             const char **why, slice *payload) {
  const uint8_t *h = NULL;
  if (r->size - off < WAL_FRAME_HEADER) {
    *why = "partial frame header";
    return NULL;
  }
  mica_err *e = ensure(r, off, WAL_FRAME_HEADER, &h);
  if (e != NULL) return e;
  uint32_t len = decode_fixed32(h + 4);
  if (h[8] != type) {
    *why = h[8] == TYPE_ZERO ? "zero type (zero-filled space)" : "bad record type";
    return NULL;
  }
  if (len > WAL_MAX_PAYLOAD) {
    *why = "length over the record limit";
    return NULL;
  }
  if (len > r->size - off - WAL_FRAME_HEADER) {
    *why = "length runs past the end of the file";
    return NULL;
  }
  e = ensure(r, off, WAL_FRAME_HEADER + (size_t)len, &h);
  if (e != NULL) return e;
  uint32_t crc = crc32c_extend(0, h + 4, 5 + (size_t)len);
  if (crc != crc32c_unmask(decode_fixed32(h))) {
    *why = "checksum mismatch";
    return NULL;
  }
  *why = NULL;
  *payload = slice_make(h + WAL_FRAME_HEADER, len);
  return NULL;
}

/* Sets *end just past the last non-zero byte in [from, size), or to
 * `from` if there is none. */
static mica_err *nonzero_end(wal_reader *r, uint64_t from, uint64_t *end) {
  uint64_t hi = r->size;
  while (hi > from) {
    size_t n = hi - from > READ_WINDOW ? READ_WINDOW : (size_t)(hi - from);
    const uint8_t *p;
    mica_err *e = ensure(r, hi - n, n, &p);
    if (e != NULL) return e;
    for (size_t i = n; i > 0; i--) {
      if (p[i - 1] != 0) {
        *end = hi - n + i;
        return NULL;
      }
    }
    hi -= n;
  }
  *end = from;
  return NULL;
}

/* The frame at `bad` failed for `why`. Middle damage if any valid data
 * frame starts after it; else a torn tail, and the reader ends there.
 * Every offset after `bad` is a candidate, but only one whose type byte
 * (8 bytes in) is TYPE_DATA can pass check_frame, so the scan jumps from
 * one such byte to the next with memchr: a preallocated tail of zeros
 * costs a memchr over it, not a check per byte. */
static mica_err *classify(wal_reader *r, uint64_t bad, const char *why) {
  uint64_t o = bad + 1;
  while (o + WAL_FRAME_HEADER <= r->size) {
    uint64_t t = o + 8;
    size_t n = r->size - t > READ_WINDOW ? READ_WINDOW : (size_t)(r->size - t);
    const uint8_t *p = NULL;
    mica_err *e = ensure(r, t, n, &p);
    if (e != NULL) return e;
    const uint8_t *hit = memchr(p, TYPE_DATA, n);
    if (hit == NULL) {
      o += n;
      continue;
    }
    o += (uint64_t)(hit - p);
    const char *w2;
    slice pl;
    e = check_frame(r, o, TYPE_DATA, &w2, &pl);
    if (e != NULL) return e;
    if (w2 == NULL)
      return err_new(MICA_CORRUPTION,
                     "wal %s: damaged record at offset %" PRIu64 " (%s) "
                     "followed by a valid record at offset %" PRIu64,
                     r->path, bad, why, o);
    o++;
  }
  uint64_t nz;
  mica_err *e = nonzero_end(r, bad, &nz);
  if (e != NULL) return e;
  r->eof = true;
  r->valid_end = bad;
  r->dropped = nz - bad;
  r->zero_tail = r->size - nz;
  return NULL;
}

mica_err *wal_reader_open(env *e, const char *path, wal_reader **out) {
  *out = NULL;
  env_reader *f;
  mica_err *err = env_open_reader(e, path, &f);
  if (err != NULL) return err_wrap(err, "wal replay");
  wal_reader *r = xcalloc(1, sizeof(*r));
  r->f = f;
  r->path = xstrdup(path);
  r->size = env_reader_size(f);

  const char *why;
  slice p;
  err = check_frame(r, 0, TYPE_HEADER, &why, &p);
  if (err == NULL && why != NULL) {
    if (r->size == 0) {
      r->eof = true;
    } else {
      err = classify(r, 0, why);
    }
  } else if (err == NULL) {
    if (p.len != HEADER_PAYLOAD || memcmp(p.data, WAL_MAGIC, 8) != 0) {
      err = err_new(MICA_CORRUPTION,
                    "wal %s: offset 0: not a WAL segment (bad magic or "
                    "header size %zu)",
                    path, p.len);
    } else if (decode_fixed32(p.data + 8) != WAL_VERSION &&
               decode_fixed32(p.data + 8) != WAL_VERSION_COMMITLOG) {
      err = err_new(MICA_CORRUPTION,
                    "wal %s: offset 8 of the header: unknown format version "
                    "%" PRIu32,
                    path, decode_fixed32(p.data + 8));
    } else {
      r->version = decode_fixed32(p.data + 8);
      r->epoch = decode_fixed64(p.data + 12);
      r->number = decode_fixed64(p.data + 20);
      r->pos = WAL_FRAME_HEADER + HEADER_PAYLOAD;
    }
  }
  if (err != NULL) {
    wal_reader_close(r);
    return err;
  }
  *out = r;
  return NULL;
}

mica_err *wal_reader_next(wal_reader *r, slice *payload, bool *eof) {
  *eof = false;
  if (r->err != NULL) return err_dup(r->err);
  if (!r->eof && r->pos == r->size) {
    r->eof = true;
    r->valid_end = r->pos;
  }
  if (r->eof) {
    *eof = true;
    return NULL;
  }
  const char *why;
  mica_err *err = check_frame(r, r->pos, TYPE_DATA, &why, payload);
  if (err == NULL && why != NULL) err = classify(r, r->pos, why);
  if (err != NULL) {
    r->err = err;
    return err_dup(err);
  }
  if (why != NULL) {
    *eof = true;
    return NULL;
  }
  r->rec_off = r->pos;
  r->pos += WAL_FRAME_HEADER + payload->len;
  return NULL;
}

uint64_t wal_reader_record_offset(const wal_reader *r) { return r->rec_off; }
uint64_t wal_reader_dropped(const wal_reader *r) { return r->dropped; }
uint64_t wal_reader_zero_tail(const wal_reader *r) { return r->zero_tail; }
uint64_t wal_reader_valid_end(const wal_reader *r) { return r->valid_end; }
uint64_t wal_reader_epoch(const wal_reader *r) { return r->epoch; }
uint32_t wal_reader_version(const wal_reader *r) { return r->version; }
uint64_t wal_reader_number(const wal_reader *r) { return r->number; }
const char *wal_reader_path(const wal_reader *r) { return r->path; }

void wal_reader_close(wal_reader *r) {
  if (r == NULL) return;
  env_reader_close(r->f);
  buf_free(&r->win);
  err_free(r->err);
  free(r->path);
  free(r);
}

mica_err *wal_replay(env *e, const char *path, wal_record_fn fn, void *arg,
                     wal_replay_stats *stats) {
  wal_replay_stats st = {0};
  wal_reader *r;
  mica_err *err = wal_reader_open(e, path, &r);
  if (err == NULL && r->version == WAL_VERSION_COMMITLOG) {
    err = err_new(MICA_CORRUPTION,
                  "wal %s: a server commit log segment (header version 2), "
                  "not a tablet's own segment",
                  path);
    wal_reader_close(r);
    r = NULL;
  }
  if (err == NULL) {
    st.epoch = r->epoch;
    st.number = r->number;
    for (;;) {
      slice p = {0};
      bool eof;
      err = wal_reader_next(r, &p, &eof);
      if (err != NULL) break;
      if (eof) {
        st.valid_end = r->valid_end;
        st.dropped = r->dropped;
        st.zero_tail = r->zero_tail;
        break;
      }
      st.records++;
      st.payload_bytes += p.len;
      st.valid_end = r->pos;
      err = fn(arg, p, r->rec_off);
      if (err != NULL) break;
    }
  }
  wal_reader_close(r);
  if (stats != NULL) *stats = st;
  return err;
}
