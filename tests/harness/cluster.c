/* cluster: starting, watching and killing the processes of a test cluster.
 *
 * Processes are started with fork + execv, each in its own process group
 * member slot of a global table (`g_kids`) that the atexit and signal
 * handlers walk to SIGKILL whatever is still running; the table is a fixed
 * array of pids so the signal handler only reads plain integers. A process
 * is "up" once its --address-file exists: both binaries write it after they
 * bind and start serving. */
#include "tests/harness/cluster.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/harness/testutil.h"

#define MAX_KIDS 64
#define MAX_SLOTS 16

static volatile pid_t g_kids[MAX_KIDS];
static bool g_handlers;

static void kill_all_kids(void) {
  for (int i = 0; i < MAX_KIDS; i++)
    if (g_kids[i] > 0) kill(g_kids[i], SIGKILL);
}

static void on_fatal(int sig) {
  kill_all_kids();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_handlers(void) {
  if (g_handlers) return;
  g_handlers = true;
  atexit(kill_all_kids);
  int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTERM, SIGINT};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    signal(sigs[i], on_fatal);
  signal(SIGPIPE, SIG_IGN);
}

static void track(pid_t pid) {
  for (int i = 0; i < MAX_KIDS; i++)
    if (g_kids[i] == 0) {
      g_kids[i] = pid;
      return;
    }
}

static void untrack(pid_t pid) {
  for (int i = 0; i < MAX_KIDS; i++)
    if (g_kids[i] == pid) g_kids[i] = 0;
}

uint64_t cl_now_ms(void) { return env_now_micros(env_posix()) / 1000; }

void cl_sleep_ms(uint64_t ms) { env_sleep_micros(env_posix(), ms * 1000); }

/* ---- one process ---- */

typedef struct proc {
  char name[32];  /* "master", "tserver-2" */
  pid_t pid;      /* 0 = not running */
  char *address;  /* "" until up */
  int runs;       /* processes started in this slot */
} proc;

struct cluster {
  cl_options opt;
  char *root;
  char *bin_dir;
  proc master;
  char *http_address; /* the master's status server, "" until up */
  proc ts[MAX_SLOTS];
  int n_ts;
  uint64_t ts_id[MAX_SLOTS];
  rpc_channel *master_ch;
  rpc_channel **old_master_chs; /* replaced by restarts, freed at the end */
  size_t n_old;
  pthread_mutex_t ch_mu; /* guards chans and master_ch */
  rpc_channel **chans;
  size_t n_chans;
};

void cl_options_init(cl_options *o) {
  memset(o, 0, sizeof(*o));
  o->tservers = 3;
  o->lease_ms = 2000;
  o->lease_margin_ms = 500;
  o->heartbeat_ms = 200;
  o->start_timeout_ms = 30000;
}

static char *path_of(const cluster *c, const char *name, const char *ext) {
  size_t n = strlen(c->root) + strlen(name) + strlen(ext) + 16;
  char *p = xmalloc(n);
  snprintf(p, n, "%s/logs/%s.%s", c->root, name, ext);
  return p;
}

/* argv building: a growable NULL-terminated array of copies. */
typedef struct args {
  char **v;
  size_t n;
} args;

static void arg(args *a, const char *s) {
  a->v = xrealloc(a->v, (a->n + 2) * sizeof(*a->v));
  a->v[a->n++] = xstrdup(s);
  a->v[a->n] = NULL;
}

static void arg_u64(args *a, const char *flag, uint64_t v) {
  char b[32];
  snprintf(b, sizeof(b), "%" PRIu64, v);
  arg(a, flag);
  arg(a, b);
}

static void args_free(args *a) {
  for (size_t i = 0; i < a->n; i++) free(a->v[i]);
  free(a->v);
}

/* Starts `argv` with stdout/stderr to the process's log files and waits
 * until it wrote `addr_file`. */
