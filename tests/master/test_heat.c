/* test_heat: the master's per-tablet load history (master/ms_heat.h)
 * through the real core: servers register and heartbeat with counters the
 * test chooses, on a clock the test moves (tests/master/http/hfix.h), and
 * the history is read back with ms_heat_snapshot().
 *
 * Checked: rates per bucket equal the work reported divided by the
 * bucket's seconds; work over an interval that crosses a boundary is
 * shared in proportion; the ring keeps exactly the configured number of
 * buckets and reuses the oldest; a bucket without reports is empty; a
 * split shows the parent before and both daughters after, each with its
 * own key range, and a merge the inputs before and the result after; the rows per bucket and the tracked tablets are bounded
 * (and what is left out is counted); a counter that goes backwards, a
 * move to another server and a master restart start a new baseline
 * instead of producing negative or invented work; the hot list ranks by
 * ops/s, filters by table, honours its limit and leaves out retired,
 * dropped and silent tablets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "master/snapshot.h"
#include "tests/harness/testutil.h"
#include "tests/master/http/hfix.h"

#define SEC 1000000ull

/* What each tablet has done since "open", as its server reports it. */
typedef struct load {
  uint64_t id;
  ms_stats st;
} load;

static load g_load[64];
static size_t g_n;

static ms_stats *load_of(uint64_t id) {
  for (size_t i = 0; i < g_n; i++)
    if (g_load[i].id == id) return &g_load[i].st;
  CU_ASSERT_FATAL(g_n < 64);
  memset(&g_load[g_n], 0, sizeof(g_load[g_n]));
  g_load[g_n].id = id;
  return &g_load[g_n++].st;
}

static void report(const ms_tablet *t, ms_stats *out, void *ctx) {
  (void)ctx;
  *out = *load_of(t->tablet_id);
}

/* Adds work to tablet `id`: `r` reads, `w` writes, 10 bytes each. */
static void work(uint64_t id, uint64_t r, uint64_t w) {
  ms_stats *s = load_of(id);
  s->reads += r;
  s->writes += w;
  s->read_bytes += 10 * r;
  s->write_bytes += 10 * w;
}

static hfix F;
static int S1, S2;

static void open_core(uint64_t bucket_us, size_t buckets, size_t max) {
  g_n = 0;
  ms_options o;
  ms_options_init(&o);
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/m%llu", tu_tmpdir(),
           (unsigned long long)tu_rand());
  o.data_root = dir;
  o.heat_bucket_us = bucket_us;
  o.heat_buckets = buckets;
  o.heat_max_tablets = max;
  o.merge_min_age_us = 0;
  TU_OK(hfix_open_with(&F, &o));
  bool off = false;
  TU_OK(ms_configure(F.m, &off, &off, NULL, NULL));
  /* Start on a bucket boundary, so the arithmetic below is exact. */
  hfix_advance(&F, bucket_us - hfix_now(&F) % bucket_us);
  TU_OK(hfix_register(&F, "127.0.0.1:7101", &S1));
  TU_OK(hfix_register(&F, "127.0.0.1:7102", &S2));
}

static void create(const char *name, const char *const *keys, size_t n) {
  slice k[8];
  for (size_t i = 0; i < n; i++) k[i] = slice_from_str(keys[i]);
  TU_OK(ms_create_table(F.m, name, k, n, hfix_now(&F), NULL));
  TU_OK(hfix_settle(&F, 10, SIZE_MAX));
}

static void beat(void) {
  TU_OK(hfix_heartbeat(&F, S1, report, NULL));
  TU_OK(hfix_heartbeat(&F, S2, report, NULL));
}

static uint64_t tablet(const char *table, size_t i) {
  ms_tablet_list l = {NULL, 0};
  TU_OK(hfix_tablets(&F, table, &l));
  uint64_t id = i < l.n ? l.v[i].tablet_id : 0;
  ms_tablet_list_free(&l);
  return id;
}

static const ms_heat_cell *cell(const ms_heat_snap *s, size_t bucket,
                                uint64_t id) {
  const ms_heat_bucket *b = &s->buckets[bucket];
  for (size_t i = 0; i < b->n_cells; i++)
    if (s->tablets[b->cells[i].tablet].id == id) return &b->cells[i];
  return NULL;
}

static bool near(double a, double b) { return fabs(a - b) < 1e-6; }

