/* test_manifest: the tablet MANIFEST (tabletserver/manifest.h,
 * MANIFEST_FORMAT.md).
 *
 * Values: every field survives encode/decode, write/read and man_copy,
 * including keys with NUL and 0xff bytes, unbounded ranges, and the split
 * and merge records that only retired states carry.
 *
 * Corruption (never a crash, always CORRUPTION naming the file and the
 * offset): every truncation of a valid file, every single flipped byte,
 * a bad magic, version or length, and payloads with a valid checksum but
 * a bad state or flag byte, a count the remaining bytes cannot hold, an
 * empty SSTable path or one with a NUL, a varint running off the end,
 * and trailing bytes. A file over the size cap is refused before it is
 * decoded.
 *
 * Faults (through the fault env): a failing open, write, sync or rename
 * fails man_write with the error and leaves the previous manifest in
 * place; a read fault fails man_read; and a power loss after any failed
 * or successful step leaves either the old or the new manifest, whole. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/env.h"
#include "common/path.h"
#include "tabletserver/manifest.h"
#include "tests/harness/testutil.h"

#define S(lit) slice_make(lit, sizeof(lit) - 1)

/* A state using every field, in state `st`. */
static void full_state(man_state *m, man_tablet_state st) {
  man_init(m);
  m->tablet_id = 77;
  m->epoch = 1ull << 40;
  m->last_seq = 123456789;
  m->next_file = 300;
  m->state = st;
  buf_append_slice(&m->start_key, S("a\0b"));
  buf_append_slice(&m->end_key, S("z\xff\xff"));
  m->has_end = true;
  m->parent_id = 12;
  man_add_sst(m, "sst-00000000000000000001-00000000000000000002.sst", 4096,
              S(""), S(""), false);
  man_add_sst(m, "../12/sst-00000000000000000001-00000000000000000001.sst",
              1ull << 33, S("a\0b"), S("m\xff"), true)->level = 3;
  man_add_live(m, 5, 9);
  man_add_live(m, 6, 1);
  man_add_retired(m, 4, 2);
  if (st != MAN_LIVE) {
    m->left_id = 78;
    m->right_id = 79;
    if (st != MAN_MERGED) buf_append_slice(&m->split_key, S("m\0"));
  }
}

static bool buf_eq(const buf *a, const buf *b) {
  return slice_eq(buf_slice(a), buf_slice(b));
}

static void expect_same(const man_state *a, const man_state *b) {
  CU_ASSERT_EQUAL(a->tablet_id, b->tablet_id);
  CU_ASSERT_EQUAL(a->epoch, b->epoch);
  CU_ASSERT_EQUAL(a->last_seq, b->last_seq);
  CU_ASSERT_EQUAL(a->next_file, b->next_file);
  CU_ASSERT_EQUAL(a->state, b->state);
  CU_ASSERT_TRUE(buf_eq(&a->start_key, &b->start_key));
  CU_ASSERT_TRUE(buf_eq(&a->end_key, &b->end_key));
  CU_ASSERT_EQUAL(a->has_end, b->has_end);
  CU_ASSERT_EQUAL(a->parent_id, b->parent_id);
  CU_ASSERT_EQUAL_FATAL(a->n_ssts, b->n_ssts);
  for (size_t i = 0; i < a->n_ssts; i++) {
    CU_ASSERT_STRING_EQUAL(a->ssts[i].path, b->ssts[i].path);
    CU_ASSERT_EQUAL(a->ssts[i].size, b->ssts[i].size);
    CU_ASSERT_TRUE(buf_eq(&a->ssts[i].lo, &b->ssts[i].lo));
    CU_ASSERT_TRUE(buf_eq(&a->ssts[i].hi, &b->ssts[i].hi));
    CU_ASSERT_EQUAL(a->ssts[i].has_hi, b->ssts[i].has_hi);
    CU_ASSERT_EQUAL(a->ssts[i].level, b->ssts[i].level);
  }
  CU_ASSERT_EQUAL_FATAL(a->n_live, b->n_live);
  for (size_t i = 0; i < a->n_live; i++) {
    CU_ASSERT_EQUAL(a->live[i].epoch, b->live[i].epoch);
    CU_ASSERT_EQUAL(a->live[i].number, b->live[i].number);
  }
  CU_ASSERT_EQUAL_FATAL(a->n_retired, b->n_retired);
  for (size_t i = 0; i < a->n_retired; i++) {
    CU_ASSERT_EQUAL(a->retired[i].epoch, b->retired[i].epoch);
    CU_ASSERT_EQUAL(a->retired[i].number, b->retired[i].number);
  }
  CU_ASSERT_EQUAL(a->left_id, b->left_id);
  CU_ASSERT_EQUAL(a->right_id, b->right_id);
  CU_ASSERT_TRUE(buf_eq(&a->split_key, &b->split_key));
}

