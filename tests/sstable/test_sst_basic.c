/* test_sst_basic: SSTable round trips, seeks, point reads at snapshots,
 * Bloom filter accuracy, builder argument checks, approximate offsets and
 * middle keys. Every check compares against an in-memory model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/coding.h"
#include "common/ikey.h"
#include "sstable/sstable.h"
#include "tests/sstable/sstutil.h"
#include "tests/harness/testutil.h"

static env *E(void) { return env_posix(); }

static void opts_with(sst_options *o, sst_compression c) {
  sst_options_init(o);
  o->compression = c;
}

/* Index of the first model key >= target (m->n when none). */
static size_t lower_bound(const model *m, slice target) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ikey_cmp(buf_slice(&m->keys[mid]), target) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static size_t upper_bound(const model *m, slice target) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ikey_cmp(buf_slice(&m->keys[mid]), target) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void check_props(const sst_properties *p, const model *m) {
  uint64_t kb = 0, vb = 0, dels = 0;
  for (size_t i = 0; i < m->n; i++) {
    kb += m->keys[i].len;
    vb += m->vals[i].len;
    ikey_parts parts;
    CU_ASSERT_FATAL(ikey_parse(buf_slice(&m->keys[i]), &parts));
    if (parts.kind == IKEY_DELETE) dels++;
  }
  CU_ASSERT_EQUAL(p->num_entries, m->n);
  CU_ASSERT_EQUAL(p->num_deletions, dels);
  CU_ASSERT_EQUAL(p->raw_key_bytes, kb);
  CU_ASSERT_EQUAL(p->raw_value_bytes, vb);
  if (m->n > 0) {
    CU_ASSERT(slice_eq(buf_slice(&p->smallest_key), buf_slice(&m->keys[0])));
    CU_ASSERT(slice_eq(buf_slice(&p->largest_key), buf_slice(&m->keys[m->n - 1])));
  } else {
    CU_ASSERT_EQUAL(p->smallest_key.len, 0);
    CU_ASSERT_EQUAL(p->num_data_blocks, 0);
  }
}

/* Builds, reopens, scans both ways, verifies and compares properties. */
static void round_trip(const model *m, const sst_options *o, const char *name) {
  const char *path = tmp_path(name);
  sst_properties built;
  build_file(E(), path, o, m, &built);
  check_props(&built, m);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  const sst_properties *p = sst_reader_properties(r);
  check_props(p, m);
  CU_ASSERT_EQUAL(p->data_size, built.data_size);
  CU_ASSERT_EQUAL(p->index_size, built.index_size);
  CU_ASSERT_EQUAL(p->filter_size, built.filter_size);
  CU_ASSERT_EQUAL(p->num_data_blocks, sst_reader_num_blocks(r));
  CU_ASSERT_EQUAL(p->num_compressed_blocks, built.num_compressed_blocks);
  CU_ASSERT_EQUAL(p->compression, (uint32_t)o->compression);
  uint64_t fsize;
  TU_OK(env_file_size(E(), path, &fsize));
  CU_ASSERT_EQUAL(sst_reader_file_size(r), fsize);
  check_scans(r, m);
  TU_OK(sst_reader_verify(r));
  sst_reader_close(r);
  sst_properties_clear(&built);
  TU_OK(env_remove(E(), path));
}

