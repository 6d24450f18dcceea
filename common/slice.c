/* slice and buf: byte ranges, growable buffers and byte escaping. */
#include "common/slice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_oom(size_t n) {
  fprintf(stderr, "mica: out of memory allocating %zu bytes\n", n);
  abort();
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) die_oom(n);
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) die_oom(n * size);
  return p;
}

void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) die_oom(n);
  return q;
}

char *xstrdup(const char *s) { return xmemdup(s, strlen(s) + 1); }

void *xmemdup(const void *p, size_t n) {
  void *q = xmalloc(n);
  if (n) memcpy(q, p, n);
  return q;
}

slice slice_from_str(const char *s) { return slice_make(s, strlen(s)); }

int slice_cmp(slice a, slice b) {
  size_t n = a.len < b.len ? a.len : b.len;
  int r = n ? memcmp(a.data, b.data, n) : 0;
  if (r != 0) return r;
  return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

bool slice_eq(slice a, slice b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

bool slice_starts_with(slice s, slice prefix) {
  return s.len >= prefix.len &&
         (prefix.len == 0 || memcmp(s.data, prefix.data, prefix.len) == 0);
}

bool slice_prefix_successor(slice prefix, buf *out) {
  buf_clear(out);
  size_t n = prefix.len;
  while (n > 0 && prefix.data[n - 1] == 0xff) n--;
  if (n == 0) return false;
  buf_append(out, prefix.data, n);
  out->data[n - 1]++;
  return true;
}

void buf_reserve(buf *b, size_t extra) {
  if (b->cap - b->len >= extra) return;
  size_t need = b->len + extra;
  if (need < b->len) die_oom(SIZE_MAX);
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap * 2 > cap ? cap * 2 : need;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
}

void buf_append(buf *b, const void *data, size_t n) {
  if (n == 0) return;
  buf_reserve(b, n);
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

void buf_append_slice(buf *b, slice s) { buf_append(b, s.data, s.len); }

void buf_push(buf *b, uint8_t byte) {
  buf_reserve(b, 1);
  b->data[b->len++] = byte;
}

void buf_resize(buf *b, size_t n) {
  if (n > b->len) {
    buf_reserve(b, n - b->len);
    memset(b->data + b->len, 0, n - b->len);
  }
  b->len = n;
}

void buf_free(buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void slice_escape(slice s, buf *out) {
  static const char hex[] = "0123456789abcdef";
  buf_reserve(out, s.len + 1);
  for (size_t i = 0; i < s.len; i++) {
    uint8_t c = s.data[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      buf_push(out, c);
    } else {
      uint8_t e[4] = {'\\', 'x', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
      buf_append(out, e, 4);
    }
  }
  buf_reserve(out, 1);
  out->data[out->len] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool slice_unescape(const char *text, buf *out) {
  size_t start = out->len;
  for (const char *p = text; *p; p++) {
    if (*p != '\\') {
      buf_push(out, (uint8_t)*p);
      continue;
    }
    p++;
    switch (*p) {
      case '\\': buf_push(out, '\\'); break;
      case 'n': buf_push(out, '\n'); break;
      case 't': buf_push(out, '\t'); break;
      case '0': buf_push(out, 0); break;
      case 'x': {
        int hi = p[1] ? hexval(p[1]) : -1;
        int lo = hi >= 0 && p[2] ? hexval(p[2]) : -1;
        if (lo < 0) goto bad;
        buf_push(out, (uint8_t)(hi << 4 | lo));
        p += 2;
        break;
      }
      default: goto bad;
    }
  }
  return true;
bad:
  out->len = start;
  return false;
}
