/* test_state: the master's decisions, with simulated servers and time.
 *
 * Tables (names, split keys, duplicates, drop), assignment to the least
 * loaded, open failures with backoff, lease expiry after lease + margin
 * only, splits and their bad keys, moves (and moves to dead servers),
 * merges of small cold neighbours, the balancer (band, bound per tick, dry
 * run), restart reconciliation, lookups, log failures, and long random
 * operation sequences with restarts, checking invariants and fencing after
 * every step. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env_impl.h"
#include "common/layout.h"
#include "common/log.h"
#include "tests/master/sim.h"

#define S(str) slice_from_str(str)
static const slice NOKEY = {NULL, 0};

static ms_tablet_list tablets_of(sim *c, const char *table) {
  ms_tablet_list l = {0};
  TU_OK(ms_list_tablets(c->m, table, false, &l));
  return l;
}

static size_t tablets_of_count(sim *c, const char *table) {
  ms_tablet_list l = tablets_of(c, table);
  size_t n = l.n;
  ms_tablet_list_free(&l);
  return n;
}

static int count_state(sim *c, int state) {
  ms_tablet_list l = tablets_of(c, NULL);
  int n = 0;
  for (size_t i = 0; i < l.n; i++) n += l.v[i].state == state;
  ms_tablet_list_free(&l);
  return n;
}

/* ---- tables ---- */

static void test_table_names_and_keys(void) {
  sim c;
  sim_init(&c, NULL);
  char long_name[140];
  memset(long_name, 'a', 129);
  long_name[129] = '\0';
  const char *bad[] = {"", "a b", "x/y", "t\xc3\xa9", "semi;colon", long_name};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    TU_ERR(ms_create_table(c.m, bad[i], NULL, 0, c.now, NULL),
           MICA_INVALID_ARGUMENT);
  TU_ERR(ms_create_table(c.m, NULL, NULL, 0, c.now, NULL),
         MICA_INVALID_ARGUMENT);
  long_name[128] = '\0';
  TU_OK(ms_create_table(c.m, long_name, NULL, 0, c.now, NULL));
  TU_OK(ms_create_table(c.m, "A-z_0.9", NULL, 0, c.now, NULL));
  TU_ERR(ms_create_table(c.m, "A-z_0.9", NULL, 0, c.now, NULL),
         MICA_ALREADY_EXISTS);

  /* Split keys: unsorted, repeated, empty, too long. */
  slice unsorted[] = {S("b"), S("a")};
  slice repeated[] = {S("a"), S("b"), S("b")};
  slice empty[] = {S("a"), NOKEY};
  buf big = BUF_INIT;
  buf_resize(&big, c.o.max_key_len + 1);
  memset(big.data, 'k', big.len);
  slice too_long[] = {buf_slice(&big)};
  mica_err *e = ms_create_table(c.m, "t", unsorted, 2, c.now, NULL);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "not sorted"));
  err_free(e);
  e = ms_create_table(c.m, "t", repeated, 3, c.now, NULL);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "repeats"));
  err_free(e);
  e = ms_create_table(c.m, "t", empty, 2, c.now, NULL);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "empty"));
  err_free(e);
  TU_ERR(ms_create_table(c.m, "t", too_long, 1, c.now, NULL),
         MICA_INVALID_ARGUMENT);
  buf_free(&big);
  /* None of the refused calls left a table behind. */
  ms_table_info *ti;
  size_t n;
  TU_OK(ms_list_tables(c.m, &ti, &n));
  CU_ASSERT_EQUAL(n, 2);
  ms_table_infos_free(ti, n);

  /* A pre-split table: n+1 unassigned tablets covering the key space. */
  slice keys[] = {S("g"), S("p")};
  ms_tablet_list out = {0};
  TU_OK(ms_create_table(c.m, "t", keys, 2, c.now, &out));
  CU_ASSERT_EQUAL_FATAL(out.n, 3);
  CU_ASSERT_EQUAL(out.v[0].start_key.len, 0);
  CU_ASSERT(slice_eq(buf_slice(&out.v[0].end_key), S("g")));
  CU_ASSERT(slice_eq(buf_slice(&out.v[1].start_key), S("g")));
  CU_ASSERT(slice_eq(buf_slice(&out.v[1].end_key), S("p")));
  CU_ASSERT(slice_eq(buf_slice(&out.v[2].start_key), S("p")));
  CU_ASSERT_EQUAL(out.v[2].end_key.len, 0);
  for (size_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(out.v[i].state, MS_UNASSIGNED);
    CU_ASSERT_FALSE(out.v[i].has_location);
    CU_ASSERT_EQUAL(out.v[i].range_epoch, 1);
    CU_ASSERT_STRING_EQUAL(out.v[i].table_name, "t");
  }
  uint64_t old_table = out.v[0].table_id, old_tablet = out.v[2].tablet_id;
  ms_tablet_list_free(&out);

  TU_OK(ms_list_tables(c.m, &ti, &n));
  CU_ASSERT_EQUAL_FATAL(n, 3);
  CU_ASSERT_STRING_EQUAL(ti[0].name, "A-z_0.9"); /* sorted by name */
  CU_ASSERT_STRING_EQUAL(ti[2].name, "t");
  CU_ASSERT_EQUAL(ti[2].tablet_count, 3);
  ms_table_infos_free(ti, n);

  /* Drop: unknown names are NOT_FOUND; a dropped name is free at once and
   * the new table gets new ids. */
  TU_ERR(ms_drop_table(c.m, "nope", c.now), MICA_NOT_FOUND);
  TU_OK(ms_drop_table(c.m, "t", c.now));
  TU_ERR(ms_drop_table(c.m, "t", c.now), MICA_NOT_FOUND);
  ms_tablet_list l = {0};
  TU_ERR(ms_lookup(c.m, "t", S("a"), 1, &l), MICA_NOT_FOUND);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, &out));
  CU_ASSERT(out.v[0].table_id > old_table);
  CU_ASSERT(out.v[0].tablet_id > old_tablet);
  ms_tablet_list_free(&out);
  sim_check(&c);
  sim_restart(&c);
  sim_free(&c);
}

/* A dropped table's tablets are closed (without flush), then its files are
 * deleted, then it is forgotten. */
static void test_drop_closes_and_deletes(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  slice keys[] = {S("m")};
  TU_OK(ms_create_table(c.m, "d", keys, 1, c.now, NULL));
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL(c.s[0].n, 2);
  ms_tablet_list l = tablets_of(&c, "d");
  uint64_t id = l.v[0].tablet_id;
  ms_tablet_list_free(&l);

  TU_OK(ms_drop_table(c.m, "d", c.now));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 2);
  for (size_t i = 0; i < a.n; i++) {
    CU_ASSERT_EQUAL(a.v[i].type, MS_ACT_CLOSE);
    CU_ASSERT_TRUE(a.v[i].skip_flush);
    CU_ASSERT_FALSE(a.v[i].has_moved_to);
  }
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  CU_ASSERT_EQUAL(c.s[0].n, 0);
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  CU_ASSERT_EQUAL(a.v[0].type, MS_ACT_DELETE_TABLE);
  CU_ASSERT_STRING_EQUAL(a.v[0].tablet.table_name, "d");
  /* A failed delete is retried after a backoff. */
  TU_OK(ms_action_done(c.m, a.v[0].id, MICA_IO_ERROR, c.now));
  ms_action_list_free(&a);
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, 0);
  ms_action_list_free(&a);
  c.now += 5 * SIM_SEC;
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL(c.deletes, 1);
  ms_tablet t;
  TU_ERR(ms_get_tablet(c.m, id, &t), MICA_NOT_FOUND);
  TU_ERR(ms_action_done(c.m, 999999, MICA_OK, c.now), MICA_NOT_FOUND);
  sim_check(&c);
  sim_restart(&c);
  TU_ERR(ms_get_tablet(c.m, id, &t), MICA_NOT_FOUND);
  sim_free(&c);
}

/* ---- assignment ---- */

static void test_assignment_least_loaded(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  slice k5[] = {S("1"), S("2"), S("3"), S("4")};
  TU_OK(ms_create_table(c.m, "a", k5, 4, c.now, NULL));
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL(sim_count_on(&c, c.s[0].id), 5);

  sim_start_server(&c, 1);
  sim_start_server(&c, 2);
  slice k6[] = {S("1"), S("2"), S("3"), S("4"), S("5")};
  TU_OK(ms_create_table(c.m, "b", k6, 5, c.now, NULL));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, 6);
  int per[3] = {0};
  for (size_t i = 0; i < a.n; i++) {
    CU_ASSERT_EQUAL(a.v[i].type, MS_ACT_OPEN);
    CU_ASSERT_EQUAL(a.v[i].tablet.assign_epoch, 1);
    per[sim_find(&c, a.v[i].server_id)]++;
  }
  /* Server 0 already holds 5: all six go to the two empty ones, evenly. */
  CU_ASSERT_EQUAL(per[0], 0);
  CU_ASSERT_EQUAL(per[1], 3);
  CU_ASSERT_EQUAL(per[2], 3);
  /* Until the opens are answered the tablets have no location. */
  ms_tablet_list l = {0};
  TU_OK(ms_lookup(c.m, "b", NOKEY, 6, &l));
  for (size_t i = 0; i < l.n; i++) {
    CU_ASSERT_EQUAL(l.v[i].state, MS_OPENING);
    CU_ASSERT_FALSE(l.v[i].has_location);
  }
  ms_tablet_list_free(&l);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  TU_OK(ms_lookup(c.m, "b", NOKEY, 6, &l));
  for (size_t i = 0; i < l.n; i++) {
    CU_ASSERT_EQUAL(l.v[i].state, MS_SERVING);
    CU_ASSERT_TRUE(l.v[i].has_location);
    CU_ASSERT_STRING_EQUAL(l.v[i].address, c.s[sim_find(&c, l.v[i].server_id)].addr);
  }
  ms_tablet_list_free(&l);
  sim_check(&c);
  sim_free(&c);
}

static void test_open_failures_retry(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  c.s[0].open_err = MICA_INTERNAL; /* definite: tries elsewhere */
  slice keys[] = {S("m")};
  TU_OK(ms_create_table(c.m, "t", keys, 1, c.now, NULL));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 2);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  CU_ASSERT(sim_count_events(&c, "open_failed", NULL) > 0);
  CU_ASSERT_EQUAL(count_state(&c, MS_UNASSIGNED), 1);
  /* Before the backoff nothing is retried. */
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, 0);
  ms_action_list_free(&a);
  c.now += c.o.open_backoff_min_us;
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  CU_ASSERT_EQUAL(a.v[0].server_id, c.s[1].id); /* not the failing one */
  CU_ASSERT_EQUAL(a.v[0].tablet.assign_epoch, 2);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  CU_ASSERT_EQUAL(sim_count_on(&c, c.s[1].id), 2);

  /* Unknown outcome (timeout): the same open, same server, same epoch, is
   * sent again after a backoff. */
  c.s[1].open_err = MICA_DEADLINE_EXCEEDED;
  TU_OK(ms_create_table(c.m, "u", NULL, 0, c.now, NULL));
  c.s[0].open_err = MICA_DEADLINE_EXCEEDED;
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  uint64_t srv = a.v[0].server_id, ep = a.v[0].tablet.assign_epoch;
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  c.now += 10 * SIM_SEC;
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  CU_ASSERT_EQUAL(a.v[0].server_id, srv);
  CU_ASSERT_EQUAL(a.v[0].tablet.assign_epoch, ep);
  c.s[0].open_err = c.s[1].open_err = MICA_OK;
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 3);
  sim_check(&c);
  sim_free(&c);
}

/* ---- leases ---- */

