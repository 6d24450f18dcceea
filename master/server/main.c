/* mica-master: the master process of a Mica cluster.
 *
 * Parses flags, starts the master (mserver.h) on the shared data root and
 * its HTTP status server (master/http/mhttp.h), prints `listening
 * <host:port>` and `http <host:port>` on stdout (and writes the addresses
 * to --address-file / --http-address-file) once both serve, then waits for
 * SIGTERM or SIGINT and stops cleanly with exit status 0. Bad flags print the usage and exit 2;
 * a master that cannot start (unreadable log, address in use) exits 1. */
#include <errno.h>
#include <stdatomic.h>
#include <getopt.h>
#include <inttypes.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/s3/data_root.h"
#include "master/http/mhttp.h"
#include "master/metalog.h"
#include "master/server/mserver.h"
#include "master/zk/mzk.h"
#include "master/zk/mzk_standby.h"

static void usage(FILE *f) {
  fprintf(f,
"usage: mica-master --data-dir DIR [options]\n"
"\n"
"The master of a Mica cluster: tables, the tablet map, server leases,\n"
"assignment, splits, moves, merges and balancing. Its metadata log lives in\n"
"DIR/master; tablet servers of the cluster share DIR as their data root.\n"
"\n"
"  --data-dir DIR          shared data root (required): a directory, or\n"
"                          s3://BUCKET/PREFIX on S3-compatible storage\n"
"                          (storage flags below; then also\n"
"                          --cluster-secret-file)\n"
"  --listen HOST:PORT      RPC address (default 127.0.0.1:0: the kernel\n"
"                          picks the port; the real address is printed as\n"
"                          'listening HOST:PORT' on stdout)\n"
"  --address-file PATH     also write the address to PATH (atomically)\n"
"  --http-listen HOST:PORT status page, JSON API and metrics (default\n"
"                          127.0.0.1:0; printed as 'http HOST:PORT')\n"
"  --http-address-file PATH  also write the HTTP address to PATH\n"
"  --cluster-name NAME     the cluster's name, shown on the status page and\n"
"                          reported to tools (default: none; the page says\n"
"                          'mica')\n"
"  --cluster-secret-file PATH  the cluster secret (64 hex digits, mode\n"
"                          0600) shared by masters and tablet servers\n"
"                          (default: DIR/cluster.secret, created when\n"
"                          missing; docs/security.md)\n"
"  --tokens PATH           client tokens, certificate names and roles, one\n"
"                          \"TOKEN|cert:NAME IDENTITY ROLE[:TABLE]...\" per\n"
"                          line (default: none, client calls are open;\n"
"                          re-read on SIGHUP; docs/security.md)\n"
"  --tls-cert PATH, --tls-key PATH  serve TLS with this PEM certificate\n"
"                          and key (tools/mica-certs makes development ones)\n"
"  --tls-ca PATH           CA that tablet servers' certificates chain to\n"
"                          (required with --tls-cert)\n"
"  --insecure              allow plaintext on a non-loopback address\n"
"  --tls-client-certs none|request|require  ask clients for certificates\n"
"                          signed by --tls-ca; a certificate's CN or SAN is\n"
"                          an identity (cert:NAME in --tokens); require\n"
"                          refuses connections without one (default none)\n"
"  --lease-ms N            lease granted per heartbeat (default 10000)\n"
"  --lease-margin-ms N     extra wait before a silent server is declared\n"
"                          dead (default 2000)\n"
"  --heartbeat-ms N        heartbeat interval told to servers, below\n"
"                          --lease-ms (default 1000)\n"
"  --split-threshold SIZE  tablet size at which servers propose a split,\n"
"                          told to them at registration (default 0: each\n"
"                          server keeps its own --split-threshold)\n"
"  --balancer auto|suggest|off  the balancer's mode (on = auto; default: as\n"
"                          last set, auto in a new cluster); suggest only\n"
"                          proposes moves (mica balance --plan/--apply)\n"
"  --balance-min-rate F    load gaps below this many reads+writes/s are\n"
"                          ignored (default 50)\n"
"  --balance-window-ms N   no tablet is moved twice within this\n"
"                          (default 120000)\n"
"  --balance-settle-ms N   wait after a load move before the next one, while\n"
"                          the moved tablet's rates rebuild (default 3000)\n"
"  --balance-band F        allowed deviation from the mean tablet count and\n"
"                          bytes, as a fraction (default 0.2)\n"
"  --balance-min-bytes SIZE byte gaps below this are ignored (default 64M)\n"
"  --max-moves N           balancer moves in flight at once (default 2)\n"
"  --merge on|off          automatic merges of small cold neighbours\n"
"                          (default: as last set, on in a new cluster)\n"
"  --merge-max-bytes SIZE  each merge input below this size (default 16M)\n"
"  --merge-max-rate F      each input below this many reads+writes/s\n"
"                          (default 1.0)\n"
"  --merge-min-age-ms N    never merge tablets younger than this\n"
"                          (default 60000)\n"
"  --load-split on|off     servers split a tablet that stays hot at the key\n"
"                          that halves its sampled load (default on;\n"
"                          docs/hotspots.md)\n"
"  --load-split-ops F      a tablet is hot at this many ops/s (keys read +\n"
"                          keys written + scans started; default 3000)\n"
"  --load-split-bytes SIZE ... or at this many bytes/s read and written\n"
"                          (default 30M)\n"
"  --load-split-window-ms N  how long a tablet stays hot before it is\n"
"                          split, at least 1000 (default 10000)\n"
"  --max-split-keys N      most split keys one CreateTable may give\n"
"                          (default 1000; more is INVALID_ARGUMENT)\n"
"  --max-opens N           OpenTablet calls of new or reassigned tablets\n"
"                          outstanding per server at once; the rest wait\n"
"                          their turn (default 32; moves and merges never\n"
"                          wait for them)\n"
"  --heat-bucket-ms N      width of a bucket of the per-tablet load history\n"
"                          (`mica hot`, /api/heatmap; default 60000)\n"
"  --heat-buckets N        buckets kept (default 60: one hour)\n"
"  --heat-max-tablets N    tablets recorded per bucket (default 10000)\n"
"  --tick-ms N             action loop period (default 100)\n"
"  --orphan-sweep-ms N     period of the sweep for tablet directories of no\n"
"                          table (a failed clone's or restore's late\n"
"                          writes; docs/storage.md), which also runs at\n"
"                          start; 100 to 86400000 (default 600000)\n"
"  --threads N             RPC polling threads (default 2)\n"
"  --zk HOST:PORT[,...][/chroot]  run as one of several candidates elected\n"
"                          in ZooKeeper (docs/ha.md): a standby prints\n"
"                          `standby <host:port>` and answers every call with\n"
"                          NOT_ACTIVE_MASTER naming the active master; on\n"
"                          winning it serves as usual; on losing leadership\n"
"                          it exits with status 3\n"
"  --zk-session-ms N       ZooKeeper session timeout (default 10000)\n"
"  --help                  this text\n"
"storage flags (s3:// data root; docs/storage.md):\n");
  fputs(data_root_usage, f);
  fprintf(f,
"\n"
"SIZE takes an optional K, M or G suffix (powers of 1024).\n"
"Log level: MICA_LOG_LEVEL=debug|info|warn|error (default info).\n"
"\n"
"example:\n"
"  mica-master --data-dir /srv/mica --listen 127.0.0.1:7000 \\\n"
"      --lease-ms 5000 --merge off\n");
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

/* Milliseconds into microseconds; false for what is not a number or does
 * not fit once multiplied. */
static bool parse_ms(const char *s, uint64_t *us) {
  uint64_t v;
  if (!parse_u64(s, &v) || v > UINT64_MAX / 1000) return false;
  *us = v * 1000;
  return true;
}

static bool parse_size(const char *s, uint64_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0) return false;
  int shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10;
  else if (*end == 'M' || *end == 'm') shift = 20;
  else if (*end == 'G' || *end == 'g') shift = 30;
  if (shift) end++;
  if (*end != '\0' || v > (UINT64_MAX >> shift)) return false;
  *out = (uint64_t)v << shift;
  return true;
}

