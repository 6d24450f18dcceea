/* auth: cluster secret, token table and the per-call decision (contract in
 * auth.h). Cryptography is OpenSSL's: HMAC-SHA256, SHA-256 and
 * CRYPTO_memcmp; random bytes come from getrandom(2). */
#include "proto/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- roles ---- */

const char *rpc_role_name(rpc_role r) {
  switch (r) {
    case RPC_ROLE_READ: return "read";
    case RPC_ROLE_WRITE: return "write";
    case RPC_ROLE_ADMIN: return "admin";
    case RPC_ROLE_MEMBER: return "member";
    case RPC_ROLE_NONE: break;
  }
  return "none";
}

static const struct {
  const char *path;
  rpc_role role;
} method_roles[] = {
    {"/mica.v1.TabletServer/Get", RPC_ROLE_READ},
    {"/mica.v1.TabletServer/MultiGet", RPC_ROLE_READ},
    {"/mica.v1.TabletServer/Scan", RPC_ROLE_READ},
    {"/mica.v1.TabletServer/TabletInfo", RPC_ROLE_READ},
    {"/mica.v1.TabletServer/Put", RPC_ROLE_WRITE},
    {"/mica.v1.TabletServer/Delete", RPC_ROLE_WRITE},
    {"/mica.v1.TabletServer/Batch", RPC_ROLE_WRITE},
    {"/mica.v1.TabletServer/OpenTablet", RPC_ROLE_MEMBER},
    {"/mica.v1.TabletServer/CloseTablet", RPC_ROLE_MEMBER},
    {"/mica.v1.TabletServer/SplitTablet", RPC_ROLE_MEMBER},
    {"/mica.v1.Master/ListTables", RPC_ROLE_READ},
    {"/mica.v1.Master/LookupTablets", RPC_ROLE_READ},
    {"/mica.v1.Master/ListTablets", RPC_ROLE_READ},
    {"/mica.v1.Master/ListServers", RPC_ROLE_READ},
    {"/mica.v1.Master/ListEvents", RPC_ROLE_READ},
    {"/mica.v1.Master/GetInfo", RPC_ROLE_READ},
    {"/mica.v1.Master/CreateTable", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/DropTable", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/SplitTablet", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/MoveTablet", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/MergeTablets", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/Balance", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/Configure", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/DrainServer", RPC_ROLE_ADMIN},
    {"/mica.v1.Master/RegisterServer", RPC_ROLE_MEMBER},
    {"/mica.v1.Master/Heartbeat", RPC_ROLE_MEMBER},
    {"/mica.v1.Master/ReportSplit", RPC_ROLE_MEMBER},
    {"/mica.v1.Echo/Echo", RPC_ROLE_READ},
    {"/mica.v1.Echo/EchoStream", RPC_ROLE_READ},
};

rpc_role rpc_path_role(const char *path) {
  for (size_t i = 0; i < sizeof method_roles / sizeof method_roles[0]; i++)
    if (strcmp(method_roles[i].path, path) == 0) return method_roles[i].role;
  return RPC_ROLE_MEMBER;
}

/* ---- the cluster secret ---- */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void to_hex(const uint8_t *b, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * n] = '\0';
}

mica_err *rpc_secret_read(const char *path, rpc_secret *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err_new(errno == ENOENT ? MICA_NOT_FOUND : MICA_IO_ERROR,
                   "cluster secret %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return err_new(MICA_IO_ERROR, "cluster secret %s: %s", path, strerror(e));
  }
  if (st.st_mode & 077) {
    close(fd);
    return err_new(MICA_PERMISSION_DENIED,
                   "cluster secret %s has mode %04o: group and others must "
                   "not have access (chmod 600 it)", path,
                   (unsigned)(st.st_mode & 0777));
  }
  char text[2 * RPC_SECRET_BYTES + 3];
  ssize_t n = read(fd, text, sizeof text);
  int rerr = errno;
  close(fd);
  if (n < 0)
    return err_new(MICA_IO_ERROR, "cluster secret %s: %s", path,
                   strerror(rerr));
  size_t len = (size_t)n;
  if (len > 0 && text[len - 1] == '\n') len--;
  if (len != 2 * RPC_SECRET_BYTES)
    return err_new(MICA_INVALID_ARGUMENT,
                   "cluster secret %s: expected %d hex digits", path,
                   2 * RPC_SECRET_BYTES);
  for (size_t i = 0; i < RPC_SECRET_BYTES; i++) {
    int hi = hexval((unsigned char)text[2 * i]);
    int lo = hexval((unsigned char)text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(text, sizeof text);
      return err_new(MICA_INVALID_ARGUMENT,
                     "cluster secret %s: not hex digits", path);
    }
    out->b[i] = (uint8_t)(hi << 4 | lo);
  }
  OPENSSL_cleanse(text, sizeof text);
  return NULL;
}

