/* ms_state: the master's data and its log records.
 *
 * Each record is checked in full against the current state before anything
 * changes (ms_apply with dry = true checks only), so a record either
 * applies completely or not at all. The live path checks, logs, then
 * applies; replay applies directly and reports a record that does not fit
 * the state as CORRUPTION, because a log the master wrote itself always
 * fits. Payload encodings are in METALOG_FORMAT.md. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/layout.h"
#include "common/log.h"
#include "master/ms_int.h"
#include "master/tsnap.h"
#include "proto/limits.h"

static mica_err *check_invariants(ms *m);

/* ---- lookups ---- */

ms_tab *ms_find_tab(ms *m, uint64_t id) {
  size_t lo = 0, hi = m->n_tabs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->tabs[mid]->id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < m->n_tabs && m->tabs[lo]->id == id ? m->tabs[lo] : NULL;
}

/* m->tables is in id order: a create takes an id above every earlier one
 * and appends, a drop keeps the order, a snapshot lists them ascending. */
ms_tbl *ms_find_tbl(ms *m, uint64_t id) {
  size_t lo = 0, hi = m->n_tables;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->tables[mid]->id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < m->n_tables && m->tables[lo]->id == id ? m->tables[lo] : NULL;
}

ms_tbl *ms_find_tbl_name(ms *m, const char *name) {
  for (size_t i = 0; i < m->n_tables; i++)
    if (!m->tables[i]->dropping && strcmp(m->tables[i]->name, name) == 0)
      return m->tables[i];
  return NULL;
}

ms_srv *ms_find_srv(ms *m, uint64_t id) {
  size_t lo = 0, hi = m->n_srvs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->srvs[mid]->id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < m->n_srvs && m->srvs[lo]->id == id ? m->srvs[lo] : NULL;
}

bool ms_srv_disk_low(ms *m, uint64_t id) {
  ms_srv *s = ms_find_srv(m, id);
  return s != NULL && s->disk_low;
}

bool ms_srv_live(ms *m, uint64_t id) {
  ms_srv *s = ms_find_srv(m, id);
  return s != NULL && !s->dead;
}

bool ms_valid_table_name(const char *name) {
  size_t n = strlen(name);
  if (n < 1 || n > MICA_MAX_TABLE_NAME) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/* ---- growable pointer arrays ---- */

#define PUSH(arr, n, cap, v)                                       \
  do {                                                             \
    if ((n) == (cap)) {                                            \
      (cap) = (cap) ? (cap) * 2 : 16;                              \
      (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));             \
    }                                                              \
    (arr)[(n)++] = (v);                                            \
  } while (0)

static void cur_replace(ms_tbl *tb, size_t at, size_t n_remove,
                        ms_tab **ins, size_t n_ins) {
  size_t need = tb->n_cur - n_remove + n_ins;
  if (need > tb->cap_cur) {
    tb->cap_cur = need * 2;
    tb->cur = xrealloc(tb->cur, tb->cap_cur * sizeof(*tb->cur));
  }
  memmove(tb->cur + at + n_ins, tb->cur + at + n_remove,
          (tb->n_cur - at - n_remove) * sizeof(*tb->cur));
  memcpy(tb->cur + at, ins, n_ins * sizeof(*ins));
  tb->n_cur = need;
}

static size_t cur_index(const ms_tbl *tb, const ms_tab *t) {
  for (size_t i = 0; i < tb->n_cur; i++)
    if (tb->cur[i] == t) return i;
  return SIZE_MAX;
}

static ms_tab *tab_new(ms *m, uint64_t id, uint64_t table_id, slice start,
                       slice end, uint64_t range_epoch) {
  ms_tab *t = xcalloc(1, sizeof(*t));
  t->id = id;
  t->table_id = table_id;
  buf_append_slice(&t->start, start);
  buf_append_slice(&t->end, end);
  t->range_epoch = range_epoch;
  t->state = MS_UNASSIGNED;
  t->born_us = m->now;
  PUSH(m->tabs, m->n_tabs, m->cap_tabs, t);
  if (id >= m->next_tablet_id) m->next_tablet_id = id + 1;
  return t;
}

static void tab_free(ms_tab *t) {
  ms_load_clear(&t->load);
  buf_free(&t->start);
  buf_free(&t->end);
  free(t);
}

static void tbl_free(ms_tbl *tb) {
  free(tb->name);
  for (size_t i = 0; i < tb->n_presplit; i++) buf_free(&tb->presplit[i]);
  free(tb->presplit);
  free(tb->cur);
  free(tb);
}

/* ---- record decoding ---- */

typedef struct rd {
  const uint8_t *p, *lim;
  bool bad;
} rd;

static uint64_t rd_u64(rd *r) {
  uint64_t v = 0;
  const uint8_t *q = r->bad ? NULL : get_varint64(r->p, r->lim, &v);
  if (q == NULL) {
    r->bad = true;
    return 0;
  }
  r->p = q;
  return v;
}

static slice rd_bytes(rd *r) {
  slice s = {NULL, 0};
  const uint8_t *q = r->bad ? NULL : get_length_prefixed(r->p, r->lim, &s);
  if (q == NULL) {
    r->bad = true;
    return slice_make(NULL, 0);
  }
  r->p = q;
  return s;
}

/* A NUL-terminated copy of `s` (checked to hold no NUL). */
static char *ms_strndup(slice s) {
  char *p = xmalloc(s.len + 1);
  memcpy(p, s.data, s.len);
  p[s.len] = '\0';
  return p;
}

static mica_err *bad(const char *what, ...) __attribute__((format(printf, 1, 2)));
static mica_err *bad(const char *what, ...) {
  va_list ap;
  va_start(ap, what);
  mica_err *e = err_newv(MICA_CORRUPTION, what, ap);
  va_end(ap);
  return e;
}

static mica_err *rd_end(rd *r, const char *rec) {
  if (r->bad) return bad("%s record truncated or malformed", rec);
  if (r->p != r->lim) return bad("%s record has %zu trailing bytes", rec,
                                 (size_t)(r->lim - r->p));
  return NULL;
}

void rec_u64s(buf *b, const uint64_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) put_varint64(b, v[i]);
}

/* True when `key` lies strictly inside (start, end), end empty = +inf. */
static bool strictly_inside(const ms_tab *t, slice key) {
  if (key.len == 0) return false;
  if (slice_cmp(key, buf_slice(&t->start)) <= 0) return false;
  return t->end.len == 0 || slice_cmp(key, buf_slice(&t->end)) < 0;
}

/* ---- effects shared by several records ---- */

