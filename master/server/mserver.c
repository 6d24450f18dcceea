/* mserver: the Master service handlers and the lifecycle of the process.
 *
 * Each handler decodes nothing itself (the RPC module did), turns the
 * request into a call of the core, and turns the core's copies into a
 * response. Response messages are built in a per-call arena so that one
 * arena_free releases the whole tree after rpc_call_reply has serialized it.
 *
 * Handlers that only read the core (lookups, listings, events) answer on
 * the polling thread: the core's lock is held for microseconds and lookups
 * are the hot path of every client with a cold cache. Handlers that change
 * the core write and sync its log, and the ones that wait for the cluster
 * (split, move, merge) block for up to their deadline, so both run on
 * worker threads (RPC_OFFLOAD). After any change the action loop is kicked
 * so that the work the change created starts at once rather than at the
 * next tick. */
#include "master/server/mserver.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/log.h"
#include "master/server/maction.h"
#include "master/server/msrv_int.h"

/* ---- small helpers ---- */

/* Waits until the loop reports progress or `millis` milliseconds pass. */
static void wait_progress(msrv *s, uint64_t seen, int millis) {
  struct timespec ts = msrv_abstime(s, (uint64_t)millis * 1000);
  pthread_mutex_lock(&s->mu);
  while (s->progress == seen && !s->stopping)
    if (pthread_cond_timedwait(&s->progress_cv, &s->mu, &ts) != 0) break;
  pthread_mutex_unlock(&s->mu);
}

static uint64_t progress_now(msrv *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t p = s->progress;
  pthread_mutex_unlock(&s->mu);
  return p;
}

static bool stopping(msrv *s) {
  pthread_mutex_lock(&s->mu);
  bool st = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return st;
}

static void *a_new(arena *a, size_t n) {
  void *p = arena_alloc_aligned(a, n);
  memset(p, 0, n);
  return p;
}

static char *a_str(arena *a, const char *str) {
  size_t n = strlen(str) + 1;
  char *p = arena_alloc(a, n);
  memcpy(p, str, n);
  return p;
}

/* Fills a Status from `err` (NULL = OK); the message stays valid while
 * `err` lives. */
static rpc_status *status_of(rpc_status *st, const mica_err *err) {
  memset(st, 0, sizeof *st);
  rpc_status_set(st, err);
  return st;
}

/* ---- core values to messages (all memory in `a`) ---- */

/* The route of `t` as a wire message, with its location when `with_loc`. */
static rpc_tablet_route *route_msg_loc(arena *a, const ms_tablet *t,
                                       bool with_loc) {
  rpc_route_wire *w = a_new(a, sizeof(*w));
  rpc_route v = msrv_route_view(t);
  return rpc_route_to_wire(&v, with_loc, w);
}

static rpc_tablet_route *route_msg(arena *a, const ms_tablet *t) {
  return route_msg_loc(a, t, t->has_location);
}

static rpc_tablet_route *routes_msg(arena *a, const ms_tablet_list *l) {
  rpc_tablet_route *v = a_new(a, (l->n + 1) * sizeof(*v));
  for (size_t i = 0; i < l->n; i++) v[i] = *route_msg(a, &l->v[i]);
  return v;
}

static rpc_tablet_stats *stats_msg(arena *a, const ms_stats *st) {
  rpc_tablet_stats *m = a_new(a, sizeof(*m));
  memset(m, 0, sizeof *m);
  m->approx_bytes = st->bytes;
  m->approx_keys = st->keys;
  m->read_rate = st->read_rate;
  m->write_rate = st->write_rate;
  m->reads = st->reads;
  m->writes = st->writes;
  m->read_bytes = st->read_bytes;
  m->write_bytes = st->write_bytes;
  m->scans = st->scans;
  m->memtable_bytes = st->memtable_bytes;
  m->sstable_count = st->sstable_count;
  return m;
}

static rpc_table_info *table_msg(arena *a, const ms_table_info *x) {
  rpc_table_info *m = a_new(a, sizeof(*m));
  memset(m, 0, sizeof *m);
  m->table_id = x->table_id;
  m->name = a_str(a, x->name);
  m->tablet_count = x->tablet_count;
  m->approx_bytes = x->bytes;
  m->approx_keys = x->keys;
  m->created_ms = x->created_ms;
  m->options = msrv_opts_msg(a, &x->opts);
  return m;
}

static rpc_tablet_ref *ref_msg(arena *a, ms_ref r) {
  rpc_tablet_ref *m = a_new(a, sizeof(*m));
  memset(m, 0, sizeof *m);
  m->tablet_id = r.tablet_id;
  m->range_epoch = r.range_epoch;
  m->assign_epoch = r.assign_epoch;
  return m;
}

/* A report's tablet reference; an absent one is all zero. */
static ms_ref ref_of(const rpc_tablet_ref *t) {
  ms_ref r = {0};
  if (t != NULL) {
    r.tablet_id = t->tablet_id;
    r.range_epoch = t->range_epoch;
    r.assign_epoch = t->assign_epoch;
  }
  return r;
}

/* Reports from a register or heartbeat, converted in one pass; absent
 * sub-messages count as zero. With `loads` (a heartbeat), *loads gets each
 * report's sampled load (an absent one is zero: no load reported, no hot
 * keys; free with loads_free). Caller frees the reports array. */
