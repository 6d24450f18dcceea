/* cmd_snapshot: `mica snapshot`, `mica snapshots` and `mica clone`
 * (cmd_snapshot.c), run by tools/mica/main.c; docs/cli.md, "Snapshots".
 *
 * Each takes the open client and the command's argv (argv[0] is the
 * command name), prints its results on stdout and one line on stderr when
 * it fails, and returns the exit status: 0 success, 1 failure, 2 bad
 * usage. */
#ifndef MICA_TOOLS_MICA_CMD_SNAPSHOT_H
#define MICA_TOOLS_MICA_CMD_SNAPSHOT_H

#include "mica/mica.h"

#define CMD_SNAPSHOT_USAGE                                                   \
  "TABLE NAME | create TABLE NAME | list [--format text|tsv] | drop NAME |\n" \
  "       --export NAME DEST"
#define CMD_SNAPSHOT_HELP                                                    \
  "Takes snapshot NAME of TABLE: every write acknowledged before the\n"       \
  "command started is in it (each tablet is flushed and its files are\n"      \
  "recorded; writes made while it runs may or may not be, tablet by\n"        \
  "tablet). No data is copied: the snapshot references the table's files,\n" \
  "which are kept as long as it exists. `create` says the same for a table\n" \
  "named list or drop.\n"                                                     \
  "  list         the snapshots: name, table, state, tablets, files, bytes,\n" \
  "               when taken (UTC)\n"                                         \
  "  drop NAME    drops it; files nothing else references are deleted\n"     \
  "  --export NAME DEST\n"                                                    \
  "               copies its files and a self-describing EXPORT file to\n"   \
  "               directory DEST as the master sees it (a path, or\n"        \
  "               s3://BUCKET/PREFIX when the master stores on S3), for\n"   \
  "               disaster recovery; `mica restore DEST TABLE` reads it\n"   \
  "Names are 1 to 128 characters of A-Z a-z 0-9 _ . -\n"                     \
  "\nExample:\n  mica snapshot users users-monday\n"                         \
  "  mica clone users-monday users_restored\n"
#define CMD_SNAPSHOTS_USAGE "[--format text|tsv]"
#define CMD_SNAPSHOTS_HELP                                                   \
  "Lists the snapshots (the same as `mica snapshot list`).\n"                \
  "\nExample:\n  mica snapshots\n"
#define CMD_CLONE_USAGE "SNAPSHOT NEWTABLE"
#define CMD_CLONE_HELP                                                       \
  "Creates table NEWTABLE from SNAPSHOT, with its key ranges and options,\n" \
  "in about the time of creating a table: its tablets reference the\n"       \
  "snapshot's files (nothing is copied), and later writes and compactions\n" \
  "of the clone leave the snapshot and the source table untouched.\n"        \
  "\nExample:\n  mica clone users-monday users_restored\n"

#define CMD_RESTORE_USAGE "SRC NEWTABLE"
#define CMD_RESTORE_HELP                                                     \
  "Creates table NEWTABLE from the export in SRC (made by `mica snapshot\n" \
  "--export`), copying its files into the cluster and checking the CRC32C\n" \
  "of every 1 MiB chunk on the way: a damaged export fails with the file\n" \
  "and offset named, and nothing is kept.\n"                                \
  "\nExample:\n  mica restore /backups/users-monday users\n"

int cmd_snapshot_run(mica_client *c, int argc, char **argv);
int cmd_restore_run(mica_client *c, int argc, char **argv);
int cmd_snapshots_run(mica_client *c, int argc, char **argv);
int cmd_clone_run(mica_client *c, int argc, char **argv);

#endif
