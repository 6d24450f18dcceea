/* sim: a simulated cluster around the master state (see sim.h). */
#include "tests/master/sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_init(sim *c, env *e) {
  memset(c, 0, sizeof(*c));
  ms_options_init(&c->o);
  if (e) c->o.env = e;
  c->o.data_root = tu_tmpdir();
  c->o.event_capacity = 64;
  c->now = 1000 * SIM_SEC;
  c->net_delay = 200 * 1000;
  TU_OK(ms_open(&c->o, c->now, &c->m));
}

void sim_free(sim *c) {
  ms_close(c->m);
  c->m = NULL;
}

void sim_restart(sim *c) {
  buf before = BUF_INIT, after = BUF_INIT;
  ms_dump_durable(c->m, &before);
  ms_close(c->m);
  c->m = NULL;
  TU_OK(ms_open(&c->o, c->now, &c->m));
  ms_dump_durable(c->m, &after);
  CU_ASSERT_EQUAL(before.len, after.len);
  CU_ASSERT(slice_eq(buf_slice(&before), buf_slice(&after)));
  TU_OK(ms_check_invariants(c->m));
  buf_free(&before);
  buf_free(&after);
}

int sim_find(sim *c, uint64_t server_id) {
  for (int i = 0; i < c->ns; i++)
    if (c->s[i].exists && c->s[i].id == server_id) return i;
  return -1;
}

static void drop_served(sim_srv *s, uint64_t tablet_id) {
  for (int k = 0; k < s->n; k++)
    if (s->served[k].ref.tablet_id == tablet_id) {
      s->served[k] = s->served[--s->n];
      return;
    }
}

static void apply_reply(sim *c, sim_srv *s, const ms_server_reply *r) {
  s->id = r->server_id;
  CU_ASSERT_EQUAL(r->lease_ms * 1000, c->o.lease_us);
  for (size_t k = 0; k < r->n_close; k++)
    for (int j = 0; j < s->n; j++)
      if (s->served[j].ref.tablet_id == r->close[k].tablet_id &&
          s->served[j].ref.assign_epoch == r->close[k].assign_epoch) {
        s->served[j] = s->served[--s->n];
        break;
      }
}

static mica_err *do_register(sim *c, int i, bool prev) {
  sim_srv *s = &c->s[i];
  ms_report rep[SIM_MAX_SERVED];
  size_t nrep = 0;
  for (int k = 0; k < s->n; k++) {
    if (s->served[k].hidden) continue;
    rep[nrep].ref = s->served[k].ref;
    rep[nrep].stats = s->served[k].stats;
    nrep++;
  }
  ms_server_reply r;
  uint64_t sent = c->now - c->net_delay;
  /* The RPC address stands in for the HTTP one: logged and replayed. */
  mica_err *err = ms_handle_register(c->m, s->addr, s->addr,
                                     prev ? s->id : 0, s->inc, rep,
                                     prev ? nrep : 0, c->now, &r);
  if (err) return err;
  if (!prev) s->n = 0;
  apply_reply(c, s, &r);
  s->lease_until = sent + r.lease_ms * 1000;
  s->up = true;
  ms_server_reply_free(&r);
  return NULL;
}

void sim_start_server(sim *c, int i) {
  sim_srv *s = &c->s[i];
  if (i >= c->ns) c->ns = i + 1;
  s->exists = true;
  s->inc = tu_rand() | 1;
  s->n = 0;
  snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", 7000 + i);
  TU_OK(do_register(c, i, false));
}

void sim_reregister(sim *c, int i) { TU_OK(do_register(c, i, true)); }

