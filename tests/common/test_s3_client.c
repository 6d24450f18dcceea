/* test_s3_client: the S3 client's parts: configuration and paths, S3's
 * XML answers (including hostile ones) and encodings, and the local disk
 * cache against a real S3 server through the proxy of s3_harness.h (warm
 * reads send no GET, across readers and restarts; replaced objects are
 * never served stale; damaged chunk files are refetched; the budget), and
 * the process's request counters by kind (s3_get_stats). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/s3/env_s3.h"
#include "common/s3/s3_cache.h"
#include "common/s3/s3_client.h"
#include "common/s3/s3_xml.h"
#include "tests/common/s3_harness.h"

static void test_config(void) {
  s3_config c;
  unsetenv("AWS_ENDPOINT_URL_S3");
  unsetenv("AWS_DEFAULT_REGION");
  unsetenv("MICA_S3_ADDRESSING");
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
  setenv("AWS_REGION", "eu-west-3", 1);
  setenv("AWS_ACCESS_KEY_ID", "AK", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
  setenv("AWS_SESSION_TOKEN", "TOK", 1);
  TU_OK(s3_config_from_environ(&c));
  CU_ASSERT_STRING_EQUAL(c.endpoint, "http://127.0.0.1:1");
  CU_ASSERT_STRING_EQUAL(c.region, "eu-west-3");
  CU_ASSERT_STRING_EQUAL(c.access_key, "AK");
  CU_ASSERT_STRING_EQUAL(c.secret_key, "SK");
  CU_ASSERT_STRING_EQUAL(c.session_token, "TOK");
  CU_ASSERT_FALSE(c.virtual_host); /* an endpoint means path-style */
  s3_config_free(&c);
  setenv("MICA_S3_ADDRESSING", "sideways", 1);
  s3h_expect_err(s3_config_from_environ(&c), MICA_INVALID_ARGUMENT, "sideways");
  s3_config_free(&c);
  unsetenv("MICA_S3_ADDRESSING");
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_SESSION_TOKEN");
  TU_OK(s3_config_from_environ(&c));
  CU_ASSERT_PTR_NULL(c.endpoint);
  CU_ASSERT_TRUE(c.virtual_host); /* AWS itself: virtual-host */
  s3h_expect_err(s3_config_set(&c, "deadline-ms", "soon"), MICA_INVALID_ARGUMENT, "soon");
  s3h_expect_err(s3_config_set(&c, "part-size", "1000"), MICA_INVALID_ARGUMENT,
             "part-size");
  s3h_expect_err(s3_config_set(&c, "colour", "x"), MICA_INVALID_ARGUMENT, "colour");
  s3_client *cli;
  TU_OK(s3_client_new(&c, &cli));
  s3_client_free(cli);
  TU_OK(s3_config_set(&c, "endpoint", "ftp://x"));
  s3h_expect_err(s3_client_new(&c, &cli), MICA_INVALID_ARGUMENT, "ftp://x");
  TU_OK(s3_config_set(&c, "endpoint", "http://host:1/path"));
  s3h_expect_err(s3_client_new(&c, &cli), MICA_INVALID_ARGUMENT, "no path");
  TU_OK(s3_config_set(&c, "endpoint", "http://host:1"));
  TU_OK(s3_config_set(&c, "secret-key", ""));
  s3h_expect_err(s3_client_new(&c, &cli), MICA_INVALID_ARGUMENT, "secret");
  s3_config_free(&c);
  unsetenv("AWS_REGION");
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");

  char *bk, *key;
  TU_OK(env_s3_parse("s3://my.bucket-1//a///b/", &bk, &key));
  CU_ASSERT_STRING_EQUAL(bk, "my.bucket-1");
  CU_ASSERT_STRING_EQUAL(key, "a/b");
  free(bk);
  free(key);
  s3h_expect_err(env_s3_parse("s3://-bad/k", &bk, &key), MICA_INVALID_ARGUMENT, "-bad");
  s3h_expect_err(env_s3_parse("http://b/k", &bk, &key), MICA_INVALID_ARGUMENT, "http");
  CU_ASSERT_TRUE(env_s3_is_path("s3://b/k"));
  CU_ASSERT_FALSE(env_s3_is_path("/data"));
}

/* ---- parsing S3's answers (no server) ---- */

