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
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common/httpd.h"
#include "master/http/mh_int.h"
#include "master/http/mhttp.h"

/* Longest table name (ms_valid_table_name). */
#define MH_MAX_NAME 128
/* Most events one request may ask for. */
#define MH_MAX_EVENTS 100000
/* Hot tablets listed by default and at most. */
#define MH_HOT_DEFAULT 20
#define MH_MAX_HOT 1000
/* Heat map cells sent by default and at most (docs/http-api.md): about
 * 50 bytes each, so 1 MB by default; the whole default window (60 buckets
 * of 10,000 tablets) fits under the most. */
#define MH_HEAT_CELLS_DEFAULT 20000
#define MH_MAX_HEAT_CELLS 1000000

struct mhttp {
  httpd *d;
  ms *_Atomic core; /* NULL while a standby (mhttp_activate sets it) */
  char *cluster;
  char *_Atomic master_address;
  uint64_t master_epoch;
  char *old_address; /* replaced by mhttp_activate */
  void (*ha_view)(void *ctx, mzk_view *out);
  void *ha_ctx;
  char *insecure; /* mhttp_opts.insecure, copied */
  bool rpc_tls;
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
  ms *core = atomic_load(&h->core);
  if (h->now_us) return h->now_us(h->now_ctx);
  return core ? ms_now(core) : env_now_micros(env_posix());
}

/* The election's state for one request (NULL without ZooKeeper); `v` is
 * the caller's storage. */
static const mzk_view *ha_of(mhttp *h, mzk_view *v) {
  if (h->ha_view == NULL) return NULL;
  h->ha_view(h->ha_ctx, v);
  return v;
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

/* A ?limit= of at most `max`; absent leaves *out as it is. */
static bool parse_limit(const char *s, size_t max, size_t *out) {
  if (s == NULL) return true;
  size_t v = 0;
  if (*s == '\0') return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (size_t)(*s - '0');
    if (v > max) return false;
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
  R_HOT,
  R_HEATMAP,
  R_BALANCE,
  R_METRICS,
  R_HEALTH,
  R_SNAPSHOTS
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
  if (strcmp(url, "/api/hot") == 0) return R_HOT;
  if (strcmp(url, "/api/heatmap") == 0) return R_HEATMAP;
  if (strcmp(url, "/api/balance") == 0) return R_BALANCE;
  if (strcmp(url, "/api/snapshots") == 0) return R_SNAPSHOTS;
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

/* A table name given as a query argument (libmicrohttpd has decoded it). */
static bool arg_is_table_name(const char *v) {
  size_t n = strlen(v);
  if (n == 0 || n > MH_MAX_NAME) return false;
  for (size_t i = 0; i < n; i++)
    if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
          (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' ||
          v[i] == '-'))
      return false;
  return true;
}

/* /api/hot and /api/heatmap, from a snapshot of the load history. */
static void serve_heat(mhttp *h, httpd_req *c, enum route rt, ms *core) {
  const char *table = httpd_req_arg(c, "table");
  const char *lim = httpd_req_arg(c, "limit");
  size_t limit = rt == R_HOT ? MH_HOT_DEFAULT : MH_HEAT_CELLS_DEFAULT;
  if (table != NULL && !arg_is_table_name(table)) {
    fail(c, 400, true, "table must be a table name ([A-Za-z0-9_.-], 1 to "
         "128 bytes)", NULL);
    return;
  }
  if (rt == R_HEATMAP && table == NULL) {
    fail(c, 400, true, "table is required: /api/heatmap?table=NAME", NULL);
    return;
  }
  if (rt == R_HOT && (!parse_limit(lim, MH_MAX_HOT, &limit) || limit == 0)) {
    fail(c, 400, true, "limit must be a number from 1 to 1000", NULL);
    return;
  }
  if (rt == R_HEATMAP &&
      (!parse_limit(lim, MH_MAX_HEAT_CELLS, &limit) || limit == 0)) {
    fail(c, 400, true, "limit must be a number of cells from 1 to 1000000",
         NULL);
    return;
  }
  ms_heat_snap s;
  if (!ms_heat_snapshot(core, now_of(h), table, rt == R_HOT ? limit : 1,
                        rt == R_HEATMAP, &s)) {
    char msg[200];
    snprintf(msg, sizeof(msg), "no table %s", table);
    fail(c, 404, true, msg, NULL);
    return;
  }
  buf b = BUF_INIT;
  if (rt == R_HOT) {
    /* The hot keys: every hot tablet is in any snapshot (s.hot). */
    ms_snap cs;
    ms_snapshot(core, now_of(h), h->start_us, MS_SNAP_NO_TABLETS, "", &cs);
    mh_render_hot(&s, &cs, table, limit, &b);
    ms_snap_free(&cs);
  } else {
    mh_render_heatmap(&s, table, limit, &b);
  }
  ms_heat_snap_free(&s);
  send_buf(c, kJson, &b);
}

/* A standby's answers: its page, /api/cluster, /metrics; 503 naming the
 * active master for the rest of the API. */
static void serve_standby(mhttp *h, httpd_req *c, enum route rt) {
  mzk_view *v = xcalloc(1, sizeof *v);
  mh_ident id = {h->cluster, atomic_load(&h->master_address),
                 httpd_address(h->d), ha_of(h, v), 0, true, h->rpc_tls,
                 httpd_is_tls(h->d), h->insecure};
  uint64_t up = (now_of(h) - h->start_us) / 1000000;
  buf b = BUF_INIT;
  if (rt == R_CLUSTER) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    mh_render_standby_cluster(&id, up, (uint64_t)ts.tv_sec * 1000 +
                                       (uint64_t)ts.tv_nsec / 1000000, &b);
    send_buf(c, kJson, &b);
  } else if (rt == R_METRICS) {
    uint64_t by_class[6];
    httpd_counts(h->d, by_class);
    mh_render_standby_metrics(&id, up, by_class, &b);
    send_buf(c, "text/plain; version=0.0.4; charset=utf-8", &b);
  } else {
    mh_render_standby_refusal(&id, &b);
    answer(c, 503, kJson, b.data, b.len, NULL);
    buf_free(&b);
  }
  free(v);
}

