/* mh_balance: the balancer on the master's HTTP side (mh_int.h).
 *
 * GET /api/balance:
 *   {"mode":"suggest","suggested_at_ms":1700000000000,
 *    "moves":[{"tablet_id":7,"from_server_id":1,"to_server_id":3,
 *              "range_epoch":2,"assign_epoch":4,"reason":"..."}],
 *    "servers":[{"id":1,"load":900.000,"tablets":4,"draining":false,
 *                "hot":true}]}
 * `moves` is the plan the balancer proposes in suggest mode (empty in the
 * other modes; `mica balance --plan` asks for a fresh one), in the form
 * `mica balance --apply` takes. `suggested_at_ms` is null when there is
 * none. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/prom.h"
#include "master/http/mh_int.h"

static void num(buf *out, double v) {
  char b[48];
  int n = snprintf(b, sizeof(b), "%.3f", isfinite(v) ? v : 0.0);
  buf_append(out, b, (size_t)n);
}

static void put(buf *out, const char *s) { buf_append(out, s, strlen(s)); }

static void putu(buf *out, const char *name, uint64_t v) {
  char b[96];
  int n = snprintf(b, sizeof(b), "\"%s\":%" PRIu64, name, v);
  buf_append(out, b, (size_t)n);
}

void mh_render_balance(const ms_snap *s, buf *out) {
  put(out, "{\"mode\":\"");
  put(out, ms_balancer_mode_name(s->balancer_mode));
  put(out, "\",\"suggested_at_ms\":");
  if (s->suggested_at_ms != 0) {
    char b[32];
    snprintf(b, sizeof(b), "%" PRIu64, s->suggested_at_ms);
    put(out, b);
  } else {
    put(out, "null");
  }
  put(out, ",\"moves\":[");
  for (size_t i = 0; i < s->n_suggested; i++) {
    const ms_move *m = &s->suggested[i];
    put(out, i ? ",{" : "{");
    putu(out, "tablet_id", m->tablet_id);
    put(out, ",");
    putu(out, "from_server_id", m->from_server_id);
    put(out, ",");
    putu(out, "to_server_id", m->to_server_id);
    put(out, ",");
    putu(out, "range_epoch", m->range_epoch);
    put(out, ",");
    putu(out, "assign_epoch", m->assign_epoch);
    put(out, ",\"reason\":");
    mh_json_str(out, m->reason);
    put(out, "}");
  }
  put(out, "],\"servers\":[");
  bool first = true;
  for (size_t i = 0; i < s->n_srvs; i++) {
    const ms_snap_srv *v = &s->srvs[i];
    if (v->state == MS_SERVER_DEAD) continue;
    put(out, first ? "{" : ",{");
    first = false;
    putu(out, "id", v->id);
    put(out, ",\"load\":");
    num(out, v->read_rate + v->write_rate);
    put(out, ",");
    putu(out, "tablets", v->tablets);
    put(out, v->draining ? ",\"draining\":true" : ",\"draining\":false");
    put(out, v->hot ? ",\"hot\":true}" : ",\"hot\":false}");
  }
  put(out, "]}\n");
}

void mh_balance_warnings(const ms_snap *s, buf *out, bool *first) {
  for (size_t i = 0; i < s->n_srvs; i++) {
    const ms_snap_srv *v = &s->srvs[i];
    if (v->state == MS_SERVER_DEAD || (!v->draining && !v->hot)) continue;
    char text[256];
    if (v->draining)
      snprintf(text, sizeof(text), "server %" PRIu64 " is draining: %" PRIu32
               " tablets left", v->id, v->tablets);
    else
      snprintf(text, sizeof(text), "server %" PRIu64 " is hot: %.0f ops/s",
               v->id, v->read_rate + v->write_rate);
    put(out, *first ? "{\"kind\":" : ",{\"kind\":");
    *first = false;
    mh_json_str(out, v->draining ? "server_draining" : "server_hot");
    put(out, ",\"text\":");
    mh_json_str(out, text);
    put(out, "}");
  }
  if (s->balancer_mode == MS_BAL_SUGGEST && s->n_suggested > 0) {
    char text[128];
    snprintf(text, sizeof(text), "the balancer suggests %zu moves (mica "
             "balance --plan, then --apply)", s->n_suggested);
    put(out, *first ? "{\"kind\":" : ",{\"kind\":");
    *first = false;
    mh_json_str(out, "balance_suggested");
    put(out, ",\"text\":");
    mh_json_str(out, text);
    put(out, "}");
  }
}

void mh_balance_metrics(const ms_snap *s, buf *out) {
  prom_head(out, "mica_master_balancer_mode", "gauge",
            "1 for the balancer's mode in force (auto, suggest or off).");
  for (int m = MS_BAL_OFF; m <= MS_BAL_SUGGEST; m++) {
    char line[96];
    int n = snprintf(line, sizeof(line), "mica_master_balancer_mode{mode=\""
                     "%s\"} %d\n", ms_balancer_mode_name(m),
                     s->balancer_mode == m);
    buf_append(out, line, (size_t)n);
  }
  prom_gauge(out, "mica_master_balance_suggested_moves",
             (uint64_t)s->n_suggested,
             "Moves the balancer proposes (suggest mode).");
}
