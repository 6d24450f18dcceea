/* mzk_locate: where is the active master? For the processes that call the
 * Master service (tablet servers, libmica, the CLI).
 *
 * A master specification is one of
 *   zk://HOST:PORT[,HOST:PORT...][/chroot]   the active master as published
 *                                            in ZooKeeper (docs/ha.md)
 *   HOST:PORT[,HOST:PORT...]                 candidate masters, tried in turn
 *   HOST:PORT                                one master (as before)
 *
 * The locator names the address to call now (mzk_locator_current). When a
 * call fails the caller reports it (mzk_locator_failed): a standby's
 * NOT_ACTIVE_MASTER answer names the active master ("... the active master
 * is HOST:PORT ..."), which is tried next; otherwise a list moves on to its
 * next address, and ZooKeeper's record is followed as it changes (the
 * reader's watch). A failed call is never retried here: the caller decides.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef MICA_MASTER_ZK_MZK_LOCATE_H
#define MICA_MASTER_ZK_MZK_LOCATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "master/zk/mzk.h"

typedef struct mzk_locator mzk_locator;

/* Parses `spec` (above). INVALID_ARGUMENT naming what is wrong: an empty
 * spec or element, an address without a numeric port in 1..65535, a bad
 * zk:// connect string. `session_timeout_ms` (0 = 10000) is the ZooKeeper
 * session of a zk:// spec. Caller closes with mzk_locator_close(). */
mica_err *mzk_locator_open(const char *spec, int session_timeout_ms,
                           mzk_locator **out);

/* True when `spec` names more than one possible master (a list or zk://):
 * then the active one can change while the caller runs. */
bool mzk_spec_is_ha(const char *spec);

/* The address to call now, copied to `addr` (MZK_ADDR_MAX bytes). false
 * when none is known (zk:// and no master active, or ZooKeeper not reached
 * yet); the caller waits and asks again. */
bool mzk_locator_current(mzk_locator *l, char *addr, size_t n);

/* A call to `addr` failed with `err` (transport or Status): choose what
 * mzk_locator_current names next. A failure of an address that is no
 * longer the current one changes nothing. */
void mzk_locator_failed(mzk_locator *l, const char *addr, const mica_err *err);

/* True for the errors after which another master may answer: UNAVAILABLE,
 * DEADLINE_EXCEEDED, NOT_ACTIVE_MASTER, STALE_MASTER. */
bool mzk_locator_should_switch(int code);

/* The specification, for messages. */
const char *mzk_locator_spec(const mzk_locator *l);

/* Accepts NULL. */
void mzk_locator_close(mzk_locator *l);

#endif
