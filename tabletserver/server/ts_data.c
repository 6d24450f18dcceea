/* ts_data: the data calls of the TabletServer service (Get, MultiGet, Put,
 * Delete, Batch, Scan).
 *
 * Every handler follows the same order: check the request's limits (so a
 * message can name the field), acquire the tablet it names (routing errors
 * carry what the registry knows), check every key against the tablet's
 * range, do the work, release the tablet, and check the lease once more
 * just before acknowledging: a server whose lease ran out while a write was
 * in the group commit must not acknowledge it (docs/design.md, "Leases and
 * fencing"), and neither may one whose lease lapsed and was renewed
 * meanwhile (the lease period is read before the tablet is acquired:
 * ts_lease_check_since).
 *
 * Threads. Point reads run inline on the RPC polling threads: they touch
 * memtables and cached or page-cached SSTable blocks (a pread of a local
 * file at worst), and a hand-off to a worker would cost more than the read
 * (docs/tserver.md has the measurement). Writes are registered
 * RPC_OFFLOAD: each waits in the tablet's group commit on its own worker
 * thread, so many writes are in flight and share one fdatasync. Large
 * MultiGets move to a worker. A short Scan (one chunk of at most
 * TS_INLINE_SCAN_ROWS rows) is answered inline too; longer scans run on
 * the RPC layer's stream pool: each produces one chunk per run and parks
 * between chunks (ts_scan below), so a reader that stops reading holds a
 * snapshot but no thread, and writes never wait behind scans. With the
 * data root on object storage a read may wait for a network fetch: a Get
 * or a short MultiGet is then tried on the polling thread in local-only
 * mode (common/env.h), which answers it only if every block it needs is
 * in the block cache or the disk cache; a try that would have sent a
 * request is discarded (nothing of it is answered, counted or cached) and
 * the read runs again on a worker (reads_may_wait, read_local_begin).
 * Scans on such a root always leave the polling thread. Sends never block
 * a polling thread: the transport queues them and a slow reader's answers
 * wait in its buffers (tests/tabletserver/server/test_tserver_inline.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tabletserver/server/ts_data.h"

/* MultiGets with more keys than this leave the polling thread. */
#define TS_INLINE_MULTIGET_KEYS 32

static mica_err *check_key(slice key, const char *what, size_t index,
                           bool indexed) {
  if (key.len > 0 && key.len <= MICA_MAX_KEY) return NULL;
  /* Named only when wrong: formatting costs more than the check. */
  char name[64];
  if (indexed)
    snprintf(name, sizeof name, what, index);
  else
    snprintf(name, sizeof name, "%s", what);
  if (key.len == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "%s: empty key (keys are 1..%u bytes)", name, MICA_MAX_KEY);
  if (key.len > MICA_MAX_KEY)
    return err_new(MICA_INVALID_ARGUMENT,
                   "%s: key of %zu bytes exceeds the %u-byte limit", name,
                   key.len, MICA_MAX_KEY);
  return NULL;
}

static mica_err *check_value(slice v, const char *name) {
  if (v.len > MICA_MAX_VALUE)
    return err_new(MICA_INVALID_ARGUMENT,
                   "%s: value of %zu bytes exceeds the %zu-byte limit", name,
                   v.len, MICA_MAX_VALUE);
  return NULL;
}

/* ---- Get ---- */

/* At debug level, which tablet answered a Get that found nothing: the
 * server, the tablet's id, range and epochs, and the last write it has
 * applied (0: none since it opened, with nothing replayed). A report of a
 * stale read starts here: did the answering server hold the key's tablet
 * under the epochs the client named, and had it seen any write? */
static void log_miss(ts_server *s, const ts_tab *tt, slice key) {
  buf k = BUF_INIT, lo = BUF_INIT, hi = BUF_INIT;
  slice_escape(key, &k);
  slice_escape(buf_slice(&tt->d.start_key), &lo);
  slice_escape(buf_slice(&tt->d.end_key), &hi);
  LOG_D("get: '%s' not found: server %" PRIu64 ", tablet %" PRIu64
        " ['%s', '%s') range_epoch %" PRIu64 " assign_epoch %" PRIu64
        ", last applied seq %" PRIu64,
        (const char *)k.data, (uint64_t)atomic_load(&s->server_id),
        tt->d.tablet_id, (const char *)lo.data, (const char *)hi.data,
        tt->d.range_epoch, tt->d.assign_epoch, tab_last_seq(tt->t));
  buf_free(&k);
  buf_free(&lo);
  buf_free(&hi);
}

