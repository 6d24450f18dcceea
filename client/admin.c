/* admin: table and cluster administration through the master.
 *
 * Each call is one master RPC (retried while the master is unreachable,
 * within the deadline). Lists come back to the caller as one allocation:
 * the array of structs first, then the strings and keys they point to, so
 * a single mica_free releases everything. Calls that change routing (create,
 * split, move, drop) feed what the master answered into the routing cache. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

/* Copies `n` bytes plus a NUL at *p and advances it. */
static const void *put_bytes(uint8_t **p, const void *d, size_t n) {
  uint8_t *at = *p;
  if (n > 0) memcpy(at, d, n);
  at[n] = 0;
  *p += n + 1;
  return at;
}

static const char *put_str(uint8_t **p, const char *s) {
  if (s == NULL) s = "";
  return put_bytes(p, s, strlen(s));
}

static size_t str_size(const char *s) { return (s ? strlen(s) : 0) + 1; }

static mica_err *master(mica_client *c, const rpc_method *m, const void *req,
                        void **resp) {
  mcl_retry r;
  mcl_retry_init(&r, c);
  mica_err *e = mcl_master_call(c, &r, m, req, resp);
  mcl_retry_done(&r);
  return e;
}

int mica_create_table(mica_client *c, const char *table, const mica_key *splits,
                      size_t n_splits) {
  return mica_create_table_opts(c, table, splits, n_splits, NULL);
}

int mica_create_table_opts(mica_client *c, const char *table,
                           const mica_key *splits, size_t n_splits,
                           const mica_table_options *opts) {
  rpc_table_options wo;
  mica_err *e = mcl_options_to_wire(opts, &wo);
  if (e == NULL) e = mcl_check_table(table);
  for (size_t i = 0; i < n_splits && e == NULL; i++)
    e = mcl_check_key(slice_make(splits[i].data, splits[i].len));
  if (e != NULL) return mcl_finish(e);
  rpc_create_table_request req = {0};
  req.name = table;
  slice *keys = xcalloc(n_splits ? n_splits : 1, sizeof *keys);
  for (size_t i = 0; i < n_splits; i++) {
    keys[i].data = (uint8_t *)splits[i].data;
    keys[i].len = splits[i].len;
  }
  req.n_split_keys = n_splits;
  req.split_keys = keys;
  req.options = &wo;
  void *msg = NULL;
  e = master(c, &rpc_m_master_create_table, &req, &msg);
  free(keys);
  if (e == NULL) {
    rpc_create_table_response *resp = (rpc_create_table_response *)msg;
    /* A table of the same name dropped earlier may linger in the cache. */
    route_cache_forget_table(c->cache, table);
    mcl_salt_forget(c, table);
    if (resp->table != NULL)
      mcl_salt_learn(c, table, wo.salt_buckets, resp->table->table_id);
    mcl_install_routes(c, table, resp->tablets, resp->n_tablets);
  }
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_drop_table(mica_client *c, const char *table) {
  mica_err *e = mcl_check_table(table);
  if (e != NULL) return mcl_finish(e);
  rpc_drop_table_request req = {0};
  req.name = table;
  void *msg = NULL;
  e = master(c, &rpc_m_master_drop_table, &req, &msg);
  rpc_msg_free(msg);
  route_cache_forget_table(c->cache, table);
  mcl_salt_forget(c, table);
  return mcl_finish(e);
}

int mica_list_tables(mica_client *c, mica_table_info **tables, size_t *n) {
  *tables = NULL;
  *n = 0;
  rpc_list_tables_request req = {0};
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_list_tables, &req, &msg);
  if (e != NULL) return mcl_finish(e);
  rpc_list_tables_response *resp = (rpc_list_tables_response *)msg;
  size_t cnt = resp->n_tables, need = cnt * sizeof(mica_table_info);
  for (size_t i = 0; i < cnt; i++)
    need += str_size(resp->tables[i].name) +
            str_size(resp->tables[i].options ? resp->tables[i].options->compression : "");
  mica_table_info *v = xmalloc(need ? need : 1);
  uint8_t *p = (uint8_t *)(v + cnt);
  for (size_t i = 0; i < cnt; i++) {
    const rpc_table_info *t = &resp->tables[i];
    v[i].table_id = t->table_id;
    v[i].name = put_str(&p, t->name);
    v[i].tablet_count = t->tablet_count;
    v[i].approx_bytes = t->approx_bytes;
    v[i].approx_keys = t->approx_keys;
    v[i].created_ms = t->created_ms;
    mcl_options_from_wire(t->options, &p, &v[i]);
  }
  rpc_msg_free(msg);
  *tables = v;
  *n = cnt;
  return mcl_finish(NULL);
}

static const char *tablet_state_name(int st) {
  switch (st) {
    case RPC_TABLET_UNASSIGNED: return "unassigned";
    case RPC_TABLET_OPENING: return "opening";
    case RPC_TABLET_SERVING: return "serving";
    case RPC_TABLET_CLOSING: return "closing";
    case RPC_TABLET_SPLIT: return "split";
    case RPC_TABLET_MERGED: return "merged";
    default: return "unknown";
  }
}

