/* test_wal: WAL segments end to end. Round trips of records of every size,
 * group commit under 16 threads, torn tails cut at every byte, damage at
 * the tail versus in the middle, write and sync failures (sticky, reported
 * to every writer of the group), simulated power loss, and preallocated
 * segments (zero tails told apart from torn bytes, a failed preallocation,
 * power loss keeping exactly the synced records). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "tabletserver/wal.h"
#include "tabletserver/wbatch.h"
#include "tests/harness/testutil.h"

/* ---- helpers ---- */

static mica_err *ignore_record(void *arg, slice payload, uint64_t offset) {
  (void)arg;
  (void)payload;
  (void)offset;
  return NULL;
}

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = xmalloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static char *new_segment_path(uint64_t epoch, uint64_t number) {
  char name[64];
  return path_in(tu_tmpdir(), wal_segment_name(name, sizeof(name), epoch, number));
}

/* Offset just past the last non-zero byte of d[from, len), or `from`. */
static uint64_t nz_end(const uint8_t *d, uint64_t from, uint64_t len) {
  while (len > from && d[len - 1] == 0) len--;
  return len;
}

/* The records of an intact segment: the file without the zeros the
 * writer preallocated after them (checked to be zeros, and reported by
 * replay as a zero tail, not as dropped). Damage tests work on these bytes
 * and write them back without preallocation. */
static void read_all(const char *path, buf *out) {
  buf_clear(out);
  TU_OK(env_read_file(env_posix(), path, SIZE_MAX, out));
  wal_replay_stats st;
  TU_OK(wal_replay(env_posix(), path, ignore_record, NULL, &st));
  CU_ASSERT_EQUAL(st.dropped, 0);
  CU_ASSERT_EQUAL(st.valid_end + st.zero_tail, out->len);
  CU_ASSERT_EQUAL(nz_end(out->data, st.valid_end, out->len), st.valid_end);
  out->len = st.valid_end;
}

static void write_all(const char *path, const void *data, size_t n) {
  env_writer *w;
  TU_OK(env_open_writer(env_posix(), path, ENV_TRUNCATE, &w));
  TU_OK(env_append(w, data, n));
  TU_OK(env_writer_close(w));
}

typedef struct records {
  buf *r;
  size_t n, cap;
  uint64_t last_offset;
} records;

static mica_err *collect(void *arg, slice payload, uint64_t offset) {
  records *rs = arg;
  if (rs->n == rs->cap) {
    rs->cap = rs->cap ? 2 * rs->cap : 64;
    rs->r = xrealloc(rs->r, rs->cap * sizeof(buf));
  }
  rs->r[rs->n] = (buf)BUF_INIT;
  buf_append_slice(&rs->r[rs->n++], payload);
  CU_ASSERT(rs->n == 1 || offset > rs->last_offset);
  rs->last_offset = offset;
  return NULL;
}

static void records_free(records *rs) {
  for (size_t i = 0; i < rs->n; i++) buf_free(&rs->r[i]);
  free(rs->r);
  memset(rs, 0, sizeof(*rs));
}

static mica_err *replay(const char *path, records *rs, wal_replay_stats *st) {
  records_free(rs);
  return wal_replay(env_posix(), path, collect, rs, st);
}

static void random_payload(buf *b, size_t n) {
  buf_resize(b, n);
  tu_rand_bytes(b->data, n);
}

/* Writes `n` records of `size` random bytes each (the last of
 * `last_size`); returns the offset of every frame in offs. */
static char *write_segment(size_t n, size_t size, size_t last_size, buf *payloads,
                           uint64_t *offs) {
  char *path = new_segment_path(1, tu_rand_below(1u << 30));
  wal_writer *w;
  TU_OK(wal_writer_open(env_posix(), path, 1, 2, &w));
  for (size_t i = 0; i < n; i++) {
    payloads[i] = (buf)BUF_INIT;
    random_payload(&payloads[i], i + 1 == n ? last_size : size);
    offs[i] = wal_writer_size(w);
    TU_OK(wal_append(w, buf_slice(&payloads[i]), i % 2 == 0));
  }
  TU_OK(wal_writer_close(w));
  return path;
}

static void check_prefix(const records *rs, const buf *payloads, size_t n) {
  CU_ASSERT_EQUAL_FATAL(rs->n, n);
  for (size_t i = 0; i < n; i++)
    CU_ASSERT(slice_eq(buf_slice(&rs->r[i]), buf_slice(&payloads[i])));
}

/* ---- names ---- */

