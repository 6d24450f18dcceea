/* fuzz_util: the private temp directory and small helpers of the fuzz
 * targets (fuzz_util.h). */
#include "fuzz/fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"

static char *g_dir;

static void remove_dir(void) {
  if (g_dir == NULL) return;
  err_free(env_remove_tree(env_posix(), g_dir));
  free(g_dir);
  g_dir = NULL;
}

static void die(const char *what, mica_err *err) {
  fprintf(stderr, "fuzz: %s: %s\n", what, err ? err_msg(err) : "failed");
  abort();
}

const char *fz_dir(void) {
  if (g_dir != NULL) return g_dir;
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || *tmp == '\0') tmp = "/tmp";
  size_t n = strlen(tmp) + 32;
  char *d = xmalloc(n);
  snprintf(d, n, "%s/mica-fuzz-XXXXXX", tmp);
  if (mkdtemp(d) == NULL) die("mkdtemp under $TMPDIR", NULL);
  g_dir = d;
  atexit(remove_dir);
  return g_dir;
}

const char *fz_path(buf *out, const char *name) {
  const char *d = fz_dir();
  buf_clear(out);
  buf_append(out, d, strlen(d));
  buf_push(out, '/');
  buf_append(out, name, strlen(name) + 1);
  return (const char *)out->data;
}

void fz_write(const char *path, const void *data, size_t n) {
  env_writer *w = NULL;
  mica_err *err = env_open_writer(env_posix(), path, ENV_TRUNCATE, &w);
  if (!err && n > 0) err = env_append(w, data, n);
  mica_err *cerr = env_writer_close(w);
  if (!err) err = cerr;
  else err_free(cerr);
  if (err) die("writing the input file", err);
}

uint64_t fz_take(const uint8_t **data, size_t *size, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (*size > 0) {
      v |= (uint64_t)**data << (8 * i);
      (*data)++;
      (*size)--;
    }
  }
  return v;
}
