/* tablet: the public calls of one tablet's storage engine (tablet.h):
 * options, the write path (writers queue, a leader commits the group to
 * the WAL and the memtable, stalls bound the backlog), reads at
 * snapshots, flush and compaction on request, information and close. The
 * shared structures, the locks and their order are in tablet_int.h, which
 * also lists the files holding the other concerns. */
#include "tabletserver/tablet_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/layout.h"
#include "common/log.h"

void tab_dir_path(const char *tablets_dir, uint64_t tablet_id, buf *out) {
  layout_tablet_dir(tablets_dir, tablet_id, out);
}

/* Waits on t->cv until `deadline` (env clock) at most, in slices of 10 ms
 * because the condition variable runs on the wall clock. Caller holds mu.
 * Returns false once the deadline has passed. */
static bool wait_until(tablet *t, uint64_t deadline) {
  uint64_t now = env_now_micros(t->e);
  if (now >= deadline) return false;
  uint64_t wait = deadline - now;
  if (wait > 10000) wait = 10000;
  uint64_t at = env_wall_micros(t->e) + wait;
  struct timespec ts = {(time_t)(at / 1000000), (long)(at % 1000000) * 1000};
  pthread_cond_timedwait(&t->cv, &t->mu, &ts);
  return true;
}

/* Makes the tablet refuse writes from now on. Caller holds mu; takes
 * ownership of `err`. */
void tb_fail_locked(tablet *t, mica_err *err) {
  if (t->failed == NULL) {
    LOG_E("tablet %" PRIu64 ": refusing writes: %s", t->id, err_msg(err));
    t->failed = err;
  } else {
    err_free(err);
  }
  pthread_cond_broadcast(&t->cv);
}