static bool parse_double(const char *s, double *out) {
  if (s == NULL || *s == '\0') return false;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || *end != '\0' || !(v >= 0)) return false;
  *out = v;
  return true;
}

static bool parse_switch(const char *s, bool *out) {
  if (strcmp(s, "on") == 0) *out = true;
  else if (strcmp(s, "off") == 0) *out = false;
  else return false;
  return true;
}

static sem_t g_stop; /* posted by the SIGTERM/SIGINT handler */

static void on_stop_signal(int sig) {
  (void)sig;
  sem_post(&g_stop);
}

/* Set by SIGHUP: re-read the tokens file (wait_for_stop does it). */
static volatile sig_atomic_t g_reload;
static void on_reload_signal(int sig) {
  (void)sig;
  g_reload = 1;
}

/* Writes "addr\n" to `path` atomically; NULL path = nothing to do. */
static mica_err *write_address(const char *path, const char *addr) {
  if (path == NULL) return NULL;
  buf b = BUF_INIT;
  buf_append(&b, addr, strlen(addr));
  buf_push(&b, '\n');
  mica_err *err = env_write_file_atomic(env_posix(), path, buf_slice(&b));
  buf_free(&b);
  if (err != NULL) err = err_wrap(err, "writing %s", path);
  return err;
}

