/* ts_authz: per-table roles on a tablet server (docs/security.md). */
#ifndef MICA_TSERVER_TS_AUTHZ_H
#define MICA_TSERVER_TS_AUTHZ_H

#include "tabletserver/server/ts_int.h"

/* rpc_server_opts.table_check of the TabletServer service: names the
 * table of every tablet a data call or TabletInfo touches and checks the
 * caller's role on it. A tablet whose table this server cannot name (not
 * served here, moved or closed) is answered UNAVAILABLE without a route,
 * so the client forgets its route and asks the master, where its role is
 * checked again. */
mica_err *ts_table_check(rpc_call *call, const void *request, void *ctx);

#endif
