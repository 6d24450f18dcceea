/* wal: a tablet's write-ahead log, one segment file at a time.
 *
 * A tablet's log is a sequence of segment files under its directory. The
 * tablet decides when to start a new segment (at each memtable switch, so a
 * flushed memtable's segments can be retired) and names the files with
 * wal_segment_name(), which puts the tablet's assign_epoch in the name
 * (docs/design.md, "Leases and fencing": a new owner never appends to a
 * segment written under an older epoch; it replays and retires them). This module writes and reads
 * ONE segment; the byte format is in tabletserver/WAL_FORMAT.md. The
 * server's shared commit log (clog.h) writes its segments with this module
 * too (header version 2).
 *
 * Each segment starts with a header record (magic, format version,
 * assign_epoch, segment number), followed by data records whose payloads
 * are opaque to the WAL (the tablet stores encoded wbatches).
 *
 * ---- Writing: group commit ----
 *
 * Many threads append at once. Each record is framed and copied into the
 * current *group*; one of the waiting threads (the leader) takes the whole
 * group, writes it with one env_append and, if any record in it asked for
 * sync, one env_sync (fdatasync), while later records gather into the next
 * group. There is no background thread and no buffer while idle: a group's
 * buffer is taken by its first record from a small server-wide free list
 * and given back once written, so a server can hold thousands of idle
 * tablets cheaply.
 *
 * Preallocation: before writing a group past the allocated end of the
 * file, the leader preallocates (env_preallocate, fallocate(2)) a chunk of
 * 1 to 16 MiB, about the size the segment already has. Appends then
 * overwrite zeros inside the file instead of growing it, so a group's
 * fdatasync need not journal a new file size and block allocation. The
 * file is therefore longer than its records (up to 16 MiB of zeros after
 * them, also after a clean close): the reader treats a zero tail as a
 * clean end and reports it apart from torn bytes (wal_reader_zero_tail).
 * If preallocation fails the segment is appended to as before.
 *
 * Appending is split in two so that the tablet can fix the order of records
 * under its own lock without holding that lock across the disk write:
 *
 *   lock(tablet); seq = next_seq; next_seq += count; wbatch_set_seq(b, seq);
 *   wal_add(w, wbatch_data(b), sync, &ticket); unlock(tablet);
 *   err = wal_commit(w, ticket);        // durable when it returns NULL
 *
 * wal_add fixes the record's position in the file (records appear in the
 * order of their wal_add calls). wal_append does both steps for callers
 * that need no such ordering.
 *
 * Durability contract: when wal_commit returns NULL for a record added with
 * sync=true, the record and every record added before it are on stable
 * storage (fdatasync returned). With sync=false it returns once the record
 * was handed to the OS (it survives a process crash, not a power loss,
 * until a later sync).
 *
 * Errors are sticky: if the write or the sync of a group fails, the file's
 * contents are unknown, so every writer of that group and of every later
 * group gets the error (IO_ERROR / RESOURCE_EXHAUSTED, naming the file), and
 * every later wal_add fails at once with it. The tablet must then stop
 * taking writes on this segment (reopen replays whatever is intact).
 *
 * ---- Reading: replay ----
 *
 * wal_reader yields data record payloads in file order. A crash can leave
 * the end of the segment torn: a partial header, a partial payload, a
 * record whose checksum fails, or a zero-filled tail. Such a TAIL is not an
 * error: the reader stops there and reports how many bytes it dropped:
 * torn bytes (through the last non-zero byte) as "dropped", and the zeros
 * after them (preallocated space, or space a crash left zero-filled) as
 * the "zero tail", so a cleanly ended preallocated segment drops nothing.
 * A damaged record that is FOLLOWED by a valid record is corruption in the
 * middle of the log, where acknowledged writes may be lost, and is reported
 * as CORRUPTION naming the file and the offset of the damaged record.
 *
 * How the two are told apart: on the first record that fails to parse at
 * offset X, the reader scans every byte offset after X for a frame that
 * passes all checks (known type, length within the file and the limit,
 * CRC32C over length, type and payload). Finding one means valid data lies
 * beyond the damage: CORRUPTION at X. Finding none means everything from X
 * on was never made durable as a whole: a torn tail of (size - X) bytes.
 * The CRC covers the length, so a damaged length field cannot make the
 * reader skip or misframe silently. A payload that itself contains a
 * byte-exact valid WAL frame can make a torn tail look like middle
 * corruption; that errs on the side of refusing to open, never of losing
 * data silently.
 *
 * Invariants: records appear in the file in the order of their wal_add
 * calls, as whole frames; groups are written one at a time in ticket order;
 * a writer that has failed never writes again; a reader never returns a
 * payload whose checksum failed.
 *
 * Thread-safety: wal_add, wal_commit, wal_append, wal_sync, wal_writer_size
 * and wal_writer_error may be called from any number of threads at once.
 * wal_writer_open and wal_writer_close must not race with any other call on
 * the same writer. A wal_reader is used by one thread at a time. */
