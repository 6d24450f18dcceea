/* etcd_kv.c: Range and Put of etcd's KV service through rpc_unary.
 *
 * etcd answers application failures (a request timed out in raft, no
 * leader, a key too large) with a gRPC status, not inside the response, so
 * rpc_unary's error already carries them, mapped to Mica codes. What comes
 * back in a response is checked before it is believed: a point read must
 * name the key asked for, a range must stay inside its bounds and ascend. */
#include "bench/etcd/etcd_kv.h"

#include <stdlib.h>
#include <string.h>

#include "bench/etcd/etcd_kv.pb-c.h"
#include "proto/rpc.h"

static const rpc_method etcd_range = {
    .path = "/etcdserverpb.KV/Range",
    .request = &etcdserverpb__range_request__descriptor,
    .response = &etcdserverpb__range_response__descriptor,
};

static const rpc_method etcd_put = {
    .path = "/etcdserverpb.KV/Put",
    .request = &etcdserverpb__put_request__descriptor,
    .response = &etcdserverpb__put_response__descriptor,
};

struct etcd_kv {
  rpc_channel *ch;
  int64_t timeout_ms;
};

mica_err *etcd_kv_open(const char *address, int64_t timeout_ms, etcd_kv **out) {
  rpc_channel *ch = NULL;
  mica_err *e = rpc_channel_new(address, NULL, &ch);
  if (e) return err_wrap(e, "etcd %s", address);
  etcd_kv *kv = xcalloc(1, sizeof *kv);
  kv->ch = ch;
  kv->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
  *out = kv;
  return NULL;
}

void etcd_kv_close(etcd_kv *kv) {
  if (!kv) return;
  rpc_channel_free(kv->ch);
  free(kv);
}

static ProtobufCBinaryData bin(slice s) {
  return (ProtobufCBinaryData){.len = s.len, .data = (uint8_t *)s.data};
}

mica_err *etcd_kv_put(etcd_kv *kv, slice key, slice value) {
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  req.key = bin(key);
  req.value = bin(value);
  ProtobufCMessage *resp = NULL;
  mica_err *e = rpc_unary(kv->ch, &etcd_put, &req.base, kv->timeout_ms, &resp);
  if (e) return err_wrap(e, "etcd put");
  rpc_msg_free(resp);
  return NULL;
}

static mica_err *call_range(etcd_kv *kv, Etcdserverpb__RangeRequest *req,
                            Etcdserverpb__RangeResponse **out) {
  ProtobufCMessage *resp = NULL;
  mica_err *e = rpc_unary(kv->ch, &etcd_range, &req->base, kv->timeout_ms, &resp);
  if (e) return err_wrap(e, "etcd range");
  *out = (Etcdserverpb__RangeResponse *)resp;
  return NULL;
}

static int bin_cmp(ProtobufCBinaryData a, slice b) {
  return slice_cmp(slice_make(a.data, a.len), b);
}

mica_err *etcd_kv_get(etcd_kv *kv, slice key, buf *value) {
  Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
  req.key = bin(key);
  Etcdserverpb__RangeResponse *r = NULL;
  buf_clear(value);
  mica_err *e = call_range(kv, &req, &r);
  if (e) return e;
  if (r->n_kvs == 0) {
    e = err_new(MICA_NOT_FOUND, "etcd get: key not found");
  } else if (r->n_kvs > 1 || !r->kvs[0] || bin_cmp(r->kvs[0]->key, key) != 0) {
    e = err_new(MICA_CORRUPTION, "etcd get: answer holds %zu keys or another key",
                r->n_kvs);
  } else {
    buf_append(value, r->kvs[0]->value.data, r->kvs[0]->value.len);
  }
  rpc_msg_free(&r->base);
  return e;
}

mica_err *etcd_kv_range(etcd_kv *kv, slice start, slice end, int64_t limit,
                        uint64_t *rows) {
  static const uint8_t all_after = 0;
  Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
  req.key = bin(start);
  req.range_end = end.len ? bin(end) : (ProtobufCBinaryData){.len = 1, .data = (uint8_t *)&all_after};
  req.limit = limit;
  Etcdserverpb__RangeResponse *r = NULL;
  *rows = 0;
  mica_err *e = call_range(kv, &req, &r);
  if (e) return e;
  if (limit > 0 && r->n_kvs > (size_t)limit)
    e = err_new(MICA_CORRUPTION, "etcd range: %zu keys for a limit of %lld", r->n_kvs,
                (long long)limit);
  for (size_t i = 0; !e && i < r->n_kvs; i++) {
    ProtobufCBinaryData k = r->kvs[i] ? r->kvs[i]->key : (ProtobufCBinaryData){0};
    bool inside = bin_cmp(k, start) >= 0 && (end.len == 0 || bin_cmp(k, end) < 0);
    bool ascending = i == 0 || slice_cmp(slice_make(r->kvs[i - 1]->key.data, r->kvs[i - 1]->key.len),
                                         slice_make(k.data, k.len)) < 0;
    if (!inside || !ascending)
      e = err_new(MICA_CORRUPTION, "etcd range: key %zu of the answer is %s", i,
                  inside ? "out of order" : "outside the range");
  }
  if (!e) *rows = r->n_kvs;
  rpc_msg_free(&r->base);
  return e;
}
