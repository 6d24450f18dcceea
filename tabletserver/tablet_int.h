/* tablet_int: the engine's private view of a tablet, shared by the files
 * that implement tablet.h (nothing else includes it). One concern per file:
 *
 *   tablet.c          the public calls: options, the write path (group
 *                     commit, stalls), reads at snapshots, flush and
 *                     compaction on request, information, close
 *   tablet_files.c    the file set: SSTable handles, versions, manifest
 *                     writes with the fencing check
 *   tablet_iter.c     the iterators: range restriction, the merge of a
 *                     version, the user-key view at a snapshot, scan order
 *   tablet_compact.c  writing SSTables: flush, memtable rotation,
 *                     the background jobs
 *   tablet_level.c    the level structure: key spans of files, the
 *                     level invariant, picking and shaping compactions
 *   tablet_open.c     open and recovery (replay, cleanup, fencing) and
 *                     freeing a tablet
 *   tablet_split.c    split by reference and the middle key
 *   tablet_gc.c       garbage collection of retired tablets' files
 *
 * Functions shared between these files are prefixed tb_; everything else
 * is static in its file. See tablet.h and docs/engine.md for the design.
 *
 * The pieces and the locks that guard them:
 *
 *   flush_mu    one flush at a time (background job, tab_flush, close)
 *   compact_mu  one compaction at a time
 *   man_mu      the durable state: t->man and the WAL segment set. Every
 *               change to the file set is "compute under mu, write the
 *               manifest with mu released, install under mu", all inside
 *               man_mu, so what was written is what gets installed.
 *   mu          the in-memory state: current version, sequence numbers,
 *               the writer queue, flags. Held only briefly: no reads,
 *               writes or syncs happen under it (dropping the last
 *               reference to an old version may unlink obsolete files).
 *
 * Lock order: flush_mu / compact_mu -> man_mu -> mu. The server-wide
 * pool's member lock may call our active_bytes / request_flush callbacks,
 * which take no tablet lock.
 *
 * The write path is LevelDB's: writers queue under mu; the writer at the
 * head (the leader) takes a group of queued batches, gives them their
 * sequence numbers, adds them to the WAL, and with mu released waits for
 * the WAL (one write and, if any asked for it, one fdatasync for the whole
 * group), inserts them into the memtable (the leader is the memtable's
 * only writer), then publishes the group's last sequence number and wakes
 * each member. A reader never sees a write before it is durable, and a
 * writer never returns before its write is visible. While a leader is
 * outside mu (t->writing), nothing else may switch the memtable or the
 * WAL segment. */
#ifndef MICA_TABLETSERVER_TABLET_INT_H
#define MICA_TABLETSERVER_TABLET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cache.h"
#include "common/ikey.h"
#include "common/iter.h"
#include "tabletserver/manifest.h"
#include "tabletserver/memtable.h"
#include "tabletserver/tablet.h"
#include "tabletserver/wal.h"

#define container_of(p, type, field) \
  ((type *)((char *)(p) - offsetof(type, field)))

/* ------------------------------------------------------------------ */
/* Key ranges. A range is [lo, hi): lo.len == 0 means unbounded below,
 * has_hi false unbounded above. */

static inline bool in_range(slice k, slice lo, slice hi, bool has_hi) {
  if (lo.len > 0 && slice_cmp(k, lo) < 0) return false;
  if (has_hi && slice_cmp(k, hi) >= 0) return false;
  return true;
}

/* ------------------------------------------------------------------ */
/* SSTable handles, shared by the versions that list them               */

typedef struct tfile {
  atomic_int refs;
  env *e;
  char *rel;   /* path as the manifest has it */
  char *path;  /* full path */
  bool own;    /* in this tablet's directory, deletable by it */
  /* Listed in a snapshot (the tablet's SHARED file): never deleted by
   * the tablet, only by the collector (tablet_snap.c). */
  atomic_bool pinned;
  atomic_bool obsolete; /* no longer in the current version */
  sst_reader *r;
  uint64_t size;
  buf lo, hi;  /* read range */
  bool has_hi;
  bool restrict_reads; /* the file holds keys outside [lo, hi) */
  uint64_t est_bytes;  /* logical (uncompressed) data bytes inside [lo, hi) */
  uint64_t est_keys;
  /* The user keys this tablet can find in the file: from klo (inclusive)
   * to khi, inclusive, or exclusive when khi_excl (the read range's end
   * cuts the file). no_keys: the read range holds none of the file's
   * keys. Levels >= 1 keep these spans disjoint (tablet_level.c). */
  buf klo, khi;
  bool khi_excl;
  bool no_keys;
  /* Read-triggered compaction (LevelDB's allowed_seeks; tablet_level.c):
   * reads that looked into this file and then had to look into another
   * for the same key each take one; when none are left, read_due asks
   * for the file to be compacted into the level below. */
  atomic_int seeks_left;
  atomic_bool read_due;
} tfile;