static void test_lease_expiry(void) {
  sim c;
  sim_init(&c, NULL);
  for (int i = 0; i < 3; i++) sim_start_server(&c, i);
  slice keys[] = {S("b"), S("c"), S("d"), S("e"), S("f")};
  TU_OK(ms_create_table(c.m, "t", keys, 5, c.now, NULL));
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL(sim_count_on(&c, c.s[0].id), 2);
  uint64_t dead_id = c.s[0].id;

  /* Server 0 is partitioned right after a heartbeat at t0. */
  sim_advance(&c, SIM_SEC);
  uint64_t t0 = c.now;
  uint64_t server_view_ends = c.s[0].lease_until;
  c.s[0].up = false;
  uint64_t limit = c.o.lease_us + c.o.lease_margin_us;
  sim_advance(&c, c.o.lease_us + SIM_SEC / 2);
  ms_server_info *si;
  size_t n;
  TU_OK(ms_list_servers(c.m, false, c.now, &si, &n));
  CU_ASSERT_EQUAL_FATAL(n, 3);
  CU_ASSERT_EQUAL(si[0].state, MS_SERVER_SUSPECT);
  ms_server_infos_free(si, n);
  /* A suspect server gets no new tablets, even as the least loaded. */
  TU_OK(ms_create_table(c.m, "u", NULL, 0, c.now, NULL));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  CU_ASSERT_NOT_EQUAL(a.v[0].server_id, dead_id);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  ms_move mv;
  ms_tablet_list ul = tablets_of(&c, "u");
  TU_ERR(ms_request_move(c.m, ul.v[0].tablet_id, dead_id, c.now, &mv),
         MICA_UNAVAILABLE);
  ms_tablet_list_free(&ul);
  TU_OK(ms_drop_table(c.m, "u", c.now));
  sim_advance(&c, t0 + limit - c.now); /* exactly lease + margin */
  CU_ASSERT_EQUAL(sim_count_on(&c, dead_id), 2);
  CU_ASSERT_EQUAL(sim_count_events(&c, "server_dead", NULL), 0);

  c.now += 1;
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT(sim_count_events(&c, "server_dead", NULL) > 0);
  CU_ASSERT_EQUAL(a.n, 2);
  for (size_t i = 0; i < a.n; i++) {
    CU_ASSERT_EQUAL(a.v[i].type, MS_ACT_OPEN);
    CU_ASSERT_NOT_EQUAL(a.v[i].server_id, dead_id);
    CU_ASSERT_EQUAL(a.v[i].tablet.assign_epoch, 2);
  }
  /* Fencing: the old owner's own lease ended before anyone got the tablet. */
  CU_ASSERT(server_view_ends < c.now);
  CU_ASSERT(server_view_ends + c.o.lease_margin_us <= c.now);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 6);
  CU_ASSERT_EQUAL(sim_count_on(&c, dead_id), 0);
  TU_OK(ms_list_servers(c.m, true, c.now, &si, &n));
  CU_ASSERT_EQUAL(si[0].state, MS_SERVER_DEAD);
  ms_server_infos_free(si, n);
  TU_OK(ms_list_servers(c.m, false, c.now, &si, &n));
  CU_ASSERT_EQUAL(n, 2);
  ms_server_infos_free(si, n);

  /* The event list is bounded, newest first, and still shows the death. */
  ms_event *ev;
  size_t nev;
  ms_events(c.m, 0, &ev, &nev);
  CU_ASSERT(nev > 0 && nev <= c.o.event_capacity);
  CU_ASSERT_STRING_EQUAL(ev[0].kind, "assign");
  CU_ASSERT_EQUAL(ev[1].server_id, dead_id);
  CU_ASSERT_STRING_EQUAL(ev[1].kind, "server_dead");
  for (size_t i = 1; i < nev; i++) CU_ASSERT(ev[i - 1].time_ms >= ev[i].time_ms);
  free(ev);
  ms_events(c.m, 1, &ev, &nev);
  CU_ASSERT_EQUAL(nev, 1);
  free(ev);

  /* The partition heals: the old process is told its lease is gone and
   * comes back as a new server with nothing. */
  c.s[0].up = true;
  CU_ASSERT_EQUAL(sim_heartbeat(&c, 0), MICA_LEASE_EXPIRED);
  CU_ASSERT_NOT_EQUAL(c.s[0].id, dead_id);
  CU_ASSERT_EQUAL(c.s[0].n, 0);
  sim_check(&c);
  sim_check_fencing(&c);
  sim_restart(&c);
  sim_free(&c);
}

/* A heartbeat that arrives after lease + margin is refused even before a
 * tick noticed; a new process at the same address replaces the old one. */
static void test_late_heartbeat_and_same_address(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  c.now += c.o.lease_us + c.o.lease_margin_us + 1;
  CU_ASSERT_EQUAL(sim_heartbeat(&c, 0), MICA_LEASE_EXPIRED);
  ms_server_reply r;
  TU_ERR(ms_handle_heartbeat(c.m, 424242, 1, NULL, 0, c.now, &r),
         MICA_NOT_FOUND);
  TU_ERR(ms_handle_heartbeat(c.m, c.s[1].id, c.s[1].inc + 2, NULL, 0, c.now,
                             &r), MICA_NOT_FOUND);
  TU_ERR(ms_handle_register(c.m, "", NULL, 0, 1, NULL, 0, c.now, &r),
         MICA_INVALID_ARGUMENT);

  /* Server 1 restarts at its address with a new incarnation. */
  sim_settle(&c, 5);
  uint64_t old = c.s[1].id;
  sim_start_server(&c, 1);
  CU_ASSERT_NOT_EQUAL(c.s[1].id, old);
  ms_server_info *si;
  size_t n;
  TU_OK(ms_list_servers(c.m, true, c.now, &si, &n));
  for (size_t i = 0; i < n; i++)
    if (si[i].server_id == old) CU_ASSERT_EQUAL(si[i].state, MS_SERVER_DEAD);
  ms_server_infos_free(si, n);
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 1);
  sim_check(&c);
  sim_free(&c);
}

/* ---- splits ---- */

static void test_split(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  ms_tablet_list l = tablets_of(&c, "t");
  ms_tablet p = l.v[0];
  l.n = 0;
  ms_tablet_list_free(&l);
  ms_ref ref = {p.tablet_id, p.range_epoch, p.assign_epoch};
  uint64_t owner = p.server_id;
  uint64_t other = owner == c.s[0].id ? c.s[1].id : c.s[0].id;

  ms_tablet_list d = {0};
  TU_ERR(ms_handle_split(c.m, owner, (ms_ref){999, 1, 1}, S("m"), c.now, &d),
         MICA_NOT_FOUND);
  TU_ERR(ms_handle_split(c.m, other, ref, S("m"), c.now, &d),
         MICA_STALE_EPOCH);
  TU_ERR(ms_handle_split(c.m, owner, (ms_ref){ref.tablet_id, 7, ref.assign_epoch},
                         S("m"), c.now, &d), MICA_STALE_EPOCH);
  TU_ERR(ms_handle_split(c.m, owner, ref, NOKEY, c.now, &d),
         MICA_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(d.n, 0);

  TU_OK(ms_handle_split(c.m, owner, ref, S("m"), c.now, &d));
  CU_ASSERT_EQUAL_FATAL(d.n, 2);
  CU_ASSERT(d.v[0].tablet_id > p.tablet_id);
  CU_ASSERT_EQUAL(d.v[1].tablet_id, d.v[0].tablet_id + 1);
  CU_ASSERT_EQUAL(d.v[0].start_key.len, 0);
  CU_ASSERT(slice_eq(buf_slice(&d.v[0].end_key), S("m")));
  CU_ASSERT(slice_eq(buf_slice(&d.v[1].start_key), S("m")));
  CU_ASSERT_EQUAL(d.v[1].end_key.len, 0);
  for (int i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(d.v[i].range_epoch, p.range_epoch + 1);
    CU_ASSERT_EQUAL(d.v[i].state, MS_SERVING);
    CU_ASSERT_EQUAL(d.v[i].server_id, owner);
    /* The parent's epoch: the server's files keep growing epochs. */
    CU_ASSERT_EQUAL(d.v[i].assign_epoch, p.assign_epoch);
  }
  ms_tablet got;
  TU_OK(ms_get_tablet(c.m, p.tablet_id, &got));
  CU_ASSERT_EQUAL(got.state, MS_SPLIT);
  ms_tablet_clear(&got);
  CU_ASSERT(sim_count_events(&c, "split", NULL) > 0);

  /* The server's copy of the answer was lost: the same proposal answers
   * the same daughters; a different key is stale. */
  ms_tablet_list again = {0};
  TU_OK(ms_handle_split(c.m, owner, ref, S("m"), c.now, &again));
  CU_ASSERT_EQUAL_FATAL(again.n, 2);
  CU_ASSERT_EQUAL(again.v[0].tablet_id, d.v[0].tablet_id);
  ms_tablet_list_free(&again);
  TU_ERR(ms_handle_split(c.m, owner, ref, S("n"), c.now, &again),
         MICA_STALE_EPOCH);

  /* The server now serves the daughters instead of the parent. */
  int si = sim_find(&c, owner);
  c.s[si].n = 0;
  for (int i = 0; i < 2; i++) {
    c.s[si].served[c.s[si].n].ref =
        (ms_ref){d.v[i].tablet_id, d.v[i].range_epoch, d.v[i].assign_epoch};
    c.s[si].n++;
  }
  /* Keys not strictly inside the tablet. */
  ms_ref right = {d.v[1].tablet_id, d.v[1].range_epoch, d.v[1].assign_epoch};
  ms_ref left = {d.v[0].tablet_id, d.v[0].range_epoch, d.v[0].assign_epoch};
  TU_ERR(ms_handle_split(c.m, owner, right, S("m"), c.now, &again),
         MICA_OUT_OF_RANGE);
  TU_ERR(ms_handle_split(c.m, owner, right, S("a"), c.now, &again),
         MICA_OUT_OF_RANGE);
  TU_ERR(ms_handle_split(c.m, owner, left, S("z"), c.now, &again),
         MICA_OUT_OF_RANGE);
  TU_ERR(ms_handle_split(c.m, owner, left, S("m"), c.now, &again),
         MICA_OUT_OF_RANGE);

  /* Manual split requests are checked and routed to the owner. */
  ms_tablet where;
  TU_ERR(ms_prepare_split(c.m, 12345, S("c"), &where), MICA_NOT_FOUND);
  TU_ERR(ms_prepare_split(c.m, left.tablet_id, S("x"), &where),
         MICA_OUT_OF_RANGE);
  TU_ERR(ms_prepare_split(c.m, p.tablet_id, S("c"), &where), MICA_UNAVAILABLE);
  TU_OK(ms_prepare_split(c.m, left.tablet_id, S("c"), &where));
  CU_ASSERT_EQUAL(where.server_id, owner);
  CU_ASSERT_STRING_EQUAL(where.address, c.s[si].addr);
  ms_tablet_clear(&where);
  TU_OK(ms_prepare_split(c.m, left.tablet_id, NOKEY, &where));
  ms_tablet_clear(&where);

  /* Lookups see the daughters. */
  TU_OK(ms_lookup(c.m, "t", S("a"), 1, &l));
  CU_ASSERT_EQUAL(l.v[0].tablet_id, d.v[0].tablet_id);
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup(c.m, "t", S("m"), 1, &l));
  CU_ASSERT_EQUAL(l.v[0].tablet_id, d.v[1].tablet_id);
  ms_tablet_list_free(&l);
  TU_OK(ms_list_tablets(c.m, "t", true, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 3);
  CU_ASSERT_EQUAL(l.v[0].tablet_id, p.tablet_id); /* parent, then left */
  CU_ASSERT_EQUAL(l.v[0].state, MS_SPLIT);
  CU_ASSERT_FALSE(l.v[0].has_location);
  CU_ASSERT_EQUAL(l.v[1].tablet_id, d.v[0].tablet_id);
  CU_ASSERT_EQUAL(l.v[2].tablet_id, d.v[1].tablet_id);
  ms_tablet_list_free(&l);
  ms_tablet_list_free(&d);
  ms_tablet_clear(&p);
  sim_advance(&c, 3 * SIM_SEC);
  CU_ASSERT_EQUAL(c.s[si].n, 2); /* no stray closes for the daughters */
  sim_check(&c);
  sim_restart(&c);
  sim_free(&c);
}

/* A server that had its split committed but never switched to the
 * daughters (it kept serving the parent): the master notices within a few
 * heartbeats, has the parent closed, and reopens the daughters from the
 * parent's files. */
static void test_split_not_carried_out(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  ms_tablet_list l = tablets_of(&c, "t");
  ms_ref ref = {l.v[0].tablet_id, l.v[0].range_epoch, l.v[0].assign_epoch};
  ms_tablet_list_free(&l);
  ms_tablet_list d = {0};
  TU_OK(ms_handle_split(c.m, c.s[0].id, ref, S("m"), c.now, &d));
  uint64_t left = d.v[0].tablet_id;
  ms_tablet_list_free(&d);
  /* One heartbeat still naming the parent is an expected race. */
  c.now += SIM_SEC;
  CU_ASSERT_EQUAL(sim_heartbeat(&c, 0), MICA_OK);
  CU_ASSERT_EQUAL(c.s[0].n, 1);
  c.opens = 0;
  sim_advance(&c, 6 * SIM_SEC);
  CU_ASSERT_EQUAL(c.s[0].n, 2); /* the daughters, not the parent */
  for (int k = 0; k < c.s[0].n; k++)
    CU_ASSERT_NOT_EQUAL(c.s[0].served[k].ref.tablet_id, ref.tablet_id);
  CU_ASSERT_EQUAL(c.opens, 2);
  CU_ASSERT_EQUAL(c.last_open_n_sources, 1);
  CU_ASSERT_EQUAL(c.last_open_sources[0], ref.tablet_id);
  CU_ASSERT(sim_count_events(&c, "lost", NULL) > 0);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, left, &t));
  CU_ASSERT_EQUAL(t.state, MS_SERVING);
  CU_ASSERT(t.assign_epoch > ref.assign_epoch);
  ms_tablet_clear(&t);
  sim_check(&c);
  sim_free(&c);
}

