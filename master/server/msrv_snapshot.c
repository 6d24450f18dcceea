/* msrv_snapshot: the Master service's snapshot calls (CreateSnapshot,
 * ListSnapshots, DropSnapshot, CloneSnapshot; ExportSnapshot and
 * RestoreSnapshot are msrv_export.c's) and the deletion of dropped
 * snapshots' pins (docs/storage.md, "Snapshots"; the durable side is
 * master/tsnap.h).
 *
 * CreateSnapshot logs the snapshot's name (SNAP_BEGIN), then asks the
 * owner of every current tablet of the table to pin it (SnapshotTablet:
 * flush, then write the list of its SSTables). If a tablet is not serving,
 * moves, splits or merges meanwhile, the round starts over (the pins
 * already written are deleted first) until the call's deadline; a
 * snapshot that cannot be completed is dropped, so nothing partial stays.
 * The snapshot is ready (SNAP_READY) once the pinned ranges cover the key
 * space exactly.
 *
 * CloneSnapshot logs the new table (CLONE_BEGIN; its tablets are not
 * assigned yet), writes each new tablet's MANIFEST from the pin of the
 * snapshot tablet with the same range, then lets the tablets be assigned
 * (CLONE_DONE). No data is copied: the manifests reference the files the
 * pins reference.
 *
 * Dropping a snapshot (a call, or a failed creation) logs SNAP_DROP, then
 * deletes its pins directory, runs the garbage collector over the tablets
 * directory and logs SNAP_REMOVE. The action loop calls
 * msrv_snap_housekeeping every round, so a deletion interrupted by an
 * error or a restart is finished later.
 *
 * msrv_sweep_orphans (after each dropped snapshot's deletion and each
 * dropped table's, at master start, every --orphan-sweep-ms and soon
 * after a failed clone or restore: msrv_sweep_tick, msrv_sweep_soon)
 * retires a tablet directory of a forgotten tablet (its table's removal
 * logged) whose live epoch-0 manifest is a clone or restore manifest
 * whose PUT landed after the failed clone was cleaned up, and removes one
 * with no manifest at all, a failed restore's late SSTable copy
 * (docs/storage.md, "Clones" and "Export and restore"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/path.h"
#include "master/server/msrv_int.h"
#include "master/tsnap.h"
#include "tabletserver/manifest.h"
#include "tabletserver/tablet.h"

static void *zalloc(arena *a, size_t n) {
  void *p = arena_alloc_aligned(a, n);
  memset(p, 0, n);
  return p;
}

static const char *dup_str(arena *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = arena_alloc(a, n);
  memcpy(p, s, n);
  return p;
}

static char *pins_dir(msrv *s, uint64_t snap_id) {
  char *tablets = layout_tablets_dir(s->root);
  char *sdir = tab_snapshots_dir(tablets);
  char name[32];
  snprintf(name, sizeof name, "%" PRIu64, snap_id);
  char *d = path_join(sdir, name);
  free(sdir);
  free(tablets);
  return d;
}

static rpc_snapshot_info *info_msg(arena *a, const ms_tsnap_info *x) {
  rpc_snapshot_info *m = zalloc(a, sizeof(*m));
  m->snapshot_id = x->id;
  m->name = dup_str(a, x->name);
  m->table = dup_str(a, x->table);
  m->table_id = x->table_id;
  m->created_ms = x->created_ms;
  m->state = ms_tsnap_state_name(x->state);
  m->tablets = x->n_parts;
  m->files = x->files;
  m->bytes = x->bytes;
  return m;
}

static void audit(msrv *s, rpc_call *call, const char *fmt, const char *a,
                  const char *b) {
  char what[300];
  snprintf(what, sizeof what, fmt, a, b);
  ms_audit(s->core, rpc_call_identity(call), what);
}

mica_err *msrv_sweep_orphans(msrv *s, size_t *retired) {
  *retired = 0;
  env *e = s->opt.core.env;
  char *dir = layout_tablets_dir(s->root);
  char **names = NULL;
  size_t n = 0;
  mica_err *err = layout_list_tablets(e, dir, &names, &n);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    err = NULL;
  }
  size_t removed_dirs = 0;
  for (size_t i = 0; i < n && err == NULL; i++) {
    uint64_t id;
    if (!layout_parse_tablet_name(names[i], &id)) continue;
    /* Asked after the listing: a clone, restore, split, merge or new
     * table logs its tablet ids before anything writes under them, so a
     * directory listed here belongs to a tablet the core knows, or to one
     * it knew and forgot when its table's removal was logged. An id the
     * core never gave out is not this master's to judge: left alone. */
    if (!ms_tablet_forgotten(s->core, id)) continue;
    buf d = BUF_INIT;
    layout_tablet_dir(dir, id, &d);
    man_state m;
    man_init(&m);
    mica_err *merr = man_read(e, (const char *)d.data, &m);
    if (merr != NULL && err_code(merr) == MICA_NOT_FOUND) {
      /* No manifest: nothing anywhere references its files (a manifest
       * or pin references only files of directories that keep their
       * manifest until the collector finds nothing referencing them), and
       * nobody writes under a forgotten id any more. What is left is a
       * late write of a failed restore (an SSTable copy delivered after
       * the cleanup), or a removal cut short by a crash. */
      err = env_remove_tree(e, (const char *)d.data);
      if (err == NULL) {
        removed_dirs++;
        LOG_W("tablet directory %" PRIu64 " of no table held no manifest "
              "(a late write of a failed restore, or a removal cut "
              "short); removed", id);
      }
    } else if (merr == NULL && m.state == MAN_LIVE && m.epoch == 0) {
      /* Epoch 0 is written only by the master for a clone or restore,
       * and a tablet that was ever opened has an owner's epoch: a live
       * epoch-0 manifest of a forgotten tablet was sent by a clone that
       * failed or whose master died, and landed after its cleanup. */
      err = tab_retire_dropped(e, dir, id);
      if (err == NULL) {
        (*retired)++;
        LOG_W("tablet directory %" PRIu64 " held a live manifest of no "
              "table (a clone's or restore's, written late); retired",
              id);
      }
    }
    err_free(merr);
    man_clear(&m);
    buf_free(&d);
  }
  env_free_names(names, n);
  uint64_t removed = 0;
  if (err == NULL && *retired > 0) err = tab_collect_garbage(e, dir, &removed);
  *retired += removed_dirs;
  free(dir);
  return err;
}

