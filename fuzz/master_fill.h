/* master_fill: a master core with something in it, for the fuzz targets and
 * the seed generator.
 *
 * fzm_populate drives a freshly opened core through the calls the RPC
 * layer makes: two tables (one cut at split keys, including non-ASCII
 * bytes), two tablet servers registering and heartbeating, the assignments
 * ms_tick hands out reported done, a manual split and a dropped table. The
 * state it leaves covers every record type the metadata log writes in a
 * normal life and every section the HTTP API renders.
 *
 * Thread-safety: as state.h. */
#ifndef MICA_FUZZ_MASTER_FILL_H
#define MICA_FUZZ_MASTER_FILL_H

#include <stdint.h>

#include "master/state.h"

/* Drives `m` as above starting at monotonic time `now` (microseconds);
 * returns the time it ended at. Aborts on any error: callers give it a
 * fresh core in a private directory. */
uint64_t fzm_populate(ms *m, uint64_t now);

#endif
