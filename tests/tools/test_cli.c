/* test_cli: the `mica` command line as a user runs it, against a real
 * cluster: every command, the three output formats (JSON checked to be
 * valid for every byte value by python3's json module when available, and
 * by exact comparison always), escapes in and out, load with its line
 * errors, exit codes (0 success, 1 failure with one line on stderr, 2 usage
 * with the usage on stderr), --help for every command, MICA_MASTER, an
 * unreachable master named in one line, and output whose reader stops early
 * (`mica scan t | head -1`: exit 0, nothing on stderr) or that cannot be
 * written (/dev/full: exit 1 naming the error). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/slice.h"
#include "tests/harness/cluster.h"
#include "tests/harness/node.h"
#include "tests/harness/testutil.h"

static cluster *g_c;

static const char *const g_master_args[] = {"--merge", "off", "--balancer", "off", NULL};

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.master_args = g_master_args;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

/* Runs mica with `args` (NULL-terminated; `master` NULL = the cluster's via
 * --master, "" = none given), feeding `in` on stdin. */
static th_result run_env(const char *master, const char *in, const char *const *args) {
  if (master == NULL) master = cl_master_address(g_c);
  th_result r;
  TU_OK(th_mica_cli(master[0] != '\0' ? master : NULL, in, args, 0, &r));
  return r;
}

#define RUN(...) run_env(NULL, NULL, (const char *const[]){__VA_ARGS__, NULL})

/* Asserts exit status `rc` and, if `out` is not NULL, stdout equal to it. */
static void expect(th_result r, int rc, const char *out) {
  if (r.rc != rc || (out != NULL && strcmp(th_out(&r), out) != 0))
    fprintf(stderr, "\nexit %d (want %d)\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\n", r.rc, rc,
            th_out(&r), out ? out : "(any)", th_err(&r));
  CU_ASSERT_EQUAL(r.rc, rc);
  if (out != NULL) CU_ASSERT_STRING_EQUAL(th_out(&r), out);
  th_result_free(&r);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* ---- usage and help ---- */

static void test_usage(void) {
  th_result r = run_env("", NULL, (const char *const[]){"--help", NULL});
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "usage: mica"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "Example:"));
  th_result_free(&r);

  static const char *const cmds[] = {"scan", "get", "put", "del", "load", "create", "drop",
                                     "tables", "tablets", "servers", "split", "move",
                                     "balance", "help", "alter", "describe",
                                     "snapshot", "snapshots", "clone", "restore"};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    /* --help needs no master: point at one that does not exist. */
    r = run_env("127.0.0.1:1", NULL, (const char *const[]){cmds[i], "--help", NULL});
    CU_ASSERT_EQUAL(r.rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "usage: mica "));
    CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "Example:"));
    CU_ASSERT_EQUAL(r.err.len, 0);
    th_result_free(&r);
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
      (const char *const[]){"snapshot", "t", NULL},
      (const char *const[]){"snapshot", "drop", NULL},
      (const char *const[]){"snapshot", "--export", "s", NULL},
      (const char *const[]){"snapshots", "--format", "xml", NULL},
      (const char *const[]){"clone", "s", NULL},
      (const char *const[]){"restore", "dir", NULL},
      (const char *const[]){NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = run_env("127.0.0.1:1", NULL, bad[i]);
    if (r.rc != 2) fprintf(stderr, "\ncase %zu: exit %d: %s\n", i, r.rc, th_err(&r));
    CU_ASSERT_EQUAL(r.rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "usage: mica"));
    CU_ASSERT_EQUAL(r.out.len, 0);
    th_result_free(&r);
  }
}

static void test_master_unreachable(void) {
  th_result r = run_env("127.0.0.1:1", NULL,
                     (const char *const[]){"--deadline", "800", "tables", NULL});
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_EQUAL(count_lines(th_err(&r)), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "master 127.0.0.1:1 unreachable"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "refused"));
  CU_ASSERT_EQUAL(r.out.len, 0);
  th_result_free(&r);
  /* MICA_MASTER is used when --master is absent. */
  setenv("MICA_MASTER", "127.0.0.1:1", 1);
  r = run_env("", NULL, (const char *const[]){"--deadline", "500", "get", "t", "k", NULL});
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "127.0.0.1:1"));
  th_result_free(&r);
  setenv("MICA_MASTER", cl_master_address(g_c), 1);
  r = run_env("", NULL, (const char *const[]){"tables", NULL});
  CU_ASSERT_EQUAL(r.rc, 0);
  th_result_free(&r);
  unsetenv("MICA_MASTER");
}

