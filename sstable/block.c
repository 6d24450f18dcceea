/* block: building and decoding the prefix-compressed blocks that hold an
 * SSTable's entries (data blocks) and its index.
 *
 * An entry is varint32 shared, varint32 unshared, varint32 value length,
 * then the key bytes past the shared prefix and the value. Every
 * `restart_interval` entries the key is written whole (shared = 0) and its
 * offset recorded in the restart array at the end of the block, so a seek
 * binary-searches the restarts and then scans at most one run, and a step
 * backwards rescans one run from its restart.
 *
 * Decoding trusts nothing: the checksum has already passed by the time a
 * block gets here, but every length is still checked against the block's
 * end, so even a block that collides with its checksum cannot make the
 * cursor read outside it. */
#include <string.h>

#include "common/ikey.h"
#include "sstable/sst_int.h"

/* ---- building ---- */

void sst_bb_init(sst_block_builder *bb, int restart_interval) {
  memset(bb, 0, sizeof *bb);
  bb->restart_interval = restart_interval;
  put_fixed32(&bb->restarts, 0);
}

void sst_bb_free(sst_block_builder *bb) {
  buf_free(&bb->data);
  buf_free(&bb->restarts);
  buf_free(&bb->last_key);
}

void sst_bb_reset(sst_block_builder *bb) {
  buf_clear(&bb->data);
  buf_clear(&bb->restarts);
  buf_clear(&bb->last_key);
  put_fixed32(&bb->restarts, 0);
  bb->counter = 0;
  bb->entries = 0;
}

static inline uint8_t *encode_varint32(uint8_t *p, uint32_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* Called once per entry on every flush and compaction: it reserves once
 * and writes in place rather than appending field by field. */
void sst_bb_add(sst_block_builder *bb, slice key, slice value) {
  size_t shared = 0;
  if (bb->counter < bb->restart_interval) {
    size_t n = bb->last_key.len < key.len ? bb->last_key.len : key.len;
    while (shared < n && bb->last_key.data[shared] == key.data[shared])
      shared++;
  } else {
    put_fixed32(&bb->restarts, (uint32_t)bb->data.len);
    bb->counter = 0;
  }
  size_t unshared = key.len - shared;
  buf_reserve(&bb->data, 15 + unshared + value.len);
  uint8_t *p = bb->data.data + bb->data.len;
  p = encode_varint32(p, (uint32_t)shared);
  p = encode_varint32(p, (uint32_t)unshared);
  p = encode_varint32(p, (uint32_t)value.len);
  memcpy(p, key.data + shared, unshared);
  p += unshared;
  if (value.len > 0) memcpy(p, value.data, value.len);
  p += value.len;
  bb->data.len = (size_t)(p - bb->data.data);
  bb->last_key.len = shared;
  buf_append(&bb->last_key, key.data + shared, unshared);
  bb->counter++;
  bb->entries++;
}

slice sst_bb_finish(sst_block_builder *bb) {
  buf_append(&bb->data, bb->restarts.data, bb->restarts.len);
  put_fixed32(&bb->data, (uint32_t)(bb->restarts.len / 4));
  return buf_slice(&bb->data);
}

/* ---- decoding ---- */

bool sst_block_parse(const uint8_t *data, size_t size, sst_block *b) {
  if (size < 4 || size > SST_MAX_BLOCK_BYTES) return false;
  uint32_t n = decode_fixed32(data + size - 4);
  if (n == 0 || (uint64_t)n * 4 > size - 4) return false;
  b->data = data;
  b->size = size;
  b->nrestarts = n;
  b->restart_off = (uint32_t)(size - 4 - (size_t)n * 4);
  /* Restart offsets must rise and stay inside the entries: the binary
   * search and the backward scan depend on it. */
  uint32_t prev = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t r = decode_fixed32(data + b->restart_off + (size_t)i * 4);
    if (i == 0 ? r != 0 : (r <= prev || r >= b->restart_off)) return false;
    prev = r;
  }
  return true;
}

static inline uint32_t restart_point(const sst_block *b, uint32_t i) {
  return decode_fixed32(b->data + b->restart_off + (size_t)i * 4);
}

bool sst_block_restarts_ok(const sst_block *b) {
  const uint8_t *limit = b->data + b->restart_off;
  uint32_t off = 0, next_restart = 0;
  while (off < b->restart_off) {
    const uint8_t *p = b->data + off;
    uint32_t shared, unshared, vlen;
    if ((p = get_varint32(p, limit, &shared)) == NULL ||
        (p = get_varint32(p, limit, &unshared)) == NULL ||
        (p = get_varint32(p, limit, &vlen)) == NULL ||
        (uint64_t)unshared + vlen > (uint64_t)(limit - p))
      return false;
    if (next_restart < b->nrestarts) {
      uint32_t r = restart_point(b, next_restart);
      if (r < off) return false; /* inside the previous entry */
      if (r == off) {
        if (shared != 0) return false;
        next_restart++;
      }
    }
    off = (uint32_t)(p + unshared + vlen - b->data);
  }
  return next_restart == b->nrestarts;
}

static inline int key_cmp(const uint8_t *a, size_t alen, slice b) {
  return sst_ikey_cmp(a, alen, b.data, b.len);
}

