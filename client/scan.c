/* scan: the cross-tablet scanner.
 *
 * A scan is a walk over tablets in key order (or reverse key order), one
 * Scan stream per tablet. The scanner keeps a cursor: for a forward scan the
 * smallest key it may still return (inclusive), for a reverse scan the key
 * below which it continues (exclusive; empty = the end of the key space).
 * The cursor moves past every row handed to the caller, so whatever happens
 * to a stream (a routing error because the tablet split or moved, a lost
 * connection, a stream deadline) the scan reopens at the cursor under fresh
 * routes and neither repeats nor skips a key. When a tablet's part is
 * exhausted (SCAN_END_RANGE) the cursor jumps to that tablet's boundary as
 * the server reported it.
 *
 * Prefix scans are narrowed to [prefix, successor(prefix)) on the client so
 * they visit only the tablets that can hold such keys; the prefix is still
 * sent so servers filter too. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

/* Streams may stay open while the caller works on rows; a stream that runs
 * out of time is reopened at the cursor, so this only bounds churn. */
#define SCAN_STREAM_MIN_MS 60000

struct mica_scanner {
  mica_client *c;
  char *table;
  bool reverse, keys_only;
  buf lo;      /* effective inclusive lower bound; empty = none */
  buf hi;      /* effective exclusive upper bound; empty = none */
  buf prefix;
  uint64_t limit, returned;
  buf cursor;  /* see the file comment */
  bool done;
  rpc_route route;      /* tablet of the open stream */
  rpc_stream *stream;  /* NULL between tablets */
  bool stream_progress; /* the open stream delivered a chunk */
  rpc_scan_chunk *chunk;
  size_t pos;
  /* A salted table's scan: the merge of one scanner per bucket (salt.c);
   * the fields above are then unused. */
  mcl_salt_scan *salted;
};

/* True when nothing is left between the cursor and the far bound. */
static bool exhausted(const mica_scanner *s) {
  if (s->reverse) {
    /* cursor empty means +infinity. */
    return s->cursor.len > 0 && s->lo.len > 0 &&
           slice_cmp(buf_slice(&s->cursor), buf_slice(&s->lo)) <= 0;
  }
  return s->hi.len > 0 && slice_cmp(buf_slice(&s->cursor), buf_slice(&s->hi)) >= 0;
}

static void close_stream(mica_scanner *s) {
  rpc_msg_free(s->chunk);
  s->chunk = NULL;
  s->pos = 0;
  rpc_stream_free(s->stream);
  s->stream = NULL;
  s->stream_progress = false;
}

static mica_err *open_stream(mica_scanner *s, mcl_retry *r) {
  mica_client *c = s->c;
  if (s->route.address == NULL) {
    mica_err *e = mcl_locate(c, r, s->table, buf_slice(&s->cursor), s->reverse, &s->route);
    if (e != NULL) return e;
  }
  rpc_tablet_ref ref;
  mcl_tablet_ref(&ref, &s->route);
  rpc_scan_request req = {0};
  req.tablet = &ref;
  const buf *start = s->reverse ? &s->lo : &s->cursor;
  const buf *end = s->reverse ? &s->cursor : &s->hi;
  req.start_key.data = start->data;
  req.start_key.len = start->len;
  req.end_key.data = end->data;
  req.end_key.len = end->len;
  req.prefix.data = s->prefix.data;
  req.prefix.len = s->prefix.len;
  req.limit = s->limit ? s->limit - s->returned : 0;
  req.reverse = s->reverse;
  req.keys_only = s->keys_only;
  int64_t timeout = c->opts.deadline_ms > SCAN_STREAM_MIN_MS ? c->opts.deadline_ms
                                                             : SCAN_STREAM_MIN_MS;
  mcl_conn *k = mcl_conn_get(c, s->route.address);
  atomic_fetch_add_explicit(&c->server_rpcs, 1, memory_order_relaxed);
  mica_err *e = rpc_stream_open(mcl_conn_channel(k), &rpc_m_ts_scan, &req, timeout, &s->stream);
  s->stream_progress = false;
  return e;
}

/* The current tablet's part is done: move the cursor to its boundary. */
static void next_tablet(mica_scanner *s, const rpc_tablet_descriptor *d) {
  slice start = d != NULL ? slice_make(d->start_key.data, d->start_key.len)
                          : buf_slice(&s->route.start_key);
  slice end = d != NULL ? slice_make(d->end_key.data, d->end_key.len)
                        : buf_slice(&s->route.end_key);
  slice edge = s->reverse ? start : end;
  if (edge.len == 0) {
    s->done = true;
  } else {
    buf_clear(&s->cursor);
    buf_append_slice(&s->cursor, edge);
    if (exhausted(s)) s->done = true;
  }
  rpc_route_clear(&s->route);
}

