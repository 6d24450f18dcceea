/* test_tserver_s3read: on an s3:// data root, a Get or a short MultiGet
 * is answered on the RPC polling thread when every block it needs is in
 * the block cache or the disk cache, and handed to a worker (and still
 * answered correctly) when it needs a ranged GET from S3
 * (tabletserver/server/ts_data.c, local-only reads in common/env.h).
 *
 * A real mica-tserver runs on s3rver (tests/harness/s3server.h) with its
 * WAL in a local directory and no compression, so the one SSTable spans
 * several 256 KiB disk-cache chunks and its first key's block is in a
 * chunk that opening the table does not read. The server's /metrics
 * counts each outcome (mica_tserver_remote_root_reads_{local,handed_off}
 * _total); every answer is checked in full.
 *   - no disk cache: the first Get of a key needs S3 (handed off), the
 *     second finds its block in the block cache (local); a MultiGet of
 *     two keys in blocks not yet read is handed off, one of keys just read
 *     is local; a Get of a key in the memtable is local;
 *   - with a disk cache: a reopened tablet (cold block cache for its new
 *     reader) first needs S3 for the key's chunk (handed off), and after
 *     another reopen the same read is served from the disk cache (local),
 *     with the block cache cold. */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "common/env.h"
#include "proto/auth.h"
#include "tests/harness/member.h"
#include "tests/harness/s3server.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/server/tsh.h"

#define NKEYS 2000
#define VLEN 500

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  buf_append(arg, p, size * n);
  return size * n;
}

/* The counter `name` from the server's /metrics; -1 if absent. */
static double metric(const char *http_addr, const char *name) {
  char url[256];
  snprintf(url, sizeof url, "http://%s/metrics", http_addr);
  buf body = BUF_INIT;
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode cc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  buf_push(&body, 0);
  char series[160];
  snprintf(series, sizeof series, "\n%s ", name);
  double v = -1;
  const char *p = cc == CURLE_OK ? strstr((char *)body.data, series) : NULL;
  if (p != NULL) v = strtod(p + strlen(series), NULL);
  buf_free(&body);
  return v;
}

typedef struct srv {
  tsh_proc p;
  char http[128];
} srv;

/* Starts mica-tserver on the S3 root `root`; `local` holds its secret,
 * WAL, logs and (when `cache` is not NULL) that disk cache directory. */
static void srv_start(const char *root, const char *local, const char *cache,
                      srv *s) {
  char secret[600], wal[600], haddr[600];
  snprintf(secret, sizeof secret, "%s/%s", local, RPC_SECRET_FILE);
  snprintf(wal, sizeof wal, "%s/wal", local);
  snprintf(haddr, sizeof haddr, "%s/http.addr", local);
  err_free(env_remove(env_posix(), haddr));
  const char *args[] = {"--cluster-secret-file", secret, "--wal-dir", wal,
                        "--http-address-file", haddr, "--compression",
                        "none", cache ? "--cache-dir" : NULL, cache, NULL};
  memset(s, 0, sizeof *s);
  th_node_opts o = {.prog = "mica-tserver", .name = "tserver",
                    .data_dir = root, .log_dir = local, .args = args,
                    .timeout_ms = 30000};
  TU_OK(th_node_start(&o, &s->p.node));
  snprintf(s->p.addr, sizeof s->p.addr, "%s", s->p.node.address);
  TU_OK(th_member_channel(s->p.addr, local, NULL, &s->p.ch));
  CU_ASSERT_PTR_NOT_NULL_FATAL(s->p.ch);
  buf hb = BUF_INIT;
  TU_OK(env_read_file(env_posix(), haddr, 256, &hb));
  while (hb.len > 0 && hb.data[hb.len - 1] == '\n') hb.len--;
  snprintf(s->http, sizeof s->http, "%.*s", (int)hb.len,
           (const char *)hb.data);
  buf_free(&hb);
}

static double local_reads(const srv *s) {
  return metric(s->http, "mica_tserver_remote_root_reads_local_total");
}
static double handed_off(const srv *s) {
  return metric(s->http, "mica_tserver_remote_root_reads_handed_off_total");
}

