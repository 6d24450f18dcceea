/* ts_topts: the tablet server's copy of per-table options
 * (docs/table-options.md).
 *
 * The master sends a table's options with every OpenTablet and, for every
 * table with a tablet this server reports, in every heartbeat reply. This
 * file keeps the latest per table id (a small array under ts_server.mu),
 * builds the engine options a tablet of that table opens with (the
 * server's flags overridden by the table's), applies a change to the
 * tablets already open (tab_set_sst_options: new SSTables only) and gives
 * the maintenance loop each tablet's split threshold. Entries are kept for
 * the life of the process (one small entry per table this server has
 * served a tablet of). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tabletserver/server/ts_int.h"

/* One table's options; -1 / 0 = the server's own. */
struct ts_topt {
  uint64_t table_id;
  int compression; /* sst_compression, or -1 */
  uint32_t block_size;
  int bloom_bits;  /* -1 = the server's */
  uint64_t split_bytes;
};

mica_err *ts_topts_check(const rpc_table_options *w) {
  if (w == NULL) return NULL;
  const char *c = w->compression;
  if (c[0] != '\0' && strcmp(c, "none") != 0 && strcmp(c, "lz4") != 0 &&
      strcmp(c, "zstd") != 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "options.compression: \"%.64s\" is not none, lz4 or zstd", c);
  if (w->block_size != 0 &&
      (w->block_size < 1024 || w->block_size > (4u << 20)))
    return err_new(MICA_INVALID_ARGUMENT,
                   "options.block_size: %" PRIu32 " is outside 1 KiB .. 4 MiB",
                   w->block_size);
  if (w->bloom_set && w->bloom_bits_per_key > 32)
    return err_new(MICA_INVALID_ARGUMENT,
                   "options.bloom_bits_per_key: %" PRIu32 " is outside 0..32",
                   w->bloom_bits_per_key);
  return NULL;
}

static void from_wire(uint64_t table_id, const rpc_table_options *w,
                      struct ts_topt *o) {
  memset(o, 0, sizeof(*o));
  o->table_id = table_id;
  o->compression = -1;
  o->bloom_bits = -1;
  if (w == NULL) return;
  const char *c = w->compression;
  if (strcmp(c, "none") == 0) o->compression = SST_COMPRESS_NONE;
  else if (strcmp(c, "lz4") == 0) o->compression = SST_COMPRESS_LZ4;
  else if (strcmp(c, "zstd") == 0) o->compression = SST_COMPRESS_ZSTD;
  o->block_size = w->block_size;
  o->bloom_bits = w->bloom_set ? (int)w->bloom_bits_per_key : -1;
  o->split_bytes = w->split_threshold_bytes;
}

static void apply(const ts_server *s, const struct ts_topt *o, tab_options *t) {
  *t = s->topts;
  if (o == NULL) return;
  if (o->compression >= 0) t->sst.compression = (sst_compression)o->compression;
  if (o->block_size != 0) t->sst.block_size = o->block_size;
  if (o->bloom_bits >= 0) t->sst.bloom_bits_per_key = o->bloom_bits;
}

/* mu held. */
static struct ts_topt *find(ts_server *s, uint64_t table_id) {
  for (size_t i = 0; i < s->n_topts; i++)
    if (s->topts_v[i].table_id == table_id) return &s->topts_v[i];
  return NULL;
}

static bool same(const struct ts_topt *a, const struct ts_topt *b) {
  return a->compression == b->compression && a->block_size == b->block_size &&
         a->bloom_bits == b->bloom_bits && a->split_bytes == b->split_bytes;
}

/* Stores `o`; true when it changed what was known. mu held. */
static bool store(ts_server *s, const struct ts_topt *o) {
  struct ts_topt *cur = find(s, o->table_id);
  if (cur != NULL) {
    if (same(cur, o)) return false;
    *cur = *o;
    return true;
  }
  s->topts_v = xrealloc(s->topts_v, (s->n_topts + 1) * sizeof(*s->topts_v));
  s->topts_v[s->n_topts++] = *o;
  return true;
}

void ts_topts_learn_open(ts_server *s, uint64_t table_id,
                         const rpc_table_options *w) {
  if (table_id == 0) return; /* a tablet opened by hand, of no table */
  struct ts_topt o;
  from_wire(table_id, w, &o);
  pthread_mutex_lock(&s->mu);
  store(s, &o);
  pthread_mutex_unlock(&s->mu);
}

void ts_topts_for(ts_server *s, uint64_t table_id, tab_options *out) {
  pthread_mutex_lock(&s->mu);
  struct ts_topt *o = table_id != 0 ? find(s, table_id) : NULL;
  struct ts_topt copy;
  if (o != NULL) copy = *o;
  pthread_mutex_unlock(&s->mu);
  apply(s, o != NULL ? &copy : NULL, out);
}

uint64_t ts_topts_split_threshold(ts_server *s, uint64_t table_id) {
  uint64_t v = atomic_load(&s->split_threshold);
  pthread_mutex_lock(&s->mu);
  struct ts_topt *o = find(s, table_id);
  if (o != NULL && o->split_bytes != 0) v = o->split_bytes;
  pthread_mutex_unlock(&s->mu);
  return v;
}

void ts_topts_learn(ts_server *s, const rpc_table_options_entry *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    mica_err *e = ts_topts_check(v[i].options);
    if (e != NULL) {
      LOG_W("options of table %" PRIu64 " from the master ignored: %s",
            v[i].table_id, err_msg(e));
      err_free(e);
      continue;
    }
    struct ts_topt o;
    from_wire(v[i].table_id, v[i].options, &o);
    pthread_mutex_lock(&s->mu);
    bool changed = store(s, &o);
    /* Hold every open tablet of the table while its options change. */
    size_t k = 0;
    ts_tab **held = changed ? xcalloc(s->ntabs + 1, sizeof(*held)) : NULL;
    for (size_t j = 0; changed && j < s->ntabs; j++) {
      ts_tab *tt = s->tabs[j];
      if (tt->d.table_id != o.table_id || tt->state != TS_SERVING) continue;
      tt->refs++;
      held[k++] = tt;
    }
    pthread_mutex_unlock(&s->mu);
    if (!changed) continue;
    tab_options to;
    apply(s, &o, &to);
    for (size_t j = 0; j < k; j++) {
      mica_err *se = tab_set_sst_options(held[j]->t, &to.sst);
      if (se != NULL) {
        LOG_W("tablet %" PRIu64 ": options not applied: %s",
              held[j]->d.tablet_id, err_msg(se));
        err_free(se);
      }
      ts_release(s, held[j]);
    }
    LOG_I("table %" PRIu64 " options now: compression %d, block_size %" PRIu32
          ", bloom_bits %d, split_threshold %" PRIu64 " (%zu open tablets)",
          o.table_id, o.compression, o.block_size, o.bloom_bits,
          o.split_bytes, k);
    free(held);
  }
}
