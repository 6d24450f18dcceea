/* mica-bench end to end against a real one-master, one-tablet-server
 * cluster on loopback: load small records, run workload A for a fixed
 * number of operations and E and D for a fixed time, and check from the
 * JSON report that every operation issued is counted once, in the right
 * mix, with no error; that --target holds the rate down; that a run
 * against a missing table reports every operation as an error and exits 1;
 * that an unreachable master and bad usage exit 1 and 2.
 *
 * Suite "client_certs": a TLS cluster whose master and tablet server run
 * with --tls-client-certs require and a tokens file granting write to the
 * client certificate CN=bencher: mica-bench with --ca --cert --key runs
 * workload A with no error, cannot create a table with it (write is not
 * admin), and without a certificate is refused at the handshake (every
 * operation an error, exit 1); --cert without --key, or without --ca, is a
 * usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *cl;
static char bench[1024];
static char tmp[1024];
static bool have_python;

static int paths_init(void) {
  const char *bin = getenv("MICA_BIN_DIR");
  if (!bin) {
    fprintf(stderr, "MICA_BIN_DIR is not set\n");
    return 1;
  }
  snprintf(bench, sizeof bench, "%s/mica-bench", bin);
  return 0;
}

static int suite_init(void) {
  if (paths_init() != 0) return 1;
  snprintf(tmp, sizeof tmp, "%s", tu_tmpdir());
  have_python = system("python3 -c 'import json' >/dev/null 2>&1") == 0;
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  return cl_suite_start(&o, &cl);
}

static int suite_clean(void) { return cl_suite_stop(&cl); }

/* Runs mica-bench with `args` against the cluster; output to <tmp>/<name>.out
 * and JSON to <tmp>/<name>.json. Returns the exit status (-1 if it did not
 * exit normally). */
static int bench_run(const char *name, const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s %s --master %s --quiet --json %s/%s.json >%s/%s.out 2>&1",
           bench, args, cl_master_address(cl), tmp, name, tmp, name);
  int st = system(cmd);
  if (!WIFEXITED(st)) return -1;
  if (WEXITSTATUS(st) > 1) {
    char show[2048];
    snprintf(show, sizeof show, "cat %s/%s.out >&2", tmp, name);
    if (system(show) != 0) fprintf(stderr, "(no output)\n");
  }
  return WEXITSTATUS(st);
}

/* Evaluates a Python expression over the report `d` of run `name`; the
 * integer it prints. -1 when Python or the JSON failed. */
static long long report(const char *name, const char *expr) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
           "o=d[\"operations\"]; print(int(%s))' %s/%s.json 2>&1",
           expr, tmp, name);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  char line[512] = "";
  char *got = fgets(line, sizeof line, p);
  int st = pclose(p);
  if (!got || st != 0) {
    fprintf(stderr, "report %s: %s -> %s\n", name, expr, line);
    return -1;
  }
  return atoll(line);
}

/* Every issued operation counted once, per-op counts summing to the total,
 * and no errors anywhere. */
static void check_accounted(const char *name) {
  long long issued = report(name, "d[\"ops_issued\"]");
  CU_ASSERT(issued > 0);
  CU_ASSERT_EQUAL(report(name, "d[\"ops_counted\"]"), issued);
  CU_ASSERT_EQUAL(report(name, "sum(v[\"count\"] for v in o.values())"), issued);
  CU_ASSERT_EQUAL(report(name, "d[\"errors\"]"), 0);
  CU_ASSERT_EQUAL(report(name, "sum(v[\"errors\"] for v in o.values())"), 0);
  /* Percentiles are ordered and within the maximum. */
  CU_ASSERT_EQUAL(report(name, "all(v[\"p50_us\"] <= v[\"p95_us\"] <= v[\"p99_us\"] <= "
                               "v[\"p99_9_us\"] <= v[\"max_us\"] for v in o.values())"),
                  1);
}

#define SMALL "--records 400 --fields 10 --field-length 10 --threads 4"

