/* TLS on the RPC module (rpc_tls): certificates from tools/mica-certs; a
 * TLS echo server answers TLS clients that trust its CA, refuses plaintext
 * clients and clients trusting another CA, and with a client CA requires a
 * client certificate (mutual TLS). Bad files are named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/rpc.h"
#include "tests/harness/testutil.h"

static char g_a[1024], g_b[1024]; /* two independent CAs */

static void path(char *out, size_t n, const char *dir, const char *file) {
  snprintf(out, n, "%s/%s", dir, file);
}

static int suite_init(void) {
  snprintf(g_a, sizeof g_a, "%s/ca-a", tu_tmpdir());
  snprintf(g_b, sizeof g_b, "%s/ca-b", tu_tmpdir());
  char cmd[3000];
  snprintf(cmd, sizeof cmd,
           "'%s/tools/mica-certs' '%s' >/dev/null && "
           "'%s/tools/mica-certs' '%s' >/dev/null",
           MICA_SOURCE_DIR, g_a, MICA_SOURCE_DIR, g_b);
  return system(cmd) == 0 ? 0 : 1;
}

typedef struct files {
  char cert[1100], key[1100], ca[1100];
} files;

static rpc_tls tls_of(files *f, const char *dir, const char *who,
                      const char *ca_dir) {
  char name[64];
  snprintf(name, sizeof name, "%s.pem", who);
  path(f->cert, sizeof f->cert, dir, name);
  snprintf(name, sizeof name, "%s.key", who);
  path(f->key, sizeof f->key, dir, name);
  path(f->ca, sizeof f->ca, ca_dir, "ca.pem");
  rpc_tls t = {f->cert, f->key, f->ca, false};
  return t;
}

static rpc_server *serve(const rpc_tls *t) {
  rpc_server_opts o = {.threads = 1, .tls = t};
  rpc_server *s = NULL;
  TU_OK(rpc_server_new(&o, &s));
  if (s == NULL) return NULL;
  TU_OK(rpc_echo_register(s));
  TU_OK(rpc_server_start(s));
  return s;
}

/* One echo through a channel with `t` (NULL = plaintext). */
static mica_err *echo(rpc_server *s, const rpc_tls *t) {
  rpc_channel_opts o = {.tls = t};
  rpc_channel *ch = NULL;
  mica_err *e = rpc_channel_new(rpc_server_address(s), &o, &ch);
  if (e != NULL) return e;
  rpc_echo_request q = {.payload = slice_from_str("hello")};
  rpc_echo_response *r = NULL;
  e = rpc_unary(ch, &rpc_m_echo_echo, &q, 3000, (void **)&r);
  if (e == NULL && (r->payload.len != 5 || memcmp(r->payload.data, "hello", 5)))
    e = err_new(MICA_INTERNAL, "echo came back wrong");
  rpc_msg_free(r);
  rpc_channel_free(ch);
  return e;
}

