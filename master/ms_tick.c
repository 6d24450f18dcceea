/* ms_tick: what the master decides on its own, and the outcomes of the
 * actions it asked for.
 *
 * Actions are in memory only: a restarted master rebuilds its work from the
 * durable tablet states (an opening tablet whose server confirms it is
 * serving; one it does not confirm is reassigned), so nothing here needs to
 * survive a restart. At most one action is pending per tablet (ms_tab.action)
 * and per dropped table (ms_tbl.action); an outcome is applied only while
 * the tablet is still in the state, on the server and under the epoch the
 * action was issued for, so late answers from a dead server or a superseded
 * attempt change nothing. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/log.h"
#include "master/ms_int.h"
#include "master/tsnap.h"

static uint64_t backoff(ms *m, uint32_t failures) {
  uint64_t d = m->opt.open_backoff_min_us;
  for (uint32_t i = 1; i < failures && d < m->opt.open_backoff_max_us; i++)
    d *= 2;
  return d < m->opt.open_backoff_max_us ? d : m->opt.open_backoff_max_us;
}

static ms_act *new_act(ms *m) {
  if (m->n_acts == m->cap_acts) {
    m->cap_acts = m->cap_acts ? m->cap_acts * 2 : 16;
    m->acts = xrealloc(m->acts, m->cap_acts * sizeof(*m->acts));
  }
  ms_act *a = &m->acts[m->n_acts++];
  memset(a, 0, sizeof(*a));
  a->id = m->next_action_id++;
  return a;
}

uint64_t ms_queue_action(ms *m, int type, ms_tab *t, uint64_t due) {
  ms_act *a = new_act(m);
  a->type = type;
  a->tablet_id = t->id;
  a->server = t->server;
  a->epoch = t->assign_epoch;
  a->due = due;
  t->action = a->id;
  return a->id;
}

static ms_act *find_act(ms *m, uint64_t id) {
  for (size_t i = 0; i < m->n_acts; i++)
    if (m->acts[i].id == id) return &m->acts[i];
  return NULL;
}

static void remove_act(ms *m, ms_act *a) {
  size_t i = (size_t)(a - m->acts);
  m->acts[i] = m->acts[--m->n_acts];
}

static void log_payload(buf *b, const uint64_t *v, size_t n) {
  buf_clear(b);
  rec_u64s(b, v, n);
}

static mica_err *commit_u64s(ms *m, uint8_t type, const uint64_t *v,
                             size_t n) {
  buf b = BUF_INIT;
  log_payload(&b, v, n);
  mica_err *err = ms_commit(m, type, &b);
  buf_free(&b);
  return err;
}

/* ---- servers ---- */

mica_err *ms_declare_dead(ms *m, ms_srv *s, const char *why) {
  size_t held = 0;
  for (size_t i = 0; i < m->n_tabs; i++)
    if (m->tabs[i]->server == s->id &&
        (m->tabs[i]->state == MS_OPENING || m->tabs[i]->state == MS_SERVING ||
         m->tabs[i]->state == MS_CLOSING))
      held++;
  uint64_t id = s->id;
  mica_err *err = commit_u64s(m, REC_SERVER_DEAD, &id, 1);
  if (err) return err;
  /* Its pending actions can never complete; the tablets they were for are
   * unassigned now and start over. */
  for (size_t i = 0; i < m->n_acts;) {
    ms_act *a = &m->acts[i];
    if (a->server == id && a->type != MS_ACT_DELETE_TABLE) {
      ms_tab *t = ms_find_tab(m, a->tablet_id);
      if (t && t->action == a->id) t->action = 0;
      remove_act(m, a);
    } else {
      i++;
    }
  }
  ms_event_add(m, "server_dead", 0, id, "server %" PRIu64 " (%s) declared "
               "dead: %s; %zu tablets to reassign", id, s->address, why, held);
  return NULL;
}

