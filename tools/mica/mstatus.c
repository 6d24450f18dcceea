/* mstatus: `mica status` (see mstatus.h).
 *
 * Everything is fetched before anything is printed, so a failure leaves one
 * line on stderr and nothing half-written on stdout. The summary reads each
 * field it shows through mcheck.h, which checks presence and type against
 * docs/http-api.md; the first mismatch is reported with its JSON path
 * ("servers[2].address: expected string, got number") and later look-ups
 * return harmless defaults so the code reads straight through. Strings from
 * the master are printed with every byte outside printable ASCII as \xNN:
 * the master already sends them in that escaped form, and a foreign or
 * broken server on the port must not reach the terminal with raw bytes. */
#include "tools/mica/mstatus.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"
#include "tools/mica/mcheck.h"
#include "tools/mica/mjson.h"

/* ---- HTTP ---- */

typedef struct body {
  buf data;
  bool too_big;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
  body *b = ctx;
  size_t len = size * n;
  if (b->data.len + len > MSTATUS_MAX_BODY) {
    b->too_big = true;
    return 0; /* makes curl stop with CURLE_WRITE_ERROR */
  }
  buf_append(&b->data, p, len);
  return len;
}

bool mstatus_http_get(const char *url, int64_t timeout_ms, const char *token,
                      const char *ca, buf *out, char *why, size_t why_len) {
  CURL *h = curl_easy_init();
  if (h == NULL) {
    snprintf(why, why_len, "libcurl cannot start a request");
    return false;
  }
  body b = {BUF_INIT, false};
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  /* No signals: the default resolver would otherwise use SIGALRM for its
   * timeout. */
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  /* The HTTP address sits beside the RPC address, which the CLI reaches
   * directly; an http_proxy set for the web must not take these requests
   * elsewhere. */
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "mica-cli");
  if (ca != NULL) curl_easy_setopt(h, CURLOPT_CAINFO, ca);
  if (token != NULL) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, token);
  }
  CURLcode rc = curl_easy_perform(h);
  long code = 0;
  bool ok = false;
  if (b.too_big) {
    snprintf(why, why_len, "answer larger than %zu bytes", MSTATUS_MAX_BODY);
  } else if (rc != CURLE_OK) {
    snprintf(why, why_len, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
  } else if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
             code != 200) {
    if ((code == 401 || code == 403 || code == 404) && b.data.len > 0)
      /* The master's refusal names the missing role (--token), its 404
       * what is missing. */
      snprintf(why, why_len, "HTTP status %ld: %.*s", code,
               (int)(b.data.len > 300 ? 300 : b.data.len - 1),
               (const char *)b.data.data);
    else
      snprintf(why, why_len, "HTTP status %ld (expected 200)", code);
  } else {
    ok = true;
  }
  curl_easy_cleanup(h);
  if (ok) *out = b.data;
  else buf_free(&b.data);
  return ok;
}

/* The array `name` of `obj` (its items and count), or none after a
 * report. */
static mj_val **need_array(mcheck *k, const mj_val *obj, const char *name,
                           size_t *n) {
  const mj_val *v = mcheck_need(k, obj, "", name, MJ_ARRAY);
  *n = v ? v->len : 0;
  return v ? v->items : NULL;
}

/* ---- output ---- */

static void put_bytes_human(buf *b, uint64_t v) {
  static const char *unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (v < 1024) {
    mcheck_putf(b, "%" PRIu64 " B", v);
    return;
  }
  double d = (double)v / 1024;
  int u = 0;
  while (d >= 1024 && u < 4) d /= 1024, u++;
  mcheck_putf(b, "%.1f %s", d, unit[u]);
}

