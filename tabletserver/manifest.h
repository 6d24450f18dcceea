/* manifest: the durable description of one tablet's files.
 *
 * A tablet's MANIFEST names everything needed to reopen it: its id and key
 * range, the assign_epoch of the owner that last wrote it, the live
 * SSTables (each with the key range this tablet may read from it, which is
 * how split daughters share their parent's files), the WAL segments still
 * holding unflushed writes, the segments already retired, the last
 * sequence number handed out and the next file number. A tablet that was
 * split also records the split (its daughters and the split key).
 *
 * Every change writes the whole state as a NEW file named by the
 * writer's epoch and a generation, MANIFEST-<epoch>-<gen>, with
 * env_write_file_atomic (POSIX: temp file, sync, rename, directory sync;
 * S3: one PUT), then removes the older names. Readers take the highest
 * (epoch, generation). No name is ever overwritten, so a fenced old owner
 * that writes late (an upload delayed in the network) can only add a name
 * of its older epoch, which no reader picks (docs/storage.md, the epoch
 * rule), and a crash at any instant leaves a complete newest manifest.
 * The file is small (a few hundred bytes per SSTable); a write costs one
 * listing, one small atomic write and the removal of the previous name.
 * The byte layout is in tabletserver/MANIFEST_FORMAT.md.
 *
 * Paths of SSTables are relative to the tablet's own directory: a bare
 * name ("sst-...sst") for the tablet's own files, "../<dir>/<name>" for a
 * file inherited from a split parent. Tablet directories are siblings, so
 * such a path stays valid when a daughter splits again.
 *
 * Thread-safety: a man_state is a plain value owned by one thread; the
 * functions hold no global state. */
#ifndef MICA_TABLETSERVER_MANIFEST_H
#define MICA_TABLETSERVER_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "common/env.h"
#include "common/err.h"

#define MAN_FILE_NAME "MANIFEST"
/* SSTables sit in levels 0 .. MAN_LEVELS - 1 (docs/engine.md, "Levels"). */
#define MAN_LEVELS 7
/* A manifest larger than this is not one we wrote. */
#define MAN_MAX_BYTES (64u << 20)

typedef enum man_tablet_state {
  MAN_LIVE = 0,        /* serving (or servable) */
  MAN_SPLITTING = 1,   /* split begun: daughters may be half-written */
  MAN_SPLIT = 2,       /* split done: daughters own the data; retired */
  MAN_MERGED = 3,      /* merged into left_id (tablet_merge.h); retired */
  MAN_DROPPED = 4      /* its table was dropped; retired, its files kept
                        * while a snapshot or a clone references them
                        * (tab_retire_dropped) */
} man_tablet_state;

/* One SSTable the tablet reads. */
typedef struct man_sst {
  char *path;        /* relative to the tablet directory; owned */
  uint64_t size;     /* file size in bytes, checked at open */
  /* The user-key range [lo, hi) this tablet reads from the file. An empty
   * `lo` means unbounded below; has_hi false means unbounded above. */
  buf lo, hi;
  bool has_hi;
  /* Its level, < MAN_LEVELS. A manifest of format version 1 has no
   * levels: every file is read back at level 0. */
  uint32_t level;
} man_sst;

/* One WAL segment, named wal_segment_name(epoch, number). */
typedef struct man_segment {
  uint64_t epoch, number;
} man_segment;