static inline void seek_key(buf *b, slice user, uint64_t seq, uint8_t kind) {
  buf_clear(b);
  ikey_append(b, user, seq, kind);
}

/* ------------------------------------------------------------------ */
/* Versions                                                            */

/* Levels of SSTables (docs/engine.md, "Levels"): level 0 holds flushed
 * memtables, newest first, whose key spans may overlap; each level >= 1
 * holds files with disjoint key spans, sorted by key, and for any user
 * key holds older data than every level above it. */
#define TB_LEVELS MAN_LEVELS

typedef struct version {
  atomic_int refs;
  memtable *mem;     /* active */
  memtable **imm;    /* immutable, newest first */
  size_t n_imm;
  /* Level 0 newest first, then level 1 by key, level 2 by key, ...: for
   * any user key, newest data first. Level L is files[lvl[L]] up to
   * files[lvl[L + 1]]. */
  tfile **files;
  size_t n_files;
  size_t lvl[TB_LEVELS + 1];
} version;

static inline size_t v_level_count(const version *v, int level) {
  return v->lvl[level + 1] - v->lvl[level];
}

/* The level of files[i]. */
static inline int v_file_level(const version *v, size_t i) {
  int l = 0;
  while (i >= v->lvl[l + 1]) l++;
  return l;
}

/* ------------------------------------------------------------------ */
/* The tablet                                                          */

/* An immutable memtable waiting for flush, with the WAL segment that holds
 * its writes and the bytes it counts against the server's budget. */
typedef struct imm_entry {
  memtable *mem;
  uint64_t segment;  /* own WAL; 0 with a shared commit log */
  uint64_t last_seq; /* its newest write (shared commit log) */
  size_t charged;
} imm_entry;

/* A queued writer; lives on the writer's stack. */
typedef struct wnode {
  wbatch *b;
  bool sync;
  bool done;
  mica_err *err;       /* its outcome once done */
  pthread_cond_t cv;   /* signalled when done or when it became the head */
  struct wnode *next;
} wnode;

struct tablet {
  res_pool *res;
  env *e;
  char *dir;
  char *tablets_dir; /* parent directory of dir */
  char *dir_name;    /* last component of dir */
  uint64_t id, epoch;
  buf start, end;    /* range; end.len == 0: unbounded */
  bool has_end;
  tab_options o;

  pthread_mutex_t flush_mu, compact_mu, man_mu, mu;
  pthread_cond_t cv; /* with mu: versions, leader done, rotation, closing */

  /* Guarded by man_mu (written), mu (read by info calls): */
  man_state man;

  /* Guarded by mu: */
  version *cur;
  imm_entry *imms; /* oldest first; parallel to cur->imm reversed */
  size_t n_imm;
  wal_writer *wal;
  uint64_t wal_number;
  /* The server's commit log (t->o.log, set for the tablet's life): when
   * not NULL, writes go there and t->wal stays NULL. */
  clog *log;
  bool log_registered; /* clog_register'ed; unregistered by tb_free */
  uint64_t last_seq;    /* assigned */
  uint64_t visible_seq; /* every write <= it is in and acknowledged */
  uint64_t next_file;
  wnode *queue_head, *queue_tail; /* writers waiting, leader first */
  bool writing;  /* a leader is applying a group outside mu */
  bool rotating;
  bool closing;
  /* Opened but not yet taken over (docs/engine.md, "Serving before taking
   * over"): cur->mem is the memtable replayed from the previous owners'
   * WAL segments, which the manifest still lists as live; there is no WAL
   * writer (t->wal NULL) and this owner has written nothing. Reads are
   * served; writes, flushes, rotations and compactions wait for
   * tb_take_over. Only ever goes from true to false. */
  bool pending;
  /* The last group's WAL write found the disk full: the segment may end
   * in a torn record and is never appended to again; the next write
   * starts a new segment first (make_room). */
  bool wal_full;
  mica_err *failed;     /* sticky: writes refused */
  mica_err *bg_error;   /* last background failure, for stall messages */
  size_t active_charged; /* bytes of cur->mem charged to the budget */

