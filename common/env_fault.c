/* env_fault: an env that wraps another and injects failures and crashes,
 * for tests of everything that writes files.
 *
 * Every call is counted per operation kind and forwarded to the base env
 * unless a fault is armed for it: the Nth call of a kind (once, or from
 * then on if sticky), or every append while the disk is "full" (which
 * env_free_space then reports as 0 bytes available).
 *
 * Crash model. For each file written through this env a record keeps
 *   synced_len  the length at its last successful env_sync (0 if never),
 *   synced_alloc the length env_preallocate had given it at that sync,
 *   new_file    created since its directory's last env_sync_dir.
 * env_fault_crash() removes the new files and cuts the others back to
 * synced_len, which is what survives power loss on a journaling file
 * system when data is written but not flushed; a file whose preallocation
 * was synced is then extended with zeros to synced_alloc again (fallocate
 * space and the size it sets are metadata the sync committed, while the
 * unsynced bytes written into it are lost: they read as zeros). Records are keyed by the
 * path the file currently has: a rename moves the record, and counts as
 * durable once it returns (the parenthesis in env.h), so the renamed file
 * is no longer "new". A removed file's record is dropped. Files this env
 * never opened for writing are taken to be durable and are not touched.
 * Paths are compared as strings, so callers spell a directory the same way
 * in env_sync_dir as in the files' paths (a trailing '/' is ignored).
 *
 * Truncation at crash time goes through the base env's ordinary reader and
 * writer (read the durable prefix, rewrite the file), so any env can be
 * wrapped without a truncate operation in the env table.
 *
 * After a crash every call through this env fails with IO_ERROR (exists()
 * answers false), including calls on writers and readers opened before it;
 * closing them still releases them.
 *
 * Thread-safety: one mutex guards the counters, the armed faults, the
 * records and the crashed flag; base-env calls are made without it, except
 * during env_fault_crash, which holds it throughout. A read-write lock
 * (field `io`) orders whole operations against a crash. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/env_impl.h"

typedef struct frecord {
  struct frecord *next;
  char *path;          /* current name; guarded by mu */
  uint64_t synced_len; /* guarded by mu */
  uint64_t alloc_len;  /* largest successful env_preallocate; guarded by mu */
  uint64_t synced_alloc; /* alloc_len at the last successful sync; mu */
  bool new_file;       /* guarded by mu */
  bool gone;           /* removed or renamed over; guarded by mu */
} frecord;

struct env_fault {
  struct env env; /* first: the env handed to code under test */
  env *base;
  /* Held shared by every operation from its fault decision through its
   * base-env call and bookkeeping, and exclusively by env_fault_crash, so
   * a crash never lands between an operation's check and its effect: an
   * append cannot re-extend a file the crash cut, nor a sync report
   * success for bytes the crash dropped. Writer-preferring, so a stream
   * of operations cannot hold off a crash. */
  pthread_rwlock_t io;
  pthread_mutex_t mu;
  /* Everything below is guarded by mu. */
  uint64_t count[ENV_OP_COUNT_];
  uint64_t fail_at[ENV_OP_COUNT_]; /* absolute call number; 0 = disarmed */
  bool fail_sticky[ENV_OP_COUNT_];
  bool disk_full;
  bool no_append; /* env_fault_set_no_append */
  bool crashed;
  frecord *records; /* freed only by env_fault_free: writers point at them */
};

typedef struct freader {
  struct env_reader base;
  env_reader *inner;
} freader;

typedef struct fwriter {
  struct env_writer base;
  env_writer *inner;
  frecord *rec;
} fwriter;

static const char *op_names[ENV_OP_COUNT_] = {
    [ENV_OP_READ] = "read",     [ENV_OP_WRITE] = "write",
    [ENV_OP_SYNC] = "sync",     [ENV_OP_RENAME] = "rename",
    [ENV_OP_OPEN] = "open",     [ENV_OP_REMOVE] = "remove",
    [ENV_OP_PREALLOCATE] = "preallocate",
};

