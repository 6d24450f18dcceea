/* test_tableopts: per-table options and salted tables against a real
 * cluster (one mica-master and three mica-tserver processes on loopback).
 *
 * Options: they round-trip through create, alter and master restarts (the
 * log's records, then the snapshot the restart wrote), every bad value is
 * refused with the option named and nothing applied, they reach the
 * SSTables the servers write (read back with the SSTable reader), an alter
 * reaches tablets already open, and a per-table split threshold splits a
 * table the servers' own threshold would not.
 *
 * Salted tables: the same operations on a salted and an unsalted table
 * must give exactly the rows, order and limits of an in-memory model, for
 * forward and reverse scans with bounds, prefixes and limits, before and
 * after the salted table's tablets are split. */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/slice.h"
#include "mica/mica.h"
#include "proto/rpc.h"
#include "sstable/sstable.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;
static mica_client *g_m;

static const char *const g_master_args[] = {"--merge", "off", "--balancer",
                                            "off", NULL};
/* Small memtables, so a few hundred KiB of writes produce SSTables. */
static const char *const g_tserver_args[] = {"--memtable-size", "64K", NULL};

static int suite_init(void) {
  cl_options o;
  cl_options_init(&o);
  o.s3 = false; /* reads the data root's files as POSIX files */
  o.master_args = g_master_args;
  o.tserver_args = g_tserver_args;
  if (cl_suite_start(&o, &g_c) != 0) return 1;
  mica_options mo;
  mica_options_init(&mo);
  mo.deadline_ms = 20000;
  return mica_open(cl_master_address(g_c), &mo, &g_m) != MICA_OK;
}

static int suite_clean(void) {
  mica_close(g_m);
  g_m = NULL;
  return cl_suite_stop(&g_c);
}

#define OK(call)                                                            \
  do {                                                                      \
    int ok_rc_ = (call);                                                    \
    if (ok_rc_ != MICA_OK)                                                  \
      fprintf(stderr, "\n%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call, \
              mica_code_name(ok_rc_), mica_errmsg());                       \
    CU_ASSERT_EQUAL_FATAL(ok_rc_, MICA_OK);                                 \
  } while (0)

/* `call` fails with `want` and a message containing `needle`. */
#define REFUSED(call, want, needle)                                         \
  do {                                                                      \
    int r_rc_ = (call);                                                     \
    if (r_rc_ != (want) || strstr(mica_errmsg(), (needle)) == NULL)         \
      fprintf(stderr, "\n%s:%d: %s -> %s (%s), want %s with '%s'\n",        \
              __FILE__, __LINE__, #call, mica_code_name(r_rc_),             \
              mica_errmsg(), mica_code_name(want), (needle));               \
    CU_ASSERT_EQUAL(r_rc_, (want));                                         \
    CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), (needle)));                \
  } while (0)

/* The options of `table` as the master lists them. */
static mica_table_info get_info(mica_client *c, const char *table,
                                char *comp, size_t comp_len) {
  mica_table_info *v = NULL, out;
  size_t n = 0;
  memset(&out, 0, sizeof out);
  OK(mica_list_tables(c, &v, &n));
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, table) == 0) {
      out = v[i];
      snprintf(comp, comp_len, "%s", v[i].compression);
    }
  out.name = NULL;
  out.compression = comp;
  mica_free(v);
  return out;
}

static void expect_opts(const char *table, const char *comp, uint64_t split,
                        uint32_t block, int bloom, uint32_t salt) {
  char got_comp[16] = "";
  mica_table_info t = get_info(g_m, table, got_comp, sizeof got_comp);
  CU_ASSERT_STRING_EQUAL(t.compression, comp);
  CU_ASSERT_EQUAL(t.split_threshold_bytes, split);
  CU_ASSERT_EQUAL(t.block_size, block);
  CU_ASSERT_EQUAL(t.bloom_bits, bloom);
  CU_ASSERT_EQUAL(t.salt_buckets, salt);
}

