/* seeds: writes the fuzz targets' seed corpora with Mica's own writers.
 *
 *   fuzz_seeds OUTDIR      (tools/fuzz --seeds runs it on fuzz/corpus)
 *
 * A seed the fuzzer starts from should be a real file: SSTables come from
 * sst_builder (raw, LZ4 and zstd blocks, with and without a filter, one
 * block and many, empty), WAL segments from wal_writer, manifests from
 * man_write, metadata logs from a master core driven through its calls
 * (master_fill.h), all read back as bytes. The text inputs (escapes, JSON,
 * HTTP requests) are written out literally below. Each file is small:
 * the whole corpus stays far under 1 MiB. Output names are fixed, so
 * running it again rewrites the same files. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/ikey.h"
#include "common/log.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/master_fill.h"
#include "master/state.h"
#include "sstable/sstable.h"
#include "tabletserver/manifest.h"
#include "tabletserver/wal.h"
#include "tabletserver/wbatch.h"

static const char *g_out;

static void check(mica_err *err, const char *what) {
  if (err == NULL) return;
  fprintf(stderr, "fuzz_seeds: %s: %s\n", what, err_msg(err));
  exit(1);
}

static void emit(const char *target, const char *name, const void *d,
                 size_t n) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", g_out, target);
  check(env_mkdirs(env_posix(), path), "mkdir");
  snprintf(path, sizeof(path), "%s/%s/%s", g_out, target, name);
  check(env_write_file_atomic(env_posix(), path, slice_make(d, n)), path);
}

static void slurp(const char *path, buf *out) {
  buf_clear(out);
  check(env_read_file(env_posix(), path, 64u << 20, out), path);
}

/* ---- SSTables ---- */

static void sst_seed(const char *name, sst_compression comp, int bloom,
                     size_t block_size, int restart, int n) {
  buf path = BUF_INIT, ik = BUF_INIT, val = BUF_INIT, bytes = BUF_INIT;
  fz_path(&path, "seed.sst");
  sst_options o;
  sst_options_init(&o);
  o.compression = comp;
  o.bloom_bits_per_key = bloom;
  o.block_size = block_size;
  o.restart_interval = restart;
  sst_builder *b;
  check(sst_builder_new(env_posix(), (const char *)path.data, &o, &b),
        "sst builder");
  for (int i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof(key), "key%05d", i);
    /* Two versions of every third key, the older a delete. */
    int versions = i % 3 == 0 ? 2 : 1;
    for (int v = 0; v < versions; v++) {
      buf_clear(&ik);
      ikey_append(&ik, slice_from_str(key), (uint64_t)(1000 + 2 * i - v),
                  v == 1 ? IKEY_DELETE : IKEY_PUT);
      buf_clear(&val);
      if (v == 0)
        for (int j = 0; j < 3 + i % 40; j++) buf_push(&val, (uint8_t)('a' + j % 26));
      check(sst_builder_add(b, buf_slice(&ik), buf_slice(&val)), "sst add");
    }
  }
  check(sst_builder_finish(b, NULL), "sst finish");
  slurp((const char *)path.data, &bytes);
  emit("sst", name, bytes.data, bytes.len);
  buf_free(&path);
  buf_free(&ik);
  buf_free(&val);
  buf_free(&bytes);
}

static void sst_seeds(void) {
  sst_seed("tiny-raw-bloom", SST_COMPRESS_NONE, 10, 8192, 16, 3);
  sst_seed("multi-block-raw", SST_COMPRESS_NONE, 10, 1024, 4, 60);
  sst_seed("multi-block-lz4", SST_COMPRESS_LZ4, 10, 1024, 8, 60);
  sst_seed("multi-block-zstd", SST_COMPRESS_ZSTD, 0, 1024, 16, 60);
  sst_seed("no-filter", SST_COMPRESS_NONE, 0, 8192, 1, 12);
  sst_seed("empty", SST_COMPRESS_NONE, 10, 8192, 16, 0);
}

/* ---- WAL segments ---- */

