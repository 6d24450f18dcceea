/* cluster: real Mica clusters on loopback for integration tests.
 *
 * cl_start() runs one `mica-master` and N `mica-tserver` processes (binaries
 * from $MICA_BIN_DIR) on a fresh temporary data root, every process on port
 * 0, and returns once every tablet server is registered and live at the
 * master. Processes can then be stopped (SIGTERM, clean exit checked),
 * killed (SIGKILL) and restarted on the same data root; a restarted master
 * listens on its previous address so the tablet servers find it again.
 *
 * No child outlives the test: cl_free() stops every process, and the
 * harness's process guard (tests/harness/proc.h) kills whatever a test that
 * ends early (a failed CUnit assertion, an abort, a signal) left running.
 *
 * Each process is a harness node (tests/harness/node.h) named "master" or
 * "tserver-<slot>", with its files in <root>/logs: <name>.log (stderr),
 * <name>.out (stdout, the `listening` line), <name>.addr; set
 * MICA_KEEP_TMP=1 to keep them after the run.
 *
 * For a CUnit suite: cl_suite_start() and cl_suite_stop() are the init and
 * clean-up bodies of a suite that shares one cluster.
 *
 * Also here: shared channels to the master and to any address, and
 * cl_call_master() and cl_call(), a unary call to the master or to any
 * address that turns the transport outcome and the response Status into
 * one mica_err.
 *
 * Thread-safety: start, stop, kill, restart and cl_free calls come from one
 * thread, as do the getters of addresses and ids (a restart replaces the
 * strings); cl_master_channel(), cl_channel(), cl_call_master() and
 * cl_call() may be called from any thread at any time before cl_free, also while the
 * master restarts (calls then fail with UNAVAILABLE until it is back). */
#ifndef MICA_TESTS_CLUSTER_CLUSTER_H
#define MICA_TESTS_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/env.h"
#include "common/err.h"
#include "proto/rpc.h"

typedef struct cluster cluster;

typedef struct cl_options {
  int tservers;              /* tablet servers to start (default 3) */
  uint64_t lease_ms;         /* master --lease-ms (default 2000) */
  uint64_t lease_margin_ms;  /* master --lease-margin-ms (default 500) */
  uint64_t heartbeat_ms;     /* master --heartbeat-ms (default 200) */
  uint64_t split_threshold;  /* tserver --split-threshold in bytes;
                                0 = the server's default */
  /* Extra arguments, NULL-terminated arrays (may be NULL). */
  const char *const *master_args;
  const char *const *tserver_args;
  int start_timeout_ms;      /* wait for registration (default 30000) */
  /* tserver --drain-timeout-ms: how long a server stopped with SIGTERM
   * drains first. Default 0: stops at once, as every test written before
   * draining existed expects (tests of draining set it). */
  uint64_t drain_timeout_ms;
  /* A directory made by tools/mica-certs: every process serves TLS with
   * server.pem/server.key and trusts ca.pem, and so do the harness's
   * channels. NULL = plaintext (cl_options_init: cl_env_tls_dir()). */
  const char *tls_dir;
  /* mica-master --tokens FILE (docs/security.md); NULL = none. */
  const char *tokens_file;
  /* --tls-client-certs MODE on every process ("request", "require"; needs
   * tls_dir); NULL = the servers' default. */
  const char *client_certs;
  /* Keep the data root on the test program's S3 server (s3server.h):
   * --data-dir s3://mica-test/<unique>, the WAL in one local directory
   * shared by the cluster's servers (--wal-dir), the secret in a local file
   * (cl_options_init: cl_env_s3()). */
  bool s3;
  /* With s3: every process reaches S3 through the program's fault proxy
   * (s3proxy.h: th_s3_fault makes requests fail), while cl_data_env()
   * reads the bucket directly, unaffected. */
  bool s3_proxy;
  /* With s3: the commit log on S3 as well (no --wal-dir; docs/storage.md),
   * and each tablet server gets a local "machine" directory holding its
   * disk cache (cl_tserver_machine_dir), so a test can wipe a server's
   * whole machine. Default: MICA_TEST_S3_WAL set (not "" or "0") with
   * s3. */
  bool s3_wal;
} cl_options;

/* Fills `o` with the defaults above. tls_dir defaults to
 * cl_env_tls_dir(), so every cluster test runs under TLS when the
 * environment asks for it. */
void cl_options_init(cl_options *o);

/* The cluster suite under TLS (docs/testing.md): MICA_TEST_TLS=DIR uses the
 * tools/mica-certs directory DIR (made there if it has no ca.pem; ctest's
 * *_tls entries get one made once per run by a fixture), MICA_TEST_TLS=1 a
 * directory made once per process under tu_tmpdir(). NULL when unset, ""
 * or "0". */
const char *cl_env_tls_dir(void);

/* The cluster suite on S3 (docs/testing.md): true when MICA_TEST_S3 is set
 * and not "" or "0"; ctest's *_s3 entries set it. */
bool cl_env_s3(void);

/* Starts a master and o->tservers tablet servers on a new data root and
 * waits until every server is live at the master. On failure everything
 * started is killed and the error names the process and its log. Caller
 * frees with cl_free(). */
