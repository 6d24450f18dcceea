/* ms_int: the inside of the master state, shared by its files:
 *
 *   ms_state.c  the data, the log records (encoding, checking, applying),
 *               snapshots, open/close, invariants and listings;
 *   ms_ops.c    the calls of clients, operators and tablet servers;
 *   ms_tick.c   the background decisions (leases, assignment, retries,
 *               drops, merges, balancing, restart reconciliation) and the
 *               outcomes of the actions they emit;
 *   ms_load.c   each tablet's load record (ms_tab): the heartbeat's
 *               figures and recent rates, the sampled load, hot keys and
 *               load splits;
 *   ms_heat.c   the bounded load history (ms_heat.h), fed by ms_load.c.
 *
 * Every function here expects ms.mu held by its caller (the public entry
 * points take it). Durable fields change only inside ms_apply(); the fields
 * marked "volatile" are in memory only and rebuilt on restart. */
#ifndef MICA_MASTER_MS_INT_H
#define MICA_MASTER_MS_INT_H

#include <pthread.h>

#include "master/metalog.h"
#include "master/ms_heat.h"
#include "master/state.h"

/* Record types of the metadata log; METALOG_FORMAT.md gives each payload. */
enum {
  REC_SNAPSHOT = 1,
  REC_TABLE_CREATE = 2,
  REC_TABLE_DROP = 3,
  REC_TABLE_REMOVE = 4,
  REC_SERVER_ADD = 5,
  REC_SERVER_DEAD = 6,
  REC_ASSIGN = 7,
  REC_SERVING = 8,
  REC_UNASSIGN = 9,
  REC_CLOSING = 10,
  REC_CLOSED = 11,
  REC_SPLIT = 12,
  REC_MERGE_BEGIN = 13,
  REC_MERGE_COMMIT = 14,
  REC_CONFIG = 15,
  REC_SERVER_HTTP = 16,
  REC_TABLE_OPTIONS = 17,
  REC_SERVER_DRAIN = 18,
  /* snapshots and clones (ms_snapshots.c, tsnap.h) */
  REC_SNAP_BEGIN = 19,
  REC_SNAP_READY = 20,
  REC_SNAP_DROP = 21,
  REC_SNAP_REMOVE = 22,
  REC_CLONE_BEGIN = 23,
  REC_CLONE_DONE = 24
};

/* The kinds of work a tablet's counters count (ms_stats): keys read, keys
 * written, scans started, key+value bytes read and written. */
enum { MS_W_READS, MS_W_WRITES, MS_W_SCANS, MS_W_RBYTES, MS_W_WBYTES, MS_W_N };

/* Why a tablet is closing (durable). */
enum { CW_NONE = 0, CW_MOVE = 1, CW_MERGE = 2, CW_DROP = 3, CW_PLAIN = 4 };

typedef struct ms_tab {
  uint64_t id, table_id;
  buf start, end; /* end empty = +infinity */
  uint64_t range_epoch;
  int state;
  uint64_t server; /* 0 = none */
  uint64_t assign_epoch;
  int close_why;
  uint64_t close_arg; /* CW_MOVE: target server; CW_MERGE: partner tablet */
  bool closed;        /* CW_MERGE: its close finished */
  uint64_t src[2];    /* result of a merge: its inputs; else 0 */
  /* volatile */
  uint64_t born_us;      /* creation (or master start) time, for merges */
  uint64_t retry_at;     /* no assignment before this */
  uint32_t failures;     /* consecutive failed opens/closes */
  uint64_t avoid_server; /* its last definitive open failure */
  uint64_t action;       /* pending action id, 0 = none */
  bool moving;           /* a move is in flight (closing or reopening) */
  bool confirmed;        /* its server reported it since the restart */
  uint32_t unreported;   /* heartbeats in a row its server left it out of
                          * (serving) or still named it (split parent) */
  uint64_t seen_gen;     /* ms.report_gen of the last report naming it */
  /* A daughter of a split this master committed, that its server has not
   * reported yet under split_epoch: the server may still be splitting
   * the parent's files and opening it, so lookups give no location for it
   * until its server names it in a report (ms_tab_split_unseen). */
  bool split_unseen;
  uint64_t split_epoch;
  /* Its load: the one record of it, kept by ms_load.c from its server's
   * heartbeats (ms_note_stats, ms_note_load, ms_note_load_split) and
   * read by the hot list and heat map (ms_heat.c), the balancer and the
   * merge checker. Two kinds of rate: the server's own ~5 s read and
   * write rates (in `stats`), which balancing and merges go by, and
   * recent rates of every kind of work, which the master derives from
   * the counters' differences and the hot list ranks by. */
  bool have_stats;
  ms_stats stats;        /* the last report's figures (TabletStats) */
  uint64_t stats_server; /* who sent them, under which assign_epoch, and */
  uint64_t stats_epoch;  /* when: the baseline of the next report's */
  uint64_t stats_at;     /* counter differences */
  double recent[MS_W_N]; /* per second, exponentially weighted with the
                          * time constant MS_HEAT_WINDOW_S (snapshot.h) */
  bool have_recent;      /* a difference was taken from this baseline */
  ms_load load;          /* its server's last TabletLoad */
  uint64_t hot_at;       /* last reported with hot keys, or born of a
                          * load split; 0 = never */
  bool load_split;       /* a daughter of a load split */
  uint64_t moved_at;     /* last balancer move started, 0 = never */
  uint64_t rate_at;      /* last move of any kind started (ms_start_move),
                            or born of a load split (ms_note_load_split) */
  double rate_at_move;   /* its reads+writes/s then (ms_balance.c) */
} ms_tab;

