/* client: the mica_client handle, its errors, connections, retry policy and
 * routing, plus the single-key calls (put, get, delete) built on them.
 *
 * The routing loop of every data call is the same: locate the tablet for a
 * key (routing cache, else the master with prefetch), call its server naming
 * the tablet and the epochs believed, and on a routing error install what
 * the server said and go again. Only when the server said nothing useful or
 * could not be reached does the next locate fall through to the master.
 * The error message is kept per thread because one handle serves many
 * threads at once. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "common/env.h"
#include "common/log.h"
#include "master/zk/mzk_locate.h"

static __thread char tls_msg[1024];
static __thread bool tls_set;

const char *mica_version(void) { return MICA_VERSION; }

void mica_free(void *p) { free(p); }

const char *mica_errmsg(void) { return tls_set ? tls_msg : "ok"; }

int mcl_finish(mica_err *e) {
  if (e == NULL) {
    tls_set = false;
    return MICA_OK;
  }
  snprintf(tls_msg, sizeof tls_msg, "%s", err_msg(e));
  tls_set = true;
  return err_take_code(e);
}

void mica_options_init(mica_options *o) {
  memset(o, 0, sizeof *o);
  o->deadline_ms = 10000;
  o->max_attempts = 64;
  o->cache_routes = 100000;
  o->prefetch = 32;
  o->backoff_initial_ms = 10;
  o->backoff_max_ms = 1000;
}

int mica_open(const char *master, const mica_options *opts, mica_client **out) {
  *out = NULL;
  mica_options o;
  if (opts != NULL)
    o = *opts;
  else
    mica_options_init(&o);
  if (o.deadline_ms <= 0 || o.max_attempts <= 0 || o.cache_routes == 0 ||
      o.prefetch == 0 || o.prefetch > 1000 || o.backoff_initial_ms <= 0 ||
      o.backoff_max_ms < o.backoff_initial_ms)
    return mcl_finish(err_new(MICA_INVALID_ARGUMENT,
                             "bad option: deadline_ms, max_attempts, cache_routes, "
                             "backoff_initial_ms must be > 0, prefetch in 1..1000, "
                             "backoff_max_ms >= backoff_initial_ms"));
  if (master == NULL || master[0] == '\0')
    return mcl_finish(err_new(MICA_INVALID_ARGUMENT, "master address: empty"));
  if (o.token != NULL && (o.token[0] == '\0' || strpbrk(o.token, " \t\r\n")))
    return mcl_finish(err_new(MICA_INVALID_ARGUMENT,
                              "bad option: token is empty or has white "
                              "space"));
  if (o.tls_ca == NULL && (o.tls_cert != NULL || o.tls_key != NULL))
    return mcl_finish(err_new(MICA_INVALID_ARGUMENT,
                              "bad option: tls_cert and tls_key need "
                              "tls_ca"));
  rpc_tls tls = {o.tls_cert, o.tls_key, o.tls_ca};
  rpc_channel_opts co = {.token = o.token, .tls = o.tls_ca ? &tls : NULL};
  rpc_channel *ch = NULL;
  mzk_locator *loc = NULL;
  /* With a list or zk://, master channels come from the connection cache
   * (conn_get), which carries the same token and TLS options. */
  mica_err *e = mzk_spec_is_ha(master)
                    ? mzk_locator_open(master, (int)o.deadline_ms, &loc)
                    : rpc_channel_new(master, &co, &ch);
  if (e != NULL)
    return mcl_finish(err_wrap(e, o.tls_ca ? "master address or TLS files"
                                           : "master address"));
  mica_client *c = xcalloc(1, sizeof *c);
  c->loc = loc;
  c->opts = o;
  c->opts.token = o.token != NULL ? xstrdup(o.token) : NULL;
  c->opts.tls_ca = o.tls_ca != NULL ? xstrdup(o.tls_ca) : NULL;
  c->opts.tls_cert = o.tls_cert != NULL ? xstrdup(o.tls_cert) : NULL;
  c->opts.tls_key = o.tls_key != NULL ? xstrdup(o.tls_key) : NULL;
  c->master = xstrdup(master);
  c->cache = route_cache_new(o.cache_routes);
  c->salts = mcl_salts_new();
  pthread_rwlock_init(&c->conns_lock, NULL);
  mcl_tls_init(c);
  if (ch != NULL) {
    c->master_conn = xcalloc(1, sizeof(mcl_conn));
    c->master_conn->address = xstrdup(master);
    atomic_init(&c->master_conn->ch, ch);
    pthread_mutex_init(&c->master_conn->mu, NULL);
  }
  *out = c;
  return mcl_finish(NULL);
}

