/* Tests of the load-aware balancer, its modes, approved plans and draining
 * (master/ms_balance.c), on the simulated cluster of sim.h: the master
 * state runs for real, the servers are structs, time is a number. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/layout.h"
#include "common/log.h"
#include "master/metalog.h"
#include "tests/master/sim.h"

#define MAX_TAB 256
#define S(str) slice_from_str(str)

/* Each served tablet's load, by tablet id, reported in every heartbeat. */
static double g_rate[MAX_TAB];

static void put_rates(sim *c) {
  for (int i = 0; i < c->ns; i++)
    for (int k = 0; k < c->s[i].n; k++) {
      uint64_t id = c->s[i].served[k].ref.tablet_id;
      c->s[i].served[k].stats.read_rate = id < MAX_TAB ? g_rate[id] : 0;
      c->s[i].served[k].stats.write_rate = 0;
    }
}

/* Advances `secs` seconds with the rates above reported. */
static void run(sim *c, int secs) {
  for (int i = 0; i < secs; i++) {
    put_rates(c);
    sim_advance(c, SIM_SEC);
  }
}

/* The load of every server by the master's map, and the busiest / mean
 * ratio over the servers that are not draining. */
static double server_load(sim *c, uint64_t server) {
  ms_tablet_list l = {0};
  TU_OK(ms_list_tablets(c->m, NULL, false, &l));
  double r = 0;
  for (size_t i = 0; i < l.n; i++)
    if (l.v[i].server_id == server && l.v[i].tablet_id < MAX_TAB)
      r += g_rate[l.v[i].tablet_id];
  ms_tablet_list_free(&l);
  return r;
}

static double busiest_over_mean(sim *c) {
  double max = 0, sum = 0;
  for (int i = 0; i < c->ns; i++) {
    double r = server_load(c, c->s[i].id);
    sum += r;
    if (r > max) max = r;
  }
  return sum > 0 ? max / (sum / c->ns) : 1;
}

/* Three servers, table "t" of `tablets` tablets spread evenly. */
static void three_servers(sim *c, int tablets) {
  sim_init(c, NULL);
  c->o.balance_settle_us = 2 * SIM_SEC;
  c->o.balance_window_us = 30 * SIM_SEC;
  c->o.event_capacity = 256;
  sim_restart(c); /* takes the options */
  bool off = false;
  TU_OK(ms_configure(c->m, NULL, &off, NULL, NULL));
  for (int i = 0; i < 3; i++) sim_start_server(c, i);
  slice keys[64];
  char kb[64][16];
  for (int i = 0; i + 1 < tablets; i++) {
    snprintf(kb[i], sizeof(kb[i]), "k%02d", i);
    keys[i] = slice_from_str(kb[i]);
  }
  TU_OK(ms_create_table(c->m, "t", keys, (size_t)tablets - 1, c->now, NULL));
  sim_settle(c, 10);
  memset(g_rate, 0, sizeof(g_rate));
}

static uint64_t on_server(sim *c, int i, int k) {
  return c->s[i].served[k].ref.tablet_id;
}

/* A skewed load spreads by load, within 1.25x of the mean, no tablet
 * moving twice; then the balancer stays put. */
static void test_load_spread(void) {
  sim c;
  three_servers(&c, 12);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(sim_count_on(&c, c.s[i].id), 4);
  /* 800 / 400 / 0 ops/s in tablets of 200. */
  for (int k = 0; k < 4; k++) g_rate[on_server(&c, 0, k)] = 200;
  for (int k = 0; k < 2; k++) g_rate[on_server(&c, 1, k)] = 200;
  CU_ASSERT(busiest_over_mean(&c) > 1.9);
  run(&c, 20);
  CU_ASSERT(busiest_over_mean(&c) <= 1.25);
  size_t moves = sim_count_events(&c, "move", "ops/s");
  CU_ASSERT(moves >= 2 && moves <= 3);
  /* Settled: no more load moves, and the plan is empty. */
  run(&c, 20);
  CU_ASSERT_EQUAL(sim_count_events(&c, "move", "ops/s"), moves);
  ms_move *plan;
  size_t n;
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  CU_ASSERT_EQUAL(n, 0);
  free(plan);
  sim_check(&c);
  sim_free(&c);
}

