/* rpc_server: the server half of the RPC module (contract in rpc.h).
 *
 * Polling threads share completion queues registered with the gRPC server,
 * up to RPC_THREADS_PER_CQ threads per queue (so one queue for the two
 * threads of a 2-core machine): whichever thread polled the socket takes
 * the completion it produced, instead of waking the thread that owns the
 * call's queue, and two threads serving one connection do not fight over
 * its transport's lock (which made gRPC hand the rest of the work to its
 * executor thread: one more wake-up per call). Sharing is bounded because
 * one queue's lock is taken for every completion; more than 2 threads per
 * queue were not measured (docs/benchmarks.md, "A cheaper request path").
 *
 * Every handler's method is registered with the gRPC server
 * (grpc_server_register_method) so that its request message arrives with
 * the call itself. Each polling thread posts RPC_REQUESTS_PER_METHOD
 * unmatched grpc_server_request_registered_call slots per method on its
 * queue, plus RPC_REQUESTS_UNKNOWN grpc_server_request_call slots that
 * only calls of unregistered paths reach (to be told UNIMPLEMENTED). When
 * a slot is matched it is replaced at once, so new calls never wait for a
 * handler.
 *
 * A call's life, all of it driven by completion tags on its poller's queue:
 *   matched, with its request message -> decode -> handler (inline on this
 *           polling thread, or on a worker)
 *   the handler ends the call: one final batch carrying the status (and
 *           the unary response)
 *   the call is freed when its final batch and its RECV_CLOSE_ON_SERVER
 *           (which tells of cancellation) completed.
 * Each is one of the call's references (refs). Where the close is received
 * is decided once per call (close_state): a call that waits for something
 * (offloaded, streaming, or an inline handler that returned without ending
 * it) starts it in a batch of its own, so that rpc_call_cancelled() can
 * tell it the client went away; a call ended before any of that happened
 * (an inline Get: the common case) receives it in its final batch, which
 * saves a batch and a completion per call. While the polling thread runs
 * an inline handler it holds a third reference, because the handler may
 * hand the call to another thread that ends it before the handler
 * returns. The handler's duty to end the call is what keeps the final
 * batch's reference alive, so "every handler ends its call" is exactly
 * what lets shutdown finish.
 *
 * Why: an earlier form matched every call through one generic slot, then
 * started a RECV_MESSAGE batch and a separate close batch: three
 * completions per call, each of which could land on a polling thread other
 * than the one that was polling, costing a wake-up (futex) per hop.
 * docs/benchmarks.md ("A cheaper request path") has the measurements.
 *
 * Counting for shutdown: `pending` counts request slots and the server
 * shutdown notification that have not completed yet; `live` counts matched
 * calls not yet freed. Completion queues are shut down only when both are
 * zero after the server stopped accepting, so no batch can start on a queue
 * that was shut down (the C core aborts on that).
 *
 * Streams. A stream never waits for its reader on a thread. Its handler
 * runs on the stream pool (its own threads, never the unary pool, so
 * writes and admin calls cannot queue behind scans), produces one chunk and
 * hands it over with rpc_call_send_then(): the send is started, the thread
 * returns, and the call is parked. When the transport has taken the chunk
 * (the reader made room) the poller that sees the completion queues the
 * handler's continuation on the stream pool, which produces the next chunk
 * from the state the handler kept in its own struct. A parked stream thus
 * holds memory (one chunk, and whatever its state pins) and no thread.
 * rpc_call_send() remains as a blocking form for short streams in tests; it
 * holds a stream-pool thread, never a unary one.
 *
 * Every admitted stream is on the server's stream list (smu) from admission
 * until its final batch completed, which gives three things:
 *   - bounds: a stream is admitted only while the server has fewer than
 *     max_streams and its peer (one connection: "ipv4:host:port") fewer than
 *     max_streams_per_peer; beyond either the call ends RESOURCE_EXHAUSTED
 *     naming the bound, before any handler runs;
 *   - an idle timeout: `op_since_us` is set while a send (or the final
 *     batch) waits for the transport; the reaper thread cancels a stream
 *     whose wait exceeds stream_idle_ms, the send fails, and the
 *     continuation runs with CANCELLED and frees its state;
 *   - counts for rpc_server_stream_stats().
 * A list entry's call is alive (the final-batch reference is held until it
 * leaves the list), so the reaper may cancel it under smu.
 *
 * Invariants for shutdown, on top of the counting above: a parked stream
 * has exactly one operation in flight (its send or its final batch), so
 * grpc_server_cancel_all_calls() completes it; its continuation then runs on
 * the stream pool, which is joined only after `live` reached zero; the
 * reaper is stopped after that too. */
#include <errno.h>
#include <inttypes.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"
#include "common/log.h"
#include "proto/rpc_internal.h"

#define RPC_REQUESTS_PER_METHOD 16 /* per method and completion queue */
#define RPC_REQUESTS_UNKNOWN 4     /* generic slots per queue */
#define RPC_THREADS_PER_CQ 4       /* polling threads sharing one queue */
#define RPC_DEFAULT_MAX_WORKERS 256
#define RPC_DEFAULT_STREAM_WORKERS 64
#define RPC_DEFAULT_MAX_STREAMS 1024
#define RPC_DEFAULT_MAX_STREAMS_PER_PEER 128
#define RPC_DEFAULT_STREAM_IDLE_MS 30000