static mica_err *spawn(cluster *c, proc *p, args *a, const char *addr_file,
                       int timeout_ms) {
  env *e = env_posix();
  if (env_exists(e, addr_file)) {
    mica_err *err = env_remove(e, addr_file);
    if (err) return err;
  }
  char *out = path_of(c, p->name, "out"), *log = path_of(c, p->name, "log");
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    free(out);
    free(log);
    return err_new(MICA_INTERNAL, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (freopen(out, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL)
      _exit(127);
    execv(a->v[0], a->v);
    fprintf(stderr, "exec %s: %s\n", a->v[0], strerror(errno));
    _exit(127);
  }
  track(pid);
  p->pid = pid;
  p->runs++;
  free(out);
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  mica_err *err = NULL;
  for (;;) {
    if (env_exists(e, addr_file)) {
      buf b = BUF_INIT;
      err = env_read_file(e, addr_file, 4096, &b);
      if (err) break;
      while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
        b.len--;
      if (b.len) {
        buf_push(&b, 0);
        free(p->address);
        p->address = (char *)b.data;
        break;
      }
      buf_free(&b);
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      untrack(pid);
      p->pid = 0;
      err = err_new(MICA_UNAVAILABLE, "%s exited (status %d) before serving; "
                    "see %s", p->name, st, log);
      break;
    }
    if (cl_now_ms() > until) {
      err = err_new(MICA_DEADLINE_EXCEEDED, "%s did not write its address "
                    "within %d ms; see %s", p->name, timeout_ms, log);
      break;
    }
    cl_sleep_ms(10);
  }
  free(log);
  return err;
}

static mica_err *wait_exit(proc *p, int sig, int timeout_ms, int *status) {
  *status = -1;
  if (p->pid == 0) return NULL;
  kill(p->pid, sig);
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      *status = st;
      break;
    }
    if (cl_now_ms() > until) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &st, 0);
      untrack(p->pid);
      p->pid = 0;
      return err_new(MICA_DEADLINE_EXCEEDED, "%s did not exit within %d ms "
                     "of signal %d; killed", p->name, timeout_ms, sig);
    }
    cl_sleep_ms(5);
  }
  untrack(p->pid);
  p->pid = 0;
  return NULL;
}

/* ---- master and servers ---- */

static char *addr_file(cluster *c, const proc *p) {
  return path_of(c, p->name, "addr");
}

static mica_err *start_master(cluster *c, const char *listen) {
  args a = {0};
  char bin[4096];
  snprintf(bin, sizeof(bin), "%s/mica-master", c->bin_dir);
  char *af = addr_file(c, &c->master);
  arg(&a, bin);
  arg(&a, "--data-dir");
  arg(&a, c->root);
  arg(&a, "--listen");
  arg(&a, listen);
  arg(&a, "--address-file");
  arg(&a, af);
  char *hf = path_of(c, c->master.name, "http");
  arg(&a, "--http-address-file");
  arg(&a, hf);
  arg_u64(&a, "--lease-ms", c->opt.lease_ms);
  arg_u64(&a, "--lease-margin-ms", c->opt.lease_margin_ms);
  arg_u64(&a, "--heartbeat-ms", c->opt.heartbeat_ms);
  for (const char *const *x = c->opt.master_args; x && *x; x++) arg(&a, *x);
  mica_err *err = spawn(c, &c->master, &a, af, c->opt.start_timeout_ms);
  args_free(&a);
  free(af);
  if (err == NULL) {
    /* Written before the RPC address file, so it is there by now. */
    buf b = BUF_INIT;
    err = env_read_file(env_posix(), hf, 4096, &b);
    while (b.len && b.data[b.len - 1] == '\n') b.len--;
    buf_push(&b, 0);
    free(c->http_address);
    c->http_address = (char *)b.data;
  }
  free(hf);
  if (err) return err;
  /* Other threads may be calling the master: the new channel replaces the
   * old one in one step, and the old one lives on until cl_free for the
   * calls still using it. */
  rpc_channel *ch;
  err = rpc_channel_new(c->master.address, NULL, &ch);
  if (err) return err;
  pthread_mutex_lock(&c->ch_mu);
  if (c->master_ch) {
    c->old_master_chs = xrealloc(c->old_master_chs,
                                 (c->n_old + 1) * sizeof(*c->old_master_chs));
    c->old_master_chs[c->n_old++] = c->master_ch;
  }
  c->master_ch = ch;
  pthread_mutex_unlock(&c->ch_mu);
  return NULL;
}

static mica_err *start_tserver(cluster *c, int i) {
  proc *p = &c->ts[i];
  args a = {0};
  char bin[4096];
  snprintf(bin, sizeof(bin), "%s/mica-tserver", c->bin_dir);
  char *af = addr_file(c, p);
  arg(&a, bin);
  arg(&a, "--data-dir");
  arg(&a, c->root);
  arg(&a, "--listen");
  arg(&a, "127.0.0.1:0");
  arg(&a, "--master");
  arg(&a, c->master.address);
  arg(&a, "--address-file");
  arg(&a, af);
  if (c->opt.split_threshold)
    arg_u64(&a, "--split-threshold", c->opt.split_threshold);
  for (const char *const *x = c->opt.tserver_args; x && *x; x++) arg(&a, *x);
  c->ts_id[i] = 0;
  mica_err *err = spawn(c, p, &a, af, c->opt.start_timeout_ms);
  args_free(&a);
  free(af);
  return err;
}

