/* sstable: immutable sorted files of internal-key/value entries.
 *
 * A tablet's memtable is flushed to an SSTable, and compactions merge
 * SSTables into new ones. Once finished, a file never changes: readers on
 * many threads and many servers (the data root is shared) open it without
 * coordination. The byte layout is documented in sstable/FORMAT.md.
 *
 * Keys are internal keys (common/ikey.h: user key + 8-byte seq/kind
 * trailer), sorted by ikey_cmp; for one user key the newest version comes
 * first. The Bloom filter is built over user keys, so a point read at any
 * snapshot can skip a file that never saw the key.
 *
 * Building: sst_builder_new, then sst_builder_add in strictly increasing
 * ikey_cmp order, then sst_builder_finish (or sst_builder_abandon). A
 * finished file is synced and closed; a failed or abandoned one is removed,
 * so no partial file is ever left that opens as valid.
 *
 * Reading: sst_reader_open validates the footer, then reads and checks the
 * index, filter and properties blocks, which stay in memory for the life of
 * the reader. Data blocks are read on demand, checksummed on every read
 * from the file, and kept in the shared block cache when one is given.
 * Bytes on disk are never trusted: a truncated file, a flipped bit in any
 * block, a bad magic number, an unknown format version or a block handle
 * pointing outside the file yields MICA_CORRUPTION with a message naming
 * the file and the offset, never a crash and never wrong data.
 *
 * Thread-safety: a builder is used by one thread at a time. A reader is
 * immutable after open: sst_reader_get, sst_reader_iter_new and every
 * accessor may be called from any number of threads at once, by callers
 * that hold a reference. Each iterator is used by one thread at a time.
 * The reader is reference counted (atomically); iterators hold a
 * reference, so closing a reader while its iterators are still open is
 * safe. Open a file once and share the reader: each open gets its own
 * cache id, so two readers of one file would cache its blocks twice. */
#ifndef MICA_SSTABLE_SSTABLE_H
#define MICA_SSTABLE_SSTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cache.h"
#include "common/env.h"
#include "common/err.h"
#include "common/iter.h"
#include "common/slice.h"

/* ---- options ---- */

typedef enum sst_compression {
  SST_COMPRESS_NONE = 0,
  SST_COMPRESS_LZ4 = 1,
  SST_COMPRESS_ZSTD = 2
} sst_compression;

/* Default data block size. 8 KiB: a point read that misses the cache
 * costs one read of two pages, no slower than one page on SSDs; the index,
 * which every open reader holds in memory at 64 bytes per block, is 0.8%
 * of the data (half of what 4 KiB blocks cost, which matters for 10 GiB
 * tablets); scans and LZ4/zstd do better on 8 KiB than on 4 KiB. The
 * price: a point read without the block cache copies and checksums twice
 * the bytes (docs/benchmarks.md, SSTable section, measures both sizes). Larger
 * blocks would make every cache miss read ever more bytes than the one
 * entry it wants. */
#define SST_DEFAULT_BLOCK_SIZE 8192
#define SST_DEFAULT_RESTART_INTERVAL 16
#define SST_DEFAULT_BLOOM_BITS 10

typedef struct sst_options {
  /* Target uncompressed size of a data block; a block is cut once it
   * reaches this size, so one entry may make it larger. 1 KiB..4 MiB. */
  size_t block_size;
  /* Entries between restart points (full keys) in a data block. 1..1024. */
  int restart_interval;
  /* Bloom filter bits per distinct user key; 0 writes no filter. 0..32. */
  int bloom_bits_per_key;
  sst_compression compression;
  /* zstd level when compression is SST_COMPRESS_ZSTD (1..19). */
  int zstd_level;
} sst_options;

/* Fills `o` with the defaults above, no compression, zstd level 3. */
void sst_options_init(sst_options *o);

/* INVALID_ARGUMENT naming the first field out of the ranges above. */
mica_err *sst_options_check(const sst_options *o);

/* ---- properties ---- */

/* What a finished file says about itself (stored in its properties block
 * and filled in by the builder). */
typedef struct sst_properties {
  uint32_t format_version;
  uint64_t num_entries;
  uint64_t num_deletions;     /* entries of kind IKEY_DELETE */
  uint64_t raw_key_bytes;     /* sum of internal key lengths */
  uint64_t raw_value_bytes;   /* sum of value lengths */
  uint64_t data_size;         /* bytes of data blocks on disk, trailers included */
  uint64_t raw_data_size;     /* bytes of data blocks before compression */
  uint64_t index_size;        /* index block on disk, trailer included */
  uint64_t filter_size;       /* filter block on disk, 0 when none */
  uint64_t num_data_blocks;
  uint64_t num_compressed_blocks; /* data blocks stored compressed */
  uint64_t smallest_seq, largest_seq; /* 0, 0 when empty */
  uint32_t block_size;        /* options the file was built with */
  uint32_t restart_interval;
  uint32_t bloom_bits_per_key;
  uint32_t compression;       /* sst_compression */
  buf smallest_key;           /* internal keys; empty when num_entries == 0 */
  buf largest_key;
} sst_properties;

/* Frees the key buffers; `p` may be reused afterwards. Accepts NULL. */
void sst_properties_clear(sst_properties *p);

/* ---- building ---- */

typedef struct sst_builder sst_builder;

/* Creates (or truncates) `path` through `e` and starts a table with
 * `opts` (NULL means defaults). INVALID_ARGUMENT for options out of range.
 * Finish the builder with sst_builder_finish() or sst_builder_abandon(). */
