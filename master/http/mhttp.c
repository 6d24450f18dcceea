/* mhttp: the libmicrohttpd server of the master's status page and API.
 *
 * libmicrohttpd runs a small pool of polling threads over non-blocking
 * sockets: a client that sends half a request or reads slowly occupies a
 * connection slot, not a thread, and is dropped after the idle timeout.
 * Each request is answered on its first callback (no request here has a
 * body), from a snapshot of the core taken for that request alone
 * (ms_snapshot, master/snapshot.h), so the core's mutex is held only for
 * the copy.
 *
 * The URL path reaches us undecoded (a pass-through unescape callback):
 * percent-decoding happens here, only in the one place a name is taken
 * from the path, so an encoded NUL or slash cannot change the route. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "master/http/mh_int.h"
#include "master/http/mhttp.h"

/* Longest URL path answered; longer ones get 414. */
#define MH_MAX_URL 2048
/* Per-connection memory of libmicrohttpd: bounds the request line and
 * headers (beyond it the library answers 414/431 itself). */
#define MH_CONN_MEMORY (32 * 1024)
/* Longest table name (ms_valid_table_name). */
#define MH_MAX_NAME 128
/* Most events one request may ask for. */
#define MH_MAX_EVENTS 100000

struct mhttp {
  struct MHD_Daemon *d;
  ms *core;
  char *cluster;
  char *master_address;
  char address[80];
  int port;
  uint64_t start_us;
  uint64_t (*now_us)(void *ctx);
  void *now_ctx;
  mh_http_counts counts; /* updated with atomic adds from any thread */
};

void mhttp_opts_init(mhttp_opts *o) {
  memset(o, 0, sizeof(*o));
  o->threads = 2;
  o->max_connections = 64;
  o->timeout_s = 10;
}

static uint64_t now_of(mhttp *h) {
  return h->now_us ? h->now_us(h->now_ctx) : mh_core_now(h->core);
}

/* ---- answers ---- */

static const char kHtmlCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

/* Queues `body` (copied) with status `code` and the headers every answer
 * carries. */
static enum MHD_Result answer(mhttp *h, struct MHD_Connection *c, int code,
                              const char *type, const void *body, size_t len,
                              const char *allow) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (r == NULL) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (strncmp(type, "text/html", 9) == 0) {
    MHD_add_response_header(r, "Content-Security-Policy", kHtmlCsp);
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  }
  if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)code, r);
  MHD_destroy_response(r);
  if (code >= 100 && code < 600)
    __atomic_fetch_add(&h->counts.by_class[code / 100], 1, __ATOMIC_RELAXED);
  return ret;
}

static const char kJson[] = "application/json";
static const char kText[] = "text/plain; charset=utf-8";

static enum MHD_Result fail(mhttp *h, struct MHD_Connection *c, int code,
                            bool api, const char *msg, const char *allow) {
  buf b = BUF_INIT;
  if (api) {
    buf_append(&b, "{\"error\":", 9);
    mh_json_str(&b, msg);
    buf_append(&b, "}\n", 2);
  } else {
    buf_append(&b, msg, strlen(msg));
    buf_push(&b, '\n');
  }
  enum MHD_Result r = answer(h, c, code, api ? kJson : kText, b.data, b.len,
                             allow);
  buf_free(&b);
  return r;
}

static enum MHD_Result send_buf(mhttp *h, struct MHD_Connection *c,
                                const char *type, buf *b) {
  enum MHD_Result r = answer(h, c, 200, type, b->data, b->len, NULL);
  buf_free(b);
  return r;
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

static enum MHD_Result serve(mhttp *h, struct MHD_Connection *c,
                             enum route rt, const char *name,
                             size_t name_len) {
  if (rt == R_HEALTH) return answer(h, c, 200, kText, "ok\n", 3, NULL);

  char tname[MH_MAX_NAME + 1] = "";
  size_t limit = 0;
  if (rt == R_TABLETS &&
      !table_name(name, name_len, tname, sizeof(tname)))
    return fail(h, c, 400, true, "invalid table name in the URL", NULL);
  if (rt == R_EVENTS &&
      !parse_limit(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                               "limit"), &limit))
    return fail(h, c, 400, true, "limit must be a number up to 100000",
                NULL);

  mh_snap s;
  int which = rt == R_TABLETS   ? MH_TABLE_TABLETS
              : rt == R_CLUSTER ? MH_MOVING_TABLETS
                                : MH_NO_TABLETS;
  mh_snap_take(h->core, now_of(h), h->start_us, which, tname, &s);
  mh_ident id = {h->cluster, h->master_address, h->address};
  buf b = BUF_INIT;
  enum MHD_Result r;
  switch (rt) {
    case R_CLUSTER:
      mh_render_cluster(&s, &id, &b);
      r = send_buf(h, c, kJson, &b);
      break;
    case R_SERVERS:
      mh_render_servers(&s, &b);
      r = send_buf(h, c, kJson, &b);
      break;
    case R_TABLES:
      mh_render_tables(&s, &b);
      r = send_buf(h, c, kJson, &b);
      break;
    case R_TABLETS: {
      const mh_tbl *t = mh_snap_tbl(&s, tname);
      if (t == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "no table %s", tname);
        r = fail(h, c, 404, true, msg, NULL);
        break;
      }
      mh_render_tablets(&s, t, &b);
      r = send_buf(h, c, kJson, &b);
      break;
    }
    case R_EVENTS:
      mh_render_events(&s, limit, &b);
      r = send_buf(h, c, kJson, &b);
      break;
    default: {
      mh_http_counts hc;
      for (int i = 0; i < 6; i++)
        hc.by_class[i] =
            __atomic_load_n(&h->counts.by_class[i], __ATOMIC_RELAXED);
      mh_render_metrics(&s, &id, &hc, &b);
      r = send_buf(h, c, "text/plain; version=0.0.4; charset=utf-8", &b);
      break;
    }
  }
  mh_snap_free(&s);
  return r;
}

