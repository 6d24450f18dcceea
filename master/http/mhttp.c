/* mhttp: the master's status page and API over the shared HTTP server
 * (common/httpd.h: connection bounds, timeouts, common headers).
 *
 * Each request is answered on its first callback (no request here has a
 * body), from a snapshot of the core taken for that request alone
 * (ms_snapshot, master/snapshot.h), so the core's mutex is held only for
 * the copy.
 *
 * The URL path reaches us undecoded: percent-decoding happens here, only
 * in the one place a name is taken from the path, so an encoded NUL or
 * slash cannot change the route. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/httpd.h"
#include "master/http/mh_int.h"
#include "master/http/mhttp.h"

/* Longest table name (ms_valid_table_name). */
#define MH_MAX_NAME 128
/* Most events one request may ask for. */
#define MH_MAX_EVENTS 100000

struct mhttp {
  httpd *d;
  ms *core;
  char *cluster;
  char *master_address;
  uint64_t start_us;
  uint64_t (*now_us)(void *ctx);
  void *now_ctx;
  mica_err *(*authorize)(void *ctx, const char *authorization);
  void *authorize_ctx;
};

void mhttp_opts_init(mhttp_opts *o) {
  memset(o, 0, sizeof(*o));
  o->threads = 2;
  o->max_connections = 64;
  o->timeout_s = 10;
}

static uint64_t now_of(mhttp *h) {
  return h->now_us ? h->now_us(h->now_ctx) : ms_now(h->core);
}

/* ---- answers ---- */

static void answer(httpd_req *c, int code, const char *type,
                   const void *body, size_t len, const char *allow) {
  httpd_reply(c, code, type, body, len, allow);
}

static const char kJson[] = "application/json";
static const char kText[] = "text/plain; charset=utf-8";

static void fail(httpd_req *c, int code, bool api, const char *msg,
                 const char *allow) {
  buf b = BUF_INIT;
  if (api) {
    buf_append(&b, "{\"error\":", 9);
    mh_json_str(&b, msg);
    buf_append(&b, "}\n", 2);
  } else {
    buf_append(&b, msg, strlen(msg));
    buf_push(&b, '\n');
  }
  answer(c, code, api ? kJson : kText, b.data, b.len, allow);
  buf_free(&b);
}

static void send_buf(httpd_req *c, const char *type, buf *b) {
  answer(c, 200, type, b->data, b->len, NULL);
  buf_free(b);
}

/* ---- routes ---- */

static int unhex(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Percent-decodes `in` (n bytes) into `out` (cap bytes with the NUL) and
 * checks the result is a table name ([A-Za-z0-9_.-]{1,128}). */
static bool table_name(const char *in, size_t n, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int ch = (unsigned char)in[i];
    if (ch == '%') {
      if (i + 2 >= n) return false;
      int hi = unhex(in[i + 1]), lo = unhex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      ch = hi * 16 + lo;
      i += 2;
    }
    bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
    if (!ok || k + 1 >= cap) return false;
    out[k++] = (char)ch;
  }
  out[k] = '\0';
  return k > 0;
}

static bool parse_limit(const char *s, size_t *out) {
  if (s == NULL) {
    *out = 0;
    return true;
  }
  size_t v = 0;
  if (*s == '\0') return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (size_t)(*s - '0');
    if (v > MH_MAX_EVENTS) return false;
  }
  *out = v;
  return true;
}

enum route {
  R_NONE,
  R_ASSET,
  R_CLUSTER,
  R_SERVERS,
  R_TABLES,
  R_TABLETS,
  R_EVENTS,
  R_BALANCE,
  R_METRICS,
  R_HEALTH
};

static enum route route_of(const char *url, const mh_asset **asset,
                           const char **name, size_t *name_len) {
  for (size_t i = 0; i < mh_n_assets; i++) {
    if (strcmp(url, mh_assets[i].path) == 0) {
      *asset = &mh_assets[i];
      return R_ASSET;
    }
  }
  if (strcmp(url, "/index.html") == 0) {
    for (size_t i = 0; i < mh_n_assets; i++)
      if (strcmp(mh_assets[i].path, "/") == 0) *asset = &mh_assets[i];
    return *asset ? R_ASSET : R_NONE;
  }
  if (strcmp(url, "/api/cluster") == 0) return R_CLUSTER;
  if (strcmp(url, "/api/servers") == 0) return R_SERVERS;
  if (strcmp(url, "/api/tables") == 0) return R_TABLES;
  if (strcmp(url, "/api/events") == 0) return R_EVENTS;
  if (strcmp(url, "/api/balance") == 0) return R_BALANCE;
  if (strcmp(url, "/metrics") == 0) return R_METRICS;
  if (strcmp(url, "/healthz") == 0) return R_HEALTH;
  static const char pre[] = "/api/tables/", suf[] = "/tablets";
  size_t n = strlen(url), np = sizeof(pre) - 1, ns = sizeof(suf) - 1;
  if (n > np + ns && strncmp(url, pre, np) == 0 &&
      strcmp(url + n - ns, suf) == 0) {
    *name = url + np;
    *name_len = n - np - ns;
    return R_TABLETS;
  }
  return R_NONE;
}