/* Whether a read may wait on something slower than a local file: SSTables
 * on object storage are read by ranged GETs through a disk cache
 * (docs/design.md §9), and a cold block would hold the polling thread for a
 * network round trip. */
static bool reads_may_wait(const ts_server *s) {
  return strncmp(s->cfg.data_dir, "s3://", 5) == 0;
}

/* A read on the polling thread (`local`) of a server whose reads may wait
 * runs in local-only mode (common/env.h): begin before reading, end after;
 * read_local_end is true if the try was refused and must run again on a
 * worker, and counts the outcome. */
static void read_local_begin(bool local) {
  if (local) env_local_only_begin();
}

static bool read_local_end(ts_server *s, bool local) {
  if (!local) return false;
  bool refused = env_local_only_end();
  __atomic_fetch_add(refused ? &s->obs.reads_handed_off : &s->obs.reads_local,
                     1, __ATOMIC_RELAXED);
  return refused;
}

static void get_run(rpc_call *call, const void *request, void *ctx,
                    bool local);

/* A Get run again on a worker after its local-only try was refused. */
static void get_remote(rpc_call *call, const void *request, void *ctx) {
  get_run(call, request, ctx, false);
}

static void h_get(rpc_call *call, const void *request, void *ctx) {
  get_run(call, request, ctx, reads_may_wait((ts_server *)ctx));
}

/* `local`: on the polling thread of a server whose reads may wait. */
static void get_run(rpc_call *call, const void *request, void *ctx,
                    bool local) {
  ts_server *s = ctx;
  const rpc_get_request *req = (const rpc_get_request *)request;
  rpc_get_response resp = {0};
  rpc_status st;
  ts_routebuf rb;
  ts_routebuf_init(&rb);
  buf val = BUF_INIT;
  ts_tab *tt = NULL;
  slice key = req->key;

  uint64_t gen = ts_lease_gen(s);
  mica_err *e = check_key(key, "key", 0, false);
  if (e == NULL) e = ts_acquire(s, req->tablet, &rb, &tt);
  if (e == NULL) e = ts_check_in_range(s, tt, key, "key", &rb);
  if (e == NULL) {
    read_local_begin(local);
    e = tab_get(tt->t, NULL, key, &val);
    if (read_local_end(s, local)) {
      err_free(e);
      ts_release(s, tt);
      ts_routebuf_clear(&rb);
      buf_free(&val);
      rpc_call_offload(call, get_remote, ctx);
      return;
    }
    if (e == NULL) {
      resp.found = true;
    } else if (err_code(e) == MICA_NOT_FOUND) {
      err_free(e);
      e = NULL;
      if (log_get_level() <= LOG_DEBUG) log_miss(s, tt, key);
    }
    atomic_fetch_add(&tt->reads, 1);
    atomic_fetch_add(&tt->read_bytes, key.len + val.len);
    ts_load_note(s, tt, TS_LOAD_READ, key);
  }
  ts_release(s, tt);
  if (e == NULL) e = ts_lease_check_since(s, gen);
  if (e == NULL && resp.found) {
    resp.value.data = val.data;
    resp.value.len = val.len;
  } else {
    resp.found = false;
  }
  ts_status_fill(&st, e, &rb);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(e);
  ts_routebuf_clear(&rb);
  buf_free(&val);
}

/* ---- MultiGet ---- */

typedef struct mg_part {
  rpc_status st;
  ts_routebuf rb;
  mica_err *err;
  rpc_get_result *results;
  buf *vals;
  size_t n;
} mg_part;

/* Reads one part at one snapshot of its tablet. Adds the bytes returned to
 * *bytes. */
