/* ts_admin: the admin calls of the TabletServer service (OpenTablet,
 * CloseTablet, SplitTablet, TabletInfo) and the split itself.
 *
 * Admin operations are serialized by admin_mu: they are rare, and each one
 * changes the registry and the files of one tablet in several steps that
 * must not interleave with another operation on the same tablet. Data
 * requests keep flowing to every other tablet meanwhile; the tablet being
 * changed is first taken out of service (ts_quiesce) so that tab_close and
 * tab_split never race with a request on it.
 *
 * Opening is idempotent: the same tablet under the same assign_epoch
 * answers ALREADY_EXISTS with its figures; a higher assign_epoch reopens it
 * (the master re-assigned it here); a lower one is STALE_EPOCH.
 *
 * Crash safety of splits. The master commits a split before the server
 * performs it, so a crash in between leaves a retired parent at the master
 * and a parent on disk that was never split. When OpenTablet names a
 * daughter (sources = the parent) whose directory holds no MANIFEST, the
 * server finishes the split from the parent's files: if the parent's
 * MANIFEST already records the split, reopening the parent completes it;
 * otherwise the parent is opened (replaying its WAL) and split by reference
 * into both daughters, whose ids and split key come from the daughter's
 * descriptor and split_sibling. Either way no acknowledged write is lost and
 * no data is copied.
 *
 * Merges. OpenTablet with two sources opens the result of a merge the
 * master committed: tab_merge_prepare (tabletserver/tablet_merge.h) makes
 * its MANIFEST reference both inputs' SSTables and retires the inputs, in
 * idempotent steps, so the same OpenTablet re-sent after a crash anywhere
 * (or after a move of the merged tablet) completes it. */
#include <ctype.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/log.h"
#include "common/path.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet_merge.h"
#include "tabletserver/server/ts_admin.h"
#include "tabletserver/server/ts_master.h"

/* A tablet directory relative to the data root: no absolute path, no "."
 * or ".." component, no empty component. */
static mica_err *check_rel_dir(const char *rel, const char *field) {
  if (rel[0] == '/')
    return err_new(MICA_INVALID_ARGUMENT,
                   "%s: \"%s\" must be relative to the data root", field, rel);
  if (strlen(rel) > 1024)
    return err_new(MICA_INVALID_ARGUMENT, "%s: longer than 1024 bytes", field);
  const char *p = rel;
  while (*p) {
    const char *q = strchr(p, '/');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (n == 0 || (n == 1 && p[0] == '.') ||
        (n == 2 && p[0] == '.' && p[1] == '.'))
      return err_new(MICA_INVALID_ARGUMENT,
                     "%s: \"%s\" has an empty, \".\" or \"..\" component",
                     field, rel);
    for (size_t i = 0; i < n; i++)
      if (!isprint((unsigned char)p[i]))
        return err_new(MICA_INVALID_ARGUMENT,
                       "%s: unprintable byte in the directory name", field);
    p += n;
    if (*p == '/') p++;
  }
  return NULL;
}

/* The absolute and data-root-relative directories of tablet `id` given
 * the request's `rel` (empty: the engine's default layout). */
static void tablet_dirs(ts_server *s, uint64_t id, const char *rel,
                        char **abs_out, char **rel_out) {
  if (rel != NULL && rel[0] != '\0') {
    *abs_out = path_join(s->cfg.data_dir, rel);
    *rel_out = xstrdup(rel);
    return;
  }
  buf p = BUF_INIT;
  layout_tablet_dir(s->tablets_dir, id, &p);
  *abs_out = xstrdup((const char *)p.data);
  *rel_out = layout_tablet_rel(id);
  buf_free(&p);
}

static ts_tab *tab_new(const rpc_route *d, const char *abs, const char *rel,
                       tablet *t) {
  ts_tab *tt = xcalloc(1, sizeof(*tt));
  rpc_route_copy(&tt->d, d);
  tt->dir = xstrdup(abs);
  tt->rel_dir = xstrdup(rel);
  tt->t = t;
  tt->load = ts_load_tab_new();
  return tt;
}

/* Closes served tablet `tt` (admin_mu held): out of service, engine close,
 * out of the registry, freed. `stats` (may be NULL) receives its final
 * figures. The departure is recorded by the caller. */
static mica_err *close_tab(ts_server *s, ts_tab *tt,
                           rpc_tablet_stats *stats) {
  ts_quiesce(s, tt, TS_CLOSING);
  if (stats != NULL) ts_tab_stats(s, tt, stats);
  mica_err *e = tab_close(tt->t);
  pthread_mutex_lock(&s->mu);
  ts_reg_remove_locked(s, tt);
  pthread_mutex_unlock(&s->mu);
  if (e != NULL)
    LOG_W("close tablet %" PRIu64 ": %s (a reopen replays its WAL)",
          tt->d.tablet_id, err_msg(e));
  ts_tab_free(tt);
  return e;
}

