/* ts_server: the tablet server's life cycle (create, start, stop).
 *
 * Creation binds the listen address first, so the caller can print it
 * before anything else happens, and prepares the resources every tablet
 * shares. Stopping goes in the one order that loses nothing: background
 * threads first (no new split or heartbeat), then the RPC server (it
 * cancels live calls and waits for every handler to end, so no request
 * holds a tablet any more), then every tablet is closed, which flushes its
 * memtables so no WAL segment holds data and the next owner replays
 * nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/layout.h"
#include "common/log.h"
#include "tabletserver/server/ts_admin.h"
#include "tabletserver/server/ts_authz.h"
#include "tabletserver/server/ts_data.h"
#include "tabletserver/server/ts_maint.h"
#include "tabletserver/server/ts_master.h"

void ts_config_init(ts_config *c) {
  memset(c, 0, sizeof(*c));
  c->memory_budget = (size_t)256 << 20;
  c->block_cache = (size_t)64 << 20;
  c->split_threshold = (uint64_t)10 << 30;
  c->lease_ms = 10000;
  c->heartbeat_ms = 1000;
  c->reserve_bytes = (uint64_t)1 << 30;
  c->reserve_percent = 5;
  c->compression = SST_COMPRESS_LZ4;
  c->shared_log = true;
  c->wal_batch_ms = 10;
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

/* The cluster secret and the checker (docs/security.md). With a master,
 * client calls wait for the master's access table; standalone they are
 * open (there is no tokens file to follow). */
static mica_err *ts_auth_setup(ts_server *s) {
  mica_err *e;
  if (s->cfg.secret_file != NULL) {
    e = rpc_secret_read(s->cfg.secret_file, &s->secret);
  } else {
    bool created = false;
    e = rpc_secret_load_or_create(s->cfg.data_dir, &s->secret, &created);
    if (e == NULL && created)
      LOG_I("created the cluster secret %s/%s (mode 0600)", s->cfg.data_dir,
            RPC_SECRET_FILE);
  }
  if (e != NULL) return e;
  rpc_access *initial =
      s->cfg.master != NULL ? NULL : xcalloc(1, sizeof *initial);
  s->auth = rpc_auth_new(&s->secret, initial);
  return NULL;
}

/* Opens this incarnation's commit log in <data_dir>/logs. The name (wall
 * clock in microseconds and the process id) is new for every start, so a
 * restarted server never appends to the log of its previous life, which
 * the new owners of its tablets may still be reading. */
static mica_err *ts_log_open(ts_server *s) {
  char name[96];
  snprintf(name, sizeof(name), "ts-%" PRIu64 "-%ld", env_wall_micros(s->e),
           (long)getpid());
  char *root = clog_logs_root(s->tablets_dir);
  clog_options lo;
  clog_options_init(&lo);
  lo.batch_us = s->cfg.wal_batch_ms * 1000;
  mica_err *e = clog_open(s->e, root, name, &lo, &s->log);
  free(root);
  if (e == NULL) {
    s->topts.log = s->log;
    if (clog_objects(s->log))
      LOG_I("commit log %s (shared by every tablet of this server) on "
            "object storage: one PUT per group commit, groups of up to "
            "%" PRIu64 " ms", name, s->cfg.wal_batch_ms);
    else
      LOG_I("commit log %s (shared by every tablet of this server)", name);
  }
  return e;
}

