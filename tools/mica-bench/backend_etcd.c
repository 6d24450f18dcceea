/* backend_etcd.c: mica-bench's calls mapped onto etcd's KV service.
 *
 * etcd has one flat key space, so a table becomes a key prefix: record key K
 * of table T is stored as "T/K", and a scan is a Range from "T/start" up to
 * "T0" ('0' follows '/'), limited to the scan length. prepare() has nothing
 * to create. */
#include <stdlib.h>
#include <string.h>

#include "proto/etcd/etcd_kv.h"
#include "tools/mica-bench/backend.h"

typedef struct bk_etcd {
  etcd_kv *kv;
  char *prefix;     /* "T/" */
  char *scan_end;   /* "T0" */
} bk_etcd;

static void prefixed(const bk_etcd *b, slice key, buf *out) {
  buf_clear(out);
  buf_append(out, b->prefix, strlen(b->prefix));
  buf_append_slice(out, key);
}

static mica_err *e_prepare(void *h, const slice *splits, size_t n) {
  (void)h;
  (void)splits;
  (void)n;
  return NULL;
}

static mica_err *e_read(void *h, slice key, buf *value) {
  bk_etcd *b = h;
  buf k = {0};
  prefixed(b, key, &k);
  mica_err *e = etcd_kv_get(b->kv, buf_slice(&k), value);
  buf_free(&k);
  return e;
}

static mica_err *e_write(void *h, slice key, slice value) {
  bk_etcd *b = h;
  buf k = {0};
  prefixed(b, key, &k);
  mica_err *e = etcd_kv_put(b->kv, buf_slice(&k), value);
  buf_free(&k);
  return e;
}

static mica_err *e_scan(void *h, slice start, uint32_t count, uint64_t *rows) {
  bk_etcd *b = h;
  buf k = {0};
  prefixed(b, start, &k);
  mica_err *e = etcd_kv_range(b->kv, buf_slice(&k), slice_from_str(b->scan_end), count, rows);
  buf_free(&k);
  return e;
}

static void e_close(void *h) {
  bk_etcd *b = h;
  if (!b) return;
  etcd_kv_close(b->kv);
  free(b->prefix);
  free(b->scan_end);
  free(b);
}

mica_err *bk_etcd_open(const bk_config *cfg, backend *out) {
  etcd_kv *kv = NULL;
  mica_err *e = etcd_kv_open(cfg->address, cfg->timeout_ms, &kv);
  if (e) return e;
  bk_etcd *b = xcalloc(1, sizeof *b);
  b->kv = kv;
  size_t n = strlen(cfg->table);
  b->prefix = xmalloc(n + 2);
  b->scan_end = xmalloc(n + 2);
  memcpy(b->prefix, cfg->table, n);
  memcpy(b->scan_end, cfg->table, n);
  b->prefix[n] = '/';
  b->scan_end[n] = '0';
  b->prefix[n + 1] = b->scan_end[n + 1] = '\0';
  *out = (backend){.name = "etcd", .h = b, .prepare = e_prepare, .read = e_read,
                   .write = e_write, .scan = e_scan, .close = e_close};
  return NULL;
}
