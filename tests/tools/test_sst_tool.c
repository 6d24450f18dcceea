/* test_sst_tool: the mica-sst program as a user runs it: help texts, exit
 * statuses for bad usage (2) and bad files (1), dump/build round trips
 * with binary keys, verify and stats output, and a tiny bench run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/env.h"
#include "common/ikey.h"
#include "sstable/sstable.h"
#include "tests/sstable/sstutil.h"
#include "tests/harness/testutil.h"

static char out_path[512], err_path[512];
static buf out_text, err_text;

/* Runs "mica-sst ARGS" (a shell fragment) with stdin from `in` (NULL for
 * /dev/null); returns the exit status, output in out_text/err_text. */
static int run(const char *args, const char *in) {
  const char *bin = getenv("MICA_BIN_DIR");
  if (bin == NULL) bin = ".";
  if (out_path[0] == '\0') {
    snprintf(out_path, sizeof out_path, "%s", tmp_path("out.txt"));
    snprintf(err_path, sizeof err_path, "%s", tmp_path("err.txt"));
  }
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s/mica-sst %s <%s >%s 2>%s", bin, args,
           in ? in : "/dev/null", out_path, err_path);
  int st = system(cmd);
  buf_clear(&out_text);
  buf_clear(&err_text);
  err_free(env_read_file(env_posix(), out_path, 1 << 26, &out_text));
  err_free(env_read_file(env_posix(), err_path, 1 << 26, &err_text));
  buf_push(&out_text, 0);
  buf_push(&err_text, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const void *data, size_t n) {
  env_writer *w;
  TU_OK(env_open_writer(env_posix(), path, ENV_TRUNCATE, &w));
  TU_OK(env_append(w, data, n));
  TU_OK(env_writer_close(w));
}

static void write_str(const char *path, const char *text) {
  write_file(path, text, strlen(text));
}

static bool out_has(const char *s) { return strstr((char *)out_text.data, s) != NULL; }
static bool err_has(const char *s) { return strstr((char *)err_text.data, s) != NULL; }

static size_t count_lines(const buf *b) {
  size_t n = 0;
  for (size_t i = 0; i < b->len; i++) n += b->data[i] == '\n';
  return n;
}

static void test_help_and_usage(void) {
  CU_ASSERT_EQUAL(run("--help", NULL), 0);
  CU_ASSERT(out_has("dump") && out_has("build") && out_has("verify") && out_has("stats") &&
            out_has("bench") && out_has("example"));
  struct {
    const char *cmd;
    const char *flags[9];
  } cmds[] = {
      {"dump", {"--limit", "--max-value", "--keys-only", NULL}},
      {"build", {"--block-size", "--restart-interval", "--bloom-bits", "--compression", NULL}},
      {"verify", {NULL}},
      {"stats", {NULL}},
      {"bench", {"--entries", "--dir", "--lookups", "--uncached-lookups", "--disk-mib",
                 "--block-size", "--rounds", "--no-leveldb", NULL}},
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    char args[64];
    snprintf(args, sizeof args, "%s --help", cmds[i].cmd);
    CU_ASSERT_EQUAL(run(args, NULL), 0);
    CU_ASSERT(out_has("usage:") && out_has("example"));
    for (int f = 0; cmds[i].flags[f] != NULL; f++) {
      if (!out_has(cmds[i].flags[f])) {
        fprintf(stderr, "\n%s --help lacks %s\n", cmds[i].cmd, cmds[i].flags[f]);
        CU_FAIL("flag missing from help");
      }
    }
  }
  CU_ASSERT_EQUAL(run("", NULL), 2);
  CU_ASSERT(err_has("usage:"));
  CU_ASSERT_EQUAL(run("frobnicate", NULL), 2);
  CU_ASSERT(err_has("unknown command") && err_has("usage:"));
  CU_ASSERT_EQUAL(run("dump --bogus x.sst", NULL), 2);
  CU_ASSERT(err_has("unknown flag") && err_has("usage:"));
  CU_ASSERT_EQUAL(run("dump", NULL), 2);
  CU_ASSERT_EQUAL(run("dump a.sst b.sst", NULL), 2);
  CU_ASSERT_EQUAL(run("dump --limit", NULL), 2);
  CU_ASSERT_EQUAL(run("dump --limit=-3 a.sst", NULL), 2);
  CU_ASSERT_EQUAL(run("bench --entries abc", NULL), 2);
  CU_ASSERT_EQUAL(run("build --compression snappy x.sst", NULL), 2);
  CU_ASSERT_EQUAL(run("stats --keys-only x.sst", NULL), 2);
}

