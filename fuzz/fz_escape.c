/* fz_escape: the CLI's escape parser (slice_unescape, common/slice.c).
 *
 * Every key and value the `mica` CLI takes on its command line or in a
 * loaded file goes through slice_unescape, and everything it prints
 * through slice_escape (tools/mica/main.c). The input is the text (cut at
 * its first NUL, as a C string from argv or a line would be).
 *
 * Oracles besides "never crash": a failed parse leaves the output as it
 * was; what parses, escaped again, is printable ASCII and parses back to
 * the same bytes; any bytes at all survive escape then unescape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"
#include "fuzz/fuzz_util.h"

static void oracle_fail(const char *what) {
  fprintf(stderr, "fz_escape: %s\n", what);
  abort();
}

/* escape(s) is printable ASCII and unescapes to s. */
static void round_trip(slice s) {
  buf esc = BUF_INIT, back = BUF_INIT;
  slice_escape(s, &esc);
  for (size_t i = 0; i < esc.len; i++)
    if (esc.data[i] < 0x20 || esc.data[i] >= 0x7f)
      oracle_fail("escaped text holds a non-printable byte");
  if (!slice_unescape((const char *)esc.data, &back))
    oracle_fail("escaped text does not parse");
  if (!slice_eq(buf_slice(&back), s))
    oracle_fail("escape then unescape changes the bytes");
  buf_free(&esc);
  buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = xmalloc(size + 1);
  if (size) memcpy(text, data, size);
  text[size] = '\0';

  buf out = BUF_INIT;
  buf_append(&out, "pre", 3); /* unescape appends: the prefix must stay */
  bool ok = slice_unescape(text, &out);
  if (out.len < 3 || memcmp(out.data, "pre", 3) != 0)
    oracle_fail("unescape touched the bytes before its output");
  if (!ok && out.len != 3) oracle_fail("a failed unescape left output");
  if (ok) round_trip(slice_make(out.data + 3, out.len - 3));
  round_trip(slice_make(data, size));
  buf_free(&out);
  free(text);
  return 0;
}