static void record_closed(ts_server *s, uint64_t id, uint64_t ae) {
  ts_gone g;
  memset(&g, 0, sizeof(g));
  g.id = id;
  g.kind = TS_GONE_CLOSED;
  g.assign_epoch = ae;
  ts_reg_gone(s, &g);
}

static ts_tab *find(ts_server *s, uint64_t id) {
  pthread_mutex_lock(&s->mu);
  ts_tab *tt = ts_reg_find_locked(s, id);
  pthread_mutex_unlock(&s->mu);
  return tt;
}

/* Splits the engine tablet `t` (taken; freed in every case) at `key` into
 * daughters `l` and `r`, which are created but not opened. */
static mica_err *engine_split(tablet *t, slice key, const rpc_route *l,
                              const rpc_route *r, void (*written)(void *),
                              void *arg) {
  uint64_t parent_epoch = tab_epoch(t);
  if (l->assign_epoch < parent_epoch || r->assign_epoch < parent_epoch) {
    /* The daughters' MANIFESTs carry the parent's epoch; an owner with a
     * smaller one would be refused as stale by the engine. */
    mica_err *e = err_new(
        MICA_STALE_EPOCH,
        "split of tablet %" PRIu64 ": daughters' assign_epochs %" PRIu64
        "/%" PRIu64 " are below the parent's %" PRIu64
        " (daughters must inherit at least the parent's epoch)",
        tab_id(t), l->assign_epoch, r->assign_epoch, parent_epoch);
    err_free(tab_close(t));
    return e;
  }
  return tab_split_overlap(t, key, l->tablet_id, r->tablet_id, written, arg);
}

/* Opens daughter or ordinary tablet `d` from directory `abs`. */
static mica_err *engine_open(ts_server *s, const rpc_route *d, const char *abs,
                             bool create, tablet **out) {
  tab_options o;
  ts_topts_for(s, d->table_id, &o);
  o.create_if_missing = create;
  return tab_open(s->res, abs, d->tablet_id, buf_slice(&d->start_key),
                  buf_slice(&d->end_key), d->assign_epoch, &o, out);
}

/* Opening both daughters of a split at once: each open is a chain of
 * storage round trips (manifest, SSTable footers, its first manifest
 * write), which on S3 are network requests; two chains side by side halve
 * what the split waits for. */
typedef struct daughter_open {
  ts_server *s;
  const rpc_route *d;
  char *abs, *rel;
  tablet *t;
  mica_err *err;
} daughter_open;

static void *daughter_open_main(void *arg) {
  daughter_open *o = arg;
  o->err = engine_open(o->s, o->d, o->abs, false, &o->t);
  return NULL;
}

static void open_daughters(daughter_open o[2]) {
  pthread_t th;
  bool threaded = pthread_create(&th, NULL, daughter_open_main, &o[1]) == 0;
  daughter_open_main(&o[0]);
  if (threaded)
    pthread_join(th, NULL);
  else
    daughter_open_main(&o[1]);
}

/* The daughters' opens started early: from the moment both daughters'
 * manifests are durable (tab_split_overlap), beside the parent's SPLIT
 * write, each in its own thread. They are joined after the split, and
 * the daughters serve only if the split is recorded. */
typedef struct early_opens {
  daughter_open *dop;
  pthread_t th[2];
  bool started[2];
  bool called;
} early_opens;

static void start_opens(void *arg) {
  early_opens *eo = arg;
  eo->called = true;
  for (int i = 0; i < 2; i++)
    eo->started[i] = pthread_create(&eo->th[i], NULL, daughter_open_main,
                                    &eo->dop[i]) == 0;
}

/* After engine_split failed on parent `tt`: whether its split is recorded
 * all the same, i.e. its MANIFEST says SPLIT, so the daughters may open.
 * The failure may have come after the commit (a SPLIT write whose answer
 * was lost), or between SPLITTING and SPLIT, where the split is decided
 * but not done; that one is rolled forward once here by reopening the
 * parent (tablet_open.c finishes a SPLITTING split and answers
 * NOT_SERVING), which a transient storage fault lets through. On true
 * `*e` is freed and set to NULL; on false it is kept (a failed roll
 * forward is added to it). admin_mu held. */