static ms_report *reports_of(const rpc_tablet_report *reps, size_t n,
                             ms_load_report **loads) {
  ms_report *r = xcalloc(n + 1, sizeof(*r));
  ms_load_report *lr = loads ? xcalloc(n + 1, sizeof(*lr)) : NULL;
  for (size_t i = 0; i < n; i++) {
    const rpc_tablet_report *v = &reps[i];
    r[i].ref = ref_of(v->tablet);
    if (v->stats) {
      r[i].stats.bytes = v->stats->approx_bytes;
      r[i].stats.keys = v->stats->approx_keys;
      r[i].stats.read_rate = v->stats->read_rate;
      r[i].stats.write_rate = v->stats->write_rate;
      r[i].stats.reads = v->stats->reads;
      r[i].stats.writes = v->stats->writes;
      r[i].stats.read_bytes = v->stats->read_bytes;
      r[i].stats.write_bytes = v->stats->write_bytes;
      r[i].stats.scans = v->stats->scans;
      r[i].stats.memtable_bytes = v->stats->memtable_bytes;
      r[i].stats.sstable_count = v->stats->sstable_count;
    }
    if (lr == NULL) continue;
    lr[i].ref = r[i].ref;
    const rpc_tablet_load *l = v->load;
    if (l == NULL) continue;
    lr[i].load.ops_per_sec = l->ops_per_sec;
    lr[i].load.bytes_per_sec = l->bytes_per_sec;
    lr[i].load.hot = l->hot;
    size_t k = l->n_hot_keys < 16 ? l->n_hot_keys : 16;
    lr[i].load.keys = xcalloc(k + 1, sizeof(*lr[i].load.keys));
    for (size_t j = 0; j < k; j++) {
      ms_hot_key *h = &lr[i].load.keys[lr[i].load.n_keys];
      if (l->hot_keys[j].key.len == 0 ||
          l->hot_keys[j].key.len > MICA_MAX_KEY)
        continue;
      buf_append_slice(&h->key, l->hot_keys[j].key);
      h->ops_per_sec = l->hot_keys[j].ops_per_sec;
      snprintf(h->kind, sizeof h->kind, "%s", l->hot_keys[j].kind);
      lr[i].load.n_keys++;
    }
  }
  if (loads) *loads = lr;
  return r;
}

/* The load-split settings every registration and heartbeat reply carries. */
static rpc_load_split_config *load_split_msg(arena *a, const msrv *s) {
  rpc_load_split_config *c = a_new(a, sizeof(*c));
  memset(c, 0, sizeof *c);
  c->enabled = s->opt.load_split;
  c->ops_per_sec = s->opt.load_split_ops;
  c->bytes_per_sec = s->opt.load_split_bytes;
  c->window_ms = s->opt.load_split_window_ms;
  return c;
}

static void loads_free(ms_load_report *r, size_t n) {
  for (size_t i = 0; i < n; i++) ms_load_clear(&r[i].load);
  free(r);
}

/* ---- tables and routing ---- */

static void h_create_table(rpc_call *call, const void *req,
                           void *ctx) {
  msrv *s = ctx;
  const rpc_create_table_request *r = (const void *)req;
  slice *keys = xcalloc(r->n_split_keys + 1, sizeof(*keys));
  for (size_t i = 0; i < r->n_split_keys; i++)
    keys[i] = slice_make(r->split_keys[i].data, r->split_keys[i].len);
  ms_tablet_list l = {0};
  ms_table_opts o;
  mica_err *err = msrv_opts_from_wire(r->options, &o);
  if (err == NULL)
    err = ms_create_table_opts(s->core, r->name, keys, r->n_split_keys, &o,
                               msrv_now(s), &l);
  free(keys);
  arena *a = arena_new();
  rpc_create_table_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  ms_table_info *tables = NULL;
  size_t n_tables = 0;
  if (err == NULL) {
    resp.tablets = routes_msg(a, &l);
    resp.n_tablets = l.n;
    mica_err *lerr = ms_list_tables(s->core, &tables, &n_tables);
    err_free(lerr);
    for (size_t i = 0; i < n_tables; i++)
      if (strcmp(tables[i].name, r->name) == 0)
        resp.table = table_msg(a, &tables[i]);
    LOG_I("table %s created with %zu tablets", r->name, l.n);
  }
  rpc_call_reply(call, &resp);
  ms_table_infos_free(tables, n_tables);
  arena_free(a);
  ms_tablet_list_free(&l);
  err_free(err);
  msrv_kick(s);
}

static void h_drop_table(rpc_call *call, const void *req,
                         void *ctx) {
  msrv *s = ctx;
  const rpc_drop_table_request *r = (const void *)req;
  mica_err *err = ms_drop_table(s->core, r->name, msrv_now(s));
  rpc_drop_table_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  if (err == NULL) LOG_I("table %s dropped", r->name);
  rpc_call_reply(call, &resp);
  err_free(err);
  msrv_kick(s);
}

static void h_list_tables(rpc_call *call, const void *req,
                          void *ctx) {
  (void)req;
  msrv *s = ctx;
  ms_table_info *v = NULL;
  size_t n = 0;
  mica_err *err = ms_list_tables(s->core, &v, &n);
  arena *a = arena_new();
  rpc_list_tables_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  resp.tables = a_new(a, (n + 1) * sizeof(*resp.tables));
  /* Only the tables the caller may read (docs/security.md). */
  for (size_t i = 0; i < n; i++)
    if (rpc_call_may_read_table(call, v[i].name))
      resp.tables[resp.n_tables++] = *table_msg(a, &v[i]);
  rpc_call_reply(call, &resp);
  ms_table_infos_free(v, n);
  arena_free(a);
  err_free(err);
}

