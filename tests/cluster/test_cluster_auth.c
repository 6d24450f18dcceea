/* Cluster membership and client roles (docs/security.md), on real
 * processes.
 *
 * Suite "membership" (no tokens file): every attack of issue 14 replayed by
 * an anonymous caller, and by one holding a wrong secret, is refused and
 * changes nothing; the secret file exists with mode 0600; client calls are
 * open (the documented default); admin actions are in the event log with
 * their caller.
 *
 * Suite "tokens" (a tokens file with read, write and admin tokens): a
 * missing, unknown, or too weak token is refused with a message naming the
 * role, nothing changes; the right tokens work; the tablet servers enforce
 * the table they learned from the master; no token reaches a log. */
#include <curl/curl.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/env.h"
#include "mica/mica.h"
#include "proto/auth.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/testutil.h"

static cluster *g_c;
static char g_tokens[1024];

#define TOK_ADMIN "admin-token-0123456789abcdef"
#define TOK_WRITE "write-token-0123456789abcdef"
#define TOK_READ "read-token-0123456789abcdef"

static slice S(const char *s) { return slice_from_str(s); }

/* `e` has `code` and its message contains `part` (may be NULL); frees e. */
static void expect(mica_err *e, int code, const char *part, const char *what) {
  if (e == NULL) {
    CU_FAIL(what);
    fprintf(stderr, "%s: succeeded, expected %s\n", what,
            mica_code_name(code));
    return;
  }
  if (err_code(e) != code || (part && strstr(err_msg(e), part) == NULL)) {
    fprintf(stderr, "%s: got %s \"%s\", expected %s containing \"%s\"\n",
            what, mica_code_name(err_code(e)), err_msg(e),
            mica_code_name(code), part ? part : "");
    CU_FAIL(what);
  }
  err_free(e);
}

/* A call on `ch`: the transport error, else the response's Status. */
static mica_err *call(rpc_channel *ch, const rpc_method *m, const void *req) {
  void *resp = NULL;
  mica_err *e = rpc_unary(ch, m, req, 10000, &resp);
  if (e == NULL) e = cl_response_err(resp);
  rpc_msg_free(resp);
  return e;
}

static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static size_t server_count(void) {
  rpc_list_servers_request q = {0};
  rpc_list_servers_response *r = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000,
                       (void **)&r));
  size_t n = r ? r->n_servers : 0;
  rpc_msg_free(r);
  return n;
}

/* The served tablets of the server at `addr`, asked as a member. */
static size_t served_count(const char *addr, uint64_t tablet_id) {
  rpc_tablet_info_request q = {0};
  rpc_tablet_info_response *r = NULL;
  TU_OK(rpc_unary(cl_channel(g_c, addr), &rpc_m_ts_tablet_info, &q, 5000,
                  (void **)&r));
  size_t n = 0;
  for (size_t i = 0; r && i < r->n_tablets; i++)
    if (tablet_id == 0 || r->tablets[i].desc->tablet_id == tablet_id) n++;
  rpc_msg_free(r);
  return n;
}

/* ---- suite: membership ---- */

static int membership_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.s3 = false; /* reads the data root's files as POSIX files */
  o.tservers = 2;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static void test_secret_file(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", cl_data_root(g_c), RPC_SECRET_FILE);
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
  CU_ASSERT_EQUAL(st.st_size, 2 * RPC_SECRET_BYTES + 1);
  rpc_secret s;
  TU_OK(rpc_secret_read(path, &s));
  /* A secret others may read is refused, naming the file and the fix. */
  CU_ASSERT_EQUAL(chmod(path, 0644), 0);
  expect(rpc_secret_read(path, &s), MICA_PERMISSION_DENIED, "chmod 600",
         "world-readable secret");
  CU_ASSERT_EQUAL(chmod(path, 0600), 0);
}