typedef struct ms_tbl {
  uint64_t id;
  char *name;
  bool dropping;
  uint64_t created_ms;
  buf *presplit; /* boundaries given at create: merges never remove them */
  size_t n_presplit;
  ms_table_opts opts; /* durable: TABLE_CREATE's tail, TABLE_OPTIONS */
  ms_tab **cur; /* current tablets by start key */
  size_t n_cur, cap_cur;
  /* volatile */
  uint64_t action; /* pending MS_ACT_DELETE_TABLE */
  uint64_t retry_at;
  uint32_t failures;
} ms_tbl;

typedef struct ms_srv {
  uint64_t id;
  char *address;
  char *http_address; /* its /metrics server; "" when it announced none */
  uint64_t incarnation;
  uint64_t registered_ms;
  bool dead;
  bool draining; /* no new tablets; the balancer moves its own away */
  /* volatile */
  bool drained_told;   /* the "drained" event was recorded */
  uint64_t renewed_at; /* when the master received its last renewal */
  bool reported;       /* registered or heartbeated since this master began */
  bool disk_low;       /* its last heartbeat: disk below its free-space
                        * reserve (no merge starts there, no split commits) */
  /* Merge inputs this server closed, with the tablet they were merged
   * into: told to the server in a heartbeat reply once that tablet serves
   * (ms_handle_heartbeat), so it can route clients of the input there. At
   * most MS_MAX_SUCCESSORS, oldest dropped first. */
  struct ms_succ {
    uint64_t input, merged;
  } *succ;
  size_t n_succ, cap_succ;
} ms_srv;

#define MS_MAX_SUCCESSORS 1024

/* A pending action (volatile). */
typedef struct ms_act {
  uint64_t id;
  int type;
  uint64_t tablet_id; /* OPEN/CLOSE */
  uint64_t table_id;  /* DELETE_TABLE */
  uint64_t server;
  uint64_t epoch; /* assign_epoch the action is for */
  uint64_t due;   /* not emitted before this */
  bool emitted;
  uint64_t emitted_at;
} ms_act;

struct ms {
  pthread_mutex_t mu; /* guards everything below */
  ms_options opt;
  char *dir;
  mlog *log;
  uint64_t now;            /* `now` of the call in progress */
  int64_t wall_minus_mono; /* for display times */
  uint64_t grace_until;    /* restart grace ends; 0 = none */
  bool grace_done;

  /* durable */
  uint64_t next_table_id, next_tablet_id, next_server_id;
  int balancer_mode; /* enum ms_balancer_mode */
  bool merges_on;
  struct ms_tsnaps *tsnaps; /* snapshots and clones (ms_snapshots.c);
                             * NULL until first needed */
  ms_tbl **tables; /* by id */
  size_t n_tables, cap_tables;
  ms_tab **tabs; /* by id, every tablet including retired ones */
  size_t n_tabs, cap_tabs;
  ms_srv **srvs; /* by id, dead ones included */
  size_t n_srvs, cap_srvs;

