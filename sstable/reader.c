/* reader: opens an SSTable, answers point reads, and iterates it.
 *
 * At open the footer is checked (size, magic, checksum, version) and the
 * properties, index and filter blocks are read, checksummed and validated
 * against each other; the index must describe data blocks that tile the
 * file from offset 0 to data_size with no gap, so no later block handle
 * can point outside the file. The index and filter then stay in memory.
 *
 * Data blocks are read on demand. A block read from the file is always
 * checksummed and decompressed once; with a block cache it is kept there
 * under (cache id of this open, block offset) and charged by its size, so
 * concurrent readers share it and a hit costs no read and no checksum.
 *
 * When the env maps the file (env_reader_map), blocks are "read" straight
 * from the map: no system call and no copy, which measured as half the
 * time of a point read that misses the cache (pread's copy out of the
 * page cache and its page lookups). Every block taken from the map is
 * still checksummed before use, exactly as one read with env_read; a
 * cached copy is taken only when the block goes into the block cache.
 * Envs that do not map (the fault env) get env_read, as before.
 *
 * The table iterator is two-level: a position in the in-memory index and a
 * cursor in the current block, pinning that block (a cache handle, an
 * owned buffer, or its read-ahead window) until it moves to another. Once
 * it has stepped forward into two blocks in a row it reads ahead, 32 KiB
 * at first and up to 256 KiB, so a long scan makes one read call per ~30
 * blocks instead of one each; any seek or backward step ends that. */
#include <lz4.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/crc32c.h"
#include "common/ikey.h"
#include "sstable/sst_int.h"

/* One data block in the in-memory index: one 64-byte cache line, with
 * the separator key inline when it fits (it nearly always does: separators
 * are shortened), so each step of the binary search that every point read
 * and seek does costs one cache miss rather than two. */
#define INLINE_KEY_BYTES 48

typedef struct index_entry {
  uint64_t offset;
  uint32_t size;    /* stored contents, trailer excluded (<= 256 MiB) */
  uint32_t key_len;
  union {
    uint8_t inl[INLINE_KEY_BYTES]; /* key_len <= INLINE_KEY_BYTES */
    size_t off;                    /* else: into sst_reader.index_keys */
  } k;
} index_entry;
_Static_assert(sizeof(index_entry) == 64, "an index entry is one cache line");

struct sst_reader {
  atomic_int refs;
  env_reader *f;
  const uint8_t *map; /* the whole file, or NULL: read with env_read */
  char *path;
  uint64_t file_size;
  cache *cache;       /* may be NULL */
  uint64_t cache_id;
  sst_properties props;
  size_t nblocks;
  index_entry *index;
  buf index_keys;
  buf filter;         /* empty when the file has none */
};

/* A decoded data block and who owns its bytes. */
typedef struct block_ref {
  cache_handle *h;    /* pinned cache entry, or NULL */
  uint8_t *owned;     /* bytes owned here when not cached */
  sst_block blk;
} block_ref;

typedef struct cached_block {
  uint8_t *data;
  sst_block blk;
} cached_block;

