/* maction: the master's action loop thread (maction.c), started and
 * stopped by the life cycle (mserver.c).
 * Thread-safety: start and stop from the life cycle's thread. */
#ifndef MICA_MASTER_SERVER_MACTION_H
#define MICA_MASTER_SERVER_MACTION_H

#include "master/server/msrv_int.h"

/* Starts the loop. Stop waits for the thread, which cancels its calls in
 * flight first. */
mica_err *msrv_loop_start(msrv *s);
void msrv_loop_stop(msrv *s);

#endif
