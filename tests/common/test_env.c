/* test_env: the POSIX env and the fault-injecting env.
 *
 * POSIX: every operation on real files in a temporary directory, the
 * errno-to-code mapping (missing files, existing files, a full device via
 * /dev/full), error messages that name the path, the advisory lock against
 * a forked process, the clocks, and remove_tree racing a second remover
 * of the same tree.
 *
 * Fault: the Nth call of each kind fails once or stickily and then
 * recovers, a full disk, and a simulated crash checked through the plain
 * POSIX env afterwards: unsynced tails cut, unsynced new files gone,
 * renamed files kept, every later call refused.
 *
 * Route (env_route.h, --wal-dir): files whose name is picked live under
 * the other root at the same relative path; directory calls act on both
 * trees; env_appends_in_place answers per file. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "common/env_route.h"
#include "tests/harness/testutil.h"

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = xmalloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Asserts `e` has `code` and a message containing `needle`; frees it. */
static void expect_err(mica_err *e, int code, const char *needle) {
  if (err_code(e) != code || strstr(err_msg(e), needle) == NULL)
    fprintf(stderr, "\n  got %s: %s; want %s naming %s\n",
            mica_code_name(err_code(e)), err_msg(e), mica_code_name(code),
            needle);
  CU_ASSERT_EQUAL(err_code(e), code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), needle));
  err_free(e);
}

static void write_file(env *e, const char *path, int mode, const char *data) {
  env_writer *w;
  TU_OK(env_open_writer(e, path, mode, &w));
  TU_OK(env_append(w, data, strlen(data)));
  TU_OK(env_sync(w));
  TU_OK(env_writer_close(w));
}

/* The whole file as a NUL-terminated string (test files are text). */
static char *slurp(env *e, const char *path) {
  buf b = BUF_INIT;
  mica_err *err = env_read_file(e, path, 1 << 20, &b);
  if (err != NULL) {
    err_free(err);
    buf_free(&b);
    return NULL;
  }
  buf_push(&b, 0);
  return (char *)b.data;
}

static bool names_contain(char **names, size_t n, const char *want) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], want) == 0) return true;
  return false;
}

