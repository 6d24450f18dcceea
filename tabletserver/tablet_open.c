/* tablet_open: opening a tablet, which is also its recovery. tab_open
 * reads the MANIFEST (finishing an interrupted split, refusing a retired
 * or newer-epoch tablet), opens the SSTables, replays the live WAL
 * segments and deletes what a crash or a fenced owner left behind; from
 * then on it serves reads, having written nothing. Taking the tablet over
 * (tb_take_over) flushes the replayed writes to its own SSTable and
 * starts its own segment, all made durable by one manifest write that
 * also retires the old segments; it runs at once when the disk has room,
 * else when a write, flush or close needs it (the epoch argument is in
 * tablet.h and docs/engine.md). Also the inverse: freeing a tablet.
 * Locks: tablet_int.h. */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/path.h"

static mica_err *check_options(const tab_options *o) {
  if (o->memtable_bytes < 1024)
    return err_new(MICA_INVALID_ARGUMENT, "tablet: memtable_bytes %zu < 1024",
                   o->memtable_bytes);
  if (o->max_immutable < 1 || o->max_immutable > 64)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: max_immutable %d not in 1..64", o->max_immutable);
  if (o->compaction_trigger < 2 || o->compaction_trigger > 64)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: compaction_trigger %d not in 2..64",
                   o->compaction_trigger);
  if (o->stall_sst_count <= o->compaction_trigger)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: stall_sst_count %d must exceed compaction_trigger",
                   o->stall_sst_count);
  if (o->max_key < 1 || o->max_value < 1 || o->max_batch < 1)
    return err_new(MICA_INVALID_ARGUMENT, "tablet: limits must be positive");
  return NULL;
}


typedef struct replay_ctx {
  memtable *mem;
  wbatch *b;
  const char *path;
  uint64_t max_seq;
} replay_ctx;

static mica_err *replay_record(void *arg, slice payload, uint64_t offset) {
  replay_ctx *c = arg;
  mica_err *err = wbatch_decode(c->b, payload);
  if (err != NULL)
    return err_wrap(err, "WAL %s: record at offset %" PRIu64, c->path, offset);
  uint64_t seq = wbatch_seq(c->b), n = wbatch_count(c->b);
  if (n == 0) return NULL;
  if (seq == 0 || seq + n - 1 > IKEY_MAX_SEQ)
    return err_new(MICA_CORRUPTION,
                   "WAL %s: record at offset %" PRIu64
                   ": sequence %" PRIu64 " out of range",
                   c->path, offset, seq);
  mt_apply_batch(c->mem, c->b);
  if (seq + n - 1 > c->max_seq) c->max_seq = seq + n - 1;
  return NULL;
}

/* Deletes what a crash or a fenced owner may have left in the tablet's
 * own directory: SSTables and WAL segments the manifest does not list,
 * and temporary manifests. Runs before the tablet writes anything. */
static void clean_own_dir(tablet *t) {
  char **names;
  size_t n;
  mica_err *err = env_list(t->e, t->dir, &names, &n);
  if (err != NULL) {
    LOG_W("tablet %" PRIu64 ": listing %s: %s", t->id, t->dir, err_msg(err));
    err_free(err);
    return;
  }
  /* Files a snapshot pinned are the collector's to delete, not ours. */
  char **shared = NULL;
  size_t n_shared = 0;
  err = tb_shared_read(t->e, t->dir, &shared, &n_shared);
  if (err != NULL) {
    LOG_W("tablet %" PRIu64 ": %s; no cleanup", t->id, err_msg(err));
    err_free(err);
    env_free_names(names, n);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const char *name = names[i];
    bool keep = true;
    uint64_t ep, num;
    if (tb_is_sst_name(name)) {
      keep = false;
      for (size_t j = 0; j < t->man.n_ssts && !keep; j++)
        keep = strcmp(t->man.ssts[j].path, name) == 0;
      if (!keep) keep = tb_names_has(shared, n_shared, name);
    } else if (wal_parse_segment_name(name, &ep, &num)) {
      keep = false;
      for (size_t j = 0; j < t->man.n_live && !keep; j++)
        keep = t->man.live[j].epoch == ep && t->man.live[j].number == num;
    } else if (strncmp(name, MAN_FILE_NAME, strlen(MAN_FILE_NAME)) == 0 &&
               strstr(name, ".tmp.") != NULL) {
      keep = false;
    }
    if (!keep) {
      char *p = path_join(t->dir, name);
      mica_err *rm = env_remove(t->e, p);
      if (rm == NULL) LOG_I("tablet %" PRIu64 ": removed unreferenced %s", t->id, p);
      err_free(rm);
      free(p);
    }
  }
  env_free_names(names, n);
  tb_names_free(shared, n_shared);
}

