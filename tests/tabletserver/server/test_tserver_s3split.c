/* test_tserver_s3split: a tablet server opens a split's daughters only
 * once the parent's MANIFEST records the split (state SPLIT), never
 * beside a parent that says SPLITTING (tabletserver/server/ts_admin.c,
 * split_recorded).
 *
 * A real mica-tserver runs standalone on an s3:// root behind the
 * fault-injecting proxy (tests/harness/s3proxy.h), which refuses the
 * right daughter's manifest PUT (412, as a conditional write that lost),
 * so the engine's split stops between SPLITTING and SPLIT with the left
 * daughter's manifest already written:
 *   - refused for good: the split fails, neither daughter nor the parent
 *     serves (the left daughter, whose manifest exists, would otherwise
 *     take writes under a split storage does not record); once S3 answers
 *     again, OpenTablet of the daughters finishes the split from the
 *     parent's files and every key is in its daughter;
 *   - refused once: the server rolls the split forward itself (reopening
 *     the SPLITTING parent writes the missing daughter and SPLIT), and the
 *     split call succeeds with both daughters serving the parent's data;
 *   - the parent's SPLIT write refused for good: the daughters, whose
 *     opens start beside that write (tab_split_overlap), are closed again
 *     and serve nothing; reopening the parent then finishes the split. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/env.h"
#include "proto/auth.h"
#include "tests/harness/member.h"
#include "tests/harness/s3proxy.h"
#include "tests/harness/s3server.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/server/tsh.h"

#define S(str) slice_from_str(str)
#define NKEYS 200
#define VLEN 40
#define SPLIT_AT "k00000100"

/* Starts mica-tserver (standalone) on the S3 root `root` through the
 * proxy; `local` holds its secret, WAL and logs. */
static void srv_start(const char *root, const char *local, tsh_proc *p) {
  char secret[600], wal[600];
  snprintf(secret, sizeof secret, "%s/%s", local, RPC_SECRET_FILE);
  snprintf(wal, sizeof wal, "%s/wal", local);
  const char *args[] = {"--cluster-secret-file", secret, "--wal-dir", wal,
                        NULL};
  memset(p, 0, sizeof *p);
  th_node_opts o = {.prog = "mica-tserver", .name = "tserver",
                    .data_dir = root, .log_dir = local, .args = args,
                    .timeout_ms = 30000};
  TU_OK(th_node_start(&o, &p->node));
  snprintf(p->addr, sizeof p->addr, "%s", p->node.address);
  TU_OK(th_member_channel(p->addr, local, NULL, &p->ch));
  CU_ASSERT_PTR_NOT_NULL_FATAL(p->ch);
}

/* SplitTablet of `parent` at SPLIT_AT; on success the daughters' refs. */
static mica_err *split(rpc_channel *ch, tsh_ref parent, tsh_ref *l,
                       tsh_ref *r) {
  rpc_ts_split_tablet_request req = {0};
  rpc_tablet_ref ref = tsh_pb_ref(parent);
  req.tablet = &ref;
  req.split_key = tsh_bin(S(SPLIT_AT));
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_split_tablet, &req, 60000, &m);
  const rpc_ts_split_tablet_response *sp = m;
  e = tsh_status(e, sp ? sp->status : NULL);
  if (e == NULL) {
    CU_ASSERT_FATAL(sp->left && sp->right && sp->left->location &&
                    sp->right->location);
    *l = (tsh_ref){sp->left->desc->tablet_id, sp->left->desc->range_epoch,
                   sp->left->location->assign_epoch};
    *r = (tsh_ref){sp->right->desc->tablet_id, sp->right->desc->range_epoch,
                   sp->right->location->assign_epoch};
  }
  rpc_msg_free(m);
  return e;
}

/* OpenTablet of daughter `d` of `parent`, naming its sibling. */
static mica_err *open_daughter(rpc_channel *ch, tsh_ref d, bool left,
                               uint64_t parent, uint64_t sibling) {
  rpc_open_tablet_request req = {0};
  rpc_tablet_descriptor desc = {0}, sib = {0};
  rpc_tablet_source src = {0};
  desc.tablet_id = d.id;
  desc.range_epoch = d.re;
  sib.tablet_id = sibling;
  sib.range_epoch = d.re;
  if (left) {
    desc.end_key = tsh_bin(S(SPLIT_AT));
    sib.start_key = tsh_bin(S(SPLIT_AT));
  } else {
    desc.start_key = tsh_bin(S(SPLIT_AT));
    sib.end_key = tsh_bin(S(SPLIT_AT));
  }
  src.tablet_id = parent;
  req.desc = &desc;
  req.assign_epoch = d.ae;
  req.sources = &src;
  req.n_sources = 1;
  req.split_sibling = &sib;
  void *m = NULL;
  mica_err *e = rpc_unary(ch, &rpc_m_ts_open_tablet, &req, 60000, &m);
  e = tsh_status(e, m ? ((rpc_open_tablet_response *)m)->status : NULL);
  rpc_msg_free(m);
  return e;
}

