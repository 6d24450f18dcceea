/* test_cluster_balance: the load-aware balancer and draining with real
 * mica-master and mica-tserver processes on loopback.
 *
 *   - drain under write load: a server marked draining gives up every
 *     tablet a few at a time while writers keep writing; every
 *     acknowledged write reads back afterwards, the balancer (auto) never
 *     puts a tablet back on the draining server, and the mark survives a
 *     master restart until undrain;
 *   - SIGTERM drain: a tablet server stopped with SIGTERM first has its
 *     tablets moved away; readers of its tablets see a gap far shorter
 *     than the lease they would otherwise wait for (the gap is printed:
 *     docs/benchmarks.md records it);
 *   - load spread: six equally hot tablets on one of three servers are
 *     spread by load until the busiest server is within 1.25x the mean.
 * Each test starts its own cluster and stays well under 40 s. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;

static void key_of(int i, char *k) { sprintf(k, "k%06d", i); }

/* ---- master calls ---- */

static void set_mode(const char *mode) {
  rpc_configure_request q = {0};
  q.balancer_mode = mode;
  void *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_configure, &q, 5000, &r));
  if (r)
    CU_ASSERT_STRING_EQUAL(((rpc_configure_response *)r)->balancer_mode,
                           mode);
  rpc_msg_free(r);
}

static mica_err *drain(uint64_t id, bool undrain) {
  rpc_drain_server_request q = {0};
  q.server_id = id;
  q.undrain = undrain;
  return cl_call_master(g_c, &rpc_m_master_drain_server, &q, 5000, NULL);
}

/* Tablet count and draining mark of server `id`; -1 when not listed. */
static int tablets_on(uint64_t id, bool *draining) {
  rpc_list_servers_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000, &m));
  const rpc_list_servers_response *r = m;
  int n = -1;
  for (size_t i = 0; r && i < r->n_servers; i++)
    if (r->servers[i].server_id == id) {
      n = (int)r->servers[i].tablet_count;
      if (draining) *draining = r->servers[i].draining;
    }
  rpc_msg_free(m);
  return n;
}

/* Busiest / mean load over live servers (reads+writes/s, heartbeats). */
static double load_ratio(double *max_out) {
  rpc_list_servers_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000, &m));
  const rpc_list_servers_response *r = m;
  double sum = 0, max = 0;
  size_t n = r ? r->n_servers : 0;
  for (size_t i = 0; i < n; i++) {
    double l = r->servers[i].read_rate + r->servers[i].write_rate;
    sum += l;
    if (l > max) max = l;
  }
  rpc_msg_free(m);
  if (max_out) *max_out = max;
  return sum > 0 && n > 0 ? max / (sum / (double)n) : 0;
}

/* Moves tablet `id` to server `to` (waits until it serves there). */
static void move(uint64_t id, uint64_t to) {
  rpc_move_tablet_request q = {0};
  q.tablet_id = id;
  q.target_server_id = to;
  TU_OK(cl_call_master(g_c, &rpc_m_master_move_tablet, &q, 20000, NULL));
}

static rpc_list_tablets_response *tablets(const char *table) {
  rpc_list_tablets_request q = {0};
  q.table = table;
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000, &m));
  return m;
}

/* Waits until table `table` has `n` tablets, all serving (a create
 * answers before its tablets open; a move of one still opening is refused
 * as "in transition"). */
static void wait_serving(const char *table, size_t n) {
  size_t serving = 0;
  for (uint64_t until = cl_now_ms() + 30000; cl_now_ms() < until;
       cl_sleep_ms(50)) {
    rpc_list_tablets_response *lt = tablets(table);
    serving = 0;
    for (size_t i = 0; lt && i < lt->n_tablets; i++)
      serving += lt->tablets[i].state == RPC_TABLET_SERVING &&
                 lt->tablets[i].location != NULL;
    bool all = lt && lt->n_tablets == n && serving == n;
    rpc_msg_free(lt);
    if (all) return;
  }
  CU_FAIL_FATAL("the table's tablets did not all serve within 30 s");
}

/* ---- load ---- */

