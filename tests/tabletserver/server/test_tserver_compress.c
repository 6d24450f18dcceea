/* test_tserver_compress: a real mica-tserver writes compressed SSTables.
 *
 * One data root, three lives of the server: by default (LZ4), then with
 * --compression zstd, then with --compression none. Each life reopens the
 * tablet, reads back every key written before (files written under another
 * setting must stay readable), writes a new batch of compressible values,
 * and closes the tablet so the memtable is flushed. The SSTables that close
 * wrote are then opened with the SSTable library and their properties
 * checked: the compression the flag asked for, every data block of the
 * compressible values stored compressed (none for `none`), and the data on
 * disk much smaller than its raw size. Bad --compression values are refused
 * with exit 2 and a message naming the flag and the value. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/env.h"
#include "sstable/sstable.h"
#include "tests/harness/testutil.h"
#include "tests/tabletserver/server/tsh.h"

#define KEYS 3000  /* per life; 600-byte values, ~1.8 MB, ~220 blocks */
#define VLEN 600

/* A value that compresses well but not trivially: a short line of text
 * naming the key, repeated. */
static void value_for(const char *key, char *out) {
  size_t n = strlen(key);
  for (size_t i = 0; i < VLEN; i++)
    out[i] = i % (n + 8) < n ? key[i % (n + 8)] : "-value-"[i % 7];
}

/* The names of the SSTables in the tablet's directory, one string of
 * "\n"-terminated names. */
static void list_ssts(const char *tdir, buf *out) {
  buf_clear(out);
  char **names = NULL;
  size_t n = 0;
  TU_OK(env_list(env_posix(), tdir, &names, &n));
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(names[i]);
    if (l > 4 && strcmp(names[i] + l - 4, ".sst") == 0) {
      buf_append(out, names[i], l);
      buf_push(out, '\n');
    }
  }
  env_free_names(names, n);
  buf_push(out, 0);
}

/* Checks every SSTable in `after` but not in `before`; returns how many. */
static int check_new_ssts(const char *tdir, const buf *before,
                          const buf *after, sst_compression want) {
  int checked = 0;
  const char *p = (const char *)after->data;
  while (*p) {
    const char *nl = strchr(p, '\n');
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(nl - p), p);
    p = nl + 1;
    char needle[260];
    snprintf(needle, sizeof needle, "%s\n", name);
    if (strstr((const char *)before->data, needle) != NULL) continue;
    char path[4096 + 300];
    snprintf(path, sizeof path, "%s/%s", tdir, name);
    sst_reader *r = NULL;
    TU_OK(sst_reader_open(env_posix(), path, NULL, &r));
    if (r == NULL) continue;
    const sst_properties *pr = sst_reader_properties(r);
    fprintf(stderr, "  %s: compression %u, %llu of %llu blocks compressed, "
            "%llu bytes on disk for %llu raw\n", name, pr->compression,
            (unsigned long long)pr->num_compressed_blocks,
            (unsigned long long)pr->num_data_blocks,
            (unsigned long long)pr->data_size,
            (unsigned long long)pr->raw_data_size);
    CU_ASSERT_EQUAL(pr->compression, (uint32_t)want);
    CU_ASSERT(pr->num_data_blocks > 10);
    if (want == SST_COMPRESS_NONE) {
      CU_ASSERT_EQUAL(pr->num_compressed_blocks, 0);
    } else {
      CU_ASSERT_EQUAL(pr->num_compressed_blocks, pr->num_data_blocks);
      CU_ASSERT(pr->data_size * 3 < pr->raw_data_size);
    }
    /* Readable through the library: every entry decompresses. */
    iter *it = sst_reader_iter_new(r, false);
    uint64_t entries = 0;
    for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) entries++;
    CU_ASSERT_PTR_NULL(iter_status(it));
    iter_close(it);
    CU_ASSERT_EQUAL(entries, pr->num_entries);
    sst_reader_close(r);
    checked++;
  }
  return checked;
}

/* One life of the server: start with `extra`, reopen the tablet under
 * `epoch`, read back the `lives_before` earlier batches, write batch
 * `life`, close the tablet, check the new files, stop. */