/* ---- data commands ---- */

static void test_put_get_del_scan(void) {
  expect(RUN("create", "cli", "--splits", "b,d\\x2cx"), 0, "created table cli with 3 tablets\n");
  th_result r = RUN("create", "cli");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "ALREADY_EXISTS"));
  CU_ASSERT_EQUAL(count_lines(th_err(&r)), 1);
  th_result_free(&r);

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
  CU_ASSERT_EQUAL(count_lines(th_err(&r)), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "not found"));
  CU_ASSERT_EQUAL(r.out.len, 0);
  th_result_free(&r);
  r = RUN("get", "nosuch", "k");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "nosuch"));
  th_result_free(&r);

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
  CU_ASSERT_EQUAL(count_lines(th_err(&r)), 1);
  th_result_free(&r);
  r = RUN("scan", "cli", "--start", "z", "--end", "a");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "INVALID_ARGUMENT"));
  th_result_free(&r);

  expect(RUN("del", "cli", "a1"), 0, "");
  expect(RUN("del", "cli", "a1"), 0, "");
  r = RUN("get", "cli", "a1");
  CU_ASSERT_EQUAL(r.rc, 1);
  th_result_free(&r);
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
  th_result r = run_env(NULL, (char *)in.data, (const char *const[]){"load", "bytes", "-", NULL});
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "loaded 256 rows"));
  th_result_free(&r);

  /* tsv output is exactly the escaped input (in key order = byte order),
   * except that printable bytes come out as themselves. */
  r = RUN("scan", "bytes", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(th_out(&r)), 256);
  buf want = BUF_INIT;
  for (int b = 0; b < 256; b++) {
    uint8_t k[2] = {'k', (uint8_t)b}, v[3] = {'v', (uint8_t)b, (uint8_t)(255 - b)};
    slice_escape(slice_make(k, 2), &want);
    buf_push(&want, '\t');
    slice_escape(slice_make(v, 3), &want);
    buf_push(&want, '\n');
  }
  buf_push(&want, 0);
  CU_ASSERT_STRING_EQUAL(th_out(&r), (char *)want.data);
  th_result_free(&r);
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
  th_result_free(&r);
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
  th_result r = RUN("load", "ld", path, "--batch", "64");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "loaded 1000 rows"));
  th_result_free(&r);
  expect(RUN("get", "ld", "k0999"), 0, "value 999\n");
  r = RUN("scan", "ld", "--keys-only");
  CU_ASSERT_EQUAL(count_lines(th_out(&r)), 1000);
  th_result_free(&r);

  /* A bad line stops the load with its line number. */
  f = fopen(path, "w");
  fprintf(f, "x1\tv\nno tab here\nx2\tv\n");
  fclose(f);
  r = RUN("load", "ld", path);
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), ":2: no tab"));
  th_result_free(&r);
  f = fopen(path, "w");
  fprintf(f, "\\xZZ\tv\n");
  fclose(f);
  r = RUN("load", "ld", path);
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), ":1: "));
  th_result_free(&r);
  unlink(path);
  r = RUN("load", "ld", "/nonexistent/file");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "cannot open"));
  th_result_free(&r);
  r = RUN("load", "nosuch", "-");
  CU_ASSERT_EQUAL(r.rc, 0); /* empty input: nothing to write */
  th_result_free(&r);
  r = run_env(NULL, "a\tb\n", (const char *const[]){"load", "nosuch", "-", NULL});
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "NOT_FOUND"));
  th_result_free(&r);
}

/* ---- admin commands ---- */

