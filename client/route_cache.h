/* route_cache: the client's map from keys to the tablets that hold them.
 *
 * Per table, an ordered array of tablet routes keyed by start key. A route
 * says which tablet covers [start_key, end_key) of the table, at which
 * range epoch, and which server serves it at which assign epoch. Lookups
 * are binary searches; routes come from the master's LookupTablets answers
 * and, more often, from routing errors returned by tablet servers, which
 * carry the current descriptors and let the client skip the master.
 *
 * Freshness rule: range epochs only grow, and a range that replaces others
 * (split daughters, merged tablet) has a range epoch greater than each of
 * the ranges it replaces (the master guarantees this). So when a route
 * arrives that overlaps cached routes, the one with the greater range epoch
 * wins: cached routes overlapping an arriving one and not fresher than it
 * are dropped, and the arriving route is ignored if any cached overlapping
 * route is fresher. For the same tablet and range epoch, the greater assign
 * epoch wins (a move).
 *
 * The cache is a hint, not the truth: having forgotten a range (evicted or
 * invalidated), it can accept an older route for it again. Tablet servers
 * check epochs on every request and answer a stale route with a routing
 * error carrying the current descriptors, which the client installs.
 *
 * Capacity: at most `capacity` routes over all tables; beyond it the least
 * recently used routes are dropped (usage is stamped with an atomic clock
 * on every hit, so hits never write-lock).
 *
 * Thread-safety: every function may be called from any thread. Each table
 * has its own reader-writer lock, so lookups on one table never wait for
 * each other, and no lock is shared by all tables; the table list itself
 * has a reader-writer lock taken briefly to find a table. */
#ifndef MICA_CLIENT_ROUTE_CACHE_H
#define MICA_CLIENT_ROUTE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "proto/route.h"

/* A cached route is an rpc_route (proto/route.h): one tablet and where it
 * is served. The cache keeps no table name or id in it (the table is the
 * cache's key). */

typedef struct route_cache route_cache;

/* Caller frees with route_cache_free(). `capacity` >= 1 routes over all tables. */
route_cache *route_cache_new(size_t capacity);
void route_cache_free(route_cache *c); /* accepts NULL */

/* Copies the route covering `key` in `table` into `out` (which must be
 * zeroed or cleared; caller clears it with rpc_route_clear). Returns false
 * on a miss, leaving `out` untouched. Counts a hit or a miss. */
bool route_cache_lookup(route_cache *c, const char *table, slice key,
                        rpc_route *out);

/* The route covering the greatest keys strictly below `key`, or, when
 * `key` is empty, the last route of the table (for reverse scans). */
bool route_cache_lookup_before(route_cache *c, const char *table, slice key,
                               rpc_route *out);

/* Installs routes per the freshness rule above. Routes are copied. */
void route_cache_install(route_cache *c, const char *table,
                         const rpc_route *routes, size_t n);

/* Drops the route of `tablet_id` if its range epoch is <= `range_epoch`
 * (0 drops whatever is cached): for an unreachable server or a NOT_SERVING
 * answer that carried no new location. */
void route_cache_invalidate(route_cache *c, const char *table,
                            uint64_t tablet_id, uint64_t range_epoch);

/* Drops every route of `table` (after the table was dropped). */
void route_cache_forget_table(route_cache *c, const char *table);

typedef struct route_cache_stats {
  uint64_t hits;
  uint64_t misses;
  uint64_t installs;   /* routes installed */
  uint64_t stale;      /* arriving routes ignored as older than cached */
  uint64_t evictions;  /* routes dropped for capacity */
  size_t routes;       /* routes cached now */
} route_cache_stats;

void route_cache_get_stats(route_cache *c, route_cache_stats *out);

#endif
