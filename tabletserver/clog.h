/* clog: one commit log shared by every tablet of a tablet server
 * (Bigtable's design; docs/engine.md, "One commit log per server").
 *
 * A server opens one clog per process incarnation, in its own directory
 * under the shared data root, <data-root>/logs/<name>, where every other
 * server can read it. Every tablet of the server appends its write
 * batches to it, each record tagged with the tablet id and the tablet's
 * assign_epoch, so that one group commit (one fdatasync) covers writes to
 * any number of tablets. The log is a sequence of segment files in the
 * WAL's framing (wal.h, header version WAL_VERSION_COMMITLOG); the byte
 * format is in tabletserver/COMMITLOG_FORMAT.md.
 *
 * ---- Recovery ----
 *
 * A tablet's MANIFEST names the log its unflushed writes are in (the log's
 * name, the epoch the writes carry, the first segment that can hold them,
 * and the sequence number below which everything is in SSTables). A new
 * owner calls clog_replay with those: it reads only that log's segments
 * from the first one on, skips a closed segment whose index (a small
 * sidecar written when the segment is closed) does not list the tablet
 * under that epoch, and passes only the records of that tablet and epoch
 * above the flushed sequence number. So several new owners of a dead
 * server's tablets each read only what they need, at the same time, and
 * none writes anything into the dead server's log. On S3 (object mode),
 * one owner's replays of one log fetch each object once between them
 * (below, "one read of a log").
 *
 * ---- Fencing ----
 *
 * Records carry the epoch they were written under, and a replay passes
 * only the epoch the manifest names. A new owner takes a tablet over by
 * flushing what it replayed and writing a manifest that names ITS log and
 * ITS epoch: from then on nothing reads the old owner's log for that
 * tablet, so a fenced old owner's late appends are never replayed.
 *
 * ---- Deleting segments ----
 *
 * Each segment remembers, per tablet, the highest sequence number it was
 * given. A tablet tells the log (clog_flushed) when a manifest write made
 * its SSTables cover everything up to a sequence number. A closed segment
 * is deleted once every tablet with records in it has flushed past them.
 * A tablet that never flushes would pin the log forever, so when the live
 * segments pass clog_options.max_bytes, every registered tablet that pins
 * the oldest segment is asked to flush (its clog_flush_fn). A tablet that
 * was never registered, or unregistered without flushing (a failed or
 * fenced one), pins its segments until the process ends: its writes may
 * exist nowhere else. A log's directory is deleted by clog_collect_dead
 * (any server, any time) once its server is gone and no manifest names it.
 *
 * Durability contract: as wal.h's, across tablets. When clog_commit
 * returns NULL for a record added with sync=true, that record and every
 * record added to this log before it (whatever its tablet or segment) are
 * on stable storage. Rolling to a new segment syncs the old one first.
 *
 * Thread-safety: every call may be made from any number of threads,
 * except clog_close, which must not race with any other call. Lock order:
 * a tablet's mu -> clog's mutex -> the WAL writer's mutex and the memory
 * pool's lock; the flush callbacks are called with the clog's mutex held
 * and must take no tablet lock (tb_member_request_flush takes none). */
#ifndef MICA_TABLETSERVER_CLOG_H
#define MICA_TABLETSERVER_CLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "common/env.h"
#include "common/err.h"

/* Bytes of tag before the batch in each data record: tablet id, epoch. */
#define CLOG_RECORD_TAG 16

typedef struct clog clog;

typedef struct clog_options {
  /* Roll to a new segment once the active one holds this many bytes.
   * Default 64 MiB. */
  uint64_t segment_bytes;
  /* When the live segments hold more than this, the tablets pinning the
   * oldest one are asked to flush. Default 512 MiB. */
  uint64_t max_bytes;
  /* ---- object mode (an env that cannot append in place: S3) ----
   * Each group commit is one object PUT. A group is closed batch_us after
   * its first record was added, or at once when it holds batch_bytes; the
   * PUTs go one at a time, in order. Defaults 10 ms and 4 MiB. */
  uint64_t batch_us;
  uint64_t batch_bytes;
  /* When more objects than this are live, the tablets pinning the oldest
   * are asked to flush (bounds what a recovery reads). Default 2048. */
  uint64_t max_objects;
  /* The log's marker objects (LOG-<wall µs>) are renewed by a take-over
   * when older than half of this; clog_collect_dead deletes a marker
   * older than this once no manifest needs the log. Default 1 hour;
   * clocks of the servers must agree to well within half of it. */
  uint64_t marker_horizon_us;
} clog_options;

