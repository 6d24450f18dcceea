/* ts_http: /metrics and /healthz of the tablet server (see ts_http.h).
 *
 * A scrape is answered on an httpd polling thread: it takes a reference on
 * every tablet not yet retired (under the registry mutex, a few pointer
 * copies), then reads engine figures with no server lock held, renders,
 * and releases. A reference only delays an admin operation that waits for
 * the tablet to drain, by the time one tablet's figures take to read. */
#include "tabletserver/server/ts_http.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/prom.h"
#include "common/s3/s3_client.h"
#include "tabletserver/server/ts_int.h"
#include "tabletserver/wal.h"

static const uint64_t kBucketUs[TS_OBS_BUCKETS] = {
    100,    250,    500,     1000,    2500,    5000,    10000,   25000,
    50000,  100000, 250000,  500000,  1000000, 2500000, 5000000, 10000000};

/* Methods by index; the last slot (TS_OBS_METHODS - 1) is "other". */
static const rpc_method *const kMethods[TS_OBS_METHODS - 1] = {
    &rpc_m_ts_get,          &rpc_m_ts_multi_get,   &rpc_m_ts_put,
    &rpc_m_ts_delete,       &rpc_m_ts_batch,       &rpc_m_ts_scan,
    &rpc_m_ts_open_tablet,  &rpc_m_ts_close_tablet, &rpc_m_ts_split_tablet,
    &rpc_m_ts_tablet_info,  &rpc_m_echo_echo,      &rpc_m_echo_stream};

static int method_index(const rpc_method *m) {
  for (int i = 0; i < TS_OBS_METHODS - 1; i++)
    if (kMethods[i] == m) return i;
  return TS_OBS_METHODS - 1;
}

/* "Get" from "/mica.v1.TabletServer/Get"; "other" for the spare slot. */
static const char *method_name(int i) {
  if (i == TS_OBS_METHODS - 1) return "other";
  const char *slash = strrchr(kMethods[i]->path, '/');
  return slash ? slash + 1 : kMethods[i]->path;
}

