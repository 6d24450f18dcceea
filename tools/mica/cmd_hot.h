/* cmd_hot: the body of `mica hot [TABLE]`, the hottest tablets and keys
 * from the master's JSON API (/api/hot, docs/http-api.md).
 *
 * Fetches /api/hot (with ?table= and ?limit=) through mstatus_http_get,
 * checks every field it shows with the strict reader of mjson.h, and
 * prints a table for people (text), tab-separated rows for scripts (tsv),
 * or the master's answer as it came (json). Keys are printed as the CLI
 * prints them everywhere: printable ASCII as is, every other byte and the
 * backslash as \xNN (the master sends them in exactly that form in "text";
 * any other byte that reaches us is escaped again, so nothing raw reaches
 * the terminal). Finding the HTTP address is the caller's job.
 *
 * Thread-safety: as mstatus_run (libcurl's global state). */
#ifndef MICA_TOOLS_MICA_CMD_HOT_H
#define MICA_TOOLS_MICA_CMD_HOT_H

#include <stdint.h>
#include <stdio.h>

enum { MHOT_TEXT, MHOT_TSV, MHOT_JSON };

typedef struct mhot_opts {
  const char *http;   /* the master's HTTP "host:port" */
  const char *table;  /* NULL = every table */
  unsigned limit;     /* 1..1000 tablets */
  int format;         /* MHOT_* */
  int64_t timeout_ms; /* the request, connecting included */
  const char *token;  /* bearer token; NULL = none */
  const char *ca;     /* CA bundle: HTTPS; NULL = plain HTTP */
} mhot_opts;

/* Fetches the hot list and writes it to `out`. Returns 0; or 1 after one
 * line on `err` naming the URL and the reason (unreachable, a status other
 * than 200 with the master's message for 404 "no table", an answer that is
 * not the documented JSON). Nothing is written to `out` on failure. */
int mhot_run(const mhot_opts *o, FILE *out, FILE *err);

#endif