static size_t load_moves_planned(sim *c, uint64_t from) {
  ms_move *plan;
  size_t n, k = 0;
  TU_OK(ms_balance(c->m, true, c->now, &plan, &n));
  for (size_t i = 0; i < n; i++)
    k += strstr(plan[i].reason, "ops/s") != NULL &&
         plan[i].from_server_id == from;
  free(plan);
  return k;
}

/* The band: 1.15x the mean is left alone, 1.3x is spread. */
static void test_band(void) {
  sim c;
  three_servers(&c, 12);
  int off_mode = MS_BAL_OFF;
  TU_OK(ms_set_balancer_mode(c.m, &off_mode, NULL));
  double per[3] = {115, 100, 85}; /* 460 / 400 / 340 ops/s */
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 4; k++) g_rate[on_server(&c, i, k)] = per[i];
  run(&c, 2);
  CU_ASSERT_EQUAL(load_moves_planned(&c, c.s[0].id), 0);
  for (int k = 0; k < 4; k++) g_rate[on_server(&c, 0, k)] = 130; /* 520 */
  run(&c, 2);
  CU_ASSERT(load_moves_planned(&c, c.s[0].id) >= 1);
  sim_check(&c);
  sim_free(&c);
}

/* A tablet the balancer moved is not moved again within the window, even
 * when it is then the one tablet whose move would even the load. */
static void test_window(void) {
  sim c;
  three_servers(&c, 4); /* 2 / 1 / 1 tablets */
  int a = -1;
  for (int i = 0; i < 3; i++)
    if (c.s[i].n == 2) a = i;
  CU_ASSERT_FATAL(a >= 0);
  /* A: X 100 + Y 200 ops/s; the others 150 each. Only X is below the gap
   * (150), so X moves. */
  uint64_t x = on_server(&c, a, 0), y = on_server(&c, a, 1);
  g_rate[x] = 100;
  g_rate[y] = 200;
  for (int i = 0; i < 3; i++)
    if (i != a) g_rate[on_server(&c, i, 0)] = 150;
  run(&c, 5);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, x, &t));
  int b = sim_find(&c, t.server_id);
  ms_tablet_clear(&t);
  CU_ASSERT_FATAL(b >= 0 && b != a);
  /* Now X's new server is the hot one and X again the only tablet below
   * the gap: B = W 200 + X 100, A = Y 150, the third 150. */
  uint64_t w = 0;
  for (int k = 0; k < c.s[b].n; k++)
    if (on_server(&c, b, k) != x) w = on_server(&c, b, k);
  g_rate[w] = 200;
  g_rate[y] = 150;
  run(&c, 15); /* within the 30 s window */
  TU_OK(ms_get_tablet(c.m, x, &t));
  CU_ASSERT_EQUAL(t.server_id, c.s[b].id);
  ms_tablet_clear(&t);
  sim_check(&c);
  sim_free(&c);
}

/* One hot tablet cannot be spread by moves; once split, its daughters are
 * parted because that lowers the maximum. */
