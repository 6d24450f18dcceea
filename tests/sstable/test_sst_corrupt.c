/* test_sst_corrupt: damaged SSTables and failing disks.
 *
 * Every byte of a small file is flipped in turn, the file is cut at every
 * length, the magic, version and block handles are forged (with valid
 * checksums, so the structural checks and not the CRCs must catch them),
 * and builds run over a fault env that fails each write and sync in turn.
 * Each time the library must answer CORRUPTION (or the I/O error) naming
 * the file, or yield exactly the original data: never wrong data, never a
 * crash. */
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/env.h"
#include "common/ikey.h"
#include "sstable/sst_int.h"
#include "sstable/sstable.h"
#include "tests/sstable/sstutil.h"
#include "tests/harness/testutil.h"

static env *E(void) { return env_posix(); }

static void write_bytes(const char *path, const uint8_t *data, size_t n) {
  env_writer *w;
  TU_OK(env_open_writer(E(), path, ENV_TRUNCATE, &w));
  if (n > 0) TU_OK(env_append(w, data, n));
  TU_OK(env_writer_close(w));
}

static void read_all(const char *path, buf *out) {
  buf_clear(out);
  TU_OK(env_read_file(E(), path, 1 << 30, out));
}

static bool names_file(const mica_err *e, const char *path) {
  return strstr(err_msg(e), path) != NULL;
}

typedef struct outcome {
  size_t open_fail, verify_fail, iter_fail, intact, wrong;
} outcome;

/* Opens `path` and reads it every way; every answer must be CORRUPTION
 * naming the file or exactly `m`. */
static void examine(const char *path, const model *m, outcome *o) {
  sst_reader *r;
  mica_err *err = sst_reader_open(E(), path, NULL, &r);
  if (err != NULL) {
    if (err_code(err) != MICA_CORRUPTION || !names_file(err, path)) {
      fprintf(stderr, "\nopen: %s %s\n", mica_code_name(err_code(err)), err_msg(err));
      o->wrong++;
    }
    err_free(err);
    o->open_fail++;
    return;
  }
  bool failed = false;
  err = sst_reader_verify(r);
  if (err != NULL) {
    if (err_code(err) != MICA_CORRUPTION || !names_file(err, path)) o->wrong++;
    err_free(err);
    o->verify_fail++;
    failed = true;
  }
  /* Forward: a prefix of the model, then either the end or an error. */
  iter *it = sst_reader_iter_new(r, false);
  size_t i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), i++) {
    if (i >= m->n || !slice_eq(iter_key(it), buf_slice(&m->keys[i])) ||
        !slice_eq(iter_value(it), buf_slice(&m->vals[i]))) {
      o->wrong++;
      break;
    }
  }
  const mica_err *st = iter_status(it);
  if (st != NULL) {
    if (err_code(st) != MICA_CORRUPTION || !names_file(st, path)) o->wrong++;
    failed = true;
  } else if (i != m->n) {
    o->wrong++;
  }
  iter_close(it);
  /* Backward: a suffix of the model. */
  it = sst_reader_iter_new(r, false);
  i = m->n;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) {
    if (i == 0 || !slice_eq(iter_key(it), buf_slice(&m->keys[i - 1])) ||
        !slice_eq(iter_value(it), buf_slice(&m->vals[i - 1]))) {
      o->wrong++;
      break;
    }
    i--;
  }
  st = iter_status(it);
  if (st != NULL) {
    failed = true;
    if (err_code(st) != MICA_CORRUPTION) o->wrong++;
  } else if (i != 0) {
    o->wrong++;
  }
  iter_close(it);
  /* Point reads: the right answer or an error. */
  buf v = BUF_INIT;
  for (size_t j = 0; j < m->n; j += 3) {
    ikey_parts p;
    ikey_parse(buf_slice(&m->keys[j]), &p);
    sst_get_result res;
    err = sst_reader_get(r, p.user_key, p.seq, &res, &v, NULL);
    if (err != NULL) {
      if (err_code(err) != MICA_CORRUPTION) o->wrong++;
      err_free(err);
      failed = true;
      continue;
    }
    sst_get_result want = p.kind == IKEY_PUT ? SST_GET_PUT : SST_GET_DELETED;
    if (res != want || (res == SST_GET_PUT && !slice_eq(buf_slice(&v), buf_slice(&m->vals[j]))))
      o->wrong++;
  }
  buf_free(&v);
  if (failed) o->iter_fail++;
  else o->intact++;
  sst_reader_close(r);
}

