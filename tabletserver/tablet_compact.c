/* tablet_compact: everything that writes SSTables. A flush writes the
 * oldest immutable memtable and retires its WAL segment in one manifest
 * write; a rotation makes the active memtable immutable behind a new
 * segment; a compaction merges a size-tiered run of SSTables; and the
 * background jobs of the server's pool (resources.h) run both. Locks and
 * their order: tablet_int.h. */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/path.h"

/* Writes the newest entry of each user key of `in` (a sorted internal-key
 * iterator, positioned by this function) to a new SSTable numbered
 * `number`, dropping deletes when `drop_deletes`. *out is NULL when
 * nothing was left to write. `read_bytes` (may be NULL) gets the bytes of
 * entries read. */
mica_err *tb_write_sst(tablet *t, iter *in, bool drop_deletes,
                       uint64_t number, tfile **out,
                       uint64_t *read_bytes) {
  *out = NULL;
  char name[96];
  tb_sst_file_name(name, sizeof(name), t->epoch, number);
  char *path = path_join(t->dir, name);
  sst_builder *b = NULL;
  mica_err *err = NULL;
  buf last = BUF_INIT;
  bool have_last = false;
  uint64_t nread = 0;
  for (iter_seek_to_first(in); iter_valid(in); iter_next(in)) {
    slice k = iter_key(in), val = iter_value(in);
    nread += k.len + val.len;
    ikey_parts p;
    if (!ikey_parse(k, &p)) {
      err = err_new(MICA_CORRUPTION, "tablet %" PRIu64
                    ": malformed internal key while writing %s", t->id, path);
      break;
    }
    if (have_last && slice_eq(p.user_key, buf_slice(&last))) continue;
    buf_clear(&last);
    buf_append_slice(&last, p.user_key);
    have_last = true;
    if (p.kind == IKEY_DELETE && drop_deletes) continue;
    if (b == NULL) {
      /* tab_set_sst_options may change them while we run: take a copy. */
      pthread_mutex_lock(&t->mu);
      sst_options so = t->o.sst;
      pthread_mutex_unlock(&t->mu);
      err = sst_builder_new(t->e, path, &so, &b);
      if (err != NULL) break;
    }
    err = sst_builder_add(b, k, val);
    if (err != NULL) break;
  }
  if (err == NULL && iter_status(in) != NULL) err = err_dup(iter_status(in));
  buf_free(&last);
  if (read_bytes != NULL) *read_bytes = nread;
  if (err != NULL) {
    sst_builder_abandon(b);
    free(path);
    return err;
  }
  if (b == NULL) {
    free(path);
    return NULL;
  }
  err = sst_builder_finish(b, NULL);
  /* The file's directory entry must be durable before a manifest that
   * names it can be. */
  if (err == NULL) err = env_sync_dir(t->e, t->dir);
  if (err == NULL) {
    err = tb_tfile_open(t->e, res_cache(t->res), t->dir, name, 0, t_start(t),
                        t_end(t), t->has_end, out);
    if (err != NULL) err_free(env_remove(t->e, path));
  }
  free(path);
  return err;
}

/* ------------------------------------------------------------------ */
/* Flush                                                               */

void tb_charge_memory(tablet *t, int64_t delta) {
  if (delta != 0) res_mem_add(t->res, delta);
}

/* Flushes the oldest immutable memtable: writes it as an SSTable, then in
 * one manifest write adds the file and retires its WAL segment. Sets
 * *did to whether there was one. */
