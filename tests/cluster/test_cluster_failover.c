/* test_cluster_failover: process deaths under write load, with real
 * processes on loopback and a 2 s lease.
 *
 * - kill -9 of one tablet server while four writers run: every tablet it
 *   held serves on the others within lease + 2 s, writes go on, and every
 *   acknowledged write is readable afterwards with its value;
 * - kill -9 of the master and a restart on the same data root: the same
 *   tablet map (ids, ranges, servers, assign epochs: no reassignment storm,
 *   also after the grace period), writes continue, every acknowledged write
 *   is readable. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/cluster.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/testutil.h"

#define WRITERS 4
#define LEASE_MS 2000
#define MARGIN_MS 500

static cluster *g_c;

/* ---- writers: each writes w<id>-<seq> in order; acked counts the
 * acknowledged prefix, so every seq below it must be readable ---- */

typedef struct writer {
  pthread_t th;
  int id;
  atomic_uint_fast64_t acked;
  atomic_uint_fast64_t failures;
} writer;

static atomic_bool g_stop;
static writer g_w[WRITERS];

static void key_of(int w, uint64_t seq, char *k, size_t n) {
  snprintf(k, n, "w%d-%08" PRIu64, w, seq);
}

static void value_of(const char *k, char *v, size_t n) {
  snprintf(v, n, "v:%s:%s", k, "payload-payload-payload-payload");
}

static void *writer_main(void *arg) {
  writer *w = arg;
  uint64_t seq = 0;
  while (!atomic_load(&g_stop)) {
    char k[32], v[96];
    key_of(w->id, seq, k, sizeof(k));
    value_of(k, v, sizeof(v));
    mica_err *err = kvc_put(g_c, "load", slice_from_str(k),
                            slice_from_str(v), 30000);
    if (err == NULL) {
      atomic_store(&w->acked, ++seq);
    } else {
      /* Not acknowledged: try the same key again (a put is idempotent). */
      atomic_fetch_add(&w->failures, 1);
      err_free(err);
    }
  }
  return NULL;
}

static void start_writers(void) {
  atomic_store(&g_stop, false);
  for (int i = 0; i < WRITERS; i++) {
    g_w[i].id = i;
    atomic_store(&g_w[i].acked, 0);
    atomic_store(&g_w[i].failures, 0);
    pthread_create(&g_w[i].th, NULL, writer_main, &g_w[i]);
  }
}

static void stop_writers(void) {
  atomic_store(&g_stop, true);
  for (int i = 0; i < WRITERS; i++) pthread_join(g_w[i].th, NULL);
}

static uint64_t total_acked(void) {
  uint64_t n = 0;
  for (int i = 0; i < WRITERS; i++) n += atomic_load(&g_w[i].acked);
  return n;
}

static void check_acked(void) {
  buf v = BUF_INIT;
  uint64_t checked = 0, missing = 0;
  for (int w = 0; w < WRITERS; w++) {
    uint64_t n = atomic_load(&g_w[w].acked);
    for (uint64_t s = 0; s < n; s++) {
      char k[32], want[96];
      key_of(w, s, k, sizeof(k));
      value_of(k, want, sizeof(want));
      bool found = false;
      TU_OK(kvc_get(g_c, "load", slice_from_str(k), &found, &v, 20000));
      if (!found || !slice_eq(buf_slice(&v), slice_from_str(want))) {
        if (missing++ < 5) fprintf(stderr, "\nacknowledged %s lost\n", k);
      }
      checked++;
    }
  }
  CU_ASSERT_EQUAL(missing, 0);
  CU_ASSERT_TRUE(checked > 0);
  buf_free(&v);
}

/* ---- the tablet map ---- */

typedef struct tmap {
  uint64_t id[256], server[256], epoch[256];
  size_t n;
  bool all_serving;
} tmap;