/* A pool of threads that grows on demand up to `max` and runs calls queued
 * on it. The server has two: unary (offloaded handlers) and stream
 * (streaming handlers and their continuations). */
typedef struct pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rpc_call *head, *tail; /* guarded by mu */
  size_t queued, idle;   /* guarded by mu */
  pthread_t *threads;    /* guarded by mu; `max` slots */
  int n, max;            /* guarded by mu */
  bool stop;             /* guarded by mu */
} pool;

typedef struct poller {
  rpc_server *srv;
  grpc_completion_queue *cq;
  bool owns_cq; /* created it (shut down and destroyed with this poller) */
  pthread_t thread;
  /* Freed call structs kept for this polling thread's next request slots
   * (call_mem_get/put): touched by this thread only, emptied by
   * rpc_server_free after the thread was joined. */
  struct rpc_call *spare;
  int nspare;
} poller;

#define RPC_SPARE_CALLS 64 /* per polling thread */

/* The polling thread this thread is, NULL on any other thread. */
static __thread poller *this_poller;

/* Where a call receives RECV_CLOSE_ON_SERVER (top of this file). */
enum { CLOSE_UNDECIDED, CLOSE_OWN_BATCH, CLOSE_IN_FINAL };

struct rpc_call {
  rpc_server *srv;
  poller *p;
  grpc_call *call;
  grpc_call_details details; /* generic slots only */
  gpr_timespec deadline;
  grpc_metadata_array md;
  const rpc_handler *h; /* NULL for an unknown method */
  int hidx;             /* registered slot: index of h; -1 = generic */
  grpc_byte_buffer *recv_bb;
  void *request; /* decoded; owned by the call */
  int close_cancelled; /* written by the core when the close completes */
  atomic_int close_state;
  atomic_bool cancelled;
  atomic_int refs;
  bool ended; /* the final batch was started; owner thread only */
  bool md_sent; /* initial metadata went out; owner thread only */
  grpc_byte_buffer *send_bb; /* message of the batch in flight */
  grpc_slice status_details;
  rpc_tag t_request, t_close, t_send, t_final;
  uint64_t start_us; /* when matched; set only when the server observes */
  rpc_identity ident; /* who called, once checked */

  /* rpc_call_send waits here for t_send. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool send_done; /* guarded by mu */
  bool send_ok;   /* guarded by mu */

  /* Streams: rpc_call_send_then's continuation (owner thread, then the
   * poller that completes the send). */
  rpc_stream_fn next_fn;
  void *next_state;
  /* On the server's stream list (smu) from admission to on_final. */
  bool listed;               /* set before the handler runs; then fixed */
  rpc_call *snext, *sprev;   /* guarded by srv->smu */
  char *peer;                /* gpr string; freed with the call */
  bool reaped;               /* the reaper cancelled it; guarded by smu */
  atomic_uint_fast64_t op_since_us; /* a send waits since; 0 = none */

  /* Pool queue link and the function to run there (guarded by the pool's
   * mu while queued). */
  rpc_call *wnext;
  rpc_handler_fn wfn;
  void *wctx;
};

struct rpc_server {
  grpc_server *gs;
  char *address;
  int port;
  size_t max_msg;
  rpc_handler *handlers; /* sorted by path at start */
  size_t nhandlers;
  void **registered; /* per handler: grpc_server_register_method's handle */
  poller *pollers;
  int npollers;
  bool started;
  rpc_observe_fn observe; /* NULL = none */
  void *observe_ctx;
  rpc_auth *auth; /* NULL = no checks */
  rpc_table_check_fn table_check; /* NULL = per-table grants refused */
  void *table_check_ctx;
  rpc_tls_state *tls; /* certificate reloading; NULL = plaintext */
  atomic_bool stopping; /* no new request slots once set */
  rpc_tag t_shutdown;

  pthread_mutex_t mu; /* guards nothing but the waits below */
  pthread_cond_t cv;  /* broadcast when pending or live reaches zero */
  atomic_size_t pending; /* unmatched request slots + shutdown notification */
  atomic_size_t live;    /* matched calls not yet freed */

  pool unary;  /* offloaded unary handlers */
  pool stream; /* streaming handlers and continuations */

  /* Open streams (see the top of this file). */
  pthread_mutex_t smu;
  pthread_cond_t scv;        /* wakes the reaper to stop */
  rpc_call *streams;         /* guarded by smu */
  size_t nstreams;           /* guarded by smu */
  size_t max_streams, max_streams_per_peer;
  uint64_t stream_idle_us;
  uint64_t streams_refused, streams_reaped; /* guarded by smu */
  bool reaper_stop;          /* guarded by smu */
  bool reaper_running;
  pthread_t reaper;
};

/* ---- counting ---- */

