/* Shared by mica-clog-bench (bench_commit_log.c) and mica-clog-s3-bench
 * (bench/clog_s3/bench_clog_s3.c): a set of tablets appending to one
 * server commit log, and the writer threads that make durable puts to
 * them. Any failure prints "<prog>: <what>: <error>" and exits 1. */
#ifndef MICA_BENCH_CLOG_BENCH_H
#define MICA_BENCH_CLOG_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/env.h"
#include "tabletserver/clog.h"
#include "tabletserver/resources.h"
#include "tabletserver/tablet.h"

typedef struct cb_setup {
  const char *prog; /* for error messages */
  env *e;
  int n; /* tablets */
  res_pool *res;
  clog *log; /* NULL: each tablet its own WAL */
  tablet **t;
} cb_setup;

/* Opens s->n tablets under `root`'s tablets directory on s->e: tablet i
 * (from 0) has id i + 1 and range ["k<i>", "k<i+1>") (3 digits), a
 * memtable that does not flush during a run, and the given epoch. With
 * `shared` they append to one commit log named `log_name` opened with
 * `lo` (NULL: defaults); without, s->log is NULL. */
void cb_open(cb_setup *s, const char *root, bool shared,
             const clog_options *lo, const char *log_name, uint64_t epoch);

/* Closes the tablets, then the log, then the resource pool. */
void cb_close(cb_setup *s);

typedef struct cb_writer {
  cb_setup *s;
  int id;
  long n;        /* puts */
  int value;     /* bytes per value */
  uint64_t *lat; /* NULL, or n latencies in microseconds */
} cb_writer;

/* Thread body (arg: cb_writer *): n durable puts of keys
 * "k<tablet>-<id>-<i>" to tablets picked by an xorshift seeded by id. */
void *cb_write(void *arg);

#endif
