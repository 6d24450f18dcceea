/* ms_balance: where tablets should be, by load as well as by count and
 * bytes; the balancer's modes; operator-approved plans; draining servers.
 *
 * A plan is built move by move on a model of the servers (tablet count,
 * bytes, and load = the reads+writes per second of their tablets, as the
 * last heartbeats reported them); each planned move updates the model, so
 * a plan never moves one tablet twice and ends where it says. The rules, in
 * the order a plan tries them (docs/master.md, "Balancer"):
 *
 *   1. drain: a tablet on a draining server goes to the least loaded
 *      server that is not draining;
 *   2. load: when the busiest server's load is above the mean by the band
 *      (and by balance_min_rate ops/s), it gives up the tablet whose load
 *      is nearest half the gap to the least loaded server and below the
 *      whole gap, so the pair ends closer and the maximum drops. This goes
 *      on (hysteresis) until the busiest is within half the band of the
 *      mean; then only a new excursion past the full band starts it again.
 *      Two daughters of one split on the busiest server are parted
 *      whenever that lowers the maximum, even inside the band;
 *   3. counts and bytes, as before: a server outside the band of the mean
 *      tablet count, or of the mean bytes when the byte gap is large.
 *
 * Every rule has the same limits: a target is never draining and never
 * hot (above the mean by the band), and a move never makes it hot; a
 * tablet the balancer (or an approved plan) moved within
 * balance_window_us is not moved again (an operator's own moves do not
 * count: they are deliberate, and the balancer may rebalance them; a drain
 * ignores the window, for the same reason); after a load move, the next
 * load move waits balance_settle_us (pacing), and for RATE_REBUILD_US
 * after any move a tablet's load counts at no less than its rate before
 * the move, because its new server's exponentially weighted 5 s average
 * starts from zero. Each tick starts at most max_moves_in_flight moves in
 * all, an approved plan's first: its moves wait in m->approved and start
 * as earlier moves finish.
 *
 * Everything here runs with ms.mu held (the public entry points take it). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/ms_int.h"

#define LOCK(m) pthread_mutex_lock(&(m)->mu)
#define UNLOCK(m) pthread_mutex_unlock(&(m)->mu)

/* Most moves a suggestion or an applied plan holds. */
#define MAX_PLAN 1000

const char *ms_balancer_mode_name(int mode) {
  switch (mode) {
    case MS_BAL_OFF: return "off";
    case MS_BAL_AUTO: return "auto";
    case MS_BAL_SUGGEST: return "suggest";
    default: return "unknown";
  }
}

bool ms_balancer_mode_parse(const char *s, int *mode) {
  if (s == NULL) return false;
  if (strcmp(s, "auto") == 0 || strcmp(s, "on") == 0) *mode = MS_BAL_AUTO;
  else if (strcmp(s, "suggest") == 0) *mode = MS_BAL_SUGGEST;
  else if (strcmp(s, "off") == 0) *mode = MS_BAL_OFF;
  else return false;
  return true;
}

bool ms_srv_draining(ms *m, uint64_t id) {
  ms_srv *s = ms_find_srv(m, id);
  return s != NULL && s->draining;
}

/* ---- the model ---- */

typedef struct bsrv {
  ms_srv *s;
  uint64_t count, bytes;
  double rate;
  ms_tab **t; /* its movable tablets; a planned one is taken out */
  size_t n, cap;
} bsrv;

typedef struct model {
  bsrv *v; /* by server id */
  size_t n;
} model;

/* Tablet servers average rates over about 5 s, so a tablet that just
 * moved reports a rate that climbs from 0 on its new server: until this
 * long after its move, its load is taken as at least what it was before. */
#define RATE_REBUILD_US (6 * 1000000ull)

static double tab_rate(const ms *m, const ms_tab *t) {
  double r = t->have_stats ? t->stats.read_rate + t->stats.write_rate : 0;
  if (t->rate_at != 0 && m->now < t->rate_at + RATE_REBUILD_US &&
      t->rate_at_move > r)
    r = t->rate_at_move;
  return r;
}