mica_err *cl_start(const cl_options *o, cluster **out);

/* Stops every process still running (SIGTERM, then SIGKILL after 10 s) and
 * frees. Accepts NULL. */
void cl_free(cluster *c);

/* A suite's init: cl_start() into *c; on failure prints why and returns 1
 * (CUnit then fails the suite), else 0. */
int cl_suite_start(const cl_options *o, cluster **c);
/* A suite's clean-up: cl_free(*c), *c = NULL; returns 0. */
int cl_suite_stop(cluster **c);

/* The --data-dir of the cluster's processes (an s3:// root when
 * opt.s3), and the env that reads it (owned by the cluster). */
const char *cl_data_root(const cluster *c);
/* True when one of the master's events (ListEvents) has `part` in its
 * text. */
bool cl_has_event(cluster *c, const char *part);
/* True when a file in the cluster's log directory (<root>/logs) holds
 * `text`: what a test that no secret is logged asks. */
bool cl_logs_contain(const cluster *c, const char *text);
/* How many times `text` occurs in the cluster's process logs. */
size_t cl_logs_count(const cluster *c, const char *text);
env *cl_data_env(const cluster *c);
/* The local directory of the logs (logs/), the secret and, on S3, the
 * shared WAL directory (wal/): the data root itself on POSIX. */
const char *cl_local_dir(const cluster *c);
/* The local directory of the tablet servers' commit logs (one
 * subdirectory per log): <root>/logs on POSIX, <wal-dir>/logs when the
 * data root is on S3 and the log in a local --wal-dir; NULL when the
 * commit log is not in a local directory. */
const char *cl_commit_log_dir(const cluster *c);
/* The TLS files clients of this cluster need (NULL when plaintext): ca
 * is the CA file. */
const rpc_tls *cl_tls(const cluster *c);
const char *cl_master_address(const cluster *c);
/* The master's HTTP status server (status page, /api/..., /metrics). */
const char *cl_master_http_address(const cluster *c);
int cl_tserver_count(const cluster *c); /* slots, running or not */
/* The current address of server slot i ("" while it is not running). */
const char *cl_tserver_address(const cluster *c, int i);
bool cl_tserver_running(const cluster *c, int i);
/* The slot of the running server at `address`, or -1. */
int cl_tserver_slot(const cluster *c, const char *address);
/* The server id the master gave slot i's current process (0 = unknown). */
uint64_t cl_tserver_id(cluster *c, int i);
/* The pid of slot i's process, or of the master; 0 when not running. For
 * signals a test sends itself (SIGSTOP to freeze a server). */
pid_t cl_tserver_pid(const cluster *c, int i);
pid_t cl_master_pid(const cluster *c);

/* Slot i's local "machine" directory (opt.s3_wal): every local path that
 * server uses (its --cache-dir) is under it. */
void cl_tserver_machine_dir(const cluster *c, int i, char *out, size_t n);

/* SIGKILL, then reap. */
mica_err *cl_kill_tserver(cluster *c, int i);
mica_err *cl_kill_master(cluster *c);
/* SIGTERM and wait up to 10 s; INTERNAL unless the exit status was 0. */
mica_err *cl_stop_tserver(cluster *c, int i);
mica_err *cl_stop_master(cluster *c);
/* Starts slot i again (a new process, new port, same data root) and waits
 * until it is live at the master. */
mica_err *cl_restart_tserver(cluster *c, int i);
/* Starts the master again on its previous address and data root; waits
 * only until it answers (servers re-register on their own). */
mica_err *cl_restart_master(cluster *c);
/* Adds a new tablet server slot, started and registered; *slot gets its
 * index. */
mica_err *cl_add_tserver(cluster *c, int *slot);

/* Waits until the master lists exactly the running tablet servers as live
 * (every running slot registered, none of them suspect). */
mica_err *cl_wait_registered(cluster *c, int timeout_ms);

/* The shared channel to the master (a restart installs a new one; an old
 * one stays valid, pointing at the old address, until cl_free) and to any
 * address (kept until cl_free). */
rpc_channel *cl_master_channel(cluster *c);
rpc_channel *cl_channel(cluster *c, const char *address);

/* A unary call of `m` to the master. NULL when the transport succeeded and
 * the response's Status is OK; otherwise the error (transport or Status).
 * *resp (may be NULL) receives the response whenever one arrived, even with
 * a non-OK Status; caller frees with rpc_msg_free(). */
mica_err *cl_call_master(cluster *c, const rpc_method *m,
                         const void *req, int64_t timeout_ms,
                         void **resp);
/* The same call to `address` (a tablet server's, say) on its shared
 * channel; UNAVAILABLE when no channel can be made. */
mica_err *cl_call(cluster *c, const char *address, const rpc_method *m,
                  const void *req, int64_t timeout_ms, void **resp);

/* The error a response message's Status carries (NULL for OK). Caller
 * frees. */
mica_err *cl_response_err(const void *resp);

/* Monotonic milliseconds, for deadlines in tests. */
uint64_t cl_now_ms(void);
void cl_sleep_ms(uint64_t ms);

#endif
