/* route: the owned tablet route and its conversions (route.h). */
#include <stdlib.h>
#include <string.h>

#include "proto/limits.h"
#include "proto/route.h"

void rpc_route_clear(rpc_route *r) {
  if (r == NULL) return;
  free(r->table_name);
  buf_free(&r->start_key);
  buf_free(&r->end_key);
  free(r->address);
  memset(r, 0, sizeof(*r));
}

void rpc_route_copy(rpc_route *dst, const rpc_route *src) {
  *dst = *src;
  memset(&dst->start_key, 0, sizeof(buf));
  memset(&dst->end_key, 0, sizeof(buf));
  buf_append(&dst->start_key, src->start_key.data, src->start_key.len);
  buf_append(&dst->end_key, src->end_key.data, src->end_key.len);
  dst->table_name = src->table_name ? xstrdup(src->table_name) : NULL;
  dst->address = src->address ? xstrdup(src->address) : NULL;
}

bool rpc_route_contains(const rpc_route *r, slice key) {
  return slice_cmp(buf_slice(&r->start_key), key) <= 0 &&
         (r->end_key.len == 0 || slice_cmp(key, buf_slice(&r->end_key)) < 0);
}

void rpc_route_from_desc(rpc_route *out, const rpc_tablet_descriptor *w,
                         uint64_t assign_epoch) {
  memset(out, 0, sizeof *out);
  out->tablet_id = w->tablet_id;
  out->table_id = w->table_id;
  out->table_name = xstrdup(w->table_name ? w->table_name : "");
  buf_append(&out->start_key, w->start_key.data, w->start_key.len);
  buf_append(&out->end_key, w->end_key.data, w->end_key.len);
  out->range_epoch = w->range_epoch;
  out->assign_epoch = assign_epoch;
}

void rpc_route_from_wire(rpc_route *out, const rpc_tablet_route *w) {
  memset(out, 0, sizeof *out);
  if (w->desc != NULL) rpc_route_from_desc(out, w->desc, 0);
  const rpc_location *l = w->location;
  if (l != NULL && l->address != NULL && l->address[0] != '\0') {
    out->server_id = l->server_id;
    out->assign_epoch = l->assign_epoch;
    out->address = xstrdup(l->address);
  }
}

void rpc_route_desc(const rpc_route *r, rpc_tablet_descriptor *out) {
  memset(out, 0, sizeof *out);
  out->tablet_id = r->tablet_id;
  out->table_id = r->table_id;
  out->table_name = r->table_name;
  out->start_key = buf_slice(&r->start_key);
  out->end_key = buf_slice(&r->end_key);
  out->range_epoch = r->range_epoch;
}

rpc_tablet_route *rpc_route_to_wire(const rpc_route *r, bool with_location,
                                    rpc_route_wire *w) {
  memset(w, 0, sizeof *w);
  rpc_route_desc(r, &w->desc);
  w->route.desc = &w->desc;
  if (with_location && r->address != NULL) {
    w->loc.server_id = r->server_id;
    w->loc.address = r->address;
    w->loc.assign_epoch = r->assign_epoch;
    w->route.location = &w->loc;
  }
  return &w->route;
}

mica_err *rpc_check_desc(const rpc_tablet_descriptor *w, const char *what) {
  if (w == NULL || w->tablet_id == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "%s: a descriptor with a non-zero tablet_id is required",
                   what);
  if (w->start_key.len > MICA_MAX_KEY || w->end_key.len > MICA_MAX_KEY)
    return err_new(MICA_INVALID_ARGUMENT,
                   "%s: range bounds are keys of at most %u bytes", what,
                   MICA_MAX_KEY);
  if (w->end_key.len > 0 && slice_cmp(w->start_key, w->end_key) >= 0)
    return err_new(MICA_INVALID_ARGUMENT, "%s: start_key must be below end_key",
                   what);
  return NULL;
}