/* Reads all of `path` through `e` into a buf the caller frees. */
static buf read_all(env *e, const char *path) {
  buf b = BUF_INIT;
  TU_OK(env_read_file(e, path, 64 << 20, &b));
  return b;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

/* ---- POSIX ---- */

static void test_write_read(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  char *p = path_in(dir, "f1");
  env_writer *w;
  TU_OK(env_open_writer(e, p, ENV_CREATE_NEW, &w));
  CU_ASSERT_STRING_EQUAL(env_writer_path(w), p);
  CU_ASSERT_EQUAL(env_writer_size(w), 0);
  TU_OK(env_append(w, "hello", 5));
  TU_OK(env_append(w, " world", 6));
  TU_OK(env_append(w, "", 0));
  CU_ASSERT_EQUAL(env_writer_size(w), 11);
  TU_OK(env_sync(w));
  TU_OK(env_writer_close(w));
  TU_OK(env_writer_close(NULL));

  env_reader *r;
  TU_OK(env_open_reader(e, p, &r));
  CU_ASSERT_EQUAL(env_reader_size(r), 11);
  CU_ASSERT_STRING_EQUAL(env_reader_path(r), p);
  char got[32];
  size_t n;
  TU_OK(env_read(r, 6, 5, got, &n));
  CU_ASSERT_EQUAL(n, 5);
  CU_ASSERT_EQUAL(memcmp(got, "world", 5), 0);
  TU_OK(env_read(r, 8, 10, got, &n)); /* short only at end of file */
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT_EQUAL(memcmp(got, "rld", 3), 0);
  TU_OK(env_read(r, 100, 10, got, &n));
  CU_ASSERT_EQUAL(n, 0);
  env_reader_close(r);
  env_reader_close(NULL);

  uint64_t size;
  TU_OK(env_file_size(e, p, &size));
  CU_ASSERT_EQUAL(size, 11);

  /* Modes: CREATE_NEW refuses, APPEND continues, TRUNCATE empties. */
  expect_err(env_open_writer(e, p, ENV_CREATE_NEW, &w), MICA_ALREADY_EXISTS, p);
  CU_ASSERT_PTR_NULL(w);
  TU_OK(env_open_writer(e, p, ENV_APPEND, &w));
  CU_ASSERT_EQUAL(env_writer_size(w), 11);
  TU_OK(env_append(w, "!", 1));
  CU_ASSERT_EQUAL(env_writer_size(w), 12);
  TU_OK(env_writer_close(w));
  char *s = slurp(e, p);
  CU_ASSERT_STRING_EQUAL(s, "hello world!");
  free(s);
  TU_OK(env_open_writer(e, p, ENV_TRUNCATE, &w));
  CU_ASSERT_EQUAL(env_writer_size(w), 0);
  TU_OK(env_writer_close(w));
  TU_OK(env_file_size(e, p, &size));
  CU_ASSERT_EQUAL(size, 0);
  expect_err(env_open_writer(e, p, 42, &w), MICA_INVALID_ARGUMENT, p);
  free(p);
}

static void test_large_io(void) {
  env *e = env_posix();
  char *p = path_in(tu_tmpdir(), "big");
  size_t n = 3 << 20;
  uint8_t *data = xmalloc(n), *back = xmalloc(n);
  tu_rand_bytes(data, n);
  env_writer *w;
  TU_OK(env_open_writer(e, p, ENV_CREATE_NEW, &w));
  size_t off = 0;
  while (off < n) {
    size_t k = tu_rand_below(200000);
    if (k > n - off) k = n - off;
    TU_OK(env_append(w, data + off, k));
    off += k;
  }
  TU_OK(env_writer_close(w));
  env_reader *r;
  TU_OK(env_open_reader(e, p, &r));
  size_t got;
  TU_OK(env_read(r, 0, n, back, &got));
  CU_ASSERT_EQUAL(got, n);
  CU_ASSERT_EQUAL(memcmp(back, data, n), 0);
  for (int i = 0; i < 50; i++) {
    uint64_t o = tu_rand_below(n);
    size_t k = tu_rand_below(n);
    TU_OK(env_read(r, o, k, back, &got));
    CU_ASSERT_EQUAL(got, k < n - o ? k : n - o);
    CU_ASSERT_EQUAL(memcmp(back, data + o, got), 0);
  }
  env_reader_close(r);
  free(data);
  free(back);
  free(p);
}

static void test_missing(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  char *p = path_in(dir, "nope");
  env_reader *r;
  expect_err(env_open_reader(e, p, &r), MICA_NOT_FOUND, p);
  CU_ASSERT_PTR_NULL(r);
  uint64_t size;
  expect_err(env_file_size(e, p, &size), MICA_NOT_FOUND, p);
  expect_err(env_remove(e, p), MICA_NOT_FOUND, p);
  expect_err(env_rename(e, p, "/tmp/x"), MICA_NOT_FOUND, p);
  CU_ASSERT_FALSE(env_exists(e, p));
  char **names;
  size_t n;
  expect_err(env_list(e, p, &names, &n), MICA_NOT_FOUND, p);
  expect_err(env_sync_dir(e, p), MICA_NOT_FOUND, p);
  buf b = BUF_INIT;
  expect_err(env_read_file(e, p, 100, &b), MICA_NOT_FOUND, p);
  char *deep = path_in(p, "child");
  env_writer *w;
  expect_err(env_open_writer(e, deep, ENV_TRUNCATE, &w), MICA_NOT_FOUND, deep);
  TU_OK(env_remove_tree(e, p)); /* absent is fine */
  free(deep);
  free(p);
}

static void test_disk_full_posix(void) {
  env *e = env_posix();
  if (!env_exists(e, "/dev/full")) {
    fprintf(stderr, "[no /dev/full; skipped] ");
    return;
  }
  env_writer *w;
  TU_OK(env_open_writer(e, "/dev/full", ENV_APPEND, &w));
  expect_err(env_append(w, "x", 1), MICA_RESOURCE_EXHAUSTED, "/dev/full");
  TU_OK(env_writer_close(w));
}

/* Free space: the file system's figures, a missing path named. */
static void test_free_space(void) {
  env *e = env_posix();
  uint64_t avail = 0, total = 0;
  TU_OK(env_free_space(e, tu_tmpdir(), &avail, &total));
  CU_ASSERT(total > 0);
  CU_ASSERT(avail <= total);
  TU_OK(env_free_space(e, tu_tmpdir(), NULL, NULL));
  char *missing = path_in(tu_tmpdir(), "no/such/dir");
  expect_err(env_free_space(e, missing, &avail, &total), MICA_NOT_FOUND,
             missing);
  free(missing);
}

static void test_dirs(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  char *a = path_in(dir, "a"), *abc = path_in(dir, "a/b/c");
  TU_OK(env_mkdirs(e, abc));
  TU_OK(env_mkdirs(e, abc)); /* exists: fine */
  CU_ASSERT_TRUE(env_exists(e, abc));
  char *f1 = path_in(abc, "f1"), *f2 = path_in(a, "f2");
  write_file(e, f1, ENV_CREATE_NEW, "1");
  write_file(e, f2, ENV_CREATE_NEW, "2");
  TU_OK(env_sync_dir(e, abc));

  /* A file in the way of mkdirs is an error naming it. */
  char *under = path_in(f2, "sub");
  mica_err *err = env_mkdirs(e, under);
  CU_ASSERT_NOT_EQUAL(err_code(err), MICA_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(err), "f2"));
  err_free(err);

  char **names;
  size_t n;
  TU_OK(env_list(e, a, &names, &n));
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_TRUE(names_contain(names, n, "b"));
  CU_ASSERT_TRUE(names_contain(names, n, "f2"));
  CU_ASSERT_FALSE(names_contain(names, n, "."));
  env_free_names(names, n);

  /* Rename, then remove: the name moves, and removing twice fails. */
  char *f3 = path_in(a, "f3");
  TU_OK(env_rename(e, f2, f3));
  CU_ASSERT_FALSE(env_exists(e, f2));
  char *s = slurp(e, f3);
  CU_ASSERT_STRING_EQUAL(s, "2");
  free(s);
  /* Rename over an existing file replaces it. */
  TU_OK(env_rename(e, f3, f1));
  s = slurp(e, f1);
  CU_ASSERT_STRING_EQUAL(s, "2");
  free(s);
  TU_OK(env_remove(e, f1));
  expect_err(env_remove(e, f1), MICA_NOT_FOUND, f1);

  TU_OK(env_remove_tree(e, a));
  CU_ASSERT_FALSE(env_exists(e, a));
  TU_OK(env_list(e, dir, &names, &n));
  CU_ASSERT_EQUAL(n, 0);
  env_free_names(names, n);
  free(a), free(abc), free(f1), free(f2), free(f3), free(under);
}

