/* replay_main: runs a fuzz target over files, without libFuzzer.
 *
 *   fuzz_<name>_replay PATH...
 *
 * Each PATH is a file, or a directory whose files are run in name order
 * (an absent directory counts as empty: regress/<name>/ exists only once
 * the fuzzer has found something). Every input goes through
 * LLVMFuzzerTestOneInput exactly as the fuzzer would pass it; a crash or
 * sanitizer report ends the program, and the name of the input being run
 * is printed first so that it can be found. Exits 1 when no input at all
 * was found (a wrong path must not pass as a clean run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "fuzz/fuzz_util.h"

/* Largest input replayed; the fuzzer is run with a smaller -max_len. */
#define REPLAY_MAX_BYTES (16u << 20)

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path) {
  buf b = BUF_INIT;
  mica_err *err = env_read_file(env_posix(), path, REPLAY_MAX_BYTES, &b);
  if (err) {
    fprintf(stderr, "replay: %s\n", err_msg(err));
    err_free(err);
    exit(1);
  }
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, b.len);
  /* A private copy of exactly the input's size, so ASan sees any read
   * past its end as the fuzzer would. */
  uint8_t *copy = xmalloc(b.len ? b.len : 1);
  if (b.len) memcpy(copy, b.data, b.len);
  LLVMFuzzerTestOneInput(copy, b.len);
  free(copy);
  buf_free(&b);
  return 1;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path) {
  env *e = env_posix();
  if (!env_exists(e, path)) {
    fprintf(stderr, "replay: %s: absent, no inputs\n", path);
    return 0;
  }
  char **names;
  size_t n;
  mica_err *err = env_list(e, path, &names, &n);
  if (err) { /* not a directory: a single input file */
    err_free(err);
    return run_file(path);
  }
  qsort(names, n, sizeof(*names), cmp_names);
  int count = 0;
  buf p = BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    if (names[i][0] == '.') continue;
    buf_clear(&p);
    buf_append(&p, path, strlen(path));
    buf_push(&p, '/');
    buf_append(&p, names[i], strlen(names[i]) + 1);
    count += run_file((const char *)p.data);
  }
  buf_free(&p);
  env_free_names(names, n);
  return count;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
    return 2;
  }
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int total = 0;
  for (int i = 1; i < argc; i++) total += run_path(argv[i]);
  if (total == 0) {
    fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  fprintf(stderr, "replay: %d inputs ran cleanly\n", total);
  return 0;
}
