/* ms_snapshots: table snapshots and clones in the master's durable state
 * (tsnap.h; the records and the snapshot section in METALOG_FORMAT.md;
 * the design in docs/storage.md, "Snapshots").
 *
 * Everything here runs under the core's mutex, like ms_state.c: the
 * public entry points take it, the ms_tsnap_* hooks for the core expect
 * it held. The durable part is the list of snapshots, the next snapshot
 * id and the tables being cloned; "busy" marks (volatile) say which
 * creations and clones this master process is carrying out, so the first
 * tick after a restart can tell abandoned ones apart. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "master/ms_int.h"
#include "master/tsnap.h"
#include "proto/limits.h"

#define LOCK(m) pthread_mutex_lock(&(m)->mu)
#define UNLOCK(m) pthread_mutex_unlock(&(m)->mu)

typedef struct tsnap {
  ms_tsnap_info i;
  bool busy; /* volatile: this process is creating it */
  /* Volatile: exports this process is running from it. An export runs in
   * the master process, so a master that stops takes its exports (and
   * their holds) with it. */
  uint32_t exporting;
} tsnap;

typedef struct clone_ent {
  uint64_t table_id, snap_id;
  bool busy; /* volatile: this process is writing its manifests */
} clone_ent;

struct ms_tsnaps {
  tsnap **v; /* by id */
  size_t n;
  uint64_t next_id;
  clone_ent *cl;
  size_t ncl;
};

static struct ms_tsnaps *S(ms *m) {
  if (m->tsnaps == NULL) {
    m->tsnaps = xcalloc(1, sizeof(*m->tsnaps));
    m->tsnaps->next_id = 1;
  }
  return m->tsnaps;
}

const char *ms_tsnap_state_name(int state) {
  switch (state) {
    case MS_TSNAP_CREATING: return "creating";
    case MS_TSNAP_READY: return "ready";
    case MS_TSNAP_DROPPING: return "dropping";
    default: return "unknown";
  }
}

static void info_clear(ms_tsnap_info *i) {
  free(i->name);
  free(i->table);
  for (size_t k = 0; k < i->n_parts; k++) {
    buf_free(&i->parts[k].start);
    buf_free(&i->parts[k].end);
  }
  free(i->parts);
  memset(i, 0, sizeof(*i));
}

static void info_copy(ms_tsnap_info *d, const ms_tsnap_info *s) {
  *d = *s;
  d->name = xstrdup(s->name);
  d->table = xstrdup(s->table);
  d->parts = xcalloc(s->n_parts + 1, sizeof(*d->parts));
  for (size_t k = 0; k < s->n_parts; k++) {
    d->parts[k] = s->parts[k];
    memset(&d->parts[k].start, 0, sizeof(buf));
    memset(&d->parts[k].end, 0, sizeof(buf));
    buf_append_slice(&d->parts[k].start, buf_slice(&s->parts[k].start));
    buf_append_slice(&d->parts[k].end, buf_slice(&s->parts[k].end));
  }
}

void ms_tsnap_infos_free(ms_tsnap_info *v, size_t n) {
  for (size_t i = 0; i < n; i++) info_clear(&v[i]);
  free(v);
}

void ms_tsnap_clone_free(ms_tsnap_clone *c) {
  free(c->tablet_ids);
  free(c->source_ids);
  memset(c, 0, sizeof(*c));
}

void ms_tsnap_free_all(ms *m) {
  struct ms_tsnaps *s = m->tsnaps;
  if (s == NULL) return;
  for (size_t i = 0; i < s->n; i++) {
    info_clear(&s->v[i]->i);
    free(s->v[i]);
  }
  free(s->v);
  free(s->cl);
  free(s);
  m->tsnaps = NULL;
}

static tsnap *find_id(ms *m, uint64_t id) {
  struct ms_tsnaps *s = S(m);
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i]->i.id == id) return s->v[i];
  return NULL;
}

/* A snapshot that is not being dropped, by name. */
static tsnap *find_name(ms *m, const char *name) {
  struct ms_tsnaps *s = S(m);
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i]->i.state != MS_TSNAP_DROPPING &&
        strcmp(s->v[i]->i.name, name) == 0)
      return s->v[i];
  return NULL;
}

static clone_ent *find_clone(ms *m, uint64_t table_id) {
  struct ms_tsnaps *s = S(m);
  for (size_t i = 0; i < s->ncl; i++)
    if (s->cl[i].table_id == table_id) return &s->cl[i];
  return NULL;
}

