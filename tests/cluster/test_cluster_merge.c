/* test_cluster_merge: the master merges emptied tablets and the tablet
 * servers open the merged tablets by reference.
 *
 * Two tablet servers; merge thresholds from master flags (inputs below
 * 1 MiB, any rate, at least 300 ms old). A table pre-split at its middle
 * key and split further by the operator into 10 tablets gets 3000 keys,
 * then nine keys in ten are deleted and automatic merges are switched on.
 * The master merges neighbours until only the two pre-split halves are
 * left (it never merges across an operator's pre-split key); every
 * remaining key must read back with its value and every deleted one be
 * absent, and a full scan must return exactly the remaining keys in
 * order. Writes to merged tablets work. Then the server holding the first
 * tablet is killed: its merged tablet reopens on the other server from the
 * same references and every key is still exact.
 *
 * Also: the master's split threshold replaces the servers' own. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/cluster.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/testutil.h"

#define NKEYS 3000
#define NSPLITS 9

static cluster *g_c;

static void key_of(int i, char *k) { sprintf(k, "key%05d", i); }

static void value_of(int i, int gen, char *v) {
  int n = sprintf(v, "value-%d-%d-", i, gen);
  for (; n < 200; n++) v[n] = (char)('a' + (i + n) % 26);
  v[n] = '\0';
}

static bool kept(int i) { return i % 10 == 3; }

/* Keys [0, NKEYS) in ascending order, `CHUNK` to a call: put with
 * generation `gen` (only the kept ones when `only_kept`), or delete the
 * ones not kept (gen < 0). Batches, not one durable write per key: on S3
 * every acknowledged write is a group-commit PUT of its own when the
 * writes come one at a time (about 25 ms each through s3rver), which made
 * 9,000 single-key writes take minutes; a Batch per tablet per chunk is
 * one commit. Merges see the same tablets, keys and tombstones. */
#define CHUNK 100
static void write_keys(const char *table, int gen, bool only_kept) {
  static char kbuf[CHUNK][16], vbuf[CHUNK][256];
  slice keys[CHUNK], vals[CHUNK];
  for (int at = 0; at < NKEYS;) {
    size_t n = 0;
    for (; at < NKEYS && n < CHUNK; at++) {
      bool k = kept(at);
      if (gen < 0 ? k : (only_kept && !k)) continue;
      key_of(at, kbuf[n]);
      keys[n] = slice_from_str(kbuf[n]);
      if (gen >= 0) {
        value_of(at, gen, vbuf[n]);
        vals[n] = slice_from_str(vbuf[n]);
      }
      n++;
    }
    if (n == 0) continue;
    if (gen < 0)
      TU_OK(kvc_delete_sorted(g_c, table, keys, n, 30000));
    else
      TU_OK(kvc_put_sorted(g_c, table, keys, vals, n, 30000));
  }
}

/* The table's tablet count. A master that does not answer within 5 s is
 * asked again, for up to 30 s: on S3 the master appends to its log (a PUT)
 * holding its state lock, and in a full ctest -j4 run beside other
 * sessions (load 41) one ListTablets waited out its 5 s deadline while the
 * merges were right (docs/testing.md, "The cluster suite on S3"). */
static size_t live_tablets(const char *table) {
  rpc_list_tablets_request q = {0};
  q.table = (char *)table;
  void *m = NULL;
  uint64_t until = cl_now_ms() + 30000;
  mica_err *err;
  while ((err = cl_call_master(g_c, &rpc_m_master_list_tablets, &q, 5000,
                               &m)) != NULL &&
         (err_code(err) == MICA_DEADLINE_EXCEEDED ||
          err_code(err) == MICA_UNAVAILABLE) &&
         cl_now_ms() < until) {
    err_free(err);
    rpc_msg_free(m);
    m = NULL;
  }
  TU_OK(err);
  const rpc_list_tablets_response *lt = (const void *)m;
  size_t n = lt ? lt->n_tablets : 0;
  rpc_msg_free(m);
  return n;
}

typedef struct scan_state {
  int next; /* index of the next kept key expected */
  int gen;
  uint64_t rows, bad;
} scan_state;

static int next_kept(int i) {
  while (i < NKEYS && !kept(i)) i++;
  return i;
}

static bool on_row(void *arg, slice k, slice v) {
  scan_state *s = arg;
  s->rows++;
  char wk[16], wv[256];
  if (s->next >= NKEYS) {
    s->bad++;
    return true;
  }
  key_of(s->next, wk);
  value_of(s->next, s->gen, wv);
  if (!slice_eq(k, slice_from_str(wk)) || !slice_eq(v, slice_from_str(wv))) {
    if (s->bad++ < 5)
      fprintf(stderr, "\nscan row %" PRIu64 ": got %.*s, want %s\n", s->rows,
              (int)(k.len < 20 ? k.len : 20), (const char *)k.data, wk);
  }
  s->next = next_kept(s->next + 1);
  return true;
}

/* Every key read one by one, and a full scan. */
static void check_all(const char *table, int gen) {
  buf v = BUF_INIT;
  int bad = 0;
  for (int i = 0; i < NKEYS; i++) {
    char k[16], wv[256];
    key_of(i, k);
    value_of(i, gen, wv);
    bool found = false;
    mica_err *err = kvc_get(g_c, table, slice_from_str(k), &found, &v, 30000);
    if (err != NULL) {
      if (bad++ < 5) fprintf(stderr, "\nget %s: %s\n", k, err_msg(err));
      err_free(err);
      continue;
    }
    if (found != kept(i) ||
        (found && !slice_eq(buf_slice(&v), slice_from_str(wv)))) {
      if (bad++ < 5)
        fprintf(stderr, "\nget %s: found %d, want %d\n", k, found, kept(i));
    }
  }
  buf_free(&v);
  CU_ASSERT_EQUAL(bad, 0);
  scan_state s = {next_kept(0), gen, 0, 0};
  TU_OK(kvc_scan(g_c, table, on_row, &s, 60000));
  CU_ASSERT_EQUAL(s.bad, 0);
  CU_ASSERT_EQUAL(s.next, NKEYS);
  CU_ASSERT_EQUAL(s.rows, NKEYS / 10);
}