static void test_server_tls(void) {
  files sf, cf, wf;
  rpc_tls st = tls_of(&sf, g_a, "server", g_a); /* no client certificates */
  rpc_server *s = serve(&st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_tls ct = tls_of(&cf, g_a, "client", g_a);
  ct.cert_file = ct.key_file = NULL;
  TU_OK(echo(s, &ct));
  /* Plaintext to a TLS port, and TLS trusting another CA: refused. */
  mica_err *plain = echo(s, NULL);
  CU_ASSERT_PTR_NOT_NULL(plain);
  err_free(plain);
  rpc_tls wt = tls_of(&wf, g_b, "client", g_b);
  wt.cert_file = wt.key_file = NULL;
  mica_err *e = echo(s, &wt);
  CU_ASSERT_PTR_NOT_NULL(e);
  if (e) CU_ASSERT_EQUAL(err_code(e), MICA_UNAVAILABLE);
  err_free(e);
  rpc_server_free(s);
}

static void test_mutual_tls(void) {
  files sf, cf, nf, of;
  rpc_tls st = tls_of(&sf, g_a, "server", g_a);
  st.require_client_cert = true; /* clients must show a certificate */
  rpc_server *s = serve(&st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_tls ct = tls_of(&cf, g_a, "client", g_a);
  TU_OK(echo(s, &ct));
  rpc_tls nt = tls_of(&nf, g_a, "client", g_a);
  nt.cert_file = nt.key_file = NULL; /* no client certificate */
  mica_err *e = echo(s, &nt);
  CU_ASSERT_PTR_NOT_NULL(e);
  err_free(e);
  /* A client certificate from another CA. */
  rpc_tls ot = tls_of(&of, g_b, "client", g_a);
  e = echo(s, &ot);
  CU_ASSERT_PTR_NOT_NULL(e);
  err_free(e);
  rpc_server_free(s);
}

/* Certificates replaced on disk are used from the next connection on,
 * without a restart; a half-written file keeps the old ones serving. */
static void test_reload(void) {
  char live[1024], cmd[12000];
  snprintf(live, sizeof live, "%s/live", tu_tmpdir());
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/server.pem' '%s/server.key' '%s/'",
           live, g_a, g_a, live);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  files sf, af, bf;
  rpc_tls st = tls_of(&sf, live, "server", g_a);
  rpc_server *s = serve(&st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_tls ta = tls_of(&af, g_a, "client", g_a);
  ta.cert_file = ta.key_file = NULL;
  rpc_tls tb = tls_of(&bf, g_b, "client", g_b);
  tb.cert_file = tb.key_file = NULL;
  TU_OK(echo(s, &ta));
  mica_err *e = echo(s, &tb);
  CU_ASSERT_PTR_NOT_NULL(e);
  err_free(e);
  /* Swap in CA b's certificate (renamed into place, as tools should). */
  snprintf(cmd, sizeof cmd,
           "cp '%s/server.pem' '%s/n.pem' && cp '%s/server.key' '%s/n.key' && "
           "mv '%s/n.key' '%s/server.key' && mv '%s/n.pem' '%s/server.pem'",
           g_b, live, g_b, live, live, live, live, live);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  TU_OK(echo(s, &tb));
  e = echo(s, &ta);
  CU_ASSERT_PTR_NOT_NULL(e);
  err_free(e);
  /* A broken certificate file: the previous one keeps serving. */
  snprintf(cmd, sizeof cmd, "echo garbage > '%s/server.pem'", live);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  TU_OK(echo(s, &tb));
  rpc_server_free(s);
}

/* Without a CA the server's certificate is fixed but works. */
static void test_no_ca(void) {
  files sf, cf;
  rpc_tls st = tls_of(&sf, g_a, "server", g_a);
  st.ca_file = NULL;
  rpc_server *s = serve(&st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  rpc_tls ct = tls_of(&cf, g_a, "client", g_a);
  ct.cert_file = ct.key_file = NULL;
  TU_OK(echo(s, &ct));
  rpc_server_free(s);
  st.require_client_cert = true;
  rpc_server_opts o = {.tls = &st};
  rpc_server *s2 = NULL;
  mica_err *e = rpc_server_new(&o, &s2);
  CU_ASSERT(e && strstr(err_msg(e), "needs a CA"));
  err_free(e);
}

static void test_bad_files(void) {
  files f;
  rpc_tls t = tls_of(&f, g_a, "server", g_a);
  rpc_tls missing = t;
  missing.key_file = "/nonexistent/server.key";
  rpc_server_opts o = {.tls = &missing};
  rpc_server *s = NULL;
  mica_err *e = rpc_server_new(&o, &s);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT(e && err_code(e) == MICA_INVALID_ARGUMENT &&
            strstr(err_msg(e), "/nonexistent/server.key"));
  err_free(e);
  rpc_tls notpem = t;
  char bogus[1100];
  snprintf(bogus, sizeof bogus, "%s/bogus.pem", tu_tmpdir());
  FILE *fp = fopen(bogus, "w");
  fputs("not a certificate\n", fp);
  fclose(fp);
  notpem.ca_file = bogus;
  rpc_channel_opts co = {.tls = &notpem};
  rpc_channel *ch = NULL;
  e = rpc_channel_new("127.0.0.1:1", &co, &ch);
  CU_ASSERT_PTR_NULL(ch);
  CU_ASSERT(e && strstr(err_msg(e), "not a PEM file"));
  err_free(e);
  rpc_tls noca = t;
  noca.ca_file = NULL;
  co.tls = &noca;
  e = rpc_channel_new("127.0.0.1:1", &co, &ch);
  CU_ASSERT(e && strstr(err_msg(e), "needs a CA file"));
  err_free(e);

  /* A key of another certificate: named at start, not "cannot listen". */
  files fb;
  tls_of(&fb, g_b, "server", g_b);
  rpc_tls mismatch = t;
  mismatch.key_file = fb.key;
  o.tls = &mismatch;
  e = rpc_server_new(&o, &s);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT(e && err_code(e) == MICA_INVALID_ARGUMENT &&
            strstr(err_msg(e), "does not belong to the certificate"));
  if (e) fprintf(stderr, "  mismatch: %s\n", err_msg(e));
  err_free(e);

  /* An expired certificate (signed by the CA, valid until yesterday). */
  char old[1100], cmd[8000];
  snprintf(old, sizeof old, "%s/expired.pem", tu_tmpdir());
  snprintf(cmd, sizeof cmd,
           "openssl req -new -key '%s' -subj /CN=old -out '%s.csr' && "
           "openssl x509 -req -in '%s.csr' -CA '%s/ca.pem' -CAkey '%s/ca.key' "
           "-days -1 -out '%s' 2>/dev/null", f.key, old, old, g_a, g_a, old);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  rpc_tls expired = t;
  expired.cert_file = old;
  o.tls = &expired;
  e = rpc_server_new(&o, &s);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT(e && err_code(e) == MICA_INVALID_ARGUMENT &&
            strstr(err_msg(e), "has expired"));
  err_free(e);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("tls", suite_init, NULL);
  CU_add_test(s, "server_tls", test_server_tls);
  CU_add_test(s, "mutual_tls", test_mutual_tls);
  CU_add_test(s, "reload", test_reload);
  CU_add_test(s, "no_ca", test_no_ca);
  CU_add_test(s, "bad_files", test_bad_files);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
