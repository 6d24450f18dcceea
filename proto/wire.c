/* wire: the generic converters between the plain structs of wire.h and the
 * protobuf-c messages, driven by one table per message (wire_int.h).
 *
 * Encoding builds a protobuf-c message in an arena, pointing at the plain
 * message's bytes and strings rather than copying them, so the only copy is
 * the serialization itself. Decoding keeps the unpacked protobuf-c message
 * and points the plain struct into its bytes and strings; the plain struct,
 * its arrays and a record of the unpacked message live in one arena, and
 * rpc_msg_free() frees both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/rpc.h"
#include "proto/wire_int.h"

/* ---- the tables ---- */

#define RPC_FIELD_AUX_U64(t, name) 0
#define RPC_FIELD_AUX_U32(t, name) 0
#define RPC_FIELD_AUX_BOOL(t, name) 0
#define RPC_FIELD_AUX_DBL(t, name) 0
#define RPC_FIELD_AUX_ENUM(t, name) 0
#define RPC_FIELD_AUX_STR(t, name) 0
#define RPC_FIELD_AUX_BYTES(t, name) 0
#define RPC_FIELD_AUX_MSG(t, name) 0
#define RPC_FIELD_AUX_NONE(t, name) 0
#define RPC_FIELD_AUX_RMSG(t, name) offsetof(t, n_##name)
#define RPC_FIELD_AUX_RBYTES(t, name) offsetof(t, n_##name)
#define RPC_FIELD_AUX_RU64(t, name) offsetof(t, n_##name)
#define RPC_FIELD_AUX_OBOOL(t, name) offsetof(t, has_##name)
#define RPC_FIELD_SUB_MSG(sub) &rpc_def_##sub
#define RPC_FIELD_SUB_RMSG(sub) &rpc_def_##sub
#define RPC_FIELD_SUB_U64(sub) NULL
#define RPC_FIELD_SUB_U32(sub) NULL
#define RPC_FIELD_SUB_BOOL(sub) NULL
#define RPC_FIELD_SUB_DBL(sub) NULL
#define RPC_FIELD_SUB_ENUM(sub) NULL
#define RPC_FIELD_SUB_STR(sub) NULL
#define RPC_FIELD_SUB_BYTES(sub) NULL
#define RPC_FIELD_SUB_RBYTES(sub) NULL
#define RPC_FIELD_SUB_RU64(sub) NULL
#define RPC_FIELD_SUB_OBOOL(sub) NULL
#define RPC_FIELD_SUB_NONE(sub) NULL

/* A message's rows are made inside a function so that a local typedef can
 * name the message's struct for offsetof: the field lists pass only the
 * field, never the message. */
