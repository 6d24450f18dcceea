/* mstatus: the body of `mica status`, a cluster summary from the master's
 * JSON API (docs/http-api.md).
 *
 * Fetches /api/cluster, /api/servers and /api/tables with libcurl, each
 * within its own timeout, checks every field it shows for its type with the
 * strict reader of mjson.h, and prints either a compact summary for people
 * or, with `json`, one JSON object {"cluster": ..., "servers": ...,
 * "tables": ...} holding the three answers verbatim. Finding the HTTP
 * address (the master's GetInfo) is the caller's job.
 *
 * Thread-safety: mstatus_run initialises libcurl's global state; call it
 * from one thread while no other thread uses libcurl. */
#ifndef MICA_TOOLS_MICA_MSTATUS_H
#define MICA_TOOLS_MICA_MSTATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/slice.h"

/* The largest answer accepted from one endpoint. */
#define MSTATUS_MAX_BODY ((size_t)32 << 20)

typedef struct mstatus_opts {
  const char *http;   /* the master's HTTP "host:port" */
  bool json;          /* pass the JSON through instead of a summary */
  int64_t timeout_ms; /* per request, connecting included */
  const char *token;  /* sent as a bearer token; NULL = none */
  /* HTTPS trusting this CA file (--ca: a TLS master serves its API over
   * HTTPS); NULL = plain HTTP. */
  const char *ca;
} mstatus_opts;

/* True when `addr` looks like "host:port" or "[v6]:port" with a port in
 * 1..65535 and nothing that would change the meaning of a URL. */
bool mstatus_valid_address(const char *addr);

/* GETs `url` (at most MSTATUS_MAX_BODY bytes, within `timeout_ms`, with
 * `token` as a bearer token unless NULL, trusting the CA bundle `ca`
 * for https URLs unless NULL) into `out` (caller frees with
 * buf_free). False with the reason in `why` unless the answer is a
 * complete 200; the reason quotes the body of a 401, 403 or 404. Needs
 * curl_global_init. */
bool mstatus_http_get(const char *url, int64_t timeout_ms, const char *token,
                      const char *ca, buf *out, char *why, size_t why_len);

/* Fetches the three endpoints and writes the summary or the JSON to `out`.
 * Returns 0; or 1 after writing one line to `err` that names the URL and
 * the reason (unreachable, timeout, a status other than 200, an answer that
 * is not the documented JSON). Nothing is written to `out` on failure. */
int mstatus_run(const mstatus_opts *o, FILE *out, FILE *err);

#endif
