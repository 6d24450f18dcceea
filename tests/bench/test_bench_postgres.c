/* test_bench_postgres: mica-bench's PostgreSQL backend against a real
 * PostgreSQL 15, started by bench/compare/postgres.sh (the script the
 * comparison uses) on 127.0.0.1 in a temporary directory.
 *
 * Loads records and checks with psql that the table holds every one with
 * its full value; runs workload A (reads and upserts) and E (ordered scans
 * with LIMIT and inserts) and checks from the JSON report that every
 * operation succeeded in the right mix, that scans returned rows, and that
 * the upserts overwrote rows rather than adding any; then checks that an
 * unreachable server exits 1 naming the failure and bad usage exits 2.
 * Exits 77 (skipped, with the reason) only when the PostgreSQL binaries
 * are not installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness/proc.h"
#include "tests/harness/testutil.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

static char bench[1024], psql[1024], tmp[1024], uri[256];
static th_proc *pg;

/* Runs mica-bench with `args` (NULL-terminated) against the server, JSON
 * to <tmp>/<name>.json; returns the exit code, stderr into *err (may be
 * NULL, caller frees). */
static int bench_run(const char *name, const char *const *args, char **err) {
  const char *argv[32] = {bench};
  int n = 1;
  for (; args[n - 1] && n < 26; n++) argv[n] = args[n - 1];
  char json[1100];
  snprintf(json, sizeof json, "%s/%s.json", tmp, name);
  argv[n++] = "--quiet";
  argv[n++] = "--json";
  argv[n++] = json;
  argv[n] = NULL;
  th_result r;
  mica_err *e = th_run(argv, NULL, NULL, 120000, &r);
  if (e != NULL) {
    fprintf(stderr, "mica-bench %s: %s\n", name, err_msg(e));
    err_free(e);
    return -1;
  }
  if (r.rc != 0 && err == NULL) fprintf(stderr, "mica-bench %s: %s%s\n", name, r.out.data, r.err.data);
  if (err != NULL) *err = strdup((const char *)r.err.data);
  int rc = r.rc;
  th_result_free(&r);
  return rc;
}

/* A Python expression over report `d` (operations `o`) of run `name`, as
 * an integer; -1 when it failed. */
static long long report(const char *name, const char *expr) {
  char code[1024], path[1100];
  snprintf(code, sizeof code,
           "import json,sys; d=json.load(open(sys.argv[1])); o=d['operations']; print(int(%s))",
           expr);
  snprintf(path, sizeof path, "%s/%s.json", tmp, name);
  const char *argv[] = {"python3", "-c", code, path, NULL};
  th_result r;
  mica_err *e = th_run(argv, NULL, NULL, 30000, &r);
  if (e != NULL) {
    err_free(e);
    return -1;
  }
  long long v = r.rc == 0 ? atoll((const char *)r.out.data) : -1;
  if (r.rc != 0) fprintf(stderr, "report %s: %s: %s\n", name, expr, r.err.data);
  th_result_free(&r);
  return v;
}

/* One psql query's unaligned, tuples-only answer, or "" on failure. */
static void query(const char *sql, char *out, size_t n) {
  const char *argv[] = {psql, "-X", "-A", "-t", "-d", uri, "-c", sql, NULL};
  th_result r;
  out[0] = '\0';
  mica_err *e = th_run(argv, NULL, NULL, 30000, &r);
  if (e != NULL) {
    err_free(e);
    return;
  }
  if (r.rc == 0) snprintf(out, n, "%s", (const char *)r.out.data);
  else fprintf(stderr, "psql: %s\n", r.err.data);
  size_t l = strlen(out);
  while (l > 0 && out[l - 1] == '\n') out[--l] = '\0';
  th_result_free(&r);
}

static int suite_init(void) {
  const char *bin = getenv("MICA_BIN_DIR");
  if (bin == NULL) {
    fprintf(stderr, "MICA_BIN_DIR is not set\n");
    return 1;
  }
  snprintf(bench, sizeof bench, "%s/mica-bench", bin);
  snprintf(psql, sizeof psql, "%s/psql", PG_BIN);
  snprintf(tmp, sizeof tmp, "%s", tu_tmpdir());
  /* Run as root, the script starts PostgreSQL as "nobody", which must be
   * able to reach the directory (mkdtemp made it 0700). */
  if (chmod(tmp, 0711) != 0) {
    perror("chmod");
    return 1;
  }
  int port = 0;
  mica_err *e = th_free_port(&port);
  char port_s[16], log[1100];
  snprintf(port_s, sizeof port_s, "%d", port);
  snprintf(log, sizeof log, "%s/postgres.log", tmp);
  snprintf(uri, sizeof uri, "postgresql://mica@127.0.0.1:%d/postgres", port);
  const char *argv[] = {"bash", MICA_SOURCE_DIR "/bench/compare/postgres.sh", tmp, port_s,
                        NULL};
  th_spawn s = {.name = "postgres", .argv = argv, .out_path = log};
  if (e == NULL) e = th_proc_start(&s, &pg);
  if (e == NULL) e = th_proc_wait_line(pg, "ready to accept connections", 60000);
  if (e != NULL) {
    fprintf(stderr, "postgres: %s (log: %s)\n", err_msg(e), log);
    err_free(e);
    return 1;
  }
  return 0;
}

