/* proc: child processes for tests, whatever program they run.
 *
 * Every process a test starts (a mica-master, a mica-tserver, the `mica`
 * CLI, and later a ZooKeeper, an S3 server or a node inside a network
 * namespace) goes through th_proc_start(): argv, extra environment, where
 * stdin, stdout and stderr go, and an optional hook that runs in the child
 * before exec. The test then waits for what says the process is ready (a
 * file it writes, a line in its log, a port that accepts), signals it,
 * stops it (a signal, then SIGKILL after a deadline), kills it (-9) or
 * waits for it to exit. th_run() runs a program to completion and captures
 * its status, stdout and stderr.
 *
 * No child outlives the test. Each child gets PR_SET_PDEATHSIG(SIGKILL),
 * so it dies with the thread that started it; on top of that an atexit
 * handler and handlers for fatal signals (SIGABRT, SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGTERM, SIGINT) SIGKILL every child still running, also when a
 * failed CUnit assertion ends the program early. SIGPIPE is ignored once
 * the first child starts (a test writing to a dead child gets EPIPE); the
 * children themselves start with SIGPIPE at its default, as from a shell.
 *
 * Waits fail early, with the process's name, exit status and the last line
 * of its stderr, when the process exits before it is ready.
 *
 * Thread-safety: start processes from a thread that lives until they are
 * stopped (the main thread in practice: PR_SET_PDEATHSIG fires when the
 * starting thread exits). A th_proc is used by one thread at a time;
 * different th_procs and th_run() may be used from different threads. */
#ifndef MICA_TESTS_HARNESS_PROC_H
#define MICA_TESTS_HARNESS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/slice.h"

typedef struct th_proc th_proc;

typedef struct th_spawn {
  const char *name;        /* for messages ("master", "zk-1"); required */
  const char *const *argv; /* NULL-terminated; argv[0] is the program, a
                              path or a name looked up in PATH */
  /* "NAME=value" entries set on top of the test's environment, or "NAME"
   * to remove a variable; NULL-terminated, may be NULL. */
  const char *const *env;
  const char *in_path;  /* stdin; NULL = /dev/null */
  const char *out_path; /* stdout, appended to; NULL = /dev/null */
  const char *err_path; /* stderr, appended to; NULL = out_path's file, or
                           /dev/null when out_path is NULL too */
  /* A descriptor of the test (a pipe's write end, say) to use as the
   * child's stdout or stderr instead of out_path / err_path; 0 = not
   * given. The test keeps its copy and closes it when it likes; its other
   * pipe ends should be close-on-exec (pipe2 O_CLOEXEC), or the child
   * holds them open too. */
  int out_fd, err_fd;
  const char *cwd;      /* NULL = the test's */
  /* Runs in the child after the redirections, before exec (for example to
   * enter a namespace); only async-signal-safe calls. Non-zero makes the
   * child exit with status 127. May be NULL. */
  int (*pre_exec)(void *arg);
  void *pre_exec_arg;
} th_spawn;

/* Starts the process. INVALID_ARGUMENT without a name or argv; the exec
 * failing shows as the child exiting with status 127 (the reason on its
 * stderr). Caller frees with th_proc_free(). */
mica_err *th_proc_start(const th_spawn *s, th_proc **out);

/* Kills the process (SIGKILL) if it still runs, reaps it and frees.
 * Accepts NULL. */
void th_proc_free(th_proc *p);

const char *th_proc_name(const th_proc *p);
/* The pid while running, 0 once reaped. */
pid_t th_proc_pid(const th_proc *p);
/* Reaps the process if it has exited; false from then on. */
bool th_proc_running(th_proc *p);
/* The wait status (as from waitpid) once reaped, -1 before. */
int th_proc_status(const th_proc *p);

/* Sends `sig` (SIGSTOP, SIGCONT, SIGHUP...). UNAVAILABLE when the process
 * has exited. */
