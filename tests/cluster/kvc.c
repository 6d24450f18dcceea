/* kvc: lookup-then-call data operations with retries, for cluster tests. */
#include "tests/cluster/kvc.h"

#include <stdlib.h>
#include <string.h>

bool kvc_retryable(int code) {
  return code == MICA_NOT_SERVING || code == MICA_STALE_EPOCH ||
         code == MICA_OUT_OF_RANGE || code == MICA_LEASE_EXPIRED ||
         code == MICA_UNAVAILABLE || code == MICA_DEADLINE_EXCEEDED;
}

static slice pb(slice s) {
  slice d = s;
  return d;
}

mica_err *kvc_create_table(cluster *c, const char *name, const slice *splits,
                           size_t n) {
  rpc_create_table_request q = {0};
  q.name = (char *)name;
  slice *k = xcalloc(n + 1, sizeof(*k));
  for (size_t i = 0; i < n; i++) k[i] = pb(splits[i]);
  q.split_keys = k;
  q.n_split_keys = n;
  mica_err *err = cl_call_master(c, &rpc_m_master_create_table, &q,
                                 10000, NULL);
  free(k);
  return err;
}

mica_err *kvc_lookup(cluster *c, const char *table, slice key, uint32_t count,
                     bool before, rpc_lookup_tablets_response **out) {
  rpc_lookup_tablets_request q = {0};
  q.table = (char *)table;
  q.key = pb(key);
  q.count = count;
  q.before = before;
  void *r = NULL;
  mica_err *err = cl_call_master(c, &rpc_m_master_lookup_tablets, &q,
                                 5000, &r);
  if (err) {
    rpc_msg_free(r);
    *out = NULL;
    return err;
  }
  *out = (rpc_lookup_tablets_response *)r;
  return NULL;
}

mica_err *kvc_route(cluster *c, const char *table, slice key,
                    int64_t timeout_ms, rpc_tablet_route **route,
                    rpc_lookup_tablets_response **out) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    rpc_lookup_tablets_response *r = NULL;
    mica_err *err = kvc_lookup(c, table, key, 1, false, &r);
    if (err == NULL && r->n_tablets == 1 && r->tablets[0].location &&
        r->tablets[0].desc) {
      *route = &r->tablets[0];
      *out = r;
      return NULL;
    }
    rpc_msg_free(r ? r : NULL);
    if (err && !kvc_retryable(err_code(err))) return err;
    if (cl_now_ms() > until) {
      if (err) return err_wrap(err, "no route before the deadline");
      return err_new(MICA_UNAVAILABLE, "tablet of the key has no location "
                     "before the deadline");
    }
    err_free(err);
    cl_sleep_ms(10);
  }
}

void kvc_ref_of(const rpc_tablet_route *rt, rpc_tablet_ref *ref) {
  memset(ref, 0, sizeof *ref);
  ref->tablet_id = rt->desc->tablet_id;
  ref->range_epoch = rt->desc->range_epoch;
  ref->assign_epoch = rt->location->assign_epoch;
}

/* One attempt of a unary data call to the server of `rt`; the error of the
 * transport or of the response's Status. *resp is set when one arrived. */
static mica_err *call_ts(cluster *c, const rpc_tablet_route *rt,
                         const rpc_method *m, const void *q,
                         void **resp) {
  *resp = NULL;
  rpc_channel *ch = cl_channel(c, rt->location->address);
  if (ch == NULL) return err_new(MICA_UNAVAILABLE, "no channel");
  mica_err *err = rpc_unary(ch, m, q, 5000, resp);
  if (err) return err;
  return cl_response_err(*resp);
}

/* Runs `attempt` until it succeeds, fails for good or the deadline. */
typedef mica_err *(*attempt_fn)(cluster *c, void *arg,
                                const rpc_tablet_route *rt);