static bool split_recorded(ts_server *s, const ts_tab *tt, mica_err **e) {
  man_state m;
  man_init(&m);
  mica_err *re = man_read(s->e, tt->dir, &m);
  if (re == NULL && m.state == MAN_SPLITTING) {
    tablet *pt = NULL;
    re = engine_open(s, &tt->d, tt->dir, false, &pt);
    if (re == NULL) {
      err_free(tab_close(pt)); /* cannot happen: SPLITTING never serves */
    } else if (err_code(re) == MICA_NOT_SERVING) {
      err_free(re);
      man_clear(&m);
      man_init(&m);
      re = man_read(s->e, tt->dir, &m);
    }
  }
  bool done = re == NULL && m.state == MAN_SPLIT;
  if (done) {
    LOG_W("split of tablet %" PRIu64 ": recorded although the split "
          "reported: %s", tt->d.tablet_id, err_msg(*e));
    err_free(*e);
    *e = NULL;
  } else if (re != NULL) {
    mica_err *both = err_new(err_code(*e), "%s; the parent's MANIFEST "
                             "could not be checked or finished (%s), so "
                             "the daughters stay closed", err_msg(*e),
                             err_msg(re));
    err_free(*e);
    *e = both;
    err_free(re);
  }
  man_clear(&m);
  return done;
}

/* Daughters' directories: siblings of the parent's. */
static void daughter_dirs(const char *parent_abs, const char *parent_rel,
                          uint64_t id, char **abs, char **rel) {
  char *pa = path_parent(parent_abs), *pr = path_parent(parent_rel);
  buf p = BUF_INIT;
  layout_tablet_dir(pa, id, &p);
  *abs = xstrdup((const char *)p.data);
  layout_tablet_dir(pr, id, &p);
  *rel = xstrdup((const char *)p.data);
  buf_free(&p);
  free(pa);
  free(pr);
}

/* Finishes the split that created daughter `d` from the parent named by
 * `src`, `sib` being the other daughter (may be NULL). admin_mu held. */
static mica_err *finish_split(ts_server *s, const rpc_route *d,
                              const rpc_tablet_source *src,
                              const rpc_tablet_descriptor *sib) {
  uint64_t pid = src->tablet_id;
  mica_err *e = NULL;
  if (pid == 0)
    return err_new(MICA_INVALID_ARGUMENT, "sources[0].tablet_id: 0");
  if (src->tablet_dir && src->tablet_dir[0]) {
    e = check_rel_dir(src->tablet_dir, "sources[0].tablet_dir");
    if (e != NULL) return e;
  }
  rpc_route l, r;
  memset(&l, 0, sizeof(l));
  memset(&r, 0, sizeof(r));
  if (sib != NULL) {
    rpc_route sd;
    rpc_route_from_desc(&sd, sib, d->assign_epoch);
    if (sd.start_key.len > 0 && slice_eq(buf_slice(&sd.start_key), buf_slice(&d->end_key))) {
      rpc_route_copy(&l, d);
      r = sd;
    } else if (d->start_key.len > 0 &&
               slice_eq(buf_slice(&d->start_key), buf_slice(&sd.end_key))) {
      l = sd;
      rpc_route_copy(&r, d);
    } else {
      rpc_route_clear(&sd);
      return err_new(MICA_INVALID_ARGUMENT,
                     "split_sibling: tablet %" PRIu64
                     " is not adjacent to tablet %" PRIu64,
                     sib->tablet_id, d->tablet_id);
    }
  }
  slice key = buf_slice(&r.start_key);
  ts_tab *ptt = find(s, pid);
  if (ptt != NULL) {
    /* The parent is still served here: this server never got to split it
     * (the master committed the split and then lost our answer). */
    if (sib == NULL) {
      e = err_new(MICA_INVALID_ARGUMENT,
                  "tablet %" PRIu64 ": its parent %" PRIu64 " is not split "
                  "yet; OpenTablet must name split_sibling",
                  d->tablet_id, pid);
    } else if (l.assign_epoch < ptt->d.assign_epoch) {
      /* Refused before the parent leaves service (see engine_split). */
      e = err_new(MICA_STALE_EPOCH,
                  "tablet %" PRIu64 ": assign_epoch %" PRIu64 " is below its "
                  "parent %" PRIu64 "'s %" PRIu64,
                  d->tablet_id, l.assign_epoch, pid, ptt->d.assign_epoch);
    } else {
      ts_quiesce(s, ptt, TS_SPLITTING);
      e = engine_split(ptt->t, key, &l, &r, NULL, NULL);
      pthread_mutex_lock(&s->mu);
      ts_reg_remove_locked(s, ptt);
      pthread_mutex_unlock(&s->mu);
      ts_gone g;
      memset(&g, 0, sizeof(g));
      g.id = pid;
      g.assign_epoch = ptt->d.assign_epoch;
      if (e == NULL) {
        g.kind = TS_GONE_SPLIT;
        rpc_route_copy(&g.left, &l);
        rpc_route_copy(&g.right, &r);
      } else {
        g.kind = TS_GONE_CLOSED;
      }
      ts_reg_gone(s, &g);
      ts_tab_free(ptt);
    }
    rpc_route_clear(&l);
    rpc_route_clear(&r);
    return e;
  }

  char *pabs, *prel;
  tablet_dirs(s, pid, src->tablet_dir, &pabs, &prel);
  man_state m;
  man_init(&m);
  e = man_read(s->e, pabs, &m);
  if (e != NULL) {
    e = err_wrap(e, "tablet %" PRIu64 " has no files and its parent %" PRIu64
                 " cannot be read", d->tablet_id, pid);
  } else if (m.state == MAN_LIVE && sib == NULL) {
    e = err_new(MICA_INVALID_ARGUMENT,
                "tablet %" PRIu64 ": its parent %" PRIu64 " was never split; "
                "OpenTablet must name split_sibling to finish the split",
                d->tablet_id, pid);
  } else {
    rpc_route pd;
    memset(&pd, 0, sizeof(pd));
    pd.tablet_id = pid;
    pd.table_name = xstrdup("");
    buf_append_slice(&pd.start_key, buf_slice(&m.start_key));
    if (m.has_end) buf_append_slice(&pd.end_key, buf_slice(&m.end_key));
    /* Open the parent under the daughter's epoch (the newest this split
     * knows): that also fences any older owner of the parent. */
    pd.assign_epoch = d->assign_epoch > m.epoch ? d->assign_epoch : m.epoch;
    tablet *pt = NULL;
    e = engine_open(s, &pd, pabs, false, &pt);
    if (e == NULL && m.state == MAN_LIVE) {
      LOG_I("finishing the committed split of tablet %" PRIu64
            " into %" PRIu64 " and %" PRIu64 " from its files",
            pid, l.tablet_id, r.tablet_id);
      e = engine_split(pt, key, &l, &r, NULL, NULL);
    } else if (e == NULL) {
      err_free(tab_close(pt));
    } else if (err_code(e) == MICA_NOT_SERVING) {
      /* The engine finished (or had finished) the split. */
      err_free(e);
      e = NULL;
    }
    rpc_route_clear(&pd);
  }
  man_clear(&m);
  free(pabs);
  free(prel);
  rpc_route_clear(&l);
  rpc_route_clear(&r);
  return e;
}

