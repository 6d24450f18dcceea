/* mh_ha: the master's high-availability state over HTTP (docs/ha.md,
 * docs/http-api.md): the "ha" object of /api/cluster, the HA metrics, and
 * what a standby serves instead of the cluster's state.
 *
 * A standby holds no cluster state (no log, no servers, no tablets), so it
 * shows only what it knows for sure: itself, the election as ZooKeeper
 * publishes it, and its ZooKeeper session. Everything else points to the
 * active master. Strings go through mh_json_str / prom_label, like every
 * other string the master renders. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/prom.h"
#include "master/http/mh_int.h"

static const char *role_of(const mh_ident *id) {
  if (id->ha == NULL) return "single";
  return id->standby ? "standby" : "active";
}

/* The epoch shown: this master's own when active, else the active one's
 * as published (0 when none is). */
static uint64_t epoch_of(const mh_ident *id) {
  if (!id->standby) return id->master_epoch;
  return id->ha->have_active ? id->ha->active.epoch : 0;
}

static void member(buf *out, const char *rpc, const char *http) {
  mh_out_s(out, "{\"rpc\":");
  mh_json_str(out, rpc);
  mh_out_s(out, ",\"http\":");
  mh_json_str(out, http);
  mh_out_s(out, "}");
}

static void active_obj(const mh_ident *id, buf *out) {
  if (id->ha == NULL) {
    mh_out_s(out, "{\"rpc\":");
    mh_json_str(out, id->master_address);
    mh_out_s(out, ",\"http\":");
    mh_json_str(out, id->http_address);
    mh_out_s(out, ",\"epoch\":");
    mh_out_u(out, id->master_epoch);
    mh_out_s(out, "}");
    return;
  }
  const mzk_view *v = id->ha;
  if (!v->have_active) {
    mh_out_s(out, "null");
    return;
  }
  mh_out_s(out, "{\"rpc\":");
  mh_json_str(out, v->active.rpc_addr);
  mh_out_s(out, ",\"http\":");
  /* This master's own HTTP address is known first hand. */
  mh_json_str(out, !id->standby && v->active.http_addr[0] == '\0'
                       ? id->http_address : v->active.http_addr);
  mh_out_s(out, ",\"epoch\":");
  mh_out_u(out, v->active.epoch);
  mh_out_s(out, "}");
}

void mh_render_ha(const mh_ident *id, buf *out) {
  mh_out_s(out, "{\"role\":\"");
  mh_out_s(out, role_of(id));
  mh_out_s(out, "\",\"epoch\":");
  mh_out_u(out, epoch_of(id));
  mh_out_s(out, ",\"self\":");
  member(out, id->master_address, id->http_address);
  mh_out_s(out, ",\"active\":");
  active_obj(id, out);
  mh_out_s(out, ",\"standbys\":[");
  const mzk_view *v = id->ha;
  for (size_t i = 0; v != NULL && i < v->n_shown; i++) {
    if (i) buf_push(out, ',');
    member(out, v->standbys[i].rpc_addr, v->standbys[i].http_addr);
  }
  mh_out_s(out, "],\"standbys_total\":");
  mh_out_u(out, v ? v->n_standbys : 0);
  mh_out_s(out, ",\"standbys_known\":");
  mh_out_s(out, v == NULL || v->standbys_known ? "true" : "false");
  mh_out_s(out, ",\"zookeeper\":");
  if (v == NULL) {
    mh_out_s(out, "null}");
    return;
  }
  mh_out_s(out, "{\"session\":\"");
  mh_out_s(out, mzk_session_state_name(v->session));
  mh_out_s(out, "\",\"session_timeout_ms\":");
  mh_out_u(out, (uint64_t)(v->session_timeout_ms > 0 ? v->session_timeout_ms : 0));
  char sid[32];
  snprintf(sid, sizeof sid, "0x%" PRIx64, (uint64_t)v->session_id);
  mh_out_s(out, ",\"session_id\":\"");
  mh_out_s(out, sid);
  mh_out_s(out, "\"}}");
}

