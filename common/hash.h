/* hash: a fast 32-bit hash of bytes, for Bloom filters and cache shards.
 * Not cryptographic; its values are part of the SSTable filter format, so
 * they must never change. Thread-safety: pure function. */
#ifndef MICA_COMMON_HASH_H
#define MICA_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t hash32(const void *data, size_t n, uint32_t seed);

#endif
