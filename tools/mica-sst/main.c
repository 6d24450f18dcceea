/* mica-sst: looks inside SSTables and measures the SSTable library.
 *
 *   mica-sst dump FILE     every entry, escaped, as "key @seq KIND => value"
 *   mica-sst build FILE    writes a table from lines in dump's format
 *   mica-sst verify FILE   every checksum, key order, properties vs data
 *   mica-sst stats FILE    properties, blocks, filter, compression
 *   mica-sst bench         build/scan/lookup throughput, against LevelDB
 *
 * Output is plain text for people and scripts alike: one entry or one
 * "name: value" pair per line. Errors are one line on stderr. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/ikey.h"
#include "sstable/sstable.h"
#include "tools/mica-sst/mica_sst.h"

static const char *prog = "mica-sst";

static void usage_main(FILE *f) {
  fprintf(f,
          "usage: mica-sst COMMAND [FLAGS] [FILE]\n"
          "\n"
          "Looks inside Mica SSTables (format: sstable/FORMAT.md) and benchmarks\n"
          "the SSTable library.\n"
          "\n"
          "commands:\n"
          "  dump FILE      print every entry: key @seq PUT|DELETE => value (escaped)\n"
          "  build FILE     write a table from lines in dump's format on stdin\n"
          "  verify FILE    check every checksum, the key order and the properties\n"
          "  stats FILE     print the properties, block count, filter and compression\n"
          "  bench          build, scan and look up a table; compare with LevelDB\n"
          "\n"
          "Run 'mica-sst COMMAND --help' for the flags of a command.\n"
          "\n"
          "examples:\n"
          "  mica-sst stats /data/t1/000012.sst\n"
          "  mica-sst dump --limit 20 /data/t1/000012.sst\n"
          "  printf 'a @2 PUT => x\\nb @1 DELETE\\n' | mica-sst build /tmp/t.sst\n"
          "  mica-sst verify /data/t1/000012.sst && echo intact\n"
          "  mica-sst bench --entries 1000000 --dir /tmp\n"
          "\n"
          "exit status: 0 success, 1 the file is corrupt or unreadable, 2 bad usage\n");
}

static void usage_dump(FILE *f) {
  fprintf(f,
          "usage: mica-sst dump [--limit N] [--max-value BYTES] [--keys-only] FILE\n"
          "\n"
          "Prints every entry in key order, one per line:\n"
          "  KEY @SEQ PUT => VALUE      or      KEY @SEQ DELETE\n"
          "Bytes outside printable ASCII (and the backslash) appear as \\xNN, and so\n"
          "do spaces in keys, so that 'mica-sst build' reads the output back.\n"
          "\n"
          "flags:\n"
          "  --limit N          stop after N entries (default: all)\n"
          "  --max-value BYTES  show at most BYTES of each value, then\n"
          "                     \"...(N bytes)\" (default 256; 0 = whole values)\n"
          "  --keys-only        leave values out\n"
          "  --help             this text\n"
          "\n"
          "example:\n"
          "  mica-sst dump --limit 5 /data/t1/000012.sst\n");
}

static void usage_build(FILE *f) {
  fprintf(f,
          "usage: mica-sst build [--block-size BYTES] [--restart-interval N]\n"
          "                      [--bloom-bits N] [--compression none|lz4|zstd] FILE\n"
          "\n"
          "Writes the SSTable FILE (replacing it) from lines on stdin in the format\n"
          "'mica-sst dump' prints, in key order (user key ascending, then sequence\n"
          "descending):\n"
          "  KEY @SEQ PUT => VALUE\n"
          "  KEY @SEQ DELETE\n"
          "KEY has no spaces (write them as \\x20); both KEY and VALUE take the\n"
          "escapes \\xNN, \\\\, \\n, \\t and \\0. Prints the file's size and entry count.\n"
          "\n"
          "flags:\n"
          "  --block-size BYTES      data block size (default %d)\n"
          "  --restart-interval N    keys between restart points (default %d)\n"
          "  --bloom-bits N          Bloom filter bits per key, 0 for none (default %d)\n"
          "  --compression NAME      none, lz4 or zstd (default none)\n"
          "  --help                  this text\n"
          "\n"
          "examples:\n"
          "  printf 'apple @3 PUT => red\\napple @2 DELETE\\n' | mica-sst build /tmp/a.sst\n"
          "  mica-sst dump old.sst | mica-sst build --compression zstd new.sst\n",
          SST_DEFAULT_BLOCK_SIZE, SST_DEFAULT_RESTART_INTERVAL, SST_DEFAULT_BLOOM_BITS);
}

static void usage_verify(FILE *f) {
  fprintf(f,
          "usage: mica-sst verify FILE\n"
          "\n"
          "Reads every block of FILE and checks its checksum, that keys are valid\n"
          "internal keys in strictly increasing order, that each block agrees with\n"
          "its index entry, that the Bloom filter has no false negative, and that\n"
          "the properties (counts, sizes, smallest/largest key and sequence) match\n"
          "the data. Prints one line; exits 1 on the first problem.\n"
          "\n"
          "flags:\n"
          "  --help   this text\n"
          "\n"
          "example:\n"
          "  mica-sst verify /data/t1/000012.sst\n");
}

static void usage_stats(FILE *f) {
  fprintf(f,
          "usage: mica-sst stats FILE\n"
          "\n"
          "Prints the properties of FILE as \"name: value\" lines: entries,\n"
          "deletions, raw key and value bytes, data/index/filter sizes, block\n"
          "count and average size, compression and how many blocks it shrank,\n"
          "Bloom bits per key, smallest and largest key and sequence.\n"
          "\n"
          "flags:\n"
          "  --help   this text\n"
          "\n"
          "example:\n"
          "  mica-sst stats /data/t1/000012.sst\n");
}

/* ---- flags ---- */

