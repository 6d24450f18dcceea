/* test_client: libmica against a real cluster (one mica-master and three
 * mica-tserver processes on loopback, from tests/harness).
 *
 * Every call of include/mica/mica.h, with its failure paths: single keys,
 * batches cut at tablet boundaries, multi-get, scans compared with an
 * in-memory model over many tablets (forward, reverse, bounds, prefixes,
 * limits, keys-only), scans while another client splits and moves tablets
 * underneath them, threads sharing one client, a warm routing cache made
 * stale on purpose that must recover without a single master lookup, keys
 * with every byte value, the master down for a few seconds, and bad
 * arguments.
 *
 * One cluster serves the whole program; each test uses its own tables. The
 * balancer and merges are off so that only the tests move tablets. */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"
#include "mica/mica.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;
static mica_client *g_m; /* shared client for most tests */

static const char *const g_master_args[] = {"--merge", "off", "--balancer", "off", NULL};

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.master_args = g_master_args;
  if (cl_suite_start(&o, &g_c) != 0) return 1;
  mica_options mo;
  mica_options_init(&mo);
  mo.deadline_ms = 20000;
  if (mica_open(cl_master_address(g_c), &mo, &g_m) != MICA_OK) return 1;
  return 0;
}

static int suite_clean(void) {
  mica_close(g_m);
  g_m = NULL;
  return cl_suite_stop(&g_c);
}

