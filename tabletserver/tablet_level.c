/* tablet_level: the shape of a tablet's SSTables (docs/engine.md,
 * "Levels"). Level 0 holds flushed memtables, newest first, whose key
 * spans may overlap: a read looks at each of them. Every level below holds
 * files with disjoint key spans, so a point read looks at one file per
 * level at most (found by binary search) and a seek opens one per level;
 * each level >= 1 has a size target ten times the one above, and a level
 * over its target (or level 0 with compaction_trigger files) is merged
 * into the next, one file at a time below level 0 (all of level 0 at
 * once, with what it overlaps in level 1).
 *
 * Reads also ask for compactions (LevelDB's seek compaction): a point
 * read that read a file (its Bloom filter let the key in) and still had
 * to look into another, or a seek that has to merge two or more files at
 * its start key, charges that first file; a file charged once per 16 KiB
 * of its size (at least 100 times) is compacted into the level below even
 * when no level is over its bound, so that data read often ends up in
 * fewer files. (LevelDB charges a get whatever the filter said; here a
 * file the filter answered cost the get no block read, so it is not
 * charged.)
 *
 * This file decides *what* a compaction merges and where the output goes;
 * tablet_compact.c does the writing and installs the result. Every
 * function here is pure over a version, except tb_pick_compaction, which
 * advances the tablet's round-robin pointers under compact_mu. */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Key spans                                                           */

void tb_tfile_set_span(tfile *f) {
  const sst_properties *p = sst_reader_properties(f->r);
  buf_clear(&f->klo);
  buf_clear(&f->khi);
  f->khi_excl = false;
  f->no_keys = p->num_entries == 0;
  if (f->no_keys) return;
  slice smallest = ikey_user_key(buf_slice(&p->smallest_key));
  slice largest = ikey_user_key(buf_slice(&p->largest_key));
  slice lo = buf_slice(&f->lo), hi = buf_slice(&f->hi);
  /* The read range [lo, hi) cuts the file's [smallest, largest]. */
  if (lo.len > 0 && slice_cmp(largest, lo) < 0) f->no_keys = true;
  if (f->has_hi && slice_cmp(smallest, hi) >= 0) f->no_keys = true;
  if (f->no_keys) return;
  buf_append_slice(&f->klo,
                   lo.len > 0 && slice_cmp(smallest, lo) < 0 ? lo : smallest);
  if (f->has_hi && slice_cmp(largest, hi) >= 0) {
    buf_append_slice(&f->khi, hi);
    f->khi_excl = true;
  } else {
    buf_append_slice(&f->khi, largest);
  }
}

/* Whether span `a` ends before `key`. */
static bool span_before(kspan a, slice key) {
  int c = slice_cmp(a.hi, key);
  return c < 0 || (c == 0 && a.hi_excl);
}

bool tb_span_overlap(kspan a, kspan b) {
  return !span_before(a, b.lo) && !span_before(b, a.lo);
}

bool tb_tfile_may_hold(const tfile *f, slice key) {
  if (f->no_keys) return false;
  return slice_cmp(key, buf_slice(&f->klo)) >= 0 &&
         !span_before(tf_span(f), key);
}

bool tb_tfile_meets(const tfile *f, slice lo, slice hi, bool has_hi) {
  if (f->no_keys) return false;
  if (lo.len > 0 && span_before(tf_span(f), lo)) return false;
  return !has_hi || slice_cmp(buf_slice(&f->klo), hi) < 0;
}

/* The smallest span holding both. */
static kspan span_union(kspan a, kspan b) {
  kspan u = a;
  if (slice_cmp(b.lo, u.lo) < 0) u.lo = b.lo;
  int c = slice_cmp(b.hi, u.hi);
  if (c > 0 || (c == 0 && !b.hi_excl)) {
    u.hi = b.hi;
    u.hi_excl = b.hi_excl;
  }
  return u;
}

