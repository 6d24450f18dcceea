/* arena: bump allocation for many small objects freed all at once.
 *
 * The memtable allocates its skiplist nodes, keys and values here; the
 * whole arena goes when the memtable does. Allocations are never freed
 * one by one.
 *
 * Thread-safety: arena_alloc needs external serialization (the memtable
 * has one writer at a time). arena_memory_usage may be read from any
 * thread at any time (it is an atomic counter). */
#ifndef MICA_COMMON_ARENA_H
#define MICA_COMMON_ARENA_H

#include <stddef.h>

typedef struct arena arena;

/* Caller frees with arena_free(). */
arena *arena_new(void);
void arena_free(arena *a); /* accepts NULL */

/* `n` bytes, no alignment promise. Valid until arena_free(). */
void *arena_alloc(arena *a, size_t n);
/* `n` bytes aligned for any pointer or 64-bit integer. */
void *arena_alloc_aligned(arena *a, size_t n);

/* Bytes taken from the system, including block overhead. */
size_t arena_memory_usage(const arena *a);

#endif