static void test_names(void) {
  char name[64];
  uint64_t e, n;
  wal_segment_name(name, sizeof(name), 7, 42);
  CU_ASSERT_STRING_EQUAL(name, "wal-00000000000000000007-00000000000000000042.log");
  CU_ASSERT(wal_parse_segment_name(name, &e, &n));
  CU_ASSERT_EQUAL(e, 7);
  CU_ASSERT_EQUAL(n, 42);
  wal_segment_name(name, sizeof(name), UINT64_MAX, 0);
  CU_ASSERT(wal_parse_segment_name(name, &e, &n));
  CU_ASSERT_EQUAL(e, UINT64_MAX);
  CU_ASSERT_EQUAL(n, 0);
  /* Sorting names sorts by epoch, then number. */
  char a[64], b[64];
  wal_segment_name(a, sizeof(a), 9, 100);
  wal_segment_name(b, sizeof(b), 10, 1);
  CU_ASSERT(strcmp(a, b) < 0);
  const char *bad[] = {
      "wal-7-42.log",
      "wal-00000000000000000007-00000000000000000042.sst",
      "wal-0000000000000000000x-00000000000000000042.log",
      "wal-00000000000000000007_00000000000000000042.log",
      "wal-99999999999999999999-00000000000000000042.log", /* > UINT64_MAX */
      "wal-00000000000000000007-00000000000000000042.log.tmp",
      "MANIFEST",
      "",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CU_ASSERT(!wal_parse_segment_name(bad[i], &e, &n));
}

/* The worked example of WAL_FORMAT.md, byte for byte. */
static void test_layout(void) {
  char *path = new_segment_path(7, 1);
  wal_writer *w;
  TU_OK(wal_writer_open(env_posix(), path, 7, 1, &w));
  wbatch *b = wbatch_new();
  wbatch_set_seq(b, 5);
  wbatch_put(b, slice_from_str("k"), slice_from_str("v1"));
  wbatch_delete(b, slice_from_str("x"));
  TU_OK(wal_append(w, wbatch_data(b), true));
  TU_OK(wal_writer_close(w));
  static const uint8_t want[] = {
      0x3b, 0x2b, 0xf2, 0xe1, 0x1c, 0x00, 0x00, 0x00, 0x01, 0x4d, 0x49, 0x43,
      0x41, 0x2d, 0x57, 0x41, 0x4c, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0xf7, 0x14, 0x2e, 0xab, 0x15, 0x00, 0x00, 0x00, 0x02, 0x05, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
      0x6b, 0x02, 0x76, 0x31, 0x00, 0x01, 0x78};
  buf got = BUF_INIT;
  read_all(path, &got);
  CU_ASSERT_EQUAL_FATAL(got.len, sizeof(want));
  CU_ASSERT(memcmp(got.data, want, sizeof(want)) == 0);
  /* And it decodes back to the batch. */
  records rs = {0};
  TU_OK(replay(path, &rs, NULL));
  CU_ASSERT_EQUAL_FATAL(rs.n, 1);
  wbatch *d = wbatch_new();
  TU_OK(wbatch_decode(d, buf_slice(&rs.r[0])));
  CU_ASSERT_EQUAL(wbatch_seq(d), 5);
  CU_ASSERT_EQUAL(wbatch_count(d), 2);
  wbatch_free(d);
  records_free(&rs);
  buf_free(&got);
  wbatch_free(b);
  free(path);
}

/* ---- round trip ---- */

static void test_round_trip(void) {
  char *path = new_segment_path(3, 5);
  wal_writer *w;
  TU_OK(wal_writer_open(env_posix(), path, 3, 5, &w));
  /* The segment exists and never opens twice. */
  wal_writer *w2;
  TU_ERR(wal_writer_open(env_posix(), path, 3, 5, &w2), MICA_ALREADY_EXISTS);

  enum { N = 300 };
  buf *p = xcalloc(N, sizeof(buf));
  for (size_t i = 0; i < N; i++) {
    size_t sz;
    if (i == 0 || i == 7) sz = 0;
    else if (i == 150) sz = (32u << 20) + 100; /* the largest batch + overhead */
    else if (i % 60 == 1) sz = (1u << 20) + tu_rand_below(4u << 20);
    else sz = tu_rand_below(tu_rand_below(8) == 0 ? 70000 : 200);
    random_payload(&p[i], sz);
    TU_OK(wal_append(w, buf_slice(&p[i]), tu_rand_below(4) == 0));
  }
  /* Too large: refused, and the writer stays healthy. */
  TU_ERR(wal_append(w, slice_make(p[150].data, WAL_MAX_PAYLOAD + 1u), true),
         MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(wal_writer_error(w));
  uint64_t size = wal_writer_size(w);
  TU_OK(wal_writer_close(w));
  /* The file is longer: its preallocated tail of zeros. */
  uint64_t fsize;
  TU_OK(env_file_size(env_posix(), path, &fsize));
  CU_ASSERT(fsize > size);

  /* Reader API. */
  wal_reader *r;
  TU_OK(wal_reader_open(env_posix(), path, &r));
  CU_ASSERT_EQUAL(wal_reader_epoch(r), 3);
  CU_ASSERT_EQUAL(wal_reader_number(r), 5);
  for (size_t i = 0; i <= N; i++) {
    slice s;
    bool eof;
    TU_OK(wal_reader_next(r, &s, &eof));
    if (i == N) {
      CU_ASSERT(eof);
      break;
    }
    CU_ASSERT_FATAL(!eof);
    CU_ASSERT(slice_eq(s, buf_slice(&p[i])));
  }
  CU_ASSERT_EQUAL(wal_reader_dropped(r), 0);
  CU_ASSERT_EQUAL(wal_reader_zero_tail(r), fsize - size);
  CU_ASSERT_EQUAL(wal_reader_valid_end(r), size);
  bool eof = false;
  slice s;
  TU_OK(wal_reader_next(r, &s, &eof));
  CU_ASSERT(eof);
  wal_reader_close(r);

  /* One-call replay. */
  records rs = {0};
  wal_replay_stats st;
  TU_OK(replay(path, &rs, &st));
  check_prefix(&rs, p, N);
  CU_ASSERT_EQUAL(st.records, N);
  CU_ASSERT_EQUAL(st.dropped, 0);
  CU_ASSERT_EQUAL(st.valid_end, size);
  CU_ASSERT_EQUAL(st.epoch, 3);
  CU_ASSERT_EQUAL(st.number, 5);
  records_free(&rs);
  for (size_t i = 0; i < N; i++) buf_free(&p[i]);
  free(p);
  free(path);
}

static mica_err *stop_at_third(void *arg, slice payload, uint64_t offset) {
  (void)payload;
  int *n = arg;
  if (++*n == 3) return err_new(MICA_CORRUPTION, "bad batch at %llu", (unsigned long long)offset);
  return NULL;
}

static void test_replay_callback_error(void) {
  buf p[5];
  uint64_t offs[5];
  char *path = write_segment(5, 10, 10, p, offs);
  int n = 0;
  wal_replay_stats st;
  TU_ERR(wal_replay(env_posix(), path, stop_at_third, &n, &st), MICA_CORRUPTION);
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT_EQUAL(st.records, 3);
  for (int i = 0; i < 5; i++) buf_free(&p[i]);
  TU_ERR(wal_replay(env_posix(), "/nonexistent/wal.log", stop_at_third, &n, NULL),
         MICA_NOT_FOUND);
  free(path);
}

/* Empty file, header only, torn header: no records, and the right amount
 * dropped. */
static void test_short_segments(void) {
  char *path = new_segment_path(1, 1);
  wal_writer *w;
  TU_OK(wal_writer_open(env_posix(), path, 1, 1, &w));
  TU_OK(wal_writer_close(w));
  buf whole = BUF_INIT;
  read_all(path, &whole);
  CU_ASSERT_EQUAL(whole.len, WAL_FRAME_HEADER + 28);
  records rs = {0};
  wal_replay_stats st;
  TU_OK(replay(path, &rs, &st));
  CU_ASSERT_EQUAL(rs.n, 0);
  CU_ASSERT_EQUAL(st.dropped, 0);
  CU_ASSERT_EQUAL(st.epoch, 1);
  for (size_t cut = 0; cut < whole.len; cut++) {
    write_all(path, whole.data, cut);
    TU_OK(replay(path, &rs, &st));
    CU_ASSERT_EQUAL(rs.n, 0);
    CU_ASSERT_EQUAL(st.dropped, nz_end(whole.data, 0, cut));
    CU_ASSERT_EQUAL(st.dropped + st.zero_tail, cut);
    CU_ASSERT_EQUAL(st.valid_end, 0);
    CU_ASSERT_EQUAL(st.epoch, 0);
  }
  /* A complete, checksummed header with the wrong magic is not a WAL. */
  whole.data[WAL_FRAME_HEADER] ^= 1;
  uint32_t crc = crc32c_extend(0, whole.data + 4, whole.len - 4);
  encode_fixed32(whole.data, crc32c_mask(crc));
  write_all(path, whole.data, whole.len);
  mica_err *e = replay(path, &rs, &st);
  CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "not a WAL segment"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), path));
  err_free(e);
  records_free(&rs);
  buf_free(&whole);
  free(path);
}