static void test_rates_and_boundaries(void) {
  open_core(SEC, 8, 100);
  create("t", (const char *const[]){"m"}, 1);
  uint64_t a = tablet("t", 0), b = tablet("t", 1);
  beat(); /* t = 0: the baseline, no work yet */
  hfix_advance(&F, SEC / 2);
  work(a, 50, 0);
  beat(); /* t = 0.5 */
  hfix_advance(&F, SEC);
  work(a, 100, 20); /* over [0.5, 1.5): half in bucket 0, half in 1 */
  work(b, 0, 7);
  beat(); /* t = 1.5 */
  hfix_advance(&F, SEC);
  beat(); /* t = 2.5, idle */
  hfix_advance(&F, SEC / 2); /* t = 3.0: bucket 2 complete */

  ms_heat_snap s;
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, true, &s));
  CU_ASSERT_EQUAL(s.bucket_ms, 1000);
  CU_ASSERT_EQUAL(s.max_buckets, 8);
  CU_ASSERT_EQUAL_FATAL(s.n_buckets, 8);
  CU_ASSERT_EQUAL(s.n_tablets, 2);
  /* Buckets 0..3 are the last four of the window (the first four are
   * before the test and empty). */
  for (size_t i = 0; i < 4; i++) CU_ASSERT_EQUAL(s.buckets[i].n_cells, 0);
  CU_ASSERT(s.buckets[7].start_ms - s.buckets[4].start_ms == 3000);
  const ms_heat_cell *c0 = cell(&s, 4, a), *c1 = cell(&s, 5, a),
                     *c2 = cell(&s, 6, a), *b1 = cell(&s, 5, b);
  CU_ASSERT_FATAL(c0 && c1 && c2 && b1);
  CU_ASSERT(near(c0->r.reads, 50 + 50));
  CU_ASSERT(near(c0->r.writes, 10));
  CU_ASSERT(near(c1->r.reads, 50));
  CU_ASSERT(near(c1->r.writes, 10));
  CU_ASSERT(near(c1->r.read_bytes, 500));
  CU_ASSERT(near(b1->r.writes, 3.5));
  CU_ASSERT(near(c2->r.reads, 0) && near(c2->r.writes, 0));
  CU_ASSERT(near(ms_heat_ops(&c0->r), 110));
  ms_tablet ta;
  TU_OK(ms_get_tablet(F.m, a, &ta));
  CU_ASSERT_EQUAL(c0->server, ta.server_id);
  ms_tablet_clear(&ta);
  /* The bucket in progress (t = 3.0, nothing yet) has no reports. */
  CU_ASSERT_EQUAL(s.buckets[7].n_cells, 0);
  CU_ASSERT(s.tablets[0].id == a && s.tablets[1].id == b);
  CU_ASSERT(s.tablets[0].start.len == 0 && s.tablets[0].end.len == 1);
  CU_ASSERT(s.tablets[0].current && s.tablets[1].current);
  /* The hot list: a was busiest, then b. */
  CU_ASSERT_EQUAL_FATAL(s.n_hot, 2);
  CU_ASSERT_EQUAL(s.hot[0].tablet_id, a);
  CU_ASSERT_STRING_EQUAL(s.hot[0].table, "t");
  CU_ASSERT(ms_heat_ops(&s.hot[0].r) > ms_heat_ops(&s.hot[1].r));
  CU_ASSERT_EQUAL(s.dropped, 0);
  ms_heat_snap_free(&s);
  ms_heat_snap_free(&s); /* twice is harmless */

  CU_ASSERT_FALSE(ms_heat_snapshot(F.m, hfix_now(&F), "nope", 0, true, &s));
  CU_ASSERT_EQUAL(s.n_hot + s.n_buckets, 0);
  hfix_close(&F);
}

static void test_ring_rolls(void) {
  open_core(SEC, 4, 100);
  create("t", NULL, 0);
  uint64_t a = tablet("t", 0);
  beat();
  for (int i = 1; i <= 10; i++) {
    hfix_advance(&F, SEC);
    work(a, (uint64_t)i * 10, 0);
    beat(); /* at t = i: the work of bucket i - 1 */
  }
  hfix_advance(&F, SEC / 2); /* t = 10.5 */
  ms_heat_snap s;
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, true, &s));
  CU_ASSERT_EQUAL_FATAL(s.n_buckets, 4); /* buckets 7, 8, 9, 10 */
  for (size_t i = 0; i < 3; i++) {
    const ms_heat_cell *c = cell(&s, i, a);
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT(near(c->r.reads, (double)(i + 8) * 10));
    CU_ASSERT(near(s.buckets[i].secs, 1.0));
  }
  /* Bucket 10 has the idle row of the report at t = 10, over 0.5 s. */
  CU_ASSERT(near(s.buckets[3].secs, 0.5));
  CU_ASSERT_EQUAL(s.buckets[3].n_cells, 1);
  CU_ASSERT(s.buckets[1].start_ms - s.buckets[0].start_ms == 1000);
  ms_heat_snap_free(&s);

  /* Silence for longer than the window: nothing left, no hot tablet. */
  hfix_advance(&F, 6 * SEC);
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, true, &s));
  CU_ASSERT_EQUAL(s.n_buckets, 4);
  for (size_t i = 0; i < 4; i++) CU_ASSERT_EQUAL(s.buckets[i].n_cells, 0);
  CU_ASSERT_EQUAL(s.n_tablets, 0);
  ms_heat_snap_free(&s);
  hfix_close(&F);
}

