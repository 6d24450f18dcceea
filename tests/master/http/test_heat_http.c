/* test_heat_http: "seeing the heat" end to end, on a real cluster (a
 * mica-master with one-second heat buckets and two mica-tservers) under
 * write load that falls on one tablet of a table whose split keys are
 * hostile (markup, quotes, control bytes, invalid UTF-8).
 *
 * Checked: /api/hot ranks the loaded tablet first with its rates (and its
 * keys as escaped text and exact base64), honours ?table= and ?limit=, and
 * refuses bad arguments with a JSON error naming them; /api/heatmap keeps
 * exactly the configured buckets, bounds its answer by ?limit= cells
 * (newest buckets first), names each tablet's exact range, and
 * accounts for every key written and read (the sum over buckets of rate x
 * seconds equals the count), scans and bytes read; after a split the map holds the parent (retired) and
 * both daughters; `mica hot` prints the list with keys escaped as the CLI
 * escapes them (no raw byte reaches the terminal), as tsv and as JSON, and
 * fails with one clear line for an unknown table, a bad name or an
 * unreachable address; and the status page, built by headless Chromium,
 * draws heat map cells whose hover text shows the hostile keys as text,
 * with no element injected. JSON answers are read with the CLI's strict
 * reader (tools/mica/mjson.h). */
#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/slice.h"
#include "master/http/mh_int.h"
#include "mica/mica.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/testutil.h"
#include "tools/mica/mjson.h"

static cluster *g_c;
static mica_client *g_m;
static char g_http[128];

static const char *const g_master_args[] = {
    "--merge", "off", "--balancer", "off", "--heat-bucket-ms", "1000",
    "--heat-buckets", "120", NULL};

/* The table's split keys, in byte order. */
static const struct {
  const char *bytes;
  size_t len;
} kSplits[] = {
    {"\x01" "ctl\x7f", 5},
    {"\"q'uote", 7},
    {"<img src=x onerror=alert(2)>", 28},
    {"<script>alert(1)</script>", 25},
    {"\xff\xfeinvalid", 9},
};
#define N_SPLITS (sizeof(kSplits) / sizeof(kSplits[0]))
#define HOT_PREFIX "<script>alert(1)</script>"
#define HOT_WRITES 300
#define COOL_WRITES 10

