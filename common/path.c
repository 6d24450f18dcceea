/* path: joining and splitting paths (see path.h for the rules). */
#include "common/path.h"

#include <stdlib.h>
#include <string.h>

#include "common/slice.h"

char *path_join(const char *dir, const char *name) {
  size_t d = strlen(dir), n = strlen(name);
  if (d == 0) return xstrdup(name);
  bool slash = dir[d - 1] == '/';
  char *p = xmalloc(d + n + 2);
  memcpy(p, dir, d);
  if (!slash) p[d++] = '/';
  memcpy(p + d, name, n + 1);
  return p;
}

void path_split(const char *path, char **parent, char **base) {
  char *d = xstrdup(path);
  size_t n = strlen(d);
  while (n > 1 && d[n - 1] == '/') d[--n] = '\0';
  char *slash = strrchr(d, '/');
  if (slash == NULL) {
    *parent = xstrdup(".");
    *base = xstrdup(d);
  } else {
    *base = xstrdup(slash + 1);
    if (slash == d) {
      slash[1] = '\0';
    } else {
      *slash = '\0';
      /* "a//b": the parent is "a". */
      for (size_t m = strlen(d); m > 1 && d[m - 1] == '/'; m--) d[m - 1] = '\0';
    }
    *parent = xstrdup(d);
  }
  free(d);
}

char *path_parent(const char *path) {
  char *parent, *base;
  path_split(path, &parent, &base);
  free(base);
  return parent;
}