/* A split still running on its server: the server answered ReportSplit and
 * reports neither the parent nor the daughters while it splits. Within a
 * lease of the commit the daughters are not "lost" (a slow split used to
 * have them closed as they opened); a split that never finishes is healed
 * once the lease has passed. */
/* The master commits a split before its server splits the files and opens
 * the daughters: until that server names a daughter in a report, lookups
 * give it no location (a client sent there would only be told "not served
 * here"), while the proposer's answer carries it (the proposer hands it to
 * clients of the parent once it serves the daughters). A daughter whose
 * server never reports it is reassigned after the lease, as before, and is
 * then located at its new place. */
static bool located(sim *c, const char *key) {
  ms_tablet_list l = {0};
  TU_OK(ms_lookup(c->m, "t", slice_from_str(key), 1, &l));
  CU_ASSERT_FATAL(l.n == 1);
  bool loc = l.v[0].has_location;
  if (loc) CU_ASSERT_EQUAL(l.v[0].state, MS_SERVING);
  ms_tablet_list_free(&l);
  return loc;
}

static void test_split_located_when_reported(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  CU_ASSERT(located(&c, "a"));
  ms_tablet_list l = {0};
  TU_OK(ms_lookup(c.m, "t", S("a"), 1, &l));
  ms_tablet p = l.v[0];
  l.n = 0;
  ms_tablet_list_free(&l);
  ms_ref ref = {p.tablet_id, p.range_epoch, p.assign_epoch};
  int si = sim_find(&c, p.server_id);
  ms_tablet_list d = {0};
  TU_OK(ms_handle_split(c.m, p.server_id, ref, S("m"), c.now, &d));
  CU_ASSERT_EQUAL_FATAL(d.n, 2);
  for (int i = 0; i < 2; i++) {
    CU_ASSERT(d.v[i].has_location);
    CU_ASSERT_EQUAL(d.v[i].server_id, p.server_id);
  }
  /* Committed, not opened yet: no location for either daughter. */
  CU_ASSERT_FALSE(located(&c, "a"));
  CU_ASSERT_FALSE(located(&c, "x"));
  /* A lost answer asked again still carries the location. */
  ms_tablet_list again = {0};
  TU_OK(ms_handle_split(c.m, p.server_id, ref, S("m"), c.now, &again));
  CU_ASSERT_EQUAL_FATAL(again.n, 2);
  CU_ASSERT(again.v[0].has_location && again.v[1].has_location);
  ms_tablet_list_free(&again);
  /* The master's probe (TabletInfo) lifts the mark only for the split's
   * server and epochs. */
  ms_unseen *u = NULL;
  size_t nu = 0;
  ms_split_unseen_list(c.m, &u, &nu);
  CU_ASSERT_EQUAL_FATAL(nu, 2);
  CU_ASSERT_EQUAL(u[0].tablet_id, d.v[0].tablet_id);
  CU_ASSERT_EQUAL(u[1].tablet_id, d.v[1].tablet_id);
  CU_ASSERT_EQUAL(u[0].server_id, p.server_id);
  CU_ASSERT_EQUAL(u[0].assign_epoch, d.v[0].assign_epoch);
  ms_unseen_free(u, nu);
  uint64_t lid = d.v[0].tablet_id, re = d.v[0].range_epoch,
           ae = d.v[0].assign_epoch;
  ms_split_seen(c.m, lid, p.server_id, re, ae + 1);
  ms_split_seen(c.m, lid, p.server_id + 100, re, ae);
  ms_split_seen(c.m, lid, p.server_id, re - 1, ae);
  CU_ASSERT_FALSE(located(&c, "a"));
  ms_split_seen(c.m, lid, p.server_id, re, ae);
  CU_ASSERT(located(&c, "a"));
  CU_ASSERT_FALSE(located(&c, "x"));
  ms_split_unseen_list(c.m, &u, &nu);
  CU_ASSERT_EQUAL(nu, 1);
  ms_unseen_free(u, nu);
  /* The server opened only the left daughter so far and reports it. */
  sim_srv *s = &c.s[si];
  s->n = 0;
  s->served[s->n++].ref =
      (ms_ref){d.v[0].tablet_id, d.v[0].range_epoch, d.v[0].assign_epoch};
  CU_ASSERT_EQUAL(sim_heartbeat(&c, si), MICA_OK);
  CU_ASSERT(located(&c, "a"));
  CU_ASSERT_FALSE(located(&c, "x"));
  /* It never opens the right one: after the lease the master closes it
   * there and places it again, and then routes to it. */
  sim_advance(&c, c.o.lease_us + 5 * SIM_SEC);
  sim_settle(&c, 10);
  CU_ASSERT(located(&c, "a"));
  CU_ASSERT(located(&c, "x"));
  /* A restarted master knows nothing of unseen daughters (volatile): the
   * servers' reports decide, as for every tablet. */
  sim_restart(&c);
  for (int i = 0; i < 2; i++) sim_reregister(&c, i);
  sim_settle(&c, 5);
  CU_ASSERT(located(&c, "a"));
  CU_ASSERT(located(&c, "x"));
  ms_tablet_list_free(&d);
  ms_tablet_clear(&p);
  sim_check(&c);
  sim_free(&c);
}

static void test_split_in_progress(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  ms_tablet_list l = tablets_of(&c, "t");
  ms_ref ref = {l.v[0].tablet_id, l.v[0].range_epoch, l.v[0].assign_epoch};
  ms_tablet_list_free(&l);
  ms_tablet_list d = {0};
  TU_OK(ms_handle_split(c.m, c.s[0].id, ref, S("m"), c.now, &d));
  uint64_t left = d.v[0].tablet_id;
  ms_tablet_list_free(&d);
  c.s[0].n = 0; /* the parent left service; the daughters are not up yet */
  c.opens = 0;
  sim_advance(&c, c.o.lease_us / 2);
  CU_ASSERT_EQUAL(sim_count_events(&c, "lost", NULL), 0);
  CU_ASSERT_EQUAL(c.opens, 0);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, left, &t));
  CU_ASSERT_EQUAL(t.state, MS_SERVING);
  CU_ASSERT_EQUAL(t.assign_epoch, ref.assign_epoch);
  ms_tablet_clear(&t);
  /* The split never finishes: after the lease the daughters are closed
   * and opened again from the parent's files. */
  sim_advance(&c, c.o.lease_us / 2 + 6 * SIM_SEC);
  CU_ASSERT(sim_count_events(&c, "lost", NULL) > 0);
  CU_ASSERT_EQUAL(c.opens, 2);
  CU_ASSERT_EQUAL(c.s[0].n, 2);
  TU_OK(ms_get_tablet(c.m, left, &t));
  CU_ASSERT_EQUAL(t.state, MS_SERVING);
  CU_ASSERT(t.assign_epoch > ref.assign_epoch);
  ms_tablet_clear(&t);
  sim_check(&c);
  sim_free(&c);
}

/* ---- moves ---- */

static void test_move(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  for (int i = 0; i < 3; i++) sim_start_server(&c, i);
  slice keys[] = {S("h"), S("p")};
  TU_OK(ms_create_table(c.m, "t", keys, 2, c.now, NULL));
  sim_settle(&c, 5);
  ms_tablet_list l = tablets_of(&c, "t");
  uint64_t tid = l.v[0].tablet_id, from = l.v[0].server_id;
  uint64_t ep = l.v[0].assign_epoch;
  ms_tablet_list_free(&l);
  int fi = sim_find(&c, from);
  int ti = (fi + 1) % 3, xi = (fi + 2) % 3;

  ms_move mv;
  TU_ERR(ms_request_move(c.m, 9999, c.s[ti].id, c.now, &mv), MICA_NOT_FOUND);
  TU_ERR(ms_request_move(c.m, tid, 9999, c.now, &mv), MICA_NOT_FOUND);
  TU_ERR(ms_request_move(c.m, tid, from, c.now, &mv), MICA_INVALID_ARGUMENT);

  /* Server xi dies: a move to it is refused. */
  c.s[xi].up = false;
  sim_advance(&c, c.o.lease_us + c.o.lease_margin_us + 2 * SIM_SEC);
  mica_err *e = ms_request_move(c.m, tid, c.s[xi].id, c.now, &mv);
  CU_ASSERT_EQUAL(err_code(e), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "dead"));
  err_free(e);

  TU_OK(ms_request_move(c.m, tid, c.s[ti].id, c.now, &mv));
  CU_ASSERT_EQUAL(mv.from_server_id, from);
  CU_ASSERT_EQUAL(mv.to_server_id, c.s[ti].id);
  TU_ERR(ms_request_move(c.m, tid, c.s[ti].id, c.now, &mv), MICA_UNAVAILABLE);
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  CU_ASSERT_EQUAL(a.v[0].type, MS_ACT_CLOSE);
  CU_ASSERT_EQUAL(a.v[0].server_id, from);
  CU_ASSERT_TRUE(a.v[0].has_moved_to);
  CU_ASSERT_EQUAL(a.v[0].moved_to_server, c.s[ti].id);
  CU_ASSERT_EQUAL(a.v[0].moved_to_epoch, ep + 1);
  CU_ASSERT_STRING_EQUAL(a.v[0].moved_to_address, c.s[ti].addr);
  CU_ASSERT_FALSE(a.v[0].skip_flush);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  CU_ASSERT_EQUAL(a.v[0].type, MS_ACT_OPEN);
  CU_ASSERT_EQUAL(a.v[0].server_id, c.s[ti].id);
  CU_ASSERT_EQUAL(a.v[0].tablet.assign_epoch, ep + 1);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, tid, &t));
  CU_ASSERT_EQUAL(t.state, MS_SERVING);
  CU_ASSERT_EQUAL(t.server_id, c.s[ti].id);
  CU_ASSERT_EQUAL(t.assign_epoch, ep + 1);
  ms_tablet_clear(&t);

  /* A refused close leaves the tablet serving where it was. */
  c.s[ti].close_err = MICA_INTERNAL;
  TU_OK(ms_request_move(c.m, tid, 0, c.now, &mv));
  CU_ASSERT_EQUAL(mv.to_server_id, from); /* the only other live server */
  sim_settle(&c, 3);
  TU_OK(ms_get_tablet(c.m, tid, &t));
  CU_ASSERT_EQUAL(t.state, MS_SERVING);
  CU_ASSERT_EQUAL(t.server_id, c.s[ti].id);
  ms_tablet_clear(&t);
  CU_ASSERT(sim_count_events(&c, "close_failed", NULL) > 0);
  sim_check(&c);
  sim_restart(&c);
  sim_free(&c);
}