bool sst_parse_flags(int argc, char **argv, int first, flag *flags,
                     const char **pos, int max_pos, int *npos, bool *help) {
  *npos = 0;
  *help = false;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      *help = true;
      continue;
    }
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      if (*npos >= max_pos) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
        return false;
      }
      pos[(*npos)++] = a;
      continue;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    flag *f = NULL;
    for (flag *g = flags; g != NULL && g->name != NULL; g++)
      if (strlen(g->name) == nlen && strncmp(g->name, name, nlen) == 0) f = g;
    if (f == NULL) {
      fprintf(stderr, "%s: unknown flag '%s'\n", prog, a);
      return false;
    }
    if (!f->takes_value) {
      if (eq != NULL) {
        fprintf(stderr, "%s: flag --%s takes no value\n", prog, f->name);
        return false;
      }
      f->value = "";
    } else if (eq != NULL) {
      f->value = eq + 1;
    } else if (i + 1 < argc) {
      f->value = argv[++i];
    } else {
      fprintf(stderr, "%s: flag --%s needs a value\n", prog, f->name);
      return false;
    }
  }
  return true;
}

bool sst_flag_u64(const flag *f, uint64_t def, uint64_t min, uint64_t max,
                  uint64_t *out) {
  if (f->value == NULL) {
    *out = def;
    return true;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(f->value, &end, 10);
  if (errno != 0 || end == f->value || *end != '\0' || f->value[0] == '-' ||
      v < min || v > max) {
    fprintf(stderr, "%s: --%s wants a number in %" PRIu64 "..%" PRIu64 ", not '%s'\n",
            prog, f->name, min, max, f->value);
    return false;
  }
  *out = v;
  return true;
}

/* ---- helpers ---- */

static int fail(const char *what, mica_err *err) {
  fprintf(stderr, "%s: %s: %s: %s\n", prog, what, mica_code_name(err_code(err)),
          err_msg(err));
  err_free(err);
  return EXIT_FAILED;
}

/* slice_escape, plus spaces as \x20: a dumped key never contains a space,
 * which is what lets `build` split its input lines. */
static void escape_key(slice k, buf *out) {
  size_t from = 0;
  for (size_t i = 0; i <= k.len; i++) {
    if (i == k.len || k.data[i] == ' ') {
      slice_escape(slice_make(k.data + from, i - from), out);
      if (i < k.len) buf_append(out, "\\x20", 4);
      from = i + 1;
    }
  }
}

/* Appends "escaped-user-key @seq KIND" for an internal key, keeping `out`
 * NUL-terminated. */
static void format_ikey(slice ik, buf *out) {
  ikey_parts p;
  if (!ikey_parse(ik, &p)) {
    escape_key(ik, out);
    return;
  }
  escape_key(p.user_key, out);
  char tail[64];
  int n = snprintf(tail, sizeof tail, " @%" PRIu64 " %s", p.seq,
                   p.kind == IKEY_PUT ? "PUT" : "DELETE");
  buf_append(out, tail, (size_t)n);
  buf_reserve(out, 1);
  out->data[out->len] = '\0'; /* a C string too, not counted in len */
}

/* Parses "CMD [flags] FILE": returns EXIT_OK with *path set, or the exit
 * status to return right away. */
static int one_file(int argc, char **argv, flag *flags, void (*usage)(FILE *),
                    const char **path) {
  const char *pos[1];
  int npos;
  bool help;
  if (!sst_parse_flags(argc, argv, 2, flags, pos, 1, &npos, &help)) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (help) {
    usage(stdout);
    return -1;
  }
  if (npos != 1) {
    fprintf(stderr, "%s: %s needs exactly one FILE\n", prog, argv[1]);
    usage(stderr);
    return EXIT_USAGE;
  }
  *path = pos[0];
  return EXIT_OK;
}

/* ---- commands ---- */

static int cmd_dump(int argc, char **argv) {
  flag flags[] = {{"limit", true, NULL}, {"max-value", true, NULL},
                  {"keys-only", false, NULL}, {NULL, false, NULL}};
  const char *path;
  int rc = one_file(argc, argv, flags, usage_dump, &path);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  uint64_t limit, maxv;
  if (!sst_flag_u64(&flags[0], UINT64_MAX, 0, UINT64_MAX, &limit) ||
      !sst_flag_u64(&flags[1], 256, 0, UINT64_MAX, &maxv)) {
    usage_dump(stderr);
    return EXIT_USAGE;
  }
  bool keys_only = flags[2].value != NULL;
  sst_reader *r;
  mica_err *err = sst_reader_open(env_posix(), path, NULL, &r);
  if (err != NULL) return fail("dump", err);
  iter *it = sst_reader_iter_new(r, false);
  buf line = BUF_INIT;
  uint64_t n = 0;
  for (iter_seek_to_first(it); iter_valid(it) && n < limit; iter_next(it), n++) {
    buf_clear(&line);
    slice k = iter_key(it), v = iter_value(it);
    format_ikey(k, &line);
    ikey_parts p;
    if (!keys_only && ikey_parse(k, &p) && p.kind == IKEY_PUT) {
      buf_append(&line, " => ", 4);
      bool cut = maxv > 0 && v.len > maxv;
      slice_escape(cut ? slice_make(v.data, (size_t)maxv) : v, &line);
      if (cut) {
        char more[48];
        int m = snprintf(more, sizeof more, "...(%zu bytes)", v.len);
        buf_append(&line, more, (size_t)m);
      }
    }
    buf_push(&line, '\n');
    fwrite(line.data, 1, line.len, stdout);
  }
  buf_free(&line);
  rc = EXIT_OK;
  if (iter_status(it) != NULL) rc = fail("dump", err_dup(iter_status(it)));
  iter_close(it);
  sst_reader_close(r);
  if (fflush(stdout) != 0) rc = EXIT_FAILED;
  return rc;
}

/* Parses one input line of `build` into an internal key and value. */
static bool parse_entry(char *line, buf *ik, buf *value) {
  char *sp = strchr(line, ' ');
  if (sp == NULL || sp[1] != '@') return false;
  *sp = '\0';
  buf uk = BUF_INIT;
  bool ok = slice_unescape(line, &uk);
  char *end;
  errno = 0;
  unsigned long long seq = strtoull(sp + 2, &end, 10);
  if (!ok || errno != 0 || end == sp + 2 || seq > IKEY_MAX_SEQ || *end != ' ') {
    buf_free(&uk);
    return false;
  }
  char *kind = end + 1;
  buf_clear(value);
  buf_clear(ik);
  if (strcmp(kind, "DELETE") == 0) {
    ikey_append(ik, buf_slice(&uk), seq, IKEY_DELETE);
  } else if (strncmp(kind, "PUT => ", 7) == 0 && slice_unescape(kind + 7, value)) {
    ikey_append(ik, buf_slice(&uk), seq, IKEY_PUT);
  } else if (strcmp(kind, "PUT =>") == 0 || strcmp(kind, "PUT") == 0) {
    ikey_append(ik, buf_slice(&uk), seq, IKEY_PUT);
  } else {
    ok = false;
  }
  buf_free(&uk);
  return ok;
}

static int cmd_build(int argc, char **argv) {
  flag flags[] = {{"block-size", true, NULL}, {"restart-interval", true, NULL},
                  {"bloom-bits", true, NULL}, {"compression", true, NULL},
                  {NULL, false, NULL}};
  const char *path;
  int rc = one_file(argc, argv, flags, usage_build, &path);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  sst_options o;
  sst_options_init(&o);
  uint64_t bs, ri, bits;
  if (!sst_flag_u64(&flags[0], SST_DEFAULT_BLOCK_SIZE, 1024, 4 << 20, &bs) ||
      !sst_flag_u64(&flags[1], SST_DEFAULT_RESTART_INTERVAL, 1, 1024, &ri) ||
      !sst_flag_u64(&flags[2], SST_DEFAULT_BLOOM_BITS, 0, 32, &bits)) {
    usage_build(stderr);
    return EXIT_USAGE;
  }
  o.block_size = (size_t)bs;
  o.restart_interval = (int)ri;
  o.bloom_bits_per_key = (int)bits;
  const char *comp = flags[3].value;
  if (comp == NULL || strcmp(comp, "none") == 0) {
    o.compression = SST_COMPRESS_NONE;
  } else if (strcmp(comp, "lz4") == 0) {
    o.compression = SST_COMPRESS_LZ4;
  } else if (strcmp(comp, "zstd") == 0) {
    o.compression = SST_COMPRESS_ZSTD;
  } else {
    fprintf(stderr, "%s: --compression wants none, lz4 or zstd, not '%s'\n", prog, comp);
    usage_build(stderr);
    return EXIT_USAGE;
  }
  sst_builder *b;
  mica_err *err = sst_builder_new(env_posix(), path, &o, &b);
  if (err != NULL) return fail("build", err);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  uint64_t lineno = 0;
  buf ik = BUF_INIT, value = BUF_INIT;
  while (err == NULL && (n = getline(&line, &cap, stdin)) >= 0) {
    lineno++;
    if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    if (n == 0) continue;
    if (!parse_entry(line, &ik, &value)) {
      err = err_new(MICA_INVALID_ARGUMENT, "stdin line %" PRIu64 ": want 'KEY @SEQ PUT "
                    "=> VALUE' or 'KEY @SEQ DELETE'", lineno);
      break;
    }
    err = sst_builder_add(b, buf_slice(&ik), buf_slice(&value));
    if (err != NULL) err = err_wrap(err, "stdin line %" PRIu64, lineno);
  }
  free(line);
  buf_free(&ik);
  buf_free(&value);
  if (err == NULL && ferror(stdin))
    err = err_new(MICA_IO_ERROR, "reading stdin: %s", strerror(errno));
  if (err != NULL) {
    sst_builder_abandon(b);
    return fail("build", err);
  }
  sst_properties p;
  err = sst_builder_finish(b, &p);
  if (err != NULL) return fail("build", err);
  uint64_t size = 0;
  err = env_file_size(env_posix(), path, &size);
  if (err != NULL) {
    sst_properties_clear(&p);
    return fail("build", err);
  }
  printf("wrote %s: %" PRIu64 " entries, %" PRIu64 " bytes\n", path, p.num_entries, size);
  sst_properties_clear(&p);
  return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
}

static int cmd_verify(int argc, char **argv) {
  flag flags[] = {{NULL, false, NULL}};
  const char *path;
  int rc = one_file(argc, argv, flags, usage_verify, &path);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  sst_reader *r;
  mica_err *err = sst_reader_open(env_posix(), path, NULL, &r);
  if (err != NULL) return fail("verify", err);
  err = sst_reader_verify(r);
  if (err == NULL) {
    const sst_properties *p = sst_reader_properties(r);
    printf("ok: %s: %" PRIu64 " entries in %zu data blocks; every checksum, the key "
           "order, the index, the filter and the properties check out\n",
           path, p->num_entries, sst_reader_num_blocks(r));
  }
  sst_reader_close(r);
  return err != NULL ? fail("verify", err) : EXIT_OK;
}

static const char *compression_name(uint32_t c) {
  switch (c) {
    case SST_COMPRESS_NONE: return "none";
    case SST_COMPRESS_LZ4: return "lz4";
    case SST_COMPRESS_ZSTD: return "zstd";
    default: return "unknown";
  }
}

static int cmd_stats(int argc, char **argv) {
  flag flags[] = {{NULL, false, NULL}};
  const char *path;
  int rc = one_file(argc, argv, flags, usage_stats, &path);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  sst_reader *r;
  mica_err *err = sst_reader_open(env_posix(), path, NULL, &r);
  if (err != NULL) return fail("stats", err);
  const sst_properties *p = sst_reader_properties(r);
  size_t nb = sst_reader_num_blocks(r);
  buf sk = BUF_INIT, lk = BUF_INIT;
  format_ikey(buf_slice(&p->smallest_key), &sk);
  format_ikey(buf_slice(&p->largest_key), &lk);
  printf("file: %s\n", path);
  printf("file_size: %" PRIu64 "\n", sst_reader_file_size(r));
  printf("format_version: %u\n", p->format_version);
  printf("entries: %" PRIu64 "\n", p->num_entries);
  printf("deletions: %" PRIu64 "\n", p->num_deletions);
  printf("raw_key_bytes: %" PRIu64 "\n", p->raw_key_bytes);
  printf("raw_value_bytes: %" PRIu64 "\n", p->raw_value_bytes);
  printf("data_blocks: %zu\n", nb);
  printf("data_size: %" PRIu64 "\n", p->data_size);
  printf("data_size_uncompressed: %" PRIu64 "\n", p->raw_data_size);
  printf("avg_block_size: %" PRIu64 "\n", nb ? p->data_size / nb : 0);
  printf("compression: %s\n", compression_name(p->compression));
  printf("compressed_blocks: %" PRIu64 "\n", p->num_compressed_blocks);
  printf("index_size: %" PRIu64 "\n", p->index_size);
  printf("filter_size: %" PRIu64 "\n", p->filter_size);
  printf("bloom_bits_per_key: %u\n", p->bloom_bits_per_key);
  printf("block_size_option: %u\n", p->block_size);
  printf("restart_interval: %u\n", p->restart_interval);
  printf("smallest_key: %s\n", p->num_entries ? (char *)sk.data : "");
  printf("largest_key: %s\n", p->num_entries ? (char *)lk.data : "");
  printf("smallest_seq: %" PRIu64 "\n", p->smallest_seq);
  printf("largest_seq: %" PRIu64 "\n", p->largest_seq);
  buf_free(&sk);
  buf_free(&lk);
  sst_reader_close(r);
  return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage_main(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage_main(stdout);
    return EXIT_OK;
  }
  if (strcmp(cmd, "dump") == 0) return cmd_dump(argc, argv);
  if (strcmp(cmd, "build") == 0) return cmd_build(argc, argv);
  if (strcmp(cmd, "verify") == 0) return cmd_verify(argc, argv);
  if (strcmp(cmd, "stats") == 0) return cmd_stats(argc, argv);
  if (strcmp(cmd, "bench") == 0) return sst_cmd_bench(argc, argv);
  fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
  usage_main(stderr);
  return EXIT_USAGE;
}
