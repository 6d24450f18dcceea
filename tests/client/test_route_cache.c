/* Tests of the client's routing cache: lookups at range boundaries, the
 * freshness rule through splits, merges and moves, stale answers arriving
 * late, reverse-scan lookups, capacity eviction, a model-based property
 * test, and concurrent readers and installers. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "client/route_cache.h"
#include "tests/harness/testutil.h"

static rpc_route mk(uint64_t id, uint64_t repoch, const char *start, const char *end,
                   uint64_t server, uint64_t aepoch) {
  rpc_route r;
  memset(&r, 0, sizeof(r));
  r.tablet_id = id;
  r.range_epoch = repoch;
  buf_append(&r.start_key, start, strlen(start));
  buf_append(&r.end_key, end, strlen(end));
  r.server_id = server;
  r.assign_epoch = aepoch;
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%llu", (unsigned long long)(7000 + server));
  r.address = xstrdup(addr);
  return r;
}

static void install1(route_cache *c, const char *table, rpc_route r) {
  route_cache_install(c, table, &r, 1);
  rpc_route_clear(&r);
}

/* Tablet id covering `key`, 0 on a miss. */
static uint64_t at(route_cache *c, const char *table, const char *key) {
  rpc_route r;
  memset(&r, 0, sizeof(r));
  if (!route_cache_lookup(c, table, slice_from_str(key), &r)) return 0;
  uint64_t id = r.tablet_id;
  CU_ASSERT(rpc_route_contains(&r, slice_from_str(key)));
  rpc_route_clear(&r);
  return id;
}

static uint64_t before(route_cache *c, const char *table, const char *key) {
  rpc_route r;
  memset(&r, 0, sizeof(r));
  if (!route_cache_lookup_before(c, table, slice_from_str(key), &r)) return 0;
  uint64_t id = r.tablet_id;
  rpc_route_clear(&r);
  return id;
}

static void test_boundaries(void) {
  route_cache *c = route_cache_new(100);
  install1(c, "t", mk(1, 1, "", "g", 1, 1));
  install1(c, "t", mk(2, 1, "g", "p", 2, 1));
  install1(c, "t", mk(3, 1, "p", "", 1, 1));
  CU_ASSERT_EQUAL(at(c, "t", "\x01"), 1);
  CU_ASSERT_EQUAL(at(c, "t", "f\xff"), 1);
  CU_ASSERT_EQUAL(at(c, "t", "g"), 2); /* start is inclusive */
  CU_ASSERT_EQUAL(at(c, "t", "oz"), 2);
  CU_ASSERT_EQUAL(at(c, "t", "p"), 3); /* end is exclusive */
  CU_ASSERT_EQUAL(at(c, "t", "\xff\xff\xff"), 3);
  CU_ASSERT_EQUAL(at(c, "other", "a"), 0); /* unknown table */
  route_cache_stats s;
  route_cache_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.hits, 6);
  CU_ASSERT_EQUAL(s.misses, 1);
  CU_ASSERT_EQUAL(s.routes, 3);
  route_cache_free(c);
}

static void test_gap_is_a_miss(void) {
  route_cache *c = route_cache_new(100);
  install1(c, "t", mk(1, 1, "a", "c", 1, 1));
  install1(c, "t", mk(3, 1, "m", "q", 1, 1));
  CU_ASSERT_EQUAL(at(c, "t", "0"), 0); /* before the first cached route */
  CU_ASSERT_EQUAL(at(c, "t", "d"), 0); /* between routes */
  CU_ASSERT_EQUAL(at(c, "t", "q"), 0); /* after the last one's end */
  CU_ASSERT_EQUAL(at(c, "t", "b"), 1);
  route_cache_free(c);
}

static void test_split_and_late_parent(void) {
  route_cache *c = route_cache_new(100);
  install1(c, "t", mk(1, 1, "", "", 1, 1));
  rpc_route d[2] = {mk(2, 2, "", "m", 1, 1), mk(3, 2, "m", "", 2, 1)};
  route_cache_install(c, "t", d, 2);
  rpc_route_clear(&d[0]);
  rpc_route_clear(&d[1]);
  CU_ASSERT_EQUAL(at(c, "t", "a"), 2);
  CU_ASSERT_EQUAL(at(c, "t", "m"), 3);
  /* The parent's descriptor arriving late (a slow master answer) must not
   * resurrect the retired range. */
  install1(c, "t", mk(1, 1, "", "", 1, 1));
  CU_ASSERT_EQUAL(at(c, "t", "a"), 2);
  CU_ASSERT_EQUAL(at(c, "t", "z"), 3);
  route_cache_stats s;
  route_cache_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.stale, 1);
  CU_ASSERT_EQUAL(s.routes, 2);
  route_cache_free(c);
}