#ifndef MICA_TABLETSERVER_WAL_H
#define MICA_TABLETSERVER_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h" /* before env.h, which uses slice and buf */
#include "common/env.h"
#include "common/err.h"

/* Largest data record payload: a 32 MiB batch plus its encoding overhead
 * with room to spare. wal_add rejects larger payloads (INVALID_ARGUMENT);
 * the reader treats a larger length field as damage. */
#define WAL_MAX_PAYLOAD (64u << 20)

/* Bytes of framing before each payload: masked CRC32C (4), length (4),
 * type (1). */
#define WAL_FRAME_HEADER 9

/* Appends one frame to `b`: masked CRC32C of (length, type, payload),
 * length, type, payload. Types: 1 the segment header, 2 a data record
 * (WAL_FORMAT.md). The commit log's object mode builds its group objects
 * with it. */
void wal_frame_append(buf *b, uint8_t type, slice payload);

/* The header's format version: 1 for a tablet's own segment, 2 for a
 * segment of a server's shared commit log (clog.h; its data payloads are
 * tagged with the tablet, COMMITLOG_FORMAT.md). Frames are the same. */
#define WAL_VERSION_TABLET 1u
#define WAL_VERSION_COMMITLOG 2u

/* ---- segment file names ---- */

/* Writes "wal-<assign_epoch>-<number>.log" into `out` (size >= 64), both
 * numbers as 20 zero-padded decimal digits so that names sort by epoch
 * then number. Returns `out`. */
char *wal_segment_name(char *out, size_t size, uint64_t assign_epoch,
                       uint64_t number);

/* Parses a name written by wal_segment_name (a bare file name, not a
 * path). False for anything else. */
bool wal_parse_segment_name(const char *name, uint64_t *assign_epoch,
                            uint64_t *number);

/* ---- writer ---- */

typedef struct wal_writer wal_writer;

/* Creates the segment `path` (ALREADY_EXISTS if it exists: segments are
 * never reopened for append), writes the header record, and makes the
 * header and the directory entry durable before returning. Caller closes
 * with wal_writer_close(). `e` must outlive the writer. */
mica_err *wal_writer_open(env *e, const char *path, uint64_t assign_epoch,
                          uint64_t number, wal_writer **out);

/* wal_writer_open with the header's version given (WAL_VERSION_TABLET or
 * WAL_VERSION_COMMITLOG, else INVALID_ARGUMENT); for a commit log segment
 * `assign_epoch` is 0. */
mica_err *wal_writer_open_version(env *e, const char *path, uint32_t version,
                                  uint64_t assign_epoch, uint64_t number,
                                  wal_writer **out);

/* Frames and copies `payload` into the current group and returns its
 * ticket. Fast (no I/O, one short mutex hold); fixes the record's position
 * in the file. Fails with the sticky error if the writer has failed, or
 * INVALID_ARGUMENT if payload.len > WAL_MAX_PAYLOAD (then nothing is
 * added). Pass the ticket to wal_commit to wait for the record; a record
 * whose ticket is never committed is still written by the next group's
 * leader or by wal_sync / wal_writer_close. */
mica_err *wal_add(wal_writer *w, slice payload, bool sync, uint64_t *ticket);

/* Waits until the record of `ticket` has been written (and synced if it was
 * added with sync=true), leading the write of its group if no other thread
 * is writing. Returns NULL on success, else the group's (sticky) error;
 * caller frees it. */
mica_err *wal_commit(wal_writer *w, uint64_t ticket);

/* wal_add followed by wal_commit. */
mica_err *wal_append(wal_writer *w, slice payload, bool sync);

