/* mica.h: the C client library of Mica, a range-partitioned sorted
 * key-value store.
 *
 * A program opens one mica_client on the address of the cluster's master
 * and shares it between all its threads. The client asks the master where a
 * key lives, remembers the answer in a routing cache, and then talks to the
 * tablet servers directly. When a tablet has split or moved, the server that
 * no longer serves it answers with where the data is now; the client
 * installs that answer and retries without asking the master. Only a
 * location it does not know or cannot reach sends it back to the master.
 *
 * Conventions
 * - Every call returns a mica_code (include/mica/status.h): MICA_OK (0) on
 *   success. The one-line detail of the last failure on the calling thread
 *   is mica_errmsg(); it names what was wrong ("table 'users' not found",
 *   "master 127.0.0.1:7000 unreachable: ...").
 * - Keys and values are arbitrary bytes passed as pointer and length. A key
 *   is 1..16384 bytes, a value 0..8 MiB; keys sort by unsigned bytewise
 *   comparison, a proper prefix first.
 * - Memory: a buffer or array a call returns through an out-parameter is
 *   one allocation that the caller frees with mica_free(), including every
 *   string and key it points to. Pointers a scanner hands out are valid until
 *   the next call on that scanner.
 * - Retries: calls retry on their own what is worth retrying (a tablet in
 *   transition, a server or the master unreachable, a routing answer) with
 *   bounded exponential backoff and jitter, within the call's deadline
 *   (mica_options.deadline_ms) and retry budget. When both run out the call
 *   fails with MICA_DEADLINE_EXCEEDED or the last error seen, and the message
 *   says what kept failing.
 * - Errors common to every data call: MICA_INVALID_ARGUMENT (empty or
 *   oversized key or value, NULL where a value is required), MICA_NOT_FOUND
 *   (unknown table; for mica_get also a missing key), MICA_UNAVAILABLE (the
 *   master or a server could not be reached within the deadline),
 *   MICA_DEADLINE_EXCEEDED, MICA_IO_ERROR / MICA_CORRUPTION (from the
 *   server's storage), MICA_RESOURCE_EXHAUSTED (a size limit).
 *
 * Thread-safety: a mica_client may be used by any number of threads at once;
 * the routing cache is read without a lock shared by all tables. A
 * mica_scanner and a mica_batch are each used by one thread at a time.
 * mica_errmsg() is per thread. */
#ifndef MICA_MICA_H
#define MICA_MICA_H

#include <stddef.h>
#include <stdint.h>

#include "mica/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MICA_VERSION_MAJOR 0
#define MICA_VERSION_MINOR 1
#define MICA_VERSION_PATCH 0

/* "0.1.0": the version of the library actually linked; static. */
const char *mica_version(void);

/* ---- memory and errors ---- */

/* Frees a buffer or array returned by any call below. Accepts NULL. */
void mica_free(void *p);

/* The message of the last failed call made by this thread ("ok" after a
 * success). Valid until this thread's next call into the library. */
const char *mica_errmsg(void);

/* ---- the client ---- */

typedef struct mica_client mica_client;

typedef struct mica_options {
  /* Deadline of each call, retries included (ms). Default 10000. */
  int64_t deadline_ms;
  /* Most attempts of one call before it gives up even with time left.
   * Default 64. */
  int max_attempts;
  /* Routes (tablets) the routing cache holds over all tables; the least
   * recently used are dropped beyond it. Default 100000. */
  size_t cache_routes;
  /* Tablets fetched per master lookup: the one asked for plus neighbours
   * in scan direction. Default 32. */
  uint32_t prefetch;
  /* First and largest retry delay (ms). Defaults 10 and 1000. Each delay
   * is drawn uniformly from [d/2, d], d doubling per attempt. */
  int64_t backoff_initial_ms;
  int64_t backoff_max_ms;
  /* Bearer token sent with every call (docs/security.md), copied by
   * mica_open. NULL (default) = none, which a cluster without a tokens
   * file accepts. Refusals are MICA_UNAUTHENTICATED (missing or unknown
   * token) and MICA_PERMISSION_DENIED (role too low), naming the role. */
  const char *token;
  /* TLS (docs/security.md), copied by mica_open: with tls_ca set every
   * connection is TLS and the servers' certificates must chain to this PEM
   * CA file; tls_cert and tls_key (together) present a client
   * certificate. NULL (default) = plaintext. The files are looked at
   * again at most once a second: when replaced on disk by a set that
   * loads, connections switch to them (docs/security.md, "Client-side
   * reload"). */
  const char *tls_ca;
  const char *tls_cert;
  const char *tls_key;
} mica_options;

