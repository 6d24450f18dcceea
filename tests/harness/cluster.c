/* cluster: a Mica cluster's processes for tests, on the harness's nodes
 * (tests/harness/node.h), plus the master calls every cluster test needs.
 *
 * Each slot (the master, tserver-0, tserver-1, ...) is a th_node: a
 * restart starts a new process in the same slot, on the same data root,
 * with the same log names. `pid` and `address` of a slot mirror its node
 * after every start, stop and kill (sync_slot), so the master calls below
 * can read them as plain fields. */
#include "tests/harness/cluster.h"
#include "tests/harness/member.h"

#include <dirent.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/s3/env_s3.h"
#include "proto/auth.h"
#include "tests/harness/node.h"
#include "tests/harness/s3proxy.h"
#include "tests/harness/s3server.h"
#include "tests/harness/testutil.h"

#define MAX_SLOTS 16

uint64_t cl_now_ms(void) { return th_now_ms(); }

void cl_sleep_ms(uint64_t ms) { th_sleep_ms(ms); }

/* ---- one process ---- */

typedef struct proc {
  char name[32];  /* "master", "tserver-2" */
  th_node node;
  pid_t pid;      /* 0 = not running; mirrors node */
  char *address;  /* "" until up, then the last address served on;
                     borrowed from node */
} proc;

struct cluster {
  cl_options opt;
  char *root;
  char *logs; /* <root>/logs */
  proc master;
  proc ts[MAX_SLOTS];
  int n_ts;
  uint64_t ts_id[MAX_SLOTS];
  rpc_channel *master_ch;
  rpc_channel **old_master_chs; /* replaced by restarts, freed at the end */
  size_t n_old;
  pthread_mutex_t ch_mu; /* guards chans and master_ch */
  rpc_channel **chans;
  size_t n_chans;
  char tls_cert[1100], tls_key[1100], tls_ca[1100];
  rpc_tls tls;
  bool tls_on;
  /* The --data-dir every process gets: `root`, or an s3:// root on the
   * test's S3 server (opt.s3), read here through data_env. Then root
   * keeps the logs, the cluster secret and the shared WAL directory. */
  char *data;
  env *data_env;
  char secret[1100], wal[1100];
  const char *s3_endpoint; /* the processes' --s3-endpoint (the proxy) */
  char clog[1200];         /* cl_commit_log_dir */
  unsigned failures_at_start; /* CUnit's count when the cluster started */
};

bool cl_env_s3(void) {
  static int on = -1;
  if (on >= 0) return on == 1;
  const char *v = getenv("MICA_TEST_S3");
  on = v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
  return on == 1;
}

const char *cl_env_tls_dir(void) {
  static char dir[1024];
  static bool done;
  if (done) return dir[0] ? dir : NULL;
  done = true;
  const char *v = getenv("MICA_TEST_TLS");
  if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0) return NULL;
  if (strcmp(v, "1") == 0)
    snprintf(dir, sizeof dir, "%s/certs", tu_tmpdir());
  else
    snprintf(dir, sizeof dir, "%s", v);
  char ca[1100];
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  if (access(ca, R_OK) != 0) {
    /* Not made by the ctest fixture: make them now, once per process. */
    char cmd[2300];
    snprintf(cmd, sizeof cmd, "'%s/tools/mica-certs' '%s' >/dev/null",
             MICA_SOURCE_DIR, dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "cluster: MICA_TEST_TLS: tools/mica-certs %s failed\n",
              dir);
      abort();
    }
  }
  fprintf(stderr, "cluster: MICA_TEST_TLS: every cluster serves TLS with "
          "the certificates in %s\n", dir);
  return dir;
}

void cl_options_init(cl_options *o) {
  memset(o, 0, sizeof(*o));
  o->tservers = 3;
  o->lease_ms = 2000;
  o->lease_margin_ms = 500;
  o->heartbeat_ms = 200;
  o->start_timeout_ms = 30000;
  o->tls_dir = cl_env_tls_dir();
  o->s3 = cl_env_s3();
  /* MICA_TEST_S3_WAL=1 with MICA_TEST_S3: the commit log on S3 too. */
  const char *w = getenv("MICA_TEST_S3_WAL");
  o->s3_wal = o->s3 && w != NULL && w[0] != '\0' && strcmp(w, "0") != 0;
}

