/* mica-failover-bench: how long a kill -9 of the active master costs, on a
 * real loopback cluster: one ZooKeeper (tools/zk-test-server), three
 * `mica-master --zk` candidates, two tablet servers, and libmica writers
 * given only zk://.
 *
 * Per kill (KILLS of them, after STEADY seconds of steady load each):
 *   a  time from the SIGKILL of the active master to the first answered
 *      LookupTablets from one of the surviving candidates (each is asked
 *      directly over RPC every 20 ms, 200 ms deadline per call);
 *   b  time from the SIGKILL to the first successful admin change: a
 *      libmica client (zk://, retries every <= 50 ms) lists the tablets
 *      and splits the one holding the next split key;
 *   throughput of acknowledged puts from the kill to (b), and the worst
 *      whole second in that window, as fractions of the STEADY seconds
 *      before the kill.
 * The killed master is started again (as a supervisor would) before the
 * next kill. At the end every acknowledged put is read back by a full scan
 * with its value: "lost" counts those missing or wrong.
 *
 * Before the kills: LookupTablets/s answered by the active master with the
 * two standbys running and with them stopped, alternating, RUNS times
 * each (4 threads x 32 calls in flight, 3 s per run).
 *
 * Usage: mica-failover-bench [--session-ms N] [--kills N] [--writers N]
 *        [--steady S] [--lookup-runs N] [--lease-ms N]
 * (--lease-ms: the masters' and tablet servers' lease; default theirs,
 * 10 s. --control 1: nothing is killed; the same windows, as long as the
 * session, measure what the machine's load alone does to the ratios.)
 * MICA_BIN_DIR names the binaries; TMPDIR holds the cluster's files. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "mica/mica.h"
#include "proto/rpc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/proc.h"
#include "tests/harness/zkserver.h"

#define N_MASTERS 3
#define N_TS 2
#define MAX_WRITERS 8
#define MAX_PER_WRITER (8u << 20)
#define BUCKET_MS 100
#define MAX_BUCKETS 36000 /* one hour */
#define MAX_KILLS 100

static int g_session_ms = 3000, g_kills = 10, g_writers = 2, g_steady = 5;
static int g_lookup_runs = 3;
static int g_control = 0; /* 1: no kills, the same windows (noise) */
static int g_lease_ms = 0; /* 0: the processes' default (10 s) */
static char g_lease[16];

static zks *g_zk;
static char g_dir[512], g_root[600], g_logs[600], g_spec[320], g_zkc[300];

typedef struct master {
  th_proc *p;
  char out[700];
  char addr[128];
} master;
static master g_m[N_MASTERS];
static th_node g_ts[N_TS];

static void die(const char *what, mica_err *err) {
  if (err == NULL) return;
  fprintf(stderr, "failover-bench: %s: %s\n", what, err_msg(err));
  exit(1);
}

static void die_rc(const char *what, int rc) {
  if (rc == MICA_OK) return;
  fprintf(stderr, "failover-bench: %s: %s: %s\n", what, mica_code_name(rc),
          mica_errmsg());
  exit(1);
}

/* ---- masters ---- */

static bool file_has(const char *path, const char *needle, char *after,
                     size_t n) {
  buf f = BUF_INIT;
  mica_err *e = env_read_file(env_posix(), path, 1 << 20, &f);
  bool yes = false;
  if (e == NULL) {
    buf_push(&f, 0);
    const char *p = NULL, *q = (const char *)f.data;
    while ((q = strstr(q, needle)) != NULL) p = q++; /* the last one */
    if (p != NULL) {
      yes = true;
      if (after) sscanf(p + strlen(needle), "%127s", after);
      (void)n;
    }
  }
  err_free(e);
  buf_free(&f);
  return yes;
}