double ms_tab_rate(const ms *m, const ms_tab *t) { return tab_rate(m, t); }

static bool movable(ms *m, const ms_tab *t, uint64_t now) {
  if (t->state != MS_SERVING || t->action != 0 || t->moving ||
      t->retry_at > now)
    return false;
  ms_tbl *tb = ms_find_tbl(m, t->table_id);
  return tb != NULL && !tb->dropping;
}

/* Moved by the balancer within the window: not moved again to balance (a
 * drain still moves it). */
static bool in_window(const ms *m, const ms_tab *t) {
  return t->moved_at != 0 && m->now < t->moved_at + m->opt.balance_window_us;
}

static bsrv *model_find(model *md, uint64_t id) {
  size_t lo = 0, hi = md->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (md->v[mid].s->id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < md->n && md->v[lo].s->id == id ? &md->v[lo] : NULL;
}

/* Servers that hold or can take tablets: live with a current lease. A
 * tablet closing for a move counts on its destination. */
static void model_build(ms *m, uint64_t now, model *md) {
  md->v = xcalloc(m->n_srvs + 1, sizeof(*md->v));
  md->n = 0;
  for (size_t i = 0; i < m->n_srvs; i++)
    if (!m->srvs[i]->dead && now <= m->srvs[i]->renewed_at + m->opt.lease_us)
      md->v[md->n++].s = m->srvs[i];
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    uint64_t on = ms_tab_counts_on(t);
    bsrv *b = on ? model_find(md, on) : NULL;
    if (b == NULL) continue;
    b->count++;
    b->bytes += t->stats.bytes;
    b->rate += tab_rate(m, t);
    if (!movable(m, t, now) || t->server != on) continue;
    if (b->n == b->cap) {
      b->cap = b->cap ? b->cap * 2 : 8;
      b->t = xrealloc(b->t, b->cap * sizeof(*b->t));
    }
    b->t[b->n++] = t;
  }
}

static void model_free(model *md) {
  for (size_t i = 0; i < md->n; i++) free(md->v[i].t);
  free(md->v);
}

static void take(bsrv *b, ms_tab *t) {
  for (size_t i = 0; i < b->n; i++)
    if (b->t[i] == t) {
      b->t[i] = b->t[--b->n];
      return;
    }
}

/* Mean load, count and bytes over the servers that are not draining. */
typedef struct means {
  size_t n;
  double rate, count, bytes;
} means;

static means model_means(const model *md) {
  means r = {0};
  for (size_t i = 0; i < md->n; i++) {
    if (md->v[i].s->draining) continue;
    r.n++;
    r.rate += md->v[i].rate;
    r.count += (double)md->v[i].count;
    r.bytes += (double)md->v[i].bytes;
  }
  if (r.n) {
    r.rate /= (double)r.n;
    r.count /= (double)r.n;
    r.bytes /= (double)r.n;
  }
  return r;
}

/* Hot: load above the mean by the band and by balance_min_rate. */
static bool rate_hot(const ms *m, double rate, double mean, double band) {
  return rate > mean * (1 + band) && rate - mean >= m->opt.balance_min_rate;
}

/* Would `rate` more make `b` hot? */
static bool would_be_hot(const ms *m, const bsrv *b, double rate,
                         const means *mn) {
  return rate > 0 && rate_hot(m, b->rate + rate, mn->rate, m->opt.balance_band);
}

/* The least loaded server that takes tablets (not draining, not hot),
 * other than `not`: by load when loads differ by more than half of
 * balance_min_rate, then count, bytes, id. */