static void test_load_and_run(void) {
  if (!have_python) {
    fprintf(stderr, "python3 not found: skipping the JSON checks\n");
    return;
  }
  CU_ASSERT_EQUAL_FATAL(bench_run("load", "load " SMALL " --tablets 3"), 0);
  check_accounted("load");
  CU_ASSERT_EQUAL(report("load", "o[\"insert\"][\"count\"]"), 400);
  CU_ASSERT_EQUAL(report("load", "d[\"record_bytes\"]"), 100);

  CU_ASSERT_EQUAL(bench_run("a", "run --workload a --ops 3000 " SMALL), 0);
  check_accounted("a");
  CU_ASSERT_EQUAL(report("a", "d[\"ops_issued\"]"), 3000);
  /* 50/50: each side within 40..60% of 3000 (far outside chance). */
  CU_ASSERT(report("a", "o[\"read\"][\"count\"]") > 1200);
  CU_ASSERT(report("a", "o[\"update\"][\"count\"]") > 1200);
  CU_ASSERT_EQUAL(report("a", "len(o)"), 2);

  CU_ASSERT_EQUAL(bench_run("e", "run --workload e --ops 0 --duration 2 " SMALL), 0);
  check_accounted("e");
  CU_ASSERT(report("e", "d[\"seconds\"] >= 2") == 1);
  long long scans = report("e", "o[\"scan\"][\"count\"]");
  long long inserts = report("e", "o[\"insert\"][\"count\"]");
  CU_ASSERT(scans > 0 && inserts > 0 && inserts < scans);
  /* Scans of 1..100 records: some rows, never more than 100 per scan. */
  long long rows = report("e", "o[\"scan\"][\"rows\"]");
  CU_ASSERT(rows >= scans && rows <= 100 * scans);

  /* D reads the newest records most: those E just inserted beyond the 400
   * loaded, which must all be there. Its own inserts continue after E's
   * (a load of 400 + E's inserts), so it needs the real record count. */
  char d_args[512];
  snprintf(d_args, sizeof d_args,
           "run --workload d --ops 0 --duration 1 --records %lld --fields 10 --field-length 10 "
           "--threads 4",
           400 + inserts);
  CU_ASSERT_EQUAL(bench_run("d", d_args), 0);
  check_accounted("d");
  CU_ASSERT(report("d", "o[\"read\"][\"count\"]") > 0);
}

static void test_target_rate(void) {
  if (!have_python) return;
  /* 300 reads at 200 ops/s take 1.5 s; unthrottled they take a fraction. */
  CU_ASSERT_EQUAL(bench_run("target", "run --workload c --ops 300 --target 200 " SMALL), 0);
  check_accounted("target");
  CU_ASSERT_EQUAL(report("target", "1.3 <= d[\"seconds\"] <= 5"), 1);
  CU_ASSERT_EQUAL(report("target", "d[\"target_ops_s\"]"), 200);
}

static void test_failures_counted(void) {
  if (!have_python) return;
  /* Every read of a missing table fails: all counted, all errors, exit 1. */
  CU_ASSERT_EQUAL(bench_run("missing", "run --workload c --ops 50 --table no_such_table " SMALL),
                  1);
  CU_ASSERT_EQUAL(report("missing", "d[\"ops_counted\"]"), 50);
  CU_ASSERT_EQUAL(report("missing", "d[\"errors\"]"), 50);
  CU_ASSERT_EQUAL(report("missing", "\"NOT_FOUND\" in o[\"read\"][\"first_error\"]"), 1);
  /* Records of another size than loaded count as errors too. */
  CU_ASSERT_EQUAL(bench_run("size", "run --workload c --ops 40 --records 400 --field-length 11"),
                  1);
  CU_ASSERT_EQUAL(report("size", "d[\"errors\"]"), 40);
}

static void test_usage(void) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s --help >/dev/null", bench);
  CU_ASSERT_EQUAL(WEXITSTATUS(system(cmd)), 0);
  const char *bad[] = {"", "run --nope 1", "walk", "run --workload z", "run --threads 0",
                       "run --records ten", "run --backend etcd", "run --ops 0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", bench, bad[i]);
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  }
  /* Nothing listens on port 1: every call fails within its deadline. */
  snprintf(cmd, sizeof cmd, "%s run --master 127.0.0.1:1 --ops 5 --threads 1 --timeout 300 "
           "--quiet >/dev/null 2>&1", bench);
  int st = system(cmd);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

/* ---- suite: client_certs ---- */

static cluster *cc;
static char cc_dir[1024], cc_tokens[1100];

static int certs_init(void) {
  if (paths_init() != 0) return 1;
  have_python = system("python3 -c 'import json' >/dev/null 2>&1") == 0;
  snprintf(tmp, sizeof tmp, "%s", tu_tmpdir());
  snprintf(cc_dir, sizeof cc_dir, "%s/certs", tu_tmpdir());
  char cmd[2400];
  snprintf(cmd, sizeof cmd, "'%s/tools/mica-certs' '%s' --client bencher >/dev/null",
           MICA_SOURCE_DIR, cc_dir);
  if (system(cmd) != 0) return 1;
  /* CN=mica-client (the tool's default client certificate) creates the
   * table; CN=bencher may only read and write. */
  snprintf(cc_tokens, sizeof cc_tokens, "%s/tokens", cc_dir);
  FILE *f = fopen(cc_tokens, "w");
  if (!f) return 1;
  fputs("cert:mica-client ops admin\ncert:bencher ingest write\n", f);
  if (fclose(f) != 0) return 1;
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  o.tls_dir = cc_dir;
  o.tokens_file = cc_tokens;
  o.client_certs = "require";
  return cl_suite_start(&o, &cc);
}