/* ---- HTTP and JSON ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  buf_append(ud, p, sz * n);
  return sz * n;
}

/* GETs `path` (or sends `method`); returns the status, body in `out`. */
static long http(const char *method, const char *path, buf *out) {
  char url[512];
  snprintf(url, sizeof(url), "http://%s%s", g_http, path);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (strcmp(method, "GET") != 0)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  long code = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

/* GETs `path`, expecting 200 and a JSON object; caller frees. */
static mj_val *get_json(const char *path) {
  buf b = BUF_INIT;
  long code = http("GET", path, &b);
  if (code != 200)
    fprintf(stderr, "\n%s: HTTP %ld: %.*s\n", path, code, (int)b.len,
            (const char *)b.data);
  CU_ASSERT_EQUAL_FATAL(code, 200);
  char why[200];
  mj_val *v = mj_parse((const char *)b.data, b.len, why, sizeof(why));
  if (v == NULL) fprintf(stderr, "\n%s: %s\n", path, why);
  CU_ASSERT_FATAL(v != NULL && v->type == MJ_OBJECT);
  bool ascii = true;
  for (size_t i = 0; i < b.len; i++) ascii &= b.data[i] < 0x80;
  CU_ASSERT(ascii);
  buf_free(&b);
  return v;
}

/* Expects `path` to answer `code` with {"error": containing `needle`}. */
static void expect_error(const char *method, const char *path, long code,
                         const char *needle) {
  buf b = BUF_INIT;
  long got = http(method, path, &b);
  buf_push(&b, 0);
  if (got != code || strstr((const char *)b.data, needle) == NULL)
    fprintf(stderr, "\n%s %s: HTTP %ld %s, want %ld with '%s'\n", method,
            path, got, (const char *)b.data, code, needle);
  CU_ASSERT_EQUAL(got, code);
  CU_ASSERT_PTR_NOT_NULL(strstr((const char *)b.data, needle));
  char why[200];
  mj_val *v = mj_parse((const char *)b.data, b.len - 1, why, sizeof(why));
  CU_ASSERT(v != NULL && mj_get(v, "error") != NULL);
  mj_free(v);
  buf_free(&b);
}

static double num(const mj_val *o, const char *name) {
  const mj_val *v = mj_get(o, name);
  CU_ASSERT_FATAL(v != NULL && v->type == MJ_NUMBER);
  return v->number;
}

static const mj_val *arr(const mj_val *o, const char *name) {
  const mj_val *v = mj_get(o, name);
  CU_ASSERT_FATAL(v != NULL && v->type == MJ_ARRAY);
  return v;
}

static const char *str(const mj_val *o, const char *name) {
  const mj_val *v = mj_get(o, name);
  CU_ASSERT_FATAL(v != NULL && v->type == MJ_STRING);
  return v->str;
}

/* True when key object `k` ({"text", "b64"}) holds exactly `bytes`. */
static bool key_is(const mj_val *k, const char *bytes, size_t len) {
  buf esc = BUF_INIT, b64 = BUF_INIT;
  slice_escape(slice_make(bytes, len), &esc);
  mh_base64(&b64, slice_make(bytes, len));
  const mj_val *t = mj_get(k, "text"), *b = mj_get(k, "b64");
  bool ok = t && b && t->type == MJ_STRING && b->type == MJ_STRING &&
            t->len == esc.len && b->len == b64.len &&
            (esc.len == 0 || memcmp(t->str, esc.data, esc.len) == 0) &&
            (b64.len == 0 || memcmp(b->str, b64.data, b64.len) == 0);
  buf_free(&esc);
  buf_free(&b64);
  return ok;
}

/* ---- load ---- */

static void write_keys(const char *prefix, int from, int n) {
  mica_batch *b = mica_batch_new();
  for (int i = from; i < from + n; i++) {
    char key[128];
    int kl = snprintf(key, sizeof(key), "%s%04d", prefix, i);
    CU_ASSERT_EQUAL_FATAL(mica_batch_put(b, key, (size_t)kl, "value", 5),
                          MICA_OK);
  }
  CU_ASSERT_EQUAL_FATAL(mica_batch_write(g_m, "hostile", b, 0, NULL), MICA_OK);
  mica_batch_free(b);
}

/* Cell fields (cell_fields of /api/heatmap). */
enum { F_READS = 3, F_WRITES = 4, F_SCANS = 5, F_READ_BYTES = 6 };

/* Field `f` of the current tablet starting at `start`, summed over the
 * heat map's buckets (rate x seconds): the work done. */
static double heat_sum(const char *start, size_t len, int f) {
  mj_val *d = get_json("/api/heatmap?table=hostile");
  const mj_val *tabs = arr(d, "tablets"), *bks = arr(d, "buckets");
  double sum = 0;
  for (size_t i = 0; i < bks->len; i++) {
    const mj_val *cells = arr(bks->items[i], "cells");
    double secs = num(bks->items[i], "secs");
    for (size_t j = 0; j < cells->len; j++) {
      const mj_val *c = cells->items[j];
      size_t t = (size_t)c->items[0]->number;
      CU_ASSERT_FATAL(t < tabs->len);
      if (key_is(mj_get(tabs->items[t], "start"), start, len) &&
          mj_get(tabs->items[t], "current")->boolean)
        sum += c->items[f]->number * secs;
    }
  }
  mj_free(d);
  return sum;
}

/* Waits until the heat map has seen `want` of field `f` of the tablet
 * starting at `start` (heartbeats every 200 ms carry the counters). */
static double wait_sum(const char *start, size_t len, int f, double want) {
  double got = 0;
  for (int i = 0; i < 100; i++) {
    got = heat_sum(start, len, f);
    if (fabs(got - want) < 0.5) break;
    cl_sleep_ms(100);
  }
  return got;
}

/* Waits until the heat map names `n` tablets: each has been reported at
 * least once, so its baseline is set and all later work counts. */
static void wait_tablets(size_t n) {
  size_t got = 0;
  for (int i = 0; i < 200 && got != n; i++) {
    mj_val *d = get_json("/api/heatmap?table=hostile");
    got = arr(d, "tablets")->len;
    mj_free(d);
    if (got != n) cl_sleep_ms(50);
  }
  CU_ASSERT_EQUAL_FATAL(got, n);
}

/* ---- suite ---- */

static int suite_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  o.master_args = g_master_args;
  if (cl_suite_start(&o, &g_c) != 0) return 1;
  snprintf(g_http, sizeof(g_http), "%s", cl_master_http_address(g_c));
  mica_options mo;
  mica_options_init(&mo);
  mo.deadline_ms = 10000;
  if (mica_open(cl_master_address(g_c), &mo, &g_m) != MICA_OK) return 1;
  mica_key keys[N_SPLITS];
  for (size_t i = 0; i < N_SPLITS; i++) {
    keys[i].data = kSplits[i].bytes;
    keys[i].len = kSplits[i].len;
  }
  if (mica_create_table(g_m, "hostile", keys, N_SPLITS) != MICA_OK) {
    fprintf(stderr, "create: %s\n", mica_errmsg());
    return 1;
  }
  return 0;
}