static void small_model(model *m) {
  gen_opts g = {.entries = 40, .min_key = 1, .max_key = 12, .min_val = 0,
                .max_val = 60, .max_versions = 2, .binary = true, .delete_pct = 20};
  model_gen(m, &g);
}

static void test_flip_every_byte(void) {
  for (int c = 0; c < 3; c++) {
    model m = {0};
    small_model(&m);
    sst_options o;
    sst_options_init(&o);
    o.block_size = 1024;
    o.restart_interval = 4;
    o.compression = (sst_compression)c;
    const char *orig = tmp_path("flip-orig.sst");
    build_file(E(), orig, &o, &m, NULL);
    buf bytes = BUF_INIT;
    read_all(orig, &bytes);
    const char *path = tmp_path("flip.sst");
    outcome out = {0};
    for (size_t i = 0; i < bytes.len; i++) {
      uint8_t saved = bytes.data[i];
      bytes.data[i] ^= (uint8_t)(1u << tu_rand_below(8));
      write_bytes(path, bytes.data, bytes.len);
      examine(path, &m, &out);
      bytes.data[i] = saved;
    }
    fprintf(stderr, "\n  compression %d, %zu bytes: open failed %zu, verify failed %zu, "
            "reads failed %zu, intact %zu", c, bytes.len, out.open_fail,
            out.verify_fail, out.iter_fail, out.intact);
    CU_ASSERT_EQUAL(out.wrong, 0);
    /* Every byte is under a checksum, so every flip is noticed. */
    CU_ASSERT_EQUAL(out.intact, 0);
    CU_ASSERT_EQUAL(out.open_fail + out.iter_fail, bytes.len);
    buf_free(&bytes);
    model_free(&m);
  }
}

static void test_truncate_every_length(void) {
  model m = {0};
  small_model(&m);
  sst_options o;
  sst_options_init(&o);
  o.block_size = 1024;
  const char *orig = tmp_path("trunc-orig.sst");
  build_file(E(), orig, &o, &m, NULL);
  buf bytes = BUF_INIT;
  read_all(orig, &bytes);
  const char *path = tmp_path("trunc.sst");
  size_t bad = 0;
  for (size_t len = 0; len < bytes.len; len++) {
    write_bytes(path, bytes.data, len);
    sst_reader *r;
    mica_err *err = sst_reader_open(E(), path, NULL, &r);
    if (err_code(err) != MICA_CORRUPTION || !names_file(err, path)) bad++;
    err_free(err);
    if (err == NULL) sst_reader_close(r);
  }
  CU_ASSERT_EQUAL(bad, 0);
  buf_free(&bytes);
  model_free(&m);
}

/* Rewrites the footer of `bytes` (a whole file) with `mutate` applied to
 * its first 52 bytes, recomputing the footer checksum. */
static void forge_footer(buf *bytes, void (*mutate)(uint8_t *ft, void *arg), void *arg) {
  uint8_t *ft = bytes->data + bytes->len - SST_FOOTER_SIZE;
  mutate(ft, arg);
  encode_fixed32(ft + 52, crc32c_mask(crc32c_value(ft, 52)));
}

static void set_version(uint8_t *ft, void *arg) { encode_fixed32(ft + 48, *(uint32_t *)arg); }
static void set_u64(uint8_t *ft, void *arg) {
  uint64_t *a = arg; /* a[0] = field offset, a[1] = value */
  encode_fixed64(ft + a[0], a[1]);
}