static void test_split_daughters(void) {
  sim c;
  three_servers(&c, 3);
  uint64_t hot = on_server(&c, 0, 0);
  g_rate[hot] = 600;
  run(&c, 10);
  CU_ASSERT_EQUAL(sim_count_events(&c, "move", NULL), 0);
  ms_tablet p;
  TU_OK(ms_get_tablet(c.m, hot, &p));
  ms_ref ref = {p.tablet_id, p.range_epoch, p.assign_epoch};
  ms_tablet_list d = {0};
  buf mid = BUF_INIT; /* just above its start: strictly inside */
  buf_append_slice(&mid, buf_slice(&p.start_key));
  buf_push(&mid, 1);
  TU_OK(ms_handle_split(c.m, c.s[0].id, ref, buf_slice(&mid), c.now, &d));
  buf_free(&mid);
  CU_ASSERT_EQUAL_FATAL(d.n, 2);
  c.s[0].n = 0;
  for (int i = 0; i < 2; i++) {
    c.s[0].served[c.s[0].n++].ref =
        (ms_ref){d.v[i].tablet_id, d.v[i].range_epoch, d.v[i].assign_epoch};
    g_rate[d.v[i].tablet_id] = 300;
  }
  run(&c, 5);
  CU_ASSERT_EQUAL(sim_count_events(&c, "move", "daughters of split tablet"), 1);
  ms_tablet a, b;
  TU_OK(ms_get_tablet(c.m, d.v[0].tablet_id, &a));
  TU_OK(ms_get_tablet(c.m, d.v[1].tablet_id, &b));
  CU_ASSERT_NOT_EQUAL(a.server_id, b.server_id);
  CU_ASSERT(busiest_over_mean(&c) <= 1.6);
  ms_tablet_clear(&a);
  ms_tablet_clear(&b);
  ms_tablet_clear(&p);
  ms_tablet_list_free(&d);
  sim_check(&c);
  sim_free(&c);
}

/* Daughters of a load split report 0 ops/s at first (their server's
 * average starts from 0): the balancer counts each at half the parent's
 * rate and parts them at once, instead of seeing an idle server. Without
 * ms_note_load_split (a size split) they stay together until their rates
 * show. */
static void daughters_of_new_split(bool for_load) {
  sim c;
  three_servers(&c, 3);
  uint64_t hot = on_server(&c, 0, 0);
  g_rate[hot] = 600;
  run(&c, 10);
  ms_tablet p;
  TU_OK(ms_get_tablet(c.m, hot, &p));
  ms_ref ref = {p.tablet_id, p.range_epoch, p.assign_epoch};
  ms_tablet_list d = {0};
  buf mid = BUF_INIT;
  buf_append_slice(&mid, buf_slice(&p.start_key));
  buf_push(&mid, 1);
  TU_OK(ms_handle_split(c.m, c.s[0].id, ref, buf_slice(&mid), c.now, &d));
  buf_free(&mid);
  CU_ASSERT_EQUAL_FATAL(d.n, 2);
  if (for_load)
    ms_note_load_split(c.m, d.v[0].tablet_id, d.v[1].tablet_id, c.now);
  c.s[0].n = 0;
  for (int i = 0; i < 2; i++)
    c.s[0].served[c.s[0].n++].ref =
        (ms_ref){d.v[i].tablet_id, d.v[i].range_epoch, d.v[i].assign_epoch};
  run(&c, 2); /* g_rate of the daughters: 0 */
  CU_ASSERT_EQUAL(sim_count_events(&c, "move", "daughters of split tablet"),
                  for_load ? 1 : 0);
  ms_tablet a, b;
  TU_OK(ms_get_tablet(c.m, d.v[0].tablet_id, &a));
  TU_OK(ms_get_tablet(c.m, d.v[1].tablet_id, &b));
  CU_ASSERT_EQUAL(a.server_id != b.server_id, for_load);
  ms_tablet_clear(&a);
  ms_tablet_clear(&b);
  ms_tablet_clear(&p);
  ms_tablet_list_free(&d);
  sim_check(&c);
  sim_free(&c);
}

static void test_load_split_daughters_at_once(void) {
  daughters_of_new_split(true);
  daughters_of_new_split(false);
}

