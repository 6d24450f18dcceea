/* bench: `mica-sst bench`, the SSTable library's throughput against the
 * disk and against LevelDB, measured in one run on one machine.
 *
 * Rows (N entries, 16-byte user keys in order, 100-byte random values, no
 * compression, 10-bit Bloom filters, the same block size on both sides):
 *   disk     append 256 MiB through the env in 1 MiB calls, then fdatasync
 *   build    Mica: one SSTable from sorted input, synced.
 *            LevelDB: fill in batches of 1000 (no sync), then compact_range
 *            so the data ends in sorted tables, as Mica's does.
 *   scan     every entry in order: once reading every block from the file
 *            (the OS page cache, in practice) without filling the block
 *            cache, then, after an untimed pass that fills it, once with
 *            every block in a block cache big enough for the whole table.
 *   get      random point lookups of present keys with that big cache
 *            (warmed by the scans), and without any block cache (Mica: no
 *            cache; LevelDB: reopened with a zero-capacity cache, which
 *            LevelDB treats as "do not cache"). The OS page cache still
 *            holds the file, so "uncached" means "no block cache": every
 *            lookup reads, checksums and parses a block, but no lookup
 *            waits for the device. LevelDB reads its tables through mmap
 *            and by default does not verify block checksums on reads;
 *            Mica always does, so two more rows run LevelDB's file scan
 *            and uncached lookups with verify_checksums on. (Blocks LevelDB
 *            reads from an mmap'd, uncompressed table are never put in its
 *            block cache, so its cached and uncached rows run the same
 *            code.)
 * The read rows run in rounds that alternate Mica and LevelDB, each on
 * freshly opened readers, and report the median round, so that a change
 * in the machine's load weighs on both sides alike.
 *
 * Each row is reported twice: per second of wall-clock time, and per
 * second of CPU time the process used (getrusage). On a machine shared
 * with other work the wall-clock figure mostly measures the scheduler;
 * the CPU-time figure measures the code. (The env offers monotonic and
 * wall clocks only, which is what the wall-clock column uses; process CPU
 * time is not a clock the rest of Mica has any use for.)
 * Mica/LevelDB ratios above 1 mean Mica is faster. Build is also given as
 * a share of the disk's bandwidth: file bytes written per second of build.
 *
 * LevelDB is optional at build time (MICA_HAVE_LEVELDB); without it the
 * LevelDB columns are empty and the output says "LevelDB not found". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cache.h"
#include "common/env.h"
#include "common/ikey.h"
#include "sstable/sstable.h"
#include "tools/mica-sst/mica_sst.h"

#ifdef MICA_HAVE_LEVELDB
#include <leveldb/c.h>
#endif

#define KEY_LEN 16
#define VALUE_LEN 100
#define VALUE_POOL (1 << 20)
#define MAX_ROUNDS 9

static void usage(FILE *f) {
  fprintf(f,
          "usage: mica-sst bench [--entries N] [--dir DIR] [--lookups N]\n"
          "                      [--uncached-lookups N] [--disk-mib N]\n"
          "                      [--block-size BYTES] [--rounds N] [--no-leveldb]\n"
          "\n"
          "Builds one SSTable of N entries (16-byte keys, 100-byte values, no\n"
          "compression), scans it and looks keys up, and does the same with LevelDB\n"
          "(fill in sorted order, compact, readseq, readrandom) when the tool was\n"
          "built with it. Also measures the disk's sequential write bandwidth\n"
          "(append + fdatasync). Prints each rate per second of wall-clock time and\n"
          "per second of CPU time, and the Mica/LevelDB ratios.\n"
          "\n"
          "flags:\n"
          "  --entries N            entries in the table (default 1000000)\n"
          "  --dir DIR              where to write; a fresh subdirectory is made\n"
          "                         and removed afterwards (default $TMPDIR or /tmp)\n"
          "  --lookups N            random lookups per round with the block cache\n"
          "                         (default 500000)\n"
          "  --uncached-lookups N   random lookups per round without it (default 200000)\n"
          "  --rounds N             read rounds, alternating Mica and LevelDB; each\n"
          "                         row shows the median round (default 3, at most 9)\n"
          "  --disk-mib N           MiB written to measure the disk (default 256)\n"
          "  --block-size BYTES     data block size on both sides (default 8192)\n"
          "  --no-leveldb           skip the LevelDB side\n"
          "  --help                 this text\n"
          "\n"
          "example:\n"
          "  mica-sst bench --entries 1000000 --dir /var/tmp\n");
}

/* Scans add up the bytes they see here so the compiler keeps the reads. */
static volatile uint64_t sink;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Key i as 16 decimal digits: keys sort in the order they are made. */
static void make_key(uint64_t i, char *k) {
  for (int j = KEY_LEN - 1; j >= 0; j--) {
    k[j] = (char)('0' + i % 10);
    i /= 10;
  }
}

