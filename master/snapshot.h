/* snapshot: one consistent, self-contained copy of the master core's state,
 * for the status page, the JSON API and the metrics (master/http).
 *
 * The core's listings (state.h) each take its mutex separately and leave
 * out things an operator wants to see (why a tablet is in transition, when
 * a server last reported, how many splits a table went through, the log's
 * size). ms_snapshot takes the mutex once, copies, and releases it; the copy
 * owns everything it holds (nothing points into the core), so rendering it
 * needs no lock. It is O(servers + tablets) with no I/O.
 *
 * Thread-safety: ms_snapshot may be called from any thread; a snapshot
 * belongs to its caller. */
#ifndef MICA_MASTER_SNAPSHOT_H
#define MICA_MASTER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "master/table_opts.h"
#include "master/state.h"

/* A current tablet of a table. */
typedef struct ms_snap_tab {
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
  /* Sampled load and hot keys as its server last reported them
   * (docs/hotspots.md); zero while load-based split is off. */
  ms_load load;
  bool load_split;   /* a daughter of a load split */
  bool merge_held;   /* kept out of automatic merges for its load */
} ms_snap_tab;

typedef struct ms_snap_tbl {
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
  ms_table_opts opts;   /* its options (table_opts.h) */
} ms_snap_tbl;

typedef struct ms_snap_srv {
  uint64_t id;
  char *address;
  char *http_address; /* its /metrics server; "" when it announced none */
  int state; /* enum ms_server_state */
  uint64_t lease_age_ms;
  bool heartbeat_seen;       /* reported since this master started */
  uint64_t last_heartbeat_ms; /* wall clock; valid when heartbeat_seen */
  uint64_t registered_ms;
  uint32_t tablets;
  uint64_t bytes, keys;
  double read_rate, write_rate;
  uint64_t splits; /* retired split parents it last held */
  bool draining;   /* takes no tablets; its own move away */
  bool hot;        /* its load (reads+writes/s) is above the mean of the
                    * servers that are not draining by the balance band */
} ms_snap_srv;

typedef struct ms_snap {
  uint64_t now_us;  /* monotonic, for ages */
  uint64_t wall_ms; /* wall clock of now_us */
  uint64_t uptime_s;
  bool balancer_on, merges_on, in_grace; /* balancer_on: mode auto */
  int balancer_mode;  /* enum ms_balancer_mode */
  ms_move *suggested; /* suggest mode: the balancer's latest plan */
  size_t n_suggested;
  uint64_t suggested_at_ms; /* wall clock of that plan; 0 = none */
  uint64_t log_bytes, log_generation;
  uint64_t actions_pending;
  uint64_t tablets_by_state[7]; /* index enum ms_tablet_state, live tables */
  uint64_t servers_by_state[4]; /* index enum ms_server_state */
  ms_snap_srv *srvs; /* by id */
  size_t n_srvs;
  ms_snap_tbl *tbls; /* live and dropping tables, by name */
  size_t n_tbls;
  ms_snap_tab *tabs; /* copied current tablets, grouped by table, key order */
  size_t n_tabs;
  ms_event *events; /* newest first */
  size_t n_events;
  /* Every current tablet of a live table that its server reports hot or
   * with hot keys, whatever `which` copies, hottest (ops/s) first. */
  ms_snap_tab *hot;
  size_t n_hot;
  /* The load history's bounds at work (ms_heat.h). */
  size_t heat_tracked;   /* tablets whose counters it follows */
  uint64_t heat_dropped; /* reports left out at a bound, since start */
} ms_snap;

/* Which current tablets a snapshot copies (keys and all): copying every
 * tablet of a large cluster for each request would hold the core's mutex
 * and allocate far more than any one answer needs. */
enum {
  MS_SNAP_NO_TABLETS = 0,     /* none: figures per table and server only */
  MS_SNAP_MOVING_TABLETS = 1, /* those in transition, of every table */
  MS_SNAP_TABLE_TABLETS = 2   /* every one of the table named `table` */
};

