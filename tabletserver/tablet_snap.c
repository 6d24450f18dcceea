/* tablet_snap: table snapshots on the engine's side (docs/storage.md,
 * "Snapshots").
 *
 * A snapshot references files; it never copies them. Three things make
 * that safe against every path that deletes a file:
 *
 *   - a *pin*: one file per tablet under <root>/snapshots/<snapshot id>/,
 *     in the MANIFEST format (manifest.h), listing the tablet's SSTables
 *     by sibling path ("../<dir>/<file>") with the ranges it reads. It is
 *     written by the tablet's owner under man_mu, while the tablet's own
 *     manifest still lists every one of those files, so a file is never
 *     without a reference between the two (the garbage collector reads
 *     every manifest first and the pins after, tab_collect_garbage);
 *   - the tablet's SHARED file, the names of its own SSTables that were
 *     ever pinned. The tablet never deletes those itself (tfile.pinned,
 *     and the open-time cleanup keeps them); once its manifest drops one,
 *     only the collector may delete it, after finding no manifest and no
 *     pin that references it;
 *   - a dropped table's directories are retired (MAN_DROPPED) instead of
 *     deleted, so the collector removes only what no pin or clone still
 *     reads (tab_retire_dropped).
 *
 * SHARED file: "MICASHRD", fixed32 version 1, fixed32 payload length,
 * fixed32 masked CRC32C of the payload, then the payload: varint count,
 * count x bytes (a file name in the tablet's directory). Rewritten whole
 * with env_write_file_atomic. */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/path.h"

#define SHARED_MAGIC "MICASHRD"
#define SHARED_MAX_BYTES (16u << 20)

void tb_names_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

bool tb_names_has(char **v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], name) == 0) return true;
  return false;
}

mica_err *tb_shared_read(env *e, const char *dir, char ***names, size_t *n) {
  *names = NULL;
  *n = 0;
  char *path = path_join(dir, TAB_SHARED_FILE);
  buf b = BUF_INIT;
  mica_err *err = env_read_file(e, path, SHARED_MAX_BYTES, &b);
  if (err != NULL) {
    free(path);
    if (err_code(err) == MICA_NOT_FOUND) {
      err_free(err);
      return NULL;
    }
    return err;
  }
  const uint8_t *p = b.data, *lim = b.data + b.len;
  uint64_t count = 0;
  size_t off = 0;
  const char *why = NULL;
  if (b.len < 20 || memcmp(p, SHARED_MAGIC, 8) != 0) {
    why = "bad magic";
  } else if (decode_fixed32(p + 8) != 1) {
    why = "unknown version";
    off = 8;
  } else if (decode_fixed32(p + 12) != b.len - 20) {
    why = "length does not match the file";
    off = 12;
  } else if (crc32c_unmask(decode_fixed32(p + 16)) !=
             crc32c_value(p + 20, b.len - 20)) {
    why = "checksum mismatch";
    off = 16;
  } else {
    p += 20;
    p = get_varint64(p, lim, &count);
    if (p == NULL || count > (uint64_t)(lim - p)) {
      why = "bad count";
      off = 20;
    }
  }
  char **v = NULL;
  size_t k = 0;
  for (uint64_t i = 0; why == NULL && i < count; i++) {
    slice s;
    const uint8_t *at = p;
    p = get_length_prefixed(p, lim, &s);
    if (p == NULL || s.len == 0 || memchr(s.data, 0, s.len) != NULL ||
        memchr(s.data, '/', s.len) != NULL) {
      why = "bad file name";
      off = (size_t)(at - b.data);
      break;
    }
    v = xrealloc(v, (k + 1) * sizeof(*v));
    v[k] = xmalloc(s.len + 1);
    memcpy(v[k], s.data, s.len);
    v[k++][s.len] = '\0';
  }
  if (why == NULL && p != lim) {
    why = "trailing bytes";
    off = (size_t)(p - b.data);
  }
  buf_free(&b);
  if (why != NULL) {
    tb_names_free(v, k);
    err = err_new(MICA_CORRUPTION, "%s: offset %zu: %s", path, off, why);
    free(path);
    return err;
  }
  free(path);
  *names = v;
  *n = k;
  return NULL;
}

static mica_err *shared_write(env *e, const char *dir, char **names,
                              size_t n) {
  buf pl = BUF_INIT, b = BUF_INIT;
  put_varint64(&pl, n);
  for (size_t i = 0; i < n; i++)
    put_length_prefixed(&pl, slice_from_str(names[i]));
  buf_append(&b, SHARED_MAGIC, 8);
  put_fixed32(&b, 1);
  put_fixed32(&b, (uint32_t)pl.len);
  put_fixed32(&b, crc32c_mask(crc32c_value(pl.data, pl.len)));
  buf_append(&b, pl.data, pl.len);
  char *path = path_join(dir, TAB_SHARED_FILE);
  mica_err *err = env_write_file_atomic(e, path, buf_slice(&b));
  free(path);
  buf_free(&pl);
  buf_free(&b);
  return err;
}

