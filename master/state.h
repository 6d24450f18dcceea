/* state: everything the master knows and decides, without any networking.
 *
 * The master's knowledge is tables, tablets (the key ranges of each table
 * with their epochs and assignments) and tablet servers (address, lease,
 * the per-tablet figures of their last heartbeat). Every change to tables,
 * tablets, assignments and server membership is first appended to the
 * metadata log (metalog.h) and synced, then applied in memory, then
 * answered: a master restarted on the same directory rebuilds exactly the
 * durable part of this state. Leases, figures, retry timers, pending
 * actions and events live in memory only.
 *
 * The RPC layer drives this module:
 *   - client and operator calls map to ms_create_table(), ms_lookup(),
 *     ms_request_move() and the like, answered at once;
 *   - tablet server calls map to ms_handle_register(),
 *     ms_handle_heartbeat() and ms_handle_split();
 *   - a timer calls ms_tick(now) (every ~100 ms, and right after any call
 *     that may have created work), performs the returned actions (OpenTablet,
 *     CloseTablet, delete a dropped table's files) and reports each outcome
 *     with ms_action_done().
 * Every decision is a function of the state and the `now` passed in
 * (monotonic microseconds, env_now_micros() in production), so tests drive
 * time by hand.
 *
 * Fencing (docs/master.md): a server's lease is counted by the master from
 * when it RECEIVED the heartbeat it renewed, and the server is declared dead
 * only when lease + margin has passed since then; the server counts from when
 * it SENT that heartbeat and stops acknowledging when its lease is over, so
 * its view always ends first and a tablet is never reassigned while its old
 * owner may still acknowledge.
 *
 * Thread-safety: every ms_* function may be called from any thread; one
 * mutex inside `ms` serializes them all (including the log's disk writes,
 * which are small and rare next to lookups). Results are copies that the
 * caller owns.
 *
 * Invariants kept after every call:
 *   - the current (not split/merged) tablets of a live table cover its key
 *     space exactly: sorted by start key, the first starts at "", each
 *     starts where the previous ends, the last ends at "" (= +infinity);
 *   - tablet, table and server ids are never reused;
 *   - a tablet in state opening, serving or closing names a server; serving
 *     and opening tablets name a live server (a dead server's tablets are
 *     unassigned by the same log record that declares it dead);
 *   - a failed log write leaves the in-memory state as it was and is
 *     returned to the caller. */
#ifndef MICA_MASTER_STATE_H
#define MICA_MASTER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/env.h"
#include "common/err.h"
#include "common/slice.h"
#include "master/table_opts.h"

typedef struct ms ms;

/* ---- configuration ---- */

typedef struct ms_options {
  env *env;                     /* file access and wall-clock display times */
  const char *data_root;        /* the log lives in <data_root>/master */
  uint64_t lease_us;            /* lease granted per heartbeat (10 s) */
  uint64_t lease_margin_us;     /* extra wait before declaring death (2 s) */
  uint64_t heartbeat_us;        /* interval servers are told to use (1 s) */
  uint64_t snapshot_bytes;      /* roll the log past this size (4 MiB) */
  size_t max_key_len;           /* longest key (MICA_MAX_KEY) */
  size_t max_split_keys;        /* most split keys at create (1000) */
  uint32_t max_opens_per_server;/* outstanding opens of placements (32) */
  uint64_t open_backoff_min_us; /* first retry delay of a failed open (200 ms) */
  uint64_t open_backoff_max_us; /* cap of that delay (10 s) */
  uint64_t action_timeout_us;   /* resend an action with no outcome (30 s) */
  double balance_band;          /* allowed deviation from the mean (0.2) */
  uint64_t balance_min_bytes;   /* byte gaps below this are ignored (64 MiB) */
  uint32_t max_moves_in_flight; /* balancer moves at once (2) */
  double balance_min_rate;      /* ops/s gaps below this are ignored (50) */
  uint64_t balance_window_us;   /* no tablet moves twice within (120 s) */
  uint64_t balance_settle_us;   /* wait after a load move (3 s) */
  uint64_t merge_max_bytes;     /* each merge input below this (16 MiB) */
  double merge_max_rate;        /* each input's reads+writes/s below (1.0) */
  uint64_t merge_min_age_us;    /* no merge of tablets younger (60 s) */
  uint32_t max_merges_in_flight;/* merges at once (1) */
  size_t event_capacity;        /* events kept (256) */
  /* A tablet reported with hot keys, or born of a load split, within this
   * long is never merged (5 min; docs/hotspots.md); one reported hot is
   * not merged while it is. */
  uint64_t load_cool_us;
  uint64_t heat_bucket_us;      /* load history bucket width (60 s) */
  size_t heat_buckets;          /* load history buckets kept (60) */
  size_t heat_max_tablets;      /* tablets per bucket (10000); ms_heat.h */
  /* The master epoch the log is written under (metalog.h,
   * mlog_open_epoch), and the leadership check made after every durable
   * append before it is acknowledged (mlog_set_guard). 0 / NULL without
   * ZooKeeper. */
  uint64_t master_epoch;
  bool (*still_active)(void *ctx);
  void *still_active_ctx;
} ms_options;

