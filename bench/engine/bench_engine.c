/* mica-engine-bench: one Mica tablet against LevelDB and RocksDB.
 *
 * In the spirit of LevelDB's db_bench: one process, the same workloads on
 * each engine, one engine open at a time (so no engine's background
 * compactions run while another is measured); fillseq and the durable
 * rows alternate engines per row. Keys are 16 bytes ("%016d"), values 100 bytes, no compression,
 * the WAL written without sync except in the durable-write rows, where
 * every acknowledged write is synced (fdatasync) and concurrent writers
 * may share syncs (group commit in all three engines).
 *
 * Reads use each engine's default read options (blocks read go into the
 * block cache), as db_bench does.
 *
 * Rows: fillseq, fillrandom, overwrite, readrandom, readseq, seekrandom,
 * fillsync (1 thread), fillsync16 (16 threads). Each row prints ops/s per
 * engine and Mica's ratio to each peer (>1 means Mica is faster); the
 * three read rows are printed again as CPU time of the reading thread per
 * operation (CLOCK_THREAD_CPUTIME_ID), which the machine's load moves
 * less than the rate. Then the time of tab_split on tablets of the requested sizes.
 *
 * Every engine gets a 64 MiB block cache and 10-bit Bloom filters, and its
 * own default memtable size (Mica 8 MiB, LevelDB 4 MiB, RocksDB 64 MiB). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/env.h"
#include "common/slice.h"
#include "tabletserver/resources.h"
#include "tabletserver/tablet.h"

#ifdef MICA_HAVE_LEVELDB
#include <leveldb/c.h>
#endif
#ifdef MICA_HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif

#define KEY_LEN 16
#define CACHE_BYTES (64u << 20)

static long g_num = 1000000;
static long g_reads = -1;     /* default: g_num */
static long g_seeks = -1;     /* default: g_num / 10 */
static long g_sync1 = 2000;
static long g_sync16 = 16000;
static int g_value = 100;
static const char *g_dir = "/tmp/mica-engine-bench";
static char g_engines[256] = "mica,leveldb,rocksdb";
static char g_splits[256] = "10";
static long g_mica_memtable_mb = 0; /* 0: the tablet's default */

static env *E;

static uint64_t now_us(void) { return env_now_micros(E); }

/* CPU time of the calling thread: the read rows run on the main thread,
 * and its CPU per operation moves far less with the machine's load than
 * the wall-clock rate does. */
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *msg) {
  fprintf(stderr, "mica-engine-bench: %s: %s\n", what, msg);
  exit(1);
}

/* ---- engines ---- */

typedef struct engine {
  const char *name;
  void *(*open)(const char *dir);
  void (*put)(void *db, slice k, slice v, bool sync);
  bool (*get)(void *db, slice k, buf *v);
  uint64_t (*scan_all)(void *db);
  bool (*seek)(void *db, slice k);
  void (*close)(void *db);
  /* Prints the engine's files per level (before seekrandom): how many
   * sources a seek merges, which decides much of its cost, and the
   * memory its memtables take (LevelDB: with the block cache). */
  void (*shape)(void *db);
} engine;

static void print_shape(const char *name, const long *files, int n,
                        long mem_bytes) {
  printf("%s files per level before seekrandom:", name);
  for (int l = 0; l < n; l++) printf(" %ld", files[l]);
  printf("; memory %.1f MiB\n", (double)mem_bytes / (1 << 20));
}

/* Mica: one tablet with its own resources (2 background threads). */
typedef struct mica_db {
  res_pool *res;
  tablet *t;
} mica_db;

static void *mica_open(const char *dir) {
  mica_db *d = xcalloc(1, sizeof(*d));
  res_options ro;
  res_options_init(&ro);
  ro.block_cache_bytes = CACHE_BYTES;
  mica_err *err = res_new(E, &ro, &d->res);
  if (err != NULL) die("mica res", err_msg(err));
  tab_options o;
  tab_options_init(&o);
  o.create_if_missing = true;
  if (g_mica_memtable_mb > 0) o.memtable_bytes = (size_t)g_mica_memtable_mb << 20;
  buf path = BUF_INIT;
  tab_dir_path(dir, 1, &path);
  err = tab_open(d->res, (const char *)path.data, 1, slice_make(NULL, 0),
                 slice_make(NULL, 0), 1, &o, &d->t);
  if (err != NULL) die("mica open", err_msg(err));
  buf_free(&path);
  return d;
}