static bool snap_cloning(ms *m, uint64_t snap_id) {
  struct ms_tsnaps *s = S(m);
  for (size_t i = 0; i < s->ncl; i++)
    if (s->cl[i].snap_id == snap_id) return true;
  return false;
}

bool ms_tsnap_cloning(ms *m, uint64_t table_id) {
  return m->tsnaps != NULL && find_clone(m, table_id) != NULL;
}

static mica_err *bad(const char *what) {
  return err_new(MICA_CORRUPTION, "%s", what);
}

static char *dup_slice(slice s) {
  char *p = xmalloc(s.len + 1);
  memcpy(p, s.data, s.len);
  p[s.len] = '\0';
  return p;
}

static bool good_name(slice s) {
  if (s.len == 0 || s.len > MICA_MAX_TABLE_NAME) return false;
  char *n = dup_slice(s);
  bool ok = strlen(n) == s.len && ms_valid_table_name(n);
  free(n);
  return ok;
}

/* ---- records ---- */

/* SNAP_BEGIN: id, name, table_id, table, created_ms, options. */
static mica_err *apply_begin(ms *m, const uint8_t *p, const uint8_t *lim,
                             bool dry) {
  uint64_t id = 0, table_id = 0, created = 0;
  slice name = {0}, table = {0};
  ms_table_opts o;
  p = get_varint64(p, lim, &id);
  if (p) p = get_length_prefixed(p, lim, &name);
  if (p) p = get_varint64(p, lim, &table_id);
  if (p) p = get_length_prefixed(p, lim, &table);
  if (p) p = get_varint64(p, lim, &created);
  if (p) p = mto_decode(p, lim, &o);
  if (p == NULL || p != lim) return bad("snapshot-begin record malformed");
  if (id == 0 || id < S(m)->next_id)
    return bad("snapshot-begin: snapshot id reused");
  if (!good_name(name) || !good_name(table))
    return bad("snapshot-begin: invalid name");
  char *nm = dup_slice(name);
  bool taken = find_name(m, nm) != NULL;
  if (taken || ms_find_tbl(m, table_id) == NULL) {
    free(nm);
    return bad(taken ? "snapshot-begin: name taken"
                     : "snapshot-begin: unknown table");
  }
  if (dry) {
    free(nm);
    return NULL;
  }
  struct ms_tsnaps *s = S(m);
  tsnap *t = xcalloc(1, sizeof(*t));
  t->i.id = id;
  t->i.name = nm;
  t->i.table_id = table_id;
  t->i.table = dup_slice(table);
  t->i.created_ms = created;
  t->i.state = MS_TSNAP_CREATING;
  t->i.opts = o;
  s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
  s->v[s->n++] = t;
  s->next_id = id + 1;
  return NULL;
}

/* The parts: n, n x (tablet_id, start, end, files, bytes), covering the
 * key space in order. */
static const uint8_t *decode_parts(const uint8_t *p, const uint8_t *lim,
                                   ms_tsnap_part **out, size_t *nout) {
  uint64_t n = 0;
  p = get_varint64(p, lim, &n);
  if (p == NULL || n == 0 || n > (uint64_t)(lim - p)) return NULL;
  ms_tsnap_part *v = xcalloc((size_t)n, sizeof(*v));
  size_t k = 0;
  for (; p != NULL && k < n; k++) {
    slice a, b;
    p = get_varint64(p, lim, &v[k].tablet_id);
    if (p) p = get_length_prefixed(p, lim, &a);
    if (p) p = get_length_prefixed(p, lim, &b);
    if (p) p = get_varint64(p, lim, &v[k].files);
    if (p) p = get_varint64(p, lim, &v[k].bytes);
    if (p == NULL) break;
    buf_append_slice(&v[k].start, a);
    buf_append_slice(&v[k].end, b);
    /* Exact cover: "" first, each starts where the last ended, "" last. */
    bool first_ok = k > 0 || a.len == 0;
    bool chain_ok = k == 0 || (v[k - 1].end.len > 0 &&
                               slice_cmp(buf_slice(&v[k - 1].end), a) == 0);
    bool order_ok = b.len == 0 || slice_cmp(a, b) < 0;
    bool last_ok = k + 1 < n || b.len == 0;
    if (!first_ok || !chain_ok || !order_ok || !last_ok ||
        v[k].tablet_id == 0) {
      k++;
      p = NULL;
      break;
    }
  }
  if (p == NULL) {
    for (size_t i = 0; i < k && i < n; i++) {
      buf_free(&v[i].start);
      buf_free(&v[i].end);
    }
    free(v);
    return NULL;
  }
  *out = v;
  *nout = (size_t)n;
  return p;
}