/* The default marker horizon (clog_options.marker_horizon_us). */
#define CLOG_MARKER_HORIZON_US (3600ull * 1000000ull)

void clog_options_init(clog_options *o);

/* "<logs_root>/<name>". Caller frees. */
char *clog_dir_path(const char *logs_root, const char *name);

/* "<parent of tablets_dir>/logs": where the logs live next to the tablets
 * (<data-root>/tablets and <data-root>/logs). Caller frees. */
char *clog_logs_root(const char *tablets_dir);

/* Opens a new log `name` in `logs_root` (created if missing) and starts
 * its first segment, holding an env_lock on its LOCK file until
 * clog_close. ALREADY_EXISTS if a directory of that name exists: a name
 * is one incarnation and is never reused. `name` must be a
 * bare file name. `e` must outlive the log. Caller closes with
 * clog_close(). */
mica_err *clog_open(env *e, const char *logs_root, const char *name,
                    const clog_options *o, clog **out);

/* The log's name (valid until clog_close). */
const char *clog_name(const clog *l);

/* Whether the log writes one object per group commit (its env cannot
 * append in place: S3) rather than segment files. */
bool clog_objects(const clog *l);

/* What a take-over names in a manifest: the number every record added
 * from now on is at or after (clog_current_segment). In object mode it
 * first renews the log's marker object when it is older than half the
 * marker horizon, so the collector of dead logs never removes the marker
 * of a log a manifest is about to name (docs/storage.md). */
mica_err *clog_anchor(clog *l, uint64_t *first_segment);

/* The first segment (object) a replay of `tablet_id` under `epoch` after
 * sequence number `flushed_seq` must read, for a flush's manifest: in
 * object mode the oldest live object holding a record of the tablet
 * above that number, else the current one. In segment mode `current`
 * is returned unchanged (segments are few and indexed). */
uint64_t clog_replay_floor(clog *l, uint64_t tablet_id, uint64_t epoch,
                           uint64_t flushed_seq, uint64_t current);

/* The number of the segment records are appended to now: every record
 * added after this call lands in it or a later one. */
uint64_t clog_current_segment(clog *l);

/* Where a record waits to be committed. */
typedef struct clog_ticket {
  struct clog_seg *seg;
  uint64_t t;
} clog_ticket;

/* Tags `batch` (an encoded wbatch with its sequence number set) with
 * `tablet_id` and `epoch` and adds it to the current group, as wal_add:
 * fast, fixes its position in the log. Rolls to a new segment first when
 * the active one is full or has failed. Errors: the segment's sticky
 * error, INVALID_ARGUMENT for an oversized record or a batch shorter than
 * its header, or the error of opening a new segment. */
mica_err *clog_add(clog *l, uint64_t tablet_id, uint64_t epoch, slice batch,
                   bool sync, clog_ticket *tk);

/* clog_add for a group of `n` batches of one tablet, added in order as
 * consecutive records of one segment under one ticket: committing it
 * commits them all. On an error some of them may have been added (and
 * may reach the file); none is acknowledged. */
mica_err *clog_add_batches(clog *l, uint64_t tablet_id, uint64_t epoch,
                           const slice *batches, size_t n, bool sync,
                           clog_ticket *tk);

/* Waits until the record of `tk` is written (and synced if asked), as
 * wal_commit. Every ticket from clog_add must be committed exactly once.
 * Caller frees the returned error. */
mica_err *clog_commit(clog *l, clog_ticket *tk);

/* Makes every record added so far durable. */
mica_err *clog_sync(clog *l);

/* Asks `fn(arg)` to flush tablet `tablet_id` when the log needs its
 * segments back. Replaces an earlier registration of the same id. */
