/* builder: writes an SSTable from entries given in sorted order.
 *
 * Entries fill a data block until it reaches the target size; the block is
 * then compressed if that pays (saves at least 1/8), given its trailer and
 * queued for writing. Its index entry waits for the next key, so the
 * separator between the two blocks can be shortened (ikey_separator). The
 * filter hashes each distinct user key once. finish() appends the filter,
 * properties and index blocks and the footer, syncs and closes.
 *
 * Output is gathered into a write buffer of about 128 KiB and appended in
 * one call, because the env may not buffer and a call per 8 KiB block
 * costs measurable build throughput. The first failed append or sync
 * sticks: every later call returns a copy, and finish/abandon remove the
 * file, so a failed build never leaves a file that opens as valid. */
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/crc32c.h"
#include "common/ikey.h"
#include "sstable/sst_int.h"

#define WRITE_BUFFER_BYTES (128 * 1024)

struct sst_builder {
  env *e;
  env_writer *w;
  char *path;
  sst_options o;
  mica_err *err;          /* sticky I/O error; NULL while healthy */

  sst_block_builder data;
  sst_block_builder index;
  buf last_key;           /* last key added; empty before the first */
  bool pending_index;     /* the block at pending_handle awaits its entry */
  sst_handle pending_handle;

  uint64_t *hashes;       /* one per distinct user key, for the filter */
  size_t nhashes, hashes_cap;

  uint64_t offset;        /* bytes of the file so far, buffered included */
  buf wbuf;               /* bytes not yet handed to the env */
  buf cbuf;               /* compression scratch */
  ZSTD_CCtx *zctx;

  sst_properties props;
};

void sst_options_init(sst_options *o) {
  o->block_size = SST_DEFAULT_BLOCK_SIZE;
  o->restart_interval = SST_DEFAULT_RESTART_INTERVAL;
  o->bloom_bits_per_key = SST_DEFAULT_BLOOM_BITS;
  o->compression = SST_COMPRESS_NONE;
  o->zstd_level = 3;
}

mica_err *sst_options_check(const sst_options *o) {
  if (o->block_size < 1024 || o->block_size > (4u << 20))
    return err_new(MICA_INVALID_ARGUMENT, "sst block_size %zu not in 1 KiB..4 MiB",
                   o->block_size);
  if (o->restart_interval < 1 || o->restart_interval > 1024)
    return err_new(MICA_INVALID_ARGUMENT, "sst restart_interval %d not in 1..1024",
                   o->restart_interval);
  if (o->bloom_bits_per_key < 0 || o->bloom_bits_per_key > 32)
    return err_new(MICA_INVALID_ARGUMENT, "sst bloom_bits_per_key %d not in 0..32",
                   o->bloom_bits_per_key);
  if (o->compression != SST_COMPRESS_NONE && o->compression != SST_COMPRESS_LZ4 &&
      o->compression != SST_COMPRESS_ZSTD)
    return err_new(MICA_INVALID_ARGUMENT, "sst compression %d unknown",
                   (int)o->compression);
  if (o->compression == SST_COMPRESS_ZSTD &&
      (o->zstd_level < 1 || o->zstd_level > 19))
    return err_new(MICA_INVALID_ARGUMENT, "sst zstd_level %d not in 1..19",
                   o->zstd_level);
  return NULL;
}

mica_err *sst_builder_new(env *e, const char *path, const sst_options *opts,
                          sst_builder **out) {
  *out = NULL;
  sst_options defaults;
  if (opts == NULL) {
    sst_options_init(&defaults);
    opts = &defaults;
  }
  mica_err *err = sst_options_check(opts);
  if (err != NULL) return err;
  env_writer *w;
  err = env_open_writer(e, path, ENV_TRUNCATE, &w);
  if (err != NULL) return err;
  sst_builder *b = xcalloc(1, sizeof *b);
  b->e = e;
  b->w = w;
  b->path = xstrdup(path);
  b->o = *opts;
  sst_bb_init(&b->data, opts->restart_interval);
  /* Index entries are all restarts so that a reader can hold their keys
   * without rebuilding prefixes, and binary-search them directly. */
  sst_bb_init(&b->index, 1);
  b->props.format_version = SST_FORMAT_VERSION;
  b->props.block_size = (uint32_t)opts->block_size;
  b->props.restart_interval = (uint32_t)opts->restart_interval;
  b->props.bloom_bits_per_key = (uint32_t)opts->bloom_bits_per_key;
  b->props.compression = (uint32_t)opts->compression;
  if (opts->compression == SST_COMPRESS_ZSTD) b->zctx = ZSTD_createCCtx();
  *out = b;
  return NULL;
}

static void builder_free(sst_builder *b) {
  sst_bb_free(&b->data);
  sst_bb_free(&b->index);
  buf_free(&b->last_key);
  buf_free(&b->wbuf);
  buf_free(&b->cbuf);
  free(b->hashes);
  ZSTD_freeCCtx(b->zctx);
  sst_properties_clear(&b->props);
  err_free(b->err);
  free(b->path);
  free(b);
}