static void restart_master(void) {
  mica_err *e = cl_stop_master(g_c);
  if (e == NULL) e = cl_restart_master(g_c);
  if (e != NULL) fprintf(stderr, "restart master: %s\n", err_msg(e));
  CU_ASSERT_PTR_NULL_FATAL(e);
  err_free(e);
}

static void test_options_round_trip(void) {
  mica_table_options o;
  mica_table_options_init(&o);
  o.compression = "zstd";
  o.split_threshold_bytes = 64u << 20;
  o.block_size = 8192;
  o.bloom_bits = 0;
  OK(mica_create_table_opts(g_m, "opts_rt", NULL, 0, &o));
  OK(mica_create_table(g_m, "opts_plain", NULL, 0));
  expect_opts("opts_rt", "zstd", 64u << 20, 8192, 0, 0);
  expect_opts("opts_plain", "", 0, 0, -1, 0);

  /* Alter changes only what the mask names. */
  mica_table_options a;
  mica_table_options_init(&a);
  a.compression = "lz4";
  a.block_size = 999999; /* not in the mask: ignored */
  OK(mica_alter_table(g_m, "opts_rt", &a, MICA_ALTER_COMPRESSION));
  expect_opts("opts_rt", "lz4", 64u << 20, 8192, 0, 0);
  a.bloom_bits = 12;
  a.split_threshold_bytes = 0; /* back to the default */
  OK(mica_alter_table(g_m, "opts_rt", &a,
                      MICA_ALTER_BLOOM_BITS | MICA_ALTER_SPLIT_THRESHOLD));
  expect_opts("opts_rt", "lz4", 0, 8192, 12, 0);

  /* Replayed from the log records, then from the snapshot that the
   * first restart wrote. */
  restart_master();
  expect_opts("opts_rt", "lz4", 0, 8192, 12, 0);
  expect_opts("opts_plain", "", 0, 0, -1, 0);
  OK(mica_alter_table(g_m, "opts_plain", &a, MICA_ALTER_BLOOM_BITS));
  restart_master();
  expect_opts("opts_rt", "lz4", 0, 8192, 12, 0);
  expect_opts("opts_plain", "", 0, 0, 12, 0);
}