/* Fills `o` with the defaults above; env = env_posix(), data_root NULL. */
void ms_options_init(ms_options *o);

/* Opens the master state in <data_root>/master, replaying its log, and
 * writes a fresh snapshot. `now` starts the restart grace period (one lease
 * plus margin) during which servers re-register and nothing is reassigned;
 * a fresh directory has no grace period. Caller closes with ms_close(). */
mica_err *ms_open(const ms_options *o, uint64_t now, ms **out);
void ms_close(ms *m); /* accepts NULL */

/* ---- values handed out (all copies the caller owns) ---- */

enum ms_tablet_state {
  MS_UNASSIGNED = 1, /* numbers equal proto TabletState */
  MS_OPENING = 2,
  MS_SERVING = 3,
  MS_CLOSING = 4,
  MS_SPLIT = 5,
  MS_MERGED = 6
};
const char *ms_tablet_state_name(int state); /* "serving"; static */

enum ms_server_state {
  MS_SERVER_LIVE = 1, /* numbers equal proto ServerState */
  MS_SERVER_SUSPECT = 2,
  MS_SERVER_DEAD = 3
};

/* A tablet's figures as its server last reported them (TabletStats):
 * sizes, the counters since it was opened there, and the rates. */
typedef struct ms_stats {
  uint64_t bytes;
  uint64_t keys;
  double read_rate;  /* per second */
  double write_rate; /* per second */
  uint64_t reads, writes;           /* keys read / written since open */
  uint64_t read_bytes, write_bytes; /* their key+value bytes */
  uint64_t scans;                   /* scans started since open */
  uint64_t memtable_bytes;
  uint32_t sstable_count;
} ms_stats;

/* A tablet with its location. `has_location` is set only for a serving
 * tablet (one in transition has none: clients back off and retry);
 * server_id/address/assign_epoch always name the assigned server, if any. */
typedef struct ms_tablet {
  uint64_t tablet_id;
  uint64_t table_id;
  char *table_name;
  buf start_key; /* empty = start of the key space */
  buf end_key;   /* empty = end of the key space */
  uint64_t range_epoch;
  int state; /* enum ms_tablet_state */
  bool has_location;
  uint64_t server_id; /* 0 when unassigned */
  char *address;      /* "" when unassigned */
  uint64_t assign_epoch;
  ms_stats stats; /* from its server's last heartbeat */
} ms_tablet;

typedef struct ms_tablet_list {
  ms_tablet *v;
  size_t n;
} ms_tablet_list;
/* Frees the elements and the array; the list is empty afterwards. */
void ms_tablet_list_free(ms_tablet_list *l);
void ms_tablet_clear(ms_tablet *t); /* frees one element's members */

typedef struct ms_table_info {
  uint64_t table_id;
  char *name;
  uint64_t tablet_count; /* current tablets */
  uint64_t bytes, keys;
  uint64_t created_ms; /* wall clock */
  bool dropping;       /* dropped, tablets still closing */
  ms_table_opts opts;  /* its options (table_opts.h) */
} ms_table_info;
/* Caller frees with ms_table_infos_free(). */
void ms_table_infos_free(ms_table_info *v, size_t n);

