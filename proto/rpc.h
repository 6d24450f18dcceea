/* rpc: Mica's RPC module, a small server and client over the gRPC C core.
 *
 * Messages are the plain C structs of proto/wire.h, one per message of
 * proto/mica.proto. Handlers and callers see those structs, Mica statuses
 * (mica_err) and the opaque handles below; gRPC and protobuf-c stay inside
 * proto/ (STYLE.md rule 9), where each message is converted once on its way
 * in (decoded and checked) and once on its way out (encoded). There is no
 * gRPC code generator for protobuf-c, so a method is described once by a
 * table entry (rpc_method: full path and the request/response messages) and
 * this module does the framing, conversion, dispatch and status mapping for
 * every method the same way.
 *
 * Server. rpc_server_new() binds the listen address (port 0 lets the kernel
 * pick; rpc_server_port() tells which), rpc_server_register() adds handlers,
 * rpc_server_start() starts N polling threads, which share completion
 * queues (up to four threads per queue). A request is dispatched by method
 * path, registered with gRPC so that it arrives with its call; a request
 * that does not decode is answered INVALID_ARGUMENT and an unknown path
 * UNIMPLEMENTED without reaching a handler. A handler receives an rpc_call and the decoded
 * request and must end the call exactly once, from any thread, at any later
 * time: rpc_call_reply() (unary) or rpc_call_finish() (stream end, or any
 * error). A unary handler runs on a polling thread unless registered with
 * RPC_OFFLOAD, so it must not block; it may keep the call and reply later
 * from another thread (group commit), or hand the rest of its work to a
 * worker thread with rpc_call_offload(). Offloaded unary handlers and
 * streams run on two separate pools, so no number of streams can delay a
 * write or an admin call. A streaming handler registered RPC_INLINE starts
 * on the polling thread, to answer a short stream there.
 *
 * Streams. A streaming handler runs on the stream pool, keeps its progress
 * in a struct of its own, produces one chunk and hands it over with
 * rpc_call_send_then(chunk, next, state), then returns: the call is parked,
 * holding memory but no thread, until the transport took the chunk (the
 * reader made room); then next(call, state, NULL) runs on the stream pool to
 * produce the following chunk. The last chunk goes with rpc_call_reply(),
 * an error end with rpc_call_finish(). A reader that takes nothing costs the
 * server no thread; it is bounded three ways: at most max_streams open
 * streams per server and max_streams_per_peer per connection (beyond them a
 * stream ends RESOURCE_EXHAUSTED naming the bound before its handler runs),
 * and a stream whose chunk has waited stream_idle_ms for its reader is
 * cancelled, so its continuation runs with CANCELLED and frees its state.
 *
 * Shutdown (rpc_server_free): stop accepting, cancel every live call, wait
 * until each handler has ended its call and every outstanding operation has
 * completed, and only then shut down and drain the completion queues; no
 * operation is ever started on a queue that was shut down. Handlers must
 * therefore always end their calls; rpc_call_cancelled() tells them to hurry.
 *
 * Client. An rpc_channel is one connection (re-established on failure) to one
 * address, shared by any number of threads. rpc_unary() is a blocking call
 * with a deadline; rpc_async keeps many calls in flight from one thread;
 * rpc_stream reads a server stream chunk by chunk and can cancel it.
 *
 * Status. Transport outcomes map between gRPC and Mica codes through one
 * table (rpc_code_from_grpc / rpc_code_to_grpc). Application outcomes travel
 * inside each response's Status message (rpc_status_set / rpc_status_err),
 * where the code crosses unchanged.
 *
 * Limits. Send and receive limits are set explicitly on both sides
 * (RPC_MAX_MESSAGE_DEFAULT, 64 MiB: batches are up to 32 MiB and values
 * 8 MiB; proto/limits.h has the protocol's limits).
 * A larger message fails with RESOURCE_EXHAUSTED on the side that sees it.
 *
 * Thread-safety: rpc_server_register/start happen on one thread before
 * serving; everything else on a server is thread-safe. An rpc_call is used by
 * one thread at a time (the one holding it). rpc_channel and rpc_unary are
 * thread-safe. An rpc_async and an rpc_stream are each used by one thread at
 * a time (rpc_stream_cancel excepted). */