static void test_admin(void) {
  expect(RUN("create", "adm", "--splits", "m"), 0, NULL);
  th_result r = RUN("tables");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "TABLE"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "adm "));
  th_result_free(&r);
  r = RUN("tables", "--format", "json");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "{\"name\": \"adm\""));
  th_result_free(&r);

  /* tablets in tsv: id, table, start, end, state, server id, address, ... */
  r = RUN("tablets", "adm", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(th_out(&r)), 2);
  unsigned long long id = 0;
  CU_ASSERT_EQUAL(sscanf(th_out(&r), "%llu\tadm\t\tm\t", &id), 1);
  th_result_free(&r);
  r = RUN("tablets", "nosuch");
  CU_ASSERT_EQUAL(r.rc, 1);
  th_result_free(&r);
  r = RUN("tablets", "--format", "json");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "\"table\": \"adm\", \"start\": \"\", \"end\": \"m\""));
  th_result_free(&r);

  char ids[32], key[8] = "f";
  snprintf(ids, sizeof ids, "%llu", id);
  r = RUN("split", ids, key);
  CU_ASSERT_EQUAL(r.rc, 0);
  unsigned long long l = 0, rr = 0;
  CU_ASSERT_EQUAL(sscanf(th_out(&r), "split tablet %*u into %llu and %llu", &l, &rr), 2);
  th_result_free(&r);
  r = RUN("split", ids, "g");
  CU_ASSERT_EQUAL(r.rc, 1); /* the parent is gone */
  th_result_free(&r);
  r = RUN("split", "999999");
  CU_ASSERT_EQUAL(r.rc, 1);
  th_result_free(&r);

  snprintf(ids, sizeof ids, "%llu", rr);
  /* The right daughter's server, from the tsv listing. */
  r = RUN("tablets", "adm", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  unsigned long long cur = 0;
  for (const char *p = th_out(&r); p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    unsigned long long tid = 0, srv = 0;
    if (sscanf(p, "%llu\t%*[^\t]\t%*[^\t]\t%*[^\t]\t%*[^\t]\t%llu", &tid, &srv) == 2 &&
        tid == rr)
      cur = srv;
  }
  CU_ASSERT(cur != 0);
  th_result_free(&r);

  r = RUN("servers", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(th_out(&r)), 3);
  char addr[64] = "";
  for (const char *p = th_out(&r); p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    unsigned long long sid = 0;
    char a[64];
    if (sscanf(p, "%llu\t%63[^\t]\tlive", &sid, a) == 2 && sid != cur) snprintf(addr, sizeof addr, "%s", a);
  }
  CU_ASSERT(addr[0] != '\0');
  th_result_free(&r);
  r = RUN("servers");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_EQUAL(count_lines(th_out(&r)), 4);
  th_result_free(&r);
  r = RUN("servers", "--all", "--format", "json");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "\"state\": \"live\""));
  th_result_free(&r);

  /* move by server address, then to any other server */
  r = RUN("move", ids, addr);
  if (r.rc != 0) fprintf(stderr, "\nmove %s %s: %s", ids, addr, th_err(&r));
  CU_ASSERT_EQUAL(r.rc, 0);
  th_result_free(&r);
  r = RUN("move", ids, "0");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "moved tablet"));
  th_result_free(&r);
  r = RUN("move", ids, "127.0.0.1:1");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "no live server"));
  th_result_free(&r);

  r = RUN("balance", "--dry-run");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT(strstr(th_out(&r), "would move") != NULL ||
            strstr(th_out(&r), "no moves planned") != NULL);
  th_result_free(&r);
  r = RUN("balance");
  CU_ASSERT_EQUAL(r.rc, 0);
  th_result_free(&r);

  expect(RUN("drop", "adm"), 0, "dropped table adm\n");
  r = RUN("drop", "adm");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "NOT_FOUND"));
  th_result_free(&r);
}

/* ---- a reader that stops early ---- */

/* Runs mica (the cluster's master) with `args`, stdout on `out` and stderr
 * into *err. `out` is closed in the test before it returns. The pipe's
 * reader, if any, runs in `reader` (may be NULL) between the start and the
 * wait, as a shell runs both sides of `mica ... | head`; pipes are made
 * close-on-exec so that mica holds no read end of its own. SIGPIPE is reset
 * to its default in the child, so that mica must ignore it by itself. */
static int run_out(const char *const *args, int out, void (*reader)(void *), void *arg,
                   buf *err) {
  char tmpl_err[4096];
  int fe = tu_mkstemp("cli-err", tmpl_err, sizeof tmpl_err);
  CU_ASSERT_FATAL(fe >= 0);
  char mica[4096];
  TU_OK(th_bin("mica", mica, sizeof mica));
  const char *argv[64];
  int n = 0;
  argv[n++] = mica;
  argv[n++] = "--master";
  argv[n++] = cl_master_address(g_c);
  for (int i = 0; args[i] && n < 62; i++) argv[n++] = args[i];
  argv[n] = NULL;
  th_proc *p = NULL;
  TU_OK(th_proc_start(&(th_spawn){.name = "mica", .argv = argv, .out_fd = out,
                                  .err_path = tmpl_err},
                      &p));
  close(out);
  if (reader != NULL) reader(arg);
  int st = 0;
  TU_OK(th_proc_wait_exit(p, 60000, &st));
  th_proc_free(p);
  buf_clear(err);
  uint8_t chunk[4096];
  ssize_t got;
  lseek(fe, 0, SEEK_SET);
  while ((got = read(fe, chunk, sizeof chunk)) > 0) buf_append(err, chunk, (size_t)got);
  close(fe);
  unlink(tmpl_err);
  return th_exit_code(st);
}