typedef struct ms_server_info {
  uint64_t server_id;
  char *address;
  char *http_address; /* its /metrics and /healthz; "" when it gave none */
  int state; /* enum ms_server_state */
  uint64_t lease_age_ms;
  uint32_t tablet_count;
  uint64_t bytes;
  double read_rate, write_rate;
  uint64_t registered_ms; /* wall clock */
  bool draining;          /* takes no tablets; its own move away */
} ms_server_info;
void ms_server_infos_free(ms_server_info *v, size_t n);

/* A tablet as a tablet server names it: the id and the epochs it serves. */
typedef struct ms_ref {
  uint64_t tablet_id;
  uint64_t range_epoch;
  uint64_t assign_epoch;
} ms_ref;

/* One tablet in a register or heartbeat call. */
typedef struct ms_report {
  ms_ref ref;
  ms_stats stats;
} ms_report;

/* An input of a merge that the server closed, and the tablet it became
 * (serving, with its location). */
typedef struct ms_successor {
  uint64_t input_id;
  ms_tablet merged;
} ms_successor;

/* What the master answers a register or heartbeat with. */
typedef struct ms_server_reply {
  uint64_t server_id;
  uint64_t lease_ms;
  uint64_t heartbeat_ms;
  ms_ref *close; /* reported tablets the server must stop serving now */
  size_t n_close;
  /* Heartbeats only: merge inputs this server closed whose merged tablet
   * now serves, each told once (best effort: a lost reply loses them, and
   * clients of such an input then ask the master). */
  ms_successor *merged;
  size_t n_merged;
  /* Heartbeats only: the options of every table with a tablet the server
   * reported (how an alter reaches open tablets). */
  struct ms_opts_entry {
    uint64_t table_id;
    ms_table_opts opts;
  } *table_opts;
  size_t n_table_opts;
} ms_server_reply;
/* Frees `close`, `merged` and `table_opts`. */
void ms_server_reply_free(ms_server_reply *r);

typedef struct ms_move {
  uint64_t tablet_id;
  uint64_t from_server_id;
  uint64_t to_server_id;
  char reason[128];
  /* The tablet's epochs when the move was planned: ms_apply_plan() makes
   * the move only while they (and from_server_id) still hold. */
  uint64_t range_epoch;
  uint64_t assign_epoch;
} ms_move;

typedef struct ms_event {
  uint64_t time_ms; /* wall clock */
  char kind[16];    /* "split", "move", "merge", "assign", "server_dead", ... */
  char text[200];
  uint64_t tablet_id;
  uint64_t server_id;
} ms_event;

/* ---- tables (clients and operators) ---- */

/* Creates table `name` ([A-Za-z0-9_.-]{1,128}) cut at `split_keys` (strictly
 * increasing, each 1..max_key_len bytes): n+1 unassigned tablets, which the
 * next ms_tick() assigns. ALREADY_EXISTS for a taken name, INVALID_ARGUMENT
 * naming the bad name or key. `out` (may be NULL) receives the tablets in
 * key order; caller frees with ms_tablet_list_free(). */
mica_err *ms_create_table(ms *m, const char *name, const slice *split_keys,
                          size_t n_split_keys, uint64_t now,
                          ms_tablet_list *out);

/* ms_create_table with options (`opts` NULL = all defaults), checked first
 * (INVALID_ARGUMENT naming the option; nothing is created). With
 * salt_buckets N the table is cut at the one-byte keys 1..N-1 and, inside
 * each bucket b, at b + each split key (given unsalted, at most
 * max_key_len - 1 bytes): N * (n + 1) tablets. */
mica_err *ms_create_table_opts(ms *m, const char *name,
                               const slice *split_keys, size_t n_split_keys,
                               const ms_table_opts *opts, uint64_t now,
                               ms_tablet_list *out);

/* Which options ms_alter_table changes. */
enum {
  MS_ALTER_COMPRESSION = 1,
  MS_ALTER_SPLIT = 2,
  MS_ALTER_BLOCK_SIZE = 4,
  MS_ALTER_BLOOM = 8
};

