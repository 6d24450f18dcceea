/* mhttp_bench: how long HTTP requests hold the master core's mutex, next
 * to the core's own listing of every tablet (ms_list_tablets), on a
 * cluster of many tablets.
 *
 *   mhttp_bench DIR [TABLETS_PER_TABLE]
 *
 * Two tables of N tablets each (default 10000) on two servers, with
 * figures and an hour of load history (60 heartbeats a minute apart, so
 * every tablet has a row in each of the 60 one-minute buckets). For each
 * operation, median of 3 runs of 50 calls (10 for the heat map), in
 * microseconds per call, and its ratio to ms_list_tablets(all). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/http/mh_int.h"
#include "tests/master/http/hfix.h"

static void check(mica_err *err, const char *what) {
  if (err == NULL) return;
  fprintf(stderr, "mhttp_bench: %s: %s\n", what, err_msg(err));
  exit(1);
}

static uint64_t g_round; /* heartbeats so far: the counters grow with it */

static void stats_of(const ms_tablet *t, ms_stats *out, void *ctx) {
  (void)ctx;
  out->reads = g_round * (t->tablet_id % 97);
  out->writes = g_round * (t->tablet_id % 13);
  out->read_bytes = 100 * out->reads;
  out->write_bytes = 100 * out->writes;
  out->bytes = t->tablet_id * 4096;
  out->keys = t->tablet_id;
  out->read_rate = 1;
  out->write_rate = 1;
}

static hfix F;

static void op_list(void) {
  ms_tablet_list l = {NULL, 0};
  check(ms_list_tablets(F.m, NULL, false, &l), "list");
  ms_tablet_list_free(&l);
}

static void snap(int which) {
  ms_snap s;
  ms_snapshot(F.m, hfix_now(&F), 0, which, "t0", &s);
  ms_snap_free(&s);
}
static void op_none(void) { snap(MS_SNAP_NO_TABLETS); }
static void op_moving(void) { snap(MS_SNAP_MOVING_TABLETS); }
static void op_table(void) { snap(MS_SNAP_TABLE_TABLETS); }

static void heat(const char *table, size_t limit, bool history) {
  ms_heat_snap s;
  ms_heat_snapshot(F.m, hfix_now(&F), table, limit, history, &s);
  ms_heat_snap_free(&s);
}
static void op_hot(void) { heat(NULL, 20, false); }
static void op_hot_table(void) { heat("t0", 20, false); }
static void op_heatmap(void) { heat("t0", 1, true); }

static int g_calls = 50;

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_us(void (*op)(void)) {
  double runs[3];
  for (int r = 0; r < 3; r++) {
    uint64_t t0 = env_now_micros(env_posix());
    for (int i = 0; i < g_calls; i++) op();
    runs[r] = (double)(env_now_micros(env_posix()) - t0) / g_calls;
  }
  qsort(runs, 3, sizeof(runs[0]), cmp_d);
  return runs[1];
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mhttp_bench DIR [TABLETS_PER_TABLE]\n");
    return 2;
  }
  size_t n = argc > 2 ? (size_t)atol(argv[2]) : 10000;
  if (n < 2 || n > 10001) n = 10000;
  ms_options o;
  ms_options_init(&o);
  o.data_root = argv[1];
  o.lease_us = 3600ull * 1000000;
  o.lease_margin_us = 1000000;
  o.max_split_keys = n; /* above the default cap of one CreateTable */
  check(hfix_open_with(&F, &o), "open");
  bool off = false;
  check(ms_configure(F.m, &off, &off, NULL, NULL), "configure");
  int s[2];
  check(hfix_register(&F, "127.0.0.1:1", &s[0]), "register");
  check(hfix_register(&F, "127.0.0.1:2", &s[1]), "register");
  char (*keys)[16] = calloc(n, 16);
  slice *sk = calloc(n, sizeof(*sk));
  for (size_t i = 0; i + 1 < n; i++) {
    snprintf(keys[i], 16, "k%08zu", i + 1);
    sk[i] = slice_from_str(keys[i]);
  }
  check(ms_create_table(F.m, "t0", sk, n - 1, hfix_now(&F), NULL), "t0");
  check(ms_create_table(F.m, "t1", sk, n - 1, hfix_now(&F), NULL), "t1");
  check(hfix_settle(&F, 1000, SIZE_MAX), "settle");
  for (g_round = 0; g_round <= 60; g_round++) {
    uint64_t t0 = env_now_micros(env_posix());
    check(hfix_heartbeat(&F, s[0], stats_of, NULL), "hb");
    check(hfix_heartbeat(&F, s[1], stats_of, NULL), "hb");
    if (g_round == 60)
      printf("2 heartbeats of %zu tablets each (listing them included): "
             "%.1f ms\n", n, (double)(env_now_micros(env_posix()) - t0) / 1e3);
    hfix_advance(&F, 60ull * 1000000);
  }

  static const struct {
    const char *name;
    void (*op)(void);
  } ops[] = {
      {"ms_list_tablets(all) [peer]", op_list},
      {"snapshot: no tablets (servers, tables, metrics)", op_none},
      {"snapshot: tablets in transition (cluster)", op_moving},
      {"snapshot: one table's tablets", op_table},
      {"heat: hot list, every table (/api/hot)", op_hot},
      {"heat: hot list of one table (/api/hot?table=)", op_hot_table},
      {"heat: one table's hour of history (/api/heatmap)", op_heatmap},
  };
  double base = 0;
  printf("%zu tablets in 2 tables; us per call, median of 3 x 50 (heat map: "
         "3 x 10)\n", 2 * n);
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
    g_calls = ops[i].op == op_heatmap ? 10 : 50;
    double us = median_us(ops[i].op);
    if (i == 0) base = us;
    printf("%-50s %10.1f us  ratio %.2f\n", ops[i].name, us, us / base);
  }
  free(keys);
  free(sk);
  hfix_close(&F);
  return 0;
}