static mica_err *check_leases(ms *m, uint64_t now) {
  uint64_t limit = m->opt.lease_us + m->opt.lease_margin_us;
  for (size_t i = 0; i < m->n_srvs; i++) {
    ms_srv *s = m->srvs[i];
    if (s->dead || now <= s->renewed_at + limit) continue;
    mica_err *err = ms_declare_dead(m, s, "lease and margin ran out");
    if (err) return err;
  }
  return NULL;
}

/* ---- loads ---- */

typedef struct ld {
  ms_srv *s;
  uint64_t count, bytes;
} ld;

/* Loads of the servers that can take tablets: live, not draining and with
 * a current lease (a server silent past its lease is probably gone; giving
 * it tablets would only delay them until it is declared dead). A tablet
 * closing for a move counts on its destination, where it is about to be.
 * By server id. Caller frees *out. */
static size_t loads(ms *m, ld **out) {
  ld *v = xcalloc(m->n_srvs + 1, sizeof(*v));
  size_t n = 0;
  for (size_t i = 0; i < m->n_srvs; i++)
    if (!m->srvs[i]->dead && !m->srvs[i]->draining &&
        m->now <= m->srvs[i]->renewed_at + m->opt.lease_us)
      v[n++].s = m->srvs[i];
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    uint64_t on = ms_tab_counts_on(t);
    if (on == 0) continue;
    for (size_t k = 0; k < n; k++)
      if (v[k].s->id == on) {
        v[k].count++;
        v[k].bytes += t->stats.bytes;
        break;
      }
  }
  *out = v;
  return n;
}

static bool less_loaded(const ld *a, const ld *b) {
  if (a->count != b->count) return a->count < b->count;
  if (a->bytes != b->bytes) return a->bytes < b->bytes;
  return a->s->id < b->s->id;
}

uint64_t ms_tab_counts_on(const ms_tab *t) {
  if (t->state == MS_OPENING || t->state == MS_SERVING) return t->server;
  if (t->state == MS_CLOSING && t->close_why == CW_MOVE) return t->close_arg;
  return 0;
}

uint64_t ms_least_loaded(ms *m, uint64_t exclude) {
  ld *v;
  size_t n = loads(m, &v);
  ld *best = NULL;
  for (size_t i = 0; i < n; i++)
    if (v[i].s->id != exclude && (best == NULL || less_loaded(&v[i], best)))
      best = &v[i];
  uint64_t id = best ? best->s->id : 0;
  free(v);
  return id;
}

/* ---- batches ---- */

/* Records about distinct tablets that touch nothing else (assignments,
 * closes of serving or opening tablets, opens confirmed), committed with
 * one sync: a server's death or a big new table costs one disk flush, not
 * one per tablet. */
typedef struct batch {
  uint8_t *types;
  buf *payloads;
  ms_tab **tabs;
  size_t n, cap;
} batch;

static void batch_add(batch *b, uint8_t type, ms_tab *t, const uint64_t *v,
                      size_t nv) {
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 16;
    b->types = xrealloc(b->types, b->cap);
    b->payloads = xrealloc(b->payloads, b->cap * sizeof(*b->payloads));
    b->tabs = xrealloc(b->tabs, b->cap * sizeof(*b->tabs));
  }
  b->types[b->n] = type;
  b->payloads[b->n] = (buf)BUF_INIT;
  rec_u64s(&b->payloads[b->n], v, nv);
  b->tabs[b->n] = t;
  b->n++;
}

static void batch_free(batch *b) {
  for (size_t i = 0; i < b->n; i++) buf_free(&b->payloads[i]);
  free(b->types);
  free(b->payloads);
  free(b->tabs);
  memset(b, 0, sizeof(*b));
}

static mica_err *batch_commit(ms *m, batch *b) {
  return ms_commit_batch(m, b->n, b->types, b->payloads);
}

/* ---- restart reconciliation ---- */