/* A stream failed: digest the failure and decide whether to reopen. */
static mica_err *stream_failed(mica_scanner *s, mcl_retry *r, mica_err *e,
                               const rpc_status *st) {
  bool progressed = s->stream_progress;
  rpc_route used = s->route;
  memset(&s->route, 0, sizeof s->route);
  close_stream(s);
  /* A stream that ran out of its own time after delivering rows is simply
   * reopened at the cursor. */
  if (st == NULL && err_code(e) == MICA_DEADLINE_EXCEEDED && progressed) {
    err_free(e);
    rpc_route_clear(&used);
    return NULL;
  }
  e = mcl_after_failure(s->c, r, s->table, &used, e, st);
  rpc_route_clear(&used);
  return e;
}

int mica_scan_next(mica_scanner *s, int *has_row, const void **key, size_t *key_len,
                   const void **value, size_t *value_len) {
  if (s->salted != NULL)
    return mcl_salt_scan_next(s->salted, has_row, key, key_len, value, value_len);
  *has_row = 0;
  mcl_retry r;
  mcl_retry_init(&r, s->c);
  mica_err *e = NULL;
  for (;;) {
    if (s->limit && s->returned >= s->limit) {
      s->done = true;
      break;
    }
    if (s->chunk != NULL && s->pos < s->chunk->n_rows) {
      const rpc_key_value *kv = &s->chunk->rows[s->pos++];
      slice k = slice_make(kv->key.data, kv->key.len);
      /* Rows outside the bounds or at or behind the cursor would be a
       * server bug; refuse them rather than repeat a key. */
      bool ok = k.len > 0 && (s->lo.len == 0 || slice_cmp(k, buf_slice(&s->lo)) >= 0) &&
                (s->hi.len == 0 || slice_cmp(k, buf_slice(&s->hi)) < 0);
      if (ok && s->reverse)
        ok = s->cursor.len == 0 || slice_cmp(k, buf_slice(&s->cursor)) < 0;
      else if (ok)
        ok = slice_cmp(k, buf_slice(&s->cursor)) >= 0;
      if (!ok) {
        e = err_new(MICA_INTERNAL, "scan of '%s': server %s returned a key out of order",
                    s->table, s->route.address ? s->route.address : "?");
        break;
      }
      buf_clear(&s->cursor);
      buf_append_slice(&s->cursor, k);
      if (!s->reverse) buf_push(&s->cursor, 0);
      s->returned++;
      if (s->limit && s->returned >= s->limit) s->done = true;
      *has_row = 1;
      *key = kv->key.data;
      *key_len = kv->key.len;
      *value = s->keys_only ? NULL : kv->value.data;
      *value_len = s->keys_only ? 0 : kv->value.len;
      break;
    }
    if (s->chunk != NULL) {
      rpc_scan_chunk *ch = s->chunk;
      if (ch->last) {
        const rpc_status *st = ch->status;
        mica_err *se = rpc_status_err(st);
        if (se != NULL) {
          s->chunk = NULL;
          e = stream_failed(s, &r, se, st);
          rpc_msg_free(ch);
          if (e != NULL) break;
          continue;
        }
        if (ch->end == RPC_SCAN_END_LIMIT) s->done = true;
        else next_tablet(s, ch->tablet);
        close_stream(s);
        continue;
      }
      rpc_msg_free(ch);
      s->chunk = NULL;
      s->pos = 0;
    }
    if (s->done) break;
    if (s->stream == NULL) {
      e = open_stream(s, &r);
      if (e != NULL) {
        if (s->route.address != NULL) e = stream_failed(s, &r, e, NULL);
        if (e != NULL) break;
        continue;
      }
    }
    void *msg = NULL;
    e = rpc_stream_next(s->stream, &msg);
    if (e == NULL && msg == NULL)
      e = err_new(MICA_UNAVAILABLE, "scan stream from %s ended without its last chunk",
                  s->route.address);
    if (e != NULL) {
      e = stream_failed(s, &r, e, NULL);
      if (e != NULL) break;
      continue;
    }
    s->chunk = (rpc_scan_chunk *)msg;
    s->pos = 0;
    s->stream_progress = true;
  }
  if (s->done && *has_row == 0 && s->stream != NULL) close_stream(s);
  mcl_retry_done(&r);
  return mcl_finish(e);
}

