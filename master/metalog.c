/* metalog: snapshot files and record logs of the master, byte layout in
 * METALOG_FORMAT.md. Files are small (the master's metadata), so replay
 * reads each file whole and parses it in memory; every length and offset
 * read from disk is checked against the bytes actually present. */
#include "master/metalog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/log.h"

#define FILE_HEADER 24
#define REC_HEADER 9
#define FORMAT_VERSION 1

static const char LOG_MAGIC[8] = {'M', 'I', 'C', 'A', 'M', 'L', 'O', 'G'};
static const char SNAP_MAGIC[8] = {'M', 'I', 'C', 'A', 'S', 'N', 'A', 'P'};

struct mlog {
  env *env;
  char *dir;
  int lock_fd;
  bool locked;
  uint64_t epoch;     /* master epoch this log writes under (file names) */
  uint64_t gen;       /* generation of the current files; 0 = none yet */
  uint64_t gen_epoch; /* master epoch in the current files' names */
  bool (*guard)(void *ctx); /* mlog_set_guard; NULL = none */
  void *guard_ctx;
  env_writer *log;    /* log-gen; NULL before the first roll */
  bool needs_roll;
  /* On an env without in-place appends (object storage) every batch is
   * its own file, a "part" of the generation's log (METALOG_FORMAT.md):
   * parts written so far in this generation and their bytes. */
  bool parts;
  uint64_t n_parts;
  uint64_t part_bytes;
};

/* What each part adds to mlog_log_bytes: a log of many small parts is
 * rolled early, since replay reads each with a request of its own. */
#define PART_COST (64u << 10)

/* The file of generation `gen` written under master epoch `epoch`:
 * "snap-<gen>" for epoch 0 (every file written before epochs existed, and
 * by masters run without ZooKeeper), "snap-<epoch>-<gen>" otherwise, both
 * numbers as 16 decimal digits. */
static char *gen_path(const char *dir, const char *prefix, uint64_t epoch,
                      uint64_t gen) {
  size_t n = strlen(dir) + strlen(prefix) + 48;
  char *p = xmalloc(n);
  if (epoch == 0)
    snprintf(p, n, "%s/%s%016" PRIu64, dir, prefix, gen);
  else
    snprintf(p, n, "%s/%s%016" PRIu64 "-%016" PRIu64, dir, prefix, epoch,
             gen);
  return p;
}

static bool parse16(const char *d, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    if (d[i] < '0' || d[i] > '9') return false;
    v = v * 10 + (uint64_t)(d[i] - '0');
  }
  *out = v;
  return true;
}

/* "snap-0000000000000012" -> epoch 0, generation 12;
 * "snap-0000000000000004-0000000000000012" -> epoch 4, generation 12;
 * false for any other name. */
static bool parse_name(const char *name, const char *prefix, uint64_t *epoch,
                       uint64_t *gen) {
  size_t pl = strlen(prefix);
  if (strncmp(name, prefix, pl) != 0) return false;
  const char *d = name + pl;
  if (strlen(d) == 16) {
    *epoch = 0;
    return parse16(d, gen);
  }
  if (strlen(d) != 33 || d[16] != '-') return false;
  return parse16(d, epoch) && *epoch > 0 && parse16(d + 17, gen);
}

/* Part `n` (from 1) of the log of (epoch, gen): the log's name, a dot and
 * n as 16 digits. Caller frees. */
static char *part_path(const char *dir, uint64_t epoch, uint64_t gen,
                       uint64_t n) {
  char *base = gen_path(dir, "log-", epoch, gen);
  size_t len = strlen(base) + 18;
  char *p = xmalloc(len);
  snprintf(p, len, "%s.%016" PRIu64, base, n);
  free(base);
  return p;
}

/* "log-<gen>.<n>" or "log-<epoch>-<gen>.<n>"; false for anything else. */
static bool parse_part(const char *name, uint64_t *epoch, uint64_t *gen,
                       uint64_t *n) {
  const char *dot = strrchr(name, '.');
  if (dot == NULL || strlen(dot + 1) != 16 || !parse16(dot + 1, n) || *n == 0)
    return false;
  char head[64];
  size_t hl = (size_t)(dot - name);
  if (hl >= sizeof head) return false;
  memcpy(head, name, hl);
  head[hl] = '\0';
  return parse_name(head, "log-", epoch, gen);
}

/* Files are ordered by (epoch, generation): whatever a newer master epoch
 * wrote supersedes everything written under older ones. */
