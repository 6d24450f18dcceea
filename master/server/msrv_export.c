/* msrv_export: ExportSnapshot and RestoreSnapshot, a snapshot copied out of
 * the cluster for disaster recovery and brought back as a new table
 * (docs/storage.md, "Export and restore", which has the EXPORT format).
 *
 * An export directory holds one file per SSTable the snapshot references
 * ("<tablet dir>-<file name>", a file shared by several tablets copied
 * once) and EXPORT, which describes the table (name, options, tablets
 * with their ranges and the files each reads over which key range at
 * which level) and every file's size and the CRC32C of each 1 MiB chunk
 * (export_fmt.h has the format). EXPORT is written last and atomically:
 * an export without it is incomplete.
 *
 * A restore reads EXPORT (checked whole: magic, version, length, CRC, and
 * each tablet's files and levels as its manifest decoder would), creates
 * the table in the cloning state (ms_tsnap_restore_begin), copies
 * each file into the tablet directory that reads it as the tablet's own
 * (named with epoch 0, which no owner ever writes under) at the level the
 * export names (0 for a version 1 export), checking the
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
#include "common/s3/data_root.h"
#include "master/server/export_fmt.h"
#include "master/server/msrv_int.h"
#include "master/tsnap.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"

#define EXPORT_FILE "EXPORT"
#define EXPORT_CHUNK XP_CHUNK
#define EXPORT_MAX_BYTES ((size_t)256 << 20)

/* Copies `from` (in env `fe`, expected `size` bytes) to `to`, a new file in
 * env `te`, checking or
 * computing the CRC32C of every chunk: with `check`, crc[] holds the
 * expected values and a mismatch is CORRUPTION naming `from` and the
 * chunk's offset; otherwise crc[] receives them. The copy is synced. */
static mica_err *copy_file(env *fe, const char *from, env *te,
                           const char *to, uint64_t size, uint32_t *crc,
                           bool check) {
  env_reader *r = NULL;
  env_writer *w = NULL;
  mica_err *err = env_open_reader(fe, from, &r);
  if (err == NULL && env_reader_size(r) != size)
    err = err_new(check ? MICA_CORRUPTION : MICA_IO_ERROR,
                  "%s: offset %" PRIu64 ": %s (%" PRIu64 " bytes, expected %"
                  PRIu64 ")", from,
                  env_reader_size(r) < size ? env_reader_size(r) : size,
                  env_reader_size(r) < size ? "file ends early"
                                            : "file is longer than recorded",
                  env_reader_size(r), size);
  if (err == NULL) err = env_open_writer(te, to, ENV_TRUNCATE, &w);
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
    xp_part *t = &x->parts[x->n_parts++];
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
        xp_file *f = &x->files[x->n_files++];
        memset(f, 0, sizeof(*f));
        f->src = xstrdup(canon);
        f->name = xstrdup(canon);
        *strchr(f->name, '/') = '-';
        f->size = m.ssts[k].size;
        f->n_crc = xp_chunks(f->size);
        f->crc = xcalloc(f->n_crc + 1, sizeof(uint32_t));
      }
      xp_sst *q = &t->ssts[t->n_ssts++];
      q->file = fi;
      buf_append_slice(&q->lo, buf_slice(&m.ssts[k].lo));
      buf_append_slice(&q->hi, buf_slice(&m.ssts[k].hi));
      q->has_hi = m.ssts[k].has_hi;
      q->level = m.ssts[k].level;
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

/* The env of an export's destination or a restore's source: chosen by
 * that path (a directory is the POSIX env, s3:// an S3 env), never the
 * data root's just because it is the root's (data_root_open_other). */
static mica_err *other_env(msrv *s, const char *what, const char *path,
                           env **out, bool *owned) {
  return data_root_open_other(what, path, s->root, s->opt.core.env, out,
                              owned);
}

