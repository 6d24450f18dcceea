/* mica-master --zk against a real ZooKeeper: a standby answers Master calls
 * with NOT_ACTIVE_MASTER naming the active master; when the active one is
 * killed the standby takes over on the address it published; a deposed
 * master (frozen past its session) exits at once when it wakes. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "master/zk/mzk.h"
#include "proto/rpc.h"
#include "tests/harness/testutil.h"
#include "tests/harness/zkserver.h"

#define SESSION_MS 3000

static zks *g_zk;

static uint64_t now_ms(void) { return env_now_micros(env_posix()) / 1000; }

typedef struct master_proc {
  pid_t pid;
  int out;        /* read end of its stdout */
  char buf[4096]; /* stdout so far */
  size_t len;
} master_proc;

static void spawn_master(master_proc *m, const char *zk, const char *dir) {
  char exe[600];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
  CU_ASSERT_FATAL(n > 0);
  exe[n] = '\0';
  strcpy(strrchr(exe, '/') + 1, "mica-master");
  int p[2];
  CU_ASSERT_FATAL(pipe(p) == 0);
  memset(m, 0, sizeof *m);
  m->pid = fork();
  CU_ASSERT_FATAL(m->pid >= 0);
  if (m->pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    char tmo[16];
    snprintf(tmo, sizeof tmo, "%d", SESSION_MS);
    execl(exe, exe, "--data-dir", dir, "--zk", zk, "--zk-session-ms", tmo,
          (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  m->out = p[0];
}

/* Waits for a stdout line starting with `word`; copies its argument. */
static bool wait_line(master_proc *m, const char *word, char *arg, size_t n,
                      int timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  size_t wl = strlen(word);
  for (;;) {
    m->buf[m->len] = '\0';
    for (char *l = m->buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
      if (strncmp(l, word, wl) == 0 && l[wl] == ' ' && strchr(l, '\n')) {
        size_t k = strcspn(l + wl + 1, "\n");
        if (k >= n) return false;
        memcpy(arg, l + wl + 1, k);
        arg[k] = '\0';
        return true;
      }
    uint64_t now = now_ms();
    if (now >= deadline || m->len + 1 >= sizeof m->buf) return false;
    struct pollfd pf = {.fd = m->out, .events = POLLIN};
    if (poll(&pf, 1, (int)(deadline - now)) <= 0) continue;
    ssize_t r = read(m->out, m->buf + m->len, sizeof m->buf - 1 - m->len);
    if (r <= 0) return false;
    m->len += (size_t)r;
  }
}

static int wait_exit(master_proc *m, int timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  int st;
  for (;;) {
    pid_t r = waitpid(m->pid, &st, WNOHANG);
    if (r == m->pid) {
      m->pid = 0;
      close(m->out);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (now_ms() >= deadline) return -1;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static void reap(master_proc *m) {
  if (m->pid > 0) {
    kill(m->pid, SIGKILL);
    wait_exit(m, 10000);
  }
}

/* ListTables on `addr`: the Status code of the answer (OK when absent), and
 * its message into msg. -1 when the call itself failed. */
static int list_tables(const char *addr, char *msg, size_t n) {
  rpc_channel *ch;
  mica_err *e = rpc_channel_new(addr, NULL, &ch);
  if (e != NULL) {
    err_free(e);
    return -1;
  }
  rpc_list_tables_request req = {0};
  rpc_list_tables_response *resp = NULL;
  e = rpc_unary(ch, &rpc_m_master_list_tables, &req, 10000, (void **)&resp);
  int code = -1;
  if (e == NULL) {
    const rpc_status *st = rpc_response_status(resp);
    code = st ? (int)st->code : MICA_OK;
    snprintf(msg, n, "%s", st && st->message ? st->message : "");
  } else {
    snprintf(msg, n, "%s", err_msg(e));
    err_free(e);
  }
  rpc_msg_free(resp);
  rpc_channel_free(ch);
  return code;
}

static int setup(void) {
  mica_err *e = zks_start(1, &g_zk);
  if (e != NULL) {
    fprintf(stderr, "cannot start ZooKeeper: %s\n", err_msg(e));
    err_free(e);
    return -1;
  }
  return 0;
}

static int cleanup(void) {
  zks_destroy(g_zk);
  return 0;
}

static void zk_spec(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", zks_connect(g_zk), name);
}

static void test_standby_redirects_then_takes_over(void) {
  char zk[600], a_addr[128], b_addr[128], msg[512];
  zk_spec(zk, sizeof zk, "master-failover");
  const char *dir = tu_tmpdir();
  master_proc a, b;
  spawn_master(&a, zk, dir);
  CU_ASSERT_FATAL(wait_line(&a, "listening", a_addr, sizeof a_addr, 30000));
  spawn_master(&b, zk, dir);
  CU_ASSERT_FATAL(wait_line(&b, "standby", b_addr, sizeof b_addr, 30000));
  CU_ASSERT_STRING_NOT_EQUAL(a_addr, b_addr);

  CU_ASSERT_EQUAL(list_tables(a_addr, msg, sizeof msg), MICA_OK);
  /* A standby that has not read the active master's record yet says that
   * no master is active; it names the active one once its reader has it. */
  int code;
  uint64_t known_by = now_ms() + 10000;
  while ((code = list_tables(b_addr, msg, sizeof msg)) == MICA_NOT_ACTIVE_MASTER &&
         strstr(msg, "no master is active yet") != NULL && now_ms() < known_by) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  CU_ASSERT_EQUAL(code, MICA_NOT_ACTIVE_MASTER);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, a_addr)); /* names the active master */
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "epoch 1"));

  mzk_reader *r;
  TU_OK(mzk_reader_open(zk, SESSION_MS, NULL, NULL, &r));
  mzk_master m;
  TU_OK(mzk_reader_wait(r, 1, 10000, &m));
  CU_ASSERT_STRING_EQUAL(m.rpc_addr, a_addr);
  /* The HTTP address, known only once the HTTP server ran, follows. */
  char a_http[128];
  CU_ASSERT_FATAL(wait_line(&a, "http", a_http, sizeof a_http, 10000));
  uint64_t deadline = now_ms() + 10000;
  while (mzk_reader_get(r, &m) && strcmp(m.http_addr, a_http) != 0 &&
         now_ms() < deadline) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  CU_ASSERT_STRING_EQUAL(m.http_addr, a_http);

  kill(a.pid, SIGKILL);
  CU_ASSERT_EQUAL(wait_exit(&a, 5000), 128 + SIGKILL);
  char served[128];
  CU_ASSERT_FATAL(wait_line(&b, "listening", served, sizeof served,
                            SESSION_MS * 4 + 10000));
  CU_ASSERT_STRING_EQUAL(served, b_addr); /* the address it published */
  CU_ASSERT_EQUAL(list_tables(b_addr, msg, sizeof msg), MICA_OK);
  TU_OK(mzk_reader_wait(r, 2, 10000, &m));
  CU_ASSERT_STRING_EQUAL(m.rpc_addr, b_addr);
  mzk_reader_close(r);

  kill(b.pid, SIGTERM);
  CU_ASSERT_EQUAL(wait_exit(&b, 30000), 0);
  reap(&a);
  reap(&b);
}

static void test_deposed_master_exits(void) {
  char zk[600], a_addr[128], b_addr[128], served[128];
  zk_spec(zk, sizeof zk, "master-deposed");
  const char *dir = tu_tmpdir();
  master_proc a, b;
  spawn_master(&a, zk, dir);
  CU_ASSERT_FATAL(wait_line(&a, "listening", a_addr, sizeof a_addr, 30000));
  spawn_master(&b, zk, dir);
  CU_ASSERT_FATAL(wait_line(&b, "standby", b_addr, sizeof b_addr, 30000));
  mzk_reader *r;
  TU_OK(mzk_reader_open(zk, SESSION_MS, NULL, NULL, &r));
  kill(a.pid, SIGSTOP);
  /* B wins once A's session expires; it cannot start serving while the
   * frozen A still holds the data root's lock. */
  mzk_master m;
  TU_OK(mzk_reader_wait(r, 2, SESSION_MS * 4 + 10000, &m));
  CU_ASSERT_STRING_EQUAL(m.rpc_addr, b_addr);
  mzk_reader_close(r);
  kill(a.pid, SIGCONT);
  /* Its lease ended while it was frozen: it must quit at once, and B then
   * serves. */
  CU_ASSERT_EQUAL(wait_exit(&a, 2000), 3);
  CU_ASSERT(wait_line(&b, "listening", served, sizeof served, 20000));
  CU_ASSERT_STRING_EQUAL(served, b_addr);
  kill(b.pid, SIGTERM);
  CU_ASSERT_EQUAL(wait_exit(&b, 30000), 0);
  reap(&a);
  reap(&b);
}

static void test_bad_zk_flag(void) {
  master_proc m;
  spawn_master(&m, "127.0.0.1:2181/bad//chroot", tu_tmpdir());
  CU_ASSERT_EQUAL(wait_exit(&m, 10000), 1);
  reap(&m);
}

static void add_suites(void) {
  static CU_TestInfo tests[] = {
      {"bad_zk_flag", test_bad_zk_flag},
      {"standby_redirects_then_takes_over",
       test_standby_redirects_then_takes_over},
      {"deposed_master_exits", test_deposed_master_exits},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("mica_master_zk", setup, cleanup);
  for (CU_TestInfo *t = tests; t->pName; t++)
    CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
