/* test_tserver_load: a real mica-tserver under volume and concurrency.
 *
 * A scan of 1,000,000 keys (100,000 under AddressSanitizer) streamed in
 * chunks, checked key by key in both directions; a client that cancels a
 * scan midway (the server releases the tablet: a CloseTablet right after
 * completes, and it keeps serving); and 64 concurrent clients, each on its
 * own channel, writing durably and reading back their own keys. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness/testutil.h"
#include "tests/tabletserver/server/tsh.h"

#define S(str) slice_from_str(str)

static tsh_proc srv;

static int suite_init(void) {
  mica_err *e = tsh_start(tu_tmpdir(), NULL, &srv);
  if (e != NULL) {
    fprintf(stderr, "start: %s\n", err_msg(e));
    err_free(e);
    return 1;
  }
  return 0;
}

static int suite_clean(void) {
  int st = tsh_stop(&srv, SIGTERM);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static void test_big_scan(void) {
  uint64_t n = tsh_sanitized() ? 100000 : 1000000;
  tsh_ref r = {1, 1, 1};
  TU_OK(tsh_open(srv.ch, r, NULL, NULL));
  TU_OK(tsh_fill(srv.ch, r, "k", n, 8, 10000));

  for (int reverse = 0; reverse < 2; reverse++) {
    rpc_scan_request sr = {0};
    rpc_tablet_ref ref = tsh_pb_ref(r);
    sr.tablet = &ref;
    sr.reverse = reverse;
    rpc_stream *st = NULL;
    TU_OK(rpc_stream_open(srv.ch, &rpc_m_ts_scan, &sr, 120000, &st));
    uint64_t rows = 0, chunks = 0;
    bool last = false, order_ok = true;
    int end = 0;
    char want[32];
    for (;;) {
      void *m = NULL;
      mica_err *e = rpc_stream_next(st, &m);
      TU_OK(e);
      if (m == NULL) break;
      const rpc_scan_chunk *c = (const rpc_scan_chunk *)m;
      TU_OK(rpc_status_err(c->status));
      CU_ASSERT(c->n_rows <= 1024);
      chunks++;
      for (size_t i = 0; i < c->n_rows; i++, rows++) {
        uint64_t idx = reverse ? n - 1 - rows : rows;
        int len = snprintf(want, sizeof want, "k%08" PRIu64, idx);
        if (c->rows[i].key.len != (size_t)len ||
            memcmp(c->rows[i].key.data, want, (size_t)len) != 0 ||
            c->rows[i].value.len != 8)
          order_ok = false;
      }
      if (c->last) {
        last = true;
        end = c->end;
      }
      rpc_msg_free(m);
    }
    rpc_stream_free(st);
    CU_ASSERT_EQUAL(rows, n);
    CU_ASSERT(order_ok);
    CU_ASSERT(last);
    CU_ASSERT_EQUAL(end, RPC_SCAN_END_RANGE);
    CU_ASSERT(chunks >= n / 1024);
  }
}

static void test_cancel_mid_scan(void) {
  tsh_ref r = {1, 1, 1};
  for (int round = 0; round < 3; round++) {
    rpc_scan_request sr = {0};
    rpc_tablet_ref ref = tsh_pb_ref(r);
    sr.tablet = &ref;
    sr.chunk_max_rows = 100;
    rpc_stream *st = NULL;
    TU_OK(rpc_stream_open(srv.ch, &rpc_m_ts_scan, &sr, 60000, &st));
    for (int i = 0; i < 3; i++) {
      void *m = NULL;
      TU_OK(rpc_stream_next(st, &m));
      CU_ASSERT_PTR_NOT_NULL_FATAL(m);
      CU_ASSERT_EQUAL(((rpc_scan_chunk *)m)->n_rows, 100);
      rpc_msg_free(m);
    }
    rpc_stream_free(st); /* cancels the stream */
  }
  buf v = BUF_INIT;
  TU_OK(tsh_get(srv.ch, r, S("k00000042"), &v));
  TU_OK(tsh_put(srv.ch, r, S("after-cancel"), S("1")));
  /* The cancelled scans released the tablet: a close completes. */
  TU_OK(tsh_close(srv.ch, r));
  TU_ERR(tsh_get(srv.ch, r, S("k00000042"), &v), MICA_NOT_SERVING);
  TU_OK(tsh_open(srv.ch, (tsh_ref){1, 1, 2}, NULL, NULL));
  TU_OK(tsh_get(srv.ch, (tsh_ref){1, 1, 2}, S("after-cancel"), &v));
  buf_free(&v);
}

