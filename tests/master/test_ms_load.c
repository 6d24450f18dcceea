/* test_ms_load: what the master does with the tablets' sampled load
 * (master/ms_load.c): hot keys kept per tablet, shown in snapshots and
 * told once as events; reports for tablets a server does not hold under
 * those epochs ignored; load-split daughters and hot tablets kept out of
 * automatic merges until they have been cold for load_cool_us, and merged
 * as usual after that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/snapshot.h"
#include "tests/master/sim.h"

#define S(str) slice_from_str(str)

static ms_tablet_list tablets_of(sim *c, const char *table) {
  ms_tablet_list l = {0};
  TU_OK(ms_list_tablets(c->m, table, false, &l));
  return l;
}

/* One load report of tablet `id` from the server holding it. */
static void report(sim *c, uint64_t id, bool hot, const char *hot_key,
                   double ops) {
  ms_tablet t;
  TU_OK(ms_get_tablet(c->m, id, &t));
  ms_load_report r;
  memset(&r, 0, sizeof(r));
  r.ref = (ms_ref){t.tablet_id, t.range_epoch, t.assign_epoch};
  r.load.ops_per_sec = ops;
  r.load.bytes_per_sec = ops * 100;
  r.load.hot = hot;
  ms_hot_key k;
  memset(&k, 0, sizeof(k));
  if (hot_key != NULL) {
    buf_append(&k.key, hot_key, strlen(hot_key));
    k.ops_per_sec = ops;
    snprintf(k.kind, sizeof k.kind, "read");
    r.load.keys = &k;
    r.load.n_keys = 1;
  }
  ms_note_load(c->m, t.server_id, &r, 1, c->now);
  buf_free(&k.key);
  ms_tablet_clear(&t);
}