/* Asserts that decoding `data` fails with CORRUPTION naming `what` and
 * containing `needle` (may be NULL), and leaves `m` empty. */
static void expect_corrupt(slice data, const char *needle) {
  man_state m;
  full_state(&m, MAN_SPLIT); /* decode must clear what was there */
  mica_err *err = man_decode(data, "dir/MANIFEST", &m);
  bool ok = err_code(err) == MICA_CORRUPTION &&
            strstr(err_msg(err), "dir/MANIFEST") != NULL &&
            (needle == NULL || strstr(err_msg(err), needle) != NULL);
  if (!ok)
    fprintf(stderr, "\n  got %s: %s; want CORRUPTION naming \"%s\"\n",
            mica_code_name(err_code(err)), err ? err_msg(err) : "(none)",
            needle ? needle : "dir/MANIFEST");
  CU_ASSERT_TRUE(ok);
  CU_ASSERT_EQUAL(m.n_ssts, 0);
  CU_ASSERT_EQUAL(m.n_live, 0);
  CU_ASSERT_EQUAL(m.start_key.len, 0);
  err_free(err);
  man_clear(&m);
}

/* A file with a correct header around `payload`. */
static void frame(slice payload, buf *out) {
  buf_clear(out);
  buf_append(out, "MICAMANF", 8);
  put_fixed32(out, 1);
  put_fixed32(out, (uint32_t)payload.len);
  put_fixed32(out, crc32c_mask(crc32c_value(payload.data, payload.len)));
  buf_append_slice(out, payload);
}

static void test_round_trip(void) {
  for (int st = MAN_LIVE; st <= MAN_MERGED; st++) {
    man_state m, d, c;
    full_state(&m, (man_tablet_state)st);
    buf enc = BUF_INIT;
    man_encode(&m, &enc);
    man_init(&d);
    TU_OK(man_decode(buf_slice(&enc), "x", &d));
    expect_same(&m, &d);
    man_init(&c);
    man_copy(&c, &m);
    expect_same(&m, &c);
    /* The copy is deep: clearing the original leaves it intact. */
    man_clear(&m);
    expect_same(&c, &d);
    buf_free(&enc);
    man_clear(&c);
    man_clear(&d);
  }

  /* Unbounded range, nothing listed: the smallest manifest. */
  man_state m, d;
  man_init(&m);
  m.tablet_id = 1;
  m.epoch = 1;
  m.next_file = 1;
  buf enc = BUF_INIT;
  man_encode(&m, &enc);
  man_init(&d);
  TU_OK(man_decode(buf_slice(&enc), "x", &d));
  expect_same(&m, &d);
  CU_ASSERT_FALSE(d.has_end);
  buf_free(&enc);
  man_clear(&d);

  /* A live manifest does not carry the split record, whatever the
   * struct held. */
  m.left_id = 5;
  m.right_id = 6;
  man_encode(&m, &enc);
  TU_OK(man_decode(buf_slice(&enc), "x", &d));
  CU_ASSERT_EQUAL(d.left_id, 0);
  CU_ASSERT_EQUAL(d.right_id, 0);
  buf_free(&enc);
  man_clear(&d);
  man_clear(&m);
  man_clear(NULL);
}

