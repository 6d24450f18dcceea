/* node: a Mica server binary as a test process (contract in node.h).
 *
 * The HTTP address file is written before the RPC address file (see
 * master/server/main.c), so once the RPC one is there the other is too. */
#include "tests/harness/node.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"

/* A growable NULL-terminated argv of borrowed strings. */
typedef struct argv_list {
  const char **v;
  size_t n;
} argv_list;

static void push(argv_list *a, const char *s) {
  a->v = xrealloc(a->v, (a->n + 2) * sizeof(*a->v));
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
}

static void push_all(argv_list *a, const char *const *list) {
  for (const char *const *x = list; x && *x; x++) push(a, *x);
}

static char *file_of(const th_node_opts *o, const char *ext) {
  size_t n = strlen(o->log_dir) + strlen(o->name) + strlen(ext) + 3;
  char *p = xmalloc(n);
  snprintf(p, n, "%s/%s.%s", o->log_dir, o->name, ext);
  return p;
}

static void clear_strings(th_node *n) {
  free(n->address);
  free(n->http_address);
  free(n->log);
  n->address = n->http_address = n->log = NULL;
}

void th_node_clear(th_node *n) {
  th_proc_free(n->proc);
  n->proc = NULL;
  clear_strings(n);
}

mica_err *th_node_start(const th_node_opts *o, th_node *n) {
  th_node_clear(n);
  n->address = xstrdup("");
  n->http_address = xstrdup("");
  if (o->prog == NULL || o->name == NULL || o->data_dir == NULL ||
      o->log_dir == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "th_node_start: prog, name, "
                   "data_dir and log_dir are required");
  char bin[4096];
  mica_err *err = th_bin(o->prog, bin, sizeof(bin));
  if (err) return err;
  char *addr_file = file_of(o, "addr"), *http_file = file_of(o, "http");
  char *out = file_of(o, "out");
  n->log = file_of(o, "log");
  env *e = env_posix();
  /* A file left by a previous run must not pass for this one's. */
  err_free(env_remove(e, addr_file));
  err_free(env_remove(e, http_file));

  argv_list a = {0};
  push(&a, bin);
  push(&a, "--data-dir");
  push(&a, o->data_dir);
  push(&a, "--listen");
  push(&a, o->listen ? o->listen : "127.0.0.1:0");
  push(&a, "--address-file");
  push(&a, addr_file);
  if (o->master) {
    push(&a, "--master");
    push(&a, o->master);
  }
  if (o->http) {
    push(&a, "--http-address-file");
    push(&a, http_file);
  }
  push_all(&a, o->args);
  push_all(&a, o->more_args);
  th_spawn s = {.name = o->name, .argv = a.v, .out_path = out,
                .err_path = n->log};
  err = th_proc_start(&s, &n->proc);
  free(a.v);
  int timeout = o->timeout_ms > 0 ? o->timeout_ms : 30000;
  char *line = NULL;
  if (err == NULL) err = th_proc_wait_file(n->proc, addr_file, timeout, &line);
  if (err == NULL) {
    free(n->address);
    n->address = line;
  }
  if (err == NULL && o->http) {
    err = th_proc_wait_file(n->proc, http_file, timeout, &line);
    if (err == NULL) {
      free(n->http_address);
      n->http_address = line;
    }
  }
  if (err) th_proc_kill(n->proc);
  free(addr_file);
  free(http_file);
  free(out);
  return err;
}

bool th_node_running(th_node *n) {
  return n->proc != NULL && th_proc_running(n->proc);
}

pid_t th_node_pid(th_node *n) {
  return th_node_running(n) ? th_proc_pid(n->proc) : 0;
}

mica_err *th_node_kill(th_node *n) {
  if (n->proc == NULL) return NULL;
  return th_proc_kill(n->proc);
}

mica_err *th_node_stop(th_node *n, int timeout_ms) {
  if (n->proc == NULL) return NULL;
  return th_proc_stop_clean(n->proc, SIGTERM,
                            timeout_ms > 0 ? timeout_ms : 10000);
}

mica_err *th_node_signal_wait(th_node *n, int sig, int timeout_ms,
                              int *status) {
  *status = -1;
  if (n->proc == NULL) return NULL;
  return th_proc_stop(n->proc, sig, timeout_ms, status);
}

mica_err *th_mica_cli(const char *master, const char *in,
                      const char *const *args, int timeout_ms, th_result *r) {
  memset(r, 0, sizeof(*r));
  r->rc = -1;
  char bin[4096];
  mica_err *err = th_bin("mica", bin, sizeof(bin));
  if (err) return err;
  argv_list a = {0};
  push(&a, bin);
  if (master != NULL) {
    push(&a, "--master");
    push(&a, master);
  }
  push_all(&a, args);
  err = th_run(a.v, NULL, in, timeout_ms, r);
  free(a.v);
  return err;
}

bool th_start_refused(const char *program, const char *const *args,
                      const char *message) {
  char bin[4096];
  mica_err *err = th_bin(program, bin, sizeof(bin));
  th_result r;
  memset(&r, 0, sizeof(r));
  argv_list a = {0};
  if (err == NULL) {
    push(&a, bin);
    push_all(&a, args);
    err = th_run(a.v, NULL, NULL, 30000, &r);
  }
  bool ok = err == NULL && r.rc != 0 &&
            strstr((const char *)r.err.data, message) != NULL;
  if (!ok)
    fprintf(stderr, "\n%s: expected a refusal naming \"%s\"; %s%s%s\n",
            program, message, err ? err_msg(err) : "",
            err == NULL && r.rc == 0 ? "it started (exit 0)" : "stderr: ",
            err == NULL && r.rc != 0 ? (const char *)r.err.data : "");
  err_free(err);
  th_result_free(&r);
  free(a.v);
  return ok;
}