static void clear_close(ms_tab *t) {
  t->close_why = CW_NONE;
  t->close_arg = 0;
  t->closed = false;
}

static void cancel_partner(ms *m, ms_tab *t) {
  if (t->state != MS_CLOSING || t->close_why != CW_MERGE) return;
  ms_tab *p = ms_find_tab(m, t->close_arg);
  if (p == NULL || p->state != MS_CLOSING || p->close_why != CW_MERGE) return;
  if (p->closed) {
    p->state = MS_UNASSIGNED;
    p->server = 0;
    clear_close(p);
  } else {
    p->close_why = CW_PLAIN;
    p->close_arg = 0;
  }
}

/* The tablet no longer has a server: it waits for assignment. */
static void release(ms *m, ms_tab *t) {
  cancel_partner(m, t);
  t->state = MS_UNASSIGNED;
  t->server = 0;
  t->moving = false;
  clear_close(t);
}

/* ---- per-record checks and effects ---- */

static mica_err *apply_table_create(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  slice name = rd_bytes(r);
  uint64_t created = rd_u64(r);
  uint64_t first = rd_u64(r);
  uint64_t nkeys = rd_u64(r);
  if (r->bad || nkeys > (uint64_t)(r->lim - r->p))
    return bad("table-create record malformed");
  slice *keys = xcalloc((size_t)nkeys + 1, sizeof(slice));
  for (uint64_t i = 0; i < nkeys; i++) keys[i] = rd_bytes(r);
  /* The table's options, a tail added later: older records end before. */
  ms_table_opts opts;
  mto_init(&opts);
  if (!r->bad && r->p != r->lim) {
    const uint8_t *q = mto_decode(r->p, r->lim, &opts);
    if (q == NULL) r->bad = true;
    else r->p = q;
  }
  mica_err *err = rd_end(r, "table-create");
  char *nm = NULL;
  if (!err) {
    nm = xmalloc(name.len + 1);
    memcpy(nm, name.data, name.len);
    nm[name.len] = '\0';
    if (strlen(nm) != name.len || !ms_valid_table_name(nm))
      err = bad("table-create: invalid table name");
    else if (ms_find_tbl_name(m, nm) != NULL)
      err = bad("table-create: table %s already exists", nm);
    else if (id < m->next_table_id || id == 0)
      err = bad("table-create: table id %" PRIu64 " reused", id);
    else if (first < m->next_tablet_id || first == 0 ||
             first + nkeys + 1 < first)
      err = bad("table-create: tablet id %" PRIu64 " reused", first);
  }
  for (uint64_t i = 0; !err && i < nkeys; i++)
    if (keys[i].len == 0 || (i > 0 && slice_cmp(keys[i - 1], keys[i]) >= 0))
      err = bad("table-create: split keys not strictly increasing");
  if (err || dry) {
    free(nm);
    free(keys);
    return err;
  }
  ms_tbl *tb = xcalloc(1, sizeof(*tb));
  tb->id = id;
  tb->name = nm;
  tb->created_ms = created;
  tb->opts = opts;
  tb->n_presplit = (size_t)nkeys;
  tb->presplit = xcalloc((size_t)nkeys + 1, sizeof(buf));
  for (uint64_t i = 0; i < nkeys; i++) buf_append_slice(&tb->presplit[i], keys[i]);
  PUSH(m->tables, m->n_tables, m->cap_tables, tb);
  m->next_table_id = id + 1;
  for (uint64_t i = 0; i <= nkeys; i++) {
    slice s = i == 0 ? slice_make(NULL, 0) : keys[i - 1];
    slice e = i == nkeys ? slice_make(NULL, 0) : keys[i];
    ms_tab *t = tab_new(m, first + i, id, s, e, 1);
    PUSH(tb->cur, tb->n_cur, tb->cap_cur, t);
  }
  free(keys);
  return NULL;
}

static mica_err *apply_table_drop(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  mica_err *err = rd_end(r, "table-drop");
  if (err) return err;
  ms_tbl *tb = ms_find_tbl(m, id);
  if (tb == NULL || tb->dropping)
    return bad("table-drop: no live table %" PRIu64, id);
  if (!dry) tb->dropping = true;
  return NULL;
}

static mica_err *apply_table_remove(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  mica_err *err = rd_end(r, "table-remove");
  if (err) return err;
  ms_tbl *tb = ms_find_tbl(m, id);
  if (tb == NULL || !tb->dropping)
    return bad("table-remove: table %" PRIu64 " is not being dropped", id);
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if (t->table_id == id && t->state != MS_UNASSIGNED &&
        t->state != MS_SPLIT && t->state != MS_MERGED)
      return bad("table-remove: tablet %" PRIu64 " is still %s", t->id,
                 ms_tablet_state_name(t->state));
  }
  if (dry) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < m->n_tabs; i++) {
    if (m->tabs[i]->table_id == id) tab_free(m->tabs[i]);
    else m->tabs[k++] = m->tabs[i];
  }
  m->n_tabs = k;
  k = 0;
  for (size_t i = 0; i < m->n_tables; i++) {
    if (m->tables[i] == tb) tbl_free(tb);
    else m->tables[k++] = m->tables[i];
  }
  m->n_tables = k;
  return NULL;
}

static mica_err *apply_server_add(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  slice addr = rd_bytes(r);
  uint64_t inc = rd_u64(r);
  uint64_t reg = rd_u64(r);
  /* The HTTP address was added later: a record without it is older. */
  slice http = r->p != r->lim ? rd_bytes(r) : slice_make("", 0);
  mica_err *err = rd_end(r, "server-add");
  if (err) return err;
  if (id < m->next_server_id || id == 0)
    return bad("server-add: server id %" PRIu64 " reused", id);
  if (addr.len == 0 || addr.len > 1024 || memchr(addr.data, 0, addr.len))
    return bad("server-add: bad address");
  if (http.len > 1024 || memchr(http.data, 0, http.len))
    return bad("server-add: bad http address");
  if (dry) return NULL;
  ms_srv *s = xcalloc(1, sizeof(*s));
  s->id = id;
  s->address = xmalloc(addr.len + 1);
  memcpy(s->address, addr.data, addr.len);
  s->address[addr.len] = '\0';
  s->http_address = ms_strndup(http);
  s->incarnation = inc;
  s->registered_ms = reg;
  s->renewed_at = m->now;
  PUSH(m->srvs, m->n_srvs, m->cap_srvs, s);
  m->next_server_id = id + 1;
  return NULL;
}