void tb_free(tablet *t) {
  if (t == NULL) return;
  if (t->log_registered) clog_unregister(t->log, t->id, t);
  tb_version_unref(t->cur);
  for (size_t i = 0; i < t->n_imm; i++) mt_unref(t->imms[i].mem);
  free(t->imms);
  err_free(wal_writer_close(t->wal));
  man_clear(&t->man);
  err_free(t->failed);
  err_free(t->bg_error);
  buf_free(&t->start);
  for (int l = 0; l < TB_LEVELS; l++) buf_free(&t->compact_ptr[l]);
  buf_free(&t->end);
  free(t->dir);
  free(t->tablets_dir);
  free(t->dir_name);
  pthread_mutex_destroy(&t->flush_mu);
  pthread_mutex_destroy(&t->compact_mu);
  pthread_mutex_destroy(&t->man_mu);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
}

/* Returns memory charged to the budget and drops the tablet without
 * flushing (after a failure, or once everything was flushed). */
void tb_release(tablet *t) {
  if (t->member_added) {
    res_member_remove(t->res, &t->member);
    t->member_added = false;
  }
  res_job_cancel(t->res, &t->flush_job);
  res_job_cancel(t->res, &t->compact_job);
  tb_charge_memory(t, -(int64_t)t->active_charged);
  t->active_charged = 0;
  for (size_t i = 0; i < t->n_imm; i++) {
    res_mem_release(t->res, t->imms[i].charged);
    t->imms[i].charged = 0;
  }
  tb_free(t);
}

static bool same_range(const man_state *m, slice start, slice end) {
  if (!slice_eq(buf_slice(&m->start_key), start)) return false;
  if (m->has_end != (end.len > 0)) return false;
  return !m->has_end || slice_eq(buf_slice(&m->end_key), end);
}

/* The arguments of tab_open, before anything is read. */
static mica_err *check_open_args(const tab_options *opts, uint64_t tablet_id,
                                 slice start, slice end,
                                 uint64_t assign_epoch) {
  mica_err *err = check_options(opts);
  if (err != NULL) return err;
  if (tablet_id == 0)
    return err_new(MICA_INVALID_ARGUMENT, "tablet: id 0 is reserved");
  if (assign_epoch == 0)
    return err_new(MICA_INVALID_ARGUMENT, "tablet %" PRIu64 ": epoch 0",
                   tablet_id);
  if (end.len > 0 && slice_cmp(start, end) >= 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet %" PRIu64 ": start key not below end key",
                   tablet_id);
  return NULL;
}

