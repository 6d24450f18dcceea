/* test_cluster_hotspot: load-based split on a real cluster
 * (docs/hotspots.md, "Load-based split").
 *
 * One master and three tablet servers on loopback; the master makes a
 * tablet hot at 400 ops/s over a 2 s window (--load-split-ops,
 * --load-split-window-ms) and merges small tablets eagerly (any rate,
 * 500 ms old), so a load split that the master let be merged back would
 * show at once. Paced writers make the load:
 *   - hot_range: a one-tablet table of 2000 keys gets most of its writes
 *     on 100 keys near its end (k001700..k001799) and a trickle on all;
 *     within 30 s of the skew starting it is split for load at a key
 *     inside the hot range (the byte middle of the table is near k001000);
 *   - hot_key: every write goes to one key: the master reports it as a
 *     hot key (event naming the key) and the table is never split;
 *   - no_flapping: 90% of the writes on 10 keys, 10% on all, for 20 s
 *     (MICA_SOAK=1: two minutes): the table splits for load and no tablet
 *     of it is merged back. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#define LOAD_OPS "400"
#define WINDOW_MS "2000"
#define WRITERS 2
#define PER_WRITER_OPS 600 /* the writers' pace: 3x the threshold */
#define BATCH 50

static cluster *g_c;

static void key_of(int i, char *k, size_t n) { snprintf(k, n, "k%06d", i); }

static void preload(const char *table, int nkeys) {
  TU_OK(kvc_create_table(g_c, table, NULL, 0));
  char (*keys)[16] = xcalloc((size_t)nkeys, sizeof(*keys));
  slice *ks = xcalloc((size_t)nkeys, sizeof(*ks));
  slice *vs = xcalloc((size_t)nkeys, sizeof(*vs));
  char val[200];
  memset(val, 'v', sizeof val);
  for (int i = 0; i < nkeys; i++) {
    key_of(i, keys[i], sizeof keys[i]);
    ks[i] = slice_from_str(keys[i]);
    vs[i] = slice_make(val, sizeof val);
  }
  TU_OK(kvc_put_sorted(g_c, table, ks, vs, (size_t)nkeys, 60000));
  free(vs);
  free(ks);
  free(keys);
  /* The load itself may make the tablet hot for a second or two (or split
   * it, if slow enough to last a window): a quiet spell longer than a tick
   * ends that streak and empties the sample, so the windows that follow
   * see only the test's load. */
  cl_sleep_ms(3000);
}

/* A paced writer: batches of BATCH keys drawn by `pick`, sorted. */
typedef struct load {
  const char *table;
  int (*pick)(void);
  atomic_bool stop;
  atomic_int failed;
  atomic_uint_fast64_t ops;
} load;

static int cmp_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

static void *writer_main(void *arg) {
  load *l = arg;
  uint64_t next = cl_now_ms();
  uint64_t step_ms = (uint64_t)BATCH * 1000 / PER_WRITER_OPS;
  char val[16];
  memset(val, 'w', sizeof val);
  while (!atomic_load(&l->stop)) {
    int idx[BATCH];
    char keys[BATCH][16];
    slice ks[BATCH], vs[BATCH];
    for (int i = 0; i < BATCH; i++) idx[i] = l->pick();
    qsort(idx, BATCH, sizeof(idx[0]), cmp_int);
    for (int i = 0; i < BATCH; i++) {
      key_of(idx[i], keys[i], sizeof keys[i]);
      ks[i] = slice_from_str(keys[i]);
      vs[i] = slice_make(val, sizeof val);
    }
    mica_err *err = kvc_put_sorted(g_c, l->table, ks, vs, BATCH, 30000);
    if (err != NULL) {
      fprintf(stderr, "\nwriter on %s: %s\n", l->table, err_msg(err));
      err_free(err);
      atomic_store(&l->failed, 1);
      return NULL;
    }
    atomic_fetch_add(&l->ops, BATCH);
    next += step_ms;
    uint64_t now = cl_now_ms();
    if (next > now) cl_sleep_ms(next - now);
    else next = now; /* behind: do not burst to catch up */
  }
  return NULL;
}

