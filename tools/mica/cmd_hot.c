/* cmd_hot: `mica hot` (see cmd_hot.h).
 *
 * As in mstatus.c, everything is fetched and checked before anything is
 * printed: a failure leaves one line on stderr and nothing on stdout. A
 * field of the wrong type or missing is reported with its JSON path
 * ("tablets[3].ops_per_sec: expected number, got string"). */
#include "tools/mica/cmd_hot.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"
#include "tools/mica/mjson.h"
#include "tools/mica/mstatus.h"

typedef struct reader {
  const char *url;
  FILE *err;
  bool bad; /* a message was written */
} reader;

static void bad(reader *r, const char *at, const char *name, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
static void bad(reader *r, const char *at, const char *name, const char *fmt,
                ...) {
  if (r->bad) return;
  r->bad = true;
  fprintf(r->err, "mica: hot: bad answer from %s: %s%s%s: ", r->url, at,
          at[0] && name[0] ? "." : "", name);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(r->err, fmt, ap);
  va_end(ap);
  fputc('\n', r->err);
}

static const mj_val *field(reader *r, const mj_val *obj, const char *at,
                           const char *name, mj_type t) {
  const mj_val *v = mj_get(obj, name);
  if (v == NULL) bad(r, at, name, "missing");
  else if (v->type != t)
    bad(r, at, name, "expected %s, got %s", mj_type_name(t),
        mj_type_name(v->type));
  return v != NULL && v->type == t ? v : NULL;
}

static double rate(reader *r, const mj_val *obj, const char *at,
                   const char *name) {
  const mj_val *v = field(r, obj, at, name, MJ_NUMBER);
  if (v != NULL && !(v->number >= 0)) {
    bad(r, at, name, "expected a rate >= 0, got %g", v->number);
    return 0;
  }
  return v ? v->number : 0;
}

static uint64_t whole(reader *r, const mj_val *obj, const char *at,
                      const char *name) {
  const mj_val *v = field(r, obj, at, name, MJ_NUMBER);
  uint64_t u = 0;
  if (v != NULL && !mj_u64(v, &u))
    bad(r, at, name, "expected a whole number >= 0, got %g", v->number);
  return u;
}

/* Appends `n` bytes of `s` with every byte outside printable ASCII as
 * \xNN. The master's strings are already in that form (so this changes
 * nothing there); anything else is made safe for a terminal. */
static void put_safe(buf *b, const char *s, size_t n) {
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

static void put_str(reader *r, buf *b, const mj_val *obj, const char *at,
                    const char *name) {
  const mj_val *v = field(r, obj, at, name, MJ_STRING);
  if (v) put_safe(b, v->str, v->len);
}

/* A key {"text": escaped, "b64": ...}; an empty one is `empty` in text
 * output ("-inf" or "+inf", as `mica tablets` shows them). */
static void put_key(reader *r, buf *b, const mj_val *obj, const char *at,
                    const char *name, const char *empty) {
  char path[96];
  snprintf(path, sizeof path, "%s.%s", at, name);
  const mj_val *k = field(r, obj, at, name, MJ_OBJECT);
  const mj_val *t = k ? field(r, k, path, "text", MJ_STRING) : NULL;
  if (t == NULL) return;
  if (t->len == 0 && empty) buf_append(b, empty, strlen(empty));
  else put_safe(b, t->str, t->len);
}

static void putf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void putf(buf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Rows of cells printed as padded columns (text) or joined by tabs. */
typedef struct rows {
  size_t cols, n;
  buf *cells; /* row-major */
} rows;

static buf *add_row(rows *g) {
  g->cells = xrealloc(g->cells, (g->n + 1) * g->cols * sizeof(buf));
  buf *r = &g->cells[g->n++ * g->cols];
  for (size_t i = 0; i < g->cols; i++) r[i] = (buf)BUF_INIT;
  return r;
}

static void print_rows(const rows *g, bool tsv, size_t first, buf *out) {
  size_t w[16] = {0};
  for (size_t r = first; r < g->n; r++)
    for (size_t c = 0; c < g->cols; c++)
      if (g->cells[r * g->cols + c].len > w[c])
        w[c] = g->cells[r * g->cols + c].len;
  for (size_t r = first; r < g->n; r++) {
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

static void free_rows(rows *g) {
  for (size_t i = 0; i < g->n * g->cols; i++) buf_free(&g->cells[i]);
  free(g->cells);
}

static void head(rows *g, const char *const *names) {
  buf *r = add_row(g);
  for (size_t c = 0; c < g->cols; c++)
    buf_append(&r[c], names[c], strlen(names[c]));
}

static void tablets(reader *r, const mj_val *doc, bool tsv, buf *out) {
  const mj_val *list = field(r, doc, "", "tablets", MJ_ARRAY);
  static const char *const names[] = {
      "TABLE", "TABLET", "START", "END", "SERVER", "OPS/S", "READS/S",
      "WRITES/S", "SCANS/S", "READ-B/S", "WRITE-B/S"};
  rows g = {11, 0, NULL};
  head(&g, names);
  for (size_t i = 0; list && i < list->len && !r->bad; i++) {
    char at[32];
    snprintf(at, sizeof at, "tablets[%zu]", i);
    const mj_val *t = list->items[i];
    if (t->type != MJ_OBJECT) {
      bad(r, at, "", "expected object, got %s", mj_type_name(t->type));
      break;
    }
    buf *c = add_row(&g);
    put_str(r, &c[0], t, at, "table");
    putf(&c[1], "%" PRIu64, whole(r, t, at, "id"));
    put_key(r, &c[2], t, at, "start", tsv ? NULL : "-inf");
    put_key(r, &c[3], t, at, "end", tsv ? NULL : "+inf");
    putf(&c[4], "%" PRIu64, whole(r, t, at, "server_id"));
    if (!tsv) {
      buf_push(&c[4], ' ');
      put_str(r, &c[4], t, at, "server_address");
    }
    static const char *const f[] = {
        "ops_per_sec", "reads_per_sec", "writes_per_sec", "scans_per_sec",
        "read_bytes_per_sec", "write_bytes_per_sec"};
    for (int k = 0; k < 6; k++) putf(&c[5 + k], "%.1f", rate(r, t, at, f[k]));
  }
  if (!r->bad) {
    if (tsv) print_rows(&g, true, 1, out);
    else if (g.n > 1) print_rows(&g, false, 0, out);
    else buf_append(out, "no load reported\n", 17);
  }
  free_rows(&g);
}

static void keys(reader *r, const mj_val *doc, bool tsv, buf *out) {
  const mj_val *list = field(r, doc, "", "keys", MJ_ARRAY);
  if (list == NULL || list->len == 0 || tsv) return;
  static const char *const names[] = {"TABLE", "TABLET", "HOT KEY", "KIND",
                                      "OPS/S"};
  rows g = {5, 0, NULL};
  head(&g, names);
  for (size_t i = 0; i < list->len && !r->bad; i++) {
    char at[32];
    snprintf(at, sizeof at, "keys[%zu]", i);
    const mj_val *k = list->items[i];
    if (k->type != MJ_OBJECT) {
      bad(r, at, "", "expected object, got %s", mj_type_name(k->type));
      break;
    }
    buf *c = add_row(&g);
    put_str(r, &c[0], k, at, "table");
    putf(&c[1], "%" PRIu64, whole(r, k, at, "tablet_id"));
    put_key(r, &c[2], k, at, "key", NULL);
    put_str(r, &c[3], k, at, "kind");
    putf(&c[4], "%.1f", rate(r, k, at, "ops_per_sec"));
  }
  if (!r->bad) {
    buf_push(out, '\n');
    print_rows(&g, false, 0, out);
  }
  free_rows(&g);
}

int mhot_run(const mhot_opts *o, FILE *out, FILE *err) {
  char url[600];
  snprintf(url, sizeof url, "%s://%s/api/hot?limit=%u%s%s",
           o->ca ? "https" : "http", o->http,
           o->limit, o->table ? "&table=" : "", o->table ? o->table : "");
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(err, "mica: hot: libcurl cannot start\n");
    return 1;
  }
  buf text = BUF_INIT, res = BUF_INIT;
  char why[CURL_ERROR_SIZE + 400];
  int rc = 0;
  mj_val *doc = NULL;
  if (!mstatus_http_get(url, o->timeout_ms, o->token, o->ca, &text, why,
                        sizeof why)) {
    fprintf(err, "mica: hot: cannot read %s: %s\n", url, why);
    rc = 1;
  } else if ((doc = mj_parse((const char *)text.data, text.len, why,
                             sizeof why)) == NULL) {
    fprintf(err, "mica: hot: bad answer from %s: not JSON: %s\n", url, why);
    rc = 1;
  } else if (doc->type != MJ_OBJECT) {
    fprintf(err, "mica: hot: bad answer from %s: expected an object, got "
            "%s\n", url, mj_type_name(doc->type));
    rc = 1;
  } else if (o->format == MHOT_JSON) {
    buf_append(&res, text.data, text.len);
  } else {
    reader r = {url, err, false};
    tablets(&r, doc, o->format == MHOT_TSV, &res);
    if (!r.bad) keys(&r, doc, o->format == MHOT_TSV, &res);
    rc = r.bad ? 1 : 0;
  }
  if (rc == 0) {
    fwrite(res.data, 1, res.len, out);
    fflush(out);
  }
  mj_free(doc);
  buf_free(&text);
  buf_free(&res);
  curl_global_cleanup();
  return rc;
}
