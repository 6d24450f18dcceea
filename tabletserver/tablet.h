/* tablet: the storage engine of one tablet (docs/design.md, "Storage
 * engine"; in detail docs/engine.md).
 *
 * A tablet is a contiguous key range [start, end) of one table, stored in
 * its own directory under the shared data root as a MANIFEST (manifest.h),
 * WAL segments (wal.h) and SSTables (sstable/sstable.h). Writes go to the
 * current WAL segment (group commit) and then to the active memtable; a
 * full memtable becomes immutable, a new segment starts, and a background
 * job of the server's shared pool (resources.h) flushes it to an SSTable
 * in level 0. Leveled compactions in the same pool merge level 0 into
 * level 1 and each level over its size target into the next; every level
 * below 0 holds files with disjoint key ranges, so a read looks at the
 * level-0 files and at most one file per level below.
 * docs/engine.md describes the whole design, the directory layout and the
 * crash and fencing arguments.
 *
 * Reads see a *version*: the active and immutable memtables plus the list
 * of SSTables, reference counted, so a flush or compaction installs a new
 * version without disturbing readers of the old one. A snapshot is a
 * version plus a sequence number; gets and scans at a snapshot see exactly
 * the writes acknowledged before it was taken.
 *
 * Epochs (docs/design.md, "Leases and fencing"): tab_open with
 * assign_epoch E replays every WAL segment listed in the manifest (all
 * written under epochs <= E) into memory and serves reads; then it takes the tablet over: flushes what it
 * replayed to an SSTable, starts its own segment named with E and records
 * in the manifest that the old segments are retired, in one atomic
 * manifest write. It never appends to an older segment, and it refuses to
 * write a manifest once a newer epoch has written one (STALE_EPOCH), so a
 * fenced old owner can neither make its late writes visible nor undo the
 * new owner's manifest. On a disk below the server's free-space reserve
 * (resources.h) the take-over waits: the tablet serves reads, having
 * written nothing, and the first write (or flush, split, close) after
 * space returns takes it over (docs/engine.md, "A full disk").
 *
 * Split by reference: tab_split makes two daughter tablets (sibling
 * directories) whose manifests reference the parent's SSTables restricted
 * to their halves; no data is copied. Files are deleted when no live
 * manifest references them (tab_collect_garbage; own files of a live
 * tablet are deleted by the tablet itself once a compaction replaces them
 * and no reader holds them).
 *
 * Keys are 1..16 KiB, values at most 8 MiB, a batch at most 32 MiB of
 * encoded entries (tab_options can lower or raise the limits); every key of
 * a write must lie inside the tablet's range (OUT_OF_RANGE otherwise). A
 * rejected write changes nothing.
 *
 * Errors: INVALID_ARGUMENT (bad sizes), OUT_OF_RANGE, NOT_FOUND (get of an
 * absent key; open of a tablet without MANIFEST), UNAVAILABLE ("write
 * stall: ..." after the bounded wait), NOT_SERVING (tablet closing, or
 * already split), STALE_EPOCH (a newer owner took the tablet), CORRUPTION
 * (naming file and offset), RESOURCE_EXHAUSTED (the data root is below
 * the free-space reserve: writes and compactions refused at once, nothing
 * applied; or the disk filled under a WAL write, whose outcome is then
 * unknown), IO_ERROR. After an I/O error on the WAL or a failed manifest
 * write the tablet stops accepting writes (every later write returns that
 * error) until it is closed and reopened, because what is on disk is then
 * unknown; a full disk under the WAL is not such an error: the next write
 * starts a new segment once there is room.
 *
 * Thread-safety: every function may be called from any number of threads
 * at once on one tablet, except tab_close and tab_split, which must not
 * race with any other call on the same tablet (the server stops routing
 * requests to the tablet first). Iterators and snapshots may be used from
 * any thread, one thread at a time each, and must be closed before the
 * tablet is. */
#ifndef MICA_TABLETSERVER_TABLET_H
#define MICA_TABLETSERVER_TABLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "common/env.h"
#include "common/err.h"
#include "common/iter.h"
#include "sstable/sstable.h"
#include "tabletserver/clog.h"
#include "tabletserver/resources.h"
#include "tabletserver/wbatch.h"

typedef struct tablet tablet;

