/* test_harness: the process harness itself (tests/harness/proc.h and
 * node.h), since every other integration test stands on it.
 *
 * Checked: th_run captures stdout, stderr and the exit code, feeds stdin,
 * applies and removes environment variables, reports a death by signal as
 * 128 + the signal and kills a program that outlives its deadline; waits
 * for a file, a log line and a port succeed when the process gets ready
 * and fail early, naming the process and quoting its last stderr line,
 * when it exits first; stop escalates to SIGKILL for a process that
 * ignores SIGTERM; kill -9 and signals report what happened; a pre-exec
 * hook runs in the child and can refuse the exec; and a test program that
 * aborts still takes its children with it (the guard). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/harness/node.h"
#include "tests/harness/proc.h"
#include "tests/harness/testutil.h"

#define SH(...) ((const char *const[]){"/bin/sh", "-c", __VA_ARGS__, NULL})

static void test_run_captures(void) {
  th_result r;
  TU_OK(th_run(SH("echo out; echo err >&2; exit 3"), NULL, NULL, 0, &r));
  CU_ASSERT_EQUAL(r.rc, 3);
  CU_ASSERT_STRING_EQUAL(th_out(&r), "out\n");
  CU_ASSERT_STRING_EQUAL(th_err(&r), "err\n");
  th_result_free(&r);

  /* stdin, and nothing on stdin when none is given. */
  TU_OK(th_run(SH("tr a-z A-Z"), NULL, "hello\nworld\n", 0, &r));
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_STRING_EQUAL(th_out(&r), "HELLO\nWORLD\n");
  th_result_free(&r);
  TU_OK(th_run(SH("wc -c"), NULL, NULL, 0, &r));
  CU_ASSERT_STRING_EQUAL(th_out(&r), "0\n");
  th_result_free(&r);

  /* A program name is looked up in PATH. */
  const char *const echo[] = {"echo", "a b", NULL};
  TU_OK(th_run(echo, NULL, NULL, 0, &r));
  CU_ASSERT_STRING_EQUAL(th_out(&r), "a b\n");
  th_result_free(&r);

  /* A program that cannot be run: exit 127 with the reason. */
  const char *const none[] = {"/nonexistent/prog", NULL};
  TU_OK(th_run(none, NULL, NULL, 0, &r));
  CU_ASSERT_EQUAL(r.rc, 127);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "/nonexistent/prog"));
  th_result_free(&r);
}

static void test_run_env(void) {
  setenv("TH_UNSET_ME", "present", 1);
  const char *const edits[] = {"TH_NEW=42", "TH_UNSET_ME", "HOME=/elsewhere",
                               NULL};
  th_result r;
  TU_OK(th_run(SH("echo \"$TH_NEW ${TH_UNSET_ME-gone} $HOME\""), edits, NULL,
               0, &r));
  CU_ASSERT_STRING_EQUAL(th_out(&r), "42 gone /elsewhere\n");
  th_result_free(&r);
  /* Our own environment is untouched. */
  CU_ASSERT_STRING_EQUAL(getenv("TH_UNSET_ME"), "present");
  CU_ASSERT_PTR_NULL(getenv("TH_NEW"));
  unsetenv("TH_UNSET_ME");
}

static void test_run_signal_and_timeout(void) {
  th_result r;
  TU_OK(th_run(SH("kill -SEGV $$"), NULL, NULL, 0, &r));
  CU_ASSERT_EQUAL(r.rc, 128 + SIGSEGV);
  th_result_free(&r);

  uint64_t t0 = th_now_ms();
  TU_ERR(th_run(SH("echo started; exec sleep 30"), NULL, NULL, 300, &r),
         MICA_DEADLINE_EXCEEDED);
  CU_ASSERT(th_now_ms() - t0 < 10000);
  CU_ASSERT_EQUAL(r.rc, 128 + SIGKILL);
  CU_ASSERT_STRING_EQUAL(th_out(&r), "started\n");
  th_result_free(&r);
}

static th_proc *start_sh(const char *name, const char *script,
                         const char *log) {
  th_spawn s = {.name = name, .argv = SH(script), .out_path = log};
  th_proc *p = NULL;
  TU_OK(th_proc_start(&s, &p));
  return p;
}