mica_err *rpc_secret_load_or_create(const char *root, rpc_secret *out,
                                    bool *created) {
  if (created) *created = false;
  size_t plen = strlen(root) + sizeof RPC_SECRET_FILE + 2;
  char *path = xmalloc(plen);
  snprintf(path, plen, "%s/%s", root, RPC_SECRET_FILE);
  mica_err *e = rpc_secret_read(path, out);
  if (e == NULL || err_code(e) != MICA_NOT_FOUND) {
    free(path);
    return e;
  }
  err_free(e);
  e = NULL;
  rpc_secret s;
  size_t got = 0;
  while (got < sizeof s.b) {
    ssize_t r = getrandom(s.b + got, sizeof s.b - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      e = err_new(MICA_IO_ERROR, "getrandom: %s", strerror(errno));
      free(path);
      return e;
    }
    got += (size_t)r;
  }
  char hex[2 * RPC_SECRET_BYTES + 2];
  to_hex(s.b, sizeof s.b, hex);
  strcat(hex, "\n");
  /* Unique per process and per call, so concurrent creators (processes or
   * threads) never share a temporary file. */
  static atomic_uint seq;
  size_t tlen = plen + 48;
  char *tmp = xmalloc(tlen);
  snprintf(tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(),
           atomic_fetch_add(&seq, 1));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    e = err_new(MICA_IO_ERROR, "cannot create cluster secret %s: %s", tmp,
                strerror(errno));
    goto out;
  }
  size_t hl = strlen(hex);
  bool ok = write(fd, hex, hl) == (ssize_t)hl && fsync(fd) == 0;
  int werr = errno;
  close(fd);
  if (!ok) {
    e = err_new(MICA_IO_ERROR, "cannot write cluster secret %s: %s", tmp,
                strerror(werr));
    unlink(tmp);
    goto out;
  }
  /* link() fails when another process won the race: use its secret. */
  if (link(tmp, path) == 0) {
    if (created) *created = true;
    *out = s;
  } else if (errno == EEXIST) {
    e = rpc_secret_read(path, out);
  } else {
    e = err_new(MICA_IO_ERROR, "cannot create cluster secret %s: %s", path,
                strerror(errno));
  }
  unlink(tmp);
  if (e == NULL) {
    /* The link's directory entry must survive a crash. */
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
  }
out:
  OPENSSL_cleanse(hex, sizeof hex);
  OPENSSL_cleanse(&s, sizeof s);
  free(tmp);
  free(path);
  return e;
}

/* ---- tokens ---- */

void rpc_access_free(rpc_access *a) {
  if (a == NULL) return;
  for (size_t i = 0; i < a->n; i++) free(a->grants[i].identity);
  free(a->grants);
  free(a);
}

static void sha256(const void *p, size_t n, uint8_t out[32]) {
  SHA256(p, n, out);
}

static rpc_role role_parse(const char *s) {
  if (strcmp(s, "read") == 0) return RPC_ROLE_READ;
  if (strcmp(s, "write") == 0) return RPC_ROLE_WRITE;
  if (strcmp(s, "admin") == 0) return RPC_ROLE_ADMIN;
  return RPC_ROLE_NONE;
}