void mcl_scan_start(mica_scanner *s) {
  if (s->salted != NULL || s->stream != NULL || s->chunk != NULL || s->done ||
      (s->limit && s->returned >= s->limit))
    return;
  mcl_retry r;
  mcl_retry_init(&r, s->c);
  /* A failure leaves no stream: mica_scan_next opens it again and digests
   * the failure there, as it does for any stream it opens. */
  err_free(open_stream(s, &r));
  mcl_retry_done(&r);
}

int mica_scan_open(mica_client *c, const char *table, const mica_scan_options *opts,
                   mica_scanner **out) {
  *out = NULL;
  mica_err *e = mcl_check_table(table);
  if (e != NULL) return mcl_finish(e);
  mica_scan_options none;
  memset(&none, 0, sizeof none);
  if (opts == NULL) opts = &none;
  slice start = slice_make(opts->start, opts->start ? opts->start_len : 0);
  slice end = slice_make(opts->end, opts->end ? opts->end_len : 0);
  slice prefix = slice_make(opts->prefix, opts->prefix ? opts->prefix_len : 0);
  if (start.len > MICA_MAX_KEY || end.len > MICA_MAX_KEY || prefix.len > MICA_MAX_KEY)
    return mcl_finish(err_new(MICA_INVALID_ARGUMENT, "scan bound longer than %u bytes",
                             MICA_MAX_KEY));
  if (start.len > 0 && end.len > 0 && slice_cmp(start, end) > 0)
    return mcl_finish(err_new(MICA_INVALID_ARGUMENT, "scan start is greater than its end"));
  mcl_retry r;
  mcl_retry_init(&r, c);
  uint32_t buckets = 0;
  e = mcl_salt_get(c, &r, table, &buckets);
  mcl_retry_done(&r);
  if (e == NULL && buckets > 0) {
    mica_scanner *s = xcalloc(1, sizeof *s);
    s->c = c;
    s->table = xstrdup(table);
    e = mcl_salt_scan_open(c, table, buckets, start, end, prefix, opts->limit,
                           opts->reverse != 0, opts->keys_only != 0, &s->salted);
    if (e != NULL) {
      mica_scan_close(s);
      return mcl_finish(e);
    }
    *out = s;
    return mcl_finish(NULL);
  }
  if (e == NULL) e = mcl_scan_open_raw(c, table, start, end, prefix, opts->limit,
                                      opts->reverse != 0, opts->keys_only != 0, out);
  return mcl_finish(e);
}

mica_err *mcl_scan_open_raw(mica_client *c, const char *table, slice start,
                            slice end, slice prefix, uint64_t limit,
                            bool reverse, bool keys_only, mica_scanner **out) {
  *out = NULL;
  mica_err *e = NULL;
  mica_scanner *s = xcalloc(1, sizeof *s);
  s->c = c;
  s->table = xstrdup(table);
  s->reverse = reverse;
  s->keys_only = keys_only;
  s->limit = limit;
  buf_append_slice(&s->prefix, prefix);
  buf_append_slice(&s->lo, slice_cmp(start, prefix) >= 0 ? start : prefix);
  buf_append_slice(&s->hi, end);
  if (prefix.len > 0) {
    buf succ = BUF_INIT;
    slice_prefix_successor(prefix, &succ);
    if (succ.len > 0 && (end.len == 0 || slice_cmp(buf_slice(&succ), end) < 0)) {
      buf_clear(&s->hi);
      buf_append_slice(&s->hi, buf_slice(&succ));
    }
    buf_free(&succ);
  }
  buf_append_slice(&s->cursor, buf_slice(s->reverse ? &s->hi : &s->lo));
  if (s->lo.len > 0 && s->hi.len > 0 && slice_cmp(buf_slice(&s->lo), buf_slice(&s->hi)) >= 0)
    s->done = true;

  /* Locate the first tablet now, so an unknown table fails here. */
  mcl_retry r;
  mcl_retry_init(&r, c);
  e = mcl_locate(c, &r, s->table, buf_slice(&s->cursor), s->reverse, &s->route);
  mcl_retry_done(&r);
  if (e != NULL) {
    mica_scan_close(s);
    return e;
  }
  *out = s;
  return NULL;
}

void mica_scan_close(mica_scanner *s) {
  if (s == NULL) return;
  mcl_salt_scan_free(s->salted);
  close_stream(s);
  rpc_route_clear(&s->route);
  buf_free(&s->lo);
  buf_free(&s->hi);
  buf_free(&s->prefix);
  buf_free(&s->cursor);
  free(s->table);
  free(s);
}
