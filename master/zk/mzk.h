/* mzk: master election, publication and epochs in ZooKeeper.
 *
 * Several mica-master processes given the same ZooKeeper ensemble and chroot
 * are candidates; this module makes exactly one of them active, gives each
 * election win a new master epoch, publishes the active master's addresses,
 * and lets anyone (tablet servers, libmica, the CLI) find the active master.
 * docs/ha.md explains the design and the fencing argument; the znodes, all
 * under the chroot, are:
 *
 *   /master/candidates/c-<session>-<seq>  ephemeral sequential, one per
 *                                         candidate; the lowest <seq> leads
 *   /master/epoch                         persistent; data: the decimal epoch
 *                                         last taken; changed only by a
 *                                         conditional set inside the winner's
 *                                         multi-op
 *   /master/active                        ephemeral, owned by the active
 *                                         master's session; data: the text
 *                                         record described at mzk_master
 *
 * The recipe: each candidate creates its ephemeral sequential node and watches
 * only the candidate immediately before it (no herd effect: a candidate's
 * departure wakes at most one other). A candidate whose node is the lowest
 * takes the next epoch and creates /master/active in one multi-op that also
 * checks its own candidate node exists, so only a live lowest candidate can
 * take an epoch.
 *
 * Invariants:
 * - Epochs are strictly increasing and never reused: each is one more than
 *   the larger of the value stored in /master/epoch and the owner's
 *   `min_epoch`, written by a set conditional on the version read.
 * - A candidate reports itself active only while (a) it is connected, (b) it
 *   has won and (c) its leadership lease has not run out: the lease runs
 *   from the moment it sent the last write the ensemble answered (the
 *   winning multi-op, then a check-only multi-op every eighth of the
 *   session timeout), for half the granted session timeout. docs/ha.md shows why
 *   ZooKeeper cannot expire the session, and so cannot let another
 *   candidate win, before that lease has run out.
 *
 * Thread-safety: every function may be called from any thread, except that
 * mzk_elector_close / mzk_reader_close must not race with other calls on the
 * same handle and must not be called from an on_change callback. Each
 * elector and reader runs one thread of its own and the ZooKeeper C client's
 * two threads (I/O and completion); callbacks run on one of those threads,
 * with a lock of the handle held: they must return quickly and must not call
 * back into the same handle except mzk_elector_is_active. */
#ifndef MICA_MASTER_ZK_MZK_H
#define MICA_MASTER_ZK_MZK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/env.h"
#include "common/err.h"

/* Longest host:port string mzk keeps, including the terminator. */
#define MZK_ADDR_MAX 256

/* The published record of the active master. In ZooKeeper it is text, one
 * field per line, in this order:
 *   mica-active-master 1
 *   epoch <decimal>
 *   rpc <host:port>
 *   http <host:port or ->
 * A reader refuses a record with another first line or a missing field. */
typedef struct mzk_master {
  uint64_t epoch;
  char rpc_addr[MZK_ADDR_MAX];
  char http_addr[MZK_ADDR_MAX]; /* "" when the master has no HTTP listener */
} mzk_master;

/* Splits "HOST:PORT[,HOST:PORT...][/chroot]" into the host list and the
 * chroot ("" when absent). Refuses an empty host list, a host without a
 * numeric port in 1..65535, and a chroot with an empty, "." or ".."
 * component or a trailing slash. Caller frees both with free(). */
mica_err *mzk_spec_parse(const char *spec, char **hosts, char **chroot);

/* ---- candidates ---- */

typedef struct mzk_elector mzk_elector;

typedef struct mzk_elector_opts {
  const char *zk;           /* "HOST:PORT[,...][/chroot]"; required */
  int session_timeout_ms;   /* asked of ZooKeeper; 0 means 10000. The
                               ensemble may grant another value (its bounds
                               are 2..20 ticks); leases use the granted one */
  const char *rpc_addr;     /* published when active; required */
  const char *http_addr;    /* published when active; may be NULL */
  uint64_t min_epoch;       /* every epoch taken is above this: the highest
                               epoch the owner's own durable state has seen */
  env *env;                 /* clock; NULL means env_posix() */
  /* Called once per change of this candidate's role: active=true with the
   * new epoch after a win; active=false with the reason ("disconnected from
   * ZooKeeper", "session expired", ...) at once when it stops. May be
   * NULL. See the thread-safety paragraph. */
  void (*on_change)(void *ctx, bool active, uint64_t epoch, const char *why);
  void *ctx;
} mzk_elector_opts;

/* Starts a candidate: connects in the background, creates the chroot and
 * the znodes above as needed, and campaigns until closed, re-joining with a
 * new session after an expiry. Fails only on bad options (INVALID_ARGUMENT
 * naming the option) or when ZooKeeper's client cannot be created. Caller
 * closes with mzk_elector_close(). Strings in `o` are copied. */
mica_err *mzk_elector_start(const mzk_elector_opts *o, mzk_elector **out);

/* Changes the HTTP address published with this candidate's record (NULL or
 * "" for none): at once if it is active, at its next win otherwise. For a
 * master whose HTTP server starts only after it won. INVALID_ARGUMENT for
 * an address of MZK_ADDR_MAX bytes or more, or with a newline. */
mica_err *mzk_elector_set_http_addr(mzk_elector *e, const char *addr);

/* True when this candidate is the active master now (see the invariants);
 * then *epoch (if not NULL) is its epoch. Cheap: two atomic loads and a
 * clock read; meant to be called before every action a master takes. */
