/* etcd_kv.c: Range and Put of etcd's KV service over the RPC module.
 *
 * etcd answers application failures (a request timed out in raft, no
 * leader, a key too large) with a gRPC status, not inside the response, so
 * the call's error already carries them, mapped to Mica codes. The calls go
 * through rpc_unary_raw with bytes packed and unpacked here by protobuf-c,
 * since the RPC module's message tables describe Mica's own messages only.
 * What comes
 * back in a response is checked before it is believed: a point read must
 * name the key asked for, a range must stay inside its bounds and ascend. */
#include "proto/etcd/etcd_kv.h"

#include <stdlib.h>
#include <string.h>

#include "proto/etcd/etcd_kv.pb-c.h"
#include "proto/rpc.h"

#define ETCD_RANGE "/etcdserverpb.KV/Range"
#define ETCD_PUT "/etcdserverpb.KV/Put"

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

/* One unary call: `req` packed, the answer unpacked as a message of
 * `resp_desc` into *out (caller frees with
 * protobuf_c_message_free_unpacked). */
static mica_err *call(etcd_kv *kv, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc,
                      ProtobufCMessage **out) {
  *out = NULL;
  buf in = BUF_INIT, ans = BUF_INIT;
  buf_resize(&in, protobuf_c_message_get_packed_size(req));
  protobuf_c_message_pack(req, in.data);
  mica_err *e = rpc_unary_raw(kv->ch, path, buf_slice(&in), kv->timeout_ms, &ans);
  if (e == NULL) {
    *out = protobuf_c_message_unpack(resp_desc, NULL, ans.len, ans.data);
    if (*out == NULL)
      e = err_new(MICA_INVALID_ARGUMENT, "%s: %zu bytes do not decode as %s",
                  path, ans.len, resp_desc->name);
  }
  buf_free(&in);
  buf_free(&ans);
  return e;
}

mica_err *etcd_kv_put(etcd_kv *kv, slice key, slice value) {
  Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
  req.key = bin(key);
  req.value = bin(value);
  ProtobufCMessage *resp = NULL;
  mica_err *e = call(kv, ETCD_PUT, &req.base,
                     &etcdserverpb__put_response__descriptor, &resp);
  if (e) return err_wrap(e, "etcd put");
  protobuf_c_message_free_unpacked(resp, NULL);
  return NULL;
}

static mica_err *call_range(etcd_kv *kv, Etcdserverpb__RangeRequest *req,
                            Etcdserverpb__RangeResponse **out) {
  ProtobufCMessage *resp = NULL;
  mica_err *e = call(kv, ETCD_RANGE, &req->base,
                     &etcdserverpb__range_response__descriptor, &resp);
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
  protobuf_c_message_free_unpacked(&r->base, NULL);
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
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return e;
}
