/* fz_json: the CLI's JSON reader (tools/mica/mjson.c).
 *
 * `mica status` parses whatever answers on the master's HTTP port with
 * mj_parse. The input is that text. A tree that parses is walked the way
 * the status printer walks it (members by name, numbers as integers,
 * type names), every string checked to be NUL-terminated at its length.
 *
 * Oracle besides "never crash": a refusal comes with a reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "tools/mica/mjson.h"

static void oracle_fail(const char *what) {
  fprintf(stderr, "fz_json: %s\n", what);
  abort();
}

static void walk(const mj_val *v, int depth) {
  if (depth > MJ_MAX_DEPTH + 1) oracle_fail("tree deeper than the limit");
  (void)mj_type_name(v->type);
  uint64_t u;
  (void)mj_u64(v, &u);
  switch (v->type) {
    case MJ_STRING:
      if (v->str == NULL || v->str[v->len] != '\0')
        oracle_fail("a string is not NUL-terminated at its length");
      break;
    case MJ_OBJECT:
      for (size_t i = 0; i < v->len; i++) {
        (void)mj_get(v, v->names[i]);
        walk(v->items[i], depth + 1);
      }
      (void)mj_get(v, "servers");
      break;
    case MJ_ARRAY:
      for (size_t i = 0; i < v->len; i++) walk(v->items[i], depth + 1);
      break;
    default:
      break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char why[256] = "";
  mj_val *v = mj_parse((const char *)data, size, why, sizeof(why));
  if (v == NULL) {
    if (why[0] == '\0') oracle_fail("a refusal without a reason");
    return 0;
  }
  walk(v, 0);
  mj_free(v);
  return 0;
}
