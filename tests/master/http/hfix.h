/* hfix: a master core filled through its real API, for the HTTP tests and
 * the screenshot demo.
 *
 * The core runs for real on a directory; tablet servers are only ids that
 * register, heartbeat with figures the caller chooses, and have every
 * action the core emits succeed (or left pending, to show transitions).
 * Time is the fixture's own clock: it starts at the real monotonic time
 * and moves only with hfix_advance(), so lease ages are exact; the HTTP
 * side reads the same clock through hfix_clock().
 *
 * Thread-safety: the core is thread-safe; hfix_clock() may be called from
 * any thread; everything else from one thread. */
#ifndef MICA_TESTS_HTTP_HFIX_H
#define MICA_TESTS_HTTP_HFIX_H

#include "master/state.h"

#define HFIX_MAX_SERVERS 8

typedef struct hfix {
  ms_options o;
  ms *m;
  uint64_t ids[HFIX_MAX_SERVERS]; /* server ids by slot */
  uint64_t inc[HFIX_MAX_SERVERS];
  int n;
  uint64_t now; /* atomic: read by HTTP threads through hfix_clock() */
} hfix;

/* Figures a server reports for one tablet. */
typedef void (*hfix_stats_fn)(const ms_tablet *t, ms_stats *out, void *ctx);

uint64_t hfix_now(hfix *f);
void hfix_advance(hfix *f, uint64_t us);
/* hfix_now() for mhttp_opts.now_us; ctx is the hfix. */
uint64_t hfix_clock(void *ctx);

/* Opens a core on `dir` with the given lease and margin. Caller closes
 * with hfix_close(). */
mica_err *hfix_open(hfix *f, const char *dir, uint64_t lease_us,
                    uint64_t margin_us);
/* Opens a core with options `o` (data_root included). */
mica_err *hfix_open_with(hfix *f, const ms_options *o);
void hfix_close(hfix *f);

/* Registers a server at `addr`; returns its slot in *slot. */
mica_err *hfix_register(hfix *f, const char *addr, int *slot);

/* Ticks and reports success for the emitted actions, at most `max_done`
 * of them per round (SIZE_MAX: all), until a tick emits nothing or
 * `rounds` rounds passed. Actions not reported stay pending. */
mica_err *hfix_settle(hfix *f, int rounds, size_t max_done);

/* Heartbeat of the server in `slot` with the tablets the core has serving
 * on it, figures from `fn` (NULL: zeros). */
mica_err *hfix_heartbeat(hfix *f, int slot, hfix_stats_fn fn, void *ctx);

/* Splits serving tablet `tablet_id` at `key` as its server would. */
mica_err *hfix_split(hfix *f, uint64_t tablet_id, slice key);

/* The current tablets of `table` (caller frees with ms_tablet_list_free). */
mica_err *hfix_tablets(hfix *f, const char *table, ms_tablet_list *out);

#endif
