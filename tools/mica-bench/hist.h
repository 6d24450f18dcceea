/* hist: a latency histogram with fixed relative precision, for mica-bench.
 *
 * Values are microseconds. Below 128 every value has its own bucket; above,
 * each power of two is cut into 64 buckets, so a reported percentile is
 * within 1/64 (1.6%) of the true value, from 1 us to hours, in a fixed
 * 30 KiB table. The maximum, minimum and sum are kept exactly. Each thread
 * records into its own histogram and the report merges them, so recording
 * takes no lock and no atomic.
 *
 * Thread-safety: none; one thread per histogram. */
#ifndef MICA_TOOLS_BENCH_HIST_H
#define MICA_TOOLS_BENCH_HIST_H

#include <stdint.h>

#define HIST_LINEAR 128
#define HIST_SUB 64
#define HIST_BUCKETS (HIST_LINEAR + (64 - 7) * HIST_SUB)

typedef struct hist {
  uint64_t count;
  uint64_t sum;
  uint64_t min;
  uint64_t max;
  uint64_t buckets[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_add(hist *h, uint64_t micros);
/* Adds every value of `from` into `into`. */
void hist_merge(hist *into, const hist *from);
/* The value at percentile p (0 < p <= 100): the midpoint of the bucket
 * holding the ceil(p% * count)-th smallest value, capped at max. 0 for an
 * empty histogram. */
uint64_t hist_percentile(const hist *h, double p);
double hist_mean(const hist *h);

#endif