static void mg_read_part(ts_server *s, const rpc_multi_get_part *p,
                         size_t pi, mg_part *out, uint64_t *bytes) {
  ts_tab *tt = NULL;
  mica_err *e = NULL;
  /* Whatever is wrong with a part, a malformed key included, fails that part
   * only (mica.proto, MultiGetPartResult). */
  for (size_t i = 0; e == NULL && i < p->n_keys; i++) {
    char name[64];
    snprintf(name, sizeof name, "parts[%zu].keys[%zu]", pi, i);
    e = check_key(p->keys[i], name, 0, false);
  }
  if (e == NULL) e = ts_acquire(s, p->tablet, &out->rb, &tt);
  for (size_t i = 0; e == NULL && i < p->n_keys; i++) {
    char name[64];
    snprintf(name, sizeof name, "parts[%zu].keys[%zu]", pi, i);
    e = ts_check_in_range(s, tt, p->keys[i], name, &out->rb);
  }
  if (e == NULL) {
    out->n = p->n_keys;
    out->results = xcalloc(out->n ? out->n : 1, sizeof(*out->results));
    out->vals = xcalloc(out->n ? out->n : 1, sizeof(*out->vals));
    tab_snapshot *snap = tab_snapshot_new(tt->t);
    for (size_t i = 0; e == NULL && i < out->n; i++) {
      rpc_get_result *r = &out->results[i];
      memset(r, 0, sizeof *r);
      slice key = p->keys[i];
      e = tab_get(tt->t, snap, key, &out->vals[i]);
      if (e == NULL) {
        r->found = true;
      } else if (err_code(e) == MICA_NOT_FOUND) {
        err_free(e);
        e = NULL;
      }
      *bytes += key.len + out->vals[i].len;
    }
    tab_snapshot_free(snap);
    /* A refused local-only try is counted when it runs again. */
    if (!env_local_only_refused()) {
      for (size_t i = 0; i < out->n; i++) {
        atomic_fetch_add(&tt->read_bytes, p->keys[i].len + out->vals[i].len);
        ts_load_note(s, tt, TS_LOAD_READ, p->keys[i]);
      }
      atomic_fetch_add(&tt->reads, out->n);
    }
    for (size_t i = 0; e == NULL && i < out->n; i++)
      if (out->results[i].found) {
        out->results[i].value.data = out->vals[i].data;
        out->results[i].value.len = out->vals[i].len;
      }
  }
  ts_release(s, tt);
  out->err = e;
}

static void mg_parts_free(mg_part *parts, size_t n_parts) {
  for (size_t i = 0; parts != NULL && i < n_parts; i++) {
    mg_part *p = &parts[i];
    for (size_t j = 0; j < p->n; j++) buf_free(&p->vals[j]);
    free(p->vals);
    free(p->results);
    err_free(p->err);
    ts_routebuf_clear(&p->rb);
  }
  free(parts);
}

static void mg_try(rpc_call *call, const void *request, void *ctx,
                   bool local);

/* On a worker: a large MultiGet, or one whose local-only try was
 * refused. */
static void mg_run(rpc_call *call, const void *request, void *ctx) {
  mg_try(call, request, ctx, false);
}

/* `local`: on the polling thread of a server whose reads may wait. */
static void mg_try(rpc_call *call, const void *request, void *ctx,
                   bool local) {
  ts_server *s = ctx;
  const rpc_multi_get_request *req =
      (const rpc_multi_get_request *)request;
  rpc_multi_get_response resp = {0};
  rpc_status st;
  uint64_t gen = ts_lease_gen(s);
  mica_err *e = NULL;
  size_t total = 0;
  for (size_t i = 0; i < req->n_parts; i++) total += req->parts[i].n_keys;
  if (e == NULL && total > MICA_MAX_MULTIGET_KEYS)
    e = err_new(MICA_INVALID_ARGUMENT,
                "parts: %zu keys exceed the limit of %u per MultiGet", total,
                MICA_MAX_MULTIGET_KEYS);
  mg_part *parts = NULL;
  rpc_multi_get_part_result *results = NULL;
  if (e == NULL && req->n_parts > 0) {
    parts = xcalloc(req->n_parts, sizeof(*parts));
    results = xcalloc(req->n_parts, sizeof(*results));
    uint64_t bytes = 0;
    for (size_t i = 0; i < req->n_parts; i++) ts_routebuf_init(&parts[i].rb);
    read_local_begin(local);
    for (size_t i = 0; i < req->n_parts && !env_local_only_refused(); i++)
      mg_read_part(s, &req->parts[i], i, &parts[i], &bytes);
    if (read_local_end(s, local)) {
      mg_parts_free(parts, req->n_parts);
      free(results);
      rpc_call_offload(call, mg_run, ctx);
      return;
    }
    if (bytes > MICA_MAX_MULTIGET_BYTES)
      e = err_new(MICA_RESOURCE_EXHAUSTED,
                  "MultiGet answer of %" PRIu64 " bytes exceeds the %zu-byte "
                  "limit; ask for fewer keys per request",
                  bytes, MICA_MAX_MULTIGET_BYTES);
  }
  if (e == NULL) e = ts_lease_check_since(s, gen);
  if (e == NULL) {
    for (size_t i = 0; i < req->n_parts; i++) {
      mg_part *p = &parts[i];
      rpc_multi_get_part_result *res = &results[i];
      ts_status_fill(&p->st, p->err, &p->rb);
      res->status = &p->st;
      if (p->err == NULL) {
        res->results = p->results;
        res->n_results = p->n;
      }
    }
    resp.parts = results;
    resp.n_parts = req->n_parts;
  }
  ts_status_fill(&st, e, NULL);
  resp.status = &st;
  /* The reply frees the request; keep what the cleanup needs. */
  size_t n_parts = req->n_parts;
  rpc_call_reply(call, &resp);
  err_free(e);
  mg_parts_free(parts, n_parts);
  free(results);
}

