/* rpc_test: the RPC module against an in-process server on 127.0.0.1:0.
 *
 * Covers the plain message structs and the method table against
 * mica.proto (through rpc_wire_check), the status
 * mapping, unary and streaming calls, large and oversized messages, bytes
 * that do not decode, unknown methods, deadlines seen by both sides,
 * cancellation mid-stream, many threads on one channel, many calls in
 * flight from one thread, handlers that answer from another thread,
 * shutdown with calls in flight, and a dead port. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/env.h"
#include "proto/rpc.h"
#include "tests/harness/testutil.h"

#define MiB ((size_t)1 << 20)

static uint64_t now_ms(void) { return env_now_micros(env_posix()) / 1000; }

static void sleep_ms(uint64_t ms) { env_sleep_micros(env_posix(), ms * 1000); }

/* An echo server plus `extra` handlers, started. */
static rpc_server *start_server(const rpc_server_opts *opts,
                                const rpc_handler *extra, size_t nextra) {
  rpc_server *s = NULL;
  mica_err *e = rpc_server_new(opts, &s);
  if (e != NULL) {
    fprintf(stderr, "rpc_server_new: %s\n", err_msg(e));
    err_free(e);
    return NULL;
  }
  e = rpc_echo_register(s);
  if (e == NULL && nextra > 0)
    e = rpc_server_register(s, extra, nextra);
  if (e == NULL)
    e = rpc_server_start(s);
  if (e != NULL) {
    fprintf(stderr, "rpc server: %s\n", err_msg(e));
    err_free(e);
    rpc_server_free(s);
    return NULL;
  }
  return s;
}

static rpc_channel *connect_to(rpc_server *s, size_t max_msg) {
  rpc_channel_opts o = {max_msg};
  rpc_channel *ch = NULL;
  mica_err *e = rpc_channel_new(rpc_server_address(s), &o, &ch);
  CU_ASSERT_PTR_NULL(e);
  err_free(e);
  return ch;
}

/* An echo of `n` bytes of pattern `seed`; checks the answer byte for byte.
 * Returns the transport error, if any. */
static mica_err *echo_n(rpc_channel *ch, size_t n, uint8_t seed,
                        uint32_t delay_ms, int64_t timeout_ms) {
  uint8_t *p = xmalloc(n ? n : 1);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed + i * 7);
  rpc_echo_request req = {0};
  req.payload.data = p;
  req.payload.len = n;
  req.delay_ms = delay_ms;
  void *resp = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_echo_echo, &req, timeout_ms, &resp);
  if (e == NULL) {
    const rpc_echo_response *r = (const rpc_echo_response *)resp;
    CU_ASSERT_EQUAL(r->payload.len, n);
    CU_ASSERT(r->payload.len == n &&
              (n == 0 || memcmp(r->payload.data, p, n) == 0));
    CU_ASSERT_PTR_NULL(rpc_status_err(r->status));
  }
  rpc_msg_free(resp);
  free(p);
  return e;
}

/* ---- tables ---- */

static void test_method_table(void) {
  /* Every message struct matches mica.proto field by field, and every
   * method matches its service: present, request and response types, and
   * Status as field 1 of every response. */
  TU_OK(rpc_wire_check());
  size_t n = 0;
  const rpc_method *const *all = rpc_methods_all(&n);
  CU_ASSERT(n > 0);
  for (size_t i = 0; i < n; i++) {
    CU_ASSERT(all[i]->path[0] == '/');
    CU_ASSERT(rpc_msg_size(all[i]->request) > 0 &&
              rpc_msg_size(all[i]->response) > 0);
  }
  CU_ASSERT_STRING_EQUAL(rpc_msg_name(rpc_m_ts_get.request),
                         "mica.v1.GetRequest");
  rpc_status st = {0};
  rpc_put_response pr = {0};
  CU_ASSERT_PTR_NULL(rpc_response_status(&pr));
  pr.status = &st;
  CU_ASSERT_PTR_EQUAL(rpc_response_status(&pr), &st);
  CU_ASSERT_STRING_EQUAL(rpc_m_ts_get.path, "/mica.v1.TabletServer/Get");
  CU_ASSERT(rpc_m_ts_scan.server_streaming);
  CU_ASSERT(!rpc_m_ts_put.server_streaming);
}

static void test_status_mapping(void) {
  /* gRPC numbers are fixed by the gRPC spec. */
  CU_ASSERT_EQUAL(rpc_code_from_grpc(0), MICA_OK);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(1), MICA_CANCELLED);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(3), MICA_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(4), MICA_DEADLINE_EXCEEDED);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(8), MICA_RESOURCE_EXHAUSTED);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(12), MICA_NOT_SUPPORTED);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(14), MICA_UNAVAILABLE);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(15), MICA_CORRUPTION);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(2), MICA_INTERNAL);
  CU_ASSERT_EQUAL(rpc_code_from_grpc(999), MICA_INTERNAL);
  CU_ASSERT_EQUAL(rpc_code_to_grpc(MICA_NOT_SUPPORTED), 12);
  CU_ASSERT_EQUAL(rpc_code_to_grpc(MICA_IO_ERROR), 13);
  CU_ASSERT_EQUAL(rpc_code_to_grpc(MICA_STALE_EPOCH), 9);
  CU_ASSERT_EQUAL(rpc_code_to_grpc(12345), 2);
  /* Every Mica code maps to a gRPC code that maps back to a Mica code, and
   * the codes gRPC has a word for survive the round trip. */
  for (int c = 0; c < MICA_CODE_COUNT_; c++) {
    int g = rpc_code_to_grpc(c);
    CU_ASSERT(g != 2 /* UNKNOWN */);
    int back = rpc_code_from_grpc(g);
    if (c != MICA_IO_ERROR && c != MICA_NOT_SERVING &&
        c != MICA_STALE_EPOCH && c != MICA_LEASE_EXPIRED &&
        c != MICA_NOT_ACTIVE_MASTER && c != MICA_STALE_MASTER)
      CU_ASSERT_EQUAL(back, c);
  }
  /* Status message helpers. */
  rpc_status st;
  rpc_status_set(&st, NULL);
  CU_ASSERT_PTR_NULL(rpc_status_err(&st));
  CU_ASSERT_PTR_NULL(rpc_status_err(NULL));
  mica_err *e = err_new(MICA_STALE_EPOCH, "tablet 7 epoch 3 < 4");
  rpc_status_set(&st, e);
  CU_ASSERT_EQUAL(st.code, MICA_STALE_EPOCH);
  mica_err *back = rpc_status_err(&st);
  CU_ASSERT_EQUAL(err_code(back), MICA_STALE_EPOCH);
  CU_ASSERT_STRING_EQUAL(err_msg(back), "tablet 7 epoch 3 < 4");
  err_free(back);
  err_free(e); /* st.message pointed into e: point it elsewhere */
  st.code = 77;
  st.message = (char *)"from a newer peer";
  back = rpc_status_err(&st);
  CU_ASSERT_EQUAL(err_code(back), MICA_INTERNAL);
  CU_ASSERT(strstr(err_msg(back), "77") != NULL);
  err_free(back);
}