static mica_err *apply_server_dead(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  mica_err *err = rd_end(r, "server-dead");
  if (err) return err;
  ms_srv *s = ms_find_srv(m, id);
  if (s == NULL || s->dead) return bad("server-dead: no live server %" PRIu64, id);
  if (dry) return NULL;
  s->dead = true;
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if (t->server == id && (t->state == MS_OPENING || t->state == MS_SERVING ||
                            t->state == MS_CLOSING))
      release(m, t);
  }
  return NULL;
}

static mica_err *check_tab(ms *m, uint64_t id, const char *rec, ms_tab **out) {
  *out = ms_find_tab(m, id);
  if (*out == NULL) return bad("%s: unknown tablet %" PRIu64, rec, id);
  return NULL;
}

static mica_err *apply_assign(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r), srv = rd_u64(r), epoch = rd_u64(r);
  mica_err *err = rd_end(r, "assign");
  ms_tab *t;
  if (!err) err = check_tab(m, id, "assign", &t);
  if (err) return err;
  ms_tbl *tb = ms_find_tbl(m, t->table_id);
  if (!(t->state == MS_UNASSIGNED ||
        (t->state == MS_CLOSING && t->close_why == CW_MOVE)))
    return bad("assign: tablet %" PRIu64 " is %s", id,
               ms_tablet_state_name(t->state));
  if (tb == NULL || tb->dropping)
    return bad("assign: tablet %" PRIu64 " belongs to a dropped table", id);
  if (!ms_srv_live(m, srv))
    return bad("assign: server %" PRIu64 " is not live", srv);
  if (epoch != t->assign_epoch + 1)
    return bad("assign: epoch %" PRIu64 " does not follow %" PRIu64, epoch,
               t->assign_epoch);
  if (dry) return NULL;
  t->state = MS_OPENING;
  t->server = srv;
  t->assign_epoch = epoch;
  clear_close(t);
  return NULL;
}

static mica_err *apply_serving(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r), epoch = rd_u64(r);
  mica_err *err = rd_end(r, "serving");
  ms_tab *t;
  if (!err) err = check_tab(m, id, "serving", &t);
  if (err) return err;
  if (!(t->state == MS_OPENING || (t->state == MS_CLOSING && !t->closed)))
    return bad("serving: tablet %" PRIu64 " is %s", id,
               ms_tablet_state_name(t->state));
  if (epoch != t->assign_epoch)
    return bad("serving: tablet %" PRIu64 " epoch %" PRIu64 " is not %" PRIu64,
               id, epoch, t->assign_epoch);
  if (!ms_srv_live(m, t->server))
    return bad("serving: server %" PRIu64 " is not live", t->server);
  if (dry) return NULL;
  cancel_partner(m, t);
  t->state = MS_SERVING;
  t->moving = false;
  clear_close(t);
  return NULL;
}

static mica_err *apply_unassign(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  mica_err *err = rd_end(r, "unassign");
  ms_tab *t;
  if (!err) err = check_tab(m, id, "unassign", &t);
  if (err) return err;
  if (t->state != MS_OPENING && t->state != MS_SERVING &&
      t->state != MS_CLOSING)
    return bad("unassign: tablet %" PRIu64 " is %s", id,
               ms_tablet_state_name(t->state));
  if (!dry) release(m, t);
  return NULL;
}

static mica_err *apply_closing(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r), why = rd_u64(r), arg = rd_u64(r);
  mica_err *err = rd_end(r, "closing");
  ms_tab *t;
  if (!err) err = check_tab(m, id, "closing", &t);
  if (err) return err;
  /* Only a plain close may start from opening: the master does not know
   * whether the open took effect and makes sure it did not. */
  if (t->state != MS_SERVING && !(t->state == MS_OPENING && why == CW_PLAIN))
    return bad("closing: tablet %" PRIu64 " is %s", id,
               ms_tablet_state_name(t->state));
  ms_tbl *tb = ms_find_tbl(m, t->table_id);
  if (why == CW_MOVE) {
    if (!ms_srv_live(m, arg) || arg == t->server)
      return bad("closing: bad move target %" PRIu64, arg);
  } else if (why == CW_DROP) {
    if (tb == NULL || !tb->dropping)
      return bad("closing: tablet %" PRIu64 " is not in a dropped table", id);
  } else if (why != CW_PLAIN) {
    return bad("closing: bad reason %" PRIu64, why);
  }
  if (dry) return NULL;
  t->state = MS_CLOSING;
  t->close_why = (int)why;
  t->close_arg = why == CW_MOVE ? arg : 0;
  t->closed = false;
  t->moving = why == CW_MOVE;
  return NULL;
}

static mica_err *apply_closed(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  mica_err *err = rd_end(r, "closed");
  ms_tab *t;
  if (!err) err = check_tab(m, id, "closed", &t);
  if (err) return err;
  if (t->state != MS_CLOSING || t->closed)
    return bad("closed: tablet %" PRIu64 " is not closing", id);
  if (dry) return NULL;
  if (t->close_why == CW_MERGE) t->closed = true;
  else release(m, t);
  return NULL;
}

static mica_err *apply_split(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  slice key = rd_bytes(r);
  uint64_t left = rd_u64(r), right = rd_u64(r);
  mica_err *err = rd_end(r, "split");
  ms_tab *t;
  if (!err) err = check_tab(m, id, "split", &t);
  if (err) return err;
  ms_tbl *tb = ms_find_tbl(m, t->table_id);
  if (t->state != MS_SERVING || tb == NULL || tb->dropping)
    return bad("split: tablet %" PRIu64 " is not serving", id);
  if (!strictly_inside(t, key))
    return bad("split: key outside tablet %" PRIu64, id);
  if (left < m->next_tablet_id || right != left + 1)
    return bad("split: daughter ids %" PRIu64 ",%" PRIu64 " reused", left,
               right);
  size_t at = cur_index(tb, t);
  if (at == SIZE_MAX) return bad("split: tablet %" PRIu64 " not current", id);
  if (dry) return NULL;
  ms_tab *d[2];
  d[0] = tab_new(m, left, t->table_id, buf_slice(&t->start), key,
                 t->range_epoch + 1);
  d[1] = tab_new(m, right, t->table_id, key, buf_slice(&t->end),
                 t->range_epoch + 1);
  for (int i = 0; i < 2; i++) {
    d[i]->state = MS_SERVING;
    d[i]->server = t->server;
    /* Daughters stay where the parent was, under the parent's epoch: the
     * tablet server writes their manifests with it and refuses an epoch
     * below the one the parent's files already carry. */
    d[i]->assign_epoch = t->assign_epoch;
    d[i]->src[0] = t->id;
  }
  t->state = MS_SPLIT;
  t->moving = false;
  cur_replace(tb, at, 1, d, 2);
  return NULL;
}

