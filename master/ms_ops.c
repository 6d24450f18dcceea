/* ms_ops: the master's answers to clients, operators and tablet servers.
 *
 * Each call takes the state's mutex, checks its input completely (so a bad
 * request changes nothing), logs what it changes, and answers with copies.
 * Errors name the thing at fault; keys in messages are escaped and cut to a
 * readable length because they are arbitrary bytes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "master/ms_int.h"
#include "master/tsnap.h"
#include "proto/limits.h"

#define LOCK(m) pthread_mutex_lock(&(m)->mu)
#define UNLOCK(m) pthread_mutex_unlock(&(m)->mu)

/* `key` escaped for a message, at most ~64 input bytes. Caller frees. */
static char *show_key(slice key) {
  buf b = BUF_INIT;
  bool cut = key.len > 64;
  if (cut) key.len = 64;
  slice_escape(key, &b);
  if (cut) buf_append(&b, "...", 4);
  else buf_push(&b, 0);
  return (char *)b.data;
}

/* NOT_FOUND for table `name`, quoted as messages quote keys: a name is
 * the caller's bytes, and a message must stay readable UTF-8. */
static mica_err *no_table(const char *name) {
  buf b = BUF_INIT;
  size_t n = name ? strlen(name) : 0;
  slice_escape(slice_make(name ? name : "", n > 140 ? 140 : n), &b);
  mica_err *e = err_new(MICA_NOT_FOUND, "no table named \"%s%s\"",
                        b.data ? (char *)b.data : "", n > 140 ? "..." : "");
  buf_free(&b);
  return e;
}

static mica_err *check_key(ms *m, slice key, const char *what) {
  if (key.len == 0)
    return err_new(MICA_INVALID_ARGUMENT, "%s is empty", what);
  if (key.len > m->opt.max_key_len)
    return err_new(MICA_INVALID_ARGUMENT, "%s is %zu bytes, over the %zu-byte "
                   "key limit", what, key.len, m->opt.max_key_len);
  return NULL;
}

static void list_push(ms *m, ms_tablet_list *l, const ms_tab *t) {
  l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
  ms_fill_tablet(m, t, &l->v[l->n++]);
}

static mica_err *commit_u64s(ms *m, uint8_t type, const uint64_t *v,
                             size_t n) {
  buf b = BUF_INIT;
  rec_u64s(&b, v, n);
  mica_err *err = ms_commit(m, type, &b);
  buf_free(&b);
  return err;
}

/* ---- tables ---- */

static mica_err *check_create(ms *m, const char *name, const slice *keys,
                              size_t n) {
  if (name == NULL || !ms_valid_table_name(name)) {
    size_t len = name ? strlen(name) : 0;
    char *shown = show_key(slice_make(name ? name : "", len));
    mica_err *e = err_new(MICA_INVALID_ARGUMENT, "table name \"%s\" is not 1 "
                          "to %u characters of A-Z a-z 0-9 _ . -", shown,
                          MICA_MAX_TABLE_NAME);
    free(shown);
    return e;
  }
  if (ms_find_tbl_name(m, name) != NULL)
    return err_new(MICA_ALREADY_EXISTS, "table %s already exists", name);
  if (n > m->opt.max_split_keys)
    return err_new(MICA_INVALID_ARGUMENT, "%zu split keys, over the cap of "
                   "%zu split keys per CreateTable (the master's "
                   "--max-split-keys); create fewer tablets and let them "
                   "split", n, m->opt.max_split_keys);
  for (size_t i = 0; i < n; i++) {
    char what[48];
    snprintf(what, sizeof(what), "split key %zu", i);
    mica_err *err = check_key(m, keys[i], what);
    if (err) return err;
    if (i == 0) continue;
    int c = slice_cmp(keys[i - 1], keys[i]);
    if (c >= 0) {
      char *a = show_key(keys[i - 1]), *b = show_key(keys[i]);
      err = err_new(MICA_INVALID_ARGUMENT, c == 0
                    ? "split key %zu \"%s\" repeats split key %zu"
                    : "split keys not sorted: key %zu \"%s\" sorts before "
                      "key %zu \"%s\"", i, b, i - 1, a);
      free(a);
      free(b);
      return err;
    }
  }
  return NULL;
}

mica_err *ms_create_table(ms *m, const char *name, const slice *split_keys,
                          size_t n, uint64_t now, ms_tablet_list *out) {
  return ms_create_table_opts(m, name, split_keys, n, NULL, now, out);
}

