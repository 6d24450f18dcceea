/* fixup: checksum repair after mutation (fixup.h). The layouts are the
 * format documents'; this file only needs to find the checksums. */
#include "fuzz/fixup.h"

#include "common/coding.h"
#include "common/crc32c.h"

void fz_fix_frames(uint8_t *d, size_t n, size_t off) {
  while (off + 9 <= n) {
    uint32_t len = decode_fixed32(d + off + 4);
    if (len > n - off - 9) return;
    encode_fixed32(d + off, crc32c_mask(crc32c_value(d + off + 4, 5 + (size_t)len)));
    off += 9 + (size_t)len;
  }
}

void fz_fix_wal(uint8_t *d, size_t n) { fz_fix_frames(d, n, 0); }

void fz_fix_metalog_file(uint8_t *d, size_t n) {
  if (n < 24) return;
  encode_fixed32(d + 20, crc32c_mask(crc32c_value(d, 20)));
  fz_fix_frames(d, n, 24);
}

void fz_fix_manifest(uint8_t *d, size_t n) {
  if (n < 20) return;
  encode_fixed32(d + 12, (uint32_t)(n - 20));
  encode_fixed32(d + 16, crc32c_mask(crc32c_value(d + 20, n - 20)));
}

enum { FOOTER = 64, TRAILER = 5 };

/* Repairs the trailer of the block at [off, off + size) when it fits
 * before the footer. */
static void fix_block(uint8_t *d, size_t n, uint64_t off, uint64_t size) {
  size_t end = n - FOOTER;
  if (off > end || size > end - off || TRAILER > end - off - size) return;
  encode_fixed32(d + off + size + 1,
                 crc32c_mask(crc32c_value(d + off, (size_t)size + 1)));
}

void fz_fix_sst(uint8_t *d, size_t n) {
  if (n < FOOTER) return;
  uint8_t *f = d + n - FOOTER;
  uint64_t idx_off = decode_fixed64(f), idx_size = decode_fixed64(f + 8);
  fix_block(d, n, decode_fixed64(f + 16), decode_fixed64(f + 24));
  fix_block(d, n, decode_fixed64(f + 32), decode_fixed64(f + 40));
  /* Data blocks first: the index block's own CRC must be computed after
   * nothing in it changes (nothing here writes into it). */
  size_t end = n - FOOTER;
  if (idx_off <= end && idx_size <= end - idx_off && idx_size >= 4) {
    const uint8_t *p = d + idx_off, *limit = p + idx_size;
    uint32_t nrest = decode_fixed32(limit - 4);
    if (nrest <= (idx_size - 4) / 4) limit -= 4 + 4 * (size_t)nrest;
    while (p < limit) {
      uint32_t shared, unshared, vlen;
      p = get_varint32(p, limit, &shared);
      if (p) p = get_varint32(p, limit, &unshared);
      if (p) p = get_varint32(p, limit, &vlen);
      if (p == NULL || unshared > (size_t)(limit - p) ||
          vlen > (size_t)(limit - p) - unshared)
        break;
      p += unshared;
      const uint8_t *v = p, *vend = p + vlen;
      p = vend;
      uint64_t boff, bsize;
      v = get_varint64(v, vend, &boff);
      if (v) v = get_varint64(v, vend, &bsize);
      if (v) fix_block(d, n, boff, bsize);
    }
  }
  fix_block(d, n, idx_off, idx_size);
  encode_fixed32(f + 52, crc32c_mask(crc32c_value(f, 52)));
}
