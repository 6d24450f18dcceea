/* maction: the action loop, the one thread through which the master acts on
 * the cluster.
 *
 * Each round asks the core for the actions due now (ms_tick), starts every
 * OpenTablet and CloseTablet as an asynchronous call with a deadline, so a
 * slow or dead server holds up only its own actions, and deletes a dropped
 * table's files in place. It then waits for the first of: an outcome, a
 * kick from a handler, or the tick period. Outcomes go straight back to the
 * core (ms_action_done), and the next round starts at once, because an
 * outcome usually makes the next step due (the open that follows a move's
 * close, the commit of a merge whose inputs closed): a move costs two round
 * trips and no tick waits.
 *
 * The loop never retries by itself: the core decides from each outcome
 * whether and when the same action is due again. A transport failure is
 * reported with its code (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED), which
 * the core reads as "outcome unknown".
 *
 * In its rounds, the loop also asks the server of each split daughter
 * that lookups give no location yet (ms_split_unseen_list), at most every
 * PROBE_GAP_US and one question at a time, whether it serves it
 * (TabletInfo, read-only), so that a daughter is routed to as
 * soon as its server opened it rather than at its next heartbeat
 * (docs/master.md, "A split daughter is routed to once its server reports
 * it"). A probe's answer is no action outcome: it only lifts the mark
 * (ms_split_seen) when the server serves the daughter under the split's
 * epochs. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/arena.h"
#include "common/log.h"
#include "master/server/maction.h"
#include "tabletserver/tablet.h"

/* One call in flight: the tag of its rpc_async call, listed in msrv.out
 * until its outcome is handled. */
struct pending {
  uint64_t action_id;
  int type; /* MS_ACT_OPEN, MS_ACT_CLOSE or PROBE */
  uint64_t tablet_id;
  uint64_t server_id;
  uint64_t range_epoch, assign_epoch; /* PROBE: the split's */
};

/* A TabletInfo probe of an unseen split daughter (not an action). */
#define PROBE 100
#define PROBE_GAP_US (50 * 1000)      /* between probes of one daughter */
#define PROBE_TIMEOUT_MS 2000

/* The probe state of one daughter; the loop thread's alone. */
struct msrv_probe {
  uint64_t tablet_id;
  uint64_t next_at; /* msrv_now time of the next probe */
  bool out;         /* a probe is in flight */
};

/* The outcome of a finished call: the transport error, or the error the
 * response's Status carries (NULL for OK). Caller frees. */
static mica_err *outcome(const void *resp, const mica_err *err,
                         int type) {
  if (err != NULL) return err_dup(err);
  const rpc_status *st =
      type == MS_ACT_OPEN
          ? ((const rpc_open_tablet_response *)resp)->status
          : ((const rpc_close_tablet_response *)resp)->status;
  return rpc_status_err(st);
}

/* For a split daughter opened elsewhere: the other daughter of the same
 * split, so that a server finding the daughter without files can finish
 * the split from the parent's (proto: OpenTabletRequest.split_sibling).
 * The core gives daughters consecutive ids, left then right. */
static bool split_sibling(msrv *s, const ms_action *a, ms_tablet *sib) {
  const ms_tablet *d = &a->tablet;
  ms_tablet parent = {0};
  bool ok = false;
  mica_err *err = ms_get_tablet(s->core, a->sources[0], &parent);
  if (err == NULL && parent.table_id == d->table_id) {
    bool left = slice_eq(buf_slice(&d->start_key),
                         buf_slice(&parent.start_key));
    uint64_t id = left ? d->tablet_id + 1 : d->tablet_id - 1;
    err = ms_get_tablet(s->core, id, sib);
    ok = err == NULL && sib->table_id == d->table_id &&
         (left ? slice_eq(buf_slice(&sib->start_key), buf_slice(&d->end_key))
               : slice_eq(buf_slice(&sib->end_key),
                          buf_slice(&d->start_key)));
  }
  err_free(err);
  ms_tablet_clear(&parent);
  return ok;
}

