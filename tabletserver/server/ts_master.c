/* ts_master: the tablet server's side of the master conversation, and its
 * maintenance loop.
 *
 * Master thread (only with --master). Registers (address, previous id,
 * incarnation, the tablets it serves), then heartbeats every interval with
 * each tablet's figures. The lease is counted from the moment the server
 * SENT the request the master answered with OK, and lasts the smaller of
 * the master's grant and --lease-ms; the master counts from when it
 * received it, so the server's view always ends first (DESIGN.md §4). Past
 * the lease every data handler refuses to acknowledge (ts_lease_check):
 * tablets stay open and memtables in memory, and the moment a heartbeat or
 * re-registration is answered OK, serving resumes. A heartbeat answered
 * NOT_FOUND or LEASE_EXPIRED means the master forgot or buried this server:
 * it registers again, reporting its tablets, and closes the ones the
 * master lists in close_tablets.
 *
 * Maintenance thread (always). Once a second it refreshes the per-tablet
 * read/write rates and splits tablets that passed --split-threshold (one at
 * a time; a failed attempt is retried after a back-off). A split goes
 * through ts_split_tablet, which proposes it to the master with
 * ReportSplit when there is one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/log.h"
#include "tabletserver/server/ts_int.h"

/* Waits up to `us` for a stop request; true when stopping. Sleeps in
 * short steps through the env clock (the only clock Mica code reads). */
static bool bg_wait(ts_server *s, uint64_t us) {
  uint64_t end = env_now_micros(s->e) + us;
  for (;;) {
    pthread_mutex_lock(&s->bg_mu);
    bool stop = s->stopping;
    pthread_mutex_unlock(&s->bg_mu);
    uint64_t now = env_now_micros(s->e);
    if (stop || now >= end) return stop;
    uint64_t step = end - now < 20000 ? end - now : 20000;
    env_sleep_micros(s->e, step);
  }
}

/* The reports of every serving tablet. Caller frees with free_reports. */
typedef struct reports {
  rpc_tablet_report *v;
  rpc_tablet_ref *refs;
  rpc_tablet_stats *stats;
  size_t n;
} reports;

static void collect_reports(ts_server *s, reports *r) {
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  ts_tab **held = xcalloc(s->ntabs ? s->ntabs : 1, sizeof(*held));
  for (size_t i = 0; i < s->ntabs; i++)
    if (s->tabs[i]->state == TS_SERVING) {
      s->tabs[i]->refs++;
      held[n++] = s->tabs[i];
    }
  pthread_mutex_unlock(&s->mu);
  r->n = n;
  r->v = xcalloc(n ? n : 1, sizeof(*r->v));
  r->refs = xcalloc(n ? n : 1, sizeof(*r->refs));
  r->stats = xcalloc(n ? n : 1, sizeof(*r->stats));
  for (size_t i = 0; i < n; i++) {
    memset(&r->v[i], 0, sizeof r->v[i]);
    memset(&r->refs[i], 0, sizeof r->refs[i]);
    r->refs[i].tablet_id = held[i]->d.id;
    r->refs[i].range_epoch = held[i]->d.range_epoch;
    r->refs[i].assign_epoch = held[i]->d.assign_epoch;
    ts_tab_stats(s, held[i], &r->stats[i]);
    r->v[i].tablet = &r->refs[i];
    r->v[i].stats = &r->stats[i];
    ts_release(s, held[i]);
  }
  free(held);
}

static void free_reports(reports *r) {
  free(r->v);
  free(r->refs);
  free(r->stats);
  memset(r, 0, sizeof(*r));
}

static void renew_lease(ts_server *s, uint64_t sent_us, uint64_t granted_ms) {
  uint64_t ms = s->cfg.lease_ms;
  if (granted_ms > 0 && granted_ms < ms) ms = granted_ms;
  uint64_t until = sent_us + ms * 1000;
  uint64_t prev = atomic_load(&s->lease_until_us);
  if (prev == 0 || env_now_micros(s->e) >= prev) {
    /* A new lease period. Counted before the deadline moves, so a handler
     * that sees the new deadline also sees the new period. */
    atomic_fetch_add(&s->lease_gen, 1);
    if (prev != 0) LOG_I("master renewed the lease; serving again");
  }
  if (until > prev) atomic_store(&s->lease_until_us, until);
}

static void close_listed(ts_server *s, const rpc_tablet_ref *refs, size_t n) {
  for (size_t i = 0; i < n; i++)
    ts_request_drop(s, refs[i].tablet_id, refs[i].assign_epoch);
}