static void encode_parts(buf *b, const ms_tsnap_part *v, size_t n) {
  put_varint64(b, n);
  for (size_t i = 0; i < n; i++) {
    put_varint64(b, v[i].tablet_id);
    put_length_prefixed(b, buf_slice(&v[i].start));
    put_length_prefixed(b, buf_slice(&v[i].end));
    put_varint64(b, v[i].files);
    put_varint64(b, v[i].bytes);
  }
}

static void set_parts(tsnap *t, ms_tsnap_part *v, size_t n) {
  t->i.parts = v;
  t->i.n_parts = n;
  t->i.files = t->i.bytes = 0;
  for (size_t i = 0; i < n; i++) {
    t->i.files += v[i].files;
    t->i.bytes += v[i].bytes;
  }
}

static void free_parts(ms_tsnap_part *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    buf_free(&v[i].start);
    buf_free(&v[i].end);
  }
  free(v);
}

/* SNAP_READY: id, parts. */
static mica_err *apply_ready(ms *m, const uint8_t *p, const uint8_t *lim,
                             bool dry) {
  uint64_t id = 0;
  p = get_varint64(p, lim, &id);
  ms_tsnap_part *v = NULL;
  size_t n = 0;
  if (p) p = decode_parts(p, lim, &v, &n);
  if (p == NULL || p != lim) {
    if (p != NULL) free_parts(v, n);
    return bad("snapshot-ready record malformed");
  }
  tsnap *t = find_id(m, id);
  if (t == NULL || t->i.state != MS_TSNAP_CREATING) {
    free_parts(v, n);
    return bad("snapshot-ready: no snapshot being created with that id");
  }
  if (dry) {
    free_parts(v, n);
    return NULL;
  }
  set_parts(t, v, n);
  t->i.state = MS_TSNAP_READY;
  t->busy = false;
  return NULL;
}

static mica_err *one_u64(const uint8_t *p, const uint8_t *lim, uint64_t *v,
                         const char *what) {
  p = get_varint64(p, lim, v);
  if (p == NULL || p != lim) return bad(what);
  return NULL;
}

/* SNAP_DROP: id. */
static mica_err *apply_drop(ms *m, const uint8_t *p, const uint8_t *lim,
                            bool dry) {
  uint64_t id = 0;
  mica_err *err = one_u64(p, lim, &id, "snapshot-drop record malformed");
  if (err) return err;
  tsnap *t = find_id(m, id);
  if (t == NULL || t->i.state == MS_TSNAP_DROPPING)
    return bad("snapshot-drop: no such snapshot");
  if (snap_cloning(m, id)) return bad("snapshot-drop: a clone is being made");
  if (!dry) {
    t->i.state = MS_TSNAP_DROPPING;
    t->busy = false;
  }
  return NULL;
}

/* SNAP_REMOVE: id. */
static mica_err *apply_remove(ms *m, const uint8_t *p, const uint8_t *lim,
                              bool dry) {
  uint64_t id = 0;
  mica_err *err = one_u64(p, lim, &id, "snapshot-remove record malformed");
  if (err) return err;
  tsnap *t = find_id(m, id);
  if (t == NULL || t->i.state != MS_TSNAP_DROPPING)
    return bad("snapshot-remove: snapshot is not being dropped");
  if (dry) return NULL;
  struct ms_tsnaps *s = S(m);
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->v[i] == t) continue;
    s->v[k++] = s->v[i];
  }
  s->n = k;
  info_clear(&t->i);
  free(t);
  return NULL;
}

/* CLONE_BEGIN: snap_id, then a TABLE_CREATE payload. */
static mica_err *apply_clone_begin(ms *m, const uint8_t *p,
                                   const uint8_t *lim, bool dry) {
  uint64_t snap = 0, table_id = 0;
  p = get_varint64(p, lim, &snap);
  if (p == NULL || get_varint64(p, lim, &table_id) == NULL)
    return bad("clone-begin record malformed");
  /* Snapshot 0: a restore from an export (its files are copied in). */
  tsnap *t = snap != 0 ? find_id(m, snap) : NULL;
  if (snap != 0 && (t == NULL || t->i.state != MS_TSNAP_READY))
    return bad("clone-begin: no ready snapshot with that id");
  mica_err *err = ms_apply(m, REC_TABLE_CREATE,
                           slice_make(p, (size_t)(lim - p)), dry);
  if (err || dry) return err;
  struct ms_tsnaps *s = S(m);
  s->cl = xrealloc(s->cl, (s->ncl + 1) * sizeof(*s->cl));
  s->cl[s->ncl++] = (clone_ent){table_id, snap, false};
  return NULL;
}