static void test_wait_file_and_line(void) {
  const char *dir = tu_tmpdir();
  char file[4096], log[4096];
  snprintf(file, sizeof file, "%s/ready", dir);
  snprintf(log, sizeof log, "%s/a.log", dir);
  char script[9000];
  /* The file appears in two steps: a partial line must not count. */
  snprintf(script, sizeof script,
           "sleep 0.2; printf 'host:' > %s; sleep 0.2; echo 123 >> %s; "
           "echo 'server is up'; exec sleep 30", file, file);
  th_proc *p = start_sh("writer", script, log);
  CU_ASSERT(th_proc_pid(p) > 0);
  char *line = NULL;
  TU_OK(th_proc_wait_file(p, file, 10000, &line));
  CU_ASSERT_STRING_EQUAL(line, "host:123");
  free(line);
  TU_OK(th_proc_wait_line(p, "is up", 10000));
  /* A line that never comes. */
  TU_ERR(th_proc_wait_line(p, "never", 100), MICA_DEADLINE_EXCEEDED);
  CU_ASSERT(th_proc_running(p));
  TU_OK(th_proc_kill(p));
  CU_ASSERT(!th_proc_running(p));
  CU_ASSERT(WIFSIGNALED(th_proc_status(p)));
  CU_ASSERT_EQUAL(WTERMSIG(th_proc_status(p)), SIGKILL);
  th_proc_free(p);

  /* A second process on the same log: only its own lines count. */
  p = start_sh("second", "exec sleep 30", log);
  TU_ERR(th_proc_wait_line(p, "is up", 200), MICA_DEADLINE_EXCEEDED);
  th_proc_free(p);
}

static void test_wait_fails_early(void) {
  const char *dir = tu_tmpdir();
  char file[4096], log[4096];
  snprintf(file, sizeof file, "%s/never", dir);
  snprintf(log, sizeof log, "%s/b.log", dir);
  th_proc *p = start_sh("quitter", "echo 'bad config: port' >&2; exit 4", log);
  uint64_t t0 = th_now_ms();
  mica_err *err = th_proc_wait_file(p, file, 30000, NULL);
  CU_ASSERT(th_now_ms() - t0 < 10000);
  CU_ASSERT_EQUAL(err_code(err), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "quitter exited"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "bad config: port"));
  err_free(err);
  CU_ASSERT(WIFEXITED(th_proc_status(p)) && WEXITSTATUS(th_proc_status(p)) == 4);
  /* Signals to a process that is gone are refused, kill is a no-op. */
  TU_ERR(th_proc_signal(p, SIGTERM), MICA_UNAVAILABLE);
  TU_OK(th_proc_kill(p));
  th_proc_free(p);

  /* No log to wait on. */
  th_spawn s = {.name = "silent", .argv = SH("exec sleep 30")};
  TU_OK(th_proc_start(&s, &p));
  TU_ERR(th_proc_wait_line(p, "x", 100), MICA_INVALID_ARGUMENT);
  th_proc_free(p);
  TU_ERR(th_proc_start(&(th_spawn){.name = NULL, .argv = SH("true")}, &p),
         MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(p);
}

static void test_stop_escalates(void) {
  const char *dir = tu_tmpdir();
  char log[4096];
  snprintf(log, sizeof log, "%s/c.log", dir);
  /* Ignores SIGTERM: stop must kill it after the deadline. */
  th_proc *p = start_sh("stubborn", "trap '' TERM; echo armed; "
                        "while :; do sleep 0.1; done", log);
  TU_OK(th_proc_wait_line(p, "armed", 10000));
  int st = 0;
  TU_ERR(th_proc_stop(p, SIGTERM, 300, &st), MICA_DEADLINE_EXCEEDED);
  CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  CU_ASSERT(!th_proc_running(p));
  th_proc_free(p);

  /* A clean exit on SIGTERM passes stop_clean; a non-zero one does not. */
  p = start_sh("polite", "trap 'exit 0' TERM; echo armed; "
               "while :; do sleep 0.1; done", log);
  TU_OK(th_proc_wait_line(p, "armed", 10000));
  TU_OK(th_proc_stop_clean(p, SIGTERM, 10000));
  th_proc_free(p);
  p = start_sh("grumpy", "trap 'exit 9' TERM; echo armed; "
               "while :; do sleep 0.1; done", log);
  TU_OK(th_proc_wait_line(p, "armed", 10000));
  mica_err *err = th_proc_stop_clean(p, SIGTERM, 10000);
  CU_ASSERT_EQUAL(err_code(err), MICA_INTERNAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "grumpy"));
  err_free(err);
  th_proc_free(p);

  /* SIGSTOP / SIGCONT: a stopped process is still running. */
  p = start_sh("sleeper", "exec sleep 30", NULL);
  TU_OK(th_proc_signal(p, SIGSTOP));
  CU_ASSERT(th_proc_running(p));
  TU_OK(th_proc_signal(p, SIGCONT));
  TU_ERR(th_proc_wait_exit(p, 100, &st), MICA_DEADLINE_EXCEEDED);
  th_proc_free(p);
}