/* One RegisterServer; true when registered. */
static bool do_register(ts_server *s) {
  reports r;
  collect_reports(s, &r);
  rpc_register_server_request req = {0};
  req.address = (char *)rpc_server_address(s->rpc);
  req.previous_server_id = atomic_load(&s->server_id);
  req.tablets = r.v;
  req.n_tablets = r.n;
  req.incarnation = s->incarnation;
  req.can_merge = true; /* OpenTablet with two sources: tablet_merge.h */
  req.http_address = ts_server_http_address(s);
  void *m = NULL;
  uint64_t sent = env_now_micros(s->e);
  mica_err *e = rpc_unary(s->master_ch, &rpc_m_master_register_server,
                          &req, (int64_t)s->cfg.heartbeat_ms * 2 + 1000,
                          &m);
  free_reports(&r);
  bool ok = false;
  if (e == NULL) {
    const rpc_register_server_response *resp =
        (const rpc_register_server_response *)m;
    e = rpc_status_err(resp->status);
    if (e == NULL && resp->server_id == 0)
      e = err_new(MICA_INTERNAL, "master answered server_id 0");
    if (e == NULL) {
      uint64_t prev = atomic_exchange(&s->server_id, resp->server_id);
      if (prev != resp->server_id)
        LOG_I("registered with master %s as server %" PRIu64, s->cfg.master,
              resp->server_id);
      if (resp->heartbeat_interval_ms > 0)
        atomic_store(&s->heartbeat_ms, resp->heartbeat_interval_ms);
      if (resp->split_threshold_bytes > 0 &&
          atomic_exchange(&s->split_threshold, resp->split_threshold_bytes) !=
              resp->split_threshold_bytes)
        LOG_I("split threshold set by the master: %" PRIu64 " bytes",
              resp->split_threshold_bytes);
      close_listed(s, resp->close_tablets, resp->n_close_tablets);
      renew_lease(s, sent, resp->lease_ms);
      ok = true;
    }
  }
  if (e != NULL) {
    uint64_t now = env_now_micros(s->e);
    if (s->warned_us == 0 || now - s->warned_us >= 5000000) {
      LOG_W("register with master %s: %s", s->cfg.master, err_msg(e));
      s->warned_us = now;
    }
    err_free(e);
  } else {
    s->warned_us = 0;
  }
  rpc_msg_free(m);
  return ok;
}

/* Records where merge inputs this server closed went (the master tells
 * once the merged tablet serves). */
static void learn_merged(ts_server *s, const rpc_merged_input *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const rpc_tablet_route *r = v[i].merged;
    if (v[i].tablet_id == 0 || r == NULL || r->desc == NULL ||
        r->desc->tablet_id == 0 || r->location == NULL ||
        r->location->address == NULL || r->location->address[0] == '\0')
      continue;
    ts_desc d;
    ts_desc_from_pb(&d, r->desc, r->location->assign_epoch);
    ts_reg_merged_into(s, v[i].tablet_id, &d, r->location->server_id,
                       r->location->address);
    ts_desc_clear(&d);
  }
}

/* One Heartbeat; false when the server must register again. */
static bool do_heartbeat(ts_server *s) {
  reports r;
  collect_reports(s, &r);
  rpc_heartbeat_request req = {0};
  req.server_id = atomic_load(&s->server_id);
  req.incarnation = s->incarnation;
  req.tablets = r.v;
  req.n_tablets = r.n;
  req.can_merge = true;
  void *m = NULL;
  uint64_t sent = env_now_micros(s->e);
  uint64_t hb = atomic_load(&s->heartbeat_ms);
  mica_err *e = rpc_unary(s->master_ch, &rpc_m_master_heartbeat, &req,
                          (int64_t)hb * 2 + 1000, &m);
  free_reports(&r);
  bool registered = true;
  if (e == NULL) {
    const rpc_heartbeat_response *resp =
        (const rpc_heartbeat_response *)m;
    e = rpc_status_err(resp->status);
    if (e == NULL) {
      close_listed(s, resp->close_tablets, resp->n_close_tablets);
      learn_merged(s, resp->merged, resp->n_merged);
      renew_lease(s, sent, resp->lease_ms);
    } else if (err_code(e) == MICA_NOT_FOUND ||
               err_code(e) == MICA_LEASE_EXPIRED) {
      registered = false;
    }
  }
  if (e != NULL) {
    /* One line per 5 s is enough while the master is away. */
    uint64_t now = env_now_micros(s->e);
    if (!registered || s->warned_us == 0 || now - s->warned_us >= 5000000) {
      LOG_W("heartbeat to master %s: %s", s->cfg.master, err_msg(e));
      s->warned_us = now;
    }
    err_free(e);
  } else {
    s->warned_us = 0;
  }
  rpc_msg_free(m);
  return registered;
}

