/* ms_heat: the master's bounded history of per-tablet load, the data
 * behind `mica hot`, /api/hot and the status page's heat map.
 *
 * Tablet servers report, in every heartbeat, counters per tablet since it
 * was opened there (keys read, keys written, scans started, and the
 * key+value bytes read and written: ms_stats). The difference between two
 * reports of the same tablet by the same server under the same assign
 * epoch is the work done in between. That work is spread over the time
 * buckets the interval overlaps (in proportion to the overlap), into one
 * row per tablet id and bucket; and it updates a recent rate per tablet
 * (exponentially weighted, time constant MS_HEAT_WINDOW_S of
 * snapshot.h) for the hot list.
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
 * and at most 2 * max_tablets tracked tablets (the last counters of each).
 * What does not fit is counted in `dropped` and not recorded. Tracked
 * tablets not reported within the window are forgotten when a bucket
 * rolls. Memory is therefore at most about buckets * max_tablets * 64 +
 * 2 * max_tablets * 160 bytes, keys excluded (they stay in the core).
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

/* Records the report of tablet `tablet_id` of table `table_id` by server
 * `server`, serving it under `assign_epoch`, at monotonic time `now`. */
void ms_heat_note(ms_heat *h, uint64_t tablet_id, uint64_t table_id,
                  uint64_t server, uint64_t assign_epoch, const ms_stats *st,
                  uint64_t now);

/* How many tablets `h` follows, and how many reports it left out at a
 * bound since it was made. */
void ms_heat_counts(const ms_heat *h, size_t *tracked, uint64_t *dropped);

#endif
