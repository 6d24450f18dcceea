/* hash: a Murmur-style multiply-and-rotate hash over 4-byte words.
 * Defined by this code (not by any external library), and frozen: Bloom
 * filters written to disk depend on these exact values. */
#include "common/hash.h"

#include "common/coding.h"

uint32_t hash32(const void *data, size_t n, uint32_t seed) {
  const uint32_t m = 0xc6a4a793u;
  const uint8_t *p = data, *end = p + n;
  uint32_t h = seed ^ (uint32_t)(n * m);
  while (end - p >= 4) {
    h += decode_fixed32(p);
    h *= m;
    h ^= h >> 16;
    p += 4;
  }
  switch (end - p) {
    case 3: h += (uint32_t)p[2] << 16; /* fall through */
    case 2: h += (uint32_t)p[1] << 8;  /* fall through */
    case 1:
      h += p[0];
      h *= m;
      h ^= h >> 24;
  }
  return h;
}