#define OK(call)                                                              \
  do {                                                                        \
    int ok_rc_ = (call);                                                      \
    if (ok_rc_ != MICA_OK)                                                    \
      fprintf(stderr, "\n%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,   \
              mica_code_name(ok_rc_), mica_errmsg());                         \
    CU_ASSERT_EQUAL_FATAL(ok_rc_, MICA_OK);                                   \
  } while (0)

#define CODE(call, want)                                                      \
  do {                                                                        \
    int c_rc_ = (call);                                                       \
    if (c_rc_ != (want))                                                      \
      fprintf(stderr, "\n%s:%d: %s -> %s (%s), want %s\n", __FILE__, __LINE__, \
              #call, mica_code_name(c_rc_), mica_errmsg(), mica_code_name(want)); \
    CU_ASSERT_EQUAL(c_rc_, (want));                                           \
  } while (0)

static mica_client *open_client(int64_t deadline_ms) {
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = deadline_ms;
  mica_client *c = NULL;
  OK(mica_open(cl_master_address(g_c), &o, &c));
  return c;
}

/* Creates `table` split at "k<step>", "k<2 step>", ... below "k<n>". */
static void create_split(mica_client *c, const char *table, int n_splits, int step) {
  char (*bufs)[16] = calloc((size_t)n_splits + 1, 16);
  mica_key *keys = calloc((size_t)n_splits + 1, sizeof *keys);
  for (int i = 0; i < n_splits; i++) {
    snprintf(bufs[i], 16, "k%06d", (i + 1) * step);
    keys[i].data = bufs[i];
    keys[i].len = strlen(bufs[i]);
  }
  int rc = mica_create_table(c, table, keys, (size_t)n_splits);
  free(keys);
  free(bufs);
  OK(rc); /* after the frees: a failed fatal assertion does not return */
}

static void put_str(mica_client *c, const char *t, const char *k, const char *v) {
  OK(mica_put(c, t, k, strlen(k), v, strlen(v)));
}

/* Asserts `k` reads as `v` (NULL: not found). */
static void expect(mica_client *c, const char *t, const char *k, const char *v) {
  void *got = NULL;
  size_t len = 0;
  int rc = mica_get(c, t, k, strlen(k), &got, &len);
  if (v == NULL) {
    CU_ASSERT_EQUAL(rc, MICA_NOT_FOUND);
    CU_ASSERT_PTR_NULL(got);
  } else {
    if (rc != MICA_OK) fprintf(stderr, "\nget %s: %s\n", k, mica_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, MICA_OK);
    CU_ASSERT_EQUAL(len, strlen(v));
    CU_ASSERT(len == strlen(v) && memcmp(got, v, len) == 0);
  }
  mica_free(got);
}

/* ---- single keys and bad arguments ---- */

static void test_put_get_delete(void) {
  create_split(g_m, "basic", 3, 100);
  put_str(g_m, "basic", "k000050", "a");
  put_str(g_m, "basic", "k000150", "b");
  put_str(g_m, "basic", "k000350", "");
  expect(g_m, "basic", "k000050", "a");
  expect(g_m, "basic", "k000150", "b");
  expect(g_m, "basic", "k000350", "");
  expect(g_m, "basic", "k000999", NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "not found"));
  put_str(g_m, "basic", "k000050", "a2");
  expect(g_m, "basic", "k000050", "a2");
  OK(mica_delete(g_m, "basic", "k000050", 7));
  expect(g_m, "basic", "k000050", NULL);
  OK(mica_delete(g_m, "basic", "k000050", 7)); /* missing is fine */
  CU_ASSERT_STRING_EQUAL(mica_errmsg(), "ok");

  /* Unknown table, on every kind of call. */
  void *v = NULL;
  size_t vl = 0;
  CODE(mica_get(g_m, "nosuch", "a", 1, &v, &vl), MICA_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "nosuch"));
  CODE(mica_put(g_m, "nosuch", "a", 1, "b", 1), MICA_NOT_FOUND);
  CODE(mica_delete(g_m, "nosuch", "a", 1), MICA_NOT_FOUND);
  mica_scanner *s = NULL;
  CODE(mica_scan_open(g_m, "nosuch", NULL, &s), MICA_NOT_FOUND);
  CU_ASSERT_PTR_NULL(s);
  CODE(mica_drop_table(g_m, "nosuch"), MICA_NOT_FOUND);
  mica_tablet_info *ti = NULL;
  size_t n = 0;
  CODE(mica_list_tablets(g_m, "nosuch", &ti, &n), MICA_NOT_FOUND);

  /* Bad arguments never reach a server. */
  mica_stats before, after;
  mica_get_stats(g_m, &before);
  char *big = calloc(1, (8u << 20) + 2);
  CODE(mica_put(g_m, "basic", "", 0, "v", 1), MICA_INVALID_ARGUMENT);
  CODE(mica_put(g_m, "basic", NULL, 3, "v", 1), MICA_INVALID_ARGUMENT);
  CODE(mica_put(g_m, "basic", big, 16385, "v", 1), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "16384"));
  CODE(mica_put(g_m, "basic", "k", 1, big, (8u << 20) + 1), MICA_INVALID_ARGUMENT);
  CODE(mica_put(g_m, "basic", "k", 1, NULL, 5), MICA_INVALID_ARGUMENT);
  CODE(mica_put(g_m, "", "k", 1, "v", 1), MICA_INVALID_ARGUMENT);
  CODE(mica_put(g_m, NULL, "k", 1, "v", 1), MICA_INVALID_ARGUMENT);
  CODE(mica_get(g_m, "basic", "", 0, &v, &vl), MICA_INVALID_ARGUMENT);
  CODE(mica_delete(g_m, "basic", big, 20000), MICA_INVALID_ARGUMENT);
  mica_scan_options so = {0};
  so.start = "b";
  so.start_len = 1;
  so.end = "a";
  so.end_len = 1;
  CODE(mica_scan_open(g_m, "basic", &so, &s), MICA_INVALID_ARGUMENT);
  mica_get_stats(g_m, &after);
  CU_ASSERT_EQUAL(after.server_rpcs, before.server_rpcs);
  CU_ASSERT_EQUAL(after.master_calls, before.master_calls);
  /* The largest key and value the protocol allows do go through. */
  memset(big, 'x', (8u << 20));
  OK(mica_put(g_m, "basic", big, 16384, big, 8u << 20));
  OK(mica_get(g_m, "basic", big, 16384, &v, &vl));
  CU_ASSERT_EQUAL(vl, 8u << 20);
  CU_ASSERT(vl == (8u << 20) && memcmp(v, big, vl) == 0);
  mica_free(v);
  free(big);

  /* Options and addresses. */
  mica_client *c = NULL;
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = 0;
  CODE(mica_open("127.0.0.1:1", &o, &c), MICA_INVALID_ARGUMENT);
  CODE(mica_open("no-port", NULL, &c), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(c);
  mica_close(NULL);
  mica_scan_close(NULL);
  mica_batch_free(NULL);
  mica_free(NULL);
}

/* ---- admin ---- */

/* Waits until every tablet of `table` is serving (a new table's tablets
 * start out opening). */
static void wait_serving(const char *table) {
  uint64_t t0 = cl_now_ms();
  for (;;) {
    mica_tablet_info *ti = NULL;
    size_t n = 0;
    OK(mica_list_tablets(g_m, table, &ti, &n));
    size_t serving = 0;
    for (size_t i = 0; i < n; i++) serving += strcmp(ti[i].state, "serving") == 0;
    mica_free(ti);
    if (serving == n) return;
    CU_ASSERT_FATAL(cl_now_ms() - t0 < 10000);
    cl_sleep_ms(20);
  }
}

static void test_admin(void) {
  mica_key sk[2] = {{"m", 1}, {"t", 1}};
  OK(mica_create_table(g_m, "adm", sk, 2));
  CODE(mica_create_table(g_m, "adm", NULL, 0), MICA_ALREADY_EXISTS);
  mica_key bad[2] = {{"t", 1}, {"m", 1}};
  CODE(mica_create_table(g_m, "adm2", bad, 2), MICA_INVALID_ARGUMENT);
  CODE(mica_create_table(g_m, "bad name!", NULL, 0), MICA_INVALID_ARGUMENT);
  wait_serving("adm");

  mica_table_info *t = NULL;
  size_t n = 0;
  OK(mica_list_tables(g_m, &t, &n));
  bool seen = false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, "adm") == 0) {
      seen = true;
      CU_ASSERT_EQUAL(t[i].tablet_count, 3);
    }
  CU_ASSERT(seen);
  mica_free(t);

  mica_tablet_info *ti = NULL;
  OK(mica_list_tablets(g_m, "adm", &ti, &n));
  CU_ASSERT_EQUAL_FATAL(n, 3);
  CU_ASSERT_EQUAL(ti[0].start_len, 0);
  CU_ASSERT(ti[0].end_len == 1 && memcmp(ti[0].end_key, "m", 1) == 0);
  CU_ASSERT(ti[2].start_len == 1 && memcmp(ti[2].start_key, "t", 1) == 0);
  CU_ASSERT_EQUAL(ti[2].end_len, 0);
  for (size_t i = 0; i < n; i++) {
    CU_ASSERT_STRING_EQUAL(ti[i].table_name, "adm");
    CU_ASSERT_STRING_EQUAL(ti[i].state, "serving");
    CU_ASSERT(ti[i].server_id != 0 && ti[i].address[0] != '\0');
  }
  uint64_t mid = ti[1].tablet_id, mid_server = ti[1].server_id;
  mica_free(ti);

  put_str(g_m, "adm", "p", "1");
  put_str(g_m, "adm", "r", "2");
  uint64_t d[2] = {0, 0};
  CODE(mica_split_tablet(g_m, mid, "z", 1, d), MICA_INVALID_ARGUMENT);
  CODE(mica_split_tablet(g_m, 999999, "p", 1, d), MICA_NOT_FOUND);
  OK(mica_split_tablet(g_m, mid, "q", 1, d));
  CU_ASSERT(d[0] != 0 && d[1] != 0 && d[0] != d[1]);
  OK(mica_list_tablets(g_m, "adm", &ti, &n));
  CU_ASSERT_EQUAL(n, 4);
  mica_free(ti);
  expect(g_m, "adm", "p", "1");
  expect(g_m, "adm", "r", "2");

  mica_server_info *s = NULL;
  size_t ns = 0;
  OK(mica_list_servers(g_m, 0, &s, &ns));
  CU_ASSERT_EQUAL_FATAL(ns, 3);
  uint64_t target = 0;
  for (size_t i = 0; i < ns; i++) {
    CU_ASSERT_STRING_EQUAL(s[i].state, "live");
    CU_ASSERT(s[i].address[0] != '\0');
    if (s[i].server_id != mid_server && target == 0) target = s[i].server_id;
  }
  mica_free(s);
  OK(mica_move_tablet(g_m, d[1], target));
  OK(mica_list_tablets(g_m, "adm", &ti, &n));
  for (size_t i = 0; i < n; i++)
    if (ti[i].tablet_id == d[1]) CU_ASSERT_EQUAL(ti[i].server_id, target);
  mica_free(ti);
  expect(g_m, "adm", "r", "2");
  CODE(mica_move_tablet(g_m, 999999, 0), MICA_NOT_FOUND);

  mica_move *mv = NULL;
  size_t nm = 0;
  OK(mica_balance(g_m, 1, &mv, &nm));
  for (size_t i = 0; i < nm; i++) CU_ASSERT(mv[i].tablet_id != 0 && mv[i].reason != NULL);
  mica_free(mv);

  OK(mica_drop_table(g_m, "adm"));
  CODE(mica_put(g_m, "adm", "p", 1, "x", 1), MICA_NOT_FOUND);
  /* The name is free again, with fresh routes. */
  OK(mica_create_table(g_m, "adm", NULL, 0));
  expect(g_m, "adm", "p", NULL);
  put_str(g_m, "adm", "p", "new");
  expect(g_m, "adm", "p", "new");
}

