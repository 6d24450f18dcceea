/* test_tablet_model: thousands of random operations on tablets checked
 * against an in-memory sorted map.
 *
 * Puts, deletes and batches (some deliberately straddling a tablet
 * boundary, which must apply nothing), gets, scans in both directions with
 * random start/end/prefix/limit, scans at older snapshots, flushes,
 * compactions, splits at the middle key, garbage collection and
 * close+reopen under a new assign_epoch. Every read is compared with the
 * model. Keys come from a small alphabet that includes 0x00 and 0xff, so
 * prefixes, boundaries and the all-0xff prefix case all get hit. Memtables
 * are tiny, so rotations and background flushes and compactions run
 * throughout. Set MICA_TEST_SEED to replay a failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tabletserver/tablet.h"
#include "tests/tabletserver/tt.h"
#include "tests/harness/testutil.h"

#define MAXT 64

typedef struct live {
  tablet *t;
  uint64_t id;
  buf lo, hi; /* hi.len == 0: unbounded */
} live;

static live tabs[MAXT];
static size_t ntabs;
static uint64_t next_id = 2, epoch = 1;
static const char *root;
static res_pool *res;

static void rand_key(buf *k) {
  static const uint8_t alpha[] = {0x00, 'a', 'b', 0xff};
  buf_clear(k);
  size_t n = 1 + tu_rand_below(4);
  for (size_t i = 0; i < n; i++) buf_push(k, alpha[tu_rand_below(4)]);
}

static void rand_value(buf *v) {
  size_t n = tu_rand_below(10) == 0 ? 2000 + tu_rand_below(3000)
                                    : tu_rand_below(64);
  buf_resize(v, n);
  tu_rand_bytes(v->data, n);
}

static bool contains(const live *l, slice k) {
  if (l->lo.len > 0 && slice_cmp(k, buf_slice(&l->lo)) < 0) return false;
  if (l->hi.len > 0 && slice_cmp(k, buf_slice(&l->hi)) >= 0) return false;
  return true;
}

static live *route(slice k) {
  for (size_t i = 0; i < ntabs; i++)
    if (contains(&tabs[i], k)) return &tabs[i];
  CU_FAIL_FATAL("no tablet covers a key");
  return NULL;
}

static void options(tab_options *o) {
  tt_options(o);
  o->memtable_bytes = 8 << 10;
}

static void open_live(live *l) {
  tab_options o;
  options(&o);
  TU_OK(tab_open(res, tt_tablet_dir(root, l->id), l->id, buf_slice(&l->lo),
                 buf_slice(&l->hi), epoch, &o, &l->t));
}

static void check_get(tt_model *m, slice k) {
  live *l = route(k);
  buf v = BUF_INIT;
  mica_err *err = tab_get(l->t, NULL, k, &v);
  long i = tt_model_find(m, k);
  if (i < 0) {
    CU_ASSERT_EQUAL(err_code(err), MICA_NOT_FOUND);
  } else {
    if (err != NULL) fprintf(stderr, "get: %s\n", err_msg(err));
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT(slice_eq(buf_slice(&v), buf_slice(&m->vals[i])));
  }
  err_free(err);
  buf_free(&v);
}

static void random_scan(live *l, const tt_model *m,
                        const tab_snapshot *snap) {
  tab_scan_options o;
  tab_scan_options_init(&o);
  buf a = BUF_INIT, b = BUF_INIT, p = BUF_INIT;
  o.reverse = tu_rand_below(2);
  if (tu_rand_below(3) == 0) {
    rand_key(&a);
    o.start = buf_slice(&a);
  }
  if (tu_rand_below(3) == 0) {
    rand_key(&b);
    o.end = buf_slice(&b);
  }
  if (o.start.len > 0 && o.end.len > 0 && slice_cmp(o.start, o.end) > 0) {
    slice x = o.start;
    o.start = o.end;
    o.end = x;
  }
  if (tu_rand_below(4) == 0) {
    rand_key(&p);
    p.len = 1 + tu_rand_below(2) < p.len ? 1 + tu_rand_below(2) : p.len;
    o.prefix = buf_slice(&p);
  }
  if (tu_rand_below(3) == 0) o.limit = 1 + tu_rand_below(20);
  o.snap = snap;
  tt_check_scan(l->t, &o, m, buf_slice(&l->lo), buf_slice(&l->hi));
  buf_free(&a);
  buf_free(&b);
  buf_free(&p);
}

