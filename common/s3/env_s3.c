/* env_s3: env operations as S3 requests (the mapping is in env_s3.h and
 * docs/storage.md; this file explains the choices that are not visible
 * there).
 *
 * Why writers buffer the whole file: S3 objects cannot be appended to.
 * The files Mica writes through the env are written once, sequentially,
 * and synced once near the end (SSTables, manifests, the master's
 * snapshot files), so keeping the bytes until the upload costs one
 * object's size of memory and one PUT per file. The write-ahead log on S3
 * is a different design (an object per group commit, issue 16) and does
 * not go through a long-lived writer. */
#include "common/s3/env_s3.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env_impl.h"
#include "common/s3/s3_cache.h"
#include "common/s3/s3_xml.h"

/* An object this env uploaded through a writer (an SSTable), remembered
 * so that opening it for reading right after, which a flush, a compaction
 * and a split's daughters all do, needs no HEAD: its size and ETag are
 * known from the PUT. With a disk cache its chunks are also stored there
 * at upload (cache on write), so those reads send no GET either. Names
 * written through a writer carry the writer's epoch and a file number and
 * are never rewritten by another process (the epoch rule); a rewrite or
 * removal by this env forgets the entry. An object removed by another
 * process would still open here, as an unlinked file stays readable on
 * POSIX; only garbage collection removes SSTables, and never one a live
 * manifest lists. */
#define RECENT_MAX 64

typedef struct recent_obj {
  char *bk;        /* "bucket/key"; NULL for a free slot */
  uint64_t size;
  char etag[128];
  uint64_t stamp;  /* for replacing the least recently used */
} recent_obj;

typedef struct env_s3 {
  struct env base;
  s3_client *cli;
  s3_cache *cache; /* NULL: no disk cache */
  pthread_mutex_t rmu; /* guards rec and rclock */
  recent_obj rec[RECENT_MAX];
  uint64_t rclock;
} env_s3;

typedef struct s3_reader {
  struct env_reader base;
  char *bucket, *key, *path;
  char etag[128];     /* from the HEAD at open; "" if the server gave none */
  char if_match[160]; /* "If-Match: ETAG", or "" */
} s3_reader;

typedef struct s3_writer {
  struct env_writer base;
  char *bucket, *key, *path;
  buf data;          /* the whole file */
  bool uploaded;     /* an upload by this writer succeeded */
  uint64_t synced;   /* bytes the last successful upload covered */
  bool create_new;   /* the first upload must not replace an object */
} s3_writer;

static s3_client *cli_of(env *e) { return ((env_s3 *)e)->cli; }

/* ---- paths ---- */

bool env_s3_is_path(const char *path) {
  return path != NULL && strncmp(path, "s3://", 5) == 0;
}

static bool bucket_ok(const char *b, size_t n) {
  if (n < 3 || n > 63) return false;
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.') return false;
    if (!alnum && (i == 0 || i == n - 1)) return false;
  }
  return true;
}

/* Resolves "." and ".." segments of a key whose slashes are collapsed, in
 * place, as curl does to a URL's path before sending it (a split
 * daughter names its parent's files as "../<parent>/<file>"): so one
 * object has one key here too, for the disk cache's chunk names and the
 * objects this env just wrote. A ".." with nothing before it stays.
 * Returns the new length. */
static size_t drop_dot_segments(char *key) {
  size_t n = 0, i = 0, len = strlen(key);
  while (i < len) {
    size_t j = i;
    while (j < len && key[j] != '/') j++;
    size_t sl = j - i;
    if (sl == 1 && key[i] == '.') {
      /* dropped */
    } else if (sl == 2 && key[i] == '.' && key[i + 1] == '.' && n > 0 &&
               !(n == 2 && key[0] == '.' && key[1] == '.') &&
               !(n > 2 && strncmp(key + n - 3, "/..", 3) == 0)) {
      while (n > 0 && key[n - 1] != '/') n--;
      if (n > 0) n--; /* the slash before the dropped segment */
    } else {
      if (n > 0) key[n++] = '/';
      memmove(key + n, key + i, sl);
      n += sl;
    }
    i = j + 1;
  }
  key[n] = '\0';
  return n;
}

mica_err *env_s3_parse(const char *path, char **bucket, char **key) {
  *bucket = *key = NULL;
  if (!env_s3_is_path(path))
    return err_new(MICA_INVALID_ARGUMENT, "%s: not an s3://BUCKET/KEY path",
                   path);
  const char *b = path + 5;
  size_t bl = strcspn(b, "/");
  if (!bucket_ok(b, bl))
    return err_new(MICA_INVALID_ARGUMENT,
                   "%s: bucket name must be 3-63 characters of a-z, 0-9, '.' "
                   "and '-', starting and ending with a letter or digit",
                   path);
  /* The key: slashes collapsed, no leading or trailing slash. */
  const char *k = b + bl;
  size_t kl = strlen(k);
  char *out = xmalloc(kl + 1);
  size_t n = 0;
  for (size_t i = 0; i < kl; i++) {
    if (k[i] == '/' && (n == 0 || out[n - 1] == '/')) continue;
    out[n++] = k[i];
  }
  if (n > 0 && out[n - 1] == '/') n--;
  out[n] = '\0';
  n = drop_dot_segments(out);
  if (n > 1024) {
    free(out);
    return err_new(MICA_INVALID_ARGUMENT, "%s: key longer than 1024 bytes",
                   path);
  }
  *bucket = xmemdup(b, bl + 1);
  (*bucket)[bl] = '\0';
  *key = out;
  return NULL;
}

/* Like env_s3_parse, but the path must name an object, not a bucket. */
static mica_err *parse_object(const char *op, const char *path, char **bucket,
                              char **key) {
  mica_err *err = env_s3_parse(path, bucket, key);
  if (err == NULL && (*key)[0] == '\0') {
    free(*bucket);
    free(*key);
    *bucket = *key = NULL;
    err = err_new(MICA_INVALID_ARGUMENT, "%s %s: names a bucket, not an object",
                  op, path);
  }
  return err == NULL ? NULL : err_wrap(err, "%s", op);
}

/* ---- small requests ---- */

