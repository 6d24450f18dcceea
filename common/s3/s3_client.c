/* s3_client: signed, retried S3 requests over libcurl.
 *
 * Why the body is sent with CURLOPT_POSTFIELDS even for PUT: curl's SigV4
 * signer hashes the body it knows about, and it only knows about
 * POSTFIELDS (a read callback's bytes are never seen by the signer). The
 * x-amz-content-sha256 header we add carries the same SHA-256, computed
 * here with OpenSSL, so the signature, the header and the bytes on the
 * wire always agree. AWS refuses requests without that header, and the
 * test proxy (tests/common/s3_proxy.js) checks all three.
 *
 * Why one process-wide pool: curl keeps keep-alive connections in a
 * connection cache. Sharing one cache (CURLSH with CURL_LOCK_DATA_CONNECT)
 * between all easy handles lets any thread's request reuse any idle
 * connection; the handles themselves are recycled through a free list so
 * that their TLS session and DNS state are not rebuilt per request. */
#include "common/s3/s3_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/prom.h"
#include "common/env.h"
#include "common/s3/s3_xml.h"

struct s3_client {
  s3_config c;
  char *scheme;   /* "http" or "https" */
  char *hostport; /* "127.0.0.1:4568" */
  char *sigv4;    /* "aws:amz:REGION:s3" */
};

/* Largest body accepted for anything but a ranged GET (listings, errors,
 * multipart answers are far smaller). */
enum { MAX_ANSWER = 16 << 20 };

/* ---- configuration ---- */

static void set_str(char **dst, const char *v) {
  free(*dst);
  *dst = (v != NULL && v[0] != '\0') ? xstrdup(v) : NULL;
}

static mica_err *parse_u64(const char *name, const char *v, uint64_t min,
                           uint64_t *out) {
  char *end;
  errno = 0;
  if (v == NULL || v[0] < '0' || v[0] > '9')
    return err_new(MICA_INVALID_ARGUMENT, "s3 %s: '%s' is not a number",
                   name, v ? v : "");
  unsigned long long x = strtoull(v, &end, 10);
  if (errno != 0 || *end != '\0')
    return err_new(MICA_INVALID_ARGUMENT, "s3 %s: '%s' is not a number",
                   name, v);
  if (x < min)
    return err_new(MICA_INVALID_ARGUMENT, "s3 %s: %llu is below %" PRIu64,
                   name, x, min);
  *out = x;
  return NULL;
}

/* A byte count with an optional k, m or g suffix (KiB, MiB, GiB). */
static mica_err *parse_size(const char *name, const char *v, uint64_t min,
                            uint64_t *out) {
  if (v == NULL || v[0] < '0' || v[0] > '9')
    return err_new(MICA_INVALID_ARGUMENT, "s3 %s: '%s' is not a size", name,
                   v ? v : "");
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  int shift = 0;
  if (*end == 'k' || *end == 'K') shift = 10, end++;
  else if (*end == 'm' || *end == 'M') shift = 20, end++;
  else if (*end == 'g' || *end == 'G') shift = 30, end++;
  if (errno != 0 || *end != '\0' || x > (UINT64_MAX >> shift))
    return err_new(MICA_INVALID_ARGUMENT, "s3 %s: '%s' is not a size", name,
                   v);
  x <<= shift;
  if (x < min)
    return err_new(MICA_INVALID_ARGUMENT, "s3 %s: %llu is below %" PRIu64,
                   name, x, min);
  *out = x;
  return NULL;
}

static mica_err *set_addressing(s3_config *c, const char *v) {
  if (strcmp(v, "path") == 0) c->virtual_host = false;
  else if (strcmp(v, "virtual") == 0) c->virtual_host = true;
  else
    return err_new(MICA_INVALID_ARGUMENT,
                   "s3 addressing: '%s' is neither 'path' nor 'virtual'", v);
  return NULL;
}