/* The in-memory tablet, nothing read yet. Caller frees with tb_free(). */
static tablet *tablet_new(res_pool *res, const char *dir, uint64_t tablet_id,
                          slice start, slice end, uint64_t assign_epoch,
                          const tab_options *opts) {
  tablet *t = xcalloc(1, sizeof(*t));
  t->res = res;
  t->e = res_env(res);
  t->dir = xstrdup(dir);
  path_split(dir, &t->tablets_dir, &t->dir_name);
  t->id = tablet_id;
  t->epoch = assign_epoch;
  t->o = *opts;
  t->log = opts->log;
  buf_append_slice(&t->start, start);
  if (end.len > 0) buf_append_slice(&t->end, end);
  t->has_end = end.len > 0;
  pthread_mutex_init(&t->flush_mu, NULL);
  pthread_mutex_init(&t->compact_mu, NULL);
  pthread_mutex_init(&t->man_mu, NULL);
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  atomic_init(&t->flush_requested, false);
  atomic_init(&t->active_bytes, 0);
  res_job_init(&t->flush_job, tb_flush_job_fn, RES_PRIO_HIGH);
  res_job_init(&t->compact_job, tb_compact_job_fn, RES_PRIO_LOW);
  man_init(&t->man);
  return t;
}

/* Reads the MANIFEST into t->man or, when there is none and the options
 * allow it, creates the tablet's directory and starts an empty one. */
static mica_err *read_or_create_manifest(tablet *t, slice start, slice end) {
  mica_err *err = man_read(t->e, t->dir, &t->man);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    if (!t->o.create_if_missing) {
      mica_err *w = err_new(
          MICA_NOT_FOUND,
          "tablet %" PRIu64 ": no MANIFEST in %s (a daughter of an interrupted "
          "split appears once its parent is reopened)",
          t->id, t->dir);
      err_free(err);
      return w;
    }
    err_free(err);
    err = env_mkdirs(t->e, t->dir);
    if (err == NULL) err = env_sync_dir(t->e, t->tablets_dir);
    if (err != NULL) return err;
    man_clear(&t->man);
    t->man.tablet_id = t->id;
    t->man.epoch = t->epoch;
    t->man.next_file = 1;
    buf_append_slice(&t->man.start_key, start);
    buf_append_slice(&t->man.end_key, end);
    t->man.has_end = end.len > 0;
    return NULL;
  }
  if (err != NULL) return err_wrap(err, "open tablet %" PRIu64, t->id);
  return NULL;
}

/* Whether the manifest lets this owner serve the tablet: the right id and
 * range, no newer epoch, not retired. A split that was decided but not
 * finished is finished here (so its daughters can open), and the tablet
 * then answers NOT_SERVING like a split one. */
static mica_err *check_manifest(tablet *t, slice start, slice end) {
  man_state *m = &t->man;
  if (m->tablet_id != t->id)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet %" PRIu64 ": %s/MANIFEST belongs to tablet %" PRIu64,
                   t->id, t->dir, m->tablet_id);
  if (m->epoch > t->epoch)
    return err_new(MICA_STALE_EPOCH,
                   "tablet %" PRIu64 ": opened with assign_epoch %" PRIu64
                   " but epoch %" PRIu64 " already owns it",
                   t->id, t->epoch, m->epoch);
  if (!same_range(m, start, end))
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet %" PRIu64 ": key range differs from its MANIFEST",
                   t->id);
  if (m->state == MAN_SPLITTING) {
    /* The split was decided; finish it so the daughters can open. */
    m->epoch = t->epoch;
    mica_err *err = tb_write_daughters(t->e, t->dir, m);
    if (err == NULL) {
      m->state = MAN_SPLIT;
      err = man_write(t->e, t->dir, m);
    }
    return err != NULL ? err : tb_split_done_error(m);
  }
  if (m->state == MAN_SPLIT) return tb_split_done_error(m);
  if (m->state == MAN_MERGED)
    return err_new(MICA_NOT_SERVING,
                   "tablet %" PRIu64 " was merged into %" PRIu64, m->tablet_id,
                   m->left_id);
  if (m->state == MAN_DROPPED)
    return err_new(MICA_NOT_SERVING, "tablet %" PRIu64 ": its table was "
                   "dropped", m->tablet_id);
  return NULL;
}

/* Opens every SSTable the manifest lists, newest first, into `files`
 * (which has room for them), raising *max_seq to the largest sequence
 * number they hold. */