static const uint8_t *value_of(const uint8_t *pool, uint64_t i) {
  return pool + (i * 7919) % (VALUE_POOL - VALUE_LEN);
}

/* ---- measuring ---- */

enum row_id {
  ROW_BUILD,
  ROW_SCAN_FILE,
  ROW_SCAN_FILE_VERIFY,
  ROW_SCAN_CACHE,
  ROW_GET_CACHE,
  ROW_GET_NOCACHE,
  ROW_GET_NOCACHE_VERIFY,
  ROW_COUNT_
};

static const struct {
  const char *name, *unit;
} row_names[ROW_COUNT_] = {
    {"build (leveldb: fill + compact)", "entries/s"},
    {"scan, blocks from file", "entries/s"},
    {"scan, blocks from file, verify crc", "entries/s"},
    {"scan, blocks in cache", "entries/s"},
    {"get, block cache", "lookups/s"},
    {"get, no block cache", "lookups/s"},
    {"get, no block cache, verify crc", "lookups/s"},
};

typedef struct rates {
  bool ok;
  double wall[ROW_COUNT_]; /* operations per wall-clock second */
  double cpu[ROW_COUNT_];  /* operations per second of process CPU time */
  uint64_t bytes;          /* table bytes on disk */
} rates;

typedef struct meter {
  uint64_t wall_us, cpu_us;
} meter;

