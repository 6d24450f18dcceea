/* test_tsnap: snapshots and clones in the master's state
 * (master/ms_snapshots.c, master/tsnap.h): the life of a snapshot and of a
 * clone through their records, replayed from the log and from a snapshot
 * file (sim_restart checks the durable state byte for byte); clone tablets
 * not assigned while cloning; what a restarted master does with a
 * snapshot left creating and a table left cloning; the refusals; and
 * records that must be refused as corruption. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "master/ms_int.h"
#include "master/tsnap.h"
#include "tests/master/sim.h"

#define S(str) slice_from_str(str)

static size_t count(sim *c, bool all) {
  ms_tsnap_info *v = NULL;
  size_t n = 0;
  TU_OK(ms_tsnap_list(c->m, NULL, all, &v, &n));
  ms_tsnap_infos_free(v, n);
  return n;
}

static int state_of(sim *c, const char *name) {
  ms_tsnap_info *v = NULL;
  size_t n = 0;
  mica_err *e = ms_tsnap_list(c->m, name, false, &v, &n);
  int st = e == NULL && n == 1 ? v[0].state : 0;
  err_free(e);
  ms_tsnap_infos_free(v, n);
  return st;
}

/* Takes snapshot `name` of `table` as the RPC layer would, with every
 * current tablet pinned. */
static uint64_t take(sim *c, const char *table, const char *name) {
  uint64_t id = 0;
  TU_OK(ms_tsnap_begin(c->m, table, name, c->now, &id));
  ms_tablet_list l = {0};
  TU_OK(ms_tsnap_tablets(c->m, id, &l));
  ms_tsnap_part *p = xcalloc(l.n + 1, sizeof(*p));
  for (size_t i = 0; i < l.n; i++) {
    p[i].tablet_id = l.v[i].tablet_id;
    buf_append_slice(&p[i].start, buf_slice(&l.v[i].start_key));
    buf_append_slice(&p[i].end, buf_slice(&l.v[i].end_key));
    p[i].files = 2;
    p[i].bytes = 1000;
  }
  TU_OK(ms_tsnap_ready(c->m, id, p, l.n, c->now));
  for (size_t i = 0; i < l.n; i++) {
    buf_free(&p[i].start);
    buf_free(&p[i].end);
  }
  free(p);
  ms_tablet_list_free(&l);
  return id;
}

static size_t tablets_of(sim *c, const char *table, int state) {
  ms_tablet_list l = {0};
  TU_OK(ms_list_tablets(c->m, table, false, &l));
  size_t n = 0;
  for (size_t i = 0; i < l.n; i++) n += l.v[i].state == state;
  ms_tablet_list_free(&l);
  return n;
}

static void test_life(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  slice keys[2] = {S("g"), S("p")};
  TU_OK(ms_create_table(c.m, "t", keys, 2, c.now, NULL));
  sim_settle(&c, 20);
  uint64_t id = take(&c, "t", "s1");
  CU_ASSERT_EQUAL(state_of(&c, "s1"), MS_TSNAP_READY);
  sim_restart(&c); /* from log records */
  sim_restart(&c); /* from the snapshot file */
  CU_ASSERT_EQUAL(state_of(&c, "s1"), MS_TSNAP_READY);
  sim_reregister(&c, 0);
  sim_advance(&c, 20 * 1000 * 1000); /* past the restart grace period */

  /* A clone waits (unassigned) until its manifests are written. */
  ms_tsnap_clone cl;
  TU_OK(ms_tsnap_clone_begin(c.m, "s1", "c1", c.now, &cl));
  CU_ASSERT_EQUAL(cl.n, 3);
  CU_ASSERT_EQUAL(cl.snap_id, id);
  sim_advance(&c, 2 * 1000 * 1000);
  CU_ASSERT_EQUAL(tablets_of(&c, "c1", MS_UNASSIGNED), 3);
  TU_ERR(ms_drop_table(c.m, "c1", c.now), MICA_UNAVAILABLE);
  TU_ERR(ms_tsnap_drop(c.m, "s1", c.now), MICA_UNAVAILABLE);
  TU_OK(ms_tsnap_clone_done(c.m, cl.table_id, true, c.now));
  ms_tsnap_clone_free(&cl);
  sim_advance(&c, 2 * 1000 * 1000);
  CU_ASSERT_EQUAL(tablets_of(&c, "c1", MS_SERVING), 3);
  sim_restart(&c);

  /* Dropped: hidden at once, its name free, forgotten once removed. */
  TU_OK(ms_tsnap_drop(c.m, "s1", c.now));
  CU_ASSERT_EQUAL(count(&c, false), 0);
  CU_ASSERT_EQUAL(count(&c, true), 1);
  uint64_t *ids = NULL;
  size_t n = 0;
  ms_tsnap_dropping(c.m, &ids, &n);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_EQUAL(n ? ids[0] : 0, id);
  free(ids);
  sim_restart(&c); /* still dropping after a restart */
  CU_ASSERT_EQUAL(count(&c, true), 1);
  TU_OK(ms_tsnap_removed(c.m, id));
  CU_ASSERT_EQUAL(count(&c, true), 0);
  /* Ids are never reused, also after a restart with no snapshot left. */
  sim_restart(&c);
  CU_ASSERT(take(&c, "t", "s1") > id);
  sim_restart(&c);
  sim_free(&c);
}