static void mica_put(void *db, slice k, slice v, bool sync) {
  mica_err *err = tab_put(((mica_db *)db)->t, k, v, sync);
  if (err != NULL) die("mica put", err_msg(err));
}

static bool mica_get(void *db, slice k, buf *v) {
  mica_err *err = tab_get(((mica_db *)db)->t, NULL, k, v);
  if (err == NULL) return true;
  if (err_code(err) != MICA_NOT_FOUND) die("mica get", err_msg(err));
  err_free(err);
  return false;
}

static uint64_t mica_scan_all(void *db) {
  iter *it;
  tab_scan_options o;
  tab_scan_options_init(&o);
  mica_err *err = tab_scan(((mica_db *)db)->t, &o, &it);
  if (err != NULL) die("mica scan", err_msg(err));
  uint64_t n = 0, bytes = 0;
  for (; iter_valid(it); iter_next(it)) {
    bytes += iter_key(it).len + iter_value(it).len;
    n++;
  }
  if (iter_status(it) != NULL) die("mica scan", err_msg(iter_status(it)));
  iter_close(it);
  return bytes > 0 ? n : 0;
}

static bool mica_seek(void *db, slice k) {
  iter *it;
  tab_scan_options o;
  tab_scan_options_init(&o);
  o.start = k;
  mica_err *err = tab_scan(((mica_db *)db)->t, &o, &it);
  if (err != NULL) die("mica seek", err_msg(err));
  bool found = iter_valid(it) && slice_eq(iter_key(it), k);
  iter_close(it);
  return found;
}

static void mica_close(void *db) {
  mica_db *d = db;
  mica_err *err = tab_close(d->t);
  if (err != NULL) die("mica close", err_msg(err));
  res_free(d->res);
  free(d);
}

static void mica_shape(void *db) {
  tab_stats st;
  tab_get_stats(((mica_db *)db)->t, &st);
  long files[7];
  for (int l = 0; l < 7; l++) files[l] = (long)st.level_files[l];
  print_shape("mica", files, 7, (long)st.memtable_bytes);
}

static const engine mica_engine = {"mica",        mica_open, mica_put,
                                   mica_get,      mica_scan_all, mica_seek,
                                   mica_close,    mica_shape};

#ifdef MICA_HAVE_LEVELDB
typedef struct ldb {
  leveldb_t *db;
  leveldb_options_t *o;
  leveldb_cache_t *cache;
  leveldb_filterpolicy_t *bloom;
  leveldb_writeoptions_t *w, *ws;
  leveldb_readoptions_t *r;
} ldb;

static void *ldb_open(const char *dir) {
  ldb *d = xcalloc(1, sizeof(*d));
  d->o = leveldb_options_create();
  leveldb_options_set_create_if_missing(d->o, 1);
  leveldb_options_set_compression(d->o, leveldb_no_compression);
  d->cache = leveldb_cache_create_lru(CACHE_BYTES);
  leveldb_options_set_cache(d->o, d->cache);
  d->bloom = leveldb_filterpolicy_create_bloom(10);
  leveldb_options_set_filter_policy(d->o, d->bloom);
  char *err = NULL;
  d->db = leveldb_open(d->o, dir, &err);
  if (err != NULL) die("leveldb open", err);
  d->w = leveldb_writeoptions_create();
  d->ws = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(d->ws, 1);
  d->r = leveldb_readoptions_create();
  return d;
}

static void ldb_put(void *db, slice k, slice v, bool sync) {
  ldb *d = db;
  char *err = NULL;
  leveldb_put(d->db, sync ? d->ws : d->w, (const char *)k.data, k.len,
              (const char *)v.data, v.len, &err);
  if (err != NULL) die("leveldb put", err);
}

