/* test_path: the path helpers (common/path.h), the data-root layout
 * (common/layout.h) and the prefix successor (common/slice.h).
 *
 * Path: joining with and without a trailing slash on the directory, an
 * empty directory, splitting with trailing and doubled slashes, the root
 * and bare names. Prefix successor: ordinary prefixes, trailing 0xff bytes
 * dropped, all-0xff and empty prefixes having none, and the defining
 * property checked against random keys. Layout: every path it spells,
 * tablet directory names (digits only, 64-bit overflow rejected), listing
 * and removing tablet directories on disk among other entries, and file
 * paths as seen from a sibling tablet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/layout.h"
#include "common/path.h"
#include "common/slice.h"
#include "tests/harness/testutil.h"

static void expect_join(const char *dir, const char *name, const char *want) {
  char *p = path_join(dir, name);
  if (strcmp(p, want) != 0)
    fprintf(stderr, "\n  path_join(\"%s\", \"%s\") = \"%s\", want \"%s\"\n",
            dir, name, p, want);
  CU_ASSERT_STRING_EQUAL(p, want);
  free(p);
}

static void expect_split(const char *path, const char *parent,
                         const char *base) {
  char *p, *b;
  path_split(path, &p, &b);
  if (strcmp(p, parent) != 0 || strcmp(b, base) != 0)
    fprintf(stderr, "\n  path_split(\"%s\") = \"%s\", \"%s\"; want \"%s\", \"%s\"\n",
            path, p, b, parent, base);
  CU_ASSERT_STRING_EQUAL(p, parent);
  CU_ASSERT_STRING_EQUAL(b, base);
  free(p);
  free(b);
  char *q = path_parent(path);
  CU_ASSERT_STRING_EQUAL(q, parent);
  free(q);
}

static void test_join(void) {
  expect_join("a/b", "c", "a/b/c");
  expect_join("a/b/", "c", "a/b/c");
  expect_join("/", "c", "/c");
  expect_join("", "c", "c");
  expect_join("a", "MANIFEST", "a/MANIFEST");
  expect_join("a", "../5/sst-1.sst", "a/../5/sst-1.sst"); /* not resolved */
}

static void test_split(void) {
  expect_split("a/b/c", "a/b", "c");
  expect_split("a/b/c/", "a/b", "c");
  expect_split("a/b/c///", "a/b", "c");
  expect_split("a//c", "a", "c");
  expect_split("c", ".", "c");
  expect_split("c/", ".", "c");
  expect_split("/c", "/", "c");
  expect_split("//c", "/", "c");
  expect_split("/", "/", "");
  expect_split("/data/tablets/17", "/data/tablets", "17");
  /* Joining what a split returns gives the path back (no trailing
   * slash, not the root). */
  char *p, *b;
  path_split("x/y/z", &p, &b);
  char *j = path_join(p, b);
  CU_ASSERT_STRING_EQUAL(j, "x/y/z");
  free(p);
  free(b);
  free(j);
}

static void expect_succ(const char *prefix, size_t n, bool has,
                        const char *want, size_t wn) {
  buf out = BUF_INIT;
  buf_append(&out, "junk", 4); /* replaced, also when there is none */
  CU_ASSERT_EQUAL(slice_prefix_successor(slice_make(prefix, n), &out), has);
  CU_ASSERT_EQUAL(out.len, wn);
  if (out.len == wn && wn > 0)
    CU_ASSERT_EQUAL(memcmp(out.data, want, wn), 0);
  buf_free(&out);
}

static void test_prefix_successor(void) {
  expect_succ("abc", 3, true, "abd", 3);
  expect_succ("a", 1, true, "b", 1);
  expect_succ("a\xff", 2, true, "b", 1);
  expect_succ("a\xff\xff", 3, true, "b", 1);
  expect_succ("\x00", 1, true, "\x01", 1);
  expect_succ("a\xfe", 2, true, "a\xff", 2);
  expect_succ("\xff", 1, false, "", 0);
  expect_succ("\xff\xff\xff", 3, false, "", 0);
  expect_succ("", 0, false, "", 0);

  /* The property: k starts with p exactly when p <= k < successor(p). */
  buf succ = BUF_INIT;
  for (int round = 0; round < 2000; round++) {
    uint8_t p[3], k[5];
    size_t pn = 1 + tu_rand_below(3), kn = tu_rand_below(6);
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 'b', 0xfe, 0xff};
    for (size_t i = 0; i < pn; i++) p[i] = alphabet[tu_rand_below(6)];
    for (size_t i = 0; i < kn; i++) k[i] = alphabet[tu_rand_below(6)];
    slice ps = slice_make(p, pn), ks = slice_make(k, kn);
    bool has = slice_prefix_successor(ps, &succ);
    bool in = slice_cmp(ks, ps) >= 0 &&
              (!has || slice_cmp(ks, buf_slice(&succ)) < 0);
    CU_ASSERT_EQUAL(in, slice_starts_with(ks, ps));
  }
  buf_free(&succ);
}