static bsrv *least_loaded(ms *m, model *md, const means *mn, const bsrv *not) {
  bsrv *best = NULL;
  double eps = m->opt.balance_min_rate / 2;
  for (size_t i = 0; i < md->n; i++) {
    bsrv *b = &md->v[i];
    if (b == not || b->s->draining ||
        rate_hot(m, b->rate, mn->rate, m->opt.balance_band))
      continue;
    if (best == NULL) { best = b; continue; }
    if (fabs(b->rate - best->rate) > eps) {
      if (b->rate < best->rate) best = b;
    } else if (b->count != best->count) {
      if (b->count < best->count) best = b;
    } else if (b->bytes < best->bytes) {
      best = b;
    }
  }
  return best;
}

/* ---- the rules ---- */

typedef struct choice {
  bsrv *from, *to;
  ms_tab *t;
  bool load; /* a load move (starts the settle time) */
  char why[128];
} choice;

static bool drain_rule(ms *m, model *md, const means *mn, choice *c) {
  for (size_t i = 0; i < md->n; i++) {
    bsrv *b = &md->v[i];
    if (!b->s->draining || b->n == 0) continue;
    /* Hottest first: the load leaves the draining server soonest. */
    ms_tab *t = b->t[0];
    for (size_t k = 1; k < b->n; k++)
      if (tab_rate(m, b->t[k]) > tab_rate(m, t)) t = b->t[k];
    bsrv *to = least_loaded(m, md, mn, b);
    if (to == NULL) return false;
    c->from = b;
    c->to = to;
    c->t = t;
    snprintf(c->why, sizeof(c->why), "server %" PRIu64 " is draining (%"
             PRIu64 " tablets left)", b->s->id, b->count);
    return true;
  }
  return false;
}

/* Two current daughters of one split, both serving on `b`. */
static ms_tab *sibling(ms *m, bsrv *b, const ms_tab *t) {
  if (t->src[0] == 0 || t->src[1] != 0) return NULL;
  ms_tab *p = ms_find_tab(m, t->src[0]);
  if (p == NULL || p->state != MS_SPLIT) return NULL;
  for (size_t i = 0; i < b->n; i++)
    if (b->t[i] != t && b->t[i]->src[0] == t->src[0] && b->t[i]->src[1] == 0)
      return b->t[i];
  return NULL;
}

static bool load_rule(ms *m, model *md, const means *mn, bool *spreading,
                      choice *c) {
  if (mn->n < 2) return false;
  double band = m->opt.balance_band;
  bsrv *from = NULL;
  double second = 0;
  for (size_t i = 0; i < md->n; i++) {
    bsrv *b = &md->v[i];
    if (b->s->draining) continue;
    if (from == NULL || b->rate > from->rate) {
      if (from) second = fmax(second, from->rate);
      from = b;
    } else {
      second = fmax(second, b->rate);
    }
  }
  if (from == NULL) return false;
  if (!rate_hot(m, from->rate, mn->rate, band / 2)) *spreading = false;
  else if (rate_hot(m, from->rate, mn->rate, band)) *spreading = true;
  bsrv *to = least_loaded(m, md, mn, from);
  if (to == NULL || to->rate >= from->rate) return false;
  double gap = from->rate - to->rate;
  /* Daughters of a split together on the busiest server: part them when
   * the maximum drops by at least half of balance_min_rate. */
  for (size_t i = 0; i < from->n; i++) {
    ms_tab *t = from->t[i], *sib = sibling(m, from, t);
    if (sib == NULL || t->id > sib->id || in_window(m, t) || in_window(m, sib))
      continue;
    ms_tab *mv = tab_rate(m, t) <= tab_rate(m, sib) ? t : sib;
    double r = tab_rate(m, mv);
    double new_max = fmax(fmax(from->rate - r, to->rate + r), second);
    if (r > 0 && from->rate - new_max >= m->opt.balance_min_rate / 2) {
      c->from = from;
      c->to = to;
      c->t = mv;
      c->load = true;
      snprintf(c->why, sizeof(c->why), "daughters of split tablet %" PRIu64
               " parted: server %" PRIu64 " at %.0f ops/s, mean %.0f",
               t->src[0], from->s->id, from->rate, mn->rate);
      return true;
    }
  }
  if (!*spreading) return false;
  ms_tab *best = NULL;
  double best_d = 0;
  for (size_t i = 0; i < from->n; i++) {
    double r = tab_rate(m, from->t[i]);
    if (r <= 0 || r >= gap || in_window(m, from->t[i])) continue;
    double d = fabs(r - gap / 2);
    if (best == NULL || d < best_d) {
      best = from->t[i];
      best_d = d;
    }
  }
  if (best == NULL) return false; /* one tablet holds it: a split's job */
  c->from = from;
  c->to = to;
  c->t = best;
  c->load = true;
  snprintf(c->why, sizeof(c->why), "server %" PRIu64 " at %.0f ops/s, mean "
           "%.0f", from->s->id, from->rate, mn->rate);
  return true;
}