static uint64_t cpu_micros(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
         (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
}

static meter meter_start(void) {
  meter m = {env_now_micros(env_posix()), cpu_micros()};
  return m;
}

/* Records `n` operations since `m` into row `row` of `out`. */
static void meter_stop(meter m, uint64_t n, rates *out, enum row_id row) {
  uint64_t wall = env_now_micros(env_posix()) - m.wall_us;
  uint64_t cpu = cpu_micros() - m.cpu_us;
  out->wall[row] = (double)n / ((double)(wall ? wall : 1) / 1e6);
  out->cpu[row] = (double)n / ((double)(cpu ? cpu : 1) / 1e6);
}

typedef struct cfg {
  uint64_t entries, lookups, uncached_lookups, disk_mib, block_size, rounds;
  const char *dir;
  const uint8_t *pool;
} cfg;

static int bench_fail(const char *what, mica_err *err) {
  fprintf(stderr, "mica-sst: bench: %s: %s\n", what, err_msg(err));
  err_free(err);
  return EXIT_FAILED;
}

static int disk_bandwidth(const cfg *c, double *mbps) {
  char path[4096];
  snprintf(path, sizeof path, "%s/disk.bin", c->dir);
  size_t chunk = 1 << 20;
  uint8_t *data = xmalloc(chunk);
  for (size_t i = 0; i < chunk; i++) data[i] = (uint8_t)rnd();
  env_writer *w;
  mica_err *err = env_open_writer(env_posix(), path, ENV_TRUNCATE, &w);
  if (err != NULL) {
    free(data);
    return bench_fail("disk", err);
  }
  uint64_t t0 = env_now_micros(env_posix());
  for (uint64_t i = 0; i < c->disk_mib && err == NULL; i++)
    err = env_append(w, data, chunk);
  if (err == NULL) err = env_sync(w);
  uint64_t t1 = env_now_micros(env_posix());
  mica_err *cerr = env_writer_close(w);
  if (err == NULL) err = cerr; else err_free(cerr);
  free(data);
  err_free(env_remove(env_posix(), path));
  if (err != NULL) return bench_fail("disk", err);
  *mbps = (double)c->disk_mib * chunk / 1e6 / ((double)(t1 > t0 ? t1 - t0 : 1) / 1e6);
  return EXIT_OK;
}

/* ---- Mica ---- */

static void mica_path(const cfg *c, char *path, size_t n) {
  snprintf(path, n, "%s/bench.sst", c->dir);
}

static int mica_build(const cfg *c, rates *out) {
  char path[4096];
  mica_path(c, path, sizeof path);
  sst_options o;
  sst_options_init(&o);
  o.block_size = (size_t)c->block_size;
  sst_builder *b;
  buf ik = BUF_INIT;
  char k[KEY_LEN];
  meter m = meter_start();
  mica_err *err = sst_builder_new(env_posix(), path, &o, &b);
  if (err != NULL) return bench_fail("mica build", err);
  for (uint64_t i = 0; i < c->entries && err == NULL; i++) {
    make_key(i, k);
    buf_clear(&ik);
    ikey_append(&ik, slice_make(k, KEY_LEN), i + 1, IKEY_PUT);
    err = sst_builder_add(b, buf_slice(&ik), slice_make(value_of(c->pool, i), VALUE_LEN));
  }
  buf_free(&ik);
  if (err != NULL) {
    sst_builder_abandon(b);
    return bench_fail("mica build", err);
  }
  err = sst_builder_finish(b, NULL);
  meter_stop(m, c->entries, out, ROW_BUILD);
  if (err != NULL) return bench_fail("mica build", err);
  err = env_file_size(env_posix(), path, &out->bytes);
  if (err != NULL) return bench_fail("mica build", err);
  out->ok = true;
  return EXIT_OK;
}

static mica_err *mica_scan(sst_reader *r, bool fill, uint64_t expect, rates *out,
                           enum row_id row) {
  iter *it = sst_reader_iter_new(r, fill);
  uint64_t n = 0, bytes = 0;
  meter m = meter_start();
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
    bytes += iter_key(it).len + iter_value(it).len;
    n++;
  }
  meter_stop(m, n, out, row);
  mica_err *err = iter_status(it) ? err_dup(iter_status(it)) : NULL;
  iter_close(it);
  if (err == NULL && n != expect)
    err = err_new(MICA_INTERNAL, "scan saw %" PRIu64 " entries, want %" PRIu64, n, expect);
  sink += bytes;
  return err;
}

static mica_err *mica_gets(const cfg *c, sst_reader *r, uint64_t count, rates *out,
                           enum row_id row) {
  char k[KEY_LEN];
  buf v = BUF_INIT;
  mica_err *err = NULL;
  meter m = meter_start();
  for (uint64_t i = 0; i < count && err == NULL; i++) {
    uint64_t idx = rnd() % c->entries;
    make_key(idx, k);
    sst_get_result res;
    err = sst_reader_get(r, slice_make(k, KEY_LEN), IKEY_MAX_SEQ, &res, &v, NULL);
    if (err == NULL && (res != SST_GET_PUT || v.len != VALUE_LEN ||
                        memcmp(v.data, value_of(c->pool, idx), VALUE_LEN) != 0))
      err = err_new(MICA_INTERNAL, "lookup of entry %" PRIu64 " returned the wrong answer",
                    idx);
  }
  meter_stop(m, count, out, row);
  buf_free(&v);
  return err;
}