/* No move ever targets a draining or a hot server. */
static void test_targets(void) {
  sim c;
  three_servers(&c, 12);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, NULL, NULL, NULL));
  /* Server 2 draining, server 0 hot: every move goes to server 1. */
  for (int k = 0; k < 4; k++) g_rate[on_server(&c, 0, k)] = 200;
  run(&c, 2);
  TU_OK(ms_drain(c.m, c.s[2].id, true, c.now, NULL));
  ms_move *plan;
  size_t n;
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  CU_ASSERT(n >= 4);
  size_t from2 = 0;
  for (size_t i = 0; i < n; i++) {
    /* The drain and load moves first, to the one server that takes
     * tablets; later count moves may go to server 0, no longer hot. */
    if (i < 5) CU_ASSERT_EQUAL(plan[i].to_server_id, c.s[1].id);
    CU_ASSERT_NOT_EQUAL(plan[i].to_server_id, c.s[2].id);
    CU_ASSERT(plan[i].range_epoch > 0 && plan[i].assign_epoch > 0);
    from2 += plan[i].from_server_id == c.s[2].id;
  }
  CU_ASSERT_EQUAL(from2, 4);
  free(plan);
  /* An operator move to a draining server is refused. */
  ms_move mv;
  TU_ERR(ms_request_move(c.m, on_server(&c, 0, 0), c.s[2].id, c.now, &mv),
         MICA_UNAVAILABLE);
  /* Count skew towards a hot server: 8 / 4 / 0 tablets, server 1 hot
   * (4 x 300 ops/s). The count rule goes to server 2, the load rule too:
   * nothing may target server 1. */
  TU_OK(ms_drain(c.m, c.s[2].id, false, c.now, NULL));
  memset(g_rate, 0, sizeof(g_rate));
  for (int k = 0; k < c.s[1].n; k++) g_rate[on_server(&c, 1, k)] = 300;
  while (c.s[2].n > 0) {
    ms_move x;
    TU_OK(ms_request_move(c.m, on_server(&c, 2, 0), c.s[0].id, c.now, &x));
    sim_settle(&c, 10);
  }
  run(&c, 2);
  CU_ASSERT_EQUAL(sim_count_on(&c, c.s[0].id), 8);
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  CU_ASSERT(n >= 2);
  for (size_t i = 0; i < n; i++)
    CU_ASSERT_NOT_EQUAL(plan[i].to_server_id, c.s[1].id);
  free(plan);
  sim_check(&c);
  sim_free(&c);
}

/* Drain: tablets leave a few at a time whatever the mode; the mark
 * survives a restart; nothing new lands there; undrain reverses it. */
static void test_drain(void) {
  sim c;
  three_servers(&c, 12);
  int off_mode = MS_BAL_OFF;
  TU_OK(ms_set_balancer_mode(c.m, &off_mode, NULL));
  TU_ERR(ms_drain(c.m, 999, true, c.now, NULL), MICA_NOT_FOUND);
  ms_server_info *si;
  TU_OK(ms_drain(c.m, c.s[0].id, true, c.now, &si));
  CU_ASSERT(si->draining);
  CU_ASSERT_EQUAL(si->tablet_count, 4);
  ms_server_infos_free(si, 1);
  /* The last server that is not draining cannot drain. */
  TU_OK(ms_drain(c.m, c.s[1].id, true, c.now, NULL));
  TU_ERR(ms_drain(c.m, c.s[2].id, true, c.now, NULL),
         MICA_RESOURCE_EXHAUSTED);
  TU_OK(ms_drain(c.m, c.s[1].id, false, c.now, NULL));
  /* One tick starts at most max_moves_in_flight moves. */
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, c.o.max_moves_in_flight);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  sim_restart(&c);
  ms_server_info *v;
  size_t n;
  TU_OK(ms_list_servers(c.m, false, c.now, &v, &n));
  CU_ASSERT_FATAL(n == 3);
  CU_ASSERT(v[0].draining && !v[1].draining && !v[2].draining);
  ms_server_infos_free(v, n);
  for (int i = 0; i < 3; i++) sim_reregister(&c, i);
  run(&c, 20);
  CU_ASSERT_EQUAL(sim_count_on(&c, c.s[0].id), 0);
  CU_ASSERT_EQUAL(sim_count_on(&c, c.s[1].id) + sim_count_on(&c, c.s[2].id),
                  12);
  CU_ASSERT_EQUAL(sim_count_events(&c, "drain", "drained"), 1);
  /* A new table places nothing on it. */
  TU_OK(ms_create_table(c.m, "u", NULL, 0, c.now, NULL));
  run(&c, 3);
  CU_ASSERT_EQUAL(sim_count_on(&c, c.s[0].id), 0);
  /* Undrained, with the balancer on: it takes tablets again. */
  TU_OK(ms_drain(c.m, c.s[0].id, false, c.now, NULL));
  int auto_mode = MS_BAL_AUTO;
  TU_OK(ms_set_balancer_mode(c.m, &auto_mode, NULL));
  run(&c, 20);
  CU_ASSERT(sim_count_on(&c, c.s[0].id) >= 3);
  sim_check(&c);
  sim_free(&c);
}