/* Takes from `b` the tablet whose size is nearest to `want` and below
 * `below` (0 = no bound) that does not make `to` hot. */
static ms_tab *pick_bytes(ms *m, bsrv *b, const bsrv *to, const means *mn,
                          uint64_t want, uint64_t below) {
  ms_tab *best = NULL;
  uint64_t best_d = 0;
  for (size_t i = 0; i < b->n; i++) {
    ms_tab *t = b->t[i];
    uint64_t sz = t->stats.bytes;
    if ((below && sz >= below) || in_window(m, t) ||
        would_be_hot(m, to, tab_rate(m, t), mn))
      continue;
    uint64_t d = sz > want ? sz - want : want - sz;
    if (best == NULL || d < best_d) {
      best = t;
      best_d = d;
    }
  }
  return best;
}

static bool count_rule(ms *m, model *md, const means *mn, choice *c) {
  double band = m->opt.balance_band;
  bsrv *cmax = NULL, *bmax = NULL;
  for (size_t i = 0; i < md->n; i++) {
    bsrv *b = &md->v[i];
    if (b->s->draining) continue;
    if (cmax == NULL || b->count > cmax->count) cmax = b;
    if (bmax == NULL || b->bytes > bmax->bytes) bmax = b;
  }
  if (cmax == NULL || mn->n < 2) return false;
  /* The least by count (then bytes) and by bytes, among those that take
   * tablets. */
  bsrv *cmin = NULL, *bmin = NULL;
  for (size_t i = 0; i < md->n; i++) {
    bsrv *b = &md->v[i];
    if (b->s->draining || rate_hot(m, b->rate, mn->rate, band)) continue;
    if (cmin == NULL || b->count < cmin->count ||
        (b->count == cmin->count && b->bytes < cmin->bytes))
      cmin = b;
    if (bmin == NULL || b->bytes < bmin->bytes) bmin = b;
  }
  if (cmin == NULL) return false;
  double slack = fmax(1.0, band * mn->count);
  double lo_c = mn->count - slack, hi_c = mn->count + slack;
  if (((double)cmax->count > hi_c || (double)cmin->count < lo_c) &&
      cmax->count >= cmin->count + 2 && cmax != cmin) {
    uint64_t want = cmax->bytes > cmin->bytes
                        ? (cmax->bytes - cmin->bytes) / 2 : 0;
    ms_tab *t = pick_bytes(m, cmax, cmin, mn, want, 0);
    if (t == NULL) return false;
    c->from = cmax;
    c->to = cmin;
    c->t = t;
    snprintf(c->why, sizeof(c->why), "server %" PRIu64 " holds %" PRIu64
             " tablets, mean %.1f", cmax->s->id, cmax->count, mn->count);
    return true;
  }
  if (bmax != bmin && bmax->bytes - bmin->bytes > m->opt.balance_min_bytes &&
      ((double)bmax->bytes > mn->bytes * (1 + band) ||
       (double)bmin->bytes < mn->bytes * (1 - band)) &&
      (double)bmax->count - 1 >= lo_c && (double)bmin->count + 1 <= hi_c) {
    uint64_t gap = bmax->bytes - bmin->bytes;
    /* Strictly below the gap (and not empty), so the pair ends closer. */
    ms_tab *t = pick_bytes(m, bmax, bmin, mn, gap / 2, gap);
    if (t == NULL || t->stats.bytes == 0) return false;
    c->from = bmax;
    c->to = bmin;
    c->t = t;
    snprintf(c->why, sizeof(c->why), "server %" PRIu64 " holds %" PRIu64
             " MiB, mean %.1f MiB", bmax->s->id, bmax->bytes >> 20,
             mn->bytes / 1048576.0);
    return true;
  }
  return false;
}