/* ---- batches ---- */

static void test_batch(void) {
  create_split(g_m, "bat", 4, 100); /* k000100 k000200 k000300 k000400 */
  mica_batch *b = mica_batch_new();
  mica_batch_result r = {99, 99};
  OK(mica_batch_write(g_m, "bat", b, 0, &r)); /* empty */
  CU_ASSERT_EQUAL(r.parts, 0);

  CODE(mica_batch_put(b, "", 0, "v", 1), MICA_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(mica_batch_count(b), 0);
  OK(mica_batch_put(b, "k000010", 7, "1", 1));
  OK(mica_batch_put(b, "k000020", 7, "2", 1));
  OK(mica_batch_put(b, "k000010", 7, "3", 1)); /* later wins */
  OK(mica_batch_write(g_m, "bat", b, MICA_BATCH_SINGLE_TABLET, &r));
  CU_ASSERT_EQUAL(r.parts, 1);
  CU_ASSERT_EQUAL(r.parts_applied, 1);
  expect(g_m, "bat", "k000010", "3");
  expect(g_m, "bat", "k000020", "2");

  /* Spanning three tablets: refused whole with the flag, split without. */
  mica_batch_clear(b);
  OK(mica_batch_put(b, "k000350", 7, "x", 1));
  OK(mica_batch_delete(b, "k000020", 7));
  OK(mica_batch_put(b, "k000150", 7, "y", 1));
  OK(mica_batch_put(b, "k000151", 7, "z", 1));
  CODE(mica_batch_write(g_m, "bat", b, MICA_BATCH_SINGLE_TABLET, &r), MICA_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(r.parts, 3);
  CU_ASSERT_EQUAL(r.parts_applied, 0);
  expect(g_m, "bat", "k000350", NULL);
  expect(g_m, "bat", "k000020", "2");
  OK(mica_batch_write(g_m, "bat", b, 0, &r));
  CU_ASSERT_EQUAL(r.parts, 3);
  CU_ASSERT_EQUAL(r.parts_applied, 3);
  expect(g_m, "bat", "k000350", "x");
  expect(g_m, "bat", "k000020", NULL);
  expect(g_m, "bat", "k000150", "y");
  expect(g_m, "bat", "k000151", "z");

  /* A bigger batch over every tablet, then read back. */
  mica_batch_clear(b);
  char k[16], v[16];
  for (int i = 0; i < 500; i++) {
    snprintf(k, sizeof k, "k%06d", i);
    snprintf(v, sizeof v, "v%d", i);
    OK(mica_batch_put(b, k, strlen(k), v, strlen(v)));
  }
  OK(mica_batch_write(g_m, "bat", b, 0, &r));
  CU_ASSERT_EQUAL(r.parts, 5);
  for (int i = 0; i < 500; i += 37) {
    snprintf(k, sizeof k, "k%06d", i);
    snprintf(v, sizeof v, "v%d", i);
    expect(g_m, "bat", k, v);
  }
  CODE(mica_batch_write(g_m, "nosuch", b, 0, &r), MICA_NOT_FOUND);
  CU_ASSERT_EQUAL(r.parts_applied, 0);
  mica_batch_free(b);
}

/* ---- multi-get ---- */

static void test_multi_get(void) {
  create_split(g_m, "mg", 9, 100);
  char k[16];
  for (int i = 0; i < 1000; i += 2) {
    snprintf(k, sizeof k, "k%06d", i);
    OK(mica_put(g_m, "mg", k, strlen(k), k, strlen(k)));
  }
  /* Spread the tablets over the servers. */
  mica_tablet_info *ti = NULL;
  size_t n = 0;
  OK(mica_list_tablets(g_m, "mg", &ti, &n));
  for (size_t i = 0; i < n; i += 3) OK(mica_move_tablet(g_m, ti[i].tablet_id, 0));
  mica_free(ti);

  size_t nk = 700;
  char (*kb)[16] = calloc(nk, 16);
  mica_key *keys = calloc(nk, sizeof *keys);
  for (size_t i = 0; i < nk; i++) {
    snprintf(kb[i], 16, "k%06d", (int)((i * 7919) % 1000));
    keys[i].data = kb[i];
    keys[i].len = strlen(kb[i]);
  }
  keys[5] = keys[6]; /* a duplicate */
  mica_stats s0, s1;
  mica_get_stats(g_m, &s0);
  mica_value *vals = NULL;
  OK(mica_multi_get(g_m, "mg", keys, nk, &vals));
  mica_get_stats(g_m, &s1);
  for (size_t i = 0; i < nk; i++) {
    int num = atoi((const char *)keys[i].data + 1);
    if (num % 2 == 0) {
      CU_ASSERT_EQUAL(vals[i].code, MICA_OK);
      CU_ASSERT(vals[i].len == keys[i].len && memcmp(vals[i].data, keys[i].data, keys[i].len) == 0);
    } else {
      CU_ASSERT_EQUAL(vals[i].code, MICA_NOT_FOUND);
      CU_ASSERT_PTR_NULL(vals[i].data);
    }
  }
  mica_free(vals);
  /* One request per server, not per key or tablet. */
  CU_ASSERT(s1.server_rpcs - s0.server_rpcs <= 3 + (s1.retries - s0.retries) * 3);

  OK(mica_multi_get(g_m, "mg", keys, 0, &vals));
  mica_free(vals);
  mica_key badk = {"", 0};
  CODE(mica_multi_get(g_m, "mg", &badk, 1, &vals), MICA_INVALID_ARGUMENT);
  CODE(mica_multi_get(g_m, "nosuch", keys, 3, &vals), MICA_NOT_FOUND);
  mica_free(vals);
  free(keys);
  free(kb);
}

/* ---- scans against a model ---- */

typedef struct model {
  buf *k, *v;
  size_t n;
} model;

static int buf_cmp_p(const void *a, const void *b) {
  return slice_cmp(buf_slice(a), buf_slice(b));
}

/* The rows a scan must return, in order, as "key=value\n" lines (escaped). */
static void model_scan(const model *m, const mica_scan_options *o, buf *out) {
  slice st = slice_make(o->start, o->start_len), en = slice_make(o->end, o->end_len);
  slice px = slice_make(o->prefix, o->prefix_len);
  uint64_t cnt = 0;
  for (size_t j = 0; j < m->n; j++) {
    size_t i = o->reverse ? m->n - 1 - j : j;
    slice k = buf_slice(&m->k[i]);
    if (st.len && slice_cmp(k, st) < 0) continue;
    if (en.len && slice_cmp(k, en) >= 0) continue;
    if (px.len && !slice_starts_with(k, px)) continue;
    if (o->limit && cnt >= o->limit) break;
    slice_escape(k, out);
    buf_push(out, '=');
    if (!o->keys_only) slice_escape(buf_slice(&m->v[i]), out);
    buf_push(out, '\n');
    cnt++;
  }
}

static int client_scan(mica_client *c, const char *table, const mica_scan_options *o,
                       buf *out) {
  mica_scanner *s = NULL;
  int rc = mica_scan_open(c, table, o, &s);
  if (rc != MICA_OK) return rc;
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    rc = mica_scan_next(s, &has, &k, &kl, &v, &vl);
    if (rc != MICA_OK || !has) break;
    slice_escape(slice_make(k, kl), out);
    buf_push(out, '=');
    if (!o->keys_only) slice_escape(slice_make(v, vl), out);
    else if (v != NULL || vl != 0) rc = MICA_INTERNAL;
    buf_push(out, '\n');
  }
  mica_scan_close(s);
  return rc;
}

static void model_fill(mica_client *c, const char *table, model *m, size_t n) {
  m->n = n;
  m->k = calloc(n, sizeof(buf));
  m->v = calloc(n, sizeof(buf));
  char tmp[32];
  mica_batch *b = mica_batch_new();
  for (size_t i = 0; i < n; i++) {
    /* Keys share prefixes ("k0001..") so prefix scans find groups. */
    snprintf(tmp, sizeof tmp, "k%06d", (int)(i * 3));
    buf_append(&m->k[i], tmp, strlen(tmp));
    if (i % 5 == 0) buf_push(&m->k[i], 0xff);
    snprintf(tmp, sizeof tmp, "v%zu", i);
    buf_append(&m->v[i], tmp, strlen(tmp));
    OK(mica_batch_put(b, m->k[i].data, m->k[i].len, m->v[i].data, m->v[i].len));
  }
  OK(mica_batch_write(c, table, b, 0, NULL));
  mica_batch_free(b);
  qsort(m->k, n, sizeof(buf), buf_cmp_p);
  /* Values follow their keys: rebuild them from the sorted keys. */
  for (size_t i = 0; i < n; i++) {
    buf_free(&m->v[i]);
    void *v = NULL;
    size_t vl = 0;
    OK(mica_get(c, table, m->k[i].data, m->k[i].len, &v, &vl));
    buf_append(&m->v[i], v, vl);
    mica_free(v);
  }
}

static void model_free(model *m) {
  for (size_t i = 0; i < m->n; i++) {
    buf_free(&m->k[i]);
    buf_free(&m->v[i]);
  }
  free(m->k);
  free(m->v);
}

/* A random scan over keys k000000..k00300x. */
static void random_scan(mica_scan_options *o, char *sb, char *eb, char *pb) {
  memset(o, 0, sizeof *o);
  if (tu_rand_below(2)) {
    snprintf(sb, 16, "k%06d", (int)tu_rand_below(3100));
    o->start = sb;
    o->start_len = strlen(sb);
  }
  if (tu_rand_below(2)) {
    snprintf(eb, 16, "k%06d", (int)tu_rand_below(3100));
    o->end = eb;
    o->end_len = strlen(eb);
    if (o->start && strcmp(sb, eb) > 0) {
      o->start = eb;
      o->end = sb;
    }
  }
  if (tu_rand_below(3) == 0) {
    snprintf(pb, 16, "k00%d", (int)tu_rand_below(31));
    o->prefix = pb;
    o->prefix_len = strlen(pb);
  }
  if (tu_rand_below(3) == 0) o->limit = 1 + tu_rand_below(300);
  o->reverse = (int)tu_rand_below(2);
  o->keys_only = tu_rand_below(4) == 0;
}

static void test_scan_model(void) {
  create_split(g_m, "scan", 30, 100); /* 31 tablets */
  model m;
  model_fill(g_m, "scan", &m, 1000);
  buf want = BUF_INIT, got = BUF_INIT;

  /* Whole table both ways, and empty ranges. */
  mica_scan_options o;
  memset(&o, 0, sizeof o);
  for (int rev = 0; rev < 2; rev++) {
    o.reverse = rev;
    buf_clear(&want);
    buf_clear(&got);
    model_scan(&m, &o, &want);
    OK(client_scan(g_m, "scan", &o, &got));
    CU_ASSERT_EQUAL(got.len, want.len);
    CU_ASSERT(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
  }
  o.start = "k000500";
  o.start_len = 7;
  o.end = "k000500";
  o.end_len = 7;
  buf_clear(&got);
  OK(client_scan(g_m, "scan", &o, &got));
  CU_ASSERT_EQUAL(got.len, 0);
  memset(&o, 0, sizeof o);
  o.prefix = "zzz";
  o.prefix_len = 3;
  buf_clear(&got);
  OK(client_scan(g_m, "scan", &o, &got));
  CU_ASSERT_EQUAL(got.len, 0);

  char sb[16], eb[16], pb[16];
  for (int iter = 0; iter < 150; iter++) {
    random_scan(&o, sb, eb, pb);
    buf_clear(&want);
    buf_clear(&got);
    model_scan(&m, &o, &want);
    OK(client_scan(g_m, "scan", &o, &got));
    if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0) {
      fprintf(stderr, "\nscan mismatch: start=%.*s end=%.*s prefix=%.*s limit=%" PRIu64
              " reverse=%d keys_only=%d: got %zu bytes, want %zu\n",
              (int)o.start_len, o.start ? (const char *)o.start : "",
              (int)o.end_len, o.end ? (const char *)o.end : "",
              (int)o.prefix_len, o.prefix ? (const char *)o.prefix : "",
              o.limit, o.reverse, o.keys_only, got.len, want.len);
      CU_FAIL("scan differs from the model");
      break;
    }
  }
  buf_free(&want);
  buf_free(&got);
  model_free(&m);
}

/* ---- scans while tablets split and move ---- */

typedef struct churn {
  atomic_bool stop;
  atomic_int splits, moves;
  const char *table;
} churn;

static void *churn_main(void *arg) {
  churn *ch = arg;
  mica_client *admin = open_client(20000);
  while (!atomic_load(&ch->stop)) {
    mica_tablet_info *ti = NULL;
    size_t n = 0;
    if (mica_list_tablets(admin, ch->table, &ti, &n) != MICA_OK) break;
    size_t pick = (size_t)tu_rand_below(n);
    uint64_t id = ti[pick].tablet_id;
    /* Split strictly inside the tablet: the tablet's start plus a byte
     * (or "k" for the first tablet). */
    buf key = BUF_INIT;
    buf_append(&key, ti[pick].start_key, ti[pick].start_len);
    if (key.len == 0) buf_append(&key, "k0", 2);
    char tail[8];
    snprintf(tail, sizeof tail, "%d", (int)tu_rand_below(10));
    buf_append(&key, tail, strlen(tail));
    bool inside = ti[pick].end_len == 0 ||
                  slice_cmp(buf_slice(&key), slice_make(ti[pick].end_key, ti[pick].end_len)) < 0;
    mica_free(ti);
    if (n < 60 && inside && tu_rand_below(2) == 0) {
      uint64_t d[2];
      if (mica_split_tablet(admin, id, key.data, key.len, d) == MICA_OK)
        atomic_fetch_add(&ch->splits, 1);
    } else if (mica_move_tablet(admin, id, 0) == MICA_OK) {
      atomic_fetch_add(&ch->moves, 1);
    }
    buf_free(&key);
    /* A change every ~30 ms: far faster than a real cluster moves tablets,
     * slow enough that a tablet is not moved again before it serves. */
    cl_sleep_ms(30);
  }
  mica_close(admin);
  return NULL;
}

static void test_scan_under_churn(void) {
  create_split(g_m, "churn", 4, 600);
  model m;
  model_fill(g_m, "churn", &m, 1000);
  churn ch;
  atomic_init(&ch.stop, false);
  atomic_init(&ch.splits, 0);
  atomic_init(&ch.moves, 0);
  ch.table = "churn";
  pthread_t th;
  pthread_create(&th, NULL, churn_main, &ch);
  mica_client *c = open_client(30000);
  buf want = BUF_INIT, got = BUF_INIT;
  mica_scan_options o;
  char sb[16], eb[16], pb[16];
  int scans = 0;
  uint64_t t0 = cl_now_ms();
  while (cl_now_ms() - t0 < 12000 || atomic_load(&ch.splits) + atomic_load(&ch.moves) < 6) {
    if (cl_now_ms() - t0 > 40000) break;
    if (scans % 3 == 0) {
      memset(&o, 0, sizeof o);
      o.reverse = scans % 2;
    } else {
      random_scan(&o, sb, eb, pb);
    }
    buf_clear(&want);
    buf_clear(&got);
    model_scan(&m, &o, &want);
    OK(client_scan(c, "churn", &o, &got));
    CU_ASSERT(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
    if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0) break;
    scans++;
  }
  atomic_store(&ch.stop, true);
  pthread_join(th, NULL);
  fprintf(stderr, "\n  %d scans while %d splits and %d moves\n", scans,
          atomic_load(&ch.splits), atomic_load(&ch.moves));
  CU_ASSERT(atomic_load(&ch.splits) >= 1);
  CU_ASSERT(atomic_load(&ch.moves) >= 1);
  mica_stats st;
  mica_get_stats(c, &st);
  CU_ASSERT(st.routing_answers > 0);
  mica_close(c);
  buf_free(&want);
  buf_free(&got);
  model_free(&m);
}

/* ---- a stale routing cache recovers without the master ---- */

/* Reads every key of the stale table through `c` (gets and a reverse
 * scan) and checks that no master lookup was needed. */
static void read_all_no_master(mica_client *c, const char *what) {
  mica_stats s0, s1;
  mica_get_stats(c, &s0);
  char k[16];
  for (int i = 0; i < 800; i += 5) {
    snprintf(k, sizeof k, "k%06d", i);
    expect(c, "stale", k, k);
  }
  /* And a scan over the whole new layout. */
  mica_scan_options o;
  memset(&o, 0, sizeof o);
  o.reverse = 1;
  buf got = BUF_INIT;
  OK(client_scan(c, "stale", &o, &got));
  size_t lines = 0;
  for (size_t i = 0; i < got.len; i++) lines += got.data[i] == '\n';
  CU_ASSERT_EQUAL(lines, 160);
  buf_free(&got);
  mica_get_stats(c, &s1);
  fprintf(stderr, "\n  after %s: %" PRIu64 " master lookups, %" PRIu64
          " routing answers installed", what, s1.master_lookups - s0.master_lookups,
          s1.routing_answers - s0.routing_answers);
  CU_ASSERT_EQUAL(s1.master_lookups, s0.master_lookups);
  CU_ASSERT(s1.routing_answers - s0.routing_answers >= 8);
  CU_ASSERT(s1.cache_hits > s0.cache_hits);
}

/* Reads one key per tablet of the stale table: every route cached. */
static mica_client *warm_client(void) {
  mica_client *c = open_client(20000);
  char k[16];
  for (int i = 0; i < 800; i += 50) {
    snprintf(k, sizeof k, "k%06d", i);
    expect(c, "stale", k, k);
  }
  return c;
}

static void test_stale_cache_no_master(void) {
  create_split(g_m, "stale", 7, 100);
  mica_client *c = open_client(20000);
  char k[16];
  for (int i = 0; i < 800; i += 5) {
    snprintf(k, sizeof k, "k%06d", i);
    OK(mica_put(c, "stale", k, strlen(k), k, strlen(k)));
  }
  /* Warm clients: every tablet's route is cached. */
  mica_client *cb = warm_client();
  for (int i = 0; i < 800; i += 5) {
    snprintf(k, sizeof k, "k%06d", i);
    expect(c, "stale", k, k);
  }

  /* Behind the client's back, through another client: split every tablet
   * (the old server answers with both daughters). */
  mica_client *admin = open_client(20000);
  mica_tablet_info *ti = NULL;
  size_t n = 0;
  OK(mica_list_tablets(admin, "stale", &ti, &n));
  CU_ASSERT_EQUAL_FATAL(n, 8);
  uint64_t daughters[16];
  for (size_t i = 0; i < n; i++) {
    snprintf(k, sizeof k, "k%06d", (int)(i * 100 + 50));
    OK(mica_split_tablet(admin, ti[i].tablet_id, k, strlen(k), &daughters[2 * i]));
  }
  mica_free(ti);
  /* A batch over the whole table through the stale cache: refused groups
   * are cut again under the daughters' routes; nothing is lost. */
  mica_stats sb0, sb1;
  mica_get_stats(cb, &sb0);
  mica_batch *b = mica_batch_new();
  for (int i = 0; i < 800; i += 5) {
    snprintf(k, sizeof k, "k%06d", i);
    OK(mica_batch_put(b, k, strlen(k), k, strlen(k)));
  }
  mica_batch_result br;
  OK(mica_batch_write(cb, "stale", b, 0, &br));
  CU_ASSERT_EQUAL(br.parts, 16);
  CU_ASSERT_EQUAL(br.parts_applied, 16);
  mica_batch_free(b);
  mica_get_stats(cb, &sb1);
  mica_close(cb);
  CU_ASSERT_EQUAL(sb1.master_lookups, sb0.master_lookups);
  CU_ASSERT(sb1.routing_answers - sb0.routing_answers >= 8);
  read_all_no_master(c, "8 splits");
  mica_client *cm = warm_client();

  /* Then move half of the daughters away (the old server names the new
   * one). */
  for (size_t i = 0; i < 16; i += 2) OK(mica_move_tablet(admin, daughters[i], 0));
  /* A multi-get through the stale cache first. */
  mica_key keys[160];
  char kb[160][16];
  for (int i = 0; i < 160; i++) {
    snprintf(kb[i], sizeof kb[i], "k%06d", i * 5);
    keys[i].data = kb[i];
    keys[i].len = strlen(kb[i]);
  }
  mica_stats sm0, sm1;
  mica_get_stats(cm, &sm0);
  mica_value *vals = NULL;
  OK(mica_multi_get(cm, "stale", keys, 160, &vals));
  for (int i = 0; i < 160; i++)
    CU_ASSERT(vals[i].code == MICA_OK && vals[i].len == keys[i].len &&
              memcmp(vals[i].data, keys[i].data, keys[i].len) == 0);
  mica_free(vals);
  mica_get_stats(cm, &sm1);
  mica_close(cm);
  CU_ASSERT_EQUAL(sm1.master_lookups, sm0.master_lookups);
  CU_ASSERT(sm1.routing_answers - sm0.routing_answers >= 8);
  read_all_no_master(c, "8 moves");
  fprintf(stderr, "\n");
  mica_close(admin);
  mica_close(c);
}

/* ---- keys with every byte value ---- */

static void test_binary_keys(void) {
  mica_key sk[2] = {{"\x00\x80", 2}, {"\xff", 1}};
  OK(mica_create_table(g_m, "bin", sk, 2));
  uint8_t key[2], val[256];
  for (int i = 0; i < 256; i++) val[i] = (uint8_t)(255 - i);
  for (int b = 0; b < 256; b++) {
    key[0] = (uint8_t)b;
    OK(mica_put(g_m, "bin", key, 1, val, (size_t)b));
    key[1] = 0xff;
    OK(mica_put(g_m, "bin", key, 2, key, 2));
  }
  for (int b = 0; b < 256; b += 17) {
    key[0] = (uint8_t)b;
    void *v = NULL;
    size_t vl = 0;
    OK(mica_get(g_m, "bin", key, 1, &v, &vl));
    CU_ASSERT(vl == (size_t)b && memcmp(v, val, vl) == 0);
    mica_free(v);
  }
  /* Scans return all 512 keys in bytewise order, both ways. */
  for (int rev = 0; rev < 2; rev++) {
    mica_scan_options o;
    memset(&o, 0, sizeof o);
    o.reverse = rev;
    mica_scanner *s = NULL;
    OK(mica_scan_open(g_m, "bin", &o, &s));
    int count = 0;
    uint8_t prev[2];
    size_t prev_len = 0;
    for (;;) {
      int has;
      const void *k, *v;
      size_t kl, vl;
      OK(mica_scan_next(s, &has, &k, &kl, &v, &vl));
      if (!has) break;
      if (prev_len) {
        int cmp = slice_cmp(slice_make(prev, prev_len), slice_make(k, kl));
        CU_ASSERT(rev ? cmp > 0 : cmp < 0);
      }
      memcpy(prev, k, kl);
      prev_len = kl;
      count++;
    }
    CU_ASSERT_EQUAL(count, 512);
    mica_scan_close(s);
  }
  /* A prefix of 0xff (no successor key) and of 0x00. */
  mica_scan_options o;
  memset(&o, 0, sizeof o);
  o.prefix = "\xff";
  o.prefix_len = 1;
  buf got = BUF_INIT;
  OK(client_scan(g_m, "bin", &o, &got));
  size_t lines = 0;
  for (size_t i = 0; i < got.len; i++) lines += got.data[i] == '\n';
  CU_ASSERT_EQUAL(lines, 2);
  buf_clear(&got);
  o.prefix = "\x00";
  o.reverse = 1;
  OK(client_scan(g_m, "bin", &o, &got));
  lines = 0;
  for (size_t i = 0; i < got.len; i++) lines += got.data[i] == '\n';
  CU_ASSERT_EQUAL(lines, 2);
  buf_free(&got);
}

/* ---- threads sharing one client ---- */

typedef struct worker {
  int id;
  int errors;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  char k[32], v[32];
  for (int i = 0; i < 150; i++) {
    snprintf(k, sizeof k, "k%06d-%d", i * 7 % 1000, w->id);
    snprintf(v, sizeof v, "%d-%d", w->id, i);
    if (mica_put(g_m, "conc", k, strlen(k), v, strlen(v)) != MICA_OK) w->errors++;
    void *got = NULL;
    size_t gl = 0;
    if (mica_get(g_m, "conc", k, strlen(k), &got, &gl) != MICA_OK || gl != strlen(v) ||
        memcmp(got, v, gl) != 0)
      w->errors++;
    mica_free(got);
    if (i % 50 == 0) {
      mica_scan_options o;
      memset(&o, 0, sizeof o);
      o.limit = 50;
      o.reverse = w->id % 2;
      mica_scanner *s = NULL;
      if (mica_scan_open(g_m, "conc", &o, &s) != MICA_OK) {
        w->errors++;
        continue;
      }
      int has = 1;
      const void *kk, *vv;
      size_t kl, vl;
      while (has && mica_scan_next(s, &has, &kk, &kl, &vv, &vl) == MICA_OK) {
      }
      mica_scan_close(s);
    }
  }
  return NULL;
}

static void test_threads(void) {
  create_split(g_m, "conc", 9, 100);
  enum { N = 8 };
  pthread_t th[N];
  worker w[N];
  for (int i = 0; i < N; i++) {
    w[i].id = i;
    w[i].errors = 0;
    pthread_create(&th[i], NULL, worker_main, &w[i]);
  }
  /* Meanwhile the layout changes under them. */
  mica_client *admin = open_client(20000);
  mica_tablet_info *ti = NULL;
  size_t n = 0;
  OK(mica_list_tablets(admin, "conc", &ti, &n));
  for (size_t i = 1; i < n; i += 3) {
    char k[16];
    snprintf(k, sizeof k, "k%06d", (int)(i * 100 + 50));
    OK(mica_split_tablet(admin, ti[i].tablet_id, k, strlen(k), NULL));
    OK(mica_move_tablet(admin, ti[i + 1 < n ? i + 1 : 0].tablet_id, 0));
  }
  mica_free(ti);
  mica_close(admin);
  int errors = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    errors += w[i].errors;
  }
  CU_ASSERT_EQUAL(errors, 0);
  /* Each thread's last write of each key is there. */
  char k[32];
  snprintf(k, sizeof k, "k%06d-%d", 149 * 7 % 1000, 3);
  expect(g_m, "conc", k, "3-149");
}