static mica_err *open_ssts(tablet *t, tfile **files, uint64_t *max_seq) {
  const man_state *m = &t->man;
  char **shared = NULL;
  size_t n_shared = 0;
  mica_err *serr = tb_shared_read(t->e, t->dir, &shared, &n_shared);
  if (serr != NULL) return serr;
  for (size_t i = 0; i < m->n_ssts; i++) {
    const man_sst *s = &m->ssts[i];
    mica_err *err = tb_tfile_open(t->e, res_cache(t->res), t->dir, s->path,
                                  s->size, buf_slice(&s->lo),
                                  buf_slice(&s->hi), s->has_hi, &files[i]);
    if (err != NULL) {
      tb_names_free(shared, n_shared);
      return err;
    }
    if (files[i]->own && tb_names_has(shared, n_shared, s->path))
      atomic_store(&files[i]->pinned, true);
    uint64_t ls = sst_reader_properties(files[i]->r)->largest_seq;
    if (ls > *max_seq) *max_seq = ls;
  }
  tb_names_free(shared, n_shared);
  return NULL;
}

static mica_err *replay_log_record(void *arg, slice batch, const char *path,
                                   uint64_t offset) {
  replay_ctx *c = arg;
  c->path = path;
  return replay_record(c, batch, offset);
}

/* Replays the tablet's records from the server commit log its manifest
 * names (clog.h: only this tablet's, under the epoch named, above the
 * flushed sequence number) into `mem`, raising *max_seq. The log lives
 * in <data-root>/logs next to <data-root>/tablets. */
static mica_err *replay_log(tablet *t, memtable *mem, wbatch *b,
                            uint64_t *max_seq) {
  const man_state *m = &t->man;
  char *root = clog_logs_root(t->tablets_dir);
  char *name = xmemdup(m->log_name.data, m->log_name.len + 1);
  name[m->log_name.len] = '\0';
  char *dir = clog_dir_path(root, name);
  replay_ctx c = {mem, b, dir, 0};
  clog_replay_stats st;
  uint64_t t0 = env_now_micros(t->e);
  mica_err *err = clog_replay(t->e, dir, t->id, m->log_epoch,
                              m->log_first_segment, m->log_flushed_seq,
                              replay_log_record, &c, &st);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    /* A log is deleted only once no manifest names it
     * (clog_collect_dead): missing, it was lost (a POSIX --wal-dir on a
     * machine that is gone), and the writes only it held with it. */
    bool accepted = false;
    for (const char *const *a = t->o.accept_lost_logs; a && *a && !accepted;
         a++)
      accepted = strcmp(*a, name) == 0;
    if (accepted) {
      LOG_E("tablet %" PRIu64 ": commit log %s named in the manifest of %s "
            "is missing; ACCEPTING THE LOSS of every write of this tablet "
            "that was only in it (epoch %" PRIu64 ", sequence numbers above "
            "%" PRIu64 "), as --accept-lost-commit-log %s asked: %s",
            t->id, dir, t->dir, m->log_epoch, m->log_flushed_seq, name,
            err_msg(err));
      t->lost_log_accepted = true;
      err_free(err);
      err = NULL;
    } else {
      mica_err *w = err_new(MICA_CORRUPTION,
                            "commit log %s named in the manifest of %s is "
                            "missing (if it is lost for good, "
                            "--accept-lost-commit-log %s opens the tablet "
                            "without the writes only it held; "
                            "docs/storage.md)",
                            dir, t->dir, name);
      err_free(err);
      err = w;
    }
  }
  if (c.max_seq > *max_seq) *max_seq = c.max_seq;
  t->replayed_records += st.records;
  t->dropped_bytes += st.dropped;
  if (err == NULL)
    LOG_I("tablet %" PRIu64 ": replayed %" PRIu64 " records from commit log "
          "%s (%" PRIu64 " segments read, %" PRIu64 " of them shared with "
          "concurrent replays, %" PRIu64 " skipped by index, %" PRIu64
          " records seen) in %" PRIu64 " us",
          t->id, st.records, name, st.segments_read, st.objects_shared,
          st.segments_skipped, st.records_seen, env_now_micros(t->e) - t0);
  free(dir);
  free(name);
  free(root);
  return err;
}