static void test_empty(void) {
  model m = {0};
  for (int c = 0; c < 3; c++) {
    sst_options o;
    opts_with(&o, (sst_compression)c);
    round_trip(&m, &o, "empty.sst");
  }
  const char *path = tmp_path("empty2.sst");
  build_file(E(), path, NULL, &m, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  iter *it = sst_reader_iter_new(r, true);
  buf k = BUF_INIT;
  ikey_append(&k, slice_from_str("a"), 5, IKEY_PUT);
  iter_seek(it, buf_slice(&k));
  CU_ASSERT_FALSE(iter_valid(it));
  iter_seek_for_prev(it, buf_slice(&k));
  CU_ASSERT_FALSE(iter_valid(it));
  CU_ASSERT_PTR_NULL(iter_status(it));
  iter_close(it);
  sst_get_result res = SST_GET_PUT;
  buf v = BUF_INIT;
  TU_OK(sst_reader_get(r, slice_from_str("a"), IKEY_MAX_SEQ, &res, &v, NULL));
  CU_ASSERT_EQUAL(res, SST_GET_ABSENT);
  TU_ERR(sst_reader_middle_key(r, slice_make(NULL, 0), slice_make(NULL, 0), &v),
         MICA_NOT_FOUND);
  CU_ASSERT_EQUAL(sst_reader_approximate_offset(r, buf_slice(&k)), 0);
  sst_reader_close(r);
  buf_free(&k);
  buf_free(&v);
}

static void test_one_entry(void) {
  model m = {0};
  buf k = BUF_INIT;
  ikey_append(&k, slice_from_str("only"), 7, IKEY_PUT);
  model_add(&m, buf_slice(&k), slice_from_str("value"));
  for (int c = 0; c < 3; c++) {
    sst_options o;
    opts_with(&o, (sst_compression)c);
    round_trip(&m, &o, "one.sst");
  }
  model_free(&m);
  buf_free(&k);
}

static void test_many_sizes(void) {
  size_t sizes[] = {2, 3, 17, 100, 1000, 5000, 30000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    for (int c = 0; c < 3; c++) {
      model m = {0};
      gen_opts g = {.entries = sizes[s], .min_key = 1, .max_key = 40,
                    .min_val = 0, .max_val = 300, .max_versions = 3,
                    .delete_pct = 10};
      model_gen(&m, &g);
      sst_options o;
      opts_with(&o, (sst_compression)c);
      if (s % 2 == 1) {
        o.block_size = 1024;
        o.restart_interval = 1 + (int)tu_rand_below(20);
      }
      round_trip(&m, &o, "sizes.sst");
      model_free(&m);
    }
  }
}

/* Text-like values so that LZ4 and zstd really compress some blocks. */
static void test_compressible(void) {
  for (int c = 1; c < 3; c++) {
    model m = {0};
    buf k = BUF_INIT;
    char val[200];
    for (int i = 0; i < 5000; i++) {
      char uk[32];
      snprintf(uk, sizeof uk, "row%08d", i);
      snprintf(val, sizeof val, "value of row %d, padded padded padded padded %d", i, i % 7);
      buf_clear(&k);
      ikey_append(&k, slice_from_str(uk), 100, IKEY_PUT);
      model_add(&m, buf_slice(&k), slice_from_str(val));
    }
    sst_options o;
    opts_with(&o, (sst_compression)c);
    const char *path = tmp_path("compress.sst");
    sst_properties p;
    build_file(E(), path, &o, &m, &p);
    CU_ASSERT(p.num_compressed_blocks > 0);
    CU_ASSERT(p.data_size < p.raw_data_size * 7 / 8);
    sst_properties_clear(&p);
    round_trip(&m, &o, "compress2.sst");
    model_free(&m);
    buf_free(&k);

    /* Random values do not compress by 1/8: every block is stored raw. */
    gen_opts g = {.entries = 3000, .min_key = 8, .max_key = 16, .min_val = 100,
                  .max_val = 300};
    model_gen(&m, &g);
    path = tmp_path("incompressible.sst");
    build_file(E(), path, &o, &m, &p);
    CU_ASSERT(p.num_data_blocks > 10);
    CU_ASSERT_EQUAL(p.num_compressed_blocks, 0);
    CU_ASSERT_EQUAL(p.data_size, p.raw_data_size);
    sst_properties_clear(&p);
    model_free(&m);
  }
}

static void test_big_values(void) {
  model m = {0};
  buf k = BUF_INIT, v = BUF_INIT;
  size_t lens[] = {10, 8 << 20, 5, (8 << 20) - 1, 4096, 1 << 20, 0};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    char uk[16];
    snprintf(uk, sizeof uk, "k%02zu", i);
    buf_clear(&k);
    ikey_append(&k, slice_from_str(uk), 9, IKEY_PUT);
    buf_resize(&v, lens[i]);
    /* Half random, half repeated: compressible but not trivially. */
    tu_rand_bytes(v.data, lens[i] / 2);
    memset(v.data + lens[i] / 2, 'x', lens[i] - lens[i] / 2);
    model_add(&m, buf_slice(&k), buf_slice(&v));
  }
  for (int c = 0; c < 3; c++) {
    sst_options o;
    opts_with(&o, (sst_compression)c);
    round_trip(&m, &o, "big.sst");
  }
  model_free(&m);
  buf_free(&k);
  buf_free(&v);
}