static int suite_clean(void) {
  mica_close(g_m);
  int rc = cl_suite_stop(&g_c);
  curl_global_cleanup();
  return rc;
}

/* ---- tests ---- */

static void test_load_is_counted(void) {
  /* Every tablet reported at least once (the baselines) before the load:
   * then every write must show up in the map. */
  wait_tablets(N_SPLITS + 1);
  for (int r = 0; r < 3; r++) {
    write_keys(HOT_PREFIX, r * (HOT_WRITES / 3), HOT_WRITES / 3);
    cl_sleep_ms(300);
  }
  write_keys("\"q'uote", 0, COOL_WRITES);
  /* Reads and a scan on the cool tablet: 25 keys read, one scan. */
  for (int i = 0; i < 25; i++) {
    char key[32];
    int kl = snprintf(key, sizeof(key), "\"q'uote%04d", i % COOL_WRITES);
    void *v = NULL;
    size_t vl = 0;
    CU_ASSERT_EQUAL_FATAL(mica_get(g_m, "hostile", key, (size_t)kl, &v, &vl),
                          MICA_OK);
    mica_free(v);
  }
  mica_scan_options so;
  memset(&so, 0, sizeof(so));
  so.prefix = "\"q'uote";
  so.prefix_len = 7;
  mica_scanner *sc = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_scan_open(g_m, "hostile", &so, &sc), MICA_OK);
  int rows = 0, has = 1;
  while (has) {
    const void *k, *v;
    size_t kl, vl;
    CU_ASSERT_EQUAL_FATAL(mica_scan_next(sc, &has, &k, &kl, &v, &vl), MICA_OK);
    rows += has;
  }
  mica_scan_close(sc);
  CU_ASSERT_EQUAL(rows, COOL_WRITES);
  double hot = wait_sum(kSplits[3].bytes, kSplits[3].len, F_WRITES,
                        HOT_WRITES);
  double cool = wait_sum(kSplits[1].bytes, kSplits[1].len, F_WRITES,
                         COOL_WRITES);
  double reads = wait_sum(kSplits[1].bytes, kSplits[1].len, F_READS, 25);
  CU_ASSERT(fabs(reads - 25) < 0.5);
  /* A scan may be resumed in more than one call; at least one counts. */
  CU_ASSERT(heat_sum(kSplits[1].bytes, kSplits[1].len, F_SCANS) >= 0.5);
  CU_ASSERT(heat_sum(kSplits[1].bytes, kSplits[1].len, F_READ_BYTES) >=
            25 * (11 + 5) - 0.5);
  if (fabs(hot - HOT_WRITES) >= 0.5 || fabs(cool - COOL_WRITES) >= 0.5)
    fprintf(stderr, "\nheat map writes: %.3f (want %d), %.3f (want %d)\n",
            hot, HOT_WRITES, cool, COOL_WRITES);
  CU_ASSERT(fabs(hot - HOT_WRITES) < 0.5);
  CU_ASSERT(fabs(cool - COOL_WRITES) < 0.5);
}

