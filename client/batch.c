/* batch: write batches cut at tablet boundaries, and multi-get fanned out
 * to every server at once.
 *
 * A batch is atomic only inside one tablet (the server applies a Batch
 * request all or nothing), so the client groups mutations by the tablet
 * holding their keys, keeping their order inside each group, and sends the
 * groups in key order. A group refused with a routing error applied
 * nothing; its mutations are grouped again under the new routes, which is
 * why a split during a batch never breaks a part's atomicity.
 *
 * A multi-get sends, per round, one MultiGet per server holding the parts of
 * all its tablets, all in flight together on one rpc_async. Keys whose part
 * came back with a routing error or an unreachable server go to the next
 * round under updated routes. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

/* ---- the batch object ---- */

typedef struct mut {
  bool is_delete;
  buf key;
  buf value;
} mut;

struct mica_batch {
  mut *v;
  size_t n, cap;
};

mica_batch *mica_batch_new(void) { return xcalloc(1, sizeof(mica_batch)); }

void mica_batch_clear(mica_batch *b) {
  for (size_t i = 0; i < b->n; i++) {
    buf_free(&b->v[i].key);
    buf_free(&b->v[i].value);
  }
  b->n = 0;
}

void mica_batch_free(mica_batch *b) {
  if (b == NULL) return;
  mica_batch_clear(b);
  free(b->v);
  free(b);
}

size_t mica_batch_count(const mica_batch *b) { return b->n; }

static int batch_add(mica_batch *b, bool del, const void *key, size_t key_len,
                     const void *value, size_t value_len) {
  mica_err *e = mcl_check_key(slice_make(key, key_len));
  if (e == NULL && value_len > MICA_MAX_VALUE)
    e = err_new(MICA_INVALID_ARGUMENT, "value of %zu bytes exceeds the %zu-byte limit",
                value_len, MICA_MAX_VALUE);
  if (e == NULL && value_len > 0 && value == NULL)
    e = err_new(MICA_INVALID_ARGUMENT, "NULL value");
  if (e != NULL) return mcl_finish(e);
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 16;
    b->v = xrealloc(b->v, b->cap * sizeof *b->v);
  }
  mut *m = &b->v[b->n++];
  memset(m, 0, sizeof *m);
  m->is_delete = del;
  buf_append(&m->key, key, key_len);
  if (value_len > 0) buf_append(&m->value, value, value_len);
  return mcl_finish(NULL);
}

int mica_batch_put(mica_batch *b, const void *key, size_t key_len, const void *value,
                   size_t value_len) {
  return batch_add(b, false, key, key_len, value, value_len);
}

int mica_batch_delete(mica_batch *b, const void *key, size_t key_len) {
  return batch_add(b, true, key, key_len, NULL, 0);
}

/* ---- grouping by tablet ---- */

/* One tablet's share of a batch or multi-get: indices into the caller's
 * array, in the caller's order. */
typedef struct group {
  rpc_route route;
  size_t *idx;
  size_t n, cap;
} group;

static void group_add(group *g, size_t i) {
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 8;
    g->idx = xrealloc(g->idx, g->cap * sizeof *g->idx);
  }
  g->idx[g->n++] = i;
}

static void groups_free(group *gs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    rpc_route_clear(&gs[i].route);
    free(gs[i].idx);
  }
  free(gs);
}

static int group_cmp(const void *a, const void *b) {
  const group *x = a, *y = b;
  return slice_cmp(buf_slice(&x->route.start_key), buf_slice(&y->route.start_key));
}

/* Groups the keys key_at(i) for i in pending[0..np) by tablet, in key order
 * of the tablets. Locates through the cache (or the master). */
