/* Per-table roles, client-certificate identities and the re-reading of the
 * tokens file (docs/security.md), on real processes.
 *
 * Suite "tables" (plaintext, a tokens file with roles on every table and
 * on named ones): a read token writing, a write token dropping a table, a
 * token holding roles on one table touching another (through libmica, so
 * at the master, and straight at the tablet server with a forged route),
 * a per-table admin dropping or splitting another table: each refused
 * naming the role and the table and never the token, and nothing changed.
 * ListTables shows only the tables the caller may read; cluster-wide calls
 * need the role on '*'. Then the file is rewritten and the master gets
 * SIGHUP: a revoked token is refused by the master and, from their next
 * heartbeat, by the tablet servers; a new grant works; a broken file keeps
 * the previous grants.
 *
 * Suite "certs" (TLS with --tls-client-certs request on every process):
 * a client certificate signed by the cluster CA whose CN is listed as
 * cert:CN gets that grant's roles, through libmica and the `mica` CLI's
 * --cert/--key; an unlisted CN, a certificate from another CA, and a
 * client with neither a certificate nor a token are refused and change
 * nothing. A running libmica client picks up certificate files replaced
 * on disk (and keeps the previous ones while the new ones do not load).
 * `require` (on a standalone tablet server) refuses the handshake
 * of a client without a certificate; the flag is refused without TLS. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"
#include "mica/mica.h"
#include "proto/auth.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/testutil.h"

static cluster *g_c;
static char g_tokens[1024];
static char g_certs[1024], g_other[1024];

#define TOK_ADMIN "admin-token-0123456789abcdef"
#define TOK_INGEST "ingest-token-0123456789abcdef"
#define TOK_ORDERS_ADMIN "orders-admin-token-0123456789"
#define TOK_READ "read-token-0123456789abcdef"

static slice S(const char *s) { return slice_from_str(s); }

static int write_tokens(const char *text) {
  mica_err *err = env_write_file_atomic(env_posix(), g_tokens,
                                        slice_from_str(text));
  if (err) fprintf(stderr, "%s: %s\n", g_tokens, err_msg(err));
  err_free(err);
  return err ? 1 : 0;
}

/* `rc` is `code` and mica_errmsg() contains `part` and no token. */
static void expect_rc(int rc, int code, const char *part, const char *what) {
  const char *msg = rc != MICA_OK ? mica_errmsg() : "";
  bool leak = strstr(msg, "token-0123456789") != NULL;
  if (rc != code || (part && strstr(msg, part) == NULL) || leak) {
    fprintf(stderr, "%s: got %s \"%s\", expected %s containing \"%s\"%s\n",
            what, mica_code_name(rc), msg, mica_code_name(code),
            part ? part : "", leak ? " (and it names a token)" : "");
    CU_FAIL(what);
  }
}

/* `e` has `code` and its message contains `part`; frees e. */
static void expect(mica_err *e, int code, const char *part, const char *what) {
  if (e == NULL || err_code(e) != code ||
      (part && strstr(err_msg(e), part) == NULL) ||
      strstr(err_msg(e), "token-0123456789") != NULL) {
    fprintf(stderr, "%s: got %s \"%s\", expected %s containing \"%s\"\n",
            what, e ? mica_code_name(err_code(e)) : "OK", e ? err_msg(e) : "",
            mica_code_name(code), part ? part : "");
    CU_FAIL(what);
  }
  err_free(e);
}

static mica_client *client_tls(const char *token, const char *cert_dir,
                               const char *cert_name, int deadline_ms) {
  static char ca[1100], cert[1200], key[1200];
  mica_options o;
  mica_options_init(&o);
  o.token = token;
  o.deadline_ms = deadline_ms;
  if (cert_dir != NULL) {
    snprintf(ca, sizeof ca, "%s/ca.pem", g_certs);
    o.tls_ca = ca;
    if (cert_name != NULL) {
      snprintf(cert, sizeof cert, "%s/%s.pem", cert_dir, cert_name);
      snprintf(key, sizeof key, "%s/%s.key", cert_dir, cert_name);
      o.tls_cert = cert;
      o.tls_key = key;
    }
  }
  mica_client *c = NULL;
  CU_ASSERT_EQUAL(mica_open(cl_master_address(g_c), &o, &c), MICA_OK);
  return c;
}