/* Makes merged tablet `d` (directory `abs`) from its two inputs by
 * reference (tablet_merge.h), admin_mu held. Also when its MANIFEST
 * exists already: the call then only finishes retiring the inputs, so a
 * re-sent OpenTablet after a crash anywhere in the merge completes it. */
static mica_err *prepare_merge(ts_server *s, const rpc_route *d,
                               const char *abs,
                               const rpc_tablet_source *src) {
  char *sabs[2] = {NULL, NULL}, *srel[2] = {NULL, NULL};
  mica_err *e = NULL;
  for (int i = 0; i < 2 && e == NULL; i++) {
    char field[32];
    snprintf(field, sizeof(field), "sources[%d].tablet_dir", i);
    if (src[i].tablet_id == 0)
      e = err_new(MICA_INVALID_ARGUMENT, "sources[%d].tablet_id: 0", i);
    else if (src[i].tablet_dir && src[i].tablet_dir[0])
      e = check_rel_dir(src[i].tablet_dir, field);
    if (e == NULL)
      tablet_dirs(s, src[i].tablet_id, src[i].tablet_dir, &sabs[i],
                  &srel[i]);
  }
  for (int i = 0; i < 2 && e == NULL; i++) {
    /* An input still served here (the master's close did not reach us)
     * must leave service before its files change. */
    ts_tab *tt = find(s, src[i].tablet_id);
    if (tt != NULL) {
      LOG_I("tablet %" PRIu64 ": closing input %" PRIu64 " of the merge",
            d->tablet_id, tt->d.tablet_id);
      uint64_t ae = tt->d.assign_epoch;
      e = close_tab(s, tt, NULL);
      record_closed(s, src[i].tablet_id, ae);
    }
  }
  if (e == NULL) {
    tab_merge_input in[2] = {{sabs[0], src[0].tablet_id},
                             {sabs[1], src[1].tablet_id}};
    tab_options mo;
    ts_topts_for(s, d->table_id, &mo);
    e = tab_merge_prepare(s->res, abs, d->tablet_id, in, d->assign_epoch, &mo);
  }
  if (e == NULL) {
    for (int i = 0; i < 2; i++) {
      ts_gone g;
      memset(&g, 0, sizeof(g));
      g.id = src[i].tablet_id;
      g.kind = TS_GONE_MERGED;
      rpc_route_copy(&g.left, d);
      ts_reg_gone(s, &g);
    }
  }
  for (int i = 0; i < 2; i++) {
    free(sabs[i]);
    free(srel[i]);
  }
  return e;
}