static void test_bad_options(void) {
  mica_table_options o;
  mica_table_options_init(&o);
  o.salt_buckets = 1;
  REFUSED(mica_create_table_opts(g_m, "bad1", NULL, 0, &o),
          MICA_INVALID_ARGUMENT, "salt_buckets");
  o.salt_buckets = 256;
  REFUSED(mica_create_table_opts(g_m, "bad1", NULL, 0, &o),
          MICA_INVALID_ARGUMENT, "salt_buckets");
  mica_table_options_init(&o);
  o.block_size = 100;
  REFUSED(mica_create_table_opts(g_m, "bad1", NULL, 0, &o),
          MICA_INVALID_ARGUMENT, "block_size");
  mica_table_options_init(&o);
  o.compression = "gzip";
  REFUSED(mica_create_table_opts(g_m, "bad1", NULL, 0, &o),
          MICA_INVALID_ARGUMENT, "compression");
  mica_table_options_init(&o);
  o.split_threshold_bytes = 1000;
  REFUSED(mica_create_table_opts(g_m, "bad1", NULL, 0, &o),
          MICA_INVALID_ARGUMENT, "split_threshold");
  mica_table_options_init(&o);
  o.bloom_bits = 33;
  REFUSED(mica_create_table_opts(g_m, "bad1", NULL, 0, &o),
          MICA_INVALID_ARGUMENT, "bloom_bits");
  /* Nothing of a refused create exists. */
  mica_table_info *v = NULL;
  size_t n = 0;
  OK(mica_list_tables(g_m, &v, &n));
  for (size_t i = 0; i < n; i++) CU_ASSERT(strcmp(v[i].name, "bad1") != 0);
  mica_free(v);

  /* A refused alter changes nothing, not even its valid parts. */
  mica_table_options_init(&o);
  o.compression = "zstd";
  o.block_size = 4096;
  OK(mica_create_table_opts(g_m, "bad_alter", NULL, 0, &o));
  mica_table_options a;
  mica_table_options_init(&a);
  a.compression = "none";
  a.block_size = 8u << 20;
  REFUSED(mica_alter_table(g_m, "bad_alter", &a,
                           MICA_ALTER_COMPRESSION | MICA_ALTER_BLOCK_SIZE),
          MICA_INVALID_ARGUMENT, "block_size");
  mica_table_options_init(&a);
  a.salt_buckets = 4;
  REFUSED(mica_alter_table(g_m, "bad_alter", &a, MICA_ALTER_COMPRESSION),
          MICA_INVALID_ARGUMENT, "salt_buckets");
  mica_table_options_init(&a);
  REFUSED(mica_alter_table(g_m, "bad_alter", &a, 0), MICA_INVALID_ARGUMENT,
          "no option");
  REFUSED(mica_alter_table(g_m, "bad_alter", &a, 64), MICA_INVALID_ARGUMENT,
          "mask");
  REFUSED(mica_alter_table(g_m, "no_such_table", &a, MICA_ALTER_COMPRESSION),
          MICA_NOT_FOUND, "no_such_table");
  expect_opts("bad_alter", "zstd", 0, 4096, -1, 0);

  /* A salted table's keys (and split keys) leave a byte for the salt. */
  mica_table_options_init(&o);
  o.salt_buckets = 4;
  OK(mica_create_table_opts(g_m, "bad_salted", NULL, 0, &o));
  char *big = calloc(MICA_MAX_KEY, 1);
  memset(big, 'k', MICA_MAX_KEY);
  REFUSED(mica_put(g_m, "bad_salted", big, MICA_MAX_KEY, "v", 1),
          MICA_INVALID_ARGUMENT, "salted");
  OK(mica_put(g_m, "bad_salted", big, MICA_MAX_KEY - 1, "v", 1));
  mica_key sk = {big, MICA_MAX_KEY};
  REFUSED(mica_create_table_opts(g_m, "bad_salted2", &sk, 1, &o),
          MICA_INVALID_ARGUMENT, "salt");
  free(big);
}

/* ---- SSTables on disk ---- */

typedef struct sst_seen {
  char **paths;
  size_t n;
} sst_seen;

static sst_seen *g_walk;

static int walk_one(const char *path, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)st, (void)f;
  size_t len = strlen(path);
  if (flag == FTW_F && len > 4 && strcmp(path + len - 4, ".sst") == 0) {
    g_walk->paths = realloc(g_walk->paths, (g_walk->n + 1) * sizeof(char *));
    g_walk->paths[g_walk->n++] = strdup(path);
  }
  return 0;
}

/* Every SSTable under the tablets of table `table_id`'s data root. */
static void list_ssts(sst_seen *out) {
  memset(out, 0, sizeof *out);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tablets", cl_data_root(g_c));
  g_walk = out;
  nftw(dir, walk_one, 16, FTW_PHYS);
  g_walk = NULL;
}

static void ssts_free(sst_seen *s) {
  for (size_t i = 0; i < s->n; i++) free(s->paths[i]);
  free(s->paths);
}

static bool seen_before(const sst_seen *s, const char *p) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->paths[i], p) == 0) return true;
  return false;
}

/* The properties of the SSTable at `path`; false when it is gone (a
 * compaction may delete it between the listing and the open). */
static bool sst_props(const char *path, sst_properties *out) {
  sst_reader *r = NULL;
  mica_err *e = sst_reader_open(env_posix(), path, NULL, &r);
  if (e != NULL) {
    err_free(e);
    return false;
  }
  *out = *sst_reader_properties(r);
  sst_reader_close(r);
  return true;
}

/* The directories of the tablets of `table`. */
static bool in_table(const char *path, const mica_tablet_info *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char frag[64];
    snprintf(frag, sizeof frag, "/%" PRIu64 "/", t[i].tablet_id);
    if (strstr(path, frag) != NULL) return true;
  }
  return false;
}