/* One round of the read rows, on freshly opened readers. */
static int mica_reads(const cfg *c, rates *out) {
  char path[4096];
  mica_path(c, path, sizeof path);
  cache *bc = cache_new((size_t)c->entries * 200 + (64 << 20));
  sst_reader *r = NULL;
  rates scratch;
  mica_err *err = sst_reader_open(env_posix(), path, bc, &r);
  if (err == NULL) err = mica_scan(r, false, c->entries, out, ROW_SCAN_FILE);
  if (err == NULL) err = mica_scan(r, true, c->entries, &scratch, ROW_SCAN_CACHE);
  if (err == NULL) err = mica_scan(r, true, c->entries, out, ROW_SCAN_CACHE);
  if (err == NULL) err = mica_gets(c, r, c->lookups, out, ROW_GET_CACHE);
  sst_reader_close(r);
  r = NULL;
  if (err == NULL) err = sst_reader_open(env_posix(), path, NULL, &r);
  if (err == NULL) err = mica_gets(c, r, c->uncached_lookups, out, ROW_GET_NOCACHE);
  sst_reader_close(r);
  cache_free(bc);
  if (err != NULL) return bench_fail("mica", err);
  /* Mica checks every block it reads from the file: the "verify crc" rows
   * are the same measurements. */
  out->wall[ROW_SCAN_FILE_VERIFY] = out->wall[ROW_SCAN_FILE];
  out->cpu[ROW_SCAN_FILE_VERIFY] = out->cpu[ROW_SCAN_FILE];
  out->wall[ROW_GET_NOCACHE_VERIFY] = out->wall[ROW_GET_NOCACHE];
  out->cpu[ROW_GET_NOCACHE_VERIFY] = out->cpu[ROW_GET_NOCACHE];
  return EXIT_OK;
}

/* ---- LevelDB ---- */

#ifdef MICA_HAVE_LEVELDB
static int ldb_fail(const char *what, char *msg) {
  fprintf(stderr, "mica-sst: bench: leveldb %s: %s\n", what, msg);
  leveldb_free(msg);
  return EXIT_FAILED;
}

static void ldb_path(const cfg *c, char *path, size_t n) {
  snprintf(path, n, "%s/leveldb", c->dir);
}

static leveldb_t *ldb_open(const cfg *c, leveldb_cache_t *bcache,
                           leveldb_filterpolicy_t *fp, leveldb_options_t **opts,
                           char **errp) {
  char path[4096];
  ldb_path(c, path, sizeof path);
  leveldb_options_t *o = leveldb_options_create();
  leveldb_options_set_create_if_missing(o, 1);
  leveldb_options_set_compression(o, leveldb_no_compression);
  leveldb_options_set_block_size(o, (size_t)c->block_size);
  leveldb_options_set_filter_policy(o, fp);
  leveldb_options_set_cache(o, bcache);
  *opts = o;
  return leveldb_open(o, path, errp);
}

static uint64_t dir_bytes(const char *dir) {
  char **names;
  size_t n;
  uint64_t total = 0;
  mica_err *lerr = env_list(env_posix(), dir, &names, &n);
  if (lerr != NULL) {
    err_free(lerr);
    return 0;
  }
  buf p = BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    uint64_t sz;
    buf_clear(&p);
    buf_append(&p, dir, strlen(dir));
    buf_push(&p, '/');
    buf_append(&p, names[i], strlen(names[i]) + 1);
    mica_err *err = NULL;
    if (strstr(names[i], ".ldb") != NULL &&
        (err = env_file_size(env_posix(), (const char *)p.data, &sz)) == NULL)
      total += sz;
    err_free(err);
  }
  buf_free(&p);
  env_free_names(names, n);
  return total;
}