static void start_master(int i) {
  master *m = &g_m[i];
  char name[32], errp[700], bin[512], tmo[16];
  snprintf(name, sizeof name, "master-%d", i);
  snprintf(m->out, sizeof m->out, "%s/%s.out", g_logs, name);
  snprintf(errp, sizeof errp, "%s/%s.log", g_logs, name);
  /* A fresh stdout per start, so "listening" means this start. */
  remove(m->out);
  die("mica-master", th_bin("mica-master", bin, sizeof bin));
  snprintf(tmo, sizeof tmo, "%d", g_session_ms);
  const char *argv[] = {bin, "--data-dir", g_root, "--listen", "127.0.0.1:0",
                        "--zk", g_zkc, "--zk-session-ms", tmo,
                        g_lease_ms ? "--lease-ms" : NULL, g_lease, NULL};
  th_spawn s = {.name = name, .argv = argv, .out_path = m->out,
                .err_path = errp};
  th_proc_free(m->p);
  m->p = NULL;
  die("start master", th_proc_start(&s, &m->p));
  die("master standby", th_proc_wait_line(m->p, "standby ", 60000));
  file_has(m->out, "standby ", m->addr, sizeof m->addr);
}

static int active_master(void) {
  for (int i = 0; i < N_MASTERS; i++)
    if (g_m[i].p && th_proc_running(g_m[i].p) &&
        file_has(g_m[i].out, "listening ", NULL, 0))
      return i;
  return -1;
}

static int wait_active(void) {
  for (uint64_t until = th_now_ms() + 120000; th_now_ms() < until;
       th_sleep_ms(20)) {
    int a = active_master();
    if (a >= 0) return a;
  }
  fprintf(stderr, "failover-bench: no active master after 120 s\n");
  exit(1);
}

/* ---- writers ---- */

static atomic_bool g_stop;
static atomic_uint_fast64_t g_bucket[MAX_BUCKETS];
static uint64_t g_t_start;
static uint8_t *g_acked[MAX_WRITERS]; /* per writer, per sequence number */
static atomic_uint_fast64_t g_failed;
static uint32_t g_written[MAX_WRITERS];

static void kv(int w, uint32_t i, char *k, size_t kn, char *v, size_t vn) {
  snprintf(k, kn, "k%d-%08u", w, i);
  snprintf(v, vn, "v%d-%u", w, i * 7u + 3u);
}

static void *writer(void *arg) {
  int w = (int)(intptr_t)arg;
  mica_client *c = NULL;
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = 60000;
  die_rc("writer open", mica_open(g_spec, &o, &c));
  uint32_t i = 0;
  for (; !atomic_load(&g_stop) && i < MAX_PER_WRITER; i++) {
    char k[32], v[32];
    kv(w, i, k, sizeof k, v, sizeof v);
    int rc = mica_put(c, "t", k, strlen(k), v, strlen(v));
    if (rc == MICA_OK) {
      g_acked[w][i] = 1;
      uint64_t b = (th_now_ms() - g_t_start) / BUCKET_MS;
      if (b < MAX_BUCKETS) atomic_fetch_add(&g_bucket[b], 1);
    } else {
      fprintf(stderr, "writer %d: put %s: %s: %s\n", w, k, mica_code_name(rc),
              mica_errmsg());
      atomic_fetch_add(&g_failed, 1);
    }
  }
  g_written[w] = i;
  mica_close(c);
  return NULL;
}

/* Acknowledged puts per second over [from, to) (ms since g_t_start). */
static double ack_rate(uint64_t from, uint64_t to) {
  uint64_t n = 0, b0 = from / BUCKET_MS, b1 = to / BUCKET_MS;
  if (b1 <= b0) b1 = b0 + 1;
  for (uint64_t b = b0; b < b1 && b < MAX_BUCKETS; b++)
    n += atomic_load(&g_bucket[b]);
  return (double)n * 1000.0 / (double)((b1 - b0) * BUCKET_MS);
}

/* ---- LookupTablets ---- */

#define LK_THREADS 4
#define LK_WINDOW 32
#define LK_SECONDS 3

typedef struct lk_arg {
  rpc_channel *ch;
  uint64_t done, errors;
} lk_arg;