static void count_done(rpc_server *s, atomic_size_t *ctr) {
  if (atomic_fetch_sub(ctr, 1) == 1 && atomic_load(&s->stopping)) {
    /* Taking the lock orders this wake-up after the waiter's check. */
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
}

static void end_call_err(rpc_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- pools ---- */

static void pool_init(pool *p, int max) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->max = max;
  p->threads = xcalloc((size_t)max, sizeof *p->threads);
}

static void *pool_main(void *arg) {
  pool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->head == NULL && !p->stop) {
      p->idle++;
      pthread_cond_wait(&p->cv, &p->mu);
      p->idle--;
    }
    if (p->head == NULL)
      break;
    rpc_call *c = p->head;
    p->head = c->wnext;
    if (p->head == NULL)
      p->tail = NULL;
    p->queued--;
    pthread_mutex_unlock(&p->mu);
    /* The call may be freed by the time fn returns: read nothing after. */
    c->wfn(c, c->request, c->wctx);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void pool_submit(pool *p, rpc_call *c, rpc_handler_fn fn, void *ctx) {
  c->wfn = fn;
  c->wctx = ctx;
  c->wnext = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->tail != NULL)
    p->tail->wnext = c;
  else
    p->head = c;
  p->tail = c;
  p->queued++;
  if (p->queued > p->idle && p->n < p->max) {
    int rc = pthread_create(&p->threads[p->n], NULL, pool_main, p);
    if (rc == 0) {
      p->n++;
    } else if (p->n == 0) {
      /* Nobody would ever run this call: take it back and fail it, so
       * the client hears and shutdown is not left waiting for it. */
      p->head = p->tail = NULL;
      p->queued = 0;
      pthread_mutex_unlock(&p->mu);
      end_call_err(c, MICA_UNAVAILABLE, "%s: no worker thread: %s",
                   c->h->method->path, strerror(rc));
      return;
    }
  }
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void pool_stop(pool *p) {
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->cv);
  int n = p->n;
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < n; i++)
    pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p->threads);
}

/* ---- calls ---- */

/* Call structs: a polling thread reuses the ones freed on it (where most
 * calls end) for its next request slots, sparing a calloc and a free per
 * call; any other thread allocates and frees. Returned zeroed, as from
 * xcalloc. */
static rpc_call *call_mem_get(rpc_server *s) {
  poller *me = this_poller;
  if (me != NULL && me->srv == s && me->spare != NULL) {
    rpc_call *c = me->spare;
    me->spare = c->wnext;
    me->nspare--;
    memset(c, 0, sizeof *c);
    return c;
  }
  return xcalloc(1, sizeof(rpc_call));
}

static void call_mem_put(rpc_server *s, rpc_call *c) {
  poller *me = this_poller;
  if (me != NULL && me->srv == s && me->nspare < RPC_SPARE_CALLS) {
    c->wnext = me->spare;
    me->spare = c;
    me->nspare++;
    return;
  }
  free(c);
}


static void call_unref(rpc_call *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  rpc_server *s = c->srv;
  if (c->call != NULL)
    grpc_call_unref(c->call);
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->md);
  if (c->recv_bb != NULL)
    grpc_byte_buffer_destroy(c->recv_bb);
  rpc_msg_free(c->request);
  if (c->peer != NULL)
    gpr_free(c->peer);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  call_mem_put(s, c);
  count_done(s, &s->live);
}

static uint64_t now_us(void) { return env_now_micros(env_posix()); }

/* Takes a stream off the server's list (its final batch completed). */
static void stream_unlist(rpc_call *c) {
  rpc_server *s = c->srv;
  pthread_mutex_lock(&s->smu);
  if (c->sprev != NULL)
    c->sprev->snext = c->snext;
  else
    s->streams = c->snext;
  if (c->snext != NULL)
    c->snext->sprev = c->sprev;
  s->nstreams--;
  pthread_mutex_unlock(&s->smu);
}

static void on_final(rpc_tag *t, bool ok) {
  (void)ok; /* a failed final batch means the client is gone; nothing to do */
  rpc_call *c = RPC_CONTAINER(t, rpc_call, t_final);
  if (c->listed)
    stream_unlist(c);
  if (c->send_bb != NULL) {
    grpc_byte_buffer_destroy(c->send_bb);
    c->send_bb = NULL;
  }
  grpc_slice_unref(c->status_details);
  call_unref(c);
}

/* Starts the final batch: initial metadata if not sent yet, the response
 * if any (`bb`, taken), and the status. */
static void end_call(rpc_call *c, grpc_byte_buffer *bb, grpc_status_code code,
                     const char *details, int outcome) {
  if (c->ended) {
    LOG_E("rpc: %s ended twice; second end ignored",
          c->h != NULL ? c->h->method->path : "call");
    if (bb != NULL)
      grpc_byte_buffer_destroy(bb);
    return;
  }
  c->ended = true;
  rpc_server *srv = c->srv;
  if (c->listed) /* the final batch may wait for the reader too */
    atomic_store(&c->op_since_us, now_us());
  if (srv->observe != NULL) {
    uint64_t now = now_us();
    srv->observe(srv->observe_ctx, c->h != NULL ? c->h->method : NULL,
                 outcome, now > c->start_us ? now - c->start_us : 0);
  }
  grpc_op ops[4];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->md_sent) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    c->md_sent = true;
  }
  int undecided = CLOSE_UNDECIDED;
  if (atomic_compare_exchange_strong(&c->close_state, &undecided,
                                     CLOSE_IN_FINAL)) {
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->close_cancelled;
    n++;
  }
  if (bb != NULL) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    n++;
  }
  c->send_bb = bb;
  c->status_details = grpc_slice_from_copied_string(details);
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  ops[n].data.send_status_from_server.status_details = &c->status_details;
  n++;
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->t_final, NULL);
  if (e != GRPC_CALL_OK) {
    LOG_E("rpc: final batch refused (%d)", (int)e);
    on_final(&c->t_final, false);
  }
}

