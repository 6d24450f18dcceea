/* mica-rpc-bench: the RPC transport's own limit on this machine.
 *
 * Echo round trips of a fixed payload over the RPC module, one call at a
 * time and with many in flight, printing calls/s and p50/p99 latency. This
 * is the ceiling the tablet server's benchmark compares its Get against:
 * whatever the tablet server adds on top of moving bytes shows up as the
 * gap between the two.
 *
 * Modes measured, each for --seconds after a short warm-up:
 *   serial     one thread, blocking rpc_unary, one call in flight
 *   async-N    one thread keeping N calls in flight with rpc_async
 *   threads-N  N threads, each with blocking rpc_unary, on one channel
 *   stream     one EchoStream call read chunk by chunk (the shape of a
 *              Scan): chunks/s and MB/s of payload
 * By default the server runs in this process; --serve and --connect split
 * server and client into two processes. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "proto/rpc.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mica-rpc-bench [options]\n"
          "  --payload BYTES     echo payload size (default 1024)\n"
          "  --inflight N        calls in flight for async and threads modes "
          "(default 64)\n"
          "  --seconds S         measuring time per mode (default 3)\n"
          "  --server-threads N  server polling threads (default: one per "
          "core)\n"
          "  --modes LIST        comma list of serial,async,threads,stream "
          "(default all)\n"
          "  --serve[=ADDR]      only run a server (default 127.0.0.1:0), "
          "print its address, serve until killed\n"
          "  --connect ADDR      run the clients against a server elsewhere\n"
          "  --help              this text\n"
          "example:\n"
          "  mica-rpc-bench --payload 1024 --inflight 64 --seconds 3\n");
}

typedef struct lat {
  uint64_t *us;
  size_t n, cap;
} lat;

static void lat_add(lat *l, uint64_t us) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 4096;
    l->us = xrealloc(l->us, l->cap * sizeof *l->us);
  }
  l->us[l->n++] = us;
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t pct(lat *l, double p) {
  if (l->n == 0)
    return 0;
  size_t i = (size_t)(p * (double)(l->n - 1));
  return l->us[i];
}

static void report(const char *mode, size_t payload, lat *l, uint64_t elapsed_us,
                   size_t errors) {
  qsort(l->us, l->n, sizeof *l->us, u64_cmp);
  double rate = (double)l->n * 1e6 / (double)elapsed_us;
  printf("%-12s payload=%zu calls=%zu errors=%zu rate=%.0f/s p50=%lluus "
         "p99=%lluus\n",
         mode, payload, l->n, errors, rate, (unsigned long long)pct(l, 0.50),
         (unsigned long long)pct(l, 0.99));
  fflush(stdout);
}

static uint64_t now_us(void) { return env_now_micros(env_posix()); }

typedef struct run {
  rpc_channel *ch;
  size_t payload;
  int inflight;
  uint64_t warm_until, stop_at;
  lat lat;
  size_t errors;
} run;

static void make_req(rpc_echo_request *req, uint8_t *data, size_t n) {
  memset(req, 0, sizeof *req);
  req->payload.data = data;
  req->payload.len = n;
}

static void *serial_loop(void *arg) {
  run *r = arg;
  uint8_t *data = xcalloc(1, r->payload + 1);
  rpc_echo_request req;
  make_req(&req, data, r->payload);
  for (;;) {
    uint64_t t0 = now_us();
    if (t0 >= r->stop_at)
      break;
    void *resp = NULL;
    mica_err *e = rpc_unary(r->ch, &rpc_m_echo_echo, &req, 10000, &resp);
    uint64_t t1 = now_us();
    if (e != NULL) {
      if (r->errors++ == 0)
        fprintf(stderr, "echo: %s\n", err_msg(e));
      err_free(e);
    } else if (t0 >= r->warm_until) {
      lat_add(&r->lat, t1 - t0);
    }
    rpc_msg_free(resp);
  }
  free(data);
  return NULL;
}

static void async_loop(run *r) {
  uint8_t *data = xcalloc(1, r->payload + 1);
  rpc_echo_request req;
  make_req(&req, data, r->payload);
  rpc_async *a = NULL;
  mica_err *e = rpc_async_new(&a);
  if (e != NULL) {
    fprintf(stderr, "rpc_async_new: %s\n", err_msg(e));
    exit(1);
  }
  for (;;) {
    uint64_t now = now_us();
    while (now < r->stop_at &&
           rpc_async_in_flight(a) < (size_t)r->inflight) {
      e = rpc_async_start(a, r->ch, &rpc_m_echo_echo, &req, 10000,
                          (void *)(uintptr_t)now);
      if (e != NULL) {
        fprintf(stderr, "rpc_async_start: %s\n", err_msg(e));
        exit(1);
      }
    }
    void *tag;
    void *resp;
    if (!rpc_async_next(a, -1, &tag, &resp, &e))
      break;
    uint64_t t0 = (uint64_t)(uintptr_t)tag, t1 = now_us();
    if (e != NULL) {
      if (r->errors++ == 0)
        fprintf(stderr, "echo: %s\n", err_msg(e));
      err_free(e);
    } else if (t0 >= r->warm_until) {
      lat_add(&r->lat, t1 - t0);
    }
    rpc_msg_free(resp);
  }
  rpc_async_free(a);
  free(data);
}

static void stream_loop(rpc_channel *ch, size_t payload, double seconds) {
  uint8_t *data = xcalloc(1, payload + 1);
  rpc_echo_request req;
  make_req(&req, data, payload);
  req.chunks = UINT32_MAX;
  rpc_stream *st = NULL;
  mica_err *e = rpc_stream_open(ch, &rpc_m_echo_stream, &req, 0, &st);
  uint64_t start = now_us();
  uint64_t warm_until = start + 500000;
  uint64_t stop_at = warm_until + (uint64_t)(seconds * 1e6);
  size_t chunks = 0;
  while (e == NULL) {
    void *m = NULL;
    e = rpc_stream_next(st, &m);
    if (m == NULL)
      break;
    rpc_msg_free(m);
    uint64_t now = now_us();
    if (now >= stop_at)
      break;
    if (now >= warm_until)
      chunks++;
  }
  int errors = e != NULL;
  if (e != NULL) {
    fprintf(stderr, "stream: %s\n", err_msg(e));
    err_free(e);
  }
  rpc_stream_free(st);
  double rate = (double)chunks / seconds;
  printf("%-12s payload=%zu chunks=%zu errors=%d rate=%.0f/s "
         "throughput=%.1fMB/s\n",
         "stream", payload, chunks, errors, rate,
         rate * (double)payload / 1e6);
  fflush(stdout);
  free(data);
}

static void measure(const char *mode, rpc_channel *ch, size_t payload,
                    int inflight, double seconds) {
  uint64_t start = now_us();
  uint64_t warm_us = 500000;
  uint64_t run_us = (uint64_t)(seconds * 1e6);
  int nthreads = strcmp(mode, "threads") == 0 ? inflight : 1;
  run *runs = xcalloc((size_t)nthreads, sizeof *runs);
  for (int i = 0; i < nthreads; i++) {
    runs[i].ch = ch;
    runs[i].payload = payload;
    runs[i].inflight = inflight;
    runs[i].warm_until = start + warm_us;
    runs[i].stop_at = start + warm_us + run_us;
  }
  char label[32];
  if (strcmp(mode, "serial") == 0) {
    snprintf(label, sizeof label, "serial");
    serial_loop(&runs[0]);
  } else if (strcmp(mode, "async") == 0) {
    snprintf(label, sizeof label, "async-%d", inflight);
    async_loop(&runs[0]);
  } else {
    snprintf(label, sizeof label, "threads-%d", inflight);
    pthread_t *t = xcalloc((size_t)nthreads, sizeof *t);
    for (int i = 0; i < nthreads; i++)
      if (pthread_create(&t[i], NULL, serial_loop, &runs[i]) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
      }
    for (int i = 0; i < nthreads; i++)
      pthread_join(t[i], NULL);
    free(t);
  }
  lat all = {0};
  size_t errors = 0;
  for (int i = 0; i < nthreads; i++) {
    for (size_t k = 0; k < runs[i].lat.n; k++)
      lat_add(&all, runs[i].lat.us[k]);
    errors += runs[i].errors;
    free(runs[i].lat.us);
  }
  report(label, payload, &all, run_us, errors);
  free(all.us);
  free(runs);
}

int main(int argc, char **argv) {
  size_t payload = 1024;
  int inflight = 64;
  double seconds = 3;
  int server_threads = 0;
  const char *modes = "serial,async,threads,stream";
  const char *serve = NULL;
  const char *connect = NULL;
  bool serve_only = false;
  static const struct option longopts[] = {
      {"payload", required_argument, NULL, 'p'},
      {"inflight", required_argument, NULL, 'i'},
      {"seconds", required_argument, NULL, 's'},
      {"server-threads", required_argument, NULL, 't'},
      {"modes", required_argument, NULL, 'm'},
      {"serve", optional_argument, NULL, 'S'},
      {"connect", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (opt) {
    case 'p': payload = strtoull(optarg, NULL, 10); break;
    case 'i': inflight = atoi(optarg); break;
    case 's': seconds = atof(optarg); break;
    case 't': server_threads = atoi(optarg); break;
    case 'm': modes = optarg; break;
    case 'S': serve_only = true; serve = optarg; break;
    case 'c': connect = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || inflight < 1 || seconds <= 0 ||
      payload > ((size_t)32 << 20)) {
    usage(stderr);
    return 2;
  }
  rpc_server *srv = NULL;
  if (connect == NULL) {
    rpc_server_opts so = {.listen = serve, .threads = server_threads};
    mica_err *e = rpc_server_new(&so, &srv);
    if (e == NULL)
      e = rpc_echo_register(srv);
    if (e == NULL)
      e = rpc_server_start(srv);
    if (e != NULL) {
      fprintf(stderr, "mica-rpc-bench: server: %s\n", err_msg(e));
      return 1;
    }
    connect = rpc_server_address(srv);
    if (serve_only) {
      printf("%s\n", connect);
      fflush(stdout);
      for (;;)
        env_sleep_micros(env_posix(), 3600ull * 1000000);
    }
  }
  rpc_channel *ch = NULL;
  mica_err *e = rpc_channel_new(connect, NULL, &ch);
  if (e != NULL) {
    fprintf(stderr, "mica-rpc-bench: %s\n", err_msg(e));
    return 1;
  }
  printf("# mica-rpc-bench server=%s (%s) payload=%zu inflight=%d "
         "seconds=%.1f\n",
         connect, srv != NULL ? "in-process" : "external", payload, inflight,
         seconds);
  char *list = xstrdup(modes);
  for (char *save = NULL, *m = strtok_r(list, ",", &save); m != NULL;
       m = strtok_r(NULL, ",", &save)) {
    if (strcmp(m, "stream") == 0) {
      stream_loop(ch, payload, seconds);
      continue;
    }
    if (strcmp(m, "serial") != 0 && strcmp(m, "async") != 0 &&
        strcmp(m, "threads") != 0) {
      fprintf(stderr, "mica-rpc-bench: unknown mode '%s'\n", m);
      usage(stderr);
      return 2;
    }
    measure(m, ch, payload, inflight, seconds);
  }
  free(list);
  rpc_channel_free(ch);
  rpc_server_free(srv);
  return 0;
}
