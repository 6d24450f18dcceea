/* proc: fork + exec of test processes, their readiness waits, and the
 * guard that kills every child still running when the test ends.
 *
 * The guard keeps the pids in a fixed array (`g_kids`) so the fatal-signal
 * handler only reads plain integers. Everything the child needs (argv,
 * environment, paths) is built before fork: a test program may have
 * threads, and between fork and exec only async-signal-safe calls are
 * allowed. */
#include "tests/harness/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/harness/testutil.h"

extern char **environ;

#define MAX_KIDS 128

struct th_proc {
  char *name;
  pid_t pid;   /* 0 once reaped */
  int status;  /* wait status once reaped, -1 before */
  char *out_path, *err_path; /* NULL = /dev/null */
  uint64_t out_start, err_start; /* their sizes when the process started */
};

/* ---- the guard ---- */

static volatile pid_t g_kids[MAX_KIDS];
static pthread_mutex_t g_kids_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_guard;

static void kill_all_kids(void) {
  for (int i = 0; i < MAX_KIDS; i++)
    if (g_kids[i] > 0) kill(g_kids[i], SIGKILL);
}

static void on_fatal(int sig) {
  kill_all_kids();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_guard(void) {
  pthread_mutex_lock(&g_kids_mu);
  if (!g_guard) {
    g_guard = true;
    atexit(kill_all_kids);
    static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL,
                               SIGFPE,  SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
      signal(sigs[i], on_fatal);
    signal(SIGPIPE, SIG_IGN);
  }
  pthread_mutex_unlock(&g_kids_mu);
}

static bool track(pid_t pid) {
  pthread_mutex_lock(&g_kids_mu);
  bool ok = false;
  for (int i = 0; i < MAX_KIDS && !ok; i++)
    if (g_kids[i] == 0) {
      g_kids[i] = pid;
      ok = true;
    }
  pthread_mutex_unlock(&g_kids_mu);
  return ok;
}

static void untrack(pid_t pid) {
  pthread_mutex_lock(&g_kids_mu);
  for (int i = 0; i < MAX_KIDS; i++)
    if (g_kids[i] == pid) g_kids[i] = 0;
  pthread_mutex_unlock(&g_kids_mu);
}

/* ---- small helpers ---- */

uint64_t th_now_ms(void) { return env_now_micros(env_posix()) / 1000; }

void th_sleep_ms(uint64_t ms) { env_sleep_micros(env_posix(), ms * 1000); }

int th_exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool th_sanitized(void) {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

mica_err *th_bin(const char *prog, char *path, size_t n) {
  const char *dir = getenv("MICA_BIN_DIR");
  if (dir == NULL || dir[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "MICA_BIN_DIR is not set");
  if ((size_t)snprintf(path, n, "%s/%s", dir, prog) >= n)
    return err_new(MICA_INVALID_ARGUMENT, "path of %s too long", prog);
  if (access(path, X_OK) != 0)
    return err_new(MICA_NOT_FOUND, "%s: %s", path, strerror(errno));
  return NULL;
}

mica_err *th_free_port(int *port) {
  *port = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return err_new(MICA_IO_ERROR, "socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  mica_err *err = NULL;
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &al) != 0)
    err = err_new(MICA_IO_ERROR, "bind 127.0.0.1:0: %s", strerror(errno));
  else
    *port = ntohs(a.sin_port);
  close(fd);
  return err;
}

static uint64_t size_of(const char *path) {
  uint64_t n = 0;
  if (path != NULL && env_exists(env_posix(), path))
    err_free(env_file_size(env_posix(), path, &n));
  return n;
}

/* The environment for the child: ours with `edits` applied. Caller frees
 * the array (the strings are ours or the edits'). */
static char **child_env(const char *const *edits) {
  size_t n = 0, k = 0;
  while (environ[n]) n++;
  for (const char *const *e = edits; e && *e; e++) k++;
  char **v = xcalloc(n + k + 1, sizeof(*v));
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    bool replaced = false;
    for (const char *const *e = edits; e && *e && !replaced; e++) {
      size_t name = strcspn(*e, "=");
      replaced = strncmp(environ[i], *e, name) == 0 && environ[i][name] == '=';
    }
    if (!replaced) v[m++] = environ[i];
  }
  for (const char *const *e = edits; e && *e; e++)
    if (strchr(*e, '=') != NULL) v[m++] = (char *)*e;
  v[m] = NULL;
  return v;
}

/* Opens `path` (NULL = /dev/null) onto `fd` in the child. */
static int redirect(const char *path, int flags, int fd) {
  int f = open(path ? path : "/dev/null", flags, 0644);
  if (f < 0) return -1;
  if (f != fd) {
    if (dup2(f, fd) < 0) return -1;
    close(f);
  }
  return 0;
}

static void child_fail(const char *what, const char *arg) {
  /* write(2) only: we are between fork and exec. */
  const char *msg = strerror(errno);
  if (write(2, what, strlen(what)) < 0 || write(2, " ", 1) < 0 ||
      write(2, arg, strlen(arg)) < 0 || write(2, ": ", 2) < 0 ||
      write(2, msg, strlen(msg)) < 0 || write(2, "\n", 1) < 0) {
    /* nowhere left to say it */
  }
  _exit(127);
}

/* ---- one process ---- */

mica_err *th_proc_start(const th_spawn *s, th_proc **out) {
  *out = NULL;
  if (s->name == NULL || s->argv == NULL || s->argv[0] == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "th_proc_start: a name and argv "
                   "are required");
  install_guard();
  th_proc *p = xcalloc(1, sizeof(*p));
  p->name = xstrdup(s->name);
  p->status = -1;
  const char *err_to = s->err_path ? s->err_path : s->out_path;
  p->out_path = s->out_path ? xstrdup(s->out_path) : NULL;
  p->err_path = err_to ? xstrdup(err_to) : NULL;
  p->out_start = size_of(p->out_path);
  p->err_start = size_of(p->err_path);
  char **envp = child_env(s->env);
  bool search = strchr(s->argv[0], '/') == NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    mica_err *err = err_new(MICA_INTERNAL, "fork %s: %s", s->name,
                            strerror(errno));
    free(envp);
    th_proc_free(p);
    return err;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    /* An ignored signal stays ignored across exec: give the program the
     * default a shell would. */
    signal(SIGPIPE, SIG_DFL);
    /* stderr first, so that later failures can be reported there; given
     * descriptors before any redirection can reuse their numbers. */
    int out_fd = s->out_fd > 0 ? fcntl(s->out_fd, F_DUPFD_CLOEXEC, 3) : -1;
    int err_fd = s->err_fd > 0 ? fcntl(s->err_fd, F_DUPFD_CLOEXEC, 3) : -1;
    if (err_fd >= 0 ? dup2(err_fd, 2) < 0
                    : redirect(err_to, O_WRONLY | O_CREAT | O_APPEND, 2) != 0)
      _exit(127);
    if (redirect(s->in_path, O_RDONLY, 0) != 0)
      child_fail("stdin", s->in_path);
    if (out_fd >= 0 ? dup2(out_fd, 1) < 0
                    : redirect(s->out_path, O_WRONLY | O_CREAT | O_APPEND, 1) != 0)
      child_fail("stdout", s->out_path ? s->out_path : "/dev/null");
    if (s->cwd != NULL && chdir(s->cwd) != 0) child_fail("chdir", s->cwd);
    if (s->pre_exec != NULL && s->pre_exec(s->pre_exec_arg) != 0) _exit(127);
    if (search)
      execvpe(s->argv[0], (char *const *)s->argv, envp);
    else
      execve(s->argv[0], (char *const *)s->argv, envp);
    child_fail("exec", s->argv[0]);
  }
  free(envp);
  p->pid = pid;
  if (!track(pid)) {
    th_proc_free(p);
    return err_new(MICA_RESOURCE_EXHAUSTED, "more than %d test processes",
                   MAX_KIDS);
  }
  *out = p;
  return NULL;
}