  atomic_bool flush_requested;
  atomic_size_t active_bytes;
  res_job flush_job, compact_job;
  res_member member;
  bool member_added;

  /* Guarded by compact_mu: for each level, the key after which the next
   * compaction out of it starts (round robin over its key space, as
   * LevelDB does); empty: from the first file. In memory only. */
  buf compact_ptr[TB_LEVELS];

  /* Statistics (atomic, relaxed). */
  atomic_uint_fast64_t st_puts, st_deletes, st_batches, st_bytes, st_gets,
      st_get_probes, st_scans, st_flushes, st_flush_bytes, st_compactions, st_cread, st_cwrite,
      st_stalls, st_stall_micros, st_stall_timeouts, st_read_compactions;
  uint64_t replayed_records, dropped_bytes;
  bool lost_log_accepted; /* opened without a missing log (accept_lost_logs) */
};

static inline void stat_add(atomic_uint_fast64_t *s, uint64_t v) {
  atomic_fetch_add_explicit(s, v, memory_order_relaxed);
}

static inline slice t_start(const tablet *t) { return buf_slice(&t->start); }
static inline slice t_end(const tablet *t) { return buf_slice(&t->end); }

static inline bool t_in_range(const tablet *t, slice k) {
  return in_range(k, t_start(t), t_end(t), t->has_end);
}

/* ---- tablet.c ---- */

/* Makes the tablet refuse writes from now on. Caller holds mu; takes
 * ownership of `err`. */
void tb_fail_locked(tablet *t, mica_err *err);
/* Remembers the last background failure for stall messages. */
void tb_set_bg_error(tablet *t, const mica_err *err);

/* ---- tablet_files.c ---- */

/* "sst-<epoch>-<number>.sst", the name of an SSTable this tablet writes. */
void tb_sst_file_name(char *out, size_t size, uint64_t epoch,
                      uint64_t number);
bool tb_is_sst_name(const char *name);

void tb_tfile_ref(tfile *f);
/* Drops a reference; the last one closes the reader and, when the file
 * is the tablet's own and obsolete, deletes it. Accepts NULL. */
void tb_tfile_unref(tfile *f);
/* Opens the SSTable at `rel` (relative to `dir`) for reading [lo, hi),
 * checking its size when `expect_size` is not 0. Caller drops the
 * reference with tb_tfile_unref(). */
mica_err *tb_tfile_open(env *e, cache *c, const char *dir, const char *rel,
                        uint64_t expect_size, slice lo, slice hi, bool has_hi,
                        tfile **out);

/* A version holding a reference to each memtable and file given, file i
 * at level levels[i]. The files are ordered by level (stably, so level 0
 * keeps the order given, which must be newest first) and each level >= 1
 * by key. Caller drops it with tb_version_unref(). */
version *tb_version_new(memtable *mem, memtable **imm, size_t n_imm,
                        tfile **files, const uint8_t *levels,
                        size_t n_files);
void tb_version_ref(version *v);
void tb_version_unref(version *v); /* accepts NULL */
/* The levels of v's files, in v's order, in a new array (caller frees). */
uint8_t *tb_version_levels(const version *v);
/* Replaces the current version (files and levels as tb_version_new).
 * Caller holds mu. */
void tb_install_version(tablet *t, memtable *mem, tfile **files,
                        const uint8_t *levels, size_t n_files);
/* The current version with the same files and a new memtable. Caller
 * holds mu. */
void tb_install_memtable(tablet *t, memtable *mem);
/* A reference to the current version (caller drops it with
 * tb_version_unref) and, when `seq` is not NULL, the visible sequence
 * number. Takes mu. */
version *tb_current_version(tablet *t, uint64_t *seq);

/* The levels of m's SSTables, in m's order, in a new array (caller
 * frees). */
