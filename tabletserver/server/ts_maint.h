/* ts_maint: the tablet server's maintenance thread (ts_maint.c): rates,
 * automatic splits, closing tablets the master dropped.
 * Thread-safety: start and stop from the life cycle's thread. */
#ifndef MICA_TSERVER_TS_MAINT_H
#define MICA_TSERVER_TS_MAINT_H

#include "tabletserver/server/ts_int.h"

mica_err *ts_maint_start(ts_server *s);
/* Stops it (ts_bg_stop) and waits for it. */
void ts_maint_stop(ts_server *s);

#endif
