/* env_route: two envs seen as one tree (contract in env_route.h). Each
 * path-level call maps its path once; readers and writers come from the
 * chosen env, so their calls dispatch there directly (env.c dispatches on
 * the reader's or writer's owner) and never come back here. */
#include "common/env_route.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/env_impl.h"
#include "common/path.h"

typedef struct route {
  struct env env; /* first */
  env *base, *alt;
  char *root, *alt_root;
  size_t root_len;
  bool (*pick)(const char *name);
  /* The lock descriptors the alt env handed out, so an unlock goes back
   * to the env that locked (a lock is a picked file's, like a commit
   * log's LOCK, or the base's). */
  pthread_mutex_t mu;
  int *alt_locks;
  size_t n_alt_locks;
} route;

static route *route_of(env *e) { return (route *)e; }

/* The path's part after the root ("" for the root itself, "/x/y" below
 * it), or NULL when the path is not under the root. */
static const char *rel_of(const route *r, const char *path) {
  if (strncmp(path, r->root, r->root_len) != 0) return NULL;
  const char *rest = path + r->root_len;
  return rest[0] == '\0' || rest[0] == '/' ? rest : NULL;
}

/* The alt env's path for `path` under the root; caller frees. */
static char *alt_path(const route *r, const char *rel) {
  size_t n = strlen(r->alt_root) + strlen(rel) + 1;
  char *p = xmalloc(n);
  memcpy(p, r->alt_root, strlen(r->alt_root));
  memcpy(p + strlen(r->alt_root), rel, strlen(rel) + 1);
  return p;
}

/* True when `path` is a file that lives in the alt env. */
static bool picked(const route *r, const char *path) {
  if (rel_of(r, path) == NULL) return false;
  const char *slash = strrchr(path, '/');
  return r->pick(slash ? slash + 1 : path);
}

/* The env and path a file operation on `path` goes to; *owned is the
 * mapped path to free (NULL when it is `path` itself). */
static env *choose(route *r, const char *path, const char **mapped,
                   char **owned) {
  *owned = NULL;
  *mapped = path;
  if (!picked(r, path)) return r->base;
  *owned = alt_path(r, rel_of(r, path));
  *mapped = *owned;
  return r->alt;
}

/* The alt env's path for a directory under the root, or NULL. */
static char *alt_dir(route *r, const char *path) {
  const char *rel = rel_of(r, path);
  return rel ? alt_path(r, rel) : NULL;
}

static mica_err *rt_open_reader(env *e, const char *path, env_reader **out) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_open_reader(to, p, out);
  free(own);
  return err;
}

static mica_err *rt_open_writer(env *e, const char *path, int mode,
                                env_writer **out) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_open_writer(to, p, mode, out);
  free(own);
  return err;
}

static mica_err *rt_remove(env *e, const char *path) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_remove(to, p);
  free(own);
  return err;
}

static mica_err *rt_remove_if_present(env *e, const char *path) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_remove_if_present(to, p);
  free(own);
  return err;
}

/* Each run of consecutive paths that go to one env is one
 * env_remove_many there (a log's objects all go to one). */
static mica_err *rt_remove_many(env *e, const char *const *paths, size_t n) {
  route *r = route_of(e);
  const char **mapped = xcalloc(n + 1, sizeof(*mapped));
  char **owned = xcalloc(n + 1, sizeof(*owned));
  env **to = xcalloc(n + 1, sizeof(*to));
  for (size_t i = 0; i < n; i++)
    to[i] = choose(r, paths[i], &mapped[i], &owned[i]);
  mica_err *err = NULL;
  for (size_t i = 0; i < n && err == NULL;) {
    size_t j = i + 1;
    while (j < n && to[j] == to[i]) j++;
    err = env_remove_many(to[i], mapped + i, j - i);
    i = j;
  }
  for (size_t i = 0; i < n; i++) free(owned[i]);
  free(owned);
  free(mapped);
  free(to);
  return err;
}

static mica_err *rt_file_size(env *e, const char *path, uint64_t *size) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_file_size(to, p, size);
  free(own);
  return err;
}

static mica_err *rt_write_file_atomic(env *e, const char *path, slice data) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_write_file_atomic(to, p, data);
  free(own);
  return err;
}

static mica_err *rt_write_file_new(env *e, const char *path, slice data) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_write_file_new(to, p, data);
  free(own);
  return err;
}