/* ---- the master down for a few seconds ---- */

/* A call that needs the master, made while it is down. */
typedef struct patient_call {
  int rc;
  uint64_t took_ms;
  char msg[512];
} patient_call;

static void *list_while_down(void *arg) {
  patient_call *p = arg;
  mica_client *c = open_client(25000);
  uint64_t t0 = cl_now_ms();
  mica_table_info *t = NULL;
  size_t n = 0;
  p->rc = mica_list_tables(c, &t, &n);
  p->took_ms = cl_now_ms() - t0;
  snprintf(p->msg, sizeof p->msg, "%s", mica_errmsg());
  mica_free(t);
  mica_close(c);
  return NULL;
}

static void test_master_down(void) {
  create_split(g_m, "down", 3, 100);
  put_str(g_m, "down", "k000050", "before");
  mica_client *quick = open_client(1000);
  expect(quick, "down", "k000050", "before"); /* warm routes */

  TU_OK(cl_kill_master(g_c));
  /* A call that needs the master fails clearly within its deadline. */
  uint64_t t0 = cl_now_ms();
  mica_table_info *t = NULL;
  size_t n = 0;
  int rc = mica_list_tables(quick, &t, &n);
  uint64_t took = cl_now_ms() - t0;
  CU_ASSERT(rc == MICA_DEADLINE_EXCEEDED || rc == MICA_UNAVAILABLE);
  CU_ASSERT(took < 3000);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), cl_master_address(g_c)));
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "unreachable"));
  mica_stats s;
  mica_get_stats(quick, &s);
  CU_ASSERT(s.retries > 0);
  mica_close(quick);

  /* With the master back within the deadline, the same call succeeds. The
   * restart happens on this thread: the helper ties each child's life to
   * the thread that started it. */
  patient_call pc;
  memset(&pc, 0, sizeof pc);
  pthread_t th;
  pthread_create(&th, NULL, list_while_down, &pc);
  cl_sleep_ms(2500);
  TU_OK(cl_restart_master(g_c));
  pthread_join(th, NULL);
  if (pc.rc != MICA_OK) fprintf(stderr, "\nlist while down: %s\n", pc.msg);
  CU_ASSERT_EQUAL(pc.rc, MICA_OK);
  CU_ASSERT(pc.took_ms >= 1500);
  mica_client *patient = open_client(25000);
  put_str(patient, "down", "k000150", "after");
  expect(patient, "down", "k000150", "after");
  expect(patient, "down", "k000050", "before");
  mica_close(patient);
}

