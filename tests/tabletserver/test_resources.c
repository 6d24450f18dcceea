/* test_resources: what the tablets of one server share
 * (tabletserver/resources.h).
 *
 * Options: out-of-range thread counts and budgets are refused with a
 * message naming the field; the block cache is optional.
 *
 * Jobs: flushes (high priority) run before compactions, each priority in
 * FIFO order; a job scheduled while queued runs once, scheduled while
 * running runs once more; cancel unqueues a job, waits for a running one
 * and stops one that keeps rescheduling itself; paused pools start
 * nothing; freeing a pool drops queued jobs without running them.
 *
 * Memory: the three moves (grow, freeze, release) keep the usage right;
 * flushes are asked of the member with the largest active memtable when
 * active memory passes 7/8 of the budget, again every eighth of further
 * growth, and when all memory passes the budget with at least half of it
 * active, never for memory that is already being flushed; a removed
 * member is never asked. res_wait_for_memory returns at once under twice
 * the budget, gives up at its deadline, and wakes when memory is
 * released.
 *
 * Stalls through real tablets: with flushes paused, writes over twice the
 * budget stall and fail UNAVAILABLE after the bounded wait, naming the
 * budget; once flushes run again the same write succeeds. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/env.h"
#include "common/layout.h"
#include "tabletserver/resources.h"
#include "tabletserver/tablet.h"
#include "tests/harness/testutil.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static res_pool *new_pool(size_t budget, int threads) {
  res_options o;
  res_options_init(&o);
  o.memtable_budget = budget;
  o.background_threads = threads;
  res_pool *r = NULL;
  TU_OK(res_new(env_posix(), &o, &r));
  return r;
}

/* ---- options ---- */

static void expect_invalid(const res_options *o, const char *needle) {
  res_pool *r = (res_pool *)1;
  mica_err *err = res_new(env_posix(), o, &r);
  CU_ASSERT_EQUAL(err_code(err), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), needle) : NULL);
  CU_ASSERT_PTR_NULL(r);
  err_free(err);
}

static void test_options(void) {
  res_options o;
  res_options_init(&o);
  CU_ASSERT_EQUAL(o.memtable_budget, 256u << 20);
  CU_ASSERT_EQUAL(o.block_cache_bytes, 64u << 20);
  CU_ASSERT_EQUAL(o.background_threads, 2);
  o.background_threads = 0;
  expect_invalid(&o, "background_threads 0");
  o.background_threads = 65;
  expect_invalid(&o, "background_threads 65");
  res_options_init(&o);
  o.memtable_budget = 4095;
  expect_invalid(&o, "budget 4095");

  res_pool *r = NULL;
  TU_OK(res_new(env_posix(), NULL, &r)); /* defaults */
  CU_ASSERT_PTR_EQUAL(res_env(r), env_posix());
  CU_ASSERT_PTR_NOT_NULL(res_cache(r));
  CU_ASSERT_EQUAL(res_mem_budget(r), 256u << 20);
  CU_ASSERT_EQUAL(res_mem_usage(r), 0);
  res_free(r);
  res_options_init(&o);
  o.block_cache_bytes = 0;
  o.memtable_budget = 4096;
  o.background_threads = 64;
  TU_OK(res_new(env_posix(), &o, &r));
  CU_ASSERT_PTR_NULL(res_cache(r));
  res_free(r);
  res_free(NULL);
}

/* ---- jobs ---- */

typedef struct tjob {
  res_job job; /* first: the callback gets &job */
  char name;
  atomic_int runs;
  atomic_int reschedule; /* times left to reschedule itself */
  atomic_bool block;     /* spin while set */
  atomic_bool running;
  res_pool *r;
} tjob;

static pthread_mutex_t g_order_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_order[64];
static size_t g_norder;

static void tjob_fn(res_job *job) {
  tjob *t = (tjob *)job;
  atomic_store(&t->running, true);
  while (atomic_load(&t->block)) sleep_ms(1);
  pthread_mutex_lock(&g_order_mu);
  if (g_norder < sizeof(g_order) - 1) g_order[g_norder++] = t->name;
  pthread_mutex_unlock(&g_order_mu);
  atomic_fetch_add(&t->runs, 1);
  if (atomic_load(&t->reschedule) > 0) {
    atomic_fetch_sub(&t->reschedule, 1);
    res_job_schedule(t->r, &t->job);
  }
  atomic_store(&t->running, false);
}