typedef struct tab_options {
  /* Bytes at which the active memtable becomes immutable. Default 8 MiB. */
  size_t memtable_bytes;
  /* Immutable memtables a tablet may hold waiting for flush before writers
   * stall. Default 2. */
  int max_immutable;
  /* Level 0 (flushed memtables, whose key ranges overlap) is compacted
   * into level 1 once it holds this many SSTables. Default 4 (2..64). */
  int compaction_trigger;
  /* Writers stall when level 0 holds this many SSTables: the compaction
   * debt of every level is bounded through it (docs/engine.md, "Levels").
   * Default 24. */
  int stall_sst_count;
  /* The size target of level 1 in logical bytes; each level below has ten
   * times the one above. 0 (the default): 8 x memtable_bytes. */
  uint64_t level_base_bytes;
  /* A compaction starts a new output file once one reaches this many
   * bytes. 0 (the default): 2 x memtable_bytes. */
  uint64_t level_file_bytes;
  /* The bounded wait of a stalled writer before UNAVAILABLE. Default 10 s. */
  uint64_t stall_timeout_micros;
  /* Run compactions automatically in the background. Default true. */
  bool auto_compact;
  /* Create an empty tablet when the directory holds no MANIFEST. Default
   * false: a daughter of an interrupted split must not come up empty. */
  bool create_if_missing;
  /* Limits (bytes). Defaults 16 KiB, 8 MiB, 32 MiB. */
  size_t max_key;
  size_t max_value;
  size_t max_batch;
  sst_options sst; /* format options of the SSTables this tablet writes */
  /* The server's shared commit log (clog.h), or NULL for the tablet's own
   * WAL segments. Must outlive the tablet. Default NULL. */
  clog *log;
  /* Operator's acceptance of a loss (mica-tserver --accept-lost-commit-log):
   * a NULL-terminated list of commit log names. A tablet whose manifest
   * names one of them while that log is missing (a server's POSIX log lost
   * with its machine) opens without the writes that were only in it,
   * logging an error that says so, instead of failing with CORRUPTION.
   * Damage inside a log that exists is never accepted. Default NULL. */
  const char *const *accept_lost_logs;
} tab_options;

void tab_options_init(tab_options *o);

/* Writes "<tablets_dir>/<tablet_id>" into `out` (replacing its contents,
 * NUL-terminated): where a tablet lives under the data root's tablets
 * directory. Daughters of a split are created as siblings of the parent. */
void tab_dir_path(const char *tablets_dir, uint64_t tablet_id, buf *out);

/* Opens the tablet stored in `dir` (see the epoch paragraph above).
 * `start` (empty = unbounded) and `end` (len 0 = unbounded) must equal the
 * range in the MANIFEST, or define the new tablet's range when it is
 * created. `res` must outlive the tablet. NOT_FOUND when there is no
 * MANIFEST and !create_if_missing; STALE_EPOCH when the manifest was
 * written by a newer epoch; NOT_SERVING when the tablet was split (an
 * interrupted split is finished first, so its daughters can then be
 * opened); CORRUPTION naming the file for a damaged manifest, a missing or
 * damaged SSTable, or WAL corruption before the tail. Below the free-space
 * reserve it succeeds without writing anything (see the epoch paragraph).
 * Caller closes with tab_close(). */
mica_err *tab_open(res_pool *res, const char *dir, uint64_t tablet_id,
                   slice start, slice end, uint64_t assign_epoch,
                   const tab_options *opts, tablet **out);

/* Stops writes, flushes every memtable to SSTables so that no WAL segment
 * holds data any more (the manifest lists none; a tablet not yet taken over
 * is taken over first), and frees the tablet (also on error, e.g. a full
 * disk; then the WAL still holds the data and a reopen replays it).
 * Accepts NULL. */
mica_err *tab_close(tablet *t);

/* ---- writes ---- */

/* With `sync`, the write is on stable storage (fdatasync, shared with
 * concurrent writers by group commit) when NULL is returned; without, it
 * survives a process crash but not a power loss. */
mica_err *tab_put(tablet *t, slice key, slice value, bool sync);
mica_err *tab_delete(tablet *t, slice key, bool sync);
/* Applies every entry of `b` or none. Sets the batch's sequence number. An
 * empty batch succeeds and writes nothing. */
mica_err *tab_write(tablet *t, wbatch *b, bool sync);

/* ---- reads ---- */

typedef struct tab_snapshot tab_snapshot;

/* Pins the current data and sequence number. Caller frees with
 * tab_snapshot_free() before closing the tablet. */
tab_snapshot *tab_snapshot_new(tablet *t);
void tab_snapshot_free(tab_snapshot *s); /* accepts NULL */
uint64_t tab_snapshot_seq(const tab_snapshot *s);

