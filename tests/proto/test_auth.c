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
  return rpc_auth_check(a, path, body, proof, strlen(proof), NULL, 0, id);
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
                          &id),
           MICA_UNAUTHENTICATED, "malformed", NULL, junk[i]);
  /* No proof at all on a member method; a token does not help. */
  expect(rpc_auth_check(a, open, body, NULL, 0, NULL, 0, &id),
         MICA_PERMISSION_DENIED, "cluster members only", NULL, "no proof");
  const char *bearer = "Bearer " T_ADMIN;
  expect(rpc_auth_check(a, "/mica.v1.Master/Heartbeat", body, NULL, 0,
                        bearer, strlen(bearer), &id),
         MICA_PERMISSION_DENIED, "Heartbeat", NULL, "admin token, member call");
  /* Pending table: clients wait. */
  expect(rpc_auth_check(a, put, body, NULL, 0, NULL, 0, &id),
         MICA_UNAVAILABLE, "not yet received", NULL, "pending");
  /* Open table: anonymous clients may do anything but member calls. */
  rpc_auth_set_access(a, xcalloc(1, sizeof(rpc_access)));
  TU_OK(rpc_auth_check(a, "/mica.v1.Master/DropTable", body, NULL, 0, NULL,
                       0, &id));
  CU_ASSERT_STRING_EQUAL(id.name, "anonymous");
  expect(rpc_auth_check(a, open, body, NULL, 0, NULL, 0, &id),
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
                        tok ? h : NULL, tok ? strlen(h) : 0, id);
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
  expect(with_token(a, drop, T_WRITE, &id), MICA_PERMISSION_DENIED,
         "needs role 'admin'; identity 'bob' has role 'write'", T_WRITE,
         "write drops");
  expect(with_token(a, put, T_READ, &id), MICA_PERMISSION_DENIED,
         "needs role 'write'; identity 'carol'", T_READ, "read writes");
  expect(with_token(a, get, NULL, &id), MICA_UNAUTHENTICATED,
         "needs role 'read': no token given", NULL, "no token");
  expect(with_token(a, get, "tok-unknown-0123456789", &id),
         MICA_UNAUTHENTICATED, "not recognised", "tok-unknown", "unknown");
  expect(with_token(a, get, T_READ "x", &id), MICA_UNAUTHENTICATED,
         "not recognised", NULL, "token with a suffix");
  const char *basic = "Basic abc";
  expect(rpc_auth_check(a, get, slice_make(NULL, 0), NULL, 0, basic,
                        strlen(basic), &id),
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

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("auth", NULL, NULL);
  CU_add_test(s, "secret_create", test_secret_create);
  CU_add_test(s, "secret_read_errors", test_secret_read_errors);
  CU_add_test(s, "tokens_file", test_tokens_file);
  CU_add_test(s, "membership", test_membership);
  CU_add_test(s, "tokens", test_tokens);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
