/* test_grpcjs: a client in another language, written from the proto alone.
 *
 * tests/grpcjs/client.js is a Mica client in Node.js on @grpc/grpc-js that
 * loads proto/mica.proto at run time and relies only on what its comments
 * say. This test starts a real cluster (a master and three tablet servers,
 * through the harness) and runs the client against it: the happy path, an
 * operator split, a move and a merge, with the stale routes' routing
 * answers checked field by field against the proto. The client exits 0
 * only when every check passed; its output names each check.
 *
 * Suite "auth" runs tests/grpcjs/auth.js against a cluster serving TLS
 * with a tokens file and client certificates requested: TLS credentials
 * with a token work; no token, an unknown token, a read token writing or
 * dropping, another CA and plaintext are refused with the right gRPC
 * codes; a client certificate acts with the role its CN is mapped to.
 *
 * Skipped (exit 77, ctest's SKIP_RETURN_CODE) only when `node` is not on
 * the PATH or the npm modules are not installed in tests/grpcjs/node_modules
 * (tools/install-deps installs both). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "tests/harness/cluster.h"
#include "tests/harness/proc.h"
#include "tests/harness/testutil.h"

#define DIR MICA_SOURCE_DIR "/tests/grpcjs"
#define CLIENT DIR "/client.js"

static cluster *g_c;

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.tservers = 3;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static void show(const char *what, const th_result *r) {
  fprintf(stderr, "\n--- %s: exit %d\n--- stdout:\n%s--- stderr:\n%s---\n",
          what, r->rc, th_out(r), th_err(r));
}

/* The whole run: every check of client.js passes against the cluster. */
static void test_client(void) {
  const char *argv[] = {"node", CLIENT, "--master", cl_master_address(g_c),
                        "--table", "grpcjs", "--timeout-ms", "60000", NULL};
  th_result r;
  TU_OK(th_run(argv, NULL, NULL, 240000, &r));
  show("client.js", &r);
  CU_ASSERT_EQUAL(r.rc, 0);
  const char *out = th_out(&r);
  const char *want[] = {
      "ok create table with split keys\n",
      "ok tablets placed\n",
      "ok echo\n",
      "ok put and get\n",
      "ok multiget\n",
      "ok batch\n",
      "ok scan\n",
      "ok delete\n",
      "ok split: stale route answered with both daughters",
      "ok move: stale route answered with moved_to",
      "ok merge: stale input routed to the merged tablet",
      "ok data exact after split, move and merge\n",
      "ok drop table\n",
      "grpcjs client: all 13 checks passed\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    if (strstr(out, want[i]) == NULL) {
      fprintf(stderr, "client.js output lacks \"%s\"\n", want[i]);
      CU_FAIL("a check is missing from the client's output");
    }
  }
  CU_ASSERT_STRING_EQUAL(th_err(&r), "");
  th_result_free(&r);
}

/* The client refuses bad arguments with exit 2 and names the problem, and
 * fails (exit 1, a FAIL line) against an address where nothing listens. */
static void test_client_errors(void) {
  const char *no_master[] = {"node", CLIENT, NULL};
  th_result r;
  TU_OK(th_run(no_master, NULL, NULL, 60000, &r));
  CU_ASSERT_EQUAL(r.rc, 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "--master is required"));
  th_result_free(&r);

  const char *bad_timeout[] = {"node", CLIENT, "--master", "127.0.0.1:1",
                               "--timeout-ms", "soon", NULL};
  TU_OK(th_run(bad_timeout, NULL, NULL, 60000, &r));
  CU_ASSERT_EQUAL(r.rc, 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "'soon' is not a positive integer"));
  th_result_free(&r);

  int port = 0;
  TU_OK(th_free_port(&port));
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  const char *nobody[] = {"node", CLIENT, "--master", addr, "--timeout-ms",
                          "2000", NULL};
  TU_OK(th_run(nobody, NULL, NULL, 60000, &r));
  if (r.rc != 1) show("client.js against nothing", &r);
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "FAIL after 0 checks"));
  th_result_free(&r);
}

/* ---- suite: auth ---- */

#define TOK_ADMIN "js-admin-token-0123456789abcdef"
#define TOK_READ "js-read-token-0123456789abcdef"

static char g_certs[1024], g_other[1024];

