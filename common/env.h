/* env: every file and clock access Mica makes goes through here.
 *
 * Nothing else in the project calls open/read/write/fsync/rename/unlink or
 * reads a clock directly. That single seam is what lets tests fail the Nth
 * write or sync, and simulate a machine crash that loses whatever was not
 * yet synced (env_fault_*), without touching the code under test.
 *
 * An env is a table of operations. env_posix() is the real one; a fault
 * env wraps another env and passes calls through until told to fail.
 *
 * Files are either append-only writers (WAL segments, SSTables being built,
 * manifests) or random-access readers (SSTables, WAL replay). Files are
 * immutable once closed, except WAL segments, which are only ever appended.
 *
 * Errors name the path and the operation ("open /d/t1/000007.sst: No such
 * file or directory"); a missing file is MICA_NOT_FOUND, a full disk
 * MICA_RESOURCE_EXHAUSTED, other failures MICA_IO_ERROR.
 *
 * Thread-safety: an env and its functions may be used from any thread. A
 * reader may be used by many threads at once (reads are positional). A
 * writer must be used by one thread at a time. */
#ifndef MICA_COMMON_ENV_H
#define MICA_COMMON_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"

typedef struct env env;
typedef struct env_reader env_reader;
typedef struct env_writer env_writer;

/* The process-wide POSIX env. Never freed. */
env *env_posix(void);

/* ---- readers ---- */

/* Opens `path` for positional reads. Caller closes with env_reader_close(). */
mica_err *env_open_reader(env *e, const char *path, env_reader **out);

/* Reads up to `n` bytes at `offset` into `dst`; *got is the count read,
 * short only at end of file. */
mica_err *env_read(env_reader *r, uint64_t offset, size_t n, void *dst,
                   size_t *got);

/* Size of the file when it was opened. */
uint64_t env_reader_size(const env_reader *r);
/* Maps the whole file (env_reader_size bytes) read-only: on success *data
 * stays valid until env_reader_close(r), and reading it costs no system
 * call and no copy once its pages are in memory. Only for files nobody
 * truncates or rewrites while they are open (SSTables): touching bytes cut
 * off the file kills the process (SIGBUS). Call at most once per reader,
 * before other threads use it. Answers NOT_SUPPORTED, and the caller uses
 * env_read, when the env does not map files (the fault env never does, so
 * every byte read through it passes its read faults and crash checks), for
 * an empty file, or when the process already holds ENV_MAX_MAPS maps
 * (each costs an entry in the kernel's per-process map table, which is
 * bounded). */
#define ENV_MAX_MAPS 4096
mica_err *env_reader_map(env_reader *r, const uint8_t **data);
const char *env_reader_path(const env_reader *r);
void env_reader_close(env_reader *r); /* accepts NULL */

/* ---- writers ---- */

enum {
  ENV_CREATE_NEW = 1, /* fail with ALREADY_EXISTS if the file exists */
  ENV_TRUNCATE = 2,   /* create or truncate */
  ENV_APPEND = 3      /* create or append to the end */
};

/* Opens `path` for appending, per `mode` above. Caller closes with
 * env_writer_close(). */
mica_err *env_open_writer(env *e, const char *path, int mode, env_writer **out);
mica_err *env_append(env_writer *w, const void *data, size_t n);
/* Makes every byte appended so far durable (fdatasync). */
mica_err *env_sync(env_writer *w);
/* Bytes in the file: its size at open plus everything appended. */
uint64_t env_writer_size(const env_writer *w);
/* Allocates disk blocks so that the file is at least `bytes` long
 * (fallocate(2) mode 0): the part past the bytes appended so far reads as
 * zeros, and later appends overwrite it in place instead of growing the
 * file, so a sync after them records no new size or block allocation
 * (much cheaper fdatasync on ext4/xfs). Never shrinks a file; does not
 * change env_writer_size (appends still land at that offset), but readers
 * and env_file_size see the longer file. Writers opened with ENV_APPEND
 * are refused (INVALID_ARGUMENT: their appends go to the end of the file).
 * A file system without fallocate answers NOT_SUPPORTED; a full disk
 * RESOURCE_EXHAUSTED. On failure part of the range may be allocated (and
 * the file longer), as after fallocate(2). The new length is durable after
 * the next env_sync of this writer. */
