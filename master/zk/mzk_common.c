/* mzk_common: the connect-string parser, path helpers and the published
 * record's text form, shared by the elector and the reader. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

#include "common/log.h"
#include "master/zk/mzk_int.h"

static mica_err *check_host(const char *spec, const char *h, size_t len) {
  const char *colon = NULL;
  for (size_t i = 0; i < len; i++)
    if (h[i] == ':') colon = h + i;
  if (len == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "ZooKeeper address '%s': empty host in the host list", spec);
  if (colon == NULL || colon == h)
    return err_new(MICA_INVALID_ARGUMENT,
                   "ZooKeeper address '%s': '%.*s' is not HOST:PORT", spec,
                   (int)len, h);
  size_t plen = (size_t)(h + len - colon - 1);
  unsigned long port = 0;
  bool ok = plen > 0 && plen <= 5;
  for (size_t i = 0; ok && i < plen; i++) {
    if (!isdigit((unsigned char)colon[1 + i])) ok = false;
    else port = port * 10 + (unsigned long)(colon[1 + i] - '0');
  }
  if (!ok || port == 0 || port > 65535)
    return err_new(MICA_INVALID_ARGUMENT,
                   "ZooKeeper address '%s': port of '%.*s' is not in 1..65535",
                   spec, (int)len, h);
  for (const char *p = h; p < colon; p++)
    if (isspace((unsigned char)*p) || *p == '/')
      return err_new(MICA_INVALID_ARGUMENT,
                     "ZooKeeper address '%s': bad host '%.*s'", spec,
                     (int)(colon - h), h);
  return NULL;
}

static mica_err *check_chroot(const char *spec, const char *c) {
  /* c starts with '/'. Each component must be non-empty and not "."/"..". */
  const char *p = c;
  while (*p == '/') {
    const char *s = p + 1;
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0)
      return err_new(MICA_INVALID_ARGUMENT,
                     "ZooKeeper address '%s': chroot '%s' has an empty "
                     "component or a trailing '/'", spec, c);
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
      return err_new(MICA_INVALID_ARGUMENT,
                     "ZooKeeper address '%s': chroot '%s' contains '.' or '..'",
                     spec, c);
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
        return err_new(MICA_INVALID_ARGUMENT,
                       "ZooKeeper address '%s': chroot '%s' contains a "
                       "control character", spec, c);
    p = s + n;
  }
  return NULL;
}

mica_err *mzk_spec_parse(const char *spec, char **hosts, char **chroot) {
  *hosts = *chroot = NULL;
  if (spec == NULL || spec[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT,
                   "ZooKeeper address is empty (want HOST:PORT[,...][/chroot])");
  const char *slash = strchr(spec, '/');
  size_t hlen = slash ? (size_t)(slash - spec) : strlen(spec);
  const char *h = spec;
  const char *end = spec + hlen;
  while (h <= end) {
    const char *comma = memchr(h, ',', (size_t)(end - h));
    size_t len = comma ? (size_t)(comma - h) : (size_t)(end - h);
    mica_err *e = check_host(spec, h, len);
    if (e != NULL) return e;
    if (comma == NULL) break;
    h = comma + 1;
  }
  if (slash != NULL) {
    mica_err *e = check_chroot(spec, slash);
    if (e != NULL) return e;
  }
  *hosts = strndup(spec, hlen);
  *chroot = strdup(slash ? slash : "");
  if (*hosts == NULL || *chroot == NULL) {
    free(*hosts);
    free(*chroot);
    *hosts = *chroot = NULL;
    return err_new(MICA_RESOURCE_EXHAUSTED, "out of memory");
  }
  return NULL;
}

char *mzk_path(const char *chroot, const char *suffix) {
  size_t a = strlen(chroot), b = strlen(suffix);
  char *p = malloc(a + b + 1);
  if (p == NULL) return NULL;
  memcpy(p, chroot, a);
  memcpy(p + a, suffix, b + 1);
  return p;
}

int mzk_ensure_path(zhandle_t *zh, const char *path) {
  char zbuf[1024];
  size_t n = strlen(path);
  if (n >= sizeof zbuf) return ZBADARGUMENTS;
  memcpy(zbuf, path, n + 1);
  /* Create each prefix ending before a '/', then the whole path. */
  for (size_t i = 1; i <= n; i++) {
    if (i < n && zbuf[i] != '/') continue;
    char saved = zbuf[i];
    zbuf[i] = '\0';
    int rc = zoo_create(zh, zbuf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    zbuf[i] = saved;
    if (rc != ZOK && rc != ZNODEEXISTS) return rc;
  }
  return ZOK;
}

int mzk_record_format(const mzk_master *m, char *zbuf, size_t n) {
  int len = snprintf(zbuf, n, "%s\nepoch %" PRIu64 "\nrpc %s\nhttp %s\n",
                     MZK_RECORD_MAGIC, m->epoch, m->rpc_addr,
                     m->http_addr[0] ? m->http_addr : "-");
  return len < 0 || (size_t)len >= n ? -1 : len;
}

/* Copies line `i` of the record (without its '\n') into out; false when
 * absent or too long. */
static bool record_line(const char *data, int len, int i, char *out,
                        size_t n) {
  const char *p = data, *end = data + len;
  for (; i > 0; i--) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) return false;
    p = nl + 1;
  }
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (nl == NULL) return false;
  size_t l = (size_t)(nl - p);
  if (l >= n || memchr(p, '\0', l) != NULL) return false;
  memcpy(out, p, l);
  out[l] = '\0';
  return true;
}

