/* mica-bench: the YCSB core workloads (and Bigtable's per-server benchmark)
 * against Mica or etcd.
 *
 * A run has two phases, as in YCSB. `load` inserts records 0..N-1; `run`
 * executes a workload's mix of operations on them. Each of --threads worker
 * threads issues one operation at a time (closed loop, optionally throttled
 * to --target ops/s in total) and records its latency in its own histogram;
 * the main thread prints a progress line once a second and, at the end,
 * merges the histograms into the report: throughput, and per operation type
 * count, errors, mean and p50/p95/p99/p99.9/max latency, in text on stdout
 * and optionally as JSON.
 *
 * Records are YCSB's: `fields` fields of `field-length` bytes (10 x 100 by
 * default), stored as one value. Keys are "user" + FNV hash of the record's
 * sequence number, so records inserted in order land all over the key
 * space. Operations follow YCSB's CoreWorkload: an update rewrites the
 * whole value (the fields are one value here), a read-modify-write reads a
 * record and writes it back, a scan reads a uniform 1..max-scan records
 * from a zipfian start key, an insert adds the next record number, and
 * reads only ever choose records whose insert has been acknowledged.
 *
 * Every operation is counted exactly once: the report's counts sum to the
 * operations issued, which the report states, so a lost or doubly counted
 * operation shows. A read that finds no record, or a record of the wrong
 * size, counts as an error of its operation. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "common/slice.h"
#include "mica/status.h"
#include "proto/limits.h"
#include "tools/mica-bench/backend.h"
#include "tools/mica-bench/gen.h"
#include "tools/mica-bench/hist.h"

#define DEFAULT_MASTER "127.0.0.1:7000"

/* ---- workloads ---- */

enum op { OP_READ, OP_UPDATE, OP_INSERT, OP_SCAN, OP_RMW, OP_N };
static const char *const op_names[OP_N] = {"read", "update", "insert", "scan", "rmw"};

enum dist {
  DIST_ZIPF,    /* YCSB scrambled zipfian */
  DIST_LATEST,  /* YCSB skewed latest */
  DIST_UNIFORM, /* uniform over acknowledged records */
  DIST_SEQ,     /* record (operation number mod records), in key order */
};

typedef struct workload {
  const char *name;
  const char *what;
  double p[OP_N];   /* proportions, summing to 1 */
  enum dist dist;
  bool hashed_keys; /* YCSB's hashed insert order, else ordered keys */
  bool scan_fixed;  /* scans read exactly max-scan records, else 1..max */
} workload;

static const workload workloads[] = {
    {"a", "YCSB A: 50% read, 50% update, zipfian", {0.5, 0.5, 0, 0, 0}, DIST_ZIPF, true, false},
    {"b", "YCSB B: 95% read, 5% update, zipfian", {0.95, 0.05, 0, 0, 0}, DIST_ZIPF, true, false},
    {"c", "YCSB C: 100% read, zipfian", {1, 0, 0, 0, 0}, DIST_ZIPF, true, false},
    {"d", "YCSB D: 95% read latest, 5% insert", {0.95, 0, 0.05, 0, 0}, DIST_LATEST, true, false},
    {"e", "YCSB E: 95% scan (1..max-scan records, zipfian start), 5% insert",
     {0, 0, 0.05, 0.95, 0}, DIST_ZIPF, true, false},
    {"f", "YCSB F: 50% read, 50% read-modify-write, zipfian", {0.5, 0, 0, 0, 0.5}, DIST_ZIPF,
     true, false},
    {"seqwrite", "Bigtable sequential writes: records in key order", {0, 1, 0, 0, 0}, DIST_SEQ,
     false, false},
    {"randwrite", "Bigtable random writes: uniform records", {0, 1, 0, 0, 0}, DIST_UNIFORM, false,
     false},
    {"seqread", "Bigtable sequential reads: records in key order", {1, 0, 0, 0, 0}, DIST_SEQ,
     false, false},
    {"randread", "Bigtable random reads: uniform records", {1, 0, 0, 0, 0}, DIST_UNIFORM, false,
     false},
    {"scan", "Bigtable scans: max-scan records per scan, in key order", {0, 0, 0, 1, 0}, DIST_SEQ,
     false, true},
};

static const workload *find_workload(const char *name) {
  for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
    if (strcmp(workloads[i].name, name) == 0) return &workloads[i];
  return NULL;
}

/* ---- configuration ---- */