static void expect_corrupt(const char *path, const buf *bytes, const char *needle) {
  write_bytes(path, bytes->data, bytes->len);
  sst_reader *r = NULL;
  mica_err *err = sst_reader_open(E(), path, NULL, &r);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  if (err != NULL) {
    CU_ASSERT(names_file(err, path));
    CU_ASSERT(strstr(err_msg(err), "offset") != NULL);
    if (needle != NULL && strstr(err_msg(err), needle) == NULL) {
      fprintf(stderr, "\nmessage '%s' lacks '%s'\n", err_msg(err), needle);
      CU_FAIL("message does not say what is wrong");
    }
  }
  err_free(err);
  sst_reader_close(r);
}

static void test_forged_footer(void) {
  model m = {0};
  small_model(&m);
  const char *orig = tmp_path("forge-orig.sst");
  sst_options o;
  sst_options_init(&o);
  o.block_size = 1024;
  build_file(E(), orig, &o, &m, NULL);
  buf good = BUF_INIT, bytes = BUF_INIT;
  read_all(orig, &good);
  const char *path = tmp_path("forge.sst");

  /* Bad magic. */
  buf_clear(&bytes);
  buf_append_slice(&bytes, buf_slice(&good));
  bytes.data[bytes.len - 1] ^= 0x40;
  expect_corrupt(path, &bytes, "magic");
  /* Not an SSTable at all. */
  buf_clear(&bytes);
  buf_resize(&bytes, 4096);
  memset(bytes.data, 'x', bytes.len);
  expect_corrupt(path, &bytes, "magic");

  /* Unknown versions, with a valid footer checksum. */
  uint32_t versions[] = {0, 2, 0xffffffffu};
  for (int i = 0; i < 3; i++) {
    buf_clear(&bytes);
    buf_append_slice(&bytes, buf_slice(&good));
    forge_footer(&bytes, set_version, &versions[i]);
    expect_corrupt(path, &bytes, "version");
  }
  /* Handles outside the file or overlapping the footer. */
  uint64_t size = good.len;
  uint64_t forged[][2] = {
      {0, size + 100},  {8, size},           {0, UINT64_MAX - 2}, {8, UINT64_MAX},
      {16, size * 2},   {24, 1ull << 40},    {32, size - 10},     {40, size},
      {0, size - SST_FOOTER_SIZE - 2},       {40, 0},
  };
  for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
    buf_clear(&bytes);
    buf_append_slice(&bytes, buf_slice(&good));
    forge_footer(&bytes, set_u64, forged[i]);
    expect_corrupt(path, &bytes, NULL);
  }
  /* The untouched file still opens. */
  write_bytes(path, good.data, good.len);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  sst_reader_close(r);
  buf_free(&good);
  buf_free(&bytes);
  model_free(&m);
}

/* Replaces the index of the file in `good` with an index block whose
 * entries are (key, offset, size) triples from `ents`, appended before a
 * new footer that points at it (checksums all valid). */
typedef struct fake_ent {
  const char *key;
  uint64_t offset, size;
} fake_ent;

static void forge_index(const buf *good, const fake_ent *ents, size_t n, buf *out) {
  buf_clear(out);
  buf_append(out, good->data, good->len - SST_FOOTER_SIZE);
  sst_block_builder bb;
  sst_bb_init(&bb, 1);
  buf k = BUF_INIT, v = BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    buf_clear(&k);
    buf_clear(&v);
    ikey_append(&k, slice_from_str(ents[i].key), IKEY_MAX_SEQ, IKEY_PUT);
    put_varint64(&v, ents[i].offset);
    put_varint64(&v, ents[i].size);
    sst_bb_add(&bb, buf_slice(&k), buf_slice(&v));
  }
  slice contents = sst_bb_finish(&bb);
  uint64_t off = out->len;
  buf_append_slice(out, contents);
  uint8_t tr[SST_TRAILER_SIZE] = {SST_BLOCK_RAW};
  encode_fixed32(tr + 1, crc32c_mask(crc32c_extend(crc32c_value(contents.data, contents.len), tr, 1)));
  buf_append(out, tr, sizeof tr);
  buf_append(out, good->data + good->len - SST_FOOTER_SIZE, SST_FOOTER_SIZE);
  uint64_t fields[2][2] = {{0, off}, {8, contents.len}};
  forge_footer(out, set_u64, fields[0]);
  forge_footer(out, set_u64, fields[1]);
  sst_bb_free(&bb);
  buf_free(&k);
  buf_free(&v);
}

