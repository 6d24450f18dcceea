/* test_cli: the `mica` command line as a user runs it, against a real
 * cluster: every command, the three output formats (JSON checked to be
 * valid for every byte value by python3's json module when available, and
 * by exact comparison always), escapes in and out, load with its line
 * errors, exit codes (0 success, 1 failure with one line on stderr, 2 usage
 * with the usage on stderr), --help for every command, MICA_MASTER, and an
 * unreachable master named in one line. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/slice.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;
static char g_mica[4096];

static const char *const g_master_args[] = {"--merge", "off", "--balancer", "off", NULL};

static int suite_init(void) {
  const char *bin = getenv("MICA_BIN_DIR");
  snprintf(g_mica, sizeof g_mica, "%s/mica", bin ? bin : ".");
  cl_options o;
  cl_options_init(&o);
  o.master_args = g_master_args;
  mica_err *err = cl_start(&o, &g_c);
  if (err) {
    fprintf(stderr, "cluster start: %s\n", err_msg(err));
    err_free(err);
    return 1;
  }
  return 0;
}

static int suite_clean(void) {
  cl_free(g_c);
  g_c = NULL;
  return 0;
}

typedef struct result {
  int rc;
  buf out, err;
} result;

static void result_free(result *r) {
  buf_free(&r->out);
  buf_free(&r->err);
}

static void slurp(int fd, buf *b) {
  char tmp[4096];
  ssize_t n;
  while ((n = read(fd, tmp, sizeof tmp)) > 0) buf_append(b, tmp, (size_t)n);
  buf_push(b, 0);
  b->len--;
}

/* Runs mica with `args` (NULL-terminated; `master` NULL = the cluster's via
 * --master, "" = none given), feeding `in` on stdin. */
static result run_env(const char *master, const char *in, const char *const *args) {
  result r;
  memset(&r, 0, sizeof r);
  char tmpl_out[4096], tmpl_err[4096];
  int fo = tu_mkstemp("cli-out", tmpl_out, sizeof tmpl_out);
  int fe = tu_mkstemp("cli-err", tmpl_err, sizeof tmpl_err);
  int pin[2];
  CU_ASSERT_FATAL(fo >= 0 && fe >= 0 && pipe(pin) == 0);
  const char *argv[64];
  int n = 0;
  argv[n++] = g_mica;
  if (master == NULL) {
    argv[n++] = "--master";
    argv[n++] = cl_master_address(g_c);
  } else if (master[0] != '\0') {
    argv[n++] = "--master";
    argv[n++] = master;
  }
  for (int i = 0; args[i] && n < 62; i++) argv[n++] = args[i];
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pin[0], 0);
    dup2(fo, 1);
    dup2(fe, 2);
    close(pin[1]);
    execv(g_mica, (char *const *)argv);
    _exit(127);
  }
  close(pin[0]);
  if (in != NULL && write(pin[1], in, strlen(in)) < 0) CU_FAIL("write stdin");
  close(pin[1]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  lseek(fo, 0, SEEK_SET);
  lseek(fe, 0, SEEK_SET);
  slurp(fo, &r.out);
  slurp(fe, &r.err);
  close(fo);
  close(fe);
  unlink(tmpl_out);
  unlink(tmpl_err);
  return r;
}

#define RUN(...) run_env(NULL, NULL, (const char *const[]){__VA_ARGS__, NULL})

static const char *out_of(const result *r) { return r->out.data ? (char *)r->out.data : ""; }
static const char *err_of(const result *r) { return r->err.data ? (char *)r->err.data : ""; }