mica_err *cl_response_err(const void *resp) {
  return rpc_status_err(rpc_response_status(resp));
}

mica_err *cl_call_master(cluster *c, const rpc_method *m,
                         const void *req, int64_t timeout_ms,
                         void **resp) {
  if (resp) *resp = NULL;
  void *r = NULL;
  mica_err *err = rpc_unary(cl_master_channel(c), m, req, timeout_ms, &r);
  if (err) return err;
  err = cl_response_err(r);
  if (resp) *resp = r;
  else rpc_msg_free(r);
  return err;
}

mica_err *cl_wait_registered(cluster *c, int timeout_ms) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  char last[512] = "no answer yet";
  for (;;) {
    rpc_list_servers_request q = {0};
    void *r = NULL;
    mica_err *err = cl_call_master(c, &rpc_m_master_list_servers, &q,
                                   2000, &r);
    if (err == NULL) {
      const rpc_list_servers_response *ls = (const void *)r;
      int ok = 0, running = 0;
      for (int i = 0; i < c->n_ts; i++) {
        if (c->ts[i].pid == 0) continue;
        running++;
        for (size_t k = 0; k < ls->n_servers; k++)
          if (strcmp(ls->servers[k].address, c->ts[i].address) == 0 &&
              ls->servers[k].state == RPC_SERVER_LIVE) {
            c->ts_id[i] = ls->servers[k].server_id;
            ok++;
          }
      }
      size_t live = 0;
      for (size_t k = 0; k < ls->n_servers; k++)
        live += ls->servers[k].state == RPC_SERVER_LIVE;
      snprintf(last, sizeof(last), "%d of %d running servers live, %zu live "
               "at the master", ok, running, live);
      rpc_msg_free(r);
      if (ok == running && live == (size_t)running) return NULL;
    } else {
      snprintf(last, sizeof(last), "%s", err_msg(err));
      err_free(err);
      rpc_msg_free(r);
    }
    if (cl_now_ms() > until)
      return err_new(MICA_DEADLINE_EXCEEDED, "servers not registered within "
                     "%d ms: %s (logs in %s/logs)", timeout_ms, last, c->root);
    cl_sleep_ms(20);
  }
}

mica_err *cl_start(const cl_options *o, cluster **out) {
  *out = NULL;
  const char *bin = getenv("MICA_BIN_DIR");
  if (bin == NULL || bin[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "MICA_BIN_DIR is not set");
  if (o->tservers < 0 || o->tservers > MAX_SLOTS)
    return err_new(MICA_INVALID_ARGUMENT, "%d tablet servers: 0..%d",
                   o->tservers, MAX_SLOTS);
  cluster *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->ch_mu, NULL);
  c->opt = *o;
  c->root = xstrdup(tu_tmpdir());
  c->bin_dir = xstrdup(bin);
  install_handlers();
  snprintf(c->master.name, sizeof(c->master.name), "master");
  c->master.address = xstrdup("");
  c->http_address = xstrdup("");
  char logs[4096];
  snprintf(logs, sizeof(logs), "%s/logs", c->root);
  mica_err *err = env_mkdirs(env_posix(), logs);
  if (err == NULL) err = start_master(c, "127.0.0.1:0");
  for (int i = 0; i < o->tservers && err == NULL; i++) {
    proc *p = &c->ts[c->n_ts++];
    snprintf(p->name, sizeof(p->name), "tserver-%d", i);
    p->address = xstrdup("");
    err = start_tserver(c, i);
  }
  if (err == NULL) err = cl_wait_registered(c, o->start_timeout_ms);
  if (err) {
    cl_free(c);
    return err;
  }
  *out = c;
  return NULL;
}

void cl_free(cluster *c) {
  if (c == NULL) return;
  int st;
  for (int i = 0; i < c->n_ts; i++) {
    err_free(wait_exit(&c->ts[i], SIGTERM, 10000, &st));
    free(c->ts[i].address);
  }
  err_free(wait_exit(&c->master, SIGTERM, 10000, &st));
  free(c->master.address);
  free(c->http_address);
  rpc_channel_free(c->master_ch);
  for (size_t i = 0; i < c->n_old; i++) rpc_channel_free(c->old_master_chs[i]);
  free(c->old_master_chs);
  for (size_t i = 0; i < c->n_chans; i++) rpc_channel_free(c->chans[i]);
  free(c->chans);
  pthread_mutex_destroy(&c->ch_mu);
  free(c->root);
  free(c->bin_dir);
  free(c);
}