static void h_multi_get(rpc_call *call, const void *request,
                        void *ctx) {
  const rpc_multi_get_request *req =
      (const rpc_multi_get_request *)request;
  size_t total = 0;
  for (size_t i = 0; i < req->n_parts; i++) total += req->parts[i].n_keys;
  if (total > TS_INLINE_MULTIGET_KEYS)
    rpc_call_offload(call, mg_run, ctx);
  else
    mg_try(call, request, ctx, reads_may_wait((ts_server *)ctx));
}

/* ---- writes ---- */

/* Applies `b` durably to the tablet `ref` names after checking that every
 * key in `keys` lies in it (`field` formats the key's name with its index).
 * *seq receives the sequence number of the batch's last entry. */
static mica_err *apply(ts_server *s, const rpc_tablet_ref *ref,
                       wbatch *b, const slice *keys, size_t nkeys,
                       const char *field, uint64_t kv_bytes,
                       ts_routebuf *rb, uint64_t *seq) {
  ts_tab *tt = NULL;
  uint64_t gen = ts_lease_gen(s);
  mica_err *e = ts_acquire(s, ref, rb, &tt);
  for (size_t i = 0; e == NULL && i < nkeys; i++) {
    char name[64];
    snprintf(name, sizeof name, field, i);
    e = ts_check_in_range(s, tt, keys[i], name, rb);
  }
  if (e == NULL) {
    e = tab_write(tt->t, b, true);
    if (e == NULL) {
      *seq = wbatch_seq(b) + wbatch_count(b) - 1;
      atomic_fetch_add(&tt->writes, wbatch_count(b));
      atomic_fetch_add(&tt->write_bytes, kv_bytes);
      for (size_t i = 0; i < nkeys; i++)
        ts_load_note(s, tt, TS_LOAD_WRITE, keys[i]);
    }
  }
  ts_release(s, tt);
  if (e == NULL) e = ts_lease_check_since(s, gen);
  return e;
}

static void h_put(rpc_call *call, const void *request, void *ctx) {
  ts_server *s = ctx;
  const rpc_put_request *req = (const rpc_put_request *)request;
  rpc_put_response resp = {0};
  rpc_status st;
  ts_routebuf rb;
  ts_routebuf_init(&rb);
  slice key = req->key, value = req->value;
  mica_err *e = check_key(key, "key", 0, false);
  if (e == NULL) e = check_value(value, "value");
  if (e == NULL) {
    wbatch *b = wbatch_new();
    wbatch_put(b, key, value);
    e = apply(s, req->tablet, b, &key, 1, "key", key.len + value.len, &rb,
              &resp.sequence);
    wbatch_free(b);
  }
  ts_status_fill(&st, e, &rb);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(e);
  ts_routebuf_clear(&rb);
}

