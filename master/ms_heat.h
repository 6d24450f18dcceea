/* ms_heat: the master's bounded history of per-tablet load, the data
 * behind `mica hot`, /api/hot and the status page's heat map.
 *
 * Tablet servers report, in every heartbeat, counters per tablet since it
 * was opened there (keys read, keys written, scans started, and the
 * key+value bytes read and written: ms_stats). The tablet's load record
 * (ms_tab, kept by ms_load.c) takes the difference between two reports of
 * the same tablet by the same server under the same assign epoch: the
 * work done in between, from which it also keeps the tablet's recent
 * rates. It hands that work here, where it is spread over the time
 * buckets the interval overlaps (in proportion to the overlap), into one
 * row per tablet id and bucket. The hot list ranks the tracked tablets by
 * the recent rates of their records.
 *
 * Splits and merges: a tablet id names one key range for good (a split or
 * a merge makes new ids), so rows keep only the tablet id and the snapshot
 * looks the range up in the core (retired tablets stay there until their
 * table is removed). A column of the heat map thus shows the tablets as
 * they were in that bucket: the parent before a split, the daughters
 * after it, both in the bucket where it happened.
 *
 * Bounds: `buckets` buckets of `bucket_us` each (a ring: the oldest is
 * reused when time moves past it), at most `max_tablets` rows per bucket,
 * and at most 2 * max_tablets tracked tablets (the hot list names only
 * these). What does not fit is counted in `dropped` and not recorded.
 * Tracked tablets not reported within the window are forgotten when a
 * bucket rolls. Memory is therefore at most about buckets * max_tablets *
 * 64 + 2 * max_tablets * 64 bytes, keys excluded (they stay in the core).
 *
 * What is not measured: the first report of a tablet (after it opens, a
 * move, or a master restart) only sets the baseline, so the work of its
 * first heartbeat interval is not counted; a counter that goes backwards
 * (the server reopened the tablet) starts a new baseline the same way.
 *
 * Thread-safety: none of its own. It lives in the core (ms.heat) and every
 * function here is called with ms.mu held. */
#ifndef MICA_MASTER_MS_HEAT_H
#define MICA_MASTER_MS_HEAT_H

#include <stddef.h>
#include <stdint.h>

#include "master/state.h"

typedef struct ms_heat ms_heat;

/* A history of `buckets` buckets of `bucket_us` microseconds, at most
 * `max_tablets` rows each (all three at least 1). Caller frees with
 * ms_heat_free(). */
ms_heat *ms_heat_new(uint64_t bucket_us, size_t buckets, size_t max_tablets);
void ms_heat_free(ms_heat *h); /* accepts NULL */

/* Records a report of tablet `tablet_id` of table `table_id` by server
 * `server` at monotonic time `now`: the tablet is seen in now's bucket
 * (even when idle), and `work` (MS_W_N values by kind, ms_int.h), when
 * not NULL, is the work it did over [since, now), spread over the buckets
 * that interval overlaps. NULL `work` is a new baseline: nothing to add. */
void ms_heat_note(ms_heat *h, uint64_t tablet_id, uint64_t table_id,
                  uint64_t server, uint64_t since, uint64_t now,
                  const double *work);

/* How many tablets `h` follows, and how many reports it left out at a
 * bound since it was made. */
void ms_heat_counts(const ms_heat *h, size_t *tracked, uint64_t *dropped);

#endif
