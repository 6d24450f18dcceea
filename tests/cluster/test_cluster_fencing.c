/* test_cluster_fencing: tries to break the fencing rule of docs/design.md,
 * "Leases and fencing" (two servers never both acknowledge for one tablet).
 *
 * A master with a 1.5 s lease and two tablet servers. A table's only
 * tablet is served by A; a writer hammers A directly while A is frozen
 * with SIGSTOP (a long GC pause or a partition: writes may be caught
 * inside A's group commit), so A's lease runs out while it still holds the
 * tablet. The master declares A dead and reassigns the tablet to B; writes
 * go on through the master's routing and are acknowledged by B. Then,
 * with many Puts and Gets naming the tablet with A's old epochs already
 * queued on A's connection, A is resumed (SIGCONT) and the calls keep
 * coming for two more seconds:
 *
 *  - A must answer none of them OK: only LEASE_EXPIRED, NOT_SERVING or
 *    STALE_EPOCH (or no answer at all before the deadline);
 *  - every write acknowledged by anyone (A before the freeze, B after) is
 *    readable with its value, and none of the writes fired at A after the
 *    move exists; a write that was in flight at A when it froze was never
 *    acknowledged and may be present or absent, but with its own value;
 *  - the retired-segment rule: while A is still frozen, every WAL segment
 *    of the tablet its process holds open (where anything it appends on
 *    waking would go) is deleted or listed as retired by B's MANIFEST;
 *    afterwards that MANIFEST lists no live segment of A's epoch, and
 *    every segment file of A's epoch still in the directory is listed as
 *    retired, so whatever A appended after resuming is never read;
 *  - finally B is killed: the tablet reopens on A (now re-registered)
 *    from the files, and the same holds: acknowledged writes there, the
 *    fenced ones absent.
 *
 * It runs twice: with the servers' shared commit log (the default,
 * tabletserver/clog.h), where the file rule reads: every log file A holds
 * open is in A's own log directory, and B's MANIFEST names B's log under
 * B's epoch, so nothing A appends is read for the tablet again; and with
 * per-tablet WAL segments (--commit-log tablet), with the rule above.
 * ctest runs the two cases as two entries (MICA_TEST_ONLY), side by side;
 * the TLS and S3 reruns repeat only the first (what TLS or S3 changes is
 * the same in both modes). On S3 the MANIFEST is read from the bucket and
 * A's open log files are looked for in the local --wal-dir. */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "tabletserver/manifest.h"
#include "tabletserver/wal.h"
#include "tests/harness/cluster.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/testutil.h"

#define MAX_ACKED 20000
#define FIRE_THREADS 8

static cluster *g_c;
static bool g_shared_log; /* this run's --commit-log */

/* ---- writes and their fate ---- */

typedef struct wrec {
  char key[24];
  char value[40];
} wrec;

static wrec g_acked[MAX_ACKED];
static atomic_int g_nacked;
static wrec g_maybe[MAX_ACKED]; /* in flight when A froze */
static atomic_int g_nmaybe;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void record(wrec *arr, atomic_int *n, const char *k, const char *v) {
  pthread_mutex_lock(&g_mu);
  int i = atomic_load(n);
  if (i < MAX_ACKED) {
    snprintf(arr[i].key, sizeof(arr[i].key), "%s", k);
    snprintf(arr[i].value, sizeof(arr[i].value), "%s", v);
    atomic_store(n, i + 1);
  }
  pthread_mutex_unlock(&g_mu);
}

typedef struct target {
  char address[128];
  uint64_t tablet_id, range_epoch, assign_epoch;
} target;

