/* ms_options: the master's side of per-table options (table_opts.h,
 * docs/table-options.md): the alter call, the TABLE_OPTIONS record, the
 * snapshot section that carries every table's options, the heartbeat
 * replies that bring an alter to the servers, and the split keys of a
 * salted table.
 *
 * An option change is durable before it is answered, like every other
 * change of the state (ms_commit). Servers learn it from the next
 * heartbeat reply (every table with a tablet they reported) and every
 * later OpenTablet, so a change reaches every tablet within one heartbeat
 * interval and survives moves, splits and restarts. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "master/ms_int.h"

#define LOCK(m) pthread_mutex_lock(&(m)->mu)
#define UNLOCK(m) pthread_mutex_unlock(&(m)->mu)

mica_err *ms_apply_table_options(ms *m, slice payload, bool dry) {
  const uint8_t *p = payload.data, *lim = payload.data + payload.len;
  uint64_t id = 0;
  ms_table_opts o;
  p = get_varint64(p, lim, &id);
  if (p != NULL) p = mto_decode(p, lim, &o);
  if (p == NULL || p != lim)
    return err_new(MICA_CORRUPTION, "table-options record malformed");
  ms_tbl *tb = ms_find_tbl(m, id);
  if (tb == NULL || tb->dropping)
    return err_new(MICA_CORRUPTION, "table-options: no live table %" PRIu64,
                   id);
  if (o.salt_buckets != tb->opts.salt_buckets)
    return err_new(MICA_CORRUPTION,
                   "table-options: table %" PRIu64 " changes its salt", id);
  if (!dry) tb->opts = o;
  return NULL;
}

void ms_encode_opts_section(ms *m, buf *b, bool force) {
  uint64_t n = 0;
  for (size_t i = 0; i < m->n_tables; i++)
    n += !mto_is_default(&m->tables[i]->opts);
  /* Left out when empty: the snapshot is then byte for byte what a master
   * without options wrote (one can still read it). */
  if (n == 0 && !force) return;
  put_varint64(b, n);
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if (mto_is_default(&tb->opts)) continue;
    put_varint64(b, tb->id);
    mto_encode(&tb->opts, b);
  }
}

mica_err *ms_decode_opts_section(ms *m, const uint8_t **pp,
                                 const uint8_t *lim) {
  const uint8_t *p = *pp;
  uint64_t n = 0;
  p = get_varint64(p, lim, &n);
  if (p == NULL) return err_new(MICA_CORRUPTION, "snapshot: bad options section");
  uint64_t last = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t id = 0;
    ms_table_opts o;
    p = get_varint64(p, lim, &id);
    if (p != NULL) p = mto_decode(p, lim, &o);
    ms_tbl *tb = p != NULL ? ms_find_tbl(m, id) : NULL;
    if (tb == NULL || id <= last || mto_is_default(&o))
      return err_new(MICA_CORRUPTION,
                     "snapshot: bad options of table %" PRIu64, id);
    tb->opts = o;
    last = id;
  }
  *pp = p;
  return NULL;
}

static mica_err *alter_locked(ms *m, const char *name,
                              const ms_table_opts *in, unsigned mask,
                              ms_table_opts *out) {
  ms_tbl *tb = name != NULL ? ms_find_tbl_name(m, name) : NULL;
  if (tb == NULL)
    return err_new(MICA_NOT_FOUND, "no table %s", name ? name : "(null)");
  if (in->salt_buckets != 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "option salt_buckets: fixed when the table is created; "
                   "create a new table to change it");
  if (mask == 0)
    return err_new(MICA_INVALID_ARGUMENT, "no option to change");
  ms_table_opts o = tb->opts;
  if (mask & MS_ALTER_COMPRESSION) o.compression = in->compression;
  if (mask & MS_ALTER_SPLIT) o.split_bytes = in->split_bytes;
  if (mask & MS_ALTER_BLOCK_SIZE) o.block_size = in->block_size;
  if (mask & MS_ALTER_BLOOM) o.bloom_bits = in->bloom_bits;
  mica_err *err = mto_check(&o);
  if (err) return err;
  if (!mto_equal(&o, &tb->opts)) {
    buf b = BUF_INIT;
    put_varint64(&b, tb->id);
    mto_encode(&o, &b);
    err = ms_commit(m, REC_TABLE_OPTIONS, &b);
    buf_free(&b);
    if (err) return err;
    ms_event_add(m, "alter", 0, 0,
                 "table %s options: compression %s, split_threshold %" PRIu64
                 ", block_size %" PRIu32 ", bloom_bits %d",
                 tb->name, mto_compression_name(o.compression), o.split_bytes,
                 o.block_size, o.bloom_bits);
  }
  if (out) *out = tb->opts;
  return NULL;
}