#define RPC_ROW_(kind, sub, name, num)                                      \
  {num, RPC_K_##kind, #name, offsetof(T_, name), RPC_FIELD_AUX_##kind(T_, name), \
   RPC_FIELD_SUB_##kind(sub)},
#define RPC_TABLE_(n)                                                       \
  static const rpc_field *fields_##n(size_t *count) {                       \
    typedef rpc_##n T_;                                                     \
    static const rpc_field rows[] = {RPC_FIELDS_##n(RPC_ROW_)};             \
    *count = sizeof rows / sizeof rows[0];                                  \
    return rows;                                                            \
  }                                                                         \
  const rpc_msgdef rpc_def_##n = {#n, sizeof(rpc_##n),                      \
                                  &mica__v1__##n##__descriptor, fields_##n};
RPC_MESSAGE_LIST(RPC_TABLE_)
#undef RPC_TABLE_
#undef RPC_ROW_

#define RPC_DEF_REF_(n) &rpc_def_##n,
static const rpc_msgdef *const all_defs[] = {RPC_MESSAGE_LIST(RPC_DEF_REF_)};
#undef RPC_DEF_REF_

/* The enums of wire.h must equal mica.proto's, number for number. */
#define SAME_(ours, theirs) ((int)(ours) == (int)(theirs))
_Static_assert(SAME_(RPC_TABLET_UNASSIGNED, MICA__V1__TABLET_STATE__TABLET_UNASSIGNED) &&
                   SAME_(RPC_TABLET_OPENING, MICA__V1__TABLET_STATE__TABLET_OPENING) &&
                   SAME_(RPC_TABLET_SERVING, MICA__V1__TABLET_STATE__TABLET_SERVING) &&
                   SAME_(RPC_TABLET_CLOSING, MICA__V1__TABLET_STATE__TABLET_CLOSING) &&
                   SAME_(RPC_TABLET_SPLIT, MICA__V1__TABLET_STATE__TABLET_SPLIT) &&
                   SAME_(RPC_TABLET_MERGED, MICA__V1__TABLET_STATE__TABLET_MERGED),
               "TabletState");
_Static_assert(SAME_(RPC_SCAN_END_RANGE, MICA__V1__SCAN_END__SCAN_END_RANGE) &&
                   SAME_(RPC_SCAN_END_LIMIT, MICA__V1__SCAN_END__SCAN_END_LIMIT) &&
                   SAME_(RPC_SCAN_END_ERROR, MICA__V1__SCAN_END__SCAN_END_ERROR),
               "ScanEnd");
_Static_assert(SAME_(RPC_MUTATION_PUT, MICA__V1__MUTATION__KIND__KIND_PUT) &&
                   SAME_(RPC_MUTATION_DELETE, MICA__V1__MUTATION__KIND__KIND_DELETE),
               "Mutation.Kind");
_Static_assert(SAME_(RPC_SERVER_LIVE, MICA__V1__SERVER_STATE__SERVER_LIVE) &&
                   SAME_(RPC_SERVER_SUSPECT, MICA__V1__SERVER_STATE__SERVER_SUSPECT) &&
                   SAME_(RPC_SERVER_DEAD, MICA__V1__SERVER_STATE__SERVER_DEAD),
               "ServerState");
#undef SAME_

/* ---- text: proto3 strings are UTF-8 ---- */

/* Length of the valid UTF-8 prefix of s[0..n) (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). n when all of it is. */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return i;
    i += len;
  }
  return n;
}

bool rpc_utf8_valid(const char *s, size_t n) {
  return utf8_valid_prefix((const uint8_t *)s, n) == n;
}

/* `s` as it may go on the wire: itself when it is UTF-8, else a copy in
 * `a` with every byte outside printable ASCII escaped as \xNN, the way
 * messages show keys (slice_escape). */
static const char *wire_text(const char *s, arena *a) {
  size_t n = strlen(s);
  if (rpc_utf8_valid(s, n)) return s;
  buf esc = BUF_INIT;
  slice_escape(slice_make(s, n), &esc);
  char *out = arena_alloc_aligned(a, esc.len + 1);
  memcpy(out, esc.data, esc.len + 1);
  buf_free(&esc);
  return out;
}

/* Where check_text found a string that is not UTF-8: the field's path
 * from the top message, built as the search unwinds (failures are rare,
 * so the common path formats nothing). */
typedef struct bad_text {
  char path[512];
  size_t offset;
  uint8_t byte;
} bad_text;

/* Prepends `seg` (shorter than the path buffer) to bad->path, cutting
 * the path's end if the whole would not fit. */
static void path_prepend(bad_text *bad, const char *seg) {
  size_t sl = strlen(seg), pl = strlen(bad->path);
  if (sl + pl + 1 > sizeof bad->path) pl = sizeof bad->path - 1 - sl;
  memmove(bad->path + sl, bad->path, pl);
  memcpy(bad->path, seg, sl);
  bad->path[sl + pl] = '\0';
}

/* False, filling *bad, at the first string field of `plain` (a message of
 * `d`), depth first, that is not UTF-8. */
static bool check_text(const rpc_msgdef *d, const void *plain, bad_text *bad) {
  size_t n;
  const rpc_field *fs = d->fields(&n);
  for (size_t i = 0; i < n; i++) {
    const rpc_field *f = &fs[i];
    const char *src = (const char *)plain + f->off;
    char seg[160];
    if (f->kind == RPC_K_STR) {
      const char *v = *(const char *const *)src;
      if (v == NULL) continue;
      size_t len = strlen(v);
      size_t ok = utf8_valid_prefix((const uint8_t *)v, len);
      if (ok == len) continue;
      snprintf(bad->path, sizeof bad->path, ".%s", f->name);
      bad->offset = ok;
      bad->byte = (uint8_t)v[ok];
      return false;
    } else if (f->kind == RPC_K_MSG) {
      const void *m = *(const void *const *)src;
      if (m == NULL || check_text(f->sub, m, bad)) continue;
      snprintf(seg, sizeof seg, ".%s", f->name);
      path_prepend(bad, seg);
      return false;
    } else if (f->kind == RPC_K_RMSG) {
      const char *arr = *(const char *const *)src;
      size_t cnt = *(const size_t *)((const char *)plain + f->aux);
      for (size_t k = 0; k < cnt; k++) {
        if (check_text(f->sub, arr + k * f->sub->size, bad)) continue;
        snprintf(seg, sizeof seg, ".%s[%zu]", f->name, k);
        path_prepend(bad, seg);
        return false;
      }
    }
  }
  return true;
}