static void test_dump_build_verify_stats(void) {
  /* Binary keys (zero bytes, spaces, backslashes) and deletes. */
  model m = {0};
  gen_opts g = {.entries = 500, .min_key = 0, .max_key = 6, .min_val = 0,
                .max_val = 30, .max_versions = 3, .binary = true, .delete_pct = 20};
  model_gen(&m, &g);
  const char *a = tmp_path("a.sst");
  build_file(env_posix(), a, NULL, &m, NULL);
  char args[1024];
  snprintf(args, sizeof args, "dump --max-value 0 %s", a);
  CU_ASSERT_EQUAL(run(args, NULL), 0);
  CU_ASSERT_EQUAL(count_lines(&out_text), m.n);
  CU_ASSERT(out_has(" PUT => ") && out_has(" DELETE\n") && out_has("\\x"));
  /* The dump reads back into an identical table. */
  const char *dump = tmp_path("dump.txt");
  write_file(dump, out_text.data, out_text.len - 1);
  const char *b = tmp_path("b.sst");
  snprintf(args, sizeof args, "build --compression zstd %s", b);
  CU_ASSERT_EQUAL(run(args, dump), 0);
  CU_ASSERT(out_has("500 entries"));
  sst_reader *r;
  TU_OK(sst_reader_open(env_posix(), b, NULL, &r));
  check_scans(r, &m);
  sst_reader_close(r);

  snprintf(args, sizeof args, "dump --limit 3 --keys-only %s", a);
  CU_ASSERT_EQUAL(run(args, NULL), 0);
  CU_ASSERT_EQUAL(count_lines(&out_text), 3);
  CU_ASSERT_FALSE(out_has("=>"));

  snprintf(args, sizeof args, "verify %s", b);
  CU_ASSERT_EQUAL(run(args, NULL), 0);
  CU_ASSERT(out_has("ok:"));
  snprintf(args, sizeof args, "stats %s", b);
  CU_ASSERT_EQUAL(run(args, NULL), 0);
  CU_ASSERT(out_has("entries: 500\n") && out_has("compression: zstd") &&
            out_has("data_blocks: ") && out_has("filter_size: "));

  /* Unsorted input: exit 1, the line named, no file left. */
  const char *bad_in = tmp_path("bad.txt");
  write_str(bad_in, "b @1 PUT => x\na @1 PUT => y\n");
  const char *c = tmp_path("c.sst");
  snprintf(args, sizeof args, "build %s", c);
  CU_ASSERT_EQUAL(run(args, bad_in), 1);
  CU_ASSERT(err_has("line 2"));
  CU_ASSERT_FALSE(env_exists(env_posix(), c));
  write_str(bad_in, "no sequence here\n");
  CU_ASSERT_EQUAL(run(args, bad_in), 1);
  CU_ASSERT(err_has("line 1"));
  model_free(&m);
}

static void test_corrupt_and_missing(void) {
  model m = {0};
  gen_opts g = {.entries = 300, .min_key = 4, .max_key = 8, .min_val = 10, .max_val = 30};
  model_gen(&m, &g);
  const char *a = tmp_path("corrupt.sst");
  build_file(env_posix(), a, NULL, &m, NULL);
  buf bytes = BUF_INIT;
  TU_OK(env_read_file(env_posix(), a, 1 << 20, &bytes));
  bytes.data[100] ^= 0x10; /* inside the first data block */
  write_file(a, bytes.data, bytes.len);
  char args[1024];
  const char *cmds[] = {"verify", "dump"};
  for (int i = 0; i < 2; i++) {
    snprintf(args, sizeof args, "%s %s", cmds[i], a);
    CU_ASSERT_EQUAL(run(args, NULL), 1);
    CU_ASSERT(err_has("CORRUPTION") && err_has(a) && err_has("offset"));
    CU_ASSERT_EQUAL(count_lines(&err_text), 1);
  }
  /* Damage the footer: even stats refuses. */
  bytes.data[100] ^= 0x10;
  bytes.data[bytes.len - 3] ^= 0x01;
  write_file(a, bytes.data, bytes.len);
  snprintf(args, sizeof args, "stats %s", a);
  CU_ASSERT_EQUAL(run(args, NULL), 1);
  CU_ASSERT(err_has("magic") && count_lines(&err_text) == 1);
  CU_ASSERT_EQUAL(run("stats /nonexistent/x.sst", NULL), 1);
  CU_ASSERT(err_has("NOT_FOUND") && count_lines(&err_text) == 1);
  buf_free(&bytes);
  model_free(&m);
}

static void test_tiny_bench(void) {
  char args[1024];
  snprintf(args, sizeof args,
           "bench --entries 3000 --lookups 2000 --uncached-lookups 1000 --disk-mib 2 --rounds 2 "
           "--dir %s", tu_tmpdir());
  CU_ASSERT_EQUAL(run(args, NULL), 0);
  CU_ASSERT(out_has("disk sequential write") && out_has("get, block cache") &&
            out_has("scan, blocks in cache") && out_has("ratio"));
  if (err_text.len > 1) fprintf(stderr, "\nbench stderr: %s\n", (char *)err_text.data);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"help texts and usage errors", test_help_and_usage},
      {"dump, build, verify, stats", test_dump_build_verify_stats},
      {"corrupt and missing files", test_corrupt_and_missing},
      {"tiny bench", test_tiny_bench},
      CU_TEST_INFO_NULL};
  tu_add_suite("mica-sst tool", tests);
}

int main(int argc, char **argv) {
  /* Run by hand rather than by ctest: the tool sits beside this test. */
  if (getenv("MICA_BIN_DIR") == NULL && argc > 0) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", argv[0]);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
      *slash = '\0';
      setenv("MICA_BIN_DIR", dir, 1);
    }
  }
  int rc = tu_main(argc, argv, add_suites);
  buf_free(&out_text);
  buf_free(&err_text);
  return rc;
}