enum {
  F_LISTEN = 256, F_DATA_DIR, F_ADDRESS_FILE, F_LEASE, F_MARGIN, F_HEARTBEAT,
  F_SPLIT, F_BALANCER, F_BAND, F_BAL_MIN, F_MAX_MOVES, F_MERGE,
  F_MERGE_BYTES, F_MERGE_RATE, F_MERGE_AGE, F_TICK, F_THREADS,
  F_HTTP_LISTEN, F_HTTP_ADDRESS_FILE, F_CLUSTER_NAME, F_ZK, F_ZK_SESSION,
  F_MAX_SPLIT_KEYS, F_MAX_OPENS, F_SECRET_FILE, F_TOKENS, F_TLS_CERT,
  F_TLS_KEY, F_TLS_CA, F_INSECURE, F_TLS_CLIENT_CERTS, F_LOAD_SPLIT, F_LOAD_OPS,
  F_LOAD_BYTES, F_LOAD_WINDOW, F_HEAT_BUCKET, F_HEAT_BUCKETS, F_HEAT_MAX,
  F_BAL_RATE, F_BAL_WINDOW, F_BAL_SETTLE, F_ORPHAN_SWEEP,
  F_S3_ENDPOINT, F_S3_REGION, F_S3_ACCESS, F_S3_SECRET, F_S3_TOKEN,
  F_S3_ADDRESSING, F_S3_DEADLINE, F_S3_ATTEMPT, F_CACHE_DIR, F_CACHE_SIZE,
  F_HELP
};

static const struct option longopts[] = {
    {"listen", required_argument, NULL, F_LISTEN},
    {"data-dir", required_argument, NULL, F_DATA_DIR},
    {"address-file", required_argument, NULL, F_ADDRESS_FILE},
    {"lease-ms", required_argument, NULL, F_LEASE},
    {"lease-margin-ms", required_argument, NULL, F_MARGIN},
    {"heartbeat-ms", required_argument, NULL, F_HEARTBEAT},
    {"split-threshold", required_argument, NULL, F_SPLIT},
    {"balancer", required_argument, NULL, F_BALANCER},
    {"balance-band", required_argument, NULL, F_BAND},
    {"balance-min-bytes", required_argument, NULL, F_BAL_MIN},
    {"max-moves", required_argument, NULL, F_MAX_MOVES},
    {"merge", required_argument, NULL, F_MERGE},
    {"merge-max-bytes", required_argument, NULL, F_MERGE_BYTES},
    {"merge-max-rate", required_argument, NULL, F_MERGE_RATE},
    {"merge-min-age-ms", required_argument, NULL, F_MERGE_AGE},
    {"tick-ms", required_argument, NULL, F_TICK},
    {"threads", required_argument, NULL, F_THREADS},
    {"http-listen", required_argument, NULL, F_HTTP_LISTEN},
    {"http-address-file", required_argument, NULL, F_HTTP_ADDRESS_FILE},
    {"cluster-name", required_argument, NULL, F_CLUSTER_NAME},
    {"zk", required_argument, NULL, F_ZK},
    {"zk-session-ms", required_argument, NULL, F_ZK_SESSION},
    {"max-split-keys", required_argument, NULL, F_MAX_SPLIT_KEYS},
    {"max-opens", required_argument, NULL, F_MAX_OPENS},
    {"cluster-secret-file", required_argument, NULL, F_SECRET_FILE},
    {"tokens", required_argument, NULL, F_TOKENS},
    {"tls-cert", required_argument, NULL, F_TLS_CERT},
    {"tls-key", required_argument, NULL, F_TLS_KEY},
    {"tls-ca", required_argument, NULL, F_TLS_CA},
    {"insecure", no_argument, NULL, F_INSECURE},
    {"tls-client-certs", required_argument, NULL, F_TLS_CLIENT_CERTS},
    {"load-split", required_argument, NULL, F_LOAD_SPLIT},
    {"load-split-ops", required_argument, NULL, F_LOAD_OPS},
    {"load-split-bytes", required_argument, NULL, F_LOAD_BYTES},
    {"load-split-window-ms", required_argument, NULL, F_LOAD_WINDOW},
    {"heat-bucket-ms", required_argument, NULL, F_HEAT_BUCKET},
    {"heat-buckets", required_argument, NULL, F_HEAT_BUCKETS},
    {"heat-max-tablets", required_argument, NULL, F_HEAT_MAX},
    {"balance-min-rate", required_argument, NULL, F_BAL_RATE},
    {"balance-window-ms", required_argument, NULL, F_BAL_WINDOW},
    {"balance-settle-ms", required_argument, NULL, F_BAL_SETTLE},
    {"orphan-sweep-ms", required_argument, NULL, F_ORPHAN_SWEEP},
    {"s3-endpoint", required_argument, NULL, F_S3_ENDPOINT},
    {"s3-region", required_argument, NULL, F_S3_REGION},
    {"s3-access-key", required_argument, NULL, F_S3_ACCESS},
    {"s3-secret-key", required_argument, NULL, F_S3_SECRET},
    {"s3-session-token", required_argument, NULL, F_S3_TOKEN},
    {"s3-addressing", required_argument, NULL, F_S3_ADDRESSING},
    {"s3-deadline-ms", required_argument, NULL, F_S3_DEADLINE},
    {"s3-attempt-timeout-ms", required_argument, NULL, F_S3_ATTEMPT},
    {"cache-dir", required_argument, NULL, F_CACHE_DIR},
    {"cache-size", required_argument, NULL, F_CACHE_SIZE},
    {"help", no_argument, NULL, F_HELP},
    {NULL, 0, NULL, 0}};