#ifndef MICA_PROTO_RPC_H
#define MICA_PROTO_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"
#include "proto/limits.h"
#include "proto/wire.h"

/* Default send and receive limit per message, both sides. */
#define RPC_MAX_MESSAGE_DEFAULT MICA_MAX_MESSAGE

/* ---- methods ---- */

/* One RPC method: what both the server dispatch and the client need. */
typedef struct rpc_method {
  const char *path; /* "/mica.v1.TabletServer/Get" */
  const rpc_msgdef *request;  /* rpc_def_get_request: rpc_get_request */
  const rpc_msgdef *response; /* rpc_def_get_response: rpc_get_response */
  bool server_streaming; /* response is a stream of `response` messages */
} rpc_method;

/* Every method of mica.proto:
 * X(name, service, method, request type, response type, streaming), where
 * the types are the snake_case message names of proto/wire.h (rpc_<type>).
 * tests/proto checks this list against mica.proto's services. */
#define RPC_METHOD_LIST(X)                                                    \
  X(ts_get, "TabletServer", "Get", get_request, get_response, false)          \
  X(ts_multi_get, "TabletServer", "MultiGet", multi_get_request,              \
    multi_get_response, false)                                                \
  X(ts_put, "TabletServer", "Put", put_request, put_response, false)          \
  X(ts_delete, "TabletServer", "Delete", delete_request, delete_response,     \
    false)                                                                    \
  X(ts_batch, "TabletServer", "Batch", batch_request, batch_response, false)  \
  X(ts_scan, "TabletServer", "Scan", scan_request, scan_chunk, true)          \
  X(ts_open_tablet, "TabletServer", "OpenTablet", open_tablet_request,        \
    open_tablet_response, false)                                              \
  X(ts_close_tablet, "TabletServer", "CloseTablet", close_tablet_request,     \
    close_tablet_response, false)                                             \
  X(ts_split_tablet, "TabletServer", "SplitTablet", ts_split_tablet_request,  \
    ts_split_tablet_response, false)                                          \
  X(ts_tablet_info, "TabletServer", "TabletInfo", tablet_info_request,        \
    tablet_info_response, false)                                              \
  X(master_create_table, "Master", "CreateTable", create_table_request,       \
    create_table_response, false)                                             \
  X(master_drop_table, "Master", "DropTable", drop_table_request,             \
    drop_table_response, false)                                               \
  X(master_list_tables, "Master", "ListTables", list_tables_request,          \
    list_tables_response, false)                                              \
  X(master_lookup_tablets, "Master", "LookupTablets", lookup_tablets_request, \
    lookup_tablets_response, false)                                           \
  X(master_list_tablets, "Master", "ListTablets", list_tablets_request,       \
    list_tablets_response, false)                                             \
  X(master_list_servers, "Master", "ListServers", list_servers_request,       \
    list_servers_response, false)                                             \
  X(master_split_tablet, "Master", "SplitTablet", split_tablet_request,       \
    split_tablet_response, false)                                             \
  X(master_move_tablet, "Master", "MoveTablet", move_tablet_request,          \
    move_tablet_response, false)                                              \
  X(master_merge_tablets, "Master", "MergeTablets", merge_tablets_request,    \
    merge_tablets_response, false)                                            \
  X(master_balance, "Master", "Balance", balance_request, balance_response,   \
    false)                                                                    \
  X(master_configure, "Master", "Configure", configure_request,               \
    configure_response, false)                                                \
  X(master_list_events, "Master", "ListEvents", list_events_request,          \
    list_events_response, false)                                              \
  X(master_register_server, "Master", "RegisterServer",                       \
    register_server_request, register_server_response, false)                 \
  X(master_heartbeat, "Master", "Heartbeat", heartbeat_request,               \
    heartbeat_response, false)                                                \
  X(master_report_split, "Master", "ReportSplit", report_split_request,       \
    report_split_response, false)                                             \
  X(master_get_info, "Master", "GetInfo", get_info_request,                   \
    get_info_response, false)                                                 \
  X(master_alter_table, "Master", "AlterTable", alter_table_request,         \
    alter_table_response, false)                                              \
  X(master_drain_server, "Master", "DrainServer", drain_server_request,       \
    drain_server_response, false)                                             \
  X(ts_snapshot_tablet, "TabletServer", "SnapshotTablet",                     \
    snapshot_tablet_request, snapshot_tablet_response, false)                 \
  X(master_create_snapshot, "Master", "CreateSnapshot",                       \
    create_snapshot_request, create_snapshot_response, false)                 \
  X(master_list_snapshots, "Master", "ListSnapshots", list_snapshots_request, \
    list_snapshots_response, false)                                           \
  X(master_drop_snapshot, "Master", "DropSnapshot", drop_snapshot_request,    \
    drop_snapshot_response, false)                                            \
  X(master_clone_snapshot, "Master", "CloneSnapshot", clone_snapshot_request, \
    clone_snapshot_response, false)                                           \
  X(master_export_snapshot, "Master", "ExportSnapshot",                       \
    export_snapshot_request, export_snapshot_response, false)                 \
  X(master_restore_snapshot, "Master", "RestoreSnapshot",                     \
    restore_snapshot_request, restore_snapshot_response, false)               \
  X(echo_echo, "Echo", "Echo", echo_request, echo_response, false)            \
  X(echo_stream, "Echo", "EchoStream", echo_request, echo_response, true)

