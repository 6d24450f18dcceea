/* proto/auth: the cluster secret file, the tokens file, the access table on
 * the wire, and every branch of the per-call decision (membership proofs,
 * tokens, HTTP credentials), including the failure paths and what the
 * messages must not contain. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "proto/auth.h"
#include "tests/harness/testutil.h"

static char g_dir[1024];

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
  CU_ASSERT_EQUAL(chmod(path, mode), 0);
}

/* `e` has `code` and its message contains `part` and not `secret`. */
static void expect(mica_err *e, int code, const char *part,
                   const char *secret, const char *what) {
  if (e == NULL) {
    fprintf(stderr, "%s: succeeded, expected %s\n", what,
            mica_code_name(code));
    CU_FAIL(what);
    return;
  }
  if (err_code(e) != code || (part && !strstr(err_msg(e), part)) ||
      (secret && strstr(err_msg(e), secret))) {
    fprintf(stderr, "%s: got %s \"%s\"\n", what, mica_code_name(err_code(e)),
            err_msg(e));
    CU_FAIL(what);
  }
  err_free(e);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the secret ---- */

static void *create_one(void *arg) {
  rpc_secret *s = arg;
  mica_err *e = rpc_secret_load_or_create(g_dir, s, NULL);
  if (e != NULL) {
    fprintf(stderr, "create: %s\n", err_msg(e));
    err_free(e);
    memset(s, 0, sizeof *s);
  }
  return NULL;
}

static void test_secret_create(void) {
  snprintf(g_dir, sizeof g_dir, "%s/race", tu_tmpdir());
  CU_ASSERT_EQUAL_FATAL(mkdir(g_dir, 0700), 0);
  /* Eight creators at once agree on one secret. */
  enum { N = 8 };
  pthread_t t[N];
  rpc_secret s[N];
  for (int i = 0; i < N; i++) pthread_create(&t[i], NULL, create_one, &s[i]);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  rpc_secret zero;
  memset(&zero, 0, sizeof zero);
  CU_ASSERT(memcmp(&s[0], &zero, sizeof zero) != 0);
  for (int i = 1; i < N; i++) CU_ASSERT(memcmp(&s[0], &s[i], sizeof s[0]) == 0);
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", g_dir, RPC_SECRET_FILE);
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
  /* Only the secret is left: no temporary files. */
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", g_dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
  /* Read again: the same, not created. */
  bool created = true;
  rpc_secret again;
  TU_OK(rpc_secret_load_or_create(g_dir, &again, &created));
  CU_ASSERT(!created);
  CU_ASSERT(memcmp(&again, &s[0], sizeof again) == 0);
}

static void test_secret_read_errors(void) {
  char path[1100];
  rpc_secret s;
  snprintf(path, sizeof path, "%s/nosuch", tu_tmpdir());
  expect(rpc_secret_read(path, &s), MICA_NOT_FOUND, "nosuch", NULL,
         "missing secret");
  snprintf(path, sizeof path, "%s/short.secret", tu_tmpdir());
  write_file(path, "abcd\n", 0600);
  expect(rpc_secret_read(path, &s), MICA_INVALID_ARGUMENT, "64 hex digits",
         NULL, "short secret");
  snprintf(path, sizeof path, "%s/nothex.secret", tu_tmpdir());
  char text[80];
  memset(text, 'g', 64);
  strcpy(text + 64, "\n");
  write_file(path, text, 0600);
  expect(rpc_secret_read(path, &s), MICA_INVALID_ARGUMENT, "not hex", NULL,
         "non-hex secret");
  snprintf(path, sizeof path, "%s/open.secret", tu_tmpdir());
  memset(text, 'a', 64);
  write_file(path, text, 0640);
  expect(rpc_secret_read(path, &s), MICA_PERMISSION_DENIED, "0640", NULL,
         "group-readable secret");
  CU_ASSERT_EQUAL(chmod(path, 0600), 0);
  TU_OK(rpc_secret_read(path, &s));
  CU_ASSERT_EQUAL(s.b[0], 0xaa);
  CU_ASSERT_EQUAL(s.b[31], 0xaa);
}

/* ---- tokens ---- */

#define T_ADMIN "tok-admin-0123456789"
#define T_WRITE "tok-write-0123456789"
#define T_READ "tok-read-01234567890"

static rpc_access *load_tokens(void) {
  char path[1100];
  snprintf(path, sizeof path, "%s/tokens.ok", tu_tmpdir());
  write_file(path,
             "# comment\n\n" T_ADMIN " alice admin\n" T_WRITE
             "\tbob\twrite\r\n   " T_READ " carol read\n",
             0600);
  rpc_access *a = NULL;
  TU_OK(rpc_access_load(path, &a));
  return a;
}

static void test_tokens_file(void) {
  rpc_access *a = load_tokens();
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT(a->enabled);
  CU_ASSERT_EQUAL_FATAL(a->n, 3);
  CU_ASSERT_STRING_EQUAL(a->grants[1].identity, "bob");
  CU_ASSERT_EQUAL(a->grants[1].role, RPC_ROLE_WRITE);
  CU_ASSERT_EQUAL(a->grants[2].role, RPC_ROLE_READ);

  /* Wire round trip. */
  rpc_access_table w;
  rpc_access_to_wire(a, &w);
  CU_ASSERT_EQUAL(w.n_grants, 3);
  CU_ASSERT_EQUAL(w.grants[0].token_sha256.len, 32);
  rpc_access *b = NULL;
  TU_OK(rpc_access_from_wire(&w, &b));
  CU_ASSERT_EQUAL(b->n, 3);
  CU_ASSERT(memcmp(b->grants[2].sha, a->grants[2].sha, 32) == 0);
  CU_ASSERT_STRING_EQUAL(b->grants[0].identity, "alice");
  rpc_access_free(b);
  b = NULL;
  w.grants[1].token_sha256.len = 31;
  expect(rpc_access_from_wire(&w, &b), MICA_INVALID_ARGUMENT, "grant 1",
         NULL, "short digest");
  w.grants[1].token_sha256.len = 32;
  w.grants[2].role = 7;
  rpc_access *c = NULL;
  expect(rpc_access_from_wire(&w, &c), MICA_INVALID_ARGUMENT, "role 7", NULL,
         "bad role on the wire");
  rpc_access_wire_free(&w);
  rpc_access_free(b);
  rpc_access_free(a);

  static const struct {
    const char *text, *part;
  } bad[] = {
      {"tok-0123456789abcdef alice\n", "line 1"},
      {"# x\ntok-0123456789abcdef alice admin extra\n", "line 2"},
      {"short alice admin\n", "shorter than 16"},
      {"tok-0123456789abcdef alice root\n", "'root' is not read"},
      {"tok-0123456789abcdef alice admin\ntok-0123456789abcdef bob read\n",
       "already listed for 'alice'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char path[1100];
    snprintf(path, sizeof path, "%s/tokens.bad%zu", tu_tmpdir(), i);
    write_file(path, bad[i].text, 0600);
    rpc_access *x = NULL;
    expect(rpc_access_load(path, &x), MICA_INVALID_ARGUMENT, bad[i].part,
           "tok-0123456789abcdef", bad[i].part);
    CU_ASSERT_PTR_NULL(x);
  }
  rpc_access *x = NULL;
  expect(rpc_access_load("/nonexistent/tokens", &x), MICA_INVALID_ARGUMENT,
         "/nonexistent/tokens", NULL, "missing tokens file");
}

/* ---- the decision ---- */

static rpc_secret secret_of(uint8_t fill) {
  rpc_secret s;
  memset(&s, fill, sizeof s);
  return s;
}

static mica_err *check_proof(rpc_auth *a, const char *proof_path,
                             const char *path, slice signed_body,
                             slice body, const rpc_secret *by, uint64_t ms,
                             rpc_identity *id) {
  char proof[RPC_MEMBER_PROOF_MAX];
  rpc_member_proof(by, proof_path, signed_body, ms, proof);
  (void)path;
  return rpc_auth_check(a, path, body, proof, strlen(proof), NULL, 0, NULL,
                        id);
}

/* The proof's text is fixed across versions (servers of two builds must
 * accept each other's calls): known HMAC-SHA256 values, including a path
 * long enough that only the first 255 bytes of the signed head count.
 * Each thread keeps its own keyed context (auth.c): proofs made on other
 * threads, alternating two secrets, must verify here and vice versa. */
static void *proof_thread(void *arg) {
  char *out = arg;
  rpc_secret bad = secret_of(0x22), good = secret_of(0x11);
  char scratch[RPC_MEMBER_PROOF_MAX];
  for (int i = 0; i < 50; i++)
    rpc_member_proof(i % 2 ? &bad : &good, "/p", slice_from_str("b"),
                     1700000000000ull, i % 2 ? scratch : out);
  rpc_member_proof(&good, "/mica.v1.TabletServer/OpenTablet",
                   slice_from_str("request bytes"), 1700000000000ull, out);
  return NULL;
}

static void test_membership_vectors(void) {
  rpc_secret good = secret_of(0x11), bad = secret_of(0x22);
  char proof[RPC_MEMBER_PROOF_MAX];
  rpc_member_proof(&good, "/mica.v1.TabletServer/OpenTablet",
                   slice_from_str("request bytes"), 1700000000000ull, proof);
  CU_ASSERT_STRING_EQUAL(proof, "v1 1700000000000 8b95d9868547a5571948a1f9"
                                "ad68fad6c632dfb663cf5cf5070938d9930fa7cc");
  /* Another secret in between re-keys this thread's context; the first
   * secret then gives the same proof again. */
  char other[RPC_MEMBER_PROOF_MAX];
  rpc_member_proof(&bad, "/mica.v1.TabletServer/OpenTablet",
                   slice_from_str("request bytes"), 1700000000000ull, other);
  CU_ASSERT(strcmp(other, proof) != 0);
  char again[RPC_MEMBER_PROOF_MAX];
  rpc_member_proof(&good, "/mica.v1.TabletServer/OpenTablet",
                   slice_from_str("request bytes"), 1700000000000ull, again);
  CU_ASSERT_STRING_EQUAL(again, proof);
  char longpath[301];
  longpath[0] = '/';
  memset(longpath + 1, 'x', 299);
  longpath[300] = '\0';
  rpc_member_proof(&good, longpath, slice_from_str("request bytes"),
                   1700000000000ull, again);
  CU_ASSERT_STRING_EQUAL(again, "v1 1700000000000 963aa9302c07ce505d6a7913"
                                "877413a024f84edcdfec4242fc35c18e957c555f");
  char theirs[RPC_MEMBER_PROOF_MAX];
  pthread_t t;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, proof_thread, theirs), 0);
  pthread_join(t, NULL);
  CU_ASSERT_STRING_EQUAL(theirs, proof);
}