static void test_attacks_refused(void) {
  TU_OK(kvc_create_table(g_c, "acct", (slice[]){S("m")}, 1));
  TU_OK(kvc_put(g_c, "acct", S("k"), S("v1"), 10000));
  rpc_tablet_route *rt = NULL;
  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_route(g_c, "acct", S("k"), 10000, &rt, &lr));
  CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
  uint64_t tid = rt->desc->tablet_id;
  uint64_t owner_id = rt->location->server_id;
  char owner[128], other[128];
  snprintf(owner, sizeof owner, "%s", rt->location->address);
  uint64_t ae = rt->location->assign_epoch, re = rt->desc->range_epoch;
  snprintf(other, sizeof other, "%s",
           strcmp(cl_tserver_address(g_c, 0), owner) == 0
               ? cl_tserver_address(g_c, 1)
               : cl_tserver_address(g_c, 0));

  rpc_channel *anon_owner, *anon_other, *anon_master, *wrong;
  TU_OK(rpc_channel_new(owner, NULL, &anon_owner));
  TU_OK(rpc_channel_new(other, NULL, &anon_other));
  TU_OK(rpc_channel_new(cl_master_address(g_c), NULL, &anon_master));
  rpc_secret bad;
  memset(&bad, 0x5a, sizeof bad);
  rpc_channel_opts wo = {.member = &bad};
  TU_OK(rpc_channel_new(owner, &wo, &wrong));

  char tablets_dir[1024];
  snprintf(tablets_dir, sizeof tablets_dir, "%s/tablets", cl_data_root(g_c));
  size_t dirs_before = count_entries(tablets_dir);
  size_t servers_before = server_count();

  /* CloseTablet of a serving tablet with a forged moved_to. */
  rpc_tablet_ref ref = {.tablet_id = tid, .range_epoch = re,
                        .assign_epoch = ae};
  rpc_location fake = {.server_id = 9, .address = "127.0.0.1:9",
                       .assign_epoch = ae + 1};
  rpc_close_tablet_request cq = {.tablet = &ref, .moved_to = &fake};
  expect(call(anon_owner, &rpc_m_ts_close_tablet, &cq),
         MICA_PERMISSION_DENIED, "cluster members only",
         "anonymous CloseTablet");
  /* The same with a wrong secret: the proof does not verify, and the
   * message names neither secret. */
  mica_err *e = call(wrong, &rpc_m_ts_close_tablet, &cq);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL(err_code(e), MICA_UNAUTHENTICATED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "does not hold this cluster"));
  CU_ASSERT_PTR_NULL(strstr(err_msg(e), "5a5a5a"));
  err_free(e);

  /* OpenTablet of the live tablet on the other server, one epoch ahead
   * (the split brain of issue 14), and of a made-up tablet. */
  rpc_tablet_descriptor d = *rt->desc;
  rpc_open_tablet_request oq = {.desc = &d, .assign_epoch = ae + 1};
  expect(call(anon_other, &rpc_m_ts_open_tablet, &oq),
         MICA_PERMISSION_DENIED, "OpenTablet", "anonymous OpenTablet");
  rpc_tablet_descriptor made_up = d;
  made_up.tablet_id = 987654;
  rpc_open_tablet_request mq = {.desc = &made_up, .assign_epoch = 1};
  expect(call(anon_other, &rpc_m_ts_open_tablet, &mq),
         MICA_PERMISSION_DENIED, NULL, "anonymous OpenTablet, made up");
  rpc_ts_split_tablet_request sq = {.tablet = &ref,
                                    .split_key = S("kk")};
  expect(call(anon_owner, &rpc_m_ts_split_tablet, &sq),
         MICA_PERMISSION_DENIED, NULL, "anonymous tserver SplitTablet");

  /* ReportSplit naming the real server, RegisterServer of a fake server
   * and impersonating the real one, Heartbeat. */
  rpc_report_split_request rq = {.server_id = owner_id, .parent = &ref,
                                 .split_key = S("kk")};
  expect(call(anon_master, &rpc_m_master_report_split, &rq),
         MICA_PERMISSION_DENIED, "ReportSplit", "forged ReportSplit");
  rpc_register_server_request gq = {.address = "127.0.0.1:9"};
  expect(call(anon_master, &rpc_m_master_register_server, &gq),
         MICA_PERMISSION_DENIED, "RegisterServer", "fake RegisterServer");
  rpc_register_server_request iq = {.address = owner,
                                    .previous_server_id = owner_id};
  expect(call(anon_master, &rpc_m_master_register_server, &iq),
         MICA_PERMISSION_DENIED, NULL, "impersonating RegisterServer");
  rpc_heartbeat_request hq = {.server_id = owner_id};
  expect(call(anon_master, &rpc_m_master_heartbeat, &hq),
         MICA_PERMISSION_DENIED, "Heartbeat", "anonymous Heartbeat");

  /* Nothing changed: same owner and epochs, still served there only, the
   * value readable, no new directory, no new server. */
  cl_sleep_ms(500);
  rpc_tablet_route *rt2 = NULL;
  rpc_lookup_tablets_response *lr2 = NULL;
  TU_OK(kvc_route(g_c, "acct", S("k"), 10000, &rt2, &lr2));
  CU_ASSERT_EQUAL(rt2->location->server_id, owner_id);
  CU_ASSERT_EQUAL(rt2->location->assign_epoch, ae);
  CU_ASSERT_EQUAL(rt2->desc->range_epoch, re);
  rpc_msg_free(lr2);
  CU_ASSERT_EQUAL(served_count(owner, tid), 1);
  CU_ASSERT_EQUAL(served_count(other, tid), 0);
  CU_ASSERT_EQUAL(served_count(other, 987654), 0);
  bool found = false;
  buf v = BUF_INIT;
  TU_OK(kvc_get(g_c, "acct", S("k"), &found, &v, 10000));
  CU_ASSERT(found && v.len == 2 && memcmp(v.data, "v1", 2) == 0);
  buf_free(&v);
  CU_ASSERT_EQUAL(count_entries(tablets_dir), dirs_before);
  CU_ASSERT_EQUAL(server_count(), servers_before);

  /* Client calls are open without a tokens file; reads by anyone work. */
  rpc_get_request gr = {.tablet = &ref, .key = S("k")};
  TU_OK(call(anon_owner, &rpc_m_ts_get, &gr));

  rpc_channel_free(wrong);
  rpc_channel_free(anon_master);
  rpc_channel_free(anon_other);
  rpc_channel_free(anon_owner);
  rpc_msg_free(lr);
}