uint8_t *tb_man_levels(const man_state *m);
/* Rebuilds the SSTable list of `m` from `files` at `levels`. */
void tb_man_set_files(man_state *m, tfile **files, const uint8_t *levels,
                      size_t n);
/* Writes `m` as the tablet's manifest unless a newer epoch took the
 * tablet over (STALE_EPOCH, and the tablet refuses writes from then on).
 * Caller holds man_mu. */
mica_err *tb_write_manifest(tablet *t, man_state *m);

/* ---- tablet_snap.c ---- */

/* The names in `dir`'s SHARED file (none when it has none). Caller frees
 * with tb_names_free(). CORRUPTION naming the file and offset. */
mica_err *tb_shared_read(env *e, const char *dir, char ***names, size_t *n);
void tb_names_free(char **v, size_t n);
bool tb_names_has(char **v, size_t n, const char *name);
/* Appends to *refs the files every snapshot pin under the data root of
 * `tablets_dir` references, as "<dir>/<file>" relative to `tablets_dir`
 * (caller frees each and the array). */
mica_err *tb_pin_refs(env *e, const char *tablets_dir, char ***refs,
                      size_t *nrefs);

/* ---- tablet_iter.c ---- */

/* Restricts internal-key iterator `in` (taken) to user keys in [lo, hi). */
iter *tb_rng_iter_new(iter *in, slice lo, slice hi, bool has_hi);
/* The merge of every source of `v`, newest first, restricted to [lo, hi).
 * Holds no reference to `v`: the caller keeps it alive. */
iter *tb_version_iter(version *v, slice lo, slice hi, bool has_hi,
                      bool fill_cache);
/* A tablet scan of `v` at `seq` over [lo, hi) with the order and limit
 * of `o`, positioned at its first entry: the user-key view (newest
 * version of each key, deletes hidden) and the scan order share one
 * allocation; below them the version's merge. Takes one reference to
 * `v`; copies lo and hi. */
iter *tb_tablet_iter_new(version *v, uint64_t seq, slice lo, slice hi,
                         bool has_hi, const tab_scan_options *o);

/* ---- tablet_compact.c ---- */

/* Writes the newest entry of each user key of `in` to the new SSTable
 * numbered `number` (see the definition). */
mica_err *tb_write_sst(tablet *t, iter *in, bool drop_deletes,
                       uint64_t number, tfile **out, uint64_t *read_bytes);
/* The same, into as many new SSTables as it takes for none to pass
 * `file_bytes` by more than a block, numbered from t->next_file. */
mica_err *tb_write_ssts(tablet *t, iter *in, bool drop_deletes,
                        uint64_t file_bytes, tfile ***out, size_t *n_out,
                        uint64_t *read_bytes);
/* Moves `delta` bytes of active memtable into (or out of) the budget. */
void tb_charge_memory(tablet *t, int64_t delta);
/* Makes the active memtable immutable behind a new WAL segment, or with
 * `new_segment` false closes the WAL for good. Caller holds mu (released
 * while doing I/O and reacquired). */
mica_err *tb_rotate_locked(tablet *t, bool new_segment);
/* Flushes every immutable memtable, oldest first. */
mica_err *tb_flush_all_imm(tablet *t);
/* Whether a background compaction is due: auto_compact is on, the
 * tablet is neither closing nor pending, and a level is over its bound
 * (level 0: compaction_trigger files; below: its size target) or the
 * tablet still reads a file by reference (a split parent's or a merge
 * input's). Caller holds mu. */
bool tb_compaction_due_locked(tablet *t);
/* Runs one compaction (`force`: everything). Sets *did when it merged
 * something. */
mica_err *tb_compact_once(tablet *t, bool force, bool *did);
/* The pool's callbacks: background jobs and the memory member. */
void tb_flush_job_fn(res_job *job);
void tb_compact_job_fn(res_job *job);
size_t tb_member_active_bytes(void *arg);
void tb_member_request_flush(void *arg);

/* ---- tablet_level.c ---- */

/* A span of user keys: [lo, hi], or [lo, hi) when hi_excl. */
typedef struct kspan {
  slice lo, hi;
  bool hi_excl;
} kspan;

