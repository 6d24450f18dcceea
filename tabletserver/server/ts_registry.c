/* ts_registry: which tablets this server serves, and what it remembers of
 * the ones that left.
 *
 * Open tablets sit in an array sorted by id under one mutex. A request
 * holds its tablet by a reference count for its whole duration (a scan for
 * the whole stream), which is how an admin operation knows when it may call
 * tab_close or tab_split: it switches the tablet's state so new requests
 * are turned away, then waits for the count to drain. The critical sections
 * are a binary search and an increment, so one mutex is enough for the
 * request rates two cores can produce.
 *
 * Departed tablets (split, moved, closed) are kept in a bounded ring so a
 * client still holding an old route gets a routing error that carries the
 * new descriptors or the destination, and can install them without asking
 * the master. A split daughter that itself split is followed one more
 * level, up to four routes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tabletserver/server/ts_int.h"

void ts_tab_free(ts_tab *tt) {
  if (tt == NULL) return;
  rpc_route_clear(&tt->d);
  free(tt->dir);
  free(tt->rel_dir);
  ts_load_tab_free(tt->load);
  free(tt);
}

static void gone_clear(ts_gone *g) {
  rpc_route_clear(&g->left);
  rpc_route_clear(&g->right);
  free(g->moved_address);
  memset(g, 0, sizeof(*g));
}

/* Index of the first tablet with id >= `id`. mu held. */
static size_t lower_bound(ts_server *s, uint64_t id) {
  size_t lo = 0, hi = s->ntabs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->tabs[mid]->d.tablet_id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

ts_tab *ts_reg_find_locked(ts_server *s, uint64_t id) {
  size_t i = lower_bound(s, id);
  return i < s->ntabs && s->tabs[i]->d.tablet_id == id ? s->tabs[i] : NULL;
}

/* Forgets departure records of `id`. mu held. */
static void forget_gone_locked(ts_server *s, uint64_t id) {
  for (size_t i = 0; i < s->ngone; i++)
    if (s->gone[i].id == id) {
      gone_clear(&s->gone[i]);
      s->gone[i].id = 0;
    }
}

void ts_reg_insert(ts_server *s, ts_tab *tt) {
  pthread_mutex_lock(&s->mu);
  if (s->ntabs == s->captabs) {
    s->captabs = s->captabs ? 2 * s->captabs : 16;
    s->tabs = xrealloc(s->tabs, s->captabs * sizeof(*s->tabs));
  }
  size_t i = lower_bound(s, tt->d.tablet_id);
  memmove(&s->tabs[i + 1], &s->tabs[i], (s->ntabs - i) * sizeof(*s->tabs));
  s->tabs[i] = tt;
  s->ntabs++;
  tt->state = TS_SERVING;
  tt->rate_at_us = env_now_micros(s->e);
  if (tt->d.tablet_id > s->max_id_seen) s->max_id_seen = tt->d.tablet_id;
  forget_gone_locked(s, tt->d.tablet_id);
  pthread_mutex_unlock(&s->mu);
}

void ts_reg_remove_locked(ts_server *s, ts_tab *tt) {
  size_t i = lower_bound(s, tt->d.tablet_id);
  if (i < s->ntabs && s->tabs[i] == tt) {
    memmove(&s->tabs[i], &s->tabs[i + 1],
            (s->ntabs - i - 1) * sizeof(*s->tabs));
    s->ntabs--;
  }
}

void ts_reg_gone(ts_server *s, ts_gone *g) {
  pthread_mutex_lock(&s->mu);
  forget_gone_locked(s, g->id);
  if (s->gone == NULL) s->gone = xcalloc(TS_GONE_MAX, sizeof(*s->gone));
  ts_gone *slot = &s->gone[s->gone_next];
  gone_clear(slot);
  *slot = *g;
  s->gone_next = (s->gone_next + 1) % TS_GONE_MAX;
  if (s->ngone < TS_GONE_MAX) s->ngone++;
  if (g->left.tablet_id > s->max_id_seen) s->max_id_seen = g->left.tablet_id;
  if (g->right.tablet_id > s->max_id_seen) s->max_id_seen = g->right.tablet_id;
  pthread_mutex_unlock(&s->mu);
  memset(g, 0, sizeof(*g));
}

/* mu held. */
static ts_gone *find_gone_locked(ts_server *s, uint64_t id) {
  for (size_t i = 0; i < s->ngone; i++)
    if (s->gone[i].id == id) return &s->gone[i];
  return NULL;
}

mica_err *ts_reg_retired_error(ts_server *s, uint64_t id) {
  mica_err *e = NULL;
  pthread_mutex_lock(&s->mu);
  ts_gone *g = find_gone_locked(s, id);
  if (g != NULL && g->kind == TS_GONE_SPLIT)
    e = err_new(MICA_NOT_SERVING,
                "tablet %" PRIu64 " was split into %" PRIu64 " and %" PRIu64
                "; it is never served again",
                id, g->left.tablet_id, g->right.tablet_id);
  else if (g != NULL && g->kind == TS_GONE_MERGED)
    e = err_new(MICA_NOT_SERVING,
                "tablet %" PRIu64 " was merged into %" PRIu64
                "; it is never served again",
                id, g->left.tablet_id);
  pthread_mutex_unlock(&s->mu);
  return e;
}

char *ts_reg_table_of(ts_server *s, uint64_t id) {
  pthread_mutex_lock(&s->mu);
  const char *name = NULL;
  ts_tab *tt = ts_reg_find_locked(s, id);
  ts_gone *g = tt == NULL ? find_gone_locked(s, id) : NULL;
  if (tt != NULL) name = tt->d.table_name;
  else if (g != NULL && (g->kind == TS_GONE_SPLIT || g->kind == TS_GONE_MERGED))
    name = g->left.table_name;
  char *copy = name != NULL ? xstrdup(name) : NULL;
  pthread_mutex_unlock(&s->mu);
  return copy;
}

void ts_routebuf_init(ts_routebuf *rb) {
  memset(rb, 0, sizeof(*rb));
}

void ts_routebuf_clear(ts_routebuf *rb) {
  for (size_t i = 0; i < rb->re.n_current; i++) rpc_route_clear(&rb->copies[i]);
  free(rb->moved_address);
  memset(rb, 0, sizeof(*rb));
}

void ts_routebuf_add_remote(ts_routebuf *rb, const rpc_route *r) {
  size_t i = rb->re.n_current;
  if (i >= 4) return;
  rpc_route *c = &rb->copies[i];
  rpc_route_copy(c, r);
  rb->routes[i] = *rpc_route_to_wire(c, c->address != NULL, &rb->wires[i]);
  rb->re.current = rb->routes;
  rb->re.n_current = i + 1;
}

void ts_reg_merged_into(ts_server *s, uint64_t input, const rpc_route *merged) {
  pthread_mutex_lock(&s->mu);
  ts_gone *old = find_gone_locked(s, input);
  bool skip = ts_reg_find_locked(s, input) != NULL ||
              (old != NULL && old->kind != TS_GONE_CLOSED);
  pthread_mutex_unlock(&s->mu);
  if (skip) return;
  ts_gone g;
  memset(&g, 0, sizeof(g));
  g.id = input;
  g.kind = TS_GONE_MERGED;
  rpc_route_copy(&g.left, merged);
  ts_reg_gone(s, &g);
}

void ts_routebuf_add(ts_server *s, ts_routebuf *rb, const rpc_route *d,
                     bool here) {
  size_t i = rb->re.n_current;
  if (i >= 4) return;
  rpc_route *c = &rb->copies[i];
  rpc_route_copy(c, d);
  free(c->address);
  c->address = NULL;
  if (here) {
    c->server_id = atomic_load(&s->server_id);
    c->address = xstrdup(rpc_server_address(s->rpc));
  }
  rb->routes[i] = *rpc_route_to_wire(c, here, &rb->wires[i]);
  rb->re.current = rb->routes;
  rb->re.n_current = i + 1;
}

/* Adds the routes that replaced split tablet `g`: each daughter served
 * here with its current descriptor, a daughter that split again by its own
 * daughters (one level), else as recorded. mu held. */
static void add_daughters_locked(ts_server *s, ts_routebuf *rb,
                                 const ts_gone *g, int depth) {
  const rpc_route *ds[2] = {&g->left, &g->right};
  for (int i = 0; i < 2; i++) {
    ts_tab *open = ts_reg_find_locked(s, ds[i]->tablet_id);
    ts_gone *again = open ? NULL : find_gone_locked(s, ds[i]->tablet_id);
    if (open != NULL)
      ts_routebuf_add(s, rb, &open->d, true);
    else if (again != NULL && again->kind == TS_GONE_SPLIT && depth < 1)
      add_daughters_locked(s, rb, again, depth + 1);
    else
      ts_routebuf_add(s, rb, ds[i], false);
  }
}

mica_err *ts_lease_check(ts_server *s) {
  if (s->master_ch == NULL) return NULL;
  uint64_t until = atomic_load(&s->lease_until_us);
  uint64_t now = env_now_micros(s->e);
  if (now < until) return NULL;
  if (until == 0)
    return err_new(MICA_LEASE_EXPIRED,
                   "server has no master lease yet (registering with %s)",
                   s->cfg.master);
  return err_new(MICA_LEASE_EXPIRED,
                 "server lease expired %" PRIu64 " ms ago; re-registering "
                 "with the master",
                 (now - until) / 1000);
}

uint64_t ts_lease_gen(ts_server *s) { return atomic_load(&s->lease_gen); }

mica_err *ts_lease_check_since(ts_server *s, uint64_t gen) {
  mica_err *e = ts_lease_check(s);
  if (e == NULL && s->master_ch != NULL && atomic_load(&s->lease_gen) != gen)
    e = err_new(MICA_LEASE_EXPIRED,
                "server lease lapsed while the request was being served; "
                "not acknowledged");
  return e;
}

mica_err *ts_acquire(ts_server *s, const rpc_tablet_ref *ref,
                     ts_routebuf *rb, ts_tab **out) {
  *out = NULL;
  if (ref == NULL || ref->tablet_id == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: a TabletRef with a non-zero tablet_id is required");
  /* Every routing error echoes the id asked for (ts_check_in_range's
   * OUT_OF_RANGE reuses `rb`, so it is set here once). */
  rb->re.requested_tablet_id = ref->tablet_id;
  mica_err *e = ts_lease_check(s);
  if (e != NULL) return e;
  pthread_mutex_lock(&s->mu);
  ts_tab *tt = ts_reg_find_locked(s, ref->tablet_id);
  if (tt != NULL) {
    if (ref->range_epoch != tt->d.range_epoch ||
        ref->assign_epoch != tt->d.assign_epoch) {
      /* Our descriptor goes with the answer even when the request names
       * newer epochs than this server holds (a future epoch): it is what
       * this server serves now, and clients keep only routes fresher than
       * the one that failed (client/route_cache.h), so an older one is
       * information, never a step back. */
      ts_routebuf_add(s, rb, &tt->d, true);
      e = err_new(MICA_STALE_EPOCH,
                  "tablet %" PRIu64 ": request names range_epoch %" PRIu64
                  " assign_epoch %" PRIu64 ", served under %" PRIu64
                  "/%" PRIu64,
                  ref->tablet_id, ref->range_epoch, ref->assign_epoch,
                  tt->d.range_epoch, tt->d.assign_epoch);
    } else if (tt->state == TS_SPLITTING) {
      e = err_new(MICA_UNAVAILABLE,
                  "tablet %" PRIu64 " is being split; retry shortly",
                  ref->tablet_id);
    } else if (tt->state == TS_CLOSING) {
      e = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is closing",
                  ref->tablet_id);
    } else {
      tt->refs++;
      *out = tt;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
  }
  ts_gone *g = find_gone_locked(s, ref->tablet_id);
  if (g == NULL) {
    e = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is not served here",
                ref->tablet_id);
  } else if (g->kind == TS_GONE_SPLIT) {
    add_daughters_locked(s, rb, g, 0);
    e = err_new(MICA_STALE_EPOCH,
                "tablet %" PRIu64 " was split into %" PRIu64 " and %" PRIu64,
                g->id, g->left.tablet_id, g->right.tablet_id);
  } else if (g->kind == TS_GONE_MERGED) {
    ts_tab *open = ts_reg_find_locked(s, g->left.tablet_id);
    /* Served elsewhere: the location the master told (ts_reg_merged_into);
     * a merge opened here records the result without one. */
    bool remote = open == NULL && g->left.address != NULL &&
                  g->left.server_id != atomic_load(&s->server_id);
    if (remote)
      ts_routebuf_add_remote(rb, &g->left);
    else
      ts_routebuf_add(s, rb, open != NULL ? &open->d : &g->left,
                      open != NULL);
    e = err_new(MICA_STALE_EPOCH, "tablet %" PRIu64 " was merged into %" PRIu64,
                g->id, g->left.tablet_id);
  } else if (g->kind == TS_GONE_MOVED) {
    rb->moved_address = xstrdup(g->moved_address ? g->moved_address : "");
    memset(&rb->moved, 0, sizeof rb->moved);
    rb->moved.server_id = g->moved_server;
    rb->moved.address = rb->moved_address;
    rb->moved.assign_epoch = g->moved_epoch;
    rb->re.moved_to = &rb->moved;
    e = err_new(MICA_NOT_SERVING,
                "tablet %" PRIu64 " moved to server %" PRIu64 " (%s)", g->id,
                g->moved_server, rb->moved_address);
  } else {
    e = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " was closed here",
                g->id);
  }
  pthread_mutex_unlock(&s->mu);
  return e;
}