typedef void (*clog_flush_fn)(void *arg);
void clog_register(clog *l, uint64_t tablet_id, clog_flush_fn fn, void *arg);
/* Forgets the registration of `tablet_id` made with `arg` (another
 * instance's stays); its records stay pinned unless flushed. */
void clog_unregister(clog *l, uint64_t tablet_id, void *arg);

/* Tablet `tablet_id`'s SSTables, as its durable manifest lists them, hold
 * every write up to `seq`. Deletes the closed segments nothing pins. */
void clog_flushed(clog *l, uint64_t tablet_id, uint64_t seq);

typedef struct clog_stats {
  uint64_t segments;        /* live segment files, the active one included */
  uint64_t bytes;           /* their bytes (records, not preallocation) */
  uint64_t segments_deleted;
  uint64_t flush_requests;  /* forced flushes asked for by the size bound */
  /* Object mode: group-commit objects PUT, failed PUTs, their bytes and
   * the time spent in them, objects deleted, marker PUTs. */
  uint64_t puts, put_errors, put_bytes, put_micros, markers;
} clog_stats;
void clog_get_stats(clog *l, clog_stats *out);

/* Syncs and closes the active segment, deletes every segment nothing pins
 * and releases the log's lock; the directory (empty after a clean
 * shutdown) is left to clog_collect_dead. Returns the first error. Frees
 * `l`; accepts NULL. */
mica_err *clog_close(clog *l);

/* ---- collecting dead logs ---- */

/* The file in a log's directory that its server holds locked
 * (env_lock) while the log lives. */
#define CLOG_LOCK_NAME "LOCK"
/* A log directory is made as "<name>.new" and renamed once locked. */
#define CLOG_NEW_SUFFIX ".new"

/* Deletes the log directories under <parent of tablets_dir>/logs whose
 * server is gone (their LOCK is free: an env_lock dies with its process,
 * kill -9 included) and that no tablet's manifest under `tablets_dir`
 * needs any more (none names the log with writes above its flushed
 * sequence number: every tablet logged there was taken over or had
 * flushed). Live logs and logs still needed stay. Safe to run from any
 * server at any time; sets *removed (may be NULL) to the logs deleted.
 * The data root must be on a file system whose advisory locks reach every
 * server (a local one, or NFS with working locks).
 *
 * Object mode (S3; no locks): in every log, the objects that a LIST made
 * before reading the manifests showed and that lie below every needing
 * manifest's first segment (all of them when no manifest needs the log)
 * are deleted, and so are its marker objects older than the marker
 * horizon when no manifest needs it; *removed counts logs left with
 * nothing. Either way the manifests are read once per call, whatever the
 * number of logs. */
mica_err *clog_collect_dead(env *e, const char *tablets_dir,
                            uint64_t *removed);
/* clog_collect_dead with the marker horizon given (tests). */
mica_err *clog_collect_dead_horizon(env *e, const char *tablets_dir,
                                    uint64_t marker_horizon_us,
                                    uint64_t *removed);

/* ---- recovery ---- */

typedef struct clog_replay_stats {
  uint64_t segments_read;    /* segments scanned record by record */
  uint64_t segments_skipped; /* skipped thanks to their index */
  uint64_t records_seen;     /* data records read, every tablet */
  uint64_t records;          /* passed to the callback */
  uint64_t dropped;          /* torn-tail bytes ignored */
  uint64_t objects_shared;   /* object mode: objects of segments_read taken
                                from another replay's read, not fetched */
} clog_replay_stats;

/* Called for each record of the tablet, in log order; `batch` (the
 * encoded wbatch) is valid during the call only. Returning non-NULL stops
 * the replay and is passed back. */
typedef mica_err *(*clog_record_fn)(void *arg, slice batch, const char *path,
                                    uint64_t offset);