static void write_bulk(const char *table, int from, int count) {
  char key[32], val[512];
  mica_batch *b = mica_batch_new();
  for (int i = from; i < from + count; i++) {
    snprintf(key, sizeof key, "row%08d", i);
    for (size_t k = 0; k < sizeof val; k++) val[k] = (char)('a' + (i + k) % 7);
    OK(mica_batch_put(b, key, strlen(key), val, sizeof val));
    if (mica_batch_count(b) == 100) {
      OK(mica_batch_write(g_m, table, b, 0, NULL));
      mica_batch_clear(b);
    }
  }
  if (mica_batch_count(b) > 0) OK(mica_batch_write(g_m, table, b, 0, NULL));
  mica_batch_free(b);
}

/* Waits (bounded) until some SSTable of `table` not in `before` was built
 * with (compression, block_size, bloom); writes more rows between looks so
 * that flushes keep happening. Returns whether one was found, and fails
 * the test when one NOT in `before` and written after such a file has
 * other options would be a contradiction we cannot see here; what matters
 * is that new files carry the table's options. */
static bool wait_sst_with(const char *table, const sst_seen *before,
                          uint32_t comp, uint32_t block, uint32_t bloom,
                          int *row) {
  mica_tablet_info *t = NULL;
  size_t nt = 0;
  OK(mica_list_tablets(g_m, table, &t, &nt));
  bool found = false;
  for (int round = 0; round < 40 && !found; round++) {
    write_bulk(table, *row, 300);
    *row += 300;
    sst_seen now;
    list_ssts(&now);
    for (size_t i = 0; i < now.n && !found; i++) {
      if (seen_before(before, now.paths[i]) || !in_table(now.paths[i], t, nt))
        continue;
      sst_properties p;
      if (!sst_props(now.paths[i], &p)) continue;
      found = p.compression == comp && p.block_size == block &&
              p.bloom_bits_per_key == bloom;
    }
    ssts_free(&now);
    if (!found) usleep(250 * 1000);
  }
  mica_free(t);
  return found;
}

static void test_options_reach_sstables(void) {
  mica_table_options o;
  mica_table_options_init(&o);
  o.compression = "zstd";
  o.block_size = 2048;
  o.bloom_bits = 5;
  OK(mica_create_table_opts(g_m, "opts_sst", NULL, 0, &o));
  sst_seen none = {0};
  int row = 0;
  CU_ASSERT(wait_sst_with("opts_sst", &none, SST_COMPRESS_ZSTD, 2048, 5, &row));
  /* Every file of the table so far was written under those options. */
  mica_tablet_info *t = NULL;
  size_t nt = 0;
  OK(mica_list_tablets(g_m, "opts_sst", &t, &nt));
  sst_seen before;
  list_ssts(&before);
  for (size_t i = 0; i < before.n; i++) {
    sst_properties p;
    if (!in_table(before.paths[i], t, nt) || !sst_props(before.paths[i], &p))
      continue;
    CU_ASSERT_EQUAL(p.compression, SST_COMPRESS_ZSTD);
    CU_ASSERT_EQUAL(p.block_size, 2048);
    CU_ASSERT_EQUAL(p.bloom_bits_per_key, 5);
  }
  mica_free(t);

  /* An alter reaches the open tablet (heartbeat reply): new files change. */
  mica_table_options a;
  mica_table_options_init(&a);
  a.compression = "lz4";
  a.block_size = 16384;
  a.bloom_bits = 0;
  OK(mica_alter_table(g_m, "opts_sst", &a,
                      MICA_ALTER_COMPRESSION | MICA_ALTER_BLOCK_SIZE |
                          MICA_ALTER_BLOOM_BITS));
  CU_ASSERT(wait_sst_with("opts_sst", &before, SST_COMPRESS_LZ4, 16384, 0, &row));
  ssts_free(&before);

  /* A moved tablet reopens with the table's options (OpenTablet). */
  a.compression = "none";
  OK(mica_alter_table(g_m, "opts_sst", &a, MICA_ALTER_COMPRESSION));
  OK(mica_list_tablets(g_m, "opts_sst", &t, &nt));
  CU_ASSERT_EQUAL_FATAL(nt, 1);
  OK(mica_move_tablet(g_m, t[0].tablet_id, 0));
  mica_free(t);
  list_ssts(&before);
  CU_ASSERT(wait_sst_with("opts_sst", &before, SST_COMPRESS_NONE, 16384, 0, &row));
  ssts_free(&before);

  /* The rows are all there, whatever each file's options. */
  uint64_t count = 0;
  mica_scanner *s = NULL;
  mica_scan_options so;
  memset(&so, 0, sizeof so);
  so.keys_only = 1;
  OK(mica_scan_open(g_m, "opts_sst", &so, &s));
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    OK(mica_scan_next(s, &has, &k, &kl, &v, &vl));
    if (!has) break;
    count++;
  }
  mica_scan_close(s);
  CU_ASSERT_EQUAL(count, (uint64_t)row);
}