static void wal_seeds(void) {
  buf path = BUF_INIT, bytes = BUF_INIT;
  char name[64];
  fz_path(&path, wal_segment_name(name, sizeof(name), 3, 1));
  err_free(env_remove(env_posix(), (const char *)path.data));
  wal_writer *w;
  check(wal_writer_open(env_posix(), (const char *)path.data, 3, 1, &w),
        "wal open");
  wbatch *b = wbatch_new();
  uint64_t seq = 1;
  for (int r = 0; r < 5; r++) {
    wbatch_clear(b);
    for (int i = 0; i <= r; i++) {
      char k[16], v[16];
      snprintf(k, sizeof(k), "k%d-%d", r, i);
      snprintf(v, sizeof(v), "v%d", i);
      if (i == 1) wbatch_delete(b, slice_from_str(k));
      else wbatch_put(b, slice_from_str(k), slice_from_str(v));
    }
    wbatch_set_seq(b, seq);
    seq += wbatch_count(b);
    check(wal_append(w, wbatch_data(b), r % 2 == 0), "wal append");
  }
  wbatch_free(b);
  check(wal_writer_close(w), "wal close");

  /* The writer preallocates: keep the records and a short zero tail. */
  wal_reader *r;
  check(wal_reader_open(env_posix(), (const char *)path.data, &r),
        "wal reader");
  bool eof = false;
  slice p;
  while (!eof) check(wal_reader_next(r, &p, &eof), "wal read");
  uint64_t end = wal_reader_valid_end(r);
  wal_reader_close(r);
  slurp((const char *)path.data, &bytes);
  if (bytes.len > end + 16) bytes.len = (size_t)end + 16;
  emit("wal", "five-batches-zero-tail", bytes.data, bytes.len);
  emit("wal", "five-batches", bytes.data, (size_t)end);
  emit("wal", "torn-last-record", bytes.data, (size_t)end - 3);
  emit("wal", "header-only", bytes.data, 9 + 28);
  buf_free(&path);
  buf_free(&bytes);
}

/* ---- manifests ---- */

static void manifest_seed(const char *name, const man_state *m) {
  buf dir = BUF_INIT, bytes = BUF_INIT;
  fz_path(&dir, "tablet");
  check(env_remove_tree(env_posix(), (const char *)dir.data), "clear");
  check(env_mkdirs(env_posix(), (const char *)dir.data), "mkdir");
  check(man_write(env_posix(), (const char *)dir.data, m), "man write");
  char *file = NULL;
  check(man_newest_path(env_posix(), (const char *)dir.data, &file),
        "manifest name");
  slurp(file, &bytes);
  emit("manifest", name, bytes.data, bytes.len);
  free(file);
  buf_free(&dir);
  buf_free(&bytes);
}

static void manifest_seeds(void) {
  man_state m;
  man_init(&m);
  m.tablet_id = 7;
  m.epoch = 3;
  m.last_seq = 1234;
  m.next_file = 9;
  manifest_seed("empty-live", &m);
  buf_append(&m.start_key, "b", 1);
  buf_append(&m.end_key, "m\xff", 2);
  m.has_end = true;
  m.parent_id = 2;
  man_add_sst(&m, "sst-00000000000000000003-00000000000000000008.sst", 4096,
              slice_make("b", 1), slice_make("m", 1), true);
  man_add_sst(&m, "../2/sst-00000000000000000002-00000000000000000004.sst",
              81920, slice_make(NULL, 0), slice_make(NULL, 0), false);
  man_add_live(&m, 3, 7);
  man_add_live(&m, 3, 8);
  man_add_retired(&m, 2, 5);
  manifest_seed("live-ssts-segments", &m);
  m.state = MAN_SPLIT;
  m.left_id = 11;
  m.right_id = 12;
  buf_append(&m.split_key, "g", 1);
  manifest_seed("split", &m);
  m.state = MAN_MERGED;
  buf_clear(&m.split_key);
  manifest_seed("merged", &m);
  man_clear(&m);
}

/* ---- the master's metadata log ---- */

/* Emits snap-G and log-G of `dir` (the newest generation) as one
 * container input of fz_metalog. */
