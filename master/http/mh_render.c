/* mh_render: the JSON documents and the Prometheus text, written from a
 * snapshot (ms_snapshot, master/snapshot.h) without any lock.
 *
 * Everything written is ASCII. Strings from the core (table names, server
 * addresses as the servers announced them, event texts) are not trusted
 * to be UTF-8, so every string value is the slice_escape form of its bytes:
 * printable ASCII as is, every other byte and the backslash as the four
 * characters \xNN (then JSON-quoted, so `"` becomes \" and the backslash
 * of \xNN becomes \\). Keys additionally travel as base64 of their exact
 * bytes. Rates come from heartbeats, so a non-finite figure is
 * written as 0 in JSON (which has no NaN) and as NaN/+Inf in Prometheus.
 * Field and metric names are the contract of docs/http-api.md. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/prom.h"
#include "common/s3/s3_client.h"
#include "master/http/mh_int.h"

/* Longest list of tablets in transition given in /api/cluster. */
#define MH_MAX_TRANSITIONS 200

static void out_f(buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_f(buf *out, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof(small)) {
    buf_append(out, small, (size_t)n);
    return;
  }
  buf_reserve(out, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf((char *)out->data + out->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  out->len += (size_t)n;
}

static void out_s(buf *out, const char *s) { buf_append(out, s, strlen(s)); }

/* Quotes printable ASCII (what slice_escape writes) as a JSON string. */
static void json_quote(buf *out, const uint8_t *p, size_t n) {
  buf_push(out, '"');
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '"' || p[i] == '\\') buf_push(out, '\\');
    buf_push(out, p[i]);
  }
  buf_push(out, '"');
}

static void json_escaped(buf *out, slice s) {
  buf esc = BUF_INIT;
  slice_escape(s, &esc);
  json_quote(out, esc.data, esc.len);
  buf_free(&esc);
}

void mh_json_str(buf *out, const char *s) {
  json_escaped(out, slice_from_str(s));
}

static void json_strn(buf *out, const char *s, size_t cap) {
  json_escaped(out, slice_make(s, strnlen(s, cap)));
}

void mh_base64(buf *out, slice s) {
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= s.len; i += 3) {
    uint32_t v = (uint32_t)s.data[i] << 16 | (uint32_t)s.data[i + 1] << 8 |
                 s.data[i + 2];
    char q[4] = {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
    buf_append(out, q, 4);
  }
  if (i < s.len) {
    uint32_t v = (uint32_t)s.data[i] << 16;
    if (i + 1 < s.len) v |= (uint32_t)s.data[i + 1] << 8;
    char q[4] = {a[v >> 18], a[(v >> 12) & 63],
                 i + 1 < s.len ? a[(v >> 6) & 63] : '=', '='};
    buf_append(out, q, 4);
  }
}

void mh_json_key(buf *out, const buf *key) {
  out_s(out, "{\"text\":");
  json_escaped(out, buf_slice(key));
  out_s(out, ",\"b64\":\"");
  mh_base64(out, buf_slice(key));
  out_s(out, "\"}");
}

static void json_num(buf *out, double v) {
  out_f(out, "%.3f", isfinite(v) ? v : 0.0);
}

static const char *srv_state_name(int state) {
  switch (state) {
    case MS_SERVER_LIVE: return "live";
    case MS_SERVER_SUSPECT: return "suspect";
    case MS_SERVER_DEAD: return "dead";
    default: return "unknown";
  }
}

static const char *srv_addr(const ms_snap *s, uint64_t id) {
  const ms_snap_srv *v = ms_snap_find_srv(s, id);
  return v ? v->address : "";
}

/* A dead server is worth a warning until another live server has taken
 * its address (a restarted process registers under a new id). */
static bool replaced(const ms_snap *s, const ms_snap_srv *dead) {
  for (size_t i = 0; i < s->n_srvs; i++)
    if (s->srvs[i].state != MS_SERVER_DEAD &&
        strcmp(s->srvs[i].address, dead->address) == 0)
      return true;
  return false;
}

