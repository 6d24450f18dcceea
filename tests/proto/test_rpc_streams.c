/* test_rpc_streams: streams whose readers are slow or gone, against an
 * in-process server on 127.0.0.1:0 (rpc.h, "Streams").
 *
 * Unread streams park without a thread (a server with two stream threads
 * keeps serving other streams and offloaded unary calls while hundreds are
 * unread), the per-connection and per-server bounds refuse with
 * RESOURCE_EXHAUSTED naming the bound, the idle timeout cancels unread
 * streams (and spares a reader that keeps up), and shutdown ends parked
 * streams. EchoStream is the streaming handler: it parks between chunks
 * with rpc_call_send_then. A chunk of 128 KiB is larger than the clients'
 * fixed stream window (64 KiB), so an unread stream's first send cannot
 * complete. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "proto/rpc.h"
#include "tests/harness/testutil.h"

#define BIG_CHUNK ((size_t)128 << 10)

static uint64_t now_ms(void) { return env_now_micros(env_posix()) / 1000; }

static void sleep_ms(uint64_t ms) { env_sleep_micros(env_posix(), ms * 1000); }

static rpc_server *start_server(const rpc_server_opts *opts) {
  rpc_server *s = NULL;
  TU_OK(rpc_server_new(opts, &s));
  if (s == NULL) return NULL;
  TU_OK(rpc_echo_register(s));
  TU_OK(rpc_server_start(s));
  return s;
}

static rpc_channel *connect_to(rpc_server *s) {
  rpc_channel *ch = NULL;
  rpc_channel_opts o = {0, 64 << 10}; /* a fixed window per stream */
  TU_OK(rpc_channel_new(rpc_server_address(s), &o, &ch));
  return ch;
}

static uint8_t big_payload[BIG_CHUNK];

/* Opens an EchoStream of `chunks` chunks of `len` bytes, no deadline, and
 * does not read it. */
static rpc_stream *open_unread(rpc_channel *ch, size_t len, uint32_t chunks) {
  rpc_echo_request req = {0};
  req.payload.data = big_payload;
  req.payload.len = len;
  req.chunks = chunks;
  rpc_stream *st = NULL;
  TU_OK(rpc_stream_open(ch, &rpc_m_echo_stream, &req, 0, &st));
  return st;
}

static size_t open_streams(rpc_server *s) {
  rpc_stream_stats ss;
  rpc_server_stream_stats(s, &ss);
  return ss.open;
}

/* Waits up to `ms` for the server's open streams to reach `n`. */
static bool wait_open(rpc_server *s, size_t n, uint64_t ms) {
  uint64_t t0 = now_ms();
  while (open_streams(s) != n && now_ms() - t0 < ms) sleep_ms(5);
  return open_streams(s) == n;
}

/* Reads a stream to its end; returns the final code, *chunks the count. */
static int read_all(rpc_stream *st, int *chunks, char *msg, size_t msglen) {
  void *m = NULL;
  mica_err *e;
  *chunks = 0;
  while ((e = rpc_stream_next(st, &m)) == NULL && m != NULL) {
    rpc_msg_free(m);
    (*chunks)++;
  }
  int code = err_code(e);
  if (msg != NULL) snprintf(msg, msglen, "%s", e != NULL ? err_msg(e) : "");
  err_free(e);
  return code;
}