void ts_release(ts_server *s, ts_tab *tt) {
  if (tt == NULL) return;
  pthread_mutex_lock(&s->mu);
  if (--tt->refs == 0 && tt->state != TS_SERVING)
    pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static bool in_range(const rpc_route *d, slice key) {
  if (slice_cmp(key, buf_slice(&d->start_key)) < 0) return false;
  return d->end_key.len == 0 || slice_cmp(key, buf_slice(&d->end_key)) < 0;
}

mica_err *ts_check_in_range(ts_server *s, ts_tab *tt, slice key,
                            const char *what, ts_routebuf *rb) {
  if (in_range(&tt->d, key)) return NULL;
  buf esc = BUF_INIT, lo = BUF_INIT, hi = BUF_INIT;
  slice_escape(key.len > 64 ? slice_make(key.data, 64) : key, &esc);
  slice_escape(buf_slice(&tt->d.start_key), &lo);
  slice_escape(buf_slice(&tt->d.end_key), &hi);
  mica_err *e = err_new(MICA_OUT_OF_RANGE,
                        "%s \"%s%s\" is outside tablet %" PRIu64
                        " [\"%s\", %s%s%s)",
                        what, esc.data ? (char *)esc.data : "",
                        key.len > 64 ? "..." : "", tt->d.tablet_id,
                        lo.data ? (char *)lo.data : "",
                        tt->d.end_key.len ? "\"" : "", 
                        tt->d.end_key.len ? (char *)hi.data : "end",
                        tt->d.end_key.len ? "\"" : "");
  buf_free(&esc);
  buf_free(&lo);
  buf_free(&hi);
  ts_routebuf_add(s, rb, &tt->d, true);
  return e;
}

void ts_quiesce(ts_server *s, ts_tab *tt, int state) {
  /* Its counters move to the server totals as it leaves service. */
  ts_tally t;
  ts_obs_tally(s, tt, &t);
  pthread_mutex_lock(&s->mu);
  ts_obs_retire_locked(s, tt, &t);
  tt->state = state;
  ts_scans_abort_locked(s, tt);
  while (tt->refs > 0) pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

void ts_resume(ts_server *s, ts_tab *tt) {
  pthread_mutex_lock(&s->mu);
  ts_obs_unretire_locked(s, tt);
  tt->state = TS_SERVING;
  pthread_mutex_unlock(&s->mu);
}

void ts_status_fill(rpc_status *st, const mica_err *e, ts_routebuf *rb) {
  memset(st, 0, sizeof *st);
  rpc_status_set(st, e);
  if (e != NULL && rb != NULL &&
      (rb->re.n_current > 0 || rb->re.moved_to != NULL)) {
    rb->re.current = rb->routes;
    st->routing = &rb->re;
  }
}

void ts_tab_stats(ts_server *s, ts_tab *tt, rpc_tablet_stats *out) {
  memset(out, 0, sizeof *out);
  tab_stats ts;
  tab_get_stats(tt->t, &ts);
  out->approx_bytes = tab_approximate_size(tt->t);
  out->approx_keys = tab_approximate_keys(tt->t);
  out->reads = atomic_load(&tt->reads);
  out->writes = atomic_load(&tt->writes);
  out->read_bytes = atomic_load(&tt->read_bytes);
  out->write_bytes = atomic_load(&tt->write_bytes);
  out->scans = atomic_load(&tt->scans);
  out->memtable_bytes = ts.memtable_bytes;
  out->sstable_count = (uint32_t)ts.num_ssts;
  pthread_mutex_lock(&s->mu);
  out->read_rate = tt->read_rate;
  out->write_rate = tt->write_rate;
  pthread_mutex_unlock(&s->mu);
}

void ts_request_drop(ts_server *s, uint64_t id, uint64_t assign_epoch) {
  pthread_mutex_lock(&s->mu);
  ts_tab *tt = ts_reg_find_locked(s, id);
  if (tt != NULL && tt->d.assign_epoch == assign_epoch) {
    tt->drop_requested = true;
    if (tt->state == TS_SERVING) tt->state = TS_CLOSING;
  }
  pthread_mutex_unlock(&s->mu);
}

/* ---- background threads ---- */

/* Waits up to `us` for a stop request; true when stopping. Sleeps in
 * short steps through the env clock (the only clock Mica code reads). */
bool ts_bg_wait(ts_server *s, uint64_t us) {
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

void ts_bg_stop(ts_server *s) {
  pthread_mutex_lock(&s->bg_mu);
  s->stopping = true;
  pthread_mutex_unlock(&s->bg_mu);
}