mica_err *ms_create_table_opts(ms *m, const char *name,
                               const slice *split_keys, size_t n,
                               const ms_table_opts *opts, uint64_t now,
                               ms_tablet_list *out) {
  ms_table_opts o;
  mto_init(&o);
  if (opts) o = *opts;
  mica_err *err = mto_check(&o);
  if (err) return err;
  slice *salted = NULL;
  uint8_t *storage = NULL;
  for (size_t i = 0; o.salt_buckets && i < n; i++)
    if (split_keys[i].len == 0 || split_keys[i].len + 1 > m->opt.max_key_len)
      return err_new(MICA_INVALID_ARGUMENT, "split key %zu: %zu bytes, not "
                     "within 1 .. %zu, the keys of a salted table (one byte "
                     "goes to the salt)", i, split_keys[i].len,
                     m->opt.max_key_len - 1);
  if (o.salt_buckets) {
    for (size_t i = 1; i < n; i++)
      if (slice_cmp(split_keys[i - 1], split_keys[i]) >= 0)
        return err_new(MICA_INVALID_ARGUMENT, "split key %zu is not after "
                       "split key %zu", i, i - 1);
    ms_salted_keys(split_keys, n, o.salt_buckets, &salted, &n, &storage);
    split_keys = salted;
  }
  LOCK(m);
  m->now = now;
  err = check_create(m, name, split_keys, n);
  if (!err) {
    buf b = BUF_INIT;
    uint64_t id = m->next_table_id, first = m->next_tablet_id;
    put_varint64(&b, id);
    put_length_prefixed(&b, slice_from_str(name));
    put_varint64(&b, ms_wall_ms(m, now));
    put_varint64(&b, first);
    put_varint64(&b, n);
    for (size_t i = 0; i < n; i++) put_length_prefixed(&b, split_keys[i]);
    if (!mto_is_default(&o)) mto_encode(&o, &b);
    err = ms_commit(m, REC_TABLE_CREATE, &b);
    buf_free(&b);
    if (!err) {
      ms_tbl *tb = ms_find_tbl(m, id);
      ms_event_add(m, "create", 0, 0, "table %s created with %zu tablets",
                   name, tb->n_cur);
      if (out)
        for (size_t i = 0; i < tb->n_cur; i++) list_push(m, out, tb->cur[i]);
    }
  }
  UNLOCK(m);
  free(salted);
  free(storage);
  return err;
}

mica_err *ms_drop_table(ms *m, const char *name, uint64_t now) {
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  ms_tbl *tb = name ? ms_find_tbl_name(m, name) : NULL;
  if (tb == NULL) {
    err = no_table(name);
  } else if (ms_tsnap_cloning(m, tb->id)) {
    err = err_new(MICA_UNAVAILABLE, "table %s is being cloned from a "
                  "snapshot; drop it when that is done", tb->name);
  } else {
    err = commit_u64s(m, REC_TABLE_DROP, &tb->id, 1);
    if (!err)
      ms_event_add(m, "drop", 0, 0, "table %s dropped; closing its %zu "
                   "tablets", tb->name, tb->n_cur);
  }
  UNLOCK(m);
  return err;
}

static int cmp_info_name(const void *a, const void *b) {
  return strcmp(((const ms_table_info *)a)->name,
                ((const ms_table_info *)b)->name);
}

mica_err *ms_list_tables(ms *m, ms_table_info **out, size_t *n) {
  LOCK(m);
  ms_table_info *v = xcalloc(m->n_tables + 1, sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if (tb->dropping) continue;
    ms_table_info *x = &v[k++];
    x->table_id = tb->id;
    x->name = xstrdup(tb->name);
    x->tablet_count = tb->n_cur;
    x->created_ms = tb->created_ms;
    x->opts = tb->opts;
    for (size_t j = 0; j < tb->n_cur; j++) {
      x->bytes += tb->cur[j]->stats.bytes;
      x->keys += tb->cur[j]->stats.keys;
    }
  }
  UNLOCK(m);
  qsort(v, k, sizeof(*v), cmp_info_name);
  *out = v;
  *n = k;
  return NULL;
}

/* ---- routing ---- */

/* Index of the current tablet containing `key` (non-empty). */
static size_t containing(const ms_tbl *tb, slice key) {
  size_t lo = 0, hi = tb->n_cur;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (slice_cmp(buf_slice(&tb->cur[mid]->start), key) <= 0) lo = mid;
    else hi = mid;
  }
  return lo;
}

static mica_err *lookup(ms *m, const char *table, slice key, uint32_t count,
                        bool before, ms_tablet_list *out) {
  if (count == 0) count = 1;
  if (count > MICA_MAX_LOOKUP_COUNT) count = MICA_MAX_LOOKUP_COUNT;
  LOCK(m);
  mica_err *err = NULL;
  ms_tbl *tb = table ? ms_find_tbl_name(m, table) : NULL;
  if (tb == NULL) {
    err = no_table(table);
    goto out;
  }
  if (key.len > m->opt.max_key_len) {
    err = err_new(MICA_INVALID_ARGUMENT, "lookup key of %zu bytes exceeds "
                  "the %zu-byte limit", key.len, m->opt.max_key_len);
    goto out;
  }
  if (!before) {
    size_t i = key.len ? containing(tb, key) : 0;
    for (size_t k = 0; k < count && i + k < tb->n_cur; k++)
      list_push(m, out, tb->cur[i + k]);
    goto out;
  }
  /* The first tablet starts at "", below every non-empty key, so a
   * non-empty key always has a tablet before it or containing keys below
   * it. */
  size_t i = tb->n_cur - 1;
  if (key.len) {
    i = containing(tb, key);
    if (i > 0 && slice_eq(buf_slice(&tb->cur[i]->start), key)) i--;
  }
  for (size_t k = 0; k < count && k <= i; k++) list_push(m, out, tb->cur[i - k]);
out:
  UNLOCK(m);
  return err;
}

mica_err *ms_lookup(ms *m, const char *table, slice key, uint32_t count,
                    ms_tablet_list *out) {
  return lookup(m, table, key, count, false, out);
}

mica_err *ms_lookup_before(ms *m, const char *table, slice key,
                           uint32_t count, ms_tablet_list *out) {
  return lookup(m, table, key, count, true, out);
}