static void h_delete(rpc_call *call, const void *request,
                     void *ctx) {
  ts_server *s = ctx;
  const rpc_delete_request *req = (const rpc_delete_request *)request;
  rpc_delete_response resp = {0};
  rpc_status st;
  ts_routebuf rb;
  ts_routebuf_init(&rb);
  slice key = req->key;
  mica_err *e = check_key(key, "key", 0, false);
  if (e == NULL) {
    wbatch *b = wbatch_new();
    wbatch_delete(b, key);
    e = apply(s, req->tablet, b, &key, 1, "key", key.len, &rb,
              &resp.sequence);
    wbatch_free(b);
  }
  ts_status_fill(&st, e, &rb);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(e);
  ts_routebuf_clear(&rb);
}

/* Checks every mutation and the batch's total against the limits. */
static mica_err *check_batch(const rpc_batch_request *req,
                             uint64_t *kv_bytes) {
  if (req->n_mutations == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "mutations: a batch needs at least one mutation");
  uint64_t total = 0;
  for (size_t i = 0; i < req->n_mutations; i++) {
    const rpc_mutation *m = &req->mutations[i];
    if (m->kind != RPC_MUTATION_PUT &&
        m->kind != RPC_MUTATION_DELETE)
      return err_new(MICA_INVALID_ARGUMENT,
                     "mutations[%zu].kind: %d is neither PUT (1) nor "
                     "DELETE (2)",
                     i, (int)m->kind);
    mica_err *e = check_key(m->key, "mutations[%zu].key", i, true);
    if (e != NULL) return e;
    if (m->kind == RPC_MUTATION_DELETE && m->value.len > 0)
      return err_new(MICA_INVALID_ARGUMENT,
                     "mutations[%zu].value: a DELETE carries no value (got "
                     "%zu bytes)",
                     i, m->value.len);
    char name[64];
    snprintf(name, sizeof name, "mutations[%zu].value", i);
    e = check_value(m->value, name);
    if (e != NULL) return e;
    total += m->key.len + m->value.len;
  }
  if (total > MICA_MAX_BATCH_BYTES)
    return err_new(MICA_INVALID_ARGUMENT,
                   "mutations: batch of %" PRIu64 " bytes of keys and values "
                   "exceeds the %zu-byte limit",
                   total, MICA_MAX_BATCH_BYTES);
  *kv_bytes = total;
  return NULL;
}

static void h_batch(rpc_call *call, const void *request,
                    void *ctx) {
  ts_server *s = ctx;
  const rpc_batch_request *req = (const rpc_batch_request *)request;
  rpc_batch_response resp = {0};
  rpc_status st;
  ts_routebuf rb;
  ts_routebuf_init(&rb);
  uint64_t kv = 0;
  mica_err *e = check_batch(req, &kv);
  if (e == NULL) {
    wbatch *b = wbatch_new();
    slice *keys = xcalloc(req->n_mutations, sizeof(*keys));
    for (size_t i = 0; i < req->n_mutations; i++) {
      const rpc_mutation *m = &req->mutations[i];
      keys[i] = m->key;
      if (m->kind == RPC_MUTATION_PUT)
        wbatch_put(b, keys[i], m->value);
      else
        wbatch_delete(b, keys[i]);
    }
    e = apply(s, req->tablet, b, keys, req->n_mutations, "mutations[%zu].key",
              kv, &rb, &resp.sequence);
    free(keys);
    wbatch_free(b);
  }
  ts_status_fill(&st, e, &rb);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(e);
  ts_routebuf_clear(&rb);
}

/* ---- Scan ---- */

typedef struct scan_chunk {
  buf bytes;          /* keys and values of the chunk, back to back */
  size_t *offs;       /* per row: key offset, key len, value len */
  rpc_key_value *kvs;
  size_t n, cap;
} scan_chunk;

static void chunk_add(scan_chunk *c, slice k, slice v) {
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 64;
    c->offs = xrealloc(c->offs, c->cap * 3 * sizeof(*c->offs));
  }
  c->offs[3 * c->n] = c->bytes.len;
  c->offs[3 * c->n + 1] = k.len;
  c->offs[3 * c->n + 2] = v.len;
  buf_append_slice(&c->bytes, k);
  buf_append_slice(&c->bytes, v);
  c->n++;
}

