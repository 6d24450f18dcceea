/* tablet_split: splitting a tablet by reference, and finding where to
 * split. The daughters' manifests reference the parent's SSTables, each
 * restricted to the daughter's half, in sibling directories (the layout
 * is common/layout.h); no data is copied. The commit is the parent's
 * MANIFEST going SPLITTING (intent), daughters written, SPLIT (done), and
 * an interrupted split is finished by the next open (tablet_open.c). */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/path.h"

/* Writes daughter `side` (0 left, 1 right) of the split recorded in `m`
 * into `tablets_dir`, referencing the parent's SSTables (in sibling
 * directory `base`) restricted to its half. */
static mica_err *write_daughter(env *e, const char *tablets_dir,
                                const char *base, const man_state *m,
                                int side) {
  uint64_t id = side == 0 ? m->left_id : m->right_id;
  buf ddir = BUF_INIT;
  layout_tablet_dir(tablets_dir, id, &ddir);
  const char *dpath = (const char *)ddir.data;
  /* A daughter whose manifest exists is complete (it appears in one
   * step, below) and may have been opened since: the server that split
   * opens daughters only once the parent says SPLIT, but an OpenTablet of
   * a daughter whose manifest exists opens it as it is, and that one
   * takes writes. Redoing it would delete them with its directory, so a
   * rerun keeps it as it is (it references the same parent files; an
   * unreadable one stops the rerun rather than being replaced). */
  bool implicit = env_dirs_implicit(e, dpath);
  size_t n_objects = 0;
  mica_err *rerr = NULL;
  if (implicit) {
    /* One listing says whether the directory is empty (the usual case:
     * then the manifest is simply its first object), holds a manifest,
     * or holds leftovers. */
    char **names = NULL;
    bool has_man = false;
    rerr = env_list(e, dpath, &names, &n_objects);
    if (rerr != NULL && err_code(rerr) == MICA_NOT_FOUND) {
      err_free(rerr);
      rerr = NULL;
      n_objects = 0;
    }
    for (size_t i = 0; rerr == NULL && i < n_objects; i++)
      has_man = has_man || man_is_name(names[i]);
    if (rerr == NULL) env_free_names(names, n_objects);
    if (rerr == NULL && !has_man)
      rerr = err_new(MICA_NOT_FOUND, "no manifest in %s", dpath);
  }
  if (rerr == NULL) {
    man_state have;
    man_init(&have);
    rerr = man_read(e, dpath, &have);
    if (rerr == NULL && have.tablet_id != id)
      rerr = err_new(MICA_CORRUPTION, "%s holds the manifest of tablet %"
                     PRIu64 ", not of daughter %" PRIu64, dpath,
                     have.tablet_id, id);
    man_clear(&have);
  }
  if (rerr == NULL || err_code(rerr) != MICA_NOT_FOUND) {
    buf_free(&ddir);
    return rerr;
  }
  err_free(rerr);
  man_state d;
  man_init(&d);
  d.tablet_id = id;
  d.epoch = m->epoch;
  d.last_seq = m->last_seq;
  d.next_file = 1;
  d.state = MAN_LIVE;
  d.parent_id = m->tablet_id;
  slice dlo = side == 0 ? buf_slice(&m->start_key) : buf_slice(&m->split_key);
  slice dhi = side == 0 ? buf_slice(&m->split_key) : buf_slice(&m->end_key);
  bool dhas_hi = side == 0 ? true : m->has_end;
  buf_append_slice(&d.start_key, dlo);
  buf_append_slice(&d.end_key, dhas_hi ? dhi : slice_make(NULL, 0));
  d.has_end = dhas_hi;
  for (size_t i = 0; i < m->n_ssts; i++) {
    const man_sst *s = &m->ssts[i];
    slice lo = buf_slice(&s->lo), hi = buf_slice(&s->hi);
    if (dlo.len > 0 && (lo.len == 0 || slice_cmp(dlo, lo) > 0)) lo = dlo;
    bool has_hi = s->has_hi;
    if (dhas_hi && (!has_hi || slice_cmp(dhi, hi) < 0)) {
      hi = dhi;
      has_hi = true;
    }
    if (has_hi && slice_cmp(lo, hi) >= 0) continue; /* no overlap */
    /* The parent's file, seen from the daughter's (sibling) directory. */
    buf rel = BUF_INIT;
    layout_sibling_file(base, s->path, &rel);
    /* At the parent's level: cutting a level's disjoint key ranges to
     * one half keeps them disjoint. */
    man_add_sst(&d, (const char *)rel.data, s->size, lo, hi, has_hi)->level =
        s->level;
    buf_free(&rel);
  }
  /* A daughter's directory never exists without its manifest: garbage
   * collection relies on that (see tab_collect_garbage). Where a
   * directory comes into being with its first file (object storage),
   * the manifest's one PUT does that; elsewhere the manifest is built
   * under a temporary name and renamed into place. (On S3 the rename
   * is a copy and a delete per object, and the temporary costs a dozen
   * sequential requests per daughter; docs/benchmarks.md, "S3 data root
   * against POSIX".) Leftovers of an interrupted run (without a
   * manifest, so never opened) are removed first. */
  mica_err *err;
  if (implicit && n_objects == 0) {
    err = man_write_first(e, dpath, &d);
  } else if (implicit) {
    err = env_remove_tree(e, dpath);
    if (err == NULL) err = man_write(e, dpath, &d);
  } else {
    size_t tlen = ddir.len + 16;
    char *tmp = xmalloc(tlen);
    snprintf(tmp, tlen, "%s.split-tmp", dpath);
    err = env_remove_tree(e, tmp);
    if (err == NULL) err = env_mkdirs(e, tmp);
    if (err == NULL) err = man_write(e, tmp, &d);
    if (err == NULL) err = env_remove_tree(e, dpath);
    if (err == NULL) err = env_rename(e, tmp, dpath);
    free(tmp);
  }
  man_clear(&d);
  buf_free(&ddir);
  return err;
}

