/* mzk-candidate: one master candidate as a process, for the multi-host
 * test bed and for trying the election by hand. It campaigns with
 * master/zk and, until SIGTERM or SIGINT, rewrites a status file every
 * 50 ms (atomically, by rename) and prints each role change on stdout. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "master/zk/mzk.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void on_change(void *ctx, bool active, uint64_t epoch,
                      const char *why) {
  (void)ctx;
  printf("%s epoch=%" PRIu64 " (%s)\n", active ? "ACTIVE" : "STANDBY", epoch,
         why);
  fflush(stdout);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: mzk-candidate --zk HOST:PORT[,...][/chroot] --rpc HOST:PORT\n"
          "                     [--http HOST:PORT] [--timeout-ms N]\n"
          "                     [--min-epoch N] [--status FILE]\n"
          "Campaigns to be the active master; prints ACTIVE/STANDBY lines.\n"
          "--status FILE is rewritten every 50 ms with lines 'active 0|1',\n"
          "'epoch N', 'wins N', 'sessions N', 'watch_events N', 'connected "
          "0|1',\n'candidate NAME' and 'writes N' (this file's rewrites).\n"
          "example: mzk-candidate --zk 127.0.0.1:2181/mica --rpc "
          "127.0.0.1:7000 --status /tmp/c1\n");
}

static int write_status(const char *path, mzk_elector *e) {
  static unsigned long long writes;
  mzk_elector_stats st;
  mzk_elector_get_stats(e, &st);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) return -1;
  fprintf(f,
          "active %d\nepoch %" PRIu64 "\nwins %" PRIu64 "\nsessions %" PRIu64
          "\nwatch_events %" PRIu64 "\nconnected %d\ncandidate %s\n"
          "writes %llu\n",
          st.active, st.epoch, st.wins, st.sessions, st.watch_events,
          st.connected, st.candidate, ++writes);
  if (fclose(f) != 0) return -1;
  return rename(tmp, path);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"zk", required_argument, 0, 'z'},
      {"rpc", required_argument, 0, 'r'},
      {"http", required_argument, 0, 'H'},
      {"timeout-ms", required_argument, 0, 't'},
      {"min-epoch", required_argument, 0, 'm'},
      {"status", required_argument, 0, 's'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  mzk_elector_opts o = {.on_change = on_change};
  const char *status = NULL;
  int c;
  char *end;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'z': o.zk = optarg; break;
      case 'r': o.rpc_addr = optarg; break;
      case 'H': o.http_addr = optarg; break;
      case 's': status = optarg; break;
      case 't':
        o.session_timeout_ms = (int)strtol(optarg, &end, 10);
        if (*end || o.session_timeout_ms <= 0) {
          fprintf(stderr, "mzk-candidate: --timeout-ms '%s' is not a "
                  "positive number\n", optarg);
          return 2;
        }
        break;
      case 'm':
        o.min_epoch = strtoull(optarg, &end, 10);
        if (*end || optarg[0] == '-' || optarg[0] == '\0') {
          fprintf(stderr, "mzk-candidate: --min-epoch '%s' is not a "
                  "number\n", optarg);
          return 2;
        }
        break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (o.zk == NULL || o.rpc_addr == NULL || optind != argc) {
    fprintf(stderr, "mzk-candidate: --zk and --rpc are required\n");
    usage(stderr);
    return 2;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  mzk_elector *e;
  mica_err *err = mzk_elector_start(&o, &e);
  if (err != NULL) {
    fprintf(stderr, "mzk-candidate: %s\n", err_msg(err));
    err_free(err);
    return 1;
  }
  int rc = 0;
  while (!stop) {
    if (status != NULL && write_status(status, e) != 0) {
      fprintf(stderr, "mzk-candidate: cannot write %s: %m\n", status);
      rc = 1;
      break;
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  mzk_elector_close(e);
  return rc;
}