size_t tb_level_find(const version *v, int level, slice key) {
  size_t a = v->lvl[level], b = v->lvl[level + 1];
  while (a < b) {
    size_t m = a + (b - a) / 2;
    const tfile *f = v->files[m];
    if (f->no_keys || span_before(tf_span(f), key)) a = m + 1;
    else b = m;
  }
  return a;
}

mica_err *tb_check_levels(const tablet *t, const version *v) {
  for (int l = 1; l < TB_LEVELS; l++) {
    const tfile *prev = NULL;
    for (size_t i = v->lvl[l]; i < v->lvl[l + 1]; i++) {
      const tfile *f = v->files[i];
      if (f->no_keys) continue;
      /* Sorted by key and disjoint: each span starts after the previous
       * one ends. */
      if (prev != NULL && !span_before(tf_span(prev), buf_slice(&f->klo)))
        return err_new(MICA_CORRUPTION,
                       "tablet %" PRIu64 " in %s: level %d files %s and %s "
                       "overlap or are out of key order",
                       t->id, t->dir, l, prev->rel, f->rel);
      prev = f;
    }
  }
  return NULL;
}

mica_err *tb_check_file_levels(const tablet *t, tfile **files,
                               const uint8_t *levels, size_t n) {
  memtable *empty = mt_new();
  version *v = tb_version_new(empty, NULL, 0, files, levels, n);
  mt_unref(empty);
  mica_err *err = tb_check_levels(t, v);
  tb_version_unref(v);
  return err == NULL ? NULL
                     : err_wrap(err, "manifest %s/" MAN_FILE_NAME, t->dir);
}

/* ------------------------------------------------------------------ */
/* Bounds                                                              */

#define LEVEL_MULTIPLIER 10

uint64_t tb_level_target(const tab_options *o, int level) {
  uint64_t base = o->level_base_bytes != 0 ? o->level_base_bytes
                                           : 8 * (uint64_t)o->memtable_bytes;
  for (int l = 1; l < level; l++) base *= LEVEL_MULTIPLIER;
  return base;
}

uint64_t tb_file_target(const tab_options *o) {
  return o->level_file_bytes != 0 ? o->level_file_bytes
                                  : 2 * (uint64_t)o->memtable_bytes;
}

static uint64_t level_bytes(const version *v, int level) {
  uint64_t n = 0;
  for (size_t i = v->lvl[level]; i < v->lvl[level + 1]; i++)
    n += v->files[i]->est_bytes;
  return n;
}

/* The score of each level that can be compacted into the next: level 0
 * by file count, the others by size; the last level has none. Returns the
 * most urgent level (ties: the upper one). */
static int best_level(const tablet *t, const version *v, double *score) {
  int best = 0;
  *score = (double)v_level_count(v, 0) / (double)t->o.compaction_trigger;
  for (int l = 1; l < TB_LEVELS - 1; l++) {
    double s = (double)level_bytes(v, l) / (double)tb_level_target(&t->o, l);
    if (s > *score) {
      *score = s;
      best = l;
    }
  }
  return best;
}

double tb_compaction_score(const tablet *t, const version *v) {
  double s;
  best_level(t, v, &s);
  return s;
}

bool tb_version_has_foreign(const version *v) {
  for (size_t i = 0; i < v->n_files; i++)
    if (!v->files[i]->own) return true;
  return false;
}

/* ------------------------------------------------------------------ */
/* Read-triggered compaction                                           */

bool tb_version_read_due(const version *v) {
  for (size_t i = 0; i < v->n_files; i++)
    if (atomic_load_explicit(&v->files[i]->read_due, memory_order_relaxed))
      return true;
  return false;
}

void tb_charge_read(tablet *t, tfile *f) {
  if (atomic_fetch_sub_explicit(&f->seeks_left, 1, memory_order_relaxed) != 1)
    return;
  atomic_store(&f->read_due, true);
  /* Under mu, as tab_maintain does: a close sets closing under mu before
   * it cancels the jobs, so it cannot miss a job scheduled here. */
  pthread_mutex_lock(&t->mu);
  if (t->o.auto_compact && !t->closing && !t->pending && t->failed == NULL)
    res_job_schedule(t->res, &t->compact_job);
  pthread_mutex_unlock(&t->mu);
}

