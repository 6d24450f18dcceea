/* rpc_tls: TLS credentials for servers and channels from PEM files, through
 * the gRPC C core's SSL credentials (contract in rpc.h, rpc_tls). */
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <grpc/grpc_security.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/rpc_internal.h"

#define PEM_MAX (1u << 20)

/* The whole of a PEM file as a NUL-terminated string. */
static mica_err *read_pem(const char *what, const char *path, char **out) {
  *out = NULL;
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "TLS %s %s: %s", what, path,
                   strerror(errno));
  buf b = BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= PEM_MAX)
    buf_append(&b, chunk, n);
  bool bad = ferror(f) != 0;
  fclose(f);
  mica_err *e = NULL;
  if (bad)
    e = err_new(MICA_IO_ERROR, "TLS %s %s: read error", what, path);
  else if (b.len > PEM_MAX)
    e = err_new(MICA_INVALID_ARGUMENT, "TLS %s %s: larger than %u bytes",
                what, path, PEM_MAX);
  else if (b.len == 0 || memmem(b.data, b.len, "-----BEGIN ", 11) == NULL)
    e = err_new(MICA_INVALID_ARGUMENT, "TLS %s %s: not a PEM file", what,
                path);
  if (e != NULL) {
    OPENSSL_cleanse(b.data, b.cap);
    buf_free(&b);
    return e;
  }
  buf_push(&b, '\0');
  *out = (char *)b.data;
  return NULL;
}

static void free_pem(char *p) {
  if (p == NULL) return;
  OPENSSL_cleanse(p, strlen(p));
  free(p);
}

/* What gRPC would only report as "cannot create a secure server": the
 * first certificate of `cert` parses and has not expired, the key parses
 * and belongs to it. `ca` (may be NULL) holds at least one certificate. */
static mica_err *check_pem(const char *cert, const char *cert_path,
                           const char *key, const char *key_path,
                           const char *ca, const char *ca_path) {
  mica_err *e = NULL;
  X509 *x = NULL;
  EVP_PKEY *k = NULL;
  if (cert != NULL) {
    BIO *b = BIO_new_mem_buf(cert, -1);
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (x == NULL)
      return err_new(MICA_INVALID_ARGUMENT, "TLS certificate %s: no "
                     "certificate in it parses", cert_path);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
      e = err_new(MICA_INVALID_ARGUMENT, "TLS certificate %s has expired",
                  cert_path);
  }
  if (e == NULL && key != NULL) {
    BIO *b = BIO_new_mem_buf(key, -1);
    k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (k == NULL)
      e = err_new(MICA_INVALID_ARGUMENT, "TLS key %s: no private key in it "
                  "parses (an encrypted key is not supported)", key_path);
    else if (x != NULL && X509_check_private_key(x, k) != 1)
      e = err_new(MICA_INVALID_ARGUMENT, "TLS key %s does not belong to the "
                  "certificate %s", key_path, cert_path);
  }
  if (e == NULL && ca != NULL) {
    BIO *b = BIO_new_mem_buf(ca, -1);
    X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (c == NULL)
      e = err_new(MICA_INVALID_ARGUMENT, "TLS CA %s: no certificate in it "
                  "parses", ca_path);
    X509_free(c);
  }
  EVP_PKEY_free(k);
  X509_free(x);
  return e;
}

/* The server's files, re-read when one changes: gRPC calls the fetcher at
 * start-up and before each new TLS handshake, so a renewed certificate is
 * used from the next connection on, without a restart. */
struct rpc_tls_state {
  char *cert, *key, *ca; /* paths; ca may be NULL */
  pthread_mutex_t mu;
  struct timespec seen[3]; /* mtimes of the files last loaded */
  bool loaded;
};

static struct timespec mtime_of(const char *path) {
  struct stat st;
  struct timespec zero = {0, 0};
  return path != NULL && stat(path, &st) == 0 ? st.st_mtim : zero;
}

