/* gen.c: random streams, key names and YCSB's request distributions.
 *
 * The algorithms are the published ones (see gen.h); the code is ours. Two
 * details worth knowing:
 * - The scrambled zipfian needs zeta(10^10, 0.99). YCSB ships that constant
 *   precomputed; we compute it with the Euler-Maclaurin formula, which
 *   reproduces it to about twelve digits in microseconds.
 * - Generators whose item count grows (inserts in workloads D and E) extend
 *   zeta by the new terms only, so a growing count costs a few pow() calls
 *   per insert, not a full recomputation. */
#include "tools/mica-bench/gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/slice.h"

/* ---- random stream ---- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void gen_rng_seed(gen_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gen_rng_next(gen_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t gen_rng_below(gen_rng *r, uint64_t n) {
  /* Lemire's multiply-shift: bias below 2^-64 * n, far under any effect a
   * benchmark could see. */
  return (uint64_t)(((unsigned __int128)gen_rng_next(r) * n) >> 64);
}

double gen_rng_double(gen_rng *r) {
  return (double)(gen_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- keys ---- */

uint64_t gen_fnv64(uint64_t v) {
  const uint64_t offset_basis = 0xCBF29CE484222325ull;
  const uint64_t prime = 1099511628211ull;
  uint64_t h = offset_basis;
  for (int i = 0; i < 8; i++) {
    h ^= v & 0xff;
    h *= prime;
    v >>= 8;
  }
  /* YCSB takes the absolute value of the signed result. */
  int64_t s = (int64_t)h;
  if (s < 0) h = s == INT64_MIN ? (uint64_t)INT64_MAX : (uint64_t)(-s);
  return h;
}

size_t gen_key(uint64_t id, int hashed, char *out) {
  int n = hashed ? snprintf(out, GEN_KEY_MAX, "user%llu", (unsigned long long)gen_fnv64(id))
                 : snprintf(out, GEN_KEY_MAX, "user%012llu", (unsigned long long)id);
  return (size_t)n;
}

/* ---- zipfian ---- */

double gen_zeta(uint64_t n, double theta) {
  const uint64_t exact_below = 10000, m = 1000;
  double sum = 0;
  if (n <= exact_below) {
    for (uint64_t i = 1; i <= n; i++) sum += pow((double)i, -theta);
    return sum;
  }
  /* sum_{i<m} exactly, then the rest as integral + endpoint corrections. */
  for (uint64_t i = 1; i < m; i++) sum += pow((double)i, -theta);
  double a = (double)m, b = (double)n, s = theta;
  double integral = (pow(b, 1 - s) - pow(a, 1 - s)) / (1 - s);
  double ends = (pow(a, -s) + pow(b, -s)) / 2;
  double d1 = (-s * pow(b, -s - 1) + s * pow(a, -s - 1)) / 12;
  double d3 = -(-s * (s + 1) * (s + 2) * pow(b, -s - 3) +
                s * (s + 1) * (s + 2) * pow(a, -s - 3)) / 720;
  return sum + integral + ends + d1 + d3;
}

static void zipf_set_eta(gen_zipf *z) {
  z->eta = (1 - pow(2.0 / (double)z->items, 1 - z->theta)) / (1 - z->zeta2 / z->zetan);
}

void gen_zipf_init(gen_zipf *z, uint64_t items, double theta, double zetan) {
  if (items < 1) items = 1;
  z->theta = theta;
  z->alpha = 1 / (1 - theta);
  z->zeta2 = gen_zeta(2, theta);
  z->zetan = zetan > 0 ? zetan : gen_zeta(items, theta);
  z->items = items;
  z->half_pow = 1 + pow(0.5, theta);
  zipf_set_eta(z);
}

uint64_t gen_zipf_next(gen_zipf *z, gen_rng *r, uint64_t items) {
  if (items > z->items) {
    for (uint64_t i = z->items + 1; i <= items; i++) z->zetan += pow((double)i, -z->theta);
    z->items = items;
    zipf_set_eta(z);
  }
  double u = gen_rng_double(r);
  double uz = u * z->zetan;
  if (uz < 1) return 0;
  if (uz < z->half_pow) return items > 1 ? 1 : 0;
  uint64_t v = (uint64_t)((double)items * pow(z->eta * u - z->eta + 1, z->alpha));
  return v < items ? v : items - 1;
}

/* ---- scrambled zipfian ---- */

#define SCRAMBLED_SPACE 10000000000ull

static double scrambled_zetan;
static pthread_once_t scrambled_once = PTHREAD_ONCE_INIT;

static void scrambled_compute(void) {
  scrambled_zetan = gen_zeta(SCRAMBLED_SPACE, GEN_ZIPF_THETA);
}

void gen_scrambled_init(gen_scrambled *g, uint64_t items) {
  pthread_once(&scrambled_once, scrambled_compute);
  gen_zipf_init(&g->z, SCRAMBLED_SPACE, GEN_ZIPF_THETA, scrambled_zetan);
  g->items = items < 1 ? 1 : items;
}

uint64_t gen_scrambled_next(gen_scrambled *g, gen_rng *r) {
  return gen_fnv64(gen_zipf_next(&g->z, r, SCRAMBLED_SPACE)) % g->items;
}

/* ---- acknowledged counter ---- */

void gen_acked_init(gen_acked *a, uint64_t first) {
  atomic_init(&a->next, first);
  atomic_init(&a->limit, first);
  pthread_mutex_init(&a->mu, NULL);
  a->window = xcalloc(GEN_ACK_WINDOW, 1);
}

void gen_acked_destroy(gen_acked *a) {
  pthread_mutex_destroy(&a->mu);
  free(a->window);
}

uint64_t gen_acked_take(gen_acked *a) {
  return atomic_fetch_add_explicit(&a->next, 1, memory_order_relaxed);
}

void gen_acked_done(gen_acked *a, uint64_t id) {
  pthread_mutex_lock(&a->mu);
  /* An insert more than a window ahead of the limit waits for the stragglers
   * below it; with one insert in flight per thread that never happens unless
   * a thread stalls for a million inserts. */
  while (id >= atomic_load_explicit(&a->limit, memory_order_relaxed) + GEN_ACK_WINDOW) {
    pthread_mutex_unlock(&a->mu);
    env_sleep_micros(env_posix(), 1000);
    pthread_mutex_lock(&a->mu);
  }
  a->window[id % GEN_ACK_WINDOW] = 1;
  uint64_t lim = atomic_load_explicit(&a->limit, memory_order_relaxed);
  while (a->window[lim % GEN_ACK_WINDOW]) {
    a->window[lim % GEN_ACK_WINDOW] = 0;
    lim++;
  }
  atomic_store_explicit(&a->limit, lim, memory_order_release);
  pthread_mutex_unlock(&a->mu);
}

uint64_t gen_acked_limit(gen_acked *a) {
  return atomic_load_explicit(&a->limit, memory_order_acquire);
}

/* ---- skewed latest ---- */

void gen_latest_init(gen_latest *g, uint64_t items, double zetan) {
  gen_zipf_init(&g->z, items, GEN_ZIPF_THETA, zetan);
}

uint64_t gen_latest_next(gen_latest *g, gen_rng *r, uint64_t limit) {
  if (limit < 1) limit = 1;
  uint64_t back = gen_zipf_next(&g->z, r, limit > g->z.items ? limit : g->z.items);
  return back < limit ? limit - 1 - back : 0;
}
