/* mh_hot: /api/hot and /api/heatmap, written from a load-history snapshot
 * (ms_heat_snapshot, master/snapshot.h) without any lock.
 *
 * The same rules as mh_render.c: ASCII only, every string through
 * mh_json_str, keys as {"text": escaped, "b64": exact bytes}, and a
 * non-finite rate written as 0. A heat map holds up to buckets x tablets
 * cells, so each cell is a short array whose fields are named once in
 * "cell_fields" (docs/http-api.md) rather than an object per cell.
 *
 * The tablets of the hot list are the master's own figures (ms_heat); its
 * hot keys are those the tablet servers' request sampling reports
 * (ms_note_load), taken from the core snapshot's `hot` tablets. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/http/mh_int.h"

/* Rates keep three decimals: enough for a tablet doing one operation in a
 * minute's bucket. */
static void out_rate(buf *out, double v) {
  char t[64];
  int n = snprintf(t, sizeof(t), "%.3f", isfinite(v) && v >= 0 ? v : 0.0);
  buf_append(out, t, (size_t)n);
}

static void out_rates(buf *out, const ms_heat_rates *r) {
  mh_out_s(out, "\"ops_per_sec\":");
  out_rate(out, ms_heat_ops(r));
  mh_out_s(out, ",\"reads_per_sec\":");
  out_rate(out, r->reads);
  mh_out_s(out, ",\"writes_per_sec\":");
  out_rate(out, r->writes);
  mh_out_s(out, ",\"scans_per_sec\":");
  out_rate(out, r->scans);
  mh_out_s(out, ",\"read_bytes_per_sec\":");
  out_rate(out, r->read_bytes);
  mh_out_s(out, ",\"write_bytes_per_sec\":");
  out_rate(out, r->write_bytes);
}

/* A hot key of the core snapshot: tablet `tab` of core->hot, key `key`. */
typedef struct hot_key_ref {
  size_t tab, key;
  double ops;
} hot_key_ref;

static int key_cmp(const void *a, const void *b) {
  const hot_key_ref *x = a, *y = b;
  if (x->ops != y->ops) return x->ops > y->ops ? -1 : 1;
  if (x->tab != y->tab) return x->tab < y->tab ? -1 : 1;
  return x->key < y->key ? -1 : x->key > y->key;
}

static const char *table_name_of(const ms_snap *core, uint64_t id) {
  for (size_t i = 0; i < core->n_tbls; i++)
    if (core->tbls[i].id == id) return core->tbls[i].name;
  return NULL;
}

/* The hot keys the servers reported (core->hot), hottest first, of
 * `table` (NULL = all), at most `limit`. */
static void hot_keys(const ms_snap *core, const char *table, size_t limit,
                     buf *out) {
  hot_key_ref *v = NULL;
  size_t n = 0;
  for (size_t i = 0; i < core->n_hot; i++) {
    const ms_snap_tab *t = &core->hot[i];
    const char *name = table_name_of(core, t->table_id);
    if (name == NULL || (table != NULL && strcmp(name, table) != 0)) continue;
    v = xrealloc(v, (n + t->load.n_keys + 1) * sizeof(*v));
    for (size_t k = 0; k < t->load.n_keys; k++)
      v[n++] = (hot_key_ref){i, k, t->load.keys[k].ops_per_sec};
  }
  if (n > 1) qsort(v, n, sizeof(*v), key_cmp);
  if (limit && n > limit) n = limit;
  for (size_t i = 0; i < n; i++) {
    const ms_snap_tab *t = &core->hot[v[i].tab];
    const ms_hot_key *k = &t->load.keys[v[i].key];
    char kind[sizeof(k->kind) + 1];
    snprintf(kind, sizeof(kind), "%.*s", (int)sizeof(k->kind), k->kind);
    mh_out_s(out, i ? ",{\"table\":" : "{\"table\":");
    mh_json_str(out, table_name_of(core, t->table_id));
    mh_out_s(out, ",\"tablet_id\":");
    mh_out_u(out, t->id);
    mh_out_s(out, ",\"key\":");
    mh_json_key(out, &k->key);
    mh_out_s(out, ",\"kind\":");
    mh_json_str(out, kind);
    mh_out_s(out, ",\"ops_per_sec\":");
    out_rate(out, k->ops_per_sec);
    mh_out_s(out, "}");
  }
  free(v);
}

void mh_render_hot(const ms_heat_snap *s, const ms_snap *core,
                   const char *table, size_t limit, buf *out) {
  mh_out_s(out, "{\"now_ms\":");
  mh_out_u(out, s->now_ms);
  mh_out_s(out, ",\"window_s\":");
  mh_out_u(out, MS_HEAT_WINDOW_S);
  mh_out_s(out, ",\"table\":");
  if (table) mh_json_str(out, table);
  else mh_out_s(out, "null");
  mh_out_s(out, ",\"tablets_total\":");
  mh_out_u(out, s->n_hot_total);
  mh_out_s(out, ",\"tablets\":[");
  for (size_t i = 0; i < s->n_hot; i++) {
    const ms_heat_hot *h = &s->hot[i];
    mh_out_s(out, i ? ",{\"table\":" : "{\"table\":");
    mh_json_str(out, h->table);
    mh_out_s(out, ",\"id\":");
    mh_out_u(out, h->tablet_id);
    mh_out_s(out, ",\"start\":");
    mh_json_key(out, &h->start);
    mh_out_s(out, ",\"end\":");
    mh_json_key(out, &h->end);
    mh_out_s(out, ",\"server_id\":");
    mh_out_u(out, h->server);
    mh_out_s(out, ",\"server_address\":");
    mh_json_str(out, h->address);
    mh_out_s(out, ",");
    out_rates(out, &h->r);
    mh_out_s(out, "}");
  }
  mh_out_s(out, "],\"keys\":[");
  hot_keys(core, table, limit, out);
  mh_out_s(out, "]}\n");
}