static void add(uint64_t *p, uint64_t v) {
  __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void ts_obs_init(ts_server *s) {
  memset(&s->obs, 0, sizeof(s->obs));
  pthread_mutex_init(&s->obs.clamp_mu, NULL);
  s->obs.start_us = env_now_micros(s->e);
}

void ts_obs_destroy(ts_server *s) {
  ts_http_stop(s);
  pthread_mutex_destroy(&s->obs.clamp_mu);
}

void ts_obs_rpc_end(void *ctx, const rpc_method *m, int code,
                    uint64_t micros) {
  ts_server *s = ctx;
  int mi = method_index(m);
  int ci = code >= 0 && code < MICA_CODE_COUNT_ ? code : MICA_CODE_COUNT_;
  add(&s->obs.calls[mi][ci], 1);
  int b = 0;
  while (b < TS_OBS_BUCKETS && micros > kBucketUs[b]) b++;
  add(&s->obs.lat[mi][b], 1);
  add(&s->obs.lat_sum_us[mi], micros);
}

void ts_obs_tally(ts_server *s, ts_tab *tt, ts_tally *out) {
  (void)s;
  tab_stats st;
  tab_get_stats(tt->t, &st);
  memset(out, 0, sizeof(*out));
  out->v[TS_TALLY_reads] = atomic_load(&tt->reads);
  out->v[TS_TALLY_read_bytes] = atomic_load(&tt->read_bytes);
  out->v[TS_TALLY_writes] = atomic_load(&tt->writes);
  out->v[TS_TALLY_write_bytes] = atomic_load(&tt->write_bytes);
  out->v[TS_TALLY_scans] = atomic_load(&tt->scans);
  out->v[TS_TALLY_flushes] = st.flushes;
  out->v[TS_TALLY_flush_bytes] = st.flush_bytes;
  out->v[TS_TALLY_compactions] = st.compactions;
  out->v[TS_TALLY_compact_read_bytes] = st.compact_read_bytes;
  out->v[TS_TALLY_compact_write_bytes] = st.compact_write_bytes;
  out->v[TS_TALLY_stalls] = st.stalls;
  out->v[TS_TALLY_stall_micros] = st.stall_micros;
  out->v[TS_TALLY_stall_timeouts] = st.stall_timeouts;
}

void ts_obs_retire_locked(ts_server *s, ts_tab *tt, const ts_tally *t) {
  if (tt->is_retired) return;
  tt->is_retired = true;
  tt->retired = *t;
  for (int i = 0; i < TS_TALLY_N; i++) s->obs.retired.v[i] += t->v[i];
}

void ts_obs_unretire_locked(ts_server *s, ts_tab *tt) {
  if (!tt->is_retired) return;
  tt->is_retired = false;
  for (int i = 0; i < TS_TALLY_N; i++)
    s->obs.retired.v[i] -= tt->retired.v[i];
}

/* ---- /metrics ---- */

/* One tablet as a scrape sees it. */
typedef struct scraped {
  ts_tab *tt;
  double read_rate, write_rate;
  ts_tally tally;
  uint64_t bytes, keys, memtable_bytes, ssts, immutables;
} scraped;

static const char *state_name(int st) {
  switch (st) {
    case TS_SERVING: return "serving";
    case TS_SPLITTING: return "splitting";
    default: return "closing";
  }
}

static void tablet_labels(buf *out, const scraped *t) {
  prom_label_u(out, "tablet_id", t->tt->d.tablet_id);
  prom_label(out, "table", t->tt->d.table_name ? t->tt->d.table_name : "");
}

static void render_requests(ts_server *s, buf *out) {
  prom_head(out, "mica_tserver_requests_total", "counter",
            "RPC calls ended, by method and Mica status code (OK, "
            "NOT_SERVING, ...). A method's OK series is always present.");
  for (int m = 0; m < TS_OBS_METHODS; m++)
    for (int c = 0; c <= MICA_CODE_COUNT_; c++) {
      uint64_t n = load(&s->obs.calls[m][c]);
      if (n == 0 && (c != MICA_OK || m == TS_OBS_METHODS - 1)) continue;
      prom_sample_begin(out, "mica_tserver_requests_total");
      prom_label(out, "method", method_name(m));
      prom_label(out, "code", mica_code_name(c));
      prom_sample_end_u(out, n);
    }
  prom_head(out, "mica_tserver_request_duration_seconds", "histogram",
            "Time from a call's arrival to its end, by method.");
  for (int m = 0; m < TS_OBS_METHODS; m++) {
    uint64_t cum = 0;
    uint64_t counts[TS_OBS_BUCKETS + 1];
    for (int b = 0; b <= TS_OBS_BUCKETS; b++) {
      counts[b] = load(&s->obs.lat[m][b]);
      cum += counts[b];
    }
    if (cum == 0 && m == TS_OBS_METHODS - 1) continue;
    cum = 0;
    for (int b = 0; b <= TS_OBS_BUCKETS; b++) {
      cum += counts[b];
      char le[32];
      if (b < TS_OBS_BUCKETS)
        snprintf(le, sizeof(le), "%g", (double)kBucketUs[b] / 1e6);
      else
        snprintf(le, sizeof(le), "+Inf");
      prom_sample_begin(out, "mica_tserver_request_duration_seconds_bucket");
      prom_label(out, "method", method_name(m));
      prom_label(out, "le", le);
      prom_sample_end_u(out, cum);
    }
    prom_sample_begin(out, "mica_tserver_request_duration_seconds_sum");
    prom_label(out, "method", method_name(m));
    prom_sample_end(out, (double)load(&s->obs.lat_sum_us[m]) / 1e6);
    prom_sample_begin(out, "mica_tserver_request_duration_seconds_count");
    prom_label(out, "method", method_name(m));
    prom_sample_end_u(out, cum);
  }
}

static void render_engine(ts_server *s, buf *out) {
  wal_sums w;
  wal_get_sums(&w);
  prom_counter(out, "mica_tserver_wal_groups_total", w.groups,
               "Group commits written to WAL segments (one write each).");
  prom_counter(out, "mica_tserver_wal_syncs_total", w.syncs,
               "fdatasync calls of WAL group commits.");
  prom_head(out, "mica_tserver_wal_sync_seconds_total", "counter",
            "Time spent in those fdatasync calls.");
  prom_sample_begin(out, "mica_tserver_wal_sync_seconds_total");
  prom_sample_end(out, (double)w.sync_micros / 1e6);
  if (s->log != NULL) {
    clog_stats ls;
    clog_get_stats(s->log, &ls);
    prom_gauge(out, "mica_tserver_commit_log_segments", ls.segments,
               "Live segments of this server's shared commit log.");
    prom_gauge(out, "mica_tserver_commit_log_bytes", ls.bytes,
               "Bytes of records in them.");
    prom_counter(out, "mica_tserver_commit_log_segments_deleted_total",
                 ls.segments_deleted,
                 "Segments deleted once every tablet in them had flushed.");
    prom_counter(out, "mica_tserver_commit_log_flush_requests_total",
                 ls.flush_requests,
                 "Flushes asked of tablets pinning the oldest segment past "
                 "the log's size bound.");
    if (clog_objects(s->log)) {
      prom_counter(out, "mica_tserver_commit_log_puts_total", ls.puts,
                   "Group objects PUT by the commit log on S3.");
      prom_counter(out, "mica_tserver_commit_log_put_errors_total",
                   ls.put_errors,
                   "Group PUTs that failed (their writes not acknowledged).");
      prom_counter(out, "mica_tserver_commit_log_put_bytes_total",
                   ls.put_bytes, "Bytes of the group objects PUT.");
      prom_head(out, "mica_tserver_commit_log_put_seconds_total", "counter",
                "Time spent in group PUTs, retries included.");
      prom_sample_begin(out, "mica_tserver_commit_log_put_seconds_total");
      prom_sample_end(out, (double)ls.put_micros / 1e6);
    }
  }

  prom_counter(out, "mica_tserver_remote_root_reads_local_total",
               load(&s->obs.reads_local),
               "Gets and MultiGets on an object-store data root answered "
               "on the polling thread from cached data.");
  prom_counter(out, "mica_tserver_remote_root_reads_handed_off_total",
               load(&s->obs.reads_handed_off),
               "Gets and MultiGets on an object-store data root handed to "
               "a worker thread because they needed a remote read.");
  cache *c = res_cache(s->res);
  uint64_t hits = c ? cache_hits(c) : 0, misses = c ? cache_misses(c) : 0;
  prom_counter(out, "mica_tserver_block_cache_hits_total", hits,
               "Block cache lookups that found the block.");
  prom_counter(out, "mica_tserver_block_cache_misses_total", misses,
               "Block cache lookups that did not.");
  prom_head(out, "mica_tserver_block_cache_hit_ratio", "gauge",
            "hits / (hits + misses) since start; NaN before any lookup.");
  prom_sample_begin(out, "mica_tserver_block_cache_hit_ratio");
  prom_sample_end(out, hits + misses
                           ? (double)hits / (double)(hits + misses)
                           : NAN);
  prom_gauge(out, "mica_tserver_block_cache_bytes", c ? cache_usage(c) : 0,
             "Bytes held by the block cache.");
  prom_gauge(out, "mica_tserver_block_cache_capacity_bytes",
             c ? cache_capacity(c) : 0, "Block cache budget (0 = none).");
  prom_gauge(out, "mica_tserver_memtable_bytes", res_mem_usage(s->res),
             "Bytes of every memtable, active and being flushed.");
  prom_gauge(out, "mica_tserver_memtable_budget_bytes",
             res_mem_budget(s->res), "The memtable memory budget.");
  prom_counter(out, "mica_tserver_background_jobs_total",
               res_jobs_run(s->res),
               "Flush and compaction jobs run by the background threads.");
}

static void render_tally(ts_server *s, const scraped *v, size_t n,
                         const ts_tally *retired, buf *out) {
  ts_tally sum = *retired;
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < TS_TALLY_N; k++) sum.v[k] += v[i].tally.v[k];
  pthread_mutex_lock(&s->obs.clamp_mu);
  for (int k = 0; k < TS_TALLY_N; k++) {
    if (sum.v[k] < s->obs.reported.v[k]) sum.v[k] = s->obs.reported.v[k];
    s->obs.reported.v[k] = sum.v[k];
  }
  pthread_mutex_unlock(&s->obs.clamp_mu);

  static const struct {
    const char *name, *help;
  } kTally[TS_TALLY_N] = {
#define TS_TALLY_NAME_(f, name, help) {name, help},
      TS_TALLY_LIST(TS_TALLY_NAME_)
#undef TS_TALLY_NAME_
  };
  char name[96];
  for (int k = 0; k < TS_TALLY_N; k++) {
    snprintf(name, sizeof(name), "mica_tserver_%s", kTally[k].name);
    prom_counter(out, name, sum.v[k], kTally[k].help);
  }
  for (int k = 0; k < TS_TALLY_N; k++) {
    snprintf(name, sizeof(name), "mica_tablet_%s", kTally[k].name);
    prom_head(out, name, "counter", kTally[k].help);
    for (size_t i = 0; i < n; i++) {
      prom_sample_begin(out, name);
      tablet_labels(out, &v[i]);
      prom_sample_end_u(out, v[i].tally.v[k]);
    }
  }
}

