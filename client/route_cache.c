/* route_cache: per-table sorted arrays of routes under per-table rwlocks.
 *
 * Tables are never removed from the cache's list once created (forgetting a
 * table empties it), so the list can be read without a lock: new tables are
 * prepended under `add_mu` and published with a release store, and each
 * node's `name` and `next` never change after that. That is what keeps one
 * table's traffic from ever touching another table's lock. */
#include "client/route_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct entry {
  rpc_route r;
  _Atomic uint64_t last_used; /* cache clock at the last hit or install */
};

struct rc_table {
  char *name;              /* immutable */
  struct rc_table *next;   /* immutable once published */
  pthread_rwlock_t lock;
  /* Guarded by `lock`: sorted by start key, ranges never overlap. */
  struct entry **v;
  size_t n, cap;
};

struct route_cache {
  size_t capacity;
  _Atomic(struct rc_table *) tables;
  pthread_mutex_t add_mu; /* serializes table creation */
  pthread_mutex_t evict_mu; /* one evictor at a time */
  _Atomic uint64_t clock;
  _Atomic size_t total;
  _Atomic uint64_t hits, misses, installs, stale, evictions;
};

/* end is exclusive; an empty end is +infinity. */
static bool below_end(slice key, const buf *end) {
  return end->len == 0 || slice_cmp(key, buf_slice(end)) < 0;
}

route_cache *route_cache_new(size_t capacity) {
  route_cache *c = xcalloc(1, sizeof(*c));
  c->capacity = capacity ? capacity : 1;
  pthread_mutex_init(&c->add_mu, NULL);
  pthread_mutex_init(&c->evict_mu, NULL);
  return c;
}

static void free_entry(struct entry *e) {
  rpc_route_clear(&e->r);
  free(e);
}

void route_cache_free(route_cache *c) {
  if (c == NULL) return;
  struct rc_table *t = atomic_load(&c->tables);
  while (t) {
    struct rc_table *next = t->next;
    for (size_t i = 0; i < t->n; i++) free_entry(t->v[i]);
    free(t->v);
    free(t->name);
    pthread_rwlock_destroy(&t->lock);
    free(t);
    t = next;
  }
  pthread_mutex_destroy(&c->add_mu);
  pthread_mutex_destroy(&c->evict_mu);
  free(c);
}

static struct rc_table *find_table(route_cache *c, const char *name, bool create) {
  for (struct rc_table *t = atomic_load_explicit(&c->tables, memory_order_acquire);
       t; t = t->next)
    if (strcmp(t->name, name) == 0) return t;
  if (!create) return NULL;
  pthread_mutex_lock(&c->add_mu);
  struct rc_table *head = atomic_load_explicit(&c->tables, memory_order_acquire);
  for (struct rc_table *t = head; t; t = t->next) {
    if (strcmp(t->name, name) == 0) {
      pthread_mutex_unlock(&c->add_mu);
      return t;
    }
  }
  struct rc_table *t = xcalloc(1, sizeof(*t));
  t->name = xstrdup(name);
  t->next = head;
  pthread_rwlock_init(&t->lock, NULL);
  atomic_store_explicit(&c->tables, t, memory_order_release);
  pthread_mutex_unlock(&c->add_mu);
  return t;
}

/* Index of the last entry whose start key is <= key (strictly < when
 * `strict`), or -1 if there is none. Caller holds t->lock. */
