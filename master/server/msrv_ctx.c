/* msrv_ctx: what the handlers (mserver.c) and the action loop (maction.c)
 * of the master process share: its clock, the kick and progress signals,
 * what each server can do, the channels to tablet servers, and the view of
 * the core's tablet records as routes. Both files call into this one; it
 * calls neither (msrv_int.h states the order). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "master/server/msrv_int.h"

uint64_t msrv_now(const msrv *s) { return env_now_micros(s->opt.core.env); }

void msrv_kick(msrv *s) {
  pthread_mutex_lock(&s->mu);
  s->kicked = true;
  pthread_cond_broadcast(&s->kick_cv);
  pthread_mutex_unlock(&s->mu);
}

void msrv_progress(msrv *s) {
  pthread_mutex_lock(&s->mu);
  s->progress++;
  pthread_cond_broadcast(&s->progress_cv);
  pthread_mutex_unlock(&s->mu);
}

struct timespec msrv_abstime(const msrv *s, uint64_t micros) {
  /* Condition variables time out on the wall clock; the env supplies it. */
  uint64_t t = env_wall_micros(s->opt.core.env) + micros;
  struct timespec ts = {(time_t)(t / 1000000), (long)(t % 1000000) * 1000};
  return ts;
}

void msrv_note_fenced(msrv *s, const mica_err *err) {
  if (err == NULL || err_code(err) != MICA_STALE_MASTER) return;
  pthread_mutex_lock(&s->mu);
  bool first = !s->deposed;
  s->deposed = true;
  pthread_mutex_unlock(&s->mu);
  if (first)
    LOG_E("deposed: a tablet server refused a command of master epoch "
          "%" PRIu64 ": %s", s->opt.master_epoch, err_msg(err));
}

bool msrv_deposed(msrv *s) {
  pthread_mutex_lock(&s->mu);
  bool d = s->deposed;
  pthread_mutex_unlock(&s->mu);
  return d;
}

void msrv_set_caps(msrv *s, uint64_t id, bool can_merge) {
  pthread_mutex_lock(&s->mu);
  size_t i = 0;
  while (i < s->n_caps && s->caps[i].id != id) i++;
  if (i == s->n_caps) {
    s->caps = xrealloc(s->caps, (s->n_caps + 1) * sizeof(*s->caps));
    s->caps[s->n_caps++].id = id;
  }
  s->caps[i].can_merge = can_merge;
  pthread_mutex_unlock(&s->mu);
}

mica_err *msrv_merge_blocker(msrv *s) {
  ms_server_info *v = NULL;
  size_t n = 0;
  mica_err *err = ms_list_servers(s->core, false, msrv_now(s), &v, &n);
  if (err == NULL && n == 0)
    err = err_new(MICA_NOT_SUPPORTED, "no live tablet server to merge on");
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < n && err == NULL; i++) {
    bool can = false;
    for (size_t k = 0; k < s->n_caps; k++)
      if (s->caps[k].id == v[i].server_id) can = s->caps[k].can_merge;
    if (!can)
      err = err_new(MICA_NOT_SUPPORTED, "tablet server %" PRIu64 " (%s) "
                    "cannot open merged tablets (it did not report "
                    "can_merge): merges are unavailable", v[i].server_id,
                    v[i].address);
  }
  pthread_mutex_unlock(&s->mu);
  ms_server_infos_free(v, n);
  return err;
}

mica_err *msrv_channel(msrv *s, const char *address, rpc_channel **out) {
  pthread_mutex_lock(&s->ch_mu);
  for (size_t i = 0; i < s->n_chans; i++)
    if (strcmp(rpc_channel_address(s->chans[i]), address) == 0) {
      *out = s->chans[i];
      pthread_mutex_unlock(&s->ch_mu);
      return NULL;
    }
  rpc_channel *ch;
  rpc_channel_opts co = {.member = &s->secret};
  if (s->opt.tls.ca_file != NULL) co.tls = &s->opt.tls;
  mica_err *err = rpc_channel_new(address, &co, &ch);
  if (err == NULL) {
    s->chans = xrealloc(s->chans, (s->n_chans + 1) * sizeof(*s->chans));
    s->chans[s->n_chans++] = ch;
    *out = ch;
  }
  pthread_mutex_unlock(&s->ch_mu);
  return err;
}

rpc_route msrv_route_view(const ms_tablet *t) {
  rpc_route v;
  memset(&v, 0, sizeof v);
  v.tablet_id = t->tablet_id;
  v.table_id = t->table_id;
  v.table_name = t->table_name;
  v.start_key = t->start_key;
  v.end_key = t->end_key;
  v.range_epoch = t->range_epoch;
  v.server_id = t->server_id;
  v.assign_epoch = t->assign_epoch;
  v.address = t->address;
  return v;
}