static void do_split(live *l, const tt_model *m) {
  if (ntabs + 1 >= MAXT) return;
  buf mid = BUF_INIT;
  mica_err *err = tab_middle_key(l->t, &mid);
  if (err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    buf_free(&mid);
    return;
  }
  TU_OK(err);
  /* The middle key splits the tablet's live keys. */
  size_t below = 0, above = 0;
  for (size_t i = 0; i < m->n; i++) {
    slice k = buf_slice(&m->keys[i]);
    if (!contains(l, k)) continue;
    if (slice_cmp(k, buf_slice(&mid)) < 0) below++;
    else above++;
  }
  CU_ASSERT(below > 0 && above > 0);
  tab_options o;
  options(&o);
  live left = {0}, right = {0};
  left.id = next_id++;
  right.id = next_id++;
  buf_append_slice(&left.lo, buf_slice(&l->lo));
  buf_append_slice(&left.hi, buf_slice(&mid));
  buf_append_slice(&right.lo, buf_slice(&mid));
  buf_append_slice(&right.hi, buf_slice(&l->hi));
  TU_OK(tab_split(l->t, buf_slice(&mid), left.id, right.id, &o, &left.t,
                  &right.t));
  buf_free(&l->lo);
  buf_free(&l->hi);
  *l = left;
  tabs[ntabs++] = right;
  buf_free(&mid);
}

static void reopen_all(void) {
  epoch++;
  for (size_t i = 0; i < ntabs; i++) {
    TU_OK(tab_close(tabs[i].t));
    open_live(&tabs[i]);
  }
}

