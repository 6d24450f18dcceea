/* s3proxy: the fault-injecting, signature-checking S3 proxy
 * (tests/common/s3_proxy.js) in front of the test program's s3rver
 * (s3server.h), one per test program.
 *
 * The S3 env tests (tests/common/s3_harness.h) send every request through
 * it; a cluster started with cl_options.s3_proxy gives its processes the
 * proxy as their S3 endpoint, so a test can make S3 fail under a real
 * cluster (th_s3_fault) while it reads the bucket directly. The proxy
 * exits with the test process (PR_SET_PDEATHSIG), even one killed by a
 * timeout.
 *
 * Thread-safety: th_s3_proxy_start from the main thread; the control
 * calls from any thread. */
#ifndef MICA_TESTS_HARNESS_S3PROXY_H
#define MICA_TESTS_HARNESS_S3PROXY_H

#include "common/slice.h"
#include "common/err.h"

/* Starts s3rver (th_s3_start) and the proxy once per process; *endpoint
 * ("http://127.0.0.1:PORT") and *port stay valid until exit. Either may be
 * NULL. */
mica_err *th_s3_proxy_start(const char **endpoint, int *port);

/* `method` /__proxy/`what` (s3_proxy.js lists them); the answer's body,
 * NUL-terminated, in *out when out is not NULL (caller frees). The error
 * names the request and the status when it was not 200. */
mica_err *th_s3_proxy_ctl(const char *method, const char *what, buf *out);

/* Arms a fault: `spec` is the query of /__proxy/fault, e.g.
 * "kind=503&count=5&method=PUT&match=/tablets/". */
mica_err *th_s3_fault(const char *spec);

/* Drops every pending fault. */
mica_err *th_s3_faults_clear(void);

#endif