  /* volatile */
  ms_act *acts;
  size_t n_acts, cap_acts;
  uint64_t next_action_id;
  uint64_t report_gen; /* counts heartbeats, to mark tablets they name */
  ms_event *events; /* ring of opt.event_capacity */
  size_t ev_head, ev_count;
  ms_heat *heat; /* load history, fed by heartbeats (ms_heat.h) */
  /* the balancer (ms_balance.c) */
  bool rate_spreading;    /* hysteresis: a rate imbalance is being spread */
  uint64_t settle_until;  /* no rate-driven move before (rates rebuild) */
  ms_move *suggested;     /* suggest mode: the latest plan */
  size_t n_suggested;
  uint64_t suggested_at;  /* its `now`; 0 = none */
  /* Moves of approved plans not started yet, in order: ms_balance_tick
   * starts them as room opens under max_moves_in_flight. Volatile: a new
   * master starts without them (docs/master.md, "Balancer"). */
  ms_move *approved;
  size_t n_approved;
};

/* ---- ms_state.c ---- */

ms_tab *ms_find_tab(ms *m, uint64_t id);
ms_tbl *ms_find_tbl(ms *m, uint64_t id);
ms_tbl *ms_find_tbl_name(ms *m, const char *name); /* live tables only */
ms_srv *ms_find_srv(ms *m, uint64_t id);
bool ms_srv_live(ms *m, uint64_t id);
/* True when server `id` last reported its disk below its reserve. */
bool ms_srv_disk_low(ms *m, uint64_t id);
/* (ms_ops.c) True if `t` counts as held by its server in the server
 * listings (ms_list_servers, ms_drain): opening, serving or closing there, of a
 * table that is not being dropped (a dropped table's tablets leave every
 * listing with the table, though their closes may take a while). */
bool ms_tab_held(ms *m, const ms_tab *t);
/* Fills `x` (zeroed) with server `s`'s listing: the server's fields and
 * the tablets it holds (ms_tab_held) with their figures. */
void ms_srv_info_fill(ms *m, const ms_srv *s, uint64_t now,
                      ms_server_info *x);

/* True while `t` is a split daughter its server has not reported since
 * the split committed (ms_tab.split_unseen), under the assignment the
 * split gave it. */
bool ms_tab_split_unseen(const ms_tab *t);

/* Checks a record against the state and, unless `dry`, applies it. Every
 * defect is CORRUPTION (replayed bytes are untrusted). */
mica_err *ms_apply(ms *m, uint8_t type, slice payload, bool dry);

/* Logs then applies one record: the only way the durable state changes
 * outside replay. A record that does not check against the state is
 * INTERNAL and is not logged. */
mica_err *ms_commit(ms *m, uint8_t type, const buf *payload);

/* ms_commit for `n` records with one sync. Each is checked against the
 * current state, so they must be independent of one another (for
 * example, each about a different tablet and none cancelling another). */
mica_err *ms_commit_batch(ms *m, size_t n, const uint8_t *types,
                          const buf *payloads);

