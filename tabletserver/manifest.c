/* manifest: encoding, decoding and atomic replacement of a tablet's
 * MANIFEST. The file is rewritten whole on every change; see manifest.h for
 * why and MANIFEST_FORMAT.md for the bytes. Decoding treats the file as
 * untrusted: every length is bounds-checked and every failure names the
 * file and the offset. */
#include "tabletserver/manifest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/path.h"

#define MAN_MAGIC "MICAMANF"
#define MAN_VERSION_V1 1  /* no levels, no commit log: still read */
#define MAN_VERSION 2     /* levels */
#define MAN_VERSION_LOG 4 /* levels plus the commit log fields; 3 is never
                           * used, so no one flipped bit turns one version
                           * this code writes or reads into another */
#define MAN_HEADER 20 /* magic 8, version 4, length 4, crc 4 */

void man_init(man_state *m) { memset(m, 0, sizeof(*m)); }

void man_clear(man_state *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->n_ssts; i++) {
    free(m->ssts[i].path);
    buf_free(&m->ssts[i].lo);
    buf_free(&m->ssts[i].hi);
  }
  free(m->ssts);
  free(m->live);
  free(m->retired);
  buf_free(&m->start_key);
  buf_free(&m->end_key);
  buf_free(&m->split_key);
  buf_free(&m->log_name);
  man_init(m);
}

man_sst *man_add_sst(man_state *m, const char *path, uint64_t size,
                     slice lo, slice hi, bool has_hi) {
  m->ssts = xrealloc(m->ssts, (m->n_ssts + 1) * sizeof(*m->ssts));
  man_sst *s = &m->ssts[m->n_ssts++];
  memset(s, 0, sizeof(*s));
  s->path = xstrdup(path);
  s->size = size;
  buf_append_slice(&s->lo, lo);
  s->has_hi = has_hi;
  if (has_hi) buf_append_slice(&s->hi, hi);
  return s;
}

void man_add_live(man_state *m, uint64_t epoch, uint64_t number) {
  m->live = xrealloc(m->live, (m->n_live + 1) * sizeof(*m->live));
  m->live[m->n_live++] = (man_segment){epoch, number};
}

void man_add_retired(man_state *m, uint64_t epoch, uint64_t number) {
  m->retired = xrealloc(m->retired, (m->n_retired + 1) * sizeof(*m->retired));
  m->retired[m->n_retired++] = (man_segment){epoch, number};
}

void man_set_log(man_state *m, slice name, uint64_t epoch,
                 uint64_t first_segment, uint64_t flushed_seq) {
  buf_clear(&m->log_name);
  buf_append_slice(&m->log_name, name);
  m->log_epoch = name.len > 0 ? epoch : 0;
  m->log_first_segment = name.len > 0 ? first_segment : 0;
  m->log_flushed_seq = name.len > 0 ? flushed_seq : 0;
}

bool man_holds_writes(const man_state *m) {
  /* A tablet's writes do not rewrite its manifest, so last_seq says
   * nothing about what the log holds: naming a log means it may. A clean
   * close clears the name. */
  return m->n_live > 0 || m->log_name.len > 0;
}

void man_copy(man_state *dst, const man_state *src) {
  man_init(dst);
  dst->tablet_id = src->tablet_id;
  dst->epoch = src->epoch;
  dst->last_seq = src->last_seq;
  dst->next_file = src->next_file;
  dst->state = src->state;
  buf_append_slice(&dst->start_key, buf_slice(&src->start_key));
  buf_append_slice(&dst->end_key, buf_slice(&src->end_key));
  dst->has_end = src->has_end;
  dst->parent_id = src->parent_id;
  for (size_t i = 0; i < src->n_ssts; i++) {
    const man_sst *s = &src->ssts[i];
    man_add_sst(dst, s->path, s->size, buf_slice(&s->lo), buf_slice(&s->hi),
                s->has_hi)->level = s->level;
  }
  for (size_t i = 0; i < src->n_live; i++)
    man_add_live(dst, src->live[i].epoch, src->live[i].number);
  for (size_t i = 0; i < src->n_retired; i++)
    man_add_retired(dst, src->retired[i].epoch, src->retired[i].number);
  dst->left_id = src->left_id;
  dst->right_id = src->right_id;
  buf_append_slice(&dst->split_key, buf_slice(&src->split_key));
  man_set_log(dst, buf_slice(&src->log_name), src->log_epoch,
              src->log_first_segment, src->log_flushed_seq);
}