mica_err *mzk_record_parse(const char *data, int len, mzk_master *m) {
  char line[MZK_ADDR_MAX + 16];
  memset(m, 0, sizeof *m);
  if (data == NULL || len <= 0)
    return err_new(MICA_INVALID_ARGUMENT, "active-master record is empty");
  if (!record_line(data, len, 0, line, sizeof line) ||
      strcmp(line, MZK_RECORD_MAGIC) != 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "active-master record: first line is not '%s'",
                   MZK_RECORD_MAGIC);
  char *endp;
  if (!record_line(data, len, 1, line, sizeof line) ||
      strncmp(line, "epoch ", 6) != 0 || !isdigit((unsigned char)line[6]))
    return err_new(MICA_INVALID_ARGUMENT,
                   "active-master record: line 2 is not 'epoch <n>'");
  errno = 0;
  unsigned long long ep = strtoull(line + 6, &endp, 10);
  if (errno != 0 || *endp != '\0' || ep == 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "active-master record: bad epoch '%s'", line + 6);
  m->epoch = ep;
  if (!record_line(data, len, 2, line, sizeof line) ||
      strncmp(line, "rpc ", 4) != 0 || line[4] == '\0' ||
      strlen(line + 4) >= MZK_ADDR_MAX)
    return err_new(MICA_INVALID_ARGUMENT,
                   "active-master record: line 3 is not 'rpc <host:port>'");
  strcpy(m->rpc_addr, line + 4);
  if (!record_line(data, len, 3, line, sizeof line) ||
      strncmp(line, "http ", 5) != 0 || line[5] == '\0' ||
      strlen(line + 5) >= MZK_ADDR_MAX)
    return err_new(MICA_INVALID_ARGUMENT,
                   "active-master record: line 4 is not 'http <host:port|->'");
  if (strcmp(line + 5, "-") != 0) strcpy(m->http_addr, line + 5);
  return NULL;
}

int mzk_cand_format(const mzk_member *m, char *zbuf, size_t n) {
  int len = snprintf(zbuf, n, "%s\nrpc %s\nhttp %s\n", MZK_CAND_MAGIC,
                     m->rpc_addr, m->http_addr[0] ? m->http_addr : "-");
  return len < 0 || (size_t)len >= n ? -1 : len;
}