/* Fills `o` with the defaults above. */
void mica_options_init(mica_options *o);

/* Opens a client on the master at `master` ("host:port"). `opts` may be
 * NULL for the defaults. Connecting is lazy: an unreachable master shows up
 * on the first call. On MICA_OK *out is the client: close it with
 * mica_close(). Errors: MICA_INVALID_ARGUMENT for a malformed address or
 * option. */
int mica_open(const char *master, const mica_options *opts, mica_client **out);

/* Closes the client. Every call on it must have returned and every scanner
 * been closed. Accepts NULL. */
void mica_close(mica_client *c);

/* The master address the client was opened on; valid until mica_close. */
const char *mica_master_address(const mica_client *c);

typedef struct mica_stats {
  uint64_t cache_hits;         /* routing cache lookups that found a route */
  uint64_t cache_misses;       /* lookups that did not */
  uint64_t master_lookups;     /* LookupTablets round trips to the master */
  uint64_t master_calls;       /* every round trip to the master, lookups and
                                  admin calls included */
  uint64_t routing_answers;    /* server routing errors whose descriptors
                                  were installed without the master */
  uint64_t retries;            /* attempts beyond the first of any call */
  uint64_t server_rpcs;        /* round trips (or streams) to tablet servers */
  uint64_t cached_routes;      /* routes in the cache now */
} mica_stats;

/* Counters since mica_open (monotonic, except cached_routes). */
void mica_get_stats(mica_client *c, mica_stats *out);

/* ---- single keys ---- */

/* Sets `key` to `value` in `table`. MICA_OK once the write is durable. */
int mica_put(mica_client *c, const char *table, const void *key,
             size_t key_len, const void *value, size_t value_len);

/* Reads `key`. On MICA_OK *value (caller frees with mica_free; never NULL,
 * even for an empty value) and *value_len are set. MICA_NOT_FOUND when the
 * key has no value (also for an unknown table: mica_errmsg tells which). */
int mica_get(mica_client *c, const char *table, const void *key,
             size_t key_len, void **value, size_t *value_len);

/* Removes `key`; deleting a missing key is MICA_OK. */
int mica_delete(mica_client *c, const char *table, const void *key,
                size_t key_len);

/* ---- batches ---- */

/* An ordered list of puts and deletes, built by the caller. A later
 * mutation of the same key wins. */
typedef struct mica_batch mica_batch;

/* Caller frees with mica_batch_free(). */
mica_batch *mica_batch_new(void);
void mica_batch_free(mica_batch *b); /* accepts NULL */
/* Copy the bytes. MICA_INVALID_ARGUMENT for an empty key. */
int mica_batch_put(mica_batch *b, const void *key, size_t key_len,
                   const void *value, size_t value_len);
int mica_batch_delete(mica_batch *b, const void *key, size_t key_len);
/* Mutations added so far. */
size_t mica_batch_count(const mica_batch *b);
/* Empties the batch for reuse. */
void mica_batch_clear(mica_batch *b);

enum {
  /* Fail with MICA_INVALID_ARGUMENT, applying nothing, when the batch's
   * keys span more than one tablet, instead of splitting it. */
  MICA_BATCH_SINGLE_TABLET = 1u << 0,
};

typedef struct mica_batch_result {
  /* Tablets the batch was cut into. Each part is atomic; when parts > 1
   * the batch as a whole was not. */
  size_t parts;
  /* Parts applied and durable. On MICA_OK equal to parts; on failure the
   * parts before the failing one in key order (a part either applied
   * entirely or not at all). */
  size_t parts_applied;
} mica_batch_result;

/* Writes the batch to `table`. Mutations are grouped by tablet in key order
 * and each group is applied atomically; groups are sent one after another
 * and the first failure stops the rest. `result` may be NULL. An empty
 * batch is MICA_OK with zero parts. */
int mica_batch_write(mica_client *c, const char *table, const mica_batch *b,
                     unsigned flags, mica_batch_result *result);

/* ---- multi-get ---- */

/* One key to read. */
typedef struct mica_key {
  const void *data;
  size_t len;
} mica_key;

/* The answer for one key. */
typedef struct mica_value {
  int code;     /* MICA_OK found, MICA_NOT_FOUND absent, or the error that
                   stopped this key */
  void *data;   /* the value when code is MICA_OK, else NULL */
  size_t len;
} mica_value;