typedef struct head_reader {
  int fd;    /* the pipe's read end */
  buf first; /* what was read: one line */
} head_reader;

/* `head -1`: reads up to the first newline, then closes the pipe. */
static void read_one_line(void *arg) {
  head_reader *h = arg;
  uint8_t c;
  while (read(h->fd, &c, 1) == 1) {
    buf_push(&h->first, c);
    if (c == '\n') break;
  }
  close(h->fd);
}

static void test_closed_stdout(void) {
  /* 4000 rows of ~110 bytes: far more than a pipe buffer (64 KiB) holds,
   * so the scan must meet the closed pipe while it still has rows. */
  expect(RUN("create", "pipe"), 0, NULL);
  buf in = BUF_INIT;
  for (int i = 0; i < 4000; i++) {
    char line[160];
    int len = snprintf(line, sizeof line, "row%05d\t%0100d\n", i, i);
    buf_append(&in, line, (size_t)len);
  }
  buf_push(&in, 0);
  th_result r = run_env(NULL, (const char *)in.data, (const char *const[]){"load", "pipe", "-", NULL});
  CU_ASSERT_EQUAL(r.rc, 0);
  th_result_free(&r);
  buf_free(&in);

  buf err = BUF_INIT;
  int p[2];
  CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
  head_reader h = {p[0], BUF_INIT};
  int rc = run_out((const char *const[]){"scan", "pipe", NULL}, p[1], read_one_line, &h, &err);
  buf_push(&h.first, 0);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(err.len, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)h.first.data, "row00000 => 0000"));
  buf_free(&h.first);

  /* A pipe whose reader is gone before the first write, for a listing, a
   * single value and the help text. */
  static const char *const cmds[][5] = {{"scan", "pipe", "--format", "json", NULL},
                                        {"tablets", "pipe", NULL},
                                        {"get", "pipe", "row00001", NULL},
                                        {"--help", NULL}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
    close(p[0]);
    rc = run_out(cmds[i], p[1], NULL, NULL, &err);
    if (rc != 0 || err.len != 0)
      fprintf(stderr, "\n%s: exit %d, stderr: %.*s\n", cmds[i][0], rc, (int)err.len,
              (char *)err.data);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(err.len, 0);
  }

  /* A write error that is not a closed reader is a failure, and says so. */
  int full = open("/dev/full", O_WRONLY);
  if (full >= 0) {
    rc = run_out((const char *const[]){"scan", "pipe", NULL}, full, NULL, NULL, &err);
    buf_push(&err, 0);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)err.data, "writing output: No space left on device"));
  }
  buf_free(&err);
  expect(RUN("drop", "pipe"), 0, NULL);
}

/* ---- table options and salted tables (docs/table-options.md) ---- */

static void test_table_options(void) {
  expect(RUN("create", "salty", "--salt", "4", "--compression", "zstd", "--block-size",
             "8K", "--bloom-bits", "6"),
         0, "created table salty with 4 tablets\n");
  expect(RUN("create", "salty2", "--salt", "3", "--splits", "m"), 0,
         "created table salty2 with 6 tablets\n");
  for (int i = 0; i < 6; i++) {
    char k[8];
    snprintf(k, sizeof k, "k%d", i);
    expect(RUN("put", "salty", k, "v"), 0, NULL);
  }
  /* Keys come back as written, in order, whatever bucket holds them. */
  expect(RUN("scan", "salty"), 0,
         "k0 => v\nk1 => v\nk2 => v\nk3 => v\nk4 => v\nk5 => v\n");
  expect(RUN("scan", "salty", "--reverse", "--limit", "2", "--start", "k1"), 0,
         "k5 => v\nk4 => v\n");
  expect(RUN("get", "salty", "k3"), 0, "v\n");
  /* Tablets: text shows bucket and key, tsv the stored key. */
  th_result t = RUN("tablets", "salty2");
  CU_ASSERT_EQUAL(t.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&t), "[1] m"));
  th_result_free(&t);
  t = RUN("tablets", "salty2", "--format", "tsv");
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&t), "\tsalty2\t\\x01m\t"));
  th_result_free(&t);
  th_result r = RUN("describe", "salty");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "compression:      zstd"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "block_size:       8192 bytes"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "bloom_bits:       6"));
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "salt_buckets:     4"));
  th_result_free(&r);
  expect(RUN("alter", "salty", "--compression", "default", "--split-threshold", "64M"), 0,
         "altered table salty\n");
  r = RUN("describe", "salty", "--format", "json");
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "\"options\": {\"compression\": \"default\", "
                                            "\"split_threshold_bytes\": 67108864, "
                                            "\"block_size\": 8192, \"bloom_bits\": 6, "
                                            "\"salt_buckets\": 4}}"));
  th_result_free(&r);
  /* Bad values: usage errors (2) for what does not parse, the master's
   * refusal (1) naming the option for what is out of range. */
  expect(RUN("create", "x", "--compression", "gzip"), 2, "");
  expect(RUN("create", "x", "--salt", "many"), 2, "");
  expect(RUN("alter", "salty"), 2, "");
  expect(RUN("alter", "salty", "--salt", "3"), 2, "");
  r = RUN("create", "x", "--salt", "1");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "salt_buckets"));
  th_result_free(&r);
  r = RUN("alter", "salty", "--block-size", "100");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "block_size"));
  th_result_free(&r);
  r = RUN("describe", "nosuch");
  CU_ASSERT_EQUAL(r.rc, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), "nosuch"));
  th_result_free(&r);
}

