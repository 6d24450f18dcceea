/* env_impl: the inside of an env, for the files that implement one.
 *
 * Private to common/: env.c dispatches the public env_* calls through these
 * tables, env_posix.c fills them with system calls and env_fault.c fills
 * them with wrappers that count, fail or forward to another env. Code
 * outside common/ uses env.h only.
 *
 * An implementation allocates its readers and writers as larger structs
 * whose first member is `struct env_reader` / `struct env_writer`, keeps
 * `path` pointing at a string it owns until close, and keeps `size` current
 * (for a writer: its size at open plus every byte appended so far).
 *
 * Thread-safety: as env.h. The tables are immutable after construction. */
#ifndef MICA_COMMON_ENV_IMPL_H
#define MICA_COMMON_ENV_IMPL_H

#include "common/env.h"

struct env_ops {
  mica_err *(*open_reader)(env *e, const char *path, env_reader **out);
  mica_err *(*read)(env_reader *r, uint64_t offset, size_t n, void *dst,
                    size_t *got);
  void (*reader_close)(env_reader *r);
  /* May be NULL: the env does not map files (env_reader_map answers
   * NOT_SUPPORTED). */
  mica_err *(*reader_map)(env_reader *r, const uint8_t **data);

  mica_err *(*open_writer)(env *e, const char *path, int mode,
                           env_writer **out);
  mica_err *(*append)(env_writer *w, const void *data, size_t n);
  mica_err *(*sync)(env_writer *w);
  mica_err *(*preallocate)(env_writer *w, uint64_t bytes);
  mica_err *(*writer_close)(env_writer *w);

  mica_err *(*rename)(env *e, const char *from, const char *to);
  mica_err *(*remove)(env *e, const char *path);
  /* May be NULL: env_remove, NOT_FOUND ignored. */
  mica_err *(*remove_if_present)(env *e, const char *path);
  /* May be NULL: env_remove_many calls env_remove_if_present for each. */
  mica_err *(*remove_many)(env *e, const char *const *paths, size_t n);
  mica_err *(*mkdirs)(env *e, const char *path);
  mica_err *(*remove_tree)(env *e, const char *path);
  mica_err *(*sync_dir)(env *e, const char *path);
  bool (*exists)(env *e, const char *path);
  mica_err *(*file_size)(env *e, const char *path, uint64_t *size);
  /* May be NULL: env_free_space answers NOT_SUPPORTED. */
  mica_err *(*free_space)(env *e, const char *path, uint64_t *avail,
                          uint64_t *total);
  mica_err *(*list)(env *e, const char *dir, char ***names, size_t *n);
  /* May be NULL: env_write_file_atomic then writes a temporary file,
   * syncs it, renames it over `path` and syncs the directory. An env whose
   * rename is not atomic (S3: a copy and a delete) but whose whole-file
   * write is (one PUT) supplies this instead. */
  mica_err *(*write_file_atomic)(env *e, const char *path, slice data);
  /* May be NULL: env_write_file_new checks that `path` does not exist,
   * then calls env_write_file_atomic. An env that can make the check part
   * of the write (S3's If-None-Match) supplies this. */
  mica_err *(*write_file_new)(env *e, const char *path, slice data);
  /* May be NULL: env_read_object calls env_read_file. An env that can
   * read a whole object in one request (S3: one GET, no HEAD) supplies
   * this; same contract as env_read_file. */
  mica_err *(*read_object)(env *e, const char *path, size_t max_bytes,
                           buf *out);
  /* May be NULL: appends go in place (POSIX). Else true for a `path`
   * whose env_sync rewrites the whole file instead of adding the new bytes
   * (an object store: every sync is a PUT of the whole object). */
  bool (*rewrites_on_sync)(env *e, const char *path);
  /* May be NULL: directories are real (POSIX). Else true when a directory
   * exists exactly while a file is under it (an object store's prefixes). */
  bool (*dirs_implicit)(env *e, const char *dir);
  mica_err *(*lock)(env *e, const char *path, int *lock_fd);
  void (*unlock)(env *e, int lock_fd);

  uint64_t (*now_micros)(env *e);
  uint64_t (*wall_micros)(env *e);
  void (*sleep_micros)(env *e, uint64_t micros);
};

/* Implementations embed this as their first member. */
struct env {
  const struct env_ops *ops;
};

struct env_reader {
  env *owner;       /* the env whose ops serve this reader */
  const char *path; /* owned by the implementation */
  uint64_t size;    /* at open */
};

struct env_writer {
  env *owner;
  const char *path; /* owned by the implementation */
  uint64_t size;    /* at open plus everything appended */
};

#endif