/* ---- torn tails and damage ---- */

enum { K = 12, SMALL = 40, LAST = 300 };

static void test_torn_tail_every_length(void) {
  buf p[K];
  uint64_t offs[K];
  char *path = write_segment(K, SMALL, LAST, p, offs);
  buf whole = BUF_INIT;
  read_all(path, &whole);
  uint64_t last = offs[K - 1];
  CU_ASSERT_EQUAL_FATAL(whole.len, last + WAL_FRAME_HEADER + LAST);
  char *cut_path = path_in(tu_tmpdir(), "cut.log");
  records rs = {0};
  wal_replay_stats st;
  for (uint64_t cut = last; cut < whole.len; cut++) {
    write_all(cut_path, whole.data, cut);
    TU_OK(replay(cut_path, &rs, &st));
    check_prefix(&rs, p, K - 1);
    CU_ASSERT_EQUAL(st.dropped, nz_end(whole.data, last, cut) - last);
    CU_ASSERT_EQUAL(st.dropped + st.zero_tail, cut - last);
    CU_ASSERT_EQUAL(st.valid_end, last);
  }
  /* Zero-filled space after the last record (a file system that extended
   * the file but never wrote the block). */
  buf z = BUF_INIT;
  size_t zeros[] = {1, 8, 9, 10, 4096, 70000};
  for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
    buf_clear(&z);
    buf_append_slice(&z, buf_slice(&whole));
    buf_resize(&z, whole.len + zeros[i]);
    write_all(cut_path, z.data, z.len);
    TU_OK(replay(cut_path, &rs, &st));
    check_prefix(&rs, p, K);
    CU_ASSERT_EQUAL(st.dropped, 0);
    CU_ASSERT_EQUAL(st.zero_tail, zeros[i]);
    CU_ASSERT_EQUAL(st.valid_end, whole.len);
  }
  /* The last record's tail zeroed, plus zeros beyond: its non-zero bytes
   * are dropped, the zeros are the zero tail. */
  buf_clear(&z);
  buf_append(&z, whole.data, last + 20);
  buf_resize(&z, whole.len + 5000);
  write_all(cut_path, z.data, z.len);
  TU_OK(replay(cut_path, &rs, &st));
  check_prefix(&rs, p, K - 1);
  uint64_t nz = nz_end(z.data, last, z.len);
  CU_ASSERT(nz > last && nz <= last + 20);
  CU_ASSERT_EQUAL(st.dropped, nz - last);
  CU_ASSERT_EQUAL(st.zero_tail, z.len - nz);
  buf_free(&z);
  records_free(&rs);
  for (int i = 0; i < K; i++) buf_free(&p[i]);
  buf_free(&whole);
  free(cut_path);
  free(path);
}

static void test_flipped_byte_in_last_record(void) {
  buf p[K];
  uint64_t offs[K];
  char *path = write_segment(K, SMALL, LAST, p, offs);
  buf whole = BUF_INIT;
  read_all(path, &whole);
  uint64_t last = offs[K - 1];
  records rs = {0};
  wal_replay_stats st;
  for (uint64_t at = last; at < whole.len; at++) {
    uint8_t flip = (uint8_t)(1u << tu_rand_below(8));
    whole.data[at] ^= flip;
    write_all(path, whole.data, whole.len);
    mica_err *e = replay(path, &rs, &st);
    if (e != NULL) fprintf(stderr, "\nflip at %llu: %s\n", (unsigned long long)at, err_msg(e));
    TU_OK(e);
    check_prefix(&rs, p, K - 1);
    uint64_t nz = nz_end(whole.data, last, whole.len);
    CU_ASSERT_EQUAL(st.dropped, nz - last);
    CU_ASSERT_EQUAL(st.zero_tail, whole.len - nz);
    whole.data[at] ^= flip;
  }
  records_free(&rs);
  for (int i = 0; i < K; i++) buf_free(&p[i]);
  buf_free(&whole);
  free(path);
}

static void expect_middle_corruption(const char *path, uint64_t bad_off,
                                     size_t records_before) {
  records rs = {0};
  wal_replay_stats st;
  mica_err *e = replay(path, &rs, &st);
  CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
  char needle[64];
  snprintf(needle, sizeof(needle), "offset %llu ", (unsigned long long)bad_off);
  if (e == NULL || strstr(err_msg(e), needle) == NULL || strstr(err_msg(e), path) == NULL) {
    fprintf(stderr, "\nwant CORRUPTION naming %s and \"%s\", got %s\n", path, needle,
            err_msg(e));
    CU_FAIL("middle corruption not reported with file and offset");
  }
  err_free(e);
  CU_ASSERT_EQUAL(rs.n, records_before);
  CU_ASSERT_EQUAL(st.records, records_before);
  records_free(&rs);
}

static void test_middle_corruption(void) {
  buf p[K];
  uint64_t offs[K];
  char *path = write_segment(K, SMALL, LAST, p, offs);
  buf whole = BUF_INIT;
  read_all(path, &whole);
  /* Every byte of a middle record's frame: checksum, length, type, payload. */
  size_t m = K / 2;
  for (uint64_t at = offs[m]; at < offs[m + 1]; at++) {
    uint8_t flip = (uint8_t)(1 + tu_rand_below(255));
    whole.data[at] ^= flip;
    write_all(path, whole.data, whole.len);
    expect_middle_corruption(path, offs[m], m);
    whole.data[at] ^= flip;
  }
  /* The record before the last, followed by the valid last record. */
  whole.data[offs[K - 2] + WAL_FRAME_HEADER] ^= 0x40;
  write_all(path, whole.data, whole.len);
  expect_middle_corruption(path, offs[K - 2], K - 2);
  whole.data[offs[K - 2] + WAL_FRAME_HEADER] ^= 0x40;
  /* A middle block of zeros (a lost file system block). */
  buf z = BUF_INIT;
  buf_append_slice(&z, buf_slice(&whole));
  memset(z.data + offs[2], 0, offs[5] - offs[2]);
  write_all(path, z.data, z.len);
  expect_middle_corruption(path, offs[2], 2);
  /* The header damaged while records follow. */
  buf_clear(&z);
  buf_append_slice(&z, buf_slice(&whole));
  z.data[12] ^= 0x10;
  write_all(path, z.data, z.len);
  expect_middle_corruption(path, 0, 0);
  buf_free(&z);
  for (int i = 0; i < K; i++) buf_free(&p[i]);
  buf_free(&whole);
  free(path);
}