mica_err *ts_server_new(const ts_config *c, ts_server **out) {
  *out = NULL;
  if (c->data_dir == NULL || c->data_dir[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "data_dir is required");
  if (c->lease_ms == 0 || c->heartbeat_ms == 0 ||
      c->heartbeat_ms >= c->lease_ms)
    return err_new(MICA_INVALID_ARGUMENT,
                   "heartbeat interval (%" PRIu64 " ms) must be positive and "
                   "below the lease (%" PRIu64 " ms)",
                   c->heartbeat_ms, c->lease_ms);
  if (c->split_threshold == 0)
    return err_new(MICA_INVALID_ARGUMENT, "split threshold must be positive");
  if (c->compression != SST_COMPRESS_NONE &&
      c->compression != SST_COMPRESS_LZ4 && c->compression != SST_COMPRESS_ZSTD)
    return err_new(MICA_INVALID_ARGUMENT,
                   "compression %d is not none (0), lz4 (1) or zstd (2)",
                   c->compression);
  ts_server *s = xcalloc(1, sizeof(*s));
  s->cfg = *c;
  s->cfg.listen = dup_or_null(c->listen ? c->listen : "127.0.0.1:0");
  s->cfg.data_dir = xstrdup(c->data_dir);
  s->cfg.master = c->master && c->master[0] ? xstrdup(c->master) : NULL;
  s->cfg.secret_file = dup_or_null(c->secret_file);
  s->cfg.tls.cert_file = dup_or_null(c->tls.cert_file);
  s->cfg.tls.key_file = dup_or_null(c->tls.key_file);
  s->cfg.tls.ca_file = dup_or_null(c->tls.ca_file);
  s->cfg.http_listen = xstrdup(c->http_listen ? c->http_listen
                                              : "127.0.0.1:0");
  s->e = c->env ? c->env : env_posix();
  pthread_mutex_init(&s->admin_mu, NULL);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  pthread_mutex_init(&s->bg_mu, NULL);
  ts_obs_init(s);
  atomic_init(&s->server_id, 0);
  atomic_init(&s->lease_until_us, 0);
  atomic_init(&s->lease_gen, 0);
  atomic_init(&s->heartbeat_ms, c->heartbeat_ms);
  atomic_init(&s->split_threshold, c->split_threshold);
  atomic_init(&s->master_epoch, 0);
  atomic_init(&s->load.on, false);

  s->tablets_dir = layout_tablets_dir(s->cfg.data_dir);
  mica_err *e = env_mkdirs(s->e, s->tablets_dir);

  tab_options_init(&s->topts);
  if (c->memtable_bytes > 0) s->topts.memtable_bytes = c->memtable_bytes;
  s->topts.sst.compression = (sst_compression)c->compression;
  s->topts.accept_lost_logs = c->accept_lost_logs;
  /* The server checks the wire limits itself (32 MiB of keys and values
   * per batch); the engine's limit is on the encoded batch, which adds a
   * few bytes per entry, so it gets the message limit as its bound. */
  s->topts.max_batch = RPC_MAX_MESSAGE_DEFAULT;

  if (e == NULL) {
    res_options ro;
    res_options_init(&ro);
    if (c->memory_budget > 0) ro.memtable_budget = c->memory_budget;
    ro.block_cache_bytes = c->block_cache;
    if (c->background_threads > 0) ro.background_threads = c->background_threads;
    ro.data_root = s->cfg.data_dir;
    ro.reserve_bytes = c->reserve_bytes;
    ro.reserve_percent = c->reserve_percent;
    e = res_new(s->e, &ro, &s->res);
  }
  if (e == NULL && c->shared_log) e = ts_log_open(s);
  if (e == NULL) e = ts_auth_setup(s);
  if (e == NULL) {
    rpc_server_opts o;
    memset(&o, 0, sizeof(o));
    o.auth = s->auth;
    o.table_check = ts_table_check;
    o.table_check_ctx = s;
    rpc_tls serve_tls = {s->cfg.tls.cert_file, s->cfg.tls.key_file,
                         s->cfg.tls.ca_file, s->cfg.tls.require_client_cert,
                         s->cfg.tls.request_client_cert};
    if (s->cfg.tls.cert_file != NULL) o.tls = &serve_tls;
    o.listen = s->cfg.listen;
    o.threads = c->threads;
    o.max_streams = c->max_streams;
    o.max_streams_per_peer = c->max_streams_per_conn;
    o.stream_idle_ms = (int64_t)c->stream_idle_ms;
    o.observe = ts_obs_rpc_end;
    o.observe_ctx = s;
    e = rpc_server_new(&o, &s->rpc);
  }
  if (e == NULL) e = ts_http_start(s);
  if (e == NULL && s->cfg.master != NULL)
    e = ts_master_link_open(s);
  if (e == NULL) e = ts_data_register(s);
  if (e == NULL) e = ts_admin_register(s);
  if (e == NULL) e = ts_snapshot_register(s);
  /* Echo rides along: a liveness probe for operators and the transport
   * baseline the benchmark compares Get against, served by the very same
   * threads. */
  if (e == NULL) e = rpc_echo_register(s->rpc);
  if (e != NULL) {
    err_free(ts_server_stop(s));
    return e;
  }
  *out = s;
  return NULL;
}

mica_err *ts_server_start(ts_server *s) {
  mica_err *e = rpc_server_start(s->rpc);
  if (e == NULL) e = ts_master_start(s);
  if (e == NULL) e = ts_maint_start(s);
  if (e == NULL)
    LOG_I("serving on %s, data root %s, %s", rpc_server_address(s->rpc),
          s->cfg.data_dir, s->master_ch ? s->cfg.master : "standalone");
  return e;
}

const char *ts_server_address(const ts_server *s) {
  return rpc_server_address(s->rpc);
}

const char *ts_server_http_address(const ts_server *s) {
  return httpd_address(s->obs.http);
}

mica_err *ts_server_stop(ts_server *s) {
  if (s == NULL) return NULL;
  ts_http_stop(s); /* a scrape reads tablets and the RPC server */
  ts_master_stop(s);
  ts_maint_stop(s);
  rpc_server_free(s->rpc);
  s->rpc = NULL;
  mica_err *first = NULL;
  pthread_mutex_lock(&s->admin_mu);
  for (size_t i = 0; i < s->ntabs; i++) {
    ts_tab *tt = s->tabs[i];
    mica_err *e = tab_close(tt->t);
    if (e != NULL) {
      LOG_E("close tablet %" PRIu64 ": %s", tt->d.tablet_id, err_msg(e));
      if (first == NULL)
        first = e;
      else
        err_free(e);
    }
    ts_tab_free(tt);
  }
  s->ntabs = 0;
  pthread_mutex_unlock(&s->admin_mu);
  /* Every tablet is closed (flushed): the log deletes itself. */
  mica_err *le = clog_close(s->log);
  s->log = NULL;
  if (le != NULL) {
    LOG_E("close the commit log: %s", err_msg(le));
    if (first == NULL) first = le;
    else err_free(le);
  }
  res_free(s->res);
  ts_master_link_free(s);
  rpc_auth_free(s->auth);
  for (size_t i = 0; i < s->ngone; i++) {
    rpc_route_clear(&s->gone[i].left);
    rpc_route_clear(&s->gone[i].right);
    free(s->gone[i].moved_address);
  }
  free(s->gone);
  free(s->tabs);
  free(s->tablets_dir);
  free(s->topts_v);
  free((char *)s->cfg.listen);
  free((char *)s->cfg.data_dir);
  free((char *)s->cfg.master);
  free((char *)s->cfg.http_listen);
  free((char *)s->cfg.secret_file);
  free((char *)s->cfg.tls.cert_file);
  free((char *)s->cfg.tls.key_file);
  free((char *)s->cfg.tls.ca_file);
  ts_obs_destroy(s);
  pthread_mutex_destroy(&s->admin_mu);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->bg_mu);
  free(s);
  return first;
}
