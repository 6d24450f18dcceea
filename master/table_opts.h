/* table_opts: the options of one table (docs/table-options.md), as the
 * master stores, checks and logs them.
 *
 * Every field's zero value (and bloom_bits -1) means "the tablet server's
 * default", so a table created before options existed, or created without
 * any, behaves exactly as before. Salt buckets are fixed at create; the
 * other options change with ms_alter_table().
 *
 * The log encoding (METALOG_FORMAT.md, "Table options") is five varints:
 * compression, split_bytes, block_size, bloom (0 = default, else bits + 1),
 * salt_buckets.
 *
 * Thread-safety: plain values and pure functions. */
#ifndef MICA_MASTER_TABLE_OPTS_H
#define MICA_MASTER_TABLE_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"

enum mto_compression {
  MTO_COMP_DEFAULT = 0, /* the server's --compression */
  MTO_COMP_NONE = 1,
  MTO_COMP_LZ4 = 2,
  MTO_COMP_ZSTD = 3
};

/* Bounds checked by mto_check(). */
#define MTO_MIN_SPLIT_BYTES ((uint64_t)1 << 20)
#define MTO_MAX_SPLIT_BYTES ((uint64_t)1 << 40)
#define MTO_MIN_BLOCK_SIZE 1024u
#define MTO_MAX_BLOCK_SIZE (4u << 20)
#define MTO_MAX_BLOOM_BITS 32
#define MTO_MIN_SALT 2u
#define MTO_MAX_SALT 255u

typedef struct ms_table_opts {
  int compression;       /* enum mto_compression */
  uint64_t split_bytes;  /* 0 = the master's --split-threshold */
  uint32_t block_size;   /* 0 = the server's (4 KiB) */
  int bloom_bits;        /* -1 = the server's (10); 0 = no filter */
  uint32_t salt_buckets; /* 0 = unsalted */
} ms_table_opts;

/* Every option at its default. */
void mto_init(ms_table_opts *o);
bool mto_is_default(const ms_table_opts *o);
bool mto_equal(const ms_table_opts *a, const ms_table_opts *b);

/* INVALID_ARGUMENT naming the first option out of its range. */
mica_err *mto_check(const ms_table_opts *o);

/* "default", "none", "lz4", "zstd" (static); "?" for other values. */
const char *mto_compression_name(int c);
/* Parses one of those names (NULL or "" = default). False when unknown. */
bool mto_compression_parse(const char *s, int *out);

/* Appends the log encoding. */
void mto_encode(const ms_table_opts *o, buf *b);
/* Decodes the log encoding at p (before lim); NULL when malformed or out of
 * range, else the first byte after it. */
const uint8_t *mto_decode(const uint8_t *p, const uint8_t *lim,
                          ms_table_opts *o);

#endif
