/* wbatch: the batch keeps nothing but its encoded form, so handing it to
 * the WAL costs no encoding step and decoding from the WAL is a validated
 * copy. See wbatch.h for the layout. */
#include "tabletserver/wbatch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/ikey.h"

struct wbatch {
  buf rep; /* always at least WBATCH_HEADER bytes, always well formed */
};

static void reset(wbatch *b) {
  buf_resize(&b->rep, WBATCH_HEADER);
  memset(b->rep.data, 0, WBATCH_HEADER);
}

wbatch *wbatch_new(void) {
  wbatch *b = xcalloc(1, sizeof(*b));
  reset(b);
  return b;
}

void wbatch_free(wbatch *b) {
  if (b == NULL) return;
  buf_free(&b->rep);
  free(b);
}

void wbatch_clear(wbatch *b) { reset(b); }

uint32_t wbatch_count(const wbatch *b) { return decode_fixed32(b->rep.data + 8); }

static void set_count(wbatch *b, uint32_t n) { encode_fixed32(b->rep.data + 8, n); }

size_t wbatch_byte_size(const wbatch *b) { return b->rep.len; }

void wbatch_set_seq(wbatch *b, uint64_t seq) { encode_fixed64(b->rep.data, seq); }

uint64_t wbatch_seq(const wbatch *b) { return decode_fixed64(b->rep.data); }

slice wbatch_data(const wbatch *b) { return buf_slice(&b->rep); }

void wbatch_put(wbatch *b, slice key, slice value) {
  set_count(b, wbatch_count(b) + 1);
  buf_push(&b->rep, IKEY_PUT);
  put_length_prefixed(&b->rep, key);
  put_length_prefixed(&b->rep, value);
}

void wbatch_delete(wbatch *b, slice key) {
  set_count(b, wbatch_count(b) + 1);
  buf_push(&b->rep, IKEY_DELETE);
  put_length_prefixed(&b->rep, key);
}

void wbatch_append(wbatch *dst, const wbatch *src) {
  set_count(dst, wbatch_count(dst) + wbatch_count(src));
  buf_append(&dst->rep, src->rep.data + WBATCH_HEADER,
             src->rep.len - WBATCH_HEADER);
}

/* Reads one length-prefixed field at *p, naming what failed. Offsets in
 * messages are relative to `base`, the start of the encoded batch. */
static mica_err *get_field(const uint8_t *base, const uint8_t **p,
                           const uint8_t *limit, uint32_t entry,
                           const char *what, slice *out) {
  uint32_t len;
  const uint8_t *q = get_varint32(*p, limit, &len);
  if (q == NULL)
    return err_new(MICA_CORRUPTION,
                   "write batch: entry %" PRIu32 ": %s length at offset %zu "
                   "is truncated or malformed",
                   entry, what, (size_t)(*p - base));
  if (len > (size_t)(limit - q))
    return err_new(MICA_CORRUPTION,
                   "write batch: entry %" PRIu32 ": %s length %" PRIu32
                   " at offset %zu runs past the end (%zu bytes)",
                   entry, what, len, (size_t)(*p - base),
                   (size_t)(limit - base));
  *out = slice_make(q, len);
  *p = q + len;
  return NULL;
}

/* Walks an encoded batch, calling fn (if not NULL) for each entry. Every
 * check of untrusted input lives here, so iterate and decode cannot
 * disagree about what is valid. */
static mica_err *walk(slice data, wbatch_fn fn, void *arg) {
  if (data.len < WBATCH_HEADER)
    return err_new(MICA_CORRUPTION,
                   "write batch: %zu bytes, shorter than the %d-byte header",
                   data.len, WBATCH_HEADER);
  const uint8_t *base = data.data, *limit = base + data.len;
  uint64_t seq = decode_fixed64(base);
  uint32_t count = decode_fixed32(base + 8);
  const uint8_t *p = base + WBATCH_HEADER;
  uint32_t i = 0;
  for (; i < count; i++) {
    if (p == limit)
      return err_new(MICA_CORRUPTION,
                     "write batch: count is %" PRIu32 " but the entries end "
                     "after %" PRIu32 " at offset %zu",
                     count, i, (size_t)(p - base));
    size_t at = (size_t)(p - base);
    uint8_t kind = *p++;
    if (kind != IKEY_PUT && kind != IKEY_DELETE)
      return err_new(MICA_CORRUPTION,
                     "write batch: entry %" PRIu32 " at offset %zu has "
                     "unknown kind %u",
                     i, at, kind);
    slice key, value = slice_make(NULL, 0);
    mica_err *e = get_field(base, &p, limit, i, "key", &key);
    if (e == NULL && kind == IKEY_PUT)
      e = get_field(base, &p, limit, i, "value", &value);
    if (e == NULL && fn != NULL) e = fn(arg, seq + i, kind, key, value);
    if (e != NULL) return e;
  }
  if (p != limit)
    return err_new(MICA_CORRUPTION,
                   "write batch: %zu trailing bytes at offset %zu after the "
                   "%" PRIu32 " entries the count announces",
                   (size_t)(limit - p), (size_t)(p - base), count);
  return NULL;
}

mica_err *wbatch_decode(wbatch *b, slice data) {
  mica_err *e = walk(data, NULL, NULL);
  if (e != NULL) {
    reset(b);
    return e;
  }
  buf_clear(&b->rep);
  buf_append_slice(&b->rep, data);
  return NULL;
}

mica_err *wbatch_iterate(const wbatch *b, wbatch_fn fn, void *arg) {
  return walk(buf_slice(&b->rep), fn, arg);
}