/* ---- merges ---- */

static void test_merge(void) {
  sim c;
  sim_init(&c, NULL);
  c.o.merge_min_age_us = 30 * SIM_SEC;
  sim_restart(&c); /* the new option in force */
  bool off = false;
  TU_OK(ms_configure(c.m, &off, NULL, NULL, NULL));
  sim_start_server(&c, 0);
  slice pre[] = {S("x")};
  TU_OK(ms_create_table(c.m, "t", pre, 1, c.now, NULL));
  sim_settle(&c, 5);
  sim_split_at(&c, "t", "m", NULL, NULL);
  ms_tablet_list l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL_FATAL(l.n, 3);
  uint64_t a_id = l.v[0].tablet_id, b_id = l.v[1].tablet_id;
  uint64_t ep = l.v[0].range_epoch;
  ms_tablet_list_free(&l);

  /* Hot tablets are not merged; neither are young ones. */
  sim_set_stats(&c, 0, 1000, 50.0);
  sim_advance(&c, 40 * SIM_SEC);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 3);
  sim_set_stats(&c, 0, 1000, 0.0);
  TU_OK(ms_configure(c.m, NULL, &off, NULL, NULL));
  sim_advance(&c, 5 * SIM_SEC);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 3);

  bool on = true;
  TU_OK(ms_configure(c.m, NULL, &on, NULL, NULL));
  c.opens = 0;
  sim_advance(&c, 2 * SIM_SEC);
  l = tablets_of(&c, "t");
  /* [,m) and [m,x) merged; the pre-split boundary x stays. */
  CU_ASSERT_EQUAL_FATAL(l.n, 2);
  CU_ASSERT_EQUAL(l.v[0].start_key.len, 0);
  CU_ASSERT(slice_eq(buf_slice(&l.v[0].end_key), S("x")));
  CU_ASSERT_EQUAL(l.v[0].range_epoch, ep + 1);
  CU_ASSERT_EQUAL(l.v[0].state, MS_SERVING);
  CU_ASSERT_EQUAL(l.v[0].server_id, c.s[0].id);
  CU_ASSERT(l.v[0].tablet_id > b_id);
  ms_tablet_list_free(&l);
  CU_ASSERT_EQUAL(c.opens, 1);
  CU_ASSERT_EQUAL(c.last_open_n_sources, 2);
  CU_ASSERT_EQUAL(c.last_open_sources[0], a_id);
  CU_ASSERT_EQUAL(c.last_open_sources[1], b_id);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, a_id, &t));
  CU_ASSERT_EQUAL(t.state, MS_MERGED);
  ms_tablet_clear(&t);
  CU_ASSERT(sim_count_events(&c, "merge", NULL) > 0);

  /* Operator merges: only adjacent serving tablets. */
  l = tablets_of(&c, "t");
  TU_ERR(ms_request_merge(c.m, l.v[1].tablet_id, l.v[0].tablet_id, c.now),
         MICA_INVALID_ARGUMENT);
  TU_ERR(ms_request_merge(c.m, a_id, l.v[1].tablet_id, c.now),
         MICA_UNAVAILABLE);
  TU_OK(ms_request_merge(c.m, l.v[0].tablet_id, l.v[1].tablet_id, c.now));
  ms_tablet_list_free(&l);
  sim_settle(&c, 5);
  l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL(l.n, 1);
  CU_ASSERT_EQUAL(l.v[0].state, MS_SERVING);
  ms_tablet_list_free(&l);
  sim_check(&c);
  sim_restart(&c);
  sim_free(&c);
}

/* One heartbeat of server i built like sim_heartbeat's, but the reply is
 * handed to the caller (freed with ms_server_reply_free). */
static void heartbeat_reply(sim *c, int i, ms_server_reply *r) {
  sim_srv *s = &c->s[i];
  ms_report rep[SIM_MAX_SERVED];
  size_t n = 0;
  for (int k = 0; k < s->n; k++) {
    if (s->served[k].hidden) continue;
    rep[n].ref = s->served[k].ref;
    rep[n].stats = s->served[k].stats;
    n++;
  }
  TU_OK(ms_handle_heartbeat(c->m, s->id, s->inc, rep, n, c->now, r));
}

/* The server that closed a merge input elsewhere is told, in one
 * heartbeat reply once the merged tablet serves, where its input went;
 * the server that opens the merged tablet is told nothing. */
static void test_merge_successor(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  slice pre[] = {S("m")};
  TU_OK(ms_create_table(c.m, "t", pre, 1, c.now, NULL));
  sim_settle(&c, 5);
  ms_tablet_list l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL_FATAL(l.n, 2);
  uint64_t a = l.v[0].tablet_id, b = l.v[1].tablet_id;
  if (l.v[0].server_id == l.v[1].server_id) {
    uint64_t other = l.v[0].server_id == c.s[0].id ? c.s[1].id : c.s[0].id;
    ms_move mv;
    TU_OK(ms_request_move(c.m, b, other, c.now, &mv));
    sim_settle(&c, 5);
  }
  ms_tablet_list_free(&l);
  l = tablets_of(&c, "t");
  int ia = sim_find(&c, l.v[0].server_id), ib = sim_find(&c, l.v[1].server_id);
  CU_ASSERT_FATAL(ia >= 0 && ib >= 0 && ia != ib);
  ms_tablet_list_free(&l);

  TU_OK(ms_request_merge(c.m, a, b, c.now));
  ms_server_reply r;
  /* Closes done, the merged tablet not yet open: nothing to tell. */
  ms_action_list al = {0};
  TU_OK(ms_tick(c.m, c.now, &al));
  sim_perform(&c, &al); /* the two closes */
  ms_action_list_free(&al);
  TU_OK(ms_tick(c.m, c.now, &al)); /* commits; the open is queued */
  heartbeat_reply(&c, ib, &r);
  CU_ASSERT_EQUAL(r.n_merged, 0);
  ms_server_reply_free(&r);
  sim_perform(&c, &al); /* the open */
  ms_action_list_free(&al);
  sim_settle(&c, 5);
  l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  CU_ASSERT_EQUAL(l.v[0].state, MS_SERVING);
  CU_ASSERT_EQUAL(l.v[0].server_id, c.s[ia].id);
  uint64_t merged = l.v[0].tablet_id;
  ms_tablet_list_free(&l);

  heartbeat_reply(&c, ia, &r);
  CU_ASSERT_EQUAL(r.n_merged, 0);
  ms_server_reply_free(&r);
  heartbeat_reply(&c, ib, &r);
  CU_ASSERT_EQUAL_FATAL(r.n_merged, 1);
  CU_ASSERT_EQUAL(r.merged[0].input_id, b);
  CU_ASSERT_EQUAL(r.merged[0].merged.tablet_id, merged);
  CU_ASSERT(r.merged[0].merged.has_location);
  CU_ASSERT_EQUAL(r.merged[0].merged.server_id, c.s[ia].id);
  CU_ASSERT_STRING_EQUAL(r.merged[0].merged.address, c.s[ia].addr);
  ms_server_reply_free(&r);
  /* Told once. */
  heartbeat_reply(&c, ib, &r);
  CU_ASSERT_EQUAL(r.n_merged, 0);
  ms_server_reply_free(&r);
  sim_check(&c);
  sim_free(&c);
}

/* Servers announce an HTTP address: listed, logged (kept across a
 * restart), changed by an adopted re-registration, bounded in size. */
static void test_server_http_address(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0); /* the sim announces its RPC address */
  ms_server_reply r;
  TU_OK(ms_handle_register(c.m, "127.0.0.1:7101", "127.0.0.1:7201", 0, 77,
                           NULL, 0, c.now, &r));
  uint64_t id = r.server_id;
  ms_server_reply_free(&r);
  TU_OK(ms_handle_register(c.m, "127.0.0.1:7102", NULL, 0, 78, NULL, 0,
                           c.now, &r));
  uint64_t id_none = r.server_id;
  ms_server_reply_free(&r);
  char big[1100];
  memset(big, 'h', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  TU_ERR(ms_handle_register(c.m, "127.0.0.1:7103", big, 0, 79, NULL, 0, c.now,
                            &r),
         MICA_INVALID_ARGUMENT);

  for (int round = 0; round < 3; round++) {
    ms_server_info *si;
    size_t n;
    TU_OK(ms_list_servers(c.m, false, c.now, &si, &n));
    CU_ASSERT_EQUAL(n, 3);
    for (size_t i = 0; i < n; i++) {
      const char *want = si[i].server_id == id
                             ? (round < 2 ? "127.0.0.1:7201"
                                          : "127.0.0.1:7301")
                         : si[i].server_id == id_none ? ""
                                                      : c.s[0].addr;
      CU_ASSERT_STRING_EQUAL(si[i].http_address, want);
    }
    ms_server_infos_free(si, n);
    if (round == 1) {
      /* The same process (id and incarnation) with another address. */
      TU_OK(ms_handle_register(c.m, "127.0.0.1:7101", "127.0.0.1:7301", id,
                               77, NULL, 0, c.now, &r));
      CU_ASSERT_EQUAL(r.server_id, id);
      ms_server_reply_free(&r);
    }
    sim_restart(&c); /* asserts the durable state survives byte for byte */
  }
  sim_free(&c);
}

/* A merge whose input's server dies half way is abandoned: nothing is
 * lost, the surviving input goes back to work, the other is reassigned. */
static void test_merge_interrupted(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  sim_split_at(&c, "t", "m", NULL, NULL);
  sim_start_server(&c, 1);
  ms_tablet_list l = tablets_of(&c, "t");
  ms_move mv;
  TU_OK(ms_request_move(c.m, l.v[1].tablet_id, c.s[1].id, c.now, &mv));
  sim_settle(&c, 5);
  TU_OK(ms_request_merge(c.m, l.v[0].tablet_id, l.v[1].tablet_id, c.now));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 2);
  /* Server 0 closes its input; server 1 is partitioned and never answers. */
  ms_action_list one = {a.v, 0};
  for (size_t i = 0; i < a.n; i++)
    if (a.v[i].server_id == c.s[0].id) {
      ms_action tmp = a.v[0];
      a.v[0] = a.v[i];
      a.v[i] = tmp;
      one.n = 1;
    }
  CU_ASSERT_EQUAL_FATAL(one.n, 1);
  c.s[1].up = false;
  sim_perform(&c, &one);
  ms_action_list_free(&a);
  sim_advance(&c, c.o.lease_us + c.o.lease_margin_us + 3 * SIM_SEC);
  CU_ASSERT(sim_count_events(&c, "server_dead", NULL) > 0);
  ms_tablet_list now = tablets_of(&c, "t");
  CU_ASSERT_EQUAL(now.n, 2); /* no merge happened */
  for (size_t i = 0; i < now.n; i++) {
    CU_ASSERT_EQUAL(now.v[i].state, MS_SERVING);
    CU_ASSERT_EQUAL(now.v[i].server_id, c.s[0].id);
  }
  ms_tablet_list_free(&now);
  ms_tablet_list_free(&l);
  sim_check(&c);
  sim_restart(&c);
  sim_free(&c);
}

/* Dropping a table while one of its tablets is moving and another opening
 * still ends with the table gone and nothing served. */
static void test_drop_during_transitions(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  slice keys[] = {S("m")};
  TU_OK(ms_create_table(c.m, "t", keys, 1, c.now, NULL));
  sim_settle(&c, 5);
  ms_tablet_list l = tablets_of(&c, "t");
  ms_move mv;
  TU_OK(ms_request_move(c.m, l.v[0].tablet_id, 0, c.now, &mv));
  ms_tablet_list_free(&l);
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a)); /* the move's close, not yet answered */
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  TU_OK(ms_drop_table(c.m, "t", c.now));
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  sim_settle(&c, 10);
  CU_ASSERT_EQUAL(c.deletes, 1);
  CU_ASSERT_EQUAL(c.s[0].n + c.s[1].n, 0);
  l = tablets_of(&c, NULL);
  CU_ASSERT_EQUAL(l.n, 0);
  ms_tablet_list_free(&l);
  sim_check(&c);
  sim_restart(&c);
  sim_free(&c);
}