static void test_xml(void) {
  char code[32], msg[64];
  const char *e1 = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
                   "<Message>The key &amp; &lt;it&gt; does not exist.</Message>"
                   "</Error>";
  CU_ASSERT_TRUE(s3_xml_error(slice_from_str(e1), code, sizeof(code), msg,
                              sizeof(msg)));
  CU_ASSERT_STRING_EQUAL(code, "NoSuchKey");
  CU_ASSERT_STRING_EQUAL(msg, "The key & <it> does not exist.");
  /* Truncated to the buffers; not an error document; not XML. */
  CU_ASSERT_TRUE(s3_xml_error(slice_from_str(e1), code, 4, msg, 8));
  CU_ASSERT_STRING_EQUAL(code, "NoS");
  CU_ASSERT_FALSE(s3_xml_error(slice_from_str("<CopyObjectResult/>"), code,
                               sizeof(code), msg, sizeof(msg)));
  CU_ASSERT_FALSE(s3_xml_error(slice_from_str("<Error><Code>x"), code,
                               sizeof(code), msg, sizeof(msg)));
  CU_ASSERT_FALSE(s3_xml_error(slice_make(NULL, 0), code, sizeof(code), msg,
                               sizeof(msg)));

  const char *l1 =
      "<ListBucketResult><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>a+b/c=</NextContinuationToken>"
      "<Contents><Key>p/x&amp;y</Key><Size>12</Size></Contents>"
      "<Contents><Key>p/z</Key><Size>0</Size></Contents>"
      "<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes>"
      "</ListBucketResult>";
  s3_list_page pg;
  TU_OK(s3_xml_list(slice_from_str(l1), &pg));
  CU_ASSERT_EQUAL(pg.nkeys, 2);
  CU_ASSERT_STRING_EQUAL(pg.keys[0], "p/x&y");
  CU_ASSERT_EQUAL(pg.sizes[0], 12);
  CU_ASSERT_EQUAL(pg.sizes[1], 0);
  CU_ASSERT_EQUAL(pg.nprefixes, 1);
  CU_ASSERT_STRING_EQUAL(pg.prefixes[0], "p/d/");
  CU_ASSERT_TRUE(pg.truncated);
  CU_ASSERT_STRING_EQUAL(pg.next_token, "a+b/c=");
  s3_list_page_free(&pg);
  s3_list_page_free(NULL);

  /* Hostile or broken answers: errors, never crashes. */
  const char *bad[] = {
      "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
      "<ListBucketResult><Contents><Key>k</Key><Size>-1x</Size></Contents>"
      "</ListBucketResult>",
      "<ListBucketResult><Contents><Key>k</Key>",
      "<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;"
      "&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d "
      "\"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;"
      "&d;&d;\">]><ListBucketResult><Contents><Key>&e;&e;&e;&e;&e;&e;&e;&e;"
      "</Key></Contents></ListBucketResult>",
      "not xml at all",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    mica_err *err = s3_xml_list(slice_from_str(bad[i]), &pg);
    if (err_code(err) != MICA_CORRUPTION)
      fprintf(stderr, "\n  bad answer %zu: %s\n", i, err_msg(err));
    CU_ASSERT_EQUAL(err_code(err), MICA_CORRUPTION);
    err_free(err);
    s3_list_page_free(&pg);
  }
  /* Deep nesting is walked without recording past the depth limit. */
  buf deep = BUF_INIT;
  for (int i = 0; i < 5000; i++) buf_append(&deep, "<a>", 3);
  for (int i = 0; i < 5000; i++) buf_append(&deep, "</a>", 4);
  TU_OK(s3_xml_list(buf_slice(&deep), &pg));
  CU_ASSERT_EQUAL(pg.nkeys, 0);
  s3_list_page_free(&pg);
  buf_free(&deep);

  char *id;
  TU_OK(s3_xml_find(slice_from_str("<R><Bucket>b</Bucket><UploadId>u-1</UploadId></R>"),
                    "UploadId", &id));
  CU_ASSERT_STRING_EQUAL(id, "u-1");
  free(id);
  TU_ERR(s3_xml_find(slice_from_str("<R/>"), "UploadId", &id), MICA_NOT_FOUND);
  TU_ERR(s3_xml_find(slice_from_str("<R>"), "UploadId", &id), MICA_CORRUPTION);

  buf b = BUF_INIT;
  s3_xml_escape("a&b<c>\"d'", &b);
  buf_push(&b, 0);
  CU_ASSERT_STRING_EQUAL((char *)b.data, "a&amp;b&lt;c&gt;&quot;d&apos;");
  buf_clear(&b);
  s3_uri_encode("a b/c+d~e.f_g-h\xc3\xa9", true, &b);
  CU_ASSERT_STRING_EQUAL((char *)b.data, "a%20b/c%2Bd~e.f_g-h%C3%A9");
  buf_clear(&b);
  s3_uri_encode("a/b", false, &b);
  CU_ASSERT_STRING_EQUAL((char *)b.data, "a%2Fb");
  buf_free(&b);
  char hexd[65];
  s3_sha256_hex(slice_make(NULL, 0), hexd);
  CU_ASSERT_STRING_EQUAL(hexd, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- the disk cache ---- */

static env *cached_env(const char *cache_dir, const char *size,
                       const char *chunk) {
  s3_config c;
  s3h_config_for(&c, s3h_proxy_endpoint, false);
  TU_OK(s3_config_set(&c, "cache-dir", cache_dir));
  TU_OK(s3_config_set(&c, "cache-size", size));
  TU_OK(s3_config_set(&c, "cache-chunk", chunk));
  env *e;
  TU_OK(env_s3_new(&c, &e));
  s3_config_free(&c);
  return e;
}

/* Reads all of `path` through a new reader; checks it against `want`. */
static void read_check(env *e, const char *path, const uint8_t *want,
                       size_t n) {
  env_reader *r;
  TU_OK(env_open_reader(e, path, &r));
  CU_ASSERT_EQUAL_FATAL(env_reader_size(r), n);
  uint8_t *back = xmalloc(n + 1);
  size_t got;
  /* Unaligned pieces, so reads straddle chunk boundaries. */
  size_t off = 0;
  while (off < n) {
    size_t k = 1000 + tu_rand_below(90000);
    TU_OK(env_read(r, off, k, back + off, &got));
    CU_ASSERT_EQUAL_FATAL(got, k < n - off ? k : n - off);
    off += got;
  }
  CU_ASSERT_EQUAL(memcmp(back, want, n), 0);
  env_reader_close(r);
  free(back);
}

/* Bytes on disk of the chunk files of an `n`-byte object in `chunk`-byte
 * chunks: the data plus 4 bytes of CRC per 4 KiB page of each chunk. */
static uint64_t chunk_file_bytes(uint64_t n, uint64_t chunk) {
  uint64_t total = 0;
  for (uint64_t off = 0; off < n; off += chunk) {
    uint64_t len = n - off < chunk ? n - off : chunk;
    total += len + 4 * ((len + S3_CACHE_PAGE - 1) / S3_CACHE_PAGE);
  }
  return total;
}

static uint64_t dir_bytes(const char *dir, size_t *files) {
  char **names;
  size_t n;
  TU_OK(env_list(env_posix(), dir, &names, &n));
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    char *p = s3h_path_in(dir, names[i]);
    uint64_t size;
    TU_OK(env_file_size(env_posix(), p, &size));
    total += size;
    free(p);
  }
  env_free_names(names, n);
  *files = n;
  return total;
}

/* What a writer of this env uploaded is opened without a HEAD and, with a
 * disk cache, read without a GET (its chunks were stored at upload); the
 * same object named through "../" is the same object; a rewrite or a
 * removal by this env is never answered from what it remembered. */
static void test_cache_on_write(void) {
  const char *cdir = tu_tmpdir();
  env *e = cached_env(cdir, "64m", "64k");
  char *dir = s3h_new_root();
  char *p = s3h_path_in(dir, "t1/000001.sst");
  size_t n = 200000; /* 4 chunks of 64 KiB, the last one short */
  uint8_t *data = xmalloc(n);
  tu_rand_bytes(data, n);
  s3h_log_reset();
  env_writer *w;
  TU_OK(env_open_writer(e, p, ENV_CREATE_NEW, &w));
  TU_OK(env_append(w, data, n));
  TU_OK(env_sync(w));
  TU_OK(env_writer_close(w));
  char *t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "PUT "), 1);
  free(t);

  s3h_log_reset();
  read_check(e, p, data, n);
  char *via = s3h_path_in(dir, "t2/../t1/000001.sst");
  read_check(e, via, data, n);
  t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, " "), 0);
  free(t);
  size_t files;
  CU_ASSERT_EQUAL(dir_bytes(cdir, &files), chunk_file_bytes(n, 65536));
  CU_ASSERT_EQUAL(files, 4);

  /* Replaced by a whole-file write: opened with a HEAD, new bytes. */
  tu_rand_bytes(data, n);
  TU_OK(env_write_file_atomic(e, p, slice_make(data, n)));
  s3h_log_reset();
  read_check(e, via, data, n);
  t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "HEAD "), 1);
  free(t);

  /* Written again through a writer, then removed: NOT_FOUND, as S3 says. */
  TU_OK(env_open_writer(e, p, ENV_TRUNCATE, &w));
  TU_OK(env_append(w, data, n));
  TU_OK(env_writer_close(w));
  TU_OK(env_remove_if_present(e, p));
  env_reader *r = NULL;
  TU_ERR(env_open_reader(e, p, &r), MICA_NOT_FOUND);
  TU_OK(env_open_writer(e, p, ENV_TRUNCATE, &w));
  TU_OK(env_append(w, data, n));
  TU_OK(env_writer_close(w));
  TU_OK(env_remove_tree(e, dir));
  TU_ERR(env_open_reader(e, via, &r), MICA_NOT_FOUND);
  env_s3_free(e);
  free(via);
  free(p);
  free(dir);
  free(data);
}