/* A master whose balancer and merges are off (only what a test asks
 * for moves), with server 0 started. */
static void manual_master(sim *c) {
  sim_init(c, NULL);
  int off_mode = MS_BAL_OFF;
  bool off = false;
  TU_OK(ms_set_balancer_mode(c->m, &off_mode, NULL));
  TU_OK(ms_configure(c->m, NULL, &off, NULL, NULL));
  sim_start_server(c, 0);
}

/* A tablet closing for a move counts on its destination (where it is
 * about to be), not on its old server nor nowhere: with two tablets on
 * server 0 and one of them on its way to the empty server 1, the servers
 * count one each, so a new table's tablet goes to the lower id, server 0
 * (ms_tab_counts_on). */
static void test_move_counts_on_destination(void) {
  sim c;
  manual_master(&c);
  slice split = S("m");
  TU_OK(ms_create_table(c.m, "t", &split, 1, c.now, NULL));
  sim_settle(&c, 10);
  sim_start_server(&c, 1);
  CU_ASSERT_FATAL(c.s[0].n == 2 && c.s[0].id < c.s[1].id);
  ms_move mv;
  TU_OK(ms_request_move(c.m, on_server(&c, 0, 0), c.s[1].id, c.now, &mv));
  TU_OK(ms_create_table(c.m, "u", NULL, 0, c.now, NULL));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a)); /* assigns u's tablet; the close waits */
  ms_action_list_free(&a);
  ms_tablet_list l = {0};
  TU_OK(ms_list_tablets(c.m, "u", false, &l));
  CU_ASSERT_FATAL(l.n == 1);
  CU_ASSERT_EQUAL(l.v[0].server_id, c.s[0].id);
  ms_tablet_list_free(&l);
  sim_settle(&c, 10);
  sim_check(&c);
  sim_free(&c);
}

/* Tablets of `plan` in transition (closing, opening, waiting to open). */
static size_t moving_of(sim *c, const ms_move *plan, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    ms_tablet t;
    if (ms_get_tablet(c->m, plan[i].tablet_id, &t) != NULL) continue;
    k += t.state == MS_CLOSING || t.state == MS_OPENING ||
         t.state == MS_UNASSIGNED;
    ms_tablet_clear(&t);
  }
  return k;
}

/* An approved plan of more moves than max_moves_in_flight starts that many
 * at once and the rest as those finish, never more in flight; a waiting
 * move that no longer holds at its turn (its tablet split) is dropped with
 * an event, and the others still go. */
