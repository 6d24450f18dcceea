/* tsh: starting real mica-tserver processes for the integration tests and
 * the thin call wrappers they share (contract in tsh.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/tabletserver/server/tsh.h"

#define TSH_MAX_PROCS 64

static pid_t live[TSH_MAX_PROCS];
static bool atexit_set;

static void kill_all(void) {
  for (int i = 0; i < TSH_MAX_PROCS; i++)
    if (live[i] > 0) {
      kill(live[i], SIGKILL);
      waitpid(live[i], NULL, 0);
      live[i] = 0;
    }
}

static void track(pid_t pid, bool add) {
  for (int i = 0; i < TSH_MAX_PROCS; i++)
    if (add ? live[i] == 0 : live[i] == pid) {
      live[i] = add ? pid : 0;
      return;
    }
}

bool tsh_sanitized(void) {
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

mica_err *tsh_start(const char *dir, const char *const *extra, tsh_proc *p) {
  if (!atexit_set) {
    atexit(kill_all);
    atexit_set = true;
  }
  memset(p, 0, sizeof(*p));
  snprintf(p->dir, sizeof p->dir, "%s", dir);
  const char *bin = getenv("MICA_BIN_DIR");
  if (bin == NULL) bin = ".";
  char exe[600], afile[600];
  snprintf(exe, sizeof exe, "%s/mica-tserver", bin);
  snprintf(afile, sizeof afile, "%s/tserver.addr.%d", dir, (int)getpid());
  snprintf(p->log, sizeof p->log, "%s/tserver.log", dir);
  env *e = env_posix();
  err_free(env_remove(e, afile));
  const char *argv[64];
  int n = 0;
  argv[n++] = exe;
  argv[n++] = "--data-dir";
  argv[n++] = dir;
  argv[n++] = "--address-file";
  argv[n++] = afile;
  for (int i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return err_new(MICA_INTERNAL, "fork: %s", strerror(errno));
  if (pid == 0) {
    int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int nul = open("/dev/null", O_WRONLY);
    if (fd >= 0) dup2(fd, 2);
    if (nul >= 0) dup2(nul, 1);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  track(pid, true);
  p->pid = pid;
  /* ASan builds start slowly on a busy machine. */
  for (int i = 0; i < 600; i++) {
    buf b = BUF_INIT;
    mica_err *re = env_read_file(e, afile, 256, &b);
    if (re == NULL && b.len > 1 && b.data[b.len - 1] == '\n') {
      size_t l = b.len - 1 < sizeof p->addr - 1 ? b.len - 1 : sizeof p->addr - 1;
      memcpy(p->addr, b.data, l);
      p->addr[l] = '\0';
      buf_free(&b);
      return rpc_channel_new(p->addr, NULL, &p->ch);
    }
    err_free(re);
    buf_free(&b);
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      track(pid, false);
      p->pid = 0;
      return err_new(MICA_UNAVAILABLE, "mica-tserver exited early (status %d); "
                     "see %s", st, p->log);
    }
    usleep(50000);
  }
  return err_new(MICA_UNAVAILABLE, "mica-tserver wrote no address in 30 s");
}

int tsh_stop(tsh_proc *p, int sig) {
  rpc_channel_free(p->ch);
  p->ch = NULL;
  if (p->pid <= 0) return -1;
  kill(p->pid, sig);
  int st = 0;
  if (waitpid(p->pid, &st, 0) != p->pid) st = -1;
  track(p->pid, false);
  p->pid = 0;
  return st;
}

mica_err *tsh_status(mica_err *transport, const rpc_status *st) {
  if (transport != NULL) return transport;
  return rpc_status_err(st);
}

mica_err *tsh_open(rpc_channel *ch, tsh_ref r, const char *start,
                   const char *end) {
  rpc_open_tablet_request req = {0};
  rpc_tablet_descriptor d = {0};
  d.tablet_id = r.id;
  d.table_id = 1;
  d.table_name = "t";
  d.range_epoch = r.re;
  if (start) d.start_key = tsh_bin(slice_from_str(start));
  if (end) d.end_key = tsh_bin(slice_from_str(end));
  req.desc = &d;
  req.assign_epoch = r.ae;
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_open_tablet, &req, 60000, &m);
  e = tsh_status(e, m ? ((rpc_open_tablet_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_close(rpc_channel *ch, tsh_ref r) {
  rpc_close_tablet_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_close_tablet, &req, 60000, &m);
  e = tsh_status(e, m ? ((rpc_close_tablet_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_put(rpc_channel *ch, tsh_ref r, slice key, slice value) {
  rpc_put_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  req.value = tsh_bin(value);
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_put, &req, 30000, &m);
  e = tsh_status(e, m ? ((rpc_put_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_del(rpc_channel *ch, tsh_ref r, slice key) {
  rpc_delete_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_delete, &req, 30000, &m);
  e = tsh_status(e, m ? ((rpc_delete_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_get(rpc_channel *ch, tsh_ref r, slice key, buf *val) {
  rpc_get_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(r);
  req.tablet = &ref;
  req.key = tsh_bin(key);
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_get, &req, 30000, &m);
  const rpc_get_response *resp = (const rpc_get_response *)m;
  e = tsh_status(e, resp ? resp->status : NULL);
  if (e == NULL && !resp->found) e = err_new(MICA_NOT_FOUND, "not found");
  if (e == NULL) {
    buf_clear(val);
    buf_append(val, resp->value.data, resp->value.len);
  }
  rpc_msg_free(m);
  return e;
}

mica_err *tsh_fill(rpc_channel *ch, tsh_ref r, const char *prefix,
                   uint64_t n, size_t vlen, size_t per_batch) {
  rpc_tablet_ref ref = tsh_pb_ref(r);
  rpc_mutation *muts = calloc(per_batch, sizeof(*muts));
  char (*keys)[64] = calloc(per_batch, 64);
  uint8_t *val = calloc(1, vlen + 1);
  memset(val, 'v', vlen);
  mica_err *e = NULL;
  for (uint64_t i = 0; i < n && e == NULL;) {
    size_t k = 0;
    for (; k < per_batch && i < n; k++, i++) {
      memset(&muts[k], 0, sizeof muts[k]);
      muts[k].kind = RPC_MUTATION_PUT;
      int len = snprintf(keys[k], 64, "%s%08" PRIu64, prefix, i);
      muts[k].key.data = (uint8_t *)keys[k];
      muts[k].key.len = (size_t)len;
      muts[k].value.data = val;
      muts[k].value.len = vlen;
    }
    rpc_batch_request req = {0};
    req.tablet = &ref;
    req.mutations = muts;
    req.n_mutations = k;
    void *m = NULL;
    e = rpc_unary(ch, &rpc_m_ts_batch, &req, 60000, &m);
    e = tsh_status(e, m ? ((rpc_batch_response *)m)->status : NULL);
    rpc_msg_free(m);
  }
  free(muts);
  free(keys);
  free(val);
  return e;
}