/* Reads the log in `dir` from segment `first_segment` on and passes every
 * record of `tablet_id` written under `epoch` whose last sequence number
 * is above `after_seq`. Torn tails are dropped (every segment may end in
 * one: each was the active segment once); damage followed by a valid
 * record is CORRUPTION naming the file and offset, as is a malformed
 * record. A missing directory is NOT_FOUND. `st` may be NULL.
 *
 * In object mode (the env cannot append in place) the log is its group
 * objects: no torn tails (a PUT is atomic), so any damage is CORRUPTION,
 * and a log without a marker object is NOT_FOUND. In both modes a segment
 * or object that was listed but is gone when read is ABORTED: its
 * writer deleted it after a manifest write, so the caller rereads the
 * manifest (tab_open does) and reports CORRUPTION only if it had not
 * changed. In object mode concurrent replays of one log share its reads
 * (below). */
mica_err *clog_replay(env *e, const char *dir, uint64_t tablet_id,
                      uint64_t epoch, uint64_t first_segment,
                      uint64_t after_seq, clog_record_fn fn, void *arg,
                      clog_replay_stats *st);

/* ---- one read of a log for every tablet recovering from it ----
 *
 * In object mode, the replays of one log in a process (a new owner
 * opening a dead server's tablets) share its objects: each object is
 * fetched (one GET) and checked once, kept in memory while any replay of
 * the log runs (and for the linger after), and every replay takes the
 * records of its own tablet from the kept copy. Each replay still lists
 * the log itself and takes only the objects its listing shows (objects
 * are never rewritten: a kept copy is what a GET would return), so it
 * passes exactly the records it would pass alone. The kept objects of a
 * log stay for a linger after its last replay ends (a tablet server opens
 * tablets one at a time, under its admin lock, so the opens of one dead
 * server's tablets follow each other rather than overlap), then a
 * background thread drops them. Objects that would take the
 * process's kept bytes past the limit are not kept: every replay that
 * needs one reads it on its own, as without sharing. Segment mode (local
 * files, read through the page cache and skipped by index) does not
 * share. */

/* The default limit of kept bytes, over every log of the process:
 * objects and their frame tables. The environment variable
 * MICA_CLOG_REPLAY_CACHE_MB, read once, replaces it (in MiB; 0 turns
 * sharing off); clog_replay_cache_set_limit replaces both. */
#define CLOG_REPLAY_CACHE_BYTES ((uint64_t)256 << 20)

/* Sets the limit (0: no sharing, every replay reads every object it
 * needs itself) and returns the previous one. Objects kept already stay
 * until their log's replays end. */
uint64_t clog_replay_cache_set_limit(uint64_t bytes);

/* How long a log's kept objects stay after its last replay ended. An
 * object is never rewritten in a real log; a test that rewrites one in
 * place (to damage it) and replays again sets this to 0. */
#define CLOG_REPLAY_CACHE_LINGER_US (10ull * 1000000ull)
/* Sets the linger and returns the previous one. */
uint64_t clog_replay_cache_set_linger(uint64_t us);

typedef struct clog_replay_cache_stats {
  uint64_t gets;       /* objects fetched by replays (one GET each) */
  uint64_t shared;     /* objects a replay took from the kept copies */
  uint64_t waits;      /* times a replay waited for another's GET */
  uint64_t refused;    /* objects not kept: over the limit */
  uint64_t held_bytes; /* kept now */
  uint64_t replays;    /* object-mode replays running now */
  uint64_t logs;       /* logs with objects kept (running or lingering) */
  uint64_t lingering;  /* of those, logs no replay uses now */
} clog_replay_cache_stats;
void clog_replay_cache_get_stats(clog_replay_cache_stats *out);

/* Segment and index file names ("clog-<20 digits>.log" / ".idx"). */
char *clog_segment_name(char *out, size_t size, uint64_t number);
bool clog_parse_segment_name(const char *name, uint64_t *number);
/* A log's marker object in object mode: "LOG-<20 digits of wall µs>". */
#define CLOG_MARKER_PREFIX "LOG-"
bool clog_parse_marker_name(const char *name, uint64_t *wall_us);
/* Whether `name` is a file a log directory holds: a segment (or group
 * object), a segment's index, CLOG_LOCK_NAME or a marker (what --wal-dir
 * takes off an S3 root). */
bool clog_is_file_name(const char *name);

#endif
