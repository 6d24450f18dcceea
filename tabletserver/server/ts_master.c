/* ts_master: the tablet server's side of the master conversation.
 *
 * Master thread (only with --master). Registers (address, previous id,
 * incarnation, the tablets it serves), then heartbeats every interval with
 * each tablet's figures. The lease is counted from the moment the server
 * SENT the request the master answered with OK, and lasts the smaller of
 * the master's grant and --lease-ms; the master counts from when it
 * received it, so the server's view always ends first (docs/design.md,
 * "Leases and fencing"). Past the lease every data handler refuses to
 * acknowledge (ts_lease_check):
 * tablets stay open and memtables in memory, and the moment a heartbeat or
 * re-registration is answered OK, serving resumes. A heartbeat answered
 * NOT_FOUND or LEASE_EXPIRED means the master forgot or buried this server:
 * it registers again, reporting its tablets, and closes the ones the
 * master lists in close_tablets (through ts_request_drop; the maintenance
 * thread of ts_maint.c closes them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/log.h"
#include "master/zk/mzk_locate.h"
#include "tabletserver/server/ts_master.h"

/* The link to the master: where the active one is (a locator following a
 * list or ZooKeeper) and one channel per master address met, kept until
 * the server stops (so a channel handed out stays valid). */
struct ts_mlink {
  mzk_locator *loc;
  pthread_mutex_t mu;
  struct {
    char *addr;
    rpc_channel *ch;
  } *chans;
  size_t n;
};

mica_err *ts_master_link_open(ts_server *s) {
  mzk_locator *loc;
  /* Its ZooKeeper session may last a lease: the master it finds is the
   * one whose leases count. */
  mica_err *e = mzk_locator_open(s->cfg.master, (int)s->cfg.lease_ms, &loc);
  if (e != NULL) return err_wrap(e, "--master");
  struct ts_mlink *l = xcalloc(1, sizeof(*l));
  l->loc = loc;
  pthread_mutex_init(&l->mu, NULL);
  s->master_ch = l;
  return NULL;
}

void ts_master_link_free(ts_server *s) {
  struct ts_mlink *l = s->master_ch;
  if (l == NULL) return;
  for (size_t i = 0; i < l->n; i++) {
    rpc_channel_free(l->chans[i].ch);
    free(l->chans[i].addr);
  }
  free(l->chans);
  mzk_locator_close(l->loc);
  pthread_mutex_destroy(&l->mu);
  free(l);
  s->master_ch = NULL;
}

/* A unary call of `m` to the active master. `addr` (MZK_ADDR_MAX bytes)
 * gets the address called, for messages. A failure that another master
 * may answer (or a refusal naming one) moves the link on; the caller
 * retries on its own schedule. */
static mica_err *master_call(ts_server *s, const rpc_method *m,
                             const void *req, int64_t timeout_ms,
                             void **resp, char *addr) {
  struct ts_mlink *l = s->master_ch;
  if (!mzk_locator_current(l->loc, addr, MZK_ADDR_MAX)) {
    snprintf(addr, MZK_ADDR_MAX, "%s", s->cfg.master);
    return err_new(MICA_UNAVAILABLE, "no active master published in %s yet",
                   s->cfg.master);
  }
  pthread_mutex_lock(&l->mu);
  rpc_channel *ch = NULL;
  for (size_t i = 0; i < l->n && ch == NULL; i++)
    if (strcmp(l->chans[i].addr, addr) == 0) ch = l->chans[i].ch;
  mica_err *e = NULL;
  if (ch == NULL) {
    /* Calls to the master carry this server's membership proof. */
    rpc_channel_opts co = {.member = &s->secret};
    if (s->cfg.tls.ca_file != NULL) co.tls = &s->cfg.tls;
    e = rpc_channel_new(addr, &co, &ch);
    if (e == NULL) {
      l->chans = xrealloc(l->chans, (l->n + 1) * sizeof(*l->chans));
      l->chans[l->n].addr = xstrdup(addr);
      l->chans[l->n++].ch = ch;
    }
  }
  pthread_mutex_unlock(&l->mu);
  if (e != NULL) return e;
  e = rpc_unary(ch, m, req, timeout_ms, resp);
  mica_err *st = e == NULL ? rpc_status_err(rpc_response_status(*resp)) : NULL;
  const mica_err *why = e != NULL ? e : st;
  if (why != NULL && mzk_locator_should_switch(err_code(why))) {
    char prev[MZK_ADDR_MAX];
    snprintf(prev, sizeof prev, "%s", addr);
    mzk_locator_failed(l->loc, addr, why);
    char next[MZK_ADDR_MAX];
    if (mzk_locator_current(l->loc, next, sizeof next) &&
        strcmp(next, prev) != 0)
      LOG_I("master %s: %s; trying %s", prev, err_msg(why), next);
  }
  err_free(st);
  return e;
}

