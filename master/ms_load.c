/* ms_load: each tablet's load record (the load fields of ms_tab).
 *
 * Every heartbeat carries, per tablet, its figures (TabletStats: sizes,
 * counters since the tablet opened there, the server's own ~5 s rates)
 * and its sampled load (TabletLoad). This file is their one keeper: it
 * stores the figures, derives the recent rates of every kind of work from
 * the counters' differences and gives that work to the load history
 * (ms_heat.h), so the hot list, the heat map, the balancer and the merge
 * checker all read one record.
 *
 * Sampled load: tablet servers sample their requests and decide load
 * splits themselves (tabletserver/server/ts_load.h); the master only
 * keeps the latest figures and hot keys each server reported per tablet
 * (volatile: a new master learns them from the next heartbeats), tells
 * people (events, snapshots) and keeps hot tablets out of automatic
 * merges, so a tablet split for load is not merged back while the load
 * lasts (no split–merge flapping). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/ms_int.h"
#include "master/snapshot.h"

static void counters(const ms_stats *st, uint64_t c[MS_W_N]) {
  c[MS_W_READS] = st->reads;
  c[MS_W_WRITES] = st->writes;
  c[MS_W_SCANS] = st->scans;
  c[MS_W_RBYTES] = st->read_bytes;
  c[MS_W_WBYTES] = st->write_bytes;
}

void ms_note_stats(ms *m, ms_tab *t, uint64_t server, const ms_stats *st) {
  uint64_t now = m->now;
  uint64_t c[MS_W_N], prev[MS_W_N];
  counters(st, c);
  counters(&t->stats, prev);
  bool same_owner = t->have_stats && t->stats_server == server &&
                    t->stats_epoch == t->assign_epoch;
  bool onward = same_owner && now > t->stats_at;
  for (int k = 0; k < MS_W_N && onward; k++) onward = c[k] >= prev[k];
  double d[MS_W_N];
  if (onward) {
    for (int k = 0; k < MS_W_N; k++) d[k] = (double)(c[k] - prev[k]);
    double dt = (double)(now - t->stats_at) / 1e6;
    double a = t->have_recent ? 1 - exp(-dt / MS_HEAT_WINDOW_S) : 1.0;
    for (int k = 0; k < MS_W_N; k++)
      t->recent[k] += a * (d[k] / dt - t->recent[k]);
    t->have_recent = true;
  } else if (same_owner && now == t->stats_at) {
    /* The same report twice: its counters stay the baseline (nothing
     * new), its other figures are taken. */
    ms_stats keep = t->stats;
    t->stats = *st;
    t->stats.reads = keep.reads;
    t->stats.writes = keep.writes;
    t->stats.scans = keep.scans;
    t->stats.read_bytes = keep.read_bytes;
    t->stats.write_bytes = keep.write_bytes;
    return;
  } else {
    t->have_recent = false;
    memset(t->recent, 0, sizeof(t->recent));
  }
  ms_heat_note(m->heat, t->id, t->table_id, server, t->stats_at, now,
               onward ? d : NULL);
  t->stats = *st;
  t->have_stats = true;
  t->stats_server = server;
  t->stats_epoch = t->assign_epoch;
  t->stats_at = now;
}

void ms_load_clear(ms_load *l) {
  for (size_t i = 0; i < l->n_keys; i++) buf_free(&l->keys[i].key);
  free(l->keys);
  memset(l, 0, sizeof(*l));
}

void ms_load_copy(ms_load *dst, const ms_load *src) {
  ms_load_clear(dst);
  dst->ops_per_sec = src->ops_per_sec;
  dst->bytes_per_sec = src->bytes_per_sec;
  dst->hot = src->hot;
  if (src->n_keys == 0) return;
  dst->keys = xcalloc(src->n_keys, sizeof(*dst->keys));
  for (size_t i = 0; i < src->n_keys; i++) {
    buf_append_slice(&dst->keys[i].key, buf_slice(&src->keys[i].key));
    dst->keys[i].ops_per_sec = src->keys[i].ops_per_sec;
    snprintf(dst->keys[i].kind, sizeof dst->keys[i].kind, "%s",
             src->keys[i].kind);
  }
  dst->n_keys = src->n_keys;
}