/* Sets the options of table `name` named in `mask` to their values in
 * `opts` (logged, then sent to its servers in heartbeat replies and with
 * every later open). NOT_FOUND unknown table; INVALID_ARGUMENT naming the
 * bad option, an empty mask, or a salt_buckets in `opts` (fixed at
 * create); nothing changes then. `out` (may be NULL) receives the options
 * now in force. */
mica_err *ms_alter_table(ms *m, const char *name, const ms_table_opts *opts,
                         unsigned mask, uint64_t now, ms_table_opts *out);

/* The id and options of live table `name`. NOT_FOUND when unknown. */
mica_err *ms_table_options(ms *m, const char *name, uint64_t *table_id,
                           ms_table_opts *out);

/* Drops a table: it disappears from lookups and lists at once; ms_tick()
 * then closes its tablets and, once all are closed, emits
 * MS_ACT_DELETE_TABLE; the table is forgotten when that action succeeds.
 * The name can be reused immediately. NOT_FOUND for an unknown name. */
mica_err *ms_drop_table(ms *m, const char *name, uint64_t now);

/* Live tables sorted by name. Caller frees with ms_table_infos_free(). */
mica_err *ms_list_tables(ms *m, ms_table_info **out, size_t *n);

/* ---- routing (clients) ---- */

/* The tablet of `table` containing `key` (empty = the first tablet) and the
 * next count-1 in key order. count 0 is 1; at most 1000. */
mica_err *ms_lookup(ms *m, const char *table, slice key, uint32_t count,
                    ms_tablet_list *out);
/* The tablet holding the largest keys below `key` (empty = the last tablet)
 * and the count-1 before it, in descending key order. */
mica_err *ms_lookup_before(ms *m, const char *table, slice key, uint32_t count,
                           ms_tablet_list *out);

/* Tablets of `table` (NULL or "" = all live tables) by table id then
 * start key; retired ones too when `include_retired` (a parent before the
 * daughter that starts at its start key). */
mica_err *ms_list_tablets(ms *m, const char *table, bool include_retired,
                          ms_tablet_list *out);
/* One tablet by id, retired ones included. NOT_FOUND if unknown. */
mica_err *ms_get_tablet(ms *m, uint64_t tablet_id, ms_tablet *out);
/* A split daughter that lookups give no location yet: its server has not
 * reported it since the split committed (docs/master.md, "A split
 * daughter is routed to once its server reports it"). */
typedef struct ms_unseen {
  uint64_t tablet_id;
  uint64_t server_id;
  char *address; /* the server's RPC address */
  uint64_t range_epoch, assign_epoch;
} ms_unseen;
/* Every such daughter, by tablet id. Free with ms_unseen_free. */
void ms_split_unseen_list(ms *m, ms_unseen **out, size_t *n);
void ms_unseen_free(ms_unseen *v, size_t n);
/* Server `server_id` answered (TabletInfo) that it serves tablet
 * `tablet_id` under these epochs: when they are the split's, lookups give
 * the daughter its location from now on, as after a report of it. */
void ms_split_seen(ms *m, uint64_t tablet_id, uint64_t server_id,
                   uint64_t range_epoch, uint64_t assign_epoch);

/* True if tablet id `tablet_id` was given out by this master's log (it is
 * below the next id to give) and the master no longer knows the tablet:
 * its table was dropped and its removal logged. Such an id is never given
 * out again, so no clone, restore, split, merge or open writes under it
 * any more (the orphan sweep, msrv_snapshot.c). */
bool ms_tablet_forgotten(ms *m, uint64_t tablet_id);

/* ---- tablet servers ---- */

/* A server process announces itself at RPC `address`, with the HTTP
 * address of its /metrics (`http_address`; NULL or "" = none), which is
 * logged with the server and shown in server lists.
 * `prev_server_id` and `incarnation`
 * identify a process that registered before (with a master that has since
 * restarted, or after its own lease ran out): when both match a server the
 * master does not consider dead, the id is kept and the reported tablets
 * that the log assigns to it under those epochs are confirmed; every other
 * reported tablet is returned in reply->close. Otherwise a new id is
 * logged, and an older live server with the same address (a previous
 * process on that port) is declared dead at once. */
mica_err *ms_handle_register(ms *m, const char *address,
                             const char *http_address,
                             uint64_t prev_server_id, uint64_t incarnation,
                             const ms_report *tablets, size_t n,
                             uint64_t now, ms_server_reply *reply);