/* ---- snapshots, clones, export, restore ---- */

static void test_snapshots(void) {
  expect(RUN("create", "snapsrc", "--splits", "m"), 0,
         "created table snapsrc with 2 tablets\n");
  expect(RUN("put", "snapsrc", "a", "1"), 0, NULL);
  expect(RUN("put", "snapsrc", "z", "2"), 0, NULL);
  th_result r = RUN("snapshot", "snapsrc", "snap1");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "snapshot snap1 of table snapsrc: 2 tablets"));
  th_result_free(&r);
  expect(RUN("put", "snapsrc", "a", "changed"), 0, NULL);
  r = RUN("snapshots", "--format", "tsv");
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "snap1\tsnapsrc\tready\t2\t"));
  th_result_free(&r);
  r = RUN("snapshot", "list");
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "SNAPSHOT"));
  th_result_free(&r);
  expect(RUN("clone", "snap1", "snapclone"), 0,
         "table snapclone created from snapshot snap1\n");
  expect(RUN("get", "snapclone", "a"), 0, "1\n");
  char dest[1200];
  snprintf(dest, sizeof dest, "%s/cli-export", tu_tmpdir());
  r = RUN("snapshot", "--export", "snap1", dest);
  CU_ASSERT_EQUAL(r.rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(th_out(&r), "exported to"));
  th_result_free(&r);
  r = RUN("restore", dest, "snaprestored");
  CU_ASSERT_EQUAL(r.rc, 0);
  th_result_free(&r);
  expect(RUN("get", "snaprestored", "z"), 0, "2\n");
  /* Failures: exit 1, one line naming what was wrong, nothing on stdout. */
  const char *const *bad[] = {
      (const char *const[]){"snapshot", "nosuch", "s2", NULL},
      (const char *const[]){"snapshot", "snapsrc", "snap1", NULL},
      (const char *const[]){"snapshot", "snapsrc", "bad name", NULL},
      (const char *const[]){"clone", "nosuch", "t2", NULL},
      (const char *const[]){"clone", "snap1", "snapsrc", NULL},
      (const char *const[]){"snapshot", "drop", "nosuch", NULL},
      (const char *const[]){"restore", "/nonexistent/export", "t3", NULL},
  };
  const char *want[] = {"nosuch", "already exists", "bad name", "nosuch",
                        "already exists", "nosuch", "EXPORT"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = run_env(NULL, NULL, bad[i]);
    if (r.rc != 1 || strstr(th_err(&r), want[i]) == NULL)
      fprintf(stderr, "\ncase %zu: exit %d: %s\n", i, r.rc, th_err(&r));
    CU_ASSERT_EQUAL(r.rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(th_err(&r), want[i]));
    CU_ASSERT_EQUAL(r.out.len, 0);
    th_result_free(&r);
  }
  expect(RUN("snapshot", "drop", "snap1"), 0, "snapshot snap1 dropped\n");
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"usage", test_usage},
      {"master_unreachable", test_master_unreachable},
      {"put_get_del_scan", test_put_get_del_scan},
      {"all_bytes", test_all_bytes},
      {"load", test_load},
      {"admin", test_admin},
      {"table_options", test_table_options},
      {"snapshots", test_snapshots},
      {"closed_stdout", test_closed_stdout},
      CU_TEST_INFO_NULL};
  CU_pSuite s = CU_add_suite("cli", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName; t++) CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