static void h_lookup(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_lookup_tablets_request *r = (const void *)req;
  slice key = slice_make(r->key.data, r->key.len);
  ms_tablet_list l = {0};
  mica_err *err = r->before
                      ? ms_lookup_before(s->core, r->table, key, r->count, &l)
                      : ms_lookup(s->core, r->table, key, r->count, &l);
  arena *a = arena_new();
  rpc_lookup_tablets_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  resp.tablets = routes_msg(a, &l);
  resp.n_tablets = l.n;
  ms_table_opts o;
  mto_init(&o);
  if (err == NULL) err_free(ms_table_options(s->core, r->table, &resp.table_id, &o));
  resp.salt_buckets = o.salt_buckets;
  rpc_call_reply(call, &resp);
  arena_free(a);
  ms_tablet_list_free(&l);
  err_free(err);
}

static void h_list_tablets(rpc_call *call, const void *req,
                           void *ctx) {
  msrv *s = ctx;
  const rpc_list_tablets_request *r = (const void *)req;
  ms_tablet_list l = {0};
  mica_err *err = ms_list_tablets(s->core, r->table, r->include_retired, &l);
  arena *a = arena_new();
  rpc_list_tablets_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  resp.tablets = a_new(a, (l.n + 1) * sizeof(*resp.tablets));
  for (size_t i = 0; i < l.n; i++) {
    const ms_tablet *t = &l.v[i];
    rpc_tablet_entry *e = &resp.tablets[i];
    memset(e, 0, sizeof *e);
    const rpc_tablet_route *tr = route_msg_loc(a, t, t->server_id != 0);
    e->desc = tr->desc;
    e->location = tr->location;
    e->state = t->state;
    e->stats = stats_msg(a, &t->stats);
  }
  resp.n_tablets = l.n;
  rpc_call_reply(call, &resp);
  arena_free(a);
  ms_tablet_list_free(&l);
  err_free(err);
}

static void h_list_servers(rpc_call *call, const void *req,
                           void *ctx) {
  msrv *s = ctx;
  const rpc_list_servers_request *r = (const void *)req;
  ms_server_info *v = NULL;
  size_t n = 0;
  mica_err *err = ms_list_servers(s->core, r->include_dead, msrv_now(s), &v,
                                  &n);
  arena *a = arena_new();
  rpc_list_servers_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  resp.servers = a_new(a, (n + 1) * sizeof(*resp.servers));
  for (size_t i = 0; i < n; i++) {
    rpc_server_info *x = &resp.servers[i];
    memset(x, 0, sizeof *x);
    x->server_id = v[i].server_id;
    x->address = a_str(a, v[i].address);
    x->state = v[i].state;
    x->lease_age_ms = v[i].lease_age_ms;
    x->tablet_count = v[i].tablet_count;
    x->approx_bytes = v[i].bytes;
    x->read_rate = v[i].read_rate;
    x->write_rate = v[i].write_rate;
    x->registered_ms = v[i].registered_ms;
    x->http_address = a_str(a, v[i].http_address);
    x->draining = v[i].draining;
  }
  resp.n_servers = n;
  rpc_call_reply(call, &resp);
  ms_server_infos_free(v, n);
  arena_free(a);
  err_free(err);
}

/* ---- operator requests that wait for the cluster ---- */

/* How long a waiting call may wait: its deadline, capped by the option. */
static int64_t wait_budget_ms(msrv *s, rpc_call *call) {
  int64_t left = rpc_call_remaining_ms(call);
  return left < s->opt.wait_timeout_ms ? left : s->opt.wait_timeout_ms;
}

/* Why a waiting call must stop now (NULL = keep waiting). */
static mica_err *wait_over(msrv *s, rpc_call *call, uint64_t until,
                           const char *what) {
  if (stopping(s))
    return err_new(MICA_UNAVAILABLE, "master shutting down while %s", what);
  if (rpc_call_cancelled(call))
    return err_new(MICA_CANCELLED, "caller went away while %s", what);
  if (msrv_now(s) >= until)
    return err_new(MICA_DEADLINE_EXCEEDED, "gave up waiting while %s; the "
                   "master keeps working on it", what);
  return NULL;
}

