/* iter: the one iterator interface over sorted key/value sequences.
 *
 * Memtables, SSTable blocks, whole SSTables, the merge of many of them, a
 * tablet's snapshot view and the client's cross-tablet scanner all present
 * this interface, so code that consumes entries does not care where they
 * come from.
 *
 * An iterator is either positioned at an entry (iter_valid) or not. key()
 * and value() may be called only while valid; the slices they return stay
 * valid until the next call that moves the iterator or closes it. When a
 * move fails (corrupt block, I/O error) the iterator becomes invalid and
 * iter_status() reports why; a failed iterator never yields wrong entries.
 *
 * Thread-safety: one iterator is used by one thread at a time. */
#ifndef MICA_COMMON_ITER_H
#define MICA_COMMON_ITER_H

#include <stdbool.h>

#include "common/err.h"
#include "common/slice.h"

typedef struct iter iter;

/* Orders keys for iterators that compare (merging, seeking). */
typedef int (*key_cmp_fn)(slice a, slice b);

struct iter_ops {
  bool (*valid)(iter *it);
  void (*seek_to_first)(iter *it);
  void (*seek_to_last)(iter *it);
  /* First entry with key >= target. */
  void (*seek)(iter *it, slice target);
  /* Last entry with key <= target (for reverse scans). */
  void (*seek_for_prev)(iter *it, slice target);
  void (*next)(iter *it);
  void (*prev)(iter *it);
  slice (*key)(iter *it);
  slice (*value)(iter *it);
  /* NULL when no error; borrowed, valid until the iterator is closed. */
  const mica_err *(*status)(iter *it);
  void (*close)(iter *it);
};

/* Implementations embed this as their first member. */
struct iter {
  const struct iter_ops *ops;
};

static inline bool iter_valid(iter *it) { return it->ops->valid(it); }
static inline void iter_seek_to_first(iter *it) { it->ops->seek_to_first(it); }
static inline void iter_seek_to_last(iter *it) { it->ops->seek_to_last(it); }
static inline void iter_seek(iter *it, slice t) { it->ops->seek(it, t); }
static inline void iter_seek_for_prev(iter *it, slice t) {
  it->ops->seek_for_prev(it, t);
}
static inline void iter_next(iter *it) { it->ops->next(it); }
static inline void iter_prev(iter *it) { it->ops->prev(it); }
static inline slice iter_key(iter *it) { return it->ops->key(it); }
static inline slice iter_value(iter *it) { return it->ops->value(it); }
static inline const mica_err *iter_status(iter *it) { return it->ops->status(it); }
/* Accepts NULL. */
static inline void iter_close(iter *it) {
  if (it) it->ops->close(it);
}

/* seek_for_prev for iterators that only implement seek/prev/seek_to_last:
 * seek(target); if invalid seek_to_last else if key > target prev. */
void iter_generic_seek_for_prev(iter *it, slice target, key_cmp_fn cmp);

/* An iterator with no entries and the given status (NULL for none; takes
 * ownership). Caller closes with iter_close(). */
iter *iter_empty(mica_err *status);

/* Merges `n` children ordered by `cmp` into one sorted sequence, in both
 * directions. Entries with equal keys are all yielded, from the child with
 * the lower index first (callers put newer sources first). Takes ownership
 * of `children` (the array and every iterator in it, freed on close). The
 * first child error stops iteration and is reported by status. */
iter *merge_iter_new(iter **children, size_t n, key_cmp_fn cmp);

#endif
