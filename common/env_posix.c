/* env_posix: the real env, made of POSIX system calls.
 *
 * This is the only file in Mica that opens, reads, writes, syncs, renames
 * or removes files and reads clocks. Writers are unbuffered: each append is
 * one write(2) loop, so the bytes a writer reports as appended are in the
 * kernel, and a fault env above this one can reason about exactly what a
 * crash would lose. Callers that append small pieces batch them first (the
 * WAL batches records, the SSTable builder whole blocks).
 *
 * Every error names the operation and the path, and maps errno to a Mica
 * code: ENOENT is NOT_FOUND, ENOSPC/EDQUOT RESOURCE_EXHAUSTED, EEXIST (from
 * ENV_CREATE_NEW) ALREADY_EXISTS, anything else IO_ERROR. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/env_impl.h"

typedef struct px_reader {
  struct env_reader base;
  int fd;
  void *map; /* env_reader_map's, or NULL; unmapped at close */
  char path[]; /* base.path points here */
} px_reader;

/* Maps held by the process, kept under ENV_MAX_MAPS. */
static atomic_int live_maps;

typedef struct px_writer {
  struct env_writer base;
  int fd;
  bool append_mode; /* opened with ENV_APPEND (O_APPEND): no preallocation */
  char path[];
} px_writer;

static int code_of_errno(int errnum) {
  switch (errnum) {
    case ENOENT:
      return MICA_NOT_FOUND;
    case ENOSPC:
    case EDQUOT:
      return MICA_RESOURCE_EXHAUSTED;
    case EEXIST:
      return MICA_ALREADY_EXISTS;
    case EOPNOTSUPP:
      return MICA_NOT_SUPPORTED;
    default:
      return MICA_IO_ERROR;
  }
}

/* "<op> <path>: <strerror>" with the code errno maps to. */
static mica_err *px_err(const char *op, const char *path, int errnum) {
  return err_new(code_of_errno(errnum), "%s %s: %s", op, path,
                 strerror(errnum));
}

