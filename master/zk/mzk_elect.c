/* mzk_elect: one master candidate (see mzk.h for the recipe and the znodes,
 * docs/ha.md for why the leadership lease is safe).
 *
 * One thread per elector makes every ZooKeeper call (synchronous calls may
 * not run on ZooKeeper's completion thread). Watchers only note what
 * happened and wake it; the one exception is the step-down on a lost
 * connection, done by the session watcher itself so that the owner hears
 * of it without waiting for this thread.
 *
 * Leadership lease: every answered write (the winning multi-op, then a
 * check-only multi-op every eighth of the session timeout, both conditional
 * on this candidate's node) extends the lease to (send time + half the
 * granted session timeout). A lease that lapsed because writes went
 * unanswered resumes, with the same epoch, when one is answered: the
 * session, and so the candidate node, was still alive at that write, so no
 * one else can have won. Writes, not reads: only a write proves the
 * ZooKeeper leader still held the session at that moment; a read may be
 * answered by a follower cut off from the leader.
 *
 * Locks: `mu` guards the fields marked (mu) and the wake/stop flags. `cb_mu`
 * serialises role changes with on_change; it is taken before `mu` when both
 * are needed and is never held across a ZooKeeper call. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "master/zk/mzk_int.h"

struct mzk_elector {
  env *env;
  char *hosts, *chroot;
  char *p_master, *p_cands, *p_epoch, *p_active;
  char *rpc;
  int want_timeout_ms;
  uint64_t min_epoch;
  void (*on_change)(void *, bool, uint64_t, const char *);
  void *ctx;

  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool stop, wake;           /* (mu) */
  int zstate;                /* (mu) last session state seen by the watcher */
  char http[MZK_ADDR_MAX];   /* (mu) published HTTP address, "" for none */
  bool republish;            /* (mu) the record must be rewritten */
  bool expired;              /* (mu) */
  mzk_elector_stats st;      /* (mu) except `active`, computed on read */

  /* Thread-only state. */
  zhandle_t *zh;
  int64_t sid;
  bool paths_ok;
  char cand[64];             /* own candidate node name, "" when none */
  uint64_t retry_at_us;      /* 0: sleep until woken */
  uint64_t refresh_at_us;

  pthread_mutex_t cb_mu;
  atomic_bool active;
  atomic_uint_fast64_t lease_until_us;
  atomic_uint_fast64_t epoch;
};

static uint64_t now_us(mzk_elector *e) { return env_now_micros(e->env); }

static uint64_t lease_us(mzk_elector *e) {
  int t = zoo_recv_timeout(e->zh);
  return (uint64_t)(t > 0 ? t : e->want_timeout_ms) * 1000 / 2;
}

static void step_down(mzk_elector *e, const char *why) {
  pthread_mutex_lock(&e->cb_mu);
  if (atomic_load(&e->active)) {
    atomic_store(&e->active, false);
    atomic_store(&e->lease_until_us, 0);
    LOG_W("mzk: stepping down as active master (epoch %" PRIu64 "): %s",
          (uint64_t)atomic_load(&e->epoch), why);
    if (e->on_change) e->on_change(e->ctx, false, atomic_load(&e->epoch), why);
  }
  pthread_mutex_unlock(&e->cb_mu);
}

static void become_active(mzk_elector *e, uint64_t epoch, uint64_t until) {
  pthread_mutex_lock(&e->cb_mu);
  atomic_store(&e->epoch, epoch);
  atomic_store(&e->lease_until_us, until);
  atomic_store(&e->active, true);
  pthread_mutex_lock(&e->mu);
  e->st.epoch = epoch;
  e->st.wins++;
  pthread_mutex_unlock(&e->mu);
  LOG_I("mzk: active master with epoch %" PRIu64 " (candidate %s)", epoch,
        e->cand);
  if (e->on_change) e->on_change(e->ctx, true, epoch, "won the election");
  pthread_mutex_unlock(&e->cb_mu);
}

static void wake_locked(mzk_elector *e) {
  e->wake = true;
  pthread_cond_signal(&e->cond);
}