void man_encode(const man_state *m, buf *out) {
  buf p = BUF_INIT;
  put_varint64(&p, m->tablet_id);
  put_varint64(&p, m->epoch);
  put_varint64(&p, m->last_seq);
  put_varint64(&p, m->next_file);
  buf_push(&p, (uint8_t)m->state);
  put_length_prefixed(&p, buf_slice(&m->start_key));
  buf_push(&p, m->has_end ? 1 : 0);
  put_length_prefixed(&p, buf_slice(&m->end_key));
  put_varint64(&p, m->parent_id);
  put_varint32(&p, (uint32_t)m->n_ssts);
  for (size_t i = 0; i < m->n_ssts; i++) {
    const man_sst *s = &m->ssts[i];
    put_length_prefixed(&p, slice_from_str(s->path));
    put_varint64(&p, s->size);
    put_length_prefixed(&p, buf_slice(&s->lo));
    buf_push(&p, s->has_hi ? 1 : 0);
    put_length_prefixed(&p, buf_slice(&s->hi));
    put_varint32(&p, s->level);
  }
  put_varint32(&p, (uint32_t)m->n_live);
  for (size_t i = 0; i < m->n_live; i++) {
    put_varint64(&p, m->live[i].epoch);
    put_varint64(&p, m->live[i].number);
  }
  put_varint32(&p, (uint32_t)m->n_retired);
  for (size_t i = 0; i < m->n_retired; i++) {
    put_varint64(&p, m->retired[i].epoch);
    put_varint64(&p, m->retired[i].number);
  }
  if (m->state != MAN_LIVE) {
    put_varint64(&p, m->left_id);
    put_varint64(&p, m->right_id);
    put_length_prefixed(&p, buf_slice(&m->split_key));
  }
  bool has_log = m->log_name.len > 0;
  if (has_log) {
    put_length_prefixed(&p, buf_slice(&m->log_name));
    put_varint64(&p, m->log_epoch);
    put_varint64(&p, m->log_first_segment);
    put_varint64(&p, m->log_flushed_seq);
  }
  buf_append(out, MAN_MAGIC, 8);
  put_fixed32(out, has_log ? MAN_VERSION_LOG : MAN_VERSION);
  put_fixed32(out, (uint32_t)p.len);
  put_fixed32(out, crc32c_mask(crc32c_value(p.data, p.len)));
  buf_append_slice(out, buf_slice(&p));
  buf_free(&p);
}

/* Decoding cursor: position plus the bounds and name for messages. */
typedef struct dec {
  const uint8_t *p, *base, *limit;
  const char *what;
  mica_err *err;
} dec;

static void dec_fail(dec *d, const char *field) {
  if (d->err == NULL)
    d->err = err_new(MICA_CORRUPTION, "manifest %s: bad %s at offset %zu",
                     d->what, field,
                     (size_t)(d->p - d->base) + MAN_HEADER);
}

static uint64_t dec_u64(dec *d, const char *field) {
  uint64_t v = 0;
  if (d->err != NULL) return 0;
  const uint8_t *q = get_varint64(d->p, d->limit, &v);
  if (q == NULL) {
    dec_fail(d, field);
    return 0;
  }
  d->p = q;
  return v;
}

static uint8_t dec_byte(dec *d, const char *field, uint8_t max) {
  if (d->err != NULL) return 0;
  if (d->p >= d->limit || *d->p > max) {
    dec_fail(d, field);
    return 0;
  }
  return *d->p++;
}

static slice dec_bytes(dec *d, const char *field) {
  slice s = slice_make(NULL, 0);
  if (d->err != NULL) return s;
  const uint8_t *q = get_length_prefixed(d->p, d->limit, &s);
  if (q == NULL) {
    dec_fail(d, field);
    return slice_make(NULL, 0);
  }
  d->p = q;
  return s;
}

/* A count of records that each take at least `min_bytes`: rejecting counts
 * the remaining bytes cannot hold keeps a corrupt count from allocating. */
static size_t dec_count(dec *d, const char *field, size_t min_bytes) {
  const uint8_t *at = d->p;
  uint64_t n = dec_u64(d, field);
  if (d->err == NULL && n > (uint64_t)(d->limit - d->p) / min_bytes) {
    d->p = at; /* name the count's own offset */
    dec_fail(d, field);
    return 0;
  }
  return (size_t)n;
}