/* OpenTablet, admin_mu held. */
static mica_err *open_tablet(ts_server *s, const rpc_open_tablet_request *req,
                             rpc_tablet_stats *stats) {
  const rpc_tablet_descriptor *w = req->desc;
  mica_err *e = rpc_check_desc(w, "desc");
  if (e != NULL) return e;
  if (req->assign_epoch == 0)
    return err_new(MICA_INVALID_ARGUMENT, "assign_epoch: must not be 0");
  if (req->tablet_dir && req->tablet_dir[0])
    e = check_rel_dir(req->tablet_dir, "tablet_dir");
  if (e == NULL) e = ts_topts_check(req->options);
  if (e != NULL) return e;

  ts_tab *old = find(s, w->tablet_id);
  if (old != NULL) {
    if (old->d.assign_epoch == req->assign_epoch) {
      ts_tab_stats(s, old, stats);
      return err_new(MICA_ALREADY_EXISTS,
                     "tablet %" PRIu64 " is already open under assign_epoch "
                     "%" PRIu64,
                     w->tablet_id, req->assign_epoch);
    }
    if (old->d.assign_epoch > req->assign_epoch)
      return err_new(MICA_STALE_EPOCH,
                     "tablet %" PRIu64 " is open under assign_epoch %" PRIu64
                     ", newer than %" PRIu64,
                     w->tablet_id, old->d.assign_epoch, req->assign_epoch);
    LOG_I("tablet %" PRIu64 ": reopening under assign_epoch %" PRIu64,
          w->tablet_id, req->assign_epoch);
    err_free(close_tab(s, old, NULL));
  }

  rpc_route d;
  rpc_route_from_desc(&d, w, req->assign_epoch);
  ts_topts_learn_open(s, d.table_id, req->options);
  char *abs, *rel;
  tablet_dirs(s, d.tablet_id, req->tablet_dir, &abs, &rel);
  bool has_man = man_exists(s->e, abs);
  if (req->n_sources == 2)
    e = prepare_merge(s, &d, abs, req->sources);
  else if (req->n_sources == 1 && !has_man)
    e = finish_split(s, &d, &req->sources[0], req->split_sibling);
  else if (req->n_sources > 2)
    e = err_new(MICA_INVALID_ARGUMENT,
                "sources: %zu given; 1 (split daughter) or 2 (merge) allowed",
                req->n_sources);
  /* A plain open creates a missing tablet: not one this server saw split
   * or merged, whose directory garbage collection may have removed once
   * its daughters or merge result compacted their references away. */
  if (e == NULL && req->n_sources == 0 && !has_man)
    e = ts_reg_retired_error(s, d.tablet_id);
  tablet *t = NULL;
  if (e == NULL) e = engine_open(s, &d, abs, req->n_sources == 0, &t);
  if (e == NULL) {
    ts_tab *tt = tab_new(&d, abs, rel, t);
    ts_reg_insert(s, tt);
    ts_tab_stats(s, tt, stats);
    LOG_I("tablet %" PRIu64 " open under assign_epoch %" PRIu64 " (%s)", d.tablet_id,
          d.assign_epoch, rel);
  }
  rpc_route_clear(&d);
  free(abs);
  free(rel);
  return e;
}

static void h_open(rpc_call *call, const void *request, void *ctx) {
  ts_server *s = ctx;
  rpc_open_tablet_response resp = {0};
  rpc_status st;
  rpc_tablet_stats stats;
  memset(&stats, 0, sizeof stats);
  const rpc_open_tablet_request *req =
      (const rpc_open_tablet_request *)request;
  /* Under admin_mu, so a command of a newer master is never carried out
   * before one of an older master that was admitted earlier ends. */
  pthread_mutex_lock(&s->admin_mu);
  mica_err *e = ts_master_fence(s, req->master_epoch, "OpenTablet");
  if (e == NULL) e = open_tablet(s, req, &stats);
  pthread_mutex_unlock(&s->admin_mu);
  ts_status_fill(&st, e, NULL);
  resp.status = &st;
  resp.stats = &stats;
  rpc_call_reply(call, &resp);
  err_free(e);
}

