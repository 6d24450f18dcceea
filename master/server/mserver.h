/* mserver: the networked half of the master, the body of `mica-master`.
 *
 * The master's knowledge and decisions live in the core (master/state.h);
 * this module puts them on the wire. It serves the Master service of
 * proto/mica.proto by calling the core, and runs the action loop: one
 * thread that asks the core for due work (ms_tick), performs it with
 * OpenTablet / CloseTablet calls to the tablet servers (many in flight at
 * once, each with a deadline), deletes a dropped table's files, and reports
 * every outcome back (ms_action_done). Retries and backoff are decided by
 * the core from those outcomes, so this module never retries on its own.
 *
 * Durability: every state change a handler makes goes through the core,
 * which logs and syncs it before the handler answers, and every action the
 * loop performs was logged by the core before ms_tick returned it.
 *
 * Calls that wait for the cluster to act (MoveTablet answers once the tablet
 * serves on its target, MergeTablets once the merged tablet serves,
 * SplitTablet once the tablet server has split) block a worker thread, never
 * a polling thread, and give up at their deadline or when the master stops.
 *
 * Thread-safety: msrv_start and msrv_stop are called from one thread; the
 * handlers and the action loop run on their own threads and share only the
 * core (which has its own lock) and the fields documented in mserver.c. */
#ifndef MICA_MASTER_SERVER_MSERVER_H
#define MICA_MASTER_SERVER_MSERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "master/state.h"
#include "proto/rpc.h"

typedef struct msrv msrv;

typedef struct msrv_options {
  const char *listen;      /* "host:port"; NULL = "127.0.0.1:0" */
  ms_options core;         /* data_root, lease, balancer and merge figures */
  int rpc_threads;         /* polling threads; 0 = 2 */
  uint64_t tick_us;        /* action loop period (100 ms) */
  int64_t open_timeout_ms; /* deadline of OpenTablet (30 s) */
  int64_t close_timeout_ms;/* deadline of CloseTablet (30 s) */
  int64_t wait_timeout_ms; /* longest wait of Move/Merge/Split calls
                              without a client deadline (60 s) */
  /* Period of the orphan sweep (msrv_sweep_orphans; docs/storage.md,
   * "Export and restore"), which also runs once at start (10 min). */
  uint64_t orphan_sweep_us;
  /* Split threshold told to servers at registration; 0 = each server keeps
   * its own --split-threshold. */
  uint64_t split_threshold_bytes;
  /* Load-based split told to servers in every registration and heartbeat
   * reply (docs/hotspots.md): on (default), and the thresholds a tablet
   * must stay above, one or the other, for the window (3000 ops/s,
   * 30 MiB/s, 10 s). */
  bool load_split;
  double load_split_ops;
  uint64_t load_split_bytes;
  uint64_t load_split_window_ms;
  /* Runtime switches applied (and logged) at start; NULL keeps what the
   * log says (both on in a fresh directory). */
  const bool *balancer;     /* on = auto, off; balancer_mode wins */
  const int *balancer_mode; /* enum ms_balancer_mode; NULL = as logged */
  const bool *merges;
  /* The cluster's name, reported by GetInfo; NULL or "" = none. */
  const char *cluster_name;
  /* The master epoch stamped on every command and answer to a tablet
   * server (docs/ha.md, "Fencing the tablet servers"): the election's with
   * --zk; 0 without. */
  uint64_t master_epoch;
  /* docs/security.md. The cluster secret file; NULL = <data root>/
   * cluster.secret, created when missing. */
  const char *secret_file;
  /* The tokens file; NULL = client calls are open (membership is still
   * required of servers). */
  const char *tokens_file;
  /* TLS (docs/security.md): serve with tls.cert_file/key_file when set,
   * and call tablet servers verifying them against tls.ca_file, presenting
   * the same certificate. All NULL = plaintext. */
  rpc_tls tls;
} msrv_options;

/* Re-reads the tokens file (SIGHUP): the new grants apply to the next
 * call here and reach tablet servers with their next heartbeat reply;
 * recorded in the event log. On an error (NOT_SUPPORTED without
 * --tokens, the file's own errors) the current grants stay. */
mica_err *msrv_reload_tokens(msrv *s);

/* Fills `o` with the defaults above and ms_options_init(&o->core). */
void msrv_options_init(msrv_options *o);

/* Opens the core on o->core.data_root (replaying its log), binds
 * o->listen, starts serving and starts the action loop. UNAVAILABLE when
 * the address cannot be bound; the core's errors when its log cannot be
 * read. Caller stops with msrv_stop(). */
mica_err *msrv_start(const msrv_options *o, msrv **out);

/* The bound "host:port" (the real port when 0 was asked); valid until
 * msrv_stop. */
const char *msrv_address(const msrv *s);

/* Records the address of the process's HTTP server (master/http), which
 * GetInfo reports so that tools knowing only the RPC address find the JSON
 * API. Until called, or with NULL, GetInfo reports none. Copies `address`;
 * may be called while serving. */
void msrv_set_http_address(msrv *s, const char *address);

/* True once a tablet server refused one of this master's commands with
 * STALE_MASTER: a newer master exists, and this one must stop acting
 * (mica-master exits 3). Thread-safe. */
bool msrv_deposed(msrv *s);
/* Whether an HTTP request with Authorization header `authorization` (NULL
 * when absent) may read the status API: NULL when yes (the tokens file
 * allows it, or there is none), else UNAUTHENTICATED or PERMISSION_DENIED
 * naming the missing role. For mhttp_opts.authorize. */
mica_err *msrv_authorize_read(void *msrv_ptr, const char *authorization);

/* The core, for tools and tests in the same process; valid until
 * msrv_stop. */
ms *msrv_core(msrv *s);

/* Stops accepting calls, ends the calls in progress (waiting ones give up
 * with UNAVAILABLE), stops the action loop after its calls in flight end,
 * closes the core and frees everything. Accepts NULL. */
void msrv_stop(msrv *s);

#endif