static mica_err *apply_merge_begin(ms *m, rd *r, bool dry) {
  uint64_t a_id = rd_u64(r), b_id = rd_u64(r);
  mica_err *err = rd_end(r, "merge-begin");
  ms_tab *a, *b;
  if (!err) err = check_tab(m, a_id, "merge-begin", &a);
  if (!err) err = check_tab(m, b_id, "merge-begin", &b);
  if (err) return err;
  ms_tbl *tb = ms_find_tbl(m, a->table_id);
  if (a == b || a->table_id != b->table_id || tb == NULL || tb->dropping)
    return bad("merge-begin: tablets %" PRIu64 ",%" PRIu64 " not mergeable",
               a_id, b_id);
  if (a->state != MS_SERVING || b->state != MS_SERVING)
    return bad("merge-begin: tablets not serving");
  size_t ia = cur_index(tb, a);
  if (ia == SIZE_MAX || ia + 1 >= tb->n_cur || tb->cur[ia + 1] != b)
    return bad("merge-begin: tablets %" PRIu64 ",%" PRIu64 " not adjacent",
               a_id, b_id);
  if (dry) return NULL;
  a->state = b->state = MS_CLOSING;
  a->close_why = b->close_why = CW_MERGE;
  a->close_arg = b_id;
  b->close_arg = a_id;
  a->closed = b->closed = false;
  return NULL;
}

static mica_err *apply_merge_commit(ms *m, rd *r, bool dry) {
  uint64_t a_id = rd_u64(r), b_id = rd_u64(r), id = rd_u64(r),
           srv = rd_u64(r);
  mica_err *err = rd_end(r, "merge-commit");
  ms_tab *a, *b;
  if (!err) err = check_tab(m, a_id, "merge-commit", &a);
  if (!err) err = check_tab(m, b_id, "merge-commit", &b);
  if (err) return err;
  bool ok = a->state == MS_CLOSING && b->state == MS_CLOSING &&
            a->close_why == CW_MERGE && b->close_why == CW_MERGE &&
            a->close_arg == b_id && b->close_arg == a_id && a->closed &&
            b->closed;
  if (!ok) return bad("merge-commit: tablets %" PRIu64 ",%" PRIu64
                      " are not both closed for this merge", a_id, b_id);
  ms_tbl *tb = ms_find_tbl(m, a->table_id);
  size_t ia = tb ? cur_index(tb, a) : SIZE_MAX;
  if (ia == SIZE_MAX || ia + 1 >= tb->n_cur || tb->cur[ia + 1] != b ||
      tb->dropping)
    return bad("merge-commit: tablets not adjacent in a live table");
  if (id < m->next_tablet_id) return bad("merge-commit: tablet id reused");
  if (!ms_srv_live(m, srv)) return bad("merge-commit: server not live");
  if (dry) return NULL;
  uint64_t ep = a->range_epoch > b->range_epoch ? a->range_epoch
                                                : b->range_epoch;
  ms_tab *t = tab_new(m, id, a->table_id, buf_slice(&a->start),
                      buf_slice(&b->end), ep + 1);
  t->state = MS_OPENING;
  t->server = srv;
  /* A new assignment: above both sources' epochs, so no segment either
   * source's last owner wrote can be taken for the merged tablet's own. */
  t->assign_epoch = (a->assign_epoch > b->assign_epoch ? a->assign_epoch
                                                       : b->assign_epoch) + 1;
  t->src[0] = a_id;
  t->src[1] = b_id;
  a->state = b->state = MS_MERGED;
  clear_close(a);
  clear_close(b);
  a->server = b->server = 0;
  cur_replace(tb, ia, 2, &t, 1);
  return NULL;
}

static mica_err *apply_config(ms *m, rd *r, bool dry) {
  uint64_t bal = rd_u64(r), mer = rd_u64(r);
  mica_err *err = rd_end(r, "config");
  if (err) return err;
  if (bal > MS_BAL_SUGGEST || mer > 1)
    return bad("config: bad switch value");
  if (!dry) {
    m->balancer_mode = (int)bal;
    m->merges_on = mer;
  }
  return NULL;
}

static mica_err *apply_server_http(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r);
  slice http = rd_bytes(r);
  mica_err *err = rd_end(r, "server-http");
  if (err) return err;
  ms_srv *s = ms_find_srv(m, id);
  if (s == NULL || s->dead)
    return bad("server-http: no live server %" PRIu64, id);
  if (http.len > 1024 || memchr(http.data, 0, http.len))
    return bad("server-http: bad http address");
  if (!dry) {
    free(s->http_address);
    s->http_address = ms_strndup(http);
  }
  return NULL;
}

static mica_err *apply_server_drain(ms *m, rd *r, bool dry) {
  uint64_t id = rd_u64(r), on = rd_u64(r);
  mica_err *err = rd_end(r, "server-drain");
  if (err) return err;
  ms_srv *s = ms_find_srv(m, id);
  if (s == NULL || s->dead)
    return bad("server-drain: no live server %" PRIu64, id);
  if (on > 1) return bad("server-drain: bad switch value");
  if (!dry) {
    s->draining = on == 1;
    s->drained_told = false;
  }
  return NULL;
}

/* ---- snapshots ---- */