/* Random damage anywhere: flips, a cut, garbage or zeros appended. Replay
 * must never crash and must say exactly one of two things: CORRUPTION when
 * an intact record starts after the first damaged byte, else the records
 * wholly before that byte, with everything from the damaged frame on
 * dropped as a tail. */
static void test_random_damage(void) {
  enum { N = 30 };
  char *path = new_segment_path(9, 1);
  wal_writer *w;
  TU_OK(wal_writer_open(env_posix(), path, 9, 1, &w));
  buf p[N];
  uint64_t offs[N + 1]; /* frame starts; offs[N] is the end */
  for (int i = 0; i < N; i++) {
    p[i] = (buf)BUF_INIT;
    random_payload(&p[i], tu_rand_below(100));
    offs[i] = wal_writer_size(w);
    TU_OK(wal_append(w, buf_slice(&p[i]), false));
  }
  offs[N] = wal_writer_size(w);
  TU_OK(wal_writer_close(w));
  buf whole = BUF_INIT, d = BUF_INIT;
  read_all(path, &whole);
  CU_ASSERT_EQUAL_FATAL(whole.len, offs[N]);
  char *dpath = path_in(tu_tmpdir(), "damaged.log");
  records rs = {0};
  wal_replay_stats st;
  int corrupt = 0, tails = 0;
  for (int round = 0; round < 600; round++) {
    buf_clear(&d);
    buf_append_slice(&d, buf_slice(&whole));
    uint64_t flip_at[3];
    int flips = (int)tu_rand_below(4);
    for (int i = 0; i < flips; i++) {
      flip_at[i] = tu_rand_below(d.len);
      d.data[flip_at[i]] ^= (uint8_t)(1 + tu_rand_below(255));
    }
    size_t len = tu_rand_below(2) ? tu_rand_below(d.len + 1) : d.len;
    size_t extra = tu_rand_below(3) == 0 ? 1 + tu_rand_below(2000) : 0;
    d.len = len;
    if (extra) {
      buf_resize(&d, len + extra);
      if (tu_rand_below(2)) tu_rand_bytes(d.data + len, extra);
    }
    /* The first damaged byte: the first that differs from the original,
     * or where one of the two ends. (Comparing beats bookkeeping: zeros
     * appended after a cut can restore bytes that were zero.) */
    size_t common = d.len < whole.len ? d.len : whole.len;
    uint64_t first = UINT64_MAX;
    for (size_t k = 0; k < common; k++)
      if (d.data[k] != whole.data[k]) {
        first = k;
        break;
      }
    if (first == UINT64_MAX && d.len != whole.len) first = common;
    write_all(dpath, d.data, d.len);
    mica_err *e = replay(dpath, &rs, &st);
    if (first == UINT64_MAX) {
      TU_OK(e);
      CU_ASSERT_EQUAL(rs.n, N);
      CU_ASSERT_EQUAL(st.dropped, 0);
      continue;
    }
    bool intact_after = false;
    for (int k = 0; k < N; k++)
      if (offs[k] > first && offs[k + 1] <= d.len &&
          memcmp(d.data + offs[k], whole.data + offs[k], offs[k + 1] - offs[k]) == 0)
        intact_after = true;
    size_t before = 0;
    while (before < N && offs[before + 1] <= first) before++;
    uint64_t tail_start = first < offs[0] ? 0 : offs[before];
    if (intact_after) {
      corrupt++;
      CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
      err_free(e);
    } else {
      tails++;
      if (e != NULL) fprintf(stderr, "\nround %d: %s\n", round, err_msg(e));
      TU_OK(e);
      CU_ASSERT_EQUAL(rs.n, first < offs[0] ? 0 : before);
      uint64_t nz = nz_end(d.data, tail_start, d.len);
      CU_ASSERT_EQUAL(st.dropped, nz - tail_start);
      CU_ASSERT_EQUAL(st.zero_tail, d.len - nz);
    }
    for (size_t i = 0; i < rs.n && i < N; i++)
      CU_ASSERT(slice_eq(buf_slice(&rs.r[i]), buf_slice(&p[i])));
  }
  /* Both outcomes were exercised. */
  CU_ASSERT(corrupt > 50);
  CU_ASSERT(tails > 50);
  records_free(&rs);
  for (int i = 0; i < N; i++) buf_free(&p[i]);
  buf_free(&whole);
  buf_free(&d);
  free(dpath);
  free(path);
}

/* ---- group commit ---- */

enum { THREADS = 16, PER_THREAD = 150 };

typedef struct gc_ctx {
  wal_writer *w;
  int id;
  bool sync;
  /* Crash and failure tests: what this thread saw. */
  int acked;        /* records acknowledged (all succeeded before the first error) */
  atomic_int acked_synced; /* index + 1 of the last record acked with sync */
  int errors;
  int after_error_ok; /* successes after an error: must stay 0 */
  atomic_bool *stop;
  int limit; /* records to append; 0 means PER_THREAD */
} gc_ctx;

static void gc_payload(buf *b, int thread, int index) {
  buf_clear(b);
  put_fixed32(b, (uint32_t)thread);
  put_fixed32(b, (uint32_t)index);
  size_t extra = (size_t)((thread * 7 + index * 13) % 120);
  for (size_t i = 0; i < extra; i++) buf_push(b, (uint8_t)(thread ^ index ^ (int)i));
}

static void *gc_main(void *arg) {
  gc_ctx *c = arg;
  buf b = BUF_INIT;
  int limit = c->limit ? c->limit : PER_THREAD;
  for (int i = 0; i < limit; i++) {
    if (c->stop != NULL && atomic_load(c->stop)) break;
    gc_payload(&b, c->id, i);
    bool sync = c->sync || i % 3 == 0;
    mica_err *e = wal_append(c->w, buf_slice(&b), sync);
    if (e != NULL) {
      c->errors++;
      err_free(e);
      continue;
    }
    if (c->errors > 0) {
      c->after_error_ok++;
      continue;
    }
    c->acked = i + 1;
    if (sync) atomic_store(&c->acked_synced, i + 1);
  }
  buf_free(&b);
  return NULL;
}