/* ---- unary ---- */

static void test_unary(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT(rpc_server_port(s) > 0);
  rpc_channel *ch = connect_to(s, 0);
  TU_OK(echo_n(ch, 0, 1, 0, 5000));
  TU_OK(echo_n(ch, 1000, 2, 0, 5000));
  for (int i = 0; i < 100; i++)
    TU_OK(echo_n(ch, (size_t)tu_rand_below(5000), (uint8_t)i, 0, 5000));
  /* The wrong call form (unary on a streaming method) is refused before
   * anything is sent. */
  rpc_echo_request get = {0};
  void *resp = NULL;
  TU_ERR(rpc_unary(ch, &rpc_m_echo_stream, &get, 1000, &resp),
         MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(resp);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

static void test_large_messages(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  TU_OK(echo_n(ch, 8 * MiB, 3, 0, 60000));
  TU_OK(echo_n(ch, 40 * MiB, 4, 0, 120000));
  /* Over the 64 MiB default: refused on the client, clearly. */
  mica_err *e = echo_n(ch, 65 * MiB, 5, 0, 60000);
  CU_ASSERT_EQUAL(err_code(e), MICA_RESOURCE_EXHAUSTED);
  if (e != NULL)
    fprintf(stderr, "[over client limit: %s] ", err_msg(e));
  err_free(e);
  /* The channel still works. */
  TU_OK(echo_n(ch, 10, 6, 0, 5000));
  rpc_channel_free(ch);
  rpc_server_free(s);
}

static void test_limits_explicit(void) {
  /* A server with a 1 MiB limit refuses a 2 MiB request the client (64 MiB
   * limit) sends, and keeps serving. */
  rpc_server_opts so = {.max_message_bytes = MiB};
  rpc_server *s = start_server(&so, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  mica_err *e = echo_n(ch, 2 * MiB, 1, 0, 10000);
  CU_ASSERT_EQUAL(err_code(e), MICA_RESOURCE_EXHAUSTED);
  if (e != NULL)
    fprintf(stderr, "[over server limit: %s] ", err_msg(e));
  err_free(e);
  TU_OK(echo_n(ch, MiB / 2, 2, 0, 10000));
  /* A client with a 1 MiB limit refuses to send 2 MiB. */
  rpc_channel *small = connect_to(s, MiB);
  TU_ERR(echo_n(small, 2 * MiB, 3, 0, 10000), MICA_RESOURCE_EXHAUSTED);
  TU_OK(echo_n(small, 1000, 4, 0, 10000));
  rpc_channel_free(small);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

static void test_malformed_request(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  /* Field 1 says "length-delimited, 100 bytes" and then stops. */
  static const uint8_t truncated[] = {0x0a, 0x64, 'a', 'b'};
  /* Wire type 7 does not exist. */
  static const uint8_t badtype[] = {0x0f, 0x01};
  buf out = BUF_INIT;
  for (int round = 0; round < 3; round++) {
    mica_err *e = rpc_unary_raw(ch, rpc_m_echo_echo.path,
                                slice_make(truncated, sizeof truncated), 5000,
                                &out);
    CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
    CU_ASSERT(e != NULL && strstr(err_msg(e), "do not decode") != NULL);
    err_free(e);
    TU_ERR(rpc_unary_raw(ch, rpc_m_echo_echo.path,
                         slice_make(badtype, sizeof badtype), 5000, &out),
           MICA_INVALID_ARGUMENT);
    /* Random garbage; what does decode by chance is answered normally. */
    uint8_t junk[64];
    tu_rand_bytes(junk, sizeof junk);
    e = rpc_unary_raw(ch, rpc_m_echo_echo.path, slice_make(junk, sizeof junk),
                      5000, &out);
    CU_ASSERT(e == NULL || err_code(e) == MICA_INVALID_ARGUMENT);
    err_free(e);
    /* Garbage into a streaming method too. */
    TU_ERR(rpc_unary_raw(ch, rpc_m_echo_stream.path,
                         slice_make(truncated, sizeof truncated), 5000, &out),
           MICA_INVALID_ARGUMENT);
    /* The server keeps serving. */
    TU_OK(echo_n(ch, 100, (uint8_t)round, 0, 5000));
  }
  /* Raw bytes that do decode come back as the encoded response. */
  rpc_echo_request req = {0};
  req.payload.data = (uint8_t *)"hi";
  req.payload.len = 2;
  buf enc = BUF_INIT;
  rpc_msg_encode(&rpc_def_echo_request, &req, &enc);
  buf_clear(&out);
  TU_OK(rpc_unary_raw(ch, rpc_m_echo_echo.path, buf_slice(&enc), 5000,
                      &out));
  buf_free(&enc);
  rpc_echo_response *r = NULL;
  TU_OK(rpc_msg_decode(&rpc_def_echo_response, buf_slice(&out), (void **)&r));
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  CU_ASSERT(r->payload.len == 2 && memcmp(r->payload.data, "hi", 2) == 0);
  rpc_msg_free(r);
  /* Bytes that do not decode are refused by name. */
  const uint8_t bad[] = {0x0a, 0x05, 'h'};
  void *none = NULL;
  mica_err *de = rpc_msg_decode(&rpc_def_echo_response,
                                slice_make(bad, sizeof bad), &none);
  CU_ASSERT_EQUAL(err_code(de), MICA_INVALID_ARGUMENT);
  CU_ASSERT(de != NULL && strstr(err_msg(de), "mica.v1.EchoResponse") != NULL);
  CU_ASSERT_PTR_NULL(none);
  err_free(de);
  buf_free(&out);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

static void test_unknown_method(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  buf out = BUF_INIT;
  mica_err *e = rpc_unary_raw(ch, "/mica.v1.Echo/Nope", slice_make("", 0),
                              5000, &out);
  CU_ASSERT_EQUAL(err_code(e), MICA_NOT_SUPPORTED);
  CU_ASSERT(e != NULL && strstr(err_msg(e), "/mica.v1.Echo/Nope") != NULL);
  err_free(e);
  /* A method of the protocol that this server does not serve. */
  rpc_get_request get = {0};
  void *resp = NULL;
  TU_ERR(rpc_unary(ch, &rpc_m_ts_get, &get, 5000, &resp),
         MICA_NOT_SUPPORTED);
  /* A prefix of a served path is not that path. */
  TU_ERR(rpc_unary_raw(ch, "/mica.v1.Echo/Ech", slice_make("", 0), 5000, &out),
         MICA_NOT_SUPPORTED);
  TU_OK(echo_n(ch, 10, 1, 0, 5000));
  buf_free(&out);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

/* Answers any method with an empty response of its type (one chunk for a
 * stream), after checking a decoded request arrived. */
static atomic_int wrong_type_seen;

static void any_handler(rpc_call *call, const void *request,
                        void *ctx) {
  (void)ctx;
  const rpc_method *m = rpc_call_method(call);
  if (request == NULL)
    atomic_fetch_add(&wrong_type_seen, 1);
  void *resp = xcalloc(1, rpc_msg_size(m->response));
  if (m->server_streaming) {
    mica_err *e = rpc_call_send(call, resp);
    rpc_call_finish(call, e);
    err_free(e);
  } else {
    rpc_call_reply(call, resp);
  }
  free(resp);
}

static void test_fuzz_every_method(void) {
  size_t n = 0;
  const rpc_method *const *all = rpc_methods_all(&n);
  rpc_handler *h = xcalloc(n, sizeof *h);
  for (size_t i = 0; i < n; i++)
    h[i] = (rpc_handler){all[i], any_handler, NULL, 0};
  rpc_server *s = NULL;
  TU_OK(rpc_server_new(NULL, &s));
  TU_OK(rpc_server_register(s, h, n));
  TU_OK(rpc_server_start(s));
  rpc_channel *ch = connect_to(s, 0);
  /* A valid request to start mutations from: a Batch with two mutations. */
  rpc_tablet_ref ref = {0};
  ref.tablet_id = 42;
  ref.range_epoch = 3;
  rpc_mutation mu[2] = {{0},
                              {0}};
  mu[0].kind = RPC_MUTATION_PUT;
  mu[0].key.data = (uint8_t *)"apple";
  mu[0].key.len = 5;
  mu[0].value.data = (uint8_t *)"red";
  mu[0].value.len = 3;
  mu[1].kind = RPC_MUTATION_DELETE;
  mu[1].key.data = (uint8_t *)"pear";
  mu[1].key.len = 4;
  rpc_batch_request batch = {0};
  batch.tablet = &ref;
  batch.n_mutations = 2;
  batch.mutations = mu;
  buf seedbuf = BUF_INIT;
  rpc_msg_encode(&rpc_def_batch_request, &batch, &seedbuf);
  uint8_t seed[256];
  size_t seedlen = seedbuf.len;
  CU_ASSERT_FATAL(seedlen <= sizeof seed);
  memcpy(seed, seedbuf.data, seedlen);
  buf_free(&seedbuf);
  int ok = 0, invalid = 0, other = 0;
  buf out = BUF_INIT;
  for (int i = 0; i < 1500; i++) {
    uint8_t msg[256];
    size_t len;
    if (i % 2 == 0) {
      /* Mutate the valid encoding: flip, truncate, or both. */
      memcpy(msg, seed, seedlen);
      len = seedlen;
      int flips = 1 + (int)tu_rand_below(4);
      for (int f = 0; f < flips; f++)
        msg[tu_rand_below(len)] ^= (uint8_t)(1u << tu_rand_below(8));
      if (tu_rand_below(3) == 0)
        len = (size_t)tu_rand_below(len + 1);
    } else {
      len = (size_t)tu_rand_below(sizeof msg);
      tu_rand_bytes(msg, len);
    }
    const rpc_method *m = all[tu_rand_below(n)];
    buf_clear(&out);
    mica_err *e = rpc_unary_raw(ch, m->path, slice_make(msg, len), 5000, &out);
    if (e == NULL)
      ok++;
    else if (err_code(e) == MICA_INVALID_ARGUMENT)
      invalid++;
    else {
      other++;
      fprintf(stderr, "%s: %s\n", m->path, err_msg(e));
    }
    err_free(e);
  }
  buf_free(&out);
  fprintf(stderr, "[%d decoded, %d refused] ", ok, invalid);
  CU_ASSERT_EQUAL(other, 0);
  CU_ASSERT(invalid > 100);
  CU_ASSERT_EQUAL(atomic_load(&wrong_type_seen), 0);
  /* Still serving. */
  rpc_echo_request req = {0};
  void *resp = NULL;
  TU_OK(rpc_unary(ch, &rpc_m_echo_echo, &req, 5000, &resp));
  rpc_msg_free(resp);
  rpc_channel_free(ch);
  rpc_server_free(s);
  free(h);
}

/* ---- handlers written for the tests ---- */

static atomic_llong seen_remaining;

/* Get: answers NOT_SERVING with a routing error naming both daughters of a
 * split, and records the deadline it saw. */
static void get_handler(rpc_call *call, const void *request,
                        void *ctx) {
  (void)ctx;
  const rpc_get_request *req = (const rpc_get_request *)request;
  atomic_store(&seen_remaining, (long long)rpc_call_remaining_ms(call));
  mica_err *e = err_new(MICA_NOT_SERVING, "tablet %llu was split",
                        (unsigned long long)req->tablet->tablet_id);
  rpc_get_response resp = {0};
  rpc_status st;
  rpc_status_set(&st, e);
  rpc_routing_error re = {0};
  re.requested_tablet_id = req->tablet->tablet_id;
  rpc_tablet_descriptor d[2] = {{0},
                                     {0}};
  rpc_tablet_route r[2] = {{0},
                                {0}};
  d[0].tablet_id = 10;
  d[0].end_key.data = (uint8_t *)"m";
  d[0].end_key.len = 1;
  d[0].range_epoch = 2;
  d[1].tablet_id = 11;
  d[1].start_key.data = (uint8_t *)"m";
  d[1].start_key.len = 1;
  d[1].range_epoch = 2;
  r[0].desc = &d[0];
  r[1].desc = &d[1];
  re.n_current = 2;
  re.current = r;
  st.routing = &re;
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(e);
}

/* Put: fails the call itself with a transport status. */
static void put_handler(rpc_call *call, const void *request,
                        void *ctx) {
  (void)request, (void)ctx;
  mica_err *e = err_new(MICA_NOT_FOUND, "no such thing");
  rpc_call_finish(call, e);
  err_free(e);
}

/* Delete: ends a unary call without a response, a handler bug. */
static void delete_handler(rpc_call *call, const void *request,
                           void *ctx) {
  (void)request, (void)ctx;
  rpc_call_finish(call, NULL);
}

static void test_app_status_and_deadline(void) {
  const rpc_handler h[] = {{&rpc_m_ts_get, get_handler, NULL, 0},
                           {&rpc_m_ts_put, put_handler, NULL, RPC_OFFLOAD},
                           {&rpc_m_ts_delete, delete_handler, NULL, 0}};
  rpc_server *s = start_server(NULL, h, 3);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  rpc_tablet_ref ref = {0};
  ref.tablet_id = 7;
  rpc_get_request get = {0};
  get.tablet = &ref;
  get.key.data = (uint8_t *)"k";
  get.key.len = 1;
  void *m = NULL;
  TU_OK(rpc_unary(ch, &rpc_m_ts_get, &get, 5000, &m));
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  const rpc_get_response *resp = (const rpc_get_response *)m;
  mica_err *e = rpc_status_err(resp->status);
  CU_ASSERT_EQUAL(err_code(e), MICA_NOT_SERVING);
  CU_ASSERT_STRING_EQUAL(err_msg(e), "tablet 7 was split");
  err_free(e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(resp->status->routing);
  const rpc_routing_error *re = resp->status->routing;
  CU_ASSERT_EQUAL(re->requested_tablet_id, 7);
  CU_ASSERT_EQUAL_FATAL(re->n_current, 2);
  CU_ASSERT_EQUAL(re->current[0].desc->tablet_id, 10);
  CU_ASSERT_EQUAL(re->current[1].desc->tablet_id, 11);
  CU_ASSERT(re->current[1].desc->start_key.len == 1 &&
            re->current[1].desc->start_key.data[0] == 'm');
  CU_ASSERT_PTR_NULL(re->moved_to);
  long long left = atomic_load(&seen_remaining);
  if (left <= 3000 || left > 5100)
    fprintf(stderr, "[handler saw %lld ms left] ", left);
  /* gRPC sends the timeout rounded up and converts clocks: a few ms over. */
  CU_ASSERT(left > 3000 && left <= 5100);
  rpc_msg_free(m);
  /* No deadline: the handler sees INT64_MAX. */
  TU_OK(rpc_unary(ch, &rpc_m_ts_get, &get, 0, &m));
  CU_ASSERT_EQUAL(atomic_load(&seen_remaining), (long long)INT64_MAX);
  rpc_msg_free(m);
  /* Transport status chosen by the handler. */
  rpc_put_request put = {0};
  e = rpc_unary(ch, &rpc_m_ts_put, &put, 5000, &m);
  CU_ASSERT_EQUAL(err_code(e), MICA_NOT_FOUND);
  CU_ASSERT(e != NULL && strstr(err_msg(e), "no such thing") != NULL);
  err_free(e);
  rpc_delete_request del = {0};
  TU_ERR(rpc_unary(ch, &rpc_m_ts_delete, &del, 5000, &m), MICA_INTERNAL);
  /* Deadline exceeded on a slow handler, promptly. */
  uint64_t t0 = now_ms();
  TU_ERR(echo_n(ch, 10, 1, 3000, 200), MICA_DEADLINE_EXCEEDED);
  uint64_t took = now_ms() - t0;
  CU_ASSERT(took >= 150 && took < 2000);
  /* The handler saw the cancellation and ended its call long before its
   * 3 s delay was over. */
  t0 = now_ms();
  while (rpc_server_live_calls(s) != 0 && now_ms() - t0 < 5000)
    sleep_ms(2);
  CU_ASSERT_EQUAL(rpc_server_live_calls(s), 0);
  CU_ASSERT(now_ms() - t0 < 1500);
  /* And the delayed echo works within its deadline. */
  TU_OK(echo_n(ch, 10, 1, 50, 5000));
  rpc_channel_free(ch);
  rpc_server_free(s);
}

/* ---- streaming ---- */

static void test_stream(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  uint8_t payload[300];
  tu_rand_bytes(payload, sizeof payload);
  rpc_echo_request req = {0};
  req.payload.data = payload;
  req.payload.len = sizeof payload;
  req.chunks = 5000;
  rpc_stream *st = NULL;
  TU_OK(rpc_stream_open(ch, &rpc_m_echo_stream, &req, 60000, &st));
  uint32_t got = 0;
  for (;;) {
    void *m = NULL;
    mica_err *e = rpc_stream_next(st, &m);
    if (e != NULL) {
      TU_OK(e);
      break;
    }
    if (m == NULL)
      break;
    const rpc_echo_response *r = (const rpc_echo_response *)m;
    CU_ASSERT_EQUAL(r->index, got);
    CU_ASSERT(r->payload.len == sizeof payload &&
              memcmp(r->payload.data, payload, sizeof payload) == 0);
    got++;
    rpc_msg_free(m);
  }
  CU_ASSERT_EQUAL(got, 5000);
  /* After the end, next keeps answering "end". */
  void *m = NULL;
  TU_OK(rpc_stream_next(st, &m));
  CU_ASSERT_PTR_NULL(m);
  rpc_stream_free(st);
  /* Zero chunks: an empty, successful stream. */
  req.chunks = 0;
  TU_OK(rpc_stream_open(ch, &rpc_m_echo_stream, &req, 5000, &st));
  TU_OK(rpc_stream_next(st, &m));
  CU_ASSERT_PTR_NULL(m);
  rpc_stream_free(st);
  /* A stream past its deadline ends with DEADLINE_EXCEEDED. */
  req.chunks = 100;
  req.delay_ms = 50;
  TU_OK(rpc_stream_open(ch, &rpc_m_echo_stream, &req, 300, &st));
  mica_err *e = NULL;
  int n = 0;
  while ((e = rpc_stream_next(st, &m)) == NULL && m != NULL) {
    rpc_msg_free(m);
    n++;
  }
  CU_ASSERT_EQUAL(err_code(e), MICA_DEADLINE_EXCEEDED);
  CU_ASSERT(n < 100);
  err_free(e);
  rpc_stream_free(st);
  /* A unary method is refused as a stream and the other way round. */
  TU_ERR(rpc_stream_open(ch, &rpc_m_echo_echo, &req, 1000, &st),
         MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(st);
  TU_ERR(rpc_unary(ch, &rpc_m_echo_stream, &req, 1000, &m),
         MICA_INVALID_ARGUMENT);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

/* Scan handler that streams until told to stop, and records how it ended. */
static atomic_int scan_sent;
static atomic_int scan_noticed_cancel;
static atomic_int scan_ended;

static void scan_handler(rpc_call *call, const void *request,
                         void *ctx) {
  (void)request, (void)ctx;
  rpc_key_value kv = {0};
  char key[32];
  rpc_scan_chunk chunk = {0};
  chunk.n_rows = 1;
  chunk.rows = &kv;
  for (int i = 0; i < 1000000; i++) {
    int n = snprintf(key, sizeof key, "key%08d", i);
    kv.key.data = (uint8_t *)key;
    kv.key.len = (size_t)n;
    mica_err *e = rpc_call_send(call, &chunk);
    if (e != NULL) {
      atomic_store(&scan_noticed_cancel, err_code(e) == MICA_CANCELLED);
      rpc_call_finish(call, e);
      err_free(e);
      atomic_store(&scan_ended, 1);
      return;
    }
    atomic_fetch_add(&scan_sent, 1);
  }
  rpc_call_finish(call, NULL);
  atomic_store(&scan_ended, 1);
}

static void test_stream_cancel(void) {
  const rpc_handler h[] = {{&rpc_m_ts_scan, scan_handler, NULL, 0}};
  rpc_server *s = start_server(NULL, h, 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  rpc_scan_request req = {0};
  rpc_stream *st = NULL;
  TU_OK(rpc_stream_open(ch, &rpc_m_ts_scan, &req, 60000, &st));
  for (int i = 0; i < 10; i++) {
    void *m = NULL;
    TU_OK(rpc_stream_next(st, &m));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const rpc_scan_chunk *c = (const rpc_scan_chunk *)m;
    char want[32];
    snprintf(want, sizeof want, "key%08d", i);
    CU_ASSERT(c->n_rows == 1 && c->rows[0].key.len == strlen(want) &&
              memcmp(c->rows[0].key.data, want, strlen(want)) == 0);
    rpc_msg_free(m);
  }
  rpc_stream_free(st); /* cancels mid-stream */
  uint64_t t0 = now_ms();
  while (!atomic_load(&scan_ended) && now_ms() - t0 < 10000)
    sleep_ms(5);
  CU_ASSERT(atomic_load(&scan_ended));
  CU_ASSERT(atomic_load(&scan_noticed_cancel));
  CU_ASSERT(atomic_load(&scan_sent) < 1000000);
  /* The call is gone from the server, and it keeps serving. */
  t0 = now_ms();
  while (rpc_server_live_calls(s) != 0 && now_ms() - t0 < 5000)
    sleep_ms(5);
  CU_ASSERT_EQUAL(rpc_server_live_calls(s), 0);
  TU_OK(echo_n(ch, 10, 1, 0, 5000));
  rpc_channel_free(ch);
  rpc_server_free(s);
}

struct reader_arg {
  rpc_stream *st;
  int chunks;
  int code;
  uint64_t ended_ms;
};

static void *stream_reader(void *p) {
  struct reader_arg *a = p;
  void *m = NULL;
  mica_err *e;
  while ((e = rpc_stream_next(a->st, &m)) == NULL && m != NULL) {
    rpc_msg_free(m);
    a->chunks++;
  }
  a->code = err_code(e);
  a->ended_ms = now_ms();
  err_free(e);
  return NULL;
}

static void test_stream_cancel_other_thread(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  rpc_echo_request req = {0};
  req.chunks = 1000;
  req.delay_ms = 20;
  struct reader_arg a = {NULL, 0, -1, 0};
  TU_OK(rpc_stream_open(ch, &rpc_m_echo_stream, &req, 60000, &a.st));
  pthread_t t;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, stream_reader, &a), 0);
  sleep_ms(200);
  uint64_t t0 = now_ms();
  rpc_stream_cancel(a.st);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(a.code, MICA_CANCELLED);
  CU_ASSERT(a.chunks > 0 && a.chunks < 1000);
  CU_ASSERT(a.ended_ms - t0 < 1000);
  rpc_stream_free(a.st);
  t0 = now_ms();
  while (rpc_server_live_calls(s) != 0 && now_ms() - t0 < 5000)
    sleep_ms(5);
  CU_ASSERT_EQUAL(rpc_server_live_calls(s), 0);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

/* ---- concurrency ---- */

struct thread_arg {
  rpc_channel *ch;
  int id;
  int failures;
};

static void *client_thread(void *p) {
  struct thread_arg *a = p;
  for (int i = 0; i < 100; i++) {
    mica_err *e = echo_n(a->ch, 200 + (size_t)(a->id * 13 + i) % 2000,
                         (uint8_t)(a->id + i), 0, 30000);
    if (e != NULL) {
      fprintf(stderr, "thread %d: %s\n", a->id, err_msg(e));
      a->failures++;
      err_free(e);
    }
  }
  return NULL;
}

static void test_many_threads(void) {
  rpc_server_opts so = {.threads = 2};
  rpc_server *s = start_server(&so, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  enum { N = 64 };
  pthread_t t[N];
  struct thread_arg a[N];
  for (int i = 0; i < N; i++) {
    a[i] = (struct thread_arg){ch, i, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, client_thread, &a[i]), 0);
  }
  int failures = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    failures += a[i].failures;
  }
  CU_ASSERT_EQUAL(failures, 0);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

static void test_async_client(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  rpc_async *a = NULL;
  TU_OK(rpc_async_new(&a));
  enum { TOTAL = 2000, WINDOW = 64 };
  uint64_t payload_of[TOTAL];
  bool done[TOTAL];
  memset(done, 0, sizeof done);
  int started = 0, finished = 0;
  while (finished < TOTAL) {
    while (started < TOTAL && rpc_async_in_flight(a) < WINDOW) {
      payload_of[started] = tu_rand();
      rpc_echo_request req = {0};
      req.payload.data = (uint8_t *)&payload_of[started];
      req.payload.len = sizeof payload_of[started];
      TU_OK(rpc_async_start(a, ch, &rpc_m_echo_echo, &req, 30000,
                            (void *)(intptr_t)started));
      started++;
    }
    CU_ASSERT(rpc_async_in_flight(a) <= WINDOW);
    void *tag;
    void *m;
    mica_err *e;
    if (!rpc_async_next(a, 10000, &tag, &m, &e)) {
      CU_FAIL("async call did not complete");
      break;
    }
    int i = (int)(intptr_t)tag;
    CU_ASSERT(i >= 0 && i < started && !done[i]);
    TU_OK(e);
    const rpc_echo_response *r = (const rpc_echo_response *)m;
    CU_ASSERT(r->payload.len == 8 &&
              memcmp(r->payload.data, &payload_of[i], 8) == 0);
    done[i] = true;
    rpc_msg_free(m);
    finished++;
  }
  void *tag;
  void *m;
  mica_err *e;
  CU_ASSERT(!rpc_async_next(a, 10, &tag, &m, &e));
  /* Freeing with slow calls in flight cancels them. */
  for (int i = 0; i < 10; i++) {
    rpc_echo_request req = {0};
    req.delay_ms = 10000;
    TU_OK(rpc_async_start(a, ch, &rpc_m_echo_echo, &req, 30000, NULL));
  }
  uint64_t t0 = now_ms();
  rpc_async_free(a);
  CU_ASSERT(now_ms() - t0 < 5000);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

/* Handler that parks its call; a separate thread answers it later. */
struct parked {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rpc_call *calls[128];
  const rpc_echo_request *reqs[128];
  int n;
  bool stop;
};

static void park_handler(rpc_call *call, const void *request,
                         void *ctx) {
  struct parked *p = ctx;
  pthread_mutex_lock(&p->mu);
  p->calls[p->n] = call;
  p->reqs[p->n] = (const rpc_echo_request *)request;
  p->n++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void *answer_thread(void *arg) {
  struct parked *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->n == 0 && !p->stop)
      pthread_cond_wait(&p->cv, &p->mu);
    if (p->n == 0)
      break;
    /* Batch whatever arrived, as group commit would. */
    int n = p->n;
    rpc_call *calls[128];
    const rpc_echo_request *reqs[128];
    memcpy(calls, p->calls, sizeof calls[0] * (size_t)n);
    memcpy(reqs, p->reqs, sizeof reqs[0] * (size_t)n);
    p->n = 0;
    pthread_mutex_unlock(&p->mu);
    sleep_ms(2);
    for (int i = 0; i < n; i++) {
      rpc_echo_response resp = {0};
      resp.payload = reqs[i]->payload;
      rpc_call_reply(calls[i], &resp);
    }
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void *async_client(void *arg) {
  struct thread_arg *a = arg;
  for (int i = 0; i < 50; i++) {
    uint64_t v = ((uint64_t)a->id << 32) | (uint64_t)i;
    rpc_echo_request req = {0};
    req.payload.data = (uint8_t *)&v;
    req.payload.len = sizeof v;
    void *m = NULL;
    mica_err *e = rpc_unary(a->ch, &rpc_m_echo_echo, &req, 30000, &m);
    if (e != NULL) {
      a->failures++;
      err_free(e);
      continue;
    }
    const rpc_echo_response *r = (const rpc_echo_response *)m;
    if (r->payload.len != 8 || memcmp(r->payload.data, &v, 8) != 0)
      a->failures++;
    rpc_msg_free(m);
  }
  return NULL;
}

static void test_async_handler(void) {
  struct parked p;
  memset(&p, 0, sizeof p);
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  pthread_t answerer;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&answerer, NULL, answer_thread, &p), 0);
  /* The parked handler serves Echo on this server, instead of the usual. */
  rpc_server *s = NULL;
  TU_OK(rpc_server_new(NULL, &s));
  const rpc_handler h[] = {{&rpc_m_echo_echo, park_handler, &p, 0}};
  TU_OK(rpc_server_register(s, h, 1));
  TU_ERR(rpc_server_register(s, h, 1), MICA_ALREADY_EXISTS);
  TU_OK(rpc_server_start(s));
  TU_ERR(rpc_server_register(s, h, 1), MICA_INVALID_ARGUMENT);
  rpc_channel *ch = connect_to(s, 0);
  enum { N = 16 };
  pthread_t t[N];
  struct thread_arg a[N];
  for (int i = 0; i < N; i++) {
    a[i] = (struct thread_arg){ch, i, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, async_client, &a[i]), 0);
  }
  int failures = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    failures += a[i].failures;
  }
  CU_ASSERT_EQUAL(failures, 0);
  rpc_channel_free(ch);
  rpc_server_free(s);
  pthread_mutex_lock(&p.mu);
  p.stop = true;
  pthread_cond_signal(&p.cv);
  pthread_mutex_unlock(&p.mu);
  pthread_join(answerer, NULL);
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
}

/* An inline handler that keeps its call: the RPC module must still learn
 * that the client went away (its close is received once the handler
 * returns), so that a handler waiting for something can stop. */
static _Atomic(rpc_call *) kept_call;

static void keep_handler(rpc_call *call, const void *request, void *ctx) {
  (void)request, (void)ctx;
  atomic_store(&kept_call, call);
}

static void test_inline_kept_call_sees_cancel(void) {
  atomic_store(&kept_call, NULL);
  const rpc_handler h[] = {{&rpc_m_ts_get, keep_handler, NULL, 0}};
  rpc_server *s = start_server(NULL, h, 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  rpc_tablet_ref ref = {0};
  rpc_get_request req = {0};
  req.tablet = &ref;
  req.key = slice_make("k", 1);
  void *resp = NULL;
  /* The deadline passes while the handler holds the call. */
  TU_ERR(rpc_unary(ch, &rpc_m_ts_get, &req, 300, &resp),
         MICA_DEADLINE_EXCEEDED);
  rpc_call *call = atomic_load(&kept_call);
  CU_ASSERT_PTR_NOT_NULL_FATAL(call);
  uint64_t t0 = env_now_micros(env_posix());
  while (!rpc_call_cancelled(call) &&
         env_now_micros(env_posix()) - t0 < 10000000)
    env_sleep_micros(env_posix(), 5000);
  CU_ASSERT(rpc_call_cancelled(call));
  CU_ASSERT_EQUAL(rpc_call_remaining_ms(call), 0);
  mica_err *e = err_new(MICA_CANCELLED, "client went away");
  rpc_call_finish(call, e);
  err_free(e);
  t0 = env_now_micros(env_posix());
  while (rpc_server_live_calls(s) != 0 &&
         env_now_micros(env_posix()) - t0 < 10000000)
    env_sleep_micros(env_posix(), 5000);
  CU_ASSERT_EQUAL(rpc_server_live_calls(s), 0);
  /* The server goes on answering. */
  TU_OK(echo_n(ch, 100, 3, 0, 5000));
  rpc_channel_free(ch);
  rpc_server_free(s);
}

/* A streaming handler registered RPC_INLINE: answers a stream of one
 * chunk on the polling thread and hands longer ones to the stream pool,
 * where they park between chunks as usual. */
static void inline_stream_next(rpc_call *call, void *state,
                               const mica_err *err);

typedef struct inline_stream {
  uint32_t left;
  uint8_t byte;
} inline_stream;

static void inline_stream_send(rpc_call *call, inline_stream *st) {
  rpc_echo_response r = {0};
  r.payload = slice_make(&st->byte, 1);
  r.index = st->left;
  if (--st->left == 0) {
    rpc_call_reply(call, &r);
    free(st);
    return;
  }
  rpc_call_send_then(call, &r, inline_stream_next, st);
}

static void inline_stream_next(rpc_call *call, void *state,
                               const mica_err *err) {
  if (err != NULL) {
    free(state);
    rpc_call_finish(call, err);
    return;
  }
  inline_stream_send(call, state);
}

static void inline_stream_pooled(rpc_call *call, const void *request,
                                 void *ctx) {
  (void)ctx;
  const rpc_echo_request *req = (const rpc_echo_request *)request;
  inline_stream *st = xcalloc(1, sizeof *st);
  st->left = req->chunks;
  st->byte = 'p';
  inline_stream_send(call, st);
}

static void inline_stream_handler(rpc_call *call, const void *request,
                                  void *ctx) {
  const rpc_echo_request *req = (const rpc_echo_request *)request;
  if (req->chunks > 1) {
    rpc_call_offload(call, inline_stream_pooled, ctx);
    return;
  }
  rpc_echo_response r = {0};
  r.payload = slice_make("i", 1);
  rpc_call_reply(call, &r);
}

static void test_inline_stream(void) {
  rpc_server *s = NULL;
  TU_OK(rpc_server_new(NULL, &s));
  const rpc_handler h[] = {
      {&rpc_m_echo_stream, inline_stream_handler, NULL, RPC_INLINE}};
  TU_OK(rpc_server_register(s, h, 1));
  TU_OK(rpc_server_start(s));
  rpc_channel *ch = connect_to(s, 0);
  for (uint32_t chunks = 1; chunks <= 5; chunks += 4) {
    rpc_echo_request req = {0};
    req.chunks = chunks;
    rpc_stream *st = NULL;
    TU_OK(rpc_stream_open(ch, &rpc_m_echo_stream, &req, 10000, &st));
    uint32_t got = 0;
    void *m = NULL;
    mica_err *e;
    while ((e = rpc_stream_next(st, &m)) == NULL && m != NULL) {
      const rpc_echo_response *r = m;
      CU_ASSERT_EQUAL(r->payload.len, 1);
      if (r->payload.len == 1)
        CU_ASSERT_EQUAL(r->payload.data[0], chunks == 1 ? 'i' : 'p');
      got++;
      rpc_msg_free(m);
    }
    TU_OK(e);
    CU_ASSERT_EQUAL(got, chunks);
    rpc_stream_free(st);
  }
  rpc_channel_free(ch);
  rpc_server_free(s);
}

/* ---- shutdown and failures ---- */

struct slow_arg {
  rpc_channel *ch;
  int code;
};

static void *slow_unary(void *p) {
  struct slow_arg *a = p;
  mica_err *e = echo_n(a->ch, 100, 1, 20000, 30000);
  a->code = err_code(e);
  err_free(e);
  return NULL;
}

static void *slow_stream(void *p) {
  struct slow_arg *a = p;
  rpc_echo_request req = {0};
  req.chunks = 1000;
  req.delay_ms = 20;
  rpc_stream *st = NULL;
  mica_err *e = rpc_stream_open(a->ch, &rpc_m_echo_stream, &req, 30000,
                                &st);
  void *m = NULL;
  while (e == NULL && (e = rpc_stream_next(st, &m)) == NULL && m != NULL)
    rpc_msg_free(m);
  a->code = err_code(e);
  err_free(e);
  rpc_stream_free(st);
  return NULL;
}

static void test_shutdown_in_flight(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_channel *ch = connect_to(s, 0);
  enum { N = 12 };
  pthread_t t[N];
  struct slow_arg a[N];
  for (int i = 0; i < N; i++) {
    a[i] = (struct slow_arg){ch, -1};
    CU_ASSERT_EQUAL_FATAL(
        pthread_create(&t[i], NULL, i % 2 ? slow_stream : slow_unary, &a[i]),
        0);
  }
  uint64_t t0 = now_ms();
  while (rpc_server_live_calls(s) < N && now_ms() - t0 < 10000)
    sleep_ms(5);
  CU_ASSERT_EQUAL(rpc_server_live_calls(s), N);
  t0 = now_ms();
  rpc_server_free(s);
  CU_ASSERT(now_ms() - t0 < 5000);
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    /* Cut off by the shutdown, never answered as if complete. */
    CU_ASSERT(a[i].code == MICA_CANCELLED || a[i].code == MICA_UNAVAILABLE);
    if (a[i].code != MICA_CANCELLED && a[i].code != MICA_UNAVAILABLE)
      fprintf(stderr, "call %d ended with %s\n", i, mica_code_name(a[i].code));
  }
  /* The channel now points at nothing. */
  TU_ERR(echo_n(ch, 10, 1, 0, 5000), MICA_UNAVAILABLE);
  rpc_channel_free(ch);
}

static void test_dead_port(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  char addr[64];
  snprintf(addr, sizeof addr, "%s", rpc_server_address(s));
  /* Binding the same port twice fails clearly. */
  rpc_server_opts so = {.listen = addr};
  rpc_server *twin = NULL;
  TU_ERR(rpc_server_new(&so, &twin), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NULL(twin);
  rpc_server_free(s);
  rpc_channel *ch = NULL;
  TU_OK(rpc_channel_new(addr, NULL, &ch));
  uint64_t t0 = now_ms();
  mica_err *e = echo_n(ch, 10, 1, 0, 5000);
  CU_ASSERT_EQUAL(err_code(e), MICA_UNAVAILABLE);
  CU_ASSERT(e != NULL && strstr(err_msg(e), addr) != NULL);
  err_free(e);
  CU_ASSERT(now_ms() - t0 < 4000);
  rpc_echo_request req = {0};
  req.chunks = 3;
  rpc_stream *st = NULL;
  e = rpc_stream_open(ch, &rpc_m_echo_stream, &req, 5000, &st);
  if (e == NULL) {
    void *m = NULL;
    e = rpc_stream_next(st, &m);
    rpc_msg_free(m);
  }
  CU_ASSERT_EQUAL(err_code(e), MICA_UNAVAILABLE);
  err_free(e);
  rpc_stream_free(st);
  rpc_channel_free(ch);
  /* Bad addresses. */
  TU_ERR(rpc_channel_new("nocolon", NULL, &ch), MICA_INVALID_ARGUMENT);
  so.listen = "nocolon";
  TU_ERR(rpc_server_new(&so, &twin), MICA_INVALID_ARGUMENT);
  so.listen = "203.0.113.1:0"; /* not an address of this machine */
  TU_ERR(rpc_server_new(&so, &twin), MICA_UNAVAILABLE);
}

static void test_reconnect(void) {
  rpc_server *s = start_server(NULL, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  char addr[64];
  snprintf(addr, sizeof addr, "%s", rpc_server_address(s));
  rpc_channel *ch = connect_to(s, 0);
  TU_OK(echo_n(ch, 10, 1, 0, 5000));
  rpc_server_free(s);
  /* Down for 5 s while calls keep failing: gRPC's default backoff would
   * by now wait several seconds between connection attempts. */
  for (int i = 0; i < 10; i++) {
    TU_ERR(echo_n(ch, 10, 1, 0, 2000), MICA_UNAVAILABLE);
    sleep_ms(500);
  }
  /* The server comes back on the same port (as a restarted master would). */
  rpc_server_opts so = {.listen = addr};
  s = start_server(&so, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  uint64_t t0 = now_ms();
  mica_err *e = NULL;
  do {
    err_free(e);
    e = echo_n(ch, 10, 2, 0, 2000);
    if (e != NULL)
      sleep_ms(20);
  } while (e != NULL && now_ms() - t0 < 10000);
  TU_OK(e);
  uint64_t took = now_ms() - t0;
  fprintf(stderr, "[reconnected after %llu ms] ", (unsigned long long)took);
  CU_ASSERT(took < 1800);
  rpc_channel_free(ch);
  rpc_server_free(s);
}

static void test_server_never_started(void) {
  rpc_server *s = NULL;
  TU_OK(rpc_server_new(NULL, &s));
  TU_OK(rpc_echo_register(s));
  rpc_server_free(s);
  rpc_server_free(NULL);
  rpc_channel_free(NULL);
  rpc_stream_free(NULL);
  rpc_async_free(NULL);
}

static void add_suites(void) {
  static const CU_TestInfo tables[] = {
      {"method table matches mica.proto", test_method_table},
      {"status mapping", test_status_mapping},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo unary[] = {
      {"round trip", test_unary},
      {"8 and 40 MiB, over 64 MiB refused", test_large_messages},
      {"explicit limits both sides", test_limits_explicit},
      {"malformed bytes -> INVALID_ARGUMENT", test_malformed_request},
      {"unknown method -> NOT_SUPPORTED", test_unknown_method},
      {"mutated and random bytes into every method", test_fuzz_every_method},
      {"app status, routing error, deadlines", test_app_status_and_deadline},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo streams[] = {
      {"many chunks, empty, deadline", test_stream},
      {"client cancels mid-stream", test_stream_cancel},
      {"cancel from another thread", test_stream_cancel_other_thread},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo conc[] = {
      {"64 threads on one channel", test_many_threads},
      {"64 in flight from one thread", test_async_client},
      {"handler answers from another thread", test_async_handler},
      {"inline handler keeping its call sees the deadline pass",
       test_inline_kept_call_sees_cancel},
      {"RPC_INLINE stream: one chunk inline, more on the pool",
       test_inline_stream},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo life[] = {
      {"shutdown with calls in flight", test_shutdown_in_flight},
      {"dead port -> UNAVAILABLE", test_dead_port},
      {"server restarts on the same port", test_reconnect},
      {"server freed before start", test_server_never_started},
      CU_TEST_INFO_NULL};
  tu_add_suite("rpc tables", tables);
  tu_add_suite("rpc unary", unary);
  tu_add_suite("rpc streams", streams);
  tu_add_suite("rpc concurrency", conc);
  tu_add_suite("rpc lifecycle", life);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
