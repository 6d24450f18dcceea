/* mh_opts: a table's options in the JSON API (docs/http-api.md), and the
 * unsalted view of a salted table's tablet boundaries, so that the page
 * shows keys as clients wrote them (docs/table-options.md). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "master/http/mh_int.h"

static void put(buf *out, const char *s) { buf_append(out, s, strlen(s)); }

void mh_render_opts(const ms_table_opts *o, buf *out) {
  char tmp[256];
  snprintf(tmp, sizeof tmp,
           "{\"compression\":\"%s\",\"split_threshold_bytes\":%" PRIu64
           ",\"block_size\":%" PRIu32 ",\"bloom_bits\":%d,\"salt_buckets\":%" PRIu32
           "}",
           mto_compression_name(o->compression), o->split_bytes, o->block_size,
           o->bloom_bits, o->salt_buckets);
  put(out, tmp);
}

/* {"bucket":B,"text":"<the key without its salt byte, escaped>"}; an
 * empty boundary (the start or end of the key space) is bucket 0 or the
 * last bucket with an empty text. */
static void unsalted(buf *out, const buf *key, bool is_end, uint32_t n) {
  char tmp[48];
  uint32_t b = key->len > 0 ? key->data[0] : (is_end ? n : 0);
  snprintf(tmp, sizeof tmp, "{\"bucket\":%" PRIu32 ",\"text\":", b);
  put(out, tmp);
  buf esc = BUF_INIT;
  if (key->len > 1) slice_escape(slice_make(key->data + 1, key->len - 1), &esc);
  buf_push(&esc, 0);
  mh_json_str(out, (const char *)esc.data);
  buf_free(&esc);
  put(out, "}");
}

void mh_render_unsalted(const ms_snap_tab *t, uint32_t n, buf *out) {
  if (n == 0) return;
  put(out, ",\"start_unsalted\":");
  unsalted(out, &t->start, false, n);
  put(out, ",\"end_unsalted\":");
  unsalted(out, &t->end, true, n);
}