static bool before(uint64_t e1, uint64_t g1, uint64_t e2, uint64_t g2) {
  return e1 < e2 || (e1 == e2 && g1 < g2);
}

static void put_file_header(buf *b, const char magic[8], uint64_t gen) {
  size_t at = b->len;
  buf_append(b, magic, 8);
  put_fixed32(b, FORMAT_VERSION);
  put_fixed64(b, gen);
  put_fixed32(b, crc32c_mask(crc32c_value(b->data + at, 20)));
}

static void put_record(buf *b, uint8_t type, slice payload) {
  size_t at = b->len;
  put_fixed32(b, 0);
  put_fixed32(b, (uint32_t)payload.len);
  buf_push(b, type);
  buf_append_slice(b, payload);
  uint32_t crc = crc32c_value(b->data + at + 4, REC_HEADER - 4 + payload.len);
  encode_fixed32(b->data + at, crc32c_mask(crc));
}

static mica_err *read_whole(env *e, const char *path, buf *out) {
  env_reader *r;
  mica_err *err = env_open_reader(e, path, &r);
  if (err) return err;
  uint64_t size = env_reader_size(r);
  if (size > (uint64_t)MLOG_MAX_RECORD + FILE_HEADER + REC_HEADER) {
    env_reader_close(r);
    return err_new(MICA_CORRUPTION, "%s: %" PRIu64 " bytes, larger than any "
                   "metadata file can be", path, size);
  }
  buf_resize(out, (size_t)size);
  size_t done = 0;
  while (done < size) {
    size_t got;
    err = env_read(r, done, (size_t)size - done, out->data + done, &got);
    if (err) break;
    if (got == 0) {
      buf_resize(out, done);
      break;
    }
    done += got;
  }
  env_reader_close(r);
  return err;
}

/* Checks the 24-byte file header. *torn is set (and NULL returned) when the
 * file is shorter than a header, which only a crash while creating it can
 * leave behind. */
static mica_err *check_header(const char *path, slice f, const char magic[8],
                              uint64_t gen, bool *torn) {
  *torn = false;
  if (f.len < FILE_HEADER) {
    *torn = true;
    return NULL;
  }
  if (memcmp(f.data, magic, 8) != 0)
    return err_new(MICA_CORRUPTION, "%s: offset 0: bad magic", path);
  if (crc32c_unmask(decode_fixed32(f.data + 20)) != crc32c_value(f.data, 20))
    return err_new(MICA_CORRUPTION, "%s: offset 0: header checksum mismatch",
                   path);
  uint32_t version = decode_fixed32(f.data + 8);
  if (version != FORMAT_VERSION)
    return err_new(MICA_NOT_SUPPORTED, "%s: format version %u (this build "
                   "reads %d)", path, version, FORMAT_VERSION);
  if (decode_fixed64(f.data + 12) != gen)
    return err_new(MICA_CORRUPTION, "%s: offset 12: generation %" PRIu64
                   " does not match the file name", path,
                   decode_fixed64(f.data + 12));
  return NULL;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

/* Parses records from `off` on. With `tolerate_tail`, a damaged last record
 * ends the replay quietly; otherwise every defect is CORRUPTION. */
static mica_err *replay_records(const char *path, slice f, size_t off,
                                bool tolerate_tail, mlog_replay_fn fn,
                                void *ctx, int *count) {
  *count = 0;
  while (off < f.len) {
    size_t left = f.len - off;
    const uint8_t *p = f.data + off;
    if (tolerate_tail && all_zero(p, left)) return NULL;
    if (left < REC_HEADER) {
      if (tolerate_tail) return NULL;
      return err_new(MICA_CORRUPTION, "%s: offset %zu: record header cut "
                     "short", path, off);
    }
    uint32_t len = decode_fixed32(p + 4);
    if (len > MLOG_MAX_RECORD || (size_t)len > left - REC_HEADER) {
      if (tolerate_tail) return NULL;
      return err_new(MICA_CORRUPTION, "%s: offset %zu: record length %u runs "
                     "past the end of the file", path, off, len);
    }
    size_t end = off + REC_HEADER + len;
    uint32_t want = crc32c_unmask(decode_fixed32(p));
    if (crc32c_value(p + 4, REC_HEADER - 4 + len) != want) {
      if (tolerate_tail && end == f.len) return NULL;
      return err_new(MICA_CORRUPTION, "%s: offset %zu: record checksum "
                     "mismatch", path, off);
    }
    mica_err *err = fn(ctx, p[8], slice_make(p + REC_HEADER, len));
    if (err) return err_wrap(err, "%s: offset %zu", path, off);
    (*count)++;
    off = end;
  }
  return NULL;
}

/* Replays the parts of the log of (epoch, gen) in order. Each part is
 * written whole (one PUT) and only after the previous one succeeded, so
 * parts 1..k are all present: a gap or any damage is CORRUPTION, never a
 * torn tail. */
static mica_err *replay_parts(mlog *m, uint64_t epoch, uint64_t gen, buf *f,
                              mlog_replay_fn fn, void *ctx) {
  char **names;
  size_t n;
  mica_err *err = env_list(m->env, m->dir, &names, &n);
  if (err) return err;
  uint64_t max = 0, count = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t ep, g, k;
    if (parse_part(names[i], &ep, &g, &k) && ep == epoch && g == gen) {
      count++;
      if (k > max) max = k;
    }
  }
  env_free_names(names, n);
  if (count != max)
    return err_new(MICA_CORRUPTION, "%s: the log of master epoch %" PRIu64
                   ", generation %" PRIu64 " has %" PRIu64 " parts but the "
                   "highest is part %" PRIu64 ": a part is missing", m->dir,
                   epoch, gen, count, max);
  for (uint64_t k = 1; k <= max && err == NULL; k++) {
    char *path = part_path(m->dir, epoch, gen, k);
    bool torn;
    int recs;
    buf_clear(f);
    err = read_whole(m->env, path, f);
    if (!err) err = check_header(path, buf_slice(f), LOG_MAGIC, gen, &torn);
    if (!err && torn)
      err = err_new(MICA_CORRUPTION, "%s: offset 0: part shorter than its "
                    "header", path);
    if (!err)
      err = replay_records(path, buf_slice(f), FILE_HEADER, false, fn, ctx,
                           &recs);
    free(path);
  }
  return err;
}

