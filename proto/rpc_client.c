/* rpc_client: the client half of the RPC module (contract in rpc.h).
 *
 * A blocking unary call gets its own pluck completion queue and sends one
 * batch with all six operations (send metadata, message and half-close;
 * receive metadata, message and status), the way gRPC's own synchronous
 * clients do; many threads can do this at once on one channel. rpc_async
 * shares one "next" queue among its calls, so one thread can keep dozens in
 * flight. A stream reads one message per batch, and asks for the final
 * status only after the last message, or after cancelling. */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "proto/rpc_internal.h"

/* The credentials of `ch` for one call of `path` carrying `bb`. */
static void call_md(rpc_channel *ch, const char *path, grpc_byte_buffer *bb,
                    rpc_md_out *out);

struct rpc_channel {
  grpc_channel *ch;
  char *address;
  bool has_member;
  rpc_secret member; /* valid when has_member */
  char *token;       /* NULL = none */
};

mica_err *rpc_channel_new(const char *address, const rpc_channel_opts *opts,
                          rpc_channel **out) {
  *out = NULL;
  if (address == NULL || strchr(address, ':') == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "address '%s' is not host:port",
                   address != NULL ? address : "(null)");
  size_t max = opts != NULL && opts->max_message_bytes
                   ? opts->max_message_bytes
                   : RPC_MAX_MESSAGE_DEFAULT;
  rpc_lib_ref();
  grpc_channel_credentials *creds = NULL;
  if (opts != NULL && opts->tls != NULL) {
    mica_err *e = rpc_tls_channel_creds(opts->tls, &creds);
    if (e != NULL) {
      rpc_lib_unref();
      return e;
    }
  } else {
    creds = grpc_insecure_credentials_create();
  }
  rpc_channel *c = xcalloc(1, sizeof *c);
  c->address = xstrdup(address);
  if (opts != NULL && opts->member != NULL) {
    c->has_member = true;
    c->member = *opts->member;
  }
  if (opts != NULL && opts->token != NULL) c->token = xstrdup(opts->token);
  grpc_arg argv[RPC_ARGS_N + 2];
  grpc_channel_args args = rpc_args(argv, max, true);
  if (opts != NULL && opts->stream_window_bytes > 0) {
    grpc_arg *a = &argv[args.num_args];
    a[0].type = a[1].type = GRPC_ARG_INTEGER;
    a[0].key = (char *)GRPC_ARG_HTTP2_BDP_PROBE;
    a[0].value.integer = 0;
    a[1].key = (char *)GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
    a[1].value.integer = opts->stream_window_bytes;
    args.num_args += 2;
  }
  c->ch = grpc_channel_create(address, creds, &args);
  grpc_channel_credentials_release(creds);
  *out = c;
  return NULL;
}

void rpc_channel_free(rpc_channel *c) {
  if (c == NULL)
    return;
  grpc_channel_destroy(c->ch);
  free(c->address);
  if (c->token != NULL) {
    OPENSSL_cleanse(c->token, strlen(c->token));
    free(c->token);
  }
  OPENSSL_cleanse(&c->member, sizeof c->member);
  free(c);
  rpc_lib_unref();
}

const char *rpc_channel_address(const rpc_channel *c) { return c->address; }

static void call_md(rpc_channel *ch, const char *path, grpc_byte_buffer *bb,
                    rpc_md_out *out) {
  rpc_md_build(ch->has_member ? &ch->member : NULL, ch->token, path, bb, out);
}

/* What one unary call needs from start to status, shared by the blocking
 * and async forms. */
typedef struct ucall {
  rpc_tag tag; /* async only */
  grpc_call *call;
  grpc_byte_buffer *req_bb;
  grpc_byte_buffer *resp_bb;
  grpc_metadata_array init_md, trail_md;
  rpc_md_out send_md;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;
  const char *path;
  const rpc_method *m; /* NULL for raw calls */
  rpc_channel *ch;
  void *user;
  struct ucall *prev, *next; /* async in-flight list */
} ucall;

static grpc_call *create_call(rpc_channel *ch, grpc_completion_queue *cq,
                              const char *path, int64_t timeout_ms) {
  grpc_slice method = grpc_slice_from_static_string(path);
  return grpc_channel_create_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                  method, NULL, rpc_deadline(timeout_ms),
                                  NULL);
}