typedef struct man_state {
  uint64_t tablet_id;
  uint64_t epoch;      /* assign_epoch of the owner that wrote this */
  uint64_t last_seq;   /* >= every sequence number in the tablet's files */
  uint64_t next_file;  /* next number for files named with `epoch` */
  man_tablet_state state;
  buf start_key;       /* tablet range [start, end); empty start = -inf */
  buf end_key;
  bool has_end;        /* false: unbounded above */
  uint64_t parent_id;  /* tablet this one was split from; 0 if none */

  man_sst *ssts;       /* level 0 newest first, then each level by key */
  size_t n_ssts;
  man_segment *live;   /* segments with unflushed writes, oldest first */
  size_t n_live;
  man_segment *retired; /* retired segments whose files may still exist */
  size_t n_retired;

  /* When state != MAN_LIVE: the daughters and where they split; for
   * MAN_MERGED, left_id is the merged tablet, right_id the other input and
   * split_key is empty. */
  uint64_t left_id, right_id;
  buf split_key;

  /* The server commit log (clog.h) holding this tablet's unflushed
   * writes; log_name empty when there is none (the tablet uses its own
   * WAL segments, or everything is flushed and no owner logs to a shared
   * log). Replay reads <data-root>/logs/<log_name> from segment
   * log_first_segment on, taking the records of this tablet written under
   * log_epoch with sequence numbers above log_flushed_seq (everything up to
   * it is in the SSTables listed here). Written as format version 2. */
  buf log_name;
  uint64_t log_epoch, log_first_segment, log_flushed_seq;
} man_state;

/* Zeroes `m` (an empty state, no allocations). */
void man_init(man_state *m);
/* Frees everything `m` holds; `m` is empty afterwards. Accepts NULL. */
void man_clear(man_state *m);
/* Makes `dst` (which must be empty or initialized) a deep copy of `src`. */
void man_copy(man_state *dst, const man_state *src);

/* Appends an SST at level 0 (copies path and bounds; lo/hi NULL-data
 * slices mean unbounded) and returns it, valid until the next change to
 * m's SSTables; the caller may set its level. */
man_sst *man_add_sst(man_state *m, const char *path, uint64_t size, slice lo,
                     slice hi, bool has_hi);
void man_add_live(man_state *m, uint64_t epoch, uint64_t number);
void man_add_retired(man_state *m, uint64_t epoch, uint64_t number);
/* Names the commit log (see the fields); an empty name clears it. */
void man_set_log(man_state *m, slice name, uint64_t epoch,
                 uint64_t first_segment, uint64_t flushed_seq);

/* Whether writes of the tablet may exist only in a log: it lists a live
 * WAL segment or names a commit log (a cleanly closed tablet does
 * neither: its close clears the log's name). */
bool man_holds_writes(const man_state *m);

/* The encoded form (MANIFEST_FORMAT.md, version 2), appended to `out`. */
void man_encode(const man_state *m, buf *out);
/* Decodes `data` into `m` (initialized by the caller and cleared on
 * error); reads format versions 1 (no levels) and 2. CORRUPTION naming
 * `what` (the file) and the byte offset when the bytes are not a manifest
 * this code wrote. */
mica_err *man_decode(slice data, const char *what, man_state *m);

/* Reads the newest manifest of `dir`: the highest (epoch, generation)
 * name, or a plain MANIFEST when no name carries them. NOT_FOUND when
 * there is none. CORRUPTION when the file's epoch differs from its name's. */
mica_err *man_read(env *e, const char *dir, man_state *m);
/* The path of the newest manifest in `dir` (for tools and tests); caller
 * frees. NOT_FOUND when there is none. */
mica_err *man_newest_path(env *e, const char *dir, char **path);
/* True when `dir` holds a manifest (of any name above). */
bool man_exists(env *e, const char *dir);
/* Writes `m` as the next generation of epoch m->epoch in `dir` (1 when
 * the newest manifest there has an older epoch), durably and never over
 * an existing name, then removes the older names. STALE_EPOCH when `dir`
 * already holds a manifest of a newer epoch. */
mica_err *man_write(env *e, const char *dir, const man_state *m);
/* man_write into a directory the caller has just seen empty (a split
 * daughter's, on storage where a directory appears with its first file):
 * generation 1 of epoch m->epoch, without listing `dir` first. Never over
 * an existing name (ALREADY_EXISTS when another writer got there first
 * with other bytes). */
mica_err *man_write_first(env *e, const char *dir, const man_state *m);
/* "MANIFEST-<epoch>-<gen>" (20 digits each, gen >= 1) -> true. */
bool man_parse_name(const char *name, uint64_t *epoch, uint64_t *gen);
/* True for any manifest name (plain MANIFEST included). */
bool man_is_name(const char *name);

#endif
