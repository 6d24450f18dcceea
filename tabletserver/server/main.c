/* mica-tserver: the tablet server program.
 *
 * Parses flags, starts a ts_server, prints `listening <host:port>` and
 * `http <host:port>` on stdout (and writes the addresses to --address-file
 * and --http-address-file, atomically, for scripts and tests), then waits for SIGTERM or SIGINT and shuts down
 * cleanly: every tablet closed with its memtables flushed, exit 0. The
 * signals are blocked in every thread and taken by sigwait on the main
 * thread, so no handler runs inside library code. docs/tserver.md has the
 * flags and behaviour. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/env_route.h"
#include "common/log.h"
#include "common/s3/data_root.h"
#include "common/s3/env_s3.h"
#include "sstable/sstable.h"
#include "proto/rpc.h"
#include "tabletserver/server/ts.h"
#include "tabletserver/clog.h"
#include "tabletserver/wal.h"

static const char usage_text[] =
    "usage: mica-tserver --data-dir DIR [flags]\n"
    "\n"
    "Serves the tablets a Mica master (or a test) opens on it.\n"
    "\n"
    "flags (FLAG VALUE or FLAG=VALUE; sizes take K, M, G suffixes):\n"
    "  --listen HOST:PORT       address to serve on (default 127.0.0.1:0; port\n"
    "                           0 lets the kernel pick; the real address is\n"
    "                           printed as `listening HOST:PORT`)\n"
    "  --address-file PATH      also write the real address to PATH\n"
    "  --http-listen HOST:PORT  /metrics and /healthz (default 127.0.0.1:0;\n"
    "                           printed as `http HOST:PORT` and announced to\n"
    "                           the master)\n"
    "  --http-address-file PATH also write the real HTTP address to PATH\n"
    "  --data-dir DIR           shared data root; tablets live in DIR/tablets\n"
    "                           (required); a directory, or s3://BUCKET/PREFIX\n"
    "                           on S3-compatible storage (flags below)\n"
    "  --wal-dir PATH|s3://BUCKET/PREFIX\n"
    "                           where the commit log lives instead of beside\n"
    "                           the tablets (default: under DIR, on S3 when\n"
    "                           DIR is s3://). A POSIX PATH with an s3:// DIR\n"
    "                           must be shared by every server: on a local\n"
    "                           disk, losing the machine loses every write\n"
    "                           not yet flushed to S3\n"
    "  --wal-batch-ms MS        commit log on S3: a group commit waits up to\n"
    "                           MS for more writes before its one PUT\n"
    "                           (0..1000, default 10)\n"
    "  --accept-lost-commit-log NAME[,NAME...]\n"
    "                           open tablets whose manifest names one of these\n"
    "                           commit logs (ts-...) although the log is gone\n"
    "                           (a POSIX --wal-dir lost with its machine),\n"
    "                           LOSING the writes only it held; each such open\n"
    "                           is logged as an error (docs/storage.md)\n"
    "  --master SPEC            master to register with: HOST:PORT, a comma-\n"
    "                           separated list of candidate masters, or\n"
    "                           zk://HOST:PORT[,...][/chroot] to follow the\n"
    "                           active master published in ZooKeeper;\n"
    "                           without it the server runs standalone (tests\n"
    "                           open tablets directly with OpenTablet)\n"
    "  --memory-budget SIZE     bytes for all memtables (default 256M)\n"
    "  --block-cache SIZE       SSTable block cache, 0 = none (default 64M)\n"
    "  --memtable-size SIZE     bytes at which a tablet's memtable is flushed\n"
    "                           (default 8M)\n"
    "  --split-threshold SIZE   split a tablet past this size (default 10G)\n"
    "  --lease-ms MS            longest master lease assumed (default 10000)\n"
    "  --heartbeat-ms MS        heartbeat interval until the master sets one\n"
    "                           (default 1000)\n"
    "  --drain-timeout-ms MS    on SIGTERM, first ask the master to move every\n"
    "                           tablet away and wait up to MS for it, so no\n"
    "                           client waits for this server's lease; 0 = stop\n"
    "                           at once (default 30000; SIGINT never drains)\n"
    "  --threads N              RPC polling threads, 0 = one per core\n"
    "                           (default 0)\n"
    "  --background-threads N   flush and compaction threads (default 2)\n"
    "  --max-streams N          open Scan streams on this server; more are\n"
    "                           refused with RESOURCE_EXHAUSTED (default 1024)\n"
    "  --max-streams-per-conn N open Scan streams per client connection\n"
    "                           (default 128)\n"
    "  --stream-idle-timeout MS cancel a Scan stream whose reader has taken\n"
    "                           no chunk for MS, freeing its snapshot\n"
    "                           (default 30000)\n"
    "  --reserve-space SIZE|P%  free space kept on the data root's disk: below\n"
    "                           it writes are refused (RESOURCE_EXHAUSTED) and\n"
    "                           no split or compaction starts; P% of the disk\n"
    "                           (1..50), or a size, 0 = only a full disk\n"
    "                           (default 5% capped at 1G)\n"
    "  --compression lz4|zstd|none\n"
    "                           how SSTable data blocks are compressed\n"
    "                           (default lz4; files written under another\n"
    "                           setting stay readable)\n"
    "  --commit-log shared|tablet\n"
    "                           shared (default): one commit log for every\n"
    "                           tablet of this server, in DIR/logs, one\n"
    "                           fdatasync per group across tablets; tablet:\n"
    "                           each tablet's own WAL (either reopens the\n"
    "                           other's tablets)\n"
    "  --cluster-secret-file PATH  the cluster secret shared with the master\n"
    "                           (default DIR/cluster.secret, created when\n"
    "                           missing; docs/security.md)\n"
    "  --tls-cert PATH, --tls-key PATH  serve TLS with this PEM certificate\n"
    "                           and key, also shown to the master\n"
    "  --tls-ca PATH            CA the master's certificate chains to\n"
    "                           (required with --tls-cert)\n"
    "  --insecure               allow plaintext on a non-loopback address\n"
    "  --tls-client-certs none|request|require  ask clients for certificates\n"
    "                           signed by --tls-ca, names mapped to roles by\n"
    "                           the master's tokens file (default none)\n"
    "  --help                   this text\n"
    "storage flags (s3:// data root; docs/storage.md):\n";

static const char usage_example[] =
    "\n"
    "example:\n"
    "  mica-tserver --data-dir /srv/mica --master 127.0.0.1:7000 \\\n"
    "      --listen 127.0.0.1:7101 --memory-budget 1G --block-cache 512M\n";

static void usage(FILE *f) {
  fputs(usage_text, f);
  fputs(data_root_usage, f);
  fputs(usage_example, f);
}

static void usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "mica-tserver: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n\n");
  usage(stderr);
  exit(2);
}

/* env_route's choice: WAL segments go to --wal-dir. */
/* The files that live in --wal-dir when the data root is on S3: the
 * per-tablet WAL's segments, and the server commit log's segments, their
 * indexes and its LOCK (tabletserver/COMMITLOG_FORMAT.md). Nothing else
 * under a tablet server's data root is named LOCK. */