static void test_parked_streams_hold_no_thread(void) {
  rpc_server_opts o = {0};
  o.stream_workers = 2;
  o.max_workers = 2;
  o.max_streams = 1000;
  o.max_streams_per_peer = 1000;
  rpc_server *s = start_server(&o);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *slow = connect_to(s);
  enum { N = 300 };
  rpc_stream **st = xcalloc(N, sizeof *st);
  for (int i = 0; i < N; i++) st[i] = open_unread(slow, BIG_CHUNK, 1000);
  CU_ASSERT_FATAL(wait_open(s, N, 20000));
  /* Give every handler time to send its first chunk and park. */
  sleep_ms(300);
  /* Another client is served at once, by the same two stream threads,
   * and offloaded unary calls by the two unary threads. */
  rpc_channel *other = connect_to(s);
  uint64_t t0 = now_ms();
  for (int round = 0; round < 5; round++) {
    rpc_echo_request req = {0};
    req.payload.data = big_payload;
    req.payload.len = 1000;
    req.chunks = 20;
    rpc_stream *rs = NULL;
    TU_OK(rpc_stream_open(other, &rpc_m_echo_stream, &req, 10000, &rs));
    int chunks = 0;
    CU_ASSERT_EQUAL(read_all(rs, &chunks, NULL, 0), MICA_OK);
    CU_ASSERT_EQUAL(chunks, 20);
    rpc_stream_free(rs);
    req.chunks = 0;
    req.delay_ms = 5; /* offloaded to the unary pool */
    void *resp = NULL;
    TU_OK(rpc_unary(other, &rpc_m_echo_echo, &req, 10000, &resp));
    rpc_msg_free(resp);
  }
  CU_ASSERT(now_ms() - t0 < 10000);
  /* The unread streams are still open: nothing ended them. */
  CU_ASSERT_EQUAL(open_streams(s), N);
  /* A reader that comes back gets its chunks in order. */
  void *m = NULL;
  TU_OK(rpc_stream_next(st[0], &m));
  CU_ASSERT_FATAL(m != NULL);
  CU_ASSERT_EQUAL(((rpc_echo_response *)m)->index, 0);
  CU_ASSERT_EQUAL(((rpc_echo_response *)m)->payload.len, BIG_CHUNK);
  rpc_msg_free(m);
  TU_OK(rpc_stream_next(st[0], &m));
  CU_ASSERT(m != NULL && ((rpc_echo_response *)m)->index == 1);
  rpc_msg_free(m);
  for (int i = 0; i < N; i++) rpc_stream_free(st[i]); /* cancels */
  CU_ASSERT(wait_open(s, 0, 20000));
  t0 = now_ms();
  while (rpc_server_live_calls(s) != 0 && now_ms() - t0 < 10000) sleep_ms(5);
  CU_ASSERT_EQUAL(rpc_server_live_calls(s), 0);
  rpc_stream_stats ss;
  rpc_server_stream_stats(s, &ss);
  CU_ASSERT_EQUAL(ss.refused, 0);
  CU_ASSERT_EQUAL(ss.idle_cancelled, 0);
  free(st);
  rpc_channel_free(other);
  rpc_channel_free(slow);
  rpc_server_free(s);
}