static mica_err *flush_one(tablet *t, bool *did) {
  *did = false;
  pthread_mutex_lock(&t->flush_mu);
  pthread_mutex_lock(&t->mu);
  if (t->n_imm == 0) {
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&t->flush_mu);
    return NULL;
  }
  imm_entry victim = t->imms[0];
  uint64_t number = t->next_file++;
  pthread_mutex_unlock(&t->mu);

  iter *in = mt_iter_new(victim.mem);
  tfile *f = NULL;
  mica_err *err = tb_write_sst(t, in, false, number, &f, NULL);
  iter_close(in);
  if (err != NULL) {
    err = err_wrap(err, "tablet %" PRIu64 ": flush", t->id);
    pthread_mutex_unlock(&t->flush_mu);
    return err;
  }

  pthread_mutex_lock(&t->man_mu);
  pthread_mutex_lock(&t->mu);
  size_t n = t->cur->n_files + 1, k = 0;
  tfile **files = xcalloc(n, sizeof(*files));
  if (f != NULL) files[k++] = f;
  for (size_t i = 0; i < t->cur->n_files; i++) files[k++] = t->cur->files[i];
  man_state m;
  man_copy(&m, &t->man);
  tb_man_set_files(&m, files, k);
  if (t->log != NULL) {
    /* Shared commit log: the SSTables now hold everything up to the
     * victim's last write (older memtables were flushed before it). The
     * last flush of a close or split holds everything: the manifest then
     * names no log, which is what a clean close means (merges and the
     * collection of dead logs rely on it). */
    m.log_flushed_seq = victim.last_seq;
    if (t->closing && t->n_imm == 1 && mt_count(t->cur->mem) == 0)
      man_set_log(&m, slice_make(NULL, 0), 0, 0, 0);
  } else {
    m.n_live = 0;
    for (size_t i = 0; i < t->man.n_live; i++)
      if (t->man.live[i].number != victim.segment ||
          t->man.live[i].epoch != t->epoch)
        man_add_live(&m, t->man.live[i].epoch, t->man.live[i].number);
    man_add_retired(&m, t->epoch, victim.segment);
  }
  m.last_seq = t->last_seq;
  m.next_file = t->next_file;
  pthread_mutex_unlock(&t->mu);

  err = tb_write_manifest(t, &m);
  if (err != NULL) {
    /* Whether the new manifest replaced the old one is unknown, so the
     * file stays on disk; a reopen deletes it if no manifest lists it. */
    man_clear(&m);
    free(files);
    tb_tfile_unref(f);
    pthread_mutex_unlock(&t->man_mu);
    pthread_mutex_unlock(&t->flush_mu);
    return err_wrap(err, "tablet %" PRIu64 ": flush", t->id);
  }
  pthread_mutex_lock(&t->mu);
  man_clear(&t->man);
  t->man = m;
  memmove(&t->imms[0], &t->imms[1], (t->n_imm - 1) * sizeof(*t->imms));
  t->n_imm--;
  tb_install_version(t, t->cur->mem, files, k);
  pthread_mutex_unlock(&t->mu);
  free(files);
  if (f != NULL) {
    stat_add(&t->st_flushes, 1);
    stat_add(&t->st_flush_bytes, f->size);
    tb_tfile_unref(f); /* the version holds it now */
  }

  if (t->log != NULL) {
    clog_flushed(t->log, t->id, victim.last_seq);
    goto flushed;
  }
  /* The segment is retired in the manifest; delete it, then forget it. */
  char name[96];
  wal_segment_name(name, sizeof(name), t->epoch, victim.segment);
  char *path = path_join(t->dir, name);
  mica_err *rm = env_remove(t->e, path);
  if (rm == NULL || err_code(rm) == MICA_NOT_FOUND) {
    pthread_mutex_lock(&t->mu);
    man_state *cm = &t->man;
    for (size_t i = 0; i < cm->n_retired; i++) {
      if (cm->retired[i].epoch == t->epoch &&
          cm->retired[i].number == victim.segment) {
        cm->retired[i] = cm->retired[--cm->n_retired];
        break;
      }
    }
    pthread_mutex_unlock(&t->mu);
  }
  err_free(rm);
  free(path);
flushed:
  pthread_mutex_unlock(&t->man_mu);

  res_mem_release(t->res, victim.charged);
  mt_unref(victim.mem);
  *did = true;
  pthread_mutex_lock(&t->mu);
  bool compact = tb_compaction_due_locked(t);
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&t->flush_mu);
  if (compact) res_job_schedule(t->res, &t->compact_job);
  return NULL;
}

/* Makes the active memtable immutable behind a new WAL segment. Caller
 * holds mu (released while doing I/O and reacquired); t->rotating keeps
 * writers out meanwhile. With `new_segment` false (close, split), the WAL
 * is closed instead and no writes may follow. */