void ms_encode_state(ms *m, buf *out);
void ms_event_add(ms *m, const char *kind, uint64_t tablet, uint64_t server,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
uint64_t ms_wall_ms(ms *m, uint64_t now);
void ms_fill_tablet(ms *m, const ms_tab *t, ms_tablet *out);
/* Remembers (volatile) that server `server` closed merge input `input`,
 * now part of tablet `merged` (see ms_srv.succ). mu held. */
void ms_note_successor(ms *m, uint64_t server, uint64_t input,
                       uint64_t merged);
bool ms_valid_table_name(const char *name);

/* Appends v[0..n) as varints: the payload of most records. */
void rec_u64s(buf *b, const uint64_t *v, size_t n);

/* ---- ms_options.c ---- */

/* Checks and (unless `dry`) applies a TABLE_OPTIONS record. */
mica_err *ms_apply_table_options(ms *m, slice payload, bool dry);
/* The snapshot's table-options section (METALOG_FORMAT.md): appends it
 * (nothing when every table has default options, unless `force`: a later
 * section follows),
 * or reads it from *p (before lim; advances *p), CORRUPTION when bad. */
void ms_encode_opts_section(ms *m, buf *b, bool force);
mica_err *ms_decode_opts_section(ms *m, const uint8_t **p,
                                 const uint8_t *lim);
/* Fills reply->table_opts with the options of the tables of `r`. */
void ms_reply_options(ms *m, const ms_report *r, size_t n,
                      ms_server_reply *reply);
/* The split keys of a salted table (see ms_create_table_opts): *out gets
 * n_buckets * (n + 1) - 1 keys, each allocated in *storage (caller frees
 * both with free()). */
void ms_salted_keys(const slice *keys, size_t n, uint32_t n_buckets,
                    slice **out, size_t *n_out, uint8_t **storage);

/* ---- ms_ops.c ---- */

/* Handles what a server reports (register or heartbeat): confirms the
 * tablets assigned to it under those epochs, records their figures, and
 * lists the others in reply->close. A heartbeat (`heartbeat`) names every
 * tablet the server serves, so it also counts the serving tablets it left
 * out (see MS_UNREPORTED_LIMIT). */
mica_err *ms_take_reports(ms *m, ms_srv *s, const ms_report *r, size_t n,
                          bool heartbeat, ms_server_reply *reply);

/* Heartbeats in a row after which a serving tablet its server does not
 * report is closed there and reassigned, and a split parent its server
 * still reports is closed: a split the server committed but did not carry
 * out would otherwise leave the map wrong for good. */
#define MS_UNREPORTED_LIMIT 3

/* ---- ms_load.c ---- */

/* Takes the figures of tablet `t` from a report by its server `server`
 * (under t's assign_epoch) at m->now: keeps them, moves the recent rates
 * towards the rates of the work done since the last report, and gives
 * that work to the load history (ms_heat_note). A first report, one from
 * another server or epoch, one older than the last, and counters that
 * went backwards (the server reopened the tablet) start a new baseline
 * instead; the same report twice adds nothing. */
void ms_note_stats(ms *m, ms_tab *t, uint64_t server, const ms_stats *st);

/* True while `t` must not be merged for its load: reported hot or with
 * hot keys, or reported with hot keys (or born of a load split) less than
 * load_cool_us ago. */
bool ms_tab_load_busy(ms *m, const ms_tab *t, uint64_t now);

/* ---- ms_tick.c ---- */

/* Declares `s` dead (logged) and records the event. */
mica_err *ms_declare_dead(ms *m, ms_srv *s, const char *why);
/* Queues an action of `type` for `t` on its server, due at `due`. */
uint64_t ms_queue_action(ms *m, int type, ms_tab *t, uint64_t due);
/* The server tablet `t` counts on when servers are compared (placement,
 * balancing): its own while opening or serving, the destination while it
 * closes for a move (where it is about to be); 0 otherwise. */
uint64_t ms_tab_counts_on(const ms_tab *t);
/* The live server with the fewest tablets (then bytes, then lowest id)
 * other than `exclude`; 0 when there is none. */
uint64_t ms_least_loaded(ms *m, uint64_t exclude);
/* Logs the start of a move of serving `t` to live `target` and queues the
 * close on its current server. */
mica_err *ms_start_move(ms *m, ms_tab *t, uint64_t target, const char *why);
/* A tablet's reads+writes/s as the balancer counts it: the last reported
 * rate, or the rate held after a move or a load split while its server's
 * average climbs from 0 (ms_balance.c). */
double ms_tab_rate(const ms *m, const ms_tab *t);
/* Logs the start of merging adjacent serving `a` and `b` and queues both
 * closes. */
mica_err *ms_start_merge(ms *m, ms_tab *a, ms_tab *b, const char *why);
/* Moves in flight (tablets closing for a move or reopening after one). */
size_t ms_moves_in_flight(ms *m);

/* ---- ms_balance.c ---- */

/* What a plan may contain: moves off draining servers, and balancing moves
 * (load, counts, bytes). */
enum { MS_PLAN_DRAIN = 1, MS_PLAN_BALANCE = 2 };
/* The balancer's plan: at most `limit` moves of the kinds in `what`,
 * appended to the array at *out of *n entries (it grows with xrealloc).
 * Starts them when `apply`. */
mica_err *ms_plan_balance(ms *m, size_t limit, int what, bool apply,
                          ms_move **out, size_t *n);
/* The balancer's part of a tick: drains always, balancing as the mode
 * says (auto: moves; suggest: refreshes m->suggested). */
mica_err *ms_balance_tick(ms *m, uint64_t now);
/* True when server `id` is draining. */
bool ms_srv_draining(ms *m, uint64_t id);
/* True when a server at `rate` ops/s is hot next to the mean `mean`: above
 * it by balance_band and by balance_min_rate. */
bool ms_rate_is_hot(ms *m, double rate, double mean);

#endif
