/* fz_wal: WAL segment replay over untrusted file bytes.
 *
 * The input is a whole segment file. It is replayed the way a tablet
 * replays it at open (tabletserver/tablet.c): wal_reader yields each
 * record's payload, which is decoded as a write batch and, when its
 * sequence range is valid, applied to a memtable that is then iterated.
 *
 * Oracles besides "never crash":
 *   - after a clean end, valid_end + dropped + zero_tail is the file size
 *     (wal.h);
 *   - a payload wbatch_decode accepts re-encodes to the same bytes
 *     (wbatch.h: it accepts exactly what wbatch_data produces). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ikey.h"
#include "fuzz/fuzz_util.h"
#include "tabletserver/memtable.h"
#include "tabletserver/wal.h"
#include "tabletserver/wbatch.h"

static buf g_path = BUF_INIT;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char name[64];
  fz_path(&g_path, wal_segment_name(name, sizeof(name), 3, 1));
  return 0;
}

static void oracle_fail(const char *what) {
  fprintf(stderr, "fz_wal: %s\n", what);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = (const char *)g_path.data;
  fz_write(path, data, size);
  wal_reader *r = NULL;
  mica_err *err = wal_reader_open(env_posix(), path, &r);
  if (err) {
    err_free(err);
    return 0;
  }
  (void)wal_reader_epoch(r);
  (void)wal_reader_number(r);
  memtable *mem = mt_new();
  wbatch *b = wbatch_new();
  bool eof = false;
  while (!err && !eof) {
    slice payload;
    err = wal_reader_next(r, &payload, &eof);
    if (err || eof) break;
    (void)wal_reader_record_offset(r);
    mica_err *derr = wbatch_decode(b, payload);
    if (derr) {
      err_free(derr);
      continue;
    }
    slice again = wbatch_data(b);
    if (!slice_eq(again, payload))
      oracle_fail("a decoded write batch re-encodes to other bytes");
    uint64_t seq = wbatch_seq(b), n = wbatch_count(b);
    /* The tablet's own check before applying (replay_record). */
    if (n == 0 || seq == 0 || seq + n - 1 > IKEY_MAX_SEQ) continue;
    mt_apply_batch(mem, b);
  }
  if (!err) {
    uint64_t sum = wal_reader_valid_end(r) + wal_reader_dropped(r) +
                   wal_reader_zero_tail(r);
    if (sum != size)
      oracle_fail("valid_end + dropped + zero_tail is not the file size");
  }
  err_free(err);

  iter *it = mt_iter_new(mem);
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
    (void)iter_key(it);
    (void)iter_value(it);
  }
  iter_close(it);
  wbatch_free(b);
  mt_unref(mem);
  wal_reader_close(r);
  return 0;
}

#ifdef MICA_LIBFUZZER
#include "fuzz/fixup.h"
#include "fuzz/mutate.h"

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  return fz_mutate_fixed(data, size, max_size, seed, fz_fix_wal);
}
#endif