mica_err *env_preallocate(env_writer *w, uint64_t bytes);
const char *env_writer_path(const env_writer *w);
/* Closes without syncing; returns the close error if any. Accepts NULL. */
mica_err *env_writer_close(env_writer *w);

/* ---- whole files and directories ---- */

mica_err *env_rename(env *e, const char *from, const char *to);
mica_err *env_remove(env *e, const char *path); /* NOT_FOUND if absent */
/* Removes `path` if it is there; succeeds if it is absent. On S3 one
 * DELETE, where env_remove needs a HEAD first to report NOT_FOUND. */
mica_err *env_remove_if_present(env *e, const char *path);
/* env_remove_if_present of each of the `n` paths, in as few requests as
 * the env allows (S3: one multi-object delete, POST ?delete, per 1000
 * keys of one bucket; elsewhere one removal each). Stops at the first
 * error and returns it; paths before it (or in its request) may be
 * removed. */
mica_err *env_remove_many(env *e, const char *const *paths, size_t n);
/* Creates `path` and missing parents; succeeds if it exists. */
mica_err *env_mkdirs(env *e, const char *path);
/* Removes `path` and everything under it; succeeds if it is absent, also
 * when it (or part of it) vanishes meanwhile (a concurrent remover). */
mica_err *env_remove_tree(env *e, const char *path);
/* Makes the directory's entries (creates, renames, removes) durable. */
mica_err *env_sync_dir(env *e, const char *path);
bool env_exists(env *e, const char *path);
mica_err *env_file_size(env *e, const char *path, uint64_t *size);
/* Space of the file system holding `path`: *avail the bytes an
 * unprivileged writer may still use (statvfs f_bavail), *total its size.
 * Either pointer may be NULL. The fault env reports 0 available while its
 * disk is "full" (env_fault_set_disk_full), else the base env's figures. */
mica_err *env_free_space(env *e, const char *path, uint64_t *avail,
                         uint64_t *total);
/* Names in `dir` (no "." or ".."), in no particular order. Caller frees
 * with env_free_names(). */
mica_err *env_list(env *e, const char *dir, char ***names, size_t *n);
void env_free_names(char **names, size_t n);
/* Appends the whole of a small file to `out`. A file longer than
 * `max_bytes` is CORRUPTION (callers bound files they wrote themselves);
 * `out` is unchanged on failure. Caller frees out->data (buf_free). */
mica_err *env_read_file(env *e, const char *path, size_t max_bytes, buf *out);
/* env_read_file in as few requests as the env can: on S3 one GET (no
 * HEAD), for objects read whole once (the commit log's group objects).
 * Same contract; safe to call from several threads at once. */
mica_err *env_read_object(env *e, const char *path, size_t max_bytes,
                          buf *out);
/* Writes `data` to `path` atomically and durably: temp file, sync, rename,
 * sync directory. */
mica_err *env_write_file_atomic(env *e, const char *path, slice data);
/* env_write_file_atomic for a name that must never be overwritten (a
 * manifest generation, a metadata log part: names carrying the writer's
 * epoch and a generation): ALREADY_EXISTS when `path` already holds
 * different bytes. On object storage the check is the server's
 * (If-None-Match: *), atomic with the write where the server supports
 * conditional writes (an earlier attempt of this write that landed, a
 * retry after a lost answer, is told apart by its bytes); elsewhere
 * it is a check before the write, which the epoch rule backs
 * (docs/storage.md, "Conditional writes"). Either way a file already
 * holding exactly `data` counts as written. */
mica_err *env_write_file_new(env *e, const char *path, slice data);

/* False when a writer of `path` cannot append in place: each env_sync
 * uploads the whole file again (object storage, docs/storage.md), so a
 * log that grows by small synced appends costs quadratic bytes, and an
 * earlier upload delayed in the network could land after a later one.
 * Logs on such an env write each synced batch as a new file instead
 * (master/metalog.c). True for POSIX. */
bool env_appends_in_place(env *e, const char *path);