static void test_whole_files(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  char *p = path_in(dir, "CURRENT");
  TU_OK(env_write_file_atomic(e, p, slice_from_str("manifest-1\n")));
  TU_OK(env_write_file_atomic(e, p, slice_from_str("manifest-2\n")));
  char *s = slurp(e, p);
  CU_ASSERT_STRING_EQUAL(s, "manifest-2\n");
  free(s);
  /* No temporary file is left behind. */
  char **names;
  size_t n;
  TU_OK(env_list(e, dir, &names, &n));
  CU_ASSERT_EQUAL(n, 1);
  env_free_names(names, n);
  /* The size limit. */
  buf b = BUF_INIT;
  buf_append(&b, "prefix", 6);
  expect_err(env_read_file(e, p, 5, &b), MICA_CORRUPTION, p);
  CU_ASSERT_EQUAL(b.len, 6); /* unchanged on failure */
  TU_OK(env_read_file(e, p, 11, &b));
  CU_ASSERT_EQUAL(b.len, 17);
  buf_free(&b);
  /* Empty file. */
  TU_OK(env_write_file_atomic(e, p, slice_make(NULL, 0)));
  TU_OK(env_read_file(e, p, 0, &b));
  CU_ASSERT_EQUAL(b.len, 0);
  buf_free(&b);
  free(p);
}

static void test_lock(void) {
  env *e = env_posix();
  char *p = path_in(tu_tmpdir(), "LOCK");
  int fd;
  TU_OK(env_lock(e, p, &fd));
  CU_ASSERT(fd >= 0);
  /* Another open of the lock, even in this process, is refused. */
  int fd2;
  expect_err(env_lock(e, p, &fd2), MICA_UNAVAILABLE, p);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int cfd;
    mica_err *err = env_lock(env_posix(), p, &cfd);
    _exit(err_code(err) == MICA_UNAVAILABLE ? 0 : 1);
  }
  int status;
  CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  env_unlock(e, fd);
  pid = fork();
  if (pid == 0) {
    int cfd;
    mica_err *err = env_lock(env_posix(), p, &cfd);
    _exit(err == NULL ? 0 : 1);
  }
  CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  TU_OK(env_lock(e, p, &fd));
  env_unlock(e, fd);
  free(p);
}

static void test_clocks(void) {
  env *e = env_posix();
  uint64_t t0 = env_now_micros(e);
  uint64_t prev = t0;
  for (int i = 0; i < 1000; i++) {
    uint64_t t = env_now_micros(e);
    CU_ASSERT(t >= prev);
    prev = t;
  }
  env_sleep_micros(e, 3000);
  CU_ASSERT(env_now_micros(e) - t0 >= 3000);
  /* Wall clock: after 2020-01-01 and in microseconds, not seconds. */
  uint64_t wall = env_wall_micros(e);
  CU_ASSERT(wall > UINT64_C(1577836800) * 1000000);
  CU_ASSERT(wall < UINT64_C(4102444800) * 1000000);
}

/* ---- fault ---- */

static void test_fault_nth(void) {
  const char *dir = tu_tmpdir();
  env_fault *f = env_fault_new(env_posix());
  env *e = env_fault_env(f);
  char *p = path_in(dir, "f");
  env_writer *w;
  TU_OK(env_open_writer(e, p, ENV_CREATE_NEW, &w));

  /* Writes: only the 3rd from now fails, then it recovers. */
  env_fault_fail_nth(f, ENV_OP_WRITE, 3, false);
  TU_OK(env_append(w, "a", 1));
  TU_OK(env_append(w, "b", 1));
  expect_err(env_append(w, "c", 1), MICA_IO_ERROR, p);
  TU_OK(env_append(w, "d", 1));
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_WRITE), 4);
  CU_ASSERT_EQUAL(env_writer_size(w), 3); /* the failed append wrote nothing */

  /* Sticky: the 2nd and every later one, until disarmed. */
  env_fault_fail_nth(f, ENV_OP_WRITE, 2, true);
  TU_OK(env_append(w, "e", 1));
  for (int i = 0; i < 5; i++) expect_err(env_append(w, "x", 1), MICA_IO_ERROR, p);
  env_fault_fail_nth(f, ENV_OP_WRITE, 0, false);
  TU_OK(env_append(w, "f", 1));

  env_fault_fail_nth(f, ENV_OP_SYNC, 1, false);
  expect_err(env_sync(w), MICA_IO_ERROR, p);
  TU_OK(env_sync(w));
  TU_OK(env_writer_close(w));
  char *s = slurp(e, p);
  CU_ASSERT_STRING_EQUAL(s, "abdef");
  free(s);

  /* Reads. */
  env_reader *r;
  TU_OK(env_open_reader(e, p, &r));
  char got[8];
  size_t n;
  env_fault_fail_nth(f, ENV_OP_READ, 2, false);
  TU_OK(env_read(r, 0, 2, got, &n));
  expect_err(env_read(r, 0, 2, got, &n), MICA_IO_ERROR, p);
  TU_OK(env_read(r, 0, 5, got, &n));
  CU_ASSERT_EQUAL(memcmp(got, "abdef", 5), 0);
  env_reader_close(r);

  /* Renames, opens and removes; each failed call leaves the files alone. */
  char *q = path_in(dir, "g");
  env_fault_fail_nth(f, ENV_OP_RENAME, 1, false);
  expect_err(env_rename(e, p, q), MICA_IO_ERROR, p);
  CU_ASSERT_TRUE(env_exists(e, p));
  CU_ASSERT_FALSE(env_exists(e, q));
  TU_OK(env_rename(e, p, q));
  CU_ASSERT_TRUE(env_exists(e, q));

  env_fault_fail_nth(f, ENV_OP_OPEN, 1, false);
  expect_err(env_open_writer(e, p, ENV_CREATE_NEW, &w), MICA_IO_ERROR, p);
  CU_ASSERT_FALSE(env_exists(e, p));
  TU_OK(env_open_writer(e, p, ENV_CREATE_NEW, &w));
  TU_OK(env_writer_close(w));

  env_fault_fail_nth(f, ENV_OP_REMOVE, 1, false);
  expect_err(env_remove(e, q), MICA_IO_ERROR, q);
  CU_ASSERT_TRUE(env_exists(e, q));
  TU_OK(env_remove(e, q));
  CU_ASSERT_FALSE(env_exists(e, q));

  /* A failed sync inside write_file_atomic leaves the old file alone and
   * no temporary behind. */
  TU_OK(env_write_file_atomic(e, q, slice_from_str("old")));
  env_fault_fail_nth(f, ENV_OP_SYNC, 1, false);
  mica_err *err = env_write_file_atomic(e, q, slice_from_str("new"));
  CU_ASSERT_EQUAL(err_code(err), MICA_IO_ERROR);
  err_free(err);
  s = slurp(e, q);
  CU_ASSERT_STRING_EQUAL(s, "old");
  free(s);
  char **names;
  size_t nn;
  TU_OK(env_list(e, dir, &names, &nn));
  CU_ASSERT_EQUAL(nn, 2); /* f and g */
  env_free_names(names, nn);

  CU_ASSERT(env_fault_count(f, ENV_OP_OPEN) >= 3);
  CU_ASSERT(env_fault_count(f, ENV_OP_RENAME) >= 3);
  env_fault_free(f);
  env_fault_free(NULL);
  free(p);
  free(q);
}

