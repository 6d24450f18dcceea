/* client_int: what the files of libmica share behind include/mica/mica.h.
 *
 * client.c owns the handle, errors, connections, the retry policy and the
 * routing machinery (locate a key, talk to a tablet, digest a routing
 * error); batch.c, scan.c and admin.c build the calls on top of it.
 * Internally everything returns mica_err (NULL = success); the public entry
 * points turn that into a code plus the thread's error message with
 * mcl_finish().
 *
 * Thread-safety: a mica_client is shared by any number of threads. The
 * connection table has its own reader-writer lock; the routing cache locks
 * per table; counters are atomics. A mcl_retry belongs to one call. */
#ifndef MICA_CLIENT_CLIENT_INT_H
#define MICA_CLIENT_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "client/route_cache.h"
#include "common/err.h"
#include "common/slice.h"
#include "mica/mica.h"
#include "proto/rpc.h"

/* A channel to one address, shared by the calls using it.
 *
 * A master's channel whose calls keep being refused is replaced
 * (mcl_conn_master_result): with gRPC 1.51 a channel whose server went away
 * can keep failing fast with "connection refused" for several seconds after
 * a server listens on the address again (a restarted master, or a standby
 * that won and serves on its address), far past the reconnect backoff cap,
 * while a new channel connects at once. A replaced channel may still be in
 * use by other calls, so it is kept until mica_close; at most
 * MCL_MAX_RETIRED are kept per address, after which the channel stays. */
#define MCL_MAX_RETIRED 64
typedef struct mcl_conn {
  char *address;
  _Atomic(rpc_channel *) ch; /* read with mcl_conn_channel() */
  /* When the current run of refused calls began (0: the last call got
   * through or none failed). */
  _Atomic uint64_t refused_since_us;
  pthread_mutex_t mu; /* guards retired, n_retired */
  rpc_channel *retired[MCL_MAX_RETIRED];
  size_t n_retired;
  _Atomic unsigned gen; /* the client's tls_gen its channel was made at */
} mcl_conn;

/* A TLS file's identity and version (tls_reload.c); all 0 when missing. */
typedef struct mcl_stamp {
  uint64_t dev, ino, size, mtime_ns;
} mcl_stamp;

/* How often a client with TLS looks at its files (tls_reload.c). */
#define MCL_TLS_CHECK_US 1000000

typedef struct mcl_salts mcl_salts; /* salt.c */

struct mica_client {
  mica_options opts;
  char *master;
  route_cache *cache;
  mcl_salts *salts; /* tables' salt buckets (salt.c) */
  pthread_rwlock_t conns_lock;
  /* Guarded by conns_lock: connections by address, never removed before
   * mica_close, so a mcl_conn pointer stays valid for the client's life. */
  mcl_conn **conns;
  size_t n_conns, cap_conns;
  mcl_conn *master_conn; /* immutable after open; NULL when `loc` is used */
  /* Several masters (a list or zk://, mzk_locate.h): the active one is
   * followed; NULL for one master address. */
  struct mzk_locator *loc;
  _Atomic uint64_t master_lookups, master_calls, routing_answers, retries,
      server_rpcs;
  /* TLS file reload (tls_reload.c): tls_mu guards the stamps of the files
   * the current generation was made from and of the last set that failed
   * to load; tls_gen counts the changes that loaded. */
  pthread_mutex_t tls_mu;
  mcl_stamp tls_seen[3], tls_failed[3];
  _Atomic uint64_t tls_next_check_us;
  _Atomic unsigned tls_gen;
};

/* ---- errors ---- */

/* Sets the calling thread's message from `e`, frees it, returns its code. */
int mcl_finish(mica_err *e);

/* ---- connections ---- */

/* The connection to `address`, its channel renewed first if the TLS files
 * changed (mcl_tls_refresh). */
mcl_conn *mcl_conn_get(mica_client *c, const char *address);
/* A new channel to `address` with the client's token and TLS files, read
 * now. */