static mica_err *direct_put(const target *t, const char *k, const char *v,
                            int64_t timeout_ms) {
  rpc_tablet_ref ref = {0};
  ref.tablet_id = t->tablet_id;
  ref.range_epoch = t->range_epoch;
  ref.assign_epoch = t->assign_epoch;
  rpc_put_request q = {0};
  q.tablet = &ref;
  q.key.data = (uint8_t *)k;
  q.key.len = strlen(k);
  q.value.data = (uint8_t *)v;
  q.value.len = strlen(v);
  void *r = NULL;
  mica_err *err = rpc_unary(cl_channel(g_c, t->address), &rpc_m_ts_put,
                            &q, timeout_ms, &r);
  if (err == NULL) err = cl_response_err(r);
  rpc_msg_free(r);
  return err;
}

/* Writes straight at A until told to stop (A freezes meanwhile). */
typedef struct hammer {
  target t;
  atomic_bool stop;
  int id;
} hammer;

static void *hammer_main(void *arg) {
  hammer *h = arg;
  for (int i = 0; !atomic_load(&h->stop); i++) {
    char k[24], v[40];
    snprintf(k, sizeof(k), "pre-%d-%06d", h->id, i);
    snprintf(v, sizeof(v), "pre-value-%d-%d", h->id, i);
    mica_err *err = direct_put(&h->t, k, v, 20000);
    if (err == NULL) record(g_acked, &g_nacked, k, v);
    else record(g_maybe, &g_nmaybe, k, v);
    err_free(err);
  }
  return NULL;
}

/* Writes through the master's routing (kvc retries across the move). */
typedef struct router {
  atomic_bool stop;
} router;

static void *router_main(void *arg) {
  router *r = arg;
  for (int i = 0; !atomic_load(&r->stop); i++) {
    char k[24], v[40];
    snprintf(k, sizeof(k), "routed-%06d", i);
    snprintf(v, sizeof(v), "routed-value-%d", i);
    mica_err *err = kvc_put(g_c, "f", slice_from_str(k), slice_from_str(v),
                            20000);
    if (err == NULL) record(g_acked, &g_nacked, k, v);
    else record(g_maybe, &g_nmaybe, k, v);
    err_free(err);
  }
  return NULL;
}

/* Calls naming A's old epochs, fired at A around its resumption. */
typedef struct fire {
  target t;
  atomic_bool stop;
  int id;
  int sent, answered, ok, bad_code, timeouts;
  char first_bad[200];
} fire;

static void *fire_main(void *arg) {
  fire *f = arg;
  for (int i = 0; !atomic_load(&f->stop); i++) {
    char k[24];
    snprintf(k, sizeof(k), "fenced-%d-%06d", f->id, i);
    mica_err *err;
    bool is_get = i % 3 == 2;
    if (is_get) {
      /* A read of a key B acknowledged: any answer from A is stale. */
      rpc_tablet_ref ref = {0};
      ref.tablet_id = f->t.tablet_id;
      ref.range_epoch = f->t.range_epoch;
      ref.assign_epoch = f->t.assign_epoch;
      rpc_get_request q = {0};
      q.tablet = &ref;
      q.key.data = (uint8_t *)"routed-000000";
      q.key.len = strlen("routed-000000");
      void *r = NULL;
      err = rpc_unary(cl_channel(g_c, f->t.address), &rpc_m_ts_get, &q,
                      1500, &r);
      if (err == NULL) err = cl_response_err(r);
      rpc_msg_free(r);
    } else {
      err = direct_put(&f->t, k, "fenced-value", 1500);
    }
    f->sent++;
    int code = err_code(err);
    if (code == MICA_OK || (is_get && code == MICA_NOT_FOUND)) {
      f->ok++;
      f->answered++;
    } else if (code == MICA_LEASE_EXPIRED || code == MICA_NOT_SERVING ||
               code == MICA_STALE_EPOCH) {
      f->answered++;
    } else if (code == MICA_DEADLINE_EXCEEDED || code == MICA_UNAVAILABLE ||
               code == MICA_CANCELLED) {
      f->timeouts++;
    } else {
      if (f->bad_code++ == 0)
        snprintf(f->first_bad, sizeof(f->first_bad), "%s: %s",
                 mica_code_name(code), err_msg(err));
    }
    err_free(err);
  }
  return NULL;
}

