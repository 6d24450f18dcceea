/* test_prom: the Prometheus text writer (common/prom.h).
 *
 * Exact lines for families with and without labels, label values that
 * would break the format if written raw (quotes, backslashes, newlines,
 * braces, bytes outside ASCII), special values (NaN, infinities) and
 * counters past 2^53 written exactly. */
#include <math.h>
#include <string.h>

#include "common/prom.h"
#include "tests/harness/testutil.h"

static void expect(buf *b, const char *want) {
  buf_push(b, 0);
  CU_ASSERT_STRING_EQUAL((char *)b->data, want);
  buf_free(b);
}

static void test_families(void) {
  buf b = BUF_INIT;
  prom_gauge(&b, "mica_x", 7, "Seven things.");
  expect(&b, "# HELP mica_x Seven things.\n# TYPE mica_x gauge\nmica_x 7\n");

  prom_counter(&b, "mica_y_total", UINT64_MAX, "Many.");
  expect(&b, "# HELP mica_y_total Many.\n# TYPE mica_y_total counter\n"
             "mica_y_total 18446744073709551615\n");

  prom_head(&b, "mica_z", "gauge", "Labelled.");
  prom_sample_begin(&b, "mica_z");
  prom_label(&b, "table", "t1");
  prom_label_u(&b, "tablet_id", 42);
  prom_sample_end(&b, 0.5);
  prom_sample_begin(&b, "mica_z");
  prom_sample_end_u(&b, 3);
  expect(&b, "# HELP mica_z Labelled.\n# TYPE mica_z gauge\n"
             "mica_z{table=\"t1\",tablet_id=\"42\"} 0.5\nmica_z 3\n");
}

static void test_hostile_labels(void) {
  buf b = BUF_INIT;
  prom_sample_begin(&b, "m");
  prom_label(&b, "a", "q\"b\\s\nn{x}");
  prom_label(&b, "b", "\xff\x01");
  prom_sample_end_u(&b, 1);
  /* slice_escape turns the backslash, the newline and the bytes outside
   * printable ASCII into \xNN; then `\` and `"` are escaped for the
   * format. Braces inside a value are plain characters. */
  expect(&b, "m{a=\"q\\\"b\\\\x5cs\\\\x0an{x}\",b=\"\\\\xff\\\\x01\"} 1\n");
  /* A label after a value holding `{` still gets a comma. */
  prom_sample_begin(&b, "m");
  prom_label(&b, "a", "{");
  prom_label(&b, "b", "c");
  prom_sample_end_u(&b, 2);
  expect(&b, "m{a=\"{\",b=\"c\"} 2\n");
}

static void test_special_values(void) {
  buf b = BUF_INIT;
  prom_sample_begin(&b, "m");
  prom_sample_end(&b, NAN);
  prom_sample_begin(&b, "m");
  prom_sample_end(&b, INFINITY);
  prom_sample_begin(&b, "m");
  prom_sample_end(&b, -INFINITY);
  prom_sample_begin(&b, "m");
  prom_sample_end(&b, 1e-5);
  expect(&b, "m NaN\nm +Inf\nm -Inf\nm 1.0000000000000001e-05\n");
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"families", test_families},
      {"hostile_labels", test_hostile_labels},
      {"special_values", test_special_values},
      CU_TEST_INFO_NULL};
  tu_add_suite("prom", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
