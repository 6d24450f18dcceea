/* ts_http: what a tablet server tells an operator over HTTP, and the
 * counters behind it.
 *
 * The server serves, with common/httpd (libmicrohttpd; bounded connections
 * and idle timeouts, so a slow client cannot hold others up) on its own
 * address (ts_config.http_listen, default 127.0.0.1:0):
 *   /metrics   Prometheus text: requests by method and outcome, latency
 *              histograms, WAL groups and syncs, flushes, compactions,
 *              write stalls, block cache hits, memtable memory, and the
 *              size and rates of every tablet (docs/tserver.md lists them);
 *   /healthz   200 "ok": the process serves HTTP (whether it holds a lease
 *              is mica_tserver_leased in /metrics).
 * Other paths get 404, other methods 405, requests with a body 413.
 *
 * The counters cost the request path one relaxed atomic add each: the RPC
 * module tells ts_obs_rpc_end() of every call it ends (method, Mica code,
 * microseconds), and the engine and the registry already count per tablet.
 * A scrape reads them, taking the registry mutex only to take references
 * on the tablets (never while calling into the engine).
 *
 * Server totals are counters in the Prometheus sense: they never go down.
 * A tablet that leaves this server (closed, moved, split, merged) has its
 * figures folded into `retired` as it leaves service (ts_quiesce), and
 * taken out again if it comes back (ts_resume after a failed split). The
 * few operations a tablet finishes while draining are not counted, and a
 * final clamp (a total is never reported below the last one) absorbs that
 * difference.
 *
 * Thread-safety: ts_obs_rpc_end from any thread; the retire calls with
 * ts_server.mu held; ts_http_start/stop from the thread that creates and
 * stops the server; the HTTP handler runs on the httpd threads. */
#ifndef MICA_TSERVER_TS_HTTP_H
#define MICA_TSERVER_TS_HTTP_H

#include <pthread.h>
#include <stdint.h>

#include "common/err.h"
#include "common/httpd.h"
#include "mica/status.h"
#include "proto/rpc.h"

/* Latency histogram bucket bounds, microseconds (100 us .. 10 s). */
#define TS_OBS_BUCKETS 16
/* The TabletServer and Echo methods, and one slot for anything else. */
#define TS_OBS_METHODS 13

/* X(field, metric name, help): per-tablet counters that also sum into
 * server totals. */
#define TS_TALLY_LIST(X)                                                      \
  X(reads, "reads_total", "Keys read by Get and MultiGet.")                  \
  X(read_bytes, "read_bytes_total", "Key and value bytes read.")             \
  X(writes, "writes_total", "Keys written (puts and deletes, batches "       \
    "counted per key).")                                                     \
  X(write_bytes, "write_bytes_total", "Key and value bytes written.")        \
  X(scans, "scans_total", "Scan calls served.")                              \
  X(flushes, "flushes_total", "Memtables flushed to SSTables.")              \
  X(flush_bytes, "flush_bytes_total", "Bytes of SSTables written by "        \
    "flushes.")                                                              \
  X(compactions, "compactions_total", "Compactions finished.")               \
  X(compact_read_bytes, "compaction_read_bytes_total", "Bytes read by "      \
    "compactions.")                                                          \
  X(compact_write_bytes, "compaction_write_bytes_total", "Bytes written by " \
    "compactions.")                                                          \
  X(stalls, "write_stalls_total", "Writes that waited for flushes or "       \
    "compactions to catch up.")                                              \
  X(stall_micros, "write_stall_microseconds_total", "Time writes spent "     \
    "stalled.")                                                              \
  X(stall_timeouts, "write_stall_timeouts_total", "Stalled writes that "     \
    "gave up (UNAVAILABLE).")

enum {
#define TS_TALLY_ENUM_(f, name, help) TS_TALLY_##f,
  TS_TALLY_LIST(TS_TALLY_ENUM_)
#undef TS_TALLY_ENUM_
  TS_TALLY_N
};

/* The counters of one tablet, or sums of them. */
typedef struct ts_tally {
  uint64_t v[TS_TALLY_N];
} ts_tally;

typedef struct ts_obs {
  /* Calls ended, by method and Mica code (the last column: a code this
   * build does not know). Relaxed atomic adds. */
  uint64_t calls[TS_OBS_METHODS][MICA_CODE_COUNT_ + 1];
  /* Latency: calls per bucket (not cumulative; the last is +Inf) and the
   * sum of their microseconds. Relaxed atomic adds. */
  uint64_t lat[TS_OBS_METHODS][TS_OBS_BUCKETS + 1];
  uint64_t lat_sum_us[TS_OBS_METHODS];
  /* Gets and MultiGets on an object-store data root answered on the
   * polling thread from local data, and those handed to a worker because
   * they needed a remote read (ts_data.c). Relaxed atomic adds. */
  uint64_t reads_local, reads_handed_off;
  ts_tally retired;   /* tablets out of service; guarded by ts_server.mu */
  pthread_mutex_t clamp_mu;
  ts_tally reported;  /* last totals reported; guarded by clamp_mu */
  uint64_t start_us;  /* env_now_micros at creation */
  httpd *http;        /* NULL before ts_http_start */
} ts_obs;

struct ts_server;
struct ts_tab;

void ts_obs_init(struct ts_server *s);
void ts_obs_destroy(struct ts_server *s);

/* The rpc_observe_fn of the server's RPC module; ctx is the ts_server. */
void ts_obs_rpc_end(void *ctx, const rpc_method *m, int code,
                    uint64_t micros);

/* Reads the counters of `tt`, which the caller keeps open (a reference or
 * admin_mu); no lock of the server may be held (it calls the engine). */
void ts_obs_tally(struct ts_server *s, struct ts_tab *tt, ts_tally *out);
/* With ts_server.mu held: `tt` leaves service with figures `t` (counted
 * in the totals from now on through `retired`), or comes back. Each is a
 * no-op when `tt` is already in that condition. */
void ts_obs_retire_locked(struct ts_server *s, struct ts_tab *tt,
                          const ts_tally *t);
void ts_obs_unretire_locked(struct ts_server *s, struct ts_tab *tt);

/* Binds s->cfg.http_listen and serves /metrics and /healthz.
 * INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot be
 * bound. */
mica_err *ts_http_start(struct ts_server *s);
/* Stops serving; accepts a server whose HTTP side never started. */
void ts_http_stop(struct ts_server *s);

#endif
