/* rpc_common: byte buffers, decoding, deadlines and arguments shared by the
 * server and client halves of the RPC module (see rpc_internal.h). */
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "common/log.h"
#include "proto/rpc_absl.h"
#include "proto/rpc_internal.h"
#include "proto/wire_int.h"

grpc_byte_buffer *rpc_pack(const rpc_msgdef *d, const void *plain) {
  arena *a = arena_new();
  const ProtobufCMessage *m = rpc_wire_encode(d, plain, a);
  size_t n = protobuf_c_message_get_packed_size(m);
  grpc_slice s = grpc_slice_malloc(n);
  protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  arena_free(a);
  return bb;
}

grpc_byte_buffer *rpc_pack_bytes(slice data) {
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)data.data,
                                               data.len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

bool rpc_bytes_view(grpc_byte_buffer *bb, slice *out) {
  if (bb->type != GRPC_BB_RAW ||
      bb->data.raw.compression != GRPC_COMPRESS_NONE ||
      bb->data.raw.slice_buffer.count > 1)
    return false;
  if (bb->data.raw.slice_buffer.count == 0) {
    *out = slice_make((const uint8_t *)"", 0);
  } else {
    /* Through a pointer: a small slice keeps its bytes inside the
     * grpc_slice itself, so a copy of the struct would not do. */
    const grpc_slice *s = &bb->data.raw.slice_buffer.slices[0];
    *out = slice_make(GRPC_SLICE_START_PTR(*s), GRPC_SLICE_LENGTH(*s));
  }
  return true;
}

/* Runs `fn` over the bytes of `bb` as one contiguous range, copying only
 * when the buffer is made of several slices. False when the buffer cannot
 * be read (a compressed message that does not decompress). */
static bool with_bytes(grpc_byte_buffer *bb,
                       void (*fn)(const uint8_t *p, size_t n, void *arg),
                       void *arg) {
  /* The common case, an uncompressed message in one slice, is read in
   * place: no copy and no allocation per request. */
  slice v;
  if (rpc_bytes_view(bb, &v)) {
    fn(v.data, v.len, arg);
    return true;
  }
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return false;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  fn(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), arg);
  grpc_slice_unref(s);
  return true;
}

struct unpack_arg {
  const rpc_msgdef *d;
  void *msg; /* plain, decoded */
  size_t len;
};

static void unpack_fn(const uint8_t *p, size_t n, void *arg) {
  struct unpack_arg *a = arg;
  a->len = n;
  a->msg = rpc_wire_unpack(a->d, p, n);
}

void *rpc_unpack(const rpc_msgdef *d, grpc_byte_buffer *bb, const char *what,
                 mica_err **err) {
  struct unpack_arg a = {d, NULL, 0};
  *err = NULL;
  if (!with_bytes(bb, unpack_fn, &a)) {
    *err = err_new(MICA_INVALID_ARGUMENT, "%s: unreadable message", what);
    return NULL;
  }
  if (a.msg == NULL)
    *err = err_new(MICA_INVALID_ARGUMENT,
                   "%s: %zu bytes do not decode as %s", what, a.len,
                   d->pb->name);
  if (a.msg == NULL) return NULL;
  void *msg = a.msg;
  mica_err *bad = rpc_wire_check_text(d, msg);
  if (bad != NULL) {
    rpc_msg_free(msg);
    *err = err_wrap(bad, "%s", what);
    return NULL;
  }
  return msg;
}

static void append_fn(const uint8_t *p, size_t n, void *arg) {
  if (n > 0)
    buf_append(arg, p, n);
}

bool rpc_bytes_of(grpc_byte_buffer *bb, buf *out) {
  return with_bytes(bb, append_fn, out);
}

gpr_timespec rpc_deadline(int64_t timeout_ms) {
  if (timeout_ms <= 0)
    return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

static void int_arg(grpc_arg *a, const char *key, int value) {
  a->type = GRPC_ARG_INTEGER;
  a->key = (char *)key;
  a->value.integer = value;
}

grpc_channel_args rpc_args(grpc_arg *storage, size_t max, bool client) {
  int lim = max > (size_t)INT_MAX ? INT_MAX : (int)max;
  size_t n = 0;
  int_arg(&storage[n++], GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, lim);
  int_arg(&storage[n++], GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, lim);
  int_arg(&storage[n++], GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (client) {
    /* Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also uses it as the
     * connection attempt's timeout, and 100 ms fails handshakes on a busy
     * machine. */
    int_arg(&storage[n++], GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    int_arg(&storage[n++], GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    /* Each channel owns its connection. With gRPC 1.51's process-wide
     * subchannel pool, a channel opened while its server was down could
     * share a subchannel stuck in TRANSIENT_FAILURE and keep failing with
     * "connection refused" long after the server came back (seen as a
     * flaky master-restart test; 24 of 24 runs passed with this set). */
    int_arg(&storage[n++], GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  grpc_channel_args args = {n, storage};
  return args;
}

/* gRPC's own diagnostics go through Mica's log, one line each in the same
 * format as everything else. Its errors are mostly about conditions this
 * module also reports as a mica_err (a port that will not bind, a peer that
 * went away), so they are warnings here. */
static void grpc_log_line(gpr_log_func_args *a) {
  int level = a->severity == GPR_LOG_SEVERITY_ERROR ? LOG_WARN : LOG_DEBUG;
  log_msg(level, "grpc %s:%d: %s", a->file, a->line, a->message);
}

static void install_log(void) { gpr_set_log_function(grpc_log_line); }

static void lib_once(void) {
  rpc_absl_tune();
  install_log();
}

void rpc_lib_ref(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, lib_once);
  grpc_init();
}

void rpc_lib_unref(void) { grpc_shutdown(); }
