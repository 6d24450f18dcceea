/* mh_int: the inside of the master's HTTP side, shared by its files:
 *
 *   mh_render.c   JSON documents and Prometheus text from a snapshot;
 *   mh_hot.c      the hot list and the heat map (load history snapshot);
 *   mhttp.c       routing and request checks over common/httpd (the
 *                 libmicrohttpd server the tablet server uses too);
 *   mh_assets.c   the page's files (generated at build time from assets/).
 *
 * Everything shown comes from one snapshot of the core (ms_snapshot,
 * master/snapshot.h), a plain value owned by one request: rendering needs
 * no lock, and nothing in it points into the core.
 *
 * Text emitted by the renderers is ASCII only: names, addresses and event
 * texts pass through mh_json_str()/prom_label() (common/prom.h), which write every byte
 * outside printable ASCII as the four characters \xNN; keys are given both
 * that way (slice_escape) and as base64 of the exact bytes. */
#ifndef MICA_MASTER_HTTP_MH_INT_H
#define MICA_MASTER_HTTP_MH_INT_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/slice.h"
#include "master/snapshot.h"
#include "master/zk/mzk.h"

/* ---- mh_render.c ---- */

/* Facts the core does not know. */
typedef struct mh_ident {
  const char *cluster;
  const char *master_address;
  const char *http_address;
  const mzk_view *ha;    /* NULL: a single master without ZooKeeper */
  uint64_t master_epoch; /* of this master when active (ha NULL or not) */
  bool standby;          /* this process is a standby (no core) */
  bool rpc_tls, https;
  const char *insecure; /* plaintext non-loopback listeners, or NULL */
} mh_ident;

/* JSON string literal of the NUL-terminated `s` (quotes included). */
void mh_json_str(buf *out, const char *s);
/* Base64 (RFC 4648, padded) of `s`. */
void mh_base64(buf *out, slice s);
/* A key as the API gives every key: {"text": its escaped form (JSON
 * string), "b64": base64 of its exact bytes}. */
void mh_json_key(buf *out, const buf *key);

/* Appends `s` as it is (JSON punctuation and member names). */
static inline void mh_out_s(buf *out, const char *s) {
  buf_append(out, s, strlen(s));
}

/* Appends `v` in decimal. */
static inline void mh_out_u(buf *out, uint64_t v) {
  char t[24];
  int n = snprintf(t, sizeof t, "%" PRIu64, v);
  buf_append(out, t, (size_t)n);
}

void mh_render_cluster(const ms_snap *s, const mh_ident *id, buf *out);

/* mh_balance.c: GET /api/balance (the mode and, in suggest mode, the
 * proposed moves), the balancer's warnings of /api/cluster (`first`: no
 * warning written yet) and its master metrics. */
void mh_render_balance(const ms_snap *s, buf *out);
void mh_balance_warnings(const ms_snap *s, buf *out, bool *first);
void mh_balance_metrics(const ms_snap *s, buf *out);
void mh_render_servers(const ms_snap *s, buf *out);
void mh_render_tables(const ms_snap *s, buf *out);
void mh_render_tablets(const ms_snap *s, const ms_snap_tbl *t, buf *out);
void mh_render_events(const ms_snap *s, size_t limit, buf *out);
/* mh_opts.c: a table's options as a JSON object, and for a table with
 * `n` salt buckets (0: nothing) the fields start_unsalted and
 * end_unsalted ({"bucket", "text"}) of one of its tablets. */
void mh_render_opts(const ms_table_opts *o, buf *out);
void mh_render_unsalted(const ms_snap_tab *t, uint32_t n, buf *out);

/* mh_snapshots.c: GET /api/snapshots, from the core directly. */
void mh_render_snapshots(ms *core, buf *out);

/* `by_class`: HTTP answers so far by class (httpd_counts). */
void mh_render_metrics(const ms_snap *s, const mh_ident *id,
                       const uint64_t by_class[6], buf *out);

/* ---- mh_ha.c ---- */

/* The "ha" member's value of /api/cluster: role, epoch, the active master,
 * the standbys and the ZooKeeper session (docs/http-api.md). */
void mh_render_ha(const mh_ident *id, buf *out);
/* The HA metrics (mica_master_active, mica_master_epoch, ...). */
void mh_render_ha_metrics(const mh_ident *id, buf *out);
/* A standby's /api/cluster and /metrics. */
void mh_render_standby_cluster(const mh_ident *id, uint64_t uptime_s,
                               uint64_t wall_ms, buf *out);
void mh_render_standby_metrics(const mh_ident *id, uint64_t uptime_s,
                               const uint64_t by_class[6], buf *out);
/* The 503 answer of a standby to the other API paths: an "error" naming
 * the active master, and "active_master" {rpc, http, epoch} or null. */
void mh_render_standby_refusal(const mh_ident *id, buf *out);

/* ---- mh_hot.c ---- */

/* /api/hot: the hot list of `s` and the hot keys of `core` (`table`
 * NULL = every table; at most `limit` keys, 0 = all). */
void mh_render_hot(const ms_heat_snap *s, const ms_snap *core,
                   const char *table, size_t limit, buf *out);
/* /api/heatmap: the history of `table` in `s`, at most `limit` cells
 * (> 0): the newest buckets whose cells fit whole or, when no bucket with
 * cells fits, the newest one with cells cut to its first `limit` cells in
 * key order (and the empty buckets after it). Only the tablets those
 * cells name are listed. */
void mh_render_heatmap(const ms_heat_snap *s, const char *table,
                       size_t limit, buf *out);

/* ---- mh_assets.c (generated) ---- */

typedef struct mh_asset {
  const char *path; /* "/", "/static/status.js" */
  const char *content_type;
  const unsigned char *data;
  size_t len;
} mh_asset;
extern const mh_asset mh_assets[];
extern const size_t mh_n_assets;

#endif