static mica_err *replay(mlog *m, mlog_replay_fn fn, void *ctx) {
  char **names;
  size_t n;
  mica_err *err = env_list(m->env, m->dir, &names, &n);
  if (err) return err;
  uint64_t snap = 0, snap_e = 0, newest_log = 0, log_e = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t g, ep;
    if (parse_name(names[i], "snap-", &ep, &g) &&
        before(snap_e, snap, ep, g)) {
      snap = g;
      snap_e = ep;
    }
    if (parse_name(names[i], "log-", &ep, &g) &&
        before(log_e, newest_log, ep, g)) {
      newest_log = g;
      log_e = ep;
    }
  }
  env_free_names(names, n);
  if (before(snap_e, snap, log_e, newest_log))
    return err_new(MICA_CORRUPTION, "%s: the log of master epoch %" PRIu64
                   ", generation %" PRIu64 " has no snapshot (newest "
                   "snapshot: master epoch %" PRIu64 ", generation %" PRIu64
                   ")", m->dir, log_e, newest_log, snap_e, snap);
  if (snap_e > m->epoch)
    return err_new(MICA_STALE_MASTER, "%s: written by master epoch %" PRIu64
                   ", newer than this master's %" PRIu64 ": a newer master "
                   "has taken over", m->dir, snap_e, m->epoch);
  m->gen = snap;
  m->gen_epoch = snap_e;
  if (snap == 0) return NULL;

  buf f = BUF_INIT;
  char *path = gen_path(m->dir, "snap-", snap_e, snap);
  bool torn;
  int count;
  err = read_whole(m->env, path, &f);
  if (!err) err = check_header(path, buf_slice(&f), SNAP_MAGIC, snap, &torn);
  if (!err && torn)
    err = err_new(MICA_CORRUPTION, "%s: offset 0: snapshot shorter than its "
                  "header", path);
  if (!err)
    err = replay_records(path, buf_slice(&f), FILE_HEADER, false, fn, ctx,
                         &count);
  if (!err && count != 1)
    err = err_new(MICA_CORRUPTION, "%s: holds %d records, not one", path,
                  count);
  free(path);
  if (err) {
    buf_free(&f);
    return err;
  }

  path = gen_path(m->dir, "log-", snap_e, snap);
  buf_clear(&f);
  err = read_whole(m->env, path, &f);
  if (err_code(err) == MICA_NOT_FOUND) {
    /* A crash between the snapshot's rename and the log's creation. */
    err_free(err);
    err = NULL;
  } else if (!err) {
    err = check_header(path, buf_slice(&f), LOG_MAGIC, snap, &torn);
    if (!err && !torn)
      err = replay_records(path, buf_slice(&f), FILE_HEADER, true, fn, ctx,
                           &count);
  }
  free(path);
  if (!err) err = replay_parts(m, snap_e, snap, &f, fn, ctx);
  buf_free(&f);
  return err;
}

