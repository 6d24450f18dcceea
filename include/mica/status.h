/* Mica status codes: the one list of outcomes for the whole project.
 *
 * Every layer (storage engine, RPC, master, client library, command line)
 * reports failure with one of these codes plus a message naming what was
 * wrong. The same numbers travel on the wire (proto/mica.proto mirrors this
 * list), so a code means the same thing in every process and language.
 *
 * Codes are appended, never renumbered or reused. */
#ifndef MICA_STATUS_H
#define MICA_STATUS_H

/* X(NAME, number, default message) */
#define MICA_STATUS_LIST(X)                                                   \
  X(OK,                 0, "ok")                                              \
  X(NOT_FOUND,          1, "not found")                                       \
  X(INVALID_ARGUMENT,   2, "invalid argument")                                \
  X(CORRUPTION,         3, "corruption")                                      \
  X(IO_ERROR,           4, "I/O error")                                       \
  X(UNAVAILABLE,        5, "unavailable")                                     \
  X(NOT_SUPPORTED,      6, "not supported")                                   \
  X(ALREADY_EXISTS,     7, "already exists")                                  \
  X(DEADLINE_EXCEEDED,  8, "deadline exceeded")                               \
  X(RESOURCE_EXHAUSTED, 9, "resource exhausted")                              \
  X(ABORTED,           10, "aborted")                                         \
  X(INTERNAL,          11, "internal error")                                  \
  X(CANCELLED,         12, "cancelled")                                       \
  X(NOT_SERVING,       13, "tablet not served here")                          \
  X(STALE_EPOCH,       14, "stale tablet epoch")                              \
  X(LEASE_EXPIRED,     15, "server lease expired")                            \
  X(OUT_OF_RANGE,      16, "key outside tablet range")                       \
  X(NOT_ACTIVE_MASTER, 17, "not the active master")                          \
  X(STALE_MASTER,      18, "command from a deposed master")                  \
  X(PERMISSION_DENIED, 19, "permission denied")                              \
  X(UNAUTHENTICATED,   20, "unauthenticated")

typedef enum mica_code {
#define MICA_STATUS_ENUM_(name, num, msg) MICA_##name = num,
  MICA_STATUS_LIST(MICA_STATUS_ENUM_)
#undef MICA_STATUS_ENUM_
  MICA_CODE_COUNT_ /* one past the largest code; not a code */
} mica_code;

/* "NOT_FOUND" for MICA_NOT_FOUND; "UNKNOWN" for a number not in the list.
 * The returned string is static. */
const char *mica_code_name(int code);

/* The default one-line message of a code ("not found"); static. */
const char *mica_code_message(int code);

#endif
