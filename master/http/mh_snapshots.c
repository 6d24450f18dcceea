/* mh_snapshots: GET /api/snapshots, the table snapshots the master keeps
 * (docs/storage.md, "Snapshots"; docs/http-api.md):
 *
 *   {"snapshots":[{"id":1,"name":"users-monday","table":"users",
 *                  "table_id":3,"created_ms":1700000000000,"state":"ready",
 *                  "tablets":4,"files":9,"bytes":123456}]}
 *
 * By name; snapshots being dropped are left out. Names are checked
 * ([A-Za-z0-9_.-]) when created, and go through mh_json_str anyway. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "master/http/mh_int.h"
#include "master/tsnap.h"

static void put(buf *out, const char *s) { buf_append(out, s, strlen(s)); }

static void putu(buf *out, const char *name, uint64_t v) {
  char b[96];
  int n = snprintf(b, sizeof(b), ",\"%s\":%" PRIu64, name, v);
  buf_append(out, b, (size_t)n);
}

void mh_render_snapshots(ms *core, buf *out) {
  ms_tsnap_info *v = NULL;
  size_t n = 0;
  mica_err *err = ms_tsnap_list(core, NULL, false, &v, &n);
  err_free(err);
  put(out, "{\"snapshots\":[");
  for (size_t i = 0; i < n; i++) {
    char b[48];
    snprintf(b, sizeof b, "%s{\"id\":%" PRIu64, i ? "," : "", v[i].id);
    put(out, b);
    put(out, ",\"name\":");
    mh_json_str(out, v[i].name);
    put(out, ",\"table\":");
    mh_json_str(out, v[i].table);
    putu(out, "table_id", v[i].table_id);
    putu(out, "created_ms", v[i].created_ms);
    put(out, ",\"state\":");
    mh_json_str(out, ms_tsnap_state_name(v[i].state));
    putu(out, "tablets", v[i].n_parts);
    putu(out, "files", v[i].files);
    putu(out, "bytes", v[i].bytes);
    put(out, "}");
  }
  put(out, "]}\n");
  ms_tsnap_infos_free(v, n);
}
