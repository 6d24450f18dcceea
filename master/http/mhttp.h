/* mhttp: the master's HTTP side — status page, JSON API, metrics.
 *
 * Serves, with libmicrohttpd on its own address:
 *   /                          the status page (HTML, CSS and JS compiled
 *                              into the binary; the page reads the API)
 *   /static/status.css, .js    the page's assets
 *   /api/cluster               header facts and warnings
 *   /api/servers               tablet servers
 *   /api/tables                tables
 *   /api/tables/NAME/tablets   one table's current tablets in key order
 *   /api/events                recent events, newest first
 *   /api/hot                   the hottest tablets (?table=, ?limit=)
 *   /api/heatmap?table=NAME    a table's load history (the heat map)
 *   /metrics                   Prometheus text format
 *   /healthz                   200 "ok"
 * Field names and metrics are documented in docs/http-api.md.
 *
 * Every request copies what it needs from the core under the core's mutex
 * (a short copy, no I/O, no rendering) and renders from that copy without
 * it, so a slow or hostile client never holds the lock that the master's
 * RPC handlers and action loop need. Connections are bounded in number and
 * time; requests with a body, long URLs or large headers are refused.
 *
 * Wiring into mica-master (after msrv_start, before printing addresses):
 *
 *   mhttp_opts ho;
 *   mhttp_opts_init(&ho);
 *   ho.listen = http_listen;                 // --http-listen, NULL = default
 *   ho.master_address = msrv_address(srv);
 *   mica_err *err = mhttp_start(&ho, msrv_core(srv), &http);
 *   // print/write mhttp_address(http) for --http-address-file
 *   ...
 *   mhttp_stop(http);                        // before msrv_stop(srv)
 *
 * /healthz answers without touching the core: it says the process serves
 * HTTP, not that the core is responsive.
 *
 * Thread-safety: mhttp_start and mhttp_stop are called from one thread;
 * mhttp_port and mhttp_address may be called from any thread between them.
 * The core must outlive the server: stop it before closing the core. */
#ifndef MICA_MASTER_HTTP_MHTTP_H
#define MICA_MASTER_HTTP_MHTTP_H

#include <stdint.h>

#include "common/err.h"
#include "master/state.h"
#include "master/zk/mzk.h"

typedef struct mhttp mhttp;

typedef struct mhttp_opts {
  /* "host:port", "[v6]:port" or ":port"; NULL = "127.0.0.1:0" (the kernel
   * picks the port; mhttp_port()/mhttp_address() tell which). */
  const char *listen;
  const char *cluster_name;   /* shown in the header; NULL = "mica" */
  const char *master_address; /* the RPC address shown; NULL = "" */
  uint64_t start_us; /* monotonic start of the master; 0 = now (uptime) */
  unsigned threads;         /* polling threads (2) */
  unsigned max_connections; /* open connections at once (64) */
  unsigned timeout_s;       /* idle connection closed after this (10) */
  /* Monotonic microseconds for lease ages and uptime; NULL = the core's
   * env_now_micros (tests that drive the core's time pass their own). */
  uint64_t (*now_us)(void *ctx);
  void *now_ctx;
  /* Decides whether a request for the API (/api/..., which shows keys)
   * may be answered, given its Authorization header (NULL when absent):
   * NULL = yes, else why not (UNAUTHENTICATED: 401, others: 403). NULL
   * function = everything is open. /healthz, /metrics and the page's
   * static files are always open. docs/security.md. */
  mica_err *(*authorize)(void *ctx, const char *authorization);
  void *authorize_ctx;
  /* High availability (docs/ha.md): with --zk, fills the election's state
   * for the page, /api/cluster's "ha" and the mica_master_zk_* metrics;
   * called once per request that shows it, from the request's thread.
   * NULL = a single master without ZooKeeper, whose epoch is
   * `master_epoch`. */
  void (*ha_view)(void *ctx, mzk_view *out);
  void *ha_ctx;
  uint64_t master_epoch;
  /* HTTPS with this PEM certificate and key (common/httpd.h: re-read when
   * they change on disk); NULL = plain HTTP. */
  const char *tls_cert_file;
  const char *tls_key_file;
  /* Shown in /api/cluster ("rpc_tls", "insecure") and, for insecure, as a
   * warning and a banner on the page: whether the RPC port serves TLS, and
   * which listeners serve plaintext on a non-loopback address because of
   * --insecure ("--listen 0.0.0.0:7000"; NULL = none). */
  bool rpc_tls;
  const char *insecure;
} mhttp_opts;

/* Fills `o` with the defaults above. */
void mhttp_opts_init(mhttp_opts *o);

/* Binds o->listen and starts serving the state of `core`, which must stay
 * open until mhttp_stop(). INVALID_ARGUMENT for a malformed address,
 * UNAVAILABLE when it cannot be bound. Caller stops with mhttp_stop().
 *
 * `core` NULL serves a standby master (o->ha_view required): the page says
 * it is a standby and links to the active master; /api/cluster holds only
 * the election's state ("role":"standby", "ha"); every other /api/ path
 * answers 503 naming the active master, since a standby has no cluster
 * state and must not show stale tablets as if it were active; /metrics
 * holds the master and HA metrics only. */
mica_err *mhttp_start(const mhttp_opts *o, ms *core, mhttp **out);

/* Turns a standby's server into the active master's, on the same address:
 * from the next request on it serves `core` (which must stay open until
 * mhttp_stop), shows `master_address` and `master_epoch`, and checks
 * `authorize` as mhttp_opts describes. Called once, from the thread that
 * started the server. */
void mhttp_activate(mhttp *h, ms *core, const char *master_address,
                    uint64_t master_epoch,
                    mica_err *(*authorize)(void *ctx, const char *auth),
                    void *authorize_ctx);

/* The bound port (the real one when 0 was asked). */
int mhttp_port(const mhttp *h);

/* The bound "host:port"; valid until mhttp_stop(). */
const char *mhttp_address(const mhttp *h);

/* Stops accepting, ends the connections in progress, frees everything.
 * Accepts NULL. */
void mhttp_stop(mhttp *h);

#endif
