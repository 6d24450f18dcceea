/* route: the one plain C type for a tablet descriptor and its location, with
 * its conversions to and from the wire and its range checks.
 *
 * An rpc_route says which tablet (tablet_id, of table table_id) covers the
 * keys [start_key, end_key) at which range epoch, and which server serves it
 * at which assign epoch. The client's routing cache holds them, the tablet
 * server describes the tablets it serves and the ones that left it with
 * them, and the master's answers are built from them. Unlike the wire
 * structs of wire.h, an rpc_route owns its bytes, so it outlives the message
 * it came from.
 *
 * Keys: start inclusive, end exclusive; an empty start is the start of the
 * key space and an empty end its end (an empty key is never a valid key).
 *
 * Ownership: every rpc_route is cleared with rpc_route_clear(), which frees
 * its members (not the struct). A zeroed rpc_route is a valid empty one.
 *
 * Thread-safety: plain values; no internal locking. */
#ifndef MICA_PROTO_ROUTE_H
#define MICA_PROTO_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"
#include "proto/wire.h"

typedef struct rpc_route {
  uint64_t tablet_id;
  uint64_t table_id;    /* 0 when not known (the client's cache) */
  char *table_name;     /* owned; NULL when not known */
  buf start_key;        /* empty = start of the key space */
  buf end_key;          /* empty = end of the key space */
  uint64_t range_epoch;
  uint64_t server_id;   /* 0 when unassigned */
  uint64_t assign_epoch;
  char *address;        /* owned "host:port"; NULL when unassigned */
} rpc_route;

/* Frees the route's owned members (not the struct); accepts NULL. */
void rpc_route_clear(rpc_route *r);
/* Deep copy into `dst`, which must be cleared or zeroed. */
void rpc_route_copy(rpc_route *dst, const rpc_route *src);
/* True if `key` lies in [start_key, end_key). */
bool rpc_route_contains(const rpc_route *r, slice key);

/* From the wire into `out` (zeroed or cleared first by the caller, or
 * not: it is overwritten without freeing). A location without an address
 * counts as none (server_id 0, address NULL). */
void rpc_route_from_wire(rpc_route *out, const rpc_tablet_route *w);
/* From a descriptor alone, served (or to be served) under `assign_epoch`;
 * no server. */
void rpc_route_from_desc(rpc_route *out, const rpc_tablet_descriptor *w,
                         uint64_t assign_epoch);

/* The wire form of a route, pointing into the route: valid until the route
 * is cleared or changed. */
typedef struct rpc_route_wire {
  rpc_tablet_route route;
  rpc_tablet_descriptor desc;
  rpc_location loc;
} rpc_route_wire;

/* Fills `w` from `r`: the descriptor always, the location when `r` has an
 * address (and `with_location`). Returns &w->route. */
rpc_tablet_route *rpc_route_to_wire(const rpc_route *r, bool with_location,
                                    rpc_route_wire *w);
/* Fills the wire descriptor of `r` into `out`, pointing into `r`. */
void rpc_route_desc(const rpc_route *r, rpc_tablet_descriptor *out);

/* INVALID_ARGUMENT naming `what` (a field name, "desc") unless `w` is a
 * usable descriptor: present, a non-zero tablet_id, bounds that are keys of
 * at most MICA_MAX_KEY bytes, and start_key below end_key when the end is
 * bounded. */
mica_err *rpc_check_desc(const rpc_tablet_descriptor *w, const char *what);

#endif
