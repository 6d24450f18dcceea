/* test_tserver_inline: Gets answered on the RPC polling thread are not
 * stalled by a client that stops reading or by writes that wait.
 *
 * A Get is served inline on the polling thread that received it
 * (docs/tserver.md, "Threads"), so anything that made that thread wait
 * would stall every other call it polls. The server here runs with
 * --threads 1: one polling thread for everything, the worst case. While
 *   - a slow reader (this program re-executed with --slow-reader, its own
 *     process, so that nothing in it reads its socket) has 48 Gets of
 *     1 MiB values answered and unread: 48 MiB, far more than the socket
 *     buffers hold, so the server holds most of those answers for it; and
 *     8 short Scans (100 rows, answered inline) whose first 1 MiB chunk
 *     waits for it;
 *   - and four writer threads keep durable 2 MiB Batches in the group
 *     commit (offloaded: each waits for its fdatasync on a worker);
 * this process's Gets of small values must each be answered within their
 * deadline (5 s: a stalled poller would hold them until the slow reader
 * reads, which it does only after they finished). The server's
 * /metrics must show that it had already answered the slow reader's Gets
 * (so the check is not vacuous), and afterwards the slow reader must
 * receive every one of its answers intact: holding them cost it nothing
 * but memory, and every scan must come whole. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/harness/member.h"
#include "tests/harness/proc.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/server/tsh.h"

#define BIG_KEYS 48
#define BIG_LEN ((size_t)1 << 20)
#define SMALL_KEYS 200
#define WRITERS 4
#define WRITE_LEN ((size_t)2 << 20)
#define SCANS 8
#define SCAN_ROWS 100 /* the 48 big rows, then small ones */

static const tsh_ref REF = {1, 1, 1};

static uint8_t *value_of(char tag, size_t len) {
  uint8_t *v = xmalloc(len);
  for (size_t i = 0; i < len; i++) v[i] = (uint8_t)(tag + i % 23);
  return v;
}

static void key_of(const char *prefix, int i, char *out, size_t n) {
  snprintf(out, n, "%s%08d", prefix, i);
}

/* ---- the slow reader (its own process) ---- */

/* argv: --slow-reader ADDR DATA_ROOT GO_FILE. Starts a Get of every big
 * key, prints "sent", reads nothing until GO_FILE exists, then reads every
 * answer and checks it. Exit 0 when all BIG_KEYS answers arrived intact. */
static int slow_reader_main(char **argv) {
  const char *addr = argv[2], *root = argv[3], *go = argv[4];
  rpc_channel *ch = NULL;
  mica_err *e = th_member_channel(addr, root, NULL, &ch);
  /* One answered call first, so the connection is up before this process
   * stops polling it. */
  buf v = BUF_INIT;
  char key[32];
  key_of("small", 0, key, sizeof key);
  if (e == NULL) e = tsh_get(ch, REF, slice_make(key, strlen(key)), &v);
  buf_free(&v);
  rpc_async *a = NULL;
  if (e == NULL) e = rpc_async_new(&a);
  static char keys[BIG_KEYS][32];
  static rpc_get_request reqs[BIG_KEYS];
  rpc_tablet_ref ref = {.tablet_id = REF.id, .range_epoch = REF.re,
                        .assign_epoch = REF.ae};
  for (int i = 0; e == NULL && i < BIG_KEYS; i++) {
    key_of("big", i, keys[i], sizeof keys[i]);
    reqs[i].tablet = &ref;
    reqs[i].key = slice_make(keys[i], strlen(keys[i]));
    e = rpc_async_start(a, ch, &rpc_m_ts_get, &reqs[i], 120000,
                        (void *)(intptr_t)i);
  }
  /* Short scans too (answered inline): their first chunk, one 1 MiB row,
   * is sent by the polling thread and then waits for this reader. */
  rpc_stream *scans[SCANS] = {0};
  rpc_scan_request sreq = {0};
  sreq.tablet = &ref;
  sreq.start_key = slice_make("big", 3);
  sreq.limit = SCAN_ROWS;
  for (int i = 0; e == NULL && i < SCANS; i++)
    e = rpc_stream_open(ch, &rpc_m_ts_scan, &sreq, 120000, &scans[i]);
  if (e != NULL) {
    fprintf(stderr, "slow reader: %s\n", err_msg(e));
    return 1;
  }
  printf("sent\n");
  fflush(stdout);
  while (access(go, F_OK) != 0) env_sleep_micros(env_posix(), 20000);
  uint8_t *want = value_of('B', BIG_LEN);
  int good = 0;
  void *tag, *resp;
  mica_err *ce;
  while (rpc_async_next(a, 60000, &tag, &resp, &ce)) {
    rpc_get_response *r = resp;
    if (ce != NULL) {
      fprintf(stderr, "slow reader: get %d: %s\n", (int)(intptr_t)tag,
              err_msg(ce));
      err_free(ce);
    } else if (r->found && r->value.len == BIG_LEN &&
               memcmp(r->value.data, want, BIG_LEN) == 0) {
      good++;
    }
    rpc_msg_free(resp);
  }
  free(want);
  int scans_whole = 0;
  for (int i = 0; i < SCANS; i++) {
    size_t rows = 0;
    void *m = NULL;
    while ((e = rpc_stream_next(scans[i], &m)) == NULL && m != NULL) {
      rpc_scan_chunk *c = m;
      if (c->status != NULL && c->status->code != MICA_OK)
        fprintf(stderr, "slow reader: scan %d: %s\n", i, c->status->message);
      rows += c->n_rows;
      rpc_msg_free(m);
    }
    if (e != NULL) {
      fprintf(stderr, "slow reader: scan %d: %s\n", i, err_msg(e));
      err_free(e);
    }
    scans_whole += rows == SCAN_ROWS;
    rpc_stream_free(scans[i]);
  }
  rpc_async_free(a);
  rpc_channel_free(ch);
  printf("answers %d, whole scans %d\n", good, scans_whole);
  return good == BIG_KEYS && scans_whole == SCANS ? 0 : 1;
}