/* A warm cache answers every read without S3, across readers and across a
 * restart; a replaced object is never served stale. */
static void test_cache_warm(void) {
  const char *cdir = tu_tmpdir();
  env *e = cached_env(cdir, "64m", "64k");
  char *dir = s3h_new_root();
  char *p = s3h_path_in(dir, "000001.sst");
  size_t n = 300000; /* 5 chunks of 64 KiB, the last one short */
  uint8_t *data = xmalloc(n);
  tu_rand_bytes(data, n);
  TU_OK(env_write_file_atomic(e, p, slice_make(data, n)));

  s3h_log_reset();
  read_check(e, p, data, n); /* cold: one GET per chunk */
  char *t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "GET "), 5);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "GET ", "range=bytes=262144-299999"), 1);
  free(t);
  size_t files;
  CU_ASSERT_EQUAL(dir_bytes(cdir, &files), chunk_file_bytes(n, 65536));
  CU_ASSERT_EQUAL(files, 5);

  s3h_log_reset();
  read_check(e, p, data, n); /* warm: only the reader's HEAD */
  /* A small read inside a chunk is served from its pages alone. */
  env_reader *r;
  TU_OK(env_open_reader(e, p, &r));
  uint8_t small[100];
  size_t got;
  TU_OK(env_read(r, 70000, sizeof(small), small, &got));
  CU_ASSERT_EQUAL(got, sizeof(small));
  CU_ASSERT_EQUAL(memcmp(small, data + 70000, sizeof(small)), 0);
  TU_OK(env_read(r, 65530, 12, small, &got)); /* across two chunks */
  CU_ASSERT_EQUAL(memcmp(small, data + 65530, 12), 0);
  env_reader_close(r);
  t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "GET "), 0);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "HEAD "), 2); /* one per reader */
  free(t);
  CU_ASSERT(s3_cache_hits(env_s3_cache(e)) >= 5);

  /* A restart keeps the cache. */
  env_s3_free(e);
  e = cached_env(cdir, "64m", "64k");
  CU_ASSERT_EQUAL(s3_cache_usage(env_s3_cache(e)), chunk_file_bytes(n, 65536));
  s3h_log_reset();
  read_check(e, p, data, n);
  t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "GET "), 0);
  free(t);

  /* Replaced under the same name: new ETag, new chunks, new bytes. */
  tu_rand_bytes(data, n);
  TU_OK(env_write_file_atomic(e, p, slice_make(data, n)));
  s3h_log_reset();
  read_check(e, p, data, n);
  t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "GET "), 5);
  free(t);

  /* A damaged chunk file is a miss, refetched, never an error. */
  char **names;
  size_t nn;
  TU_OK(env_list(env_posix(), cdir, &names, &nn));
  for (size_t i = 0; i < nn; i++) {
    char *f = s3h_path_in(cdir, names[i]);
    buf b = BUF_INIT;
    TU_OK(env_read_file(env_posix(), f, 1 << 20, &b));
    b.data[b.len / 2] ^= 1;
    TU_OK(env_write_file_atomic(env_posix(), f, buf_slice(&b)));
    buf_free(&b);
    free(f);
  }
  env_free_names(names, nn);
  s3h_log_reset();
  read_check(e, p, data, n);
  t = s3h_log_text();
  /* The chunks of the old version are damaged too, but never read. */
  CU_ASSERT_EQUAL(S3H_COUNT(t, "GET "), 5);
  free(t);
  env_s3_free(e);
  free(data);
  free(p);
  free(dir);
}

