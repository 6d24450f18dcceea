/* xp_v1: version 1 EXPORT files for tests (xp_v1.h). */
#include "tests/master/server/xp_v1.h"

#include "common/coding.h"
#include "common/crc32c.h"

/* Version 1's payload, field by field as docs/storage.md gave it before
 * levels: per SSTable file index, lo, has_hi, hi and nothing after. */
void xp_v1_payload(const xport *x, buf *p) {
  put_length_prefixed(p, slice_from_str(x->table));
  put_length_prefixed(p, slice_from_str(x->snapshot));
  put_varint64(p, x->created_ms);
  mto_encode(&x->opts, p);
  put_varint64(p, XP_CHUNK);
  put_varint64(p, x->n_files);
  for (size_t i = 0; i < x->n_files; i++) {
    put_length_prefixed(p, slice_from_str(x->files[i].name));
    put_varint64(p, x->files[i].size);
    for (size_t k = 0; k < x->files[i].n_crc; k++)
      put_fixed32(p, x->files[i].crc[k]);
  }
  put_varint64(p, x->n_parts);
  for (size_t i = 0; i < x->n_parts; i++) {
    const xp_part *t = &x->parts[i];
    put_length_prefixed(p, buf_slice(&t->start));
    put_length_prefixed(p, buf_slice(&t->end));
    put_varint64(p, t->last_seq);
    put_varint64(p, t->n_ssts);
    for (size_t k = 0; k < t->n_ssts; k++) {
      put_varint64(p, t->ssts[k].file);
      put_length_prefixed(p, buf_slice(&t->ssts[k].lo));
      buf_append(p, t->ssts[k].has_hi ? "\1" : "\0", 1);
      put_length_prefixed(p, buf_slice(&t->ssts[k].hi));
    }
  }
}

/* Frames `payload` as an EXPORT file of `version`. */
void xp_frame(const buf *payload, uint32_t version, buf *out) {
  buf_append(out, XP_MAGIC, 8);
  put_fixed32(out, version);
  put_fixed32(out, (uint32_t)payload->len);
  put_fixed32(out, crc32c_mask(crc32c_value(payload->data, payload->len)));
  buf_append(out, payload->data, payload->len);
}