static int auth_init(void) {
  snprintf(g_certs, sizeof g_certs, "%s/certs", tu_tmpdir());
  snprintf(g_other, sizeof g_other, "%s/other-ca", tu_tmpdir());
  char cmd[2400];
  snprintf(cmd, sizeof cmd,
           "'%s/tools/mica-certs' '%s' --client jsreport >/dev/null && "
           "'%s/tools/mica-certs' '%s' >/dev/null", MICA_SOURCE_DIR, g_certs,
           MICA_SOURCE_DIR, g_other);
  if (system(cmd) != 0) return 1;
  static char tokens[1100];
  snprintf(tokens, sizeof tokens, "%s/tokens", tu_tmpdir());
  FILE *f = fopen(tokens, "w");
  if (f == NULL) return 1;
  fputs(TOK_ADMIN " alice admin\n" TOK_READ " carol read\n"
        "cert:jsreport jsreport read:js_auth\n", f);
  fclose(f);
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.tls_dir = g_certs;
  o.tokens_file = tokens;
  o.client_certs = "request";
  return cl_suite_start(&o, &g_c);
}

static void test_auth(void) {
  char ca[1100], wrong[1100], cert[1100], key[1100];
  snprintf(ca, sizeof ca, "%s/ca.pem", g_certs);
  snprintf(wrong, sizeof wrong, "%s/ca.pem", g_other);
  snprintf(cert, sizeof cert, "%s/client-jsreport.pem", g_certs);
  snprintf(key, sizeof key, "%s/client-jsreport.key", g_certs);
  const char *argv[] = {"node", DIR "/auth.js", "--master",
                        cl_master_address(g_c), "--ca", ca, "--wrong-ca",
                        wrong, "--admin-token", TOK_ADMIN, "--read-token",
                        TOK_READ, "--cert", cert, "--key", key, NULL};
  th_result r;
  TU_OK(th_run(argv, NULL, NULL, 120000, &r));
  show("auth.js", &r);
  CU_ASSERT_EQUAL(r.rc, 0);
  const char *out = th_out(&r);
  const char *want[] = {
      "ok TLS with an admin token creates, writes and reads\n",
      "ok a read token reads; its Put and DropTable are PERMISSION_DENIED",
      "ok no token and an unknown token are UNAUTHENTICATED\n",
      "ok a client certificate acts with the role the tokens file maps",
      "ok a channel trusting another CA and a plaintext channel are refused",
      "ok refused calls changed nothing; the admin drops the table\n",
      "grpcjs auth: all 6 checks passed\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    if (strstr(out, want[i]) == NULL) {
      fprintf(stderr, "auth.js output lacks \"%s\"\n", want[i]);
      CU_FAIL("a check is missing from auth.js's output");
    }
  }
  th_result_free(&r);
}

static const CU_TestInfo auth_tests[] = {
    {"auth", test_auth},
    CU_TEST_INFO_NULL,
};

static const CU_TestInfo tests[] = {
    {"client_errors", test_client_errors},
    {"client", test_client},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) {
  CU_SuiteInfo suites[] = {
      {"grpcjs", suite_init, suite_clean, NULL, NULL, (CU_TestInfo *)tests},
      {"auth", auth_init, suite_clean, NULL, NULL, (CU_TestInfo *)auth_tests},
      CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

/* Skips (77) when node or the npm modules are missing, saying which. */
static int prerequisites(void) {
  const char *argv[] = {"node", "--version", NULL};
  th_result r;
  mica_err *e = th_run(argv, NULL, NULL, 30000, &r);
  if (e != NULL || r.rc != 0) {
    fprintf(stderr, "test_grpcjs: SKIP: `node --version` failed (%s%s); "
            "tools/install-deps installs Node.js\n",
            e != NULL ? err_msg(e) : "exit status ",
            e != NULL ? "" : (r.rc == 127 ? "127, not on the PATH" : "not 0"));
    th_result_free(&r);
    err_free(e);
    return 77;
  }
  th_result_free(&r);
  const char *mods[] = {DIR "/node_modules/@grpc/grpc-js/package.json",
                        DIR "/node_modules/@grpc/proto-loader/package.json"};
  for (size_t i = 0; i < 2; i++) {
    if (access(mods[i], R_OK) != 0) {
      fprintf(stderr, "test_grpcjs: SKIP: %s is missing; run tools/install-deps "
              "(it runs `npm ci` in tests/grpcjs)\n", mods[i]);
      return 77;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  int skip = prerequisites();
  if (skip != 0) return skip;
  return tu_main(argc, argv, add_suites);
}
