/* export_fmt: EXPORT's encoder and its untrusting decoder (export_fmt.h;
 * the layout is in docs/storage.md, "Export and restore"). */
#include "master/server/export_fmt.h"

#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "tabletserver/manifest.h"

_Static_assert(MAN_LEVELS == 7, "the level error message names 0..6");

void xp_free(xport *x) {
  free(x->table);
  free(x->snapshot);
  for (size_t i = 0; i < x->n_files; i++) {
    free(x->files[i].name);
    free(x->files[i].src);
    free(x->files[i].crc);
  }
  free(x->files);
  for (size_t i = 0; i < x->n_parts; i++) {
    for (size_t k = 0; k < x->parts[i].n_ssts; k++) {
      buf_free(&x->parts[i].ssts[k].lo);
      buf_free(&x->parts[i].ssts[k].hi);
    }
    free(x->parts[i].ssts);
    buf_free(&x->parts[i].start);
    buf_free(&x->parts[i].end);
  }
  free(x->parts);
  memset(x, 0, sizeof(*x));
}

size_t xp_chunks(uint64_t size) {
  return (size_t)((size + XP_CHUNK - 1) / XP_CHUNK);
}

void xp_encode(const xport *x, buf *out) {
  buf p = BUF_INIT;
  put_length_prefixed(&p, slice_from_str(x->table));
  put_length_prefixed(&p, slice_from_str(x->snapshot));
  put_varint64(&p, x->created_ms);
  mto_encode(&x->opts, &p);
  put_varint64(&p, XP_CHUNK);
  put_varint64(&p, x->n_files);
  for (size_t i = 0; i < x->n_files; i++) {
    put_length_prefixed(&p, slice_from_str(x->files[i].name));
    put_varint64(&p, x->files[i].size);
    for (size_t k = 0; k < x->files[i].n_crc; k++)
      put_fixed32(&p, x->files[i].crc[k]);
  }
  put_varint64(&p, x->n_parts);
  for (size_t i = 0; i < x->n_parts; i++) {
    const xp_part *t = &x->parts[i];
    put_length_prefixed(&p, buf_slice(&t->start));
    put_length_prefixed(&p, buf_slice(&t->end));
    put_varint64(&p, t->last_seq);
    put_varint64(&p, t->n_ssts);
    for (size_t k = 0; k < t->n_ssts; k++) {
      put_varint64(&p, t->ssts[k].file);
      put_length_prefixed(&p, buf_slice(&t->ssts[k].lo));
      buf_append(&p, t->ssts[k].has_hi ? "\1" : "\0", 1);
      put_length_prefixed(&p, buf_slice(&t->ssts[k].hi));
      put_varint64(&p, t->ssts[k].level);
    }
  }
  buf_append(out, XP_MAGIC, 8);
  put_fixed32(out, XP_VERSION);
  put_fixed32(out, (uint32_t)p.len);
  put_fixed32(out, crc32c_mask(crc32c_value(p.data, p.len)));
  buf_append(out, p.data, p.len);
  buf_free(&p);
}

/* A reader of EXPORT's payload that remembers the first bad offset. */
typedef struct rd {
  const uint8_t *base, *p, *lim;
  size_t bad_at;
  const char *bad_what;
} rd;

static void rd_fail(rd *r, const char *what) {
  if (r->bad_what == NULL) {
    r->bad_what = what;
    r->bad_at = (size_t)((r->p ? r->p : r->lim) - r->base);
  }
  r->p = NULL;
}

static uint64_t rd_u64(rd *r, const char *what) {
  uint64_t v = 0;
  if (r->p == NULL) return 0;
  const uint8_t *q = get_varint64(r->p, r->lim, &v);
  if (q == NULL) rd_fail(r, what);
  else r->p = q;
  return v;
}

static slice rd_bytes(rd *r, const char *what) {
  slice s = {0};
  if (r->p == NULL) return s;
  const uint8_t *q = get_length_prefixed(r->p, r->lim, &s);
  if (q == NULL) rd_fail(r, what);
  else r->p = q;
  return s;
}

static char *dup_slice(slice s) {
  char *p = xmalloc(s.len + 1);
  if (s.len > 0) memcpy(p, s.data, s.len);
  p[s.len] = '\0';
  return p;
}

static bool safe_file_name(slice s) {
  if (s.len == 0 || s.len > 255 || memchr(s.data, '/', s.len) ||
      memchr(s.data, 0, s.len) || (s.len <= 2 && s.data[0] == '.'))
    return false;
  return true;
}