static void h_close(rpc_call *call, const void *request,
                    void *ctx) {
  ts_server *s = ctx;
  const rpc_close_tablet_request *req =
      (const rpc_close_tablet_request *)request;
  rpc_close_tablet_response resp = {0};
  rpc_status st;
  rpc_tablet_stats stats;
  memset(&stats, 0, sizeof stats);
  mica_err *e = NULL;
  if (req->tablet == NULL || req->tablet->tablet_id == 0)
    e = err_new(MICA_INVALID_ARGUMENT,
                "tablet: a TabletRef with a non-zero tablet_id is required");
  pthread_mutex_lock(&s->admin_mu);
  if (e == NULL) e = ts_master_fence(s, req->master_epoch, "CloseTablet");
  ts_tab *tt = e ? NULL : find(s, req->tablet->tablet_id);
  if (e == NULL && tt == NULL) {
    /* Closing what is already closed succeeds, so the master may retry. */
    pthread_mutex_lock(&s->mu);
    bool known = false;
    for (size_t i = 0; i < s->ngone; i++)
      if (s->gone[i].id == req->tablet->tablet_id) known = true;
    pthread_mutex_unlock(&s->mu);
    if (!known)
      e = err_new(MICA_NOT_SERVING, "tablet %" PRIu64 " is not served here",
                  req->tablet->tablet_id);
  } else if (e == NULL && tt->d.assign_epoch != req->tablet->assign_epoch) {
    e = err_new(MICA_STALE_EPOCH,
                "tablet %" PRIu64 " is served under assign_epoch %" PRIu64
                ", not %" PRIu64,
                tt->d.tablet_id, tt->d.assign_epoch, req->tablet->assign_epoch);
  } else if (e == NULL) {
    uint64_t id = tt->d.tablet_id, ae = tt->d.assign_epoch;
    e = close_tab(s, tt, &stats);
    ts_gone g;
    memset(&g, 0, sizeof(g));
    g.id = id;
    g.assign_epoch = ae;
    if (req->moved_to != NULL) {
      g.kind = TS_GONE_MOVED;
      g.moved_server = req->moved_to->server_id;
      g.moved_epoch = req->moved_to->assign_epoch;
      g.moved_address = xstrdup(req->moved_to->address ? req->moved_to->address
                                                       : "");
    } else {
      g.kind = TS_GONE_CLOSED;
    }
    ts_reg_gone(s, &g);
    LOG_I("tablet %" PRIu64 " closed%s", id,
          req->moved_to ? " (moving away)" : "");
  }
  pthread_mutex_unlock(&s->admin_mu);
  ts_status_fill(&st, e, NULL);
  resp.status = &st;
  resp.stats = &stats;
  rpc_call_reply(call, &resp);
  err_free(e);
}

/* Picks two fresh tablet ids without a master: above every id this server
 * has seen and every numbered directory under the data root's tablets. */
static void standalone_ids(ts_server *s, uint64_t *l, uint64_t *r) {
  uint64_t max = 0;
  char **names = NULL;
  size_t n = 0;
  mica_err *e = env_list(s->e, s->tablets_dir, &names, &n);
  if (e == NULL) {
    for (size_t i = 0; i < n; i++) {
      uint64_t v;
      if (layout_parse_tablet_name(names[i], &v) && v > max) max = v;
    }
    env_free_names(names, n);
  }
  err_free(e);
  pthread_mutex_lock(&s->mu);
  if (s->max_id_seen > max) max = s->max_id_seen;
  s->max_id_seen = max + 2;
  pthread_mutex_unlock(&s->mu);
  *l = max + 1;
  *r = max + 2;
}

