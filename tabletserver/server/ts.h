/* ts: the tablet server, as a library (mica_tserver_core) that the
 * mica-tserver program wraps with flags and signal handling.
 *
 * A ts_server serves the TabletServer service of proto/mica.proto over the
 * RPC module: the data calls (Get, MultiGet, Put, Delete, Batch, Scan) on
 * the tablets it has open, and the admin calls (OpenTablet, CloseTablet,
 * SplitTablet, TabletInfo) that the master, operators and tests send. All
 * tablets share one res_pool (memory budget, block cache, background
 * threads). The Echo service is served too (a liveness probe, and the
 * transport baseline of the benchmark). docs/tserver.md describes the behaviour and the decisions.
 *
 * Every data request names a tablet and the epochs the client believes
 * (TabletRef). The server serves only an exact match of a tablet it has
 * open; anything else is a routing error (NOT_SERVING, STALE_EPOCH,
 * OUT_OF_RANGE) carrying what the server knows: the tablet's current
 * descriptor, both daughters after a split, the destination after a move.
 * Limits are checked before anything is applied, and a rejected request
 * changes nothing.
 *
 * With a master address the server registers, heartbeats, and holds a
 * lease counted from the moment it SENT the heartbeat the master answered;
 * past the lease it acknowledges no read or write (LEASE_EXPIRED) until the
 * master renews it. Without one it runs standalone: always leased, and
 * SplitTablet picks daughter ids itself (the largest tablet id it knows of
 * under the data root, plus one and two).
 *
 * Thread-safety: ts_server_new, ts_server_start and ts_server_stop are
 * called by one thread (the program's main thread); everything else runs on
 * the RPC module's threads and the server's own background threads. */
#ifndef MICA_TSERVER_TS_H
#define MICA_TSERVER_TS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/env.h"
#include "common/err.h"
#include "proto/rpc.h"

typedef struct ts_config {
  const char *listen;        /* "host:port"; NULL = "127.0.0.1:0" */
  const char *data_dir;      /* shared data root (required) */
  const char *master;        /* master "host:port"; NULL = standalone */
  size_t memory_budget;      /* bytes for all memtables; 0 = default */
  size_t block_cache;        /* block cache bytes; 0 = none */
  uint64_t split_threshold;  /* bytes at which a tablet is split */
  uint64_t lease_ms;         /* longest lease this server assumes */
  uint64_t heartbeat_ms;     /* heartbeat interval until the master says */
  int threads;               /* RPC polling threads; 0 = one per core */
  int background_threads;    /* flush/compaction threads; 0 = default */
  size_t max_streams;        /* open Scan streams per server; 0 = default */
  size_t max_streams_per_conn; /* per client connection; 0 = default */
  uint64_t stream_idle_ms;   /* cancel a stream whose reader took no chunk
                                for this long; 0 = default (rpc.h) */
  size_t memtable_bytes;     /* per-tablet memtable size; 0 = default */
  const char *http_listen;   /* /metrics and /healthz "host:port";
                                NULL = "127.0.0.1:0" */
  /* Free-space reserve of the data root (res_options): reserve_percent of
   * the disk capped at reserve_bytes, or reserve_bytes when the percent
   * is 0. Below it writes, splits and compactions are refused. */
  uint64_t reserve_bytes;
  unsigned reserve_percent;
  /* How the SSTables this server writes (flushes, compactions, splits,
   * merges) compress their data blocks: an sst_compression value
   * (sstable/sstable.h). Default LZ4: it costs a few percent of a flush's
   * CPU and reads back faster than the disk delivers; zstd trades more
   * CPU for smaller files. Files written with any setting stay readable
   * under any other, since every block records its own compression. */
  int compression;
  /* Where writes are logged (docs/engine.md, "One commit log per
   * server"): true (default) for one commit log shared by every tablet
   * of this server, in <data_dir>/logs/<incarnation>; false for each
   * tablet's own WAL segments. Either setting reopens tablets written
   * under the other. */
  bool shared_log;
  /* With the commit log on S3 (an s3:// data root without a POSIX
   * --wal-dir): how long a group waits for more writes before its one
   * PUT, in ms (--wal-batch-ms; default 10, 0 = PUT as soon as the
   * previous one ended). Ignored for a POSIX log. */
  uint64_t wal_batch_ms;
  /* Commit logs whose loss the operator accepted (--accept-lost-commit-log;
   * tab_options.accept_lost_logs): NULL-terminated, borrowed for the
   * server's life. Default NULL. */
  const char *const *accept_lost_logs;
  /* The cluster secret file (docs/security.md); NULL = <data_dir>/
   * cluster.secret, created when missing. */
  const char *secret_file;
  /* TLS (docs/security.md): serve with tls.cert_file/key_file when set,
   * and call the master verifying it against tls.ca_file, presenting the
   * same certificate. All NULL = plaintext. */
  rpc_tls tls;
  /* The env data_dir is read through; NULL = env_posix(). mica-tserver
   * passes the one --data-dir and --wal-dir name (docs/storage.md). */
  env *env;
} ts_config;

/* Defaults: 256 MiB memory budget, 64 MiB block cache, 10 GiB split
 * threshold, 10 s lease, 1 s heartbeat, a reserve of 5% of the disk
 * capped at 1 GiB, LZ4-compressed SSTable blocks. */
void ts_config_init(ts_config *c);

typedef struct ts_server ts_server;

/* Creates the server and binds the listen address and the HTTP address
 * (UNAVAILABLE when one cannot be bound, INVALID_ARGUMENT when malformed);
 * serves no RPC until ts_server_start, /metrics and /healthz at once. The config's
 * strings are copied. Caller frees with ts_server_stop(). */
mica_err *ts_server_new(const ts_config *c, ts_server **out);

/* Starts serving, and the master and maintenance threads. */
mica_err *ts_server_start(ts_server *s);

/* The bound address "host:port"; valid until ts_server_stop. */
const char *ts_server_address(const ts_server *s);
/* The bound HTTP address (/metrics, /healthz), announced to the master;
 * valid until ts_server_stop. */
const char *ts_server_http_address(const ts_server *s);

/* A planned stop (SIGTERM): asks the master to drain this server (move
 * every tablet it serves elsewhere; DrainServer) and waits until it serves
 * none, at most `timeout_ms`, so that clients find each tablet moved
 * instead of waiting for this server's lease to run out. NULL once it
 * serves nothing; otherwise the reason (the master refused, for example
 * when no other server can take the tablets, or the time ran out), and the
 * caller stops anyway. Nothing to do for a standalone server. */
mica_err *ts_server_drain(ts_server *s, uint64_t timeout_ms);

/* Clean shutdown: stops the background threads, drains every call in
 * progress, closes every tablet (flushing memtables, so no WAL holds data),
 * and frees. Returns the first close error (the data is then still in the
 * WAL and a reopen replays it). Accepts NULL. */
mica_err *ts_server_stop(ts_server *s);

#endif