void mh_render_ha_metrics(const mh_ident *id, buf *out) {
  const mzk_view *v = id->ha;
  prom_gauge(out, "mica_master_active", id->standby ? 0 : 1,
             "1 when this process is the active master, 0 on a standby.");
  prom_gauge(out, "mica_master_epoch", epoch_of(id),
             "Master epoch: this master's when active, else the active "
             "master's as published in ZooKeeper (0: none).");
  prom_gauge(out, "mica_master_standbys", v ? v->n_standbys : 0,
             "Standby masters seen in ZooKeeper.");
  prom_head(out, "mica_master_peer_info", "gauge",
            "Always 1; one sample per master of the election (role, RPC "
            "and HTTP addresses).");
  if (v == NULL || v->have_active) {
    prom_sample_begin(out, "mica_master_peer_info");
    prom_label(out, "role", "active");
    prom_label(out, "address", v ? v->active.rpc_addr : id->master_address);
    prom_label(out, "http", v && (id->standby || v->active.http_addr[0])
                                ? v->active.http_addr : id->http_address);
    prom_sample_end_u(out, 1);
  }
  for (size_t i = 0; v != NULL && i < v->n_shown; i++) {
    prom_sample_begin(out, "mica_master_peer_info");
    prom_label(out, "role", "standby");
    prom_label(out, "address", v->standbys[i].rpc_addr);
    prom_label(out, "http", v->standbys[i].http_addr);
    prom_sample_end_u(out, 1);
  }
  if (v == NULL) return;
  prom_head(out, "mica_master_zk_session_state", "gauge",
            "1 for the state the ZooKeeper session of the election is in.");
  static const mzk_session_state st[] = {
      MZK_SESSION_CONNECTED, MZK_SESSION_CONNECTING, MZK_SESSION_EXPIRED};
  for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
    prom_sample_begin(out, "mica_master_zk_session_state");
    prom_label(out, "state", mzk_session_state_name(st[i]));
    prom_sample_end_u(out, v->session == st[i]);
  }
  prom_head(out, "mica_master_zk_session_timeout_seconds", "gauge",
            "ZooKeeper session timeout (granted; asked before a session).");
  prom_sample_begin(out, "mica_master_zk_session_timeout_seconds");
  prom_sample_end(out, v->session_timeout_ms / 1000.0);
}

void mh_render_standby_cluster(const mh_ident *id, uint64_t uptime_s,
                               uint64_t wall_ms, buf *out) {
  mh_out_s(out, "{\"cluster\":");
  mh_json_str(out, id->cluster);
  mh_out_s(out, ",\"role\":\"standby\",\"master_address\":");
  mh_json_str(out, id->master_address);
  mh_out_s(out, ",\"http_address\":");
  mh_json_str(out, id->http_address);
  char t[160];
  snprintf(t, sizeof t, ",\"version\":\"%s\",\"now_ms\":%" PRIu64
           ",\"uptime_s\":%" PRIu64 ",\"ha\":", MICA_VERSION, wall_ms,
           uptime_s);
  mh_out_s(out, t);
  mh_render_ha(id, out);
  mh_out_s(out, "}\n");
}

void mh_render_standby_metrics(const mh_ident *id, uint64_t uptime_s,
                               const uint64_t by_class[6], buf *out) {
  prom_head(out, "mica_master_info", "gauge",
            "Always 1; labels name the version, cluster and RPC address.");
  prom_sample_begin(out, "mica_master_info");
  prom_label(out, "version", MICA_VERSION);
  prom_label(out, "cluster", id->cluster);
  prom_label(out, "address", id->master_address);
  prom_sample_end_u(out, 1);
  prom_gauge(out, "mica_master_uptime_seconds", uptime_s,
             "Seconds since the master started.");
  mh_render_ha_metrics(id, out);
  prom_head(out, "mica_master_http_responses_total", "counter",
            "HTTP responses sent by this master, by status class.");
  for (int c = 1; c <= 5; c++) {
    char code[8];
    snprintf(code, sizeof code, "%dxx", c);
    prom_sample_begin(out, "mica_master_http_responses_total");
    prom_label(out, "code", code);
    prom_sample_end_u(out, by_class[c]);
  }
}

void mh_render_standby_refusal(const mh_ident *id, buf *out) {
  const mzk_view *v = id->ha;
  char msg[3 * MZK_ADDR_MAX + 160];
  if (v != NULL && v->have_active)
    snprintf(msg, sizeof msg, "master %s is a standby and has no cluster "
             "state; the active master is %s (epoch %" PRIu64 ", http %s)",
             id->master_address, v->active.rpc_addr, v->active.epoch,
             v->active.http_addr[0] ? v->active.http_addr : "none");
  else
    snprintf(msg, sizeof msg, "master %s is a standby and has no cluster "
             "state; no master is active yet", id->master_address);
  mh_out_s(out, "{\"error\":");
  mh_json_str(out, msg);
  mh_out_s(out, ",\"active_master\":");
  active_obj(id, out);
  mh_out_s(out, "}\n");
}
