/* ts_drain: a tablet server's planned stop (ts_server_drain in ts.h).
 *
 * On SIGTERM, main.c calls ts_server_drain before ts_server_stop: the
 * server asks the master to mark it draining (DrainServer, naming itself
 * by the id it registered under) and keeps serving and heartbeating while
 * the master moves its tablets away a few at a time, each through the
 * usual close-here / open-there, so that a client of a moved tablet is
 * redirected at once (the close leaves a "moved to" note) rather than
 * waiting for this server's lease to expire, as it would after a plain
 * stop. It returns when the server serves no tablet, or when the time
 * given is over; either way the caller then stops as before. */
#include <inttypes.h>
#include <time.h>

#include "common/log.h"
#include "tabletserver/server/ts_int.h"
#include "tabletserver/server/ts_master.h"

/* Tablets still registered here, closing ones included: a tablet leaves
 * service (is_retired) when its close starts, but the master learns of
 * the move only from the close's answer, so a drain that stopped the
 * server then (a close lasts hundreds of ms on S3) left the tablet to the
 * lease. Then admin_mu, which the close handler holds until it answers,
 * so the last answer is on its way before the server stops. */
static size_t serving_count(ts_server *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->ntabs;
  pthread_mutex_unlock(&s->mu);
  if (n == 0) {
    pthread_mutex_lock(&s->admin_mu);
    pthread_mutex_unlock(&s->admin_mu);
  }
  return n;
}

mica_err *ts_server_drain(ts_server *s, uint64_t timeout_ms) {
  if (s == NULL || s->master_ch == NULL) return NULL;
  uint64_t start = env_now_micros(s->e);
  uint64_t id = atomic_load(&s->server_id);
  if (id == 0)
    return err_new(MICA_UNAVAILABLE, "not registered with a master: nothing "
                   "to drain through");
  if (serving_count(s) == 0) return NULL;
  rpc_drain_server_request req = {.server_id = id};
  void *resp = NULL;
  int64_t call_ms = timeout_ms < 5000 ? (int64_t)timeout_ms : 5000;
  mica_err *e = ts_master_unary(s, &rpc_m_master_drain_server, &req,
                                call_ms > 0 ? call_ms : 1, &resp);
  rpc_msg_free(resp);
  if (e != NULL) return err_wrap(e, "asking to be drained");
  LOG_I("draining: %zu tablets to move away (at most %" PRIu64 " ms)",
        serving_count(s), timeout_ms);
  for (;;) {
    size_t left = serving_count(s);
    uint64_t el = (env_now_micros(s->e) - start) / 1000;
    if (left == 0) {
      LOG_I("drained in %" PRIu64 " ms", el);
      return NULL;
    }
    if (el >= timeout_ms)
      return err_new(MICA_DEADLINE_EXCEEDED, "still serving %zu tablets "
                     "after %" PRIu64 " ms of draining", left, el);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}