void ms_encode_state(ms *m, buf *b) {
  put_varint64(b, m->next_table_id);
  put_varint64(b, m->next_tablet_id);
  put_varint64(b, m->next_server_id);
  put_varint64(b, (uint64_t)m->balancer_mode);
  put_varint64(b, m->merges_on);
  put_varint64(b, m->n_tables);
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    put_varint64(b, tb->id);
    put_length_prefixed(b, slice_from_str(tb->name));
    put_varint64(b, tb->dropping);
    put_varint64(b, tb->created_ms);
    put_varint64(b, tb->n_presplit);
    for (size_t k = 0; k < tb->n_presplit; k++)
      put_length_prefixed(b, buf_slice(&tb->presplit[k]));
  }
  put_varint64(b, m->n_srvs);
  for (size_t i = 0; i < m->n_srvs; i++) {
    ms_srv *s = m->srvs[i];
    put_varint64(b, s->id);
    put_length_prefixed(b, slice_from_str(s->address));
    put_varint64(b, s->incarnation);
    put_varint64(b, s->registered_ms);
    put_varint64(b, s->dead);
  }
  put_varint64(b, m->n_tabs);
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    put_varint64(b, t->id);
    put_varint64(b, t->table_id);
    put_length_prefixed(b, buf_slice(&t->start));
    put_length_prefixed(b, buf_slice(&t->end));
    put_varint64(b, t->range_epoch);
    put_varint64(b, (uint64_t)t->state);
    put_varint64(b, t->server);
    put_varint64(b, t->assign_epoch);
    put_varint64(b, (uint64_t)t->close_why);
    put_varint64(b, t->close_arg);
    put_varint64(b, t->closed);
    put_varint64(b, t->src[0]);
    put_varint64(b, t->src[1]);
  }
  uint64_t n_http = 0;
  for (size_t i = 0; i < m->n_srvs; i++) n_http += m->srvs[i]->http_address[0] != 0;
  put_varint64(b, n_http);
  for (size_t i = 0; i < m->n_srvs; i++) {
    ms_srv *s = m->srvs[i];
    if (s->http_address[0] == 0) continue;
    put_varint64(b, s->id);
    put_length_prefixed(b, slice_from_str(s->http_address));
  }
  uint64_t n_drain = 0;
  for (size_t i = 0; i < m->n_srvs; i++) n_drain += m->srvs[i]->draining;
  put_varint64(b, n_drain);
  for (size_t i = 0; i < m->n_srvs; i++)
    if (m->srvs[i]->draining) put_varint64(b, m->srvs[i]->id);
  bool snaps = ms_tsnap_section_due(m);
  ms_encode_opts_section(m, b, snaps);
  if (snaps) ms_tsnap_encode_section(m, b);
}

static int cmp_tab_start(const void *a, const void *b) {
  const ms_tab *x = *(ms_tab *const *)a, *y = *(ms_tab *const *)b;
  return slice_cmp(buf_slice(&x->start), buf_slice(&y->start));
}

static mica_err *apply_snapshot(ms *m, rd *r, bool dry) {
  if (dry) return bad("snapshot record outside a snapshot file");
  if (m->n_tables || m->n_tabs || m->n_srvs || m->next_table_id > 1)
    return bad("snapshot record after other records");
  m->next_table_id = rd_u64(r);
  m->next_tablet_id = rd_u64(r);
  m->next_server_id = rd_u64(r);
  uint64_t bal = rd_u64(r), mer = rd_u64(r);
  m->balancer_mode = (int)(bal & 3);
  m->merges_on = mer == 1;
  if (bal > MS_BAL_SUGGEST || mer > 1)
    return bad("snapshot: bad switch value");
  uint64_t n = rd_u64(r);
  for (uint64_t i = 0; i < n && !r->bad; i++) {
    uint64_t id = rd_u64(r);
    slice name = rd_bytes(r);
    uint64_t dropping = rd_u64(r), created = rd_u64(r), np = rd_u64(r);
    if (r->bad || np > (uint64_t)(r->lim - r->p)) return bad("snapshot: bad table");
    if (id == 0 || id >= m->next_table_id ||
        (m->n_tables && m->tables[m->n_tables - 1]->id >= id))
      return bad("snapshot: table ids out of order");
    ms_tbl *tb = xcalloc(1, sizeof(*tb));
    tb->id = id;
    tb->name = xmalloc(name.len + 1);
    memcpy(tb->name, name.data, name.len);
    tb->name[name.len] = '\0';
    tb->dropping = dropping != 0;
    tb->created_ms = created;
    mto_init(&tb->opts);
    tb->presplit = xcalloc((size_t)np + 1, sizeof(buf));
    tb->n_presplit = (size_t)np;
    PUSH(m->tables, m->n_tables, m->cap_tables, tb);
    for (uint64_t k = 0; k < np; k++)
      buf_append_slice(&tb->presplit[k], rd_bytes(r));
    if (strlen(tb->name) != name.len || !ms_valid_table_name(tb->name))
      return bad("snapshot: bad table name");
    if (!tb->dropping) {
      for (size_t k = 0; k + 1 < m->n_tables; k++)
        if (!m->tables[k]->dropping && strcmp(m->tables[k]->name, tb->name) == 0)
          return bad("snapshot: table name %s twice", tb->name);
    }
  }
  n = rd_u64(r);
  for (uint64_t i = 0; i < n && !r->bad; i++) {
    uint64_t id = rd_u64(r);
    slice addr = rd_bytes(r);
    uint64_t inc = rd_u64(r), reg = rd_u64(r), dead = rd_u64(r);
    if (r->bad) break;
    if (id == 0 || id >= m->next_server_id ||
        (m->n_srvs && m->srvs[m->n_srvs - 1]->id >= id) || dead > 1 ||
        memchr(addr.data, 0, addr.len))
      return bad("snapshot: bad server %" PRIu64, id);
    ms_srv *s = xcalloc(1, sizeof(*s));
    s->id = id;
    s->address = xmalloc(addr.len + 1);
    memcpy(s->address, addr.data, addr.len);
    s->address[addr.len] = '\0';
    s->http_address = xstrdup("");
    s->incarnation = inc;
    s->registered_ms = reg;
    s->dead = dead == 1;
    s->renewed_at = m->now;
    PUSH(m->srvs, m->n_srvs, m->cap_srvs, s);
  }
  n = rd_u64(r);
  for (uint64_t i = 0; i < n && !r->bad; i++) {
    uint64_t id = rd_u64(r), table = rd_u64(r);
    slice start = rd_bytes(r), end = rd_bytes(r);
    uint64_t rep = rd_u64(r), st = rd_u64(r), srv = rd_u64(r),
             aep = rd_u64(r), why = rd_u64(r), arg = rd_u64(r),
             closed = rd_u64(r), src0 = rd_u64(r), src1 = rd_u64(r);
    if (r->bad) break;
    ms_tbl *tb = ms_find_tbl(m, table);
    if (id == 0 || id >= m->next_tablet_id || tb == NULL ||
        (m->n_tabs && m->tabs[m->n_tabs - 1]->id >= id) || st < MS_UNASSIGNED ||
        st > MS_MERGED || why > CW_PLAIN || closed > 1)
      return bad("snapshot: bad tablet %" PRIu64, id);
    bool placed = st == MS_OPENING || st == MS_SERVING || st == MS_CLOSING;
    if (placed && !ms_srv_live(m, srv))
      return bad("snapshot: tablet %" PRIu64 " on a server not live", id);
    if ((st == MS_CLOSING) != (why != CW_NONE))
      return bad("snapshot: tablet %" PRIu64 " closing reason mismatch", id);
    ms_tab *t = tab_new(m, id, table, start, end, rep);
    t->state = (int)st;
    t->server = srv;
    t->assign_epoch = aep;
    t->close_why = (int)why;
    t->close_arg = arg;
    t->closed = closed == 1;
    t->src[0] = src0;
    t->src[1] = src1;
    t->moving = why == CW_MOVE;
    if (st != MS_SPLIT && st != MS_MERGED)
      PUSH(tb->cur, tb->n_cur, tb->cap_cur, t);
  }
  /* Servers' HTTP addresses, a section added later: older snapshots end
   * before it. */
  n = r->p != r->lim ? rd_u64(r) : 0;
  for (uint64_t i = 0; i < n && !r->bad; i++) {
    uint64_t id = rd_u64(r);
    slice http = rd_bytes(r);
    if (r->bad) break;
    ms_srv *s = ms_find_srv(m, id);
    if (s == NULL || s->http_address[0] != 0 || http.len == 0 ||
        http.len > 1024 || memchr(http.data, 0, http.len))
      return bad("snapshot: bad http address of server %" PRIu64, id);
    free(s->http_address);
    s->http_address = ms_strndup(http);
  }
  /* Draining servers, a section added later still. */
  n = r->p != r->lim ? rd_u64(r) : 0;
  for (uint64_t i = 0; i < n && !r->bad; i++) {
    ms_srv *s = ms_find_srv(m, rd_u64(r));
    if (r->bad) break;
    if (s == NULL || s->draining)
      return bad("snapshot: bad draining server");
    s->draining = true;
  }
  /* Tables' options, a section added after the draining servers. */
  if (!r->bad && r->p != r->lim) {
    mica_err *oe = ms_decode_opts_section(m, &r->p, r->lim);
    if (oe) return oe;
  }
  /* Snapshots and clones, a section added after the options. */
  if (!r->bad && r->p != r->lim) {
    mica_err *se = ms_tsnap_decode_section(m, &r->p, r->lim);
    if (se) return se;
  }
  mica_err *err = rd_end(r, "snapshot");
  if (err) return err;
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if (tb->n_cur) qsort(tb->cur, tb->n_cur, sizeof(*tb->cur), cmp_tab_start);
  }
  err = check_invariants(m);
  if (err) {
    mica_err *e2 = bad("snapshot: %s", err_msg(err));
    err_free(err);
    return e2;
  }
  return NULL;
}