static mica_err *group_keys(mica_client *c, mcl_retry *r, const char *table,
                            const size_t *pending, size_t np,
                            slice (*key_at)(const void *, size_t), const void *src,
                            group **out, size_t *n_out) {
  group *gs = NULL;
  size_t ng = 0, cap = 0;
  mica_err *e = NULL;
  for (size_t p = 0; p < np && e == NULL; p++) {
    slice key = key_at(src, pending[p]);
    group *g = NULL;
    /* Consecutive keys usually share a tablet: test the groups first. */
    for (size_t j = ng; j-- > 0;)
      if (rpc_route_contains(&gs[j].route, key)) {
        g = &gs[j];
        break;
      }
    if (g == NULL) {
      rpc_route route = {0};
      e = mcl_locate(c, r, table, key, false, &route);
      if (e != NULL) break;
      for (size_t j = 0; j < ng && g == NULL; j++)
        if (gs[j].route.tablet_id == route.tablet_id) g = &gs[j];
      if (g != NULL) {
        rpc_route_clear(&route);
      } else {
        if (ng == cap) {
          cap = cap ? 2 * cap : 8;
          gs = xrealloc(gs, cap * sizeof *gs);
        }
        g = &gs[ng++];
        memset(g, 0, sizeof *g);
        g->route = route;
      }
    }
    group_add(g, pending[p]);
  }
  if (e != NULL) {
    groups_free(gs, ng);
    return e;
  }
  if (ng > 1) qsort(gs, ng, sizeof *gs, group_cmp);
  *out = gs;
  *n_out = ng;
  return NULL;
}

/* ---- batch write ---- */

