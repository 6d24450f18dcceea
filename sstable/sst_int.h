/* sst_int: the pieces of the SSTable library shared between its files and
 * not part of its API: format constants, block building and decoding, the
 * Bloom filter and the properties codec. FORMAT.md is the prose version of
 * the constants here; change both together.
 *
 * Thread-safety: a block builder or block cursor is used by one thread at a
 * time; a decoded block (sst_block) is immutable and may be shared. */
#ifndef MICA_SSTABLE_SST_INT_H
#define MICA_SSTABLE_SST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/coding.h"
#include "common/ikey.h"
#include "common/slice.h"
#include "sstable/sstable.h"

/* ---- file layout ---- */

#define SST_MAGIC UINT64_C(0x315453534143494d) /* "MICASST1" little-endian */
#define SST_FORMAT_VERSION 1
#define SST_FOOTER_SIZE 64
/* Every block is followed by a 1-byte type and a 4-byte masked CRC32C of
 * the stored contents and the type byte. */
#define SST_TRAILER_SIZE 5
/* Block types: how the stored contents are encoded. */
enum { SST_BLOCK_RAW = 0, SST_BLOCK_LZ4 = 1, SST_BLOCK_ZSTD = 2 };
/* Upper bound on a block's uncompressed size: larger claims are corrupt
 * (a block holds at most one entry beyond block_size, and entries are
 * bounded by the key and value limits, far below this). */
#define SST_MAX_BLOCK_BYTES (UINT64_C(256) << 20)
/* Seed of the filter hash; part of the format. */
#define SST_BLOOM_SEED 0x6d696361u

/* ikey_cmp's order (user key bytewise, then the trailer descending) for
 * keys already known to hold a trailer, inlined and comparing eight bytes
 * at a time: the index search and block seeks of every point read and
 * seek compare a dozen keys each, and the calls to ikey_cmp and memcmp
 * showed in profiles. Only the sign matches ikey_cmp's result. */
static inline int sst_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                               size_t blen) {
  size_t ua = alen - IKEY_TRAILER, ub = blen - IKEY_TRAILER;
  size_t n = ua < ub ? ua : ub, i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    memcpy(&x, a + i, 8);
    memcpy(&y, b + i, 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  }
  for (; i < n; i++)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  if (ua != ub) return ua < ub ? -1 : 1;
  uint64_t ta = decode_fixed64(a + ua), tb = decode_fixed64(b + ub);
  return ta > tb ? -1 : ta < tb ? 1 : 0;
}

typedef struct sst_handle {
  uint64_t offset; /* of the block's first byte in the file */
  uint64_t size;   /* stored contents, trailer excluded */
} sst_handle;

/* ---- block building ---- */

/* Builds one block: entries with keys prefix-compressed against the
 * previous key, a full key every `restart_interval` entries, then the
 * array of restart offsets and its count. */
typedef struct sst_block_builder {
  int restart_interval;
  int counter;     /* entries since the last restart */
  size_t entries;
  buf data;
  buf restarts;    /* fixed32 offsets, appended after the entries */
  buf last_key;
} sst_block_builder;

void sst_bb_init(sst_block_builder *bb, int restart_interval);
void sst_bb_free(sst_block_builder *bb);
void sst_bb_reset(sst_block_builder *bb);
void sst_bb_add(sst_block_builder *bb, slice key, slice value);
/* Size of the block if finished now. */
static inline size_t sst_bb_estimate(const sst_block_builder *bb) {
  return bb->data.len + bb->restarts.len + 4;
}
/* Appends the restart array and count; the block is data until reset. */
slice sst_bb_finish(sst_block_builder *bb);

/* ---- block decoding ---- */

/* A decoded (uncompressed) block. `data` is owned by whoever made it
 * (a cache entry or a reader-owned buffer). */
typedef struct sst_block {
  const uint8_t *data;
  size_t size;          /* bytes of entries + restart array + count */
  uint32_t restart_off; /* where the restart array begins = end of entries */
  uint32_t nrestarts;
} sst_block;

/* Validates the restart array of `size` bytes at `data` and fills `b`.
 * False when the trailer cannot be a restart array. */
bool sst_block_parse(const uint8_t *data, size_t size, sst_block *b);

/* True when every restart point of `b` is the offset of an entry, as
 * decoded from the start, whose key is written whole (shared = 0). Backward
 * steps and seeks decode from restart points, forward iteration never
 * does, so a block that breaks this iterates forward fine but reads
 * differently (or fails) the other ways. Scans the whole block: for
 * sst_reader_verify, not for every read. */
bool sst_block_restarts_ok(const sst_block *b);

/* A cursor over one block's entries, in both directions. `corrupt` is set
 * (and the cursor invalid) when an entry fails to decode. */
typedef struct sst_block_cursor {
  const sst_block *b;
  uint32_t cur;      /* offset of the current entry; restart_off = invalid */
  uint32_t next;     /* offset just past the current entry */
  uint32_t ridx;     /* restart index of the run holding `cur` */
  bool corrupt;
  buf key;
  slice value;
} sst_block_cursor;

/* Starts a cursor (with no key buffer yet) over `b` (may be NULL). */
void sst_bc_init(sst_block_cursor *c, const sst_block *b);
/* Points an initialized cursor at `b`, keeping its key buffer. */
void sst_bc_set(sst_block_cursor *c, const sst_block *b);
void sst_bc_free(sst_block_cursor *c);
static inline bool sst_bc_valid(const sst_block_cursor *c) {
  return c->b != NULL && c->cur < c->b->restart_off && !c->corrupt;
}
void sst_bc_first(sst_block_cursor *c);
void sst_bc_last(sst_block_cursor *c);
void sst_bc_next(sst_block_cursor *c);
void sst_bc_prev(sst_block_cursor *c);
/* First entry with key >= target by ikey_cmp (invalid when none). */
void sst_bc_seek(sst_block_cursor *c, slice target);

/* ---- Bloom filter ---- */

/* The filter's 64-bit hash of a user key (see filter.c for why not
 * hash32). Part of the format. */
uint64_t sst_bloom_hash(slice user_key);
/* Number of probes for `bits_per_key`: bits * ln 2, rounded down, 1..30. */
int sst_bloom_probes(int bits_per_key);
/* Appends a filter over the `n` key hashes (sst_bloom_hash) to `out`:
 * ceil(n * bits_per_key / 512) 64-byte blocks (at least one), then one
 * byte holding the probe count. */
void sst_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key,
                     buf *out);
/* `filter` as sst_bloom_build wrote it (length 64 * blocks + 1 with at
 * least one block, probe count 1..30: checked by the caller). */
bool sst_bloom_may_contain(slice filter, uint64_t hash);

/* ---- properties ---- */

/* Appends the properties block contents for `p` (index_size and
 * filter_size are not stored: the footer's handles give them). */
void sst_props_encode(const sst_properties *p, buf *out);
/* Parses properties block contents into `p` (zeroed first; caller clears
 * it with sst_properties_clear). False on malformed input. */
bool sst_props_decode(slice in, sst_properties *p);

#endif
