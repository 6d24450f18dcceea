/* cache: the sharded cache behind cache.h, evicting by second chance
 * (CLOCK), an approximation of LRU.
 *
 * Each of 16 shards (picked by the top bits of hash32 of the key) holds a
 * chained hash table of its entries and two circular lists:
 *   lru     entries in insertion order, oldest first, each with a
 *           `visited` bit: the eviction candidates;
 *   in_use  entries found pinned (refs > 1) by eviction; never evicted,
 *           and back at the newest end of lru when their last handle goes.
 * A hit only pins the entry and sets its visited bit: it moves no list
 * links. (It used to move the entry from lru to in_use and back on
 * release, and the list neighbours it touched were two more cache misses
 * on every block-cache hit of every seek: docs/benchmarks.md, "Tablet
 * iterators and seeks".) Eviction walks lru from the oldest end: a pinned
 * entry moves to in_use, a visited one loses its bit and moves to the
 * newest end (its second chance), anything else is evicted. So an entry
 * used since the hand last passed survives, as under LRU.
 * An entry is in exactly one list while it is in the cache (in_cache), and
 * in neither once erased, replaced or evicted; it is freed, deleter first,
 * when its last reference goes. The cache's own reference counts as one.
 *
 * Each shard's budget is its share of the capacity (the shares sum to the
 * capacity exactly). Eviction runs on insert and whenever a release makes
 * an entry evictable, so with no handle held usage never exceeds capacity.
 * Deleters run after the shard mutex is dropped: they free block memory
 * and must not stall other readers of the shard. */
#include "common/cache.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

#define NSHARDS 16
#define SHARD_BITS 4

/* A link in a circular list. The list heads live in the shard and carry
 * no entry, which is why they are links and not entries (an entry ends in
 * its key, so it cannot be a field of another struct). */
typedef struct clink {
  struct clink *next, *prev;
} clink;

/* The fields a hit reads (the chain walk's hash and next_hash, refs,
 * visited, value) come first, and an entry starts on a cache line, so a
 * hit touches the entry's first line and the one holding its key and, for
 * cache_insert_copy, its value: no pointer to chase after that. */
typedef struct centry {
  struct centry *next_hash; /* chain in the shard's table */
  uint32_t hash;
  uint32_t refs;   /* guarded by the shard mutex */
  uint32_t klen;
  bool in_cache;   /* guarded by the shard mutex */
  bool visited;    /* used since eviction last passed it; shard mutex */
  bool in_use;     /* on the in_use list, not lru; shard mutex */
  void *value;     /* the caller's, or the copy after the key */
  clink link;      /* lru or in_use list */
  cache_deleter deleter;
  size_t charge;
  uint8_t key[];   /* klen bytes, then the copied value if any */
} centry;

#define ENTRY_ALIGN 64

static inline centry *entry_of(clink *l) {
  return (centry *)(void *)((char *)l - offsetof(centry, link));
}

/* Where a copied value starts: after the key, 16-byte aligned. */
static inline size_t value_offset(size_t klen) {
  return (offsetof(centry, key) + klen + 15) & ~(size_t)15;
}

static centry *entry_alloc(size_t size) {
  size = (size + ENTRY_ALIGN - 1) & ~(size_t)(ENTRY_ALIGN - 1);
  void *p = NULL;
  if (posix_memalign(&p, ENTRY_ALIGN, size) != 0) p = xmalloc(size);
  return p;
}

typedef struct shard {
  pthread_mutex_t mu;
  /* Everything below is guarded by mu. */
  size_t capacity;
  size_t usage;
  clink lru;    /* list head: lru.next is the oldest evictable entry */
  clink in_use; /* list head */
  centry **table;
  size_t nbuckets; /* power of two */
  size_t elems;
} shard;

struct cache {
  shard shards[NSHARDS];
  size_t capacity;
  atomic_uint_fast64_t hits, misses, last_id;
};

static void list_init(clink *head) { head->next = head->prev = head; }

static void list_remove(clink *e) {
  e->next->prev = e->prev;
  e->prev->next = e->next;
}

/* Appends at the newest end. */
static void list_append(clink *head, clink *e) {
  e->next = head;
  e->prev = head->prev;
  e->prev->next = e;
  e->next->prev = e;
}