/* True when `dir` exists exactly while some file is under it, as in an
 * object store (S3's key prefixes): the first file written under it
 * creates it in the same atomic step, env_mkdirs does nothing and there
 * is no empty directory. So writing one file there makes the directory
 * appear with that file, which on POSIX takes a temporary directory and
 * a rename. False for POSIX. */
bool env_dirs_implicit(env *e, const char *dir);

/* Takes an exclusive advisory lock on `path` (created if absent), held until
 * env_unlock or process exit; UNAVAILABLE if another process holds it. */
mica_err *env_lock(env *e, const char *path, int *lock_fd);
void env_unlock(env *e, int lock_fd);

/* ---- time ---- */

/* Monotonic microseconds: for leases, deadlines and durations. */
uint64_t env_now_micros(env *e);
/* Wall-clock microseconds since the epoch: for display and event times. */
uint64_t env_wall_micros(env *e);
void env_sleep_micros(env *e, uint64_t micros);

/* ---- local-only reads ---- */

/* Local-only mode, per thread: while it is on, an env whose files live on
 * a remote store (env_s3) refuses any request it would send over the
 * network, before sending it, with UNAVAILABLE, and marks the thread's
 * mode as refused; whatever is on this machine (its disk cache, local
 * files) is read as usual. A caller on a thread that must not wait for
 * the network (an RPC polling thread) tries a read in this mode and, if
 * it was refused, discards everything the try produced and runs the read
 * again where it may wait (tabletserver/server/ts_data.c). Refused reads
 * leave nothing behind: nothing fetched is cached, and a disk-cache miss
 * is not counted (the retry counts it). Modes do not nest. */
void env_local_only_begin(void);
/* Ends the mode; true if any request was refused since it began. */
bool env_local_only_end(void);
/* Whether a request was refused since the mode began (it stays on). */
bool env_local_only_refused(void);
/* For envs: whether the calling thread is in local-only mode. */
bool env_local_only(void);
/* For envs: marks the mode refused and returns the UNAVAILABLE error
 * naming `what` (the request not sent). */
mica_err *env_local_only_refuse(const char *what);

/* ---- fault injection (tests) ---- */

typedef struct env_fault env_fault;

enum env_op {
  ENV_OP_READ,
  ENV_OP_WRITE, /* append */
  ENV_OP_SYNC,  /* env_sync and env_sync_dir */
  ENV_OP_RENAME,
  ENV_OP_OPEN,  /* open for write (creating files) */
  ENV_OP_REMOVE, /* env_remove and env_remove_tree */
  ENV_OP_PREALLOCATE, /* env_preallocate */
  ENV_OP_COUNT_
};

/* A fault env over `base`. It behaves exactly like `base` until armed.
 * Caller frees with env_fault_free() after every file from it is closed. */
env_fault *env_fault_new(env *base);
void env_fault_free(env_fault *f);
/* The env to hand to the code under test. */
env *env_fault_env(env_fault *f);

/* The `nth` (1-based) call of `op` from now on fails with IO_ERROR, and so
 * does every later one if `sticky`. 0 disarms. */
void env_fault_fail_nth(env_fault *f, enum env_op op, uint64_t nth, bool sticky);
/* Appends and preallocations fail with RESOURCE_EXHAUSTED ("no space
 * left") from now on, and env_free_space reports 0 bytes available, until
 * called again with false. */
void env_fault_set_disk_full(env_fault *f, bool full);
/* From now on env_appends_in_place answers false (as an object store's
 * env does), so tests can run the object-store code paths of the logs on
 * a POSIX directory. */
void env_fault_set_no_append(env_fault *f, bool on);
/* Calls of `op` seen so far (counts failed calls too). */
uint64_t env_fault_count(env_fault *f, enum env_op op);

/* Simulates power loss: every file written through this env is cut back to
 * the length it had at its last successful sync and then, if a preallocation
 * was made durable by that sync (or an earlier one), extended with zeros to
 * the preallocated length, as fallocate(2) space survives (files never synced lose
 * everything; files created since their directory's last sync are removed;
 * renames count as durable once they return, the ordering ext4 gives and
 * that Mica's writers rely on only after a directory sync anyway), and every
 * open writer and later call through this env fails with IO_ERROR. Afterwards the code under test is
 * closed and reopened on a fresh env over the same directory. */
void env_fault_crash(env_fault *f);

#endif
