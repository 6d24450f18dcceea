/* member: RPC channels for tests that call servers as a cluster member
 * would (docs/security.md). Needs the RPC module (mica_test_cluster). */
#ifndef MICA_TESTS_HARNESS_MEMBER_H
#define MICA_TESTS_HARNESS_MEMBER_H

#include "common/err.h"
#include "proto/rpc.h"

/* A channel to `address` that signs every call with the cluster secret in
 * <data_root>/cluster.secret (created by the first master or tablet server
 * started there), over TLS when `tls` is not NULL. Caller frees with
 * rpc_channel_free(). */
mica_err *th_member_channel(const char *address, const char *data_root,
                            const rpc_tls *tls, rpc_channel **out);

#endif
