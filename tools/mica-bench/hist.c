/* hist.c: log-linear buckets (see hist.h). Bucket b >= HIST_LINEAR covers
 * values whose highest set bit is e = 7 + (b - HIST_LINEAR) / HIST_SUB, cut
 * by the next six bits. */
#include "tools/mica-bench/hist.h"

#include <math.h>
#include <string.h>

void hist_init(hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

static int bucket_of(uint64_t v) {
  if (v < HIST_LINEAR) return (int)v;
  int e = 63 - __builtin_clzll(v); /* >= 7 */
  int sub = (int)((v >> (e - 6)) & (HIST_SUB - 1));
  return HIST_LINEAR + (e - 7) * HIST_SUB + sub;
}

/* The lowest value of bucket b and its width. */
static void bucket_range(int b, uint64_t *low, uint64_t *width) {
  if (b < HIST_LINEAR) {
    *low = (uint64_t)b;
    *width = 1;
    return;
  }
  int e = 7 + (b - HIST_LINEAR) / HIST_SUB;
  uint64_t sub = (uint64_t)((b - HIST_LINEAR) % HIST_SUB);
  *width = (uint64_t)1 << (e - 6);
  *low = ((uint64_t)1 << e) + sub * *width;
}

void hist_add(hist *h, uint64_t v) {
  h->buckets[bucket_of(v)]++;
  h->count++;
  h->sum += v;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

void hist_merge(hist *into, const hist *from) {
  for (int b = 0; b < HIST_BUCKETS; b++) into->buckets[b] += from->buckets[b];
  into->count += from->count;
  into->sum += from->sum;
  if (from->min < into->min) into->min = from->min;
  if (from->max > into->max) into->max = from->max;
}

uint64_t hist_percentile(const hist *h, double p) {
  if (h->count == 0) return 0;
  uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
  if (rank < 1) rank = 1;
  if (rank >= h->count) return h->max;
  uint64_t seen = 0;
  for (int b = 0; b < HIST_BUCKETS; b++) {
    seen += h->buckets[b];
    if (seen >= rank) {
      uint64_t low, width;
      bucket_range(b, &low, &width);
      uint64_t mid = low + width / 2;
      if (mid < h->min) mid = h->min;
      return mid < h->max ? mid : h->max;
    }
  }
  return h->max;
}

double hist_mean(const hist *h) {
  return h->count ? (double)h->sum / (double)h->count : 0;
}