/* Reads `n` keys (any order, duplicates allowed). Keys are grouped by
 * tablet, the groups of one server sent in one request, and all servers
 * asked in parallel. On return *values (caller frees with mica_free: one
 * allocation holding every value) has n entries in the order of `keys`.
 * Returns MICA_OK when every key got an answer (found or not); otherwise the
 * first per-key error, with *values still filled in. */
int mica_multi_get(mica_client *c, const char *table, const mica_key *keys,
                   size_t n, mica_value **values);

/* ---- scans ---- */

typedef struct mica_scan_options {
  const void *start; /* inclusive lower bound; NULL/0 = from the first key */
  size_t start_len;
  const void *end;   /* exclusive upper bound; NULL/0 = to the last key */
  size_t end_len;
  const void *prefix; /* only keys with this prefix; NULL/0 = all */
  size_t prefix_len;
  uint64_t limit;     /* at most this many rows; 0 = no limit */
  int reverse;        /* descending order */
  int keys_only;      /* rows carry no values */
} mica_scan_options;

typedef struct mica_scanner mica_scanner;

/* Starts a scan of `table` over [start, end) ∩ prefix. `opts` may be NULL
 * for a full forward scan. The scan crosses tablet boundaries on its own
 * and, when tablets split or move while it runs, resumes after the last key
 * it returned: no key is returned twice or skipped. Each tablet's rows come
 * from one consistent snapshot of that tablet. Errors:
 * MICA_INVALID_ARGUMENT when start > end; MICA_NOT_FOUND for an unknown
 * table (found at open). On a salted table (mica_table_options) the scan
 * runs on every bucket and merges them: the same rows in the same order,
 * at the cost of one stream per bucket. Close with mica_scan_close(). */
int mica_scan_open(mica_client *c, const char *table,
                   const mica_scan_options *opts, mica_scanner **out);

/* The next row. On MICA_OK with *has_row = 1, *key and *value point at the row
 * (valid until the next call on the scanner; value is NULL with length 0
 * for keys-only scans); with *has_row = 0 the scan is over. Each call has
 * its own deadline for the retries it needs. After an error the scanner may
 * be called again: it resumes after the last row returned. */
int mica_scan_next(mica_scanner *s, int *has_row, const void **key,
                   size_t *key_len, const void **value, size_t *value_len);

/* Accepts NULL. */
void mica_scan_close(mica_scanner *s);

/* ---- administration ---- */

/* Creates `table` (1..128 bytes of [A-Za-z0-9_.-]) pre-split at the
 * `n_splits` keys (strictly increasing, non-empty): n_splits+1 tablets.
 * Errors: MICA_ALREADY_EXISTS, MICA_INVALID_ARGUMENT. */
int mica_create_table(mica_client *c, const char *table,
                      const mica_key *splits, size_t n_splits);

/* A table's options (docs/table-options.md). Zero values (bloom_bits -1)
 * mean the servers' defaults. */
typedef struct mica_table_options {
  const char *compression;        /* NULL/"" default, "none", "lz4", "zstd" */
  uint64_t split_threshold_bytes; /* 0 default, else 1 MiB .. 1 TiB */
  uint32_t block_size;            /* 0 default, else 1 KiB .. 4 MiB */
  int bloom_bits;                 /* -1 default, 0 (no filter) .. 32 */
  /* 0 = unsalted; 2..255 salts every key with a one-byte bucket
   * (docs/client.md, "Salted tables"). Fixed at create. */
  uint32_t salt_buckets;
} mica_table_options;

/* Fills `o` with every option at its default. */
void mica_table_options_init(mica_table_options *o);

/* mica_create_table with options (`opts` NULL = defaults). A salted table
 * is also cut at its bucket boundaries, and inside every bucket at each of
 * `splits` (given unsalted): salt_buckets * (n_splits + 1) tablets. Errors
 * as mica_create_table; MICA_INVALID_ARGUMENT names a bad option. */
int mica_create_table_opts(mica_client *c, const char *table,
                           const mica_key *splits, size_t n_splits,
                           const mica_table_options *opts);

/* Which options mica_alter_table changes. */
#define MICA_ALTER_COMPRESSION 1u
#define MICA_ALTER_SPLIT_THRESHOLD 2u
#define MICA_ALTER_BLOCK_SIZE 4u
#define MICA_ALTER_BLOOM_BITS 8u

/* Sets the options of `table` named in `mask` to their values in `opts`
 * (salt_buckets must be 0: it cannot change). The servers apply them to
 * the SSTables they write from then on and to split decisions, within one
 * heartbeat interval. Errors: MICA_NOT_FOUND, MICA_INVALID_ARGUMENT naming
 * the option (nothing changes then). */