/* ---- balancer ---- */

static void count_per_server(sim *c, int *per) {
  for (int i = 0; i < c->ns; i++) per[i] = sim_count_on(c, c->s[i].id);
}

static void test_balancer(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false, on = true;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  slice keys[11];
  char kb[11][16];
  for (int i = 0; i < 11; i++) {
    snprintf(kb[i], sizeof(kb[i]), "k%02d", i);
    keys[i] = S(kb[i]);
  }
  TU_OK(ms_create_table(c.m, "t", keys, 11, c.now, NULL));
  sim_settle(&c, 5);
  sim_start_server(&c, 1);
  sim_start_server(&c, 2);
  int per[3];
  count_per_server(&c, per);
  CU_ASSERT_EQUAL(per[0], 12);

  /* Dry run: the whole plan, and nothing changes. */
  buf before = BUF_INIT, after = BUF_INIT;
  ms_dump_durable(c.m, &before);
  ms_move *plan;
  size_t n;
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  ms_dump_durable(c.m, &after);
  CU_ASSERT(slice_eq(buf_slice(&before), buf_slice(&after)));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, 0);
  ms_action_list_free(&a);
  /* 12/0/0 with mean 4 and a band of +-1: seven moves give 5/4/3. */
  CU_ASSERT_EQUAL(n, 7);
  int sim_per[3] = {12, 0, 0};
  for (size_t i = 0; i < n; i++) {
    CU_ASSERT_EQUAL(plan[i].from_server_id, c.s[0].id);
    CU_ASSERT(strlen(plan[i].reason) > 0);
    sim_per[sim_find(&c, plan[i].from_server_id)]--;
    sim_per[sim_find(&c, plan[i].to_server_id)]++;
  }
  for (int i = 0; i < 3; i++) CU_ASSERT(sim_per[i] >= 3 && sim_per[i] <= 5);
  free(plan);

  /* Switched on: at most max_moves_in_flight moves at a time. */
  TU_OK(ms_configure(c.m, &on, NULL, NULL, NULL));
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, c.o.max_moves_in_flight);
  for (size_t i = 0; i < a.n; i++) CU_ASSERT_EQUAL(a.v[i].type, MS_ACT_CLOSE);
  ms_action_list_free(&a);
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, 0); /* the closes are still out */
  ms_action_list_free(&a);
  TU_OK(ms_balance(c.m, false, c.now, &plan, &n));
  CU_ASSERT_EQUAL(n, 0);
  free(plan);
  /* Their outcomes never come back (the RPC layer lost them): after the
   * action timeout the same closes are sent again. */
  for (uint64_t t = 0; t <= c.o.action_timeout_us; t += SIM_SEC) {
    c.now += SIM_SEC;
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(sim_heartbeat(&c, i), MICA_OK);
  }
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, c.o.max_moves_in_flight);
  for (size_t i = 0; i < a.n; i++) CU_ASSERT_EQUAL(a.v[i].type, MS_ACT_CLOSE);
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  for (int round = 0; round < 20; round++) sim_advance(&c, SIM_SEC);
  count_per_server(&c, per);
  for (int i = 0; i < 3; i++) CU_ASSERT(per[i] >= 3 && per[i] <= 5);
  CU_ASSERT_EQUAL(per[0] + per[1] + per[2], 12);
  CU_ASSERT(sim_count_events(&c, "move", NULL) > 0);
  /* Many more events than the ring holds: it keeps the newest. */
  for (int i = 0; i < 100; i++) {
    bool flip = i % 2;
    TU_OK(ms_configure(c.m, NULL, &flip, NULL, NULL));
  }
  ms_event *ev;
  size_t nev;
  ms_events(c.m, 0, &ev, &nev);
  CU_ASSERT_EQUAL(nev, c.o.event_capacity);
  CU_ASSERT_STRING_EQUAL(ev[0].kind, "configure");
  CU_ASSERT_PTR_NOT_NULL(strstr(ev[0].text, "merges on"));
  free(ev);
  TU_OK(ms_configure(c.m, NULL, &off, NULL, NULL));

  /* Equal counts, skewed bytes: the heaviest server gives up a big tablet
   * while counts stay in band. */
  sim_set_stats(&c, 0, 1ull << 30, 0);
  sim_set_stats(&c, 1, 1ull << 20, 0);
  sim_set_stats(&c, 2, 1ull << 20, 0);
  TU_OK(ms_configure(c.m, &off, NULL, NULL, NULL));
  sim_advance(&c, SIM_SEC);
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  CU_ASSERT(n >= 1);
  for (size_t i = 0; i < n; i++)
    CU_ASSERT_EQUAL(plan[i].from_server_id, c.s[0].id);
  free(plan);
  TU_OK(ms_configure(c.m, &on, NULL, NULL, NULL));
  for (int round = 0; round < 10; round++) sim_advance(&c, SIM_SEC);
  count_per_server(&c, per);
  CU_ASSERT(per[0] < 4);
  for (int i = 0; i < 3; i++) CU_ASSERT(per[i] >= 3 && per[i] <= 5);
  /* Settled: nothing more to do. */
  TU_OK(ms_balance(c.m, true, c.now, &plan, &n));
  CU_ASSERT_EQUAL(n, 0);
  free(plan);
  buf_free(&before);
  buf_free(&after);
  sim_check(&c);
  sim_free(&c);
}

/* ---- restart ---- */

static void setup_cluster(sim *c, int servers, int splits) {
  bool off = false;
  TU_OK(ms_configure(c->m, NULL, &off, NULL, NULL));
  for (int i = 0; i < servers; i++) sim_start_server(c, i);
  slice keys[32];
  char kb[32][16];
  for (int i = 0; i < splits; i++) {
    snprintf(kb[i], sizeof(kb[i]), "s%02d", i);
    keys[i] = S(kb[i]);
  }
  TU_OK(ms_create_table(c->m, "t", keys, (size_t)splits, c->now, NULL));
  sim_advance(c, 2 * SIM_SEC);
  CU_ASSERT_EQUAL(count_state(c, MS_SERVING), splits + 1);
}

/* A clock that jumps `jump_us` ahead at every reading, so a master opened
 * on it sees its log replay take at least that long. */
static struct env_ops jump_ops;
static env jump_env;
static uint64_t jump_us;
static int jump_reads;

static uint64_t jump_now(env *e) {
  (void)e;
  return env_now_micros(env_posix()) + jump_us * (uint64_t)++jump_reads;
}

/* A replay that takes longer than a lease and its margin (the master's
 * log on S3 under load): the known servers' leases count from its end,
 * as the grace period does, so their first heartbeats keep them live
 * (they were declared dead: test_cluster_failover_s3). */
static void test_restart_slow_replay(void) {
  sim c;
  sim_init(&c, NULL);
  setup_cluster(&c, 3, 4);
  jump_ops = *env_posix()->ops;
  jump_ops.now_micros = jump_now;
  jump_env.ops = &jump_ops;
  jump_us = c.o.lease_us + c.o.lease_margin_us + 2 * SIM_SEC;
  jump_reads = 0;
  c.o.env = &jump_env;
  c.now += SIM_SEC;
  sim_restart(&c);
  /* A heartbeat 1 s after the shortest replay the clock allows. */
  c.now += jump_us + SIM_SEC;
  CU_ASSERT_TRUE(ms_in_grace(c.m, c.now));
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(sim_heartbeat(&c, i), MICA_OK);
  sim_advance(&c, c.o.lease_us + c.o.lease_margin_us + 2 * SIM_SEC);
  CU_ASSERT_FALSE(ms_in_grace(c.m, c.now));
  CU_ASSERT_EQUAL(sim_count_events(&c, "server_dead", NULL), 0);
  sim_free(&c);
}

static void test_restart_no_storm(void) {
  sim c;
  sim_init(&c, NULL);
  setup_cluster(&c, 3, 8);
  buf d1 = BUF_INIT, d2 = BUF_INIT;
  ms_dump_durable(c.m, &d1);
  c.now += 3 * SIM_SEC;
  sim_restart(&c);
  CU_ASSERT_TRUE(ms_in_grace(c.m, c.now));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL(a.n, 0);
  ms_action_list_free(&a);
  /* Two servers re-register; the third just keeps heartbeating. */
  sim_reregister(&c, 0);
  sim_reregister(&c, 1);
  CU_ASSERT_EQUAL(sim_heartbeat(&c, 2), MICA_OK);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(c.s[i].n, 3);
  c.opens = c.closes = 0;
  sim_advance(&c, c.o.lease_us + c.o.lease_margin_us + 2 * SIM_SEC);
  CU_ASSERT_FALSE(ms_in_grace(c.m, c.now));
  CU_ASSERT_EQUAL(c.opens, 0);
  CU_ASSERT_EQUAL(c.closes, 0);
  ms_dump_durable(c.m, &d2);
  CU_ASSERT(slice_eq(buf_slice(&d1), buf_slice(&d2)));
  CU_ASSERT(sim_count_events(&c, "reconcile", NULL) > 0);
  buf_free(&d1);
  buf_free(&d2);
  sim_check(&c);
  sim_free(&c);
}

static void test_restart_reconciles(void) {
  sim c;
  sim_init(&c, NULL);
  setup_cluster(&c, 3, 8);
  uint64_t gone = c.s[2].id;
  CU_ASSERT_EQUAL(sim_count_on(&c, gone), 3);

  /* A tablet in flight at the crash: opening on server 0, which (as far as
   * the new master learns) already serves it. */
  TU_OK(ms_create_table(c.m, "u", NULL, 0, c.now, NULL));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  int oi = sim_find(&c, a.v[0].server_id);
  sim_served *x = &c.s[oi].served[c.s[oi].n++];
  memset(x, 0, sizeof(*x));
  x->ref = (ms_ref){a.v[0].tablet.tablet_id, a.v[0].tablet.range_epoch,
                    a.v[0].tablet.assign_epoch};
  uint64_t inflight = a.v[0].tablet.tablet_id;
  ms_action_list_free(&a);
  /* Another open in flight at the crash, which its server completes only
   * after reporting to the new master without it. */
  TU_OK(ms_create_table(c.m, "v", NULL, 0, c.now, NULL));
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 1);
  int li = sim_find(&c, a.v[0].server_id);
  CU_ASSERT_FATAL(li == 0 || li == 1);
  ms_ref late = {a.v[0].tablet.tablet_id, a.v[0].tablet.range_epoch,
                 a.v[0].tablet.assign_epoch};
  ms_action_list_free(&a);

  /* Restart; server 2 never comes back; server 1 also reports a tablet
   * that is not its own. */
  c.s[2].up = false;
  sim_restart(&c);
  sim_served *bogus = &c.s[1].served[c.s[1].n++];
  memset(bogus, 0, sizeof(*bogus));
  bogus->ref = c.s[0].served[0].ref;
  ms_report rep[SIM_MAX_SERVED];
  for (int k = 0; k < c.s[1].n; k++) {
    rep[k].ref = c.s[1].served[k].ref;
    rep[k].stats = c.s[1].served[k].stats;
  }
  ms_server_reply r;
  TU_OK(ms_handle_register(c.m, c.s[1].addr, NULL, c.s[1].id, c.s[1].inc, rep,
                           (size_t)c.s[1].n, c.now, &r));
  CU_ASSERT_EQUAL(r.server_id, c.s[1].id);
  CU_ASSERT_EQUAL_FATAL(r.n_close, 1);
  CU_ASSERT_EQUAL(r.close[0].tablet_id, bogus->ref.tablet_id);
  ms_server_reply_free(&r);
  c.s[1].n--;
  sim_reregister(&c, 0);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, inflight, &t));
  CU_ASSERT_EQUAL(t.state, MS_SERVING); /* confirmed, no second open */
  ms_tablet_clear(&t);

  /* During the grace period nothing is reassigned, not even the silent
   * server's tablets (its lease from the old master may still run), and
   * operator moves wait too. */
  ms_tablet_list some = tablets_of(&c, "t");
  ms_move mv;
  TU_ERR(ms_request_move(c.m, some.v[0].tablet_id, 0, c.now, &mv),
         MICA_UNAVAILABLE);
  ms_move *plan;
  size_t np;
  TU_ERR(ms_balance(c.m, false, c.now, &plan, &np), MICA_UNAVAILABLE);
  TU_OK(ms_balance(c.m, true, c.now, &plan, &np));
  free(plan);
  ms_tablet_list_free(&some);
  c.opens = 0;
  sim_served *y = &c.s[li].served[c.s[li].n++];
  memset(y, 0, sizeof(*y));
  y->ref = late;
  y->hidden = true; /* the late open completes, unreported */
  sim_advance(&c, c.o.lease_us);
  CU_ASSERT_EQUAL(c.opens, 0);
  CU_ASSERT_EQUAL(sim_count_on(&c, gone), 3);
  /* At the end of the grace period the unconfirmed tablet is closed on its
   * server before it goes anywhere (sim_advance checks fencing). */
  c.closes = 0;
  sim_advance(&c, c.o.lease_margin_us + 2 * SIM_SEC);
  CU_ASSERT_EQUAL(c.closes, 1);
  CU_ASSERT_EQUAL(c.opens, 4);
  CU_ASSERT_EQUAL(sim_count_on(&c, gone), 0);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 11);
  sim_check(&c);
  sim_free(&c);
}

