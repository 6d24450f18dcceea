/* fz_rpc: every RPC request, decoded and handled by live in-process
 * servers.
 *
 * The process runs a real master (msrv, master/server) and a real tablet
 * server (ts_server, tabletserver/server) that registered with it, on
 * 127.0.0.1 with kernel-chosen ports, over one data root in the fuzzer's
 * private directory; table "t", cut at "m", is served before the first
 * input. The input is one call:
 *
 *   byte 0: the method, an index into rpc_methods_all() (modulo its size)
 *   the rest: the request message's bytes, as they travel on the wire
 *
 * sent over a real channel to the server of that method's service, so the
 * bytes go through the same decode and dispatch as any client's and reach
 * the handler when they decode (tabletserver/server/ts_*.c,
 * master/server/mserver.c, the engine and the master core behind them).
 * Streaming methods (Scan, EchoStream) are read for at most 64 chunks.
 *
 * Calls change the servers' state (tables made and dropped, tablets
 * closed, split and moved), as they would in a cluster, so the same input
 * may take other paths later in a run. To keep that state bounded, both
 * servers are stopped and started afresh on an empty data root every
 * RESET_EVERY inputs.
 *
 * One guard: RegisterServer makes the master dial the address it names
 * (OpenTablet, CloseTablet), so a request naming anything other than
 * 127.0.0.1:<port> is sent with the address 127.0.0.1:9 instead (nothing
 * listens on the discard port): the fuzzer never makes the process dial
 * out of the machine.
 *
 * Oracles besides "never crash": no call ends with the transport status
 * INTERNAL (a handler that ended a call without answering, or an answer
 * that could not be encoded), and every answer decodes as the method's
 * response type.
 *
 * MICA_FUZZ_VERBOSE=1 prints each unary call's outcome (for replays).
 * MICA_FUZZ_RPC_SEEDS=DIR makes the program write its seed corpus (real
 * requests for the tablets it serves, packed by protobuf-c, plus an empty
 * request for every method) into DIR and exit: tools/fuzz --seeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/log.h"
#include "fuzz/fuzz_util.h"
#include "master/server/mserver.h"
#include "proto/rpc.h"
#include "tabletserver/server/ts.h"

/* Inputs between restarts of both servers on an empty data root. */
#define RESET_EVERY 5000
/* Deadline of one call; handlers that wait are configured to give up far
 * sooner (wait_timeout_ms below). */
#define CALL_TIMEOUT_MS 5000
#define MAX_CHUNKS 64

static msrv *g_master;
static ts_server *g_ts;
static rpc_channel *g_mch, *g_tch;
static buf g_root = BUF_INIT;
static uint64_t g_runs;
static const rpc_method *const *g_methods;
static bool g_verbose; /* MICA_FUZZ_VERBOSE: print each call's outcome */
static size_t g_n_methods;

static void die(const char *what, const mica_err *err) {
  fprintf(stderr, "fz_rpc: %s%s%s\n", what, err ? ": " : "",
          err ? err_msg(err) : "");
  abort();
}

/* Waits up to 20 s for every tablet of table "t" to be served. */
static void wait_served(void) {
  ms *core = msrv_core(g_master);
  for (int i = 0; i < 2000; i++) {
    ms_tablet_list l = {0};
    mica_err *err = ms_list_tablets(core, "t", false, &l);
    if (err) die("list tablets", err);
    bool all = l.n > 0;
    for (size_t j = 0; j < l.n; j++) all = all && l.v[j].has_location;
    ms_tablet_list_free(&l);
    if (all) return;
    env_sleep_micros(env_posix(), 10000);
  }
  die("table t was not served within 20 s", NULL);
}