static grpc_ssl_certificate_config_reload_status fetch_config(
    void *ud, grpc_ssl_server_certificate_config **config) {
  rpc_tls_state *st = ud;
  grpc_ssl_certificate_config_reload_status rc =
      GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  pthread_mutex_lock(&st->mu);
  struct timespec now[3] = {mtime_of(st->cert), mtime_of(st->key),
                            mtime_of(st->ca)};
  bool changed = !st->loaded;
  for (int i = 0; i < 3; i++)
    if (now[i].tv_sec != st->seen[i].tv_sec ||
        now[i].tv_nsec != st->seen[i].tv_nsec)
      changed = true;
  if (changed) {
    char *cert = NULL, *key = NULL, *ca = NULL;
    mica_err *e = read_pem("certificate", st->cert, &cert);
    if (e == NULL) e = read_pem("key", st->key, &key);
    if (e == NULL && st->ca != NULL) e = read_pem("CA", st->ca, &ca);
    if (e == NULL) e = check_pem(cert, st->cert, key, st->key, ca, st->ca);
    if (e == NULL) {
      grpc_ssl_pem_key_cert_pair pair = {key, cert};
      *config = grpc_ssl_server_certificate_config_create(ca, &pair, 1);
      if (st->loaded) LOG_I("TLS: reloaded %s", st->cert);
      memcpy(st->seen, now, sizeof now);
      st->loaded = true;
      rc = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
    } else {
      /* Half-written files: keep serving with what was loaded. */
      LOG_W("TLS: %s; keeping the previous certificate", err_msg(e));
      err_free(e);
      if (!st->loaded) rc = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
    }
    free_pem(cert);
    free_pem(key);
    free_pem(ca);
  }
  pthread_mutex_unlock(&st->mu);
  return rc;
}

void rpc_tls_state_free(rpc_tls_state *st) {
  if (st == NULL) return;
  pthread_mutex_destroy(&st->mu);
  free(st->cert);
  free(st->key);
  free(st->ca);
  free(st);
}

mica_err *rpc_tls_server_creds(const rpc_tls *t, grpc_server_credentials **out,
                               rpc_tls_state **state) {
  *out = NULL;
  *state = NULL;
  if (t->cert_file == NULL || t->key_file == NULL)
    return err_new(MICA_INVALID_ARGUMENT,
                   "TLS server needs both a certificate and a key file");
  /* Check the files now, so a bad one is named at start-up. */
  char *cert = NULL, *key = NULL, *ca = NULL;
  mica_err *e = read_pem("certificate", t->cert_file, &cert);
  if (e == NULL) e = read_pem("key", t->key_file, &key);
  if (e == NULL && t->ca_file != NULL) e = read_pem("CA", t->ca_file, &ca);
  if (e == NULL)
    e = check_pem(cert, t->cert_file, key, t->key_file, ca, t->ca_file);
  free_pem(cert);
  free_pem(key);
  free_pem(ca);
  if (e != NULL) return e;
  /* Client certificates are always verified when requested: the names in
   * a certificate count as an identity (auth.h) only once it chains to
   * the CA. */
  grpc_ssl_client_certificate_request_type req =
      t->require_client_cert
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
      : t->request_client_cert
          ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  if (t->ca_file == NULL) {
    /* gRPC reloads only configurations with roots: without a CA the
     * certificate is fixed for the server's life. */
    if (t->require_client_cert || t->request_client_cert)
      return err_new(MICA_INVALID_ARGUMENT,
                     "TLS server asking for client certificates needs a CA");
    e = read_pem("certificate", t->cert_file, &cert);
    if (e == NULL) e = read_pem("key", t->key_file, &key);
    if (e == NULL) {
      grpc_ssl_pem_key_cert_pair pair = {key, cert};
      *out = grpc_ssl_server_credentials_create_ex(NULL, &pair, 1, req, NULL);
      if (*out == NULL)
        e = err_new(MICA_INVALID_ARGUMENT,
                    "TLS server credentials from %s and %s were refused",
                    t->cert_file, t->key_file);
    }
    free_pem(cert);
    free_pem(key);
    return e;
  }
  rpc_tls_state *st = xcalloc(1, sizeof *st);
  st->cert = xstrdup(t->cert_file);
  st->key = xstrdup(t->key_file);
  st->ca = t->ca_file != NULL ? xstrdup(t->ca_file) : NULL;
  pthread_mutex_init(&st->mu, NULL);
  grpc_ssl_server_credentials_options *o =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          req, fetch_config, st);
  *out = o != NULL ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
  if (*out == NULL) {
    rpc_tls_state_free(st);
    return err_new(MICA_INVALID_ARGUMENT,
                   "TLS server credentials from %s and %s were refused",
                   t->cert_file, t->key_file);
  }
  *state = st;
  return NULL;
}