int sim_heartbeat(sim *c, int i) {
  sim_srv *s = &c->s[i];
  ms_report rep[SIM_MAX_SERVED];
  size_t nrep = 0;
  for (int k = 0; k < s->n; k++) {
    if (s->served[k].hidden) continue;
    rep[nrep].ref = s->served[k].ref;
    rep[nrep].stats = s->served[k].stats;
    nrep++;
  }
  ms_server_reply r;
  uint64_t sent = c->now - c->net_delay;
  mica_err *err = ms_handle_heartbeat(c->m, s->id, s->inc, rep, nrep, c->now,
                                      &r);
  int code = err_take_code(err);
  if (code == MICA_OK) {
    apply_reply(c, s, &r);
    s->lease_until = sent + r.lease_ms * 1000;
    ms_server_reply_free(&r);
  } else if (code == MICA_LEASE_EXPIRED || code == MICA_NOT_FOUND) {
    /* The fencing rule of a real server: stop, forget, start afresh. */
    s->n = 0;
    s->lease_until = 0;
    s->inc = tu_rand() | 1;
    TU_OK(do_register(c, i, false));
  }
  return code;
}

void sim_perform(sim *c, ms_action_list *l) {
  TU_OK(sim_perform_err(c, l, tu_rand_below(2)));
}

mica_err *sim_perform_err(sim *c, ms_action_list *l, bool batched) {
  uint64_t *ids = xcalloc(l->n + 1, sizeof(*ids));
  int *codes = xcalloc(l->n + 1, sizeof(*codes));
  for (size_t k = 0; k < l->n; k++) {
    ms_action *a = &l->v[k];
    int code = MICA_OK;
    if (a->type == MS_ACT_DELETE_TABLE) {
      c->deletes++;
    } else {
      int i = sim_find(c, a->server_id);
      CU_ASSERT_FATAL(i >= 0);
      sim_srv *s = &c->s[i];
      CU_ASSERT_STRING_EQUAL(a->address, s->addr);
      if (!s->up) {
        code = MICA_UNAVAILABLE;
      } else if (a->type == MS_ACT_OPEN) {
        code = s->open_err;
        if (code == MICA_OK) {
          drop_served(s, a->tablet.tablet_id);
          CU_ASSERT_FATAL(s->n < SIM_MAX_SERVED);
          sim_served *x = &s->served[s->n++];
          memset(x, 0, sizeof(*x));
          x->ref.tablet_id = a->tablet.tablet_id;
          x->ref.range_epoch = a->tablet.range_epoch;
          x->ref.assign_epoch = a->tablet.assign_epoch;
          c->opens++;
          c->last_open_n_sources = a->n_sources;
          memcpy(c->last_open_sources, a->sources, sizeof(a->sources));
        }
      } else {
        code = s->close_err;
        if (code == MICA_OK) {
          drop_served(s, a->tablet.tablet_id);
          c->closes++;
        }
      }
    }
    ids[k] = a->id;
    codes[k] = code;
  }
  mica_err *err = NULL;
  if (batched) {
    err = ms_actions_done(c->m, ids, codes, l->n, c->now);
  } else {
    for (size_t k = 0; k < l->n && !err; k++)
      err = ms_action_done(c->m, ids[k], codes[k], c->now);
  }
  free(ids);
  free(codes);
  return err;
}

int sim_settle(sim *c, int rounds) {
  int total = 0;
  for (int r = 0; r < rounds; r++) {
    ms_action_list l = {0};
    TU_OK(ms_tick(c->m, c->now, &l));
    size_t n = l.n;
    sim_perform(c, &l);
    ms_action_list_free(&l);
    total += (int)n;
    if (n == 0) break;
  }
  return total;
}

void sim_advance(sim *c, uint64_t us) {
  uint64_t end = c->now + us;
  while (c->now < end) {
    uint64_t step = end - c->now < SIM_SEC ? end - c->now : SIM_SEC;
    c->now += step;
    for (int i = 0; i < c->ns; i++)
      if (c->s[i].exists && c->s[i].up) sim_heartbeat(c, i);
    sim_settle(c, 8);
    sim_check_fencing(c);
  }
}

int sim_count_on(sim *c, uint64_t server_id) {
  ms_tablet_list l = {0};
  TU_OK(ms_list_tablets(c->m, NULL, false, &l));
  int n = 0;
  for (size_t i = 0; i < l.n; i++)
    n += l.v[i].state == MS_SERVING && l.v[i].server_id == server_id;
  ms_tablet_list_free(&l);
  return n;
}