/* Replays every live WAL segment into `mem`, raising *max_seq. A torn
 * tail is dropped (and logged); damage before the tail is CORRUPTION, and
 * so is a listed segment that is missing. */
static mica_err *replay_wal(tablet *t, memtable *mem, uint64_t *max_seq) {
  const man_state *m = &t->man;
  wbatch *b = wbatch_new();
  mica_err *err = NULL;
  for (size_t i = 0; i < m->n_live && err == NULL; i++) {
    char name[96];
    wal_segment_name(name, sizeof(name), m->live[i].epoch, m->live[i].number);
    char *path = path_join(t->dir, name);
    replay_ctx c = {mem, b, path, 0};
    wal_replay_stats st;
    memset(&st, 0, sizeof(st));
    err = wal_replay(t->e, path, replay_record, &c, &st);
    if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
      mica_err *w = err_new(MICA_CORRUPTION,
                            "WAL segment %s listed in %s/MANIFEST is missing",
                            path, t->dir);
      err_free(err);
      err = w;
    }
    if (c.max_seq > *max_seq) *max_seq = c.max_seq;
    t->replayed_records += st.records;
    t->dropped_bytes += st.dropped;
    if (err == NULL && st.dropped > 0)
      LOG_W("tablet %" PRIu64 ": %s: ignored a torn tail of %" PRIu64
            " bytes at offset %" PRIu64,
            t->id, path, st.dropped, st.valid_end);
    free(path);
  }
  if (err == NULL && m->log_name.len > 0) err = replay_log(t, mem, b, max_seq);
  wbatch_free(b);
  return err;
}

/* Starts this owner's own WAL segment numbered `seg` (into *wal), then one
 * manifest write that lists it, lists `files` and retires every older
 * segment. The new manifest is left in `nm` (initialized by the caller).
 * Caller holds man_mu. */
static mica_err *start_own_segment(tablet *t, tfile **files,
                                   const uint8_t *levels, size_t nf,
                                   uint64_t max_seq, uint64_t seg,
                                   uint64_t next_file, man_state *nm,
                                   wal_writer **wal) {
  const man_state *m = &t->man;
  if (t->log == NULL) {
    char name[96];
    wal_segment_name(name, sizeof(name), t->epoch, seg);
    char *segpath = path_join(t->dir, name);
    mica_err *err = wal_writer_open(t->e, segpath, t->epoch, seg, wal);
    free(segpath);
    if (err != NULL) return err;
  }
  man_copy(nm, m);
  tb_man_set_files(nm, files, levels, nf);
  for (size_t i = 0; i < m->n_live; i++)
    man_add_retired(nm, m->live[i].epoch, m->live[i].number);
  nm->n_live = 0;
  if (t->log == NULL) {
    man_add_live(nm, t->epoch, seg);
    man_set_log(nm, slice_make(NULL, 0), 0, 0, 0);
  } else {
    /* From now on this tablet's writes are in this server's log, under
     * this epoch: no one reads the previous owners' logs for it again.
     * clog_anchor renews an S3 log's marker first if it is old, so the
     * collector never removes the marker of a log named here. */
    uint64_t first = 0;
    mica_err *err = clog_anchor(t->log, &first);
    if (err != NULL) {
      man_clear(nm);
      man_init(nm);
      return err;
    }
    man_set_log(nm, slice_from_str(clog_name(t->log)), t->epoch, first,
                max_seq);
  }
  nm->last_seq = max_seq;
  nm->next_file = next_file;
  nm->state = MAN_LIVE;
  return tb_write_manifest(t, nm);
}

/* The retired segments are no longer read by anyone: deletes them and
 * forgets those that are gone. Caller holds man_mu. */