/* Every key of the fill is in its daughter, with its value. */
static void check_daughters(rpc_channel *ch, tsh_ref l, tsh_ref r) {
  buf v = BUF_INIT;
  char key[32];
  int found = 0;
  for (int i = 0; i < NKEYS; i++) {
    snprintf(key, sizeof key, "k%08d", i);
    tsh_ref d = strcmp(key, SPLIT_AT) < 0 ? l : r;
    mica_err *e = tsh_get(ch, d, slice_from_str(key), &v);
    if (e == NULL && v.len == VLEN) found++;
    err_free(e);
  }
  CU_ASSERT_EQUAL(found, NKEYS);
  buf_free(&v);
}

/* Requests in the proxy's log that contain every needle. */
static int logged(const char *a, const char *b, const char *c) {
  buf log = BUF_INIT;
  TU_OK(th_s3_proxy_ctl("GET", "log", &log));
  int n = 0;
  for (char *line = (char *)log.data; line && *line;) {
    char *end = strchr(line, '\n');
    if (end) *end = '\0';
    if (strstr(line, a) && strstr(line, b) && (!c || strstr(line, c))) n++;
    line = end ? end + 1 : NULL;
  }
  buf_free(&log);
  return n;
}

static void test_daughters_wait_for_split(void) {
  const char *endpoint;
  int port;
  TU_OK(th_s3_export_env());
  TU_OK(th_s3_proxy_start(&endpoint, &port));
  TU_OK(setenv("AWS_ENDPOINT_URL", endpoint, 1) == 0
            ? NULL
            : err_new(MICA_INTERNAL, "setenv"));
  char *root = th_s3_new_root("s3split");
  const char *local = tu_tmpdir();
  bool created;
  rpc_secret sec;
  TU_OK(rpc_secret_load_or_create(local, &sec, &created));
  tsh_proc p;
  srv_start(root, local, &p);
  buf v = BUF_INIT;

  /* 1. The right daughter's manifest refused for good. Standalone
   * daughter ids are the next free ones: 2 and 3. */
  tsh_ref par = {1, 1, 1};
  TU_OK(tsh_open(p.ch, par, NULL, NULL));
  TU_OK(tsh_fill(p.ch, par, "k", NKEYS, VLEN, 50));
  TU_OK(th_s3_proxy_ctl("POST", "reset", NULL));
  TU_OK(th_s3_fault("kind=412&count=1000&method=PUT&match=/3/MANIFEST-"));
  tsh_ref l, r;
  mica_err *e = split(p.ch, par, &l, &r);
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  if (e != NULL) CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "daughters stay"));
  err_free(e);
  TU_OK(th_s3_faults_clear());
  /* The engine got past SPLITTING: the left daughter's manifest was
   * written, the right one's refused (by the split and again by the roll
   * forward), and nothing wrote SPLIT. */
  CU_ASSERT(logged("PUT ", "/2/MANIFEST-", NULL) >= 1);
  CU_ASSERT(logged("PUT ", "/3/MANIFEST-", "fault=412") >= 2);
  CU_ASSERT_EQUAL(logged("PUT ", "/3/MANIFEST-", "fault=-"), 0);
  /* Nothing serves the range: not the left daughter (its manifest exists,
   * but the parent never said SPLIT), nor the parent. */
  tsh_ref l0 = {2, 2, 1}, r0 = {3, 2, 1};
  e = tsh_get(p.ch, l0, S("k00000001"), &v);
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  err_free(e);
  e = tsh_put(p.ch, l0, S("k00000002"), S("lost?"));
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  err_free(e);
  e = tsh_get(p.ch, par, S("k00000001"), &v);
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  err_free(e);
  /* With S3 back, the parent never serves again: opening it finishes
   * the split (the daughter written, then SPLIT) and says so. */
  e = tsh_open(p.ch, (tsh_ref){1, 1, 2}, NULL, NULL);
  CU_ASSERT_EQUAL(err_code(e), MICA_NOT_SERVING);
  err_free(e);
  /* The daughters' OpenTablet, as the master sends it (the roll forward
   * above wrote the right daughter under epoch 2). */
  l0.ae = r0.ae = 2;
  TU_OK(open_daughter(p.ch, r0, false, 1, 2));
  TU_OK(open_daughter(p.ch, l0, true, 1, 3));
  check_daughters(p.ch, l0, r0);
  TU_OK(tsh_put(p.ch, l0, S("k00000002"), S("after")));
  TU_OK(tsh_get(p.ch, l0, S("k00000002"), &v));
  CU_ASSERT(v.len == 5 && memcmp(v.data, "after", 5) == 0);

  /* 2. Refused once: the server finishes the split itself. Tablet 10's
   * daughters are 11 and 12. */
  tsh_ref par2 = {10, 1, 1};
  TU_OK(tsh_open(p.ch, par2, NULL, NULL));
  TU_OK(tsh_fill(p.ch, par2, "k", NKEYS, VLEN, 50));
  TU_OK(th_s3_proxy_ctl("POST", "reset", NULL));
  TU_OK(th_s3_fault("kind=412&count=1&method=PUT&match=/12/MANIFEST-"));
  TU_OK(split(p.ch, par2, &l, &r));
  TU_OK(th_s3_faults_clear());
  CU_ASSERT_EQUAL(l.id, 11);
  CU_ASSERT_EQUAL(r.id, 12);
  CU_ASSERT_EQUAL(logged("PUT ", "/12/MANIFEST-", "fault=412"), 1);
  check_daughters(p.ch, l, r);

  /* 3. The parent's SPLIT write refused for good (its third manifest PUT
   * of the split: after the flush's and SPLITTING). The daughters'
   * opens, started beside it, are closed again: neither serves. */
  tsh_ref par4 = {30, 1, 1};
  TU_OK(tsh_open(p.ch, par4, NULL, NULL));
  TU_OK(tsh_fill(p.ch, par4, "k", NKEYS, VLEN, 50));
  TU_OK(th_s3_proxy_ctl("POST", "reset", NULL));
  TU_OK(th_s3_fault("kind=412&count=1000&skip=2&method=PUT"
                    "&match=/30/MANIFEST-"));
  e = split(p.ch, par4, &l, &r);
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  if (e != NULL) CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "daughters stay"));
  err_free(e);
  TU_OK(th_s3_faults_clear());
  CU_ASSERT(logged("PUT ", "/30/MANIFEST-", "fault=412") >= 1);
  CU_ASSERT(logged("PUT ", "/31/MANIFEST-", NULL) >= 1);
  CU_ASSERT(logged("PUT ", "/32/MANIFEST-", NULL) >= 1);
  tsh_ref l4 = {31, 2, 1}, r4 = {32, 2, 1};
  e = tsh_put(p.ch, l4, S("k00000002"), S("lost?"));
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  err_free(e);
  e = tsh_get(p.ch, r4, S("k00000150"), &v);
  CU_ASSERT_NOT_EQUAL(err_code(e), MICA_OK);
  err_free(e);
  e = tsh_open(p.ch, (tsh_ref){30, 1, 2}, NULL, NULL);
  CU_ASSERT_EQUAL(err_code(e), MICA_NOT_SERVING);
  err_free(e);
  l4.ae = r4.ae = 2;
  TU_OK(open_daughter(p.ch, l4, true, 30, 32));
  TU_OK(open_daughter(p.ch, r4, false, 30, 31));
  check_daughters(p.ch, l4, r4);

  /* 4. A clean split, its requests printed on request (the request
   * chain of docs/benchmarks.md, "Splits on S3"). */
  if (getenv("MICA_S3SPLIT_LOG") != NULL) {
    tsh_ref par3 = {20, 1, 1};
    TU_OK(tsh_open(p.ch, par3, NULL, NULL));
    TU_OK(tsh_fill(p.ch, par3, "k", NKEYS, VLEN, 50));
    TU_OK(th_s3_proxy_ctl("POST", "reset", NULL));
    TU_OK(split(p.ch, par3, &l, &r));
    buf log = BUF_INIT;
    TU_OK(th_s3_proxy_ctl("GET", "log", &log));
    fprintf(stderr, "\n--- requests of one split ---\n%s---\n",
            (const char *)log.data);
    buf_free(&log);
  }

  int st = tsh_stop(&p, SIGTERM);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  buf_free(&v);
  free(root);
}

static const CU_TestInfo tests[] = {
    {"daughters_wait_for_split", test_daughters_wait_for_split},
    CU_TEST_INFO_NULL};

static void add_suites(void) { tu_add_suite("tserver_s3split", tests); }

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