/* ---- lookups ---- */

static void expect_range(const ms_tablet *t, const char *start,
                         const char *end) {
  CU_ASSERT(slice_eq(buf_slice(&t->start_key), S(start)));
  CU_ASSERT(slice_eq(buf_slice(&t->end_key), S(end)));
}

static void test_lookups(void) {
  sim c;
  sim_init(&c, NULL);
  slice keys[] = {S("b"), S("d"), S("f")};
  TU_OK(ms_create_table(c.m, "t", keys, 3, c.now, NULL));
  ms_tablet_list l = {0};
  TU_ERR(ms_lookup(c.m, "nope", S("a"), 1, &l), MICA_NOT_FOUND);
  TU_ERR(ms_lookup_before(c.m, "nope", S("a"), 1, &l), MICA_NOT_FOUND);
  TU_OK(ms_lookup(c.m, "t", S("c"), 1, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  expect_range(&l.v[0], "b", "d");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup(c.m, "t", S("c"), 3, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 3);
  expect_range(&l.v[2], "f", "");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup(c.m, "t", S("d"), 0, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  expect_range(&l.v[0], "d", "f");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup(c.m, "t", NOKEY, 2, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 2);
  expect_range(&l.v[0], "", "b");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup(c.m, "t", S("zzz"), 5, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  expect_range(&l.v[0], "f", "");
  ms_tablet_list_free(&l);

  TU_OK(ms_lookup_before(c.m, "t", S("c"), 2, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 2);
  expect_range(&l.v[0], "b", "d");
  expect_range(&l.v[1], "", "b");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup_before(c.m, "t", S("d"), 1, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  expect_range(&l.v[0], "b", "d");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup_before(c.m, "t", NOKEY, 10, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 4);
  expect_range(&l.v[0], "f", "");
  expect_range(&l.v[3], "", "b");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup_before(c.m, "t", S("b"), 3, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  expect_range(&l.v[0], "", "b");
  ms_tablet_list_free(&l);
  TU_OK(ms_lookup_before(c.m, "t", S("a"), 1, &l));
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  expect_range(&l.v[0], "", "b");
  ms_tablet_list_free(&l);
  sim_free(&c);
}

/* ---- log failures ---- */

static void test_log_failures(void) {
  env_fault *f = env_fault_new(env_posix());
  sim c;
  sim_init(&c, env_fault_env(f));
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "a", NULL, 0, c.now, NULL));

  /* A failed sync: the table does not exist and the error is returned. */
  env_fault_fail_nth(f, ENV_OP_SYNC, 1, false);
  TU_ERR(ms_create_table(c.m, "b", NULL, 0, c.now, NULL), MICA_IO_ERROR);
  ms_tablet_list l = {0};
  TU_ERR(ms_lookup(c.m, "b", NOKEY, 1, &l), MICA_NOT_FOUND);

  /* A failed sync during a tick: the tablet stays unassigned, no action. */
  env_fault_fail_nth(f, ENV_OP_SYNC, 1, false);
  ms_action_list a = {0};
  TU_ERR(ms_tick(c.m, c.now, &a), MICA_IO_ERROR);
  CU_ASSERT_EQUAL(a.n, 0);
  ms_action_list_free(&a);
  CU_ASSERT_EQUAL(count_state(&c, MS_UNASSIGNED), 1);
  /* Disk full: the same, with its own code. */
  env_fault_set_disk_full(f, true);
  TU_ERR(ms_create_table(c.m, "c", NULL, 0, c.now, NULL),
         MICA_RESOURCE_EXHAUSTED);
  env_fault_set_disk_full(f, false);
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 1);
  TU_OK(ms_create_table(c.m, "b", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);

  /* Outcomes reported together: a failed sync leaves the tablets opening,
   * and their opens are sent again (same epoch). */
  slice k2[] = {S("g"), S("p")};
  TU_OK(ms_create_table(c.m, "e", k2, 2, c.now, NULL));
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 3);
  env_fault_fail_nth(f, ENV_OP_SYNC, 1, false);
  mica_err *e = sim_perform_err(&c, &a, true);
  CU_ASSERT_EQUAL(err_code(e), MICA_IO_ERROR);
  err_free(e);
  ms_action_list_free(&a);
  CU_ASSERT_EQUAL(count_state(&c, MS_OPENING), 3);
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT_EQUAL_FATAL(a.n, 3);
  for (size_t i = 0; i < a.n; i++) {
    CU_ASSERT_EQUAL(a.v[i].type, MS_ACT_OPEN);
    CU_ASSERT_EQUAL(a.v[i].tablet.assign_epoch, 1);
  }
  TU_OK(sim_perform_err(&c, &a, true));
  ms_action_list_free(&a);
  CU_ASSERT_EQUAL(count_state(&c, MS_OPENING), 0);

  /* Power loss: everything acknowledged survives. */
  buf before = BUF_INIT, after = BUF_INIT;
  ms_dump_durable(c.m, &before);
  env_fault_crash(f);
  TU_ERR(ms_create_table(c.m, "lost", NULL, 0, c.now, NULL), MICA_IO_ERROR);
  ms_close(c.m);
  env_fault_free(f);
  c.o.env = env_posix();
  TU_OK(ms_open(&c.o, c.now, &c.m));
  ms_dump_durable(c.m, &after);
  CU_ASSERT(slice_eq(buf_slice(&before), buf_slice(&after)));
  TU_OK(ms_lookup(c.m, "b", NOKEY, 1, &l));
  ms_tablet_list_free(&l);
  buf_free(&before);
  buf_free(&after);
  sim_free(&c);
}

/* A state that no longer fits its log is CORRUPTION at open, naming the
 * file and offset. */
static void test_replay_rejects_bad_record(void) {
  sim c;
  sim_init(&c, NULL);
  const char *root = c.o.data_root;
  TU_OK(ms_create_table(c.m, "a", NULL, 0, c.now, NULL));
  sim_free(&c);
  TU_OK(ms_open(&c.o, c.now, &c.m));
  TU_OK(ms_create_table(c.m, "b", NULL, 0, c.now, NULL));
  ms_close(c.m);
  char **names;
  size_t n;
  char dir[4200];
  char *mdir = layout_master_dir(root);
  snprintf(dir, sizeof(dir), "%s", mdir);
  free(mdir);
  TU_OK(env_list(env_posix(), dir, &names, &n));
  char log[4400] = "";
  for (size_t i = 0; i < n; i++)
    if (strncmp(names[i], "log-", 4) == 0)
      snprintf(log, sizeof(log), "%s/%s", dir, names[i]);
  env_free_names(names, n);
  buf f = BUF_INIT;
  TU_OK(env_read_file(env_posix(), log, 1 << 20, &f));
  /* Append a second, well-formed copy of the create record: the name is
   * taken, so replay must refuse it. */
  size_t rec_len = f.len - 24;
  buf_append(&f, f.data + 24, rec_len);
  TU_OK(env_write_file_atomic(env_posix(), log, buf_slice(&f)));
  mica_err *e = ms_open(&c.o, c.now, &c.m);
  CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
  char where[64];
  snprintf(where, sizeof(where), "offset %zu", 24 + rec_len);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), where));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "already exists"));
  err_free(e);
  buf_free(&f);
}

/* ---- random operation sequences ---- */

static void random_split(sim *c) {
  ms_tablet_list l = tablets_of(c, NULL);
  if (l.n == 0) {
    ms_tablet_list_free(&l);
    return;
  }
  ms_tablet *p = &l.v[tu_rand_below(l.n)];
  char key[4] = {(char)('a' + tu_rand_below(8)), (char)('a' + tu_rand_below(8)),
                 (char)('a' + tu_rand_below(8)), 0};
  key[1 + tu_rand_below(2)] = 0;
  int si = sim_find(c, p->server_id);
  ms_ref ref = {p->tablet_id, p->range_epoch, p->assign_epoch};
  ms_tablet_list d = {0};
  mica_err *e = ms_handle_split(c->m, p->server_id, ref, S(key), c->now, &d);
  int code = err_take_code(e);
  CU_ASSERT(code == MICA_OK || code == MICA_OUT_OF_RANGE ||
            code == MICA_UNAVAILABLE || code == MICA_LEASE_EXPIRED ||
            code == MICA_STALE_EPOCH || code == MICA_NOT_FOUND);
  if (code == MICA_OK && si >= 0) {
    sim_srv *s = &c->s[si];
    for (int k = 0; k < s->n; k++)
      if (s->served[k].ref.tablet_id == ref.tablet_id)
        s->served[k] = s->served[--s->n];
    for (int i = 0; i < 2; i++) {
      sim_served *x = &s->served[s->n++];
      memset(x, 0, sizeof(*x));
      x->ref = (ms_ref){d.v[i].tablet_id, d.v[i].range_epoch,
                      d.v[i].assign_epoch};
    }
  }
  ms_tablet_list_free(&d);
  ms_tablet_list_free(&l);
}