static env_fault *fault_of(env *e) { return (env_fault *)e; }

static mica_err *crashed_err(const char *what, const char *path) {
  return err_new(MICA_IO_ERROR, "%s %s: env crashed (simulated power loss)",
                 what, path);
}

/* Counts a call of `op` and decides whether it fails. Returns the error
 * to report, or NULL to go ahead. Takes and drops f->mu. */
static mica_err *fault_check(env_fault *f, enum env_op op, const char *path) {
  pthread_mutex_lock(&f->mu);
  uint64_t n = ++f->count[op];
  mica_err *err = NULL;
  if (f->crashed) {
    err = crashed_err(op_names[op], path);
  } else if (f->fail_at[op] != 0 &&
             (n == f->fail_at[op] || (f->fail_sticky[op] && n > f->fail_at[op]))) {
    err = err_new(MICA_IO_ERROR, "%s %s: injected fault", op_names[op], path);
    if (!f->fail_sticky[op]) f->fail_at[op] = 0;
  } else if ((op == ENV_OP_WRITE || op == ENV_OP_PREALLOCATE) &&
             f->disk_full) {
    err = err_new(MICA_RESOURCE_EXHAUSTED,
                  "%s %s: no space left on device (injected)", op_names[op],
                  path);
  }
  pthread_mutex_unlock(&f->mu);
  return err;
}

/* For calls that are not counted: fail only after a crash. */
static mica_err *crash_check(env_fault *f, const char *what, const char *path) {
  pthread_mutex_lock(&f->mu);
  bool crashed = f->crashed;
  pthread_mutex_unlock(&f->mu);
  return crashed ? crashed_err(what, path) : NULL;
}

/* Requires f->mu. */
static frecord *find_record(env_fault *f, const char *path) {
  for (frecord *r = f->records; r != NULL; r = r->next)
    if (!r->gone && strcmp(r->path, path) == 0) return r;
  return NULL;
}

/* True if `path` names an entry directly inside directory `dir` (a bare
 * name lives in "."). */
static bool in_dir(const char *path, const char *dir) {
  const char *slash = strrchr(path, '/');
  size_t dlen = strlen(dir);
  while (dlen > 1 && dir[dlen - 1] == '/') dlen--;
  if (slash == NULL) return dlen == 1 && dir[0] == '.';
  size_t plen = (size_t)(slash - path);
  if (plen == 0) plen = 1; /* "/x" lives in "/" */
  return plen == dlen && memcmp(path, dir, dlen) == 0;
}

/* ---- readers ---- */

static mica_err *open_reader_io(env *e, const char *path, env_reader **out) {
  env_fault *f = fault_of(e);
  mica_err *err = crash_check(f, "open", path);
  if (err != NULL) return err;
  env_reader *inner;
  err = env_open_reader(f->base, path, &inner);
  if (err != NULL) return err;
  freader *r = xmalloc(sizeof(*r));
  r->base.owner = e;
  r->base.path = inner->path;
  r->base.size = inner->size;
  r->inner = inner;
  *out = &r->base;
  return NULL;
}

static mica_err *read_io(env_reader *rb, uint64_t offset, size_t n, void *dst,
                        size_t *got) {
  freader *r = (freader *)rb;
  mica_err *err = fault_check(fault_of(rb->owner), ENV_OP_READ, rb->path);
  if (err != NULL) return err;
  return env_read(r->inner, offset, n, dst, got);
}

static void f_reader_close(env_reader *rb) {
  freader *r = (freader *)rb;
  env_reader_close(r->inner);
  free(r);
}

/* ---- writers ---- */