const char *th_proc_name(const th_proc *p) { return p->name; }
pid_t th_proc_pid(const th_proc *p) { return p->pid; }
int th_proc_status(const th_proc *p) { return p->status; }

/* Reaps the process if it has exited (waiting up to `block` for it). */
static bool reap(th_proc *p, bool block) {
  if (p->pid == 0) return true;
  int st;
  pid_t r;
  do {
    r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == p->pid || (r < 0 && errno == ECHILD)) {
    p->status = r == p->pid ? st : -1;
    untrack(p->pid);
    p->pid = 0;
    return true;
  }
  return false;
}

bool th_proc_running(th_proc *p) { return !reap(p, false); }

void th_proc_free(th_proc *p) {
  if (p == NULL) return;
  if (p->pid > 0) {
    kill(p->pid, SIGKILL);
    reap(p, true);
  }
  free(p->name);
  free(p->out_path);
  free(p->err_path);
  free(p);
}

mica_err *th_proc_signal(th_proc *p, int sig) {
  if (!th_proc_running(p))
    return err_new(MICA_UNAVAILABLE, "%s has exited (status %d)", p->name,
                   p->status);
  if (kill(p->pid, sig) != 0)
    return err_new(MICA_INTERNAL, "kill %s: %s", p->name, strerror(errno));
  return NULL;
}

mica_err *th_proc_kill(th_proc *p) {
  if (p->pid > 0) {
    kill(p->pid, SIGKILL);
    reap(p, true);
  }
  return NULL;
}

