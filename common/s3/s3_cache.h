/* s3_cache: a local disk cache of object byte ranges, under the block cache.
 *
 * The S3 env reads objects in fixed-size chunks (`chunk` bytes at chunk-
 * aligned offsets; the last chunk of an object is shorter) and keeps each
 * chunk it fetched as one file in the cache directory, so that a warm
 * tablet server reads from S3 only what a cold start needs. A chunk is
 * named by the SHA-256 of the object's bucket, key and ETag, the chunk
 * size and the chunk's index: a replaced object has a new ETag and so new
 * chunk names, and a stale chunk can never be served for it.
 *
 * Files: `<64 hex>.<unique>.chunk` holding the chunk's bytes followed by
 * one masked CRC32C (4 bytes, little-endian) per 4 KiB page of them, so a
 * read checks and reads only the pages it touches (an 8 KiB block read
 * from a 256 KiB chunk reads 8 to 12 KiB); temporary files while writing.
 * A chunk file that is missing, of the wrong length or fails a page's CRC
 * is a miss (and is removed), never an error: the cache only ever costs a
 * refetch. The directory survives restarts: at open every chunk
 * file is indexed again (and leftover temporaries removed).
 *
 * Eviction: least recently used, by bytes on disk, through the same
 * sharded LRU as the block cache (common/cache.h, 16 shards, each with a
 * sixteenth of the budget), so `capacity` should be well above 16 chunks.
 *
 * All file access goes through the POSIX env.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef MICA_COMMON_S3_S3_CACHE_H
#define MICA_COMMON_S3_S3_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct s3_cache s3_cache;

/* Opens (creating if needed) the cache in `dir` with a budget of
 * `capacity` bytes of chunk files and chunks of `chunk` bytes. Caller
 * closes with s3_cache_close(), which keeps the files. */
mica_err *s3_cache_open(const char *dir, uint64_t capacity, uint64_t chunk,
                        s3_cache **out);
void s3_cache_close(s3_cache *c); /* accepts NULL */

uint64_t s3_cache_chunk(const s3_cache *c);

/* The name of chunk `index` of the object `bucket`/`key` with `etag`. */
void s3_cache_id(const s3_cache *c, const char *bucket, const char *key,
                 const char *etag, uint64_t index, uint8_t id[32]);

#define S3_CACHE_PAGE 4096

/* Copies bytes [off, off+n) (n > 0) of the chunk `id`, whose length is
 * `len`, into `dst` if the chunk is cached and those pages are intact;
 * false (a miss) otherwise. */
bool s3_cache_get(s3_cache *c, const uint8_t id[32], uint64_t len,
                  uint64_t off, size_t n, void *dst);

/* Stores `len` bytes as chunk `id`. Failures (a full disk) are logged and
 * otherwise ignored: the chunk is simply not cached. */
void s3_cache_put(s3_cache *c, const uint8_t id[32], const void *data,
                  size_t len);

/* Lookups that found / missed a usable chunk, and the bytes held. */
uint64_t s3_cache_hits(const s3_cache *c);
uint64_t s3_cache_misses(const s3_cache *c);
uint64_t s3_cache_usage(s3_cache *c);

#endif