/* A client whose calls the master refused while it was down reaches it
 * again soon after it is back on the same address: its channel must not
 * stay failing (tests/netns/test_netns_kill_master.sh saw a client stuck
 * for 5-9 s after a failover; new clients were fine). */
static void test_old_client_after_master_restart(void) {
  mica_client *old = open_client(1000);
  mica_table_info *t = NULL;
  size_t n = 0;
  OK(mica_list_tables(old, &t, &n));
  mica_free(t);
  TU_OK(cl_kill_master(g_c));
  for (int i = 0; i < 3; i++) {
    t = NULL;
    CU_ASSERT_NOT_EQUAL(mica_list_tables(old, &t, &n), MICA_OK);
    mica_free(t);
  }
  TU_OK(cl_restart_master(g_c));
  uint64_t t0 = cl_now_ms();
  int rc;
  do {
    t = NULL;
    rc = mica_list_tables(old, &t, &n);
    mica_free(t);
  } while (rc != MICA_OK && cl_now_ms() - t0 < 15000);
  uint64_t took = cl_now_ms() - t0;
  if (rc != MICA_OK || took >= 3000)
    fprintf(stderr, "\nold client after restart: %s after %llu ms\n",
            mica_code_name(rc), (unsigned long long)took);
  CU_ASSERT_EQUAL(rc, MICA_OK);
  CU_ASSERT(took < 3000);
  mica_close(old);
}

