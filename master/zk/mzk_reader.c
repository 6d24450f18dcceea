/* mzk_reader: follows /master/active for processes that must find the
 * active master (tablet servers, libmica, the CLI).
 *
 * One thread makes the ZooKeeper calls. It reads the record with a watch,
 * or, when there is none, sets an exists-watch so that the next master's
 * creation wakes it; every watch event and every reconnect leads to one
 * fresh read. The last record seen is kept across disconnections: a caller
 * that reaches a deposed master is told who is active by that master's
 * refusal, so a stale answer costs one redirect, not correctness. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "master/zk/mzk_int.h"

struct mzk_reader {
  char *hosts, *chroot, *p_active;
  int timeout_ms;
  void (*on_change)(void *, const mzk_master *);
  void *ctx;

  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cond; /* wakes the thread */
  pthread_cond_t seen; /* wakes mzk_reader_wait */
  bool stop, wake, need_fetch, expired; /* (mu) */
  int zstate;                           /* (mu) */
  bool have;                            /* (mu) */
  mzk_master cur;                       /* (mu) */
  bool follow_cands;                    /* (mu) */
  bool cands_known;                     /* (mu) */
  size_t n_cands;                       /* (mu) all candidates seen */
  mzk_member cands[MZK_MAX_MEMBERS];    /* (mu) the first of them */
  char *p_cands;

  zhandle_t *zh; /* thread-only after start */
  uint64_t retry_at_us;
};

static uint64_t now_us(void) { return env_now_micros(env_posix()); }

static void reader_watcher(zhandle_t *zh, int type, int state,
                           const char *path, void *ctx) {
  (void)zh;
  (void)path;
  mzk_reader *r = ctx;
  pthread_mutex_lock(&r->mu);
  if (type == ZOO_SESSION_EVENT) {
    r->zstate = state;
    if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
      r->expired = true;
    if (state == ZOO_CONNECTED_STATE) r->need_fetch = true;
  } else {
    r->need_fetch = true;
  }
  r->wake = true;
  pthread_cond_signal(&r->cond);
  pthread_mutex_unlock(&r->mu);
}

static void publish(mzk_reader *r, const mzk_master *m) {
  pthread_mutex_lock(&r->mu);
  bool changed = r->have != (m != NULL) ||
                 (m != NULL && (m->epoch != r->cur.epoch ||
                                strcmp(m->rpc_addr, r->cur.rpc_addr) != 0 ||
                                strcmp(m->http_addr, r->cur.http_addr) != 0));
  r->have = m != NULL;
  if (m != NULL) r->cur = *m;
  pthread_cond_broadcast(&r->seen);
  pthread_mutex_unlock(&r->mu);
  if (changed && r->on_change) r->on_change(r->ctx, m);
}

static void fetch(mzk_reader *r) {
  char zbuf[4 * MZK_ADDR_MAX];
  int len = sizeof zbuf;
  struct Stat st;
  int rc = zoo_wget(r->zh, r->p_active, reader_watcher, r, zbuf, &len, &st);
  if (rc == ZOK) {
    mzk_master m;
    mica_err *e = mzk_record_parse(zbuf, len, &m);
    if (e != NULL) {
      LOG_W("mzk reader: %s: %s", r->p_active, err_msg(e));
      err_free(e);
      publish(r, NULL);
    } else {
      publish(r, &m);
    }
  } else if (rc == ZNONODE) {
    rc = zoo_wexists(r->zh, r->p_active, reader_watcher, r, NULL);
    if (rc == ZOK) {
      pthread_mutex_lock(&r->mu);
      r->need_fetch = true;
      r->wake = true;
      pthread_mutex_unlock(&r->mu);
    } else if (rc == ZNONODE) {
      publish(r, NULL);
    } else {
      r->retry_at_us = now_us() + 200000;
    }
  } else {
    r->retry_at_us = now_us() + 200000;
  }
}

/* Sequence number of a candidate name "c-<session>-<seq>"; -1 if not one. */
static long long seq_of(const char *name) {
  const char *dash = strrchr(name, '-');
  if (strncmp(name, "c-", 2) != 0 || dash == NULL || dash == name + 1 ||
      dash[1] == '\0')
    return -1;
  long long v = 0;
  for (const char *p = dash + 1; *p; p++) {
    if (*p < '0' || *p > '9' || v > (LLONG_MAX - 9) / 10) return -1;
    v = v * 10 + (*p - '0');
  }
  return v;
}

