/* err: error values with a code and a message. See err.h. */
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mica_err {
  int code;
  char msg[]; /* NUL-terminated */
};

/* Returned when even the error cannot be allocated; never freed. */
static struct {
  int code;
  char msg[14];
} oom_err = {MICA_RESOURCE_EXHAUSTED, "out of memory"};
#define OOM ((mica_err *)&oom_err)

const char *mica_code_name(int code) {
  switch (code) {
#define NAME_(name, num, msg) \
  case num:                   \
    return #name;
    MICA_STATUS_LIST(NAME_)
#undef NAME_
  }
  return "UNKNOWN";
}

const char *mica_code_message(int code) {
  switch (code) {
#define MSG_(name, num, msg) \
  case num:                  \
    return msg;
    MICA_STATUS_LIST(MSG_)
#undef MSG_
  }
  return "unknown status code";
}

mica_err *err_newv(int code, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  mica_err *e = malloc(sizeof(*e) + (size_t)n + 1);
  if (e == NULL) return OOM;
  e->code = code == MICA_OK ? MICA_INTERNAL : code;
  vsnprintf(e->msg, (size_t)n + 1, fmt, ap);
  return e;
}

mica_err *err_new(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mica_err *e = err_newv(code, fmt, ap);
  va_end(ap);
  return e;
}

mica_err *err_wrap(mica_err *e, const char *fmt, ...) {
  if (e == NULL || e == OOM) return e;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof(prefix), fmt, ap);
  va_end(ap);
  mica_err *w = err_new(e->code, "%s: %s", prefix, e->msg);
  if (w == OOM) return e;
  free(e);
  return w;
}

mica_err *err_dup(const mica_err *e) {
  if (e == NULL) return NULL;
  return err_new(e->code, "%s", e->msg);
}

int err_code(const mica_err *e) { return e == NULL ? MICA_OK : e->code; }

const char *err_msg(const mica_err *e) { return e == NULL ? "ok" : e->msg; }

void err_free(mica_err *e) {
  if (e != NULL && e != OOM) free(e);
}

int err_take_code(mica_err *e) {
  int c = err_code(e);
  err_free(e);
  return c;
}
