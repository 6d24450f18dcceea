/* ts_authz: the tables a tablet-server call touches, for callers whose
 * roles are per table (contract in ts_authz.h).
 *
 * A tablet id belongs to one table for ever, so the table named here
 * before the handler runs is the table the handler then acts on: the check
 * cannot race with an open, a split or a move. */
#include "tabletserver/server/ts_authz.h"

#include <inttypes.h>
#include <stdlib.h>

static mica_err *check_tablet(rpc_call *call, ts_server *s,
                              const rpc_tablet_ref *ref) {
  if (ref == NULL || ref->tablet_id == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tablet: a TabletRef with a non-zero tablet_id is required");
  char *table = ts_reg_table_of(s, ref->tablet_id);
  /* UNAVAILABLE, as the call's own status: clients forget the route and
   * ask the master (a NOT_SERVING here would reach them without the
   * routing answer they expect with it). */
  if (table == NULL)
    return err_new(MICA_UNAVAILABLE,
                   "tablet %" PRIu64 " is not served here; ask the master "
                   "for its route", ref->tablet_id);
  mica_err *e = rpc_call_check_table(call, table);
  free(table);
  return e;
}

mica_err *ts_table_check(rpc_call *call, const void *req, void *ctx) {
  ts_server *s = ctx;
  const rpc_method *m = rpc_call_method(call);
  if (m == &rpc_m_ts_get)
    return check_tablet(call, s, ((const rpc_get_request *)req)->tablet);
  if (m == &rpc_m_ts_put)
    return check_tablet(call, s, ((const rpc_put_request *)req)->tablet);
  if (m == &rpc_m_ts_delete)
    return check_tablet(call, s, ((const rpc_delete_request *)req)->tablet);
  if (m == &rpc_m_ts_batch)
    return check_tablet(call, s, ((const rpc_batch_request *)req)->tablet);
  if (m == &rpc_m_ts_scan)
    return check_tablet(call, s, ((const rpc_scan_request *)req)->tablet);
  if (m == &rpc_m_ts_multi_get) {
    const rpc_multi_get_request *r = req;
    for (size_t i = 0; i < r->n_parts; i++) {
      mica_err *e = check_tablet(call, s, r->parts[i].tablet);
      if (e != NULL) return e;
    }
    return NULL;
  }
  if (m == &rpc_m_ts_tablet_info) {
    const rpc_tablet_info_request *r = req;
    /* No ids: every tablet served here. */
    if (r->n_tablet_ids == 0) return rpc_call_check_table(call, NULL);
    for (size_t i = 0; i < r->n_tablet_ids; i++) {
      rpc_tablet_ref ref = {.tablet_id = r->tablet_ids[i]};
      mica_err *e = check_tablet(call, s, &ref);
      if (e != NULL) return e;
    }
    return NULL;
  }
  /* A table-scoped method this list does not know: closed. */
  return rpc_call_check_table(call, NULL);
}