static int certs_clean(void) { return cl_suite_stop(&cc); }

/* mica-bench against the client_certs cluster with --ca and, when `cert`
 * is given, <cc_dir>/<cert>.pem and .key; like bench_run otherwise. */
static int bench_tls(const char *name, const char *cert, const char *args) {
  char creds[3400], full[4096];
  int n = snprintf(creds, sizeof creds, "--ca %s/ca.pem", cc_dir);
  if (cert)
    snprintf(creds + n, sizeof creds - (size_t)n, " --cert %s/%s.pem --key %s/%s.key", cc_dir,
             cert, cc_dir, cert);
  snprintf(full, sizeof full, "%s %s", args, creds);
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s %s --master %s --quiet --json %s/%s.json >%s/%s.out 2>&1",
           bench, full, cl_master_address(cc), tmp, name, tmp, name);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whether <tmp>/<name>.out contains `part`. */
static bool out_has(const char *name, const char *part) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s.out", tmp, name);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  char text[16384];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  bool has = strstr(text, part) != NULL;
  if (!has) fprintf(stderr, "%s.out lacks \"%s\":\n%s\n", name, part, text);
  return has;
}

#define TINY "--records 200 --fields 4 --field-length 10 --threads 2"

static void test_client_cert_runs(void) {
  /* The admin certificate creates and loads the table. */
  CU_ASSERT_EQUAL_FATAL(bench_tls("cload", "client", "load " TINY " --tablets 2"), 0);
  /* The write certificate cannot create a table: its identity is the
   * certificate's, and write is not admin. */
  CU_ASSERT_EQUAL(bench_tls("cwload", "client-bencher", "load " TINY " --table other"), 1);
  CU_ASSERT(out_has("cwload", "needs role 'admin'"));
  CU_ASSERT(out_has("cwload", "identity 'ingest'"));
  /* ... but reads and writes. */
  CU_ASSERT_EQUAL(bench_tls("crun", "client-bencher", "run --workload a --ops 400 " TINY), 0);
  if (have_python) {
    check_accounted("crun");
    CU_ASSERT_EQUAL(report("crun", "d[\"ops_issued\"]"), 400);
    CU_ASSERT(report("crun", "o[\"update\"][\"count\"]") > 0);
  }
}

static void test_client_cert_refused(void) {
  /* No certificate: the handshake is refused, so every call fails. */
  CU_ASSERT_EQUAL(
      bench_tls("cnone", NULL, "run --workload c --ops 4 --threads 1 --timeout 1500 " TINY), 1);
  if (have_python) {
    CU_ASSERT_EQUAL(report("cnone", "d[\"ops_counted\"]"), 4);
    CU_ASSERT_EQUAL(report("cnone", "d[\"errors\"]"), 4);
  }
  /* Half a certificate, or one without a CA, is a usage error. */
  char cmd[8192];
  const char *bad[] = {"--ca %s/ca.pem --cert %s/client.pem", "--cert %s/client.pem --key %s/client.key"};
  for (size_t i = 0; i < 2; i++) {
    char flags[3000];
    snprintf(flags, sizeof flags, bad[i], cc_dir, cc_dir);
    snprintf(cmd, sizeof cmd, "%s run --master %s %s >%s/usage.out 2>&1", bench,
             cl_master_address(cc), flags, tmp);
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CU_ASSERT(out_has("usage", i == 0 ? "--cert and --key go together" : "need --ca"));
  }
}

static void add_suites(void) {
  CU_pSuite u = CU_add_suite("usage", paths_init, NULL);
  CU_add_test(u, "usage", test_usage);
  CU_pSuite s = CU_add_suite("bench_e2e", suite_init, suite_clean);
  CU_add_test(s, "load_and_run", test_load_and_run);
  CU_add_test(s, "target_rate", test_target_rate);
  CU_add_test(s, "failures_counted", test_failures_counted);
  CU_pSuite c = CU_add_suite("client_certs", certs_init, certs_clean);
  CU_add_test(c, "cert_runs", test_client_cert_runs);
  CU_add_test(c, "cert_refused", test_client_cert_refused);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
