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
 * bytes go through the same decode (proto/: protobuf-c, then the
 * conversion to the plain structs of proto/wire.h) and dispatch as any
 * client's, and reach the handler when they decode (tabletserver/server/ts_*.c,
 * master/server/mserver.c, the engine and the master core behind them).
 * Streaming methods (Scan, EchoStream) are read for at most 64 chunks.
 *
 * Calls change the servers' state (tables made and dropped, tablets
 * closed, split and moved), as they would in a cluster, so the same input
 * may take other paths later in a run. To keep that state bounded, both
 * servers are stopped and started afresh on an empty data root every
 * RESET_EVERY inputs.
 *
 * Two guards (guard()): RegisterServer makes the master dial the address
 * it names (OpenTablet, CloseTablet), so a request naming anything other
 * than 127.0.0.1:<port> is sent with the address 127.0.0.1:9 instead
 * (nothing listens on the discard port): the fuzzer never makes the
 * process dial out of the machine. And Echo's delay_ms, which only makes
 * the server sleep, is capped at 2 ms.
 *
 * Oracles besides "never crash": no call ends with the transport status
 * INTERNAL (a handler that ended a call without answering, or an answer
 * that could not be encoded), and every answer decodes as the method's
 * response type.
 *
 * MICA_FUZZ_VERBOSE=1 prints each unary call's outcome (for replays).
 * MICA_FUZZ_RPC_SEEDS=DIR makes the program write its seed corpus (real
 * requests for the tablets it serves, encoded by rpc_msg_encode, plus an
 * empty request for every method) into DIR and exit: tools/fuzz --seeds. */
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
#define MAX_ECHO_DELAY_MS 2

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

/* The request bytes to send: the input, except that a RegisterServer
 * naming a non-loopback address names 127.0.0.1:9 instead, and an Echo
 * waits at most MAX_ECHO_DELAY_MS per answer (delay_ms only makes the
 * server sleep: a fuzzer that finds it would otherwise spend its time
 * waiting for deadlines). */
static void guard(const rpc_method *m, slice in, buf *out) {
  buf_append_slice(out, in);
  bool echo = m == &rpc_m_echo_echo || m == &rpc_m_echo_stream;
  if (m != &rpc_m_master_register_server && !echo) return;
  void *msg = NULL;
  mica_err *err = rpc_msg_decode(m->request, in, &msg);
  if (err) { /* does not decode: the server refuses it as it is */
    err_free(err);
    return;
  }
  bool changed = false;
  if (echo) {
    rpc_echo_request *r = msg;
    if (r->delay_ms > MAX_ECHO_DELAY_MS) {
      r->delay_ms = MAX_ECHO_DELAY_MS;
      changed = true;
    }
  } else {
    rpc_register_server_request *r = msg;
    if (!loopback_address(r->address)) {
      r->address = "127.0.0.1:9";
      changed = true;
    }
  }
  if (changed) {
    buf_clear(out);
    rpc_msg_encode(m->request, msg, out);
  }
  rpc_msg_free(msg);
}

static void check_transport(const rpc_method *m, const mica_err *err) {
  if (err != NULL && err_code(err) == MICA_INTERNAL) {
    fprintf(stderr, "fz_rpc: %s\n", m->path);
    die("a call ended with INTERNAL", err);
  }
}