static void tjob_init(tjob *t, res_pool *r, char name, int prio) {
  memset(t, 0, sizeof(*t));
  res_job_init(&t->job, tjob_fn, prio);
  t->name = name;
  t->r = r;
  atomic_init(&t->runs, 0);
  atomic_init(&t->reschedule, 0);
  atomic_init(&t->block, false);
  atomic_init(&t->running, false);
}

static void reset_order(void) {
  pthread_mutex_lock(&g_order_mu);
  memset(g_order, 0, sizeof(g_order));
  g_norder = 0;
  pthread_mutex_unlock(&g_order_mu);
}

/* Waits (bounded) until `n` jobs have run in the pool. */
static void wait_jobs(res_pool *r, uint64_t n) {
  for (int i = 0; i < 5000 && res_jobs_run(r) < n; i++) sleep_ms(1);
  CU_ASSERT(res_jobs_run(r) >= n);
}

static void test_job_order(void) {
  res_pool *r = new_pool(1 << 20, 1);
  tjob a, b, c, d;
  tjob_init(&a, r, 'a', RES_PRIO_LOW);
  tjob_init(&b, r, 'b', RES_PRIO_HIGH);
  tjob_init(&c, r, 'c', RES_PRIO_LOW);
  tjob_init(&d, r, 'd', RES_PRIO_HIGH);
  reset_order();
  res_pause(r, true);
  res_job_schedule(r, &a.job);
  res_job_schedule(r, &b.job);
  res_job_schedule(r, &c.job);
  res_job_schedule(r, &d.job);
  res_job_schedule(r, &a.job); /* already queued: no second run */
  sleep_ms(20);
  CU_ASSERT_EQUAL(res_jobs_run(r), 0); /* paused */
  res_pause(r, false);
  wait_jobs(r, 4);
  sleep_ms(20);
  CU_ASSERT_EQUAL(res_jobs_run(r), 4);
  pthread_mutex_lock(&g_order_mu);
  CU_ASSERT_STRING_EQUAL(g_order, "bdac");
  pthread_mutex_unlock(&g_order_mu);
  CU_ASSERT_EQUAL(atomic_load(&a.runs), 1);

  /* An out-of-range priority is clamped, not an index out of bounds. */
  tjob e;
  tjob_init(&e, r, 'e', 7);
  CU_ASSERT_EQUAL(e.job.prio, RES_PRIO_LOW);
  res_job_init(&e.job, tjob_fn, -3);
  CU_ASSERT_EQUAL(e.job.prio, RES_PRIO_HIGH);
  res_free(r);
}

static void *unblock_later(void *arg) {
  sleep_ms(30);
  atomic_store(&((tjob *)arg)->block, false);
  return NULL;
}

static void test_job_again_and_cancel(void) {
  res_pool *r = new_pool(1 << 20, 2);
  /* Scheduled while running: exactly one more run. */
  tjob a;
  tjob_init(&a, r, 'a', RES_PRIO_HIGH);
  atomic_store(&a.block, true);
  res_job_schedule(r, &a.job);
  for (int i = 0; i < 5000 && !atomic_load(&a.running); i++) sleep_ms(1);
  CU_ASSERT_TRUE(atomic_load(&a.running));
  res_job_schedule(r, &a.job);
  res_job_schedule(r, &a.job);
  atomic_store(&a.block, false);
  wait_jobs(r, 2);
  sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&a.runs), 2);

  /* Cancel of a queued job: it never runs. */
  tjob q;
  tjob_init(&q, r, 'q', RES_PRIO_LOW);
  res_pause(r, true);
  res_job_schedule(r, &q.job);
  res_job_cancel(r, &q.job);
  res_pause(r, false);
  sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&q.runs), 0);
  /* It can be scheduled again afterwards. */
  res_job_schedule(r, &q.job);
  for (int i = 0; i < 5000 && atomic_load(&q.runs) == 0; i++) sleep_ms(1);
  CU_ASSERT_EQUAL(atomic_load(&q.runs), 1);

  /* Cancel of a running job waits for it to return. */
  tjob b;
  tjob_init(&b, r, 'b', RES_PRIO_HIGH);
  atomic_store(&b.block, true);
  res_job_schedule(r, &b.job);
  for (int i = 0; i < 5000 && !atomic_load(&b.running); i++) sleep_ms(1);
  pthread_t unblock;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&unblock, NULL, unblock_later, &b), 0);
  res_job_cancel(r, &b.job); /* returns only once b has returned */
  CU_ASSERT_FALSE(atomic_load(&b.running));
  CU_ASSERT_EQUAL(atomic_load(&b.runs), 1);
  pthread_join(unblock, NULL);

  /* A job that keeps rescheduling itself stops at cancel. */
  tjob c;
  tjob_init(&c, r, 'c', RES_PRIO_LOW);
  atomic_store(&c.reschedule, 1000000);
  res_job_schedule(r, &c.job);
  for (int i = 0; i < 5000 && atomic_load(&c.runs) < 3; i++) sleep_ms(1);
  res_job_cancel(r, &c.job);
  int runs = atomic_load(&c.runs);
  sleep_ms(30);
  CU_ASSERT_EQUAL(atomic_load(&c.runs), runs);
  CU_ASSERT(runs >= 3);
  res_free(r);

  /* Freeing a paused pool drops its queued jobs. */
  r = new_pool(1 << 20, 1);
  tjob z;
  tjob_init(&z, r, 'z', RES_PRIO_HIGH);
  res_pause(r, true);
  res_job_schedule(r, &z.job);
  res_free(r);
  CU_ASSERT_EQUAL(atomic_load(&z.runs), 0);
}