typedef struct writer {
  pthread_t th;
  int base;                 /* keys base, base+1, ... */
  atomic_int acked;         /* keys acknowledged so far */
  atomic_bool stop;
  int errors;
} writer;

static void *write_loop(void *arg) {
  writer *w = arg;
  char k[16], v[64];
  for (int i = 0; !atomic_load(&w->stop); i++) {
    key_of(w->base + i, k);
    snprintf(v, sizeof(v), "v%d", w->base + i);
    mica_err *err = kvc_put(g_c, "d", slice_from_str(k), slice_from_str(v),
                            20000);
    if (err) {
      w->errors++;
      fprintf(stderr, "\nput %s: %s\n", k, err_msg(err));
      err_free(err);
      break;
    }
    atomic_store(&w->acked, i + 1);
  }
  return NULL;
}

static void check_acked(writer *w) {
  buf v = BUF_INIT;
  int missing = 0, n = atomic_load(&w->acked);
  for (int i = 0; i < n; i++) {
    char k[16], want[64];
    key_of(w->base + i, k);
    snprintf(want, sizeof(want), "v%d", w->base + i);
    bool found = false;
    TU_OK(kvc_get(g_c, "d", slice_from_str(k), &found, &v, 20000));
    if (!found || !slice_eq(buf_slice(&v), slice_from_str(want)))
      if (missing++ < 5) fprintf(stderr, "\nacknowledged %s lost\n", k);
  }
  CU_ASSERT_EQUAL(missing, 0);
  buf_free(&v);
}

/* Drain under write load; the balancer never targets the draining server;
 * the mark is durable. */
static void test_drain_under_load(void) {
  cl_options o;
  cl_options_init(&o);
  static const char *const margs[] = {"--merge", "off", "--balancer", "auto",
                                      NULL};
  o.master_args = margs;
  TU_OK(cl_start(&o, &g_c));
  slice splits[8];
  char sk[8][16];
  for (int i = 0; i < 8; i++) {
    key_of((i + 1) * 1000, sk[i]);
    splits[i] = slice_from_str(sk[i]);
  }
  TU_OK(kvc_create_table(g_c, "d", splits, 8));
  uint64_t victim = cl_tserver_id(g_c, 0);
  wait_serving("d", 9);
  CU_ASSERT(tablets_on(victim, NULL) >= 2);

  writer w[3];
  for (int i = 0; i < 3; i++) {
    memset(&w[i], 0, sizeof(w[i]));
    w[i].base = i * 3000;
    pthread_create(&w[i].th, NULL, write_loop, &w[i]);
  }
  cl_sleep_ms(500);
  TU_OK(drain(victim, false));
  uint64_t t0 = cl_now_ms();
  int left = -1;
  bool draining = false;
  while (cl_now_ms() - t0 < 30000) {
    left = tablets_on(victim, &draining);
    if (left == 0) break;
    cl_sleep_ms(100);
  }
  uint64_t took = cl_now_ms() - t0;
  CU_ASSERT_EQUAL(left, 0);
  CU_ASSERT(draining);
  /* The balancer (auto) sees 0 tablets there and never sends one back. */
  cl_sleep_ms(2000);
  CU_ASSERT_EQUAL(tablets_on(victim, NULL), 0);
  for (int i = 0; i < 3; i++) {
    atomic_store(&w[i].stop, true);
    pthread_join(w[i].th, NULL);
    CU_ASSERT_EQUAL(w[i].errors, 0);
  }
  fprintf(stderr, "\n  drained under load in %" PRIu64 " ms; %d+%d+%d "
          "writes acknowledged\n", took, atomic_load(&w[0].acked),
          atomic_load(&w[1].acked), atomic_load(&w[2].acked));
  for (int i = 0; i < 3; i++) check_acked(&w[i]);

  /* A restarted master keeps the mark; undrain lets tablets come back. */
  TU_OK(cl_stop_master(g_c));
  TU_OK(cl_restart_master(g_c));
  uint64_t until = cl_now_ms() + 20000;
  int n = -1;
  while (cl_now_ms() < until && (n = tablets_on(victim, &draining)) < 0)
    cl_sleep_ms(200);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT(draining);
  mica_err *err;
  while ((err = drain(victim, true)) != NULL && cl_now_ms() < until) {
    err_free(err);
    cl_sleep_ms(200);
  }
  TU_OK(err);
  until = cl_now_ms() + 20000;
  while (cl_now_ms() < until && tablets_on(victim, NULL) < 2)
    cl_sleep_ms(200);
  CU_ASSERT(tablets_on(victim, NULL) >= 2);
  CU_ASSERT(tablets_on(victim, &draining) >= 0 && !draining);
  cl_free(g_c);
  g_c = NULL;
}