bool mzk_elector_is_active(mzk_elector *e, uint64_t *epoch);

/* The state of a ZooKeeper session as operators see it. */
typedef enum mzk_session_state {
  MZK_SESSION_CONNECTING = 0, /* no session yet, or reconnecting to one */
  MZK_SESSION_CONNECTED,      /* connected */
  MZK_SESSION_EXPIRED         /* the last session expired (or its auth
                                 failed); a new one is being made */
} mzk_session_state;

/* "connecting", "connected" or "expired". */
const char *mzk_session_state_name(mzk_session_state s);

typedef struct mzk_elector_stats {
  bool connected;           /* the ZooKeeper session is connected now */
  mzk_session_state session_state;
  bool active;              /* as mzk_elector_is_active */
  uint64_t epoch;           /* the epoch of the last win (0 before any) */
  int64_t session_id;       /* current ZooKeeper session (0 before one) */
  int session_timeout_ms;   /* the timeout the ensemble granted (0 before) */
  uint64_t wins;            /* election wins so far */
  uint64_t sessions;        /* sessions established so far */
  uint64_t watch_events;    /* node-watch notifications received (the
                               predecessor's, or an old active record's) */
  char candidate[64];       /* this candidate's node name ("" when none) */
  char watching[64];        /* the predecessor it watches ("" when none) */
} mzk_elector_stats;

/* A consistent snapshot of the elector's counters and state. */
void mzk_elector_get_stats(mzk_elector *e, mzk_elector_stats *st);

/* Steps down if active, closes the ZooKeeper session (which removes this
 * candidate's ephemeral znodes at once, so the next candidate can win
 * without waiting for a session timeout), stops the thread and frees `e`.
 * Accepts NULL. */
void mzk_elector_close(mzk_elector *e);

/* ---- readers: who is the active master? ---- */

typedef struct mzk_reader mzk_reader;

/* Watches /master/active under the chroot of `zk`. `on_change` (may be
 * NULL) is called with the new record, or NULL when no master is active,
 * each time that changes; the record is valid only during the call.
 * `session_timeout_ms` 0 means 10000. Caller closes with mzk_reader_close. */
mica_err *mzk_reader_open(const char *zk, int session_timeout_ms,
                          void (*on_change)(void *ctx, const mzk_master *m),
                          void *ctx, mzk_reader **out);

/* The last active master seen: true and *out filled, or false when none is
 * known (none is active, or the reader has not reached ZooKeeper yet). */
bool mzk_reader_get(mzk_reader *r, mzk_master *out);

/* Waits up to `timeout_ms` for an active master with epoch >= min_epoch and
 * copies it to *out; DEADLINE_EXCEEDED naming what was last seen when none
 * comes. */
mica_err *mzk_reader_wait(mzk_reader *r, uint64_t min_epoch, int timeout_ms,
                          mzk_master *out);

/* Closes the session and frees `r`. Accepts NULL. */
void mzk_reader_close(mzk_reader *r);

/* ---- who the candidates are (for status pages) ---- */

/* A candidate's node holds this record (text, one field per line):
 *   mica-candidate 1
 *   rpc <host:port>
 *   http <host:port or ->
 * A node holding only "<host:port>" (what earlier versions wrote) is read
 * as a candidate with that RPC address and no HTTP address. */
typedef struct mzk_member {
  char rpc_addr[MZK_ADDR_MAX];
  char http_addr[MZK_ADDR_MAX]; /* "" when unknown or none */
} mzk_member;

/* Most candidates a reader lists; more are counted, not kept. */
#define MZK_MAX_MEMBERS 16

/* Makes the reader also follow /master/candidates (a child watch and one
 * read per candidate node), for mzk_reader_candidates. Off by default: a
 * client that only needs the active master pays nothing for it. */
void mzk_reader_follow_candidates(mzk_reader *r);

/* The candidates last seen, in election order (the next in line first),
 * the active one included: up to `cap` into `out`, the count of all of
 * them into *n. False when the list is not known yet (not followed, or
 * ZooKeeper not reached since). */
bool mzk_reader_candidates(mzk_reader *r, mzk_member *out, size_t cap,
                           size_t *n);

/* What one master process knows of the election: what its status page,
 * JSON API and metrics show (master/http). */
typedef struct mzk_view {
  bool self_active;         /* this process is the active master now */
  uint64_t self_epoch;      /* its epoch when active, else 0 */
  mzk_session_state session;/* of the elector's session */
  int session_timeout_ms;   /* granted by ZooKeeper; the asked one before */
  int64_t session_id;       /* 0 before the first session */
  bool have_active;         /* an active master is published */
  mzk_master active;        /* that master's record */
  bool standbys_known;      /* the candidate list was read */
  size_t n_standbys;        /* candidates other than the active one */
  size_t n_shown;           /* of them in `standbys` (MZK_MAX_MEMBERS) */
  mzk_member standbys[MZK_MAX_MEMBERS]; /* next in line first */
} mzk_view;

/* Fills `v` from the elector `e` (may be NULL: not started yet) and the
 * reader `r` (which must follow the candidates). A candidate is a standby
 * unless its RPC address is the active record's. When `e` is active its
 * own epoch and addresses stand for the active master (the reader's copy
 * may lag by a watch round trip). `asked_timeout_ms` is reported until a
 * session is granted. */
void mzk_view_get(mzk_elector *e, mzk_reader *r, const char *self_rpc,
                  int asked_timeout_ms, mzk_view *v);

#endif