static centry **table_find(shard *s, slice key, uint32_t hash) {
  centry **p = &s->table[hash & (s->nbuckets - 1)];
  while (*p != NULL && ((*p)->hash != hash ||
                        !slice_eq(slice_make((*p)->key, (*p)->klen), key)))
    p = &(*p)->next_hash;
  return p;
}

static void table_grow(shard *s) {
  size_t nb = s->nbuckets * 2;
  centry **t = xcalloc(nb, sizeof(*t));
  for (size_t i = 0; i < s->nbuckets; i++) {
    centry *e = s->table[i];
    while (e != NULL) {
      centry *next = e->next_hash;
      centry **slot = &t[e->hash & (nb - 1)];
      e->next_hash = *slot;
      *slot = e;
      e = next;
    }
  }
  free(s->table);
  s->table = t;
  s->nbuckets = nb;
}

/* A chain of entries whose last reference is gone, freed after unlock. */
typedef struct dead_list {
  centry *head;
} dead_list;

static void unref(centry *e, dead_list *dead) {
  if (--e->refs == 0) {
    e->next_hash = dead->head;
    dead->head = e;
  }
}

static void free_dead(dead_list *dead) {
  centry *e = dead->head;
  while (e != NULL) {
    centry *next = e->next_hash;
    if (e->deleter != NULL) e->deleter(slice_make(e->key, e->klen), e->value);
    free(e);
    e = next;
  }
  dead->head = NULL;
}

/* Takes an entry already unlinked from the table out of its list and
 * drops the cache's reference. Requires s->mu. */
static void finish_erase(shard *s, centry *e, dead_list *dead) {
  list_remove(&e->link);
  e->in_cache = false;
  s->usage -= e->charge;
  unref(e, dead);
}

/* Evicts the oldest entries that are neither pinned nor visited until
 * usage fits (see the top of the file). Ends: each step moves a pinned
 * entry off lru, clears a visited bit (nothing sets one while the mutex is
 * held) or evicts. Requires s->mu. */
static void evict(shard *s, dead_list *dead) {
  while (s->usage > s->capacity && s->lru.next != &s->lru) {
    centry *old = entry_of(s->lru.next);
    if (old->refs > 1) {
      list_remove(&old->link);
      list_append(&s->in_use, &old->link);
      old->in_use = true;
      continue;
    }
    if (old->visited) {
      old->visited = false;
      list_remove(&old->link);
      list_append(&s->lru, &old->link);
      continue;
    }
    centry **p = table_find(s, slice_make(old->key, old->klen), old->hash);
    *p = old->next_hash;
    s->elems--;
    finish_erase(s, old, dead);
  }
}

cache *cache_new(size_t capacity_bytes) {
  cache *c = xcalloc(1, sizeof(*c));
  c->capacity = capacity_bytes;
  for (int i = 0; i < NSHARDS; i++) {
    shard *s = &c->shards[i];
    pthread_mutex_init(&s->mu, NULL);
    s->capacity = capacity_bytes / NSHARDS +
                  ((size_t)i < capacity_bytes % NSHARDS ? 1 : 0);
    list_init(&s->lru);
    list_init(&s->in_use);
    s->nbuckets = 16;
    s->table = xcalloc(s->nbuckets, sizeof(*s->table));
  }
  return c;
}

void cache_free(cache *c) {
  if (c == NULL) return;
  for (int i = 0; i < NSHARDS; i++) {
    shard *s = &c->shards[i];
    dead_list dead = {NULL};
    /* The contract says every handle has been released, so every entry
     * is on lru (a release moves it back from in_use) and goes with the
     * cache's reference. */
    while (s->lru.next != &s->lru)
      finish_erase(s, entry_of(s->lru.next), &dead);
    free_dead(&dead);
    free(s->table);
    pthread_mutex_destroy(&s->mu);
  }
  free(c);
}

static shard *shard_of(cache *c, uint32_t hash) {
  return &c->shards[hash >> (32 - SHARD_BITS)];
}