static void test_apply_paced(void) {
  sim c;
  manual_master(&c);
  slice keys[9] = {S("a"), S("b"), S("c"), S("d"), S("e"),
                   S("f"), S("g"), S("h"), S("i")};
  TU_OK(ms_create_table(c.m, "t", keys, 9, c.now, NULL));
  sim_settle(&c, 5);
  sim_start_server(&c, 1);
  sim_start_server(&c, 2);
  sim_advance(&c, SIM_SEC);
  ms_move *plan, *stale;
  size_t n, ns;
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  CU_ASSERT_FATAL(n >= 4); /* 10 tablets from one server onto three */
  TU_OK(ms_apply_plan(c.m, plan, n, c.now, &stale, &ns));
  free(stale);
  CU_ASSERT_EQUAL(moving_of(&c, plan, n), 2); /* --max-moves' default */
  /* The same moves again: each is in flight or waits already. */
  TU_ERR(ms_apply_plan(c.m, plan, n, c.now, &stale, &ns), MICA_STALE_EPOCH);
  CU_ASSERT_EQUAL(ns, n);
  CU_ASSERT_PTR_NOT_NULL(strstr(stale[n - 1].reason, "approved plan already"));
  free(stale);

  /* The last move's tablet splits while it waits. */
  ms_tablet p;
  TU_OK(ms_get_tablet(c.m, plan[n - 1].tablet_id, &p));
  CU_ASSERT_EQUAL_FATAL(p.state, MS_SERVING);
  char key[16] = "0";
  if (p.start_key.len)
    snprintf(key, sizeof key, "%.*sx", (int)p.start_key.len,
             (const char *)p.start_key.data);
  sim_split_at(&c, "t", key, NULL, NULL);

  size_t most = 0;
  for (int round = 0; round < 40; round++) {
    ms_action_list l = {0};
    TU_OK(ms_tick(c.m, c.now, &l));
    size_t now_moving = moving_of(&c, plan, n);
    if (now_moving > most) most = now_moving;
    sim_perform(&c, &l);
    ms_action_list_free(&l);
    sim_advance(&c, SIM_SEC / 5);
  }
  CU_ASSERT_EQUAL(most, 2);
  CU_ASSERT_EQUAL(moving_of(&c, plan, n), 0);
  for (size_t i = 0; i + 1 < n; i++) {
    ms_tablet t;
    TU_OK(ms_get_tablet(c.m, plan[i].tablet_id, &t));
    CU_ASSERT_EQUAL(t.server_id, plan[i].to_server_id);
    ms_tablet_clear(&t);
  }
  CU_ASSERT_EQUAL(sim_count_events(&c, "move", "dropped: tablet"), 1);
  CU_ASSERT_EQUAL(sim_count_events(&c, "move", "was split"), 1);
  ms_tablet_clear(&p);
  free(plan);
  sim_free(&c);
}

/* An approved plan is carried out only while every move still holds. */
static void test_plan_apply(void) {
  sim c;
  manual_master(&c);
  slice keys[5] = {S("a"), S("b"), S("c"), S("d"), S("e")};
  TU_OK(ms_create_table(c.m, "t", keys, 5, c.now, NULL));
  sim_settle(&c, 5);
  sim_start_server(&c, 1);
  sim_advance(&c, SIM_SEC);
  ms_move *plan, *stale;
  size_t n, ns;
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  CU_ASSERT_FATAL(n >= 2);
  TU_ERR(ms_apply_plan(c.m, plan, 0, c.now, &stale, &ns),
         MICA_INVALID_ARGUMENT);

  /* Stale: one tablet split since the plan; another named twice; a target
   * that is draining. Nothing is moved. */
  ms_tablet p;
  TU_OK(ms_get_tablet(c.m, plan[0].tablet_id, &p));
  ms_tablet_list d = {0};
  ms_ref ref = {p.tablet_id, p.range_epoch, p.assign_epoch};
  slice mid = p.start_key.len ? buf_slice(&p.start_key) : S("0");
  buf key = BUF_INIT;
  buf_append_slice(&key, mid);
  buf_push(&key, 'x');
  TU_OK(ms_handle_split(c.m, c.s[0].id, ref, buf_slice(&key), c.now, &d));
  buf before = BUF_INIT, after = BUF_INIT;
  ms_dump_durable(c.m, &before);
  TU_ERR(ms_apply_plan(c.m, plan, n, c.now, &stale, &ns), MICA_STALE_EPOCH);
  CU_ASSERT_EQUAL(ns, 1);
  CU_ASSERT_EQUAL(stale[0].tablet_id, plan[0].tablet_id);
  CU_ASSERT_PTR_NOT_NULL(strstr(stale[0].reason, "was split"));
  free(stale);
  ms_dump_durable(c.m, &after);
  CU_ASSERT(slice_eq(buf_slice(&before), buf_slice(&after)));

  /* Without the split tablet the plan holds and every move starts. */
  TU_OK(ms_apply_plan(c.m, plan + 1, n - 1, c.now, &stale, &ns));
  CU_ASSERT_EQUAL(ns, 0);
  free(stale);
  /* Applying it again: every move is stale now (in flight). */
  TU_ERR(ms_apply_plan(c.m, plan + 1, n - 1, c.now, &stale, &ns),
         MICA_STALE_EPOCH);
  CU_ASSERT_EQUAL(ns, n - 1);
  free(stale);
  sim_settle(&c, 10);
  for (size_t i = 1; i < n; i++) {
    ms_tablet t;
    TU_OK(ms_get_tablet(c.m, plan[i].tablet_id, &t));
    CU_ASSERT_EQUAL(t.server_id, plan[i].to_server_id);
    CU_ASSERT_EQUAL(t.assign_epoch, plan[i].assign_epoch + 1);
    ms_tablet_clear(&t);
  }
  /* Once done, the old plan is stale (assign epochs moved on). */
  TU_ERR(ms_apply_plan(c.m, plan + 1, 1, c.now, &stale, &ns),
         MICA_STALE_EPOCH);
  CU_ASSERT_PTR_NOT_NULL(strstr(stale[0].reason, "assign epoch"));
  free(stale);
  buf_free(&key);
  buf_free(&before);
  buf_free(&after);
  ms_tablet_clear(&p);
  ms_tablet_list_free(&d);
  free(plan);
  sim_free(&c);
}

