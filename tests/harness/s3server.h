/* s3server: one real S3 server (s3rver, tools/s3-test-server) per test
 * program, on loopback, with the bucket TH_S3_BUCKET.
 *
 * th_s3_start() starts it the first time it is called and returns the
 * same endpoint afterwards; the server is stopped at exit, and also exits
 * by itself once the test process is gone (MICA_S3_OWNER_PID), so a test
 * killed by a timeout leaves nothing behind. It needs node, and npm the
 * first time (tools/install-deps installs s3rver). s3rver accepts any
 * signature from access key S3RVER; docs/storage.md says what it checks.
 *
 * The cluster harness runs clusters on it when MICA_TEST_S3=1
 * (cluster.h); the S3 env tests put their signature-checking proxy in
 * front of it (tests/common/s3_harness.h).
 *
 * Thread-safety: main thread only. */
#ifndef MICA_TESTS_HARNESS_S3SERVER_H
#define MICA_TESTS_HARNESS_S3SERVER_H

#include "common/err.h"

#define TH_S3_BUCKET "mica-test"
#define TH_S3_KEY "S3RVER" /* access key and secret s3rver accepts */

/* Starts the server once per process; *endpoint ("http://127.0.0.1:PORT")
 * stays valid until exit. The error says why it could not start. */
mica_err *th_s3_start(const char **endpoint);

/* Sets AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY in this process's environment (every child it
 * starts inherits them) for the server th_s3_start() started. */
mica_err *th_s3_export_env(void);

/* A fresh "s3://mica-test/<unique>" root; caller frees. */
char *th_s3_new_root(const char *what);

#endif