/* Checks a replayed log of gc payloads: each record well formed, at most
 * once, each thread's records in its own order; fills per-thread counts. */
static void check_gc_records(const records *rs, int *count) {
  memset(count, 0, THREADS * sizeof(int));
  buf want = BUF_INIT;
  for (size_t i = 0; i < rs->n; i++) {
    const buf *r = &rs->r[i];
    CU_ASSERT_FATAL(r->len >= 8);
    uint32_t t = decode_fixed32(r->data), idx = decode_fixed32(r->data + 4);
    CU_ASSERT_FATAL(t < THREADS);
    /* In order and exactly once: the next index this thread should have. */
    CU_ASSERT_EQUAL(idx, (uint32_t)count[t]);
    gc_payload(&want, (int)t, (int)idx);
    CU_ASSERT(slice_eq(buf_slice(r), buf_slice(&want)));
    count[t] = (int)idx + 1;
  }
  buf_free(&want);
}

static void run_threads(gc_ctx *c, int n) {
  pthread_t th[THREADS];
  for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, gc_main, &c[i]);
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

/* Median microseconds of an fdatasync after a small append in the test
 * directory. On a memory file system it is ~0 and there is nothing for
 * group commit to amortise: a leader finishes before followers arrive. */
static uint64_t median_sync_micros(void) {
  char *path = path_in(tu_tmpdir(), "probe");
  env_writer *w;
  TU_OK(env_open_writer(env_posix(), path, ENV_TRUNCATE, &w));
  uint64_t t[9];
  for (int i = 0; i < 9; i++) {
    uint64_t t0 = env_now_micros(env_posix());
    TU_OK(env_append(w, "x", 1));
    TU_OK(env_sync(w));
    t[i] = env_now_micros(env_posix()) - t0;
  }
  TU_OK(env_writer_close(w));
  free(path);
  for (int i = 1; i < 9; i++)
    for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
      uint64_t x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
  return t[4];
}

static void test_group_commit(void) {
  uint64_t sync_us = median_sync_micros();
  env_fault *f = env_fault_new(env_posix());
  char *path = new_segment_path(2, 1);
  wal_writer *w;
  TU_OK(wal_writer_open(env_fault_env(f), path, 2, 1, &w));
  uint64_t syncs0 = env_fault_count(f, ENV_OP_SYNC);
  uint64_t writes0 = env_fault_count(f, ENV_OP_WRITE);
  gc_ctx c[THREADS];
  for (int i = 0; i < THREADS; i++) c[i] = (gc_ctx){.w = w, .id = i, .sync = true};
  run_threads(c, THREADS);
  uint64_t syncs = env_fault_count(f, ENV_OP_SYNC) - syncs0;
  uint64_t writes = env_fault_count(f, ENV_OP_WRITE) - writes0;
  int appends = THREADS * PER_THREAD;
  fprintf(stderr, "(%d sync appends: %llu writes, %llu fdatasyncs, %.1f appends/sync; "
          "one fdatasync ~%llu us) ",
          appends, (unsigned long long)writes, (unsigned long long)syncs,
          (double)appends / (double)(syncs ? syncs : 1), (unsigned long long)sync_us);
  for (int i = 0; i < THREADS; i++) {
    CU_ASSERT_EQUAL(c[i].errors, 0);
    CU_ASSERT_EQUAL(c[i].acked, PER_THREAD);
  }
  /* Group commit: one sync per group, and groups of many records. */
  CU_ASSERT(syncs == writes);
  CU_ASSERT(syncs <= (uint64_t)appends);
  if (sync_us >= 50) {
    CU_ASSERT(syncs * 3 <= (uint64_t)appends);
  } else {
    fprintf(stderr, "(fdatasync is free here: grouping not asserted) ");
  }
  TU_OK(wal_writer_close(w));
  env_fault_free(f);

  records rs = {0};
  wal_replay_stats st;
  TU_OK(replay(path, &rs, &st));
  CU_ASSERT_EQUAL(rs.n, (size_t)appends);
  CU_ASSERT_EQUAL(st.dropped, 0);
  int count[THREADS];
  check_gc_records(&rs, count);
  for (int i = 0; i < THREADS; i++) CU_ASSERT_EQUAL(count[i], PER_THREAD);
  records_free(&rs);
  free(path);
}

/* wal_add fixes the order; records not synced are written without a sync;
 * wal_sync makes them durable. */
static void test_add_commit_and_sync(void) {
  env_fault *f = env_fault_new(env_posix());
  char *path = new_segment_path(2, 2);
  wal_writer *w;
  TU_OK(wal_writer_open(env_fault_env(f), path, 2, 2, &w));
  uint64_t syncs0 = env_fault_count(f, ENV_OP_SYNC);
  uint64_t t[3];
  TU_OK(wal_add(w, slice_from_str("one"), false, &t[0]));
  TU_OK(wal_add(w, slice_from_str("two"), false, &t[1]));
  CU_ASSERT_EQUAL(t[0], t[1]); /* same group */
  TU_OK(wal_commit(w, t[1]));
  TU_OK(wal_commit(w, t[0])); /* already written */
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_SYNC), syncs0);
  TU_OK(wal_add(w, slice_from_str("three"), false, &t[2]));
  CU_ASSERT(t[2] > t[1]);
  TU_OK(wal_sync(w)); /* writes "three" and syncs */
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_SYNC), syncs0 + 1);
  TU_OK(wal_commit(w, t[2]));
  TU_OK(wal_sync(w)); /* nothing new: no fdatasync */
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_SYNC), syncs0 + 1);
  /* A record written without sync makes wal_sync sync again. */
  TU_OK(wal_append(w, slice_from_str("four"), false));
  TU_OK(wal_sync(w));
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_SYNC), syncs0 + 2);
  /* Everything so far survives power loss. */
  env_fault_crash(f);
  TU_ERR(wal_append(w, slice_from_str("five"), true), MICA_IO_ERROR);
  mica_err *e = wal_writer_close(w);
  CU_ASSERT_EQUAL(err_code(e), MICA_IO_ERROR);
  err_free(e);
  env_fault_free(f);
  records rs = {0};
  TU_OK(replay(path, &rs, NULL));
  CU_ASSERT_EQUAL_FATAL(rs.n, 4);
  CU_ASSERT(slice_eq(buf_slice(&rs.r[0]), slice_from_str("one")));
  CU_ASSERT(slice_eq(buf_slice(&rs.r[2]), slice_from_str("three")));
  CU_ASSERT(slice_eq(buf_slice(&rs.r[3]), slice_from_str("four")));
  records_free(&rs);
  free(path);
}

