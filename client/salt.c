/* salt: salted tables in libmica (docs/client.md, "Salted tables").
 *
 * A table created with N salt buckets stores user key k as the key
 * b || k, where b = crc32c(k) mod N is one byte. Writes of increasing keys
 * (timestamps) then land in N tablets, one per bucket, on as many servers,
 * instead of all in the table's last tablet. Point calls (get, put,
 * delete, batch, multi-get) salt each key and otherwise run unchanged; a
 * key always maps to the same bucket, so nothing else is needed.
 *
 * A scan cannot know which bucket holds the keys of a range, so it runs
 * one plain scanner per bucket over [b || start, b || end) (b+1 when the
 * range is open above) and merges their rows in key order (descending for
 * reverse scans), stripping the byte: the rows, their order and a limit
 * are those of an unsalted table. No key is in two buckets, so the merge
 * never sees a tie. Each bucket's scanner resumes on its own after a split,
 * a move or an error, as a plain scan does.
 *
 * The client learns a table's salt from the master's LookupTablets answers
 * (salt_buckets, table_id): every lookup records it, and a call on a table
 * whose salt is not known yet routes its key as unsalted first (for an
 * unsalted table that lookup is the one it needed anyway; a salted table
 * then salts the key and routes again), or asks the master when its route
 * came from the cache. It is cached per table name. The
 * entry is dropped when the table is dropped or created through this
 * client, and when routes of another table id are installed under the
 * name (the table was dropped and created again elsewhere). A write checks
 * the route it is about to use against the salt's table id
 * (mcl_salt_stale): on a mismatch the older of the two is dropped and the
 * key salted again, so no write goes out under the salt of a table that
 * no longer exists.
 *
 * Thread-safety: the cache has its own reader-writer lock; a salted
 * scanner is used by one thread at a time, like every scanner. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "client/client_int.h"

typedef struct salt_entry {
  char *table;
  uint64_t table_id;
  uint32_t n; /* 0 = unsalted */
} salt_entry;

struct mcl_salts {
  pthread_rwlock_t mu;
  salt_entry *v; /* guarded by mu */
  size_t n, cap;
};

mcl_salts *mcl_salts_new(void) {
  mcl_salts *s = xcalloc(1, sizeof(*s));
  pthread_rwlock_init(&s->mu, NULL);
  return s;
}

void mcl_salts_free(mcl_salts *s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->n; i++) free(s->v[i].table);
  free(s->v);
  pthread_rwlock_destroy(&s->mu);
  free(s);
}

/* mu held. */
static salt_entry *find(mcl_salts *s, const char *table) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i].table, table) == 0) return &s->v[i];
  return NULL;
}

/* mu held for writing. */
static void forget_locked(mcl_salts *s, salt_entry *x) {
  free(x->table);
  *x = s->v[--s->n];
}

void mcl_salt_forget(mica_client *c, const char *table) {
  pthread_rwlock_wrlock(&c->salts->mu);
  salt_entry *x = find(c->salts, table);
  if (x != NULL) forget_locked(c->salts, x);
  pthread_rwlock_unlock(&c->salts->mu);
}

void mcl_salt_note_id(mica_client *c, const char *table, uint64_t table_id) {
  if (table_id == 0) return;
  pthread_rwlock_rdlock(&c->salts->mu);
  salt_entry *x = find(c->salts, table);
  bool stale = x != NULL && x->table_id != 0 && x->table_id != table_id;
  pthread_rwlock_unlock(&c->salts->mu);
  if (!stale) return;
  pthread_rwlock_wrlock(&c->salts->mu);
  x = find(c->salts, table);
  if (x != NULL && x->table_id != 0 && x->table_id != table_id)
    forget_locked(c->salts, x);
  pthread_rwlock_unlock(&c->salts->mu);
}

bool mcl_salt_peek(mica_client *c, const char *table, uint32_t *n,
                   uint64_t *table_id) {
  pthread_rwlock_rdlock(&c->salts->mu);
  salt_entry *x = find(c->salts, table);
  if (x != NULL) {
    *n = x->n;
    *table_id = x->table_id;
  }
  pthread_rwlock_unlock(&c->salts->mu);
  return x != NULL;
}