mica_err *ms_apply(ms *m, uint8_t type, slice payload, bool dry) {
  rd r = {payload.data, payload.data + payload.len, false};
  switch (type) {
    case REC_SNAPSHOT: return apply_snapshot(m, &r, dry);
    case REC_TABLE_CREATE: return apply_table_create(m, &r, dry);
    case REC_TABLE_DROP: return apply_table_drop(m, &r, dry);
    case REC_TABLE_REMOVE: return apply_table_remove(m, &r, dry);
    case REC_SERVER_ADD: return apply_server_add(m, &r, dry);
    case REC_SERVER_DEAD: return apply_server_dead(m, &r, dry);
    case REC_ASSIGN: return apply_assign(m, &r, dry);
    case REC_SERVING: return apply_serving(m, &r, dry);
    case REC_UNASSIGN: return apply_unassign(m, &r, dry);
    case REC_CLOSING: return apply_closing(m, &r, dry);
    case REC_CLOSED: return apply_closed(m, &r, dry);
    case REC_SPLIT: return apply_split(m, &r, dry);
    case REC_MERGE_BEGIN: return apply_merge_begin(m, &r, dry);
    case REC_MERGE_COMMIT: return apply_merge_commit(m, &r, dry);
    case REC_CONFIG: return apply_config(m, &r, dry);
    case REC_SERVER_HTTP: return apply_server_http(m, &r, dry);
    case REC_TABLE_OPTIONS: return ms_apply_table_options(m, payload, dry);
    case REC_SERVER_DRAIN: return apply_server_drain(m, &r, dry);
    case REC_SNAP_BEGIN:
    case REC_SNAP_READY:
    case REC_SNAP_DROP:
    case REC_SNAP_REMOVE:
    case REC_CLONE_BEGIN:
    case REC_CLONE_DONE: return ms_tsnap_apply(m, type, payload, dry);
    default: return bad("unknown record type %u", type);
  }
}

static mica_err *roll(ms *m) {
  buf b = BUF_INIT;
  ms_encode_state(m, &b);
  mica_err *err = mlog_roll(m->log, REC_SNAPSHOT, buf_slice(&b));
  buf_free(&b);
  return err;
}

mica_err *ms_commit(ms *m, uint8_t type, const buf *payload) {
  return ms_commit_batch(m, 1, &type, payload);
}

mica_err *ms_commit_batch(ms *m, size_t n, const uint8_t *types,
                          const buf *payloads) {
  if (n == 0) return NULL;
  slice *p = xcalloc(n, sizeof(*p));
  mica_err *err = NULL;
  for (size_t i = 0; i < n && !err; i++) {
    p[i] = buf_slice(&payloads[i]);
    err = ms_apply(m, types[i], p[i], true);
    if (err) {
      int t = types[i];
      mica_err *e2 = err_new(MICA_INTERNAL, "master refused its own record "
                             "(type %d): %s", t, err_msg(err));
      err_free(err);
      err = e2;
    }
  }
  if (!err && mlog_needs_roll(m->log)) err = roll(m);
  if (!err) err = mlog_append_batch(m->log, n, types, p);
  for (size_t i = 0; i < n && !err; i++) {
    mica_err *ae = ms_apply(m, types[i], p[i], false);
    if (ae) {
      /* Checked above under the same lock, and independent: cannot fail. */
      LOG_E("master: applying a checked record failed: %s", err_msg(ae));
      abort();
    }
  }
  free(p);
  if (err) return err;
  if (mlog_log_bytes(m->log) > m->opt.snapshot_bytes) {
    mica_err *re = roll(m);
    if (re) {
      LOG_W("master: periodic snapshot failed (retried before the next "
            "change): %s", err_msg(re));
      err_free(re);
    }
  }
  return NULL;
}

/* ---- events and display ---- */

uint64_t ms_wall_ms(ms *m, uint64_t now) {
  return (uint64_t)((int64_t)now + m->wall_minus_mono) / 1000;
}

void ms_event_add(ms *m, const char *kind, uint64_t tablet, uint64_t server,
                  const char *fmt, ...) {
  if (m->opt.event_capacity == 0) return;
  size_t cap = m->opt.event_capacity;
  size_t at = (m->ev_head + m->ev_count) % cap;
  if (m->ev_count == cap) m->ev_head = (m->ev_head + 1) % cap;
  else m->ev_count++;
  ms_event *e = &m->events[at];
  memset(e, 0, sizeof(*e));
  e->time_ms = ms_wall_ms(m, m->now);
  snprintf(e->kind, sizeof(e->kind), "%s", kind);
  e->tablet_id = tablet;
  e->server_id = server;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->text, sizeof(e->text), fmt, ap);
  va_end(ap);
  LOG_I("master: %s: %s", e->kind, e->text);
}

