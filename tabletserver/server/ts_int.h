/* ts_int: what the files of the tablet server share (not a public API).
 *
 * The registry (ts_registry.c) maps tablet ids to open tablets (ts_tab)
 * and remembers tablets that left this server (ts_gone: split, moved,
 * closed) so routing errors can say where their data went. Data handlers
 * (ts_data.c) acquire a ts_tab for the duration of one request; admin
 * operations (ts_admin.c) take a tablet out of service by changing its state
 * and waiting until no request holds it, because tab_close and tab_split
 * must not race with other calls on the tablet. ts_master.c runs the master
 * conversation (register, heartbeat, lease, split proposals); ts_maint.c
 * runs the maintenance loop (rates, automatic splits, requested drops).
 *
 * Calls go one way only, so no two files call each other:
 *   ts_server.c (life cycle) -> ts_maint.c -> ts_admin.c -> ts_master.c
 *   ts_server.c -> ts_data.c
 * and every file -> ts_registry.c (this header: the shared state, the
 * registry, the lease, the status helpers). ts_load.c (request sampling
 * and load-split verdicts, ts_load.h) is called by ts_data.c, ts_maint.c,
 * ts_master.c and ts_admin.c and calls only ts_registry.c. Each module's own header
 * (ts_maint.h, ts_admin.h, ts_master.h, ts_data.h) declares what the files
 * before it may use.
 *
 * Lock order: admin_mu, then mu. No lock of the server is held while calling
 * into the tablet engine or making an RPC, except admin_mu, which only
 * serializes admin operations with each other. */
#ifndef MICA_TSERVER_TS_INT_H
#define MICA_TSERVER_TS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/env.h"
#include "common/slice.h"
#include "proto/auth.h"
#include "proto/route.h"
#include "proto/rpc.h"
#include "tabletserver/resources.h"
#include "tabletserver/server/ts.h"
#include "tabletserver/server/ts_http.h"
#include "tabletserver/server/ts_load.h"
#include "tabletserver/tablet.h"

/* Protocol limits (key, value, batch, MultiGet, scan chunks) are in
 * proto/limits.h; the server checks them before the engine sees a request
 * so that the message can name the request's field. */
/* How many departed tablets the registry remembers for routing errors. */
#define TS_GONE_MAX 4096

enum ts_tab_state {
  TS_SERVING = 0,
  TS_SPLITTING = 1, /* being split: requests get UNAVAILABLE (retry) */
  TS_CLOSING = 2    /* being closed: requests get NOT_SERVING */
};

/* A tablet's descriptor and the assign epoch it has (or had) here is an
 * rpc_route (proto/route.h) whose server fields are unused: table_name is
 * never NULL (rpc_route_from_desc makes it ""), and routes built for
 * routing errors add this server's location (ts_routebuf_add). */

/* One open tablet. */
typedef struct ts_tab {
  rpc_route d;     /* immutable while the entry is in the registry */
  char *dir;     /* absolute directory */
  char *rel_dir; /* relative to the data root */
  tablet *t;
  int state;     /* enum ts_tab_state; guarded by ts_server.mu */
  int refs;      /* requests holding the tablet; guarded by ts_server.mu */
  uint64_t split_retry_us; /* auto split back-off; maintenance thread */
  /* The master no longer assigns it here; the maintenance thread closes
   * it. Guarded by ts_server.mu. */
  bool drop_requested;
  /* Counters since open, updated without locks. */
  atomic_uint_fast64_t reads, writes, read_bytes, write_bytes, scans;
  /* Recent rates; guarded by ts_server.mu. */
  uint64_t rate_reads, rate_writes, rate_at_us;
  double read_rate, write_rate;
  ts_load_tab *load; /* request sampler (ts_load.h); owned */
  /* Out of service and counted in the server totals through obs.retired
   * with figures `retired` (ts_http.h). Guarded by ts_server.mu. */
  bool is_retired;
  ts_tally retired;
} ts_tab;

enum ts_gone_kind {
  TS_GONE_CLOSED = 0,
  TS_GONE_MOVED = 1,
  TS_GONE_SPLIT = 2,
  /* Input of a merge: `left` = the result, opened here, or (learnt from
   * the master's heartbeat reply) served at moved_server/moved_address
   * under left.assign_epoch. */
  TS_GONE_MERGED = 3
};

/* A tablet that left this server. */
typedef struct ts_gone {
  uint64_t id;
  int kind;
  uint64_t assign_epoch; /* the epoch it was served under here */
  rpc_route left, right;   /* TS_GONE_SPLIT: the daughters; MERGED: left,
                            * with its location when it serves elsewhere */
  uint64_t moved_server, moved_epoch; /* TS_GONE_MOVED */
  char *moved_address;
} ts_gone;