mica_err *rpc_wire_check_text(const rpc_msgdef *d, const void *plain) {
  bad_text bad;
  if (check_text(d, plain, &bad)) return NULL;
  /* pb->short_name is the message's name in mica.proto ("GetRequest"). */
  return err_new(MICA_INVALID_ARGUMENT,
                 "%s%s is not valid UTF-8 (byte 0x%02x at offset %zu): string "
                 "fields must be UTF-8; send arbitrary bytes only in bytes "
                 "fields",
                 d->pb->short_name, bad.path, (unsigned)bad.byte, bad.offset);
}

/* ---- encoding ---- */

#define AT(base, off) ((char *)(base) + (off))
#define CAT(base, off) ((const char *)(base) + (off))

ProtobufCMessage *rpc_wire_encode(const rpc_msgdef *d, const void *plain,
                                  arena *a) {
  ProtobufCMessage *m = arena_alloc_aligned(a, d->pb->sizeof_message);
  protobuf_c_message_init(d->pb, m);
  size_t n;
  const rpc_field *fs = d->fields(&n);
  for (size_t i = 0; i < n; i++) {
    const rpc_field *f = &fs[i];
    if (f->kind == RPC_K_NONE) continue;
    const ProtobufCFieldDescriptor *pf =
        protobuf_c_message_descriptor_get_field(d->pb, f->number);
    char *dst = AT(m, pf->offset);
    const char *src = CAT(plain, f->off);
    bool repeated = f->kind == RPC_K_RMSG || f->kind == RPC_K_RBYTES ||
                    f->kind == RPC_K_RU64;
    size_t cnt = repeated ? *(const size_t *)CAT(plain, f->aux) : 0;
    switch (f->kind) {
      case RPC_K_U64: memcpy(dst, src, sizeof(uint64_t)); break;
      case RPC_K_U32: memcpy(dst, src, sizeof(uint32_t)); break;
      case RPC_K_DBL: memcpy(dst, src, sizeof(double)); break;
      case RPC_K_ENUM: memcpy(dst, src, sizeof(int)); break;
      case RPC_K_BOOL: *(protobuf_c_boolean *)dst = *(const bool *)src; break;
      case RPC_K_STR: {
        /* Every string this process sends is UTF-8, whatever it was given
         * (an error message quoting a peer's bytes, say): a strict decoder
         * rejects the whole message otherwise. */
        const char *s = *(const char *const *)src;
        *(char **)dst = (char *)(s != NULL ? wire_text(s, a) : "");
        break;
      }
      case RPC_K_BYTES: {
        const slice *s = (const slice *)src;
        ProtobufCBinaryData *b = (ProtobufCBinaryData *)dst;
        b->len = s->len;
        b->data = (uint8_t *)s->data;
        break;
      }
      case RPC_K_MSG: {
        const void *sub = *(const void *const *)src;
        *(ProtobufCMessage **)dst =
            sub != NULL ? rpc_wire_encode(f->sub, sub, a) : NULL;
        break;
      }
      case RPC_K_RMSG: {
        const char *arr = *(const char *const *)src;
        ProtobufCMessage **v = NULL;
        if (cnt > 0) {
          v = arena_alloc_aligned(a, cnt * sizeof *v);
          for (size_t k = 0; k < cnt; k++)
            v[k] = rpc_wire_encode(f->sub, arr + k * f->sub->size, a);
        }
        *(size_t *)AT(m, pf->quantifier_offset) = cnt;
        *(ProtobufCMessage ***)dst = v;
        break;
      }
      case RPC_K_RBYTES: {
        const slice *arr = *(const slice *const *)src;
        ProtobufCBinaryData *v = NULL;
        if (cnt > 0) {
          v = arena_alloc_aligned(a, cnt * sizeof *v);
          for (size_t k = 0; k < cnt; k++) {
            v[k].len = arr[k].len;
            v[k].data = (uint8_t *)arr[k].data;
          }
        }
        *(size_t *)AT(m, pf->quantifier_offset) = cnt;
        *(ProtobufCBinaryData **)dst = v;
        break;
      }
      case RPC_K_RU64:
        *(size_t *)AT(m, pf->quantifier_offset) = cnt;
        *(uint64_t **)dst = cnt > 0 ? *(uint64_t *const *)src : NULL;
        break;
      case RPC_K_OBOOL:
        if (*(const bool *)CAT(plain, f->aux)) {
          *(int *)AT(m, pf->quantifier_offset) = (int)f->number;
          *(protobuf_c_boolean *)dst = *(const bool *)src;
        }
        break;
    }
  }
  return m;
}