static mica_client *client(const char *token) {
  return client_tls(token, NULL, NULL, 10000);
}

/* The value of `key` in `table` as the admin reads it ("" when absent). */
static void admin_value(const char *table, const char *key, char *out,
                        size_t n) {
  mica_client *a = client(TOK_ADMIN);
  void *v = NULL;
  size_t vl = 0;
  out[0] = '\0';
  int rc = mica_get(a, table, key, strlen(key), &v, &vl);
  if (rc == MICA_OK) snprintf(out, n, "%.*s", (int)vl, (const char *)v);
  else CU_ASSERT_EQUAL(rc, MICA_NOT_FOUND);
  mica_free(v);
  mica_close(a);
}

static bool has_table(mica_client *c, const char *name, size_t *count) {
  mica_table_info *t = NULL;
  size_t n = 0;
  bool hit = false;
  CU_ASSERT_EQUAL(mica_list_tables(c, &t, &n), MICA_OK);
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0) hit = true;
  if (count) *count = n;
  mica_free(t);
  return hit;
}

/* A Put of `key` sent straight to the tablet server holding it in `table`,
 * with `token`: what a client that knows a route (from the master, from an
 * earlier grant, or guessed) can do without asking the master. */
static mica_err *direct_put(const char *table, const char *key,
                            const char *token) {
  rpc_tablet_route *rt = NULL;
  rpc_lookup_tablets_response *lr = NULL;
  mica_err *e = kvc_route(g_c, table, S(key), 10000, &rt, &lr);
  if (e != NULL) return e;
  rpc_channel_opts co = {0};
  co.token = token;
  co.tls = cl_tls(g_c);
  rpc_channel *ts = NULL;
  e = rpc_channel_new(rt->location->address, &co, &ts);
  if (e == NULL) {
    rpc_tablet_ref ref = {.tablet_id = rt->desc->tablet_id,
                          .range_epoch = rt->desc->range_epoch,
                          .assign_epoch = rt->location->assign_epoch};
    rpc_put_request q = {.tablet = &ref, .key = S(key), .value = S("forged")};
    rpc_put_response *r = NULL;
    e = rpc_unary(ts, &rpc_m_ts_put, &q, 10000, (void **)&r);
    if (e == NULL) e = cl_response_err(r);
    rpc_msg_free(r);
  }
  rpc_channel_free(ts);
  rpc_msg_free(lr);
  return e;
}

static uint64_t first_tablet(const char *table) {
  rpc_tablet_route *rt = NULL;
  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_route(g_c, table, S(""), 10000, &rt, &lr));
  uint64_t id = rt != NULL ? rt->desc->tablet_id : 0;
  rpc_msg_free(lr);
  return id;
}

/* ---- suite: tables ---- */

static const char *const TOKENS_V1 =
    "# credential identity grants\n"
    TOK_ADMIN " alice admin\n"
    TOK_INGEST " ingest write:orders\n"
    TOK_ORDERS_ADMIN " ordersadmin admin:orders read:users\n"
    TOK_READ " carol read\n";