/* HEAD: size and ETag of an object. */
static mica_err *head(env *e, const char *bucket, const char *key,
                      uint64_t *size, char *etag, size_t etag_n) {
  s3_request rq = {.method = "HEAD", .bucket = bucket, .key = key};
  s3_response rs;
  mica_err *err = s3_do(cli_of(e), &rq, &rs);
  if (err == NULL) {
    if (rs.content_length == UINT64_MAX)
      err = err_new(MICA_IO_ERROR, "HEAD s3://%s/%s: no Content-Length",
                    bucket, key);
    *size = rs.content_length;
    if (etag != NULL) snprintf(etag, etag_n, "%s", rs.etag);
  }
  s3_response_free(&rs);
  return err;
}

/* `etag` (128 bytes, may be NULL) receives the answer's ETag, "" if
 * none. */
static mica_err *put(env *e, const char *bucket, const char *key, slice data,
                     bool if_none_match, char *etag) {
  const char *hdr[] = {"If-None-Match: *", NULL};
  s3_request rq = {.method = "PUT", .bucket = bucket, .key = key,
                   .body = data, .headers = if_none_match ? hdr : NULL,
                   .code_412 = MICA_ALREADY_EXISTS};
  s3_response rs;
  mica_err *err = s3_do(cli_of(e), &rq, &rs);
  if (etag != NULL) snprintf(etag, 128, "%s", err == NULL ? rs.etag : "");
  s3_response_free(&rs);
  return err;
}

static mica_err *delete_key(env *e, const char *bucket, const char *key) {
  s3_request rq = {.method = "DELETE", .bucket = bucket, .key = key};
  s3_response rs;
  mica_err *err = s3_do(cli_of(e), &rq, &rs);
  s3_response_free(&rs);
  return err;
}

/* The parts of one multipart upload, shared by the threads that send
 * them: each takes the next part number until all are sent or one fails. */
typedef struct part_job {
  s3_client *cli;
  const char *bucket, *key, *upload_id; /* upload_id URI-encoded */
  slice data;
  uint64_t part_size;
  size_t nparts;
  pthread_mutex_t mu;
  size_t next;   /* guarded by mu */
  mica_err *err; /* the first failure; guarded by mu */
  char (*etags)[128];
} part_job;

static void *send_parts(void *arg) {
  part_job *j = arg;
  buf q = BUF_INIT;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    size_t i = j->next++;
    bool stop = j->err != NULL || i >= j->nparts;
    pthread_mutex_unlock(&j->mu);
    if (stop) break;
    size_t off = (size_t)(i * j->part_size);
    size_t len = j->data.len - off < j->part_size ? j->data.len - off
                                                  : (size_t)j->part_size;
    char what[64], num[48];
    snprintf(what, sizeof(what), "(part %zu of %zu)", i + 1, j->nparts);
    snprintf(num, sizeof(num), "partNumber=%zu&uploadId=", i + 1);
    buf_clear(&q);
    buf_append(&q, num, strlen(num));
    buf_append(&q, j->upload_id, strlen(j->upload_id) + 1);
    s3_request pr = {.method = "PUT", .bucket = j->bucket, .key = j->key,
                     .query = (const char *)q.data,
                     .body = slice_make(j->data.data + off, len), .what = what};
    s3_response rs;
    mica_err *err = s3_do(j->cli, &pr, &rs);
    if (err == NULL && rs.etag[0] == '\0')
      err = err_new(MICA_IO_ERROR, "PUT s3://%s/%s %s: no ETag in the answer",
                    j->bucket, j->key, what);
    if (err == NULL) snprintf(j->etags[i], sizeof(j->etags[i]), "%s", rs.etag);
    s3_response_free(&rs);
    if (err != NULL) {
      pthread_mutex_lock(&j->mu);
      if (j->err == NULL) j->err = err;
      else err_free(err);
      pthread_mutex_unlock(&j->mu);
    }
  }
  buf_free(&q);
  return NULL;
}

/* Multipart upload of `data` in parts of the configured size, up to
 * `upload_parallelism` parts in flight; aborted on failure so no parts
 * are left to bill. */
static mica_err *put_multipart(env *e, const char *bucket, const char *key,
                               slice data, bool if_none_match) {
  s3_client *cli = cli_of(e);
  const s3_config *cfg = s3_client_config(cli);
  s3_request rq = {.method = "POST", .bucket = bucket, .key = key,
                   .query = "uploads=", .what = "(start multipart upload)"};
  s3_response rs;
  mica_err *err = s3_do(cli, &rq, &rs);
  char *upload_id = NULL;
  if (err == NULL) {
    err = s3_xml_find(buf_slice(&rs.body), "UploadId", &upload_id);
    if (err != NULL)
      err = err_wrap(err, "POST s3://%s/%s start multipart upload", bucket,
                     key);
  }
  s3_response_free(&rs);
  if (err != NULL) return err;

  buf id = BUF_INIT, q = BUF_INIT, done = BUF_INIT;
  s3_uri_encode(upload_id, false, &id);
  part_job j = {.cli = cli, .bucket = bucket, .key = key,
                .upload_id = (const char *)id.data, .data = data,
                .part_size = cfg->part_size};
  j.nparts = (size_t)((data.len + j.part_size - 1) / j.part_size);
  j.etags = xcalloc(j.nparts, sizeof(*j.etags));
  pthread_mutex_init(&j.mu, NULL);
  size_t nthreads = cfg->upload_parallelism ? cfg->upload_parallelism : 1;
  if (nthreads > j.nparts) nthreads = j.nparts;
  pthread_t *th = xcalloc(nthreads, sizeof(*th));
  size_t started = 0;
  /* This thread sends parts too; a thread that cannot start is not needed. */
  for (size_t t = 1; t < nthreads; t++)
    if (pthread_create(&th[started], NULL, send_parts, &j) == 0) started++;
  send_parts(&j);
  for (size_t t = 0; t < started; t++) pthread_join(th[t], NULL);
  free(th);
  pthread_mutex_destroy(&j.mu);
  err = j.err;

  buf_append(&done, "<CompleteMultipartUpload>", 25);
  for (size_t i = 0; err == NULL && i < j.nparts; i++) {
    char head_[64];
    snprintf(head_, sizeof(head_), "<Part><PartNumber>%zu</PartNumber><ETag>",
             i + 1);
    buf_append(&done, head_, strlen(head_));
    s3_xml_escape(j.etags[i], &done);
    buf_append(&done, "</ETag></Part>", 14);
  }
  buf_append(&done, "</CompleteMultipartUpload>", 26);
  free(j.etags);
  buf_append(&q, "uploadId=", 9);
  buf_append(&q, id.data, id.len + 1);
  if (err == NULL) {
    const char *hdr[] = {"If-None-Match: *", NULL};
    s3_request cr = {.method = "POST", .bucket = bucket, .key = key,
                     .query = (const char *)q.data, .body = buf_slice(&done),
                     .headers = if_none_match ? hdr : NULL,
                     .code_412 = MICA_ALREADY_EXISTS,
                     .what = "(complete multipart upload)"};
    err = s3_do(cli, &cr, &rs);
    s3_response_free(&rs);
  }
  if (err != NULL) {
    s3_request ar = {.method = "DELETE", .bucket = bucket, .key = key,
                     .query = (const char *)q.data,
                     .what = "(abort multipart upload)"};
    err_free(s3_do(cli, &ar, &rs));
    s3_response_free(&rs);
  }
  free(upload_id);
  buf_free(&id);
  buf_free(&q);
  buf_free(&done);
  return err;
}