static void session_watcher(zhandle_t *zh, int type, int state,
                            const char *path, void *ctx) {
  (void)zh;
  (void)path;
  mzk_elector *e = ctx;
  if (type != ZOO_SESSION_EVENT) return;
  pthread_mutex_lock(&e->mu);
  e->zstate = state;
  if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
    e->expired = true;
  e->st.connected = state == ZOO_CONNECTED_STATE;
  if (state == ZOO_CONNECTED_STATE)
    e->st.session_state = MZK_SESSION_CONNECTED;
  else if (state == ZOO_EXPIRED_SESSION_STATE ||
           state == ZOO_AUTH_FAILED_STATE)
    e->st.session_state = MZK_SESSION_EXPIRED;
  else if (e->st.session_state == MZK_SESSION_CONNECTED)
    e->st.session_state = MZK_SESSION_CONNECTING;
  wake_locked(e);
  pthread_mutex_unlock(&e->mu);
  if (state == ZOO_EXPIRED_SESSION_STATE)
    step_down(e, "ZooKeeper session expired");
  else if (state != ZOO_CONNECTED_STATE)
    step_down(e, "disconnected from ZooKeeper");
}

/* Watches the predecessor candidate, and /master/active while waiting for
 * an old owner's record to go. Session events reach these too; they are
 * the session watcher's business. */
static void node_watcher(zhandle_t *zh, int type, int state, const char *path,
                         void *ctx) {
  (void)zh;
  (void)state;
  (void)path;
  mzk_elector *e = ctx;
  if (type == ZOO_SESSION_EVENT) return;
  pthread_mutex_lock(&e->mu);
  e->st.watch_events++;
  e->st.watching[0] = '\0';
  wake_locked(e);
  pthread_mutex_unlock(&e->mu);
}

static void retry_later(mzk_elector *e, int ms) {
  e->retry_at_us = now_us(e) + (uint64_t)ms * 1000;
}

static void set_cand(mzk_elector *e, const char *name) {
  snprintf(e->cand, sizeof e->cand, "%s", name);
  pthread_mutex_lock(&e->mu);
  if (name[0] == '\0') e->st.watching[0] = '\0';
  snprintf(e->st.candidate, sizeof e->st.candidate, "%s", name);
  pthread_mutex_unlock(&e->mu);
}

static void new_session(mzk_elector *e) {
  step_down(e, "ZooKeeper session expired");
  if (e->zh != NULL) zookeeper_close(e->zh);
  pthread_mutex_lock(&e->mu);
  e->expired = false;
  e->zstate = ZOO_CONNECTING_STATE;
  e->st.connected = false;
  e->st.session_id = 0;
  pthread_mutex_unlock(&e->mu);
  set_cand(e, "");
  e->sid = 0;
  e->zh = zookeeper_init(e->hosts, session_watcher, e->want_timeout_ms, NULL,
                         e, 0);
  if (e->zh != NULL) zoo_set_log_callback(e->zh, mzk_client_log);
  if (e->zh == NULL) {
    LOG_E("mzk: cannot create a ZooKeeper client for %s: %m", e->hosts);
    retry_later(e, 1000);
  }
}

/* Sequence number of a candidate name "c-<session>-<seq>"; -1 if not one. */
static long long cand_seq(const char *name) {
  const char *d = strrchr(name, '-');
  if (strncmp(name, "c-", 2) != 0 || d == NULL || d[1] == '\0') return -1;
  char *end;
  long long v = strtoll(d + 1, &end, 10);
  return *end == '\0' && v >= 0 ? v : -1;
}

static char *child_path(mzk_elector *e, const char *name, char *zbuf,
                        size_t n) {
  snprintf(zbuf, n, "%s/%s", e->p_cands, name);
  return zbuf;
}

static bool setup_paths(mzk_elector *e) {
  int rc = mzk_ensure_path(e->zh, e->p_cands);
  if (rc == ZOK) {
    rc = zoo_create(e->zh, e->p_epoch, "0", 1, &ZOO_OPEN_ACL_UNSAFE, 0,
                    NULL, 0);
    if (rc == ZNODEEXISTS) rc = ZOK;
  }
  if (rc != ZOK) {
    LOG_W("mzk: cannot create %s: %s", e->p_cands, zerror(rc));
    return false;
  }
  return true;
}

/* The lease check: a write that succeeds only while this candidate's node
 * exists. Returns the ZooKeeper code. */
