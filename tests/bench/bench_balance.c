/* bench_balance: the load-aware balancer under a skewed YCSB-style load
 * (docs/benchmarks.md, "Load-aware balancing"). Not a test: run by hand,
 *
 *   MICA_BIN_DIR=build/bin build/bin/bench_balance [SECONDS] [THREADS] [SCENARIO]
 *   MICA_BIN_DIR=build/bin build/bin/bench_balance --stop-gap
 *
 * For each scenario and each balancer mode (off, then auto) in one run,
 * it starts a fresh loopback cluster of a master and three tablet
 * servers, loads 10,000 records of 100 bytes into "usertable", places the
 * hot range's tablets all on the first server, and runs THREADS client
 * threads (libmica, 50% reads / 50% updates) for SECONDS, 90% of the
 * operations on the first 1% of the keys (YCSB's hotspot distribution
 * with hot set 0.01 and hot-operation fraction 0.9). Scenarios:
 *   one-tablet  the hot range is one tablet (what moves alone cannot
 *               spread: a load split's job);
 *   six-tablets the hot range pre-split into six tablets (what a load
 *               split leaves: daughters on their parent's server);
 *   load-split  the hot range is one tablet, and load-based split is on
 *               along with the balancer (off: both off), at OPS ops/s over
 *               WINDOW_MS (arguments 4 and 5; defaults 3000 and 10000,
 *               the master's own): split and spread together.
 * Every 2 s it prints the busiest server's load over the mean (the rates
 * the master's heartbeats carry) and the client throughput; at the end
 * the time until the ratio stays within 1.25, the moves made, the median
 * throughput, and the tablet servers' CPU per operation (/proc).
 *
 * --stop-gap: a planned stop. Readers loop on one key of every tablet of
 * the second server, which is stopped with SIGTERM, three times with the
 * drain (--drain-timeout-ms 20000) and three times without; it prints the
 * longest time any reader went without an answer. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mica/mica.h"
#include "tests/harness/cluster.h"

#define RECORDS 10000
#define HOT (RECORDS / 100)

static cluster *g_c;
static atomic_uint_fast64_t g_ops, g_errs;
static atomic_bool g_stop;

static void key_of(int i, char *k) { sprintf(k, "user%06d", i); }

static void die(const char *what, mica_err *e) {
  fprintf(stderr, "bench_balance: %s: %s\n", what, e ? err_msg(e) : "");
  exit(1);
}

typedef struct worker {
  pthread_t th;
  uint64_t seed;
} worker;

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void *work(void *arg) {
  worker *w = arg;
  mica_options o;
  mica_options_init(&o);
  mica_client *c = NULL;
  if (mica_open(cl_master_address(g_c), &o, &c) != MICA_OK) return NULL;
  char k[16], v[100];
  memset(v, 'v', sizeof(v));
  while (!atomic_load(&g_stop)) {
    uint64_t r = next_rand(&w->seed);
    int i = r % 10 < 9 ? (int)((r >> 8) % HOT)
                       : HOT + (int)((r >> 8) % (RECORDS - HOT));
    key_of(i, k);
    int code;
    if ((r >> 40) & 1) {
      code = mica_put(c, "usertable", k, strlen(k), v, sizeof(v));
    } else {
      void *val = NULL;
      size_t len = 0;
      code = mica_get(c, "usertable", k, strlen(k), &val, &len);
      mica_free(val);
    }
    atomic_fetch_add(code == MICA_OK ? &g_ops : &g_errs, 1);
  }
  mica_close(c);
  return NULL;
}

static double load_ratio(void) {
  rpc_list_servers_request q = {0};
  void *m = NULL;
  mica_err *e = cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000, &m);
  if (e) die("ListServers", e);
  const rpc_list_servers_response *r = m;
  double sum = 0, max = 0;
  for (size_t i = 0; i < r->n_servers; i++) {
    double l = r->servers[i].read_rate + r->servers[i].write_rate;
    sum += l;
    if (l > max) max = l;
  }
  double ratio = sum > 0 ? max / (sum / (double)r->n_servers) : 0;
  rpc_msg_free(m);
  return ratio;
}

/* Events of `kind` whose text contains `with` and not `without` (NULL:
 * no condition): how many, and the earliest one's wall-clock ms in *first
 * (0 = none) unless `first` is NULL. */