static void test_forged_index(void) {
  model m = {0};
  gen_opts g = {.entries = 200, .min_key = 4, .max_key = 8, .min_val = 20,
                .max_val = 40};
  model_gen(&m, &g);
  sst_options o;
  sst_options_init(&o);
  o.block_size = 1024;
  const char *orig = tmp_path("findex-orig.sst");
  build_file(E(), orig, &o, &m, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), orig, NULL, &r));
  size_t nb = sst_reader_num_blocks(r);
  CU_ASSERT_FATAL(nb >= 3);
  sst_block_info b0;
  sst_reader_block_info(r, 0, &b0);
  sst_reader_close(r);
  buf good = BUF_INIT, bytes = BUF_INIT;
  read_all(orig, &good);
  const char *path = tmp_path("findex.sst");
  uint64_t s0 = b0.size - SST_TRAILER_SIZE;

  /* A copy of the real index under other keys opens fine: the forging
   * itself is sound. */
  fake_ent *ents = xcalloc(nb, sizeof *ents);
  char (*names)[24] = xcalloc(nb, 24);
  TU_OK(sst_reader_open(E(), orig, NULL, &r));
  for (size_t i = 0; i < nb; i++) {
    sst_block_info bi;
    sst_reader_block_info(r, i, &bi);
    snprintf(names[i], 24, "k%05zu", i);
    ents[i] = (fake_ent){names[i], bi.offset, bi.size - SST_TRAILER_SIZE};
  }
  sst_reader_close(r);
  forge_index(&good, ents, nb, &bytes);
  write_bytes(path, bytes.data, bytes.len);
  TU_OK(sst_reader_open(E(), path, NULL, &r));
  sst_reader_close(r);

  /* A handle pointing past the end of the file. */
  fake_ent saved = ents[1];
  ents[1].offset = good.len * 4;
  forge_index(&good, ents, nb, &bytes);
  expect_corrupt(path, &bytes, "index");
  /* A size running past the data. */
  ents[1] = saved;
  ents[1].size = good.len;
  forge_index(&good, ents, nb, &bytes);
  expect_corrupt(path, &bytes, "index");
  /* Overlapping blocks. */
  ents[1] = saved;
  ents[1].offset = b0.offset + 1;
  forge_index(&good, ents, nb, &bytes);
  expect_corrupt(path, &bytes, "index");
  ents[1] = saved;
  /* Keys out of order. */
  const char *k1 = ents[1].key;
  ents[1].key = ents[2].key;
  ents[2].key = k1;
  forge_index(&good, ents, nb, &bytes);
  expect_corrupt(path, &bytes, "index");
  ents[2].key = ents[1].key;
  ents[1].key = k1;
  /* A block missing (fewer entries than the properties say). */
  forge_index(&good, ents, nb - 1, &bytes);
  expect_corrupt(path, &bytes, "index");
  /* Two handles to the same block. */
  ents[1].offset = 0;
  ents[1].size = s0;
  forge_index(&good, ents, nb, &bytes);
  expect_corrupt(path, &bytes, "index");
  free(ents);
  free(names);
  buf_free(&good);
  buf_free(&bytes);
  model_free(&m);
}

/* Re-seals the block at [off, off + size) of `bytes` with a valid trailer
 * after its contents were changed, so only structural checks can object. */
