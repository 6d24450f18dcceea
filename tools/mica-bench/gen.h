/* gen: the random generators of mica-bench, following the algorithms YCSB
 * publishes for its core workloads.
 *
 * - gen_rng: a per-thread xoshiro256** stream seeded through splitmix64.
 * - gen_fnv64: YCSB's key hash, 64-bit FNV-1a over the 8 bytes of the
 *   sequence number (low byte first), made non-negative. Keys are "user"
 *   followed by the decimal hash, so consecutive inserts scatter over the
 *   key space.
 * - gen_zipf: Gray et al.'s zipfian generator ("Quickly generating
 *   billion-record synthetic databases", SIGMOD 1994), as YCSB uses it: item
 *   i (0-based) has weight 1/(i+1)^theta, so item 0 is the most popular. The
 *   item count may grow (inserts); zeta(n) is then extended incrementally.
 * - gen_scrambled: YCSB's scrambled zipfian. A zipfian over a fixed huge
 *   item space (10^10) is drawn and hashed into [0, items), so the popular
 *   items are spread over the key space instead of clustered at the start.
 * - gen_latest: YCSB's skewed-latest: the newest acknowledged record is the
 *   most popular, then the one before it, and so on (zipfian distances back
 *   from the newest).
 * - gen_acked: YCSB's acknowledged counter. Inserts take ids from `next`;
 *   readers only choose ids up to the highest id below which every insert
 *   has been acknowledged, so they never ask for a record still in flight.
 *
 * Thread-safety: gen_rng, gen_zipf, gen_scrambled and gen_latest belong to
 * one thread each. gen_acked is shared by all threads (a mutex guards its
 * window; `next` and `limit` are atomics readable without it). */
#ifndef MICA_TOOLS_BENCH_GEN_H
#define MICA_TOOLS_BENCH_GEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* YCSB's default zipfian constant. */
#define GEN_ZIPF_THETA 0.99

typedef struct gen_rng {
  uint64_t s[4];
} gen_rng;

void gen_rng_seed(gen_rng *r, uint64_t seed);
uint64_t gen_rng_next(gen_rng *r);
/* Uniform in [0, n) (n > 0), without modulo bias worth measuring. */
uint64_t gen_rng_below(gen_rng *r, uint64_t n);
/* Uniform double in [0, 1). */
double gen_rng_double(gen_rng *r);

/* YCSB's FNV-1a hash of a 64-bit value, non-negative as a signed 64-bit. */
uint64_t gen_fnv64(uint64_t v);

/* Writes the YCSB key of record `id` into out (at least GEN_KEY_MAX bytes)
 * and returns its length: "user" + decimal fnv64(id) when `hashed`, else
 * "user" + id zero-padded to 12 digits (ordered keys, for sequential
 * workloads). */
#define GEN_KEY_MAX 32
size_t gen_key(uint64_t id, int hashed, char *out);

/* sum_{i=1..n} 1/i^theta, exact for small n and by the Euler-Maclaurin
 * formula beyond, accurate to ~1e-12 relative. */
double gen_zeta(uint64_t n, double theta);

typedef struct gen_zipf {
  double theta;
  double alpha;     /* 1 / (1 - theta) */
  double zeta2;     /* zeta(2) */
  double zetan;     /* zeta(items) */
  double eta;
  double half_pow;  /* 1 + 0.5^theta: the draw below which item 1 wins */
  uint64_t items;   /* items zetan was computed for */
} gen_zipf;

/* A zipfian over [0, items) with constant theta. `zetan` may be 0 to have
 * it computed, or a precomputed zeta(items, theta) to save the sum. */
void gen_zipf_init(gen_zipf *z, uint64_t items, double theta, double zetan);
/* The next item in [0, items); `items` may exceed the count at init or at
 * the previous call (the zeta sum is extended), never shrink below the
 * init count. */
uint64_t gen_zipf_next(gen_zipf *z, gen_rng *r, uint64_t items);

typedef struct gen_scrambled {
  gen_zipf z;
  uint64_t items;
} gen_scrambled;

/* Scrambled zipfian over [0, items). The zeta of the 10^10-item space is
 * computed once per process and shared. */
void gen_scrambled_init(gen_scrambled *g, uint64_t items);
uint64_t gen_scrambled_next(gen_scrambled *g, gen_rng *r);

typedef struct gen_acked {
  _Atomic uint64_t next;  /* the id the next insert gets */
  _Atomic uint64_t limit; /* every id < limit is acknowledged */
  pthread_mutex_t mu;
  uint8_t *window;        /* guarded by mu: acked flags, ring of GEN_ACK_WINDOW */
} gen_acked;

#define GEN_ACK_WINDOW ((uint64_t)1 << 20)

/* Ids [0, first) are taken as acknowledged (the loaded records). Free with
 * gen_acked_destroy(). */
void gen_acked_init(gen_acked *a, uint64_t first);
void gen_acked_destroy(gen_acked *a);
/* A new id for an insert. */
uint64_t gen_acked_take(gen_acked *a);
/* The insert of `id` has ended (successfully or not: a failed insert must
 * not hold the limit back forever; its later reads then count as misses). */
void gen_acked_done(gen_acked *a, uint64_t id);
/* The number of acknowledged ids: every id < this is readable. */
uint64_t gen_acked_limit(gen_acked *a);

typedef struct gen_latest {
  gen_zipf z;
} gen_latest;

/* `items`: the acknowledged count at the start (>= 1). */
void gen_latest_init(gen_latest *g, uint64_t items, double zetan);
/* An id in [0, limit): limit-1 most likely, then limit-2, ... */
uint64_t gen_latest_next(gen_latest *g, gen_rng *r, uint64_t limit);

#endif