static long last_start_at_or_below(const struct rc_table *t, slice key, bool strict) {
  long lo = 0, hi = (long)t->n - 1, found = -1;
  while (lo <= hi) {
    long mid = lo + (hi - lo) / 2;
    int r = slice_cmp(buf_slice(&t->v[mid]->r.start_key), key);
    if (r < 0 || (r == 0 && !strict)) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

static void hit(route_cache *c, struct entry *e, rpc_route *out) {
  atomic_store_explicit(&e->last_used, atomic_fetch_add(&c->clock, 1) + 1,
                        memory_order_relaxed);
  rpc_route_copy(out, &e->r);
  atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
}

bool route_cache_lookup(route_cache *c, const char *table, slice key, rpc_route *out) {
  struct rc_table *t = find_table(c, table, false);
  if (t != NULL) {
    pthread_rwlock_rdlock(&t->lock);
    long i = last_start_at_or_below(t, key, false);
    if (i >= 0 && below_end(key, &t->v[i]->r.end_key)) {
      hit(c, t->v[i], out);
      pthread_rwlock_unlock(&t->lock);
      return true;
    }
    pthread_rwlock_unlock(&t->lock);
  }
  atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
  return false;
}

bool route_cache_lookup_before(route_cache *c, const char *table, slice key,
                               rpc_route *out) {
  struct rc_table *t = find_table(c, table, false);
  if (t != NULL) {
    pthread_rwlock_rdlock(&t->lock);
    long i = key.len == 0 ? (long)t->n - 1 : last_start_at_or_below(t, key, true);
    if (i >= 0) {
      const buf *end = &t->v[i]->r.end_key;
      /* The route must reach up to `key`, or the keys just below it may
       * belong to a tablet that is not cached. */
      bool reaches = key.len == 0 ? end->len == 0
                                  : end->len == 0 || slice_cmp(buf_slice(end), key) >= 0;
      if (reaches) {
        hit(c, t->v[i], out);
        pthread_rwlock_unlock(&t->lock);
        return true;
      }
    }
    pthread_rwlock_unlock(&t->lock);
  }
  atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
  return false;
}

static bool overlaps(const rpc_route *a, const rpc_route *b) {
  return below_end(buf_slice(&a->start_key), &b->end_key) &&
         below_end(buf_slice(&b->start_key), &a->end_key);
}

/* True if cached `e` is fresher than arriving `d` (so `d` is stale). */
static bool fresher(const rpc_route *e, const rpc_route *d) {
  if (e->range_epoch != d->range_epoch) return e->range_epoch > d->range_epoch;
  return e->tablet_id == d->tablet_id && e->assign_epoch > d->assign_epoch;
}

/* Caller holds t->lock for writing. Returns the change in route count.
 * Every cached route overlapping `d` and not fresher than it is dropped;
 * `d` goes in unless some overlapping cached route is fresher. Dropping the
 * older ones even when `d` is refused matters: `d` proves them stale. */
static long install_one(route_cache *c, struct rc_table *t, const rpc_route *d) {
  /* Overlapping entries form one contiguous run starting at the last entry
   * whose start is <= d's start (it may reach into d) or the one after. */
  long first = last_start_at_or_below(t, buf_slice(&d->start_key), false);
  if (first < 0 || !overlaps(&t->v[first]->r, d)) first++;
  long last = first;
  bool stale = false;
  while ((size_t)last < t->n && overlaps(&t->v[last]->r, d)) {
    if (fresher(&t->v[last]->r, d)) stale = true;
    last++;
  }
  long keep = first;
  for (long i = first; i < last; i++) {
    if (fresher(&t->v[i]->r, d))
      t->v[keep++] = t->v[i];
    else
      free_entry(t->v[i]);
  }
  long removed = last - keep;
  if (removed > 0)
    memmove(&t->v[keep], &t->v[last], (t->n - (size_t)last) * sizeof(*t->v));
  t->n -= (size_t)removed;
  if (stale) {
    atomic_fetch_add_explicit(&c->stale, 1, memory_order_relaxed);
    return -removed;
  }
  /* Nothing overlapping is left, so d's slot is where `first` now is. */
  if (t->n + 1 > t->cap) {
    t->cap = t->cap ? t->cap * 2 : 8;
    t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
  }
  memmove(&t->v[first + 1], &t->v[first], (t->n - (size_t)first) * sizeof(*t->v));
  t->n++;
  struct entry *e = xcalloc(1, sizeof(*e));
  rpc_route_copy(&e->r, d);
  atomic_store_explicit(&e->last_used, atomic_fetch_add(&c->clock, 1) + 1,
                        memory_order_relaxed);
  t->v[first] = e;
  atomic_fetch_add_explicit(&c->installs, 1, memory_order_relaxed);
  return 1 - removed;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Drops the least recently used routes until the cache is at 15/16 of its
 * capacity, so that evictions come in batches rather than one per install. */
static void evict(route_cache *c) {
  pthread_mutex_lock(&c->evict_mu);
  size_t total = atomic_load(&c->total);
  if (total <= c->capacity) {
    pthread_mutex_unlock(&c->evict_mu);
    return;
  }
  size_t target = c->capacity - c->capacity / 16;
  size_t drop = total - target;
  uint64_t *stamps = xmalloc(total * sizeof(*stamps));
  size_t m = 0;
  for (struct rc_table *t = atomic_load(&c->tables); t; t = t->next) {
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->n && m < total; i++)
      stamps[m++] = atomic_load_explicit(&t->v[i]->last_used, memory_order_relaxed);
    pthread_rwlock_unlock(&t->lock);
  }
  if (drop > m) drop = m;
  qsort(stamps, m, sizeof(*stamps), cmp_u64);
  uint64_t cutoff = drop ? stamps[drop - 1] : 0;
  free(stamps);
  size_t dropped = 0;
  for (struct rc_table *t = atomic_load(&c->tables); t && dropped < drop; t = t->next) {
    pthread_rwlock_wrlock(&t->lock);
    size_t keep = 0;
    for (size_t i = 0; i < t->n; i++) {
      struct entry *e = t->v[i];
      if (dropped < drop &&
          atomic_load_explicit(&e->last_used, memory_order_relaxed) <= cutoff) {
        free_entry(e);
        dropped++;
      } else {
        t->v[keep++] = e;
      }
    }
    t->n = keep;
    pthread_rwlock_unlock(&t->lock);
  }
  atomic_fetch_sub(&c->total, dropped);
  atomic_fetch_add(&c->evictions, dropped);
  pthread_mutex_unlock(&c->evict_mu);
}

void route_cache_install(route_cache *c, const char *table, const rpc_route *routes,
                         size_t n) {
  if (n == 0) return;
  struct rc_table *t = find_table(c, table, true);
  long delta = 0;
  pthread_rwlock_wrlock(&t->lock);
  for (size_t i = 0; i < n; i++) delta += install_one(c, t, &routes[i]);
  pthread_rwlock_unlock(&t->lock);
  if (delta >= 0)
    atomic_fetch_add(&c->total, (size_t)delta);
  else
    atomic_fetch_sub(&c->total, (size_t)-delta);
  if (atomic_load(&c->total) > c->capacity) evict(c);
}

void route_cache_invalidate(route_cache *c, const char *table, uint64_t tablet_id,
                            uint64_t range_epoch) {
  struct rc_table *t = find_table(c, table, false);
  if (t == NULL) return;
  size_t dropped = 0;
  pthread_rwlock_wrlock(&t->lock);
  size_t keep = 0;
  for (size_t i = 0; i < t->n; i++) {
    struct entry *e = t->v[i];
    if (e->r.tablet_id == tablet_id && (range_epoch == 0 || e->r.range_epoch <= range_epoch)) {
      free_entry(e);
      dropped++;
    } else {
      t->v[keep++] = e;
    }
  }
  t->n = keep;
  pthread_rwlock_unlock(&t->lock);
  atomic_fetch_sub(&c->total, dropped);
}

void route_cache_forget_table(route_cache *c, const char *table) {
  struct rc_table *t = find_table(c, table, false);
  if (t == NULL) return;
  pthread_rwlock_wrlock(&t->lock);
  size_t n = t->n;
  for (size_t i = 0; i < n; i++) free_entry(t->v[i]);
  t->n = 0;
  pthread_rwlock_unlock(&t->lock);
  atomic_fetch_sub(&c->total, n);
}

void route_cache_get_stats(route_cache *c, route_cache_stats *out) {
  out->hits = atomic_load(&c->hits);
  out->misses = atomic_load(&c->misses);
  out->installs = atomic_load(&c->installs);
  out->stale = atomic_load(&c->stale);
  out->evictions = atomic_load(&c->evictions);
  out->routes = atomic_load(&c->total);
}
