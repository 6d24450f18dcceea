/* env: the public env_* calls, dispatched through each env's table of
 * operations (env_impl.h), plus the whole-file helpers built from those
 * operations. Building env_read_file and env_write_file_atomic here, on
 * top of the table, means a fault env sees (and can fail or crash) every
 * open, append, sync and rename they make without reimplementing them. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env_impl.h"

mica_err *env_open_reader(env *e, const char *path, env_reader **out) {
  *out = NULL;
  return e->ops->open_reader(e, path, out);
}

mica_err *env_read(env_reader *r, uint64_t offset, size_t n, void *dst,
                   size_t *got) {
  *got = 0;
  return r->owner->ops->read(r, offset, n, dst, got);
}

uint64_t env_reader_size(const env_reader *r) { return r->size; }

mica_err *env_reader_map(env_reader *r, const uint8_t **data) {
  *data = NULL;
  if (r->owner->ops->reader_map == NULL)
    return err_new(MICA_NOT_SUPPORTED, "map %s: this env does not map files",
                   r->path);
  return r->owner->ops->reader_map(r, data);
}
const char *env_reader_path(const env_reader *r) { return r->path; }

void env_reader_close(env_reader *r) {
  if (r != NULL) r->owner->ops->reader_close(r);
}

mica_err *env_open_writer(env *e, const char *path, int mode,
                          env_writer **out) {
  *out = NULL;
  if (mode != ENV_CREATE_NEW && mode != ENV_TRUNCATE && mode != ENV_APPEND)
    return err_new(MICA_INVALID_ARGUMENT, "open %s: unknown mode %d", path,
                   mode);
  return e->ops->open_writer(e, path, mode, out);
}

mica_err *env_append(env_writer *w, const void *data, size_t n) {
  return w->owner->ops->append(w, data, n);
}

mica_err *env_sync(env_writer *w) { return w->owner->ops->sync(w); }

mica_err *env_preallocate(env_writer *w, uint64_t bytes) {
  return w->owner->ops->preallocate(w, bytes);
}
uint64_t env_writer_size(const env_writer *w) { return w->size; }
const char *env_writer_path(const env_writer *w) { return w->path; }

mica_err *env_writer_close(env_writer *w) {
  return w == NULL ? NULL : w->owner->ops->writer_close(w);
}

mica_err *env_rename(env *e, const char *from, const char *to) {
  return e->ops->rename(e, from, to);
}

mica_err *env_remove(env *e, const char *path) {
  return e->ops->remove(e, path);
}

mica_err *env_remove_if_present(env *e, const char *path) {
  if (e->ops->remove_if_present != NULL)
    return e->ops->remove_if_present(e, path);
  mica_err *err = env_remove(e, path);
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
    err_free(err);
    err = NULL;
  }
  return err;
}

mica_err *env_remove_many(env *e, const char *const *paths, size_t n) {
  if (n == 0) return NULL;
  if (e->ops->remove_many != NULL) return e->ops->remove_many(e, paths, n);
  for (size_t i = 0; i < n; i++) {
    mica_err *err = env_remove_if_present(e, paths[i]);
    if (err != NULL) return err;
  }
  return NULL;
}

mica_err *env_mkdirs(env *e, const char *path) {
  return e->ops->mkdirs(e, path);
}

mica_err *env_remove_tree(env *e, const char *path) {
  return e->ops->remove_tree(e, path);
}

mica_err *env_sync_dir(env *e, const char *path) {
  return e->ops->sync_dir(e, path);
}

bool env_exists(env *e, const char *path) { return e->ops->exists(e, path); }

mica_err *env_file_size(env *e, const char *path, uint64_t *size) {
  *size = 0;
  return e->ops->file_size(e, path, size);
}

mica_err *env_free_space(env *e, const char *path, uint64_t *avail,
                         uint64_t *total) {
  uint64_t a = 0, t = 0;
  mica_err *err =
      e->ops->free_space != NULL
          ? e->ops->free_space(e, path, &a, &t)
          : err_new(MICA_NOT_SUPPORTED, "statvfs %s: this env cannot tell "
                    "free space", path);
  if (avail != NULL) *avail = a;
  if (total != NULL) *total = t;
  return err;
}

mica_err *env_list(env *e, const char *dir, char ***names, size_t *n) {
  *names = NULL;
  *n = 0;
  return e->ops->list(e, dir, names, n);
}

void env_free_names(char **names, size_t n) {
  if (names == NULL) return;
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

mica_err *env_lock(env *e, const char *path, int *lock_fd) {
  *lock_fd = -1;
  return e->ops->lock(e, path, lock_fd);
}

void env_unlock(env *e, int lock_fd) {
  if (lock_fd >= 0) e->ops->unlock(e, lock_fd);
}

uint64_t env_now_micros(env *e) { return e->ops->now_micros(e); }
uint64_t env_wall_micros(env *e) { return e->ops->wall_micros(e); }
void env_sleep_micros(env *e, uint64_t micros) {
  e->ops->sleep_micros(e, micros);
}

/* Local-only mode (env.h): 1 while on, 2 once a request was refused. */
static _Thread_local int g_local_only;