/* ---- this process ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
  buf_append(arg, p, size * n);
  return size * n;
}

/* The server's count of Gets answered OK, from /metrics; -1 if absent. */
static double gets_answered(const char *http_addr) {
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
  double v = -1;
  const char *series =
      "mica_tserver_requests_total{method=\"Get\",code=\"OK\"} ";
  const char *p = cc == CURLE_OK ? strstr((char *)body.data, series) : NULL;
  if (p != NULL) v = strtod(p + strlen(series), NULL);
  buf_free(&body);
  return v;
}

typedef struct writer {
  rpc_channel *ch;
  int id;
  atomic_bool *stop;
  atomic_int done;
  mica_err *err;
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  uint8_t *val = value_of('W', WRITE_LEN);
  while (w->err == NULL && !atomic_load(w->stop)) {
    char key[32];
    snprintf(key, sizeof key, "write%02d-%06d", w->id, atomic_load(&w->done));
    w->err = tsh_put(w->ch, REF, slice_make(key, strlen(key)),
                     slice_make(val, WRITE_LEN));
    atomic_fetch_add(&w->done, 1);
  }
  free(val);
  return NULL;
}

static void test_slow_reader_and_writes(void) {
  const char *dir = tu_tmpdir();
  char haddr_file[600], go_file[600], out_file[600];
  snprintf(haddr_file, sizeof haddr_file, "%s/http.addr", dir);
  snprintf(go_file, sizeof go_file, "%s/go", dir);
  snprintf(out_file, sizeof out_file, "%s/slow-reader.out", dir);
  const char *extra[] = {"--threads", "1", "--http-address-file", haddr_file,
                         NULL};
  tsh_proc srv;
  TU_OK(tsh_start(dir, extra, &srv));
  CU_ASSERT_PTR_NOT_NULL_FATAL(srv.ch);
  buf hb = BUF_INIT;
  TU_OK(env_read_file(env_posix(), haddr_file, 256, &hb));
  while (hb.len > 0 && hb.data[hb.len - 1] == '\n') hb.len--;
  char http_addr[128];
  snprintf(http_addr, sizeof http_addr, "%.*s", (int)hb.len,
           (const char *)hb.data);
  buf_free(&hb);

  TU_OK(tsh_open(srv.ch, REF, NULL, NULL));
  uint8_t *big = value_of('B', BIG_LEN);
  for (int i = 0; i < BIG_KEYS; i++) {
    char key[32];
    key_of("big", i, key, sizeof key);
    TU_OK(tsh_put(srv.ch, REF, slice_make(key, strlen(key)),
                  slice_make(big, BIG_LEN)));
  }
  free(big);
  TU_OK(tsh_fill(srv.ch, REF, "small", SMALL_KEYS, 100, 100));

  /* The slow reader: its Gets answered, its socket unread. */
  double before = gets_answered(http_addr);
  CU_ASSERT_FATAL(before >= 0);
  const char *argv[] = {"/proc/self/exe", "--slow-reader", srv.addr, dir,
                        go_file, NULL};
  th_spawn sp = {.name = "slow-reader", .argv = argv, .out_path = out_file};
  th_proc *reader = NULL;
  TU_OK(th_proc_start(&sp, &reader));
  CU_ASSERT_PTR_NOT_NULL_FATAL(reader);
  TU_OK(th_proc_wait_line(reader, "sent", 60000));
  /* Every Get of the slow reader answered by the server (its counter
   * counts a call when the answer is handed to the transport). */
  uint64_t t0 = env_now_micros(env_posix());
  double answered = 0;
  while ((answered = gets_answered(http_addr)) < before + 1 + BIG_KEYS &&
         env_now_micros(env_posix()) - t0 < 60000000)
    env_sleep_micros(env_posix(), 20000);
  CU_ASSERT(answered >= before + 1 + BIG_KEYS);

  /* Writers waiting in the group commit, on their own connection. */
  rpc_channel *wch = NULL;
  TU_OK(th_member_channel(srv.addr, dir, NULL, &wch));
  atomic_bool stop = false;
  writer w[WRITERS];
  pthread_t th[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    w[i] = (writer){.ch = wch, .id = i, .stop = &stop};
    CU_ASSERT_FATAL(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
  }
  /* Every writer through one write, so the Gets below overlap the
   * writes that follow. */
  t0 = env_now_micros(env_posix());
  for (;;) {
    int n = 0;
    for (int i = 0; i < WRITERS; i++) n += atomic_load(&w[i].done) > 0;
    if (n == WRITERS || env_now_micros(env_posix()) - t0 > 60000000) break;
    env_sleep_micros(env_posix(), 10000);
  }
  /* Gets of small values on this channel, each within its deadline,
   * while the slow reader holds 48 MiB of answers and the writers write. */
  int got = 0;
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < SMALL_KEYS; i += 7) {
      char key[32];
      key_of("small", i, key, sizeof key);
      rpc_get_request req = {0};
      rpc_tablet_ref ref = {.tablet_id = REF.id, .range_epoch = REF.re,
                            .assign_epoch = REF.ae};
      req.tablet = &ref;
      req.key = slice_make(key, strlen(key));
      rpc_get_response *r = NULL;
      mica_err *e = rpc_unary(srv.ch, &rpc_m_ts_get, &req, 5000, (void **)&r);
      if (e == NULL) e = rpc_status_err(r->status);
      if (e == NULL && r != NULL && r->found && r->value.len == 100) got++;
      TU_OK(e);
      rpc_msg_free(r);
    }
  CU_ASSERT_EQUAL(got, 3 * ((SMALL_KEYS + 6) / 7));
  atomic_store(&stop, true);
  int writes = 0;
  for (int i = 0; i < WRITERS; i++) {
    pthread_join(th[i], NULL);
    TU_OK(w[i].err);
    w[i].err = NULL;
    writes += atomic_load(&w[i].done);
  }
  CU_ASSERT(writes >= WRITERS);
  rpc_channel_free(wch);

  /* The slow reader now reads: every answer arrives intact. */
  FILE *f = fopen(go_file, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fclose(f);
  int status = -1;
  TU_OK(th_proc_wait_exit(reader, 120000, &status));
  CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  th_proc_free(reader);
  CU_ASSERT_EQUAL(tsh_stop(&srv, SIGTERM), 0);
}

static void add_suites(void) {
  static CU_TestInfo tests[] = {
      {"slow reader and waiting writes do not stall inline gets",
       test_slow_reader_and_writes},
      CU_TEST_INFO_NULL};
  tu_add_suite("tserver_inline", tests);
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--slow-reader") == 0)
    return slow_reader_main(argv);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return tu_main(argc, argv, add_suites);
}