static void sync_slot(proc *p) {
  p->pid = th_node_pid(&p->node);
  p->address = p->node.address ? p->node.address : "";
}

static void init_slot(proc *p, const char *fmt, int i) {
  snprintf(p->name, sizeof(p->name), fmt, i);
  sync_slot(p);
}

/* Flags with numbers: "--flag", "<n>" pairs in fixed storage. */
typedef struct num_flags {
  const char *v[24];
  char num[8][24];
  int n, k;
} num_flags;

static void num_flag(num_flags *f, const char *flag, uint64_t v) {
  snprintf(f->num[f->k], sizeof(f->num[f->k]), "%" PRIu64, v);
  f->v[f->n++] = flag;
  f->v[f->n++] = f->num[f->k++];
  f->v[f->n] = NULL;
}

static void str_flag(num_flags *f, const char *flag, const char *v) {
  f->v[f->n++] = flag;
  f->v[f->n++] = v;
  f->v[f->n] = NULL;
}

/* The storage flags of every process when the data root is on S3. */
static void s3_flags(cluster *c, num_flags *f, bool tserver) {
  if (c->data_env == env_posix()) return;
  f->v[f->n++] = "--cluster-secret-file";
  f->v[f->n++] = c->secret;
  if (c->s3_endpoint != NULL) {
    f->v[f->n++] = "--s3-endpoint";
    f->v[f->n++] = c->s3_endpoint;
  }
  if (tserver && !c->opt.s3_wal) {
    f->v[f->n++] = "--wal-dir";
    f->v[f->n++] = c->wal;
  }
  f->v[f->n] = NULL;
}

/* The TLS flags of every process when the cluster is TLS. */
static void tls_flags(cluster *c, num_flags *f) {
  if (!c->tls_on) return;
  str_flag(f, "--tls-cert", c->tls_cert);
  str_flag(f, "--tls-key", c->tls_key);
  str_flag(f, "--tls-ca", c->tls_ca);
  if (c->opt.client_certs) str_flag(f, "--tls-client-certs", c->opt.client_certs);
}

static mica_err *start_slot(cluster *c, proc *p, const char *prog,
                            const char *listen, const char *master, bool http,
                            const num_flags *f, const char *const *user) {
  th_node_opts o = {.prog = prog, .name = p->name, .data_dir = c->data,
                    .log_dir = c->logs, .listen = listen, .master = master,
                    .http = http, .args = f->v, .more_args = user,
                    .timeout_ms = c->opt.start_timeout_ms};
  mica_err *err = th_node_start(&o, &p->node);
  sync_slot(p);
  return err;
}

/* ---- master and servers ---- */