/* Waits until the table has at most `most` tablets. */
static size_t wait_merged(const char *table, size_t most, int timeout_ms) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  size_t n;
  while ((n = live_tablets(table)) > most && cl_now_ms() < until)
    cl_sleep_ms(200);
  return n;
}

/* Operator split at `key` through the master, retried while the tablet
 * holding the key is still opening after the previous split. */
static void split_at(const char *table, slice key) {
  uint64_t until = cl_now_ms() + 30000;
  for (;;) {
    rpc_tablet_route *rt;
    rpc_lookup_tablets_response *lr;
    TU_OK(kvc_route(g_c, table, key, 30000, &rt, &lr));
    rpc_split_tablet_request q = {0};
    q.tablet_id = rt->desc->tablet_id;
    q.split_key.data = (uint8_t *)key.data;
    q.split_key.len = key.len;
    rpc_msg_free(lr);
    mica_err *err = cl_call_master(g_c, &rpc_m_master_split_tablet, &q,
                                   10000, NULL);
    if (err == NULL) return;
    if (cl_now_ms() > until) {
      TU_OK(err);
      return;
    }
    err_free(err);
    cl_sleep_ms(50);
  }
}

static mica_err *set_merges(bool on) {
  rpc_configure_request q = {0};
  q.has_merge_enabled = true;
  q.merge_enabled = on;
  return cl_call_master(g_c, &rpc_m_master_configure, &q, 5000, NULL);
}

static void test_merge_emptied(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  /* Merges start off so that the table can be loaded split; they are
   * switched on once most keys are deleted. */
  static const char *const margs[] = {
      "--merge",          "off", "--merge-max-bytes", "1M",
      "--merge-max-rate", "1e9", "--merge-min-age-ms", "300", NULL};
  o.master_args = margs;
  TU_OK(cl_start(&o, &g_c));
  /* A pre-split table (one operator boundary, which merges never undo),
   * split further by operator splits into 10 tablets. */
  char k[16];
  key_of(NKEYS / 2, k);
  slice presplit = slice_from_str(k);
  TU_OK(kvc_create_table(g_c, "m", &presplit, 1));
  for (int i = 1; i < NSPLITS + 1; i++) {
    if (i * NKEYS / (NSPLITS + 1) == NKEYS / 2) continue;
    key_of(i * NKEYS / (NSPLITS + 1), k);
    split_at("m", slice_from_str(k));
  }
  size_t before = live_tablets("m");
  CU_ASSERT_EQUAL(before, NSPLITS + 1);

  write_keys("m", 0, false);
  write_keys("m", -1, false); /* nine keys in ten deleted */
  /* Both servers declare can_merge, so the master accepts the switch
   * (it answers NOT_SUPPORTED while some live server cannot merge). */
  TU_OK(set_merges(true));
  uint64_t t0 = cl_now_ms();
  size_t n = wait_merged("m", 2, 60000);
  fprintf(stderr, "\n  %zu tablets merged into %zu in %" PRIu64 " ms\n",
          before, n, cl_now_ms() - t0);
  /* The two halves of the pre-split table are never merged together. */
  CU_ASSERT_EQUAL(n, 2);
  check_all("m", 0);

  /* Writes to merged tablets. */
  write_keys("m", 1, true);
  check_all("m", 1);

  /* The server of the first tablet dies: the merged tablet reopens on the
   * other server from the same references (the master re-sends its
   * sources; the merge is already made, so only the open happens). */
  rpc_tablet_route *rt;
  rpc_lookup_tablets_response *lr;
  TU_OK(kvc_route(g_c, "m", slice_from_str("key00000"), 10000, &rt, &lr));
  int victim = cl_tserver_slot(g_c, rt->location->address);
  rpc_msg_free(lr);
  CU_ASSERT_FATAL(victim >= 0);
  TU_OK(cl_kill_tserver(g_c, victim));
  check_all("m", 1);
  CU_ASSERT_EQUAL(live_tablets("m"), 2);

  cl_free(g_c);
  g_c = NULL;
}

/* The master's --split-threshold reaches the servers in
 * RegisterServerResponse.split_threshold_bytes and replaces their own
 * (10 GiB by default here): 600 KB of data in a table must split at a
 * 64 KiB threshold. */
static void test_master_split_threshold(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  static const char *const margs[] = {"--merge", "off", "--split-threshold",
                                      "64K", NULL};
  o.master_args = margs;
  TU_OK(cl_start(&o, &g_c));
  TU_OK(kvc_create_table(g_c, "s", NULL, 0));
  write_keys("s", 0, false);
  uint64_t until = cl_now_ms() + 30000;
  size_t n;
  while ((n = live_tablets("s")) < 4 && cl_now_ms() < until) cl_sleep_ms(200);
  fprintf(stderr, "\n  %zu tablets at a 64 KiB threshold\n", n);
  CU_ASSERT(n >= 4);
  cl_free(g_c);
  g_c = NULL;
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("merge", NULL, NULL);
  CU_add_test(s, "merge_emptied", test_merge_emptied);
  CU_add_test(s, "master_split_threshold", test_master_split_threshold);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