static void *lk_main(void *p) {
  lk_arg *a = p;
  rpc_async *as;
  die("rpc_async_new", rpc_async_new(&as));
  uint64_t until = th_now_ms() + LK_SECONDS * 1000;
  char key[32];
  rpc_lookup_tablets_request lq = {0};
  lq.table = "lk";
  lq.count = 1;
  uint64_t seq = (uint64_t)(uintptr_t)a * 7919;
  for (;;) {
    bool more = th_now_ms() < until;
    while (more && rpc_async_in_flight(as) < LK_WINDOW) {
      seq = seq * 6364136223846793005ull + 1442695040888963407ull;
      snprintf(key, sizeof key, "k%06u", (unsigned)(seq >> 33) % 1000000);
      lq.key.data = (uint8_t *)key;
      lq.key.len = strlen(key);
      die("rpc_async_start",
          rpc_async_start(as, a->ch, &rpc_m_master_lookup_tablets, &lq, 5000,
                          NULL));
    }
    if (!more && rpc_async_in_flight(as) == 0) break;
    void *tag, *resp;
    mica_err *err;
    if (rpc_async_next(as, 100, &tag, &resp, &err)) {
      if (err == NULL && cl_response_err(resp) == NULL) a->done++;
      else a->errors++;
      err_free(err);
      rpc_msg_free(resp);
    }
  }
  rpc_async_free(as);
  return NULL;
}

/* CPU seconds (user + system) process `pid` has used so far. */
static double cpu_s(pid_t pid) {
  char path[64], st[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(st, 1, sizeof st - 1, f);
  fclose(f);
  st[n] = '\0';
  const char *p = strrchr(st, ')'); /* after the command name */
  unsigned long long ut = 0, stime = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &stime) != 2)
    return 0;
  return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* The active master's CPU per answered lookup over the last lookup_rate
 * (microseconds), set by lookup_rate when given a pid. */
static double g_cpu_us_per_lookup;

static double lookup_rate_pid(const char *addr, pid_t pid, uint64_t *errors);

static double lookup_rate(const char *addr, uint64_t *errors) {
  return lookup_rate_pid(addr, 0, errors);
}

static double lookup_rate_pid(const char *addr, pid_t pid, uint64_t *errors) {
  double cpu0 = pid ? cpu_s(pid) : 0;
  rpc_channel *ch;
  die("channel", rpc_channel_new(addr, NULL, &ch));
  pthread_t th[LK_THREADS];
  lk_arg a[LK_THREADS];
  uint64_t t0 = th_now_ms();
  for (int i = 0; i < LK_THREADS; i++) {
    a[i] = (lk_arg){ch, 0, 0};
    pthread_create(&th[i], NULL, lk_main, &a[i]);
  }
  uint64_t total = 0;
  for (int i = 0; i < LK_THREADS; i++) {
    pthread_join(th[i], NULL);
    total += a[i].done;
    *errors += a[i].errors;
  }
  double r = (double)total * 1000.0 / (double)(th_now_ms() - t0);
  if (pid && total)
    g_cpu_us_per_lookup = (cpu_s(pid) - cpu0) * 1e6 / (double)total;
  rpc_channel_free(ch);
  return r;
}

/* One LookupTablets to `addr`, answered OK within 200 ms. */
static bool lookup_once(const char *addr) {
  rpc_channel *ch;
  if (rpc_channel_new(addr, NULL, &ch) != NULL) return false;
  rpc_lookup_tablets_request lq = {0};
  lq.table = "t";
  lq.count = 1;
  lq.key.data = (uint8_t *)"k0-";
  lq.key.len = 3;
  void *resp = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_master_lookup_tablets, &lq, 200, &resp);
  bool ok = e == NULL && cl_response_err(resp) == NULL;
  err_free(e);
  rpc_msg_free(resp);
  rpc_channel_free(ch);
  return ok;
}

/* ---- statistics ---- */

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of v[0..n) (sorted in place). */
static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  int k = (int)(p / 100.0 * n + 0.999999) - 1;
  if (k < 0) k = 0;
  if (k >= n) k = n - 1;
  return v[k];
}