static int check_candidate(mzk_elector *e) {
  char path[512];
  zoo_op_t op;
  zoo_op_result_t res = {0};
  zoo_check_op_init(&op, child_path(e, e->cand, path, sizeof path), -1);
  return zoo_multi(e->zh, 1, &op, &res);
}

static void refresh(mzk_elector *e) {
  uint64_t s = now_us(e);
  int rc = check_candidate(e);
  if (rc == ZOK) {
    pthread_mutex_lock(&e->cb_mu);
    if (atomic_load(&e->active))
      atomic_store(&e->lease_until_us, s + lease_us(e));
    pthread_mutex_unlock(&e->cb_mu);
    e->refresh_at_us = s + lease_us(e) / 4; /* an eighth of the timeout */
  } else if (rc == ZNONODE) {
    step_down(e, "this candidate's znode was removed");
    struct Stat ast;
    if (zoo_exists(e->zh, e->p_active, 0, &ast) == ZOK &&
        ast.ephemeralOwner == e->sid)
      zoo_delete(e->zh, e->p_active, ast.version);
    set_cand(e, "");
    e->retry_at_us = now_us(e);
  } else {
    /* Connection trouble: the session watcher steps down if it lasts; the
     * lease runs out by itself otherwise. */
    e->refresh_at_us = now_us(e) + 100000;
  }
}

/* Reads the stored epoch. ZOK with *epoch and *version set. */
static int read_epoch(mzk_elector *e, uint64_t *epoch, int *version) {
  char zbuf[32];
  int len = sizeof zbuf - 1;
  struct Stat st;
  int rc = zoo_get(e->zh, e->p_epoch, 0, zbuf, &len, &st);
  if (rc == ZNONODE) {
    /* It existed when this candidate started: someone removed it. Making
     * it again would restart epochs from the owner's floor only, so an
     * operator must restore it (with at least the highest epoch used). */
    LOG_E("mzk: %s has been removed; no master can be elected until it is "
          "restored with the highest master epoch used so far", e->p_epoch);
    return ZBADARGUMENTS;
  }
  if (rc != ZOK) return rc;
  if (len < 0) len = 0;
  zbuf[len] = '\0';
  char *end;
  unsigned long long v = strtoull(zbuf, &end, 10);
  if (len == 0 || *end != '\0' || zbuf[0] < '0' || zbuf[0] > '9') {
    LOG_E("mzk: %s holds '%s', not a decimal epoch; no master can be elected "
          "until it is fixed", e->p_epoch, zbuf);
    return ZBADARGUMENTS;
  }
  *epoch = v;
  *version = st.version;
  return ZOK;
}

static void try_win(mzk_elector *e) {
  uint64_t stored;
  int version;
  int rc = read_epoch(e, &stored, &version);
  if (rc != ZOK) {
    retry_later(e, rc == ZBADARGUMENTS ? 5000 : 200);
    return;
  }
  uint64_t epoch = (stored > e->min_epoch ? stored : e->min_epoch) + 1;
  char ebuf[32], rec[3 * MZK_ADDR_MAX], cpath[512];
  snprintf(ebuf, sizeof ebuf, "%" PRIu64, epoch);
  mzk_master m = {.epoch = epoch};
  snprintf(m.rpc_addr, sizeof m.rpc_addr, "%s", e->rpc);
  pthread_mutex_lock(&e->mu);
  snprintf(m.http_addr, sizeof m.http_addr, "%s", e->http);
  e->republish = false; /* this record has the latest address */
  pthread_mutex_unlock(&e->mu);
  int rlen = mzk_record_format(&m, rec, sizeof rec);

  zoo_op_t ops[3];
  zoo_op_result_t res[3];
  memset(res, 0, sizeof res);
  zoo_check_op_init(&ops[0], child_path(e, e->cand, cpath, sizeof cpath), -1);
  zoo_set_op_init(&ops[1], e->p_epoch, ebuf, (int)strlen(ebuf), version, NULL);
  zoo_create_op_init(&ops[2], e->p_active, rec, rlen, &ZOO_OPEN_ACL_UNSAFE,
                     ZOO_EPHEMERAL, NULL, 0);
  uint64_t s = now_us(e);
  rc = zoo_multi(e->zh, 3, ops, res);
  if (rc == ZNODEEXISTS && res[2].err == ZNODEEXISTS) {
    /* Our own record from before a reconnect is replaced; anyone else's
     * must vanish first (its session is ending). */
    struct Stat ast;
    int erc = zoo_wexists(e->zh, e->p_active, node_watcher, e, &ast);
    if (erc == ZNONODE) {
      e->retry_at_us = now_us(e);
      return;
    }
    if (erc != ZOK || ast.ephemeralOwner != e->sid) {
      if (erc != ZOK) retry_later(e, 200);
      LOG_I("mzk: waiting for the previous active master's record to go");
      return;
    }
    zoo_set_op_init(&ops[2], e->p_active, rec, rlen, ast.version, NULL);
    memset(res, 0, sizeof res);
    s = now_us(e);
    rc = zoo_multi(e->zh, 3, ops, res);
  }
  if (rc == ZOK) {
    become_active(e, epoch, s + lease_us(e));
    e->refresh_at_us = s + lease_us(e) / 4;
    return;
  }
  if (res[0].err == ZNONODE) {
    set_cand(e, "");
    e->retry_at_us = now_us(e);
  } else if (res[1].err == ZBADVERSION) {
    e->retry_at_us = now_us(e);
  } else {
    LOG_W("mzk: taking epoch %" PRIu64 " failed: %s", epoch, zerror(rc));
    retry_later(e, 200);
  }
}