static void test_read_write(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  man_state m, d;
  man_init(&d);
  TU_ERR(man_read(e, dir, &d), MICA_NOT_FOUND);
  full_state(&m, MAN_LIVE);
  TU_OK(man_write(e, dir, &m));
  TU_OK(man_read(e, dir, &d));
  expect_same(&m, &d);
  man_clear(&d);
  /* Rewritten whole: the second write replaces the first. */
  man_state m2;
  full_state(&m2, MAN_SPLIT);
  m2.n_live = 0;
  TU_OK(man_write(e, dir, &m2));
  TU_OK(man_read(e, dir, &d));
  expect_same(&m2, &d);
  /* No temporary file is left behind, and the first generation was
   * removed once the second was durable. */
  char **names;
  size_t n;
  TU_OK(env_list(e, dir, &names, &n));
  CU_ASSERT_EQUAL(n, 1);
  uint64_t ep = 0, g = 0;
  if (n == 1) CU_ASSERT_TRUE(man_parse_name(names[0], &ep, &g));
  CU_ASSERT_EQUAL(ep, m2.epoch);
  CU_ASSERT_EQUAL(g, 2);
  env_free_names(names, n);
  man_clear(&m);
  man_clear(&m2);
  man_clear(&d);
}

static void test_truncated_and_flipped(void) {
  man_state m;
  full_state(&m, MAN_SPLIT);
  buf enc = BUF_INIT;
  man_encode(&m, &enc);
  man_clear(&m);
  for (size_t n = 0; n < enc.len; n++)
    expect_corrupt(slice_make(enc.data, n), NULL);
  /* One extra byte at the end does not match the length field. */
  buf longer = BUF_INIT;
  buf_append_slice(&longer, buf_slice(&enc));
  buf_push(&longer, 0);
  expect_corrupt(buf_slice(&longer), "offset 12");
  buf_free(&longer);

  for (size_t i = 0; i < enc.len; i++) {
    for (int bit = 0; bit < 8; bit += 3) {
      enc.data[i] ^= (uint8_t)(1u << bit);
      const char *needle = i < 8    ? "offset 0"
                           : i < 12 ? "offset 8"
                           : i < 16 ? "offset 12"
                                    : "checksum";
      expect_corrupt(buf_slice(&enc), needle);
      enc.data[i] ^= (uint8_t)(1u << bit);
    }
  }
  expect_corrupt(slice_make("MICAMANF", 8), "shorter than the 20-byte header");
  buf_free(&enc);
}

/* The payload of a live manifest with small fields (one byte each), so
 * offsets are known: ids, seqs 0..3, state 4, start 5, has_end 6, end 7,
 * parent 8, n_ssts 9. */
static void small_payload(buf *p, uint8_t state, uint8_t has_end) {
  buf_clear(p);
  put_varint64(p, 3);  /* tablet id */
  put_varint64(p, 1);  /* epoch */
  put_varint64(p, 0);  /* last seq */
  put_varint64(p, 1);  /* next file */
  buf_push(p, state);
  put_length_prefixed(p, S(""));
  buf_push(p, has_end);
  put_length_prefixed(p, S(""));
  put_varint64(p, 0);  /* parent */
}

static void expect_payload_corrupt(const buf *p, const char *needle) {
  buf f = BUF_INIT;
  frame(buf_slice(p), &f);
  expect_corrupt(buf_slice(&f), needle);
  buf_free(&f);
}