/* CLONE_DONE: table_id, ok (0: the table is dropped). */
static mica_err *apply_clone_done(ms *m, const uint8_t *p,
                                  const uint8_t *lim, bool dry) {
  uint64_t id = 0, ok = 0;
  p = get_varint64(p, lim, &id);
  if (p) p = get_varint64(p, lim, &ok);
  if (p == NULL || p != lim || ok > 1)
    return bad("clone-done record malformed");
  ms_tbl *tb = ms_find_tbl(m, id);
  if (find_clone(m, id) == NULL || tb == NULL || tb->dropping)
    return bad("clone-done: table is not being cloned");
  if (dry) return NULL;
  struct ms_tsnaps *s = S(m);
  size_t k = 0;
  for (size_t i = 0; i < s->ncl; i++)
    if (s->cl[i].table_id != id) s->cl[k++] = s->cl[i];
  s->ncl = k;
  if (!ok) tb->dropping = true;
  return NULL;
}

mica_err *ms_tsnap_apply(ms *m, uint8_t type, slice payload, bool dry) {
  const uint8_t *p = payload.data, *lim = payload.data + payload.len;
  switch (type) {
    case REC_SNAP_BEGIN: return apply_begin(m, p, lim, dry);
    case REC_SNAP_READY: return apply_ready(m, p, lim, dry);
    case REC_SNAP_DROP: return apply_drop(m, p, lim, dry);
    case REC_SNAP_REMOVE: return apply_remove(m, p, lim, dry);
    case REC_CLONE_BEGIN: return apply_clone_begin(m, p, lim, dry);
    case REC_CLONE_DONE: return apply_clone_done(m, p, lim, dry);
    default: return bad("unknown snapshot record");
  }
}

/* ---- the snapshot section ---- */

bool ms_tsnap_section_due(ms *m) {
  return m->tsnaps != NULL &&
         (m->tsnaps->next_id > 1 || m->tsnaps->n > 0 || m->tsnaps->ncl > 0);
}

void ms_tsnap_encode_section(ms *m, buf *b) {
  struct ms_tsnaps *s = S(m);
  put_varint64(b, s->next_id);
  put_varint64(b, s->n);
  for (size_t i = 0; i < s->n; i++) {
    const ms_tsnap_info *t = &s->v[i]->i;
    put_varint64(b, t->id);
    put_length_prefixed(b, slice_from_str(t->name));
    put_varint64(b, t->table_id);
    put_length_prefixed(b, slice_from_str(t->table));
    put_varint64(b, t->created_ms);
    put_varint64(b, (uint64_t)t->state);
    mto_encode(&t->opts, b);
    if (t->n_parts > 0) encode_parts(b, t->parts, t->n_parts);
    else put_varint64(b, 0);
  }
  put_varint64(b, s->ncl);
  for (size_t i = 0; i < s->ncl; i++) {
    put_varint64(b, s->cl[i].table_id);
    put_varint64(b, s->cl[i].snap_id);
  }
}