/* Suggest mode proposes and moves nothing; the mode is durable. */
static void test_suggest_mode(void) {
  sim c;
  sim_init(&c, NULL);
  int mode = MS_BAL_SUGGEST, now_mode = -1;
  TU_OK(ms_set_balancer_mode(c.m, &mode, &now_mode));
  CU_ASSERT_EQUAL(now_mode, MS_BAL_SUGGEST);
  int bad = 7;
  TU_ERR(ms_set_balancer_mode(c.m, &bad, NULL), MICA_INVALID_ARGUMENT);
  CU_ASSERT(ms_balancer_mode_parse("suggest", &mode) && mode == MS_BAL_SUGGEST);
  CU_ASSERT(!ms_balancer_mode_parse("sometimes", &mode));
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", (slice[]){S("m")}, 1, c.now, NULL));
  sim_settle(&c, 5);
  sim_start_server(&c, 1);
  sim_start_server(&c, 2);
  slice keys[4] = {S("n"), S("o"), S("p"), S("q")};
  TU_OK(ms_create_table(c.m, "u", keys, 4, c.now, NULL));
  sim_settle(&c, 5);
  /* Put everything on server 0 by hand. */
  ms_tablet_list l = {0};
  TU_OK(ms_list_tablets(c.m, NULL, false, &l));
  for (size_t i = 0; i < l.n; i++)
    if (l.v[i].server_id != c.s[0].id) {
      ms_move x;
      TU_OK(ms_request_move(c.m, l.v[i].tablet_id, c.s[0].id, c.now, &x));
      sim_settle(&c, 10);
    }
  ms_tablet_list_free(&l);
  size_t before = sim_count_events(&c, "move", NULL);
  run(&c, 5);
  CU_ASSERT_EQUAL(sim_count_events(&c, "move", NULL), before);
  ms_move *s;
  size_t n;
  uint64_t at;
  ms_suggested(c.m, &s, &n, &at);
  CU_ASSERT(n >= 3);
  CU_ASSERT(at > 0);
  for (size_t i = 0; i < n; i++) CU_ASSERT_EQUAL(s[i].from_server_id, c.s[0].id);
  free(s);
  sim_restart(&c);
  TU_OK(ms_set_balancer_mode(c.m, NULL, &now_mode));
  CU_ASSERT_EQUAL(now_mode, MS_BAL_SUGGEST);
  mode = MS_BAL_OFF;
  TU_OK(ms_set_balancer_mode(c.m, &mode, NULL));
  for (int i = 0; i < 3; i++) sim_reregister(&c, i);
  run(&c, 3);
  ms_suggested(c.m, &s, &n, &at);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL(at, 0);
  free(s);
  sim_free(&c);
}

/* Keeps the snapshot record's payload in the buf at `ctx`. */
static mica_err *keep_snapshot(void *ctx, uint8_t type, slice payload) {
  if (type == 1) {
    buf_clear(ctx);
    buf_append_slice(ctx, payload);
  }
  return NULL;
}

