/* crc32c_internal: the table-driven CRC32C path on its own, so tests can
 * check it against the hardware path on the same input. Not for use
 * outside common/ and its tests. Thread-safety: pure function. */
#ifndef MICA_COMMON_CRC32C_INTERNAL_H
#define MICA_COMMON_CRC32C_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* crc32c_extend computed with the slicing-by-8 tables, whatever the CPU. */
uint32_t crc32c_extend_portable(uint32_t crc, const void *data, size_t n);

#endif
