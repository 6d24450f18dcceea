/* snapshot: one consistent, self-contained copy of what the master's
 * status page, JSON API and metrics show (master/http renders it).
 *
 * The core's listings (state.h) each take its mutex separately and leave
 * out things an operator wants to see: why a tablet is in transition,
 * when a server last reported, how many splits a table went through, the
 * log's size. ms_snapshot() takes the mutex once, copies, and releases it;
 * it never changes the core. The copy is O(servers + tablets) with no I/O
 * and no formatting beyond a few short strings, so the lock is held about
 * as long as by ms_list_tablets().
 *
 * A snapshot is a plain value: nothing in it points into the core, and
 * reading it needs no lock. Caller frees it with ms_snapshot_free().
 *
 * Thread-safety: like every ms_* call, ms_snapshot may be called from any
 * thread; a snapshot is used by one thread at a time. */
#ifndef MICA_MASTER_SNAPSHOT_H
#define MICA_MASTER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "master/state.h"

/* A current tablet of a table. */
typedef struct ms_snap_tablet {
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
} ms_snap_tablet;

typedef struct ms_snap_table {
  uint64_t id;
  char *name;
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
} ms_snap_table;

typedef struct ms_snap_server {
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
} ms_snap_server;

typedef struct ms_snap {
  uint64_t now_us;  /* monotonic, for ages */
  uint64_t wall_ms; /* wall clock of now_us */
  bool balancer_on, merges_on, in_grace;
  uint64_t log_bytes, log_generation;
  uint64_t actions_pending;
  uint64_t tablets_by_state[7]; /* index enum ms_tablet_state, live tables */
  uint64_t servers_by_state[4]; /* index enum ms_server_state */
  ms_snap_server *srvs; /* by id */
  size_t n_srvs;
  ms_snap_table *tbls; /* live tables, by name */
  size_t n_tbls;
  ms_snap_tablet *tabs; /* copied current tablets, grouped by table, key order */
  size_t n_tabs;
  ms_event *events; /* newest first */
  size_t n_events;
} ms_snap;

/* Which current tablets a snapshot copies (keys and all): copying every
 * tablet of a large cluster for each request would hold the core's mutex
 * and allocate far more than any one answer needs. */
enum {
  MS_SNAP_NO_TABLETS = 0,     /* none: figures per table and server only */
  MS_SNAP_MOVING_TABLETS = 1, /* those in transition, of every table */
  MS_SNAP_TABLE_TABLETS = 2   /* every one of the table named `table` */
};

/* Copies the state of `m` at monotonic time `now_us`, with the tablets
 * `which` selects. Caller frees with ms_snapshot_free(). */
void ms_snapshot(ms *m, uint64_t now_us, int which, const char *table,
                 ms_snap *out);
/* Frees what `s` holds and empties it; accepts an already freed one. */
void ms_snapshot_free(ms_snap *s);

/* The server `id` / the table `name` of a snapshot; NULL if none. The
 * result points into `s`. */
const ms_snap_server *ms_snap_find_server(const ms_snap *s, uint64_t id);
const ms_snap_table *ms_snap_find_table(const ms_snap *s, const char *name);

/* The core's monotonic clock (env_now_micros of its env). */
uint64_t ms_now_micros(ms *m);

#endif