/* ---- SIGTERM ---- */

typedef struct reader {
  pthread_t th;
  int key;
  atomic_bool stop;
  uint64_t max_gap_ms; /* longest time between two successful reads */
  int errors;
} reader;

static void *read_loop(void *arg) {
  reader *r = arg;
  char k[16];
  key_of(r->key, k);
  buf v = BUF_INIT;
  uint64_t last = cl_now_ms();
  while (!atomic_load(&r->stop)) {
    bool found = false;
    mica_err *err = kvc_get(g_c, "d", slice_from_str(k), &found, &v, 30000);
    uint64_t now = cl_now_ms();
    if (err != NULL || !found) {
      r->errors++;
      err_free(err);
      break;
    }
    if (now - last > r->max_gap_ms) r->max_gap_ms = now - last;
    last = now;
  }
  buf_free(&v);
  return NULL;
}

static void test_sigterm_drain(void) {
  cl_options o;
  cl_options_init(&o);
  /* A lease long enough that waiting for it would show plainly. */
  o.lease_ms = 6000;
  o.drain_timeout_ms = 20000;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  o.master_args = margs;
  TU_OK(cl_start(&o, &g_c));
  slice splits[5];
  char sk[5][16];
  for (int i = 0; i < 5; i++) {
    key_of((i + 1) * 100, sk[i]);
    splits[i] = slice_from_str(sk[i]);
  }
  TU_OK(kvc_create_table(g_c, "d", splits, 5));
  for (int i = 0; i < 600; i += 50) {
    char k[16];
    key_of(i, k);
    TU_OK(kvc_put(g_c, "d", slice_from_str(k), slice_from_str("x"), 20000));
  }
  /* Readers of every tablet the victim holds. */
  uint64_t victim = cl_tserver_id(g_c, 1);
  rpc_list_tablets_response *lt = tablets("d");
  reader rd[6];
  int nr = 0;
  for (size_t i = 0; lt && i < lt->n_tablets && nr < 6; i++) {
    if (lt->tablets[i].location == NULL ||
        lt->tablets[i].location->server_id != victim)
      continue;
    memset(&rd[nr], 0, sizeof(rd[nr]));
    slice s = slice_make(lt->tablets[i].desc->start_key.data,
                         lt->tablets[i].desc->start_key.len);
    int first = 0;
    if (s.len) sscanf((const char *)s.data + 1, "%6d", &first);
    rd[nr].key = first;
    nr++;
  }
  rpc_msg_free(lt);
  CU_ASSERT_FATAL(nr >= 1);
  for (int i = 0; i < nr; i++)
    pthread_create(&rd[i].th, NULL, read_loop, &rd[i]);
  cl_sleep_ms(1000);
  uint64_t t0 = cl_now_ms();
  TU_OK(cl_stop_tserver(g_c, 1)); /* SIGTERM: drains, then exits 0 */
  uint64_t stop_ms = cl_now_ms() - t0;
  cl_sleep_ms(1000);
  uint64_t worst = 0;
  for (int i = 0; i < nr; i++) {
    atomic_store(&rd[i].stop, true);
    pthread_join(rd[i].th, NULL);
    CU_ASSERT_EQUAL(rd[i].errors, 0);
    if (rd[i].max_gap_ms > worst) worst = rd[i].max_gap_ms;
  }
  fprintf(stderr, "\n  SIGTERM drain of %d tablets: process stopped in %"
          PRIu64 " ms; longest client-observed gap %" PRIu64 " ms (lease %"
          PRIu64 " ms)\n", nr, stop_ms, worst, o.lease_ms);
  /* No reader waited for the lease to run out. */
  CU_ASSERT(worst < o.lease_ms);
  /* Every tablet serves elsewhere. */
  lt = tablets("d");
  for (size_t i = 0; lt && i < lt->n_tablets; i++)
    CU_ASSERT(lt->tablets[i].location != NULL &&
              lt->tablets[i].location->server_id != victim);
  rpc_msg_free(lt);
  cl_free(g_c);
  g_c = NULL;
}