static void test_split_threshold(void) {
  /* The servers split at 10 GiB; this table at 1 MiB. */
  mica_table_options o;
  mica_table_options_init(&o);
  o.split_threshold_bytes = 1u << 20;
  OK(mica_create_table_opts(g_m, "opts_split", NULL, 0, &o));
  int row = 0;
  size_t nt = 1;
  for (int round = 0; round < 60 && nt == 1; round++) {
    write_bulk("opts_split", row, 500);
    row += 500;
    mica_tablet_info *t = NULL;
    OK(mica_list_tablets(g_m, "opts_split", &t, &nt));
    mica_free(t);
    if (nt == 1) usleep(250 * 1000);
  }
  CU_ASSERT(nt >= 2);
  /* A table without the option never splits at that size. */
  OK(mica_create_table(g_m, "opts_nosplit", NULL, 0));
  write_bulk("opts_nosplit", 0, row);
  usleep(1500 * 1000); /* the servers look once a second */
  mica_tablet_info *t = NULL;
  OK(mica_list_tablets(g_m, "opts_nosplit", &t, &nt));
  mica_free(t);
  CU_ASSERT_EQUAL(nt, 1);
}

/* ---- salted tables against a model ---- */

typedef struct kv {
  char key[24];
  size_t klen;
  char val[24];
} kv;

static kv *g_model;
static size_t g_n_model;

static int kv_cmp(const void *a, const void *b) {
  const kv *x = a, *y = b;
  return slice_cmp(slice_make(x->key, x->klen), slice_make(y->key, y->klen));
}

/* Rows of `table` for `o`, compared with the model. */
static void check_scan(const char *table, const mica_scan_options *o) {
  slice start = slice_make(o->start, o->start_len);
  slice end = slice_make(o->end, o->end_len);
  slice prefix = slice_make(o->prefix, o->prefix_len);
  size_t *want = calloc(g_n_model + 1, sizeof(size_t));
  size_t nw = 0;
  for (size_t i = 0; i < g_n_model; i++) {
    slice k = slice_make(g_model[i].key, g_model[i].klen);
    if (start.len && slice_cmp(k, start) < 0) continue;
    if (end.len && slice_cmp(k, end) >= 0) continue;
    if (prefix.len && (k.len < prefix.len ||
                       memcmp(k.data, prefix.data, prefix.len) != 0))
      continue;
    want[nw++] = i;
  }
  if (o->reverse)
    for (size_t i = 0; i < nw / 2; i++) {
      size_t t = want[i];
      want[i] = want[nw - 1 - i];
      want[nw - 1 - i] = t;
    }
  if (o->limit && nw > o->limit) nw = (size_t)o->limit;
  mica_scanner *s = NULL;
  OK(mica_scan_open(g_m, table, o, &s));
  size_t got = 0;
  bool same = true;
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    int rc = mica_scan_next(s, &has, &k, &kl, &v, &vl);
    CU_ASSERT_EQUAL(rc, MICA_OK);
    if (rc != MICA_OK || !has) break;
    if (got < nw) {
      const kv *m = &g_model[want[got]];
      if (kl != m->klen || memcmp(k, m->key, kl) != 0) same = false;
      if (!o->keys_only &&
          (vl != strlen(m->val) || memcmp(v, m->val, vl) != 0))
        same = false;
    }
    got++;
  }
  mica_scan_close(s);
  if (got != nw || !same)
    fprintf(stderr, "\nscan of %s (reverse %d, limit %" PRIu64
            "): %zu rows, want %zu, %s\n", table, o->reverse, o->limit, got,
            nw, same ? "same rows" : "different rows");
  CU_ASSERT_EQUAL(got, nw);
  CU_ASSERT(same);
  free(want);
}

