/* httpd: the libmicrohttpd wrapper (see httpd.h).
 *
 * Each request is answered on its first callback: none of these servers
 * accepts a body, so a request that announces one is answered (413 by the
 * handler) and the library closes the connection rather than read it. */
#include "common/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/slice.h"

/* Per-connection memory of libmicrohttpd: bounds the request line and
 * headers. */
#define HTTPD_CONN_MEMORY (32 * 1024)

/* Largest certificate or key file read. */
#define HTTPD_PEM_MAX (1024 * 1024)

/* What identifies one version of a file on disk. */
typedef struct file_stamp {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  bool ok; /* stat succeeded */
} file_stamp;

/* A certificate and key in PEM, NUL-terminated, kept while the daemon that
 * was started with them runs. */
typedef struct pem_pair {
  char *cert, *key;
  size_t key_len;
} pem_pair;

struct httpd {
  struct MHD_Daemon *d;
  httpd_handler_fn fn;
  void *ctx;
  size_t max_url;
  char address[80];
  int port;
  uint64_t by_class[6]; /* atomic adds from the polling threads */

  /* Parameters every daemon of this server is started with. */
  unsigned flags, threads, max_connections, timeout_s;

  /* HTTPS (tls false: none of this is used). d and pem are the serving
   * daemon and its files; old is the quiesced daemon of the previous
   * certificate, stopped once old_stop_ns passes. The watcher thread is the
   * only one that changes d after start; httpd_stop joins it first. */
  bool tls;
  char *cert_file, *key_file;
  file_stamp stamp[2];
  pem_pair pem, old_pem;
  struct MHD_Daemon *old;
  uint64_t old_stop_ns;
  unsigned reload_ms;
  uint64_t loads, load_failures; /* atomic */
  pthread_t watcher;
  bool watching, stopping;
  pthread_mutex_t mu;
  pthread_cond_t cv;
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

/* The last message libmicrohttpd logged on this thread: a failed
 * MHD_start_daemon says why (a certificate GnuTLS cannot parse) only
 * through the logger. */
static __thread char t_last_log[256];

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof(line), fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  /* Kept whole up to the buffer; a longer line is cut, not overrun. */
  size_t keep = n < sizeof(t_last_log) - 1 ? n : sizeof(t_last_log) - 1;
  memcpy(t_last_log, line, keep);
  t_last_log[keep] = '\0';
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

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void stamp_of(const char *path, file_stamp *st) {
  struct stat sb;
  memset(st, 0, sizeof(*st));
  if (stat(path, &sb) != 0) return;
  st->ok = true;
  st->dev = sb.st_dev;
  st->ino = sb.st_ino;
  st->size = sb.st_size;
  st->mtime = sb.st_mtim;
}

static bool stamp_eq(const file_stamp *a, const file_stamp *b) {
  return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino &&
         a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
         a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void pem_free(pem_pair *p) {
  if (p->key) explicit_bzero(p->key, p->key_len);
  free(p->key);
  free(p->cert);
  memset(p, 0, sizeof(*p));
}

/* Reads all of `path` into a NUL-terminated buffer. */
static mica_err *read_pem(const char *what, const char *path, char **out,
                          size_t *len) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "HTTPS %s %s: %s", what, path,
                   strerror(errno));
  char *b = xmalloc(HTTPD_PEM_MAX + 1);
  size_t n = fread(b, 1, HTTPD_PEM_MAX + 1, f);
  bool bad = ferror(f) != 0;
  fclose(f);
  mica_err *e = NULL;
  if (bad)
    e = err_new(MICA_INVALID_ARGUMENT, "HTTPS %s %s: read error", what, path);
  else if (n > HTTPD_PEM_MAX)
    e = err_new(MICA_INVALID_ARGUMENT, "HTTPS %s %s: larger than %d bytes",
                what, path, HTTPD_PEM_MAX);
  else if (n == 0)
    e = err_new(MICA_INVALID_ARGUMENT, "HTTPS %s %s: empty file", what, path);
  if (e) {
    explicit_bzero(b, n < HTTPD_PEM_MAX ? n : HTTPD_PEM_MAX);
    free(b);
    return e;
  }
  b[n] = '\0';
  *out = b;
  if (len) *len = n;
  return NULL;
}

/* Loads the pair into throw-away GnuTLS credentials, as libmicrohttpd
 * will: a pair that does not parse or does not match is refused here with
 * GnuTLS's reason, and never reaches MHD_start_daemon (whose failure path
 * leaks the credentials it allocated). */