/* Makes every record added so far durable: writes any pending group, then
 * fdatasync, unless everything written is already synced. */
mica_err *wal_sync(wal_writer *w);

/* Totals over every writer of this process since it started (the tablet
 * server's /metrics): groups written, fdatasyncs of groups, and the time
 * spent in them. Read with relaxed atomics: each figure is exact, the
 * three are not one snapshot. */
typedef struct wal_sums {
  uint64_t groups, syncs, sync_micros;
} wal_sums;
void wal_get_sums(wal_sums *out);

/* Bytes in the segment file including records added but not yet written. */
uint64_t wal_writer_size(wal_writer *w);

/* A copy of the sticky error, or NULL while the writer is healthy. Caller
 * frees with err_free(). */
mica_err *wal_writer_error(wal_writer *w);

/* Writes any records added but not yet written and syncs whatever is not
 * yet durable (so a cleanly closed segment is wholly durable), then closes
 * the file. Returns the first error (the sticky one if the writer had failed).
 * Frees `w` in every case; accepts NULL. */
mica_err *wal_writer_close(wal_writer *w);

/* ---- reader ---- */

typedef struct wal_reader wal_reader;

/* Opens segment `path` for replay and reads its header record. A segment
 * that is empty or whose header is torn reads as having no records (the
 * writer crashed while creating it): wal_reader_next reports the end at
 * once. A complete header with the wrong magic or an unknown version is
 * CORRUPTION. Caller closes with wal_reader_close(). */
mica_err *wal_reader_open(env *e, const char *path, wal_reader **out);

/* Reads the next data record. On success sets *payload (valid until the
 * next call on `r`) and *eof = false; at the end of the valid records sets
 * *eof = true (see wal_reader_dropped). Returns CORRUPTION for damage in
 * the middle, or the I/O error; after any error further calls return it
 * again. */
mica_err *wal_reader_next(wal_reader *r, slice *payload, bool *eof);

/* File offset of the frame of the record last returned by
 * wal_reader_next (for error messages about its payload). */
uint64_t wal_reader_record_offset(const wal_reader *r);

/* After the end: bytes of torn tail ignored, from the end of the valid
 * records through the last non-zero byte of the file (0 for a clean end);
 * the zero bytes after those (preallocated or zero-filled space; 0 if the
 * file ends in a non-zero byte); and the offset where the valid records
 * end (where the tail starts). valid_end + dropped + zero_tail is the
 * file size. A torn record whose last bytes happen to be zero counts those
 * bytes in the zero tail. */
uint64_t wal_reader_dropped(const wal_reader *r);
uint64_t wal_reader_zero_tail(const wal_reader *r);
uint64_t wal_reader_valid_end(const wal_reader *r);

/* From the header record; 0 when the segment had no complete header. */
uint32_t wal_reader_version(const wal_reader *r);
uint64_t wal_reader_epoch(const wal_reader *r);
uint64_t wal_reader_number(const wal_reader *r);

const char *wal_reader_path(const wal_reader *r);
void wal_reader_close(wal_reader *r); /* accepts NULL */

/* ---- replay in one call ---- */

typedef struct wal_replay_stats {
  uint64_t records;       /* data records passed to the callback */
  uint64_t payload_bytes; /* their total payload size */
  uint64_t valid_end;     /* file offset where valid records end */
  uint64_t dropped;       /* bytes of torn tail ignored */
  uint64_t zero_tail;     /* zero bytes after them (preallocated space) */
  uint64_t epoch, number; /* from the header (0 if none) */
} wal_replay_stats;

/* Called for each data record in order; `payload` is valid during the call
 * only; `offset` is the record's frame offset in the file. Returning
 * non-NULL stops the replay and is passed back (wrap it with the path and
 * offset: the callback knows what the payload failed to be). */
typedef mica_err *(*wal_record_fn)(void *arg, slice payload, uint64_t offset);

/* Opens `path`, feeds every data record to `fn`, closes. A tablet's own
 * segments only: a commit log segment (version 2) is CORRUPTION. `stats` (may be
 * NULL) is filled as far as the replay got, also on error. */
mica_err *wal_replay(env *e, const char *path, wal_record_fn fn, void *arg,
                     wal_replay_stats *stats);

#endif
