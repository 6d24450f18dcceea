/* auth: cluster secret, token table and the per-call decision (contract in
 * auth.h). Cryptography is OpenSSL's: HMAC-SHA256, SHA-256 and
 * CRYPTO_memcmp; random bytes come from getrandom(2). */
#include "proto/auth.h"
#include "proto/limits.h"

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

#define T RPC_SCOPE_TABLE
#define C RPC_SCOPE_CLUSTER
#define A RPC_SCOPE_ANY
static const struct {
  const char *path;
  rpc_role role;
  rpc_scope scope;
} method_roles[] = {
    {"/mica.v1.TabletServer/Get", RPC_ROLE_READ, T},
    {"/mica.v1.TabletServer/MultiGet", RPC_ROLE_READ, T},
    {"/mica.v1.TabletServer/Scan", RPC_ROLE_READ, T},
    {"/mica.v1.TabletServer/TabletInfo", RPC_ROLE_READ, T},
    {"/mica.v1.TabletServer/Put", RPC_ROLE_WRITE, T},
    {"/mica.v1.TabletServer/Delete", RPC_ROLE_WRITE, T},
    {"/mica.v1.TabletServer/Batch", RPC_ROLE_WRITE, T},
    {"/mica.v1.TabletServer/OpenTablet", RPC_ROLE_MEMBER, C},
    {"/mica.v1.TabletServer/CloseTablet", RPC_ROLE_MEMBER, C},
    {"/mica.v1.TabletServer/SplitTablet", RPC_ROLE_MEMBER, C},
    {"/mica.v1.Master/ListTables", RPC_ROLE_READ, A},
    {"/mica.v1.Master/LookupTablets", RPC_ROLE_READ, T},
    {"/mica.v1.Master/ListTablets", RPC_ROLE_READ, T},
    {"/mica.v1.Master/ListServers", RPC_ROLE_READ, C},
    {"/mica.v1.Master/ListEvents", RPC_ROLE_READ, C},
    {"/mica.v1.Master/GetInfo", RPC_ROLE_READ, A},
    {"/mica.v1.Master/CreateTable", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/DropTable", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/SplitTablet", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/MoveTablet", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/MergeTablets", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/Balance", RPC_ROLE_ADMIN, C},
    {"/mica.v1.Master/Configure", RPC_ROLE_ADMIN, C},
    {"/mica.v1.Master/AlterTable", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/DrainServer", RPC_ROLE_ADMIN, C},
    {"/mica.v1.TabletServer/SnapshotTablet", RPC_ROLE_MEMBER, C},
    {"/mica.v1.Master/CreateSnapshot", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/ListSnapshots", RPC_ROLE_READ, C},
    {"/mica.v1.Master/DropSnapshot", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/CloneSnapshot", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/ExportSnapshot", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/RestoreSnapshot", RPC_ROLE_ADMIN, T},
    {"/mica.v1.Master/RegisterServer", RPC_ROLE_MEMBER, C},
    {"/mica.v1.Master/Heartbeat", RPC_ROLE_MEMBER, C},
    {"/mica.v1.Master/ReportSplit", RPC_ROLE_MEMBER, C},
    {"/mica.v1.Echo/Echo", RPC_ROLE_READ, A},
    {"/mica.v1.Echo/EchoStream", RPC_ROLE_READ, A},
};
#undef T
#undef C
#undef A

static int method_index(const char *path) {
  for (size_t i = 0; i < sizeof method_roles / sizeof method_roles[0]; i++)
    if (strcmp(method_roles[i].path, path) == 0) return (int)i;
  return -1;
}

rpc_role rpc_path_role(const char *path) {
  int i = method_index(path);
  return i >= 0 ? method_roles[i].role : RPC_ROLE_MEMBER;
}

rpc_scope rpc_path_scope(const char *path) {
  int i = method_index(path);
  return i >= 0 ? method_roles[i].scope : RPC_SCOPE_CLUSTER;
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

static void grant_clear(rpc_grant *g) {
  free(g->identity);
  free(g->cert);
  for (size_t i = 0; i < g->ntables; i++) free(g->tables[i].table);
  free(g->tables);
}

void rpc_access_free(rpc_access *a) {
  if (a == NULL) return;
  for (size_t i = 0; i < a->n; i++) grant_clear(&a->grants[i]);
  free(a->grants);
  free(a);
}

static void sha256(const void *p, size_t n, uint8_t out[32]) {
  SHA256(p, n, out);
}

static rpc_role role_parse(const char *s, size_t n) {
  if (n == 4 && memcmp(s, "read", 4) == 0) return RPC_ROLE_READ;
  if (n == 5 && memcmp(s, "write", 5) == 0) return RPC_ROLE_WRITE;
  if (n == 5 && memcmp(s, "admin", 5) == 0) return RPC_ROLE_ADMIN;
  return RPC_ROLE_NONE;
}

/* A table pattern: "*", a table name (1..MICA_MAX_TABLE_NAME of
 * [A-Za-z0-9_.-], as the master accepts), or such a prefix then "*". */
static bool pattern_valid(const char *p) {
  size_t n = strlen(p);
  if (n == 0 || n > MICA_MAX_TABLE_NAME) return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
              (c == '*' && i == n - 1);
    if (!ok) return false;
  }
  return true;
}

static bool pattern_match(const char *pat, const char *table) {
  size_t n = strlen(pat);
  if (n > 0 && pat[n - 1] == '*') return strncmp(pat, table, n - 1) == 0;
  return strcmp(pat, table) == 0;
}

rpc_role rpc_grant_table_role(const rpc_grant *g, const char *table) {
  rpc_role r = g->role;
  if (table == NULL) return r;
  for (size_t i = 0; i < g->ntables; i++)
    if (g->tables[i].role > r && pattern_match(g->tables[i].table, table))
      r = g->tables[i].role;
  return r;
}

/* The highest role `g` holds anywhere. */
static rpc_role grant_max_role(const rpc_grant *g) {
  rpc_role r = g->role;
  for (size_t i = 0; i < g->ntables; i++)
    if (g->tables[i].role > r) r = g->tables[i].role;
  return r;
}

/* One "<role>" or "<role>:<pattern>" of a tokens-file line into g. */
static mica_err *grant_parse(const char *path, int lineno, const char *word,
                             rpc_grant *g) {
  const char *colon = strchr(word, ':');
  size_t rl = colon != NULL ? (size_t)(colon - word) : strlen(word);
  rpc_role r = role_parse(word, rl);
  if (r == RPC_ROLE_NONE)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tokens file %s line %d: role '%.*s' is not read, write "
                   "or admin", path, lineno, (int)rl, word);
  const char *pat = colon != NULL ? colon + 1 : "*";
  if (!pattern_valid(pat))
    return err_new(MICA_INVALID_ARGUMENT,
                   "tokens file %s line %d: '%s' is not a table pattern (a "
                   "table name of A-Z a-z 0-9 _ . -, optionally ending in "
                   "'*', or '*' for every table)", path, lineno, pat);
  if (strcmp(pat, "*") == 0) {
    if (g->role != RPC_ROLE_NONE)
      return err_new(MICA_INVALID_ARGUMENT,
                     "tokens file %s line %d: two roles on every table "
                     "('*') for '%s'", path, lineno, g->identity);
    g->role = r;
    return NULL;
  }
  for (size_t i = 0; i < g->ntables; i++)
    if (strcmp(g->tables[i].table, pat) == 0)
      return err_new(MICA_INVALID_ARGUMENT,
                     "tokens file %s line %d: two roles on '%s' for '%s'",
                     path, lineno, pat, g->identity);
  g->tables = xrealloc(g->tables, (g->ntables + 1) * sizeof *g->tables);
  g->tables[g->ntables].table = xstrdup(pat);
  g->tables[g->ntables].role = r;
  g->ntables++;
  return NULL;
}

#define CERT_PREFIX "cert:"
#define CERT_NAME_MAX 255

/* One non-comment line ("<credential> <identity> <grant>...") into g,
 * checked against the grants in `a` for a repeated credential. `cred`
 * (a token) is wiped. */
static mica_err *line_parse(const char *path, int lineno, char *line,
                            const rpc_access *a, rpc_grant *g) {
  char *save = NULL;
  char *cred = strtok_r(line, " \t\r\n", &save);
  char *ident = strtok_r(NULL, " \t\r\n", &save);
  char *word = strtok_r(NULL, " \t\r\n", &save);
  if (ident == NULL || word == NULL)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tokens file %s line %d: expected \"<token or "
                   "cert:NAME> <identity> <role>[:<table>]...\"", path,
                   lineno);
  if (strlen(ident) >= sizeof ((rpc_identity *)0)->name)
    return err_new(MICA_INVALID_ARGUMENT,
                   "tokens file %s line %d: identity longer than %zu "
                   "characters", path, lineno,
                   sizeof ((rpc_identity *)0)->name - 1);
  g->identity = xstrdup(ident);
  bool is_cert = strncmp(cred, CERT_PREFIX, strlen(CERT_PREFIX)) == 0;
  if (is_cert) {
    const char *name = cred + strlen(CERT_PREFIX);
    if (name[0] == '\0' || strlen(name) > CERT_NAME_MAX)
      return err_new(MICA_INVALID_ARGUMENT,
                     "tokens file %s line %d: certificate name for '%s' is "
                     "empty or longer than %d characters", path, lineno,
                     ident, CERT_NAME_MAX);
    g->cert = xstrdup(name);
  } else {
    if (strlen(cred) < 16) {
      OPENSSL_cleanse(cred, strlen(cred));
      return err_new(MICA_INVALID_ARGUMENT,
                     "tokens file %s line %d: token for '%s' is shorter than "
                     "16 characters", path, lineno, ident);
    }
    sha256(cred, strlen(cred), g->sha);
    OPENSSL_cleanse(cred, strlen(cred));
  }
  for (; word != NULL; word = strtok_r(NULL, " \t\r\n", &save)) {
    mica_err *e = grant_parse(path, lineno, word, g);
    if (e != NULL) return e;
  }
  for (size_t i = 0; i < a->n; i++) {
    const rpc_grant *o = &a->grants[i];
    if (is_cert ? (o->cert != NULL && strcmp(o->cert, g->cert) == 0)
                : (o->cert == NULL && memcmp(o->sha, g->sha, 32) == 0))
      return err_new(MICA_INVALID_ARGUMENT,
                     "tokens file %s line %d: the %s of '%s' is already "
                     "listed for '%s'", path, lineno,
                     is_cert ? "certificate name" : "token", ident,
                     o->identity);
  }
  return NULL;
}

mica_err *rpc_access_load(const char *path, rpc_access **out) {
  *out = NULL;
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "tokens file %s: %s", path,
                   strerror(errno));
  rpc_access *a = xcalloc(1, sizeof *a);
  a->enabled = true;
  char line[4096];
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
    size_t lead = strspn(line, " \t\r\n");
    if (line[lead] == '\0' || line[lead] == '#') continue;
    rpc_grant g;
    memset(&g, 0, sizeof g);
    e = line_parse(path, lineno, line, a, &g);
    if (e != NULL) {
      grant_clear(&g);
      break;
    }
    a->grants = xrealloc(a->grants, (a->n + 1) * sizeof *a->grants);
    a->grants[a->n++] = g;
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
    const rpc_grant *g = &a->grants[i];
    rpc_access_grant *o = &w->grants[i];
    if (g->cert == NULL) o->token_sha256 = slice_make(g->sha, 32);
    o->cert = g->cert != NULL ? g->cert : "";
    o->identity = g->identity;
    o->role = (uint32_t)g->role;
    o->n_tables = g->ntables;
    o->tables = g->ntables ? xcalloc(g->ntables, sizeof *o->tables) : NULL;
    for (size_t j = 0; j < g->ntables; j++) {
      o->tables[j].table = g->tables[j].table;
      o->tables[j].role = (uint32_t)g->tables[j].role;
    }
  }
}