static mica_err *check_pair(const httpd *h, const pem_pair *p) {
  /* The certificates alone first: GnuTLS 3.7's set_x509_key_mem2 leaks
   * when the certificate PEM does not decode; list_import2 does not. */
  gnutls_datum_t cd = {(unsigned char *)p->cert, (unsigned)strlen(p->cert)};
  gnutls_x509_crt_t *list = NULL;
  unsigned n = 0;
  int rc = gnutls_x509_crt_list_import2(&list, &n, &cd, GNUTLS_X509_FMT_PEM,
                                        0);
  for (unsigned i = 0; i < n; i++) gnutls_x509_crt_deinit(list[i]);
  gnutls_free(list);
  if (rc < 0 || n == 0)
    return err_new(MICA_INVALID_ARGUMENT, "HTTPS certificate %s: %s",
                   h->cert_file, rc < 0 ? gnutls_strerror(rc)
                                        : "no certificate in it");
  gnutls_certificate_credentials_t cred;
  if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS)
    return err_new(MICA_RESOURCE_EXHAUSTED, "HTTPS: cannot allocate GnuTLS "
                   "credentials");
  gnutls_datum_t kd = {(unsigned char *)p->key, (unsigned)p->key_len};
  rc = gnutls_certificate_set_x509_key_mem2(cred, &cd, &kd,
                                                GNUTLS_X509_FMT_PEM, NULL, 0);
  gnutls_certificate_free_credentials(cred);
  if (rc < 0)
    return err_new(MICA_INVALID_ARGUMENT, "HTTPS certificate %s and key %s: "
                   "%s", h->cert_file, h->key_file, gnutls_strerror(rc));
  return NULL;
}

static mica_err *read_pair(const httpd *h, pem_pair *p) {
  memset(p, 0, sizeof(*p));
  mica_err *e = read_pem("certificate", h->cert_file, &p->cert, NULL);
  if (e == NULL) e = read_pem("key", h->key_file, &p->key, &p->key_len);
  if (e == NULL) e = check_pair(h, p);
  if (e) pem_free(p);
  return e;
}

/* Starts one daemon: binding `sa`, or on the already bound `fd` when sa is
 * NULL; with TLS when pem is not NULL. NULL on failure (t_last_log says
 * why). */
