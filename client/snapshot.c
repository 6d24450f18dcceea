/* snapshot: the client's snapshot calls (mica.h, "snapshots and clones"),
 * each one Master call, answered once the master has finished. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "mica/mica.h"
#include "proto/rpc.h"

static mica_err *master(mica_client *c, const rpc_method *m, const void *req,
                        void **resp) {
  mcl_retry r;
  mcl_retry_init(&r, c);
  mica_err *e = mcl_master_call(c, &r, m, req, resp);
  mcl_retry_done(&r);
  return e;
}

static size_t str_size(const char *s) { return (s ? strlen(s) : 0) + 1; }

static const char *put_str(uint8_t **p, const char *s) {
  size_t n = str_size(s);
  memcpy(*p, s ? s : "", n);
  const char *out = (const char *)*p;
  *p += n;
  return out;
}

/* The infos of `w` as one allocation (caller frees with mica_free). */
static mica_snapshot_info *infos(const rpc_snapshot_info *w, size_t n) {
  size_t need = (n ? n : 1) * sizeof(mica_snapshot_info);
  for (size_t i = 0; i < n; i++)
    need += str_size(w[i].name) + str_size(w[i].table) + str_size(w[i].state);
  mica_snapshot_info *v = xcalloc(1, need);
  uint8_t *p = (uint8_t *)(v + (n ? n : 1));
  for (size_t i = 0; i < n; i++) {
    v[i].snapshot_id = w[i].snapshot_id;
    v[i].name = put_str(&p, w[i].name);
    v[i].table = put_str(&p, w[i].table);
    v[i].created_ms = w[i].created_ms;
    v[i].state = put_str(&p, w[i].state);
    v[i].tablets = w[i].tablets;
    v[i].files = w[i].files;
    v[i].bytes = w[i].bytes;
  }
  return v;
}

int mica_snapshot_create(mica_client *c, const char *table, const char *name,
                         mica_snapshot_info **info) {
  if (info != NULL) *info = NULL;
  mica_err *e = mcl_check_table(table);
  if (e != NULL) return mcl_finish(e);
  rpc_create_snapshot_request req = {0};
  req.table = table;
  req.name = name ? name : "";
  void *msg = NULL;
  e = master(c, &rpc_m_master_create_snapshot, &req, &msg);
  const rpc_create_snapshot_response *resp = msg;
  if (e == NULL && info != NULL && resp->snapshot != NULL)
    *info = infos(resp->snapshot, 1);
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_snapshot_list(mica_client *c, mica_snapshot_info **v, size_t *n) {
  *v = NULL;
  *n = 0;
  rpc_list_snapshots_request req = {0};
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_list_snapshots, &req, &msg);
  if (e == NULL) {
    const rpc_list_snapshots_response *resp = msg;
    *v = infos(resp->snapshots, resp->n_snapshots);
    *n = resp->n_snapshots;
  }
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_snapshot_drop(mica_client *c, const char *name) {
  rpc_drop_snapshot_request req = {0};
  req.name = name ? name : "";
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_drop_snapshot, &req, &msg);
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_snapshot_clone(mica_client *c, const char *snapshot,
                        const char *table) {
  mica_err *e = mcl_check_table(table);
  if (e != NULL) return mcl_finish(e);
  rpc_clone_snapshot_request req = {0};
  req.snapshot = snapshot ? snapshot : "";
  req.table = table;
  void *msg = NULL;
  e = master(c, &rpc_m_master_clone_snapshot, &req, &msg);
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_snapshot_export(mica_client *c, const char *name, const char *dest,
                         uint64_t *files, uint64_t *bytes) {
  rpc_export_snapshot_request req = {0};
  req.snapshot = name ? name : "";
  req.dest = dest ? dest : "";
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_export_snapshot, &req, &msg);
  const rpc_export_snapshot_response *resp = msg;
  if (files != NULL) *files = e == NULL ? resp->files : 0;
  if (bytes != NULL) *bytes = e == NULL ? resp->bytes : 0;
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_snapshot_restore(mica_client *c, const char *source,
                          const char *table, uint64_t *files,
                          uint64_t *bytes) {
  mica_err *e = mcl_check_table(table);
  if (e != NULL) return mcl_finish(e);
  rpc_restore_snapshot_request req = {0};
  req.source = source ? source : "";
  req.table = table;
  void *msg = NULL;
  e = master(c, &rpc_m_master_restore_snapshot, &req, &msg);
  const rpc_restore_snapshot_response *resp = msg;
  if (files != NULL) *files = e == NULL ? resp->files : 0;
  if (bytes != NULL) *bytes = e == NULL ? resp->bytes : 0;
  rpc_msg_free(msg);
  return mcl_finish(e);
}