mica_err *ms_tsnap_decode_section(ms *m, const uint8_t **pp,
                                  const uint8_t *lim) {
  struct ms_tsnaps *s = S(m);
  const uint8_t *p = *pp;
  uint64_t next = 0, n = 0;
  p = get_varint64(p, lim, &next);
  if (p) p = get_varint64(p, lim, &n);
  if (p == NULL || next == 0 || n > (uint64_t)(lim - p))
    return bad("snapshot: bad snapshots section");
  uint64_t last = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t id = 0, table_id = 0, created = 0, state = 0;
    slice name = {0}, table = {0};
    ms_table_opts o;
    p = get_varint64(p, lim, &id);
    if (p) p = get_length_prefixed(p, lim, &name);
    if (p) p = get_varint64(p, lim, &table_id);
    if (p) p = get_length_prefixed(p, lim, &table);
    if (p) p = get_varint64(p, lim, &created);
    if (p) p = get_varint64(p, lim, &state);
    if (p) p = mto_decode(p, lim, &o);
    ms_tsnap_part *v = NULL;
    size_t np = 0;
    uint64_t has = 0;
    /* Parts: 0 (none yet), or the list a ready snapshot recorded (kept
     * while it is being dropped). */
    const uint8_t *q = p != NULL ? get_varint64(p, lim, &has) : NULL;
    if (q == NULL) p = NULL;
    else if (has == 0) p = q;
    else p = decode_parts(p, lim, &v, &np);
    if (p != NULL && ((state == MS_TSNAP_READY) != (np > 0) &&
                      state != MS_TSNAP_DROPPING)) {
      free_parts(v, np);
      p = NULL;
    }
    if (p == NULL || id <= last || id >= next || !good_name(name) ||
        !good_name(table) || state < MS_TSNAP_CREATING ||
        state > MS_TSNAP_DROPPING) {
      if (p != NULL) free_parts(v, np);
      return bad("snapshot: bad snapshot in the snapshots section");
    }
    tsnap *t = xcalloc(1, sizeof(*t));
    t->i.id = id;
    t->i.name = dup_slice(name);
    t->i.table_id = table_id;
    t->i.table = dup_slice(table);
    t->i.created_ms = created;
    t->i.state = (int)state;
    t->i.opts = o;
    set_parts(t, v, np);
    s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n++] = t;
    last = id;
  }
  uint64_t ncl = 0;
  if (p) p = get_varint64(p, lim, &ncl);
  if (p == NULL || ncl > (uint64_t)(lim - p))
    return bad("snapshot: bad clones in the snapshots section");
  for (uint64_t i = 0; i < ncl; i++) {
    uint64_t tid = 0, sid = 0;
    p = get_varint64(p, lim, &tid);
    if (p) p = get_varint64(p, lim, &sid);
    tsnap *t = p ? find_id(m, sid) : NULL;
    ms_tbl *tb = p ? ms_find_tbl(m, tid) : NULL;
    if ((sid != 0 && (t == NULL || t->i.state != MS_TSNAP_READY)) ||
        tb == NULL || tb->dropping)
      return bad("snapshot: bad clone in the snapshots section");
    s->cl = xrealloc(s->cl, (s->ncl + 1) * sizeof(*s->cl));
    s->cl[s->ncl++] = (clone_ent){tid, sid, false};
  }
  s->next_id = next;
  *pp = p;
  return NULL;
}

/* ---- calls ---- */

static mica_err *bad_name(const char *what, const char *name) {
  buf b = BUF_INIT;
  size_t n = name ? strlen(name) : 0;
  slice_escape(slice_make(name ? name : "", n > 140 ? 140 : n), &b);
  mica_err *e = err_new(MICA_INVALID_ARGUMENT, "%s name \"%s%s\" is not 1 "
                        "to %u characters of A-Z a-z 0-9 _ . -", what,
                        b.data ? (char *)b.data : "", n > 140 ? "..." : "",
                        MICA_MAX_TABLE_NAME);
  buf_free(&b);
  return e;
}

static mica_err *no_snapshot(const char *name) {
  buf b = BUF_INIT;
  size_t n = name ? strlen(name) : 0;
  slice_escape(slice_make(name ? name : "", n > 140 ? 140 : n), &b);
  mica_err *e = err_new(MICA_NOT_FOUND, "no snapshot named \"%s%s\"",
                        b.data ? (char *)b.data : "", n > 140 ? "..." : "");
  buf_free(&b);
  return e;
}

static mica_err *commit_u64s2(ms *m, uint8_t type, uint64_t a, uint64_t b,
                              bool two) {
  buf p = BUF_INIT;
  put_varint64(&p, a);
  if (two) put_varint64(&p, b);
  mica_err *err = ms_commit(m, type, &p);
  buf_free(&p);
  return err;
}

mica_err *ms_tsnap_begin(ms *m, const char *table, const char *name,
                         uint64_t now, uint64_t *id) {
  if (name == NULL || !ms_valid_table_name(name))
    return bad_name("snapshot", name);
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  ms_tbl *tb = table != NULL ? ms_find_tbl_name(m, table) : NULL;
  if (tb == NULL) {
    buf b = BUF_INIT;
    size_t n = table ? strlen(table) : 0;
    slice_escape(slice_make(table ? table : "", n > 140 ? 140 : n), &b);
    err = err_new(MICA_NOT_FOUND, "no table named \"%s\"",
                  b.data ? (char *)b.data : "");
    buf_free(&b);
  } else if (find_name(m, name) != NULL) {
    err = err_new(MICA_ALREADY_EXISTS, "snapshot %s already exists", name);
  } else if (ms_tsnap_cloning(m, tb->id)) {
    err = err_new(MICA_UNAVAILABLE, "table %s is still being cloned", table);
  } else {
    uint64_t sid = S(m)->next_id;
    buf b = BUF_INIT;
    put_varint64(&b, sid);
    put_length_prefixed(&b, slice_from_str(name));
    put_varint64(&b, tb->id);
    put_length_prefixed(&b, slice_from_str(tb->name));
    put_varint64(&b, ms_wall_ms(m, now));
    mto_encode(&tb->opts, &b);
    err = ms_commit(m, REC_SNAP_BEGIN, &b);
    buf_free(&b);
    if (!err) {
      find_id(m, sid)->busy = true;
      *id = sid;
    }
  }
  UNLOCK(m);
  return err;
}