static void h_split(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_split_tablet_request *r = (const void *)req;
  slice key = slice_make(r->split_key.data, r->split_key.len);
  ms_tablet t = {0};
  rpc_ts_split_tablet_response *tr = NULL;
  mica_err *err = ms_prepare_split(s->core, r->tablet_id, key, &t);
  if (err != NULL && err_code(err) == MICA_OUT_OF_RANGE) {
    /* To a data client OUT_OF_RANGE is a routing error worth a retry; an
     * operator's split key outside the tablet is simply a bad argument. */
    mica_err *bad = err_new(MICA_INVALID_ARGUMENT, "%s", err_msg(err));
    err_free(err);
    err = bad;
  }
  if (err == NULL) {
    rpc_channel *ch;
    err = msrv_channel(s, t.address, &ch);
    uint64_t until = msrv_now(s) + (uint64_t)wait_budget_ms(s, call) * 1000;
    while (err == NULL) {
      uint64_t seen = progress_now(s);
      rpc_tablet_ref ref = {0};
      ref.tablet_id = t.tablet_id;
      ref.range_epoch = t.range_epoch;
      ref.assign_epoch = t.assign_epoch;
      rpc_ts_split_tablet_request q = {0};
      q.tablet = &ref;
      q.split_key = r->split_key;
      q.master_epoch = s->opt.master_epoch;
      void *out = NULL;
      err = rpc_unary(ch, &rpc_m_ts_split_tablet, &q,
                      wait_budget_ms(s, call), &out);
      if (err != NULL) {
        err = err_wrap(err, "tablet server %" PRIu64 " (%s) did not answer "
                       "the split of tablet %" PRIu64, t.server_id,
                       t.address, t.tablet_id);
        break;
      }
      tr = (rpc_ts_split_tablet_response *)out;
      err = rpc_status_err(tr->status);
      msrv_note_fenced(s, err);
      if (err == NULL || err_code(err) != MICA_LEASE_EXPIRED) break;
      /* The server is between leases and refused before touching the
       * tablet: this master has just started or taken over and the
       * server's first heartbeat to it is on its way (docs/ha.md, "An
       * operator split right after a failover"). The split waits for the
       * renewal, as a move waits for its open. */
      mica_err *over = wait_over(s, call, until, "waiting for a lease");
      if (over != NULL) {
        err_free(over);
        err = err_wrap(err, "tablet %" PRIu64 " not split: its tablet server "
                       "%" PRIu64 " (%s) did not renew its lease in time",
                       t.tablet_id, t.server_id, t.address);
        break;
      }
      err_free(err);
      err = NULL;
      rpc_msg_free(tr);
      tr = NULL;
      wait_progress(s, seen, 50);
    }
  }
  rpc_split_tablet_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  if (err == NULL) {
    resp.left = tr->left;
    resp.right = tr->right;
    LOG_I("tablet %" PRIu64 " split on operator request", r->tablet_id);
  }
  rpc_call_reply(call, &resp);
  rpc_msg_free(tr);
  ms_tablet_clear(&t);
  err_free(err);
  msrv_kick(s);
}

static void h_move(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_move_tablet_request *r = (const void *)req;
  uint64_t until = msrv_now(s) + (uint64_t)wait_budget_ms(s, call) * 1000;
  ms_tablet before = {0}, now_t = {0};
  ms_move mv;
  bool have_now = false;
  mica_err *err = ms_get_tablet(s->core, r->tablet_id, &before);
  if (err == NULL)
    err = ms_request_move(s->core, r->tablet_id, r->target_server_id,
                          msrv_now(s), &mv);
  if (err == NULL) {
    LOG_I("tablet %" PRIu64 " moving from server %" PRIu64 " to %" PRIu64
          " on operator request", mv.tablet_id, mv.from_server_id,
          mv.to_server_id);
    msrv_kick(s);
    char what[96];
    snprintf(what, sizeof(what), "tablet %" PRIu64 " moves to server %"
             PRIu64, mv.tablet_id, mv.to_server_id);
    for (;;) {
      uint64_t seen = progress_now(s);
      ms_tablet_clear(&now_t);
      memset(&now_t, 0, sizeof(now_t));
      err = ms_get_tablet(s->core, r->tablet_id, &now_t);
      if (err != NULL) break;
      have_now = true;
      if (now_t.state == MS_SERVING) {
        if (now_t.server_id != mv.to_server_id ||
            now_t.assign_epoch <= before.assign_epoch)
          err = err_new(MICA_ABORTED, "the move of tablet %" PRIu64 " to "
                        "server %" PRIu64 " did not complete: it serves on "
                        "server %" PRIu64 " (see ListEvents)", mv.tablet_id,
                        mv.to_server_id, now_t.server_id);
        break;
      }
      if (now_t.state == MS_SPLIT || now_t.state == MS_MERGED) {
        err = err_new(MICA_ABORTED, "tablet %" PRIu64 " was %s during its "
                      "move", mv.tablet_id, ms_tablet_state_name(now_t.state));
        break;
      }
      if ((err = wait_over(s, call, until, what)) != NULL) break;
      wait_progress(s, seen, 20);
    }
  }
  arena *a = arena_new();
  rpc_move_tablet_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  if (err == NULL && have_now) resp.tablet = route_msg(a, &now_t);
  rpc_call_reply(call, &resp);
  arena_free(a);
  ms_tablet_clear(&before);
  ms_tablet_clear(&now_t);
  err_free(err);
}