static void end_call_err(rpc_call *c, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  end_call(c, NULL, (grpc_status_code)rpc_code_to_grpc(code), msg, code);
}

void rpc_call_reply(rpc_call *c, const void *response) {
  /* Streams: `response` is the last chunk, sent with the OK status. */
  const rpc_status *st = rpc_response_status(response);
  end_call(c, rpc_pack(c->h->method->response, response), GRPC_STATUS_OK, "",
           st != NULL ? st->code : MICA_OK);
}

void rpc_call_finish(rpc_call *c, const mica_err *e) {
  if (e == NULL && !c->h->method->server_streaming) {
    end_call_err(c, MICA_INTERNAL, "%s: handler ended the call without a "
                 "response", c->h->method->path);
    return;
  }
  end_call(c, NULL, (grpc_status_code)rpc_code_to_grpc(err_code(e)),
           e != NULL ? err_msg(e) : "", err_code(e));
}

static void run_next(rpc_call *c, const void *request, void *ctx);

static void on_send(rpc_tag *t, bool ok) {
  rpc_call *c = RPC_CONTAINER(t, rpc_call, t_send);
  atomic_store(&c->op_since_us, 0);
  if (c->next_fn != NULL) {
    /* Parked: the continuation produces the next chunk on the stream
     * pool. send_ok is read by it alone. */
    c->send_ok = ok;
    pool_submit(&c->srv->stream, c, run_next, NULL);
    return;
  }
  pthread_mutex_lock(&c->mu);
  c->send_done = true;
  c->send_ok = ok;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* Checks that `c` may send, then starts a batch sending `msg` (with the
 * initial metadata the first time) that completes on t_send. */
static mica_err *start_send(rpc_call *c, const void *msg) {
  if (!c->h->method->server_streaming || c->ended)
    return err_new(MICA_INTERNAL, "%s: send on a %s call",
                   c->h->method->path, c->ended ? "finished" : "unary");
  if (atomic_load(&c->cancelled))
    return err_new(MICA_CANCELLED, "%s: call cancelled", c->h->method->path);
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->md_sent) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    c->md_sent = true;
  }
  if (c->send_bb != NULL)
    grpc_byte_buffer_destroy(c->send_bb);
  c->send_bb = rpc_pack(c->h->method->response, msg);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = c->send_bb;
  n++;
  atomic_store(&c->op_since_us, now_us());
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->t_send, NULL);
  if (e != GRPC_CALL_OK) {
    atomic_store(&c->op_since_us, 0);
    return err_new(MICA_INTERNAL, "%s: send refused (%d)", c->h->method->path,
                   (int)e);
  }
  return NULL;
}

/* The byte buffer of the send that completed, released before the next
 * send or the final batch reuses send_bb. */
static void send_done(rpc_call *c) {
  if (c->send_bb != NULL) {
    grpc_byte_buffer_destroy(c->send_bb);
    c->send_bb = NULL;
  }
}

mica_err *rpc_call_send(rpc_call *c, const void *msg) {
  c->next_fn = NULL;
  pthread_mutex_lock(&c->mu);
  c->send_done = false;
  pthread_mutex_unlock(&c->mu);
  mica_err *e = start_send(c, msg);
  if (e != NULL) {
    send_done(c);
    return e;
  }
  pthread_mutex_lock(&c->mu);
  while (!c->send_done)
    pthread_cond_wait(&c->cv, &c->mu);
  bool ok = c->send_ok;
  pthread_mutex_unlock(&c->mu);
  send_done(c);
  if (!ok)
    return err_new(MICA_CANCELLED, "%s: stream cancelled by the peer or its "
                   "deadline", c->h->method->path);
  return NULL;
}

/* Stream pool: the parked send completed; run the continuation. */
static void run_next(rpc_call *c, const void *request, void *ctx) {
  (void)request, (void)ctx;
  rpc_stream_fn fn = c->next_fn;
  void *state = c->next_state;
  c->next_fn = NULL;
  send_done(c);
  if (c->send_ok) {
    fn(c, state, NULL);
    return;
  }
  mica_err *e = err_new(MICA_CANCELLED, "%s: stream cancelled by the peer, "
                        "its deadline, the idle timeout or shutdown",
                        c->h->method->path);
  fn(c, state, e);
  err_free(e);
}

