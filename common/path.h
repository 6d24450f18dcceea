/* path: joining and splitting file-system paths, one way for the project.
 *
 * Tablet directories, their files and the data root are named by joining
 * a directory and a name, and split back into parent and last component
 * when a tablet needs its siblings. These helpers are the single place
 * that decides what a trailing slash means, so that "root/" and "root"
 * name the same directory everywhere:
 *
 *   path_join("a/b", "c")   -> "a/b/c"
 *   path_join("a/b/", "c")  -> "a/b/c"   (no doubled slash)
 *   path_join("", "c")      -> "c"
 *   path_split("a/b/c")     -> "a/b", "c"
 *   path_split("a/b/c/")    -> "a/b", "c" (trailing slashes ignored)
 *   path_split("c")         -> ".", "c"
 *   path_split("/c")        -> "/", "c"
 *   path_split("/")         -> "/", ""
 *
 * Paths are plain NUL-terminated strings; nothing here touches the disk or
 * resolves "..".
 *
 * Thread-safety: pure functions. Every returned string is newly allocated;
 * caller frees it with free(). */
#ifndef MICA_COMMON_PATH_H
#define MICA_COMMON_PATH_H

/* "<dir>/<name>", with one slash between them (see above). Caller frees. */
char *path_join(const char *dir, const char *name);

/* The directory holding `path` and its last component, trailing slashes
 * ignored (see above). Caller frees both. */
void path_split(const char *path, char **parent, char **base);

/* The directory holding `path` (path_split's parent). Caller frees. */
char *path_parent(const char *path);

#endif
