/* ms_heat: the bounded per-tablet load history (see ms_heat.h), and its
 * snapshot for the HTTP side (master/snapshot.h).
 *
 * Layout. Buckets form a ring indexed by sequence number (monotonic time
 * divided by the width): the slot of sequence s is s % buckets, and a slot
 * holding an older sequence is cleared when s is first written. Rows of a
 * bucket are appended in report order; a tracked tablet remembers where
 * its rows are in the last two buckets it wrote to, so the common case (a
 * heartbeat interval inside one bucket or across one boundary) finds its
 * row without a search, and a bucket it has not written yet gets a new row
 * without one: a report costs O(log tablets). Tracked tablets are kept
 * sorted by id (new ids are larger than old ones, so inserting is an
 * append but after a master restart).
 *
 * Snapshot. Under the core's mutex only copies are made (the hot list's
 * tablets, the table's cells and its tablets' key ranges); mapping the
 * cells to tablets and sorting by key happen after it is released. */
#include <stdlib.h>
#include <string.h>

#include "master/ms_heat.h"
#include "master/ms_int.h"
#include "master/snapshot.h"

typedef struct row {
  uint64_t tablet_id, table_id, server;
  double v[MS_W_N]; /* work done in the bucket */
} row;

typedef struct bucket {
  uint64_t seq1; /* sequence + 1; 0 = never used */
  row *rows;
  size_t n, cap;
} bucket;

/* A tablet with rows in the window. Its rates and counters are in its
 * load record (ms_tab); a track only finds its rows. */
typedef struct track {
  uint64_t tablet_id, table_id;
  uint64_t server; /* who reported it last */
  uint64_t seq;    /* the bucket of its last report */
  uint64_t cseq1[2]; /* row cache: sequence + 1 and index, newest first */
  size_t cidx[2];
} track;

struct ms_heat {
  uint64_t width;
  size_t nb, max;
  bucket *b;
  track *t; /* by tablet id */
  size_t nt, capt;
  uint64_t cur; /* newest sequence written */
  uint64_t dropped;
};

ms_heat *ms_heat_new(uint64_t bucket_us, size_t buckets, size_t max_tablets) {
  ms_heat *h = xcalloc(1, sizeof(*h));
  h->width = bucket_us ? bucket_us : 1;
  h->nb = buckets ? buckets : 1;
  h->max = max_tablets ? max_tablets : 1;
  h->b = xcalloc(h->nb, sizeof(*h->b));
  return h;
}

void ms_heat_free(ms_heat *h) {
  if (h == NULL) return;
  for (size_t i = 0; i < h->nb; i++) free(h->b[i].rows);
  free(h->b);
  free(h->t);
  free(h);
}

void ms_heat_counts(const ms_heat *h, size_t *tracked, uint64_t *dropped) {
  *tracked = h->nt;
  *dropped = h->dropped;
}

double ms_heat_ops(const ms_heat_rates *r) {
  return r->reads + r->writes + r->scans;
}