/* ---- decoding ---- */

/* What precedes a decoded plain message in its block. */
typedef struct rpc_hold {
  arena *a;
  ProtobufCMessage *pb; /* NULL when it lives in `a` (rpc_wire_unpack) */
  uint64_t magic; /* RPC_HOLD_MAGIC while the message is live */
} rpc_hold;

#define RPC_HOLD_MAGIC 0x6d6963617769726full /* "micawiro" */

static void decode_into(const rpc_msgdef *d, const ProtobufCMessage *m,
                        void *plain, arena *a) {
  memset(plain, 0, d->size);
  size_t n;
  const rpc_field *fs = d->fields(&n);
  for (size_t i = 0; i < n; i++) {
    const rpc_field *f = &fs[i];
    if (f->kind == RPC_K_NONE) continue;
    const ProtobufCFieldDescriptor *pf =
        protobuf_c_message_descriptor_get_field(d->pb, f->number);
    const char *src = CAT(m, pf->offset);
    char *dst = AT(plain, f->off);
    size_t cnt = pf->label == PROTOBUF_C_LABEL_REPEATED
                     ? *(const size_t *)CAT(m, pf->quantifier_offset)
                     : 0;
    if (f->aux != 0 && f->kind != RPC_K_OBOOL) *(size_t *)AT(plain, f->aux) = cnt;
    switch (f->kind) {
      case RPC_K_U64: memcpy(dst, src, sizeof(uint64_t)); break;
      case RPC_K_U32: memcpy(dst, src, sizeof(uint32_t)); break;
      case RPC_K_DBL: memcpy(dst, src, sizeof(double)); break;
      case RPC_K_ENUM: memcpy(dst, src, sizeof(int)); break;
      case RPC_K_BOOL: *(bool *)dst = *(const protobuf_c_boolean *)src != 0; break;
      case RPC_K_STR: {
        const char *s = *(const char *const *)src;
        *(const char **)dst = s != NULL ? s : "";
        break;
      }
      case RPC_K_BYTES: {
        const ProtobufCBinaryData *b = (const ProtobufCBinaryData *)src;
        *(slice *)dst = slice_make(b->data, b->len);
        break;
      }
      case RPC_K_MSG: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)src;
        void *out = NULL;
        if (sub != NULL) {
          out = arena_alloc_aligned(a, f->sub->size);
          decode_into(f->sub, sub, out, a);
        }
        *(void **)dst = out;
        break;
      }
      case RPC_K_RMSG: {
        ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)src;
        char *arr = NULL;
        if (cnt > 0) {
          arr = arena_alloc_aligned(a, cnt * f->sub->size);
          for (size_t k = 0; k < cnt; k++)
            decode_into(f->sub, v[k], arr + k * f->sub->size, a);
        }
        *(char **)dst = arr;
        break;
      }
      case RPC_K_RBYTES: {
        const ProtobufCBinaryData *v = *(const ProtobufCBinaryData *const *)src;
        slice *arr = NULL;
        if (cnt > 0) {
          arr = arena_alloc_aligned(a, cnt * sizeof *arr);
          for (size_t k = 0; k < cnt; k++) arr[k] = slice_make(v[k].data, v[k].len);
        }
        *(slice **)dst = arr;
        break;
      }
      case RPC_K_RU64:
        *(uint64_t **)dst = cnt > 0 ? *(uint64_t *const *)src : NULL;
        break;
      case RPC_K_OBOOL: {
        bool has = *(const int *)CAT(m, pf->quantifier_offset) == (int)f->number;
        *(bool *)AT(plain, f->aux) = has;
        *(bool *)dst = has && *(const protobuf_c_boolean *)src != 0;
        break;
      }
    }
  }
}

