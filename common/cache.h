/* cache: a sharded cache with a byte budget, shared by all readers,
 * evicting by second chance (CLOCK, an approximation of LRU: an entry
 * used since eviction last passed it stays).
 *
 * The block cache of a tablet server is one of these: every SSTable's data
 * blocks compete for one budget. Entries are reference counted; a lookup
 * returns a handle that pins the value until released, so eviction never
 * frees a value in use. A pinned entry still counts against the budget, so
 * usage may exceed capacity while many handles are held.
 *
 * Keys are bytes (callers use file number + block offset). Values are
 * opaque pointers freed by the deleter given at insert, once the entry is
 * both evicted (or replaced, or erased) and released by every holder.
 *
 * Thread-safety: every function may be called from any thread; each of 16
 * shards has its own mutex. */
#ifndef MICA_COMMON_CACHE_H
#define MICA_COMMON_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

typedef struct cache cache;
typedef struct cache_handle cache_handle;
typedef void (*cache_deleter)(slice key, void *value);

/* Caller frees with cache_free() after releasing every handle. */
cache *cache_new(size_t capacity_bytes);
void cache_free(cache *c); /* accepts NULL */

/* Inserts `value` under `key` with `charge` bytes; replaces any entry with
 * that key. Returns a handle pinning the new entry; caller releases it. */
cache_handle *cache_insert(cache *c, slice key, void *value, size_t charge,
                           cache_deleter deleter);
/* cache_insert, with the value `value_len` bytes copied into the entry's
 * own allocation, right after its key: a hit then reads the value from
 * the cache line it already read the key from, with no pointer to chase
 * (the block cache's hit on every seek: docs/benchmarks.md). cache_value
 * returns the copy (16-byte aligned), and the deleter gets it: it frees
 * what the value points to, never the copy itself. */
cache_handle *cache_insert_copy(cache *c, slice key, const void *value,
                                size_t value_len, size_t charge,
                                cache_deleter deleter);
/* A handle pinning the entry, or NULL. Caller releases it. */
cache_handle *cache_lookup(cache *c, slice key);
void cache_release(cache *c, cache_handle *h);
void *cache_value(cache_handle *h);
void cache_erase(cache *c, slice key);

/* A number unique within this cache, for key prefixes (one per file open). */
uint64_t cache_new_id(cache *c);

size_t cache_usage(cache *c);    /* charge of all entries held */
size_t cache_capacity(cache *c);
/* Lookups that found / did not find an entry, since creation. */
uint64_t cache_hits(cache *c);
uint64_t cache_misses(cache *c);

#endif