static void test_membership(void) {
  rpc_secret good = secret_of(0x11), bad = secret_of(0x22);
  rpc_auth *a = rpc_auth_new(&good, NULL);
  rpc_identity id;
  const char *open = "/mica.v1.TabletServer/OpenTablet";
  slice body = slice_from_str("request bytes");
  uint64_t now = wall_ms();
  TU_OK(check_proof(a, open, open, body, body, &good, now, &id));
  CU_ASSERT_EQUAL(id.role, RPC_ROLE_MEMBER);
  CU_ASSERT_STRING_EQUAL(id.name, "member");
  /* A member may call client methods even while the table is pending. */
  const char *put = "/mica.v1.TabletServer/Put";
  TU_OK(check_proof(a, put, put, body, body, &good, now, &id));
  /* Wrong secret, another method, other bytes, an old or future
   * timestamp: each refused, naming no secret. */
  expect(check_proof(a, open, open, body, body, &bad, now, &id),
         MICA_UNAUTHENTICATED, "does not hold", "2222", "wrong secret");
  expect(check_proof(a, "/mica.v1.TabletServer/CloseTablet", open, body,
                     body, &good, now, &id),
         MICA_UNAUTHENTICATED, "does not verify", NULL, "other method");
  expect(check_proof(a, open, open, body, slice_from_str("request bytez"),
                     &good, now, &id),
         MICA_UNAUTHENTICATED, "does not verify", NULL, "tampered body");
  expect(check_proof(a, open, open, body, body, &good,
                     now - RPC_MEMBER_SKEW_MS - 60000, &id),
         MICA_UNAUTHENTICATED, "check the clocks", NULL, "old proof");
  expect(check_proof(a, open, open, body, body, &good,
                     now + RPC_MEMBER_SKEW_MS + 60000, &id),
         MICA_UNAUTHENTICATED, "check the clocks", NULL, "future proof");
  const char *junk[] = {"", "v1", "v2 1 00", "v1 abc 00",
                        "v1 123 zz", "v1 123 0123"};
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
    expect(rpc_auth_check(a, open, body, junk[i], strlen(junk[i]), NULL, 0,
                          NULL, &id),
           MICA_UNAUTHENTICATED, "malformed", NULL, junk[i]);
  /* No proof at all on a member method; a token does not help. */
  expect(rpc_auth_check(a, open, body, NULL, 0, NULL, 0, NULL, &id),
         MICA_PERMISSION_DENIED, "cluster members only", NULL, "no proof");
  const char *bearer = "Bearer " T_ADMIN;
  expect(rpc_auth_check(a, "/mica.v1.Master/Heartbeat", body, NULL, 0,
                        bearer, strlen(bearer), NULL, &id),
         MICA_PERMISSION_DENIED, "Heartbeat", NULL, "admin token, member call");
  /* Pending table: clients wait. */
  expect(rpc_auth_check(a, put, body, NULL, 0, NULL, 0, NULL, &id),
         MICA_UNAVAILABLE, "not yet received", NULL, "pending");
  /* Open table: anonymous clients may do anything but member calls. */
  rpc_auth_set_access(a, xcalloc(1, sizeof(rpc_access)));
  TU_OK(rpc_auth_check(a, "/mica.v1.Master/DropTable", body, NULL, 0, NULL,
                       0, NULL, &id));
  CU_ASSERT_STRING_EQUAL(id.name, "anonymous");
  expect(rpc_auth_check(a, open, body, NULL, 0, NULL, 0, NULL, &id),
         MICA_PERMISSION_DENIED, NULL, NULL, "open table, member call");
  /* Unknown methods are member-only. */
  CU_ASSERT_EQUAL(rpc_path_role("/mica.v1.Master/Whatever"), RPC_ROLE_MEMBER);
  rpc_auth_free(a);
}