int mica_alter_table(mica_client *c, const char *table,
                     const mica_table_options *opts, unsigned mask);

/* Drops `table` and forgets its routes. MICA_NOT_FOUND if unknown. */
int mica_drop_table(mica_client *c, const char *table);

typedef struct mica_table_info {
  uint64_t table_id;
  const char *name;
  uint64_t tablet_count;
  uint64_t approx_bytes;
  uint64_t approx_keys;
  uint64_t created_ms; /* ms since the Unix epoch */
  /* Its options (mica_table_options; compression "" = servers' default). */
  const char *compression;
  uint64_t split_threshold_bytes;
  uint32_t block_size;
  int bloom_bits;
  uint32_t salt_buckets;
} mica_table_info;

/* Every table, sorted by name. *tables: caller frees with mica_free. */
int mica_list_tables(mica_client *c, mica_table_info **tables, size_t *n);

typedef struct mica_tablet_info {
  uint64_t tablet_id;
  uint64_t table_id;
  const char *table_name;
  const void *start_key; /* inclusive; length 0 = start of the key space */
  size_t start_len;
  const void *end_key;   /* exclusive; length 0 = end of the key space */
  size_t end_len;
  uint64_t range_epoch;
  uint64_t server_id;    /* 0 while unassigned */
  const char *address;   /* "" while unassigned */
  uint64_t assign_epoch;
  const char *state;     /* "serving", "opening", "closing", "unassigned",
                            "split", "merged" */
  uint64_t approx_bytes;
  uint64_t approx_keys;
} mica_tablet_info;

/* The tablets of `table` (NULL or "" = every table) with their locations,
 * by table then key order. *tablets: caller frees with mica_free.
 * MICA_NOT_FOUND for an unknown table. */
int mica_list_tablets(mica_client *c, const char *table,
                      mica_tablet_info **tablets, size_t *n);

/* Splits tablet `tablet_id` at `key` (the first key of the right daughter,
 * strictly inside the tablet's range), or at the middle by bytes chosen by
 * its server when key_len is 0. `daughters` may be NULL; otherwise it gets
 * the left and right daughter's ids. Errors: MICA_NOT_FOUND (no such
 * serving tablet), MICA_INVALID_ARGUMENT (key outside the range). */
int mica_split_tablet(mica_client *c, uint64_t tablet_id, const void *key,
                      size_t key_len, uint64_t daughters[2]);

/* Moves tablet `tablet_id` to server `server_id` (0 = the least loaded
 * other live server) and returns once it serves there. Errors:
 * MICA_NOT_FOUND, MICA_UNAVAILABLE (target dead). */
int mica_move_tablet(mica_client *c, uint64_t tablet_id, uint64_t server_id);

typedef struct mica_move {
  uint64_t tablet_id;
  uint64_t from_server_id;
  uint64_t to_server_id;
  const char *reason;
  /* The tablet's epochs when the move was planned (mica_balance_apply
   * makes the move only while they and from_server_id still hold). */
  uint64_t range_epoch;
  uint64_t assign_epoch;
} mica_move;

/* Computes the balancer's plan and applies it unless `dry_run`. *moves
 * (caller frees with mica_free) lists the plan; empty when balanced. */
int mica_balance(mica_client *c, int dry_run, mica_move **moves, size_t *n);

/* Carries out an approved plan (moves from a dry run), all or nothing:
 * when any move no longer holds (the tablet split, merged or moved, or the
 * target is dead or draining), no move is made and MICA_STALE_EPOCH is
 * returned, with mica_errmsg() naming each failing move and why. MICA_OK
 * once every move has started (the master finishes them in the
 * background). */
int mica_balance_apply(mica_client *c, const mica_move *moves, size_t n);

/* Sets the balancer's mode, "auto", "suggest" or "off" (NULL or "" leaves
 * it), and writes the mode in force to `now` (at least 16 bytes; may be
 * NULL). MICA_INVALID_ARGUMENT for another word. */
int mica_set_balancer_mode(mica_client *c, const char *mode, char *now);

/* Marks a tablet server draining (undrain = 0) or taking tablets again
 * (undrain = 1), by id, or by RPC address when server_id is 0. The master
 * moves a draining server's tablets away a few at a time; poll
 * mica_list_servers for the tablet count. *server_id_out (may be NULL)
 * gets the server's id. Errors: MICA_NOT_FOUND (no such live server),
 * MICA_RESOURCE_EXHAUSTED (no other server could take its tablets). */
