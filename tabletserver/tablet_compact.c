/* tablet_compact: everything that writes SSTables. A flush writes the
 * oldest immutable memtable into level 0 and retires its WAL segment in
 * one manifest write; a rotation makes the active memtable immutable
 * behind a new segment; a compaction merges the files tablet_level.c
 * picks into new files of the level below; and the background jobs of the
 * server's pool (resources.h) run both. Locks and their order:
 * tablet_int.h. */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/path.h"

/* Finishes the SSTable being built at `path` (named `name`) and opens it
 * into *out. */
static mica_err *finish_sst(tablet *t, sst_builder *b, const char *path,
                            const char *name, tfile **out) {
  mica_err *err = sst_builder_finish(b, NULL);
  if (err == NULL) {
    err = tb_tfile_open(t->e, res_cache(t->res), t->dir, name, 0, t_start(t),
                        t_end(t), t->has_end, out);
    if (err != NULL) err_free(env_remove(t->e, path));
  }
  return err;
}

/* Writes the newest entry of each user key of `in` (a sorted internal-key
 * iterator, positioned by this function) to new SSTables, dropping
 * deletes when `drop_deletes`. The first file is numbered `number` (0: a
 * number taken from t->next_file), later ones take theirs from
 * t->next_file; a new file starts, between two user keys, once one holds
 * `file_bytes` (0: never). Each user key is written once, so files cut
 * anywhere hold disjoint key ranges. The files and their directory entries
 * are durable on return; on error none is left behind. `read_bytes` (may
 * be NULL) gets the bytes of entries read. */
static mica_err *write_ssts(tablet *t, iter *in, bool drop_deletes,
                            uint64_t number, uint64_t file_bytes,
                            tfile ***out, size_t *n_out,
                            uint64_t *read_bytes) {
  *out = NULL;
  *n_out = 0;
  char name[96];
  char *path = NULL;
  sst_builder *b = NULL;
  mica_err *err = NULL;
  buf last = BUF_INIT;
  bool have_last = false;
  uint64_t nread = 0;
  /* tab_set_sst_options may change them while we run: take a copy. */
  pthread_mutex_lock(&t->mu);
  sst_options so = t->o.sst;
  pthread_mutex_unlock(&t->mu);
  for (iter_seek_to_first(in); iter_valid(in); iter_next(in)) {
    slice k = iter_key(in), val = iter_value(in);
    nread += k.len + val.len;
    ikey_parts p;
    if (!ikey_parse(k, &p)) {
      err = err_new(MICA_CORRUPTION,
                    "tablet %" PRIu64 ": malformed internal key while "
                    "writing an SSTable in %s",
                    t->id, t->dir);
      break;
    }
    if (have_last && slice_eq(p.user_key, buf_slice(&last))) continue;
    buf_clear(&last);
    buf_append_slice(&last, p.user_key);
    have_last = true;
    if (p.kind == IKEY_DELETE && drop_deletes) continue;
    if (b != NULL && file_bytes > 0 && sst_builder_file_size(b) >= file_bytes) {
      tfile *f = NULL;
      err = finish_sst(t, b, path, name, &f);
      b = NULL;
      free(path);
      path = NULL;
      if (err != NULL) break;
      *out = xrealloc(*out, (*n_out + 1) * sizeof(**out));
      (*out)[(*n_out)++] = f;
    }
    if (b == NULL) {
      uint64_t num = number;
      number = 0;
      if (num == 0) {
        pthread_mutex_lock(&t->mu);
        num = t->next_file++;
        pthread_mutex_unlock(&t->mu);
      }
      tb_sst_file_name(name, sizeof(name), t->epoch, num);
      path = path_join(t->dir, name);
      err = sst_builder_new(t->e, path, &so, &b);
      if (err != NULL) break;
    }
    err = sst_builder_add(b, k, val);
    if (err != NULL) break;
  }
  if (err == NULL && iter_status(in) != NULL) err = err_dup(iter_status(in));
  buf_free(&last);
  if (read_bytes != NULL) *read_bytes = nread;
  if (err == NULL && b != NULL) {
    tfile *f = NULL;
    err = finish_sst(t, b, path, name, &f);
    b = NULL;
    if (err == NULL) {
      *out = xrealloc(*out, (*n_out + 1) * sizeof(**out));
      (*out)[(*n_out)++] = f;
    }
  }
  /* The files' directory entries must be durable before a manifest that
   * names them can be. */
  if (err == NULL && *n_out > 0) err = env_sync_dir(t->e, t->dir);
  if (err != NULL) {
    sst_builder_abandon(b);
    for (size_t i = 0; i < *n_out; i++) {
      atomic_store(&(*out)[i]->obsolete, true); /* deleted with its handle */
      tb_tfile_unref((*out)[i]);
    }
    free(*out);
    *out = NULL;
    *n_out = 0;
  }
  free(path);
  return err;
}