mica_err *man_decode(slice data, const char *what, man_state *m) {
  man_clear(m);
  if (data.len < MAN_HEADER)
    return err_new(MICA_CORRUPTION,
                   "manifest %s: %zu bytes, shorter than the %d-byte header",
                   what, data.len, MAN_HEADER);
  if (memcmp(data.data, MAN_MAGIC, 8) != 0)
    return err_new(MICA_CORRUPTION, "manifest %s: bad magic at offset 0",
                   what);
  uint32_t version = decode_fixed32(data.data + 8);
  if (version != MAN_VERSION && version != MAN_VERSION_V1 &&
      version != MAN_VERSION_LOG)
    return err_new(MICA_CORRUPTION,
                   "manifest %s: unknown format version %u at offset 8", what,
                   version);
  uint32_t len = decode_fixed32(data.data + 12);
  if (len != data.len - MAN_HEADER)
    return err_new(MICA_CORRUPTION,
                   "manifest %s: payload length %u at offset 12 but %zu "
                   "bytes follow the header",
                   what, len, data.len - MAN_HEADER);
  uint32_t crc = crc32c_unmask(decode_fixed32(data.data + 16));
  if (crc != crc32c_value(data.data + MAN_HEADER, len))
    return err_new(MICA_CORRUPTION,
                   "manifest %s: checksum mismatch over bytes %d..%zu", what,
                   MAN_HEADER, data.len);

  dec d = {data.data + MAN_HEADER, data.data + MAN_HEADER, data.data + data.len,
           what, NULL};
  m->tablet_id = dec_u64(&d, "tablet id");
  m->epoch = dec_u64(&d, "epoch");
  m->last_seq = dec_u64(&d, "last sequence");
  m->next_file = dec_u64(&d, "next file number");
  m->state = (man_tablet_state)dec_byte(&d, "state", MAN_DROPPED);
  buf_append_slice(&m->start_key, dec_bytes(&d, "start key"));
  m->has_end = dec_byte(&d, "end flag", 1) != 0;
  buf_append_slice(&m->end_key, dec_bytes(&d, "end key"));
  m->parent_id = dec_u64(&d, "parent id");
  size_t n = dec_count(&d, "SSTable count", 5);
  for (size_t i = 0; i < n && d.err == NULL; i++) {
    const uint8_t *at = d.p;
    slice path = dec_bytes(&d, "SSTable path");
    uint64_t size = dec_u64(&d, "SSTable size");
    slice lo = dec_bytes(&d, "SSTable low key");
    bool has_hi = dec_byte(&d, "SSTable high flag", 1) != 0;
    slice hi = dec_bytes(&d, "SSTable high key");
    const uint8_t *lat = d.p;
    uint64_t level = version == MAN_VERSION_V1 ? 0 : dec_u64(&d, "SSTable level");
    if (d.err == NULL && level >= MAN_LEVELS) {
      d.p = lat; /* name the level's own offset */
      dec_fail(&d, "SSTable level");
    }
    if (d.err != NULL) break;
    if (path.len == 0 || memchr(path.data, 0, path.len) != NULL) {
      d.p = at; /* name the path's own offset */
      dec_fail(&d, "SSTable path");
      break;
    }
    char *p = xmalloc(path.len + 1);
    memcpy(p, path.data, path.len);
    p[path.len] = '\0';
    man_add_sst(m, p, size, lo, hi, has_hi)->level = (uint32_t)level;
    free(p);
  }
  n = dec_count(&d, "live segment count", 2);
  for (size_t i = 0; i < n && d.err == NULL; i++) {
    uint64_t e = dec_u64(&d, "segment epoch");
    uint64_t num = dec_u64(&d, "segment number");
    if (d.err == NULL) man_add_live(m, e, num);
  }
  n = dec_count(&d, "retired segment count", 2);
  for (size_t i = 0; i < n && d.err == NULL; i++) {
    uint64_t e = dec_u64(&d, "segment epoch");
    uint64_t num = dec_u64(&d, "segment number");
    if (d.err == NULL) man_add_retired(m, e, num);
  }
  if (m->state != MAN_LIVE && d.err == NULL) {
    m->left_id = dec_u64(&d, "left daughter id");
    m->right_id = dec_u64(&d, "right daughter id");
    buf_append_slice(&m->split_key, dec_bytes(&d, "split key"));
  }
  if (version == MAN_VERSION_LOG && d.err == NULL) {
    const uint8_t *at = d.p;
    slice name = dec_bytes(&d, "commit log name");
    uint64_t ep = dec_u64(&d, "commit log epoch");
    uint64_t first = dec_u64(&d, "commit log first segment");
    uint64_t flushed = dec_u64(&d, "commit log flushed sequence");
    if (d.err == NULL &&
        (name.len == 0 || memchr(name.data, 0, name.len) != NULL ||
         memchr(name.data, '/', name.len) != NULL ||
         (name.len <= 2 && memcmp(name.data, "..", name.len) == 0))) {
      d.p = at;
      dec_fail(&d, "commit log name");
    }
    if (d.err == NULL) man_set_log(m, name, ep, first, flushed);
  }
  if (d.err == NULL && d.p != d.limit) dec_fail(&d, "trailing bytes");
  if (d.err != NULL) {
    man_clear(m);
    return d.err;
  }
  return NULL;
}

