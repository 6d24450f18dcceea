/* resources: the server-wide memtable budget, block cache and background
 * thread pool that every tablet of a server shares (see resources.h).
 *
 * The pool keeps two FIFO queues of intrusive jobs, flushes ahead of
 * compactions: a flush frees memory and unblocks writers, a compaction only
 * makes reads cheaper, so a long compaction must never delay a flush that
 * another thread could run. */
#include "tabletserver/resources.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

enum { JOB_IDLE = 0, JOB_QUEUED = 1, JOB_RUNNING = 2 };

struct res_pool {
  env *e;
  char *data_root; /* NULL: no reserve */
  uint64_t reserve_bytes;
  unsigned reserve_percent;
  atomic_bool statvfs_failed; /* logged once */
  uint64_t space_refresh;
  atomic_uint_fast64_t space_ok_at; /* when free space was last >= reserve;
                                       0: not known to be */
  cache *block_cache;
  size_t budget;

  pthread_mutex_t mu;
  pthread_cond_t work_cv;  /* a job was queued, unpaused, or stopping */
  pthread_cond_t done_cv;  /* a job finished running */
  /* Guarded by mu: */
  res_job *head[RES_PRIO_COUNT_], *tail[RES_PRIO_COUNT_];
  bool stopping;
  bool paused;
  uint64_t jobs_run;

  pthread_t *threads;
  int n_threads;

  pthread_mutex_t member_mu;
  res_member *members; /* guarded by member_mu */

  atomic_int_fast64_t mem_used;   /* all memtables */
  atomic_int_fast64_t mem_active; /* active memtables only */
  pthread_mutex_t mem_mu;
  pthread_cond_t mem_cv; /* memory was freed */
};

void res_options_init(res_options *o) {
  o->memtable_budget = 256u << 20;
  o->block_cache_bytes = 64u << 20;
  o->background_threads = 2;
  o->data_root = NULL;
  o->reserve_bytes = (uint64_t)1 << 30;
  o->reserve_percent = 5;
  o->space_refresh_micros = 10000;
}

/* Takes the first job of the highest priority. Caller holds mu. */
static res_job *pop_job(res_pool *r) {
  for (int p = 0; p < RES_PRIO_COUNT_; p++) {
    res_job *j = r->head[p];
    if (j != NULL) {
      r->head[p] = j->next;
      if (r->head[p] == NULL) r->tail[p] = NULL;
      j->next = NULL;
      return j;
    }
  }
  return NULL;
}

static void push_job(res_pool *r, res_job *j) {
  int p = j->prio;
  j->next = NULL;
  if (r->tail[p] != NULL) r->tail[p]->next = j;
  else r->head[p] = j;
  r->tail[p] = j;
  j->state = JOB_QUEUED;
  pthread_cond_signal(&r->work_cv);
}

static void *worker_main(void *arg) {
  res_pool *r = arg;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    res_job *j = NULL;
    while (!r->stopping && (r->paused || (j = pop_job(r)) == NULL))
      pthread_cond_wait(&r->work_cv, &r->mu);
    if (r->stopping) break;
    j->state = JOB_RUNNING;
    j->again = false;
    pthread_mutex_unlock(&r->mu);
    j->fn(j);
    pthread_mutex_lock(&r->mu);
    r->jobs_run++;
    if (j->again) push_job(r, j);
    else j->state = JOB_IDLE;
    pthread_cond_broadcast(&r->done_cv);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

mica_err *res_new(env *e, const res_options *opts, res_pool **out) {
  *out = NULL;
  res_options def;
  if (opts == NULL) {
    res_options_init(&def);
    opts = &def;
  }
  if (opts->background_threads < 1 || opts->background_threads > 64)
    return err_new(MICA_INVALID_ARGUMENT,
                   "resources: background_threads %d not in 1..64",
                   opts->background_threads);
  if (opts->memtable_budget < 4096)
    return err_new(MICA_INVALID_ARGUMENT,
                   "resources: memtable budget %zu below 4096 bytes",
                   opts->memtable_budget);
  if (opts->reserve_percent > 50)
    return err_new(MICA_INVALID_ARGUMENT,
                   "resources: reserve of %u%% of the disk exceeds 50%%",
                   opts->reserve_percent);
  res_pool *r = xcalloc(1, sizeof(*r));
  r->e = e;
  r->data_root = opts->data_root ? xstrdup(opts->data_root) : NULL;
  r->reserve_bytes = opts->reserve_bytes;
  r->reserve_percent = opts->reserve_percent;
  atomic_init(&r->statvfs_failed, false);
  r->space_refresh = opts->space_refresh_micros;
  atomic_init(&r->space_ok_at, 0);
  r->budget = opts->memtable_budget;
  if (opts->block_cache_bytes > 0)
    r->block_cache = cache_new(opts->block_cache_bytes);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->work_cv, NULL);
  pthread_cond_init(&r->done_cv, NULL);
  pthread_mutex_init(&r->member_mu, NULL);
  pthread_mutex_init(&r->mem_mu, NULL);
  pthread_cond_init(&r->mem_cv, NULL);
  atomic_init(&r->mem_used, 0);
  atomic_init(&r->mem_active, 0);
  r->threads = xcalloc((size_t)opts->background_threads, sizeof(pthread_t));
  for (int i = 0; i < opts->background_threads; i++) {
    if (pthread_create(&r->threads[i], NULL, worker_main, r) != 0) {
      res_free(r);
      return err_new(MICA_RESOURCE_EXHAUSTED,
                     "resources: cannot start background thread %d", i);
    }
    r->n_threads++;
  }
  *out = r;
  return NULL;
}