mica_err *s3_config_set(s3_config *c, const char *name, const char *value) {
  /* S3's minimum part size; tests lower it to exercise multipart uploads
   * on small objects (s3rver has no minimum). */
  uint64_t min_part = getenv("S3_ALLOW_SMALL_PARTS") ? 1 : 5u << 20;
  if (strcmp(name, "endpoint") == 0) {
    set_str(&c->endpoint, value);
    c->virtual_host = false;
    return NULL;
  }
  if (strcmp(name, "region") == 0) {
    if (value == NULL || value[0] == '\0')
      return err_new(MICA_INVALID_ARGUMENT, "s3 region: empty");
    set_str(&c->region, value);
    return NULL;
  }
  if (strcmp(name, "access-key") == 0) return set_str(&c->access_key, value), NULL;
  if (strcmp(name, "secret-key") == 0) return set_str(&c->secret_key, value), NULL;
  if (strcmp(name, "session-token") == 0)
    return set_str(&c->session_token, value), NULL;
  if (strcmp(name, "addressing") == 0) return set_addressing(c, value ? value : "");
  if (strcmp(name, "deadline-ms") == 0)
    return parse_u64(name, value, 1, &c->deadline_ms);
  if (strcmp(name, "attempt-timeout-ms") == 0)
    return parse_u64(name, value, 1, &c->attempt_timeout_ms);
  if (strcmp(name, "backoff-base-ms") == 0)
    return parse_u64(name, value, 1, &c->backoff_base_ms);
  if (strcmp(name, "backoff-max-ms") == 0)
    return parse_u64(name, value, 1, &c->backoff_max_ms);
  if (strcmp(name, "multipart-threshold") == 0)
    return parse_size(name, value, min_part, &c->multipart_threshold);
  if (strcmp(name, "part-size") == 0)
    return parse_size(name, value, min_part, &c->part_size);
  if (strcmp(name, "upload-parallelism") == 0)
    return parse_u64(name, value, 1, &c->upload_parallelism);
  if (strcmp(name, "cache-dir") == 0) return set_str(&c->cache_dir, value), NULL;
  if (strcmp(name, "cache-size") == 0)
    return parse_size(name, value, 0, &c->cache_size);
  if (strcmp(name, "cache-chunk") == 0)
    return parse_size(name, value, 1, &c->cache_chunk);
  return err_new(MICA_INVALID_ARGUMENT, "s3: unknown setting '%s'", name);
}

mica_err *s3_config_from_environ(s3_config *c) {
  memset(c, 0, sizeof(*c));
  c->region = xstrdup("us-east-1");
  c->virtual_host = true;
  c->deadline_ms = 30000;
  c->attempt_timeout_ms = 10000;
  c->backoff_base_ms = 25;
  c->backoff_max_ms = 2000;
  c->multipart_threshold = 16u << 20;
  c->part_size = 8u << 20;
  c->upload_parallelism = 4;
  c->cache_size = 1u << 30;
  c->cache_chunk = 256u << 10;
  const char *v;
  if ((v = getenv("AWS_ENDPOINT_URL_S3")) != NULL && v[0] != '\0')
    s3_config_set(c, "endpoint", v);
  else if ((v = getenv("AWS_ENDPOINT_URL")) != NULL && v[0] != '\0')
    s3_config_set(c, "endpoint", v);
  if ((v = getenv("AWS_REGION")) != NULL && v[0] != '\0')
    set_str(&c->region, v);
  else if ((v = getenv("AWS_DEFAULT_REGION")) != NULL && v[0] != '\0')
    set_str(&c->region, v);
  set_str(&c->access_key, getenv("AWS_ACCESS_KEY_ID"));
  set_str(&c->secret_key, getenv("AWS_SECRET_ACCESS_KEY"));
  set_str(&c->session_token, getenv("AWS_SESSION_TOKEN"));
  if ((v = getenv("MICA_S3_ADDRESSING")) != NULL && v[0] != '\0')
    return err_wrap(set_addressing(c, v), "MICA_S3_ADDRESSING");
  return NULL;
}

void s3_config_free(s3_config *c) {
  if (c == NULL) return;
  free(c->endpoint);
  free(c->region);
  free(c->access_key);
  free(c->secret_key);
  free(c->session_token);
  free(c->cache_dir);
  memset(c, 0, sizeof(*c));
}