/* The cache stays within its budget, evicting the least recently used. */
static void test_cache_budget(void) {
  const char *cdir = tu_tmpdir();
  /* 16 shards of 80 KiB: room for one 64 KiB chunk in each. */
  env *e = cached_env(cdir, "1280k", "64k");
  char *dir = s3h_new_root();
  char *p = s3h_path_in(dir, "big.sst");
  size_t n = 3 << 20;
  uint8_t *data = xmalloc(n);
  tu_rand_bytes(data, n);
  TU_OK(env_write_file_atomic(e, p, slice_make(data, n)));
  read_check(e, p, data, n);
  size_t files;
  uint64_t bytes = dir_bytes(cdir, &files);
  CU_ASSERT(bytes <= 1280 * 1024);
  CU_ASSERT(files > 0 && files <= 16);
  CU_ASSERT_EQUAL(bytes, s3_cache_usage(env_s3_cache(e)));
  read_check(e, p, data, n); /* still right with evictions */
  env_s3_free(e);

  /* A smaller budget at restart evicts down to it. */
  e = cached_env(cdir, "0", "64k");
  bytes = dir_bytes(cdir, &files);
  CU_ASSERT_EQUAL(files, 0);
  CU_ASSERT_EQUAL(bytes, 0);
  read_check(e, p, data, n);
  env_s3_free(e);

  s3_config c;
  s3h_config_for(&c, s3h_proxy_endpoint, false);
  TU_OK(s3_config_set(&c, "cache-dir", "/dev/null/cache"));
  s3h_expect_err(env_s3_new(&c, &e), MICA_IO_ERROR, "/dev/null");
  s3h_expect_err(s3_config_set(&c, "cache-size", "12q"), MICA_INVALID_ARGUMENT, "12q");
  s3_config_free(&c);
  free(data);
  free(p);
  free(dir);
}

