/* env_route: one env made of two, choosing by file name.
 *
 * A tablet server whose data root is on object storage keeps its
 * write-ahead log on a POSIX directory (--wal-dir, docs/storage.md): the
 * log grows by small synced appends, which an object store can only do by
 * uploading the whole file again. The engine still sees one tree of
 * files under one root. env_route_new() makes that tree out of two envs:
 * a path under `root` whose last component `pick` accepts (a WAL segment
 * name) lives at the same relative path under `alt_root` in `alt`;
 * everything else lives in `base` at its own path.
 *
 *   root      s3://b/c1            alt_root  /var/lib/mica/wal
 *   s3://b/c1/tablets/7/sst-…sst      -> base, as is
 *   s3://b/c1/tablets/7/wal-…log      -> alt, /var/lib/mica/wal/tablets/7/wal-…log
 *
 * Directory operations act on both trees: mkdirs creates the directory in
 * both, list merges both listings, remove_tree and a directory's rename
 * apply to both (the alt side only where it exists), exists is true if
 * either has the path. Free space is the base env's, or the alt env's
 * where the base has none to report (an object store: then the local WAL
 * disk is the one that can fill). Readers and writers are the chosen
 * env's own, so reads, appends and syncs cost nothing extra. A lock is
 * taken where its file lives (a picked name's in alt: the tablet server's
 * commit log keeps its LOCK beside its segments); clocks are the base
 * env's.
 *
 * Thread-safety: as env.h; the only mutable state is the set of lock
 * descriptors alt handed out, under a mutex. */
#ifndef MICA_COMMON_ENV_ROUTE_H
#define MICA_COMMON_ENV_ROUTE_H

#include <stdbool.h>

#include "common/env.h"

/* A route env (see above). `base` and `alt` are borrowed and must outlive
 * it; `root` and `alt_root` are copied (trailing slashes dropped). Caller
 * frees with env_route_free() after every file from it is closed. */
env *env_route_new(env *base, const char *root, env *alt,
                   const char *alt_root, bool (*pick)(const char *name));
void env_route_free(env *e); /* accepts NULL */

#endif