enum { TG_BYTES, TG_KEYS, TG_MEM, TG_SSTS, TG_IMM, TG_READS, TG_WRITES };

static double tablet_gauge(const scraped *t, int which) {
  switch (which) {
    case TG_BYTES: return (double)t->bytes;
    case TG_KEYS: return (double)t->keys;
    case TG_MEM: return (double)t->memtable_bytes;
    case TG_SSTS: return (double)t->ssts;
    case TG_IMM: return (double)t->immutables;
    case TG_READS: return t->read_rate;
    default: return t->write_rate;
  }
}

static void render_tablets(const scraped *v, size_t n,
                           const uint64_t by_state[3], buf *out) {
  prom_head(out, "mica_tserver_tablets", "gauge",
            "Tablets open on this server, by state.");
  static const int kStates[] = {TS_SERVING, TS_SPLITTING, TS_CLOSING};
  for (size_t k = 0; k < 3; k++) {
    prom_sample_begin(out, "mica_tserver_tablets");
    prom_label(out, "state", state_name(kStates[k]));
    prom_sample_end_u(out, by_state[kStates[k]]);
  }
  static const struct {
    const char *name, *help;
  } kGauges[] = {
      {"mica_tablet_bytes", "Approximate bytes of the tablet's data."},
      {"mica_tablet_keys", "Approximate number of keys."},
      {"mica_tablet_memtable_bytes", "Bytes of its active memtable."},
      {"mica_tablet_sstables", "SSTables in its current version."},
      {"mica_tablet_immutable_memtables", "Memtables waiting to be "
       "flushed."},
      {"mica_tablet_reads_per_second", "Recent reads per second (the rate "
       "the server reports to the master)."},
      {"mica_tablet_writes_per_second", "Recent writes per second."},
  };
  for (int g = 0; g < (int)(sizeof(kGauges) / sizeof(kGauges[0])); g++) {
    prom_head(out, kGauges[g].name, "gauge", kGauges[g].help);
    for (size_t i = 0; i < n; i++) {
      prom_sample_begin(out, kGauges[g].name);
      tablet_labels(out, &v[i]);
      prom_sample_end(out, tablet_gauge(&v[i], g));
    }
  }
}