static mica_err *with_token(rpc_auth *a, const char *path, const char *tok,
                            rpc_identity *id) {
  char h[256];
  snprintf(h, sizeof h, "Bearer %s", tok ? tok : "");
  return rpc_auth_check(a, path, slice_make(NULL, 0), NULL, 0,
                        tok ? h : NULL, tok ? strlen(h) : 0, NULL, id);
}

static void test_tokens(void) {
  rpc_secret good = secret_of(0x11);
  rpc_auth *a = rpc_auth_new(&good, load_tokens());
  rpc_identity id;
  const char *drop = "/mica.v1.Master/DropTable", *put =
      "/mica.v1.TabletServer/Put", *get = "/mica.v1.TabletServer/Get";
  TU_OK(with_token(a, drop, T_ADMIN, &id));
  CU_ASSERT_STRING_EQUAL(id.name, "alice");
  TU_OK(with_token(a, put, T_ADMIN, &id));
  TU_OK(with_token(a, put, T_WRITE, &id));
  TU_OK(with_token(a, get, T_READ, &id));
  /* A role too low for a table-scoped method is refused per table, naming
   * it: the caller is recognised and marked for the table check. */
  TU_OK(with_token(a, drop, T_WRITE, &id));
  CU_ASSERT(id.scoped);
  expect(rpc_auth_check_table(a, &id, drop, RPC_ROLE_ADMIN, "t"),
         MICA_PERMISSION_DENIED,
         "needs role 'admin' on table 't'; identity 'bob' has role 'write' "
         "there", T_WRITE, "write drops");
  TU_OK(with_token(a, put, T_READ, &id));
  expect(rpc_auth_check_table(a, &id, put, RPC_ROLE_WRITE, "t"),
         MICA_PERMISSION_DENIED, "needs role 'write' on table 't'; identity "
         "'carol'", T_READ, "read writes");
  expect(with_token(a, "/mica.v1.Master/Configure", T_WRITE, &id),
         MICA_PERMISSION_DENIED,
         "needs role 'admin'; identity 'bob' has role 'write'", T_WRITE,
         "write configures");
  expect(with_token(a, get, NULL, &id), MICA_UNAUTHENTICATED,
         "needs role 'read': no token given", NULL, "no token");
  expect(with_token(a, get, "tok-unknown-0123456789", &id),
         MICA_UNAUTHENTICATED, "not recognised", "tok-unknown", "unknown");
  expect(with_token(a, get, T_READ "x", &id), MICA_UNAUTHENTICATED,
         "not recognised", NULL, "token with a suffix");
  const char *basic = "Basic abc";
  expect(rpc_auth_check(a, get, slice_make(NULL, 0), NULL, 0, basic,
                        strlen(basic), NULL, &id),
         MICA_UNAUTHENTICATED, "Bearer <token>", NULL, "not Bearer");

  /* HTTP: Bearer, Basic (any user, token as password), garbage. */
  TU_OK(rpc_auth_check_http(a, "api", "Bearer " T_READ, RPC_ROLE_READ, &id));
  CU_ASSERT_STRING_EQUAL(id.name, "carol");
  /* base64("u:tok-read-01234567890") */
  TU_OK(rpc_auth_check_http(a, "api", "Basic dTp0b2stcmVhZC0wMTIzNDU2Nzg5MA==",
                            RPC_ROLE_READ, &id));
  expect(rpc_auth_check_http(a, "api", "Basic dTp0b2stcmVhZC0wMTIzNDU2Nzg5",
                             RPC_ROLE_READ, &id),
         MICA_UNAUTHENTICATED, NULL, NULL, "truncated base64");
  expect(rpc_auth_check_http(a, "api", "Basic bm9jb2xvbg==", RPC_ROLE_READ,
                             &id),
         MICA_UNAUTHENTICATED, "user:token", NULL, "no colon");
  expect(rpc_auth_check_http(a, "api", NULL, RPC_ROLE_READ, &id),
         MICA_UNAUTHENTICATED, "needs role 'read'", NULL, "http no token");
  expect(rpc_auth_check_http(a, "api", "Digest x", RPC_ROLE_READ, &id),
         MICA_UNAUTHENTICATED, "neither", NULL, "http digest");
  rpc_auth_free(a);
}

