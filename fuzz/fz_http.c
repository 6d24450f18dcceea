/* fz_http: the master's HTTP side (master/http/mhttp.c) over a socket.
 *
 * A live mhttp server runs in the process over a populated master core
 * (master_fill.h), on 127.0.0.1 with a kernel-chosen port. The input is one
 * request, laid out as
 *
 *   byte 0: method (GET, HEAD, POST, or the lower-case "get")
 *   up to the first '\n': the request target (path and query string)
 *   each further line: a header line
 *
 * sent as "METHOD TARGET HTTP/1.1\r\nConnection: close\r\n<lines>\r\n"
 * (see exchange() for how the connection ends).
 * That is the whole path a request takes: libmicrohttpd's request and
 * query-string parsing, the route and table-name decoding (route_of,
 * table_name, parse_limit) and the rendering of every API answer.
 *
 * Oracles besides "never crash": the server never answers 500, and every
 * 200 answer of /api/ is JSON that the CLI's strict reader (mjson)
 * accepts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/master_fill.h"
#include "master/http/mhttp.h"
#include "tools/mica/mjson.h"

/* Largest answer read; /metrics and /api answers of the small core are a
 * few KiB. */
#define MAX_ANSWER (4u << 20)

static ms *g_core;
static mhttp *g_http;
static int g_port;

static void die(const char *what, mica_err *err) {
  fprintf(stderr, "fz_http: %s%s%s\n", what, err ? ": " : "",
          err ? err_msg(err) : "");
  abort();
}

static void die_errno(const char *what) {
  fprintf(stderr, "fz_http: %s: %s\n", what, strerror(errno));
  abort();
}

static void stop(void) {
  mhttp_stop(g_http);
  ms_close(g_core);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  buf root = BUF_INIT;
  ms_options o;
  ms_options_init(&o);
  o.data_root = fz_path(&root, "master-root");
  mica_err *err = ms_open(&o, 1000000, &g_core);
  if (err) die("open the master core", err);
  fzm_populate(g_core, 1000000);
  buf_free(&root);
  mhttp_opts ho;
  mhttp_opts_init(&ho);
  ho.cluster_name = "fuzz";
  ho.master_address = "127.0.0.1:1";
  ho.threads = 1;
  err = mhttp_start(&ho, g_core, &g_http);
  if (err) die("start the HTTP server", err);
  g_port = mhttp_port(g_http);
  atexit(stop);
  return 0;
}

static void oracle_fail(const char *what, const buf *req, const buf *ans) {
  fprintf(stderr, "fz_http: %s\nrequest: %.*s\nanswer: %.*s\n", what,
          (int)req->len, (const char *)req->data,
          (int)(ans->len < 2000 ? ans->len : 2000), (const char *)ans->data);
  abort();
}

/* Sends `req` and reads the answer to EOF into `ans`. The request asks
 * the server to close, so the server closes first and the TIME_WAIT state
 * stays on its side: a client that closed first would leave one TIME_WAIT
 * socket per input and run out of local ports within a minute at these
 * rates. Only when the server says nothing for a second (it still waits
 * for bytes) does the client half-close to make it answer what it has.
 * False when the exchange failed at the socket level (a timeout: the
 * server may drop what it cannot parse, which is not a finding). */
static bool exchange(const buf *req, buf *ans) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die_errno("socket");
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)g_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    die_errno("connect to the HTTP server");
  size_t off = 0;
  while (off < req->len) {
    ssize_t n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
    if (n <= 0) break; /* the server may close early: read what it said */
    off += (size_t)n;
  }
  bool ok = true, half_closed = false;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, half_closed ? 5000 : 1000);
    if (r == 0) {
      if (half_closed) {
        ok = false;
        break;
      }
      shutdown(fd, SHUT_WR);
      half_closed = true;
      continue;
    }
    buf_reserve(ans, 4096);
    ssize_t n = recv(fd, ans->data + ans->len, 4096, 0);
    if (n == 0) break;
    if (n < 0) {
      ok = false;
      break;
    }
    ans->len += (size_t)n;
    if (ans->len > MAX_ANSWER) break;
  }
  close(fd);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const methods[] = {"GET", "HEAD", "POST", "get"};
  const char *method = methods[size > 0 ? data[0] % 4 : 0];
  if (size > 0) {
    data++;
    size--;
  }
  const uint8_t *nl = memchr(data, '\n', size);
  size_t tlen = nl ? (size_t)(nl - data) : size;

  buf req = BUF_INIT, ans = BUF_INIT;
  buf_append(&req, method, strlen(method));
  buf_push(&req, ' ');
  buf_append(&req, data, tlen);
  static const char kTail[] = " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  buf_append(&req, kTail, sizeof(kTail) - 1);
  size_t off = nl ? tlen + 1 : size;
  while (off < size) {
    const uint8_t *e = memchr(data + off, '\n', size - off);
    size_t l = e ? (size_t)(e - (data + off)) : size - off;
    buf_append(&req, data + off, l);
    buf_append(&req, "\r\n", 2);
    off += l + 1;
  }
  buf_append(&req, "\r\n", 2);

  if (exchange(&req, &ans) && ans.len > 0) {
    buf_push(&ans, '\0');
    ans.len--;
    int code = 0;
    if (sscanf((const char *)ans.data, "HTTP/1.%*d %d", &code) == 1 &&
        code == 500)
      oracle_fail("the server answered 500", &req, &ans);
    const char *body = strstr((const char *)ans.data, "\r\n\r\n");
    bool api = tlen >= 5 && memcmp(data, "/api/", 5) == 0;
    if (code == 200 && api && strcmp(method, "GET") == 0 && body) {
      body += 4;
      char why[256];
      size_t blen = ans.len - (size_t)(body - (const char *)ans.data);
      mj_val *v = mj_parse(body, blen, why, sizeof(why));
      if (v == NULL) {
        fprintf(stderr, "fz_http: %s\n", why);
        oracle_fail("an API answer is not valid JSON", &req, &ans);
      }
      mj_free(v);
    }
  }
  buf_free(&req);
  buf_free(&ans);
  return 0;
}