typedef struct daughter_job {
  env *e;
  const char *tablets_dir, *base;
  const man_state *m;
  mica_err *err;
} daughter_job;

static void *right_daughter_main(void *arg) {
  daughter_job *j = arg;
  j->err = write_daughter(j->e, j->tablets_dir, j->base, j->m, 1);
  return NULL;
}

/* Writes both daughters of a split recorded in `m` (state SPLITTING or
 * SPLIT) next to `dir`, each referencing the parent's SSTables restricted
 * to its half, the two side by side (each is a few storage round trips,
 * network requests on S3). Idempotent: an interrupted run is redone from
 * scratch. */
mica_err *tb_write_daughters(env *e, const char *dir, const man_state *m) {
  char *tablets_dir, *base;
  path_split(dir, &tablets_dir, &base);
  daughter_job right = {e, tablets_dir, base, m, NULL};
  pthread_t th;
  bool threaded = pthread_create(&th, NULL, right_daughter_main, &right) == 0;
  mica_err *err = write_daughter(e, tablets_dir, base, m, 0);
  if (threaded)
    pthread_join(th, NULL);
  else
    right_daughter_main(&right);
  if (err == NULL) {
    err = right.err;
  } else {
    err_free(right.err);
  }
  if (err == NULL) err = env_sync_dir(e, tablets_dir);
  free(tablets_dir);
  free(base);
  return err_wrap(err, "split of tablet %" PRIu64, m->tablet_id);
}

mica_err *tb_split_done_error(const man_state *m) {
  buf k = BUF_INIT;
  slice_escape(buf_slice(&m->split_key), &k);
  mica_err *err = err_new(MICA_NOT_SERVING,
                          "tablet %" PRIu64 " was split at \"%s\" into %" PRIu64
                          " and %" PRIu64,
                          m->tablet_id, (const char *)k.data, m->left_id,
                          m->right_id);
  buf_free(&k);
  return err;
}

static mica_err *split(tablet *t, slice split_key, uint64_t left_id,
                       uint64_t right_id, const tab_options *opts,
                       tablet **left, tablet **right,
                       void (*written)(void *arg), void *arg);

mica_err *tab_split(tablet *t, slice split_key, uint64_t left_id,
                    uint64_t right_id, const tab_options *opts,
                    tablet **left, tablet **right) {
  return split(t, split_key, left_id, right_id, opts, left, right, NULL,
               NULL);
}

mica_err *tab_split_overlap(tablet *t, slice split_key, uint64_t left_id,
                            uint64_t right_id,
                            void (*written)(void *arg), void *arg) {
  return split(t, split_key, left_id, right_id, NULL, NULL, NULL, written,
               arg);
}