/* Renews the lease of `server_id`, records the figures, and lists in
 * reply->close the reported tablets that are not assigned to it under the
 * reported epochs. NOT_FOUND for an unknown server or incarnation,
 * LEASE_EXPIRED for one declared dead (or whose lease + margin has run out,
 * which declares it dead now): the server must register again. */
mica_err *ms_handle_heartbeat(ms *m, uint64_t server_id, uint64_t incarnation,
                              const ms_report *tablets, size_t n,
                              uint64_t now, ms_server_reply *reply);

/* Records what server `server_id` said of its disk in its last heartbeat
 * (HeartbeatRequest.disk_below_reserve): while its free space is below its
 * reserve, no merge starts with an input there (ms_request_merge answers
 * RESOURCE_EXHAUSTED), a merge's result opens on another server when one
 * can take it, and splits it proposes are refused with RESOURCE_EXHAUSTED:
 * each would write new files where there is no room. Volatile (the next
 * heartbeat tells again); unknown servers are ignored. */
void ms_server_disk(ms *m, uint64_t server_id, bool below_reserve);

/* A server asks to commit the split of `parent` at `split_key`: checked
 * (NOT_FOUND unknown tablet; STALE_EPOCH epochs or owner differ;
 * UNAVAILABLE not serving; OUT_OF_RANGE key not strictly inside;
 * RESOURCE_EXHAUSTED the server's disk is below its reserve), then
 * logged as one record that retires the parent and creates both daughters
 * serving on the same server (the parent's assign_epoch, range_epoch
 * parent+1).
 * `out` receives [left, right]; caller frees with ms_tablet_list_free(). */
mica_err *ms_handle_split(ms *m, uint64_t server_id, ms_ref parent,
                          slice split_key, uint64_t now, ms_tablet_list *out);

/* Servers by id (dead ones too when `include_dead`). */
mica_err *ms_list_servers(ms *m, bool include_dead, uint64_t now,
                          ms_server_info **out, size_t *n);

/* ---- load (docs/hotspots.md, "Load-based split") ---- */

/* A key that takes a large share of one tablet's sampled requests. */
typedef struct ms_hot_key {
  buf key;
  double ops_per_sec;
  char kind[8]; /* "read", "write" or "scan" */
} ms_hot_key;

/* A tablet's sampled load as its server last reported it (TabletLoad). */
typedef struct ms_load {
  double ops_per_sec, bytes_per_sec;
  bool hot;          /* above the load-split thresholds */
  ms_hot_key *keys;  /* hottest first */
  size_t n_keys;
} ms_load;
/* Frees the keys; the load is zero afterwards. */
void ms_load_clear(ms_load *l);
/* Deep copy into `dst` (cleared first). */
void ms_load_copy(ms_load *dst, const ms_load *src);

/* One tablet's load in a heartbeat. */
typedef struct ms_load_report {
  ms_ref ref;
  ms_load load; /* borrowed */
} ms_load_report;

/* Records the loads server `server_id` reported in its heartbeat, for the
 * tablets assigned to it under those epochs (others are ignored), and
 * adds a "hot_key" event for each hot key a tablet did not have before.
 * The latest hot keys are kept per tablet (volatile) and shown in
 * snapshots (snapshot.h). A tablet that is hot or has hot keys is not
 * merged, nor for load_cool_us after its last report with hot keys. */
void ms_note_load(ms *m, uint64_t server_id, const ms_load_report *v,
                  size_t n, uint64_t now);

/* Records that the split giving daughters `left` and `right` was a load
 * split (ReportSplitRequest.for_load): neither is merged for load_cool_us
 * nor while hot; adds a "load_split" event. Unknown ids are ignored. */
void ms_note_load_split(ms *m, uint64_t left, uint64_t right, uint64_t now);

/* ---- operator requests ---- */

/* Checks a manual split and says where to send it: the serving tablet `out`
 * (with its server and epochs) to which the RPC layer sends SplitTablet;
 * that server then proposes the split through ms_handle_split(). `key`
 * empty = the server picks the middle. NOT_FOUND unknown tablet,
 * UNAVAILABLE not serving, OUT_OF_RANGE key not strictly inside. */
