/* cmd_topts: the table-option flags of `mica create` and `mica alter`, and
 * how `mica describe` prints a table's options (docs/table-options.md).
 *
 * Values: --compression none|lz4|zstd|default; --split-threshold and
 * --block-size a byte count with an optional K, M, G or T suffix (powers
 * of 1024) or "default"; --bloom-bits 0..32 or "default"; --salt 2..255
 * (create only). Ranges are checked by the master, which names the option
 * in its error. */
#ifndef MICA_TOOLS_MICA_CMD_TOPTS_H
#define MICA_TOOLS_MICA_CMD_TOPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "common/slice.h"
#include "mica/mica.h"

/* getopt values of the option flags (above main.c's own). */
enum {
  MTOPT_COMPRESSION = 2000,
  MTOPT_SPLIT_THRESHOLD,
  MTOPT_BLOCK_SIZE,
  MTOPT_BLOOM_BITS,
  MTOPT_SALT
};

/* The getopt_long entries of the option flags (salt only when `salt`),
 * written to `out` (room for 5); returns how many. */
int mtopt_longopts(struct option *out, bool salt);

/* Takes flag `opt` (an MTOPT_ value) with value `arg` into `o`, adding
 * its MICA_ALTER_ bit to *mask. False for a value that does not parse. */
bool mtopt_flag(int opt, const char *arg, mica_table_options *o,
                unsigned *mask);

/* Prints the options of `t`: one "name: value" line each, or (json) a
 * JSON object without a newline. */
void mtopt_print(FILE *f, const mica_table_info *t, bool json);

/* The salt buckets of every table (from mica_list_tables), to show a salted
 * table's tablet boundaries unsalted. */
typedef struct mtopt_salts {
  mica_table_info *v;
  size_t n;
} mtopt_salts;
void mtopt_salts_load(mica_client *c, mtopt_salts *out); /* empty on error */
void mtopt_salts_free(mtopt_salts *s);
/* The salt buckets of `table` (0 = unsalted or unknown). */
uint32_t mtopt_salt_of(const mtopt_salts *s, const char *table);

/* Writes a salted table's stored boundary `key` as "[BUCKET] KEY" (the
 * key escaped, without its salt byte) into `out`, NUL-terminated. */
void mtopt_unsalted(const void *key, size_t len, buf *out);

#endif