void res_free(res_pool *r) {
  if (r == NULL) return;
  pthread_mutex_lock(&r->mu);
  r->stopping = true;
  pthread_cond_broadcast(&r->work_cv);
  pthread_mutex_unlock(&r->mu);
  for (int i = 0; i < r->n_threads; i++) pthread_join(r->threads[i], NULL);
  free(r->threads);
  cache_free(r->block_cache);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->work_cv);
  pthread_cond_destroy(&r->done_cv);
  pthread_mutex_destroy(&r->member_mu);
  pthread_mutex_destroy(&r->mem_mu);
  pthread_cond_destroy(&r->mem_cv);
  free(r->data_root);
  free(r);
}

env *res_env(res_pool *r) { return r->e; }

uint64_t res_reserve_for(const res_pool *r, uint64_t total) {
  if (r->reserve_percent == 0) return r->reserve_bytes;
  uint64_t v = total / 100 * r->reserve_percent +
               total % 100 * r->reserve_percent / 100;
  if (r->reserve_bytes > 0 && v > r->reserve_bytes) v = r->reserve_bytes;
  return v;
}

mica_err *res_space_check(res_pool *r, const char *what) {
  if (r->data_root == NULL) return NULL;
  uint64_t now = env_now_micros(r->e);
  uint64_t ok_at = atomic_load_explicit(&r->space_ok_at, memory_order_relaxed);
  if (r->space_refresh > 0 && ok_at != 0 && now - ok_at < r->space_refresh)
    return NULL;
  uint64_t avail = 0, total = 0;
  mica_err *err = env_free_space(r->e, r->data_root, &avail, &total);
  if (err != NULL) {
    if (!atomic_exchange(&r->statvfs_failed, true))
      LOG_W("free space of the data root unknown, no reserve enforced: %s",
            err_msg(err));
    err_free(err);
    return NULL;
  }
  uint64_t reserve = res_reserve_for(r, total);
  if (avail >= reserve && avail > 0) {
    atomic_store_explicit(&r->space_ok_at, now ? now : 1, memory_order_relaxed);
    return NULL;
  }
  atomic_store_explicit(&r->space_ok_at, 0, memory_order_relaxed);
  return err_new(MICA_RESOURCE_EXHAUSTED,
                 "disk full: data root %s has %" PRIu64 " bytes (%.1f MiB) "
                 "free of %" PRIu64 " (%.1f MiB), below the reserve of %" PRIu64
                 " bytes (%.1f MiB); %s refused until space is freed",
                 r->data_root, avail, (double)avail / 1048576.0, total,
                 (double)total / 1048576.0, reserve,
                 (double)reserve / 1048576.0, what);
}
cache *res_cache(res_pool *r) { return r->block_cache; }

void res_job_init(res_job *job, res_job_fn fn, int prio) {
  memset(job, 0, sizeof(*job));
  job->fn = fn;
  job->prio = prio < 0 ? 0 : prio >= RES_PRIO_COUNT_ ? RES_PRIO_COUNT_ - 1
                                                      : prio;
}

void res_job_schedule(res_pool *r, res_job *job) {
  pthread_mutex_lock(&r->mu);
  if (job->state == JOB_IDLE) push_job(r, job);
  else if (job->state == JOB_RUNNING) job->again = true;
  pthread_mutex_unlock(&r->mu);
}

void res_job_cancel(res_pool *r, res_job *job) {
  pthread_mutex_lock(&r->mu);
  if (job->state == JOB_QUEUED) {
    int p = job->prio;
    res_job **pp = &r->head[p], *prev = NULL;
    while (*pp != NULL && *pp != job) {
      prev = *pp;
      pp = &(*pp)->next;
    }
    if (*pp == job) {
      *pp = job->next;
      if (r->tail[p] == job) r->tail[p] = prev;
    }
    job->next = NULL;
    job->state = JOB_IDLE;
  }
  job->again = false;
  while (job->state == JOB_RUNNING) {
    job->again = false;
    pthread_cond_wait(&r->done_cv, &r->mu);
  }
  /* A job that rescheduled itself while we waited was queued by the
   * worker after it returned; take it out again. */
  if (job->state == JOB_QUEUED) {
    pthread_mutex_unlock(&r->mu);
    res_job_cancel(r, job);
    return;
  }
  pthread_mutex_unlock(&r->mu);
}