static void config_copy(s3_config *dst, const s3_config *src) {
  *dst = *src;
  dst->endpoint = src->endpoint ? xstrdup(src->endpoint) : NULL;
  dst->region = xstrdup(src->region ? src->region : "us-east-1");
  dst->access_key = src->access_key ? xstrdup(src->access_key) : NULL;
  dst->secret_key = src->secret_key ? xstrdup(src->secret_key) : NULL;
  dst->session_token = src->session_token ? xstrdup(src->session_token) : NULL;
  dst->cache_dir = src->cache_dir ? xstrdup(src->cache_dir) : NULL;
}

/* ---- the handle pool ---- */

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static CURLcode pool_init_rc;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static CURL **pool_idle; /* guarded by pool_mu */
static size_t pool_nidle, pool_cap;
static CURLSH *pool_share;
static pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a,
                       void *u) {
  (void)h, (void)a, (void)u;
  pthread_mutex_lock(&share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u) {
  (void)h, (void)u;
  pthread_mutex_unlock(&share_mu[d]);
}

static CURLSH *new_share(void) {
  CURLSH *sh = curl_share_init();
  if (sh == NULL) return NULL;
  curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  return sh;
}

/* A forked child must not use its parent's connections: the sockets are
 * shared with the parent, and two processes talking on one connection
 * garble it (closing them could even end the parent's TLS sessions). The
 * child forgets the idle handles and the shared cache without freeing
 * them, and starts its own. Its locks may have been held by threads that
 * do not exist in the child, so they are made anew. */
static void pool_after_fork_child(void) {
  pthread_mutex_init(&pool_mu, NULL);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&share_mu[i], NULL);
  pool_idle = NULL;
  pool_nidle = pool_cap = 0;
  pool_share = new_share();
  if (pool_share == NULL) pool_init_rc = CURLE_OUT_OF_MEMORY;
}

static void pool_init(void) {
  pool_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (pool_init_rc != CURLE_OK) return;
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&share_mu[i], NULL);
  pool_share = new_share();
  if (pool_share == NULL) {
    pool_init_rc = CURLE_OUT_OF_MEMORY;
    return;
  }
  pthread_atfork(NULL, NULL, pool_after_fork_child);
}

static CURL *pool_take(void) {
  CURL *h = NULL;
  pthread_mutex_lock(&pool_mu);
  if (pool_nidle > 0) h = pool_idle[--pool_nidle];
  pthread_mutex_unlock(&pool_mu);
  return h != NULL ? h : curl_easy_init();
}

static void pool_give(CURL *h) {
  pthread_mutex_lock(&pool_mu);
  if (pool_nidle == pool_cap) {
    pool_cap = pool_cap ? pool_cap * 2 : 8;
    pool_idle = xrealloc(pool_idle, pool_cap * sizeof(*pool_idle));
  }
  pool_idle[pool_nidle++] = h;
  pthread_mutex_unlock(&pool_mu);
}

/* ---- client ---- */

