/* mutate: the custom mutator that keeps checksums valid (fixup.h).
 *
 * Included only by the libFuzzer builds of the targets (MICA_LIBFUZZER),
 * where LLVMFuzzerMutate exists. A target whose format carries checksums
 * defines its LLVMFuzzerCustomMutator as fz_mutate_fixed with its repair
 * function: libFuzzer's own mutation, then the repair for 7 in 8
 * mutations (the eighth stays raw, so the checksum checks and the torn
 * and corrupt paths behind them stay covered). */
#ifndef MICA_FUZZ_MUTATE_H
#define MICA_FUZZ_MUTATE_H

#include <stddef.h>
#include <stdint.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static inline size_t fz_mutate_fixed(uint8_t *data, size_t size,
                                     size_t max_size, unsigned int seed,
                                     void (*fix)(uint8_t *, size_t)) {
  size = LLVMFuzzerMutate(data, size, max_size);
  if (seed % 8 != 0) fix(data, size);
  return size;
}

#endif
