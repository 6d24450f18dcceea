/* mica-tserver-bench: throughput and latency of a real mica-tserver against
 * the transport's own limit, in one run.
 *
 * It starts mica-tserver (from --bin-dir) on 127.0.0.1:0 over a fresh data
 * root, opens one tablet, loads --keys keys with --value-size values, then
 * measures for --seconds each, at each concurrency of --inflight:
 *   echo    Echo with a value-sized payload, served by the same process and
 *           threads (the RPC module's own limit on this machine)
 *   get     Get of a random loaded key
 *   put     durable Put (acknowledged after its WAL record is synced) of a
 *           random key
 *   scan100 Scan of 100 rows from a random key
 * Unary calls are kept in flight by one client thread (rpc_async); scans by
 * one thread per stream. Before that it measures this file system's
 * fdatasync rate (1 KiB append + sync, in a loop, on the data root), the
 * peer of the durable Put figure: group commit should let 64 writers share
 * each sync. Prints ops/s, p50, p99 and the server's CPU per operation
 * (user + system time of the mica-tserver process over the phase, from
 * /proc/PID/stat, in clock ticks of 10 ms) and the server threads'
 * voluntary context switches per operation (from /proc/PID/task/N/status:
 * how often a thread slept to wait, i.e. the wake-ups a request costs) per
 * phase, and the goal ratios.
 * --client threads replaces the one async client thread by one thread per
 * call in flight, each with a blocking call: the shape of libmica's users
 * and of mica-bench's YCSB workers. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "proto/auth.h"
#include "proto/rpc.h"

static const char usage_text[] =
    "usage: mica-tserver-bench [flags]\n"
    "\n"
    "  --bin-dir DIR       where mica-tserver is (default: this program's "
    "directory)\n"
    "  --data-dir DIR      data root for the server (default: a new "
    "directory in /tmp,\n"
    "                      removed afterwards)\n"
    "  --seconds N         seconds per phase (default 3)\n"
    "  --inflight A,B      concurrencies to measure (default 1,64)\n"
    "  --value-size N      value and echo payload bytes (default 1024)\n"
    "  --keys N            keys loaded before reading (default 50000)\n"
    "  --ops LIST          phases to run, of echo,get,put,scan100 (default "
    "all)\n"
    "  --server-threads N  the server's --threads (RPC polling threads; "
    "default 0,\n"
    "                      one per core)\n"
    "  --client MODE       unary calls from one thread with that many in "
    "flight\n"
    "                      (async, the default) or from that many threads "
    "each\n"
    "                      with one blocking call (threads: libmica's and "
    "mica-bench's\n"
    "                      shape)\n"
    "  --help              this text\n"
    "\n"
    "example:\n"
    "  mica-tserver-bench --seconds 5 --inflight 1,16,64\n"
    "  mica-tserver-bench --ops echo,get --inflight 16 --client threads\n";

static env *E;

static uint64_t now_us(void) { return env_now_micros(E); }

/* ---- latency samples ---- */

typedef struct samples {
  uint32_t *v; /* microseconds */
  size_t n, cap;
} samples;

static void sample_add(samples *s, uint64_t us) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 4096;
    s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t pct(samples *s, double p) {
  if (s->n == 0) return 0;
  size_t i = (size_t)(p * (double)(s->n - 1));
  return s->v[i];
}

/* ---- the server process ---- */

static pid_t server_pid;

static void kill_server(void) {
  if (server_pid > 0) {
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = 0;
  }
}

static mica_err *start_server(const char *bin_dir, const char *data_dir,
                              const char *threads, char *addr,
                              size_t addr_len) {
  char exe[1100], afile[1100], logf[1100];
  snprintf(exe, sizeof exe, "%s/mica-tserver", bin_dir);
  snprintf(afile, sizeof afile, "%s/bench.addr", data_dir);
  snprintf(logf, sizeof logf, "%s/tserver.log", data_dir);
  err_free(env_remove(E, afile));
  atexit(kill_server);
  pid_t pid = fork();
  if (pid < 0) return err_new(MICA_INTERNAL, "fork failed");
  if (pid == 0) {
    int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) dup2(fd, 2);
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0) dup2(nul, 1);
    execl(exe, exe, "--data-dir", data_dir, "--address-file", afile,
          "--memory-budget", "512M", "--threads", threads, (char *)NULL);
    _exit(127);
  }
  server_pid = pid;
  for (int i = 0; i < 400; i++) {
    buf b = BUF_INIT;
    mica_err *e = env_read_file(E, afile, 256, &b);
    if (e == NULL && b.len > 1 && b.data[b.len - 1] == '\n') {
      size_t n = b.len - 1 < addr_len - 1 ? b.len - 1 : addr_len - 1;
      memcpy(addr, b.data, n);
      addr[n] = '\0';
      buf_free(&b);
      return NULL;
    }
    err_free(e);
    buf_free(&b);
    env_sleep_micros(E, 50000);
  }
  return err_new(MICA_UNAVAILABLE, "%s did not start (see %s)", exe, logf);
}