/* "MANIFEST-<epoch>-<gen>", both numbers as 20 digits, so names sort. */
static void gen_name(char *out, size_t size, uint64_t epoch, uint64_t gen) {
  snprintf(out, size, MAN_FILE_NAME "-%020" PRIu64 "-%020" PRIu64, epoch,
           gen);
}

static bool parse20(const char *d, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < 20; i++) {
    if (d[i] < '0' || d[i] > '9') return false;
    uint64_t digit = (uint64_t)(d[i] - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

bool man_parse_name(const char *name, uint64_t *epoch, uint64_t *gen) {
  const size_t pl = sizeof(MAN_FILE_NAME); /* "MANIFEST-" */
  if (strncmp(name, MAN_FILE_NAME "-", pl) != 0 || strlen(name) != pl + 41 ||
      name[pl + 20] != '-')
    return false;
  return parse20(name + pl, epoch) && parse20(name + pl + 21, gen) &&
         *gen > 0;
}

bool man_is_name(const char *name) {
  uint64_t e, g;
  return strcmp(name, MAN_FILE_NAME) == 0 || man_parse_name(name, &e, &g);
}

/* The newest manifest in `dir`: *epoch and *gen of the highest
 * (epoch, generation) name, or *legacy when only a plain MANIFEST (written
 * before names carried them) exists. NOT_FOUND when there is none. */
static mica_err *newest(env *e, const char *dir, uint64_t *epoch,
                        uint64_t *gen, bool *legacy) {
  *epoch = *gen = 0;
  *legacy = false;
  char **names;
  size_t n;
  mica_err *err = env_list(e, dir, &names, &n);
  if (err != NULL) return err;
  bool any = false;
  for (size_t i = 0; i < n; i++) {
    uint64_t ep, g;
    if (man_parse_name(names[i], &ep, &g)) {
      if (!any || ep > *epoch || (ep == *epoch && g > *gen)) {
        *epoch = ep;
        *gen = g;
      }
      any = true;
    } else if (strcmp(names[i], MAN_FILE_NAME) == 0) {
      *legacy = true;
    }
  }
  env_free_names(names, n);
  if (any) *legacy = false;
  if (!any && !*legacy)
    return err_new(MICA_NOT_FOUND, "no manifest in %s", dir);
  return NULL;
}

mica_err *man_read(env *e, const char *dir, man_state *m) {
  /* A writer deletes the generation it replaced right after the new one
   * is durable, so a name just listed can vanish before it is read: list
   * again (the newer name is there by then). */
  mica_err *err = NULL;
  for (int attempt = 0; attempt < 8; attempt++) {
    err_free(err);
    uint64_t ep, g;
    bool legacy;
    err = newest(e, dir, &ep, &g, &legacy);
    if (err != NULL) return err;
    char name[64];
    if (legacy) snprintf(name, sizeof name, "%s", MAN_FILE_NAME);
    else gen_name(name, sizeof name, ep, g);
    char *path = path_join(dir, name);
    buf data = BUF_INIT;
    /* One GET on object storage (no HEAD for the size first): a manifest
     * is small and read whole. */
    err = env_read_object(e, path, MAN_MAX_BYTES, &data);
    if (err == NULL) err = man_decode(buf_slice(&data), path, m);
    if (err == NULL && !legacy && m->epoch != ep) {
      err = err_new(MICA_CORRUPTION, "manifest %s: records epoch %" PRIu64
                    ", not the %" PRIu64 " of its name", path, m->epoch, ep);
      man_clear(m);
    }
    buf_free(&data);
    free(path);
    if (err == NULL || err_code(err) != MICA_NOT_FOUND) return err;
  }
  return err;
}

mica_err *man_newest_path(env *e, const char *dir, char **path) {
  *path = NULL;
  uint64_t ep, g;
  bool legacy;
  mica_err *err = newest(e, dir, &ep, &g, &legacy);
  if (err != NULL) return err;
  char name[64];
  if (legacy) snprintf(name, sizeof name, "%s", MAN_FILE_NAME);
  else gen_name(name, sizeof name, ep, g);
  *path = path_join(dir, name);
  return NULL;
}

bool man_exists(env *e, const char *dir) {
  uint64_t ep, g;
  bool legacy;
  mica_err *err = newest(e, dir, &ep, &g, &legacy);
  err_free(err);
  return err == NULL;
}

mica_err *man_write_first(env *e, const char *dir, const man_state *m) {
  char name[64];
  gen_name(name, sizeof name, m->epoch, 1);
  char *path = path_join(dir, name);
  buf data = BUF_INIT;
  man_encode(m, &data);
  mica_err *err = env_write_file_new(e, path, buf_slice(&data));
  buf_free(&data);
  free(path);
  return err_wrap(err, "write manifest of tablet %llu",
                  (unsigned long long)m->tablet_id);
}

mica_err *man_write(env *e, const char *dir, const man_state *m) {
  /* One listing gives the next generation and, since every name in it is
   * older than the one written here, what to remove afterwards. */
  char **names = NULL;
  size_t n = 0;
  mica_err *err = env_list(e, dir, &names, &n);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err); /* the write below names the missing directory */
    err = NULL;
  }
  if (err != NULL)
    return err_wrap(err, "write manifest of tablet %llu",
                    (unsigned long long)m->tablet_id);
  uint64_t top_epoch = 0, gen = 1;
  bool named = false, plain = false;
  for (size_t i = 0; i < n; i++) {
    uint64_t ep, g;
    if (strcmp(names[i], MAN_FILE_NAME) == 0) plain = true;
    if (!man_parse_name(names[i], &ep, &g)) continue;
    named = true;
    if (ep > top_epoch) top_epoch = ep;
    if (ep == m->epoch && g >= gen) gen = g + 1;
  }
  if (plain && !named) {
    /* A directory from before epoch names: its epoch is inside. */
    man_state old;
    man_init(&old);
    err = man_read(e, dir, &old);
    if (err == NULL) top_epoch = old.epoch;
    man_clear(&old);
    if (err != NULL) {
      env_free_names(names, n);
      return err_wrap(err, "write manifest of tablet %llu",
                      (unsigned long long)m->tablet_id);
    }
  }
  if (top_epoch > m->epoch) {
    env_free_names(names, n);
    return err_new(MICA_STALE_EPOCH, "write manifest of tablet %llu: %s "
                   "holds a manifest of epoch %" PRIu64 ", newer than this "
                   "writer's %" PRIu64, (unsigned long long)m->tablet_id, dir,
                   top_epoch, m->epoch);
  }
  char name[64];
  gen_name(name, sizeof name, m->epoch, gen);
  char *path = path_join(dir, name);
  buf data = BUF_INIT;
  man_encode(m, &data);
  /* Never over an existing name; where the storage can check that (a
   * conditional PUT), this is a second guard behind the epoch rule. */
  err = env_write_file_new(e, path, buf_slice(&data));
  buf_free(&data);
  free(path);
  if (err == NULL) {
    /* The new generation is durable: the older names are garbage. A failed
     * removal leaves one for the next write; readers ignore it anyway. */
    for (size_t i = 0; i < n; i++) {
      if (!man_is_name(names[i])) continue;
      char *p = path_join(dir, names[i]);
      err_free(env_remove_if_present(e, p));
      free(p);
    }
  }
  env_free_names(names, n);
  if (err != NULL)
    return err_wrap(err, "write manifest of tablet %llu",
                    (unsigned long long)m->tablet_id);
  return NULL;
}