static void desc_of(const ms_tablet *t, rpc_tablet_descriptor *d) {
  rpc_route v = msrv_route_view(t);
  rpc_route_desc(&v, d);
}

static void start_open(msrv *s, rpc_async *as, const ms_action *a,
                       pending *p, mica_err **err) {
  rpc_channel *ch;
  if ((*err = msrv_channel(s, a->address, &ch)) != NULL) return;
  const ms_tablet *t = &a->tablet;
  rpc_tablet_descriptor d, sd;
  desc_of(t, &d);
  ms_tablet sib = {0};
  rpc_tablet_source src[2];
  for (size_t i = 0; i < a->n_sources && i < 2; i++) {
    memset(&src[i], 0, sizeof src[i]);
    src[i].tablet_id = a->sources[i];
    src[i].tablet_dir = "";
  }
  rpc_open_tablet_request q = {0};
  q.desc = &d;
  q.assign_epoch = t->assign_epoch;
  q.tablet_dir = "";
  q.master_epoch = s->opt.master_epoch;
  q.n_sources = a->n_sources < 2 ? a->n_sources : 2;
  q.sources = src;
  arena *oa = arena_new();
  q.options = msrv_opts_msg(oa, &a->opts);
  if (a->n_sources == 1 && split_sibling(s, a, &sib)) {
    desc_of(&sib, &sd);
    q.split_sibling = &sd;
  }
  *err = rpc_async_start(as, ch, &rpc_m_ts_open_tablet, &q,
                         s->opt.open_timeout_ms, p);
  arena_free(oa);
  ms_tablet_clear(&sib);
}

static void start_close(msrv *s, rpc_async *as, const ms_action *a,
                        pending *p, mica_err **err) {
  rpc_channel *ch;
  if ((*err = msrv_channel(s, a->address, &ch)) != NULL) return;
  rpc_tablet_ref ref = {0};
  ref.tablet_id = a->tablet.tablet_id;
  ref.range_epoch = a->tablet.range_epoch;
  ref.assign_epoch = a->tablet.assign_epoch;
  rpc_location to = {0};
  rpc_close_tablet_request q = {0};
  q.tablet = &ref;
  if (a->has_moved_to) {
    to.server_id = a->moved_to_server;
    to.address = a->moved_to_address;
    to.assign_epoch = a->moved_to_epoch;
    q.moved_to = &to;
  }
  q.skip_flush = a->skip_flush;
  q.master_epoch = s->opt.master_epoch;
  *err = rpc_async_start(as, ch, &rpc_m_ts_close_tablet, &q,
                         s->opt.close_timeout_ms, p);
}

/* Retires the directory of every tablet of dropped table `table_id` under
 * <root>/tablets (common/layout.h), then runs the garbage collector, which
 * deletes every file nothing else references (a snapshot's pin or a
 * clone's manifest may) and then the directories. Tablets are found
 * through the core (which still knows every tablet of a table until its
 * removal is logged), so a directory of another table is never touched. */
static mica_err *delete_table_files(msrv *s, uint64_t table_id,
                                    size_t *removed) {
  env *e = s->opt.core.env;
  char *dir = layout_tablets_dir(s->root);
  *removed = 0;
  mica_err *err = NULL;
  if (!env_exists(e, dir)) goto out;
  char **names = NULL;
  size_t n = 0;
  if ((err = layout_list_tablets(e, dir, &names, &n)) != NULL) goto out;
  for (size_t i = 0; i < n && err == NULL; i++) {
    uint64_t id;
    if (!layout_parse_tablet_name(names[i], &id)) continue;
    ms_tablet t = {0};
    mica_err *gerr = ms_get_tablet(s->core, id, &t);
    bool ours = gerr == NULL && t.table_id == table_id;
    err_free(gerr);
    ms_tablet_clear(&t);
    if (!ours) continue;
    err = tab_retire_dropped(e, dir, id);
    if (err == NULL) (*removed)++;
  }
  env_free_names(names, n);
  uint64_t files = 0;
  if (err == NULL) err = tab_collect_garbage(e, dir, &files);
  size_t orphans = 0;
  if (err == NULL) err = msrv_sweep_orphans(s, &orphans);
out:
  free(dir);
  return err;
}

