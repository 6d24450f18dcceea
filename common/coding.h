/* coding: little-endian fixed-width and varint encodings.
 *
 * Every on-disk and on-wire integer in Mica's own formats is written with
 * these. Decoders never read past `limit` and return NULL on truncated or
 * overlong input, so callers can decode untrusted bytes safely.
 *
 * Thread-safety: pure functions. */
#ifndef MICA_COMMON_CODING_H
#define MICA_COMMON_CODING_H

#include <stdint.h>
#include <string.h>

#include "common/slice.h"

static inline void encode_fixed32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static inline void encode_fixed64(uint8_t *p, uint64_t v) {
  encode_fixed32(p, (uint32_t)v);
  encode_fixed32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t decode_fixed32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static inline uint64_t decode_fixed64(const uint8_t *p) {
  return (uint64_t)decode_fixed32(p) | (uint64_t)decode_fixed32(p + 4) << 32;
}

void put_fixed32(buf *b, uint32_t v);
void put_fixed64(buf *b, uint64_t v);
void put_varint32(buf *b, uint32_t v);
void put_varint64(buf *b, uint64_t v);
/* varint32 length followed by the bytes. */
void put_length_prefixed(buf *b, slice s);

/* Bytes put_varint64 would write for `v` (1..10). */
int varint_length(uint64_t v);

/* Decode one varint from [p, limit). Returns the byte after it, or NULL if
 * the input is truncated or the value does not fit. */
const uint8_t *get_varint32(const uint8_t *p, const uint8_t *limit, uint32_t *v);
const uint8_t *get_varint64(const uint8_t *p, const uint8_t *limit, uint64_t *v);

/* Decode a length-prefixed slice from [p, limit); the result points into the
 * input. NULL if the length runs past `limit`. */
const uint8_t *get_length_prefixed(const uint8_t *p, const uint8_t *limit,
                                   slice *out);

#endif
