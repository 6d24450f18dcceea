/* ts_load: per-tablet request sampling and load-based split decisions
 * (docs/hotspots.md, "Load-based split").
 *
 * Every served tablet has a sampler. The data handlers offer it the key of
 * each read, each written key and each scan's start key (ts_load_note); it
 * keeps a uniform sample of at most TS_LOAD_SAMPLES of them since the
 * tablet became hot (reservoir sampling: the n-th key offered replaces a
 * random slot with probability TS_LOAD_SAMPLES/n). On the request path that
 * is one relaxed atomic increment and one thread-local random number; the
 * sampler's small mutex is taken only for a key that enters the sample,
 * which gets rarer as the window fills (about TS_LOAD_SAMPLES * ln(n/
 * TS_LOAD_SAMPLES) times in n requests). Keys are stored up to
 * TS_LOAD_KEY_MAX bytes (a longer key is sampled by that prefix), so a
 * sampler holds at most TS_LOAD_SAMPLES * TS_LOAD_KEY_MAX key bytes.
 *
 * Once a second the maintenance thread calls ts_load_tick: it measures
 * each tablet's ops/s (keys read + keys written + scans started) and
 * bytes/s from the tablet's counters. A tablet at or above either of the
 * master's thresholds is hot; one that stays hot for the master's window
 * is judged on its sample (ts_load_choose): split at the sampled key that
 * best halves the load, and/or report the keys that carry most of it.
 * Requests to one key always fall on one side of a split, so a load that
 * is one key is reported, never split.
 *
 * Thread-safety: ts_load_note may be called from any thread at once;
 * ts_load_tick and ts_load_report from the maintenance and master threads
 * (each tablet's verdict is guarded by its sampler's mutex);
 * ts_load_configure from the master thread. ts_load_choose is a pure
 * function. */
#ifndef MICA_TSERVER_TS_LOAD_H
#define MICA_TSERVER_TS_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"
#include "proto/wire.h"

/* Keys kept per tablet and window. */
#define TS_LOAD_SAMPLES 128
/* Longest key prefix kept per sample. */
#define TS_LOAD_KEY_MAX 256
/* Fewer samples than this in a window decide nothing. */
#define TS_LOAD_MIN_SAMPLES 32
/* A key with at least this share of the sample is a hot key. */
#define TS_LOAD_HOT_SHARE 0.3
/* A split is proposed only if its busier side keeps at most this share. */
#define TS_LOAD_MAX_SIDE 0.75
/* Hot keys reported per tablet. */
#define TS_LOAD_MAX_HOT 3

enum ts_load_kind { TS_LOAD_READ = 0, TS_LOAD_WRITE = 1, TS_LOAD_SCAN = 2 };
/* "read", "write", "scan"; static. */
const char *ts_load_kind_name(int kind);

typedef struct ts_server ts_server;
typedef struct ts_tab ts_tab;
typedef struct ts_load_tab ts_load_tab;

/* ---- the chooser (pure) ---- */

typedef struct ts_load_sample {
  slice key;
  int kind; /* enum ts_load_kind */
} ts_load_sample;

typedef struct ts_load_hot {
  buf key;
  double share; /* of the samples in range */
  int kind;     /* the kind most of its samples had */
} ts_load_hot;

typedef struct ts_load_verdict {
  bool split;          /* split_key is set */
  buf split_key;       /* strictly inside (start, end) */
  double left_share;   /* of the samples below split_key */
  size_t n_hot;
  ts_load_hot hot[TS_LOAD_MAX_HOT]; /* hottest first */
  size_t used;         /* samples inside the range */
} ts_load_verdict;

/* Judges the samples v[0..n) of the tablet [start, end) (end empty =
 * +infinity): samples outside the range, or empty, are ignored; below
 * TS_LOAD_MIN_SAMPLES nothing is decided. The split key is a sampled key
 * k > start minimizing the larger of the shares below k and at or above
 * k, proposed only when that share is at most TS_LOAD_MAX_SIDE; keys with
 * at least TS_LOAD_HOT_SHARE of the samples are hot. `v` is reordered.
 * Caller frees `out` with ts_load_verdict_free. */
void ts_load_choose(ts_load_sample *v, size_t n, slice start, slice end,
                    ts_load_verdict *out);
void ts_load_verdict_free(ts_load_verdict *vd);

/* ---- the server's samplers ---- */

/* The settings in force (ts_server.load), read without locks. */
typedef struct ts_load_conf {
  atomic_bool on;
  atomic_uint_fast64_t milli_ops; /* ops/s threshold times 1000 */
  atomic_uint_fast64_t bytes;     /* bytes/s threshold */
  atomic_uint_fast64_t window_ms;
} ts_load_conf;

/* The master's settings (LoadSplitConfig); NULL = off. Master thread. */
void ts_load_configure(ts_server *s, const rpc_load_split_config *c);
/* Whether sampling is on (the master says so). */
bool ts_load_enabled(ts_server *s);

ts_load_tab *ts_load_tab_new(void);
void ts_load_tab_free(ts_load_tab *l); /* accepts NULL */

/* Empties the sample, as a cold tick or a verdict does (for benchmarks;
 * the maintenance tick does it itself). */
void ts_load_tab_reset(ts_load_tab *l);

/* Offers one key of a request on `tt` (a held tablet). Empty keys are
 * counted by the tablet's counters but not sampled. */
void ts_load_note(ts_server *s, ts_tab *tt, int kind, slice key);

/* A load split the maintenance thread should propose. */
typedef struct ts_load_split {
  uint64_t tablet_id, range_epoch, assign_epoch;
  buf key;
  double ops_per_sec, left_share;
} ts_load_split;

/* One second of accounting over every serving tablet (maintenance
 * thread). True when a tablet asks to be split: *out is filled (caller
 * frees out->key); at most one per call. */
bool ts_load_tick(ts_server *s, ts_load_split *out);

/* Fills `out` with tablet `tt`'s load for a heartbeat; false when load
 * split is off (nothing filled). Caller frees with ts_load_report_clear. */
bool ts_load_report(ts_server *s, ts_tab *tt, rpc_tablet_load *out);
void ts_load_report_clear(rpc_tablet_load *out);

#endif
