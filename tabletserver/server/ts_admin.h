/* ts_admin: the admin calls of the TabletServer service and the split
 * itself (ts_admin.c), for the life cycle and the maintenance loop.
 * Thread-safety: every call takes admin_mu itself. */
#ifndef MICA_TSERVER_TS_ADMIN_H
#define MICA_TSERVER_TS_ADMIN_H

#include "tabletserver/server/ts_int.h"

/* Registers OpenTablet, CloseTablet, SplitTablet and TabletInfo. */
mica_err *ts_admin_register(ts_server *s);
/* Registers SnapshotTablet (ts_snapshot.c). */
mica_err *ts_snapshot_register(ts_server *s);

/* Splits served tablet `id` at `key` (empty: the middle) the way
 * SplitTablet does: proposes to the master (or picks ids standalone),
 * then splits by reference and serves both daughters. `for_load` tells
 * the master it is a load-based split. `left`/`right` (may be NULL)
 * receive the daughters. Takes admin_mu itself. */
mica_err *ts_split_tablet(ts_server *s, uint64_t id, uint64_t range_epoch,
                          uint64_t assign_epoch, slice key, bool for_load,
                          rpc_route *left, rpc_route *right);

/* Closes every tablet whose drop was requested (ts_request_drop). */
void ts_drop_requested(ts_server *s);

#endif