/* Stores (table_id, n) for `table`. */
static void store(mica_client *c, const char *table, uint64_t id, uint32_t n) {
  pthread_rwlock_wrlock(&c->salts->mu);
  salt_entry *x = find(c->salts, table);
  if (x == NULL) {
    if (c->salts->n == c->salts->cap) {
      c->salts->cap = c->salts->cap ? 2 * c->salts->cap : 8;
      c->salts->v = xrealloc(c->salts->v, c->salts->cap * sizeof(salt_entry));
    }
    x = &c->salts->v[c->salts->n++];
    x->table = xstrdup(table);
  }
  x->table_id = id;
  x->n = n;
  pthread_rwlock_unlock(&c->salts->mu);
}

void mcl_salt_learn(mica_client *c, const char *table, uint32_t n,
                    uint64_t table_id) {
  /* An answer without a table id is from a master that predates salted
   * tables: the table is unsalted (id 0: no table-id checks). One with an
   * impossible count is ignored (the next lookup tells). */
  if (table_id == 0) n = 0;
  if (n == 1 || n > 255) return;
  store(c, table, table_id, n);
}

mica_err *mcl_salt_get(mica_client *c, mcl_retry *r, const char *table,
                       uint32_t *n) {
  uint64_t id;
  return mcl_salt_get_id(c, r, table, n, &id);
}

mica_err *mcl_salt_get_id(mica_client *c, mcl_retry *r, const char *table,
                          uint32_t *n, uint64_t *table_id) {
  pthread_rwlock_rdlock(&c->salts->mu);
  salt_entry *x = find(c->salts, table);
  bool hit = x != NULL;
  if (hit) {
    *n = x->n;
    *table_id = x->table_id;
  }
  pthread_rwlock_unlock(&c->salts->mu);
  if (hit) return NULL;
  /* Ask the master; the answer's routes are worth keeping too. */
  rpc_lookup_tablets_request req = {
      .table = table, .key = {NULL, 0}, .count = c->opts.prefetch};
  rpc_lookup_tablets_response *resp = NULL;
  atomic_fetch_add_explicit(&c->master_lookups, 1, memory_order_relaxed);
  mica_err *e = mcl_master_call(c, r, &rpc_m_master_lookup_tablets, &req,
                                (void **)&resp);
  if (e != NULL) return e;
  uint32_t buckets = resp->salt_buckets;
  uint64_t id = resp->table_id;
  mcl_install_routes(c, table, resp->tablets, resp->n_tablets);
  rpc_msg_free(resp);
  if (buckets == 1 || buckets > 255)
    return err_new(MICA_INTERNAL, "master answered %" PRIu32
                   " salt buckets for '%s'", buckets, table);
  store(c, table, id, buckets);
  *n = buckets;
  *table_id = id;
  return NULL;
}

bool mcl_salt_stale(mica_client *c, const char *table, uint64_t salt_id,
                    const rpc_route *route) {
  if (salt_id == 0 || route->table_id == 0 || route->table_id == salt_id)
    return false;
  /* Table ids only grow: the older of the two is what is out of date. */
  if (route->table_id > salt_id) mcl_salt_forget(c, table);
  else route_cache_forget_table(c->cache, table);
  return true;
}

uint8_t mcl_salt_bucket(slice key, uint32_t n) {
  return n <= 1 ? 0 : (uint8_t)(crc32c_value(key.data, key.len) % n);
}

mica_err *mcl_salt_check_key(slice key, uint32_t n, const char *table) {
  if (n > 0 && key.len + 1 > MICA_MAX_KEY)
    return err_new(MICA_INVALID_ARGUMENT,
                   "key of %zu bytes exceeds the %u-byte limit of salted "
                   "table '%s' (one byte goes to the salt)",
                   key.len, MICA_MAX_KEY - 1, table);
  return NULL;
}

void mcl_salt_key(slice key, uint32_t n, buf *out) {
  buf_clear(out);
  buf_push(out, mcl_salt_bucket(key, n));
  buf_append_slice(out, key);
}

/* ---- the merged scan of a salted table ---- */

typedef struct salt_head {
  mica_scanner *sc;
  bool need; /* advance before use: its row was returned or none read yet */
  bool over; /* its bucket is exhausted */
  slice key, value;
} salt_head;

