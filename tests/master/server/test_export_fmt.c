/* test_export_fmt: the EXPORT file of a snapshot export
 * (master/server/export_fmt.h; docs/storage.md, "Export and restore").
 *
 *   v2_round_trip     every field, levels included, survives encode and
 *                     decode; the file says version 2.
 *   v1_still_read     a version 1 file (built here byte by byte from the
 *                     documented layout, no level field) decodes with
 *                     every SSTable at level 0.
 *   v2_truncated      the payload cut at every length (reframed with a
 *                     correct header, so only the payload is short) is
 *                     CORRUPTION naming the file, an offset inside the
 *                     payload and the field that was cut; the raw file
 *                     cut anywhere fails at the header.
 *   v2_bad_fields     a level of 7, a version of 3, a flipped payload
 *                     byte, a bad magic, trailing bytes: each refused
 *                     naming what and where. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "master/server/export_fmt.h"
#include "tests/master/server/xp_v1.h"
#include "tests/harness/testutil.h"

#define PATH "/x/EXPORT"

/* Two tablets split at "m": the first reads file 0 at level 0 and file 1
 * at level 2 over [.., "m"), the second file 1 at level 2 over ["m", ..). */
static void sample(xport *x) {
  memset(x, 0, sizeof(*x));
  x->table = xstrdup("orders");
  x->snapshot = xstrdup("nightly");
  x->created_ms = 1700000000123;
  mto_init(&x->opts);
  x->opts.block_size = 16384;
  x->n_files = 2;
  x->files = xcalloc(2, sizeof(*x->files));
  const uint64_t sizes[2] = {100, XP_CHUNK + 5};
  for (size_t i = 0; i < 2; i++) {
    x->files[i].name = xstrdup(i == 0 ? "3-sst-a.sst" : "3-sst-b.sst");
    x->files[i].size = sizes[i];
    x->files[i].n_crc = xp_chunks(sizes[i]);
    x->files[i].crc = xcalloc(x->files[i].n_crc, sizeof(uint32_t));
    for (size_t k = 0; k < x->files[i].n_crc; k++)
      x->files[i].crc[k] = 0x11111111u * (uint32_t)(i + k + 1);
  }
  x->n_parts = 2;
  x->parts = xcalloc(2, sizeof(*x->parts));
  buf_append(&x->parts[0].end, "m", 1);
  buf_append(&x->parts[1].start, "m", 1);
  x->parts[0].last_seq = 77;
  x->parts[1].last_seq = 78;
  x->parts[0].n_ssts = 2;
  x->parts[0].ssts = xcalloc(2, sizeof(xp_sst));
  x->parts[0].ssts[0] = (xp_sst){.file = 0, .level = 0};
  x->parts[0].ssts[1] = (xp_sst){.file = 1, .level = 2, .has_hi = true};
  buf_append(&x->parts[0].ssts[1].hi, "m", 1);
  x->parts[1].n_ssts = 1;
  x->parts[1].ssts = xcalloc(1, sizeof(xp_sst));
  x->parts[1].ssts[0] = (xp_sst){.file = 1, .level = 2};
  buf_append(&x->parts[1].ssts[0].lo, "m", 1);
}

static void check_sample(const xport *y, uint32_t version, bool levels) {
  CU_ASSERT_EQUAL(y->version, version);
  CU_ASSERT_STRING_EQUAL(y->table, "orders");
  CU_ASSERT_STRING_EQUAL(y->snapshot, "nightly");
  CU_ASSERT_EQUAL(y->created_ms, 1700000000123u);
  CU_ASSERT_EQUAL(y->opts.block_size, 16384);
  CU_ASSERT_EQUAL_FATAL(y->n_files, 2);
  CU_ASSERT_EQUAL(y->files[1].size, XP_CHUNK + 5);
  CU_ASSERT_EQUAL_FATAL(y->files[1].n_crc, 2);
  CU_ASSERT_EQUAL(y->files[1].crc[1], 0x33333333u);
  CU_ASSERT_EQUAL_FATAL(y->n_parts, 2);
  CU_ASSERT_EQUAL(y->parts[1].last_seq, 78);
  CU_ASSERT_EQUAL_FATAL(y->parts[0].n_ssts, 2);
  CU_ASSERT_EQUAL(y->parts[0].ssts[1].file, 1);
  CU_ASSERT(y->parts[0].ssts[1].has_hi);
  CU_ASSERT_EQUAL(y->parts[0].ssts[0].level, 0);
  CU_ASSERT_EQUAL(y->parts[0].ssts[1].level, levels ? 2u : 0u);
  CU_ASSERT_EQUAL_FATAL(y->parts[1].n_ssts, 1);
  CU_ASSERT_EQUAL(y->parts[1].ssts[0].level, levels ? 2u : 0u);
  CU_ASSERT_EQUAL(y->parts[1].ssts[0].lo.len, 1);
}

/* Asserts that decoding `data` fails with `code` and a message holding
 * every needle. */
static void expect_bad(slice data, int code, const char *n1, const char *n2) {
  xport y;
  mica_err *e = xp_decode(data, PATH, &y);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  bool ok = err_code(e) == code && strstr(err_msg(e), n1) != NULL &&
            (n2 == NULL || strstr(err_msg(e), n2) != NULL);
  if (!ok)
    fprintf(stderr, "got %d \"%s\", want %d with \"%s\" \"%s\"\n",
            err_code(e), err_msg(e), code, n1, n2 ? n2 : "");
  CU_ASSERT(ok);
  err_free(e);
  CU_ASSERT_PTR_NULL(y.files); /* nothing kept on failure */
}

