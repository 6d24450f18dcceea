/* sim: a simulated cluster around the master state, for its tests.
 *
 * The master (ms) runs for real on a temporary directory; tablet servers
 * are plain structs that answer its actions the way a tablet server would
 * (open adds the tablet to what it serves, close removes it), heartbeat
 * with what they serve, and keep their own lease counted from when they
 * SENT the last heartbeat the master answered. Time is a number the test
 * advances. Servers can be taken "down" (partitioned: no heartbeats, every
 * call to them fails as unreachable) and brought back.
 *
 * Thread-safety: single-threaded test code. */
#ifndef MICA_TESTS_MASTER_SIM_H
#define MICA_TESTS_MASTER_SIM_H

#include "master/state.h"
#include "tests/harness/testutil.h"

#define SIM_SEC 1000000ull
#define SIM_MAX_SERVERS 8
#define SIM_MAX_SERVED 1024

typedef struct sim_served {
  ms_ref ref;
  ms_stats stats;
  bool hidden; /* served but not yet in its reports (an open completing) */
} sim_served;

typedef struct sim_srv {
  uint64_t id;
  uint64_t inc;
  char addr[32];
  bool exists;  /* the process has been started */
  bool up;      /* reachable and heartbeating */
  int open_err; /* MICA_OK, or the code every open answers with */
  int close_err;
  uint64_t lease_until; /* the server's own view: sent + lease */
  sim_served served[SIM_MAX_SERVED];
  int n;
} sim_srv;

typedef struct sim {
  ms_options o;
  ms *m;
  uint64_t now;
  uint64_t net_delay; /* heartbeat send -> receive */
  sim_srv s[SIM_MAX_SERVERS];
  int ns;
  /* counters of performed actions since the last sim_reset_counts() */
  int opens, closes, deletes;
  /* sources of the last OPEN performed */
  uint64_t last_open_sources[2];
  size_t last_open_n_sources;
} sim;

/* A master on a fresh temporary directory, time 1000 s. */
void sim_init(sim *c, env *e);
void sim_free(sim *c);
/* Closes and reopens the master on the same directory; asserts the durable
 * state is byte-identical across the restart. */
void sim_restart(sim *c);

/* Starts server process i (fresh incarnation) and registers it. */
void sim_start_server(sim *c, int i);
/* Registers server i again with its previous id and what it serves. */
void sim_reregister(sim *c, int i);
/* One heartbeat of server i; returns the master's error code. A server
 * told LEASE_EXPIRED or NOT_FOUND drops everything and starts afresh. */
int sim_heartbeat(sim *c, int i);

/* Ticks and performs actions until the master asks for nothing more
 * (at most `rounds` rounds). Returns the number of actions performed. */
int sim_settle(sim *c, int rounds);
/* Advances time by `us` in heartbeat-sized steps: up servers heartbeat,
 * the master ticks, actions are performed. */
void sim_advance(sim *c, uint64_t us);
/* Performs every action of `l` and reports the outcomes, one by one or
 * all at once (chosen at random); asserts the reports succeed. */
void sim_perform(sim *c, ms_action_list *l);
/* The same, reporting as asked, returning the master's error. */
mica_err *sim_perform_err(sim *c, ms_action_list *l, bool batched);

int sim_find(sim *c, uint64_t server_id); /* index or -1 */
/* Tablets each server serves, by the master's map (serving state). */
int sim_count_on(sim *c, uint64_t server_id);
/* Sets figures of every tablet server i serves. */
void sim_set_stats(sim *c, int i, uint64_t bytes, double rate);
/* Splits the tablet of `table` holding `key` at `key`, as its server's
 * ReportSplit would, and has that server serve both daughters; their ids
 * go to *left and *right unless NULL. */
void sim_split_at(sim *c, const char *table, const char *key,
                  uint64_t *left, uint64_t *right);
/* Events of `kind` whose text contains `text` (NULL: any). */
size_t sim_count_events(sim *c, const char *kind, const char *text);

/* Fencing check: no tablet is held, under any epoch, by two servers whose
 * own leases are both current. */
void sim_check_fencing(sim *c);
/* ms_check_invariants plus the external view (lookups cover tables). */
void sim_check(sim *c);

#endif
