/* export_fmt: the EXPORT file of a snapshot export, in memory and on disk
 * (docs/storage.md, "Export and restore", has the byte layout).
 *
 * An export directory holds one copy of every SSTable a snapshot
 * references and EXPORT, which describes the table: name, options, the
 * tablets with their ranges, and for each tablet the files it reads, over
 * which key range and at which level; for each file its size and the
 * CRC32C of every XP_CHUNK-byte chunk.
 *
 * Versions: 1 had no levels (a restore puts every file at level 0, in the
 * listed order, which was level 0's order: newest data first); 2 adds a
 * level varint after each SSTable's high key. xp_encode writes version 2;
 * xp_decode reads both.
 *
 * Invariants after a successful xp_decode: every file name is a plain
 * name (no '/', not "." or ".."), every file index is in range, every
 * level is < MAN_LEVELS, and the tablets cover the key space in order.
 *
 * Thread-safety: plain values owned by one thread; no global state. */
#ifndef MICA_MASTER_SERVER_EXPORT_FMT_H
#define MICA_MASTER_SERVER_EXPORT_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"
#include "master/table_opts.h"

#define XP_MAGIC "MICAEXPT"
#define XP_VERSION 2 /* written; 1 and 2 are read */
#define XP_CHUNK ((size_t)1 << 20)

/* One file of an export. */
typedef struct xp_file {
  char *name;     /* in the export directory; owned */
  char *src;      /* export only: "<dir>/<file>" under the tablets dir */
  uint64_t size;
  uint32_t *crc;  /* one per chunk (xp_chunks(size)); owned */
  size_t n_crc;
} xp_file;

/* One SSTable a tablet reads. */
typedef struct xp_sst {
  size_t file; /* index into xport.files */
  buf lo, hi;
  bool has_hi;
  uint32_t level; /* < MAN_LEVELS; 0 for every file of a version 1 export */
} xp_sst;

typedef struct xp_part {
  buf start, end; /* end empty = +infinity */
  uint64_t last_seq;
  xp_sst *ssts; /* in manifest order: level 0 newest first, then by level */
  size_t n_ssts;
} xp_part;

typedef struct xport {
  uint32_t version; /* as read by xp_decode; xp_encode writes XP_VERSION */
  char *table, *snapshot;
  uint64_t created_ms;
  ms_table_opts opts;
  xp_file *files;
  size_t n_files;
  xp_part *parts;
  size_t n_parts;
} xport;

/* Frees everything `x` holds and zeroes it. */
void xp_free(xport *x);
/* Chunks of a file of `size` bytes. */
size_t xp_chunks(uint64_t size);
/* Appends EXPORT (version XP_VERSION) for `x` to `out`. */
void xp_encode(const xport *x, buf *out);
/* Decodes EXPORT bytes read from `path` into `x` (zeroed first; freed on
 * error). CORRUPTION naming `path`, the byte offset and the field that was
 * wrong ("bad SSTable level", "trailing bytes", ...); NOT_SUPPORTED for a
 * version other than 1 or 2. */
mica_err *xp_decode(slice data, const char *path, xport *x);

#endif