/* Rewrites this master's own record after mzk_elector_set_http_addr. */
static void republish(mzk_elector *e) {
  mzk_master m = {.epoch = atomic_load(&e->epoch)};
  snprintf(m.rpc_addr, sizeof m.rpc_addr, "%s", e->rpc);
  pthread_mutex_lock(&e->mu);
  snprintf(m.http_addr, sizeof m.http_addr, "%s", e->http);
  e->republish = false;
  pthread_mutex_unlock(&e->mu);
  char rec[3 * MZK_ADDR_MAX];
  int rlen = mzk_record_format(&m, rec, sizeof rec);
  struct Stat ast;
  int rc = zoo_exists(e->zh, e->p_active, 0, &ast);
  if (rc == ZOK && ast.ephemeralOwner == e->sid)
    rc = zoo_set(e->zh, e->p_active, rec, rlen, ast.version);
  else if (rc == ZOK)
    rc = ZNOAUTH; /* not ours: we are being deposed; nothing to rewrite */
  if (rc != ZOK && rc != ZNOAUTH) {
    pthread_mutex_lock(&e->mu);
    e->republish = true;
    pthread_mutex_unlock(&e->mu);
    retry_later(e, 200);
  }
}

static int cmp_seq(const void *a, const void *b) {
  long long x = cand_seq(*(char *const *)a), y = cand_seq(*(char *const *)b);
  return x < y ? -1 : x > y;
}

