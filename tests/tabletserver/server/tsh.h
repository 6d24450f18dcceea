/* tsh: what the tablet server integration tests share.
 *
 * tsh_start() runs a real mica-tserver (from $MICA_BIN_DIR) on
 * 127.0.0.1:0 over a given data root, as a harness node
 * (tests/harness/node.h: its address file waited for, its log in the data
 * root as tserver.log, killed at exit whatever ends the test), and connects
 * a channel. The small wrappers turn a call's transport error or its
 * response Status into one mica_err, so tests can use TU_OK / TU_ERR.
 *
 * Thread-safety: tsh_start/tsh_stop on the main thread; the wrappers from
 * any thread (channels are thread-safe). */
#ifndef MICA_TESTS_TSERVER_TSH_H
#define MICA_TESTS_TSERVER_TSH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/slice.h"
#include "proto/rpc.h"
#include "tests/harness/member.h"
#include "tests/harness/node.h"

typedef struct tsh_proc {
  th_node node;
  char addr[64];
  rpc_channel *ch;
} tsh_proc;

/* Starts mica-tserver --data-dir `dir` plus the NULL-terminated `extra`
 * flags (may be NULL). */
mica_err *tsh_start(const char *dir, const char *const *extra, tsh_proc *p);
/* Sends `sig`, waits for the exit (SIGKILL after 60 s), frees the channel
 * and the node. Returns the exit status as waitpid reports it (-1 if the
 * process was gone). */
int tsh_stop(tsh_proc *p, int sig);
/* True when the build has AddressSanitizer (tests scale their sizes). */
static inline bool tsh_sanitized(void) { return th_sanitized(); }

typedef struct tsh_ref {
  uint64_t id, re, ae;
} tsh_ref;

/* OpenTablet of [start, end) (NULL = unbounded) with the given epochs. */
mica_err *tsh_open(rpc_channel *ch, tsh_ref r, const char *start,
                   const char *end);
mica_err *tsh_close(rpc_channel *ch, tsh_ref r);
mica_err *tsh_put(rpc_channel *ch, tsh_ref r, slice key, slice value);
mica_err *tsh_del(rpc_channel *ch, tsh_ref r, slice key);
/* Get: `val` receives the value; NOT_FOUND when absent. */
mica_err *tsh_get(rpc_channel *ch, tsh_ref r, slice key, buf *val);
/* Puts n keys "<prefix><i, 8 digits>" -> value of `vlen` bytes, in batches
 * of `per_batch`. */
mica_err *tsh_fill(rpc_channel *ch, tsh_ref r, const char *prefix,
                   uint64_t n, size_t vlen, size_t per_batch);

/* `transport` when not NULL (taken), else the error `st` carries (NULL for
 * OK). */
mica_err *tsh_status(mica_err *transport, const rpc_status *st);

static inline rpc_tablet_ref tsh_pb_ref(tsh_ref r) {
  rpc_tablet_ref t = {0};
  t.tablet_id = r.id;
  t.range_epoch = r.re;
  t.assign_epoch = r.ae;
  return t;
}

static inline slice tsh_bin(slice s) {
  slice b = s;
  return b;
}

#endif
