/* mzk_int: what the elector and the reader share inside master/zk.
 *
 * Both own one ZooKeeper handle and one thread that makes every synchronous
 * ZooKeeper call; ZooKeeper's watchers only record what happened and wake
 * that thread (a synchronous call from the completion thread would wait for
 * itself). Paths here are absolute: the chroot is prepended by mzk, not by
 * the C client, so that mzk can create the chroot itself.
 *
 * Thread-safety: the functions are pure or act only on their arguments. */
#ifndef MICA_MASTER_ZK_MZK_INT_H
#define MICA_MASTER_ZK_MZK_INT_H

#ifndef THREADED
#define THREADED /* the synchronous API of libzookeeper_mt */
#endif
#include <pthread.h>
#include <zookeeper/zookeeper.h>

#include "master/zk/mzk.h"

#define MZK_RECORD_MAGIC "mica-active-master 1"

/* chroot + suffix ("/master/epoch"); caller frees with free(). NULL when out
 * of memory. */
char *mzk_path(const char *chroot, const char *suffix);

/* Creates every missing component of the absolute `path` as an empty
 * persistent znode. Returns a ZooKeeper code (ZOK when all exist). */
int mzk_ensure_path(zhandle_t *zh, const char *path);

/* The record of mzk.h as text into buf (n bytes); its length, or -1 when it
 * does not fit. */
int mzk_record_format(const mzk_master *m, char *buf, size_t n);

/* Parses a record; INVALID_ARGUMENT naming the first bad line. */
mica_err *mzk_record_parse(const char *data, int len, mzk_master *m);

#define MZK_CAND_MAGIC "mica-candidate 1"

/* A candidate's record (mzk.h, mzk_member) as text into buf; its length, or
 * -1 when it does not fit. */
int mzk_cand_format(const mzk_member *m, char *buf, size_t n);

/* Parses a candidate's record, or a bare "host:port" (earlier versions);
 * INVALID_ARGUMENT naming what is wrong. */
mica_err *mzk_cand_parse(const char *data, int len, mzk_member *m);

/* A condition variable on the monotonic clock, and a wait on it until the
 * monotonic microsecond `deadline_us` (env_now_micros of env_posix). */
void mzk_cond_init_mono(pthread_cond_t *c);
void mzk_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu,
                         uint64_t deadline_us);

/* ZooKeeper's own log goes to stderr at WARN unless MICA_ZK_LOG_LEVEL
 * (error, warn, info, debug) says otherwise; set once per process. */
void mzk_setup_client_log(void);

/* The log callback given to every handle (zoo_set_log_callback): ZooKeeper's
 * lines go to Mica's log, rate-limited. */
void mzk_client_log(const char *message);

#endif