/* Starts one action, or performs it at once (table deletion, or a call that
 * could not even start). */
static void perform(msrv *s, rpc_async *as, const ms_action *a) {
  mica_err *err = NULL;
  if (a->type == MS_ACT_DELETE_TABLE) {
    size_t removed = 0;
    err = delete_table_files(s, a->table_id, &removed);
    if (err)
      LOG_W("deleting the files of dropped table %" PRIu64 " failed: %s",
            a->table_id, err_msg(err));
    else
      LOG_I("dropped table %" PRIu64 ": %zu tablet directories retired; "
            "files nothing references deleted", a->table_id, removed);
    mica_err *derr = ms_action_done(s->core, a->id,
                                    err ? err_code(err) : MICA_OK,
                                    msrv_now(s));
    err_free(derr);
    err_free(err);
    return;
  }
  pending *p = xcalloc(1, sizeof(*p));
  p->action_id = a->id;
  p->type = a->type;
  p->tablet_id = a->tablet.tablet_id;
  p->server_id = a->server_id;
  LOG_D("%s tablet %" PRIu64 " on server %" PRIu64 " (%s) epoch %" PRIu64,
        a->type == MS_ACT_OPEN ? "open" : "close", a->tablet.tablet_id,
        a->server_id, a->address, a->tablet.assign_epoch);
  if (a->type == MS_ACT_OPEN) start_open(s, as, a, p, &err);
  else start_close(s, as, a, p, &err);
  if (err == NULL) {
    s->out = xrealloc(s->out, (s->n_out + 1) * sizeof(*s->out));
    s->out[s->n_out++] = p;
  } else {
    LOG_W("could not send action %" PRIu64 " to %s: %s", a->id, a->address,
          err_msg(err));
    mica_err *derr = ms_action_done(s->core, a->id, MICA_UNAVAILABLE,
                                    msrv_now(s));
    err_free(derr);
    err_free(err);
    free(p);
  }
}

static struct msrv_probe *probe_find(msrv *s, uint64_t id) {
  for (size_t i = 0; i < s->n_probes; i++)
    if (s->probes[i].tablet_id == id) return &s->probes[i];
  return NULL;
}

/* Starts the probes that are due; forgets daughters that are seen. */
static void probe_daughters(msrv *s, rpc_async *as, uint64_t now) {
  ms_unseen *v = NULL;
  size_t n = 0;
  ms_split_unseen_list(s->core, &v, &n);
  /* Keep entries still unseen or with a probe out (its answer frees it). */
  size_t k = 0;
  for (size_t i = 0; i < s->n_probes; i++) {
    bool keep = s->probes[i].out;
    for (size_t j = 0; j < n && !keep; j++)
      keep = v[j].tablet_id == s->probes[i].tablet_id;
    if (keep) s->probes[k++] = s->probes[i];
  }
  s->n_probes = k;
  for (size_t j = 0; j < n; j++) {
    struct msrv_probe *e = probe_find(s, v[j].tablet_id);
    if (e == NULL) {
      s->probes = xrealloc(s->probes, (s->n_probes + 1) * sizeof(*s->probes));
      e = &s->probes[s->n_probes++];
      /* The split has only just been committed: its server is splitting
       * the files now; the first probe comes a gap later. */
      *e = (struct msrv_probe){v[j].tablet_id, now + PROBE_GAP_US, false};
    }
    if (e->out || now < e->next_at) continue;
    rpc_channel *ch;
    mica_err *err = msrv_channel(s, v[j].address, &ch);
    pending *p = xcalloc(1, sizeof(*p));
    p->type = PROBE;
    p->tablet_id = v[j].tablet_id;
    p->server_id = v[j].server_id;
    p->range_epoch = v[j].range_epoch;
    p->assign_epoch = v[j].assign_epoch;
    rpc_tablet_info_request q = {0};
    uint64_t id = v[j].tablet_id;
    q.tablet_ids = &id;
    q.n_tablet_ids = 1;
    if (err == NULL)
      err = rpc_async_start(as, ch, &rpc_m_ts_tablet_info, &q,
                            PROBE_TIMEOUT_MS, p);
    e->next_at = now + PROBE_GAP_US;
    if (err != NULL) {
      LOG_D("probe of split daughter %" PRIu64 " on %s: %s", id,
            v[j].address, err_msg(err));
      err_free(err);
      free(p);
      continue;
    }
    e->out = true;
    s->out = xrealloc(s->out, (s->n_out + 1) * sizeof(*s->out));
    s->out[s->n_out++] = p;
  }
  ms_unseen_free(v, n);
}