static void conn_free(mcl_conn *k) {
  if (k == NULL) return;
  rpc_channel_free(atomic_load(&k->ch));
  for (size_t i = 0; i < k->n_retired; i++) rpc_channel_free(k->retired[i]);
  pthread_mutex_destroy(&k->mu);
  free(k->address);
  free(k);
}

void mica_close(mica_client *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->n_conns; i++) conn_free(c->conns[i]);
  free(c->conns);
  conn_free(c->master_conn);
  mzk_locator_close(c->loc);
  pthread_rwlock_destroy(&c->conns_lock);
  mcl_tls_destroy(c);
  route_cache_free(c->cache);
  mcl_salts_free(c->salts);
  free(c->master);
  free((char *)c->opts.token);
  free((char *)c->opts.tls_ca);
  free((char *)c->opts.tls_cert);
  free((char *)c->opts.tls_key);
  free(c);
}

const char *mica_master_address(const mica_client *c) { return c->master; }

void mica_get_stats(mica_client *c, mica_stats *out) {
  route_cache_stats rs;
  route_cache_get_stats(c->cache, &rs);
  memset(out, 0, sizeof *out);
  out->cache_hits = rs.hits;
  out->cache_misses = rs.misses;
  out->cached_routes = rs.routes;
  out->master_lookups = atomic_load(&c->master_lookups);
  out->master_calls = atomic_load(&c->master_calls);
  out->routing_answers = atomic_load(&c->routing_answers);
  out->retries = atomic_load(&c->retries);
  out->server_rpcs = atomic_load(&c->server_rpcs);
}

/* ---- connections ---- */

/* A channel to `address` with the client's token and TLS options. */
rpc_channel *mcl_new_channel(mica_client *c, const char *address) {
  rpc_channel *ch = NULL;
  rpc_tls tls = {c->opts.tls_cert, c->opts.tls_key, c->opts.tls_ca};
  rpc_channel_opts co = {.token = c->opts.token,
                         .tls = c->opts.tls_ca ? &tls : NULL};
  mica_err *e = rpc_channel_new(address, &co, &ch);
  if (e != NULL) {
    /* A malformed address from the master: the call fails on it like on
     * an unreachable server, through a channel that can never connect. */
    err_free(e);
    e = rpc_channel_new("invalid-address:0", NULL, &ch);
    err_free(e);
  }
  return ch;
}

rpc_channel *mcl_conn_channel(mcl_conn *k) { return atomic_load(&k->ch); }

/* The reconnect backoff cap of client channels (proto/rpc_common.c): a
 * channel refused for longer than this is not recovering on its own. */
#define MCL_STUCK_US 1000000

void mcl_conn_master_result(mica_client *c, mcl_conn *k, rpc_channel *used,
                            const mica_err *transport_err) {
  if (transport_err == NULL || err_code(transport_err) != MICA_UNAVAILABLE) {
    if (transport_err == NULL) atomic_store(&k->refused_since_us, 0);
    return;
  }
  uint64_t now = env_now_micros(env_posix()), since = 0;
  if (atomic_compare_exchange_strong(&k->refused_since_us, &since, now) ||
      now - since < MCL_STUCK_US)
    return;
  pthread_mutex_lock(&k->mu);
  if (k->n_retired < MCL_MAX_RETIRED && atomic_load(&k->ch) == used) {
    k->retired[k->n_retired++] = used;
    atomic_store(&k->ch, mcl_new_channel(c, k->address));
    atomic_store(&k->refused_since_us, 0);
    LOG_D("client: new channel to master %s (refused for %" PRIu64 " ms)",
          k->address, (now - since) / 1000);
  }
  pthread_mutex_unlock(&k->mu);
}

