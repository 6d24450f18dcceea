/* backend_mica.c: mica-bench's calls mapped onto libmica.
 *
 * One mica_client is shared by all threads, as a real application would
 * share it. Reads are mica_get, writes mica_put (durable on return), scans
 * a mica_scanner with a limit; failures carry libmica's per-thread message.
 * An existing table is reused, so a run phase finds what a load phase
 * wrote and a second load adds to it. */
#include <stdlib.h>
#include <string.h>

#include "mica/mica.h"
#include "tools/mica-bench/backend.h"

typedef struct bk_mica {
  mica_client *client;
  char *table;
} bk_mica;

static mica_err *mica_fail(int code, const char *what) {
  return err_new(code, "%s: %s", what, mica_errmsg());
}

static mica_err *m_prepare(void *h, const slice *splits, size_t n) {
  bk_mica *m = h;
  mica_key *keys = xcalloc(n ? n : 1, sizeof *keys);
  for (size_t i = 0; i < n; i++) {
    keys[i].data = splits[i].data;
    keys[i].len = splits[i].len;
  }
  int rc = mica_create_table(m->client, m->table, keys, n);
  free(keys);
  if (rc == MICA_OK || rc == MICA_ALREADY_EXISTS) return NULL;
  return mica_fail(rc, "create table");
}

static mica_err *m_read(void *h, slice key, buf *value) {
  bk_mica *m = h;
  void *v = NULL;
  size_t n = 0;
  buf_clear(value);
  int rc = mica_get(m->client, m->table, key.data, key.len, &v, &n);
  if (rc != MICA_OK) return mica_fail(rc, "get");
  buf_append(value, v, n);
  mica_free(v);
  return NULL;
}

static mica_err *m_write(void *h, slice key, slice value) {
  bk_mica *m = h;
  int rc = mica_put(m->client, m->table, key.data, key.len, value.data, value.len);
  return rc == MICA_OK ? NULL : mica_fail(rc, "put");
}

static mica_err *m_scan(void *h, slice start, uint32_t count, uint64_t *rows) {
  bk_mica *m = h;
  mica_scan_options o = {.start = start.data, .start_len = start.len, .limit = count};
  mica_scanner *s = NULL;
  *rows = 0;
  int rc = mica_scan_open(m->client, m->table, &o, &s);
  if (rc != MICA_OK) return mica_fail(rc, "scan");
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    rc = mica_scan_next(s, &has, &k, &kl, &v, &vl);
    if (rc != MICA_OK || !has) break;
    ++*rows;
  }
  mica_err *e = rc == MICA_OK ? NULL : mica_fail(rc, "scan");
  mica_scan_close(s);
  return e;
}

static void m_close(void *h) {
  bk_mica *m = h;
  if (!m) return;
  mica_close(m->client);
  free(m->table);
  free(m);
}

mica_err *bk_mica_open(const bk_config *cfg, backend *out) {
  mica_options o;
  mica_options_init(&o);
  if (cfg->timeout_ms > 0) o.deadline_ms = cfg->timeout_ms;
  o.token = cfg->token;
  o.tls_ca = cfg->tls_ca;
  o.tls_cert = cfg->tls_cert;
  o.tls_key = cfg->tls_key;
  mica_client *c = NULL;
  int rc = mica_open(cfg->address, &o, &c);
  if (rc != MICA_OK) return mica_fail(rc, "open");
  bk_mica *m = xcalloc(1, sizeof *m);
  m->client = c;
  m->table = xstrdup(cfg->table);
  *out = (backend){.name = "mica", .h = m, .prepare = m_prepare, .read = m_read,
                   .write = m_write, .scan = m_scan, .close = m_close};
  return NULL;
}

mica_err *bk_open(const char *name, const bk_config *cfg, backend *out) {
  if (strcmp(name, "mica") == 0) return bk_mica_open(cfg, out);
  if (strcmp(name, "etcd") == 0) return bk_etcd_open(cfg, out);
  if (strcmp(name, "postgres") == 0) return bk_pg_open(cfg, out);
  return err_new(MICA_INVALID_ARGUMENT, "unknown backend '%s' (mica, etcd or postgres)",
                 name);
}