static void random_run(uint64_t steps) {
  sim c;
  sim_init(&c, NULL);
  c.o.snapshot_bytes = 1500; /* roll often: restarts land after snapshots */
  c.o.merge_min_age_us = 5 * SIM_SEC;
  c.o.merge_max_bytes = 1000;
  c.o.balance_min_bytes = 1;
  sim_restart(&c);
  const char *names[] = {"t0", "t1", "t2", "t 3"};
  for (uint64_t step = 0; step < steps; step++) {
    int op = (int)tu_rand_below(15);
    c.net_delay = tu_rand_below(2 * SIM_SEC);
    switch (op) {
      case 0: {
        slice keys[4];
        char kb[4][3];
        size_t n = tu_rand_below(5);
        for (size_t i = 0; i < n; i++) {
          kb[i][0] = (char)('a' + tu_rand_below(8));
          kb[i][1] = (char)('a' + tu_rand_below(8));
          kb[i][2] = 0;
          keys[i] = S(kb[i]);
        }
        int code = err_take_code(ms_create_table(
            c.m, names[tu_rand_below(4)], keys, n, c.now, NULL));
        CU_ASSERT(code == MICA_OK || code == MICA_ALREADY_EXISTS ||
                  code == MICA_INVALID_ARGUMENT);
        break;
      }
      case 1: {
        int code = err_take_code(ms_drop_table(c.m, names[tu_rand_below(3)],
                                               c.now));
        CU_ASSERT(code == MICA_OK || code == MICA_NOT_FOUND);
        break;
      }
      case 2:
        if (c.ns < 5) sim_start_server(&c, c.ns);
        break;
      case 3: {
        if (c.ns == 0) break;
        int i = (int)tu_rand_below((uint64_t)c.ns);
        c.s[i].up = !c.s[i].up;
        break;
      }
      case 4:
      case 5:
        random_split(&c);
        break;
      case 6: {
        ms_tablet_list l = tablets_of(&c, NULL);
        if (l.n && c.ns) {
          ms_move mv;
          int code = err_take_code(ms_request_move(
              c.m, l.v[tu_rand_below(l.n)].tablet_id,
              tu_rand_below(3) ? c.s[tu_rand_below((uint64_t)c.ns)].id : 0,
              c.now, &mv));
          CU_ASSERT(code == MICA_OK || code == MICA_UNAVAILABLE ||
                    code == MICA_INVALID_ARGUMENT || code == MICA_NOT_FOUND);
        }
        ms_tablet_list_free(&l);
        break;
      }
      case 7: {
        ms_tablet_list l = tablets_of(&c, NULL);
        if (l.n >= 2) {
          size_t i = tu_rand_below(l.n - 1);
          int code = err_take_code(ms_request_merge(
              c.m, l.v[i].tablet_id, l.v[i + 1].tablet_id, c.now));
          CU_ASSERT(code == MICA_OK || code == MICA_UNAVAILABLE ||
                    code == MICA_INVALID_ARGUMENT);
        }
        ms_tablet_list_free(&l);
        break;
      }
      case 8: {
        ms_move *plan;
        size_t n;
        bool grace = ms_in_grace(c.m, c.now), dry = tu_rand_below(2);
        int code = err_take_code(ms_balance(c.m, dry, c.now, &plan, &n));
        CU_ASSERT(code == MICA_OK ||
                  (code == MICA_UNAVAILABLE && grace && !dry));
        free(plan);
        break;
      }
      case 9: {
        bool b = tu_rand_below(2), mg = tu_rand_below(2);
        TU_OK(ms_configure(c.m, &b, &mg, NULL, NULL));
        break;
      }
      case 10:
        sim_restart(&c);
        if (tu_rand_below(2)) sim_restart(&c); /* right after its snapshot */
        for (int i = 0; i < c.ns; i++)
          if (c.s[i].up && tu_rand_below(2)) {
            mica_err *e = NULL;
            ms_report rep[SIM_MAX_SERVED];
            for (int k = 0; k < c.s[i].n; k++) {
              rep[k].ref = c.s[i].served[k].ref;
              rep[k].stats = c.s[i].served[k].stats;
            }
            ms_server_reply r;
            e = ms_handle_register(c.m, c.s[i].addr, NULL, c.s[i].id, c.s[i].inc,
                                   rep, (size_t)c.s[i].n, c.now, &r);
            if (e == NULL) {
              for (size_t k = 0; k < r.n_close; k++)
                for (int j = 0; j < c.s[i].n; j++)
                  if (c.s[i].served[j].ref.tablet_id == r.close[k].tablet_id) {
                    c.s[i].served[j] = c.s[i].served[--c.s[i].n];
                    break;
                  }
              c.s[i].lease_until = c.now - c.net_delay + r.lease_ms * 1000;
              ms_server_reply_free(&r);
            }
            err_free(e);
          }
        break;
      case 12: {
        /* Servers that refuse, or whose answers get lost. */
        static const int codes[] = {MICA_OK, MICA_OK, MICA_INTERNAL,
                                    MICA_DEADLINE_EXCEEDED, MICA_UNAVAILABLE};
        if (c.ns == 0) break;
        int i = (int)tu_rand_below((uint64_t)c.ns);
        c.s[i].open_err = codes[tu_rand_below(5)];
        c.s[i].close_err = codes[tu_rand_below(5)];
        break;
      }
      case 11:
        for (int i = 0; i < c.ns; i++)
          sim_set_stats(&c, i, tu_rand_below(3000), (double)tu_rand_below(2));
        break;
      default:
        sim_advance(&c, tu_rand_below(4 * SIM_SEC) + 1);
        break;
    }
    sim_advance(&c, tu_rand_below(SIM_SEC / 2) + 1);
    sim_check(&c);
    sim_check_fencing(&c);
  }
  /* Calm: every server up, time passes; every tablet of every live table is
   * served, spread within the band. */
  if (c.ns == 0) sim_start_server(&c, 0);
  for (int i = 0; i < c.ns; i++) {
    c.s[i].up = true;
    c.s[i].open_err = c.s[i].close_err = MICA_OK;
  }
  bool on = true, off = false;
  TU_OK(ms_configure(c.m, &on, &off, NULL, NULL));
  sim_advance(&c, c.o.lease_us + c.o.lease_margin_us + 30 * SIM_SEC);
  ms_tablet_list l = tablets_of(&c, NULL);
  for (size_t i = 0; i < l.n; i++) CU_ASSERT_EQUAL(l.v[i].state, MS_SERVING);
  ms_tablet_list_free(&l);
  sim_check(&c);
  sim_restart(&c);
  sim_free(&c);
}

static void test_random_sequences(void) {
  for (int run = 0; run < 10; run++) random_run(400);
}

/* ---- concurrency ---- */

typedef struct reader_arg {
  ms *m;
  volatile int *stop;
  uint64_t lookups;
  int bad;
} reader_arg;

static void *reader(void *p) {
  reader_arg *a = p;
  while (!*a->stop) {
    char key[3] = {(char)('a' + a->lookups % 26), (char)('a' + a->lookups / 26 % 26), 0};
    ms_tablet_list l = {0};
    mica_err *e = ms_lookup(a->m, "t", S(key), 3, &l);
    if (e == NULL) {
      /* Whatever instant it saw, the answer is contiguous from the tablet
       * holding the key. */
      if (l.n == 0 || slice_cmp(buf_slice(&l.v[0].start_key), S(key)) > 0)
        a->bad++;
      for (size_t i = 1; i < l.n; i++)
        if (!slice_eq(buf_slice(&l.v[i - 1].end_key),
                      buf_slice(&l.v[i].start_key)))
          a->bad++;
    }
    err_free(e);
    ms_tablet_list_free(&l);
    ms_server_info *si;
    size_t n;
    if (ms_list_servers(a->m, true, 0, &si, &n) == NULL)
      ms_server_infos_free(si, n);
    __atomic_add_fetch(&a->lookups, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

/* Readers look up and list while the state changes under them. */
static void test_concurrent_readers(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  volatile int stop = 0;
  reader_arg args[3];
  pthread_t th[3];
  for (int i = 0; i < 3; i++) {
    args[i] = (reader_arg){c.m, &stop, 0, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, reader, &args[i]), 0);
  }
  /* Every reader under way before the changes start: on a loaded machine
   * a new thread may not run for a while, and then the changes below
   * would all happen before it read anything. */
  for (int i = 0; i < 3; i++)
    for (int w = 0; w < 1000 && __atomic_load_n(&args[i].lookups,
                                                 __ATOMIC_RELAXED) == 0; w++)
      usleep(10000);
  for (int i = 0; i < 200; i++) {
    ms_tablet_list l = tablets_of(&c, "t");
    ms_tablet *p = &l.v[tu_rand_below(l.n)];
    char key[3] = {(char)('a' + tu_rand_below(26)), (char)('a' + tu_rand_below(26)), 0};
    ms_tablet_list d = {0};
    ms_ref ref = {p->tablet_id, p->range_epoch, p->assign_epoch};
    /* A key outside the tablet is refused and changes nothing. */
    mica_err *e = ms_handle_split(c.m, p->server_id, ref, S(key), c.now, &d);
    if (e == NULL) {
      int si = sim_find(&c, p->server_id);
      for (int k = 0; k < c.s[si].n; k++)
        if (c.s[si].served[k].ref.tablet_id == ref.tablet_id)
          c.s[si].served[k] = c.s[si].served[--c.s[si].n];
      for (int k = 0; k < 2; k++) {
        sim_served *x = &c.s[si].served[c.s[si].n++];
        memset(x, 0, sizeof(*x));
        x->ref = (ms_ref){d.v[k].tablet_id, d.v[k].range_epoch,
                          d.v[k].assign_epoch};
      }
    }
    err_free(e);
    ms_tablet_list_free(&d);
    ms_tablet_list_free(&l);
    sim_advance(&c, SIM_SEC / 4);
  }
  stop = 1;
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(args[i].bad, 0);
    CU_ASSERT(args[i].lookups > 0);
  }
  sim_check(&c);
  sim_free(&c);
}

/* ---- issue 12 section 3: answers that match the proto ---- */

/* The newest event of `kind`, copied into *out; false when there is none. */
static bool last_event(sim *c, const char *kind, ms_event *out) {
  ms_event *ev;
  size_t n;
  ms_events(c->m, 0, &ev, &n);
  bool found = false;
  for (size_t i = 0; i < n && !found; i++)
    if (strcmp(ev[i].kind, kind) == 0) {
      *out = ev[i];
      found = true;
    }
  free(ev);
  return found;
}

/* Assign events carry the server their text names, for one tablet, for
 * many on one server, and for many spread over several. */
static void test_assign_event_names_server(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "one", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  ms_event e;
  char want[64];
  CU_ASSERT_FATAL(last_event(&c, "assign", &e));
  CU_ASSERT_EQUAL(e.server_id, c.s[0].id);
  CU_ASSERT_NOT_EQUAL(e.tablet_id, 0);
  snprintf(want, sizeof want, "server %" PRIu64, c.s[0].id);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.text, want));

  slice k3[] = {S("a"), S("b"), S("c")};
  TU_OK(ms_create_table(c.m, "many", k3, 3, c.now, NULL));
  sim_settle(&c, 5);
  CU_ASSERT_FATAL(last_event(&c, "assign", &e));
  CU_ASSERT_EQUAL(e.server_id, c.s[0].id);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.text, "4 tablets"));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.text, want));

  sim_start_server(&c, 1);
  TU_OK(ms_create_table(c.m, "spread", k3, 3, c.now, NULL));
  sim_settle(&c, 5);
  CU_ASSERT_FATAL(last_event(&c, "assign", &e));
  CU_ASSERT_NOT_EQUAL(e.server_id, 0);
  snprintf(want, sizeof want, "to server %" PRIu64, e.server_id);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.text, want));
  sim_check(&c);
  sim_free(&c);
}

/* ListTablets gives every figure of the last heartbeat, counters too. */
static void test_stats_from_heartbeat(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "st", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL_FATAL(c.s[0].n, 1);
  ms_stats *x = &c.s[0].served[0].stats;
  *x = (ms_stats){.bytes = 4096, .keys = 12, .read_rate = 1.5,
                  .write_rate = 2.5, .reads = 7, .writes = 166,
                  .read_bytes = 700, .write_bytes = 16600, .scans = 3,
                  .memtable_bytes = 2048, .sstable_count = 2};
  CU_ASSERT_EQUAL(sim_heartbeat(&c, 0), MICA_OK);
  ms_tablet_list l = tablets_of(&c, "st");
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  const ms_stats *y = &l.v[0].stats;
  CU_ASSERT_EQUAL(y->writes, 166);
  CU_ASSERT_EQUAL(y->reads, 7);
  CU_ASSERT_EQUAL(y->read_bytes, 700);
  CU_ASSERT_EQUAL(y->write_bytes, 16600);
  CU_ASSERT_EQUAL(y->scans, 3);
  CU_ASSERT_EQUAL(y->memtable_bytes, 2048);
  CU_ASSERT_EQUAL(y->sstable_count, 2);
  CU_ASSERT_EQUAL(y->bytes, 4096);
  ms_tablet_list_free(&l);
  sim_free(&c);
}

static uint32_t server_count(sim *c, uint64_t id) {
  ms_server_info *v;
  size_t n;
  TU_OK(ms_list_servers(c->m, false, c->now, &v, &n));
  uint32_t count = UINT32_MAX;
  for (size_t i = 0; i < n; i++)
    if (v[i].server_id == id) count = v[i].tablet_count;
  ms_server_infos_free(v, n);
  return count;
}