/* Reads `key` at `snap` (NULL: the latest acknowledged writes). On success
 * the value replaces the contents of `value`. NOT_FOUND when absent or
 * deleted, OUT_OF_RANGE outside the tablet. */
mica_err *tab_get(tablet *t, const tab_snapshot *snap, slice key, buf *value);

typedef struct tab_scan_options {
  slice start;   /* inclusive; .data == NULL or len 0: the tablet's start */
  slice end;     /* exclusive; len 0: the tablet's end */
  slice prefix;  /* only keys with this prefix; len 0: no restriction */
  uint64_t limit; /* at most this many entries; 0: no limit */
  bool reverse;  /* from the last key down */
  bool fill_cache; /* put blocks read into the block cache (default true) */
  const tab_snapshot *snap; /* NULL: a snapshot taken now */
} tab_scan_options;

void tab_scan_options_init(tab_scan_options *o);

/* An iterator over user keys and values in scan order, already positioned
 * at the first entry of the scan: iter_next moves on in scan order (down
 * for reverse scans), iter_prev back, iter_seek_to_first restarts the
 * scan, iter_seek(k) goes to the first entry at or after k in scan order.
 * The range is [start, end) clipped to the tablet, intersected with the
 * prefix. The limit counts entries since the last seek. Only the newest
 * version of each key at the snapshot is shown and deleted keys are
 * hidden. INVALID_ARGUMENT when start > end. The iterator holds the
 * snapshot's data; caller closes it with iter_close() before closing the
 * tablet. */
mica_err *tab_scan(tablet *t, const tab_scan_options *o, iter **out);

/* ---- maintenance ---- */

/* Makes the active memtable immutable and flushes every immutable
 * memtable, waiting until done. */
mica_err *tab_flush(tablet *t);

/* Changes the format options of the SSTables the tablet writes from now on
 * (flushes and compactions; files already written keep theirs, and every
 * block records its own compression). Checked like sst_options: returns
 * INVALID_ARGUMENT and changes nothing when `o` is out of range. */
mica_err *tab_set_sst_options(tablet *t, const sst_options *o);
/* Flushes, then merges all SSTables into the lowest level holding data
 * (at least level 1), in files of level_file_bytes, dropping every old
 * version and delete; waits until done. RESOURCE_EXHAUSTED, doing
 * nothing, below the free-space reserve. */
mica_err *tab_compact(tablet *t);

/* Schedules the background work that is due but may not have been
 * triggered: a compaction when a level is over its bound or the tablet
 * still reads another tablet's files by reference (a split daughter or a
 * merged tablet that wrote nothing since, or whose last compaction failed
 * or found the disk short of space), and for a tablet opened on a full
 * disk and not written to since, the take-over once there is room (which
 * schedules that compaction). Returns at once; the server's
 * maintenance thread calls it periodically. Does nothing with
 * auto_compact off. */
void tab_maintain(tablet *t);

/* Splits the tablet at `split_key` (start < split_key < end) into
 * daughters `left_id` [start, split_key) and `right_id` [split_key, end),
 * created as sibling directories that reference the parent's SSTables (no
 * data copied), with the parent's assign_epoch. Stops writes, flushes the
 * memtables, then commits in the parent's MANIFEST. INVALID_ARGUMENT (a
 * key not strictly inside the range, bad ids) leaves `t` open and
 * unchanged; every other outcome frees `t`: on success the parent is
 * retired; on failure reopening the parent either serves it as before or
 * finishes the split, depending on whether the commit point was reached. When `left`/`right` are not NULL the
 * daughters are opened with `opts` (NULL: the parent's options). */
mica_err *tab_split(tablet *t, slice split_key, uint64_t left_id,
                    uint64_t right_id, const tab_options *opts,
                    tablet **left, tablet **right);

/* tab_split (left, right NULL) that calls `written(arg)` once both
 * daughters' manifests are durable and before the parent's MANIFEST says
 * SPLIT, so a caller can start opening the daughters while that last
 * write is under way (on object storage both are network round trips).
 * Such a daughter must not serve until this returns success: only then
 * is the split recorded. `written` is called at most once, from the
 * calling thread, and must not block on the split. */
mica_err *tab_split_overlap(tablet *t, slice split_key, uint64_t left_id,
                            uint64_t right_id,
                            void (*written)(void *arg), void *arg);

