/* s3_cache: chunk files on local disk, indexed by an in-memory LRU.
 *
 * The index is a common/cache whose entries stand for chunk files: the
 * key is the chunk's 32-byte id, the charge its size on disk, and the
 * deleter removes the file, so eviction from the index is eviction from
 * the disk. File names carry a unique suffix so that two threads that
 * fetched the same chunk at once never remove each other's file when one
 * entry replaces the other. At close the deleters must not remove
 * anything (the cache outlives the process), which `closing` tells them. */
#include "common/s3/s3_cache.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cache.h"
#include "common/coding.h"
#include "common/crc32c.h"
#include "common/env.h"
#include "common/log.h"

struct s3_cache {
  cache *index;
  char *dir;
  uint64_t chunk;
  atomic_bool closing;
  atomic_uint_fast64_t hits, misses, seq;
};

typedef struct chunk_file {
  s3_cache *owner;
  char path[]; /* the chunk's file */
} chunk_file;

static void drop_file(slice key, void *value) {
  (void)key;
  chunk_file *f = value;
  if (!atomic_load(&f->owner->closing)) err_free(env_remove(env_posix(), f->path));
  free(f);
}

static void hex(const uint8_t *p, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static bool unhex(const char *s, uint8_t *out, size_t n) {
  for (size_t i = 0; i < 2 * n; i++) {
    char ch = s[i];
    int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (v < 0) return false;
    if (i % 2 == 0) out[i / 2] = (uint8_t)(v << 4);
    else out[i / 2] |= (uint8_t)v;
  }
  return true;
}

static chunk_file *new_file(s3_cache *c, const char *name) {
  size_t n = strlen(c->dir) + strlen(name) + 2;
  chunk_file *f = xmalloc(sizeof(*f) + n);
  f->owner = c;
  snprintf(f->path, n, "%s/%s", c->dir, name);
  return f;
}

static void index_file(s3_cache *c, const uint8_t id[32], chunk_file *f,
                       uint64_t bytes) {
  cache_handle *h = cache_insert(c->index, slice_make(id, 32), f,
                                 (size_t)bytes, drop_file);
  cache_release(c->index, h);
}

mica_err *s3_cache_open(const char *dir, uint64_t capacity, uint64_t chunk,
                        s3_cache **out) {
  *out = NULL;
  if (chunk == 0 || chunk > (64u << 20))
    return err_new(MICA_INVALID_ARGUMENT,
                   "cache %s: chunk size %" PRIu64 " not in 1..64 MiB", dir,
                   chunk);
  env *px = env_posix();
  mica_err *err = env_mkdirs(px, dir);
  if (err != NULL) return err_wrap(err, "cache directory");
  char **names;
  size_t n;
  err = env_list(px, dir, &names, &n);
  if (err != NULL) return err_wrap(err, "cache directory");
  s3_cache *c = xcalloc(1, sizeof(*c));
  c->index = cache_new((size_t)capacity);
  c->dir = xstrdup(dir);
  c->chunk = chunk;
  for (size_t i = 0; i < n; i++) {
    const char *name = names[i];
    size_t len = strlen(name);
    uint8_t id[32];
    chunk_file *f = new_file(c, name);
    uint64_t size;
    if (len > 71 && name[64] == '.' && strcmp(name + len - 6, ".chunk") == 0 &&
        unhex(name, id, 32) && env_file_size(px, f->path, &size) == NULL) {
      index_file(c, id, f, size);
    } else if (strncmp(name, "tmp-", 4) == 0) {
      err_free(env_remove(px, f->path)); /* a write cut short */
      free(f);
    } else {
      free(f); /* not ours: left alone */
    }
  }
  env_free_names(names, n);
  *out = c;
  return NULL;
}

void s3_cache_close(s3_cache *c) {
  if (c == NULL) return;
  atomic_store(&c->closing, true);
  cache_free(c->index);
  free(c->dir);
  free(c);
}

uint64_t s3_cache_chunk(const s3_cache *c) { return c->chunk; }

void s3_cache_id(const s3_cache *c, const char *bucket, const char *key,
                 const char *etag, uint64_t index, uint8_t id[32]) {
  /* NUL separators: no two (bucket, key, etag) triples run together. */
  buf b = BUF_INIT;
  buf_append(&b, bucket, strlen(bucket) + 1);
  buf_append(&b, key, strlen(key) + 1);
  buf_append(&b, etag, strlen(etag) + 1);
  uint8_t nums[16];
  encode_fixed64(nums, c->chunk);
  encode_fixed64(nums + 8, index);
  buf_append(&b, nums, sizeof(nums));
  SHA256(b.data, b.len, id);
  buf_free(&b);
}

/* Bytes of a chunk file holding `len` bytes: the bytes, then one masked
 * CRC32C per page. */
static uint64_t file_bytes(uint64_t len) {
  return len + 4 * ((len + S3_CACHE_PAGE - 1) / S3_CACHE_PAGE);
}

/* Reads [off, off+n) of a chunk file of `len` bytes into `dst`, checking
 * the CRC of every page it touches. */
static bool read_pages(const char *path, uint64_t len, uint64_t off, size_t n,
                       uint8_t *dst) {
  env_reader *r;
  if (env_open_reader(env_posix(), path, &r) != NULL) return false;
  bool ok = env_reader_size(r) == file_bytes(len);
  uint64_t p0 = off / S3_CACHE_PAGE, p1 = (off + n - 1) / S3_CACHE_PAGE;
  uint64_t from = p0 * S3_CACHE_PAGE;
  uint64_t to = (p1 + 1) * S3_CACHE_PAGE < len ? (p1 + 1) * S3_CACHE_PAGE : len;
  size_t npages = (size_t)(p1 - p0 + 1);
  uint8_t *pages = ok ? xmalloc((size_t)(to - from)) : NULL;
  uint8_t *crcs = ok ? xmalloc(4 * npages) : NULL;
  size_t got = 0, cgot = 0;
  if (ok) {
    mica_err *err = env_read(r, from, (size_t)(to - from), pages, &got);
    if (err == NULL) err = env_read(r, len + 4 * p0, 4 * npages, crcs, &cgot);
    ok = err == NULL && got == to - from && cgot == 4 * npages;
    err_free(err);
  }
  for (size_t i = 0; ok && i < npages; i++) {
    uint64_t ps = i * S3_CACHE_PAGE;
    uint64_t pl = to - from - ps < S3_CACHE_PAGE ? to - from - ps : S3_CACHE_PAGE;
    ok = crc32c_unmask(decode_fixed32(crcs + 4 * i)) ==
         crc32c_value(pages + ps, (size_t)pl);
  }
  if (ok) memcpy(dst, pages + (off - from), n);
  free(pages);
  free(crcs);
  env_reader_close(r);
  return ok;
}

bool s3_cache_get(s3_cache *c, const uint8_t id[32], uint64_t len,
                  uint64_t off, size_t n, void *dst) {
  cache_handle *h = cache_lookup(c->index, slice_make(id, 32));
  /* A local-only try that misses is retried where it may fetch, and
   * counted there (env.h). */
  if (h == NULL) {
    if (!env_local_only()) atomic_fetch_add(&c->misses, 1);
    return false;
  }
  chunk_file *f = cache_value(h);
  bool ok = off + n <= len && n > 0 && read_pages(f->path, len, off, n, dst);
  cache_release(c->index, h);
  if (!ok) {
    /* Missing, cut short or damaged: forget it (removing the file). */
    cache_erase(c->index, slice_make(id, 32));
    if (!env_local_only()) atomic_fetch_add(&c->misses, 1);
    return false;
  }
  atomic_fetch_add(&c->hits, 1);
  return true;
}

void s3_cache_put(s3_cache *c, const uint8_t id[32], const void *data,
                  size_t len) {
  uint64_t seq = atomic_fetch_add(&c->seq, 1);
  char idhex[65], tmpname[64], name[128];
  hex(id, 32, idhex);
  snprintf(tmpname, sizeof(tmpname), "tmp-%ld-%" PRIu64, (long)getpid(), seq);
  snprintf(name, sizeof(name), "%s.%ld-%" PRIu64 ".chunk", idhex,
           (long)getpid(), seq);
  chunk_file *tmp = new_file(c, tmpname);
  chunk_file *f = new_file(c, name);
  env *px = env_posix();
  size_t npages = (len + S3_CACHE_PAGE - 1) / S3_CACHE_PAGE;
  uint8_t *crcs = xmalloc(4 * npages + 1);
  for (size_t i = 0; i < npages; i++) {
    size_t ps = i * S3_CACHE_PAGE;
    size_t pl = len - ps < S3_CACHE_PAGE ? len - ps : S3_CACHE_PAGE;
    encode_fixed32(crcs + 4 * i,
                   crc32c_mask(crc32c_value((const uint8_t *)data + ps, pl)));
  }
  env_writer *w;
  mica_err *err = env_open_writer(px, tmp->path, ENV_TRUNCATE, &w);
  if (err == NULL) {
    err = env_append(w, data, len);
    if (err == NULL) err = env_append(w, crcs, 4 * npages);
    mica_err *cerr = env_writer_close(w);
    if (err == NULL) err = cerr;
    else err_free(cerr);
    /* No sync: a chunk cut short by a crash fails its length or CRC check
     * and is refetched. */
    if (err == NULL) err = env_rename(px, tmp->path, f->path);
    if (err != NULL) err_free(env_remove(px, tmp->path));
  }
  free(tmp);
  free(crcs);
  if (err != NULL) {
    LOG_W("disk cache: chunk not cached: %s", err_msg(err));
    err_free(err);
    free(f);
    return;
  }
  index_file(c, id, f, file_bytes(len));
}

uint64_t s3_cache_hits(const s3_cache *c) { return atomic_load(&c->hits); }
uint64_t s3_cache_misses(const s3_cache *c) { return atomic_load(&c->misses); }
uint64_t s3_cache_usage(s3_cache *c) { return cache_usage(c->index); }