typedef struct config {
  bool load; /* phase */
  const workload *w;
  const char *backend;
  const char *address;
  const char *token; /* --token or $MICA_TOKEN (mica backend) */
  const char *tls_ca; /* --ca or $MICA_CA (mica backend); NULL = plaintext */
  const char *tls_cert; /* --cert/--key or $MICA_CERT/$MICA_KEY: a client */
  const char *tls_key;  /* certificate (mica backend, with --ca) */
  const char *table;
  uint64_t records;
  uint64_t ops;
  double duration_s;
  int threads;
  double target;
  uint32_t fields;
  uint32_t field_len;
  uint32_t max_scan;
  uint32_t tablets;
  int64_t timeout_ms;
  uint64_t seed;
  const char *json;
  bool quiet;
} config;

static void usage(FILE *f) {
  fprintf(f,
          "usage: mica-bench load|run [flags]\n"
          "\n"
          "Runs YCSB's core workloads (or Bigtable's per-server benchmark) against a\n"
          "Mica cluster, an etcd server or PostgreSQL. `load` inserts records 0..N-1;\n"
          "`run` runs the workload's operation mix over them. Writes are durable when\n"
          "acknowledged on every backend (Mica syncs its WAL, etcd fsyncs its raft log,\n"
          "PostgreSQL flushes its commit record: synchronous_commit = on, fsync on).\n"
          "\n"
          "flags (--flag VALUE or --flag=VALUE):\n"
          "  --workload W        a  50%% read / 50%% update, zipfian\n"
          "                      b  95%% read / 5%% update, zipfian\n"
          "                      c  100%% read, zipfian\n"
          "                      d  95%% read latest / 5%% insert\n"
          "                      e  95%% scan (1..max-scan records, zipfian start) / 5%% insert\n"
          "                      f  50%% read / 50%% read-modify-write, zipfian\n"
          "                      seqwrite randwrite seqread randread scan: Bigtable's\n"
          "                      (OSDI 2006, Figure 6) with keys in record order\n"
          "                      (default a)\n"
          "  --backend B         mica, etcd or postgres (default mica)\n"
          "  --master HOST:PORT  Mica master (default $MICA_MASTER, else %s)\n"
          "  --token TOKEN       Mica bearer token (default $MICA_TOKEN)\n"
          "  --ca PATH           Mica over TLS, trusting this CA (default $MICA_CA)\n"
          "  --cert PATH, --key PATH  Mica TLS client certificate and its key, together\n"
          "                      and with --ca (default $MICA_CERT, $MICA_KEY)\n"
          "  --etcd HOST:PORT    etcd server; implies --backend etcd\n"
          "  --postgres CONNINFO PostgreSQL, a libpq connection string or URI; implies\n"
          "                      --backend postgres; one connection per thread, the\n"
          "                      table (key bytea primary key, value bytea) made by load\n"
          "  --table T           table (etcd: key prefix T/) (default usertable)\n"
          "  --records N         records loaded / chosen from (default 1000)\n"
          "  --ops N             run: operations in total (default 1000; 0 = until\n"
          "                      --duration); load: ignored, it inserts --records\n"
          "  --duration S        stop issuing operations after S seconds (default none)\n"
          "  --threads N         client threads, one operation in flight each (default 8)\n"
          "  --target OPS        total rate to hold, ops/s (default 0 = as fast as possible)\n"
          "  --fields N          fields per record (default 10)\n"
          "  --field-length N    bytes per field (default 100): records of N*fields bytes\n"
          "  --max-scan N        longest scan in records (default 100)\n"
          "  --tablets N         load, Mica: create the table pre-split into N tablets at\n"
          "                      quantiles of its keys (default 1; kept if it exists)\n"
          "  --timeout MS        deadline per call, retries included (default 10000)\n"
          "  --seed N            random seed (default 1)\n"
          "  --json FILE         also write the report as JSON to FILE\n"
          "  --quiet             no progress output\n"
          "  --help              this text\n"
          "\n"
          "Progress goes to stderr (one updating line on a terminal, else a line per\n"
          "second), the report to stdout. Exit status: 0 when every operation\n"
          "succeeded, 1 when any failed or the backend was unreachable, 2 for bad usage.\n"
          "\n"
          "example:\n"
          "  mica-bench load --workload a --records 100000 --threads 16 --tablets 8\n"
          "  mica-bench run --workload a --records 100000 --ops 200000 --threads 16 \\\n"
          "      --json a.json\n"
          "  mica-bench run --etcd 127.0.0.1:2379 --workload c --records 100000 --ops 100000\n"
          "  mica-bench load --postgres postgresql://mica@127.0.0.1:5432/postgres \\\n"
          "      --records 100000 --threads 16\n",
          DEFAULT_MASTER);
}

static void usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "mica-bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n\n");
  va_end(ap);
  usage(stderr);
  exit(2);
}