/* A drain record that does not fit the state is CORRUPTION at replay. */
static void test_drain_record_checked(void) {
  static const uint64_t bad[][2] = {{999, 1}, {0, 1}, {1, 2}};
  for (int i = 0; i < 3; i++) {
    sim c;
    sim_init(&c, NULL);
    sim_start_server(&c, 0);
    sim_start_server(&c, 1);
    TU_OK(ms_drain(c.m, c.s[0].id, true, c.now, NULL));
    uint64_t id = bad[i][0] == 1 ? c.s[0].id : bad[i][0];
    ms_close(c.m);
    c.m = NULL;
    char *dir = layout_master_dir(c.o.data_root);
    mlog *l;
    buf snap = BUF_INIT, b = BUF_INIT;
    TU_OK(mlog_open(env_posix(), dir, keep_snapshot, &snap, &l));
    TU_OK(mlog_roll(l, 1, buf_slice(&snap)));
    buf_free(&snap);
    put_varint64(&b, id);
    put_varint64(&b, bad[i][1]);
    TU_OK(mlog_append(l, 18, buf_slice(&b)));
    mlog_close(l);
    buf_free(&b);
    free(dir);
    mica_err *e = ms_open(&c.o, c.now, &c.m);
    CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
    CU_ASSERT_PTR_NOT_NULL(e ? strstr(err_msg(e), "server-drain") : NULL);
    err_free(e);
  }
}

/* A dropped table's tablets are held by nobody from the drop on, though
 * their closes are still to come: ms_drain's answer and ms_list_servers
 * count them the same way (not at all), before and after the closes. */
static void test_drain_counts_dropped(void) {
  sim c;
  manual_master(&c);
  sim_start_server(&c, 1);
  slice keys[3] = {S("b"), S("c"), S("d")};
  TU_OK(ms_create_table(c.m, "t", keys, 3, c.now, NULL));
  TU_OK(ms_create_table(c.m, "u", NULL, 0, c.now, NULL));
  sim_settle(&c, 10);
  TU_OK(ms_drop_table(c.m, "t", c.now)); /* no tick yet: nothing closed */
  for (int round = 0; round < 2; round++) {
    ms_server_info *v;
    size_t n;
    TU_OK(ms_list_servers(c.m, false, c.now, &v, &n));
    CU_ASSERT_FATAL(n == 2);
    uint64_t listed = 0;
    for (size_t i = 0; i < n; i++) {
      ms_server_info *si = NULL;
      TU_OK(ms_drain(c.m, v[i].server_id, false, c.now, &si));
      CU_ASSERT_FATAL(si != NULL);
      CU_ASSERT_EQUAL(si->tablet_count, v[i].tablet_count);
      CU_ASSERT_EQUAL(si->bytes, v[i].bytes);
      listed += v[i].tablet_count;
      ms_server_infos_free(si, 1);
    }
    CU_ASSERT_EQUAL(listed, 1); /* table u's one tablet */
    ms_server_infos_free(v, n);
    sim_settle(&c, 10); /* the closes of t's tablets */
  }
  sim_check(&c);
  sim_free(&c);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"load_spread", test_load_spread},
      {"split_daughters", test_split_daughters},
      {"load_split_daughters_at_once", test_load_split_daughters_at_once},
      {"band", test_band},
      {"window", test_window},
      {"targets", test_targets},
      {"drain", test_drain},
      {"plan_apply", test_plan_apply},
      {"apply_paced", test_apply_paced},
      {"suggest_mode", test_suggest_mode},
      {"drain_record_checked", test_drain_record_checked},
      {"move_counts_on_destination", test_move_counts_on_destination},
      {"drain_counts_dropped", test_drain_counts_dropped},
      CU_TEST_INFO_NULL};
  tu_add_suite("balance", tests);
}

int main(int argc, char **argv) {
  if (getenv("MICA_LOG_LEVEL") == NULL) log_set_level(LOG_WARN);
  return tu_main(argc, argv, add_suites);
}