/* rpc_m_ts_get, rpc_m_master_heartbeat, ...: one constant per method. */
#define RPC_METHOD_DECL_(name, svc, meth, req, resp, stream) \
  extern const rpc_method rpc_m_##name;
RPC_METHOD_LIST(RPC_METHOD_DECL_)
#undef RPC_METHOD_DECL_

/* All of the above, in list order; `*n` gets the count. Static. */
const rpc_method *const *rpc_methods_all(size_t *n);

/* Frees a message this module handed out (a decoded response or stream
 * chunk) with everything it points to. NULL is ignored. */
void rpc_msg_free(void *msg);

/* The bytes of `msg`, a message of `d` (rpc_def_batch_request for an
 * rpc_batch_request, ...), as they cross the wire, appended to `out`: for
 * tests and tools that send bytes through rpc_unary_raw. */
void rpc_msg_encode(const rpc_msgdef *d, const void *msg, buf *out);

/* Decodes `bytes` as a message of `d` into *out (caller frees with
 * rpc_msg_free()). INVALID_ARGUMENT, naming the message and the size, when
 * they do not decode; *out is then NULL. */
mica_err *rpc_msg_decode(const rpc_msgdef *d, slice bytes, void **out);

/* sizeof the plain struct of messages of `d`, and the message's name in
 * mica.proto ("mica.v1.GetRequest"). */
size_t rpc_msg_size(const rpc_msgdef *d);
const char *rpc_msg_name(const rpc_msgdef *d);

/* NULL when the plain structs of wire.h agree with mica.proto field by
 * field (number, name, type) and the method table agrees with its services
 * (every method present, request and response types, Status as field 1 of
 * every response), else an INTERNAL error naming the first difference. For
 * tests. Caller frees. */
mica_err *rpc_wire_check(void);

/* ---- status ---- */

/* The Mica code for a gRPC status code, and back. The mapping is one table
 * in rpc_status.c; docs/protocol.md lists it. Unknown numbers map to
 * INTERNAL (Mica) / UNKNOWN (gRPC). */
int rpc_code_from_grpc(int grpc_code);
int rpc_code_to_grpc(int code);

