/* rpc_auth: credentials in gRPC call metadata, both ends (rpc_internal.h;
 * the scheme is in auth.h). */
#include <grpc/grpc.h>
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

mica_err *rpc_md_check(rpc_auth *a, const char *path,
                       const grpc_metadata_array *md, grpc_byte_buffer *bb,
                       rpc_identity *id) {
  const grpc_slice *member = NULL, *bearer = NULL;
  for (size_t i = 0; i < md->count; i++) {
    if (md_is(md->metadata[i].key, MD_MEMBER)) member = &md->metadata[i].value;
    else if (md_is(md->metadata[i].key, MD_AUTH))
      bearer = &md->metadata[i].value;
  }
  buf body = BUF_INIT;
  if (member != NULL && bb != NULL) (void)rpc_bytes_of(bb, &body);
  mica_err *e = rpc_auth_check(
      a, path, buf_slice(&body),
      member ? (const char *)GRPC_SLICE_START_PTR(*member) : NULL,
      member ? GRPC_SLICE_LENGTH(*member) : 0,
      bearer ? (const char *)GRPC_SLICE_START_PTR(*bearer) : NULL,
      bearer ? GRPC_SLICE_LENGTH(*bearer) : 0, id);
  buf_free(&body);
  return e;
}