/* kill(SIGSTOP) returns before the target stops: its threads stop as
 * each next leaves the kernel. True once every thread of `pid` shows state
 * T in /proc, so nothing of it can still answer a call. */
static bool wait_stopped(pid_t pid, int timeout_ms) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
  for (int waited = 0; waited <= timeout_ms; waited += 5) {
    DIR *d = opendir(dir);
    if (d == NULL) return false;
    bool all = true;
    struct dirent *e;
    while (all && (e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      char path[384], line[512];
      snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
      FILE *f = fopen(path, "r");
      if (f == NULL) continue; /* a thread that just ended */
      const char *st = NULL;
      if (fgets(line, sizeof line, f) != NULL) {
        char *rp = strrchr(line, ')'); /* the state follows "(comm) " */
        if (rp != NULL && rp[1] == ' ') st = rp + 2;
      }
      fclose(f);
      if (st == NULL || (*st != 'T' && *st != 't')) all = false;
    }
    closedir(d);
    if (all) return true;
    cl_sleep_ms(5);
  }
  return false;
}

/* The cluster slot of the server the master places `table`'s only tablet
 * on (its address copied to `addr`), or -1. */
static int tablet_slot(const char *table, char *addr, size_t size) {
  mica_tablet_info *ti = NULL;
  size_t n = 0;
  if (mica_list_tablets(g_m, table, &ti, &n) != MICA_OK) return -1;
  int slot = -1;
  if (n == 1) {
    snprintf(addr, size, "%s", ti[0].address);
    slot = cl_tserver_slot(g_c, ti[0].address);
  }
  mica_free(ti);
  return slot;
}