static void delete_retired_segments(tablet *t) {
  pthread_mutex_lock(&t->mu);
  man_state rm_set;
  man_copy(&rm_set, &t->man);
  pthread_mutex_unlock(&t->mu);
  for (size_t i = 0; i < rm_set.n_retired; i++) {
    char name[96];
    wal_segment_name(name, sizeof(name), rm_set.retired[i].epoch,
                     rm_set.retired[i].number);
    char *p = path_join(t->dir, name);
    mica_err *rm = env_remove(t->e, p);
    if (rm == NULL || err_code(rm) == MICA_NOT_FOUND) {
      pthread_mutex_lock(&t->mu);
      man_state *cm = &t->man;
      for (size_t j = 0; j < cm->n_retired; j++) {
        if (cm->retired[j].epoch == rm_set.retired[i].epoch &&
            cm->retired[j].number == rm_set.retired[i].number) {
          cm->retired[j] = cm->retired[--cm->n_retired];
          break;
        }
      }
      pthread_mutex_unlock(&t->mu);
    }
    err_free(rm);
    free(p);
  }
  man_clear(&rm_set);
}

mica_err *tb_take_over(tablet *t) {
  pthread_mutex_lock(&t->flush_mu);
  pthread_mutex_lock(&t->mu);
  if (!t->pending) {
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&t->flush_mu);
    return NULL;
  }
  if (t->failed != NULL) {
    mica_err *f = err_dup(t->failed);
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&t->flush_mu);
    return f;
  }
  /* Nothing else changes the version or allocates file numbers while
   * the tablet is pending (no writes, rotations, flushes of immutable
   * memtables or compactions), so this snapshot stays the current one. */
  memtable *replayed = t->cur->mem;
  mt_ref(replayed);
  size_t nf = t->cur->n_files;
  tfile **files = xcalloc(nf + 2, sizeof(*files));
  uint8_t *levels = xcalloc(nf + 2, 1);
  uint8_t *cur_levels = tb_version_levels(t->cur);
  for (size_t i = 0; i < nf; i++) {
    files[i] = t->cur->files[i];
    levels[i] = cur_levels[i];
    tb_tfile_ref(files[i]);
  }
  free(cur_levels);
  uint64_t sst_number = t->next_file++;
  uint64_t seg = t->next_file++;
  uint64_t next_file = t->next_file;
  uint64_t max_seq = t->last_seq;
  pthread_mutex_unlock(&t->mu);

  /* The replayed writes, in this owner's own SSTable. */
  tfile *flushed = NULL;
  mica_err *err = NULL;
  if (mt_count(replayed) > 0) {
    iter *in = mt_iter_new(replayed);
    err = tb_write_sst(t, in, false, sst_number, &flushed, NULL);
    iter_close(in);
  }
  mt_unref(replayed);
  if (flushed != NULL) {
    memmove(&files[1], &files[0], nf * sizeof(*files));
    memmove(&levels[1], &levels[0], nf);
    files[0] = flushed; /* the newest of level 0 */
    levels[0] = 0;
    nf++;
  }

  /* This owner's own segment, and the one manifest write that makes all
   * of it the tablet's state. */
  man_state nm;
  man_init(&nm);
  wal_writer *wal = NULL;
  pthread_mutex_lock(&t->man_mu);
  if (err == NULL)
    err = start_own_segment(t, files, levels, nf, max_seq, seg, next_file,
                            &nm, &wal);
  if (err != NULL) {
    /* The new files stay: the manifest write may have happened, and the
     * next open deletes whatever no manifest lists. */
    pthread_mutex_unlock(&t->man_mu);
    man_clear(&nm);
    err_free(wal_writer_close(wal));
    for (size_t i = 0; i < nf; i++) tb_tfile_unref(files[i]);
    free(files);
    free(levels);
    pthread_mutex_unlock(&t->flush_mu);
    return err_wrap(err, "tablet %" PRIu64 ": taking over", t->id);
  }
  pthread_mutex_lock(&t->mu);
  man_clear(&t->man);
  t->man = nm;
  t->wal = wal;
  t->wal_number = t->log == NULL ? seg : 0;
  t->pending = false;
  memtable *fresh = mt_new();
  tb_install_version(t, fresh, files, levels, nf);
  mt_unref(fresh);
  size_t charged = t->active_charged;
  t->active_charged = 0;
  atomic_store(&t->active_bytes, 0);
  bool compact = tb_compaction_due_locked(t);
  pthread_mutex_unlock(&t->mu);
  for (size_t i = 0; i < nf; i++) tb_tfile_unref(files[i]);
  free(files);
  free(levels);
  delete_retired_segments(t);
  if (t->log != NULL) {
    /* Earlier records of this tablet in this very log (a reopen in the
     * same process) are all in the SSTables now. */
    clog_flushed(t->log, t->id, max_seq);
    clog_register(t->log, t->id, tb_member_request_flush, t);
    t->log_registered = true;
  }
  pthread_mutex_unlock(&t->man_mu);
  pthread_mutex_unlock(&t->flush_mu);
  tb_charge_memory(t, -(int64_t)charged);
  if (flushed != NULL) {
    stat_add(&t->st_flushes, 1);
    stat_add(&t->st_flush_bytes, flushed->size);
  }
  if (compact) res_job_schedule(t->res, &t->compact_job);
  return NULL;
}