static int by_seq(const void *a, const void *b) {
  long long x = seq_of(*(char *const *)a), y = seq_of(*(char *const *)b);
  return x < y ? -1 : x > y;
}

/* Lists the candidates with a child watch and reads each one's record. A
 * node that goes between the listing and its read is skipped; its
 * departure fires the watch, so a fresh list follows. */
static void fetch_cands(mzk_reader *r) {
  struct String_vector kids = {0, NULL};
  int rc = zoo_wget_children(r->zh, r->p_cands, reader_watcher, r, &kids);
  if (rc == ZNONODE) {
    /* No candidate ever: wait for the parent to appear. */
    rc = zoo_wexists(r->zh, r->p_cands, reader_watcher, r, NULL);
    if (rc == ZNONODE) {
      pthread_mutex_lock(&r->mu);
      r->n_cands = 0;
      r->cands_known = true;
      pthread_mutex_unlock(&r->mu);
      return;
    }
    if (rc == ZOK) {
      pthread_mutex_lock(&r->mu);
      r->need_fetch = r->wake = true;
      pthread_mutex_unlock(&r->mu);
    } else {
      r->retry_at_us = now_us() + 200000;
    }
    return;
  }
  if (rc != ZOK) {
    r->retry_at_us = now_us() + 200000;
    return;
  }
  char **v = calloc((size_t)kids.count + 1, sizeof *v);
  size_t n = 0;
  for (int i = 0; v != NULL && i < kids.count; i++)
    if (seq_of(kids.data[i]) >= 0) v[n++] = kids.data[i];
  if (v != NULL) qsort(v, n, sizeof *v, by_seq);
  mzk_member got[MZK_MAX_MEMBERS];
  size_t k = 0, all = 0;
  for (size_t i = 0; v != NULL && i < n; i++) {
    char path[768], zbuf[4 * MZK_ADDR_MAX];
    snprintf(path, sizeof path, "%s/%s", r->p_cands, v[i]);
    int len = sizeof zbuf;
    if (zoo_get(r->zh, path, 0, zbuf, &len, NULL) != ZOK) continue;
    mzk_member m;
    mica_err *e = mzk_cand_parse(zbuf, len, &m);
    if (e != NULL) {
      LOG_W("mzk reader: %s: %s", path, err_msg(e));
      err_free(e);
      continue;
    }
    if (k < MZK_MAX_MEMBERS) got[k++] = m;
    all++;
  }
  if (v == NULL) {
    r->retry_at_us = now_us() + 200000;
  } else {
    pthread_mutex_lock(&r->mu);
    memcpy(r->cands, got, k * sizeof got[0]);
    r->n_cands = all;
    r->cands_known = true;
    pthread_mutex_unlock(&r->mu);
  }
  free(v);
  deallocate_String_vector(&kids);
}

static void *reader_main(void *arg) {
  mzk_reader *r = arg;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    while (!r->stop && !r->wake &&
           (r->retry_at_us == 0 || now_us() < r->retry_at_us)) {
      if (r->retry_at_us == 0) pthread_cond_wait(&r->cond, &r->mu);
      else mzk_cond_wait_until(&r->cond, &r->mu, r->retry_at_us);
    }
    bool stop = r->stop, expired = r->expired;
    int zst = r->zstate;
    if (r->retry_at_us != 0 && now_us() >= r->retry_at_us)
      r->need_fetch = true;
    bool need = r->need_fetch;
    r->wake = false;
    r->need_fetch = false;
    pthread_mutex_unlock(&r->mu);
    if (stop) break;
    r->retry_at_us = 0;
    if (r->zh == NULL || expired) {
      if (r->zh != NULL) zookeeper_close(r->zh);
      pthread_mutex_lock(&r->mu);
      r->expired = false;
      r->zstate = ZOO_CONNECTING_STATE;
      pthread_mutex_unlock(&r->mu);
      r->zh = zookeeper_init(r->hosts, reader_watcher, r->timeout_ms, NULL, r,
                             0);
      if (r->zh != NULL) zoo_set_log_callback(r->zh, mzk_client_log);
      if (r->zh == NULL) r->retry_at_us = now_us() + 1000000;
      continue;
    }
    if (zst == ZOO_CONNECTED_STATE && need) {
      fetch(r);
      pthread_mutex_lock(&r->mu);
      bool cands = r->follow_cands;
      pthread_mutex_unlock(&r->mu);
      if (cands) fetch_cands(r);
    }
  }
  return NULL;
}

