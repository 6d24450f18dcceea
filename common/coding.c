/* coding: fixed-width and varint integer encodings. See coding.h. */
#include "common/coding.h"

void put_fixed32(buf *b, uint32_t v) {
  uint8_t t[4];
  encode_fixed32(t, v);
  buf_append(b, t, 4);
}

void put_fixed64(buf *b, uint64_t v) {
  uint8_t t[8];
  encode_fixed64(t, v);
  buf_append(b, t, 8);
}

void put_varint64(buf *b, uint64_t v) {
  uint8_t t[10];
  int n = 0;
  while (v >= 0x80) {
    t[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  t[n++] = (uint8_t)v;
  buf_append(b, t, (size_t)n);
}

void put_varint32(buf *b, uint32_t v) { put_varint64(b, v); }

void put_length_prefixed(buf *b, slice s) {
  put_varint32(b, (uint32_t)s.len);
  buf_append(b, s.data, s.len);
}

int varint_length(uint64_t v) {
  int n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

const uint8_t *get_varint64(const uint8_t *p, const uint8_t *limit, uint64_t *v) {
  uint64_t result = 0;
  for (unsigned shift = 0; shift <= 63 && p < limit; shift += 7) {
    uint64_t byte = *p++;
    if (shift == 63 && byte > 1) return NULL; /* would overflow 64 bits */
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return p;
    }
  }
  return NULL;
}

const uint8_t *get_varint32(const uint8_t *p, const uint8_t *limit, uint32_t *v) {
  uint64_t w;
  const uint8_t *q = get_varint64(p, limit, &w);
  if (q == NULL || w > UINT32_MAX) return NULL;
  *v = (uint32_t)w;
  return q;
}

const uint8_t *get_length_prefixed(const uint8_t *p, const uint8_t *limit,
                                   slice *out) {
  uint32_t len;
  p = get_varint32(p, limit, &len);
  if (p == NULL || (size_t)(limit - p) < len) return NULL;
  *out = slice_make(p, len);
  return p + len;
}
