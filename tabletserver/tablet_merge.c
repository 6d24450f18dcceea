/* tablet_merge: builds the MANIFEST of a merged tablet that references
 * both inputs' SSTables, and retires the inputs (see tablet_merge.h for
 * the steps and the correctness argument). Only manifests are written:
 * the cost is independent of the inputs' sizes. */
#include "tabletserver/tablet_merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/log.h"
#include "common/path.h"
#include "common/slice.h"
#include "tabletserver/manifest.h"

/* The end of `m`'s range as tab_open takes it (len 0 = unbounded). */
static slice man_end(const man_state *m) {
  return m->has_end ? buf_slice(&m->end_key) : slice_make(NULL, 0);
}

/* Reads input `in` and checks that it can still be merged into `id`
 * under `epoch`. */
static mica_err *read_input(env *e, const tab_merge_input *in, uint64_t id,
                            uint64_t epoch, man_state *m) {
  mica_err *err = man_read(e, in->dir, m);
  if (err != NULL)
    return err_wrap(err, "merge into tablet %" PRIu64 ": input %" PRIu64, id,
                    in->id);
  if (m->tablet_id != in->id)
    return err_new(MICA_INVALID_ARGUMENT,
                   "merge into tablet %" PRIu64 ": %s/MANIFEST belongs to "
                   "tablet %" PRIu64 ", not %" PRIu64,
                   id, in->dir, m->tablet_id, in->id);
  if (m->state == MAN_MERGED && m->left_id == id)
    return err_new(MICA_CORRUPTION,
                   "merge into tablet %" PRIu64 ": input %" PRIu64
                   " is retired into it but its MANIFEST is missing",
                   id, in->id);
  if (m->state != MAN_LIVE)
    return err_new(MICA_NOT_SERVING,
                   "merge into tablet %" PRIu64 ": input %" PRIu64
                   " was already %s",
                   id, in->id,
                   m->state == MAN_MERGED ? "merged into another tablet"
                                          : "split");
  if (m->epoch > epoch)
    return err_new(MICA_STALE_EPOCH,
                   "merge into tablet %" PRIu64 " under assign_epoch %" PRIu64
                   ": input %" PRIu64 " is owned by epoch %" PRIu64,
                   id, epoch, in->id, m->epoch);
  return NULL;
}

/* Step 2: an input holding WAL data, or written under an older epoch, is
 * opened under `epoch` (replay, flush, fence) and closed again; `m` is
 * re-read afterwards. */
static mica_err *drain_input(res_pool *res, const tab_merge_input *in,
                             uint64_t id, uint64_t epoch,
                             const tab_options *opts, man_state *m) {
  if (!man_holds_writes(m) && m->epoch == epoch) return NULL;
  tab_options o;
  if (opts != NULL) o = *opts;
  else tab_options_init(&o);
  o.create_if_missing = false;
  o.auto_compact = false;
  tablet *t = NULL;
  mica_err *err = tab_open(res, in->dir, in->id, buf_slice(&m->start_key),
                           man_end(m), epoch, &o, &t);
  if (err == NULL) err = tab_close(t);
  if (err == NULL) {
    man_clear(m);
    err = read_input(res_env(res), in, id, epoch, m);
  }
  if (err == NULL && (man_holds_writes(m) || m->epoch != epoch))
    err = err_new(MICA_INTERNAL,
                  "input %" PRIu64 " still lists %zu WAL segments after a "
                  "clean close",
                  in->id, m->n_live);
  return err_wrap(err, "merge into tablet %" PRIu64 ": draining input %" PRIu64,
                  id, in->id);
}

/* Appends input `src`'s SSTables to `dst`, each restricted to `src`'s
 * range and named from `dst`'s directory (`base` is src's directory
 * name, a sibling of dst's). */
