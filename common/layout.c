/* layout: the data root's directory layout (see layout.h). */
#include "common/layout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/path.h"

char *layout_master_dir(const char *root) {
  return path_join(root, LAYOUT_MASTER_SUBDIR);
}

char *layout_tablets_dir(const char *root) {
  return path_join(root, LAYOUT_TABLETS_SUBDIR);
}

void layout_tablet_dir(const char *tablets_dir, uint64_t tablet_id, buf *out) {
  char id[32];
  snprintf(id, sizeof(id), "%" PRIu64, tablet_id);
  char *p = path_join(tablets_dir, id);
  buf_clear(out);
  buf_append(out, p, strlen(p) + 1);
  out->len--;
  free(p);
}

char *layout_tablet_rel(uint64_t tablet_id) {
  buf b = BUF_INIT;
  layout_tablet_dir(LAYOUT_TABLETS_SUBDIR, tablet_id, &b);
  char *p = xstrdup((const char *)b.data);
  buf_free(&b);
  return p;
}

bool layout_is_tablet_name(const char *name) {
  if (*name == '\0') return false;
  for (const char *s = name; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

bool layout_parse_tablet_name(const char *name, uint64_t *id) {
  if (!layout_is_tablet_name(name)) return false;
  uint64_t v = 0;
  for (const char *s = name; *s; s++) {
    uint64_t d = (uint64_t)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *id = v;
  return true;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

mica_err *layout_list_tablets(env *e, const char *tablets_dir, char ***names,
                              size_t *n) {
  char **all;
  size_t cnt;
  mica_err *err = env_list(e, tablets_dir, &all, &cnt);
  if (err != NULL) return err;
  size_t k = 0;
  for (size_t i = 0; i < cnt; i++) {
    if (layout_is_tablet_name(all[i])) all[k++] = all[i];
    else free(all[i]);
  }
  if (k > 0) qsort(all, k, sizeof(*all), cmp_str);
  *names = all;
  *n = k;
  return NULL;
}

mica_err *layout_remove_tablet(env *e, const char *tablets_dir,
                               uint64_t tablet_id) {
  buf dir = BUF_INIT;
  layout_tablet_dir(tablets_dir, tablet_id, &dir);
  mica_err *err = env_remove_tree(e, (const char *)dir.data);
  buf_free(&dir);
  return err;
}

void layout_sibling_file(const char *dir_name, const char *path, buf *out) {
  if (strchr(path, '/') == NULL) {
    buf_append(out, "../", 3);
    buf_append(out, dir_name, strlen(dir_name));
    buf_push(out, '/');
  }
  buf_append(out, path, strlen(path) + 1);
  out->len--;
}