mica_err *xp_decode(slice data, const char *path, xport *x) {
  memset(x, 0, sizeof(*x));
  const uint8_t *d = data.data;
  if (data.len < 20 || memcmp(d, XP_MAGIC, 8) != 0)
    return err_new(MICA_CORRUPTION, "%s: offset 0: not an export (bad magic)",
                   path);
  uint32_t version = decode_fixed32(d + 8);
  if (version != 1 && version != 2)
    return err_new(MICA_NOT_SUPPORTED, "%s: offset 8: export format version "
                   "%u is not 1 or 2", path, version);
  if (decode_fixed32(d + 12) != data.len - 20)
    return err_new(MICA_CORRUPTION, "%s: offset 12: payload length %u, file "
                   "has %zu bytes after the header", path,
                   decode_fixed32(d + 12), data.len - 20);
  if (crc32c_unmask(decode_fixed32(d + 16)) !=
      crc32c_value(d + 20, data.len - 20))
    return err_new(MICA_CORRUPTION, "%s: offset 16: checksum mismatch over "
                   "bytes 20..%zu", path, data.len);
  x->version = version;
  rd r = {d, d + 20, d + data.len, 0, NULL};
  slice tn = rd_bytes(&r, "table name");
  slice sn = rd_bytes(&r, "snapshot name");
  x->table = dup_slice(tn);
  x->snapshot = dup_slice(sn);
  x->created_ms = rd_u64(&r, "created_ms");
  if (r.p != NULL) {
    const uint8_t *q = mto_decode(r.p, r.lim, &x->opts);
    if (q == NULL) rd_fail(&r, "table options");
    else r.p = q;
  }
  if (rd_u64(&r, "chunk size") != XP_CHUNK && r.p != NULL)
    rd_fail(&r, "chunk size");
  uint64_t nf = rd_u64(&r, "file count");
  if (r.p != NULL && nf > (uint64_t)(r.lim - r.p)) rd_fail(&r, "file count");
  if (r.p != NULL) x->files = xcalloc((size_t)nf + 1, sizeof(*x->files));
  for (uint64_t i = 0; r.p != NULL && i < nf; i++) {
    xp_file *f = &x->files[x->n_files];
    slice name = rd_bytes(&r, "file name");
    if (r.p != NULL && !safe_file_name(name)) rd_fail(&r, "file name");
    f->size = rd_u64(&r, "file size");
    if (r.p == NULL) break;
    f->name = dup_slice(name);
    x->n_files++;
    f->n_crc = xp_chunks(f->size);
    if ((uint64_t)(r.lim - r.p) / 4 < f->n_crc) {
      rd_fail(&r, "chunk checksums");
      break;
    }
    f->crc = xcalloc(f->n_crc + 1, sizeof(uint32_t));
    for (size_t k = 0; k < f->n_crc; k++) f->crc[k] = decode_fixed32(r.p + 4 * k);
    r.p += 4 * f->n_crc;
  }
  uint64_t np = rd_u64(&r, "tablet count");
  if (r.p != NULL && (np == 0 || np > (uint64_t)(r.lim - r.p)))
    rd_fail(&r, "tablet count");
  if (r.p != NULL) x->parts = xcalloc((size_t)np + 1, sizeof(*x->parts));
  for (uint64_t i = 0; r.p != NULL && i < np; i++) {
    xp_part *t = &x->parts[x->n_parts++];
    buf_append_slice(&t->start, rd_bytes(&r, "tablet start"));
    buf_append_slice(&t->end, rd_bytes(&r, "tablet end"));
    t->last_seq = rd_u64(&r, "last sequence");
    uint64_t ns = rd_u64(&r, "SSTable count");
    if (r.p != NULL && ns > (uint64_t)(r.lim - r.p)) rd_fail(&r, "SSTable count");
    if (r.p == NULL) break;
    t->ssts = xcalloc((size_t)ns + 1, sizeof(*t->ssts));
    for (uint64_t k = 0; r.p != NULL && k < ns; k++) {
      xp_sst *s = &t->ssts[t->n_ssts++];
      uint64_t fi = rd_u64(&r, "file index");
      if (r.p != NULL && fi >= x->n_files) rd_fail(&r, "file index");
      s->file = (size_t)fi;
      buf_append_slice(&s->lo, rd_bytes(&r, "SSTable low key"));
      if (r.p != NULL && r.p < r.lim && *r.p <= 1) {
        s->has_hi = *r.p == 1;
        r.p++;
      } else if (r.p != NULL) {
        rd_fail(&r, "SSTable high key flag");
      }
      buf_append_slice(&s->hi, rd_bytes(&r, "SSTable high key"));
      if (version >= 2) {
        const uint8_t *at = r.p;
        uint64_t level = rd_u64(&r, "SSTable level");
        if (r.p != NULL && level >= MAN_LEVELS) {
          r.p = at; /* the offset of the level, not of what follows */
          rd_fail(&r, "SSTable level (7 or more; levels are 0..6)");
        }
        s->level = (uint32_t)level;
      }
    }
    /* The tablets cover the key space in order. */
    bool first_ok = i > 0 || t->start.len == 0;
    bool chain_ok = i == 0 || (x->parts[i - 1].end.len > 0 &&
                               slice_cmp(buf_slice(&x->parts[i - 1].end),
                                         buf_slice(&t->start)) == 0);
    bool last_ok = i + 1 < np || t->end.len == 0;
    if (r.p != NULL && (!first_ok || !chain_ok || !last_ok))
      rd_fail(&r, "tablet ranges do not cover the key space");
  }
  if (r.p != NULL && r.p != r.lim) rd_fail(&r, "trailing bytes");
  if (r.bad_what != NULL) {
    mica_err *e = err_new(MICA_CORRUPTION, "%s: offset %zu: bad %s", path,
                          r.bad_at, r.bad_what);
    xp_free(x);
    return e;
  }
  return NULL;
}