static void test_bad_payloads(void) {
  buf p = BUF_INIT;

  /* The frame itself decodes a well-formed payload. */
  small_payload(&p, MAN_LIVE, 0);
  put_varint64(&p, 0); /* n_ssts */
  put_varint64(&p, 0); /* n_live */
  put_varint64(&p, 0); /* n_retired */
  buf f = BUF_INIT;
  frame(buf_slice(&p), &f);
  man_state m;
  man_init(&m);
  TU_OK(man_decode(buf_slice(&f), "x", &m));
  CU_ASSERT_EQUAL(m.tablet_id, 3);
  man_clear(&m);
  buf_free(&f);

  /* Trailing bytes after the last field. */
  buf_push(&p, 0);
  expect_payload_corrupt(&p, "trailing bytes at offset 32");

  /* A state byte out of range (offset 20 + 4): 4 is MAN_DROPPED. */
  small_payload(&p, MAN_DROPPED + 1, 0);
  expect_payload_corrupt(&p, "bad state at offset 24");
  /* An end flag that is not 0 or 1 (offset 20 + 6). */
  small_payload(&p, MAN_LIVE, 2);
  expect_payload_corrupt(&p, "bad end flag at offset 26");

  /* A count the remaining bytes cannot hold. */
  small_payload(&p, MAN_LIVE, 0);
  put_varint64(&p, 1000000);
  put_varint64(&p, 0);
  put_varint64(&p, 0);
  expect_payload_corrupt(&p, "bad SSTable count at offset 29");
  small_payload(&p, MAN_LIVE, 0);
  put_varint64(&p, 0);
  put_varint64(&p, UINT64_MAX);
  expect_payload_corrupt(&p, "live segment count");

  /* An empty SSTable path, and one with a NUL in it. */
  for (int bad = 0; bad < 2; bad++) {
    small_payload(&p, MAN_LIVE, 0);
    put_varint64(&p, 1);
    put_length_prefixed(&p, bad ? S("sst\0x") : S(""));
    put_varint64(&p, 10);
    put_length_prefixed(&p, S(""));
    buf_push(&p, 0);
    put_length_prefixed(&p, S(""));
    put_varint64(&p, 0);
    put_varint64(&p, 0);
    expect_payload_corrupt(&p, "bad SSTable path at offset 30");
  }

  /* A length running past the end, and a varint cut in the middle. */
  small_payload(&p, MAN_LIVE, 0);
  p.data[5] = 100; /* start key of 100 bytes */
  expect_payload_corrupt(&p, "bad start key at offset 25");
  buf_clear(&p);
  buf_push(&p, 0x80); /* a varint's continuation bit, then nothing */
  expect_payload_corrupt(&p, "bad tablet id at offset 20");

  /* A retired state whose split record is missing. */
  small_payload(&p, MAN_SPLIT, 0);
  put_varint64(&p, 0);
  put_varint64(&p, 0);
  put_varint64(&p, 0);
  expect_payload_corrupt(&p, "left daughter id");
  buf_free(&p);
}

static char *name_in(const char *dir, uint64_t epoch, uint64_t gen) {
  char *p = xmalloc(strlen(dir) + 64);
  sprintf(p, "%s/MANIFEST-%020" PRIu64 "-%020" PRIu64, dir, epoch, gen);
  return p;
}

/* The epoch rule (docs/storage.md): names carry (epoch, generation); the
 * highest wins; a writer of an older epoch is refused, and a late object of
 * an older epoch (a delayed upload) is never read; a plain MANIFEST from
 * before is read and replaced. */