static void test_admin_audited(void) {
  mica_client *c = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), NULL, &c), MICA_OK);
  CU_ASSERT_EQUAL(mica_create_table(c, "audited", NULL, 0), MICA_OK);
  CU_ASSERT_EQUAL(mica_drop_table(c, "audited"), MICA_OK);
  mica_close(c);
  CU_ASSERT(cl_has_event(g_c, "CreateTable audited by anonymous"));
  CU_ASSERT(cl_has_event(g_c, "DropTable audited by anonymous"));
  CU_ASSERT(cl_has_event(g_c, "CreateTable acct by member"));
}

/* ---- suite: tokens ---- */

static int tokens_init(void) {
  snprintf(g_tokens, sizeof g_tokens, "%s/tokens", tu_tmpdir());
  mica_err *err = env_write_file_atomic(env_posix(), g_tokens, slice_from_str(
      "# token identity role\n"
      TOK_ADMIN " alice admin\n"
      "\n"
      TOK_WRITE " bob write\n"
      TOK_READ "   carol\tread\n"));
  if (err) {
    fprintf(stderr, "%s: %s\n", g_tokens, err_msg(err));
    err_free(err);
    return 1;
  }
  cl_options o;
  cl_options_init(&o);
  o.s3 = false; /* reads the data root's files as POSIX files */
  o.tservers = 2;
  o.tokens_file = g_tokens;
  return cl_suite_start(&o, &g_c);
}

static mica_client *client(const char *token) {
  mica_options o;
  mica_options_init(&o);
  o.token = token;
  o.deadline_ms = 10000;
  mica_client *c = NULL;
  CU_ASSERT_EQUAL(mica_open(cl_master_address(g_c), &o, &c), MICA_OK);
  return c;
}

static void expect_rc(int rc, int code, const char *part, const char *what) {
  if (rc != code || (part && strstr(mica_errmsg(), part) == NULL)) {
    fprintf(stderr, "%s: got %s \"%s\", expected %s containing \"%s\"\n",
            what, mica_code_name(rc), rc ? mica_errmsg() : "",
            mica_code_name(code), part ? part : "");
    CU_FAIL(what);
  }
}

