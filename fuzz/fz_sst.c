/* fz_sst: the SSTable reader over untrusted file bytes.
 *
 * The input is a whole SSTable file. It is written to a temp file and
 * opened the way a tablet opens its files (sst_reader_open through the
 * POSIX env, with a small block cache), then read every way a tablet
 * reads: properties and index, forward and backward iteration, seek and
 * seek_for_prev, point gets at two snapshots, the Bloom filter, the
 * split-point and offset estimates, and the full verification.
 *
 * Besides "never crash", one oracle: a file that sst_reader_verify accepts
 * must iterate without error, in strictly increasing ikey order, with as
 * many entries as its properties say, the same set backwards. A violation
 * aborts (a finding, like a crash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cache.h"
#include "common/ikey.h"
#include "fuzz/fuzz_util.h"
#include "sstable/sstable.h"

/* Bounds the work per input: iteration stops after this many entries. */
#define MAX_STEPS 20000
/* User keys remembered from iteration, to seek and get. */
#define MAX_PROBES 8

static cache *g_cache;
static buf g_path = BUF_INIT;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  g_cache = cache_new(256 << 10);
  fz_path(&g_path, "fuzz.sst");
  return 0;
}

static void oracle_fail(const char *what) {
  fprintf(stderr, "fz_sst: a verified file %s\n", what);
  abort();
}

typedef struct probes {
  buf keys[MAX_PROBES]; /* internal keys */
  size_t n;
} probes;

/* Iterates forward; fills `p` with keys spread over the file. Returns the
 * count, or -1 after an iterator error. */
static long forward(sst_reader *r, probes *p, bool check) {
  iter *it = sst_reader_iter_new(r, true);
  buf prev = BUF_INIT;
  long n = 0;
  for (iter_seek_to_first(it); iter_valid(it) && n < MAX_STEPS;
       iter_next(it), n++) {
    slice k = iter_key(it);
    (void)iter_value(it);
    if (check && n > 0 && ikey_cmp(buf_slice(&prev), k) >= 0)
      oracle_fail("iterates out of order");
    buf_clear(&prev);
    buf_append_slice(&prev, k);
    if (p->n < MAX_PROBES && (n & (n - 1)) == 0) { /* 0,1,2,4,8,... */
      buf_clear(&p->keys[p->n]);
      buf_append_slice(&p->keys[p->n], k);
      p->n++;
    }
  }
  long res = n;
  if (iter_status(it)) {
    res = -1;
    if (check) fprintf(stderr, "forward: %s\n", err_msg(iter_status(it)));
  }
  buf_free(&prev);
  iter_close(it);
  return res;
}

static long backward(sst_reader *r, bool check) {
  iter *it = sst_reader_iter_new(r, false);
  long n = 0;
  for (iter_seek_to_last(it); iter_valid(it) && n < MAX_STEPS;
       iter_prev(it), n++)
    (void)iter_key(it);
  long res = n;
  if (iter_status(it)) {
    res = -1;
    if (check) fprintf(stderr, "backward: %s\n", err_msg(iter_status(it)));
  }
  iter_close(it);
  return res;
}

/* Seeks both ways to `target` and steps around it. */
static void seek_around(sst_reader *r, slice target) {
  iter *it = sst_reader_iter_new(r, true);
  iter_seek(it, target);
  for (int i = 0; i < 3 && iter_valid(it); i++) iter_next(it);
  iter_seek_for_prev(it, target);
  for (int i = 0; i < 3 && iter_valid(it); i++) iter_prev(it);
  iter_close(it);
}

/* `ik` is a key read from the file; seek targets must be internal keys
 * (the reader's callers never pass anything else), so shorter ones are
 * skipped. */
static void probe(sst_reader *r, slice ik) {
  if (ik.len < IKEY_TRAILER) return;
  seek_around(r, ik);
  slice uk = ikey_user_key(ik);
  (void)sst_reader_may_contain(r, uk);
  (void)sst_reader_approximate_offset(r, ik);
  buf value = BUF_INIT;
  uint64_t snaps[2] = {IKEY_MAX_SEQ, 1};
  for (int i = 0; i < 2; i++) {
    sst_get_result res;
    uint64_t seq;
    err_free(sst_reader_get(r, uk, snaps[i], &res, &value, &seq));
  }
  buf_free(&value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = (const char *)g_path.data;
  fz_write(path, data, size);
  sst_reader *r = NULL;
  mica_err *err = sst_reader_open(env_posix(), path, g_cache, &r);
  if (err) {
    err_free(err);
    return 0;
  }
  const sst_properties *props = sst_reader_properties(r);
  (void)sst_reader_file_size(r);
  size_t nb = sst_reader_num_blocks(r);
  for (size_t i = 0; i < nb; i++) {
    sst_block_info bi;
    sst_reader_block_info(r, i, &bi);
  }

  mica_err *verr = sst_reader_verify(r);
  bool verified = verr == NULL;
  err_free(verr);

  probes p = {0};
  long fwd = forward(r, &p, verified);
  long bwd = backward(r, verified);
  if (verified) {
    if (fwd < 0 || bwd < 0) oracle_fail("fails to iterate");
    if (props->num_entries <= MAX_STEPS &&
        (uint64_t)fwd != props->num_entries)
      oracle_fail("iterates a count other than its properties say");
    if (fwd != bwd) oracle_fail("iterates backwards a different count");
  }
  for (size_t i = 0; i < p.n; i++) probe(r, buf_slice(&p.keys[i]));
  /* Keys not in the file: before everything, and a short mangled one. */
  buf ik = BUF_INIT;
  ikey_append(&ik, slice_make("", 0), IKEY_MAX_SEQ, IKEY_PUT);
  probe(r, buf_slice(&ik));
  buf_clear(&ik);
  ikey_append(&ik, slice_make(data, size < 16 ? size : 16), 7, IKEY_DELETE);
  probe(r, buf_slice(&ik));
  buf_free(&ik);

  buf mid = BUF_INIT;
  err_free(sst_reader_middle_key(r, slice_make(NULL, 0), slice_make(NULL, 0),
                                 &mid));
  if (p.n >= 2 && p.keys[0].len >= IKEY_TRAILER &&
      p.keys[p.n - 1].len >= IKEY_TRAILER)
    err_free(sst_reader_middle_key(r, ikey_user_key(buf_slice(&p.keys[0])),
                                   ikey_user_key(buf_slice(&p.keys[p.n - 1])),
                                   &mid));
  buf_free(&mid);
  for (size_t i = 0; i < MAX_PROBES; i++) buf_free(&p.keys[i]);
  sst_reader_close(r);
  return 0;
}

#ifdef MICA_LIBFUZZER
#include "fuzz/fixup.h"
#include "fuzz/mutate.h"

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  return fz_mutate_fixed(data, size, max_size, seed, fz_fix_sst);
}
#endif
