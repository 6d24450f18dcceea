/* table_opts: checking, naming and encoding a table's options. Why each
 * bound: a split threshold below 1 MiB would split tablets faster than the
 * master can place them, block sizes are the SSTable library's own limits
 * (sstable.h), and salt buckets must fit the one-byte prefix with every
 * bucket's upper boundary (bucket + 1) still one byte. */
#include "master/table_opts.h"

#include <inttypes.h>
#include <string.h>

#include "common/coding.h"

void mto_init(ms_table_opts *o) {
  memset(o, 0, sizeof(*o));
  o->bloom_bits = -1;
}

bool mto_equal(const ms_table_opts *a, const ms_table_opts *b) {
  return a->compression == b->compression && a->split_bytes == b->split_bytes &&
         a->block_size == b->block_size && a->bloom_bits == b->bloom_bits &&
         a->salt_buckets == b->salt_buckets;
}

bool mto_is_default(const ms_table_opts *o) {
  ms_table_opts d;
  mto_init(&d);
  return mto_equal(o, &d);
}

mica_err *mto_check(const ms_table_opts *o) {
  if (o->compression < MTO_COMP_DEFAULT || o->compression > MTO_COMP_ZSTD)
    return err_new(MICA_INVALID_ARGUMENT,
                   "option compression: %d is not default, none, lz4 or zstd",
                   o->compression);
  if (o->split_bytes != 0 && (o->split_bytes < MTO_MIN_SPLIT_BYTES ||
                              o->split_bytes > MTO_MAX_SPLIT_BYTES))
    return err_new(MICA_INVALID_ARGUMENT,
                   "option split_threshold: %" PRIu64
                   " bytes is outside 1 MiB .. 1 TiB (0 = the default)",
                   o->split_bytes);
  if (o->block_size != 0 && (o->block_size < MTO_MIN_BLOCK_SIZE ||
                             o->block_size > MTO_MAX_BLOCK_SIZE))
    return err_new(MICA_INVALID_ARGUMENT,
                   "option block_size: %" PRIu32
                   " bytes is outside 1 KiB .. 4 MiB (0 = the default)",
                   o->block_size);
  if (o->bloom_bits < -1 || o->bloom_bits > MTO_MAX_BLOOM_BITS)
    return err_new(MICA_INVALID_ARGUMENT,
                   "option bloom_bits: %d is outside 0..32", o->bloom_bits);
  if (o->salt_buckets != 0 &&
      (o->salt_buckets < MTO_MIN_SALT || o->salt_buckets > MTO_MAX_SALT))
    return err_new(MICA_INVALID_ARGUMENT,
                   "option salt_buckets: %" PRIu32
                   " is outside 2..255 (0 = unsalted)",
                   o->salt_buckets);
  return NULL;
}

static const char *const comp_names[] = {"default", "none", "lz4", "zstd"};

const char *mto_compression_name(int c) {
  return c >= 0 && c <= MTO_COMP_ZSTD ? comp_names[c] : "?";
}

bool mto_compression_parse(const char *s, int *out) {
  if (s == NULL || s[0] == '\0') {
    *out = MTO_COMP_DEFAULT;
    return true;
  }
  for (int i = 0; i <= MTO_COMP_ZSTD; i++)
    if (strcmp(s, comp_names[i]) == 0) {
      *out = i;
      return true;
    }
  return false;
}

void mto_encode(const ms_table_opts *o, buf *b) {
  put_varint64(b, (uint64_t)o->compression);
  put_varint64(b, o->split_bytes);
  put_varint64(b, o->block_size);
  put_varint64(b, (uint64_t)(o->bloom_bits + 1));
  put_varint64(b, o->salt_buckets);
}

const uint8_t *mto_decode(const uint8_t *p, const uint8_t *lim,
                          ms_table_opts *o) {
  uint64_t v[5];
  for (int i = 0; i < 5; i++) {
    p = p != NULL ? get_varint64(p, lim, &v[i]) : NULL;
    if (p == NULL) return NULL;
  }
  if (v[0] > MTO_COMP_ZSTD || v[2] > UINT32_MAX ||
      v[3] > MTO_MAX_BLOOM_BITS + 1 || v[4] > MTO_MAX_SALT)
    return NULL;
  o->compression = (int)v[0];
  o->split_bytes = v[1];
  o->block_size = (uint32_t)v[2];
  o->bloom_bits = (int)v[3] - 1;
  o->salt_buckets = (uint32_t)v[4];
  mica_err *e = mto_check(o);
  if (e != NULL) {
    err_free(e);
    return NULL;
  }
  return p;
}
