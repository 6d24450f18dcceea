/* rpc_internal: what the server and client halves of the RPC module share,
 * and the only header besides the .c files of proto/ that names gRPC types.
 * Messages cross this boundary as plain structs (wire.h): rpc_pack encodes
 * and rpc_unpack decodes through the converters of wire_int.h.
 *
 * Completion tags: every operation started on a completion queue carries a
 * pointer to an rpc_tag embedded in the object it belongs to; the thread that
 * takes the event from the queue calls tag->done(tag, ok). RPC_CONTAINER
 * turns the tag pointer back into its object.
 *
 * Thread-safety: the helpers are pure functions of their arguments. */
#ifndef MICA_PROTO_RPC_INTERNAL_H
#define MICA_PROTO_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stddef.h>

#include "proto/auth.h"
#include "proto/rpc.h"

typedef struct rpc_tag rpc_tag;
struct rpc_tag {
  void (*done)(rpc_tag *t, bool ok);
};

#define RPC_CONTAINER(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

/* Serializes `m`, a plain message of `d`, into a new byte buffer; caller
 * destroys it with grpc_byte_buffer_destroy(). */
grpc_byte_buffer *rpc_pack(const rpc_msgdef *d, const void *m);

/* A byte buffer over a copy of `s`; caller destroys it. */
grpc_byte_buffer *rpc_pack_bytes(slice s);

/* Decodes `bb` as a plain message of `d`. NULL with *err set
 * (INVALID_ARGUMENT, naming `what` and the size) when the bytes do not
 * decode. Caller frees the message with rpc_msg_free(); `bb` is not
 * consumed. */
void *rpc_unpack(const rpc_msgdef *d, grpc_byte_buffer *bb, const char *what,
                 mica_err **err);

/* Appends the bytes of `bb` to `out`; false when they cannot be read. */
bool rpc_bytes_of(grpc_byte_buffer *bb, buf *out);

/* The bytes of `bb` in place, when it is one uncompressed slice (the usual
 * received message): true and `out` set, valid while `bb` lives; false
 * when they would need copying (rpc_bytes_of). */
bool rpc_bytes_view(grpc_byte_buffer *bb, slice *out);

/* The absolute monotonic deadline `timeout_ms` from now; the infinite future
 * for timeout_ms <= 0. */
gpr_timespec rpc_deadline(int64_t timeout_ms);

/* Channel or server arguments: both message-size limits set to `max`
 * (clamped to INT_MAX), SO_REUSEPORT off so two servers can never share a
 * port, and for channels (`client`) a reconnect backoff of 100 ms growing to
 * at most 1 s (gRPC's default grows to 120 s, which would keep a channel to a
 * restarted master or tablet server failing for minutes). `storage` must
 * have room for RPC_ARGS_N entries and live as long as the returned value is
 * used. */
#define RPC_ARGS_N 6
grpc_channel_args rpc_args(grpc_arg *storage, size_t max, bool client);

/* grpc_init/grpc_shutdown pairs, one per server, channel, async or stream
 * object, so the library lives exactly as long as something uses it. */
void rpc_lib_ref(void);
void rpc_lib_unref(void);

/* ---- TLS (rpc_tls.c) ---- */

/* Credentials from the PEM files of `t`; INVALID_ARGUMENT naming the file
 * that is missing or not PEM. Caller releases them. A server's files are
 * re-read when they change (before a new connection's handshake), through
 * *state, which the caller frees with rpc_tls_state_free() once the gRPC
 * server is destroyed. */
typedef struct rpc_tls_state rpc_tls_state;
mica_err *rpc_tls_server_creds(const rpc_tls *t, grpc_server_credentials **out,
                               rpc_tls_state **state);
void rpc_tls_state_free(rpc_tls_state *st);
mica_err *rpc_tls_channel_creds(const rpc_tls *t,
                                grpc_channel_credentials **out);

/* ---- credentials in call metadata (rpc_auth.c; auth.h has the scheme) ---- */

/* The metadata a client attaches to one call: a membership proof when
 * `member` is set (signed over `path` and the bytes of `bb`), a bearer
 * token when `token` is. Release with rpc_md_release after the call. */
typedef struct rpc_md_out {
  grpc_metadata md[2];
  size_t n;
} rpc_md_out;
void rpc_md_build(const rpc_secret *member, const char *token,
                  const char *path, grpc_byte_buffer *bb, rpc_md_out *out);
void rpc_md_release(rpc_md_out *out);

/* The server's check of one call from its metadata, request bytes and
 * the client certificate the TLS layer verified (rpc_auth_check), filling
 * *id. */
mica_err *rpc_md_check(rpc_auth *a, const char *path, grpc_call *call,
                       const grpc_metadata_array *md, grpc_byte_buffer *bb,
                       rpc_identity *id);

#endif