static void test_fault_disk_full(void) {
  env_fault *f = env_fault_new(env_posix());
  env *e = env_fault_env(f);
  char *p = path_in(tu_tmpdir(), "f");
  env_writer *w;
  TU_OK(env_open_writer(e, p, ENV_CREATE_NEW, &w));
  TU_OK(env_append(w, "ok", 2));
  env_fault_set_disk_full(f, true);
  expect_err(env_append(w, "no", 2), MICA_RESOURCE_EXHAUSTED, p);
  expect_err(env_append(w, "no", 2), MICA_RESOURCE_EXHAUSTED, p);
  CU_ASSERT_EQUAL(env_writer_size(w), 2);
  /* A full disk has no space to report; the total stays the base's. */
  uint64_t avail = 1, total = 0, base_total = 0;
  TU_OK(env_free_space(e, p, &avail, &total));
  TU_OK(env_free_space(env_posix(), p, NULL, &base_total));
  CU_ASSERT_EQUAL(avail, 0);
  CU_ASSERT_EQUAL(total, base_total);
  env_fault_set_disk_full(f, false);
  TU_OK(env_free_space(e, p, &avail, NULL));
  CU_ASSERT(avail > 0);
  TU_OK(env_append(w, "!", 1));
  TU_OK(env_writer_close(w));
  char *s = slurp(e, p);
  CU_ASSERT_STRING_EQUAL(s, "ok!");
  free(s);
  env_fault_free(f);
  free(p);
}

/* Preallocation through the fault env: counted, failable once, refused
 * while the disk is full, and a crash keeps exactly the synced bytes
 * followed by the zeros of a synced preallocation (an unsynced one, and
 * unsynced bytes written into preallocated space, are lost). */
static void test_fault_preallocate(void) {
  env *px = env_posix();
  const char *dir = tu_tmpdir();
  char *a = path_in(dir, "a"), *b = path_in(dir, "b"), *c = path_in(dir, "c");
  env_fault *f = env_fault_new(px);
  env *e = env_fault_env(f);
  env_writer *wa, *wb, *wc;
  TU_OK(env_open_writer(e, a, ENV_CREATE_NEW, &wa));
  TU_OK(env_open_writer(e, b, ENV_CREATE_NEW, &wb));
  TU_OK(env_open_writer(e, c, ENV_CREATE_NEW, &wc));
  TU_OK(env_sync_dir(e, dir));

  uint64_t n0 = env_fault_count(f, ENV_OP_PREALLOCATE);
  env_fault_fail_nth(f, ENV_OP_PREALLOCATE, 1, false);
  expect_err(env_preallocate(wa, 4096), MICA_IO_ERROR, a);
  env_fault_set_disk_full(f, true);
  expect_err(env_preallocate(wa, 4096), MICA_RESOURCE_EXHAUSTED, a);
  env_fault_set_disk_full(f, false);
  uint64_t size;
  TU_OK(env_file_size(e, a, &size));
  CU_ASSERT_EQUAL(size, 0);
  /* a: preallocated, "sync1" synced, then "lost" written unsynced. */
  TU_OK(env_preallocate(wa, 4096));
  CU_ASSERT_EQUAL(env_fault_count(f, ENV_OP_PREALLOCATE), n0 + 3);
  TU_OK(env_append(wa, "sync1", 5));
  TU_OK(env_sync(wa));
  TU_OK(env_append(wa, "lost", 4));
  /* b: synced "bb", then preallocated but never synced again. */
  TU_OK(env_append(wb, "bb", 2));
  TU_OK(env_sync(wb));
  TU_OK(env_preallocate(wb, 4096));
  /* c: preallocated larger than an earlier synced preallocation. */
  TU_OK(env_preallocate(wc, 1000));
  TU_OK(env_append(wc, "c", 1));
  TU_OK(env_sync(wc));
  TU_OK(env_preallocate(wc, 5000));
  TU_OK(env_append(wc, "unsynced", 8));

  env_fault_crash(f);
  expect_err(env_preallocate(wa, 8192), MICA_IO_ERROR, "crashed");
  err_free(env_writer_close(wa));
  err_free(env_writer_close(wb));
  err_free(env_writer_close(wc));
  env_fault_free(f);

  buf ba = read_all(px, a);
  CU_ASSERT_EQUAL(ba.len, 4096);
  CU_ASSERT_EQUAL(memcmp(ba.data, "sync1", 5), 0);
  CU_ASSERT_TRUE(all_zero(ba.data + 5, ba.len - 5));
  buf_free(&ba);
  buf bb = read_all(px, b);
  CU_ASSERT_EQUAL(bb.len, 2);
  CU_ASSERT_EQUAL(memcmp(bb.data, "bb", 2), 0);
  buf_free(&bb);
  buf bc = read_all(px, c);
  CU_ASSERT_EQUAL(bc.len, 1000);
  CU_ASSERT_EQUAL(bc.len > 0 && bc.data[0] == 'c', true);
  CU_ASSERT_TRUE(all_zero(bc.data + 1, bc.len - 1));
  buf_free(&bc);
  free(a);
  free(b);
  free(c);
}

