/* rpc_status: the one table between gRPC status codes and Mica codes, the
 * Status message helpers, and the method table of mica.proto.
 *
 * Two kinds of outcome cross the wire. Application outcomes (not found, a
 * routing error, a limit broken) travel in the Status field of a response,
 * where the Mica code goes unchanged. Transport outcomes (deadline, cancel,
 * connection lost, a request that did not decode, an unknown method) are
 * gRPC statuses, translated through the table below. The table is written
 * once as pairs; a direction flag says which pairs are the canonical answer
 * for each direction, because the two code sets are not the same size. */
#include <grpc/status.h>
#include <string.h>

#include "proto/rpc.h"
#include "proto/wire_int.h"

/* The proto enum must equal include/mica/status.h, number for number. */
#define RPC_CHECK_CODE_(name, num, msg)                                      \
  _Static_assert(MICA__V1__CODE__MICA_##name == num &&                       \
                     MICA_##name == num,                                     \
                 "mica.proto Code and mica/status.h disagree on " #name);
MICA_STATUS_LIST(RPC_CHECK_CODE_)
#undef RPC_CHECK_CODE_

enum { TO_MICA = 1, TO_GRPC = 2, BOTH = 3 };

static const struct {
  grpc_status_code grpc;
  int mica;
  int dir;
} code_map[] = {
    {GRPC_STATUS_OK, MICA_OK, BOTH},
    {GRPC_STATUS_CANCELLED, MICA_CANCELLED, BOTH},
    {GRPC_STATUS_UNKNOWN, MICA_INTERNAL, TO_MICA},
    {GRPC_STATUS_INVALID_ARGUMENT, MICA_INVALID_ARGUMENT, BOTH},
    {GRPC_STATUS_DEADLINE_EXCEEDED, MICA_DEADLINE_EXCEEDED, BOTH},
    {GRPC_STATUS_NOT_FOUND, MICA_NOT_FOUND, BOTH},
    {GRPC_STATUS_ALREADY_EXISTS, MICA_ALREADY_EXISTS, BOTH},
    {GRPC_STATUS_PERMISSION_DENIED, MICA_PERMISSION_DENIED, BOTH},
    {GRPC_STATUS_RESOURCE_EXHAUSTED, MICA_RESOURCE_EXHAUSTED, BOTH},
    /* A gRPC peer's "precondition" is closest to "the state changed under
     * you, retry": ABORTED. */
    {GRPC_STATUS_FAILED_PRECONDITION, MICA_ABORTED, TO_MICA},
    {GRPC_STATUS_ABORTED, MICA_ABORTED, BOTH},
    {GRPC_STATUS_OUT_OF_RANGE, MICA_OUT_OF_RANGE, BOTH},
    {GRPC_STATUS_UNIMPLEMENTED, MICA_NOT_SUPPORTED, BOTH},
    {GRPC_STATUS_INTERNAL, MICA_INTERNAL, BOTH},
    {GRPC_STATUS_UNAVAILABLE, MICA_UNAVAILABLE, BOTH},
    {GRPC_STATUS_DATA_LOSS, MICA_CORRUPTION, BOTH},
    {GRPC_STATUS_UNAUTHENTICATED, MICA_UNAUTHENTICATED, BOTH},
    /* Mica codes gRPC has no word for. They normally travel in Status;
     * these pairs only matter when a handler ends a call with them. */
    {GRPC_STATUS_INTERNAL, MICA_IO_ERROR, TO_GRPC},
    {GRPC_STATUS_FAILED_PRECONDITION, MICA_NOT_SERVING, TO_GRPC},
    {GRPC_STATUS_FAILED_PRECONDITION, MICA_STALE_EPOCH, TO_GRPC},
    {GRPC_STATUS_UNAVAILABLE, MICA_LEASE_EXPIRED, TO_GRPC},
    {GRPC_STATUS_UNAVAILABLE, MICA_NOT_ACTIVE_MASTER, TO_GRPC},
    {GRPC_STATUS_FAILED_PRECONDITION, MICA_STALE_MASTER, TO_GRPC},
};

int rpc_code_from_grpc(int grpc_code) {
  for (size_t i = 0; i < sizeof code_map / sizeof code_map[0]; i++)
    if ((code_map[i].dir & TO_MICA) && (int)code_map[i].grpc == grpc_code)
      return code_map[i].mica;
  return MICA_INTERNAL;
}

int rpc_code_to_grpc(int code) {
  for (size_t i = 0; i < sizeof code_map / sizeof code_map[0]; i++)
    if ((code_map[i].dir & TO_GRPC) && code_map[i].mica == code)
      return (int)code_map[i].grpc;
  return GRPC_STATUS_UNKNOWN;
}

void rpc_status_set(rpc_status *st, const mica_err *e) {
  memset(st, 0, sizeof *st);
  st->message = "";
  if (e == NULL)
    return;
  st->code = err_code(e);
  st->message = err_msg(e);
}

mica_err *rpc_status_err(const rpc_status *st) {
  if (st == NULL || st->code == MICA_OK)
    return NULL;
  int code = st->code;
  const char *msg = st->message != NULL ? st->message : "";
  if (code <= 0 || code >= MICA_CODE_COUNT_)
    return err_new(MICA_INTERNAL, "unknown status code %d from peer: %s",
                   code, msg);
  return err_new(code, "%s", msg[0] != '\0' ? msg : mica_code_message(code));
}

/* Every response struct starts with its Status pointer: rpc_wire_check()
 * proves it for each message whose field 1 is `status`, and tests/proto
 * checks that every method's response is such a message. */
const rpc_status *rpc_response_status(const void *msg) {
  return msg != NULL ? *(const rpc_status *const *)msg : NULL;
}

mica_err *rpc_wire_check(void) {
  mica_err *e = rpc_wire_selfcheck();
  return e != NULL ? e : rpc_methods_selfcheck();
}

#define RPC_METHOD_DEF_(name, svc, meth, req, resp, stream)                 \
  const rpc_method rpc_m_##name = {"/mica.v1." svc "/" meth,                \
                                   &rpc_def_##req, &rpc_def_##resp, stream};
RPC_METHOD_LIST(RPC_METHOD_DEF_)
#undef RPC_METHOD_DEF_

#define RPC_METHOD_REF_(name, svc, meth, req, resp, stream) &rpc_m_##name,
static const rpc_method *const all_methods[] = {
    RPC_METHOD_LIST(RPC_METHOD_REF_)};
#undef RPC_METHOD_REF_

const rpc_method *const *rpc_methods_all(size_t *n) {
  *n = sizeof all_methods / sizeof all_methods[0];
  return all_methods;
}
