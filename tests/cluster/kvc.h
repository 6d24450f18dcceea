/* kvc: the smallest correct data client, for cluster tests.
 *
 * It asks the master where a key lives on every operation (no routing
 * cache, so a test exercises the master's lookups and never a cache's
 * mistakes) and retries, with a short backoff until its deadline, whatever
 * a moving cluster answers in passing: a tablet without a location, a
 * routing error (NOT_SERVING, STALE_EPOCH, OUT_OF_RANGE), an expired lease,
 * UNAVAILABLE, or a server that does not answer. Any other error is
 * returned at once. The real client library lives in client/; this one
 * exists so the master's tests do not depend on it.
 *
 * Thread-safety: every function may be called from any number of threads
 * on one cluster (they only use cl_channel and cl_call_master). */
#ifndef MICA_TESTS_CLUSTER_KVC_H
#define MICA_TESTS_CLUSTER_KVC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/slice.h"
#include "tests/harness/cluster.h"

/* CreateTable with `n` split keys (may be 0). */
mica_err *kvc_create_table(cluster *c, const char *name, const slice *splits,
                           size_t n);

/* LookupTablets; *out (caller frees with rpc_msg_free) on success. */
mica_err *kvc_lookup(cluster *c, const char *table, slice key, uint32_t count,
                     bool before, rpc_lookup_tablets_response **out);

/* The serving tablet holding `key`: waits (until the deadline) while it
 * has no location. *out: caller frees with rpc_msg_free(). */
mica_err *kvc_route(cluster *c, const char *table, slice key,
                    int64_t timeout_ms, rpc_tablet_route **route,
                    rpc_lookup_tablets_response **out);

/* The reference of a located route's tablet (its epochs), for calls
 * straight to its server. */
void kvc_ref_of(const rpc_tablet_route *rt, rpc_tablet_ref *ref);

/* Durable put; NULL once acknowledged. */
mica_err *kvc_put(cluster *c, const char *table, slice key, slice value,
                  int64_t timeout_ms);

/* Puts keys[i] = vals[i] for n keys sorted ascending, one Batch per tablet
 * the keys fall in. NULL once all are acknowledged; on error some batches
 * may have been applied. vals NULL: deletes the keys instead (the
 * mutations are KIND_DELETE). */
mica_err *kvc_put_sorted(cluster *c, const char *table, const slice *keys,
                         const slice *vals, size_t n, int64_t timeout_ms);

/* Durable deletes of n keys sorted ascending, as kvc_put_sorted. */
mica_err *kvc_delete_sorted(cluster *c, const char *table, const slice *keys,
                            size_t n, int64_t timeout_ms);

/* Get: *found and, when found, the value replaces `value`'s contents. */
mica_err *kvc_get(cluster *c, const char *table, slice key, bool *found,
                  buf *value, int64_t timeout_ms);

/* Forward scan of the whole table, tablet after tablet, resuming after the
 * last key returned across splits and moves. `fn` sees every row in order;
 * returning false stops the scan. */
typedef bool (*kvc_row_fn)(void *arg, slice key, slice value);
mica_err *kvc_scan(cluster *c, const char *table, kvc_row_fn fn, void *arg,
                   int64_t timeout_ms);

/* True for the codes kvc retries (see above). */
bool kvc_retryable(int code);

#endif
