/* etcd_kv: a minimal client of etcd's v3 KV service (Range and Put) over
 * Mica's RPC module, for benchmarking Mica against etcd with the same gRPC
 * C core underneath.
 *
 * The messages come from etcd_kv.proto (compiled by protoc-c, seen only by
 * etcd_kv.c); the calls go through rpc_unary_raw, so the same transport
 * carries them as Mica's calls. One channel (one HTTP/2
 * connection) per client, as libmica keeps one per server.
 *
 * Reads are etcd's default linearizable Range (served through the leader's
 * read index); every Put is acknowledged by etcd only after its raft log
 * entry is fsynced.
 *
 * Thread-safety: an etcd_kv may be used by any number of threads at once. */
#ifndef MICA_PROTO_ETCD_ETCD_KV_H
#define MICA_PROTO_ETCD_ETCD_KV_H

#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"

typedef struct etcd_kv etcd_kv;

/* A client of the etcd server at "host:port". Connecting is lazy. Caller
 * frees with etcd_kv_close(). */
mica_err *etcd_kv_open(const char *address, int64_t timeout_ms, etcd_kv **out);
void etcd_kv_close(etcd_kv *kv); /* accepts NULL */

/* Sets key to value. */
mica_err *etcd_kv_put(etcd_kv *kv, slice key, slice value);

/* Replaces *value (cleared first) with the value of key; NOT_FOUND when
 * absent. A response naming another key or holding several is CORRUPTION. */
mica_err *etcd_kv_get(etcd_kv *kv, slice key, buf *value);

/* Reads keys in [start, end) in key order, at most `limit` of them (0 = no
 * limit); `end` empty means every key >= start. *rows gets the count. Keys
 * outside the range or out of order in the answer are CORRUPTION. */
mica_err *etcd_kv_range(etcd_kv *kv, slice start, slice end, int64_t limit,
                        uint64_t *rows);

#endif
