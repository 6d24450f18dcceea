/* backend: the store mica-bench drives, behind five calls.
 *
 * The generators, threads, records and measurement are the same for every
 * backend; only these calls differ. Three backends exist: "mica" (libmica
 * against a cluster's master), "etcd" (etcd v3's KV service over gRPC,
 * bench/etcd) and "postgres" (a bytea table through libpq, backend_pg.c).
 * All acknowledge a write only once it is durable: Mica after its WAL
 * record is synced, etcd after its raft log entry is fsynced, PostgreSQL
 * after its commit record is flushed (synchronous_commit = on).
 *
 * Every call returns NULL on success or an error (caller frees with
 * err_free()) whose code is a Mica status: NOT_FOUND for a read of a
 * missing key, the transport or server outcome otherwise.
 *
 * Thread-safety: a backend handle is shared by every worker thread; each
 * call may run on any thread at any time between open and close. */
#ifndef MICA_TOOLS_BENCH_BACKEND_H
#define MICA_TOOLS_BENCH_BACKEND_H

#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"

typedef struct bk_config {
  const char *address;   /* master (mica) or server (etcd) "host:port";
                            postgres: a libpq connection string or URI */
  const char *table;     /* mica, postgres: the table; etcd: a key prefix
                            "table/" */
  int64_t timeout_ms;    /* per call, retries included */
  const char *token;     /* mica: bearer token; NULL = none */
  const char *tls_ca;    /* mica: TLS trusting this CA; NULL = plaintext */
  const char *tls_cert;  /* mica: client certificate and key (together, */
  const char *tls_key;   /* with tls_ca); NULL = none */
} bk_config;

typedef struct backend {
  const char *name;
  void *h;
  /* Creates what the load phase writes into, if absent. For Mica: the table,
   * pre-split at `splits` (n may be 0); an existing table is kept. */
  mica_err *(*prepare)(void *h, const slice *splits, size_t n);
  /* Replaces *value (cleared first) with the value of `key`. */
  mica_err *(*read)(void *h, slice key, buf *value);
  mica_err *(*write)(void *h, slice key, slice value);
  /* Reads up to `count` records in key order starting at `start`
   * (inclusive), values included; *rows gets how many came back. */
  mica_err *(*scan)(void *h, slice start, uint32_t count, uint64_t *rows);
  void (*close)(void *h);
} backend;

/* Opens the named backend ("mica", "etcd" or "postgres"). INVALID_ARGUMENT
 * for another name. Close with backend->close(backend->h). */
mica_err *bk_open(const char *name, const bk_config *cfg, backend *out);

mica_err *bk_mica_open(const bk_config *cfg, backend *out);
mica_err *bk_etcd_open(const bk_config *cfg, backend *out);
/* Connects once to check the address and that the server runs with fsync
 * on (INVALID_ARGUMENT otherwise); workers connect on their first call. */
mica_err *bk_pg_open(const bk_config *cfg, backend *out);

#endif
