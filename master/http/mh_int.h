/* mh_int: the inside of the master's HTTP side, shared by its files:
 *
 *   mh_render.c   JSON documents and Prometheus text from such a copy;
 *   mhttp.c       the libmicrohttpd server, routing and request limits;
 *   mh_assets.c   the page's files (generated at build time from assets/).
 *
 * Everything shown comes from one snapshot of the core (ms_snapshot,
 * master/snapshot.h), a plain value owned by one request: rendering needs
 * no lock, and nothing in it points into the core.
 *
 * Text emitted by the renderers is ASCII only: names, addresses and event
 * texts pass through mh_json_str()/mh_prom_label(), which write every byte
 * outside printable ASCII as the four characters \xNN; keys are given both
 * that way (slice_escape) and as base64 of the exact bytes. */
#ifndef MICA_MASTER_HTTP_MH_INT_H
#define MICA_MASTER_HTTP_MH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "master/snapshot.h"
#include "master/state.h"

/* The snapshot is the core's (master/snapshot.h): the HTTP side reads the
 * core only through it. These are its names here. */
typedef ms_snap_tab mh_tab;
typedef ms_snap_tbl mh_tbl;
typedef ms_snap_srv mh_srv;
typedef ms_snap mh_snap;

enum {
  MH_NO_TABLETS = MS_SNAP_NO_TABLETS,
  MH_MOVING_TABLETS = MS_SNAP_MOVING_TABLETS,
  MH_TABLE_TABLETS = MS_SNAP_TABLE_TABLETS
};

static inline void mh_snap_take(ms *m, uint64_t now_us, uint64_t start_us,
                                int which, const char *table, mh_snap *out) {
  ms_snapshot(m, now_us, start_us, which, table, out);
}
static inline void mh_snap_free(mh_snap *s) { ms_snap_free(s); }
static inline uint64_t mh_core_now(ms *m) { return ms_now(m); }
static inline const mh_srv *mh_snap_srv(const mh_snap *s, uint64_t id) {
  return ms_snap_find_srv(s, id);
}
static inline const mh_tbl *mh_snap_tbl(const mh_snap *s, const char *name) {
  return ms_snap_find_tbl(s, name);
}

/* ---- mh_render.c ---- */

/* Facts the core does not know. */
typedef struct mh_ident {
  const char *cluster;
  const char *master_address;
  const char *http_address;
} mh_ident;

/* JSON string literal of the NUL-terminated `s` (quotes included). */
void mh_json_str(buf *out, const char *s);
/* Base64 (RFC 4648, padded) of `s`. */
void mh_base64(buf *out, slice s);

void mh_render_cluster(const mh_snap *s, const mh_ident *id, buf *out);
void mh_render_servers(const mh_snap *s, buf *out);
void mh_render_tables(const mh_snap *s, buf *out);
void mh_render_tablets(const mh_snap *s, const mh_tbl *t, buf *out);
void mh_render_events(const mh_snap *s, size_t limit, buf *out);

/* HTTP answers so far by class, for /metrics (index 0..5 = 1xx..5xx). */
typedef struct mh_http_counts {
  uint64_t by_class[6];
} mh_http_counts;
void mh_render_metrics(const mh_snap *s, const mh_ident *id,
                       const mh_http_counts *hc, buf *out);

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
