/* ts_load: per-tablet request sampling and load-based split decisions.
 *
 * The sample of a tablet is a reservoir over the requests of its current
 * window: it is emptied whenever a tick finds the tablet cold and after
 * every verdict, so the keys judged are a uniform sample of the requests
 * made while the tablet was hot. Resetting races with requests in flight
 * (a key counted just before the reset may land just after it); that
 * moves one sample from one window to the next and nothing else. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tabletserver/server/ts_int.h"
#include "tabletserver/server/ts_load.h"

struct ts_load_tab {
  atomic_uint_fast64_t offered; /* keys offered since the last reset */
  pthread_mutex_t mu;           /* guards slot, filled and the verdict */
  struct {
    buf key;
    int kind;
  } slot[TS_LOAD_SAMPLES];
  size_t filled; /* slots [0, filled) may hold keys (empty = unset) */
  /* The last tick's figures and the latest hot keys, for heartbeats. */
  double ops_rate, bytes_rate;
  bool hot;
  size_t n_hot;
  struct {
    buf key;
    double ops;
    int kind;
  } hot_keys[TS_LOAD_MAX_HOT];
  /* Maintenance thread only. */
  bool primed;
  uint64_t last_ops, last_bytes, last_us;
  uint64_t hot_since_us;  /* start of the current hot window, 0 = cold */
  uint64_t cold_since_us; /* first cold tick after being hot, 0 = none */
  uint64_t retry_us;      /* no load split proposed before this */
};

const char *ts_load_kind_name(int kind) {
  switch (kind) {
    case TS_LOAD_READ: return "read";
    case TS_LOAD_WRITE: return "write";
    case TS_LOAD_SCAN: return "scan";
    default: return "unknown";
  }
}

/* ---- the chooser ---- */

static int sample_cmp(const void *a, const void *b) {
  const ts_load_sample *x = a, *y = b;
  return slice_cmp(x->key, y->key);
}

static bool in_range(slice k, slice start, slice end) {
  return k.len > 0 && slice_cmp(k, start) >= 0 &&
         (end.len == 0 || slice_cmp(k, end) < 0);
}

void ts_load_choose(ts_load_sample *v, size_t n, slice start, slice end,
                    ts_load_verdict *out) {
  memset(out, 0, sizeof(*out));
  size_t used = 0;
  for (size_t i = 0; i < n; i++)
    if (in_range(v[i].key, start, end)) v[used++] = v[i];
  out->used = used;
  if (used < TS_LOAD_MIN_SAMPLES) return;
  qsort(v, used, sizeof(*v), sample_cmp);
  /* One pass over the runs of equal keys: the best cut (between runs, so
   * the requests of one key stay on one side) and the heaviest runs. */
  size_t best_i = 0, best_side = used;
  for (size_t i = 0; i < used;) {
    size_t j = i;
    size_t kinds[3] = {0, 0, 0};
    while (j < used && slice_eq(v[j].key, v[i].key)) {
      if (v[j].kind >= 0 && v[j].kind < 3) kinds[v[j].kind]++;
      j++;
    }
    size_t side = i > used - i ? i : used - i;
    if (i > 0 && side < best_side && slice_cmp(v[i].key, start) > 0) {
      best_side = side;
      best_i = i;
    }
    double share = (double)(j - i) / (double)used;
    if (share >= TS_LOAD_HOT_SHARE) {
      int kind = TS_LOAD_READ;
      for (int k = 1; k < 3; k++)
        if (kinds[k] > kinds[kind]) kind = k;
      /* Insert in order of share, keeping the TS_LOAD_MAX_HOT largest. */
      size_t at = out->n_hot;
      while (at > 0 && out->hot[at - 1].share < share) at--;
      if (at < TS_LOAD_MAX_HOT) {
        if (out->n_hot == TS_LOAD_MAX_HOT) {
          buf_free(&out->hot[TS_LOAD_MAX_HOT - 1].key);
          out->n_hot--;
        }
        memmove(&out->hot[at + 1], &out->hot[at],
                (out->n_hot - at) * sizeof(out->hot[0]));
        memset(&out->hot[at], 0, sizeof(out->hot[at]));
        buf_append_slice(&out->hot[at].key, v[i].key);
        out->hot[at].share = share;
        out->hot[at].kind = kind;
        out->n_hot++;
      }
    }
    i = j;
  }
  if (best_i > 0 &&
      (double)best_side <= TS_LOAD_MAX_SIDE * (double)used) {
    out->split = true;
    buf_append_slice(&out->split_key, v[best_i].key);
    out->left_share = (double)best_i / (double)used;
  }
}