static mica_err *end_grace(ms *m, uint64_t now) {
  size_t dead = 0;
  for (size_t i = 0; i < m->n_srvs; i++) {
    ms_srv *s = m->srvs[i];
    if (s->dead || s->reported) continue;
    mica_err *err = ms_declare_dead(m, s, "did not come back after the "
                                    "master restarted");
    if (err) return err;
    dead++;
  }
  /* A tablet whose server is live but did not report it may still be
   * opening there (an OpenTablet of the previous master): close it on that
   * server first; only a confirmed close makes it unassigned and free to
   * go elsewhere. */
  batch b = {0};
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if ((t->state != MS_OPENING && t->state != MS_SERVING) || t->confirmed ||
        t->action != 0)
      continue;
    uint64_t rec[3] = {t->id, CW_PLAIN, 0};
    batch_add(&b, REC_CLOSING, t, rec, 3);
  }
  mica_err *err = batch_commit(m, &b);
  for (size_t i = 0; i < b.n && !err; i++)
    ms_queue_action(m, MS_ACT_CLOSE, b.tabs[i], now);
  if (!err) {
    m->grace_done = true;
    ms_event_add(m, "reconcile", 0, 0, "restart reconciled: %zu servers did "
                 "not return, %zu tablets not confirmed by their server",
                 dead, b.n);
  }
  batch_free(&b);
  return err;
}

/* ---- assignment ---- */

/* One event per tick for the assignments it made, so that reassigning a
 * big server's tablets does not push its death out of the bounded event
 * list; each assignment is still logged at debug level. The event's
 * tablet and server are the first assignment's, which its text names. */
static void assign_event(ms *m, const batch *b) {
  if (b->n == 0) return;
  uint64_t first = b->tabs[0]->id, first_srv = b->tabs[0]->server;
  bool one_server = true;
  for (size_t i = 1; i < b->n && one_server; i++)
    one_server = b->tabs[i]->server == first_srv;
  if (b->n == 1)
    ms_event_add(m, "assign", first, first_srv, "tablet %" PRIu64
                 " assigned to server %" PRIu64, first, first_srv);
  else if (one_server)
    ms_event_add(m, "assign", first, first_srv, "%zu tablets assigned to "
                 "server %" PRIu64 " (tablet %" PRIu64 " first)", b->n,
                 first_srv, first);
  else
    ms_event_add(m, "assign", first, first_srv, "%zu tablets assigned to "
                 "the least loaded servers (tablet %" PRIu64 " to server %"
                 PRIu64 " first)", b->n, first, first_srv);
}

static mica_err *assign_unassigned(ms *m, uint64_t now) {
  ld *v = NULL;
  size_t n = 0;
  batch b = {0};
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if (t->state != MS_UNASSIGNED || t->retry_at > now) continue;
    ms_tbl *tb = ms_find_tbl(m, t->table_id);
    if (tb == NULL || tb->dropping) continue;
    if (ms_tsnap_cloning(m, tb->id)) continue; /* manifests being written */
    if (v == NULL) n = loads(m, &v);
    if (n == 0) break;
    ld *best = NULL;
    for (size_t k = 0; k < n; k++) {
      if (n > 1 && v[k].s->id == t->avoid_server) continue;
      if (best == NULL || less_loaded(&v[k], best)) best = &v[k];
    }
    uint64_t rec[3] = {t->id, best->s->id, t->assign_epoch + 1};
    batch_add(&b, REC_ASSIGN, t, rec, 3);
    best->count++;
  }
  free(v);
  mica_err *err = batch_commit(m, &b);
  for (size_t i = 0; i < b.n && !err; i++) {
    ms_tab *t = b.tabs[i];
    ms_queue_action(m, MS_ACT_OPEN, t, now);
    LOG_D("master: tablet %" PRIu64 " assigned to server %" PRIu64
          " (epoch %" PRIu64 ")", t->id, t->server, t->assign_epoch);
  }
  if (!err) assign_event(m, &b);
  batch_free(&b);
  return err;
}

/* ---- drops ---- */

