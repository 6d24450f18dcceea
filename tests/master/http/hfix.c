/* hfix: a master core filled through its real API (see hfix.h). */
#include "tests/master/http/hfix.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t hfix_now(hfix *f) {
  return __atomic_load_n(&f->now, __ATOMIC_RELAXED);
}

void hfix_advance(hfix *f, uint64_t us) {
  __atomic_fetch_add(&f->now, us, __ATOMIC_RELAXED);
}

uint64_t hfix_clock(void *ctx) { return hfix_now(ctx); }

mica_err *hfix_open(hfix *f, const char *dir, uint64_t lease_us,
                    uint64_t margin_us) {
  ms_options o;
  ms_options_init(&o);
  o.data_root = dir;
  o.lease_us = lease_us;
  o.lease_margin_us = margin_us;
  o.event_capacity = 128;
  o.merge_min_age_us = 0;
  return hfix_open_with(f, &o);
}

mica_err *hfix_open_with(hfix *f, const ms_options *o) {
  memset(f, 0, sizeof(*f));
  f->o = *o;
  f->now = env_now_micros(env_posix());
  return ms_open(&f->o, hfix_now(f), &f->m);
}

void hfix_close(hfix *f) {
  ms_close(f->m);
  f->m = NULL;
}

mica_err *hfix_register(hfix *f, const char *addr, int *slot) {
  if (f->n == HFIX_MAX_SERVERS)
    return err_new(MICA_RESOURCE_EXHAUSTED, "hfix: too many servers");
  ms_server_reply r;
  memset(&r, 0, sizeof(r));
  uint64_t inc = 7000 + (uint64_t)f->n;
  mica_err *err = ms_handle_register(f->m, addr, NULL, 0, inc, NULL, 0, hfix_now(f),
                                     &r);
  if (err) return err;
  f->ids[f->n] = r.server_id;
  f->inc[f->n] = inc;
  *slot = f->n++;
  ms_server_reply_free(&r);
  return NULL;
}

mica_err *hfix_settle(hfix *f, int rounds, size_t max_done) {
  for (int i = 0; i < rounds; i++) {
    ms_action_list l = {NULL, 0};
    mica_err *err = ms_tick(f->m, hfix_now(f), &l);
    size_t n = l.n;
    for (size_t k = 0; k < l.n && k < max_done && !err; k++)
      err = ms_action_done(f->m, l.v[k].id, MICA_OK, hfix_now(f));
    ms_action_list_free(&l);
    if (err) return err;
    if (n == 0) return NULL;
  }
  return NULL;
}

mica_err *hfix_heartbeat(hfix *f, int slot, hfix_stats_fn fn, void *ctx) {
  ms_tablet_list l = {NULL, 0};
  mica_err *err = ms_list_tablets(f->m, NULL, false, &l);
  if (err) return err;
  ms_report *rep = calloc(l.n + 1, sizeof(*rep));
  size_t n = 0;
  for (size_t i = 0; i < l.n; i++) {
    const ms_tablet *t = &l.v[i];
    if (t->server_id != f->ids[slot] || t->state != MS_SERVING) continue;
    rep[n].ref.tablet_id = t->tablet_id;
    rep[n].ref.range_epoch = t->range_epoch;
    rep[n].ref.assign_epoch = t->assign_epoch;
    if (fn) fn(t, &rep[n].stats, ctx);
    n++;
  }
  ms_server_reply r;
  memset(&r, 0, sizeof(r));
  err = ms_handle_heartbeat(f->m, f->ids[slot], f->inc[slot], rep, n,
                            hfix_now(f), &r);
  ms_server_reply_free(&r);
  free(rep);
  ms_tablet_list_free(&l);
  return err;
}

mica_err *hfix_split(hfix *f, uint64_t tablet_id, slice key) {
  ms_tablet t;
  mica_err *err = ms_get_tablet(f->m, tablet_id, &t);
  if (err) return err;
  ms_ref ref = {t.tablet_id, t.range_epoch, t.assign_epoch};
  ms_tablet_list out = {NULL, 0};
  err = ms_handle_split(f->m, t.server_id, ref, key, hfix_now(f), &out);
  ms_tablet_list_free(&out);
  ms_tablet_clear(&t);
  return err;
}

mica_err *hfix_tablets(hfix *f, const char *table, ms_tablet_list *out) {
  return ms_list_tablets(f->m, table, false, out);
}