static void test_fault_crash(void) {
  env *px = env_posix();
  const char *dir = tu_tmpdir();
  char *a = path_in(dir, "a"), *b = path_in(dir, "b"), *c = path_in(dir, "c"),
       *d = path_in(dir, "d"), *d2 = path_in(dir, "d2"), *g = path_in(dir, "g"),
       *t = path_in(dir, "t"), *cur = path_in(dir, "CURRENT"),
       *sub = path_in(dir, "sub"), *subf = path_in(dir, "sub/f");
  write_file(px, c, ENV_CREATE_NEW, "before"); /* written outside the env */
  TU_OK(env_mkdirs(px, sub));

  env_fault *f = env_fault_new(px);
  env *e = env_fault_env(f);
  env_writer *wa, *wb, *wc, *wd, *wg, *wt, *ws;
  /* a: synced "aaaa", then an unsynced tail; its directory synced. */
  TU_OK(env_open_writer(e, a, ENV_CREATE_NEW, &wa));
  TU_OK(env_append(wa, "aaaa", 4));
  TU_OK(env_sync(wa));
  TU_OK(env_append(wa, "bbbb", 4));
  /* g: created and never synced, directory synced: survives empty. */
  TU_OK(env_open_writer(e, g, ENV_CREATE_NEW, &wg));
  TU_OK(env_append(wg, "gggg", 4));
  /* d: synced, directory synced, then renamed to d2 with a tail. */
  TU_OK(env_open_writer(e, d, ENV_CREATE_NEW, &wd));
  TU_OK(env_append(wd, "dd", 2));
  TU_OK(env_sync(wd));
  /* sub/f: synced, but only the top directory is synced: lost. */
  TU_OK(env_open_writer(e, subf, ENV_CREATE_NEW, &ws));
  TU_OK(env_append(ws, "s", 1));
  TU_OK(env_sync(ws));
  TU_OK(env_sync_dir(e, dir));
  TU_OK(env_rename(e, d, d2));
  TU_OK(env_append(wd, "DD", 2));
  /* CURRENT: atomic writes survive whole (this also syncs the directory). */
  TU_OK(env_write_file_atomic(e, cur, slice_from_str("manifest-7")));
  /* b: created after the last directory sync; synced data but lost. */
  TU_OK(env_open_writer(e, b, ENV_CREATE_NEW, &wb));
  TU_OK(env_append(wb, "bb", 2));
  TU_OK(env_sync(wb));
  /* c: existed before; unsynced appends are cut back. */
  TU_OK(env_open_writer(e, c, ENV_APPEND, &wc));
  TU_OK(env_append(wc, " after", 6));
  /* t: truncated existing file: its old contents are not durable either. */
  write_file(px, t, ENV_CREATE_NEW, "old contents");
  TU_OK(env_open_writer(e, t, ENV_TRUNCATE, &wt));
  TU_OK(env_append(wt, "new", 3));

  env_fault_crash(f);

  /* Every call through the crashed env fails; open writers too. */
  expect_err(env_append(wa, "x", 1), MICA_IO_ERROR, a);
  expect_err(env_sync(wa), MICA_IO_ERROR, a);
  env_reader *r;
  expect_err(env_open_reader(e, a, &r), MICA_IO_ERROR, a);
  env_writer *w;
  expect_err(env_open_writer(e, b, ENV_TRUNCATE, &w), MICA_IO_ERROR, b);
  expect_err(env_rename(e, a, b), MICA_IO_ERROR, a);
  expect_err(env_remove(e, a), MICA_IO_ERROR, a);
  expect_err(env_sync_dir(e, dir), MICA_IO_ERROR, dir);
  char **names;
  size_t n;
  expect_err(env_list(e, dir, &names, &n), MICA_IO_ERROR, dir);
  CU_ASSERT_FALSE(env_exists(e, a));
  expect_err(env_write_file_atomic(e, cur, slice_from_str("x")), MICA_IO_ERROR,
             "CURRENT");
  expect_err(env_writer_close(wa), MICA_IO_ERROR, a);
  expect_err(env_writer_close(wb), MICA_IO_ERROR, b);
  expect_err(env_writer_close(wc), MICA_IO_ERROR, c);
  expect_err(env_writer_close(wd), MICA_IO_ERROR, d);
  expect_err(env_writer_close(wg), MICA_IO_ERROR, g);
  expect_err(env_writer_close(wt), MICA_IO_ERROR, t);
  expect_err(env_writer_close(ws), MICA_IO_ERROR, "sub/f");
  env_fault_free(f);

  /* What a restarted process finds. */
  char *s = slurp(px, a);
  CU_ASSERT_STRING_EQUAL(s, "aaaa");
  free(s);
  CU_ASSERT_FALSE(env_exists(px, b));
  s = slurp(px, c);
  CU_ASSERT_STRING_EQUAL(s, "before");
  free(s);
  CU_ASSERT_FALSE(env_exists(px, d));
  s = slurp(px, d2);
  CU_ASSERT_STRING_EQUAL(s, "dd");
  free(s);
  uint64_t size = 99;
  TU_OK(env_file_size(px, g, &size));
  CU_ASSERT_EQUAL(size, 0);
  TU_OK(env_file_size(px, t, &size));
  CU_ASSERT_EQUAL(size, 0);
  CU_ASSERT_FALSE(env_exists(px, subf));
  s = slurp(px, cur);
  CU_ASSERT_STRING_EQUAL(s, "manifest-7");
  free(s);
  TU_OK(env_list(px, dir, &names, &n));
  CU_ASSERT_EQUAL(n, 7); /* a c d2 g t CURRENT sub: no temporaries */
  env_free_names(names, n);

  /* A fresh fault env over the same directory works normally. */
  f = env_fault_new(px);
  e = env_fault_env(f);
  write_file(e, b, ENV_CREATE_NEW, "again");
  s = slurp(e, b);
  CU_ASSERT_STRING_EQUAL(s, "again");
  free(s);
  env_fault_free(f);
  free(a), free(b), free(c), free(d), free(d2), free(g), free(t), free(cur);
  free(sub), free(subf);
}