static void load_start(load *l, pthread_t *th) {
  for (int i = 0; i < WRITERS; i++)
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, writer_main, l), 0);
}

static void load_stop(load *l, pthread_t *th) {
  atomic_store(&l->stop, true);
  for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
  CU_ASSERT_EQUAL(atomic_load(&l->failed), 0);
}

/* Tablets of `table` (retired ones too) by state: [state] counts. */
static void count_tablets(const char *table, size_t counts[8]) {
  memset(counts, 0, 8 * sizeof(counts[0]));
  rpc_list_tablets_request q = {0};
  q.table = table;
  q.include_retired = true;
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000, &m));
  const rpc_list_tablets_response *lt = (const void *)m;
  for (size_t i = 0; lt != NULL && i < lt->n_tablets; i++) {
    int s = lt->tablets[i].state;
    if (s >= 0 && s < 8) counts[s]++;
  }
  rpc_msg_free(m);
}

/* The events of `kind` whose text contains `text` (NULL: any), oldest
 * first; each text copied into out[] (at most max). */
static size_t events(const char *kind, const char *text, char out[][200],
                     size_t max) {
  rpc_list_events_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_events, &q, 5000, &m));
  const rpc_list_events_response *le = (const void *)m;
  size_t n = 0;
  for (size_t i = le ? le->n_events : 0; i-- > 0;) {
    const rpc_event *e = &le->events[i];
    if (strcmp(e->kind, kind) != 0) continue;
    if (text != NULL && strstr(e->text, text) == NULL) continue;
    if (n < max) snprintf(out[n], 200, "%s", e->text);
    n++;
  }
  rpc_msg_free(m);
  return n;
}

/* The split key a "load_split" event names (between its quotes). */
static bool event_key(const char *text, char *key, size_t cap) {
  const char *a = strchr(text, '"');
  const char *b = a ? strchr(a + 1, '"') : NULL;
  if (b == NULL || (size_t)(b - a - 1) >= cap) return false;
  memcpy(key, a + 1, (size_t)(b - a - 1));
  key[b - a - 1] = '\0';
  return true;
}

/* ---- hot range ---- */

/* 92% on k001700..k001799, the rest anywhere in k000000..k001999. */
static int pick_hot_range(void) {
  if (tu_rand_below(100) < 92) return 1700 + (int)tu_rand_below(100);
  return (int)tu_rand_below(2000);
}

static void test_hot_range(void) {
  preload("hr", 2000);
  /* A slow preload may itself have lasted a window (under sanitizers):
   * what counts is the first load split after the skew starts. */
  char text[32][200];
  size_t n0 = events("load_split", NULL, text, 32);
  load l = {.table = "hr", .pick = pick_hot_range};
  pthread_t th[WRITERS];
  uint64_t t0 = cl_now_ms();
  load_start(&l, th);
  size_t n = 0;
  while (cl_now_ms() < t0 + 30000) {
    n = events("load_split", NULL, text, 32);
    if (n > n0) break;
    cl_sleep_ms(200);
  }
  uint64_t took = cl_now_ms() - t0;
  load_stop(&l, th);
  fprintf(stderr, "\nhot range: split for load after %" PRIu64 " ms "
          "(%" PRIu64 " keys written)\n", took,
          (uint64_t)atomic_load(&l.ops));
  CU_ASSERT_FATAL(n > n0 && n0 < 32);
  /* The first load split since the skew began: inside the hot range. */
  char key[64];
  CU_ASSERT_FATAL(event_key(text[n0], key, sizeof key));
  fprintf(stderr, "first load split at %s: %s\n", key, text[n0]);
  CU_ASSERT(strcmp(key, "k001700") > 0);
  CU_ASSERT(strcmp(key, "k001800") < 0);
  size_t st[8];
  count_tablets("hr", st);
  CU_ASSERT(st[RPC_TABLET_SPLIT] >= 1);
  CU_ASSERT_EQUAL(st[RPC_TABLET_MERGED], 0);
}