/* ---- request counters ---- */

/* The counters of s3_get_stats move by exactly the requests the proxy saw,
 * kind by kind, and a retried request counts once per attempt. */
static void test_request_counters(void) {
  env *e = s3h_env;
  char *dir = s3h_new_root();
  char *p = s3h_path_in(dir, "a.sst"), *q = s3h_path_in(dir, "b.sst");
  s3_stats a, b;
  s3h_log_reset();
  s3_get_stats(&a);
  TU_OK(env_write_file_atomic(e, p, slice_from_str("hello counters")));
  env_reader *r;
  TU_OK(env_open_reader(e, p, &r));
  uint8_t back[8];
  size_t got;
  TU_OK(env_read(r, 0, 5, back, &got));
  CU_ASSERT_EQUAL(got, 5);
  env_reader_close(r);
  char **names;
  size_t n;
  TU_OK(env_list(e, dir, &names, &n));
  env_free_names(names, n);
  TU_OK(env_rename(e, p, q));
  TU_OK(env_remove(e, q));
  s3_get_stats(&b);
  char *t = s3h_log_text();
  int want[S3_REQ_KINDS] = {0};
  want[S3_REQ_PUT] = S3H_COUNT(t, "PUT ") - S3H_COUNT(t, "PUT ", "copy-source");
  want[S3_REQ_COPY] = S3H_COUNT(t, "PUT ", "copy-source");
  want[S3_REQ_HEAD] = S3H_COUNT(t, "HEAD ");
  want[S3_REQ_LIST] = S3H_COUNT(t, "GET ", "list-type=");
  want[S3_REQ_GET] = S3H_COUNT(t, "GET ") - want[S3_REQ_LIST];
  want[S3_REQ_DELETE] = S3H_COUNT(t, "DELETE ");
  free(t);
  for (int k = 0; k < S3_REQ_KINDS; k++) {
    if (b.requests[k] - a.requests[k] != (uint64_t)want[k])
      fprintf(stderr, "%s: counted %llu, proxy saw %d\n", s3_req_kind_name(k),
              (unsigned long long)(b.requests[k] - a.requests[k]), want[k]);
    CU_ASSERT_EQUAL(b.requests[k] - a.requests[k], (uint64_t)want[k]);
  }
  /* Each kind this sequence must have used at least once. */
  CU_ASSERT(want[S3_REQ_PUT] >= 1 && want[S3_REQ_COPY] == 1);
  CU_ASSERT(want[S3_REQ_GET] >= 1 && want[S3_REQ_LIST] >= 1);
  CU_ASSERT(want[S3_REQ_HEAD] >= 1 && want[S3_REQ_DELETE] >= 1);
  CU_ASSERT(b.micros[S3_REQ_PUT] > a.micros[S3_REQ_PUT]);
  CU_ASSERT(b.bytes_out - a.bytes_out >= 14);
  CU_ASSERT(b.bytes_in - a.bytes_in >= 5);
  CU_ASSERT_EQUAL(b.retries, a.retries);

  /* A 503 answered once: two attempts of one HEAD, one retry. */
  const char *key = strchr(p + 5, '/') + 1;
  TU_OK(env_write_file_atomic(e, p, slice_from_str("again")));
  char spec[512];
  snprintf(spec, sizeof(spec), "kind=503&count=1&method=HEAD&match=%s", key);
  s3h_fault(spec);
  s3_get_stats(&a);
  uint64_t size;
  TU_OK(env_file_size(e, p, &size));
  CU_ASSERT_EQUAL(size, 5);
  s3_get_stats(&b);
  CU_ASSERT_EQUAL(b.requests[S3_REQ_HEAD] - a.requests[S3_REQ_HEAD], 2);
  CU_ASSERT_EQUAL(b.retries - a.retries, 1);

  /* Exported in Prometheus form, every kind present. */
  buf m = BUF_INIT;
  s3_render_metrics(&m);
  buf_push(&m, 0);
  const char *txt = (const char *)m.data;
  for (int k = 0; k < S3_REQ_KINDS; k++) {
    char needle[96];
    snprintf(needle, sizeof(needle), "mica_s3_requests_total{kind=\"%s\"} ",
             s3_req_kind_name(k));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, needle));
  }
  char needle[96];
  snprintf(needle, sizeof(needle), "mica_s3_requests_total{kind=\"HEAD\"} %llu\n",
           (unsigned long long)b.requests[S3_REQ_HEAD]);
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, needle));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "# TYPE mica_s3_request_seconds_total counter"));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "mica_s3_retries_total "));
  CU_ASSERT_STRING_EQUAL(s3_req_kind_name(S3_REQ_KINDS), "?");
  buf_free(&m);
  TU_OK(env_remove(e, p));
  free(p);
  free(q);
  free(dir);
}

