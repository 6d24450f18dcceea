/* mhttp_demo: serves the status page over a sample cluster, for looking at
 * the page (docs/status-page.png is taken from it).
 *
 *   mhttp_demo DIR [--seconds N] [--big N]
 *
 * Builds, in a master core on DIR (which must not hold a master yet):
 * three servers of which one dies, three tables (one with hostile split
 * keys) of about forty tablets with figures, a split, a merge, a move and
 * opens left under way; then prints "http HOST:PORT" and serves until
 * SIGINT/SIGTERM or N seconds, heartbeating the two live servers. --big N
 * adds a table of N tablets (up to 10000), to look at a dense key space. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/http/mhttp.h"
#include "tests/master/http/hfix.h"

#define SEC 1000000ull
#define MiB (1024ull * 1024)

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static uint64_t wobble;

static void stats_of(const ms_tablet *t, ms_stats *out, void *ctx) {
  (void)ctx;
  uint64_t h = t->tablet_id * 2654435761u;
  out->bytes = ((h >> 7) % 700 + 8) * MiB + (h % 1000) * 1024;
  if (t->tablet_id % 9 == 0) out->bytes *= 4;
  out->keys = out->bytes / 180;
  out->read_rate = (double)((h >> 3) % 900) + (double)(wobble % 7);
  out->write_rate = (double)((h >> 5) % 300) + (double)(wobble % 3);
}

static void check(mica_err *err, const char *what) {
  if (err == NULL) return;
  fprintf(stderr, "mhttp_demo: %s: %s\n", what, err_msg(err));
  exit(1);
}

static uint64_t tablet_at(hfix *f, const char *table, size_t idx) {
  ms_tablet_list l = {NULL, 0};
  check(hfix_tablets(f, table, &l), "list");
  uint64_t id = idx < l.n ? l.v[idx].tablet_id : 0;
  ms_tablet_list_free(&l);
  return id;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mhttp_demo DIR [--seconds N] [--big N]\n");
    return 2;
  }
  long seconds = 0, big = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--seconds") == 0) seconds = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--big") == 0) big = atol(argv[i + 1]);
  }
  if (big > 10000) big = 10000;
  hfix f;
  check(hfix_open(&f, argv[1], 10 * SEC, 2 * SEC), "open");
  bool off = false;
  check(ms_configure(f.m, &off, NULL, NULL, NULL), "configure");
  int s[3];
  check(hfix_register(&f, "10.0.1.11:7100", &s[0]), "register");
  check(hfix_register(&f, "10.0.1.12:7100", &s[1]), "register");
  check(hfix_register(&f, "10.0.1.13:7100", &s[2]), "register");

  char ukeys[15][16];
  slice uk[15];
  for (int i = 0; i < 15; i++) {
    snprintf(ukeys[i], sizeof(ukeys[i]), "user:%04d", (i + 1) * 100);
    uk[i] = slice_from_str(ukeys[i]);
  }
  check(ms_create_table(f.m, "users", uk, 15, hfix_now(&f), NULL), "users");
  char ekeys[12][16];
  slice ek[12];
  for (int i = 0; i < 12; i++) {
    snprintf(ekeys[i], sizeof(ekeys[i]), "2026-%02d", i + 1);
    ek[i] = slice_from_str(ekeys[i]);
  }
  check(ms_create_table(f.m, "events", ek, 12, hfix_now(&f), NULL), "events");
  slice hk[] = {
      slice_make("\"quoted\" 'single'", 17),
      slice_make("</td><img src=x onerror=alert(2)>", 33),
      slice_make("<script>alert(1)</script>", 25),
      slice_make("back\\slash\nnewline", 18),
      slice_make("nul\0inside", 10),
      slice_make("\xff\xfe", 2),
  };
  check(ms_create_table(f.m, "hostile_keys", hk, sizeof(hk) / sizeof(hk[0]),
                        hfix_now(&f), NULL), "hostile");
  if (big > 1) {
    /* 24 bytes hold "row" and any long, so the name is never cut. */
    char (*bk)[24] = calloc((size_t)big, 24);
    slice *bs = calloc((size_t)big, sizeof(*bs));
    for (long i = 0; i + 1 < big; i++) {
      snprintf(bk[i], 24, "row%07ld", (i + 1) * 10);
      bs[i] = slice_from_str(bk[i]);
    }
    check(ms_create_table(f.m, "big", bs, (size_t)big - 1, hfix_now(&f), NULL),
          "big");
    free(bk);
    free(bs);
  }
  check(hfix_settle(&f, 1000, SIZE_MAX), "settle");
  for (int i = 0; i < 3; i++) check(hfix_heartbeat(&f, s[i], stats_of, NULL), "hb");

  check(hfix_split(&f, tablet_at(&f, "users", 3), slice_from_str("user:0350")),
        "split");
  check(hfix_split(&f, tablet_at(&f, "users", 0), slice_from_str("user:0042")),
        "split");
  check(ms_request_merge(f.m, tablet_at(&f, "events", 0),
                         tablet_at(&f, "events", 1), hfix_now(&f)), "merge");
  check(hfix_settle(&f, 10, SIZE_MAX), "settle");
  for (int i = 0; i < 3; i++) check(hfix_heartbeat(&f, s[i], stats_of, NULL), "hb");

  /* Server 3 goes silent: declared dead, its tablets reassigned, some of
   * the opens still under way. */
  for (int i = 0; i < 4; i++) {
    hfix_advance(&f, 4 * SEC);
    check(hfix_heartbeat(&f, s[0], stats_of, NULL), "hb");
    check(hfix_heartbeat(&f, s[1], stats_of, NULL), "hb");
  }
  check(hfix_settle(&f, 1, 4), "settle");
  ms_move mv;
  check(ms_request_move(f.m, tablet_at(&f, "events", 5), 0, hfix_now(&f), &mv),
        "move");
  check(hfix_settle(&f, 1, 0), "settle");

  mhttp_opts o;
  mhttp_opts_init(&o);
  o.cluster_name = "demo";
  o.master_address = "10.0.1.10:7000";
  o.now_us = hfix_clock;
  o.now_ctx = &f;
  /* Shown as a master up for a while (the clock may be younger). */
  uint64_t up = (3 * 3600 + 17 * 60) * SEC;
  o.start_us = hfix_now(&f) > up ? hfix_now(&f) - up : 1;
  mhttp *h;
  check(mhttp_start(&o, f.m, &h), "http");
  printf("http %s\n", mhttp_address(h));
  fflush(stdout);

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  for (long t = 0; !stop && (seconds == 0 || t < seconds * 2); t++) {
    usleep(500 * 1000);
    hfix_advance(&f, SEC / 2);
    wobble++;
    check(hfix_heartbeat(&f, s[0], stats_of, NULL), "hb");
    check(hfix_heartbeat(&f, s[1], stats_of, NULL), "hb");
  }
  mhttp_stop(h);
  hfix_close(&f);
  return 0;
}