void rpc_access_wire_free(rpc_access_table *w) {
  for (size_t i = 0; i < w->n_grants; i++) free(w->grants[i].tables);
  free(w->grants);
  w->grants = NULL;
  w->n_grants = 0;
}

static mica_err *grant_from_wire(size_t i, const rpc_access_grant *w,
                                 rpc_grant *g) {
  const char *cert = w->cert != NULL ? w->cert : "";
  const char *ident = w->identity != NULL ? w->identity : "";
  bool is_cert = cert[0] != '\0';
  if (is_cert ? w->token_sha256.len != 0 || strlen(cert) > CERT_NAME_MAX
              : w->token_sha256.len != 32)
    return err_new(MICA_INVALID_ARGUMENT,
                   "access grant %zu: a digest of %zu bytes (want 32) or a "
                   "certificate name of 1..%d characters, not both", i,
                   w->token_sha256.len, CERT_NAME_MAX);
  if (w->role > RPC_ROLE_ADMIN || strlen(ident) >= 64)
    return err_new(MICA_INVALID_ARGUMENT,
                   "access grant %zu: role %u (want 0..3) or identity of "
                   "%zu characters (want < 64)", i, (unsigned)w->role,
                   strlen(ident));
  g->identity = xstrdup(ident);
  if (is_cert) g->cert = xstrdup(cert);
  else memcpy(g->sha, w->token_sha256.data, 32);
  g->role = (rpc_role)w->role;
  if (w->n_tables) g->tables = xcalloc(w->n_tables, sizeof *g->tables);
  for (size_t j = 0; j < w->n_tables; j++) {
    const rpc_table_grant *t = &w->tables[j];
    if (t->table == NULL || !pattern_valid(t->table) ||
        strcmp(t->table, "*") == 0 || t->role < RPC_ROLE_READ ||
        t->role > RPC_ROLE_ADMIN)
      return err_new(MICA_INVALID_ARGUMENT,
                     "access grant %zu table %zu: bad pattern or role %u", i,
                     j, (unsigned)t->role);
    g->tables[j].table = xstrdup(t->table);
    g->tables[j].role = (rpc_role)t->role;
    g->ntables++;
  }
  return NULL;
}

