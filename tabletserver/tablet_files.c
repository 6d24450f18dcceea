/* tablet_files: a tablet's file set. SSTable handles (tfile), shared by
 * reference between the versions that list them and deleted by the last
 * one once obsolete; versions (memtables plus files) that readers pin; and
 * the manifest write that makes a new file set durable, with the fencing
 * check against newer owners. Locks: tablet_int.h. */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/path.h"

void tb_sst_file_name(char *out, size_t size, uint64_t epoch,
                      uint64_t number) {
  snprintf(out, size, "sst-%020" PRIu64 "-%020" PRIu64 ".sst", epoch, number);
}

bool tb_is_sst_name(const char *name) {
  size_t n = strlen(name);
  return n > 8 && strncmp(name, "sst-", 4) == 0 &&
         strcmp(name + n - 4, ".sst") == 0;
}

void tb_tfile_ref(tfile *f) { atomic_fetch_add(&f->refs, 1); }

void tb_tfile_unref(tfile *f) {
  if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1) return;
  sst_reader_close(f->r);
  if (f->own && atomic_load(&f->obsolete) && !atomic_load(&f->pinned)) {
    mica_err *err = env_remove(f->e, f->path);
    if (err != NULL && err_code(err) != MICA_NOT_FOUND)
      LOG_W("tablet: cannot delete obsolete %s: %s", f->path, err_msg(err));
    err_free(err);
  }
  free(f->rel);
  free(f->path);
  buf_free(&f->lo);
  buf_free(&f->hi);
  buf_free(&f->klo);
  buf_free(&f->khi);
  free(f);
}

/* Opens the SSTable at `rel` (relative to `dir`) for reading [lo, hi). */
mica_err *tb_tfile_open(env *e, cache *c, const char *dir,
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
  atomic_init(&f->pinned, false);
  f->e = e;
  f->rel = xstrdup(rel);
  f->path = path;
  f->own = strchr(rel, '/') == NULL;
  f->r = r;
  f->size = sst_reader_file_size(r);
  buf_append_slice(&f->lo, lo);
  f->has_hi = has_hi;
  if (has_hi) buf_append_slice(&f->hi, hi);

  /* Sizes are logical: data-block bytes before compression. A split
   * threshold, the compaction's size tiers and the sizes the master shows
   * then mean the same amount of data whatever the files' compression
   * (a compressed file's size on disk depends on its values). */
  const sst_properties *p = sst_reader_properties(r);
  f->est_bytes = p->raw_data_size;
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
      /* The offsets are of the file on disk: the range's share of it is
       * its share of the logical bytes and of the entries. */
      double share = p->data_size == 0 || b <= a
                         ? 0
                         : (double)(b - a) / (double)p->data_size;
      f->est_bytes = (uint64_t)((double)p->raw_data_size * share);
      f->est_keys = (uint64_t)((double)p->num_entries * share);
    }
  }
  tb_tfile_set_span(f);
  /* One read past this file per 16 KiB of it, at least 100, before the
   * file is compacted down: LevelDB's allowed_seeks, whose reasoning is
   * that one wasted seek costs about as much as compacting 16-40 KiB. */
  uint64_t allowance = f->size / 16384;
  atomic_init(&f->seeks_left, allowance < 100 ? 100
                              : allowance > INT32_MAX ? INT32_MAX
                                                      : (int)allowance);
  atomic_init(&f->read_due, false);
  *out = f;
  return NULL;
}

/* Orders files by key span for a level >= 1 (spans there are disjoint;
 * files without keys first). */
static int span_order(const void *a, const void *b) {
  const tfile *x = *(tfile *const *)a, *y = *(tfile *const *)b;
  if (x->no_keys || y->no_keys) return (int)y->no_keys - (int)x->no_keys;
  return slice_cmp(buf_slice(&x->klo), buf_slice(&y->klo));
}