static uint64_t parse_u64(const char *flag, const char *v, uint64_t lo, uint64_t hi) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-' || x < lo || x > hi)
    usage_error("%s: '%s' is not a whole number in [%llu, %llu]", flag, v,
                (unsigned long long)lo, (unsigned long long)hi);
  return x;
}

static double parse_double(const char *flag, const char *v) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !(x >= 0) || isinf(x))
    usage_error("%s: '%s' is not a non-negative number", flag, v);
  return x;
}

static const char *const value_flags[] = {
    "--workload", "--backend", "--master", "--etcd", "--postgres", "--table", "--records", "--ops",
    "--duration", "--threads", "--target", "--fields", "--field-length", "--max-scan",
    "--tablets", "--timeout", "--seed", "--json", "--token", "--ca",
    "--cert", "--key"};

static bool value_flag(const char *name) {
  for (size_t i = 0; i < sizeof value_flags / sizeof value_flags[0]; i++)
    if (strcmp(value_flags[i], name) == 0) return true;
  return false;
}

static void parse_args(int argc, char **argv, config *c) {
  const char *env_master = getenv("MICA_MASTER");
  *c = (config){.backend = "mica", .address = env_master && *env_master ? env_master : DEFAULT_MASTER,
                .table = "usertable", .records = 1000, .ops = 1000, .threads = 8, .fields = 10,
                .field_len = 100, .max_scan = 100, .tablets = 1, .timeout_ms = 10000, .seed = 1,
                .w = find_workload("a")};
  const char *env_token = getenv("MICA_TOKEN");
  if (env_token && *env_token) c->token = env_token;
  const char *env_ca = getenv("MICA_CA");
  if (env_ca && *env_ca) c->tls_ca = env_ca;
  const char *env_cert = getenv("MICA_CERT"), *env_key = getenv("MICA_KEY");
  if (env_cert && *env_cert) c->tls_cert = env_cert;
  if (env_key && *env_key) c->tls_key = env_key;
  const char *etcd = NULL, *postgres = NULL;
  bool have_phase = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    if (a[0] != '-') {
      if (have_phase) usage_error("unexpected argument '%s'", a);
      if (strcmp(a, "load") == 0) c->load = true;
      else if (strcmp(a, "run") != 0) usage_error("unknown phase '%s' (load or run)", a);
      have_phase = true;
      continue;
    }
    if (strcmp(a, "--quiet") == 0) {
      c->quiet = true;
      continue;
    }
    /* Every other flag takes a value, inline or as the next argument. */
    char name[64];
    const char *v;
    const char *eq = strchr(a, '=');
    if (eq) {
      if ((size_t)(eq - a) >= sizeof name) usage_error("unknown flag '%s'", a);
      memcpy(name, a, (size_t)(eq - a));
      name[eq - a] = '\0';
      v = eq + 1;
    } else {
      if (strlen(a) >= sizeof name || !value_flag(a)) usage_error("unknown flag '%s'", a);
      strcpy(name, a);
      if (i + 1 >= argc) usage_error("%s needs a value", a);
      v = argv[++i];
    }
    if (strcmp(name, "--workload") == 0) {
      c->w = find_workload(v);
      if (!c->w) usage_error("unknown workload '%s'", v);
    } else if (strcmp(name, "--backend") == 0) {
      if (strcmp(v, "mica") != 0 && strcmp(v, "etcd") != 0 && strcmp(v, "postgres") != 0)
        usage_error("unknown backend '%s' (mica, etcd or postgres)", v);
      c->backend = v;
    } else if (strcmp(name, "--master") == 0) {
      c->address = v;
    } else if (strcmp(name, "--token") == 0) {
      c->token = v;
    } else if (strcmp(name, "--ca") == 0) {
      c->tls_ca = v;
    } else if (strcmp(name, "--cert") == 0) {
      c->tls_cert = v;
    } else if (strcmp(name, "--key") == 0) {
      c->tls_key = v;
    } else if (strcmp(name, "--etcd") == 0) {
      etcd = v;
    } else if (strcmp(name, "--postgres") == 0) {
      if (!*v) usage_error("--postgres: empty connection string");
      postgres = v;
    } else if (strcmp(name, "--table") == 0) {
      if (!*v) usage_error("--table: empty name");
      c->table = v;
    } else if (strcmp(name, "--records") == 0) {
      c->records = parse_u64(name, v, 1, UINT64_C(1) << 40);
    } else if (strcmp(name, "--ops") == 0) {
      c->ops = parse_u64(name, v, 0, UINT64_C(1) << 50);
    } else if (strcmp(name, "--duration") == 0) {
      c->duration_s = parse_double(name, v);
    } else if (strcmp(name, "--threads") == 0) {
      c->threads = (int)parse_u64(name, v, 1, 1024);
    } else if (strcmp(name, "--target") == 0) {
      c->target = parse_double(name, v);
    } else if (strcmp(name, "--fields") == 0) {
      c->fields = (uint32_t)parse_u64(name, v, 1, 1000);
    } else if (strcmp(name, "--field-length") == 0) {
      c->field_len = (uint32_t)parse_u64(name, v, 1, 1 << 20);
    } else if (strcmp(name, "--max-scan") == 0) {
      c->max_scan = (uint32_t)parse_u64(name, v, 1, 100000);
    } else if (strcmp(name, "--tablets") == 0) {
      c->tablets = (uint32_t)parse_u64(name, v, 1, 100000);
    } else if (strcmp(name, "--timeout") == 0) {
      c->timeout_ms = (int64_t)parse_u64(name, v, 1, 3600 * 1000);
    } else if (strcmp(name, "--seed") == 0) {
      c->seed = parse_u64(name, v, 0, UINT64_MAX);
    } else if (strcmp(name, "--json") == 0) {
      c->json = v;
    } else {
      usage_error("unknown flag '%s'", name);
    }
  }
  if (!have_phase) usage_error("say which phase: load or run");
  if (etcd && postgres) usage_error("--etcd and --postgres: choose one backend");
  if (etcd) {
    c->backend = "etcd";
    c->address = etcd;
  } else if (postgres) {
    c->backend = "postgres";
    c->address = postgres;
  } else if (strcmp(c->backend, "etcd") == 0) {
    usage_error("--backend etcd needs --etcd HOST:PORT");
  } else if (strcmp(c->backend, "postgres") == 0) {
    usage_error("--backend postgres needs --postgres CONNINFO");
  }
  bool mica = strcmp(c->backend, "mica") == 0;
  if (mica && (c->tls_cert != NULL) != (c->tls_key != NULL))
    usage_error("--cert and --key go together (a client certificate and its key)");
  if (mica && c->tls_cert && !c->tls_ca)
    usage_error("--cert and --key need --ca (the CA the servers' certificates chain to)");
  if (c->load) c->ops = c->records;
  if (c->ops == 0 && c->duration_s <= 0) usage_error("--ops 0 needs --duration");
  if ((uint64_t)c->fields * c->field_len > MICA_MAX_VALUE)
    usage_error("records of %llu bytes exceed the 8 MiB value limit",
                (unsigned long long)c->fields * c->field_len);
}

