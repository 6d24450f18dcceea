/* ts_maint: the tablet server's maintenance thread.
 *
 * It runs always (with or without a master). Requested drops (tablets the
 * master no longer assigns here, ts_request_drop) are closed at once; once
 * a second it refreshes the per-tablet read/write rates and splits tablets
 * that passed the split threshold (one at a time; a failed attempt is
 * retried after a back-off); every 10 s each serving tablet schedules the
 * compaction nothing else would (tab_maintain); and, when no tablet is due
 * for a size split, it accounts the sampled load and splits a tablet that
 * stayed hot (ts_load.h); every minute it deletes the commit logs of dead
 * servers that no tablet needs any more (clog_collect_dead). A split goes through ts_split_tablet, which
 * proposes it to the master with ReportSplit when there is one. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tabletserver/server/ts_admin.h"
#include "tabletserver/server/ts_maint.h"

/* Refreshes every tablet's rates (exponentially weighted, ~5 s). */
static void update_rates(ts_server *s) {
  uint64_t now = env_now_micros(s->e);
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->ntabs; i++) {
    ts_tab *tt = s->tabs[i];
    uint64_t r = atomic_load(&tt->reads), w = atomic_load(&tt->writes);
    double dt = (double)(now - tt->rate_at_us) / 1e6;
    if (dt < 0.2) continue;
    double rr = (double)(r - tt->rate_reads) / dt;
    double wr = (double)(w - tt->rate_writes) / dt;
    double a = dt >= 5 ? 1.0 : dt / 5;
    tt->read_rate += a * (rr - tt->read_rate);
    tt->write_rate += a * (wr - tt->write_rate);
    tt->rate_reads = r;
    tt->rate_writes = w;
    tt->rate_at_us = now;
  }
  pthread_mutex_unlock(&s->mu);
}

/* Finds one serving tablet past the split threshold that is not in its
 * back-off; returns its id and epochs, or false. */
static bool pick_split(ts_server *s, uint64_t *id, uint64_t *re,
                       uint64_t *ae) {
  uint64_t now = env_now_micros(s->e);
  bool found = false;
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  ts_tab **held = xcalloc(s->ntabs ? s->ntabs : 1, sizeof(*held));
  for (size_t i = 0; i < s->ntabs; i++)
    if (s->tabs[i]->state == TS_SERVING && s->tabs[i]->split_retry_us <= now) {
      s->tabs[i]->refs++;
      held[n++] = s->tabs[i];
    }
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < n; i++) {
    if (!found && tab_approximate_size(held[i]->t) >=
                      ts_topts_split_threshold(s, held[i]->d.table_id)) {
      found = true;
      *id = held[i]->d.tablet_id;
      *re = held[i]->d.range_epoch;
      *ae = held[i]->d.assign_epoch;
      /* Until the split replaces it, do not pick it again at once. */
      held[i]->split_retry_us = now + 10 * 1000000ull;
    }
    ts_release(s, held[i]);
  }
  free(held);
  return found;
}

/* Accounts a second of sampled load (ts_load.h) and proposes the load
 * split of a tablet that stayed hot, if one asks for it. */
static void load_split(ts_server *s) {
  ts_load_split p;
  memset(&p, 0, sizeof(p));
  if (!ts_load_tick(s, &p)) return;
  mica_err *e = ts_lease_check(s);
  if (e == NULL) {
    LOG_I("tablet %" PRIu64 " stayed above the load-split threshold "
          "(%.0f ops/s); splitting it where %.0f%% of its sampled load "
          "falls below the key",
          p.tablet_id, p.ops_per_sec, p.left_share * 100);
    e = ts_split_tablet(s, p.tablet_id, p.range_epoch, p.assign_epoch,
                        buf_slice(&p.key), true, NULL, NULL);
    if (e != NULL)
      LOG_W("load split of tablet %" PRIu64 ": %s", p.tablet_id, err_msg(e));
  }
  err_free(e);
  buf_free(&p.key);
}

/* Lets every serving tablet schedule the background work that nothing
 * else triggers (tab_maintain: a split daughter or merged tablet that
 * still reads another tablet's files compacts them away even when it is
 * never written to). */
static void maintain_tablets(ts_server *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  ts_tab **held = xcalloc(s->ntabs ? s->ntabs : 1, sizeof(*held));
  for (size_t i = 0; i < s->ntabs; i++)
    if (s->tabs[i]->state == TS_SERVING) {
      s->tabs[i]->refs++;
      held[n++] = s->tabs[i];
    }
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < n; i++) {
    tab_maintain(held[i]->t);
    ts_release(s, held[i]);
  }
  free(held);
}

static void *maint_main(void *arg) {
  ts_server *s = arg;
  /* Drops are due at once; rates and split checks once a second. */
  for (unsigned tick = 1; !ts_bg_wait(s, 100000); tick++) {
    ts_drop_requested(s);
    if (tick % 10 != 0) continue;
    update_rates(s);
    if (tick % 100 == 0) maintain_tablets(s);
    if (s->log != NULL &&
        tick % (clog_objects(s->log) ? 6000u : 600u) == 0) {
      /* Dead servers' commit logs no tablet needs any more: every minute,
       * every 10 minutes on S3, where a pass costs a LIST per log and a
       * LIST and GET per tablet (docs/storage.md). */
      mica_err *ce = clog_collect_dead(s->e, s->tablets_dir, NULL);
      if (ce != NULL) LOG_W("commit log collection: %s", err_msg(ce));
      err_free(ce);
    }
    uint64_t id = 0, re = 0, ae = 0;
    if (!pick_split(s, &id, &re, &ae)) {
      load_split(s);
    } else {
      mica_err *le = ts_lease_check(s);
      if (le == NULL) {
        LOG_I("tablet %" PRIu64 " passed its split threshold; splitting",
              id);
        mica_err *e = ts_split_tablet(s, id, re, ae, slice_make(NULL, 0),
                                      false, NULL, NULL);
        if (e != NULL)
          LOG_W("automatic split of tablet %" PRIu64 ": %s", id, err_msg(e));
        err_free(e);
      }
      err_free(le);
    }
  }
  return NULL;
}

mica_err *ts_maint_start(ts_server *s) {
  if (pthread_create(&s->maint_thread, NULL, maint_main, s) != 0)
    return err_new(MICA_INTERNAL, "cannot start the maintenance thread");
  s->maint_started = true;
  return NULL;
}

void ts_maint_stop(ts_server *s) {
  ts_bg_stop(s);
  if (s->maint_started) pthread_join(s->maint_thread, NULL);
  s->maint_started = false;
}
