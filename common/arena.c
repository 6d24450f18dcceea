/* arena: bump allocator over 4 KiB blocks. Requests over a quarter of a
 * block get a block of their own so the tail of the current block is not
 * wasted on them. */
#include "common/arena.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/slice.h"

#define BLOCK_SIZE 4096

struct block {
  struct block *next;
  max_align_t data[]; /* payload */
};

struct arena {
  uint8_t *ptr;      /* next free byte in the current block */
  size_t remaining;  /* bytes left in the current block */
  struct block *blocks;
  _Atomic size_t usage;
};

arena *arena_new(void) { return xcalloc(1, sizeof(arena)); }

void arena_free(arena *a) {
  if (a == NULL) return;
  struct block *b = a->blocks;
  while (b) {
    struct block *next = b->next;
    free(b);
    b = next;
  }
  free(a);
}

static uint8_t *new_block(arena *a, size_t n) {
  struct block *b = xmalloc(sizeof(struct block) + n);
  b->next = a->blocks;
  a->blocks = b;
  atomic_fetch_add_explicit(&a->usage, sizeof(struct block) + n,
                            memory_order_relaxed);
  return (uint8_t *)b->data;
}

static void *fallback(arena *a, size_t n) {
  if (n > BLOCK_SIZE / 4) return new_block(a, n);
  a->ptr = new_block(a, BLOCK_SIZE);
  a->remaining = BLOCK_SIZE;
  uint8_t *r = a->ptr;
  a->ptr += n;
  a->remaining -= n;
  return r;
}

void *arena_alloc(arena *a, size_t n) {
  if (n == 0) n = 1;
  if (n <= a->remaining) {
    uint8_t *r = a->ptr;
    a->ptr += n;
    a->remaining -= n;
    return r;
  }
  return fallback(a, n);
}

void *arena_alloc_aligned(arena *a, size_t n) {
  const size_t align = sizeof(max_align_t) > 8 ? 8 : sizeof(max_align_t);
  size_t slop = (align - ((uintptr_t)a->ptr & (align - 1))) & (align - 1);
  if (n == 0) n = 1;
  if (n + slop <= a->remaining) {
    uint8_t *r = a->ptr + slop;
    a->ptr += n + slop;
    a->remaining -= n + slop;
    return r;
  }
  return fallback(a, n); /* block starts are max_align_t aligned */
}

size_t arena_memory_usage(const arena *a) {
  return atomic_load_explicit(&a->usage, memory_order_relaxed);
}