/* ---- shared run state ---- */

typedef struct op_stats {
  hist lat;
  uint64_t errors;
  uint64_t rows;           /* scans: records returned */
  char first_error[256];   /* the first failure's message */
} op_stats;

typedef struct worker {
  pthread_t thread;
  int index;
  struct run *run;
  gen_rng rng;
  gen_scrambled zipf;
  gen_latest latest;
  op_stats st[OP_N];
  uint64_t issued;
  /* Read by the progress line while the worker runs. */
  _Atomic uint64_t done;
  _Atomic uint64_t failed;
  _Atomic uint64_t lat_sum_us;
  buf key, value, scratch;
} worker;

typedef struct run {
  const config *c;
  backend bk;
  gen_acked acked;          /* record ids: inserts take, readers stay below */
  uint64_t key_space;       /* zipfian range: records + expected inserts */
  double cum[OP_N];         /* cumulative proportions */
  _Atomic uint64_t tickets; /* operations handed out */
  _Atomic bool stop;        /* --duration elapsed */
  uint64_t start_us;
  double latest_zetan;      /* zeta(records) for the latest generator */
} run;

static uint64_t now_us(void) { return env_now_micros(env_posix()); }

static void fill_value(worker *w) {
  const config *c = w->run->c;
  size_t n = (size_t)c->fields * c->field_len;
  buf_resize(&w->value, n);
  /* Printable random bytes, like YCSB's random field strings; eight at a
   * time from one draw. */
  for (size_t i = 0; i < n; i += 8) {
    uint64_t r = gen_rng_next(&w->rng);
    for (size_t j = i; j < i + 8 && j < n; j++, r >>= 8) w->value.data[j] = (uint8_t)(' ' + (r & 0xff) % 95);
  }
}

static void set_key(worker *w, uint64_t id) {
  char k[GEN_KEY_MAX];
  size_t n = gen_key(id, w->run->c->w->hashed_keys, k);
  buf_clear(&w->key);
  buf_append(&w->key, k, n);
}