static void learn_access(ts_server *s, const rpc_access_table *w);

/* The reports of every serving tablet. Caller frees with free_reports. */
typedef struct reports {
  rpc_tablet_report *v;
  rpc_tablet_ref *refs;
  rpc_tablet_stats *stats;
  rpc_tablet_load *loads; /* hot keys allocated (ts_load_report) */
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
  r->loads = xcalloc(n ? n : 1, sizeof(*r->loads));
  for (size_t i = 0; i < n; i++) {
    memset(&r->v[i], 0, sizeof r->v[i]);
    memset(&r->refs[i], 0, sizeof r->refs[i]);
    r->refs[i].tablet_id = held[i]->d.tablet_id;
    r->refs[i].range_epoch = held[i]->d.range_epoch;
    r->refs[i].assign_epoch = held[i]->d.assign_epoch;
    ts_tab_stats(s, held[i], &r->stats[i]);
    r->v[i].tablet = &r->refs[i];
    r->v[i].stats = &r->stats[i];
    if (ts_load_report(s, held[i], &r->loads[i])) r->v[i].load = &r->loads[i];
    ts_release(s, held[i]);
  }
  free(held);
}

static void free_reports(reports *r) {
  for (size_t i = 0; i < r->n; i++) ts_load_report_clear(&r->loads[i]);
  free(r->loads);
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

mica_err *ts_master_fence(ts_server *s, uint64_t epoch, const char *what) {
  if (s->master_ch == NULL) return NULL;
  uint64_t seen = atomic_load(&s->master_epoch);
  for (;;) {
    if (epoch < seen)
      return err_new(MICA_STALE_MASTER,
                     "%s from master epoch %" PRIu64 " refused: this tablet "
                     "server has seen master epoch %" PRIu64 ", so the "
                     "sender is no longer the active master",
                     what, epoch, seen);
    if (epoch == seen) return NULL;
    if (atomic_compare_exchange_weak(&s->master_epoch, &seen, epoch)) {
      LOG_I("master epoch %" PRIu64 " (was %" PRIu64 ")", epoch, seen);
      return NULL;
    }
  }
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
  req.address = rpc_server_address(s->rpc);
  req.previous_server_id = atomic_load(&s->server_id);
  req.tablets = r.v;
  req.n_tablets = r.n;
  req.incarnation = s->incarnation;
  req.can_merge = true; /* OpenTablet with two sources: tablet_merge.h */
  req.http_address = ts_server_http_address(s);
  void *m = NULL;
  char addr[MZK_ADDR_MAX];
  uint64_t sent = env_now_micros(s->e);
  mica_err *e = master_call(s, &rpc_m_master_register_server, &req,
                            (int64_t)s->cfg.heartbeat_ms * 2 + 1000, &m,
                            addr);
  free_reports(&r);
  bool ok = false;
  if (e == NULL) {
    const rpc_register_server_response *resp =
        (const rpc_register_server_response *)m;
    e = rpc_status_err(resp->status);
    /* An answer from a deposed master grants nothing and commands nothing. */
    if (e == NULL &&
        (e = ts_master_fence(s, resp->master_epoch,
                             "RegisterServer answer")) != NULL)
      mzk_locator_failed(s->master_ch->loc, addr, e);
    if (e == NULL && resp->server_id == 0)
      e = err_new(MICA_INTERNAL, "master answered server_id 0");
    if (e == NULL) {
      uint64_t prev = atomic_exchange(&s->server_id, resp->server_id);
      if (prev != resp->server_id)
        LOG_I("registered with master %s as server %" PRIu64, addr,
              resp->server_id);
      if (resp->heartbeat_interval_ms > 0)
        atomic_store(&s->heartbeat_ms, resp->heartbeat_interval_ms);
      if (resp->split_threshold_bytes > 0 &&
          atomic_exchange(&s->split_threshold, resp->split_threshold_bytes) !=
              resp->split_threshold_bytes)
        LOG_I("split threshold set by the master: %" PRIu64 " bytes",
              resp->split_threshold_bytes);
      learn_access(s, resp->access);
      ts_load_configure(s, resp->load_split);
      close_listed(s, resp->close_tablets, resp->n_close_tablets);
      renew_lease(s, sent, resp->lease_ms);
      ok = true;
    }
  }
  if (e != NULL) {
    uint64_t now = env_now_micros(s->e);
    if (s->warned_us == 0 || now - s->warned_us >= 5000000) {
      LOG_W("register with master %s: %s", addr, err_msg(e));
      s->warned_us = now;
    }
    err_free(e);
  } else {
    s->warned_us = 0;
  }
  rpc_msg_free(m);
  return ok;
}

/* Installs the client access table the master sent (absent: the master
 * enforces no tokens, so client calls are open). */
static void learn_access(ts_server *s, const rpc_access_table *w) {
  static const rpc_access_table open_table;
  rpc_access *a = NULL;
  mica_err *e = rpc_access_from_wire(w != NULL ? w : &open_table, &a);
  if (e != NULL) {
    LOG_W("master's access table refused (the previous one stays): %s",
          err_msg(e));
    err_free(e);
    return;
  }
  rpc_auth_set_access(s->auth, a);
}

/* Records where merge inputs this server closed went (the master tells
 * once the merged tablet serves). */
static void learn_merged(ts_server *s, const rpc_merged_input *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (v[i].tablet_id == 0 || v[i].merged == NULL ||
        v[i].merged->desc == NULL || v[i].merged->desc->tablet_id == 0)
      continue;
    rpc_route r = {0};
    rpc_route_from_wire(&r, v[i].merged);
    if (r.address != NULL) ts_reg_merged_into(s, v[i].tablet_id, &r);
    rpc_route_clear(&r);
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
  mica_err *low = res_space_check(s->res, "merges and splits");
  req.disk_below_reserve = low != NULL; /* the master then starts neither */
  err_free(low);
  void *m = NULL;
  char addr[MZK_ADDR_MAX];
  uint64_t sent = env_now_micros(s->e);
  uint64_t hb = atomic_load(&s->heartbeat_ms);
  mica_err *e = master_call(s, &rpc_m_master_heartbeat, &req,
                            (int64_t)hb * 2 + 1000, &m, addr);
  free_reports(&r);
  bool registered = true;
  if (e == NULL) {
    const rpc_heartbeat_response *resp =
        (const rpc_heartbeat_response *)m;
    e = rpc_status_err(resp->status);
    if (e == NULL &&
        (e = ts_master_fence(s, resp->master_epoch, "Heartbeat answer")) !=
            NULL)
      mzk_locator_failed(s->master_ch->loc, addr, e);
    if (e == NULL) {
      learn_access(s, resp->access);
      ts_load_configure(s, resp->load_split);
      close_listed(s, resp->close_tablets, resp->n_close_tablets);
      learn_merged(s, resp->merged, resp->n_merged);
      ts_topts_learn(s, resp->table_options, resp->n_table_options);
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
      LOG_W("heartbeat to master %s: %s", addr, err_msg(e));
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
    if (ts_bg_wait(s, spent < hb ? hb - spent : 0)) break;
  }
  return NULL;
}

mica_err *ts_master_unary(ts_server *s, const rpc_method *m, const void *req,
                          int64_t timeout_ms, void **resp) {
  char addr[MZK_ADDR_MAX];
  *resp = NULL;
  mica_err *e = master_call(s, m, req, timeout_ms, resp, addr);
  if (e == NULL) e = rpc_status_err(rpc_response_status(*resp));
  if (e != NULL) {
    rpc_msg_free(*resp);
    *resp = NULL;
    e = err_wrap(e, "master %s", addr);
  }
  return e;
}

mica_err *ts_master_report_split(ts_server *s, const rpc_route *parent,
                                 slice key, bool for_load, rpc_route *left,
                                 rpc_route *right) {
  rpc_report_split_request req = {0};
  rpc_tablet_ref ref = {0};
  ref.tablet_id = parent->tablet_id;
  ref.range_epoch = parent->range_epoch;
  ref.assign_epoch = parent->assign_epoch;
  req.server_id = atomic_load(&s->server_id);
  req.parent = &ref;
  req.split_key = key;
  req.for_load = for_load;
  void *m = NULL;
  char addr[MZK_ADDR_MAX];
  mica_err *e = master_call(s, &rpc_m_master_report_split, &req, 30000, &m,
                            addr);
  if (e != NULL)
    return err_wrap(e, "ReportSplit of tablet %" PRIu64 " to %s", parent->tablet_id,
                    addr);
  const rpc_report_split_response *resp =
      (const rpc_report_split_response *)m;
  e = rpc_status_err(resp->status);
  if (e == NULL)
    e = ts_master_fence(s, resp->master_epoch, "ReportSplit answer");
  if (e == NULL &&
      (resp->left == NULL || resp->left->desc == NULL || resp->right == NULL ||
       resp->right->desc == NULL))
    e = err_new(MICA_INTERNAL, "ReportSplit answer lacks the daughters");
  if (e == NULL) {
    const rpc_tablet_route *rt[2] = {resp->left, resp->right};
    rpc_route *out[2] = {left, right};
    for (int i = 0; i < 2; i++) {
      uint64_t ae = rt[i]->location ? rt[i]->location->assign_epoch
                                    : parent->assign_epoch;
      rpc_route_from_desc(out[i], rt[i]->desc, ae);
    }
    if (!slice_eq(buf_slice(&left->end_key), key) ||
        !slice_eq(buf_slice(&right->start_key), key)) {
      rpc_route_clear(left);
      rpc_route_clear(right);
      e = err_new(MICA_INTERNAL,
                  "ReportSplit answer's daughters do not meet at the split "
                  "key");
    }
  }
  rpc_msg_free(m);
  if (e != NULL)
    e = err_wrap(e, "ReportSplit of tablet %" PRIu64, parent->tablet_id);
  return e;
}

mica_err *ts_master_start(ts_server *s) {
  if (s->master_ch == NULL) return NULL;
  /* Random enough to tell this process from an earlier one on the same
   * address: wall clock and pid, mixed. */
  uint64_t x[2] = {env_wall_micros(s->e), (uint64_t)getpid()};
  s->incarnation = ((uint64_t)hash32(x, sizeof x, 0x9e3779b9u) << 32) |
                   hash32(x, sizeof x, 0x7f4a7c15u);
  if (s->incarnation == 0) s->incarnation = 1;
  if (pthread_create(&s->master_thread, NULL, master_main, s) != 0)
    return err_new(MICA_INTERNAL, "cannot start the master thread");
  s->master_started = true;
  return NULL;
}

void ts_master_stop(ts_server *s) {
  ts_bg_stop(s);
  if (s->master_started) pthread_join(s->master_thread, NULL);
  s->master_started = false;
}