static bool has_body(struct MHD_Connection *c) {
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strspn(cl, "0") != strlen(cl)) return true;
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
         NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  mhttp *h = cls;
  /* A request with a body gets its answer at the first callback; the
   * library then closes the connection rather than read the body. */
  *con_cls = h;
  if (strlen(url) > MH_MAX_URL)
    return fail(h, c, 414, false, "URL too long", NULL);
  const mh_asset *asset = NULL;
  const char *name = NULL;
  size_t name_len = 0;
  enum route rt = route_of(url, &asset, &name, &name_len);
  bool api = strncmp(url, "/api/", 5) == 0;
  if (rt == R_NONE) return fail(h, c, 404, api, "not found", NULL);
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return fail(h, c, 405, api, "method not allowed", "GET, HEAD");
  if (has_body(c))
    return fail(h, c, 413, api, "a request body is not accepted", NULL);
  if (rt == R_ASSET)
    return answer(h, c, 200, asset->content_type, asset->data, asset->len,
                  NULL);
  return serve(h, c, rt, name, name_len);
}

/* Keeps the path as sent: routes decode the one part that may be encoded. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof(line), fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  LOG_D("http: %s", line);
}

/* ---- lifecycle ---- */

static mica_err *parse_listen(const char *listen, struct addrinfo **out) {
  const char *colon = strrchr(listen, ':');
  if (colon == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "--http-listen %s: want HOST:PORT",
                   listen);
  char host[256];
  size_t hn = (size_t)(colon - listen);
  const char *hp = listen;
  if (hn >= 2 && listen[0] == '[' && listen[hn - 1] == ']') {
    hp++;
    hn -= 2;
  }
  if (hn >= sizeof(host))
    return err_new(MICA_INVALID_ARGUMENT, "--http-listen %s: host too long",
                   listen);
  memcpy(host, hp, hn);
  host[hn] = '\0';
  const char *port = colon + 1;
  if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
      strlen(port) > 5 || atoi(port) > 65535)
    return err_new(MICA_INVALID_ARGUMENT, "--http-listen %s: bad port",
                   listen);
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int rc = getaddrinfo(hn ? host : NULL, port, &hints, out);
  if (rc != 0)
    return err_new(MICA_INVALID_ARGUMENT, "--http-listen %s: %s", listen,
                   gai_strerror(rc));
  return NULL;
}

mica_err *mhttp_start(const mhttp_opts *o, ms *core, mhttp **out) {
  *out = NULL;
  const char *listen = o->listen ? o->listen : "127.0.0.1:0";
  struct addrinfo *ai = NULL;
  mica_err *err = parse_listen(listen, &ai);
  if (err) return err;

  mhttp *h = xcalloc(1, sizeof(*h));
  h->core = core;
  h->cluster = xstrdup(o->cluster_name ? o->cluster_name : "mica");
  h->master_address = xstrdup(o->master_address ? o->master_address : "");
  h->now_us = o->now_us;
  h->now_ctx = o->now_ctx;
  h->start_us = o->start_us ? o->start_us : now_of(h);

  unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  h->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, h,
      MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads ? o->threads : 2),
      MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)(o->max_connections ? o->max_connections : 64),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_s ? o->timeout_s
                                                             : 10),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MH_CONN_MEMORY,
      MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_END);
  char host[INET6_ADDRSTRLEN] = "";
  getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
              NI_NUMERICHOST);
  bool v6 = ai->ai_family == AF_INET6;
  freeaddrinfo(ai);
  if (h->d == NULL) {
    mhttp_stop(h);
    return err_new(MICA_UNAVAILABLE, "http: cannot listen on %s", listen);
  }
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = di ? (int)di->port : 0;
  snprintf(h->address, sizeof(h->address), v6 ? "[%s]:%d" : "%s:%d", host,
           h->port);
  *out = h;
  return NULL;
}

int mhttp_port(const mhttp *h) { return h->port; }

const char *mhttp_address(const mhttp *h) { return h->address; }

void mhttp_stop(mhttp *h) {
  if (h == NULL) return;
  if (h->d) MHD_stop_daemon(h->d);
  free(h->cluster);
  free(h->master_address);
  free(h);
}