static void serve(mhttp *h, httpd_req *c, enum route rt, const char *name,
                  size_t name_len) {
  if (rt == R_HEALTH) {
    answer(c, 200, kText, "ok\n", 3, NULL);
    return;
  }

  char tname[MH_MAX_NAME + 1] = "";
  size_t limit = 0;
  if (rt == R_TABLETS && !table_name(name, name_len, tname, sizeof(tname))) {
    fail(c, 400, true, "invalid table name in the URL", NULL);
    return;
  }
  if (rt == R_EVENTS && !parse_limit(httpd_req_arg(c, "limit"), &limit)) {
    fail(c, 400, true, "limit must be a number up to 100000", NULL);
    return;
  }

  ms_snap s;
  int which = rt == R_TABLETS   ? MS_SNAP_TABLE_TABLETS
              : rt == R_CLUSTER ? MS_SNAP_MOVING_TABLETS
                                : MS_SNAP_NO_TABLETS;
  ms_snapshot(h->core, now_of(h), h->start_us, which, tname, &s);
  mh_ident id = {h->cluster, h->master_address, httpd_address(h->d)};
  buf b = BUF_INIT;
  switch (rt) {
    case R_CLUSTER:
      mh_render_cluster(&s, &id, &b);
      send_buf(c, kJson, &b);
      break;
    case R_SERVERS:
      mh_render_servers(&s, &b);
      send_buf(c, kJson, &b);
      break;
    case R_TABLES:
      mh_render_tables(&s, &b);
      send_buf(c, kJson, &b);
      break;
    case R_TABLETS: {
      const ms_snap_tbl *t = ms_snap_find_tbl(&s, tname);
      if (t == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "no table %s", tname);
        fail(c, 404, true, msg, NULL);
        break;
      }
      mh_render_tablets(&s, t, &b);
      send_buf(c, kJson, &b);
      break;
    }
    case R_EVENTS:
      mh_render_events(&s, limit, &b);
      send_buf(c, kJson, &b);
      break;
    case R_BALANCE:
      mh_render_balance(&s, &b);
      send_buf(c, kJson, &b);
      break;
    default: {
      uint64_t by_class[6];
      httpd_counts(h->d, by_class);
      mh_render_metrics(&s, &id, by_class, &b);
      send_buf(c, "text/plain; version=0.0.4; charset=utf-8", &b);
      break;
    }
  }
  ms_snap_free(&s);
}

static void on_request(void *ctx, httpd_req *c) {
  mhttp *h = ctx;
  const char *url = httpd_req_url(c);
  const mh_asset *asset = NULL;
  const char *name = NULL;
  size_t name_len = 0;
  enum route rt = route_of(url, &asset, &name, &name_len);
  bool api = strncmp(url, "/api/", 5) == 0;
  if (rt == R_NONE) {
    fail(c, 404, api, "not found", NULL);
  } else if (!httpd_req_is_read(c)) {
    fail(c, 405, api, "method not allowed", "GET, HEAD");
  } else if (httpd_req_has_body(c)) {
    fail(c, 413, api, "a request body is not accepted", NULL);
  } else if (rt == R_ASSET) {
    answer(c, 200, asset->content_type, asset->data, asset->len, NULL);
  } else if (api && h->authorize != NULL) {
    mica_err *e = h->authorize(h->authorize_ctx,
                               httpd_req_header(c, "Authorization"));
    if (e != NULL)
      fail(c, err_code(e) == MICA_UNAUTHENTICATED ? 401 : 403, true,
           err_msg(e), NULL);
    else
      serve(h, c, rt, name, name_len);
    err_free(e);
  } else {
    serve(h, c, rt, name, name_len);
  }
}

/* ---- lifecycle ---- */

mica_err *mhttp_start(const mhttp_opts *o, ms *core, mhttp **out) {
  *out = NULL;
  mhttp *h = xcalloc(1, sizeof(*h));
  h->core = core;
  h->cluster = xstrdup(o->cluster_name ? o->cluster_name : "mica");
  h->master_address = xstrdup(o->master_address ? o->master_address : "");
  h->now_us = o->now_us;
  h->now_ctx = o->now_ctx;
  h->authorize = o->authorize;
  h->authorize_ctx = o->authorize_ctx;
  h->start_us = o->start_us ? o->start_us : now_of(h);

  httpd_opts ho;
  httpd_opts_init(&ho);
  ho.listen = o->listen;
  ho.flag = "--http-listen";
  if (o->threads) ho.threads = o->threads;
  if (o->max_connections) ho.max_connections = o->max_connections;
  if (o->timeout_s) ho.timeout_s = o->timeout_s;
  mica_err *err = httpd_start(&ho, on_request, h, &h->d);
  if (err) {
    mhttp_stop(h);
    return err;
  }
  *out = h;
  return NULL;
}

int mhttp_port(const mhttp *h) { return httpd_port(h->d); }

const char *mhttp_address(const mhttp *h) { return httpd_address(h->d); }

void mhttp_stop(mhttp *h) {
  if (h == NULL) return;
  httpd_stop(h->d);
  free(h->cluster);
  free(h->master_address);
  free(h);
}