/* Asserts exit status `rc` and, if `out` is not NULL, stdout equal to it. */
static void expect(result r, int rc, const char *out) {
  if (r.rc != rc || (out != NULL && strcmp(out_of(&r), out) != 0))
    fprintf(stderr, "\nexit %d (want %d)\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\n", r.rc, rc,
            out_of(&r), out ? out : "(any)", err_of(&r));
  CU_ASSERT_EQUAL(r.rc, rc);
  if (out != NULL) CU_ASSERT_STRING_EQUAL(out_of(&r), out);
  result_free(&r);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* ---- usage and help ---- */

static void test_usage(void) {
  result r = run_env("", NULL, (const char *const[]){"--help", NULL});
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "usage: mica"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "Example:"));
  result_free(&r);

  static const char *const cmds[] = {"scan", "get", "put", "del", "load", "create", "drop",
                                     "tables", "tablets", "servers", "split", "move",
                                     "balance", "help"};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    /* --help needs no master: point at one that does not exist. */
    r = run_env("127.0.0.1:1", NULL, (const char *const[]){cmds[i], "--help", NULL});
    CU_ASSERT_EQUAL(r.rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "usage: mica "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "Example:"));
    CU_ASSERT_EQUAL(r.err.len, 0);
    result_free(&r);
  }

  /* Usage errors: exit 2, usage on stderr, nothing on stdout. */
  const char *const *bad[] = {
      (const char *const[]){"frobnicate", NULL},
      (const char *const[]){"--bogus", "tables", NULL},
      (const char *const[]){"scan", "t", "--bogus", NULL},
      (const char *const[]){"scan", NULL},
      (const char *const[]){"scan", "t", "--limit", "x", NULL},
      (const char *const[]){"scan", "t", "--format", "xml", NULL},
      (const char *const[]){"scan", "t", "--limit", NULL},
      (const char *const[]){"get", "t", NULL},
      (const char *const[]){"put", "t", "k", NULL},
      (const char *const[]){"put", "t", "k\\x4", "v", NULL},
      (const char *const[]){"del", "t", "a", "b", NULL},
      (const char *const[]){"split", "abc", NULL},
      (const char *const[]){"move", "1", "nowhere", NULL},
      (const char *const[]){"create", "t", "--splits", "a,\\q", NULL},
      (const char *const[]){"tables", "extra", NULL},
      (const char *const[]){"--deadline", "0", "tables", NULL},
      (const char *const[]){NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = run_env("127.0.0.1:1", NULL, bad[i]);
    if (r.rc != 2) fprintf(stderr, "\ncase %zu: exit %d: %s\n", i, r.rc, err_of(&r));
    CU_ASSERT_EQUAL(r.rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "usage: mica"));
    CU_ASSERT_EQUAL(r.out.len, 0);
    result_free(&r);
  }
}

static void test_master_unreachable(void) {
  result r = run_env("127.0.0.1:1", NULL,
                     (const char *const[]){"--deadline", "800", "tables", NULL});
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_EQUAL(count_lines(err_of(&r)), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "master 127.0.0.1:1 unreachable"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "refused"));
  CU_ASSERT_EQUAL(r.out.len, 0);
  result_free(&r);
  /* MICA_MASTER is used when --master is absent. */
  setenv("MICA_MASTER", "127.0.0.1:1", 1);
  r = run_env("", NULL, (const char *const[]){"--deadline", "500", "get", "t", "k", NULL});
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "127.0.0.1:1"));
  result_free(&r);
  setenv("MICA_MASTER", cl_master_address(g_c), 1);
  r = run_env("", NULL, (const char *const[]){"tables", NULL});
  CU_ASSERT_EQUAL(r.rc, 0);
  result_free(&r);
  unsetenv("MICA_MASTER");
}

/* ---- data commands ---- */

static void test_put_get_del_scan(void) {
  expect(RUN("create", "cli", "--splits", "b,d\\x2cx"), 0, "created table cli with 3 tablets\n");
  result r = RUN("create", "cli");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "ALREADY_EXISTS"));
  CU_ASSERT_EQUAL(count_lines(err_of(&r)), 1);
  result_free(&r);

  expect(RUN("put", "cli", "a1", "one"), 0, "");
  expect(RUN("put", "cli", "c\\x00z", "tab\\there"), 0, "");
  expect(RUN("put", "cli", "e\\\\", "\\xff\\xfe"), 0, "");
  expect(RUN("put", "cli", "e2", ""), 0, "");
  expect(RUN("get", "cli", "a1"), 0, "one\n");
  expect(RUN("get", "cli", "c\\x00z"), 0, "tab\\x09here\n");
  expect(RUN("get", "cli", "c\\x00z", "--format", "tsv"), 0, "c\\x00z\ttab\\x09here\n");
  expect(RUN("get", "cli", "e\\\\", "--format", "json"), 0,
         "{\"key\": \"e\\\\\", \"value\": \"\\u00ff\\u00fe\"}\n");
  expect(RUN("get", "cli", "e\\\\", "--format", "raw"), 0, "\xff\xfe");

  r = RUN("get", "cli", "missing");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_EQUAL(count_lines(err_of(&r)), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "not found"));
  CU_ASSERT_EQUAL(r.out.len, 0);
  result_free(&r);
  r = RUN("get", "nosuch", "k");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "nosuch"));
  result_free(&r);

  expect(RUN("scan", "cli"), 0,
         "a1 => one\nc\\x00z => tab\\x09here\ne2 => \ne\\x5c => \\xff\\xfe\n");
  expect(RUN("scan", "cli", "--reverse", "--keys-only"), 0, "e\\x5c\ne2\nc\\x00z\na1\n");
  expect(RUN("scan", "cli", "--format", "tsv", "--start", "b", "--end", "e3"), 0,
         "c\\x00z\ttab\\x09here\ne2\t\n");
  expect(RUN("scan", "cli", "--prefix", "e", "--limit", "1"), 0, "e2 => \n");
  expect(RUN("scan", "cli", "--format", "json", "--limit", "2"), 0,
         "[\n  {\"key\": \"a1\", \"value\": \"one\"},\n"
         "  {\"key\": \"c\\u0000z\", \"value\": \"tab\\there\"}\n]\n");
  expect(RUN("scan", "cli", "--prefix", "zz", "--format", "json"), 0, "[]\n");
  r = RUN("scan", "nosuch");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_EQUAL(count_lines(err_of(&r)), 1);
  result_free(&r);
  r = RUN("scan", "cli", "--start", "z", "--end", "a");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "INVALID_ARGUMENT"));
  result_free(&r);

  expect(RUN("del", "cli", "a1"), 0, "");
  expect(RUN("del", "cli", "a1"), 0, "");
  r = RUN("get", "cli", "a1");
  CU_ASSERT_EQUAL(r.rc, 1);
  result_free(&r);
}