static bool is_wal_name(const char *name) {
  uint64_t epoch, number;
  return wal_parse_segment_name(name, &epoch, &number) ||
         clog_is_file_name(name);
}

/* "64M" -> 67108864. False on anything else. */
static bool parse_size(const char *s, uint64_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0) return false;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k')
    shift = 10, end++;
  else if (*end == 'M' || *end == 'm')
    shift = 20, end++;
  else if (*end == 'G' || *end == 'g')
    shift = 30, end++;
  else if (*end == 'T' || *end == 't')
    shift = 40, end++;
  if (*end == 'B' || *end == 'b') end++;
  if (*end != '\0') return false;
  if (shift > 0 && v > (UINT64_MAX >> shift)) return false;
  *out = (uint64_t)v << shift;
  return true;
}

static bool parse_int(const char *s, uint64_t max, uint64_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

/* Writes `addr` and a newline to `path` atomically (nothing when NULL). */
static mica_err *write_address(const char *flag, const char *path,
                               const char *addr) {
  if (path == NULL) return NULL;
  buf line = BUF_INIT;
  buf_append(&line, addr, strlen(addr));
  buf_push(&line, '\n');
  mica_err *e = env_write_file_atomic(env_posix(), path, buf_slice(&line));
  buf_free(&line);
  return e ? err_wrap(e, "%s", flag) : NULL;
}

int main(int argc, char **argv) {
  ts_config c;
  ts_config_init(&c);
  bool insecure = false;
  const char *address_file = NULL, *http_address_file = NULL;
  uint64_t drain_ms = 30000; /* --drain-timeout-ms */
  data_root_flags storage = {0};
  const char *wal_dir = NULL;
  log_set_name("tserver");

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strncmp(a, "--", 2) != 0) usage_error("unexpected argument '%s'", a);
    if (strcmp(a, "--insecure") == 0) {
      insecure = true;
      continue;
    }
    char name[64];
    const char *val = NULL;
    const char *eq = strchr(a, '=');
    if (eq != NULL) {
      size_t n = (size_t)(eq - a);
      if (n >= sizeof name) usage_error("unknown flag '%s'", a);
      memcpy(name, a, n);
      name[n] = '\0';
      val = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", a);
      if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) val = argv[++i];
    }
    static const char *const known[] = {
        "--listen", "--address-file", "--http-listen",
        "--http-address-file", "--data-dir", "--master",
        "--memory-budget", "--block-cache", "--memtable-size",
        "--split-threshold", "--lease-ms", "--heartbeat-ms", "--threads",
        "--background-threads", "--reserve-space", "--compression",
        "--max-streams", "--max-streams-per-conn", "--stream-idle-timeout",
        "--cluster-secret-file", "--tls-cert", "--tls-key", "--tls-ca",
        "--tls-client-certs", "--drain-timeout-ms", "--commit-log",
        "--wal-dir", "--wal-batch-ms", "--accept-lost-commit-log"};
    bool is_known = data_root_is_flag(name);
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
      if (strcmp(name, known[k]) == 0) is_known = true;
    if (!is_known) usage_error("unknown flag '%s'", name);
    if (val == NULL) usage_error("flag '%s' needs a value", name);
    uint64_t v = 0;
    if (data_root_is_flag(name)) {
      mica_err *fe = data_root_flags_add(&storage, name, val);
      if (fe != NULL) usage_error("%s", err_msg(fe));
    } else if (strcmp(name, "--wal-dir") == 0) {
      if (val[0] == '\0') usage_error("--wal-dir: empty path '%s'", val);
      wal_dir = val;
    } else if (strcmp(name, "--accept-lost-commit-log") == 0) {
      /* Names as the manifest holds them: bare names, comma-separated. */
      static const char *lost[65];
      size_t k = 0;
      char *list = xstrdup(val), *save = NULL; /* lives until exit */
      for (char *t = strtok_r(list, ",", &save); t != NULL;
           t = strtok_r(NULL, ",", &save)) {
        if (k == 64 || t[0] == '\0' || strchr(t, '/') != NULL ||
            strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
          usage_error("--accept-lost-commit-log: '%s' is not a list of at "
                      "most 64 commit log names (ts-...)", val);
        lost[k++] = t;
      }
      if (k == 0)
        usage_error("--accept-lost-commit-log: '%s' names no commit log", val);
      lost[k] = NULL;
      c.accept_lost_logs = lost;
      LOG_W("--accept-lost-commit-log %s: tablets whose commit log is one of "
            "these and is missing will open WITHOUT the writes only it held",
            val);
    } else if (strcmp(name, "--wal-batch-ms") == 0) {
      if (!parse_int(val, 1000, &v))
        usage_error("--wal-batch-ms: '%s' is not a number of milliseconds "
                    "in 0..1000", val);
      c.wal_batch_ms = v;
    } else if (strcmp(name, "--listen") == 0) {
      c.listen = val;
    } else if (strcmp(name, "--address-file") == 0) {
      address_file = val;
    } else if (strcmp(name, "--http-listen") == 0) {
      c.http_listen = val;
    } else if (strcmp(name, "--http-address-file") == 0) {
      http_address_file = val;
    } else if (strcmp(name, "--data-dir") == 0) {
      c.data_dir = val;
    } else if (strcmp(name, "--master") == 0) {
      c.master = val;
    } else if (strcmp(name, "--memory-budget") == 0) {
      if (!parse_size(val, &v) || v < (1u << 20))
        usage_error("--memory-budget: '%s' is not a size of at least 1M", val);
      c.memory_budget = v;
    } else if (strcmp(name, "--block-cache") == 0) {
      if (!parse_size(val, &v)) usage_error("--block-cache: bad size '%s'", val);
      c.block_cache = v;
    } else if (strcmp(name, "--memtable-size") == 0) {
      if (!parse_size(val, &v) || v < 4096 || v > (1ull << 30))
        usage_error("--memtable-size: '%s' is not a size in 4K..1G", val);
      c.memtable_bytes = v;
    } else if (strcmp(name, "--split-threshold") == 0) {
      if (!parse_size(val, &v) || v == 0)
        usage_error("--split-threshold: bad size '%s'", val);
      c.split_threshold = v;
    } else if (strcmp(name, "--lease-ms") == 0) {
      if (!parse_int(val, 86400000, &v) || v == 0)
        usage_error("--lease-ms: '%s' is not a positive number", val);
      c.lease_ms = v;
    } else if (strcmp(name, "--drain-timeout-ms") == 0) {
      if (!parse_int(val, 86400000, &v))
        usage_error("--drain-timeout-ms: '%s' is not a number of "
                    "milliseconds in 0..86400000", val);
      drain_ms = v;
    } else if (strcmp(name, "--heartbeat-ms") == 0) {
      if (!parse_int(val, 86400000, &v) || v == 0)
        usage_error("--heartbeat-ms: '%s' is not a positive number", val);
      c.heartbeat_ms = v;
    } else if (strcmp(name, "--threads") == 0) {
      if (!parse_int(val, 256, &v))
        usage_error("--threads: '%s' is not a number in 0..256", val);
      c.threads = (int)v;
    } else if (strcmp(name, "--tls-cert") == 0) {
      c.tls.cert_file = val;
    } else if (strcmp(name, "--tls-key") == 0) {
      c.tls.key_file = val;
    } else if (strcmp(name, "--tls-ca") == 0) {
      c.tls.ca_file = val;
    } else if (strcmp(name, "--tls-client-certs") == 0) {
      if (!rpc_tls_client_certs_parse(val, &c.tls))
        usage_error("--tls-client-certs: '%s' is not none, request or "
                    "require", val);
    } else if (strcmp(name, "--cluster-secret-file") == 0) {
      if (val[0] == '\0') usage_error("--cluster-secret-file: empty path '%s'", val);
      c.secret_file = val;
    } else if (strcmp(name, "--reserve-space") == 0) {
      size_t n = strlen(val);
      if (n > 1 && val[n - 1] == '%') {
        char *end = NULL;
        errno = 0;
        unsigned long p = strtoul(val, &end, 10);
        if (errno != 0 || end != val + n - 1 || val[0] < '0' || val[0] > '9' ||
            p < 1 || p > 50)
          usage_error("--reserve-space: '%s' is not a percentage in 1%%..50%%",
                      val);
        c.reserve_percent = (unsigned)p;
        c.reserve_bytes = 0;
      } else {
        if (!parse_size(val, &v))
          usage_error("--reserve-space: '%s' is neither a size nor a "
                      "percentage", val);
        c.reserve_percent = 0;
        c.reserve_bytes = v;
      }
    } else if (strcmp(name, "--compression") == 0) {
      if (strcmp(val, "lz4") == 0)
        c.compression = SST_COMPRESS_LZ4;
      else if (strcmp(val, "zstd") == 0)
        c.compression = SST_COMPRESS_ZSTD;
      else if (strcmp(val, "none") == 0)
        c.compression = SST_COMPRESS_NONE;
      else
        usage_error("--compression: '%s' is not lz4, zstd or none", val);
    } else if (strcmp(name, "--commit-log") == 0) {
      if (strcmp(val, "shared") == 0)
        c.shared_log = true;
      else if (strcmp(val, "tablet") == 0)
        c.shared_log = false;
      else
        usage_error("--commit-log: '%s' is not shared or tablet", val);
    } else if (strcmp(name, "--max-streams") == 0) {
      if (!parse_int(val, 1000000, &v) || v == 0)
        usage_error("--max-streams: '%s' is not a number in 1..1000000", val);
      c.max_streams = v;
    } else if (strcmp(name, "--max-streams-per-conn") == 0) {
      if (!parse_int(val, 1000000, &v) || v == 0)
        usage_error("--max-streams-per-conn: '%s' is not a number in "
                    "1..1000000", val);
      c.max_streams_per_conn = v;
    } else if (strcmp(name, "--stream-idle-timeout") == 0) {
      if (!parse_int(val, 86400000, &v) || v == 0)
        usage_error("--stream-idle-timeout: '%s' is not a number of "
                    "milliseconds in 1..86400000", val);
      c.stream_idle_ms = v;
    } else if (strcmp(name, "--background-threads") == 0) {
      if (!parse_int(val, 64, &v) || v == 0)
        usage_error("--background-threads: '%s' is not in 1..64", val);
      c.background_threads = (int)v;
    }
  }
  if (c.data_dir == NULL) usage_error("%s", "--data-dir is required");
  if ((c.tls.cert_file != NULL) != (c.tls.key_file != NULL) ||
      (c.tls.cert_file != NULL) != (c.tls.ca_file != NULL))
    usage_error("%s", "--tls-cert, --tls-key and --tls-ca go together");
  if (c.tls.cert_file == NULL &&
      (c.tls.request_client_cert || c.tls.require_client_cert))
    usage_error("%s", "--tls-client-certs needs --tls-cert, --tls-key and "
                "--tls-ca");
  {
    /* /metrics and /healthz serve HTTPS with the same certificate. */
    mica_err *pe = rpc_check_plaintext("--listen", c.listen,
                                       c.tls.cert_file != NULL, insecure);
    if (pe == NULL)
      pe = rpc_check_plaintext("--http-listen", c.http_listen,
                               c.tls.cert_file != NULL, insecure);
    if (pe != NULL) usage_error("%s", err_msg(pe));
  }
  {
    char note[600] = "";
    rpc_note_plaintext(note, sizeof note, "--listen", c.listen,
                       c.tls.cert_file != NULL);
    rpc_note_plaintext(note, sizeof note, "--http-listen", c.http_listen,
                       c.tls.cert_file != NULL);
    if (note[0])
      LOG_W("INSECURE (--insecure): plaintext on non-loopback %s: anyone on "
            "the network can read and change this traffic", note);
  }
  if (c.heartbeat_ms >= c.lease_ms)
    usage_error("%s", "--heartbeat-ms must be below --lease-ms");

  /* The data root's env, and the WAL's directory when it has one. */
  env *root_env = NULL, *route = NULL;
  bool root_s3 = false;
  {
    mica_err *re = data_root_open(c.data_dir, &storage, &root_env, &root_s3);
    if (re != NULL) usage_error("%s", err_msg(re));
    bool wal_s3 = wal_dir != NULL && env_s3_is_path(wal_dir);
    if (wal_s3 && !root_s3)
      usage_error("--wal-dir %s: a commit log on S3 needs an s3:// "
                  "--data-dir (whose storage flags it shares)", wal_dir);
    if (root_s3 && !c.shared_log && (wal_dir == NULL || wal_s3))
      usage_error("%s", "--commit-log tablet on an s3:// --data-dir needs "
                  "--wal-dir PATH (a POSIX directory): per-tablet segments "
                  "grow by appends, which S3 cannot do");
    if (wal_s3) {
      char *b = NULL, *k = NULL;
      mica_err *pe = env_s3_parse(wal_dir, &b, &k);
      free(b);
      free(k);
      if (pe != NULL) usage_error("--wal-dir: %s", err_msg(pe));
    }
    if (root_s3 && c.secret_file == NULL)
      usage_error("%s", "an s3:// --data-dir needs --cluster-secret-file "
                  "PATH: the cluster secret is never kept in the bucket");
    c.env = root_env;
    if (wal_dir != NULL) {
      /* The S3 env serves every bucket: a log on S3 elsewhere is the
       * same env under another root. */
      route = env_route_new(root_env, c.data_dir,
                            wal_s3 ? root_env : env_posix(), wal_dir,
                            is_wal_name);
      c.env = route;
      LOG_I("write-ahead log in %s, data in %s", wal_dir, c.data_dir);
    }
    if (root_s3 && wal_dir != NULL && !wal_s3)
      LOG_W("the write-ahead log is in the POSIX directory %s, not on S3: "
            "if that directory is on this machine's disk, losing the "
            "machine (or the disk) loses every write not yet flushed to "
            "%s; share it between the cluster's servers or accept that "
            "(docs/storage.md)", wal_dir, c.data_dir);
    else if (root_s3 || wal_s3)
      LOG_I("the commit log is on S3 (%s/logs): a write is acknowledged "
            "once its group's PUT succeeded, so losing this machine loses "
            "no acknowledged write", wal_s3 ? wal_dir : c.data_dir);
  }

  /* Block the shutdown signals before any thread exists, so every thread
   * inherits the mask and only sigwait below sees them. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  ts_server *s = NULL;
  mica_err *e = ts_server_new(&c, &s);
  if (e == NULL) e = ts_server_start(s);
  if (e != NULL) {
    fprintf(stderr, "mica-tserver: %s\n", err_msg(e));
    err_free(e);
    err_free(ts_server_stop(s));
    env_route_free(route);
    data_root_close(root_env, root_s3);
    return 1;
  }
  const char *addr = ts_server_address(s);
  const char *http = ts_server_http_address(s);
  printf("listening %s\nhttp %s\n", addr, http);
  fflush(stdout);
  /* The RPC address file last: scripts take it as "the server is up". */
  e = write_address("--http-address-file", http_address_file, http);
  if (e == NULL) e = write_address("--address-file", address_file, addr);
  if (e != NULL) {
    fprintf(stderr, "mica-tserver: %s\n", err_msg(e));
    err_free(e);
    err_free(ts_server_stop(s));
    env_route_free(route);
    data_root_close(root_env, root_s3);
    return 1;
  }

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  if (sig == SIGTERM && drain_ms > 0) {
    LOG_I("SIGTERM: draining before stopping");
    e = ts_server_drain(s, drain_ms);
    if (e != NULL) {
      LOG_W("drain: %s; stopping anyway", err_msg(e));
      err_free(e);
    }
  }
  LOG_I("signal %d: closing every tablet", sig);
  e = ts_server_stop(s);
  env_route_free(route);
  data_root_close(root_env, root_s3);
  if (e != NULL) {
    LOG_E("shutdown: %s", err_msg(e));
    err_free(e);
    return 1;
  }
  LOG_I("stopped cleanly");
  return 0;
}
