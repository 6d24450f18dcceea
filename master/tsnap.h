/* tsnap: table snapshots and clones in the master's state
 * (docs/storage.md, "Snapshots"; the records in METALOG_FORMAT.md).
 *
 * A snapshot names a table's tablets at one moment: for each, its key
 * range and the pin its tablet server wrote under
 * <root>/snapshots/<snapshot id>/<tablet id> (tabletserver/tablet.h,
 * tab_snapshot_pin), which lists the SSTables by reference. The master
 * keeps the snapshot's durable record; the RPC layer
 * (master/server/msrv_snapshot.c) asks the servers for the pins, writes a
 * clone's manifests and deletes pins.
 *
 * Life of a snapshot: creating (SNAP_BEGIN: the name and id are taken),
 * ready (SNAP_READY, once every tablet's pin is written and the pinned
 * ranges cover the key space), dropping (SNAP_DROP: gone from lists; its
 * pins are being deleted), then forgotten (SNAP_REMOVE). A snapshot left
 * creating by a master that stopped is dropped by the next master's first
 * tick (nothing partial stays visible).
 *
 * Life of a clone: CLONE_BEGIN creates the table, its tablets unassigned
 * and not assignable while the table is "cloning"; the RPC layer writes
 * each new tablet's MANIFEST from the snapshot's pin; CLONE_DONE makes the
 * table assignable (or, when the manifests could not be written, drops
 * it). A table left cloning by a master that stopped is dropped the same
 * way. A snapshot cannot be dropped while a table is being cloned from it
 * or while it is being exported, and a cloning table cannot be dropped.
 *
 * Thread-safety: like state.h (the core's mutex). */
#ifndef MICA_MASTER_TSNAP_H
#define MICA_MASTER_TSNAP_H

#include "master/state.h"

enum ms_tsnap_state {
  MS_TSNAP_CREATING = 1,
  MS_TSNAP_READY = 2,
  MS_TSNAP_DROPPING = 3
};
const char *ms_tsnap_state_name(int state); /* "ready"; static */

/* One tablet of a snapshot. */
typedef struct ms_tsnap_part {
  uint64_t tablet_id; /* the source tablet (names its pin) */
  buf start, end;     /* end empty = +infinity */
  uint64_t files, bytes;
} ms_tsnap_part;

typedef struct ms_tsnap_info {
  uint64_t id;
  char *name;
  uint64_t table_id;
  char *table; /* the source table's name when the snapshot was taken */
  uint64_t created_ms;
  int state;   /* enum ms_tsnap_state */
  ms_table_opts opts;
  ms_tsnap_part *parts; /* by start key (ready ones) */
  size_t n_parts;
  uint64_t files, bytes; /* sums over parts */
} ms_tsnap_info;
void ms_tsnap_infos_free(ms_tsnap_info *v, size_t n);

/* Starts snapshot `name` of live table `table`: checks the name
 * ([A-Za-z0-9_.-]{1,128}, INVALID_ARGUMENT) and that it is free
 * (ALREADY_EXISTS), logs SNAP_BEGIN, and returns its id. NOT_FOUND for an
 * unknown table; UNAVAILABLE while the table is being cloned. */
mica_err *ms_tsnap_begin(ms *m, const char *table, const char *name,
                         uint64_t now, uint64_t *id);

/* The current tablets of the table snapshot `id` is being taken of.
 * NOT_FOUND when the snapshot is not creating or the table is gone. */
mica_err *ms_tsnap_tablets(ms *m, uint64_t id, ms_tablet_list *out);

/* Makes creating snapshot `id` ready with `parts`, which must cover the
 * key space exactly in key order (INVALID_ARGUMENT otherwise; nothing
 * changes). */
mica_err *ms_tsnap_ready(ms *m, uint64_t id, const ms_tsnap_part *parts,
                         size_t n, uint64_t now);

/* Drops snapshot `name` (ready or creating): logged, gone from lists at
 * once; the RPC layer then deletes its pins (ms_tsnap_dropping) and
 * reports with ms_tsnap_removed. NOT_FOUND unknown; UNAVAILABLE a table
 * is being cloned from it. */