mica_err *rpc_access_load(const char *path, rpc_access **out) {
  *out = NULL;
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "tokens file %s: %s", path,
                   strerror(errno));
  rpc_access *a = xcalloc(1, sizeof *a);
  a->enabled = true;
  char line[1024];
  int lineno = 0;
  mica_err *e = NULL;
  while (e == NULL && fgets(line, sizeof line, f) != NULL) {
    lineno++;
    if (strchr(line, '\n') == NULL && !feof(f)) {
      e = err_new(MICA_INVALID_ARGUMENT,
                  "tokens file %s line %d: longer than %zu characters", path,
                  lineno, sizeof line - 2);
      break;
    }
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r\n", &save);
    if (tok == NULL || tok[0] == '#') continue;
    char *ident = strtok_r(NULL, " \t\r\n", &save);
    char *role = strtok_r(NULL, " \t\r\n", &save);
    char *extra = strtok_r(NULL, " \t\r\n", &save);
    if (ident == NULL || role == NULL || extra != NULL) {
      e = err_new(MICA_INVALID_ARGUMENT,
                  "tokens file %s line %d: expected \"<token> <identity> "
                  "<read|write|admin>\"", path, lineno);
      break;
    }
    if (strlen(tok) < 16) {
      e = err_new(MICA_INVALID_ARGUMENT,
                  "tokens file %s line %d: token for '%s' is shorter than 16 "
                  "characters", path, lineno, ident);
      break;
    }
    if (strlen(ident) >= sizeof ((rpc_identity *)0)->name) {
      e = err_new(MICA_INVALID_ARGUMENT,
                  "tokens file %s line %d: identity longer than %zu "
                  "characters", path, lineno,
                  sizeof ((rpc_identity *)0)->name - 1);
      break;
    }
    rpc_role r = role_parse(role);
    if (r == RPC_ROLE_NONE) {
      e = err_new(MICA_INVALID_ARGUMENT,
                  "tokens file %s line %d: role '%s' is not read, write or "
                  "admin", path, lineno, role);
      break;
    }
    uint8_t d[32];
    sha256(tok, strlen(tok), d);
    OPENSSL_cleanse(tok, strlen(tok));
    for (size_t i = 0; i < a->n && e == NULL; i++)
      if (memcmp(a->grants[i].sha, d, 32) == 0)
        e = err_new(MICA_INVALID_ARGUMENT,
                    "tokens file %s line %d: the token of '%s' is already "
                    "listed for '%s'", path, lineno, ident,
                    a->grants[i].identity);
    if (e != NULL) break;
    a->grants = xrealloc(a->grants, (a->n + 1) * sizeof *a->grants);
    memcpy(a->grants[a->n].sha, d, 32);
    a->grants[a->n].identity = xstrdup(ident);
    a->grants[a->n].role = r;
    a->n++;
  }
  OPENSSL_cleanse(line, sizeof line);
  if (e == NULL && ferror(f))
    e = err_new(MICA_IO_ERROR, "tokens file %s: read error", path);
  fclose(f);
  if (e != NULL) {
    rpc_access_free(a);
    return e;
  }
  *out = a;
  return NULL;
}

void rpc_access_to_wire(const rpc_access *a, rpc_access_table *w) {
  memset(w, 0, sizeof *w);
  w->enabled = a->enabled;
  w->n_grants = a->n;
  w->grants = a->n ? xcalloc(a->n, sizeof *w->grants) : NULL;
  for (size_t i = 0; i < a->n; i++) {
    w->grants[i].token_sha256 = slice_make(a->grants[i].sha, 32);
    w->grants[i].identity = a->grants[i].identity;
    w->grants[i].role = (uint32_t)a->grants[i].role;
  }
}

void rpc_access_wire_free(rpc_access_table *w) {
  free(w->grants);
  w->grants = NULL;
  w->n_grants = 0;
}

mica_err *rpc_access_from_wire(const rpc_access_table *w, rpc_access **out) {
  *out = NULL;
  rpc_access *a = xcalloc(1, sizeof *a);
  a->enabled = w->enabled;
  if (w->n_grants) a->grants = xcalloc(w->n_grants, sizeof *a->grants);
  for (size_t i = 0; i < w->n_grants; i++) {
    const rpc_access_grant *g = &w->grants[i];
    if (g->token_sha256.len != 32 || g->role < RPC_ROLE_READ ||
        g->role > RPC_ROLE_ADMIN || strlen(g->identity) >= 64) {
      rpc_access_free(a);
      return err_new(MICA_INVALID_ARGUMENT,
                     "access grant %zu: digest of %zu bytes (want 32), role "
                     "%u (want 1..3)", i, g->token_sha256.len,
                     (unsigned)g->role);
    }
    memcpy(a->grants[i].sha, g->token_sha256.data, 32);
    a->grants[i].identity = xstrdup(g->identity);
    a->grants[i].role = (rpc_role)g->role;
    a->n++;
  }
  *out = a;
  return NULL;
}

/* ---- the decision ---- */

struct rpc_auth {
  rpc_secret secret;
  pthread_rwlock_t mu;
  rpc_access *acc; /* guarded by mu; NULL = pending */
};

rpc_auth *rpc_auth_new(const rpc_secret *secret, rpc_access *initial) {
  rpc_auth *a = xcalloc(1, sizeof *a);
  a->secret = *secret;
  pthread_rwlock_init(&a->mu, NULL);
  a->acc = initial;
  return a;
}