static void call_stream(const rpc_method *m, rpc_channel *ch, slice req) {
  void *msg = NULL;
  mica_err *err = rpc_msg_decode(m->request, req, &msg);
  if (err) {
    /* Not a request: the server must refuse it before any stream. */
    err_free(err);
    buf resp = BUF_INIT;
    err = rpc_unary_raw(ch, m->path, req, CALL_TIMEOUT_MS, &resp);
    check_transport(m, err);
    err_free(err);
    buf_free(&resp);
    return;
  }
  rpc_stream *st = NULL;
  err = rpc_stream_open(ch, m, msg, CALL_TIMEOUT_MS, &st);
  for (int i = 0; err == NULL && i < MAX_CHUNKS; i++) {
    void *chunk = NULL;
    err = rpc_stream_next(st, &chunk);
    if (chunk == NULL) break;
    rpc_msg_free(chunk);
  }
  check_transport(m, err);
  err_free(err);
  rpc_stream_free(st);
  rpc_msg_free(msg);
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
    uint64_t t0 = env_now_micros(env_posix());
    mica_err *err =
        rpc_unary_raw(ch, m->path, buf_slice(&req), CALL_TIMEOUT_MS, &resp);
    check_transport(m, err);
    if (g_verbose)
      fprintf(stderr, "fz_rpc: %s: %s, %zu answer bytes in %.1f ms\n",
              m->path, err ? err_msg(err) : "OK", resp.len,
              (double)(env_now_micros(env_posix()) - t0) / 1000);
    if (err == NULL) {
      void *r = NULL;
      mica_err *derr = rpc_msg_decode(m->response, buf_slice(&resp), &r);
      if (derr) {
        fprintf(stderr, "fz_rpc: %s\n", m->path);
        die("an answer does not decode as the method's response", derr);
      }
      rpc_msg_free(r);
    }
    err_free(err);
    buf_free(&resp);
  }
  buf_free(&req);
  return 0;
}

/* ---- seeds ---- */

static const char *g_seed_dir;

static void seed(const rpc_method *m, const char *name, const void *msg) {
  size_t idx = 0;
  while (g_methods[idx] != m) idx++;
  buf b = BUF_INIT;
  buf_push(&b, (uint8_t)idx);
  if (msg != NULL) rpc_msg_encode(m->request, msg, &b);
  char path[4096];
  snprintf(path, sizeof(path), "%s/%02zu-%s", g_seed_dir, idx, name);
  mica_err *err = env_write_file_atomic(env_posix(), path, buf_slice(&b));
  if (err) die("write a seed", err);
  buf_free(&b);
}