static void flush_wbuf(sst_builder *b) {
  if (b->err != NULL || b->wbuf.len == 0) return;
  b->err = env_append(b->w, b->wbuf.data, b->wbuf.len);
  buf_clear(&b->wbuf);
}

/* Queues `contents` (already encoded) with its trailer and returns where
 * it lands in `*h`. */
static void emit_block(sst_builder *b, slice contents, uint8_t type,
                       sst_handle *h) {
  h->offset = b->offset;
  h->size = contents.len;
  uint8_t trailer[SST_TRAILER_SIZE];
  trailer[0] = type;
  uint32_t crc = crc32c_extend(crc32c_value(contents.data, contents.len),
                               trailer, 1);
  encode_fixed32(trailer + 1, crc32c_mask(crc));
  if (b->wbuf.len + contents.len > WRITE_BUFFER_BYTES) {
    flush_wbuf(b);
    if (contents.len >= WRITE_BUFFER_BYTES && b->err == NULL)
      b->err = env_append(b->w, contents.data, contents.len);
    else
      buf_append_slice(&b->wbuf, contents);
  } else {
    buf_append_slice(&b->wbuf, contents);
  }
  buf_append(&b->wbuf, trailer, sizeof trailer);
  b->offset += contents.len + SST_TRAILER_SIZE;
  if (b->wbuf.len >= WRITE_BUFFER_BYTES) flush_wbuf(b);
}

/* Compresses `raw` into b->cbuf as varint32 raw length + payload; true
 * when that saves at least an eighth of the raw size. */
static bool compress_block(sst_builder *b, slice raw) {
  buf_clear(&b->cbuf);
  put_varint32(&b->cbuf, (uint32_t)raw.len);
  size_t hdr = b->cbuf.len;
  size_t n;
  if (b->o.compression == SST_COMPRESS_LZ4) {
    int bound = LZ4_compressBound((int)raw.len);
    buf_reserve(&b->cbuf, (size_t)bound);
    int r = LZ4_compress_default((const char *)raw.data,
                                 (char *)b->cbuf.data + hdr, (int)raw.len, bound);
    if (r <= 0) return false;
    n = (size_t)r;
  } else {
    size_t bound = ZSTD_compressBound(raw.len);
    buf_reserve(&b->cbuf, bound);
    size_t r = ZSTD_compressCCtx(b->zctx, b->cbuf.data + hdr, bound, raw.data,
                                 raw.len, b->o.zstd_level);
    if (ZSTD_isError(r)) return false;
    n = r;
  }
  b->cbuf.len = hdr + n;
  return b->cbuf.len <= raw.len - raw.len / 8;
}

static void flush_data_block(sst_builder *b) {
  if (b->data.entries == 0) return;
  slice raw = sst_bb_finish(&b->data);
  b->props.raw_data_size += raw.len + SST_TRAILER_SIZE;
  if (b->o.compression != SST_COMPRESS_NONE && compress_block(b, raw)) {
    emit_block(b, buf_slice(&b->cbuf),
               b->o.compression == SST_COMPRESS_LZ4 ? SST_BLOCK_LZ4 : SST_BLOCK_ZSTD,
               &b->pending_handle);
    b->props.num_compressed_blocks++;
  } else {
    emit_block(b, raw, SST_BLOCK_RAW, &b->pending_handle);
  }
  b->props.num_data_blocks++;
  b->pending_index = true;
  sst_bb_reset(&b->data);
}

static void add_index_entry(sst_builder *b, slice next_key) {
  buf sep = BUF_INIT;
  ikey_separator(buf_slice(&b->last_key), next_key, &sep);
  size_t klen = sep.len;
  put_varint64(&sep, b->pending_handle.offset);
  put_varint64(&sep, b->pending_handle.size);
  sst_bb_add(&b->index, slice_make(sep.data, klen),
             slice_make(sep.data + klen, sep.len - klen));
  buf_free(&sep);
  b->pending_index = false;
}

