/* mica-client-bench: what libmica costs on top of the wire, and what a
 * stale routing cache costs in master round trips.
 *
 * It starts a cluster on loopback (one master and --tservers tablet
 * servers, binaries from $MICA_BIN_DIR, through the test cluster helper),
 * then measures:
 *
 * 1. Cache-hit Get: mica_get() through a warm client against the raw RPC
 *    (rpc_unary of TabletServer/Get with a prebuilt request on the same
 *    kind of channel), interleaved in rounds so both see the same machine
 *    load. Reported: median per-op time of each and the median of the
 *    per-round ratios library/raw (goal: overhead under 5%).
 * 2. Stale cache: a warm client's table (--tablets tablets, every route
 *    cached) has every tablet split by another client; then 10,000 random
 *    reads through the warm client. Reported: master lookups they needed
 *    (goal: zero) and routing answers installed from servers.
 *
 * Usage: mica-client-bench [--rounds N] [--ops N] [--tablets N] [--tservers N] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "mica/mica.h"
#include "proto/rpc.h"
#include "tests/harness/cluster.h"

static uint64_t now_ns(void) { return env_now_micros(env_posix()) * 1000; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "mica-client-bench: %s: %s (%s)\n", what, mica_errmsg(), mica_code_name(rc));
  exit(1);
}

#define CHECK(call, what)               \
  do {                                  \
    int rc_ = (call);                   \
    if (rc_ != MICA_OK) die(what, rc_); \
  } while (0)

int main(int argc, char **argv) {
  int rounds = 7, ops = 20000, tablets = 16, tservers = 1;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--ops") == 0) ops = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--tablets") == 0) tablets = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--tservers") == 0) tservers = atoi(argv[++i]);
    else {
      fprintf(stderr,
              "usage: mica-client-bench [--rounds N] [--ops N] [--tablets N] [--tservers N]\n"
              "Starts a loopback cluster (binaries from $MICA_BIN_DIR) and measures\n"
              "cache-hit Get through libmica against the raw RPC, and the master round\n"
              "trips of 10,000 reads after every tablet of a warm client's table split.\n"
              "Example:\n  MICA_BIN_DIR=build/bin mica-client-bench --rounds 7 --ops 20000\n");
      return 2;
    }
  }
  if (rounds < 1 || ops < 1 || tablets < 1 || tablets > 1000 || tservers < 1) {
    fprintf(stderr, "mica-client-bench: bad arguments\n");
    return 2;
  }

  cl_options co;
  cl_options_init(&co);
  co.tservers = tservers;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off", NULL};
  co.master_args = margs;
  cluster *cl = NULL;
  mica_err *e = cl_start(&co, &cl);
  if (e != NULL) {
    fprintf(stderr, "mica-client-bench: cluster: %s\n", err_msg(e));
    return 1;
  }
  mica_client *c = NULL;
  CHECK(mica_open(cl_master_address(cl), NULL, &c), "open");

  /* ---- 1. cache-hit Get: library vs raw RPC ---- */
  CHECK(mica_create_table(c, "hot", NULL, 0), "create hot");
  const char *key = "bench-key", *val = "0123456789abcdef0123456789abcdef";
  CHECK(mica_put(c, "hot", key, strlen(key), val, strlen(val)), "put");
  mica_tablet_info *ti = NULL;
  size_t n = 0;
  CHECK(mica_list_tablets(c, "hot", &ti, &n), "list tablets");
  rpc_channel *ch = NULL;
  e = rpc_channel_new(ti[0].address, NULL, &ch);
  if (e != NULL) {
    fprintf(stderr, "mica-client-bench: channel: %s\n", err_msg(e));
    return 1;
  }
  rpc_tablet_ref ref = {0};
  ref.tablet_id = ti[0].tablet_id;
  ref.range_epoch = ti[0].range_epoch;
  ref.assign_epoch = ti[0].assign_epoch;
  mica_free(ti);
  rpc_get_request req = {0};
  req.tablet = &ref;
  req.key.data = (uint8_t *)key;
  req.key.len = strlen(key);

  double *lib_ns = calloc((size_t)rounds, sizeof(double));
  double *raw_ns = calloc((size_t)rounds, sizeof(double));
  double *ratio = calloc((size_t)rounds, sizeof(double));
  for (int w = 0; w < 2000; w++) { /* warm both paths */
    void *v = NULL;
    size_t vl;
    CHECK(mica_get(c, "hot", key, strlen(key), &v, &vl), "get");
    mica_free(v);
  }
  for (int r = 0; r < rounds; r++) {
    /* Alternate which path goes first so drift hits both alike. */
    for (int pass = 0; pass < 2; pass++) {
      bool lib = (pass == 0) == (r % 2 == 0);
      uint64_t t0 = now_ns();
      for (int i = 0; i < ops; i++) {
        if (lib) {
          void *v = NULL;
          size_t vl;
          CHECK(mica_get(c, "hot", key, strlen(key), &v, &vl), "get");
          mica_free(v);
        } else {
          void *resp = NULL;
          e = rpc_unary(ch, &rpc_m_ts_get, &req, 10000, &resp);
          if (e != NULL || !((rpc_get_response *)resp)->found) {
            fprintf(stderr, "mica-client-bench: raw get failed: %s\n", e ? err_msg(e) : "not found");
            return 1;
          }
          rpc_msg_free(resp);
        }
      }
      double per = (double)(now_ns() - t0) / ops;
      if (lib) lib_ns[r] = per;
      else raw_ns[r] = per;
    }
    ratio[r] = lib_ns[r] / raw_ns[r];
  }
  double mr = median(ratio, rounds);
  printf("cache-hit get: library %.1f us/op, raw rpc %.1f us/op (medians of %d rounds of %d ops)\n",
         median(lib_ns, rounds) / 1000, median(raw_ns, rounds) / 1000, rounds, ops);
  printf("cache-hit get: library/raw ratio median %.4f (overhead %+.2f%%, goal < 5%%)\n", mr,
         (mr - 1) * 100);
  rpc_channel_free(ch);

  /* ---- 2. master round trips after every tablet split ---- */
  mica_key *splits = calloc((size_t)tablets, sizeof *splits);
  char (*sk)[16] = calloc((size_t)tablets, 16);
  for (int i = 0; i + 1 < tablets; i++) {
    snprintf(sk[i], 16, "k%06d", (i + 1) * 1000);
    splits[i].data = sk[i];
    splits[i].len = strlen(sk[i]);
  }
  CHECK(mica_create_table(c, "stale", splits, (size_t)tablets - 1), "create stale");
  int nkeys = tablets * 1000;
  mica_batch *b = mica_batch_new();
  char k[32];
  for (int i = 0; i < nkeys; i += 10) {
    snprintf(k, sizeof k, "k%06d", i);
    mica_batch_put(b, k, strlen(k), k, strlen(k));
  }
  CHECK(mica_batch_write(c, "stale", b, 0, NULL), "load");
  mica_batch_free(b);
  mica_client *warm = NULL;
  CHECK(mica_open(cl_master_address(cl), NULL, &warm), "open warm");
  for (int i = 0; i < nkeys; i += 1000) { /* one read per tablet: all cached */
    snprintf(k, sizeof k, "k%06d", i);
    void *v = NULL;
    size_t vl;
    CHECK(mica_get(warm, "stale", k, strlen(k), &v, &vl), "warm get");
    mica_free(v);
  }
  CHECK(mica_list_tablets(c, "stale", &ti, &n), "list stale");
  for (size_t i = 0; i < n; i++) {
    snprintf(k, sizeof k, "k%06d", (int)(i * 1000 + 500));
    CHECK(mica_split_tablet(c, ti[i].tablet_id, k, strlen(k), NULL), "split");
  }
  mica_free(ti);
  mica_stats s0, s1;
  mica_get_stats(warm, &s0);
  uint64_t seed = 88172645463325252ull;
  for (int i = 0; i < 10000; i++) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    snprintf(k, sizeof k, "k%06d", (int)(seed % (uint64_t)(nkeys / 10)) * 10);
    void *v = NULL;
    size_t vl;
    CHECK(mica_get(warm, "stale", k, strlen(k), &v, &vl), "read after split");
    mica_free(v);
  }
  mica_get_stats(warm, &s1);
  printf("after splitting all %zu tablets: 10000 random reads needed %" PRIu64
         " master lookups (goal 0), %" PRIu64 " routing answers installed, %" PRIu64
         " retries\n",
         n, s1.master_lookups - s0.master_lookups, s1.routing_answers - s0.routing_answers,
         s1.retries - s0.retries);

  mica_close(warm);
  mica_close(c);
  cl_free(cl);
  free(lib_ns);
  free(raw_ns);
  free(ratio);
  free(splits);
  free(sk);
  return 0;
}