mcl_conn *mcl_conn_get(mica_client *c, const char *address) {
  pthread_rwlock_rdlock(&c->conns_lock);
  for (size_t i = 0; i < c->n_conns; i++) {
    if (strcmp(c->conns[i]->address, address) == 0) {
      mcl_conn *k = c->conns[i];
      pthread_rwlock_unlock(&c->conns_lock);
      mcl_tls_refresh(c, k);
      return k;
    }
  }
  pthread_rwlock_unlock(&c->conns_lock);
  pthread_rwlock_wrlock(&c->conns_lock);
  mcl_conn *k = NULL;
  for (size_t i = 0; i < c->n_conns && k == NULL; i++)
    if (strcmp(c->conns[i]->address, address) == 0) k = c->conns[i];
  if (k == NULL) {
    k = xcalloc(1, sizeof *k);
    k->address = xstrdup(address);
    atomic_init(&k->gen, atomic_load(&c->tls_gen));
    atomic_init(&k->ch, mcl_new_channel(c, address));
    pthread_mutex_init(&k->mu, NULL);
    if (c->n_conns == c->cap_conns) {
      c->cap_conns = c->cap_conns ? 2 * c->cap_conns : 8;
      c->conns = xrealloc(c->conns, c->cap_conns * sizeof *c->conns);
    }
    c->conns[c->n_conns++] = k;
  }
  pthread_rwlock_unlock(&c->conns_lock);
  return k;
}

/* ---- retries ---- */

static uint64_t now_us(void) { return env_now_micros(env_posix()); }

void mcl_retry_init(mcl_retry *r, mica_client *c) {
  r->c = c;
  r->deadline_us = now_us() + (uint64_t)c->opts.deadline_ms * 1000;
  r->attempts = 1;
  r->delay_ms = c->opts.backoff_initial_ms;
  r->immediate = 0;
  r->last = NULL;
}

void mcl_retry_done(mcl_retry *r) {
  err_free(r->last);
  r->last = NULL;
}

int64_t mcl_retry_remaining_ms(const mcl_retry *r) {
  uint64_t now = now_us();
  if (now >= r->deadline_us) return 1;
  int64_t ms = (int64_t)((r->deadline_us - now + 999) / 1000);
  return ms > 0 ? ms : 1;
}

bool mcl_code_retryable(int code) {
  return code == MICA_UNAVAILABLE || code == MICA_ABORTED ||
         code == MICA_LEASE_EXPIRED || code == MICA_NOT_SERVING ||
         code == MICA_STALE_EPOCH || code == MICA_OUT_OF_RANGE;
}

/* xorshift per thread, seeded from the clock and the thread's stack: only
 * to spread the retries of many clients apart. */