static mica_err *with_retries(cluster *c, const char *table, slice key,
                              int64_t timeout_ms, attempt_fn fn, void *arg) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    rpc_tablet_route *rt;
    rpc_lookup_tablets_response *lr;
    int64_t left = (int64_t)(until - cl_now_ms());
    mica_err *err = kvc_route(c, table, key, left > 0 ? left : 1, &rt, &lr);
    if (err) return err;
    err = fn(c, arg, rt);
    rpc_msg_free(lr);
    if (err == NULL || !kvc_retryable(err_code(err))) return err;
    if (cl_now_ms() > until) return err;
    err_free(err);
    cl_sleep_ms(5);
  }
}

typedef struct put_arg {
  slice key, value;
} put_arg;

static mica_err *put_once(cluster *c, void *arg,
                          const rpc_tablet_route *rt) {
  put_arg *a = arg;
  rpc_tablet_ref ref;
  kvc_ref_of(rt, &ref);
  rpc_put_request q = {0};
  q.tablet = &ref;
  q.key = pb(a->key);
  q.value = pb(a->value);
  void *r;
  mica_err *err = call_ts(c, rt, &rpc_m_ts_put, &q, &r);
  rpc_msg_free(r);
  return err;
}

mica_err *kvc_put(cluster *c, const char *table, slice key, slice value,
                  int64_t timeout_ms) {
  put_arg a = {key, value};
  return with_retries(c, table, key, timeout_ms, put_once, &a);
}

typedef struct batch_arg {
  const slice *keys, *vals;
  size_t n;
  size_t done; /* keys acknowledged by the last successful attempt */
} batch_arg;

static bool before_end(slice key, const rpc_tablet_descriptor *d) {
  if (d->end_key.len == 0) return true;
  return slice_cmp(key, slice_make(d->end_key.data, d->end_key.len)) < 0;
}

static mica_err *batch_once(cluster *c, void *arg,
                            const rpc_tablet_route *rt) {
  batch_arg *a = arg;
  size_t n = 0;
  while (n < a->n && before_end(a->keys[n], rt->desc)) n++;
  if (n == 0) return err_new(MICA_OUT_OF_RANGE, "lookup returned a tablet "
                             "ending before the key");
  rpc_mutation *mu = xcalloc(n, sizeof(*mu));
  for (size_t i = 0; i < n; i++) {
    memset(&mu[i], 0, sizeof mu[i]);
    mu[i].kind = a->vals ? RPC_MUTATION_PUT : RPC_MUTATION_DELETE;
    mu[i].key = pb(a->keys[i]);
    if (a->vals) mu[i].value = pb(a->vals[i]);
  }
  rpc_tablet_ref ref;
  kvc_ref_of(rt, &ref);
  rpc_batch_request q = {0};
  q.tablet = &ref;
  q.mutations = mu;
  q.n_mutations = n;
  void *r;
  mica_err *err = call_ts(c, rt, &rpc_m_ts_batch, &q, &r);
  rpc_msg_free(r);
  free(mu);
  if (err == NULL) a->done = n;
  return err;
}

mica_err *kvc_put_sorted(cluster *c, const char *table, const slice *keys,
                         const slice *vals, size_t n, int64_t timeout_ms) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  size_t at = 0;
  while (at < n) {
    batch_arg a = {keys + at, vals ? vals + at : NULL, n - at, 0};
    int64_t left = (int64_t)(until - cl_now_ms());
    mica_err *err = with_retries(c, table, keys[at], left > 0 ? left : 1,
                                 batch_once, &a);
    if (err) return err;
    at += a.done;
  }
  return NULL;
}

mica_err *kvc_delete_sorted(cluster *c, const char *table, const slice *keys,
                            size_t n, int64_t timeout_ms) {
  return kvc_put_sorted(c, table, keys, NULL, n, timeout_ms);
}

typedef struct get_arg {
  slice key;
  bool *found;
  buf *value;
} get_arg;