version *tb_version_new(memtable *mem, memtable **imm, size_t n_imm,
                        tfile **files, const uint8_t *levels,
                        size_t n_files) {
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
  /* A stable counting sort by level, then each level >= 1 by key. */
  v->files = xcalloc(n_files + 1, sizeof(*v->files));
  v->n_files = n_files;
  size_t count[TB_LEVELS] = {0};
  for (size_t i = 0; i < n_files; i++) count[levels[i]]++;
  v->lvl[0] = 0;
  for (int l = 0; l < TB_LEVELS; l++) v->lvl[l + 1] = v->lvl[l] + count[l];
  size_t at[TB_LEVELS];
  for (int l = 0; l < TB_LEVELS; l++) at[l] = v->lvl[l];
  for (size_t i = 0; i < n_files; i++) {
    v->files[at[levels[i]]++] = files[i];
    tb_tfile_ref(files[i]);
  }
  for (int l = 1; l < TB_LEVELS; l++)
    if (count[l] > 1)
      qsort(v->files + v->lvl[l], count[l], sizeof(*v->files), span_order);
  return v;
}

uint8_t *tb_version_levels(const version *v) {
  uint8_t *levels = xcalloc(v->n_files + 1, 1);
  for (int l = 0; l < TB_LEVELS; l++)
    for (size_t i = v->lvl[l]; i < v->lvl[l + 1]; i++) levels[i] = (uint8_t)l;
  return levels;
}

void tb_version_ref(version *v) { atomic_fetch_add(&v->refs, 1); }

void tb_version_unref(version *v) {
  if (v == NULL || atomic_fetch_sub(&v->refs, 1) != 1) return;
  mt_unref(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) mt_unref(v->imm[i]);
  for (size_t i = 0; i < v->n_files; i++) tb_tfile_unref(v->files[i]);
  free(v->imm);
  free(v->files);
  free(v);
}

/* Replaces the current version. Caller holds mu. */
void tb_install_version(tablet *t, memtable *mem, tfile **files,
                        const uint8_t *levels, size_t n_files) {
  memtable **imm = xcalloc(t->n_imm + 1, sizeof(*imm));
  for (size_t i = 0; i < t->n_imm; i++) imm[i] = t->imms[t->n_imm - 1 - i].mem;
  version *v = tb_version_new(mem, imm, t->n_imm, files, levels, n_files);
  free(imm);
  tb_version_unref(t->cur);
  t->cur = v;
  pthread_cond_broadcast(&t->cv);
}

void tb_install_memtable(tablet *t, memtable *mem) {
  uint8_t *levels = tb_version_levels(t->cur);
  tb_install_version(t, mem, t->cur->files, levels, t->cur->n_files);
  free(levels);
}

version *tb_current_version(tablet *t, uint64_t *seq) {
  pthread_mutex_lock(&t->mu);
  version *v = t->cur;
  tb_version_ref(v);
  if (seq != NULL) *seq = t->visible_seq;
  pthread_mutex_unlock(&t->mu);
  return v;
}

uint8_t *tb_man_levels(const man_state *m) {
  uint8_t *levels = xcalloc(m->n_ssts + 1, 1);
  for (size_t i = 0; i < m->n_ssts; i++) levels[i] = (uint8_t)m->ssts[i].level;
  return levels;
}

/* Rebuilds the SSTable list of `m` from `files` at `levels`. */
void tb_man_set_files(man_state *m, tfile **files, const uint8_t *levels,
                      size_t n) {
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
                buf_slice(&files[i]->hi), files[i]->has_hi)->level = levels[i];
  man_clear(m);
  *m = tmp;
}

/* Writes `m` as the tablet's manifest. man_write refuses (STALE_EPOCH)
 * when the directory holds a manifest of a newer epoch: the fencing rule,
 * a stale owner must not write over the new owner's state; its names carry
 * its older epoch anyway, so no reader would pick them (docs/storage.md).
 * A fenced tablet fails. Caller holds man_mu. */
mica_err *tb_write_manifest(tablet *t, man_state *m) {
  m->epoch = t->epoch;
  mica_err *err = man_write(t->e, t->dir, m);
  if (err != NULL && err_code(err) == MICA_STALE_EPOCH) {
    mica_err *stale = err_new(
        MICA_STALE_EPOCH, "tablet %" PRIu64 ": a newer assign_epoch took "
        "over; this owner (epoch %" PRIu64 ") is fenced: %s", t->id,
        t->epoch, err_msg(err));
    err_free(err);
    pthread_mutex_lock(&t->mu);
    tb_fail_locked(t, err_dup(stale));
    pthread_mutex_unlock(&t->mu);
    return stale;
  }
  return err;
}