bool ms_tab_split_unseen(const ms_tab *t) {
  return t->split_unseen && t->state == MS_SERVING &&
         t->assign_epoch == t->split_epoch;
}

void ms_fill_tablet(ms *m, const ms_tab *t, ms_tablet *out) {
  memset(out, 0, sizeof(*out));
  ms_tbl *tb = ms_find_tbl(m, t->table_id);
  out->tablet_id = t->id;
  out->table_id = t->table_id;
  out->table_name = xstrdup(tb ? tb->name : "");
  buf_append_slice(&out->start_key, buf_slice(&t->start));
  buf_append_slice(&out->end_key, buf_slice(&t->end));
  out->range_epoch = t->range_epoch;
  out->state = t->state;
  bool placed = t->state == MS_OPENING || t->state == MS_SERVING ||
                t->state == MS_CLOSING;
  ms_srv *s = placed ? ms_find_srv(m, t->server) : NULL;
  out->server_id = s ? s->id : 0;
  out->address = xstrdup(s ? s->address : "");
  out->assign_epoch = t->assign_epoch;
  /* A daughter not reported yet is assigned (state serving) but not
   * routed to: its server answers "not served here" until it opened it. */
  out->has_location = t->state == MS_SERVING && s != NULL &&
                      !ms_tab_split_unseen(t);
  out->stats = t->stats;
}

const char *ms_tablet_state_name(int state) {
  switch (state) {
    case MS_UNASSIGNED: return "unassigned";
    case MS_OPENING: return "opening";
    case MS_SERVING: return "serving";
    case MS_CLOSING: return "closing";
    case MS_SPLIT: return "split";
    case MS_MERGED: return "merged";
    default: return "unknown";
  }
}

void ms_tablet_clear(ms_tablet *t) {
  free(t->table_name);
  free(t->address);
  buf_free(&t->start_key);
  buf_free(&t->end_key);
  memset(t, 0, sizeof(*t));
}

void ms_tablet_list_free(ms_tablet_list *l) {
  for (size_t i = 0; i < l->n; i++) ms_tablet_clear(&l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

void ms_table_infos_free(ms_table_info *v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i].name);
  free(v);
}

void ms_server_infos_free(ms_server_info *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].address);
    free(v[i].http_address);
  }
  free(v);
}

void ms_server_reply_free(ms_server_reply *r) {
  free(r->close);
  r->close = NULL;
  r->n_close = 0;
  for (size_t i = 0; i < r->n_merged; i++) ms_tablet_clear(&r->merged[i].merged);
  free(r->merged);
  r->merged = NULL;
  r->n_merged = 0;
  free(r->table_opts);
  r->table_opts = NULL;
  r->n_table_opts = 0;
}

void ms_action_list_free(ms_action_list *l) {
  for (size_t i = 0; i < l->n; i++) {
    ms_action *a = &l->v[i];
    free(a->address);
    free(a->moved_to_address);
    ms_tablet_clear(&a->tablet);
  }
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* ---- invariants ---- */

static mica_err *check_invariants(ms *m) {
  for (size_t i = 1; i < m->n_tables; i++)
    if (m->tables[i - 1]->id >= m->tables[i]->id) /* ms_find_tbl's search */
      return err_new(MICA_INTERNAL, "table ids not unique and ordered at %"
                     PRIu64, m->tables[i]->id);
  for (size_t i = 0; i < m->n_tabs; i++) {
    if (i > 0 && m->tabs[i - 1]->id >= m->tabs[i]->id)
      return err_new(MICA_INTERNAL, "tablet ids not unique and ordered at %"
                     PRIu64, m->tabs[i]->id);
    ms_tab *t = m->tabs[i];
    if (t->id >= m->next_tablet_id)
      return err_new(MICA_INTERNAL, "tablet %" PRIu64 " not below next id",
                     t->id);
    if (ms_find_tbl(m, t->table_id) == NULL)
      return err_new(MICA_INTERNAL, "tablet %" PRIu64 " of unknown table",
                     t->id);
    if ((t->state == MS_OPENING || t->state == MS_SERVING) &&
        !ms_srv_live(m, t->server))
      return err_new(MICA_INTERNAL, "tablet %" PRIu64 " is %s on server %"
                     PRIu64 " which is not live", t->id,
                     ms_tablet_state_name(t->state), t->server);
    if (t->state == MS_CLOSING && ms_find_srv(m, t->server) == NULL)
      return err_new(MICA_INTERNAL, "closing tablet %" PRIu64 " has no "
                     "server", t->id);
    if (t->state == MS_CLOSING && t->close_why == CW_MERGE) {
      ms_tab *p = ms_find_tab(m, t->close_arg);
      if (p == NULL || p->state != MS_CLOSING || p->close_why != CW_MERGE ||
          p->close_arg != t->id)
        return err_new(MICA_INTERNAL, "merge partner of %" PRIu64 " broken",
                       t->id);
    }
  }
  for (size_t i = 0; i < m->n_srvs; i++)
    if (m->srvs[i]->id >= m->next_server_id ||
        (i > 0 && m->srvs[i - 1]->id >= m->srvs[i]->id))
      return err_new(MICA_INTERNAL, "server ids not unique");
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if (tb->id >= m->next_table_id)
      return err_new(MICA_INTERNAL, "table id %" PRIu64 " not below next",
                     tb->id);
    size_t cur = 0;
    for (size_t k = 0; k < m->n_tabs; k++)
      if (m->tabs[k]->table_id == tb->id && m->tabs[k]->state != MS_SPLIT &&
          m->tabs[k]->state != MS_MERGED)
        cur++;
    if (cur != tb->n_cur)
      return err_new(MICA_INTERNAL, "table %s lists %zu current tablets of "
                     "%zu", tb->name, tb->n_cur, cur);
    if (tb->dropping) continue;
    if (tb->n_cur == 0)
      return err_new(MICA_INTERNAL, "table %s has no tablets", tb->name);
    if (tb->cur[0]->start.len != 0)
      return err_new(MICA_INTERNAL, "table %s: first tablet does not start "
                     "at the beginning", tb->name);
    if (tb->cur[tb->n_cur - 1]->end.len != 0)
      return err_new(MICA_INTERNAL, "table %s: last tablet does not end at "
                     "the end", tb->name);
    for (size_t k = 0; k < tb->n_cur; k++) {
      ms_tab *t = tb->cur[k];
      if (t->table_id != tb->id || t->state == MS_SPLIT ||
          t->state == MS_MERGED)
        return err_new(MICA_INTERNAL, "table %s lists tablet %" PRIu64
                       " wrongly", tb->name, t->id);
      if (t->end.len != 0 &&
          slice_cmp(buf_slice(&t->start), buf_slice(&t->end)) >= 0)
        return err_new(MICA_INTERNAL, "tablet %" PRIu64 " has an empty range",
                       t->id);
      if (k > 0 && !slice_eq(buf_slice(&tb->cur[k - 1]->end),
                             buf_slice(&t->start)))
        return err_new(MICA_INTERNAL, "table %s: gap or overlap between "
                       "tablets %" PRIu64 " and %" PRIu64, tb->name,
                       tb->cur[k - 1]->id, t->id);
    }
  }
  return NULL;
}

