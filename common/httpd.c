/* httpd: the libmicrohttpd wrapper (see httpd.h).
 *
 * Each request is answered on its first callback: none of these servers
 * accepts a body, so a request that announces one is answered (413 by the
 * handler) and the library closes the connection rather than read it. */
#include "common/httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/slice.h"

/* Per-connection memory of libmicrohttpd: bounds the request line and
 * headers. */
#define HTTPD_CONN_MEMORY (32 * 1024)

struct httpd {
  struct MHD_Daemon *d;
  httpd_handler_fn fn;
  void *ctx;
  size_t max_url;
  char address[80];
  int port;
  uint64_t by_class[6]; /* atomic adds from the polling threads */
};

struct httpd_req {
  httpd *h;
  struct MHD_Connection *c;
  const char *url, *method;
  bool answered;
  enum MHD_Result result;
};

void httpd_opts_init(httpd_opts *o) {
  memset(o, 0, sizeof(*o));
  o->threads = 2;
  o->max_connections = 64;
  o->timeout_s = 10;
  o->max_url = 2048;
}

static const char kHtmlCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

void httpd_reply(httpd_req *r, int code, const char *type, const void *body,
                 size_t len, const char *allow) {
  if (r->answered) {
    LOG_E("http: %s answered twice; second answer dropped", r->url);
    return;
  }
  r->answered = true;
  r->result = MHD_NO;
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL) return;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  if (strncmp(type, "text/html", 9) == 0) {
    MHD_add_response_header(resp, "Content-Security-Policy", kHtmlCsp);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  }
  if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  if (code == 401)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Basic realm=\"mica\", charset=\"UTF-8\"");
  r->result = MHD_queue_response(r->c, (unsigned)code, resp);
  MHD_destroy_response(resp);
  if (code >= 100 && code < 600)
    __atomic_fetch_add(&r->h->by_class[code / 100], 1, __ATOMIC_RELAXED);
}

const char *httpd_req_url(const httpd_req *r) { return r->url; }
const char *httpd_req_method(const httpd_req *r) { return r->method; }

bool httpd_req_is_read(const httpd_req *r) {
  return strcmp(r->method, MHD_HTTP_METHOD_GET) == 0 ||
         strcmp(r->method, MHD_HTTP_METHOD_HEAD) == 0;
}

bool httpd_req_has_body(const httpd_req *r) {
  const char *cl = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strspn(cl, "0") != strlen(cl)) return true;
  return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
         NULL;
}

const char *httpd_req_arg(const httpd_req *r, const char *name) {
  return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

const char *httpd_req_header(const httpd_req *r, const char *name) {
  return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  httpd *h = cls;
  *con_cls = h;
  httpd_req r = {h, c, url, method, false, MHD_NO};
  if (strlen(url) > h->max_url) {
    static const char msg[] = "URL too long\n";
    httpd_reply(&r, 414, "text/plain; charset=utf-8", msg, sizeof(msg) - 1,
                NULL);
    return r.result;
  }
  h->fn(h->ctx, &r);
  if (!r.answered) {
    static const char msg[] = "no answer\n";
    LOG_E("http: %s %s: the handler gave no answer", method, url);
    httpd_reply(&r, 500, "text/plain; charset=utf-8", msg, sizeof(msg) - 1,
                NULL);
  }
  return r.result;
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

static mica_err *parse_listen(const char *flag, const char *listen,
                              struct addrinfo **out) {
  const char *colon = strrchr(listen, ':');
  if (colon == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "%s %s: want HOST:PORT", flag,
                   listen);
  char host[256];
  size_t hn = (size_t)(colon - listen);
  const char *hp = listen;
  if (hn >= 2 && listen[0] == '[' && listen[hn - 1] == ']') {
    hp++;
    hn -= 2;
  }
  if (hn >= sizeof(host))
    return err_new(MICA_INVALID_ARGUMENT, "%s %s: host too long", flag,
                   listen);
  memcpy(host, hp, hn);
  host[hn] = '\0';
  const char *port = colon + 1;
  if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
      strlen(port) > 5 || atoi(port) > 65535)
    return err_new(MICA_INVALID_ARGUMENT, "%s %s: bad port", flag, listen);
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int rc = getaddrinfo(hn ? host : NULL, port, &hints, out);
  if (rc != 0)
    return err_new(MICA_INVALID_ARGUMENT, "%s %s: %s", flag, listen,
                   gai_strerror(rc));
  return NULL;
}

mica_err *httpd_start(const httpd_opts *o, httpd_handler_fn fn, void *ctx,
                      httpd **out) {
  *out = NULL;
  const char *listen = o->listen ? o->listen : "127.0.0.1:0";
  const char *flag = o->flag ? o->flag : "http address";
  struct addrinfo *ai = NULL;
  mica_err *err = parse_listen(flag, listen, &ai);
  if (err) return err;

  httpd *h = xcalloc(1, sizeof(*h));
  h->fn = fn;
  h->ctx = ctx;
  h->max_url = o->max_url ? o->max_url : 2048;
  unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  h->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, h,
      MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads ? o->threads : 2),
      MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)(o->max_connections ? o->max_connections : 64),
      MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)(o->timeout_s ? o->timeout_s : 10),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_CONN_MEMORY,
      MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_END);
  char host[INET6_ADDRSTRLEN] = "";
  getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
              NI_NUMERICHOST);
  bool v6 = ai->ai_family == AF_INET6;
  freeaddrinfo(ai);
  if (h->d == NULL) {
    httpd_stop(h);
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

int httpd_port(const httpd *h) { return h->port; }

const char *httpd_address(const httpd *h) { return h->address; }

void httpd_counts(const httpd *h, uint64_t by_class[6]) {
  for (int i = 0; i < 6; i++)
    by_class[i] = __atomic_load_n(&h->by_class[i], __ATOMIC_RELAXED);
}

void httpd_stop(httpd *h) {
  if (h == NULL) return;
  if (h->d) MHD_stop_daemon(h->d);
  free(h);
}
