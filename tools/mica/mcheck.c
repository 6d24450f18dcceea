/* mcheck: see mcheck.h. */
#include "tools/mica/mcheck.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void mcheck_bad(mcheck *k, const char *at, const char *name, const char *fmt,
                ...) {
  if (k->bad) return;
  k->bad = true;
  fprintf(k->err, "mica: %s: bad answer from %s: %s%s%s: ", k->cmd, k->url,
          at, at[0] && name[0] ? "." : "", name);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(k->err, fmt, ap);
  va_end(ap);
  fputc('\n', k->err);
}

const mj_val *mcheck_need(mcheck *k, const mj_val *obj, const char *at,
                          const char *name, mj_type t) {
  const mj_val *v = obj ? mj_get(obj, name) : NULL;
  if (v == NULL) {
    mcheck_bad(k, at, name, "missing");
    return NULL;
  }
  if (v->type != t) {
    mcheck_bad(k, at, name, "expected %s, got %s", mj_type_name(t),
               mj_type_name(v->type));
    return NULL;
  }
  return v;
}

const char *mcheck_str(mcheck *k, const mj_val *obj, const char *at,
                       const char *name, size_t *len) {
  const mj_val *v = mcheck_need(k, obj, at, name, MJ_STRING);
  *len = v ? v->len : 0;
  return v ? v->str : "";
}

uint64_t mcheck_u64(mcheck *k, const mj_val *obj, const char *at,
                    const char *name) {
  const mj_val *v = mcheck_need(k, obj, at, name, MJ_NUMBER);
  uint64_t u = 0;
  if (v != NULL && !mj_u64(v, &u))
    mcheck_bad(k, at, name, "expected a whole number >= 0, got %g", v->number);
  return u;
}

double mcheck_rate(mcheck *k, const mj_val *obj, const char *at,
                   const char *name) {
  const mj_val *v = mcheck_need(k, obj, at, name, MJ_NUMBER);
  if (v != NULL && !(v->number >= 0)) {
    mcheck_bad(k, at, name, "expected a rate >= 0, got %g", v->number);
    return 0;
  }
  return v ? v->number : 0;
}

void mcheck_put_safe(buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    if (c >= 0x20 && c < 0x7f) {
      buf_push(b, c);
    } else {
      char hex[5];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      buf_append(b, hex, 4);
    }
  }
}

void mcheck_putf(buf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

buf *mgrid_row(mgrid *g) {
  g->cells = xrealloc(g->cells, (g->rows + 1) * g->cols * sizeof(buf));
  buf *r = &g->cells[g->rows++ * g->cols];
  for (size_t i = 0; i < g->cols; i++) r[i] = (buf)BUF_INIT;
  return r;
}

void mgrid_print(const mgrid *g, bool tsv, size_t first, buf *out) {
  size_t w[16] = {0};
  for (size_t r = first; r < g->rows; r++)
    for (size_t c = 0; c < g->cols; c++)
      if (g->cells[r * g->cols + c].len > w[c])
        w[c] = g->cells[r * g->cols + c].len;
  for (size_t r = first; r < g->rows; r++) {
    for (size_t c = 0; c < g->cols; c++) {
      const buf *cell = &g->cells[r * g->cols + c];
      buf_append(out, cell->data, cell->len);
      if (c + 1 == g->cols) break;
      if (tsv) buf_push(out, '\t');
      else
        for (size_t pad = cell->len; pad < w[c] + 2; pad++) buf_push(out, ' ');
    }
    buf_push(out, '\n');
  }
}

void mgrid_free(mgrid *g) {
  for (size_t i = 0; i < g->rows * g->cols; i++) buf_free(&g->cells[i]);
  free(g->cells);
  g->cells = NULL;
  g->rows = 0;
}