mica_err *ms_tsnap_drop(ms *m, const char *name, uint64_t now);
/* ms_tsnap_drop by id (a failed creation); NOT_FOUND when not there. */
mica_err *ms_tsnap_drop_id(ms *m, uint64_t id, uint64_t now);

/* Holds ready snapshot `name` for an export and copies its record into
 * *out (caller frees with ms_tsnap_infos_free(*out, 1)): until
 * ms_tsnap_export_end, dropping it is refused (UNAVAILABLE), so the files
 * the export copies stay. The hold is volatile: the export runs in this
 * process and ends with it. NOT_FOUND unknown; UNAVAILABLE still being
 * taken. */
mica_err *ms_tsnap_export_begin(ms *m, const char *name,
                                ms_tsnap_info **out);
/* Releases one hold of ms_tsnap_export_begin on snapshot `id`. */
void ms_tsnap_export_end(ms *m, uint64_t id);

/* Snapshots by name (dropping ones too when `all`). Caller frees with
 * ms_tsnap_infos_free(). `name` non-NULL: only that one (NOT_FOUND). */
mica_err *ms_tsnap_list(ms *m, const char *name, bool all,
                        ms_tsnap_info **out, size_t *n);

/* Ids of snapshots whose pins are to be deleted (dropping). Caller frees
 * with free(). */
void ms_tsnap_dropping(ms *m, uint64_t **ids, size_t *n);
/* The pins of dropping snapshot `id` are deleted: forget it (logged). */
mica_err *ms_tsnap_removed(ms *m, uint64_t id);

/* A clone in the making: the new table and, for each of its tablets, the
 * snapshot part it starts from. */
typedef struct ms_tsnap_clone {
  uint64_t table_id;
  uint64_t snap_id;
  uint64_t *tablet_ids;   /* new tablets, in key order */
  uint64_t *source_ids;   /* the snapshot's tablets (their pins) */
  size_t n;
} ms_tsnap_clone;
void ms_tsnap_clone_free(ms_tsnap_clone *c);

/* Creates table `table` as a clone of ready snapshot `snap` (same ranges
 * and options), not assignable until ms_tsnap_clone_done. NOT_FOUND
 * unknown snapshot; ALREADY_EXISTS / INVALID_ARGUMENT for the name as
 * ms_create_table. */
mica_err *ms_tsnap_clone_begin(ms *m, const char *snap, const char *table,
                               uint64_t now, ms_tsnap_clone *out);
/* Creates table `table` for a restore from an export (tsnap "snapshot 0"):
 * cut at `split_keys`, with `opts`, not assignable until
 * ms_tsnap_clone_done; out->source_ids are 0. ALREADY_EXISTS /
 * INVALID_ARGUMENT as ms_create_table. */
mica_err *ms_tsnap_restore_begin(ms *m, const char *table,
                                 const slice *split_keys, size_t n_keys,
                                 const ms_table_opts *opts, uint64_t now,
                                 ms_tsnap_clone *out);
/* The clone's manifests are written (`ok`: the table becomes assignable)
 * or could not be (the table is dropped). Logged. */
mica_err *ms_tsnap_clone_done(ms *m, uint64_t table_id, bool ok,
                              uint64_t now);

/* ---- inside the core (ms_state.c, ms_tick.c, ms_ops.c call these) ---- */

/* Applies records REC_SNAP_BEGIN .. REC_CLONE_DONE (ms_int.h). */
mica_err *ms_tsnap_apply(ms *m, uint8_t type, slice payload, bool dry);
/* Whether the snapshot section must be written (anything to say). */
bool ms_tsnap_section_due(ms *m);
void ms_tsnap_encode_section(ms *m, buf *b);
mica_err *ms_tsnap_decode_section(ms *m, const uint8_t **p,
                                  const uint8_t *lim);
/* Drops snapshots left creating and tables left cloning by a previous
 * master process (logged). */
mica_err *ms_tsnap_tick(ms *m, uint64_t now);
/* True when table `table_id` is being cloned (its tablets wait). */
bool ms_tsnap_cloning(ms *m, uint64_t table_id);
void ms_tsnap_free_all(ms *m);

#endif