static void test_split(void) {
  open_core(SEC, 10, 100);
  create("t", NULL, 0);
  uint64_t p = tablet("t", 0);
  beat();
  hfix_advance(&F, SEC);
  work(p, 100, 0);
  beat(); /* t = 1 */
  hfix_advance(&F, SEC / 2);
  work(p, 40, 0);
  beat(); /* t = 1.5 */
  TU_OK(hfix_split(&F, p, slice_from_str("k")));
  uint64_t l = tablet("t", 0), r = tablet("t", 1);
  CU_ASSERT(l != p && r != p && l != r);
  beat(); /* daughters' baselines */
  hfix_advance(&F, SEC / 2);
  work(l, 5, 0);
  work(r, 300, 0);
  beat(); /* t = 2 */
  hfix_advance(&F, SEC);
  work(l, 10, 0);
  work(r, 600, 0);
  beat(); /* t = 3 */
  hfix_advance(&F, SEC / 2);

  ms_heat_snap s;
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, true, &s));
  CU_ASSERT_EQUAL_FATAL(s.n_tablets, 3);
  /* By start key then id: the parent and the left daughter start at "". */
  CU_ASSERT_EQUAL(s.tablets[0].id, p);
  CU_ASSERT_FALSE(s.tablets[0].current);
  CU_ASSERT_EQUAL(s.tablets[1].id, l);
  CU_ASSERT(s.tablets[1].end.len == 1 && s.tablets[1].end.data[0] == 'k');
  CU_ASSERT_EQUAL(s.tablets[2].id, r);
  CU_ASSERT(s.tablets[2].start.len == 1 && s.tablets[2].end.len == 0);
  size_t n = s.n_buckets; /* last = t 3.5, then 2, 1, 0 before it */
  const ms_heat_cell *p0 = cell(&s, n - 4, p), *p1 = cell(&s, n - 3, p);
  CU_ASSERT_FATAL(p0 && p1);
  CU_ASSERT(near(p0->r.reads, 100));
  CU_ASSERT(near(p1->r.reads, 40));
  CU_ASSERT(cell(&s, n - 2, p) == NULL);
  /* The split bucket holds the parent and both daughters. */
  const ms_heat_cell *l1 = cell(&s, n - 3, l), *r1 = cell(&s, n - 3, r),
                     *r2 = cell(&s, n - 2, r);
  CU_ASSERT_FATAL(l1 && r1 && r2);
  CU_ASSERT(near(r1->r.reads, 300));
  CU_ASSERT(near(l1->r.reads, 5));
  CU_ASSERT(near(r2->r.reads, 600));
  /* Cells come in the key order of their tablets. */
  const ms_heat_bucket *b = &s.buckets[n - 3];
  for (size_t i = 1; i < b->n_cells; i++)
    CU_ASSERT(b->cells[i - 1].tablet < b->cells[i].tablet);
  /* Hot: the daughters only, the right one first. */
  CU_ASSERT_EQUAL_FATAL(s.n_hot, 2);
  CU_ASSERT_EQUAL(s.hot[0].tablet_id, r);
  CU_ASSERT_EQUAL(s.hot[1].tablet_id, l);
  CU_ASSERT(s.hot[0].start.len == 1 && s.hot[0].start.data[0] == 'k');
  ms_heat_snap_free(&s);
  hfix_close(&F);
}