static mica_err *rt_read_object(env *e, const char *path, size_t max_bytes,
                                buf *out) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  mica_err *err = env_read_object(to, p, max_bytes, out);
  free(own);
  return err;
}

static bool rt_rewrites_on_sync(env *e, const char *path) {
  const char *p;
  char *own;
  env *to = choose(route_of(e), path, &p, &own);
  bool in_place = env_appends_in_place(to, p);
  free(own);
  return !in_place;
}

/* The data root's answer: directories hold the tablets' own files there
 * (a directory's log segments under --wal-dir do not change whether the
 * directory exists in the root). */
static bool rt_dirs_implicit(env *e, const char *dir) {
  return env_dirs_implicit(route_of(e)->base, dir);
}

static mica_err *rt_rename(env *e, const char *from, const char *to) {
  route *r = route_of(e);
  bool pf = picked(r, from), pt = picked(r, to);
  if (pf != pt)
    return err_new(MICA_INVALID_ARGUMENT,
                   "rename %s to %s: the two names live in different "
                   "stores (%s)", from, to, pf ? "the first in the WAL "
                   "directory" : "the second in the WAL directory");
  if (pf) {
    char *af = alt_dir(r, from), *at = alt_dir(r, to);
    mica_err *err = env_rename(r->alt, af, at);
    free(af);
    free(at);
    return err;
  }
  /* A directory (or a file of the base): rename it in the base, and its
   * alt twin, if any, in the alt env. */
  char *af = alt_dir(r, from), *at = alt_dir(r, to);
  bool in_alt = af != NULL && at != NULL && env_exists(r->alt, af);
  mica_err *err = env_rename(r->base, from, to);
  if (err != NULL && in_alt && err_code(err) == MICA_NOT_FOUND) {
    err_free(err); /* only the alt tree has it */
    err = NULL;
  }
  if (err == NULL && in_alt) {
    char *parent = path_parent(at);
    err = env_mkdirs(r->alt, parent);
    free(parent);
    if (err == NULL) err = env_rename(r->alt, af, at);
  }
  free(af);
  free(at);
  return err;
}

static mica_err *rt_mkdirs(env *e, const char *path) {
  route *r = route_of(e);
  mica_err *err = env_mkdirs(r->base, path);
  char *a = alt_dir(r, path);
  if (err == NULL && a != NULL) err = env_mkdirs(r->alt, a);
  free(a);
  return err;
}

static mica_err *rt_remove_tree(env *e, const char *path) {
  route *r = route_of(e);
  char *a = alt_dir(r, path);
  mica_err *err = a ? env_remove_tree(r->alt, a) : NULL;
  free(a);
  if (err == NULL) err = env_remove_tree(r->base, path);
  return err;
}

static mica_err *rt_sync_dir(env *e, const char *path) {
  route *r = route_of(e);
  mica_err *err = env_sync_dir(r->base, path);
  char *a = alt_dir(r, path);
  if (err == NULL && a != NULL && env_exists(r->alt, a))
    err = env_sync_dir(r->alt, a);
  free(a);
  return err;
}

static bool rt_exists(env *e, const char *path) {
  route *r = route_of(e);
  if (picked(r, path)) {
    char *a = alt_dir(r, path);
    bool yes = env_exists(r->alt, a);
    free(a);
    return yes;
  }
  if (env_exists(r->base, path)) return true;
  char *a = alt_dir(r, path);
  bool yes = a != NULL && env_exists(r->alt, a);
  free(a);
  return yes;
}

static mica_err *rt_free_space(env *e, const char *path, uint64_t *avail,
                               uint64_t *total) {
  route *r = route_of(e);
  mica_err *err = env_free_space(r->base, path, avail, total);
  if (err == NULL || err_code(err) != MICA_NOT_SUPPORTED ||
      rel_of(r, path) == NULL)
    return err;
  err_free(err);
  return env_free_space(r->alt, r->alt_root, avail, total);
}

static bool has_name(char **names, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], s) == 0) return true;
  return false;
}