static void test_stream_bounds(void) {
  rpc_server_opts o = {0};
  o.max_streams = 8;
  o.max_streams_per_peer = 5;
  rpc_server *s = start_server(&o);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *a = connect_to(s), *b = connect_to(s);
  rpc_stream *held[8];
  for (int i = 0; i < 5; i++) held[i] = open_unread(a, BIG_CHUNK, 100);
  CU_ASSERT_FATAL(wait_open(s, 5, 10000));
  /* The sixth from the same connection is refused, naming the bound. */
  rpc_stream *over = open_unread(a, 10, 1);
  int chunks = -1;
  char msg[512];
  CU_ASSERT_EQUAL(read_all(over, &chunks, msg, sizeof msg),
                  MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT_EQUAL(chunks, 0);
  CU_ASSERT(strstr(msg, "per-connection bound of 5") != NULL);
  rpc_stream_free(over);
  /* Another connection has its own share, up to the server's bound. */
  for (int i = 5; i < 8; i++) held[i] = open_unread(b, BIG_CHUNK, 100);
  CU_ASSERT_FATAL(wait_open(s, 8, 10000));
  over = open_unread(b, 10, 1);
  CU_ASSERT_EQUAL(read_all(over, &chunks, msg, sizeof msg),
                  MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT(strstr(msg, "per-server bound of 8") != NULL);
  rpc_stream_free(over);
  rpc_stream_stats ss;
  rpc_server_stream_stats(s, &ss);
  CU_ASSERT_EQUAL(ss.refused, 2);
  CU_ASSERT_EQUAL(ss.open, 8);
  /* Unary calls are never bounded by streams. */
  rpc_echo_request req = {0};
  void *resp = NULL;
  TU_OK(rpc_unary(b, &rpc_m_echo_echo, &req, 5000, &resp));
  rpc_msg_free(resp);
  /* A cancelled stream frees its place. */
  rpc_stream_free(held[0]);
  CU_ASSERT(wait_open(s, 7, 10000));
  req.chunks = 3;
  rpc_stream *again = NULL;
  TU_OK(rpc_stream_open(a, &rpc_m_echo_stream, &req, 5000, &again));
  CU_ASSERT_EQUAL(read_all(again, &chunks, NULL, 0), MICA_OK);
  CU_ASSERT_EQUAL(chunks, 3);
  rpc_stream_free(again);
  for (int i = 1; i < 8; i++) rpc_stream_free(held[i]);
  CU_ASSERT(wait_open(s, 0, 10000));
  rpc_channel_free(a);
  rpc_channel_free(b);
  rpc_server_free(s);
}

static void test_idle_timeout(void) {
  rpc_server_opts o = {0};
  o.stream_idle_ms = 1000;
  rpc_server *s = start_server(&o);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s);
  enum { N = 10 };
  rpc_stream *st[N];
  /* Half of them short: their last chunk (sent with the status) waits
   * for the reader too. */
  for (int i = 0; i < N; i++)
    st[i] = i % 2 ? open_unread(ch, BIG_CHUNK, 1000)
                  : open_unread(ch, 40 << 10, 2);
  CU_ASSERT_FATAL(wait_open(s, N, 10000));
  /* A reader that takes a chunk every 100 ms is never idle that long. */
  rpc_echo_request req = {0};
  req.payload.data = big_payload;
  req.payload.len = BIG_CHUNK;
  req.chunks = 15;
  rpc_stream *live = NULL;
  TU_OK(rpc_stream_open(ch, &rpc_m_echo_stream, &req, 30000, &live));
  int chunks = 0;
  void *m = NULL;
  mica_err *e;
  while ((e = rpc_stream_next(live, &m)) == NULL && m != NULL) {
    rpc_msg_free(m);
    chunks++;
    sleep_ms(100);
  }
  CU_ASSERT_PTR_NULL(e);
  err_free(e);
  CU_ASSERT_EQUAL(chunks, 15);
  rpc_stream_free(live);
  /* The unread ones are cancelled and their state freed. */
  CU_ASSERT(wait_open(s, 0, 15000));
  uint64_t t0 = now_ms();
  while (rpc_server_live_calls(s) != 0 && now_ms() - t0 < 10000) sleep_ms(5);
  CU_ASSERT_EQUAL(rpc_server_live_calls(s), 0);
  rpc_stream_stats ss;
  rpc_server_stream_stats(s, &ss);
  CU_ASSERT_EQUAL(ss.idle_cancelled, N);
  /* Their reader gets what was buffered, then CANCELLED saying why. */
  char msg[512];
  CU_ASSERT_EQUAL(read_all(st[0], &chunks, msg, sizeof msg), MICA_CANCELLED);
  CU_ASSERT(strstr(msg, "idle") != NULL);
  for (int i = 0; i < N; i++) rpc_stream_free(st[i]);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

static void test_shutdown_parked(void) {
  rpc_server *s = start_server(NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s);
  enum { N = 50 };
  rpc_stream *st[N];
  for (int i = 0; i < N; i++) st[i] = open_unread(ch, BIG_CHUNK, 1000);
  CU_ASSERT_FATAL(wait_open(s, N, 10000));
  sleep_ms(200);
  uint64_t t0 = now_ms();
  rpc_server_free(s); /* every parked stream ended, queues drained */
  CU_ASSERT(now_ms() - t0 < 5000);
  for (int i = 0; i < N; i++) {
    int chunks = 0;
    int code = read_all(st[i], &chunks, NULL, 0);
    CU_ASSERT(code == MICA_CANCELLED || code == MICA_UNAVAILABLE);
    CU_ASSERT(chunks < 1000);
    rpc_stream_free(st[i]);
  }
  rpc_channel_free(ch);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"parked streams hold no thread", test_parked_streams_hold_no_thread},
      {"per-connection and per-server bounds", test_stream_bounds},
      {"idle timeout", test_idle_timeout},
      {"shutdown with parked streams", test_shutdown_parked},
      CU_TEST_INFO_NULL};
  tu_add_suite("rpc slow readers", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