static int bad_flag(const char *flag, const char *value) {
  fprintf(stderr, "mica-master: bad value \"%s\" for --%s\n\n",
          value ? value : "", flag);
  usage(stderr);
  return 2;
}

/* --zk: this process's part in the election. */
typedef struct zk_role {
  mzk_reader *reader;
  mzk_elector *_Atomic elector; /* read by HTTP threads (zk_view) */
  uint64_t epoch; /* the master epoch won */
  mhttp *http;    /* the standby's HTTP server, kept when it wins */
  int session_ms;
  char self[MZK_ADDR_MAX];
} zk_role;

static void zk_role_close(zk_role *z) {
  mzk_elector_close(z->elector);
  mzk_reader_close(z->reader);
}

/* mhttp's ha_view: the election as this process sees it. */
static void zk_view(void *ctx, mzk_view *out) {
  zk_role *z = ctx;
  mzk_view_get(atomic_load(&z->elector), z->reader, z->self, z->session_ms,
               out);
}

/* Serves as a standby on `listen` until this process wins (0; `addr` gets
 * the address to serve on, the one published), a stop signal arrives (1)
 * or something fails (2, after printing why). */
static mica_err *write_address(const char *path, const char *addr);

static int zk_campaign(const char *zk, int session_ms, const char *listen,
                       uint64_t min_epoch, zk_role *z, char *addr,
                       size_t n, const mhttp_opts *hopts,
                       const char *http_address_file) {
  mzk_standby *sb = NULL;
  z->session_ms = session_ms;
  mica_err *err = mzk_reader_open(zk, session_ms, NULL, NULL, &z->reader);
  if (err == NULL) {
    mzk_reader_follow_candidates(z->reader);
    err = mzk_standby_start(listen, z->reader, &sb);
  }
  if (err == NULL) {
    snprintf(addr, n, "%s", mzk_standby_address(sb));
    snprintf(z->self, sizeof z->self, "%s", addr);
    /* The standby's status page, on the address it keeps when it wins. */
    mhttp_opts ho = *hopts;
    ho.master_address = addr;
    ho.ha_view = zk_view;
    ho.ha_ctx = z;
    err = mhttp_start(&ho, NULL, &z->http);
  }
  if (err == NULL) err = write_address(http_address_file, mhttp_address(z->http));
  if (err == NULL) {
    mzk_elector_opts eo = {
        .zk = zk, .session_timeout_ms = session_ms, .rpc_addr = addr,
        .http_addr = mhttp_address(z->http), .min_epoch = min_epoch};
    mzk_elector *el = NULL;
    err = mzk_elector_start(&eo, &el);
    atomic_store(&z->elector, el);
  }
  if (err != NULL) {
    fprintf(stderr, "mica-master: cannot campaign in ZooKeeper: %s: %s\n",
            mica_code_name(err_code(err)), err_msg(err));
    err_free(err);
    mhttp_stop(z->http);
    z->http = NULL;
    mzk_standby_stop(sb);
    return 2;
  }
  printf("standby %s\nstandby-http %s\n", addr, mhttp_address(z->http));
  fflush(stdout);
  LOG_I("standby on %s, campaigning in ZooKeeper %s", addr, zk);
  for (;;) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    if (sem_timedwait(&g_stop, &ts) == 0) {
      mhttp_stop(z->http);
      z->http = NULL;
      mzk_standby_stop(sb);
      return 1;
    }
    uint64_t epoch;
    if (mzk_elector_is_active(z->elector, &epoch)) {
      LOG_I("won the election with master epoch %" PRIu64, epoch);
      z->epoch = epoch;
      mzk_standby_stop(sb);
      return 0;
    }
  }
}