static mica_err *advance_drops(ms *m, uint64_t now) {
  batch b = {0};
  mica_err *err = NULL;
  for (size_t i = 0; i < m->n_tables && !err; i++) {
    ms_tbl *tb = m->tables[i];
    if (!tb->dropping) continue;
    bool all_closed = true;
    for (size_t k = 0; k < m->n_tabs && !err; k++) {
      ms_tab *t = m->tabs[k];
      if (t->table_id != tb->id) continue;
      if (t->state == MS_CLOSING && t->close_why == CW_MERGE && t->closed) {
        /* Closed for a merge that will not happen now. */
        uint64_t id = t->id;
        err = commit_u64s(m, REC_UNASSIGN, &id, 1);
        continue;
      }
      if (t->state == MS_SERVING && t->action == 0 && t->retry_at <= now) {
        uint64_t rec[3] = {t->id, CW_DROP, 0};
        batch_add(&b, REC_CLOSING, t, rec, 3);
      }
      if (t->state == MS_OPENING || t->state == MS_SERVING ||
          t->state == MS_CLOSING)
        all_closed = false;
    }
    if (!err && all_closed && tb->action == 0 && tb->retry_at <= now) {
      ms_act *a = new_act(m);
      a->type = MS_ACT_DELETE_TABLE;
      a->table_id = tb->id;
      a->due = now;
      tb->action = a->id;
    }
  }
  if (!err) err = batch_commit(m, &b);
  for (size_t i = 0; i < b.n && !err; i++)
    ms_queue_action(m, MS_ACT_CLOSE, b.tabs[i], now);
  batch_free(&b);
  return err;
}

/* ---- moves and merges ---- */

size_t ms_moves_in_flight(ms *m) {
  size_t n = 0;
  for (size_t i = 0; i < m->n_tabs; i++) n += m->tabs[i]->moving;
  return n;
}

mica_err *ms_start_move(ms *m, ms_tab *t, uint64_t target, const char *why) {
  uint64_t rec[3] = {t->id, CW_MOVE, target};
  uint64_t from = t->server;
  mica_err *err = commit_u64s(m, REC_CLOSING, rec, 3);
  if (err) return err;
  ms_queue_action(m, MS_ACT_CLOSE, t, m->now);
  t->rate_at = m->now;
  t->rate_at_move = ms_tab_rate(m, t); /* a rate still held is kept */
  ms_event_add(m, "move", t->id, target, "tablet %" PRIu64 " moving from "
               "server %" PRIu64 " to %" PRIu64 ": %s", t->id, from, target,
               why);
  return NULL;
}

mica_err *ms_start_merge(ms *m, ms_tab *a, ms_tab *b, const char *why) {
  uint64_t rec[2] = {a->id, b->id};
  mica_err *err = commit_u64s(m, REC_MERGE_BEGIN, rec, 2);
  if (err) return err;
  ms_queue_action(m, MS_ACT_CLOSE, a, m->now);
  ms_queue_action(m, MS_ACT_CLOSE, b, m->now);
  ms_event_add(m, "merge", a->id, 0, "merging tablets %" PRIu64 " and %"
               PRIu64 ": %s", a->id, b->id, why);
  return NULL;
}

static bool presplit_boundary(const ms_tbl *tb, slice key) {
  for (size_t i = 0; i < tb->n_presplit; i++)
    if (slice_eq(buf_slice(&tb->presplit[i]), key)) return true;
  return false;
}

static bool mergeable(ms *m, const ms_tab *t, uint64_t now) {
  return t->state == MS_SERVING && t->action == 0 && !t->moving &&
         !ms_srv_disk_low(m, t->server) &&
         t->have_stats && t->stats.bytes < m->opt.merge_max_bytes &&
         t->stats.read_rate + t->stats.write_rate < m->opt.merge_max_rate &&
         now >= t->born_us + m->opt.merge_min_age_us &&
         !ms_tab_load_busy(m, t, now);
}

static mica_err *start_merges(ms *m, uint64_t now) {
  size_t in_flight = 0;
  for (size_t i = 0; i < m->n_tabs; i++)
    if (m->tabs[i]->state == MS_CLOSING && m->tabs[i]->close_why == CW_MERGE)
      in_flight++;
  in_flight /= 2;
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if (tb->dropping) continue;
    for (size_t k = 0; k + 1 < tb->n_cur; k++) {
      if (in_flight >= m->opt.max_merges_in_flight) return NULL;
      ms_tab *a = tb->cur[k], *b = tb->cur[k + 1];
      if (!mergeable(m, a, now) || !mergeable(m, b, now) ||
          presplit_boundary(tb, buf_slice(&b->start)))
        continue;
      mica_err *err = ms_start_merge(m, a, b, "both small and cold");
      if (err) return err;
      in_flight++;
      k++;
    }
  }
  return NULL;
}