mica_err *mlog_open(env *e, const char *dir, mlog_replay_fn fn, void *ctx,
                    mlog **out) {
  return mlog_open_epoch(e, dir, 0, fn, ctx, out);
}

mica_err *mlog_open_epoch(env *e, const char *dir, uint64_t epoch,
                          mlog_replay_fn fn, void *ctx, mlog **out) {
  *out = NULL;
  mica_err *err = env_mkdirs(e, dir);
  if (err) return err;
  mlog *m = xcalloc(1, sizeof(*m));
  m->env = e;
  m->epoch = epoch;
  m->dir = xstrdup(dir);
  size_t n = strlen(dir) + 8;
  char *lock = xmalloc(n);
  snprintf(lock, n, "%s/LOCK", dir);
  err = env_lock(e, lock, &m->lock_fd);
  if (err != NULL && err_code(err) == MICA_NOT_SUPPORTED) {
    /* Object storage has no locks. Masters elected through ZooKeeper are
     * fenced by their epochs in the file names; two masters without it
     * on one data root are the operator's mistake to avoid. */
    LOG_W("%s: no lock on this storage: run one master on it, or several "
          "with --zk (docs/storage.md)", lock);
    err_free(err);
    err = NULL;
  } else if (err == NULL) {
    m->locked = true;
  }
  free(lock);
  if (err) {
    mlog_close(m);
    return err;
  }
  m->parts = !env_appends_in_place(e, dir);
  err = replay(m, fn, ctx);
  if (err) {
    mlog_close(m);
    return err;
  }
  m->needs_roll = true;
  *out = m;
  return NULL;
}

/* Deletes snapshots and logs older than the current generation and
 * leftover temporary files. Failures only leave garbage that the next roll
 * deletes, so they are not reported. */
static void delete_old(mlog *m) {
  char **names;
  size_t n;
  mica_err *err = env_list(m->env, m->dir, &names, &n);
  if (err) {
    err_free(err);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t g, ep;
    uint64_t k;
    bool old = (parse_name(names[i], "snap-", &ep, &g) &&
                before(ep, g, m->gen_epoch, m->gen)) ||
               (parse_part(names[i], &ep, &g, &k) &&
                before(ep, g, m->gen_epoch, m->gen)) ||
               (parse_name(names[i], "log-", &ep, &g) &&
                before(ep, g, m->gen_epoch, m->gen)) ||
               strstr(names[i], ".tmp.") != NULL;
    if (!old) continue;
    size_t len = strlen(m->dir) + strlen(names[i]) + 2;
    char *p = xmalloc(len);
    snprintf(p, len, "%s/%s", m->dir, names[i]);
    err_free(env_remove(m->env, p));
    free(p);
  }
  env_free_names(names, n);
}

mica_err *mlog_roll(mlog *m, uint8_t type, slice state) {
  if (state.len > MLOG_MAX_RECORD)
    return err_new(MICA_RESOURCE_EXHAUSTED, "metadata snapshot of %zu bytes "
                   "exceeds the record limit", state.len);
  uint64_t gen = m->gen + 1;
  m->needs_roll = true;
  buf b = BUF_INIT;
  put_file_header(&b, SNAP_MAGIC, gen);
  put_record(&b, type, state);
  char *snap = gen_path(m->dir, "snap-", m->epoch, gen);
  mica_err *err = env_write_file_atomic(m->env, snap, buf_slice(&b));
  free(snap);
  if (err) {
    buf_free(&b);
    return err_wrap(err, "metadata snapshot");
  }

  if (m->parts) {
    /* Parts are created by the appends themselves. */
    buf_free(&b);
    m->gen = gen;
    m->gen_epoch = m->epoch;
    m->n_parts = 0;
    m->part_bytes = 0;
    m->needs_roll = false;
    delete_old(m);
    return NULL;
  }

  /* From here the new snapshot is durable and is what a restart replays;
   * the new log must exist (with its header durable) before any record is
   * appended to it. */
  char *path = gen_path(m->dir, "log-", m->epoch, gen);
  env_writer *w = NULL;
  buf_clear(&b);
  put_file_header(&b, LOG_MAGIC, gen);
  err = env_open_writer(m->env, path, ENV_TRUNCATE, &w);
  if (!err) err = env_append(w, b.data, b.len);
  if (!err) err = env_sync(w);
  if (!err) err = env_sync_dir(m->env, m->dir);
  free(path);
  buf_free(&b);
  if (err) {
    err_free(env_writer_close(w));
    /* The snapshot of `gen` is installed; a retry must go past it so the
     * retry's log never pairs with a header written here. */
    m->gen = gen;
    m->gen_epoch = m->epoch;
    err_free(env_writer_close(m->log));
    m->log = NULL;
    return err_wrap(err, "metadata log");
  }
  err_free(env_writer_close(m->log));
  m->log = w;
  m->gen = gen;
  m->gen_epoch = m->epoch;
  m->needs_roll = false;
  delete_old(m);
  return NULL;
}