static int ldb_build(const cfg *c, rates *out) {
  leveldb_filterpolicy_t *fp = leveldb_filterpolicy_create_bloom(SST_DEFAULT_BLOOM_BITS);
  leveldb_cache_t *bc = leveldb_cache_create_lru(8 << 20);
  leveldb_options_t *o;
  char *err = NULL;
  int rc = EXIT_OK;
  meter m = meter_start();
  leveldb_t *db = ldb_open(c, bc, fp, &o, &err);
  if (err != NULL) {
    rc = ldb_fail("open", err);
  } else {
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    char k[KEY_LEN];
    for (uint64_t i = 0; i < c->entries && err == NULL; i++) {
      make_key(i, k);
      leveldb_writebatch_put(wb, k, KEY_LEN, (const char *)value_of(c->pool, i), VALUE_LEN);
      if ((i + 1) % 1000 == 0 || i + 1 == c->entries) {
        leveldb_write(db, wo, wb, &err);
        leveldb_writebatch_clear(wb);
      }
    }
    leveldb_writebatch_destroy(wb);
    leveldb_writeoptions_destroy(wo);
    if (err != NULL) {
      rc = ldb_fail("fill", err);
    } else {
      leveldb_compact_range(db, NULL, 0, NULL, 0);
      meter_stop(m, c->entries, out, ROW_BUILD);
      char path[4096];
      ldb_path(c, path, sizeof path);
      out->bytes = dir_bytes(path);
    }
    leveldb_close(db);
  }
  leveldb_options_destroy(o);
  leveldb_cache_destroy(bc);
  leveldb_filterpolicy_destroy(fp);
  out->ok = rc == EXIT_OK;
  return rc;
}

static int ldb_scan(leveldb_t *db, bool fill, bool verify, uint64_t expect, rates *out,
                    enum row_id row) {
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  leveldb_readoptions_set_fill_cache(ro, fill);
  leveldb_readoptions_set_verify_checksums(ro, verify);
  leveldb_iterator_t *it = leveldb_create_iterator(db, ro);
  uint64_t n = 0, bytes = 0;
  meter m = meter_start();
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    leveldb_iter_key(it, &kl);
    leveldb_iter_value(it, &vl);
    bytes += kl + vl;
    n++;
  }
  meter_stop(m, n, out, row);
  char *err = NULL;
  leveldb_iter_get_error(it, &err);
  leveldb_iter_destroy(it);
  leveldb_readoptions_destroy(ro);
  if (err != NULL) return ldb_fail("scan", err);
  if (n != expect) {
    fprintf(stderr, "mica-sst: bench: leveldb scan saw %" PRIu64 " entries\n", n);
    return EXIT_FAILED;
  }
  sink += bytes;
  return EXIT_OK;
}

static int ldb_gets(const cfg *c, leveldb_t *db, bool verify, uint64_t count,
                    rates *out, enum row_id row) {
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  leveldb_readoptions_set_verify_checksums(ro, verify);
  char k[KEY_LEN];
  int rc = EXIT_OK;
  meter m = meter_start();
  for (uint64_t i = 0; i < count && rc == EXIT_OK; i++) {
    uint64_t idx = rnd() % c->entries;
    make_key(idx, k);
    size_t vl = 0;
    char *err = NULL;
    char *v = leveldb_get(db, ro, k, KEY_LEN, &vl, &err);
    if (err != NULL) {
      rc = ldb_fail("get", err);
    } else if (v == NULL || vl != VALUE_LEN ||
               memcmp(v, value_of(c->pool, idx), VALUE_LEN) != 0) {
      fprintf(stderr, "mica-sst: bench: leveldb get of %" PRIu64 " is wrong\n", idx);
      rc = EXIT_FAILED;
    }
    leveldb_free(v);
  }
  meter_stop(m, count, out, row);
  leveldb_readoptions_destroy(ro);
  return rc;
}

/* One round of the read rows, on freshly opened databases: one with a
 * block cache as big as the Mica side's, one with a zero-capacity cache. */
