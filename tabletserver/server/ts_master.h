/* ts_master: the tablet server's side of the master conversation
 * (ts_master.c): registration, heartbeats and the lease, split proposals.
 * Thread-safety: start and stop from the life cycle's thread; ReportSplit
 * from any thread. */
#ifndef MICA_TSERVER_TS_MASTER_H
#define MICA_TSERVER_TS_MASTER_H

#include "tabletserver/server/ts_int.h"

/* Opens the link to the master(s) of s->cfg.master: one address, a
 * comma-separated list, or zk://HOST:PORT[,...]/chroot (mzk_locate.h);
 * INVALID_ARGUMENT naming what is wrong with it. Freed by
 * ts_master_link_free (accepts a server without one). */
mica_err *ts_master_link_open(ts_server *s);
void ts_master_link_free(ts_server *s);

/* Starts the master thread (only when the server has a master). */
mica_err *ts_master_start(ts_server *s);
/* Stops it (ts_bg_stop) and waits for it. */
void ts_master_stop(ts_server *s);

/* Master-epoch fencing (docs/ha.md, "Fencing the tablet servers"): NULL
 * when `epoch` is at least the highest master epoch this server has seen
 * (which it then becomes); STALE_MASTER naming both epochs and `what` when
 * it is older, for a command the server must not carry out. A no-op for a
 * standalone server. Thread-safe. */
mica_err *ts_master_fence(ts_server *s, uint64_t epoch, const char *what);

/* One unary call of `m` to the active master (moving on to another one as
 * the heartbeats do); the answer's Status is returned as the error. On
 * success *resp is the response (caller frees with rpc_msg_free). */
mica_err *ts_master_unary(ts_server *s, const rpc_method *m, const void *req,
                          int64_t timeout_ms, void **resp);

/* ReportSplit of `parent` at `key` to the master (`for_load`: a
 * load-based split, ts_load.h); on success `left` and `right` (caller
 * clears them with rpc_route_clear) are the daughters the master
 * committed. */
mica_err *ts_master_report_split(ts_server *s, const rpc_route *parent,
                                 slice key, bool for_load, rpc_route *left,
                                 rpc_route *right);

#endif