static void test_move_and_merge(void) {
  route_cache *c = route_cache_new(100);
  install1(c, "t", mk(2, 2, "", "m", 1, 1));
  install1(c, "t", mk(3, 2, "m", "", 1, 1));
  install1(c, "t", mk(3, 2, "m", "", 2, 2)); /* moved to server 2 */
  rpc_route r;
  memset(&r, 0, sizeof(r));
  CU_ASSERT_TRUE(route_cache_lookup(c, "t", slice_from_str("x"), &r));
  CU_ASSERT_EQUAL(r.server_id, 2);
  CU_ASSERT_STRING_EQUAL(r.address, "127.0.0.1:7002");
  rpc_route_clear(&r);
  install1(c, "t", mk(3, 2, "m", "", 1, 1)); /* the move's old answer */
  CU_ASSERT_TRUE(route_cache_lookup(c, "t", slice_from_str("x"), &r));
  CU_ASSERT_EQUAL(r.assign_epoch, 2);
  rpc_route_clear(&r);
  install1(c, "t", mk(4, 3, "", "", 1, 3)); /* merge of both */
  CU_ASSERT_EQUAL(at(c, "t", "a"), 4);
  CU_ASSERT_EQUAL(at(c, "t", "x"), 4);
  route_cache_stats s;
  route_cache_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.routes, 1);
  route_cache_free(c);
}

static void test_lookup_before(void) {
  route_cache *c = route_cache_new(100);
  install1(c, "t", mk(1, 1, "", "g", 1, 1));
  install1(c, "t", mk(2, 1, "g", "p", 1, 1));
  CU_ASSERT_EQUAL(before(c, "t", "h"), 2);
  CU_ASSERT_EQUAL(before(c, "t", "g"), 1); /* keys below "g" are tablet 1's */
  CU_ASSERT_EQUAL(before(c, "t", "p"), 2);
  CU_ASSERT_EQUAL(before(c, "t", "q"), 0); /* [p, q) is not cached */
  CU_ASSERT_EQUAL(before(c, "t", ""), 0);  /* the last tablet is not cached */
  install1(c, "t", mk(3, 1, "p", "", 1, 1));
  CU_ASSERT_EQUAL(before(c, "t", ""), 3);
  CU_ASSERT_EQUAL(before(c, "t", "q"), 3);
  route_cache_free(c);
}

static void test_invalidate_and_forget(void) {
  route_cache *c = route_cache_new(100);
  install1(c, "t", mk(1, 5, "", "m", 1, 1));
  install1(c, "t", mk(2, 5, "m", "", 1, 1));
  route_cache_invalidate(c, "t", 1, 4); /* older epoch: keep */
  CU_ASSERT_EQUAL(at(c, "t", "a"), 1);
  route_cache_invalidate(c, "t", 1, 5);
  CU_ASSERT_EQUAL(at(c, "t", "a"), 0);
  CU_ASSERT_EQUAL(at(c, "t", "n"), 2);
  route_cache_forget_table(c, "t");
  CU_ASSERT_EQUAL(at(c, "t", "n"), 0);
  route_cache_stats s;
  route_cache_get_stats(c, &s);
  CU_ASSERT_EQUAL(s.routes, 0);
  route_cache_free(c);
}

static void key_of(int i, char *out) { snprintf(out, 16, "k%06d", i); }

static void test_capacity_evicts_least_recently_used(void) {
  route_cache *c = route_cache_new(100);
  char a[16], b[16];
  for (int i = 0; i < 1000; i++) {
    key_of(2 * i, a);
    key_of(2 * i + 1, b);
    install1(c, "t", mk((uint64_t)i + 1, 1, a, b, 1, 1));
    /* Keep tablet 1 hot: it must survive every eviction. */
    CU_ASSERT_EQUAL(at(c, "t", "k000000"), 1);
  }
  route_cache_stats s;
  route_cache_get_stats(c, &s);
  CU_ASSERT(s.routes <= 100);
  CU_ASSERT(s.routes >= 90);
  CU_ASSERT_EQUAL(s.evictions, 1000 - s.routes);
  key_of(1998, a);
  CU_ASSERT_EQUAL(at(c, "t", a), 1000); /* the newest is kept */
  key_of(2, a);
  CU_ASSERT_EQUAL(at(c, "t", a), 0); /* an old cold one is gone */
  route_cache_free(c);
}

/* Model: a key space of single-letter boundaries evolving through splits,
 * merges and moves; every descriptor ever produced goes into a history, and
 * random subsets of the history are installed in random order. Whatever the
 * order, the cache must hold non-overlapping routes, none older than an
 * installed route that overlaps it, and answer lookups with a route that
 * contains the key. */
#define MAXR 64
struct mroute {
  uint64_t id, repoch, server, aepoch;
  char start, end; /* 0 = open end */
};

static rpc_route to_route(const struct mroute *m) {
  char s[2] = {m->start, 0}, e[2] = {m->end, 0};
  return mk(m->id, m->repoch, s, e, m->server, m->aepoch);
}