static void test_hot_keys_and_merge_hold(void) {
  sim c;
  sim_init(&c, NULL);
  c.o.merge_min_age_us = 1 * SIM_SEC;
  c.o.merge_max_rate = 1e9;
  c.o.load_cool_us = 60 * SIM_SEC;
  sim_restart(&c);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, NULL, NULL, NULL));
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  uint64_t left, right;
  sim_split_at(&c, "t", "m", &left, &right);
  ms_note_load_split(c.m, left, right, c.now);
  CU_ASSERT_EQUAL(sim_count_events(&c, "load_split", "\"m\""), 1);
  sim_set_stats(&c, 0, 1000, 0.0);

  /* Daughters of a load split stay apart through the cool-down, even
   * though they are small, old enough and (by their rates) cold. */
  sim_advance(&c, 30 * SIM_SEC);
  ms_tablet_list l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL(l.n, 2);
  ms_tablet_list_free(&l);

  /* A hot key: one event, kept per tablet, in the snapshot's hot list;
   * the key is the client's bytes and is escaped in the event. */
  report(&c, right, true, "m\x01star", 5000);
  report(&c, right, true, "m\x01star", 5100);
  CU_ASSERT_EQUAL(sim_count_events(&c, "hot_key", "m\\x01star"), 1);
  ms_snap snap;
  ms_snapshot(c.m, c.now, 0, MS_SNAP_TABLE_TABLETS, "t", &snap);
  CU_ASSERT_EQUAL_FATAL(snap.n_hot, 1);
  CU_ASSERT_EQUAL(snap.hot[0].id, right);
  CU_ASSERT_TRUE(snap.hot[0].load.hot);
  CU_ASSERT_TRUE(snap.hot[0].load_split);
  CU_ASSERT_TRUE(snap.hot[0].merge_held);
  CU_ASSERT_EQUAL_FATAL(snap.hot[0].load.n_keys, 1);
  CU_ASSERT_TRUE(slice_eq(buf_slice(&snap.hot[0].load.keys[0].key),
                          S("m\x01star")));
  CU_ASSERT_DOUBLE_EQUAL(snap.hot[0].load.keys[0].ops_per_sec, 5100, 1e-9);
  CU_ASSERT_STRING_EQUAL(snap.hot[0].load.keys[0].kind, "read");
  CU_ASSERT_EQUAL_FATAL(snap.n_tabs, 2);
  CU_ASSERT_FALSE(snap.tabs[0].load.hot);
  CU_ASSERT_TRUE(snap.tabs[0].merge_held); /* its load split */
  CU_ASSERT_EQUAL(snap.tabs[1].load.n_keys, 1);
  ms_snap_free(&snap);

  /* A hot second without hot keys holds the tablet only while reported:
   * `left`'s hold is its load split's. */
  report(&c, left, true, NULL, 4000);
  ms_snapshot(c.m, c.now, 0, MS_SNAP_TABLE_TABLETS, "t", &snap);
  CU_ASSERT_EQUAL(snap.n_hot, 2);
  ms_snap_free(&snap);
  report(&c, left, false, NULL, 10);

  /* Reports naming a tablet under other epochs, or from another server,
   * change nothing. */
  ms_load_report bogus;
  memset(&bogus, 0, sizeof(bogus));
  bogus.ref = (ms_ref){left, 99, 99};
  bogus.load.hot = true;
  ms_note_load(c.m, c.s[0].id, &bogus, 1, c.now);
  ms_tablet t;
  TU_OK(ms_get_tablet(c.m, left, &t));
  bogus.ref = (ms_ref){left, t.range_epoch, t.assign_epoch};
  ms_tablet_clear(&t);
  ms_note_load(c.m, c.s[0].id + 100, &bogus, 1, c.now);
  ms_snapshot(c.m, c.now, 0, MS_SNAP_NO_TABLETS, NULL, &snap);
  CU_ASSERT_EQUAL(snap.n_hot, 1);
  ms_snap_free(&snap);

  /* Past the load split's cool-down: still held while the last report
   * says hot, however old it is. */
  sim_advance(&c, 40 * SIM_SEC);
  l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL(l.n, 2);
  ms_tablet_list_free(&l);

  /* Hot once more, then cold from now on: held for load_cool_us after the
   * last hot report, then merged as any small cold pair. */
  report(&c, right, true, "m\x01star", 5000);
  sim_advance(&c, 1 * SIM_SEC);
  report(&c, right, false, NULL, 0.5);
  report(&c, left, false, NULL, 0.5);
  ms_snapshot(c.m, c.now, 0, MS_SNAP_NO_TABLETS, NULL, &snap);
  CU_ASSERT_EQUAL(snap.n_hot, 0);
  ms_snap_free(&snap);
  sim_advance(&c, 20 * SIM_SEC);
  l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL(l.n, 2);
  ms_tablet_list_free(&l);
  sim_advance(&c, 45 * SIM_SEC);
  l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL(l.n, 1);
  ms_tablet_list_free(&l);
  sim_check(&c);
  sim_free(&c);
}

/* Without any load report or load split, a split pair merges as before:
 * the hold is about load, not about every split. */
static void test_plain_split_merges(void) {
  sim c;
  sim_init(&c, NULL);
  c.o.merge_min_age_us = 1 * SIM_SEC;
  c.o.merge_max_rate = 1e9;
  sim_restart(&c);
  bool off = false;
  TU_OK(ms_configure(c.m, &off, NULL, NULL, NULL));
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 5);
  uint64_t left, right;
  sim_split_at(&c, "t", "m", &left, &right);
  sim_set_stats(&c, 0, 1000, 0.0);
  sim_advance(&c, 5 * SIM_SEC);
  ms_tablet_list l = tablets_of(&c, "t");
  CU_ASSERT_EQUAL(l.n, 1);
  ms_tablet_list_free(&l);
  sim_free(&c);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"hot_keys_and_merge_hold", test_hot_keys_and_merge_hold},
      {"plain_split_merges", test_plain_split_merges},
      CU_TEST_INFO_NULL};
  tu_add_suite("ms_load", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
