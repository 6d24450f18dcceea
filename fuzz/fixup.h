/* fixup: checksum repair for the fuzzers' custom mutators.
 *
 * Every format Mica reads guards its bytes with CRC32C, so almost every
 * random mutation of a file dies at the first checksum and the fuzzer
 * never reaches the decoding behind it. These functions recompute, in
 * place, the checksums a mutated input carries where the format says
 * they are, so that the mutation itself reaches the parser. They follow
 * the byte layouts in sstable/FORMAT.md, tabletserver/WAL_FORMAT.md,
 * tabletserver/MANIFEST_FORMAT.md and master/METALOG_FORMAT.md; anything
 * that does not parse far enough to locate a checksum is left as it is
 * (the reader's job is to refuse it). The custom mutators leave some
 * mutations unrepaired so that the checksum checks stay covered too.
 *
 * Thread-safety: pure functions on the caller's bytes. */
#ifndef MICA_FUZZ_FIXUP_H
#define MICA_FUZZ_FIXUP_H

#include <stddef.h>
#include <stdint.h>

/* WAL/metalog framing from `off` on: masked CRC (4), length (4), type (1),
 * payload; the CRC covers length, type and payload. Stops at the first
 * frame that does not fit. */
void fz_fix_frames(uint8_t *d, size_t n, size_t off);

/* A WAL segment: frames from offset 0. */
void fz_fix_wal(uint8_t *d, size_t n);

/* A metadata log or snapshot file: the 24-byte file header's CRC, then
 * its frames. */
void fz_fix_metalog_file(uint8_t *d, size_t n);

/* A MANIFEST: sets the payload length to the file's and recomputes the
 * payload CRC. */
void fz_fix_manifest(uint8_t *d, size_t n);

/* An SSTable: the footer CRC, the trailers of the index, filter and
 * properties blocks, and the trailer of every data block the index
 * names. */
void fz_fix_sst(uint8_t *d, size_t n);

#endif