mica_err *ms_tsnap_tablets(ms *m, uint64_t id, ms_tablet_list *out) {
  LOCK(m);
  mica_err *err = NULL;
  tsnap *t = find_id(m, id);
  ms_tbl *tb = t != NULL ? ms_find_tbl(m, t->i.table_id) : NULL;
  if (t == NULL || t->i.state != MS_TSNAP_CREATING)
    err = err_new(MICA_NOT_FOUND, "snapshot %" PRIu64 " is not being "
                  "created", id);
  else if (tb == NULL || tb->dropping)
    err = err_new(MICA_NOT_FOUND, "table %s was dropped while the snapshot "
                  "was being taken", t->i.table);
  for (size_t i = 0; err == NULL && i < tb->n_cur; i++) {
    out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
    ms_fill_tablet(m, tb->cur[i], &out->v[out->n++]);
  }
  UNLOCK(m);
  return err;
}

mica_err *ms_tsnap_ready(ms *m, uint64_t id, const ms_tsnap_part *parts,
                         size_t n, uint64_t now) {
  buf b = BUF_INIT;
  put_varint64(&b, id);
  encode_parts(&b, parts, n);
  /* Check the cover by decoding what would be logged. */
  ms_tsnap_part *v = NULL;
  size_t nv = 0;
  const uint8_t *lim = b.data + b.len;
  const uint8_t *p = get_varint64(b.data, lim, &id);
  if (p) p = decode_parts(p, lim, &v, &nv);
  if (p == NULL || n == 0) {
    buf_free(&b);
    return err_new(MICA_INVALID_ARGUMENT, "snapshot %" PRIu64 ": the pinned "
                   "tablets do not cover the key space exactly (a split or "
                   "merge happened meanwhile)", id);
  }
  free_parts(v, nv);
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  tsnap *t = find_id(m, id);
  if (t == NULL || t->i.state != MS_TSNAP_CREATING)
    err = err_new(MICA_NOT_FOUND, "snapshot %" PRIu64 " is not being "
                  "created (dropped meanwhile?)", id);
  else
    err = ms_commit(m, REC_SNAP_READY, &b);
  if (!err)
    ms_event_add(m, "snapshot", 0, 0, "snapshot %s of table %s taken: %zu "
                 "tablets, %" PRIu64 " files, %" PRIu64 " bytes", t->i.name,
                 t->i.table, t->i.n_parts, t->i.files, t->i.bytes);
  UNLOCK(m);
  buf_free(&b);
  return err;
}

static mica_err *drop_locked(ms *m, tsnap *t) {
  if (snap_cloning(m, t->i.id))
    return err_new(MICA_UNAVAILABLE, "snapshot %s: a table is being cloned "
                   "from it; try again when that is done", t->i.name);
  if (t->exporting > 0)
    return err_new(MICA_UNAVAILABLE, "snapshot %s is being exported (%u "
                   "export%s running); drop it when the export is done",
                   t->i.name, t->exporting, t->exporting == 1 ? "" : "s");
  mica_err *err = commit_u64s2(m, REC_SNAP_DROP, t->i.id, 0, false);
  if (!err)
    ms_event_add(m, "snapshot", 0, 0, "snapshot %s dropped", t->i.name);
  return err;
}

mica_err *ms_tsnap_drop(ms *m, const char *name, uint64_t now) {
  LOCK(m);
  m->now = now;
  tsnap *t = name != NULL ? find_name(m, name) : NULL;
  mica_err *err = t == NULL ? no_snapshot(name) : drop_locked(m, t);
  UNLOCK(m);
  return err;
}