static void add_input_files(man_state *dst, const man_state *src,
                            const char *base) {
  slice rlo = buf_slice(&src->start_key), rhi = man_end(src);
  for (size_t i = 0; i < src->n_ssts; i++) {
    const man_sst *s = &src->ssts[i];
    slice lo = buf_slice(&s->lo), hi = buf_slice(&s->hi);
    bool has_hi = s->has_hi;
    if (rlo.len > 0 && (lo.len == 0 || slice_cmp(rlo, lo) > 0)) lo = rlo;
    if (src->has_end && (!has_hi || slice_cmp(rhi, hi) < 0)) {
      hi = rhi;
      has_hi = true;
    }
    if (has_hi && slice_cmp(lo, hi) >= 0) continue; /* nothing in range */
    /* The input's file, seen from the merged tablet's (sibling)
     * directory; a path naming a sibling already stays as it is. */
    buf rel = BUF_INIT;
    layout_sibling_file(base, s->path, &rel);
    /* At the input's level: the inputs' ranges are disjoint, so each
     * level of the merged tablet, the union of the inputs' levels cut to
     * their ranges, still holds disjoint key ranges (the tablet sorts
     * each level by key when it opens). */
    man_add_sst(dst, (const char *)rel.data, s->size, lo, hi, has_hi)->level =
        s->level;
    buf_free(&rel);
  }
}

/* Step 3: writes M's MANIFEST under a temporary directory and renames it
 * into place. `l`, `r`: the inputs in key order, with their directory
 * names. */
static mica_err *write_merged(env *e, const char *dir, const char *parent,
                              uint64_t id, uint64_t epoch, const man_state *l,
                              const char *lbase, const man_state *r,
                              const char *rbase) {
  man_state m;
  man_init(&m);
  m.tablet_id = id;
  m.epoch = epoch;
  m.last_seq = l->last_seq > r->last_seq ? l->last_seq : r->last_seq;
  m.next_file = 1;
  m.state = MAN_LIVE;
  buf_append_slice(&m.start_key, buf_slice(&l->start_key));
  m.has_end = r->has_end;
  if (r->has_end) buf_append_slice(&m.end_key, buf_slice(&r->end_key));
  add_input_files(&m, l, lbase);
  add_input_files(&m, r, rbase);
  size_t tlen = strlen(dir) + 16;
  char *tmp = xmalloc(tlen);
  snprintf(tmp, tlen, "%s.merge-tmp", dir);
  mica_err *err = env_remove_tree(e, tmp);
  if (err == NULL) err = env_mkdirs(e, tmp);
  if (err == NULL) err = man_write(e, tmp, &m);
  /* A directory without MANIFEST holds nothing anyone references. */
  if (err == NULL) err = env_remove_tree(e, dir);
  if (err == NULL) err = env_rename(e, tmp, dir);
  if (err == NULL) err = env_sync_dir(e, parent);
  free(tmp);
  man_clear(&m);
  return err;
}

/* Step 4: marks input `in` retired into `id`. */
static mica_err *retire_input(env *e, const tab_merge_input *in, uint64_t id,
                              uint64_t partner, uint64_t epoch) {
  man_state m;
  man_init(&m);
  mica_err *err = man_read(e, in->dir, &m);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    /* Retired earlier and already collected. */
    err_free(err);
    return NULL;
  }
  if (err == NULL && m.state == MAN_MERGED && m.left_id == id) {
    man_clear(&m);
    return NULL;
  }
  if (err == NULL && m.state != MAN_LIVE)
    err = err_new(MICA_NOT_SERVING, "input %" PRIu64 " was split or merged "
                  "into another tablet", in->id);
  if (err == NULL && m.epoch > epoch)
    err = err_new(MICA_STALE_EPOCH, "input %" PRIu64 " is owned by epoch %"
                  PRIu64 ", newer than %" PRIu64, in->id, m.epoch, epoch);
  if (err == NULL && man_holds_writes(&m))
    /* Written after it was drained for this merge: those writes are not
     * in the merged tablet, so retiring it would drop them. */
    err = err_new(MICA_ABORTED, "input %" PRIu64 " holds WAL data written "
                  "after the merge began", in->id);
  if (err == NULL) {
    m.state = MAN_MERGED;
    m.epoch = epoch;
    m.left_id = id;
    m.right_id = partner;
    buf_clear(&m.split_key);
    err = man_write(e, in->dir, &m);
  }
  man_clear(&m);
  return err_wrap(err, "merge into tablet %" PRIu64 ": retiring input %" PRIu64,
                  id, in->id);
}