/* Fills in and links an entry whose key (and copied value) are in place. */
static cache_handle *insert_entry(cache *c, centry *e, slice key,
                                  size_t charge, cache_deleter deleter) {
  uint32_t hash = hash32(key.data, key.len, 0);
  shard *s = shard_of(c, hash);
  e->klen = (uint32_t)key.len;
  e->hash = hash;
  e->deleter = deleter;
  e->charge = charge;
  e->refs = 2; /* the cache's and the returned handle's */
  e->in_cache = true;
  e->visited = false;
  e->in_use = false;
  e->next_hash = NULL;

  dead_list dead = {NULL};
  pthread_mutex_lock(&s->mu);
  list_append(&s->lru, &e->link);
  s->usage += charge;
  centry **p = table_find(s, key, hash);
  centry *old = *p;
  if (old != NULL) {
    e->next_hash = old->next_hash;
    *p = e;
    finish_erase(s, old, &dead);
  } else {
    *p = e;
    if (++s->elems > s->nbuckets) table_grow(s);
  }
  evict(s, &dead);
  pthread_mutex_unlock(&s->mu);
  free_dead(&dead);
  return (cache_handle *)e;
}

cache_handle *cache_insert(cache *c, slice key, void *value, size_t charge,
                           cache_deleter deleter) {
  if (key.len > UINT32_MAX) abort(); /* keys are a few dozen bytes */
  centry *e = entry_alloc(offsetof(centry, key) + key.len);
  if (key.len > 0) memcpy(e->key, key.data, key.len);
  e->value = value;
  return insert_entry(c, e, key, charge, deleter);
}

cache_handle *cache_insert_copy(cache *c, slice key, const void *value,
                                size_t value_len, size_t charge,
                                cache_deleter deleter) {
  if (key.len > UINT32_MAX) abort();
  size_t voff = value_offset(key.len);
  centry *e = entry_alloc(voff + value_len);
  if (key.len > 0) memcpy(e->key, key.data, key.len);
  e->value = (char *)e + voff;
  if (value_len > 0) memcpy(e->value, value, value_len);
  return insert_entry(c, e, key, charge, deleter);
}

cache_handle *cache_lookup(cache *c, slice key) {
  uint32_t hash = hash32(key.data, key.len, 0);
  shard *s = shard_of(c, hash);
  pthread_mutex_lock(&s->mu);
  centry *e = *table_find(s, key, hash);
  if (e != NULL) {
    e->refs++;
    e->visited = true;
  }
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add(e != NULL ? &c->hits : &c->misses, 1);
  return (cache_handle *)e;
}

void cache_release(cache *c, cache_handle *h) {
  centry *e = (centry *)h;
  shard *s = shard_of(c, e->hash);
  dead_list dead = {NULL};
  pthread_mutex_lock(&s->mu);
  unref(e, &dead);
  if (e->in_cache && e->refs == 1) { /* only the cache holds it now */
    if (e->in_use) { /* eviction passed it while pinned */
      list_remove(&e->link);
      list_append(&s->lru, &e->link);
      e->in_use = false;
    }
    evict(s, &dead);
  }
  pthread_mutex_unlock(&s->mu);
  free_dead(&dead);
}

void *cache_value(cache_handle *h) { return ((centry *)h)->value; }

void cache_erase(cache *c, slice key) {
  uint32_t hash = hash32(key.data, key.len, 0);
  shard *s = shard_of(c, hash);
  dead_list dead = {NULL};
  pthread_mutex_lock(&s->mu);
  centry **p = table_find(s, key, hash);
  centry *e = *p;
  if (e != NULL) {
    *p = e->next_hash;
    s->elems--;
    finish_erase(s, e, &dead);
  }
  pthread_mutex_unlock(&s->mu);
  free_dead(&dead);
}

uint64_t cache_new_id(cache *c) { return atomic_fetch_add(&c->last_id, 1) + 1; }

size_t cache_usage(cache *c) {
  size_t total = 0;
  for (int i = 0; i < NSHARDS; i++) {
    shard *s = &c->shards[i];
    pthread_mutex_lock(&s->mu);
    total += s->usage;
    pthread_mutex_unlock(&s->mu);
  }
  return total;
}

size_t cache_capacity(cache *c) { return c->capacity; }
uint64_t cache_hits(cache *c) { return atomic_load(&c->hits); }
uint64_t cache_misses(cache *c) { return atomic_load(&c->misses); }