mica_err *ms_tsnap_export_begin(ms *m, const char *name,
                                ms_tsnap_info **out) {
  *out = NULL;
  LOCK(m);
  tsnap *t = name != NULL ? find_name(m, name) : NULL;
  mica_err *err = NULL;
  if (t == NULL)
    err = no_snapshot(name);
  else if (t->i.state != MS_TSNAP_READY)
    err = err_new(MICA_UNAVAILABLE, "snapshot %s is still being taken", name);
  if (err == NULL) {
    t->exporting++;
    *out = xcalloc(1, sizeof(**out));
    info_copy(*out, &t->i);
  }
  UNLOCK(m);
  return err;
}

void ms_tsnap_export_end(ms *m, uint64_t id) {
  LOCK(m);
  tsnap *t = find_id(m, id);
  if (t != NULL && t->exporting > 0) t->exporting--;
  UNLOCK(m);
}

mica_err *ms_tsnap_drop_id(ms *m, uint64_t id, uint64_t now) {
  LOCK(m);
  m->now = now;
  tsnap *t = find_id(m, id);
  mica_err *err = t == NULL || t->i.state == MS_TSNAP_DROPPING
                      ? err_new(MICA_NOT_FOUND, "no snapshot %" PRIu64, id)
                      : drop_locked(m, t);
  UNLOCK(m);
  return err;
}

static int cmp_info_name(const void *a, const void *b) {
  return strcmp(((const ms_tsnap_info *)a)->name,
                ((const ms_tsnap_info *)b)->name);
}

mica_err *ms_tsnap_list(ms *m, const char *name, bool all,
                        ms_tsnap_info **out, size_t *n) {
  *out = NULL;
  *n = 0;
  LOCK(m);
  struct ms_tsnaps *s = S(m);
  ms_tsnap_info *v = xcalloc(s->n + 1, sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    const ms_tsnap_info *t = &s->v[i]->i;
    if (!all && t->state == MS_TSNAP_DROPPING) continue;
    if (name != NULL && (t->state == MS_TSNAP_DROPPING ||
                         strcmp(t->name, name) != 0))
      continue;
    info_copy(&v[k++], t);
  }
  UNLOCK(m);
  if (name != NULL && k == 0) {
    free(v);
    return no_snapshot(name);
  }
  qsort(v, k, sizeof(*v), cmp_info_name);
  *out = v;
  *n = k;
  return NULL;
}

void ms_tsnap_dropping(ms *m, uint64_t **ids, size_t *n) {
  LOCK(m);
  struct ms_tsnaps *s = S(m);
  *ids = xcalloc(s->n + 1, sizeof(**ids));
  *n = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i]->i.state == MS_TSNAP_DROPPING) (*ids)[(*n)++] = s->v[i]->i.id;
  UNLOCK(m);
}

mica_err *ms_tsnap_removed(ms *m, uint64_t id) {
  LOCK(m);
  tsnap *t = find_id(m, id);
  mica_err *err = NULL;
  if (t != NULL && t->i.state == MS_TSNAP_DROPPING)
    err = commit_u64s2(m, REC_SNAP_REMOVE, id, 0, false);
  UNLOCK(m);
  return err;
}

mica_err *ms_tsnap_clone_begin(ms *m, const char *snap, const char *table,
                               uint64_t now, ms_tsnap_clone *out) {
  memset(out, 0, sizeof(*out));
  if (table == NULL || !ms_valid_table_name(table))
    return bad_name("table", table);
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  tsnap *t = snap != NULL ? find_name(m, snap) : NULL;
  if (t == NULL)
    err = no_snapshot(snap);
  else if (t->i.state != MS_TSNAP_READY)
    err = err_new(MICA_UNAVAILABLE, "snapshot %s is still being taken",
                  snap);
  else if (ms_find_tbl_name(m, table) != NULL)
    err = err_new(MICA_ALREADY_EXISTS, "table %s already exists", table);
  if (!err) {
    uint64_t tid = m->next_table_id, first = m->next_tablet_id;
    size_t np = t->i.n_parts;
    buf b = BUF_INIT;
    put_varint64(&b, t->i.id);
    put_varint64(&b, tid);
    put_length_prefixed(&b, slice_from_str(table));
    put_varint64(&b, ms_wall_ms(m, now));
    put_varint64(&b, first);
    put_varint64(&b, np - 1);
    for (size_t i = 1; i < np; i++)
      put_length_prefixed(&b, buf_slice(&t->i.parts[i].start));
    if (!mto_is_default(&t->i.opts)) mto_encode(&t->i.opts, &b);
    err = ms_commit(m, REC_CLONE_BEGIN, &b);
    buf_free(&b);
    if (!err) {
      find_clone(m, tid)->busy = true;
      out->table_id = tid;
      out->snap_id = t->i.id;
      out->n = np;
      out->tablet_ids = xcalloc(np, sizeof(uint64_t));
      out->source_ids = xcalloc(np, sizeof(uint64_t));
      for (size_t i = 0; i < np; i++) {
        out->tablet_ids[i] = first + i;
        out->source_ids[i] = t->i.parts[i].tablet_id;
      }
    }
  }
  UNLOCK(m);
  return err;
}