/* ---- plans ---- */

static void push_move(ms_move **out, size_t *n, const choice *c) {
  *out = xrealloc(*out, (*n + 1) * sizeof(**out));
  ms_move *mv = &(*out)[(*n)++];
  memset(mv, 0, sizeof(*mv));
  mv->tablet_id = c->t->id;
  mv->from_server_id = c->from->s->id;
  mv->to_server_id = c->to->s->id;
  mv->range_epoch = c->t->range_epoch;
  mv->assign_epoch = c->t->assign_epoch;
  snprintf(mv->reason, sizeof(mv->reason), "%s", c->why);
}

mica_err *ms_plan_balance(ms *m, size_t limit, int what, bool apply,
                          ms_move **out, size_t *n_out) {
  uint64_t now = m->now;
  model md;
  model_build(m, now, &md);
  /* A dry run works on a copy of the hysteresis flag. */
  bool spreading = m->rate_spreading;
  bool load_ok = !apply || now >= m->settle_until;
  size_t planned = 0;
  mica_err *err = NULL;
  while (planned < limit) {
    means mn = model_means(&md);
    choice c = {0};
    bool found = false;
    if (what & MS_PLAN_DRAIN) found = drain_rule(m, &md, &mn, &c);
    if (!found && (what & MS_PLAN_BALANCE) && load_ok)
      found = load_rule(m, &md, &mn, &spreading, &c);
    if (!found && (what & MS_PLAN_BALANCE))
      found = count_rule(m, &md, &mn, &c);
    if (!found) break;
    planned++;
    double r = tab_rate(m, c.t);
    take(c.from, c.t);
    c.from->count--;
    c.from->bytes -= c.t->stats.bytes;
    c.from->rate -= r;
    c.to->count++;
    c.to->bytes += c.t->stats.bytes;
    c.to->rate += r;
    push_move(out, n_out, &c);
    if (apply) {
      err = ms_start_move(m, c.t, c.to->s->id, c.why);
      if (err) break;
      c.t->moved_at = now;
      if (c.load) {
        m->settle_until = now + m->opt.balance_settle_us;
        load_ok = false;
      }
    }
  }
  if (apply) m->rate_spreading = spreading;
  model_free(&md);
  return err;
}

/* Records the "drained" event of each draining server left empty. */
static void note_drained(ms *m) {
  for (size_t i = 0; i < m->n_srvs; i++) {
    ms_srv *s = m->srvs[i];
    if (!s->draining || s->dead || s->drained_told) continue;
    size_t held = 0;
    for (size_t k = 0; k < m->n_tabs; k++) {
      ms_tab *t = m->tabs[k];
      held += t->server == s->id && (t->state == MS_OPENING ||
                                     t->state == MS_SERVING ||
                                     t->state == MS_CLOSING);
    }
    if (held) continue;
    s->drained_told = true;
    ms_event_add(m, "drain", 0, s->id, "server %" PRIu64 " (%s) drained: "
                 "it holds no tablets", s->id, s->address);
  }
}

static mica_err *start_approved(ms *m, uint64_t now);