static mica_err *start_master(cluster *c, const char *listen) {
  num_flags f = {0};
  num_flag(&f, "--lease-ms", c->opt.lease_ms);
  num_flag(&f, "--lease-margin-ms", c->opt.lease_margin_ms);
  num_flag(&f, "--heartbeat-ms", c->opt.heartbeat_ms);
  if (c->opt.tokens_file) str_flag(&f, "--tokens", c->opt.tokens_file);
  tls_flags(c, &f);
  s3_flags(c, &f, false);
  mica_err *err = start_slot(c, &c->master, "mica-master", listen, NULL, true,
                             &f, c->opt.master_args);
  if (err) return err;
  /* Other threads may be calling the master: the new channel replaces the
   * old one in one step, and the old one lives on until cl_free for the
   * calls still using it. */
  rpc_channel *ch;
  err = th_member_channel(c->master.address, c->root, cl_tls(c), &ch);
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

void cl_tserver_machine_dir(const cluster *c, int i, char *out, size_t n) {
  snprintf(out, n, "%s/machine-%d", c->root, i);
}

static mica_err *start_tserver(cluster *c, int i) {
  num_flags f = {0};
  if (c->opt.split_threshold)
    num_flag(&f, "--split-threshold", c->opt.split_threshold);
  num_flag(&f, "--drain-timeout-ms", c->opt.drain_timeout_ms);
  tls_flags(c, &f);
  s3_flags(c, &f, true);
  char cache[1200];
  if (c->opt.s3 && c->opt.s3_wal) {
    cl_tserver_machine_dir(c, i, cache, sizeof cache - 8);
    strcat(cache, "/cache");
    str_flag(&f, "--cache-dir", cache);
  }
  c->ts_id[i] = 0;
  return start_slot(c, &c->ts[i], "mica-tserver", NULL, c->master.address,
                    false, &f, c->opt.tserver_args);
}

mica_err *cl_response_err(const void *resp) {
  return rpc_status_err(rpc_response_status(resp));
}

static mica_err *call_on(rpc_channel *ch, const rpc_method *m,
                         const void *req, int64_t timeout_ms, void **resp) {
  if (resp) *resp = NULL;
  void *r = NULL;
  mica_err *err = rpc_unary(ch, m, req, timeout_ms, &r);
  if (err) return err;
  err = cl_response_err(r);
  if (resp) *resp = r;
  else rpc_msg_free(r);
  return err;
}

mica_err *cl_call_master(cluster *c, const rpc_method *m,
                         const void *req, int64_t timeout_ms,
                         void **resp) {
  return call_on(cl_master_channel(c), m, req, timeout_ms, resp);
}

mica_err *cl_call(cluster *c, const char *address, const rpc_method *m,
                  const void *req, int64_t timeout_ms, void **resp) {
  if (resp) *resp = NULL;
  rpc_channel *ch = cl_channel(c, address);
  if (ch == NULL)
    return err_new(MICA_UNAVAILABLE, "no channel to %s", address);
  return call_on(ch, m, req, timeout_ms, resp);
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


/* The data root on the test's S3 server: the server (once per process),
 * the AWS_* variables every process inherits, a fresh prefix, the secret
 * and WAL directory kept locally, and an env to read the bucket. */
static mica_err *start_s3(cluster *c) {
  static bool said;
  mica_err *err = th_s3_export_env();
  if (err) return err;
  if (!said)
    fprintf(stderr, "cluster: data root on the test's S3 server (s3rver), "
            "%s\n", c->opt.s3_wal ? "commit log on S3 too"
                                  : "WAL in a local directory shared by the "
                                    "tablet servers");
  said = true;
  free(c->data);
  c->data = th_s3_new_root("cluster");
  snprintf(c->wal, sizeof c->wal, "%s/wal", c->root);
  snprintf(c->secret, sizeof c->secret, "%s/%s", c->root, RPC_SECRET_FILE);
  rpc_secret sec;
  bool created;
  err = rpc_secret_load_or_create(c->root, &sec, &created);
  if (err) return err;
  s3_config sc;
  err = s3_config_from_environ(&sc);
  if (err == NULL) err = env_s3_new(&sc, &c->data_env);
  s3_config_free(&sc);
  if (err) {
    c->data_env = env_posix();
    return err;
  }
  if (c->opt.s3_proxy) err = th_s3_proxy_start(&c->s3_endpoint, NULL);
  return err;
}

static void track_live(cluster *c, cluster *was);
static void print_live_log_tails(void);

mica_err *cl_start(const cl_options *o, cluster **out) {
  *out = NULL;
  char probe[4096];
  mica_err *err = th_bin("mica-master", probe, sizeof(probe));
  if (err) return err;
  if (o->tservers < 0 || o->tservers > MAX_SLOTS)
    return err_new(MICA_INVALID_ARGUMENT, "%d tablet servers: 0..%d",
                   o->tservers, MAX_SLOTS);
  cluster *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->ch_mu, NULL);
  c->opt = *o;
  c->failures_at_start = CU_get_number_of_failures();
  c->root = xstrdup(tu_tmpdir());
  size_t n = strlen(c->root) + 8;
  c->logs = xmalloc(n);
  snprintf(c->logs, n, "%s/logs", c->root);
  if (o->tls_dir != NULL) {
    c->tls_on = true;
    snprintf(c->tls_cert, sizeof c->tls_cert, "%s/server.pem", o->tls_dir);
    snprintf(c->tls_key, sizeof c->tls_key, "%s/server.key", o->tls_dir);
    snprintf(c->tls_ca, sizeof c->tls_ca, "%s/ca.pem", o->tls_dir);
    c->tls = (rpc_tls){c->tls_cert, c->tls_key, c->tls_ca};
  }
  init_slot(&c->master, "master", 0);
  c->data = xstrdup(c->root);
  c->data_env = env_posix();
  if (o->s3) {
    err = start_s3(c);
    if (err) {
      cl_free(c);
      return err;
    }
  }
  /* The flags of s3_flags: the commit log follows --wal-dir when given. */
  if (c->data_env == env_posix())
    snprintf(c->clog, sizeof c->clog, "%s/logs", c->data);
  else if (c->wal[0] != '\0')
    snprintf(c->clog, sizeof c->clog, "%s/logs", c->wal);
  err = env_mkdirs(env_posix(), c->logs);
  if (err == NULL) err = start_master(c, "127.0.0.1:0");
  for (int i = 0; i < o->tservers && err == NULL; i++) {
    init_slot(&c->ts[c->n_ts++], "tserver-%d", i);
    err = start_tserver(c, i);
  }
  if (err == NULL) err = cl_wait_registered(c, o->start_timeout_ms);
  if (err) {
    cl_free(c);
    return err;
  }
  track_live(c, NULL);
  tu_on_failure(print_live_log_tails);
  *out = c;
  return NULL;
}

/* Prints the last `lines` lines of every process log (the .log files in
 * <root>/logs) to stderr: the story of a failed assertion, in the test's
 * own output (ctest --output-on-failure, all that CI keeps; the directory
 * itself is removed at exit unless MICA_KEEP_TMP is set). */
static void print_log_tails(const cluster *c, int lines) {
  DIR *d = opendir(c->logs);
  if (d == NULL) return;
  fprintf(stderr, "\n---- a test failed on this cluster: the last %d lines "
          "of each process log (%s) ----\n", lines, c->logs);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t nl = strlen(e->d_name);
    if (nl < 5 || strcmp(e->d_name + nl - 4, ".log") != 0) continue;
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", c->logs, e->d_name);
    buf b = BUF_INIT;
    mica_err *err = env_read_file(env_posix(), path, (size_t)1 << 30, &b);
    if (err == NULL) {
      size_t at = b.len;
      for (int n = 0; at > 0 && n <= lines; at--)
        if (b.data[at - 1] == '\n' && ++n > lines) break;
      fprintf(stderr, "-- %s%s\n", e->d_name, at > 0 ? " (tail)" : "");
      fwrite(b.data + at, 1, b.len - at, stderr);
    }
    err_free(err);
    buf_free(&b);
  }
  closedir(d);
  fprintf(stderr, "---- end of the process logs ----\n");
}