/* Every byte value in keys and values survives the round trip, and the
 * JSON output parses. */
static void test_all_bytes(void) {
  expect(RUN("create", "bytes"), 0, NULL);
  buf in = BUF_INIT;
  char line[64];
  for (int b = 0; b < 256; b++) {
    snprintf(line, sizeof line, "k\\x%02x\tv\\x%02x\\x%02x\n", b, b, 255 - b);
    buf_append(&in, line, strlen(line));
  }
  buf_push(&in, 0);
  result r = run_env(NULL, (char *)in.data, (const char *const[]){"load", "bytes", "-", NULL});
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "loaded 256 rows"));
  result_free(&r);

  /* tsv output is exactly the escaped input (in key order = byte order),
   * except that printable bytes come out as themselves. */
  r = RUN("scan", "bytes", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(out_of(&r)), 256);
  buf want = BUF_INIT;
  for (int b = 0; b < 256; b++) {
    uint8_t k[2] = {'k', (uint8_t)b}, v[3] = {'v', (uint8_t)b, (uint8_t)(255 - b)};
    slice_escape(slice_make(k, 2), &want);
    buf_push(&want, '\t');
    slice_escape(slice_make(v, 3), &want);
    buf_push(&want, '\n');
  }
  buf_push(&want, 0);
  CU_ASSERT_STRING_EQUAL(out_of(&r), (char *)want.data);
  result_free(&r);
  buf_free(&want);

  r = RUN("scan", "bytes", "--format", "json");
  CU_ASSERT_EQUAL(r.rc, 0);
  if (system("python3 -c 'import json' >/dev/null 2>&1") == 0) {
    char path[4096];
    int fd = tu_mkstemp("cli-json", path, sizeof path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, r.out.data, r.out.len) == (ssize_t)r.out.len);
    close(fd);
    char cmd[8192];
    /* Each code point stands for one byte: rebuild and check them all. */
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import json,sys; rows=json.load(open('%s')); "
             "assert len(rows)==256; "
             "assert all(r['key']==chr(107)+chr(i) and r['value']==chr(118)+chr(i)+chr(255-i) "
             "for i,r in enumerate(rows))\"",
             path);
    CU_ASSERT_EQUAL(system(cmd), 0);
    unlink(path);
  }
  result_free(&r);
  buf_free(&in);
}

static void test_load(void) {
  expect(RUN("create", "ld", "--splits", "k0300,k0600"), 0, NULL);
  char path[4096];
  int fd = tu_mkstemp("cli-load", path, sizeof path);
  CU_ASSERT_FATAL(fd >= 0);
  FILE *f = fdopen(fd, "w");
  for (int i = 0; i < 1000; i++) fprintf(f, "k%04d\tvalue %d\r\n%s", i, i, i % 100 ? "" : "\n");
  fclose(f);
  result r = RUN("load", "ld", path, "--batch", "64");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "loaded 1000 rows"));
  result_free(&r);
  expect(RUN("get", "ld", "k0999"), 0, "value 999\n");
  r = RUN("scan", "ld", "--keys-only");
  CU_ASSERT_EQUAL(count_lines(out_of(&r)), 1000);
  result_free(&r);

  /* A bad line stops the load with its line number. */
  f = fopen(path, "w");
  fprintf(f, "x1\tv\nno tab here\nx2\tv\n");
  fclose(f);
  r = RUN("load", "ld", path);
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), ":2: no tab"));
  result_free(&r);
  f = fopen(path, "w");
  fprintf(f, "\\xZZ\tv\n");
  fclose(f);
  r = RUN("load", "ld", path);
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), ":1: "));
  result_free(&r);
  unlink(path);
  r = RUN("load", "ld", "/nonexistent/file");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "cannot open"));
  result_free(&r);
  r = RUN("load", "nosuch", "-");
  CU_ASSERT_EQUAL(r.rc, 0); /* empty input: nothing to write */
  result_free(&r);
  r = run_env(NULL, "a\tb\n", (const char *const[]){"load", "nosuch", "-", NULL});
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "NOT_FOUND"));
  result_free(&r);
}