static mica_err *open_writer_io(env *e, const char *path, int mode,
                               env_writer **out) {
  env_fault *f = fault_of(e);
  mica_err *err = fault_check(f, ENV_OP_OPEN, path);
  if (err != NULL) return err;
  bool existed = env_exists(f->base, path);
  env_writer *inner;
  err = env_open_writer(f->base, path, mode, &inner);
  if (err != NULL) return err;

  pthread_mutex_lock(&f->mu);
  frecord *rec = find_record(f, path);
  if (rec == NULL) {
    rec = xcalloc(1, sizeof(*rec));
    rec->path = xstrdup(path);
    /* A file that was there before this env wrote it is taken as durable
     * as it stands; a file this open created is new to its directory. */
    rec->new_file = !existed;
    rec->synced_len = existed ? inner->size : 0;
    rec->next = f->records;
    f->records = rec;
  }
  if (mode == ENV_TRUNCATE) rec->synced_len = rec->alloc_len = 0;
  pthread_mutex_unlock(&f->mu);

  fwriter *w = xmalloc(sizeof(*w));
  w->base.owner = e;
  w->base.path = inner->path;
  w->base.size = inner->size;
  w->inner = inner;
  w->rec = rec;
  *out = &w->base;
  return NULL;
}

static mica_err *append_io(env_writer *wb, const void *data, size_t n) {
  fwriter *w = (fwriter *)wb;
  mica_err *err = fault_check(fault_of(wb->owner), ENV_OP_WRITE, wb->path);
  if (err != NULL) return err;
  err = env_append(w->inner, data, n);
  wb->size = w->inner->size;
  return err;
}

static mica_err *preallocate_io(env_writer *wb, uint64_t bytes) {
  fwriter *w = (fwriter *)wb;
  env_fault *f = fault_of(wb->owner);
  mica_err *err = fault_check(f, ENV_OP_PREALLOCATE, wb->path);
  if (err != NULL) return err;
  err = env_preallocate(w->inner, bytes);
  if (err == NULL) {
    pthread_mutex_lock(&f->mu);
    if (bytes > w->rec->alloc_len) w->rec->alloc_len = bytes;
    pthread_mutex_unlock(&f->mu);
  }
  return err;
}

static mica_err *sync_io(env_writer *wb) {
  fwriter *w = (fwriter *)wb;
  env_fault *f = fault_of(wb->owner);
  mica_err *err = fault_check(f, ENV_OP_SYNC, wb->path);
  if (err != NULL) return err;
  err = env_sync(w->inner);
  if (err == NULL) {
    pthread_mutex_lock(&f->mu);
    w->rec->synced_len = w->inner->size;
    w->rec->synced_alloc = w->rec->alloc_len;
    pthread_mutex_unlock(&f->mu);
  }
  return err;
}

static mica_err *writer_close_io(env_writer *wb) {
  fwriter *w = (fwriter *)wb;
  mica_err *err = crash_check(fault_of(wb->owner), "close", wb->path);
  mica_err *cerr = env_writer_close(w->inner);
  free(w);
  if (err != NULL) {
    err_free(cerr);
    return err;
  }
  return cerr;
}

/* ---- whole files and directories ---- */