/* ---- memory ---- */

typedef struct tmember {
  res_member m;
  size_t active;
  int asked;
} tmember;

static size_t tm_active(void *arg) { return ((tmember *)arg)->active; }
static void tm_flush(void *arg) { ((tmember *)arg)->asked++; }

static void tm_init(tmember *t, size_t active) {
  memset(t, 0, sizeof(*t));
  t->active = active;
  t->m.active_bytes = tm_active;
  t->m.request_flush = tm_flush;
  t->m.arg = t;
}

static void test_memory_accounting(void) {
  res_pool *r = new_pool(8000, 1);
  tmember small, big;
  tm_init(&small, 10);
  tm_init(&big, 500);
  res_member_add(r, &small.m);
  res_member_add(r, &big.m);
  /* 7/8 of 8000 is 7000; an eighth is 1001 (rounded up). */
  res_mem_add(r, 6000);
  CU_ASSERT_EQUAL(res_mem_usage(r), 6000);
  CU_ASSERT_EQUAL(big.asked + small.asked, 0);
  res_mem_add(r, 1500); /* active 7500 > 7000: the largest is asked */
  CU_ASSERT_EQUAL(big.asked, 1);
  CU_ASSERT_EQUAL(small.asked, 0);
  res_mem_add(r, 100); /* 7600: same eighth, no new request */
  CU_ASSERT_EQUAL(big.asked, 1);
  res_mem_add(r, 500); /* 8100: the next eighth */
  CU_ASSERT_EQUAL(big.asked, 2);
  CU_ASSERT_EQUAL(res_mem_usage(r), 8100);

  /* Frozen memory is being flushed: over the budget in total, but with
   * little active memory nobody is asked. */
  res_mem_freeze(r, 8100);
  CU_ASSERT_EQUAL(res_mem_usage(r), 8100);
  res_mem_add(r, 100);
  CU_ASSERT_EQUAL(big.asked, 2);
  /* Half the budget active while the total is over it: asked again. */
  res_mem_add(r, 3900);
  CU_ASSERT_EQUAL(big.asked, 3);
  CU_ASSERT_EQUAL(res_mem_usage(r), 12100);

  /* A removed member is never asked; the largest remaining one is. */
  res_member_remove(r, &big.m);
  res_mem_release(r, 8100);
  CU_ASSERT_EQUAL(res_mem_usage(r), 4000);
  res_mem_add(r, 3500); /* active 7500 */
  CU_ASSERT_EQUAL(big.asked, 3);
  CU_ASSERT_EQUAL(small.asked, 1);

  /* Dropping active memory without a flush (negative growth) asks
   * nobody. */
  res_mem_add(r, -7500);
  CU_ASSERT_EQUAL(res_mem_usage(r), 0);
  CU_ASSERT_EQUAL(small.asked, 1);
  /* Removing twice, or a member never added, is harmless. */
  res_member_remove(r, &small.m);
  res_member_remove(r, &small.m);
  res_mem_add(r, 7500);
  CU_ASSERT_EQUAL(small.asked, 1);
  res_mem_add(r, -7500);
  res_free(r);
}