static void test_epoch_names(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  man_state m, d;
  man_init(&d);
  full_state(&m, MAN_LIVE);
  m.epoch = 5;
  m.last_seq = 100;
  TU_OK(man_write(e, dir, &m));
  char *g1 = name_in(dir, 5, 1);
  CU_ASSERT_TRUE(env_exists(e, g1));

  /* A new owner (epoch 7) takes over: generation 1 of its epoch; the old
   * epoch's names are removed. */
  m.epoch = 7;
  m.last_seq = 200;
  TU_OK(man_write(e, dir, &m));
  char *n71 = name_in(dir, 7, 1);
  CU_ASSERT_TRUE(env_exists(e, n71));
  CU_ASSERT_FALSE(env_exists(e, g1));

  /* The old owner is refused... */
  m.epoch = 5;
  m.last_seq = 300;
  mica_err *err = man_write(e, dir, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_EPOCH);
  err_free(err);
  /* ...and its late object, landing anyway, is never read. */
  buf late = BUF_INIT;
  man_encode(&m, &late);
  char *late_path = name_in(dir, 5, 9);
  TU_OK(env_write_file_atomic(e, late_path, buf_slice(&late)));
  TU_OK(man_read(e, dir, &d));
  CU_ASSERT_EQUAL(d.epoch, 7);
  CU_ASSERT_EQUAL(d.last_seq, 200);
  man_clear(&d);
  /* The next write of the owner removes it. */
  m.epoch = 7;
  m.last_seq = 201;
  TU_OK(man_write(e, dir, &m));
  CU_ASSERT_FALSE(env_exists(e, late_path));
  char *n72 = name_in(dir, 7, 2);
  CU_ASSERT_TRUE(env_exists(e, n72));

  /* A file whose contents name another epoch than its name: CORRUPTION. */
  char *bad = name_in(dir, 8, 1);
  TU_OK(env_write_file_atomic(e, bad, buf_slice(&late))); /* epoch 5 */
  err = man_read(e, dir, &d);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), "records epoch 5") : NULL);
  err_free(err);
  TU_OK(env_remove(e, bad));

  /* A plain MANIFEST (written before names carried epochs) alone is read,
   * and the next write replaces it. */
  const char *dir2 = tu_tmpdir();
  char *plain = path_join(dir2, MAN_FILE_NAME);
  TU_OK(env_write_file_atomic(e, plain, buf_slice(&late)));
  CU_ASSERT_TRUE(man_exists(e, dir2));
  TU_OK(man_read(e, dir2, &d));
  CU_ASSERT_EQUAL(d.last_seq, 300);
  man_clear(&d);
  /* Its epoch (5, inside the file) fences an older writer too. */
  m.epoch = 4;
  err = man_write(e, dir2, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_STALE_EPOCH);
  err_free(err);
  m.epoch = 5;
  TU_OK(man_write(e, dir2, &m));
  CU_ASSERT_FALSE(env_exists(e, plain));
  char *p51 = name_in(dir2, 5, 1);
  CU_ASSERT_TRUE(env_exists(e, p51));
  CU_ASSERT_FALSE(man_exists(e, tu_tmpdir()));

  buf_free(&late);
  free(g1);
  free(n71);
  free(n72);
  free(late_path);
  free(bad);
  free(plain);
  free(p51);
  man_clear(&m);
}

static void test_oversized_file(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  char *path = path_join(dir, MAN_FILE_NAME);
  FILE *fp = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  CU_ASSERT_EQUAL(ftruncate(fileno(fp), (off_t)MAN_MAX_BYTES + 1), 0);
  fclose(fp);
  man_state m;
  man_init(&m);
  mica_err *err = man_read(e, dir, &m);
  CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), path));
  err_free(err);
  man_clear(&m);
  free(path);
}

/* Writes manifest `v` (last_seq = v) to `dir` through the plain env. */
static void write_version(const char *dir, uint64_t v) {
  man_state m;
  full_state(&m, MAN_LIVE);
  m.last_seq = v;
  TU_OK(man_write(env_posix(), dir, &m));
  man_clear(&m);
}

static uint64_t read_version(const char *dir) {
  man_state m;
  man_init(&m);
  TU_OK(man_read(env_posix(), dir, &m));
  uint64_t v = m.last_seq;
  man_clear(&m);
  return v;
}