/* Both inputs of a merge are closed: one record retires them and creates
 * the merged tablet opening where the left one was. */
static mica_err *commit_merges(ms *m, uint64_t now) {
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if (tb->dropping) continue;
    for (size_t k = 0; k + 1 < tb->n_cur; k++) {
      ms_tab *a = tb->cur[k], *b = tb->cur[k + 1];
      if (a->state != MS_CLOSING || a->close_why != CW_MERGE || !a->closed ||
          a->close_arg != b->id || !b->closed)
        continue;
      /* Where an input was, preferring one whose disk is not below its
       * reserve (the merged tablet writes there soon); the least loaded
       * server when neither input's server is live. */
      uint64_t srv = 0;
      for (int j = 0; j < 2 && srv == 0; j++) {
        uint64_t at = j == 0 ? a->server : b->server;
        if (ms_srv_live(m, at) && !ms_srv_disk_low(m, at) &&
            !ms_srv_draining(m, at))
          srv = at;
      }
      if (srv == 0) srv = ms_least_loaded(m, 0);
      if (srv == 0) srv = ms_srv_live(m, a->server)   ? a->server
                          : ms_srv_live(m, b->server) ? b->server
                                                      : 0;
      if (srv == 0) return NULL;
      uint64_t id = m->next_tablet_id;
      uint64_t rec[4] = {a->id, b->id, id, srv};
      uint64_t closed_on[2] = {a->server, b->server};
      mica_err *err = commit_u64s(m, REC_MERGE_COMMIT, rec, 4);
      if (err) return err;
      /* The server that closed an input elsewhere learns the merged
       * tablet later (the one opening it records both inputs itself). */
      for (int j = 0; j < 2; j++)
        if (closed_on[j] != srv) ms_note_successor(m, closed_on[j], rec[j], id);
      ms_queue_action(m, MS_ACT_OPEN, ms_find_tab(m, id), now);
      ms_event_add(m, "merge", id, srv, "tablets %" PRIu64 " and %" PRIu64
                   " merged into %" PRIu64 " on server %" PRIu64, rec[0],
                   rec[1], id, srv);
    }
  }
  return NULL;
}

/* An opening or closing tablet without a pending action (its action's
 * outcome could not be logged, or a restart dropped it) gets the same
 * request again: opens and closes are idempotent under one epoch. */
static void resend(ms *m, uint64_t now) {
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if (t->action != 0 || t->retry_at > now || !ms_srv_live(m, t->server))
      continue;
    if (t->state == MS_OPENING) ms_queue_action(m, MS_ACT_OPEN, t, now);
    else if (t->state == MS_CLOSING && !t->closed)
      ms_queue_action(m, MS_ACT_CLOSE, t, now);
  }
}

/* ---- tick ---- */

static mica_err *tick(ms *m, uint64_t now) {
  mica_err *err;
  if (!m->grace_done) {
    if (now < m->grace_until) return NULL;
    err = end_grace(m, now);
    if (err) return err;
  }
  if ((err = check_leases(m, now))) return err;
  resend(m, now);
  if ((err = ms_tsnap_tick(m, now))) return err;
  if ((err = advance_drops(m, now))) return err;
  if ((err = commit_merges(m, now))) return err;
  if ((err = assign_unassigned(m, now))) return err;
  if (m->merges_on && (err = start_merges(m, now))) return err;
  if ((err = ms_balance_tick(m, now))) return err;
  return NULL;
}