mica_err *ms_balance_tick(ms *m, uint64_t now) {
  note_drained(m);
  for (size_t i = 0; i < m->n_tabs; i++) {
    ms_tab *t = m->tabs[i];
    if (t->state == MS_UNASSIGNED && t->retry_at <= now) {
      ms_tbl *tb = ms_find_tbl(m, t->table_id);
      if (tb && !tb->dropping) return NULL; /* place everything first */
    }
  }
  int mode = m->balancer_mode;
  if (mode != MS_BAL_SUGGEST && m->suggested_at != 0) {
    free(m->suggested);
    m->suggested = NULL;
    m->n_suggested = 0;
    m->suggested_at = 0;
  }
  if (mode == MS_BAL_SUGGEST &&
      (m->suggested_at == 0 || now >= m->suggested_at + 1000000)) {
    ms_move *plan = NULL;
    size_t n = 0;
    mica_err *err = ms_plan_balance(m, MAX_PLAN, MS_PLAN_BALANCE, false,
                                    &plan, &n);
    if (err) {
      free(plan);
      return err;
    }
    free(m->suggested);
    m->suggested = plan;
    m->n_suggested = n;
    m->suggested_at = now;
  }
  /* An operator's approved moves go first, whatever the mode. */
  mica_err *err = start_approved(m, now);
  if (err) return err;
  size_t in_flight = ms_moves_in_flight(m);
  if (in_flight >= m->opt.max_moves_in_flight) return NULL;
  int what = MS_PLAN_DRAIN | (mode == MS_BAL_AUTO ? MS_PLAN_BALANCE : 0);
  ms_move *moves = NULL;
  size_t n = 0;
  err = ms_plan_balance(m, m->opt.max_moves_in_flight - in_flight, what, true,
                        &moves, &n);
  free(moves);
  return err;
}

/* ---- operator calls ---- */

mica_err *ms_set_balancer_mode(ms *m, const int *mode, int *now_mode) {
  LOCK(m);
  mica_err *err = NULL;
  if (mode != NULL && (*mode < MS_BAL_OFF || *mode > MS_BAL_SUGGEST))
    err = err_new(MICA_INVALID_ARGUMENT, "balancer mode %d: expected auto, "
                  "suggest or off", *mode);
  else if (mode != NULL && *mode != m->balancer_mode) {
    uint64_t rec[2] = {(uint64_t)*mode, m->merges_on};
    buf b = BUF_INIT;
    rec_u64s(&b, rec, 2);
    err = ms_commit(m, REC_CONFIG, &b);
    buf_free(&b);
    if (!err)
      ms_event_add(m, "configure", 0, 0, "balancer %s, merges %s",
                   ms_balancer_mode_name(*mode), m->merges_on ? "on" : "off");
  }
  if (now_mode) *now_mode = m->balancer_mode;
  UNLOCK(m);
  return err;
}

void ms_suggested(ms *m, ms_move **out, size_t *n, uint64_t *at) {
  LOCK(m);
  *n = m->n_suggested;
  *out = xmalloc((*n + 1) * sizeof(**out));
  if (*n) memcpy(*out, m->suggested, *n * sizeof(**out));
  *at = m->suggested_at;
  UNLOCK(m);
}

static void add_stale(ms_move **v, size_t *n, const ms_move *mv,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_stale(ms_move **v, size_t *n, const ms_move *mv,
                      const char *fmt, ...) {
  *v = xrealloc(*v, (*n + 1) * sizeof(**v));
  ms_move *x = &(*v)[(*n)++];
  *x = *mv;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->reason, sizeof(x->reason), fmt, ap);
  va_end(ap);
}