/* A child writing into a pipe whose reader is gone dies of SIGPIPE, as
 * under a shell, although the test itself ignores SIGPIPE. */
static void test_pipe_and_sigpipe(void) {
  int fds[2];
  CU_ASSERT_FATAL(pipe2(fds, O_CLOEXEC) == 0);
  const char *const yes[] = {"yes", "mica", NULL};
  th_spawn s = {.name = "yes", .argv = yes, .out_fd = fds[1]};
  th_proc *p = NULL;
  TU_OK(th_proc_start(&s, &p));
  close(fds[1]);
  char line[5];
  CU_ASSERT_EQUAL(read(fds[0], line, 5), 5);
  CU_ASSERT_EQUAL(memcmp(line, "mica\n", 5), 0);
  close(fds[0]);
  int st = 0;
  TU_OK(th_proc_wait_exit(p, 10000, &st));
  CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
  th_proc_free(p);
}

static int refuse(void *arg) {
  (void)arg;
  return 1;
}

static int say_hi(void *arg) {
  const char *s = arg;
  return write(1, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : 1;
}

static void test_pre_exec_and_cwd(void) {
  const char *dir = tu_tmpdir();
  char log[4096];
  snprintf(log, sizeof log, "%s/d.log", dir);
  th_spawn s = {.name = "hook", .argv = SH("pwd"), .out_path = log,
                .cwd = dir, .pre_exec = say_hi, .pre_exec_arg = "hi\n"};
  th_proc *p = NULL;
  TU_OK(th_proc_start(&s, &p));
  int st;
  TU_OK(th_proc_wait_exit(p, 10000, &st));
  CU_ASSERT_EQUAL(th_exit_code(st), 0);
  th_proc_free(p);
  buf b = BUF_INIT;
  TU_OK(env_read_file(env_posix(), log, 1 << 16, &b));
  buf_push(&b, 0);
  char want[4200];
  snprintf(want, sizeof want, "hi\n%s\n", dir);
  CU_ASSERT_STRING_EQUAL((char *)b.data, want);
  buf_free(&b);

  s.pre_exec = refuse;
  TU_OK(th_proc_start(&s, &p));
  TU_OK(th_proc_wait_exit(p, 10000, &st));
  CU_ASSERT_EQUAL(th_exit_code(st), 127);
  th_proc_free(p);
}

static void test_wait_port(void) {
  int port = 0;
  TU_OK(th_free_port(&port));
  CU_ASSERT(port > 0 && port < 65536);
  char bin[4096];
  TU_OK(th_bin("mica-master", bin, sizeof bin));
  TU_ERR(th_bin("no-such-program", bin, sizeof bin), MICA_NOT_FOUND);
  TU_OK(th_bin("mica-master", bin, sizeof bin));
  const char *dir = tu_tmpdir();
  char listen[64], log[4096];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(log, sizeof log, "%s/master.log", dir);
  const char *const argv[] = {bin, "--data-dir", dir, "--listen", listen, NULL};
  th_spawn s = {.name = "master", .argv = argv, .err_path = log};
  th_proc *p = NULL;
  TU_OK(th_proc_start(&s, &p));
  TU_OK(th_proc_wait_port(p, "127.0.0.1", port, 30000));
  TU_ERR(th_proc_wait_port(p, "localhost", port, 100), MICA_INVALID_ARGUMENT);
  TU_OK(th_proc_stop_clean(p, SIGTERM, 10000));
  th_proc_free(p);
}

/* The mica-specific layer: a master node, restarted on its address. */
static void test_node(void) {
  const char *dir = tu_tmpdir();
  th_node n = {0};
  th_node_opts o = {.prog = "mica-master", .name = "m", .data_dir = dir,
                    .log_dir = dir, .http = true};
  TU_OK(th_node_start(&o, &n));
  CU_ASSERT(th_node_running(&n));
  CU_ASSERT(th_node_pid(&n) > 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(n.address, "127.0.0.1:"));
  CU_ASSERT_PTR_NOT_NULL(strstr(n.http_address, "127.0.0.1:"));
  CU_ASSERT_STRING_NOT_EQUAL(n.address, n.http_address);
  TU_OK(th_proc_wait_line(n.proc, "listening ", 10000));
  char *addr = strdup(n.address);
  TU_OK(th_node_kill(&n));
  CU_ASSERT(!th_node_running(&n));
  CU_ASSERT_EQUAL(th_node_pid(&n), 0);
  CU_ASSERT_STRING_EQUAL(n.address, addr); /* the last address is kept */
  o.listen = addr;
  mica_err *err = NULL;
  for (int i = 0; i < 50; i++) { /* the port can take a moment */
    err_free(err);
    err = th_node_start(&o, &n);
    if (err == NULL) break;
    th_sleep_ms(100);
  }
  TU_OK(err);
  CU_ASSERT_STRING_EQUAL(n.address, addr);
  TU_OK(th_node_stop(&n, 10000));
  th_node_clear(&n);
  free(addr);

  /* A node that cannot start names itself and its last words. */
  const char *const bad[] = {"--lease-ms", "soon", NULL};
  o.listen = NULL;
  o.args = bad;
  err = th_node_start(&o, &n);
  CU_ASSERT_EQUAL(err_code(err), MICA_UNAVAILABLE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "m exited"));
  err_free(err);
  CU_ASSERT(!th_node_running(&n));
  th_node_clear(&n);

  /* The CLI runner: no --master given, usage on stdout. */
  th_result r;
  const char *const help[] = {"--help", NULL};
  TU_OK(th_mica_cli(NULL, NULL, help, 0, &r));
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "usage: mica"));
  th_result_free(&r);
}