mica_err *sst_builder_add(sst_builder *b, slice key, slice value) {
  if (b->err != NULL) return err_dup(b->err);
  ikey_parts parts;
  if (!ikey_parse(key, &parts))
    return err_new(MICA_INVALID_ARGUMENT, "sst %s: entry %llu is not an internal key",
                   b->path, (unsigned long long)b->props.num_entries);
  /* Readers treat a block over SST_MAX_BLOCK_BYTES as corrupt, so no
   * entry may make one: it would write a file nobody could read. */
  if (key.len > SST_MAX_BLOCK_BYTES || value.len > SST_MAX_BLOCK_BYTES ||
      key.len + value.len + 16 > SST_MAX_BLOCK_BYTES - b->o.block_size)
    return err_new(MICA_INVALID_ARGUMENT,
                   "sst %s: entry %llu of %zu key and %zu value bytes exceeds the "
                   "block limit", b->path, (unsigned long long)b->props.num_entries,
                   key.len, value.len);
  bool first = b->props.num_entries == 0;
  if (!first && ikey_cmp(buf_slice(&b->last_key), key) >= 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "sst %s: entry %llu does not sort after the previous key",
                   b->path, (unsigned long long)b->props.num_entries);

  if (b->pending_index) add_index_entry(b, key);
  if (b->o.bloom_bits_per_key > 0 &&
      (first || !slice_eq(ikey_user_key(buf_slice(&b->last_key)), parts.user_key))) {
    if (b->nhashes == b->hashes_cap) {
      b->hashes_cap = b->hashes_cap ? b->hashes_cap * 2 : 1024;
      b->hashes = xrealloc(b->hashes, b->hashes_cap * sizeof *b->hashes);
    }
    b->hashes[b->nhashes++] = sst_bloom_hash(parts.user_key);
  }
  sst_bb_add(&b->data, key, value);

  sst_properties *p = &b->props;
  if (first) {
    buf_append_slice(&p->smallest_key, key);
    p->smallest_seq = p->largest_seq = parts.seq;
  }
  if (parts.seq < p->smallest_seq) p->smallest_seq = parts.seq;
  if (parts.seq > p->largest_seq) p->largest_seq = parts.seq;
  p->num_entries++;
  if (parts.kind == IKEY_DELETE) p->num_deletions++;
  p->raw_key_bytes += key.len;
  p->raw_value_bytes += value.len;
  buf_clear(&b->last_key);
  buf_append_slice(&b->last_key, key);

  if (sst_bb_estimate(&b->data) >= b->o.block_size) flush_data_block(b);
  return b->err != NULL ? err_dup(b->err) : NULL;
}

uint64_t sst_builder_file_size(const sst_builder *b) {
  uint64_t filter = b->o.bloom_bits_per_key > 0
                        ? (uint64_t)b->nhashes * (uint64_t)b->o.bloom_bits_per_key / 8
                        : 0;
  return b->offset + sst_bb_estimate(&b->data) + sst_bb_estimate(&b->index) +
         filter + SST_FOOTER_SIZE;
}

uint64_t sst_builder_num_entries(const sst_builder *b) {
  return b->props.num_entries;
}

static void remove_output(sst_builder *b) {
  mica_err *err = env_writer_close(b->w);
  b->w = NULL;
  err_free(err);
  err_free(env_remove(b->e, b->path));
}

mica_err *sst_builder_finish(sst_builder *b, sst_properties *props) {
  flush_data_block(b);
  if (b->pending_index) add_index_entry(b, slice_make(NULL, 0));
  sst_properties *p = &b->props;
  p->data_size = b->offset;
  buf_append_slice(&p->largest_key, buf_slice(&b->last_key));

  sst_handle filter_h = {0, 0};
  if (b->o.bloom_bits_per_key > 0 && b->nhashes > 0) {
    buf f = BUF_INIT;
    sst_bloom_build(b->hashes, b->nhashes, b->o.bloom_bits_per_key, &f);
    emit_block(b, buf_slice(&f), SST_BLOCK_RAW, &filter_h);
    p->filter_size = f.len + SST_TRAILER_SIZE;
    buf_free(&f);
  }
  sst_handle props_h, index_h;
  buf pb = BUF_INIT;
  sst_props_encode(p, &pb);
  emit_block(b, buf_slice(&pb), SST_BLOCK_RAW, &props_h);
  buf_free(&pb);
  slice index = sst_bb_finish(&b->index);
  emit_block(b, index, SST_BLOCK_RAW, &index_h);
  p->index_size = index.len + SST_TRAILER_SIZE;

  uint8_t footer[SST_FOOTER_SIZE];
  encode_fixed64(footer + 0, index_h.offset);
  encode_fixed64(footer + 8, index_h.size);
  encode_fixed64(footer + 16, filter_h.offset);
  encode_fixed64(footer + 24, filter_h.size);
  encode_fixed64(footer + 32, props_h.offset);
  encode_fixed64(footer + 40, props_h.size);
  encode_fixed32(footer + 48, SST_FORMAT_VERSION);
  encode_fixed32(footer + 52, crc32c_mask(crc32c_value(footer, 52)));
  encode_fixed64(footer + 56, SST_MAGIC);
  buf_append(&b->wbuf, footer, sizeof footer);
  b->offset += sizeof footer;
  flush_wbuf(b);

  if (b->err == NULL) b->err = env_sync(b->w);
  if (b->err == NULL) {
    b->err = env_writer_close(b->w);
    b->w = NULL;
  }
  if (b->err != NULL) {
    mica_err *err = b->err;
    b->err = NULL;
    if (b->w != NULL) {
      remove_output(b);
    } else {
      err_free(env_remove(b->e, b->path));
    }
    builder_free(b);
    return err;
  }
  if (props != NULL) {
    /* Hand the key buffers over; builder_free then frees nothing twice. */
    *props = *p;
    memset(p, 0, sizeof *p);
  }
  builder_free(b);
  return NULL;
}

void sst_builder_abandon(sst_builder *b) {
  if (b == NULL) return;
  if (b->w != NULL) remove_output(b);
  builder_free(b);
}