static void test_heatmap(void) {
  mj_val *d = get_json("/api/heatmap?table=hostile");
  CU_ASSERT_STRING_EQUAL(str(d, "table"), "hostile");
  CU_ASSERT_EQUAL(num(d, "bucket_ms"), 1000);
  CU_ASSERT_EQUAL(num(d, "max_buckets"), 120);
  CU_ASSERT_EQUAL(num(d, "dropped"), 0);
  CU_ASSERT(num(d, "now_ms") > 1.7e12);
  CU_ASSERT_EQUAL(arr(d, "cell_fields")->len, 8);
  const mj_val *tabs = arr(d, "tablets"), *bks = arr(d, "buckets");
  CU_ASSERT_EQUAL(bks->len, 120);
  CU_ASSERT_EQUAL_FATAL(tabs->len, N_SPLITS + 1);
  /* Key order: "" first, then each split key; ends match. */
  CU_ASSERT(key_is(mj_get(tabs->items[0], "start"), "", 0));
  for (size_t i = 0; i < N_SPLITS; i++) {
    CU_ASSERT(key_is(mj_get(tabs->items[i], "end"), kSplits[i].bytes,
                     kSplits[i].len));
    CU_ASSERT(key_is(mj_get(tabs->items[i + 1], "start"), kSplits[i].bytes,
                     kSplits[i].len));
  }
  CU_ASSERT(key_is(mj_get(tabs->items[N_SPLITS], "end"), "", 0));
  /* The hottest cell is the loaded tablet's; buckets go forward in time. */
  double best = -1, prev = 0;
  size_t best_t = SIZE_MAX, with_cells = 0;
  for (size_t i = 0; i < bks->len; i++) {
    double start = num(bks->items[i], "start_ms");
    CU_ASSERT(i == 0 || start - prev == 1000);
    prev = start;
    const mj_val *cells = arr(bks->items[i], "cells");
    with_cells += cells->len > 0;
    for (size_t j = 0; j < cells->len; j++) {
      const mj_val *c = cells->items[j];
      CU_ASSERT_FATAL(c->type == MJ_ARRAY && c->len == 8);
      CU_ASSERT(fabs(c->items[2]->number - c->items[3]->number -
                     c->items[4]->number - c->items[5]->number) < 0.01);
      CU_ASSERT(c->items[1]->number > 0); /* a server */
      if (j > 0) CU_ASSERT(c->items[0]->number > cells->items[j - 1]->items[0]->number);
      if (c->items[2]->number > best) {
        best = c->items[2]->number;
        best_t = (size_t)c->items[0]->number;
      }
    }
  }
  CU_ASSERT(with_cells >= 2);
  CU_ASSERT_EQUAL(best_t, 4);
  mj_free(d);
}

/* One bounded answer of /api/heatmap?table=hostile&limit=N: what it sent
 * adds up with what it says it left out, stays within N, is the newest
 * buckets in a row, and lists exactly the tablets its cells name. Returns
 * the cells sent. */