/* User + system CPU seconds the server process has used so far (all its
 * threads), or -1 when /proc cannot tell. */
static double server_cpu_s(void) {
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)server_pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  /* The command name in parentheses may hold spaces: count fields after
   * its closing parenthesis (field 2). utime and stime are fields 14, 15. */
  char *p = strrchr(line, ')');
  if (p == NULL) return -1;
  unsigned long long ut = 0, st = 0;
  if (sscanf(p + 2,
             "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
             &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Voluntary context switches of all the server's threads so far (each one
 * a thread going to sleep to wait: the hand-offs between threads that a
 * request costs), or -1 when /proc cannot tell. Threads that ended are
 * not counted, so phases compare only while the server's threads live. */
static double server_waits(void) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", (int)server_pid);
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  double total = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char path[128], line[256];
    snprintf(path, sizeof path, "%s/%.32s/status", dir, de->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue; /* the thread ended meanwhile */
    while (fgets(line, sizeof line, f) != NULL) {
      unsigned long long v;
      if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
        total += (double)v;
    }
    fclose(f);
  }
  closedir(d);
  return total;
}

/* ---- fsync rate ---- */

static double fsync_rate(const char *dir, double seconds) {
  char path[1024];
  snprintf(path, sizeof path, "%s/fsync-probe", dir);
  env_writer *w = NULL;
  mica_err *e = env_open_writer(E, path, ENV_TRUNCATE, &w);
  uint8_t block[1024];
  memset(block, 'f', sizeof block);
  uint64_t start = now_us(), n = 0;
  while (e == NULL && now_us() - start < (uint64_t)(seconds * 1e6)) {
    e = env_append(w, block, sizeof block);
    if (e == NULL) e = env_sync(w);
    n++;
  }
  double secs = (double)(now_us() - start) / 1e6;
  if (e != NULL) {
    fprintf(stderr, "fsync probe: %s\n", err_msg(e));
    err_free(e);
  }
  err_free(env_writer_close(w));
  err_free(env_remove(E, path));
  return (double)n / secs;
}

/* ---- workloads ---- */

enum { OP_ECHO, OP_GET, OP_PUT, OP_SCAN, OP_COUNT_ };
static const char *op_names[] = {"echo", "get", "put", "scan100"};

typedef struct bench_cfg {
  rpc_channel *ch;
  uint64_t keys;
  size_t value_size;
  double seconds;
  uint8_t *value;
} bench_cfg;

static const rpc_tablet_ref *tablet_ref(void) {
  static rpc_tablet_ref ref = {0};
  ref.tablet_id = 1;
  ref.range_epoch = 1;
  ref.assign_epoch = 1;
  return &ref;
}

static int key_of(uint64_t i, char *out) {
  return snprintf(out, 32, "key%010" PRIu64, i);
}

/* Per-call state of an async unary call. */
typedef struct slot {
  uint64_t started;
  char key[32];
  union {
    rpc_echo_request echo;
    rpc_get_request get;
    rpc_put_request put;
  } req;
} slot;

/* Fills s->req with the next request of `op` (a random key) and returns
 * its method. */