void res_pause(res_pool *r, bool paused) {
  pthread_mutex_lock(&r->mu);
  r->paused = paused;
  pthread_cond_broadcast(&r->work_cv);
  pthread_mutex_unlock(&r->mu);
}

uint64_t res_jobs_run(res_pool *r) {
  pthread_mutex_lock(&r->mu);
  uint64_t n = r->jobs_run;
  pthread_mutex_unlock(&r->mu);
  return n;
}

void res_member_add(res_pool *r, res_member *m) {
  pthread_mutex_lock(&r->member_mu);
  m->prev = NULL;
  m->next = r->members;
  if (r->members != NULL) r->members->prev = m;
  r->members = m;
  pthread_mutex_unlock(&r->member_mu);
}

void res_member_remove(res_pool *r, res_member *m) {
  pthread_mutex_lock(&r->member_mu);
  if (m->prev != NULL) m->prev->next = m->next;
  else if (r->members == m) r->members = m->next;
  if (m->next != NULL) m->next->prev = m->prev;
  m->prev = m->next = NULL;
  pthread_mutex_unlock(&r->member_mu);
}

/* Asks the member with the largest active memtable to flush it. A linear
 * scan: it runs only when the budget is exceeded, which happens about once
 * per memtable's worth of writes, and the member lock keeps every member
 * alive while its callbacks run. */
static void flush_largest(res_pool *r) {
  pthread_mutex_lock(&r->member_mu);
  res_member *best = NULL;
  size_t best_bytes = 0;
  for (res_member *m = r->members; m != NULL; m = m->next) {
    size_t b = m->active_bytes(m->arg);
    if (b > best_bytes) {
      best_bytes = b;
      best = m;
    }
  }
  if (best != NULL) best->request_flush(best->arg);
  pthread_mutex_unlock(&r->member_mu);
}

static void wake_memory_waiters(res_pool *r) {
  pthread_mutex_lock(&r->mem_mu);
  pthread_cond_broadcast(&r->mem_cv);
  pthread_mutex_unlock(&r->mem_mu);
}

void res_mem_add(res_pool *r, int64_t delta) {
  int64_t total = atomic_fetch_add(&r->mem_used, delta) + delta;
  int64_t active = atomic_fetch_add(&r->mem_active, delta) + delta;
  if (delta < 0) {
    wake_memory_waiters(r);
    return;
  }
  int64_t budget = (int64_t)r->budget, step = budget / 8 + 1;
  bool over = active > budget - budget / 8 ||
              (total > budget && active >= budget / 2);
  /* Ask when the condition starts to hold and again every eighth of the
   * budget of further growth, not on every write. */
  if (over && (active - delta <= budget - budget / 8 ||
               active / step != (active - delta) / step))
    flush_largest(r);
}

void res_mem_freeze(res_pool *r, size_t bytes) {
  atomic_fetch_sub(&r->mem_active, (int64_t)bytes);
}

void res_mem_release(res_pool *r, size_t bytes) {
  atomic_fetch_sub(&r->mem_used, (int64_t)bytes);
  wake_memory_waiters(r);
}

size_t res_mem_usage(res_pool *r) {
  int64_t v = atomic_load(&r->mem_used);
  return v < 0 ? 0 : (size_t)v;
}

size_t res_mem_budget(res_pool *r) { return r->budget; }

bool res_wait_for_memory(res_pool *r, uint64_t deadline) {
  if (res_mem_usage(r) <= 2 * r->budget) return true;
  pthread_mutex_lock(&r->mem_mu);
  bool ok;
  for (;;) {
    ok = res_mem_usage(r) <= 2 * r->budget;
    if (ok) break;
    uint64_t now = env_now_micros(r->e);
    if (now >= deadline) break;
    /* Bounded waits: the deadline is on the env's clock, the condition
     * variable's on the wall clock, so wake at least every 10 ms. */
    uint64_t wait = deadline - now;
    if (wait > 10000) wait = 10000;
    uint64_t at = env_wall_micros(r->e) + wait;
    struct timespec ts = {(time_t)(at / 1000000), (long)(at % 1000000) * 1000};
    pthread_cond_timedwait(&r->mem_cv, &r->mem_mu, &ts);
  }
  pthread_mutex_unlock(&r->mem_mu);
  return ok;
}