mica_err *tb_rotate_locked(tablet *t, bool new_segment) {
  if (t->log != NULL) {
    /* The server's commit log has no per-tablet segment to switch: the
     * memtable becomes immutable with the sequence number of its last
     * write, which its flush reports to the log. */
    while (t->writing || t->rotating) pthread_cond_wait(&t->cv, &t->mu);
    t->imms = xrealloc(t->imms, (t->n_imm + 1) * sizeof(*t->imms));
    memtable *old = t->cur->mem;
    mt_ref(old);
    t->imms[t->n_imm++] = (imm_entry){old, 0, t->last_seq, t->active_charged};
    res_mem_freeze(t->res, t->active_charged);
    t->active_charged = 0;
    atomic_store(&t->active_bytes, 0);
    memtable *fresh = mt_new();
    tb_install_version(t, fresh, t->cur->files, t->cur->n_files);
    mt_unref(fresh);
    pthread_cond_broadcast(&t->cv);
    if (new_segment) res_job_schedule(t->res, &t->flush_job);
    return NULL;
  }
  t->rotating = true;
  while (t->writing) pthread_cond_wait(&t->cv, &t->mu);
  uint64_t number = new_segment ? t->next_file++ : 0;
  pthread_mutex_unlock(&t->mu);

  mica_err *err = NULL;
  wal_writer *nw = NULL;
  char *path = NULL;
  pthread_mutex_lock(&t->man_mu);
  if (new_segment) {
    char name[96];
    wal_segment_name(name, sizeof(name), t->epoch, number);
    path = path_join(t->dir, name);
    err = wal_writer_open(t->e, path, t->epoch, number, &nw);
    if (err == NULL) {
      man_state m;
      pthread_mutex_lock(&t->mu);
      man_copy(&m, &t->man);
      m.last_seq = t->last_seq;
      m.next_file = t->next_file;
      pthread_mutex_unlock(&t->mu);
      man_add_live(&m, t->epoch, number);
      err = tb_write_manifest(t, &m);
      if (err == NULL) {
        pthread_mutex_lock(&t->mu);
        man_clear(&t->man);
        t->man = m;
        pthread_mutex_unlock(&t->mu);
      } else {
        /* The manifest may or may not have been replaced: keep the
         * segment file (a reopen deletes it if no manifest lists it). */
        man_clear(&m);
        err_free(wal_writer_close(nw));
        nw = NULL;
      }
    }
  }
  if (err == NULL) {
    /* Everything the old segment was given is written and synced before
     * its memtable can be flushed and the segment retired. No writer
     * touches t->wal while t->rotating is set, so mu is not needed. */
    mica_err *cerr = wal_writer_close(t->wal);
    t->wal = NULL;
    if (cerr != NULL) {
      /* Writers of that segment were already told about this error. */
      LOG_W("tablet %" PRIu64 ": closing WAL segment: %s", t->id,
            err_msg(cerr));
      err_free(cerr);
    }
  }
  pthread_mutex_lock(&t->mu);
  if (err == NULL) {
    t->wal = nw;
    uint64_t old_number = t->wal_number;
    t->wal_number = number;
    t->imms = xrealloc(t->imms, (t->n_imm + 1) * sizeof(*t->imms));
    memtable *old = t->cur->mem;
    mt_ref(old);
    t->imms[t->n_imm++] = (imm_entry){old, old_number, 0, t->active_charged};
    res_mem_freeze(t->res, t->active_charged);
    t->active_charged = 0;
    atomic_store(&t->active_bytes, 0);
    memtable *fresh = mt_new();
    tb_install_version(t, fresh, t->cur->files, t->cur->n_files);
    mt_unref(fresh);
  }
  pthread_mutex_unlock(&t->man_mu);
  t->rotating = false;
  pthread_cond_broadcast(&t->cv);
  free(path);
  if (err == NULL && new_segment) res_job_schedule(t->res, &t->flush_job);
  return err;
}

/* Flushes every immutable memtable, in order. */
mica_err *tb_flush_all_imm(tablet *t) {
  for (;;) {
    bool did;
    mica_err *err = flush_one(t, &did);
    if (err != NULL || !did) return err;
  }
}

/* ------------------------------------------------------------------ */
/* Compaction                                                          */

/* The index of the newest file of `v` that is not the tablet's own (a
 * split parent's or a merge input's, read by reference), or n_files. */
static size_t first_foreign(const version *v) {
  for (size_t i = 0; i < v->n_files; i++)
    if (!v->files[i]->own) return i;
  return v->n_files;
}