static bool ldb_get(void *db, slice k, buf *v) {
  ldb *d = db;
  char *err = NULL;
  size_t n;
  char *val = leveldb_get(d->db, d->r, (const char *)k.data, k.len, &n, &err);
  if (err != NULL) die("leveldb get", err);
  if (val == NULL) return false;
  buf_clear(v);
  buf_append(v, val, n);
  leveldb_free(val);
  return true;
}

static uint64_t ldb_scan_all(void *db) {
  ldb *d = db;
  leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->r);
  uint64_t n = 0, bytes = 0;
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it);
       leveldb_iter_next(it)) {
    size_t kl, vl;
    leveldb_iter_key(it, &kl);
    leveldb_iter_value(it, &vl);
    bytes += kl + vl;
    n++;
  }
  leveldb_iter_destroy(it);
  return bytes > 0 ? n : 0;
}

static bool ldb_seek(void *db, slice k) {
  ldb *d = db;
  leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->r);
  leveldb_iter_seek(it, (const char *)k.data, k.len);
  bool found = false;
  if (leveldb_iter_valid(it)) {
    size_t kl;
    const char *kp = leveldb_iter_key(it, &kl);
    found = kl == k.len && memcmp(kp, k.data, kl) == 0;
  }
  leveldb_iter_destroy(it);
  return found;
}

static void ldb_close(void *db) {
  ldb *d = db;
  leveldb_close(d->db);
  leveldb_options_destroy(d->o);
  leveldb_cache_destroy(d->cache);
  leveldb_filterpolicy_destroy(d->bloom);
  leveldb_writeoptions_destroy(d->w);
  leveldb_writeoptions_destroy(d->ws);
  leveldb_readoptions_destroy(d->r);
  free(d);
}

static void ldb_shape(void *db) {
  long files[7];
  for (int l = 0; l < 7; l++) {
    char prop[64];
    snprintf(prop, sizeof(prop), "leveldb.num-files-at-level%d", l);
    char *v = leveldb_property_value(((ldb *)db)->db, prop);
    files[l] = v != NULL ? atol(v) : -1;
    leveldb_free(v);
  }
  char *mem = leveldb_property_value(((ldb *)db)->db,
                                     "leveldb.approximate-memory-usage");
  print_shape("leveldb", files, 7, mem != NULL ? atol(mem) : -1);
  leveldb_free(mem);
}

static const engine leveldb_engine = {"leveldb",    ldb_open, ldb_put,
                                      ldb_get,      ldb_scan_all, ldb_seek,
                                      ldb_close,    ldb_shape};
#endif

#ifdef MICA_HAVE_ROCKSDB
typedef struct rdb {
  rocksdb_t *db;
  rocksdb_options_t *o;
  rocksdb_cache_t *cache;
  rocksdb_block_based_table_options_t *bbt;
  rocksdb_writeoptions_t *w, *ws;
  rocksdb_readoptions_t *r;
} rdb;

static void *rdb_open(const char *dir) {
  rdb *d = xcalloc(1, sizeof(*d));
  d->o = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(d->o, 1);
  rocksdb_options_set_compression(d->o, rocksdb_no_compression);
  d->bbt = rocksdb_block_based_options_create();
  d->cache = rocksdb_cache_create_lru(CACHE_BYTES);
  rocksdb_block_based_options_set_block_cache(d->bbt, d->cache);
  rocksdb_block_based_options_set_filter_policy(
      d->bbt, rocksdb_filterpolicy_create_bloom(10));
  rocksdb_options_set_block_based_table_factory(d->o, d->bbt);
  char *err = NULL;
  d->db = rocksdb_open(d->o, dir, &err);
  if (err != NULL) die("rocksdb open", err);
  d->w = rocksdb_writeoptions_create();
  d->ws = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(d->ws, 1);
  d->r = rocksdb_readoptions_create();
  return d;
}

static void rdb_put(void *db, slice k, slice v, bool sync) {
  rdb *d = db;
  char *err = NULL;
  rocksdb_put(d->db, sync ? d->ws : d->w, (const char *)k.data, k.len,
              (const char *)v.data, v.len, &err);
  if (err != NULL) die("rocksdb put", err);
}