/* Fills `st` (initialised or not) from `e`: code and message; NULL = OK.
 * The message points into `e`, so `st` is valid until `e` is freed; routing
 * is left NULL. */
void rpc_status_set(rpc_status *st, const mica_err *e);

/* The error a response Status carries; NULL for OK or for an absent status
 * (proto3 leaves an all-default sub-message out). A code this build does not
 * know becomes INTERNAL. Caller frees with err_free(). */
mica_err *rpc_status_err(const rpc_status *st);

/* The Status of any response message of mica.proto (field 1 by the
 * protocol's convention, its first member in C; rpc_wire_check() checks
 * it); NULL when absent. `msg` must be a response message. Points into
 * `msg`. */
const rpc_status *rpc_response_status(const void *msg);

/* ---- server ---- */

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

/* Told of every call a server ends: the method (NULL for an unknown
 * path), the Mica code of the outcome (a unary reply's Status code, else
 * the code the call was ended with) and the microseconds since the request
 * arrived. Runs on the thread that ends the call, so it must be cheap and
 * must not block (atomic counters). */
typedef void (*rpc_observe_fn)(void *ctx, const rpc_method *m, int code,
                               uint64_t micros);

/* TLS through the gRPC C core's SSL credentials (docs/security.md), from
 * PEM files.
 * Server: cert_file and key_file are required. With ca_file (the roots for
 * client certificates) the files are re-read whenever one of them changes,
 * before the next connection's handshake, so renewed certificates need no
 * restart (a file that does not parse keeps the previous ones serving);
 * require_client_cert then makes clients present a certificate signed by
 * it (mutual TLS).
 * Channel: ca_file is required (the server's certificate must chain to it
 * and name the address's host); cert_file and key_file, together, present a
 * client certificate. Read when the channel is created. */
typedef struct rpc_tls {
  const char *cert_file;
  const char *key_file;
  const char *ca_file;
  bool require_client_cert; /* server only */
  /* Server only: ask for a client certificate and verify one that is
   * given, but let clients without one in (they then need a token). */
  bool request_client_cert;
} rpc_tls;

/* NULL when a channel's TLS files (t->ca_file, and cert_file with
 * key_file when given) read and load: parse, the key belongs to the
 * certificate, which has not expired. Otherwise the error naming the file,
 * as rpc_channel_new would give. */
mica_err *rpc_tls_check_channel_files(const rpc_tls *t);

/* Sets t's client-certificate fields from "none", "request" or "require"
 * (the --tls-client-certs flag); false for anything else. */
bool rpc_tls_client_certs_parse(const char *mode, rpc_tls *t);

/* NULL when a server may bind `listen` ("host:port") with `tls` on or off:
 * always with TLS, and without it only on a loopback host (127.0.0.0/8,
 * ::1, localhost, or the default NULL) unless `insecure`. Otherwise
 * INVALID_ARGUMENT naming the address and the flags (`what` names the
 * listener: "--listen"). docs/security.md. */
mica_err *rpc_check_plaintext(const char *what, const char *listen, bool tls,
                              bool insecure);
/* Appends "WHAT LISTEN" to the NUL-terminated `note` (", "-separated)
 * when that listener serves plaintext on a non-loopback address (what
 * --insecure allowed); the note is shown at start-up and on the master's
 * status page. */
void rpc_note_plaintext(char *note, size_t size, const char *what,
                        const char *listen, bool tls);

typedef mica_err *(*rpc_table_check_fn)(rpc_call *call, const void *request,
                                        void *ctx);

