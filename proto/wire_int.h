/* wire_int: the converters between the plain structs of proto/wire.h and
 * the protobuf-c messages generated from mica.proto. Private to proto/: the
 * only header besides the generated one that names protobuf-c types.
 *
 * One table per message (rpc_msgdef), made from the same field list as the
 * struct, drives one generic encoder and one generic decoder, which match
 * plain fields to protobuf-c fields by field number. rpc_wire_selfcheck()
 * proves every table against the generated descriptors (same fields, same
 * types), and tests/proto runs it.
 *
 * Thread-safety: the tables are constant; every function is reentrant. */
#ifndef MICA_PROTO_WIRE_INT_H
#define MICA_PROTO_WIRE_INT_H

#include <protobuf-c/protobuf-c.h>

#include "common/arena.h"
#include "common/err.h"
#include "proto/mica.pb-c.h"
#include "proto/wire.h"

enum rpc_field_kind {
  RPC_K_NONE,
  RPC_K_U64,
  RPC_K_U32,
  RPC_K_BOOL,
  RPC_K_DBL,
  RPC_K_ENUM,
  RPC_K_STR,
  RPC_K_BYTES,
  RPC_K_MSG,
  RPC_K_RMSG,
  RPC_K_RBYTES,
  RPC_K_RU64,
  RPC_K_OBOOL
};

typedef struct rpc_field {
  unsigned number;          /* the field number in mica.proto */
  int kind;                 /* enum rpc_field_kind */
  const char *name;
  size_t off;               /* of the member (the array for repeated ones) */
  size_t aux;               /* n_<name> or has_<name>; 0 otherwise */
  const rpc_msgdef *sub;    /* RPC_K_MSG, RPC_K_RMSG */
} rpc_field;

struct rpc_msgdef {
  const char *name;         /* "get_request" */
  size_t size;              /* sizeof the plain struct */
  const ProtobufCMessageDescriptor *pb;
  /* The field table and, in *count, its length. */
  const rpc_field *(*fields)(size_t *count);
};

/* A protobuf-c message for `plain` (a message of `d`), built in `a`: it
 * points into `plain`, so both must outlive it. */
ProtobufCMessage *rpc_wire_encode(const rpc_msgdef *d, const void *plain,
                                  arena *a);

/* The plain message of `pb` (a message of d->pb), taking ownership of `pb`:
 * the result owns it and everything it points to, and is freed with
 * rpc_msg_free(). Never fails (the bytes were checked by protobuf-c). */
void *rpc_wire_decode(const rpc_msgdef *d, ProtobufCMessage *pb);

/* Unpacks `n` bytes at `p` as a message of `d` and decodes it, protobuf-c's
 * allocations and the plain message in one arena (freed by rpc_msg_free);
 * NULL when the bytes do not decode. */
void *rpc_wire_unpack(const rpc_msgdef *d, const uint8_t *p, size_t n);

/* NULL when every string field of `plain` (a message of `d`), nested
 * messages included, is valid UTF-8, as proto3 requires; otherwise
 * INVALID_ARGUMENT naming the first bad field by its path ("CreateTable
 * Request.name") and the offending byte. Run on every message decoded
 * (rpc_unpack, rpc_msg_decode), so no handler sees a non-UTF-8 string.
 * Caller frees. */
mica_err *rpc_wire_check_text(const rpc_msgdef *d, const void *plain);

/* NULL when every table agrees with the generated descriptors, otherwise
 * an INTERNAL error naming the first disagreement. Caller frees. */
mica_err *rpc_wire_selfcheck(void);

/* NULL when the method table of rpc.h agrees with mica.proto's services
 * (rpc_wire_check() in rpc.h says what is checked). Caller frees. */
mica_err *rpc_methods_selfcheck(void);

#endif