/* Installs the first version (the replayed memtable and `files`, whose
 * references it takes over), pending (see tablet_int.h), and joins the
 * server's pool. The replayed memtable counts as the active one against
 * the memory budget, so that the pool's flush requests reach it. */
static void start_serving(tablet *t, memtable *replayed, tfile **files,
                          const uint8_t *levels, size_t nf) {
  t->cur = tb_version_new(replayed, NULL, 0, files, levels, nf);
  mt_unref(replayed);
  for (size_t i = 0; i < nf; i++) tb_tfile_unref(files[i]);
  t->pending = true;
  if (mt_count(replayed) > 0) {
    t->active_charged = mt_memory_usage(replayed);
    atomic_store(&t->active_bytes, t->active_charged);
    tb_charge_memory(t, (int64_t)t->active_charged);
  }

  t->member.active_bytes = tb_member_active_bytes;
  t->member.request_flush = tb_member_request_flush;
  t->member.arg = t;
  res_member_add(t->res, &t->member);
  t->member_added = true;
}

/* Whether t->man is still the manifest on disk. A replay from a commit
 * log relies on it: the log's server deletes a segment only after a
 * manifest write says the tablet flushed past it, so if the manifest
 * did not change while we replayed, no segment we needed was deleted
 * under us (a fenced owner may still be flushing). */
static mica_err *manifest_unchanged(tablet *t, bool *same) {
  man_state disk;
  man_init(&disk);
  mica_err *err = man_read(t->e, t->dir, &disk);
  if (err == NULL) {
    buf a = BUF_INIT, b = BUF_INIT;
    man_encode(&t->man, &a);
    man_encode(&disk, &b);
    *same = slice_eq(buf_slice(&a), buf_slice(&b));
    buf_free(&a);
    buf_free(&b);
  }
  man_clear(&disk);
  return err;
}

static mica_err *open_attempt(res_pool *res, const char *dir,
                              uint64_t tablet_id, slice start, slice end,
                              uint64_t assign_epoch, const tab_options *opts,
                              bool *changed, tablet **out);