static bool rdb_get(void *db, slice k, buf *v) {
  rdb *d = db;
  char *err = NULL;
  size_t n;
  char *val = rocksdb_get(d->db, d->r, (const char *)k.data, k.len, &n, &err);
  if (err != NULL) die("rocksdb get", err);
  if (val == NULL) return false;
  buf_clear(v);
  buf_append(v, val, n);
  rocksdb_free(val);
  return true;
}

static uint64_t rdb_scan_all(void *db) {
  rdb *d = db;
  rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, d->r);
  uint64_t n = 0, bytes = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t kl, vl;
    rocksdb_iter_key(it, &kl);
    rocksdb_iter_value(it, &vl);
    bytes += kl + vl;
    n++;
  }
  rocksdb_iter_destroy(it);
  return bytes > 0 ? n : 0;
}

static bool rdb_seek(void *db, slice k) {
  rdb *d = db;
  rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, d->r);
  rocksdb_iter_seek(it, (const char *)k.data, k.len);
  bool found = false;
  if (rocksdb_iter_valid(it)) {
    size_t kl;
    const char *kp = rocksdb_iter_key(it, &kl);
    found = kl == k.len && memcmp(kp, k.data, kl) == 0;
  }
  rocksdb_iter_destroy(it);
  return found;
}

static void rdb_close(void *db) {
  rdb *d = db;
  rocksdb_close(d->db);
  rocksdb_options_destroy(d->o);
  rocksdb_block_based_options_destroy(d->bbt);
  rocksdb_cache_destroy(d->cache);
  rocksdb_writeoptions_destroy(d->w);
  rocksdb_writeoptions_destroy(d->ws);
  rocksdb_readoptions_destroy(d->r);
  free(d);
}

static void rdb_shape(void *db) {
  long files[7];
  for (int l = 0; l < 7; l++) {
    char prop[64];
    snprintf(prop, sizeof(prop), "rocksdb.num-files-at-level%d", l);
    char *v = rocksdb_property_value(((rdb *)db)->db, prop);
    files[l] = v != NULL ? atol(v) : -1;
    rocksdb_free(v);
  }
  char *mem = rocksdb_property_value(((rdb *)db)->db,
                                     "rocksdb.cur-size-all-mem-tables");
  print_shape("rocksdb", files, 7, mem != NULL ? atol(mem) : -1);
  rocksdb_free(mem);
}

static const engine rocksdb_engine = {"rocksdb",    rdb_open, rdb_put,
                                      rdb_get,      rdb_scan_all, rdb_seek,
                                      rdb_close,    rdb_shape};
#endif

/* ---- workloads ---- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return r->s;
}

/* `k` holds 24 bytes; keys below 10^16 fill exactly KEY_LEN of them. */
static void make_key(char *k, long i) { snprintf(k, 24, "%016ld", i); }

/* Value bytes: a fixed pseudo-random pattern, sliced at varying offsets
 * (compression is off everywhere, so the content only has to differ). */
static char *g_pattern;

static slice value_for(long i) {
  return slice_make(g_pattern + (i % 997), (size_t)g_value);
}

static void fill(const engine *e, void *db, long n, bool random, uint64_t seed,
                 bool sync) {
  rng r = {seed};
  char k[24];
  for (long i = 0; i < n; i++) {
    long key = random ? (long)(rng_next(&r) % (uint64_t)g_num) : i;
    make_key(k, key);
    e->put(db, slice_make(k, KEY_LEN), value_for(i), sync);
  }
}

static long read_random(const engine *e, void *db, long n) {
  rng r = {0x2545F4914F6CDD1Dull};
  char k[24];
  buf v = BUF_INIT;
  long found = 0;
  for (long i = 0; i < n; i++) {
    make_key(k, (long)(rng_next(&r) % (uint64_t)g_num));
    if (e->get(db, slice_make(k, KEY_LEN), &v)) found++;
  }
  buf_free(&v);
  return found;
}