static void campaign(mzk_elector *e) {
  if (!e->paths_ok && !(e->paths_ok = setup_paths(e))) {
    retry_later(e, 500);
    return;
  }
  if (atomic_load(&e->active)) {
    if (now_us(e) >= e->refresh_at_us) refresh(e);
    pthread_mutex_lock(&e->mu);
    bool again = e->republish;
    pthread_mutex_unlock(&e->mu);
    if (again && atomic_load(&e->active)) republish(e);
    return;
  }
  struct String_vector kids = {0, NULL};
  int rc = zoo_get_children(e->zh, e->p_cands, 0, &kids);
  if (rc != ZOK) {
    retry_later(e, 200);
    return;
  }
  char prefix[32];
  snprintf(prefix, sizeof prefix, "c-%016" PRIx64 "-", (uint64_t)e->sid);
  char **v = malloc(sizeof(char *) * (size_t)(kids.count + 1));
  int n = 0, mine = -1;
  for (int i = 0; v != NULL && i < kids.count; i++)
    if (cand_seq(kids.data[i]) >= 0) v[n++] = kids.data[i];
  if (v != NULL) qsort(v, (size_t)n, sizeof *v, cmp_seq);
  for (int i = 0; i < n; i++)
    if (strncmp(v[i], prefix, strlen(prefix)) == 0) {
      if (mine < 0) mine = i;
      else {
        /* A create retried after a lost answer made two; keep the lowest. */
        char p[512];
        zoo_delete(e->zh, child_path(e, v[i], p, sizeof p), -1);
      }
    }
  if (v == NULL) {
    retry_later(e, 200);
  } else if (mine < 0) {
    char path[512], made[512];
    snprintf(path, sizeof path, "%s/%s", e->p_cands, prefix);
    char rec[3 * MZK_ADDR_MAX];
    pthread_mutex_lock(&e->mu);
    mzk_member me;
    snprintf(me.rpc_addr, sizeof me.rpc_addr, "%s", e->rpc);
    snprintf(me.http_addr, sizeof me.http_addr, "%s", e->http);
    pthread_mutex_unlock(&e->mu);
    int rlen = mzk_cand_format(&me, rec, sizeof rec);
    rc = zoo_create(e->zh, path, rec, rlen < 0 ? 0 : rlen,
                    &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, made,
                    sizeof made);
    if (rc == ZOK) {
      set_cand(e, strrchr(made, '/') + 1);
      LOG_I("mzk: candidate %s", e->cand);
    }
    e->retry_at_us = now_us(e) + (rc == ZOK ? 0 : 200000);
  } else {
    set_cand(e, v[mine]);
    if (mine == 0) {
      try_win(e);
    } else {
      char p[512];
      rc = zoo_wexists(e->zh, child_path(e, v[mine - 1], p, sizeof p),
                       node_watcher, e, NULL);
      pthread_mutex_lock(&e->mu);
      snprintf(e->st.watching, sizeof e->st.watching, "%s",
               rc == ZOK ? v[mine - 1] : "");
      pthread_mutex_unlock(&e->mu);
      if (rc == ZNONODE) e->retry_at_us = now_us(e);
      else if (rc != ZOK) retry_later(e, 200);
    }
  }
  free(v);
  deallocate_String_vector(&kids);
}

static void *elector_main(void *arg) {
  mzk_elector *e = arg;
  for (;;) {
    pthread_mutex_lock(&e->mu);
    for (;;) {
      if (e->stop || e->wake) break;
      uint64_t now = now_us(e), until = UINT64_MAX;
      if (e->retry_at_us != 0) until = e->retry_at_us;
      if (atomic_load(&e->active) && e->refresh_at_us < until)
        until = e->refresh_at_us;
      if (now >= until) break;
      if (until == UINT64_MAX) pthread_cond_wait(&e->cond, &e->mu);
      else mzk_cond_wait_until(&e->cond, &e->mu, until);
    }
    bool stop = e->stop, expired = e->expired;
    int zst = e->zstate;
    e->wake = false;
    pthread_mutex_unlock(&e->mu);
    if (stop) break;
    e->retry_at_us = 0;
    if (e->zh == NULL || expired) {
      new_session(e);
      continue;
    }
    if (zst != ZOO_CONNECTED_STATE) continue;
    const clientid_t *cid = zoo_client_id(e->zh);
    if (cid->client_id != e->sid) {
      e->sid = cid->client_id;
      pthread_mutex_lock(&e->mu);
      e->st.session_id = e->sid;
      e->st.session_timeout_ms = zoo_recv_timeout(e->zh);
      e->st.sessions++;
      pthread_mutex_unlock(&e->mu);
      LOG_I("mzk: session 0x%" PRIx64 " (timeout %d ms)", (uint64_t)e->sid,
            zoo_recv_timeout(e->zh));
    }
    campaign(e);
  }
  return NULL;
}