/* The plain message decoded from `pb` into arena `a`, behind its hold;
 * `owned` is the protobuf-c message the hold frees with it, or NULL when
 * `pb` lives in the arena itself. */
static void *hold_decode(const rpc_msgdef *d, arena *a, ProtobufCMessage *pb,
                         ProtobufCMessage *owned) {
  rpc_hold *h = arena_alloc_aligned(a, sizeof *h + d->size);
  h->a = a;
  h->pb = owned;
  h->magic = RPC_HOLD_MAGIC;
  void *plain = h + 1;
  decode_into(d, pb, plain, a);
  return plain;
}

void *rpc_wire_decode(const rpc_msgdef *d, ProtobufCMessage *pb) {
  return hold_decode(d, arena_new(), pb, pb);
}

/* protobuf-c's allocations of an unpacked message come from the arena
 * that will hold the plain message too: one or two blocks per message
 * instead of a malloc per field, and no walk to free them. */
static void *pb_arena_alloc(void *a, size_t n) {
  return arena_alloc_aligned(a, n);
}

static void pb_arena_free(void *a, void *p) { (void)a, (void)p; }

void *rpc_wire_unpack(const rpc_msgdef *d, const uint8_t *p, size_t n) {
  arena *a = arena_new();
  ProtobufCAllocator al = {pb_arena_alloc, pb_arena_free, a};
  ProtobufCMessage *pb = protobuf_c_message_unpack(d->pb, &al, n, p);
  if (pb == NULL) {
    arena_free(a);
    return NULL;
  }
  return hold_decode(d, a, pb, NULL);
}

void rpc_msg_free(void *msg) {
  if (msg == NULL) return;
  rpc_hold *h = (rpc_hold *)msg - 1;
  if (h->magic != RPC_HOLD_MAGIC) abort(); /* not a message from proto/ */
  h->magic = 0;
  if (h->pb != NULL) protobuf_c_message_free_unpacked(h->pb, NULL);
  arena_free(h->a);
}

/* ---- the self-check ---- */