static int cmp_by_start(const void *a, const void *b) {
  const ms_tablet *x = a, *y = b;
  int c = slice_cmp(buf_slice(&x->start_key), buf_slice(&y->start_key));
  if (c != 0) return c;
  return x->tablet_id < y->tablet_id ? -1 : x->tablet_id > y->tablet_id;
}

mica_err *ms_list_tablets(ms *m, const char *table, bool include_retired,
                          ms_tablet_list *out) {
  LOCK(m);
  mica_err *err = NULL;
  ms_tbl *only = NULL;
  if (table != NULL && table[0] != '\0') {
    only = ms_find_tbl_name(m, table);
    if (only == NULL) {
      err = no_table(table);
      goto out;
    }
  }
  for (size_t i = 0; i < m->n_tables; i++) {
    ms_tbl *tb = m->tables[i];
    if ((only && tb != only) || (!only && tb->dropping)) continue;
    if (!include_retired) {
      for (size_t k = 0; k < tb->n_cur; k++) list_push(m, out, tb->cur[k]);
      continue;
    }
    /* Current and retired together, in key order (then by id, so a parent
     * comes before the daughter that starts where it did). */
    size_t from = out->n;
    for (size_t k = 0; k < m->n_tabs; k++)
      if (m->tabs[k]->table_id == tb->id) list_push(m, out, m->tabs[k]);
    qsort(out->v + from, out->n - from, sizeof(*out->v), cmp_by_start);
  }
out:
  UNLOCK(m);
  return err;
}

mica_err *ms_get_tablet(ms *m, uint64_t tablet_id, ms_tablet *out) {
  LOCK(m);
  mica_err *err = NULL;
  ms_tab *t = ms_find_tab(m, tablet_id);
  if (t == NULL) err = err_new(MICA_NOT_FOUND, "no tablet %" PRIu64, tablet_id);
  else ms_fill_tablet(m, t, out);
  UNLOCK(m);
  return err;
}

void ms_split_unseen_list(ms *m, ms_unseen **out, size_t *n) {
  LOCK(m);
  ms_unseen *v = NULL;
  size_t k = 0;
  for (size_t i = 0; i < m->n_tabs; i++) {
    const ms_tab *t = m->tabs[i];
    if (!ms_tab_split_unseen(t)) continue;
    ms_srv *s = ms_find_srv(m, t->server);
    if (s == NULL || s->dead) continue;
    v = xrealloc(v, (k + 1) * sizeof(*v));
    v[k].tablet_id = t->id;
    v[k].server_id = s->id;
    v[k].address = xstrdup(s->address);
    v[k].range_epoch = t->range_epoch;
    v[k].assign_epoch = t->assign_epoch;
    k++;
  }
  UNLOCK(m);
  *out = v;
  *n = k;
}

void ms_unseen_free(ms_unseen *v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i].address);
  free(v);
}

void ms_split_seen(ms *m, uint64_t tablet_id, uint64_t server_id,
                   uint64_t range_epoch, uint64_t assign_epoch) {
  LOCK(m);
  ms_tab *t = ms_find_tab(m, tablet_id);
  if (t != NULL && ms_tab_split_unseen(t) && t->server == server_id &&
      t->range_epoch == range_epoch && t->assign_epoch == assign_epoch)
    t->split_unseen = false;
  UNLOCK(m);
}

bool ms_tablet_forgotten(ms *m, uint64_t tablet_id) {
  LOCK(m);
  bool r = tablet_id != 0 && tablet_id < m->next_tablet_id &&
           ms_find_tab(m, tablet_id) == NULL;
  UNLOCK(m);
  return r;
}

/* ---- tablet servers ---- */

static void reply_close(ms_server_reply *r, ms_ref ref) {
  r->close = xrealloc(r->close, (r->n_close + 1) * sizeof(*r->close));
  r->close[r->n_close++] = ref;
}

/* True while daughter `t` of a split may still be coming up on its server:
 * the server has never reported it, nor did the heartbeat of generation
 * `gen` name its parent, and less than a lease has passed since the commit.
 * Between the answer to ReportSplit and the daughters serving, the server
 * reports neither parent nor daughters (it waits for the parent's requests
 * in flight, then splits and syncs the files), which on a loaded machine
 * took longer than 3 heartbeats in the cluster churn test: counting those
 * heartbeats closed the daughters as "lost" the moment they opened and
 * sent them through a needless close and reassignment. A server still
 * naming the parent did not carry the split out, and one whose split
 * failed or never finished is caught once the lease has passed. */
static bool split_in_progress(ms *m, const ms_tab *t, uint64_t gen) {
  if (t->src[0] == 0 || t->src[1] != 0 || t->have_stats) return false;
  const ms_tab *p = ms_find_tab(m, t->src[0]);
  if (p == NULL || p->state != MS_SPLIT || p->seen_gen == gen) return false;
  return m->now < t->born_us + m->opt.lease_us;
}

/* Serving tablets of `s` without anything in flight that the heartbeat of
 * generation `gen` did not name: after MS_UNREPORTED_LIMIT such heartbeats
 * in a row, the server is asked to close the tablet (it answers that it
 * has none, or closes a copy it stopped reporting) and the tablet is then
 * reassigned. */