/* Per-server tablet counts drop with a dropped table at once, while its
 * tablets are still closing, and stay right once they are closed. */
static void test_drop_leaves_server_counts(void) {
  sim c;
  sim_init(&c, NULL);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  TU_OK(ms_create_table(c.m, "keep", NULL, 0, c.now, NULL));
  enum { N = 300 };
  slice *keys = xcalloc(N, sizeof(*keys));
  char (*kb)[8] = xcalloc(N, sizeof(*kb));
  for (int i = 0; i < N; i++) {
    snprintf(kb[i], sizeof kb[i], "k%04d", i);
    keys[i] = S(kb[i]);
  }
  TU_OK(ms_create_table(c.m, "big", keys, N, c.now, NULL));
  for (int r = 0; r < 100 && count_state(&c, MS_SERVING) < N + 2; r++)
    sim_advance(&c, SIM_SEC);
  CU_ASSERT_EQUAL_FATAL(count_state(&c, MS_SERVING), N + 2);
  CU_ASSERT_EQUAL(server_count(&c, c.s[0].id) + server_count(&c, c.s[1].id),
                  N + 2);

  TU_OK(ms_drop_table(c.m, "big", c.now));
  /* Nothing closed yet: the counts already leave the table out. */
  CU_ASSERT_EQUAL(server_count(&c, c.s[0].id) + server_count(&c, c.s[1].id),
                  1);
  for (int r = 0; r < 60 && c.deletes == 0; r++) sim_advance(&c, SIM_SEC);
  CU_ASSERT_EQUAL(c.deletes, 1);
  CU_ASSERT_EQUAL(c.s[0].n + c.s[1].n, 1);
  CU_ASSERT_EQUAL(server_count(&c, c.s[0].id) + server_count(&c, c.s[1].id),
                  1);
  sim_check(&c);

  /* Dropped while its opens are in flight, some of them answered with an
   * unknown outcome: the table still goes away completely. */
  TU_OK(ms_create_table(c.m, "big2", keys, N, c.now, NULL));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  CU_ASSERT(a.n > 0);
  TU_OK(ms_drop_table(c.m, "big2", c.now));
  CU_ASSERT_EQUAL(server_count(&c, c.s[0].id) + server_count(&c, c.s[1].id),
                  1);
  c.s[0].open_err = MICA_DEADLINE_EXCEEDED;
  sim_perform(&c, &a);
  ms_action_list_free(&a);
  c.s[0].open_err = MICA_OK;
  c.deletes = 0;
  for (int r = 0; r < 120 && c.deletes == 0; r++) sim_advance(&c, SIM_SEC);
  CU_ASSERT_EQUAL(c.deletes, 1);
  CU_ASSERT_EQUAL(c.s[0].n + c.s[1].n, 1);
  ms_tablet_list all = {0};
  TU_OK(ms_list_tablets(c.m, NULL, true, &all));
  CU_ASSERT_EQUAL(all.n, 1); /* only "keep"'s */
  ms_tablet_list_free(&all);
  sim_check(&c);
  free(keys);
  free(kb);
  sim_free(&c);
}

static void test_split_key_cap(void) {
  sim c;
  sim_init(&c, NULL);
  c.o.max_split_keys = 50;
  sim_restart(&c);
  slice keys[51];
  char kb[51][8];
  for (int i = 0; i < 51; i++) {
    snprintf(kb[i], sizeof kb[i], "k%03d", i);
    keys[i] = S(kb[i]);
  }
  mica_err *e = ms_create_table(c.m, "capped", keys, 51, c.now, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "cap of 50 split keys"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "--max-split-keys"));
  err_free(e);
  TU_OK(ms_create_table(c.m, "capped", keys, 50, c.now, NULL));
  sim_free(&c);
  ms_options o;
  ms_options_init(&o);
  CU_ASSERT_EQUAL(o.max_split_keys, 1000);
}

/* Counts of emitted placements (opens that are not moves) per server. */
static void count_opens(sim *c, const ms_action_list *l, int *per,
                        uint64_t skip_tablet) {
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i].type == MS_ACT_OPEN && l->v[i].tablet.tablet_id != skip_tablet)
      per[sim_find(c, l->v[i].server_id)]++;
}

/* A table of many tablets opens at most max_opens_per_server at a time
 * per server, and a move started meanwhile is neither queued behind them
 * nor starved; heartbeats keep being answered; all of it completes. */
static void test_bounded_opens(void) {
  sim c;
  sim_init(&c, NULL);
  c.o.max_opens_per_server = 4;
  sim_restart(&c);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  sim_start_server(&c, 1);
  TU_OK(ms_create_table(c.m, "small", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  ms_tablet_list l = tablets_of(&c, "small");
  uint64_t mv = l.v[0].tablet_id, from = l.v[0].server_id;
  uint64_t to = from == c.s[0].id ? c.s[1].id : c.s[0].id;
  ms_tablet_list_free(&l);

  enum { N = 199 };
  slice keys[N];
  char kb[N][8];
  for (int i = 0; i < N; i++) {
    snprintf(kb[i], sizeof kb[i], "k%03d", i);
    keys[i] = S(kb[i]);
  }
  TU_OK(ms_create_table(c.m, "big", keys, N, c.now, NULL));
  ms_action_list a = {0};
  TU_OK(ms_tick(c.m, c.now, &a));
  int per[2] = {0, 0};
  count_opens(&c, &a, per, 0);
  CU_ASSERT_EQUAL(per[0], 4);
  CU_ASSERT_EQUAL(per[1], 4);
  /* Nothing more goes out while those are unanswered. */
  ms_action_list more = {0};
  TU_OK(ms_tick(c.m, c.now, &more));
  CU_ASSERT_EQUAL(more.n, 0);
  ms_action_list_free(&more);

  /* A move now: its close and then its open go out at once, though the
   * target has its placements in flight. */
  ms_move m;
  TU_OK(ms_request_move(c.m, mv, to, c.now, &m));
  TU_OK(ms_tick(c.m, c.now, &more));
  CU_ASSERT_EQUAL_FATAL(more.n, 1);
  CU_ASSERT_EQUAL(more.v[0].type, MS_ACT_CLOSE);
  CU_ASSERT_EQUAL(more.v[0].tablet.tablet_id, mv);
  sim_perform(&c, &more);
  ms_action_list_free(&more);
  TU_OK(ms_tick(c.m, c.now, &more));
  CU_ASSERT_EQUAL_FATAL(more.n, 1);
  CU_ASSERT_EQUAL(more.v[0].type, MS_ACT_OPEN);
  CU_ASSERT_EQUAL(more.v[0].tablet.tablet_id, mv);
  CU_ASSERT_EQUAL(more.v[0].server_id, to);
  sim_perform(&c, &more);
  ms_action_list_free(&more);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, mv, &t));
  CU_ASSERT_EQUAL(t.state, MS_SERVING);
  CU_ASSERT_EQUAL(t.server_id, to);
  ms_tablet_clear(&t);
  /* Heartbeats are answered meanwhile. */
  CU_ASSERT_EQUAL(sim_heartbeat(&c, 0), MICA_OK);
  CU_ASSERT_EQUAL(sim_heartbeat(&c, 1), MICA_OK);

  /* Each answer lets the next placements out, never more than the bound. */
  int rounds = 0;
  while (a.n > 0) {
    sim_perform(&c, &a);
    ms_action_list_free(&a);
    TU_OK(ms_tick(c.m, c.now, &a));
    int p[2] = {0, 0};
    count_opens(&c, &a, p, 0);
    CU_ASSERT(p[0] <= 4 && p[1] <= 4);
    CU_ASSERT_FATAL(++rounds < 200);
  }
  ms_action_list_free(&a);
  CU_ASSERT(rounds >= (N + 1) / 8);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), N + 2);
  sim_check(&c);
  sim_free(&c);
}

/* A server whose disk is below its reserve gets no merge and commits no
 * split; when space returns, merges resume by themselves. */
static void test_disk_low_server(void) {
  sim c;
  sim_init(&c, NULL);
  c.o.merge_min_age_us = 30 * SIM_SEC;
  sim_restart(&c);
  bool off = false, on = true;
  TU_OK(ms_configure(c.m, &off, &off, NULL, NULL));
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  sim_split_at(&c, "t", "m", NULL, NULL);
  sim_set_stats(&c, 0, 1000, 0.0);
  sim_advance(&c, 40 * SIM_SEC);
  ms_tablet_list l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL_FATAL(l.n, 2);
  uint64_t left = l.v[0].tablet_id, right = l.v[1].tablet_id;
  ms_ref ref = {l.v[1].tablet_id, l.v[1].range_epoch, l.v[1].assign_epoch};
  ms_tablet_list_free(&l);

  ms_server_disk(c.m, c.s[0].id, true);
  CU_ASSERT(sim_count_events(&c, "disk", NULL) > 0);
  TU_OK(ms_configure(c.m, NULL, &on, NULL, NULL));
  sim_advance(&c, 5 * SIM_SEC);
  CU_ASSERT_EQUAL(count_state(&c, MS_SERVING), 2); /* no merge started */
  TU_ERR(ms_request_merge(c.m, left, right, c.now), MICA_RESOURCE_EXHAUSTED);
  ms_tablet_list d = {0};
  mica_err *e = ms_handle_split(c.m, c.s[0].id, ref, S("t"), c.now, &d);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL(err_code(e), MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "reserve"));
  err_free(e);
  CU_ASSERT_EQUAL(d.n, 0);
  CU_ASSERT_EQUAL(tablets_of_count(&c, "t"), 2);
  sim_check(&c);

  ms_server_disk(c.m, c.s[0].id, false);
  sim_advance(&c, 3 * SIM_SEC);
  CU_ASSERT_EQUAL(tablets_of_count(&c, "t"), 1); /* merged */
  sim_check(&c);
  sim_free(&c);
}

static void add_suites(void) {
  static const CU_TestInfo tables[] = {
      {"names_and_split_keys", test_table_names_and_keys},
      {"drop_closes_and_deletes", test_drop_closes_and_deletes},
      {"lookups", test_lookups},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo servers[] = {
      {"assignment_least_loaded", test_assignment_least_loaded},
      {"open_failures_retry", test_open_failures_retry},
      {"lease_expiry", test_lease_expiry},
      {"late_heartbeat_and_same_address", test_late_heartbeat_and_same_address},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo changes[] = {
      {"split", test_split},
      {"split_not_carried_out", test_split_not_carried_out},
      {"split_in_progress", test_split_in_progress},
      {"split_located_when_reported", test_split_located_when_reported},
      {"move", test_move},
      {"merge", test_merge},
      {"merge_interrupted", test_merge_interrupted},
      {"merge_successor", test_merge_successor},
      {"drop_during_transitions", test_drop_during_transitions},
      {"balancer", test_balancer},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo durability[] = {
      {"server_http_address", test_server_http_address},
      {"restart_no_storm", test_restart_no_storm},
      {"restart_slow_replay", test_restart_slow_replay},
      {"restart_reconciles", test_restart_reconciles},
      {"log_failures", test_log_failures},
      {"replay_rejects_bad_record", test_replay_rejects_bad_record},
      {"random_sequences", test_random_sequences},
      {"concurrent_readers", test_concurrent_readers},
      {"assign_event_names_server", test_assign_event_names_server},
      {"stats_from_heartbeat", test_stats_from_heartbeat},
      {"drop_leaves_server_counts", test_drop_leaves_server_counts},
      {"split_key_cap", test_split_key_cap},
      {"bounded_opens", test_bounded_opens},
      {"disk_low_server", test_disk_low_server},
      CU_TEST_INFO_NULL};
  tu_add_suite("tables", tables);
  tu_add_suite("servers", servers);
  tu_add_suite("changes", changes);
  tu_add_suite("durability", durability);
}

int main(int argc, char **argv) {
  /* Thousands of simulated events would drown a failure's output. */
  if (getenv("MICA_LOG_LEVEL") == NULL) log_set_level(LOG_WARN);
  return tu_main(argc, argv, add_suites);
}