static void render_metrics(ts_server *s, buf *out) {
  /* Hold every tablet that has not left service yet (see ts_http.h). */
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  uint64_t by_state[3] = {0, 0, 0};
  scraped *v = xcalloc(s->ntabs ? s->ntabs : 1, sizeof(*v));
  for (size_t i = 0; i < s->ntabs; i++) {
    ts_tab *tt = s->tabs[i];
    if (tt->state >= 0 && tt->state < 3) by_state[tt->state]++;
    if (tt->is_retired) continue;
    tt->refs++;
    v[n].tt = tt;
    v[n].read_rate = tt->read_rate;
    v[n].write_rate = tt->write_rate;
    n++;
  }
  ts_tally retired = s->obs.retired;
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < n; i++) {
    ts_tab *tt = v[i].tt;
    ts_obs_tally(s, tt, &v[i].tally);
    tab_stats st;
    tab_get_stats(tt->t, &st);
    v[i].bytes = tab_approximate_size(tt->t);
    v[i].keys = tab_approximate_keys(tt->t);
    v[i].memtable_bytes = st.memtable_bytes;
    v[i].ssts = st.num_ssts;
    v[i].immutables = st.num_immutable;
  }

  uint64_t now = env_now_micros(s->e);
  prom_head(out, "mica_tserver_info", "gauge",
            "Always 1; labels name the version and addresses.");
  prom_sample_begin(out, "mica_tserver_info");
  prom_label(out, "version", MICA_VERSION);
  prom_label(out, "address", rpc_server_address(s->rpc));
  prom_label(out, "http_address", httpd_address(s->obs.http));
  prom_sample_end_u(out, 1);
  prom_gauge(out, "mica_tserver_uptime_seconds",
             now > s->obs.start_us ? (now - s->obs.start_us) / 1000000 : 0,
             "Seconds since the server started.");
  prom_gauge(out, "mica_tserver_server_id", atomic_load(&s->server_id),
             "The id the master gave this server (0 before registering "
             "or standalone).");
  mica_err *lease = ts_lease_check(s);
  prom_gauge(out, "mica_tserver_leased", lease == NULL,
             "1 while the server holds a lease (always standalone): it "
             "acknowledges reads and writes only then.");
  err_free(lease);
  render_requests(s, out);
  rpc_stream_stats ss;
  rpc_server_stream_stats(s->rpc, &ss);
  prom_gauge(out, "mica_tserver_streams_open", ss.open,
             "Scan streams open now (admitted and not yet ended).");
  prom_counter(out, "mica_tserver_streams_refused_total", ss.refused,
               "Streams refused with RESOURCE_EXHAUSTED by --max-streams "
               "or --max-streams-per-conn.");
  prom_counter(out, "mica_tserver_streams_idle_cancelled_total",
               ss.idle_cancelled,
               "Streams cancelled by --stream-idle-timeout.");
  render_engine(s, out);
  s3_render_metrics(out); /* requests to S3 by kind (0 on POSIX) */
  render_tally(s, v, n, &retired, out);
  render_tablets(v, n, by_state, out);
  uint64_t by_class[6];
  httpd_counts(s->obs.http, by_class);
  prom_head(out, "mica_tserver_http_responses_total", "counter",
            "HTTP responses sent by this server, by status class.");
  for (int c = 1; c <= 5; c++) {
    char cls[8];
    snprintf(cls, sizeof(cls), "%dxx", c);
    prom_sample_begin(out, "mica_tserver_http_responses_total");
    prom_label(out, "code", cls);
    prom_sample_end_u(out, by_class[c]);
  }

  for (size_t i = 0; i < n; i++) ts_release(s, v[i].tt);
  free(v);
}