/* Clusters started and not yet freed: a fatal assertion leaves its test
 * without reaching cl_free, so their logs are printed at the end of the
 * run instead (tu_on_failure). Started and freed on the test's thread. */
static cluster *g_live[64];

static void print_live_log_tails(void) {
  for (size_t i = 0; i < sizeof(g_live) / sizeof(g_live[0]); i++)
    if (g_live[i] != NULL) print_log_tails(g_live[i], 60);
}

static void track_live(cluster *c, cluster *was) {
  for (size_t i = 0; i < sizeof(g_live) / sizeof(g_live[0]); i++)
    if (g_live[i] == was) {
      g_live[i] = c;
      return;
    }
}

void cl_free(cluster *c) {
  if (c == NULL) return;
  track_live(NULL, c);
  int st;
  for (int i = 0; i < c->n_ts; i++) {
    err_free(th_node_signal_wait(&c->ts[i].node, SIGTERM, 10000, &st));
    th_node_clear(&c->ts[i].node);
  }
  err_free(th_node_signal_wait(&c->master.node, SIGTERM, 10000, &st));
  th_node_clear(&c->master.node);
  if (CU_get_number_of_failures() > c->failures_at_start)
    print_log_tails(c, 60);
  rpc_channel_free(c->master_ch);
  for (size_t i = 0; i < c->n_old; i++) rpc_channel_free(c->old_master_chs[i]);
  free(c->old_master_chs);
  for (size_t i = 0; i < c->n_chans; i++) rpc_channel_free(c->chans[i]);
  free(c->chans);
  pthread_mutex_destroy(&c->ch_mu);
  if (c->data_env != NULL && c->data_env != env_posix())
    env_s3_free(c->data_env);
  free(c->data);
  free(c->root);
  free(c->logs);
  free(c);
}

int cl_suite_start(const cl_options *o, cluster **c) {
  mica_err *err = cl_start(o, c);
  if (err == NULL) return 0;
  fprintf(stderr, "cluster start: %s\n", err_msg(err));
  err_free(err);
  return 1;
}

int cl_suite_stop(cluster **c) {
  cl_free(*c);
  *c = NULL;
  return 0;
}