/* `etag` as for put; always "" after a multipart upload (whose ETag is
 * not the one a HEAD would give in every implementation). */
static mica_err *upload_etag(env *e, const char *bucket, const char *key,
                             slice data, bool if_none_match, char *etag) {
  if (etag != NULL) etag[0] = '\0';
  if (data.len >= s3_client_config(cli_of(e))->multipart_threshold)
    return put_multipart(e, bucket, key, data, if_none_match);
  return put(e, bucket, key, data, if_none_match, etag);
}

static mica_err *upload(env *e, const char *bucket, const char *key,
                        slice data, bool if_none_match) {
  return upload_etag(e, bucket, key, data, if_none_match, NULL);
}

/* ---- objects this env just wrote ---- */

static char *bucket_key(const char *bucket, const char *key) {
  size_t n = strlen(bucket) + strlen(key) + 2;
  char *bk = xmalloc(n);
  snprintf(bk, n, "%s/%s", bucket, key);
  return bk;
}

/* Forgets `bucket`/`key`, or with `prefix` every key starting with it. */
static void recent_forget(env *e, const char *bucket, const char *key,
                          bool prefix) {
  env_s3 *s = (env_s3 *)e;
  char *bk = bucket_key(bucket, key);
  size_t n = strlen(bk);
  pthread_mutex_lock(&s->rmu);
  for (size_t i = 0; i < RECENT_MAX; i++) {
    recent_obj *r = &s->rec[i];
    if (r->bk != NULL &&
        (prefix ? strncmp(r->bk, bk, n) == 0 : strcmp(r->bk, bk) == 0)) {
      free(r->bk);
      r->bk = NULL;
    }
  }
  pthread_mutex_unlock(&s->rmu);
  free(bk);
}

/* Remembers an upload of `data` as `etag` and, with a disk cache, stores
 * its chunks there under that ETag. */
static void recent_note(env *e, const char *bucket, const char *key,
                        slice data, const char *etag) {
  env_s3 *s = (env_s3 *)e;
  if (etag[0] == '\0') {
    recent_forget(e, bucket, key, false);
    return;
  }
  if (s->cache != NULL) {
    uint64_t csize = s3_cache_chunk(s->cache);
    for (uint64_t idx = 0; idx * csize < data.len; idx++) {
      uint64_t off = idx * csize;
      uint64_t clen = data.len - off < csize ? data.len - off : csize;
      uint8_t id[32];
      s3_cache_id(s->cache, bucket, key, etag, idx, id);
      s3_cache_put(s->cache, id, data.data + off, (size_t)clen);
    }
  }
  char *bk = bucket_key(bucket, key);
  pthread_mutex_lock(&s->rmu);
  recent_obj *slot = NULL;
  for (size_t i = 0; i < RECENT_MAX && slot == NULL; i++)
    if (s->rec[i].bk != NULL && strcmp(s->rec[i].bk, bk) == 0)
      slot = &s->rec[i];
  for (size_t i = 0; i < RECENT_MAX && slot == NULL; i++)
    if (s->rec[i].bk == NULL) slot = &s->rec[i];
  if (slot == NULL) {
    slot = &s->rec[0];
    for (size_t i = 1; i < RECENT_MAX; i++)
      if (s->rec[i].stamp < slot->stamp) slot = &s->rec[i];
  }
  free(slot->bk);
  slot->bk = bk;
  slot->size = data.len;
  snprintf(slot->etag, sizeof(slot->etag), "%s", etag);
  slot->stamp = ++s->rclock;
  pthread_mutex_unlock(&s->rmu);
}

/* Size and ETag of `bucket`/`key` if this env uploaded it recently. */
static bool recent_find(env *e, const char *bucket, const char *key,
                        uint64_t *size, char *etag, size_t etag_n) {
  env_s3 *s = (env_s3 *)e;
  char *bk = bucket_key(bucket, key);
  bool found = false;
  pthread_mutex_lock(&s->rmu);
  for (size_t i = 0; i < RECENT_MAX && !found; i++) {
    recent_obj *r = &s->rec[i];
    if (r->bk != NULL && strcmp(r->bk, bk) == 0) {
      *size = r->size;
      snprintf(etag, etag_n, "%s", r->etag);
      r->stamp = ++s->rclock;
      found = true;
    }
  }
  pthread_mutex_unlock(&s->rmu);
  free(bk);
  return found;
}

/* Calls `fn` for every key (and, with a delimiter, every common prefix)
 * under `prefix`, one ListObjectsV2 page at a time. */
typedef mica_err *(*list_fn)(void *arg, const char *name, bool is_prefix);