/* The answer to a probe: lifts the mark when the server serves the
 * daughter under the split's epochs. */
static void probe_done(msrv *s, const pending *p, const void *resp,
                       const mica_err *err) {
  struct msrv_probe *e = probe_find(s, p->tablet_id);
  if (e != NULL) e->out = false;
  if (err != NULL) return;
  const rpc_tablet_info_response *r = resp;
  mica_err *st = rpc_status_err(r->status);
  if (st != NULL) {
    err_free(st);
    return;
  }
  for (size_t i = 0; i < r->n_tablets; i++) {
    const rpc_served_tablet *t = &r->tablets[i];
    if (t->desc == NULL || t->desc->tablet_id != p->tablet_id || t->paused)
      continue;
    if (t->desc->range_epoch == p->range_epoch &&
        t->assign_epoch == p->assign_epoch) {
      ms_split_seen(s->core, p->tablet_id, p->server_id, p->range_epoch,
                    p->assign_epoch);
      LOG_D("split daughter %" PRIu64 " serves on server %" PRIu64,
            p->tablet_id, p->server_id);
    }
  }
}

/* Outcomes collected from one drain of the completion queue, handed to
 * the core together so that their log records share one sync (a failover
 * finishes many opens at once). */
typedef struct outcomes {
  uint64_t *ids;
  int *codes;
  size_t n;
} outcomes;

/* Takes one finished call: logs a failure, records its outcome in `o`, and
 * frees the call's memory. */
static void unlist(msrv *s, pending *p) {
  for (size_t i = 0; i < s->n_out; i++)
    if (s->out[i] == p) {
      s->out[i] = s->out[--s->n_out];
      break;
    }
}

static void collect(msrv *s, outcomes *o, pending *p, void *resp,
                    mica_err *err) {
  if (p->type == PROBE) {
    probe_done(s, p, resp, err);
    rpc_msg_free(resp);
    err_free(err);
    unlist(s, p);
    free(p);
    return;
  }
  mica_err *out = outcome(resp, err, p->type);
  int code = err_code(out);
  if (out != NULL)
    LOG_I("%s of tablet %" PRIu64 " on server %" PRIu64 ": %s: %s",
          p->type == MS_ACT_OPEN ? "open" : "close", p->tablet_id,
          p->server_id, mica_code_name(code), err_msg(out));
  msrv_note_fenced(s, out);
  err_free(out);
  o->ids = xrealloc(o->ids, (o->n + 1) * sizeof(*o->ids));
  o->codes = xrealloc(o->codes, (o->n + 1) * sizeof(*o->codes));
  o->ids[o->n] = p->action_id;
  o->codes[o->n++] = code;
  rpc_msg_free(resp);
  err_free(err);
  unlist(s, p);
  free(p);
}

/* Hands the collected outcomes to the core. */
static void report(msrv *s, outcomes *o) {
  if (o->n == 0) return; /* probes only */
  mica_err *err = ms_actions_done(s->core, o->ids, o->codes, o->n,
                                  msrv_now(s));
  if (err != NULL && err_code(err) != MICA_NOT_FOUND)
    LOG_E("recording the outcomes of %zu actions failed: %s", o->n,
          err_msg(err));
  err_free(err);
  free(o->ids);
  free(o->codes);
}

/* Waits up to the tick for an outcome or a kick; returns true when the
 * next round should start. */