/* Sets f's key span from its properties and read range. */
void tb_tfile_set_span(tfile *f);
static inline kspan tf_span(const tfile *f) {
  return (kspan){buf_slice(&f->klo), buf_slice(&f->khi), f->khi_excl};
}
bool tb_span_overlap(kspan a, kspan b);
/* Whether f's span meets the user-key range [lo, hi) (lo empty:
 * unbounded below; has_hi false: above). */
bool tb_tfile_meets(const tfile *f, slice lo, slice hi, bool has_hi);
/* Whether f may hold `key` (its span contains it). */
bool tb_tfile_may_hold(const tfile *f, slice key);
/* In level `level` >= 1 of `v`, the index into v->files of the first
 * file whose span does not end before `key` (lvl[level + 1] if none). */
size_t tb_level_find(const version *v, int level, slice key);
/* CORRUPTION naming the tablet and both files when two files of a level
 * >= 1 of `v` overlap or are out of key order. */
mica_err *tb_check_levels(const tablet *t, const version *v);

/* tb_check_levels of the files a manifest lists, at open: `files` (in
 * the manifest's order) at `levels`. */
mica_err *tb_check_file_levels(const tablet *t, tfile **files,
                               const uint8_t *levels, size_t n);

/* The compaction bounds of a tablet's options: the size target of level
 * `level` >= 1 and the size of the files a compaction writes. */
uint64_t tb_level_target(const tab_options *o, int level);
uint64_t tb_file_target(const tab_options *o);

/* A compaction: input files (in the version's order), the level its
 * output goes to, and whether deletes may be dropped (no older data for
 * its keys lies below the output level). */
typedef struct tb_pick {
  tfile **in;
  size_t n_in;
  int out_level;
  bool drop_deletes;
  bool move;       /* the one input moves to out_level unchanged */
  bool foreign;    /* an input is read by reference */
  const char *why; /* for the log */
} tb_pick;

/* How far over its bound the most urgent level of `v` is (>= 1: a
 * compaction is due). */
double tb_compaction_score(const tablet *t, const version *v);
/* Whether `v` reads a file by reference. */
bool tb_version_has_foreign(const version *v);
/* Whether a file of `v` has run out of reads (read_due). */
bool tb_version_read_due(const version *v);
/* Charges one read to `f`, a file a read looked into (past its Bloom
 * filter) before it had to look into another for the same key; when its allowance runs out, marks it read_due and
 * schedules the tablet's compaction (when auto_compact is on). Caller
 * holds no tablet lock. */
void tb_charge_read(tablet *t, tfile *f);
/* Charges a seek to `key` in `v`: when two or more SSTables may hold
 * `key`, the first of them (newest level first) is charged. */
void tb_charge_seek(tablet *t, const version *v, slice key);
/* Picks the next compaction of `v` (`force`: all files into the lowest
 * level holding data). False when nothing is to be done. Caller holds
 * compact_mu; frees p->in. */
bool tb_pick_compaction(tablet *t, const version *v, bool force, tb_pick *p);
/* The files of `cur` without the inputs of `p`, plus `out` at
 * p->out_level (a move: the input at its new level), into *files and
 * *levels (caller frees both); returns the count. */
size_t tb_apply_compaction(const version *cur, const tb_pick *p, tfile **out,
                           size_t n_out, tfile ***files, uint8_t **levels);

/* ---- tablet_open.c ---- */

/* Takes a pending tablet over (nothing when it is not pending): writes the
 * replayed memtable to this owner's own SSTable, starts this owner's own
 * WAL segment, and in one manifest write lists both and retires the
 * previous owners' segments; then installs a fresh memtable and accepts
 * writes. Takes flush_mu; caller holds no tablet lock. On failure the
 * tablet stays pending and serving reads (STALE_EPOCH also fails it). */
mica_err *tb_take_over(tablet *t);

/* Frees `t` and everything it holds (accepts NULL). */
void tb_free(tablet *t);
/* Returns memory charged to the budget, leaves the pool and frees the
 * tablet without flushing. */
void tb_release(tablet *t);

/* ---- tablet_split.c ---- */

/* Writes both daughters of the split recorded in `m` next to `dir`
 * (idempotent). */
mica_err *tb_write_daughters(env *e, const char *dir, const man_state *m);
/* NOT_SERVING naming the split recorded in `m`. */
mica_err *tb_split_done_error(const man_state *m);

#endif
