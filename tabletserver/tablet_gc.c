/* tablet_gc: deleting the files of retired tablets (split parents, merge
 * inputs, dropped tables' tablets) once no live manifest and no snapshot
 * pin references them, then their directories; and the files a live
 * tablet shared with a snapshot (its SHARED file) once nothing lists them.
 * Any server may run it at any time; docs/engine.md gives the argument why
 * a concurrent open, split or merge never loses a file it needs, and
 * docs/storage.md ("Snapshots") the one for snapshots and clones. */
#include "tabletserver/tablet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/log.h"
#include "common/path.h"

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool same_names(char **a, size_t na, char **b, size_t nb) {
  if (na != nb) return false;
  for (size_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i]) != 0) return false;
  return true;
}

mica_err *tab_collect_garbage(env *e, const char *tablets_dir,
                              uint64_t *removed) {
  if (removed != NULL) *removed = 0;
  /* References only move from a parent to its daughters (or from the
   * inputs of a merge to the merged tablet, tablet_merge.h), and the new
   * tablets appear (by rename) with their manifests before the old ones
   * retire: so
   * a scan that sees the same set of directories before and after reading
   * every manifest has seen every live reference (see docs/engine.md).
   * Otherwise it deletes nothing and tries again. */
  for (int attempt = 0; attempt < 3; attempt++) {
    char **before, **after;
    size_t nb, na;
    mica_err *err = layout_list_tablets(e, tablets_dir, &before, &nb);
    if (err != NULL) return err;
    char **refs = NULL;
    size_t nrefs = 0;
    char **retired = NULL;
    size_t nretired = 0;
    char **shared = NULL; /* "<dir>/<file>" a live tablet shared */
    size_t nshared = 0;
    bool complete = true;
    for (size_t i = 0; i < nb && complete; i++) {
      char *dir = path_join(tablets_dir, before[i]);
      man_state m;
      man_init(&m);
      /* SHARED before MANIFEST: a name in SHARED was in the manifest
       * before, and leaves it only after its pin exists (tablet_snap.c),
       * which is read below after every manifest. */
      char **sh = NULL;
      size_t nsh = 0;
      mica_err *merr = tb_shared_read(e, dir, &sh, &nsh);
      if (merr == NULL) merr = man_read(e, dir, &m);
      free(dir);
      if (merr != NULL && err_code(merr) == MICA_NOT_FOUND) {
        /* A tablet being created (it references nothing yet: daughters
         * appear by rename, manifest included) or a retired one being
         * removed (its references no longer count). */
        err_free(merr);
        tb_names_free(sh, nsh);
        continue;
      }
      if (merr != NULL) {
        /* Damaged or unreadable: not knowing what it references, delete
         * nothing this round. */
        LOG_W("garbage collection: %s", err_msg(merr));
        err_free(merr);
        tb_names_free(sh, nsh);
        complete = false;
        break;
      }
      if (m.state == MAN_SPLIT || m.state == MAN_MERGED ||
          m.state == MAN_DROPPED) {
        retired = xrealloc(retired, (nretired + 1) * sizeof(*retired));
        retired[nretired++] = xstrdup(before[i]);
      } else {
        for (size_t j = 0; j < nsh; j++) {
          shared = xrealloc(shared, (nshared + 1) * sizeof(*shared));
          shared[nshared++] = path_join(before[i], sh[j]);
        }
        for (size_t j = 0; j < m.n_ssts; j++) {
          const char *p = m.ssts[j].path;
          size_t len = strlen(before[i]) + strlen(p) + 2;
          char *canon = xmalloc(len);
          if (strncmp(p, "../", 3) == 0) snprintf(canon, len, "%s", p + 3);
          else snprintf(canon, len, "%s/%s", before[i], p);
          refs = xrealloc(refs, (nrefs + 1) * sizeof(*refs));
          refs[nrefs++] = canon;
        }
      }
      man_clear(&m);
      tb_names_free(sh, nsh);
    }
    /* Pins after every manifest: a file leaves a manifest only after the
     * pin that lists it exists. */
    if (complete) {
      mica_err *perr = tb_pin_refs(e, tablets_dir, &refs, &nrefs);
      if (perr != NULL) {
        LOG_W("garbage collection: %s", err_msg(perr));
        err_free(perr);
        complete = false;
      }
    }
    err = layout_list_tablets(e, tablets_dir, &after, &na);
    bool stable = err == NULL && complete && same_names(before, nb, after, na);
    if (err == NULL) env_free_names(after, na);
    env_free_names(before, nb);
    if (stable) {
      if (nrefs > 0) qsort(refs, nrefs, sizeof(*refs), cmp_str);
      for (size_t i = 0; i < nretired && err == NULL; i++) {
        char *dir = path_join(tablets_dir, retired[i]);
        char **files;
        size_t nfiles;
        err = env_list(e, dir, &files, &nfiles);
        if (err != NULL && err_code(err) == MICA_NOT_FOUND) {
          /* Another collector (a daughter's compaction on this server,
           * or another server) removed it since our listing. */
          err_free(err);
          err = NULL;
          free(dir);
          continue;
        }
        if (err != NULL) {
          free(dir);
          break;
        }
        bool still_used = false;
        for (size_t j = 0; j < nfiles; j++) {
          uint64_t ep, num;
          if (wal_parse_segment_name(files[j], &ep, &num)) {
            /* A split parent flushed everything before the split began;
             * a segment left by an interrupted cleanup holds nothing. */
            char *p = path_join(dir, files[j]);
            mica_err *rm = env_remove(e, p);
            if (rm == NULL && removed != NULL) (*removed)++;
            err_free(rm);
            free(p);
            continue;
          }
          if (!tb_is_sst_name(files[j])) continue;
          size_t len = strlen(retired[i]) + strlen(files[j]) + 2;
          char *canon = xmalloc(len);
          snprintf(canon, len, "%s/%s", retired[i], files[j]);
          if (nrefs > 0 &&
              bsearch(&canon, refs, nrefs, sizeof(*refs), cmp_str) != NULL) {
            still_used = true;
          } else {
            char *p = path_join(dir, files[j]);
            mica_err *rm = env_remove(e, p);
            if (rm == NULL && removed != NULL) (*removed)++;
            err_free(rm);
            free(p);
          }
          free(canon);
        }
        env_free_names(files, nfiles);
        if (!still_used) {
          /* Nothing references the retired tablet any more. A concurrent
           * collector may be removing it too: a path that is already gone
           * is no error (env_remove_tree). */
          err = env_remove_tree(e, dir);
          if (err == NULL && removed != NULL) (*removed)++;
        }
        free(dir);
      }
    }
    for (size_t i = 0; stable && err == NULL && i < nshared; i++) {
      /* A live tablet's file a snapshot once pinned: the tablet never
       * deletes it, so it is ours once nothing lists it. */
      if (nrefs > 0 &&
          bsearch(&shared[i], refs, nrefs, sizeof(*refs), cmp_str) != NULL)
        continue;
      char *p = path_join(tablets_dir, shared[i]);
      mica_err *rm = env_remove(e, p);
      if (rm == NULL && removed != NULL) (*removed)++;
      err_free(rm);
      free(p);
    }
    tb_names_free(shared, nshared);
    for (size_t i = 0; i < nrefs; i++) free(refs[i]);
    free(refs);
    for (size_t i = 0; i < nretired; i++) free(retired[i]);
    free(retired);
    if (err != NULL || stable) return err;
  }
  return NULL;
}
