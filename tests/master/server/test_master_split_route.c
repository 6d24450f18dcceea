/* test_master_split_route: a split daughter is routed to once its server
 * serves it (docs/master.md, "A split daughter is routed to once its server
 * reports it"), on a real cluster.
 *
 * located_without_heartbeat: with heartbeats 20 s apart, an operator split
 *   returns once the server serves both daughters; the master learns that
 *   by asking the server (TabletInfo, maction.c's probe), not from the next
 *   heartbeat: LookupTablets gives each daughter its location well within
 *   the heartbeat interval, and the daughters read back every key. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mica/mica.h"
#include "proto/rpc.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#define NKEYS 40

/* True when LookupTablets gives the tablet holding `key` of `table` a
 * location. */
static bool located(cluster *cl, const char *table, const char *key,
                    uint64_t *tablet_id) {
  rpc_lookup_tablets_request q = {0};
  q.table = (char *)table;
  q.key = slice_from_str(key);
  q.count = 1;
  rpc_lookup_tablets_response *r = NULL;
  mica_err *err = cl_call_master(cl, &rpc_m_master_lookup_tablets, &q, 5000,
                                 (void **)&r);
  if (err == NULL) err = cl_response_err(r);
  bool loc = false;
  if (err == NULL && r->n_tablets == 1) {
    const rpc_tablet_route *t = &r->tablets[0];
    if (tablet_id && t->desc) *tablet_id = t->desc->tablet_id;
    loc = t->location != NULL && t->location->address != NULL &&
          t->location->address[0] != '\0';
  }
  if (err != NULL) fprintf(stderr, "\nLookupTablets: %s\n", err_msg(err));
  err_free(err);
  rpc_msg_free(r);
  return loc;
}

static void test_located_without_heartbeat(void) {
  static const char *margs[] = {"--merge", "off", "--balancer", "off", NULL};
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.lease_ms = 60000;
  o.heartbeat_ms = 20000;
  o.master_args = margs;
  cluster *cl = NULL;
  TU_OK(cl_start(&o, &cl));
  mica_options mo;
  mica_options_init(&mo);
  mo.deadline_ms = 30000;
  mica_client *c = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(cl), &mo, &c), MICA_OK);
  CU_ASSERT_EQUAL_FATAL(mica_create_table(c, "s", NULL, 0), MICA_OK);
  for (int i = 0; i < NKEYS; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%03d", i);
    CU_ASSERT_EQUAL_FATAL(mica_put(c, "s", k, strlen(k), k, strlen(k)),
                          MICA_OK);
  }
  uint64_t parent = 0;
  CU_ASSERT_FATAL(located(cl, "s", "k000", &parent));
  uint64_t d[2] = {0, 0};
  int rc = mica_split_tablet(c, parent, "k020", 4, d);
  if (rc != MICA_OK) fprintf(stderr, "\nsplit: %s\n", mica_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, MICA_OK);
  uint64_t t0 = cl_now_ms();
  /* Located long before the next heartbeat could report the daughters
   * (20 s): the probe asks every 50 ms. */
  bool both = false;
  uint64_t l = 0, r = 0;
  while (!both && cl_now_ms() < t0 + 8000) {
    both = located(cl, "s", "k005", &l) && located(cl, "s", "k030", &r);
    if (!both) cl_sleep_ms(20);
  }
  if (!both) fprintf(stderr, "\ndaughters not located within 8 s\n");
  CU_ASSERT(both);
  CU_ASSERT_EQUAL(l, d[0]);
  CU_ASSERT_EQUAL(r, d[1]);
  for (int i = 0; i < NKEYS; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%03d", i);
    void *v = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(mica_get(c, "s", k, strlen(k), &v, &n), MICA_OK);
    CU_ASSERT(n == strlen(k) && v != NULL && memcmp(v, k, n) == 0);
    mica_free(v);
  }
  mica_close(c);
  cl_free(cl);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"located_without_heartbeat", test_located_without_heartbeat},
      CU_TEST_INFO_NULL};
  tu_add_suite("split_route", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