static int suite_clean(void) {
  /* SIGINT: PostgreSQL's fast shutdown (disconnects clients, checkpoints). */
  mica_err *e = th_proc_stop_clean(pg, SIGINT, 30000);
  th_proc_free(pg);
  pg = NULL;
  if (e != NULL) {
    fprintf(stderr, "postgres stop: %s\n", err_msg(e));
    err_free(e);
    return 1;
  }
  return 0;
}

static void check_accounted(const char *name) {
  long long issued = report(name, "d['ops_issued']");
  CU_ASSERT(issued > 0);
  CU_ASSERT_EQUAL(report(name, "d['ops_counted']"), issued);
  CU_ASSERT_EQUAL(report(name, "sum(v['count'] for v in o.values())"), issued);
  CU_ASSERT_EQUAL(report(name, "d['errors']"), 0);
  CU_ASSERT_EQUAL(report(name, "d['backend'] == 'postgres'"), 1);
}

static void test_load_and_run(void) {
  const char *load[] = {"load", "--postgres", uri, "--records", "1000", "--threads", "4",
                        NULL};
  CU_ASSERT_EQUAL_FATAL(bench_run("load", load, NULL), 0);
  check_accounted("load");
  CU_ASSERT_EQUAL(report("load", "o['insert']['count']"), 1000);
  char got[256];
  query("SELECT count(*), min(length(value)), max(length(value)), "
        "count(DISTINCT key) FROM usertable", got, sizeof got);
  CU_ASSERT_STRING_EQUAL(got, "1000|1000|1000|1000");
  /* The keys are bytea, compared bytewise: the same order as Mica's. */
  query("SELECT bool_and(k1 < k2) FROM (SELECT key AS k1, lead(key) OVER (ORDER BY key) AS k2 "
        "FROM usertable) s WHERE k2 IS NOT NULL", got, sizeof got);
  CU_ASSERT_STRING_EQUAL(got, "t");

  const char *a[] = {"run", "--postgres", uri, "--workload", "a", "--records", "1000",
                     "--ops", "2000", "--threads", "4", NULL};
  CU_ASSERT_EQUAL(bench_run("a", a, NULL), 0);
  check_accounted("a");
  CU_ASSERT(report("a", "o['read']['count']") > 700);
  CU_ASSERT(report("a", "o['update']['count']") > 700);
  /* Upserts replaced rows: still 1000 of them. */
  query("SELECT count(*) FROM usertable", got, sizeof got);
  CU_ASSERT_STRING_EQUAL(got, "1000");

  const char *e[] = {"run", "--postgres", uri, "--workload", "e", "--records", "1000",
                     "--ops", "600", "--threads", "4", "--max-scan", "20", NULL};
  CU_ASSERT_EQUAL(bench_run("e", e, NULL), 0);
  check_accounted("e");
  long long scans = report("e", "o['scan']['count']");
  long long inserts = report("e", "o['insert']['count']");
  CU_ASSERT(scans > 400 && inserts > 0);
  long long rows = report("e", "o['scan']['rows']");
  CU_ASSERT(rows >= scans && rows <= 20 * scans);
  char want[64];
  snprintf(want, sizeof want, "%lld", 1000 + inserts);
  query("SELECT count(*) FROM usertable", got, sizeof got);
  CU_ASSERT_STRING_EQUAL(got, want);
}

static void test_failures(void) {
  int port = 0;
  TU_OK(th_free_port(&port)); /* nothing listens there */
  char bad[128];
  snprintf(bad, sizeof bad, "postgresql://mica@127.0.0.1:%d/postgres", port);
  const char *down[] = {"run", "--postgres", bad, "--workload", "c", "--ops", "10", NULL};
  char *err = NULL;
  CU_ASSERT_EQUAL(bench_run("down", down, &err), 1);
  CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "postgres connect") : NULL);
  free(err);
  const char *both[] = {"run", "--postgres", uri, "--etcd", "127.0.0.1:1", NULL};
  err = NULL;
  CU_ASSERT_EQUAL(bench_run("both", both, &err), 2);
  CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "choose one backend") : NULL);
  free(err);
  const char *nobackend[] = {"run", "--backend", "postgres", NULL};
  err = NULL;
  CU_ASSERT_EQUAL(bench_run("nobackend", nobackend, &err), 2);
  CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "needs --postgres") : NULL);
  free(err);
}

static const CU_TestInfo tests[] = {
    {"load_and_run", test_load_and_run},
    {"failures", test_failures},
    CU_TEST_INFO_NULL};

static void add_suites(void) {
  CU_SuiteInfo suites[] = {
      {"bench_postgres", suite_init, suite_clean, NULL, NULL, (CU_TestInfo *)tests},
      CU_SUITE_INFO_NULL};
  CU_register_suites(suites);
}

int main(int argc, char **argv) {
  if (access(PG_BIN "/postgres", X_OK) != 0 || access(PG_BIN "/initdb", X_OK) != 0 ||
      access(PG_BIN "/psql", X_OK) != 0) {
    printf("PostgreSQL 15 is not installed (%s/postgres, initdb, psql; Debian's "
           "postgresql-15): skipped\n", PG_BIN);
    return 77;
  }
  return tu_main(argc, argv, add_suites);
}