void ts_load_verdict_free(ts_load_verdict *vd) {
  buf_free(&vd->split_key);
  for (size_t i = 0; i < vd->n_hot; i++) buf_free(&vd->hot[i].key);
  memset(vd, 0, sizeof(*vd));
}

/* ---- configuration ---- */

void ts_load_configure(ts_server *s, const rpc_load_split_config *c) {
  ts_load_conf *lc = &s->load;
  bool on = c != NULL && c->enabled && c->window_ms > 0 &&
            (c->ops_per_sec > 0 || c->bytes_per_sec > 0);
  uint64_t milli = 0;
  if (on) {
    double m = c->ops_per_sec * 1000.0;
    milli = m <= 0 ? 0 : m >= 1e18 ? (uint64_t)1e18 : (uint64_t)m;
  }
  bool changed = atomic_load(&lc->on) != on ||
                 (on && (atomic_load(&lc->milli_ops) != milli ||
                         atomic_load(&lc->bytes) != c->bytes_per_sec ||
                         atomic_load(&lc->window_ms) != c->window_ms));
  if (!changed) return;
  if (on) {
    atomic_store(&lc->milli_ops, milli);
    atomic_store(&lc->bytes, c->bytes_per_sec);
    atomic_store(&lc->window_ms, c->window_ms);
    LOG_I("load-based split on: a tablet above %.0f ops/s or %" PRIu64
          " bytes/s for %" PRIu64 " ms is split by its sampled load",
          c->ops_per_sec, (uint64_t)c->bytes_per_sec,
          (uint64_t)c->window_ms);
  } else {
    LOG_I("load-based split off");
  }
  atomic_store(&lc->on, on);
}

bool ts_load_enabled(ts_server *s) {
  return atomic_load_explicit(&s->load.on, memory_order_relaxed);
}

ts_load_tab *ts_load_tab_new(void) {
  ts_load_tab *l = xcalloc(1, sizeof(*l));
  atomic_init(&l->offered, 0);
  pthread_mutex_init(&l->mu, NULL);
  return l;
}

void ts_load_tab_free(ts_load_tab *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < TS_LOAD_SAMPLES; i++) buf_free(&l->slot[i].key);
  for (size_t i = 0; i < TS_LOAD_MAX_HOT; i++) buf_free(&l->hot_keys[i].key);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* ---- the request path ---- */