/* Points the chunk's rows into its bytes (which no longer move). */
static void chunk_to_pb(scan_chunk *c, rpc_scan_chunk *out) {
  c->kvs = xrealloc(c->kvs, (c->n ? c->n : 1) * sizeof(*c->kvs));
  for (size_t i = 0; i < c->n; i++) {
    rpc_key_value *kv = &c->kvs[i];
    memset(kv, 0, sizeof *kv);
    size_t off = c->offs[3 * i], kl = c->offs[3 * i + 1],
           vl = c->offs[3 * i + 2];
    kv->key.data = c->bytes.data + off;
    kv->key.len = kl;
    kv->value.data = vl ? c->bytes.data + off + kl : NULL;
    kv->value.len = vl;
  }
  out->rows = c->kvs;
  out->n_rows = c->n;
}

static void chunk_reset(scan_chunk *c) {
  buf_clear(&c->bytes);
  c->n = 0;
}

static void chunk_free(scan_chunk *c) {
  buf_free(&c->bytes);
  free(c->offs);
  free(c->kvs);
}

static mica_err *check_scan(const rpc_scan_request *req) {
  struct {
    const char *name;
    slice d;
  } f[] = {{"start_key", req->start_key},
           {"end_key", req->end_key},
           {"prefix", req->prefix}};
  for (size_t i = 0; i < 3; i++)
    if (f[i].d.len > MICA_MAX_KEY)
      return err_new(MICA_INVALID_ARGUMENT,
                     "%s: %zu bytes exceeds the %u-byte key limit", f[i].name,
                     f[i].d.len, MICA_MAX_KEY);
  if (req->start_key.len > 0 && req->end_key.len > 0 &&
      slice_cmp(req->start_key, req->end_key) > 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "start_key is greater than end_key (start must not be "
                   "after end)");
  return NULL;
}

/* An open scan between chunks. The stream is parked (rpc.h, "Streams")
 * while its chunk waits for the reader, holding this state, its iterator
 * (an engine snapshot) and a reference on the tablet, but no thread. It is
 * on s->scans from the first chunk until it ends, so that a tablet leaving
 * service cancels its parked scans (ts_scans_abort_locked) instead of
 * waiting for their readers. */
typedef struct ts_scan {
  ts_server *s;
  rpc_call *call;
  const rpc_scan_request *req; /* the call's: valid until it ends */
  ts_tab *tt;                  /* held */
  iter *it;
  ts_routebuf rb;
  uint64_t gen;                /* lease period the scan started in */
  size_t max_bytes, max_rows;
  uint64_t returned;
  scan_chunk c;
  struct ts_scan *next, *prev; /* s->scans; guarded by s->mu */
} ts_scan;

static void scan_step(rpc_call *call, void *state, const mica_err *err);

/* Takes the scan off s->scans: before its call ends, so that
 * ts_scans_abort_locked never touches an ended call. */
static void scan_unlist(ts_scan *sc) {
  ts_server *s = sc->s;
  pthread_mutex_lock(&s->mu);
  if (sc->prev != NULL)
    sc->prev->next = sc->next;
  else
    s->scans = sc->next;
  if (sc->next != NULL) sc->next->prev = sc->prev;
  pthread_mutex_unlock(&s->mu);
}

/* Frees the scan's snapshot, tablet reference and buffers (unlisted). */
static void scan_destroy(ts_scan *sc) {
  iter_close(sc->it);
  ts_release(sc->s, sc->tt);
  chunk_free(&sc->c);
  ts_routebuf_clear(&sc->rb);
  free(sc);
}

/* UNAVAILABLE for either state: the transport code that tells a client
 * to look the tablet up again and resume. */
void ts_scans_abort_locked(ts_server *s, ts_tab *tt) {
  char msg[160];
  snprintf(msg, sizeof msg,
           "tablet %" PRIu64 " is %s; resume the scan after the last row",
           tt->d.tablet_id,
           tt->state == TS_SPLITTING ? "being split" : "closing");
  for (ts_scan *sc = s->scans; sc != NULL; sc = sc->next)
    if (sc->tt == tt)
      rpc_call_abort(sc->call, MICA_UNAVAILABLE, msg);
}

/* Fills sc->c with the next rows. Returns true when the stream ends with
 * this chunk, with *end and *e (owned by the caller) saying how. */