/* `core`: as loaded once for this request (NULL: a standby), so that the
 * authorization decision and the answer agree even while mhttp_activate
 * runs. */
static void serve(mhttp *h, httpd_req *c, enum route rt, const char *name,
                  size_t name_len, ms *core) {
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
  if (rt == R_EVENTS &&
      !parse_limit(httpd_req_arg(c, "limit"), MH_MAX_EVENTS, &limit)) {
    fail(c, 400, true, "limit must be a number up to 100000", NULL);
    return;
  }

  if (core == NULL) {
    serve_standby(h, c, rt);
    return;
  }
  if (rt == R_HOT || rt == R_HEATMAP) {
    serve_heat(h, c, rt, core);
    return;
  }
  if (rt == R_SNAPSHOTS) {
    buf sb = BUF_INIT;
    mh_render_snapshots(core, &sb);
    send_buf(c, kJson, &sb);
    return;
  }
  ms_snap s;
  int which = rt == R_TABLETS   ? MS_SNAP_TABLE_TABLETS
              : rt == R_CLUSTER ? MS_SNAP_MOVING_TABLETS
                                : MS_SNAP_NO_TABLETS;
  ms_snapshot(core, now_of(h), h->start_us, which, tname, &s);
  mzk_view *v = rt == R_CLUSTER || rt == R_METRICS ? xcalloc(1, sizeof *v)
                                                   : NULL;
  mh_ident id = {h->cluster, atomic_load(&h->master_address),
                 httpd_address(h->d), v ? ha_of(h, v) : NULL,
                 h->master_epoch, false, h->rpc_tls, httpd_is_tls(h->d),
                 h->insecure};
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
  free(v);
}

static void on_request(void *ctx, httpd_req *c) {
  mhttp *h = ctx;
  const char *url = httpd_req_url(c);
  const mh_asset *asset = NULL;
  const char *name = NULL;
  size_t name_len = 0;
  enum route rt = route_of(url, &asset, &name, &name_len);
  bool api = strncmp(url, "/api/", 5) == 0;
  ms *core = atomic_load(&h->core); /* one decision per request */
  if (rt == R_NONE) {
    fail(c, 404, api, "not found", NULL);
  } else if (!httpd_req_is_read(c)) {
    fail(c, 405, api, "method not allowed", "GET, HEAD");
  } else if (httpd_req_has_body(c)) {
    fail(c, 413, api, "a request body is not accepted", NULL);
  } else if (rt == R_ASSET) {
    answer(c, 200, asset->content_type, asset->data, asset->len, NULL);
  } else if (api && core != NULL && h->authorize != NULL) {
    mica_err *e = h->authorize(h->authorize_ctx,
                               httpd_req_header(c, "Authorization"));
    if (e != NULL)
      fail(c, err_code(e) == MICA_UNAUTHENTICATED ? 401 : 403, true,
           err_msg(e), NULL);
    else
      serve(h, c, rt, name, name_len, core);
    err_free(e);
  } else {
    serve(h, c, rt, name, name_len, core);
  }
}

/* ---- lifecycle ---- */

mica_err *mhttp_start(const mhttp_opts *o, ms *core, mhttp **out) {
  *out = NULL;
  mhttp *h = xcalloc(1, sizeof(*h));
  if (core == NULL && o->ha_view == NULL) {
    free(h);
    return err_new(MICA_INVALID_ARGUMENT,
                   "mhttp: a standby's server (no core) needs ha_view");
  }
  atomic_init(&h->core, core);
  h->cluster = xstrdup(o->cluster_name ? o->cluster_name : "mica");
  atomic_init(&h->master_address,
              xstrdup(o->master_address ? o->master_address : ""));
  h->master_epoch = o->master_epoch;
  h->ha_view = o->ha_view;
  h->ha_ctx = o->ha_ctx;
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
  ho.tls_cert_file = o->tls_cert_file;
  ho.tls_key_file = o->tls_key_file;
  h->rpc_tls = o->rpc_tls;
  h->insecure = o->insecure ? xstrdup(o->insecure) : NULL;
  mica_err *err = httpd_start(&ho, on_request, h, &h->d);
  if (err) {
    mhttp_stop(h);
    return err;
  }
  *out = h;
  return NULL;
}

void mhttp_activate(mhttp *h, ms *core, const char *master_address,
                    uint64_t master_epoch,
                    mica_err *(*authorize)(void *ctx, const char *auth),
                    void *authorize_ctx) {
  /* Plain fields first; the release store of `core` publishes them to
   * requests, which read them only after loading a non-NULL core. The old
   * address string is kept until mhttp_stop: a request may still hold it. */
  h->master_epoch = master_epoch;
  h->authorize = authorize;
  h->authorize_ctx = authorize_ctx;
  h->old_address = atomic_exchange(&h->master_address,
                                   xstrdup(master_address ? master_address
                                                          : ""));
  atomic_store(&h->core, core);
}

int mhttp_port(const mhttp *h) { return httpd_port(h->d); }

const char *mhttp_address(const mhttp *h) { return httpd_address(h->d); }

void mhttp_stop(mhttp *h) {
  if (h == NULL) return;
  httpd_stop(h->d);
  free(h->cluster);
  free(atomic_load(&h->master_address));
  free(h->old_address);
  free(h->insecure);
  free(h);
}