static size_t check_bounded(size_t limit) {
  char path[128];
  snprintf(path, sizeof(path), "/api/heatmap?table=hostile&limit=%zu", limit);
  mj_val *d = get_json(path);
  const mj_val *tabs = arr(d, "tablets"), *bks = arr(d, "buckets");
  CU_ASSERT_EQUAL(num(d, "limit"), (double)limit);
  size_t sent = 0, omitted_b = (size_t)num(d, "buckets_omitted");
  size_t total = (size_t)num(d, "cells_total");
  size_t omitted_c = (size_t)num(d, "cells_omitted");
  bool *named = calloc(tabs->len + 1, sizeof(*named));
  for (size_t i = 0; i < bks->len; i++) {
    if (i > 0)
      CU_ASSERT_EQUAL(num(bks->items[i], "start_ms") -
                          num(bks->items[i - 1], "start_ms"), 1000);
    const mj_val *cells = arr(bks->items[i], "cells");
    sent += cells->len;
    for (size_t j = 0; j < cells->len; j++) {
      size_t t = (size_t)cells->items[j]->items[0]->number;
      CU_ASSERT_FATAL(t < tabs->len);
      named[t] = true;
    }
  }
  for (size_t t = 0; t < tabs->len; t++) CU_ASSERT(named[t]);
  free(named);
  CU_ASSERT(sent <= limit);
  CU_ASSERT_EQUAL(sent + omitted_c, total);
  CU_ASSERT_EQUAL(bks->len + omitted_b, 120);
  /* What was left out would not have fitted: the next older bucket has
   * more cells than the room that was left. */
  if (omitted_b > 0) CU_ASSERT(omitted_c > limit - sent);
  if (total > 0) CU_ASSERT(sent > 0);
  mj_free(d);
  return sent;
}

/* The answer is bounded by ?limit= cells (default 20000): the oldest
 * buckets go first, and a limit smaller than one bucket cuts the newest
 * bucket with cells. */
static void test_heatmap_limit(void) {
  /* Every tablet is reported in every bucket from its first report on:
   * wait for three buckets of the six tablets, so that the limits below
   * cut whole buckets and parts of one. */
  size_t cells = 0;
  for (int tries = 0; tries < 100; tries++) {
    mj_val *d = get_json("/api/heatmap?table=hostile");
    CU_ASSERT_EQUAL(num(d, "limit"), 20000);
    CU_ASSERT_EQUAL(num(d, "buckets_omitted"), 0);
    CU_ASSERT_EQUAL(num(d, "cells_omitted"), 0);
    const mj_val *bks = arr(d, "buckets");
    cells = 0;
    for (size_t i = 0; i < bks->len; i++)
      cells += arr(bks->items[i], "cells")->len;
    CU_ASSERT_EQUAL(num(d, "cells_total"), (double)cells);
    mj_free(d);
    if (cells > 3 * (N_SPLITS + 1)) break;
    cl_sleep_ms(100);
  }
  CU_ASSERT_FATAL(cells > 3 * (N_SPLITS + 1));

  CU_ASSERT_EQUAL(check_bounded(1), 1); /* cut: one cell, one tablet */
  check_bounded(N_SPLITS);
  size_t whole = check_bounded(2 * (N_SPLITS + 1) + 1);
  CU_ASSERT(whole >= N_SPLITS + 1);
  check_bounded(1000000);

  expect_error("GET", "/api/heatmap?table=hostile&limit=0", 400,
               "limit must be a number of cells from 1 to 1000000");
  expect_error("GET", "/api/heatmap?table=hostile&limit=1000001", 400,
               "limit must be");
  expect_error("GET", "/api/heatmap?table=hostile&limit=-5", 400,
               "limit must be");
  expect_error("GET", "/api/heatmap?table=hostile&limit=", 400,
               "limit must be");
}