void env_local_only_begin(void) { g_local_only = 1; }

bool env_local_only_end(void) {
  bool refused = g_local_only == 2;
  g_local_only = 0;
  return refused;
}

bool env_local_only(void) { return g_local_only != 0; }

bool env_local_only_refused(void) { return g_local_only == 2; }

mica_err *env_local_only_refuse(const char *what) {
  g_local_only = 2;
  return err_new(MICA_UNAVAILABLE,
                 "%s: not sent: this thread reads local data only", what);
}

/* Reads to end of file rather than trusting the size seen at open, so a
 * file that grows in between is still caught by the limit. A file over the
 * limit is CORRUPTION: callers use this for small metadata files whose
 * size they bound, and a larger one is not what they wrote. */
mica_err *env_read_file(env *e, const char *path, size_t max_bytes,
                        buf *out) {
  env_reader *r;
  mica_err *err = env_open_reader(e, path, &r);
  if (err != NULL) return err;
  size_t start = out->len;
  uint64_t off = 0;
  for (;;) {
    size_t want = 64 * 1024;
    buf_reserve(out, want);
    size_t got;
    err = env_read(r, off, want, out->data + out->len, &got);
    if (err != NULL) break;
    out->len += got;
    off += got;
    if (off > max_bytes) {
      err = err_new(MICA_CORRUPTION, "read %s: file larger than %zu bytes",
                    path, max_bytes);
      break;
    }
    if (got < want) break;
  }
  env_reader_close(r);
  if (err != NULL) out->len = start;
  return err;
}

mica_err *env_read_object(env *e, const char *path, size_t max_bytes,
                          buf *out) {
  if (e->ops->read_object != NULL)
    return e->ops->read_object(e, path, max_bytes, out);
  return env_read_file(e, path, max_bytes, out);
}

bool env_appends_in_place(env *e, const char *path) {
  return e->ops->rewrites_on_sync == NULL ||
         !e->ops->rewrites_on_sync(e, path);
}

mica_err *env_write_file_new(env *e, const char *path, slice data) {
  if (e->ops->write_file_new != NULL)
    return e->ops->write_file_new(e, path, data);
  if (env_exists(e, path)) {
    /* Exactly these bytes: an earlier attempt of this write. */
    buf have = BUF_INIT;
    mica_err *rerr = env_read_file(e, path, data.len + 1, &have);
    bool same = rerr == NULL && have.len == data.len &&
                (data.len == 0 || memcmp(have.data, data.data, data.len) == 0);
    buf_free(&have);
    err_free(rerr);
    if (same) return NULL;
    return err_new(MICA_ALREADY_EXISTS, "write %s: a second writer won: the "
                   "file already exists with other bytes, and names carrying "
                   "an epoch and a generation are never rewritten", path);
  }
  return env_write_file_atomic(e, path, data);
}

bool env_dirs_implicit(env *e, const char *dir) {
  return e->ops->dirs_implicit != NULL && e->ops->dirs_implicit(e, dir);
}

mica_err *env_write_file_atomic(env *e, const char *path, slice data) {
  if (e->ops->write_file_atomic != NULL)
    return e->ops->write_file_atomic(e, path, data);
  /* The temporary name is unique per process and call, so concurrent
   * writers of one path never share a temporary file; the last rename
   * wins, and each rename installs a complete file. */
  static atomic_uint_fast64_t counter;
  uint64_t n = atomic_fetch_add(&counter, 1);
  size_t len = (size_t)snprintf(NULL, 0, "%s.tmp.%ld.%llu", path,
                                (long)getpid(), (unsigned long long)n);
  char *tmp = xmalloc(len + 1);
  snprintf(tmp, len + 1, "%s.tmp.%ld.%llu", path, (long)getpid(),
           (unsigned long long)n);

  /* Directory of `path`, for the sync that makes the rename durable. */
  char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL) {
    free(dir);
    dir = xstrdup(".");
  } else if (slash == dir) {
    slash[1] = '\0';
  } else {
    *slash = '\0';
  }

  env_writer *w;
  mica_err *err = env_open_writer(e, tmp, ENV_TRUNCATE, &w);
  if (err == NULL) {
    err = env_append(w, data.data, data.len);
    if (err == NULL) err = env_sync(w);
    mica_err *cerr = env_writer_close(w);
    if (err == NULL) err = cerr;
    else err_free(cerr);
    if (err == NULL) err = env_rename(e, tmp, path);
    if (err != NULL) err_free(env_remove(e, tmp));
    if (err == NULL) err = env_sync_dir(e, dir);
  }
  free(tmp);
  free(dir);
  return err;
}