void rpc_call_send_then(rpc_call *c, const void *msg, rpc_stream_fn next,
                        void *state) {
  c->next_fn = next;
  c->next_state = state;
  mica_err *e = start_send(c, msg);
  if (e == NULL)
    return; /* parked: `c` may already be running `next` elsewhere */
  c->next_fn = NULL;
  send_done(c);
  next(c, state, e);
  err_free(e);
}

void rpc_call_abort(rpc_call *c, int code, const char *msg) {
  atomic_store(&c->cancelled, true);
  grpc_call_cancel_with_status(c->call,
                               (grpc_status_code)rpc_code_to_grpc(code), msg,
                               NULL);
}

void rpc_call_offload(rpc_call *c, rpc_handler_fn fn, void *ctx) {
  pool_submit(c->h->method->server_streaming ? &c->srv->stream
                                             : &c->srv->unary,
              c, fn, ctx);
}

bool rpc_call_cancelled(const rpc_call *c) {
  return atomic_load(&((rpc_call *)c)->cancelled);
}

int64_t rpc_call_remaining_ms(const rpc_call *c) {
  gpr_timespec d = c->deadline;
  if (d.tv_sec == INT64_MAX)
    return INT64_MAX;
  d = gpr_convert_clock_type(d, GPR_CLOCK_MONOTONIC);
  gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
  if (gpr_time_cmp(d, now) <= 0)
    return 0;
  gpr_timespec left = gpr_time_sub(d, now);
  return left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

const rpc_method *rpc_call_method(const rpc_call *c) { return c->h->method; }

const char *rpc_call_identity(const rpc_call *c) {
  return c->ident.name[0] != '\0' ? c->ident.name : "anonymous";
}

static void on_close(rpc_tag *t, bool ok) {
  rpc_call *c = RPC_CONTAINER(t, rpc_call, t_close);
  if (!ok || c->close_cancelled)
    atomic_store(&c->cancelled, true);
  call_unref(c);
}

/* Admits stream `c` onto the server's list, or ends it RESOURCE_EXHAUSTED
 * naming the bound it would pass. Peers are few and streams bounded, so
 * counting one peer's streams walks the list. */
static bool stream_admit(rpc_call *c) {
  rpc_server *s = c->srv;
  c->peer = grpc_call_get_peer(c->call);
  const char *peer = c->peer != NULL ? c->peer : "";
  pthread_mutex_lock(&s->smu);
  size_t mine = 0;
  for (rpc_call *o = s->streams; o != NULL; o = o->snext)
    if (strcmp(o->peer != NULL ? o->peer : "", peer) == 0)
      mine++;
  size_t open = s->nstreams;
  bool server_full = open >= s->max_streams;
  bool peer_full = mine >= s->max_streams_per_peer;
  if (server_full || peer_full) {
    s->streams_refused++;
    pthread_mutex_unlock(&s->smu);
    if (peer_full)
      end_call_err(c, MICA_RESOURCE_EXHAUSTED,
                   "%s: %zu streams already open from %s, the per-connection "
                   "bound of %zu; read or cancel open streams first",
                   c->h->method->path, mine, peer, s->max_streams_per_peer);
    else
      end_call_err(c, MICA_RESOURCE_EXHAUSTED,
                   "%s: %zu streams already open on this server, the "
                   "per-server bound of %zu; retry later",
                   c->h->method->path, open, s->max_streams);
    return false;
  }
  c->listed = true;
  c->sprev = NULL;
  c->snext = s->streams;
  if (s->streams != NULL)
    s->streams->sprev = c;
  s->streams = c;
  s->nstreams++;
  pthread_mutex_unlock(&s->smu);
  return true;
}

/* Cancels every stream whose send has waited for its reader longer than
 * the idle timeout; the continuation then frees its state. */
static void *reaper_main(void *arg) {
  rpc_server *s = arg;
  uint64_t period = s->stream_idle_us / 4;
  if (period < 10000)
    period = 10000;
  if (period > 1000000)
    period = 1000000;
  pthread_mutex_lock(&s->smu);
  while (!s->reaper_stop) {
    uint64_t now = now_us();
    for (rpc_call *c = s->streams; c != NULL; c = c->snext) {
      uint64_t since = atomic_load(&c->op_since_us);
      if (c->reaped || since == 0 || now < since ||
          now - since < s->stream_idle_us)
        continue;
      c->reaped = true;
      s->streams_reaped++;
      char msg[160];
      snprintf(msg, sizeof msg,
               "stream idle: the reader took no chunk for %" PRIu64
               " ms (the server's idle-stream timeout)",
               s->stream_idle_us / 1000);
      rpc_call_abort(c, MICA_CANCELLED, msg);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + period * 1000;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&s->scv, &s->smu, &ts);
  }
  pthread_mutex_unlock(&s->smu);
  return NULL;
}

void rpc_server_stream_stats(rpc_server *s, rpc_stream_stats *out) {
  pthread_mutex_lock(&s->smu);
  out->open = s->nstreams;
  out->refused = s->streams_refused;
  out->idle_cancelled = s->streams_reaped;
  pthread_mutex_unlock(&s->smu);
}

mica_err *rpc_call_check_table(rpc_call *c, const char *table) {
  if (c->srv->auth == NULL) return NULL;
  const char *path = c->h->method->path;
  return rpc_auth_check_table(c->srv->auth, &c->ident, path,
                              rpc_path_role(path), table);
}

/* A caller without the method's role on every table: the server's
 * table_check names each table the request touches before any handler
 * runs (rpc_server_opts.table_check); a server without one checks the
 * role on every table. */
static mica_err *table_check(rpc_call *c) {
  if (c->srv->table_check == NULL) return rpc_call_check_table(c, NULL);
  return c->srv->table_check(c, c->request, c->srv->table_check_ctx);
}

bool rpc_call_may_read_table(rpc_call *c, const char *table) {
  return c->srv->auth == NULL ||
         rpc_auth_table_role(c->srv->auth, &c->ident, table) >= RPC_ROLE_READ;
}

/* Receives the close in a batch of its own, unless the call already
 * decided (top of this file). The caller holds a reference. */
static void close_own_batch(rpc_call *c) {
  int undecided = CLOSE_UNDECIDED;
  if (!atomic_compare_exchange_strong(&c->close_state, &undecided,
                                      CLOSE_OWN_BATCH))
    return;
  atomic_fetch_add(&c->refs, 1);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  if (grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL) !=
      GRPC_CALL_OK) {
    LOG_E("rpc: close batch refused");
    atomic_fetch_sub(&c->refs, 1);
  }
}