/* The record an operation other than insert works on. */
static uint64_t choose_record(worker *w, uint64_t ticket) {
  run *r = w->run;
  uint64_t limit = gen_acked_limit(&r->acked);
  switch (r->c->w->dist) {
  case DIST_ZIPF:
    /* YCSB draws over records plus the inserts expected, and draws again
     * while the choice is not yet acknowledged. */
    for (;;) {
      uint64_t id = gen_scrambled_next(&w->zipf, &w->rng);
      if (id < limit) return id;
    }
  case DIST_LATEST:
    return gen_latest_next(&w->latest, &w->rng, limit);
  case DIST_UNIFORM:
    return gen_rng_below(&w->rng, limit);
  case DIST_SEQ:
    break;
  }
  /* Scans of the sequential workload step by whole scans. */
  uint64_t step = r->c->w->scan_fixed ? r->c->max_scan : 1;
  return (ticket * step) % limit;
}

static void note_error(worker *w, enum op op, mica_err *e) {
  op_stats *s = &w->st[op];
  if (s->errors++ == 0)
    snprintf(s->first_error, sizeof s->first_error, "%s: %s", mica_code_name(err_code(e)),
             err_msg(e));
  err_free(e);
}

/* Runs one operation; returns whether it succeeded. */
static bool do_op(worker *w, enum op op, uint64_t ticket) {
  run *r = w->run;
  const config *c = r->c;
  size_t record_size = (size_t)c->fields * c->field_len;
  mica_err *e = NULL;
  switch (op) {
  case OP_INSERT: {
    uint64_t id = r->c->load ? ticket : gen_acked_take(&r->acked);
    set_key(w, id);
    fill_value(w);
    e = r->bk.write(r->bk.h, buf_slice(&w->key), buf_slice(&w->value));
    if (!r->c->load) gen_acked_done(&r->acked, id);
    break;
  }
  case OP_UPDATE:
    set_key(w, choose_record(w, ticket));
    fill_value(w);
    e = r->bk.write(r->bk.h, buf_slice(&w->key), buf_slice(&w->value));
    break;
  case OP_READ:
  case OP_RMW:
    set_key(w, choose_record(w, ticket));
    e = r->bk.read(r->bk.h, buf_slice(&w->key), &w->scratch);
    if (!e && w->scratch.len != record_size)
      e = err_new(MICA_CORRUPTION, "record %.*s has %zu bytes, not %zu", (int)w->key.len,
                  (const char *)w->key.data, w->scratch.len, record_size);
    if (!e && op == OP_RMW) {
      /* Modify: a fresh record, as YCSB rewrites the fields it read. */
      fill_value(w);
      e = r->bk.write(r->bk.h, buf_slice(&w->key), buf_slice(&w->value));
    }
    break;
  case OP_SCAN: {
    set_key(w, choose_record(w, ticket));
    uint32_t len = c->w->scan_fixed ? c->max_scan
                                    : 1 + (uint32_t)gen_rng_below(&w->rng, c->max_scan);
    uint64_t rows = 0;
    e = r->bk.scan(r->bk.h, buf_slice(&w->key), len, &rows);
    w->st[OP_SCAN].rows += rows;
    break;
  }
  case OP_N:
    break;
  }
  if (e) {
    note_error(w, op, e);
    return false;
  }
  return true;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  run *r = w->run;
  const config *c = r->c;
  double interval_us = c->target > 0 ? 1e6 * c->threads / c->target : 0;
  /* Spread the threads' first deadlines over one interval so throttled
   * threads do not fire in lockstep. */
  double next_us = (double)r->start_us + interval_us * w->index / c->threads;
  for (;;) {
    if (atomic_load_explicit(&r->stop, memory_order_relaxed)) break;
    uint64_t ticket = atomic_fetch_add_explicit(&r->tickets, 1, memory_order_relaxed);
    if (c->ops && ticket >= c->ops) break;
    if (interval_us > 0) {
      uint64_t now = now_us();
      if ((double)now < next_us) env_sleep_micros(env_posix(), (uint64_t)(next_us - (double)now));
      next_us += interval_us;
    }
    enum op op = OP_INSERT;
    if (!c->load) {
      double u = gen_rng_double(&w->rng);
      op = OP_N - 1;
      for (int i = 0; i < OP_N; i++)
        if (u < r->cum[i]) {
          op = (enum op)i;
          break;
        }
    }
    w->issued++;
    uint64_t t0 = now_us();
    bool ok = do_op(w, op, ticket);
    uint64_t lat = now_us() - t0;
    hist_add(&w->st[op].lat, lat);
    atomic_fetch_add_explicit(&w->lat_sum_us, lat, memory_order_relaxed);
    if (!ok) atomic_fetch_add_explicit(&w->failed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->done, 1, memory_order_relaxed);
  }
  return NULL;
}

/* ---- table layout ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The split keys cutting the table's records into `tablets` parts of about
 * equal count: quantiles of the keys of a sample of the records. */
