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
#include "tools/mica/mcheck.h"
#include "tools/mica/mjson.h"
#include "tools/mica/mstatus.h"

static void put_str(mcheck *r, buf *b, const mj_val *obj, const char *at,
                    const char *name) {
  size_t n;
  const char *v = mcheck_str(r, obj, at, name, &n);
  mcheck_put_safe(b, v, n);
}

/* A key {"text": escaped, "b64": ...}; an empty one is `empty` in text
 * output ("-inf" or "+inf", as `mica tablets` shows them). */
static void put_key(mcheck *r, buf *b, const mj_val *obj, const char *at,
                    const char *name, const char *empty) {
  char path[96];
  snprintf(path, sizeof path, "%s.%s", at, name);
  const mj_val *k = mcheck_need(r, obj, at, name, MJ_OBJECT);
  const mj_val *t = k ? mcheck_need(r, k, path, "text", MJ_STRING) : NULL;
  if (t == NULL) return;
  if (t->len == 0 && empty) buf_append(b, empty, strlen(empty));
  else mcheck_put_safe(b, t->str, t->len);
}

static void head(mgrid *g, const char *const *names) {
  buf *r = mgrid_row(g);
  for (size_t c = 0; c < g->cols; c++)
    buf_append(&r[c], names[c], strlen(names[c]));
}

static void tablets(mcheck *r, const mj_val *doc, bool tsv, buf *out) {
  const mj_val *list = mcheck_need(r, doc, "", "tablets", MJ_ARRAY);
  static const char *const names[] = {
      "TABLE", "TABLET", "START", "END", "SERVER", "OPS/S", "READS/S",
      "WRITES/S", "SCANS/S", "READ-B/S", "WRITE-B/S"};
  mgrid g = {11, 0, NULL};
  head(&g, names);
  for (size_t i = 0; list && i < list->len && !r->bad; i++) {
    char at[32];
    snprintf(at, sizeof at, "tablets[%zu]", i);
    const mj_val *t = list->items[i];
    if (t->type != MJ_OBJECT) {
      mcheck_bad(r, at, "", "expected object, got %s", mj_type_name(t->type));
      break;
    }
    buf *c = mgrid_row(&g);
    put_str(r, &c[0], t, at, "table");
    mcheck_putf(&c[1], "%" PRIu64, mcheck_u64(r, t, at, "id"));
    put_key(r, &c[2], t, at, "start", tsv ? NULL : "-inf");
    put_key(r, &c[3], t, at, "end", tsv ? NULL : "+inf");
    mcheck_putf(&c[4], "%" PRIu64, mcheck_u64(r, t, at, "server_id"));
    if (!tsv) {
      buf_push(&c[4], ' ');
      put_str(r, &c[4], t, at, "server_address");
    }
    static const char *const f[] = {
        "ops_per_sec", "reads_per_sec", "writes_per_sec", "scans_per_sec",
        "read_bytes_per_sec", "write_bytes_per_sec"};
    for (int k = 0; k < 6; k++) mcheck_putf(&c[5 + k], "%.1f", mcheck_rate(r, t, at, f[k]));
  }
  if (!r->bad) {
    if (tsv) mgrid_print(&g, true, 1, out);
    else if (g.rows > 1) mgrid_print(&g, false, 0, out);
    else buf_append(out, "no load reported\n", 17);
  }
  mgrid_free(&g);
}

static void keys(mcheck *r, const mj_val *doc, bool tsv, buf *out) {
  const mj_val *list = mcheck_need(r, doc, "", "keys", MJ_ARRAY);
  if (list == NULL || list->len == 0 || tsv) return;
  static const char *const names[] = {"TABLE", "TABLET", "HOT KEY", "KIND",
                                      "OPS/S"};
  mgrid g = {5, 0, NULL};
  head(&g, names);
  for (size_t i = 0; i < list->len && !r->bad; i++) {
    char at[32];
    snprintf(at, sizeof at, "keys[%zu]", i);
    const mj_val *k = list->items[i];
    if (k->type != MJ_OBJECT) {
      mcheck_bad(r, at, "", "expected object, got %s", mj_type_name(k->type));
      break;
    }
    buf *c = mgrid_row(&g);
    put_str(r, &c[0], k, at, "table");
    mcheck_putf(&c[1], "%" PRIu64, mcheck_u64(r, k, at, "tablet_id"));
    put_key(r, &c[2], k, at, "key", NULL);
    put_str(r, &c[3], k, at, "kind");
    mcheck_putf(&c[4], "%.1f", mcheck_rate(r, k, at, "ops_per_sec"));
  }
  if (!r->bad) {
    buf_push(out, '\n');
    mgrid_print(&g, false, 0, out);
  }
  mgrid_free(&g);
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
    mcheck r = {"hot", url, err, false};
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