static inline const uint8_t *varint32_fast(const uint8_t *p,
                                           const uint8_t *limit, uint32_t *v) {
  if (p < limit && *p < 0x80) {
    *v = *p;
    return p + 1;
  }
  return get_varint32(p, limit, v);
}

/* Decodes the entry at c->next into the cursor, extending c->key. */
static bool decode_next(sst_block_cursor *c) {
  const sst_block *b = c->b;
  const uint8_t *p = b->data + c->next;
  const uint8_t *limit = b->data + b->restart_off;
  uint32_t shared, unshared, vlen;
  if ((p = varint32_fast(p, limit, &shared)) == NULL ||
      (p = varint32_fast(p, limit, &unshared)) == NULL ||
      (p = varint32_fast(p, limit, &vlen)) == NULL ||
      shared > c->key.len || (uint64_t)unshared + vlen > (uint64_t)(limit - p)) {
    c->corrupt = true;
    return false;
  }
  c->key.len = shared;
  if (c->key.cap < (size_t)shared + unshared) buf_reserve(&c->key, unshared);
  if (unshared > 0) memcpy(c->key.data + shared, p, unshared);
  c->key.len = (size_t)shared + unshared;
  /* Every key in a block is an internal key; consumers compare them with
   * ikey_cmp, which needs the trailer, and read its kind. */
  if (c->key.len < IKEY_TRAILER ||
      c->key.data[c->key.len - IKEY_TRAILER] > IKEY_PUT) {
    c->corrupt = true;
    return false;
  }
  c->cur = c->next;
  c->value = slice_make(p + unshared, vlen);
  c->next = (uint32_t)(p + unshared + vlen - b->data);
  while (c->ridx + 1 < b->nrestarts && restart_point(b, c->ridx + 1) <= c->cur)
    c->ridx++;
  return true;
}

static void invalidate(sst_block_cursor *c) {
  c->cur = c->next = c->b->restart_off;
  c->ridx = c->b->nrestarts - 1;
}

/* Positions at restart point `i` without decoding the entry there. */
static void to_restart(sst_block_cursor *c, uint32_t i) {
  c->ridx = i;
  c->next = restart_point(c->b, i);
  c->key.len = 0;
}

void sst_bc_init(sst_block_cursor *c, const sst_block *b) {
  c->key = (buf)BUF_INIT;
  sst_bc_set(c, b);
}

void sst_bc_set(sst_block_cursor *c, const sst_block *b) {
  c->b = b;
  c->corrupt = false;
  c->key.len = 0;
  c->value = slice_make(NULL, 0);
  if (b != NULL) invalidate(c);
}

void sst_bc_free(sst_block_cursor *c) { buf_free(&c->key); }

void sst_bc_first(sst_block_cursor *c) {
  if (c->corrupt) return;
  to_restart(c, 0);
  if (c->next >= c->b->restart_off) {
    invalidate(c);
    return;
  }
  decode_next(c);
}

void sst_bc_next(sst_block_cursor *c) {
  if (!sst_bc_valid(c)) return;
  if (c->next >= c->b->restart_off) {
    invalidate(c);
    return;
  }
  decode_next(c);
}

void sst_bc_last(sst_block_cursor *c) {
  if (c->corrupt) return;
  to_restart(c, c->b->nrestarts - 1);
  if (c->next >= c->b->restart_off) {
    invalidate(c);
    return;
  }
  while (decode_next(c) && c->next < c->b->restart_off) {
  }
}

void sst_bc_prev(sst_block_cursor *c) {
  if (!sst_bc_valid(c)) return;
  uint32_t target = c->cur;
  uint32_t i = c->ridx;
  while (restart_point(c->b, i) >= target) {
    if (i == 0) {
      invalidate(c);
      return;
    }
    i--;
  }
  to_restart(c, i);
  while (decode_next(c) && c->next < target) {
  }
}

void sst_bc_seek(sst_block_cursor *c, slice target) {
  if (c->corrupt) return;
  const sst_block *b = c->b;
  /* Last restart whose key is < target; the answer is in its run or is the
   * first key of the next run. */
  uint32_t lo = 0, hi = b->nrestarts - 1;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    const uint8_t *p = b->data + restart_point(b, mid);
    const uint8_t *limit = b->data + b->restart_off;
    uint32_t shared, unshared, vlen;
    if ((p = varint32_fast(p, limit, &shared)) == NULL ||
        (p = varint32_fast(p, limit, &unshared)) == NULL ||
        (p = varint32_fast(p, limit, &vlen)) == NULL || shared != 0 ||
        unshared > (uint64_t)(limit - p) || unshared < IKEY_TRAILER) {
      c->corrupt = true;
      return;
    }
    if (key_cmp(p, unshared, target) < 0)
      lo = mid;
    else
      hi = mid - 1;
  }
  to_restart(c, lo);
  if (c->next >= b->restart_off) {
    invalidate(c);
    return;
  }
  while (decode_next(c)) {
    if (key_cmp(c->key.data, c->key.len, target) >= 0) return;
    if (c->next >= b->restart_off) {
      invalidate(c);
      return;
    }
  }
}
