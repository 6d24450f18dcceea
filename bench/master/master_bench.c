/* mica-master-bench: the master's figures, measured on a real cluster of
 * processes on loopback (tests/harness/cluster.h).
 *
 *   lookups   LookupTablets answered per second by the master, from
 *             THREADS threads keeping WINDOW calls in flight each; the peer
 *             is the same load of Echo calls on an in-process RPC server
 *             (the transport's own ceiling on this machine).
 *   split     time from a SplitTablet request to both daughters serving,
 *             for a tablet of SMALL MiB and of LARGE MiB; the peer of the
 *             large one is the small one (a split by reference should not
 *             care about size).
 *   move      unavailability of a tablet during a move under 64 reading
 *             clients: per move, the longest any client request to it
 *             waited (retries included); the peer is the p99 request time
 *             with no move.
 *   failover  time from kill -9 of a tablet server to all its tablets
 *             serving elsewhere; the peer is lease + margin.
 *
 * Each figure is the median of RUNS runs. MICA_BIN_DIR names the binaries.
 * Usage: mica-master-bench [lookups|split|move|failover|all] [--runs N]
 *        [--small MB] [--large MB] */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "proto/rpc.h"
#include "tests/harness/cluster.h"
#include "tests/cluster/kvc.h"

static int g_runs = 3;
static int g_small_mb = 10, g_large_mb = 100;

