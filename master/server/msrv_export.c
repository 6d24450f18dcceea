/* msrv_export: ExportSnapshot and RestoreSnapshot, a snapshot copied out of
 * the cluster for disaster recovery and brought back as a new table
 * (docs/storage.md, "Export and restore", which has the EXPORT format).
 *
 * An export directory holds one file per SSTable the snapshot references
 * ("<tablet dir>-<file name>", a file shared by several tablets copied
 * once) and EXPORT, which describes the table (name, options, tablets
 * with their ranges and the files each reads over which key range) and
 * every file's size and the CRC32C of each EXPORT_CHUNK-byte chunk. EXPORT
 * is written last and atomically: an export without it is incomplete.
 *
 * A restore reads EXPORT (checked whole: magic, version, length, CRC),
 * creates the table in the cloning state (ms_tsnap_restore_begin), copies
 * each file into the tablet directory that reads it as the tablet's own
 * (named with epoch 0, which no owner ever writes under), checking the
 * size and each chunk's CRC as it goes, writes each MANIFEST, and lets the
 * tablets be assigned. A bad chunk stops it with CORRUPTION naming the
 * file and the chunk's offset, and the table is dropped (its copied files
 * with it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/coding.h"
#include "common/crc32c.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/path.h"
#include "master/server/msrv_int.h"
#include "master/tsnap.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"

#define EXPORT_FILE "EXPORT"
#define EXPORT_MAGIC "MICAEXPT"
#define EXPORT_CHUNK ((size_t)1 << 20)
#define EXPORT_MAX_BYTES ((size_t)256 << 20)

/* One file of an export. */
typedef struct xfile {
  char *name;     /* in the export directory */
  char *src;      /* export: "<dir>/<file>" under the tablets directory */
  uint64_t size;
  uint32_t *crc;  /* one per chunk */
  size_t n_crc;
} xfile;

/* One SSTable a tablet reads. */
typedef struct xsst {
  size_t file; /* index into files */
  buf lo, hi;
  bool has_hi;
} xsst;

typedef struct xpart {
  buf start, end; /* end empty = +infinity */
  uint64_t last_seq;
  xsst *ssts;
  size_t n_ssts;
} xpart;

typedef struct xport {
  char *table, *snapshot;
  uint64_t created_ms;
  ms_table_opts opts;
  xfile *files;
  size_t n_files;
  xpart *parts;
  size_t n_parts;
} xport;

