/* err: a failure with a Mica code and a message that says what went wrong.
 *
 * Functions that can fail return `mica_err *`: NULL means success, anything
 * else is a heap-allocated error that the caller owns and frees with
 * err_free(). The message names the thing at fault ("sst 000012.sst: block
 * checksum mismatch at offset 4096"), so a log line or an RPC answer built
 * from it needs no extra context.
 *
 * Thread-safety: an error is a plain value; distinct errors may be used from
 * different threads. Allocation failure while building an error yields a
 * static "out of memory" error that err_free() ignores. */
#ifndef MICA_COMMON_ERR_H
#define MICA_COMMON_ERR_H

#include <stdarg.h>

#include "mica/status.h"

typedef struct mica_err mica_err;

/* New error with `code` and a printf-style message. Caller frees with
 * err_free(). `code` must not be MICA_OK. */
mica_err *err_new(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
mica_err *err_newv(int code, const char *fmt, va_list ap);

/* Prefixes the message of `e` with "<context>: ", keeping the code, and
 * returns it (possibly a new pointer; `e` is consumed). NULL stays NULL. */
mica_err *err_wrap(mica_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A copy of `e` (NULL for NULL). Caller frees with err_free(). */
mica_err *err_dup(const mica_err *e);

/* MICA_OK for NULL. */
int err_code(const mica_err *e);

/* The message; "ok" for NULL. Valid until `e` is freed. */
const char *err_msg(const mica_err *e);

/* Accepts NULL. */
void err_free(mica_err *e);

/* Frees `e` and returns its code: for callers that only branch on it. */
int err_take_code(mica_err *e);

#endif