/* xorshift64*, one state per thread: no shared cache line. */
static uint64_t rand_u64(void) {
  static _Thread_local uint64_t x;
  if (x == 0) {
    x = (uint64_t)(uintptr_t)&x ^ 0x9e3779b97f4a7c15ull;
    x ^= (uint64_t)pthread_self() * 0xbf58476d1ce4e5b9ull;
    if (x == 0) x = 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return x * 0x2545f4914f6cdd1dull;
}

void ts_load_note(ts_server *s, ts_tab *tt, int kind, slice key) {
  if (!ts_load_enabled(s) || key.len == 0) return;
  ts_load_tab *l = tt->load;
  uint64_t n =
      atomic_fetch_add_explicit(&l->offered, 1, memory_order_relaxed) + 1;
  size_t at;
  if (n <= TS_LOAD_SAMPLES) {
    at = (size_t)(n - 1);
  } else {
    uint64_t r = rand_u64() % n;
    if (r >= TS_LOAD_SAMPLES) return;
    at = (size_t)r;
  }
  if (key.len > TS_LOAD_KEY_MAX) key.len = TS_LOAD_KEY_MAX;
  pthread_mutex_lock(&l->mu);
  buf_clear(&l->slot[at].key);
  buf_append_slice(&l->slot[at].key, key);
  l->slot[at].kind = kind;
  if (at + 1 > l->filled) l->filled = at + 1;
  pthread_mutex_unlock(&l->mu);
}

/* ---- the maintenance tick ---- */

/* Empties the sample (mu held). */
static void reset_locked(ts_load_tab *l) {
  for (size_t i = 0; i < l->filled; i++) buf_clear(&l->slot[i].key);
  l->filled = 0;
  atomic_store_explicit(&l->offered, 0, memory_order_relaxed);
}

void ts_load_tab_reset(ts_load_tab *l) {
  pthread_mutex_lock(&l->mu);
  reset_locked(l);
  pthread_mutex_unlock(&l->mu);
}

static void clear_hot_locked(ts_load_tab *l) {
  for (size_t i = 0; i < l->n_hot; i++) buf_clear(&l->hot_keys[i].key);
  l->n_hot = 0;
}

/* Judges the window of `tt` (maintenance thread): records its hot keys and
 * fills *out (returning true) when it should be split. */
static bool judge(ts_tab *tt, ts_load_tab *l, double ops_rate,
                  ts_load_split *out) {
  ts_load_sample *v = xcalloc(TS_LOAD_SAMPLES, sizeof(*v));
  buf *keys = xcalloc(TS_LOAD_SAMPLES, sizeof(*keys));
  size_t n = 0;
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->filled; i++) {
    if (l->slot[i].key.len == 0) continue;
    buf_append_slice(&keys[n], buf_slice(&l->slot[i].key));
    v[n].key = buf_slice(&keys[n]);
    v[n].kind = l->slot[i].kind;
    n++;
  }
  reset_locked(l);
  pthread_mutex_unlock(&l->mu);

  ts_load_verdict vd;
  ts_load_choose(v, n, buf_slice(&tt->d.start_key), buf_slice(&tt->d.end_key),
                 &vd);
  bool split = false;
  if (vd.used >= TS_LOAD_MIN_SAMPLES) {
    pthread_mutex_lock(&l->mu);
    clear_hot_locked(l);
    for (size_t i = 0; i < vd.n_hot; i++) {
      buf_append_slice(&l->hot_keys[i].key, buf_slice(&vd.hot[i].key));
      l->hot_keys[i].ops = vd.hot[i].share * ops_rate;
      l->hot_keys[i].kind = vd.hot[i].kind;
    }
    l->n_hot = vd.n_hot;
    pthread_mutex_unlock(&l->mu);
    if (vd.n_hot > 0 && !vd.split)
      LOG_I("tablet %" PRIu64 " is hot (%.0f ops/s) on one key that takes "
            "%.0f%% of its sampled load: not splitting",
            tt->d.tablet_id, ops_rate, vd.hot[0].share * 100);
  }
  if (vd.split) {
    split = true;
    out->tablet_id = tt->d.tablet_id;
    out->range_epoch = tt->d.range_epoch;
    out->assign_epoch = tt->d.assign_epoch;
    buf_clear(&out->key);
    buf_append_slice(&out->key, buf_slice(&vd.split_key));
    out->ops_per_sec = ops_rate;
    out->left_share = vd.left_share;
  }
  ts_load_verdict_free(&vd);
  for (size_t i = 0; i < n; i++) buf_free(&keys[i]);
  free(keys);
  free(v);
  return split;
}

/* One tick of tablet `tt` (held). Returns true and fills *out when it
 * asks to be split and `want` (no other tablet asked in this tick). */
