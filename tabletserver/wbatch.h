/* wbatch: an atomic batch of puts and deletes for one tablet.
 *
 * A tablet applies a batch all or nothing: it gives the batch a run of
 * sequence numbers, logs its encoded form as ONE WAL record, then inserts
 * every entry into the memtable. The encoded form is therefore both the
 * in-memory representation and the WAL record payload, and replay decodes
 * it from bytes it must not trust.
 *
 * Encoded layout (all integers little-endian; see tabletserver/WAL_FORMAT.md):
 *
 *   offset  size  field
 *   0       8     seq     sequence number of the first entry (fixed64)
 *   8       4     count   number of entries (fixed32)
 *   12      ...   count entries, each:
 *                   kind     1 byte: IKEY_PUT (1) or IKEY_DELETE (0)
 *                   key      varint32 length, then the key bytes
 *                   value    (IKEY_PUT only) varint32 length, then the bytes
 *
 * Entry i (0-based, in the order put/delete were called) carries sequence
 * number seq + i, so a later entry for the same key in one batch wins.
 *
 * Invariants: a wbatch is always well formed; count and byte size match the
 * entries; wbatch_decode accepts exactly the byte strings wbatch_data can
 * produce (no trailing bytes, no unknown kinds, no length past the end).
 * Key and value sizes are NOT limited here: the tablet checks them against
 * its limits before building or applying a batch.
 *
 * Thread-safety: none inside. A batch being modified belongs to one thread;
 * a batch no one modifies may be read (count, data, iterate) by many. */
#ifndef MICA_TABLETSERVER_WBATCH_H
#define MICA_TABLETSERVER_WBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"

/* Bytes of the fixed header (seq + count). */
#define WBATCH_HEADER 12

typedef struct wbatch wbatch;

/* An empty batch with seq 0. Caller frees with wbatch_free(). */
wbatch *wbatch_new(void);
void wbatch_free(wbatch *b); /* accepts NULL */

/* Removes every entry and sets seq to 0; keeps the allocation. */
void wbatch_clear(wbatch *b);

/* Append an entry. The bytes are copied. */
void wbatch_put(wbatch *b, slice key, slice value);
void wbatch_delete(wbatch *b, slice key);

/* Appends every entry of `src` after those of `dst` (dst's seq is kept). */
void wbatch_append(wbatch *dst, const wbatch *src);

uint32_t wbatch_count(const wbatch *b);
/* Size of the encoded form, header included (== wbatch_data(b).len). */
size_t wbatch_byte_size(const wbatch *b);

void wbatch_set_seq(wbatch *b, uint64_t seq);
uint64_t wbatch_seq(const wbatch *b);

/* The encoded form (the WAL record payload). Valid until the next call
 * that modifies `b` or frees it. */
slice wbatch_data(const wbatch *b);

/* Replaces the contents of `b` with a copy of the encoded batch `data`,
 * validating every length, the count and every kind. On malformed input
 * returns CORRUPTION with a message naming the byte offset within `data`
 * ("write batch: entry 3 at offset 41: key length 900 runs past end (58)"),
 * and leaves `b` empty. Callers that know the file add file and record
 * offset with err_wrap(). */
mica_err *wbatch_decode(wbatch *b, slice data);

/* Called for each entry in order. `value` is empty for IKEY_DELETE. The
 * slices point into the batch (valid until it is modified or freed).
 * Returning non-NULL stops the iteration and is passed back. */
typedef mica_err *(*wbatch_fn)(void *arg, uint64_t seq, uint8_t kind,
                               slice key, slice value);

/* Calls fn for every entry with its sequence number (wbatch_seq + index).
 * Returns the first error fn returned, else NULL. */
mica_err *wbatch_iterate(const wbatch *b, wbatch_fn fn, void *arg);

#endif