mica_err *mzk_cand_parse(const char *data, int len, mzk_member *m) {
  char line[MZK_ADDR_MAX + 16];
  memset(m, 0, sizeof *m);
  if (data == NULL || len <= 0)
    return err_new(MICA_INVALID_ARGUMENT, "candidate record is empty");
  if (!record_line(data, len, 0, line, sizeof line)) {
    /* Earlier versions: the bare RPC address, no newline. */
    if ((size_t)len >= MZK_ADDR_MAX || memchr(data, '\n', (size_t)len) ||
        memchr(data, '\0', (size_t)len) || memchr(data, ':', (size_t)len) == NULL)
      return err_new(MICA_INVALID_ARGUMENT,
                     "candidate record is neither '%s' nor a host:port",
                     MZK_CAND_MAGIC);
    memcpy(m->rpc_addr, data, (size_t)len);
    m->rpc_addr[len] = '\0';
    return NULL;
  }
  if (strcmp(line, MZK_CAND_MAGIC) != 0)
    return err_new(MICA_INVALID_ARGUMENT,
                   "candidate record: first line is not '%s'", MZK_CAND_MAGIC);
  if (!record_line(data, len, 1, line, sizeof line) ||
      strncmp(line, "rpc ", 4) != 0 || line[4] == '\0' ||
      strlen(line + 4) >= MZK_ADDR_MAX)
    return err_new(MICA_INVALID_ARGUMENT,
                   "candidate record: line 2 is not 'rpc <host:port>'");
  strcpy(m->rpc_addr, line + 4);
  if (!record_line(data, len, 2, line, sizeof line) ||
      strncmp(line, "http ", 5) != 0 || line[5] == '\0' ||
      strlen(line + 5) >= MZK_ADDR_MAX)
    return err_new(MICA_INVALID_ARGUMENT,
                   "candidate record: line 3 is not 'http <host:port|->'");
  if (strcmp(line + 5, "-") != 0) strcpy(m->http_addr, line + 5);
  return NULL;
}

const char *mzk_session_state_name(mzk_session_state s) {
  switch (s) {
    case MZK_SESSION_CONNECTED: return "connected";
    case MZK_SESSION_EXPIRED: return "expired";
    default: return "connecting";
  }
}

void mzk_cond_init_mono(pthread_cond_t *c) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
}

void mzk_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu,
                         uint64_t deadline_us) {
  struct timespec ts = {.tv_sec = (time_t)(deadline_us / 1000000),
                        .tv_nsec = (long)(deadline_us % 1000000) * 1000};
  pthread_cond_timedwait(c, mu, &ts);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void setup_log(void) {
  const char *v = getenv("MICA_ZK_LOG_LEVEL");
  ZooLogLevel l = ZOO_LOG_LEVEL_WARN;
  if (v != NULL) {
    if (strcmp(v, "error") == 0) l = ZOO_LOG_LEVEL_ERROR;
    else if (strcmp(v, "info") == 0) l = ZOO_LOG_LEVEL_INFO;
    else if (strcmp(v, "debug") == 0) l = ZOO_LOG_LEVEL_DEBUG;
  }
  zoo_set_debug_level(l);
}

/* While ZooKeeper is unreachable its client logs every reconnect attempt,
 * many times a second; Mica's log gets the first line and then at most one
 * line every 5 s, with the number of lines left out. */
static atomic_uint_fast64_t log_next_us;
static atomic_uint_fast64_t log_dropped;

void mzk_client_log(const char *message) {
  uint64_t now = env_now_micros(env_posix());
  uint64_t next = atomic_load(&log_next_us);
  if (now < next || !atomic_compare_exchange_strong(&log_next_us, &next,
                                                    now + 5000000)) {
    atomic_fetch_add(&log_dropped, 1);
    return;
  }
  uint64_t dropped = atomic_exchange(&log_dropped, 0);
  size_t n = strcspn(message, "\n");
  if (dropped)
    LOG_W("zookeeper client: %.*s (%" PRIu64 " similar lines left out)",
          (int)n, message, dropped);
  else
    LOG_W("zookeeper client: %.*s", (int)n, message);
}

void mzk_setup_client_log(void) { pthread_once(&log_once, setup_log); }