static void *master_main(void *arg) {
  ts_server *s = arg;
  bool registered = false;
  for (;;) {
    uint64_t start = env_now_micros(s->e);
    if (!registered)
      registered = do_register(s);
    else
      registered = do_heartbeat(s);
    uint64_t hb = atomic_load(&s->heartbeat_ms) * 1000;
    uint64_t spent = env_now_micros(s->e) - start;
    if (bg_wait(s, spent < hb ? hb - spent : 0)) break;
  }
  return NULL;
}

mica_err *ts_master_report_split(ts_server *s, const ts_desc *parent,
                                 slice key, ts_desc *left, ts_desc *right) {
  rpc_report_split_request req = {0};
  rpc_tablet_ref ref = {0};
  ref.tablet_id = parent->id;
  ref.range_epoch = parent->range_epoch;
  ref.assign_epoch = parent->assign_epoch;
  req.server_id = atomic_load(&s->server_id);
  req.parent = &ref;
  req.split_key.data = (uint8_t *)key.data;
  req.split_key.len = key.len;
  void *m = NULL;
  mica_err *e = rpc_unary(s->master_ch, &rpc_m_master_report_split, &req,
                          30000, &m);
  if (e != NULL)
    return err_wrap(e, "ReportSplit of tablet %" PRIu64 " to %s", parent->id,
                    s->cfg.master);
  const rpc_report_split_response *resp =
      (const rpc_report_split_response *)m;
  e = rpc_status_err(resp->status);
  if (e == NULL &&
      (resp->left == NULL || resp->left->desc == NULL || resp->right == NULL ||
       resp->right->desc == NULL))
    e = err_new(MICA_INTERNAL, "ReportSplit answer lacks the daughters");
  if (e == NULL) {
    const rpc_tablet_route *rt[2] = {resp->left, resp->right};
    ts_desc *out[2] = {left, right};
    for (int i = 0; i < 2; i++) {
      uint64_t ae = rt[i]->location ? rt[i]->location->assign_epoch
                                    : parent->assign_epoch;
      ts_desc_from_pb(out[i], rt[i]->desc, ae);
    }
    if (!slice_eq(buf_slice(&left->end), key) ||
        !slice_eq(buf_slice(&right->start), key)) {
      ts_desc_clear(left);
      ts_desc_clear(right);
      e = err_new(MICA_INTERNAL,
                  "ReportSplit answer's daughters do not meet at the split "
                  "key");
    }
  }
  rpc_msg_free(m);
  if (e != NULL)
    e = err_wrap(e, "ReportSplit of tablet %" PRIu64, parent->id);
  return e;
}

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
                       atomic_load(&s->split_threshold)) {
      found = true;
      *id = held[i]->d.id;
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

static void *maint_main(void *arg) {
  ts_server *s = arg;
  /* Drops are due at once; rates and split checks once a second. */
  for (unsigned tick = 1; !bg_wait(s, 100000); tick++) {
    ts_drop_requested(s);
    if (tick % 10 != 0) continue;
    update_rates(s);
    uint64_t id = 0, re = 0, ae = 0;
    if (pick_split(s, &id, &re, &ae)) {
      mica_err *le = ts_lease_check(s);
      if (le == NULL) {
        LOG_I("tablet %" PRIu64 " passed the split threshold of %" PRIu64
              " bytes; splitting",
              id, (uint64_t)atomic_load(&s->split_threshold));
        mica_err *e = ts_split_tablet(s, id, re, ae, slice_make(NULL, 0), NULL,
                                      NULL);
        if (e != NULL)
          LOG_W("automatic split of tablet %" PRIu64 ": %s", id, err_msg(e));
        err_free(e);
      }
      err_free(le);
    }
  }
  return NULL;
}

mica_err *ts_master_start(ts_server *s) {
  if (s->master_ch != NULL) {
    /* Random enough to tell this process from an earlier one on the same
     * address: wall clock and pid, mixed. */
    uint64_t x[2] = {env_wall_micros(s->e), (uint64_t)getpid()};
    s->incarnation = ((uint64_t)hash32(x, sizeof x, 0x9e3779b9u) << 32) |
                     hash32(x, sizeof x, 0x7f4a7c15u);
    if (s->incarnation == 0) s->incarnation = 1;
    if (pthread_create(&s->master_thread, NULL, master_main, s) != 0)
      return err_new(MICA_INTERNAL, "cannot start the master thread");
    s->master_started = true;
  }
  if (pthread_create(&s->maint_thread, NULL, maint_main, s) != 0)
    return err_new(MICA_INTERNAL, "cannot start the maintenance thread");
  s->maint_started = true;
  return NULL;
}

void ts_master_stop(ts_server *s) {
  pthread_mutex_lock(&s->bg_mu);
  s->stopping = true;
  pthread_mutex_unlock(&s->bg_mu);
  if (s->master_started) pthread_join(s->master_thread, NULL);
  if (s->maint_started) pthread_join(s->maint_thread, NULL);
  s->master_started = s->maint_started = false;
}