static bool kind_matches(const rpc_field *f, const ProtobufCFieldDescriptor *pf) {
  bool rep = pf->label == PROTOBUF_C_LABEL_REPEATED;
  bool oneof = (pf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
  switch (f->kind) {
    case RPC_K_U64: return !rep && !oneof && pf->type == PROTOBUF_C_TYPE_UINT64;
    case RPC_K_U32: return !rep && !oneof && pf->type == PROTOBUF_C_TYPE_UINT32;
    case RPC_K_BOOL: return !rep && !oneof && pf->type == PROTOBUF_C_TYPE_BOOL;
    case RPC_K_DBL: return !rep && !oneof && pf->type == PROTOBUF_C_TYPE_DOUBLE;
    case RPC_K_ENUM: return !rep && !oneof && pf->type == PROTOBUF_C_TYPE_ENUM;
    case RPC_K_STR: return !rep && !oneof && pf->type == PROTOBUF_C_TYPE_STRING;
    case RPC_K_BYTES: return !rep && !oneof && pf->type == PROTOBUF_C_TYPE_BYTES;
    case RPC_K_MSG:
      return !rep && pf->type == PROTOBUF_C_TYPE_MESSAGE &&
             pf->descriptor == f->sub->pb;
    case RPC_K_RMSG:
      return rep && pf->type == PROTOBUF_C_TYPE_MESSAGE &&
             pf->descriptor == f->sub->pb;
    case RPC_K_RBYTES: return rep && pf->type == PROTOBUF_C_TYPE_BYTES;
    case RPC_K_RU64: return rep && pf->type == PROTOBUF_C_TYPE_UINT64;
    case RPC_K_OBOOL: return oneof && pf->type == PROTOBUF_C_TYPE_BOOL;
  }
  return false;
}

mica_err *rpc_wire_selfcheck(void) {
  for (size_t i = 0; i < sizeof all_defs / sizeof all_defs[0]; i++) {
    const rpc_msgdef *d = all_defs[i];
    size_t n, real = 0;
    const rpc_field *fs = d->fields(&n);
    for (size_t k = 0; k < n; k++) {
      const rpc_field *f = &fs[k];
      if (f->kind == RPC_K_NONE) continue;
      real++;
      const ProtobufCFieldDescriptor *pf =
          protobuf_c_message_descriptor_get_field(d->pb, f->number);
      if (pf == NULL || strcmp(pf->name, f->name) != 0)
        return err_new(MICA_INTERNAL, "%s: field %u (%s) is not in mica.proto "
                       "under that name", d->name, f->number, f->name);
      if (!kind_matches(f, pf))
        return err_new(MICA_INTERNAL, "%s.%s: type differs from mica.proto",
                       d->name, f->name);
      if (f->number == 1 && strcmp(f->name, "status") == 0 && f->off != 0)
        return err_new(MICA_INTERNAL, "%s: status is not the first member",
                       d->name);
    }
    if (real != d->pb->n_fields)
      return err_new(MICA_INTERNAL, "%s: %zu fields in C, %u in mica.proto",
                     d->name, real, d->pb->n_fields);
  }
  return NULL;
}

/* ---- bytes, for tests and tools ---- */

void rpc_msg_encode(const rpc_msgdef *d, const void *msg, buf *out) {
  arena *a = arena_new();
  const ProtobufCMessage *m = rpc_wire_encode(d, msg, a);
  size_t n = protobuf_c_message_get_packed_size(m);
  size_t at = out->len;
  buf_resize(out, at + n);
  protobuf_c_message_pack(m, out->data + at);
  arena_free(a);
}

mica_err *rpc_msg_decode(const rpc_msgdef *d, slice bytes, void **out) {
  *out = NULL;
  void *msg = rpc_wire_unpack(d, bytes.data, bytes.len);
  if (msg == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "%zu bytes do not decode as %s",
                   bytes.len, d->pb->name);
  mica_err *e = rpc_wire_check_text(d, msg);
  if (e != NULL) {
    rpc_msg_free(msg);
    return e;
  }
  *out = msg;
  return NULL;
}

size_t rpc_msg_size(const rpc_msgdef *d) { return d->size; }

const char *rpc_msg_name(const rpc_msgdef *d) { return d->pb->name; }

/* ---- the method table against mica.proto's services ---- */

mica_err *rpc_methods_selfcheck(void) {
  const ProtobufCServiceDescriptor *svcs[] = {&mica__v1__tablet_server__descriptor,
                                              &mica__v1__master__descriptor,
                                              &mica__v1__echo__descriptor};
  size_t n = 0, total = 0;
  const rpc_method *const *all = rpc_methods_all(&n);
  for (size_t i = 0; i < 3; i++) total += svcs[i]->n_methods;
  if (n != total)
    return err_new(MICA_INTERNAL, "%zu methods in the table, %zu in mica.proto",
                   n, total);
  for (size_t i = 0; i < n; i++) {
    const rpc_method *m = all[i];
    const ProtobufCMethodDescriptor *md = NULL;
    for (size_t k = 0; k < 3 && md == NULL; k++) {
      size_t sl = strlen(svcs[k]->name);
      if (m->path[0] != '/' || strncmp(m->path + 1, svcs[k]->name, sl) != 0 ||
          m->path[1 + sl] != '/')
        continue;
      md = protobuf_c_service_descriptor_get_method_by_name(svcs[k],
                                                            m->path + 2 + sl);
    }
    if (md == NULL)
      return err_new(MICA_INTERNAL, "method %s not in any service", m->path);
    if (md->input != m->request->pb || md->output != m->response->pb)
      return err_new(MICA_INTERNAL, "method %s: request or response type "
                     "differs from mica.proto", m->path);
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(m->response->pb, 1);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE ||
        f->label == PROTOBUF_C_LABEL_REPEATED ||
        f->descriptor != &mica__v1__status__descriptor ||
        strcmp(f->name, "status") != 0)
      return err_new(MICA_INTERNAL, "%s: response without Status as field 1",
                     m->path);
  }
  return NULL;
}