static void dist(const char *what, double *v, int n, const char *unit) {
  double c[MAX_KILLS];
  memcpy(c, v, sizeof(double) * (size_t)n);
  printf("  %-34s median %7.2f  p90 %7.2f  max %7.2f %s\n", what,
         pct(c, n, 50), pct(c, n, 90), pct(c, n, 100), unit);
}

static bool flag(int argc, char **argv, int *i, const char *name, int *v,
                 int lo, int hi) {
  if (strcmp(argv[*i], name) != 0) return false;
  char *end;
  long x = *i + 1 < argc ? strtol(argv[*i + 1], &end, 10) : 0;
  if (*i + 1 >= argc || *end != '\0' || x < lo || x > hi) {
    fprintf(stderr, "failover-bench: %s wants a number in %d..%d\n", name, lo,
            hi);
    exit(2);
  }
  *v = (int)x;
  (*i)++;
  return true;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (flag(argc, argv, &i, "--session-ms", &g_session_ms, 1000, 60000) ||
        flag(argc, argv, &i, "--kills", &g_kills, 0, MAX_KILLS) ||
        flag(argc, argv, &i, "--writers", &g_writers, 1, MAX_WRITERS) ||
        flag(argc, argv, &i, "--steady", &g_steady, 1, 600) ||
        flag(argc, argv, &i, "--lookup-runs", &g_lookup_runs, 0, 20) ||
        flag(argc, argv, &i, "--lease-ms", &g_lease_ms, 2000, 600000) ||
        flag(argc, argv, &i, "--control", &g_control, 0, 1))
      continue;
    fprintf(stderr, "usage: mica-failover-bench [--session-ms N] [--kills N] "
            "[--writers N] [--steady S] [--lookup-runs N] [--lease-ms N] "
            "[--control 0|1]\n");
    return 2;
  }
  snprintf(g_lease, sizeof g_lease, "%d", g_lease_ms);
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(g_dir, sizeof g_dir, "%s/mica-failover-XXXXXX", tmp);
  if (mkdtemp(g_dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(g_root, sizeof g_root, "%s/root", g_dir);
  snprintf(g_logs, sizeof g_logs, "%s/logs", g_dir);
  die("mkdir", env_mkdirs(env_posix(), g_root));
  die("mkdir", env_mkdirs(env_posix(), g_logs));
  die("zookeeper", zks_start(1, &g_zk));
  snprintf(g_zkc, sizeof g_zkc, "%s/bench", zks_connect(g_zk));
  snprintf(g_spec, sizeof g_spec, "zk://%s", g_zkc);
  for (int i = 0; i < N_MASTERS; i++) start_master(i);
  int a = wait_active();
  for (int i = 0; i < N_TS; i++) {
    char name[32];
    snprintf(name, sizeof name, "tserver-%d", i);
    const char *args[] = {g_lease_ms ? "--lease-ms" : NULL, g_lease, NULL};
    th_node_opts o = {.prog = "mica-tserver", .name = name,
                      .data_dir = g_root, .log_dir = g_logs,
                      .master = g_spec, .args = args};
    die("tserver", th_node_start(&o, &g_ts[i]));
  }
  mica_client *adm = NULL;
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = 120000;
  o.backoff_initial_ms = 10;
  o.backoff_max_ms = 50;
  die_rc("open", mica_open(g_spec, &o, &adm));
  char sk[MAX_WRITERS][16];
  mica_key splits[MAX_WRITERS];
  for (int w = 1; w < g_writers; w++) {
    snprintf(sk[w], sizeof sk[w], "k%d", w);
    splits[w - 1] = (mica_key){sk[w], strlen(sk[w])};
  }
  die_rc("create t", mica_create_table(adm, "t", splits,
                                       (size_t)(g_writers - 1)));
  printf("failover bench: ZooKeeper session %d ms, lease %d ms, %d masters, "
         "%d tablet servers, %d writers, %d kills, %d s steady load before "
         "each\n", g_session_ms, g_lease_ms ? g_lease_ms : 10000, N_MASTERS,
         N_TS, g_writers, g_kills, g_steady);

  /* LookupTablets/s with the two standbys running and stopped. */
  if (g_lookup_runs > 0) {
    char lk[99][16];
    mica_key lks[99];
    for (int i = 0; i < 99; i++) {
      snprintf(lk[i], sizeof lk[i], "k%06d", (i + 1) * 10000);
      lks[i] = (mica_key){lk[i], strlen(lk[i])};
    }
    die_rc("create lk", mica_create_table(adm, "lk", lks, 99));
    double with[20], without[20], ratio[20], cw[20], cwo[20];
    pid_t apid = th_proc_pid(g_m[a].p);
    uint64_t errors = 0;
    uint64_t warm = 0;
    lookup_rate(g_m[a].addr, &warm); /* connections, caches: not counted */
    for (int r = 0; r < g_lookup_runs; r++) {
      /* The order alternates, so a drift of the machine's load over the
       * runs does not favour either side. */
      for (int phase = 0; phase < 2; phase++) {
        if ((phase == 0) == (r % 2 == 0)) {
          with[r] = lookup_rate_pid(g_m[a].addr, apid, &errors);
          cw[r] = g_cpu_us_per_lookup;
          continue;
        }
        for (int i = 0; i < N_MASTERS; i++)
          if (i != a)
            die("stop standby", th_proc_stop_clean(g_m[i].p, 15, 20000));
        without[r] = lookup_rate_pid(g_m[a].addr, apid, &errors);
        cwo[r] = g_cpu_us_per_lookup;
        for (int i = 0; i < N_MASTERS; i++)
          if (i != a) start_master(i);
        th_sleep_ms(2000); /* the new standbys settle: not measured */
      }
      ratio[r] = with[r] / without[r];
      printf("  lookups run %d: %.0f/s with 2 standbys, %.0f/s with none, "
             "ratio %.3f; active master's CPU per lookup %.1f us with, "
             "%.1f us without\n", r + 1, with[r], without[r], ratio[r],
             cw[r], cwo[r]);
    }
    double c1[20], c2[20], c3[20];
    memcpy(c1, with, sizeof with);
    memcpy(c2, without, sizeof without);
    memcpy(c3, ratio, sizeof ratio);
    printf("lookups: median %.0f/s with 2 standbys, %.0f/s with none, "
           "ratio %.3f (%d runs, errors %" PRIu64 ")\n",
           pct(c1, g_lookup_runs, 50), pct(c2, g_lookup_runs, 50),
           pct(c3, g_lookup_runs, 50), g_lookup_runs, errors);
    printf("lookups: active master's CPU per lookup, median %.1f us with 2 "
           "standbys, %.1f us with none\n", pct(cw, g_lookup_runs, 50),
           pct(cwo, g_lookup_runs, 50));
    fflush(stdout);
  }

  g_t_start = th_now_ms();
  for (int w = 0; w < g_writers; w++) g_acked[w] = xcalloc(MAX_PER_WRITER, 1);
  pthread_t th[MAX_WRITERS];
  for (int w = 0; w < g_writers; w++)
    pthread_create(&th[w], NULL, writer, (void *)(intptr_t)w);

  double ta[MAX_KILLS], tb[MAX_KILLS], tput[MAX_KILLS], worst[MAX_KILLS];
  if (g_kills == 0) g_steady = 1;
  for (int k = 0; k < g_kills; k++) {
    th_sleep_ms((uint64_t)g_steady * 1000);
    a = wait_active();
    uint64_t t0 = th_now_ms();
    if (g_control) {
      /* The same windows with nothing killed: what the machine's load
       * alone does to the ratios. */
      th_sleep_ms((uint64_t)g_session_ms);
      uint64_t rel = t0 - g_t_start, len = (uint64_t)g_session_ms;
      double before = ack_rate(rel - (uint64_t)g_steady * 1000, rel);
      double during = ack_rate(rel, rel + len), w1 = -1;
      for (uint64_t s = rel; s + 1000 <= rel + len; s += BUCKET_MS) {
        double r = ack_rate(s, s + 1000);
        if (w1 < 0 || r < w1) w1 = r;
      }
      ta[k] = tb[k] = len / 1000.0;
      tput[k] = before > 0 ? during / before : 0;
      worst[k] = before > 0 ? (w1 < 0 ? during : w1) / before : 0;
      printf("  control %2d: no kill; puts/s before %.0f, next %.1f s %.0f "
             "(%.0f%%), worst second %.0f%%\n", k + 1, before, len / 1000.0,
             during, 100 * tput[k], 100 * worst[k]);
      fflush(stdout);
      continue;
    }
    die("kill", th_proc_kill(g_m[a].p));
    /* (a) a surviving candidate answers LookupTablets. */
    uint64_t t_a = 0;
    while (t_a == 0) {
      for (int i = 0; i < N_MASTERS && t_a == 0; i++)
        if (i != a && lookup_once(g_m[i].addr)) t_a = th_now_ms() - t0;
      if (t_a == 0) th_sleep_ms(20);
      if (th_now_ms() - t0 > 120000) {
        fprintf(stderr, "failover-bench: no lookup answered 120 s after "
                "kill %d\n", k + 1);
        exit(1);
      }
    }
    /* (b) the first admin change: a split at the next key of writer 0. */
    char key[32];
    snprintf(key, sizeof key, "k0-%08u", (unsigned)(k + 1) * 2000u);
    int rc;
    for (;;) {
      mica_tablet_info *tabs = NULL;
      size_t nt = 0;
      uint64_t id = 0;
      rc = mica_list_tablets(adm, "t", &tabs, &nt);
      for (size_t i = 0; rc == MICA_OK && i < nt; i++) {
        slice s = slice_make(tabs[i].start_key, tabs[i].start_len);
        slice e = slice_make(tabs[i].end_key, tabs[i].end_len);
        slice kk = slice_from_str(key);
        if (slice_cmp(s, kk) <= 0 &&
            (e.len == 0 || slice_cmp(kk, e) < 0))
          id = tabs[i].tablet_id;
      }
      mica_free(tabs);
      uint64_t d[2];
      if (rc == MICA_OK && id != 0)
        rc = mica_split_tablet(adm, id, key, strlen(key), d);
      if (rc == MICA_OK) break;
      if (th_now_ms() - t0 > 120000) die_rc("split after the kill", rc);
      th_sleep_ms(20);
    }
    uint64_t t_b = th_now_ms() - t0;
    uint64_t rel = t0 - g_t_start;
    double before = ack_rate(rel - (uint64_t)g_steady * 1000, rel);
    double during = ack_rate(rel, rel + (t_b < 1000 ? 1000 : t_b));
    double w1 = -1;
    for (uint64_t s = rel; s + 1000 <= rel + (t_b < 1000 ? 1000 : t_b);
         s += BUCKET_MS) {
      double r = ack_rate(s, s + 1000);
      if (w1 < 0 || r < w1) w1 = r;
    }
    if (getenv("MICA_FAILOVER_TRACE") != NULL) {
      th_sleep_ms(1100);
      /* Acknowledged puts per 100 ms from 1 s before the kill to 1 s
       * after (b), for looking at where a dip falls. */
      printf("  trace (puts per 100 ms from kill-1s; a=%" PRIu64 " b=%"
             PRIu64 " ms):", t_a, t_b);
      for (uint64_t b = (rel - 1000) / BUCKET_MS;
           b <= (rel + t_b + 1000) / BUCKET_MS && b < MAX_BUCKETS; b++)
        printf(" %" PRIu64, (uint64_t)atomic_load(&g_bucket[b]));
      printf("\n");
    }
    ta[k] = t_a / 1000.0;
    tb[k] = t_b / 1000.0;
    tput[k] = before > 0 ? during / before : 0;
    worst[k] = before > 0 ? (w1 < 0 ? during : w1) / before : 0;
    printf("  kill %2d: lookup after %.2f s, split after %.2f s; puts/s "
           "before %.0f, during %.0f (%.0f%%), worst second %.0f%%\n",
           k + 1, ta[k], tb[k], before, during, 100 * tput[k],
           100 * worst[k]);
    fflush(stdout);
    start_master(a); /* as a supervisor would */
  }
  th_sleep_ms(1000);
  atomic_store(&g_stop, true);
  for (int w = 0; w < g_writers; w++) pthread_join(th[w], NULL);

  /* Every acknowledged put, read back by a scan. */
  uint64_t acked = 0, found = 0, wrong = 0;
  uint8_t *seen[MAX_WRITERS];
  for (int w = 0; w < g_writers; w++) {
    seen[w] = xcalloc(MAX_PER_WRITER, 1);
    for (uint32_t i = 0; i < g_written[w]; i++) acked += g_acked[w][i];
  }
  mica_scanner *sc = NULL;
  die_rc("scan", mica_scan_open(adm, "t", NULL, &sc));
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    die_rc("scan next", mica_scan_next(sc, &has, &k, &kl, &v, &vl));
    if (!has) break;
    char ks[40], want_k[32], want_v[32];
    int w;
    unsigned i;
    if (kl >= sizeof ks) continue;
    memcpy(ks, k, kl);
    ks[kl] = 0;
    if (sscanf(ks, "k%d-%8u", &w, &i) != 2 || w < 0 || w >= g_writers ||
        i >= MAX_PER_WRITER)
      continue;
    kv(w, i, want_k, sizeof want_k, want_v, sizeof want_v);
    if (strcmp(ks, want_k) != 0) continue;
    if (vl != strlen(want_v) || memcmp(v, want_v, vl) != 0) wrong++;
    else seen[w][i] = 1;
  }
  mica_scan_close(sc);
  uint64_t lost = 0;
  for (int w = 0; w < g_writers; w++)
    for (uint32_t i = 0; i < g_written[w]; i++)
      if (g_acked[w][i] && !seen[w][i]) lost++;
  for (int w = 0; w < g_writers; w++)
    for (uint32_t i = 0; i < g_written[w]; i++) found += seen[w][i];

  printf("failover, ZooKeeper session %d ms, %d kills:\n", g_session_ms,
         g_kills);
  if (g_kills > 0) {
    dist("(a) kill -> LookupTablets answered", ta, g_kills, "s");
    dist("(b) kill -> first split committed", tb, g_kills, "s");
    double tp[MAX_KILLS], wo[MAX_KILLS];
    for (int k = 0; k < g_kills; k++) {
      tp[k] = 100 * tput[k];
      wo[k] = 100 * worst[k];
    }
    dist("puts/s kill..(b) vs before", tp, g_kills, "%");
    dist("worst second kill..(b) vs before", wo, g_kills, "%");
  }
  printf("  puts acknowledged %" PRIu64 ", read back %" PRIu64 ", lost %"
         PRIu64 ", wrong value %" PRIu64 ", failed (not acknowledged) %"
         PRIu64 "\n", acked, found, lost, wrong,
         (uint64_t)atomic_load(&g_failed));
  mica_close(adm);
  for (int i = 0; i < N_TS; i++) th_node_clear(&g_ts[i]);
  for (int i = 0; i < N_MASTERS; i++) th_proc_free(g_m[i].p);
  zks_destroy(g_zk);
  for (int w = 0; w < g_writers; w++) {
    free(g_acked[w]);
    free(seen[w]);
  }
  char *rm[] = {"rm", "-rf", g_dir, NULL};
  th_result r;
  if (th_run((const char *const *)rm, NULL, NULL, 0, &r) == NULL)
    th_result_free(&r);
  return lost == 0 && wrong == 0 ? 0 : 1;
}