/* ---- one hot key ---- */

static int pick_one_key(void) { return 250; }

static void test_hot_key(void) {
  preload("hk", 500);
  load l = {.table = "hk", .pick = pick_one_key};
  pthread_t th[WRITERS];
  uint64_t t0 = cl_now_ms();
  load_start(&l, th);
  char text[4][200];
  size_t n = 0;
  while (cl_now_ms() < t0 + 30000) {
    n = events("hot_key", "\"k000250\"", text, 4);
    if (n > 0) break;
    cl_sleep_ms(200);
  }
  uint64_t seen = cl_now_ms() - t0;
  /* Keep it hot for three more windows: still no split. */
  uint64_t until = cl_now_ms() + 3 * 2000 + 1000;
  while (cl_now_ms() < until) cl_sleep_ms(100);
  load_stop(&l, th);
  fprintf(stderr, "\nhot key reported after %" PRIu64 " ms\n", seen);
  CU_ASSERT_EQUAL_FATAL(n, 1); /* told once, not every window */
  CU_ASSERT_PTR_NOT_NULL(strstr(text[0], "write"));
  size_t st[8];
  count_tablets("hk", st);
  CU_ASSERT_EQUAL(st[RPC_TABLET_SPLIT], 0);
  CU_ASSERT_EQUAL(st[RPC_TABLET_SERVING], 1);
}

/* ---- no split-merge flapping ---- */

/* 90% on k000100..k000109, the rest anywhere in k000000..k000999. */
static int pick_skewed(void) {
  if (tu_rand_below(100) < 90) return 100 + (int)tu_rand_below(10);
  return (int)tu_rand_below(1000);
}

static void test_no_flapping(void) {
  const char *soak = getenv("MICA_SOAK");
  uint64_t run_ms = soak != NULL && strcmp(soak, "1") == 0 ? 120000 : 20000;
  preload("sk", 1000);
  load l = {.table = "sk", .pick = pick_skewed};
  pthread_t th[WRITERS];
  uint64_t t0 = cl_now_ms();
  load_start(&l, th);
  size_t st[8];
  size_t most = 0;
  while (cl_now_ms() < t0 + run_ms) {
    cl_sleep_ms(1000);
    count_tablets("sk", st);
    CU_ASSERT_EQUAL(st[RPC_TABLET_MERGED], 0);
    if (st[RPC_TABLET_MERGED] != 0) break;
    size_t cur = st[RPC_TABLET_SERVING] + st[RPC_TABLET_OPENING] +
                 st[RPC_TABLET_CLOSING] + st[RPC_TABLET_UNASSIGNED];
    if (cur > most) most = cur;
  }
  load_stop(&l, th);
  count_tablets("sk", st);
  fprintf(stderr, "\nskewed load for %" PRIu64 " s: %zu splits, %zu merges, "
          "at most %zu tablets\n", run_ms / 1000, st[RPC_TABLET_SPLIT],
          st[RPC_TABLET_MERGED], most);
  CU_ASSERT(st[RPC_TABLET_SPLIT] >= 1); /* the load did split it */
  CU_ASSERT_EQUAL(st[RPC_TABLET_MERGED], 0);
  /* Splits stop once every piece is below the threshold or one key: a
   * handful, not one per window. */
  CU_ASSERT(st[RPC_TABLET_SPLIT] <= 8);
  char text[1][200];
  CU_ASSERT_EQUAL(events("merge", NULL, text, 1), 0);
}

static int suite_init(void) {
  static const char *const margs[] = {
      "--load-split-ops", LOAD_OPS, "--load-split-window-ms", WINDOW_MS,
      "--merge-max-rate", "1000000000", "--merge-max-bytes", "1G",
      "--merge-min-age-ms", "500", NULL};
  cl_options o;
  cl_options_init(&o);
  o.master_args = margs;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("hotspot", suite_init, suite_clean);
  CU_add_test(s, "hot_range", test_hot_range);
  CU_add_test(s, "hot_key", test_hot_key);
  CU_add_test(s, "no_flapping", test_no_flapping);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