static const rpc_method *fill_call(bench_cfg *c, int op, slot *s,
                                   uint64_t *rng) {
  *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
  int kl = key_of((*rng >> 33) % c->keys, s->key);
  slice key = slice_make(s->key, (size_t)kl);
  slice val = slice_make(c->value, c->value_size);
  switch (op) {
    case OP_ECHO:
      memset(&s->req.echo, 0, sizeof s->req.echo);
      s->req.echo.payload = val;
      return &rpc_m_echo_echo;
    case OP_GET:
      memset(&s->req.get, 0, sizeof s->req.get);
      s->req.get.tablet = (rpc_tablet_ref *)tablet_ref();
      s->req.get.key = key;
      return &rpc_m_ts_get;
    default:
      memset(&s->req.put, 0, sizeof s->req.put);
      s->req.put.tablet = (rpc_tablet_ref *)tablet_ref();
      s->req.put.key = key;
      s->req.put.value = val;
      return &rpc_m_ts_put;
  }
}

static mica_err *start_call(bench_cfg *c, int op, slot *s, rpc_async *a,
                            uint64_t *rng) {
  const rpc_method *m = fill_call(c, op, s, rng);
  s->started = now_us();
  return rpc_async_start(a, c->ch, m, &s->req, 30000, s);
}

/* The Status of a response of `op`. */
static const rpc_status *status_of(int op, void *m) {
  switch (op) {
    case OP_ECHO:
      return ((rpc_echo_response *)m)->status;
    case OP_GET:
      return ((rpc_get_response *)m)->status;
    default:
      return ((rpc_put_response *)m)->status;
  }
}

static mica_err *run_unary(bench_cfg *c, int op, int inflight, samples *lat,
                           double *ops_per_s) {
  rpc_async *a = NULL;
  mica_err *e = rpc_async_new(&a);
  if (e != NULL) return e;
  slot *slots = xcalloc((size_t)inflight, sizeof(*slots));
  uint64_t rng = 0x1234567u + (uint64_t)op * 77 + (uint64_t)inflight;
  uint64_t start = now_us(), end = start + (uint64_t)(c->seconds * 1e6);
  uint64_t done = 0;
  for (int i = 0; i < inflight && e == NULL; i++)
    e = start_call(c, op, &slots[i], a, &rng);
  while (e == NULL && rpc_async_in_flight(a) > 0) {
    void *tag = NULL;
    void *m = NULL;
    mica_err *ce = NULL;
    if (!rpc_async_next(a, 10000, &tag, &m, &ce)) {
      e = err_new(MICA_DEADLINE_EXCEEDED, "no call completed in 10 s");
      break;
    }
    slot *s = tag;
    uint64_t t = now_us();
    if (ce == NULL) ce = rpc_status_err(status_of(op, m));
    rpc_msg_free(m);
    if (ce != NULL) {
      e = ce;
      break;
    }
    sample_add(lat, t - s->started);
    done++;
    if (t < end) e = start_call(c, op, s, a, &rng);
  }
  *ops_per_s = (double)done / ((double)(now_us() - start) / 1e6);
  rpc_async_free(a);
  free(slots);
  return e;
}

/* One client thread of --client threads: blocking calls of `op` back to
 * back until end_us. */
typedef struct unary_thread {
  bench_cfg *c;
  int op;
  uint64_t end_us, seed, done;
  samples lat;
  mica_err *err;
} unary_thread;

static void *unary_main(void *p) {
  unary_thread *ut = p;
  uint64_t rng = ut->seed;
  slot s;
  while (ut->err == NULL && now_us() < ut->end_us) {
    const rpc_method *m = fill_call(ut->c, ut->op, &s, &rng);
    uint64_t t0 = now_us();
    void *resp = NULL;
    mica_err *e = rpc_unary(ut->c->ch, m, &s.req, 30000, &resp);
    if (e == NULL) e = rpc_status_err(status_of(ut->op, resp));
    rpc_msg_free(resp);
    if (e != NULL) {
      ut->err = e;
      break;
    }
    sample_add(&ut->lat, now_us() - t0);
    ut->done++;
  }
  return NULL;
}

