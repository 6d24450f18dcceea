/* layout: where things live under a data root, defined once.
 *
 * The master and every tablet server of a cluster share one data root
 * (docs/engine.md, docs/design.md). Its layout:
 *
 *   <root>/master/                  the master's log (master/metalog.h)
 *   <root>/tablets/                 the tablets directory
 *   <root>/tablets/<tablet_id>/     one directory per tablet, its id in
 *                                   decimal: MANIFEST, WAL segments and
 *                                   SSTables (tabletserver/tablet.h)
 *
 * Tablet directories are siblings: a daughter of a split, or a merged
 * tablet, reads the files of its parent or inputs as
 * "../<their directory>/<file>", a path that stays valid however many
 * times the data is split or merged again (layout_sibling_file).
 *
 * Every component that names one of these paths (tablet server, master,
 * the engine's split, merge and garbage collection, tests) builds it
 * here, so the layout can only change in one place.
 *
 * Thread-safety: pure functions, except layout_list_tablets and
 * layout_remove_tablet, which touch the disk through `e` and are as safe
 * as the env is. Returned strings are newly allocated; caller frees them
 * with free(). */
#ifndef MICA_COMMON_LAYOUT_H
#define MICA_COMMON_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/env.h"
#include "common/err.h"
#include "common/slice.h"

#define LAYOUT_MASTER_SUBDIR "master"
#define LAYOUT_TABLETS_SUBDIR "tablets"

/* "<root>/master". Caller frees. */
char *layout_master_dir(const char *root);
/* "<root>/tablets". Caller frees. */
char *layout_tablets_dir(const char *root);
/* "<tablets_dir>/<tablet_id>", NUL-terminated, replacing the contents of
 * `out` (the NUL is not counted in out->len). */
void layout_tablet_dir(const char *tablets_dir, uint64_t tablet_id, buf *out);
/* "tablets/<tablet_id>": a tablet's directory relative to the data root,
 * as OpenTablet requests and answers carry it. Caller frees. */
char *layout_tablet_rel(uint64_t tablet_id);

/* True when `name` (a directory entry of the tablets directory) is a
 * tablet directory's name: one or more decimal digits and nothing else.
 * Temporary directories of splits and merges ("<id>.split-tmp") are not. */
bool layout_is_tablet_name(const char *name);
/* Like layout_is_tablet_name, and the id fits in 64 bits: sets *id.
 * False (and *id untouched) otherwise. */
bool layout_parse_tablet_name(const char *name, uint64_t *id);

/* The tablet directory names under `tablets_dir`, sorted bytewise; other
 * entries are left out. Caller frees with env_free_names(). Errors are
 * env_list's (NOT_FOUND when the directory does not exist). */
mica_err *layout_list_tablets(env *e, const char *tablets_dir, char ***names,
                              size_t *n);

/* Deletes the directory of tablet `tablet_id` under `tablets_dir` with
 * everything in it. An absent directory is not an error. */
mica_err *layout_remove_tablet(env *e, const char *tablets_dir,
                               uint64_t tablet_id);

/* The path of file `path`, listed in the MANIFEST of the tablet directory
 * named `dir_name`, as seen from a sibling tablet directory, appended to
 * `out` NUL-terminated (the NUL not counted): a bare file name becomes
 * "../<dir_name>/<path>"; a path that already names a sibling
 * ("../<other>/<file>") stays as it is. */
void layout_sibling_file(const char *dir_name, const char *path, buf *out);

#endif
