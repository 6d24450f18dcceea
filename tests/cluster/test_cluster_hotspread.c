/* test_cluster_hotspread: load-based split and the load-aware balancer
 * together, end to end (docs/hotspots.md, "Split and spread together").
 *
 * One master and three tablet servers on loopback; a table of one tablet
 * (1000 keys) on one server; load split on at 200 ops/s over a 2 s window,
 * the balancer in auto. Paced writers put 90% of their keys on
 * k000400..k000599 and 10% anywhere, about 1600 keys/s: enough that the
 * hot range must be split three levels deep before its pieces fall below
 * the threshold, and that two or four pieces could not be spread within
 * 1.25x of the mean over three servers. Within 30 s of the skew starting:
 *   - the first load split lands inside the hot range;
 *   - the busiest server's load (reads + writes per second, as heartbeats
 *     carry it) is within 1.25x of the mean, and stays there for 3 s;
 *   - the balancer moved tablets, and all three servers serve the table.
 * Afterwards every acknowledged write reads back (each writer owns its
 * keys, so the last value it was acknowledged for a key is the one a read
 * must return). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#define NKEYS 1000
#define WRITERS 2
#define PER_WRITER_OPS 800
#define BATCH 40

static cluster *g_c;

static void key_of(int i, char *k, size_t n) { snprintf(k, n, "k%06d", i); }

/* ---- paced writers, each owning the keys i with i % WRITERS == its id ---- */

typedef struct writer {
  pthread_t th;
  int id;
  atomic_bool stop;
  atomic_int failed;
  atomic_uint_fast64_t ops;
  int last[NKEYS]; /* last acknowledged batch number per key; 0 = preload */
} writer;

static int cmp_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

/* 90% on k000400..k000599, the rest anywhere; of this writer's keys. */
static int pick(int id) {
  int i = tu_rand_below(100) < 90 ? 400 + (int)tu_rand_below(200)
                                  : (int)tu_rand_below(NKEYS);
  return i - i % WRITERS + id;
}

static void *writer_main(void *arg) {
  writer *w = arg;
  uint64_t next = cl_now_ms();
  uint64_t step_ms = (uint64_t)BATCH * 1000 / PER_WRITER_OPS;
  for (int batch = 1; !atomic_load(&w->stop); batch++) {
    int idx[BATCH], n = 0;
    for (int i = 0; i < BATCH; i++) idx[i] = pick(w->id);
    qsort(idx, BATCH, sizeof(idx[0]), cmp_int);
    for (int i = 0; i < BATCH; i++) /* a key once per batch */
      if (n == 0 || idx[n - 1] != idx[i]) idx[n++] = idx[i];
    char keys[BATCH][16], val[16];
    slice ks[BATCH], vs[BATCH];
    snprintf(val, sizeof val, "b%d", batch);
    for (int i = 0; i < n; i++) {
      key_of(idx[i], keys[i], sizeof keys[i]);
      ks[i] = slice_from_str(keys[i]);
      vs[i] = slice_from_str(val);
    }
    mica_err *err = kvc_put_sorted(g_c, "hs", ks, vs, (size_t)n, 30000);
    if (err != NULL) {
      fprintf(stderr, "\nwriter %d: %s\n", w->id, err_msg(err));
      err_free(err);
      atomic_store(&w->failed, 1);
      return NULL;
    }
    for (int i = 0; i < n; i++) w->last[idx[i]] = batch;
    atomic_fetch_add(&w->ops, (uint64_t)n);
    next += step_ms;
    uint64_t now = cl_now_ms();
    if (next > now) cl_sleep_ms(next - now);
    else next = now; /* behind: do not burst to catch up */
  }
  return NULL;
}

/* ---- what the master says ---- */

/* Busiest server's reads+writes/s over the mean of all live servers. */
static double load_ratio(double *max_out) {
  rpc_list_servers_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000, &m));
  const rpc_list_servers_response *r = m;
  double sum = 0, max = 0;
  for (size_t i = 0; r != NULL && i < r->n_servers; i++) {
    double l = r->servers[i].read_rate + r->servers[i].write_rate;
    sum += l;
    if (l > max) max = l;
  }
  double ratio = r && sum > 0 ? max / (sum / (double)r->n_servers) : 0;
  rpc_msg_free(m);
  *max_out = max;
  return ratio;
}

/* Events of `kind` (and, when `text` is set, containing it); the oldest's
 * text into first[200]. */
static size_t events(const char *kind, const char *text, char *first) {
  rpc_list_events_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_events, &q, 5000, &m));
  const rpc_list_events_response *le = m;
  size_t n = 0;
  uint64_t first_ms = 0;
  for (size_t i = 0; le != NULL && i < le->n_events; i++) {
    const rpc_event *e = &le->events[i];
    if (strcmp(e->kind, kind) != 0) continue;
    if (text != NULL && strstr(e->text, text) == NULL) continue;
    if (n++ == 0 || e->time_ms < first_ms) {
      first_ms = e->time_ms;
      if (first) snprintf(first, 200, "%s", e->text);
    }
  }
  rpc_msg_free(m);
  return n;
}

/* Serving tablets of "hs" per server index (0..2); returns how many. */
static size_t tablets_per_server(int per[3]) {
  rpc_list_tablets_request q = {0};
  q.table = "hs";
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000, &m));
  const rpc_list_tablets_response *lt = m;
  size_t n = 0;
  per[0] = per[1] = per[2] = 0;
  for (size_t i = 0; lt != NULL && i < lt->n_tablets; i++) {
    if (lt->tablets[i].state != RPC_TABLET_SERVING) continue;
    n++;
    for (int s = 0; s < 3; s++)
      if (lt->tablets[i].location != NULL &&
          lt->tablets[i].location->server_id == cl_tserver_id(g_c, s))
        per[s]++;
  }
  rpc_msg_free(m);
  return n;
}