void rpc_auth_free(rpc_auth *a) {
  if (a == NULL) return;
  rpc_access_free(a->acc);
  pthread_rwlock_destroy(&a->mu);
  OPENSSL_cleanse(&a->secret, sizeof a->secret);
  free(a);
}

void rpc_auth_set_access(rpc_auth *a, rpc_access *acc) {
  pthread_rwlock_wrlock(&a->mu);
  rpc_access *old = a->acc;
  a->acc = acc;
  pthread_rwlock_unlock(&a->mu);
  rpc_access_free(old);
}

/* The HMAC implementation, fetched once per process. */
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg;
static void hmac_fetch(void) { hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL); }

static void member_mac(const rpc_secret *s, const char *path, slice body,
                       uint64_t ms, uint8_t mac[32]) {
  char head[256];
  int hl = snprintf(head, sizeof head, "mica-member-v1\n%s\n%llu\n", path,
                    (unsigned long long)ms);
  if (hl < 0 || (size_t)hl >= sizeof head) hl = (int)sizeof head - 1;
  pthread_once(&hmac_once, hmac_fetch);
  EVP_MAC_CTX *c = hmac_alg != NULL ? EVP_MAC_CTX_new(hmac_alg) : NULL;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  size_t len = 0;
  if (c == NULL || !EVP_MAC_init(c, s->b, sizeof s->b, params) ||
      !EVP_MAC_update(c, (const unsigned char *)head, (size_t)hl) ||
      !EVP_MAC_update(c, body.data != NULL ? body.data : (const uint8_t *)"",
                      body.len) ||
      !EVP_MAC_final(c, mac, &len, 32) || len != 32) {
    /* Cannot compute: a proof of zeros never verifies, as it should not. */
    memset(mac, 0, 32);
  }
  EVP_MAC_CTX_free(c);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void rpc_member_proof(const rpc_secret *s, const char *path, slice body,
                      uint64_t ms, char *out) {
  uint8_t mac[32];
  member_mac(s, path, body, ms, mac);
  int n = snprintf(out, RPC_MEMBER_PROOF_MAX, "v1 %llu ",
                   (unsigned long long)ms);
  to_hex(mac, 32, out + n);
}

/* Checks an x-mica-member value. */
static mica_err *member_verify(const rpc_secret *s, const char *path,
                               slice body, const char *v, size_t n) {
  char text[RPC_MEMBER_PROOF_MAX];
  if (n >= sizeof text || n < 4 || memcmp(v, "v1 ", 3) != 0)
    return err_new(MICA_UNAUTHENTICATED,
                   "%s: malformed membership proof (x-mica-member)", path);
  memcpy(text, v + 3, n - 3);
  text[n - 3] = '\0';
  char *end = NULL;
  errno = 0;
  unsigned long long ms = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != ' ' || strlen(end + 1) != 64)
    return err_new(MICA_UNAUTHENTICATED,
                   "%s: malformed membership proof (x-mica-member)", path);
  uint8_t given[32];
  for (int i = 0; i < 32; i++) {
    int hi = hexval((unsigned char)end[1 + 2 * i]);
    int lo = hexval((unsigned char)end[2 + 2 * i]);
    if (hi < 0 || lo < 0)
      return err_new(MICA_UNAUTHENTICATED,
                     "%s: malformed membership proof (x-mica-member)", path);
    given[i] = (uint8_t)(hi << 4 | lo);
  }
  uint64_t now = now_ms();
  uint64_t skew = now > ms ? now - ms : ms - now;
  if (skew > RPC_MEMBER_SKEW_MS)
    return err_new(MICA_UNAUTHENTICATED,
                   "%s: membership proof is %llu ms from this server's clock "
                   "(at most %d allowed): check the clocks", path,
                   (unsigned long long)skew, RPC_MEMBER_SKEW_MS);
  uint8_t want[32];
  member_mac(s, path, body, ms, want);
  if (CRYPTO_memcmp(given, want, 32) != 0)
    return err_new(MICA_UNAUTHENTICATED,
                   "%s: membership proof does not verify: the caller does "
                   "not hold this cluster's secret", path);
  return NULL;
}

/* The client-token half of the decision: `need` for `what`; `token` (len
 * bytes) the bearer token, NULL when none was given. */