/* Checks, decodes and hands a matched call with its request message to
 * its handler. The caller holds a reference. */
static void dispatch(rpc_call *c) {
  const rpc_method *m = c->h->method;
  if (c->recv_bb == NULL) {
    end_call_err(c, MICA_INVALID_ARGUMENT, "%s: no request message",
                 m->path);
    return;
  }
  mica_err *e = NULL;
  if (c->srv->auth != NULL)
    e = rpc_md_check(c->srv->auth, m->path, c->call, &c->md, c->recv_bb,
                     &c->ident);
  if (e == NULL)
    c->request = rpc_unpack(m->request, c->recv_bb, m->path, &e);
  if (e == NULL && c->ident.scoped)
    e = table_check(c);
  grpc_byte_buffer_destroy(c->recv_bb);
  c->recv_bb = NULL;
  if (e != NULL) {
    rpc_call_finish(c, e);
    err_free(e);
    return;
  }
  if (m->server_streaming) {
    close_own_batch(c);
    if (!stream_admit(c))
      return;
    if (c->h->flags & RPC_INLINE)
      c->h->fn(c, c->request, c->h->ctx);
    else
      pool_submit(&c->srv->stream, c, c->h->fn, c->h->ctx);
  } else if (c->h->flags & RPC_OFFLOAD) {
    close_own_batch(c);
    pool_submit(&c->srv->unary, c, c->h->fn, c->h->ctx);
  } else {
    c->h->fn(c, c->request, c->h->ctx);
    /* Still open: the handler kept the call to end it later. */
    close_own_batch(c);
  }
}

static int handler_cmp(const void *a, const void *b) {
  return strcmp(((const rpc_handler *)a)->method->path,
                ((const rpc_handler *)b)->method->path);
}

static void post_request(poller *p, int hidx);

static void on_request(rpc_tag *t, bool ok) {
  rpc_call *c = RPC_CONTAINER(t, rpc_call, t_request);
  rpc_server *s = c->srv;
  if (!ok) {
    /* The server is shutting down and gave the slot back; no call. */
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->recv_bb != NULL)
      grpc_byte_buffer_destroy(c->recv_bb);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    call_mem_put(s, c);
    count_done(s, &s->pending);
    return;
  }
  /* Live before the slot stops counting, so a waiter never sees both at
   * zero while this call exists. */
  atomic_fetch_add(&s->live, 1);
  if (s->observe != NULL) c->start_us = env_now_micros(env_posix());
  post_request(c->p, c->hidx);
  count_done(s, &s->pending);
  atomic_store(&c->refs, 2); /* the final batch, and ours until we return */
  if (c->hidx < 0) {
    /* Every handler's method is registered, so a generic slot only
     * matches paths nobody serves. */
    c->deadline = c->details.deadline;
    end_call_err(c, MICA_NOT_SUPPORTED, "unknown method %.*s",
                 (int)GRPC_SLICE_LENGTH(c->details.method),
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
  } else {
    dispatch(c);
  }
  call_unref(c);
}

/* Offers one more call slot on p's queue, counted in `pending` until it is
 * matched or given back: for the method of handler `hidx`, or for any
 * unregistered path when hidx is -1. */
static void post_request(poller *p, int hidx) {
  rpc_server *s = p->srv;
  if (atomic_load(&s->stopping))
    return;
  rpc_call *c = call_mem_get(s);
  c->srv = s;
  c->p = p;
  c->hidx = hidx;
  c->h = hidx >= 0 ? &s->handlers[hidx] : NULL;
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->md);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->t_request.done = on_request;
  c->t_close.done = on_close;
  c->t_send.done = on_send;
  c->t_final.done = on_final;
  c->status_details = grpc_empty_slice();
  atomic_fetch_add(&s->pending, 1);
  grpc_call_error e =
      hidx >= 0
          ? grpc_server_request_registered_call(
                s->gs, s->registered[hidx], &c->call, &c->deadline, &c->md,
                &c->recv_bb, p->cq, p->cq, &c->t_request)
          : grpc_server_request_call(s->gs, &c->call, &c->details, &c->md,
                                     p->cq, p->cq, &c->t_request);
  if (e != GRPC_CALL_OK) {
    LOG_E("rpc: request slot refused (%d)", (int)e);
    on_request(&c->t_request, false);
  }
}