static void emit(ms *m, ms_act *a, ms_action_list *out) {
  out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
  ms_action *x = &out->v[out->n++];
  memset(x, 0, sizeof(*x));
  x->id = a->id;
  x->type = a->type;
  x->server_id = a->server;
  ms_srv *s = ms_find_srv(m, a->server);
  x->address = xstrdup(s ? s->address : "");
  x->moved_to_address = xstrdup("");
  if (a->type == MS_ACT_DELETE_TABLE) {
    x->table_id = a->table_id;
    x->tablet.table_name = xstrdup("");
    x->tablet.address = xstrdup("");
    ms_tbl *tb = ms_find_tbl(m, a->table_id);
    if (tb) {
      free(x->tablet.table_name);
      x->tablet.table_name = xstrdup(tb->name);
    }
    return;
  }
  ms_tab *t = ms_find_tab(m, a->tablet_id);
  ms_fill_tablet(m, t, &x->tablet);
  x->tablet.assign_epoch = a->epoch;
  x->table_id = t->table_id;
  if (a->type == MS_ACT_OPEN) {
    for (int i = 0; i < 2; i++)
      if (t->src[i] != 0) x->sources[x->n_sources++] = t->src[i];
    ms_tbl *tb = ms_find_tbl(m, t->table_id);
    if (tb) x->opts = tb->opts;
  }
  if (a->type == MS_ACT_CLOSE && t->close_why == CW_MOVE) {
    ms_srv *to = ms_find_srv(m, t->close_arg);
    x->has_moved_to = to != NULL;
    x->moved_to_server = t->close_arg;
    free(x->moved_to_address);
    x->moved_to_address = xstrdup(to ? to->address : "");
    x->moved_to_epoch = t->assign_epoch + 1;
  }
  x->skip_flush = a->type == MS_ACT_CLOSE && t->close_why == CW_DROP;
}

/* Placements (the opens of new, unassigned or reassigned tablets: a
 * pre-split table's, a dead server's) go out at most
 * opt.max_opens_per_server at a time per server; the others wait, queued
 * and not yet emitted, for earlier ones to finish. A table created with
 * thousands of tablets then opens at the pace its servers can take,
 * instead of as thousands of calls that time out together and retry
 * together. A move's open and a merge's are not placements: they never
 * wait behind them, and neither do closes, splits or heartbeats. */
static bool is_placement(ms *m, const ms_act *a) {
  if (a->type != MS_ACT_OPEN) return false;
  const ms_tab *t = ms_find_tab(m, a->tablet_id);
  return t != NULL && !t->moving && t->src[1] == 0;
}

/* Index of server `id` in m->srvs (sorted by id), or n_srvs. */
static size_t srv_index(ms *m, uint64_t id) {
  size_t lo = 0, hi = m->n_srvs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->srvs[mid]->id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < m->n_srvs && m->srvs[lo]->id == id ? lo : m->n_srvs;
}

mica_err *ms_tick(ms *m, uint64_t now, ms_action_list *out) {
  pthread_mutex_lock(&m->mu);
  m->now = now;
  mica_err *err = tick(m, now);
  /* Placements in flight per server (index in srvs), emitted and not yet
   * answered. */
  uint32_t *opening = xcalloc(m->n_srvs + 1, sizeof(*opening));
  for (size_t i = 0; i < m->n_acts; i++)
    if (m->acts[i].emitted && is_placement(m, &m->acts[i]))
      opening[srv_index(m, m->acts[i].server)]++;
  for (size_t i = 0; i < m->n_acts; i++) {
    ms_act *a = &m->acts[i];
    bool gone = a->type == MS_ACT_DELETE_TABLE
                    ? ms_find_tbl(m, a->table_id) == NULL
                    : ms_find_tab(m, a->tablet_id) == NULL;
    if (gone) { /* its subject was forgotten: nothing left to do */
      remove_act(m, a);
      i--;
      continue;
    }
    /* An outcome that never came is an unknown one: ask again (opens and
     * closes are idempotent under one epoch, deletes by nature). */
    bool lost = a->emitted && now >= a->emitted_at + m->opt.action_timeout_us;
    if ((a->emitted && !lost) || a->due > now) continue;
    if (!a->emitted && is_placement(m, a)) {
      uint32_t *n = &opening[srv_index(m, a->server)];
      if (*n >= m->opt.max_opens_per_server) continue;
      (*n)++;
    }
    a->emitted = true;
    a->emitted_at = now;
    emit(m, a, out);
  }
  free(opening);
  pthread_mutex_unlock(&m->mu);
  return err;
}