mica_err *s3_client_new(const s3_config *c, s3_client **out) {
  *out = NULL;
  pthread_once(&pool_once, pool_init);
  if (pool_init_rc != CURLE_OK)
    return err_new(MICA_INTERNAL, "s3: curl init: %s",
                   curl_easy_strerror(pool_init_rc));
  if ((c->access_key == NULL) != (c->secret_key == NULL))
    return err_new(MICA_INVALID_ARGUMENT,
                   "s3: an access key needs a secret key and the other way "
                   "round (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
  if (c->part_size == 0 || c->multipart_threshold == 0 || c->deadline_ms == 0)
    return err_new(MICA_INVALID_ARGUMENT, "s3: zero part size or deadline");
  const char *region = c->region ? c->region : "us-east-1";
  for (const char *p = region; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
      return err_new(MICA_INVALID_ARGUMENT, "s3 region '%s': not a region name",
                     region);
  s3_client *s = xcalloc(1, sizeof(*s));
  config_copy(&s->c, c);
  if (c->endpoint == NULL) {
    s->scheme = xstrdup("https");
    size_t n = strlen(region) + 32;
    s->hostport = xmalloc(n);
    snprintf(s->hostport, n, "s3.%s.amazonaws.com", region);
  } else {
    const char *e = c->endpoint;
    const char *sep = strstr(e, "://");
    if (sep == NULL || (strncmp(e, "http", (size_t)(sep - e)) != 0 &&
                        strncmp(e, "https", (size_t)(sep - e)) != 0) ||
        sep - e < 4) {
      s3_client_free(s);
      return err_new(MICA_INVALID_ARGUMENT,
                     "s3 endpoint '%s': want http://HOST[:PORT] or "
                     "https://HOST[:PORT]", e);
    }
    s->scheme = xmemdup(e, (size_t)(sep - e) + 1);
    s->scheme[sep - e] = '\0';
    const char *host = sep + 3;
    size_t hl = strcspn(host, "/?#");
    if (hl == 0 || (host[hl] != '\0' && strcmp(host + hl, "/") != 0) ||
        strchr(host, '@') != NULL) {
      s3_client_free(s);
      return err_new(MICA_INVALID_ARGUMENT,
                     "s3 endpoint '%s': want a host and port only, no path, "
                     "query or user", e);
    }
    s->hostport = xmemdup(host, hl + 1);
    s->hostport[hl] = '\0';
  }
  size_t n = strlen(region) + 16;
  s->sigv4 = xmalloc(n);
  snprintf(s->sigv4, n, "aws:amz:%s:s3", region);
  *out = s;
  return NULL;
}

void s3_client_free(s3_client *s) {
  if (s == NULL) return;
  s3_config_free(&s->c);
  free(s->scheme);
  free(s->hostport);
  free(s->sigv4);
  free(s);
}

const s3_config *s3_client_config(const s3_client *s) { return &s->c; }

/* ---- helpers ---- */

void s3_uri_encode(const char *s, bool keep_slash, buf *out) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char ch = *p;
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
        (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
        ch == '~' || (ch == '/' && keep_slash)) {
      buf_push(out, ch);
    } else {
      uint8_t e[3] = {'%', (uint8_t)hex[ch >> 4], (uint8_t)hex[ch & 15]};
      buf_append(out, e, 3);
    }
  }
  buf_reserve(out, 1);
  out->data[out->len] = '\0';
}

void s3_sha256_hex(slice data, char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(data.len ? data.data : (const unsigned char *)"", data.len, md);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[64] = '\0';
}

void s3_response_free(s3_response *out) {
  if (out != NULL) buf_free(&out->body);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Per-thread xorshift for jitter: no lock, and threads that fail together
 * do not retry in lockstep. */
static uint64_t jitter_rand(void) {
  static _Thread_local uint64_t x;
  if (x == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&x ^
        ((uint64_t)ts.tv_sec | 1);
  }
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

/* ---- one attempt ---- */

typedef struct attempt {
  CURL *h;
  s3_response *resp;
  size_t max_body; /* of a 2xx answer */
  bool too_long;
} attempt;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  attempt *a = ud;
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &status);
  /* An error document may be longer than the range that was asked for. */
  size_t max = status >= 200 && status < 300 ? a->max_body : MAX_ANSWER;
  if (a->resp->body.len + n > max) {
    a->too_long = true;
    return 0; /* aborts the transfer */
  }
  buf_append(&a->resp->body, p, n);
  return n;
}