static mica_err *list_prefix(env *e, const char *bucket, const char *prefix,
                             bool delimited, int max_keys, bool one_page,
                             list_fn fn, void *arg) {
  buf q = BUF_INIT;
  char *token = NULL;
  mica_err *err = NULL;
  do {
    buf_clear(&q);
    if (token != NULL) {
      buf_append(&q, "continuation-token=", 19);
      s3_uri_encode(token, false, &q);
      buf_push(&q, '&');
    }
    if (delimited) buf_append(&q, "delimiter=%2F&", 14);
    char mk[48];
    snprintf(mk, sizeof(mk), "list-type=2&max-keys=%d&prefix=", max_keys);
    buf_append(&q, mk, strlen(mk));
    s3_uri_encode(prefix, false, &q);
    s3_request rq = {.method = "GET", .bucket = bucket, .query = (const char *)q.data,
                     .what = "(list)"};
    s3_response rs;
    err = s3_do(cli_of(e), &rq, &rs);
    s3_list_page page;
    memset(&page, 0, sizeof(page));
    if (err == NULL) {
      err = s3_xml_list(buf_slice(&rs.body), &page);
      if (err != NULL)
        err = err_wrap(err, "list s3://%s/%s", bucket, prefix);
    }
    s3_response_free(&rs);
    for (size_t i = 0; err == NULL && i < page.nkeys; i++)
      err = fn(arg, page.keys[i], false);
    for (size_t i = 0; err == NULL && i < page.nprefixes; i++)
      err = fn(arg, page.prefixes[i], true);
    free(token);
    token = NULL;
    if (err == NULL && page.truncated && !one_page) {
      if (page.nkeys == 0 && page.nprefixes == 0)
        err = err_new(MICA_CORRUPTION,
                      "list s3://%s/%s: a truncated page with no entries",
                      bucket, prefix);
      else
        token = xstrdup(page.next_token);
    }
    s3_list_page_free(&page);
  } while (err == NULL && token != NULL);
  free(token);
  buf_free(&q);
  return err;
}

/* ---- readers ---- */

static mica_err *s3_open_reader(env *e, const char *path, env_reader **out) {
  char *bucket, *key;
  mica_err *err = parse_object("open", path, &bucket, &key);
  if (err != NULL) return err;
  uint64_t size = 0;
  char etag[128];
  if (!recent_find(e, bucket, key, &size, etag, sizeof(etag)))
    err = head(e, bucket, key, &size, etag, sizeof(etag));
  if (err != NULL) {
    free(bucket);
    free(key);
    return err_wrap(err, "open %s", path);
  }
  s3_reader *r = xcalloc(1, sizeof(*r));
  r->bucket = bucket;
  r->key = key;
  r->path = xstrdup(path);
  snprintf(r->etag, sizeof(r->etag), "%s", etag);
  if (etag[0] != '\0')
    snprintf(r->if_match, sizeof(r->if_match), "If-Match: %s", etag);
  r->base.owner = e;
  r->base.path = r->path;
  r->base.size = size;
  *out = &r->base;
  return NULL;
}

/* One ranged GET of [off, off+len) into `dst` (len > 0, inside the
 * object). */
static mica_err *get_range(s3_reader *r, uint64_t off, uint64_t len,
                           uint8_t *dst) {
  const char *hdr[] = {r->if_match, NULL};
  s3_request rq = {.method = "GET", .bucket = r->bucket, .key = r->key,
                   .ranged = true, .range_off = off, .range_len = len,
                   .headers = r->if_match[0] ? hdr : NULL};
  s3_response rs;
  mica_err *err = s3_do(cli_of(r->base.owner), &rq, &rs);
  /* A server that ignores If-Match still names the object it answered
   * from: a different ETag or size means the object was replaced. */
  if (err == NULL && ((r->etag[0] != '\0' && rs.etag[0] != '\0' &&
                       strcmp(rs.etag, r->etag) != 0) ||
                      (rs.object_size != UINT64_MAX &&
                       rs.object_size != r->base.size)))
    err = err_new(MICA_ABORTED,
                  "GET s3://%s/%s: object replaced since it was opened "
                  "(ETag %s, size %" PRIu64 "; at open %s, %" PRIu64 ")",
                  r->bucket, r->key, rs.etag, rs.object_size, r->etag,
                  r->base.size);
  if (err == NULL && rs.body.len != len)
    err = err_new(MICA_IO_ERROR,
                  "GET s3://%s/%s: %zu bytes, expected %" PRIu64
                  " (object shorter than at open)",
                  r->bucket, r->key, rs.body.len, len);
  if (err == NULL) memcpy(dst, rs.body.data, rs.body.len);
  else if (err_code(err) == MICA_ABORTED)
    err = err_wrap(err, "object replaced since it was opened");
  s3_response_free(&rs);
  return err;
}

/* Through the disk cache: every chunk the range touches is served from
 * disk or fetched whole (one GET) and kept. */
static mica_err *read_chunks(s3_reader *r, s3_cache *cache, uint64_t offset,
                             uint64_t len, uint8_t *dst) {
  uint64_t csize = s3_cache_chunk(cache);
  uint8_t *tmp = NULL;
  mica_err *err = NULL;
  uint64_t end = offset + len;
  for (uint64_t idx = offset / csize; err == NULL && idx * csize < end; idx++) {
    uint64_t cstart = idx * csize;
    uint64_t clen = r->base.size - cstart < csize ? r->base.size - cstart : csize;
    uint64_t from = offset > cstart ? offset : cstart;
    uint64_t to = end < cstart + clen ? end : cstart + clen;
    uint8_t id[32];
    s3_cache_id(cache, r->bucket, r->key, r->etag, idx, id);
    if (s3_cache_get(cache, id, clen, from - cstart, (size_t)(to - from),
                     dst + (from - offset)))
      continue;
    if (tmp == NULL) tmp = xmalloc((size_t)csize);
    err = get_range(r, cstart, clen, tmp);
    if (err != NULL) break;
    s3_cache_put(cache, id, tmp, (size_t)clen);
    memcpy(dst + (from - offset), tmp + (from - cstart), (size_t)(to - from));
  }
  free(tmp);
  return err;
}