void tb_charge_seek(tablet *t, const version *v, slice key) {
  tfile *first = NULL;
  for (size_t i = v->lvl[0]; i < v->lvl[1]; i++) {
    if (!tb_tfile_may_hold(v->files[i], key)) continue;
    if (first != NULL) {
      tb_charge_read(t, first);
      return;
    }
    first = v->files[i];
  }
  for (int l = 1; l < TB_LEVELS; l++) {
    size_t i = tb_level_find(v, l, key);
    if (i == v->lvl[l + 1] || !tb_tfile_may_hold(v->files[i], key)) continue;
    if (first != NULL) {
      tb_charge_read(t, first);
      return;
    }
    first = v->files[i];
  }
}

/* ------------------------------------------------------------------ */
/* Picking                                                             */

static void pick_add(tb_pick *p, tfile *f) {
  p->in = xrealloc(p->in, (p->n_in + 1) * sizeof(*p->in));
  p->in[p->n_in++] = f;
  if (!f->own) p->foreign = true;
}

/* The union of the spans of p's inputs; false when none has keys. */
static bool pick_span(const tb_pick *p, kspan *out) {
  bool any = false;
  for (size_t i = 0; i < p->n_in; i++) {
    if (p->in[i]->no_keys) continue;
    *out = any ? span_union(*out, tf_span(p->in[i])) : tf_span(p->in[i]);
    any = true;
  }
  return any;
}

/* Adds the files of `level` overlapping span `s`. */
static void add_overlapping(tb_pick *p, const version *v, int level,
                            kspan s) {
  for (size_t i = tb_level_find(v, level, s.lo); i < v->lvl[level + 1]; i++) {
    tfile *f = v->files[i];
    if (!tb_span_overlap(tf_span(f), s)) break;
    pick_add(p, f);
  }
}

/* Deletes may be dropped when no level below the output holds a file
 * whose span meets the inputs': nothing older could then show through
 * once a delete is gone. (Versions older than the newest of a key are
 * always dropped: a snapshot holds its own version, whose files stay.) */
static void set_drop_deletes(tb_pick *p, const version *v) {
  kspan s;
  p->drop_deletes = true;
  if (!pick_span(p, &s)) return;
  for (int l = p->out_level + 1; l < TB_LEVELS && p->drop_deletes; l++) {
    size_t i = tb_level_find(v, l, s.lo);
    if (i < v->lvl[l + 1] && tb_span_overlap(tf_span(v->files[i]), s))
      p->drop_deletes = false;
  }
}

/* All of level 0 and the files of level 1 it overlaps, into level 1. */
static void pick_level0(const version *v, tb_pick *p) {
  for (size_t i = v->lvl[0]; i < v->lvl[1]; i++) pick_add(p, v->files[i]);
  kspan s;
  if (pick_span(p, &s)) add_overlapping(p, v, 1, s);
  p->out_level = 1;
  p->why = "level 0";
}

/* The next file of `level` >= 1 after the round-robin pointer, and what
 * it overlaps in the level below; a file that overlaps nothing there
 * moves down unchanged when it is the tablet's own and unrestricted. */
static void pick_level(tablet *t, const version *v, int level, tb_pick *p) {
  buf *ptr = &t->compact_ptr[level];
  size_t first = v->lvl[level], i = first;
  if (ptr->len > 0) {
    while (i < v->lvl[level + 1] &&
           (v->files[i]->no_keys ||
            slice_cmp(buf_slice(&v->files[i]->klo), buf_slice(ptr)) <= 0))
      i++;
    if (i == v->lvl[level + 1]) i = first;
  }
  tfile *f = v->files[i];
  pick_add(p, f);
  buf_clear(ptr);
  if (!f->no_keys) {
    buf_append_slice(ptr, buf_slice(&f->khi));
    add_overlapping(p, v, level + 1, tf_span(f));
  }
  p->out_level = level + 1;
  p->move = p->n_in == 1 && f->own && !f->restrict_reads && !f->no_keys;
  p->why = "level size";
}

