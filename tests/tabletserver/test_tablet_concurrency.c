/* test_tablet_concurrency: 8 writers and 4 readers/scanners on one tablet
 * while background flushes and compactions run (tiny memtables), meant
 * for the sanitizer build as much as the normal one.
 *
 * Writer w puts keys "w<w>-<n>" for n = 0, 1, 2, ... (some synced, some
 * as batches of two) with values that repeat the key, deletes every
 * seventh key it wrote a while ago, and publishes how far it got. Readers
 * check that every key a writer had acknowledged before the read started
 * is there (unless deleted), with its own value; scanners check that
 * forward and reverse scans are strictly ordered, show only well-formed
 * values, and at a snapshot show exactly what a second pass over the same
 * snapshot shows. At the end a full check against what the writers did. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tabletserver/tablet.h"
#include "tests/tabletserver/tt.h"
#include "tests/harness/testutil.h"

#define WRITERS 8
#define READERS 4
#define PER_WRITER 1500

static tablet *tab;
static atomic_long acked[WRITERS];
static atomic_int failures;
static atomic_bool done;

/* Writers delete key m once they have written m + 20. */
static bool deleted(long n, long upto) { return n % 7 == 3 && n + 21 <= upto; }

static void key_of(int w, long n, char *out, size_t size) {
  snprintf(out, size, "w%d-%06ld", w, n);
}

static void *writer(void *arg) {
  int w = (int)(intptr_t)arg;
  tu_rand_seed(1000 + (uint64_t)w);
  char k[32], v[64], k2[32], v2[64];
  long next_del = 0;
  for (long n = 0; n < PER_WRITER; n++) {
    key_of(w, n, k, sizeof(k));
    snprintf(v, sizeof(v), "%s=value", k);
    mica_err *err;
    if (n % 10 == 9 && n + 1 < PER_WRITER) {
      wbatch *b = wbatch_new();
      wbatch_put(b, slice_from_str(k), slice_from_str(v));
      key_of(w, n + 1, k2, sizeof(k2));
      snprintf(v2, sizeof(v2), "%s=value", k2);
      wbatch_put(b, slice_from_str(k2), slice_from_str(v2));
      err = tab_write(tab, b, tu_rand_below(4) == 0);
      wbatch_free(b);
      n++;
    } else {
      err = tab_put(tab, slice_from_str(k), slice_from_str(v),
                    tu_rand_below(8) == 0);
    }
    if (err != NULL) {
      fprintf(stderr, "writer %d: %s\n", w, err_msg(err));
      err_free(err);
      atomic_fetch_add(&failures, 1);
      break;
    }
    for (; next_del <= n - 20; next_del++) {
      if (next_del % 7 != 3) continue;
      key_of(w, next_del, k, sizeof(k));
      err = tab_delete(tab, slice_from_str(k), false);
      if (err != NULL) {
        err_free(err);
        atomic_fetch_add(&failures, 1);
        return NULL;
      }
    }
    atomic_store(&acked[w], n + 1);
  }
  return NULL;
}

static bool well_formed(slice k, slice v) {
  return v.len == k.len + 6 && memcmp(v.data, k.data, k.len) == 0 &&
         memcmp(v.data + k.len, "=value", 6) == 0;
}