/* A cleanly closed segment is wholly durable, even if nothing asked for
 * sync. */
static void test_close_makes_durable(void) {
  env_fault *f = env_fault_new(env_posix());
  char *path = new_segment_path(2, 3);
  wal_writer *w;
  TU_OK(wal_writer_open(env_fault_env(f), path, 2, 3, &w));
  uint64_t t;
  TU_OK(wal_append(w, slice_from_str("a"), false));
  TU_OK(wal_add(w, slice_from_str("b"), false, &t)); /* never committed */
  TU_OK(wal_writer_close(w));
  env_fault_crash(f);
  env_fault_free(f);
  records rs = {0};
  TU_OK(replay(path, &rs, NULL));
  CU_ASSERT_EQUAL_FATAL(rs.n, 2);
  CU_ASSERT(slice_eq(buf_slice(&rs.r[1]), slice_from_str("b")));
  records_free(&rs);
  free(path);
  TU_OK(wal_writer_close(NULL));
}

/* One group of five records whose write (or sync) fails: all five writers
 * get the error, and so does everything after. */
static void group_failure(enum env_op op) {
  env_fault *f = env_fault_new(env_posix());
  char *path = new_segment_path(4, op);
  wal_writer *w;
  TU_OK(wal_writer_open(env_fault_env(f), path, 4, 1, &w));
  TU_OK(wal_append(w, slice_from_str("before"), true));
  env_fault_fail_nth(f, op, 1, false);
  uint64_t t[5];
  for (int i = 0; i < 5; i++) TU_OK(wal_add(w, slice_from_str("doomed"), true, &t[i]));
  for (int i = 4; i >= 0; i--) TU_ERR(wal_commit(w, t[i]), MICA_IO_ERROR);
  /* Sticky, although the fault was one-shot. */
  uint64_t tk;
  TU_ERR(wal_add(w, slice_from_str("after"), true, &tk), MICA_IO_ERROR);
  TU_ERR(wal_append(w, slice_from_str("after"), false), MICA_IO_ERROR);
  TU_ERR(wal_sync(w), MICA_IO_ERROR);
  mica_err *e = wal_writer_error(w);
  CU_ASSERT_EQUAL(err_code(e), MICA_IO_ERROR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), path));
  err_free(e);
  TU_ERR(wal_writer_close(w), MICA_IO_ERROR);
  env_fault_free(f);
  /* The acknowledged record is there; "after" never is. */
  records rs = {0};
  TU_OK(replay(path, &rs, NULL));
  CU_ASSERT_FATAL(rs.n >= 1);
  CU_ASSERT(slice_eq(buf_slice(&rs.r[0]), slice_from_str("before")));
  for (size_t i = 1; i < rs.n; i++)
    CU_ASSERT(slice_eq(buf_slice(&rs.r[i]), slice_from_str("doomed")));
  if (op == ENV_OP_WRITE) CU_ASSERT_EQUAL(rs.n, 1);
  records_free(&rs);
  free(path);
}

static void test_write_failure(void) { group_failure(ENV_OP_WRITE); }
static void test_sync_failure(void) { group_failure(ENV_OP_SYNC); }

/* Creating a segment fails cleanly at each of its I/O steps, leaving no
 * file behind, so the caller can retry. */
static void test_open_failures(void) {
  enum env_op ops[] = {ENV_OP_OPEN, ENV_OP_WRITE, ENV_OP_SYNC};
  for (size_t i = 0; i < 3; i++) {
    for (uint64_t nth = 1; nth <= (ops[i] == ENV_OP_SYNC ? 2 : 1); nth++) {
      env_fault *f = env_fault_new(env_posix());
      char *path = new_segment_path(8, i * 10 + nth);
      env_fault_fail_nth(f, ops[i], nth, false);
      wal_writer *w = (wal_writer *)&f; /* must be reset to NULL */
      TU_ERR(wal_writer_open(env_fault_env(f), path, 8, 1, &w), MICA_IO_ERROR);
      CU_ASSERT_PTR_NULL(w);
      CU_ASSERT(!env_exists(env_posix(), path));
      TU_OK(wal_writer_open(env_fault_env(f), path, 8, 1, &w));
      TU_OK(wal_writer_close(w));
      env_fault_free(f);
      free(path);
    }
  }
}

/* The same under 16 concurrent writers: after the failing group, nobody
 * succeeds again, and every acknowledged record is in the file. */
static void concurrent_failure(enum env_op op, bool disk_full) {
  env_fault *f = env_fault_new(env_posix());
  char *path = new_segment_path(5, op * 2 + disk_full);
  wal_writer *w;
  TU_OK(wal_writer_open(env_fault_env(f), path, 5, 1, &w));
  if (disk_full) {
    TU_OK(wal_append(w, slice_from_str("x"), true));
    env_fault_set_disk_full(f, true);
  } else {
    env_fault_fail_nth(f, op, 1 + tu_rand_below(30), false);
  }
  gc_ctx c[THREADS];
  for (int i = 0; i < THREADS; i++) c[i] = (gc_ctx){.w = w, .id = i, .sync = true};
  run_threads(c, THREADS);
  for (int i = 0; i < THREADS; i++) {
    /* Each thread: some successes, then only errors. */
    CU_ASSERT_EQUAL(c[i].after_error_ok, 0);
    CU_ASSERT_EQUAL(c[i].errors, PER_THREAD - c[i].acked);
    CU_ASSERT(c[i].errors > 0);
  }
  mica_err *e = wal_writer_error(w);
  CU_ASSERT_EQUAL(err_code(e), disk_full ? MICA_RESOURCE_EXHAUSTED : MICA_IO_ERROR);
  err_free(e);
  /* Power loss now keeps only what was synced, so a record acknowledged
   * although its group's sync failed would be missing below. */
  env_fault_crash(f);
  err_free(wal_writer_close(w));
  env_fault_free(f);
  records rs = {0};
  TU_OK(replay(path, &rs, NULL));
  if (disk_full) {
    CU_ASSERT_EQUAL(rs.n, 1);
  } else {
    int count[THREADS];
    check_gc_records(&rs, count);
    for (int i = 0; i < THREADS; i++) CU_ASSERT(count[i] >= c[i].acked);
  }
  records_free(&rs);
  free(path);
}

static void test_concurrent_write_failure(void) { concurrent_failure(ENV_OP_WRITE, false); }
static void test_concurrent_sync_failure(void) { concurrent_failure(ENV_OP_SYNC, false); }
static void test_disk_full(void) { concurrent_failure(ENV_OP_WRITE, true); }