static slice *split_keys(const config *c, size_t *n) {
  *n = 0;
  if (c->tablets < 2) return NULL;
  uint64_t sample = c->records < 100000 ? c->records : 100000;
  char **keys = xcalloc(sample, sizeof *keys);
  for (uint64_t i = 0; i < sample; i++) {
    char k[GEN_KEY_MAX];
    uint64_t id = i * c->records / sample;
    gen_key(id, c->w->hashed_keys, k);
    keys[i] = xstrdup(k);
  }
  qsort(keys, sample, sizeof *keys, cmp_str);
  slice *out = xcalloc(c->tablets, sizeof *out);
  for (uint32_t t = 1; t < c->tablets; t++) {
    const char *k = keys[(uint64_t)t * sample / c->tablets];
    if (*n > 0 && strcmp(k, (const char *)out[*n - 1].data) <= 0) continue;
    out[(*n)++] = slice_make(xstrdup(k), strlen(k));
  }
  for (uint64_t i = 0; i < sample; i++) free(keys[i]);
  free(keys);
  return out;
}

/* ---- reporting ---- */

static void progress(run *r, worker *ws, bool tty, uint64_t *last_done, uint64_t *last_us) {
  uint64_t done = 0, failed = 0, lat = 0;
  for (int i = 0; i < r->c->threads; i++) {
    done += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
    failed += atomic_load_explicit(&ws[i].failed, memory_order_relaxed);
    lat += atomic_load_explicit(&ws[i].lat_sum_us, memory_order_relaxed);
  }
  uint64_t now = now_us();
  double secs = (double)(now - *last_us) / 1e6;
  double rate = secs > 0 ? (double)(done - *last_done) / secs : 0;
  char line[256];
  int n = snprintf(line, sizeof line, "%6.1f s  %" PRIu64 " ops", (double)(now - r->start_us) / 1e6,
                   done);
  if (r->c->ops) n += snprintf(line + n, sizeof line - (size_t)n, " (%.0f%%)",
                               100.0 * (double)done / (double)r->c->ops);
  snprintf(line + n, sizeof line - (size_t)n, "  %.0f ops/s  avg %.0f us  errors %" PRIu64, rate,
           done ? (double)lat / (double)done : 0.0, failed);
  if (tty) fprintf(stderr, "\r%s\033[K", line);
  else fprintf(stderr, "%s\n", line);
  fflush(stderr);
  *last_done = done;
  *last_us = now;
}

typedef struct totals {
  op_stats st[OP_N];
  hist all; /* every operation of every type */
  uint64_t issued, counted, errors;
  double secs;
} totals;

static void json_str(buf *b, const char *s) {
  buf_push(b, '"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    char esc[8];
    if (ch == '"' || ch == '\\') {
      buf_push(b, '\\');
      buf_push(b, ch);
    } else if (ch < 0x20 || ch >= 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", ch);
      buf_append(b, esc, 6);
    } else {
      buf_push(b, ch);
    }
  }
  buf_push(b, '"');
}

