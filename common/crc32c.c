/* crc32c: table and SSE4.2 implementations of CRC-32C (polynomial
 * 0x82f63b78, reflected). The table path processes 8 bytes per step with
 * eight 256-entry tables built once; the hardware path uses the crc32q
 * instruction. */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c_internal.h"

static uint32_t table[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int use_hw;

static void init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
  __builtin_cpu_init();
  use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t n) {
  while (n && ((uintptr_t)p & 7)) {
    crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    n--;
  }
  while (n >= 8) {
    uint32_t lo = decode_fixed32(p) ^ crc;
    uint32_t hi = decode_fixed32(p + 4);
    crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
          table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
          table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
          table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
                                                          const uint8_t *p,
                                                          size_t n) {
  uint64_t c = crc;
  while (n && ((uintptr_t)p & 7)) {
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
    p += 8;
    n -= 8;
  }
  while (n--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
  return (uint32_t)c;
}
#endif

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n) {
  pthread_once(&once, init);
  const uint8_t *p = data;
  crc = ~crc;
#if defined(__x86_64__)
  if (use_hw) return ~crc_hw(crc, p, n);
#endif
  return ~crc_table(crc, p, n);
}

uint32_t crc32c_extend_portable(uint32_t crc, const void *data, size_t n) {
  pthread_once(&once, init);
  return ~crc_table(~crc, data, n);
}

int crc32c_hardware(void) {
  pthread_once(&once, init);
  return use_hw;
}