mica_err *ms_alter_table(ms *m, const char *name, const ms_table_opts *opts,
                         unsigned mask, uint64_t now, ms_table_opts *out) {
  LOCK(m);
  m->now = now;
  mica_err *err = alter_locked(m, name, opts, mask, out);
  UNLOCK(m);
  return err;
}

mica_err *ms_table_options(ms *m, const char *name, uint64_t *table_id,
                           ms_table_opts *out) {
  LOCK(m);
  ms_tbl *tb = name != NULL ? ms_find_tbl_name(m, name) : NULL;
  mica_err *err = NULL;
  if (tb == NULL) {
    err = err_new(MICA_NOT_FOUND, "no table %s", name ? name : "(null)");
  } else {
    if (table_id) *table_id = tb->id;
    if (out) *out = tb->opts;
  }
  UNLOCK(m);
  return err;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Each table the server holds a tablet of, once: the tables' ids are
 * gathered, sorted and made unique, so the cost is n log n in the server's
 * tablets and never touches the tables it does not serve. */
void ms_reply_options(ms *m, const ms_report *r, size_t n,
                      ms_server_reply *reply) {
  if (n == 0) return;
  uint64_t *ids = xcalloc(n, sizeof(*ids));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    ms_tab *t = ms_find_tab(m, r[i].ref.tablet_id);
    if (t != NULL) ids[k++] = t->table_id;
  }
  qsort(ids, k, sizeof(*ids), cmp_u64);
  for (size_t i = 0; i < k; i++) {
    if (i > 0 && ids[i] == ids[i - 1]) continue;
    ms_tbl *tb = ms_find_tbl(m, ids[i]);
    if (tb == NULL) continue;
    reply->table_opts = xrealloc(reply->table_opts,
                                 (reply->n_table_opts + 1) *
                                     sizeof(*reply->table_opts));
    reply->table_opts[reply->n_table_opts].table_id = tb->id;
    reply->table_opts[reply->n_table_opts].opts = tb->opts;
    reply->n_table_opts++;
  }
  free(ids);
}

void ms_salted_keys(const slice *keys, size_t n, uint32_t n_buckets,
                    slice **out, size_t *n_out, uint8_t **storage) {
  size_t total = (size_t)n_buckets * (n + 1) - 1, bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += keys[i].len + 1;
  bytes = bytes * n_buckets + n_buckets;
  slice *v = xcalloc(total + 1, sizeof(*v));
  uint8_t *st = xmalloc(bytes + 1), *q = st;
  size_t k = 0;
  for (uint32_t b = 0; b < n_buckets; b++) {
    if (b > 0) {
      *q = (uint8_t)b;
      v[k++] = slice_make(q, 1);
      q++;
    }
    for (size_t i = 0; i < n; i++) {
      q[0] = (uint8_t)b;
      memcpy(q + 1, keys[i].data, keys[i].len);
      v[k++] = slice_make(q, keys[i].len + 1);
      q += keys[i].len + 1;
    }
  }
  *out = v;
  *n_out = k;
  *storage = st;
}