static void get_map(const char *table, tmap *m) {
  rpc_list_tablets_request q = {0};
  q.table = (char *)table;
  void *r = NULL;
  memset(m, 0, sizeof(*m));
  mica_err *err = cl_call_master(g_c, &rpc_m_master_list_tablets, &q,
                                 2000, &r);
  if (err) {
    err_free(err);
    rpc_msg_free(r);
    return;
  }
  const rpc_list_tablets_response *lt = (const void *)r;
  m->all_serving = lt->n_tablets > 0;
  for (size_t i = 0; i < lt->n_tablets && i < 256; i++) {
    const rpc_tablet_entry *e = &lt->tablets[i];
    m->id[i] = e->desc->tablet_id;
    m->server[i] = e->location ? e->location->server_id : 0;
    m->epoch[i] = e->location ? e->location->assign_epoch : 0;
    m->all_serving &= e->state == RPC_TABLET_SERVING;
  }
  m->n = lt->n_tablets;
  rpc_msg_free(r);
}

static bool map_eq(const tmap *a, const tmap *b) {
  if (a->n != b->n) return false;
  for (size_t i = 0; i < a->n; i++)
    if (a->id[i] != b->id[i] || a->server[i] != b->server[i] ||
        a->epoch[i] != b->epoch[i])
      return false;
  return true;
}

/* Asserts a == b, printing both maps when they differ. */
static void assert_same_map(const tmap *a, const tmap *b, const char *when) {
  bool same = map_eq(a, b);
  CU_ASSERT_TRUE(same);
  if (same) return;
  fprintf(stderr, "\n  tablet map changed %s (%zu vs %zu tablets):", when,
          a->n, b->n);
  for (size_t i = 0; i < a->n || i < b->n; i++)
    fprintf(stderr, "\n  [%zu] id %" PRIu64 "/%" PRIu64 " server %" PRIu64
            "/%" PRIu64 " epoch %" PRIu64 "/%" PRIu64, i, a->id[i], b->id[i],
            a->server[i], b->server[i], a->epoch[i], b->epoch[i]);
  fprintf(stderr, "\n");
}

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.lease_ms = LEASE_MS;
  o.lease_margin_ms = MARGIN_MS;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  o.master_args = margs;
  if (cl_suite_start(&o, &g_c) != 0) return 1;
  slice splits[] = {slice_from_str("w1"), slice_from_str("w2"),
                    slice_from_str("w3"), slice_from_str("w1-00000500"),
                    slice_from_str("w3-00000500")};
  /* Split keys must be sorted. */
  slice sorted[] = {splits[0], splits[3], splits[1], splits[2], splits[4]};
  mica_err *err = kvc_create_table(g_c, "load", sorted, 5);
  if (err) {
    fprintf(stderr, "suite init: %s\n", err_msg(err));
    err_free(err);
    return 1;
  }
  return 0;
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static void test_kill_tserver_under_load(void) {
  tmap m;
  uint64_t until = cl_now_ms() + 10000;
  do {
    get_map("load", &m);
  } while (!m.all_serving && cl_now_ms() < until);
  CU_ASSERT_TRUE_FATAL(m.all_serving);
  CU_ASSERT_EQUAL(m.n, 6);

  start_writers();
  cl_sleep_ms(1000);
  uint64_t before = total_acked();
  CU_ASSERT_TRUE(before > 0);

  uint64_t victim = cl_tserver_id(g_c, 0);
  size_t held = 0;
  for (size_t i = 0; i < m.n; i++) held += m.server[i] == victim;
  CU_ASSERT_TRUE(held > 0);
  uint64_t t0 = cl_now_ms();
  TU_OK(cl_kill_tserver(g_c, 0));

  /* Poll until every tablet serves on a live server. */
  uint64_t t1 = 0;
  until = t0 + LEASE_MS + MARGIN_MS + 15000;
  while (cl_now_ms() < until) {
    get_map("load", &m);
    bool moved = m.all_serving;
    for (size_t i = 0; i < m.n; i++) moved &= m.server[i] != victim;
    if (moved) {
      t1 = cl_now_ms();
      break;
    }
    cl_sleep_ms(20);
  }
  if (t1 == 0) stop_writers(); /* no writer may outlive the cluster */
  CU_ASSERT_NOT_EQUAL_FATAL(t1, 0);
  fprintf(stderr, "\n  %zu tablets of the killed server serving elsewhere "
          "after %" PRIu64 " ms (lease %d ms)\n", held, t1 - t0, LEASE_MS);
  /* Issue 5's bound: lease + 2 s (its goal, measured on POSIX). On S3 a
   * new owner also reads the tablet's manifest, every object of the dead
   * server's commit log since the tablet's last flush, writes the replayed
   * writes as an SSTable and a new manifest: some 60-80 requests to one
   * s3rver (a Node.js process), each tens of ms when CI's two cores run
   * four tests. The bound there is lease + 10 s, still bounded but not an
   * issue's goal (issue 16 sets none for failover): 3.0-3.3 s is usual,
   * but a run at load 26 took 8.7 s (2.5 s lease and margin, then 6 s of
   * opening, 2.1-2.4 s of it replaying 31 log objects), past the lease +
   * 6 s this had
   * (docs/testing.md, "The cluster suite on S3"). */
  CU_ASSERT_TRUE(t1 - t0 <= LEASE_MS + (cl_env_s3() ? 10000 : 2000));

  /* Writes go on after the failover. */
  uint64_t at_failover = total_acked();
  cl_sleep_ms(1000);
  CU_ASSERT_TRUE(total_acked() > at_failover);
  stop_writers();
  check_acked();

  /* The killed server comes back empty-handed and is given work again by
   * the next assignment only; it registers cleanly. */
  TU_OK(cl_restart_tserver(g_c, 0));
}