mica_err *rpc_tls_channel_creds(const rpc_tls *t,
                                grpc_channel_credentials **out) {
  *out = NULL;
  if (t->ca_file == NULL)
    return err_new(MICA_INVALID_ARGUMENT,
                   "TLS channel needs a CA file to verify the server");
  if ((t->cert_file == NULL) != (t->key_file == NULL))
    return err_new(MICA_INVALID_ARGUMENT,
                   "TLS client certificate and key go together");
  char *cert = NULL, *key = NULL, *ca = NULL;
  mica_err *e = read_pem("CA", t->ca_file, &ca);
  if (e == NULL && t->cert_file != NULL)
    e = read_pem("certificate", t->cert_file, &cert);
  if (e == NULL && t->key_file != NULL) e = read_pem("key", t->key_file, &key);
  if (e == NULL)
    e = check_pem(cert, t->cert_file, key, t->key_file, ca, t->ca_file);
  if (e == NULL) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    *out = grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL,
                                       NULL);
    if (*out == NULL)
      e = err_new(MICA_INVALID_ARGUMENT, "TLS channel credentials refused");
  }
  free_pem(cert);
  free_pem(key);
  free_pem(ca);
  return e;
}

mica_err *rpc_tls_check_channel_files(const rpc_tls *t) {
  if (t->ca_file == NULL)
    return err_new(MICA_INVALID_ARGUMENT,
                   "TLS channel needs a CA file to verify the server");
  if ((t->cert_file == NULL) != (t->key_file == NULL))
    return err_new(MICA_INVALID_ARGUMENT,
                   "TLS client certificate and key go together");
  char *cert = NULL, *key = NULL, *ca = NULL;
  mica_err *e = read_pem("CA", t->ca_file, &ca);
  if (e == NULL && t->cert_file != NULL)
    e = read_pem("certificate", t->cert_file, &cert);
  if (e == NULL && t->key_file != NULL) e = read_pem("key", t->key_file, &key);
  if (e == NULL)
    e = check_pem(cert, t->cert_file, key, t->key_file, ca, t->ca_file);
  free_pem(cert);
  free_pem(key);
  free_pem(ca);
  return e;
}

static bool loopback_host(const char *listen) {
  if (listen == NULL) return true;
  const char *colon = strrchr(listen, ':');
  size_t n = colon != NULL ? (size_t)(colon - listen) : strlen(listen);
  char host[256];
  if (n >= sizeof host) return false;
  memcpy(host, listen, n);
  host[n] = '\0';
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    memmove(host, host + 1, n - 2);
    host[n - 2] = '\0';
  }
  if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0) return true;
  unsigned a, b, c, d;
  char extra;
  return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 &&
         a == 127 && b < 256 && c < 256 && d < 256;
}

mica_err *rpc_check_plaintext(const char *what, const char *listen, bool tls,
                              bool insecure) {
  if (tls || insecure || loopback_host(listen)) return NULL;
  return err_new(MICA_INVALID_ARGUMENT,
                 "%s %s is not a loopback address and serves plaintext: give "
                 "--tls-cert and --tls-key (and --tls-ca), or --insecure to "
                 "accept that anyone on the network can read and forge its "
                 "traffic", what, listen);
}

bool rpc_tls_client_certs_parse(const char *mode, rpc_tls *t) {
  bool req = strcmp(mode, "request") == 0, must = strcmp(mode, "require") == 0;
  if (!req && !must && strcmp(mode, "none") != 0) return false;
  t->request_client_cert = req;
  t->require_client_cert = must;
  return true;
}

void rpc_note_plaintext(char *note, size_t size, const char *what,
                        const char *listen, bool tls) {
  if (tls || loopback_host(listen) || size == 0) return;
  size_t n = strlen(note);
  snprintf(note + n, size - n, "%s%s %s", n ? ", " : "", what, listen);
}