static int tables_init(void) {
  snprintf(g_tokens, sizeof g_tokens, "%s/tokens", tu_tmpdir());
  if (write_tokens(TOKENS_V1) != 0) return 1;
  cl_options o;
  cl_options_init(&o);
  o.s3 = false; /* reads the data root's files as POSIX files */
  o.tservers = 2;
  o.tokens_file = g_tokens;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static void test_table_roles(void) {
  mica_client *admin = client(TOK_ADMIN), *ingest = client(TOK_INGEST),
              *oadmin = client(TOK_ORDERS_ADMIN), *reader = client(TOK_READ);
  CU_ASSERT_EQUAL_FATAL(mica_create_table(admin, "orders", NULL, 0), MICA_OK);
  CU_ASSERT_EQUAL_FATAL(mica_create_table(admin, "users", NULL, 0), MICA_OK);
  CU_ASSERT_EQUAL(mica_put(admin, "users", "u1", 2, "ann", 3), MICA_OK);
  CU_ASSERT_EQUAL(mica_put(ingest, "orders", "o1", 2, "ten", 3), MICA_OK);
  void *v = NULL;
  size_t vl = 0;
  CU_ASSERT_EQUAL(mica_get(ingest, "orders", "o1", 2, &v, &vl), MICA_OK);
  mica_free(v);
  v = NULL;

  /* A read token writing. */
  expect_rc(mica_put(reader, "users", "u1", 2, "bad", 3),
            MICA_PERMISSION_DENIED,
            "Put needs role 'write' on table 'users'; identity 'carol' has "
            "role 'read' there", "read token Put");
  /* A write token dropping a table (its own). */
  expect_rc(mica_drop_table(ingest, "orders"), MICA_PERMISSION_DENIED,
            "DropTable needs role 'admin' on table 'orders'; identity "
            "'ingest' has role 'write' there", "write token DropTable");
  /* A token with roles on orders touching users: at the master (the
   * client's lookup), and at the tablet server with a route it got
   * elsewhere. */
  expect_rc(mica_put(ingest, "users", "u1", 2, "bad", 3),
            MICA_PERMISSION_DENIED,
            "needs role 'read' on table 'users'; identity 'ingest' has role "
            "'none' there", "per-table token Put to another table");
  expect_rc(mica_get(ingest, "users", "u1", 2, &v, &vl),
            MICA_PERMISSION_DENIED, "on table 'users'",
            "per-table token Get of another table");
  expect(direct_put("users", "u1", TOK_INGEST), MICA_PERMISSION_DENIED,
         "TabletServer/Put needs role 'write' on table 'users'; identity "
         "'ingest'", "per-table token Put straight to the tablet server");
  expect(direct_put("users", "u1", TOK_ORDERS_ADMIN), MICA_PERMISSION_DENIED,
         "needs role 'write' on table 'users'; identity 'ordersadmin' has "
         "role 'read' there", "read-on-users token Put to the server");
  /* A per-table admin on another table: drop, split. */
  expect_rc(mica_drop_table(oadmin, "users"), MICA_PERMISSION_DENIED,
            "DropTable needs role 'admin' on table 'users'; identity "
            "'ordersadmin' has role 'read' there", "orders admin drops users");
  uint64_t users_tablet = first_tablet("users");
  expect_rc(mica_split_tablet(oadmin, users_tablet, "m", 1, NULL),
            MICA_PERMISSION_DENIED, "on table 'users'",
            "orders admin splits a users tablet");
  /* Cluster-wide calls need the role on every table. */
  mica_server_info *sv = NULL;
  size_t ns = 0;
  expect_rc(mica_list_servers(ingest, 0, &sv, &ns), MICA_PERMISSION_DENIED,
            "on every table ('*')", "per-table token ListServers");
  mica_move *mv = NULL;
  size_t nm = 0;
  expect_rc(mica_balance(oadmin, 1, &mv, &nm), MICA_PERMISSION_DENIED,
            "needs role 'admin' on every table", "orders admin Balance");
  mica_tablet_info *tl = NULL;
  size_t nt = 0;
  expect_rc(mica_list_tablets(ingest, NULL, &tl, &nt), MICA_PERMISSION_DENIED,
            "on every table", "per-table token lists every tablet");
  CU_ASSERT_EQUAL(mica_list_tablets(ingest, "orders", &tl, &nt), MICA_OK);
  mica_free(tl);

  /* ListTables: what the caller may read. */
  size_t n = 0;
  CU_ASSERT(has_table(ingest, "orders", &n));
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT(has_table(oadmin, "users", &n));
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT(has_table(reader, "users", &n));
  CU_ASSERT_EQUAL(n, 2);

  /* Nothing changed. */
  char got[64];
  admin_value("users", "u1", got, sizeof got);
  CU_ASSERT_STRING_EQUAL(got, "ann");
  CU_ASSERT(has_table(admin, "users", NULL));
  CU_ASSERT(has_table(admin, "orders", NULL));
  CU_ASSERT_EQUAL(first_tablet("users"), users_tablet);

  /* The per-table admin administers its table. */
  CU_ASSERT_EQUAL(mica_create_table(oadmin, "orders", NULL, 0),
                  MICA_ALREADY_EXISTS);
  uint64_t d[2] = {0, 0};
  CU_ASSERT_EQUAL(mica_split_tablet(oadmin, first_tablet("orders"), "m", 1, d),
                  MICA_OK);
  CU_ASSERT(cl_has_event(g_c, "by ordersadmin"));

  /* The per-table client follows routing answers like any other: its
   * cached route now names the split parent (the server names the table
   * from the split record and answers with the daughters), then a tablet
   * moved away (the old server cannot name the table: UNAVAILABLE, the
   * client asks the master). */
  CU_ASSERT_EQUAL(mica_put(ingest, "orders", "o1", 2, "eleven", 6), MICA_OK);
  rpc_tablet_route *rt = NULL;
  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_route(g_c, "orders", S("o1"), 10000, &rt, &lr));
  uint64_t moved = rt != NULL ? rt->desc->tablet_id : 0;
  rpc_msg_free(lr);
  CU_ASSERT_EQUAL(mica_move_tablet(admin, moved, 0), MICA_OK);
  CU_ASSERT_EQUAL(mica_put(ingest, "orders", "o1", 2, "twelve", 6), MICA_OK);
  admin_value("orders", "o1", got, sizeof got);
  CU_ASSERT_STRING_EQUAL(got, "twelve");
  mica_close(reader);
  mica_close(oadmin);
  mica_close(ingest);
  mica_close(admin);
}