/* Starts the one batch of a unary call on `cq`. */
static mica_err *ucall_start(ucall *u, grpc_completion_queue *cq,
                             int64_t timeout_ms, void *tag) {
  grpc_metadata_array_init(&u->init_md);
  grpc_metadata_array_init(&u->trail_md);
  u->details = grpc_empty_slice();
  u->call = create_call(u->ch, cq, u->path, timeout_ms);
  call_md(u->ch, u->path, u->req_bb, &u->send_md);
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = u->send_md.n;
  ops[0].data.send_initial_metadata.metadata = u->send_md.md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = u->req_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &u->resp_bb;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &u->trail_md;
  ops[5].data.recv_status_on_client.status = &u->status;
  ops[5].data.recv_status_on_client.status_details = &u->details;
  ops[5].data.recv_status_on_client.error_string = &u->error_string;
  grpc_call_error e = grpc_call_start_batch(u->call, ops, 6, tag, NULL);
  if (e != GRPC_CALL_OK)
    return err_new(MICA_INTERNAL, "rpc %s to %s: batch refused (%d)", u->path,
                   u->ch->address, (int)e);
  return NULL;
}

/* The transport outcome of a finished unary call. */
static mica_err *ucall_status(const ucall *u) {
  if (u->status == GRPC_STATUS_OK && u->resp_bb != NULL)
    return NULL;
  if (u->status == GRPC_STATUS_OK)
    return err_new(MICA_INTERNAL, "rpc %s to %s: no response message",
                   u->path, u->ch->address);
  return err_new(rpc_code_from_grpc(u->status), "rpc %s to %s: %.*s", u->path,
                 u->ch->address, (int)GRPC_SLICE_LENGTH(u->details),
                 (const char *)GRPC_SLICE_START_PTR(u->details));
}

/* Frees everything of a started call but the struct. */
static void ucall_clear(ucall *u) {
  if (u->call != NULL)
    grpc_call_unref(u->call);
  if (u->req_bb != NULL)
    grpc_byte_buffer_destroy(u->req_bb);
  if (u->resp_bb != NULL)
    grpc_byte_buffer_destroy(u->resp_bb);
  grpc_metadata_array_destroy(&u->init_md);
  grpc_metadata_array_destroy(&u->trail_md);
  rpc_md_release(&u->send_md);
  grpc_slice_unref(u->details);
  gpr_free((void *)u->error_string);
}

/* Runs one unary call to completion on a private queue. On success the
 * response buffer stays in u->resp_bb for the caller to decode. */
