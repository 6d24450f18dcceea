/* mh_int: the inside of the master's HTTP side, shared by its files:
 *
 *   mh_snap.c     a consistent copy of the core's state, taken under the
 *                 core's mutex (read only: it never changes the core);
 *   mh_render.c   JSON documents and Prometheus text from such a copy;
 *   mhttp.c       the libmicrohttpd server, routing and request limits;
 *   mh_assets.c   the page's files (generated at build time from assets/).
 *
 * A snapshot is a plain value owned by one request: rendering needs no
 * lock, and nothing in it points into the core.
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
#include "master/state.h"

/* A current tablet of a table. */
typedef struct mh_tab {
  uint64_t id, table_id;
  buf start, end; /* end empty = +infinity */
  uint64_t range_epoch, assign_epoch;
  int state;            /* enum ms_tablet_state */
  uint64_t server;      /* 0 = none */
  bool in_transition;   /* not serving steadily */
  char transition[96];  /* what is under way, "" when serving steadily */
  uint32_t failures;    /* consecutive failed opens/closes */
  bool have_stats;
  ms_stats stats;
} mh_tab;

typedef struct mh_tbl {
  uint64_t id;
  char *name;
  bool dropping;
  uint64_t created_ms;
  size_t n;        /* current tablets */
  size_t first;    /* those copied: snap.tabs[first .. first+n_copied) */
  size_t n_copied;
  uint64_t bytes, keys; /* sums over its current tablets */
  double read_rate, write_rate;
  uint64_t in_transition, unassigned;
  uint64_t splits;      /* retired split parents (one per split) */
  uint64_t merges;      /* merge results among its tablets */
  uint64_t assignments; /* sum of assign epochs over all its tablets */
} mh_tbl;

typedef struct mh_srv {
  uint64_t id;
  char *address;
  int state; /* enum ms_server_state */
  uint64_t lease_age_ms;
  bool heartbeat_seen;       /* reported since this master started */
  uint64_t last_heartbeat_ms; /* wall clock; valid when heartbeat_seen */
  uint64_t registered_ms;
  uint32_t tablets;
  uint64_t bytes, keys;
  double read_rate, write_rate;
  uint64_t splits; /* retired split parents it last held */
} mh_srv;

typedef struct mh_snap {
  uint64_t now_us;  /* monotonic, for ages */
  uint64_t wall_ms; /* wall clock of now_us */
  uint64_t uptime_s;
  bool balancer_on, merges_on, in_grace;
  uint64_t log_bytes, log_generation;
  uint64_t actions_pending;
  uint64_t tablets_by_state[7]; /* index enum ms_tablet_state, live tables */
  uint64_t servers_by_state[4]; /* index enum ms_server_state */
  mh_srv *srvs; /* by id */
  size_t n_srvs;
  mh_tbl *tbls; /* live and dropping tables, by name */
  size_t n_tbls;
  mh_tab *tabs; /* copied current tablets, grouped by table, key order */
  size_t n_tabs;
  ms_event *events; /* newest first */
  size_t n_events;
} mh_snap;

/* Which current tablets a snapshot copies (keys and all): copying every
 * tablet of a large cluster for each request would hold the core's mutex
 * and allocate far more than any one answer needs. */
enum {
  MH_NO_TABLETS = 0,     /* none: figures per table and server only */
  MH_MOVING_TABLETS = 1, /* those in transition, of every table */
  MH_TABLE_TABLETS = 2   /* every one of the table named `table` */
};

/* Copies the state of `m` at monotonic time `now_us`, with the tablets
 * `which` selects. Caller frees with mh_snap_free(). Takes and releases
 * m's mutex. */
void mh_snap_take(ms *m, uint64_t now_us, uint64_t start_us, int which,
                  const char *table, mh_snap *out);
void mh_snap_free(mh_snap *s); /* accepts an already freed one */

/* The core's monotonic clock (env_now_micros of its env). */
uint64_t mh_core_now(ms *m);

const mh_srv *mh_snap_srv(const mh_snap *s, uint64_t id); /* NULL if none */
const mh_tbl *mh_snap_tbl(const mh_snap *s, const char *name);

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