static void stop_clean(srv *s) {
  int st = tsh_stop(&s->p, SIGTERM);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void key_of(int i, char *out) { snprintf(out, 32, "k%08d", i); }

/* Get of key i: found, with tsh_fill's value. */
static void check_get(const srv *s, tsh_ref ref, int i) {
  char key[32];
  key_of(i, key);
  buf v = BUF_INIT;
  TU_OK(tsh_get(s->p.ch, ref, slice_from_str(key), &v));
  CU_ASSERT_EQUAL(v.len, VLEN);
  bool same = v.len == VLEN;
  for (size_t j = 0; same && j < v.len; j++) same = v.data[j] == 'v';
  CU_ASSERT(same);
  buf_free(&v);
}

/* MultiGet of keys a and b, and of one that is absent: each answered. */
static void check_multi_get(const srv *s, tsh_ref r, int a, int b) {
  char ka[32], kb[32];
  key_of(a, ka);
  key_of(b, kb);
  slice keys[3] = {slice_from_str(ka), slice_from_str(kb),
                   slice_from_str("k00000000x")};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  rpc_multi_get_part part = {0};
  part.tablet = &ref;
  part.keys = keys;
  part.n_keys = 3;
  rpc_multi_get_request req = {0};
  req.parts = &part;
  req.n_parts = 1;
  void *m = NULL;
  mica_err *e = rpc_unary(s->p.ch, &rpc_m_ts_multi_get, &req, 30000, &m);
  const rpc_multi_get_response *resp = m;
  TU_OK(tsh_status(e, resp ? resp->status : NULL));
  CU_ASSERT_EQUAL_FATAL(resp->n_parts, 1);
  TU_OK(rpc_status_err(resp->parts[0].status));
  CU_ASSERT_EQUAL_FATAL(resp->parts[0].n_results, 3);
  for (int i = 0; i < 2; i++) {
    const rpc_get_result *g = &resp->parts[0].results[i];
    CU_ASSERT(g->found);
    CU_ASSERT_EQUAL(g->value.len, VLEN);
    bool same = g->value.len == VLEN;
    for (size_t j = 0; same && j < g->value.len; j++)
      same = g->value.data[j] == 'v';
    CU_ASSERT(same);
  }
  CU_ASSERT(!resp->parts[0].results[2].found);
  rpc_msg_free(m);
}

static void test_inline_when_cached(void) {
  const char *endpoint;
  TU_OK(th_s3_start(&endpoint));
  TU_OK(th_s3_export_env());
  char *root = th_s3_new_root("s3read");
  const char *local = tu_tmpdir();
  bool created;
  rpc_secret sec;
  TU_OK(rpc_secret_load_or_create(local, &sec, &created));

  /* Life 1, no disk cache: write, flush to one SSTable on S3, reopen. */
  srv s;
  srv_start(root, local, NULL, &s);
  tsh_ref ref = {1, 1, 1};
  TU_OK(tsh_open(s.p.ch, ref, NULL, NULL));
  TU_OK(tsh_fill(s.p.ch, ref, "k", NKEYS, VLEN, 200));
  TU_OK(tsh_close(s.p.ch, ref)); /* flushes the memtable */
  ref.ae = 2;
  TU_OK(tsh_open(s.p.ch, ref, NULL, NULL));
  CU_ASSERT_EQUAL(local_reads(&s), 0);
  CU_ASSERT_EQUAL(handed_off(&s), 0);

  check_get(&s, ref, 0); /* its block is on S3 only */
  CU_ASSERT_EQUAL(handed_off(&s), 1);
  CU_ASSERT_EQUAL(local_reads(&s), 0);
  check_get(&s, ref, 0); /* now in the block cache */
  CU_ASSERT_EQUAL(handed_off(&s), 1);
  CU_ASSERT_EQUAL(local_reads(&s), 1);
  check_multi_get(&s, ref, NKEYS / 2, NKEYS - 1); /* blocks not yet read */
  CU_ASSERT_EQUAL(handed_off(&s), 2);
  check_multi_get(&s, ref, NKEYS / 2, NKEYS - 1); /* now cached */
  CU_ASSERT_EQUAL(handed_off(&s), 2);
  CU_ASSERT_EQUAL(local_reads(&s), 2);
  /* A key in the memtable needs no block at all. */
  TU_OK(tsh_put(s.p.ch, ref, slice_from_str("m1"), slice_from_str("mv")));
  buf v = BUF_INIT;
  TU_OK(tsh_get(s.p.ch, ref, slice_from_str("m1"), &v));
  CU_ASSERT(v.len == 2 && memcmp(v.data, "mv", 2) == 0);
  buf_free(&v);
  CU_ASSERT_EQUAL(local_reads(&s), 3);
  CU_ASSERT_EQUAL(handed_off(&s), 2);
  TU_OK(tsh_close(s.p.ch, ref));
  stop_clean(&s);

  /* Life 2, with a disk cache: the first read of key 0's chunk fetches
   * it; after a reopen (a new reader: nothing of it in the block cache)
   * the disk cache alone serves it on the polling thread. */
  char cache[600];
  snprintf(cache, sizeof cache, "%s/cache", local);
  srv_start(root, local, cache, &s);
  ref.ae = 3;
  TU_OK(tsh_open(s.p.ch, ref, NULL, NULL));
  check_get(&s, ref, 0);
  CU_ASSERT_EQUAL(handed_off(&s), 1);
  CU_ASSERT_EQUAL(local_reads(&s), 0);
  TU_OK(tsh_close(s.p.ch, ref));
  ref.ae = 4;
  TU_OK(tsh_open(s.p.ch, ref, NULL, NULL));
  check_get(&s, ref, 0);
  CU_ASSERT_EQUAL(handed_off(&s), 1);
  CU_ASSERT_EQUAL(local_reads(&s), 1);
  check_get(&s, ref, 1); /* same block, now in the block cache */
  CU_ASSERT_EQUAL(handed_off(&s), 1);
  CU_ASSERT_EQUAL(local_reads(&s), 2);
  stop_clean(&s);
  free(root);
}

static const CU_TestInfo tests[] = {
    {"inline_when_cached", test_inline_when_cached}, CU_TEST_INFO_NULL};

static void add_suites(void) { tu_add_suite("tserver_s3read", tests); }

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