typedef struct releaser {
  res_pool *r;
  size_t bytes;
} releaser;

static void *release_later(void *arg) {
  releaser *x = arg;
  sleep_ms(30);
  res_mem_release(x->r, x->bytes);
  return NULL;
}

static void test_wait_for_memory(void) {
  env *e = env_posix();
  res_pool *r = new_pool(4096, 1);
  /* Under twice the budget: at once, even with a past deadline. */
  res_mem_add(r, 8192);
  CU_ASSERT_TRUE(res_wait_for_memory(r, 0));
  /* Over it with nobody flushing: false, and not before the deadline. */
  res_mem_freeze(r, 8192);
  res_mem_add(r, 100);
  uint64_t deadline = env_now_micros(e) + 30 * 1000;
  CU_ASSERT_FALSE(res_wait_for_memory(r, deadline));
  CU_ASSERT(env_now_micros(e) >= deadline);
  /* A release wakes the waiter well before a far deadline. */
  releaser x = {r, 8192};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, release_later, &x), 0);
  deadline = env_now_micros(e) + 60 * 1000 * 1000;
  CU_ASSERT_TRUE(res_wait_for_memory(r, deadline));
  CU_ASSERT(env_now_micros(e) < deadline);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(res_mem_usage(r), 100);
  res_mem_add(r, -100);
  res_free(r);
}

/* ---- stalls through tablets ---- */

static void test_budget_stall(void) {
  const char *root = tu_tmpdir();
  char *tablets = layout_tablets_dir(root);
  buf dir = BUF_INIT;
  layout_tablet_dir(tablets, 1, &dir);
  res_pool *r = new_pool(4096, 1);
  tab_options o;
  tab_options_init(&o);
  o.memtable_bytes = 4 << 20; /* never full by itself: only the budget */
  o.create_if_missing = true;
  o.stall_timeout_micros = 100 * 1000;
  tablet *t = NULL;
  TU_OK(tab_open(r, (const char *)dir.data, 1, slice_make(NULL, 0),
                 slice_make(NULL, 0), 1, &o, &t));
  res_pause(r, true); /* the requested flushes cannot run */
  char key[32], val[200];
  memset(val, 'v', sizeof(val));
  mica_err *err = NULL;
  int i;
  for (i = 0; i < 1000 && err == NULL; i++) {
    snprintf(key, sizeof(key), "k%05d", i);
    err = tab_put(t, slice_make(key, strlen(key)), slice_make(val, sizeof(val)),
                  false);
  }
  CU_ASSERT_EQUAL(err_code(err), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), "write stall") : NULL);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err_msg(err), "over twice the budget of 4096")
                             : NULL);
  err_free(err);
  CU_ASSERT(res_mem_usage(r) > 2 * 4096);
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT(st.stall_timeouts >= 1);
  CU_ASSERT_EQUAL(st.flushes, 0);

  /* The flushes run: memory goes back under the limit and the refused
   * write goes through. */
  res_pause(r, false);
  for (int w = 0; w < 10000 && res_mem_usage(r) > 2 * 4096; w++) sleep_ms(1);
  CU_ASSERT(res_mem_usage(r) <= 2 * 4096);
  TU_OK(tab_put(t, slice_make(key, strlen(key)), slice_make("late", 4), false));
  tab_get_stats(t, &st);
  CU_ASSERT(st.flushes >= 1);
  buf v = BUF_INIT;
  TU_OK(tab_get(t, NULL, slice_make(key, strlen(key)), &v));
  CU_ASSERT_TRUE(slice_eq(buf_slice(&v), slice_make("late", 4)));
  buf_free(&v);
  TU_OK(tab_close(t));
  CU_ASSERT_EQUAL(res_mem_usage(r), 0); /* a closed tablet holds nothing */
  res_free(r);
  buf_free(&dir);
  free(tablets);
}

static CU_TestInfo option_tests[] = {
    {"options", test_options},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo job_tests[] = {
    {"priority and order", test_job_order},
    {"again and cancel", test_job_again_and_cancel},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo memory_tests[] = {
    {"accounting and flush requests", test_memory_accounting},
    {"wait for memory", test_wait_for_memory},
    {"budget stall through a tablet", test_budget_stall},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) {
  tu_add_suite("resources options", option_tests);
  tu_add_suite("resources jobs", job_tests);
  tu_add_suite("resources memory", memory_tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