static mica_err *rename_io(env *e, const char *from, const char *to) {
  env_fault *f = fault_of(e);
  mica_err *err = fault_check(f, ENV_OP_RENAME, from);
  if (err != NULL) return err;
  err = env_rename(f->base, from, to);
  if (err != NULL) return err;
  pthread_mutex_lock(&f->mu);
  frecord *over = find_record(f, to);
  if (over != NULL) over->gone = true;
  frecord *rec = find_record(f, from);
  if (rec != NULL) {
    free(rec->path);
    rec->path = xstrdup(to);
    rec->new_file = false;
  }
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

static mica_err *remove_io(env *e, const char *path) {
  env_fault *f = fault_of(e);
  mica_err *err = fault_check(f, ENV_OP_REMOVE, path);
  if (err != NULL) return err;
  err = env_remove(f->base, path);
  if (err != NULL) return err;
  pthread_mutex_lock(&f->mu);
  frecord *rec = find_record(f, path);
  if (rec != NULL) rec->gone = true;
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

static mica_err *mkdirs_io(env *e, const char *path) {
  env_fault *f = fault_of(e);
  mica_err *err = crash_check(f, "mkdir", path);
  return err != NULL ? err : env_mkdirs(f->base, path);
}

static mica_err *remove_tree_io(env *e, const char *path) {
  env_fault *f = fault_of(e);
  mica_err *err = fault_check(f, ENV_OP_REMOVE, path);
  if (err != NULL) return err;
  err = env_remove_tree(f->base, path);
  if (err != NULL) return err;
  size_t plen = strlen(path);
  pthread_mutex_lock(&f->mu);
  for (frecord *r = f->records; r != NULL; r = r->next)
    if (!r->gone && strncmp(r->path, path, plen) == 0 &&
        (r->path[plen] == '\0' || r->path[plen] == '/'))
      r->gone = true;
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

static mica_err *sync_dir_io(env *e, const char *path) {
  env_fault *f = fault_of(e);
  mica_err *err = fault_check(f, ENV_OP_SYNC, path);
  if (err != NULL) return err;
  err = env_sync_dir(f->base, path);
  if (err != NULL) return err;
  pthread_mutex_lock(&f->mu);
  for (frecord *r = f->records; r != NULL; r = r->next)
    if (!r->gone && r->new_file && in_dir(r->path, path)) r->new_file = false;
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

static bool exists_io(env *e, const char *path) {
  env_fault *f = fault_of(e);
  mica_err *err = crash_check(f, "exists", path);
  if (err != NULL) {
    err_free(err);
    return false;
  }
  return env_exists(f->base, path);
}

static mica_err *file_size_io(env *e, const char *path, uint64_t *size) {
  env_fault *f = fault_of(e);
  mica_err *err = crash_check(f, "stat", path);
  return err != NULL ? err : env_file_size(f->base, path, size);
}

static mica_err *free_space_io(env *e, const char *path, uint64_t *avail,
                               uint64_t *total) {
  env_fault *f = fault_of(e);
  mica_err *err = crash_check(f, "statvfs", path);
  if (err == NULL) err = env_free_space(f->base, path, avail, total);
  pthread_mutex_lock(&f->mu);
  if (err == NULL && f->disk_full) *avail = 0;
  pthread_mutex_unlock(&f->mu);
  return err;
}

static mica_err *list_io(env *e, const char *dir, char ***names, size_t *n) {
  env_fault *f = fault_of(e);
  mica_err *err = crash_check(f, "list", dir);
  return err != NULL ? err : env_list(f->base, dir, names, n);
}

static mica_err *lock_io(env *e, const char *path, int *lock_fd) {
  env_fault *f = fault_of(e);
  mica_err *err = crash_check(f, "lock", path);
  return err != NULL ? err : env_lock(f->base, path, lock_fd);
}

/* Unlocking still works after a crash: a dead process's locks go too. */
static void f_unlock(env *e, int lock_fd) {
  env_unlock(fault_of(e)->base, lock_fd);
}

static uint64_t f_now_micros(env *e) {
  return env_now_micros(fault_of(e)->base);
}

static uint64_t f_wall_micros(env *e) {
  return env_wall_micros(fault_of(e)->base);
}

static void f_sleep_micros(env *e, uint64_t micros) {
  env_sleep_micros(fault_of(e)->base, micros);
}

/* ---- the table: each operation runs with f->io held shared ---- */

static void io_begin(env_fault *f) { pthread_rwlock_rdlock(&f->io); }
static void io_end(env_fault *f) { pthread_rwlock_unlock(&f->io); }

static mica_err *f_open_reader(env *e, const char *path, env_reader **out) {
  io_begin(fault_of(e));
  mica_err *err = open_reader_io(e, path, out);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_read(env_reader *r, uint64_t offset, size_t n, void *dst,
                        size_t *got) {
  io_begin(fault_of(r->owner));
  mica_err *err = read_io(r, offset, n, dst, got);
  io_end(fault_of(r->owner));
  return err;
}

static mica_err *f_open_writer(env *e, const char *path, int mode,
                               env_writer **out) {
  io_begin(fault_of(e));
  mica_err *err = open_writer_io(e, path, mode, out);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_append(env_writer *w, const void *data, size_t n) {
  io_begin(fault_of(w->owner));
  mica_err *err = append_io(w, data, n);
  io_end(fault_of(w->owner));
  return err;
}

static mica_err *f_sync(env_writer *w) {
  io_begin(fault_of(w->owner));
  mica_err *err = sync_io(w);
  io_end(fault_of(w->owner));
  return err;
}

static mica_err *f_preallocate(env_writer *w, uint64_t bytes) {
  io_begin(fault_of(w->owner));
  mica_err *err = preallocate_io(w, bytes);
  io_end(fault_of(w->owner));
  return err;
}

static mica_err *f_writer_close(env_writer *w) {
  env_fault *f = fault_of(w->owner); /* w is freed by the call */
  io_begin(f);
  mica_err *err = writer_close_io(w);
  io_end(f);
  return err;
}

static mica_err *f_rename(env *e, const char *from, const char *to) {
  io_begin(fault_of(e));
  mica_err *err = rename_io(e, from, to);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_remove(env *e, const char *path) {
  io_begin(fault_of(e));
  mica_err *err = remove_io(e, path);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_mkdirs(env *e, const char *path) {
  io_begin(fault_of(e));
  mica_err *err = mkdirs_io(e, path);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_remove_tree(env *e, const char *path) {
  io_begin(fault_of(e));
  mica_err *err = remove_tree_io(e, path);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_sync_dir(env *e, const char *path) {
  io_begin(fault_of(e));
  mica_err *err = sync_dir_io(e, path);
  io_end(fault_of(e));
  return err;
}

static bool f_exists(env *e, const char *path) {
  io_begin(fault_of(e));
  bool yes = exists_io(e, path);
  io_end(fault_of(e));
  return yes;
}

static mica_err *f_file_size(env *e, const char *path, uint64_t *size) {
  io_begin(fault_of(e));
  mica_err *err = file_size_io(e, path, size);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_free_space(env *e, const char *path, uint64_t *avail,
                              uint64_t *total) {
  io_begin(fault_of(e));
  mica_err *err = free_space_io(e, path, avail, total);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_list(env *e, const char *dir, char ***names, size_t *n) {
  io_begin(fault_of(e));
  mica_err *err = list_io(e, dir, names, n);
  io_end(fault_of(e));
  return err;
}

static mica_err *f_lock(env *e, const char *path, int *lock_fd) {
  io_begin(fault_of(e));
  mica_err *err = lock_io(e, path, lock_fd);
  io_end(fault_of(e));
  return err;
}

static bool f_rewrites_on_sync(env *e, const char *path) {
  env_fault *f = fault_of(e);
  pthread_mutex_lock(&f->mu);
  bool no = f->no_append;
  pthread_mutex_unlock(&f->mu);
  return no || !env_appends_in_place(f->base, path);
}

static bool f_dirs_implicit(env *e, const char *dir) {
  return env_dirs_implicit(fault_of(e)->base, dir);
}

/* No reader_map: a mapped file would be read without passing the read
 * faults and crash checks above (and a crash's truncation would make its
 * map fault the process), so readers of this env always use env_read. */
static const struct env_ops fault_ops = {
    .open_reader = f_open_reader,
    .read = f_read,
    .reader_close = f_reader_close,
    .open_writer = f_open_writer,
    .append = f_append,
    .sync = f_sync,
    .preallocate = f_preallocate,
    .writer_close = f_writer_close,
    .rename = f_rename,
    .remove = f_remove,
    .mkdirs = f_mkdirs,
    .remove_tree = f_remove_tree,
    .sync_dir = f_sync_dir,
    .exists = f_exists,
    .file_size = f_file_size,
    .free_space = f_free_space,
    .list = f_list,
    .rewrites_on_sync = f_rewrites_on_sync,
    .dirs_implicit = f_dirs_implicit,
    .lock = f_lock,
    .unlock = f_unlock,
    .now_micros = f_now_micros,
    .wall_micros = f_wall_micros,
    .sleep_micros = f_sleep_micros,
};

/* ---- control ---- */

void env_fault_set_no_append(env_fault *f, bool on) {
  pthread_mutex_lock(&f->mu);
  f->no_append = on;
  pthread_mutex_unlock(&f->mu);
}

env_fault *env_fault_new(env *base) {
  env_fault *f = xcalloc(1, sizeof(*f));
  f->env.ops = &fault_ops;
  f->base = base;
  pthread_mutex_init(&f->mu, NULL);
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr,
                                PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&f->io, &attr);
  pthread_rwlockattr_destroy(&attr);
  return f;
}

void env_fault_free(env_fault *f) {
  if (f == NULL) return;
  frecord *r = f->records;
  while (r != NULL) {
    frecord *next = r->next;
    free(r->path);
    free(r);
    r = next;
  }
  pthread_mutex_destroy(&f->mu);
  pthread_rwlock_destroy(&f->io);
  free(f);
}

env *env_fault_env(env_fault *f) { return &f->env; }

void env_fault_fail_nth(env_fault *f, enum env_op op, uint64_t nth,
                        bool sticky) {
  if ((unsigned)op >= ENV_OP_COUNT_) return;
  pthread_mutex_lock(&f->mu);
  f->fail_at[op] = nth == 0 ? 0 : f->count[op] + nth;
  f->fail_sticky[op] = sticky;
  pthread_mutex_unlock(&f->mu);
}

void env_fault_set_disk_full(env_fault *f, bool full) {
  pthread_mutex_lock(&f->mu);
  f->disk_full = full;
  pthread_mutex_unlock(&f->mu);
}

uint64_t env_fault_count(env_fault *f, enum env_op op) {
  if ((unsigned)op >= ENV_OP_COUNT_) return 0;
  pthread_mutex_lock(&f->mu);
  uint64_t n = f->count[op];
  pthread_mutex_unlock(&f->mu);
  return n;
}

/* Cuts `path` back to its first `len` bytes through the base env, then
 * preallocates it to `alloc` bytes of zeros if that is longer. A file
 * without such preallocation and already no longer than `len` is left
 * alone. Errors are ignored: the crash is simulated on a best-effort basis
 * and a test then sees what is left. */
static void truncate_through(env *base, const char *path, uint64_t len,
                             uint64_t alloc) {
  uint64_t size;
  mica_err *err = env_file_size(base, path, &size);
  if (err != NULL || (size <= len && alloc <= len)) {
    err_free(err);
    return;
  }
  buf keep = BUF_INIT;
  if (len > 0) {
    env_reader *r;
    err = env_open_reader(base, path, &r);
    if (err == NULL) {
      buf_resize(&keep, (size_t)len);
      size_t got;
      err = env_read(r, 0, (size_t)len, keep.data, &got);
      keep.len = got;
      env_reader_close(r);
    }
  }
  if (err == NULL) {
    env_writer *w;
    err = env_open_writer(base, path, ENV_TRUNCATE, &w);
    if (err == NULL) {
      err = env_append(w, keep.data, keep.len);
      if (err == NULL && alloc > len) err = env_preallocate(w, alloc);
      if (err == NULL) err = env_sync(w);
      mica_err *cerr = env_writer_close(w);
      if (err == NULL) err = cerr;
      else err_free(cerr);
    }
  }
  err_free(err);
  buf_free(&keep);
}

void env_fault_crash(env_fault *f) {
  pthread_rwlock_wrlock(&f->io);
  pthread_mutex_lock(&f->mu);
  if (!f->crashed) {
    f->crashed = true;
    for (frecord *r = f->records; r != NULL; r = r->next) {
      if (r->gone) continue;
      if (r->new_file)
        err_free(env_remove(f->base, r->path));
      else
        truncate_through(f->base, r->path, r->synced_len, r->synced_alloc);
      r->gone = true;
    }
  }
  pthread_mutex_unlock(&f->mu);
  pthread_rwlock_unlock(&f->io);
}