static mica_err *check_unreported(ms *m, ms_srv *s, uint64_t gen) {
  uint8_t type = REC_CLOSING;
  buf *recs = NULL;
  ms_tab **tabs = NULL;
  size_t n = 0;
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if (t->server != s->id || t->state != MS_SERVING || t->action != 0)
      continue;
    if (t->seen_gen == gen) {
      t->unreported = 0;
      continue;
    }
    if (split_in_progress(m, t, gen)) continue;
    if (++t->unreported < MS_UNREPORTED_LIMIT) continue;
    recs = xrealloc(recs, (n + 1) * sizeof(*recs));
    tabs = xrealloc(tabs, (n + 1) * sizeof(*tabs));
    recs[n] = (buf)BUF_INIT;
    uint64_t rec[3] = {t->id, CW_PLAIN, 0};
    rec_u64s(&recs[n], rec, 3);
    tabs[n++] = t;
  }
  uint8_t *types = xcalloc(n + 1, 1);
  for (size_t i = 0; i < n; i++) types[i] = type;
  mica_err *err = ms_commit_batch(m, n, types, recs);
  for (size_t i = 0; i < n; i++) {
    if (!err) {
      tabs[i]->unreported = 0;
      ms_queue_action(m, MS_ACT_CLOSE, tabs[i], m->now);
      ms_event_add(m, "lost", tabs[i]->id, s->id, "server %" PRIu64 " has "
                   "not reported tablet %" PRIu64 " in %d heartbeats: "
                   "closing it there to reassign it", s->id, tabs[i]->id,
                   MS_UNREPORTED_LIMIT);
    }
    buf_free(&recs[i]);
  }
  free(types);
  free(recs);
  free(tabs);
  return err;
}

mica_err *ms_take_reports(ms *m, ms_srv *s, const ms_report *r, size_t n,
                          bool heartbeat, ms_server_reply *reply) {
  uint64_t gen = ++m->report_gen;
  for (size_t i = 0; i < n; i++) {
    ms_ref ref = r[i].ref;
    ms_tab *t = ms_find_tab(m, ref.tablet_id);
    bool placed = t && (t->state == MS_OPENING || t->state == MS_SERVING ||
                        (t->state == MS_CLOSING && !t->closed));
    bool ours = placed && t->server == s->id &&
                t->assign_epoch == ref.assign_epoch &&
                t->range_epoch == ref.range_epoch;
    if (!ours) {
      /* A split parent is retired by its own server once the commit is
       * answered, so a report racing that answer is not a stray; one that
       * keeps coming means the server never switched to the daughters. */
      bool parent = t && t->state == MS_SPLIT && t->server == s->id &&
                    t->assign_epoch == ref.assign_epoch;
      if (parent) t->seen_gen = gen; /* see split_in_progress */
      if (!parent || (heartbeat && ++t->unreported >= MS_UNREPORTED_LIMIT))
        reply_close(reply, ref);
      continue;
    }
    t->seen_gen = gen;
    t->split_unseen = false; /* its server serves it: route to it */
    ms_note_stats(m, t, s->id, &r[i].stats);
    t->confirmed = true;
    bool after_restart = !m->grace_done;
    if ((t->state == MS_OPENING && t->action == 0) ||
        (t->state == MS_CLOSING && after_restart && t->action == 0)) {
      /* It serves the tablet, and no request of this master is in flight
       * that could change that: the log catches up with what is true. */
      uint64_t rec[2] = {t->id, t->assign_epoch};
      buf b = BUF_INIT;
      rec_u64s(&b, rec, 2);
      mica_err *err = ms_commit(m, REC_SERVING, &b);
      buf_free(&b);
      if (err) return err;
    }
  }
  /* Not while a restarted master waits for reports: end_grace decides
   * about tablets nobody confirmed. */
  if (heartbeat && m->grace_done) return check_unreported(m, s, gen);
  return NULL;
}

static mica_err *check_address(const char *address) {
  if (address == NULL || address[0] == '\0' || strlen(address) > 1024)
    return err_new(MICA_INVALID_ARGUMENT, "server address must be 1 to 1024 "
                   "bytes");
  return NULL;
}

static bool lease_over(ms *m, const ms_srv *s, uint64_t now) {
  return now > s->renewed_at + m->opt.lease_us + m->opt.lease_margin_us;
}

void ms_note_successor(ms *m, uint64_t server, uint64_t input,
                       uint64_t merged) {
  ms_srv *s = ms_find_srv(m, server);
  if (s == NULL || s->dead) return;
  if (s->n_succ == MS_MAX_SUCCESSORS) {
    memmove(&s->succ[0], &s->succ[1], (s->n_succ - 1) * sizeof(*s->succ));
    s->n_succ--;
  }
  if (s->n_succ == s->cap_succ) {
    s->cap_succ = s->cap_succ ? 2 * s->cap_succ : 8;
    s->succ = xrealloc(s->succ, s->cap_succ * sizeof(*s->succ));
  }
  s->succ[s->n_succ].input = input;
  s->succ[s->n_succ].merged = merged;
  s->n_succ++;
}

/* Moves into reply->merged the successors of `s` whose merged tablet
 * serves now; drops those whose merged tablet is retired or gone (its
 * clients ask the master); keeps the rest (still opening) for later. */