static void test_roles(void) {
  mica_client *admin = client(TOK_ADMIN), *writer = client(TOK_WRITE),
              *reader = client(TOK_READ), *anon = client(NULL),
              *wrong = client("not-a-token-of-this-cluster");
  CU_ASSERT_EQUAL_FATAL(mica_create_table(admin, "t", NULL, 0), MICA_OK);
  CU_ASSERT_EQUAL(mica_put(writer, "t", "k", 1, "w1", 2), MICA_OK);

  /* DropTable without admin: anonymous, unknown token, write token. */
  expect_rc(mica_drop_table(anon, "t"), MICA_UNAUTHENTICATED,
            "needs role 'admin': no token", "anonymous DropTable");
  expect_rc(mica_drop_table(wrong, "t"), MICA_UNAUTHENTICATED,
            "not recognised", "unknown token DropTable");
  expect_rc(mica_drop_table(writer, "t"), MICA_PERMISSION_DENIED,
            "needs role 'admin' on table 't'; identity 'bob' has role 'write'",
            "write token DropTable");
  expect_rc(mica_create_table(reader, "t2", NULL, 0), MICA_PERMISSION_DENIED,
            "needs role 'admin'", "read token CreateTable");

  /* Writes without write: read token, anonymous (the tablet server checks
   * with the table it learned from the master). */
  expect_rc(mica_put(reader, "t", "k", 1, "r1", 2), MICA_PERMISSION_DENIED,
            "needs role 'write' on table 't'; identity 'carol' has role 'read'",
            "read token Put");
  expect_rc(mica_put(anon, "t", "k", 1, "a1", 2), MICA_UNAUTHENTICATED,
            "needs role", "anonymous Put");
  expect_rc(mica_delete(reader, "t", "k", 1), MICA_PERMISSION_DENIED,
            "write", "read token Delete");
  rpc_tablet_route *rt = NULL;
  rpc_lookup_tablets_response *lr = NULL;
  TU_OK(kvc_route(g_c, "t", S("k"), 10000, &rt, &lr));
  rpc_channel *ts;
  TU_OK(rpc_channel_new(rt->location->address, NULL, &ts));
  rpc_tablet_ref pref = {.tablet_id = rt->desc->tablet_id,
                        .range_epoch = rt->desc->range_epoch,
                        .assign_epoch = rt->location->assign_epoch};
  rpc_put_request pq = {.tablet = &pref, .key = S("k"), .value = S("x")};
  expect(call(ts, &rpc_m_ts_put, &pq), MICA_UNAUTHENTICATED,
         "no token given", "anonymous Put to the tablet server");
  rpc_channel_free(ts);
  rpc_msg_free(lr);

  /* Nothing changed; the read token reads. */
  void *val = NULL;
  size_t vlen = 0;
  CU_ASSERT_EQUAL(mica_get(reader, "t", "k", 1, &val, &vlen), MICA_OK);
  CU_ASSERT(vlen == 2 && memcmp(val, "w1", 2) == 0);
  mica_free(val);
  val = NULL;
  expect_rc(mica_get(anon, "t", "k", 1, &val, &vlen),
            MICA_UNAUTHENTICATED, "needs role 'read'", "anonymous Get");
  mica_table_info *tables = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL(mica_list_tables(reader, &tables, &n), MICA_OK);
  CU_ASSERT_EQUAL(n, 1);
  mica_free(tables);

  /* The admin drops; the event log names who. */
  CU_ASSERT_EQUAL(mica_drop_table(admin, "t"), MICA_OK);
  CU_ASSERT(cl_has_event(g_c, "DropTable t by alice"));
  CU_ASSERT(cl_has_event(g_c, "CreateTable t by alice"));

  mica_close(wrong);
  mica_close(anon);
  mica_close(reader);
  mica_close(writer);
  mica_close(admin);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
  buf_append(ctx, p, size * n);
  return size * n;
}

/* GET http://<master http><path>, with `auth` as Authorization (NULL =
 * none): the status code; the body goes to `out`. */