static void h_merge(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_merge_tablets_request *r = (const void *)req;
  uint64_t until = msrv_now(s) + (uint64_t)wait_budget_ms(s, call) * 1000;
  ms_tablet left = {0}, right = {0};
  ms_tablet_list l = {0};
  mica_err *err = ms_get_tablet(s->core, r->left_tablet_id, &left);
  if (err == NULL) err = ms_get_tablet(s->core, r->right_tablet_id, &right);
  if (err == NULL &&
      (left.table_id != right.table_id || right.start_key.len == 0 ||
       !slice_eq(buf_slice(&left.end_key), buf_slice(&right.start_key))))
    err = err_new(MICA_INVALID_ARGUMENT, "tablets %" PRIu64 " and %" PRIu64
                  " are not adjacent (left's end must be right's start)",
                  left.tablet_id, right.tablet_id);
  /* A merged tablet no server can open would leave its range unserved. */
  if (err == NULL) err = msrv_merge_blocker(s);
  if (err == NULL)
    err = ms_request_merge(s->core, r->left_tablet_id, r->right_tablet_id,
                           msrv_now(s));
  if (err == NULL) {
    LOG_I("merging tablets %" PRIu64 " and %" PRIu64 " on operator request",
          left.tablet_id, right.tablet_id);
    msrv_kick(s);
    char what[96];
    snprintf(what, sizeof(what), "tablets %" PRIu64 " and %" PRIu64
             " merge", left.tablet_id, right.tablet_id);
    for (;;) {
      uint64_t seen = progress_now(s);
      ms_tablet_list_free(&l);
      err = ms_lookup(s->core, left.table_name, buf_slice(&left.start_key), 1,
                      &l);
      if (err != NULL) break;
      const ms_tablet *m = l.n ? &l.v[0] : NULL;
      if (m && m->tablet_id != left.tablet_id &&
          m->tablet_id != right.tablet_id &&
          slice_eq(buf_slice(&m->start_key), buf_slice(&left.start_key)) &&
          slice_eq(buf_slice(&m->end_key), buf_slice(&right.end_key)) &&
          m->state == MS_SERVING)
        break;
      if (m && m->tablet_id == left.tablet_id && m->state == MS_SERVING) {
        ms_tablet rt = {0};
        bool back = ms_get_tablet(s->core, right.tablet_id, &rt) == NULL &&
                    rt.state == MS_SERVING;
        ms_tablet_clear(&rt);
        if (back) {
          err = err_new(MICA_ABORTED, "the merge of tablets %" PRIu64
                        " and %" PRIu64 " was given up: both serve again "
                        "(see ListEvents)", left.tablet_id, right.tablet_id);
          break;
        }
      }
      if ((err = wait_over(s, call, until, what)) != NULL) break;
      wait_progress(s, seen, 20);
    }
  }
  arena *a = arena_new();
  rpc_merge_tablets_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  if (err == NULL && l.n) resp.merged = route_msg(a, &l.v[0]);
  rpc_call_reply(call, &resp);
  arena_free(a);
  ms_tablet_list_free(&l);
  ms_tablet_clear(&left);
  ms_tablet_clear(&right);
  err_free(err);
}

static void h_configure(rpc_call *call, const void *req,
                        void *ctx) {
  msrv *s = ctx;
  const rpc_configure_request *r = (const void *)req;
  bool bal = r->balancer_enabled, mer = r->merge_enabled;
  bool set_bal = r->has_balancer_enabled;
  bool set_mer = r->has_merge_enabled;
  bool bal_now = false, mer_now = false;
  int mode = MS_BAL_OFF, mode_now = MS_BAL_OFF;
  bool set_mode = r->balancer_mode[0] != '\0';
  mica_err *err = set_mer && mer ? msrv_merge_blocker(s) : NULL;
  if (err == NULL && set_mode && !ms_balancer_mode_parse(r->balancer_mode,
                                                         &mode))
    err = err_new(MICA_INVALID_ARGUMENT, "balancer mode \"%.40s\": expected "
                  "auto, suggest or off", r->balancer_mode);
  if (err == NULL && set_mode) {
    set_bal = false;
    err = ms_set_balancer_mode(s->core, &mode, NULL);
  }
  if (err == NULL) {
    err = ms_configure(s->core, set_bal ? &bal : NULL, set_mer ? &mer : NULL,
                       &bal_now, &mer_now);
    /* An operator's explicit choice ends a suspension by the loop. */
    if (err == NULL && set_mer) {
      pthread_mutex_lock(&s->mu);
      s->merge_suspended = false;
      pthread_mutex_unlock(&s->mu);
    }
  } else {
    err_free(ms_configure(s->core, NULL, NULL, &bal_now, &mer_now));
  }
  rpc_configure_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  err_free(ms_set_balancer_mode(s->core, NULL, &mode_now));
  resp.balancer_enabled = bal_now;
  resp.merge_enabled = mer_now;
  resp.balancer_mode = ms_balancer_mode_name(mode_now);
  rpc_call_reply(call, &resp);
  err_free(err);
  msrv_kick(s);
}

static void h_events(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_list_events_request *r = (const void *)req;
  ms_event *v = NULL;
  size_t n = 0;
  ms_events(s->core, r->limit, &v, &n);
  arena *a = arena_new();
  rpc_list_events_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, NULL);
  resp.events = a_new(a, (n + 1) * sizeof(*resp.events));
  for (size_t i = 0; i < n; i++) {
    rpc_event *e = &resp.events[i];
    memset(e, 0, sizeof *e);
    e->time_ms = v[i].time_ms;
    e->kind = v[i].kind;
    e->text = v[i].text;
    e->tablet_id = v[i].tablet_id;
    e->server_id = v[i].server_id;
  }
  resp.n_events = n;
  rpc_call_reply(call, &resp);
  arena_free(a);
  free(v);
}

/* What this process is. Answers on the polling thread: it reads only
 * fields of the msrv, one of them under `mu` for microseconds. */
static void h_get_info(rpc_call *call, const void *req,
                       void *ctx) {
  (void)req;
  msrv *s = ctx;
  pthread_mutex_lock(&s->mu);
  char *http = xstrdup(s->http_address ? s->http_address : "");
  pthread_mutex_unlock(&s->mu);
  rpc_get_info_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, NULL);
  resp.version = MICA_VERSION;
  resp.rpc_address = msrv_address(s);
  resp.http_address = http;
  resp.start_time_ms = s->start_wall_ms;
  resp.cluster_name = s->cluster_name;
  rpc_call_reply(call, &resp);
  free(http);
}

