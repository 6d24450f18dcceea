/* mzk_standby: the Master service as a standby master serves it.
 *
 * A standby holds no cluster state and must change nothing, so it answers
 * every call of the Master service with Status NOT_ACTIVE_MASTER and a
 * message that names the active master (its RPC address, epoch and HTTP
 * address, as `reader` last saw them in ZooKeeper), or says that none is
 * active yet. Callers re-route without guessing: the code says "ask
 * ZooKeeper or the named master", the message says who that is.
 *
 * Thread-safety: start and stop from one thread; calls are answered on the
 * RPC module's threads. */
#ifndef MICA_MASTER_ZK_MZK_STANDBY_H
#define MICA_MASTER_ZK_MZK_STANDBY_H

#include "common/err.h"
#include "master/zk/mzk.h"

typedef struct mzk_standby mzk_standby;

/* Binds `listen` ("host:port"; NULL = "127.0.0.1:0") and starts answering.
 * `reader` must outlive the standby. UNAVAILABLE when the address cannot be
 * bound. Caller stops with mzk_standby_stop(). */
mica_err *mzk_standby_start(const char *listen, mzk_reader *reader,
                            mzk_standby **out);

/* The bound "host:port"; valid until mzk_standby_stop. */
const char *mzk_standby_address(const mzk_standby *s);

/* Ends the calls in progress, releases the address and frees `s`. Accepts
 * NULL. */
void mzk_standby_stop(mzk_standby *s);

#endif