static void test_split_and_spread(void) {
  TU_OK(kvc_create_table(g_c, "hs", NULL, 0));
  char (*keys)[16] = xcalloc(NKEYS, sizeof(*keys));
  slice *ks = xcalloc(NKEYS, sizeof(*ks));
  slice *vs = xcalloc(NKEYS, sizeof(*vs));
  for (int i = 0; i < NKEYS; i++) {
    key_of(i, keys[i], sizeof keys[i]);
    ks[i] = slice_from_str(keys[i]);
    vs[i] = slice_from_str("b0");
  }
  TU_OK(kvc_put_sorted(g_c, "hs", ks, vs, NKEYS, 60000));
  free(vs);
  free(ks);
  free(keys);
  /* The preload's rates fade (servers average over ~5 s). */
  cl_sleep_ms(3000);
  CU_ASSERT_EQUAL(events("load_split", NULL, NULL), 0);

  writer *w = xcalloc(WRITERS, sizeof(*w));
  uint64_t t0 = cl_now_ms();
  for (int i = 0; i < WRITERS; i++) {
    w[i].id = i;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&w[i].th, NULL, writer_main, &w[i]),
                          0);
  }
  uint64_t split_ms = 0, spread_ms = 0;
  double ratio = 0, max = 0;
  char first_split[200] = "";
  while (cl_now_ms() - t0 < 30000) {
    cl_sleep_ms(500);
    if (split_ms == 0 && events("load_split", NULL, first_split) > 0)
      split_ms = cl_now_ms() - t0;
    ratio = load_ratio(&max);
    /* max == 0: the servers' averages of new tablets have not climbed
     * yet; that is no spread. */
    if (split_ms != 0 && max > 0 && ratio <= 1.25 && spread_ms == 0)
      spread_ms = cl_now_ms() - t0;
    if (max == 0 || ratio > 1.25) spread_ms = 0;
    if (spread_ms != 0 && cl_now_ms() - t0 > spread_ms + 3000) break;
    if ((cl_now_ms() - t0) % 2000 < 500) { /* a timeline, every ~2 s */
      int p3[3];
      size_t nt = tablets_per_server(p3);
      fprintf(stderr, "  %5" PRIu64 " ms: busiest/mean %.2f, %zu tablets "
              "(%d/%d/%d)\n", cl_now_ms() - t0, ratio, nt, p3[0], p3[1],
              p3[2]);
    }
  }
  int per[3];
  size_t serving = tablets_per_server(per);
  size_t nsplits = events("load_split", NULL, NULL);
  size_t nmoves = events("move", "moving from", NULL);
  for (int i = 0; i < WRITERS; i++) atomic_store(&w[i].stop, true);
  for (int i = 0; i < WRITERS; i++) pthread_join(w[i].th, NULL);
  fprintf(stderr, "\n  first load split after %" PRIu64 " ms: %s\n"
          "  busiest/mean %.2f (busiest %.0f ops/s), within 1.25x from %"
          PRIu64 " ms; %zu load splits, %zu moves, %zu tablets (%d/%d/%d)\n",
          split_ms, first_split, ratio, max, spread_ms, nsplits, nmoves,
          serving, per[0], per[1], per[2]);
  for (int i = 0; i < WRITERS; i++)
    CU_ASSERT_EQUAL(atomic_load(&w[i].failed), 0);
  CU_ASSERT(split_ms > 0);
  /* The first split is at a load-balancing key: inside the hot range, not
   * at the byte middle's neighbourhood outside it. */
  const char *a = strchr(first_split, '"');
  CU_ASSERT_FATAL(a != NULL);
  CU_ASSERT(strncmp(a + 1, "k000400", 7) > 0 &&
            strncmp(a + 1, "k000600", 7) < 0);
  CU_ASSERT(ratio <= 1.25);
  CU_ASSERT(spread_ms > 0 && spread_ms <= 30000);
  CU_ASSERT(nmoves >= 2);
  CU_ASSERT(per[0] > 0 && per[1] > 0 && per[2] > 0);

  /* Every acknowledged write reads back. */
  buf v = BUF_INIT;
  int missing = 0;
  for (int i = 0; i < NKEYS; i++) {
    char k[16], want[16];
    key_of(i, k, sizeof k);
    snprintf(want, sizeof want, "b%d", w[i % WRITERS].last[i]);
    bool found = false;
    TU_OK(kvc_get(g_c, "hs", slice_from_str(k), &found, &v, 20000));
    if (!found || !slice_eq(buf_slice(&v), slice_from_str(want)))
      if (missing++ < 5)
        fprintf(stderr, "  acknowledged %s=%s lost\n", k, want);
  }
  CU_ASSERT_EQUAL(missing, 0);
  buf_free(&v);
  free(w);
}

static int suite_init(void) {
  static const char *const margs[] = {
      "--merge", "off", "--balancer", "auto", "--load-split", "on",
      "--load-split-ops", "200", "--load-split-window-ms", "2000",
      "--balance-min-rate", "10", "--balance-settle-ms", "1000",
      "--balance-window-ms", "30000", NULL};
  cl_options o;
  cl_options_init(&o);
  o.master_args = margs;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("hotspread", suite_init, suite_clean);
  CU_add_test(s, "split_and_spread", test_split_and_spread);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