static void warning(buf *out, bool *first, const char *kind, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static void warning(buf *out, bool *first, const char *kind, const char *fmt,
                    ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  out_s(out, *first ? "{\"kind\":" : ",{\"kind\":");
  *first = false;
  mh_json_str(out, kind);
  out_s(out, ",\"text\":");
  mh_json_str(out, text);
  out_s(out, "}");
}

static void tablet_fields(const ms_snap *s, const ms_snap_tab *t, buf *out) {
  out_f(out, "\"id\":%" PRIu64 ",\"start\":", t->id);
  mh_json_key(out, &t->start);
  out_s(out, ",\"end\":");
  mh_json_key(out, &t->end);
  out_f(out, ",\"range_epoch\":%" PRIu64 ",\"assign_epoch\":%" PRIu64
        ",\"state\":\"%s\",\"server_id\":%" PRIu64 ",\"server_address\":",
        t->range_epoch, t->assign_epoch, ms_tablet_state_name(t->state),
        t->server);
  mh_json_str(out, t->server ? srv_addr(s, t->server) : "");
  out_f(out, ",\"in_transition\":%s,\"transition\":",
        t->in_transition ? "true" : "false");
  mh_json_str(out, t->transition);
  out_f(out, ",\"failures\":%" PRIu32 ",\"has_stats\":%s,\"bytes\":%" PRIu64
        ",\"keys\":%" PRIu64 ",\"read_rate\":",
        t->failures, t->have_stats ? "true" : "false", t->stats.bytes,
        t->stats.keys);
  json_num(out, t->stats.read_rate);
  out_s(out, ",\"write_rate\":");
  json_num(out, t->stats.write_rate);
}

void mh_render_cluster(const ms_snap *s, const mh_ident *id, buf *out) {
  uint64_t bytes = 0, keys = 0, unassigned = 0, moving = 0, current = 0;
  for (size_t i = 0; i < s->n_tbls; i++) {
    bytes += s->tbls[i].bytes;
    keys += s->tbls[i].keys;
    unassigned += s->tbls[i].unassigned;
    moving += s->tbls[i].in_transition;
    current += s->tbls[i].n;
  }
  out_s(out, "{\"cluster\":");
  mh_json_str(out, id->cluster);
  out_s(out, ",\"master_address\":");
  mh_json_str(out, id->master_address);
  out_s(out, ",\"http_address\":");
  mh_json_str(out, id->http_address);
  out_s(out, ",\"role\":\"active\",\"ha\":"); /* mh_ha.c */
  mh_render_ha(id, out);
  out_f(out, ",\"rpc_tls\":%s,\"https\":%s,\"insecure\":",
        id->rpc_tls ? "true" : "false", id->https ? "true" : "false");
  if (id->insecure) mh_json_str(out, id->insecure);
  else out_s(out, "null");
  out_f(out, ",\"version\":\"%s\",\"now_ms\":%" PRIu64 ",\"uptime_s\":%"
        PRIu64 ",\"balancer\":%s,\"balancer_mode\":\"%s\",\"merges\":%s,"
        "\"in_grace\":%s,", MICA_VERSION, s->wall_ms, s->uptime_s,
        s->balancer_on ? "true" : "false",
        ms_balancer_mode_name(s->balancer_mode),
        s->merges_on ? "true" : "false", s->in_grace ? "true" : "false");
  out_f(out, "\"servers\":{\"live\":%" PRIu64 ",\"suspect\":%" PRIu64
        ",\"dead\":%" PRIu64 "},", s->servers_by_state[MS_SERVER_LIVE],
        s->servers_by_state[MS_SERVER_SUSPECT],
        s->servers_by_state[MS_SERVER_DEAD]);
  out_f(out, "\"tables\":%zu,\"tablets\":{\"current\":%" PRIu64 ","
        "\"in_transition\":%" PRIu64, s->n_tbls, current, moving);
  for (int st = MS_UNASSIGNED; st <= MS_MERGED; st++)
    out_f(out, ",\"%s\":%" PRIu64, ms_tablet_state_name(st),
          s->tablets_by_state[st]);
  out_f(out, "},\"bytes\":%" PRIu64 ",\"keys\":%" PRIu64
        ",\"actions_pending\":%" PRIu64 ",\"metalog\":{\"generation\":%"
        PRIu64 ",\"log_bytes\":%" PRIu64 "},\"warnings\":[",
        bytes, keys, s->actions_pending, s->log_generation, s->log_bytes);

  bool first = true;
  if (id->insecure)
    warning(out, &first, "insecure_plaintext", "started with --insecure: "
            "plaintext on a non-loopback address (%s); anyone on the network "
            "can read and change the traffic", id->insecure);
  uint64_t live = s->servers_by_state[MS_SERVER_LIVE];
  for (size_t i = 0; i < s->n_srvs; i++) {
    const ms_snap_srv *v = &s->srvs[i];
    if (v->state == MS_SERVER_DEAD && !replaced(s, v)) {
      char a[160];
      snprintf(a, sizeof(a), "%s", v->address);
      warning(out, &first, "server_down", "server %" PRIu64 " (%s) is dead",
              v->id, a);
    } else if (v->state == MS_SERVER_SUSPECT) {
      char a[160];
      snprintf(a, sizeof(a), "%s", v->address);
      warning(out, &first, "server_suspect", "server %" PRIu64 " (%s) has "
              "not renewed its lease for %" PRIu64 " ms", v->id, a,
              v->lease_age_ms);
    }
  }
  if (live == 0 && s->n_tbls > 0)
    warning(out, &first, "no_servers", "no live tablet server");
  if (unassigned > 0)
    warning(out, &first, "tablets_unassigned", "%" PRIu64 " tablets "
            "unassigned", unassigned);
  if (moving > unassigned)
    warning(out, &first, "tablets_in_transition", "%" PRIu64 " tablets "
            "opening, closing or moving", moving - unassigned);
  if (s->in_grace)
    warning(out, &first, "restart_grace", "master restarted: waiting for "
            "servers to re-register before assigning");
  if (s->balancer_mode == MS_BAL_OFF)
    warning(out, &first, "balancer_off", "balancer switched off");
  mh_balance_warnings(s, out, &first);
  if (!s->merges_on)
    warning(out, &first, "merges_off", "merges switched off");

  out_s(out, "],\"transitions\":[");
  size_t shown = 0;
  for (size_t i = 0; i < s->n_tbls && shown < MH_MAX_TRANSITIONS; i++) {
    const ms_snap_tbl *tb = &s->tbls[i];
    for (size_t j = 0; j < tb->n_copied && shown < MH_MAX_TRANSITIONS; j++) {
      const ms_snap_tab *t = &s->tabs[tb->first + j];
      if (!t->in_transition) continue;
      out_s(out, shown++ ? ",{\"table\":" : "{\"table\":");
      mh_json_str(out, tb->name);
      out_s(out, ",");
      tablet_fields(s, t, out);
      out_s(out, "}");
    }
  }
  out_f(out, "],\"transitions_truncated\":%s}\n",
        moving > shown ? "true" : "false");
}

void mh_render_servers(const ms_snap *s, buf *out) {
  out_s(out, "{\"servers\":[");
  for (size_t i = 0; i < s->n_srvs; i++) {
    const ms_snap_srv *v = &s->srvs[i];
    out_f(out, "%s{\"id\":%" PRIu64 ",\"address\":", i ? "," : "", v->id);
    mh_json_str(out, v->address);
    out_s(out, ",\"http_address\":");
    mh_json_str(out, v->http_address);
    out_f(out, ",\"state\":\"%s\",\"lease_age_ms\":%" PRIu64
          ",\"last_heartbeat_ms\":", srv_state_name(v->state),
          v->lease_age_ms);
    if (v->heartbeat_seen) out_f(out, "%" PRIu64, v->last_heartbeat_ms);
    else out_s(out, "null");
    out_f(out, ",\"registered_ms\":%" PRIu64 ",\"tablets\":%" PRIu32
          ",\"bytes\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"read_rate\":",
          v->registered_ms, v->tablets, v->bytes, v->keys);
    json_num(out, v->read_rate);
    out_s(out, ",\"write_rate\":");
    json_num(out, v->write_rate);
    out_s(out, ",\"load\":");
    json_num(out, v->read_rate + v->write_rate);
    out_f(out, ",\"draining\":%s,\"hot\":%s", v->draining ? "true" : "false",
          v->hot ? "true" : "false");
    out_f(out, ",\"splits\":%" PRIu64 "}", v->splits);
  }
  out_s(out, "]}\n");
}

static void table_fields(const ms_snap_tbl *t, buf *out) {
  out_f(out, "\"id\":%" PRIu64 ",\"name\":", t->id);
  mh_json_str(out, t->name);
  out_f(out, ",\"created_ms\":%" PRIu64 ",\"tablets\":%zu,\"bytes\":%" PRIu64
        ",\"keys\":%" PRIu64 ",\"read_rate\":", t->created_ms, t->n,
        t->bytes, t->keys);
  json_num(out, t->read_rate);
  out_s(out, ",\"write_rate\":");
  json_num(out, t->write_rate);
  out_f(out, ",\"in_transition\":%" PRIu64 ",\"splits\":%" PRIu64
        ",\"merges\":%" PRIu64 ",\"assignments\":%" PRIu64,
        t->in_transition, t->splits, t->merges, t->assignments);
  out_s(out, ",\"options\":");
  mh_render_opts(&t->opts, out);
}

void mh_render_tables(const ms_snap *s, buf *out) {
  out_s(out, "{\"tables\":[");
  for (size_t i = 0; i < s->n_tbls; i++) {
    out_s(out, i ? ",{" : "{");
    table_fields(&s->tbls[i], out);
    out_s(out, "}");
  }
  out_s(out, "]}\n");
}

void mh_render_tablets(const ms_snap *s, const ms_snap_tbl *t, buf *out) {
  out_s(out, "{\"table\":{");
  table_fields(t, out);
  out_s(out, "},\"tablets\":[");
  for (size_t i = 0; i < t->n_copied; i++) {
    out_s(out, i ? ",{" : "{");
    tablet_fields(s, &s->tabs[t->first + i], out);
    mh_render_unsalted(&s->tabs[t->first + i], t->opts.salt_buckets, out);
    out_s(out, "}");
  }
  out_s(out, "]}\n");
}

void mh_render_events(const ms_snap *s, size_t limit, buf *out) {
  size_t n = limit && limit < s->n_events ? limit : s->n_events;
  out_s(out, "{\"events\":[");
  for (size_t i = 0; i < n; i++) {
    const ms_event *e = &s->events[i];
    out_f(out, "%s{\"time_ms\":%" PRIu64 ",\"kind\":", i ? "," : "",
          e->time_ms);
    json_strn(out, e->kind, sizeof(e->kind));
    out_s(out, ",\"text\":");
    json_strn(out, e->text, sizeof(e->text));
    out_f(out, ",\"tablet_id\":%" PRIu64 ",\"server_id\":%" PRIu64 "}",
          e->tablet_id, e->server_id);
  }
  out_s(out, "]}\n");
}

/* ---- Prometheus text format (version 0.0.4) ---- */

static void srv_labels(buf *out, const ms_snap_srv *v) {
  prom_label_u(out, "server_id", v->id);
  prom_label(out, "address", v->address);
}

static void tbl_labels(buf *out, const ms_snap_tbl *t) {
  prom_label(out, "table", t->name);
}

/* Per-server metric `name` with the value chosen by `which`. */
enum { SV_UP, SV_LEASE, SV_TABLETS, SV_BYTES, SV_KEYS, SV_READS, SV_WRITES,
       SV_SPLITS, SV_LOAD, SV_DRAINING, SV_HOT };

static double srv_value(const ms_snap_srv *v, int which) {
  switch (which) {
    case SV_UP: return v->state == MS_SERVER_LIVE ? 1 : 0;
    case SV_LEASE: return (double)v->lease_age_ms / 1000.0;
    case SV_TABLETS: return v->tablets;
    case SV_BYTES: return (double)v->bytes;
    case SV_KEYS: return (double)v->keys;
    case SV_READS: return v->read_rate;
    case SV_WRITES: return v->write_rate;
    case SV_LOAD: return v->read_rate + v->write_rate;
    case SV_DRAINING: return v->draining;
    case SV_HOT: return v->hot;
    default: return (double)v->splits;
  }
}

enum { TB_TABLETS, TB_BYTES, TB_KEYS, TB_READS, TB_WRITES, TB_MOVING,
       TB_SPLITS, TB_MERGES, TB_ASSIGN };

static double tbl_value(const ms_snap_tbl *t, int which) {
  switch (which) {
    case TB_TABLETS: return (double)t->n;
    case TB_BYTES: return (double)t->bytes;
    case TB_KEYS: return (double)t->keys;
    case TB_READS: return t->read_rate;
    case TB_WRITES: return t->write_rate;
    case TB_MOVING: return (double)t->in_transition;
    case TB_SPLITS: return (double)t->splits;
    case TB_MERGES: return (double)t->merges;
    default: return (double)t->assignments;
  }
}

void mh_render_metrics(const ms_snap *s, const mh_ident *id,
                       const uint64_t by_class[6], buf *out) {
  prom_head(out, "mica_master_info", "gauge",
            "Always 1; labels name the version, cluster and RPC address.");
  prom_sample_begin(out, "mica_master_info");
  prom_label(out, "version", MICA_VERSION);
  prom_label(out, "cluster", id->cluster);
  prom_label(out, "address", id->master_address);
  prom_sample_end_u(out, 1);
  prom_gauge(out, "mica_master_uptime_seconds", s->uptime_s,
             "Seconds since the master started.");
  mh_render_ha_metrics(id, out); /* mh_ha.c */
  prom_gauge(out, "mica_master_in_grace", s->in_grace,
             "1 while the restart grace period lasts.");
  prom_gauge(out, "mica_master_balancer_enabled", s->balancer_on,
             "1 when automatic balancing is on.");
  prom_gauge(out, "mica_master_merges_enabled", s->merges_on,
             "1 when automatic merges are on.");
  mh_balance_metrics(s, out);
  s3_render_metrics(out); /* requests to S3 by kind (0 on POSIX) */
  prom_head(out, "mica_master_servers", "gauge",
            "Tablet servers known to the master, by state.");
  for (int st = MS_SERVER_LIVE; st <= MS_SERVER_DEAD; st++)
    out_f(out, "mica_master_servers{state=\"%s\"} %" PRIu64 "\n",
          srv_state_name(st), s->servers_by_state[st]);
  prom_gauge(out, "mica_master_tables", s->n_tbls, "Live tables.");
  prom_head(out, "mica_master_tablets", "gauge",
            "Tablets of live tables by state, retired (split, merged) "
            "ones included.");
  for (int st = MS_UNASSIGNED; st <= MS_MERGED; st++)
    out_f(out, "mica_master_tablets{state=\"%s\"} %" PRIu64 "\n",
          ms_tablet_state_name(st), s->tablets_by_state[st]);
  uint64_t moving = 0;
  for (size_t i = 0; i < s->n_tbls; i++) moving += s->tbls[i].in_transition;
  prom_gauge(out, "mica_master_tablets_in_transition", moving,
             "Current tablets not serving steadily (unassigned, opening, "
             "closing or moving).");
  prom_gauge(out, "mica_master_actions_pending", s->actions_pending,
             "OpenTablet/CloseTablet/delete actions queued or in flight.");
  prom_gauge(out, "mica_master_metalog_bytes", s->log_bytes,
             "Bytes in the current metadata log file.");
  prom_gauge(out, "mica_master_metalog_generation", s->log_generation,
             "Generation of the metadata log (grows by one per snapshot).");
  prom_head(out, "mica_master_http_responses_total", "counter",
            "HTTP responses sent by this master, by status class.");
  for (int c = 1; c <= 5; c++)
    out_f(out, "mica_master_http_responses_total{code=\"%dxx\"} %" PRIu64
          "\n", c, by_class[c]);
  prom_gauge(out, "mica_master_heat_tablets", s->heat_tracked,
             "Tablets the load history follows (docs/hotspots.md).");
  prom_counter(out, "mica_master_heat_dropped_total", s->heat_dropped,
               "Heartbeat reports the load history left out at a bound.");

  static const struct {
    const char *name, *type, *help;
  } sv[] = {
      {"mica_server_up", "gauge", "1 when the server's lease is current."},
      {"mica_server_lease_age_seconds", "gauge",
       "Seconds since the master received the server's last renewal."},
      {"mica_server_tablets", "gauge", "Tablets placed on the server."},
      {"mica_server_bytes", "gauge", "Bytes of its tablets (heartbeat)."},
      {"mica_server_keys", "gauge", "Keys of its tablets (heartbeat)."},
      {"mica_server_reads_per_second", "gauge",
       "Reads per second over its tablets (heartbeat)."},
      {"mica_server_writes_per_second", "gauge",
       "Writes per second over its tablets (heartbeat)."},
      {"mica_server_splits_total", "counter",
       "Splits of tablets the server held, over live tables."},
      {"mica_server_load_ops_per_second", "gauge",
       "Reads plus writes per second over its tablets: the load the "
       "balancer weighs."},
      {"mica_server_draining", "gauge",
       "1 while the server is draining (takes no tablets)."},
      {"mica_server_hot", "gauge",
       "1 when its load is above the mean by the balance band."},
  };
  for (int w = 0; w < (int)(sizeof(sv) / sizeof(sv[0])); w++) {
    prom_head(out, sv[w].name, sv[w].type, sv[w].help);
    for (size_t i = 0; i < s->n_srvs; i++) {
      prom_sample_begin(out, sv[w].name);
      srv_labels(out, &s->srvs[i]);
      prom_sample_end(out, srv_value(&s->srvs[i], w));
    }
  }

  static const struct {
    const char *name, *type, *help;
  } tv[] = {
      {"mica_table_tablets", "gauge", "Current tablets of the table."},
      {"mica_table_bytes", "gauge", "Bytes of the table (heartbeats)."},
      {"mica_table_keys", "gauge", "Keys of the table (heartbeats)."},
      {"mica_table_reads_per_second", "gauge",
       "Reads per second over the table (heartbeats)."},
      {"mica_table_writes_per_second", "gauge",
       "Writes per second over the table (heartbeats)."},
      {"mica_table_tablets_in_transition", "gauge",
       "Current tablets of the table not serving steadily."},
      {"mica_table_splits_total", "counter", "Splits committed."},
      {"mica_table_merges_total", "counter", "Merges committed."},
      {"mica_table_assignments_total", "counter",
       "Placements of its tablets on servers (first assignments, moves, "
       "reassignments after failures; a split daughter counts one)."},
  };
  for (int w = 0; w < (int)(sizeof(tv) / sizeof(tv[0])); w++) {
    prom_head(out, tv[w].name, tv[w].type, tv[w].help);
    for (size_t i = 0; i < s->n_tbls; i++) {
      prom_sample_begin(out, tv[w].name);
      tbl_labels(out, &s->tbls[i]);
      prom_sample_end(out, tbl_value(&s->tbls[i], w));
    }
  }
}