/* Why move `mv` cannot be made now, into *stale; nothing when it can. */
static void check_move(ms *m, const ms_move *moves, size_t i, uint64_t now,
                       ms_move **stale, size_t *n_stale) {
  const ms_move *mv = &moves[i];
  for (size_t k = 0; k < i; k++)
    if (moves[k].tablet_id == mv->tablet_id) {
      add_stale(stale, n_stale, mv, "tablet %" PRIu64 " appears twice in the "
                "plan", mv->tablet_id);
      return;
    }
  for (size_t k = 0; k < m->n_approved; k++)
    if (m->approved[k].tablet_id == mv->tablet_id) {
      add_stale(stale, n_stale, mv, "tablet %" PRIu64 " waits to move in an "
                "approved plan already", mv->tablet_id);
      return;
    }
  ms_tab *t = ms_find_tab(m, mv->tablet_id);
  ms_tbl *tb = t ? ms_find_tbl(m, t->table_id) : NULL;
  ms_srv *to = ms_find_srv(m, mv->to_server_id);
  if (t == NULL || tb == NULL || tb->dropping)
    add_stale(stale, n_stale, mv, "tablet %" PRIu64 " no longer exists",
              mv->tablet_id);
  else if (t->state == MS_SPLIT || t->state == MS_MERGED)
    add_stale(stale, n_stale, mv, "tablet %" PRIu64 " was %s since the plan",
              t->id, t->state == MS_SPLIT ? "split" : "merged");
  else if (t->range_epoch != mv->range_epoch)
    add_stale(stale, n_stale, mv, "tablet %" PRIu64 " is at range epoch %"
              PRIu64 ", the plan has %" PRIu64 " (split or merged since)",
              t->id, t->range_epoch, mv->range_epoch);
  else if (t->assign_epoch != mv->assign_epoch)
    add_stale(stale, n_stale, mv, "tablet %" PRIu64 " is at assign epoch %"
              PRIu64 ", the plan has %" PRIu64 " (moved since)", t->id,
              t->assign_epoch, mv->assign_epoch);
  else if (t->server != mv->from_server_id)
    add_stale(stale, n_stale, mv, "tablet %" PRIu64 " is on server %" PRIu64
              ", not %" PRIu64, t->id, t->server, mv->from_server_id);
  else if (t->state != MS_SERVING || t->action != 0 || t->moving)
    add_stale(stale, n_stale, mv, "tablet %" PRIu64 " is %s, not serving "
              "steadily", t->id, ms_tablet_state_name(t->state));
  else if (to == NULL || to->dead ||
           now > to->renewed_at + m->opt.lease_us)
    add_stale(stale, n_stale, mv, "target server %" PRIu64 " is not live",
              mv->to_server_id);
  else if (to->draining)
    add_stale(stale, n_stale, mv, "target server %" PRIu64 " is draining",
              mv->to_server_id);
  else if (to->id == t->server)
    add_stale(stale, n_stale, mv, "tablet %" PRIu64 " is already on server %"
              PRIu64, t->id, to->id);
}

mica_err *ms_apply_plan(ms *m, const ms_move *moves, size_t n, uint64_t now,
                        ms_move **stale, size_t *n_stale) {
  *stale = NULL;
  *n_stale = 0;
  if (n == 0)
    return err_new(MICA_INVALID_ARGUMENT, "the plan has no moves");
  if (n > MAX_PLAN)
    return err_new(MICA_INVALID_ARGUMENT, "the plan has %zu moves, over the "
                   "limit of %d", n, MAX_PLAN);
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  if (!m->grace_done && now < m->grace_until)
    err = err_new(MICA_UNAVAILABLE, "the master restarted and waits for "
                  "servers to report; try again in %" PRIu64 " ms",
                  (m->grace_until - now) / 1000);
  for (size_t i = 0; i < n && !err; i++)
    check_move(m, moves, i, now, stale, n_stale);
  if (!err && *n_stale) {
    /* The message names them too: it is what a client that sees only
     * the status (the CLI) reports. */
    buf b = BUF_INIT;
    for (size_t i = 0; i < *n_stale && i < 10; i++) {
      buf_append(&b, "; ", 2);
      buf_append(&b, (*stale)[i].reason, strlen((*stale)[i].reason));
    }
    if (*n_stale > 10) buf_append(&b, "; ...", 5);
    buf_push(&b, 0);
    err = err_new(MICA_STALE_EPOCH, "%zu of the plan's %zu moves no longer "
                  "hold, none was made%s", *n_stale, n, (char *)b.data);
    buf_free(&b);
  }
  if (!err) {
    m->approved = xrealloc(m->approved,
                           (m->n_approved + n) * sizeof(*m->approved));
    memcpy(m->approved + m->n_approved, moves, n * sizeof(*moves));
    m->n_approved += n;
    err = start_approved(m, now);
  }
  UNLOCK(m);
  return err;
}