static mica_err *run_unary_threads(bench_cfg *c, int op, int nthreads,
                                   samples *lat, double *ops_per_s) {
  unary_thread *ts = xcalloc((size_t)nthreads, sizeof(*ts));
  pthread_t *th = xcalloc((size_t)nthreads, sizeof(*th));
  uint64_t start = now_us();
  int started = 0;
  for (int i = 0; i < nthreads; i++) {
    ts[i].c = c;
    ts[i].op = op;
    ts[i].end_us = start + (uint64_t)(c->seconds * 1e6);
    ts[i].seed = 0x1234567u + (uint64_t)op * 77 + (uint64_t)i * 1000003;
    if (pthread_create(&th[i], NULL, unary_main, &ts[i]) != 0) break;
    started++;
  }
  uint64_t done = 0;
  mica_err *e = started < nthreads
                    ? err_new(MICA_INTERNAL, "cannot start client thread %d",
                              started)
                    : NULL;
  for (int i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    done += ts[i].done;
    for (size_t j = 0; j < ts[i].lat.n; j++) sample_add(lat, ts[i].lat.v[j]);
    free(ts[i].lat.v);
    if (e == NULL)
      e = ts[i].err;
    else
      err_free(ts[i].err);
  }
  *ops_per_s = (double)done / ((double)(now_us() - start) / 1e6);
  free(ts);
  free(th);
  return e;
}

typedef struct scan_thread {
  bench_cfg *c;
  uint64_t end_us, seed, done;
  samples lat;
  mica_err *err;
} scan_thread;

static void *scan_main(void *p) {
  scan_thread *st = p;
  uint64_t rng = st->seed;
  char key[32];
  while (st->err == NULL && now_us() < st->end_us) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    int kl = key_of((rng >> 33) % st->c->keys, key);
    rpc_scan_request req = {0};
    req.tablet = (rpc_tablet_ref *)tablet_ref();
    req.start_key.data = (uint8_t *)key;
    req.start_key.len = (size_t)kl;
    req.limit = 100;
    uint64_t t0 = now_us();
    rpc_stream *s = NULL;
    mica_err *e = rpc_stream_open(st->c->ch, &rpc_m_ts_scan, &req, 30000,
                                  &s);
    while (e == NULL) {
      void *m = NULL;
      e = rpc_stream_next(s, &m);
      if (m == NULL) break;
      if (e == NULL) e = rpc_status_err(((rpc_scan_chunk *)m)->status);
      rpc_msg_free(m);
    }
    rpc_stream_free(s);
    if (e != NULL) {
      st->err = e;
      break;
    }
    sample_add(&st->lat, now_us() - t0);
    st->done++;
  }
  return NULL;
}

static mica_err *run_scan(bench_cfg *c, int inflight, samples *lat,
                          double *ops_per_s) {
  scan_thread *ts = xcalloc((size_t)inflight, sizeof(*ts));
  pthread_t *th = xcalloc((size_t)inflight, sizeof(*th));
  uint64_t start = now_us();
  for (int i = 0; i < inflight; i++) {
    ts[i].c = c;
    ts[i].end_us = start + (uint64_t)(c->seconds * 1e6);
    ts[i].seed = 99 + (uint64_t)i * 1000003;
    pthread_create(&th[i], NULL, scan_main, &ts[i]);
  }
  uint64_t done = 0;
  mica_err *e = NULL;
  for (int i = 0; i < inflight; i++) {
    pthread_join(th[i], NULL);
    done += ts[i].done;
    for (size_t j = 0; j < ts[i].lat.n; j++) sample_add(lat, ts[i].lat.v[j]);
    free(ts[i].lat.v);
    if (e == NULL)
      e = ts[i].err;
    else
      err_free(ts[i].err);
  }
  *ops_per_s = (double)done / ((double)(now_us() - start) / 1e6);
  free(ts);
  free(th);
  return e;
}

static mica_err *load(bench_cfg *c) {
  const size_t per = 500;
  rpc_mutation *muts = xcalloc(per, sizeof(*muts));
  char (*keys)[32] = xcalloc(per, 32);
  mica_err *e = NULL;
  for (uint64_t i = 0; i < c->keys && e == NULL;) {
    size_t k = 0;
    for (; k < per && i < c->keys; k++, i++) {
      memset(&muts[k], 0, sizeof muts[k]);
      muts[k].kind = RPC_MUTATION_PUT;
      muts[k].key.len = (size_t)key_of(i, keys[k]);
      muts[k].key.data = (uint8_t *)keys[k];
      muts[k].value.len = c->value_size;
      muts[k].value.data = c->value;
    }
    rpc_batch_request req = {0};
    req.tablet = (rpc_tablet_ref *)tablet_ref();
    req.mutations = muts;
    req.n_mutations = k;
    void *m = NULL;
    e = rpc_unary(c->ch, &rpc_m_ts_batch, &req, 60000, &m);
    if (e == NULL) e = rpc_status_err(((rpc_batch_response *)m)->status);
    rpc_msg_free(m);
  }
  free(muts);
  free(keys);
  return e;
}

