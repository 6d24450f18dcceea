/* memtable: a tablet's in-memory write buffer, a skiplist over an arena.
 *
 * Every write lands here (after the WAL) as an internal key (common/ikey.h:
 * user key + (seq << 8 | kind)) with its value. Reads look here first,
 * newest memtable first. When a memtable is full the tablet makes it
 * immutable (stops adding to it), starts a new one, and a background
 * thread flushes the old one to an SSTable through mt_iter_new.
 *
 * Entries are ordered by ikey_cmp: user key ascending, then sequence number
 * descending, so the newest version of a key comes first. Nothing is ever
 * removed or overwritten: a delete is an entry of kind IKEY_DELETE, and all
 * memory goes back to the system at once when the last reference is
 * dropped.
 *
 * Thread-safety (the skiplist discipline of LevelDB's db/skiplist.h):
 *  - Writes (mt_add, mt_apply_batch) need external serialization: at most
 *    one thread adds at a time (the tablet's write path holds a lock).
 *  - Reads (mt_get, iterators, mt_count, mt_memory_usage) need no lock and
 *    may run in any number of threads concurrently with the one writer.
 *    A new node is fully built (key, value, its own next pointers) before
 *    it is linked in with release stores; readers follow links with acquire
 *    loads, so a reader sees either the whole entry or none of it, and
 *    always a sorted list.
 *  - Lifetime is by reference count: mt_ref / mt_unref from any thread.
 *    The memtable, and every slice it handed out, stays valid until the
 *    last reference is dropped. Each iterator holds its own reference.
 *
 * Invariants: (user key, seq) pairs added to one memtable are unique (the
 * tablet gives every entry its own sequence number); the arena only grows;
 * mt_count is the number of entries linked in. */
#ifndef MICA_TABLETSERVER_MEMTABLE_H
#define MICA_TABLETSERVER_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/iter.h"
#include "common/slice.h"
#include "tabletserver/wbatch.h"

typedef struct memtable memtable;

/* An empty memtable with one reference. Caller releases it with
 * mt_unref(). */
memtable *mt_new(void);
void mt_ref(memtable *m);
/* Drops a reference; frees the memtable when it was the last. Accepts
 * NULL. */
void mt_unref(memtable *m);

/* Adds one entry; copies the key and value into the arena. `kind` is
 * IKEY_PUT or IKEY_DELETE (value ignored, stored empty); `seq` must be
 * <= IKEY_MAX_SEQ and (user_key, seq) new to this memtable. One writer at
 * a time (see above). */
void mt_add(memtable *m, uint64_t seq, uint8_t kind, slice user_key,
            slice value);

/* Adds every entry of `b`, entry i with sequence number wbatch_seq(b) + i.
 * Same writer rule as mt_add. Readers may see a prefix of the batch while
 * it is being applied; the tablet hides that by publishing its visible
 * sequence number only after the whole batch is in. */
void mt_apply_batch(memtable *m, const wbatch *b);

enum mt_get_result {
  MT_ABSENT = 0,  /* no version of the key with seq <= snapshot_seq */
  MT_FOUND = 1,   /* newest visible version is a put; value copied */
  MT_DELETED = 2  /* newest visible version is a delete */
};

/* Looks up the newest version of `user_key` with seq <= snapshot_seq. On
 * MT_FOUND the value replaces the contents of `value` (value->len set; the
 * buf grows as needed; caller frees with buf_free). Lock-free. */
enum mt_get_result mt_get(memtable *m, slice user_key, uint64_t snapshot_seq,
                          buf *value);

/* An iterator over all entries in ikey_cmp order. key() is the internal
 * key, value() the value (empty for deletes); both stay valid as long as
 * the memtable does, which the iterator guarantees until it is closed
 * (it holds a reference). seek and seek_for_prev take internal keys (a
 * target shorter than IKEY_TRAILER is taken as a bare user key, sorting
 * before every version of it).
 * Entries added after creation may or may not be seen, but what is seen is
 * always complete and sorted. Never fails (status is always NULL). Caller
 * closes with iter_close(). */
iter *mt_iter_new(memtable *m);

/* Bytes of memory held (the arena's usage: keys, values, nodes). Any
 * thread. */
size_t mt_memory_usage(const memtable *m);
/* Entries added so far. Any thread. */
uint64_t mt_count(const memtable *m);
/* Largest sequence number added so far (0 when empty). Any thread. */
uint64_t mt_max_seq(const memtable *m);

#endif