bool tb_compaction_due_locked(tablet *t) {
  if (!t->o.auto_compact || t->closing || t->pending) return false;
  version *v = t->cur;
  return v->n_files >= (size_t)t->o.compaction_trigger ||
         first_foreign(v) < v->n_files;
}

/* Picks a run of consecutive (by age) SSTables to merge. A tablet that
 * still reads files by reference (a split daughter, a merged tablet)
 * first merges the run from its newest such file to its oldest file,
 * whatever the count: until it does, the other tablet's directory stays
 * on disk (docs/engine.md, "Daughters compact down to their own files").
 * Otherwise size-tiered: the first run, newest first, of at least
 * `trigger` files each within a factor of two of the run's average size.
 * When the tablet is close to the write stall and no such run exists, the
 * newest `trigger` files. `force` picks everything. Returns the run
 * length (0: nothing). */
static size_t pick_compaction(tablet *t, version *v, bool force,
                              size_t *first) {
  size_t n = v->n_files;
  *first = 0;
  if (force) return n >= 2 || (n == 1 && v->files[0]->restrict_reads) ? n : 0;
  size_t ff = first_foreign(v);
  if (ff < n) {
    *first = ff;
    return n - ff;
  }
  size_t trigger = (size_t)t->o.compaction_trigger;
  if (n < trigger) return 0;
  for (size_t s = 0; s + trigger <= n; s++) {
    uint64_t total = v->files[s]->est_bytes + 1;
    size_t e = s + 1;
    while (e < n && e - s < 32) {
      uint64_t avg = total / (e - s);
      uint64_t sz = v->files[e]->est_bytes + 1;
      if (sz > 2 * avg || 2 * sz < avg) break;
      total += sz;
      e++;
    }
    if (e - s >= trigger) {
      *first = s;
      return e - s;
    }
  }
  if (n + 4 >= (size_t)t->o.stall_sst_count) return trigger;
  return 0;
}

