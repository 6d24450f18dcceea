/* metalog: the master's durable metadata log (format: METALOG_FORMAT.md).
 *
 * The master's state is a snapshot plus the records appended since. Files
 * live in one directory (<data-root>/master/) and belong to a generation G:
 *
 *   snap-G   the whole state at the start of generation G, one record,
 *            written atomically (temp file, sync, rename, directory sync);
 *   log-G    the records appended during generation G, each synced before
 *            mlog_append() returns.
 *
 * mlog_open() replays the newest snapshot and its log through a callback;
 * the owner then calls mlog_roll() with its encoded state, which writes
 * snap-(G+1), starts an empty log-(G+1) and deletes everything older. Rolling
 * at every open means a torn tail left by a crash is never appended to, and
 * rolling after a failed append or sync discards whatever that append may
 * have left in the old log (a record whose outcome the caller was told is a
 * failure never becomes durable later).
 *
 * On storage without in-place appends (env_appends_in_place false: S3)
 * log-G is replaced by one file per batch, log-G.1, log-G.2, ..., each
 * written whole and never rewritten (METALOG_FORMAT.md, "Parts"), and
 * there is no LOCK (object stores have none; a warning is logged).
 *
 * Replay reads untrusted bytes: a record cut short or failing its checksum
 * at the very end of log-G is a torn tail and is ignored; anything wrong
 * before the end is CORRUPTION naming the file and offset.
 *
 * Thread-safety: none; the owner serializes every call (the master state
 * holds its mutex around them).
 *
 * Invariants: after a failed mlog_append() or mlog_roll(), mlog_needs_roll()
 * is true and mlog_append() refuses work until a roll succeeds. */
#ifndef MICA_MASTER_METALOG_H
#define MICA_MASTER_METALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/env.h"
#include "common/err.h"
#include "common/slice.h"

typedef struct mlog mlog;

/* Largest payload of one record (a snapshot of a very large cluster). */
#define MLOG_MAX_RECORD (1u << 30)

/* Called once per replayed record, the snapshot record first. A returned
 * error stops the replay; mlog_open() wraps it with the file and offset. */
typedef mica_err *(*mlog_replay_fn)(void *ctx, uint8_t type, slice payload);

/* Opens (creating if needed) the log in `dir`, takes <dir>/LOCK
 * (UNAVAILABLE when another process holds it; skipped where the env has no
 * locks), and replays the newest
 * snapshot and its log through `fn`. Before the first mlog_append() the
 * caller must mlog_roll(). Caller closes with mlog_close(). */
mica_err *mlog_open(env *e, const char *dir, mlog_replay_fn fn, void *ctx,
                    mlog **out);

/* mlog_open for a master with master epoch `epoch` (docs/ha.md): files
 * are named by the epoch they were written under and ordered by (epoch,
 * generation), so the first roll writes this master's own snapshot and
 * log, and everything an older epoch wrote is retired by it (never read
 * again, deleted). STALE_MASTER when the directory holds files of a newer
 * epoch. mlog_open() is mlog_open_epoch() with epoch 0. */
mica_err *mlog_open_epoch(env *e, const char *dir, uint64_t epoch,
                          mlog_replay_fn fn, void *ctx, mlog **out);

/* The highest master epoch in the names of the files in `dir` (0 when
 * none, or no such directory), without taking the lock: the floor of the
 * next election (mzk_elector_opts.min_epoch). */
mica_err *mlog_peek_epoch(env *e, const char *dir, uint64_t *epoch);

/* After every durable append, `guard(ctx)` must still be true for the
 * append to succeed; when false it fails with STALE_MASTER (the record may
 * be on disk, in a log a newer master has retired or will retire) and the
 * log needs a roll. For the active master's leadership lease. */
void mlog_set_guard(mlog *m, bool (*guard)(void *ctx), void *ctx);

/* The master epoch of the current files (of the replayed ones before the
 * first roll). */
uint64_t mlog_epoch(const mlog *m);

/* Starts a new generation whose snapshot is one record (`type`, `state`),
 * then deletes the older generations' files. On failure the current log
 * stays in place and mlog_needs_roll() becomes true. */
mica_err *mlog_roll(mlog *m, uint8_t type, slice state);

/* Appends one record and syncs it. NULL means it is durable. On failure
 * nothing may be assumed about the record on disk until the next roll. */
mica_err *mlog_append(mlog *m, uint8_t type, slice payload);

/* Appends `n` records with one write and one sync (group commit). A crash
 * may keep any prefix of them, so each record must be valid on its own
 * after the ones before it. */
mica_err *mlog_append_batch(mlog *m, size_t n, const uint8_t *types,
                            const slice *payloads);

/* True when the next change must be preceded by a successful mlog_roll(). */
bool mlog_needs_roll(const mlog *m);

/* Bytes in the current log file (header included); 0 before the first roll. */
uint64_t mlog_log_bytes(const mlog *m);

/* The current generation (0 before the first roll of an empty directory). */
uint64_t mlog_generation(const mlog *m);

/* Releases the lock and closes the log. Accepts NULL. */
void mlog_close(mlog *m);

#endif