/* A server that stays silent (frozen here; partitioned on the multi-host
 * bed) makes a call fail with DEADLINE_EXCEEDED. The route to it must be
 * dropped then: the next call asks the master again instead of waiting its
 * whole deadline on the same server, so a client recovers once the master
 * has moved the tablet (tests/netns/test_netns_tserver_partition.sh found
 * clients stuck on a cut server forever). */
static void test_silent_server_route_dropped(void) {
  OK(mica_create_table(g_m, "silent", NULL, 0));
  mica_client *c = open_client(20000);
  put_str(c, "silent", "k1", "v1"); /* the route is cached */
  mica_close(c);

  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = 400;
  OK(mica_open(cl_master_address(g_c), &o, &c));
  /* The balancer may move a new table's tablet at any time: freeze its
   * server, then make sure the master still places the tablet there. */
  pid_t pid = 0;
  mica_stats s0, s1;
  for (int attempt = 0; attempt < 5 && pid == 0; attempt++) {
    put_str(c, "silent", "k2", "v2"); /* the route is the current one */
    mica_get_stats(c, &s0);
    char before[512] = "";
    int slot = tablet_slot("silent", before, sizeof before);
    CU_ASSERT_FATAL(slot >= 0);
    pid_t p = cl_tserver_pid(g_c, slot);
    CU_ASSERT_FATAL(p > 0);
    kill(p, SIGSTOP);
    CU_ASSERT(wait_stopped(p, 5000));
    char after[512] = "";
    tablet_slot("silent", after, sizeof after);
    if (strcmp(before, after) == 0) {
      pid = p;
    } else {
      kill(p, SIGCONT);
      cl_sleep_ms(500);
    }
  }
  CU_ASSERT_FATAL(pid > 0);
  int rc1 = mica_put(c, "silent", "k3", 2, "v3", 2);
  int rc2 = mica_put(c, "silent", "k4", 2, "v4", 2);
  kill(pid, SIGCONT);
  mica_get_stats(c, &s1);
  if (rc1 != MICA_DEADLINE_EXCEEDED || rc2 != MICA_DEADLINE_EXCEEDED)
    fprintf(stderr, "\n  silent server: puts answered %s and %s\n",
            mica_code_name(rc1), mica_code_name(rc2));
  CU_ASSERT_EQUAL(rc1, MICA_DEADLINE_EXCEEDED);
  CU_ASSERT_EQUAL(rc2, MICA_DEADLINE_EXCEEDED);
  /* The second put asked the master; with the route kept it would not. */
  CU_ASSERT(s1.master_lookups > s0.master_lookups);
  mica_close(c);
  c = open_client(20000);
  put_str(c, "silent", "k5", "v5");
  expect(c, "silent", "k2", "v2");
  mica_close(c);
}