struct mcl_salt_scan {
  salt_head *h;
  size_t n;
  bool reverse;
  uint64_t limit, returned;
};

void mcl_salt_scan_free(mcl_salt_scan *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->n; i++) mica_scan_close(m->h[i].sc);
  free(m->h);
  free(m);
}

mica_err *mcl_salt_scan_open(mica_client *c, const char *table, uint32_t n,
                             slice start, slice end, slice prefix,
                             uint64_t limit, bool reverse, bool keys_only,
                             mcl_salt_scan **out) {
  *out = NULL;
  if (start.len + 1 > MICA_MAX_KEY || end.len + 1 > MICA_MAX_KEY ||
      prefix.len + 1 > MICA_MAX_KEY)
    return err_new(MICA_INVALID_ARGUMENT,
                   "scan bound longer than the %u-byte keys of salted table "
                   "'%s'", MICA_MAX_KEY - 1, table);
  mcl_salt_scan *m = xcalloc(1, sizeof(*m));
  m->h = xcalloc(n, sizeof(*m->h));
  m->reverse = reverse;
  m->limit = limit;
  buf s = BUF_INIT, e = BUF_INIT, p = BUF_INIT;
  mica_err *err = NULL;
  for (uint32_t b = 0; b < n && err == NULL; b++) {
    buf_clear(&s);
    buf_clear(&e);
    buf_clear(&p);
    buf_push(&s, (uint8_t)b);
    buf_append_slice(&s, start);
    if (end.len > 0) {
      buf_push(&e, (uint8_t)b);
      buf_append_slice(&e, end);
    } else {
      buf_push(&e, (uint8_t)(b + 1)); /* n <= 255, so b + 1 fits */
    }
    if (prefix.len > 0) {
      buf_push(&p, (uint8_t)b);
      buf_append_slice(&p, prefix);
    }
    err = mcl_scan_open_raw(c, table, buf_slice(&s), buf_slice(&e),
                            buf_slice(&p), limit, reverse, keys_only,
                            &m->h[b].sc);
    m->h[b].need = true;
    m->n = b + 1;
  }
  buf_free(&s);
  buf_free(&e);
  buf_free(&p);
  if (err != NULL) {
    mcl_salt_scan_free(m);
    return err;
  }
  *out = m;
  return NULL;
}

int mcl_salt_scan_next(mcl_salt_scan *m, int *has_row, const void **key,
                       size_t *key_len, const void **value, size_t *value_len) {
  *has_row = 0;
  if (m->limit && m->returned >= m->limit) return mcl_finish(NULL);
  /* Refill every head whose row was handed out (or never read). A failure
   * leaves `need` set, so the next call resumes that bucket's scanner.
   * Streams still to be opened are all started first, so the buckets'
   * servers answer in parallel rather than one after the other. */
  for (size_t i = 0; i < m->n; i++)
    if (m->h[i].need && !m->h[i].over) mcl_scan_start(m->h[i].sc);
  for (size_t i = 0; i < m->n; i++) {
    salt_head *h = &m->h[i];
    if (!h->need || h->over) continue;
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    int code = mica_scan_next(h->sc, &has, &k, &kl, &v, &vl);
    if (code != MICA_OK) return code; /* its message is set */
    h->need = false;
    if (!has) {
      h->over = true;
      continue;
    }
    if (kl < 1 || ((const uint8_t *)k)[0] != (uint8_t)i)
      return mcl_finish(err_new(MICA_INTERNAL,
                                "salted scan: bucket %zu returned a key of "
                                "another bucket", i));
    h->key = slice_make((const uint8_t *)k + 1, kl - 1);
    h->value = slice_make(v, vl);
  }
  salt_head *best = NULL;
  for (size_t i = 0; i < m->n; i++) {
    salt_head *h = &m->h[i];
    if (h->over) continue;
    int c = best == NULL ? 0 : slice_cmp(h->key, best->key);
    if (best == NULL || (m->reverse ? c > 0 : c < 0)) best = h;
  }
  if (best == NULL) return mcl_finish(NULL);
  best->need = true;
  m->returned++;
  *has_row = 1;
  *key = best->key.data;
  *key_len = best->key.len;
  *value = best->value.data;
  *value_len = best->value.len;
  return mcl_finish(NULL);
}