static void *poller_main(void *arg) {
  poller *p = arg;
  this_poller = p;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        p->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_OP_COMPLETE) {
      rpc_tag *t = ev.tag;
      t->done(t, ev.success != 0);
    }
  }
  return NULL;
}

static void on_shutdown(rpc_tag *t, bool ok) {
  (void)ok;
  rpc_server *s = RPC_CONTAINER(t, rpc_server, t_shutdown);
  count_done(s, &s->pending);
}

/* ---- server ---- */

mica_err *rpc_server_new(const rpc_server_opts *opts, rpc_server **out) {
  static const rpc_server_opts defaults;
  if (opts == NULL)
    opts = &defaults;
  *out = NULL;
  const char *listen = opts->listen != NULL ? opts->listen : "127.0.0.1:0";
  const char *colon = strrchr(listen, ':');
  if (colon == NULL || colon == listen)
    return err_new(MICA_INVALID_ARGUMENT,
                   "listen address '%s' is not host:port", listen);
  rpc_lib_ref();
  rpc_server *s = xcalloc(1, sizeof *s);
  s->max_msg =
      opts->max_message_bytes ? opts->max_message_bytes : RPC_MAX_MESSAGE_DEFAULT;
  s->npollers = opts->threads;
  if (s->npollers <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    s->npollers = n > 0 ? (int)n : 1;
  }
  pool_init(&s->unary, opts->max_workers > 0 ? opts->max_workers
                                             : RPC_DEFAULT_MAX_WORKERS);
  pool_init(&s->stream, opts->stream_workers > 0
                            ? opts->stream_workers
                            : RPC_DEFAULT_STREAM_WORKERS);
  s->max_streams = opts->max_streams > 0 ? opts->max_streams
                                         : RPC_DEFAULT_MAX_STREAMS;
  s->max_streams_per_peer = opts->max_streams_per_peer > 0
                                ? opts->max_streams_per_peer
                                : RPC_DEFAULT_MAX_STREAMS_PER_PEER;
  s->stream_idle_us = (uint64_t)(opts->stream_idle_ms > 0
                                     ? opts->stream_idle_ms
                                     : RPC_DEFAULT_STREAM_IDLE_MS) *
                      1000;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  pthread_mutex_init(&s->smu, NULL);
  pthread_cond_init(&s->scv, NULL);
  s->t_shutdown.done = on_shutdown;
  s->observe = opts->observe;
  s->observe_ctx = opts->observe_ctx;
  s->auth = opts->auth;
  s->table_check = opts->table_check;
  s->table_check_ctx = opts->table_check_ctx;

  grpc_arg argv[RPC_ARGS_N];
  grpc_channel_args args = rpc_args(argv, s->max_msg, false);
  s->gs = grpc_server_create(&args, NULL);
  s->pollers = xcalloc((size_t)s->npollers, sizeof *s->pollers);
  for (int i = 0; i < s->npollers; i++) {
    s->pollers[i].srv = s;
    if (i % RPC_THREADS_PER_CQ != 0) {
      s->pollers[i].cq = s->pollers[i - i % RPC_THREADS_PER_CQ].cq;
      continue;
    }
    s->pollers[i].cq = grpc_completion_queue_create_for_next(NULL);
    s->pollers[i].owns_cq = true;
    grpc_server_register_completion_queue(s->gs, s->pollers[i].cq, NULL);
  }
  grpc_server_credentials *creds = NULL;
  mica_err *terr = NULL;
  if (opts->tls != NULL)
    terr = rpc_tls_server_creds(opts->tls, &creds, &s->tls);
  else
    creds = grpc_insecure_server_credentials_create();
  if (terr != NULL) {
    rpc_server_free(s);
    return terr;
  }
  s->port = grpc_server_add_http2_port(s->gs, listen, creds);
  grpc_server_credentials_release(creds);
  if (s->port <= 0) {
    rpc_server_free(s);
    return err_new(MICA_UNAVAILABLE, "cannot listen on %s", listen);
  }
  size_t hostlen = (size_t)(colon - listen);
  size_t alen = hostlen + 16;
  s->address = xmalloc(alen);
  snprintf(s->address, alen, "%.*s:%d", (int)hostlen, listen, s->port);
  *out = s;
  return NULL;
}