mica_err *th_proc_wait_exit(th_proc *p, int timeout_ms, int *status) {
  uint64_t until = th_now_ms() + (uint64_t)timeout_ms;
  while (!reap(p, false)) {
    if (th_now_ms() > until) {
      if (status) *status = -1;
      return err_new(MICA_DEADLINE_EXCEEDED, "%s did not exit within %d ms",
                     p->name, timeout_ms);
    }
    th_sleep_ms(5);
  }
  if (status) *status = p->status;
  return NULL;
}

mica_err *th_proc_stop(th_proc *p, int sig, int timeout_ms, int *status) {
  if (th_proc_running(p)) kill(p->pid, sig);
  mica_err *err = th_proc_wait_exit(p, timeout_ms, status);
  if (err == NULL) return NULL;
  err_free(err);
  th_proc_kill(p);
  if (status) *status = p->status;
  return err_new(MICA_DEADLINE_EXCEEDED, "%s did not exit within %d ms of "
                 "signal %d; killed", p->name, timeout_ms, sig);
}

mica_err *th_proc_stop_clean(th_proc *p, int sig, int timeout_ms) {
  int st;
  mica_err *err = th_proc_stop(p, sig, timeout_ms, &st);
  if (err) return err;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return err_new(MICA_INTERNAL, "%s did not exit cleanly on signal %d "
                   "(status %d)", p->name, sig, st);
  return NULL;
}

/* The last non-empty line of `path` (from its last 4 KiB), "" if none. */
static void last_line(const char *path, char *line, size_t n) {
  line[0] = '\0';
  if (path == NULL) return;
  env_reader *r;
  if (env_open_reader(env_posix(), path, &r) != NULL) return;
  uint64_t size = env_reader_size(r), off = size > 4096 ? size - 4096 : 0;
  char tail[4097];
  size_t got = 0;
  mica_err *err = env_read(r, off, (size_t)(size - off), tail, &got);
  env_reader_close(r);
  if (err) {
    err_free(err);
    return;
  }
  while (got && (tail[got - 1] == '\n' || tail[got - 1] == '\r')) got--;
  tail[got] = '\0';
  const char *start = strrchr(tail, '\n');
  start = start ? start + 1 : tail;
  size_t len = strlen(start) < n - 1 ? strlen(start) : n - 1;
  memcpy(line, start, len);
  line[len] = '\0';
}

mica_err *th_proc_wait(th_proc *p, bool (*ready)(void *arg), void *arg,
                       const char *what, int timeout_ms) {
  uint64_t until = th_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    if (ready(arg)) return NULL;
    if (!th_proc_running(p)) {
      /* It may have become ready just before exiting. */
      if (ready(arg)) return NULL;
      char line[512];
      last_line(p->err_path, line, sizeof(line));
      return err_new(MICA_UNAVAILABLE, "%s exited (status %d) before %s; "
                     "its last words: \"%s\" (log %s)", p->name, p->status,
                     what, line, p->err_path ? p->err_path : "none");
    }
    if (th_now_ms() > until)
      return err_new(MICA_DEADLINE_EXCEEDED, "%s: no %s within %d ms (log %s)",
                     p->name, what, timeout_ms,
                     p->err_path ? p->err_path : "none");
    th_sleep_ms(10);
  }
}

typedef struct file_wait {
  const char *path;
  char *line;
} file_wait;

static bool file_has_line(void *arg) {
  file_wait *w = arg;
  buf b = BUF_INIT;
  mica_err *err = env_read_file(env_posix(), w->path, 1 << 16, &b);
  bool ok = false;
  if (err == NULL) {
    uint8_t *nl = b.len ? memchr(b.data, '\n', b.len) : NULL;
    if (nl != NULL) {
      size_t len = (size_t)(nl - b.data);
      while (len && (b.data[len - 1] == '\r' || b.data[len - 1] == ' ')) len--;
      w->line = xmemdup(b.data, len + 1);
      w->line[len] = '\0';
      ok = true;
    }
  }
  err_free(err);
  buf_free(&b);
  return ok;
}

mica_err *th_proc_wait_file(th_proc *p, const char *path, int timeout_ms,
                            char **line) {
  if (line) *line = NULL;
  file_wait w = {path, NULL};
  char what[4200];
  snprintf(what, sizeof(what), "line in %s", path);
  mica_err *err = th_proc_wait(p, file_has_line, &w, what, timeout_ms);
  if (err == NULL && line) *line = w.line;
  else free(w.line);
  return err;
}

typedef struct line_wait {
  const char *needle;
  const char *paths[2];
  uint64_t starts[2];
} line_wait;