static mica_err *open_tablet(bench_cfg *c) {
  rpc_open_tablet_request req = {0};
  rpc_tablet_descriptor d = {0};
  d.tablet_id = 1;
  d.table_id = 1;
  d.table_name = "bench";
  d.range_epoch = 1;
  req.desc = &d;
  req.assign_epoch = 1;
  void *m = NULL;
  mica_err *e = rpc_unary(c->ch, &rpc_m_ts_open_tablet, &req, 60000, &m);
  if (e == NULL)
    e = rpc_status_err(((rpc_open_tablet_response *)m)->status);
  rpc_msg_free(m);
  return e;
}

static void usage_exit(const char *why, const char *arg) {
  fprintf(stderr, "mica-tserver-bench: %s%s\n\n%s", why, arg, usage_text);
  exit(2);
}

int main(int argc, char **argv) {
  E = env_posix();
  signal(SIGPIPE, SIG_IGN);
  char bin_dir[1024];
  snprintf(bin_dir, sizeof bin_dir, "%s", argv[0]);
  char *slash = strrchr(bin_dir, '/');
  if (slash)
    *slash = '\0';
  else
    snprintf(bin_dir, sizeof bin_dir, ".");
  const char *data_dir = NULL;
  int inflight[8] = {1, 64};
  int n_inflight = 2;
  bool run_op[OP_COUNT_] = {true, true, true, true};
  bool threads_client = false;
  const char *server_threads = "0";
  bench_cfg c;
  memset(&c, 0, sizeof(c));
  c.keys = 50000;
  c.value_size = 1024;
  c.seconds = 3;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      return 0;
    }
    if (i + 1 >= argc) usage_exit("missing value or unknown flag: ", a);
    const char *v = argv[++i];
    if (strcmp(a, "--bin-dir") == 0) {
      snprintf(bin_dir, sizeof bin_dir, "%s", v);
    } else if (strcmp(a, "--data-dir") == 0) {
      data_dir = v;
    } else if (strcmp(a, "--seconds") == 0) {
      c.seconds = atof(v);
      if (c.seconds <= 0) usage_exit("bad --seconds ", v);
    } else if (strcmp(a, "--value-size") == 0) {
      c.value_size = (size_t)strtoull(v, NULL, 10);
      if (c.value_size == 0 || c.value_size > MICA_MAX_VALUE)
        usage_exit("bad --value-size ", v);
    } else if (strcmp(a, "--keys") == 0) {
      c.keys = strtoull(v, NULL, 10);
      if (c.keys < 100) usage_exit("--keys must be at least 100: ", v);
    } else if (strcmp(a, "--ops") == 0) {
      memset(run_op, 0, sizeof run_op);
      char *copy = xstrdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t != NULL;
           t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < OP_COUNT_ && strcmp(t, op_names[k]) != 0) k++;
        if (k == OP_COUNT_) usage_exit("--ops: unknown phase ", t);
        run_op[k] = true;
      }
      free(copy);
    } else if (strcmp(a, "--server-threads") == 0) {
      char *end = NULL;
      long t = strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || t < 0 || t > 256)
        usage_exit("bad --server-threads ", v);
      server_threads = v;
    } else if (strcmp(a, "--client") == 0) {
      if (strcmp(v, "threads") == 0)
        threads_client = true;
      else if (strcmp(v, "async") != 0)
        usage_exit("--client is async or threads, not ", v);
    } else if (strcmp(a, "--inflight") == 0) {
      n_inflight = 0;
      char *copy = xstrdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t && n_inflight < 8;
           t = strtok_r(NULL, ",", &save)) {
        int k = atoi(t);
        if (k < 1 || k > 1024) usage_exit("bad --inflight ", v);
        inflight[n_inflight++] = k;
      }
      free(copy);
      if (n_inflight == 0) usage_exit("bad --inflight ", v);
    } else {
      usage_exit("unknown flag ", a);
    }
  }
  char tmp[512]; /* fits the 1 KiB path buffers built from it */
  const char *tmpdir = getenv("TMPDIR");
  bool own_dir = data_dir == NULL;
  if (own_dir) {
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/mica-tserver-bench-XXXXXX",
                         tmpdir ? tmpdir : "/tmp") >= sizeof tmp)
      usage_exit("TMPDIR is too long: ", tmpdir);
    if (mkdtemp(tmp) == NULL) usage_exit("cannot create a temp dir", "");
    data_dir = tmp;
  }
  c.value = xmalloc(c.value_size);
  memset(c.value, 'v', c.value_size);

  double fs_rate = fsync_rate(data_dir, 2.0);
  printf("fsync rate (1 KiB append + fdatasync, %s): %.0f/s\n", data_dir,
         fs_rate);
  char addr[128];
  mica_err *e =
      start_server(bin_dir, data_dir, server_threads, addr, sizeof addr);
  /* OpenTablet is for cluster members (docs/security.md): sign calls with
   * the secret the server created in its data root. */
  rpc_secret secret;
  char spath[1100];
  snprintf(spath, sizeof spath, "%s/%s", data_dir, RPC_SECRET_FILE);
  if (e == NULL) e = rpc_secret_read(spath, &secret);
  rpc_channel_opts co = {.member = &secret};
  if (e == NULL) e = rpc_channel_new(addr, &co, &c.ch);
  if (e == NULL) e = open_tablet(&c);
  if (e == NULL) e = load(&c);
  if (e != NULL) {
    fprintf(stderr, "mica-tserver-bench: %s\n", err_msg(e));
    return 1;
  }
  printf("server %s; %" PRIu64 " keys of %zu-byte values loaded; %.1f s per "
         "phase\n\n",
         addr, c.keys, c.value_size, c.seconds);
  printf("client: %s\n\n",
         threads_client ? "one thread per call in flight, blocking calls"
                        : "one thread, async calls");
  printf("%-8s %8s %12s %10s %10s %14s %12s\n", "op", "inflight", "ops/s",
         "p50 us", "p99 us", "server cpu us", "waits/op");
  fflush(stdout); /* tells a profiler attaching to the server when to */
  double rate[OP_COUNT_][8] = {{0}};
  for (int op = 0; op < OP_COUNT_ && e == NULL; op++)
    for (int k = 0; k < n_inflight && e == NULL && run_op[op]; k++) {
      samples lat = {NULL, 0, 0};
      double r = 0;
      double cpu0 = server_cpu_s(), w0 = server_waits();
      if (op == OP_SCAN)
        e = run_scan(&c, inflight[k], &lat, &r);
      else if (threads_client)
        e = run_unary_threads(&c, op, inflight[k], &lat, &r);
      else
        e = run_unary(&c, op, inflight[k], &lat, &r);
      double cpu1 = server_cpu_s(), w1 = server_waits();
      qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u32);
      rate[op][k] = r;
      double cpu_us = cpu0 >= 0 && cpu1 >= 0 && lat.n > 0
                          ? (cpu1 - cpu0) * 1e6 / (double)lat.n
                          : -1;
      double waits = w0 >= 0 && w1 >= 0 && lat.n > 0
                         ? (w1 - w0) / (double)lat.n
                         : -1;
      printf("%-8s %8d %12.0f %10u %10u %14.1f %12.2f\n", op_names[op],
             inflight[k], r, pct(&lat, 0.50), pct(&lat, 0.99), cpu_us,
             waits);
      fflush(stdout);
      free(lat.v);
    }
  if (e != NULL) {
    fprintf(stderr, "mica-tserver-bench: %s\n", err_msg(e));
    err_free(e);
  } else {
    int last = n_inflight - 1;
    if (run_op[OP_GET] && run_op[OP_ECHO])
      printf("\nget/echo at %d in flight: %.2f (goal >= 0.70)\n",
             inflight[last], rate[OP_GET][last] / rate[OP_ECHO][last]);
    if (run_op[OP_PUT])
      printf("durable put at %d in flight / fsync rate: %.2f (goal >= 8)\n",
             inflight[last], rate[OP_PUT][last] / fs_rate);
  }
  rpc_channel_free(c.ch);
  if (server_pid > 0) {
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
    server_pid = 0;
  }
  if (own_dir) err_free(env_remove_tree(E, data_dir));
  free(c.value);
  return 0;
}