static void test_merge(void) {
  open_core(SEC, 10, 100);
  create("t", (const char *const[]){"m"}, 1);
  uint64_t a = tablet("t", 0), b = tablet("t", 1);
  beat();
  hfix_advance(&F, SEC);
  work(a, 30, 0);
  work(b, 60, 0);
  beat(); /* bucket 0 */
  TU_OK(ms_request_merge(F.m, a, b, hfix_now(&F)));
  TU_OK(hfix_settle(&F, 10, SIZE_MAX));
  uint64_t c = tablet("t", 0);
  CU_ASSERT(c != a && c != b && tablet("t", 1) == 0);
  beat(); /* the merged tablet's baseline, in bucket 1 */
  hfix_advance(&F, SEC);
  work(c, 500, 0);
  beat(); /* bucket 1 */
  hfix_advance(&F, SEC / 2);

  ms_heat_snap s;
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, true, &s));
  CU_ASSERT_EQUAL_FATAL(s.n_tablets, 3);
  /* By start key then id: a and the merged one start at "", b at "m". */
  CU_ASSERT(s.tablets[0].id == a && !s.tablets[0].current);
  CU_ASSERT(s.tablets[1].id == c && s.tablets[1].current);
  CU_ASSERT(s.tablets[1].start.len == 0 && s.tablets[1].end.len == 0);
  CU_ASSERT(s.tablets[2].id == b && !s.tablets[2].current);
  size_t n = s.n_buckets; /* t = 2.5: buckets 0, 1, 2 are the last three */
  CU_ASSERT(cell(&s, n - 3, a) && near(cell(&s, n - 3, a)->r.reads, 30));
  CU_ASSERT(cell(&s, n - 3, b) && near(cell(&s, n - 3, b)->r.reads, 60));
  CU_ASSERT(cell(&s, n - 3, c) == NULL);
  CU_ASSERT(cell(&s, n - 2, c) && near(cell(&s, n - 2, c)->r.reads, 500));
  /* The inputs were last reported at t = 1, the start of bucket 1, where
   * they show idle beside the result; nowhere after. */
  CU_ASSERT(cell(&s, n - 2, a) && near(cell(&s, n - 2, a)->r.reads, 0));
  CU_ASSERT(cell(&s, n - 1, a) == NULL && cell(&s, n - 1, b) == NULL);
  CU_ASSERT_EQUAL_FATAL(s.n_hot, 1);
  CU_ASSERT_EQUAL(s.hot[0].tablet_id, c);
  ms_heat_snap_free(&s);
  hfix_close(&F);
}

static void test_bounds(void) {
  open_core(SEC, 3, 2);
  create("t", (const char *const[]){"b", "c", "d"}, 3);
  create("u", NULL, 0);
  beat();
  hfix_advance(&F, SEC);
  for (size_t i = 0; i < 4; i++) work(tablet("t", i), 10 * (i + 1), 0);
  beat();
  hfix_advance(&F, SEC / 2);
  ms_heat_snap s;
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, true, &s));
  /* Two rows per bucket, four tracked tablets, the rest counted. */
  for (size_t i = 0; i < s.n_buckets; i++)
    CU_ASSERT(s.buckets[i].n_cells <= 2);
  CU_ASSERT(s.n_hot <= 4);
  CU_ASSERT(s.dropped > 0);
  CU_ASSERT_EQUAL(s.max_tablets, 2);
  ms_heat_snap_free(&s);
  /* All tables: still at most four tracked, so at most four hot. */
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), NULL, 0, false, &s));
  CU_ASSERT(s.n_hot <= 4 && s.n_hot > 0);
  CU_ASSERT_EQUAL(s.n_buckets, 0); /* no history without a table */
  ms_heat_snap_free(&s);
  hfix_close(&F);
}

