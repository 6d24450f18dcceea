/* limits: the protocol's size and count limits, written once.
 *
 * mica.proto states these in its comments; this header is where code reads
 * them. The client checks them before sending so a caller hears about a bad
 * key without a round trip, the tablet server checks them again because
 * other clients exist, and the master caps what it answers. Changing one is
 * a protocol change: mica.proto's comments and docs/protocol.md change with
 * it.
 *
 * Thread-safety: constants only. */
#ifndef MICA_PROTO_LIMITS_H
#define MICA_PROTO_LIMITS_H

#include <stddef.h>

/* A key is 1..MICA_MAX_KEY bytes. */
#define MICA_MAX_KEY 16384u
/* A value is 0..MICA_MAX_VALUE bytes (8 MiB). */
#define MICA_MAX_VALUE ((size_t)8 << 20)
/* Keys and values of one Batch total at most this (32 MiB). */
#define MICA_MAX_BATCH_BYTES ((size_t)32 << 20)
/* Keys of one MultiGet request, over all its parts. */
#define MICA_MAX_MULTIGET_KEYS 10000u
/* Key and value bytes one MultiGet response may carry (48 MiB): the server
 * refuses a request whose answer would exceed it. */
#define MICA_MAX_MULTIGET_BYTES ((size_t)48 << 20)
/* Scan chunk bounds: defaults when the request says 0, and the most a
 * request may ask for (larger asks are clamped). */
#define MICA_SCAN_DEFAULT_CHUNK_BYTES (1u << 20)
#define MICA_SCAN_MAX_CHUNK_BYTES (16u << 20)
#define MICA_SCAN_DEFAULT_CHUNK_ROWS 1024u
#define MICA_SCAN_MAX_CHUNK_ROWS 65536u
/* Tablets one LookupTablets answer carries at most. */
#define MICA_MAX_LOOKUP_COUNT 1000u
/* A table name is 1..MICA_MAX_TABLE_NAME bytes of [A-Za-z0-9_.-]. */
#define MICA_MAX_TABLE_NAME 128u
/* Every gRPC message, both directions, both sides (64 MiB): room for the
 * largest batch and MultiGet answer with their framing. */
#define MICA_MAX_MESSAGE ((size_t)64 << 20)

#endif
