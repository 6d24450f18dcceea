/* ikey: internal key encoding, ordering and index separators. */
#include "common/ikey.h"

#include <string.h>

#include "common/coding.h"

void ikey_append(buf *out, slice user_key, uint64_t seq, uint8_t kind) {
  buf_append_slice(out, user_key);
  put_fixed64(out, seq << 8 | kind);
}

bool ikey_parse(slice ik, ikey_parts *out) {
  if (ik.len < IKEY_TRAILER) return false;
  uint64_t t = decode_fixed64(ik.data + ik.len - IKEY_TRAILER);
  uint8_t kind = (uint8_t)(t & 0xff);
  if (kind > IKEY_PUT) return false;
  out->user_key = ikey_user_key(ik);
  out->seq = t >> 8;
  out->kind = kind;
  return true;
}

int ikey_cmp(slice a, slice b) {
  int r = slice_cmp(ikey_user_key(a), ikey_user_key(b));
  if (r != 0) return r;
  uint64_t ta = decode_fixed64(a.data + a.len - IKEY_TRAILER);
  uint64_t tb = decode_fixed64(b.data + b.len - IKEY_TRAILER);
  return ta > tb ? -1 : ta < tb ? 1 : 0;
}

/* A user key between the two, as short as we can make it cheaply: the
 * common prefix plus one byte bumped, when that still sorts below `b`. With
 * the largest trailer it sorts before every version of that user key, so it
 * stays >= a only when the user key grew; otherwise we keep `a` itself. */
void ikey_separator(slice a, slice b, buf *out) {
  slice ua = ikey_user_key(a);
  size_t start = out->len;
  if (b.len == 0) {
    /* Successor: first byte that is not 0xff, bumped, and cut there. */
    for (size_t i = 0; i < ua.len; i++) {
      if (ua.data[i] != 0xff) {
        buf_append(out, ua.data, i + 1);
        out->data[out->len - 1]++;
        put_fixed64(out, IKEY_MAX_SEQ << 8 | IKEY_SEEK_KIND);
        return;
      }
    }
    buf_append_slice(out, a);
    return;
  }
  slice ub = ikey_user_key(b);
  size_t n = ua.len < ub.len ? ua.len : ub.len, i = 0;
  while (i < n && ua.data[i] == ub.data[i]) i++;
  if (i < n && ua.data[i] < 0xff && ua.data[i] + 1 < ub.data[i]) {
    buf_append(out, ua.data, i + 1);
    out->data[out->len - 1]++;
    put_fixed64(out, IKEY_MAX_SEQ << 8 | IKEY_SEEK_KIND);
    /* Shorter user key than `a`'s, strictly between the two. */
    return;
  }
  out->len = start;
  buf_append_slice(out, a);
}