mica_err *rpc_server_register(rpc_server *s, const rpc_handler *handlers,
                              size_t n) {
  if (s->started)
    return err_new(MICA_INVALID_ARGUMENT,
                   "rpc_server_register after rpc_server_start");
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < s->nhandlers; j++)
      if (strcmp(s->handlers[j].method->path, handlers[i].method->path) == 0)
        return err_new(MICA_ALREADY_EXISTS, "method %s registered twice",
                       handlers[i].method->path);
    s->handlers =
        xrealloc(s->handlers, (s->nhandlers + 1) * sizeof *s->handlers);
    s->handlers[s->nhandlers++] = handlers[i];
  }
  return NULL;
}

mica_err *rpc_server_start(rpc_server *s) {
  if (s->started)
    return err_new(MICA_INVALID_ARGUMENT, "rpc server started twice");
  if (s->nhandlers > 0)
    qsort(s->handlers, s->nhandlers, sizeof *s->handlers, handler_cmp);
  s->registered = xcalloc(s->nhandlers ? s->nhandlers : 1,
                          sizeof *s->registered);
  for (size_t i = 0; i < s->nhandlers; i++) {
    s->registered[i] = grpc_server_register_method(
        s->gs, s->handlers[i].method->path, NULL,
        GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (s->registered[i] == NULL)
      return err_new(MICA_INTERNAL, "gRPC refused to register method %s",
                     s->handlers[i].method->path);
  }
  grpc_server_start(s->gs);
  s->started = true;
  for (int i = 0; i < s->npollers; i++) {
    for (size_t h = 0; h < s->nhandlers; h++)
      for (int j = 0; j < RPC_REQUESTS_PER_METHOD; j++)
        post_request(&s->pollers[i], (int)h);
    for (int j = 0; j < RPC_REQUESTS_UNKNOWN; j++)
      post_request(&s->pollers[i], -1);
  }
  int rc = pthread_create(&s->reaper, NULL, reaper_main, s);
  if (rc != 0) {
    /* Without it idle streams would never be cancelled. */
    LOG_E("rpc: cannot start the stream reaper: %s", strerror(rc));
    abort();
  }
  s->reaper_running = true;
  for (int i = 0; i < s->npollers; i++) {
    rc = pthread_create(&s->pollers[i].thread, NULL, poller_main,
                        &s->pollers[i]);
    if (rc != 0) {
      /* Pollers already running keep serving every queue's share that has
       * a thread; without one a queue would hold its calls forever, so
       * this is fatal for the process. */
      LOG_E("rpc: cannot start polling thread: %s", strerror(rc));
      abort();
    }
  }
  return NULL;
}

int rpc_server_port(const rpc_server *s) { return s->port; }

const char *rpc_server_address(const rpc_server *s) { return s->address; }

size_t rpc_server_live_calls(rpc_server *s) { return atomic_load(&s->live); }

/* Waits on s->cv until pending and live are both zero. */
static void wait_drained(rpc_server *s) {
  pthread_mutex_lock(&s->mu);
  while (atomic_load(&s->pending) != 0 || atomic_load(&s->live) != 0)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

void rpc_server_free(rpc_server *s) {
  if (s == NULL)
    return;
  atomic_store(&s->stopping, true);
  atomic_fetch_add(&s->pending, 1); /* the shutdown notification */
  grpc_server_shutdown_and_notify(s->gs, s->pollers[0].cq, &s->t_shutdown);
  grpc_server_cancel_all_calls(s->gs);
  if (s->started) {
    wait_drained(s);
  } else {
    /* No polling threads: take the notification here. */
    while (atomic_load(&s->pending) != 0) {
      grpc_event ev = grpc_completion_queue_next(
          s->pollers[0].cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
      if (ev.type == GRPC_OP_COMPLETE)
        ((rpc_tag *)ev.tag)->done(ev.tag, ev.success != 0);
    }
  }
  for (int i = 0; i < s->npollers; i++)
    if (s->pollers[i].owns_cq)
      grpc_completion_queue_shutdown(s->pollers[i].cq);
  for (int i = 0; i < s->npollers; i++) {
    if (s->started) {
      pthread_join(s->pollers[i].thread, NULL);
    } else if (s->pollers[i].owns_cq) {
      while (grpc_completion_queue_next(s->pollers[i].cq,
                                        gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                        NULL)
                 .type != GRPC_QUEUE_SHUTDOWN) {
      }
    }
  }
  /* Every call ended (live is zero), so no continuation is left to run. */
  pool_stop(&s->unary);
  pool_stop(&s->stream);
  if (s->reaper_running) {
    pthread_mutex_lock(&s->smu);
    s->reaper_stop = true;
    pthread_cond_broadcast(&s->scv);
    pthread_mutex_unlock(&s->smu);
    pthread_join(s->reaper, NULL);
  }
  grpc_server_destroy(s->gs);
  rpc_tls_state_free(s->tls);
  for (int i = 0; i < s->npollers; i++) {
    if (s->pollers[i].owns_cq)
      grpc_completion_queue_destroy(s->pollers[i].cq);
    while (s->pollers[i].spare != NULL) {
      rpc_call *c = s->pollers[i].spare;
      s->pollers[i].spare = c->wnext;
      free(c);
    }
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->smu);
  pthread_cond_destroy(&s->scv);
  free(s->pollers);
  free(s->handlers);
  free(s->registered);
  free(s->address);
  free(s);
  rpc_lib_unref();
}