/* Threads append and sync while the crash lands: every byte whose sync
 * returned success survives, and what survives is exactly a prefix of
 * what was appended (no re-extension with a hole after the cut). */
enum { CRASH_THREADS = 4 };

typedef struct crash_worker {
  env *e;
  env_writer *w;
  int id;
  uint64_t acked; /* length covered by the last successful sync */
  uint64_t appended;
} crash_worker;

static uint8_t pattern(int id, uint64_t off) { return (uint8_t)(off * 7 + (uint64_t)id); }

static void *crash_work(void *arg) {
  crash_worker *c = arg;
  uint8_t rec[100];
  for (;;) {
    for (size_t i = 0; i < sizeof(rec); i++) rec[i] = pattern(c->id, c->appended + i);
    mica_err *err = env_append(c->w, rec, sizeof(rec));
    if (err != NULL) {
      err_free(err);
      return NULL;
    }
    c->appended += sizeof(rec);
    if (tu_rand_below(4) == 0) {
      err = env_sync(c->w);
      if (err != NULL) {
        err_free(err);
        return NULL;
      }
      c->acked = c->appended;
    }
  }
}

static void test_fault_crash_concurrent(void) {
  env *px = env_posix();
  for (int round = 0; round < 10; round++) {
    const char *dir = tu_tmpdir();
    env_fault *f = env_fault_new(px);
    crash_worker c[CRASH_THREADS];
    char *paths[CRASH_THREADS];
    pthread_t th[CRASH_THREADS];
    for (int i = 0; i < CRASH_THREADS; i++) {
      char name[16];
      snprintf(name, sizeof(name), "w%d", i);
      paths[i] = path_in(dir, name);
      c[i] = (crash_worker){.e = env_fault_env(f), .id = i};
      TU_OK(env_open_writer(c[i].e, paths[i], ENV_CREATE_NEW, &c[i].w));
    }
    TU_OK(env_sync_dir(env_fault_env(f), dir));
    for (int i = 0; i < CRASH_THREADS; i++)
      pthread_create(&th[i], NULL, crash_work, &c[i]);
    env_sleep_micros(px, 1000 + tu_rand_below(10000));
    env_fault_crash(f);
    for (int i = 0; i < CRASH_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < CRASH_THREADS; i++) {
      err_free(env_writer_close(c[i].w));
      buf b = BUF_INIT;
      TU_OK(env_read_file(px, paths[i], SIZE_MAX, &b));
      CU_ASSERT(b.len >= c[i].acked);
      CU_ASSERT(b.len <= c[i].appended);
      bool prefix = true;
      for (size_t k = 0; k < b.len && prefix; k++)
        prefix = b.data[k] == pattern(i, k);
      CU_ASSERT_TRUE(prefix);
      buf_free(&b);
      free(paths[i]);
    }
    env_fault_free(f);
  }
}

/* Preallocation lengthens the file with zeros, appends overwrite them in
 * place, the writer's size does not move, it never shrinks, and append-mode
 * writers are refused. */
static void test_preallocate(void) {
  env *e = env_posix();
  char *p = path_in(tu_tmpdir(), "pre");
  env_writer *w;
  TU_OK(env_open_writer(e, p, ENV_CREATE_NEW, &w));
  TU_OK(env_append(w, "head", 4));
  TU_OK(env_preallocate(w, 8192));
  CU_ASSERT_EQUAL(env_writer_size(w), 4);
  uint64_t size;
  TU_OK(env_file_size(e, p, &size));
  CU_ASSERT_EQUAL(size, 8192);
  TU_OK(env_append(w, "tail", 4));
  TU_OK(env_preallocate(w, 100)); /* never shrinks */
  TU_OK(env_sync(w));
  CU_ASSERT_EQUAL(env_writer_size(w), 8);
  TU_OK(env_file_size(e, p, &size));
  CU_ASSERT_EQUAL(size, 8192);
  buf b = read_all(e, p);
  CU_ASSERT_EQUAL(b.len, 8192);
  CU_ASSERT_EQUAL(memcmp(b.data, "headtail", 8), 0);
  CU_ASSERT_TRUE(all_zero(b.data + 8, b.len - 8));
  buf_free(&b);
  /* Appends past the preallocated end grow the file as usual. */
  char big[9000];
  memset(big, 'x', sizeof(big));
  TU_OK(env_append(w, big, sizeof(big)));
  TU_OK(env_writer_close(w));
  TU_OK(env_file_size(e, p, &size));
  CU_ASSERT_EQUAL(size, 8 + sizeof(big));

  TU_OK(env_open_writer(e, p, ENV_APPEND, &w));
  expect_err(env_preallocate(w, 1 << 20), MICA_INVALID_ARGUMENT, p);
  TU_OK(env_writer_close(w));
  free(p);
}