static void test_hot(void) {
  mj_val *d = get_json("/api/hot");
  CU_ASSERT_EQUAL(num(d, "window_s"), 10);
  CU_ASSERT(mj_get(d, "table")->type == MJ_NULL);
  CU_ASSERT_EQUAL(num(d, "tablets_total"), N_SPLITS + 1);
  CU_ASSERT_EQUAL(arr(d, "keys")->len, 0);
  const mj_val *t = arr(d, "tablets");
  CU_ASSERT_EQUAL_FATAL(t->len, N_SPLITS + 1);
  const mj_val *h = t->items[0];
  CU_ASSERT_STRING_EQUAL(str(h, "table"), "hostile");
  CU_ASSERT(key_is(mj_get(h, "start"), kSplits[3].bytes, kSplits[3].len));
  CU_ASSERT(key_is(mj_get(h, "end"), kSplits[4].bytes, kSplits[4].len));
  CU_ASSERT(num(h, "writes_per_sec") > 0);
  CU_ASSERT(num(h, "write_bytes_per_sec") > num(h, "writes_per_sec"));
  CU_ASSERT(fabs(num(h, "ops_per_sec") - num(h, "reads_per_sec") -
                 num(h, "writes_per_sec") - num(h, "scans_per_sec")) < 0.01);
  CU_ASSERT(str(h, "server_address")[0] != '\0');
  CU_ASSERT(num(h, "server_id") > 0);
  for (size_t i = 1; i < t->len; i++)
    CU_ASSERT(num(t->items[i - 1], "ops_per_sec") >=
              num(t->items[i], "ops_per_sec"));
  mj_free(d);

  d = get_json("/api/hot?table=hostile&limit=2");
  CU_ASSERT_STRING_EQUAL(str(d, "table"), "hostile");
  CU_ASSERT_EQUAL(arr(d, "tablets")->len, 2);
  CU_ASSERT_EQUAL(num(d, "tablets_total"), N_SPLITS + 1);
  mj_free(d);

  expect_error("GET", "/api/hot?table=nope", 404, "no table nope");
  expect_error("GET", "/api/hot?table=a%2Fb", 400, "table must be a table name");
  expect_error("GET", "/api/hot?table=", 400, "table must be a table name");
  expect_error("GET", "/api/hot?limit=0", 400, "limit must be");
  expect_error("GET", "/api/hot?limit=1001", 400, "limit must be");
  expect_error("GET", "/api/hot?limit=ten", 400, "limit must be");
  expect_error("GET", "/api/heatmap", 400, "table is required");
  expect_error("GET", "/api/heatmap?table=nope", 404, "no table nope");
  expect_error("POST", "/api/heatmap?table=hostile", 405, "not allowed");
}

static void test_split(void) {
  mica_tablet_info *ti = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL_FATAL(mica_list_tablets(g_m, "hostile", &ti, &n), MICA_OK);
  CU_ASSERT_EQUAL_FATAL(n, N_SPLITS + 1);
  uint64_t parent = ti[4].tablet_id, d[2] = {0, 0};
  mica_free(ti);
  const char split[] = HOT_PREFIX "0150";
  CU_ASSERT_EQUAL_FATAL(
      mica_split_tablet(g_m, parent, split, sizeof(split) - 1, d), MICA_OK);
  wait_tablets(N_SPLITS + 3); /* the daughters' baselines */
  write_keys(HOT_PREFIX, 200, 80); /* all in the right daughter */
  double got = wait_sum(split, sizeof(split) - 1, F_WRITES, 80);
  CU_ASSERT(fabs(got - 80) < 0.5);

  mj_val *m = get_json("/api/heatmap?table=hostile");
  const mj_val *tabs = arr(m, "tablets");
  CU_ASSERT_EQUAL(tabs->len, N_SPLITS + 3);
  int seen = 0;
  for (size_t i = 0; i < tabs->len; i++) {
    uint64_t id = (uint64_t)num(tabs->items[i], "id");
    bool cur = mj_get(tabs->items[i], "current")->boolean;
    if (id == parent) seen |= cur ? 0 : 1;
    if (id == d[0]) seen |= cur ? 2 : 0;
    if (id == d[1]) {
      seen |= cur ? 4 : 0;
      CU_ASSERT(key_is(mj_get(tabs->items[i], "start"), split,
                       sizeof(split) - 1));
      CU_ASSERT(key_is(mj_get(tabs->items[i], "end"), kSplits[4].bytes,
                       kSplits[4].len));
    }
  }
  CU_ASSERT_EQUAL(seen, 7);
  mj_free(m);
  /* The parent's writes stay in the buckets before the split. */
  mj_val *h = get_json("/api/hot?limit=1");
  CU_ASSERT_EQUAL(num(arr(h, "tablets")->items[0], "id"), d[1]);
  mj_free(h);
}

