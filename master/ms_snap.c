/* ms_snap: one consistent, self-contained copy of what the status page,
 * the JSON API and the metrics show.
 *
 * The core's public listings each take its mutex separately and leave out
 * things an operator wants to see (why a tablet is in transition, when a
 * server last reported, how many splits a table went through, the log's
 * size), so this file reads the core's internals (ms_int.h) directly: it
 * takes the mutex once, copies, and releases it. It never writes to the
 * core. The copy is O(servers + tablets) with no I/O and no formatting
 * beyond a few short strings, so the time the lock is held stays close to
 * that of ms_list_tablets(). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/ms_int.h"
#include "master/snapshot.h"

static int srv_state(ms *m, const ms_srv *s, uint64_t now) {
  if (s->dead) return MS_SERVER_DEAD;
  if (now > s->renewed_at + m->opt.lease_us) return MS_SERVER_SUSPECT;
  return MS_SERVER_LIVE;
}

static bool placed(int state) {
  return state == MS_OPENING || state == MS_SERVING || state == MS_CLOSING;
}

/* True when `t` is not serving steadily. */
static bool moving(const ms_tab *t) {
  return t->state != MS_SERVING || t->moving;
}

/* Says what is under way for `t` ("" when it serves steadily). */
static void describe(const ms_tab *t, uint64_t now, char *out, size_t cap) {
  out[0] = '\0';
  switch (t->state) {
    case MS_UNASSIGNED:
      if (t->retry_at > now)
        snprintf(out, cap, "unassigned, retry in %" PRIu64 " ms after %" PRIu32
                 " failures", (t->retry_at - now) / 1000, t->failures);
      else
        snprintf(out, cap, "unassigned");
      return;
    case MS_OPENING:
      snprintf(out, cap, "opening on server %" PRIu64 "%s", t->server,
               t->moving ? " (move)" : "");
      return;
    case MS_CLOSING:
      switch (t->close_why) {
        case CW_MOVE:
          snprintf(out, cap, "closing on server %" PRIu64 " to move to "
                   "server %" PRIu64, t->server, t->close_arg);
          break;
        case CW_MERGE:
          snprintf(out, cap, "closing on server %" PRIu64 " to merge with "
                   "tablet %" PRIu64 "%s", t->server, t->close_arg,
                   t->closed ? " (closed)" : "");
          break;
        case CW_DROP:
          snprintf(out, cap, "closing on server %" PRIu64 " (table dropped)",
                   t->server);
          break;
        default:
          snprintf(out, cap, "closing on server %" PRIu64, t->server);
          break;
      }
      return;
    case MS_SERVING:
      if (t->moving) snprintf(out, cap, "serving, move under way");
      return;
    default:
      snprintf(out, cap, "%s", ms_tablet_state_name(t->state));
      return;
  }
}

static int by_name(const void *a, const void *b) {
  const ms_snap_tbl *x = a, *y = b;
  return strcmp(x->name, y->name);
}

/* Binary search in arrays sorted by id (the core keeps its tables and
 * servers by id, and the copies start in that order). */