static mica_err *token_check(rpc_auth *a, const char *what, rpc_role need,
                             const char *token, size_t len,
                             rpc_identity *id) {
  uint8_t d[32];
  if (token != NULL) sha256(token, len, d);
  pthread_rwlock_rdlock(&a->mu);
  const rpc_access *acc = a->acc;
  mica_err *e = NULL;
  if (acc == NULL) {
    e = err_new(MICA_UNAVAILABLE,
                "%s: this server has not yet received the access table from "
                "its master; retry", what);
  } else if (!acc->enabled) {
    /* No tokens file: client calls are open (docs/security.md). */
    id->role = RPC_ROLE_ADMIN;
    snprintf(id->name, sizeof id->name, "anonymous");
  } else if (token == NULL) {
    e = err_new(MICA_UNAUTHENTICATED,
                "%s needs role '%s': no token given (--token or MICA_TOKEN)",
                what, rpc_role_name(need));
  } else {
    const rpc_grant *hit = NULL;
    /* Every entry is compared, in constant time, whatever matches. */
    for (size_t i = 0; i < acc->n; i++)
      if (CRYPTO_memcmp(acc->grants[i].sha, d, 32) == 0) hit = &acc->grants[i];
    if (hit == NULL) {
      e = err_new(MICA_UNAUTHENTICATED,
                  "%s needs role '%s': the token is not recognised", what,
                  rpc_role_name(need));
    } else {
      id->role = hit->role;
      snprintf(id->name, sizeof id->name, "%s", hit->identity);
      if (hit->role < need)
        e = err_new(MICA_PERMISSION_DENIED,
                    "%s needs role '%s'; identity '%s' has role '%s'", what,
                    rpc_role_name(need), hit->identity,
                    rpc_role_name(hit->role));
    }
  }
  pthread_rwlock_unlock(&a->mu);
  OPENSSL_cleanse(d, sizeof d);
  return e;
}

mica_err *rpc_auth_check(rpc_auth *a, const char *path, slice body,
                         const char *member, size_t member_len,
                         const char *bearer, size_t bearer_len,
                         rpc_identity *id) {
  rpc_role need = rpc_path_role(path);
  memset(id, 0, sizeof *id);
  if (member != NULL) {
    mica_err *e = member_verify(&a->secret, path, body, member, member_len);
    if (e != NULL) return e;
    id->role = RPC_ROLE_MEMBER;
    snprintf(id->name, sizeof id->name, "member");
    return NULL;
  }
  if (need == RPC_ROLE_MEMBER)
    return err_new(MICA_PERMISSION_DENIED,
                   "%s is for cluster members only: the call carries no "
                   "membership proof (signed with the cluster secret)",
                   path);
  if (bearer != NULL &&
      (bearer_len <= 7 || strncasecmp(bearer, "Bearer ", 7) != 0))
    return err_new(MICA_UNAUTHENTICATED,
                   "%s: authorization metadata is not \"Bearer <token>\"",
                   path);
  return token_check(a, path, need, bearer ? bearer + 7 : NULL,
                     bearer ? bearer_len - 7 : 0, id);
}

mica_err *rpc_auth_check_http(rpc_auth *a, const char *what,
                              const char *authorization, rpc_role need,
                              rpc_identity *id) {
  memset(id, 0, sizeof *id);
  if (authorization == NULL)
    return token_check(a, what, need, NULL, 0, id);
  size_t n = strlen(authorization);
  if (n > 7 && strncasecmp(authorization, "Bearer ", 7) == 0)
    return token_check(a, what, need, authorization + 7, n - 7, id);
  if (n > 6 && strncasecmp(authorization, "Basic ", 6) == 0 && n < 4096) {
    /* A browser's login box: any user name, the token as password. */
    const char *b64 = authorization + 6;
    size_t bl = strlen(b64);
    unsigned char *raw = xmalloc(bl + 4);
    int rl = bl % 4 == 0
                 ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)bl)
                 : -1;
    if (rl >= 0) {
      /* EVP_DecodeBlock counts '=' padding as zero bytes: drop them. */
      if (bl >= 1 && b64[bl - 1] == '=') rl--;
      if (bl >= 2 && b64[bl - 2] == '=') rl--;
    }
    char *colon = rl > 0 ? memchr(raw, ':', (size_t)rl) : NULL;
    mica_err *e;
    if (colon == NULL)
      e = err_new(MICA_UNAUTHENTICATED,
                  "%s: Basic credentials are not base64 of \"user:token\"",
                  what);
    else
      e = token_check(a, what, need, colon + 1,
                      (size_t)rl - (size_t)(colon + 1 - (char *)raw), id);
    OPENSSL_cleanse(raw, bl + 4);
    free(raw);
    return e;
  }
  return err_new(MICA_UNAUTHENTICATED,
                 "%s: Authorization is neither \"Bearer <token>\" nor "
                 "Basic", what);
}