static void test_baselines(void) {
  open_core(SEC, 6, 100);
  create("t", NULL, 0);
  uint64_t a = tablet("t", 0);
  work(a, 1000000, 0); /* done before the master knew: never counted */
  beat();
  hfix_advance(&F, SEC);
  work(a, 10, 0);
  beat(); /* bucket 0: 10 */
  hfix_advance(&F, SEC);
  memset(load_of(a), 0, sizeof(ms_stats)); /* reopened: counters anew */
  work(a, 3, 0);
  beat(); /* a new baseline, nothing counted for bucket 1 */
  hfix_advance(&F, SEC);
  work(a, 20, 0);
  beat(); /* bucket 2: 20 */
  /* A report older than the last (two calls racing to the core): a new
   * baseline, and no second row for the tablet in bucket 1. */
  __atomic_fetch_sub(&F.now, SEC + SEC / 2, __ATOMIC_RELAXED);
  beat();
  hfix_advance(&F, SEC + SEC / 2);
  beat(); /* back at t = 3: a baseline again (the clock went back) */

  /* A move: the new server's counters start at 0 and must not be taken
   * as a fall from the old one's. */
  ms_move mv;
  ms_tablet t;
  TU_OK(ms_get_tablet(F.m, a, &t));
  uint64_t other = t.server_id == F.ids[S1] ? F.ids[S2] : F.ids[S1];
  ms_tablet_clear(&t);
  TU_OK(ms_request_move(F.m, a, other, hfix_now(&F), &mv));
  TU_OK(hfix_settle(&F, 10, SIZE_MAX));
  hfix_advance(&F, SEC);
  memset(load_of(a), 0, sizeof(ms_stats));
  work(a, 7, 0);
  beat(); /* baseline on the new server: bucket 3 only the idle row */
  hfix_advance(&F, SEC);
  work(a, 30, 0);
  beat(); /* bucket 4: 30 */
  hfix_advance(&F, SEC / 2);

  ms_heat_snap s;
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, true, &s));
  CU_ASSERT_EQUAL_FATAL(s.n_buckets, 6);
  double want[5] = {10, 0, 20, 0, 30};
  for (size_t i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL(s.buckets[i].n_cells, 1);
    const ms_heat_cell *c = cell(&s, i, a);
    CU_ASSERT_FATAL(c != NULL);
    if (!near(c->r.reads, want[i]))
      fprintf(stderr, "\nbucket %zu: %.3f reads/s, want %.3f\n", i,
              c->r.reads, want[i]);
    CU_ASSERT(near(c->r.reads, want[i]));
    CU_ASSERT(c->r.reads >= 0 && c->r.writes >= 0);
  }
  CU_ASSERT_EQUAL(cell(&s, 4, a)->server, other);
  CU_ASSERT_EQUAL_FATAL(s.n_hot, 1);
  CU_ASSERT_EQUAL(s.hot[0].server, other);
  ms_heat_snap_free(&s);
  hfix_close(&F);
}

static void test_hot_list(void) {
  open_core(60 * SEC, 60, 100);
  create("t", (const char *const[]){"g", "n"}, 2);
  create("u", NULL, 0);
  beat();
  hfix_advance(&F, SEC);
  work(tablet("t", 0), 5, 0);
  work(tablet("t", 1), 500, 0);
  work(tablet("t", 2), 50, 0);
  work(tablet("u", 0), 5000, 0);
  beat();
  ms_heat_snap s;
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), NULL, 2, false, &s));
  CU_ASSERT_EQUAL(s.n_hot_total, 4);
  CU_ASSERT_EQUAL_FATAL(s.n_hot, 2);
  CU_ASSERT_STRING_EQUAL(s.hot[0].table, "u");
  CU_ASSERT(near(s.hot[0].r.reads, 5000)); /* first interval: as measured */
  CU_ASSERT_EQUAL(s.hot[1].tablet_id, tablet("t", 1));
  ms_heat_snap_free(&s);
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "t", 0, false, &s));
  CU_ASSERT_EQUAL_FATAL(s.n_hot, 3);
  CU_ASSERT_EQUAL(s.hot[0].tablet_id, tablet("t", 1));
  CU_ASSERT_EQUAL(s.hot[1].tablet_id, tablet("t", 2));
  CU_ASSERT_EQUAL(s.hot[2].tablet_id, tablet("t", 0));
  CU_ASSERT_EQUAL(s.n_buckets, 0);
  ms_heat_snap_free(&s);

  /* A second interval moves the recent rate towards the new figure by
   * 1 - e^(-dt/10 s). */
  hfix_advance(&F, 10 * SEC);
  beat(); /* idle */
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), "u", 0, false, &s));
  CU_ASSERT_EQUAL_FATAL(s.n_hot, 1);
  CU_ASSERT(fabs(s.hot[0].r.reads - 5000 * exp(-1.0)) < 1e-3);
  ms_heat_snap_free(&s);

  /* A dropped table leaves the list; silent servers' tablets too. */
  TU_OK(ms_drop_table(F.m, "u", hfix_now(&F)));
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), NULL, 0, false, &s));
  CU_ASSERT_EQUAL(s.n_hot, 3);
  ms_heat_snap_free(&s);
  hfix_advance(&F, 11 * SEC); /* past the 10 s lease */
  CU_ASSERT_FATAL(ms_heat_snapshot(F.m, hfix_now(&F), NULL, 0, false, &s));
  CU_ASSERT_EQUAL(s.n_hot, 0);
  ms_heat_snap_free(&s);
  hfix_close(&F);
}

static void add_suites(void) {
  static CU_TestInfo tests[] = {
      {"rates and bucket boundaries", test_rates_and_boundaries},
      {"the ring rolls", test_ring_rolls},
      {"splits", test_split},
      {"merges", test_merge},
      {"bounds", test_bounds},
      {"baselines", test_baselines},
      {"hot list", test_hot_list},
      CU_TEST_INFO_NULL};
  tu_add_suite("heat", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