static void test_abandoned(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 20);
  take(&c, "t", "done");
  uint64_t id = 0;
  TU_OK(ms_tsnap_begin(c.m, "t", "half", c.now, &id));
  ms_tsnap_clone cl;
  TU_OK(ms_tsnap_clone_begin(c.m, "done", "halfclone", c.now, &cl));
  ms_tsnap_clone_free(&cl);
  /* This process is still working on both: a tick leaves them alone. */
  sim_settle(&c, 5);
  CU_ASSERT_EQUAL(state_of(&c, "half"), MS_TSNAP_CREATING);
  ms_table_info *v = NULL;
  size_t n = 0;
  /* A new master process (after kill -9): both are dropped. */
  sim_restart(&c);
  sim_reregister(&c, 0);
  sim_advance(&c, 20 * 1000 * 1000);
  CU_ASSERT_EQUAL(state_of(&c, "half"), 0);
  CU_ASSERT_EQUAL(state_of(&c, "done"), MS_TSNAP_READY);
  TU_OK(ms_list_tables(c.m, &v, &n));
  bool clone_left = false;
  for (size_t i = 0; i < n; i++) clone_left |= strcmp(v[i].name, "halfclone") == 0;
  ms_table_infos_free(v, n);
  CU_ASSERT_FALSE(clone_left);
  /* The names are free again. */
  take(&c, "t", "half");
  TU_OK(ms_tsnap_clone_begin(c.m, "done", "halfclone", c.now, &cl));
  TU_OK(ms_tsnap_clone_done(c.m, cl.table_id, true, c.now));
  ms_tsnap_clone_free(&cl);
  sim_restart(&c);
  sim_free(&c);
}