struct ts_server {
  ts_config cfg;          /* strings owned (copied) */
  env *e;
  res_pool *res;
  tab_options topts;
  clog *log; /* the shared commit log (topts.log), or NULL */
  rpc_server *rpc;
  struct ts_mlink *master_ch; /* the master(s) (ts_master.c); NULL when
                                standalone */
  rpc_secret secret;      /* the cluster secret: signs calls to the master */
  rpc_auth *auth;         /* checks every call; its client table comes from
                             the master (pending until the first reply) */
  char *tablets_dir;      /* <data_dir>/tablets */
  ts_obs obs;             /* counters and the HTTP side (ts_http.h) */

  pthread_mutex_t admin_mu; /* serializes admin operations */

  pthread_mutex_t mu;
  pthread_cond_t cv;      /* refs of a tablet out of service reached 0 */
  ts_tab **tabs;          /* sorted by id; guarded by mu */
  size_t ntabs, captabs;  /* guarded by mu */
  ts_gone *gone;          /* ring of departed tablets; guarded by mu */
  size_t ngone, gone_next; /* guarded by mu */
  uint64_t max_id_seen;   /* standalone id allocation; guarded by mu */
  struct ts_scan *scans;  /* open scans (ts_data.c); guarded by mu */

  /* Master conversation. */
  atomic_uint_fast64_t server_id;     /* 0 before registering */
  atomic_uint_fast64_t lease_until_us; /* env_now_micros deadline */
  /* Lease periods begun: incremented (before lease_until_us moves) by a
   * renewal that finds the lease over, so a request accepted under one
   * period is never acknowledged under the next (ts_lease_check_since). */
  atomic_uint_fast64_t lease_gen;
  uint64_t incarnation;
  atomic_uint_fast64_t heartbeat_ms;  /* interval in force */
  /* Split threshold in force: the master's (RegisterServerResponse.
   * split_threshold_bytes) once it gave one, else cfg.split_threshold. */
  atomic_uint_fast64_t split_threshold;
  /* Load-based split as the master set it (ts_load.h); off until told. */
  ts_load_conf load;
  /* Per-table options from the master (ts_topts.c); guarded by mu. */
  struct ts_topt *topts_v;
  size_t n_topts;
  /* The highest master epoch seen in a master's command or answer; older
   * ones are refused (ts_master_fence). Lives as long as the process. */
  atomic_uint_fast64_t master_epoch;
  uint64_t warned_us;     /* last master failure logged; master thread */

  /* Background threads. */
  pthread_mutex_t bg_mu;
  bool stopping;          /* guarded by bg_mu */
  pthread_t master_thread, maint_thread;
  bool master_started, maint_started;
};

/* ---- registry (ts_registry.c) ---- */

/* Inserts an open tablet (SERVING) and forgets any departure record of its
 * id. Takes ownership of `tt`. */
void ts_reg_insert(ts_server *s, ts_tab *tt);
/* Finds tablet `id` (NULL if not open), with mu held. */
ts_tab *ts_reg_find_locked(ts_server *s, uint64_t id);
/* The table of tablet `id` when this server serves it or split or merged
 * it (a tablet id belongs to one table for ever); NULL otherwise. Caller
 * frees. Takes mu. */
char *ts_reg_table_of(ts_server *s, uint64_t id);
/* Removes `tt` from the map (it is not freed), with mu held. */
void ts_reg_remove_locked(ts_server *s, ts_tab *tt);
/* NOT_SERVING when this server saw tablet `id` split or merged (a
 * retired tablet's directory may already be collected, and an open must
 * not create it again empty), else NULL. */
mica_err *ts_reg_retired_error(ts_server *s, uint64_t id);
/* Records a departure; takes ownership of g's contents. */
void ts_reg_gone(ts_server *s, ts_gone *g);
/* Frees a ts_tab whose tablet was closed. */
void ts_tab_free(ts_tab *tt);

/* The route of a served tablet, for routing errors and split answers.
 * Everything is copied into `rb` storage; valid until ts_routebuf_clear. */
typedef struct ts_routebuf {
  rpc_routing_error re;
  rpc_tablet_route routes[4]; /* re.current; point into wires */
  rpc_route_wire wires[4];     /* the wire forms of copies */
  rpc_location moved;
  rpc_route copies[4];         /* with this server as location when here */
  char *moved_address;
} ts_routebuf;

