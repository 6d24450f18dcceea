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
    err = th_member_channel(p->addr, dir, NULL, &p->ch);
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

mica_err *tsh_status(mica_err *transport, const rpc_status *st) {
  if (transport != NULL) return transport;
  return rpc_status_err(st);
}

mica_err *tsh_open(rpc_channel *ch, tsh_ref r, const char *start,
                   const char *end) {
  rpc_open_tablet_request req = {0};
  rpc_tablet_descriptor d = {0};
  d.tablet_id = r.id;
  d.table_id = 1;
  d.table_name = "t";
  d.range_epoch = r.re;
  if (start) d.start_key = tsh_bin(slice_from_str(start));
  if (end) d.end_key = tsh_bin(slice_from_str(end));
  req.desc = &d;
  req.assign_epoch = r.ae;
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_open_tablet, &req, 60000, &m);
  e = tsh_status(e, m ? ((rpc_open_tablet_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_close(rpc_channel *ch, tsh_ref r) {
  rpc_close_tablet_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_close_tablet, &req, 60000, &m);
  e = tsh_status(e, m ? ((rpc_close_tablet_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_put(rpc_channel *ch, tsh_ref r, slice key, slice value) {
  rpc_put_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  req.value = tsh_bin(value);
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_put, &req, 30000, &m);
  e = tsh_status(e, m ? ((rpc_put_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_del(rpc_channel *ch, tsh_ref r, slice key) {
  rpc_delete_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_delete, &req, 30000, &m);
  e = tsh_status(e, m ? ((rpc_delete_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_get(rpc_channel *ch, tsh_ref r, slice key, buf *val) {
  rpc_get_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_get, &req, 30000, &m);
  const rpc_get_response *resp = (const rpc_get_response *)m;
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
  rpc_tablet_ref ref = tsh_pb_ref(r);
  rpc_mutation *muts = calloc(per_batch, sizeof(*muts));
  char (*keys)[64] = calloc(per_batch, 64);
  uint8_t *val = calloc(1, vlen + 1);
  memset(val, 'v', vlen);
  mica_err *e = NULL;
  for (uint64_t i = 0; i < n && e == NULL;) {
    size_t k = 0;
    for (; k < per_batch && i < n; k++, i++) {
      memset(&muts[k], 0, sizeof muts[k]);
      muts[k].kind = RPC_MUTATION_PUT;
      int len = snprintf(keys[k], 64, "%s%08" PRIu64, prefix, i);
      muts[k].key.data = (uint8_t *)keys[k];
      muts[k].key.len = (size_t)len;
      muts[k].value.data = val;
      muts[k].value.len = vlen;
    }
    rpc_batch_request req = {0};
    req.tablet = &ref;
    req.mutations = muts;
    req.n_mutations = k;
    void *m = NULL;
    e = rpc_unary(ch, &rpc_m_ts_batch, &req, 60000, &m);
    e = tsh_status(e, m ? ((rpc_batch_response *)m)->status : NULL);
    rpc_msg_free(m);
  }
  free(muts);
  free(keys);
  free(val);
  return e;
}