static void test_refused(void) {
  sim c;
  sim_init(&c, NULL);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  uint64_t id = 0;
  TU_ERR(ms_tsnap_begin(c.m, "nosuch", "a", c.now, &id), MICA_NOT_FOUND);
  TU_ERR(ms_tsnap_begin(c.m, "t", "bad name", c.now, &id),
         MICA_INVALID_ARGUMENT);
  TU_ERR(ms_tsnap_begin(c.m, "t", "", c.now, &id), MICA_INVALID_ARGUMENT);
  TU_ERR(ms_tsnap_begin(c.m, "t", NULL, c.now, &id), MICA_INVALID_ARGUMENT);
  TU_OK(ms_tsnap_begin(c.m, "t", "a", c.now, &id));
  TU_ERR(ms_tsnap_begin(c.m, "t", "a", c.now, &id), MICA_ALREADY_EXISTS);
  /* Not ready: no clone; parts that do not cover the key space: refused. */
  ms_tsnap_clone cl;
  TU_ERR(ms_tsnap_clone_begin(c.m, "a", "c", c.now, &cl), MICA_UNAVAILABLE);
  ms_tsnap_part p = {0};
  p.tablet_id = 1;
  buf_append_slice(&p.start, S("x")); /* should start at "" */
  TU_ERR(ms_tsnap_ready(c.m, id, &p, 1, c.now), MICA_INVALID_ARGUMENT);
  buf_free(&p.start);
  TU_ERR(ms_tsnap_ready(c.m, id, NULL, 0, c.now), MICA_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(state_of(&c, "a"), MS_TSNAP_CREATING);
  TU_ERR(ms_tsnap_clone_begin(c.m, "nosuch", "c", c.now, &cl), MICA_NOT_FOUND);
  TU_ERR(ms_tsnap_drop(c.m, "nosuch", c.now), MICA_NOT_FOUND);
  TU_OK(ms_tsnap_drop_id(c.m, id, c.now));
  TU_ERR(ms_tsnap_drop_id(c.m, id, c.now), MICA_NOT_FOUND);
  sim_restart(&c);
  sim_free(&c);
}

/* Appends `type` with `payload` as the RPC layer never would: refused as
 * INTERNAL (not logged) by ms_commit's check. */
static void expect_bad(sim *c, uint8_t type, const buf *payload) {
  pthread_mutex_lock(&c->m->mu);
  mica_err *e = ms_commit(c->m, type, payload);
  pthread_mutex_unlock(&c->m->mu);
  CU_ASSERT(e != NULL);
  err_free(e);
}

static void test_bad_records(void) {
  sim c;
  sim_init(&c, NULL);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  buf b = BUF_INIT;
  put_varint64(&b, 9); /* unknown snapshot */
  expect_bad(&c, REC_SNAP_DROP, &b);
  expect_bad(&c, REC_SNAP_REMOVE, &b);
  buf_clear(&b);
  put_varint64(&b, 1);
  put_length_prefixed(&b, S("bad/name"));
  put_varint64(&b, 1);
  put_length_prefixed(&b, S("t"));
  put_varint64(&b, 0);
  ms_table_opts o;
  mto_init(&o);
  mto_encode(&o, &b);
  expect_bad(&c, REC_SNAP_BEGIN, &b);
  buf_clear(&b);
  put_varint64(&b, 5); /* clone of an unknown snapshot */
  put_varint64(&b, 2);
  expect_bad(&c, REC_CLONE_BEGIN, &b);
  buf_clear(&b);
  put_varint64(&b, 1); /* not cloning */
  put_varint64(&b, 1);
  expect_bad(&c, REC_CLONE_DONE, &b);
  buf_free(&b);
  CU_ASSERT_EQUAL(count(&c, true), 0);
  sim_restart(&c);
  sim_free(&c);
}

/* An export holds its snapshot: dropping it is refused while any export
 * runs, allowed once the last one ended; the hold is volatile (a restarted
 * master has no exports running). */
static void test_export_hold(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  sim_settle(&c, 20);
  uint64_t id = take(&c, "t", "s1");
  ms_tsnap_info *a = NULL, *b = NULL;
  TU_OK(ms_tsnap_export_begin(c.m, "s1", &a));
  TU_OK(ms_tsnap_export_begin(c.m, "s1", &b));
  CU_ASSERT_EQUAL_FATAL(a != NULL && b != NULL, true);
  CU_ASSERT_EQUAL(a->id, id);
  CU_ASSERT_EQUAL(a->state, MS_TSNAP_READY);
  mica_err *e = ms_tsnap_drop(c.m, "s1", c.now);
  CU_ASSERT_EQUAL(err_code(e), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "s1 is being exported (2 "
                                             "exports running)"));
  err_free(e);
  ms_tsnap_export_end(c.m, id);
  TU_ERR(ms_tsnap_drop(c.m, "s1", c.now), MICA_UNAVAILABLE);
  ms_tsnap_export_end(c.m, id);
  CU_ASSERT_EQUAL(state_of(&c, "s1"), MS_TSNAP_READY);
  ms_tsnap_infos_free(a, 1);
  ms_tsnap_infos_free(b, 1);
  /* A restart forgets holds; an unknown name is NOT_FOUND. */
  TU_OK(ms_tsnap_export_begin(c.m, "s1", &a));
  ms_tsnap_infos_free(a, 1);
  sim_restart(&c);
  TU_ERR(ms_tsnap_export_begin(c.m, "nosuch", &a), MICA_NOT_FOUND);
  CU_ASSERT_PTR_NULL(a);
  TU_OK(ms_tsnap_drop(c.m, "s1", c.now));
  TU_ERR(ms_tsnap_export_begin(c.m, "s1", &a), MICA_NOT_FOUND);
  sim_free(&c);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"life", test_life},
      {"abandoned", test_abandoned},
      {"refused", test_refused},
      {"bad_records", test_bad_records},
      {"export_hold", test_export_hold},
      CU_TEST_INFO_NULL};
  tu_add_suite("tsnap", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