/* Starts approved moves in order while fewer than max_moves_in_flight
 * moves are in flight. Each is checked again at its turn: one that no
 * longer holds (its tablet split, its target died) is dropped with a
 * "move" event saying why, and the next one goes. */
static mica_err *start_approved(ms *m, uint64_t now) {
  size_t done = 0, in_flight = ms_moves_in_flight(m);
  mica_err *err = NULL;
  while (done < m->n_approved && in_flight < m->opt.max_moves_in_flight) {
    const ms_move *mv = &m->approved[done];
    ms_move *stale = NULL;
    size_t n_stale = 0;
    size_t queued = m->n_approved; /* not a duplicate of itself */
    m->n_approved = 0;
    check_move(m, mv, 0, now, &stale, &n_stale);
    m->n_approved = queued;
    if (n_stale) {
      ms_event_add(m, "move", mv->tablet_id, mv->to_server_id,
                   "approved move of tablet %" PRIu64 " to server %" PRIu64
                   " dropped: %s", mv->tablet_id, mv->to_server_id,
                   stale[0].reason);
      free(stale);
      done++;
      continue;
    }
    char why[160];
    snprintf(why, sizeof(why), "approved plan: %s", mv->reason);
    ms_tab *t = ms_find_tab(m, mv->tablet_id);
    err = ms_start_move(m, t, mv->to_server_id, why);
    if (err) break; /* the log failed: it stays queued */
    t->moved_at = now;
    done++;
    in_flight++;
  }
  if (done > 0) {
    m->n_approved -= done;
    memmove(m->approved, m->approved + done,
            m->n_approved * sizeof(*m->approved));
  }
  return err;
}

mica_err *ms_drain(ms *m, uint64_t server_id, bool drain, uint64_t now,
                   ms_server_info **outp) {
  LOCK(m);
  m->now = now;
  mica_err *err = NULL;
  ms_srv *s = ms_find_srv(m, server_id);
  if (s == NULL) {
    err = err_new(MICA_NOT_FOUND, "no server %" PRIu64, server_id);
  } else if (s->dead) {
    err = err_new(MICA_NOT_FOUND, "server %" PRIu64 " (%s) is dead",
                  server_id, s->address);
  } else if (drain && !s->draining) {
    bool other = false;
    for (size_t i = 0; i < m->n_srvs && !other; i++) {
      ms_srv *o = m->srvs[i];
      other = o != s && !o->dead && !o->draining &&
              now <= o->renewed_at + m->opt.lease_us;
    }
    if (!other)
      err = err_new(MICA_RESOURCE_EXHAUSTED, "server %" PRIu64 " (%s) cannot drain:"
                    " no other live server that is not draining could take "
                    "its tablets", server_id, s->address);
  }
  if (!err && s->draining != drain) {
    uint64_t rec[2] = {server_id, drain};
    buf b = BUF_INIT;
    rec_u64s(&b, rec, 2);
    err = ms_commit(m, REC_SERVER_DRAIN, &b);
    buf_free(&b);
    if (!err)
      ms_event_add(m, drain ? "drain" : "undrain", 0, server_id, "server %"
                   PRIu64 " (%s) %s", server_id, s->address,
                   drain ? "draining: its tablets move away, no new ones "
                           "come" : "takes tablets again");
  }
  if (!err && outp) {
    ms_server_info *out = *outp = xcalloc(1, sizeof(*out));
    ms_srv_info_fill(m, s, now, out);
  }
  UNLOCK(m);
  return err;
}

bool ms_rate_is_hot(ms *m, double rate, double mean) {
  return rate_hot(m, rate, mean, m->opt.balance_band);
}