int mica_list_tablets(mica_client *c, const char *table, mica_tablet_info **tablets,
                      size_t *n) {
  *tablets = NULL;
  *n = 0;
  rpc_list_tablets_request req = {0};
  req.table = table ? table : "";
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_list_tablets, &req, &msg);
  if (e != NULL) return mcl_finish(e);
  rpc_list_tablets_response *resp = (rpc_list_tablets_response *)msg;
  size_t cnt = 0, need = 0;
  for (size_t i = 0; i < resp->n_tablets; i++) {
    const rpc_tablet_entry *t = &resp->tablets[i];
    if (t->desc == NULL) continue;
    cnt++;
    need += str_size(t->desc->table_name) + t->desc->start_key.len + 1 +
            t->desc->end_key.len + 1 +
            str_size(t->location ? t->location->address : NULL);
  }
  need += cnt * sizeof(mica_tablet_info);
  mica_tablet_info *v = xmalloc(need ? need : 1);
  uint8_t *p = (uint8_t *)(v + cnt);
  size_t k = 0;
  for (size_t i = 0; i < resp->n_tablets; i++) {
    const rpc_tablet_entry *t = &resp->tablets[i];
    if (t->desc == NULL) continue;
    mica_tablet_info *o = &v[k++];
    memset(o, 0, sizeof *o);
    o->tablet_id = t->desc->tablet_id;
    o->table_id = t->desc->table_id;
    o->table_name = put_str(&p, t->desc->table_name);
    o->start_key = put_bytes(&p, t->desc->start_key.data, t->desc->start_key.len);
    o->start_len = t->desc->start_key.len;
    o->end_key = put_bytes(&p, t->desc->end_key.data, t->desc->end_key.len);
    o->end_len = t->desc->end_key.len;
    o->range_epoch = t->desc->range_epoch;
    o->address = put_str(&p, t->location ? t->location->address : NULL);
    if (t->location != NULL) {
      o->server_id = t->location->server_id;
      o->assign_epoch = t->location->assign_epoch;
    }
    o->state = tablet_state_name(t->state);
    if (t->stats != NULL) {
      o->approx_bytes = t->stats->approx_bytes;
      o->approx_keys = t->stats->approx_keys;
    }
  }
  rpc_msg_free(msg);
  *tablets = v;
  *n = cnt;
  return mcl_finish(NULL);
}

/* Installs a route the master just reported, under its own table name. */
static void install_one(mica_client *c, rpc_tablet_route *t) {
  if (t != NULL && t->desc != NULL && t->desc->table_name != NULL &&
      t->desc->table_name[0] != '\0')
    mcl_install_routes(c, t->desc->table_name, t, 1);
}

int mica_split_tablet(mica_client *c, uint64_t tablet_id, const void *key, size_t key_len,
                      uint64_t daughters[2]) {
  if (daughters != NULL) daughters[0] = daughters[1] = 0;
  mica_err *e = NULL;
  if (key_len > 0) e = mcl_check_key(slice_make(key, key_len));
  if (e == NULL && tablet_id == 0) e = err_new(MICA_INVALID_ARGUMENT, "tablet id 0");
  if (e != NULL) return mcl_finish(e);
  rpc_split_tablet_request req = {0};
  req.tablet_id = tablet_id;
  req.split_key = slice_make(key, key_len);
  void *msg = NULL;
  e = master(c, &rpc_m_master_split_tablet, &req, &msg);
  if (e == NULL) {
    rpc_split_tablet_response *resp = (rpc_split_tablet_response *)msg;
    install_one(c, resp->left);
    install_one(c, resp->right);
    if (daughters != NULL) {
      daughters[0] = resp->left && resp->left->desc ? resp->left->desc->tablet_id : 0;
      daughters[1] = resp->right && resp->right->desc ? resp->right->desc->tablet_id : 0;
    }
  }
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_move_tablet(mica_client *c, uint64_t tablet_id, uint64_t server_id) {
  if (tablet_id == 0) return mcl_finish(err_new(MICA_INVALID_ARGUMENT, "tablet id 0"));
  rpc_move_tablet_request req = {0};
  req.tablet_id = tablet_id;
  req.target_server_id = server_id;
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_move_tablet, &req, &msg);
  if (e == NULL) install_one(c, ((rpc_move_tablet_response *)msg)->tablet);
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_balance(mica_client *c, int dry_run, mica_move **moves, size_t *n) {
  *moves = NULL;
  *n = 0;
  rpc_balance_request req = {0};
  req.dry_run = dry_run != 0;
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_balance, &req, &msg);
  if (e != NULL) return mcl_finish(e);
  rpc_balance_response *resp = (rpc_balance_response *)msg;
  size_t cnt = resp->n_moves, need = cnt * sizeof(mica_move);
  for (size_t i = 0; i < cnt; i++) need += str_size(resp->moves[i].reason);
  mica_move *v = xmalloc(need ? need : 1);
  uint8_t *p = (uint8_t *)(v + cnt);
  for (size_t i = 0; i < cnt; i++) {
    const rpc_planned_move *m = &resp->moves[i];
    v[i].tablet_id = m->tablet_id;
    v[i].from_server_id = m->from_server_id;
    v[i].to_server_id = m->to_server_id;
    v[i].reason = put_str(&p, m->reason);
    v[i].range_epoch = m->range_epoch;
    v[i].assign_epoch = m->assign_epoch;
  }
  rpc_msg_free(msg);
  *moves = v;
  *n = cnt;
  return mcl_finish(NULL);
}

