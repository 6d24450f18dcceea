/* mzk_standby: see mzk_standby.h. One handler serves every Master method:
 * the response of any method is its plain struct with only the Status (its
 * first member, by the protocol's convention) filled in. */
#include "master/zk/mzk_standby.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "proto/rpc.h"

struct mzk_standby {
  rpc_server *rpc;
  mzk_reader *reader;
};

#define MASTER_PREFIX "/mica.v1.Master/"

static void h_standby(rpc_call *call, const void *req, void *ctx) {
  (void)req;
  mzk_standby *s = ctx;
  const rpc_method *m = rpc_call_method(call);
  mzk_master am;
  mica_err *e;
  if (mzk_reader_get(s->reader, &am))
    e = err_new(MICA_NOT_ACTIVE_MASTER,
                "master %s is a standby; the active master is %s (epoch %"
                PRIu64 ", http %s)",
                rpc_server_address(s->rpc), am.rpc_addr, am.epoch,
                am.http_addr[0] ? am.http_addr : "none");
  else
    e = err_new(MICA_NOT_ACTIVE_MASTER,
                "master %s is a standby and no master is active yet",
                rpc_server_address(s->rpc));
  void *resp = calloc(1, rpc_msg_size(m->response));
  if (resp == NULL) {
    rpc_call_finish(call, e);
    err_free(e);
    return;
  }
  rpc_status st;
  rpc_status_set(&st, e);
  *(rpc_status **)resp = &st;
  rpc_call_reply(call, resp);
  free(resp);
  err_free(e);
}

mica_err *mzk_standby_start(const char *listen, mzk_reader *reader,
                            mzk_standby **out) {
  *out = NULL;
  mzk_standby *s = calloc(1, sizeof *s);
  if (s == NULL) return err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  s->reader = reader;
  rpc_server_opts ro = {.listen = listen, .threads = 1};
  mica_err *err = rpc_server_new(&ro, &s->rpc);
  size_t n = 0, k = 0;
  const rpc_method *const *all = rpc_methods_all(&n);
  rpc_handler *h = calloc(n ? n : 1, sizeof *h);
  if (err == NULL && h == NULL)
    err = err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  for (size_t i = 0; err == NULL && i < n; i++)
    if (strncmp(all[i]->path, MASTER_PREFIX, strlen(MASTER_PREFIX)) == 0 &&
        !all[i]->server_streaming)
      h[k++] = (rpc_handler){.method = all[i], .fn = h_standby, .ctx = s};
  if (err == NULL) err = rpc_server_register(s->rpc, h, k);
  free(h);
  if (err == NULL) err = rpc_server_start(s->rpc);
  if (err != NULL) {
    mzk_standby_stop(s);
    return err;
  }
  *out = s;
  return NULL;
}

const char *mzk_standby_address(const mzk_standby *s) {
  return rpc_server_address(s->rpc);
}

void mzk_standby_stop(mzk_standby *s) {
  if (s == NULL) return;
  rpc_server_free(s->rpc);
  free(s);
}