static long seek_random(const engine *e, void *db, long n) {
  rng r = {0x9E3779B97F4A7C15ull};
  char k[24];
  long found = 0;
  for (long i = 0; i < n; i++) {
    make_key(k, (long)(rng_next(&r) % (uint64_t)g_num));
    if (e->seek(db, slice_make(k, KEY_LEN))) found++;
  }
  return found;
}

typedef struct sync_arg {
  const engine *e;
  void *db;
  long n;
  int id;
} sync_arg;

static void *sync_writer(void *p) {
  sync_arg *a = p;
  fill(a->e, a->db, a->n, true, 0x1234567ull * (uint64_t)(a->id + 1), true);
  return NULL;
}

static double fill_sync(const engine *e, void *db, int threads, long total) {
  pthread_t th[64];
  sync_arg args[64];
  uint64_t t0 = now_us();
  for (int i = 0; i < threads; i++) {
    args[i] = (sync_arg){e, db, total / threads, i};
    pthread_create(&th[i], NULL, sync_writer, &args[i]);
  }
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  return (double)(now_us() - t0);
}

/* ---- driver ---- */

enum { W_FILLSEQ, W_FILLRANDOM, W_OVERWRITE, W_READRANDOM, W_READSEQ,
       W_SEEKRANDOM, W_SYNC1, W_SYNC16, W_COUNT };
static const char *wnames[W_COUNT] = {"fillseq",    "fillrandom", "overwrite",
                                      "readrandom", "readseq",    "seekrandom",
                                      "fillsync",   "fillsync16"};

static void rmtree(const char *p) {
  mica_err *err = env_remove_tree(E, p);
  if (err != NULL) die("remove", err_msg(err));
}

static char *sub(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = xmalloc(n);
  snprintf(p, n, "%s/%s", a, b);
  return p;
}

static void run_split(long mb) {
  char name[64];
  snprintf(name, sizeof(name), "split-%ldmb", mb);
  char *root = sub(g_dir, name);
  rmtree(root);
  char *tablets = sub(root, "tablets");
  mica_err *err = env_mkdirs(E, tablets);
  if (err != NULL) die("mkdir", err_msg(err));
  res_options ro;
  res_options_init(&ro);
  ro.memtable_budget = 1u << 30;
  res_pool *res;
  if ((err = res_new(E, &ro, &res)) != NULL) die("res", err_msg(err));
  tab_options o;
  tab_options_init(&o);
  o.create_if_missing = true;
  o.memtable_bytes = 64u << 20;
  o.auto_compact = false;
  o.stall_sst_count = 64;
  buf dir = BUF_INIT;
  tab_dir_path(tablets, 1, &dir);
  tablet *t;
  err = tab_open(res, (const char *)dir.data, 1, slice_make(NULL, 0),
                 slice_make(NULL, 0), 1, &o, &t);
  if (err != NULL) die("split open", err_msg(err));
  long n = mb * 1024 * 1024 / (KEY_LEN + g_value);
  char k[24];
  rng r = {42};
  uint64_t f0 = now_us();
  for (long i = 0; i < n; i++) {
    make_key(k, (long)(rng_next(&r) % (uint64_t)(n * 4)));
    err = tab_put(t, slice_make(k, KEY_LEN), value_for(i), false);
    if (err != NULL) die("split fill", err_msg(err));
  }
  if ((err = tab_flush(t)) != NULL) die("split flush", err_msg(err));
  uint64_t fill_us = now_us() - f0;
  tab_stats st;
  tab_get_stats(t, &st);
  buf mid = BUF_INIT;
  uint64_t m0 = now_us();
  if ((err = tab_middle_key(t, &mid)) != NULL) die("middle key", err_msg(err));
  uint64_t mid_us = now_us() - m0;
  uint64_t size = tab_approximate_size(t);
  tablet *left, *right;
  uint64_t s0 = now_us();
  err = tab_split(t, buf_slice(&mid), 2, 3, &o, &left, &right);
  uint64_t split_us = now_us() - s0;
  if (err != NULL) die("split", err_msg(err));
  printf("split %5ld MB tablet: %7.1f ms (split incl. opening both daughters;"
         " middle_key %.1f ms; %" PRIu64 " SSTables, %.0f MB on disk,"
         " left %.0f MB right %.0f MB; fill+flush took %.1f s)\n",
         mb, split_us / 1000.0, mid_us / 1000.0, st.num_ssts, size / 1048576.0,
         tab_approximate_size(left) / 1048576.0,
         tab_approximate_size(right) / 1048576.0, fill_us / 1e6);
  fflush(stdout);
  err_free(tab_close(left));
  err_free(tab_close(right));
  res_free(res);
  buf_free(&mid);
  buf_free(&dir);
  rmtree(root);
  free(tablets);
  free(root);
}

