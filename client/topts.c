/* topts: table options in libmica (docs/table-options.md): checked here
 * only as far as the wire needs (the master checks every range and names
 * the option), converted to and from TableOptions, and the AlterTable
 * call. */
#include <inttypes.h>
#include <string.h>

#include "client/client_int.h"

void mica_table_options_init(mica_table_options *o) {
  memset(o, 0, sizeof(*o));
  o->bloom_bits = -1;
}

mica_err *mcl_options_to_wire(const mica_table_options *o,
                              rpc_table_options *w) {
  memset(w, 0, sizeof(*w));
  w->compression = "";
  if (o == NULL) return NULL;
  if (o->bloom_bits < -1 || o->bloom_bits > 32)
    return err_new(MICA_INVALID_ARGUMENT,
                   "option bloom_bits: %d is outside 0..32 (-1 = default)",
                   o->bloom_bits);
  w->compression = o->compression != NULL ? o->compression : "";
  w->split_threshold_bytes = o->split_threshold_bytes;
  w->block_size = o->block_size;
  w->bloom_set = o->bloom_bits >= 0;
  w->bloom_bits_per_key = o->bloom_bits >= 0 ? (uint32_t)o->bloom_bits : 0;
  w->salt_buckets = o->salt_buckets;
  return NULL;
}

void mcl_options_from_wire(const rpc_table_options *w, uint8_t **p,
                           mica_table_info *out) {
  const char *comp = w != NULL ? w->compression : "";
  size_t n = strlen(comp);
  memcpy(*p, comp, n + 1);
  out->compression = (const char *)*p;
  *p += n + 1;
  out->split_threshold_bytes = w != NULL ? w->split_threshold_bytes : 0;
  out->block_size = w != NULL ? w->block_size : 0;
  out->bloom_bits = w != NULL && w->bloom_set ? (int)w->bloom_bits_per_key : -1;
  out->salt_buckets = w != NULL ? w->salt_buckets : 0;
}

int mica_alter_table(mica_client *c, const char *table,
                     const mica_table_options *opts, unsigned mask) {
  rpc_table_options wo;
  mica_err *e = mcl_check_table(table);
  if (e == NULL && opts == NULL)
    e = err_new(MICA_INVALID_ARGUMENT, "no options given");
  if (e == NULL && (mask & ~15u) != 0)
    e = err_new(MICA_INVALID_ARGUMENT, "unknown option bits 0x%x in mask",
                mask & ~15u);
  if (e == NULL) e = mcl_options_to_wire(opts, &wo);
  if (e != NULL) return mcl_finish(e);
  rpc_alter_table_request req = {0};
  req.table = table;
  req.options = &wo;
  req.set_compression = (mask & MICA_ALTER_COMPRESSION) != 0;
  req.set_split_threshold = (mask & MICA_ALTER_SPLIT_THRESHOLD) != 0;
  req.set_block_size = (mask & MICA_ALTER_BLOCK_SIZE) != 0;
  req.set_bloom_bits = (mask & MICA_ALTER_BLOOM_BITS) != 0;
  void *msg = NULL;
  mcl_retry r;
  mcl_retry_init(&r, c);
  e = mcl_master_call(c, &r, &rpc_m_master_alter_table, &req, &msg);
  mcl_retry_done(&r);
  rpc_msg_free(msg);
  return mcl_finish(e);
}