static mica_err *s3_read(env_reader *rb, uint64_t offset, size_t n, void *dst,
                         size_t *got) {
  s3_reader *r = (s3_reader *)rb;
  if (offset >= r->base.size || n == 0) return NULL;
  uint64_t len = r->base.size - offset < n ? r->base.size - offset : n;
  s3_cache *cache = ((env_s3 *)r->base.owner)->cache;
  mica_err *err = cache != NULL && r->etag[0] != '\0'
                      ? read_chunks(r, cache, offset, len, dst)
                      : get_range(r, offset, len, dst);
  if (err != NULL)
    return err_wrap(err, "read %s at offset %" PRIu64, r->path, offset);
  *got = (size_t)len;
  return NULL;
}

static void s3_reader_close(env_reader *rb) {
  s3_reader *r = (s3_reader *)rb;
  free(r->bucket);
  free(r->key);
  free(r->path);
  free(r);
}

/* ---- writers ---- */

static mica_err *s3_open_writer(env *e, const char *path, int mode,
                                env_writer **out) {
  char *bucket, *key;
  mica_err *err = parse_object("open", path, &bucket, &key);
  if (err != NULL) return err;
  buf data = BUF_INIT;
  if (mode == ENV_CREATE_NEW || mode == ENV_APPEND) {
    uint64_t size = 0;
    err = head(e, bucket, key, &size, NULL, 0);
    if (err == NULL && mode == ENV_CREATE_NEW) {
      err = err_new(MICA_ALREADY_EXISTS, "open %s: object exists", path);
    } else if (err == NULL && size > 0) {
      /* Appending to an object means rewriting it: fetch what is there. */
      if (size > SIZE_MAX / 2) {
        err = err_new(MICA_RESOURCE_EXHAUSTED, "open %s: %" PRIu64
                      " bytes cannot be appended to", path, size);
      } else {
        s3_request rq = {.method = "GET", .bucket = bucket, .key = key,
                         .ranged = true, .range_off = 0, .range_len = size};
        s3_response rs;
        err = s3_do(cli_of(e), &rq, &rs);
        if (err == NULL) buf_append(&data, rs.body.data, rs.body.len);
        s3_response_free(&rs);
        if (err != NULL) err = err_wrap(err, "open %s", path);
      }
    } else if (err_code(err) == MICA_NOT_FOUND) {
      err_free(err);
      err = NULL;
    } else {
      err = err_wrap(err, "open %s", path);
    }
  }
  if (err != NULL) {
    free(bucket);
    free(key);
    buf_free(&data);
    return err;
  }
  s3_writer *w = xcalloc(1, sizeof(*w));
  w->bucket = bucket;
  w->key = key;
  w->path = xstrdup(path);
  w->data = data;
  w->create_new = mode == ENV_CREATE_NEW;
  w->base.owner = e;
  w->base.path = w->path;
  w->base.size = data.len;
  *out = &w->base;
  return NULL;
}

static mica_err *s3_append(env_writer *wb, const void *data, size_t n) {
  s3_writer *w = (s3_writer *)wb;
  buf_append(&w->data, data, n);
  w->base.size += n;
  return NULL;
}

static mica_err *s3_sync(env_writer *wb) {
  s3_writer *w = (s3_writer *)wb;
  if (w->uploaded && w->synced == w->data.len) return NULL;
  char etag[128];
  mica_err *err = upload_etag(w->base.owner, w->bucket, w->key,
                              buf_slice(&w->data),
                              w->create_new && !w->uploaded, etag);
  if (err != NULL) {
    recent_forget(w->base.owner, w->bucket, w->key, false);
    return err_wrap(err, "sync %s", w->path);
  }
  recent_note(w->base.owner, w->bucket, w->key, buf_slice(&w->data), etag);
  w->uploaded = true;
  w->synced = w->data.len;
  return NULL;
}

static mica_err *s3_preallocate(env_writer *wb, uint64_t bytes) {
  (void)bytes;
  return err_new(MICA_NOT_SUPPORTED,
                 "preallocate %s: objects have no preallocation", wb->path);
}

static mica_err *s3_writer_close(env_writer *wb) {
  s3_writer *w = (s3_writer *)wb;
  mica_err *err = NULL;
  if (!w->uploaded || w->synced != w->data.len) {
    char etag[128];
    err = upload_etag(w->base.owner, w->bucket, w->key, buf_slice(&w->data),
                      w->create_new && !w->uploaded, etag);
    if (err != NULL) {
      recent_forget(w->base.owner, w->bucket, w->key, false);
      err = err_wrap(err, "close %s", w->path);
    } else {
      recent_note(w->base.owner, w->bucket, w->key, buf_slice(&w->data),
                  etag);
    }
  }
  buf_free(&w->data);
  free(w->bucket);
  free(w->key);
  free(w->path);
  free(w);
  return err;
}

/* ---- whole files and directories ---- */

static char *dir_prefix(const char *key);
static mica_err *found_one(void *arg, const char *name, bool is_prefix);

/* Server-side copy of one object. */
static mica_err *copy_object(env *e, const char *fb, const char *fk,
                             const char *tb, const char *tk) {
  buf src = BUF_INIT;
  buf_append(&src, "x-amz-copy-source: /", 20);
  buf_append(&src, fb, strlen(fb));
  buf_push(&src, '/');
  s3_uri_encode(fk, true, &src);
  const char *hdr[] = {(const char *)src.data, NULL};
  s3_request rq = {.method = "PUT", .bucket = tb, .key = tk, .headers = hdr,
                   .what = "(copy)"};
  s3_response rs;
  mica_err *err = s3_do(cli_of(e), &rq, &rs);
  s3_response_free(&rs);
  buf_free(&src);
  return err;
}

typedef struct key_list {
  char **v;
  size_t n, cap;
} key_list;

static mica_err *collect_key(void *arg, const char *name, bool is_prefix) {
  key_list *l = arg;
  if (is_prefix) return NULL;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
  }
  l->v[l->n++] = xstrdup(name);
  return NULL;
}

/* A "directory" rename: every object under FROM/ is copied under TO/, then
 * the originals are deleted. Not atomic: objects appear under TO/ one at a
 * time, and a crash leaves both copies. The engine renames only temporary
 * directories holding a single MANIFEST (split and merge daughters), for
 * which the new directory still comes into existence together with its
 * manifest, as tab_collect_garbage requires. */