const char *cl_data_root(const cluster *c) { return c->data; }

env *cl_data_env(const cluster *c) { return c->data_env; }

const char *cl_local_dir(const cluster *c) { return c->root; }

const char *cl_commit_log_dir(const cluster *c) {
  return c->clog[0] ? c->clog : NULL;
}

const rpc_tls *cl_tls(const cluster *c) { return c->tls_on ? &c->tls : NULL; }
const char *cl_master_address(const cluster *c) { return c->master.address; }
const char *cl_master_http_address(const cluster *c) {
  return c->master.node.http_address ? c->master.node.http_address : "";
}
int cl_tserver_count(const cluster *c) { return c->n_ts; }

const char *cl_tserver_address(const cluster *c, int i) {
  return i >= 0 && i < c->n_ts && c->ts[i].pid ? c->ts[i].address : "";
}

int cl_tserver_slot(const cluster *c, const char *address) {
  for (int i = 0; i < cl_tserver_count(c); i++)
    if (cl_tserver_running(c, i) &&
        strcmp(cl_tserver_address(c, i), address) == 0)
      return i;
  return -1;
}

bool cl_tserver_running(const cluster *c, int i) {
  return i >= 0 && i < c->n_ts && c->ts[i].pid != 0;
}

pid_t cl_tserver_pid(const cluster *c, int i) {
  return i >= 0 && i < c->n_ts ? c->ts[i].pid : 0;
}

pid_t cl_master_pid(const cluster *c) { return c->master.pid; }

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
  c->ts_id[i] = 0;
  err = th_node_kill(&c->ts[i].node);
  sync_slot(&c->ts[i]);
  return err;
}

mica_err *cl_kill_master(cluster *c) {
  mica_err *err = th_node_kill(&c->master.node);
  sync_slot(&c->master);
  return err;
}

mica_err *cl_stop_tserver(cluster *c, int i) {
  mica_err *err = check_slot(c, i);
  if (err) return err;
  c->ts_id[i] = 0;
  err = th_node_stop(&c->ts[i].node, 10000);
  sync_slot(&c->ts[i]);
  return err;
}

mica_err *cl_stop_master(cluster *c) {
  mica_err *err = th_node_stop(&c->master.node, 10000);
  sync_slot(&c->master);
  return err;
}

mica_err *cl_restart_tserver(cluster *c, int i) {
  mica_err *err = check_slot(c, i);
  if (err) return err;
  if (th_node_running(&c->ts[i].node))
    return err_new(MICA_ALREADY_EXISTS, "%s is running", c->ts[i].name);
  err = start_tserver(c, i);
  if (err) return err;
  return cl_wait_registered(c, c->opt.start_timeout_ms);
}

mica_err *cl_restart_master(cluster *c) {
  if (th_node_running(&c->master.node))
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
  init_slot(&c->ts[i], "tserver-%d", i);
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
    mica_err *err = th_member_channel(address, c->root, cl_tls(c), &ch);
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

bool cl_has_event(cluster *c, const char *part) {
  rpc_list_events_request q = {0};
  rpc_list_events_response *r = NULL;
  mica_err *err = cl_call_master(c, &rpc_m_master_list_events, &q, 5000,
                                 (void **)&r);
  if (err) {
    fprintf(stderr, "\nListEvents: %s\n", err_msg(err));
    err_free(err);
    return false;
  }
  bool hit = false;
  for (size_t i = 0; r && i < r->n_events && !hit; i++)
    hit = strstr(r->events[i].text, part) != NULL;
  rpc_msg_free(r);
  return hit;
}

size_t cl_logs_count(const cluster *c, const char *text) {
  /* The logs are local also when the data root is on S3. */
  const char *dir = c->logs;
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  size_t hits = 0, n = strlen(text);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    buf b = BUF_INIT;
    mica_err *err = env_read_file(env_posix(), path, (size_t)1 << 30, &b);
    if (err == NULL && n > 0) {
      const char *p = (const char *)b.data, *end = p + b.len;
      while ((p = memmem(p, (size_t)(end - p), text, n)) != NULL) {
        hits++;
        p += n;
      }
    }
    err_free(err);
    buf_free(&b);
  }
  closedir(d);
  return hits;
}

bool cl_logs_contain(const cluster *c, const char *text) {
  return cl_logs_count(c, text) > 0;
}
