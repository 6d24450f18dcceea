/* fuzz_util: what the fuzz targets share.
 *
 * The decoders under test read files through the env (common/env.h), so a
 * target writes its input to a file and opens it the way the server
 * would. Files live in one private directory per process (fz_dir), made
 * under $TMPDIR (or /tmp) on first use and removed with everything in it
 * at exit; a crashing run leaves it behind, named mica-fuzz-*.
 *
 * Thread-safety: none; a fuzz target runs one input at a time. */
#ifndef MICA_FUZZ_FUZZ_UTIL_H
#define MICA_FUZZ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

/* libFuzzer's entry points, defined by each target (Initialize may be
 * absent). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The process's private directory (created on first call). Valid for the
 * life of the process. Aborts if it cannot be made. */
const char *fz_dir(void);

/* Writes "<fz_dir>/<name>" into `out` (replacing its contents,
 * NUL-terminated) and returns out->data as a string. */
const char *fz_path(buf *out, const char *name);

/* Replaces the file `path` with `n` bytes of `data` (no sync: the bytes
 * only have to reach the page cache). Aborts on failure: the fuzzer must
 * not mistake a full disk for a finding. */
void fz_write(const char *path, const void *data, size_t n);

/* Reads a little-endian integer of `n` (<= 8) bytes from the front of
 * (*data, *size), advancing past it; missing bytes read as zero. For
 * targets that split one input into several fields. */
uint64_t fz_take(const uint8_t **data, size_t *size, size_t n);

#endif