static mica_err *rename_dir(env *e, const char *fb, const char *fk,
                            const char *tb, const char *tk) {
  char *fp = dir_prefix(fk), *tp = dir_prefix(tk);
  key_list keys = {0};
  bool busy = false;
  mica_err *err = list_prefix(e, fb, fp, false, 1000, false, collect_key, &keys);
  if (err == NULL && keys.n == 0)
    err = err_new(MICA_NOT_FOUND, "no such object or directory");
  if (err == NULL)
    err = list_prefix(e, tb, tp, false, 1, true, found_one, &busy);
  if (err == NULL && busy)
    err = err_new(MICA_ALREADY_EXISTS, "target directory is not empty");
  size_t fl = strlen(fp);
  buf to = BUF_INIT;
  for (size_t i = 0; err == NULL && i < keys.n; i++) {
    buf_clear(&to);
    buf_append(&to, tp, strlen(tp));
    buf_append(&to, keys.v[i] + fl, strlen(keys.v[i] + fl) + 1);
    err = copy_object(e, fb, keys.v[i], tb, (const char *)to.data);
  }
  for (size_t i = 0; err == NULL && i < keys.n; i++)
    err = delete_key(e, fb, keys.v[i]);
  env_free_names(keys.v, keys.n);
  buf_free(&to);
  free(fp);
  free(tp);
  return err;
}

static mica_err *s3_rename(env *e, const char *from, const char *to) {
  char *fb, *fk, *tb, *tk;
  mica_err *err = parse_object("rename", from, &fb, &fk);
  if (err != NULL) return err;
  err = parse_object("rename", to, &tb, &tk);
  if (err != NULL) {
    free(fb);
    free(fk);
    return err;
  }
  /* Both names, and whatever is under them as directories. */
  recent_forget(e, fb, fk, true);
  recent_forget(e, tb, tk, true);
  err = copy_object(e, fb, fk, tb, tk);
  if (err == NULL) {
    err = delete_key(e, fb, fk);
  } else if (err_code(err) == MICA_NOT_FOUND) {
    /* Not an object: maybe a directory. */
    err_free(err);
    err = rename_dir(e, fb, fk, tb, tk);
  }
  if (err != NULL) err = err_wrap(err, "rename %s to %s", from, to);
  free(fb), free(fk), free(tb), free(tk);
  return err;
}

static mica_err *s3_remove(env *e, const char *path) {
  char *bucket, *key;
  mica_err *err = parse_object("remove", path, &bucket, &key);
  if (err != NULL) return err;
  uint64_t size;
  recent_forget(e, bucket, key, false);
  err = head(e, bucket, key, &size, NULL, 0);
  if (err == NULL) err = delete_key(e, bucket, key);
  free(bucket);
  free(key);
  return err == NULL ? NULL : err_wrap(err, "remove %s", path);
}

/* ---- multi-object delete (POST ?delete) ---- */

/* Deletes keys[0..n) (n <= 1000) of `bucket` in one request, in quiet
 * mode (the answer lists the keys that were not deleted; a missing key
 * counts as deleted). AWS requires a Content-MD5 of the body here. An
 * answer naming a failed key is IO_ERROR naming it and S3's reason. */