mica_err *sst_builder_new(env *e, const char *path, const sst_options *opts,
                          sst_builder **out);

/* Appends an entry. `ikey` must be a valid internal key (ikey_parse) and
 * sort strictly after the previous one by ikey_cmp, and key plus value
 * must stay under 252 MiB (a block's limit, far above Mica's key and value
 * limits); otherwise INVALID_ARGUMENT and the builder is unchanged and
 * still usable. An I/O
 * error is returned here or by a later call, and the builder then only
 * accepts sst_builder_abandon(). The bytes are copied. */
mica_err *sst_builder_add(sst_builder *b, slice ikey, slice value);

/* Bytes the file will have if finished now, about: what has been written
 * plus the pending block, filter and index. Callers cut output files when
 * this reaches their target size. */
uint64_t sst_builder_file_size(const sst_builder *b);
uint64_t sst_builder_num_entries(const sst_builder *b);

/* Writes the last data block, filter, properties, index and footer, syncs
 * and closes the file. On success fills `*props` (may be NULL; caller
 * frees with sst_properties_clear). On failure the file is removed. Frees
 * `b` in every case. The file's directory entry is not synced here: call
 * env_sync_dir on its directory before recording the file anywhere (a
 * manifest) that must survive a crash. */
mica_err *sst_builder_finish(sst_builder *b, sst_properties *props);

/* Closes and removes the file and frees `b`. Accepts NULL. */
void sst_builder_abandon(sst_builder *b);

/* ---- reading ---- */

typedef struct sst_reader sst_reader;

/* Opens `path` through `e`, validating footer, magic, format version and
 * the index, filter and properties blocks. `block_cache` (may be NULL for
 * no caching) must outlive the reader. The reader starts with one
 * reference; drop it with sst_reader_close(). */
mica_err *sst_reader_open(env *e, const char *path, cache *block_cache,
                          sst_reader **out);

/* Takes another reference; each is dropped with sst_reader_close(). */
void sst_reader_ref(sst_reader *r);
/* Drops one reference; the last one closes the file and frees the reader.
 * Accepts NULL. */
void sst_reader_close(sst_reader *r);

typedef enum sst_get_result {
  SST_GET_ABSENT = 0,  /* no version of the key at or below the snapshot */
  SST_GET_PUT = 1,     /* newest visible version is a put; value filled */
  SST_GET_DELETED = 2  /* newest visible version is a delete */
} sst_get_result;

/* Finds the newest entry for `user_key` with seq <= snapshot_seq,
 * consulting the Bloom filter first. Sets *result; for SST_GET_PUT the
 * value replaces the contents of `value`. `seq` (may be NULL) receives the
 * entry's sequence number when one is found. Errors (corruption, I/O)
 * leave *result SST_GET_ABSENT. */
mica_err *sst_reader_get(sst_reader *r, slice user_key, uint64_t snapshot_seq,
                         sst_get_result *result, buf *value, uint64_t *seq);

/* An iterator over every entry, keys being internal keys, in both
 * directions, with seek and seek_for_prev by ikey_cmp. It holds a
 * reference on `r`. With `fill_cache` false, blocks it reads are not
 * inserted into the block cache (for compactions and full scans that
 * would only evict the hot set). Caller closes with iter_close(). */
iter *sst_reader_iter_new(sst_reader *r, bool fill_cache);

/* Valid while the caller holds a reference. */
const sst_properties *sst_reader_properties(const sst_reader *r);
uint64_t sst_reader_file_size(const sst_reader *r);
const char *sst_reader_path(const sst_reader *r);
/* True when the filter says `user_key` may be present (always true for a
 * file without a filter). */
bool sst_reader_may_contain(const sst_reader *r, slice user_key);

/* Byte offset in the file at which the data for `ikey` is or would be:
 * the offset of the data block that would hold it, or data_size when it
 * sorts after every entry. Monotone in `ikey`. Bytes too short to be an
 * internal key give 0. */
uint64_t sst_reader_approximate_offset(const sst_reader *r, slice ikey);

/* One data block as the index describes it. */
typedef struct sst_block_info {
  slice index_key; /* internal key >= every key in the block and < every
                      key of the next; valid while the reader is open */
  uint64_t offset; /* of the block in the file */
  uint64_t size;   /* on disk, trailer included */
} sst_block_info;

size_t sst_reader_num_blocks(const sst_reader *r);
/* Describes block `i` (< sst_reader_num_blocks). */
void sst_reader_block_info(const sst_reader *r, size_t i, sst_block_info *out);

/* Chooses a user key m that splits the file's data roughly in half by
 * bytes, restricted to user keys in [start, end) when those are given
 * (`start` or `end` with .data == NULL means unbounded). m satisfies
 * start < m < end, so both halves [start, m) and [m, end) are non-empty;
 * the bytes of m are written to `out` (replacing its contents). NOT_FOUND
 * when the range holds fewer than two distinct user keys. Reads at most
 * a few data blocks beyond the index. */
mica_err *sst_reader_middle_key(sst_reader *r, slice start, slice end,
                                buf *out);

/* Reads every block, checking every checksum, that keys strictly increase
 * and are valid internal keys, and that the properties (entry and deletion
 * counts, raw sizes, smallest/largest key and seq, block count) match the
 * data. The first problem found is returned as CORRUPTION naming the file
 * and offset. Does not use the block cache. */
mica_err *sst_reader_verify(sst_reader *r);

#endif