void msrv_sweep_tick(msrv *s, uint64_t now) {
  pthread_mutex_lock(&s->mu);
  bool due = now >= s->sweep_at;
  if (due) s->sweep_at = now + s->opt.orphan_sweep_us;
  pthread_mutex_unlock(&s->mu);
  if (!due) return;
  size_t n = 0;
  mica_err *err = msrv_sweep_orphans(s, &n);
  if (err != NULL)
    LOG_W("sweeping tablet directories of no table: %s (tried again "
          "later)", err_msg(err));
  else if (n > 0)
    LOG_I("orphan sweep: %zu tablet directories of no table retired or "
          "removed", n);
  err_free(err);
}

void msrv_sweep_soon(msrv *s) {
  uint64_t at = msrv_now(s) + (s->opt.orphan_sweep_us < MSRV_LATE_WRITE_US
                                   ? s->opt.orphan_sweep_us
                                   : MSRV_LATE_WRITE_US);
  pthread_mutex_lock(&s->mu);
  if (at < s->sweep_at) s->sweep_at = at;
  pthread_mutex_unlock(&s->mu);
}

void msrv_snap_housekeeping(msrv *s) {
  uint64_t *ids = NULL;
  size_t n = 0;
  ms_tsnap_dropping(s->core, &ids, &n);
  if (n == 0) {
    free(ids);
    return;
  }
  env *e = s->opt.core.env;
  char *tablets = layout_tablets_dir(s->root);
  for (size_t i = 0; i < n; i++) {
    char *d = pins_dir(s, ids[i]);
    mica_err *err = env_remove_tree(e, d);
    uint64_t removed = 0;
    /* The pins are gone: whatever only they referenced goes now. */
    if (err == NULL) err = tab_collect_garbage(e, tablets, &removed);
    if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
      err_free(err); /* no tablets directory: nothing to collect */
      err = NULL;
    }
    if (err == NULL) err = ms_tsnap_removed(s->core, ids[i]);
    if (err != NULL)
      LOG_W("deleting dropped snapshot %" PRIu64 ": %s (retried later)",
            ids[i], err_msg(err));
    else
      LOG_I("dropped snapshot %" PRIu64 " deleted; %" PRIu64
            " files no longer referenced were deleted", ids[i], removed);
    err_free(err);
    free(d);
  }
  size_t orphans = 0;
  mica_err *serr = msrv_sweep_orphans(s, &orphans);
  if (serr != NULL)
    LOG_W("sweeping tablet directories of no table: %s", err_msg(serr));
  err_free(serr);
  free(tablets);
  free(ids);
}