/* The first file of `v` that ran out of reads, compacted into the level
 * below: all of level 0 (with what it overlaps in level 1) for a level-0
 * file, else the file and what it overlaps below; a file that overlaps
 * nothing below moves down unchanged when it is the tablet's own. Its
 * read_due is cleared whatever is picked, so a moved file does not keep
 * asking. False when no file below the last level is due. */
static bool pick_read_due(tablet *t, const version *v, tb_pick *p) {
  for (size_t i = 0; i < v->n_files; i++) {
    tfile *f = v->files[i];
    if (!atomic_exchange(&f->read_due, false)) continue;
    int l = v_file_level(v, i);
    if (l == TB_LEVELS - 1 || f->no_keys) continue;
    if (l == 0) {
      pick_level0(v, p);
    } else {
      pick_add(p, f);
      add_overlapping(p, v, l + 1, tf_span(f));
      p->out_level = l + 1;
      p->move = p->n_in == 1 && f->own && !f->restrict_reads;
    }
    p->why = "reads";
    stat_add(&t->st_read_compactions, 1);
    return true;
  }
  return false;
}

bool tb_pick_compaction(tablet *t, const version *v, bool force,
                        tb_pick *p) {
  memset(p, 0, sizeof(*p));
  size_t n = v->n_files;
  if (force) {
    /* Everything, into the lowest level that holds data (at least 1); a
     * lone file of the tablet's own without deletes (so already holding
     * one version of each key) moves there unchanged. */
    if (n == 0) return false;
    tfile *f = v->files[0];
    bool lone = n == 1 && f->own && !f->restrict_reads &&
                sst_reader_properties(f->r)->num_deletions == 0;
    if (lone && v_file_level(v, 0) != 0) return false;
    for (size_t i = 0; i < n; i++) pick_add(p, v->files[i]);
    p->out_level = v_file_level(v, n - 1);
    if (p->out_level == 0) p->out_level = 1;
    p->move = lone;
    p->drop_deletes = !p->move;
    p->why = "requested";
    return true;
  }
  double score;
  int level = best_level(t, v, &score);
  if (score >= 1) {
    if (level == 0) pick_level0(v, p);
    else pick_level(t, v, level, p);
  } else {
    /* A file read by reference (a split parent's, a merge input's) is
     * rewritten into this tablet's own files whatever the level sizes,
     * so that the other tablet's directory can be collected
     * (docs/engine.md, "Daughters compact down to their own files"): in
     * level 0 by the level-0 compaction, below in place, at its level
     * (the output stays inside its span, so the level stays disjoint). */
    size_t i = 0;
    while (i < n && v->files[i]->own) i++;
    if (i == n) {
      /* Last, files that reads asked to compact. */
      if (!pick_read_due(t, v, p)) return false;
    } else {
      int l = v_file_level(v, i);
      if (l == 0) {
        pick_level0(v, p);
      } else {
        pick_add(p, v->files[i]);
        p->out_level = l;
      }
      p->why = "read by reference";
    }
  }
  if (!p->move) set_drop_deletes(p, v);
  return true;
}

size_t tb_apply_compaction(const version *cur, const tb_pick *p, tfile **out,
                           size_t n_out, tfile ***files, uint8_t **levels) {
  size_t cap = cur->n_files + n_out + 1, k = 0;
  *files = xcalloc(cap, sizeof(**files));
  *levels = xcalloc(cap, 1);
  for (int l = 0; l < TB_LEVELS; l++) {
    for (size_t i = cur->lvl[l]; i < cur->lvl[l + 1]; i++) {
      tfile *f = cur->files[i];
      bool input = false;
      for (size_t j = 0; j < p->n_in && !input; j++) input = p->in[j] == f;
      if (input && !p->move) continue;
      (*files)[k] = f;
      (*levels)[k++] = (uint8_t)(input ? p->out_level : l);
    }
  }
  for (size_t i = 0; i < n_out; i++) {
    (*files)[k] = out[i];
    (*levels)[k++] = (uint8_t)p->out_level;
  }
  return k;
}