static mica_err *split(tablet *t, slice split_key, uint64_t left_id,
                       uint64_t right_id, const tab_options *opts,
                       tablet **left, tablet **right,
                       void (*written)(void *arg), void *arg) {
  if (left != NULL) *left = NULL;
  if (right != NULL) *right = NULL;
  if (split_key.len == 0 || split_key.len > t->o.max_key ||
      !t_in_range(t, split_key) || slice_eq(split_key, t_start(t)))
    return err_new(MICA_INVALID_ARGUMENT,
                   "split of tablet %" PRIu64
                   ": the key must lie strictly inside the tablet's range",
                   t->id);
  if (left_id == 0 || right_id == 0 || left_id == right_id ||
      left_id == t->id || right_id == t->id)
    return err_new(MICA_INVALID_ARGUMENT,
                   "split of tablet %" PRIu64 ": bad daughter ids %" PRIu64
                   ", %" PRIu64,
                   t->id, left_id, right_id);
  pthread_mutex_lock(&t->mu);
  tab_options o = opts != NULL ? *opts : t->o;
  pthread_mutex_unlock(&t->mu);
  char *tablets_dir = xstrdup(t->tablets_dir);
  uint64_t epoch = t->epoch;
  buf lstart = BUF_INIT, rend = BUF_INIT;
  buf_append_slice(&lstart, t_start(t));
  buf_append_slice(&rend, t_end(t));

  /* Stop writes and background work, flush everything. */
  pthread_mutex_lock(&t->mu);
  t->closing = true;
  while (t->queue_head != NULL || t->writing || t->rotating)
    pthread_cond_wait(&t->cv, &t->mu);
  mica_err *err = t->failed != NULL ? err_dup(t->failed) : NULL;
  pthread_mutex_unlock(&t->mu);
  res_member_remove(t->res, &t->member);
  t->member_added = false;
  res_job_cancel(t->res, &t->flush_job);
  res_job_cancel(t->res, &t->compact_job);
  if (err == NULL) err = tb_take_over(t); /* a pending tablet, see close */
  if (err == NULL) {
    pthread_mutex_lock(&t->mu);
    err = tb_rotate_locked(t, false);
    pthread_mutex_unlock(&t->mu);
  }
  if (err == NULL) err = tb_flush_all_imm(t);

  /* Commit: SPLITTING (intent), daughters, SPLIT (done). */
  if (err == NULL) {
    pthread_mutex_lock(&t->man_mu);
    man_state m;
    man_copy(&m, &t->man);
    m.state = MAN_SPLITTING;
    m.left_id = left_id;
    m.right_id = right_id;
    buf_clear(&m.split_key);
    buf_append_slice(&m.split_key, split_key);
    m.last_seq = t->last_seq;
    err = tb_write_manifest(t, &m);
    if (err == NULL) err = tb_write_daughters(t->e, t->dir, &m);
    if (err == NULL && written != NULL) written(arg);
    if (err == NULL) {
      m.state = MAN_SPLIT;
      err = tb_write_manifest(t, &m);
    }
    man_clear(&m);
    pthread_mutex_unlock(&t->man_mu);
  }
  res_pool *res = t->res;
  buf split_copy = BUF_INIT;
  buf_append_slice(&split_copy, split_key);
  tb_release(t);

  buf dpath = BUF_INIT;
  if (err == NULL && left != NULL) {
    layout_tablet_dir(tablets_dir, left_id, &dpath);
    err = tab_open(res, (const char *)dpath.data, left_id, buf_slice(&lstart),
                   buf_slice(&split_copy), epoch, &o, left);
  }
  if (err == NULL && right != NULL) {
    layout_tablet_dir(tablets_dir, right_id, &dpath);
    err = tab_open(res, (const char *)dpath.data, right_id,
                   buf_slice(&split_copy), buf_slice(&rend), epoch, &o, right);
    if (err != NULL && left != NULL) {
      err_free(tab_close(*left));
      *left = NULL;
    }
  }
  buf_free(&dpath);
  buf_free(&split_copy);
  buf_free(&lstart);
  buf_free(&rend);
  free(tablets_dir);
  return err;
}

typedef struct block_mark {
  size_t key_off;   /* in the shared key buffer while collecting */
  slice key;        /* set once the buffer stops growing */
  uint64_t bytes;
} block_mark;

static int cmp_mark(const void *a, const void *b) {
  return slice_cmp(((const block_mark *)a)->key, ((const block_mark *)b)->key);
}