/* ---- the CLI ---- */

static th_result mica_cli(const char *const *args) {
  const char *argv[16] = {"--deadline", "5000"};
  int n = 2;
  for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
  argv[n] = NULL;
  th_result r;
  TU_OK(th_mica_cli(cl_master_address(g_c), NULL, argv, 0, &r));
  return r;
}
#define MICA(...) mica_cli((const char *const[]){__VA_ARGS__, NULL})

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void expect_cli_fail(th_result r, int rc, const char *needle) {
  if (r.rc != rc || strstr(th_err(&r), needle) == NULL || r.out.len != 0)
    fprintf(stderr, "\nexit %d (want %d), want '%s' in:\n%s\n", r.rc, rc,
            needle, th_err(&r));
  CU_ASSERT_EQUAL(r.rc, rc);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), needle));
  CU_ASSERT_EQUAL(r.out.len, 0);
  th_result_free(&r);
}

static void test_cli(void) {
  th_result r = MICA("hot");
  CU_ASSERT_EQUAL(r.rc, 0);
  const char *out = th_out(&r);
  /* A header and one line per tablet (8 after the split), busiest first:
   * the right daughter. Keys escaped: no raw byte on the terminal. */
  CU_ASSERT_EQUAL(lines(out), N_SPLITS + 3);
  CU_ASSERT(strncmp(out, "TABLE", 5) == 0);
  const char *second = strchr(out, '\n') + 1;
  CU_ASSERT(strncmp(second, "hostile", 7) == 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(second, HOT_PREFIX "0150"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\\x01ctl\\x7f"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\\xff\\xfeinvalid"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"q'uote"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "-inf"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "+inf"));
  for (size_t i = 0; i < r.out.len; i++)
    CU_ASSERT(out[i] == '\n' || (out[i] >= 0x20 && out[i] < 0x7f));
  th_result_free(&r);

  r = MICA("hot", "hostile", "--limit", "3", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(lines(th_out(&r)), 3);
  int tabs = 0;
  for (const char *p = th_out(&r); *p && *p != '\n'; p++) tabs += *p == '\t';
  CU_ASSERT_EQUAL(tabs, 10);
  CU_ASSERT(strncmp(th_out(&r), "hostile\t", 8) == 0);
  th_result_free(&r);

  r = MICA("hot", "--format", "json", "--limit", "1");
  CU_ASSERT_EQUAL(r.rc, 0);
  char why[200];
  mj_val *v = mj_parse(th_out(&r), r.out.len, why, sizeof(why));
  CU_ASSERT_FATAL(v != NULL);
  CU_ASSERT_EQUAL(arr(v, "tablets")->len, 1);
  CU_ASSERT(key_is(mj_get(arr(v, "tablets")->items[0], "start"),
                   HOT_PREFIX "0150", sizeof(HOT_PREFIX "0150") - 1));
  mj_free(v);
  th_result_free(&r);

  char http_flag[160];
  snprintf(http_flag, sizeof(http_flag), "--http=%s", g_http);
  r = MICA("hot", http_flag, "--limit", "1");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(lines(th_out(&r)), 2);
  th_result_free(&r);

  r = MICA("hot", "--help");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "Example:"));
  th_result_free(&r);

  expect_cli_fail(MICA("hot", "nope"), 1, "no table nope");
  expect_cli_fail(MICA("hot", "a/b"), 2, "bad table name 'a/b'");
  expect_cli_fail(MICA("hot", "--limit", "0"), 2, "bad value '0'");
  expect_cli_fail(MICA("hot", "--format", "xml"), 2, "bad value 'xml'");
  expect_cli_fail(MICA("hot", "a", "b"), 2, "too many arguments");
  expect_cli_fail(MICA("hot", "--http", "127.0.0.1:1"), 1,
                  "cannot read http://127.0.0.1:1/api/hot");
}

