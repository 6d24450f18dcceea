/* s3_client: one S3 request, signed, retried and turned into a Mica error.
 *
 * The S3 env (env_s3.c) is built from these requests; nothing else in Mica
 * speaks HTTP to object storage. libcurl does the HTTP and the AWS
 * Signature Version 4 signing (CURLOPT_AWS_SIGV4); this file chooses the
 * URL (path-style or virtual-host), adds the headers AWS requires
 * (x-amz-content-sha256 always, x-amz-security-token with temporary
 * credentials), and decides what is worth retrying.
 *
 * Retries: a request is retried, with exponential backoff and full jitter
 * (a random sleep in [0, min(max, base * 2^attempt)]), while its deadline
 * allows, when the answer is a transport failure (refused or reset
 * connection, timeout, a body shorter than announced) or an HTTP status
 * that S3 documents as transient (500, 502, 503, 504, 429, and the
 * SlowDown / RequestTimeout / InternalError codes whatever the status).
 * Anything else fails at once. Every error names the method, the
 * s3://bucket/key, the HTTP status and S3's error code and message, and,
 * after retries, how many attempts were made over how long (and the
 * server's last answer when the final attempt got none).
 *
 * Connections: one process-wide pool of curl easy handles sharing one
 * connection and DNS cache, so consecutive requests reuse keep-alive
 * connections whichever thread makes them.
 *
 * Thread-safety: an s3_client may be used from any number of threads. */
#ifndef MICA_COMMON_S3_S3_CLIENT_H
#define MICA_COMMON_S3_S3_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"

/* How to reach the service and how hard to try. Strings are owned by the
 * struct once filled by s3_config_from_environ or s3_config_set; free with
 * s3_config_free. */
typedef struct s3_config {
  char *endpoint;      /* "http://127.0.0.1:9000"; NULL: AWS for `region` */
  char *region;        /* signing region; default "us-east-1" */
  char *access_key;    /* NULL: unsigned requests (anonymous) */
  char *secret_key;
  char *session_token; /* temporary credentials; NULL when none */
  /* Virtual-host addressing (https://BUCKET.host/KEY) instead of
   * path-style (https://host/BUCKET/KEY). Default: virtual-host for AWS's
   * own endpoint, path-style when an endpoint is given (MinIO, Ceph and
   * local test servers want that). */
  bool virtual_host;
  uint64_t deadline_ms;        /* whole operation incl. retries; 30000 */
  uint64_t attempt_timeout_ms; /* one attempt; 10000 */
  uint64_t backoff_base_ms;    /* first retry sleeps up to this; 25 */
  uint64_t backoff_max_ms;     /* cap of one sleep; 2000 */
  /* Objects of at least this many bytes are uploaded in parts of
   * part_size (both >= 5 MiB, S3's minimum part size, except in tests that
   * lower them with S3_ALLOW_SMALL_PARTS). Default 16 MiB / 8 MiB. */
  uint64_t multipart_threshold;
  uint64_t part_size;
  uint64_t upload_parallelism; /* parts of one upload in flight; 4 */
  /* The local disk cache of object chunks (s3_cache.h) used by the S3 env:
   * off when cache_dir is NULL. Default size 1 GiB, chunk 256 KiB. */
  char *cache_dir;
  uint64_t cache_size;
  uint64_t cache_chunk;
} s3_config;

/* Defaults, then the variables the AWS tools read: AWS_ENDPOINT_URL (or
 * AWS_ENDPOINT_URL_S3, which wins), AWS_REGION (or AWS_DEFAULT_REGION),
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, and Mica's
 * MICA_S3_ADDRESSING ("path" or "virtual"). INVALID_ARGUMENT names a bad
 * value. Caller frees with s3_config_free (also on failure). */
mica_err *s3_config_from_environ(s3_config *c);

/* Sets one setting by the name its command-line flag uses without the
 * "--s3-" prefix: "endpoint", "region", "access-key", "secret-key",
 * "session-token", "addressing" (path|virtual), "deadline-ms",
 * "attempt-timeout-ms", "backoff-base-ms", "backoff-max-ms",
 * "multipart-threshold", "part-size", "upload-parallelism", and the disk cache's "cache-dir",
 * "cache-size", "cache-chunk" (flags --cache-dir, --cache-size). Sizes take
 * an optional k, m or g suffix (powers of 1024). INVALID_ARGUMENT names an
 * unknown setting or a bad value. */
mica_err *s3_config_set(s3_config *c, const char *name, const char *value);
void s3_config_free(s3_config *c); /* accepts NULL; leaves it zeroed */