static void start_servers(void) {
  env *e = env_posix();
  mica_err *err = env_remove_tree(e, (const char *)g_root.data);
  if (!err) err = env_mkdirs(e, (const char *)g_root.data);
  if (err) die("reset the data root", err);

  msrv_options mo;
  msrv_options_init(&mo);
  mo.core.data_root = (const char *)g_root.data;
  mo.core.max_split_keys = 8;
  mo.rpc_threads = 1;
  mo.tick_us = 20000;
  mo.open_timeout_ms = 2000;
  mo.close_timeout_ms = 2000;
  mo.wait_timeout_ms = 300;
  mo.cluster_name = "fuzz";
  if ((err = msrv_start(&mo, &g_master)) != NULL) die("start the master", err);

  ts_config tc;
  ts_config_init(&tc);
  tc.data_dir = (const char *)g_root.data;
  tc.master = msrv_address(g_master);
  tc.memory_budget = 64u << 20;
  tc.block_cache = 4u << 20;
  tc.memtable_bytes = 1u << 20;
  tc.heartbeat_ms = 200;
  tc.threads = 1;
  tc.background_threads = 1;
  if ((err = ts_server_new(&tc, &g_ts)) != NULL ||
      (err = ts_server_start(g_ts)) != NULL)
    die("start the tablet server", err);

  slice split = slice_make("m", 1);
  err = ms_create_table(msrv_core(g_master), "t", &split, 1,
                        env_now_micros(e), NULL);
  if (err) die("create table t", err);
  wait_served();
  if ((err = rpc_channel_new(msrv_address(g_master), NULL, &g_mch)) != NULL ||
      (err = rpc_channel_new(ts_server_address(g_ts), NULL, &g_tch)) != NULL)
    die("open the channels", err);
}

static void stop_servers(void) {
  rpc_channel_free(g_mch);
  rpc_channel_free(g_tch);
  g_mch = g_tch = NULL;
  err_free(ts_server_stop(g_ts));
  msrv_stop(g_master);
  g_ts = NULL;
  g_master = NULL;
}

static void write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  setenv("GRPC_VERBOSITY", "NONE", 0);
  g_methods = rpc_methods_all(&g_n_methods);
  g_verbose = getenv("MICA_FUZZ_VERBOSE") != NULL;
  fz_path(&g_root, "root");
  start_servers();
  const char *seeds = getenv("MICA_FUZZ_RPC_SEEDS");
  if (seeds != NULL && *seeds != '\0') {
    write_seeds(seeds);
    stop_servers();
    exit(0);
  }
  atexit(stop_servers);
  return 0;
}

static bool is_master(const rpc_method *m) {
  return strncmp(m->path, "/mica.v1.Master/", 16) == 0;
}

/* 127.0.0.1:<1-5 digits>, the only addresses a registration may name. */
static bool loopback_address(const char *a) {
  if (a == NULL || strncmp(a, "127.0.0.1:", 10) != 0) return false;
  size_t n = strlen(a + 10);
  return n >= 1 && n <= 5 && strspn(a + 10, "0123456789") == n;
}

/* The request bytes to send: the input, or for a RegisterServer naming a
 * non-loopback address, the same request naming 127.0.0.1:9. */
static void guard(const rpc_method *m, slice in, buf *out) {
  buf_append_slice(out, in);
  if (m != &rpc_m_master_register_server) return;
  Mica__V1__RegisterServerRequest *r =
      mica__v1__register_server_request__unpack(NULL, in.len, in.data);
  if (r == NULL) return; /* does not decode: the server refuses it as is */
  if (!loopback_address(r->address)) {
    char *old = r->address;
    r->address = (char *)"127.0.0.1:9";
    buf_clear(out);
    buf_reserve(out, mica__v1__register_server_request__get_packed_size(r));
    out->len = mica__v1__register_server_request__pack(r, out->data);
    r->address = old;
  }
  mica__v1__register_server_request__free_unpacked(r, NULL);
}

static void check_transport(const rpc_method *m, const mica_err *err) {
  if (err != NULL && err_code(err) == MICA_INTERNAL) {
    fprintf(stderr, "fz_rpc: %s\n", m->path);
    die("a call ended with INTERNAL", err);
  }
}