static long http_get(const char *path, const char *auth, buf *out) {
  char url[512], hdr[256];
  snprintf(url, sizeof url, "http://%s%s", cl_master_http_address(g_c), path);
  CURL *h = curl_easy_init();
  struct curl_slist *hl = NULL;
  if (auth) {
    snprintf(hdr, sizeof hdr, "Authorization: %s", auth);
    hl = curl_slist_append(hl, hdr);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
  long code = 0;
  if (curl_easy_perform(h) == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(hl);
  curl_easy_cleanup(h);
  buf_push(out, 0);
  return code;
}

/* The status API reveals keys: it needs a read token; /healthz does not. */
static void test_status_api(void) {
  buf b = BUF_INIT;
  CU_ASSERT_EQUAL(http_get("/api/tables", NULL, &b), 401);
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)b.data, "needs role 'read'"));
  buf_clear(&b);
  CU_ASSERT_EQUAL(http_get("/api/events", "Bearer wrong-token-of-nobody",
                           &b), 401);
  buf_clear(&b);
  CU_ASSERT_EQUAL(http_get("/api/tables", "Bearer " TOK_READ, &b), 200);
  buf_clear(&b);
  /* A browser's login box: base64("x:" TOK_READ). */
  char basic[128] = "Basic ";
  {
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *in = "x:" TOK_READ;
    size_t n = strlen(in), k = strlen(basic);
    for (size_t i = 0; i < n; i += 3) {
      uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
      if (i + 1 < n) v |= (uint32_t)(unsigned char)in[i + 1] << 8;
      if (i + 2 < n) v |= (unsigned char)in[i + 2];
      basic[k++] = tbl[v >> 18 & 63];
      basic[k++] = tbl[v >> 12 & 63];
      basic[k++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
      basic[k++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    basic[k] = '\0';
  }
  CU_ASSERT_EQUAL(http_get("/api/servers", basic, &b), 200);
  buf_clear(&b);
  CU_ASSERT_EQUAL(http_get("/healthz", NULL, &b), 200);
  buf_free(&b);
}

/* ---- suite: TLS ---- */

static char g_certs[1024];

static int tls_init(void) {
  snprintf(g_certs, sizeof g_certs, "%s/certs", tu_tmpdir());
  char cmd[2300];
  snprintf(cmd, sizeof cmd, "'%s/tools/mica-certs' '%s' >/dev/null",
           MICA_SOURCE_DIR, g_certs);
  if (system(cmd) != 0) return 1;
  cl_options o;
  cl_options_init(&o);
  o.s3 = false; /* reads the data root's files as POSIX files */
  o.tservers = 2;
  o.tls_dir = g_certs;
  return cl_suite_start(&o, &g_c);
}

/* Every process serves TLS; a client trusting the CA works, kill -9 of a
 * server included; a plaintext client is refused. */
static void test_tls_cluster(void) {
  char ca[1100];
  snprintf(ca, sizeof ca, "%s/ca.pem", g_certs);
  mica_options o;
  mica_options_init(&o);
  o.tls_ca = ca;
  o.deadline_ms = 20000;
  mica_client *c = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), &o, &c), MICA_OK);
  CU_ASSERT_EQUAL(mica_create_table(c, "sec", NULL, 0), MICA_OK);
  char key[32];
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "k%03d", i);
    CU_ASSERT_EQUAL(mica_put(c, "sec", key, strlen(key), "v", 1), MICA_OK);
  }
  /* The tablet's server dies; the master (over TLS, as a member) reopens
   * it elsewhere and every acknowledged write is there. */
  TU_OK(cl_kill_tserver(g_c, 0));
  TU_OK(cl_kill_tserver(g_c, 1));
  TU_OK(cl_restart_tserver(g_c, 0));
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "k%03d", i);
    void *v = NULL;
    size_t vl = 0;
    CU_ASSERT_EQUAL(mica_get(c, "sec", key, strlen(key), &v, &vl), MICA_OK);
    mica_free(v);
  }
  mica_close(c);

  mica_options p;
  mica_options_init(&p);
  p.deadline_ms = 2000;
  mica_client *plain = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), &p, &plain),
                        MICA_OK);
  mica_table_info *t = NULL;
  size_t n = 0;
  CU_ASSERT_NOT_EQUAL(mica_list_tables(plain, &t, &n), MICA_OK);
  mica_close(plain);
}

/* Plaintext on a non-loopback address needs --insecure: refused before
 * anything is bound, naming the address and the flags. */
static void test_insecure_required(void) {
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/insecure", tu_tmpdir());
  const char *margs[] = {"--data-dir", dir, "--listen", "0.0.0.0:0", NULL};
  CU_ASSERT(th_start_refused("mica-master", margs,
                             "is not a loopback address and serves plaintext"));
  const char *targs[] = {"--data-dir", dir, "--http-listen", "0.0.0.0:0",
                         NULL};
  CU_ASSERT(th_start_refused("mica-tserver", targs,
                             "--http-listen 0.0.0.0:0 is not a loopback"));
}

/* No token reaches a process log. */
static void test_tokens_not_logged(void) {
  CU_ASSERT(!cl_logs_contain(g_c, TOK_ADMIN));
  CU_ASSERT(!cl_logs_contain(g_c, TOK_WRITE));
  CU_ASSERT(!cl_logs_contain(g_c, TOK_READ));
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("membership", membership_init, suite_clean);
  CU_add_test(s, "secret_file", test_secret_file);
  CU_add_test(s, "attacks_refused", test_attacks_refused);
  CU_add_test(s, "admin_audited", test_admin_audited);
  s = CU_add_suite("tokens", tokens_init, suite_clean);
  CU_add_test(s, "roles", test_roles);
  CU_add_test(s, "status_api", test_status_api);
  CU_add_test(s, "tokens_not_logged", test_tokens_not_logged);
  s = CU_add_suite("tls", tls_init, suite_clean);
  CU_add_test(s, "tls_cluster", test_tls_cluster);
  CU_add_test(s, "insecure_required", test_insecure_required);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