static void test_model(void) {
  for (int round = 0; round < 50; round++) {
    struct mroute live[MAXR], hist[1024];
    int nlive = 1, nhist = 0;
    uint64_t next_id = 2, next_epoch = 2;
    live[0] = (struct mroute){1, 1, 1, 1, 0, 0};
    hist[nhist++] = live[0];
    for (int step = 0; step < 40 && nhist < 1000; step++) {
      int i = (int)tu_rand_below((uint64_t)nlive);
      int op = (int)tu_rand_below(3);
      struct mroute *m = &live[i];
      char lo = m->start ? m->start : 'a' - 1, hi = m->end ? m->end : 'z' + 1;
      if (op == 0 && hi - lo >= 2 && nlive < MAXR) { /* split */
        char k = (char)(lo + 1 + (int)tu_rand_below((uint64_t)(hi - lo - 1)));
        struct mroute l = *m, r = *m;
        l.id = next_id++, r.id = next_id++;
        l.repoch = r.repoch = next_epoch++;
        l.end = k, r.start = k;
        memmove(&live[i + 2], &live[i + 1], (size_t)(nlive - i - 1) * sizeof(*live));
        live[i] = l, live[i + 1] = r;
        nlive++;
        hist[nhist++] = l, hist[nhist++] = r;
      } else if (op == 1 && i + 1 < nlive) { /* merge with right neighbour */
        struct mroute g = *m;
        g.id = next_id++;
        g.repoch = next_epoch++;
        g.end = live[i + 1].end;
        live[i] = g;
        memmove(&live[i + 1], &live[i + 2], (size_t)(nlive - i - 2) * sizeof(*live));
        nlive--;
        hist[nhist++] = g;
      } else { /* move */
        m->server = 1 + tu_rand_below(3);
        m->aepoch++;
        hist[nhist++] = *m;
      }
    }
    route_cache *c = route_cache_new(1000);
    for (int k = 0; k < 3 * nhist; k++) {
      int h = (int)tu_rand_below((uint64_t)nhist);
      install1(c, "t", to_route(&hist[h]));
      /* Right after an install, no cached route overlapping the arriving
       * one is older than it: it went in, or a fresher one kept its place
       * and every older overlapping route went out. */
      rpc_route hr = to_route(&hist[h]);
      for (char ch = 'a' - 1; ch <= 'z' + 1; ch++) {
        char key[3] = {ch, 'x', 0};
        if (!rpc_route_contains(&hr, slice_from_str(key))) continue;
        rpc_route r;
        memset(&r, 0, sizeof(r));
        if (!route_cache_lookup(c, "t", slice_from_str(key), &r)) continue;
        CU_ASSERT(rpc_route_contains(&r, slice_from_str(key)));
        CU_ASSERT(r.range_epoch >= hr.range_epoch);
        if (r.tablet_id == hr.tablet_id) CU_ASSERT(r.assign_epoch >= hr.assign_epoch);
        rpc_route_clear(&r);
      }
      rpc_route_clear(&hr);
    }
    /* Installing the live set last makes the cache exactly the live map. */
    for (int i = 0; i < nlive; i++) install1(c, "t", to_route(&live[i]));
    route_cache_stats s;
    route_cache_get_stats(c, &s);
    CU_ASSERT_EQUAL(s.routes, (size_t)nlive);
    for (int i = 0; i < nlive; i++) {
      char key[3] = {live[i].start ? live[i].start : 'a' - 1, 0, 0};
      CU_ASSERT_EQUAL(at(c, "t", key), live[i].id);
    }
    route_cache_free(c);
  }
}

struct worker {
  route_cache *c;
  int id;
  long bad;
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  tu_rand_seed((uint64_t)w->id * 7919);
  char a[16], b[16], t[8];
  for (int i = 0; i < 20000; i++) {
    snprintf(t, sizeof(t), "t%d", (int)tu_rand_below(3));
    int k = (int)tu_rand_below(500);
    if (tu_rand_below(10) == 0) {
      key_of(2 * k, a);
      key_of(2 * k + 2, b);
      install1(w->c, t, mk((uint64_t)k + 1, 1 + tu_rand_below(4), a, b, 1, 1));
    } else {
      key_of(2 * k + 1, a);
      rpc_route r;
      memset(&r, 0, sizeof(r));
      if (route_cache_lookup(w->c, t, slice_from_str(a), &r)) {
        if (!rpc_route_contains(&r, slice_from_str(a))) w->bad++;
        rpc_route_clear(&r);
      }
    }
  }
  return NULL;
}

static void test_concurrent(void) {
  route_cache *c = route_cache_new(400);
  pthread_t th[8];
  struct worker w[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (struct worker){c, i + 1, 0};
    pthread_create(&th[i], NULL, worker_main, &w[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(w[i].bad, 0);
  }
  route_cache_stats s;
  route_cache_get_stats(c, &s);
  CU_ASSERT(s.routes <= 400);
  CU_ASSERT(s.hits > 0);
  route_cache_free(c);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"boundaries", test_boundaries},
      {"gap_is_a_miss", test_gap_is_a_miss},
      {"split_and_late_parent", test_split_and_late_parent},
      {"move_and_merge", test_move_and_merge},
      {"lookup_before", test_lookup_before},
      {"invalidate_and_forget", test_invalidate_and_forget},
      {"capacity_evicts_lru", test_capacity_evicts_least_recently_used},
      {"model", test_model},
      {"concurrent", test_concurrent},
      CU_TEST_INFO_NULL};
  tu_add_suite("route_cache", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