static void check_all_scans(const char *table) {
  static const char *const bounds[][3] = {
      {NULL, NULL, NULL}, {"t0005", NULL, NULL}, {NULL, "t0100", NULL},
      {"t0010", "t0020", NULL}, {NULL, NULL, "t001"}, {"t0015", NULL, "t001"},
      {"u", NULL, NULL}, {"t0050", "t0050", NULL}, {"\x01", "\xff", NULL}};
  static const uint64_t limits[] = {0, 1, 7, 100000};
  for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
      for (int rev = 0; rev < 2; rev++) {
        mica_scan_options o;
        memset(&o, 0, sizeof o);
        if (bounds[b][0]) o.start = bounds[b][0], o.start_len = strlen(bounds[b][0]);
        if (bounds[b][1]) o.end = bounds[b][1], o.end_len = strlen(bounds[b][1]);
        if (bounds[b][2]) o.prefix = bounds[b][2], o.prefix_len = strlen(bounds[b][2]);
        o.limit = limits[l];
        o.reverse = rev;
        o.keys_only = l == 2;
        check_scan(table, &o);
      }
}

static void model_put(const char *k, size_t kl, const char *v) {
  for (size_t i = 0; i < g_n_model; i++)
    if (g_model[i].klen == kl && memcmp(g_model[i].key, k, kl) == 0) {
      snprintf(g_model[i].val, sizeof g_model[i].val, "%s", v);
      return;
    }
  g_model = realloc(g_model, (g_n_model + 1) * sizeof(kv));
  kv *x = &g_model[g_n_model++];
  memcpy(x->key, k, kl);
  x->klen = kl;
  snprintf(x->val, sizeof x->val, "%s", v);
}

static void model_del(const char *k, size_t kl) {
  for (size_t i = 0; i < g_n_model; i++)
    if (g_model[i].klen == kl && memcmp(g_model[i].key, k, kl) == 0) {
      g_model[i] = g_model[--g_n_model];
      return;
    }
}

/* The body of GET `path` from the master's HTTP server (HTTP/1.0, so the
 * server closes when done). Caller frees. */
static char *http_get(const char *path) {
  const char *addr = cl_master_http_address(g_c);
  const char *colon = strrchr(addr, ':');
  CU_ASSERT_PTR_NOT_NULL_FATAL(colon);
  char host[64];
  snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)atoi(colon + 1));
  CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, host, &sa.sin_addr), 1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr);
  CU_ASSERT_EQUAL(write(fd, req, (size_t)n), n);
  buf b = BUF_INIT;
  char chunk[4096];
  ssize_t got;
  while ((got = read(fd, chunk, sizeof chunk)) > 0) buf_append(&b, chunk, (size_t)got);
  close(fd);
  buf_push(&b, 0);
  char *body = strstr((char *)b.data, "\r\n\r\n");
  char *out = strdup(body ? body + 4 : "");
  buf_free(&b);
  return out;
}

/* The id of live table `name`. */
static uint64_t table_id_of(const char *name) {
  char comp[16];
  return get_info(g_m, name, comp, sizeof comp).table_id;
}

/* Drops `name` and waits (bounded) until the master has removed it: its
 * tablets are closed, so a client's stale route to them fails instead of
 * writing into the dropped table (a race of any drop, salted or not). */