/* ---- tablet servers ---- */

static rpc_tablet_ref *close_list(arena *a, const ms_server_reply *rp) {
  rpc_tablet_ref *v = a_new(a, (rp->n_close + 1) * sizeof(*v));
  for (size_t i = 0; i < rp->n_close; i++) v[i] = *ref_msg(a, rp->close[i]);
  return v;
}

static void h_register(rpc_call *call, const void *req,
                       void *ctx) {
  msrv *s = ctx;
  const rpc_register_server_request *r = (const void *)req;
  ms_report *rep = reports_of(r->tablets, r->n_tablets, NULL);
  ms_server_reply rp;
  mica_err *err = ms_handle_register(s->core, r->address, r->http_address,
                                     r->previous_server_id, r->incarnation,
                                     rep, r->n_tablets, msrv_now(s), &rp);
  free(rep);
  arena *a = arena_new();
  rpc_register_server_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  if (err == NULL) {
    msrv_set_caps(s, rp.server_id, r->can_merge);
    resp.server_id = rp.server_id;
    resp.lease_ms = rp.lease_ms;
    resp.heartbeat_interval_ms = rp.heartbeat_ms;
    resp.close_tablets = close_list(a, &rp);
    resp.n_close_tablets = rp.n_close;
    resp.split_threshold_bytes = s->opt.split_threshold_bytes;
    resp.master_epoch = s->opt.master_epoch;
    resp.access = &s->access_wire;
    resp.load_split = load_split_msg(a, s);
    LOG_I("server %" PRIu64 " registered at %s reporting %zu tablets (%zu "
          "to close)", rp.server_id, r->address, r->n_tablets, rp.n_close);
  } else {
    LOG_W("registration from %s refused: %s", r->address ? r->address : "",
          err_msg(err));
  }
  msrv_access_lock(s);
  rpc_call_reply(call, &resp);
  msrv_access_unlock(s);
  arena_free(a);
  if (err == NULL) ms_server_reply_free(&rp);
  err_free(err);
  msrv_kick(s);
}

static void h_heartbeat(rpc_call *call, const void *req,
                        void *ctx) {
  msrv *s = ctx;
  const rpc_heartbeat_request *r = (const void *)req;
  /* The request is freed with the reply: its count is kept for lr. */
  size_t n_reports = r->n_tablets;
  ms_load_report *lr = NULL;
  ms_report *rep = reports_of(r->tablets, n_reports, &lr);
  ms_server_reply rp;
  mica_err *err = ms_handle_heartbeat(s->core, r->server_id, r->incarnation,
                                      rep, r->n_tablets, msrv_now(s), &rp);
  free(rep);
  arena *a = arena_new();
  rpc_heartbeat_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  if (err == NULL) {
    msrv_set_caps(s, r->server_id, r->can_merge);
    ms_server_disk(s->core, r->server_id, r->disk_below_reserve);
    ms_note_load(s->core, r->server_id, lr, r->n_tablets, msrv_now(s));
    resp.lease_ms = rp.lease_ms;
    resp.master_epoch = s->opt.master_epoch;
    resp.close_tablets = close_list(a, &rp);
    resp.n_close_tablets = rp.n_close;
    resp.merged = a_new(a, (rp.n_merged + 1) * sizeof(*resp.merged));
    for (size_t i = 0; i < rp.n_merged; i++) {
      rpc_merged_input *x = &resp.merged[i];
      memset(x, 0, sizeof *x);
      x->tablet_id = rp.merged[i].input_id;
      x->merged = route_msg(a, &rp.merged[i].merged);
    }
    resp.n_merged = rp.n_merged;
    resp.access = &s->access_wire;
    resp.load_split = load_split_msg(a, s);
    resp.table_options = a_new(a, (rp.n_table_opts + 1) * sizeof(*resp.table_options));
    for (size_t i = 0; i < rp.n_table_opts; i++) {
      resp.table_options[i].table_id = rp.table_opts[i].table_id;
      resp.table_options[i].options = msrv_opts_msg(a, &rp.table_opts[i].opts);
    }
    resp.n_table_options = rp.n_table_opts;
  }
  msrv_access_lock(s);
  rpc_call_reply(call, &resp);
  msrv_access_unlock(s);
  arena_free(a);
  loads_free(lr, n_reports);
  if (err == NULL) ms_server_reply_free(&rp);
  else msrv_kick(s); /* a refused heartbeat may have declared a death */
  err_free(err);
}

static void h_report_split(rpc_call *call, const void *req,
                           void *ctx) {
  msrv *s = ctx;
  const rpc_report_split_request *r = (const void *)req;
  ms_ref parent = {0};
  if (r->parent) {
    parent.tablet_id = r->parent->tablet_id;
    parent.range_epoch = r->parent->range_epoch;
    parent.assign_epoch = r->parent->assign_epoch;
  }
  ms_tablet_list l = {0};
  mica_err *err = ms_handle_split(
      s->core, r->server_id, parent,
      slice_make(r->split_key.data, r->split_key.len), msrv_now(s), &l);
  arena *a = arena_new();
  rpc_report_split_response resp = {0};
  rpc_status st;
  resp.status = status_of(&st, err);
  resp.master_epoch = s->opt.master_epoch;
  if (err == NULL && l.n == 2) {
    resp.left = route_msg(a, &l.v[0]);
    resp.right = route_msg(a, &l.v[1]);
    LOG_I("tablet %" PRIu64 " split into %" PRIu64 " and %" PRIu64
          " (proposed by server %" PRIu64 "%s)", parent.tablet_id,
          l.v[0].tablet_id, l.v[1].tablet_id, r->server_id,
          r->for_load ? ", for load" : "");
    if (r->for_load)
      ms_note_load_split(s->core, l.v[0].tablet_id, l.v[1].tablet_id,
                         msrv_now(s));
  } else if (err != NULL) {
    LOG_I("split of tablet %" PRIu64 " proposed by server %" PRIu64
          " refused: %s", parent.tablet_id, r->server_id, err_msg(err));
  }
  rpc_call_reply(call, &resp);
  arena_free(a);
  ms_tablet_list_free(&l);
  err_free(err);
  msrv_kick(s);
}