mica_err *ms_prepare_split(ms *m, uint64_t tablet_id, slice key,
                           ms_tablet *out);

/* Starts moving a serving tablet to `target` (0 = least-loaded other live
 * server): logged as closing, then ms_tick() emits the close and, once it
 * succeeds, the open on the target. NOT_FOUND unknown tablet or server,
 * UNAVAILABLE dead target or tablet not serving (or the restart grace
 * period still runs), INVALID_ARGUMENT target is the current server. The RPC layer polls ms_get_tablet() to answer
 * once the tablet serves on the target. */
mica_err *ms_request_move(ms *m, uint64_t tablet_id, uint64_t target,
                          uint64_t now, ms_move *out);

/* Starts merging two adjacent serving tablets of one table (left.end ==
 * right.start): both are closed, then one tablet covering both ranges is
 * opened where the left one was. INVALID_ARGUMENT when not adjacent,
 * UNAVAILABLE when either is not serving or in transition, or during the
 * restart grace period. */
mica_err *ms_request_merge(ms *m, uint64_t left_id, uint64_t right_id,
                           uint64_t now);

/* The balancer's plan for the current state. `dry_run` only computes the
 * whole plan (every move needed to bring all live servers into the band);
 * otherwise the first moves, up to the in-flight bound, are started as
 * with ms_request_move() (UNAVAILABLE during the restart grace period).
 * Caller frees *out with free(). */
mica_err *ms_balance(ms *m, bool dry_run, uint64_t now, ms_move **out,
                     size_t *n);

/* Records in the event log (kind "admin") that `identity` asked for
 * `what` (docs/security.md: admin actions carry who made them). */
void ms_audit(ms *m, const char *identity, const char *what);

/* The balancer's modes (docs/master.md, "Balancer"): off, auto (moves on
 * its own), suggest (only proposes: ms_suggested()). Drains proceed in
 * every mode. Numbers are the CONFIG record's balancer field. */
enum ms_balancer_mode { MS_BAL_OFF = 0, MS_BAL_AUTO = 1, MS_BAL_SUGGEST = 2 };
const char *ms_balancer_mode_name(int mode); /* "auto"; static */
/* "auto" | "suggest" | "off" (also "on" = auto); false for anything else. */
bool ms_balancer_mode_parse(const char *s, int *mode);

/* Sets the balancer mode (NULL = unchanged; logged when it changes) and
 * returns the mode in force through `now_mode` (may be NULL). */
mica_err *ms_set_balancer_mode(ms *m, const int *mode, int *now_mode);

/* Suggest mode: the plan the balancer last proposed (refreshed about once
 * a second) and the `now` it was computed at (0 = none). Caller frees
 * *out with free(). */
void ms_suggested(ms *m, ms_move **out, size_t *n, uint64_t *at);

/* Carries out an operator-approved plan, all or nothing: every move must
 * still hold (the tablet serves on from_server_id under the planned
 * epochs, nothing is in flight for it, it waits in no earlier approved
 * plan, the target is live, not draining and not the source, no tablet
 * twice). Otherwise STALE_EPOCH, nothing is moved, and *stale (caller
 * frees with free()) lists each failing move with its reason.
 * INVALID_ARGUMENT for an empty or oversized plan (over 1000 moves);
 * UNAVAILABLE during the restart grace period. The moves start in order,
 * at most max_moves_in_flight in flight at once (with the balancer's own):
 * those that fit start now, the rest as earlier moves finish, each checked
 * again at its turn and dropped with a "move" event if it no longer holds.
 * The queue is volatile: a new master starts without it. */
mica_err *ms_apply_plan(ms *m, const ms_move *moves, size_t n, uint64_t now,
                        ms_move **stale, size_t *n_stale);

/* Marks live server `server_id` draining (`drain`) or not. A draining
 * server is given no tablets (assignments, moves, merges) and its tablets
 * are moved away max_moves_in_flight at a time, whatever the balancer
 * mode. Logged, so a restarted master keeps it. NOT_FOUND unknown or dead
 * server; RESOURCE_EXHAUSTED (drain) no other live server that is not
 * draining could take its tablets (not retried by clients). `out` (may be NULL) gets the server as ms_list_servers shows
 * it; caller frees *out with ms_server_infos_free(*out, 1). */