static void test_big_keys(void) {
  model m = {0};
  gen_opts g = {.entries = 300, .min_key = 16 * 1024 - 20, .max_key = 16 * 1024,
                .min_val = 0, .max_val = 50, .max_versions = 2};
  model_gen(&m, &g);
  for (int c = 0; c < 3; c++) {
    sst_options o;
    opts_with(&o, (sst_compression)c);
    round_trip(&m, &o, "bigkeys.sst");
  }
  model_free(&m);
}

static void test_binary_keys(void) {
  model m = {0};
  gen_opts g = {.entries = 4000, .min_key = 0, .max_key = 6, .min_val = 0,
                .max_val = 20, .max_versions = 4, .binary = true, .delete_pct = 20};
  model_gen(&m, &g);
  /* Keys made of zero bytes of different lengths sort by length. */
  for (int c = 0; c < 3; c++) {
    sst_options o;
    opts_with(&o, (sst_compression)c);
    o.block_size = 1024;
    round_trip(&m, &o, "binary.sst");
  }
  model_free(&m);
}

/* Seek targets: every key, its neighbours by trailer, the user key alone
 * at the highest and lowest trailers, extensions and truncations. */
static void seek_targets(const model *m, size_t i, buf *out, size_t *n) {
  slice k = buf_slice(&m->keys[i]);
  slice uk = ikey_user_key(k);
  uint64_t t = decode_fixed64(k.data + k.len - IKEY_TRAILER);
  *n = 0;
  buf_clear(&out[(*n)++]);
  buf_append_slice(&out[*n - 1], k);
  uint64_t trailers[] = {t + 1, t - 1, UINT64_MAX, 0};
  for (int j = 0; j < 4; j++) {
    buf *b = &out[(*n)++];
    buf_clear(b);
    buf_append_slice(b, uk);
    put_fixed64(b, trailers[j]);
  }
  buf *b = &out[(*n)++];
  buf_clear(b);
  buf_append_slice(b, uk);
  buf_push(b, 0);
  put_fixed64(b, UINT64_MAX);
  if (uk.len > 0) {
    b = &out[(*n)++];
    buf_clear(b);
    buf_append(b, uk.data, uk.len - 1);
    put_fixed64(b, 0);
  }
}

