/* testutil: CUnit runner, temporary directories and a seeded PRNG. */
#include "tests/harness/testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *dirs[256];
static int ndirs;
static uint64_t base_seed;
static _Thread_local uint64_t rng_state;
static _Thread_local int rng_seeded;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void cleanup(void) {
  for (int i = 0; i < ndirs; i++) {
    if (getenv("MICA_KEEP_TMP") == NULL)
      nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
      fprintf(stderr, "kept %s\n", dirs[i]);
    free(dirs[i]);
  }
}

const char *tu_tmpdir(void) {
  const char *t = getenv("TMPDIR");
  char path[4096];
  snprintf(path, sizeof(path), "%s/mica-test-XXXXXX", t ? t : "/tmp");
  if (mkdtemp(path) == NULL || ndirs == 256) {
    perror("tu_tmpdir");
    abort();
  }
  if (ndirs == 0) atexit(cleanup);
  dirs[ndirs] = strdup(path);
  return dirs[ndirs++];
}

int tu_mkstemp(const char *prefix, char *path, size_t n) {
  static const char *dir;
  if (dir == NULL) dir = tu_tmpdir();
  if ((size_t)snprintf(path, n, "%s/%sXXXXXX", dir, prefix) >= n) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return mkstemp(path);
}

void tu_rand_seed(uint64_t seed) {
  rng_state = seed;
  rng_seeded = 1;
}

uint64_t tu_rand(void) {
  if (!rng_seeded) tu_rand_seed(base_seed ^ (uint64_t)(uintptr_t)&rng_state);
  /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t tu_rand_below(uint64_t n) { return n ? tu_rand() % n : 0; }

void tu_rand_bytes(void *dst, size_t n) {
  uint8_t *p = dst;
  while (n) {
    uint64_t r = tu_rand();
    size_t k = n < 8 ? n : 8;
    memcpy(p, &r, k);
    p += k;
    n -= k;
  }
}

void tu_add_suite(const char *name, const CU_TestInfo *tests) {
  CU_pSuite s = CU_add_suite(name, NULL, NULL);
  for (const CU_TestInfo *t = tests; t->pName; t++) CU_add_test(s, t->pName, t->pTestFunc);
}

/* True when `name` is one of the comma-separated names of `list`. */
static bool name_listed(const char *list, const char *name) {
  size_t nl = strlen(name);
  for (const char *p = list;;) {
    size_t len = strcspn(p, ",");
    if (len == nl && strncmp(p, name, nl) == 0) return true;
    if (p[len] == '\0') return false;
    p += len + 1;
  }
}

static void (*on_failure)(void);

void tu_on_failure(void (*fn)(void)) { on_failure = fn; }

int tu_main(int argc, char **argv, void (*add_suites)(void)) {
  const char *seed = getenv("MICA_TEST_SEED");
  base_seed = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL);
  fprintf(stderr, "%s: MICA_TEST_SEED=%llu\n", argc ? argv[0] : "test",
          (unsigned long long)base_seed);
  tu_rand_seed(base_seed);
  if (CU_initialize_registry() != CUE_SUCCESS) return 2;
  add_suites();
  /* MICA_TEST_ONLY=NAME[,NAME...] runs only the tests so named (ctest's
   * entries that run one case of a program, or reruns under TLS or S3
   * that repeat some cases, docs/testing.md); a run that keeps no test
   * fails. */
  const char *only = getenv("MICA_TEST_ONLY");
  if (only != NULL && only[0] != '\0') {
    unsigned kept = 0;
    for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext)
      for (CU_pTest t = s->pTest; t; t = t->pNext) {
        bool on = name_listed(only, t->pName);
        CU_set_test_active(t, on ? CU_TRUE : CU_FALSE);
        kept += on;
      }
    fprintf(stderr, "MICA_TEST_ONLY=%s: %u test%s\n", only, kept,
            kept == 1 ? "" : "s");
    CU_set_fail_on_inactive(CU_FALSE);
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  /* A suite whose setup failed ran none of its tests: that is a failure,
   * not a pass with fewer tests. */
  unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                    CU_get_number_of_suites_failed();
  if (CU_get_number_of_tests_run() == 0) failed++;
  if (failed && on_failure) on_failure();
  CU_cleanup_registry();
  return failed ? 1 : 0;
}