typedef struct s3_client s3_client;

/* Checks `c` (an endpoint URL with a scheme and a host, a secret with
 * every access key) and copies it. Caller frees with s3_client_free. */
mica_err *s3_client_new(const s3_config *c, s3_client **out);
void s3_client_free(s3_client *s); /* accepts NULL */
const s3_config *s3_client_config(const s3_client *s);

/* One request. `key` may be NULL or "" for bucket-level requests. `query`
 * is the canonical query string (parameters sorted by name, each name and
 * value encoded with s3_uri_encode), or NULL. */
typedef struct s3_request {
  const char *method; /* GET HEAD PUT POST DELETE */
  const char *bucket;
  const char *key;
  const char *query;
  slice body;                /* sent with PUT and POST */
  const char *const *headers; /* extra "Name: value" lines, NULL-ended */
  bool ranged;               /* send Range: bytes=range_off-(off+len-1) */
  uint64_t range_off, range_len;
  /* Mica code for HTTP 412 (a failed If-Match / If-None-Match);
   * 0 means ABORTED. */
  int code_412;
  /* For messages: what this request is for ("rename to s3://b/k"). */
  const char *what;
  /* Largest body of a 2xx answer to a request that is not ranged; 0 is
   * the default (16 MiB). A longer answer is then CORRUPTION: the caller
   * reads back what it bounded itself (env_read_object). */
  uint64_t max_body;
} s3_request;

typedef struct s3_response {
  long status;
  buf body;                 /* the response body (error bodies too) */
  char etag[128];           /* ETag header, quotes kept; "" if none */
  uint64_t content_length;  /* Content-Length, or UINT64_MAX if none */
  uint64_t object_size;     /* from Content-Range "bytes a-b/SIZE", or
                               UINT64_MAX */
  uint64_t range_start;     /* the "a" of Content-Range, or UINT64_MAX */
  int attempts;
} s3_response;

/* Performs `r`, retrying as described at the top. Success is a 2xx status
 * whose body is complete (for a ranged GET: exactly the bytes asked for,
 * or the rest of the object when the range runs past its end). On
 * success `out` holds the answer; caller frees out->body (s3_response_free)
 * whether or not it succeeded. 404 is NOT_FOUND, 403 PERMISSION ("access
 * denied") as IO_ERROR, 412 `code_412`, exhausted retries UNAVAILABLE or
 * DEADLINE_EXCEEDED. */
mica_err *s3_do(s3_client *s, const s3_request *r, s3_response *out);
void s3_response_free(s3_response *out);

/* What this process has asked of S3 since it started, by the kind of
 * request a bill counts: every attempt is one request (a retried request
 * is billed once per attempt). LIST is a GET of a bucket with a list-type
 * query, COPY a PUT with x-amz-copy-source, PUT includes multipart parts,
 * POST starts or completes a multipart upload. `micros` is the wall time
 * of those attempts (from the request's start to its last byte), so a
 * slow path can be attributed to its requests. Process-wide, like the
 * handle pool; read with relaxed atomics, so a snapshot taken while
 * requests run may mix a request's count and its time. Exported on both
 * servers' /metrics as mica_s3_requests_total and
 * mica_s3_request_seconds_total (s3_render_metrics). */
enum {
  S3_REQ_GET,
  S3_REQ_HEAD,
  S3_REQ_PUT,
  S3_REQ_COPY,
  S3_REQ_LIST,
  S3_REQ_POST,
  S3_REQ_DELETE,
  S3_REQ_KINDS
};
typedef struct s3_stats {
  uint64_t requests[S3_REQ_KINDS];
  uint64_t micros[S3_REQ_KINDS];
  uint64_t retries;       /* attempts after a request's first */
  uint64_t bytes_in;      /* response bodies received */
  uint64_t bytes_out;     /* request bodies sent */
} s3_stats;
void s3_get_stats(s3_stats *out);
const char *s3_req_kind_name(int kind); /* "GET", "LIST", ... */
/* Appends the counters above in Prometheus text format (common/prom.h). */
void s3_render_metrics(buf *out);

/* Appends `s` to `out` encoded as SigV4 wants: unreserved characters
 * (A-Z a-z 0-9 - _ . ~) as they are, '/' kept when `keep_slash`,
 * everything else %XX with upper-case hex. NUL-terminates (not counted). */
void s3_uri_encode(const char *s, bool keep_slash, buf *out);

/* The lower-case hex SHA-256 of `data` (65 bytes with the NUL). */
void s3_sha256_hex(slice data, char hex[65]);

#endif