static mica_err *get_once(cluster *c, void *arg,
                          const rpc_tablet_route *rt) {
  get_arg *a = arg;
  rpc_tablet_ref ref;
  kvc_ref_of(rt, &ref);
  rpc_get_request q = {0};
  q.tablet = &ref;
  q.key = pb(a->key);
  void *r;
  mica_err *err = call_ts(c, rt, &rpc_m_ts_get, &q, &r);
  if (err == NULL) {
    const rpc_get_response *g = (const void *)r;
    *a->found = g->found;
    buf_clear(a->value);
    if (g->found) buf_append(a->value, g->value.data, g->value.len);
  }
  rpc_msg_free(r);
  return err;
}

mica_err *kvc_get(cluster *c, const char *table, slice key, bool *found,
                  buf *value, int64_t timeout_ms) {
  get_arg a = {key, found, value};
  return with_retries(c, table, key, timeout_ms, get_once, &a);
}

/* Scans one tablet from `resume`. Advances `resume` past every row seen;
 * *done when the table is exhausted or fn asked to stop. */
static mica_err *scan_tablet(cluster *c, const rpc_tablet_route *rt,
                             buf *resume, kvc_row_fn fn, void *arg,
                             bool *done) {
  rpc_channel *ch = cl_channel(c, rt->location->address);
  if (ch == NULL) return err_new(MICA_UNAVAILABLE, "no channel");
  rpc_tablet_ref ref;
  kvc_ref_of(rt, &ref);
  rpc_scan_request q = {0};
  q.tablet = &ref;
  q.start_key = pb(buf_slice(resume));
  rpc_stream *st = NULL;
  mica_err *err = rpc_stream_open(ch, &rpc_m_ts_scan, &q, 30000, &st);
  if (err) return err;
  for (;;) {
    void *m = NULL;
    err = rpc_stream_next(st, &m);
    if (err) break;
    if (m == NULL) {
      err = err_new(MICA_UNAVAILABLE, "scan stream ended without a last "
                    "chunk");
      break;
    }
    const rpc_scan_chunk *ch_ = (const void *)m;
    bool stop = false;
    for (size_t i = 0; i < ch_->n_rows && !stop; i++) {
      slice k = slice_make(ch_->rows[i].key.data, ch_->rows[i].key.len);
      slice v = slice_make(ch_->rows[i].value.data, ch_->rows[i].value.len);
      stop = !fn(arg, k, v);
      buf_clear(resume);
      buf_append_slice(resume, k);
      buf_push(resume, 0);
    }
    if (stop) {
      *done = true;
      rpc_msg_free(m);
      break;
    }
    err = rpc_status_err(ch_->status);
    if (err == NULL && ch_->last) {
      const rpc_tablet_descriptor *d =
          ch_->tablet ? ch_->tablet : rt->desc;
      if (d->end_key.len == 0) {
        *done = true;
      } else {
        buf_clear(resume);
        buf_append(resume, d->end_key.data, d->end_key.len);
      }
    }
    bool last = ch_->last;
    rpc_msg_free(m);
    if (err || last) break;
  }
  rpc_stream_free(st);
  return err;
}

mica_err *kvc_scan(cluster *c, const char *table, kvc_row_fn fn, void *arg,
                   int64_t timeout_ms) {
  uint64_t until = cl_now_ms() + (uint64_t)timeout_ms;
  buf resume = BUF_INIT;
  bool done = false;
  mica_err *err = NULL;
  while (!done) {
    rpc_tablet_route *rt;
    rpc_lookup_tablets_response *lr;
    int64_t left = (int64_t)(until - cl_now_ms());
    err = kvc_route(c, table, buf_slice(&resume), left > 0 ? left : 1, &rt,
                    &lr);
    if (err) break;
    err = scan_tablet(c, rt, &resume, fn, arg, &done);
    rpc_msg_free(lr);
    if (err == NULL) continue;
    if (!kvc_retryable(err_code(err)) || cl_now_ms() > until) break;
    err_free(err);
    err = NULL;
    cl_sleep_ms(10);
  }
  buf_free(&resume);
  return err;
}