/* ---- checks ---- */

static void check_data(const char *when) {
  buf v = BUF_INIT;
  int missing = 0, wrong = 0, present_maybe = 0;
  int na = atomic_load(&g_nacked), nm = atomic_load(&g_nmaybe);
  for (int i = 0; i < na; i++) {
    bool found = false;
    mica_err *err = kvc_get(g_c, "f", slice_from_str(g_acked[i].key), &found,
                            &v, 30000);
    TU_OK(err);
    if (!found) {
      if (missing++ < 3)
        fprintf(stderr, "\n%s: acknowledged %s missing\n", when,
                g_acked[i].key);
    } else if (!slice_eq(buf_slice(&v), slice_from_str(g_acked[i].value))) {
      wrong++;
    }
  }
  for (int i = 0; i < nm; i++) {
    bool found = false;
    TU_OK(kvc_get(g_c, "f", slice_from_str(g_maybe[i].key), &found, &v,
                  30000));
    if (found) {
      present_maybe++;
      if (!slice_eq(buf_slice(&v), slice_from_str(g_maybe[i].value))) wrong++;
    }
  }
  /* No fenced write exists: a scan of the whole table finds none. */
  int fenced = 0;
  for (int t = 0; t < FIRE_THREADS; t++)
    for (int i = 0; i < 50; i++) {
      char k[24];
      snprintf(k, sizeof(k), "fenced-%d-%06d", t, i);
      bool found = false;
      TU_OK(kvc_get(g_c, "f", slice_from_str(k), &found, &v, 30000));
      if (found) fenced++;
    }
  fprintf(stderr, "\n  %s: %d acknowledged (%d missing, %d wrong), %d in "
          "flight at the freeze of which %d present, %d fenced present\n",
          when, na, missing, wrong, nm, present_maybe, fenced);
  CU_ASSERT_EQUAL(missing, 0);
  CU_ASSERT_EQUAL(wrong, 0);
  CU_ASSERT_EQUAL(fenced, 0);
  buf_free(&v);
}

static bool count_fenced_row(void *arg, slice k, slice v) {
  (void)v;
  if (k.len >= 7 && memcmp(k.data, "fenced-", 7) == 0) (*(int *)arg)++;
  return true;
}

/* The tablet's MANIFEST lists no live segment below `epoch`, and every
 * segment file below it in the directory is listed as retired. */
static void check_segments(uint64_t tablet_id, uint64_t old_epoch,
                           uint64_t new_epoch) {
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/tablets/%" PRIu64, cl_data_root(g_c),
           tablet_id);
  man_state m;
  man_init(&m);
  TU_OK(man_read(cl_data_env(g_c), dir, &m));
  CU_ASSERT(m.epoch >= new_epoch);
  if (g_shared_log) {
    /* The unflushed writes are read only from the new owner's log. */
    CU_ASSERT(m.log_name.len > 0);
    CU_ASSERT(m.log_epoch >= new_epoch);
    CU_ASSERT_EQUAL(m.n_live, 0);
  }
  for (size_t i = 0; i < m.n_live; i++) CU_ASSERT(m.live[i].epoch >= new_epoch);
  char **names;
  size_t n;
  TU_OK(env_list(cl_data_env(g_c), dir, &names, &n));
  int old_files = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t ep, num;
    if (!wal_parse_segment_name(names[i], &ep, &num) || ep >= new_epoch)
      continue;
    old_files++;
    bool retired = false;
    for (size_t j = 0; j < m.n_retired; j++)
      retired |= m.retired[j].epoch == ep && m.retired[j].number == num;
    if (!retired) fprintf(stderr, "\nsegment %s not retired\n", names[i]);
    CU_ASSERT(retired);
  }
  fprintf(stderr, "  MANIFEST epoch %" PRIu64 " (A had %" PRIu64 "): %zu live "
          "segments, %zu retired, %d files of older epochs on disk\n",
          m.epoch, old_epoch, m.n_live, m.n_retired, old_files);
  env_free_names(names, n);
  man_clear(&m);
}