static void reseal(buf *bytes, uint64_t off, uint64_t size) {
  uint8_t *p = bytes->data + off;
  uint32_t crc = crc32c_extend(crc32c_value(p, size), p + size, 1);
  encode_fixed32(p + size + 1, crc32c_mask(crc));
}

/* Reads `path` every way, without a model: only "no crash, and any error
 * is CORRUPTION" can be asked of a block whose checksum matches garbage. */
static size_t poke(const char *path, const model *m) {
  size_t bad = 0;
  sst_reader *r;
  mica_err *err = sst_reader_open(E(), path, NULL, &r);
  if (err != NULL) {
    bad += err_code(err) != MICA_CORRUPTION;
    err_free(err);
    return bad;
  }
  err = sst_reader_verify(r);
  bad += err != NULL && err_code(err) != MICA_CORRUPTION;
  err_free(err);
  iter *it = sst_reader_iter_new(r, false);
  size_t n = 0;
  for (iter_seek_to_first(it); iter_valid(it) && n < 10 * m->n; iter_next(it)) n++;
  for (iter_seek_to_last(it); iter_valid(it) && n < 20 * m->n; iter_prev(it)) n++;
  for (size_t i = 0; i < m->n; i += 5) {
    iter_seek(it, buf_slice(&m->keys[i]));
    if (iter_valid(it)) iter_prev(it);
    iter_seek_for_prev(it, buf_slice(&m->keys[i]));
    if (iter_valid(it)) iter_next(it);
  }
  bad += iter_status(it) != NULL && err_code(iter_status(it)) != MICA_CORRUPTION;
  iter_close(it);
  buf v = BUF_INIT;
  for (size_t i = 0; i < m->n; i += 3) {
    ikey_parts p;
    ikey_parse(buf_slice(&m->keys[i]), &p);
    sst_get_result res;
    err = sst_reader_get(r, p.user_key, IKEY_MAX_SEQ, &res, &v, NULL);
    bad += err != NULL && err_code(err) != MICA_CORRUPTION;
    err_free(err);
  }
  buf v2 = BUF_INIT;
  err = sst_reader_middle_key(r, slice_make(NULL, 0), slice_make(NULL, 0), &v2);
  bad += err != NULL && err_code(err) != MICA_CORRUPTION && err_code(err) != MICA_NOT_FOUND;
  err_free(err);
  buf_free(&v);
  buf_free(&v2);
  sst_reader_close(r);
  return bad;
}

/* Garbage inside data, properties and filter blocks behind valid
 * checksums: the decoders' own bounds checks must hold (run under ASan). */