mica_err *ms_drain(ms *m, uint64_t server_id, bool drain, uint64_t now,
                   ms_server_info **out);

/* Runtime switches, kept in the log. NULL leaves a switch unchanged; the
 * settings in force are returned through the non-NULL out pointers. */
mica_err *ms_configure(ms *m, const bool *balancer, const bool *merges,
                       bool *balancer_now, bool *merges_now);

/* The newest `limit` events (0 = all kept), newest first. Caller frees
 * *out with free(). */
void ms_events(ms *m, size_t limit, ms_event **out, size_t *n);

/* ---- background work ---- */

enum ms_action_type {
  MS_ACT_OPEN = 1,        /* OpenTablet(tablet, tablet.assign_epoch, sources) */
  MS_ACT_CLOSE = 2,       /* CloseTablet(tablet ref, moved_to, skip_flush) */
  MS_ACT_DELETE_TABLE = 3 /* delete every file of table_id */
};

typedef struct ms_action {
  uint64_t id; /* pass to ms_action_done() */
  int type;    /* enum ms_action_type */
  uint64_t server_id;
  char *address;    /* of server_id; "" for MS_ACT_DELETE_TABLE */
  ms_tablet tablet; /* OPEN/CLOSE: descriptor and the epoch to open/close */
  uint64_t sources[2]; /* OPEN: the split parent or merge inputs whose files
                        * it references when it has none of its own yet */
  size_t n_sources;
  bool has_moved_to; /* CLOSE of a move: where the tablet goes */
  uint64_t moved_to_server;
  char *moved_to_address;
  uint64_t moved_to_epoch;
  bool skip_flush;   /* CLOSE of a dropped table's tablet */
  uint64_t table_id; /* DELETE_TABLE */
  ms_table_opts opts; /* OPEN: the table's options */
} ms_action;

typedef struct ms_action_list {
  ms_action *v;
  size_t n;
} ms_action_list;
void ms_action_list_free(ms_action_list *l);

/* Does what is due at `now`: sends again actions whose outcome has not
 * been reported within action_timeout_us, declares servers dead whose
 * lease + margin ran out, ends the restart grace period (reconciling what servers
 * reported with the log), assigns unassigned tablets to the least-loaded
 * live servers, retries failed opens and closes after their backoff,
 * closes dropped tables' tablets, merges and balances (when switched on).
 * Every change is logged before its action is returned. Appends the
 * actions to perform to `out` (caller frees with ms_action_list_free());
 * on a log failure, returns the error together with the actions of the
 * changes that were logged before it. */
mica_err *ms_tick(ms *m, uint64_t now, ms_action_list *out);

/* Reports the outcome of action `id`: MICA_OK, or the code the server
 * answered. ALREADY_EXISTS for an open, and NOT_SERVING or NOT_FOUND for a
 * close, count as success (the server is in the state asked for).
 * DEADLINE_EXCEEDED, UNAVAILABLE and CANCELLED mean the outcome is unknown
 * (the call may have taken effect): the same action is retried on the same
 * server after a backoff. Any other code means it did not take effect. An outcome for an action the state has moved past (its server
 * died, the table was dropped) is ignored. NOT_FOUND for an unknown id. */
mica_err *ms_action_done(ms *m, uint64_t id, int code, uint64_t now);

/* ms_action_done for `n` outcomes at once, the successful opens logged with
 * a single sync (a server's death reassigns many tablets; their opens
 * finish together). Every outcome is processed; returns the first error. */
mica_err *ms_actions_done(ms *m, const uint64_t *ids, const int *codes,
                          size_t n, uint64_t now);

/* ---- tests and tools ---- */

/* Appends the canonical encoding of the durable state (the snapshot
 * record's payload) to `out`: two masters hold the same durable state iff
 * these bytes are equal. */
void ms_dump_durable(ms *m, buf *out);

/* Checks the invariants above; INTERNAL naming the first violation. */
mica_err *ms_check_invariants(ms *m);

/* True while the restart grace period lasts. */
bool ms_in_grace(ms *m, uint64_t now);

#endif