static mica_err *ucall_blocking(ucall *u, int64_t timeout_ms) {
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  mica_err *e = ucall_start(u, cq, timeout_ms, u);
  if (e == NULL) {
    grpc_event ev = grpc_completion_queue_pluck(
        cq, u, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      e = err_new(MICA_INTERNAL, "rpc %s: completion queue failed", u->path);
    else
      e = ucall_status(u);
  }
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
  return e;
}

mica_err *rpc_unary(rpc_channel *ch, const rpc_method *m, const void *request,
                    int64_t timeout_ms, void **response) {
  *response = NULL;
  if (m->server_streaming)
    return err_new(MICA_INVALID_ARGUMENT,
                   "rpc %s: wrong call form (streaming method)", m->path);
  ucall u;
  memset(&u, 0, sizeof u);
  u.ch = ch;
  u.m = m;
  u.path = m->path;
  u.req_bb = rpc_pack(m->request, request);
  mica_err *e = ucall_blocking(&u, timeout_ms);
  if (e == NULL) {
    *response = rpc_unpack(m->response, u.resp_bb, m->path, &e);
    if (e != NULL)
      e = err_wrap(e, "response from %s", ch->address);
  }
  ucall_clear(&u);
  return e;
}

mica_err *rpc_unary_raw(rpc_channel *ch, const char *path, slice request,
                        int64_t timeout_ms, buf *response) {
  ucall u;
  memset(&u, 0, sizeof u);
  u.ch = ch;
  u.path = path;
  u.req_bb = rpc_pack_bytes(request);
  mica_err *e = ucall_blocking(&u, timeout_ms);
  if (e == NULL && !rpc_bytes_of(u.resp_bb, response))
    e = err_new(MICA_INTERNAL, "rpc %s to %s: unreadable response", path,
                ch->address);
  ucall_clear(&u);
  return e;
}

/* ---- async ---- */

struct rpc_async {
  grpc_completion_queue *cq;
  ucall *head; /* in flight */
  size_t in_flight;
};

static void async_unlink(rpc_async *a, ucall *u) {
  if (u->prev != NULL)
    u->prev->next = u->next;
  else
    a->head = u->next;
  if (u->next != NULL)
    u->next->prev = u->prev;
  a->in_flight--;
}

mica_err *rpc_async_new(rpc_async **out) {
  rpc_lib_ref();
  rpc_async *a = xcalloc(1, sizeof *a);
  a->cq = grpc_completion_queue_create_for_next(NULL);
  *out = a;
  return NULL;
}

void rpc_async_free(rpc_async *a) {
  if (a == NULL)
    return;
  for (ucall *u = a->head; u != NULL; u = u->next)
    grpc_call_cancel(u->call, NULL);
  while (a->in_flight > 0) {
    grpc_event ev = grpc_completion_queue_next(
        a->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      break;
    ucall *u = ev.tag;
    async_unlink(a, u);
    ucall_clear(u);
    free(u);
  }
  grpc_completion_queue_shutdown(a->cq);
  while (grpc_completion_queue_next(a->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                    NULL)
             .type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(a->cq);
  free(a);
  rpc_lib_unref();
}

mica_err *rpc_async_start(rpc_async *a, rpc_channel *ch, const rpc_method *m,
                          const void *request, int64_t timeout_ms, void *tag) {
  if (m->server_streaming)
    return err_new(MICA_INVALID_ARGUMENT,
                   "rpc %s: wrong call form (streaming method)", m->path);
  ucall *u = xcalloc(1, sizeof *u);
  u->ch = ch;
  u->m = m;
  u->path = m->path;
  u->user = tag;
  u->req_bb = rpc_pack(m->request, request);
  mica_err *e = ucall_start(u, a->cq, timeout_ms, u);
  if (e != NULL) {
    ucall_clear(u);
    free(u);
    return e;
  }
  u->next = a->head;
  if (a->head != NULL)
    a->head->prev = u;
  a->head = u;
  a->in_flight++;
  return NULL;
}

bool rpc_async_next(rpc_async *a, int64_t timeout_ms, void **tag,
                    void **response, mica_err **err) {
  *tag = NULL;
  *response = NULL;
  *err = NULL;
  if (a->in_flight == 0)
    return false;
  gpr_timespec deadline = timeout_ms < 0
                              ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
                              : rpc_deadline(timeout_ms > 0 ? timeout_ms : 1);
  grpc_event ev = grpc_completion_queue_next(a->cq, deadline, NULL);
  if (ev.type != GRPC_OP_COMPLETE)
    return false;
  ucall *u = ev.tag;
  async_unlink(a, u);
  *tag = u->user;
  mica_err *e = ucall_status(u);
  if (e == NULL) {
    *response = rpc_unpack(u->m->response, u->resp_bb, u->path, &e);
    if (e != NULL)
      e = err_wrap(e, "response from %s", u->ch->address);
  }
  *err = e;
  ucall_clear(u);
  free(u);
  return true;
}

size_t rpc_async_in_flight(const rpc_async *a) { return a->in_flight; }

/* ---- streams ---- */

struct rpc_stream {
  rpc_channel *ch;
  const rpc_method *m;
  grpc_completion_queue *cq;
  grpc_call *call;
  grpc_metadata_array init_md, trail_md;
  rpc_md_out send_md;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;
  bool init_md_asked; /* RECV_INITIAL_METADATA went with the first read */
  bool ended;         /* the final status is known */
  int final_code;     /* Mica code of the final status */
  char *final_msg;    /* its message when not OK */
};

/* Runs one batch on the stream's private queue and waits for it. */
static bool stream_batch(rpc_stream *st, const grpc_op *ops, size_t n) {
  if (grpc_call_start_batch(st->call, ops, n, st, NULL) != GRPC_CALL_OK)
    return false;
  grpc_event ev = grpc_completion_queue_pluck(
      st->cq, st, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Receives the final status (after the last message, or after a cancel). */
static void stream_finish(rpc_stream *st) {
  if (st->ended)
    return;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op.data.recv_status_on_client.trailing_metadata = &st->trail_md;
  op.data.recv_status_on_client.status = &st->status;
  op.data.recv_status_on_client.status_details = &st->details;
  op.data.recv_status_on_client.error_string = &st->error_string;
  st->ended = true;
  if (!stream_batch(st, &op, 1)) {
    st->final_code = MICA_INTERNAL;
    st->final_msg = xstrdup("final status not received");
    return;
  }
  st->final_code = rpc_code_from_grpc(st->status);
  if (st->final_code != MICA_OK) {
    size_t n = GRPC_SLICE_LENGTH(st->details);
    st->final_msg = xmalloc(n + 1);
    memcpy(st->final_msg, GRPC_SLICE_START_PTR(st->details), n);
    st->final_msg[n] = '\0';
  }
}

static mica_err *stream_outcome(const rpc_stream *st) {
  if (st->final_code == MICA_OK)
    return NULL;
  return err_new(st->final_code, "rpc %s to %s: %s", st->m->path,
                 st->ch->address, st->final_msg);
}

mica_err *rpc_stream_open(rpc_channel *ch, const rpc_method *m,
                          const void *request, int64_t timeout_ms,
                          rpc_stream **out) {
  *out = NULL;
  if (!m->server_streaming)
    return err_new(MICA_INVALID_ARGUMENT,
                   "rpc %s: wrong call form (unary method)", m->path);
  rpc_lib_ref();
  rpc_stream *st = xcalloc(1, sizeof *st);
  st->ch = ch;
  st->m = m;
  grpc_metadata_array_init(&st->init_md);
  grpc_metadata_array_init(&st->trail_md);
  st->details = grpc_empty_slice();
  st->cq = grpc_completion_queue_create_for_pluck(NULL);
  st->call = create_call(ch, st->cq, m->path, timeout_ms);
  grpc_byte_buffer *bb = rpc_pack(m->request, request);
  call_md(ch, m->path, bb, &st->send_md);
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = st->send_md.n;
  ops[0].data.send_initial_metadata.metadata = st->send_md.md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  bool ok = stream_batch(st, ops, 3);
  grpc_byte_buffer_destroy(bb);
  if (!ok) {
    /* The call failed before the request left (no connection, deadline):
     * the status says why. */
    stream_finish(st);
    mica_err *e = stream_outcome(st);
    if (e == NULL)
      e = err_new(MICA_INTERNAL, "rpc %s to %s: request not sent", m->path,
                  ch->address);
    rpc_stream_free(st);
    return e;
  }
  *out = st;
  return NULL;
}

mica_err *rpc_stream_next(rpc_stream *st, void **msg) {
  *msg = NULL;
  if (st->ended)
    return stream_outcome(st);
  grpc_byte_buffer *bb = NULL;
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!st->init_md_asked) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
    n++;
    st->init_md_asked = true;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &bb;
  n++;
  bool ok = stream_batch(st, ops, n);
  if (!ok || bb == NULL) {
    if (bb != NULL)
      grpc_byte_buffer_destroy(bb);
    stream_finish(st);
    return stream_outcome(st);
  }
  mica_err *e = NULL;
  *msg = rpc_unpack(st->m->response, bb, st->m->path, &e);
  grpc_byte_buffer_destroy(bb);
  if (e != NULL) {
    /* A chunk that does not decode poisons the stream: stop it. */
    grpc_call_cancel(st->call, NULL);
    stream_finish(st);
    st->final_code = err_code(e);
    free(st->final_msg);
    st->final_msg = xstrdup(err_msg(e));
    err_free(e);
    return stream_outcome(st);
  }
  return NULL;
}

void rpc_stream_cancel(rpc_stream *st) { grpc_call_cancel(st->call, NULL); }

void rpc_stream_free(rpc_stream *st) {
  if (st == NULL)
    return;
  if (!st->ended) {
    grpc_call_cancel(st->call, NULL);
    stream_finish(st);
  }
  grpc_call_unref(st->call);
  grpc_completion_queue_shutdown(st->cq);
  grpc_completion_queue_destroy(st->cq);
  grpc_metadata_array_destroy(&st->init_md);
  grpc_metadata_array_destroy(&st->trail_md);
  rpc_md_release(&st->send_md);
  grpc_slice_unref(st->details);
  gpr_free((void *)st->error_string);
  free(st->final_msg);
  free(st);
  rpc_lib_unref();
}
