/* cmd_snapshot: `mica snapshot`, `mica snapshots`, `mica clone` (see
 * cmd_snapshot.h). Names are sent as given; the master checks them and
 * its message names what was wrong. */
#include "tools/mica/cmd_snapshot.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static int usage(const char *name, const char *use, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage(const char *name, const char *use, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "mica: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nusage: mica %s %s\n", name, use);
  va_end(ap);
  return EXIT_USAGE;
}

static int fail(int code, const char *what, const char *name) {
  fprintf(stderr, "mica: %s %s: %s (%s)\n", what, name, mica_errmsg(),
          mica_code_name(code));
  return EXIT_FAIL;
}

static void utc(uint64_t ms, char *out, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int list(mica_client *c, const char *cmd, const char *use, int argc,
                char **argv) {
  bool tsv = false;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
      const char *f = argv[++i];
      if (strcmp(f, "tsv") == 0) tsv = true;
      else if (strcmp(f, "text") != 0)
        return usage(cmd, use, "bad format '%s' (text or tsv)", f);
    } else {
      return usage(cmd, use, "unexpected argument '%s'", argv[i]);
    }
  }
  mica_snapshot_info *v = NULL;
  size_t n = 0;
  int code = mica_snapshot_list(c, &v, &n);
  if (code != MICA_OK) return fail(code, "listing", "snapshots");
  if (!tsv)
    printf("%-24s %-24s %-8s %7s %7s %14s  %s\n", "SNAPSHOT", "TABLE",
           "STATE", "TABLETS", "FILES", "BYTES", "TAKEN");
  for (size_t i = 0; i < n; i++) {
    char when[32];
    utc(v[i].created_ms, when, sizeof when);
    printf(tsv ? "%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\n"
               : "%-24s %-24s %-8s %7" PRIu64 " %7" PRIu64 " %14" PRIu64
                 "  %s\n",
           v[i].name, v[i].table, v[i].state, v[i].tablets, v[i].files,
           v[i].bytes, when);
  }
  mica_free(v);
  return 0;
}

static int create(mica_client *c, const char *table, const char *name) {
  mica_snapshot_info *info = NULL;
  int code = mica_snapshot_create(c, table, name, &info);
  if (code != MICA_OK) return fail(code, "snapshot", name);
  if (info != NULL)
    printf("snapshot %s of table %s: %" PRIu64 " tablets, %" PRIu64
           " files, %" PRIu64 " bytes\n", info->name, info->table,
           info->tablets, info->files, info->bytes);
  mica_free(info);
  return 0;
}

int cmd_snapshot_run(mica_client *c, int argc, char **argv) {
  const char *cmd = "snapshot";
  if (argc >= 2 && strcmp(argv[1], "list") == 0)
    return list(c, cmd, CMD_SNAPSHOT_USAGE, argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "drop") == 0) {
    if (argc != 3)
      return usage(cmd, CMD_SNAPSHOT_USAGE, "drop takes one snapshot name");
    int code = mica_snapshot_drop(c, argv[2]);
    if (code != MICA_OK) return fail(code, "dropping snapshot", argv[2]);
    printf("snapshot %s dropped\n", argv[2]);
    return 0;
  }
  if (argc >= 2 && (strcmp(argv[1], "--export") == 0 ||
                    strcmp(argv[1], "export") == 0)) {
    if (argc != 4)
      return usage(cmd, CMD_SNAPSHOT_USAGE, "--export takes a snapshot name "
                   "and a destination directory");
    uint64_t files = 0, bytes = 0;
    int code = mica_snapshot_export(c, argv[2], argv[3], &files, &bytes);
    if (code != MICA_OK) return fail(code, "exporting snapshot", argv[2]);
    printf("snapshot %s exported to %s: %" PRIu64 " files, %" PRIu64
           " bytes\n", argv[2], argv[3], files, bytes);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "create") == 0) {
    argc--;
    argv++;
  }
  if (argc != 3)
    return usage(cmd, CMD_SNAPSHOT_USAGE, "give a table and a snapshot name");
  return create(c, argv[1], argv[2]);
}

int cmd_snapshots_run(mica_client *c, int argc, char **argv) {
  return list(c, "snapshots", CMD_SNAPSHOTS_USAGE, argc - 1, argv + 1);
}

int cmd_clone_run(mica_client *c, int argc, char **argv) {
  if (argc != 3)
    return usage("clone", CMD_CLONE_USAGE, "give a snapshot and a new table "
                 "name");
  int code = mica_snapshot_clone(c, argv[1], argv[2]);
  if (code != MICA_OK) return fail(code, "clone of snapshot", argv[1]);
  printf("table %s created from snapshot %s\n", argv[2], argv[1]);
  return 0;
}

int cmd_restore_run(mica_client *c, int argc, char **argv) {
  if (argc != 3)
    return usage("restore", CMD_RESTORE_USAGE, "give the export directory "
                 "and a new table name");
  uint64_t files = 0, bytes = 0;
  int code = mica_snapshot_restore(c, argv[1], argv[2], &files, &bytes);
  if (code != MICA_OK) return fail(code, "restore from", argv[1]);
  printf("table %s restored from %s: %" PRIu64 " files, %" PRIu64
         " bytes\n", argv[2], argv[1], files, bytes);
  return 0;
}