static mica_err *corrupt(const sst_reader *r, uint64_t offset, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

static mica_err *corrupt(const sst_reader *r, uint64_t offset, const char *fmt,
                         ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return err_new(MICA_CORRUPTION, "sst %s: %s at offset %llu", r->path, msg,
                 (unsigned long long)offset);
}

static slice index_key(const sst_reader *r, size_t i) {
  const index_entry *e = &r->index[i];
  return e->key_len <= INLINE_KEY_BYTES
             ? slice_make(e->k.inl, e->key_len)
             : slice_make(r->index_keys.data + e->k.off, e->key_len);
}

/* First block whose index key is >= `ik` (nblocks when none; `ik` holds
 * a trailer, as every index key does). */
static size_t index_lower_bound(const sst_reader *r, slice ik) {
  size_t lo = 0, hi = r->nblocks;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    slice k = index_key(r, mid);
    if (sst_ikey_cmp(k.data, k.len, ik.data, ik.len) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* ---- block reads ---- */

/* A window of file bytes read ahead by a sequential scan: one read serves
 * the next several blocks, which are still checksummed one by one. Off
 * until the scan proves sequential; then the window starts at 32 KiB and
 * doubles with each refill up to 256 KiB, so short scans (and the many
 * per-file iterators under one merging scan) stay small while long ones
 * make one read call per ~30 blocks. */
#define READAHEAD_MIN (32 * 1024)
#define READAHEAD_MAX (256 * 1024)

typedef struct readahead {
  bool on;
  size_t next;  /* size of the next refill; 0 means READAHEAD_MIN */
  uint64_t off; /* file offset of win.data[0] */
  buf win;
} readahead;

/* Fetches the stored bytes and trailer of the block at `h` into *raw:
 * from the file's map when there is one (*borrowed is then true and the
 * bytes stay valid until the reader closes), else from `ra`'s window when
 * it is on (refilling it as needed; *borrowed is then true and the bytes
 * stay valid until the window moves), else into a new buffer the caller
 * frees. */
static mica_err *fetch_block(const sst_reader *r, sst_handle h, const char *what,
                             readahead *ra, uint8_t **raw, bool *borrowed) {
  uint64_t limit = r->file_size - SST_FOOTER_SIZE;
  if (h.offset > limit || h.size > limit - h.offset ||
      limit - h.offset - h.size < SST_TRAILER_SIZE || h.size > SST_MAX_BLOCK_BYTES)
    return corrupt(r, h.offset, "%s block of %llu bytes runs past the data end %llu",
                   what, (unsigned long long)h.size, (unsigned long long)limit);
  size_t n = (size_t)h.size + SST_TRAILER_SIZE;
  size_t want = n;
  uint8_t *dst;
  if (r->map != NULL) {
    /* Valid until the reader closes; the range was checked above. */
    *borrowed = true;
    *raw = (uint8_t *)(uintptr_t)(r->map + h.offset);
    return NULL;
  }
  if (ra != NULL && ra->on) {
    *borrowed = true;
    if (h.offset >= ra->off && h.offset - ra->off + n <= ra->win.len) {
      *raw = ra->win.data + (h.offset - ra->off);
      return NULL;
    }
    size_t span = ra->next < READAHEAD_MIN ? READAHEAD_MIN : ra->next;
    ra->next = span < READAHEAD_MAX ? span * 2 : READAHEAD_MAX;
    if (want < span) want = span;
    if (want > limit - h.offset) want = (size_t)(limit - h.offset);
    buf_clear(&ra->win);
    buf_reserve(&ra->win, want);
    dst = ra->win.data;
  } else {
    *borrowed = false;
    dst = xmalloc(n);
  }
  size_t got = 0;
  mica_err *err = env_read(r->f, h.offset, want, dst, &got);
  if (err == NULL && got < n)
    err = corrupt(r, h.offset, "%s block truncated (%zu of %zu bytes)", what, got, n);
  else if (err != NULL)
    err = err_wrap(err, "sst %s: %s block at offset %llu", r->path, what,
                   (unsigned long long)h.offset);
  if (*borrowed) {
    ra->off = h.offset;
    ra->win.len = err == NULL ? got : 0;
  }
  if (err != NULL) {
    if (!*borrowed) free(dst);
    return err;
  }
  *raw = dst;
  return NULL;
}

/* Reads the block at `h` (through `ra` when not NULL), checks its
 * checksum, and returns its uncompressed contents in *out and *size, and
 * the stored block type in *type. When *borrowed is true the contents
 * live in `ra`'s window (valid until it moves); otherwise the caller frees
 * *out. `what` names the block in errors. */
static mica_err *read_block(const sst_reader *r, sst_handle h, const char *what,
                            readahead *ra, uint8_t **out, size_t *size, int *type,
                            bool *borrowed) {
  *out = NULL;
  uint8_t *raw = NULL;
  mica_err *err = fetch_block(r, h, what, ra, &raw, borrowed);
  if (err != NULL) return err;
  uint32_t crc = crc32c_extend(crc32c_value(raw, (size_t)h.size), raw + h.size, 1);
  if (crc32c_unmask(decode_fixed32(raw + h.size + 1)) != crc) {
    if (!*borrowed) free(raw);
    return corrupt(r, h.offset, "%s block checksum mismatch", what);
  }
  *type = raw[h.size];
  if (*type == SST_BLOCK_RAW) {
    *out = raw;
    *size = (size_t)h.size;
    return NULL;
  }
  uint32_t rawlen;
  const uint8_t *p = get_varint32(raw, raw + h.size, &rawlen);
  if (p == NULL || rawlen > SST_MAX_BLOCK_BYTES ||
      (*type != SST_BLOCK_LZ4 && *type != SST_BLOCK_ZSTD)) {
    if (!*borrowed) free(raw);
    return corrupt(r, h.offset, "%s block has unknown type %d or bad length", what,
                   *type);
  }
  uint8_t *dst = xmalloc(rawlen > 0 ? rawlen : 1);
  size_t clen = (size_t)(raw + h.size - p);
  bool ok;
  if (*type == SST_BLOCK_LZ4) {
    int d = LZ4_decompress_safe((const char *)p, (char *)dst, (int)clen, (int)rawlen);
    ok = d >= 0 && (uint32_t)d == rawlen;
  } else {
    size_t d = ZSTD_decompress(dst, rawlen, p, clen);
    ok = !ZSTD_isError(d) && d == rawlen;
  }
  if (!*borrowed) free(raw);
  *borrowed = false;
  if (!ok) {
    free(dst);
    return corrupt(r, h.offset, "%s block does not decompress", what);
  }
  *out = dst;
  *size = rawlen;
  return NULL;
}

/* read_block for the metadata blocks read once at open, into a buffer
 * the caller frees (copied out of the map when the file is mapped). */
static mica_err *read_meta_block(const sst_reader *r, sst_handle h, const char *what,
                                 uint8_t **out, size_t *size, int *type) {
  bool borrowed;
  mica_err *err = read_block(r, h, what, NULL, out, size, type, &borrowed);
  if (err == NULL && borrowed) *out = xmemdup(*out, *size > 0 ? *size : 1);
  return err;
}

/* The cached_block itself is the cache entry's own copy
 * (cache_insert_copy), so only the block's bytes are freed here. */
static void cached_block_delete(slice key, void *value) {
  (void)key;
  free(((cached_block *)value)->data);
}

static void block_ref_release(const sst_reader *r, block_ref *ref) {
  if (ref->h != NULL) cache_release(r->cache, ref->h);
  free(ref->owned);
  ref->h = NULL;
  ref->owned = NULL;
}

/* Loads data block `i` into `ref` (released first). Uses the reader's
 * cache, if any, when `use_cache`; inserts what it read only when
 * `fill_cache` too. Reads through `ra` when not NULL. *type_out (may be
 * NULL) gets the stored block type, or -1 for a cache hit. */
static mica_err *load_block(const sst_reader *r, size_t i, bool use_cache,
                            bool fill_cache, readahead *ra, block_ref *ref,
                            int *type_out) {
  block_ref_release(r, ref);
  const index_entry *ie = &r->index[i];
  uint8_t key[16];
  use_cache = use_cache && r->cache != NULL;
  if (use_cache) {
    encode_fixed64(key, r->cache_id);
    encode_fixed64(key + 8, ie->offset);
    cache_handle *h = cache_lookup(r->cache, slice_make(key, sizeof key));
    if (h != NULL) {
      ref->h = h;
      ref->blk = ((cached_block *)cache_value(h))->blk;
      if (type_out != NULL) *type_out = -1;
      return NULL;
    }
  }
  uint8_t *data;
  size_t size;
  int type;
  bool borrowed;
  sst_handle hd = {ie->offset, ie->size};
  mica_err *err = read_block(r, hd, "data", ra, &data, &size, &type, &borrowed);
  if (err != NULL) return err;
  if (type_out != NULL) *type_out = type;
  bool cache_it = use_cache && fill_cache;
  if (borrowed && cache_it) {
    data = xmemdup(data, size);
    borrowed = false;
  }
  sst_block blk;
  if (!sst_block_parse(data, size, &blk)) {
    if (!borrowed) free(data);
    return corrupt(r, ie->offset, "data block has a malformed restart array");
  }
  ref->blk = blk;
  if (cache_it) {
    cached_block cb = {data, blk};
    ref->h = cache_insert_copy(r->cache, slice_make(key, sizeof key), &cb,
                               sizeof cb, size + sizeof cb,
                               cached_block_delete);
  } else if (!borrowed) {
    ref->owned = data;
  }
  return NULL;
}

/* ---- open and close ---- */

static mica_err *read_footer(sst_reader *r, sst_handle *index_h,
                             sst_handle *filter_h, sst_handle *props_h) {
  if (r->file_size < SST_FOOTER_SIZE)
    return corrupt(r, 0, "file of %llu bytes is shorter than the %d-byte footer",
                   (unsigned long long)r->file_size, SST_FOOTER_SIZE);
  uint64_t off = r->file_size - SST_FOOTER_SIZE;
  uint8_t ft[SST_FOOTER_SIZE];
  size_t got = 0;
  mica_err *err = env_read(r->f, off, sizeof ft, ft, &got);
  if (err != NULL) return err_wrap(err, "sst %s: footer", r->path);
  if (got != sizeof ft) return corrupt(r, off, "footer truncated");
  if (decode_fixed64(ft + 56) != SST_MAGIC)
    return corrupt(r, off + 56, "bad magic number (not an SSTable)");
  if (crc32c_unmask(decode_fixed32(ft + 52)) != crc32c_value(ft, 52))
    return corrupt(r, off, "footer checksum mismatch");
  uint32_t version = decode_fixed32(ft + 48);
  if (version != SST_FORMAT_VERSION)
    return corrupt(r, off + 48, "unknown format version %u (this build reads %d)",
                   version, SST_FORMAT_VERSION);
  index_h->offset = decode_fixed64(ft + 0);
  index_h->size = decode_fixed64(ft + 8);
  filter_h->offset = decode_fixed64(ft + 16);
  filter_h->size = decode_fixed64(ft + 24);
  props_h->offset = decode_fixed64(ft + 32);
  props_h->size = decode_fixed64(ft + 40);
  return NULL;
}

static mica_err *read_index(sst_reader *r, sst_handle h) {
  uint8_t *data;
  size_t size;
  int type;
  mica_err *err = read_meta_block(r, h, "index", &data, &size, &type);
  if (err != NULL) return err;
  sst_block blk;
  if (type != SST_BLOCK_RAW || !sst_block_parse(data, size, &blk)) {
    free(data);
    return corrupt(r, h.offset, "index block is malformed");
  }
  uint64_t n = r->props.num_data_blocks;
  if (n > size) { /* each entry takes several bytes: a bigger count lies */
    free(data);
    return corrupt(r, h.offset, "index block cannot hold %llu entries",
                   (unsigned long long)n);
  }
  if (posix_memalign((void **)&r->index, 64, (n > 0 ? n : 1) * sizeof *r->index) != 0)
    r->index = NULL;
  if (r->index == NULL) {
    free(data);
    return err_new(MICA_RESOURCE_EXHAUSTED, "sst %s: no memory for an index of %llu "
                   "blocks", r->path, (unsigned long long)n);
  }
  sst_block_cursor c;
  sst_bc_init(&c, &blk);
  uint64_t expect = 0;
  size_t i = 0;
  for (sst_bc_first(&c); sst_bc_valid(&c); sst_bc_next(&c), i++) {
    sst_handle bh;
    const uint8_t *p = get_varint64(c.value.data, c.value.data + c.value.len, &bh.offset);
    if (p != NULL) p = get_varint64(p, c.value.data + c.value.len, &bh.size);
    if (i >= n || p != c.value.data + c.value.len || bh.offset != expect ||
        bh.size > SST_MAX_BLOCK_BYTES || c.key.len > UINT32_MAX ||
        bh.size > r->props.data_size - expect ||
        r->props.data_size - expect - bh.size < SST_TRAILER_SIZE ||
        (i > 0 && ikey_cmp(index_key(r, i - 1), buf_slice(&c.key)) >= 0)) {
      err = corrupt(r, h.offset, "index entry %zu is inconsistent", i);
      break;
    }
    index_entry *e = &r->index[i];
    e->offset = bh.offset;
    e->size = (uint32_t)bh.size;
    e->key_len = (uint32_t)c.key.len;
    if (c.key.len <= INLINE_KEY_BYTES) {
      memcpy(e->k.inl, c.key.data, c.key.len);
    } else {
      e->k.off = r->index_keys.len;
      buf_append_slice(&r->index_keys, buf_slice(&c.key));
    }
    expect = bh.offset + bh.size + SST_TRAILER_SIZE;
  }
  if (err == NULL && c.corrupt)
    err = corrupt(r, h.offset, "index block entry does not decode");
  if (err == NULL && (i != n || expect != r->props.data_size))
    err = corrupt(r, h.offset, "index describes %zu blocks ending at %llu, properties "
                  "say %llu blocks ending at %llu", i, (unsigned long long)expect,
                  (unsigned long long)n, (unsigned long long)r->props.data_size);
  sst_bc_free(&c);
  free(data);
  r->nblocks = i;
  return err;
}

static mica_err *reader_load(sst_reader *r) {
  sst_handle index_h = {0, 0}, filter_h = {0, 0}, props_h = {0, 0};
  mica_err *err = read_footer(r, &index_h, &filter_h, &props_h);
  if (err != NULL) return err;
  uint64_t footer_off = r->file_size - SST_FOOTER_SIZE;

  uint8_t *data;
  size_t size;
  int type;
  err = read_meta_block(r, props_h, "properties", &data, &size, &type);
  if (err != NULL) return err;
  bool ok = type == SST_BLOCK_RAW &&
            sst_props_decode(slice_make(data, size), &r->props);
  free(data);
  if (!ok) return corrupt(r, props_h.offset, "properties block is malformed");
  sst_properties *p = &r->props;
  p->format_version = SST_FORMAT_VERSION;
  p->index_size = index_h.size + SST_TRAILER_SIZE;
  bool has_filter = filter_h.offset != 0 || filter_h.size != 0;
  p->filter_size = has_filter ? filter_h.size + SST_TRAILER_SIZE : 0;
  /* Data blocks come first, then filter, properties, index, footer. */
  uint64_t meta_start = has_filter ? filter_h.offset : props_h.offset;
  if (p->data_size != meta_start || index_h.offset < props_h.offset ||
      (p->num_entries == 0) != (p->num_data_blocks == 0) ||
      p->num_deletions > p->num_entries || p->compression > SST_COMPRESS_ZSTD ||
      (p->num_entries > 0 &&
       (p->smallest_key.len == 0 || p->largest_key.len == 0)) ||
      (has_filter && p->num_entries == 0) ||
      (!has_filter && p->num_entries > 0 && p->bloom_bits_per_key > 0))
    return corrupt(r, footer_off, "footer and properties disagree on the layout");

  err = read_index(r, index_h);
  if (err != NULL) return err;

  if (has_filter) {
    err = read_meta_block(r, filter_h, "filter", &data, &size, &type);
    if (err != NULL) return err;
    if (type != SST_BLOCK_RAW || size < 65 || (size - 1) % 64 != 0 ||
        data[size - 1] < 1 || data[size - 1] > 30) {
      free(data);
      return corrupt(r, filter_h.offset, "filter block is malformed");
    }
    r->filter.data = data;
    r->filter.len = r->filter.cap = size;
  }
  return NULL;
}

mica_err *sst_reader_open(env *e, const char *path, cache *block_cache,
                          sst_reader **out) {
  *out = NULL;
  env_reader *f;
  mica_err *err = env_open_reader(e, path, &f);
  if (err != NULL) return err;
  sst_reader *r = xcalloc(1, sizeof *r);
  atomic_init(&r->refs, 1);
  r->f = f;
  r->path = xstrdup(path);
  r->file_size = env_reader_size(f);
  r->cache = block_cache;
  /* Mapping is only a faster way to read: any refusal means env_read. */
  mica_err *map_err = env_reader_map(f, &r->map);
  if (map_err != NULL) {
    r->map = NULL;
    err_free(map_err);
  }
  err = reader_load(r);
  if (err != NULL) {
    sst_reader_close(r);
    return err;
  }
  if (block_cache != NULL) r->cache_id = cache_new_id(block_cache);
  *out = r;
  return NULL;
}

void sst_reader_ref(sst_reader *r) { atomic_fetch_add(&r->refs, 1); }

void sst_reader_close(sst_reader *r) {
  if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1) return;
  env_reader_close(r->f);
  sst_properties_clear(&r->props);
  free(r->index);
  buf_free(&r->index_keys);
  buf_free(&r->filter);
  free(r->path);
  free(r);
}

/* ---- accessors ---- */

const sst_properties *sst_reader_properties(const sst_reader *r) { return &r->props; }
uint64_t sst_reader_file_size(const sst_reader *r) { return r->file_size; }
const char *sst_reader_path(const sst_reader *r) { return r->path; }
size_t sst_reader_num_blocks(const sst_reader *r) { return r->nblocks; }

void sst_reader_block_info(const sst_reader *r, size_t i, sst_block_info *out) {
  out->index_key = index_key(r, i);
  out->offset = r->index[i].offset;
  out->size = r->index[i].size + SST_TRAILER_SIZE;
}

bool sst_reader_may_contain(const sst_reader *r, slice user_key) {
  if (r->filter.len == 0) return true;
  return sst_bloom_may_contain(buf_slice(&r->filter), sst_bloom_hash(user_key));
}

uint64_t sst_reader_approximate_offset(const sst_reader *r, slice ik) {
  if (ik.len < IKEY_TRAILER) return 0; /* not an internal key: sorts first */
  size_t i = index_lower_bound(r, ik);
  return i < r->nblocks ? r->index[i].offset : r->props.data_size;
}

/* ---- point reads ---- */

mica_err *sst_reader_get(sst_reader *r, slice user_key, uint64_t snapshot_seq,
                         sst_get_result *result, buf *value, uint64_t *seq) {
  *result = SST_GET_ABSENT;
  if (!sst_reader_may_contain(r, user_key)) return NULL;
  if (snapshot_seq > IKEY_MAX_SEQ) snapshot_seq = IKEY_MAX_SEQ;
  /* The seek key, on the stack for all but very long keys: a point read
   * should not cost an allocation for it. */
  uint8_t stack_key[256];
  size_t tlen = user_key.len + IKEY_TRAILER;
  uint8_t *tk = tlen <= sizeof stack_key ? stack_key : xmalloc(tlen);
  if (user_key.len > 0) memcpy(tk, user_key.data, user_key.len);
  encode_fixed64(tk + user_key.len, snapshot_seq << 8 | IKEY_SEEK_KIND);
  slice target = slice_make(tk, tlen);
  size_t i = index_lower_bound(r, target);
  block_ref ref = {0};
  sst_block_cursor c;
  sst_bc_init(&c, NULL);
  mica_err *err = NULL;
  /* The target sorts at or before block i's index key, so the answer is in
   * block i or, when the target falls after its last key, first in i+1. */
  for (; i < r->nblocks; i++) {
    err = load_block(r, i, true, true, NULL, &ref, NULL);
    if (err != NULL) break;
    sst_bc_set(&c, &ref.blk);
    sst_bc_seek(&c, target);
    if (c.corrupt) {
      err = corrupt(r, r->index[i].offset, "data block entry does not decode");
      break;
    }
    if (sst_bc_valid(&c)) {
      ikey_parts parts;
      ikey_parse(buf_slice(&c.key), &parts);
      if (slice_eq(parts.user_key, user_key)) {
        if (seq != NULL) *seq = parts.seq;
        if (parts.kind == IKEY_PUT) {
          *result = SST_GET_PUT;
          buf_clear(value);
          buf_append_slice(value, c.value);
        } else {
          *result = SST_GET_DELETED;
        }
      }
      break;
    }
  }
  sst_bc_free(&c);
  block_ref_release(r, &ref);
  if (tk != stack_key) free(tk);
  return err;
}

/* ---- iterator ---- */

typedef struct sst_iter {
  iter base;
  sst_reader *r;
  bool fill_cache;
  bool has_block;
  size_t bi;           /* block of the cursor when has_block */
  block_ref ref;
  sst_block_cursor c;
  mica_err *err;       /* sticky */
  int forward_steps;   /* consecutive moves to the next block */
  readahead ra;        /* turned on by the second consecutive forward move */
  struct sst_iter *next_spare; /* in a thread's spare list */
} sst_iter;

/* Spare iterators, per thread: a tablet seek builds and closes one table
 * iterator per file it reads, so a closed one is kept (with its key
 * buffer) for the thread's next, up to SPARE_ITERS; the rest are freed.
 * A thread's spares are freed when it exits. */
#define SPARE_ITERS 16
/* Read-ahead windows above this are freed rather than kept with a spare. */
#define SPARE_WINDOW_BYTES (64 * 1024)

typedef struct spare_list {
  sst_iter *head;
  int n;
} spare_list;

static pthread_key_t g_spare_key;
static pthread_once_t g_spare_once = PTHREAD_ONCE_INIT;

static void sst_iter_free(sst_iter *it) {
  sst_bc_free(&it->c);
  buf_free(&it->ra.win);
  free(it);
}

static void spare_list_free(void *p) {
  spare_list *l = p;
  while (l->head != NULL) {
    sst_iter *it = l->head;
    l->head = it->next_spare;
    sst_iter_free(it);
  }
  free(l);
}

static void spare_key_init(void) {
  if (pthread_key_create(&g_spare_key, spare_list_free) != 0) abort();
}

static spare_list *thread_spares(void) {
  pthread_once(&g_spare_once, spare_key_init);
  spare_list *l = pthread_getspecific(g_spare_key);
  if (l == NULL) {
    l = xcalloc(1, sizeof *l);
    if (pthread_setspecific(g_spare_key, l) != 0) {
      free(l);
      return NULL;
    }
  }
  return l;
}

static void it_set_block(sst_iter *it, size_t i) {
  it->has_block = false;
  sst_bc_set(&it->c, NULL);
  mica_err *err = load_block(it->r, i, true, it->fill_cache, &it->ra, &it->ref, NULL);
  if (err != NULL) {
    it->err = err;
    return;
  }
  it->bi = i;
  it->has_block = true;
  sst_bc_set(&it->c, &it->ref.blk);
}

/* Turns a cursor decode failure into the iterator's error. */
static bool it_check(sst_iter *it) {
  if (it->has_block && it->c.corrupt) {
    it->err = corrupt(it->r, it->r->index[it->bi].offset,
                      "data block entry does not decode");
    it->has_block = false;
    return false;
  }
  return it->err == NULL;
}

/* Called by every positioning call: a seek ends any sequential run. */
static void it_random_access(sst_iter *it) {
  it->forward_steps = 0;
  it->ra.on = false;
  it->ra.next = 0;
}

static void it_skip_forward(sst_iter *it) {
  while (it_check(it) && it->has_block && !sst_bc_valid(&it->c)) {
    if (it->bi + 1 >= it->r->nblocks) {
      it->has_block = false;
      return;
    }
    if (++it->forward_steps >= 2) it->ra.on = true;
    it_set_block(it, it->bi + 1);
    if (it->has_block) sst_bc_first(&it->c);
  }
}

static void it_skip_backward(sst_iter *it) {
  while (it_check(it) && it->has_block && !sst_bc_valid(&it->c)) {
    if (it->bi == 0) {
      it->has_block = false;
      return;
    }
    it_set_block(it, it->bi - 1);
    if (it->has_block) sst_bc_last(&it->c);
  }
}

static bool it_valid(iter *base) {
  sst_iter *it = (sst_iter *)base;
  return it->err == NULL && it->has_block && sst_bc_valid(&it->c);
}

static void it_seek_to_first(iter *base) {
  sst_iter *it = (sst_iter *)base;
  if (it->err != NULL) return;
  it_random_access(it);
  it->has_block = false;
  if (it->r->nblocks == 0) return;
  it_set_block(it, 0);
  if (it->has_block) sst_bc_first(&it->c);
  it_skip_forward(it);
}

static void it_seek_to_last(iter *base) {
  sst_iter *it = (sst_iter *)base;
  if (it->err != NULL) return;
  it_random_access(it);
  it->has_block = false;
  if (it->r->nblocks == 0) return;
  it_set_block(it, it->r->nblocks - 1);
  if (it->has_block) sst_bc_last(&it->c);
  it_skip_backward(it);
}

static void it_seek(iter *base, slice target) {
  sst_iter *it = (sst_iter *)base;
  if (it->err != NULL) return;
  it_random_access(it);
  it->has_block = false;
  if (target.len < IKEY_TRAILER) {
    it->err = err_new(MICA_INVALID_ARGUMENT, "sst %s: seek target is not an internal key",
                      it->r->path);
    return;
  }
  size_t i = index_lower_bound(it->r, target);
  if (i >= it->r->nblocks) return;
  it_set_block(it, i);
  if (it->has_block) sst_bc_seek(&it->c, target);
  it_skip_forward(it);
}

static void it_seek_for_prev(iter *base, slice target) {
  sst_iter *it = (sst_iter *)base;
  it_seek(base, target);
  if (it->err != NULL) return;
  if (!it_valid(base)) {
    it_seek_to_last(base);
  } else if (ikey_cmp(buf_slice(&it->c.key), target) > 0) {
    sst_bc_prev(&it->c);
    it_skip_backward(it);
  }
}

static void it_next(iter *base) {
  sst_iter *it = (sst_iter *)base;
  if (!it_valid(base)) return;
  sst_bc_next(&it->c);
  if (!sst_bc_valid(&it->c)) it_skip_forward(it);
}

static void it_prev(iter *base) {
  sst_iter *it = (sst_iter *)base;
  if (!it_valid(base)) return;
  sst_bc_prev(&it->c);
  if (!sst_bc_valid(&it->c)) {
    it_random_access(it);
    it_skip_backward(it);
  }
}

static slice it_key(iter *base) {
  sst_iter *it = (sst_iter *)base;
  return buf_slice(&it->c.key);
}

static slice it_value(iter *base) { return ((sst_iter *)base)->c.value; }

static const mica_err *it_status(iter *base) { return ((sst_iter *)base)->err; }

static void it_close(iter *base) {
  sst_iter *it = (sst_iter *)base;
  block_ref_release(it->r, &it->ref);
  err_free(it->err);
  it->err = NULL;
  sst_reader_close(it->r);
  it->r = NULL;
  spare_list *l = thread_spares();
  if (l == NULL || l->n >= SPARE_ITERS) {
    sst_iter_free(it);
    return;
  }
  if (it->ra.win.cap > SPARE_WINDOW_BYTES) buf_free(&it->ra.win);
  it->next_spare = l->head;
  l->head = it;
  l->n++;
}

static const struct iter_ops sst_iter_ops = {
    .valid = it_valid,
    .seek_to_first = it_seek_to_first,
    .seek_to_last = it_seek_to_last,
    .seek = it_seek,
    .seek_for_prev = it_seek_for_prev,
    .next = it_next,
    .prev = it_prev,
    .key = it_key,
    .value = it_value,
    .status = it_status,
    .close = it_close,
};

iter *sst_reader_iter_new(sst_reader *r, bool fill_cache) {
  spare_list *l = thread_spares();
  sst_iter *it;
  if (l != NULL && l->head != NULL) {
    /* A spare: everything but its key buffer and read-ahead window
     * starts over, as in a new one. */
    it = l->head;
    l->head = it->next_spare;
    l->n--;
    buf key = it->c.key, win = it->ra.win;
    memset(it, 0, sizeof *it);
    sst_bc_init(&it->c, NULL);
    it->c.key = key;
    it->c.key.len = 0;
    it->ra.win = win;
    it->ra.win.len = 0;
  } else {
    it = xcalloc(1, sizeof *it);
    sst_bc_init(&it->c, NULL);
  }
  it->base.ops = &sst_iter_ops;
  sst_reader_ref(r);
  it->r = r;
  it->fill_cache = fill_cache;
  return &it->base;
}

/* ---- middle key ---- */

static void it_block_first(sst_iter *it, size_t i) {
  it_random_access(it);
  it->has_block = false;
  it_set_block(it, i);
  if (it->has_block) sst_bc_first(&it->c);
  it_skip_forward(it);
}

mica_err *sst_reader_middle_key(sst_reader *r, slice start, slice end, buf *out) {
  sst_iter *it = (sst_iter *)sst_reader_iter_new(r, false);
  iter *base = &it->base;
  buf first = BUF_INIT, bound = BUF_INIT;
  mica_err *err = NULL;
  bool found = false;
  bool has_end = end.data != NULL;

  if (start.data != NULL) {
    ikey_append(&bound, start, IKEY_MAX_SEQ, IKEY_SEEK_KIND);
    it_seek(base, buf_slice(&bound));
  } else {
    it_seek_to_first(base);
  }
  if (!it_valid(base)) goto done;
  buf_append_slice(&first, ikey_user_key(it_key(base)));
  if (has_end && slice_cmp(buf_slice(&first), end) >= 0) goto done;

  /* The byte span of the blocks holding the range, and the block in which
   * its middle falls. */
  size_t lo = it->bi, hi = r->nblocks - 1;
  if (has_end) {
    buf_clear(&bound);
    ikey_append(&bound, end, IKEY_MAX_SEQ, IKEY_SEEK_KIND);
    size_t e = index_lower_bound(r, buf_slice(&bound));
    if (e < hi) hi = e;
  }
  uint64_t lo_off = r->index[lo].offset;
  uint64_t hi_end = r->index[hi].offset + r->index[hi].size + SST_TRAILER_SIZE;
  uint64_t mid = lo_off + (hi_end - lo_off) / 2;
  size_t m = lo;
  while (m < hi && r->index[m].offset + r->index[m].size + SST_TRAILER_SIZE <= mid) m++;

  /* The first user key after `first` from the start of that block on;
   * failing that, the last one before it. */
  if (m > lo) it_block_first(it, m);
  for (; it_valid(base); it_next(base)) {
    slice uk = ikey_user_key(it_key(base));
    if (has_end && slice_cmp(uk, end) >= 0) break;
    if (slice_cmp(uk, buf_slice(&first)) > 0) {
      found = true;
      break;
    }
  }
  if (!found && it->err == NULL && m > lo) {
    it_block_first(it, m);
    if (it_valid(base)) {
      it_prev(base);
    } else if (it->err == NULL) {
      it_seek_to_last(base);
    }
    for (; it_valid(base); it_prev(base)) {
      slice uk = ikey_user_key(it_key(base));
      if (slice_cmp(uk, buf_slice(&first)) <= 0) break;
      if (!has_end || slice_cmp(uk, end) < 0) {
        found = true;
        break;
      }
    }
  }
done:
  if (it->err != NULL) {
    err = err_dup(it->err);
  } else if (found) {
    buf_clear(out);
    buf_append_slice(out, ikey_user_key(it_key(base)));
  } else {
    err = err_new(MICA_NOT_FOUND, "sst %s: fewer than two user keys in the range",
                  r->path);
  }
  buf_free(&first);
  buf_free(&bound);
  it_close(base);
  return err;
}

/* ---- verify ---- */

mica_err *sst_reader_verify(sst_reader *r) {
  const sst_properties *p = &r->props;
  sst_properties seen = {0};
  buf prev = BUF_INIT;
  block_ref ref = {0};
  sst_block_cursor c;
  sst_bc_init(&c, NULL);
  mica_err *err = NULL;
  uint64_t raw_data = 0, compressed = 0;
  readahead ra = {.on = true};

  for (size_t i = 0; i < r->nblocks && err == NULL; i++) {
    int type;
    uint64_t off = r->index[i].offset;
    /* The cache is bypassed so that every block really is read and
     * checksummed from the file. */
    err = load_block(r, i, false, false, &ra, &ref, &type);
    if (err != NULL) break;
    raw_data += ref.blk.size + SST_TRAILER_SIZE;
    if (type != SST_BLOCK_RAW) compressed++;
    if (!sst_block_restarts_ok(&ref.blk)) {
      err = corrupt(r, off, "data block restart point is not at a whole-key entry");
      break;
    }
    sst_bc_set(&c, &ref.blk);
    size_t n = 0;
    for (sst_bc_first(&c); sst_bc_valid(&c); sst_bc_next(&c), n++) {
      slice k = buf_slice(&c.key);
      ikey_parts parts;
      ikey_parse(k, &parts);
      if (seen.num_entries > 0 && ikey_cmp(buf_slice(&prev), k) >= 0) {
        err = corrupt(r, off, "keys out of order in data block");
        break;
      }
      if (i > 0 && n == 0 && ikey_cmp(index_key(r, i - 1), k) >= 0) {
        err = corrupt(r, off, "first key of the block is not above the index key "
                      "of the block before");
        break;
      }
      if (ikey_cmp(k, index_key(r, i)) > 0) {
        err = corrupt(r, off, "key above the block's index key");
        break;
      }
      if (!sst_reader_may_contain(r, parts.user_key) ) {
        err = corrupt(r, off, "filter misses a key that is present");
        break;
      }
      if (seen.num_entries == 0) {
        buf_append_slice(&seen.smallest_key, k);
        seen.smallest_seq = seen.largest_seq = parts.seq;
      }
      if (parts.seq < seen.smallest_seq) seen.smallest_seq = parts.seq;
      if (parts.seq > seen.largest_seq) seen.largest_seq = parts.seq;
      seen.num_entries++;
      if (parts.kind == IKEY_DELETE) seen.num_deletions++;
      seen.raw_key_bytes += k.len;
      seen.raw_value_bytes += c.value.len;
      buf_clear(&prev);
      buf_append_slice(&prev, k);
    }
    if (err == NULL && c.corrupt) err = corrupt(r, off, "data block entry does not decode");
    if (err == NULL && n == 0) err = corrupt(r, off, "data block holds no entries");
  }
  if (err == NULL) {
    buf_append_slice(&seen.largest_key, buf_slice(&prev));
    uint64_t footer_off = r->file_size - SST_FOOTER_SIZE;
    if (seen.num_entries != p->num_entries || seen.num_deletions != p->num_deletions ||
        seen.raw_key_bytes != p->raw_key_bytes ||
        seen.raw_value_bytes != p->raw_value_bytes ||
        seen.smallest_seq != p->smallest_seq || seen.largest_seq != p->largest_seq ||
        !slice_eq(buf_slice(&seen.smallest_key), buf_slice(&p->smallest_key)) ||
        !slice_eq(buf_slice(&seen.largest_key), buf_slice(&p->largest_key)) ||
        raw_data != p->raw_data_size || compressed != p->num_compressed_blocks)
      err = corrupt(r, footer_off, "properties do not match the data");
  }
  sst_bc_free(&c);
  block_ref_release(r, &ref);
  buf_free(&ra.win);
  buf_free(&prev);
  sst_properties_clear(&seen);
  return err;
}