static bool wait_round(msrv *s, rpc_async *as, uint64_t until) {
  for (;;) {
    pthread_mutex_lock(&s->mu);
    bool go = s->stopping || s->kicked;
    s->kicked = false;
    pthread_mutex_unlock(&s->mu);
    if (go) return true;
    uint64_t now = msrv_now(s);
    if (now >= until) return true;
    if (rpc_async_in_flight(as) > 0) {
      void *tag;
      void *resp;
      mica_err *err;
      /* Short slices keep a kick's latency low while calls are out. */
      int64_t slice_ms = (int64_t)((until - now) / 1000);
      if (slice_ms > 5) slice_ms = 5;
      if (rpc_async_next(as, slice_ms, &tag, &resp, &err)) {
        outcomes o = {0};
        collect(s, &o, tag, resp, err);
        while (rpc_async_next(as, 0, &tag, &resp, &err))
          collect(s, &o, tag, resp, err);
        report(s, &o);
        msrv_progress(s);
        return true;
      }
      continue;
    }
    struct timespec ts = msrv_abstime(s, until - now);
    pthread_mutex_lock(&s->mu);
    if (!s->stopping && !s->kicked)
      pthread_cond_timedwait(&s->kick_cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
  }
}

/* Keeps automatic merges off while some live server cannot open a merged
 * tablet (the core would otherwise start merges whose result nobody can
 * serve), and on again once every live server can. */
static void guard_merges(msrv *s) {
  bool bal, mer;
  err_free(ms_configure(s->core, NULL, NULL, &bal, &mer));
  pthread_mutex_lock(&s->mu);
  bool suspended = s->merge_suspended;
  pthread_mutex_unlock(&s->mu);
  if (!mer && !suspended) return;
  mica_err *why = msrv_merge_blocker(s);
  bool want = why == NULL;
  if (want != mer) {
    mica_err *err = ms_configure(s->core, NULL, &want, NULL, NULL);
    if (err == NULL) {
      pthread_mutex_lock(&s->mu);
      s->merge_suspended = !want;
      pthread_mutex_unlock(&s->mu);
      if (want) LOG_I("automatic merges on again: every live server can merge");
      else LOG_W("automatic merges suspended: %s", err_msg(why));
    }
    err_free(err);
  }
  err_free(why);
}

static void *loop_main(void *arg) {
  msrv *s = arg;
  rpc_async *as = NULL;
  mica_err *err = rpc_async_new(&as);
  if (err != NULL) {
    LOG_E("action loop cannot start: %s", err_msg(err));
    err_free(err);
    return NULL;
  }
  for (;;) {
    pthread_mutex_lock(&s->mu);
    bool stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (stop) break;
    guard_merges(s);
    uint64_t now = msrv_now(s);
    ms_action_list acts = {0};
    err = ms_tick(s->core, now, &acts);
    if (err != NULL) {
      /* The actions returned with the error were logged: perform them. */
      LOG_E("master tick: %s", err_msg(err));
      err_free(err);
    }
    for (size_t i = 0; i < acts.n; i++) perform(s, as, &acts.v[i]);
    ms_action_list_free(&acts);
    probe_daughters(s, as, now);
    msrv_snap_housekeeping(s);
    msrv_sweep_tick(s, now);
    msrv_progress(s);
    wait_round(s, as, now + s->opt.tick_us);
  }
  /* Calls still out are cancelled; their outcomes are not reported
   * because the core closes right after and a restarted master resends
   * whatever its log says is in transition. */
  rpc_async_free(as);
  for (size_t i = 0; i < s->n_out; i++) free(s->out[i]);
  free(s->out);
  s->out = NULL;
  s->n_out = 0;
  free(s->probes);
  s->probes = NULL;
  s->n_probes = 0;
  return NULL;
}

mica_err *msrv_loop_start(msrv *s) {
  if (pthread_create(&s->loop, NULL, loop_main, s) != 0)
    return err_new(MICA_INTERNAL, "cannot start the action loop thread");
  s->loop_started = true;
  return NULL;
}

void msrv_loop_stop(msrv *s) {
  if (!s->loop_started) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->kick_cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->loop, NULL);
  s->loop_started = false;
}
