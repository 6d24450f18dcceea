/* rpc_auth: credentials in gRPC call metadata, both ends (rpc_internal.h;
 * the scheme is in auth.h). */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto/rpc_internal.h"

#define MD_MEMBER "x-mica-member"
#define MD_AUTH "authorization"

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void rpc_md_build(const rpc_secret *member, const char *token,
                  const char *path, grpc_byte_buffer *bb, rpc_md_out *out) {
  out->n = 0;
  if (member != NULL) {
    buf body = BUF_INIT;
    if (bb != NULL) (void)rpc_bytes_of(bb, &body);
    char proof[RPC_MEMBER_PROOF_MAX];
    rpc_member_proof(member, path, buf_slice(&body), wall_ms(), proof);
    buf_free(&body);
    grpc_metadata *m = &out->md[out->n++];
    memset(m, 0, sizeof *m);
    m->key = grpc_slice_from_static_string(MD_MEMBER);
    m->value = grpc_slice_from_copied_string(proof);
  }
  if (token != NULL) {
    size_t n = strlen(token) + 8;
    char *v = xmalloc(n);
    snprintf(v, n, "Bearer %s", token);
    grpc_metadata *m = &out->md[out->n++];
    memset(m, 0, sizeof *m);
    m->key = grpc_slice_from_static_string(MD_AUTH);
    m->value = grpc_slice_from_copied_string(v);
    OPENSSL_cleanse(v, n);
    free(v);
  }
}

void rpc_md_release(rpc_md_out *out) {
  for (size_t i = 0; i < out->n; i++) {
    grpc_slice_unref(out->md[i].key);
    grpc_slice_unref(out->md[i].value);
  }
  out->n = 0;
}

static bool md_is(grpc_slice key, const char *name) {
  size_t n = strlen(name);
  return GRPC_SLICE_LENGTH(key) == n &&
         memcmp(GRPC_SLICE_START_PTR(key), name, n) == 0;
}

/* The names of the peer's client certificate, which the TLS layer put in
 * the call's auth context only after verifying it against the server's
 * CA (the servers request certificates only with verification): the
 * subject CN first, then the SANs. Caller frees with peer_names_free. */
#define PEER_NAMES_MAX 16
typedef struct peer_names {
  char *v[PEER_NAMES_MAX];
  size_t n;
} peer_names;

static void peer_names_add(peer_names *p, const grpc_auth_property *prop) {
  if (p->n == PEER_NAMES_MAX || prop->value == NULL) return;
  p->v[p->n++] = strndup(prop->value, prop->value_length);
}

static void peer_names_get(grpc_call *call, peer_names *p) {
  p->n = 0;
  if (call == NULL) return;
  grpc_auth_context *ctx = grpc_call_auth_context(call);
  if (ctx == NULL) return;
  if (grpc_auth_context_peer_is_authenticated(ctx)) {
    grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(
        ctx, GRPC_X509_CN_PROPERTY_NAME);
    const grpc_auth_property *prop;
    while ((prop = grpc_auth_property_iterator_next(&it)) != NULL)
      peer_names_add(p, prop);
    it = grpc_auth_context_find_properties_by_name(
        ctx, GRPC_X509_SAN_PROPERTY_NAME);
    while ((prop = grpc_auth_property_iterator_next(&it)) != NULL)
      peer_names_add(p, prop);
  }
  grpc_auth_context_release(ctx);
}

static void peer_names_free(peer_names *p) {
  for (size_t i = 0; i < p->n; i++) free(p->v[i]);
  p->n = 0;
}

mica_err *rpc_md_check(rpc_auth *a, const char *path, grpc_call *call,
                       const grpc_metadata_array *md, grpc_byte_buffer *bb,
                       rpc_identity *id) {
  const grpc_slice *member = NULL, *bearer = NULL;
  for (size_t i = 0; i < md->count; i++) {
    if (md_is(md->metadata[i].key, MD_MEMBER)) member = &md->metadata[i].value;
    else if (md_is(md->metadata[i].key, MD_AUTH))
      bearer = &md->metadata[i].value;
  }
  buf body = BUF_INIT;
  slice bytes = slice_make(NULL, 0);
  if (member != NULL && bb != NULL && !rpc_bytes_view(bb, &bytes)) {
    (void)rpc_bytes_of(bb, &body);
    bytes = buf_slice(&body);
  }
  peer_names pn;
  /* The certificate counts only for a call without other credentials, and
   * only while tokens are checked (no lookup on an open cluster's calls). */
  bool want = member == NULL && bearer == NULL && rpc_auth_clients_checked(a);
  peer_names_get(want ? call : NULL, &pn);
  rpc_peer_names peer = {(const char *const *)pn.v, pn.n};
  mica_err *e = rpc_auth_check(
      a, path, bytes,
      member ? (const char *)GRPC_SLICE_START_PTR(*member) : NULL,
      member ? GRPC_SLICE_LENGTH(*member) : 0,
      bearer ? (const char *)GRPC_SLICE_START_PTR(*bearer) : NULL,
      bearer ? GRPC_SLICE_LENGTH(*bearer) : 0, &peer, id);
  peer_names_free(&pn);
  buf_free(&body);
  return e;
}
