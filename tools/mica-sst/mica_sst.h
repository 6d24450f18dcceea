/* mica_sst: what the mica-sst tool's files share: flag parsing and the
 * commands' entry points.
 *
 * Every command returns the process exit status: 0 success, 1 the work
 * failed (corrupt file, I/O error), 2 the command line was wrong (the
 * usage then went to stderr).
 *
 * Thread-safety: single-threaded tool. */
#ifndef MICA_TOOLS_MICA_SST_H
#define MICA_TOOLS_MICA_SST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* One --name VALUE (or --name=VALUE) flag, or a --name switch. */
typedef struct flag {
  const char *name;   /* without the dashes */
  bool takes_value;
  const char *value;  /* set when given (switches get "") */
} flag;

/* Parses argv[first..argc) into `flags` (terminated by a NULL name) and at
 * most `max_pos` positional arguments. Prints the problem to stderr and
 * returns false on an unknown flag, a missing value or too many
 * positionals; *help is set when --help or -h was given. */
bool sst_parse_flags(int argc, char **argv, int first, flag *flags,
                     const char **pos, int max_pos, int *npos, bool *help);

/* The value of an unsigned flag, or `def` when absent; false (with a
 * message) when it is not a number in [min, max]. */
bool sst_flag_u64(const flag *f, uint64_t def, uint64_t min, uint64_t max,
                  uint64_t *out);

/* `mica-sst bench ...` (argv[1] is "bench"). */
int sst_cmd_bench(int argc, char **argv);

#endif