mica_err *ms_check_invariants(ms *m) {
  pthread_mutex_lock(&m->mu);
  mica_err *err = check_invariants(m);
  pthread_mutex_unlock(&m->mu);
  return err;
}

/* ---- open and close ---- */

void ms_options_init(ms_options *o) {
  memset(o, 0, sizeof(*o));
  o->env = env_posix();
  o->lease_us = 10 * 1000 * 1000;
  o->lease_margin_us = 2 * 1000 * 1000;
  o->heartbeat_us = 1000 * 1000;
  o->snapshot_bytes = 4 << 20;
  o->max_key_len = MICA_MAX_KEY;
  o->max_split_keys = 1000;
  o->max_opens_per_server = 32;
  o->open_backoff_min_us = 200 * 1000;
  o->open_backoff_max_us = 10 * 1000 * 1000;
  o->action_timeout_us = 30ull * 1000 * 1000;
  o->balance_band = 0.2;
  o->balance_min_bytes = 64ull << 20;
  o->balance_min_rate = 50;
  o->balance_window_us = 120ull * 1000000;
  o->balance_settle_us = 3ull * 1000000;
  o->max_moves_in_flight = 2;
  o->merge_max_bytes = 16ull << 20;
  o->merge_max_rate = 1.0;
  o->merge_min_age_us = 60ull * 1000 * 1000;
  o->max_merges_in_flight = 1;
  o->event_capacity = 256;
  o->load_cool_us = 300ull * 1000 * 1000;
  o->heat_bucket_us = 60ull * 1000 * 1000;
  o->heat_buckets = 60;
  o->heat_max_tablets = 10000;
}

static mica_err *replay_fn(void *ctx, uint8_t type, slice payload) {
  return ms_apply(ctx, type, payload, false);
}

static void free_state(ms *m) {
  for (size_t i = 0; i < m->n_tabs; i++) tab_free(m->tabs[i]);
  for (size_t i = 0; i < m->n_tables; i++) tbl_free(m->tables[i]);
  for (size_t i = 0; i < m->n_srvs; i++) {
    free(m->srvs[i]->address);
    free(m->srvs[i]->http_address);
    free(m->srvs[i]->succ);
    free(m->srvs[i]);
  }
  free(m->tabs);
  free(m->tables);
  free(m->srvs);
  free(m->acts);
  free(m->events);
  ms_heat_free(m->heat);
}

mica_err *ms_open(const ms_options *o, uint64_t now, ms **out) {
  *out = NULL;
  if (o->data_root == NULL || o->env == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "master: no data root");
  if (o->lease_us == 0)
    return err_new(MICA_INVALID_ARGUMENT, "master: lease must be positive");
  ms *m = xcalloc(1, sizeof(*m));
  pthread_mutex_init(&m->mu, NULL);
  m->opt = *o;
  m->opt.data_root = NULL;
  m->dir = layout_master_dir(o->data_root);
  m->now = now;
  m->wall_minus_mono = (int64_t)env_wall_micros(o->env) -
                       (int64_t)env_now_micros(o->env);
  m->next_table_id = m->next_tablet_id = m->next_server_id = 1;
  m->balancer_mode = MS_BAL_AUTO;
  m->merges_on = true;
  m->next_action_id = 1;
  m->events = xcalloc(o->event_capacity ? o->event_capacity : 1,
                      sizeof(ms_event));
  m->heat = ms_heat_new(o->heat_bucket_us, o->heat_buckets,
                        o->heat_max_tablets);
  uint64_t replay_start = env_now_micros(o->env);
  mica_err *err = mlog_open_epoch(o->env, m->dir, o->master_epoch, replay_fn,
                                  m, &m->log);
  if (!err && o->still_active)
    mlog_set_guard(m->log, o->still_active, o->still_active_ctx);
  if (!err) err = roll(m);
  if (err) {
    ms_close(m);
    return err_wrap(err, "master state %s", o->data_root);
  }
  /* Servers known live may hold leases the previous master granted: wait
   * for them to come back (or for those leases to be surely over). The
   * wait starts once the log is read: they cannot heartbeat before the
   * master serves, and reading the log from S3 can take longer than a
   * lease (every server was declared dead on each restart there). Their
   * leases count from then too: the replay stamped them with `now`, from
   * before it, so on S3 (replay ~3 s, lease 2 s in the tests) the first
   * heartbeat of every server was "after lease and margin" and each was
   * declared dead inside the grace period (test_cluster_failover_s3). */
  uint64_t replay_us = env_now_micros(o->env) - replay_start;
  bool any_live = false;
  for (size_t i = 0; i < m->n_srvs; i++) {
    any_live |= !m->srvs[i]->dead;
    m->srvs[i]->renewed_at = now + replay_us;
  }
  if (any_live)
    m->grace_until = now + replay_us + o->lease_us + o->lease_margin_us;
  else m->grace_done = true;
  *out = m;
  return NULL;
}

void ms_close(ms *m) {
  if (m == NULL) return;
  mlog_close(m->log);
  free_state(m);
  ms_tsnap_free_all(m);
  free(m->suggested);
  free(m->approved);
  free(m->dir);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void ms_dump_durable(ms *m, buf *out) {
  pthread_mutex_lock(&m->mu);
  ms_encode_state(m, out);
  pthread_mutex_unlock(&m->mu);
}

bool ms_in_grace(ms *m, uint64_t now) {
  pthread_mutex_lock(&m->mu);
  bool g = !m->grace_done && now < m->grace_until;
  pthread_mutex_unlock(&m->mu);
  return g;
}