static bool had_key(const ms_load *l, slice key) {
  for (size_t i = 0; i < l->n_keys; i++)
    if (slice_eq(buf_slice(&l->keys[i].key), key)) return true;
  return false;
}

bool ms_tab_load_busy(ms *m, const ms_tab *t, uint64_t now) {
  if (t->load.hot || t->load.n_keys > 0) return true;
  return t->hot_at != 0 && now < t->hot_at + m->opt.load_cool_us;
}

void ms_note_load(ms *m, uint64_t server_id, const ms_load_report *v,
                  size_t n, uint64_t now) {
  pthread_mutex_lock(&m->mu);
  m->now = now;
  for (size_t i = 0; i < n; i++) {
    ms_tab *t = ms_find_tab(m, v[i].ref.tablet_id);
    if (t == NULL || t->server != server_id || t->state != MS_SERVING ||
        t->range_epoch != v[i].ref.range_epoch ||
        t->assign_epoch != v[i].ref.assign_epoch)
      continue;
    const ms_load *l = &v[i].load;
    for (size_t k = 0; k < l->n_keys; k++) {
      slice key = buf_slice(&l->keys[k].key);
      if (had_key(&t->load, key)) continue;
      /* The key is the client's bytes: escaped, and cut to fit. */
      buf b = BUF_INIT;
      bool cut = key.len > 48;
      slice_escape(slice_make(key.data, cut ? 48 : key.len), &b);
      buf_push(&b, 0);
      ms_event_add(m, "hot_key", t->id, server_id,
                   "tablet %" PRIu64 ": hot key \"%s%s\" takes %.0f %s "
                   "ops/s; it is not split further on its account",
                   t->id, (const char *)b.data, cut ? "..." : "",
                   l->keys[k].ops_per_sec, l->keys[k].kind);
      buf_free(&b);
    }
    ms_load_copy(&t->load, l);
    /* Hot keys come from a whole window's verdict: the tablet stayed hot.
     * A hot second alone (a bulk load's burst) holds merges only while it
     * is reported, not for the cool-down. */
    if (l->n_keys > 0) t->hot_at = now;
  }
  pthread_mutex_unlock(&m->mu);
}

void ms_note_load_split(ms *m, uint64_t left, uint64_t right, uint64_t now) {
  pthread_mutex_lock(&m->mu);
  m->now = now;
  ms_tab *l = ms_find_tab(m, left), *r = ms_find_tab(m, right);
  if (l != NULL && r != NULL) {
    l->load_split = r->load_split = true;
    l->hot_at = r->hot_at = now;
    /* The daughters are new tablets to their server, whose rates climb
     * from 0 over ~5 s: until then the balancer counts each at half the
     * parent's (the split key halves the sampled load), as it holds a
     * moved tablet's rate, so it parts them at once and does not see the
     * parent's server as idle. */
    ms_tab *p = ms_find_tab(m, l->src[0]);
    l->rate_at = r->rate_at = now;
    l->rate_at_move = r->rate_at_move = p ? ms_tab_rate(m, p) / 2 : 0;
    buf b = BUF_INIT;
    bool cut = r->start.len > 48;
    slice_escape(slice_make(r->start.data, cut ? 48 : r->start.len), &b);
    buf_push(&b, 0);
    ms_event_add(m, "load_split", r->id, r->server,
                 "tablets %" PRIu64 " and %" PRIu64 " split for load at "
                 "\"%s%s\"", l->id, r->id, (const char *)b.data,
                 cut ? "..." : "");
    buf_free(&b);
  }
  pthread_mutex_unlock(&m->mu);
}