static struct MHD_Daemon *daemon_start(httpd *h, const struct sockaddr *sa,
                                       MHD_socket fd, const pem_pair *pem) {
  struct MHD_OptionItem extra[4];
  int n = 0;
  if (sa)
    extra[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0,
                                         (void *)sa};
  else
    extra[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET,
                                         (intptr_t)fd, NULL};
  if (pem) {
    extra[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
                                         pem->cert};
    extra[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
                                         pem->key};
  }
  extra[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  t_last_log[0] = '\0';
  return MHD_start_daemon(
      h->flags, 0, NULL, NULL, on_request, h,
      MHD_OPTION_ARRAY, extra,
      MHD_OPTION_THREAD_POOL_SIZE, h->threads,
      MHD_OPTION_CONNECTION_LIMIT, h->max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, h->timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_CONN_MEMORY,
      MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_END);
}

/* Stops the quiesced daemon of the previous certificate. */
static void stop_old(httpd *h) {
  if (h->old) MHD_stop_daemon(h->old);
  h->old = NULL;
  pem_free(&h->old_pem);
}

/* One check of the certificate files; reloads when they changed. Runs on
 * the watcher thread. */
static void check_reload(httpd *h) {
  if (h->old && mono_ns() >= h->old_stop_ns) stop_old(h);
  file_stamp st[2];
  stamp_of(h->cert_file, &st[0]);
  stamp_of(h->key_file, &st[1]);
  if (stamp_eq(&st[0], &h->stamp[0]) && stamp_eq(&st[1], &h->stamp[1]))
    return;
  /* Remembered even when the load fails: a broken file is reported once,
   * and tried again when it changes. */
  h->stamp[0] = st[0];
  h->stamp[1] = st[1];
  pem_pair p;
  mica_err *e = read_pair(h, &p);
  if (e) {
    LOG_W("http: certificate reload: %s; still serving the previous "
          "certificate", err_msg(e));
    err_free(e);
    __atomic_fetch_add(&h->load_failures, 1, __ATOMIC_RELAXED);
    return;
  }
  /* The new daemon gets its own descriptor of the listening socket: a
   * daemon that fails to start closes the one it was given. */
  MHD_socket fd = MHD_INVALID_SOCKET;
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
  if (di && di->listen_fd != MHD_INVALID_SOCKET) fd = dup(di->listen_fd);
  struct MHD_Daemon *nd =
      fd == MHD_INVALID_SOCKET ? NULL : daemon_start(h, NULL, fd, &p);
  if (nd == NULL) {
    LOG_W("http: certificate reload from %s and %s failed: the certificate "
          "or key does not parse, or they do not match (%s); still serving "
          "the previous certificate", h->cert_file, h->key_file,
          fd == MHD_INVALID_SOCKET ? strerror(errno) : t_last_log);
    pem_free(&p);
    __atomic_fetch_add(&h->load_failures, 1, __ATOMIC_RELAXED);
    return;
  }
  /* Both daemons now accept on the socket; the old one stops accepting and
   * keeps its connections until it is stopped. */
  stop_old(h);
  /* Quiescing hands back the descriptor the old daemon listened on; the
   * new daemon listens on its duplicate. */
  MHD_socket was = MHD_quiesce_daemon(h->d);
  if (was != MHD_INVALID_SOCKET) close(was);
  h->old = h->d;
  h->old_pem = h->pem;
  h->old_stop_ns = mono_ns() + ((uint64_t)h->timeout_s + 1) * 1000000000u;
  h->d = nd;
  h->pem = p;
  __atomic_fetch_add(&h->loads, 1, __ATOMIC_RELAXED);
  LOG_I("http: certificate reloaded from %s", h->cert_file);
}

static void *watch_main(void *arg) {
  httpd *h = arg;
  pthread_mutex_lock(&h->mu);
  while (!h->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)h->reload_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    if (h->stopping) break;
    pthread_mutex_unlock(&h->mu);
    check_reload(h);
    pthread_mutex_lock(&h->mu);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

mica_err *httpd_start(const httpd_opts *o, httpd_handler_fn fn, void *ctx,
                      httpd **out) {
  *out = NULL;
  const char *listen = o->listen ? o->listen : "127.0.0.1:0";
  const char *flag = o->flag ? o->flag : "http address";
  if ((o->tls_cert_file != NULL) != (o->tls_key_file != NULL))
    return err_new(MICA_INVALID_ARGUMENT,
                   "HTTPS needs both a certificate and a key file");
  if (o->tls_cert_file && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
    return err_new(MICA_NOT_SUPPORTED, "HTTPS on %s: this libmicrohttpd was "
                   "built without TLS support", listen);
  struct addrinfo *ai = NULL;
  mica_err *err = parse_listen(flag, listen, &ai);
  if (err) return err;

  httpd *h = xcalloc(1, sizeof(*h));
  h->fn = fn;
  h->ctx = ctx;
  h->max_url = o->max_url ? o->max_url : 2048;
  h->threads = o->threads ? o->threads : 2;
  h->max_connections = o->max_connections ? o->max_connections : 64;
  h->timeout_s = o->timeout_s ? o->timeout_s : 10;
  h->reload_ms = o->reload_ms ? o->reload_ms : 1000;
  pthread_mutex_init(&h->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->cv, &ca);
  pthread_condattr_destroy(&ca);
  h->flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
             MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) h->flags |= MHD_USE_IPv6;
  if (o->tls_cert_file) {
    /* ITC lets a daemon be quiesced (certificate reload). */
    h->flags |= MHD_USE_TLS | MHD_USE_ITC;
    h->tls = true;
    h->cert_file = xstrdup(o->tls_cert_file);
    h->key_file = xstrdup(o->tls_key_file);
    stamp_of(h->cert_file, &h->stamp[0]);
    stamp_of(h->key_file, &h->stamp[1]);
    err = read_pair(h, &h->pem);
    if (err) {
      freeaddrinfo(ai);
      httpd_stop(h);
      return err;
    }
  }
  h->d = daemon_start(h, ai->ai_addr, MHD_INVALID_SOCKET,
                      h->tls ? &h->pem : NULL);
  char host[INET6_ADDRSTRLEN] = "";
  getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
              NI_NUMERICHOST);
  bool v6 = ai->ai_family == AF_INET6;
  freeaddrinfo(ai);
  if (h->d == NULL) {
    /* Binding comes after the TLS set-up: a failed start with TLS whose
     * log names no socket is the certificate. */
    if (h->tls && t_last_log[0] && strstr(t_last_log, "TLS") != NULL)
      err = err_new(MICA_INVALID_ARGUMENT, "HTTPS on %s: the certificate %s "
                    "and key %s do not load: they do not parse, or do not "
                    "match (%s)", listen, h->cert_file, h->key_file,
                    t_last_log);
    else
      err = err_new(MICA_UNAVAILABLE, "http: cannot listen on %s%s%s",
                    listen, t_last_log[0] ? ": " : "", t_last_log);
    httpd_stop(h);
    return err;
  }
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = di ? (int)di->port : 0;
  snprintf(h->address, sizeof(h->address), v6 ? "[%s]:%d" : "%s:%d", host,
           h->port);
  if (h->tls) {
    h->loads = 1;
    if (pthread_create(&h->watcher, NULL, watch_main, h) != 0) {
      httpd_stop(h);
      return err_new(MICA_INTERNAL, "http: cannot start the certificate "
                     "watcher thread");
    }
    h->watching = true;
  }
  *out = h;
  return NULL;
}

bool httpd_is_tls(const httpd *h) { return h->tls; }

void httpd_tls_loads(const httpd *h, uint64_t *loads, uint64_t *failures) {
  *loads = __atomic_load_n(&h->loads, __ATOMIC_RELAXED);
  *failures = __atomic_load_n(&h->load_failures, __ATOMIC_RELAXED);
}

int httpd_port(const httpd *h) { return h->port; }

const char *httpd_address(const httpd *h) { return h->address; }

void httpd_counts(const httpd *h, uint64_t by_class[6]) {
  for (int i = 0; i < 6; i++)
    by_class[i] = __atomic_load_n(&h->by_class[i], __ATOMIC_RELAXED);
}

void httpd_stop(httpd *h) {
  if (h == NULL) return;
  if (h->watching) {
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->watcher, NULL);
  }
  stop_old(h);
  if (h->d) MHD_stop_daemon(h->d);
  pem_free(&h->pem);
  free(h->cert_file);
  free(h->key_file);
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  free(h);
}