static mica_err *rt_list(env *e, const char *dir, char ***names, size_t *n) {
  route *r = route_of(e);
  *names = NULL;
  *n = 0;
  char **bn = NULL, **an = NULL;
  size_t nb = 0, na = 0;
  mica_err *berr = env_list(r->base, dir, &bn, &nb);
  if (berr != NULL && err_code(berr) != MICA_NOT_FOUND) return berr;
  char *a = alt_dir(r, dir);
  mica_err *aerr = a ? env_list(r->alt, a, &an, &na)
                     : err_new(MICA_NOT_FOUND, "not under the root");
  free(a);
  if (aerr != NULL && err_code(aerr) != MICA_NOT_FOUND) {
    err_free(berr);
    env_free_names(bn, nb);
    return aerr;
  }
  if (berr != NULL && aerr != NULL) {
    err_free(aerr);
    return berr; /* in neither: the base's NOT_FOUND */
  }
  err_free(berr);
  err_free(aerr);
  char **out = xmalloc((nb + na + 1) * sizeof(*out));
  size_t k = 0;
  for (size_t i = 0; i < nb; i++) out[k++] = bn[i];
  for (size_t i = 0; i < na; i++) {
    if (has_name(bn, nb, an[i])) {
      free(an[i]);
      continue;
    }
    out[k++] = an[i];
  }
  free(bn);
  free(an);
  *names = out;
  *n = k;
  return NULL;
}

static mica_err *rt_lock(env *e, const char *path, int *lock_fd) {
  route *r = route_of(e);
  const char *mapped;
  char *owned;
  env *to = choose(r, path, &mapped, &owned);
  mica_err *err = env_lock(to, mapped, lock_fd);
  free(owned);
  if (err == NULL && to == r->alt) {
    pthread_mutex_lock(&r->mu);
    r->alt_locks =
        xrealloc(r->alt_locks, (r->n_alt_locks + 1) * sizeof(*r->alt_locks));
    r->alt_locks[r->n_alt_locks++] = *lock_fd;
    pthread_mutex_unlock(&r->mu);
  }
  return err;
}

static void rt_unlock(env *e, int lock_fd) {
  route *r = route_of(e);
  env *to = r->base;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->n_alt_locks; i++)
    if (r->alt_locks[i] == lock_fd) {
      r->alt_locks[i] = r->alt_locks[--r->n_alt_locks];
      to = r->alt;
      break;
    }
  pthread_mutex_unlock(&r->mu);
  env_unlock(to, lock_fd);
}

static uint64_t rt_now_micros(env *e) {
  return env_now_micros(route_of(e)->base);
}

static uint64_t rt_wall_micros(env *e) {
  return env_wall_micros(route_of(e)->base);
}

static void rt_sleep_micros(env *e, uint64_t micros) {
  env_sleep_micros(route_of(e)->base, micros);
}

/* read, append, sync and the rest belong to the readers and writers of
 * the two envs (their owner), so the route never sees them. */
static const struct env_ops route_ops = {
    .open_reader = rt_open_reader,
    .open_writer = rt_open_writer,
    .rename = rt_rename,
    .remove = rt_remove,
    .remove_if_present = rt_remove_if_present,
    .remove_many = rt_remove_many,
    .mkdirs = rt_mkdirs,
    .remove_tree = rt_remove_tree,
    .sync_dir = rt_sync_dir,
    .exists = rt_exists,
    .file_size = rt_file_size,
    .free_space = rt_free_space,
    .list = rt_list,
    .write_file_atomic = rt_write_file_atomic,
    .write_file_new = rt_write_file_new,
    .read_object = rt_read_object,
    .rewrites_on_sync = rt_rewrites_on_sync,
    .dirs_implicit = rt_dirs_implicit,
    .lock = rt_lock,
    .unlock = rt_unlock,
    .now_micros = rt_now_micros,
    .wall_micros = rt_wall_micros,
    .sleep_micros = rt_sleep_micros,
};

static char *strip_slashes(const char *s) {
  char *p = xstrdup(s);
  size_t n = strlen(p);
  while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
  return p;
}

env *env_route_new(env *base, const char *root, env *alt,
                   const char *alt_root, bool (*pick)(const char *name)) {
  route *r = xcalloc(1, sizeof(*r));
  r->env.ops = &route_ops;
  r->base = base;
  r->alt = alt;
  r->root = strip_slashes(root);
  r->root_len = strlen(r->root);
  r->alt_root = strip_slashes(alt_root);
  r->pick = pick;
  pthread_mutex_init(&r->mu, NULL);
  return &r->env;
}

void env_route_free(env *e) {
  if (e == NULL) return;
  route *r = route_of(e);
  free(r->root);
  free(r->alt_root);
  free(r->alt_locks);
  pthread_mutex_destroy(&r->mu);
  free(r);
}