/* One SSTable numbered `number`; *out is NULL when nothing was left to
 * write. */
mica_err *tb_write_sst(tablet *t, iter *in, bool drop_deletes,
                       uint64_t number, tfile **out,
                       uint64_t *read_bytes) {
  tfile **files;
  size_t n;
  mica_err *err =
      write_ssts(t, in, drop_deletes, number, 0, &files, &n, read_bytes);
  *out = n > 0 ? files[0] : NULL;
  free(files);
  return err;
}

mica_err *tb_write_ssts(tablet *t, iter *in, bool drop_deletes,
                        uint64_t file_bytes, tfile ***out, size_t *n_out,
                        uint64_t *read_bytes) {
  return write_ssts(t, in, drop_deletes, 0, file_bytes, out, n_out,
                    read_bytes);
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
  /* The new file is the newest of level 0. */
  size_t n = t->cur->n_files + 1, k = 0;
  tfile **files = xcalloc(n, sizeof(*files));
  uint8_t *levels = xcalloc(n, 1);
  uint8_t *cur_levels = tb_version_levels(t->cur);
  if (f != NULL) files[k++] = f;
  for (size_t i = 0; i < t->cur->n_files; i++) {
    levels[k] = cur_levels[i];
    files[k++] = t->cur->files[i];
  }
  free(cur_levels);
  man_state m;
  man_copy(&m, &t->man);
  tb_man_set_files(&m, files, levels, k);
  if (t->log != NULL) {
    /* Shared commit log: the SSTables now hold everything up to the
     * victim's last write (older memtables were flushed before it). The
     * last flush of a close or split holds everything: the manifest then
     * names no log, which is what a clean close means (merges and the
     * collection of dead logs rely on it). */
    m.log_flushed_seq = victim.last_seq;
    /* On S3 (one object per group) a replay starts at the oldest
     * object still holding this tablet's unflushed records. */
    if (m.log_epoch == t->epoch && m.log_name.len > 0 &&
        slice_eq(buf_slice(&m.log_name), slice_from_str(clog_name(t->log))))
      m.log_first_segment = clog_replay_floor(t->log, t->id, t->epoch,
                                              victim.last_seq,
                                              m.log_first_segment);
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
    free(levels);
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
  tb_install_version(t, t->cur->mem, files, levels, k);
  pthread_mutex_unlock(&t->mu);
  free(files);
  free(levels);
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
    tb_install_memtable(t, fresh);
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
    tb_install_memtable(t, fresh);
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

bool tb_compaction_due_locked(tablet *t) {
  if (!t->o.auto_compact || t->closing || t->pending) return false;
  return tb_compaction_score(t, t->cur) >= 1 ||
         tb_version_has_foreign(t->cur) || tb_version_read_due(t->cur);
}

/* Merges the inputs of `p` into new files (for the tablet's own range
 * only, so a daughter's compaction never copies its sibling's half of a
 * shared parent file). */
static mica_err *merge_inputs(tablet *t, const tb_pick *p, tfile ***out,
                              size_t *n_out) {
  iter **kids = xcalloc(p->n_in + 1, sizeof(*kids));
  for (size_t i = 0; i < p->n_in; i++) {
    tfile *f = p->in[i];
    kids[i] = sst_reader_iter_new(f->r, false);
    /* A file shared with other tablets is read only inside its own range:
     * a merged tablet lists one input's file for that input's half only,
     * and the rest of the file may hold older versions of the other
     * half's keys (tablet_merge.h). */
    if (f->restrict_reads)
      kids[i] = tb_rng_iter_new(kids[i], buf_slice(&f->lo), buf_slice(&f->hi),
                                f->has_hi);
  }
  iter *in = tb_rng_iter_new(merge_iter_new(kids, p->n_in, ikey_cmp),
                             t_start(t), t_end(t), t->has_end);
  pthread_mutex_lock(&t->mu);
  uint64_t file_bytes = tb_file_target(&t->o);
  pthread_mutex_unlock(&t->mu);
  mica_err *err =
      tb_write_ssts(t, in, p->drop_deletes, file_bytes, out, n_out, NULL);
  iter_close(in);
  return err;
}

/* Runs one compaction (tablet_level.c picks it). Sets *did when it
 * changed the file set. */
mica_err *tb_compact_once(tablet *t, bool force, bool *did) {
  *did = false;
  pthread_mutex_lock(&t->compact_mu);
  version *v = tb_current_version(t, NULL);
  tb_pick p;
  if (!tb_pick_compaction(t, v, force, &p)) {
    tb_version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return NULL;
  }
  uint64_t in_bytes = 0;
  for (size_t i = 0; i < p.n_in && !p.move; i++) in_bytes += p.in[i]->size;
  tfile **out = NULL;
  size_t n_out = 0;
  mica_err *err = p.move ? NULL : merge_inputs(t, &p, &out, &n_out);
  if (err != NULL) {
    free(p.in);
    tb_version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return err_wrap(err, "tablet %" PRIu64 ": compaction", t->id);
  }

  pthread_mutex_lock(&t->man_mu);
  pthread_mutex_lock(&t->mu);
  /* Flushes may have added level-0 files since the pick; nothing else
   * changed (compactions are serialized by compact_mu). The new file set
   * is checked before anything depends on it. */
  tfile **files;
  uint8_t *levels;
  size_t k = tb_apply_compaction(t->cur, &p, out, n_out, &files, &levels);
  version *nv = tb_version_new(t->cur->mem, NULL, 0, files, levels, k);
  err = tb_check_levels(t, nv);
  tb_version_unref(nv);
  man_state m;
  man_init(&m);
  if (err == NULL) {
    man_copy(&m, &t->man);
    tb_man_set_files(&m, files, levels, k);
    m.last_seq = t->last_seq;
    m.next_file = t->next_file;
  }
  pthread_mutex_unlock(&t->mu);
  if (err != NULL) {
    /* Never listed anywhere: delete the outputs. */
    for (size_t i = 0; i < n_out; i++) atomic_store(&out[i]->obsolete, true);
  } else {
    err = tb_write_manifest(t, &m);
  }
  if (err != NULL) {
    /* After a failed manifest write the outputs may be listed; leave them
     * to the next open, which deletes what no manifest lists. */
    man_clear(&m);
    free(files);
    free(levels);
    for (size_t i = 0; i < n_out; i++) tb_tfile_unref(out[i]);
    free(out);
    free(p.in);
    pthread_mutex_unlock(&t->man_mu);
    tb_version_unref(v);
    pthread_mutex_unlock(&t->compact_mu);
    return err_wrap(err, "tablet %" PRIu64 ": compaction", t->id);
  }
  pthread_mutex_lock(&t->mu);
  man_clear(&t->man);
  t->man = m;
  if (!p.move)
    for (size_t i = 0; i < p.n_in; i++) atomic_store(&p.in[i]->obsolete, true);
  tb_install_version(t, t->cur->mem, files, levels, k);
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&t->man_mu);
  free(files);
  free(levels);
  stat_add(&t->st_compactions, 1);
  stat_add(&t->st_cread, in_bytes);
  for (size_t i = 0; i < n_out; i++) {
    stat_add(&t->st_cwrite, out[i]->size);
    tb_tfile_unref(out[i]); /* the version holds it now */
  }
  free(out);
  bool foreign = p.foreign && !p.move;
  free(p.in);
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
