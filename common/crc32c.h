/* crc32c: the Castagnoli CRC that guards every record and block Mica writes.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
 * run time) and a slicing-by-8 table otherwise; both give identical values.
 *
 * Stored checksums are masked (rotated and offset) because a CRC computed
 * over data that itself contains CRCs is weak; always store crc32c_mask(c)
 * and compare against crc32c_unmask(stored).
 *
 * Thread-safety: pure functions. */
#ifndef MICA_COMMON_CRC32C_H
#define MICA_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC of `n` bytes continuing from the CRC `crc` of earlier bytes (0 to
 * start). crc32c_extend(0, "123456789", 9) == 0xe3069283. */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n);

static inline uint32_t crc32c_value(const void *data, size_t n) {
  return crc32c_extend(0, data, n);
}

#define CRC32C_MASK_DELTA 0xa282ead8u

static inline uint32_t crc32c_mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + CRC32C_MASK_DELTA;
}

static inline uint32_t crc32c_unmask(uint32_t masked) {
  uint32_t rot = masked - CRC32C_MASK_DELTA;
  return (rot >> 17) | (rot << 15);
}

/* True when the hardware path is in use (for benchmarks and logs). */
int crc32c_hardware(void);

#endif