/* With the shared commit log, while A is frozen: every commit log file A
 * holds open (the only log files it could append to on resuming) is in a
 * log other than the one B's MANIFEST names for the tablet, and that
 * MANIFEST's log epoch is B's. Returns how many A holds. */
static int check_frozen_log_fds(pid_t pid, uint64_t tablet_id,
                                uint64_t new_epoch) {
  char dir[1024], logs[1024];
  snprintf(dir, sizeof(dir), "%s/tablets/%" PRIu64, cl_data_root(g_c),
           tablet_id);
  snprintf(logs, sizeof(logs), "%s/", cl_commit_log_dir(g_c));
  man_state m;
  man_init(&m);
  TU_OK(man_read(cl_data_env(g_c), dir, &m));
  CU_ASSERT(m.log_name.len > 0);
  CU_ASSERT(m.log_epoch >= new_epoch);
  char named[256];
  snprintf(named, sizeof(named), "%.*s", (int)m.log_name.len,
           (const char *)m.log_name.data);
  char fddir[64];
  snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
  DIR *d = opendir(fddir);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  int held = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char link[512], to[2048];
    snprintf(link, sizeof(link), "%s/%s", fddir, de->d_name);
    ssize_t n = readlink(link, to, sizeof(to) - 1);
    if (n <= 0) continue;
    to[n] = '\0';
    size_t ll = strlen(logs);
    if (strncmp(to, logs, ll) != 0) continue;
    char name[256];
    snprintf(name, sizeof(name), "%.200s", to + ll);
    char *slash = strchr(name, '/');
    if (slash == NULL) continue;
    *slash = '\0';
    held++;
    fprintf(stderr, "  frozen A holds log %s/%s; the MANIFEST names %s "
            "(epoch %" PRIu64 ")\n", name, slash + 1, named, m.log_epoch);
    CU_ASSERT(strcmp(name, named) != 0);
  }
  closedir(d);
  man_clear(&m);
  return held;
}

/* While A is frozen: every WAL segment of the tablet that A's process holds
 * open (the only files it could append to on resuming) is either deleted
 * or listed as retired by the new owner's MANIFEST. Returns how many A
 * holds. */
static int check_frozen_fds(pid_t pid, uint64_t tablet_id) {
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/tablets/%" PRIu64, cl_data_root(g_c),
           tablet_id);
  man_state m;
  man_init(&m);
  TU_OK(man_read(cl_data_env(g_c), dir, &m));
  char fddir[64];
  snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
  DIR *d = opendir(fddir);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  int held = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char link[512], to[2048];
    snprintf(link, sizeof(link), "%s/%s", fddir, de->d_name);
    ssize_t n = readlink(link, to, sizeof(to) - 1);
    if (n <= 0) continue;
    to[n] = '\0';
    size_t dl = strlen(dir);
    if (strncmp(to, dir, dl) != 0 || to[dl] != '/') continue;
    char name[256];
    snprintf(name, sizeof(name), "%.200s", to + dl + 1);
    char *sp = strchr(name, ' ');
    bool deleted = strstr(to, " (deleted)") != NULL;
    if (sp) *sp = '\0';
    uint64_t ep, num;
    if (!wal_parse_segment_name(name, &ep, &num)) continue;
    held++;
    bool retired = false;
    for (size_t j = 0; j < m.n_retired; j++)
      retired |= m.retired[j].epoch == ep && m.retired[j].number == num;
    bool live = false;
    for (size_t j = 0; j < m.n_live; j++)
      live |= m.live[j].epoch == ep && m.live[j].number == num;
    fprintf(stderr, "  frozen A holds %s:%s%s\n", name,
            deleted ? " deleted" : "", retired ? " retired" : "");
    CU_ASSERT(!live);
    CU_ASSERT(deleted || retired);
  }
  closedir(d);
  man_clear(&m);
  return held;
}

