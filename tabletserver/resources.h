/* resources: what all tablets of one tablet server share.
 *
 * A server may hold thousands of small tablets, so nothing that costs a
 * thread or a large buffer may exist per tablet. Instead the server makes
 * one res_pool and hands it to every tablet it opens:
 *
 *  - one memory budget for all memtables. Tablets report how many bytes
 *    their memtables hold; when the sum passes the budget, the pool asks
 *    the member with the largest active memtable to flush it, and writers
 *    that find the sum far over budget wait (bounded) for flushes to free
 *    memory;
 *  - one block cache (common/cache.h) that every SSTable reader uses;
 *  - one small pool of background threads that run flushes (first) and
 *    compactions (after) for every tablet;
 *  - the free-space reserve of the data root (res_space_check): below it,
 *    writes are refused at once and no compaction or split starts, so
 *    that flushes, manifests and already committed work always find room
 *    (docs/engine.md, "A full disk").
 *
 * Background work is a res_job: a callback embedded in its owner. A job is
 * queued at most once at a time; scheduling it while it runs makes it run
 * again afterwards. res_job_cancel removes a queued job and waits for a
 * running one, which is how a tablet makes sure no job of its own runs
 * once it closes.
 *
 * Thread-safety: every function may be called from any thread.
 * Lock order: a member's pick/flush callbacks are called with the pool's
 * member lock held, so they must not call res_member_* themselves, and a
 * tablet must not hold its own lock while registering or unregistering. */
#ifndef MICA_TABLETSERVER_RESOURCES_H
#define MICA_TABLETSERVER_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cache.h"
#include "common/env.h"
#include "common/err.h"

typedef struct res_options {
  size_t memtable_budget;    /* bytes for all memtables; default 256 MiB */
  size_t block_cache_bytes;  /* default 64 MiB; 0 means no block cache */
  int background_threads;    /* default 2; 1..64 */
  /* The directory whose file system's free space is watched (the data
   * root); NULL: no reserve, nothing is ever refused for space. */
  const char *data_root;
  /* The reserve: with reserve_percent 0 it is reserve_bytes; otherwise
   * reserve_percent (1..50) of the file system's size, capped at
   * reserve_bytes unless that is 0. Default 5% capped at 1 GiB. */
  uint64_t reserve_bytes;
  unsigned reserve_percent;
  /* While the disk is above the reserve, its free space is read at most
   * this often (a statvfs costs microseconds, a write less); below it, on
   * every check, so writes resume as soon as space returns. The reserve
   * absorbs what is written in between. Default 10 ms; 0: every check. */
  uint64_t space_refresh_micros;
} res_options;

void res_options_init(res_options *o);

typedef struct res_pool res_pool;

/* Starts the background threads. `e` must outlive the pool. Caller frees
 * with res_free() after closing every tablet that uses it. */
mica_err *res_new(env *e, const res_options *opts, res_pool **out);
/* Stops the threads (running jobs finish; queued jobs are dropped, which
 * is why every tablet must be closed first). Accepts NULL. */
void res_free(res_pool *r);

env *res_env(res_pool *r);
/* NULL when block_cache_bytes was 0. Valid until res_free(). */
cache *res_cache(res_pool *r);

/* ---- background jobs ---- */

enum { RES_PRIO_HIGH = 0, RES_PRIO_LOW = 1, RES_PRIO_COUNT_ = 2 };

typedef struct res_job res_job;
typedef void (*res_job_fn)(res_job *job);

/* Embed in the owner; initialize with res_job_init before first use. The
 * fields are the pool's (guarded by its lock). */
struct res_job {
  res_job_fn fn;
  int prio;
  int state;        /* idle, queued, running */
  bool again;       /* scheduled while running */
  res_job *next;    /* queue link */
};

void res_job_init(res_job *job, res_job_fn fn, int prio);
/* Queues `job` unless it is queued already; if it is running, it runs once
 * more when it returns. */
void res_job_schedule(res_pool *r, res_job *job);
/* Unqueues `job` and waits until it is not running. Afterwards the job is
 * idle and only a new res_job_schedule queues it again. */
void res_job_cancel(res_pool *r, res_job *job);

/* Test and operator hook: while paused, the threads start no job (running
 * ones finish). Used to simulate flushes that fall behind. */
void res_pause(res_pool *r, bool paused);

/* ---- memory budget ---- */

/* A tablet registers itself as a member to be asked to flush. */
typedef struct res_member {
  /* Bytes of the active (not yet immutable) memtable: the candidate size. */
  size_t (*active_bytes)(void *arg);
  /* Asks the member to make its active memtable immutable and flush it in
   * the background. Must not block on I/O. */
  void (*request_flush)(void *arg);
  void *arg;
  struct res_member *prev, *next; /* the pool's list */
} res_member;

void res_member_add(res_pool *r, res_member *m);
void res_member_remove(res_pool *r, res_member *m);

/* Memory accounting, in three moves of a memtable's bytes:
 *  res_mem_add      an active memtable grew by `delta` (or, negative, an
 *                   active memtable was dropped without a flush);
 *  res_mem_freeze   an active memtable of `bytes` became immutable (it is
 *                   waiting for or being flushed);
 *  res_mem_release  an immutable memtable of `bytes` was flushed and freed.
 * Flushes are asked for on growth, RocksDB's WriteBufferManager rule: when
 * the active memtables together pass 7/8 of the budget, or all memtables
 * pass the budget while the active ones hold at least half of it, the
 * member with the largest active memtable is asked to flush (again every
 * eighth of the budget of further growth). Memory already being flushed
 * does not make the pool flush small memtables for nothing. Releasing
 * wakes writers waiting in res_wait_for_memory. */
void res_mem_add(res_pool *r, int64_t delta);
void res_mem_freeze(res_pool *r, size_t bytes);
void res_mem_release(res_pool *r, size_t bytes);
/* Bytes of all memtables, active and immutable. */
size_t res_mem_usage(res_pool *r);
size_t res_mem_budget(res_pool *r);

/* Waits while all memtables together hold more than twice the budget
 * (flushes are behind everywhere), until `deadline` (env_now_micros).
 * Returns true when under that limit, false on timeout. */
bool res_wait_for_memory(res_pool *r, uint64_t deadline);

/* ---- free space ---- */

/* NULL when the data root's file system has at least the reserve free (or
 * no data root was given, or its free space cannot be read: that is
 * logged, never a reason to refuse). Otherwise RESOURCE_EXHAUSTED naming
 * the data root, the bytes free, the file system's size and the reserve:
 * "<what> refused ...". Reads the file system's counters (one statvfs) on
 * every call while below the reserve, so space that returns is seen at
 * once, and at most every space_refresh_micros while above it. */
mica_err *res_space_check(res_pool *r, const char *what);
/* The reserve in bytes for a file system of `total` bytes. */
uint64_t res_reserve_for(const res_pool *r, uint64_t total);

/* Jobs run so far, for tests and stats. */
uint64_t res_jobs_run(res_pool *r);

#endif
