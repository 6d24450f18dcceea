/* msrv_balance: the Master service's Balance and DrainServer handlers
 * (declared in msrv_int.h, registered by mserver.c).
 *
 * Balance computes the balancer's plan (dry_run), runs it once, or carries
 * out an approved plan (`apply`) through ms_apply_plan, which checks every
 * move's preconditions first and makes none of them when one fails.
 * DrainServer marks a server draining or not and answers at once with the
 * server as ListServers shows it; `mica drain` polls ListServers for the
 * progress, and a tablet server stopping on SIGTERM calls it for itself.
 * Response messages live in a per-call arena. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/log.h"
#include "master/server/msrv_int.h"

static void *zalloc(arena *a, size_t n) {
  void *p = arena_alloc_aligned(a, n);
  memset(p, 0, n);
  return p;
}

static const char *dup_str(arena *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = arena_alloc(a, n);
  memcpy(p, s, n);
  return p;
}

static rpc_planned_move *moves_msg(arena *a, const ms_move *v, size_t n) {
  rpc_planned_move *out = zalloc(a, (n + 1) * sizeof(*out));
  for (size_t i = 0; i < n; i++) {
    out[i].tablet_id = v[i].tablet_id;
    out[i].from_server_id = v[i].from_server_id;
    out[i].to_server_id = v[i].to_server_id;
    out[i].reason = dup_str(a, v[i].reason);
    out[i].range_epoch = v[i].range_epoch;
    out[i].assign_epoch = v[i].assign_epoch;
  }
  return out;
}

/* The approved plan of a request, checked for what the wire cannot say. */
static mica_err *plan_of(const rpc_balance_request *r, ms_move **out) {
  ms_move *v = xcalloc(r->n_apply + 1, sizeof(*v));
  for (size_t i = 0; i < r->n_apply; i++) {
    const rpc_planned_move *p = &r->apply[i];
    if (p->tablet_id == 0 || p->from_server_id == 0 ||
        p->to_server_id == 0 || p->range_epoch == 0) {
      free(v);
      return err_new(MICA_INVALID_ARGUMENT, "move %zu of the plan lacks a "
                     "tablet, a server or its epochs (tablet %" PRIu64
                     ", from %" PRIu64 ", to %" PRIu64 ", range epoch %"
                     PRIu64 ")", i + 1, p->tablet_id, p->from_server_id,
                     p->to_server_id, p->range_epoch);
    }
    v[i].tablet_id = p->tablet_id;
    v[i].from_server_id = p->from_server_id;
    v[i].to_server_id = p->to_server_id;
    v[i].range_epoch = p->range_epoch;
    v[i].assign_epoch = p->assign_epoch;
    snprintf(v[i].reason, sizeof(v[i].reason), "%s", p->reason);
  }
  *out = v;
  return NULL;
}

void msrv_h_balance(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_balance_request *r = (const void *)req;
  ms_move *mv = NULL, *stale = NULL;
  size_t n = 0, n_stale = 0;
  bool applied = r->n_apply > 0 || !r->dry_run;
  mica_err *err;
  if (r->n_apply > 0) {
    err = plan_of(r, &mv);
    if (err == NULL) {
      n = r->n_apply;
      err = ms_apply_plan(s->core, mv, n, msrv_now(s), &stale, &n_stale);
      if (err != NULL) n = 0;
      LOG_I("approved plan of %zu moves: %s", r->n_apply,
            err ? err_msg(err) : "started");
    }
  } else {
    err = ms_balance(s->core, r->dry_run, msrv_now(s), &mv, &n);
  }
  arena *a = arena_new();
  rpc_balance_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  resp.moves = moves_msg(a, mv, n);
  resp.n_moves = n;
  resp.stale = moves_msg(a, stale, n_stale);
  resp.n_stale = n_stale;
  rpc_call_reply(call, &resp); /* frees the request */
  arena_free(a);
  free(mv);
  free(stale);
  err_free(err);
  if (applied) msrv_kick(s);
}

/* The id of the live server at `address`; NOT_FOUND naming it. */
static mica_err *server_by_address(msrv *s, const char *address,
                                   uint64_t *id) {
  ms_server_info *v = NULL;
  size_t n = 0;
  mica_err *err = ms_list_servers(s->core, false, msrv_now(s), &v, &n);
  *id = 0;
  for (size_t i = 0; i < n && err == NULL && *id == 0; i++)
    if (strcmp(v[i].address, address) == 0) *id = v[i].server_id;
  ms_server_infos_free(v, n);
  if (err == NULL && *id == 0) {
    buf b = BUF_INIT;
    size_t len = strlen(address);
    slice_escape(slice_make(address, len > 200 ? 200 : len), &b);
    err = err_new(MICA_NOT_FOUND, "no live server at \"%s\"",
                  b.data ? (char *)b.data : "");
    buf_free(&b);
  }
  return err;
}

void msrv_h_drain(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_drain_server_request *r = (const void *)req;
  uint64_t id = r->server_id;
  mica_err *err = NULL;
  if (id == 0 && r->address[0] == '\0')
    err = err_new(MICA_INVALID_ARGUMENT, "name the server to drain by id or "
                  "address");
  else if (id == 0)
    err = server_by_address(s, r->address, &id);
  ms_server_info *info = NULL;
  if (err == NULL)
    err = ms_drain(s->core, id, !r->undrain, msrv_now(s), &info);
  if (err == NULL)
    LOG_I("server %" PRIu64 " (%s) %s, %" PRIu32 " tablets on it", id,
          info->address, r->undrain ? "takes tablets again" : "draining",
          info->tablet_count);
  arena *a = arena_new();
  rpc_drain_server_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  if (info != NULL) {
    rpc_server_info *x = zalloc(a, sizeof(*x));
    x->server_id = info->server_id;
    x->address = dup_str(a, info->address);
    x->state = info->state;
    x->lease_age_ms = info->lease_age_ms;
    x->tablet_count = info->tablet_count;
    x->approx_bytes = info->bytes;
    x->read_rate = info->read_rate;
    x->write_rate = info->write_rate;
    x->registered_ms = info->registered_ms;
    x->http_address = dup_str(a, info->http_address);
    x->draining = info->draining;
    resp.server = x;
  }
  rpc_call_reply(call, &resp);
  arena_free(a);
  ms_server_infos_free(info, info ? 1 : 0);
  err_free(err);
  msrv_kick(s);
}