typedef struct rpc_server_opts {
  const char *listen;       /* "host:port"; NULL = "127.0.0.1:0" */
  int threads;              /* polling threads; 0 = one per core */
  int max_workers;          /* worker threads for offloaded unary
                               handlers; 0 = 256. Calls queue when all are
                               busy. Streams never use them. */
  int stream_workers;       /* threads producing stream chunks; 0 = 64.
                               A parked stream holds none. */
  size_t max_streams;       /* open streams per server; 0 = 1024 */
  size_t max_streams_per_peer; /* per connection; 0 = 128 */
  int64_t stream_idle_ms;   /* cancel a stream whose chunk waited this long
                               for its reader; 0 = 30000 */
  size_t max_message_bytes; /* send and receive limit; 0 = default */
  rpc_observe_fn observe;   /* NULL = none */
  void *observe_ctx;
  /* Who may call what (proto/auth.h); NULL = every call is let in
   * unchecked (tests, benchmarks, the Echo tool). Not taken: it must
   * outlive the server. */
  struct rpc_auth *auth;
  /* Names the tables a request of a table-scoped method touches, calling
   * rpc_call_check_table for each (docs/security.md, per-table roles). Run
   * after decoding and before the handler, only for callers that lack the
   * method's role on every table (auth.h, rpc_identity.scoped). NULL =
   * such callers are refused. */
  rpc_table_check_fn table_check;
  void *table_check_ctx;
  const rpc_tls *tls; /* NULL = plaintext */
} rpc_server_opts;

/* Handles one call. `request` is the decoded request (the plain struct of
 * the method's request message), owned by the call and valid until the call
 * ends. The handler must end the call exactly once (now or later, from any
 * thread). */
typedef void (*rpc_handler_fn)(rpc_call *call, const void *request, void *ctx);

enum {
  /* Run a unary handler on a worker thread instead of a polling thread:
   * for handlers that may block (disk reads, locks held long). */
  RPC_OFFLOAD = 1u << 0,
  /* Run a streaming handler on the polling thread instead of the stream
   * pool: for handlers that can tell at once whether the whole stream is
   * one short chunk (answer it there: no hand-off) or not (pass the call
   * to the stream pool with rpc_call_offload()). Continuations after
   * rpc_call_send_then always run on the stream pool. */
  RPC_INLINE = 1u << 1,
};

typedef struct rpc_handler {
  const rpc_method *method;
  rpc_handler_fn fn;
  void *ctx;      /* passed to fn */
  unsigned flags; /* RPC_OFFLOAD, RPC_INLINE */
} rpc_handler;

/* Creates a server bound to opts->listen (opts may be NULL for defaults). It
 * serves nothing until rpc_server_start(). UNAVAILABLE when the address
 * cannot be bound. Caller frees with rpc_server_free(). */
mica_err *rpc_server_new(const rpc_server_opts *opts, rpc_server **out);

/* Adds `n` handlers (copied). Before rpc_server_start() only.
 * ALREADY_EXISTS for a path registered twice. */
mica_err *rpc_server_register(rpc_server *s, const rpc_handler *handlers,
                              size_t n);

/* Starts the polling threads. */
mica_err *rpc_server_start(rpc_server *s);

/* The bound port, and "host:port" with it (valid until the server is
 * freed). */
int rpc_server_port(const rpc_server *s);
const char *rpc_server_address(const rpc_server *s);

/* Calls accepted and not yet ended and cleaned up. */
size_t rpc_server_live_calls(rpc_server *s);

/* Streams: open now (admitted, final batch not yet completed), refused by
 * a bound since start, cancelled by the idle timeout since start. */
typedef struct rpc_stream_stats {
  size_t open;
  uint64_t refused;
  uint64_t idle_cancelled;
} rpc_stream_stats;
void rpc_server_stream_stats(rpc_server *s, rpc_stream_stats *out);

/* Clean shutdown as described above, then frees. Blocks until every handler
 * has ended its call, so it must not be called from a handler. Accepts
 * NULL. */
void rpc_server_free(rpc_server *s);

/* Unary: sends `response` (a message of the method's response type,
 * serialized before return; the caller keeps it) with gRPC status OK and
 * ends the call. Streaming: sends `response` as the last chunk and ends
 * the call with OK. */
void rpc_call_reply(rpc_call *call, const void *response);