static void usage(void) {
  printf(
      "usage: mica-engine-bench [options]\n"
      "Runs db_bench-style workloads on one Mica tablet and, in the same run,\n"
      "on LevelDB and RocksDB (when built with them), and prints ops/s and\n"
      "Mica's ratio to each (above 1 = Mica faster); then times tab_split.\n"
      "  --num=N          entries for fills and key space (default 1000000)\n"
      "  --reads=N        readrandom operations (default: num)\n"
      "  --seeks=N        seekrandom operations (default: num/10)\n"
      "  --sync1=N        durable writes with 1 thread (default 2000)\n"
      "  --sync16=N       durable writes with 16 threads, total (default 16000)\n"
      "  --value_size=N   value bytes (default 100)\n"
      "  --db=DIR         scratch directory, emptied first (default\n"
      "                   /tmp/mica-engine-bench)\n"
      "  --engines=LIST   subset of mica,leveldb,rocksdb\n"
      "  --mica_memtable_mb=N  Mica's memtable size (default: the tablet's 8)\n"
      "  --split_mb=LIST  tablet sizes in MB to time splits of, e.g. 10,1024\n"
      "                   (default 10; empty for none)\n"
      "example: mica-engine-bench --num=1000000 --split_mb=10,1024\n");
}

static bool has_engine(const char *n) {
  char list[260];
  snprintf(list, sizeof(list), ",%s,", g_engines);
  char pat[64];
  snprintf(pat, sizeof(pat), ",%s,", n);
  return strstr(list, pat) != NULL;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage();
      return 0;
    } else if (strncmp(a, "--num=", 6) == 0) g_num = atol(a + 6);
    else if (strncmp(a, "--reads=", 8) == 0) g_reads = atol(a + 8);
    else if (strncmp(a, "--seeks=", 8) == 0) g_seeks = atol(a + 8);
    else if (strncmp(a, "--sync1=", 8) == 0) g_sync1 = atol(a + 8);
    else if (strncmp(a, "--sync16=", 9) == 0) g_sync16 = atol(a + 9);
    else if (strncmp(a, "--value_size=", 13) == 0) g_value = atoi(a + 13);
    else if (strncmp(a, "--db=", 5) == 0) g_dir = a + 5;
    else if (strncmp(a, "--engines=", 10) == 0)
      snprintf(g_engines, sizeof(g_engines), "%s", a + 10);
    else if (strncmp(a, "--mica_memtable_mb=", 19) == 0)
      g_mica_memtable_mb = atol(a + 19);
    else if (strncmp(a, "--split_mb=", 11) == 0)
      snprintf(g_splits, sizeof(g_splits), "%s", a + 11);
    else {
      fprintf(stderr, "mica-engine-bench: unknown option %s (see --help)\n", a);
      return 2;
    }
  }
  if (g_num < 1 || g_value < 1 || g_value > 100000) {
    fprintf(stderr, "mica-engine-bench: --num and --value_size must be positive\n");
    return 2;
  }
  if (g_reads < 0) g_reads = g_num;
  if (g_seeks < 0) g_seeks = g_num / 10;
  E = env_posix();
  g_pattern = xmalloc((size_t)g_value + 1000);
  rng pr = {77};
  for (int i = 0; i < g_value + 1000; i++)
    g_pattern[i] = (char)(' ' + rng_next(&pr) % 95);

  const engine *engines[3];
  int ne = 0;
  if (has_engine("mica")) engines[ne++] = &mica_engine;
#ifdef MICA_HAVE_LEVELDB
  if (has_engine("leveldb")) engines[ne++] = &leveldb_engine;