/* The leadership check of every metadata-log append (ms_options): still
 * the active master, under the epoch it won. */
static bool zk_still_active(void *ctx) {
  zk_role *z = ctx;
  uint64_t epoch = 0;
  return mzk_elector_is_active(z->elector, &epoch) && epoch == z->epoch;
}

/* Waits for a stop signal; exits with status 3 as soon as this process is
 * no longer the active master (with --zk: its session or lease ended; in
 * any case: a tablet server refused a command as coming from an older
 * master epoch). A deposed master must stop acting at once; a supervisor
 * may start it again as a candidate. */
static void wait_for_stop(zk_role *z, msrv *s) {
  for (;;) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    if (sem_timedwait(&g_stop, &ts) == 0) return;
    if (g_reload) {
      g_reload = 0;
      mica_err *e = msrv_reload_tokens(s);
      if (e != NULL)
        LOG_W("SIGHUP: tokens file not re-read, the current grants stay: "
              "%s", err_msg(e));
      else
        LOG_I("SIGHUP: tokens file re-read");
      err_free(e);
    }
    if (msrv_deposed(s)) {
      LOG_E("a tablet server has seen a newer master epoch: exiting");
      _exit(3);
    }
    if (z->elector != NULL && !zk_still_active(z)) {
      LOG_E("no longer the active master (ZooKeeper session lost or lease "
            "ended): exiting");
      _exit(3);
    }
  }
}