/* Streaming: sends one chunk and returns once it is handed to the transport.
 * CANCELLED when the client went away or the deadline passed: the handler
 * then stops and ends the call with rpc_call_finish(). Blocks a stream-pool
 * thread while the reader is slow, so it suits short streams (tests);
 * real streams use rpc_call_send_then(). The caller keeps `msg`. */
mica_err *rpc_call_send(rpc_call *call, const void *msg);

/* Continues a parked stream. `err` is NULL when the previous chunk was
 * taken by the transport: produce the next and send it (send_then), or the
 * last (rpc_call_reply), or end (rpc_call_finish). Otherwise `err` says why
 * the stream is over (CANCELLED: the reader cancelled, its deadline passed,
 * the idle timeout, or shutdown): free the state and end the call with
 * rpc_call_finish(call, err). Runs on a stream-pool thread; `err` is valid
 * during the call only. */
typedef void (*rpc_stream_fn)(rpc_call *call, void *state,
                              const mica_err *err);

/* Streaming: starts sending `msg` (serialized before return; the caller
 * keeps it) and parks the call; next(call, state, ...) runs once the send
 * completed, on a stream-pool thread. The caller must not touch the call or
 * `state` after this returns: `next` may already be running. If the send
 * cannot start, `next` runs at once on this thread with the error. */
void rpc_call_send_then(rpc_call *call, const void *msg, rpc_stream_fn next,
                        void *state);

/* Cancels the call from any thread, with `code` and `msg` for the client:
 * an operation in flight fails (a parked stream's `next` runs with
 * CANCELLED), and the handler still ends the call. The caller must know
 * the call has not ended (it is between handler start and its end). */
void rpc_call_abort(rpc_call *call, int code, const char *msg);

/* Ends the call with the transport status for `e` (NULL = OK, which a unary
 * call may not use: it is sent as INTERNAL "no response"). Use for streams
 * and for failures that are not application outcomes; application outcomes
 * go in the response's Status. Does not take `e`. */
void rpc_call_finish(rpc_call *call, const mica_err *e);

/* Runs fn(call, request, ctx) on a worker thread; the handler that calls
 * this returns without ending the call, and fn takes over that duty. */
void rpc_call_offload(rpc_call *call, rpc_handler_fn fn, void *ctx);

/* True once the client cancelled, the deadline passed or the connection was
 * lost: nothing sent will arrive. */
bool rpc_call_cancelled(const rpc_call *call);

/* Milliseconds until the call's deadline (0 when passed); INT64_MAX when the
 * client set none. */
int64_t rpc_call_remaining_ms(const rpc_call *call);

/* The method being served. */
const rpc_method *rpc_call_method(const rpc_call *call);

/* Who made the call, as the server's rpc_auth found it: "member", a
 * token's identity, or "anonymous" (also when the server checks nothing).
 * Valid until the call ends. */
const char *rpc_call_identity(const rpc_call *call);

/* NULL when the caller holds the call's method role on `table` (NULL:
 * on every table); else PERMISSION_DENIED naming the role, the table and
 * the identity (rpc_auth_check_table). Always NULL on a server without
 * checks. */
mica_err *rpc_call_check_table(rpc_call *call, const char *table);

/* Whether the caller may read `table` (to filter listings). */
bool rpc_call_may_read_table(rpc_call *call, const char *table);

/* ---- client ---- */

typedef struct rpc_channel rpc_channel;

typedef struct rpc_channel_opts {
  size_t max_message_bytes; /* send and receive limit; 0 = default */
  /* Bytes one stream may hold unread on this side, fixed (gRPC otherwise
   * grows the window with its bandwidth probe): a memory bound for a client
   * that keeps many streams open. 0 = gRPC's adaptive window. */
  int stream_window_bytes;
  /* Credentials sent with every call (proto/auth.h), copied: the cluster
   * secret signs a membership proof, the token goes as a bearer token.
   * NULL = none. */
  const struct rpc_secret *member;
  const char *token;
  const rpc_tls *tls; /* NULL = plaintext */
} rpc_channel_opts;

