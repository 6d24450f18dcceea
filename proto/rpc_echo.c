/* rpc_echo: the Echo service, a handler pair that does nothing but move
 * bytes, so benchmarks can measure the transport's own limit and tests can
 * drive the RPC module without a storage engine behind it.
 *
 * Echo answers inline on the polling thread when delay_ms is 0, the path the
 * benchmark measures; a delayed echo moves to a worker thread so a waiting
 * call never holds up a poller. */
#include <stdlib.h>

#include "common/env.h"
#include "proto/rpc.h"

/* Sleeps `ms` in small steps, stopping early once the call is cancelled. */
static void wait_ms(rpc_call *call, uint32_t ms) {
  env *e = env_posix();
  uint64_t end = env_now_micros(e) + (uint64_t)ms * 1000;
  for (;;) {
    uint64_t now = env_now_micros(e);
    if (now >= end || rpc_call_cancelled(call))
      return;
    uint64_t step = end - now < 5000 ? end - now : 5000;
    env_sleep_micros(e, step);
  }
}

static void echo_reply(rpc_call *call, const rpc_echo_request *req) {
  rpc_echo_response resp = {.payload = req->payload};
  rpc_call_reply(call, &resp);
}

static void echo_delayed(rpc_call *call, const void *request,
                         void *ctx) {
  (void)ctx;
  const rpc_echo_request *req = request;
  wait_ms(call, req->delay_ms);
  echo_reply(call, req);
}

static void echo(rpc_call *call, const void *request, void *ctx) {
  const rpc_echo_request *req = request;
  if (req->delay_ms > 0)
    rpc_call_offload(call, echo_delayed, ctx);
  else
    echo_reply(call, req);
}

/* EchoStream's progress between chunks (the call is parked meanwhile). */
typedef struct echo_state {
  const rpc_echo_request *req; /* the call's request: valid until it ends */
  uint32_t next;
} echo_state;

/* Produces chunk st->next, or ends the stream. The delay between chunks is
 * served on the stream pool: Echo is a test service. */
static void echo_stream_next(rpc_call *call, void *state,
                             const mica_err *err) {
  echo_state *st = state;
  if (err != NULL || st->next == st->req->chunks) {
    free(st);
    rpc_call_finish(call, err);
    return;
  }
  if (st->req->delay_ms > 0)
    wait_ms(call, st->req->delay_ms);
  rpc_echo_response resp = {.payload = st->req->payload, .index = st->next};
  st->next++;
  if (st->next < st->req->chunks) {
    rpc_call_send_then(call, &resp, echo_stream_next, st);
    return;
  }
  /* The last chunk travels with the status. */
  free(st);
  rpc_call_reply(call, &resp);
}

static void echo_stream(rpc_call *call, const void *request,
                        void *ctx) {
  (void)ctx;
  echo_state *st = xcalloc(1, sizeof *st);
  st->req = request;
  echo_stream_next(call, st, NULL);
}

mica_err *rpc_echo_register(rpc_server *s) {
  const rpc_handler h[] = {
      {&rpc_m_echo_echo, echo, NULL, 0},
      {&rpc_m_echo_stream, echo_stream, NULL, 0},
  };
  return rpc_server_register(s, h, sizeof h / sizeof h[0]);
}