mica_err *tab_snapshot_pin(tablet *t, const char *pin_path,
                           tab_pin_info *out) {
  memset(out, 0, sizeof(*out));
  /* Everything acknowledged before this call is in an SSTable after it. */
  mica_err *err = tab_flush(t);
  if (err != NULL) return err_wrap(err, "snapshot of tablet %" PRIu64, t->id);
  pthread_mutex_lock(&t->man_mu);
  char **shared = NULL;
  size_t n_shared = 0;
  err = tb_shared_read(t->e, t->dir, &shared, &n_shared);
  man_state pin;
  man_init(&pin);
  if (err == NULL) {
    pthread_mutex_lock(&t->mu);
    if (t->closing)
      err = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is closing", t->id);
    else if (t->failed != NULL)
      err = err_dup(t->failed);
    man_copy(&pin, &t->man);
    /* The files of the current version are exactly the manifest's (both
     * change together under man_mu): none of its own may be deleted by
     * the tablet from now on. */
    for (size_t i = 0; err == NULL && i < t->cur->n_files; i++)
      if (t->cur->files[i]->own)
        atomic_store(&t->cur->files[i]->pinned, true);
    pthread_mutex_unlock(&t->mu);
  }
  bool grew = false;
  for (size_t i = 0; err == NULL && i < pin.n_ssts; i++) {
    const char *p = pin.ssts[i].path;
    if (strchr(p, '/') == NULL && !tb_names_has(shared, n_shared, p)) {
      shared = xrealloc(shared, (n_shared + 1) * sizeof(*shared));
      shared[n_shared++] = xstrdup(p);
      grew = true;
    }
  }
  /* SHARED first: a crash before the pin leaves names there that the
   * manifest still lists, which the collector handles like any other. */
  if (err == NULL && grew) err = shared_write(t->e, t->dir, shared, n_shared);
  if (err == NULL) {
    for (size_t i = 0; i < pin.n_ssts; i++) {
      buf sib = BUF_INIT;
      layout_sibling_file(t->dir_name, pin.ssts[i].path, &sib);
      free(pin.ssts[i].path);
      pin.ssts[i].path = xstrdup((const char *)sib.data);
      buf_free(&sib);
      out->bytes += pin.ssts[i].size;
    }
    out->files = pin.n_ssts;
    out->last_seq = pin.last_seq;
    pin.epoch = 0;
    pin.next_file = 1;
    pin.parent_id = 0;
    pin.n_live = pin.n_retired = 0;
    /* The flush above put every write in the pinned files: a pin (and a
     * clone made from it) never names the server's commit log, which
     * can be collected once this tablet moves on. */
    man_set_log(&pin, slice_make(NULL, 0), 0, 0, 0);
    buf enc = BUF_INIT;
    man_encode(&pin, &enc);
    err = env_write_file_atomic(t->e, pin_path, buf_slice(&enc));
    buf_free(&enc);
  }
  pthread_mutex_unlock(&t->man_mu);
  man_clear(&pin);
  tb_names_free(shared, n_shared);
  if (err != NULL) return err_wrap(err, "snapshot of tablet %" PRIu64, t->id);
  return NULL;
}

mica_err *tab_retire_dropped(env *e, const char *tablets_dir,
                             uint64_t tablet_id) {
  buf dir = BUF_INIT;
  layout_tablet_dir(tablets_dir, tablet_id, &dir);
  const char *d = (const char *)dir.data;
  man_state m;
  man_init(&m);
  mica_err *err = NULL;
  if (!env_exists(e, d)) goto out;
  err = man_read(e, d, &m);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    /* Never opened: it holds nothing anyone references. */
    err_free(err);
    err = env_remove_tree(e, d);
    goto out;
  }
  if (err != NULL) goto out;
  if (m.state == MAN_LIVE || m.state == MAN_SPLITTING) {
    /* Its files now count only through other manifests and pins: the
     * collector treats the directory like a split parent's. */
    m.state = MAN_DROPPED;
    err = man_write(e, d, &m);
  }
out:
  man_clear(&m);
  buf_free(&dir);
  return err;
}

char *tab_snapshots_dir(const char *tablets_dir) {
  char *root = path_parent(tablets_dir);
  char *s = path_join(root, TAB_SNAPSHOTS_SUBDIR);
  free(root);
  return s;
}

mica_err *tb_pin_refs(env *e, const char *tablets_dir, char ***refs,
                      size_t *nrefs) {
  char *sdir = tab_snapshots_dir(tablets_dir);
  char **snaps = NULL;
  size_t ns = 0;
  /* Listed, not tested for existence first: on object storage a
   * "directory" is a prefix, and only a listing says what is under it. */
  mica_err *err = env_list(e, sdir, &snaps, &ns);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    err = NULL;
    snaps = NULL;
    ns = 0;
  }
  for (size_t i = 0; err == NULL && i < ns; i++) {
    char *d = path_join(sdir, snaps[i]);
    char **pins = NULL;
    size_t np = 0;
    err = env_list(e, d, &pins, &np);
    if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
      err_free(err); /* removed since it was listed */
      err = NULL;
      np = 0;
    }
    for (size_t j = 0; err == NULL && j < np; j++) {
      if (!layout_is_tablet_name(pins[j])) continue; /* temporary files */
      char *p = path_join(d, pins[j]);
      buf b = BUF_INIT;
      err = env_read_file(e, p, MAN_MAX_BYTES, &b);
      if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
        err_free(err);
        err = NULL;
        free(p);
        continue;
      }
      man_state m;
      man_init(&m);
      if (err == NULL) err = man_decode(buf_slice(&b), p, &m);
      for (size_t k = 0; err == NULL && k < m.n_ssts; k++) {
        const char *sp = m.ssts[k].path;
        if (strncmp(sp, "../", 3) != 0) continue; /* pins use sibling paths */
        *refs = xrealloc(*refs, (*nrefs + 1) * sizeof(**refs));
        (*refs)[(*nrefs)++] = xstrdup(sp + 3);
      }
      man_clear(&m);
      buf_free(&b);
      free(p);
    }
    env_free_names(pins, np);
    free(d);
  }
  env_free_names(snaps, ns);
  free(sdir);
  return err;
}
