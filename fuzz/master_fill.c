/* master_fill: populates a master core through its public calls
 * (master_fill.h). */
#include "fuzz/master_fill.h"

#include <stdio.h>
#include <stdlib.h>

static void check(mica_err *err, const char *what) {
  if (err == NULL) return;
  fprintf(stderr, "master_fill: %s: %s\n", what, err_msg(err));
  abort();
}

/* Ticks and reports every action as done. */
static void settle(ms *m, uint64_t now) {
  for (int round = 0; round < 4; round++) {
    ms_action_list a = {0};
    check(ms_tick(m, now, &a), "tick");
    for (size_t i = 0; i < a.n; i++)
      check(ms_action_done(m, a.v[i].id, MICA_OK, now), "action done");
    ms_action_list_free(&a);
  }
}

static void heartbeat_all(ms *m, uint64_t id, uint64_t now) {
  ms_tablet_list l = {0};
  size_t cap = 0;
  ms_report rep[64];
  const char *tables[] = {"users", "events.v2"};
  for (size_t t = 0; t < 2; t++) {
    if (ms_list_tablets(m, tables[t], false, &l) != NULL) continue;
    for (size_t i = 0; i < l.n && cap < 64; i++) {
      if (l.v[i].server_id != id) continue;
      rep[cap].ref.tablet_id = l.v[i].tablet_id;
      rep[cap].ref.range_epoch = l.v[i].range_epoch;
      rep[cap].ref.assign_epoch = l.v[i].assign_epoch;
      rep[cap].stats.bytes = 1000 * (i + 1);
      rep[cap].stats.keys = 10 * (i + 1);
      rep[cap].stats.read_rate = 1.5;
      rep[cap].stats.write_rate = 0.25;
      cap++;
    }
    ms_tablet_list_free(&l);
  }
  ms_server_reply r = {0};
  check(ms_handle_heartbeat(m, id, 1, rep, cap, now, &r), "heartbeat");
  ms_server_reply_free(&r);
}

uint64_t fzm_populate(ms *m, uint64_t now) {
  ms_server_reply r = {0};
  check(ms_handle_register(m, "127.0.0.1:7001", NULL, 0, 1, NULL, 0, now, &r),
        "register");
  uint64_t s1 = r.server_id;
  ms_server_reply_free(&r);
  check(ms_handle_register(m, "127.0.0.1:7002", NULL, 0, 1, NULL, 0, now, &r),
        "register");
  uint64_t s2 = r.server_id;
  ms_server_reply_free(&r);

  slice splits[] = {slice_make("g", 1), slice_make("n\xff\x00q", 4),
                    slice_make("t<\"&>", 5)};
  check(ms_create_table(m, "users", splits, 3, now, NULL), "create users");
  check(ms_create_table(m, "events.v2", NULL, 0, now, NULL), "create events");
  check(ms_create_table(m, "scratch", NULL, 0, now, NULL), "create scratch");
  /* Table options: a TABLE_CREATE with its options tail, a salted layout,
   * and a TABLE_OPTIONS record. */
  ms_table_opts o;
  mto_init(&o);
  o.compression = MTO_COMP_ZSTD;
  o.salt_buckets = 3;
  check(ms_create_table_opts(m, "salted", splits, 1, &o, now, NULL),
        "create salted");
  o.salt_buckets = 0;
  o.block_size = 16384;
  o.bloom_bits = 0;
  check(ms_alter_table(m, "salted", &o, MS_ALTER_BLOCK_SIZE | MS_ALTER_BLOOM,
                       now, NULL),
        "alter salted");
  settle(m, now);
  now += 1000000;
  heartbeat_all(m, s1, now);
  heartbeat_all(m, s2, now);

  /* A split proposed by the server that serves the table's first tablet. */
  ms_tablet_list l = {0};
  check(ms_list_tablets(m, "users", false, &l), "list tablets");
  if (l.n > 0 && l.v[0].server_id != 0) {
    ms_ref parent = {l.v[0].tablet_id, l.v[0].range_epoch,
                     l.v[0].assign_epoch};
    ms_tablet_list out = {0};
    check(ms_handle_split(m, l.v[0].server_id, parent, slice_make("c", 1),
                          now, &out),
          "split");
    ms_tablet_list_free(&out);
  }
  ms_tablet_list_free(&l);
  check(ms_drop_table(m, "scratch", now), "drop");
  settle(m, now);
  bool off = false, bal, mer;
  check(ms_configure(m, &off, NULL, &bal, &mer), "configure");
  return now;
}