mica_err *ms_tsnap_restore_begin(ms *m, const char *table,
                                 const slice *split_keys, size_t n_keys,
                                 const ms_table_opts *opts, uint64_t now,
                                 ms_tsnap_clone *out) {
  memset(out, 0, sizeof(*out));
  if (table == NULL || !ms_valid_table_name(table))
    return bad_name("table", table);
  mica_err *err = mto_check(opts);
  if (err) return err;
  for (size_t i = 0; i < n_keys; i++)
    if (split_keys[i].len == 0 || split_keys[i].len > m->opt.max_key_len ||
        (i > 0 && slice_cmp(split_keys[i - 1], split_keys[i]) >= 0))
      return err_new(MICA_INVALID_ARGUMENT, "tablet boundary %zu of the "
                     "export is empty, too long or out of order", i);
  LOCK(m);
  m->now = now;
  if (ms_find_tbl_name(m, table) != NULL)
    err = err_new(MICA_ALREADY_EXISTS, "table %s already exists", table);
  if (!err) {
    uint64_t tid = m->next_table_id, first = m->next_tablet_id;
    buf b = BUF_INIT;
    put_varint64(&b, 0);
    put_varint64(&b, tid);
    put_length_prefixed(&b, slice_from_str(table));
    put_varint64(&b, ms_wall_ms(m, now));
    put_varint64(&b, first);
    put_varint64(&b, n_keys);
    for (size_t i = 0; i < n_keys; i++) put_length_prefixed(&b, split_keys[i]);
    if (!mto_is_default(opts)) mto_encode(opts, &b);
    err = ms_commit(m, REC_CLONE_BEGIN, &b);
    buf_free(&b);
    if (!err) {
      find_clone(m, tid)->busy = true;
      out->table_id = tid;
      out->n = n_keys + 1;
      out->tablet_ids = xcalloc(out->n, sizeof(uint64_t));
      out->source_ids = xcalloc(out->n, sizeof(uint64_t));
      for (size_t i = 0; i < out->n; i++) out->tablet_ids[i] = first + i;
    }
  }
  UNLOCK(m);
  return err;
}

mica_err *ms_tsnap_clone_done(ms *m, uint64_t table_id, bool ok,
                              uint64_t now) {
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  clone_ent *c = find_clone(m, table_id);
  ms_tbl *tb = ms_find_tbl(m, table_id);
  if (c == NULL || tb == NULL)
    err = err_new(MICA_NOT_FOUND, "table %" PRIu64 " is not being cloned",
                  table_id);
  else
    err = commit_u64s2(m, REC_CLONE_DONE, table_id, ok, true);
  if (!err)
    ms_event_add(m, ok ? "create" : "drop", 0, 0,
                 ok ? "table %s cloned from a snapshot"
                    : "clone %s abandoned; dropping it",
                 tb->name);
  UNLOCK(m);
  return err;
}

mica_err *ms_tsnap_tick(ms *m, uint64_t now) {
  (void)now;
  if (m->tsnaps == NULL) return NULL;
  struct ms_tsnaps *s = m->tsnaps;
  mica_err *err = NULL;
  for (size_t i = 0; i < s->ncl && !err; i++) {
    if (s->cl[i].busy) continue;
    uint64_t tid = s->cl[i].table_id;
    ms_tbl *tb = ms_find_tbl(m, tid);
    err = commit_u64s2(m, REC_CLONE_DONE, tid, 0, true);
    if (!err) {
      ms_event_add(m, "drop", 0, 0, "clone %s left unfinished by a previous "
                   "master; dropping it", tb ? tb->name : "?");
      i = (size_t)-1; /* the array shrank: start over */
    }
  }
  for (size_t i = 0; i < s->n && !err; i++) {
    tsnap *t = s->v[i];
    if (t->i.state != MS_TSNAP_CREATING || t->busy) continue;
    err = commit_u64s2(m, REC_SNAP_DROP, t->i.id, 0, false);
    if (!err)
      ms_event_add(m, "snapshot", 0, 0, "snapshot %s left unfinished by a "
                   "previous master; dropped", t->i.name);
  }
  return err;
}