void tb_set_bg_error(tablet *t, const mica_err *err) {
  pthread_mutex_lock(&t->mu);
  err_free(t->bg_error);
  t->bg_error = err_dup(err);
  pthread_mutex_unlock(&t->mu);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */

void tab_options_init(tab_options *o) {
  memset(o, 0, sizeof(*o));
  o->memtable_bytes = 8u << 20;
  o->max_immutable = 2;
  o->compaction_trigger = 4;
  o->stall_sst_count = 24;
  o->stall_timeout_micros = 10 * 1000 * 1000;
  o->auto_compact = true;
  o->create_if_missing = false;
  o->max_key = 16 << 10;
  o->max_value = 8u << 20;
  o->max_batch = 32u << 20;
  sst_options_init(&o->sst);
}

void tab_scan_options_init(tab_scan_options *o) {
  memset(o, 0, sizeof(*o));
  o->fill_cache = true;
}

mica_err *tab_close(tablet *t) {
  if (t == NULL) return NULL;
  pthread_mutex_lock(&t->mu);
  t->closing = true;
  while (t->queue_head != NULL || t->writing || t->rotating)
    pthread_cond_wait(&t->cv, &t->mu);
  bool failed = t->failed != NULL;
  pthread_mutex_unlock(&t->mu);
  res_member_remove(t->res, &t->member);
  t->member_added = false;
  res_job_cancel(t->res, &t->flush_job);
  res_job_cancel(t->res, &t->compact_job);
  mica_err *err = NULL;
  if (failed) {
    pthread_mutex_lock(&t->mu);
    err = err_dup(t->failed);
    pthread_mutex_unlock(&t->mu);
  } else {
    /* A tablet still pending is taken over first: closing means the
     * manifest lists no WAL segment (a merge relies on it), and the
     * replayed writes are only in the previous owners' segments. */
    err = tb_take_over(t);
    if (err == NULL) {
      pthread_mutex_lock(&t->mu);
      err = tb_rotate_locked(t, false);
      pthread_mutex_unlock(&t->mu);
    }
    if (err == NULL) err = tb_flush_all_imm(t);
  }
  tb_release(t);
  return err;
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */

static mica_err *range_error(const tablet *t, slice key) {
  buf k = BUF_INIT;
  slice_escape(slice_make(key.data, key.len > 64 ? 64 : key.len), &k);
  mica_err *err = err_new(MICA_OUT_OF_RANGE,
                          "key \"%s%s\" is outside tablet %" PRIu64, k.data,
                          key.len > 64 ? "..." : "", t->id);
  buf_free(&k);
  return err;
}

typedef struct check_ctx {
  const tablet *t;
  uint64_t puts, deletes;
} check_ctx;

static mica_err *check_entry(void *arg, uint64_t seq, uint8_t kind, slice key,
                             slice value) {
  (void)seq;
  check_ctx *c = arg;
  const tablet *t = c->t;
  if (key.len == 0)
    return err_new(MICA_INVALID_ARGUMENT, "empty key");
  if (key.len > t->o.max_key)
    return err_new(MICA_INVALID_ARGUMENT, "key of %zu bytes exceeds %zu",
                   key.len, t->o.max_key);
  if (kind == IKEY_PUT && value.len > t->o.max_value)
    return err_new(MICA_INVALID_ARGUMENT, "value of %zu bytes exceeds %zu",
                   value.len, t->o.max_value);
  if (!t_in_range(t, key)) return range_error(t, key);
  if (kind == IKEY_PUT) c->puts++;
  else c->deletes++;
  return NULL;
}

/* Waits until the tablet can take a write: room in the memtable (rotating
 * when full), not too many immutable memtables or SSTables, memory under
 * the server's limit. Caller holds mu. */
static mica_err *make_room(tablet *t) {
  uint64_t start = 0, deadline = 0;
  bool stalled = false;
  mica_err *err = NULL;
  for (;;) {
    if (t->failed != NULL) {
      err = err_dup(t->failed);
      break;
    }
    if (t->closing) {
      err = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is closing", t->id);
      break;
    }
    const char *why = NULL;
    char detail[160];
    if (t->rotating) {
      why = "";
    } else if (t->pending) {
      /* Opened on a disk short of space: take the tablet over now (the
       * caller checked the space). Other writers stay out meanwhile. */
      t->rotating = true;
      pthread_mutex_unlock(&t->mu);
      err = tb_take_over(t);
      pthread_mutex_lock(&t->mu);
      t->rotating = false;
      pthread_cond_broadcast(&t->cv);
      if (err != NULL) break;
      continue;
    } else if (t->wal_full ||
               (mt_memory_usage(t->cur->mem) >= t->o.memtable_bytes &&
                mt_count(t->cur->mem) > 0)) {
      if (t->n_imm < (size_t)t->o.max_immutable) {
        err = tb_rotate_locked(t, true);
        if (err != NULL) {
          /* A failed rotation leaves the old segment in use and at most
           * an unused new one behind, listed or not; only a full disk is
           * worth retrying without a reopen. */
          if (err_code(err) != MICA_RESOURCE_EXHAUSTED)
            tb_fail_locked(t, err_dup(err));
          break;
        }
        t->wal_full = false;
        continue;
      }
      snprintf(detail, sizeof(detail),
               "%zu immutable memtables waiting for flush", t->n_imm);
      why = detail;
      /* A flush that failed (a full disk) is retried from here. */
      res_job_schedule(t->res, &t->flush_job);
    } else if (v_level_count(t->cur, 0) >= (size_t)t->o.stall_sst_count) {
      snprintf(detail, sizeof(detail),
               "%zu SSTables in level 0 waiting for compaction",
               v_level_count(t->cur, 0));
      why = detail;
      res_job_schedule(t->res, &t->compact_job);
    } else if (res_mem_usage(t->res) > 2 * res_mem_budget(t->res)) {
      snprintf(detail, sizeof(detail),
               "memtables of all tablets hold %zu bytes, over twice the "
               "budget of %zu",
               res_mem_usage(t->res), res_mem_budget(t->res));
      why = detail;
    }
    if (why == NULL) break;
    if (*why == '\0') { /* a rotation in progress: short, not a stall */
      pthread_cond_wait(&t->cv, &t->mu);
      continue;
    }
    if (!stalled) {
      stalled = true;
      start = env_now_micros(t->e);
      deadline = start + t->o.stall_timeout_micros;
      stat_add(&t->st_stalls, 1);
    }
    if (!wait_until(t, deadline)) {
      stat_add(&t->st_stall_timeouts, 1);
      err = err_new(MICA_UNAVAILABLE,
                    "write stall: tablet %" PRIu64 ": %s for %" PRIu64
                    " ms%s%s",
                    t->id, why, t->o.stall_timeout_micros / 1000,
                    t->bg_error ? "; last background error: " : "",
                    t->bg_error ? err_msg(t->bg_error) : "");
      break;
    }
  }
  if (stalled)
    stat_add(&t->st_stall_micros, env_now_micros(t->e) - start);
  return err;
}

/* The WAL write of a group failed with *err. The records of the group may
 * or may not be in the file, followed by a torn one, so nothing is ever
 * appended to this segment again. A full disk is not the end of the
 * tablet: the group's writes are refused (they were not applied to the
 * memtable, and their sequence numbers are never reused, so if a replay
 * finds them they sort below every later write), and make_room starts a
 * new segment before the next write, once there is room again; replay
 * treats the old segment's end as a torn tail. Any other failure makes
 * the tablet refuse writes. Caller holds mu. */
static void wal_failed_locked(tablet *t, mica_err **err) {
  if (err_code(*err) == MICA_RESOURCE_EXHAUSTED) {
    if (!t->wal_full)
      LOG_W("tablet %" PRIu64 ": WAL write on a full disk; the next write "
            "starts a new segment: %s", t->id, err_msg(*err));
    t->wal_full = true;
    *err = err_wrap(*err,
                    "tablet %" PRIu64 ": disk full while writing the WAL; "
                    "the write was not acknowledged and may or may not "
                    "survive a crash", t->id);
    return;
  }
  tb_fail_locked(t, err_dup(*err));
}

/* Largest group a leader takes: LevelDB's rule, so that a small write is
 * not held up behind a megabyte of others. */
static size_t group_limit(size_t first) {
  return first <= (128u << 10) ? first + (128u << 10) : (1u << 20);
}

/* Removes the leader's group (up to and including `last`) from the queue,
 * hands each member the outcome, and wakes the next head. Caller holds
 * mu. */
static void finish_group(tablet *t, wnode *last, const mica_err *err) {
  for (;;) {
    wnode *w = t->queue_head;
    t->queue_head = w->next;
    if (t->queue_head == NULL) t->queue_tail = NULL;
    w->err = err_dup(err);
    w->done = true;
    pthread_cond_signal(&w->cv);
    if (w == last) break;
  }
  if (t->queue_head != NULL) pthread_cond_signal(&t->queue_head->cv);
}

/* Gives the group from `first` to `last` its sequence numbers and adds
 * it to the server's commit log as one unit (one segment, one ticket).
 * Caller holds mu. */
static mica_err *log_group(tablet *t, wnode *first, wnode *last, bool sync,
                           clog_ticket *tk) {
  slice one[8], *v = one;
  size_t n = 0, cap = 8;
  uint64_t seq = t->last_seq;
  for (wnode *x = first;; x = x->next) {
    if (n == cap) {
      cap *= 2;
      v = v == one ? memcpy(xcalloc(cap, sizeof(*v)), one, sizeof(one))
                   : xrealloc(v, cap * sizeof(*v));
    }
    wbatch_set_seq(x->b, seq + 1);
    seq += wbatch_count(x->b);
    v[n++] = wbatch_data(x->b);
    if (x == last) break;
  }
  mica_err *err = clog_add_batches(t->log, t->id, t->epoch, v, n, sync, tk);
  /* Even on failure: some of the records may be in the log, and a
   * sequence number is never given to two writes. */
  t->last_seq = seq;
  if (v != one) free(v);
  return err;
}

mica_err *tab_write(tablet *t, wbatch *b, bool sync) {
  uint32_t count = wbatch_count(b);
  if (count == 0) return NULL;
  if (wbatch_byte_size(b) > t->o.max_batch)
    return err_new(MICA_INVALID_ARGUMENT, "batch of %zu bytes exceeds %zu",
                   wbatch_byte_size(b), t->o.max_batch);
  check_ctx cc = {t, 0, 0};
  mica_err *err = wbatch_iterate(b, check_entry, &cc);
  if (err != NULL) return err_wrap(err, "tablet %" PRIu64, t->id);
  /* Below the free-space reserve, refused at once: nothing is applied. */
  err = res_space_check(t->res, "writes");
  if (err != NULL) return err_wrap(err, "tablet %" PRIu64, t->id);

  wnode w;
  memset(&w, 0, sizeof(w));
  w.b = b;
  w.sync = sync;
  pthread_cond_init(&w.cv, NULL);
  pthread_mutex_lock(&t->mu);
  if (t->queue_tail != NULL) t->queue_tail->next = &w;
  else t->queue_head = &w;
  t->queue_tail = &w;
  while (!w.done && t->queue_head != &w) pthread_cond_wait(&w.cv, &t->mu);
  if (w.done) {
    /* A leader wrote this batch as part of its group. */
    pthread_mutex_unlock(&t->mu);
    pthread_cond_destroy(&w.cv);
    err = w.err;
    goto out;
  }

  /* The leader. */
  err = make_room(t);
  if (err != NULL) {
    finish_group(t, &w, err);
    err_free(w.err);
    pthread_mutex_unlock(&t->mu);
    pthread_cond_destroy(&w.cv);
    return err;
  }
  /* Take the group and log it. A group is synced if any member asked. */
  wnode *last = &w;
  size_t bytes = wbatch_byte_size(b), limit = group_limit(bytes);
  bool group_sync = sync;
  for (wnode *n = w.next; n != NULL; n = n->next) {
    if (bytes + wbatch_byte_size(n->b) > limit) break;
    bytes += wbatch_byte_size(n->b);
    group_sync |= n->sync;
    last = n;
  }
  uint64_t ticket = 0;
  clog_ticket lticket = {NULL, 0};
  if (t->log != NULL)
    err = log_group(t, &w, last, group_sync, &lticket);
  else
    for (wnode *n = &w;; n = n->next) {
      wbatch_set_seq(n->b, t->last_seq + 1);
      err = wal_add(t->wal, wbatch_data(n->b), group_sync, &ticket);
      if (err != NULL) break;
      t->last_seq += wbatch_count(n->b);
      if (n == last) break;
    }
  if (err != NULL) {
    /* Records already added may reach the file: nothing after them may be
     * acknowledged in this segment. On a full disk the next write starts
     * a new segment; on any other failure the tablet refuses writes and
     * reopen sorts it out. */
    wal_failed_locked(t, &err);
    finish_group(t, last, err);
    err_free(w.err);
    pthread_mutex_unlock(&t->mu);
    pthread_cond_destroy(&w.cv);
    return err;
  }
  uint64_t group_last_seq = t->last_seq;
  wal_writer *wal = t->wal;
  memtable *mem = t->cur->mem;
  t->writing = true;
  pthread_mutex_unlock(&t->mu);

  err = t->log != NULL ? clog_commit(t->log, &lticket) : wal_commit(wal, ticket);
  int64_t delta = 0;
  if (err == NULL) {
    size_t before = mt_memory_usage(mem);
    for (wnode *n = &w;; n = n->next) {
      mt_apply_batch(mem, n->b);
      if (n == last) break;
    }
    delta = (int64_t)(mt_memory_usage(mem) - before);
  }

  pthread_mutex_lock(&t->mu);
  t->writing = false;
  if (err != NULL) {
    wal_failed_locked(t, &err);
  } else {
    t->visible_seq = group_last_seq;
    t->active_charged += (size_t)delta;
    atomic_store(&t->active_bytes, t->active_charged);
  }
  finish_group(t, last, err);
  pthread_cond_broadcast(&t->cv); /* rotation, close and split wait */
  pthread_mutex_unlock(&t->mu);
  pthread_cond_destroy(&w.cv);
  err_free(err);
  err = w.err;
  tb_charge_memory(t, delta);

out:
  if (err != NULL) return err;
  stat_add(&t->st_puts, cc.puts);
  stat_add(&t->st_deletes, cc.deletes);
  stat_add(&t->st_batches, 1);
  stat_add(&t->st_bytes, wbatch_byte_size(b));
  return NULL;
}

/* Single puts and deletes reuse one batch per thread instead of
 * allocating one per call; the key's destructor frees it when the thread
 * exits. A batch is only read by tab_write until it returns. */
static pthread_key_t g_batch_key;
static pthread_once_t g_batch_once = PTHREAD_ONCE_INIT;

static void batch_key_free(void *b) { wbatch_free(b); }
static void batch_key_init(void) {
  pthread_key_create(&g_batch_key, batch_key_free);
}

static wbatch *thread_batch(void) {
  pthread_once(&g_batch_once, batch_key_init);
  wbatch *b = pthread_getspecific(g_batch_key);
  if (b == NULL) {
    b = wbatch_new();
    pthread_setspecific(g_batch_key, b);
  }
  wbatch_clear(b);
  return b;
}

mica_err *tab_put(tablet *t, slice key, slice value, bool sync) {
  wbatch *b = thread_batch();
  wbatch_put(b, key, value);
  return tab_write(t, b, sync);
}

mica_err *tab_delete(tablet *t, slice key, bool sync) {
  wbatch *b = thread_batch();
  wbatch_delete(b, key);
  return tab_write(t, b, sync);
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */

struct tab_snapshot {
  version *v;
  uint64_t seq;
};

tab_snapshot *tab_snapshot_new(tablet *t) {
  tab_snapshot *s = xcalloc(1, sizeof(*s));
  s->v = tb_current_version(t, &s->seq);
  return s;
}

void tab_snapshot_free(tab_snapshot *s) {
  if (s == NULL) return;
  tb_version_unref(s->v);
  free(s);
}

uint64_t tab_snapshot_seq(const tab_snapshot *s) { return s->seq; }

/* Looks `key` up at `seq` in one SSTable, setting *found (MT_*). */
static mica_err *probe(tfile *f, slice key, uint64_t seq, buf *value,
                       int *found) {
  sst_get_result r;
  mica_err *err = sst_reader_get(f->r, key, seq, &r, value, NULL);
  if (err != NULL) return err;
  *found = r == SST_GET_PUT       ? MT_FOUND
           : r == SST_GET_DELETED ? MT_DELETED
                                  : MT_ABSENT;
  return NULL;
}

mica_err *tab_get(tablet *t, const tab_snapshot *snap, slice key,
                  buf *value) {
  if (key.len == 0 || key.len > t->o.max_key)
    return err_new(MICA_INVALID_ARGUMENT, "tablet %" PRIu64
                   ": key of %zu bytes not in 1..%zu", t->id, key.len,
                   t->o.max_key);
  if (!t_in_range(t, key)) return range_error(t, key);
  uint64_t probes = 0;
  uint64_t seq;
  version *v;
  if (snap != NULL) {
    v = snap->v;
    tb_version_ref(v);
    seq = snap->seq;
  } else {
    v = tb_current_version(t, &seq);
  }
  mica_err *err = NULL;
  int found = MT_ABSENT;
  found = mt_get(v->mem, key, seq, value);
  for (size_t i = 0; found == MT_ABSENT && i < v->n_imm; i++)
    found = mt_get(v->imm[i], key, seq, value);
  /* Level 0 newest first, each file whose key span holds the key; then
   * below, at most the one file of each level whose span does. */
  /* The first file whose Bloom filter let the read in, and whether the
   * read went on to another file after it: a wasted read of a block,
   * charged to that file (tablet_level.c, read-triggered compaction). */
  tfile *first = NULL;
  bool past_first = false;
  for (size_t i = v->lvl[0]; found == MT_ABSENT && i < v->lvl[1]; i++) {
    if (!tb_tfile_may_hold(v->files[i], key)) continue;
    probes++;
    past_first = first != NULL;
    if (first == NULL && sst_reader_may_contain(v->files[i]->r, key))
      first = v->files[i];
    err = probe(v->files[i], key, seq, value, &found);
    if (err != NULL) break;
  }
  for (int l = 1; err == NULL && found == MT_ABSENT && l < TB_LEVELS; l++) {
    size_t i = tb_level_find(v, l, key);
    if (i == v->lvl[l + 1] || !tb_tfile_may_hold(v->files[i], key)) continue;
    probes++;
    past_first = first != NULL;
    if (first == NULL && sst_reader_may_contain(v->files[i]->r, key))
      first = v->files[i];
    err = probe(v->files[i], key, seq, value, &found);
  }
  /* A local-only try refused for a remote read is counted (and charged)
   * when it is run again (env.h). */
  if (!env_local_only_refused()) {
    stat_add(&t->st_gets, 1);
    if (probes > 0) stat_add(&t->st_get_probes, probes);
    if (past_first && err == NULL) tb_charge_read(t, first);
  }
  tb_version_unref(v);
  if (err != NULL) return err;
  if (found != MT_FOUND) {
    buf_clear(value);
    return err_new(MICA_NOT_FOUND, "key not found");
  }
  return NULL;
}

mica_err *tab_scan(tablet *t, const tab_scan_options *o, iter **out) {
  *out = NULL;
  tab_scan_options def;
  if (o == NULL) {
    tab_scan_options_init(&def);
    o = &def;
  }
  if (o->start.len > 0 && o->end.len > 0 && slice_cmp(o->start, o->end) > 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet %" PRIu64 ": scan start is after its end", t->id);
  /* lo = max(tablet start, scan start, prefix); hi = min(tablet end, scan
   * end, successor of prefix). Slices of the caller's and the tablet's
   * keys: the iterator copies them. */
  buf succ = BUF_INIT;
  slice lo = t_start(t), hi = t->has_end ? t_end(t) : slice_make(NULL, 0);
  bool has_hi = t->has_end;
  if (o->start.len > 0 && slice_cmp(o->start, lo) > 0) lo = o->start;
  if (o->prefix.len > 0 && slice_cmp(o->prefix, lo) > 0) lo = o->prefix;
  if (o->end.len > 0 && (!has_hi || slice_cmp(o->end, hi) < 0)) {
    hi = o->end;
    has_hi = true;
  }
  if (o->prefix.len > 0 && slice_prefix_successor(o->prefix, &succ) &&
      (!has_hi || slice_cmp(buf_slice(&succ), hi) < 0)) {
    hi = buf_slice(&succ);
    has_hi = true;
  }
  stat_add(&t->st_scans, 1);
  uint64_t seq;
  version *v;
  if (o->snap != NULL) {
    v = o->snap->v;
    tb_version_ref(v);
    seq = o->snap->seq;
  } else {
    v = tb_current_version(t, &seq);
  }
  /* A seek (a scan with a start or a prefix) that has to merge two or
   * more files at its start key charges the first (tablet_level.c). */
  if (o->start.len > 0 || o->prefix.len > 0) tb_charge_seek(t, v, lo);
  *out = tb_tablet_iter_new(v, seq, lo, hi, has_hi, o);
  buf_free(&succ);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Maintenance                                                         */

mica_err *tab_set_sst_options(tablet *t, const sst_options *o) {
  mica_err *err = sst_options_check(o);
  if (err != NULL) return err;
  pthread_mutex_lock(&t->mu);
  t->o.sst = *o;
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

mica_err *tab_flush(tablet *t) {
  mica_err *err = tb_take_over(t);
  if (err != NULL) return err;
  pthread_mutex_lock(&t->mu);
  if (t->failed != NULL) err = err_dup(t->failed);
  else if (t->closing)
    err = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is closing", t->id);
  else {
    while (t->rotating) pthread_cond_wait(&t->cv, &t->mu);
    if (mt_count(t->cur->mem) > 0) {
      err = tb_rotate_locked(t, true);
      if (err != NULL) tb_fail_locked(t, err_dup(err));
    }
  }
  pthread_mutex_unlock(&t->mu);
  if (err == NULL) err = tb_flush_all_imm(t);
  return err;
}

mica_err *tab_compact(tablet *t) {
  mica_err *err = res_space_check(t->res, "compaction");
  if (err != NULL) return err_wrap(err, "tablet %" PRIu64, t->id);
  err = tab_flush(t);
  bool did;
  if (err == NULL) err = tb_compact_once(t, true, &did);
  return err;
}

void tab_maintain(tablet *t) {
  mica_err *space = res_space_check(t->res, "maintenance");
  bool room = space == NULL;
  err_free(space);
  /* Under mu, so that a close (which sets closing under mu, then cancels
   * the jobs) cannot miss a job scheduled here. */
  pthread_mutex_lock(&t->mu);
  if (room && t->failed == NULL && !t->closing && t->o.auto_compact) {
    if (t->pending) {
      /* Opened on a full disk and not written to since: the flush job
       * takes the tablet over once there is room, and the take-over
       * schedules the compaction. */
      res_job_schedule(t->res, &t->flush_job);
    } else if (tb_compaction_due_locked(t)) {
      res_job_schedule(t->res, &t->compact_job);
    }
  }
  pthread_mutex_unlock(&t->mu);
}

/* ------------------------------------------------------------------ */
/* Information                                                         */

uint64_t tab_id(const tablet *t) { return t->id; }
uint64_t tab_epoch(const tablet *t) { return t->epoch; }
slice tab_start(const tablet *t) { return t_start(t); }
slice tab_end(const tablet *t) { return t_end(t); }

uint64_t tab_last_seq(tablet *t) {
  pthread_mutex_lock(&t->mu);
  uint64_t s = t->visible_seq;
  pthread_mutex_unlock(&t->mu);
  return s;
}

uint64_t tab_approximate_size(tablet *t) {
  version *v = tb_current_version(t, NULL);
  uint64_t n = mt_memory_usage(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) n += mt_memory_usage(v->imm[i]);
  for (size_t i = 0; i < v->n_files; i++) n += v->files[i]->est_bytes;
  tb_version_unref(v);
  return n;
}

uint64_t tab_approximate_keys(tablet *t) {
  version *v = tb_current_version(t, NULL);
  uint64_t n = mt_count(v->mem);
  for (size_t i = 0; i < v->n_imm; i++) n += mt_count(v->imm[i]);
  for (size_t i = 0; i < v->n_files; i++) n += v->files[i]->est_keys;
  tb_version_unref(v);
  return n;
}

_Static_assert(sizeof(((tab_stats *)0)->level_files) / sizeof(uint64_t) ==
                   TB_LEVELS,
               "tab_stats.level_files has one entry per level");

mica_err *tab_check_levels(tablet *t) {
  version *v = tb_current_version(t, NULL);
  mica_err *err = tb_check_levels(t, v);
  tb_version_unref(v);
  return err;
}

void tab_get_stats(tablet *t, tab_stats *s) {
  memset(s, 0, sizeof(*s));
  s->puts = atomic_load(&t->st_puts);
  s->deletes = atomic_load(&t->st_deletes);
  s->batches = atomic_load(&t->st_batches);
  s->bytes_written = atomic_load(&t->st_bytes);
  s->gets = atomic_load(&t->st_gets);
  s->scans = atomic_load(&t->st_scans);
  s->get_file_probes = atomic_load(&t->st_get_probes);
  s->flushes = atomic_load(&t->st_flushes);
  s->flush_bytes = atomic_load(&t->st_flush_bytes);
  s->compactions = atomic_load(&t->st_compactions);
  s->compact_read_bytes = atomic_load(&t->st_cread);
  s->compact_write_bytes = atomic_load(&t->st_cwrite);
  s->stalls = atomic_load(&t->st_stalls);
  s->stall_micros = atomic_load(&t->st_stall_micros);
  s->stall_timeouts = atomic_load(&t->st_stall_timeouts);
  s->read_compactions = atomic_load(&t->st_read_compactions);
  s->wal_replayed_records = t->replayed_records;
  s->lost_log_accepted = t->lost_log_accepted;
  s->wal_dropped_bytes = t->dropped_bytes;
  pthread_mutex_lock(&t->mu);
  s->num_ssts = t->cur->n_files;
  for (int l = 0; l < TB_LEVELS; l++)
    s->level_files[l] = v_level_count(t->cur, l);
  s->compaction_due = tb_compaction_score(t, t->cur) >= 1 ||
                      tb_version_has_foreign(t->cur);
  s->num_immutable = t->n_imm;
  s->memtable_bytes = mt_memory_usage(t->cur->mem);
  s->last_seq = t->visible_seq;
  pthread_mutex_unlock(&t->mu);
}