mica_err *tab_open(res_pool *res, const char *dir, uint64_t tablet_id,
                   slice start, slice end, uint64_t assign_epoch,
                   const tab_options *opts, tablet **out) {
  *out = NULL;
  tab_options def;
  if (opts == NULL) {
    tab_options_init(&def);
    opts = &def;
  }
  mica_err *err = check_open_args(opts, tablet_id, start, end, assign_epoch);
  if (err != NULL) return err;
  for (int attempt = 0;; attempt++) {
    bool changed = false;
    err = open_attempt(res, dir, tablet_id, start, end, assign_epoch, opts,
                       &changed, out);
    if (err != NULL || !changed) return err;
    if (attempt == 4)
      return err_new(MICA_UNAVAILABLE,
                     "open tablet %" PRIu64 ": its MANIFEST kept changing "
                     "while its commit log was replayed (another owner is "
                     "still writing it)",
                     tablet_id);
    LOG_W("tablet %" PRIu64 ": MANIFEST changed during the commit log "
          "replay; replaying again", tablet_id);
  }
}

static mica_err *open_attempt(res_pool *res, const char *dir,
                              uint64_t tablet_id, slice start, slice end,
                              uint64_t assign_epoch, const tab_options *opts,
                              bool *changed, tablet **out) {
  mica_err *err = NULL;
  tablet *t = tablet_new(res, dir, tablet_id, start, end, assign_epoch, opts);
  err = read_or_create_manifest(t, start, end);
  if (err == NULL) err = check_manifest(t, start, end);
  if (err != NULL) {
    tb_free(t);
    return err;
  }

  /* What the previous owners left: SSTables and WAL. */
  size_t nf = t->man.n_ssts;
  tfile **files = xcalloc(nf + 2, sizeof(*files));
  uint64_t max_seq = t->man.last_seq;
  memtable *replayed = mt_new();
  uint8_t *levels = tb_man_levels(&t->man);
  err = open_ssts(t, files, &max_seq);
  if (err == NULL) err = tb_check_file_levels(t, files, levels, nf);
  if (err == NULL) err = replay_wal(t, replayed, &max_seq);
  if ((err == NULL || err_code(err) == MICA_ABORTED) &&
      t->man.log_name.len > 0) {
    /* ABORTED: a segment or object listed by the replay was gone when
     * read. That is its writer's deletion after a manifest write (then
     * the manifest changed: start again) or else damage. */
    mica_err *rerr = err;
    bool same = false;
    err = manifest_unchanged(t, &same);
    if (err == NULL && same && rerr != NULL) {
      err = err_new(MICA_CORRUPTION, "%s (and the MANIFEST did not change)",
                    err_msg(rerr));
      err_free(rerr);
      rerr = NULL;
    }
    err_free(rerr);
    if (err == NULL && !same) {
      *changed = true;
      for (size_t i = 0; i < nf; i++) tb_tfile_unref(files[i]);
      free(files);
      free(levels);
      mt_unref(replayed);
      tb_free(t);
      return NULL;
    }
  }
  if (err != NULL) {
    for (size_t i = 0; i < nf; i++) tb_tfile_unref(files[i]);
    free(files);
    free(levels);
    mt_unref(replayed);
    tb_free(t);
    return err_wrap(err, "open tablet %" PRIu64, tablet_id);
  }

  t->last_seq = t->visible_seq = max_seq;
  t->next_file = t->man.epoch == assign_epoch
                     ? (t->man.next_file ? t->man.next_file : 1)
                     : 1;
  clean_own_dir(t);

  /* Serve reads first: everything the previous owners acknowledged is in
   * `files` and the replayed memtable, and nothing has been written. */
  start_serving(t, replayed, files, levels, nf);
  free(files);
  free(levels);

  /* Then take the tablet over, unless the disk is short of space: then the
   * tablet serves reads and the first write after space returns (or a
   * flush, or close) takes it over. */
  err = res_space_check(t->res, "writes");
  if (err == NULL) err = tb_take_over(t);
  if (err != NULL && err_code(err) == MICA_RESOURCE_EXHAUSTED) {
    LOG_W("tablet %" PRIu64 ": serving reads only, writes wait for space: %s",
          tablet_id, err_msg(err));
    err_free(err);
    err = NULL;
  }
  if (err != NULL) {
    tb_release(t);
    return err_wrap(err, "open tablet %" PRIu64, tablet_id);
  }
  *out = t;
  return NULL;
}