mica_err *tab_merge_prepare(res_pool *res, const char *dir, uint64_t id,
                            const tab_merge_input in[2],
                            uint64_t assign_epoch, const tab_options *opts) {
  env *e = res_env(res);
  if (in[0].id == in[1].id || in[0].id == id || in[1].id == id)
    return err_new(MICA_INVALID_ARGUMENT,
                   "merge into tablet %" PRIu64 ": inputs %" PRIu64
                   " and %" PRIu64 " must be two other tablets",
                   id, in[0].id, in[1].id);
  char *parent, *base, *p0, *b0, *p1, *b1;
  path_split(dir, &parent, &base);
  path_split(in[0].dir, &p0, &b0);
  path_split(in[1].dir, &p1, &b1);
  mica_err *err = NULL;
  if (strcmp(parent, p0) != 0 || strcmp(parent, p1) != 0)
    err = err_new(MICA_INVALID_ARGUMENT,
                  "merge into tablet %" PRIu64 ": the inputs' directories "
                  "must be siblings of %s",
                  id, dir);
  man_state m[2];
  man_init(&m[0]);
  man_init(&m[1]);
  bool exists = err == NULL && man_exists(e, dir);
  if (exists) {
    /* Step 1: made already; only the retirements may be missing. */
    man_state mm;
    man_init(&mm);
    err = man_read(e, dir, &mm);
    if (err == NULL && mm.tablet_id != id)
      err = err_new(MICA_INVALID_ARGUMENT,
                    "%s/MANIFEST belongs to tablet %" PRIu64 ", not %" PRIu64,
                    dir, mm.tablet_id, id);
    man_clear(&mm);
    if (err == NULL) {
      size_t tlen = strlen(dir) + 16;
      char *tmp = xmalloc(tlen);
      snprintf(tmp, tlen, "%s.merge-tmp", dir);
      err = env_remove_tree(e, tmp);
      free(tmp);
    }
  } else if (err == NULL) {
    for (int i = 0; i < 2 && err == NULL; i++)
      err = read_input(e, &in[i], id, assign_epoch, &m[i]);
    int l = 0;
    if (err == NULL) {
      if (m[1].has_end &&
          slice_eq(buf_slice(&m[1].end_key), buf_slice(&m[0].start_key)))
        l = 1;
      else if (!m[0].has_end ||
               !slice_eq(buf_slice(&m[0].end_key), buf_slice(&m[1].start_key)))
        err = err_new(MICA_INVALID_ARGUMENT,
                      "merge into tablet %" PRIu64 ": inputs %" PRIu64
                      " and %" PRIu64 " are not adjacent",
                      id, in[0].id, in[1].id);
    }
    for (int i = 0; i < 2 && err == NULL; i++)
      err = drain_input(res, &in[i], id, assign_epoch, opts, &m[i]);
    if (err == NULL) {
      LOG_I("merging tablets %" PRIu64 " and %" PRIu64 " into %" PRIu64
            " by reference (%zu + %zu SSTables)",
            in[l].id, in[1 - l].id, id, m[l].n_ssts, m[1 - l].n_ssts);
      err = write_merged(e, dir, parent, id, assign_epoch, &m[l],
                         l == 0 ? b0 : b1, &m[1 - l], l == 0 ? b1 : b0);
      err = err_wrap(err, "merge into tablet %" PRIu64, id);
    }
  }
  /* Step 4, also when step 1 found M made. */
  for (int i = 0; i < 2 && err == NULL; i++)
    err = retire_input(e, &in[i], id, in[1 - i].id, assign_epoch);
  man_clear(&m[0]);
  man_clear(&m[1]);
  free(parent);
  free(base);
  free(p0);
  free(b0);
  free(p1);
  free(b1);
  return err;
}