static bool account(ts_tab *tt, uint64_t now, double max_ops,
                    uint64_t max_bytes, uint64_t window_us, bool want,
                    ts_load_split *out) {
  ts_load_tab *l = tt->load;
  uint64_t ops = atomic_load(&tt->reads) + atomic_load(&tt->writes) +
                 atomic_load(&tt->scans);
  uint64_t bytes = atomic_load(&tt->read_bytes) + atomic_load(&tt->write_bytes);
  if (!l->primed) {
    l->primed = true;
    l->last_ops = ops;
    l->last_bytes = bytes;
    l->last_us = now;
    return false;
  }
  if (now < l->last_us + 500000) return false;
  double dt = (double)(now - l->last_us) / 1e6;
  double ops_rate = (double)(ops - l->last_ops) / dt;
  double bytes_rate = (double)(bytes - l->last_bytes) / dt;
  uint64_t began = l->last_us;
  l->last_ops = ops;
  l->last_bytes = bytes;
  l->last_us = now;
  bool hot = (max_ops > 0 && ops_rate >= max_ops) ||
             (max_bytes > 0 && bytes_rate >= (double)max_bytes);
  pthread_mutex_lock(&l->mu);
  l->ops_rate = ops_rate;
  l->bytes_rate = bytes_rate;
  l->hot = hot;
  if (!hot) reset_locked(l);
  if (!hot && l->cold_since_us != 0 && now - l->cold_since_us >= window_us)
    clear_hot_locked(l);
  pthread_mutex_unlock(&l->mu);
  if (!hot) {
    l->hot_since_us = 0;
    if (l->cold_since_us == 0) l->cold_since_us = now;
    return false;
  }
  l->cold_since_us = 0;
  /* The interval just measured was hot: the window began with it (the
   * sample was emptied at its start by the cold tick before). */
  if (l->hot_since_us == 0) l->hot_since_us = began;
  if (now - l->hot_since_us < window_us) return false;
  l->hot_since_us = now;
  ts_load_split prop = {0};
  bool split = judge(tt, l, ops_rate, &prop);
  bool taken = false;
  if (split && want && now >= l->retry_us) {
    /* Not again before another window, whatever becomes of this one. */
    l->retry_us = now + window_us;
    *out = prop;
    memset(&prop, 0, sizeof(prop));
    taken = true;
  }
  buf_free(&prop.key);
  return taken;
}

bool ts_load_tick(ts_server *s, ts_load_split *out) {
  if (!ts_load_enabled(s)) return false;
  double max_ops = (double)atomic_load(&s->load.milli_ops) / 1000.0;
  uint64_t max_bytes = atomic_load(&s->load.bytes);
  uint64_t window_us = atomic_load(&s->load.window_ms) * 1000;
  uint64_t now = env_now_micros(s->e);
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  ts_tab **held = xcalloc(s->ntabs ? s->ntabs : 1, sizeof(*held));
  for (size_t i = 0; i < s->ntabs; i++)
    if (s->tabs[i]->state == TS_SERVING) {
      s->tabs[i]->refs++;
      held[n++] = s->tabs[i];
    }
  pthread_mutex_unlock(&s->mu);
  bool found = false;
  for (size_t i = 0; i < n; i++) {
    if (account(held[i], now, max_ops, max_bytes, window_us, !found, out))
      found = true;
    ts_release(s, held[i]);
  }
  free(held);
  return found;
}

/* ---- heartbeats ---- */

bool ts_load_report(ts_server *s, ts_tab *tt, rpc_tablet_load *out) {
  memset(out, 0, sizeof(*out));
  if (!ts_load_enabled(s)) return false;
  ts_load_tab *l = tt->load;
  pthread_mutex_lock(&l->mu);
  out->ops_per_sec = l->ops_rate;
  out->bytes_per_sec = l->bytes_rate;
  out->hot = l->hot;
  if (l->n_hot > 0) {
    out->hot_keys = xcalloc(l->n_hot, sizeof(*out->hot_keys));
    for (size_t i = 0; i < l->n_hot; i++) {
      rpc_hot_key *h = &out->hot_keys[i];
      h->key = slice_make(xmemdup(l->hot_keys[i].key.data,
                                  l->hot_keys[i].key.len),
                          l->hot_keys[i].key.len);
      h->ops_per_sec = l->hot_keys[i].ops;
      h->kind = ts_load_kind_name(l->hot_keys[i].kind);
    }
    out->n_hot_keys = l->n_hot;
  }
  pthread_mutex_unlock(&l->mu);
  return true;
}

void ts_load_report_clear(rpc_tablet_load *out) {
  for (size_t i = 0; i < out->n_hot_keys; i++)
    free((void *)out->hot_keys[i].key.data);
  free(out->hot_keys);
  memset(out, 0, sizeof(*out));
}
