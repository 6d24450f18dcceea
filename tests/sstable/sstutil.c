/* sstutil: models, generators and checks shared by the SSTable tests. */
#include "tests/sstable/sstutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/testutil.h"

void model_free(model *m) {
  for (size_t i = 0; i < m->n; i++) {
    buf_free(&m->keys[i]);
    buf_free(&m->vals[i]);
  }
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

void model_add(model *m, slice ikey, slice value) {
  if (m->n == m->cap) {
    m->cap = m->cap ? m->cap * 2 : 64;
    m->keys = xrealloc(m->keys, m->cap * sizeof *m->keys);
    m->vals = xrealloc(m->vals, m->cap * sizeof *m->vals);
  }
  buf k = BUF_INIT, v = BUF_INIT;
  buf_append_slice(&k, ikey);
  buf_append_slice(&v, value);
  m->keys[m->n] = k;
  m->vals[m->n] = v;
  m->n++;
}

static int cmp_bufs(const void *a, const void *b) {
  return slice_cmp(buf_slice(a), buf_slice(b));
}

static size_t rand_len(size_t lo, size_t hi) {
  return lo + (size_t)tu_rand_below(hi - lo + 1);
}

void model_gen(model *m, const gen_opts *o) {
  /* Distinct user keys first (sorted, deduplicated), then versions. */
  size_t nkeys = o->entries;
  buf *uks = xcalloc(nkeys > 0 ? nkeys : 1, sizeof *uks);
  for (size_t i = 0; i < nkeys; i++) {
    size_t len = rand_len(o->min_key, o->max_key);
    buf_resize(&uks[i], len);
    if (o->binary) {
      tu_rand_bytes(uks[i].data, len);
    } else {
      for (size_t j = 0; j < len; j++) uks[i].data[j] = (uint8_t)('a' + tu_rand_below(26));
    }
  }
  qsort(uks, nkeys, sizeof *uks, cmp_bufs);
  size_t made = 0;
  uint64_t seq = 1000000;
  buf ik = BUF_INIT, val = BUF_INIT;
  for (size_t i = 0; i < nkeys && made < o->entries; i++) {
    if (i > 0 && slice_eq(buf_slice(&uks[i]), buf_slice(&uks[i - 1]))) continue;
    int versions = o->max_versions > 1 ? 1 + (int)tu_rand_below((uint64_t)o->max_versions) : 1;
    uint64_t s = seq + tu_rand_below(1000) + (uint64_t)versions * 10;
    for (int v = 0; v < versions && made < o->entries; v++) {
      s -= 1 + tu_rand_below(9);
      bool del = o->delete_pct > 0 && (int)tu_rand_below(100) < o->delete_pct;
      buf_clear(&ik);
      ikey_append(&ik, buf_slice(&uks[i]), s, del ? IKEY_DELETE : IKEY_PUT);
      buf_clear(&val);
      if (!del) {
        buf_resize(&val, rand_len(o->min_val, o->max_val));
        tu_rand_bytes(val.data, val.len);
      }
      model_add(m, buf_slice(&ik), buf_slice(&val));
      made++;
    }
  }
  for (size_t i = 0; i < nkeys; i++) buf_free(&uks[i]);
  free(uks);
  buf_free(&ik);
  buf_free(&val);
}

void build_file(env *e, const char *path, const sst_options *opts,
                const model *m, sst_properties *props) {
  sst_builder *b;
  TU_OK(sst_builder_new(e, path, opts, &b));
  for (size_t i = 0; i < m->n; i++)
    TU_OK(sst_builder_add(b, buf_slice(&m->keys[i]), buf_slice(&m->vals[i])));
  CU_ASSERT_EQUAL(sst_builder_num_entries(b), m->n);
  TU_OK(sst_builder_finish(b, props));
}

size_t check_scans(sst_reader *r, const model *m) {
  size_t bad = 0;
  iter *it = sst_reader_iter_new(r, true);
  size_t i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), i++) {
    if (i >= m->n || !slice_eq(iter_key(it), buf_slice(&m->keys[i])) ||
        !slice_eq(iter_value(it), buf_slice(&m->vals[i]))) {
      bad++;
      break;
    }
  }
  CU_ASSERT_PTR_NULL(iter_status(it));
  if (i != m->n) bad++;
  i = m->n;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) {
    if (i == 0 || !slice_eq(iter_key(it), buf_slice(&m->keys[i - 1])) ||
        !slice_eq(iter_value(it), buf_slice(&m->vals[i - 1]))) {
      bad++;
      break;
    }
    i--;
  }
  CU_ASSERT_PTR_NULL(iter_status(it));
  if (i != 0) bad++;
  iter_close(it);
  CU_ASSERT_EQUAL(bad, 0);
  return bad;
}

const char *tmp_path(const char *name) {
  static char paths[64][512];
  static int next;
  static const char *dir;
  if (dir == NULL) dir = tu_tmpdir();
  char *p = paths[next % 64];
  snprintf(p, sizeof paths[0], "%s/%d-%s", dir, next, name);
  next++;
  return p;
}
