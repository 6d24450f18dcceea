/* node: mica-master and mica-tserver processes for tests, and the `mica`
 * CLI, on top of the generic processes of proc.h.
 *
 * th_node_start() runs one server binary from $MICA_BIN_DIR on a data
 * directory, listening on 127.0.0.1:0 unless told otherwise, and returns
 * once the server has written its --address-file (both binaries write it
 * after they bind and start serving). Its files live in one log directory,
 * named after the node: <name>.log (stderr), <name>.out (stdout),
 * <name>.addr and, for a master, <name>.http (the HTTP address). Logs are
 * appended to across restarts of the same name.
 *
 * th_mica_cli() runs the `mica` command line and captures what it prints.
 *
 * Thread-safety: as proc.h (one thread per node at a time). */
#ifndef MICA_TESTS_HARNESS_NODE_H
#define MICA_TESTS_HARNESS_NODE_H

#include <stdbool.h>

#include "common/err.h"
#include "tests/harness/proc.h"

typedef struct th_node_opts {
  const char *prog;     /* "mica-master" or "mica-tserver" */
  const char *name;     /* "master", "tserver-2": names the node's files */
  const char *data_dir; /* --data-dir */
  const char *log_dir;  /* where the node's files go (must exist) */
  const char *listen;   /* --listen; NULL = 127.0.0.1:0 */
  const char *master;   /* --master (tablet servers); NULL = not given */
  bool http;            /* --http-address-file, read into http_address */
  /* More flags, each NULL-terminated (either may be NULL): a caller's
   * computed flags and its user's extra flags. */
  const char *const *args;
  const char *const *more_args;
  int timeout_ms;       /* for the address file; 0 = 30000 */
} th_node_opts;

typedef struct th_node {
  th_proc *proc;      /* NULL before the first start */
  char *address;      /* the RPC address it served on, kept after it
                         stops; "" until it serves */
  char *http_address; /* the HTTP address when opts.http, else "" */
  char *log;          /* path of its stderr log */
} th_node;

/* Starts the node described by `o` into `n`, which must be zeroed or
 * stopped (a previous process of `n` is freed first). On failure the
 * process is killed and the error names the node and its log. */
mica_err *th_node_start(const th_node_opts *o, th_node *n);

/* True while the node's process runs (reaping it once it exited). */
bool th_node_running(th_node *n);
pid_t th_node_pid(th_node *n);

/* SIGKILL and reap. */
mica_err *th_node_kill(th_node *n);
/* SIGTERM; INTERNAL unless it exits with status 0 within `timeout_ms`
 * (0 = 10 s), after which it is killed. */
mica_err *th_node_stop(th_node *n, int timeout_ms);
/* Sends `sig` and waits for the exit; *status gets the wait status. */
mica_err *th_node_signal_wait(th_node *n, int sig, int timeout_ms,
                              int *status);

/* Kills the process if it runs and frees what `n` holds; `n` can be
 * started again. */
void th_node_clear(th_node *n);

/* Runs `mica` from $MICA_BIN_DIR: `--master M` first when `master` is not
 * NULL, then `args` (NULL-terminated), `in` (may be NULL) on stdin, within
 * `timeout_ms` (0 = 120 s). Caller frees *r with th_result_free(). */
mica_err *th_mica_cli(const char *master, const char *in,
                      const char *const *args, int timeout_ms, th_result *r);

/* Runs `program` from $MICA_BIN_DIR with `args` (NULL-terminated) and
 * tells whether it refused to start as expected: it exited non-zero
 * within 30 s with `message` in its stderr. When not, what it did is
 * printed to stderr. For flag checks done before anything is bound. */
bool th_start_refused(const char *program, const char *const *args,
                      const char *message);

#endif
