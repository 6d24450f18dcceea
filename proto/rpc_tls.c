/* rpc_tls: TLS credentials for servers and channels from PEM files, through
 * the gRPC C core's SSL credentials (contract in rpc.h, rpc_tls). */
#include <errno.h>
#include <grpc/grpc_security.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

mica_err *rpc_tls_server_creds(const rpc_tls *t,
                               grpc_server_credentials **out) {
  *out = NULL;
  if (t->cert_file == NULL || t->key_file == NULL)
    return err_new(MICA_INVALID_ARGUMENT,
                   "TLS server needs both a certificate and a key file");
  char *cert = NULL, *key = NULL, *ca = NULL;
  mica_err *e = read_pem("certificate", t->cert_file, &cert);
  if (e == NULL) e = read_pem("key", t->key_file, &key);
  if (e == NULL && t->ca_file != NULL) e = read_pem("CA", t->ca_file, &ca);
  if (e == NULL) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    *out = grpc_ssl_server_credentials_create_ex(
        ca, &pair, 1,
        ca != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
    if (*out == NULL)
      e = err_new(MICA_INVALID_ARGUMENT,
                  "TLS server credentials from %s and %s were refused",
                  t->cert_file, t->key_file);
  }
  free_pem(cert);
  free_pem(key);
  free_pem(ca);
  return e;
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