static void test_layout_paths(void) {
  char *p = layout_master_dir("/data");
  CU_ASSERT_STRING_EQUAL(p, "/data/master");
  free(p);
  p = layout_master_dir("/data/");
  CU_ASSERT_STRING_EQUAL(p, "/data/master");
  free(p);
  p = layout_tablets_dir("/data");
  CU_ASSERT_STRING_EQUAL(p, "/data/tablets");
  free(p);
  p = layout_tablet_rel(42);
  CU_ASSERT_STRING_EQUAL(p, "tablets/42");
  free(p);
  p = layout_tablet_rel(UINT64_MAX);
  CU_ASSERT_STRING_EQUAL(p, "tablets/18446744073709551615");
  free(p);

  buf b = BUF_INIT;
  buf_append(&b, "old contents", 12);
  layout_tablet_dir("/data/tablets", 7, &b);
  CU_ASSERT_EQUAL(b.len, strlen("/data/tablets/7"));
  CU_ASSERT_STRING_EQUAL((const char *)b.data, "/data/tablets/7");
  layout_tablet_dir("/data/tablets/", 8, &b);
  CU_ASSERT_STRING_EQUAL((const char *)b.data, "/data/tablets/8");
  buf_free(&b);

  /* A file as seen from a sibling tablet directory. */
  layout_sibling_file("5", "sst-1.sst", &b);
  CU_ASSERT_EQUAL(b.len, strlen("../5/sst-1.sst"));
  CU_ASSERT_STRING_EQUAL((const char *)b.data, "../5/sst-1.sst");
  buf_clear(&b);
  layout_sibling_file("9", "../5/sst-1.sst", &b);
  CU_ASSERT_STRING_EQUAL((const char *)b.data, "../5/sst-1.sst");
  buf_free(&b);
}

static void test_layout_names(void) {
  uint64_t id = 99;
  CU_ASSERT_TRUE(layout_is_tablet_name("0"));
  CU_ASSERT_TRUE(layout_is_tablet_name("123"));
  CU_ASSERT_FALSE(layout_is_tablet_name(""));
  CU_ASSERT_FALSE(layout_is_tablet_name("12.split-tmp"));
  CU_ASSERT_FALSE(layout_is_tablet_name("12.merge-tmp"));
  CU_ASSERT_FALSE(layout_is_tablet_name("+12"));
  CU_ASSERT_FALSE(layout_is_tablet_name(" 12"));
  CU_ASSERT_FALSE(layout_is_tablet_name("MANIFEST"));

  CU_ASSERT_TRUE(layout_parse_tablet_name("123", &id));
  CU_ASSERT_EQUAL(id, 123);
  CU_ASSERT_TRUE(layout_parse_tablet_name("18446744073709551615", &id));
  CU_ASSERT_EQUAL(id, UINT64_MAX);
  id = 5;
  CU_ASSERT_FALSE(layout_parse_tablet_name("18446744073709551616", &id));
  CU_ASSERT_FALSE(layout_parse_tablet_name("99999999999999999999999", &id));
  CU_ASSERT_FALSE(layout_parse_tablet_name("-1", &id));
  CU_ASSERT_FALSE(layout_parse_tablet_name("7x", &id));
  CU_ASSERT_EQUAL(id, 5); /* untouched on failure */
}

static void mkdir_in(env *e, const char *dir, const char *name) {
  char *p = path_join(dir, name);
  TU_OK(env_mkdirs(e, p));
  free(p);
}

static void test_layout_disk(void) {
  env *e = env_posix();
  const char *root = tu_tmpdir();
  char *tablets = layout_tablets_dir(root);
  char **names;
  size_t n;
  TU_ERR(layout_list_tablets(e, tablets, &names, &n), MICA_NOT_FOUND);

  TU_OK(env_mkdirs(e, tablets));
  mkdir_in(e, tablets, "10");
  mkdir_in(e, tablets, "2");
  mkdir_in(e, tablets, "10.split-tmp");
  mkdir_in(e, tablets, "junk");
  buf d = BUF_INIT;
  layout_tablet_dir(tablets, 2, &d);
  char *f = path_join((const char *)d.data, "MANIFEST");
  env_writer *w;
  TU_OK(env_open_writer(e, f, ENV_CREATE_NEW, &w));
  TU_OK(env_append(w, "x", 1));
  TU_OK(env_writer_close(w));
  free(f);

  TU_OK(layout_list_tablets(e, tablets, &names, &n));
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_STRING_EQUAL(names[0], "10"); /* sorted bytewise */
  CU_ASSERT_STRING_EQUAL(names[1], "2");
  env_free_names(names, n);

  /* Removal takes the whole tree, leaves the rest, and an absent tablet
   * is not an error. */
  TU_OK(layout_remove_tablet(e, tablets, 2));
  CU_ASSERT_FALSE(env_exists(e, (const char *)d.data));
  TU_OK(layout_remove_tablet(e, tablets, 2));
  TU_OK(layout_remove_tablet(e, tablets, 12345));
  TU_OK(layout_list_tablets(e, tablets, &names, &n));
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_STRING_EQUAL(names[0], "10");
  env_free_names(names, n);
  char *tmp = path_join(tablets, "10.split-tmp");
  CU_ASSERT_TRUE(env_exists(e, tmp));
  free(tmp);

  /* Through the fault env: a failing removal is reported. */
  env_fault *fe = env_fault_new(e);
  env_fault_fail_nth(fe, ENV_OP_REMOVE, 1, true);
  mica_err *err = layout_remove_tablet(env_fault_env(fe), tablets, 10);
  CU_ASSERT_EQUAL(err_code(err), MICA_IO_ERROR);
  err_free(err);
  env_fault_free(fe);
  layout_tablet_dir(tablets, 10, &d);
  CU_ASSERT_TRUE(env_exists(e, (const char *)d.data));

  buf_free(&d);
  free(tablets);
}

static CU_TestInfo path_tests[] = {
    {"join", test_join},
    {"split and parent", test_split},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo succ_tests[] = {
    {"prefix successor", test_prefix_successor},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo layout_tests[] = {
    {"paths", test_layout_paths},
    {"tablet directory names", test_layout_names},
    {"list and remove on disk", test_layout_disk},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) {
  tu_add_suite("path", path_tests);
  tu_add_suite("slice prefix successor", succ_tests);
  tu_add_suite("layout", layout_tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