/* Deletes files under `tablets_dir` that no live manifest and no snapshot
 * pin references: SSTables in the directories of split parents, merge
 * inputs and dropped tables once nothing reads them, and then those
 * directories; and the SSTables a live tablet's SHARED file names once
 * neither its manifest nor any other manifest or pin lists them. Safe to run at any time, from any
 * server, concurrently with tablets opening, writing, compacting and
 * splitting, and with other collections (docs/engine.md gives the
 * argument). `removed` (may be NULL)
 * receives the number of files deleted. */
mica_err *tab_collect_garbage(env *e, const char *tablets_dir,
                              uint64_t *removed);

/* ---- snapshots (tablet_snap.c, docs/storage.md "Snapshots") ---- */

#define TAB_SHARED_FILE "SHARED"
#define TAB_SNAPSHOTS_SUBDIR "snapshots"

/* What a pin recorded. */
typedef struct tab_pin_info {
  uint64_t files, bytes; /* SSTables listed and their sizes */
  uint64_t last_seq;     /* >= every sequence number in them */
} tab_pin_info;

/* Flushes the tablet (every write acknowledged before the call is then in
 * an SSTable) and writes at `pin_path` (atomically) a pin: a manifest of
 * the tablet's SSTables by sibling path, with its range, and no WAL
 * segments. The tablet's own files listed there are never deleted by the
 * tablet afterwards (they go into its SHARED file); only
 * tab_collect_garbage deletes them, once no manifest and no pin lists
 * them. */
mica_err *tab_snapshot_pin(tablet *t, const char *pin_path,
                           tab_pin_info *out);

/* "<root>/snapshots" for the data root holding `tablets_dir`, where the
 * pins live: one directory per snapshot id. Caller frees. */
char *tab_snapshots_dir(const char *tablets_dir);

/* Retires the directory of tablet `tablet_id` of a dropped table (closed
 * everywhere): its MANIFEST goes to state dropped, so tab_collect_garbage
 * deletes its files once nothing else references them, then the
 * directory. A directory without a MANIFEST is removed at once; an absent
 * one is not an error. */
mica_err *tab_retire_dropped(env *e, const char *tablets_dir,
                             uint64_t tablet_id);

/* ---- information ---- */

uint64_t tab_id(const tablet *t);
uint64_t tab_epoch(const tablet *t);
/* The tablet's range; valid until tab_close. `end` has len 0 when
 * unbounded. */
slice tab_start(const tablet *t);
slice tab_end(const tablet *t);
/* Sequence number of the last acknowledged write. */
uint64_t tab_last_seq(tablet *t);

/* Bytes of data in the tablet's range (SSTables, restricted to the range,
 * plus memtables) and an estimate of the number of entries (versions and
 * deletes included). Cheap: index lookups only. */
uint64_t tab_approximate_size(tablet *t);
uint64_t tab_approximate_keys(tablet *t);

/* A key that splits the tablet's data roughly in half by bytes, with
 * start < key < end and at least one live key on each side; written to
 * `out` (replacing its contents). NOT_FOUND when the tablet holds fewer
 * than two keys. */
mica_err *tab_middle_key(tablet *t, buf *out);

typedef struct tab_stats {
  uint64_t puts, deletes, batches;      /* acknowledged writes */
  uint64_t bytes_written;               /* encoded batch bytes */
  uint64_t gets, scans;
  uint64_t get_file_probes;             /* SSTables looked into by gets */
  uint64_t flushes, flush_bytes;        /* SSTables written by flushes */
  uint64_t compactions, compact_read_bytes, compact_write_bytes;
  uint64_t stalls, stall_micros;        /* writes that waited, and how long */
  uint64_t stall_timeouts;              /* of which gave up (UNAVAILABLE) */
  uint64_t wal_replayed_records, wal_dropped_bytes; /* at open */
  /* Opened without its missing commit log (tab_options.accept_lost_logs):
   * the writes only that log held are gone. */
  bool lost_log_accepted;
  uint64_t num_ssts, num_immutable, memtable_bytes; /* current state */
  uint64_t level_files[7];              /* SSTables per level (0..6) */
  bool compaction_due;                  /* a level is over its bound, or a
                                           file is read by reference */
  uint64_t last_seq;
  uint64_t read_compactions;            /* compactions asked for by reads
                                           (files read past too often) */
} tab_stats;

void tab_get_stats(tablet *t, tab_stats *out);

/* Checks the level invariant of the current files: within every level
 * below 0, files hold disjoint key ranges in key order. CORRUPTION naming
 * the two files otherwise (which would be a bug: a tablet checks this
 * when it opens and before it installs a compaction's result). */
mica_err *tab_check_levels(tablet *t);

#endif