/* ---- lifecycle ---- */

void msrv_options_init(msrv_options *o) {
  memset(o, 0, sizeof(*o));
  ms_options_init(&o->core);
  o->rpc_threads = 2;
  o->tick_us = 100 * 1000;
  o->open_timeout_ms = 30 * 1000;
  o->close_timeout_ms = 30 * 1000;
  o->wait_timeout_ms = 60 * 1000;
  o->orphan_sweep_us = 10ull * 60 * 1000 * 1000;
  o->load_split = true;
  o->load_split_ops = 3000;
  o->load_split_bytes = 30ull << 20;
  o->load_split_window_ms = 10 * 1000;
}

/* ---- admin actions: recorded with who asked (docs/security.md) ---- */

static const struct {
  const rpc_method *m;
  rpc_handler_fn fn;
} admin_fns[] = {
    {&rpc_m_master_create_table, h_create_table},
    {&rpc_m_master_drop_table, h_drop_table},
    {&rpc_m_master_split_tablet, h_split},
    {&rpc_m_master_move_tablet, h_move},
    {&rpc_m_master_merge_tablets, h_merge},
    {&rpc_m_master_balance, msrv_h_balance},
    {&rpc_m_master_configure, h_configure},
    {&rpc_m_master_alter_table, msrv_h_alter_table},
    {&rpc_m_master_drain_server, msrv_h_drain},
};

static void h_admin(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_method *m = rpc_call_method(call);
  char what[160];
  const char *name = strrchr(m->path, '/') + 1;
  if (m == &rpc_m_master_create_table)
    snprintf(what, sizeof what, "%s %s", name,
             ((const rpc_create_table_request *)req)->name);
  else if (m == &rpc_m_master_alter_table)
    snprintf(what, sizeof what, "%s %s", name,
             ((const rpc_alter_table_request *)req)->table);
  else if (m == &rpc_m_master_drop_table)
    snprintf(what, sizeof what, "%s %s", name,
             ((const rpc_drop_table_request *)req)->name);
  else if (m == &rpc_m_master_split_tablet)
    snprintf(what, sizeof what, "%s of tablet %" PRIu64, name,
             ((const rpc_split_tablet_request *)req)->tablet_id);
  else if (m == &rpc_m_master_move_tablet)
    snprintf(what, sizeof what, "%s of tablet %" PRIu64, name,
             ((const rpc_move_tablet_request *)req)->tablet_id);
  else if (m == &rpc_m_master_drain_server)
    snprintf(what, sizeof what, "%s%s of server %" PRIu64 " %.60s", name,
             ((const rpc_drain_server_request *)req)->undrain ? " (undrain)"
                                                              : "",
             ((const rpc_drain_server_request *)req)->server_id,
             ((const rpc_drain_server_request *)req)->address);
  else
    snprintf(what, sizeof what, "%s", name);
  const char *who = rpc_call_identity(call);
  ms_audit(s->core, who, what);
  for (size_t i = 0; i < sizeof admin_fns / sizeof admin_fns[0]; i++)
    if (admin_fns[i].m == m) {
      admin_fns[i].fn(call, req, ctx);
      return;
    }
}

/* The cluster secret, the token table and the checker built from them. */
static mica_err *auth_setup(msrv *s) {
  mica_err *err;
  if (s->opt.secret_file != NULL) {
    err = rpc_secret_read(s->opt.secret_file, &s->secret);
  } else {
    bool created = false;
    err = rpc_secret_load_or_create(s->root, &s->secret, &created);
    if (err == NULL && created)
      LOG_I("created the cluster secret %s/%s (mode 0600)", s->root,
            RPC_SECRET_FILE);
  }
  if (err == NULL && s->opt.tokens_file != NULL) {
    err = rpc_access_load(s->opt.tokens_file, &s->access);
    if (err == NULL)
      LOG_I("client tokens required: %zu grants from %s", s->access->n,
            s->opt.tokens_file);
  }
  if (err != NULL) return err;
  if (s->access == NULL) {
    s->access = xcalloc(1, sizeof *s->access); /* enabled = false: open */
    LOG_I("no --tokens file: client calls are open (cluster membership is "
          "still required of servers)");
  }
  rpc_access_to_wire(s->access, &s->access_wire);
  rpc_access *copy;
  err = rpc_access_from_wire(&s->access_wire, &copy);
  if (err == NULL) s->auth = rpc_auth_new(&s->secret, copy);
  return err;
}

