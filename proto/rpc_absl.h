/* rpc_absl: Abseil settings for the gRPC C core.
 *
 * Debian builds Abseil without NDEBUG, and such a build turns on
 * absl::Mutex's deadlock detector by default: every lock and unlock of
 * every gRPC mutex then records the acquired-before graph under a global
 * lock (GraphCycles::GetId and InsertEdge were about 3-5% of a tablet
 * server's CPU under Gets, docs/benchmarks.md "A cheaper request path").
 * It is a debugging aid for Abseil's own users (release builds of Abseil
 * and of gRPC have it off); gRPC's correctness does not depend on it.
 * rpc_absl_tune() turns it off; rpc_lib_ref() calls it once, before the
 * first grpc_init().
 *
 * Thread-safety: the setting is one atomic store in Abseil. */
#ifndef MICA_PROTO_RPC_ABSL_H
#define MICA_PROTO_RPC_ABSL_H

#ifdef __cplusplus
extern "C" {
#endif

void rpc_absl_tune(void);

#ifdef __cplusplus
}
#endif

#endif
