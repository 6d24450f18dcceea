/* mzk_locate: the active master from a list of candidates or from
 * ZooKeeper's published record (mzk_locate.h). */
#include "master/zk/mzk_locate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZK_SCHEME "zk://"

struct mzk_locator {
  char *spec;
  pthread_mutex_t mu;
  mzk_reader *reader; /* zk:// only */
  char **addrs;       /* a list only */
  size_t n;
  size_t at;          /* the list's current index; guarded by mu */
  /* The active master a standby named in its refusal; tried before the
   * list or the record until it fails too. Guarded by mu. */
  char hint[MZK_ADDR_MAX];
};

bool mzk_spec_is_ha(const char *spec) {
  return spec != NULL && (strncmp(spec, ZK_SCHEME, strlen(ZK_SCHEME)) == 0 ||
                          strchr(spec, ',') != NULL);
}

mica_err *mzk_locator_open(const char *spec, int session_timeout_ms,
                           mzk_locator **out) {
  *out = NULL;
  if (spec == NULL || spec[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "master: empty; give HOST:PORT, "
                   "a comma-separated list of them, or zk://HOST:PORT[,...]"
                   "[/chroot]");
  mzk_locator *l = xcalloc(1, sizeof(*l));
  l->spec = xstrdup(spec);
  pthread_mutex_init(&l->mu, NULL);
  mica_err *err = NULL;
  if (strncmp(spec, ZK_SCHEME, strlen(ZK_SCHEME)) == 0) {
    err = mzk_reader_open(spec + strlen(ZK_SCHEME), session_timeout_ms, NULL,
                          NULL, &l->reader);
  } else {
    char *hosts = NULL, *chroot = NULL;
    err = mzk_spec_parse(spec, &hosts, &chroot);
    if (err == NULL && chroot[0] != '\0')
      err = err_new(MICA_INVALID_ARGUMENT, "master \"%s\": a list of "
                    "masters has no /chroot (for ZooKeeper write zk://%s)",
                    spec, spec);
    for (char *p = hosts, *c; err == NULL && p != NULL; p = c) {
      c = strchr(p, ',');
      if (c != NULL) *c++ = '\0';
      if (strlen(p) >= MZK_ADDR_MAX) {
        err = err_new(MICA_INVALID_ARGUMENT, "master \"%s\": address too "
                      "long", spec);
        break;
      }
      l->addrs = xrealloc(l->addrs, (l->n + 1) * sizeof(*l->addrs));
      l->addrs[l->n++] = xstrdup(p);
    }
    free(hosts);
    free(chroot);
  }
  if (err != NULL) {
    mzk_locator_close(l);
    return err_wrap(err, "master \"%s\"", spec);
  }
  *out = l;
  return NULL;
}

bool mzk_locator_current(mzk_locator *l, char *addr, size_t n) {
  pthread_mutex_lock(&l->mu);
  bool ok = true;
  if (l->hint[0] != '\0') {
    snprintf(addr, n, "%s", l->hint);
  } else if (l->reader != NULL) {
    mzk_master m;
    ok = mzk_reader_get(l->reader, &m);
    if (ok) snprintf(addr, n, "%s", m.rpc_addr);
  } else {
    snprintf(addr, n, "%s", l->addrs[l->at]);
  }
  pthread_mutex_unlock(&l->mu);
  return ok;
}

bool mzk_locator_should_switch(int code) {
  return code == MICA_UNAVAILABLE || code == MICA_DEADLINE_EXCEEDED ||
         code == MICA_NOT_ACTIVE_MASTER || code == MICA_STALE_MASTER;
}

/* The address after "the active master is " in a standby's message. */
static bool named_active(const char *msg, char *out, size_t n) {
  static const char key[] = "the active master is ";
  const char *p = msg ? strstr(msg, key) : NULL;
  if (p == NULL) return false;
  p += strlen(key);
  size_t len = strcspn(p, " ,;()\n");
  if (len == 0 || len >= n || memchr(p, ':', len) == NULL) return false;
  memcpy(out, p, len);
  out[len] = '\0';
  return true;
}

void mzk_locator_failed(mzk_locator *l, const char *addr,
                        const mica_err *err) {
  if (err == NULL || !mzk_locator_should_switch(err_code(err))) return;
  char named[MZK_ADDR_MAX];
  bool has_named = err_code(err) == MICA_NOT_ACTIVE_MASTER &&
                   named_active(err_msg(err), named, sizeof named);
  char cur[MZK_ADDR_MAX];
  bool known = mzk_locator_current(l, cur, sizeof cur);
  pthread_mutex_lock(&l->mu);
  if (known && strcmp(cur, addr) != 0) {
    /* Someone already moved on from `addr`. */
  } else if (has_named && strcmp(named, addr) != 0) {
    snprintf(l->hint, sizeof l->hint, "%s", named);
  } else if (l->hint[0] != '\0') {
    l->hint[0] = '\0';
  } else if (l->reader == NULL && l->n > 0) {
    l->at = (l->at + 1) % l->n;
  }
  pthread_mutex_unlock(&l->mu);
}

const char *mzk_locator_spec(const mzk_locator *l) { return l->spec; }

void mzk_locator_close(mzk_locator *l) {
  if (l == NULL) return;
  mzk_reader_close(l->reader);
  for (size_t i = 0; i < l->n; i++) free(l->addrs[i]);
  free(l->addrs);
  pthread_mutex_destroy(&l->mu);
  free(l->spec);
  free(l);
}