/* env_dirs_implicit: true on S3, where a directory is there exactly while
 * a file is under it (what a split's daughters rely on), false on POSIX. */
static void test_dirs_implicit(void) {
  char *root = s3h_new_root();
  char *dir = s3h_path_in(root, "7");
  char *f = s3h_path_in(dir, "MANIFEST");
  CU_ASSERT(env_dirs_implicit(s3h_env, dir));
  CU_ASSERT(!env_dirs_implicit(env_posix(), tu_tmpdir()));
  TU_OK(env_mkdirs(s3h_env, dir));
  CU_ASSERT(!env_exists(s3h_env, dir)); /* mkdirs made nothing */
  TU_OK(env_write_file_atomic(s3h_env, f, slice_from_str("m")));
  CU_ASSERT(env_exists(s3h_env, dir));
  /* env_remove_if_present: one DELETE, no HEAD; absent is fine. */
  s3h_log_reset();
  TU_OK(env_remove_if_present(s3h_env, f));
  char *t = s3h_log_text();
  CU_ASSERT_EQUAL(S3H_COUNT(t, "DELETE "), 1);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "HEAD "), 0);
  free(t);
  CU_ASSERT(!env_exists(s3h_env, dir));
  TU_OK(env_remove_if_present(s3h_env, f));
  s3h_expect_err(env_remove(s3h_env, f), MICA_NOT_FOUND, "MANIFEST");
  char *pf = s3h_path_in(tu_tmpdir(), "gone");
  TU_OK(env_remove_if_present(env_posix(), pf));
  s3h_write_file(env_posix(), pf, ENV_TRUNCATE, "x");
  TU_OK(env_remove_if_present(env_posix(), pf));
  CU_ASSERT(!env_exists(env_posix(), pf));
  free(pf);
  free(f);
  free(dir);
  free(root);
}