int mica_drain_server(mica_client *c, uint64_t server_id, const char *address,
                      int undrain, uint64_t *server_id_out);

typedef struct mica_server_info {
  uint64_t server_id;
  const char *address;
  const char *state; /* "live", "suspect", "dead" */
  uint64_t lease_age_ms;
  uint32_t tablet_count;
  uint64_t approx_bytes;
  double read_rate;  /* per second */
  double write_rate; /* per second */
  int draining;      /* takes no tablets; its own are being moved away */
} mica_server_info;

/* Tablet servers by id; dead ones only when `include_dead`. *servers:
 * caller frees with mica_free. */
int mica_list_servers(mica_client *c, int include_dead,
                      mica_server_info **servers, size_t *n);

typedef struct mica_master_info {
  const char *version;      /* the master's version, e.g. "0.1.0" */
  const char *rpc_address;  /* its bound RPC "host:port" */
  const char *http_address; /* status page and JSON API "host:port"; ""
                               when the master serves no HTTP */
  uint64_t start_time_ms;   /* when the master started, ms since the epoch */
  const char *cluster_name; /* "" when the master has none */
} mica_master_info;

/* What the master process is, from its GetInfo call: how tools that know
 * only the master's RPC address find its HTTP address. *info: caller frees
 * with mica_free (one allocation, strings included). Errors:
 * MICA_UNAVAILABLE when the master cannot be reached within the deadline. */
int mica_get_master_info(mica_client *c, mica_master_info **info);

/* ---- snapshots and clones (docs/storage.md, "Snapshots") ---- */

typedef struct mica_snapshot_info {
  uint64_t snapshot_id;
  const char *name;
  const char *table;      /* the table it was taken of */
  uint64_t created_ms;    /* ms since the Unix epoch */
  const char *state;      /* "creating", "ready" or "dropping" */
  uint64_t tablets;
  uint64_t files, bytes;  /* SSTables referenced and their bytes */
} mica_snapshot_info;

/* Takes snapshot `name` of `table`: every write acknowledged before the
 * call is in it; writes made while it runs may or may not be, tablet by
 * tablet. No data is copied. *info (may be NULL; caller frees with
 * mica_free) describes it. Errors: MICA_NOT_FOUND (no such table),
 * MICA_ALREADY_EXISTS (name taken), MICA_INVALID_ARGUMENT (bad name),
 * MICA_UNAVAILABLE (a tablet did not serve in time; nothing was kept). */
int mica_snapshot_create(mica_client *c, const char *table, const char *name,
                         mica_snapshot_info **info);
/* Snapshots by name. *v: caller frees with mica_free. */
int mica_snapshot_list(mica_client *c, mica_snapshot_info **v, size_t *n);
/* Drops snapshot `name`; the files only it referenced are deleted. Errors:
 * MICA_NOT_FOUND, MICA_UNAVAILABLE (a clone of it is being made). */
int mica_snapshot_drop(mica_client *c, const char *name);
/* Creates table `table` from snapshot `snapshot`, with its ranges and
 * options, referencing its files (no data copied). Errors: MICA_NOT_FOUND
 * (no such snapshot), MICA_ALREADY_EXISTS (table name taken),
 * MICA_INVALID_ARGUMENT (bad table name). */
int mica_snapshot_clone(mica_client *c, const char *snapshot,
                        const char *table);
/* Copies snapshot `name`'s files and a self-describing EXPORT file to
 * directory `dest` as the master sees it (a path, or s3://BUCKET/PREFIX
 * when the master's storage speaks S3). *files and *bytes (may be NULL)
 * get what was copied. Errors: MICA_NOT_FOUND (no such snapshot),
 * MICA_ALREADY_EXISTS (dest holds an export), MICA_IO_ERROR. */
int mica_snapshot_export(mica_client *c, const char *name, const char *dest,
                         uint64_t *files, uint64_t *bytes);
/* Creates table `table` from the export at `source`, copying its files
 * and checking their checksums. Errors: MICA_CORRUPTION naming the file
 * and offset (nothing kept), MICA_NOT_FOUND (no export there),
 * MICA_ALREADY_EXISTS / MICA_INVALID_ARGUMENT (the table name). */
int mica_snapshot_restore(mica_client *c, const char *source,
                          const char *table, uint64_t *files,
                          uint64_t *bytes);

#ifdef __cplusplus
}
#endif

#endif
