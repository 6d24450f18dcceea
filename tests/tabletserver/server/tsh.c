/* tsh: starting real mica-tserver processes for the integration tests and
 * the thin call wrappers they share (contract in tsh.h). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tabletserver/server/tsh.h"

mica_err *tsh_start(const char *dir, const char *const *extra, tsh_proc *p) {
  memset(p, 0, sizeof(*p));
  /* ASan builds start slowly on a busy machine. */
  th_node_opts o = {.prog = "mica-tserver", .name = "tserver",
                    .data_dir = dir, .log_dir = dir, .args = extra,
                    .timeout_ms = 30000};
  mica_err *err = th_node_start(&o, &p->node);
  if (err == NULL && strlen(p->node.address) >= sizeof(p->addr))
    err = err_new(MICA_INTERNAL, "address too long: %s", p->node.address);
  if (err == NULL) {
    snprintf(p->addr, sizeof(p->addr), "%s", p->node.address);
    err = rpc_channel_new(p->addr, NULL, &p->ch);
  }
  if (err) th_node_clear(&p->node);
  return err;
}

int tsh_stop(tsh_proc *p, int sig) {
  rpc_channel_free(p->ch);
  p->ch = NULL;
  int st = -1;
  if (p->node.proc != NULL)
    err_free(th_node_signal_wait(&p->node, sig, 60000, &st));
  th_node_clear(&p->node);
  return st;
}

mica_err *tsh_status(mica_err *transport, const Mica__V1__Status *st) {
  if (transport != NULL) return transport;
  return rpc_status_err(st);
}

mica_err *tsh_open(rpc_channel *ch, tsh_ref r, const char *start,
                   const char *end) {
  Mica__V1__OpenTabletRequest req = MICA__V1__OPEN_TABLET_REQUEST__INIT;
  Mica__V1__TabletDescriptor d = MICA__V1__TABLET_DESCRIPTOR__INIT;
  d.tablet_id = r.id;
  d.table_id = 1;
  d.table_name = "t";
  d.range_epoch = r.re;
  if (start) d.start_key = tsh_bin(slice_from_str(start));
  if (end) d.end_key = tsh_bin(slice_from_str(end));
  req.desc = &d;
  req.assign_epoch = r.ae;
  ProtobufCMessage *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_open_tablet, &req.base, 60000, &m);
  e = tsh_status(e, m ? ((Mica__V1__OpenTabletResponse *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_close(rpc_channel *ch, tsh_ref r) {
  Mica__V1__CloseTabletRequest req = MICA__V1__CLOSE_TABLET_REQUEST__INIT;
  Mica__V1__TabletRef ref = tsh_pb_ref(r);
  req.tablet = &ref;
  ProtobufCMessage *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_close_tablet, &req.base, 60000, &m);
  e = tsh_status(e, m ? ((Mica__V1__CloseTabletResponse *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_put(rpc_channel *ch, tsh_ref r, slice key, slice value) {
  Mica__V1__PutRequest req = MICA__V1__PUT_REQUEST__INIT;
  Mica__V1__TabletRef ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  req.value = tsh_bin(value);
  ProtobufCMessage *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_put, &req.base, 30000, &m);
  e = tsh_status(e, m ? ((Mica__V1__PutResponse *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_del(rpc_channel *ch, tsh_ref r, slice key) {
  Mica__V1__DeleteRequest req = MICA__V1__DELETE_REQUEST__INIT;
  Mica__V1__TabletRef ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  ProtobufCMessage *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_delete, &req.base, 30000, &m);
  e = tsh_status(e, m ? ((Mica__V1__DeleteResponse *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_get(rpc_channel *ch, tsh_ref r, slice key, buf *val) {
  Mica__V1__GetRequest req = MICA__V1__GET_REQUEST__INIT;
  Mica__V1__TabletRef ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  ProtobufCMessage *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_get, &req.base, 30000, &m);
  const Mica__V1__GetResponse *resp = (const Mica__V1__GetResponse *)m;
  e = tsh_status(e, resp ? resp->status : NULL);
  if (e == NULL && !resp->found) e = err_new(MICA_NOT_FOUND, "not found");
  if (e == NULL) {
    buf_clear(val);
    buf_append(val, resp->value.data, resp->value.len);
  }
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_fill(rpc_channel *ch, tsh_ref r, const char *prefix,
                   uint64_t n, size_t vlen, size_t per_batch) {
  Mica__V1__TabletRef ref = tsh_pb_ref(r);
  Mica__V1__Mutation *muts = calloc(per_batch, sizeof(*muts));
  Mica__V1__Mutation **ptrs = calloc(per_batch, sizeof(*ptrs));
  char (*keys)[64] = calloc(per_batch, 64);
  uint8_t *val = calloc(1, vlen + 1);
  memset(val, 'v', vlen);
  mica_err *e = NULL;
  for (uint64_t i = 0; i < n && e == NULL;) {
    size_t k = 0;
    for (; k < per_batch && i < n; k++, i++) {
      mica__v1__mutation__init(&muts[k]);
      muts[k].kind = MICA__V1__MUTATION__KIND__KIND_PUT;
      int len = snprintf(keys[k], 64, "%s%08" PRIu64, prefix, i);
      muts[k].key.data = (uint8_t *)keys[k];
      muts[k].key.len = (size_t)len;
      muts[k].value.data = val;
      muts[k].value.len = vlen;
      ptrs[k] = &muts[k];
    }
    Mica__V1__BatchRequest req = MICA__V1__BATCH_REQUEST__INIT;
    req.tablet = &ref;
    req.mutations = ptrs;
    req.n_mutations = k;
    ProtobufCMessage *m = NULL;
    e = rpc_unary(ch, &rpc_m_ts_batch, &req.base, 60000, &m);
    e = tsh_status(e, m ? ((Mica__V1__BatchResponse *)m)->status : NULL);
    rpc_msg_free(m);
  }
  free(muts);
  free(ptrs);
  free(keys);
  free(val);
  return e;
}