/* A channel to "host:port" (opts may be NULL). Connecting is lazy: an
 * unreachable address shows up as UNAVAILABLE on the first call. Caller
 * frees with rpc_channel_free() after every call on it has ended. */
mica_err *rpc_channel_new(const char *address, const rpc_channel_opts *opts,
                          rpc_channel **out);
void rpc_channel_free(rpc_channel *ch);
const char *rpc_channel_address(const rpc_channel *ch);

/* A blocking unary call of `m` (not streaming) with `request`, which must be
 * a message of m->request (rpc_get_request for rpc_m_ts_get, and so on).
 * timeout_ms <= 0 means no deadline. On success *response is the decoded
 * response, a message of m->response: caller frees with rpc_msg_free(). On
 * failure *response is NULL and the error is the transport outcome (the
 * application outcome is in the response's Status). Thread-safe.
 * `response` is a void * so that a typed pointer's address can be passed
 * (rpc_get_response *r; rpc_unary(..., (void **)&r) is what callers write). */
mica_err *rpc_unary(rpc_channel *ch, const rpc_method *m, const void *request,
                    int64_t timeout_ms, void **response);

/* The same with raw bytes both ways, for tests and tools that must send
 * what no message encodes. The response bytes are appended to `response`. */
mica_err *rpc_unary_raw(rpc_channel *ch, const char *path, slice request,
                        int64_t timeout_ms, buf *response);

/* Many unary calls in flight from one thread, completed in any order. */
typedef struct rpc_async rpc_async;

/* Caller frees with rpc_async_free(). */
mica_err *rpc_async_new(rpc_async **out);

/* Cancels the calls still in flight, waits for them, frees. NULL ok. */
void rpc_async_free(rpc_async *a);

/* Starts a unary call; `tag` comes back from rpc_async_next(). `request` is
 * serialized before return. */
mica_err *rpc_async_start(rpc_async *a, rpc_channel *ch, const rpc_method *m,
                          const void *request, int64_t timeout_ms, void *tag);

/* Waits up to timeout_ms (< 0: until one completes) for a call to end.
 * Returns false when nothing ended in time or nothing is in flight.
 * Otherwise *tag is the call's tag, and either *response is set (caller frees
 * with rpc_msg_free()) and *err NULL, or *err is set (caller frees) and
 * *response NULL. */
bool rpc_async_next(rpc_async *a, int64_t timeout_ms, void **tag,
                    void **response, mica_err **err);

/* Calls started and not yet returned by rpc_async_next(). */
size_t rpc_async_in_flight(const rpc_async *a);

/* A server stream being read. */
typedef struct rpc_stream rpc_stream;

/* Starts streaming call `m` with `request`. timeout_ms <= 0: no deadline
 * for the whole stream. Caller frees with rpc_stream_free(). */
mica_err *rpc_stream_open(rpc_channel *ch, const rpc_method *m,
                          const void *request, int64_t timeout_ms,
                          rpc_stream **out);

/* The next chunk: *msg is set (caller frees with rpc_msg_free()), or NULL
 * when the stream ended with OK. An error is the stream's final transport
 * status; after the end or an error, further calls return the same
 * outcome. */
mica_err *rpc_stream_next(rpc_stream *st, void **msg);

/* Cancels the stream from any thread while another may be blocked in
 * rpc_stream_next(), which then returns CANCELLED. The stream must still be
 * freed by its reader. */
void rpc_stream_cancel(rpc_stream *st);

/* Cancels the stream if it has not ended, waits for the call to finish, and
 * frees. Accepts NULL. */
void rpc_stream_free(rpc_stream *st);

/* ---- the Echo service (benchmarks, tests) ---- */

/* Registers Echo (unary; delay_ms > 0 waits on a worker thread) and
 * EchoStream (`chunks` responses, delay_ms between them). */
mica_err *rpc_echo_register(rpc_server *s);

#endif
