/* msrv_int: the inside of the master process, shared by mserver.c (the
 * Master service handlers and the lifecycle) and maction.c (the action
 * loop). Not for use outside master/server/.
 *
 * Calls go one way only: mserver.c -> maction.c (maction.h: start and stop
 * the loop) -> msrv_ctx.c (this header's functions); mserver.c also uses
 * msrv_ctx.c. Nothing here calls back into mserver.c or maction.c. */
#ifndef MICA_MASTER_SERVER_MSRV_INT_H
#define MICA_MASTER_SERVER_MSRV_INT_H

#include <pthread.h>
#include <time.h>

#include "master/server/mserver.h"
#include "proto/auth.h"
#include "proto/route.h"
#include "proto/rpc.h"

typedef struct pending pending; /* maction.c */

struct msrv {
  msrv_options opt; /* data_root points at `root` */
  char *root;
  ms *core;         /* thread-safe on its own */
  rpc_server *rpc;
  rpc_secret secret;  /* the cluster secret: signs calls to servers */
  rpc_auth *auth;     /* checks every call to this master */
  pthread_mutex_t access_mu; /* guards access and access_wire (mauth.c) */
  rpc_access *access; /* the tokens file; enabled = false: calls are open */
  rpc_access_table access_wire; /* what register/heartbeat replies carry */
  char *cluster_name;     /* opt.cluster_name points at it; "" = none */
  uint64_t start_wall_ms; /* when msrv_start began, ms since the epoch */

  pthread_mutex_t mu;         /* guards the fields down to progress */
  pthread_cond_t kick_cv;     /* signalled when kicked or stopping */
  pthread_cond_t progress_cv; /* broadcast when progress grows */
  bool stopping;
  bool kicked;       /* work may be due before the next tick */
  uint64_t progress; /* grows after every batch of action outcomes */
  struct msrv_cap {  /* what each server said it can do, by server id */
    uint64_t id;
    bool can_merge;
  } *caps;
  size_t n_caps;
  /* Automatic merges were switched off by the loop because a live server
   * cannot merge; the loop switches them on again once all can. */
  bool merge_suspended;
  char *http_address; /* guarded by mu; msrv_set_http_address; NULL = none */
  bool deposed;       /* guarded by mu; msrv_note_fenced */
  uint64_t sweep_at;  /* guarded by mu; next orphan sweep (msrv_now time;
                         0 = at the loop's first round) */

  pthread_mutex_t ch_mu; /* guards chans: one channel per server address,
                            kept until msrv_stop */
  rpc_channel **chans;
  size_t n_chans;

  pthread_t loop; /* the action loop (maction.c) */
  bool loop_started;
  pending **out; /* calls in flight; the loop thread's alone */
  size_t n_out;
  struct msrv_probe *probes; /* unseen split daughters' probes (maction.c);
                                the loop thread's alone */
  size_t n_probes;
};

/* Monotonic microseconds from the core's env. */
uint64_t msrv_now(const msrv *s);
/* The wall-clock instant `micros` from now, for pthread_cond_timedwait. */
struct timespec msrv_abstime(const msrv *s, uint64_t micros);
/* Asks the action loop to tick now. */
void msrv_kick(msrv *s);
/* Tells waiting handlers that actions completed. */
void msrv_progress(msrv *s);
/* Records what server `id` said it can do (register, heartbeat). */
void msrv_set_caps(msrv *s, uint64_t id, bool can_merge);
/* NULL when every live server can open merged tablets (and there is at
 * least one); otherwise NOT_SUPPORTED naming a server that cannot. */
mica_err *msrv_merge_blocker(msrv *s);

/* Records that a tablet server refused a command of this master as coming
 * from an older master epoch, if `err` says so (msrv_deposed). */
void msrv_note_fenced(msrv *s, const mica_err *err);

/* The shared channel to `address` (created on first use; valid until
 * msrv_stop). */
mica_err *msrv_channel(msrv *s, const char *address, rpc_channel **out);

/* The route form of the core's record `t`, borrowing its keys and strings
 * (valid while `t` lives; never rpc_route_clear it): what the handlers and
 * the loop convert to wire messages with proto/route.h. */
rpc_route msrv_route_view(const ms_tablet *t);

/* ---- client access after start-up (mauth.c) ---- */

/* rpc_server_opts.table_check of the Master service: names the table each
 * table-scoped request touches (a tablet's table for tablet ids). */
mica_err *msrv_table_check(rpc_call *call, const void *req, void *ctx);
/* Held while a reply carrying access_wire is encoded. */
void msrv_access_lock(msrv *s);
void msrv_access_unlock(msrv *s);

/* ---- mopts.c: table options on the wire ---- */

struct arena;
/* The wire form of `o`, allocated in `a`. */
rpc_table_options *msrv_opts_msg(struct arena *a, const ms_table_opts *o);
/* `w` (NULL = all defaults) as core options, checked: INVALID_ARGUMENT
 * naming the bad option. */
mica_err *msrv_opts_from_wire(const rpc_table_options *w, ms_table_opts *o);
/* The AlterTable handler (ctx: the msrv). */
void msrv_h_alter_table(rpc_call *call, const void *req, void *ctx);

/* msrv_snapshot.c: the snapshot calls, their table check (CreateSnapshot
 * and CloneSnapshot name a table, DropSnapshot the snapshot's source
 * table), and the deletion of dropped snapshots' pins, which the action
 * loop runs every round. */
mica_err *msrv_snapshot_register(msrv *s);
mica_err *msrv_snap_table_check(msrv *s, rpc_call *call, const void *req);
void msrv_snap_housekeeping(msrv *s);
/* The orphan sweep. Over the tablet directories of forgotten tablets
 * (ms_tablet_forgotten: their table's removal is logged), retires (and
 * lets the collector delete) each holding a live manifest of epoch 0 and
 * removes each holding no manifest: what a clone's or restore's late write
 * left after its cleanup. Directories of tablets the core knows, of ids
 * it never gave out, and with any other manifest are never touched.
 * *retired counts what it retired or removed. */
mica_err *msrv_sweep_orphans(msrv *s, size_t *retired);
/* Runs the sweep when due (the action loop, every round): at the first
 * round after the log was read, then every opt.orphan_sweep_us. */
void msrv_sweep_tick(msrv *s, uint64_t now);
/* Brings the next sweep forward to within MSRV_LATE_WRITE_US (or the
 * sweep interval if shorter): after a failed clone or restore, whose late
 * writes may land after the cleanup. */
void msrv_sweep_soon(msrv *s);
#define MSRV_LATE_WRITE_US (60ull * 1000 * 1000)
/* msrv_export.c: ExportSnapshot and RestoreSnapshot (registered by
 * msrv_snapshot_register). */
mica_err *msrv_export_register(msrv *s);

/* msrv_balance.c: the Balance and DrainServer handlers (ctx: the msrv). */
void msrv_h_balance(rpc_call *call, const void *req, void *ctx);
void msrv_h_drain(rpc_call *call, const void *req, void *ctx);

#endif