static void test_garbage_with_valid_checksums(void) {
  model m = {0};
  gen_opts g = {.entries = 300, .min_key = 1, .max_key = 10, .min_val = 0,
                .max_val = 40, .max_versions = 3, .delete_pct = 20};
  model_gen(&m, &g);
  sst_options o;
  sst_options_init(&o);
  o.block_size = 1024;
  o.restart_interval = 3;
  const char *orig = tmp_path("garbage-orig.sst");
  build_file(E(), orig, &o, &m, NULL);
  sst_reader *r;
  TU_OK(sst_reader_open(E(), orig, NULL, &r));
  size_t nb = sst_reader_num_blocks(r);
  sst_block_info *blocks = xcalloc(nb, sizeof *blocks);
  for (size_t i = 0; i < nb; i++) sst_reader_block_info(r, i, &blocks[i]);
  sst_reader_close(r);
  buf good = BUF_INIT, bytes = BUF_INIT;
  read_all(orig, &good);
  const uint8_t *ft = good.data + good.len - SST_FOOTER_SIZE;
  sst_handle metas[2] = {{decode_fixed64(ft + 16), decode_fixed64(ft + 24)},
                         {decode_fixed64(ft + 32), decode_fixed64(ft + 40)}};
  const char *path = tmp_path("garbage.sst");
  size_t bad = 0;
  for (int t = 0; t < 600; t++) {
    buf_clear(&bytes);
    buf_append_slice(&bytes, buf_slice(&good));
    uint64_t off, size;
    if (t % 5 < 3) {
      size_t bi = tu_rand_below(nb);
      off = blocks[bi].offset;
      size = blocks[bi].size - SST_TRAILER_SIZE;
    } else {
      off = metas[t % 5 - 3].offset;
      size = metas[t % 5 - 3].size;
    }
    /* A few random bytes, or a run of one value (zeros, 0xff, 0x80s that
     * make endless varints), or restart offsets pointing anywhere. */
    int how = (int)tu_rand_below(3);
    if (how == 0) {
      for (int j = 0; j < 1 + (int)tu_rand_below(4); j++)
        bytes.data[off + tu_rand_below(size)] = (uint8_t)tu_rand();
    } else if (how == 1) {
      uint64_t a = tu_rand_below(size), len = 1 + tu_rand_below(size - a);
      uint8_t vals[] = {0x00, 0xff, 0x80, 0x7f};
      memset(bytes.data + off + a, vals[tu_rand_below(4)], len);
    } else if (size >= 8) {
      encode_fixed32(bytes.data + off + size - 4 - 4 * tu_rand_below(2),
                     (uint32_t)tu_rand_below(size * 2));
    }
    reseal(&bytes, off, size);
    write_bytes(path, bytes.data, bytes.len);
    bad += poke(path, &m);
  }
  CU_ASSERT_EQUAL(bad, 0);
  free(blocks);
  buf_free(&good);
  buf_free(&bytes);
  model_free(&m);
}

/* Builds `m` through `e`; returns the first error (add or finish). */
static mica_err *try_build(env *e, const char *path, const model *m) {
  sst_builder *b;
  sst_options o;
  sst_options_init(&o);
  o.compression = SST_COMPRESS_LZ4;
  mica_err *err = sst_builder_new(e, path, &o, &b);
  if (err != NULL) return err;
  for (size_t i = 0; i < m->n; i++) {
    err = sst_builder_add(b, buf_slice(&m->keys[i]), buf_slice(&m->vals[i]));
    if (err != NULL) {
      /* Once broken, the builder keeps saying so. */
      mica_err *again = sst_builder_add(b, buf_slice(&m->keys[i]), buf_slice(&m->vals[i]));
      CU_ASSERT_EQUAL(err_code(again), err_code(err));
      err_free(again);
      sst_builder_abandon(b);
      return err;
    }
  }
  return sst_builder_finish(b, NULL);
}

/* After a failed build, the path is absent or does not open as valid. */
static bool no_valid_file(const char *path) {
  if (!env_exists(E(), path)) return true;
  sst_reader *r;
  mica_err *err = sst_reader_open(E(), path, NULL, &r);
  if (err == NULL) {
    sst_reader_close(r);
    return false;
  }
  err_free(err);
  return true;
}