int mica_balance_apply(mica_client *c, const mica_move *moves, size_t n) {
  if (n == 0)
    return mcl_finish(err_new(MICA_INVALID_ARGUMENT, "the plan has no moves"));
  rpc_balance_request req = {0};
  rpc_planned_move *v = xcalloc(n, sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    v[i].tablet_id = moves[i].tablet_id;
    v[i].from_server_id = moves[i].from_server_id;
    v[i].to_server_id = moves[i].to_server_id;
    v[i].reason = moves[i].reason ? moves[i].reason : "";
    v[i].range_epoch = moves[i].range_epoch;
    v[i].assign_epoch = moves[i].assign_epoch;
  }
  req.apply = v;
  req.n_apply = n;
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_balance, &req, &msg);
  free(v);
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_set_balancer_mode(mica_client *c, const char *mode, char *now) {
  rpc_configure_request req = {0};
  req.balancer_mode = mode ? mode : "";
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_configure, &req, &msg);
  if (e == NULL && now != NULL)
    snprintf(now, 16, "%s", ((rpc_configure_response *)msg)->balancer_mode);
  rpc_msg_free(msg);
  return mcl_finish(e);
}

int mica_drain_server(mica_client *c, uint64_t server_id, const char *address,
                      int undrain, uint64_t *server_id_out) {
  rpc_drain_server_request req = {0};
  req.server_id = server_id;
  req.address = address ? address : "";
  req.undrain = undrain != 0;
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_drain_server, &req, &msg);
  const rpc_drain_server_response *resp = msg;
  if (e == NULL && server_id_out != NULL)
    *server_id_out = resp->server ? resp->server->server_id : server_id;
  rpc_msg_free(msg);
  return mcl_finish(e);
}

static const char *server_state_name(int st) {
  switch (st) {
    case RPC_SERVER_LIVE: return "live";
    case RPC_SERVER_SUSPECT: return "suspect";
    case RPC_SERVER_DEAD: return "dead";
    default: return "unknown";
  }
}

int mica_list_servers(mica_client *c, int include_dead, mica_server_info **servers,
                      size_t *n) {
  *servers = NULL;
  *n = 0;
  rpc_list_servers_request req = {0};
  req.include_dead = include_dead != 0;
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_list_servers, &req, &msg);
  if (e != NULL) return mcl_finish(e);
  rpc_list_servers_response *resp = (rpc_list_servers_response *)msg;
  size_t cnt = resp->n_servers, need = cnt * sizeof(mica_server_info);
  for (size_t i = 0; i < cnt; i++) need += str_size(resp->servers[i].address);
  mica_server_info *v = xmalloc(need ? need : 1);
  uint8_t *p = (uint8_t *)(v + cnt);
  for (size_t i = 0; i < cnt; i++) {
    const rpc_server_info *s = &resp->servers[i];
    v[i].server_id = s->server_id;
    v[i].address = put_str(&p, s->address);
    v[i].state = server_state_name(s->state);
    v[i].lease_age_ms = s->lease_age_ms;
    v[i].tablet_count = s->tablet_count;
    v[i].approx_bytes = s->approx_bytes;
    v[i].read_rate = s->read_rate;
    v[i].write_rate = s->write_rate;
    v[i].draining = s->draining;
  }
  rpc_msg_free(msg);
  *servers = v;
  *n = cnt;
  return mcl_finish(NULL);
}

int mica_get_master_info(mica_client *c, mica_master_info **info) {
  *info = NULL;
  rpc_get_info_request req = {0};
  void *msg = NULL;
  mica_err *e = master(c, &rpc_m_master_get_info, &req, &msg);
  if (e != NULL) return mcl_finish(e);
  rpc_get_info_response *resp = (rpc_get_info_response *)msg;
  size_t need = sizeof(mica_master_info) + str_size(resp->version) +
                str_size(resp->rpc_address) + str_size(resp->http_address) +
                str_size(resp->cluster_name);
  mica_master_info *v = xmalloc(need);
  uint8_t *p = (uint8_t *)(v + 1);
  v->version = put_str(&p, resp->version);
  v->rpc_address = put_str(&p, resp->rpc_address);
  v->http_address = put_str(&p, resp->http_address);
  v->start_time_ms = resp->start_time_ms;
  v->cluster_name = put_str(&p, resp->cluster_name);
  rpc_msg_free(msg);
  *info = v;
  return mcl_finish(NULL);
}
