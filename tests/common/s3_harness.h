/* s3_harness: what the S3 test programs share.
 *
 * One s3rver (tools/s3-test-server, bucket S3H_BUCKET) and one
 * fault-injecting, signature-checking proxy (s3_proxy.js) per test
 * program, started by the first suite setup that calls s3h_setup() and
 * stopped at exit (both also exit by themselves if the program is
 * killed). Every env made here talks to the proxy, so every request is
 * checked for a valid SigV4 signature and x-amz-content-sha256 (s3rver
 * itself checks neither), and the proxy's log lets tests count requests.
 *
 * Thread-safety: main thread only, except the envs themselves. */
#ifndef MICA_TESTS_COMMON_S3_HARNESS_H
#define MICA_TESTS_COMMON_S3_HARNESS_H

#include <stdbool.h>

#include "common/env.h"
#include "common/s3/env_s3.h"
#include "tests/harness/testutil.h"

#define S3H_BUCKET "mica-test" /* TH_S3_BUCKET */

/* Starts the servers once and makes s3h_env (defaults: 30 s deadline)
 * and s3h_fast_env (3 s deadline of 1 s attempts, for fault tests), both
 * through the proxy. 0 on success: usable as a CUnit suite setup. */
int s3h_setup(void);
extern env *s3h_env, *s3h_fast_env;
extern char s3h_proxy_endpoint[256]; /* "http://127.0.0.1:PORT" */
extern int s3h_proxy_port;

/* `method` /__proxy/`what`; the answer's body (NUL-terminated) in `out`
 * if not NULL (caller frees with buf_free). */
void s3h_proxy_ctl(const char *method, const char *what, buf *out);
/* Arms a fault: `spec` is the query of /__proxy/fault (s3_proxy.js). */
void s3h_fault(const char *spec);
void s3h_log_reset(void);
/* The proxy's log since the last reset, one line per request; caller
 * frees. */
char *s3h_log_text(void);
/* Lines of `text` containing every one of the NULL-ended needles. */
int s3h_count_lines(const char *text, const char *const *needles);
#define S3H_COUNT(text, ...) \
  s3h_count_lines(text, (const char *const[]){__VA_ARGS__, NULL})
/* Asserts that every request so far was correctly signed. */
void s3h_assert_all_signed(void);

/* A config for the test server through the proxy (caller frees with
 * s3_config_free); `short_deadline` as s3h_fast_env. */
void s3h_config_for(s3_config *c, const char *endpoint, bool short_deadline);
void s3h_base_config(s3_config *c, const char *endpoint); /* short */

/* A fresh s3:// root for one test; caller frees. */
char *s3h_new_root(void);
/* "dir/name"; caller frees. */
char *s3h_path_in(const char *dir, const char *name);
/* Asserts `e` has `code` and a message containing `needle`; frees it. */
void s3h_expect_err(mica_err *e, int code, const char *needle);
/* Creates `path` with `data`, synced and closed. */
void s3h_write_file(env *e, const char *path, int mode, const char *data);
/* The whole file as a string, or NULL (error printed); caller frees. */
char *s3h_slurp(env *e, const char *path);
bool s3h_names_contain(char **names, size_t n, const char *want);

#endif
