/* tablet_merge: the result of a merge, made by reference (docs/design.md,
 * "Merges": the reverse of a split).
 *
 * The master closes two adjacent tablets L and R, commits a merged tablet M
 * covering [L.start, R.end) with an assign_epoch E above both inputs', and
 * sends OpenTablet(M, E, sources = L, R). tab_merge_prepare makes M's
 * directory hold a MANIFEST that references every SSTable of L and of R,
 * each restricted to its input's range, so no data is copied; then the
 * caller opens M with tab_open(..., E, ...) like any tablet.
 *
 * Steps (each one idempotent, so a crash anywhere is repaired by running
 * the whole call again, which is what a re-sent OpenTablet does):
 *
 *  1. if M's MANIFEST exists, go to 4;
 *  2. each input whose MANIFEST lists WAL segments or carries an epoch
 *     below E is opened under E and closed: that replays and flushes what
 *     it holds and writes its MANIFEST under E, which fences any older
 *     owner of the input (the engine refuses to write a manifest over a
 *     newer epoch's);
 *  3. M's MANIFEST (epoch E, last_seq the larger of the inputs', L's files
 *     then R's, paths "../<input>/…") is written in "<M>.merge-tmp", the
 *     directory renamed to M and the parent directory synced: M never
 *     exists without its complete MANIFEST;
 *  4. each input's MANIFEST is rewritten with state MAN_MERGED (left_id =
 *     M): retired, never served again, and from now on its files are
 *     deleted by tab_collect_garbage once no live manifest references
 *     them. An input whose directory is gone was retired and collected
 *     already.
 *
 * Why listing L's files before R's is correct although the two inputs
 * numbered their writes independently: the engine reads the files newest
 * first and stops at the first that holds a key inside the file's range.
 * Every key lies in exactly one input's range, so only that input's files
 * are ever consulted for it, in that input's own newest-first order. A
 * compaction merges consecutive files only, which keeps each input's
 * files in their relative order, and one that includes the last file
 * includes, for every key, every file older than the newest one it read.
 * New writes get sequence numbers above both inputs' (last_seq is the
 * larger one).
 *
 * Why garbage collection stays safe (docs/engine.md, "Deleting files"):
 * a merge creates references only to files its inputs reference, and M's
 * directory appears complete (by rename) before either input is marked
 * retired, exactly like split daughters before their parent. So a
 * collector that reads an input as retired has either listed M (and read
 * its manifest) or sees the directory set change and retries.
 *
 * The three directories must be siblings (the engine's layout, which the
 * master uses); otherwise INVALID_ARGUMENT.
 *
 * Thread-safety: no state of its own; the caller makes sure that nothing
 * else opens M or the inputs during the call (the tablet server runs it
 * under its admin lock). */
#ifndef MICA_TABLETSERVER_TABLET_MERGE_H
#define MICA_TABLETSERVER_TABLET_MERGE_H

#include <stdint.h>

#include "common/err.h"
#include "tabletserver/resources.h"
#include "tabletserver/tablet.h"

/* One input of a merge: its directory and id. `dir` is borrowed: it must
 * stay valid for the duration of the call. */
typedef struct tab_merge_input {
  const char *dir;
  uint64_t id;
} tab_merge_input;

/* Makes `dir` hold tablet `id`, the merge of inputs `in[0]` and `in[1]`
 * (in either order; their ranges must meet), as described above, and
 * retires both inputs. `assign_epoch` must be >= both inputs' epochs
 * (STALE_EPOCH otherwise). `opts` (NULL: defaults) is used for the brief
 * open of an input that still holds WAL data. Errors: NOT_FOUND (an input
 * has no MANIFEST and M does not exist), INVALID_ARGUMENT (inputs not
 * adjacent, not siblings of `dir`, the same tablet), NOT_SERVING (an input
 * was split, or merged into another tablet), STALE_EPOCH, CORRUPTION,
 * IO_ERROR. On error nothing is lost: calling again continues. */
mica_err *tab_merge_prepare(res_pool *res, const char *dir, uint64_t id,
                            const tab_merge_input in[2],
                            uint64_t assign_epoch, const tab_options *opts);

#endif