static mica_err *do_export(msrv *s, const char *name, const char *dest,
                           uint64_t *files, uint64_t *bytes) {
  env *e = s->opt.core.env;
  env *de = NULL;
  bool de_owned = false;
  mica_err *err = other_env(s, "dest", dest, &de, &de_owned);
  if (err != NULL) return err;
  /* Held until the copy is done: a drop meanwhile is refused rather than
   * let the collector delete files the export has yet to read. */
  ms_tsnap_info *v = NULL;
  err = ms_tsnap_export_begin(s->core, name, &v);
  size_t n = v != NULL ? 1 : 0;
  char *xpath = path_join(dest, EXPORT_FILE);
  if (err == NULL && env_exists(de, xpath))
    err = err_new(MICA_ALREADY_EXISTS, "%s already holds an export", dest);
  xport x;
  memset(&x, 0, sizeof(x));
  if (err == NULL) err = build_export(s, &v[0], &x);
  if (err == NULL) err = env_mkdirs(de, dest);
  char *tablets = layout_tablets_dir(s->root);
  for (size_t i = 0; err == NULL && i < x.n_files; i++) {
    char *from = path_join(tablets, x.files[i].src);
    char *to = path_join(dest, x.files[i].name);
    err = copy_file(e, from, de, to, x.files[i].size, x.files[i].crc, false);
    *bytes += x.files[i].size;
    free(from);
    free(to);
  }
  free(tablets);
  if (err == NULL) {
    buf b = BUF_INIT;
    xp_encode(&x, &b);
    err = env_write_file_atomic(de, xpath, buf_slice(&b));
    buf_free(&b);
  }
  *files = x.n_files;
  xp_free(&x);
  free(xpath);
  if (v != NULL) ms_tsnap_export_end(s->core, v[0].id);
  ms_tsnap_infos_free(v, n);
  data_root_close(de, de_owned);
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

/* The name of the k-th SSTable of a restored tablet: its own file, epoch 0
 * (no owner ever writes under it). */
static void restored_name(size_t k, char *name, size_t n) {
  snprintf(name, n, "sst-%020d-%020zu.sst", 0, k + 1);
}

/* Fills `m` (initialized) with the MANIFEST of new tablet `id` restored
 * from part `t`: its range, last sequence number and SSTables, each at the
 * level the export gives (level 0 for a version 1 export). */
static void part_manifest(const xport *x, const xp_part *t, uint64_t id,
                          man_state *m) {
  m->tablet_id = id;
  m->epoch = 0;
  m->last_seq = t->last_seq;
  m->state = MAN_LIVE;
  buf_append_slice(&m->start_key, buf_slice(&t->start));
  buf_append_slice(&m->end_key, buf_slice(&t->end));
  m->has_end = t->end.len > 0;
  for (size_t k = 0; k < t->n_ssts; k++) {
    char name[96];
    restored_name(k, name, sizeof name);
    man_sst *f = man_add_sst(m, name, x->files[t->ssts[k].file].size,
                             buf_slice(&t->ssts[k].lo),
                             buf_slice(&t->ssts[k].hi), t->ssts[k].has_hi);
    f->level = t->ssts[k].level;
  }
  m->next_file = t->n_ssts + 1;
}

/* Checks, before anything is created, that every tablet's MANIFEST would
 * be one a tablet opens: the manifest decoder's own checks (the files of
 * each level >= 1 must not overlap) over the encoded form. */
static mica_err *check_parts(const xport *x, const char *xpath) {
  for (size_t i = 0; i < x->n_parts; i++) {
    man_state m, back;
    man_init(&m);
    man_init(&back);
    part_manifest(x, &x->parts[i], 1, &m);
    buf enc = BUF_INIT;
    man_encode(&m, &enc);
    mica_err *err = man_decode(buf_slice(&enc), "its manifest", &back);
    buf_free(&enc);
    man_clear(&m);
    man_clear(&back);
    if (err != NULL) {
      mica_err *e = err_new(MICA_CORRUPTION, "%s: tablet %zu of %zu: the "
                            "SSTables and levels it lists do not make a "
                            "valid tablet: %s", xpath, i + 1, x->n_parts,
                            err_msg(err));
      err_free(err);
      return e;
    }
  }
  return NULL;
}

/* Copies the files of part `t` into the directory of new tablet `id` and
 * writes its MANIFEST. */
static mica_err *restore_part(msrv *s, env *se, const char *src,
                              const xport *x, const xp_part *t, uint64_t id,
                              uint64_t *bytes) {
  env *e = s->opt.core.env;
  char *tablets = layout_tablets_dir(s->root);
  buf dir = BUF_INIT;
  layout_tablet_dir(tablets, id, &dir);
  const char *d = (const char *)dir.data;
  mica_err *err = env_mkdirs(e, d);
  man_state m;
  man_init(&m);
  part_manifest(x, t, id, &m);
  for (size_t k = 0; err == NULL && k < t->n_ssts; k++) {
    const xp_file *f = &x->files[t->ssts[k].file];
    char *from = path_join(src, f->name);
    char *to = path_join(d, m.ssts[k].path);
    err = copy_file(se, from, e, to, f->size, f->crc, true);
    *bytes += f->size;
    free(from);
    free(to);
  }
  if (err == NULL) err = man_write(e, d, &m);
  man_clear(&m);
  buf_free(&dir);
  free(tablets);
  return err;
}

static mica_err *do_restore(msrv *s, const char *src, const char *table,
                            uint64_t *files, uint64_t *bytes) {
  env *se = NULL;
  bool se_owned = false;
  mica_err *err = other_env(s, "source", src, &se, &se_owned);
  if (err != NULL) return err;
  char *xpath = path_join(src, EXPORT_FILE);
  buf b = BUF_INIT;
  err = env_read_file(se, xpath, EXPORT_MAX_BYTES, &b);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    err = err_new(MICA_NOT_FOUND, "%s: no such file: not an export, or an "
                  "export that did not finish", xpath);
  }
  xport x;
  memset(&x, 0, sizeof(x));
  if (err == NULL) err = xp_decode(buf_slice(&b), xpath, &x);
  if (err == NULL) err = check_parts(&x, xpath);
  buf_free(&b);
  free(xpath);
  if (err != NULL) {
    xp_free(&x);
    data_root_close(se, se_owned);
    return err;
  }
  slice *keys = xcalloc(x.n_parts, sizeof(slice));
  for (size_t i = 1; i < x.n_parts; i++) keys[i - 1] = buf_slice(&x.parts[i].start);
  ms_tsnap_clone c;
  err = ms_tsnap_restore_begin(s->core, table, keys, x.n_parts - 1, &x.opts,
                               msrv_now(s), &c);
  free(keys);
  if (err == NULL) {
    for (size_t i = 0; i < c.n && err == NULL; i++)
      err = restore_part(s, se, src, &x, &x.parts[i], c.tablet_ids[i],
                         bytes);
    if (err != NULL)
      err = err_wrap(err, "restore of %s as table %s failed; nothing kept",
                     src, table);
    mica_err *derr =
        ms_tsnap_clone_done(s->core, c.table_id, err == NULL, msrv_now(s));
    if (err == NULL) err = derr;
    else err_free(derr);
    ms_tsnap_clone_free(&c);
    /* A write of this call that failed here (a timed-out PUT) may still
     * land after the table's deletion: the sweep collects it. */
    if (err != NULL) msrv_sweep_soon(s);
    msrv_kick(s);
  }
  *files = x.n_files;
  xp_free(&x);
  data_root_close(se, se_owned);
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
