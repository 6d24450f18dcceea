/* mjson: the strict JSON reader of the `mica` CLI (see mjson.h).
 *
 * A recursive-descent parser over a bounded byte range. Every read checks
 * the position against the end first, so a text cut anywhere fails with
 * "unexpected end" instead of reading past it; recursion stops at
 * MJ_MAX_DEPTH so a hostile "[[[[..." cannot exhaust the stack. Numbers are
 * checked against the JSON grammar before strtod sees them (strtod alone
 * would take "0x1p3", "inf" or " 1"). Objects are bounded to
 * MJ_MAX_MEMBERS members because the repeated-name check is quadratic. */
#include "tools/mica/mjson.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"

typedef struct parser {
  const uint8_t *p, *start, *end;
  int depth;
  char *why;
  size_t why_len;
  bool failed;
} parser;

static bool fail_at(parser *ps, const char *fmt, ...) {
  if (ps->failed) return false;
  ps->failed = true;
  if (ps->why_len == 0) return false;
  int n = snprintf(ps->why, ps->why_len, "offset %zu: ",
                   (size_t)(ps->p - ps->start));
  if (n >= 0 && (size_t)n < ps->why_len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->why + n, ps->why_len - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return false;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end &&
         (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static mj_val *new_val(mj_type t) {
  mj_val *v = xcalloc(1, sizeof(*v));
  v->type = t;
  return v;
}

static mj_val *parse_value(parser *ps);

static bool literal(parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return fail_at(ps, "invalid literal (expected %s)", word);
  ps->p += n;
  return true;
}

static int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads the four hex digits after "\u". */
static bool hex4(parser *ps, uint32_t *out) {
  *out = 0;
  if (ps->end - ps->p < 4) return fail_at(ps, "unexpected end in \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(ps->p[i]);
    if (d < 0) return fail_at(ps, "bad hex digit in \\u escape");
    v = v << 4 | (uint32_t)d;
  }
  ps->p += 4;
  *out = v;
  return true;
}

static void put_utf8(buf *b, uint32_t cp) {
  if (cp < 0x80) {
    buf_push(b, (uint8_t)cp);
  } else if (cp < 0x800) {
    buf_push(b, (uint8_t)(0xc0 | cp >> 6));
    buf_push(b, (uint8_t)(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    buf_push(b, (uint8_t)(0xe0 | cp >> 12));
    buf_push(b, (uint8_t)(0x80 | (cp >> 6 & 0x3f)));
    buf_push(b, (uint8_t)(0x80 | (cp & 0x3f)));
  } else {
    buf_push(b, (uint8_t)(0xf0 | cp >> 18));
    buf_push(b, (uint8_t)(0x80 | (cp >> 12 & 0x3f)));
    buf_push(b, (uint8_t)(0x80 | (cp >> 6 & 0x3f)));
    buf_push(b, (uint8_t)(0x80 | (cp & 0x3f)));
  }
}

/* The length of the well-formed UTF-8 sequence at `p` (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const uint8_t *p, const uint8_t *end) {
  uint8_t c = p[0];
  size_t n;
  uint32_t cp, min;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if ((size_t)(end - p) < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/* Parses a string at ps->p (the opening quote) into `out`, decoded and
 * NUL-terminated (the NUL not counted in out->len). */
static bool parse_string(parser *ps, buf *out) {
  ps->p++; /* the opening quote */
  for (;;) {
    if (ps->p >= ps->end) return fail_at(ps, "unexpected end in string");
    uint8_t c = *ps->p;
    if (c == '"') {
      ps->p++;
      break;
    }
    if (c < 0x20) return fail_at(ps, "control byte 0x%02x in string", c);
    if (c >= 0x80) {
      size_t n = utf8_len(ps->p, ps->end);
      if (n == 0) return fail_at(ps, "invalid UTF-8 in string");
      buf_append(out, ps->p, n);
      ps->p += n;
      continue;
    }
    if (c != '\\') {
      buf_push(out, c);
      ps->p++;
      continue;
    }
    ps->p++;
    if (ps->p >= ps->end) return fail_at(ps, "unexpected end in escape");
    c = *ps->p++;
    switch (c) {
      case '"': buf_push(out, '"'); break;
      case '\\': buf_push(out, '\\'); break;
      case '/': buf_push(out, '/'); break;
      case 'b': buf_push(out, '\b'); break;
      case 'f': buf_push(out, '\f'); break;
      case 'n': buf_push(out, '\n'); break;
      case 'r': buf_push(out, '\r'); break;
      case 't': buf_push(out, '\t'); break;
      case 'u': {
        uint32_t cp;
        if (!hex4(ps, &cp)) return false;
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return fail_at(ps, "lone low surrogate \\u%04x", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t lo;
          if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
            return fail_at(ps, "high surrogate \\u%04x without its pair", cp);
          ps->p += 2;
          if (!hex4(ps, &lo)) return false;
          if (lo < 0xdc00 || lo > 0xdfff)
            return fail_at(ps, "high surrogate \\u%04x without its pair", cp);
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        put_utf8(out, cp);
        break;
      }
      default:
        ps->p--;
        return fail_at(ps, "bad escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
    }
  }
  buf_push(out, 0);
  out->len--;
  return true;
}

static mj_val *string_val(parser *ps) {
  buf b = BUF_INIT;
  if (!parse_string(ps, &b)) {
    buf_free(&b);
    return NULL;
  }
  mj_val *v = new_val(MJ_STRING);
  v->len = b.len;
  v->str = (char *)b.data; /* parse_string NUL-terminated it */
  return v;
}

static bool is_digit(const parser *ps) {
  return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static mj_val *number_val(parser *ps) {
  const uint8_t *s = ps->p;
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  if (!is_digit(ps)) {
    fail_at(ps, "bad number: digit expected");
    return NULL;
  }
  if (*ps->p == '0') {
    ps->p++;
    if (is_digit(ps)) {
      fail_at(ps, "bad number: leading zero");
      return NULL;
    }
  } else {
    while (is_digit(ps)) ps->p++;
  }
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    if (!is_digit(ps)) {
      fail_at(ps, "bad number: digit expected after '.'");
      return NULL;
    }
    while (is_digit(ps)) ps->p++;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    if (!is_digit(ps)) {
      fail_at(ps, "bad number: digit expected in exponent");
      return NULL;
    }
    while (is_digit(ps)) ps->p++;
  }
  /* The grammar above is a subset of what strtod reads, so strtod consumes
   * exactly these bytes; a copy gives it the NUL it needs (copying only
   * the number: it may end the text, with no byte after it to read). */
  size_t n = (size_t)(ps->p - s);
  char *copy = xmalloc(n + 1);
  memcpy(copy, s, n);
  copy[n] = '\0';
  double d = strtod(copy, NULL);
  free(copy);
  if (!isfinite(d)) {
    fail_at(ps, "number out of range");
    return NULL;
  }
  mj_val *v = new_val(MJ_NUMBER);
  v->number = d;
  return v;
}

/* Appends `item` (and `name` for objects) to container `v`. */
static void add_item(mj_val *v, size_t *cap, char *name, mj_val *item) {
  if (v->len == *cap) {
    *cap = *cap ? *cap * 2 : 4;
    v->items = xrealloc(v->items, *cap * sizeof(*v->items));
    if (v->type == MJ_OBJECT)
      v->names = xrealloc(v->names, *cap * sizeof(*v->names));
  }
  if (v->type == MJ_OBJECT) v->names[v->len] = name;
  v->items[v->len++] = item;
}

static mj_val *array_val(parser *ps) {
  ps->p++; /* '[' */
  mj_val *v = new_val(MJ_ARRAY);
  size_t cap = 0;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
    return v;
  }
  for (;;) {
    mj_val *item = parse_value(ps);
    if (item == NULL) break;
    add_item(v, &cap, NULL, item);
    skip_ws(ps);
    if (ps->p >= ps->end) {
      fail_at(ps, "unexpected end in array");
      break;
    }
    if (*ps->p == ']') {
      ps->p++;
      return v;
    }
    if (*ps->p != ',') {
      fail_at(ps, "',' or ']' expected in array");
      break;
    }
    ps->p++;
  }
  mj_free(v);
  return NULL;
}

static mj_val *object_val(parser *ps) {
  ps->p++; /* '{' */
  mj_val *v = new_val(MJ_OBJECT);
  size_t cap = 0;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
    return v;
  }
  for (;;) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"') {
      fail_at(ps, "member name expected in object");
      break;
    }
    const uint8_t *name_at = ps->p;
    buf name = BUF_INIT;
    if (!parse_string(ps, &name)) {
      buf_free(&name);
      break;
    }
    char *nm = (char *)name.data; /* parse_string NUL-terminated it */
    bool has_nul = strlen(nm) != name.len, repeated = mj_get(v, nm) != NULL;
    if (has_nul || repeated || v->len == MJ_MAX_MEMBERS) {
      ps->p = name_at;
      if (has_nul) fail_at(ps, "member name holds a NUL byte");
      else if (repeated) fail_at(ps, "repeated member name");
      else fail_at(ps, "object of more than %d members", MJ_MAX_MEMBERS);
      free(nm);
      break;
    }
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':') {
      free(nm);
      fail_at(ps, "':' expected after member name");
      break;
    }
    ps->p++;
    mj_val *item = parse_value(ps);
    if (item == NULL) {
      free(nm);
      break;
    }
    add_item(v, &cap, nm, item);
    skip_ws(ps);
    if (ps->p >= ps->end) {
      fail_at(ps, "unexpected end in object");
      break;
    }
    if (*ps->p == '}') {
      ps->p++;
      return v;
    }
    if (*ps->p != ',') {
      fail_at(ps, "',' or '}' expected in object");
      break;
    }
    ps->p++;
  }
  mj_free(v);
  return NULL;
}

static mj_val *parse_value(parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end) {
    fail_at(ps, "unexpected end: value expected");
    return NULL;
  }
  mj_val *v = NULL;
  switch (*ps->p) {
    case '{':
    case '[':
      if (ps->depth >= MJ_MAX_DEPTH) {
        fail_at(ps, "nested deeper than %d", MJ_MAX_DEPTH);
        return NULL;
      }
      ps->depth++;
      v = *ps->p == '{' ? object_val(ps) : array_val(ps);
      ps->depth--;
      return v;
    case '"': return string_val(ps);
    case 't':
    case 'f': {
      bool truth = *ps->p == 't';
      if (!literal(ps, truth ? "true" : "false")) return NULL;
      v = new_val(MJ_BOOL);
      v->boolean = truth;
      return v;
    }
    case 'n':
      if (!literal(ps, "null")) return NULL;
      return new_val(MJ_NULL);
    default:
      if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
        return number_val(ps);
      fail_at(ps, "unexpected byte 0x%02x: value expected", *ps->p);
      return NULL;
  }
}

mj_val *mj_parse(const char *text, size_t len, char *why, size_t why_len) {
  parser ps = {(const uint8_t *)text, (const uint8_t *)text,
               (const uint8_t *)text + len, 0, why, why_len, false};
  if (why_len > 0) why[0] = '\0';
  if (len > MJ_MAX_TEXT) {
    fail_at(&ps, "text of %zu bytes is over the %zu-byte limit", len,
            MJ_MAX_TEXT);
    return NULL;
  }
  mj_val *v = parse_value(&ps);
  if (v == NULL) return NULL;
  skip_ws(&ps);
  if (ps.p != ps.end) {
    fail_at(&ps, "unexpected bytes after the value");
    mj_free(v);
    return NULL;
  }
  return v;
}

void mj_free(mj_val *v) {
  if (v == NULL) return;
  for (size_t i = 0; (v->type == MJ_ARRAY || v->type == MJ_OBJECT) && i < v->len;
       i++) {
    mj_free(v->items[i]);
    if (v->type == MJ_OBJECT) free(v->names[i]);
  }
  free(v->items);
  free(v->names);
  free(v->str);
  free(v);
}

const mj_val *mj_get(const mj_val *obj, const char *name) {
  if (obj == NULL || obj->type != MJ_OBJECT) return NULL;
  for (size_t i = 0; i < obj->len; i++)
    if (strcmp(obj->names[i], name) == 0) return obj->items[i];
  return NULL;
}

bool mj_u64(const mj_val *v, uint64_t *out) {
  if (v == NULL || v->type != MJ_NUMBER) return false;
  double d = v->number;
  if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return false;
  *out = (uint64_t)d;
  return true;
}

const char *mj_type_name(mj_type t) {
  switch (t) {
    case MJ_NULL: return "null";
    case MJ_BOOL: return "boolean";
    case MJ_NUMBER: return "number";
    case MJ_STRING: return "string";
    case MJ_ARRAY: return "array";
    case MJ_OBJECT: return "object";
  }
  return "unknown";
}