void mh_render_heatmap(const ms_heat_snap *s, const char *table,
                       size_t limit, buf *out) {
  /* Which buckets fit: whole ones, newest first; when none with cells
   * does, the newest with cells, cut to `limit` (its first `cut` cells). */
  size_t total = 0, kept = 0, from = s->n_buckets, cut = SIZE_MAX;
  for (size_t i = 0; i < s->n_buckets; i++) total += s->buckets[i].n_cells;
  while (from > 0 && kept + s->buckets[from - 1].n_cells <= limit)
    kept += s->buckets[--from].n_cells;
  if (kept == 0 && from > 0) {
    from--;
    cut = kept = limit;
  }
  /* The tablets those cells name, renumbered in the listing's order. */
  size_t *index = xcalloc(s->n_tablets + 1, sizeof(*index));
  for (size_t i = from; i < s->n_buckets; i++) {
    const ms_heat_bucket *b = &s->buckets[i];
    size_t n = i == from && cut < b->n_cells ? cut : b->n_cells;
    for (size_t j = 0; j < n; j++) index[b->cells[j].tablet] = 1;
  }
  size_t n_listed = 0;
  for (size_t t = 0; t < s->n_tablets; t++)
    index[t] = index[t] ? ++n_listed : 0; /* 1-based; 0 = not listed */

  mh_out_s(out, "{\"table\":");
  mh_json_str(out, table);
  mh_out_s(out, ",\"now_ms\":");
  mh_out_u(out, s->now_ms);
  mh_out_s(out, ",\"bucket_ms\":");
  mh_out_u(out, s->bucket_ms);
  mh_out_s(out, ",\"max_buckets\":");
  mh_out_u(out, s->max_buckets);
  mh_out_s(out, ",\"max_tablets\":");
  mh_out_u(out, s->max_tablets);
  mh_out_s(out, ",\"dropped\":");
  mh_out_u(out, s->dropped);
  mh_out_s(out, ",\"limit\":");
  mh_out_u(out, limit);
  mh_out_s(out, ",\"cells_total\":");
  mh_out_u(out, total);
  mh_out_s(out, ",\"buckets_omitted\":");
  mh_out_u(out, from);
  mh_out_s(out, ",\"cells_omitted\":");
  mh_out_u(out, total - kept);
  mh_out_s(out, ",\"tablets\":[");
  for (size_t i = 0, k = 0; i < s->n_tablets; i++) {
    if (index[i] == 0) continue;
    const ms_heat_tablet *t = &s->tablets[i];
    mh_out_s(out, k++ ? ",{\"id\":" : "{\"id\":");
    mh_out_u(out, t->id);
    mh_out_s(out, ",\"start\":");
    mh_json_key(out, &t->start);
    mh_out_s(out, ",\"end\":");
    mh_json_key(out, &t->end);
    mh_out_s(out, t->current ? ",\"current\":true}" : ",\"current\":false}");
  }
  mh_out_s(out, "],\"cell_fields\":[\"tablet\",\"server_id\",\"ops_per_sec\","
        "\"reads_per_sec\",\"writes_per_sec\",\"scans_per_sec\","
        "\"read_bytes_per_sec\",\"write_bytes_per_sec\"],\"buckets\":[");
  for (size_t i = from; i < s->n_buckets; i++) {
    const ms_heat_bucket *b = &s->buckets[i];
    size_t n = i == from && cut < b->n_cells ? cut : b->n_cells;
    mh_out_s(out, i > from ? ",{\"start_ms\":" : "{\"start_ms\":");
    mh_out_u(out, b->start_ms);
    mh_out_s(out, ",\"secs\":");
    out_rate(out, b->secs);
    mh_out_s(out, ",\"cells\":[");
    for (size_t j = 0; j < n; j++) {
      const ms_heat_cell *c = &b->cells[j];
      mh_out_s(out, j ? ",[" : "[");
      mh_out_u(out, index[c->tablet] - 1);
      mh_out_s(out, ",");
      mh_out_u(out, c->server);
      const double v[6] = {ms_heat_ops(&c->r), c->r.reads, c->r.writes,
                           c->r.scans, c->r.read_bytes, c->r.write_bytes};
      for (int f = 0; f < 6; f++) {
        mh_out_s(out, ",");
        out_rate(out, v[f]);
      }
      mh_out_s(out, "]");
    }
    mh_out_s(out, "]}");
  }
  mh_out_s(out, "]}\n");
  free(index);
}