/* ---- preallocation ---- */

enum { PRE_REC = 4000 };

static uint64_t file_size_of(const char *path) {
  uint64_t n = 0;
  TU_OK(env_file_size(env_posix(), path, &n));
  return n;
}

/* Records of PRE_REC bytes, thread 0's gc payload in the first 8. */
static void pre_payload(buf *b, int i) {
  gc_payload(b, 0, i);
  buf_resize(b, PRE_REC);
  memset(b->data + 8, 'a' + i % 26, PRE_REC - 8);
}

/* The file runs ahead of the records in a few growing chunks; replay
 * reads every record and reports the rest as a zero tail, not as dropped;
 * damage in front of a preallocated tail is still told apart exactly. */
static void test_preallocated_segment(void) {
  env_fault *f = env_fault_new(env_posix());
  char *path = new_segment_path(8, 1);
  wal_writer *w;
  TU_OK(wal_writer_open(env_fault_env(f), path, 8, 1, &w));
  uint64_t calls0 = env_fault_count(f, ENV_OP_PREALLOCATE);
  CU_ASSERT_EQUAL(file_size_of(path), WAL_FRAME_HEADER + 28);
  enum { N = 900 }; /* 3.6 MB: crosses the 1 and 2 MiB chunks */
  buf b = BUF_INIT;
  uint64_t offs[N + 1];
  for (int i = 0; i < N; i++) {
    pre_payload(&b, i);
    offs[i] = wal_writer_size(w);
    TU_OK(wal_append(w, buf_slice(&b), i % 16 == 0));
    uint64_t fs = file_size_of(path), ws = wal_writer_size(w);
    CU_ASSERT(fs > ws);
    CU_ASSERT(fs <= 2 * ws + (1u << 20));
  }
  offs[N] = wal_writer_size(w);
  uint64_t calls = env_fault_count(f, ENV_OP_PREALLOCATE) - calls0;
  CU_ASSERT(calls >= 2 && calls <= 4);
  TU_OK(wal_writer_close(w));
  env_fault_free(f);

  uint64_t fsize = file_size_of(path);
  records rs = {0};
  wal_replay_stats st;
  TU_OK(replay(path, &rs, &st));
  CU_ASSERT_EQUAL(rs.n, N);
  for (size_t i = 0; i < rs.n; i++) {
    pre_payload(&b, (int)i);
    CU_ASSERT(slice_eq(buf_slice(&rs.r[i]), buf_slice(&b)));
  }
  CU_ASSERT_EQUAL(st.valid_end, offs[N]);
  CU_ASSERT_EQUAL(st.dropped, 0);
  CU_ASSERT_EQUAL(st.zero_tail, fsize - offs[N]);

  /* The raw file, zeros included: the last record damaged is a torn tail
   * (its non-zero bytes dropped, the zeros a zero tail); a middle record
   * damaged is CORRUPTION even with megabytes of zeros after the end. */
  buf raw = BUF_INIT;
  TU_OK(env_read_file(env_posix(), path, SIZE_MAX, &raw));
  CU_ASSERT_EQUAL_FATAL(raw.len, fsize);
  char *dpath = path_in(tu_tmpdir(), "pre-damaged.log");
  raw.data[offs[N - 1] + WAL_FRAME_HEADER + 100] ^= 0x20;
  write_all(dpath, raw.data, raw.len);
  TU_OK(replay(dpath, &rs, &st));
  CU_ASSERT_EQUAL(rs.n, N - 1);
  CU_ASSERT_EQUAL(st.valid_end, offs[N - 1]);
  CU_ASSERT_EQUAL(st.dropped, offs[N] - offs[N - 1]);
  CU_ASSERT_EQUAL(st.zero_tail, fsize - offs[N]);
  raw.data[offs[N - 1] + WAL_FRAME_HEADER + 100] ^= 0x20;
  raw.data[offs[N / 2] + 2] ^= 0x01;
  write_all(dpath, raw.data, raw.len);
  expect_middle_corruption(dpath, offs[N / 2], N / 2);
  /* A torn write inside preallocated space: the last group's first
   * bytes reached the disk, the rest of the space is still zero. */
  raw.data[offs[N / 2] + 2] ^= 0x01;
  memset(raw.data + offs[N - 1] + 50, 0, offs[N] - offs[N - 1] - 50);
  write_all(dpath, raw.data, raw.len);
  TU_OK(replay(dpath, &rs, &st));
  CU_ASSERT_EQUAL(rs.n, N - 1);
  CU_ASSERT_EQUAL(st.dropped, nz_end(raw.data, offs[N - 1], raw.len) - offs[N - 1]);
  CU_ASSERT(st.dropped > 0 && st.dropped <= 50);
  CU_ASSERT_EQUAL(st.valid_end + st.dropped + st.zero_tail, fsize);
  records_free(&rs);
  buf_free(&raw);
  buf_free(&b);
  free(dpath);
  free(path);
}

/* A failed preallocation is not an error: the segment is appended to as
 * before (no further attempts), every record is durable and replays, and
 * the file has no zero tail. */
static void test_preallocate_failure(void) {
  env_fault *f = env_fault_new(env_posix());
  char *path = new_segment_path(8, 2);
  wal_writer *w;
  TU_OK(wal_writer_open(env_fault_env(f), path, 8, 2, &w));
  uint64_t calls0 = env_fault_count(f, ENV_OP_PREALLOCATE);
  env_fault_fail_nth(f, ENV_OP_PREALLOCATE, 1, false);
  enum { N = 400 };
  buf b = BUF_INIT;
  for (int i = 0; i < N; i++) {
    pre_payload(&b, i);
    TU_OK(wal_append(w, buf_slice(&b), i % 5 == 0));
    CU_ASSERT_EQUAL(file_size_of(path), wal_writer_size(w));
  }
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_PREALLOCATE) - calls0, 1);
  CU_ASSERT_PTR_NULL(wal_writer_error(w));
  uint64_t size = wal_writer_size(w);
  TU_OK(wal_writer_close(w));
  env_fault_free(f);
  records rs = {0};
  wal_replay_stats st;
  TU_OK(replay(path, &rs, &st));
  CU_ASSERT_EQUAL(rs.n, N);
  CU_ASSERT_EQUAL(st.valid_end, size);
  CU_ASSERT_EQUAL(st.dropped, 0);
  CU_ASSERT_EQUAL(st.zero_tail, 0);
  records_free(&rs);
  buf_free(&b);
  free(path);
}

