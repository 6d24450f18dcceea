/* mcheck: checked reading of the master's JSON answers, and the text
 * output built from them, for the CLI commands that read the HTTP API
 * (`mica status` in mstatus.c, `mica hot` in cmd_hot.c).
 *
 * Each field is read through mcheck_need() and its typed variants, which
 * check presence and type against docs/http-api.md. The first mismatch is
 * reported on the command's error stream with its JSON path
 * ("mica: hot: bad answer from URL: tablets[3].ops_per_sec: expected
 * number, got string"); later reads return harmless defaults (0, "") so
 * that callers read straight through and look at `bad` once at the end.
 *
 * Strings from the master go to the terminal through mcheck_put_safe: the
 * master sends them escaped already, and a foreign or broken server on the
 * port must not reach the terminal with raw bytes.
 *
 * Thread-safety: none needed; each command uses its own mcheck. */
#ifndef MICA_TOOLS_MICA_MCHECK_H
#define MICA_TOOLS_MICA_MCHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/slice.h"
#include "tools/mica/mjson.h"

typedef struct mcheck {
  const char *cmd; /* "status", "hot": the message's "mica: CMD:" */
  const char *url; /* the answer being read */
  FILE *err;
  bool bad; /* a message was written */
} mcheck;

/* Reports the member `name` of the value at JSON path `at` ("" = the
 * top; `name` "" = the value at `at` itself), unless a report was made
 * already: only the first mismatch is told. */
void mcheck_bad(mcheck *k, const char *at, const char *name, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/* The member `name` of `obj` when it has type `t`; otherwise reports it
 * and returns NULL. `obj` may be NULL (an earlier mismatch). */
const mj_val *mcheck_need(mcheck *k, const mj_val *obj, const char *at,
                          const char *name, mj_type t);
/* A string member (its bytes and length), or "" after a report. */
const char *mcheck_str(mcheck *k, const mj_val *obj, const char *at,
                       const char *name, size_t *len);
/* A whole number >= 0, or 0 after a report. */
uint64_t mcheck_u64(mcheck *k, const mj_val *obj, const char *at,
                    const char *name);
/* A rate (a number >= 0), or 0 after a report. */
double mcheck_rate(mcheck *k, const mj_val *obj, const char *at,
                   const char *name);

/* Appends `n` bytes of `s` with every byte outside printable ASCII (and
 * none else) as \xNN. */
void mcheck_put_safe(buf *b, const char *s, size_t n);
/* Appends printf output (at most 127 bytes). */
void mcheck_putf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A text table: rows of `cols` (at most 16) cells. */
typedef struct mgrid {
  size_t cols, rows;
  buf *cells; /* row-major */
} mgrid;

/* A new row of empty cells; valid until the next mgrid_row. */
buf *mgrid_row(mgrid *g);
/* Appends rows `first`.. to `out`, one line each: cells joined by tabs
 * (`tsv`), or padded to their column's widest cell plus two spaces (the
 * last cell unpadded). */
void mgrid_print(const mgrid *g, bool tsv, size_t first, buf *out);
void mgrid_free(mgrid *g);

#endif