static void test_kill_master_and_restart(void) {
  tmap before, after;
  uint64_t until = cl_now_ms() + 10000;
  do {
    get_map("load", &before);
  } while (!before.all_serving && cl_now_ms() < until);
  CU_ASSERT_TRUE_FATAL(before.all_serving);

  start_writers();
  cl_sleep_ms(500);
  TU_OK(cl_kill_master(g_c));
  uint64_t down_acked = total_acked();
  cl_sleep_ms(300);
  TU_OK(cl_restart_master(g_c));

  /* As soon as the master answers, the map is the logged one. (Answering
   * can take seconds: gRPC shares one connection per address among
   * channels and backs off reconnecting after the failures while the
   * master was down.) */
  until = cl_now_ms() + 20000;
  do {
    get_map("load", &after);
  } while (after.n == 0 && cl_now_ms() < until);
  assert_same_map(&before, &after, "right after the restart");

  /* Writes continue once the servers re-registered. */
  until = cl_now_ms() + 15000;
  while (total_acked() <= down_acked + 50 && cl_now_ms() < until)
    cl_sleep_ms(50);
  CU_ASSERT_TRUE(total_acked() > down_acked + 50);

  /* Past the grace period (one lease + margin) nothing was reassigned. */
  cl_sleep_ms(LEASE_MS + MARGIN_MS + 1000);
  get_map("load", &after);
  CU_ASSERT_TRUE(after.all_serving);
  assert_same_map(&before, &after, "after the grace period");

  /* No assignment events since the restart. */
  rpc_list_events_request q = {0};
  void *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_events, &q, 5000, &r));
  const rpc_list_events_response *ev = (const void *)r;
  size_t assigns = 0, deaths = 0;
  for (size_t i = 0; i < ev->n_events; i++) {
    assigns += strcmp(ev->events[i].kind, "assign") == 0;
    deaths += strcmp(ev->events[i].kind, "server_dead") == 0;
  }
  CU_ASSERT_EQUAL(assigns, 0);
  CU_ASSERT_EQUAL(deaths, 0);
  rpc_msg_free(r);

  uint64_t mid = total_acked();
  cl_sleep_ms(500);
  CU_ASSERT_TRUE(total_acked() > mid);
  stop_writers();
  check_acked();
  TU_OK(cl_stop_master(g_c));
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("failover", suite_init, suite_clean);
  CU_add_test(s, "kill_tserver_under_load", test_kill_tserver_under_load);
  CU_add_test(s, "kill_master_and_restart", test_kill_master_and_restart);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