static void put_uptime(buf *b, uint64_t s) {
  if (s >= 86400) mcheck_putf(b, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
  else if (s >= 3600) mcheck_putf(b, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
  else if (s >= 60) mcheck_putf(b, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
  else mcheck_putf(b, "%" PRIu64 "s", s);
}

/* ---- the summary ---- */

/* "masters: ..." from /api/cluster's "ha" (docs/http-api.md): the active
 * master, its epoch, the standbys and the ZooKeeper session. A master
 * older than "ha" has none: then nothing is printed. */
static void put_str(buf *out, const char *s) {
  buf_append(out, s, strlen(s));
}

static void summarize_masters(mcheck *k, const mj_val *c, buf *out) {
  if (mj_get(c, "ha") == NULL) return;
  const mj_val *ha = mcheck_need(k, c, "", "ha", MJ_OBJECT);
  if (ha == NULL) return;
  size_t n;
  const char *role = mcheck_str(k, ha, "ha", "role", &n);
  uint64_t epoch = mcheck_u64(k, ha, "ha", "epoch");
  const mj_val *act = mj_get(ha, "active");
  put_str(out, "masters: ");
  if (act == NULL || act->type == MJ_NULL) {
    put_str(out, "no active master");
  } else if ((act = mcheck_need(k, ha, "ha", "active", MJ_OBJECT)) != NULL) {
    put_str(out, strcmp(role, "single") == 0 ? "single " : "active ");
    const char *s = mcheck_str(k, act, "ha.active", "rpc", &n);
    mcheck_put_safe(out, s, n);
    mcheck_putf(out, " (epoch %" PRIu64, epoch);
    s = mcheck_str(k, act, "ha.active", "http", &n);
    if (n > 0) {
      put_str(out, ", http ");
      mcheck_put_safe(out, s, n);
    }
    buf_push(out, ')');
  }
  size_t ns;
  mj_val **sb = NULL;
  const mj_val *sv = mcheck_need(k, ha, "ha", "standbys", MJ_ARRAY);
  ns = sv ? sv->len : 0;
  sb = sv ? sv->items : NULL;
  uint64_t total = mcheck_u64(k, ha, "ha", "standbys_total");
  const mj_val *zk = mj_get(ha, "zookeeper");
  if (zk == NULL || zk->type == MJ_NULL) {
    put_str(out, "; no ZooKeeper, no standbys\n");
    return;
  }
  mcheck_putf(out, "; %" PRIu64 " standby%s", total, total == 1 ? "" : "s");
  for (size_t i = 0; i < ns; i++) {
    char at[40];
    snprintf(at, sizeof at, "ha.standbys[%zu]", i);
    const mj_val *m = sb[i];
    if (m->type != MJ_OBJECT) {
      mcheck_bad(k, at, "", "expected object, got %s", mj_type_name(m->type));
      return;
    }
    put_str(out, i ? ", " : " ");
    const char *s = mcheck_str(k, m, at, "rpc", &n);
    mcheck_put_safe(out, s, n);
  }
  zk = mcheck_need(k, ha, "ha", "zookeeper", MJ_OBJECT);
  const char *st = mcheck_str(k, zk, "ha.zookeeper", "session", &n);
  put_str(out, "; ZooKeeper session ");
  mcheck_put_safe(out, st, n);
  mcheck_putf(out, " (timeout %.1f s)\n",
       mcheck_u64(k, zk, "ha.zookeeper", "session_timeout_ms") / 1000.0);
}

static void summarize_cluster(mcheck *k, const mj_val *c, buf *out) {
  size_t n;
  const char *s;
  buf_append(out, "cluster ", 8);
  s = mcheck_str(k, c, "", "cluster", &n);
  mcheck_put_safe(out, s, n);
  buf_append(out, ": master ", 9);
  s = mcheck_str(k, c, "", "master_address", &n);
  mcheck_put_safe(out, s, n);
  buf_append(out, ", version ", 10);
  s = mcheck_str(k, c, "", "version", &n);
  mcheck_put_safe(out, s, n);
  buf_append(out, ", up ", 5);
  put_uptime(out, mcheck_u64(k, c, "", "uptime_s"));
  buf_push(out, '\n');
  summarize_masters(k, c, out);

  const mj_val *sv = mcheck_need(k, c, "", "servers", MJ_OBJECT);
  const mj_val *tb = mcheck_need(k, c, "", "tablets", MJ_OBJECT);
  mcheck_putf(out, "servers: %" PRIu64 " live, %" PRIu64 " suspect, %" PRIu64 " dead",
       mcheck_u64(k, sv, "servers", "live"), mcheck_u64(k, sv, "servers", "suspect"),
       mcheck_u64(k, sv, "servers", "dead"));
  mcheck_putf(out, "; tables: %" PRIu64, mcheck_u64(k, c, "", "tables"));
  mcheck_putf(out, "; tablets: %" PRIu64 " (%" PRIu64 " in transition); ",
       mcheck_u64(k, tb, "tablets", "current"),
       mcheck_u64(k, tb, "tablets", "in_transition"));
  put_bytes_human(out, mcheck_u64(k, c, "", "bytes"));
  mcheck_putf(out, ", %" PRIu64 " keys\n", mcheck_u64(k, c, "", "keys"));

  mj_val **w = need_array(k, c, "warnings", &n);
  for (size_t i = 0; i < n; i++) {
    char at[32];
    snprintf(at, sizeof at, "warnings[%zu]", i);
    size_t len;
    s = mcheck_str(k, w[i], at, "text", &len);
    buf_append(out, "warning: ", 9);
    mcheck_put_safe(out, s, len);
    buf_push(out, '\n');
  }
}

static void summarize_servers(mcheck *k, const mj_val *root, buf *out) {
  size_t n;
  mj_val **v = need_array(k, root, "servers", &n);
  mgrid g = {7, 0, NULL};
  buf *r = mgrid_row(&g);
  const char *head[] = {"SERVER", "ADDRESS", "STATE", "TABLETS", "BYTES",
                        "READS/S", "WRITES/S"};
  for (size_t c = 0; c < 7; c++) buf_append(&r[c], head[c], strlen(head[c]));
  for (size_t i = 0; i < n; i++) {
    char at[32];
    snprintf(at, sizeof at, "servers[%zu]", i);
    if (v[i]->type != MJ_OBJECT) {
      mcheck_bad(k, at, "", "expected object, got %s", mj_type_name(v[i]->type));
      break;
    }
    size_t len;
    const char *s;
    r = mgrid_row(&g);
    mcheck_putf(&r[0], "%" PRIu64, mcheck_u64(k, v[i], at, "id"));
    s = mcheck_str(k, v[i], at, "address", &len);
    mcheck_put_safe(&r[1], s, len);
    s = mcheck_str(k, v[i], at, "state", &len);
    mcheck_put_safe(&r[2], s, len);
    mcheck_putf(&r[3], "%" PRIu64, mcheck_u64(k, v[i], at, "tablets"));
    put_bytes_human(&r[4], mcheck_u64(k, v[i], at, "bytes"));
    mcheck_putf(&r[5], "%.1f", mcheck_rate(k, v[i], at, "read_rate"));
    mcheck_putf(&r[6], "%.1f", mcheck_rate(k, v[i], at, "write_rate"));
  }
  buf_push(out, '\n');
  if (n > 0) mgrid_print(&g, false, 0, out);
  else buf_append(out, "no tablet servers\n", 18);
  mgrid_free(&g);
}

static void summarize_tables(mcheck *k, const mj_val *root, buf *out) {
  size_t n;
  mj_val **v = need_array(k, root, "tables", &n);
  mgrid g = {4, 0, NULL};
  buf *r = mgrid_row(&g);
  const char *head[] = {"TABLE", "TABLETS", "BYTES", "KEYS"};
  for (size_t c = 0; c < 4; c++) buf_append(&r[c], head[c], strlen(head[c]));
  for (size_t i = 0; i < n; i++) {
    char at[32];
    snprintf(at, sizeof at, "tables[%zu]", i);
    if (v[i]->type != MJ_OBJECT) {
      mcheck_bad(k, at, "", "expected object, got %s", mj_type_name(v[i]->type));
      break;
    }
    size_t len;
    r = mgrid_row(&g);
    const char *s = mcheck_str(k, v[i], at, "name", &len);
    mcheck_put_safe(&r[0], s, len);
    mcheck_putf(&r[1], "%" PRIu64, mcheck_u64(k, v[i], at, "tablets"));
    put_bytes_human(&r[2], mcheck_u64(k, v[i], at, "bytes"));
    mcheck_putf(&r[3], "%" PRIu64, mcheck_u64(k, v[i], at, "keys"));
  }
  buf_push(out, '\n');
  if (n > 0) mgrid_print(&g, false, 0, out);
  else buf_append(out, "no tables\n", 10);
  mgrid_free(&g);
}

/* ---- the command ---- */

bool mstatus_valid_address(const char *a) {
  if (a == NULL || a[0] == '\0') return false;
  const char *colon = strrchr(a, ':');
  if (colon == NULL || colon == a) return false;
  if (a[0] == '[' && colon[-1] != ']') return false;
  for (const char *p = a; p < colon; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c >= 0x7f || strchr("/?#@\\%\"<>", c) != NULL)
      return false;
    if (a[0] != '[' && (c == '[' || c == ']' || c == ':')) return false;
  }
  char *end = NULL;
  if (colon[1] < '0' || colon[1] > '9') return false;
  unsigned long port = strtoul(colon + 1, &end, 10);
  return *end == '\0' && port >= 1 && port <= 65535;
}

enum { EP_CLUSTER, EP_SERVERS, EP_TABLES, EP_N };

static const char *const ep_name[EP_N] = {"cluster", "servers", "tables"};

/* When /api/cluster comes from a standby ("role":"standby"), the HTTP
 * address of the active master it names into `to` (true); a standby that
 * knows no active master is reported (false, *failed set). */
static bool standby_redirect(const char *url, const mj_val *c, char *to,
                             size_t n, FILE *err, bool *failed) {
  const mj_val *role = mj_get(c, "role");
  if (role == NULL || role->type != MJ_STRING ||
      strcmp(role->str, "standby") != 0)
    return false;
  const mj_val *act = mj_get(mj_get(c, "ha"), "active");
  const mj_val *http = mj_get(act, "http");
  if (http == NULL || http->type != MJ_STRING ||
      !mstatus_valid_address(http->str) || strlen(http->str) >= n) {
    fprintf(err, "mica: status: %s is a standby master and names no active "
            "master with an HTTP address (none is active, or ZooKeeper is "
            "unreachable)\n", url);
    *failed = true;
    return false;
  }
  snprintf(to, n, "%s", http->str);
  return true;
}

int mstatus_run(const mstatus_opts *o, FILE *out, FILE *err) {
  char url[EP_N][330];
  char http[300];
  bool followed = false;
  snprintf(http, sizeof http, "%s", o->http);
  buf text[EP_N] = {BUF_INIT, BUF_INIT, BUF_INIT};
  mj_val *doc[EP_N] = {NULL, NULL, NULL};
  int rc = 0;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(err, "mica: status: libcurl cannot start\n");
    return 1;
  }
  for (int i = 0; i < EP_N && rc == 0; i++) {
    snprintf(url[i], sizeof url[i], "%s://%s/api/%s",
             o->ca ? "https" : "http", http, ep_name[i]);
    char why[CURL_ERROR_SIZE + 64];
    if (!mstatus_http_get(url[i], o->timeout_ms, o->token, o->ca, &text[i], why,
                  sizeof why)) {
      fprintf(err, "mica: status: cannot read %s: %s\n", url[i], why);
      rc = 1;
      break;
    }
    doc[i] = mj_parse((const char *)text[i].data, text[i].len, why, sizeof why);
    if (doc[i] == NULL) {
      fprintf(err, "mica: status: bad answer from %s: not JSON: %s\n", url[i],
              why);
      rc = 1;
    } else if (doc[i]->type != MJ_OBJECT) {
      fprintf(err, "mica: status: bad answer from %s: expected an object, "
              "got %s\n", url[i], mj_type_name(doc[i]->type));
      rc = 1;
    } else if (i == EP_CLUSTER) {
      /* A standby has no cluster state: ask the active master it names,
       * once (its answer must not be a standby's again). */
      bool failed = false;
      char to[300];
      if (standby_redirect(url[i], doc[i], to, sizeof to, err, &failed)) {
        if (followed) {
          fprintf(err, "mica: status: %s is a standby too\n", url[i]);
          rc = 1;
          break;
        }
        followed = true;
        snprintf(http, sizeof http, "%s", to);
        mj_free(doc[i]);
        doc[i] = NULL;
        buf_free(&text[i]);
        i = -1; /* again, from the active master */
        continue;
      }
      if (failed) rc = 1;
    }
  }
  buf res = BUF_INIT;
  if (rc == 0 && o->json) {
    /* The answers are whole, strict JSON objects, so placing them side by
     * side as member values gives valid JSON; only trailing whitespace is
     * trimmed. */
    for (int i = 0; i < EP_N; i++) {
      size_t n = text[i].len;
      while (n > 0 && strchr(" \t\r\n", text[i].data[n - 1]) != NULL) n--;
      mcheck_putf(&res, "%s\"%s\": ", i == 0 ? "{" : ",\n ", ep_name[i]);
      buf_append(&res, text[i].data, n);
    }
    buf_append(&res, "}\n", 2);
  } else if (rc == 0) {
    mcheck k[EP_N];
    for (int i = 0; i < EP_N; i++) k[i] = (mcheck){"status", url[i], err, false};
    summarize_cluster(&k[EP_CLUSTER], doc[EP_CLUSTER], &res);
    if (!k[EP_CLUSTER].bad) summarize_servers(&k[EP_SERVERS], doc[EP_SERVERS], &res);
    if (!k[EP_CLUSTER].bad && !k[EP_SERVERS].bad)
      summarize_tables(&k[EP_TABLES], doc[EP_TABLES], &res);
    for (int i = 0; i < EP_N; i++)
      if (k[i].bad) rc = 1;
  }
  if (rc == 0) {
    fwrite(res.data, 1, res.len, out);
    fflush(out);
  }
  buf_free(&res);
  for (int i = 0; i < EP_N; i++) {
    mj_free(doc[i]);
    buf_free(&text[i]);
  }
  curl_global_cleanup();
  return rc;
}