static void take_successors(ms *m, ms_srv *s, ms_server_reply *reply) {
  size_t keep = 0;
  for (size_t i = 0; i < s->n_succ; i++) {
    ms_tab *t = ms_find_tab(m, s->succ[i].merged);
    ms_tbl *tb = t ? ms_find_tbl(m, t->table_id) : NULL;
    if (t == NULL || tb == NULL || tb->dropping || t->state == MS_SPLIT ||
        t->state == MS_MERGED)
      continue;
    if (t->state != MS_SERVING) {
      s->succ[keep++] = s->succ[i];
      continue;
    }
    reply->merged = xrealloc(reply->merged,
                             (reply->n_merged + 1) * sizeof(*reply->merged));
    ms_successor *x = &reply->merged[reply->n_merged++];
    x->input_id = s->succ[i].input;
    ms_fill_tablet(m, t, &x->merged);
  }
  s->n_succ = keep;
}

static void fill_reply(ms *m, const ms_srv *s, ms_server_reply *reply) {
  reply->server_id = s->id;
  reply->lease_ms = m->opt.lease_us / 1000;
  reply->heartbeat_ms = m->opt.heartbeat_us / 1000;
}

mica_err *ms_handle_register(ms *m, const char *address,
                             const char *http_address,
                             uint64_t prev_server_id, uint64_t incarnation,
                             const ms_report *tablets, size_t n,
                             uint64_t now, ms_server_reply *reply) {
  memset(reply, 0, sizeof(*reply));
  if (http_address == NULL) http_address = "";
  mica_err *err = check_address(address);
  if (!err && strlen(http_address) > 1024)
    err = err_new(MICA_INVALID_ARGUMENT, "server http address must be at "
                  "most 1024 bytes");
  if (err) return err;
  LOCK(m);
  m->now = now;
  ms_srv *s = prev_server_id ? ms_find_srv(m, prev_server_id) : NULL;
  bool adopt = s && !s->dead && s->incarnation == incarnation &&
               strcmp(s->address, address) == 0;
  if (adopt && lease_over(m, s, now)) {
    err = ms_declare_dead(m, s, "lease and margin ran out before it "
                          "registered again");
    adopt = false;
  }
  if (!err && !adopt) {
    /* A live server at the same address is an earlier process on that
     * port: the port now belongs to the new one, so the old process can no
     * longer be reached by clients and its tablets must move now. */
    for (size_t i = 0; i < m->n_srvs && !err; i++)
      if (!m->srvs[i]->dead && strcmp(m->srvs[i]->address, address) == 0)
        err = ms_declare_dead(m, m->srvs[i], "a new process registered at "
                              "its address");
    if (!err) {
      buf b = BUF_INIT;
      uint64_t id = m->next_server_id;
      put_varint64(&b, id);
      put_length_prefixed(&b, slice_from_str(address));
      put_varint64(&b, incarnation);
      put_varint64(&b, ms_wall_ms(m, now));
      if (http_address[0] != 0)
        put_length_prefixed(&b, slice_from_str(http_address));
      err = ms_commit(m, REC_SERVER_ADD, &b);
      buf_free(&b);
      if (!err) {
        s = ms_find_srv(m, id);
        ms_event_add(m, "register", 0, id, "server %" PRIu64 " registered "
                     "at %s", id, address);
      }
    }
  } else if (!err) {
    ms_event_add(m, "register", 0, s->id, "server %" PRIu64 " at %s "
                 "registered again reporting %zu tablets", s->id, address, n);
  }
  if (!err && strcmp(s->http_address, http_address) != 0) {
    /* An adopted process announcing another HTTP address (one whose
     * SERVER_ADD predates the field, or one restarted by hand with the same
     * incarnation): the change is logged like any durable fact. */
    buf b = BUF_INIT;
    put_varint64(&b, s->id);
    put_length_prefixed(&b, slice_from_str(http_address));
    err = ms_commit(m, REC_SERVER_HTTP, &b);
    buf_free(&b);
  }
  if (!err) {
    s->renewed_at = now;
    s->reported = true;
    err = ms_take_reports(m, s, tablets, n, false, reply);
  }
  if (!err) fill_reply(m, s, reply);
  else ms_server_reply_free(reply);
  UNLOCK(m);
  return err;
}

mica_err *ms_handle_heartbeat(ms *m, uint64_t server_id, uint64_t incarnation,
                              const ms_report *tablets, size_t n,
                              uint64_t now, ms_server_reply *reply) {
  memset(reply, 0, sizeof(*reply));
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  ms_srv *s = ms_find_srv(m, server_id);
  if (s == NULL || s->incarnation != incarnation) {
    err = err_new(MICA_NOT_FOUND, "no server %" PRIu64 " with that "
                  "incarnation: register first", server_id);
  } else if (s->dead) {
    err = err_new(MICA_LEASE_EXPIRED, "server %" PRIu64 " was declared dead: "
                  "register again", server_id);
  } else if (lease_over(m, s, now)) {
    err = ms_declare_dead(m, s, "heartbeat arrived after lease and margin");
    if (!err)
      err = err_new(MICA_LEASE_EXPIRED, "server %" PRIu64 " heartbeat came "
                    "after its lease and margin: register again", server_id);
  } else {
    s->renewed_at = now;
    s->reported = true;
    err = ms_take_reports(m, s, tablets, n, true, reply);
    if (!err) fill_reply(m, s, reply);
    if (!err) take_successors(m, s, reply);
    if (!err) ms_reply_options(m, tablets, n, reply);
  }
  if (err) ms_server_reply_free(reply);
  UNLOCK(m);
  return err;
}

