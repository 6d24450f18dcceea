/* mopts: table options on the master's wire (docs/table-options.md):
 * TableOptions to and from the core's ms_table_opts, and the AlterTable
 * handler. The core checks ranges (mto_check); this file checks only what
 * cannot be represented in ms_table_opts (an unknown compression name, a
 * bloom value beyond an int). */
#include <inttypes.h>
#include <string.h>

#include "common/arena.h"
#include "common/log.h"
#include "master/server/msrv_int.h"

rpc_table_options *msrv_opts_msg(arena *a, const ms_table_opts *o) {
  rpc_table_options *m = arena_alloc_aligned(a, sizeof(*m));
  memset(m, 0, sizeof(*m));
  m->compression =
      o->compression == MTO_COMP_DEFAULT ? "" : mto_compression_name(o->compression);
  m->split_threshold_bytes = o->split_bytes;
  m->block_size = o->block_size;
  m->bloom_set = o->bloom_bits >= 0;
  m->bloom_bits_per_key = o->bloom_bits >= 0 ? (uint32_t)o->bloom_bits : 0;
  m->salt_buckets = o->salt_buckets;
  return m;
}

mica_err *msrv_opts_from_wire(const rpc_table_options *w, ms_table_opts *o) {
  mto_init(o);
  if (w == NULL) return NULL;
  if (!mto_compression_parse(w->compression, &o->compression))
    return err_new(MICA_INVALID_ARGUMENT,
                   "option compression: \"%.64s\" is not none, lz4 or zstd "
                   "(or empty for the servers' default)",
                   w->compression);
  if (w->bloom_set && w->bloom_bits_per_key > MTO_MAX_BLOOM_BITS)
    return err_new(MICA_INVALID_ARGUMENT,
                   "option bloom_bits: %" PRIu32 " is outside 0..32",
                   w->bloom_bits_per_key);
  if (w->salt_buckets > MTO_MAX_SALT)
    return err_new(MICA_INVALID_ARGUMENT,
                   "option salt_buckets: %" PRIu32
                   " is outside 2..255 (0 = unsalted)",
                   w->salt_buckets);
  o->split_bytes = w->split_threshold_bytes;
  o->block_size = w->block_size;
  o->bloom_bits = w->bloom_set ? (int)w->bloom_bits_per_key : -1;
  o->salt_buckets = w->salt_buckets;
  return mto_check(o);
}

void msrv_h_alter_table(rpc_call *call, const void *req, void *ctx) {
  msrv *s = ctx;
  const rpc_alter_table_request *r = req;
  ms_table_opts o;
  mica_err *err = msrv_opts_from_wire(r->options, &o);
  unsigned mask = (r->set_compression ? MS_ALTER_COMPRESSION : 0) |
                  (r->set_split_threshold ? MS_ALTER_SPLIT : 0) |
                  (r->set_block_size ? MS_ALTER_BLOCK_SIZE : 0) |
                  (r->set_bloom_bits ? MS_ALTER_BLOOM : 0);
  if (err == NULL)
    err = ms_alter_table(s->core, r->table, &o, mask, msrv_now(s), NULL);
  arena *a = arena_new();
  rpc_alter_table_response resp = {0};
  rpc_status st;
  memset(&st, 0, sizeof st);
  rpc_status_set(&st, err);
  resp.status = &st;
  ms_table_info *v = NULL;
  size_t n = 0;
  if (err == NULL) {
    LOG_I("table %s altered", r->table);
    mica_err *lerr = ms_list_tables(s->core, &v, &n);
    err_free(lerr);
    for (size_t i = 0; i < n; i++) {
      if (strcmp(v[i].name, r->table) != 0) continue;
      rpc_table_info *t = arena_alloc_aligned(a, sizeof(*t));
      memset(t, 0, sizeof(*t));
      t->table_id = v[i].table_id;
      t->name = v[i].name;
      t->tablet_count = v[i].tablet_count;
      t->approx_bytes = v[i].bytes;
      t->approx_keys = v[i].keys;
      t->created_ms = v[i].created_ms;
      t->options = msrv_opts_msg(a, &v[i].opts);
      resp.table = t;
    }
  }
  rpc_call_reply(call, &resp);
  ms_table_infos_free(v, n);
  arena_free(a);
  err_free(err);
}