rpc_channel *mcl_new_channel(mica_client *c, const char *address);
/* tls_reload.c: set up and tear down at open and close; refresh checks the
 * files (at most once per MCL_TLS_CHECK_US) and, when a changed set loaded,
 * replaces k's channel with one that reads them. No-op without TLS. */
void mcl_tls_init(mica_client *c);
void mcl_tls_destroy(mica_client *c);
void mcl_tls_refresh(mica_client *c, mcl_conn *k);
/* The channel calls on `k` use now. */
rpc_channel *mcl_conn_channel(mcl_conn *k);
/* Tells the connection how a master call on `used` ended: `transport_err`
 * is the transport error (NULL when an answer came). After refusals
 * (UNAVAILABLE) for longer than the reconnect backoff cap, `used` is
 * replaced by a new channel. */
void mcl_conn_master_result(mica_client *c, mcl_conn *k, rpc_channel *used,
                            const mica_err *transport_err);

/* ---- retries ---- */

typedef struct mcl_retry {
  mica_client *c;
  uint64_t deadline_us; /* monotonic */
  int attempts;         /* made so far */
  int64_t delay_ms;     /* next backoff bound */
  int immediate;        /* retries made without a backoff */
  mica_err *last;       /* reason for the last retry; owned */
} mcl_retry;

void mcl_retry_init(mcl_retry *r, mica_client *c);
void mcl_retry_done(mcl_retry *r); /* frees `last` */
/* Milliseconds left, at least 1 (0 never reaches gRPC as "no deadline"). */
int64_t mcl_retry_remaining_ms(const mcl_retry *r);
/* Takes `e` as the reason another attempt is needed. With `sleep`, waits
 * the next backoff delay (clipped to the deadline). Returns NULL when the
 * caller should try again, otherwise the error to give up with (deadline
 * or attempts used up), which names the last reason. */
mica_err *mcl_retry_next(mcl_retry *r, mica_err *e, bool sleep);

/* True for codes worth another attempt after a backoff. */
bool mcl_code_retryable(int code);

/* ---- master calls ---- */

/* A unary call to the master with retries on UNAVAILABLE. `req` is a
 * message of m->request; on success *resp (a message of m->response; caller
 * frees with rpc_msg_free) holds a response whose Status is OK. An application error is returned as
 * is, without retry unless it is UNAVAILABLE. */
mica_err *mcl_master_call(mica_client *c, mcl_retry *r, const rpc_method *m,
                         const void *req, void **resp);

/* ---- routing ---- */

/* The route for `key` of `table` (reverse: the route holding the greatest
 * keys below `key`; empty key = the table's last tablet), from the cache or
 * the master, with a location. `out` must be zeroed; caller clears it with
 * rpc_route_clear. */
mica_err *mcl_locate(mica_client *c, mcl_retry *r, const char *table, slice key,
                    bool before, rpc_route *out);

/* Converts and installs routes from the wire. */
void mcl_install_routes(mica_client *c, const char *table,
                       const rpc_tablet_route *routes, size_t n);

/* Digests a failed answer from a tablet server for route `used`:
 * - a routing error carrying descriptors or a new location is installed
 *   (no master involved) and the caller retries at once;
 * - a routing error without them, or a transport failure reaching the
 *   server, drops the route so the next mcl_locate asks the master, after a
 *   backoff;
 * - other retryable codes back off.
 * Takes `e`. Returns NULL to try again or the error to give up with. */
mica_err *mcl_after_failure(mica_client *c, mcl_retry *r, const char *table,
                           const rpc_route *used, mica_err *e,
                           const rpc_status *st);

typedef enum mcl_verdict {
  MCL_RETRY_NOW,   /* a routing answer was installed: go again at once */
  MCL_RETRY_LATER, /* back off first (the route may have been dropped) */
  MCL_FAIL         /* not worth retrying */
} mcl_verdict;

/* The decision part of mcl_after_failure, for calls that handle many
 * tablets in one round (multi-get): updates the cache and says what to do
 * for a failure with `code` from the server of `used`. */