/* ---- per-table roles and certificate names ---- */

#define T_ORDERS "tok-orders-0123456789"
#define T_MIXED "tok-mixed-01234567890"

static rpc_access *load_scoped(const char *name, const char *text) {
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", tu_tmpdir(), name);
  write_file(path, text, 0600);
  rpc_access *a = NULL;
  TU_OK(rpc_access_load(path, &a));
  return a;
}

static const char *const SCOPED =
    T_ADMIN " alice admin\n"
    T_ORDERS " ingest write:orders\n"
    T_MIXED " mixed read admin:logs.* write:orders\n"
    "cert:report-job reporting read:orders\n"
    "cert:ops.example ops admin\n";

static mica_err *with_cert(rpc_auth *a, const char *path,
                           const char *const *names, size_t n,
                           rpc_identity *id) {
  rpc_peer_names p = {names, n};
  return rpc_auth_check(a, path, slice_make(NULL, 0), NULL, 0, NULL, 0, &p,
                        id);
}

static void test_table_grants_file(void) {
  rpc_access *a = load_scoped("tokens.scoped", SCOPED);
  CU_ASSERT_EQUAL_FATAL(a->n, 5);
  /* A bare role is the role on every table, as before. */
  CU_ASSERT_EQUAL(a->grants[0].role, RPC_ROLE_ADMIN);
  CU_ASSERT_EQUAL(a->grants[0].ntables, 0);
  CU_ASSERT_EQUAL(a->grants[1].role, RPC_ROLE_NONE);
  CU_ASSERT_EQUAL_FATAL(a->grants[1].ntables, 1);
  CU_ASSERT_STRING_EQUAL(a->grants[1].tables[0].table, "orders");
  const rpc_grant *m = &a->grants[2];
  CU_ASSERT_EQUAL(rpc_grant_table_role(m, NULL), RPC_ROLE_READ);
  CU_ASSERT_EQUAL(rpc_grant_table_role(m, "orders"), RPC_ROLE_WRITE);
  CU_ASSERT_EQUAL(rpc_grant_table_role(m, "logs.2026"), RPC_ROLE_ADMIN);
  CU_ASSERT_EQUAL(rpc_grant_table_role(m, "logs"), RPC_ROLE_READ);
  CU_ASSERT_EQUAL(rpc_grant_table_role(m, "orders2"), RPC_ROLE_READ);
  CU_ASSERT_STRING_EQUAL(a->grants[3].cert, "report-job");
  CU_ASSERT_STRING_EQUAL(a->grants[4].cert, "ops.example");

  /* The wire carries tables and certificate names. */
  rpc_access_table w;
  rpc_access_to_wire(a, &w);
  CU_ASSERT_EQUAL(w.grants[3].token_sha256.len, 0);
  CU_ASSERT_STRING_EQUAL(w.grants[3].cert, "report-job");
  rpc_access *b = NULL;
  TU_OK(rpc_access_from_wire(&w, &b));
  CU_ASSERT_EQUAL_FATAL(b->n, 5);
  CU_ASSERT_EQUAL(rpc_grant_table_role(&b->grants[2], "logs.x"),
                  RPC_ROLE_ADMIN);
  CU_ASSERT_STRING_EQUAL(b->grants[4].cert, "ops.example");
  CU_ASSERT_PTR_NULL(b->grants[0].cert);
  rpc_access_free(b);
  b = NULL;
  /* A grant with both a digest and a certificate name, or a bad table. */
  w.grants[0].cert = "x";
  expect(rpc_access_from_wire(&w, &b), MICA_INVALID_ARGUMENT, "not both",
         NULL, "digest and cert");
  w.grants[0].cert = "";
  w.grants[2].tables[0].table = "bad name";
  expect(rpc_access_from_wire(&w, &b), MICA_INVALID_ARGUMENT, "table 0",
         NULL, "bad table on the wire");
  CU_ASSERT_PTR_NULL(b);
  w.grants[2].tables[0].table = "logs.*";
  rpc_access_wire_free(&w);
  rpc_access_free(a);

  static const struct {
    const char *text, *part;
  } bad[] = {
      {"tok-0123456789abcdef alice write:\n", "'' is not a table pattern"},
      {"tok-0123456789abcdef alice write:a/b\n", "'a/b' is not a table"},
      {"tok-0123456789abcdef alice write:a*b\n", "'a*b' is not a table"},
      {"tok-0123456789abcdef alice root:orders\n", "'root' is not read"},
      {"tok-0123456789abcdef alice read:t write:t\n", "two roles on 't'"},
      {"tok-0123456789abcdef alice read admin:*\n", "two roles on every"},
      {"cert: alice read\n", "certificate name for 'alice' is empty"},
      {"cert:x alice read\ncert:x bob read\n",
       "certificate name of 'bob' is already listed for 'alice'"},
      {"tok-0123456789abcdef alice\n", "line 1: expected"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char path[1100];
    snprintf(path, sizeof path, "%s/tokens.sbad%zu", tu_tmpdir(), i);
    write_file(path, bad[i].text, 0600);
    rpc_access *x = NULL;
    expect(rpc_access_load(path, &x), MICA_INVALID_ARGUMENT, bad[i].part,
           "tok-0123456789abcdef", bad[i].part);
    CU_ASSERT_PTR_NULL(x);
  }
}

static void test_table_grants_decision(void) {
  rpc_secret good = secret_of(0x11);
  rpc_auth *a = rpc_auth_new(&good, load_scoped("tokens.sc2", SCOPED));
  rpc_identity id;
  const char *put = "/mica.v1.TabletServer/Put",
             *get = "/mica.v1.TabletServer/Get",
             *drop = "/mica.v1.Master/DropTable",
             *balance = "/mica.v1.Master/Balance",
             *servers = "/mica.v1.Master/ListServers",
             *tables = "/mica.v1.Master/ListTables";

  /* A '*' grant needs no per-table check. */
  TU_OK(with_token(a, put, T_ADMIN, &id));
  CU_ASSERT(!id.scoped);
  /* A per-table grant passes the method gate, then each table counts. */
  TU_OK(with_token(a, put, T_ORDERS, &id));
  CU_ASSERT(id.scoped);
  CU_ASSERT_EQUAL(id.by, RPC_BY_TOKEN);
  TU_OK(rpc_auth_check_table(a, &id, put, RPC_ROLE_WRITE, "orders"));
  expect(rpc_auth_check_table(a, &id, put, RPC_ROLE_WRITE, "users"),
         MICA_PERMISSION_DENIED,
         "needs role 'write' on table 'users'; identity 'ingest' has role "
         "'none' there", T_ORDERS, "other table");
  expect(rpc_auth_check_table(a, &id, put, RPC_ROLE_WRITE, NULL),
         MICA_PERMISSION_DENIED, "on every table ('*')", T_ORDERS,
         "every table");
  /* Its highest role is write: dropping its own table is refused. */
  TU_OK(with_token(a, drop, T_ORDERS, &id));
  expect(rpc_auth_check_table(a, &id, drop, RPC_ROLE_ADMIN, "orders"),
         MICA_PERMISSION_DENIED,
         "needs role 'admin' on table 'orders'; identity 'ingest' has role "
         "'write' there", T_ORDERS, "write token drops");
  /* Cluster-scoped methods need the role on '*'. */
  expect(with_token(a, servers, T_ORDERS, &id), MICA_PERMISSION_DENIED,
         "on every table ('*'); identity 'ingest' has it only on some",
         T_ORDERS, "per-table token lists servers");
  expect(with_token(a, balance, T_MIXED, &id), MICA_PERMISSION_DENIED,
         "needs role 'admin' on every table", T_MIXED, "mixed balances");
  TU_OK(with_token(a, servers, T_MIXED, &id));
  /* ListTables: any role anywhere; the answer is filtered. */
  TU_OK(with_token(a, tables, T_ORDERS, &id));
  CU_ASSERT_EQUAL(rpc_auth_table_role(a, &id, "orders"), RPC_ROLE_WRITE);
  CU_ASSERT_EQUAL(rpc_auth_table_role(a, &id, "users"), RPC_ROLE_NONE);
  /* Mixed: read everywhere, write on orders, admin on logs.*. */
  TU_OK(with_token(a, get, T_MIXED, &id));
  CU_ASSERT(!id.scoped);
  TU_OK(with_token(a, drop, T_MIXED, &id));
  CU_ASSERT(id.scoped);
  TU_OK(rpc_auth_check_table(a, &id, drop, RPC_ROLE_ADMIN, "logs.old"));
  expect(rpc_auth_check_table(a, &id, drop, RPC_ROLE_ADMIN, "orders"),
         MICA_PERMISSION_DENIED, "identity 'mixed' has role 'write' there",
         NULL, "mixed drops orders");

  /* Certificates: CN or SAN, token first, unknown names refused. */
  const char *const report[] = {"report-job"};
  TU_OK(with_cert(a, get, report, 1, &id));
  CU_ASSERT_EQUAL(id.by, RPC_BY_CERT);
  CU_ASSERT_STRING_EQUAL(id.name, "reporting");
  CU_ASSERT(id.scoped);
  TU_OK(rpc_auth_check_table(a, &id, get, RPC_ROLE_READ, "orders"));
  expect(rpc_auth_check_table(a, &id, get, RPC_ROLE_READ, "users"),
         MICA_PERMISSION_DENIED, "on table 'users'; identity 'reporting'",
         NULL, "cert reads another table");
  TU_OK(with_cert(a, put, report, 1, &id));
  expect(rpc_auth_check_table(a, &id, put, RPC_ROLE_WRITE, "orders"),
         MICA_PERMISSION_DENIED,
         "needs role 'write' on table 'orders'; identity 'reporting' has "
         "role 'read' there", NULL, "read cert writes");
  const char *const by_san[] = {"some-cn", "ops.example"};
  TU_OK(with_cert(a, drop, by_san, 2, &id));
  CU_ASSERT_STRING_EQUAL(id.name, "ops");
  CU_ASSERT(!id.scoped);
  const char *const stranger[] = {"intruder", "intruder.example"};
  expect(with_cert(a, get, stranger, 2, &id), MICA_UNAUTHENTICATED,
         "client certificate 'intruder' is not in the tokens file", NULL,
         "unknown cert");
  rpc_peer_names p = {report, 1};
  char h[64];
  snprintf(h, sizeof h, "Bearer %s", T_ADMIN);
  TU_OK(rpc_auth_check(a, drop, slice_make(NULL, 0), NULL, 0, h, strlen(h),
                       &p, &id));
  CU_ASSERT_STRING_EQUAL(id.name, "alice"); /* the token decides */
  expect(with_token(a, get, NULL, &id), MICA_UNAUTHENTICATED,
         "no token given", NULL, "neither token nor cert");

  /* Revocation: a checked identity whose grant is gone is refused. */
  TU_OK(with_token(a, put, T_ORDERS, &id));
  rpc_auth_set_access(a, load_scoped("tokens.sc3", T_ADMIN " alice admin\n"));
  expect(rpc_auth_check_table(a, &id, put, RPC_ROLE_WRITE, "orders"),
         MICA_UNAUTHENTICATED, "no longer recognised", T_ORDERS, "revoked");
  expect(with_token(a, put, T_ORDERS, &id), MICA_UNAUTHENTICATED,
         "not recognised", T_ORDERS, "revoked, new call");
  expect(with_cert(a, get, report, 1, &id), MICA_UNAUTHENTICATED,
         "not in the tokens file", NULL, "cert grant removed");
  CU_ASSERT(rpc_auth_clients_checked(a));
  /* Members and open tables hold every table. */
  rpc_auth_set_access(a, xcalloc(1, sizeof(rpc_access)));
  CU_ASSERT(!rpc_auth_clients_checked(a));
  TU_OK(with_token(a, drop, NULL, &id));
  TU_OK(rpc_auth_check_table(a, &id, drop, RPC_ROLE_ADMIN, "anything"));
  CU_ASSERT_EQUAL(rpc_path_scope(put), RPC_SCOPE_TABLE);
  CU_ASSERT_EQUAL(rpc_path_scope(balance), RPC_SCOPE_CLUSTER);
  CU_ASSERT_EQUAL(rpc_path_scope(tables), RPC_SCOPE_ANY);
  rpc_auth_free(a);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("auth", NULL, NULL);
  CU_add_test(s, "secret_create", test_secret_create);
  CU_add_test(s, "secret_read_errors", test_secret_read_errors);
  CU_add_test(s, "tokens_file", test_tokens_file);
  CU_add_test(s, "membership", test_membership);
  CU_add_test(s, "membership_vectors", test_membership_vectors);
  CU_add_test(s, "table_grants_file", test_table_grants_file);
  CU_add_test(s, "table_grants_decision", test_table_grants_decision);
  CU_add_test(s, "tokens", test_tokens);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