/* ---- outcomes ---- */

static bool indeterminate(int code) {
  return code == MICA_DEADLINE_EXCEEDED || code == MICA_UNAVAILABLE ||
         code == MICA_CANCELLED;
}

/* Sends the same action again after a backoff. */
static void retry_later(ms *m, ms_act copy, ms_tab *t, uint64_t now) {
  t->failures++;
  ms_act *a = new_act(m);
  uint64_t id = a->id;
  *a = copy;
  a->id = id;
  a->emitted = false;
  a->due = now + backoff(m, t->failures);
  t->action = id;
}

static bool open_ok(int code) {
  return code == MICA_OK || code == MICA_ALREADY_EXISTS;
}

/* After the SERVING record of `t` is durable. */
static void opened(ms *m, ms_tab *t, bool was_move) {
  t->failures = 0;
  t->avoid_server = 0;
  if (was_move)
    ms_event_add(m, "move", t->id, t->server, "tablet %" PRIu64
                 " serving on server %" PRIu64, t->id, t->server);
}

static mica_err *open_done(ms *m, ms_act act, ms_tab *t, int code,
                           uint64_t now) {
  uint64_t rec[2] = {t->id, t->assign_epoch};
  if (open_ok(code)) {
    bool was_move = t->moving;
    mica_err *err = commit_u64s(m, REC_SERVING, rec, 2);
    if (!err) opened(m, t, was_move);
    return err;
  }
  if (indeterminate(code) && ms_srv_live(m, t->server)) {
    retry_later(m, act, t, now);
    return NULL;
  }
  uint64_t srv = t->server;
  mica_err *err = commit_u64s(m, REC_UNASSIGN, rec, 1);
  if (err) return err;
  t->failures++;
  t->avoid_server = srv;
  t->retry_at = now + backoff(m, t->failures);
  ms_event_add(m, "open_failed", t->id, srv, "server %" PRIu64 " could not "
               "open tablet %" PRIu64 ": %s; retry in %" PRIu64 " ms", srv,
               t->id, mica_code_name(code), (t->retry_at - now) / 1000);
  return NULL;
}

static mica_err *close_done(ms *m, ms_act act, ms_tab *t, int code,
                            uint64_t now) {
  uint64_t id = t->id;
  /* NOT_SERVING / NOT_FOUND: the server does not have it open, which is
   * what the close was for. */
  if (code == MICA_OK || code == MICA_NOT_SERVING || code == MICA_NOT_FOUND) {
    ms_tbl *tb = ms_find_tbl(m, t->table_id);
    if (t->close_why == CW_MOVE && tb && !tb->dropping &&
        ms_srv_live(m, t->close_arg)) {
      uint64_t rec[3] = {id, t->close_arg, t->assign_epoch + 1};
      mica_err *err = commit_u64s(m, REC_ASSIGN, rec, 3);
      if (err) return err;
      t->moving = true;
      ms_queue_action(m, MS_ACT_OPEN, t, now);
      return NULL;
    }
    return commit_u64s(m, REC_CLOSED, &id, 1);
  }
  if (indeterminate(code) && ms_srv_live(m, t->server)) {
    retry_later(m, act, t, now);
    return NULL;
  }
  uint64_t rec[2] = {id, t->assign_epoch};
  mica_err *err = commit_u64s(m, REC_SERVING, rec, 2);
  if (err) return err;
  t->failures++;
  t->retry_at = now + backoff(m, t->failures);
  ms_event_add(m, "close_failed", id, t->server, "server %" PRIu64 " could "
               "not close tablet %" PRIu64 ": %s; it keeps serving", t->server,
               id, mica_code_name(code));
  return NULL;
}

/* Takes pending action `id` out of the list into *act. For an OPEN or
 * CLOSE, *tab is its tablet when the outcome still matters (same tablet
 * state, server and epoch as when it was issued), else NULL. */
