/* crc32c: table and SSE4.2 implementations of CRC-32C (polynomial
 * 0x82f63b78, reflected). The table path processes 8 bytes per step with
 * eight 256-entry tables built once; the hardware path uses the crc32q
 * instruction.
 *
 * One chain of crc32q instructions is bound by their latency (3 cycles
 * per 8 bytes) although the CPU can start one per cycle, and every block
 * read from a file is checksummed, so long inputs run three independent
 * chains over three adjacent stretches of equal length and combine them.
 * Combining rests on the CRC register being linear over GF(2): the
 * register after A then B equals the register after A shifted over |B|
 * zero bytes, xor the register of B alone started from 0. Shifting over a
 * fixed number of zero bytes is itself a linear map of the 32-bit
 * register, kept as four 256-entry tables (one per register byte) for
 * each of the two stretch lengths used. */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c_internal.h"

static uint32_t table[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int use_hw;

/* Stretch lengths of the three-chain hardware path: the long one for
 * whole blocks, the short one for what is left (and WAL records). Both
 * multiples of 8 so each chain runs whole crc32q steps. */
#define LONG_STRETCH 2048
#define SHORT_STRETCH 256

/* zeros_long[k][b]: register byte k equal to b, all others 0, shifted
 * over LONG_STRETCH zero bytes; zeros_short likewise. */
static uint32_t zeros_long[4][256];
static uint32_t zeros_short[4][256];

static void init_zeros(void);

static void init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
  init_zeros();
#if defined(__x86_64__)
  __builtin_cpu_init();
  use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* The register `crc` shifted over `n` zero bytes, one byte at a time:
 * used only to build the shift tables. */
static uint32_t shift_slow(uint32_t crc, size_t n) {
  while (n--) crc = table[0][crc & 0xff] ^ (crc >> 8);
  return crc;
}

/* Builds the tables of the map "shift over n zero bytes" from its values
 * on the 32 single-bit registers, by linearity. */
static void build_zeros(uint32_t z[4][256], size_t n) {
  uint32_t bit[32];
  for (int i = 0; i < 32; i++) bit[i] = shift_slow(1u << i, n);
  for (int k = 0; k < 4; k++)
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int i = 0; i < 8; i++)
        if (b & (1u << i)) v ^= bit[8 * k + i];
      z[k][b] = v;
    }
}

static void init_zeros(void) {
  build_zeros(zeros_long, LONG_STRETCH);
  build_zeros(zeros_short, SHORT_STRETCH);
}

static inline uint32_t shift(const uint32_t z[4][256], uint32_t crc) {
  return z[0][crc & 0xff] ^ z[1][(crc >> 8) & 0xff] ^
         z[2][(crc >> 16) & 0xff] ^ z[3][crc >> 24];
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
/* The register after the 3 * len bytes at p (len a multiple of 8),
 * continuing from `crc`, computed as three chains; `z` shifts over len
 * zero bytes. Inlined so that len is a constant in each caller. */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t
crc_hw_triple(uint32_t crc, const uint8_t *p, size_t len,
              const uint32_t z[4][256]) {
  uint64_t c0 = crc, c1 = 0, c2 = 0;
  for (size_t i = 0; i < len; i += 8) {
    uint64_t w0, w1, w2;
    memcpy(&w0, p + i, 8);
    memcpy(&w1, p + len + i, 8);
    memcpy(&w2, p + 2 * len + i, 8);
    c0 = __builtin_ia32_crc32di(c0, w0);
    c1 = __builtin_ia32_crc32di(c1, w1);
    c2 = __builtin_ia32_crc32di(c2, w2);
  }
  return shift(z, shift(z, (uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
                                                          const uint8_t *p,
                                                          size_t n) {
  uint64_t c = crc;
  while (n && ((uintptr_t)p & 7)) {
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    n--;
  }
  for (; n >= 3 * LONG_STRETCH; n -= 3 * LONG_STRETCH, p += 3 * LONG_STRETCH)
    c = crc_hw_triple((uint32_t)c, p, LONG_STRETCH, zeros_long);
  for (; n >= 3 * SHORT_STRETCH; n -= 3 * SHORT_STRETCH, p += 3 * SHORT_STRETCH)
    c = crc_hw_triple((uint32_t)c, p, SHORT_STRETCH, zeros_short);
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