static mica_err *px_open_reader(env *e, const char *path, env_reader **out) {
  int fd;
  do {
    fd = open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return px_err("open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int errnum = errno;
    close(fd);
    return px_err("stat", path, errnum);
  }
  size_t plen = strlen(path);
  px_reader *r = xmalloc(sizeof(*r) + plen + 1);
  memcpy(r->path, path, plen + 1);
  r->base.owner = e;
  r->base.path = r->path;
  r->base.size = (uint64_t)st.st_size;
  r->fd = fd;
  r->map = NULL;
  *out = &r->base;
  return NULL;
}

static mica_err *px_read(env_reader *rb, uint64_t offset, size_t n,
                         void *dst, size_t *got) {
  px_reader *r = (px_reader *)rb;
  uint8_t *p = dst;
  size_t done = 0;
  while (done < n) {
    ssize_t k = pread(r->fd, p + done, n - done, (off_t)(offset + done));
    if (k < 0) {
      if (errno == EINTR) continue;
      int errnum = errno;
      *got = done;
      return err_new(MICA_IO_ERROR, "read %s at offset %llu: %s", r->path,
                     (unsigned long long)(offset + done), strerror(errnum));
    }
    if (k == 0) break; /* end of file */
    done += (size_t)k;
  }
  *got = done;
  return NULL;
}

static mica_err *px_reader_map(env_reader *rb, const uint8_t **data) {
  px_reader *r = (px_reader *)rb;
  if (r->base.size == 0 || r->base.size > SIZE_MAX)
    return err_new(MICA_NOT_SUPPORTED, "map %s: empty or too large", r->path);
  if (atomic_fetch_add(&live_maps, 1) >= ENV_MAX_MAPS) {
    atomic_fetch_sub(&live_maps, 1);
    return err_new(MICA_NOT_SUPPORTED, "map %s: %d files already mapped",
                   r->path, ENV_MAX_MAPS);
  }
  void *p = mmap(NULL, (size_t)r->base.size, PROT_READ, MAP_SHARED, r->fd, 0);
  if (p == MAP_FAILED) {
    int errnum = errno;
    atomic_fetch_sub(&live_maps, 1);
    return px_err("mmap", r->path, errnum);
  }
  r->map = p;
  *data = p;
  return NULL;
}

static void px_reader_close(env_reader *rb) {
  px_reader *r = (px_reader *)rb;
  if (r->map != NULL) {
    munmap(r->map, (size_t)r->base.size);
    atomic_fetch_sub(&live_maps, 1);
  }
  close(r->fd);
  free(r);
}

static mica_err *px_open_writer(env *e, const char *path, int mode,
                                env_writer **out) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
  if (mode == ENV_CREATE_NEW) flags |= O_EXCL;
  else if (mode == ENV_TRUNCATE) flags |= O_TRUNC;
  else flags |= O_APPEND;
  int fd;
  do {
    fd = open(path, flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return px_err("open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int errnum = errno;
    close(fd);
    return px_err("stat", path, errnum);
  }
  size_t plen = strlen(path);
  px_writer *w = xmalloc(sizeof(*w) + plen + 1);
  memcpy(w->path, path, plen + 1);
  w->base.owner = e;
  w->base.path = w->path;
  w->base.size = (uint64_t)st.st_size;
  w->fd = fd;
  w->append_mode = mode == ENV_APPEND;
  *out = &w->base;
  return NULL;
}

static mica_err *px_append(env_writer *wb, const void *data, size_t n) {
  px_writer *w = (px_writer *)wb;
  const uint8_t *p = data;
  while (n > 0) {
    ssize_t k = write(w->fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return px_err("write", w->path, errno);
    }
    /* Count partial progress so env_writer_size matches the file. */
    w->base.size += (uint64_t)k;
    p += k;
    n -= (size_t)k;
  }
  return NULL;
}

static mica_err *px_sync(env_writer *wb) {
  px_writer *w = (px_writer *)wb;
  if (fdatasync(w->fd) != 0) return px_err("sync", w->path, errno);
  return NULL;
}

/* Mode 0, so the file's size covers the range: a later write inside it
 * then changes no size, only (on ext4) the extent's written flag. The
 * writer's descriptor is not O_APPEND, so write(2) keeps writing at the
 * file position, which stays at base.size. */
static mica_err *px_preallocate(env_writer *wb, uint64_t bytes) {
  px_writer *w = (px_writer *)wb;
  if (w->append_mode)
    return err_new(MICA_INVALID_ARGUMENT,
                   "preallocate %s: writer opened in append mode", w->path);
  struct stat st;
  if (fstat(w->fd, &st) != 0) return px_err("stat", w->path, errno);
  if ((uint64_t)st.st_size >= bytes) return NULL;
  int rc;
  do {
    rc = fallocate(w->fd, 0, st.st_size, (off_t)bytes - st.st_size);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return px_err("preallocate", w->path, errno);
  return NULL;
}

static mica_err *px_writer_close(env_writer *wb) {
  px_writer *w = (px_writer *)wb;
  /* Linux releases the descriptor even when close reports an error, so
   * close is never retried (a retry could close someone else's fd). */
  mica_err *err = NULL;
  if (close(w->fd) != 0 && errno != EINTR) err = px_err("close", w->path, errno);
  free(w);
  return err;
}

static mica_err *px_rename(env *e, const char *from, const char *to) {
  (void)e;
  if (rename(from, to) != 0) {
    int errnum = errno;
    return err_new(code_of_errno(errnum), "rename %s to %s: %s", from, to,
                   strerror(errnum));
  }
  return NULL;
}

static mica_err *px_remove(env *e, const char *path) {
  (void)e;
  if (unlink(path) == 0) return NULL;
  int errnum = errno;
  /* unlink refuses directories (EISDIR on Linux, EPERM per POSIX); an
   * empty directory is removed like a file. */
  if ((errnum == EISDIR || errnum == EPERM) && rmdir(path) == 0) return NULL;
  return px_err("remove", path, errnum);
}

static mica_err *px_mkdirs(env *e, const char *path) {
  (void)e;
  size_t len = strlen(path);
  char *p = xmalloc(len + 1);
  memcpy(p, path, len + 1);
  mica_err *err = NULL;
  /* Create each prefix ending before a '/', then the whole path. */
  for (size_t i = 1; i <= len && err == NULL; i++) {
    if (i < len && p[i] != '/') continue;
    char saved = p[i];
    p[i] = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
      err = px_err("mkdir", p, errno);
    p[i] = saved;
  }
  if (err == NULL) {
    struct stat st;
    if (stat(path, &st) != 0)
      err = px_err("mkdir", path, errno);
    else if (!S_ISDIR(st.st_mode))
      err = err_new(MICA_ALREADY_EXISTS, "mkdir %s: exists and is not a directory",
                    path);
  }
  free(p);
  return err;
}

static mica_err *px_remove_tree(env *e, const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return NULL;
    return px_err("remove", path, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path) != 0 && errno != ENOENT)
      return px_err("remove", path, errno);
    return NULL;
  }
  DIR *d = opendir(path);
  if (d == NULL) {
    /* Removed since the lstat (a concurrent remover, such as a second
     * garbage collector): absent is success. */
    if (errno == ENOENT) return NULL;
    return px_err("opendir", path, errno);
  }
  mica_err *err = NULL;
  struct dirent *de;
  size_t plen = strlen(path);
  while (err == NULL && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    size_t nlen = strlen(de->d_name);
    char *child = xmalloc(plen + 1 + nlen + 1);
    memcpy(child, path, plen);
    child[plen] = '/';
    memcpy(child + plen + 1, de->d_name, nlen + 1);
    err = px_remove_tree(e, child);
    free(child);
  }
  closedir(d);
  if (err == NULL && rmdir(path) != 0 && errno != ENOENT)
    err = px_err("remove", path, errno);
  return err;
}

static mica_err *px_sync_dir(env *e, const char *path) {
  (void)e;
  int fd;
  do {
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return px_err("sync directory", path, errno);
  mica_err *err = NULL;
  if (fsync(fd) != 0) err = px_err("sync directory", path, errno);
  close(fd);
  return err;
}

static bool px_exists(env *e, const char *path) {
  (void)e;
  struct stat st;
  return stat(path, &st) == 0;
}

static mica_err *px_file_size(env *e, const char *path, uint64_t *size) {
  (void)e;
  struct stat st;
  if (stat(path, &st) != 0) return px_err("stat", path, errno);
  *size = (uint64_t)st.st_size;
  return NULL;
}

static mica_err *px_free_space(env *e, const char *path, uint64_t *avail,
                               uint64_t *total) {
  (void)e;
  struct statvfs st;
  if (statvfs(path, &st) != 0) return px_err("statvfs", path, errno);
  uint64_t unit = st.f_frsize ? (uint64_t)st.f_frsize : (uint64_t)st.f_bsize;
  *avail = (uint64_t)st.f_bavail * unit;
  *total = (uint64_t)st.f_blocks * unit;
  return NULL;
}

static mica_err *px_list(env *e, const char *dir, char ***names, size_t *n) {
  (void)e;
  DIR *d = opendir(dir);
  if (d == NULL) return px_err("list", dir, errno);
  char **v = NULL;
  size_t count = 0, cap = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (count == cap) {
      cap = cap ? cap * 2 : 16;
      v = xrealloc(v, cap * sizeof(*v));
    }
    v[count++] = xstrdup(de->d_name);
  }
  int errnum = errno;
  closedir(d);
  if (errnum != 0) {
    env_free_names(v, count);
    return px_err("list", dir, errnum);
  }
  *names = v;
  *n = count;
  return NULL;
}

/* flock rather than fcntl locks: flock locks belong to the open file
 * description, so a second env_lock on the same path fails even inside one
 * process (two tablet servers in one test process), whereas fcntl locks
 * would silently succeed and be dropped by any close of the file. */
static mica_err *px_lock(env *e, const char *path, int *lock_fd) {
  (void)e;
  int fd;
  do {
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return px_err("lock", path, errno);
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int errnum = errno;
    close(fd);
    if (errnum == EWOULDBLOCK)
      return err_new(MICA_UNAVAILABLE, "lock %s: held by another process",
                     path);
    return px_err("lock", path, errnum);
  }
  *lock_fd = fd;
  return NULL;
}

static void px_unlock(env *e, int lock_fd) {
  (void)e;
  flock(lock_fd, LOCK_UN);
  close(lock_fd);
}

static uint64_t clock_micros(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t px_now_micros(env *e) {
  (void)e;
  return clock_micros(CLOCK_MONOTONIC);
}

static uint64_t px_wall_micros(env *e) {
  (void)e;
  return clock_micros(CLOCK_REALTIME);
}

static void px_sleep_micros(env *e, uint64_t micros) {
  (void)e;
  struct timespec ts = {(time_t)(micros / 1000000u),
                        (long)(micros % 1000000u) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static const struct env_ops px_ops = {
    .open_reader = px_open_reader,
    .read = px_read,
    .reader_close = px_reader_close,
    .reader_map = px_reader_map,
    .open_writer = px_open_writer,
    .append = px_append,
    .sync = px_sync,
    .preallocate = px_preallocate,
    .writer_close = px_writer_close,
    .rename = px_rename,
    .remove = px_remove,
    .mkdirs = px_mkdirs,
    .remove_tree = px_remove_tree,
    .sync_dir = px_sync_dir,
    .exists = px_exists,
    .file_size = px_file_size,
    .free_space = px_free_space,
    .list = px_list,
    .lock = px_lock,
    .unlock = px_unlock,
    .now_micros = px_now_micros,
    .wall_micros = px_wall_micros,
    .sleep_micros = px_sleep_micros,
};

static env px_env = {&px_ops};

env *env_posix(void) { return &px_env; }