static void call_stream(const rpc_method *m, rpc_channel *ch, slice req) {
  ProtobufCMessage *msg =
      protobuf_c_message_unpack(m->request, NULL, req.len, req.data);
  if (msg == NULL) {
    /* Not a request: the server must refuse it before any stream. */
    buf resp = BUF_INIT;
    mica_err *err = rpc_unary_raw(ch, m->path, req, CALL_TIMEOUT_MS, &resp);
    check_transport(m, err);
    err_free(err);
    buf_free(&resp);
    return;
  }
  rpc_stream *st = NULL;
  mica_err *err = rpc_stream_open(ch, m, msg, CALL_TIMEOUT_MS, &st);
  for (int i = 0; err == NULL && i < MAX_CHUNKS; i++) {
    ProtobufCMessage *chunk = NULL;
    err = rpc_stream_next(st, &chunk);
    if (chunk == NULL) break;
    rpc_msg_free(chunk);
  }
  check_transport(m, err);
  err_free(err);
  rpc_stream_free(st);
  protobuf_c_message_free_unpacked(msg, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  if (++g_runs % RESET_EVERY == 0) {
    stop_servers();
    start_servers();
  }
  const rpc_method *m = g_methods[data[0] % g_n_methods];
  rpc_channel *ch = is_master(m) ? g_mch : g_tch;
  buf req = BUF_INIT;
  guard(m, slice_make(data + 1, size - 1), &req);
  if (m->server_streaming) {
    call_stream(m, ch, buf_slice(&req));
  } else {
    buf resp = BUF_INIT;
    mica_err *err =
        rpc_unary_raw(ch, m->path, buf_slice(&req), CALL_TIMEOUT_MS, &resp);
    check_transport(m, err);
    if (g_verbose)
      fprintf(stderr, "fz_rpc: %s: %s, %zu answer bytes\n", m->path,
              err ? err_msg(err) : "OK", resp.len);
    if (err == NULL) {
      ProtobufCMessage *r =
          protobuf_c_message_unpack(m->response, NULL, resp.len, resp.data);
      if (r == NULL) {
        fprintf(stderr, "fz_rpc: %s\n", m->path);
        die("an answer does not decode as the method's response", NULL);
      }
      protobuf_c_message_free_unpacked(r, NULL);
    }
    err_free(err);
    buf_free(&resp);
  }
  buf_free(&req);
  return 0;
}

/* ---- seeds ---- */

static const char *g_seed_dir;

static void seed(const rpc_method *m, const char *name,
                 const ProtobufCMessage *msg) {
  size_t idx = 0;
  while (g_methods[idx] != m) idx++;
  buf b = BUF_INIT;
  buf_push(&b, (uint8_t)idx);
  if (msg != NULL) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    buf_reserve(&b, n);
    b.len += protobuf_c_message_pack(msg, b.data + b.len);
  }
  char path[4096];
  snprintf(path, sizeof(path), "%s/%02zu-%s", g_seed_dir, idx, name);
  mica_err *err =
      env_write_file_atomic(env_posix(), path, buf_slice(&b));
  if (err) die("write a seed", err);
  buf_free(&b);
}

#define BIN(s) ((ProtobufCBinaryData){sizeof(s) - 1, (uint8_t *)(s)})