static void check_seeks(sst_reader *r, const model *m) {
  iter *it = sst_reader_iter_new(r, true);
  buf targets[8] = {BUF_INIT};
  size_t bad = 0;
  for (size_t i = 0; i < m->n && bad == 0; i++) {
    size_t nt;
    seek_targets(m, i, targets, &nt);
    for (size_t j = 0; j < nt; j++) {
      slice t = buf_slice(&targets[j]);
      size_t lb = lower_bound(m, t);
      iter_seek(it, t);
      if (lb == m->n ? iter_valid(it)
                     : !iter_valid(it) || !slice_eq(iter_key(it), buf_slice(&m->keys[lb])))
        bad++;
      if (lb < m->n && iter_valid(it)) {
        /* A step back and forth returns to the same entry. */
        iter_prev(it);
        if (lb == 0 ? iter_valid(it)
                    : !iter_valid(it) ||
                          !slice_eq(iter_key(it), buf_slice(&m->keys[lb - 1])))
          bad++;
        if (lb == 0) iter_seek(it, t); else iter_next(it);
        if (!iter_valid(it) || !slice_eq(iter_key(it), buf_slice(&m->keys[lb]))) bad++;
      }
      size_t ub = upper_bound(m, t);
      iter_seek_for_prev(it, t);
      if (ub == 0 ? iter_valid(it)
                  : !iter_valid(it) ||
                        !slice_eq(iter_key(it), buf_slice(&m->keys[ub - 1])) ||
                        !slice_eq(iter_value(it), buf_slice(&m->vals[ub - 1])))
        bad++;
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_PTR_NULL(iter_status(it));
  /* Before the first and after the last key. */
  if (m->n > 0) {
    buf lo = BUF_INIT, hi = BUF_INIT;
    ikey_append(&lo, slice_make("", 0), IKEY_MAX_SEQ, IKEY_PUT);
    buf_resize(&hi, 20000);
    memset(hi.data, 0xff, hi.len);
    iter_seek(it, buf_slice(&lo));
    CU_ASSERT(iter_valid(it) && slice_eq(iter_key(it), buf_slice(&m->keys[0])));
    iter_seek(it, buf_slice(&hi));
    CU_ASSERT_FALSE(iter_valid(it));
    iter_seek_for_prev(it, buf_slice(&hi));
    CU_ASSERT(iter_valid(it) && slice_eq(iter_key(it), buf_slice(&m->keys[m->n - 1])));
    buf_free(&lo);
    buf_free(&hi);
  }
  for (int j = 0; j < 8; j++) buf_free(&targets[j]);
  iter_close(it);
}

static void test_seek_boundaries(void) {
  for (int c = 0; c < 3; c++) {
    model m = {0};
    gen_opts g = {.entries = 3000, .min_key = 0, .max_key = 12, .min_val = 0,
                  .max_val = 40, .max_versions = 4, .binary = c == 1,
                  .delete_pct = 15};
    model_gen(&m, &g);
    sst_options o;
    opts_with(&o, (sst_compression)c);
    o.block_size = 1024;
    o.restart_interval = c == 2 ? 1 : 5;
    const char *path = tmp_path("seek.sst");
    build_file(E(), path, &o, &m, NULL);
    sst_reader *r;
    TU_OK(sst_reader_open(E(), path, NULL, &r));
    CU_ASSERT(sst_reader_num_blocks(r) > 10);
    check_seeks(r, &m);
    sst_reader_close(r);
    model_free(&m);
  }
}

/* Reverse iteration equals forward iteration reversed, also when the two
 * directions are mixed within one block and across block boundaries. */
static void test_direction_changes(void) {
  model m = {0};
  gen_opts g = {.entries = 2000, .min_key = 1, .max_key = 20, .min_val = 0,
                .max_val = 100, .max_versions = 2};
  model_gen(&m, &g);
  sst_options o;
  sst_options_init(&o);
  o.block_size = 1024;
  o.restart_interval = 7;
  const char *path = tmp_path("dir.sst");
  build_file(E(), path, &o, &m, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  iter *it = sst_reader_iter_new(r, false);
  size_t pos = 0, bad = 0;
  iter_seek_to_first(it);
  for (int step = 0; step < 20000; step++) {
    bool fwd = tu_rand_below(3) != 0;
    if (fwd && pos + 1 < m.n) {
      iter_next(it);
      pos++;
    } else if (!fwd && pos > 0) {
      iter_prev(it);
      pos--;
    } else {
      continue;
    }
    if (!iter_valid(it) || !slice_eq(iter_key(it), buf_slice(&m.keys[pos]))) {
      bad++;
      break;
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  iter_close(it);
  /* The iterator keeps the reader alive after the reader is closed. */
  it = sst_reader_iter_new(r, true);
  sst_reader_close(r);
  iter_seek_to_last(it);
  CU_ASSERT(iter_valid(it) && slice_eq(iter_key(it), buf_slice(&m.keys[m.n - 1])));
  iter_close(it);
  model_free(&m);
}

/* Expected point read from the model: newest version with seq <= snap. */
static sst_get_result model_get(const model *m, slice uk, uint64_t snap,
                                const buf **val, uint64_t *seq) {
  buf t = BUF_INIT;
  ikey_append(&t, uk, snap, IKEY_SEEK_KIND);
  size_t i = lower_bound(m, buf_slice(&t));
  buf_free(&t);
  if (i == m->n) return SST_GET_ABSENT;
  ikey_parts p;
  ikey_parse(buf_slice(&m->keys[i]), &p);
  if (!slice_eq(p.user_key, uk)) return SST_GET_ABSENT;
  *val = &m->vals[i];
  *seq = p.seq;
  return p.kind == IKEY_PUT ? SST_GET_PUT : SST_GET_DELETED;
}

static void test_get_snapshots(void) {
  model m = {0};
  gen_opts g = {.entries = 5000, .min_key = 1, .max_key = 10, .min_val = 0,
                .max_val = 60, .max_versions = 5, .delete_pct = 25};
  model_gen(&m, &g);
  sst_options o;
  sst_options_init(&o);
  o.block_size = 1024;
  const char *path = tmp_path("get.sst");
  build_file(E(), path, &o, &m, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  buf v = BUF_INIT;
  size_t bad = 0, puts = 0, dels = 0, absent = 0;
  for (size_t i = 0; i < m.n; i++) {
    ikey_parts p;
    ikey_parse(buf_slice(&m.keys[i]), &p);
    uint64_t snaps[] = {p.seq, p.seq - 1, p.seq + 1, IKEY_MAX_SEQ, UINT64_MAX, 0};
    for (int s = 0; s < 6; s++) {
      const buf *want = NULL;
      uint64_t wseq = 0, gseq = 0;
      sst_get_result exp = model_get(&m, p.user_key,
                                     snaps[s] > IKEY_MAX_SEQ ? IKEY_MAX_SEQ : snaps[s],
                                     &want, &wseq);
      sst_get_result got;
      buf_clear(&v);
      buf_append(&v, "junk", 4);
      TU_OK(sst_reader_get(r, p.user_key, snaps[s], &got, &v, &gseq));
      if (got != exp) bad++;
      if (got == SST_GET_PUT && (!slice_eq(buf_slice(&v), buf_slice(want)) || gseq != wseq))
        bad++;
      if (got == SST_GET_DELETED && gseq != wseq) bad++;
      puts += got == SST_GET_PUT;
      dels += got == SST_GET_DELETED;
      absent += got == SST_GET_ABSENT;
    }
  }
  /* Keys that are not there at all. */
  for (int i = 0; i < 2000; i++) {
    char uk[32];
    snprintf(uk, sizeof uk, "%c-missing-%d", 'a' + i % 26, i);
    sst_get_result got;
    TU_OK(sst_reader_get(r, slice_from_str(uk), IKEY_MAX_SEQ, &got, &v, NULL));
    if (got != SST_GET_ABSENT) bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(puts > 0 && dels > 0 && absent > 0);
  sst_reader_close(r);
  model_free(&m);
  buf_free(&v);
}

static void test_bloom_rate(void) {
  const size_t n = 100000;
  model m = {0};
  buf k = BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    char uk[32];
    snprintf(uk, sizeof uk, "key%09zu", i * 2);
    buf_clear(&k);
    ikey_append(&k, slice_from_str(uk), 1, IKEY_PUT);
    model_add(&m, buf_slice(&k), slice_make("", 0));
  }
  const char *path = tmp_path("bloom.sst");
  build_file(E(), path, NULL, &m, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  size_t fn = 0, fp = 0, probes = 200000;
  for (size_t i = 0; i < n; i++) {
    char uk[32];
    snprintf(uk, sizeof uk, "key%09zu", i * 2);
    if (!sst_reader_may_contain(r, slice_from_str(uk))) fn++;
  }
  for (size_t i = 0; i < probes; i++) {
    char uk[32];
    snprintf(uk, sizeof uk, "key%09zu", i * 2 + 1);
    if (sst_reader_may_contain(r, slice_from_str(uk))) fp++;
  }
  /* The classic filter's rate for k = 6 probes, m/n = 10 bits:
   * (1 - e^(-6/10))^6 = 0.84%. Mica's filter is blocked (all probes in one
   * cache line), which costs a little (about 0.95%); it must stay within
   * twice the classic figure. */
  double theory = pow(1 - exp(-6.0 / 10.0), 6);
  double rate = (double)fp / (double)probes;
  fprintf(stderr, "\nbloom: false positives %.4f%%, theory %.4f%%\n", rate * 100,
          theory * 100);
  CU_ASSERT_EQUAL(fn, 0);
  CU_ASSERT(rate <= 2 * theory);
  CU_ASSERT(rate >= theory / 2); /* a filter that always says "no" would pass above */
  CU_ASSERT(sst_reader_properties(r)->filter_size >= n * 10 / 8);
  sst_reader_close(r);

  /* No filter: everything may be present. */
  sst_options o;
  sst_options_init(&o);
  o.bloom_bits_per_key = 0;
  path = tmp_path("nobloom.sst");
  build_file(E(), path, &o, &m, NULL);
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  CU_ASSERT_EQUAL(sst_reader_properties(r)->filter_size, 0);
  CU_ASSERT(sst_reader_may_contain(r, slice_from_str("nothing")));
  sst_get_result got;
  buf v = BUF_INIT;
  TU_OK(sst_reader_get(r, slice_from_str("key000000004"), 5, &got, &v, NULL));
  CU_ASSERT_EQUAL(got, SST_GET_PUT);
  TU_OK(sst_reader_get(r, slice_from_str("key000000005"), 5, &got, &v, NULL));
  CU_ASSERT_EQUAL(got, SST_GET_ABSENT);
  sst_reader_close(r);
  model_free(&m);
  buf_free(&k);
  buf_free(&v);
}

static void test_builder_rejects(void) {
  const char *path = tmp_path("bad.sst");
  sst_builder *b;
  sst_options o;
  sst_options_init(&o);
  o.block_size = 10;
  TU_ERR(sst_builder_new(E(), path, &o, &b), MICA_INVALID_ARGUMENT);
  sst_options_init(&o);
  o.restart_interval = 0;
  TU_ERR(sst_builder_new(E(), path, &o, &b), MICA_INVALID_ARGUMENT);
  sst_options_init(&o);
  o.bloom_bits_per_key = -1;
  TU_ERR(sst_builder_new(E(), path, &o, &b), MICA_INVALID_ARGUMENT);
  sst_options_init(&o);
  o.compression = (sst_compression)7;
  TU_ERR(sst_builder_new(E(), path, &o, &b), MICA_INVALID_ARGUMENT);

  TU_OK(sst_builder_new(E(), path, NULL, &b));
  buf k = BUF_INIT;
  ikey_append(&k, slice_from_str("m"), 10, IKEY_PUT);
  TU_OK(sst_builder_add(b, buf_slice(&k), slice_from_str("v")));
  /* The same key again, then a newer version (which sorts first). */
  TU_ERR(sst_builder_add(b, buf_slice(&k), slice_from_str("v")), MICA_INVALID_ARGUMENT);
  buf_clear(&k);
  ikey_append(&k, slice_from_str("m"), 11, IKEY_PUT);
  TU_ERR(sst_builder_add(b, buf_slice(&k), slice_from_str("v")), MICA_INVALID_ARGUMENT);
  buf_clear(&k);
  ikey_append(&k, slice_from_str("a"), 1, IKEY_PUT);
  TU_ERR(sst_builder_add(b, buf_slice(&k), slice_from_str("v")), MICA_INVALID_ARGUMENT);
  TU_ERR(sst_builder_add(b, slice_from_str("short"), slice_from_str("v")),
         MICA_INVALID_ARGUMENT);
  buf_clear(&k);
  ikey_append(&k, slice_from_str("z"), 1, 7);
  TU_ERR(sst_builder_add(b, buf_slice(&k), slice_from_str("v")), MICA_INVALID_ARGUMENT);
  /* An entry too big for any block is refused up front (the value is
   * never read: the lengths decide). */
  buf_clear(&k);
  ikey_append(&k, slice_from_str("m"), 9, IKEY_PUT);
  TU_ERR(sst_builder_add(b, buf_slice(&k), slice_make(k.data, (size_t)300 << 20)),
         MICA_INVALID_ARGUMENT);
  /* Still usable: an older version of "m" and a later key go in. */
  buf_clear(&k);
  ikey_append(&k, slice_from_str("m"), 9, IKEY_DELETE);
  TU_OK(sst_builder_add(b, buf_slice(&k), slice_make("", 0)));
  buf_clear(&k);
  ikey_append(&k, slice_from_str("n"), 1, IKEY_PUT);
  TU_OK(sst_builder_add(b, buf_slice(&k), slice_from_str("w")));
  sst_properties p;
  TU_OK(sst_builder_finish(b, &p));
  CU_ASSERT_EQUAL(p.num_entries, 3);
  CU_ASSERT_EQUAL(p.num_deletions, 1);
  CU_ASSERT_EQUAL(p.smallest_seq, 1);
  CU_ASSERT_EQUAL(p.largest_seq, 10);
  sst_properties_clear(&p);

  /* Abandon removes the file. */
  TU_OK(sst_builder_new(E(), path, NULL, &b));
  TU_OK(sst_builder_add(b, buf_slice(&k), slice_from_str("w")));
  CU_ASSERT(env_exists(E(), path));
  sst_builder_abandon(b);
  CU_ASSERT_FALSE(env_exists(E(), path));
  sst_builder_abandon(NULL);
  buf_free(&k);
}

static void test_offsets_and_middle(void) {
  model m = {0};
  gen_opts g = {.entries = 20000, .min_key = 4, .max_key = 16, .min_val = 10,
                .max_val = 200, .max_versions = 3};
  model_gen(&m, &g);
  const char *path = tmp_path("mid.sst");
  sst_builder *b;
  TU_OK(sst_builder_new(E(), path, NULL, &b));
  for (size_t i = 0; i < m.n; i++)
    TU_OK(sst_builder_add(b, buf_slice(&m.keys[i]), buf_slice(&m.vals[i])));
  uint64_t est = sst_builder_file_size(b);
  TU_OK(sst_builder_finish(b, NULL));
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  uint64_t fsize = sst_reader_file_size(r);
  CU_ASSERT(est > fsize * 9 / 10 && est < fsize * 11 / 10);

  /* Offsets never decrease and stay within the data. */
  uint64_t prev = 0;
  const sst_properties *p = sst_reader_properties(r);
  for (size_t i = 0; i < m.n; i += 7) {
    uint64_t off = sst_reader_approximate_offset(r, buf_slice(&m.keys[i]));
    CU_ASSERT(off >= prev && off < p->data_size);
    prev = off;
  }
  buf big = BUF_INIT;
  buf_resize(&big, 100);
  memset(big.data, 0xff, big.len);
  CU_ASSERT_EQUAL(sst_reader_approximate_offset(r, buf_slice(&big)), p->data_size);
  /* Block info tiles the data. */
  uint64_t next = 0;
  for (size_t i = 0; i < sst_reader_num_blocks(r); i++) {
    sst_block_info bi;
    sst_reader_block_info(r, i, &bi);
    CU_ASSERT_EQUAL(bi.offset, next);
    next = bi.offset + bi.size;
  }
  CU_ASSERT_EQUAL(next, p->data_size);

  /* Whole file: the middle key splits the raw bytes near half. */
  buf mid = BUF_INIT;
  TU_OK(sst_reader_middle_key(r, slice_make(NULL, 0), slice_make(NULL, 0), &mid));
  uint64_t below = 0, total = 0;
  for (size_t i = 0; i < m.n; i++) {
    uint64_t sz = m.keys[i].len + m.vals[i].len;
    total += sz;
    if (slice_cmp(ikey_user_key(buf_slice(&m.keys[i])), buf_slice(&mid)) < 0) below += sz;
  }
  CU_ASSERT(below > total * 45 / 100 && below < total * 55 / 100);

  /* Random ranges: the key is strictly inside and both halves hold data. */
  for (int t = 0; t < 300; t++) {
    size_t a = tu_rand_below(m.n), c = tu_rand_below(m.n);
    if (a > c) { size_t x = a; a = c; c = x; }
    slice s = ikey_user_key(buf_slice(&m.keys[a]));
    slice e = ikey_user_key(buf_slice(&m.keys[c]));
    /* Distinct user keys in [s, e): older versions of e's own user key
     * sit before index c but are outside the range (the end is exclusive). */
    size_t distinct = 0;
    for (size_t i = a; i < c; i++) {
      slice uk = ikey_user_key(buf_slice(&m.keys[i]));
      if (slice_cmp(uk, e) >= 0) break;
      if (i == a || !slice_eq(uk, ikey_user_key(buf_slice(&m.keys[i - 1])))) distinct++;
    }
    mica_err *err = sst_reader_middle_key(r, s, e, &mid);
    if (distinct < 2) {
      CU_ASSERT_EQUAL(err_code(err), MICA_NOT_FOUND);
      err_free(err);
      continue;
    }
    TU_OK(err);
    CU_ASSERT(slice_cmp(s, buf_slice(&mid)) < 0 && slice_cmp(buf_slice(&mid), e) < 0);
    uint64_t lo = 0, hi = 0;
    for (size_t i = a; i < c; i++) {
      slice uk = ikey_user_key(buf_slice(&m.keys[i]));
      if (slice_cmp(uk, e) >= 0) break;
      uint64_t sz = m.keys[i].len + m.vals[i].len;
      if (slice_cmp(uk, buf_slice(&mid)) < 0) lo += sz;
      else hi += sz;
    }
    CU_ASSERT(lo > 0 && hi > 0);
    /* Within a block or so of the middle for ranges of many blocks. */
    if (lo + hi > 64 * 1024) CU_ASSERT(lo > (lo + hi) / 4 && hi > (lo + hi) / 4);
  }
  /* Only a start bound, only an end bound. */
  slice s = ikey_user_key(buf_slice(&m.keys[m.n / 3]));
  TU_OK(sst_reader_middle_key(r, s, slice_make(NULL, 0), &mid));
  CU_ASSERT(slice_cmp(s, buf_slice(&mid)) < 0);
  TU_OK(sst_reader_middle_key(r, slice_make(NULL, 0), s, &mid));
  CU_ASSERT(slice_cmp(buf_slice(&mid), s) < 0);
  sst_reader_close(r);
  model_free(&m);
  buf_free(&mid);
  buf_free(&big);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"empty table", test_empty},
      {"one entry", test_one_entry},
      {"random data at many sizes and compressions", test_many_sizes},
      {"compressible data is compressed", test_compressible},
      {"values up to 8 MiB", test_big_values},
      {"16 KiB keys", test_big_keys},
      {"binary keys with zero bytes", test_binary_keys},
      {"seek and seek_for_prev at every boundary", test_seek_boundaries},
      {"direction changes", test_direction_changes},
      {"get at snapshots with versions and deletes", test_get_snapshots},
      {"bloom false positive rate", test_bloom_rate},
      {"builder rejects bad input", test_builder_rejects},
      {"approximate offsets and middle key", test_offsets_and_middle},
      CU_TEST_INFO_NULL};
  tu_add_suite("sstable", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