/* Daughter `d` in the answer to the split's proposer: with its location
 * (the proposer itself), which the proposer hands to clients that still
 * ask it for the parent, once it serves the daughters; lookups give that
 * location only after the proposer reported the daughter. */
static void list_push_daughter(ms *m, ms_tablet_list *out, ms_tab *d) {
  list_push(m, out, d);
  ms_tablet *x = &out->v[out->n - 1];
  x->has_location = d->state == MS_SERVING && x->server_id != 0;
}

/* The daughters of `p` split at `key`, if that split was committed. */
static bool find_daughters(ms *m, const ms_tab *p, slice key, ms_tab **l,
                           ms_tab **r) {
  *l = *r = NULL;
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if (t->id <= p->id || t->table_id != p->table_id ||
        t->src[0] != p->id || t->src[1] != 0)
      continue;
    if (slice_eq(buf_slice(&t->start), buf_slice(&p->start)) &&
        slice_eq(buf_slice(&t->end), key))
      *l = t;
    if (slice_eq(buf_slice(&t->start), key) &&
        slice_eq(buf_slice(&t->end), buf_slice(&p->end)))
      *r = t;
  }
  return *l != NULL && *r != NULL;
}

mica_err *ms_handle_split(ms *m, uint64_t server_id, ms_ref parent,
                          slice key, uint64_t now, ms_tablet_list *out) {
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  ms_tab *t = ms_find_tab(m, parent.tablet_id);
  ms_tab *l, *r;
  char *k = NULL;
  bool commit = false;
  if (t == NULL) {
    err = err_new(MICA_NOT_FOUND, "no tablet %" PRIu64, parent.tablet_id);
  } else if (!ms_srv_live(m, server_id)) {
    err = err_new(MICA_LEASE_EXPIRED, "server %" PRIu64 " is not a live "
                  "server", server_id);
  } else if (t->state == MS_SPLIT && t->server == server_id &&
             t->range_epoch == parent.range_epoch &&
             t->assign_epoch == parent.assign_epoch &&
             find_daughters(m, t, key, &l, &r)) {
    /* The commit went through and its answer was lost: answer again. */
    list_push_daughter(m, out, l);
    list_push_daughter(m, out, r);
  } else if (t->server != server_id || t->range_epoch != parent.range_epoch ||
             t->assign_epoch != parent.assign_epoch ||
             t->state == MS_SPLIT || t->state == MS_MERGED) {
    err = err_new(MICA_STALE_EPOCH, "tablet %" PRIu64 " is %s on server %"
                  PRIu64 " at epochs %" PRIu64 "/%" PRIu64 ", not as proposed",
                  t->id, ms_tablet_state_name(t->state), t->server,
                  t->range_epoch, t->assign_epoch);
  } else if (t->state != MS_SERVING || t->action != 0) {
    err = err_new(MICA_UNAVAILABLE, "tablet %" PRIu64 " is %s: no split now",
                  t->id, ms_tablet_state_name(t->state));
  } else if (ms_srv_disk_low(m, server_id)) {
    err = err_new(MICA_RESOURCE_EXHAUSTED, "server %" PRIu64 " reported its "
                  "disk below its free-space reserve: no split of tablet %"
                  PRIu64 " commits there until space returns", server_id,
                  t->id);
  } else {
    err = check_key(m, key, "split key");
    if (!err && (slice_cmp(key, buf_slice(&t->start)) <= 0 ||
                 (t->end.len && slice_cmp(key, buf_slice(&t->end)) >= 0))) {
      k = show_key(key);
      err = err_new(MICA_OUT_OF_RANGE, "split key \"%s\" is not strictly "
                    "inside tablet %" PRIu64, k, t->id);
    }
    commit = err == NULL;
  }
  if (commit) {
    uint64_t left = m->next_tablet_id;
    buf b = BUF_INIT;
    put_varint64(&b, t->id);
    put_length_prefixed(&b, key);
    put_varint64(&b, left);
    put_varint64(&b, left + 1);
    err = ms_commit(m, REC_SPLIT, &b);
    buf_free(&b);
    if (!err) {
      free(k);
      k = show_key(key);
      /* The proposing server serves both daughters from now on: as good as
       * a report of them (this matters during a restart grace period). */
      for (uint64_t id = left; id <= left + 1; id++) {
        ms_tab *d = ms_find_tab(m, id);
        d->confirmed = true;
        /* Not routed to before its server reports it (it opens the
         * daughters after this answer): see ms_tab_split_unseen. */
        d->split_unseen = true;
        d->split_epoch = d->assign_epoch;
        list_push_daughter(m, out, d);
      }
      ms_event_add(m, "split", t->id, server_id, "tablet %" PRIu64 " split "
                   "at \"%s\" into %" PRIu64 " and %" PRIu64, t->id, k, left,
                   left + 1);
    }
  }
  free(k);
  UNLOCK(m);
  return err;
}

bool ms_tab_held(ms *m, const ms_tab *t) {
  if (t->state != MS_OPENING && t->state != MS_SERVING &&
      t->state != MS_CLOSING)
    return false;
  ms_tbl *tb = ms_find_tbl(m, t->table_id);
  return tb != NULL && !tb->dropping;
}