static void metalog_emit(const char *name, const char *dir) {
  char **names;
  size_t n;
  check(env_list(env_posix(), dir, &names, &n), "list master dir");
  uint64_t gen = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t g;
    if (sscanf(names[i], "snap-%" SCNu64, &g) == 1 && g > gen) gen = g;
  }
  env_free_names(names, n);
  char path[4096];
  buf snap = BUF_INIT, log = BUF_INIT, out = BUF_INIT;
  snprintf(path, sizeof(path), "%s/snap-%016" PRIu64, dir, gen);
  slurp(path, &snap);
  snprintf(path, sizeof(path), "%s/log-%016" PRIu64, dir, gen);
  slurp(path, &log);
  put_fixed32(&out, (uint32_t)snap.len);
  buf_append_slice(&out, buf_slice(&snap));
  buf_append_slice(&out, buf_slice(&log));
  emit("metalog", name, out.data, out.len);
  buf_free(&snap);
  buf_free(&log);
  buf_free(&out);
}

static void metalog_seeds(void) {
  buf root = BUF_INIT, dir = BUF_INIT;
  fz_path(&root, "master-root");
  fz_path(&dir, "master-root/master");
  check(env_remove_tree(env_posix(), (const char *)root.data), "clean");
  ms_options o;
  ms_options_init(&o);
  o.data_root = (const char *)root.data;
  ms *m;
  check(ms_open(&o, 1000000, &m), "master open");
  metalog_emit("fresh", (const char *)dir.data);
  fzm_populate(m, 1000000);
  ms_close(m);
  metalog_emit("populated-log", (const char *)dir.data);
  check(ms_open(&o, 90000000, &m), "master reopen");
  ms_close(m);
  metalog_emit("populated-snapshot", (const char *)dir.data);
  buf_free(&root);
  buf_free(&dir);
}

/* ---- text inputs ---- */

static void text(const char *target, const char *name, const char *s,
                 size_t n) {
  emit(target, name, s, n);
}
#define TEXT(t, name, lit) text(t, name, lit, sizeof(lit) - 1)

static void text_seeds(void) {
  TEXT("escape", "plain", "user:42");
  TEXT("escape", "all-escapes", "a\\x00b\\xffc\\n\\t\\\\\\0d");
  TEXT("escape", "bad-escape", "x\\q");
  TEXT("escape", "short-hex", "x\\x4");

  TEXT("json", "cluster",
       "{\"cluster\":\"mica\",\"master\":\"127.0.0.1:7000\",\"uptime_s\":12,"
       "\"servers\":{\"live\":2,\"suspect\":0,\"dead\":1},\"tables\":3,"
       "\"balancer\":true,\"warnings\":[\"server 3 is dead\"]}");
  TEXT("json", "tablets",
       "[{\"id\":1,\"start\":\"\",\"end\":\"Zw==\",\"state\":\"serving\","
       "\"server\":\"127.0.0.1:7001\",\"bytes\":1.5e3,\"rate\":-0.25},"
       "{\"id\":2,\"start\":\"Zw==\",\"end\":null,\"state\":\"opening\"}]");
  TEXT("json", "strings",
       "{\"a\":\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\",\"b\":[],\"c\":{},"
       "\"d\":[true,false,null,0,-0.0,1E-7]}");
  TEXT("json", "deep", "[[[[[[[[[[[[[[[[{\"x\":[1]}]]]]]]]]]]]]]]]]");

  /* fz_http: method byte, target line, header lines. */
  TEXT("http", "cluster", "\x00/api/cluster");
  TEXT("http", "servers", "\x00/api/servers");
  TEXT("http", "tables", "\x00/api/tables");
  TEXT("http", "tablets", "\x00/api/tables/users/tablets");
  TEXT("http", "tablets-encoded", "\x00/api/tables/events%2Ev2/tablets");
  TEXT("http", "tablets-missing", "\x00/api/tables/nope/tablets");
  TEXT("http", "events-limit", "\x00/api/events?limit=2&x=%41");
  TEXT("http", "events-bad-limit", "\x00/api/events?limit=-1");
  TEXT("http", "metrics", "\x00/metrics");
  TEXT("http", "health-head", "\x01/healthz");
  TEXT("http", "page", "\x00/");
  TEXT("http", "post-with-body", "\x02/api/tables\nContent-Length: 4");
  TEXT("http", "not-found", "\x03/api/nothing?a=b");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  log_set_level(LOG_ERROR);
  g_out = argv[1];
  sst_seeds();
  wal_seeds();
  manifest_seeds();
  metalog_seeds();
  text_seeds();
  printf("seeds written under %s\n", g_out);
  return 0;
}
