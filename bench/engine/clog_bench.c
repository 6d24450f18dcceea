#include "bench/engine/clog_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"

static void cb_die(const cb_setup *s, const char *what, mica_err *err) {
  fprintf(stderr, "%s: %s: %s\n", s->prog, what, err ? err_msg(err) : "");
  exit(1);
}

void cb_open(cb_setup *s, const char *root, bool shared,
             const clog_options *lo, const char *log_name, uint64_t epoch) {
  res_options ro;
  res_options_init(&ro);
  ro.memtable_budget = 1u << 30;
  mica_err *err = res_new(s->e, &ro, &s->res);
  if (err != NULL) cb_die(s, "res", err);
  char *tablets = layout_tablets_dir(root);
  if ((err = env_mkdirs(s->e, tablets)) != NULL) cb_die(s, "mkdir", err);
  s->log = NULL;
  if (shared) {
    char *lr = clog_logs_root(tablets);
    if ((err = clog_open(s->e, lr, log_name, lo, &s->log)) != NULL)
      cb_die(s, "clog_open", err);
    free(lr);
  }
  tab_options o;
  tab_options_init(&o);
  o.create_if_missing = true;
  o.memtable_bytes = 256u << 20; /* no flush during the run */
  o.log = s->log;
  s->t = calloc((size_t)s->n, sizeof(*s->t));
  for (int i = 0; i < s->n; i++) {
    char lo_k[16], hi_k[16];
    snprintf(lo_k, sizeof lo_k, "k%03d", i);
    snprintf(hi_k, sizeof hi_k, "k%03d", i + 1);
    buf dir = BUF_INIT;
    tab_dir_path(tablets, (uint64_t)i + 1, &dir);
    err = tab_open(s->res, (const char *)dir.data, (uint64_t)i + 1,
                   slice_from_str(lo_k), slice_from_str(hi_k), epoch, &o,
                   &s->t[i]);
    if (err != NULL) cb_die(s, "tab_open", err);
    buf_free(&dir);
  }
  free(tablets);
}

void cb_close(cb_setup *s) {
  for (int i = 0; i < s->n; i++) err_free(tab_close(s->t[i]));
  err_free(clog_close(s->log));
  res_free(s->res);
  free(s->t);
}

void *cb_write(void *arg) {
  cb_writer *a = arg;
  char *val = malloc((size_t)a->value);
  memset(val, 'v', (size_t)a->value);
  uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(a->id + 1);
  for (long i = 0; i < a->n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int tab = (int)(x % (uint64_t)a->s->n);
    char k[40];
    snprintf(k, sizeof(k), "k%03d-%02d-%08ld", tab, a->id, i);
    uint64_t t0 = env_now_micros(env_posix());
    mica_err *err = tab_put(a->s->t[tab], slice_from_str(k),
                            slice_make(val, (size_t)a->value), true);
    if (err != NULL) cb_die(a->s, "put", err);
    if (a->lat != NULL) a->lat[i] = env_now_micros(env_posix()) - t0;
  }
  free(val);
  return NULL;
}