static void srv_info_head(ms *m, const ms_srv *s, uint64_t now,
                          ms_server_info *x) {
  x->server_id = s->id;
  x->address = xstrdup(s->address);
  x->http_address = xstrdup(s->http_address);
  x->state = s->dead ? MS_SERVER_DEAD
             : now > s->renewed_at + m->opt.lease_us ? MS_SERVER_SUSPECT
                                                    : MS_SERVER_LIVE;
  x->lease_age_ms = now > s->renewed_at ? (now - s->renewed_at) / 1000 : 0;
  x->registered_ms = s->registered_ms;
  x->draining = s->draining;
}

static void srv_info_add(ms_server_info *x, const ms_tab *t) {
  x->tablet_count++;
  x->bytes += t->stats.bytes;
  x->read_rate += t->stats.read_rate;
  x->write_rate += t->stats.write_rate;
}

void ms_srv_info_fill(ms *m, const ms_srv *s, uint64_t now,
                      ms_server_info *x) {
  srv_info_head(m, s, now, x);
  for (size_t i = 0; i < m->n_tabs; i++) {
    const ms_tab *t = m->tabs[i];
    if (t->server == s->id && ms_tab_held(m, t)) srv_info_add(x, t);
  }
}

mica_err *ms_list_servers(ms *m, bool include_dead, uint64_t now,
                          ms_server_info **out, size_t *n) {
  LOCK(m);
  ms_server_info *v = xcalloc(m->n_srvs + 1, sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; i < m->n_srvs; i++) {
    ms_srv *s = m->srvs[i];
    if (s->dead && !include_dead) continue;
    srv_info_head(m, s, now, &v[k++]);
  }
  /* One pass over the tablets (the same count as ms_srv_info_fill's); `v`
   * is sorted by server id like srvs. */
  for (size_t j = 0; j < m->n_tabs; j++) {
    ms_tab *t = m->tabs[j];
    if (!ms_tab_held(m, t)) continue;
    size_t lo = 0, hi = k;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (v[mid].server_id < t->server) lo = mid + 1;
      else hi = mid;
    }
    if (lo == k || v[lo].server_id != t->server) continue;
    srv_info_add(&v[lo], t);
  }
  UNLOCK(m);
  *out = v;
  *n = k;
  return NULL;
}

/* ---- operator requests ---- */

/* Changes that move tablets wait until a restarted master has heard from
 * the servers: before that it does not know what they really serve. */
static mica_err *check_not_in_grace(ms *m, uint64_t now) {
  if (m->grace_done || now >= m->grace_until) return NULL;
  return err_new(MICA_UNAVAILABLE, "the master restarted and waits %" PRIu64
                 " ms more for tablet servers to report: retry later",
                 (m->grace_until - now) / 1000);
}

static mica_err *serving_tablet(ms *m, uint64_t id, ms_tab **out) {
  ms_tab *t = ms_find_tab(m, id);
  *out = t;
  if (t == NULL) return err_new(MICA_NOT_FOUND, "no tablet %" PRIu64, id);
  ms_tbl *tb = ms_find_tbl(m, t->table_id);
  if (tb == NULL || tb->dropping)
    return err_new(MICA_NOT_FOUND, "tablet %" PRIu64 " belongs to a dropped "
                   "table", id);
  if (t->state != MS_SERVING || t->action != 0 || t->moving)
    return err_new(MICA_UNAVAILABLE, "tablet %" PRIu64 " is %s, not serving "
                   "steadily: retry later", id,
                   t->action ? "in transition" : ms_tablet_state_name(t->state));
  return NULL;
}

mica_err *ms_prepare_split(ms *m, uint64_t tablet_id, slice key,
                           ms_tablet *out) {
  LOCK(m);
  ms_tab *t;
  mica_err *err = serving_tablet(m, tablet_id, &t);
  if (!err && key.len > 0) {
    err = check_key(m, key, "split key");
    if (!err && (slice_cmp(key, buf_slice(&t->start)) <= 0 ||
                 (t->end.len && slice_cmp(key, buf_slice(&t->end)) >= 0))) {
      char *k = show_key(key);
      err = err_new(MICA_OUT_OF_RANGE, "split key \"%s\" is not strictly "
                    "inside tablet %" PRIu64, k, t->id);
      free(k);
    }
  }
  if (!err) ms_fill_tablet(m, t, out);
  UNLOCK(m);
  return err;
}