mica_err *mzk_reader_open(const char *zk, int session_timeout_ms,
                          void (*on_change)(void *, const mzk_master *),
                          void *ctx, mzk_reader **out) {
  *out = NULL;
  if (session_timeout_ms < 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "mzk: session timeout %d ms is negative", session_timeout_ms);
  mzk_reader *r = calloc(1, sizeof *r);
  if (r == NULL) return err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  mica_err *err = mzk_spec_parse(zk, &r->hosts, &r->chroot);
  if (err != NULL) {
    free(r);
    return err;
  }
  r->p_active = mzk_path(r->chroot, "/master/active");
  r->p_cands = mzk_path(r->chroot, "/master/candidates");
  r->timeout_ms = session_timeout_ms ? session_timeout_ms : 10000;
  r->on_change = on_change;
  r->ctx = ctx;
  r->zstate = ZOO_CONNECTING_STATE;
  pthread_mutex_init(&r->mu, NULL);
  mzk_cond_init_mono(&r->cond);
  mzk_cond_init_mono(&r->seen);
  if (r->p_active == NULL || r->p_cands == NULL) {
    mzk_reader_close(r);
    return err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  }
  mzk_setup_client_log();
  r->zh = zookeeper_init(r->hosts, reader_watcher, r->timeout_ms, NULL, r, 0);
  if (r->zh != NULL) zoo_set_log_callback(r->zh, mzk_client_log);
  if (r->zh == NULL) {
    err = err_new(MICA_UNAVAILABLE,
                  "mzk: cannot create a ZooKeeper client for '%s': %m",
                  r->hosts);
    mzk_reader_close(r);
    return err;
  }
  if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
    mzk_reader_close(r);
    return err_new(MICA_RESOURCE_EXHAUSTED, "mzk: cannot start a thread");
  }
  r->thread_started = true;
  *out = r;
  return NULL;
}

bool mzk_reader_get(mzk_reader *r, mzk_master *out) {
  pthread_mutex_lock(&r->mu);
  bool have = r->have;
  if (have) *out = r->cur;
  pthread_mutex_unlock(&r->mu);
  return have;
}

mica_err *mzk_reader_wait(mzk_reader *r, uint64_t min_epoch, int timeout_ms,
                          mzk_master *out) {
  uint64_t deadline = now_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) *
                                     1000;
  pthread_mutex_lock(&r->mu);
  while (!(r->have && r->cur.epoch >= min_epoch) && now_us() < deadline)
    mzk_cond_wait_until(&r->seen, &r->mu, deadline);
  bool ok = r->have && r->cur.epoch >= min_epoch;
  mzk_master cur = r->cur;
  bool have = r->have;
  pthread_mutex_unlock(&r->mu);
  if (ok) {
    *out = cur;
    return NULL;
  }
  if (!have)
    return err_new(MICA_DEADLINE_EXCEEDED,
                   "no active master in ZooKeeper after %d ms", timeout_ms);
  return err_new(MICA_DEADLINE_EXCEEDED,
                 "after %d ms the active master is %s with epoch %" PRIu64
                 ", not epoch %" PRIu64 " or later",
                 timeout_ms, cur.rpc_addr, cur.epoch, min_epoch);
}

void mzk_reader_close(mzk_reader *r) {
  if (r == NULL) return;
  pthread_mutex_lock(&r->mu);
  r->stop = true;
  pthread_cond_signal(&r->cond);
  pthread_mutex_unlock(&r->mu);
  if (r->thread_started) pthread_join(r->thread, NULL);
  if (r->zh) zookeeper_close(r->zh);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cond);
  pthread_cond_destroy(&r->seen);
  free(r->hosts);
  free(r->chroot);
  free(r->p_active);
  free(r->p_cands);
  free(r);
}

void mzk_reader_follow_candidates(mzk_reader *r) {
  pthread_mutex_lock(&r->mu);
  r->follow_cands = true;
  r->need_fetch = r->wake = true;
  pthread_cond_signal(&r->cond);
  pthread_mutex_unlock(&r->mu);
}

bool mzk_reader_candidates(mzk_reader *r, mzk_member *out, size_t cap,
                           size_t *n) {
  pthread_mutex_lock(&r->mu);
  bool known = r->cands_known;
  size_t k = r->n_cands < MZK_MAX_MEMBERS ? r->n_cands : MZK_MAX_MEMBERS;
  if (k > cap) k = cap;
  if (known) memcpy(out, r->cands, k * sizeof out[0]);
  *n = known ? r->n_cands : 0;
  pthread_mutex_unlock(&r->mu);
  return known;
}
