/* test_install: libmica as a user outside the tree gets it.
 *
 * Installs the "libmica" component of this build into a temporary prefix
 * with `cmake --install`, checks the layout (headers, libmica.so.0 soname,
 * static archive, mica.pc, CMake package files), that the shared library
 * exports only the public mica_ API, then compiles docs/example.c with
 * `cc ... $(pkg-config --cflags --libs mica)` and runs it against a real
 * cluster, and builds it once more through find_package(Mica). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

#ifndef MICA_BUILD_DIR
#error "MICA_BUILD_DIR must name the build directory"
#endif
#ifndef MICA_SOURCE_DIR
#error "MICA_SOURCE_DIR must name the source directory"
#endif

static char g_prefix[600], g_libdir[700], g_work[512];

static bool exists(const char *dir, const char *name) {
  char p[2048];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &st) == 0;
}

/* Runs a shell command, echoing it and its output on failure. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char full[9000];
  snprintf(full, sizeof full, "(%s) >%s/sh.log 2>&1", cmd, g_work);
  int rc = system(full);
  if (rc != 0) {
    fprintf(stderr, "\n$ %s\n", cmd);
    char cat[1200];
    snprintf(cat, sizeof cat, "cat %s/sh.log >&2", g_work);
    if (system(cat) != 0) fprintf(stderr, "(no output)\n");
  }
  return rc;
}

/* Sanitizer builds put the runtime into libmica; the example must link it
 * too. */
#ifdef MICA_SANITIZE_BUILD
#define SAN_FLAGS "-fsanitize=address,undefined"
#else
#define SAN_FLAGS ""
#endif

static void test_install_layout(void) {
  snprintf(g_work, sizeof g_work, "%s", tu_tmpdir());
  snprintf(g_prefix, sizeof g_prefix, "%s/prefix", g_work);
  CU_ASSERT_EQUAL_FATAL(
      sh("cmake --install %s --component libmica --prefix %s", MICA_BUILD_DIR, g_prefix), 0);
  snprintf(g_libdir, sizeof g_libdir, "%s/lib", g_prefix);
  if (!exists(g_libdir, "pkgconfig/mica.pc"))
    snprintf(g_libdir, sizeof g_libdir, "%s/lib/x86_64-linux-gnu", g_prefix);
  CU_ASSERT(exists(g_prefix, "include/mica/mica.h"));
  CU_ASSERT(exists(g_prefix, "include/mica/status.h"));
  CU_ASSERT(exists(g_libdir, "libmica.so"));
  CU_ASSERT(exists(g_libdir, "libmica.so.0"));
  CU_ASSERT(exists(g_libdir, "libmica.so.0.1.0"));
  CU_ASSERT(exists(g_libdir, "libmica.a"));
  CU_ASSERT(exists(g_libdir, "pkgconfig/mica.pc"));
  CU_ASSERT(exists(g_libdir, "cmake/Mica/MicaConfig.cmake"));
  CU_ASSERT(exists(g_libdir, "cmake/Mica/MicaConfigVersion.cmake"));
  CU_ASSERT(exists(g_libdir, "cmake/Mica/MicaTargets.cmake"));
  CU_ASSERT_EQUAL(sh("readelf -d %s/libmica.so.0.1.0 | grep -q 'SONAME.*\\[libmica.so.0\\]'",
                     g_libdir), 0);
  /* Only the public API is exported (no rpc_, err_, protobuf symbols). */
  CU_ASSERT_EQUAL(sh("test -z \"$(nm -D --defined-only %s/libmica.so | awk '{print $3}' | "
                     "grep -v '^mica_[a-z]' | grep -v '^MICA_0$')\"",
                     g_libdir),
                  0);
  CU_ASSERT_EQUAL(sh("nm -D --defined-only %s/libmica.so | grep -q ' mica_scan_next'",
                     g_libdir),
                  0);
  /* The public header compiles on its own, as C and as C++. */
  CU_ASSERT_EQUAL(sh("echo '#include <mica/mica.h>' | cc -std=c99 -Wall -Werror -I%s/include "
                     "-x c -c -o /dev/null -",
                     g_prefix),
                  0);
  CU_ASSERT_EQUAL(sh("echo '#include <mica/mica.h>' | c++ -Wall -Werror -I%s/include "
                     "-x c++ -c -o /dev/null -",
                     g_prefix),
                  0);
}