/* ---- admin commands ---- */

static void test_admin(void) {
  expect(RUN("create", "adm", "--splits", "m"), 0, NULL);
  result r = RUN("tables");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "TABLE"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "adm "));
  result_free(&r);
  r = RUN("tables", "--format", "json");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "{\"name\": \"adm\""));
  result_free(&r);

  /* tablets in tsv: id, table, start, end, state, server id, address, ... */
  r = RUN("tablets", "adm", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(out_of(&r)), 2);
  unsigned long long id = 0;
  CU_ASSERT_EQUAL(sscanf(out_of(&r), "%llu\tadm\t\tm\t", &id), 1);
  result_free(&r);
  r = RUN("tablets", "nosuch");
  CU_ASSERT_EQUAL(r.rc, 1);
  result_free(&r);
  r = RUN("tablets", "--format", "json");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "\"table\": \"adm\", \"start\": \"\", \"end\": \"m\""));
  result_free(&r);

  char ids[32], key[8] = "f";
  snprintf(ids, sizeof ids, "%llu", id);
  r = RUN("split", ids, key);
  CU_ASSERT_EQUAL(r.rc, 0);
  unsigned long long l = 0, rr = 0;
  CU_ASSERT_EQUAL(sscanf(out_of(&r), "split tablet %*u into %llu and %llu", &l, &rr), 2);
  result_free(&r);
  r = RUN("split", ids, "g");
  CU_ASSERT_EQUAL(r.rc, 1); /* the parent is gone */
  result_free(&r);
  r = RUN("split", "999999");
  CU_ASSERT_EQUAL(r.rc, 1);
  result_free(&r);

  snprintf(ids, sizeof ids, "%llu", rr);
  /* The right daughter's server, from the tsv listing. */
  r = RUN("tablets", "adm", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  unsigned long long cur = 0;
  for (const char *p = out_of(&r); p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    unsigned long long tid = 0, srv = 0;
    if (sscanf(p, "%llu\t%*[^\t]\t%*[^\t]\t%*[^\t]\t%*[^\t]\t%llu", &tid, &srv) == 2 &&
        tid == rr)
      cur = srv;
  }
  CU_ASSERT(cur != 0);
  result_free(&r);

  r = RUN("servers", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(out_of(&r)), 3);
  char addr[64] = "";
  for (const char *p = out_of(&r); p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    unsigned long long sid = 0;
    char a[64];
    if (sscanf(p, "%llu\t%63[^\t]\tlive", &sid, a) == 2 && sid != cur) snprintf(addr, sizeof addr, "%s", a);
  }
  CU_ASSERT(addr[0] != '\0');
  result_free(&r);
  r = RUN("servers");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(out_of(&r)), 4);
  result_free(&r);
  r = RUN("servers", "--all", "--format", "json");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "\"state\": \"live\""));
  result_free(&r);

  /* move by server address, then to any other server */
  r = RUN("move", ids, addr);
  if (r.rc != 0) fprintf(stderr, "\nmove %s %s: %s", ids, addr, err_of(&r));
  CU_ASSERT_EQUAL(r.rc, 0);
  result_free(&r);
  r = RUN("move", ids, "0");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_of(&r), "moved tablet"));
  result_free(&r);
  r = RUN("move", ids, "127.0.0.1:1");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "no live server"));
  result_free(&r);

  r = RUN("balance", "--dry-run");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT(strstr(out_of(&r), "would move") != NULL ||
            strstr(out_of(&r), "no moves planned") != NULL);
  result_free(&r);
  r = RUN("balance");
  CU_ASSERT_EQUAL(r.rc, 0);
  result_free(&r);

  expect(RUN("drop", "adm"), 0, "dropped table adm\n");
  r = RUN("drop", "adm");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_of(&r), "NOT_FOUND"));
  result_free(&r);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"usage", test_usage},
      {"master_unreachable", test_master_unreachable},
      {"put_get_del_scan", test_put_get_del_scan},
      {"all_bytes", test_all_bytes},
      {"load", test_load},
      {"admin", test_admin},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("cli", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName; t++) CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