mica_err *mzk_elector_start(const mzk_elector_opts *o, mzk_elector **out) {
  *out = NULL;
  if (o->rpc_addr == NULL || o->rpc_addr[0] == '\0' ||
      strlen(o->rpc_addr) >= MZK_ADDR_MAX || strchr(o->rpc_addr, '\n'))
    return err_new(MICA_INVALID_ARGUMENT,
                   "mzk: rpc_addr must be a non-empty host:port of at most "
                   "%d bytes", MZK_ADDR_MAX - 1);
  if (o->http_addr != NULL &&
      (strlen(o->http_addr) >= MZK_ADDR_MAX || strchr(o->http_addr, '\n')))
    return err_new(MICA_INVALID_ARGUMENT,
                   "mzk: http_addr must be a host:port of at most %d bytes",
                   MZK_ADDR_MAX - 1);
  if (o->session_timeout_ms < 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "mzk: session timeout %d ms is negative",
                   o->session_timeout_ms);
  mzk_elector *e = calloc(1, sizeof *e);
  if (e == NULL) return err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  mica_err *err = mzk_spec_parse(o->zk, &e->hosts, &e->chroot);
  if (err != NULL) {
    free(e);
    return err;
  }
  e->env = o->env ? o->env : env_posix();
  e->p_master = mzk_path(e->chroot, "/master");
  e->p_cands = mzk_path(e->chroot, "/master/candidates");
  e->p_epoch = mzk_path(e->chroot, "/master/epoch");
  e->p_active = mzk_path(e->chroot, "/master/active");
  e->rpc = strdup(o->rpc_addr);
  snprintf(e->http, sizeof e->http, "%s", o->http_addr ? o->http_addr : "");
  e->want_timeout_ms = o->session_timeout_ms ? o->session_timeout_ms : 10000;
  e->min_epoch = o->min_epoch;
  e->on_change = o->on_change;
  e->ctx = o->ctx;
  e->zstate = ZOO_CONNECTING_STATE;
  pthread_mutex_init(&e->mu, NULL);
  pthread_mutex_init(&e->cb_mu, NULL);
  mzk_cond_init_mono(&e->cond);
  atomic_init(&e->active, false);
  atomic_init(&e->lease_until_us, 0);
  atomic_init(&e->epoch, 0);
  if (!e->p_master || !e->p_cands || !e->p_epoch || !e->p_active ||
      !e->rpc) {
    mzk_elector_close(e);
    return err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  }
  mzk_setup_client_log();
  e->zh = zookeeper_init(e->hosts, session_watcher, e->want_timeout_ms, NULL,
                         e, 0);
  if (e->zh != NULL) zoo_set_log_callback(e->zh, mzk_client_log);
  if (e->zh == NULL) {
    err = err_new(MICA_UNAVAILABLE, "mzk: cannot create a ZooKeeper client "
                  "for '%s': %m", e->hosts);
    mzk_elector_close(e);
    return err;
  }
  if (pthread_create(&e->thread, NULL, elector_main, e) != 0) {
    mzk_elector_close(e);
    return err_new(MICA_RESOURCE_EXHAUSTED, "mzk: cannot start a thread");
  }
  e->thread_started = true;
  *out = e;
  return NULL;
}

mica_err *mzk_elector_set_http_addr(mzk_elector *e, const char *addr) {
  if (addr == NULL) addr = "";
  if (strlen(addr) >= MZK_ADDR_MAX || strchr(addr, '\n'))
    return err_new(MICA_INVALID_ARGUMENT,
                   "mzk: http address must be a host:port of at most %d "
                   "bytes", MZK_ADDR_MAX - 1);
  pthread_mutex_lock(&e->mu);
  snprintf(e->http, sizeof e->http, "%s", addr);
  e->republish = true;
  wake_locked(e);
  pthread_mutex_unlock(&e->mu);
  return NULL;
}

bool mzk_elector_is_active(mzk_elector *e, uint64_t *epoch) {
  if (!atomic_load(&e->active)) return false;
  uint64_t ep = atomic_load(&e->epoch);
  if (now_us(e) >= atomic_load(&e->lease_until_us)) return false;
  if (epoch) *epoch = ep;
  return true;
}

void mzk_elector_get_stats(mzk_elector *e, mzk_elector_stats *st) {
  pthread_mutex_lock(&e->mu);
  *st = e->st;
  pthread_mutex_unlock(&e->mu);
  st->active = mzk_elector_is_active(e, NULL);
}

void mzk_elector_close(mzk_elector *e) {
  if (e == NULL) return;
  pthread_mutex_lock(&e->mu);
  e->stop = true;
  pthread_cond_signal(&e->cond);
  pthread_mutex_unlock(&e->mu);
  if (e->thread_started) pthread_join(e->thread, NULL);
  step_down(e, "closed");
  if (e->zh) zookeeper_close(e->zh);
  pthread_mutex_destroy(&e->mu);
  pthread_mutex_destroy(&e->cb_mu);
  pthread_cond_destroy(&e->cond);
  free(e->hosts);
  free(e->chroot);
  free(e->p_master);
  free(e->p_cands);
  free(e->p_epoch);
  free(e->p_active);
  free(e->rpc);
  free(e);
}