static void die(const char *what, mica_err *err) {
  if (err == NULL) return;
  fprintf(stderr, "%s: %s\n", what, err_msg(err));
  exit(1);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- lookups ---- */

#define THREADS 4
#define WINDOW 32
#define SECONDS 3

typedef struct lk_arg {
  rpc_channel *ch;
  const rpc_method *m;
  bool echo;
  uint64_t done;
  uint64_t errors;
} lk_arg;

static void *lk_main(void *p) {
  lk_arg *a = p;
  rpc_async *as;
  die("rpc_async_new", rpc_async_new(&as));
  uint64_t until = cl_now_ms() + SECONDS * 1000;
  char key[32];
  rpc_lookup_tablets_request lq = {0};
  lq.table = "lk";
  lq.count = 1;
  rpc_echo_request eq = {0};
  uint64_t seq = (uint64_t)(uintptr_t)a * 7919;
  for (;;) {
    bool more = cl_now_ms() < until;
    while (more && rpc_async_in_flight(as) < WINDOW) {
      seq = seq * 6364136223846793005ull + 1442695040888963407ull;
      snprintf(key, sizeof(key), "k%06u", (unsigned)(seq >> 33) % 1000000);
      lq.key.data = (uint8_t *)key;
      lq.key.len = strlen(key);
      eq.payload = lq.key;
      die("rpc_async_start",
          rpc_async_start(as, a->ch, a->m,
                          a->echo ? (const void *)&eq : (const void *)&lq,
                          5000, NULL));
    }
    if (!more && rpc_async_in_flight(as) == 0) break;
    void *tag;
    void *resp;
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

static double rate(rpc_channel *ch, const rpc_method *m, bool echo,
                   uint64_t *errors) {
  pthread_t th[THREADS];
  lk_arg a[THREADS];
  uint64_t t0 = cl_now_ms();
  for (int i = 0; i < THREADS; i++) {
    a[i] = (lk_arg){ch, m, echo, 0, 0};
    pthread_create(&th[i], NULL, lk_main, &a[i]);
  }
  uint64_t total = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    total += a[i].done;
    *errors += a[i].errors;
  }
  return (double)total * 1000.0 / (double)(cl_now_ms() - t0);
}

static void bench_lookups(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  cluster *c;
  die("cluster", cl_start(&o, &c));
  slice keys[99];
  char kb[99][16];
  for (int i = 0; i < 99; i++) {
    snprintf(kb[i], sizeof(kb[i]), "k%06d", (i + 1) * 10000);
    keys[i] = slice_from_str(kb[i]);
  }
  die("create", kvc_create_table(c, "lk", keys, 99));
  rpc_server *echo;
  rpc_server_opts so = {0};
  so.threads = 2;
  die("echo server", rpc_server_new(&so, &echo));
  die("echo register", rpc_echo_register(echo));
  die("echo start", rpc_server_start(echo));
  rpc_channel *ech;
  die("echo channel", rpc_channel_new(rpc_server_address(echo), NULL, &ech));
  double lk[16], ec[16], ratio[16];
  uint64_t errors = 0;
  for (int r = 0; r < g_runs; r++) {
    lk[r] = rate(cl_master_channel(c), &rpc_m_master_lookup_tablets, false,
                 &errors);
    ec[r] = rate(ech, &rpc_m_echo_echo, true, &errors);
    ratio[r] = lk[r] / ec[r];
    printf("  run %d: lookups/s %.0f, echo/s %.0f, ratio %.2f\n", r + 1,
           lk[r], ec[r], ratio[r]);
  }
  printf("lookups: median %.0f lookups/s (100 tablets, %d threads x %d in "
         "flight), echo peer %.0f/s, ratio %.2f, errors %" PRIu64 "\n",
         median(lk, g_runs), THREADS, WINDOW, median(ec, g_runs),
         median(ratio, g_runs), errors);
  rpc_channel_free(ech);
  rpc_server_free(echo);
  cl_free(c);
}

/* ---- split ---- */

static void load(cluster *c, const char *table, int mb, const char *prefix) {
  enum { BATCH = 256, VAL = 1024 };
  char *vbuf = xmalloc(VAL);
  memset(vbuf, 'v', VAL);
  char (*kb)[32] = xmalloc(BATCH * sizeof(*kb));
  slice keys[BATCH], vals[BATCH];
  uint64_t n = (uint64_t)mb * 1024;
  for (uint64_t base = 0; base < n; base += BATCH) {
    size_t k = 0;
    for (uint64_t i = base; i < base + BATCH && i < n; i++, k++) {
      snprintf(kb[k], sizeof(kb[k]), "%s%010" PRIu64, prefix, i);
      keys[k] = slice_from_str(kb[k]);
      vals[k] = slice_make(vbuf, VAL);
    }
    die("load", kvc_put_sorted(c, table, keys, vals, k, 60000));
  }
  free(kb);
  free(vbuf);
}

/* Splits `table`'s only tablet at its middle; ms until both daughters
 * serve (as lookups show them with locations). */
static double split_once(cluster *c, const char *table) {
  rpc_lookup_tablets_response *lr;
  die("lookup", kvc_lookup(c, table, slice_from_str(""), 1, false, &lr));
  uint64_t id = lr->tablets[0].desc->tablet_id;
  rpc_msg_free(lr);
  rpc_split_tablet_request q = {0};
  q.tablet_id = id;
  uint64_t t0 = env_now_micros(env_posix());
  die("split", cl_call_master(c, &rpc_m_master_split_tablet, &q, 60000,
                              NULL));
  for (;;) {
    die("lookup", kvc_lookup(c, table, slice_from_str(""), 2, false, &lr));
    bool ok = lr->n_tablets == 2 && lr->tablets[0].location &&
              lr->tablets[1].location;
    rpc_msg_free(lr);
    if (ok) break;
  }
  return (double)(env_now_micros(env_posix()) - t0) / 1000.0;
}

static void bench_split(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  static const char *const margs[] = {"--merge", "off", NULL};
  o.master_args = margs;
  cluster *c;
  die("cluster", cl_start(&o, &c));
  double small[16], large[16];
  for (int r = 0; r < g_runs; r++) {
    char t[32];
    snprintf(t, sizeof(t), "small%d", r);
    die("create", kvc_create_table(c, t, NULL, 0));
    load(c, t, g_small_mb, "s");
    small[r] = split_once(c, t);
    snprintf(t, sizeof(t), "large%d", r);
    die("create", kvc_create_table(c, t, NULL, 0));
    load(c, t, g_large_mb, "l");
    large[r] = split_once(c, t);
    printf("  run %d: %d MiB %.1f ms, %d MiB %.1f ms\n", r + 1, g_small_mb,
           small[r], g_large_mb, large[r]);
  }
  double ms = median(small, g_runs), ml = median(large, g_runs);
  printf("split: median %.1f ms (%d MiB) and %.1f ms (%d MiB), ratio %.2f\n",
         ms, g_small_mb, ml, g_large_mb, ml / ms);
  cl_free(c);
}

/* ---- move ---- */

#define MOVE_CLIENTS 64

typedef struct mv_state {
  cluster *c;
  atomic_bool stop;
  pthread_mutex_t mu;
  double *lat;   /* ms of every request with no move in progress */
  size_t n_lat, cap_lat;
  uint64_t win_start, win_end; /* µs; the move being measured */
  double win_max;              /* longest request overlapping the window */
  bool in_window;
} mv_state;

static void *mv_client(void *p) {
  mv_state *s = p;
  buf v = BUF_INIT;
  uint64_t seq = (uint64_t)(uintptr_t)&v;
  while (!atomic_load(&s->stop)) {
    seq = seq * 6364136223846793005ull + 1442695040888963407ull;
    char k[32];
    snprintf(k, sizeof(k), "m%010u", (unsigned)(seq >> 33) % 2000);
    bool found;
    uint64_t t0 = env_now_micros(env_posix());
    mica_err *err = kvc_get(s->c, "mv", slice_from_str(k), &found, &v, 30000);
    uint64_t t1 = env_now_micros(env_posix());
    err_free(err);
    double ms = (double)(t1 - t0) / 1000.0;
    pthread_mutex_lock(&s->mu);
    if (s->in_window || (s->win_end && t1 >= s->win_start && t0 <= s->win_end)) {
      if (t1 >= s->win_start && ms > s->win_max) s->win_max = ms;
    } else {
      if (s->n_lat == s->cap_lat) {
        s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 4096;
        s->lat = xrealloc(s->lat, s->cap_lat * sizeof(*s->lat));
      }
      s->lat[s->n_lat++] = ms;
    }
    pthread_mutex_unlock(&s->mu);
  }
  buf_free(&v);
  return NULL;
}

static void bench_move(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  o.master_args = margs;
  cluster *c;
  die("cluster", cl_start(&o, &c));
  die("create", kvc_create_table(c, "mv", NULL, 0));
  load(c, "mv", 2, "m");
  mv_state s = {0};
  s.c = c;
  pthread_mutex_init(&s.mu, NULL);
  pthread_t th[MOVE_CLIENTS];
  for (int i = 0; i < MOVE_CLIENTS; i++)
    pthread_create(&th[i], NULL, mv_client, &s);
  cl_sleep_ms(1000);
  int moves = g_runs * 3;
  double un[64];
  for (int r = 0; r < moves && r < 64; r++) {
    rpc_lookup_tablets_response *lr;
    die("lookup", kvc_lookup(c, "mv", slice_from_str(""), 1, false, &lr));
    rpc_move_tablet_request q = {0};
    q.tablet_id = lr->tablets[0].desc->tablet_id;
    rpc_msg_free(lr);
    pthread_mutex_lock(&s.mu);
    s.win_start = env_now_micros(env_posix());
    s.win_end = 0;
    s.win_max = 0;
    s.in_window = true;
    pthread_mutex_unlock(&s.mu);
    die("move", cl_call_master(c, &rpc_m_master_move_tablet, &q, 60000,
                               NULL));
    pthread_mutex_lock(&s.mu);
    s.in_window = false;
    s.win_end = env_now_micros(env_posix());
    pthread_mutex_unlock(&s.mu);
    /* Requests that started during the move finish within a few seconds. */
    cl_sleep_ms(1500);
    pthread_mutex_lock(&s.mu);
    un[r] = s.win_max;
    s.win_end = 0;
    pthread_mutex_unlock(&s.mu);
    printf("  move %d: longest request %.1f ms\n", r + 1, un[r]);
  }
  atomic_store(&s.stop, true);
  for (int i = 0; i < MOVE_CLIENTS; i++) pthread_join(th[i], NULL);
  qsort(s.lat, s.n_lat, sizeof(*s.lat), cmp_double);
  double p99 = s.n_lat ? s.lat[s.n_lat * 99 / 100] : 0;
  double mx_un = 0;
  for (int r = 0; r < moves; r++) mx_un = un[r] > mx_un ? un[r] : mx_un;
  double med = median(un, moves);
  printf("move: unavailability median %.1f ms, max %.1f ms over %d moves "
         "(%d clients); p99 request without a move %.1f ms (%zu requests); "
         "ratio median/p99 %.1f\n", med, mx_un, moves, MOVE_CLIENTS, p99,
         s.n_lat, p99 > 0 ? med / p99 : 0);
  free(s.lat);
  pthread_mutex_destroy(&s.mu);
  cl_free(c);
}

/* ---- failover ---- */

static void bench_failover(void) {
  cl_options o;
  cl_options_init(&o);
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  o.master_args = margs;
  cluster *c;
  die("cluster", cl_start(&o, &c));
  slice keys[] = {slice_from_str("b"), slice_from_str("d"),
                  slice_from_str("f"), slice_from_str("h"),
                  slice_from_str("j")};
  die("create", kvc_create_table(c, "fo", keys, 5));
  double t[16];
  double limit = (double)(o.lease_ms + o.lease_margin_ms);
  for (int r = 0; r < g_runs; r++) {
    uint64_t victim = cl_tserver_id(c, 0);
    /* Give the victim tablets: move two onto it. */
    for (int k = 0; k < 2; k++) {
      rpc_lookup_tablets_response *lr;
      die("lookup", kvc_lookup(c, "fo", keys[k * 2], 1, false, &lr));
      rpc_move_tablet_request q = {0};
      q.tablet_id = lr->tablets[0].desc->tablet_id;
      q.target_server_id = victim;
      bool there = lr->tablets[0].location &&
                   lr->tablets[0].location->server_id == victim;
      rpc_msg_free(lr);
      for (int tries = 0; !there; tries++) {
        /* A tablet still opening after the create answers UNAVAILABLE. */
        mica_err *err = cl_call_master(c, &rpc_m_master_move_tablet, &q,
                                       60000, NULL);
        if (err == NULL) break;
        if (err_code(err) != MICA_UNAVAILABLE || tries > 200) die("move", err);
        err_free(err);
        cl_sleep_ms(20);
      }
    }
    uint64_t t0 = env_now_micros(env_posix());
    die("kill", cl_kill_tserver(c, 0));
    for (;;) {
      rpc_lookup_tablets_response *lr;
      die("lookup", kvc_lookup(c, "fo", slice_from_str(""), 10, false, &lr));
      bool ok = lr->n_tablets == 6;
      for (size_t i = 0; i < lr->n_tablets && ok; i++)
        ok = lr->tablets[i].location &&
             lr->tablets[i].location->server_id != victim;
      rpc_msg_free(lr);
      if (ok) break;
      cl_sleep_ms(5);
    }
    t[r] = (double)(env_now_micros(env_posix()) - t0) / 1000.0;
    printf("  run %d: %.0f ms\n", r + 1, t[r]);
    die("restart", cl_restart_tserver(c, 0));
  }
  double m = median(t, g_runs);
  printf("failover: median %.0f ms from kill -9 to all tablets serving "
         "elsewhere; lease + margin %.0f ms, ratio %.2f; goal lease + 2 s = "
         "%" PRIu64 " ms\n", m, limit, m / limit, o.lease_ms + 2000);
  cl_free(c);
}

int main(int argc, char **argv) {
  const char *what = "all";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      g_runs = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--small") == 0 && i + 1 < argc) {
      g_small_mb = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--large") == 0 && i + 1 < argc) {
      g_large_mb = atoi(argv[++i]);
    } else if (argv[i][0] != '-') {
      what = argv[i];
    } else {
      fprintf(stderr, "usage: mica-master-bench [lookups|split|move|failover"
              "|all] [--runs N] [--small MB] [--large MB]\n");
      return 2;
    }
  }
  if (g_runs < 1 || g_runs > 16 || g_small_mb < 1 || g_large_mb < 1) {
    fprintf(stderr, "mica-master-bench: --runs 1..16, sizes >= 1\n");
    return 2;
  }
  bool all = strcmp(what, "all") == 0;
  if (all || strcmp(what, "lookups") == 0) bench_lookups();
  if (all || strcmp(what, "failover") == 0) bench_failover();
  if (all || strcmp(what, "move") == 0) bench_move();
  if (all || strcmp(what, "split") == 0) bench_split();
  return 0;
}