static void route_of(target *t) {
  rpc_tablet_route *rt;
  rpc_lookup_tablets_response *lr;
  TU_OK(kvc_route(g_c, "f", slice_from_str("a"), 20000, &rt, &lr));
  snprintf(t->address, sizeof(t->address), "%s", rt->location->address);
  t->tablet_id = rt->desc->tablet_id;
  t->range_epoch = rt->desc->range_epoch;
  t->assign_epoch = rt->location->assign_epoch;
  rpc_msg_free(lr);
}


static void frozen_owner(bool shared_log) {
  g_shared_log = shared_log;
  atomic_store(&g_nacked, 0); /* a fresh cluster: forget the last run's */
  atomic_store(&g_nmaybe, 0);
  cl_options o;
  cl_options_init(&o);
  static const char *const targs[] = {"--commit-log", "tablet", NULL};
  if (!shared_log) o.tserver_args = targs;
  /* On S3 (the *_s3 rerun: shared log only) the MANIFEST is read from the
   * bucket and the frozen process's open log files are looked for in the
   * local log directory. */
  if (!shared_log) o.s3 = false; /* reads segment files as POSIX files */
  o.tservers = 2;
  o.lease_ms = 1500;
  o.lease_margin_ms = 500;
  o.heartbeat_ms = 200;
  static const char *const margs[] = {"--merge", "off", "--balancer", "off",
                                      NULL};
  o.master_args = margs;
  TU_OK(cl_start(&o, &g_c));
  TU_OK(kvc_create_table(g_c, "f", NULL, 0));
  target a;
  route_of(&a);
  int slot_a = cl_tserver_slot(g_c, a.address);
  CU_ASSERT_FATAL(slot_a >= 0);
  pid_t pid_a = cl_tserver_pid(g_c, slot_a);
  CU_ASSERT_FATAL(pid_a > 0);

  /* Acknowledged by A before anything happens. */
  for (int i = 0; i < 200; i++) {
    char k[24], v[40];
    snprintf(k, sizeof(k), "before-%04d", i);
    snprintf(v, sizeof(v), "before-value-%d", i);
    TU_OK(direct_put(&a, k, v, 5000));
    record(g_acked, &g_nacked, k, v);
  }

  /* Freeze A while writes are in its group commit. */
  hammer hs[4];
  pthread_t hth[4];
  for (int i = 0; i < 4; i++) {
    hs[i].t = a;
    hs[i].id = i;
    atomic_init(&hs[i].stop, false);
    pthread_create(&hth[i], NULL, hammer_main, &hs[i]);
  }
  cl_sleep_ms(300);
  CU_ASSERT_EQUAL_FATAL(kill(pid_a, SIGSTOP), 0);
  uint64_t frozen_at = cl_now_ms();
  /* The writes in flight stay in flight (20 s deadlines) until A wakes:
   * whatever A answers them then is what counts. */
  for (int i = 0; i < 4; i++) atomic_store(&hs[i].stop, true);

  /* Writes through the master move on to B once A is declared dead. */
  router rs;
  atomic_init(&rs.stop, false);
  pthread_t rth;
  pthread_create(&rth, NULL, router_main, &rs);
  target b;
  for (;;) {
    route_of(&b);
    if (strcmp(b.address, a.address) != 0 || cl_now_ms() - frozen_at > 20000)
      break;
    cl_sleep_ms(50);
  }
  fprintf(stderr, "\n  tablet %" PRIu64 " moved from %s (epoch %" PRIu64
          ") to %s (epoch %" PRIu64 ") %" PRIu64 " ms after the freeze\n",
          a.tablet_id, a.address, a.assign_epoch, b.address, b.assign_epoch,
          cl_now_ms() - frozen_at);
  CU_ASSERT_FATAL(strcmp(b.address, a.address) != 0);
  CU_ASSERT(b.assign_epoch > a.assign_epoch);
  /* Let B acknowledge a good number of writes. */
  while (atomic_load(&g_nacked) < 400 && cl_now_ms() - frozen_at < 30000)
    cl_sleep_ms(20);
  /* The segment A would append to on waking is already retired. */
  if (shared_log && cl_commit_log_dir(g_c) == NULL) {
    fprintf(stderr, "  the commit log is not in a local directory: no open "
            "log file of A to check\n");
  } else if (shared_log) {
    CU_ASSERT(check_frozen_log_fds(pid_a, a.tablet_id, b.assign_epoch) >= 1);
  } else {
    CU_ASSERT(check_frozen_fds(pid_a, a.tablet_id) >= 1);
  }

  /* Calls with A's old epochs are queued on A's connection, A resumes,
   * and they keep coming. */
  fire fs[FIRE_THREADS];
  pthread_t fth[FIRE_THREADS];
  for (int i = 0; i < FIRE_THREADS; i++) {
    memset(&fs[i], 0, sizeof(fs[i]));
    fs[i].t = a;
    fs[i].id = i;
    atomic_init(&fs[i].stop, false);
    pthread_create(&fth[i], NULL, fire_main, &fs[i]);
  }
  cl_sleep_ms(300);
  CU_ASSERT_EQUAL_FATAL(kill(pid_a, SIGCONT), 0);
  cl_sleep_ms(2000);
  for (int i = 0; i < 4; i++) pthread_join(hth[i], NULL);
  for (int i = 0; i < FIRE_THREADS; i++) atomic_store(&fs[i].stop, true);
  int sent = 0, answered = 0, ok = 0, bad = 0, timeouts = 0;
  for (int i = 0; i < FIRE_THREADS; i++) {
    pthread_join(fth[i], NULL);
    sent += fs[i].sent;
    answered += fs[i].answered;
    ok += fs[i].ok;
    bad += fs[i].bad_code;
    timeouts += fs[i].timeouts;
    if (fs[i].bad_code) fprintf(stderr, "\n  unexpected: %s\n", fs[i].first_bad);
  }
  atomic_store(&rs.stop, true);
  pthread_join(rth, NULL);
  fprintf(stderr, "  fired at A with old epochs: %d calls, %d refused, %d "
          "answered OK, %d other codes, %d unanswered\n",
          sent, answered - ok, ok, bad, timeouts);
  CU_ASSERT_EQUAL(ok, 0);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(answered > 0);

  check_data("after the move");
  int fenced_rows = 0;
  TU_OK(kvc_scan(g_c, "f", count_fenced_row, &fenced_rows, 60000));
  CU_ASSERT_EQUAL(fenced_rows, 0);
  check_segments(a.tablet_id, a.assign_epoch, b.assign_epoch);

  /* B dies; the tablet comes back on A from the files. */
  int slot_b = cl_tserver_slot(g_c, b.address);
  CU_ASSERT_FATAL(slot_b >= 0);
  TU_OK(cl_kill_tserver(g_c, slot_b));
  target c;
  for (uint64_t until = cl_now_ms() + 20000;;) {
    route_of(&c);
    if (strcmp(c.address, b.address) != 0 || cl_now_ms() > until) break;
    cl_sleep_ms(50);
  }
  CU_ASSERT(c.assign_epoch > b.assign_epoch);
  check_data("reopened on A");
  fenced_rows = 0;
  TU_OK(kvc_scan(g_c, "f", count_fenced_row, &fenced_rows, 60000));
  CU_ASSERT_EQUAL(fenced_rows, 0);

  cl_free(g_c);
  g_c = NULL;
}

static void test_frozen_owner(void) { frozen_owner(true); }
static void test_frozen_owner_tablet_wal(void) { frozen_owner(false); }

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("fencing", NULL, NULL);
  CU_add_test(s, "frozen_owner", test_frozen_owner);
  CU_add_test(s, "frozen_owner_tablet_wal", test_frozen_owner_tablet_wal);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