/* Codes after which a new round may succeed: the tablet moved, split,
 * merged, or its server was busy or briefly away. */
static bool worth_retry(int code) {
  return code == MICA_UNAVAILABLE || code == MICA_NOT_SERVING ||
         code == MICA_STALE_EPOCH || code == MICA_LEASE_EXPIRED ||
         code == MICA_DEADLINE_EXCEEDED || code == MICA_OUT_OF_RANGE ||
         code == MICA_NOT_FOUND;
}

/* Pins one tablet; *retry set when the failure may pass. */
static mica_err *pin_one(msrv *s, uint64_t snap_id, const ms_tablet *t,
                         int64_t budget_ms, ms_tsnap_part *part) {
  if (!t->has_location)
    return err_new(MICA_UNAVAILABLE, "tablet %" PRIu64 " is %s, not "
                   "serving", t->tablet_id, ms_tablet_state_name(t->state));
  rpc_channel *ch;
  mica_err *err = msrv_channel(s, t->address, &ch);
  if (err != NULL) return err;
  rpc_tablet_ref ref = {t->tablet_id, t->range_epoch, t->assign_epoch};
  rpc_snapshot_tablet_request q = {0};
  q.tablet = &ref;
  q.snapshot_id = snap_id;
  q.master_epoch = s->opt.master_epoch;
  void *out = NULL;
  err = rpc_unary(ch, &rpc_m_ts_snapshot_tablet, &q, budget_ms, &out);
  if (err == NULL) {
    const rpc_snapshot_tablet_response *r = out;
    err = rpc_status_err(r->status);
    msrv_note_fenced(s, err);
    if (err == NULL) {
      part->tablet_id = t->tablet_id;
      buf_append_slice(&part->start, buf_slice(&t->start_key));
      buf_append_slice(&part->end, buf_slice(&t->end_key));
      part->files = r->files;
      part->bytes = r->bytes;
    }
  }
  rpc_msg_free(out);
  if (err != NULL)
    err = err_wrap(err, "tablet %" PRIu64 " on server %" PRIu64 " (%s)",
                   t->tablet_id, t->server_id, t->address);
  return err;
}

static void parts_free(ms_tsnap_part *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    buf_free(&v[i].start);
    buf_free(&v[i].end);
  }
  free(v);
}

/* Rounds of pinning every current tablet until one succeeds whole or the
 * time is up. */
static mica_err *take(msrv *s, rpc_call *call, uint64_t id) {
  int64_t left = rpc_call_remaining_ms(call);
  if (left > (int64_t)s->opt.wait_timeout_ms) left = s->opt.wait_timeout_ms;
  uint64_t until = msrv_now(s) + (uint64_t)(left > 0 ? left : 0) * 1000;
  env *e = s->opt.core.env;
  for (int round = 0;; round++) {
    if (round > 0) {
      /* Pins of tablets that no longer exist would only keep files. */
      char *d = pins_dir(s, id);
      err_free(env_remove_tree(e, d));
      free(d);
    }
    ms_tablet_list l = {0};
    mica_err *err = ms_tsnap_tablets(s->core, id, &l);
    if (err != NULL) return err;
    ms_tsnap_part *parts = xcalloc(l.n + 1, sizeof(*parts));
    for (size_t i = 0; i < l.n && err == NULL; i++) {
      uint64_t now = msrv_now(s);
      int64_t budget = now < until ? (int64_t)((until - now) / 1000) : 0;
      if (budget < 1) budget = 1;
      err = pin_one(s, id, &l.v[i], budget, &parts[i]);
    }
    if (err == NULL) err = ms_tsnap_ready(s->core, id, parts, l.n, msrv_now(s));
    parts_free(parts, l.n);
    ms_tablet_list_free(&l);
    if (err == NULL) return NULL;
    bool again = worth_retry(err_code(err)) ||
                 err_code(err) == MICA_INVALID_ARGUMENT; /* cover changed */
    if (!again || msrv_now(s) >= until || rpc_call_cancelled(call))
      return err_wrap(err, "snapshot not taken (round %d)", round + 1);
    LOG_I("snapshot %" PRIu64 ": round %d: %s; trying again", id, round + 1,
          err_msg(err));
    err_free(err);
    usleep(100 * 1000);
  }
}