static bool file_has(const char *path, uint64_t start, const char *needle) {
  env_reader *r;
  mica_err *err = env_open_reader(env_posix(), path, &r);
  if (err) {
    err_free(err);
    return false;
  }
  uint64_t size = env_reader_size(r);
  bool found = false;
  if (size > start) {
    size_t n = (size_t)(size - start), got = 0;
    char *text = xmalloc(n + 1);
    err = env_read(r, start, n, text, &got);
    text[got] = '\0';
    /* Only complete lines count. */
    char *end = memrchr(text, '\n', got);
    if (err == NULL && end != NULL) {
      *end = '\0';
      found = strstr(text, needle) != NULL;
    }
    err_free(err);
    free(text);
  }
  env_reader_close(r);
  return found;
}

static bool log_has_line(void *arg) {
  line_wait *w = arg;
  for (int i = 0; i < 2; i++)
    if (w->paths[i] && file_has(w->paths[i], w->starts[i], w->needle))
      return true;
  return false;
}

mica_err *th_proc_wait_line(th_proc *p, const char *needle, int timeout_ms) {
  if (p->out_path == NULL && p->err_path == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "%s writes no log to wait on",
                   p->name);
  line_wait w = {needle, {p->out_path, NULL}, {p->out_start, 0}};
  if (p->err_path && (!p->out_path || strcmp(p->err_path, p->out_path) != 0)) {
    w.paths[1] = p->err_path;
    w.starts[1] = p->err_start;
  }
  char what[512];
  snprintf(what, sizeof(what), "line containing \"%s\"", needle);
  return th_proc_wait(p, log_has_line, &w, what, timeout_ms);
}

typedef struct port_wait {
  const char *host;
  int port;
} port_wait;

static bool port_accepts(void *arg) {
  port_wait *w = arg;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)w->port)};
  if (inet_pton(AF_INET, w->host, &a.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

mica_err *th_proc_wait_port(th_proc *p, const char *host, int port,
                            int timeout_ms) {
  struct in_addr probe;
  if (inet_pton(AF_INET, host, &probe) != 1 || port <= 0 || port > 65535)
    return err_new(MICA_INVALID_ARGUMENT, "not an IPv4 address and port: "
                   "%s:%d", host, port);
  port_wait w = {host, port};
  char what[128];
  snprintf(what, sizeof(what), "connection to %s:%d", host, port);
  return th_proc_wait(p, port_accepts, &w, what, timeout_ms);
}

/* ---- run to completion ---- */

static void slurp(const char *path, buf *b) {
  err_free(env_read_file(env_posix(), path, (size_t)1 << 30, b));
  buf_push(b, 0);
  b->len--;
}

mica_err *th_run(const char *const *argv, const char *const *env_edits,
                 const char *in, int timeout_ms, th_result *r) {
  memset(r, 0, sizeof(*r));
  r->rc = -1;
  if (timeout_ms <= 0) timeout_ms = 120000;
  char in_path[4096], out_path[4096], err_path[4096];
  int fi = tu_mkstemp("run-in-", in_path, sizeof(in_path));
  int fo = tu_mkstemp("run-out-", out_path, sizeof(out_path));
  int fe = tu_mkstemp("run-err-", err_path, sizeof(err_path));
  mica_err *err = NULL;
  if (fi < 0 || fo < 0 || fe < 0)
    err = err_new(MICA_IO_ERROR, "temporary files for %s: %s", argv[0],
                  strerror(errno));
  if (fi >= 0) close(fi);
  if (fo >= 0) close(fo);
  if (fe >= 0) close(fe);
  if (err == NULL && in != NULL)
    err = env_write_file_atomic(env_posix(), in_path, slice_from_str(in));
  th_proc *p = NULL;
  if (err == NULL) {
    th_spawn s = {.name = argv[0], .argv = argv, .env = env_edits,
                  .in_path = in_path, .out_path = out_path,
                  .err_path = err_path};
    err = th_proc_start(&s, &p);
  }
  if (err == NULL) {
    int st;
    err = th_proc_wait_exit(p, timeout_ms, &st);
    if (err != NULL) {
      th_proc_kill(p);
      st = th_proc_status(p);
    }
    r->rc = th_exit_code(st);
    slurp(out_path, &r->out);
    slurp(err_path, &r->err);
  }
  th_proc_free(p);
  if (fi >= 0) err_free(env_remove(env_posix(), in_path));
  if (fo >= 0) err_free(env_remove(env_posix(), out_path));
  if (fe >= 0) err_free(env_remove(env_posix(), err_path));
  return err;
}

mica_err *th_run_shell(const char *cmd, const char *in, int timeout_ms,
                       th_result *r) {
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  return th_run(argv, NULL, in, timeout_ms, r);
}

void th_result_free(th_result *r) {
  buf_free(&r->out);
  buf_free(&r->err);
}

const char *th_out(const th_result *r) {
  return r->out.data ? (const char *)r->out.data : "";
}

const char *th_err(const th_result *r) {
  return r->err.data ? (const char *)r->err.data : "";
}