static int ldb_reads(const cfg *c, rates *out) {
  leveldb_filterpolicy_t *fp = leveldb_filterpolicy_create_bloom(SST_DEFAULT_BLOOM_BITS);
  leveldb_cache_t *big = leveldb_cache_create_lru((size_t)c->entries * 200 + (64 << 20));
  leveldb_cache_t *none = leveldb_cache_create_lru(0);
  leveldb_options_t *o;
  char *err = NULL;
  int rc = EXIT_OK;
  rates scratch;
  leveldb_t *db = ldb_open(c, big, fp, &o, &err);
  if (err != NULL) {
    rc = ldb_fail("open", err);
  } else {
    rc = ldb_scan(db, false, false, c->entries, out, ROW_SCAN_FILE);
    if (rc == EXIT_OK)
      rc = ldb_scan(db, false, true, c->entries, out, ROW_SCAN_FILE_VERIFY);
    if (rc == EXIT_OK) rc = ldb_scan(db, true, false, c->entries, &scratch, ROW_SCAN_CACHE);
    if (rc == EXIT_OK) rc = ldb_scan(db, true, false, c->entries, out, ROW_SCAN_CACHE);
    if (rc == EXIT_OK) rc = ldb_gets(c, db, false, c->lookups, out, ROW_GET_CACHE);
    leveldb_close(db);
  }
  leveldb_options_destroy(o);
  if (rc == EXIT_OK) {
    db = ldb_open(c, none, fp, &o, &err);
    if (err != NULL) {
      rc = ldb_fail("reopen", err);
    } else {
      rc = ldb_gets(c, db, false, c->uncached_lookups, out, ROW_GET_NOCACHE);
      if (rc == EXIT_OK)
        rc = ldb_gets(c, db, true, c->uncached_lookups, out, ROW_GET_NOCACHE_VERIFY);
      leveldb_close(db);
    }
    leveldb_options_destroy(o);
  }
  leveldb_cache_destroy(none);
  leveldb_cache_destroy(big);
  leveldb_filterpolicy_destroy(fp);
  return rc;
}
#endif

/* ---- report ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Sets the read rows of `out` to the medians over `n` rounds. */
static void take_medians(rates *out, const rates *rounds, int n) {
  for (int row = ROW_SCAN_FILE; row < ROW_COUNT_; row++) {
    double w[MAX_ROUNDS], cpu[MAX_ROUNDS];
    for (int i = 0; i < n; i++) {
      w[i] = rounds[i].wall[row];
      cpu[i] = rounds[i].cpu[row];
    }
    out->wall[row] = median(w, n);
    out->cpu[row] = median(cpu, n);
  }
}

static void print_table(const char *title, const rates *m, const rates *l, bool cpu) {
  printf("%-36s %13s %13s %7s\n", title, "mica", "leveldb", "ratio");
  for (int row = 0; row < ROW_COUNT_; row++) {
    double mv = cpu ? m->cpu[row] : m->wall[row];
    double lv = cpu ? l->cpu[row] : l->wall[row];
    if (l->ok)
      printf("%-36s %13.0f %13.0f %7.2f  %s\n", row_names[row].name, mv, lv,
             lv > 0 ? mv / lv : 0.0, row_names[row].unit);
    else
      printf("%-36s %13.0f %13s %7s  %s\n", row_names[row].name, mv, "-", "-",
             row_names[row].unit);
  }
}