/* Polls `fn` until it returns `code` (the tablet servers learn the table
 * with their next heartbeat); false after 15 s. */
static bool until_code(int (*fn)(mica_client *), mica_client *c, int code) {
  for (int i = 0; i < 150; i++) {
    if (fn(c) == code) return true;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return false;
}

static int put_orders(mica_client *c) {
  return mica_put(c, "orders", "o2", 2, "two", 3);
}

static int put_users(mica_client *c) {
  return mica_put(c, "users", "u2", 2, "bob", 3);
}

static void test_reload(void) {
  mica_client *ingest = client(TOK_INGEST), *reader = client(TOK_READ);
  /* The client caches the orders route: its next Put goes straight to the
   * tablet server, which must refuse it once revoked. */
  CU_ASSERT_EQUAL_FATAL(put_orders(ingest), MICA_OK);
  expect_rc(put_users(reader), MICA_PERMISSION_DENIED,
            "needs role 'write' on table 'users'", "before reload");

  /* ingest revoked, carol may now write users. */
  CU_ASSERT_EQUAL_FATAL(write_tokens(TOK_ADMIN " alice admin\n"
                                     TOK_READ " carol read write:users\n"),
                        0);
  CU_ASSERT_EQUAL_FATAL(kill(cl_master_pid(g_c), SIGHUP), 0);
  CU_ASSERT(until_code(put_orders, ingest, MICA_UNAUTHENTICATED));
  expect_rc(put_orders(ingest), MICA_UNAUTHENTICATED, "not recognised",
            "revoked token Put");
  expect(direct_put("orders", "o3", TOK_INGEST), MICA_UNAUTHENTICATED,
         "not recognised", "revoked token at the tablet server");
  mica_table_info *t = NULL;
  size_t n = 0;
  expect_rc(mica_list_tables(ingest, &t, &n), MICA_UNAUTHENTICATED,
            "not recognised", "revoked token at the master");
  /* The users tablet may be on the other server: it learns the new grant
   * with its own next heartbeat. */
  CU_ASSERT(until_code(put_users, reader, MICA_OK));
  CU_ASSERT(cl_has_event(g_c, "tokens file re-read: 2 grants"));
  char got[64];
  admin_value("orders", "o3", got, sizeof got);
  CU_ASSERT_STRING_EQUAL(got, "");

  /* A broken file: the current grants stay. */
  CU_ASSERT_EQUAL_FATAL(write_tokens(TOK_ADMIN " alice admin\nshort x read\n"),
                        0);
  CU_ASSERT_EQUAL_FATAL(kill(cl_master_pid(g_c), SIGHUP), 0);
  struct timespec ts = {1, 500 * 1000 * 1000};
  nanosleep(&ts, NULL);
  CU_ASSERT_EQUAL(mica_put(reader, "users", "u3", 2, "cid", 3), MICA_OK);
  mica_close(reader);
  mica_close(ingest);
}

/* No token reaches a process log, reloads included. */
static void test_tokens_not_logged(void) {
  const char *tokens[] = {TOK_ADMIN, TOK_INGEST, TOK_ORDERS_ADMIN, TOK_READ};
  for (size_t i = 0; i < 4; i++) CU_ASSERT(!cl_logs_contain(g_c, tokens[i]));
  CU_ASSERT(cl_logs_contain(g_c, "SIGHUP: tokens file not re-read"));
}

/* ---- suite: certs ---- */

static int certs_init(void) {
  snprintf(g_certs, sizeof g_certs, "%s/certs", tu_tmpdir());
  snprintf(g_other, sizeof g_other, "%s/other-ca", tu_tmpdir());
  char cmd[2400];
  snprintf(cmd, sizeof cmd,
           "'%s/tools/mica-certs' '%s' --client reporter --client stranger "
           ">/dev/null && '%s/tools/mica-certs' '%s' --client reporter "
           ">/dev/null", MICA_SOURCE_DIR, g_certs, MICA_SOURCE_DIR, g_other);
  if (system(cmd) != 0) return 1;
  snprintf(g_tokens, sizeof g_tokens, "%s/tokens.certs", tu_tmpdir());
  if (write_tokens(TOK_ADMIN " alice admin\n"
                   "cert:reporter reporting read:orders\n"
                   "cert:mica-client ops admin\n") != 0)
    return 1;
  cl_options o;
  cl_options_init(&o);
  o.s3 = false; /* reads the data root's files as POSIX files */
  o.tservers = 1;
  o.tls_dir = g_certs;
  o.tokens_file = g_tokens;
  o.client_certs = "request";
  return cl_suite_start(&o, &g_c);
}

static void test_cert_identities(void) {
  /* CN=mica-client: admin by its certificate alone. */
  mica_client *ops = client_tls(NULL, g_certs, "client", 10000);
  CU_ASSERT_EQUAL_FATAL(mica_create_table(ops, "orders", NULL, 0), MICA_OK);
  CU_ASSERT_EQUAL(mica_create_table(ops, "users", NULL, 0), MICA_OK);
  CU_ASSERT_EQUAL(mica_put(ops, "orders", "o1", 2, "ten", 3), MICA_OK);
  CU_ASSERT_EQUAL(mica_put(ops, "users", "u1", 2, "ann", 3), MICA_OK);
  CU_ASSERT(cl_has_event(g_c, "CreateTable orders by ops"));

  /* CN=reporter: read on orders only. */
  mica_client *rep = client_tls(NULL, g_certs, "client-reporter", 10000);
  void *v = NULL;
  size_t vl = 0;
  CU_ASSERT_EQUAL(mica_get(rep, "orders", "o1", 2, &v, &vl), MICA_OK);
  CU_ASSERT(vl == 3 && memcmp(v, "ten", 3) == 0);
  mica_free(v);
  v = NULL;
  expect_rc(mica_put(rep, "orders", "o1", 2, "bad", 3),
            MICA_PERMISSION_DENIED,
            "needs role 'write' on table 'orders'; identity 'reporting' has "
            "role 'read' there", "reporter cert Put");
  expect_rc(mica_get(rep, "users", "u1", 2, &v, &vl), MICA_PERMISSION_DENIED,
            "on table 'users'; identity 'reporting'",
            "reporter cert Get users");
  expect_rc(mica_drop_table(rep, "orders"), MICA_PERMISSION_DENIED,
            "needs role 'admin' on table 'orders'; identity 'reporting' has "
            "role 'read' there", "reporter cert DropTable");
  size_t n = 0;
  CU_ASSERT(has_table(rep, "orders", &n));
  CU_ASSERT_EQUAL(n, 1);

  /* CN=stranger, signed by the CA, in no grant. */
  mica_client *str = client_tls(NULL, g_certs, "client-stranger", 10000);
  expect_rc(mica_get(str, "orders", "o1", 2, &v, &vl), MICA_UNAUTHENTICATED,
            "client certificate 'stranger' is not in the tokens file",
            "unknown cert CN");
  expect_rc(mica_drop_table(str, "users"), MICA_UNAUTHENTICATED, "stranger",
            "unknown cert CN drops");
  /* CN=reporter from another CA: the handshake fails. */
  mica_client *forged = client_tls(NULL, g_other, "client-reporter", 1500);
  int rc = mica_get(forged, "orders", "o1", 2, &v, &vl);
  if (rc != MICA_UNAVAILABLE && rc != MICA_DEADLINE_EXCEEDED) {
    fprintf(stderr, "certificate of another CA: got %s \"%s\"\n",
            mica_code_name(rc), rc != MICA_OK ? mica_errmsg() : "");
    CU_FAIL("a certificate of another CA got past the handshake");
  }
  mica_free(v);
  v = NULL;
  /* Neither a certificate nor a token. */
  mica_client *none = client_tls(NULL, g_certs, NULL, 10000);
  expect_rc(mica_drop_table(none, "orders"), MICA_UNAUTHENTICATED,
            "no token given", "no credentials");
  /* A token beats the certificate. */
  mica_client *both = client_tls(TOK_ADMIN, g_certs, "client-reporter", 10000);
  CU_ASSERT_EQUAL(mica_put(both, "users", "u2", 2, "bob", 3), MICA_OK);

  /* Nothing the refused ones tried happened. */
  CU_ASSERT_EQUAL(mica_get(ops, "orders", "o1", 2, &v, &vl), MICA_OK);
  CU_ASSERT(vl == 3 && memcmp(v, "ten", 3) == 0);
  mica_free(v);
  CU_ASSERT(has_table(ops, "orders", &n));
  CU_ASSERT_EQUAL(n, 2);
  mica_close(both);
  mica_close(none);
  mica_close(forged);
  mica_close(str);
  mica_close(rep);
  mica_close(ops);
}

/* Puts <g_certs>/<from>.pem and .key at <dir>/me.pem and .key, each by a
 * rename of a complete file, key first (as docs/security.md says). */
static void place_cert(const char *dir, const char *from) {
  char cmd[16384]; /* ten paths of at most about 1.1 KB each */
  snprintf(cmd, sizeof cmd,
           "cp '%s/%s.key' '%s/me.key.tmp' && mv '%s/me.key.tmp' '%s/me.key' && "
           "cp '%s/%s.pem' '%s/me.pem.tmp' && mv '%s/me.pem.tmp' '%s/me.pem'",
           g_certs, from, dir, dir, dir, g_certs, from, dir, dir, dir);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

/* A long-running client picks up a renewed certificate: its connections
 * to the master and the tablet server, once established as CN=reporter,
 * switch to the files' new CN=mica-client (admin) within the check
 * interval (client/tls_reload.c); a broken file keeps the previous one in
 * use; a later good file is picked up again. */
static void test_client_reload(void) {
  char dir[1100];
  snprintf(dir, sizeof dir, "%s", tu_tmpdir());
  place_cert(dir, "client-reporter");
  mica_client *c = client_tls(NULL, dir, "me", 10000);
  void *v = NULL;
  size_t vl = 0;
  CU_ASSERT_EQUAL(mica_get(c, "orders", "o1", 2, &v, &vl), MICA_OK);
  mica_free(v);
  v = NULL;
  expect_rc(mica_put(c, "orders", "r1", 2, "x", 1), MICA_PERMISSION_DENIED,
            "identity 'reporting'", "before renewal: Put");
  expect_rc(mica_create_table(c, "renewed", NULL, 0), MICA_PERMISSION_DENIED,
            "identity 'reporting'", "before renewal: CreateTable");

  place_cert(dir, "client");
  usleep(1300 * 1000); /* past the client's 1 s check interval */
  CU_ASSERT_EQUAL(mica_put(c, "orders", "r1", 2, "x", 1), MICA_OK);
  CU_ASSERT_EQUAL(mica_create_table(c, "renewed", NULL, 0), MICA_OK);

  /* A certificate that does not parse: the previous one stays. */
  char cmd[4000];
  snprintf(cmd, sizeof cmd, "echo broken > '%s/me.pem.tmp' && mv '%s/me.pem.tmp' '%s/me.pem'",
           dir, dir, dir);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  usleep(1300 * 1000);
  CU_ASSERT_EQUAL(mica_put(c, "orders", "r2", 2, "y", 1), MICA_OK);
  CU_ASSERT_EQUAL(mica_drop_table(c, "renewed"), MICA_OK);

  /* A good one again: back to CN=reporter, on both connections. */
  place_cert(dir, "client-reporter");
  usleep(1300 * 1000);
  expect_rc(mica_put(c, "orders", "r3", 2, "z", 1), MICA_PERMISSION_DENIED,
            "identity 'reporting'", "after second renewal: Put");
  expect_rc(mica_create_table(c, "renewed2", NULL, 0), MICA_PERMISSION_DENIED,
            "identity 'reporting'", "after second renewal: CreateTable");
  CU_ASSERT_EQUAL(mica_get(c, "orders", "r2", 2, &v, &vl), MICA_OK);
  CU_ASSERT(vl == 1 && v != NULL && memcmp(v, "y", 1) == 0);
  mica_free(v);
  mica_close(c);
}

/* The CLI's --cert/--key: the certificate is the identity. */
static void test_cli_cert(void) {
  char ca[1100], cert[1100], key[1100];
  snprintf(ca, sizeof ca, "%s/ca.pem", g_certs);
  snprintf(cert, sizeof cert, "%s/client-reporter.pem", g_certs);
  snprintf(key, sizeof key, "%s/client-reporter.key", g_certs);
  const char *get[] = {"--ca", ca, "--cert", cert, "--key", key,
                       "get", "orders", "o1", NULL};
  th_result r;
  TU_OK(th_mica_cli(cl_master_address(g_c), NULL, get, 60000, &r));
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "ten"));
  th_result_free(&r);
  const char *put[] = {"--ca", ca, "--cert", cert, "--key", key,
                       "put", "orders", "o1", "bad", NULL};
  TU_OK(th_mica_cli(cl_master_address(g_c), NULL, put, 60000, &r));
  CU_ASSERT_NOT_EQUAL(r.rc, 0);
  if (strstr(th_err(&r), "needs role 'write' on table 'orders'; identity "
                         "'reporting'") == NULL) {
    fprintf(stderr, "mica put with the reporter certificate: %s\n",
            th_err(&r));
    CU_FAIL("the CLI's refusal does not name the role, table and identity");
  }
  th_result_free(&r);
}