mcl_verdict mcl_digest(mica_client *c, const char *table, const rpc_route *used, int code,
                     const rpc_status *st);

/* Fills a TabletRef from a route. */
void mcl_tablet_ref(rpc_tablet_ref *ref, const rpc_route *r);

/* Checks key and value sizes against the protocol limits. */
mica_err *mcl_check_key(slice key);
mica_err *mcl_check_table(const char *table);

/* Immediate retries (after routing answers) one call makes before it
 * backs off anyway. */
#define MCL_MAX_IMMEDIATE 4


/* ---- table options (topts.c) ---- */

/* `o` (NULL = defaults) on the wire; `w` borrows its strings. */
mica_err *mcl_options_to_wire(const mica_table_options *o,
                              rpc_table_options *w);
/* Fills out's option fields from `w` (NULL = defaults), copying the
 * compression name (strlen + 1 bytes) at *p and advancing it. */
void mcl_options_from_wire(const rpc_table_options *w, uint8_t **p,
                           mica_table_info *out);

/* ---- salted tables (salt.c) ---- */

mcl_salts *mcl_salts_new(void);
void mcl_salts_free(mcl_salts *s); /* accepts NULL */
/* The salt buckets of `table` (0 = unsalted), cached or from the master. */
mica_err *mcl_salt_get(mica_client *c, mcl_retry *r, const char *table,
                       uint32_t *n);
/* The cached salt of `table`, if known (no master call). */
bool mcl_salt_peek(mica_client *c, const char *table, uint32_t *n,
                   uint64_t *table_id);
/* Records what a LookupTablets answer said of `table`. */
void mcl_salt_learn(mica_client *c, const char *table, uint32_t n,
                    uint64_t table_id);
/* mcl_salt_get that also gives the table id the salt belongs to. */
mica_err *mcl_salt_get_id(mica_client *c, mcl_retry *r, const char *table,
                          uint32_t *n, uint64_t *table_id);
/* True when `route` (about to be used for a key salted under the salt of
 * table id `salt_id`) belongs to another table of the same name; the
 * older of the salt and the table's routes is then forgotten, and the
 * caller salts the key again and locates anew. */
bool mcl_salt_stale(mica_client *c, const char *table, uint64_t salt_id,
                    const rpc_route *route);
/* Forgets what is cached of `table` (dropped or created here). */
void mcl_salt_forget(mica_client *c, const char *table);
/* Routes of table id `table_id` arrived for `table`: a cached salt of
 * another id is forgotten. */
void mcl_salt_note_id(mica_client *c, const char *table, uint64_t table_id);
/* The bucket of `key` among `n` (crc32c(key) mod n). */
uint8_t mcl_salt_bucket(slice key, uint32_t n);
/* INVALID_ARGUMENT when `key` is too long for a table with `n` buckets. */
mica_err *mcl_salt_check_key(slice key, uint32_t n, const char *table);
/* out = bucket || key. */
void mcl_salt_key(slice key, uint32_t n, buf *out);
/* The merge of one plain scanner per bucket. */
typedef struct mcl_salt_scan mcl_salt_scan;
mica_err *mcl_salt_scan_open(mica_client *c, const char *table, uint32_t n,
                             slice start, slice end, slice prefix,
                             uint64_t limit, bool reverse, bool keys_only,
                             mcl_salt_scan **out);
int mcl_salt_scan_next(mcl_salt_scan *m, int *has_row, const void **key,
                       size_t *key_len, const void **value, size_t *value_len);
void mcl_salt_scan_free(mcl_salt_scan *m); /* accepts NULL */

/* Sends the request of a plain scanner's next stream now, if it has none
 * open, so that several scanners' servers work at once (a salted scan's
 * buckets). Never fails: mica_scan_next retries what did not start. */
void mcl_scan_start(mica_scanner *s);
/* A plain scanner over raw (already salted) keys: scan.c. */
mica_err *mcl_scan_open_raw(mica_client *c, const char *table, slice start,
                            slice end, slice prefix, uint64_t limit,
                            bool reverse, bool keys_only, mica_scanner **out);

#endif