static void *reader(void *arg) {
  int id = (int)(intptr_t)arg;
  tu_rand_seed(2000 + (uint64_t)id);
  buf v = BUF_INIT, prev = BUF_INIT;
  char k[32];
  long rounds = 0;
  while (!atomic_load(&done) || rounds < 10) {
    rounds++;
    if (id % 2 == 0) {
      /* Point reads of acknowledged keys. */
      for (int i = 0; i < 200; i++) {
        int w = (int)tu_rand_below(WRITERS);
        long upto = atomic_load(&acked[w]);
        if (upto == 0) continue;
        long n = (long)tu_rand_below((uint64_t)upto);
        key_of(w, n, k, sizeof(k));
        mica_err *err = tab_get(tab, NULL, slice_from_str(k), &v);
        if (err == NULL) {
          if (!well_formed(slice_from_str(k), buf_slice(&v)))
            atomic_fetch_add(&failures, 1);
        } else if (err_code(err) != MICA_NOT_FOUND || n % 7 != 3) {
          fprintf(stderr, "reader: %s: %s\n", k, err_msg(err));
          atomic_fetch_add(&failures, 1);
        }
        err_free(err);
      }
    } else {
      /* Scans, both directions, twice over one snapshot. */
      tab_snapshot *s = tab_snapshot_new(tab);
      tab_scan_options o;
      tab_scan_options_init(&o);
      o.snap = s;
      o.reverse = tu_rand_below(2);
      char pre[8];
      snprintf(pre, sizeof(pre), "w%d-", (int)tu_rand_below(WRITERS));
      o.prefix = slice_from_str(pre);
      uint64_t counts[2] = {0, 0};
      for (int pass = 0; pass < 2; pass++) {
        iter *it;
        if (tab_scan(tab, &o, &it) != NULL) {
          atomic_fetch_add(&failures, 1);
          break;
        }
        buf_clear(&prev);
        bool first = true;
        for (; iter_valid(it); iter_next(it)) {
          slice key = iter_key(it);
          if (!first) {
            int c = slice_cmp(key, buf_slice(&prev));
            if (o.reverse ? c >= 0 : c <= 0) atomic_fetch_add(&failures, 1);
          }
          first = false;
          buf_clear(&prev);
          buf_append_slice(&prev, key);
          if (!well_formed(key, iter_value(it))) atomic_fetch_add(&failures, 1);
          counts[pass]++;
        }
        if (iter_status(it) != NULL) atomic_fetch_add(&failures, 1);
        iter_close(it);
      }
      if (counts[0] != counts[1]) {
        fprintf(stderr, "snapshot scans differ: %llu vs %llu\n",
                (unsigned long long)counts[0], (unsigned long long)counts[1]);
        atomic_fetch_add(&failures, 1);
      }
      tab_snapshot_free(s);
    }
  }
  buf_free(&v);
  buf_free(&prev);
  return NULL;
}

static void test_concurrency(void) {
  const char *root = tu_tmpdir();
  res_pool *res = tt_res(env_posix(), 512 << 10);
  tab_options o;
  tt_options(&o);
  o.memtable_bytes = 32 << 10;
  o.compaction_trigger = 3;
  TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, slice_make(NULL, 0),
                 slice_make(NULL, 0), 1, &o, &tab));
  pthread_t wt[WRITERS], rt[READERS];
  for (int i = 0; i < WRITERS; i++)
    pthread_create(&wt[i], NULL, writer, (void *)(intptr_t)i);
  for (int i = 0; i < READERS; i++)
    pthread_create(&rt[i], NULL, reader, (void *)(intptr_t)i);
  for (int i = 0; i < WRITERS; i++) pthread_join(wt[i], NULL);
  atomic_store(&done, true);
  for (int i = 0; i < READERS; i++) pthread_join(rt[i], NULL);
  CU_ASSERT_EQUAL(atomic_load(&failures), 0);

  tab_stats st;
  tab_get_stats(tab, &st);
  fprintf(stderr, "flushes %llu compactions %llu ssts %llu stalls %llu\n",
          (unsigned long long)st.flushes, (unsigned long long)st.compactions,
          (unsigned long long)st.num_ssts, (unsigned long long)st.stalls);
  CU_ASSERT(st.flushes > 5);
  CU_ASSERT(st.compactions > 0);

  /* Everything the writers did, checked after a reopen too. */
  for (int round = 0; round < 2; round++) {
    buf v = BUF_INIT;
    char k[32];
    for (int w = 0; w < WRITERS; w++) {
      for (long n = 0; n < PER_WRITER; n++) {
        key_of(w, n, k, sizeof(k));
        mica_err *err = tab_get(tab, NULL, slice_from_str(k), &v);
        if (deleted(n, PER_WRITER)) {
          CU_ASSERT_EQUAL(err_code(err), MICA_NOT_FOUND);
        } else {
          CU_ASSERT_PTR_NULL(err);
          CU_ASSERT(err != NULL || well_formed(slice_from_str(k), buf_slice(&v)));
        }
        err_free(err);
      }
    }
    buf_free(&v);
    TU_OK(tab_close(tab));
    if (round == 0)
      TU_OK(tab_open(res, tt_tablet_dir(root, 1), 1, slice_make(NULL, 0),
                     slice_make(NULL, 0), 2, &o, &tab));
  }
  res_free(res);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {{"concurrency", test_concurrency},
                                      CU_TEST_INFO_NULL};
  tu_add_suite("tablet_concurrency", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