void ts_routebuf_init(ts_routebuf *rb);
void ts_routebuf_clear(ts_routebuf *rb);
/* Appends `d` as a route (served here when `here`). */
void ts_routebuf_add(ts_server *s, ts_routebuf *rb, const rpc_route *d,
                     bool here);
/* Appends `r` as it is, location included (a tablet served elsewhere). */
void ts_routebuf_add_remote(ts_routebuf *rb, const rpc_route *r);
/* The master says merge input `input`, which this server closed, is now
 * part of `merged`, which serves at merged's location: requests for the
 * input are answered with that route from now on. Nothing changes when
 * the input is open here or left otherwise (split, moved, merged here). */
void ts_reg_merged_into(ts_server *s, uint64_t input, const rpc_route *merged);

/* Looks up the tablet a data request names and takes a reference on it.
 * On success *out is held (release with ts_release). Otherwise returns the
 * routing or lease error and fills `rb` with what the server knows. */
mica_err *ts_acquire(ts_server *s, const rpc_tablet_ref *ref,
                     ts_routebuf *rb, ts_tab **out);
void ts_release(ts_server *s, ts_tab *tt);
/* OUT_OF_RANGE (with this tablet's route in `rb`) when `key` is outside
 * the tablet. `what` names the field. */
mica_err *ts_check_in_range(ts_server *s, ts_tab *tt, slice key,
                            const char *what, ts_routebuf *rb);

/* Takes `tt` out of service (state `state`) and waits until no request
 * holds it. */
void ts_quiesce(ts_server *s, ts_tab *tt, int state);
/* Cancels the parked scans of `tt`, which just left service (mu held):
 * their readers get the tablet's state and resume elsewhere, and their
 * references on `tt` go at once instead of when the readers read. */
void ts_scans_abort_locked(ts_server *s, ts_tab *tt);
/* Puts a quiesced tablet back in service. */
void ts_resume(ts_server *s, ts_tab *tt);

/* The lease: NULL while leased (always, standalone), else LEASE_EXPIRED. */
mica_err *ts_lease_check(ts_server *s);
/* The current lease period, read by a data handler before it looks the
 * tablet up. */
uint64_t ts_lease_gen(ts_server *s);
/* ts_lease_check, and also LEASE_EXPIRED when the lease lapsed since
 * ts_lease_gen returned `gen`, even if renewed since: a server frozen past
 * its lease while holding a request may have lost the tablet to another
 * server and then re-registered, and what the request did (a write to a
 * retired WAL segment, a read of a stale memtable) must not be
 * acknowledged under the new lease. */
mica_err *ts_lease_check_since(ts_server *s, uint64_t gen);

/* Fills `st` from `e` plus the routing in `rb` (if any was added). `st`
 * points into `e` and `rb`. */
void ts_status_fill(rpc_status *st, const mica_err *e, ts_routebuf *rb);

/* Figures of one tablet (counters, engine figures, rates). */
void ts_tab_stats(ts_server *s, ts_tab *tt, rpc_tablet_stats *out);

/* Takes tablet `id` (if served under `assign_epoch`) out of service at
 * once because the master no longer assigns it here; the maintenance
 * thread closes it (ts_drop_requested, ts_admin.h), so the heartbeat never
 * waits for an admin operation. */
void ts_request_drop(ts_server *s, uint64_t id, uint64_t assign_epoch);

/* Sleeps up to `us` for a background thread; true once the server is
 * stopping (ts_bg_stop). */
bool ts_bg_wait(ts_server *s, uint64_t us);
/* Tells the background threads to stop. */
void ts_bg_stop(ts_server *s);

/* ---- per-table options (ts_topts.c) ---- */

/* INVALID_ARGUMENT naming a TableOptions field out of range (NULL = none). */
mica_err *ts_topts_check(const rpc_table_options *w);
/* Remembers the options an OpenTablet carried for table `table_id` (0:
 * none), for that open (ts_topts_for) and later ones. Takes mu. */
void ts_topts_learn_open(ts_server *s, uint64_t table_id,
                         const rpc_table_options *w);
/* The engine options of a tablet of `table_id` (the server's own when the
 * table's are not known). */
void ts_topts_for(ts_server *s, uint64_t table_id, tab_options *out);
/* The split threshold of a tablet of `table_id`: the table's, else the
 * server's in force. Takes mu. */
uint64_t ts_topts_split_threshold(ts_server *s, uint64_t table_id);
/* A heartbeat reply's options: stored, and applied to the open tablets of
 * each table whose options changed (their next SSTables). Takes mu. */
void ts_topts_learn(ts_server *s, const rpc_table_options_entry *v, size_t n);

#endif
