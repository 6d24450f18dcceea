/* testutil: what every CUnit suite in Mica shares.
 *
 * - tu_main() runs the registered suites with CUnit's basic runner and
 *   exits non-zero when any assertion failed, so ctest sees failures.
 * - tu_tmpdir() makes a fresh directory under $TMPDIR (or /tmp) that is
 *   removed at exit unless MICA_KEEP_TMP is set.
 * - tu_rand*() is a seeded PRNG; the seed comes from MICA_TEST_SEED or the
 *   clock and is printed, so a failing random run can be repeated.
 * - TU_OK(call) asserts that a mica_err-returning call succeeded, printing
 *   the error's message when it did not.
 *
 * Thread-safety: tu_rand is per-thread state; the rest is main-thread only. */
#ifndef MICA_TESTS_TESTUTIL_H
#define MICA_TESTS_TESTUTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

/* `add_suites` registers suites with CU_add_suite/CU_add_test. */
int tu_main(int argc, char **argv, void (*add_suites)(void));

/* `fn` runs once at the end of tu_main when a test failed, before the
 * registry is cleaned up (the cluster harness prints the process logs of
 * clusters a fatal assertion left running). One function; a later call
 * replaces it. */
void tu_on_failure(void (*fn)(void));

/* Convenience: a suite named `name` with the NULL-terminated tests. */
void tu_add_suite(const char *name, const CU_TestInfo *tests);

/* A new empty directory; the string is valid until exit. */
const char *tu_tmpdir(void);

/* Creates a new empty file named `prefix` plus a unique suffix inside one
 * per-process tu_tmpdir() (so under $TMPDIR, and removed at exit), writes
 * its path to `path` (`n` bytes) and returns an open read/write descriptor,
 * or -1 with errno set. */
int tu_mkstemp(const char *prefix, char *path, size_t n);

uint64_t tu_rand(void);
/* Uniform in [0, n). */
uint64_t tu_rand_below(uint64_t n);
void tu_rand_bytes(void *dst, size_t n);
/* Re-seeds this thread's generator. */
void tu_rand_seed(uint64_t seed);

/* Asserts `e` is NULL; otherwise prints it, frees it and fails. */
#define TU_OK(call)                                                        \
  do {                                                                     \
    mica_err *tu_e_ = (call);                                              \
    if (tu_e_ != NULL) {                                                   \
      fprintf(stderr, "\n%s:%d: %s -> %s: %s\n", __FILE__, __LINE__,       \
              #call, mica_code_name(err_code(tu_e_)), err_msg(tu_e_));     \
      err_free(tu_e_);                                                     \
      CU_FAIL_FATAL(#call " failed");                                      \
    }                                                                      \
  } while (0)

/* Asserts `call` fails with `code`; frees the error. */
#define TU_ERR(call, code)                                                 \
  do {                                                                     \
    mica_err *tu_e_ = (call);                                              \
    if (err_code(tu_e_) != (code))                                         \
      fprintf(stderr, "\n%s:%d: %s -> %s (%s), want %s\n", __FILE__,       \
              __LINE__, #call, mica_code_name(err_code(tu_e_)),            \
              err_msg(tu_e_), mica_code_name(code));                       \
    CU_ASSERT_EQUAL(err_code(tu_e_), (code));                              \
    err_free(tu_e_);                                                       \
  } while (0)

#endif
