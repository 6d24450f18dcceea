/* mauth: the master's client access table after start-up: the per-table
 * check of calls whose caller holds roles only on some tables, and the
 * re-reading of the tokens file (SIGHUP) that replaces the table here and,
 * through the next register or heartbeat reply, on every tablet server
 * (docs/security.md).
 *
 * Locking: s->access and s->access_wire are guarded by s->access_mu
 * (writers: msrv_reload_tokens; readers: the register and heartbeat
 * handlers, which hold it while their reply is encoded). The checker
 * s->auth swaps its own copy atomically. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "master/server/msrv_int.h"

/* The table of tablet `id`, or the refusal a caller gets when it cannot
 * be named (an unknown tablet is NOT_FOUND for anyone). */
static mica_err *check_tablet(msrv *s, rpc_call *call, uint64_t id) {
  ms_tablet t;
  memset(&t, 0, sizeof t);
  mica_err *e = ms_get_tablet(s->core, id, &t);
  if (e == NULL) e = rpc_call_check_table(call, t.table_name);
  ms_tablet_clear(&t);
  return e;
}

mica_err *msrv_table_check(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_method *m = rpc_call_method(call);
  if (m == &rpc_m_master_create_table)
    return rpc_call_check_table(
        call, ((const rpc_create_table_request *)req)->name);
  if (m == &rpc_m_master_drop_table)
    return rpc_call_check_table(call,
                                ((const rpc_drop_table_request *)req)->name);
  if (m == &rpc_m_master_alter_table)
    return rpc_call_check_table(
        call, ((const rpc_alter_table_request *)req)->table);
  if (m == &rpc_m_master_lookup_tablets)
    return rpc_call_check_table(
        call, ((const rpc_lookup_tablets_request *)req)->table);
  if (m == &rpc_m_master_list_tablets) {
    const char *t = ((const rpc_list_tablets_request *)req)->table;
    /* No table named: every table's tablets. */
    return rpc_call_check_table(call, t != NULL && t[0] != '\0' ? t : NULL);
  }
  if (m == &rpc_m_master_split_tablet)
    return check_tablet(s, call,
                        ((const rpc_split_tablet_request *)req)->tablet_id);
  if (m == &rpc_m_master_move_tablet)
    return check_tablet(s, call,
                        ((const rpc_move_tablet_request *)req)->tablet_id);
  if (m == &rpc_m_master_merge_tablets) {
    const rpc_merge_tablets_request *r = req;
    mica_err *e = check_tablet(s, call, r->left_tablet_id);
    return e != NULL ? e : check_tablet(s, call, r->right_tablet_id);
  }
  if (m == &rpc_m_master_create_snapshot ||
      m == &rpc_m_master_clone_snapshot || m == &rpc_m_master_drop_snapshot ||
      m == &rpc_m_master_export_snapshot ||
      m == &rpc_m_master_restore_snapshot)
    return msrv_snap_table_check(s, call, req);
  /* A table-scoped method this list does not know: closed. */
  return rpc_call_check_table(call, NULL);
}

mica_err *msrv_reload_tokens(msrv *s) {
  if (s->opt.tokens_file == NULL)
    return err_new(MICA_NOT_SUPPORTED,
                   "no --tokens file to re-read: client calls stay open");
  rpc_access *fresh = NULL;
  mica_err *e = rpc_access_load(s->opt.tokens_file, &fresh);
  if (e != NULL) return e;
  rpc_access_table wire;
  rpc_access_to_wire(fresh, &wire);
  rpc_access *copy = NULL;
  e = rpc_access_from_wire(&wire, &copy);
  if (e != NULL) {
    rpc_access_wire_free(&wire);
    rpc_access_free(fresh);
    return e;
  }
  size_t n = fresh->n;
  pthread_mutex_lock(&s->access_mu);
  rpc_access_table old_wire = s->access_wire;
  rpc_access *old = s->access;
  s->access_wire = wire;
  s->access = fresh;
  rpc_auth_set_access(s->auth, copy);
  pthread_mutex_unlock(&s->access_mu);
  rpc_access_wire_free(&old_wire);
  rpc_access_free(old);
  char what[160];
  snprintf(what, sizeof what, "tokens file re-read: %zu grants", n);
  ms_audit(s->core, "operator", what);
  return NULL;
}

void msrv_access_lock(msrv *s) { pthread_mutex_lock(&s->access_mu); }
void msrv_access_unlock(msrv *s) { pthread_mutex_unlock(&s->access_mu); }
