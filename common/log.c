/* log: formatted diagnostics, one write(2) per line. */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int level = -1;
static char name[64] = "mica";

static int level_from_env(void) {
  const char *v = getenv("MICA_LOG_LEVEL");
  if (v == NULL) return LOG_INFO;
  if (strcasecmp(v, "debug") == 0) return LOG_DEBUG;
  if (strcasecmp(v, "warn") == 0) return LOG_WARN;
  if (strcasecmp(v, "error") == 0) return LOG_ERROR;
  return LOG_INFO;
}

void log_set_level(int l) { atomic_store(&level, l); }

int log_get_level(void) {
  int l = atomic_load(&level);
  if (l < 0) {
    l = level_from_env();
    atomic_store(&level, l);
  }
  return l;
}

void log_set_name(const char *n) { snprintf(name, sizeof(name), "%s", n); }

void log_msg(int l, const char *fmt, ...) {
  if (l < log_get_level()) return;
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof(line),
                   "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c %s: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, "DIWE"[l & 3],
                   name);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof(line) - 2) len = sizeof(line) - 2;
  line[len++] = '\n';
  ssize_t w = write(2, line, len);
  (void)w;
}