/* Runs one compaction. Sets *did when it merged something. */
mica_err *tb_compact_once(tablet *t, bool force, bool *did) {
  *did = false;
  pthread_mutex_lock(&t->compact_mu);
  version *v = tb_current_version(t, NULL);
  size_t first, len = pick_compaction(t, v, force, &first);
  if (len == 0) {
    tb_version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return NULL;
  }
  bool oldest = first + len == v->n_files;
  pthread_mutex_lock(&t->mu);
  uint64_t number = t->next_file++;
  pthread_mutex_unlock(&t->mu);

  iter **kids = xcalloc(len, sizeof(*kids));
  uint64_t in_bytes = 0;
  bool foreign = false;
  for (size_t i = 0; i < len; i++) {
    tfile *f = v->files[first + i];
    kids[i] = sst_reader_iter_new(f->r, false);
    /* A file shared with other tablets is read only inside its own range:
     * a merged tablet lists one input's file for that input's half only,
     * and the rest of the file may hold older versions of the other
     * half's keys (tablet_merge.h). */
    if (f->restrict_reads)
      kids[i] = tb_rng_iter_new(kids[i], buf_slice(&f->lo), buf_slice(&f->hi),
                                f->has_hi);
    in_bytes += f->size;
    if (!f->own) foreign = true;
  }
  /* Only the tablet's own range is written, so a daughter's compaction
   * never copies its sibling's half of a shared parent file. */
  iter *in = tb_rng_iter_new(merge_iter_new(kids, len, ikey_cmp), t_start(t),
                             t_end(t), t->has_end);
  tfile *out = NULL;
  uint64_t read_bytes = 0;
  mica_err *err = tb_write_sst(t, in, oldest, number, &out, &read_bytes);
  iter_close(in);
  if (err != NULL) {
    tb_version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return err_wrap(err, "tablet %" PRIu64 ": compaction", t->id);
  }

  pthread_mutex_lock(&t->man_mu);
  pthread_mutex_lock(&t->mu);
  /* Flushes may have added newer files in front since the pick; the run
   * is still contiguous and in the same order (only compactions remove
   * files, and they are serialized by compact_mu). */
  version *c = t->cur;
  size_t shift = c->n_files - v->n_files;
  tfile **files = xcalloc(c->n_files + 1, sizeof(*files));
  size_t k = 0;
  for (size_t i = 0; i < first + shift; i++) files[k++] = c->files[i];
  if (out != NULL) files[k++] = out;
  for (size_t i = first + shift + len; i < c->n_files; i++)
    files[k++] = c->files[i];
  man_state m;
  man_copy(&m, &t->man);
  tb_man_set_files(&m, files, k);
  m.last_seq = t->last_seq;
  m.next_file = t->next_file;
  pthread_mutex_unlock(&t->mu);
  err = tb_write_manifest(t, &m);
  if (err != NULL) {
    /* As in flush_one: the output may be listed; leave it to reopen. */
    man_clear(&m);
    free(files);
    tb_tfile_unref(out);
    pthread_mutex_unlock(&t->man_mu);
    tb_version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return err_wrap(err, "tablet %" PRIu64 ": compaction", t->id);
  }
  pthread_mutex_lock(&t->mu);
  man_clear(&t->man);
  t->man = m;
  for (size_t i = 0; i < len; i++)
    atomic_store(&v->files[first + i]->obsolete, true);
  tb_install_version(t, t->cur->mem, files, k);
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&t->man_mu);
  free(files);
  stat_add(&t->st_compactions, 1);
  stat_add(&t->st_cread, in_bytes);
  if (out != NULL) {
    stat_add(&t->st_cwrite, out->size);
    tb_tfile_unref(out);
  }
  tb_version_unref(v); /* the inputs go when the last reader lets go */
  *did = true;
  pthread_mutex_unlock(&t->compact_mu);

  if (foreign) {
    /* This compaction dropped references to a split parent's files: they
     * may now be unreferenced everywhere. */
    uint64_t removed = 0;
    mica_err *gerr = tab_collect_garbage(t->e, t->tablets_dir, &removed);
    if (gerr != NULL) {
      LOG_W("tablet %" PRIu64 ": garbage collection: %s", t->id,
            err_msg(gerr));
      err_free(gerr);
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Background jobs                                                     */

void tb_flush_job_fn(res_job *job) {
  tablet *t = container_of(job, tablet, flush_job);
  mica_err *err = NULL;
  pthread_mutex_lock(&t->mu);
  bool pending = t->pending;
  pthread_mutex_unlock(&t->mu);
  if (pending) {
    /* The pool wants the replayed memtable's memory back: take the
     * tablet over, which flushes it, when the disk has room. */
    atomic_store(&t->flush_requested, false);
    err = res_space_check(t->res, "taking the tablet over");
    if (err == NULL) err = tb_take_over(t);
  } else if (atomic_exchange(&t->flush_requested, false)) {
    pthread_mutex_lock(&t->mu);
    if (!t->closing && !t->rotating && t->failed == NULL &&
        mt_count(t->cur->mem) > 0)
      err = tb_rotate_locked(t, true);
    pthread_mutex_unlock(&t->mu);
  }
  if (err == NULL) err = tb_flush_all_imm(t);
  if (err != NULL) {
    LOG_W("%s", err_msg(err));
    tb_set_bg_error(t, err);
    err_free(err);
  }
}

void tb_compact_job_fn(res_job *job) {
  tablet *t = container_of(job, tablet, compact_job);
  pthread_mutex_lock(&t->mu);
  bool skip = t->closing || t->pending;
  pthread_mutex_unlock(&t->mu);
  if (skip) return;
  /* No compaction starts below the free-space reserve: its output needs
   * room until its inputs are deleted. The next flush schedules it again. */
  mica_err *err = res_space_check(t->res, "compaction");
  if (err != NULL) {
    LOG_I("tablet %" PRIu64 ": %s", t->id, err_msg(err));
    tb_set_bg_error(t, err);
    err_free(err);
    return;
  }
  bool did;
  err = tb_compact_once(t, false, &did);
  if (err != NULL) {
    LOG_W("%s", err_msg(err));
    tb_set_bg_error(t, err);
    err_free(err);
    return;
  }
  if (did) res_job_schedule(t->res, &t->compact_job);
}

size_t tb_member_active_bytes(void *arg) {
  return atomic_load(&((tablet *)arg)->active_bytes);
}

void tb_member_request_flush(void *arg) {
  tablet *t = arg;
  atomic_store(&t->flush_requested, true);
  res_job_schedule(t->res, &t->flush_job);
}