/* Header names compared case-insensitively; values trimmed. */
static const char *header_value(const char *line, size_t n, const char *name,
                                size_t *vlen) {
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':') return NULL;
  const char *v = line + k + 1;
  const char *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  *vlen = (size_t)(end - v);
  return v;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  attempt *a = ud;
  size_t n = size * nmemb;
  s3_response *r = a->resp;
  size_t vl;
  const char *v;
  if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    /* A new response (after a 100 Continue): forget the previous one. */
    r->etag[0] = '\0';
    r->content_length = UINT64_MAX;
    r->object_size = UINT64_MAX;
    r->range_start = UINT64_MAX;
  } else if ((v = header_value(p, n, "ETag", &vl)) != NULL) {
    if (vl >= sizeof(r->etag)) vl = sizeof(r->etag) - 1;
    memcpy(r->etag, v, vl);
    r->etag[vl] = '\0';
  } else if ((v = header_value(p, n, "Content-Length", &vl)) != NULL) {
    char tmp[32];
    if (vl < sizeof(tmp)) {
      memcpy(tmp, v, vl);
      tmp[vl] = '\0';
      char *end;
      unsigned long long x = strtoull(tmp, &end, 10);
      if (end != tmp && *end == '\0') r->content_length = x;
    }
  } else if ((v = header_value(p, n, "Content-Range", &vl)) != NULL) {
    if (vl > 6 && strncmp(v, "bytes ", 6) == 0 && v[6] >= '0' && v[6] <= '9') {
      char tmp[32];
      size_t tl = strcspn(v + 6, "-");
      if (tl < sizeof(tmp) && 6 + tl < vl) {
        memcpy(tmp, v + 6, tl);
        tmp[tl] = '\0';
        r->range_start = strtoull(tmp, NULL, 10);
      }
    }
    const char *slash = memchr(v, '/', vl);
    if (slash != NULL && slash + 1 < v + vl) {
      char tmp[32];
      size_t tl = (size_t)(v + vl - (slash + 1));
      if (tl < sizeof(tmp)) {
        memcpy(tmp, slash + 1, tl);
        tmp[tl] = '\0';
        char *end;
        unsigned long long x = strtoull(tmp, &end, 10);
        if (end != tmp && *end == '\0') r->object_size = x;
      }
    }
  }
  return n;
}

static bool retryable_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

static bool retryable_status(long status, const char *code) {
  if (status == 500 || status == 502 || status == 503 || status == 504 ||
      status == 429)
    return true;
  return strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
         strcmp(code, "InternalError") == 0 ||
         strcmp(code, "ServiceUnavailable") == 0;
}

static int code_of_status(long status, const s3_request *r) {
  switch (status) {
    case 404: return MICA_NOT_FOUND;
    case 412: return r->code_412 ? r->code_412 : MICA_ABORTED;
    case 400: return MICA_INVALID_ARGUMENT;
    case 503: case 429: return MICA_UNAVAILABLE;
    default: return MICA_IO_ERROR;
  }
}

/* What one attempt came to. */
typedef struct outcome {
  bool ok, retry;
  int code;      /* Mica code when !ok */
  char msg[512]; /* "HTTP 503 SlowDown: ..." or "curl: ..." */
} outcome;

static void build_url(const s3_client *s, const s3_request *r, buf *url) {
  buf_clear(url);
  const char *key = r->key ? r->key : "";
  buf_append(url, s->scheme, strlen(s->scheme));
  buf_append(url, "://", 3);
  if (s->c.virtual_host) {
    buf_append(url, r->bucket, strlen(r->bucket));
    buf_push(url, '.');
    buf_append(url, s->hostport, strlen(s->hostport));
    buf_push(url, '/');
  } else {
    buf_append(url, s->hostport, strlen(s->hostport));
    buf_push(url, '/');
    buf_append(url, r->bucket, strlen(r->bucket));
    if (key[0] != '\0') buf_push(url, '/');
  }
  s3_uri_encode(key, true, url);
  if (r->query != NULL && r->query[0] != '\0') {
    buf_push(url, '?');
    buf_append(url, r->query, strlen(r->query));
  }
  buf_push(url, 0);
}