static ms_snap_tbl *tbl_by_id(ms_snap_tbl *v, size_t n, uint64_t id) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid].id == id) return &v[mid];
    if (v[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

static ms_snap_srv *srv_by_id(ms_snap_srv *v, size_t n, uint64_t id) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid].id == id) return &v[mid];
    if (v[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

/* The copy of tablet `t` a snapshot holds (`mv`: a move is in flight). */
static void copy_tab(ms *m, const ms_tab *t, uint64_t now, bool mv,
                     ms_snap_tab *y) {
  memset(y, 0, sizeof(*y));
  y->id = t->id;
  y->table_id = t->table_id;
  buf_append_slice(&y->start, buf_slice(&t->start));
  buf_append_slice(&y->end, buf_slice(&t->end));
  y->range_epoch = t->range_epoch;
  y->assign_epoch = t->assign_epoch;
  y->state = t->state;
  y->server = placed(t->state) ? t->server : 0;
  y->in_transition = mv;
  describe(t, now, y->transition, sizeof(y->transition));
  y->failures = t->failures;
  y->have_stats = t->have_stats;
  y->stats = t->stats;
  ms_load_copy(&y->load, &t->load);
  y->load_split = t->load_split;
  y->merge_held = ms_tab_load_busy(m, t, now);
}

static int by_heat(const void *a, const void *b) {
  const ms_snap_tab *x = a, *y = b;
  if (x->load.ops_per_sec != y->load.ops_per_sec)
    return x->load.ops_per_sec > y->load.ops_per_sec ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

static void copy_hot(ms *m, uint64_t now, ms_snap *out) {
  size_t cap = 0;
  for (size_t i = 0; i < m->n_tables; i++) {
    const ms_tbl *tb = m->tables[i];
    if (tb->dropping) continue;
    for (size_t j = 0; j < tb->n_cur; j++) {
      const ms_tab *t = tb->cur[j];
      if (!t->load.hot && t->load.n_keys == 0) continue;
      if (out->n_hot == cap) {
        cap = cap ? 2 * cap : 8;
        out->hot = xrealloc(out->hot, cap * sizeof(*out->hot));
      }
      copy_tab(m, t, now, moving(t), &out->hot[out->n_hot++]);
    }
  }
  if (out->n_hot > 1) qsort(out->hot, out->n_hot, sizeof(*out->hot), by_heat);
}

static void copy_tables(ms *m, uint64_t now, int which, const char *table,
                        ms_snap *out) {
  out->tbls = xcalloc(m->n_tables + 1, sizeof(*out->tbls));
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if (tb->dropping) continue;
    ms_snap_tbl *x = &out->tbls[out->n_tbls++];
    x->id = tb->id;
    x->name = xstrdup(tb->name);
    x->created_ms = tb->created_ms;
    x->opts = tb->opts;
    x->n = tb->n_cur;
  }

  /* Counters over every tablet a table ever had (retired ones included),
   * while the copies are still in id order. */
  for (size_t i = 0; i < m->n_tabs; i++) {
    const ms_tab *t = m->tabs[i];
    ms_snap_tbl *x = tbl_by_id(out->tbls, out->n_tbls, t->table_id);
    if (x == NULL) continue;
    if (t->state >= 1 && t->state <= 6) out->tablets_by_state[t->state]++;
    if (t->state == MS_SPLIT) x->splits++;
    if (t->src[0] != 0 && t->src[1] != 0) x->merges++;
    x->assignments += t->assign_epoch;
  }
  qsort(out->tbls, out->n_tbls, sizeof(*out->tbls), by_name);

  size_t cap = 0;
  for (size_t i = 0; i < out->n_tbls; i++) {
    ms_snap_tbl *x = &out->tbls[i];
    ms_tbl *tb = ms_find_tbl(m, x->id);
    bool all = which == MS_SNAP_TABLE_TABLETS && strcmp(x->name, table) == 0;
    x->first = out->n_tabs;
    for (size_t j = 0; j < tb->n_cur; j++) {
      const ms_tab *t = tb->cur[j];
      bool mv = moving(t);
      x->bytes += t->stats.bytes;
      x->keys += t->stats.keys;
      x->read_rate += t->stats.read_rate;
      x->write_rate += t->stats.write_rate;
      x->in_transition += mv;
      x->unassigned += t->state == MS_UNASSIGNED;
      if (!all && !(which == MS_SNAP_MOVING_TABLETS && mv)) continue;
      if (out->n_tabs == cap) {
        cap = cap ? 2 * cap : 16;
        out->tabs = xrealloc(out->tabs, cap * sizeof(*out->tabs));
      }
      copy_tab(m, t, now, mv, &out->tabs[out->n_tabs++]);
    }
    x->n_copied = out->n_tabs - x->first;
  }
}

static void copy_servers(ms *m, uint64_t now, ms_snap *out) {
  out->srvs = xcalloc(m->n_srvs + 1, sizeof(*out->srvs));
  for (size_t i = 0; i < m->n_srvs; i++) {
    const ms_srv *s = m->srvs[i];
    ms_snap_srv *x = &out->srvs[out->n_srvs++];
    x->id = s->id;
    x->address = xstrdup(s->address);
    x->http_address = xstrdup(s->http_address);
    x->state = srv_state(m, s, now);
    x->lease_age_ms = now > s->renewed_at ? (now - s->renewed_at) / 1000 : 0;
    x->heartbeat_seen = s->reported;
    x->last_heartbeat_ms = s->reported ? ms_wall_ms(m, s->renewed_at) : 0;
    x->registered_ms = s->registered_ms;
    out->servers_by_state[x->state]++;
  }
  for (size_t i = 0; i < m->n_tabs; i++) {
    const ms_tab *t = m->tabs[i];
    if (t->server == 0) continue;
    ms_snap_srv *x = srv_by_id(out->srvs, out->n_srvs, t->server);
    if (x == NULL) continue;
    if (t->state == MS_SPLIT) x->splits++;
    if (!placed(t->state) || x->state == MS_SERVER_DEAD) continue;
    const ms_tbl *tb = ms_find_tbl(m, t->table_id);
    if (tb == NULL || tb->dropping) continue; /* as ms_list_servers */
    x->tablets++;
    x->bytes += t->stats.bytes;
    x->keys += t->stats.keys;
    x->read_rate += t->stats.read_rate;
    x->write_rate += t->stats.write_rate;
  }
  double sum = 0;
  size_t n = 0;
  for (size_t i = 0; i < out->n_srvs; i++) {
    ms_snap_srv *x = &out->srvs[i];
    x->draining = m->srvs[i]->draining;
    if (x->state == MS_SERVER_DEAD || x->draining) continue;
    sum += x->read_rate + x->write_rate;
    n++;
  }
  for (size_t i = 0; i < out->n_srvs && n > 1; i++) {
    ms_snap_srv *x = &out->srvs[i];
    x->hot = x->state != MS_SERVER_DEAD && !x->draining &&
             ms_rate_is_hot(m, x->read_rate + x->write_rate, sum / (double)n);
  }
}

static void copy_events(ms *m, ms_snap *out) {
  size_t cap = m->opt.event_capacity;
  out->events = xcalloc(m->ev_count + 1, sizeof(*out->events));
  for (size_t i = 0; i < m->ev_count; i++) {
    size_t at = (m->ev_head + m->ev_count - 1 - i) % cap;
    out->events[out->n_events++] = m->events[at];
  }
}

void ms_snapshot(ms *m, uint64_t now_us, uint64_t start_us, int which,
                 const char *table, ms_snap *out) {
  memset(out, 0, sizeof(*out));
  out->now_us = now_us;
  out->uptime_s = now_us > start_us ? (now_us - start_us) / 1000000 : 0;
  pthread_mutex_lock(&m->mu);
  out->wall_ms = ms_wall_ms(m, now_us);
  out->balancer_on = m->balancer_mode == MS_BAL_AUTO;
  out->balancer_mode = m->balancer_mode;
  out->n_suggested = m->n_suggested;
  out->suggested_at_ms = m->suggested_at ? ms_wall_ms(m, m->suggested_at) : 0;
  out->suggested = xmalloc((m->n_suggested + 1) * sizeof(ms_move));
  if (m->n_suggested)
    memcpy(out->suggested, m->suggested, m->n_suggested * sizeof(ms_move));
  out->merges_on = m->merges_on;
  out->in_grace = !m->grace_done && now_us < m->grace_until;
  out->log_bytes = mlog_log_bytes(m->log);
  out->log_generation = mlog_generation(m->log);
  out->actions_pending = m->n_acts;
  copy_tables(m, now_us, which, table, out);
  copy_servers(m, now_us, out);
  copy_events(m, out);
  ms_heat_counts(m->heat, &out->heat_tracked, &out->heat_dropped);
  copy_hot(m, now_us, out);
  pthread_mutex_unlock(&m->mu);
}

void ms_snap_free(ms_snap *s) {
  for (size_t i = 0; i < s->n_tabs; i++) {
    buf_free(&s->tabs[i].start);
    buf_free(&s->tabs[i].end);
    ms_load_clear(&s->tabs[i].load);
  }
  for (size_t i = 0; i < s->n_hot; i++) {
    buf_free(&s->hot[i].start);
    buf_free(&s->hot[i].end);
    ms_load_clear(&s->hot[i].load);
  }
  free(s->hot);
  for (size_t i = 0; i < s->n_tbls; i++) free(s->tbls[i].name);
  for (size_t i = 0; i < s->n_srvs; i++) {
    free(s->srvs[i].address);
    free(s->srvs[i].http_address);
  }
  free(s->tabs);
  free(s->tbls);
  free(s->srvs);
  free(s->suggested);
  free(s->events);
  memset(s, 0, sizeof(*s));
}

const ms_snap_srv *ms_snap_find_srv(const ms_snap *s, uint64_t id) {
  for (size_t i = 0; i < s->n_srvs; i++)
    if (s->srvs[i].id == id) return &s->srvs[i];
  return NULL;
}

const ms_snap_tbl *ms_snap_find_tbl(const ms_snap *s, const char *name) {
  for (size_t i = 0; i < s->n_tbls; i++)
    if (strcmp(s->tbls[i].name, name) == 0) return &s->tbls[i];
  return NULL;
}

uint64_t ms_now(ms *m) { return env_now_micros(m->opt.env); }