#define S(lit) slice_make(lit, sizeof(lit) - 1)

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
  rpc_tablet_ref ref = {l.v[0].tablet_id, l.v[0].range_epoch,
                        l.v[0].assign_epoch};
  rpc_tablet_ref ref2 = {l.v[1].tablet_id, l.v[1].range_epoch,
                         l.v[1].assign_epoch};
  uint64_t server_id = l.v[0].server_id;
  ms_tablet_list_free(&l);

  rpc_put_request put = {.tablet = &ref, .key = S("apple"), .value = S("red")};
  seed(&rpc_m_ts_put, "Put", &put);
  rpc_get_request get = {.tablet = &ref, .key = S("apple")};
  seed(&rpc_m_ts_get, "Get", &get);
  rpc_delete_request del = {.tablet = &ref2, .key = S("zebra")};
  seed(&rpc_m_ts_delete, "Delete", &del);
  rpc_mutation mus[] = {{RPC_MUTATION_PUT, S("b1"), S("v")},
                        {RPC_MUTATION_DELETE, S("b2"), S("")}};
  rpc_batch_request batch = {.tablet = &ref, .mutations = mus,
                             .n_mutations = 2};
  seed(&rpc_m_ts_batch, "Batch", &batch);
  slice keys[] = {S("apple"), S("b1"), S("apple")};
  rpc_multi_get_part part = {.tablet = &ref, .keys = keys, .n_keys = 3};
  rpc_multi_get_request mget = {.parts = &part, .n_parts = 1};
  seed(&rpc_m_ts_multi_get, "MultiGet", &mget);

  rpc_scan_request scan = {.tablet = &ref, .start_key = S("a"), .limit = 10,
                           .chunk_max_rows = 2};
  seed(&rpc_m_ts_scan, "Scan", &scan);
  scan.reverse = true;
  scan.keys_only = true;
  scan.prefix = S("b");
  seed(&rpc_m_ts_scan, "Scan-reverse-prefix", &scan);

  uint64_t ids[] = {ref.tablet_id, ref2.tablet_id, 999};
  rpc_tablet_info_request info = {.tablet_ids = ids, .n_tablet_ids = 3};
  seed(&rpc_m_ts_tablet_info, "TabletInfo", &info);
  rpc_ts_split_tablet_request tsplit = {.tablet = &ref, .split_key = S("c")};
  seed(&rpc_m_ts_split_tablet, "SplitTablet", &tsplit);
  rpc_close_tablet_request close = {.tablet = &ref2};
  seed(&rpc_m_ts_close_tablet, "CloseTablet", &close);
  rpc_tablet_descriptor desc = {.tablet_id = 77, .table_id = 1,
                                .table_name = "t", .start_key = S("x"),
                                .range_epoch = 1};
  rpc_open_tablet_request open = {.desc = &desc, .assign_epoch = 1};
  seed(&rpc_m_ts_open_tablet, "OpenTablet", &open);

  slice splits[] = {S("g"), S("p")};
  rpc_create_table_request create = {.name = "u", .split_keys = splits,
                                     .n_split_keys = 2};
  seed(&rpc_m_master_create_table, "CreateTable", &create);
  rpc_table_options topts = {.compression = "zstd", .block_size = 8192,
                             .bloom_set = true, .bloom_bits_per_key = 4,
                             .salt_buckets = 4};
  create.options = &topts;
  seed(&rpc_m_master_create_table, "CreateTable-options", &create);
  topts.salt_buckets = 0;
  rpc_alter_table_request alter = {.table = "u", .options = &topts,
                                   .set_compression = true,
                                   .set_bloom_bits = true};
  seed(&rpc_m_master_alter_table, "AlterTable", &alter);
  rpc_drop_table_request drop = {.name = "t"};
  seed(&rpc_m_master_drop_table, "DropTable", &drop);
  rpc_lookup_tablets_request look = {.table = "t", .key = S("n"), .count = 2};
  seed(&rpc_m_master_lookup_tablets, "LookupTablets", &look);
  look.before = true;
  seed(&rpc_m_master_lookup_tablets, "LookupTablets-before", &look);
  rpc_list_tablets_request lt = {.table = "t", .include_retired = true};
  seed(&rpc_m_master_list_tablets, "ListTablets", &lt);
  rpc_list_servers_request ls = {.include_dead = true};
  seed(&rpc_m_master_list_servers, "ListServers", &ls);
  rpc_split_tablet_request split = {.tablet_id = ref.tablet_id,
                                    .split_key = S("f")};
  seed(&rpc_m_master_split_tablet, "SplitTablet", &split);
  rpc_move_tablet_request move = {.tablet_id = ref2.tablet_id};
  seed(&rpc_m_master_move_tablet, "MoveTablet", &move);
  rpc_merge_tablets_request merge = {.left_tablet_id = ref.tablet_id,
                                     .right_tablet_id = ref2.tablet_id};
  seed(&rpc_m_master_merge_tablets, "MergeTablets", &merge);
  rpc_balance_request bal = {.dry_run = true};
  seed(&rpc_m_master_balance, "Balance-dry-run", &bal);
  rpc_configure_request conf = {.has_balancer_enabled = true,
                                .balancer_enabled = false};
  seed(&rpc_m_master_configure, "Configure", &conf);
  rpc_drain_server_request drain = {.address = "127.0.0.1:9"};
  seed(&rpc_m_master_drain_server, "DrainServer", &drain);
  rpc_list_events_request ev = {.limit = 5};
  seed(&rpc_m_master_list_events, "ListEvents", &ev);
  rpc_register_server_request reg = {.address = "127.0.0.1:9",
                                     .incarnation = 1};
  seed(&rpc_m_master_register_server, "RegisterServer", &reg);
  rpc_heartbeat_request hb = {.server_id = server_id, .incarnation = 1};
  seed(&rpc_m_master_heartbeat, "Heartbeat", &hb);
  rpc_echo_request echo = {.payload = S("ping")};
  seed(&rpc_m_echo_echo, "Echo", &echo);
  echo.chunks = 3;
  seed(&rpc_m_echo_stream, "EchoStream", &echo);
  printf("rpc seeds written under %s\n", dir);
}