static void drop_and_wait(const char *name) {
  uint64_t id = table_id_of(name);
  OK(mica_drop_table(g_m, name));
  char want[64];
  snprintf(want, sizeof want, "(id %" PRIu64 ") removed", id);
  bool removed = false;
  for (int i = 0; i < 200 && !removed; i++) {
    rpc_list_events_request req = {.limit = 0};
    void *resp = NULL;
    mica_err *e = cl_call_master(g_c, &rpc_m_master_list_events, &req, 5000, &resp);
    if (e == NULL) {
      const rpc_list_events_response *r = resp;
      for (size_t k = 0; k < r->n_events && !removed; k++)
        removed = strstr(r->events[k].text, want) != NULL;
    }
    err_free(e);
    rpc_msg_free(resp);
    if (!removed) usleep(50 * 1000);
  }
  CU_ASSERT(removed);
}

static void test_salted_model(void) {
  mica_table_options o;
  mica_table_options_init(&o);
  o.salt_buckets = 8;
  mica_key sk[2] = {{"t0050", 5}, {"t0150", 5}};
  OK(mica_create_table_opts(g_m, "salted", sk, 2, &o));
  OK(mica_create_table(g_m, "unsalted", NULL, 0));
  mica_tablet_info *t = NULL;
  size_t nt = 0;
  OK(mica_list_tablets(g_m, "salted", &t, &nt));
  CU_ASSERT_EQUAL(nt, 24); /* 8 buckets x 3 */
  mica_free(t);

  const char *tables[] = {"salted", "unsalted"};
  char key[24], val[24];
  /* Single puts, a batch, deletes, overwrites; keys that sort like
   * timestamps, plus binary ones. */
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "t%04d", i);
    snprintf(val, sizeof val, "v%d", i);
    for (int k = 0; k < 2; k++) OK(mica_put(g_m, tables[k], key, 5, val, strlen(val)));
    model_put(key, 5, val);
  }
  mica_batch *b = mica_batch_new();
  for (int i = 0; i < 50; i++) {
    char bk[3] = {(char)0xff, (char)i, 0x00};
    snprintf(val, sizeof val, "b%d", i);
    OK(mica_batch_put(b, bk, 3, val, strlen(val)));
    model_put(bk, 3, val);
  }
  for (int i = 0; i < 200; i += 7) {
    snprintf(key, sizeof key, "t%04d", i);
    OK(mica_batch_delete(b, key, 5));
    model_del(key, 5);
  }
  for (int k = 0; k < 2; k++) OK(mica_batch_write(g_m, tables[k], b, 0, NULL));
  mica_batch_free(b);
  for (int i = 3; i < 200; i += 11) {
    snprintf(key, sizeof key, "t%04d", i);
    for (int k = 0; k < 2; k++) OK(mica_delete(g_m, tables[k], key, 5));
    model_del(key, 5);
  }
  qsort(g_model, g_n_model, sizeof(kv), kv_cmp);

  /* Point reads. */
  void *v = NULL;
  size_t vl = 0;
  OK(mica_get(g_m, "salted", "t0001", 5, &v, &vl));
  CU_ASSERT(vl == 2 && memcmp(v, "v1", 2) == 0);
  mica_free(v);
  CU_ASSERT_EQUAL(mica_get(g_m, "salted", "t0000", 5, &v, &vl), MICA_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "t0000")); /* unsalted key */
  mica_key mk[3] = {{"t0002", 5}, {"t0007", 5}, {"nope", 4}};
  mica_value *mv = NULL;
  OK(mica_multi_get(g_m, "salted", mk, 3, &mv));
  CU_ASSERT(mv[0].code == MICA_OK && mv[0].len == 2 && memcmp(mv[0].data, "v2", 2) == 0);
  CU_ASSERT_EQUAL(mv[1].code, MICA_NOT_FOUND);
  CU_ASSERT_EQUAL(mv[2].code, MICA_NOT_FOUND);
  mica_free(mv);

  for (int k = 0; k < 2; k++) check_all_scans(tables[k]);

  /* Split every bucket's middle tablet, and some at their middles by
   * bytes: the salted scans must not change. */
  OK(mica_list_tablets(g_m, "salted", &t, &nt));
  size_t splits = 0;
  for (size_t i = 0; i < nt; i++) {
    if (t[i].start_len != 6 || memcmp((const char *)t[i].start_key + 1, "t0050", 5) != 0)
      continue;
    char at[6];
    memcpy(at, t[i].start_key, 6);
    at[5] = '9'; /* bucket + "t0059" */
    OK(mica_split_tablet(g_m, t[i].tablet_id, at, 6, NULL));
    splits++;
  }
  mica_free(t);
  CU_ASSERT_EQUAL(splits, 8);
  OK(mica_list_tablets(g_m, "salted", &t, &nt));
  CU_ASSERT_EQUAL(nt, 32);
  mica_free(t);
  check_all_scans("salted");

  /* The JSON API shows the options and the unsalted tablet boundaries
   * (bucket 2's "t0050" boundary is "\x02t0050" on disk). */
  char *js = http_get("/api/tables");
  CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"salt_buckets\":8"));
  free(js);
  js = http_get("/api/tables/salted/tablets");
  CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"start_unsalted\":{\"bucket\":2,\"text\":\"t0050\"}"));
  free(js);

  /* A second client learns the salt from the master. */
  mica_options co;
  mica_options_init(&co);
  mica_client *c2 = NULL;
  OK(mica_open(cl_master_address(g_c), &co, &c2));
  OK(mica_get(c2, "salted", "t0010", 5, &v, &vl));
  CU_ASSERT(vl == 3 && memcmp(v, "v10", 3) == 0);
  mica_free(v);
  /* Dropped and created again unsalted by another client: c2's next
   * write must not use the old salt (a write under the wrong salt would be
   * acknowledged and never found). */
  drop_and_wait("salted");
  OK(mica_create_table(g_m, "salted", NULL, 0));
  OK(mica_put(c2, "salted", "plain", 5, "p", 1));
  OK(mica_get(g_m, "salted", "plain", 5, &v, &vl));
  mica_free(v);
  OK(mica_get(c2, "salted", "plain", 5, &v, &vl));
  mica_free(v);
  /* And the other way: c2 and c3 know it unsalted, it comes back salted
   * (c2 writes single keys, c3 a batch). */
  mica_client *c3 = NULL;
  OK(mica_open(cl_master_address(g_c), &co, &c3));
  OK(mica_get(c3, "salted", "plain", 5, &v, &vl));
  mica_free(v);
  drop_and_wait("salted");
  o.salt_buckets = 5;
  OK(mica_create_table_opts(g_m, "salted", NULL, 0, &o));
  mica_batch *b2 = mica_batch_new();
  OK(mica_batch_put(b2, "b1", 2, "x", 1));
  OK(mica_batch_put(b2, "b2", 2, "y", 1));
  OK(mica_put(c2, "salted", "again", 5, "a", 1));
  OK(mica_batch_write(c3, "salted", b2, 0, NULL));
  mica_batch_free(b2);
  mica_close(c3);
  const char *want[] = {"again", "b1", "b2"};
  for (int i = 0; i < 3; i++) {
    OK(mica_get(g_m, "salted", want[i], strlen(want[i]), &v, &vl));
    mica_free(v);
  }
  mica_close(c2);
  free(g_model);
  g_model = NULL;
  g_n_model = 0;
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"options_round_trip", test_options_round_trip},
      {"bad_options", test_bad_options},
      {"options_reach_sstables", test_options_reach_sstables},
      {"split_threshold", test_split_threshold},
      {"salted_model", test_salted_model},
      CU_TEST_INFO_NULL};
  const char *only = getenv("MICA_TEST_ONLY");
  CU_pSuite s = CU_add_suite("tableopts", suite_init, suite_clean);
  for (const CU_TestInfo *t = tests; t->pName; t++)
    if (only == NULL || strcmp(only, t->pName) == 0)
      CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