/* Copies the state of `m` at monotonic time `now_us` (uptime counted from
 * `start_us`, when the process started), with the tablets `which` selects.
 * Caller frees with ms_snap_free(). Takes and releases m's mutex once;
 * never changes the core. */
void ms_snapshot(ms *m, uint64_t now_us, uint64_t start_us, int which,
                 const char *table, ms_snap *out);
void ms_snap_free(ms_snap *s); /* accepts an already freed one */

/* The core's monotonic clock (env_now_micros of its env). */
uint64_t ms_now(ms *m);

/* The server `id` and the table `name` of a snapshot; NULL if none. */
const ms_snap_srv *ms_snap_find_srv(const ms_snap *s, uint64_t id);
const ms_snap_tbl *ms_snap_find_tbl(const ms_snap *s, const char *name);

/* ---- load history (ms_heat.c; master/ms_heat.h says how it is kept) ---- */

/* Per-second rates of one tablet: keys read (Get, MultiGet), keys written
 * (puts and deletes), scans started, and the key+value bytes read and
 * written. */
typedef struct ms_heat_rates {
  double reads, writes, scans, read_bytes, write_bytes;
} ms_heat_rates;

/* The time constant of the recent rates of the hot list (each report
 * moves them by 1 - e^(-dt / window) towards the rate it measured):
 * TiKV's 10 s load detection window. */
#define MS_HEAT_WINDOW_S 10

/* The operations per second that rank and colour a tablet: reads + writes
 * + scans. */
double ms_heat_ops(const ms_heat_rates *r);

/* A tablet seen in the history, with its key range (which never changes
 * for an id). */
typedef struct ms_heat_tablet {
  uint64_t id, table_id;
  buf start, end; /* end empty = +infinity */
  bool current;   /* false once retired by a split or merge */
} ms_heat_tablet;

/* One tablet's load in one bucket. */
typedef struct ms_heat_cell {
  size_t tablet;   /* index into ms_heat_snap.tablets */
  uint64_t server; /* the server that reported it last in the bucket */
  ms_heat_rates r; /* the bucket's work divided by its seconds */
} ms_heat_cell;

typedef struct ms_heat_bucket {
  uint64_t start_ms; /* wall clock */
  double secs;       /* the width; less for the bucket in progress */
  ms_heat_cell *cells; /* in the key order of their tablets */
  size_t n_cells;      /* 0 = no report in this bucket */
} ms_heat_bucket;

/* A current tablet with its recent rates (the hot list). */
typedef struct ms_heat_hot {
  uint64_t tablet_id, table_id;
  char *table;
  buf start, end;
  uint64_t server;
  char *address; /* of server */
  ms_heat_rates r;
} ms_heat_hot;

typedef struct ms_heat_snap {
  uint64_t now_ms;     /* wall clock */
  uint64_t bucket_ms;  /* bucket width */
  size_t max_buckets;  /* buckets kept */
  size_t max_tablets;  /* rows per bucket */
  uint64_t dropped;    /* reports left out because a bound was reached */
  ms_heat_hot *hot;    /* hottest first (ops/s, then tablet id) */
  size_t n_hot;
  size_t n_hot_total;  /* before the limit */
  /* The history of one table (when asked for): */
  ms_heat_tablet *tablets; /* by start key, then id */
  size_t n_tablets;
  ms_heat_bucket *buckets; /* the whole window, oldest first */
  size_t n_buckets;
} ms_heat_snap;

/* Copies at monotonic time `now_us` the `hot_limit` hottest current
 * tablets (0 = all) of table `table` (NULL = of every live table), and,
 * when `history` and `table` names a live table, that table's history.
 * False (and an empty `out`) when `table` names no live table. Caller
 * frees with ms_heat_snap_free(). Takes and releases m's mutex once. */
bool ms_heat_snapshot(ms *m, uint64_t now_us, const char *table,
                      size_t hot_limit, bool history, ms_heat_snap *out);
void ms_heat_snap_free(ms_heat_snap *s); /* accepts an already freed one */

#endif