mica_err *ms_request_move(ms *m, uint64_t tablet_id, uint64_t target,
                          uint64_t now, ms_move *out) {
  LOCK(m);
  m->now = now;
  ms_tab *t = NULL;
  mica_err *err = check_not_in_grace(m, now);
  if (!err) err = serving_tablet(m, tablet_id, &t);
  if (!err && target == 0) {
    target = ms_least_loaded(m, t->server);
    if (target == 0)
      err = err_new(MICA_UNAVAILABLE, "no live server other than %" PRIu64
                    " to move tablet %" PRIu64 " to", t->server, tablet_id);
  } else if (!err) {
    ms_srv *s = ms_find_srv(m, target);
    if (s == NULL)
      err = err_new(MICA_NOT_FOUND, "no server %" PRIu64, target);
    else if (s->dead)
      err = err_new(MICA_UNAVAILABLE, "server %" PRIu64 " (%s) is dead",
                    target, s->address);
    else if (now > s->renewed_at + m->opt.lease_us)
      err = err_new(MICA_UNAVAILABLE, "server %" PRIu64 " (%s) has not "
                    "renewed its lease for %" PRIu64 " ms", target,
                    s->address, (now - s->renewed_at) / 1000);
    else if (target == t->server)
      err = err_new(MICA_INVALID_ARGUMENT, "tablet %" PRIu64 " is already on "
                    "server %" PRIu64, tablet_id, target);
    else if (s->draining)
      err = err_new(MICA_UNAVAILABLE, "server %" PRIu64 " (%s) is draining: "
                    "it takes no tablets (mica undrain %" PRIu64 ")", target,
                    s->address, target);
  }
  if (!err) {
    if (out) {
      memset(out, 0, sizeof(*out));
      out->tablet_id = tablet_id;
      out->from_server_id = t->server;
      out->to_server_id = target;
      snprintf(out->reason, sizeof(out->reason), "operator request");
    }
    err = ms_start_move(m, t, target, "operator request");
  }
  UNLOCK(m);
  return err;
}

mica_err *ms_request_merge(ms *m, uint64_t left_id, uint64_t right_id,
                           uint64_t now) {
  LOCK(m);
  m->now = now;
  ms_tab *a = NULL, *b = NULL;
  mica_err *err = check_not_in_grace(m, now);
  if (!err) err = serving_tablet(m, left_id, &a);
  if (!err) err = serving_tablet(m, right_id, &b);
  if (!err && (a->table_id != b->table_id || b->start.len == 0 ||
               !slice_eq(buf_slice(&a->end), buf_slice(&b->start))))
    err = err_new(MICA_INVALID_ARGUMENT, "tablets %" PRIu64 " and %" PRIu64
                  " are not adjacent (left's end must be right's start)",
                  left_id, right_id);
  for (int i = 0; i < 2 && !err; i++) {
    ms_tab *t = i == 0 ? a : b;
    if (ms_srv_disk_low(m, t->server))
      err = err_new(MICA_RESOURCE_EXHAUSTED, "tablet %" PRIu64 " is on "
                    "server %" PRIu64 ", whose disk is below its free-space "
                    "reserve: no merge starts there until space returns",
                    t->id, t->server);
  }
  if (!err) err = ms_start_merge(m, a, b, "operator request");
  UNLOCK(m);
  return err;
}

void ms_server_disk(ms *m, uint64_t server_id, bool below_reserve) {
  LOCK(m);
  ms_srv *s = ms_find_srv(m, server_id);
  if (s != NULL && s->disk_low != below_reserve) {
    s->disk_low = below_reserve;
    ms_event_add(m, "disk", 0, s->id, "server %" PRIu64 " (%s) reports its "
                 "disk %s its free-space reserve%s", s->id, s->address,
                 below_reserve ? "below" : "back above",
                 below_reserve ? ": no merge or split starts there" : "");
  }
  UNLOCK(m);
}

mica_err *ms_balance(ms *m, bool dry_run, uint64_t now, ms_move **out,
                     size_t *n) {
  *out = NULL;
  *n = 0;
  LOCK(m);
  m->now = now;
  size_t limit = m->n_tabs;
  mica_err *err = NULL;
  if (!dry_run) {
    size_t in_flight = ms_moves_in_flight(m);
    limit = in_flight >= m->opt.max_moves_in_flight
                ? 0 : m->opt.max_moves_in_flight - in_flight;
    err = check_not_in_grace(m, now);
  }
  if (!err)
    err = ms_plan_balance(m, limit, MS_PLAN_DRAIN | MS_PLAN_BALANCE,
                          !dry_run, out, n);
  UNLOCK(m);
  return err;
}

void ms_audit(ms *m, const char *identity, const char *what) {
  LOCK(m);
  ms_event_add(m, "admin", 0, 0, "%s by %s", what, identity);
  UNLOCK(m);
}

mica_err *ms_configure(ms *m, const bool *balancer, const bool *merges,
                       bool *balancer_now, bool *merges_now) {
  LOCK(m);
  mica_err *err = NULL;
  int bal = balancer ? (*balancer ? MS_BAL_AUTO : MS_BAL_OFF)
                     : m->balancer_mode;
  bool mer = merges ? *merges : m->merges_on;
  if (bal != m->balancer_mode || mer != m->merges_on) {
    uint64_t rec[2] = {(uint64_t)bal, mer};
    err = commit_u64s(m, REC_CONFIG, rec, 2);
    if (!err)
      ms_event_add(m, "configure", 0, 0, "balancer %s, merges %s",
                   ms_balancer_mode_name(bal), mer ? "on" : "off");
  }
  if (balancer_now) *balancer_now = m->balancer_mode == MS_BAL_AUTO;
  if (merges_now) *merges_now = m->merges_on;
  UNLOCK(m);
  return err;
}

void ms_events(ms *m, size_t limit, ms_event **out, size_t *n) {
  LOCK(m);
  size_t k = m->ev_count;
  if (limit && limit < k) k = limit;
  ms_event *v = xcalloc(k + 1, sizeof(*v));
  size_t cap = m->opt.event_capacity ? m->opt.event_capacity : 1;
  for (size_t i = 0; i < k; i++)
    v[i] = m->events[(m->ev_head + m->ev_count - 1 - i) % cap];
  UNLOCK(m);
  *out = v;
  *n = k;
}