/* ---- load spread ---- */

typedef struct hammer {
  pthread_t th;
  int keys[6];
  atomic_bool stop;
} hammer;

static void *hammer_loop(void *arg) {
  hammer *h = arg;
  buf v = BUF_INIT;
  for (int i = 0; !atomic_load(&h->stop); i = (i + 1) % 6) {
    char k[16];
    key_of(h->keys[i], k);
    bool found;
    err_free(kvc_get(g_c, "d", slice_from_str(k), &found, &v, 10000));
  }
  buf_free(&v);
  return NULL;
}

static void test_load_spread(void) {
  cl_options o;
  cl_options_init(&o);
  static const char *const margs[] = {
      "--merge", "off", "--balancer", "off", "--balance-min-rate", "10",
      "--balance-settle-ms", "1000", "--balance-window-ms", "30000", NULL};
  o.master_args = margs;
  TU_OK(cl_start(&o, &g_c));
  /* Fifteen tablets: the six hot ones all on server 0, the nine cold ones
   * 5 / 4 on the others, so that tablet counts (6 / 5 / 4) are within the
   * band and only the load tells the servers apart. */
  slice splits[14];
  char sk[14][16];
  for (int i = 0; i < 14; i++) {
    key_of((i + 1) * 100, sk[i]);
    splits[i] = slice_from_str(sk[i]);
  }
  TU_OK(kvc_create_table(g_c, "d", splits, 14));
  wait_serving("d", 15);
  rpc_list_tablets_response *lt = tablets("d");
  CU_ASSERT_FATAL(lt != NULL && lt->n_tablets == 15);
  for (size_t i = 0; i < 15; i++) {
    uint64_t to = cl_tserver_id(g_c, i < 6 ? 0 : i < 11 ? 1 : 2);
    if (lt->tablets[i].location->server_id != to)
      move(lt->tablets[i].desc->tablet_id, to);
  }
  rpc_msg_free(lt);
  hammer h[2];
  for (int t = 0; t < 2; t++) {
    memset(&h[t], 0, sizeof(h[t]));
    for (int i = 0; i < 6; i++) h[t].keys[i] = i * 100 + 7 + t;
    pthread_create(&h[t].th, NULL, hammer_loop, &h[t]);
  }
  /* The skew shows in the heartbeats (rates average over ~5 s). */
  cl_sleep_ms(6000);
  double max = 0, before = load_ratio(&max);
  fprintf(stderr, "\n  before: busiest/mean %.2f (busiest %.0f ops/s)\n",
          before, max);
  CU_ASSERT(before > 2.0);
  set_mode("auto");
  uint64_t t0 = cl_now_ms(), spread_ms = 0;
  double ratio = before;
  while (cl_now_ms() - t0 < 30000) {
    cl_sleep_ms(500);
    ratio = load_ratio(&max);
    if (ratio <= 1.25 && spread_ms == 0) spread_ms = cl_now_ms() - t0;
    if (ratio > 1.25) spread_ms = 0;
    if (spread_ms != 0 && cl_now_ms() - t0 > spread_ms + 3000) break;
  }
  fprintf(stderr, "  after: busiest/mean %.2f, within 1.25x after %" PRIu64
          " ms\n", ratio, spread_ms);
  CU_ASSERT(ratio <= 1.25);
  CU_ASSERT(spread_ms > 0);
  for (int t = 0; t < 2; t++) {
    atomic_store(&h[t].stop, true);
    pthread_join(h[t].th, NULL);
  }
  cl_free(g_c);
  g_c = NULL;
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"drain_under_load", test_drain_under_load},
      {"sigterm_drain", test_sigterm_drain},
      {"load_spread", test_load_spread},
      CU_TEST_INFO_NULL};
  tu_add_suite("balance", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