static mica_err *delete_keys(env *e, const char *bucket, char *const *keys,
                             size_t n) {
  static const char head[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete xmlns=\""
      "http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>";
  buf body = BUF_INIT;
  buf_append(&body, head, sizeof(head) - 1);
  for (size_t i = 0; i < n; i++) {
    buf_append(&body, "<Object><Key>", 13);
    s3_xml_escape(keys[i], &body);
    buf_append(&body, "</Key></Object>", 15);
  }
  buf_append(&body, "</Delete>", 9);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdn = 0;
  if (EVP_Digest(body.data, body.len, md, &mdn, EVP_md5(), NULL) != 1) {
    buf_free(&body);
    return err_new(MICA_INTERNAL, "multi-object delete in s3://%s: MD5 of "
                   "the request failed", bucket);
  }
  char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  EVP_EncodeBlock((unsigned char *)b64, md, (int)mdn);
  char md5_hdr[160];
  snprintf(md5_hdr, sizeof(md5_hdr), "Content-MD5: %s", b64);
  /* (s3_do sends a POST's Content-Type: application/xml.) */
  const char *hdr[] = {md5_hdr, NULL};
  s3_request rq = {.method = "POST", .bucket = bucket, .key = "",
                   .query = "delete=", .body = buf_slice(&body),
                   .headers = hdr, .what = "(multi-object delete)"};
  s3_response rs;
  mica_err *err = s3_do(cli_of(e), &rq, &rs);
  if (err == NULL) {
    /* <Code> appears in a DeleteResult only inside an <Error> entry. */
    char *code = NULL;
    mica_err *f = s3_xml_find(buf_slice(&rs.body), "Code", &code);
    if (f == NULL) {
      char *key = NULL, *msg = NULL;
      err_free(s3_xml_find(buf_slice(&rs.body), "Key", &key));
      err_free(s3_xml_find(buf_slice(&rs.body), "Message", &msg));
      err = err_new(MICA_IO_ERROR, "multi-object delete in s3://%s: %s "
                    "not deleted: %s: %s", bucket, key ? key : "a key",
                    code, msg ? msg : "");
      free(key);
      free(msg);
      free(code);
    } else if (err_code(f) != MICA_NOT_FOUND) {
      err = err_wrap(f, "multi-object delete in s3://%s: the answer", bucket);
      f = NULL;
    }
    err_free(f);
  }
  s3_response_free(&rs);
  buf_free(&body);
  return err;
}

/* env_remove_many: runs of paths in one bucket go 1000 keys per POST. */
static mica_err *s3_remove_many(env *e, const char *const *paths, size_t n) {
  enum { MAX_KEYS = 1000 };
  char *bucket[MAX_KEYS], *key[MAX_KEYS];
  size_t k = 0;
  mica_err *err = NULL;
  for (size_t i = 0; i <= n && err == NULL; i++) {
    char *b = NULL, *kk = NULL;
    if (i < n) {
      err = parse_object("remove", paths[i], &b, &kk);
      if (err != NULL) break;
    }
    if (k > 0 && (i == n || k == MAX_KEYS || strcmp(b, bucket[0]) != 0)) {
      err = delete_keys(e, bucket[0], key, k);
      for (size_t j = 0; j < k; j++) free(bucket[j]), free(key[j]);
      k = 0;
    }
    if (i < n) {
      bucket[k] = b;
      key[k++] = kk;
    }
  }
  for (size_t j = 0; j < k; j++) free(bucket[j]), free(key[j]);
  return err;
}

static mica_err *s3_remove_if_present(env *e, const char *path) {
  char *bucket, *key;
  mica_err *err = parse_object("remove", path, &bucket, &key);
  if (err != NULL) return err;
  recent_forget(e, bucket, key, false);
  err = delete_key(e, bucket, key); /* S3 answers 204 for a missing key */
  if (err != NULL && err_code(err) == MICA_NOT_FOUND) { /* some others 404 */
    err_free(err);
    err = NULL;
  }
  free(bucket);
  free(key);
  return err == NULL ? NULL : err_wrap(err, "remove %s", path);
}

static mica_err *s3_mkdirs(env *e, const char *path) {
  (void)e;
  char *bucket, *key;
  mica_err *err = env_s3_parse(path, &bucket, &key);
  free(bucket);
  free(key);
  return err == NULL ? NULL : err_wrap(err, "mkdir");
}

typedef struct tree_del {
  env *e;
  const char *bucket;
} tree_del;

static mica_err *delete_one(void *arg, const char *name, bool is_prefix) {
  tree_del *t = arg;
  if (is_prefix) return NULL;
  return delete_key(t->e, t->bucket, name);
}

/* "KEY/" for listing under a directory; "" for the bucket itself. */
static char *dir_prefix(const char *key) {
  size_t n = strlen(key);
  char *p = xmalloc(n + 2);
  memcpy(p, key, n);
  if (n > 0) p[n++] = '/';
  p[n] = '\0';
  return p;
}

static mica_err *s3_remove_tree(env *e, const char *path) {
  char *bucket, *key;
  mica_err *err = env_s3_parse(path, &bucket, &key);
  if (err != NULL) return err_wrap(err, "remove");
  char *prefix = dir_prefix(key);
  recent_forget(e, bucket, key, false);
  recent_forget(e, bucket, prefix, true);
  tree_del t = {e, bucket};
  err = list_prefix(e, bucket, prefix, false, 1000, false, delete_one, &t);
  if (err == NULL && key[0] != '\0') {
    err = delete_key(e, bucket, key); /* the path itself, if an object */
  }
  free(prefix);
  free(bucket);
  free(key);
  return err == NULL ? NULL : err_wrap(err, "remove %s", path);
}

static mica_err *s3_sync_dir(env *e, const char *path) {
  /* PUT and DELETE are durable and visible when they return. */
  return s3_mkdirs(e, path);
}

static mica_err *found_one(void *arg, const char *name, bool is_prefix) {
  (void)name, (void)is_prefix;
  *(bool *)arg = true;
  return NULL;
}

static bool s3_exists(env *e, const char *path) {
  char *bucket, *key;
  mica_err *err = env_s3_parse(path, &bucket, &key);
  if (err != NULL) {
    err_free(err);
    return false;
  }
  uint64_t size;
  bool found = false;
  if (key[0] != '\0') {
    err = head(e, bucket, key, &size, NULL, 0);
    found = err == NULL;
    err_free(err);
  }
  if (!found) {
    /* A "directory": any key under KEY/ (one key is enough). */
    char *prefix = dir_prefix(key);
    err = list_prefix(e, bucket, prefix, false, 1, true, found_one, &found);
    err_free(err);
    free(prefix);
  }
  free(bucket);
  free(key);
  return found;
}

static mica_err *s3_file_size(env *e, const char *path, uint64_t *size) {
  char *bucket, *key;
  mica_err *err = parse_object("stat", path, &bucket, &key);
  if (err != NULL) return err;
  err = head(e, bucket, key, size, NULL, 0);
  free(bucket);
  free(key);
  return err == NULL ? NULL : err_wrap(err, "stat %s", path);
}

typedef struct names {
  char **v;
  size_t n, cap;
  size_t strip; /* length of the listed prefix */
} names;

static mica_err *add_name(void *arg, const char *name, bool is_prefix) {
  names *ns = arg;
  size_t len = strlen(name);
  if (len <= ns->strip) return NULL; /* the "KEY/" marker object itself */
  const char *rel = name + ns->strip;
  size_t rl = len - ns->strip;
  if (is_prefix && rl > 0 && rel[rl - 1] == '/') rl--;
  if (rl == 0) return NULL;
  if (ns->n == ns->cap) {
    ns->cap = ns->cap ? ns->cap * 2 : 16;
    ns->v = xrealloc(ns->v, ns->cap * sizeof(*ns->v));
  }
  char *s = xmalloc(rl + 1);
  memcpy(s, rel, rl);
  s[rl] = '\0';
  ns->v[ns->n++] = s;
  return NULL;
}

static mica_err *s3_list(env *e, const char *dir, char ***out, size_t *n) {
  char *bucket, *key;
  mica_err *err = env_s3_parse(dir, &bucket, &key);
  if (err != NULL) return err_wrap(err, "list");
  char *prefix = dir_prefix(key);
  names ns = {.strip = strlen(prefix)};
  err = list_prefix(e, bucket, prefix, true, 1000, false, add_name, &ns);
  free(prefix);
  free(bucket);
  free(key);
  if (err != NULL) {
    env_free_names(ns.v, ns.n);
    return err_wrap(err, "list %s", dir);
  }
  *out = ns.v;
  *n = ns.n;
  return NULL;
}

static mica_err *s3_lock(env *e, const char *path, int *lock_fd) {
  (void)e, (void)lock_fd;
  return err_new(MICA_NOT_SUPPORTED,
                 "lock %s: object storage has no locks (writers are fenced "
                 "by epoch-named objects instead)", path);
}

static void s3_unlock(env *e, int lock_fd) { (void)e, (void)lock_fd; }

/* One PUT replaces an object atomically, which the generic temp file and
 * rename (a copy and a delete here) would not. */
static mica_err *s3_write_file_atomic(env *e, const char *path, slice data) {
  char *bucket, *key;
  mica_err *err = parse_object("write", path, &bucket, &key);
  if (err != NULL) return err;
  recent_forget(e, bucket, key, false);
  err = upload(e, bucket, key, data, false);
  free(bucket);
  free(key);
  return err == NULL ? NULL : err_wrap(err, "write %s", path);
}

/* A create-only PUT (If-None-Match: *). A 412 answer means the name
 * exists: either an earlier attempt of this very PUT landed (a retry after
 * a lost answer) and the object holds `data`, which is success, or a
 * second writer won and this write must fail. */
static mica_err *s3_write_file_new(env *e, const char *path, slice data) {
  char *bucket, *key;
  mica_err *err = parse_object("write", path, &bucket, &key);
  if (err != NULL) return err;
  recent_forget(e, bucket, key, false);
  err = upload(e, bucket, key, data, true);
  free(bucket);
  free(key);
  if (err != NULL && err_code(err) == MICA_ALREADY_EXISTS) {
    buf have = BUF_INIT;
    mica_err *rerr = env_read_file(e, path, data.len + 1, &have);
    bool same = rerr == NULL && have.len == data.len &&
                (data.len == 0 || memcmp(have.data, data.data, data.len) == 0);
    buf_free(&have);
    if (same) {
      err_free(err);
      return NULL;
    }
    if (rerr == NULL)
      err = err_wrap(err, "a second writer won: another writer created it "
                     "first with other bytes (the server refused "
                     "If-None-Match: *), and names carrying an epoch and a "
                     "generation are never rewritten");
    else
      err = err_wrap(err, "a second writer won (the server refused "
                     "If-None-Match: *); reading the object back to compare "
                     "failed: %s", err_msg(rerr));
    err_free(rerr);
  }
  return err == NULL ? NULL : err_wrap(err, "write %s", path);
}

/* The whole object in one GET, without the HEAD a reader starts with
 * (the answer's length is the size). Not ranged: S3 refuses a range of
 * an empty object, and the body limit bounds what is received. */
static mica_err *s3_read_object(env *e, const char *path, size_t max_bytes,
                                buf *out) {
  char *bucket, *key;
  mica_err *err = parse_object("read", path, &bucket, &key);
  if (err != NULL) return err;
  s3_request rq = {.method = "GET", .bucket = bucket, .key = key,
                   .max_body = (uint64_t)max_bytes < UINT64_MAX - 1
                                   ? (uint64_t)max_bytes + 1
                                   : UINT64_MAX};
  s3_response rs;
  err = s3_do(cli_of(e), &rq, &rs);
  free(bucket);
  free(key);
  if (err == NULL && rs.body.len > max_bytes) {
    err = err_new(MICA_CORRUPTION, "read %s: file larger than %zu bytes",
                  path, max_bytes);
  } else if (err != NULL && err_code(err) == MICA_CORRUPTION) {
    mica_err *w = err_new(MICA_CORRUPTION,
                          "read %s: file larger than %zu bytes (%s)", path,
                          max_bytes, err_msg(err));
    err_free(err);
    err = w;
  } else if (err != NULL) {
    err = err_wrap(err, "read %s", path);
  } else {
    buf_append(out, rs.body.data, rs.body.len);
  }
  s3_response_free(&rs);
  return err;
}

static uint64_t s3_now_micros(env *e) {
  (void)e;
  return env_now_micros(env_posix());
}

static uint64_t s3_wall_micros(env *e) {
  (void)e;
  return env_wall_micros(env_posix());
}

static void s3_sleep_micros(env *e, uint64_t micros) {
  (void)e;
  env_sleep_micros(env_posix(), micros);
}

static bool s3_rewrites_on_sync(env *e, const char *path) {
  (void)e;
  (void)path;
  return true;
}

static const struct env_ops s3_ops = {
    .open_reader = s3_open_reader,
    .read = s3_read,
    .reader_close = s3_reader_close,
    .reader_map = NULL,
    .open_writer = s3_open_writer,
    .append = s3_append,
    .sync = s3_sync,
    .preallocate = s3_preallocate,
    .writer_close = s3_writer_close,
    .rename = s3_rename,
    .remove = s3_remove,
    .remove_if_present = s3_remove_if_present,
    .remove_many = s3_remove_many,
    .mkdirs = s3_mkdirs,
    .remove_tree = s3_remove_tree,
    .sync_dir = s3_sync_dir,
    .exists = s3_exists,
    .file_size = s3_file_size,
    .list = s3_list,
    .rewrites_on_sync = s3_rewrites_on_sync,
    .dirs_implicit = s3_rewrites_on_sync, /* always true, like it */
    .lock = s3_lock,
    .unlock = s3_unlock,
    .write_file_atomic = s3_write_file_atomic,
    .write_file_new = s3_write_file_new,
    .read_object = s3_read_object,
    .now_micros = s3_now_micros,
    .wall_micros = s3_wall_micros,
    .sleep_micros = s3_sleep_micros,
};

mica_err *env_s3_new(const s3_config *c, env **out) {
  *out = NULL;
  s3_client *cli;
  mica_err *err = s3_client_new(c, &cli);
  if (err != NULL) return err;
  s3_cache *dc = NULL;
  if (c->cache_dir != NULL) {
    err = s3_cache_open(c->cache_dir, c->cache_size,
                        c->cache_chunk ? c->cache_chunk : 256u << 10, &dc);
    if (err != NULL) {
      s3_client_free(cli);
      return err;
    }
  }
  env_s3 *e = xcalloc(1, sizeof(*e));
  pthread_mutex_init(&e->rmu, NULL);
  e->base.ops = &s3_ops;
  e->cli = cli;
  e->cache = dc;
  *out = &e->base;
  return NULL;
}

void env_s3_free(env *e) {
  if (e == NULL) return;
  env_s3 *s = (env_s3 *)e;
  for (size_t i = 0; i < RECENT_MAX; i++) free(s->rec[i].bk);
  pthread_mutex_destroy(&s->rmu);
  s3_cache_close(s->cache);
  s3_client_free(s->cli);
  free(s);
}

s3_client *env_s3_client(env *e) { return cli_of(e); }

s3_cache *env_s3_cache(env *e) { return ((env_s3 *)e)->cache; }