mica_err *rpc_access_from_wire(const rpc_access_table *w, rpc_access **out) {
  *out = NULL;
  rpc_access *a = xcalloc(1, sizeof *a);
  a->enabled = w->enabled;
  if (w->n_grants) a->grants = xcalloc(w->n_grants, sizeof *a->grants);
  for (size_t i = 0; i < w->n_grants; i++) {
    mica_err *e = grant_from_wire(i, &w->grants[i], &a->grants[i]);
    a->n++; /* counted even when half filled, so free releases it */
    if (e != NULL) {
      rpc_access_free(a);
      return e;
    }
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
static pthread_key_t hmac_key; /* per thread: a keyed context (hmac_tls) */
static bool hmac_key_ok;

/* Each thread keeps one HMAC context keyed with the last secret it used,
 * so a proof costs a re-init (the digest state of the key is kept) and
 * two updates, not a digest fetch by name, a context and a keying per
 * call: that was most of the cost of checking a member's call (about 8%
 * of a tablet server's CPU per Get; docs/benchmarks.md, "The request path
 * again"). Both are cleansed and freed when the thread exits. */
typedef struct hmac_tls {
  EVP_MAC_CTX *c;
  uint8_t key[RPC_SECRET_BYTES];
} hmac_tls;

static void hmac_tls_free(void *p) {
  hmac_tls *t = p;
  EVP_MAC_CTX_free(t->c);
  OPENSSL_cleanse(t->key, sizeof t->key);
  free(t);
}

static void hmac_fetch(void) {
  hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
  hmac_key_ok = pthread_key_create(&hmac_key, hmac_tls_free) == 0;
}

/* This thread's context, keyed with `s` and ready for updates; NULL when
 * OpenSSL cannot give one. */
static EVP_MAC_CTX *hmac_ready(const rpc_secret *s) {
  pthread_once(&hmac_once, hmac_fetch);
  if (hmac_alg == NULL || !hmac_key_ok) return NULL;
  hmac_tls *t = pthread_getspecific(hmac_key);
  if (t != NULL && CRYPTO_memcmp(t->key, s->b, sizeof s->b) == 0)
    return EVP_MAC_init(t->c, NULL, 0, NULL) ? t->c : NULL;
  if (t == NULL) {
    t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->c = EVP_MAC_CTX_new(hmac_alg);
    if (t->c == NULL || pthread_setspecific(hmac_key, t) != 0) {
      hmac_tls_free(t);
      return NULL;
    }
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  /* A failed keying leaves the cached key unmatched, so the next call
   * keys again rather than reusing a context in an unknown state. */
  memset(t->key, 0, sizeof t->key);
  if (!EVP_MAC_init(t->c, s->b, sizeof s->b, params)) return NULL;
  memcpy(t->key, s->b, sizeof s->b);
  return t->c;
}

static void member_mac(const rpc_secret *s, const char *path, slice body,
                       uint64_t ms, uint8_t mac[32]) {
  /* "mica-member-v1\n<path>\n<ms>\n", the text both ends sign. */
  static const char tag[] = "mica-member-v1\n";
  char head[512];
  size_t hl = sizeof tag - 1;
  memcpy(head, tag, hl);
  size_t pl = strnlen(path, 400);
  memcpy(head + hl, path, pl);
  hl += pl;
  head[hl++] = '\n';
  char digits[24];
  size_t nd = 0;
  do {
    digits[nd++] = (char)('0' + ms % 10);
    ms /= 10;
  } while (ms != 0);
  while (nd > 0) head[hl++] = digits[--nd];
  head[hl++] = '\n';
  if (hl > 255) hl = 255; /* what the snprintf into 256 bytes signed */
  EVP_MAC_CTX *c = hmac_ready(s);
  size_t len = 0;
  if (c == NULL ||
      !EVP_MAC_update(c, (const unsigned char *)head, hl) ||
      !EVP_MAC_update(c, body.data != NULL ? body.data : (const uint8_t *)"",
                      body.len) ||
      !EVP_MAC_final(c, mac, &len, 32) || len != 32) {
    /* Cannot compute: a proof of zeros never verifies, as it should not. */
    memset(mac, 0, 32);
  }
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

/* The grant a token digest or certificate names find in `acc`, or NULL.
 * Every token grant is compared, in constant time, whatever matches. */
static const rpc_grant *find_token(const rpc_access *acc, const uint8_t d[32]) {
  const rpc_grant *hit = NULL;
  for (size_t i = 0; i < acc->n; i++)
    if (acc->grants[i].cert == NULL &&
        CRYPTO_memcmp(acc->grants[i].sha, d, 32) == 0)
      hit = &acc->grants[i];
  return hit;
}

static const rpc_grant *find_cert(const rpc_access *acc, const char *name) {
  for (size_t i = 0; i < acc->n; i++)
    if (acc->grants[i].cert != NULL && strcmp(acc->grants[i].cert, name) == 0)
      return &acc->grants[i];
  return NULL;
}

/* The client half of the decision: `need` in `scope` for `what`; `token`
 * (len bytes) the bearer token, NULL when none was given; `peer` the
 * names of a verified client certificate (may be NULL). */
static mica_err *client_check(rpc_auth *a, const char *what, rpc_role need,
                              rpc_scope scope, const char *token, size_t len,
                              const rpc_peer_names *peer, rpc_identity *id) {
  uint8_t d[32];
  if (token != NULL) sha256(token, len, d);
  bool has_cert = token == NULL && peer != NULL && peer->n > 0;
  pthread_rwlock_rdlock(&a->mu);
  const rpc_access *acc = a->acc;
  mica_err *e = NULL;
  const rpc_grant *hit = NULL;
  if (acc == NULL) {
    e = err_new(MICA_UNAVAILABLE,
                "%s: this server has not yet received the access table from "
                "its master; retry", what);
  } else if (!acc->enabled) {
    /* No tokens file: client calls are open (docs/security.md). */
    id->role = RPC_ROLE_ADMIN;
    id->by = RPC_BY_OPEN;
    snprintf(id->name, sizeof id->name, "anonymous");
  } else if (token != NULL) {
    hit = find_token(acc, d);
    if (hit == NULL)
      e = err_new(MICA_UNAUTHENTICATED,
                  "%s needs role '%s': the token is not recognised", what,
                  rpc_role_name(need));
    else {
      id->by = RPC_BY_TOKEN;
      memcpy(id->sha, d, 32);
    }
  } else if (has_cert) {
    /* The subject CN first, then the SANs in the certificate's order. */
    for (size_t i = 0; i < peer->n && hit == NULL; i++)
      if (peer->names[i] != NULL) hit = find_cert(acc, peer->names[i]);
    if (hit == NULL)
      e = err_new(MICA_UNAUTHENTICATED,
                  "%s needs role '%s': client certificate '%.200s' is not "
                  "in the tokens file (no cert:NAME grant) and no token was "
                  "given", what, rpc_role_name(need),
                  peer->names[0] != NULL ? peer->names[0] : "");
    else {
      id->by = RPC_BY_CERT;
      snprintf(id->cert, sizeof id->cert, "%s", hit->cert);
    }
  } else {
    e = err_new(MICA_UNAUTHENTICATED,
                "%s needs role '%s': no token given (--token or MICA_TOKEN) "
                "and no client certificate", what, rpc_role_name(need));
  }
  if (hit != NULL) {
    snprintf(id->name, sizeof id->name, "%s", hit->identity);
    rpc_role every = hit->role, most = grant_max_role(hit);
    if (scope == RPC_SCOPE_TABLE) {
      /* Decided per table once the request names them, so that a refusal
       * can name the table (rpc_auth_check_table). */
      id->role = most;
      id->scoped = every < need;
    } else if (scope == RPC_SCOPE_CLUSTER) {
      id->role = every;
      if (every < need && most >= need)
        e = err_new(MICA_PERMISSION_DENIED,
                    "%s needs role '%s' on every table ('*'); identity '%s' "
                    "has it only on some tables", what, rpc_role_name(need),
                    hit->identity);
      else if (every < need)
        e = err_new(MICA_PERMISSION_DENIED,
                    "%s needs role '%s'; identity '%s' has role '%s'", what,
                    rpc_role_name(need), hit->identity, rpc_role_name(every));
    } else {
      id->role = most;
      if (most < need)
        e = err_new(MICA_PERMISSION_DENIED,
                    "%s needs role '%s'; identity '%s' has role '%s'", what,
                    rpc_role_name(need), hit->identity, rpc_role_name(most));
    }
  }
  pthread_rwlock_unlock(&a->mu);
  OPENSSL_cleanse(d, sizeof d);
  return e;
}

mica_err *rpc_auth_check(rpc_auth *a, const char *path, slice body,
                         const char *member, size_t member_len,
                         const char *bearer, size_t bearer_len,
                         const rpc_peer_names *peer, rpc_identity *id) {
  rpc_role need = rpc_path_role(path);
  memset(id, 0, sizeof *id);
  if (member != NULL) {
    mica_err *e = member_verify(&a->secret, path, body, member, member_len);
    if (e != NULL) return e;
    id->role = RPC_ROLE_MEMBER;
    id->by = RPC_BY_MEMBER;
    memcpy(id->name, "member", sizeof "member");
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
  return client_check(a, path, need, rpc_path_scope(path),
                      bearer ? bearer + 7 : NULL,
                      bearer ? bearer_len - 7 : 0, peer, id);
}

bool rpc_auth_clients_checked(rpc_auth *a) {
  pthread_rwlock_rdlock(&a->mu);
  bool on = a->acc != NULL && a->acc->enabled;
  pthread_rwlock_unlock(&a->mu);
  return on;
}

rpc_role rpc_auth_table_role(rpc_auth *a, const rpc_identity *id,
                             const char *table) {
  switch (id->by) {
    case RPC_BY_MEMBER: return RPC_ROLE_MEMBER;
    case RPC_BY_OPEN: return RPC_ROLE_ADMIN;
    case RPC_BY_TOKEN:
    case RPC_BY_CERT: break;
    case RPC_BY_NOTHING: return RPC_ROLE_NONE;
  }
  rpc_role r = RPC_ROLE_NONE;
  pthread_rwlock_rdlock(&a->mu);
  const rpc_access *acc = a->acc;
  if (acc != NULL && !acc->enabled) {
    r = RPC_ROLE_ADMIN; /* the tokens file was removed: open */
  } else if (acc != NULL) {
    const rpc_grant *g = id->by == RPC_BY_TOKEN ? find_token(acc, id->sha)
                                                : find_cert(acc, id->cert);
    if (g != NULL) r = rpc_grant_table_role(g, table);
  }
  pthread_rwlock_unlock(&a->mu);
  return r;
}

mica_err *rpc_auth_check_table(rpc_auth *a, const rpc_identity *id,
                               const char *path, rpc_role need,
                               const char *table) {
  rpc_role r = rpc_auth_table_role(a, id, table);
  if (r >= need) return NULL;
  if (r == RPC_ROLE_NONE && (id->by == RPC_BY_TOKEN || id->by == RPC_BY_CERT)) {
    /* Distinguish a credential revoked meanwhile from a missing role. */
    pthread_rwlock_rdlock(&a->mu);
    const rpc_access *acc = a->acc;
    bool known = acc != NULL &&
                 (id->by == RPC_BY_TOKEN ? find_token(acc, id->sha)
                                         : find_cert(acc, id->cert)) != NULL;
    pthread_rwlock_unlock(&a->mu);
    if (!known)
      return err_new(MICA_UNAUTHENTICATED,
                     "%s needs role '%s': the credential of identity '%s' "
                     "is no longer recognised", path, rpc_role_name(need),
                     id->name);
  }
  if (table == NULL)
    return err_new(MICA_PERMISSION_DENIED,
                   "%s needs role '%s' on every table ('*'); identity '%s' "
                   "has role '%s' there", path, rpc_role_name(need), id->name,
                   rpc_role_name(r));
  return err_new(MICA_PERMISSION_DENIED,
                 "%s needs role '%s' on table '%s'; identity '%s' has role "
                 "'%s' there", path, rpc_role_name(need), table, id->name,
                 rpc_role_name(r));
}

mica_err *rpc_auth_check_http(rpc_auth *a, const char *what,
                              const char *authorization, rpc_role need,
                              rpc_identity *id) {
  memset(id, 0, sizeof *id);
  if (authorization == NULL)
    return client_check(a, what, need, RPC_SCOPE_CLUSTER, NULL, 0, NULL, id);
  size_t n = strlen(authorization);
  if (n > 7 && strncasecmp(authorization, "Bearer ", 7) == 0)
    return client_check(a, what, need, RPC_SCOPE_CLUSTER, authorization + 7,
                        n - 7, NULL, id);
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
      e = client_check(a, what, need, RPC_SCOPE_CLUSTER, colon + 1,
                       (size_t)rl - (size_t)(colon + 1 - (char *)raw), NULL,
                       id);
    OPENSSL_cleanse(raw, bl + 4);
    free(raw);
    return e;
  }
  return err_new(MICA_UNAUTHENTICATED,
                 "%s: Authorization is neither \"Bearer <token>\" nor "
                 "Basic", what);
}
