/* log: one-line diagnostics to stderr.
 *
 * Lines look like `2026-11-21T10:30:00.123Z W tserver: message`. The level
 * threshold comes from MICA_LOG_LEVEL (debug, info, warn, error; default
 * info) read once, or log_set_level(). Each line is written with a single
 * write(2), so lines from many threads and processes do not interleave.
 *
 * Thread-safety: all functions may be called from any thread. */
#ifndef MICA_COMMON_LOG_H
#define MICA_COMMON_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(int level);
int log_get_level(void);
/* Name shown on every line ("master", "tserver 127.0.0.1:7001"); copied. */
void log_set_name(const char *name);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define LOG_D(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define LOG_I(...) log_msg(LOG_INFO, __VA_ARGS__)
#define LOG_W(...) log_msg(LOG_WARN, __VA_ARGS__)
#define LOG_E(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