/* env_remove_many: one multi-object delete (POST ?delete, signed, with
 * Content-MD5) per 1000 keys; missing keys are fine; keys with XML's
 * special characters are escaped; a path naming a bucket is refused. On
 * POSIX one removal each. */
static void test_remove_many(void) {
  char *root = s3h_new_root();
  enum { N = 1003 };
  char **paths = xcalloc(N, sizeof(*paths));
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, i == 7 ? "a&b<%d>'\".x" : "o%04d", i);
    paths[i] = s3h_path_in(root, name);
  }
  /* Three exist (one with special characters), the rest do not. */
  for (int i = 5; i < 8; i++)
    TU_OK(env_write_file_atomic(s3h_env, paths[i], slice_from_str("x")));
  s3h_log_reset();
  s3_stats a, b;
  s3_get_stats(&a);
  TU_OK(env_remove_many(s3h_env, (const char *const *)paths, N));
  s3_get_stats(&b);
  char *t = s3h_log_text();
  /* Two requests (1000 keys, 3 keys); a retried attempt is logged too. */
  CU_ASSERT_EQUAL(b.requests[S3_REQ_POST] - a.requests[S3_REQ_POST] -
                      (b.retries - a.retries),
                  2);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "POST ", "?delete") -
                      (int)(b.retries - a.retries),
                  2);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "DELETE "), 0);
  CU_ASSERT_EQUAL(S3H_COUNT(t, "HEAD "), 0);
  free(t);
  for (int i = 5; i < 8; i++) CU_ASSERT(!env_exists(s3h_env, paths[i]));
  TU_OK(env_remove_many(s3h_env, NULL, 0));
  const char *bad[] = {"s3://" S3H_BUCKET};
  s3h_expect_err(env_remove_many(s3h_env, bad, 1), MICA_INVALID_ARGUMENT,
                 "names a bucket");
  s3h_assert_all_signed();
  for (int i = 0; i < N; i++) free(paths[i]);
  free(paths);
  /* POSIX: each removed, a missing one is fine. */
  char *pa = s3h_path_in(tu_tmpdir(), "rm-a");
  char *pb = s3h_path_in(tu_tmpdir(), "rm-b");
  s3h_write_file(env_posix(), pa, ENV_TRUNCATE, "x");
  const char *both[] = {pa, pb};
  TU_OK(env_remove_many(env_posix(), both, 2));
  CU_ASSERT(!env_exists(env_posix(), pa));
  free(pa);
  free(pb);
  free(root);
}

static CU_TestInfo unit_tests[] = {
    {"configuration and paths", test_config},
    {"XML answers: errors, listings, hostile bodies; encodings", test_xml},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo cache_tests[] = {
    {"cache on write: no HEAD, no GET; rewrites and removals", test_cache_on_write},
    {"warm reads, restart, replaced objects, damage", test_cache_warm},
    {"budget and eviction", test_cache_budget},
    {"request counters by kind, retries, /metrics text", test_request_counters},
    {"implicit directories; remove_if_present", test_dirs_implicit},
    {"remove_many: multi-object delete", test_remove_many},
    CU_TEST_INFO_NULL,
};

static void add_suites(void) {
  tu_add_suite("s3 configuration and answers", unit_tests);
  CU_pSuite s = CU_add_suite("s3 disk cache", s3h_setup, NULL);
  for (const CU_TestInfo *t = cache_tests; t->pName; t++)
    CU_add_test(s, t->pName, t->pTestFunc);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