/* --tls-client-certs require, on a standalone tablet server (open to
 * clients, so only the handshake decides): no certificate, no call; the
 * CA's client certificate gets through. */
static void test_require(void) {
  char dir[1100], logs[1100], cert[1100], key[1100], ca[1100];
  snprintf(dir, sizeof dir, "%s/require-ts", tu_tmpdir());
  snprintf(logs, sizeof logs, "%s/require-logs", tu_tmpdir());
  snprintf(cert, sizeof cert, "%s/server.pem", g_certs);
  snprintf(key, sizeof key, "%s/server.key", g_certs);
  snprintf(ca, sizeof ca, "%s/ca.pem", g_certs);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", logs);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  const char *args[] = {"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca,
                        "--tls-client-certs", "require", NULL};
  th_node_opts o = {.prog = "mica-tserver", .name = "require-ts",
                    .data_dir = dir, .log_dir = logs, .args = args};
  th_node n = {0};
  TU_OK(th_node_start(&o, &n));
  rpc_tls bare = {.ca_file = ca};
  char ccert[1100], ckey[1100];
  snprintf(ccert, sizeof ccert, "%s/client.pem", g_certs);
  snprintf(ckey, sizeof ckey, "%s/client.key", g_certs);
  rpc_tls with = {.cert_file = ccert, .key_file = ckey, .ca_file = ca};
  const rpc_tls *tls[2] = {&bare, &with};
  for (int i = 0; i < 2; i++) {
    rpc_channel_opts co = {0};
    co.tls = tls[i];
    rpc_channel *ch = NULL;
    TU_OK(rpc_channel_new(n.address, &co, &ch));
    rpc_tablet_info_request q = {0};
    rpc_tablet_info_response *r = NULL;
    mica_err *e = rpc_unary(ch, &rpc_m_ts_tablet_info, &q, 3000, (void **)&r);
    if (i == 0) {
      CU_ASSERT_PTR_NOT_NULL(e);
      CU_ASSERT(e != NULL && err_code(e) == MICA_UNAVAILABLE);
    } else {
      TU_OK(e);
      e = NULL;
    }
    err_free(e);
    rpc_msg_free(r);
    rpc_channel_free(ch);
  }
  TU_OK(th_node_stop(&n, 10000));
  th_node_clear(&n);
}

/* --tls-client-certs without TLS, or with a bad mode: refused at start. */
static void test_client_certs_flag(void) {
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/flag", tu_tmpdir());
  const char *margs[] = {"--data-dir", dir, "--tls-client-certs", "require",
                         NULL};
  CU_ASSERT(th_start_refused("mica-master", margs,
                             "--tls-client-certs needs --tls-cert"));
  const char *targs[] = {"--data-dir", dir, "--tls-client-certs", "maybe",
                         NULL};
  CU_ASSERT(th_start_refused("mica-tserver", targs,
                             "'maybe' is not none, request or require"));
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("tables", tables_init, suite_clean);
  CU_add_test(s, "table_roles", test_table_roles);
  CU_add_test(s, "reload", test_reload);
  CU_add_test(s, "tokens_not_logged", test_tokens_not_logged);
  s = CU_add_suite("certs", certs_init, suite_clean);
  CU_add_test(s, "cert_identities", test_cert_identities);
  CU_add_test(s, "cli_cert", test_cli_cert);
  CU_add_test(s, "client_reload", test_client_reload);
  CU_add_test(s, "require", test_require);
  CU_add_test(s, "client_certs_flag", test_client_certs_flag);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