static void test_v2_round_trip(void) {
  xport x, y;
  sample(&x);
  buf b = BUF_INIT;
  xp_encode(&x, &b);
  CU_ASSERT_EQUAL(decode_fixed32(b.data + 8), 2);
  TU_OK(xp_decode(buf_slice(&b), PATH, &y));
  check_sample(&y, 2, true);
  xp_free(&y);
  xp_free(&x);
  buf_free(&b);
}

static void test_v1_still_read(void) {
  xport x, y;
  sample(&x);
  buf p = BUF_INIT, b = BUF_INIT;
  xp_v1_payload(&x, &p);
  xp_frame(&p, 1, &b);
  TU_OK(xp_decode(buf_slice(&b), PATH, &y));
  check_sample(&y, 1, false);
  xp_free(&y);
  /* The same payload called version 2 lacks its levels. */
  buf_clear(&b);
  xp_frame(&p, 2, &b);
  expect_bad(buf_slice(&b), MICA_CORRUPTION, PATH ": offset ", "bad ");
  xp_free(&x);
  buf_free(&p);
  buf_free(&b);
}

static void test_v2_truncated(void) {
  xport x;
  sample(&x);
  buf full = BUF_INIT;
  xp_encode(&x, &full);
  xp_free(&x);
  size_t plen = full.len - 20;
  for (size_t cut = 0; cut < plen; cut++) {
    buf p = BUF_INIT, b = BUF_INIT;
    buf_append(&p, full.data + 20, cut);
    xp_frame(&p, 2, &b);
    xport y;
    mica_err *e = xp_decode(buf_slice(&b), PATH, &y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
    /* "PATH: offset N: bad FIELD", N within the bytes that are there. */
    size_t off = 0;
    char field[64] = "";
    int got = sscanf(err_msg(e), PATH ": offset %zu: bad %63[^\n]", &off,
                     field);
    if (got != 2 || off < 20 || off > 20 + cut)
      fprintf(stderr, "cut %zu: \"%s\"\n", cut, err_msg(e));
    CU_ASSERT_EQUAL(got, 2);
    CU_ASSERT(off >= 20 && off <= 20 + cut);
    err_free(e);
    buf_free(&p);
    buf_free(&b);
  }
  /* Cut just before the last byte: the last tablet's level is missing. */
  {
    buf p = BUF_INIT, b = BUF_INIT;
    buf_append(&p, full.data + 20, plen - 1);
    xp_frame(&p, 2, &b);
    expect_bad(buf_slice(&b), MICA_CORRUPTION, "bad SSTable level", NULL);
    buf_free(&p);
    buf_free(&b);
  }
  /* The file itself cut (its header then disagrees with its length). */
  for (size_t cut = 0; cut < full.len; cut += 7)
    expect_bad(slice_make(full.data, cut), MICA_CORRUPTION, PATH ": offset ",
               cut < 20 ? "bad magic" : "payload length");
  buf_free(&full);
}

static void test_v2_bad_fields(void) {
  xport x;
  sample(&x);
  buf good = BUF_INIT;
  xp_encode(&x, &good);
  xp_free(&x);
  /* The last byte of the payload is the last SSTable's level. */
  buf p = BUF_INIT, b = BUF_INIT;
  buf_append(&p, good.data + 20, good.len - 20);
  p.data[p.len - 1] = 7;
  xp_frame(&p, 2, &b);
  char want[64];
  snprintf(want, sizeof want, PATH ": offset %zu: bad SSTable level",
           good.len - 1);
  expect_bad(buf_slice(&b), MICA_CORRUPTION, want, "levels are 0..6");
  /* Trailing bytes after a whole payload. */
  p.data[p.len - 1] = 2;
  buf_append(&p, "\0", 1);
  buf_clear(&b);
  xp_frame(&p, 2, &b);
  expect_bad(buf_slice(&b), MICA_CORRUPTION, "bad trailing bytes", NULL);
  /* An unknown version. */
  buf_clear(&b);
  buf_append(&b, good.data, good.len);
  encode_fixed32(b.data + 8, 3);
  expect_bad(buf_slice(&b), MICA_NOT_SUPPORTED, "offset 8",
             "version 3 is not 1 or 2");
  /* A byte flipped in the payload. */
  buf_clear(&b);
  buf_append(&b, good.data, good.len);
  b.data[30] ^= 0x40;
  expect_bad(buf_slice(&b), MICA_CORRUPTION, "offset 16: checksum mismatch",
             NULL);
  /* Not an export. */
  buf_clear(&b);
  buf_append(&b, good.data, good.len);
  b.data[0] = 'X';
  expect_bad(buf_slice(&b), MICA_CORRUPTION, "offset 0: not an export", NULL);
  buf_free(&p);
  buf_free(&b);
  buf_free(&good);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("export_fmt", NULL, NULL);
  CU_add_test(s, "v2_round_trip", test_v2_round_trip);
  CU_add_test(s, "v1_still_read", test_v1_still_read);
  CU_add_test(s, "v2_truncated", test_v2_truncated);
  CU_add_test(s, "v2_bad_fields", test_v2_bad_fields);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
