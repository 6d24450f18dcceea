/* sstutil: what the SSTable test programs share: an in-memory model of a
 * table (sorted internal keys and values), random model generators, and
 * helpers that build a file from a model and check a reader against it.
 *
 * Thread-safety: models are plain values; the check helpers may run on
 * many threads against one reader as long as each uses its own model view
 * read-only. */
#ifndef MICA_TESTS_SSTABLE_SSTUTIL_H
#define MICA_TESTS_SSTABLE_SSTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/env.h"
#include "common/ikey.h"
#include "sstable/sstable.h"

typedef struct model {
  size_t n, cap;
  buf *keys; /* internal keys, sorted by ikey_cmp */
  buf *vals;
} model;

typedef struct gen_opts {
  size_t entries;     /* internal keys wanted (approximately; exact here) */
  size_t min_key, max_key; /* user key length range */
  size_t min_val, max_val;
  int max_versions;   /* versions per user key, 1..n */
  bool binary;        /* keys drawn from all 256 byte values (with NULs) */
  int delete_pct;     /* percent of versions that are deletes */
} gen_opts;

void model_free(model *m);
/* Appends (ikey, value) without checking order. */
void model_add(model *m, slice ikey, slice value);
/* A random model per `o`; keys unique and sorted. */
void model_gen(model *m, const gen_opts *o);

/* Builds `path` from `m` with `opts` (NULL = defaults); asserts success. */
void build_file(env *e, const char *path, const sst_options *opts,
                const model *m, sst_properties *props);

/* Full forward and backward scans equal the model; asserts. Returns the
 * number of mismatches found (0 when equal). */
size_t check_scans(sst_reader *r, const model *m);

/* A fresh path in the test's temp directory. */
const char *tmp_path(const char *name);

#endif