/* ---- the page in a browser ---- */

static void test_page_in_browser(void) {
  if (system("command -v chromium >/dev/null 2>&1") != 0) {
    printf("\n  no chromium: skipped\n");
    return;
  }
  const char *tmp = tu_tmpdir();
  char cmd[1200];
  snprintf(cmd, sizeof(cmd),
           "timeout 120 chromium --headless --no-sandbox --disable-gpu "
           "--virtual-time-budget=4000 --dump-dom http://%s/ >%s/dom.html "
           "2>/dev/null", g_http, tmp);
  CU_ASSERT_FATAL(system(cmd) == 0);
  static const char script[] =
      "import sys\n"
      "from html.parser import HTMLParser\n"
      "d = open(sys.argv[1], encoding='utf-8').read()\n"
      "class P(HTMLParser):\n"
      "    def __init__(self):\n"
      "        super().__init__()\n"
      "        self.tags, self.text, self.cells, self.sel = [], [], [], []\n"
      "    def handle_starttag(self, tag, attrs):\n"
      "        a = dict(attrs)\n"
      "        self.tags.append(tag)\n"
      "        if 'hm-cell' in (a.get('class') or ''):\n"
      "            self.cells.append(a.get('title') or '')\n"
      "        if tag == 'option' and 'selected' in a:\n"
      "            self.sel.append(a.get('value'))\n"
      "    def handle_data(self, data):\n"
      "        self.text.append(data)\n"
      "p = P()\n"
      "p.feed(d)\n"
      "assert p.tags.count('script') == 1, p.tags.count('script')\n"
      "assert 'img' not in p.tags\n"
      "assert p.sel == ['hostile'], p.sel\n"
      "assert len(p.cells) >= 8, len(p.cells)\n"
      "t = '\\n'.join(p.cells)\n"
      "assert 'start: <script>alert(1)</script>' in t\n"
      "assert 'end:   <img src=x onerror=alert(2)>' in t\n"
      "assert 'start: \\\\x01ctl\\\\x7f' in t, t[:400]\n"
      "assert 'end:   \\\\xff\\\\xfeinvalid' in t\n"
      "assert '\"q\\'uote' in t\n"
      "assert 'ops/s ' in t and 'writes ' in t and 'server: ' in t\n"
      "assert 'since split or merged' in t\n"
      "text = ''.join(p.text)\n"
      "assert '<script>alert(1)</script>0150' in text\n"
      "assert 'buckets of 1.0 s' in text, text[-2000:]\n";
  char path[600];
  snprintf(path, sizeof(path), "%s/check.py", tmp);
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(script, f);
  fclose(f);
  snprintf(cmd, sizeof(cmd), "python3 %s/check.py %s/dom.html", tmp, tmp);
  CU_ASSERT(system(cmd) == 0);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("heat", suite_init, suite_clean);
  CU_add_test(s, "every read, write and scan is counted", test_load_is_counted);
  CU_add_test(s, "/api/heatmap", test_heatmap);
  CU_add_test(s, "/api/heatmap?limit=", test_heatmap_limit);
  CU_add_test(s, "/api/hot", test_hot);
  CU_add_test(s, "a split in the map", test_split);
  CU_add_test(s, "mica hot", test_cli);
  CU_add_test(s, "heat map in a browser", test_page_in_browser);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
