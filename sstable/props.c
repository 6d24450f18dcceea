/* props: the properties block codec.
 *
 * The block is a list of (varint32 tag, varint32 length, bytes) fields.
 * Integer fields hold one varint64 filling their length exactly; key
 * fields hold the raw internal key. A reader skips tags it does not know,
 * so later versions can add fields without a format break; every tag this
 * version writes is required when reading, because a file that lacks one
 * was not written by a correct version-1 builder. */
#include <string.h>

#include "common/ikey.h"
#include "sstable/sst_int.h"

enum {
  TAG_NUM_ENTRIES = 1,
  TAG_NUM_DELETIONS = 2,
  TAG_RAW_KEY_BYTES = 3,
  TAG_RAW_VALUE_BYTES = 4,
  TAG_DATA_SIZE = 5,
  TAG_RAW_DATA_SIZE = 6,
  TAG_NUM_DATA_BLOCKS = 7,
  TAG_NUM_COMPRESSED_BLOCKS = 8,
  TAG_SMALLEST_SEQ = 9,
  TAG_LARGEST_SEQ = 10,
  TAG_BLOCK_SIZE = 11,
  TAG_RESTART_INTERVAL = 12,
  TAG_BLOOM_BITS = 13,
  TAG_COMPRESSION = 14,
  TAG_SMALLEST_KEY = 15,
  TAG_LARGEST_KEY = 16,
  TAG_COUNT_ /* one past the last known tag */
};

static void put_u64(buf *out, uint32_t tag, uint64_t v) {
  put_varint32(out, tag);
  put_varint32(out, (uint32_t)varint_length(v));
  put_varint64(out, v);
}

static void put_bytes(buf *out, uint32_t tag, slice s) {
  put_varint32(out, tag);
  put_length_prefixed(out, s);
}

void sst_props_encode(const sst_properties *p, buf *out) {
  put_u64(out, TAG_NUM_ENTRIES, p->num_entries);
  put_u64(out, TAG_NUM_DELETIONS, p->num_deletions);
  put_u64(out, TAG_RAW_KEY_BYTES, p->raw_key_bytes);
  put_u64(out, TAG_RAW_VALUE_BYTES, p->raw_value_bytes);
  put_u64(out, TAG_DATA_SIZE, p->data_size);
  put_u64(out, TAG_RAW_DATA_SIZE, p->raw_data_size);
  put_u64(out, TAG_NUM_DATA_BLOCKS, p->num_data_blocks);
  put_u64(out, TAG_NUM_COMPRESSED_BLOCKS, p->num_compressed_blocks);
  put_u64(out, TAG_SMALLEST_SEQ, p->smallest_seq);
  put_u64(out, TAG_LARGEST_SEQ, p->largest_seq);
  put_u64(out, TAG_BLOCK_SIZE, p->block_size);
  put_u64(out, TAG_RESTART_INTERVAL, p->restart_interval);
  put_u64(out, TAG_BLOOM_BITS, p->bloom_bits_per_key);
  put_u64(out, TAG_COMPRESSION, p->compression);
  put_bytes(out, TAG_SMALLEST_KEY, buf_slice(&p->smallest_key));
  put_bytes(out, TAG_LARGEST_KEY, buf_slice(&p->largest_key));
}

static uint64_t *u64_field(sst_properties *p, uint32_t tag) {
  switch (tag) {
    case TAG_NUM_ENTRIES: return &p->num_entries;
    case TAG_NUM_DELETIONS: return &p->num_deletions;
    case TAG_RAW_KEY_BYTES: return &p->raw_key_bytes;
    case TAG_RAW_VALUE_BYTES: return &p->raw_value_bytes;
    case TAG_DATA_SIZE: return &p->data_size;
    case TAG_RAW_DATA_SIZE: return &p->raw_data_size;
    case TAG_NUM_DATA_BLOCKS: return &p->num_data_blocks;
    case TAG_NUM_COMPRESSED_BLOCKS: return &p->num_compressed_blocks;
    case TAG_SMALLEST_SEQ: return &p->smallest_seq;
    case TAG_LARGEST_SEQ: return &p->largest_seq;
    default: return NULL;
  }
}

static uint32_t *u32_field(sst_properties *p, uint32_t tag) {
  switch (tag) {
    case TAG_BLOCK_SIZE: return &p->block_size;
    case TAG_RESTART_INTERVAL: return &p->restart_interval;
    case TAG_BLOOM_BITS: return &p->bloom_bits_per_key;
    case TAG_COMPRESSION: return &p->compression;
    default: return NULL;
  }
}

bool sst_props_decode(slice in, sst_properties *p) {
  memset(p, 0, sizeof *p);
  const uint8_t *q = in.data, *limit = in.data + in.len;
  uint32_t seen = 0;
  while (q < limit) {
    uint32_t tag;
    slice val;
    if ((q = get_varint32(q, limit, &tag)) == NULL ||
        (q = get_length_prefixed(q, limit, &val)) == NULL)
      goto bad;
    if (tag == 0 || tag >= TAG_COUNT_) continue;
    if (seen & (1u << tag)) goto bad;
    seen |= 1u << tag;
    uint64_t *f64 = u64_field(p, tag);
    uint32_t *f32 = u32_field(p, tag);
    if (f64 != NULL || f32 != NULL) {
      uint64_t v;
      const uint8_t *e = get_varint64(val.data, val.data + val.len, &v);
      if (e != val.data + val.len) goto bad;
      if (f64 != NULL) {
        *f64 = v;
      } else {
        if (v > UINT32_MAX) goto bad;
        *f32 = (uint32_t)v;
      }
    } else {
      /* A key field: empty (empty table) or a whole internal key. */
      if (val.len != 0 && val.len < IKEY_TRAILER) goto bad;
      buf_append_slice(tag == TAG_SMALLEST_KEY ? &p->smallest_key
                                                : &p->largest_key,
                       val);
    }
  }
  if (seen != ((1u << TAG_COUNT_) - 2)) goto bad;
  return true;
bad:
  sst_properties_clear(p);
  return false;
}

void sst_properties_clear(sst_properties *p) {
  if (p == NULL) return;
  buf_free(&p->smallest_key);
  buf_free(&p->largest_key);
  memset(p, 0, sizeof *p);
}
