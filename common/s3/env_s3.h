/* env_s3: the env for data roots on S3-compatible object storage.
 *
 * Paths look like "s3://BUCKET/KEY" (repeated slashes collapse and a
 * trailing slash is dropped, so "s3://b/root/" + "/t1" is "s3://b/root/t1").
 * Every other part of Mica keeps calling env_*; only the choice of env
 * knows about S3 (env_s3_is_path picks it for a --data-dir).
 *
 * How files map to objects (docs/storage.md has the request counts):
 * - A writer buffers what is appended. env_sync makes it durable by
 *   uploading the whole file as one object (one PUT, or a multipart upload
 *   at or above the configured threshold); a later sync after more
 *   appends uploads the whole file again. Closing uploads whatever the
 *   last sync did not cover. An object therefore appears at the first
 *   sync or at close, never half-written: readers see either no object or
 *   a complete synced prefix of the file. ENV_CREATE_NEW fails with
 *   ALREADY_EXISTS when the object exists at open, and its first upload
 *   carries If-None-Match: * so a server with conditional writes also
 *   refuses a racing creator. ENV_APPEND downloads the existing object
 *   first. env_preallocate answers NOT_SUPPORTED.
 * - A reader HEADs the object (size, ETag) and each env_read is one ranged
 *   GET carrying If-Match: ETAG and checked against the answer's ETag and
 *   size, so bytes always come from the object seen at open (a replaced
 *   object is ABORTED, not mixed). No maps. With a
 *   disk cache (s3_config.cache_dir, s3_cache.h) reads go by chunks: each
 *   chunk touched is served from local disk or fetched whole and kept.
 * - Directories do not exist: mkdirs and sync_dir only check the path;
 *   list names the objects and the "subdirectories" (common prefixes)
 *   right under DIR/ and answers an empty list (never NOT_FOUND) when
 *   there are none; exists is true for an object or a non-empty prefix.
 * - rename is a server-side copy followed by a delete: NOT atomic. A crash
 *   in between leaves both names; a reader can see both. Code that needs
 *   atomic replacement must not use rename on S3 (see docs/storage.md, the
 *   epoch and generation naming rule). env_write_file_atomic is one PUT
 *   here, which is atomic: readers see the old object or the new one.
 *   env_write_file_new (manifests, log parts) is one PUT with
 *   If-None-Match: *; a 412 is success only when the object holds exactly
 *   the bytes written (our own earlier attempt), else ALREADY_EXISTS
 *   saying a second writer won.
 * - remove HEADs first (S3's DELETE succeeds on missing keys) so a missing
 *   file is still NOT_FOUND. remove_tree deletes every key under DIR/.
 * - env_lock is NOT_SUPPORTED: object storage has no locks; fencing is by
 *   epochs.
 * - env_appends_in_place is false for every path: a sync uploads the whole
 *   file, so logs write each batch as a new object (master/metalog.c) or
 *   live on POSIX (the tablet server's --wal-dir, common/env_route.h).
 * - Clocks are the POSIX env's.
 *
 * Errors name the operation and the s3:// path, plus HTTP status and S3's
 * error code (s3_client.h). Missing objects are NOT_FOUND.
 *
 * Thread-safety: as env.h. Readers serve concurrent env_read calls. */
#ifndef MICA_COMMON_S3_ENV_S3_H
#define MICA_COMMON_S3_ENV_S3_H

#include <stdbool.h>

#include "common/env.h"
#include "common/s3/s3_client.h"

/* True if `path` starts with "s3://". */
bool env_s3_is_path(const char *path);

/* Splits "s3://BUCKET/KEY" into a bucket and a normalized key ("" for the
 * bucket itself). INVALID_ARGUMENT names a malformed path or an invalid
 * bucket name. Caller frees *bucket and *key. */
mica_err *env_s3_parse(const char *path, char **bucket, char **key);

/* A new S3 env talking to the service `c` describes (copied). Caller frees
 * with env_s3_free() after every file from it is closed. */
mica_err *env_s3_new(const s3_config *c, env **out);
void env_s3_free(env *e); /* accepts NULL */

/* The client under an S3 env, for tests and tools (borrowed). */
s3_client *env_s3_client(env *e);

/* Its disk cache (borrowed), or NULL when it has none. */
struct s3_cache *env_s3_cache(env *e);

#endif