static void attempt_once(const s3_client *s, const s3_request *r,
                         const char *url, const char *sha, uint64_t timeout_ms,
                         s3_response *resp, outcome *o) {
  memset(o, 0, sizeof(*o));
  buf_clear(&resp->body);
  resp->status = 0;
  resp->etag[0] = '\0';
  resp->content_length = UINT64_MAX;
  resp->object_size = UINT64_MAX;
  resp->range_start = UINT64_MAX;

  CURL *h = pool_take();
  if (h == NULL) {
    o->code = MICA_RESOURCE_EXHAUSTED;
    snprintf(o->msg, sizeof(o->msg), "curl: cannot make a handle");
    return;
  }
  curl_easy_reset(h);
  attempt a = {h, resp,
               r->ranged          ? (size_t)r->range_len
               : r->max_body != 0 ? (size_t)r->max_body
                                  : MAX_ANSWER,
               false};
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *hl = NULL;
  char line[256];
  snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
  hl = curl_slist_append(hl, line);
  /* No "Expect:" line to suppress 100-continue: curl 7.88's signer signs
   * such an empty header although it is never sent, which breaks the
   * signature. */
  if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0)
    hl = curl_slist_append(hl, strcmp(r->method, "POST") == 0
                                   ? "Content-Type: application/xml"
                                   : "Content-Type: application/octet-stream");
  if (r->ranged) {
    snprintf(line, sizeof(line), "Range: bytes=%" PRIu64 "-%" PRIu64,
             r->range_off, r->range_off + r->range_len - 1);
    hl = curl_slist_append(hl, line);
  }
  buf tok = BUF_INIT;
  if (s->c.session_token != NULL) {
    buf_append(&tok, "x-amz-security-token: ", 22);
    buf_append(&tok, s->c.session_token, strlen(s->c.session_token) + 1);
    hl = curl_slist_append(hl, (const char *)tok.data);
  }
  for (const char *const *hp = r->headers; hp != NULL && *hp != NULL; hp++)
    hl = curl_slist_append(hl, *hp);

  curl_easy_setopt(h, CURLOPT_SHARE, pool_share);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "mica/" MICA_VERSION);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
  if (s->c.access_key != NULL) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, s->c.access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s->c.secret_key);
  }
  if (strcmp(r->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(r->method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                     r->body.len ? (const char *)r->body.data : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    if (strcmp(r->method, "PUT") == 0)
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
  }

  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  resp->status = status;
  /* Detach the share before the handle idles in the pool, so curl never
   * sees a handle and its share torn down in the wrong order. */
  curl_easy_setopt(h, CURLOPT_SHARE, NULL);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  pool_give(h);
  curl_slist_free_all(hl);
  buf_free(&tok);

  if (rc != CURLE_OK) {
    if (a.too_long) {
      o->code = !r->ranged && r->max_body != 0 ? MICA_CORRUPTION
                                               : MICA_IO_ERROR;
      snprintf(o->msg, sizeof(o->msg),
               "HTTP %ld: answer longer than the %zu bytes asked for", status,
               a.max_body);
      return;
    }
    o->retry = retryable_curl(rc);
    o->code = rc == CURLE_OPERATION_TIMEDOUT ? MICA_DEADLINE_EXCEEDED
                                             : MICA_IO_ERROR;
    snprintf(o->msg, sizeof(o->msg), "%s%s%s", curl_easy_strerror(rc),
             errbuf[0] ? ": " : "", errbuf);
    return;
  }

  char code[64] = "", text[256] = "";
  if (status >= 200 && status < 300) {
    /* CopyObject and CompleteMultipartUpload can fail after answering 200:
     * the error is then in the body. */
    if (strcmp(r->method, "GET") != 0 && resp->body.len > 0 &&
        s3_xml_error(buf_slice(&resp->body), code, sizeof(code), text,
                     sizeof(text))) {
      o->retry = retryable_status(500, code);
      o->code = MICA_IO_ERROR;
      snprintf(o->msg, sizeof(o->msg), "HTTP %ld with error %s: %s", status,
               code, text);
      return;
    }
    if (r->ranged) {
      if (status == 200) {
        /* The server ignored Range and sent the whole object: keep the
         * part that was asked for. */
        uint64_t size = resp->body.len;
        resp->object_size = size;
        uint64_t off = r->range_off < size ? r->range_off : size;
        uint64_t len = size - off < r->range_len ? size - off : r->range_len;
        memmove(resp->body.data, resp->body.data + off, (size_t)len);
        resp->body.len = (size_t)len;
      }
      if (status == 206 && resp->range_start != r->range_off) {
        o->code = MICA_IO_ERROR;
        snprintf(o->msg, sizeof(o->msg),
                 "HTTP 206 for bytes from %" PRIu64 ", not the range asked for",
                 resp->range_start);
        return;
      }
      uint64_t want = r->range_len;
      if (resp->object_size != UINT64_MAX) {
        uint64_t rest = resp->object_size > r->range_off
                            ? resp->object_size - r->range_off
                            : 0;
        if (rest < want) want = rest;
      }
      if (resp->body.len != want) {
        o->retry = true;
        o->code = MICA_IO_ERROR;
        snprintf(o->msg, sizeof(o->msg),
                 "HTTP %ld: short read, %zu of %" PRIu64 " bytes", status,
                 resp->body.len, want);
        return;
      }
    }
    o->ok = true;
    return;
  }
  if (!s3_xml_error(buf_slice(&resp->body), code, sizeof(code), text,
                    sizeof(text))) {
    /* HEAD answers have no body: say what the status means. */
    const char *why = status == 404   ? "NotFound"
                      : status == 403 ? "Forbidden (access denied or bad "
                                        "signature)"
                      : status == 412 ? "PreconditionFailed"
                      : status == 503 ? "ServiceUnavailable"
                      : status == 500 ? "InternalError"
                                      : "";
    snprintf(code, sizeof(code), "%s", why);
  }
  o->retry = retryable_status(status, code);
  o->code = code_of_status(status, r);
  if (strcmp(code, "SlowDown") == 0) o->code = MICA_UNAVAILABLE;
  snprintf(o->msg, sizeof(o->msg), "HTTP %ld%s%s%s%s", status,
           code[0] ? " " : "", code, text[0] ? ": " : "", text);
}

/* ---- request counters (s3_get_stats) ---- */

static struct {
  uint64_t requests[S3_REQ_KINDS], micros[S3_REQ_KINDS];
  uint64_t retries, bytes_in, bytes_out;
} g_stats;

static void stat_add(uint64_t *c, uint64_t v) {
  __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static int req_kind(const s3_request *r) {
  switch (r->method[0]) {
    case 'H': return S3_REQ_HEAD;
    case 'D': return S3_REQ_DELETE;
    case 'P':
      if (r->method[1] == 'O') return S3_REQ_POST;
      for (const char *const *h = r->headers; h != NULL && *h != NULL; h++)
        if (strncasecmp(*h, "x-amz-copy-source:", 18) == 0) return S3_REQ_COPY;
      return S3_REQ_PUT;
    default:
      return (r->key == NULL || r->key[0] == '\0') && r->query != NULL &&
                     strstr(r->query, "list-type=") != NULL
                 ? S3_REQ_LIST
                 : S3_REQ_GET;
  }
}

const char *s3_req_kind_name(int kind) {
  static const char *const names[S3_REQ_KINDS] = {
      "GET", "HEAD", "PUT", "COPY", "LIST", "POST", "DELETE"};
  return kind >= 0 && kind < S3_REQ_KINDS ? names[kind] : "?";
}

void s3_get_stats(s3_stats *out) {
  for (int k = 0; k < S3_REQ_KINDS; k++) {
    out->requests[k] = __atomic_load_n(&g_stats.requests[k], __ATOMIC_RELAXED);
    out->micros[k] = __atomic_load_n(&g_stats.micros[k], __ATOMIC_RELAXED);
  }
  out->retries = __atomic_load_n(&g_stats.retries, __ATOMIC_RELAXED);
  out->bytes_in = __atomic_load_n(&g_stats.bytes_in, __ATOMIC_RELAXED);
  out->bytes_out = __atomic_load_n(&g_stats.bytes_out, __ATOMIC_RELAXED);
}

void s3_render_metrics(buf *out) {
  s3_stats st;
  s3_get_stats(&st);
  prom_head(out, "mica_s3_requests_total", "counter",
            "Requests this process sent to S3 (every attempt), by kind: "
            "GET, HEAD, PUT (parts too), COPY, LIST, POST, DELETE.");
  for (int k = 0; k < S3_REQ_KINDS; k++) {
    prom_sample_begin(out, "mica_s3_requests_total");
    prom_label(out, "kind", s3_req_kind_name(k));
    prom_sample_end_u(out, st.requests[k]);
  }
  prom_head(out, "mica_s3_request_seconds_total", "counter",
            "Wall time of those requests, by kind.");
  for (int k = 0; k < S3_REQ_KINDS; k++) {
    prom_sample_begin(out, "mica_s3_request_seconds_total");
    prom_label(out, "kind", s3_req_kind_name(k));
    prom_sample_end(out, (double)st.micros[k] / 1e6);
  }
  prom_counter(out, "mica_s3_retries_total", st.retries,
               "Attempts after a request's first (transient failures).");
  prom_counter(out, "mica_s3_received_bytes_total", st.bytes_in,
               "Response bodies received from S3.");
  prom_counter(out, "mica_s3_sent_bytes_total", st.bytes_out,
               "Request bodies sent to S3.");
}

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

mica_err *s3_do(s3_client *s, const s3_request *r, s3_response *out) {
  memset(out, 0, sizeof(*out));
  /* Checked before anything is built or sent (env.h, local-only reads). */
  if (env_local_only()) {
    char what[512];
    snprintf(what, sizeof what, "%s s3://%s/%s", r->method, r->bucket,
             r->key ? r->key : "");
    return env_local_only_refuse(what);
  }
  if (r->ranged && r->range_len == 0)
    return err_new(MICA_INVALID_ARGUMENT, "%s s3://%s/%s: empty range",
                   r->method, r->bucket, r->key ? r->key : "");
  buf url = BUF_INIT;
  build_url(s, r, &url);
  char sha[65];
  s3_sha256_hex(r->body, sha);

  uint64_t start = mono_ms();
  uint64_t deadline = start + s->c.deadline_ms;
  /* An attempt with less time than this left is not started: it would
   * mostly time out and hide what the server last said. */
  uint64_t min_attempt = s->c.attempt_timeout_ms / 4 < 250
                             ? s->c.attempt_timeout_ms / 4
                             : 250;
  outcome o;
  char last_answer[sizeof(o.msg)] = ""; /* the last HTTP answer, if any */
  int attempts = 0;
  int kind = req_kind(r);
  for (;;) {
    uint64_t now = mono_ms();
    uint64_t left = deadline > now ? deadline - now : 1;
    uint64_t timeout = s->c.attempt_timeout_ms < left ? s->c.attempt_timeout_ms
                                                      : left;
    attempts++;
    uint64_t t0 = mono_us();
    attempt_once(s, r, (const char *)url.data, sha, timeout, out, &o);
    stat_add(&g_stats.requests[kind], 1);
    stat_add(&g_stats.micros[kind], mono_us() - t0);
    stat_add(&g_stats.bytes_out, r->body.len);
    stat_add(&g_stats.bytes_in, out->body.len);
    if (attempts > 1) stat_add(&g_stats.retries, 1);
    out->attempts = attempts;
    if (o.ok || !o.retry) break;
    if (strncmp(o.msg, "HTTP ", 5) == 0)
      snprintf(last_answer, sizeof(last_answer), "%s", o.msg);
    /* Equal jitter: half the capped exponential step, plus a random part
     * of the other half, so no retry is immediate and none in lockstep. */
    uint64_t step = s->c.backoff_base_ms;
    for (int i = 1; i < attempts && step < s->c.backoff_max_ms; i++) step *= 2;
    if (step > s->c.backoff_max_ms) step = s->c.backoff_max_ms;
    uint64_t nap = step / 2 + jitter_rand() % (step / 2 + 1);
    now = mono_ms();
    if (now + nap + min_attempt >= deadline) break;
    sleep_ms(nap);
  }
  buf_free(&url);
  if (o.ok) return NULL;

  char where[96] = "";
  if (r->ranged)
    snprintf(where, sizeof(where), " bytes %" PRIu64 "-%" PRIu64, r->range_off,
             r->range_off + r->range_len - 1);
  char tries[sizeof(last_answer) + 160] = "";
  if (o.retry) {
    /* Gave up on something transient: the deadline decided. If the last
     * attempt got no answer, say what the server answered before. */
    bool earlier = last_answer[0] != '\0' && strncmp(o.msg, "HTTP ", 5) != 0;
    snprintf(tries, sizeof(tries),
             "%s%s (gave up after %d attempts in %" PRIu64 " ms; deadline %" PRIu64
             " ms)",
             earlier ? "; before that: " : "", earlier ? last_answer : "",
             attempts, mono_ms() - start, s->c.deadline_ms);
    if (o.code == MICA_IO_ERROR) o.code = MICA_UNAVAILABLE;
  }
  return err_new(o.code, "%s s3://%s/%s%s%s%s: %s%s", r->method, r->bucket,
                 r->key ? r->key : "", where, r->what ? " " : "",
                 r->what ? r->what : "", o.msg, tries);
}