int sst_cmd_bench(int argc, char **argv) {
  flag flags[] = {{"entries", true, NULL},          {"dir", true, NULL},
                  {"lookups", true, NULL},          {"uncached-lookups", true, NULL},
                  {"disk-mib", true, NULL},         {"no-leveldb", false, NULL},
                  {"block-size", true, NULL},       {"rounds", true, NULL},
                  {NULL, false, NULL}};
  const char *pos[1];
  int npos;
  bool help;
  if (!sst_parse_flags(argc, argv, 2, flags, pos, 0, &npos, &help)) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (help) {
    usage(stdout);
    return EXIT_OK;
  }
  cfg c = {0};
  if (!sst_flag_u64(&flags[0], 1000000, 1, UINT64_C(1) << 32, &c.entries) ||
      !sst_flag_u64(&flags[2], 500000, 1, UINT64_C(1) << 40, &c.lookups) ||
      !sst_flag_u64(&flags[3], 200000, 1, UINT64_C(1) << 40, &c.uncached_lookups) ||
      !sst_flag_u64(&flags[4], 256, 1, 1 << 20, &c.disk_mib) ||
      !sst_flag_u64(&flags[6], SST_DEFAULT_BLOCK_SIZE, 1024, 4 << 20, &c.block_size) ||
      !sst_flag_u64(&flags[7], 3, 1, MAX_ROUNDS, &c.rounds)) {
    usage(stderr);
    return EXIT_USAGE;
  }
  bool leveldb = flags[5].value == NULL;
  const char *base = flags[1].value;
  if (base == NULL) base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  if (strlen(base) > 3000) {
    fprintf(stderr, "mica-sst: bench: --dir path too long\n");
    return EXIT_USAGE;
  }
  char *dir = xmalloc(strlen(base) + 64);
  sprintf(dir, "%s/mica-sst-bench-%d", base, (int)getpid());
  mica_err *err = env_mkdirs(env_posix(), dir);
  if (err != NULL) {
    free(dir);
    return bench_fail("mkdir", err);
  }
  c.dir = dir;
  uint8_t *pool = xmalloc(VALUE_POOL);
  for (size_t i = 0; i < VALUE_POOL; i++) pool[i] = (uint8_t)rnd();
  c.pool = pool;

  printf("mica-sst bench: %" PRIu64 " entries, %d-byte keys, %d-byte values, no "
         "compression, %" PRIu64 "-byte blocks, %d-bit Bloom filter, in %s\n",
         c.entries, KEY_LEN, VALUE_LEN, c.block_size, SST_DEFAULT_BLOOM_BITS, dir);
  fflush(stdout);
  double disk = 0;
  rates m = {0}, l = {0};
  rates mr[MAX_ROUNDS] = {{0}}, lr[MAX_ROUNDS] = {{0}};
  int rc = disk_bandwidth(&c, &disk);
  if (rc == EXIT_OK) rc = mica_build(&c, &m);
#ifdef MICA_HAVE_LEVELDB
  if (rc == EXIT_OK && leveldb) rc = ldb_build(&c, &l);
#else
  (void)leveldb;
#endif
  for (uint64_t i = 0; i < c.rounds && rc == EXIT_OK; i++) {
    rc = mica_reads(&c, &mr[i]);
#ifdef MICA_HAVE_LEVELDB
    if (rc == EXIT_OK && leveldb) rc = ldb_reads(&c, &lr[i]);
#endif
  }
  if (rc == EXIT_OK) {
    take_medians(&m, mr, (int)c.rounds);
    take_medians(&l, lr, (int)c.rounds);
    double build_mbps = m.wall[ROW_BUILD] * (double)m.bytes / (double)c.entries / 1e6;
    printf("disk sequential write (%" PRIu64 " MiB, append + fdatasync): %.1f MB/s\n",
           c.disk_mib, disk);
    printf("mica build: %.1f MB/s of table bytes = %.0f%% of the disk's bandwidth\n",
           build_mbps, 100.0 * build_mbps / disk);
    printf("mica table: %" PRIu64 " bytes; leveldb tables: ", m.bytes);
    if (l.ok) printf("%" PRIu64 " bytes\n", l.bytes); else printf("-\n");
#ifndef MICA_HAVE_LEVELDB
    printf("LevelDB not found: built without libleveldb-dev, so no comparison\n");
#endif
    printf("read rows: median of %" PRIu64 " alternating rounds\n", c.rounds);
    print_table("per second of wall-clock time", &m, &l, false);
    print_table("per second of CPU time", &m, &l, true);
  }
  free(pool);
  err_free(env_remove_tree(env_posix(), dir));
  free(dir);
  return rc;
}