static void one_life(const char *dir, const char *const *extra, int life,
                     uint64_t epoch, sst_compression want) {
  tsh_proc p;
  TU_OK(tsh_start(dir, extra, &p));
  tsh_ref ref = {1, 1, epoch};
  TU_OK(tsh_open(p.ch, ref, NULL, NULL));
  char key[32], want_v[VLEN];
  buf v = BUF_INIT;
  int good = 0;
  for (int l = 0; l < life; l++)
    for (int i = 0; i < KEYS; i += 7) {
      snprintf(key, sizeof key, "life%d-%08d", l, i);
      value_for(key, want_v);
      mica_err *e = tsh_get(p.ch, ref, slice_from_str(key), &v);
      if (e == NULL && v.len == VLEN && memcmp(v.data, want_v, VLEN) == 0)
        good++;
      err_free(e);
    }
  CU_ASSERT_EQUAL(good, life * ((KEYS + 6) / 7));
  for (int i = 0; i < KEYS; i++) {
    snprintf(key, sizeof key, "life%d-%08d", life, i);
    value_for(key, want_v);
    TU_OK(tsh_put(p.ch, ref, slice_from_str(key),
                  slice_make((const uint8_t *)want_v, VLEN)));
  }
  char tdir[4096];
  snprintf(tdir, sizeof tdir, "%s/tablets/1", dir);
  buf before = BUF_INIT, after = BUF_INIT;
  list_ssts(tdir, &before);
  TU_OK(tsh_close(p.ch, ref)); /* flushes the memtable to an SSTable */
  list_ssts(tdir, &after);
  CU_ASSERT(check_new_ssts(tdir, &before, &after, want) >= 1);
  buf_free(&before);
  buf_free(&after);
  buf_free(&v);
  CU_ASSERT_EQUAL(tsh_stop(&p, SIGTERM), 0);
}

static void test_lives(void) {
  const char *dir = tu_tmpdir();
  one_life(dir, NULL, 0, 1, SST_COMPRESS_LZ4); /* the default */
  const char *zstd[] = {"--compression", "zstd", NULL};
  one_life(dir, zstd, 1, 2, SST_COMPRESS_ZSTD);
  const char *none[] = {"--compression=none", NULL};
  one_life(dir, none, 2, 3, SST_COMPRESS_NONE);
  const char *lz4[] = {"--compression", "lz4", NULL};
  one_life(dir, lz4, 3, 4, SST_COMPRESS_LZ4);
}

static void test_bad_values(void) {
  char exe[4096];
  TU_OK(th_bin("mica-tserver", exe, sizeof exe));
  const char *const bad[] = {"snappy", "LZ4", "zstd:3", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char arg[64];
    snprintf(arg, sizeof arg, "--compression=%s", bad[i]);
    const char *argv[] = {exe, "--data-dir", tu_tmpdir(), arg, NULL};
    th_result r;
    TU_OK(th_run(argv, NULL, NULL, 0, &r));
    CU_ASSERT_EQUAL(r.rc, 2);
    char want[96];
    snprintf(want, sizeof want, "--compression: '%s' is not lz4, zstd or none",
             bad[i]);
    CU_ASSERT_PTR_NOT_NULL(strstr((const char *)r.err.data, want));
    th_result_free(&r);
  }
  /* A flag without a value is refused too. */
  const char *argv[] = {exe, "--data-dir", tu_tmpdir(), "--compression", NULL};
  th_result r;
  TU_OK(th_run(argv, NULL, NULL, 0, &r));
  CU_ASSERT_EQUAL(r.rc, 2);
  CU_ASSERT_PTR_NOT_NULL(
      strstr((const char *)r.err.data, "flag '--compression' needs a value"));
  th_result_free(&r);
}

static const CU_TestInfo tests[] = {
    {"lives", test_lives},
    {"bad_values", test_bad_values},
    CU_TEST_INFO_NULL};

static void add_suites(void) { tu_add_suite("tserver_compress", tests); }

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