mica_err *ts_split_tablet(ts_server *s, uint64_t id, uint64_t range_epoch,
                          uint64_t assign_epoch, slice key, bool for_load,
                          rpc_route *left, rpc_route *right) {
  pthread_mutex_lock(&s->admin_mu);
  rpc_tablet_ref ref = {0};
  ref.tablet_id = id;
  ref.range_epoch = range_epoch;
  ref.assign_epoch = assign_epoch;
  ts_routebuf rb;
  ts_routebuf_init(&rb);
  ts_tab *tt = NULL;
  mica_err *e = ts_acquire(s, &ref, &rb, &tt);
  ts_routebuf_clear(&rb);
  ts_release(s, tt); /* admin_mu keeps it open from here on */
  /* Not below the free-space reserve: once the master commits the split
   * it must be carried out, and that flushes and writes manifests. */
  if (e == NULL) e = res_space_check(s->res, "splits");
  buf mid = BUF_INIT;
  if (e == NULL && key.len == 0) {
    e = tab_middle_key(tt->t, &mid);
    if (e != NULL)
      e = err_wrap(e, "split tablet %" PRIu64 ": no middle key", id);
    key = buf_slice(&mid);
  } else if (e == NULL) {
    if (key.len > MICA_MAX_KEY ||
        slice_cmp(key, buf_slice(&tt->d.start_key)) <= 0 ||
        (tt->d.end_key.len > 0 && slice_cmp(key, buf_slice(&tt->d.end_key)) >= 0))
      e = err_new(MICA_INVALID_ARGUMENT,
                  "split_key: must lie strictly inside tablet %" PRIu64
                  "'s range",
                  id);
  }
  rpc_route l, r;
  memset(&l, 0, sizeof(l));
  memset(&r, 0, sizeof(r));
  if (e == NULL && s->master_ch != NULL) {
    e = ts_master_report_split(s, &tt->d, key, for_load, &l, &r);
  } else if (e == NULL) {
    uint64_t lid, rid;
    standalone_ids(s, &lid, &rid);
    rpc_route_copy(&l, &tt->d);
    rpc_route_copy(&r, &tt->d);
    l.tablet_id = lid;
    r.tablet_id = rid;
    l.range_epoch = r.range_epoch = tt->d.range_epoch + 1;
    buf_clear(&l.end_key);
    buf_append_slice(&l.end_key, key);
    buf_clear(&r.start_key);
    buf_append_slice(&r.start_key, key);
  }
  if (e == NULL) {
    ts_quiesce(s, tt, TS_SPLITTING);
    const rpc_route *ds[2] = {&l, &r};
    daughter_open dop[2];
    for (int i = 0; i < 2; i++) {
      dop[i] = (daughter_open){.s = s, .d = ds[i]};
      daughter_dirs(tt->dir, tt->rel_dir, ds[i]->tablet_id, &dop[i].abs,
                    &dop[i].rel);
    }
    early_opens eo = {.dop = dop};
    e = engine_split(tt->t, key, &l, &r, start_opens, &eo);
    tt->t = NULL;
    for (int i = 0; i < 2; i++)
      if (eo.started[i]) pthread_join(eo.th[i], NULL);
    /* The daughters serve only once the parent's MANIFEST says SPLIT: a
     * daughter serving beside a parent that says SPLITTING (its SPLIT
     * write failed) or LIVE would acknowledge writes under a split that
     * storage does not record (split_recorded). Daughters opened early
     * (above) are closed again if it does not. They are put in service
     * while the parent still answers "being split", so no client is ever
     * sent to a daughter that does not serve yet. */
    bool recorded = e == NULL || split_recorded(s, tt, &e);
    if (!eo.called && recorded) {
      open_daughters(dop);
    } else if (eo.called) {
      for (int i = 0; i < 2; i++) {
        if (!recorded && dop[i].t != NULL) {
          err_free(tab_close(dop[i].t));
          dop[i].t = NULL;
        }
        if (!recorded) {
          err_free(dop[i].err);
          dop[i].err = NULL;
        } else if (!eo.started[i]) {
          daughter_open_main(&dop[i]);
        }
      }
    }
    bool opened = false;
    for (int i = 0; i < 2 && recorded; i++) {
      mica_err *oe = dop[i].err;
      if (oe == NULL) {
        ts_reg_insert(s, tab_new(ds[i], dop[i].abs, dop[i].rel, dop[i].t));
        opened = true;
      } else if (e == NULL) {
        e = err_wrap(oe, "split of tablet %" PRIu64 ": open daughter", id);
      } else {
        err_free(oe);
      }
    }
    for (int i = 0; i < 2; i++) {
      free(dop[i].abs);
      free(dop[i].rel);
    }
    pthread_mutex_lock(&s->mu);
    ts_reg_remove_locked(s, tt);
    pthread_mutex_unlock(&s->mu);
    ts_gone g;
    memset(&g, 0, sizeof(g));
    g.id = id;
    g.assign_epoch = tt->d.assign_epoch;
    g.kind = e == NULL || opened ? TS_GONE_SPLIT : TS_GONE_CLOSED;
    if (g.kind == TS_GONE_SPLIT) {
      rpc_route_copy(&g.left, &l);
      rpc_route_copy(&g.right, &r);
    }
    ts_reg_gone(s, &g);
    if (e != NULL && s->master_ch == NULL && !opened) {
      /* Standalone and the split did not happen: serve the parent again. */
      tablet *t = NULL;
      mica_err *oe = engine_open(s, &tt->d, tt->dir, false, &t);
      if (oe == NULL)
        ts_reg_insert(s, tab_new(&tt->d, tt->dir, tt->rel_dir, t));
      err_free(oe);
    }
    if (e == NULL)
      LOG_I("tablet %" PRIu64 " split into %" PRIu64 " and %" PRIu64, id, l.tablet_id,
            r.tablet_id);
    else
      LOG_E("split of tablet %" PRIu64 " failed: %s", id, err_msg(e));
    ts_tab_free(tt);
  }
  pthread_mutex_unlock(&s->admin_mu);
  buf_free(&mid);
  if (e == NULL && left != NULL) {
    *left = l;
    memset(&l, 0, sizeof(l));
  }
  if (e == NULL && right != NULL) {
    *right = r;
    memset(&r, 0, sizeof(r));
  }
  rpc_route_clear(&l);
  rpc_route_clear(&r);
  return e;
}

