/* ts_data: the data calls of the TabletServer service (ts_data.c):
 * Get, MultiGet, Put, Delete, Batch, Scan. */
#ifndef MICA_TSERVER_TS_DATA_H
#define MICA_TSERVER_TS_DATA_H

#include "tabletserver/server/ts_int.h"

/* Registers the data handlers. */
mica_err *ts_data_register(ts_server *s);

#endif