/* A map shows the file's bytes; an empty file is not mapped; the fault
 * env never maps, so its read faults still reach every reader. */
static void test_map(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  char *p = path_in(dir, "mapped"), *q = path_in(dir, "empty");
  size_t n = 100000;
  uint8_t *data = xmalloc(n);
  tu_rand_bytes(data, n);
  TU_OK(env_write_file_atomic(e, p, slice_make(data, n)));
  TU_OK(env_write_file_atomic(e, q, slice_make(NULL, 0)));
  env_reader *r;
  TU_OK(env_open_reader(e, p, &r));
  const uint8_t *m;
  TU_OK(env_reader_map(r, &m));
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_EQUAL(memcmp(m, data, n), 0);
  size_t got;
  uint8_t back[64];
  TU_OK(env_read(r, n - 10, sizeof back, back, &got)); /* reads still work */
  CU_ASSERT_EQUAL(got, 10);
  CU_ASSERT_EQUAL(memcmp(back, m + n - 10, 10), 0);
  env_reader_close(r);

  TU_OK(env_open_reader(e, q, &r));
  TU_ERR(env_reader_map(r, &m), MICA_NOT_SUPPORTED);
  CU_ASSERT_PTR_NULL(m);
  env_reader_close(r);

  env_fault *f = env_fault_new(e);
  env *fe = env_fault_env(f);
  TU_OK(env_open_reader(fe, p, &r));
  TU_ERR(env_reader_map(r, &m), MICA_NOT_SUPPORTED);
  CU_ASSERT_PTR_NULL(m);
  env_fault_fail_nth(f, ENV_OP_READ, 1, false);
  TU_ERR(env_read(r, 0, sizeof back, back, &got), MICA_IO_ERROR);
  env_reader_close(r);
  env_fault_free(f);
  free(data);
  free(p);
  free(q);
}

/* Two removers of one tree at once (two garbage collectors finding the
 * same retired tablet): "succeeds if it is absent" holds for both, also
 * when a directory vanishes between one remover's look at it and its
 * opening it. The removers walk the same entries in the same order, so
 * with many small subdirectories each often finds one just removed. */
typedef struct remover {
  const char *path;
  pthread_barrier_t *start;
  int failures;
} remover;

enum { RT_ROUNDS = 20, RT_SUBDIRS = 40 };

static void *remove_main(void *arg) {
  remover *r = arg;
  for (int i = 0; i < RT_ROUNDS; i++) {
    pthread_barrier_wait(r->start);
    mica_err *err = env_remove_tree(env_posix(), r->path);
    if (err != NULL) {
      if (r->failures++ == 0) fprintf(stderr, "\n  %s\n", err_msg(err));
      err_free(err);
    }
    pthread_barrier_wait(r->start);
  }
  return NULL;
}