static void test_stats_and_version(void) {
  CU_ASSERT_STRING_EQUAL(mica_version(), "0.1.0");
  CU_ASSERT_STRING_EQUAL(mica_master_address(g_m), cl_master_address(g_c));
  /* Its own traffic first: a test before it may have left the cache empty
   * (a master restart or a silent server drops routes), so the counters
   * below would depend on the order of the tests. A table that another
   * client made is not in this one's cache: the first put misses and asks
   * the master, the get after it hits. */
  mica_client *other = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), NULL, &other),
                        MICA_OK);
  CU_ASSERT_EQUAL_FATAL(mica_create_table(other, "stats", NULL, 0), MICA_OK);
  mica_close(other);
  CU_ASSERT_EQUAL(mica_put(g_m, "stats", "k", 1, "v", 1), MICA_OK);
  void *v = NULL;
  size_t vl = 0;
  CU_ASSERT_EQUAL(mica_get(g_m, "stats", "k", 1, &v, &vl), MICA_OK);
  mica_free(v);
  mica_stats s;
  mica_get_stats(g_m, &s);
  fprintf(stderr, "\nstats: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
          " lookups, %" PRIu64 " master calls, %" PRIu64 " routes\n",
          s.cache_hits, s.cache_misses, s.master_lookups, s.master_calls,
          s.cached_routes);
  CU_ASSERT(s.cache_hits > 0 && s.cache_misses > 0 && s.master_lookups > 0);
  CU_ASSERT(s.master_calls >= s.master_lookups);
  CU_ASSERT(s.cached_routes > 0);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"put_get_delete", test_put_get_delete},
      {"admin", test_admin},
      {"batch", test_batch},
      {"multi_get", test_multi_get},
      {"scan_model", test_scan_model},
      {"binary_keys", test_binary_keys},
      {"stale_cache_no_master", test_stale_cache_no_master},
      {"threads", test_threads},
      {"scan_under_churn", test_scan_under_churn},
      {"master_down", test_master_down},
      {"silent_server_route_dropped", test_silent_server_route_dropped},
      {"old_client_after_master_restart", test_old_client_after_master_restart},
      {"stats_and_version", test_stats_and_version},
      CU_TEST_INFO_NULL};
  /* MICA_TEST_ONLY=name runs one test (plus nothing else), for debugging. */
  const char *only = getenv("MICA_TEST_ONLY");
  CU_pSuite s = CU_add_suite("client", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName; t++)
    if (only == NULL || strcmp(only, t->pName) == 0) CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
