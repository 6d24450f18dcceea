/* tt: helpers shared by the tablet suites.
 *
 * A model is an in-memory sorted map from key to value (the truth the
 * randomized suites check the engine against); tt_check_scan compares one
 * tablet scan with the model, entry by entry. tt_res/tt_open open a
 * tablet with small memtables so that rotations, flushes and compactions
 * happen within a few hundred writes.
 *
 * Thread-safety: a model belongs to one thread. */
#ifndef MICA_TESTS_TABLET_TT_H
#define MICA_TESTS_TABLET_TT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/slice.h"
#include "tabletserver/tablet.h"

typedef struct tt_model {
  buf *keys, *vals;
  size_t n, cap;
} tt_model;

void tt_model_put(tt_model *m, slice k, slice v);
void tt_model_del(tt_model *m, slice k);
/* Index of `k` or -1. */
long tt_model_find(const tt_model *m, slice k);
/* First index with key >= k. */
size_t tt_model_lower(const tt_model *m, slice k);
void tt_model_copy(tt_model *dst, const tt_model *src);
void tt_model_free(tt_model *m);

/* Checks the scan `o` of `t` against the model restricted to [lo, hi)
 * (the tablet's range; hi.len 0 = unbounded). Returns the number of
 * entries compared; records CUnit failures. */
size_t tt_check_scan(tablet *t, const tab_scan_options *o, const tt_model *m,
                     slice lo, slice hi);

/* Options used by most suites: small memtables and limits that make
 * background work frequent. */
void tt_options(tab_options *o);
res_pool *tt_res(env *e, size_t budget);

/* "<dir>/tablets/<id>" in a static-lifetime string pool. */
const char *tt_tablet_dir(const char *root, uint64_t id);

#endif