static bool scan_fill(ts_scan *sc, int *end, mica_err **e) {
  const rpc_scan_request *req = sc->req;
  scan_chunk *c = &sc->c;
  chunk_reset(c);
  *end = RPC_SCAN_END_RANGE;
  *e = NULL;
  bool done = false;
  while (c->n < sc->max_rows) {
    if (req->limit > 0 && sc->returned >= req->limit) {
      done = true;
      *end = RPC_SCAN_END_LIMIT;
      break;
    }
    if (!iter_valid(sc->it)) {
      done = true;
      const mica_err *ie = iter_status(sc->it);
      if (ie != NULL) {
        *e = err_dup(ie);
        *end = RPC_SCAN_END_ERROR;
      }
      break;
    }
    slice k = iter_key(sc->it);
    slice v = req->keys_only ? slice_make(NULL, 0) : iter_value(sc->it);
    if (c->n > 0 && c->bytes.len + k.len + v.len > sc->max_bytes) break;
    chunk_add(c, k, v);
    sc->returned++;
    iter_next(sc->it);
    if (c->bytes.len >= sc->max_bytes) break;
  }
  atomic_fetch_add(&sc->tt->read_bytes, c->bytes.len);
  if (!done) {
    /* The tablet leaving service or the lease running out ends the
     * stream resumably, after the rows already read. */
    pthread_mutex_lock(&sc->s->mu);
    int state = sc->tt->state;
    pthread_mutex_unlock(&sc->s->mu);
    if (state == TS_SPLITTING)
      *e = err_new(MICA_UNAVAILABLE, "tablet %" PRIu64 " is being split; "
                   "resume the scan after the last row", sc->tt->d.tablet_id);
    else if (state == TS_CLOSING)
      *e = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is closing; "
                   "resume the scan after the last row", sc->tt->d.tablet_id);
    if (*e != NULL) {
      done = true;
      *end = RPC_SCAN_END_ERROR;
    }
  }
  mica_err *le = ts_lease_check_since(sc->s, sc->gen);
  if (le != NULL) {
    /* Rows read after the lease ran out are not sent. */
    err_free(*e);
    *e = le;
    chunk_reset(c);
    done = true;
    *end = RPC_SCAN_END_ERROR;
  }
  return done;
}

/* The stream's continuation: one chunk per run (rpc_call_send_then). */
static void scan_step(rpc_call *call, void *state, const mica_err *err) {
  ts_scan *sc = state;
  if (err != NULL) {
    /* The reader cancelled, its deadline passed, the idle timeout, the
     * tablet left service, or shutdown. */
    scan_unlist(sc);
    scan_destroy(sc);
    rpc_call_finish(call, err);
    return;
  }
  int end;
  mica_err *e = NULL;
  if (scan_fill(sc, &end, &e)) {
    /* The last chunk: rows (maybe none), the end reason, the tablet's
     * descriptor and the status, then OK. */
    rpc_scan_chunk msg = {0};
    rpc_status st;
    rpc_tablet_descriptor d;
    chunk_to_pb(&sc->c, &msg);
    ts_status_fill(&st, e, &sc->rb);
    msg.status = &st;
    msg.last = true;
    msg.end = end;
    rpc_route_desc(&sc->tt->d, &d);
    msg.tablet = &d;
    scan_unlist(sc);
    rpc_call_reply(call, &msg);
    scan_destroy(sc);
    err_free(e);
    return;
  }
  rpc_scan_chunk msg = {0};
  rpc_status st;
  ts_status_fill(&st, NULL, NULL);
  msg.status = &st;
  chunk_to_pb(&sc->c, &msg);
  rpc_call_send_then(call, &msg, scan_step, sc);
}