static void write_seeds(const char *dir) {
  g_seed_dir = dir;
  mica_err *err = env_mkdirs(env_posix(), dir);
  if (err) die("make the seed directory", err);
  for (size_t i = 0; i < g_n_methods; i++) {
    const char *slash = strrchr(g_methods[i]->path, '/');
    char name[96];
    snprintf(name, sizeof(name), "%s-empty", slash + 1);
    seed(g_methods[i], name, NULL);
  }

  ms_tablet_list l = {0};
  err = ms_list_tablets(msrv_core(g_master), "t", false, &l);
  if (err || l.n < 2) die("list the tablets of t", err);
  Mica__V1__TabletRef ref = MICA__V1__TABLET_REF__INIT, ref2 = ref;
  ref.tablet_id = l.v[0].tablet_id;
  ref.range_epoch = l.v[0].range_epoch;
  ref.assign_epoch = l.v[0].assign_epoch;
  ref2.tablet_id = l.v[1].tablet_id;
  ref2.range_epoch = l.v[1].range_epoch;
  ref2.assign_epoch = l.v[1].assign_epoch;
  uint64_t server_id = l.v[0].server_id;
  ms_tablet_list_free(&l);

  Mica__V1__PutRequest put = MICA__V1__PUT_REQUEST__INIT;
  put.tablet = &ref;
  put.key = BIN("apple");
  put.value = BIN("red");
  seed(&rpc_m_ts_put, "Put", &put.base);
  Mica__V1__GetRequest get = MICA__V1__GET_REQUEST__INIT;
  get.tablet = &ref;
  get.key = BIN("apple");
  seed(&rpc_m_ts_get, "Get", &get.base);
  Mica__V1__DeleteRequest del = MICA__V1__DELETE_REQUEST__INIT;
  del.tablet = &ref2;
  del.key = BIN("zebra");
  seed(&rpc_m_ts_delete, "Delete", &del.base);

  Mica__V1__Mutation mu1 = MICA__V1__MUTATION__INIT, mu2 = mu1;
  mu1.kind = MICA__V1__MUTATION__KIND__KIND_PUT;
  mu1.key = BIN("b1");
  mu1.value = BIN("v");
  mu2.kind = MICA__V1__MUTATION__KIND__KIND_DELETE;
  mu2.key = BIN("b2");
  Mica__V1__Mutation *mus[] = {&mu1, &mu2};
  Mica__V1__BatchRequest batch = MICA__V1__BATCH_REQUEST__INIT;
  batch.tablet = &ref;
  batch.n_mutations = 2;
  batch.mutations = mus;
  seed(&rpc_m_ts_batch, "Batch", &batch.base);

  ProtobufCBinaryData keys[] = {BIN("apple"), BIN("b1"), BIN("apple")};
  Mica__V1__MultiGetPart part = MICA__V1__MULTI_GET_PART__INIT;
  part.tablet = &ref;
  part.n_keys = 3;
  part.keys = keys;
  Mica__V1__MultiGetPart *parts[] = {&part};
  Mica__V1__MultiGetRequest mget = MICA__V1__MULTI_GET_REQUEST__INIT;
  mget.n_parts = 1;
  mget.parts = parts;
  seed(&rpc_m_ts_multi_get, "MultiGet", &mget.base);

  Mica__V1__ScanRequest scan = MICA__V1__SCAN_REQUEST__INIT;
  scan.tablet = &ref;
  scan.start_key = BIN("a");
  scan.limit = 10;
  scan.chunk_max_rows = 2;
  seed(&rpc_m_ts_scan, "Scan", &scan.base);
  scan.reverse = 1;
  scan.keys_only = 1;
  scan.prefix = BIN("b");
  seed(&rpc_m_ts_scan, "Scan-reverse-prefix", &scan.base);

  uint64_t ids[] = {ref.tablet_id, ref2.tablet_id, 999};
  Mica__V1__TabletInfoRequest info = MICA__V1__TABLET_INFO_REQUEST__INIT;
  info.n_tablet_ids = 3;
  info.tablet_ids = ids;
  seed(&rpc_m_ts_tablet_info, "TabletInfo", &info.base);

  Mica__V1__TsSplitTabletRequest tsplit = MICA__V1__TS_SPLIT_TABLET_REQUEST__INIT;
  tsplit.tablet = &ref;
  tsplit.split_key = BIN("c");
  seed(&rpc_m_ts_split_tablet, "SplitTablet", &tsplit.base);
  Mica__V1__CloseTabletRequest close = MICA__V1__CLOSE_TABLET_REQUEST__INIT;
  close.tablet = &ref2;
  seed(&rpc_m_ts_close_tablet, "CloseTablet", &close.base);
  Mica__V1__TabletDescriptor desc = MICA__V1__TABLET_DESCRIPTOR__INIT;
  desc.tablet_id = 77;
  desc.table_id = 1;
  desc.table_name = (char *)"t";
  desc.start_key = BIN("x");
  desc.range_epoch = 1;
  Mica__V1__OpenTabletRequest open = MICA__V1__OPEN_TABLET_REQUEST__INIT;
  open.desc = &desc;
  open.assign_epoch = 1;
  seed(&rpc_m_ts_open_tablet, "OpenTablet", &open.base);

  ProtobufCBinaryData splits[] = {BIN("g"), BIN("p")};
  Mica__V1__CreateTableRequest create = MICA__V1__CREATE_TABLE_REQUEST__INIT;
  create.name = (char *)"u";
  create.n_split_keys = 2;
  create.split_keys = splits;
  seed(&rpc_m_master_create_table, "CreateTable", &create.base);
  Mica__V1__DropTableRequest drop = MICA__V1__DROP_TABLE_REQUEST__INIT;
  drop.name = (char *)"t";
  seed(&rpc_m_master_drop_table, "DropTable", &drop.base);
  Mica__V1__LookupTabletsRequest look = MICA__V1__LOOKUP_TABLETS_REQUEST__INIT;
  look.table = (char *)"t";
  look.key = BIN("n");
  look.count = 2;
  seed(&rpc_m_master_lookup_tablets, "LookupTablets", &look.base);
  look.before = 1;
  seed(&rpc_m_master_lookup_tablets, "LookupTablets-before", &look.base);
  Mica__V1__ListTabletsRequest lt = MICA__V1__LIST_TABLETS_REQUEST__INIT;
  lt.table = (char *)"t";
  lt.include_retired = 1;
  seed(&rpc_m_master_list_tablets, "ListTablets", &lt.base);
  Mica__V1__ListServersRequest ls = MICA__V1__LIST_SERVERS_REQUEST__INIT;
  ls.include_dead = 1;
  seed(&rpc_m_master_list_servers, "ListServers", &ls.base);
  Mica__V1__SplitTabletRequest split = MICA__V1__SPLIT_TABLET_REQUEST__INIT;
  split.tablet_id = ref.tablet_id;
  split.split_key = BIN("f");
  seed(&rpc_m_master_split_tablet, "SplitTablet", &split.base);
  Mica__V1__MoveTabletRequest move = MICA__V1__MOVE_TABLET_REQUEST__INIT;
  move.tablet_id = ref2.tablet_id;
  seed(&rpc_m_master_move_tablet, "MoveTablet", &move.base);
  Mica__V1__MergeTabletsRequest merge = MICA__V1__MERGE_TABLETS_REQUEST__INIT;
  merge.left_tablet_id = ref.tablet_id;
  merge.right_tablet_id = ref2.tablet_id;
  seed(&rpc_m_master_merge_tablets, "MergeTablets", &merge.base);
  Mica__V1__BalanceRequest bal = MICA__V1__BALANCE_REQUEST__INIT;
  bal.dry_run = 1;
  seed(&rpc_m_master_balance, "Balance-dry-run", &bal.base);
  Mica__V1__ConfigureRequest conf = MICA__V1__CONFIGURE_REQUEST__INIT;
  conf.balancer_case = MICA__V1__CONFIGURE_REQUEST__BALANCER_BALANCER_ENABLED;
  conf.balancer_enabled = 0;
  seed(&rpc_m_master_configure, "Configure", &conf.base);
  Mica__V1__ListEventsRequest ev = MICA__V1__LIST_EVENTS_REQUEST__INIT;
  ev.limit = 5;
  seed(&rpc_m_master_list_events, "ListEvents", &ev.base);
  Mica__V1__RegisterServerRequest reg = MICA__V1__REGISTER_SERVER_REQUEST__INIT;
  reg.address = (char *)"127.0.0.1:9";
  reg.incarnation = 1;
  seed(&rpc_m_master_register_server, "RegisterServer", &reg.base);
  Mica__V1__HeartbeatRequest hb = MICA__V1__HEARTBEAT_REQUEST__INIT;
  hb.server_id = server_id;
  hb.incarnation = 1;
  seed(&rpc_m_master_heartbeat, "Heartbeat", &hb.base);
  Mica__V1__EchoRequest echo = MICA__V1__ECHO_REQUEST__INIT;
  echo.payload = BIN("ping");
  seed(&rpc_m_echo_echo, "Echo", &echo.base);
  echo.chunks = 3;
  seed(&rpc_m_echo_stream, "EchoStream", &echo.base);
  printf("rpc seeds written under %s\n", dir);
}