mica_err *th_proc_signal(th_proc *p, int sig);
/* SIGKILL and reap. No error when it had already exited. */
mica_err *th_proc_kill(th_proc *p);
/* Sends `sig` and waits up to `timeout_ms` for the exit; *status (may be
 * NULL) gets the wait status. On timeout the process is SIGKILLed and
 * reaped and the result is DEADLINE_EXCEEDED. No signal is sent to a
 * process that already exited. */
mica_err *th_proc_stop(th_proc *p, int sig, int timeout_ms, int *status);
/* Waits up to `timeout_ms` for the process to exit on its own; *status
 * (may be NULL) gets the wait status. DEADLINE_EXCEEDED leaves it
 * running. */
mica_err *th_proc_wait_exit(th_proc *p, int timeout_ms, int *status);
/* Like th_proc_stop(), but the exit must be status 0: INTERNAL naming the
 * status otherwise. */
mica_err *th_proc_stop_clean(th_proc *p, int sig, int timeout_ms);

/* Waits until `path` holds at least one complete line (the way a server
 * publishes its address) and returns that line without its newline in
 * *line (may be NULL; caller frees). */
mica_err *th_proc_wait_file(th_proc *p, const char *path, int timeout_ms,
                            char **line);
/* Waits until the process's stdout or stderr file has a line, written
 * since this process started, containing `needle`. INVALID_ARGUMENT when
 * both go to /dev/null. */
mica_err *th_proc_wait_line(th_proc *p, const char *needle, int timeout_ms);
/* Waits until a TCP connection to host:port succeeds. */
mica_err *th_proc_wait_port(th_proc *p, const char *host, int port,
                            int timeout_ms);
/* The general form: polls `ready` every 10 ms until it returns true,
 * failing early (UNAVAILABLE) when the process exits and with
 * DEADLINE_EXCEEDED naming `what` after `timeout_ms`. */
mica_err *th_proc_wait(th_proc *p, bool (*ready)(void *arg), void *arg,
                       const char *what, int timeout_ms);

/* ---- run to completion ---- */

typedef struct th_result {
  int rc;   /* exit code, or 128 + the signal that ended it */
  buf out;  /* stdout, NUL-terminated (the NUL not counted in len) */
  buf err;  /* stderr, likewise */
} th_result;

/* Runs argv (argv[0] a path or a name in PATH) with `in` (NULL = nothing)
 * on stdin and the environment edits `env_edits` (as th_spawn.env), and
 * waits up to `timeout_ms` (0 = 120 s). On timeout the process is killed
 * and the result is DEADLINE_EXCEEDED. *r is filled whenever the process ran;
 * caller frees with th_result_free(). */
mica_err *th_run(const char *const *argv, const char *const *env_edits,
                 const char *in, int timeout_ms, th_result *r);
/* th_run of `/bin/sh -c cmd`. */
mica_err *th_run_shell(const char *cmd, const char *in, int timeout_ms,
                       th_result *r);
void th_result_free(th_result *r);
/* The captured text, "" when there was none. */
const char *th_out(const th_result *r);
const char *th_err(const th_result *r);

/* ---- helpers for what processes need ---- */

/* $MICA_BIN_DIR/`prog` into `path` (`n` bytes). INVALID_ARGUMENT when
 * MICA_BIN_DIR is not set, NOT_FOUND when the file is not executable. */
mica_err *th_bin(const char *prog, char *path, size_t n);

/* A TCP port on 127.0.0.1 that was free a moment ago, for programs that
 * cannot listen on port 0 and report the port they got (a ZooKeeper
 * configuration file, say). Another process can take it before the
 * program binds: prefer port 0 and an address file where the program
 * allows it. */
mica_err *th_free_port(int *port);

/* The exit code of a wait status: WEXITSTATUS, or 128 + the signal. */
int th_exit_code(int status);

/* True when the build has AddressSanitizer (tests scale sizes down). */
bool th_sanitized(void);

/* Monotonic milliseconds, for deadlines in tests. */
uint64_t th_now_ms(void);
void th_sleep_ms(uint64_t ms);

#endif