static size_t track_pos(const ms_heat *h, uint64_t id) {
  size_t lo = 0, hi = h->nt;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->t[mid].tablet_id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Forgets tablets not reported within the window: retired, moved away
 * and reported under another server (which starts anew anyway), or on a
 * server that died. */
static void forget_old(ms_heat *h) {
  size_t k = 0;
  for (size_t i = 0; i < h->nt; i++)
    if (h->t[i].seq + h->nb > h->cur) h->t[k++] = h->t[i];
  h->nt = k;
}

/* The row of `tr` in the bucket of sequence `seq`, made when missing;
 * NULL when that bucket has been reused for a newer sequence or is full. */
static row *row_of(ms_heat *h, track *tr, uint64_t seq) {
  bucket *bk = &h->b[seq % h->nb];
  if (bk->seq1 > seq + 1) return NULL;
  if (bk->seq1 != seq + 1) {
    bk->seq1 = seq + 1;
    bk->n = 0;
  }
  for (int i = 0; i < 2; i++)
    if (tr->cseq1[i] == seq + 1 && tr->cidx[i] < bk->n &&
        bk->rows[tr->cidx[i]].tablet_id == tr->tablet_id)
      return &bk->rows[tr->cidx[i]];
  /* A tablet writes its buckets in time order, and the cache holds the
   * last two it wrote, so a bucket newer than those has no row of it yet:
   * no search on the common path. Only a report older than the last one
   * (two calls racing to the core) looks. */
  size_t at = bk->n;
  if (seq + 1 < tr->cseq1[0])
    for (size_t i = 0; i < bk->n; i++)
      if (bk->rows[i].tablet_id == tr->tablet_id) at = i;
  if (at == bk->n) {
    if (bk->n == h->max) {
      h->dropped++;
      return NULL;
    }
    if (bk->n == bk->cap) {
      bk->cap = bk->cap ? 2 * bk->cap : 16;
      if (bk->cap > h->max) bk->cap = h->max;
      bk->rows = xrealloc(bk->rows, bk->cap * sizeof(*bk->rows));
    }
    row *r = &bk->rows[bk->n++];
    memset(r, 0, sizeof(*r));
    r->tablet_id = tr->tablet_id;
    r->table_id = tr->table_id;
  }
  if (seq + 1 > tr->cseq1[0]) { /* the cache keeps the newest two */
    tr->cseq1[1] = tr->cseq1[0];
    tr->cidx[1] = tr->cidx[0];
    tr->cseq1[0] = seq + 1;
    tr->cidx[0] = at;
  }
  bk->rows[at].server = tr->server;
  return &bk->rows[at];
}

/* Spreads the work `d` done over [from, to) across the buckets it
 * overlaps (only those still in the window). */
static void spread(ms_heat *h, track *tr, uint64_t from, uint64_t to,
                   const double d[MS_W_N]) {
  uint64_t first = from / h->width, last = (to - 1) / h->width;
  uint64_t oldest = h->cur + 1 >= h->nb ? h->cur + 1 - h->nb : 0;
  if (first < oldest) first = oldest;
  double span = (double)(to - from);
  for (uint64_t s = first; s <= last; s++) {
    uint64_t lo = s * h->width, hi = lo + h->width;
    if (lo < from) lo = from;
    if (hi > to) hi = to;
    double part = (double)(hi - lo) / span;
    row *r = row_of(h, tr, s);
    if (r == NULL) continue;
    for (int k = 0; k < MS_W_N; k++) r->v[k] += d[k] * part;
  }
}

void ms_heat_note(ms_heat *h, uint64_t tablet_id, uint64_t table_id,
                  uint64_t server, uint64_t since, uint64_t now,
                  const double *work) {
  uint64_t seq = now / h->width;
  if (seq > h->cur) {
    h->cur = seq;
    forget_old(h);
  }
  size_t pos = track_pos(h, tablet_id);
  track *tr = pos < h->nt && h->t[pos].tablet_id == tablet_id ? &h->t[pos]
                                                                : NULL;
  if (tr == NULL) {
    if (h->nt == 2 * h->max) {
      h->dropped++;
      return;
    }
    if (h->nt == h->capt) {
      h->capt = h->capt ? 2 * h->capt : 64;
      h->t = xrealloc(h->t, h->capt * sizeof(*h->t));
    }
    memmove(&h->t[pos + 1], &h->t[pos], (h->nt - pos) * sizeof(*h->t));
    h->nt++;
    tr = &h->t[pos];
    memset(tr, 0, sizeof(*tr));
    tr->tablet_id = tablet_id;
    tr->table_id = table_id;
  }
  if (work != NULL && now > since) spread(h, tr, since, now, work);
  tr->server = server;
  tr->seq = seq;
  /* Seen in this bucket even when idle, so a cold tablet still covers its
   * part of the key space in the map. */
  row_of(h, tr, seq);
}

/* ---- snapshot ---- */

static bool retired(const ms_tab *t) {
  return t->state == MS_SPLIT || t->state == MS_MERGED;
}

static int hot_cmp(const void *a, const void *b) {
  const ms_heat_hot *x = a, *y = b;
  double ox = ms_heat_ops(&x->r), oy = ms_heat_ops(&y->r);
  if (ox != oy) return ox > oy ? -1 : 1;
  return x->tablet_id < y->tablet_id ? -1 : x->tablet_id > y->tablet_id;
}

static ms_heat_rates rates_of(const double v[MS_W_N], double div) {
  ms_heat_rates r = {v[MS_W_READS] / div, v[MS_W_WRITES] / div,
                     v[MS_W_SCANS] / div, v[MS_W_RBYTES] / div,
                     v[MS_W_WBYTES] / div};
  return r;
}

static void copy_hot(ms *m, ms_heat *h, uint64_t now, const ms_tbl *only,
                     size_t limit, ms_heat_snap *out) {
  out->hot = xcalloc(h->nt + 1, sizeof(*out->hot));
  for (size_t i = 0; i < h->nt; i++) {
    const track *tr = &h->t[i];
    if (only != NULL && tr->table_id != only->id) continue;
    const ms_tab *t = ms_find_tab(m, tr->tablet_id);
    const ms_tbl *tb = ms_find_tbl(m, tr->table_id);
    if (t == NULL || retired(t) || tb == NULL || tb->dropping) continue;
    if (!t->have_recent || t->stats_at + m->opt.lease_us < now) continue;
    /* Moved: its new server tells. */
    if (t->server != t->stats_server) continue;
    ms_heat_hot *x = &out->hot[out->n_hot++];
    x->tablet_id = t->id;
    x->table_id = t->table_id;
    x->server = t->stats_server;
    x->r = rates_of(t->recent, 1.0);
  }
  qsort(out->hot, out->n_hot, sizeof(*out->hot), hot_cmp);
  out->n_hot_total = out->n_hot;
  if (limit && out->n_hot > limit) out->n_hot = limit;
  for (size_t i = 0; i < out->n_hot; i++) {
    ms_heat_hot *x = &out->hot[i];
    const ms_tab *t = ms_find_tab(m, x->tablet_id);
    const ms_srv *sv = ms_find_srv(m, x->server);
    x->table = xstrdup(ms_find_tbl(m, x->table_id)->name);
    x->address = xstrdup(sv ? sv->address : "");
    buf_append_slice(&x->start, buf_slice(&t->start));
    buf_append_slice(&x->end, buf_slice(&t->end));
  }
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int tablet_cmp(const void *a, const void *b) {
  const ms_heat_tablet *x = a, *y = b;
  int c = slice_cmp(buf_slice(&x->start), buf_slice(&y->start));
  if (c != 0) return c;
  return x->id < y->id ? -1 : x->id > y->id;
}

static int cell_cmp(const void *a, const void *b) {
  const ms_heat_cell *x = a, *y = b;
  return x->tablet < y->tablet ? -1 : x->tablet > y->tablet;
}

/* A table's history copied under the mutex, before the work that needs no
 * lock (mapping cells to tablets, sorting by key): the tablets in id
 * order, and per bucket its cells with their tablet ids beside them. */
typedef struct raw_history {
  uint64_t **ids; /* per bucket: the tablet id of each cell */
} raw_history;

/* Under the mutex: O(cells) copying plus one key copy per tablet. Every
 * tablet with a row in the window has a track (a track is forgotten only
 * once its rows are out of the window), so the tracks of the table, kept
 * sorted by id, are the tablets to name. */
static void copy_history(ms *m, ms_heat *h, uint64_t now, const ms_tbl *tb,
                         ms_heat_snap *out, raw_history *raw) {
  uint64_t seq = now / h->width;
  uint64_t first = seq + 1 >= h->nb ? seq + 1 - h->nb : 0;
  out->tablets = xcalloc(h->nt + 1, sizeof(*out->tablets));
  for (size_t i = 0; i < h->nt; i++) {
    const ms_tab *t = ms_find_tab(m, h->t[i].tablet_id);
    if (h->t[i].table_id != tb->id || t == NULL) continue;
    ms_heat_tablet *x = &out->tablets[out->n_tablets++];
    x->id = t->id;
    x->table_id = t->table_id;
    buf_append_slice(&x->start, buf_slice(&t->start));
    buf_append_slice(&x->end, buf_slice(&t->end));
    x->current = !retired(t);
  }
  out->n_buckets = (size_t)(seq - first + 1);
  out->buckets = xcalloc(out->n_buckets, sizeof(*out->buckets));
  raw->ids = xcalloc(out->n_buckets, sizeof(*raw->ids));
  for (uint64_t s = first; s <= seq; s++) {
    ms_heat_bucket *x = &out->buckets[s - first];
    x->start_ms = ms_wall_ms(m, s * h->width);
    uint64_t end = s == seq ? now : (s + 1) * h->width;
    x->secs = (double)(end - s * h->width) / 1e6;
    const bucket *bk = &h->b[s % h->nb];
    if (bk->seq1 != s + 1) continue;
    double div = x->secs > 0 ? x->secs : (double)h->width / 1e6;
    x->cells = xcalloc(bk->n + 1, sizeof(*x->cells));
    uint64_t *ids = raw->ids[s - first] = xcalloc(bk->n + 1, sizeof(*ids));
    for (size_t i = 0; i < bk->n; i++) {
      const row *r = &bk->rows[i];
      if (r->table_id != tb->id) continue;
      ids[x->n_cells] = r->tablet_id;
      ms_heat_cell *c = &x->cells[x->n_cells++];
      c->server = r->server;
      c->r = rates_of(r->v, div);
    }
  }
}

/* Without the mutex: only the tablets with a cell in the window kept, in
 * key order, each cell pointed at its tablet (a cell of a tablet the core
 * no longer knows is left out), cells into key order. */
static void finish_history(ms_heat_snap *out, raw_history *raw) {
  size_t n = out->n_tablets;
  uint64_t *ids = xcalloc(n + 1, sizeof(*ids)); /* id order, as copied */
  for (size_t j = 0; j < n; j++) ids[j] = out->tablets[j].id;
  bool *used = xcalloc(n + 1, sizeof(*used));
  for (size_t b = 0; b < out->n_buckets && n; b++)
    for (size_t i = 0; i < out->buckets[b].n_cells; i++) {
      uint64_t *p = bsearch(&raw->ids[b][i], ids, n, sizeof(*ids), u64_cmp);
      if (p != NULL) used[p - ids] = true;
    }
  size_t kept = 0;
  for (size_t j = 0; j < n; j++) {
    if (used[j]) {
      out->tablets[kept] = out->tablets[j];
      ids[kept++] = ids[j];
    } else {
      buf_free(&out->tablets[j].start);
      buf_free(&out->tablets[j].end);
    }
  }
  free(used);
  n = out->n_tablets = kept;
  qsort(out->tablets, n, sizeof(*out->tablets), tablet_cmp);
  size_t *index = xcalloc(n + 1, sizeof(*index)); /* id order -> key order */
  for (size_t j = 0; j < n; j++) {
    uint64_t *p = bsearch(&out->tablets[j].id, ids, n, sizeof(*ids), u64_cmp);
    index[p - ids] = j;
  }
  for (size_t b = 0; b < out->n_buckets; b++) {
    ms_heat_bucket *x = &out->buckets[b];
    size_t k = 0;
    for (size_t i = 0; i < x->n_cells; i++) {
      uint64_t *p = n ? bsearch(&raw->ids[b][i], ids, n, sizeof(*ids), u64_cmp)
                      : NULL;
      if (p == NULL) continue;
      x->cells[k] = x->cells[i];
      x->cells[k++].tablet = index[p - ids];
    }
    x->n_cells = k;
    if (k > 1) qsort(x->cells, k, sizeof(*x->cells), cell_cmp);
    free(raw->ids[b]);
  }
  free(raw->ids);
  free(index);
  free(ids);
}

bool ms_heat_snapshot(ms *m, uint64_t now_us, const char *table,
                      size_t hot_limit, bool history, ms_heat_snap *out) {
  memset(out, 0, sizeof(*out));
  raw_history raw = {NULL};
  pthread_mutex_lock(&m->mu);
  ms_heat *h = m->heat;
  const ms_tbl *tb = table ? ms_find_tbl_name(m, table) : NULL;
  bool ok = table == NULL || tb != NULL;
  if (ok) {
    out->now_ms = ms_wall_ms(m, now_us);
    out->bucket_ms = h->width / 1000;
    out->max_buckets = h->nb;
    out->max_tablets = h->max;
    out->dropped = h->dropped;
    copy_hot(m, h, now_us, tb, hot_limit, out);
    if (history && tb != NULL) copy_history(m, h, now_us, tb, out, &raw);
  }
  pthread_mutex_unlock(&m->mu);
  if (raw.ids != NULL) finish_history(out, &raw);
  return ok;
}

void ms_heat_snap_free(ms_heat_snap *s) {
  for (size_t i = 0; i < s->n_hot; i++) {
    free(s->hot[i].table);
    free(s->hot[i].address);
    buf_free(&s->hot[i].start);
    buf_free(&s->hot[i].end);
  }
  for (size_t i = 0; i < s->n_tablets; i++) {
    buf_free(&s->tablets[i].start);
    buf_free(&s->tablets[i].end);
  }
  for (size_t i = 0; i < s->n_buckets; i++) free(s->buckets[i].cells);
  free(s->hot);
  free(s->tablets);
  free(s->buckets);
  memset(s, 0, sizeof(*s));
}
