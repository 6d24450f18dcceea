/* fz_manifest: the tablet manifest decoder over untrusted bytes.
 *
 * The input is a whole MANIFEST file, read with man_read from a tablet
 * directory as a tablet open reads it. Oracle besides "never crash": a
 * manifest that decodes re-encodes (man_encode) to bytes that decode to a
 * state encoding to those same bytes again, and its deep copy encodes
 * the same (the encoding is a function of the state). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz/fuzz_util.h"
#include "tabletserver/manifest.h"

static buf g_dir = BUF_INIT, g_file = BUF_INIT;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_path(&g_dir, "tablet");
  fz_path(&g_file, "tablet/" MAN_FILE_NAME);
  mica_err *err = env_mkdirs(env_posix(), (const char *)g_dir.data);
  if (err) {
    fprintf(stderr, "fz_manifest: %s\n", err_msg(err));
    abort();
  }
  return 0;
}

static void oracle_fail(const char *what) {
  fprintf(stderr, "fz_manifest: %s\n", what);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_write((const char *)g_file.data, data, size);
  man_state m;
  man_init(&m);
  mica_err *err = man_read(env_posix(), (const char *)g_dir.data, &m);
  if (err) {
    err_free(err);
    man_clear(&m);
    return 0;
  }
  buf enc1 = BUF_INIT, enc2 = BUF_INIT, enc3 = BUF_INIT;
  man_encode(&m, &enc1);
  man_state m2, m3;
  man_init(&m2);
  man_init(&m3);
  err = man_decode(buf_slice(&enc1), "re-encoded manifest", &m2);
  if (err) {
    fprintf(stderr, "fz_manifest: %s\n", err_msg(err));
    oracle_fail("a decoded manifest re-encodes to bytes that do not decode");
  }
  man_encode(&m2, &enc2);
  if (!slice_eq(buf_slice(&enc1), buf_slice(&enc2)))
    oracle_fail("manifest encoding is not stable across decode");
  man_copy(&m3, &m);
  man_encode(&m3, &enc3);
  if (!slice_eq(buf_slice(&enc1), buf_slice(&enc3)))
    oracle_fail("a copied manifest encodes differently");
  buf_free(&enc1);
  buf_free(&enc2);
  buf_free(&enc3);
  man_clear(&m);
  man_clear(&m2);
  man_clear(&m3);
  return 0;
}

#ifdef MICA_LIBFUZZER
#include "fuzz/fixup.h"
#include "fuzz/mutate.h"

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  return fz_mutate_fixed(data, size, max_size, seed, fz_fix_manifest);
}
#endif