void sim_set_stats(sim *c, int i, uint64_t bytes, double rate) {
  for (int k = 0; k < c->s[i].n; k++) {
    c->s[i].served[k].stats.bytes = bytes;
    c->s[i].served[k].stats.read_rate = rate;
    c->s[i].served[k].stats.write_rate = 0;
  }
}

void sim_check_fencing(sim *c) {
  for (int i = 0; i < c->ns; i++) {
    sim_srv *a = &c->s[i];
    if (!a->exists || c->now >= a->lease_until) continue;
    for (int j = i + 1; j < c->ns; j++) {
      sim_srv *b = &c->s[j];
      if (!b->exists || c->now >= b->lease_until) continue;
      for (int x = 0; x < a->n; x++)
        for (int y = 0; y < b->n; y++)
          if (a->served[x].ref.tablet_id == b->served[y].ref.tablet_id) {
            fprintf(stderr, "tablet %" PRIu64 " held by servers %" PRIu64
                    " and %" PRIu64 " with current leases\n",
                    a->served[x].ref.tablet_id, a->id, b->id);
            CU_FAIL("two servers may acknowledge one tablet");
          }
    }
  }
}

void sim_check(sim *c) {
  TU_OK(ms_check_invariants(c->m));
  /* The external view: lookups walk each table's whole key space. */
  ms_table_info *t;
  size_t n;
  TU_OK(ms_list_tables(c->m, &t, &n));
  for (size_t i = 0; i < n; i++) {
    ms_tablet_list l = {0};
    TU_OK(ms_lookup(c->m, t[i].name, slice_make(NULL, 0), 1000, &l));
    CU_ASSERT_EQUAL(l.n, t[i].tablet_count);
    CU_ASSERT(l.n > 0 && l.v[0].start_key.len == 0);
    CU_ASSERT(l.n > 0 && l.v[l.n - 1].end_key.len == 0);
    for (size_t k = 1; k < l.n; k++)
      CU_ASSERT(slice_eq(buf_slice(&l.v[k - 1].end_key),
                         buf_slice(&l.v[k].start_key)));
    for (size_t k = 0; k < l.n; k++)
      if (l.v[k].has_location) {
        CU_ASSERT_EQUAL(l.v[k].state, MS_SERVING);
        CU_ASSERT(l.v[k].server_id != 0);
      }
    ms_tablet_list_free(&l);
  }
  ms_table_infos_free(t, n);
}

void sim_split_at(sim *c, const char *table, const char *key,
                  uint64_t *left, uint64_t *right) {
  ms_tablet_list l = {0};
  TU_OK(ms_lookup(c->m, table, slice_from_str(key), 1, &l));
  CU_ASSERT_FATAL(l.n == 1);
  ms_tablet *p = &l.v[0];
  ms_ref ref = {p->tablet_id, p->range_epoch, p->assign_epoch};
  ms_tablet_list d = {0};
  TU_OK(ms_handle_split(c->m, p->server_id, ref, slice_from_str(key), c->now,
                        &d));
  int si = sim_find(c, p->server_id);
  CU_ASSERT_FATAL(si >= 0);
  sim_srv *s = &c->s[si];
  for (int k = 0; k < s->n; k++)
    if (s->served[k].ref.tablet_id == ref.tablet_id)
      s->served[k] = s->served[--s->n];
  for (size_t i = 0; i < 2; i++) {
    sim_served *x = &s->served[s->n++];
    memset(x, 0, sizeof(*x));
    x->ref = (ms_ref){d.v[i].tablet_id, d.v[i].range_epoch,
                      d.v[i].assign_epoch};
  }
  if (left) *left = d.v[0].tablet_id;
  if (right) *right = d.v[1].tablet_id;
  ms_tablet_list_free(&d);
  ms_tablet_list_free(&l);
}

size_t sim_count_events(sim *c, const char *kind, const char *text) {
  ms_event *ev;
  size_t n, found = 0;
  ms_events(c->m, 0, &ev, &n);
  for (size_t i = 0; i < n; i++)
    found += strcmp(ev[i].kind, kind) == 0 &&
             (text == NULL || strstr(ev[i].text, text) != NULL);
  free(ev);
  return found;
}
