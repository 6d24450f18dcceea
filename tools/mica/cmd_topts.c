/* cmd_topts: parsing and printing table options for the CLI. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/mica/cmd_topts.h"

int mtopt_longopts(struct option *out, bool salt) {
  static const struct option v[] = {
      {"compression", required_argument, NULL, MTOPT_COMPRESSION},
      {"split-threshold", required_argument, NULL, MTOPT_SPLIT_THRESHOLD},
      {"block-size", required_argument, NULL, MTOPT_BLOCK_SIZE},
      {"bloom-bits", required_argument, NULL, MTOPT_BLOOM_BITS},
      {"salt", required_argument, NULL, MTOPT_SALT}};
  int n = salt ? 5 : 4;
  memcpy(out, v, (size_t)n * sizeof(*out));
  return n;
}

/* A byte count with an optional binary suffix. */
static bool parse_size(const char *s, uint64_t *out) {
  if (strcmp(s, "default") == 0) {
    *out = 0;
    return true;
  }
  char *end = NULL;
  if (*s < '0' || *s > '9') return false;
  unsigned long long v = strtoull(s, &end, 10);
  unsigned shift = 0;
  switch (*end) {
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
    case 'T': case 't': shift = 40; end++; break;
    default: break;
  }
  if (*end == 'i' && shift) end++;
  if (*end == 'B' && shift) end++;
  if (*end != '\0' || v > (UINT64_MAX >> shift)) return false;
  *out = (uint64_t)v << shift;
  return true;
}

bool mtopt_flag(int opt, const char *arg, mica_table_options *o,
                unsigned *mask) {
  uint64_t v = 0;
  switch (opt) {
    case MTOPT_COMPRESSION:
      if (strcmp(arg, "default") == 0) o->compression = "";
      else if (strcmp(arg, "none") == 0 || strcmp(arg, "lz4") == 0 ||
               strcmp(arg, "zstd") == 0)
        o->compression = arg;
      else
        return false;
      *mask |= MICA_ALTER_COMPRESSION;
      return true;
    case MTOPT_SPLIT_THRESHOLD:
      if (!parse_size(arg, &v)) return false;
      o->split_threshold_bytes = v;
      *mask |= MICA_ALTER_SPLIT_THRESHOLD;
      return true;
    case MTOPT_BLOCK_SIZE:
      if (!parse_size(arg, &v) || v > UINT32_MAX) return false;
      o->block_size = (uint32_t)v;
      *mask |= MICA_ALTER_BLOCK_SIZE;
      return true;
    case MTOPT_BLOOM_BITS:
      if (strcmp(arg, "default") == 0) {
        o->bloom_bits = -1;
      } else {
        if (!parse_size(arg, &v) || v > 32 || strpbrk(arg, "KkMmGgTt")) return false;
        o->bloom_bits = (int)v;
      }
      *mask |= MICA_ALTER_BLOOM_BITS;
      return true;
    case MTOPT_SALT:
      if (!parse_size(arg, &v) || v > 1000 || strpbrk(arg, "KkMmGgTtd")) return false;
      o->salt_buckets = (uint32_t)v;
      return true;
    default:
      return false;
  }
}

void mtopt_print(FILE *f, const mica_table_info *t, bool json) {
  const char *comp = t->compression[0] ? t->compression : "default";
  if (json) {
    fprintf(f, "{\"compression\": \"%s\", \"split_threshold_bytes\": %" PRIu64
               ", \"block_size\": %" PRIu32 ", \"bloom_bits\": %d"
               ", \"salt_buckets\": %" PRIu32 "}",
            comp, t->split_threshold_bytes, t->block_size, t->bloom_bits,
            t->salt_buckets);
    return;
  }
  fprintf(f, "compression:      %s\n", comp);
  if (t->split_threshold_bytes)
    fprintf(f, "split_threshold:  %" PRIu64 " bytes\n", t->split_threshold_bytes);
  else
    fprintf(f, "split_threshold:  default (the master's --split-threshold)\n");
  if (t->block_size) fprintf(f, "block_size:       %" PRIu32 " bytes\n", t->block_size);
  else fprintf(f, "block_size:       default\n");
  if (t->bloom_bits >= 0) fprintf(f, "bloom_bits:       %d\n", t->bloom_bits);
  else fprintf(f, "bloom_bits:       default\n");
  if (t->salt_buckets)
    fprintf(f, "salt_buckets:     %" PRIu32 " (scans fan out to every bucket)\n",
            t->salt_buckets);
  else
    fprintf(f, "salt_buckets:     none\n");
}

void mtopt_salts_load(mica_client *c, mtopt_salts *out) {
  out->v = NULL;
  out->n = 0;
  if (mica_list_tables(c, &out->v, &out->n) != MICA_OK) {
    out->v = NULL;
    out->n = 0;
  }
}

void mtopt_salts_free(mtopt_salts *s) {
  mica_free(s->v);
  s->v = NULL;
  s->n = 0;
}

uint32_t mtopt_salt_of(const mtopt_salts *s, const char *table) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i].name, table) == 0) return s->v[i].salt_buckets;
  return 0;
}

void mtopt_unsalted(const void *key, size_t len, buf *out) {
  const uint8_t *k = key;
  char head[16];
  snprintf(head, sizeof head, "[%u]", (unsigned)k[0]);
  buf_clear(out);
  buf_append(out, head, strlen(head));
  if (len > 1) {
    buf esc = BUF_INIT;
    buf_push(out, ' ');
    slice_escape(slice_make(k + 1, len - 1), &esc);
    buf_append(out, esc.data, esc.len);
    buf_free(&esc);
  }
  buf_push(out, 0);
}
