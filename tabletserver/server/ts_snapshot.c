/* ts_snapshot: the SnapshotTablet call (docs/storage.md, "Snapshots").
 *
 * The master asks the owner of each tablet of a table to pin it: the
 * engine flushes the tablet, so every write acknowledged before the call
 * is in an SSTable, and writes the pin (the list of those files) at
 * <root>/snapshots/<snapshot id>/<tablet id> (tab_snapshot_pin). The
 * tablet is held like a data request holds it, so it cannot close or
 * split meanwhile; routing errors are answered as data calls answer
 * them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/path.h"
#include "tabletserver/server/ts_admin.h"
#include "tabletserver/server/ts_int.h"
#include "tabletserver/server/ts_master.h"

static void h_snapshot(rpc_call *call, const void *request, void *ctx) {
  ts_server *s = ctx;
  const rpc_snapshot_tablet_request *req = request;
  rpc_snapshot_tablet_response resp = {0};
  rpc_status st;
  ts_routebuf rb;
  ts_routebuf_init(&rb);
  ts_tab *tt = NULL;
  mica_err *e = ts_master_fence(s, req->master_epoch, "SnapshotTablet");
  if (e == NULL && (req->tablet == NULL || req->tablet->tablet_id == 0))
    e = err_new(MICA_INVALID_ARGUMENT,
                "tablet: a TabletRef with a non-zero tablet_id is required");
  else if (e == NULL && req->snapshot_id == 0)
    e = err_new(MICA_INVALID_ARGUMENT, "snapshot_id: must not be 0");
  if (e == NULL) e = ts_acquire(s, req->tablet, &rb, &tt);
  if (e == NULL) {
    char *sdir = tab_snapshots_dir(s->tablets_dir);
    char name[32];
    snprintf(name, sizeof name, "%" PRIu64, req->snapshot_id);
    char *dir = path_join(sdir, name);
    snprintf(name, sizeof name, "%" PRIu64, req->tablet->tablet_id);
    char *pin = path_join(dir, name);
    e = env_mkdirs(s->e, dir);
    tab_pin_info info;
    if (e == NULL) e = tab_snapshot_pin(tt->t, pin, &info);
    if (e == NULL) {
      resp.files = info.files;
      resp.bytes = info.bytes;
      LOG_I("tablet %" PRIu64 " pinned for snapshot %" PRIu64 ": %" PRIu64
            " files, %" PRIu64 " bytes", req->tablet->tablet_id,
            req->snapshot_id, info.files, info.bytes);
    }
    free(pin);
    free(dir);
    free(sdir);
    ts_release(s, tt);
  }
  ts_status_fill(&st, e, &rb);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(e);
  ts_routebuf_clear(&rb);
}

mica_err *ts_snapshot_register(ts_server *s) {
  rpc_handler h[] = {
      {&rpc_m_ts_snapshot_tablet, h_snapshot, s, RPC_OFFLOAD},
  };
  return rpc_server_register(s->rpc, h, sizeof h / sizeof h[0]);
}
