/* httpd: a small HTTP server for status pages and metrics, over
 * libmicrohttpd, shared by the master (master/http) and the tablet server
 * (tabletserver/server/ts_http.c).
 *
 * It owns what both need the same way: the listen address ("host:port",
 * "[v6]:port" or ":port"), a small pool of polling threads over
 * non-blocking sockets (a client that sends half a request or reads slowly
 * occupies a connection slot, not a thread, and is dropped after the idle
 * timeout), a bound on open connections, a bound on the memory of one
 * request line and its headers (beyond it libmicrohttpd answers 414/431
 * itself), a 414 for URL paths longer than max_url, the headers every
 * answer carries (Cache-Control: no-store, X-Content-Type-Options:
 * nosniff; a strict Content-Security-Policy on HTML), and a count of
 * answers by status class. The URL path reaches the handler undecoded:
 * a route that takes a name from the path decodes that part itself, so an
 * encoded NUL or slash cannot change the route.
 *
 * The handler routes and answers. It runs on a polling thread, once per
 * request, and must answer exactly once with httpd_reply() before
 * returning (a handler that does not is answered 500); it must not block
 * for long, because other connections on its thread wait meanwhile.
 *
 * HTTPS: with tls_cert_file and tls_key_file set, the server speaks only
 * TLS (libmicrohttpd's GnuTLS support). Both files are read at start (a
 * certificate or key that does not parse, or that do not match, stops the
 * start with INVALID_ARGUMENT naming the files). A watcher thread checks
 * every reload_ms whether either file changed on disk (device, inode, size,
 * modification time); if so it reads them again and starts a second
 * libmicrohttpd daemon with them on the same listening socket, then
 * quiesces the first (it stops accepting; requests on its connections
 * finish) and stops it after the idle timeout. New connections get the new
 * certificate; the address never stops accepting. A pair that does not
 * load is logged and the previous certificate keeps serving; the next
 * change is tried again. docs/security.md ("HTTPS").
 *
 * Thread-safety: httpd_start and httpd_stop are called from one thread;
 * the rest may be called from any thread between them. */
#ifndef MICA_COMMON_HTTPD_H
#define MICA_COMMON_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct httpd httpd;
/* One request; valid only during the handler call. */
typedef struct httpd_req httpd_req;

typedef void (*httpd_handler_fn)(void *ctx, httpd_req *r);

typedef struct httpd_opts {
  const char *listen;       /* NULL = "127.0.0.1:0" (the kernel picks) */
  const char *flag;         /* names the address in errors ("--http-listen") */
  unsigned threads;         /* polling threads (2) */
  unsigned max_connections; /* open connections at once (64) */
  unsigned timeout_s;       /* idle connection closed after this (10) */
  size_t max_url;           /* longer URL paths get 414 (2048) */
  /* HTTPS: PEM certificate (chain) and private key; both or neither.
   * NULL = plain HTTP. */
  const char *tls_cert_file;
  const char *tls_key_file;
  unsigned reload_ms;       /* how often the files are checked (1000) */
} httpd_opts;

/* Fills `o` with the defaults above. */
void httpd_opts_init(httpd_opts *o);

/* Binds o->listen and serves every request with fn(ctx, request).
 * INVALID_ARGUMENT naming the flag for a malformed address, UNAVAILABLE
 * when it cannot be bound. Caller stops with httpd_stop(). */
mica_err *httpd_start(const httpd_opts *o, httpd_handler_fn fn, void *ctx,
                      httpd **out);

/* The bound port (the real one when 0 was asked). */
int httpd_port(const httpd *h);
/* The bound "host:port"; valid until httpd_stop(). */
const char *httpd_address(const httpd *h);

/* True when the server speaks HTTPS. */
bool httpd_is_tls(const httpd *h);
/* Certificate loads since start (1 at start with TLS, +1 per reload that
 * took effect; 0 without TLS), and failed reload attempts. */
void httpd_tls_loads(const httpd *h, uint64_t *loads, uint64_t *failures);

/* Answers sent so far by status class: by_class[1..5] = 1xx..5xx. */
void httpd_counts(const httpd *h, uint64_t by_class[6]);

/* Stops accepting, ends the connections in progress, frees. Accepts NULL. */
void httpd_stop(httpd *h);

/* ---- inside a handler ---- */

const char *httpd_req_url(const httpd_req *r);    /* path, undecoded */
const char *httpd_req_method(const httpd_req *r); /* "GET" */
/* True for GET and HEAD (the only methods these servers answer). */
bool httpd_req_is_read(const httpd_req *r);
/* True when the request announces a body (a non-zero Content-Length or a
 * Transfer-Encoding). */
bool httpd_req_has_body(const httpd_req *r);
/* Query argument `name` (decoded by libmicrohttpd); NULL when absent.
 * Valid during the handler call. */
const char *httpd_req_arg(const httpd_req *r, const char *name);
/* Request header `name` (case-insensitive); NULL when absent. Valid during
 * the handler call. */
const char *httpd_req_header(const httpd_req *r, const char *name);

/* Answers with `code`, content type `type` and `len` bytes of `body`
 * (copied). `allow` (may be NULL) is sent as the Allow header. A 401
 * carries WWW-Authenticate: Basic, so a browser asks for credentials. */
void httpd_reply(httpd_req *r, int code, const char *type, const void *body,
                 size_t len, const char *allow);

#endif
