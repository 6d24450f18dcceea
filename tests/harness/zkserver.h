/* zkserver: a real ZooKeeper for a test program, run by tools/zk-test-server
 * (Debian's zookeeper package) through th_run (proc.h).
 *
 * A suite's setup starts one (standalone or a 3-node ensemble on loopback,
 * free ports, a temp directory) and its cleanup stops it; tests may stop and
 * restart single servers. The script's watchdog stops every server and
 * removes the directory when the test program exits, even by a crash, so no
 * Java process outlives a test.
 *
 * Thread-safety: main-thread only. */
#ifndef MICA_TESTS_HARNESS_ZKSERVER_H
#define MICA_TESTS_HARNESS_ZKSERVER_H

#include "common/err.h"

typedef struct zks zks;

/* Starts `nodes` servers (1, or 3 for an ensemble). Caller frees with
 * zks_destroy(). */
mica_err *zks_start(int nodes, zks **out);

/* "127.0.0.1:P1[,...]"; valid until zks_destroy. */
const char *zks_connect(zks *z);

/* Stops server `node` (1-based), or all servers for 0; data is kept. */
mica_err *zks_stop(zks *z, int node);

/* Starts server `node` again (or every server for 0) and waits until the
 * stopped ones serve. */
mica_err *zks_restart(zks *z, int node);

/* Stops everything and removes the directory. Accepts NULL. */
void zks_destroy(zks *z);

#endif