static size_t events(const char *kind, const char *with, const char *without,
                     uint64_t *first) {
  rpc_list_events_request q = {0};
  void *m = NULL;
  mica_err *e = cl_call_master(g_c, &rpc_m_master_list_events, &q, 5000, &m);
  if (e) die("ListEvents", e);
  const rpc_list_events_response *r = m;
  size_t n = 0;
  uint64_t t = 0;
  for (size_t i = 0; i < r->n_events; i++) {
    const char *text = r->events[i].text;
    if (strcmp(r->events[i].kind, kind) != 0 ||
        (with && strstr(text, with) == NULL) ||
        (without && strstr(text, without) != NULL))
      continue;
    n++;
    if (t == 0 || r->events[i].time_ms < t) t = r->events[i].time_ms;
  }
  rpc_msg_free(m);
  if (first) *first = t;
  return n;
}

/* The balancer's own moves (an operator's say "operator request"). */
static size_t balancer_moves(uint64_t *first) {
  return events("move", "moving from", "operator request", first);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* utime + stime of process `pid`, in seconds. */
static double cpu_s(pid_t pid) {
  char path[64], line[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(line, 1, sizeof(line) - 1, f);
  fclose(f);
  line[n] = 0;
  char *p = strrchr(line, ')');
  unsigned long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
             &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double ts_cpu(void) {
  double s = 0;
  for (int i = 0; i < cl_tserver_count(g_c); i++)
    s += cpu_s(cl_tserver_pid(g_c, i));
  return s;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Scenario "load-split": load-based split's thresholds (NULL: the
 * other scenarios, load split off). */
static const char *g_ls_ops, *g_ls_window;

/* Starts the cluster of `o` (heartbeat 500 ms, lease 5 s) into g_c and
 * opens a client to it. */
static mica_client *start(cl_options *o) {
  o->heartbeat_ms = 500;
  o->lease_ms = 5000;
  mica_err *e = cl_start(o, &g_c);
  if (e) die("starting the cluster", e);
  mica_options mo;
  mica_options_init(&mo);
  mica_client *c = NULL;
  if (mica_open(cl_master_address(g_c), &mo, &c) != MICA_OK) die("open", NULL);
  return c;
}

/* Appends the split key before record `i` to splits[*n]. */
static void add_split(char (*sk)[16], mica_key *splits, size_t *n, int i) {
  key_of(i, sk[*n]);
  splits[*n] = (mica_key){sk[*n], strlen(sk[*n])};
  (*n)++;
}

static void run(bool split_hot, bool balance, int seconds, int threads) {
  cl_options o;
  cl_options_init(&o);
  /* Load split is on only with the balancer in "load-split"; the hot
   * tablet (100 keys) takes too few of the preload's puts to be hot. */
  bool ls = g_ls_ops != NULL && balance;
  const char *margs[] = {"--merge", "off", "--balancer", "off",
                         "--load-split", ls ? "on" : "off",
                         "--load-split-ops", ls ? g_ls_ops : "3000",
                         "--load-split-window-ms",
                         ls ? g_ls_window : "10000", NULL};
  o.master_args = margs;
  mica_client *c = start(&o);
  /* Tablets: the hot range [0, HOT) as one or six, then six more. */
  char sk[24][16];
  mica_key splits[24];
  size_t ns = 0;
  int hot_parts = split_hot ? 6 : 1;
  for (int p = 1; p <= hot_parts; p++)
    add_split(sk, splits, &ns, p * HOT / hot_parts);
  /* Cold tablets: enough that the counts can be even with the hot ones
   * on one server, so only the load tells the servers apart. */
  int cold_parts = split_hot ? 9 : 6;
  for (int p = 1; p < cold_parts; p++)
    add_split(sk, splits, &ns, HOT + p * (RECORDS - HOT) / cold_parts);
  if (mica_create_table(c, "usertable", splits, ns) != MICA_OK)
    die(mica_errmsg(), NULL);
  char k[16], v[100];
  memset(v, 'v', sizeof(v));
  for (int i = 0; i < RECORDS; i++) {
    key_of(i, k);
    if (mica_put(c, "usertable", k, strlen(k), v, sizeof(v)) != MICA_OK)
      die(mica_errmsg(), NULL);
  }
  /* The hot tablets all on the first server; each cold one on the server
   * with the fewest tablets so far, so the tablet counts stay within the
   * balancer's band (6 / 5 / 4 and 3 / 2 / 2): a count-only balancer would
   * have nothing to do. */
  uint64_t sid[3];
  int count[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) sid[i] = cl_tserver_id(g_c, i);
  mica_tablet_info *t = NULL;
  size_t nt = 0;
  if (mica_list_tablets(c, "usertable", &t, &nt) != MICA_OK)
    die(mica_errmsg(), NULL);
  for (size_t i = 0; i < nt; i++) {
    int to = 0;
    if (i >= (size_t)hot_parts)
      for (int s = 1; s < 3; s++)
        if (count[s] < count[to]) to = s;
    count[to]++;
    if (t[i].server_id != sid[to] &&
        mica_move_tablet(c, t[i].tablet_id, sid[to]) != MICA_OK)
      die(mica_errmsg(), NULL);
  }
  mica_free(t);
  /* The load phase's rates fade first (servers average over ~5 s), so the
   * balancer sees only the benchmark's own load. */
  cl_sleep_ms(8000);
  if (balance && mica_set_balancer_mode(c, "auto", NULL) != MICA_OK)
    die(mica_errmsg(), NULL);

  atomic_store(&g_ops, 0);
  atomic_store(&g_errs, 0);
  atomic_store(&g_stop, false);
  worker *w = calloc((size_t)threads, sizeof(*w));
  double cpu0 = ts_cpu();
  uint64_t t0 = cl_now_ms(), wall0 = wall_ms();
  for (int i = 0; i < threads; i++) {
    w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    pthread_create(&w[i].th, NULL, work, &w[i]);
  }
  if (g_ls_ops != NULL)
    printf("\nload-split (%s ops/s over %s ms), load split and balancer "
           "%s:\n  t(s)  busiest/mean  ops/s\n", g_ls_ops, g_ls_window,
           balance ? "on" : "off");
  else
    printf("\n%s, balancer %s:\n  t(s)  busiest/mean  ops/s\n",
           split_hot ? "six-tablets" : "one-tablet",
           balance ? "auto" : "off");
  double rates[512];
  int nr = 0;
  uint64_t last_ops = 0, within_since = 0;
  bool within = false;
  double ratio = 0;
  for (int s = 2; s <= seconds; s += 2) {
    cl_sleep_ms(2000);
    uint64_t ops = atomic_load(&g_ops);
    double rate = (double)(ops - last_ops) / 2.0;
    last_ops = ops;
    ratio = load_ratio();
    if (nr < 512) rates[nr++] = rate;
    if (ratio <= 1.25 && !within) {
      within = true;
      within_since = (uint64_t)s;
    } else if (ratio > 1.25) {
      within = false;
    }
    printf("  %4d  %12.2f  %6.0f\n", s, ratio, rate);
    fflush(stdout);
  }
  atomic_store(&g_stop, true);
  for (int i = 0; i < threads; i++) pthread_join(w[i].th, NULL);
  double cpu = ts_cpu() - cpu0;
  uint64_t ops = atomic_load(&g_ops);
  qsort(rates, (size_t)nr, sizeof(rates[0]), cmp_d);
  char since[48] = "never", first[48] = "none";
  if (within) snprintf(since, sizeof(since), "%" PRIu64 " s", within_since);
  uint64_t fm = 0;
  size_t moves = balancer_moves(&fm);
  if (fm)
    snprintf(first, sizeof(first), "%.1f s",
             ((double)fm - (double)wall0) / 1000);
  printf("  first balancer move after %s\n", first);
  uint64_t fs = 0;
  size_t nls = events("load_split", NULL, NULL, &fs);
  if (fs)
    printf("  load splits %zu, the first after %.1f s\n", nls,
           ((double)fs - (double)wall0) / 1000);
  else
    printf("  load splits 0\n");
  printf("  summary: final busiest/mean %.2f; within 1.25x from %s; "
         "balancer moves %zu; median %.0f ops/s; %" PRIu64 " errors; "
         "tablet servers %.1f us CPU/op (%.0f ms in %.1f s)\n", ratio,
         since, moves, nr ? rates[nr / 2] : 0,
         (uint64_t)atomic_load(&g_errs), ops ? cpu * 1e6 / (double)ops : 0,
         cpu * 1000, (double)(cl_now_ms() - t0) / 1000);
  free(w);
  mica_close(c);
  cl_free(g_c);
  g_c = NULL;
}

/* ---- planned stop: the client-observed gap ---- */

typedef struct reader {
  pthread_t th;
  int key;
  uint64_t max_gap_ms;
} reader;

static void *read_loop(void *arg) {
  reader *r = arg;
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = 60000;
  mica_client *c = NULL;
  if (mica_open(cl_master_address(g_c), &o, &c) != MICA_OK) return NULL;
  char k[16];
  key_of(r->key, k);
  uint64_t last = cl_now_ms();
  while (!atomic_load(&g_stop)) {
    void *val = NULL;
    size_t len = 0;
    int code = mica_get(c, "usertable", k, strlen(k), &val, &len);
    mica_free(val);
    uint64_t now = cl_now_ms();
    if (code == MICA_OK) {
      if (now - last > r->max_gap_ms) r->max_gap_ms = now - last;
      last = now;
    }
  }
  mica_close(c);
  return NULL;
}

/* One reader per tablet of the second server, which is then stopped with
 * SIGTERM (draining first when `drain_ms` > 0); the longest time any
 * reader went without an answer. */
static void stop_gap(uint64_t drain_ms) {
  cl_options o;
  cl_options_init(&o);
  o.drain_timeout_ms = drain_ms;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  o.master_args = margs;
  mica_client *c = start(&o);
  char sk[8][16];
  mica_key splits[8];
  size_t ns = 0;
  for (int i = 0; i < 8; i++) add_split(sk, splits, &ns, (i + 1) * 100);
  if (mica_create_table(c, "usertable", splits, ns) != MICA_OK)
    die(mica_errmsg(), NULL);
  char k[16];
  for (int i = 0; i < 900; i++) {
    key_of(i, k);
    if (mica_put(c, "usertable", k, strlen(k), "v", 1) != MICA_OK)
      die(mica_errmsg(), NULL);
  }
  uint64_t victim = cl_tserver_id(g_c, 1);
  mica_tablet_info *t = NULL;
  size_t nt = 0;
  if (mica_list_tablets(c, "usertable", &t, &nt) != MICA_OK)
    die(mica_errmsg(), NULL);
  reader rd[9];
  int nr = 0;
  for (size_t i = 0; i < nt && nr < 9; i++)
    if (t[i].server_id == victim) rd[nr++] = (reader){.key = (int)i * 100 + 50};
  mica_free(t);
  atomic_store(&g_stop, false);
  for (int i = 0; i < nr; i++) pthread_create(&rd[i].th, NULL, read_loop, &rd[i]);
  cl_sleep_ms(2000);
  uint64_t t0 = cl_now_ms();
  mica_err *e = cl_stop_tserver(g_c, 1);
  uint64_t stop_ms = cl_now_ms() - t0;
  if (e) die("stopping", e);
  cl_sleep_ms(drain_ms ? 2000 : 9000);
  atomic_store(&g_stop, true);
  uint64_t worst = 0;
  for (int i = 0; i < nr; i++) {
    pthread_join(rd[i].th, NULL);
    if (rd[i].max_gap_ms > worst) worst = rd[i].max_gap_ms;
  }
  printf("stop with%s drain: %d tablets, SIGTERM to exit %" PRIu64 " ms, "
         "longest client gap %" PRIu64 " ms (lease %" PRIu64 " ms)\n",
         drain_ms ? "" : "out", nr, stop_ms, worst, o.lease_ms);
  fflush(stdout);
  mica_close(c);
  cl_free(g_c);
  g_c = NULL;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--stop-gap") == 0) {
    for (int i = 0; i < 3; i++) {
      stop_gap(20000);
      stop_gap(0);
    }
    return 0;
  }
  int seconds = argc > 1 ? atoi(argv[1]) : 60;
  int threads = argc > 2 ? atoi(argv[2]) : 8;
  if (seconds < 2 || seconds > 900 || threads < 1 || threads > 256) {
    fprintf(stderr, "usage: bench_balance [SECONDS 2..900] [THREADS 1..256]"
            "\n");
    return 2;
  }
  /* Optional third argument: only "one-tablet" or "six-tablets", or
   * "load-split" [OPS [WINDOW_MS]]. */
  const char *only = argc > 3 ? argv[3] : NULL;
  if (only && strcmp(only, "load-split") == 0) {
    g_ls_ops = argc > 4 ? argv[4] : "3000";
    g_ls_window = argc > 5 ? argv[5] : "10000";
    for (int on = 0; on < 2; on++) run(false, on, seconds, threads);
    return 0;
  }
  for (int split = 0; split < 2; split++) {
    if (only && strcmp(only, split ? "six-tablets" : "one-tablet") != 0)
      continue;
    for (int bal = 0; bal < 2; bal++) run(split, bal, seconds, threads);
  }
  return 0;
}