const char *cl_data_root(const cluster *c) { return c->root; }
const char *cl_master_address(const cluster *c) { return c->master.address; }
const char *cl_master_http_address(const cluster *c) {
  return c->http_address;
}
int cl_tserver_count(const cluster *c) { return c->n_ts; }

const char *cl_tserver_address(const cluster *c, int i) {
  return i >= 0 && i < c->n_ts && c->ts[i].pid ? c->ts[i].address : "";
}

bool cl_tserver_running(const cluster *c, int i) {
  return i >= 0 && i < c->n_ts && c->ts[i].pid != 0;
}

uint64_t cl_tserver_id(cluster *c, int i) {
  if (i < 0 || i >= c->n_ts || c->ts[i].pid == 0) return 0;
  if (c->ts_id[i] == 0) err_free(cl_wait_registered(c, 1000));
  return c->ts_id[i];
}

static mica_err *check_slot(const cluster *c, int i) {
  if (i < 0 || i >= c->n_ts)
    return err_new(MICA_INVALID_ARGUMENT, "no tablet server slot %d", i);
  return NULL;
}

mica_err *cl_kill_tserver(cluster *c, int i) {
  mica_err *err = check_slot(c, i);
  if (err) return err;
  int st;
  c->ts_id[i] = 0;
  return wait_exit(&c->ts[i], SIGKILL, 10000, &st);
}

mica_err *cl_kill_master(cluster *c) {
  int st;
  return wait_exit(&c->master, SIGKILL, 10000, &st);
}

static mica_err *stop_clean(proc *p) {
  int st;
  mica_err *err = wait_exit(p, SIGTERM, 10000, &st);
  if (err) return err;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return err_new(MICA_INTERNAL, "%s did not exit cleanly on SIGTERM "
                   "(status %d)", p->name, st);
  return NULL;
}

mica_err *cl_stop_tserver(cluster *c, int i) {
  mica_err *err = check_slot(c, i);
  if (err) return err;
  c->ts_id[i] = 0;
  return stop_clean(&c->ts[i]);
}

mica_err *cl_stop_master(cluster *c) { return stop_clean(&c->master); }

mica_err *cl_restart_tserver(cluster *c, int i) {
  mica_err *err = check_slot(c, i);
  if (err) return err;
  if (c->ts[i].pid != 0)
    return err_new(MICA_ALREADY_EXISTS, "%s is running", c->ts[i].name);
  err = start_tserver(c, i);
  if (err) return err;
  return cl_wait_registered(c, c->opt.start_timeout_ms);
}

mica_err *cl_restart_master(cluster *c) {
  if (c->master.pid != 0)
    return err_new(MICA_ALREADY_EXISTS, "the master is running");
  char *addr = xstrdup(c->master.address);
  mica_err *err = NULL;
  /* The old port can take a moment to be free again. */
  for (int attempt = 0; attempt < 50; attempt++) {
    err_free(err);
    err = start_master(c, addr);
    if (err == NULL) break;
    cl_sleep_ms(100);
  }
  free(addr);
  return err;
}

mica_err *cl_add_tserver(cluster *c, int *slot) {
  if (c->n_ts >= MAX_SLOTS)
    return err_new(MICA_RESOURCE_EXHAUSTED, "at most %d tablet servers",
                   MAX_SLOTS);
  int i = c->n_ts++;
  snprintf(c->ts[i].name, sizeof(c->ts[i].name), "tserver-%d", i);
  c->ts[i].address = xstrdup("");
  *slot = i;
  mica_err *err = start_tserver(c, i);
  if (err) return err;
  return cl_wait_registered(c, c->opt.start_timeout_ms);
}

rpc_channel *cl_master_channel(cluster *c) {
  pthread_mutex_lock(&c->ch_mu);
  rpc_channel *ch = c->master_ch;
  pthread_mutex_unlock(&c->ch_mu);
  return ch;
}

rpc_channel *cl_channel(cluster *c, const char *address) {
  pthread_mutex_lock(&c->ch_mu);
  rpc_channel *ch = NULL;
  for (size_t i = 0; i < c->n_chans && ch == NULL; i++)
    if (strcmp(rpc_channel_address(c->chans[i]), address) == 0)
      ch = c->chans[i];
  if (ch == NULL) {
    mica_err *err = rpc_channel_new(address, NULL, &ch);
    if (err) {
      fprintf(stderr, "cl_channel %s: %s\n", address, err_msg(err));
      err_free(err);
    } else {
      c->chans = xrealloc(c->chans, (c->n_chans + 1) * sizeof(*c->chans));
      c->chans[c->n_chans++] = ch;
    }
  }
  pthread_mutex_unlock(&c->ch_mu);
  return ch;
}