static mica_err *take_action(ms *m, uint64_t id, ms_act *act, ms_tab **tab) {
  *tab = NULL;
  ms_act *a = find_act(m, id);
  if (a == NULL || !a->emitted)
    return err_new(MICA_NOT_FOUND, "no pending action %" PRIu64, id);
  *act = *a;
  remove_act(m, a);
  if (act->type == MS_ACT_DELETE_TABLE) return NULL;
  ms_tab *t = ms_find_tab(m, act->tablet_id);
  if (t == NULL || t->action != id) return NULL;
  /* The action is gone either way: a tablet left pointing at it would be
   * skipped for good by everything that waits for action == 0 (a drop's
   * closes, resends, merges). */
  t->action = 0;
  if (t->server != act->server || t->assign_epoch != act->epoch) return NULL;
  bool current = act->type == MS_ACT_OPEN
                     ? t->state == MS_OPENING
                     : t->state == MS_CLOSING && !t->closed;
  if (current) *tab = t;
  return NULL;
}

static mica_err *delete_done(ms *m, const ms_act *act, int code,
                             uint64_t now) {
  ms_tbl *tb = ms_find_tbl(m, act->table_id);
  if (tb == NULL || tb->action != act->id) return NULL;
  tb->action = 0;
  if (code != MICA_OK) {
    tb->failures++;
    tb->retry_at = now + backoff(m, tb->failures);
    return NULL;
  }
  char *name = xstrdup(tb->name);
  uint64_t id = act->table_id;
  mica_err *err = commit_u64s(m, REC_TABLE_REMOVE, &id, 1);
  if (!err)
    ms_event_add(m, "drop", 0, 0, "table %s (id %" PRIu64 ") removed", name,
                 id);
  free(name);
  return err;
}

static mica_err *done_locked(ms *m, uint64_t id, int code, uint64_t now) {
  ms_act act = {0};
  ms_tab *t;
  mica_err *err = take_action(m, id, &act, &t);
  if (err) return err;
  if (act.type == MS_ACT_DELETE_TABLE) return delete_done(m, &act, code, now);
  if (t == NULL) return NULL;
  return act.type == MS_ACT_OPEN ? open_done(m, act, t, code, now)
                                 : close_done(m, act, t, code, now);
}

mica_err *ms_action_done(ms *m, uint64_t id, int code, uint64_t now) {
  pthread_mutex_lock(&m->mu);
  m->now = now;
  mica_err *err = done_locked(m, id, code, now);
  pthread_mutex_unlock(&m->mu);
  return err;
}

mica_err *ms_actions_done(ms *m, const uint64_t *ids, const int *codes,
                          size_t n, uint64_t now) {
  pthread_mutex_lock(&m->mu);
  m->now = now;
  mica_err *first = NULL;
  batch b = {0};
  bool *was_move = xcalloc(n + 1, sizeof(*was_move));
  for (size_t i = 0; i < n; i++) {
    mica_err *err = NULL;
    ms_act *a = find_act(m, ids[i]);
    if (a != NULL && a->type == MS_ACT_OPEN && open_ok(codes[i])) {
      ms_act act;
      ms_tab *t;
      err = take_action(m, ids[i], &act, &t);
      if (!err && t != NULL) {
        uint64_t rec[2] = {t->id, t->assign_epoch};
        was_move[b.n] = t->moving;
        batch_add(&b, REC_SERVING, t, rec, 2);
      }
    } else {
      err = done_locked(m, ids[i], codes[i], now);
    }
    if (err && first == NULL) first = err;
    else err_free(err);
  }
  /* On failure the tablets stay opening without an action, and the next
   * tick sends their opens again. */
  mica_err *err = batch_commit(m, &b);
  for (size_t i = 0; i < b.n && !err; i++) opened(m, b.tabs[i], was_move[i]);
  if (err && first == NULL) first = err;
  else err_free(err);
  free(was_move);
  batch_free(&b);
  pthread_mutex_unlock(&m->mu);
  return first;
}