static void test_write_faults(void) {
  static const struct {
    enum env_op op;
  } ops[] = {{ENV_OP_OPEN}, {ENV_OP_WRITE}, {ENV_OP_SYNC}, {ENV_OP_RENAME}};
  for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
    const char *dir = tu_tmpdir();
    write_version(dir, 1);
    /* How many calls of this kind one write makes. */
    env_fault *f = env_fault_new(env_posix());
    man_state m;
    full_state(&m, MAN_LIVE);
    m.last_seq = 2;
    uint64_t before = env_fault_count(f, ops[k].op);
    TU_OK(man_write(env_fault_env(f), dir, &m));
    uint64_t calls = env_fault_count(f, ops[k].op) - before;
    CU_ASSERT(calls >= 1);
    CU_ASSERT_EQUAL(read_version(dir), 2);
    for (uint64_t nth = 1; nth <= calls; nth++) {
      m.last_seq = 10 + nth;
      env_fault_fail_nth(f, ops[k].op, nth, false);
      mica_err *err = man_write(env_fault_env(f), dir, &m);
      env_fault_fail_nth(f, ops[k].op, 0, false);
      /* A failure before the rename leaves the old manifest; the
       * directory sync after it may fail with the new one in place. */
      uint64_t got = read_version(dir);
      if (err == NULL) {
        CU_ASSERT_EQUAL(got, m.last_seq);
      } else {
        CU_ASSERT_EQUAL(err_code(err), MICA_IO_ERROR);
        CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "write manifest of tablet 77"));
        CU_ASSERT(got == m.last_seq || got == 10 + nth - 1 || got == 2);
        if (ops[k].op != ENV_OP_SYNC) CU_ASSERT_NOT_EQUAL(got, m.last_seq);
        err_free(err);
      }
    }
    man_clear(&m);
    env_fault_free(f);
  }

  /* A full disk. */
  const char *dir = tu_tmpdir();
  write_version(dir, 1);
  env_fault *f = env_fault_new(env_posix());
  env_fault_set_disk_full(f, true);
  man_state m;
  full_state(&m, MAN_LIVE);
  m.last_seq = 5;
  TU_ERR(man_write(env_fault_env(f), dir, &m), MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT_EQUAL(read_version(dir), 1);
  man_clear(&m);

  /* A read fault. */
  man_init(&m);
  env_fault_fail_nth(f, ENV_OP_READ, 1, true);
  TU_ERR(man_read(env_fault_env(f), dir, &m), MICA_IO_ERROR);
  CU_ASSERT_EQUAL(m.n_ssts, 0);
  man_clear(&m);
  env_fault_free(f);
}

/* A power loss at every point of a write: afterwards the manifest is the
 * old one or the new one, whole, never damaged or missing. */
static void test_crash(void) {
  const char *dir = tu_tmpdir();
  write_version(dir, 1);
  env_fault *probe = env_fault_new(env_posix());
  man_state m;
  full_state(&m, MAN_LIVE);
  m.last_seq = 2;
  TU_OK(man_write(env_fault_env(probe), dir, &m));
  uint64_t syncs = env_fault_count(probe, ENV_OP_SYNC);
  env_fault_free(probe);
  CU_ASSERT(syncs >= 2); /* the file, then the directory */
  write_version(dir, 1);

  int saw_old = 0, saw_new = 0;
  for (uint64_t nth = 1; nth <= syncs + 1; nth++) {
    env_fault *f = env_fault_new(env_posix());
    /* The crash comes right when the nth sync is about to happen (it
     * fails, then power goes), or after the whole write. */
    if (nth <= syncs) env_fault_fail_nth(f, ENV_OP_SYNC, nth, true);
    mica_err *err = man_write(env_fault_env(f), dir, &m);
    CU_ASSERT_EQUAL(err == NULL, nth > syncs);
    err_free(err);
    env_fault_crash(f);
    env_fault_free(f);
    uint64_t v = read_version(dir);
    CU_ASSERT(v == 1 || v == 2);
    if (v == 1) saw_old++;
    else saw_new++;
    if (nth > syncs) CU_ASSERT_EQUAL(v, 2); /* a finished write is durable */
    write_version(dir, 1);
  }
  CU_ASSERT(saw_old >= 1);
  CU_ASSERT(saw_new >= 1);
  man_clear(&m);
}

static CU_TestInfo value_tests[] = {
    {"encode, decode and copy", test_round_trip},
    {"read and write", test_read_write},
    {"names by epoch and generation", test_epoch_names},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo corrupt_tests[] = {
    {"truncated and flipped bytes", test_truncated_and_flipped},
    {"bad payloads with good checksums", test_bad_payloads},
    {"oversized file", test_oversized_file},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo fault_tests[] = {
    {"failed writes keep the old manifest", test_write_faults},
    {"power loss during a write", test_crash},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) {
  tu_add_suite("manifest values", value_tests);
  tu_add_suite("manifest corruption", corrupt_tests);
  tu_add_suite("manifest faults", fault_tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
