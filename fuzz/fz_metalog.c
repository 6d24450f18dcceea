/* fz_metalog: the master's metadata log replayed by a master opening it.
 *
 * The input is a snapshot file and a log file in one container:
 *
 *   u32 n (little-endian) | n bytes: snap-G | the rest: log-G
 *
 * (n past the end means everything is the snapshot; an empty part is
 * not written, so a log without a snapshot is reachable). G is read from
 * the snapshot's header (bytes 12..19) when it has one, else 1, so a
 * seed taken from a real master directory keeps names and headers in
 * agreement. The files go into <root>/master/ and ms_open replays them:
 * the metalog framing (master/metalog.c) and every record payload
 * (ms_apply in master/ms_state.c), then rolls a new generation.
 *
 * Oracles besides "never crash": a state that opens satisfies
 * ms_check_invariants, and a master reopened on the directory it just
 * rolled holds the same durable state (ms_dump_durable), as a restart
 * must. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/log.h"
#include "fuzz/fuzz_util.h"
#include "master/state.h"

static buf g_root = BUF_INIT, g_dir = BUF_INIT;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  fz_path(&g_root, "root");
  fz_path(&g_dir, "root/master");
  return 0;
}

static void oracle_fail(const char *what, const mica_err *err) {
  fprintf(stderr, "fz_metalog: %s%s%s\n", what, err ? ": " : "",
          err ? err_msg(err) : "");
  abort();
}

typedef struct parts {
  const uint8_t *snap, *log;
  size_t snap_len, log_len;
} parts;

static parts split(const uint8_t *data, size_t size) {
  parts p;
  uint64_t n = fz_take(&data, &size, 4);
  if (n > size) n = size;
  p.snap = data;
  p.snap_len = (size_t)n;
  p.log = data + n;
  p.log_len = size - (size_t)n;
  return p;
}

static void write_part(const char *kind, uint64_t gen, const uint8_t *d,
                       size_t n) {
  if (n == 0) return;
  char name[64];
  snprintf(name, sizeof(name), "root/master/%s-%016" PRIu64, kind, gen);
  buf path = BUF_INIT;
  fz_write(fz_path(&path, name), d, n);
  buf_free(&path);
}

static mica_err *open_master(ms **out) {
  ms_options o;
  ms_options_init(&o);
  o.data_root = (const char *)g_root.data;
  return ms_open(&o, 1000000, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  env *e = env_posix();
  mica_err *err = env_remove_tree(e, (const char *)g_root.data);
  if (!err) err = env_mkdirs(e, (const char *)g_dir.data);
  if (err) oracle_fail("cannot reset the directory", err);
  parts p = split(data, size);
  uint64_t gen = p.snap_len >= 20 ? decode_fixed64(p.snap + 12) : 1;
  write_part("snap", gen, p.snap, p.snap_len);
  write_part("log", gen, p.log, p.log_len);

  ms *m = NULL;
  err = open_master(&m);
  if (err) {
    err_free(err);
    return 0;
  }
  err = ms_check_invariants(m);
  if (err) oracle_fail("a replayed state breaks the invariants", err);
  buf before = BUF_INIT, after = BUF_INIT;
  ms_dump_durable(m, &before);
  ms_close(m);
  err = open_master(&m);
  if (err) oracle_fail("a master cannot reopen what it rolled", err);
  ms_dump_durable(m, &after);
  if (!slice_eq(buf_slice(&before), buf_slice(&after)))
    oracle_fail("the durable state changed across a restart", NULL);
  ms_close(m);
  buf_free(&before);
  buf_free(&after);
  return 0;
}

#ifdef MICA_LIBFUZZER
#include "fuzz/fixup.h"
#include "fuzz/mutate.h"

/* Repairs both files in the container. */
static void fix_container(uint8_t *d, size_t n) {
  parts p = split(d, n);
  size_t off = (size_t)(p.snap - d);
  fz_fix_metalog_file(d + off, p.snap_len);
  fz_fix_metalog_file(d + off + p.snap_len, p.log_len);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  return fz_mutate_fixed(data, size, max_size, seed, fix_container);
}
#endif