typedef struct client_arg {
  int id;
  const char *addr;
  int ok, failed;
} client_arg;

static void *client_main(void *p) {
  client_arg *a = p;
  rpc_channel *ch = NULL;
  mica_err *e = rpc_channel_new(a->addr, NULL, &ch);
  tsh_ref r = {2, 1, 1};
  buf v = BUF_INIT;
  char key[32], val[32];
  for (int i = 0; e == NULL && i < 40; i++) {
    snprintf(key, sizeof key, "c%02d-%04d", a->id, i);
    snprintf(val, sizeof val, "v%d", i * a->id);
    e = tsh_put(ch, r, S(key), S(val));
  }
  for (int i = 0; e == NULL && i < 40; i++) {
    snprintf(key, sizeof key, "c%02d-%04d", a->id, i);
    snprintf(val, sizeof val, "v%d", i * a->id);
    e = tsh_get(ch, r, S(key), &v);
    if (e == NULL && slice_eq(buf_slice(&v), S(val)))
      a->ok++;
    else
      a->failed++;
  }
  if (e != NULL) {
    fprintf(stderr, "client %d: %s\n", a->id, err_msg(e));
    a->failed++;
  }
  err_free(e);
  buf_free(&v);
  rpc_channel_free(ch);
  return NULL;
}

static void test_64_clients(void) {
  TU_OK(tsh_open(srv.ch, (tsh_ref){2, 1, 1}, "c", "d"));
  pthread_t th[64];
  client_arg args[64];
  for (int i = 0; i < 64; i++) {
    args[i] = (client_arg){i, srv.addr, 0, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, client_main, &args[i]),
                          0);
  }
  int ok = 0, failed = 0;
  for (int i = 0; i < 64; i++) {
    pthread_join(th[i], NULL);
    ok += args[i].ok;
    failed += args[i].failed;
  }
  CU_ASSERT_EQUAL(failed, 0);
  CU_ASSERT_EQUAL(ok, 64 * 40);
  /* Every write landed: a scan counts them. */
  rpc_scan_request sr = {0};
  rpc_tablet_ref ref = tsh_pb_ref((tsh_ref){2, 1, 1});
  sr.tablet = &ref;
  sr.keys_only = true;
  rpc_stream *st = NULL;
  TU_OK(rpc_stream_open(srv.ch, &rpc_m_ts_scan, &sr, 60000, &st));
  size_t rows = 0;
  for (;;) {
    void *m = NULL;
    TU_OK(rpc_stream_next(st, &m));
    if (m == NULL) break;
    rows += ((rpc_scan_chunk *)m)->n_rows;
    rpc_msg_free(m);
  }
  rpc_stream_free(st);
  CU_ASSERT_EQUAL(rows, 64 * 40);
}

static const CU_TestInfo tests[] = {
    {"big_scan", test_big_scan},
    {"cancel_mid_scan", test_cancel_mid_scan},
    {"64_clients", test_64_clients},
    CU_TEST_INFO_NULL};

static void add_suites(void) {
  CU_SuiteInfo suites[] = {
      {"tserver_load", suite_init, suite_clean, NULL, NULL,
       (CU_TestInfo *)tests},
      CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