mica_err *mlog_append(mlog *m, uint8_t type, slice payload) {
  return mlog_append_batch(m, 1, &type, &payload);
}

mica_err *mlog_append_batch(mlog *m, size_t n, const uint8_t *types,
                            const slice *payloads) {
  if (m->needs_roll || (m->log == NULL && !m->parts))
    return err_new(MICA_IO_ERROR, "metadata log %s: an earlier write failed "
                   "and no new snapshot could be written yet", m->dir);
  for (size_t i = 0; i < n; i++)
    if (payloads[i].len > MLOG_MAX_RECORD)
      return err_new(MICA_RESOURCE_EXHAUSTED, "metadata record of %zu bytes "
                     "exceeds the record limit", payloads[i].len);
  buf b = BUF_INIT;
  mica_err *err;
  if (m->parts) {
    /* One new file per batch, never a rewrite: an upload delayed in the
     * network cannot replace a longer log with a shorter one. */
    put_file_header(&b, LOG_MAGIC, m->gen);
    for (size_t i = 0; i < n; i++) put_record(&b, types[i], payloads[i]);
    char *path = part_path(m->dir, m->gen_epoch, m->gen, m->n_parts + 1);
    err = env_write_file_new(m->env, path, buf_slice(&b));
    free(path);
    if (!err) {
      m->n_parts++;
      m->part_bytes += b.len;
    }
    buf_free(&b);
  } else {
    for (size_t i = 0; i < n; i++) put_record(&b, types[i], payloads[i]);
    err = env_append(m->log, b.data, b.len);
    buf_free(&b);
    if (!err) err = env_sync(m->log);
  }
  if (err) {
    m->needs_roll = true;
    return err_wrap(err, "metadata log");
  }
  /* Durable, but acknowledged only if this master is still the active
   * one now: otherwise a newer master may already have replayed this log
   * without the record (docs/ha.md, "Fencing the metadata log"). */
  if (m->guard != NULL && !m->guard(m->guard_ctx)) {
    m->needs_roll = true;
    return err_new(MICA_STALE_MASTER, "metadata log %s: master epoch %" PRIu64
                   " is no longer the active master; the change is not "
                   "acknowledged", m->dir, m->epoch);
  }
  return NULL;
}

void mlog_set_guard(mlog *m, bool (*guard)(void *ctx), void *ctx) {
  m->guard = guard;
  m->guard_ctx = ctx;
}

mica_err *mlog_peek_epoch(env *e, const char *dir, uint64_t *epoch) {
  *epoch = 0;
  if (!env_exists(e, dir)) return NULL;
  char **names;
  size_t n;
  mica_err *err = env_list(e, dir, &names, &n);
  if (err) return err;
  for (size_t i = 0; i < n; i++) {
    uint64_t g, ep;
    if ((parse_name(names[i], "snap-", &ep, &g) ||
         parse_name(names[i], "log-", &ep, &g)) && ep > *epoch)
      *epoch = ep;
  }
  env_free_names(names, n);
  return NULL;
}

uint64_t mlog_epoch(const mlog *m) { return m->gen_epoch; }

bool mlog_needs_roll(const mlog *m) { return m->needs_roll; }

uint64_t mlog_log_bytes(const mlog *m) {
  if (m->parts) return m->part_bytes + m->n_parts * PART_COST;
  return m->log ? env_writer_size(m->log) : 0;
}

uint64_t mlog_generation(const mlog *m) { return m->gen; }

void mlog_close(mlog *m) {
  if (m == NULL) return;
  err_free(env_writer_close(m->log));
  if (m->locked) env_unlock(m->env, m->lock_fd);
  free(m->dir);
  free(m);
}
