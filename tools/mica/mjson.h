/* mjson: a small, strict JSON reader for the `mica` CLI.
 *
 * `mica status` reads the master's JSON API (docs/http-api.md) over HTTP,
 * so the text is untrusted: it may be cut short, hostile or from another
 * program listening on the port. mj_parse accepts exactly RFC 8259 JSON
 * (UTF-8 only, no comments, no trailing commas, no leading zeros, no
 * control bytes inside strings, no lone surrogates, nothing after the value) and answers
 * everything else with a message naming the byte offset, never crashing.
 * Nesting is limited to MJ_MAX_DEPTH, objects to MJ_MAX_MEMBERS members and
 * the text to MJ_MAX_TEXT bytes, so no input exhausts the stack or runs the
 * parse for long.
 *
 * The result is a tree of mj_val nodes; strings are decoded (escapes
 * resolved, \u code points written as UTF-8) and NUL-terminated, with their
 * length kept because they may hold NUL bytes. Objects keep their members
 * in text order; a repeated name is refused, so a lookup is unambiguous.
 *
 * Thread-safety: no shared state; a tree is used by one thread at a time. */
#ifndef MICA_TOOLS_MICA_MJSON_H
#define MICA_TOOLS_MICA_MJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MJ_MAX_DEPTH 64
#define MJ_MAX_TEXT ((size_t)64 << 20)
#define MJ_MAX_MEMBERS 4096 /* per object; arrays are unbounded */

typedef enum mj_type {
  MJ_NULL,
  MJ_BOOL,
  MJ_NUMBER,
  MJ_STRING,
  MJ_ARRAY,
  MJ_OBJECT,
} mj_type;

typedef struct mj_val mj_val;
struct mj_val {
  mj_type type;
  bool boolean;   /* MJ_BOOL */
  double number;  /* MJ_NUMBER */
  char *str;      /* MJ_STRING: decoded bytes, NUL-terminated */
  size_t len;     /* MJ_STRING: byte count; MJ_ARRAY/MJ_OBJECT: items */
  mj_val **items; /* MJ_ARRAY/MJ_OBJECT: the elements or member values */
  char **names;   /* MJ_OBJECT: member names (decoded), parallel to items */
};

/* Parses `len` bytes of `text`. On success returns the tree (caller frees
 * with mj_free()); on failure returns NULL and writes a one-line reason
 * naming the byte offset into `why` (`why_len` bytes, NUL-terminated). */
mj_val *mj_parse(const char *text, size_t len, char *why, size_t why_len);

/* Frees a tree from mj_parse. Accepts NULL. */
void mj_free(mj_val *v);

/* The member `name` of object `obj`; NULL when `obj` is NULL, not an
 * object, or has no such member. Points into `obj`. */
const mj_val *mj_get(const mj_val *obj, const char *name);

/* True when `v` is a number that is a whole value in [0, 2^53] (the
 * integers a double holds exactly), stored in *out. */
bool mj_u64(const mj_val *v, uint64_t *out);

/* The name of a type, for messages: "null", "boolean", ... */
const char *mj_type_name(mj_type t);

#endif