/* The guard: a test program that dies of abort() takes its children. */
static int orphan_main(const char *pidfile) {
  th_spawn s = {.name = "orphan", .argv = SH("exec sleep 60")};
  th_proc *p = NULL;
  mica_err *err = th_proc_start(&s, &p);
  if (err) return 1;
  char text[32];
  snprintf(text, sizeof text, "%d\n", (int)th_proc_pid(p));
  err = env_write_file_atomic(env_posix(), pidfile, slice_from_str(text));
  if (err) return 1;
  abort();
}

/* Gone: no such process, or a zombie waiting for init to reap it. */
static bool gone(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  buf b = BUF_INIT;
  mica_err *err = env_read_file(env_posix(), path, 4096, &b);
  bool dead = err != NULL;
  if (!dead) {
    buf_push(&b, 0);
    const char *end = strrchr((char *)b.data, ')');
    dead = end != NULL && end[1] == ' ' && end[2] == 'Z';
  }
  err_free(err);
  buf_free(&b);
  return dead;
}

static void test_guard(void) {
  char self[4096], pidfile[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  CU_ASSERT_FATAL(n > 0);
  self[n] = '\0';
  snprintf(pidfile, sizeof pidfile, "%s/orphan.pid", tu_tmpdir());
  const char *const argv[] = {self, "--orphan", pidfile, NULL};
  th_result r;
  TU_OK(th_run(argv, NULL, NULL, 30000, &r));
  CU_ASSERT_EQUAL(r.rc, 128 + SIGABRT);
  th_result_free(&r);
  buf b = BUF_INIT;
  TU_OK(env_read_file(env_posix(), pidfile, 64, &b));
  buf_push(&b, 0);
  pid_t pid = (pid_t)atoi((char *)b.data);
  buf_free(&b);
  CU_ASSERT_FATAL(pid > 0);
  /* Killed by the guard as the program aborted. */
  uint64_t until = th_now_ms() + 10000;
  while (!gone(pid) && th_now_ms() < until) th_sleep_ms(20);
  CU_ASSERT(gone(pid));
  if (!gone(pid)) kill(pid, SIGKILL);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"run_captures", test_run_captures},
      {"run_env", test_run_env},
      {"run_signal_and_timeout", test_run_signal_and_timeout},
      {"wait_file_and_line", test_wait_file_and_line},
      {"wait_fails_early", test_wait_fails_early},
      {"stop_escalates", test_stop_escalates},
      {"pre_exec_and_cwd", test_pre_exec_and_cwd},
      {"pipe_and_sigpipe", test_pipe_and_sigpipe},
      {"wait_port", test_wait_port},
      {"node", test_node},
      {"guard", test_guard},
      CU_TEST_INFO_NULL};
  tu_add_suite("harness", tests);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--orphan") == 0) return orphan_main(argv[2]);
  return tu_main(argc, argv, add_suites);
}
