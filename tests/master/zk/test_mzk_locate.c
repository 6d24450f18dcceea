/* test_mzk_locate: the master locator without a network (mzk_locate.h):
 * what a master specification may be and the messages for bad ones, how a
 * list moves on after failures, and how a standby's refusal re-routes to
 * the master it names. (Following ZooKeeper's record is tested against a
 * real ZooKeeper in test_ha_failover.) */
#include <string.h>

#include "master/zk/mzk_locate.h"
#include "tests/harness/testutil.h"

static void expect_bad(const char *spec, const char *needle) {
  mzk_locator *l = NULL;
  mica_err *e = mzk_locator_open(spec, 0, &l);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(l);
  if (e != NULL && strstr(err_msg(e), needle) == NULL) {
    fprintf(stderr, "\"%s\": message \"%s\" lacks \"%s\"\n", spec,
            err_msg(e), needle);
    CU_FAIL("message");
  }
  err_free(e);
  mzk_locator_close(l);
}

static void test_bad_specs(void) {
  expect_bad("", "empty");
  expect_bad("host", "host");
  expect_bad("a:1,,b:2", "a:1,,b:2");
  expect_bad("a:99999", "a:99999");
  expect_bad("a:1,b:x", "b:x");
  expect_bad("a:1,b:2/mica", "zk://");
  expect_bad("zk://", "zk://");
  expect_bad("zk://h:1/a//b", "zk://h:1/a//b");
  CU_ASSERT(mzk_spec_is_ha("zk://h:1/x"));
  CU_ASSERT(mzk_spec_is_ha("a:1,b:2"));
  CU_ASSERT(!mzk_spec_is_ha("a:1"));
}

static mica_err *fail(int code, const char *msg) {
  return err_new(code, "%s", msg);
}

static void expect_current(mzk_locator *l, const char *want) {
  char a[MZK_ADDR_MAX];
  CU_ASSERT_FATAL(mzk_locator_current(l, a, sizeof a));
  CU_ASSERT_STRING_EQUAL(a, want);
}

static void test_list(void) {
  mzk_locator *l = NULL;
  TU_OK(mzk_locator_open("10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000", 0, &l));
  CU_ASSERT_STRING_EQUAL(mzk_locator_spec(l),
                         "10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000");
  expect_current(l, "10.0.0.1:7000");
  /* An application error is not the master's fault: stay. */
  mica_err *e = fail(MICA_NOT_FOUND, "no table x");
  mzk_locator_failed(l, "10.0.0.1:7000", e);
  err_free(e);
  expect_current(l, "10.0.0.1:7000");
  /* Unreachable: the next candidate. */
  e = fail(MICA_UNAVAILABLE, "connection refused");
  mzk_locator_failed(l, "10.0.0.1:7000", e);
  expect_current(l, "10.0.0.2:7000");
  /* A late report of the same failure changes nothing. */
  mzk_locator_failed(l, "10.0.0.1:7000", e);
  err_free(e);
  expect_current(l, "10.0.0.2:7000");
  /* A standby names the active master, even one not in the list. */
  e = fail(MICA_NOT_ACTIVE_MASTER,
           "master 10.0.0.2:7000 is a standby; the active master is "
           "10.0.0.9:7000 (epoch 4, http 10.0.0.9:8080)");
  mzk_locator_failed(l, "10.0.0.2:7000", e);
  err_free(e);
  expect_current(l, "10.0.0.9:7000");
  /* That one deposed too: back to the list, where it left off. */
  e = fail(MICA_STALE_MASTER, "refused");
  mzk_locator_failed(l, "10.0.0.9:7000", e);
  err_free(e);
  expect_current(l, "10.0.0.2:7000");
  /* A standby that knows no active master: the next candidate. */
  e = fail(MICA_NOT_ACTIVE_MASTER,
           "master 10.0.0.2:7000 is a standby and no master is active yet");
  mzk_locator_failed(l, "10.0.0.2:7000", e);
  err_free(e);
  expect_current(l, "10.0.0.3:7000");
  e = fail(MICA_DEADLINE_EXCEEDED, "no answer");
  mzk_locator_failed(l, "10.0.0.3:7000", e);
  err_free(e);
  expect_current(l, "10.0.0.1:7000");
  mzk_locator_close(l);
  mzk_locator_close(NULL);
}

static void test_zk_before_zookeeper(void) {
  /* A zk:// locator that has not reached ZooKeeper knows no master. */
  mzk_locator *l = NULL;
  TU_OK(mzk_locator_open("zk://127.0.0.1:1/mica", 1000, &l));
  char a[MZK_ADDR_MAX];
  CU_ASSERT(!mzk_locator_current(l, a, sizeof a));
  mzk_locator_close(l);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"bad_specs", test_bad_specs},
      {"list", test_list},
      {"zk_before_zookeeper", test_zk_before_zookeeper},
      CU_TEST_INFO_NULL};
  tu_add_suite("mzk_locate", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