/* ---- routes ---- */

static const char kText[] = "text/plain; charset=utf-8";

static void text(httpd_req *r, int code, const char *msg, const char *allow) {
  httpd_reply(r, code, kText, msg, strlen(msg), allow);
}

static void on_request(void *ctx, httpd_req *r) {
  ts_server *s = ctx;
  const char *url = httpd_req_url(r);
  bool metrics = strcmp(url, "/metrics") == 0;
  bool health = strcmp(url, "/healthz") == 0;
  if (!metrics && !health) {
    text(r, 404, "not found (this server has /metrics and /healthz)\n", NULL);
  } else if (!httpd_req_is_read(r)) {
    text(r, 405, "method not allowed\n", "GET, HEAD");
  } else if (httpd_req_has_body(r)) {
    text(r, 413, "a request body is not accepted\n", NULL);
  } else if (health) {
    text(r, 200, "ok\n", NULL);
  } else {
    buf b = BUF_INIT;
    render_metrics(s, &b);
    httpd_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data,
                b.len, NULL);
    buf_free(&b);
  }
}

mica_err *ts_http_start(ts_server *s) {
  httpd_opts o;
  httpd_opts_init(&o);
  o.listen = s->cfg.http_listen;
  o.flag = "--http-listen";
  /* HTTPS with the RPC certificate when TLS is on (docs/security.md). */
  o.tls_cert_file = s->cfg.tls.cert_file;
  o.tls_key_file = s->cfg.tls.key_file;
  mica_err *e = httpd_start(&o, on_request, s, &s->obs.http);
  if (e == NULL) LOG_I("http on %s", httpd_address(s->obs.http));
  return e;
}

void ts_http_stop(ts_server *s) {
  httpd_stop(s->obs.http);
  s->obs.http = NULL;
}