static mica_err *register_handlers(msrv *s) {
  const rpc_handler h[] = {
      {&rpc_m_master_create_table, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_drop_table, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_list_tables, h_list_tables, s, 0},
      {&rpc_m_master_lookup_tablets, h_lookup, s, 0},
      {&rpc_m_master_list_tablets, h_list_tablets, s, 0},
      {&rpc_m_master_list_servers, h_list_servers, s, 0},
      {&rpc_m_master_split_tablet, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_move_tablet, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_merge_tablets, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_balance, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_configure, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_list_events, h_events, s, 0},
      {&rpc_m_master_register_server, h_register, s, RPC_OFFLOAD},
      {&rpc_m_master_heartbeat, h_heartbeat, s, RPC_OFFLOAD},
      {&rpc_m_master_report_split, h_report_split, s, RPC_OFFLOAD},
      {&rpc_m_master_get_info, h_get_info, s, 0},
      {&rpc_m_master_alter_table, h_admin, s, RPC_OFFLOAD},
      {&rpc_m_master_drain_server, h_admin, s, RPC_OFFLOAD},
  };
  mica_err *err = rpc_server_register(s->rpc, h, sizeof(h) / sizeof(h[0]));
  return err != NULL ? err : msrv_snapshot_register(s);
}

mica_err *msrv_start(const msrv_options *o, msrv **out) {
  *out = NULL;
  if (o->core.data_root == NULL || o->core.data_root[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "a data root is required");
  msrv *s = xcalloc(1, sizeof(*s));
  s->opt = *o;
  if (s->opt.orphan_sweep_us == 0) /* a caller's zeroed options */
    s->opt.orphan_sweep_us = 10ull * 60 * 1000 * 1000;
  s->root = xstrdup(o->core.data_root);
  s->opt.core.data_root = s->root;
  s->cluster_name = xstrdup(o->cluster_name ? o->cluster_name : "");
  s->opt.cluster_name = s->cluster_name;
  if (s->opt.core.env == NULL) s->opt.core.env = env_posix();
  s->start_wall_ms = env_wall_micros(s->opt.core.env) / 1000;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->ch_mu, NULL);
  pthread_mutex_init(&s->access_mu, NULL);
  pthread_cond_init(&s->kick_cv, NULL);
  pthread_cond_init(&s->progress_cv, NULL);
  mica_err *err = ms_open(&s->opt.core, msrv_now(s), &s->core);
  if (err == NULL && (o->balancer || o->merges))
    err = ms_configure(s->core, o->balancer, o->merges, NULL, NULL);
  if (err == NULL && o->balancer_mode)
    err = ms_set_balancer_mode(s->core, o->balancer_mode, NULL);
  if (err == NULL) err = auth_setup(s);
  rpc_server_opts ro = {0};
  ro.listen = o->listen;
  ro.threads = o->rpc_threads;
  ro.auth = s->auth;
  ro.table_check = msrv_table_check;
  ro.table_check_ctx = s;
  rpc_tls serve_tls = {o->tls.cert_file, o->tls.key_file, o->tls.ca_file,
                       o->tls.require_client_cert, o->tls.request_client_cert};
  if (o->tls.cert_file != NULL) ro.tls = &serve_tls;
  if (err == NULL) err = rpc_server_new(&ro, &s->rpc);
  if (err == NULL) err = register_handlers(s);
  if (err == NULL) err = msrv_loop_start(s);
  if (err == NULL) err = rpc_server_start(s->rpc);
  if (err != NULL) {
    msrv_stop(s);
    return err;
  }
  LOG_I("master serving on %s, data root %s%s", rpc_server_address(s->rpc),
        s->root, ms_in_grace(s->core, msrv_now(s))
                     ? " (restart: waiting one lease for servers to report)"
                     : "");
  *out = s;
  return NULL;
}

const char *msrv_address(const msrv *s) { return rpc_server_address(s->rpc); }

void msrv_set_http_address(msrv *s, const char *address) {
  char *copy = address ? xstrdup(address) : NULL;
  pthread_mutex_lock(&s->mu);
  char *old = s->http_address;
  s->http_address = copy;
  pthread_mutex_unlock(&s->mu);
  free(old);
}

ms *msrv_core(msrv *s) { return s->core; }

mica_err *msrv_authorize_read(void *msrv_ptr, const char *authorization) {
  msrv *s = msrv_ptr;
  rpc_identity id;
  return rpc_auth_check_http(s->auth, "the status API", authorization,
                             RPC_ROLE_READ, &id);
}

void msrv_stop(msrv *s) {
  if (s == NULL) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->kick_cv);
  pthread_cond_broadcast(&s->progress_cv);
  pthread_mutex_unlock(&s->mu);
  /* Calls first: waiting handlers see `stopping` and end their calls, and
   * no handler can kick a loop that is gone. */
  rpc_server_free(s->rpc);
  msrv_loop_stop(s);
  for (size_t i = 0; i < s->n_chans; i++) rpc_channel_free(s->chans[i]);
  free(s->chans);
  rpc_auth_free(s->auth);
  rpc_access_wire_free(&s->access_wire);
  rpc_access_free(s->access);
  ms_close(s->core);
  pthread_cond_destroy(&s->progress_cv);
  pthread_cond_destroy(&s->kick_cv);
  pthread_mutex_destroy(&s->ch_mu);
  pthread_mutex_destroy(&s->access_mu);
  pthread_mutex_destroy(&s->mu);
  free(s->caps);
  free(s->http_address);
  free(s->cluster_name);
  free(s->root);
  free(s);
}