static uint64_t jitter_rand(void) {
  static __thread uint64_t s;
  if (s == 0) s = now_us() ^ (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull;
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

mica_err *mcl_retry_next(mcl_retry *r, mica_err *e, bool sleep) {
  err_free(r->last);
  r->last = e;
  /* Routing answers are followed at once, but not forever: servers that
   * keep pointing elsewhere (tablets moving faster than answers travel)
   * get the same backoff as any other failure. */
  if (!sleep && ++r->immediate > MCL_MAX_IMMEDIATE) sleep = true;
  uint64_t now = now_us();
  if (r->attempts >= r->c->opts.max_attempts)
    return err_new(err_code(e), "%s (gave up after %d attempts)", err_msg(e),
                   r->attempts);
  if (now >= r->deadline_us)
    return err_new(MICA_DEADLINE_EXCEEDED,
                   "%s (gave up after %d attempts within the %" PRId64 " ms deadline)",
                   err_msg(e), r->attempts, r->c->opts.deadline_ms);
  if (sleep) {
    int64_t d = r->delay_ms;
    int64_t wait = d / 2 + (int64_t)(jitter_rand() % (uint64_t)(d - d / 2 + 1));
    uint64_t left_us = r->deadline_us - now;
    uint64_t wait_us = (uint64_t)wait * 1000;
    if (wait_us > left_us) wait_us = left_us;
    env_sleep_micros(env_posix(), wait_us);
    r->delay_ms = d * 2 > r->c->opts.backoff_max_ms ? r->c->opts.backoff_max_ms : d * 2;
    if (now_us() >= r->deadline_us)
      return err_new(MICA_DEADLINE_EXCEEDED,
                     "%s (gave up after %d attempts within the %" PRId64 " ms deadline)",
                     err_msg(e), r->attempts, r->c->opts.deadline_ms);
  }
  r->attempts++;
  atomic_fetch_add_explicit(&r->c->retries, 1, memory_order_relaxed);
  LOG_D("client: attempt %d after: %s", r->attempts, err_msg(e));
  return NULL;
}

/* ---- master ---- */

/* One attempt at a master that may be down (partitioned rather than
 * refusing connections) waits at most this long, so that another master
 * is tried within the caller's deadline. */
#define HA_ATTEMPT_MS 3000

/* mcl_master_call with several masters: each attempt goes to the one the
 * locator names; a standby's refusal re-routes at once to the master it
 * names, an unreachable master after a backoff to the next candidate (or
 * to ZooKeeper's newer record). */
static mica_err *ha_master_call(mica_client *c, mcl_retry *r,
                                const rpc_method *m, const void *req,
                                void **resp) {
  for (;;) {
    char addr[MZK_ADDR_MAX];
    mica_err *e = NULL;
    bool sleep = true;
    if (!mzk_locator_current(c->loc, addr, sizeof addr)) {
      e = err_new(MICA_UNAVAILABLE, "no active master published in %s yet",
                  c->master);
    } else {
      void *msg = NULL;
      int64_t t = mcl_retry_remaining_ms(r);
      atomic_fetch_add_explicit(&c->master_calls, 1, memory_order_relaxed);
      mcl_conn *k = mcl_conn_get(c, addr);
      rpc_channel *ch = mcl_conn_channel(k);
      e = rpc_unary(ch, m, req, t < HA_ATTEMPT_MS ? t : HA_ATTEMPT_MS, &msg);
      mcl_conn_master_result(c, k, ch, e);
      if (e == NULL) {
        e = rpc_status_err(rpc_response_status(msg));
        if (e == NULL) {
          *resp = msg;
          return NULL;
        }
        rpc_msg_free(msg);
      }
      if (!mzk_locator_should_switch(err_code(e)))
        return err_wrap(e, "master %s", addr);
      sleep = err_code(e) != MICA_NOT_ACTIVE_MASTER;
      mzk_locator_failed(c->loc, addr, e);
      e = err_wrap(e, "master %s (of %s)", addr, c->master);
    }
    e = mcl_retry_next(r, e, sleep);
    if (e != NULL) return e;
  }
}

mica_err *mcl_master_call(mica_client *c, mcl_retry *r, const rpc_method *m,
                         const void *req, void **resp) {
  *resp = NULL;
  if (c->loc != NULL) return ha_master_call(c, r, m, req, resp);
  for (;;) {
    void *msg = NULL;
    atomic_fetch_add_explicit(&c->master_calls, 1, memory_order_relaxed);
    mcl_tls_refresh(c, c->master_conn);
    rpc_channel *ch = mcl_conn_channel(c->master_conn);
    mica_err *e = rpc_unary(ch, m, req, mcl_retry_remaining_ms(r), &msg);
    mcl_conn_master_result(c, c->master_conn, ch, e);
    if (e == NULL) {
      e = rpc_status_err(rpc_response_status(msg));
      if (e == NULL) {
        *resp = msg;
        return NULL;
      }
      rpc_msg_free(msg);
      if (err_code(e) != MICA_UNAVAILABLE) return e;
    } else {
      int code = err_code(e);
      if (code == MICA_UNAVAILABLE)
        e = err_wrap(e, "master %s unreachable", c->master);
      else
        return err_wrap(e, "master %s", c->master);
    }
    e = mcl_retry_next(r, e, true);
    if (e != NULL) return e;
  }
}

/* ---- routing ---- */

/* A cached route carries no table name: the cache is keyed by it. It keeps
 * the table id, against which salted writes check their salt
 * (mcl_salt_stale). */
static void route_from_wire(rpc_route *d, const rpc_tablet_route *w) {
  rpc_route_from_wire(d, w);
  free(d->table_name);
  d->table_name = NULL;
}

void mcl_install_routes(mica_client *c, const char *table,
                       const rpc_tablet_route *routes, size_t n) {
  if (n == 0) return;
  rpc_route *v = xcalloc(n, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const rpc_tablet_route *w = &routes[i];
    if (w->desc == NULL || w->desc->tablet_id == 0) continue;
    if (w->desc->table_name != NULL && w->desc->table_name[0] != '\0' &&
        strcmp(w->desc->table_name, table) != 0)
      continue;
    mcl_salt_note_id(c, table, w->desc->table_id);
    route_from_wire(&v[k++], w);
  }
  route_cache_install(c->cache, table, v, k);
  for (size_t i = 0; i < k; i++) rpc_route_clear(&v[i]);
  free(v);
}

mica_err *mcl_locate(mica_client *c, mcl_retry *r, const char *table, slice key,
                    bool before, rpc_route *out) {
  for (;;) {
    bool hit = before ? route_cache_lookup_before(c->cache, table, key, out)
                      : route_cache_lookup(c->cache, table, key, out);
    if (hit && out->address != NULL) return NULL;
    if (hit) rpc_route_clear(out);

    rpc_lookup_tablets_request req = {
        .table = table, .key = key, .count = c->opts.prefetch, .before = before};
    rpc_lookup_tablets_response *resp = NULL;
    atomic_fetch_add_explicit(&c->master_lookups, 1, memory_order_relaxed);
    mica_err *e = mcl_master_call(c, r, &rpc_m_master_lookup_tablets, &req, (void **)&resp);
    if (e != NULL) return e;
    mcl_install_routes(c, table, resp->tablets, resp->n_tablets);
    mcl_salt_learn(c, table, resp->salt_buckets, resp->table_id);
    bool found = false;
    if (resp->n_tablets > 0 && resp->tablets[0].desc != NULL) {
      route_from_wire(out, &resp->tablets[0]);
      found = true;
      if (!before && !rpc_route_contains(out, key)) {
        rpc_route_clear(out);
        e = err_new(MICA_INTERNAL, "master answered a lookup in '%s' with a tablet not "
                                   "holding the key", table);
        found = false;
      }
    } else {
      e = err_new(MICA_INTERNAL, "master answered a lookup in '%s' with no tablet", table);
    }
    rpc_msg_free(resp);
    if (found && out->address != NULL) return NULL;
    if (found) {
      e = err_new(MICA_UNAVAILABLE, "tablet %" PRIu64 " of '%s' has no server yet",
                  out->tablet_id, table);
      rpc_route_clear(out);
    }
    if (err_code(e) != MICA_UNAVAILABLE) return e;
    e = mcl_retry_next(r, e, true);
    if (e != NULL) return e;
  }
}

void mcl_tablet_ref(rpc_tablet_ref *ref, const rpc_route *r) {
  memset(ref, 0, sizeof *ref);
  ref->tablet_id = r->tablet_id;
  ref->range_epoch = r->range_epoch;
  ref->assign_epoch = r->assign_epoch;
}

static bool is_routing_code(int code) {
  return code == MICA_NOT_SERVING || code == MICA_STALE_EPOCH || code == MICA_OUT_OF_RANGE;
}

/* True if the wire route is strictly fresher than the route that just
 * failed, by the cache's rule: a greater range epoch, or the same tablet and
 * range epoch at a greater assign epoch. Anything else is old news (a
 * server's memory of an earlier move, say) and following it could send the
 * client around in circles. */
static bool fresher_than(const rpc_tablet_route *w, const rpc_route *used) {
  if (w->desc == NULL) return false;
  if (w->desc->range_epoch != used->range_epoch)
    return w->desc->range_epoch > used->range_epoch;
  return w->desc->tablet_id == used->tablet_id && w->location != NULL &&
         w->location->assign_epoch > used->assign_epoch;
}

static bool has_address(const rpc_location *l) {
  return l != NULL && l->address != NULL && l->address[0] != '\0';
}

mcl_verdict mcl_digest(mica_client *c, const char *table, const rpc_route *used, int code,
                     const rpc_status *st) {
  if (st == NULL) {
    /* Transport outcome: the server could not be reached, the call was
     * cut, or the server stayed silent until the deadline (a partitioned
     * or frozen host). Forget its route so the next attempt, or the next
     * call, asks the master instead of waiting on the same server again. */
    if (code != MICA_UNAVAILABLE && code != MICA_DEADLINE_EXCEEDED)
      return MCL_FAIL;
    route_cache_invalidate(c->cache, table, used->tablet_id, used->range_epoch);
    return MCL_RETRY_LATER;
  }
  if (is_routing_code(code)) {
    const rpc_routing_error *re = st->routing;
    bool useful = false, moved = false;
    rpc_tablet_route *fresh = NULL;
    size_t n_fresh = 0;
    if (re != NULL) {
      fresh = xcalloc(re->n_current + 1, sizeof *fresh);
      for (size_t i = 0; i < re->n_current; i++) {
        if (!fresher_than(&re->current[i], used)) continue;
        fresh[n_fresh++] = re->current[i];
        if (has_address(re->current[i].location)) useful = true;
      }
      moved = has_address(re->moved_to) && re->moved_to->assign_epoch > used->assign_epoch;
    }
    route_cache_invalidate(c->cache, table, used->tablet_id, used->range_epoch);
    mcl_install_routes(c, table, fresh, n_fresh);
    free(fresh);
    if (!useful && !moved) return MCL_RETRY_LATER;
    if (moved) {
      rpc_route m;
      rpc_route_copy(&m, used);
      m.server_id = re->moved_to->server_id;
      m.assign_epoch = re->moved_to->assign_epoch;
      free(m.address);
      m.address = xstrdup(re->moved_to->address);
      route_cache_install(c->cache, table, &m, 1);
      rpc_route_clear(&m);
    }
    atomic_fetch_add_explicit(&c->routing_answers, 1, memory_order_relaxed);
    return MCL_RETRY_NOW;
  }
  if (code == MICA_LEASE_EXPIRED) {
    route_cache_invalidate(c->cache, table, used->tablet_id, used->range_epoch);
    return MCL_RETRY_LATER;
  }
  if (code == MICA_UNAVAILABLE || code == MICA_ABORTED) return MCL_RETRY_LATER;
  return MCL_FAIL;
}

mica_err *mcl_after_failure(mica_client *c, mcl_retry *r, const char *table,
                           const rpc_route *used, mica_err *e,
                           const rpc_status *st) {
  mcl_verdict v = mcl_digest(c, table, used, err_code(e), st);
  if (st == NULL && used->address != NULL) e = err_wrap(e, "server %s", used->address);
  if (v == MCL_FAIL) return e;
  return mcl_retry_next(r, e, v == MCL_RETRY_LATER);
}

mica_err *mcl_check_key(slice key) {
  if (key.len == 0) return err_new(MICA_INVALID_ARGUMENT, "empty key");
  if (key.data == NULL) return err_new(MICA_INVALID_ARGUMENT, "NULL key");
  if (key.len > MICA_MAX_KEY)
    return err_new(MICA_INVALID_ARGUMENT, "key of %zu bytes exceeds the %u-byte limit",
                   key.len, MICA_MAX_KEY);
  return NULL;
}

mica_err *mcl_check_table(const char *table) {
  if (table == NULL || table[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "empty table name");
  return NULL;
}

/* ---- single-key calls ---- */

/* One unary data call to the tablet holding a key: `ref` and `key` point
 * into `req` and are set for each attempt (the key salted when the table
 * is, client/salt.c). */
typedef struct keycall {
  const rpc_method *m;
  const void *req;
  rpc_tablet_ref *ref; /* what req->tablet points to */
  slice *key;          /* req's key field */
} keycall;

static mica_err *key_call(mica_client *c, const char *table, slice key, keycall *kc,
                          void **resp) {
  *resp = NULL;
  mcl_retry r;
  mcl_retry_init(&r, c);
  mica_err *e = NULL;
  buf salted = BUF_INIT;
  for (;;) {
    /* A table whose salt is not known yet is routed as unsalted: the
     * master's lookup answer (on a routing cache miss) tells the salt, and
     * for an unsalted table the route found is already the right one. */
    uint32_t buckets = 0;
    uint64_t salt_id = 0;
    bool known = mcl_salt_peek(c, table, &buckets, &salt_id);
    e = mcl_salt_check_key(key, buckets, table);
    if (e != NULL) break;
    *kc->key = key;
    if (buckets > 0) {
      mcl_salt_key(key, buckets, &salted);
      *kc->key = buf_slice(&salted);
    }
    rpc_route route = {0};
    e = mcl_locate(c, &r, table, *kc->key, false, &route);
    if (e != NULL) break;
    if (!known) {
      /* The route came from the cache: ask the master once. */
      if (!mcl_salt_peek(c, table, &buckets, &salt_id))
        e = mcl_salt_get_id(c, &r, table, &buckets, &salt_id);
      if (e != NULL) {
        rpc_route_clear(&route);
        break;
      }
      if (buckets > 0) { /* salted after all: salt the key and go again */
        rpc_route_clear(&route);
        continue;
      }
    }
    if (mcl_salt_stale(c, table, salt_id, &route)) {
      rpc_route_clear(&route);
      e = mcl_retry_next(&r, err_new(MICA_UNAVAILABLE, "table '%s' was dropped "
                                     "and created again", table), false);
      if (e != NULL) break;
      continue;
    }
    mcl_tablet_ref(kc->ref, &route);
    mcl_conn *k = mcl_conn_get(c, route.address);
    void *msg = NULL;
    atomic_fetch_add_explicit(&c->server_rpcs, 1, memory_order_relaxed);
    e = rpc_unary(mcl_conn_channel(k), kc->m, kc->req, mcl_retry_remaining_ms(&r), &msg);
    const rpc_status *st = NULL;
    if (e == NULL) {
      st = rpc_response_status(msg);
      e = rpc_status_err(st);
      if (e == NULL) {
        rpc_route_clear(&route);
        *resp = msg;
        break;
      }
    }
    e = mcl_after_failure(c, &r, table, &route, e, st);
    rpc_msg_free(msg);
    rpc_route_clear(&route);
    if (e != NULL) break;
  }
  buf_free(&salted);
  mcl_retry_done(&r);
  return e;
}

static mica_err *check_value(size_t len, const void *p) {
  if (len > MICA_MAX_VALUE)
    return err_new(MICA_INVALID_ARGUMENT, "value of %zu bytes exceeds the %zu-byte limit",
                   len, MICA_MAX_VALUE);
  if (len > 0 && p == NULL) return err_new(MICA_INVALID_ARGUMENT, "NULL value");
  return NULL;
}

int mica_put(mica_client *c, const char *table, const void *key, size_t key_len,
             const void *value, size_t value_len) {
  slice k = slice_make(key, key_len);
  mica_err *e = mcl_check_table(table);
  if (e == NULL) e = mcl_check_key(k);
  if (e == NULL) e = check_value(value_len, value);
  if (e != NULL) return mcl_finish(e);
  rpc_tablet_ref ref;
  rpc_put_request req = {.tablet = &ref, .key = k,
                         .value = slice_make(value, value_len)};
  keycall kc = {&rpc_m_ts_put, &req, &ref, &req.key};
  void *resp = NULL;
  e = key_call(c, table, k, &kc, &resp);
  rpc_msg_free(resp);
  return mcl_finish(e);
}

int mica_delete(mica_client *c, const char *table, const void *key, size_t key_len) {
  slice k = slice_make(key, key_len);
  mica_err *e = mcl_check_table(table);
  if (e == NULL) e = mcl_check_key(k);
  if (e != NULL) return mcl_finish(e);
  rpc_tablet_ref ref;
  rpc_delete_request req = {.tablet = &ref, .key = k};
  keycall kc = {&rpc_m_ts_delete, &req, &ref, &req.key};
  void *resp = NULL;
  e = key_call(c, table, k, &kc, &resp);
  rpc_msg_free(resp);
  return mcl_finish(e);
}

int mica_get(mica_client *c, const char *table, const void *key, size_t key_len,
             void **value, size_t *value_len) {
  *value = NULL;
  *value_len = 0;
  slice k = slice_make(key, key_len);
  mica_err *e = mcl_check_table(table);
  if (e == NULL) e = mcl_check_key(k);
  if (e != NULL) return mcl_finish(e);
  rpc_tablet_ref ref;
  rpc_get_request req = {.tablet = &ref, .key = k};
  keycall kc = {&rpc_m_ts_get, &req, &ref, &req.key};
  rpc_get_response *resp = NULL;
  e = key_call(c, table, k, &kc, (void **)&resp);
  if (e != NULL) return mcl_finish(e);
  if (!resp->found) {
    rpc_msg_free(resp);
    buf esc = BUF_INIT;
    slice_escape(k, &esc);
    e = err_new(MICA_NOT_FOUND, "key '%s' not found in '%s'", (char *)esc.data, table);
    buf_free(&esc);
    return mcl_finish(e);
  }
  /* One byte more than needed so an empty value still gets a pointer. */
  *value = xmalloc(resp->value.len + 1);
  if (resp->value.len > 0) memcpy(*value, resp->value.data, resp->value.len);
  *value_len = resp->value.len;
  rpc_msg_free(resp);
  return mcl_finish(NULL);
}