static void h_split(rpc_call *call, const void *request,
                    void *ctx) {
  ts_server *s = ctx;
  const rpc_ts_split_tablet_request *req =
      (const rpc_ts_split_tablet_request *)request;
  rpc_ts_split_tablet_response resp =
      {0};
  rpc_status st;
  ts_routebuf rb;
  ts_routebuf_init(&rb);
  rpc_route l, r;
  memset(&l, 0, sizeof(l));
  memset(&r, 0, sizeof(r));
  mica_err *e = ts_master_fence(s, req->master_epoch, "TsSplitTablet");
  if (e == NULL && (req->tablet == NULL || req->tablet->tablet_id == 0)) {
    e = err_new(MICA_INVALID_ARGUMENT,
                "tablet: a TabletRef with a non-zero tablet_id is required");
  } else if (e == NULL) {
    /* Routing errors first, with what the registry knows. */
    ts_tab *tt = NULL;
    e = ts_acquire(s, req->tablet, &rb, &tt);
    ts_release(s, tt);
  }
  if (e == NULL)
    e = ts_split_tablet(s, req->tablet->tablet_id, req->tablet->range_epoch,
                        req->tablet->assign_epoch, req->split_key, false,
                        &l, &r);
  if (e == NULL) {
    ts_routebuf_add(s, &rb, &l, true);
    ts_routebuf_add(s, &rb, &r, true);
    resp.left = &rb.routes[0];
    resp.right = &rb.routes[1];
  }
  ts_status_fill(&st, e, &rb);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(e);
  rpc_route_clear(&l);
  rpc_route_clear(&r);
  ts_routebuf_clear(&rb);
}

static void h_info(rpc_call *call, const void *request,
                   void *ctx) {
  ts_server *s = ctx;
  const rpc_tablet_info_request *req =
      (const rpc_tablet_info_request *)request;
  rpc_tablet_info_response resp = {0};
  rpc_status st;
  bool leased = true;
  mica_err *le = ts_lease_check(s);
  if (le != NULL) leased = false;
  err_free(le);

  /* Hold every serving tablet like a request does, so none closes while
   * its figures are read. */
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  ts_tab **held = xcalloc(s->ntabs ? s->ntabs : 1, sizeof(*held));
  for (size_t i = 0; i < s->ntabs; i++) {
    ts_tab *tt = s->tabs[i];
    bool want = req->n_tablet_ids == 0;
    for (size_t j = 0; j < req->n_tablet_ids && !want; j++)
      want = req->tablet_ids[j] == tt->d.tablet_id;
    if (!want || tt->state != TS_SERVING) continue;
    tt->refs++;
    held[n++] = tt;
  }
  pthread_mutex_unlock(&s->mu);
  rpc_served_tablet *v = xcalloc(n ? n : 1, sizeof(*v));
  rpc_tablet_descriptor *ds = xcalloc(n ? n : 1, sizeof(*ds));
  rpc_tablet_stats *sts = xcalloc(n ? n : 1, sizeof(*sts));
  for (size_t i = 0; i < n; i++) {
    memset(&v[i], 0, sizeof v[i]);
    rpc_route_desc(&held[i]->d, &ds[i]);
    ts_tab_stats(s, held[i], &sts[i]);
    v[i].desc = &ds[i];
    v[i].stats = &sts[i];
    v[i].assign_epoch = held[i]->d.assign_epoch;
    v[i].paused = !leased;
  }
  resp.tablets = v;
  resp.n_tablets = n;
  resp.server_id = atomic_load(&s->server_id);
  ts_status_fill(&st, NULL, NULL);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  for (size_t i = 0; i < n; i++) ts_release(s, held[i]);
  free(held);
  free(v);
  free(ds);
  free(sts);
}

void ts_drop_requested(ts_server *s) {
  pthread_mutex_lock(&s->admin_mu);
  for (;;) {
    ts_tab *tt = NULL;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ntabs && tt == NULL; i++)
      if (s->tabs[i]->drop_requested) tt = s->tabs[i];
    pthread_mutex_unlock(&s->mu);
    if (tt == NULL) break;
    uint64_t id = tt->d.tablet_id, ae = tt->d.assign_epoch;
    LOG_W("tablet %" PRIu64 ": the master no longer assigns it here; closing",
          id);
    err_free(close_tab(s, tt, NULL));
    record_closed(s, id, ae);
  }
  pthread_mutex_unlock(&s->admin_mu);
}

mica_err *ts_admin_register(ts_server *s) {
  const rpc_handler h[] = {
      {&rpc_m_ts_open_tablet, h_open, s, RPC_OFFLOAD},
      {&rpc_m_ts_close_tablet, h_close, s, RPC_OFFLOAD},
      {&rpc_m_ts_split_tablet, h_split, s, RPC_OFFLOAD},
      {&rpc_m_ts_tablet_info, h_info, s, RPC_OFFLOAD},
  };
  return rpc_server_register(s->rpc, h, sizeof h / sizeof h[0]);
}