static void xport_free(xport *x) {
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

static size_t n_chunks(uint64_t size) {
  return (size_t)((size + EXPORT_CHUNK - 1) / EXPORT_CHUNK);
}

static void encode(const xport *x, buf *out) {
  buf p = BUF_INIT;
  put_length_prefixed(&p, slice_from_str(x->table));
  put_length_prefixed(&p, slice_from_str(x->snapshot));
  put_varint64(&p, x->created_ms);
  mto_encode(&x->opts, &p);
  put_varint64(&p, EXPORT_CHUNK);
  put_varint64(&p, x->n_files);
  for (size_t i = 0; i < x->n_files; i++) {
    put_length_prefixed(&p, slice_from_str(x->files[i].name));
    put_varint64(&p, x->files[i].size);
    for (size_t k = 0; k < x->files[i].n_crc; k++)
      put_fixed32(&p, x->files[i].crc[k]);
  }
  put_varint64(&p, x->n_parts);
  for (size_t i = 0; i < x->n_parts; i++) {
    const xpart *t = &x->parts[i];
    put_length_prefixed(&p, buf_slice(&t->start));
    put_length_prefixed(&p, buf_slice(&t->end));
    put_varint64(&p, t->last_seq);
    put_varint64(&p, t->n_ssts);
    for (size_t k = 0; k < t->n_ssts; k++) {
      put_varint64(&p, t->ssts[k].file);
      put_length_prefixed(&p, buf_slice(&t->ssts[k].lo));
      buf_append(&p, t->ssts[k].has_hi ? "\1" : "\0", 1);
      put_length_prefixed(&p, buf_slice(&t->ssts[k].hi));
    }
  }
  buf_append(out, EXPORT_MAGIC, 8);
  put_fixed32(out, 1);
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
  memcpy(p, s.data, s.len);
  p[s.len] = '\0';
  return p;
}

static bool safe_file_name(slice s) {
  if (s.len == 0 || s.len > 255 || memchr(s.data, '/', s.len) ||
      memchr(s.data, 0, s.len) || (s.len <= 2 && s.data[0] == '.'))
    return false;
  return true;
}

static mica_err *decode(slice data, const char *path, xport *x) {
  memset(x, 0, sizeof(*x));
  const uint8_t *d = data.data;
  if (data.len < 20 || memcmp(d, EXPORT_MAGIC, 8) != 0)
    return err_new(MICA_CORRUPTION, "%s: offset 0: not an export (bad magic)",
                   path);
  if (decode_fixed32(d + 8) != 1)
    return err_new(MICA_NOT_SUPPORTED, "%s: offset 8: export format version "
                   "%u is not 1", path, decode_fixed32(d + 8));
  if (decode_fixed32(d + 12) != data.len - 20)
    return err_new(MICA_CORRUPTION, "%s: offset 12: payload length %u, file "
                   "has %zu bytes after the header", path,
                   decode_fixed32(d + 12), data.len - 20);
  if (crc32c_unmask(decode_fixed32(d + 16)) !=
      crc32c_value(d + 20, data.len - 20))
    return err_new(MICA_CORRUPTION, "%s: offset 16: checksum mismatch over "
                   "bytes 20..%zu", path, data.len);
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
  if (rd_u64(&r, "chunk size") != EXPORT_CHUNK && r.p != NULL)
    rd_fail(&r, "chunk size");
  uint64_t nf = rd_u64(&r, "file count");
  if (r.p != NULL && nf > (uint64_t)(r.lim - r.p)) rd_fail(&r, "file count");
  if (r.p != NULL) x->files = xcalloc((size_t)nf + 1, sizeof(*x->files));
  for (uint64_t i = 0; r.p != NULL && i < nf; i++) {
    xfile *f = &x->files[x->n_files];
    slice name = rd_bytes(&r, "file name");
    if (r.p != NULL && !safe_file_name(name)) rd_fail(&r, "file name");
    f->size = rd_u64(&r, "file size");
    if (r.p == NULL) break;
    f->name = dup_slice(name);
    x->n_files++;
    f->n_crc = n_chunks(f->size);
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
    xpart *t = &x->parts[x->n_parts++];
    buf_append_slice(&t->start, rd_bytes(&r, "tablet start"));
    buf_append_slice(&t->end, rd_bytes(&r, "tablet end"));
    t->last_seq = rd_u64(&r, "last sequence");
    uint64_t ns = rd_u64(&r, "SSTable count");
    if (r.p != NULL && ns > (uint64_t)(r.lim - r.p)) rd_fail(&r, "SSTable count");
    if (r.p == NULL) break;
    t->ssts = xcalloc((size_t)ns + 1, sizeof(*t->ssts));
    for (uint64_t k = 0; r.p != NULL && k < ns; k++) {
      xsst *s = &t->ssts[t->n_ssts++];
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
    xport_free(x);
    return e;
  }
  return NULL;
}

/* Copies `from` (expected `size` bytes) to `to`, a new file, checking or
 * computing the CRC32C of every chunk: with `check`, crc[] holds the
 * expected values and a mismatch is CORRUPTION naming `from` and the
 * chunk's offset; otherwise crc[] receives them. The copy is synced. */
static mica_err *copy_file(env *e, const char *from, const char *to,
                           uint64_t size, uint32_t *crc, bool check) {
  env_reader *r = NULL;
  env_writer *w = NULL;
  mica_err *err = env_open_reader(e, from, &r);
  if (err == NULL && env_reader_size(r) != size)
    err = err_new(check ? MICA_CORRUPTION : MICA_IO_ERROR,
                  "%s: offset %" PRIu64 ": %s (%" PRIu64 " bytes, expected %"
                  PRIu64 ")", from,
                  env_reader_size(r) < size ? env_reader_size(r) : size,
                  env_reader_size(r) < size ? "file ends early"
                                            : "file is longer than recorded",
                  env_reader_size(r), size);
  if (err == NULL) err = env_open_writer(e, to, ENV_TRUNCATE, &w);
  uint8_t *chunk = err == NULL ? xmalloc(EXPORT_CHUNK) : NULL;
  for (uint64_t off = 0; err == NULL && off < size; off += EXPORT_CHUNK) {
    size_t want = size - off < EXPORT_CHUNK ? (size_t)(size - off)
                                            : EXPORT_CHUNK;
    size_t got = 0;
    err = env_read(r, off, want, chunk, &got);
    if (err == NULL && got != want)
      err = err_new(MICA_CORRUPTION, "%s: offset %" PRIu64 ": file ends "
                    "early", from, off + got);
    if (err != NULL) break;
    uint32_t c = crc32c_value(chunk, want);
    size_t k = (size_t)(off / EXPORT_CHUNK);
    if (check && c != crc[k])
      err = err_new(MICA_CORRUPTION, "%s: offset %" PRIu64 ": checksum "
                    "mismatch in the chunk of %zu bytes there (export "
                    "damaged)", from, off, want);
    else if (!check)
      crc[k] = c;
    if (err == NULL) err = env_append(w, chunk, want);
  }
  free(chunk);
  if (err == NULL) err = env_sync(w);
  mica_err *cerr = env_writer_close(w);
  if (err == NULL) err = cerr;
  else err_free(cerr);
  env_reader_close(r);
  return err;
}

/* ---- export ---- */

static mica_err *build_export(msrv *s, const ms_tsnap_info *info, xport *x) {
  env *e = s->opt.core.env;
  char *tablets = layout_tablets_dir(s->root);
  char *sdir = tab_snapshots_dir(tablets);
  char num[32];
  snprintf(num, sizeof num, "%" PRIu64, info->id);
  char *pdir = path_join(sdir, num);
  memset(x, 0, sizeof(*x));
  x->table = xstrdup(info->table);
  x->snapshot = xstrdup(info->name);
  x->created_ms = info->created_ms;
  x->opts = info->opts;
  x->parts = xcalloc(info->n_parts + 1, sizeof(*x->parts));
  mica_err *err = NULL;
  for (size_t i = 0; i < info->n_parts && err == NULL; i++) {
    snprintf(num, sizeof num, "%" PRIu64, info->parts[i].tablet_id);
    char *pin = path_join(pdir, num);
    buf b = BUF_INIT;
    man_state m;
    man_init(&m);
    err = env_read_file(e, pin, MAN_MAX_BYTES, &b);
    if (err == NULL) err = man_decode(buf_slice(&b), pin, &m);
    xpart *t = &x->parts[x->n_parts++];
    buf_append_slice(&t->start, buf_slice(&info->parts[i].start));
    buf_append_slice(&t->end, buf_slice(&info->parts[i].end));
    t->last_seq = m.last_seq;
    t->ssts = xcalloc(m.n_ssts + 1, sizeof(*t->ssts));
    for (size_t k = 0; err == NULL && k < m.n_ssts; k++) {
      const char *sp = m.ssts[k].path;
      if (strncmp(sp, "../", 3) != 0 || strchr(sp + 3, '/') == NULL) {
        err = err_new(MICA_CORRUPTION, "%s: SSTable path %s is not a sibling "
                      "path", pin, sp);
        break;
      }
      const char *canon = sp + 3;
      size_t fi = 0;
      while (fi < x->n_files && strcmp(x->files[fi].src, canon) != 0) fi++;
      if (fi == x->n_files) {
        x->files = xrealloc(x->files, (x->n_files + 1) * sizeof(*x->files));
        xfile *f = &x->files[x->n_files++];
        memset(f, 0, sizeof(*f));
        f->src = xstrdup(canon);
        f->name = xstrdup(canon);
        *strchr(f->name, '/') = '-';
        f->size = m.ssts[k].size;
        f->n_crc = n_chunks(f->size);
        f->crc = xcalloc(f->n_crc + 1, sizeof(uint32_t));
      }
      xsst *q = &t->ssts[t->n_ssts++];
      q->file = fi;
      buf_append_slice(&q->lo, buf_slice(&m.ssts[k].lo));
      buf_append_slice(&q->hi, buf_slice(&m.ssts[k].hi));
      q->has_hi = m.ssts[k].has_hi;
    }
    man_clear(&m);
    buf_free(&b);
    free(pin);
  }
  free(pdir);
  free(sdir);
  free(tablets);
  return err;
}

static mica_err *do_export(msrv *s, const char *name, const char *dest,
                           uint64_t *files, uint64_t *bytes) {
  env *e = s->opt.core.env;
  if (dest == NULL || dest[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "dest: name the directory to "
                   "export to");
  ms_tsnap_info *v = NULL;
  size_t n = 0;
  mica_err *err = ms_tsnap_list(s->core, name, false, &v, &n);
  if (err == NULL && v[0].state != MS_TSNAP_READY)
    err = err_new(MICA_UNAVAILABLE, "snapshot %s is still being taken", name);
  char *xpath = path_join(dest, EXPORT_FILE);
  if (err == NULL && env_exists(e, xpath))
    err = err_new(MICA_ALREADY_EXISTS, "%s already holds an export", dest);
  xport x;
  memset(&x, 0, sizeof(x));
  if (err == NULL) err = build_export(s, &v[0], &x);
  if (err == NULL) err = env_mkdirs(e, dest);
  char *tablets = layout_tablets_dir(s->root);
  for (size_t i = 0; err == NULL && i < x.n_files; i++) {
    char *from = path_join(tablets, x.files[i].src);
    char *to = path_join(dest, x.files[i].name);
    err = copy_file(e, from, to, x.files[i].size, x.files[i].crc, false);
    *bytes += x.files[i].size;
    free(from);
    free(to);
  }
  free(tablets);
  if (err == NULL) {
    buf b = BUF_INIT;
    encode(&x, &b);
    err = env_write_file_atomic(e, xpath, buf_slice(&b));
    buf_free(&b);
  }
  *files = x.n_files;
  xport_free(&x);
  free(xpath);
  ms_tsnap_infos_free(v, n);
  return err;
}

static void h_export(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_export_snapshot_request *r = req;
  char what[480];
  snprintf(what, sizeof what, "ExportSnapshot %.100s to %.250s", r->snapshot,
           r->dest);
  ms_audit(s->core, rpc_call_identity(call), what);
  uint64_t files = 0, bytes = 0;
  mica_err *err = do_export(s, r->snapshot, r->dest, &files, &bytes);
  if (err == NULL)
    LOG_I("snapshot %s exported to %s: %" PRIu64 " files, %" PRIu64
          " bytes", r->snapshot, r->dest, files, bytes);
  rpc_export_snapshot_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  if (err == NULL) {
    resp.files = files;
    resp.bytes = bytes;
  }
  rpc_call_reply(call, &resp);
  err_free(err);
}

/* ---- restore ---- */

/* Copies the files of part `t` into the directory of new tablet `id` and
 * writes its MANIFEST. */
static mica_err *restore_part(msrv *s, const char *src, const xport *x,
                              const xpart *t, uint64_t id, uint64_t *bytes) {
  env *e = s->opt.core.env;
  char *tablets = layout_tablets_dir(s->root);
  buf dir = BUF_INIT;
  layout_tablet_dir(tablets, id, &dir);
  const char *d = (const char *)dir.data;
  mica_err *err = env_mkdirs(e, d);
  man_state m;
  man_init(&m);
  m.tablet_id = id;
  m.epoch = 0;
  m.last_seq = t->last_seq;
  m.state = MAN_LIVE;
  buf_append_slice(&m.start_key, buf_slice(&t->start));
  buf_append_slice(&m.end_key, buf_slice(&t->end));
  m.has_end = t->end.len > 0;
  for (size_t k = 0; err == NULL && k < t->n_ssts; k++) {
    const xfile *f = &x->files[t->ssts[k].file];
    char name[96];
    snprintf(name, sizeof name, "sst-%020d-%020zu.sst", 0, k + 1);
    char *from = path_join(src, f->name);
    char *to = path_join(d, name);
    err = copy_file(e, from, to, f->size, f->crc, true);
    *bytes += f->size;
    if (err == NULL)
      man_add_sst(&m, name, f->size, buf_slice(&t->ssts[k].lo),
                  buf_slice(&t->ssts[k].hi), t->ssts[k].has_hi);
    free(from);
    free(to);
  }
  m.next_file = t->n_ssts + 1;
  if (err == NULL) err = man_write(e, d, &m);
  man_clear(&m);
  buf_free(&dir);
  free(tablets);
  return err;
}

static mica_err *do_restore(msrv *s, const char *src, const char *table,
                            uint64_t *files, uint64_t *bytes) {
  env *e = s->opt.core.env;
  if (src == NULL || src[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "source: name the export "
                   "directory");
  char *xpath = path_join(src, EXPORT_FILE);
  buf b = BUF_INIT;
  mica_err *err = env_read_file(e, xpath, EXPORT_MAX_BYTES, &b);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    err = err_new(MICA_NOT_FOUND, "%s: no such file: not an export, or an "
                  "export that did not finish", xpath);
  }
  xport x;
  memset(&x, 0, sizeof(x));
  if (err == NULL) err = decode(buf_slice(&b), xpath, &x);
  buf_free(&b);
  free(xpath);
  if (err != NULL) return err;
  slice *keys = xcalloc(x.n_parts, sizeof(slice));
  for (size_t i = 1; i < x.n_parts; i++) keys[i - 1] = buf_slice(&x.parts[i].start);
  ms_tsnap_clone c;
  err = ms_tsnap_restore_begin(s->core, table, keys, x.n_parts - 1, &x.opts,
                               msrv_now(s), &c);
  free(keys);
  if (err == NULL) {
    for (size_t i = 0; i < c.n && err == NULL; i++)
      err = restore_part(s, src, &x, &x.parts[i], c.tablet_ids[i], bytes);
    if (err != NULL)
      err = err_wrap(err, "restore of %s as table %s failed; nothing kept",
                     src, table);
    mica_err *derr =
        ms_tsnap_clone_done(s->core, c.table_id, err == NULL, msrv_now(s));
    if (err == NULL) err = derr;
    else err_free(derr);
    ms_tsnap_clone_free(&c);
    msrv_kick(s);
  }
  *files = x.n_files;
  xport_free(&x);
  return err;
}

static void h_restore(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_restore_snapshot_request *r = req;
  char what[480];
  snprintf(what, sizeof what, "RestoreSnapshot %.250s as table %.140s",
           r->source, r->table);
  ms_audit(s->core, rpc_call_identity(call), what);
  uint64_t files = 0, bytes = 0;
  mica_err *err = do_restore(s, r->source, r->table, &files, &bytes);
  if (err == NULL)
    LOG_I("table %s restored from %s: %" PRIu64 " files, %" PRIu64
          " bytes copied", r->table, r->source, files, bytes);
  rpc_restore_snapshot_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  rpc_table_info t;
  memset(&t, 0, sizeof t);
  if (err == NULL) {
    t.name = r->table;
    resp.table = &t;
    resp.files = files;
    resp.bytes = bytes;
  }
  rpc_call_reply(call, &resp);
  err_free(err);
}

mica_err *msrv_export_register(msrv *s) {
  const rpc_handler h[] = {
      {&rpc_m_master_export_snapshot, h_export, s, RPC_OFFLOAD},
      {&rpc_m_master_restore_snapshot, h_restore, s, RPC_OFFLOAD},
  };
  return rpc_server_register(s->rpc, h, sizeof(h) / sizeof(h[0]));
}