/* Power loss with preallocated segments: synced records across several
 * chunks, then unsynced ones (some in space preallocated but not yet made
 * durable). After the crash exactly the synced records replay, nothing is
 * dropped, and the zeros up to the last synced preallocation are a zero
 * tail. */
static void test_crash_preallocated(void) {
  for (int round = 0; round < 6; round++) {
    env_fault *f = env_fault_new(env_posix());
    char *path = new_segment_path(9, (uint64_t)round);
    wal_writer *w;
    TU_OK(wal_writer_open(env_fault_env(f), path, 9, 1, &w));
    int n = 200 + (int)tu_rand_below(700), synced = 0;
    uint64_t synced_end = 0, synced_fsize = 0;
    buf b = BUF_INIT;
    for (int i = 0; i < n; i++) {
      pre_payload(&b, i);
      bool sync = i + 1 < n - round * 20 && tu_rand_below(8) == 0;
      TU_OK(wal_append(w, buf_slice(&b), sync));
      if (sync) {
        synced = i + 1;
        synced_end = wal_writer_size(w);
        synced_fsize = file_size_of(path);
      }
    }
    env_fault_crash(f);
    err_free(wal_writer_close(w));
    env_fault_free(f);
    records rs = {0};
    wal_replay_stats st;
    TU_OK(replay(path, &rs, &st));
    CU_ASSERT_EQUAL(rs.n, (size_t)synced);
    for (size_t i = 0; i < rs.n; i++) {
      pre_payload(&b, (int)i);
      CU_ASSERT(slice_eq(buf_slice(&rs.r[i]), buf_slice(&b)));
    }
    CU_ASSERT_EQUAL(st.dropped, 0);
    if (synced > 0) {
      CU_ASSERT_EQUAL(st.valid_end, synced_end);
      CU_ASSERT_EQUAL(file_size_of(path), synced_fsize);
      CU_ASSERT_EQUAL(st.zero_tail, synced_fsize - synced_end);
      CU_ASSERT(st.zero_tail > 0);
    }
    records_free(&rs);
    buf_free(&b);
    free(path);
  }
}

/* ---- power loss ---- */

static void test_crash_single_writer(void) {
  for (int round = 0; round < 20; round++) {
    env_fault *f = env_fault_new(env_posix());
    char *path = new_segment_path(6, (uint64_t)round);
    wal_writer *w;
    TU_OK(wal_writer_open(env_fault_env(f), path, 6, 1, &w));
    int n = (int)tu_rand_below(200), synced = 0;
    buf b = BUF_INIT;
    for (int i = 0; i < n; i++) {
      gc_payload(&b, 0, i);
      bool sync = tu_rand_below(3) == 0;
      TU_OK(wal_append(w, buf_slice(&b), sync));
      if (sync) synced = i + 1;
    }
    env_fault_crash(f);
    err_free(wal_writer_close(w));
    env_fault_free(f);
    records rs = {0};
    wal_replay_stats st;
    TU_OK(replay(path, &rs, &st));
    int count[THREADS];
    check_gc_records(&rs, count);
    /* Every synced record survives; this env drops all unsynced bytes.
     * The first data sync also made the segment's preallocation durable,
     * so exactly then the file ends in a zero tail. */
    CU_ASSERT_EQUAL(count[0], synced);
    CU_ASSERT_EQUAL(st.dropped, 0);
    CU_ASSERT_EQUAL(st.zero_tail > 0, synced > 0);
    uint64_t fsize;
    TU_OK(env_file_size(env_posix(), path, &fsize));
    CU_ASSERT_EQUAL(st.valid_end + st.zero_tail, fsize);
    records_free(&rs);
    buf_free(&b);
    free(path);
  }
}

static void test_crash_concurrent(void) {
  for (int round = 0; round < 5; round++) {
    env_fault *f = env_fault_new(env_posix());
    char *path = new_segment_path(7, (uint64_t)round);
    wal_writer *w;
    TU_OK(wal_writer_open(env_fault_env(f), path, 7, 1, &w));
    atomic_bool stop = false;
    gc_ctx c[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
      /* Writers keep going until told to stop, so the crash lands among
       * groups in flight. */
      c[i] = (gc_ctx){.w = w, .id = i, .sync = false, .stop = &stop, .limit = 1 << 30};
      pthread_create(&th[i], NULL, gc_main, &c[i]);
    }
    /* Crash at a random moment once some records are durable. */
    for (int acked = 0; acked < 50;) {
      env_sleep_micros(env_posix(), 200);
      acked = 0;
      for (int i = 0; i < THREADS; i++) acked += atomic_load(&c[i].acked_synced);
    }
    env_sleep_micros(env_posix(), tu_rand_below(10000));
    env_fault_crash(f);
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    err_free(wal_writer_close(w));
    env_fault_free(f);
    records rs = {0};
    TU_OK(replay(path, &rs, NULL));
    int count[THREADS], survived = 0;
    check_gc_records(&rs, count);
    /* Every record acknowledged with sync survives (the fault env orders
     * each whole operation before or after the crash). */
    for (int i = 0; i < THREADS; i++) {
      int acked = atomic_load(&c[i].acked_synced);
      CU_ASSERT(count[i] >= acked);
      CU_ASSERT_EQUAL(c[i].after_error_ok, 0);
      survived += acked;
    }
    CU_ASSERT(survived > 0);
    records_free(&rs);
    free(path);
  }
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"names", test_names},
      {"layout", test_layout},
      {"round_trip", test_round_trip},
      {"replay_callback_error", test_replay_callback_error},
      {"short_segments", test_short_segments},
      {"torn_tail_every_length", test_torn_tail_every_length},
      {"flipped_byte_in_last_record", test_flipped_byte_in_last_record},
      {"middle_corruption", test_middle_corruption},
      {"random_damage", test_random_damage},
      {"group_commit", test_group_commit},
      {"add_commit_and_sync", test_add_commit_and_sync},
      {"close_makes_durable", test_close_makes_durable},
      {"open_failures", test_open_failures},
      {"write_failure", test_write_failure},
      {"sync_failure", test_sync_failure},
      {"concurrent_write_failure", test_concurrent_write_failure},
      {"concurrent_sync_failure", test_concurrent_sync_failure},
      {"disk_full", test_disk_full},
      {"crash_single_writer", test_crash_single_writer},
      {"crash_concurrent", test_crash_concurrent},
      {"preallocated_segment", test_preallocated_segment},
      {"preallocate_failure", test_preallocate_failure},
      {"crash_preallocated", test_crash_preallocated},
      CU_TEST_INFO_NULL,
  };
  tu_add_suite("wal", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