static void h_create(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_create_snapshot_request *r = req;
  audit(s, call, "CreateSnapshot %.100s of table %.140s", r->name, r->table);
  uint64_t id = 0;
  mica_err *err = ms_tsnap_begin(s->core, r->table, r->name, msrv_now(s), &id);
  if (err == NULL) {
    err = take(s, call, id);
    if (err != NULL) {
      mica_err *derr = ms_tsnap_drop_id(s->core, id, msrv_now(s));
      err_free(derr);
      msrv_snap_housekeeping(s);
    }
  }
  arena *a = arena_new();
  rpc_create_snapshot_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  ms_tsnap_info *v = NULL;
  size_t n = 0;
  if (err == NULL) {
    mica_err *lerr = ms_tsnap_list(s->core, r->name, false, &v, &n);
    err_free(lerr);
    if (n == 1) {
      resp.snapshot = info_msg(a, &v[0]);
      LOG_I("snapshot %s of table %s taken: %zu tablets, %" PRIu64
            " files, %" PRIu64 " bytes", v[0].name, v[0].table, v[0].n_parts,
            v[0].files, v[0].bytes);
    }
  }
  rpc_call_reply(call, &resp);
  ms_tsnap_infos_free(v, n);
  arena_free(a);
  err_free(err);
}

static void h_list(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  (void)req;
  ms_tsnap_info *v = NULL;
  size_t n = 0;
  mica_err *err = ms_tsnap_list(s->core, NULL, false, &v, &n);
  arena *a = arena_new();
  rpc_list_snapshots_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  resp.snapshots = zalloc(a, (n + 1) * sizeof(*resp.snapshots));
  for (size_t i = 0; i < n; i++) resp.snapshots[i] = *info_msg(a, &v[i]);
  resp.n_snapshots = n;
  rpc_call_reply(call, &resp);
  ms_tsnap_infos_free(v, n);
  arena_free(a);
  err_free(err);
}

static void h_drop(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_drop_snapshot_request *r = req;
  audit(s, call, "DropSnapshot %.140s%s", r->name, "");
  mica_err *err = ms_tsnap_drop(s->core, r->name, msrv_now(s));
  if (err == NULL) msrv_snap_housekeeping(s);
  rpc_drop_snapshot_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  rpc_call_reply(call, &resp);
  err_free(err);
}

/* Writes the MANIFEST of new tablet `id` from pin `src` of the snapshot:
 * the same SSTables (by sibling path) and range, no WAL, epoch 0. */
static mica_err *write_clone_manifest(msrv *s, uint64_t snap_id, uint64_t src,
                                      uint64_t id) {
  env *e = s->opt.core.env;
  char *pdir = pins_dir(s, snap_id);
  char name[32];
  snprintf(name, sizeof name, "%" PRIu64, src);
  char *pin = path_join(pdir, name);
  buf b = BUF_INIT;
  man_state m;
  man_init(&m);
  mica_err *err = env_read_file(e, pin, MAN_MAX_BYTES, &b);
  if (err == NULL) err = man_decode(buf_slice(&b), pin, &m);
  if (err == NULL && m.tablet_id != src)
    err = err_new(MICA_CORRUPTION, "%s: pin of tablet %" PRIu64 ", not %"
                  PRIu64, pin, m.tablet_id, src);
  char *tablets = layout_tablets_dir(s->root);
  buf dir = BUF_INIT;
  layout_tablet_dir(tablets, id, &dir);
  if (err == NULL) err = env_mkdirs(e, (const char *)dir.data);
  if (err == NULL) {
    m.tablet_id = id;
    m.epoch = 0;
    m.next_file = 1;
    m.parent_id = 0;
    m.state = MAN_LIVE;
    m.n_live = m.n_retired = 0;
    /* A clone's writes start in its own owner's log; a pin written before
     * pins dropped the name must not tie the clone to a log that a
     * restart lets the servers collect. */
    man_set_log(&m, slice_make(NULL, 0), 0, 0, 0);
    err = man_write(e, (const char *)dir.data, &m);
  }
  buf_free(&dir);
  free(tablets);
  man_clear(&m);
  buf_free(&b);
  free(pin);
  free(pdir);
  return err;
}