/* True when the tablet has a live key below `m` and one at or above it. */
static bool splits_live_keys(tablet *t, slice m) {
  iter *it;
  tab_scan_options o;
  tab_scan_options_init(&o);
  o.fill_cache = false;
  if (tab_scan(t, &o, &it) != NULL) return false;
  bool ok = iter_valid(it) && slice_cmp(iter_key(it), m) < 0;
  if (ok) {
    iter_seek(it, m);
    ok = iter_valid(it);
  }
  iter_close(it);
  return ok;
}

mica_err *tab_middle_key(tablet *t, buf *out) {
  version *v = tb_current_version(t, NULL);
  /* Every data block of every file inside the range, as (last key, bytes),
   * sorted by key; the middle is where the running sum passes half. */
  buf keys = BUF_INIT;
  block_mark *marks = NULL;
  size_t nm = 0, cap = 0;
  uint64_t total = 0;
  tfile *largest = NULL;
  for (size_t i = 0; i < v->n_files; i++) {
    tfile *f = v->files[i];
    if (largest == NULL || f->est_bytes > largest->est_bytes) largest = f;
    size_t nb = sst_reader_num_blocks(f->r);
    for (size_t j = 0; j < nb; j++) {
      sst_block_info bi;
      sst_reader_block_info(f->r, j, &bi);
      if (bi.index_key.len < IKEY_TRAILER) continue;
      slice uk = ikey_user_key(bi.index_key);
      /* Also inside the file's own listed range: a merged tablet may list
       * one shared file twice, each entry for one input's half. */
      if (!in_range(uk, t_start(t), t_end(t), t->has_end) ||
          !in_range(uk, buf_slice(&f->lo), buf_slice(&f->hi), f->has_hi))
        continue;
      if (nm == cap) {
        cap = cap ? 2 * cap : 256;
        marks = xrealloc(marks, cap * sizeof(*marks));
      }
      marks[nm++] = (block_mark){keys.len, slice_make(NULL, uk.len), bi.size};
      buf_append_slice(&keys, uk);
      total += bi.size;
    }
  }
  mica_err *err = NULL;
  bool found = false;
  if (nm > 0) {
    for (size_t i = 0; i < nm; i++)
      marks[i].key = slice_make(keys.data + marks[i].key_off, marks[i].key.len);
    qsort(marks, nm, sizeof(*marks), cmp_mark);
    uint64_t sum = 0;
    for (size_t i = 0; i < nm && !found; i++) {
      sum += marks[i].bytes;
      if (2 * sum >= total) {
        /* Try this block boundary, then the following ones. */
        for (size_t j = i; j < nm && j < i + 4 && !found; j++) {
          slice m = marks[j].key;
          if (splits_live_keys(t, m)) {
            buf_clear(out);
            buf_append_slice(out, m);
            found = true;
          }
        }
        break;
      }
    }
  }
  if (!found && largest != NULL) {
    buf m = BUF_INIT;
    slice hi = t->has_end ? t_end(t) : slice_make(NULL, 0);
    slice lo = t->start.len > 0 ? t_start(t) : slice_make(NULL, 0);
    mica_err *merr = sst_reader_middle_key(largest->r, lo, hi, &m);
    if (merr == NULL && splits_live_keys(t, buf_slice(&m))) {
      buf_clear(out);
      buf_append_slice(out, buf_slice(&m));
      found = true;
    }
    err_free(merr);
    buf_free(&m);
  }
  if (!found) {
    /* Small tablets whose data is still in memory: walk the keys. */
    iter *it;
    tab_scan_options o;
    tab_scan_options_init(&o);
    o.snap = NULL;
    err = tab_scan(t, &o, &it);
    if (err == NULL) {
      uint64_t all = 0, n = 0;
      for (; iter_valid(it); iter_next(it)) {
        all += iter_key(it).len + iter_value(it).len;
        n++;
      }
      if (n >= 2) {
        uint64_t sum = 0;
        iter_seek_to_first(it);
        iter_next(it); /* the first key can never be the split key */
        for (; iter_valid(it); iter_next(it)) {
          sum += iter_key(it).len + iter_value(it).len;
          if (2 * sum >= all || !iter_valid(it)) break;
        }
        if (!iter_valid(it)) iter_seek_to_last(it);
        buf_clear(out);
        buf_append_slice(out, iter_key(it));
        found = true;
      }
      iter_close(it);
    }
  }
  free(marks);
  buf_free(&keys);
  tb_version_unref(v);
  if (err == NULL && !found)
    err = err_new(MICA_NOT_FOUND,
                  "tablet %" PRIu64 ": fewer than two keys, no middle key",
                  t->id);
  return err;
}
