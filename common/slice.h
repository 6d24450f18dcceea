/* slice and buf: borrowed byte ranges and growable byte buffers.
 *
 * A slice points at bytes it does not own; it is valid as long as whatever
 * owns the bytes keeps them unchanged. A buf owns its bytes and grows by
 * doubling. Keys and values are arbitrary bytes (NUL included), so nothing
 * here assumes C strings.
 *
 * Thread-safety: plain values; no internal locking. */
#ifndef MICA_COMMON_SLICE_H
#define MICA_COMMON_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct slice {
  const uint8_t *data;
  size_t len;
} slice;

static inline slice slice_make(const void *data, size_t len) {
  slice s = {(const uint8_t *)data, len};
  return s;
}

/* The bytes of a NUL-terminated string, without the NUL. */
slice slice_from_str(const char *s);

/* Unsigned bytewise comparison; a proper prefix sorts first. */
int slice_cmp(slice a, slice b);
bool slice_eq(slice a, slice b);
bool slice_starts_with(slice s, slice prefix);

typedef struct buf {
  uint8_t *data; /* NULL when cap == 0 */
  size_t len;
  size_t cap;
} buf;

#define BUF_INIT {NULL, 0, 0}

/* Makes room for `extra` more bytes. Aborts the process on out-of-memory:
 * every caller would have to, and no buffer here is sized by untrusted
 * input without a limit check first. */
void buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *data, size_t n);
void buf_append_slice(buf *b, slice s);
void buf_push(buf *b, uint8_t byte);
/* Sets len to `n` (growing with zero bytes if needed). */
void buf_resize(buf *b, size_t n);
static inline void buf_clear(buf *b) { b->len = 0; }
static inline slice buf_slice(const buf *b) { return slice_make(b->data, b->len); }
/* Frees the bytes; the buf is empty and reusable afterwards. */
void buf_free(buf *b);

/* The smallest key greater than every key that starts with `prefix`
 * (the prefix with its trailing 0xff bytes dropped and its last byte
 * incremented), so that the keys with that prefix are exactly
 * [prefix, successor). Replaces the contents of `out`. Returns false, with
 * `out` empty, when there is none (the prefix is empty or all 0xff): the
 * range then runs to the end of the key space. */
bool slice_prefix_successor(slice prefix, buf *out);

/* Writes `s` with every byte outside printable ASCII, and the backslash,
 * as \xNN into `out` (appended, NUL-terminated but the NUL not counted). */
void slice_escape(slice s, buf *out);

/* Parses the escapes slice_escape writes (plus \\, \n, \t, \0) from the
 * NUL-terminated `text`, appending the bytes to `out`. Returns false, with
 * `out` unchanged, on a malformed escape. */
bool slice_unescape(const char *text, buf *out);

/* malloc/realloc/strdup that abort on out-of-memory, for the same reason
 * as buf_reserve. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t n);

#endif