static void test_model(void) {
  root = tu_tmpdir();
  res = tt_res(env_posix(), 256 << 10);
  tt_model m = {0};
  tabs[0].id = 1;
  open_live(&tabs[0]);
  ntabs = 1;
  buf k = BUF_INIT, v = BUF_INIT;
  wbatch *b = wbatch_new();
  char tablets[600];
  snprintf(tablets, sizeof(tablets), "%s/tablets", root);
  int ops = 6000;
  size_t scans = 0;
  for (int step = 0; step < ops; step++) {
    uint64_t r = tu_rand_below(1000);
    if (r < 330) {
      rand_key(&k);
      rand_value(&v);
      TU_OK(tab_put(route(buf_slice(&k))->t, buf_slice(&k), buf_slice(&v),
                    tu_rand_below(20) == 0));
      tt_model_put(&m, buf_slice(&k), buf_slice(&v));
    } else if (r < 430) {
      rand_key(&k);
      TU_OK(tab_delete(route(buf_slice(&k))->t, buf_slice(&k), false));
      tt_model_del(&m, buf_slice(&k));
    } else if (r < 510) {
      live *l = &tabs[tu_rand_below(ntabs)];
      wbatch_clear(b);
      tt_model staged;
      tt_model_copy(&staged, &m);
      bool straddle = false;
      int n = 1 + (int)tu_rand_below(6);
      for (int i = 0; i < n; i++) {
        rand_key(&k);
        if (!contains(l, buf_slice(&k))) {
          if (tu_rand_below(4) != 0) continue;
          straddle = true;
        }
        if (tu_rand_below(3) == 0) {
          wbatch_delete(b, buf_slice(&k));
          tt_model_del(&staged, buf_slice(&k));
        } else {
          rand_value(&v);
          wbatch_put(b, buf_slice(&k), buf_slice(&v));
          tt_model_put(&staged, buf_slice(&k), buf_slice(&v));
        }
      }
      mica_err *err = tab_write(l->t, b, tu_rand_below(10) == 0);
      if (straddle) {
        CU_ASSERT_EQUAL(err_code(err), MICA_OUT_OF_RANGE);
        err_free(err);
        tt_model_free(&staged);
      } else {
        TU_OK(err);
        tt_model_free(&m);
        m = staged;
      }
    } else if (r < 710) {
      rand_key(&k);
      check_get(&m, buf_slice(&k));
    } else if (r < 850) {
      random_scan(&tabs[tu_rand_below(ntabs)], &m, NULL);
      scans++;
    } else if (r < 870) {
      TU_OK(tab_flush(tabs[tu_rand_below(ntabs)].t));
    } else if (r < 885) {
      TU_OK(tab_compact(tabs[tu_rand_below(ntabs)].t));
    } else if (r < 900) {
      do_split(&tabs[tu_rand_below(ntabs)], &m);
    } else if (r < 908) {
      reopen_all();
    } else if (r < 915) {
      uint64_t removed;
      TU_OK(tab_collect_garbage(env_posix(), tablets, &removed));
    } else if (r < 940) {
      /* A snapshot must not see writes made after it. */
      live *l = &tabs[tu_rand_below(ntabs)];
      tab_snapshot *s = tab_snapshot_new(l->t);
      tt_model before;
      tt_model_copy(&before, &m);
      for (int i = 0; i < 20; i++) {
        rand_key(&k);
        live *w = route(buf_slice(&k));
        if (i % 3 == 0) {
          TU_OK(tab_delete(w->t, buf_slice(&k), false));
          tt_model_del(&m, buf_slice(&k));
        } else {
          rand_value(&v);
          TU_OK(tab_put(w->t, buf_slice(&k), buf_slice(&v), false));
          tt_model_put(&m, buf_slice(&k), buf_slice(&v));
        }
      }
      if (tu_rand_below(2)) TU_OK(tab_flush(l->t));
      random_scan(l, &before, s);
      tab_snapshot_free(s);
      tt_model_free(&before);
    } else {
      /* A large batch over one tablet; repeated keys: the last wins. */
      live *l = &tabs[tu_rand_below(ntabs)];
      wbatch_clear(b);
      tt_model staged;
      tt_model_copy(&staged, &m);
      for (int i = 0; i < 40; i++) {
        rand_key(&k);
        if (!contains(l, buf_slice(&k))) continue;
        rand_value(&v);
        wbatch_put(b, buf_slice(&k), buf_slice(&v));
        tt_model_put(&staged, buf_slice(&k), buf_slice(&v));
      }
      TU_OK(tab_write(l->t, b, false));
      tt_model_free(&m);
      m = staged;
    }
  }
  /* Final full check of every tablet in both directions. */
  for (size_t i = 0; i < ntabs; i++) {
    tab_scan_options o;
    tab_scan_options_init(&o);
    tt_check_scan(tabs[i].t, &o, &m, buf_slice(&tabs[i].lo),
                  buf_slice(&tabs[i].hi));
    o.reverse = true;
    tt_check_scan(tabs[i].t, &o, &m, buf_slice(&tabs[i].lo),
                  buf_slice(&tabs[i].hi));
  }
  fprintf(stderr, "model: %zu keys, %zu tablets, %zu scans\n", m.n, ntabs,
          scans);
  CU_ASSERT(ntabs > 1);
  reopen_all();
  for (size_t i = 0; i < m.n; i++) check_get(&m, buf_slice(&m.keys[i]));
  for (size_t i = 0; i < ntabs; i++) {
    TU_OK(tab_close(tabs[i].t));
    buf_free(&tabs[i].lo);
    buf_free(&tabs[i].hi);
  }
  CU_ASSERT_EQUAL(res_mem_usage(res), 0);
  wbatch_free(b);
  buf_free(&k);
  buf_free(&v);
  tt_model_free(&m);
  res_free(res);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {{"model", test_model},
                                      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_model", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