static void test_remove_tree_concurrent(void) {
  env *e = env_posix();
  const char *dir = tu_tmpdir();
  char *t = path_in(dir, "tree");
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, 3);
  remover r[2] = {{t, &start, 0}, {t, &start, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    CU_ASSERT_FATAL(pthread_create(&th[i], NULL, remove_main, &r[i]) == 0);
  for (int i = 0; i < RT_ROUNDS; i++) {
    for (int j = 0; j < RT_SUBDIRS; j++) {
      char name[32];
      snprintf(name, sizeof(name), "d%02d", j);
      char *sub = path_in(t, name);
      TU_OK(env_mkdirs(e, sub));
      if (j % 4 == 0) {
        char *f = path_in(sub, "f");
        write_file(e, f, ENV_TRUNCATE, "x");
        free(f);
      }
      free(sub);
    }
    pthread_barrier_wait(&start); /* both remove */
    pthread_barrier_wait(&start); /* both done */
    CU_ASSERT_FALSE(env_exists(e, t));
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start);
  CU_ASSERT_EQUAL(r[0].failures + r[1].failures, 0);
  free(t);
}

/* ---- route ---- */

static bool pick_wal(const char *name) { return strncmp(name, "wal-", 4) == 0; }

static void test_route(void) {
  char *path_in_a_t3 = NULL;
  char *a = xstrdup(tu_tmpdir()), *b = xstrdup(tu_tmpdir());
  env_fault *base = env_fault_new(env_posix());
  env_fault_set_no_append(base, true); /* the base plays an object store */
  size_t n = strlen(a) + 2;
  char *root = xmalloc(n);
  snprintf(root, n, "%s/", a); /* a trailing slash is dropped */
  env *e = env_route_new(env_fault_env(base), root, env_posix(), b, pick_wal);
  env *px = env_posix();
  char *t1 = path_in(a, "t/1"), *sst = path_in(a, "t/1/sst-1.sst"),
       *wal = path_in(a, "t/1/wal-1.log"), *wal_b = path_in(b, "t/1/wal-1.log"),
       *sst_b = path_in(b, "t/1/sst-1.sst");
  TU_OK(env_mkdirs(e, t1));
  write_file(e, sst, ENV_TRUNCATE, "table");
  write_file(e, wal, ENV_TRUNCATE, "log");
  /* Each file in its own tree, found through the route at one path. */
  CU_ASSERT_TRUE(env_exists(px, sst));
  CU_ASSERT_FALSE(env_exists(px, sst_b));
  CU_ASSERT_TRUE(env_exists(px, wal_b));
  CU_ASSERT_FALSE(env_exists(px, wal));
  CU_ASSERT_TRUE(env_exists(e, wal));
  char *got = slurp(e, wal);
  CU_ASSERT_STRING_EQUAL(got ? got : "", "log");
  free(got);
  uint64_t size = 0;
  TU_OK(env_file_size(e, wal, &size));
  CU_ASSERT_EQUAL(size, 3);
  /* Appends in place for the WAL only. */
  CU_ASSERT_TRUE(env_appends_in_place(e, wal));
  CU_ASSERT_FALSE(env_appends_in_place(e, sst));
  /* One listing of both trees. */
  char **names;
  size_t k;
  TU_OK(env_list(e, t1, &names, &k));
  CU_ASSERT_EQUAL(k, 2);
  CU_ASSERT_TRUE(names_contain(names, k, "sst-1.sst"));
  CU_ASSERT_TRUE(names_contain(names, k, "wal-1.log"));
  env_free_names(names, k);
  char *t = path_in(a, "t");
  TU_OK(env_list(e, t, &names, &k));
  CU_ASSERT_EQUAL(k, 1); /* "1" is in both trees, listed once */
  env_free_names(names, k);
  /* A directory's rename moves both sides (the split's temporary dir). */
  char *t2 = path_in(a, "t/2"), *wal2 = path_in(a, "t/2/wal-1.log"),
       *sst2 = path_in(a, "t/2/sst-1.sst");
  TU_OK(env_rename(e, t1, t2));
  CU_ASSERT_TRUE(env_exists(e, wal2));
  CU_ASSERT_TRUE(env_exists(e, sst2));
  CU_ASSERT_FALSE(env_exists(e, t1));
  /* A file's rename stays in its tree; across trees is refused. */
  char *wal3 = path_in(a, "t/2/wal-2.log");
  TU_OK(env_rename(e, wal2, wal3));
  CU_ASSERT_TRUE(env_exists(e, wal3));
  expect_err(env_rename(e, wal3, sst2), MICA_INVALID_ARGUMENT,
             "different stores");
  TU_OK(env_remove(e, wal3));
  expect_err(env_remove(e, wal3), MICA_NOT_FOUND, "wal-2.log");
  /* A directory only the alt tree has (a split whose temporary directory
   * holds nothing but a segment) is renamed there alone. */
  char *only = path_in(b, "t/3"), *only_wal = path_in(a, "t/3/wal-5.log"),
       *moved = path_in(a, "t/4"), *moved_wal = path_in(a, "t/4/wal-5.log");
  TU_OK(env_mkdirs(px, only));
  write_file(e, only_wal, ENV_TRUNCATE, "seg");
  TU_OK(env_rename(e, path_in_a_t3 = path_in(a, "t/3"), moved));
  CU_ASSERT_TRUE(env_exists(e, moved_wal));
  free(only); free(only_wal); free(moved); free(moved_wal); free(path_in_a_t3);
  /* Free space is the base's (it has some); remove_tree empties both. */
  uint64_t avail = 0, total = 0;
  TU_OK(env_free_space(e, t2, &avail, &total));
  CU_ASSERT_TRUE(total > 0);
  write_file(e, wal2, ENV_TRUNCATE, "again");
  TU_OK(env_remove_tree(e, t2));
  CU_ASSERT_FALSE(env_exists(e, t2));
  char *t2b = path_in(b, "t/2");
  CU_ASSERT_FALSE(env_exists(px, t2b));
  /* A picked file's lock is taken in alt, and unlocked there. */
  char *lk = path_in(a, "t/2/wal-lock"), *lk_b = path_in(b, "t/2/wal-lock");
  int fd = -1;
  TU_OK(env_mkdirs(e, t2));
  TU_OK(env_lock(e, lk, &fd));
  CU_ASSERT_TRUE(env_exists(px, lk_b));
  CU_ASSERT_FALSE(env_exists(px, lk));
  int fd2 = -1;
  mica_err *lerr = env_lock(px, lk_b, &fd2);
  CU_ASSERT_PTR_NOT_NULL(lerr); /* held */
  err_free(lerr);
  env_unlock(e, fd);
  TU_OK(env_lock(px, lk_b, &fd2)); /* released */
  env_unlock(px, fd2);
  free(lk);
  free(lk_b);
  /* A path outside the root is the base's, whatever its name. */
  char *outside = path_in(b, "wal-9.log");
  write_file(e, outside, ENV_TRUNCATE, "x");
  CU_ASSERT_FALSE(env_appends_in_place(e, outside));
  env_route_free(e);
  env_fault_free(base);
  free(a); free(b); free(root); free(t1); free(sst); free(wal); free(wal_b);
  free(sst_b); free(t); free(t2); free(wal2); free(sst2); free(wal3);
  free(t2b); free(outside);
}

static CU_TestInfo posix_tests[] = {
    {"write, read, sizes, modes", test_write_read},
    {"large reads and writes", test_large_io},
    {"missing files", test_missing},
    {"full device", test_disk_full_posix},
    {"free space", test_free_space},
    {"directories, list, rename, remove", test_dirs},
    {"remove_tree racing another remover", test_remove_tree_concurrent},
    {"read_file and write_file_atomic", test_whole_files},
    {"lock against another process", test_lock},
    {"clocks", test_clocks},
    {"preallocate", test_preallocate},
    {"read-only maps", test_map},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo fault_tests[] = {
    {"nth failures", test_fault_nth},
    {"disk full", test_fault_disk_full},
    {"crash", test_fault_crash},
    {"preallocate: failures and crash", test_fault_preallocate},
    {"crash during concurrent appends and syncs", test_fault_crash_concurrent},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo route_tests[] = {
    {"two trees as one", test_route},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) {
  tu_add_suite("env posix", posix_tests);
  tu_add_suite("env fault", fault_tests);
  tu_add_suite("env route", route_tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