static int size_cmp(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static slice mut_key(const void *src, size_t i) {
  return buf_slice(&((const mica_batch *)src)->v[i].key);
}

static mica_err *send_group(mica_client *c, const mica_batch *b, const group *g,
                            mcl_retry *r, void **resp) {
  rpc_tablet_ref ref;
  mcl_tablet_ref(&ref, &g->route);
  rpc_mutation *ms = xcalloc(g->n, sizeof *ms);
  for (size_t i = 0; i < g->n; i++) {
    const mut *m = &b->v[g->idx[i]];
    memset(&ms[i], 0, sizeof ms[i]);
    ms[i].kind = m->is_delete ? RPC_MUTATION_DELETE : RPC_MUTATION_PUT;
    ms[i].key.data = m->key.data;
    ms[i].key.len = m->key.len;
    ms[i].value.data = m->value.data;
    ms[i].value.len = m->value.len;
  }
  rpc_batch_request req = {0};
  req.tablet = &ref;
  req.n_mutations = g->n;
  req.mutations = ms;
  mcl_conn *k = mcl_conn_get(c, g->route.address);
  atomic_fetch_add_explicit(&c->server_rpcs, 1, memory_order_relaxed);
  mica_err *e = rpc_unary(mcl_conn_channel(k), &rpc_m_ts_batch, &req, mcl_retry_remaining_ms(r), resp);
  free(ms);
  return e;
}

/* *out = NULL for an unsalted table, else a copy of `b` with salted keys
 * (caller frees with mica_batch_free). */
static mica_err *salt_batch(mica_client *c, const char *table,
                            const mica_batch *b, mica_batch **out,
                            uint64_t *salt_id) {
  *out = NULL;
  mcl_retry r;
  mcl_retry_init(&r, c);
  uint32_t n = 0;
  mica_err *e = mcl_salt_get_id(c, &r, table, &n, salt_id);
  mcl_retry_done(&r);
  for (size_t i = 0; e == NULL && n > 0 && i < b->n; i++)
    e = mcl_salt_check_key(buf_slice(&b->v[i].key), n, table);
  if (e != NULL || n == 0) return e;
  mica_batch *sb = mica_batch_new();
  sb->v = xcalloc(b->n, sizeof(mut));
  sb->cap = sb->n = b->n;
  for (size_t i = 0; i < b->n; i++) {
    sb->v[i].is_delete = b->v[i].is_delete;
    mcl_salt_key(buf_slice(&b->v[i].key), n, &sb->v[i].key);
    buf_append_slice(&sb->v[i].value, buf_slice(&b->v[i].value));
  }
  *out = sb;
  return NULL;
}

int mica_batch_write(mica_client *c, const char *table, const mica_batch *b,
                     unsigned flags, mica_batch_result *result) {
  mica_batch_result res = {0, 0};
  if (result != NULL) *result = res;
  mica_err *e = mcl_check_table(table);
  if (e != NULL) return mcl_finish(e);
  if (b->n == 0) return mcl_finish(NULL);
  /* A salted table's batch is sent as a copy with salted keys. */
  const mica_batch *orig = b;
  mica_batch *salted = NULL;
  uint64_t salt_id = 0;
  e = salt_batch(c, table, orig, &salted, &salt_id);
  if (e != NULL) return mcl_finish(e);
  if (salted != NULL) b = salted;

  size_t np = b->n;
  size_t *pending = xmalloc(np * sizeof *pending);
  for (size_t i = 0; i < np; i++) pending[i] = i;
  mcl_retry r;
  mcl_retry_init(&r, c);
  group *gs = NULL;
  size_t ng = 0;
  while (np > 0 && e == NULL) {
    e = group_keys(c, &r, table, pending, np, mut_key, b, &gs, &ng);
    if (e != NULL) break;
    /* The table was dropped and created again: salt the keys anew. */
    bool stale = false;
    for (size_t gi = 0; gi < ng && !stale; gi++)
      stale = mcl_salt_stale(c, table, salt_id, &gs[gi].route);
    if (stale) {
      groups_free(gs, ng);
      gs = NULL;
      ng = 0;
      mica_batch_free(salted);
      salted = NULL;
      b = orig;
      e = salt_batch(c, table, orig, &salted, &salt_id);
      if (e != NULL) break;
      if (salted != NULL) b = salted;
      e = mcl_retry_next(&r, err_new(MICA_UNAVAILABLE, "table '%s' was dropped "
                                     "and created again", table), false);
      continue;
    }
    res.parts = res.parts_applied + ng;
    if ((flags & MICA_BATCH_SINGLE_TABLET) && res.parts > 1) {
      e = err_new(MICA_INVALID_ARGUMENT,
                  "batch spans %zu tablets of '%s' and MICA_BATCH_SINGLE_TABLET was set",
                  res.parts, table);
      break;
    }
    size_t gi = 0;
    for (; gi < ng; gi++) {
      void *msg = NULL;
      e = send_group(c, b, &gs[gi], &r, &msg);
      const rpc_status *st = NULL;
      if (e == NULL) {
        st = rpc_response_status(msg);
        e = rpc_status_err(st);
      }
      if (e == NULL) {
        rpc_msg_free(msg);
        res.parts_applied++;
        continue;
      }
      e = mcl_after_failure(c, &r, table, &gs[gi].route, e, st);
      rpc_msg_free(msg);
      break;
    }
    /* Whatever was not applied is grouped again under the new routes. */
    size_t nn = 0;
    for (size_t j = gi; j < ng; j++)
      for (size_t t = 0; t < gs[j].n; t++) pending[nn++] = gs[j].idx[t];
    np = nn;
    /* Restore the caller's order inside the pending set: a later mutation of
     * the same key must still come later. */
    qsort(pending, np, sizeof *pending, size_cmp);
    groups_free(gs, ng);
    gs = NULL;
    ng = 0;
  }
  groups_free(gs, ng);
  free(pending);
  mcl_retry_done(&r);
  mica_batch_free(salted);
  if (result != NULL) *result = res;
  return mcl_finish(e);
}

/* ---- multi-get ---- */

typedef struct mg_src {
  const mica_key *keys;
} mg_src;

static slice mg_key(const void *src, size_t i) {
  const mica_key *k = &((const mg_src *)src)->keys[i];
  return slice_make(k->data, k->len);
}

/* The answer found so far for one key. */
typedef struct mg_ans {
  int code;       /* -1 while pending */
  slice value;    /* into a kept response */
} mg_ans;

/* The groups (tablets) of one server in one round. */
typedef struct mg_server {
  const char *address;
  size_t *gidx; /* indices into the round's groups */
  size_t n, cap;
} mg_server;

int mica_multi_get(mica_client *c, const char *table, const mica_key *keys, size_t n,
                   mica_value **values) {
  *values = NULL;
  mica_err *e = mcl_check_table(table);
  for (size_t i = 0; i < n && e == NULL; i++)
    e = mcl_check_key(slice_make(keys[i].data, keys[i].len));
  if (e != NULL) return mcl_finish(e);
  /* A salted table's keys are looked up in their salted form. */
  uint32_t buckets = 0;
  {
    mcl_retry sr;
    mcl_retry_init(&sr, c);
    e = mcl_salt_get(c, &sr, table, &buckets);
    mcl_retry_done(&sr);
  }
  for (size_t i = 0; i < n && e == NULL && buckets > 0; i++)
    e = mcl_salt_check_key(slice_make(keys[i].data, keys[i].len), buckets, table);
  if (e != NULL) return mcl_finish(e);
  mica_key *skeys = NULL;
  buf sbuf = BUF_INIT;
  if (buckets > 0) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += keys[i].len + 1;
    buf_reserve(&sbuf, total + 1);
    skeys = xcalloc(n ? n : 1, sizeof(*skeys));
    buf one = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
      mcl_salt_key(slice_make(keys[i].data, keys[i].len), buckets, &one);
      skeys[i].len = one.len;
      buf_append_slice(&sbuf, buf_slice(&one));
    }
    buf_free(&one);
    /* Pointers only once sbuf has stopped growing. */
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
      skeys[i].data = sbuf.data + off;
      off += skeys[i].len;
    }
    keys = skeys;
  }

  mg_ans *ans = xcalloc(n ? n : 1, sizeof *ans);
  size_t *pending = xmalloc((n ? n : 1) * sizeof *pending);
  size_t np = n;
  for (size_t i = 0; i < n; i++) {
    pending[i] = i;
    ans[i].code = -1;
  }
  mica_err *failure = NULL; /* the first key error not worth retrying */
  void **kept = NULL; /* responses the answers point into */
  size_t n_kept = 0, cap_kept = 0;
  mg_src src = {keys};
  mcl_retry r;
  mcl_retry_init(&r, c);

  while (np > 0 && e == NULL) {
    group *gs = NULL;
    size_t ng = 0;
    e = group_keys(c, &r, table, pending, np, mg_key, &src, &gs, &ng);
    if (e != NULL) break;
    mg_server *ss = xcalloc(ng, sizeof *ss);
    size_t ns = 0;
    for (size_t g = 0; g < ng; g++) {
      size_t s = 0;
      while (s < ns && strcmp(ss[s].address, gs[g].route.address) != 0) s++;
      if (s == ns) ss[ns++].address = gs[g].route.address;
      if (ss[s].n == ss[s].cap) {
        ss[s].cap = ss[s].cap ? 2 * ss[s].cap : 4;
        ss[s].gidx = xrealloc(ss[s].gidx, ss[s].cap * sizeof(size_t));
      }
      ss[s].gidx[ss[s].n++] = g;
    }
    rpc_async *a = NULL;
    e = rpc_async_new(&a);
    bool backoff = false, progressed = false;
    mica_err *reason = NULL;
    for (size_t s = 0; s < ns && e == NULL; s++) {
      rpc_multi_get_request req = {0};
      rpc_multi_get_part *parts = xcalloc(ss[s].n, sizeof *parts);
      rpc_tablet_ref *refs = xcalloc(ss[s].n, sizeof *refs);
      for (size_t j = 0; j < ss[s].n; j++) {
        group *g = &gs[ss[s].gidx[j]];
        memset(&parts[j], 0, sizeof parts[j]);
        mcl_tablet_ref(&refs[j], &g->route);
        parts[j].tablet = &refs[j];
        parts[j].n_keys = g->n;
        parts[j].keys = xcalloc(g->n, sizeof(slice));
        for (size_t t = 0; t < g->n; t++) {
          parts[j].keys[t].data = (uint8_t *)keys[g->idx[t]].data;
          parts[j].keys[t].len = keys[g->idx[t]].len;
        }
      }
      req.n_parts = ss[s].n;
      req.parts = parts;
      mcl_conn *k = mcl_conn_get(c, ss[s].address);
      atomic_fetch_add_explicit(&c->server_rpcs, 1, memory_order_relaxed);
      e = rpc_async_start(a, mcl_conn_channel(k), &rpc_m_ts_multi_get, &req,
                          mcl_retry_remaining_ms(&r), &ss[s]);
      for (size_t j = 0; j < ss[s].n; j++) free(parts[j].keys);
      free(refs);
      free(parts);
    }
    while (e == NULL && rpc_async_in_flight(a) > 0) {
      void *tag = NULL;
      void *msg = NULL;
      mica_err *te = NULL;
      if (!rpc_async_next(a, mcl_retry_remaining_ms(&r) + 1000, &tag, &msg, &te)) {
        e = err_new(MICA_DEADLINE_EXCEEDED, "multi-get in '%s': servers did not answer "
                                            "within the deadline", table);
        break;
      }
      mg_server *sv = tag;
      const rpc_multi_get_response *resp = (const rpc_multi_get_response *)msg;
      mica_err *whole = te;
      if (whole == NULL) whole = rpc_status_err(resp->status);
      if (whole == NULL && resp->n_parts != sv->n)
        whole = err_new(MICA_INTERNAL, "server %s answered %zu parts for %zu", sv->address,
                        resp->n_parts, sv->n);
      for (size_t j = 0; j < sv->n; j++) {
        group *g = &gs[sv->gidx[j]];
        const rpc_multi_get_part_result *pr = whole == NULL ? &resp->parts[j] : NULL;
        mica_err *pe = whole != NULL ? err_dup(whole) : rpc_status_err(pr->status);
        if (pe == NULL && pr->n_results != g->n)
          pe = err_new(MICA_INTERNAL, "server %s answered %zu results for %zu keys",
                       sv->address, pr->n_results, g->n);
        if (pe == NULL) {
          for (size_t t = 0; t < g->n; t++) {
            mg_ans *an = &ans[g->idx[t]];
            an->code = pr->results[t].found ? MICA_OK : MICA_NOT_FOUND;
            an->value = slice_make(pr->results[t].value.data, pr->results[t].value.len);
          }
          progressed = true;
          continue;
        }
        const rpc_status *st = te != NULL ? NULL
                                     : (whole != NULL ? resp->status : pr->status);
        mcl_verdict v = mcl_digest(c, table, &g->route, err_code(pe), st);
        if (v == MCL_FAIL) {
          for (size_t t = 0; t < g->n; t++) ans[g->idx[t]].code = err_code(pe);
          if (failure == NULL) failure = err_dup(pe);
        } else {
          if (v == MCL_RETRY_LATER) backoff = true;
          if (reason == NULL || err_code(reason) != err_code(pe)) {
            err_free(reason);
            reason = err_dup(pe);
          }
        }
        err_free(pe);
      }
      err_free(whole);
      if (msg != NULL) {
        if (n_kept == cap_kept) {
          cap_kept = cap_kept ? 2 * cap_kept : 8;
          kept = xrealloc(kept, cap_kept * sizeof *kept);
        }
        kept[n_kept++] = msg;
      }
    }
    rpc_async_free(a);
    for (size_t s = 0; s < ns; s++) free(ss[s].gidx);
    free(ss);
    groups_free(gs, ng);
    size_t nn = 0;
    for (size_t p = 0; p < np; p++)
      if (ans[pending[p]].code == -1) pending[nn++] = pending[p];
    np = nn;
    if (np > 0 && e == NULL) {
      /* A round that answered some keys does not count against the retry
       * budget's backoff: only a round that answered none waits. */
      mica_err *why = reason != NULL ? reason
                                     : err_new(MICA_UNAVAILABLE, "keys left unanswered");
      reason = NULL;
      e = mcl_retry_next(&r, why, backoff && !progressed);
    }
    err_free(reason);
  }
  int first_err = MICA_OK;
  for (size_t i = 0; i < n; i++) {
    if (ans[i].code == -1) ans[i].code = e != NULL ? err_code(e) : MICA_INTERNAL;
    if (first_err == MICA_OK && ans[i].code != MICA_OK && ans[i].code != MICA_NOT_FOUND)
      first_err = ans[i].code;
  }
  /* One allocation: the array, then every value's bytes. */
  size_t total = n * sizeof(mica_value);
  for (size_t i = 0; i < n; i++)
    if (ans[i].code == MICA_OK) total += ans[i].value.len + 1;
  mica_value *out = xmalloc(total ? total : 1);
  uint8_t *p = (uint8_t *)(out + n);
  for (size_t i = 0; i < n; i++) {
    out[i].code = ans[i].code;
    out[i].data = NULL;
    out[i].len = 0;
    if (ans[i].code == MICA_OK) {
      if (ans[i].value.len > 0) memcpy(p, ans[i].value.data, ans[i].value.len);
      out[i].data = p;
      out[i].len = ans[i].value.len;
      p += ans[i].value.len + 1;
    }
  }
  *values = out;
  for (size_t i = 0; i < n_kept; i++) rpc_msg_free(kept[i]);
  free(kept);
  free(ans);
  free(pending);
  free(skeys);
  buf_free(&sbuf);
  mcl_retry_done(&r);
  if (e == NULL && first_err != MICA_OK)
    e = failure != NULL ? err_wrap(err_dup(failure), "multi-get in '%s'", table)
                        : err_new(first_err, "multi-get in '%s': some keys failed", table);
  err_free(failure);
  return mcl_finish(e);
}
