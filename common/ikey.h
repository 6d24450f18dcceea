/* ikey: the internal key that the storage engine sorts by.
 *
 * Layout: user key bytes, then 8 bytes little-endian of (seq << 8 | kind).
 *   seq   56-bit sequence number the tablet gave the write
 *   kind  IKEY_DELETE (0) or IKEY_PUT (1); values 2..255 are reserved for
 *         Bigtable-style cells (column tombstones, merge operands) later,
 *         which is why the kind has a whole byte.
 *
 * Order: user key ascending (unsigned bytes), then seq descending, then kind
 * descending, so that for one user key the newest version comes first and a
 * seek to (key, snapshot_seq, IKEY_SEEK_KIND) lands on the newest version
 * visible at that snapshot.
 *
 * Thread-safety: pure functions. */
#ifndef MICA_COMMON_IKEY_H
#define MICA_COMMON_IKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/slice.h"

enum { IKEY_DELETE = 0, IKEY_PUT = 1 };
#define IKEY_SEEK_KIND IKEY_PUT /* the highest kind in use */
#define IKEY_MAX_SEQ ((UINT64_C(1) << 56) - 1)
#define IKEY_TRAILER 8

typedef struct ikey_parts {
  slice user_key;
  uint64_t seq;
  uint8_t kind;
} ikey_parts;

/* Appends user_key + trailer to `out`. */
void ikey_append(buf *out, slice user_key, uint64_t seq, uint8_t kind);
/* False if `ik` is shorter than a trailer or has an unknown kind. */
bool ikey_parse(slice ik, ikey_parts *out);
/* The user key part; `ik` must be at least IKEY_TRAILER long. */
static inline slice ikey_user_key(slice ik) {
  return slice_make(ik.data, ik.len - IKEY_TRAILER);
}
int ikey_cmp(slice a, slice b);

/* Index separators: appends to `out` a short internal key k with
 * a <= k < b (for the index block). `b` may be empty meaning "no upper
 * bound" (after the last block), in which case k is a short key >= a. */
void ikey_separator(slice a, slice b, buf *out);

#endif