static void h_clone(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_clone_snapshot_request *r = req;
  audit(s, call, "CloneSnapshot %.100s as table %.140s", r->snapshot,
        r->table);
  ms_tsnap_clone c;
  mica_err *err =
      ms_tsnap_clone_begin(s->core, r->snapshot, r->table, msrv_now(s), &c);
  if (err == NULL) {
    for (size_t i = 0; i < c.n && err == NULL; i++)
      err = write_clone_manifest(s, c.snap_id, c.source_ids[i],
                                 c.tablet_ids[i]);
    if (err != NULL)
      err = err_wrap(err, "clone %s of snapshot %s not made", r->table,
                     r->snapshot);
    mica_err *derr =
        ms_tsnap_clone_done(s->core, c.table_id, err == NULL, msrv_now(s));
    if (err == NULL) err = derr;
    else err_free(derr);
    ms_tsnap_clone_free(&c);
    /* A write of this call that failed here (a timed-out PUT) may still
     * land after the table's deletion: the sweep collects it. */
    if (err != NULL) msrv_sweep_soon(s);
    msrv_kick(s);
  }
  arena *a = arena_new();
  rpc_clone_snapshot_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  ms_table_info *v = NULL;
  size_t n = 0;
  if (err == NULL) {
    mica_err *lerr = ms_list_tables(s->core, &v, &n);
    err_free(lerr);
    for (size_t i = 0; i < n; i++) {
      if (strcmp(v[i].name, r->table) != 0) continue;
      rpc_table_info *t = zalloc(a, sizeof(*t));
      t->table_id = v[i].table_id;
      t->name = dup_str(a, v[i].name);
      t->tablet_count = v[i].tablet_count;
      t->created_ms = v[i].created_ms;
      t->options = msrv_opts_msg(a, &v[i].opts);
      resp.table = t;
    }
    LOG_I("table %s cloned from snapshot %s", r->table, r->snapshot);
  }
  rpc_call_reply(call, &resp);
  ms_table_infos_free(v, n);
  arena_free(a);
  err_free(err);
}

mica_err *msrv_snapshot_register(msrv *s) {
  const rpc_handler h[] = {
      {&rpc_m_master_create_snapshot, h_create, s, RPC_OFFLOAD},
      {&rpc_m_master_list_snapshots, h_list, s, 0},
      {&rpc_m_master_drop_snapshot, h_drop, s, RPC_OFFLOAD},
      {&rpc_m_master_clone_snapshot, h_clone, s, RPC_OFFLOAD},
  };
  mica_err *err = rpc_server_register(s->rpc, h, sizeof(h) / sizeof(h[0]));
  return err != NULL ? err : msrv_export_register(s);
}

mica_err *msrv_snap_table_check(msrv *s, rpc_call *call, const void *req) {
  const rpc_method *m = rpc_call_method(call);
  if (m == &rpc_m_master_create_snapshot)
    return rpc_call_check_table(
        call, ((const rpc_create_snapshot_request *)req)->table);
  if (m == &rpc_m_master_clone_snapshot)
    return rpc_call_check_table(
        call, ((const rpc_clone_snapshot_request *)req)->table);
  if (m == &rpc_m_master_restore_snapshot)
    return rpc_call_check_table(
        call, ((const rpc_restore_snapshot_request *)req)->table);
  /* Dropping, exporting: admin of the table the snapshot was taken of. */
  const char *name =
      m == &rpc_m_master_export_snapshot
          ? ((const rpc_export_snapshot_request *)req)->snapshot
          : ((const rpc_drop_snapshot_request *)req)->name;
  ms_tsnap_info *v = NULL;
  size_t n = 0;
  mica_err *e = ms_tsnap_list(s->core, name, false, &v, &n);
  if (e == NULL) e = rpc_call_check_table(call, v[0].table);
  ms_tsnap_infos_free(v, n);
  return e;
}