static void scan_run(rpc_call *call, const void *request, void *ctx) {
  ts_server *s = ctx;
  const rpc_scan_request *req = (const rpc_scan_request *)request;
  ts_scan *sc = xcalloc(1, sizeof(*sc));
  sc->s = s;
  sc->call = call;
  sc->req = req;
  ts_routebuf_init(&sc->rb);
  sc->gen = ts_lease_gen(s);
  mica_err *e = check_scan(req);
  if (e == NULL) e = ts_acquire(s, req->tablet, &sc->rb, &sc->tt);
  if (e == NULL) {
    tab_scan_options o;
    tab_scan_options_init(&o);
    o.start = req->start_key;
    o.end = req->end_key;
    o.prefix = req->prefix;
    o.limit = req->limit;
    o.reverse = req->reverse;
    e = tab_scan(sc->tt->t, &o, &sc->it);
    atomic_fetch_add(&sc->tt->scans, 1);
    ts_load_note(s, sc->tt, TS_LOAD_SCAN,
                 req->start_key.len > 0 ? req->start_key : req->prefix);
  }
  if (e == NULL) {
    /* On the list before the first chunk can park; a tablet that left
     * service meanwhile ends the scan at its first chunk (scan_fill). */
    pthread_mutex_lock(&s->mu);
    sc->next = s->scans;
    if (s->scans != NULL) s->scans->prev = sc;
    s->scans = sc;
    pthread_mutex_unlock(&s->mu);
  }
  if (e != NULL) {
    /* A refused scan: the first and only chunk carries the status. */
    rpc_scan_chunk msg = {0};
    rpc_status st;
    ts_status_fill(&st, e, &sc->rb);
    msg.status = &st;
    msg.last = true;
    msg.end = RPC_SCAN_END_ERROR;
    rpc_call_reply(call, &msg);
    scan_destroy(sc);
    err_free(e);
    return;
  }
  sc->max_bytes = req->chunk_max_bytes ? req->chunk_max_bytes
                                       : MICA_SCAN_DEFAULT_CHUNK_BYTES;
  if (sc->max_bytes > MICA_SCAN_MAX_CHUNK_BYTES)
    sc->max_bytes = MICA_SCAN_MAX_CHUNK_BYTES;
  sc->max_rows = req->chunk_max_rows ? req->chunk_max_rows
                                     : MICA_SCAN_DEFAULT_CHUNK_ROWS;
  if (sc->max_rows > MICA_SCAN_MAX_CHUNK_ROWS)
    sc->max_rows = MICA_SCAN_MAX_CHUNK_ROWS;
  scan_step(call, sc, NULL);
}

/* A scan answered on the polling thread (h_scan): at most this many rows,
 * so its one chunk is the whole stream, and a bounded read. */
#define TS_INLINE_SCAN_ROWS 128

/* Runs on the polling thread (RPC_INLINE): a short scan, whose answer is
 * one chunk of at most TS_INLINE_SCAN_ROWS rows within the default chunk
 * size, is read and answered right here; any other goes to the stream
 * pool. A longer scan still parks between its chunks there. */
static void h_scan(rpc_call *call, const void *request, void *ctx) {
  const rpc_scan_request *req = (const rpc_scan_request *)request;
  size_t chunk_bytes = req->chunk_max_bytes ? req->chunk_max_bytes
                                            : MICA_SCAN_DEFAULT_CHUNK_BYTES;
  size_t chunk_rows = req->chunk_max_rows ? req->chunk_max_rows
                                          : MICA_SCAN_DEFAULT_CHUNK_ROWS;
  if (req->limit > 0 && req->limit <= TS_INLINE_SCAN_ROWS &&
      req->limit <= chunk_rows &&
      chunk_bytes <= MICA_SCAN_DEFAULT_CHUNK_BYTES)
    scan_run(call, request, ctx);
  else
    rpc_call_offload(call, scan_run, ctx);
}

mica_err *ts_data_register(ts_server *s) {
  /* Reads are answered on the polling thread that received them (Scans
   * when short) unless they may wait on the network (Gets and short
   * MultiGets then try there first: the top of this file); writes always wait
   * for their group commit on a worker (the top of this file). */
  unsigned read_scan = reads_may_wait(s) ? 0 : RPC_INLINE;
  const rpc_handler h[] = {
      {&rpc_m_ts_get, h_get, s, 0},
      {&rpc_m_ts_multi_get, h_multi_get, s, 0},
      {&rpc_m_ts_put, h_put, s, RPC_OFFLOAD},
      {&rpc_m_ts_delete, h_delete, s, RPC_OFFLOAD},
      {&rpc_m_ts_batch, h_batch, s, RPC_OFFLOAD},
      {&rpc_m_ts_scan, read_scan ? h_scan : scan_run, s, read_scan},
  };
  return rpc_server_register(s->rpc, h, sizeof h / sizeof h[0]);
}