static void test_fault_injection(void) {
  model m = {0};
  gen_opts g = {.entries = 6000, .min_key = 8, .max_key = 20, .min_val = 50,
                .max_val = 150, .max_versions = 2};
  model_gen(&m, &g);
  const char *path = tmp_path("fault.sst");
  enum env_op ops[] = {ENV_OP_WRITE, ENV_OP_SYNC, ENV_OP_OPEN};
  const char *names[] = {"write", "sync", "open"};
  for (int o = 0; o < 3; o++) {
    /* Count the calls a clean build makes. */
    env_fault *f = env_fault_new(E());
    TU_OK(try_build(env_fault_env(f), path, &m));
    uint64_t calls = env_fault_count(f, ops[o]);
    env_fault_free(f);
    TU_OK(env_remove(E(), path));
    CU_ASSERT(calls >= 1);
    if (ops[o] == ENV_OP_WRITE) CU_ASSERT(calls >= 3);
    size_t bad = 0;
    for (uint64_t nth = 1; nth <= calls; nth++) {
      for (int sticky = 0; sticky < 2; sticky++) {
        f = env_fault_new(E());
        env_fault_fail_nth(f, ops[o], nth, sticky);
        mica_err *err = try_build(env_fault_env(f), path, &m);
        if (err_code(err) != MICA_IO_ERROR) bad++;
        err_free(err);
        env_fault_free(f);
        if (!no_valid_file(path)) bad++;
        err_free(env_remove(E(), path));
      }
    }
    fprintf(stderr, "\n  %s: %llu calls, each failed in turn", names[o],
            (unsigned long long)calls);
    CU_ASSERT_EQUAL(bad, 0);
  }
  /* A full disk. */
  env_fault *f = env_fault_new(E());
  env_fault_set_disk_full(f, true);
  mica_err *err = try_build(env_fault_env(f), path, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_RESOURCE_EXHAUSTED);
  err_free(err);
  env_fault_free(f);
  CU_ASSERT(no_valid_file(path));
  err_free(env_remove(E(), path));

  /* Power loss in the middle of a build leaves nothing that opens. */
  f = env_fault_new(E());
  sst_builder *b;
  TU_OK(sst_builder_new(env_fault_env(f), path, NULL, &b));
  for (size_t i = 0; i < m.n / 2; i++)
    TU_OK(sst_builder_add(b, buf_slice(&m.keys[i]), buf_slice(&m.vals[i])));
  env_fault_crash(f);
  err = NULL;
  for (size_t i = m.n / 2; i < m.n && err == NULL; i++)
    err = sst_builder_add(b, buf_slice(&m.keys[i]), buf_slice(&m.vals[i]));
  if (err == NULL) {
    err = sst_builder_finish(b, NULL);
  } else {
    sst_builder_abandon(b);
  }
  CU_ASSERT_EQUAL(err_code(err), MICA_IO_ERROR);
  err_free(err);
  env_fault_free(f);
  CU_ASSERT(no_valid_file(path));
  model_free(&m);
}

/* Read errors surface as errors from open, get and iteration. */
static void test_read_faults(void) {
  model m = {0};
  gen_opts g = {.entries = 2000, .min_key = 8, .max_key = 20, .min_val = 50,
                .max_val = 150};
  model_gen(&m, &g);
  const char *path = tmp_path("rfault.sst");
  build_file(E(), path, NULL, &m, NULL);
  /* Open makes four reads (footer, properties, index, filter); the fifth
   * and sixth are data blocks. */
  for (uint64_t nth = 1; nth <= 6; nth++) {
    env_fault *f = env_fault_new(E());
    env_fault_fail_nth(f, ENV_OP_READ, nth, false);
    sst_reader *r;
    mica_err *err = sst_reader_open(env_fault_env(f), path, NULL, &r);
    if (err != NULL) {
      CU_ASSERT_EQUAL(err_code(err), MICA_IO_ERROR);
      CU_ASSERT(names_file(err, path));
      err_free(err);
    } else {
      CU_ASSERT(nth > 4);
      iter *it = sst_reader_iter_new(r, true);
      size_t n = 0;
      for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
        CU_ASSERT(slice_eq(iter_key(it), buf_slice(&m.keys[n])));
        n++;
      }
      CU_ASSERT(n < m.n);
      CU_ASSERT_EQUAL(err_code(iter_status(it)), MICA_IO_ERROR);
      CU_ASSERT(names_file(iter_status(it), path));
      iter_close(it);
      sst_reader_close(r);
    }
    env_fault_free(f);
  }
  model_free(&m);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"flip every byte", test_flip_every_byte},
      {"truncate at every length", test_truncate_every_length},
      {"bad magic, unknown version, handles outside the file", test_forged_footer},
      {"forged index entries", test_forged_index},
      {"garbage behind valid checksums", test_garbage_with_valid_checksums},
      {"write and sync failures while building", test_fault_injection},
      {"read failures", test_read_faults},
      CU_TEST_INFO_NULL};
  tu_add_suite("sstable corruption and faults", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