static void test_example_pkg_config(void) {
  CU_ASSERT_FATAL(g_prefix[0] != '\0');
  CU_ASSERT_EQUAL_FATAL(
      sh("cc -Wall -Werror %s %s/docs/example.c -o %s/example "
         "$(PKG_CONFIG_PATH=%s/pkgconfig pkg-config --cflags --libs mica)",
         SAN_FLAGS, MICA_SOURCE_DIR, g_work, g_libdir),
      0);
  /* The example runs against a real cluster through the installed library. */
  cl_options o;
  cl_options_init(&o);
  o.tservers = 1;
  cluster *c = NULL;
  TU_OK(cl_start(&o, &c));
  char out[1200];
  snprintf(out, sizeof out, "%s/example.out", g_work);
  CU_ASSERT_EQUAL(sh("LD_LIBRARY_PATH=%s %s/example %s > %s", g_libdir, g_work,
                     cl_master_address(c), out),
                  0);
  CU_ASSERT_EQUAL(sh("grep -q 'apple is red' %s && grep -q 'batch applied in 2 part' %s && "
                     "grep -q 'cherry => dark red' %s && grep -q '\\\\x00\\\\xff => binary' %s",
                     out, out, out, out),
                  0);
  /* The installed binary resolves libmica from the prefix. */
  CU_ASSERT_EQUAL(sh("LD_LIBRARY_PATH=%s ldd %s/example | grep -q '%s/libmica.so.0'", g_libdir,
                     g_work, g_libdir),
                  0);
  /* A second run finds the table there (ALREADY_EXISTS is fine). */
  CU_ASSERT_EQUAL(sh("LD_LIBRARY_PATH=%s %s/example %s > %s", g_libdir, g_work,
                     cl_master_address(c), out),
                  0);
  cl_free(c);
}

static void test_example_static_and_cmake(void) {
  CU_ASSERT_FATAL(g_prefix[0] != '\0');
  /* Static: the archive holds everything of Mica; gRPC, protobuf-c and the
   * ZooKeeper C client (for zk:// masters) come from the system. */
  CU_ASSERT_EQUAL(sh("cc %s %s/docs/example.c -o %s/example-static "
                     "$(PKG_CONFIG_PATH=%s/pkgconfig pkg-config --cflags mica) "
                     "%s/libmica.a $(pkg-config --libs grpc libprotobuf-c) "
                     "-lzookeeper_mt -lpthread",
                     SAN_FLAGS, MICA_SOURCE_DIR, g_work, g_libdir, g_libdir),
                  0);
  CU_ASSERT_EQUAL(sh("! ldd %s/example-static | grep -q libmica", g_work), 0);
  /* CMake: find_package(Mica) and Mica::mica. */
  char proj[1200];
  snprintf(proj, sizeof proj, "%s/cmake-user", g_work);
  CU_ASSERT_EQUAL_FATAL(sh("mkdir -p %s && cp %s/docs/example.c %s/ && printf '%%s\\n' "
                           "'cmake_minimum_required(VERSION 3.18)' "
                           "'project(user C)' "
                           "'find_package(Mica 0.1 REQUIRED)' "
                           "'add_executable(example example.c)' "
                           "'target_compile_options(example PRIVATE %s)' "
                           "'target_link_options(example PRIVATE %s)' "
                           "'target_link_libraries(example PRIVATE Mica::mica)' "
                           "> %s/CMakeLists.txt",
                           proj, MICA_SOURCE_DIR, proj, SAN_FLAGS, SAN_FLAGS, proj),
                        0);
  CU_ASSERT_EQUAL(sh("cmake -S %s -B %s/build -DCMAKE_PREFIX_PATH=%s && "
                     "cmake --build %s/build",
                     proj, proj, g_prefix, proj),
                  0);
  CU_ASSERT(exists(proj, "build/example"));
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"install_layout", test_install_layout},
      {"example_pkg_config", test_example_pkg_config},
      {"example_static_and_cmake", test_example_static_and_cmake},
      CU_TEST_INFO_NULL};
  tu_add_suite("install", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