static void json_fmt(buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static const double pcts[] = {50, 95, 99, 99.9};
static const char *const pct_names[] = {"p50", "p95", "p99", "p99_9"};

static mica_err *write_json(const config *c, const totals *t) {
  buf b = {0};
  json_fmt(&b, "{\n  \"tool\": \"mica-bench\",\n  \"phase\": \"%s\",\n  \"workload\": ",
           c->load ? "load" : "run");
  json_str(&b, c->w->name);
  json_fmt(&b, ",\n  \"backend\": ");
  json_str(&b, c->backend);
  json_fmt(&b, ",\n  \"address\": ");
  json_str(&b, c->address);
  json_fmt(&b, ",\n  \"table\": ");
  json_str(&b, c->table);
  json_fmt(&b,
           ",\n  \"records\": %" PRIu64 ",\n  \"threads\": %d,\n  \"record_bytes\": %u,\n"
           "  \"target_ops_s\": %.0f,\n  \"ops_requested\": %" PRIu64 ",\n"
           "  \"ops_issued\": %" PRIu64 ",\n  \"ops_counted\": %" PRIu64 ",\n"
           "  \"errors\": %" PRIu64 ",\n  \"seconds\": %.3f,\n  \"throughput_ops_s\": %.1f,\n"
           "  \"operations\": {",
           c->records, c->threads, c->fields * c->field_len, c->target, c->ops, t->issued,
           t->counted, t->errors, t->secs, t->secs > 0 ? (double)t->counted / t->secs : 0);
  bool first = true;
  for (int op = 0; op < OP_N; op++) {
    const op_stats *s = &t->st[op];
    if (s->lat.count == 0) continue;
    json_fmt(&b, "%s\n    \"%s\": {\"count\": %" PRIu64 ", \"errors\": %" PRIu64
                 ", \"ops_s\": %.1f, \"mean_us\": %.1f",
             first ? "" : ",", op_names[op], s->lat.count, s->errors,
             t->secs > 0 ? (double)s->lat.count / t->secs : 0, hist_mean(&s->lat));
    for (int p = 0; p < 4; p++)
      json_fmt(&b, ", \"%s_us\": %" PRIu64, pct_names[p], hist_percentile(&s->lat, pcts[p]));
    json_fmt(&b, ", \"max_us\": %" PRIu64, s->lat.max);
    if (op == OP_SCAN)
      json_fmt(&b, ", \"rows\": %" PRIu64 ", \"rows_s\": %.1f", s->rows,
               t->secs > 0 ? (double)s->rows / t->secs : 0);
    if (s->errors) {
      json_fmt(&b, ", \"first_error\": ");
      json_str(&b, s->first_error);
    }
    json_fmt(&b, "}");
    first = false;
  }
  json_fmt(&b, "\n  },\n  \"all\": {\"count\": %" PRIu64 ", \"mean_us\": %.1f", t->all.count,
           hist_mean(&t->all));
  for (int p = 0; p < 4; p++)
    json_fmt(&b, ", \"%s_us\": %" PRIu64, pct_names[p], hist_percentile(&t->all, pcts[p]));
  json_fmt(&b, ", \"max_us\": %" PRIu64 "}\n}\n", t->all.max);
  mica_err *e = env_write_file_atomic(env_posix(), c->json, buf_slice(&b));
  buf_free(&b);
  return e;
}

static void print_report(const config *c, const totals *t) {
  printf("mica-bench %s: workload %s (%s)\n", c->load ? "load" : "run", c->w->name, c->w->what);
  printf("backend %s at %s, table %s, %" PRIu64 " records of %u bytes, %d threads",
         c->backend, c->address, c->table, c->records, c->fields * c->field_len, c->threads);
  if (c->target > 0) printf(", target %.0f ops/s", c->target);
  printf("\n");
  printf("operations: %" PRIu64 " issued, %" PRIu64 " counted, %" PRIu64 " errors, in %.2f s\n",
         t->issued, t->counted, t->errors, t->secs);
  printf("throughput: %.1f ops/s\n\n", t->secs > 0 ? (double)t->counted / t->secs : 0);
  printf("%-7s %10s %7s %10s %9s %9s %9s %9s %9s %9s\n", "op", "count", "errors", "ops/s",
         "mean_us", "p50_us", "p95_us", "p99_us", "p99.9_us", "max_us");
  for (int op = 0; op < OP_N; op++) {
    const op_stats *s = &t->st[op];
    if (s->lat.count == 0) continue;
    printf("%-7s %10" PRIu64 " %7" PRIu64 " %10.1f %9.1f", op_names[op], s->lat.count, s->errors,
           t->secs > 0 ? (double)s->lat.count / t->secs : 0, hist_mean(&s->lat));
    for (int p = 0; p < 4; p++) printf(" %9" PRIu64, hist_percentile(&s->lat, pcts[p]));
    printf(" %9" PRIu64 "\n", s->lat.max);
  }
  printf("%-7s %10" PRIu64 " %7" PRIu64 " %10.1f %9.1f", "all", t->all.count, t->errors,
         t->secs > 0 ? (double)t->all.count / t->secs : 0, hist_mean(&t->all));
  for (int p = 0; p < 4; p++) printf(" %9" PRIu64, hist_percentile(&t->all, pcts[p]));
  printf(" %9" PRIu64 "\n", t->all.max);
  if (t->st[OP_SCAN].lat.count)
    printf("scan rows: %" PRIu64 " (%.1f rows/s, %.1f per scan)\n", t->st[OP_SCAN].rows,
           t->secs > 0 ? (double)t->st[OP_SCAN].rows / t->secs : 0,
           (double)t->st[OP_SCAN].rows / (double)t->st[OP_SCAN].lat.count);
  for (int op = 0; op < OP_N; op++)
    if (t->st[op].errors)
      printf("first %s error: %s\n", op_names[op], t->st[op].first_error);
  fflush(stdout);
}

/* ---- main ---- */

int main(int argc, char **argv) {
  config c;
  parse_args(argc, argv, &c);

  run *r = xcalloc(1, sizeof *r);
  r->c = &c;
  bk_config bc = {.address = c.address, .table = c.table, .timeout_ms = c.timeout_ms,
                  .token = c.token, .tls_ca = c.tls_ca,
                  .tls_cert = c.tls_cert, .tls_key = c.tls_key};
  mica_err *e = bk_open(c.backend, &bc, &r->bk);
  if (e) {
    fprintf(stderr, "mica-bench: %s %s: %s\n", c.backend, c.address, err_msg(e));
    err_free(e);
    free(r);
    return 1;
  }
  if (c.load) {
    size_t n = 0;
    slice *splits = split_keys(&c, &n);
    e = r->bk.prepare(r->bk.h, splits, n);
    for (size_t i = 0; i < n; i++) free((void *)splits[i].data);
    free(splits);
    if (e) {
      fprintf(stderr, "mica-bench: %s %s: %s\n", c.backend, c.address, err_msg(e));
      err_free(e);
      r->bk.close(r->bk.h);
      free(r);
      return 1;
    }
  }

  double sum = 0;
  for (int i = 0; i < OP_N; i++) r->cum[i] = (sum += c.w->p[i]);
  gen_acked_init(&r->acked, c.records);
  /* YCSB's key chooser covers the records plus twice the inserts the run is
   * expected to make, so new records get their share of popularity. */
  uint64_t expected_inserts = (uint64_t)((double)c.ops * c.w->p[OP_INSERT] * 2);
  r->key_space = c.records + expected_inserts;
  if (c.w->dist == DIST_LATEST) r->latest_zetan = gen_zeta(c.records, GEN_ZIPF_THETA);

  worker *ws = xcalloc((size_t)c.threads, sizeof *ws);
  for (int i = 0; i < c.threads; i++) {
    worker *w = &ws[i];
    w->index = i;
    w->run = r;
    gen_rng_seed(&w->rng, c.seed * 0x100000001B3ull + (uint64_t)i);
    gen_scrambled_init(&w->zipf, r->key_space);
    if (c.w->dist == DIST_LATEST) gen_latest_init(&w->latest, c.records, r->latest_zetan);
    for (int op = 0; op < OP_N; op++) hist_init(&w->st[op].lat);
  }

  bool tty = isatty(STDERR_FILENO);
  r->start_us = now_us();
  uint64_t stop_at = c.duration_s > 0 ? r->start_us + (uint64_t)(c.duration_s * 1e6) : 0;
  int started = 0;
  for (; started < c.threads; started++) {
    if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
      fprintf(stderr, "mica-bench: cannot start thread %d\n", started);
      atomic_store(&r->stop, true);
      break;
    }
  }

  /* Progress once a second until every operation has been issued and
   * ended (or the duration ran out and the workers stopped). */
  uint64_t last_done = 0, last_us = r->start_us, next_tick = r->start_us + 1000000;
  for (;;) {
    uint64_t done = 0;
    for (int i = 0; i < started; i++) done += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
    uint64_t now = now_us();
    if (stop_at && now >= stop_at) atomic_store(&r->stop, true);
    if ((c.ops && done >= c.ops) || atomic_load(&r->stop) || started < c.threads) break;
    if (now >= next_tick) {
      if (!c.quiet) progress(r, ws, tty, &last_done, &last_us);
      next_tick += 1000000;
    }
    env_sleep_micros(env_posix(), 20000);
  }
  for (int i = 0; i < started; i++) pthread_join(ws[i].thread, NULL);
  uint64_t end_us = now_us();
  if (!c.quiet && tty) fprintf(stderr, "\r\033[K");

  totals *t = xcalloc(1, sizeof *t);
  for (int op = 0; op < OP_N; op++) hist_init(&t->st[op].lat);
  hist_init(&t->all);
  t->secs = (double)(end_us - r->start_us) / 1e6;
  for (int i = 0; i < started; i++) {
    t->issued += ws[i].issued;
    for (int op = 0; op < OP_N; op++) {
      op_stats *from = &ws[i].st[op], *into = &t->st[op];
      hist_merge(&into->lat, &from->lat);
      into->rows += from->rows;
      if (from->errors && !into->errors) memcpy(into->first_error, from->first_error, sizeof into->first_error);
      into->errors += from->errors;
    }
  }
  for (int op = 0; op < OP_N; op++) {
    hist_merge(&t->all, &t->st[op].lat);
    t->counted += t->st[op].lat.count;
    t->errors += t->st[op].errors;
  }
  print_report(&c, t);
  int status = t->errors || t->issued != t->counted || started < c.threads ? 1 : 0;
  if (c.json) {
    e = write_json(&c, t);
    if (e) {
      fprintf(stderr, "mica-bench: --json %s: %s\n", c.json, err_msg(e));
      err_free(e);
      status = 1;
    }
  }

  for (int i = 0; i < c.threads; i++) {
    buf_free(&ws[i].key);
    buf_free(&ws[i].value);
    buf_free(&ws[i].scratch);
  }
  free(ws);
  free(t);
  gen_acked_destroy(&r->acked);
  r->bk.close(r->bk.h);
  free(r);
  return status;
}