int main(int argc, char **argv) {
  msrv_options o;
  msrv_options_init(&o);
  const char *address_file = NULL;
  const char *http_listen = NULL, *http_address_file = NULL;
  bool insecure = false;
  const char *zk = NULL;
  int zk_session_ms = 10000;
  zk_role z = {0};
  char zk_addr[MZK_ADDR_MAX];
  bool merges;
  int bal_mode;
  uint64_t v;
  double d;
  int c, idx = 0;
  data_root_flags storage = {0};
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
    const char *name = c >= F_LISTEN && c <= F_HELP
                           ? longopts[c - F_LISTEN].name : "";
    switch (c) {
      case F_LISTEN: o.listen = optarg; break;
      case F_DATA_DIR: o.core.data_root = optarg; break;
      case F_ADDRESS_FILE: address_file = optarg; break;
      case F_LEASE:
        if (!parse_ms(optarg, &v) || v == 0) return bad_flag(name, optarg);
        o.core.lease_us = v;
        break;
      case F_MARGIN:
        if (!parse_ms(optarg, &v)) return bad_flag(name, optarg);
        o.core.lease_margin_us = v;
        break;
      case F_HEARTBEAT:
        if (!parse_ms(optarg, &v) || v == 0) return bad_flag(name, optarg);
        o.core.heartbeat_us = v;
        break;
      case F_SPLIT:
        if (!parse_size(optarg, &v)) return bad_flag(name, optarg);
        o.split_threshold_bytes = v;
        break;
      case F_BALANCER:
        if (!ms_balancer_mode_parse(optarg, &bal_mode))
          return bad_flag(name, optarg);
        o.balancer_mode = &bal_mode;
        break;
      case F_BAL_RATE:
        if (!parse_double(optarg, &d)) return bad_flag(name, optarg);
        o.core.balance_min_rate = d;
        break;
      case F_BAL_WINDOW:
        if (!parse_ms(optarg, &v)) return bad_flag(name, optarg);
        o.core.balance_window_us = v;
        break;
      case F_BAL_SETTLE:
        if (!parse_ms(optarg, &v)) return bad_flag(name, optarg);
        o.core.balance_settle_us = v;
        break;
      case F_BAND:
        if (!parse_double(optarg, &d) || d > 10) return bad_flag(name, optarg);
        o.core.balance_band = d;
        break;
      case F_BAL_MIN:
        if (!parse_size(optarg, &v)) return bad_flag(name, optarg);
        o.core.balance_min_bytes = v;
        break;
      case F_MAX_MOVES:
        if (!parse_u64(optarg, &v) || v == 0 || v > 1000)
          return bad_flag(name, optarg);
        o.core.max_moves_in_flight = (uint32_t)v;
        break;
      case F_MERGE:
        if (!parse_switch(optarg, &merges)) return bad_flag(name, optarg);
        o.merges = &merges;
        break;
      case F_MERGE_BYTES:
        if (!parse_size(optarg, &v)) return bad_flag(name, optarg);
        o.core.merge_max_bytes = v;
        break;
      case F_MERGE_RATE:
        if (!parse_double(optarg, &d)) return bad_flag(name, optarg);
        o.core.merge_max_rate = d;
        break;
      case F_MERGE_AGE:
        if (!parse_ms(optarg, &v)) return bad_flag(name, optarg);
        o.core.merge_min_age_us = v;
        break;
      case F_MAX_SPLIT_KEYS:
        if (!parse_u64(optarg, &v) || v > 1000000)
          return bad_flag(name, optarg);
        o.core.max_split_keys = (size_t)v;
        break;
      case F_MAX_OPENS:
        if (!parse_u64(optarg, &v) || v == 0 || v > 100000)
          return bad_flag(name, optarg);
        o.core.max_opens_per_server = (uint32_t)v;
        break;
      case F_ORPHAN_SWEEP:
        if (!parse_u64(optarg, &v) || v < 100 || v > 86400000)
          return bad_flag(name, optarg);
        o.orphan_sweep_us = v * 1000;
        break;
      case F_TICK:
        if (!parse_u64(optarg, &v) || v == 0 || v > 60000)
          return bad_flag(name, optarg);
        o.tick_us = v * 1000;
        break;
      case F_THREADS:
        if (!parse_u64(optarg, &v) || v == 0 || v > 64)
          return bad_flag(name, optarg);
        o.rpc_threads = (int)v;
        break;
      case F_HTTP_LISTEN: http_listen = optarg; break;
      case F_HTTP_ADDRESS_FILE: http_address_file = optarg; break;
      case F_CLUSTER_NAME:
        if (optarg[0] == '\0') return bad_flag(name, optarg);
        o.cluster_name = optarg;
        break;
      case F_ZK: zk = optarg; break;
      case F_SECRET_FILE:
        if (optarg[0] == '\0') return bad_flag(name, optarg);
        o.secret_file = optarg;
        break;
      case F_TLS_CERT: o.tls.cert_file = optarg; break;
      case F_TLS_KEY: o.tls.key_file = optarg; break;
      case F_TLS_CA: o.tls.ca_file = optarg; break;
      case F_INSECURE: insecure = true; break;
      case F_TLS_CLIENT_CERTS:
        if (!rpc_tls_client_certs_parse(optarg, &o.tls))
          return bad_flag(name, optarg);
        break;
      case F_LOAD_SPLIT:
        if (!parse_switch(optarg, &o.load_split))
          return bad_flag(name, optarg);
        break;
      case F_LOAD_OPS:
        if (!parse_double(optarg, &d) || d <= 0 || d > 1e12)
          return bad_flag(name, optarg);
        o.load_split_ops = d;
        break;
      case F_LOAD_BYTES:
        if (!parse_size(optarg, &v) || v == 0) return bad_flag(name, optarg);
        o.load_split_bytes = v;
        break;
      case F_LOAD_WINDOW:
        if (!parse_u64(optarg, &v) || v < 1000 || v > 3600000)
          return bad_flag(name, optarg);
        o.load_split_window_ms = v;
        break;
      case F_TOKENS:
        if (optarg[0] == '\0') return bad_flag(name, optarg);
        o.tokens_file = optarg;
        break;
      case F_ZK_SESSION:
        if (!parse_u64(optarg, &v) || v == 0 || v > 3600000)
          return bad_flag(name, optarg);
        zk_session_ms = (int)v;
        break;
      case F_HEAT_BUCKET:
        if (!parse_u64(optarg, &v) || v == 0 || v > 3600000)
          return bad_flag(name, optarg);
        o.core.heat_bucket_us = v * 1000;
        break;
      case F_HEAT_BUCKETS:
        if (!parse_u64(optarg, &v) || v == 0 || v > 10000)
          return bad_flag(name, optarg);
        o.core.heat_buckets = (size_t)v;
        break;
      case F_HEAT_MAX:
        if (!parse_u64(optarg, &v) || v == 0 || v > 1000000)
          return bad_flag(name, optarg);
        o.core.heat_max_tablets = (size_t)v;
        break;
      case F_S3_ENDPOINT: case F_S3_REGION: case F_S3_ACCESS:
      case F_S3_SECRET: case F_S3_TOKEN: case F_S3_ADDRESSING:
      case F_S3_DEADLINE: case F_S3_ATTEMPT: case F_CACHE_DIR:
      case F_CACHE_SIZE: {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", name);
        mica_err *fe = data_root_flags_add(&storage, flag, optarg);
        if (fe != NULL) {
          err_free(fe);
          return bad_flag(name, optarg);
        }
        break;
      }
      case F_HELP: usage(stdout); return 0;
      default:
        fprintf(stderr, "mica-master: unknown or incomplete flag \"%s\"\n\n",
                argv[optind - 1]);
        usage(stderr);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "mica-master: unexpected argument \"%s\"\n\n",
            argv[optind]);
    usage(stderr);
    return 2;
  }
  if (o.core.data_root == NULL || o.core.data_root[0] == '\0') {
    fprintf(stderr, "mica-master: --data-dir is required\n\n");
    usage(stderr);
    return 2;
  }
  /* A server could never renew its lease in time. */
  if (o.core.heartbeat_us >= o.core.lease_us) {
    fprintf(stderr, "mica-master: --heartbeat-ms (%" PRIu64 ") must be "
            "below --lease-ms (%" PRIu64 ")\n\n", o.core.heartbeat_us / 1000,
            o.core.lease_us / 1000);
    usage(stderr);
    return 2;
  }
  if ((o.tls.cert_file != NULL) != (o.tls.key_file != NULL) ||
      (o.tls.cert_file != NULL) != (o.tls.ca_file != NULL)) {
    fprintf(stderr, "mica-master: --tls-cert, --tls-key and --tls-ca go "
            "together\n\n");
    usage(stderr);
    return 2;
  }
  if (o.tls.cert_file == NULL &&
      (o.tls.request_client_cert || o.tls.require_client_cert)) {
    fprintf(stderr, "mica-master: --tls-client-certs needs --tls-cert, "
            "--tls-key and --tls-ca\n\n");
    usage(stderr);
    return 2;
  }
  {
    /* The status page serves HTTPS with the same certificate. */
    mica_err *pe = rpc_check_plaintext("--listen", o.listen,
                                       o.tls.cert_file != NULL, insecure);
    if (pe == NULL)
      pe = rpc_check_plaintext("--http-listen", http_listen,
                               o.tls.cert_file != NULL, insecure);
    if (pe != NULL) {
      fprintf(stderr, "mica-master: cannot start: %s: %s\n",
              mica_code_name(err_code(pe)), err_msg(pe));
      err_free(pe);
      return 1;
    }
  }
  /* The data root's env: the POSIX one, or S3 (data_root.h). */
  env *root_env = NULL;
  bool root_s3 = false;
  {
    mica_err *re = data_root_open(o.core.data_root, &storage, &root_env,
                                  &root_s3);
    if (re == NULL && root_s3 && o.secret_file == NULL)
      re = err_new(MICA_INVALID_ARGUMENT, "an s3:// --data-dir needs "
                   "--cluster-secret-file PATH: the cluster secret is never "
                   "kept in the bucket");
    if (re != NULL) {
      if (root_env != NULL) data_root_close(root_env, root_s3);
      fprintf(stderr, "mica-master: %s\n\n", err_msg(re));
      err_free(re);
      usage(stderr);
      return 2;
    }
    o.core.env = root_env;
  }
  log_set_name("master");
  /* What --insecure allowed: said at start-up and on the status page. */
  char insecure_note[600] = "";
  rpc_note_plaintext(insecure_note, sizeof insecure_note, "--listen",
                     o.listen, o.tls.cert_file != NULL);
  rpc_note_plaintext(insecure_note, sizeof insecure_note, "--http-listen",
                     http_listen, o.tls.cert_file != NULL);
  if (insecure_note[0])
    LOG_W("INSECURE (--insecure): plaintext on non-loopback %s: anyone on "
          "the network can read and change this traffic", insecure_note);

  /* Whichever thread a stop signal lands on (libraries start threads with
   * their own signal masks), the handler only posts the semaphore that the
   * main thread waits on; sem_post is async-signal-safe. */
  sem_init(&g_stop, 0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_reload_signal;
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* The highest master epoch the metadata log was written under: the
   * floor of the election, and the epoch of a master without ZooKeeper. */
  uint64_t floor_epoch = 0;
  char *mdir = layout_master_dir(o.core.data_root);
  mica_err *perr = mlog_peek_epoch(root_env, mdir, &floor_epoch);
  free(mdir);
  if (perr != NULL) {
    fprintf(stderr, "mica-master: cannot read the metadata log's epoch: "
            "%s: %s\n", mica_code_name(err_code(perr)), err_msg(perr));
    err_free(perr);
    data_root_close(root_env, root_s3);
    return 1;
  }
  o.master_epoch = o.core.master_epoch = floor_epoch;
  mhttp_opts ho;
  mhttp_opts_init(&ho);
  ho.listen = http_listen;
  ho.cluster_name = o.cluster_name;
  ho.tls_cert_file = o.tls.cert_file;
  ho.tls_key_file = o.tls.key_file;
  ho.rpc_tls = o.tls.cert_file != NULL;
  ho.insecure = insecure_note[0] ? insecure_note : NULL;
  if (zk != NULL) {
    int rc = zk_campaign(zk, zk_session_ms, o.listen, floor_epoch, &z,
                         zk_addr, sizeof zk_addr, &ho, http_address_file);
    if (rc != 0) {
      zk_role_close(&z);
      return rc == 1 ? 0 : 1;
    }
    o.listen = zk_addr;
    o.master_epoch = o.core.master_epoch = z.epoch;
    o.core.still_active = zk_still_active;
    o.core.still_active_ctx = &z;
  }
  msrv *s;
  mica_err *err = msrv_start(&o, &s);
  /* A new active master may find the data root still locked by the master
   * it replaces, if that process lives on (paused, partitioned): it waits,
   * while it stays active, for that process to see it was deposed and
   * exit. */
  for (bool said = false; err != NULL && err_code(err) == MICA_UNAVAILABLE &&
                          z.elector != NULL &&
                          mzk_elector_is_active(z.elector, NULL);) {
    if (!said) LOG_W("waiting to start: %s", err_msg(err));
    said = true;
    err_free(err);
    if (sem_trywait(&g_stop) == 0) {
      mhttp_stop(z.http);
      zk_role_close(&z);
      return 0;
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    err = msrv_start(&o, &s);
  }
  if (err != NULL) {
    fprintf(stderr, "mica-master: cannot start: %s: %s\n",
            mica_code_name(err_code(err)), err_msg(err));
    err_free(err);
    mhttp_stop(z.http);
    zk_role_close(&z);
    return 1;
  }
  ho.master_address = msrv_address(s);
  ho.authorize = msrv_authorize_read;
  ho.authorize_ctx = s;
  ho.master_epoch = o.master_epoch;
  mhttp *http = z.http;
  if (http != NULL) {
    /* The standby's server becomes the active master's, same address. */
    mhttp_activate(http, msrv_core(s), msrv_address(s), o.master_epoch,
                   msrv_authorize_read, s);
  } else {
    err = mhttp_start(&ho, msrv_core(s), &http);
  }
  if (err == NULL) msrv_set_http_address(s, mhttp_address(http));
  if (err == NULL && z.elector != NULL)
    err = mzk_elector_set_http_addr(z.elector, mhttp_address(http));
  /* The RPC address file last: tools take it as "the master is up". */
  if (err == NULL) err = write_address(http_address_file, mhttp_address(http));
  if (err == NULL) err = write_address(address_file, msrv_address(s));
  if (err != NULL) {
    fprintf(stderr, "mica-master: cannot start: %s: %s\n",
            mica_code_name(err_code(err)), err_msg(err));
    err_free(err);
    mhttp_stop(http);
    msrv_stop(s);
    return 1;
  }
  printf("listening %s\nhttp %s\n", msrv_address(s), mhttp_address(http));
  fflush(stdout);

  wait_for_stop(&z, s);
  LOG_I("stop signal: stopping");
  mhttp_stop(http);
  msrv_stop(s);
  zk_role_close(&z);
  data_root_close(root_env, root_s3);
  return 0;
}