#endif
#ifdef MICA_HAVE_ROCKSDB
  if (has_engine("rocksdb")) engines[ne++] = &rocksdb_engine;
#endif
  rmtree(g_dir);
  mica_err *err = env_mkdirs(E, g_dir);
  if (err != NULL) die("mkdir", err_msg(err));

  double ops[W_COUNT][3], cpu[W_COUNT][3]; /* cpu: ns per op, read rows */
  memset(ops, 0, sizeof(ops));
  memset(cpu, 0, sizeof(cpu));
  printf("mica-engine-bench: %ld entries, %d-byte keys, %d-byte values, "
         "no compression, engines:", g_num, KEY_LEN, g_value);
  for (int e = 0; e < ne; e++) printf(" %s", engines[e]->name);
  printf("\n");
  fflush(stdout);

  /* fillseq on fresh databases. */
  for (int e = 0; e < ne; e++) {
    char *d = sub(g_dir, "seq");
    rmtree(d);
    void *db = engines[e]->open(d);
    uint64_t t0 = now_us();
    fill(engines[e], db, g_num, false, 1, false);
    ops[W_FILLSEQ][e] = g_num / ((now_us() - t0) / 1e6);
    engines[e]->close(db);
    rmtree(d);
    free(d);
  }
  /* fillrandom, overwrite and the reads on one database, one engine at a
   * time: only one engine's background work runs while it is measured. */
  char *dirs[3];
  long found[3], seek_found[3];
  uint64_t entries[3];
  for (int e = 0; e < ne; e++) {
    dirs[e] = sub(g_dir, engines[e]->name);
    rmtree(dirs[e]);
    void *db = engines[e]->open(dirs[e]);
    uint64_t t0 = now_us();
    fill(engines[e], db, g_num, true, 2, false);
    ops[W_FILLRANDOM][e] = g_num / ((now_us() - t0) / 1e6);
    t0 = now_us();
    fill(engines[e], db, g_num, true, 3, false);
    ops[W_OVERWRITE][e] = g_num / ((now_us() - t0) / 1e6);
    if (engines[e] == &mica_engine) {
      tab_stats st;
      tab_get_stats(((mica_db *)db)->t, &st);
      printf("mica before the reads: %" PRIu64 " SSTables, %" PRIu64
             " immutable memtables, %" PRIu64 " flushes, %" PRIu64
             " compactions, %" PRIu64 " stalls (%.1f s)\n",
             st.num_ssts, st.num_immutable, st.flushes, st.compactions,
             st.stalls, st.stall_micros / 1e6);
    }
    tab_stats before;
    if (engines[e] == &mica_engine)
      tab_get_stats(((mica_db *)db)->t, &before);
    t0 = now_us();
    uint64_t c0 = cpu_ns();
    found[e] = read_random(engines[e], db, g_reads);
    ops[W_READRANDOM][e] = g_reads / ((now_us() - t0) / 1e6);
    cpu[W_READRANDOM][e] = (double)(cpu_ns() - c0) / (double)g_reads;
    if (engines[e] == &mica_engine) {
      /* What leveled compaction changed, independent of the machine's
       * load: SSTables looked into per get, and the shape of the levels. */
      tab_stats st;
      tab_get_stats(((mica_db *)db)->t, &st);
      printf("mica readrandom: %.2f SSTables looked into per get; files "
             "per level",
             (double)(st.get_file_probes - before.get_file_probes) /
                 (double)(st.gets - before.gets));
      for (int l = 0; l < 7; l++) printf(" %" PRIu64, st.level_files[l]);
      printf("\n");
    }
    t0 = now_us();
    c0 = cpu_ns();
    entries[e] = engines[e]->scan_all(db);
    ops[W_READSEQ][e] = entries[e] / ((now_us() - t0) / 1e6);
    cpu[W_READSEQ][e] = (double)(cpu_ns() - c0) / (double)entries[e];
    engines[e]->shape(db);
    tab_stats sb;
    uint64_t hits0 = 0, misses0 = 0;
    if (engines[e] == &mica_engine) {
      mica_db *md = db;
      tab_get_stats(md->t, &sb);
      hits0 = cache_hits(res_cache(md->res));
      misses0 = cache_misses(res_cache(md->res));
    }
    t0 = now_us();
    c0 = cpu_ns();
    seek_found[e] = seek_random(engines[e], db, g_seeks);
    ops[W_SEEKRANDOM][e] = g_seeks / ((now_us() - t0) / 1e6);
    cpu[W_SEEKRANDOM][e] = (double)(cpu_ns() - c0) / (double)g_seeks;
    if (engines[e] == &mica_engine) {
      /* What the seeks cost beyond their own search: block-cache misses
       * (each a read, checksum and insert) and compactions they set off. */
      mica_db *md = db;
      tab_stats st;
      tab_get_stats(md->t, &st);
      uint64_t h = cache_hits(res_cache(md->res)) - hits0;
      uint64_t m = cache_misses(res_cache(md->res)) - misses0;
      printf("mica seekrandom: block cache %.1f%% hits (%" PRIu64
             " misses), %" PRIu64 " compactions during it; files per level",
             h + m > 0 ? 100.0 * (double)h / (double)(h + m) : 0.0, m,
             st.compactions - sb.compactions);
      for (int l = 0; l < 7; l++) printf(" %" PRIu64, st.level_files[l]);
      printf("\n");
    }
    engines[e]->close(db);
    rmtree(dirs[e]);
  }
  for (int e = 1; e < ne; e++)
    if (found[e] != found[0] || entries[e] != entries[0] ||
        seek_found[e] != seek_found[0])
      die("reads", "engines disagree on the data");
  /* Durable writes, fresh databases. */
  for (int w = W_SYNC1; w <= W_SYNC16; w++) {
    int threads = w == W_SYNC1 ? 1 : 16;
    long total = w == W_SYNC1 ? g_sync1 : g_sync16;
    for (int e = 0; e < ne; e++) {
      void *db = engines[e]->open(dirs[e]);
      double us = fill_sync(engines[e], db, threads, total);
      ops[w][e] = (total / threads * threads) / (us / 1e6);
      engines[e]->close(db);
      rmtree(dirs[e]);
    }
  }

  printf("%-11s", "workload");
  for (int e = 0; e < ne; e++) printf(" %12s", engines[e]->name);
  for (int e = 1; e < ne; e++) printf("   mica/%-8s", engines[e]->name);
  printf("   (ops/s)\n");
  for (int w = 0; w < W_COUNT; w++) {
    printf("%-11s", wnames[w]);
    for (int e = 0; e < ne; e++) printf(" %12.0f", ops[w][e]);
    for (int e = 1; e < ne; e++) printf("   %13.2f", ops[w][0] / ops[w][e]);
    printf("\n");
  }
  /* The read rows again as CPU of the reading thread per operation
   * (background compaction threads not included, in any engine); the
   * ratio is peer ns / Mica ns, so above 1 still means Mica is faster. */
  printf("%-11s", "cpu ns/op");
  for (int e = 0; e < ne; e++) printf(" %12s", engines[e]->name);
  for (int e = 1; e < ne; e++) printf("   mica/%-8s", engines[e]->name);
  printf("   (thread CPU)\n");
  for (int w = W_READRANDOM; w <= W_SEEKRANDOM; w++) {
    printf("%-11s", wnames[w]);
    for (int e = 0; e < ne; e++) printf(" %12.0f", cpu[w][e]);
    for (int e = 1; e < ne; e++) printf("   %13.2f", cpu[w][e] / cpu[w][0]);
    printf("\n");
  }
  printf("readrandom found %ld of %ld; readseq saw %" PRIu64 " entries\n",
         found[0], g_reads, entries[0]);
  fflush(stdout);

  /* Splits by reference. */
  if (has_engine("mica") && g_splits[0] != '\0') {
    char list[256];
    snprintf(list, sizeof(list), "%s", g_splits);
    for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ","))
      run_split(atol(tok));
  }
  for (int e = 0; e < ne; e++) free(dirs[e]);
  rmtree(g_dir);
  free(g_pattern);
  return 0;
}
