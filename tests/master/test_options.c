/* test_options: per-table options in the master's state (master/ms_options.c,
 * master/table_opts.c): create and alter with every check, the layout of a
 * salted table, the options carried by OpenTablet actions and heartbeat
 * replies, replay from the log and from a snapshot (sim_restart checks the
 * durable state byte for byte), and log records that must be refused as
 * corruption. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/path.h"
#include "master/metalog.h"
#include "master/ms_int.h"
#include "tests/master/sim.h"

#define S(str) slice_from_str(str)

static ms_table_opts opts_of(sim *c, const char *table) {
  ms_table_opts o;
  mto_init(&o);
  uint64_t id = 0;
  TU_OK(ms_table_options(c->m, table, &id, &o));
  CU_ASSERT(id != 0);
  return o;
}

static void test_create_and_alter(void) {
  sim c;
  sim_init(&c, NULL);
  ms_table_opts o;
  mto_init(&o);
  CU_ASSERT(mto_is_default(&o));
  o.compression = MTO_COMP_ZSTD;
  o.block_size = 8192;
  o.bloom_bits = 0;
  o.split_bytes = 32u << 20;
  TU_OK(ms_create_table_opts(c.m, "t", NULL, 0, &o, c.now, NULL));
  TU_OK(ms_create_table(c.m, "plain", NULL, 0, c.now, NULL));
  ms_table_opts got = opts_of(&c, "t");
  CU_ASSERT(mto_equal(&got, &o));
  got = opts_of(&c, "plain");
  CU_ASSERT(mto_is_default(&got));

  ms_table_opts a;
  mto_init(&a);
  a.compression = MTO_COMP_LZ4;
  a.block_size = 1; /* not in the mask */
  ms_table_opts now;
  TU_OK(ms_alter_table(c.m, "t", &a, MS_ALTER_COMPRESSION, c.now, &now));
  CU_ASSERT_EQUAL(now.compression, MTO_COMP_LZ4);
  CU_ASSERT_EQUAL(now.block_size, 8192);
  a.bloom_bits = 7;
  a.split_bytes = 0;
  TU_OK(ms_alter_table(c.m, "t", &a, MS_ALTER_BLOOM | MS_ALTER_SPLIT, c.now,
                       &now));
  CU_ASSERT_EQUAL(now.bloom_bits, 7);
  CU_ASSERT_EQUAL(now.split_bytes, 0);
  /* An alter to the same values logs nothing and succeeds. */
  TU_OK(ms_alter_table(c.m, "t", &a, MS_ALTER_BLOOM, c.now, NULL));

  ms_table_info *v = NULL;
  size_t n = 0;
  TU_OK(ms_list_tables(c.m, &v, &n));
  CU_ASSERT_EQUAL(n, 2);
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, "t") == 0) CU_ASSERT(mto_equal(&v[i].opts, &now));
  ms_table_infos_free(v, n);

  /* Replayed from log records, then from the snapshot the reopen wrote. */
  sim_restart(&c);
  got = opts_of(&c, "t");
  CU_ASSERT(mto_equal(&got, &now));
  sim_restart(&c);
  got = opts_of(&c, "t");
  CU_ASSERT(mto_equal(&got, &now));
  got = opts_of(&c, "plain");
  CU_ASSERT(mto_is_default(&got));

  /* Dropped: gone, and its name free for a table with other options. */
  TU_OK(ms_drop_table(c.m, "t", c.now));
  TU_ERR(ms_alter_table(c.m, "t", &a, MS_ALTER_BLOOM, c.now, NULL),
         MICA_NOT_FOUND);
  TU_OK(ms_create_table(c.m, "t", NULL, 0, c.now, NULL));
  got = opts_of(&c, "t");
  CU_ASSERT(mto_is_default(&got));
  sim_restart(&c);
  sim_free(&c);
}

static void test_refused(void) {
  sim c;
  sim_init(&c, NULL);
  ms_table_opts bad[7];
  for (int i = 0; i < 7; i++) mto_init(&bad[i]);
  bad[0].compression = 4;
  bad[1].split_bytes = 1000;
  bad[2].split_bytes = (uint64_t)1 << 41;
  bad[3].block_size = 512;
  bad[4].bloom_bits = 33;
  bad[5].salt_buckets = 1;
  bad[6].salt_buckets = 256;
  const char *names[7] = {"compression", "split_threshold", "split_threshold",
                          "block_size", "bloom_bits", "salt_buckets",
                          "salt_buckets"};
  for (int i = 0; i < 7; i++) {
    mica_err *e = ms_create_table_opts(c.m, "x", NULL, 0, &bad[i], c.now, NULL);
    CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(e ? strstr(err_msg(e), names[i]) : NULL);
    err_free(e);
  }
  uint64_t id = 0;
  TU_ERR(ms_table_options(c.m, "x", &id, NULL), MICA_NOT_FOUND);

  ms_table_opts o;
  mto_init(&o);
  o.block_size = 4096;
  TU_OK(ms_create_table_opts(c.m, "x", NULL, 0, &o, c.now, NULL));
  for (int i = 0; i < 5; i++)
    TU_ERR(ms_alter_table(c.m, "x", &bad[i],
                          MS_ALTER_COMPRESSION | MS_ALTER_SPLIT |
                              MS_ALTER_BLOCK_SIZE | MS_ALTER_BLOOM,
                          c.now, NULL),
           MICA_INVALID_ARGUMENT);
  ms_table_opts s;
  mto_init(&s);
  s.salt_buckets = 4;
  TU_ERR(ms_alter_table(c.m, "x", &s, MS_ALTER_COMPRESSION, c.now, NULL),
         MICA_INVALID_ARGUMENT);
  TU_ERR(ms_alter_table(c.m, "x", &o, 0, c.now, NULL), MICA_INVALID_ARGUMENT);
  ms_table_opts got = opts_of(&c, "x");
  CU_ASSERT(mto_equal(&got, &o));

  /* A salted table's split keys leave room for the salt byte. */
  s.salt_buckets = 2;
  char *big = calloc(c.o.max_key_len + 1, 1);
  memset(big, 'k', c.o.max_key_len);
  slice k = slice_make(big, c.o.max_key_len);
  TU_ERR(ms_create_table_opts(c.m, "y", &k, 1, &s, c.now, NULL),
         MICA_INVALID_ARGUMENT);
  k.len--;
  TU_OK(ms_create_table_opts(c.m, "y", &k, 1, &s, c.now, NULL));
  slice empty = S("");
  TU_ERR(ms_create_table_opts(c.m, "z", &empty, 1, &s, c.now, NULL),
         MICA_INVALID_ARGUMENT);
  slice two[2] = {S("b"), S("a")};
  TU_ERR(ms_create_table_opts(c.m, "z", two, 2, &s, c.now, NULL),
         MICA_INVALID_ARGUMENT);
  free(big);
  sim_free(&c);
}

static void test_salted_layout(void) {
  sim c;
  sim_init(&c, NULL);
  ms_table_opts o;
  mto_init(&o);
  o.salt_buckets = 3;
  slice keys[2] = {S("g"), S("p")};
  ms_tablet_list l = {0};
  TU_OK(ms_create_table_opts(c.m, "s", keys, 2, &o, c.now, &l));
  /* ["", 0g) [0g, 0p) [0p, 1) [1, 1g) [1g, 1p) [1p, 2) [2, 2g) [2g, 2p) [2p, "") */
  const char *starts[9] = {"", "\x00g", "\x00p", "\x01", "\x01g", "\x01p",
                           "\x02", "\x02g", "\x02p"};
  const size_t lens[9] = {0, 2, 2, 1, 2, 2, 1, 2, 2};
  CU_ASSERT_EQUAL_FATAL(l.n, 9);
  for (size_t i = 0; i < 9; i++) {
    CU_ASSERT(slice_eq(buf_slice(&l.v[i].start_key),
                       slice_make(starts[i], lens[i])));
    if (i + 1 < 9)
      CU_ASSERT(slice_eq(buf_slice(&l.v[i].end_key),
                         slice_make(starts[i + 1], lens[i + 1])));
  }
  ms_tablet_list_free(&l);
  sim_restart(&c);
  ms_table_opts got = opts_of(&c, "s");
  CU_ASSERT_EQUAL(got.salt_buckets, 3);
  sim_free(&c);
}

/* Options ride on OpenTablet actions and on heartbeat replies. */
static void test_sent_to_servers(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  ms_table_opts o;
  mto_init(&o);
  o.compression = MTO_COMP_NONE;
  o.split_bytes = 2u << 20;
  TU_OK(ms_create_table_opts(c.m, "t", NULL, 0, &o, c.now, NULL));
  ms_action_list l = {0};
  TU_OK(ms_tick(c.m, c.now, &l));
  size_t opens = 0;
  for (size_t i = 0; i < l.n; i++)
    if (l.v[i].type == MS_ACT_OPEN) {
      opens++;
      CU_ASSERT(mto_equal(&l.v[i].opts, &o));
    }
  CU_ASSERT_EQUAL(opens, 1);
  sim_perform(&c, &l);
  ms_action_list_free(&l);
  sim_settle(&c, 10);

  ms_table_opts a;
  mto_init(&a);
  a.compression = MTO_COMP_ZSTD;
  TU_OK(ms_alter_table(c.m, "t", &a, MS_ALTER_COMPRESSION, c.now, NULL));
  sim_srv *s = &c.s[0];
  ms_report *r = calloc((size_t)s->n + 1, sizeof(*r));
  for (int i = 0; i < s->n; i++) r[i].ref = s->served[i].ref;
  ms_server_reply rep;
  TU_OK(ms_handle_heartbeat(c.m, s->id, s->inc, r, (size_t)s->n, c.now, &rep));
  CU_ASSERT_EQUAL(rep.n_table_opts, 1);
  if (rep.n_table_opts == 1) {
    CU_ASSERT_EQUAL(rep.table_opts[0].opts.compression, MTO_COMP_ZSTD);
    CU_ASSERT_EQUAL(rep.table_opts[0].opts.split_bytes, 2u << 20);
  }
  ms_server_reply_free(&rep);
  free(r);
  sim_free(&c);
}

/* A server holding several tablets of each of several tables gets each
 * table's options once in a heartbeat reply, and none of a table whose
 * tablets it does not report. */
static void test_sent_once_per_table(void) {
  sim c;
  sim_init(&c, NULL);
  sim_start_server(&c, 0);
  const slice splits[] = {slice_from_str("g"), slice_from_str("p")};
  const char *names[] = {"a", "b", "c", "d"};
  ms_tablet_list d = {0};
  for (int i = 0; i < 4; i++) {
    ms_table_opts o;
    mto_init(&o);
    o.split_bytes = (uint64_t)(i + 1) << 20;
    TU_OK(ms_create_table_opts(c.m, names[i], splits, 2, &o, c.now,
                               i == 3 ? &d : NULL));
  }
  sim_settle(&c, 10);
  sim_srv *s = &c.s[0];
  CU_ASSERT_FATAL(s->n == 12);
  /* Reported newest first, without table d, and with one tablet the
   * master never made. */
  ms_report *r = calloc((size_t)s->n + 1, sizeof(*r));
  size_t n = 0;
  for (int i = s->n - 1; i >= 0; i--) {
    bool of_d = false;
    for (size_t k = 0; k < d.n; k++)
      of_d |= d.v[k].tablet_id == s->served[i].ref.tablet_id;
    if (!of_d) r[n++].ref = s->served[i].ref;
  }
  CU_ASSERT_FATAL(n == 9);
  r[n] = r[0];
  r[n++].ref.tablet_id = 999999;
  ms_server_reply rep;
  TU_OK(ms_handle_heartbeat(c.m, s->id, s->inc, r, n, c.now, &rep));
  bool seen[3] = {false, false, false};
  for (size_t i = 0; i < rep.n_table_opts; i++) {
    bool found = false;
    for (int k = 0; k < 3 && !found; k++) {
      uint64_t id;
      ms_table_opts want;
      TU_OK(ms_table_options(c.m, names[k], &id, &want));
      if (id != rep.table_opts[i].table_id) continue;
      found = true;
      CU_ASSERT(!seen[k]);
      seen[k] = true;
      CU_ASSERT(mto_equal(&rep.table_opts[i].opts, &want));
      CU_ASSERT_EQUAL(want.split_bytes, (uint64_t)(k + 1) << 20);
    }
    CU_ASSERT(found);
  }
  CU_ASSERT_EQUAL(rep.n_table_opts, 3);
  CU_ASSERT(seen[0] && seen[1] && seen[2]);
  ms_server_reply_free(&rep);
  ms_tablet_list_free(&d);
  free(r);
  sim_free(&c);
}

/* ---- records that must not replay ---- */

/* The snapshot payload a replay passed (to roll a copied log with). */

static buf g_snap;

static mica_err *keep_snapshot(void *ctx, uint8_t type, slice payload) {
  (void)ctx;
  if (type == REC_SNAPSHOT) {
    buf_clear(&g_snap);
    buf_append_slice(&g_snap, payload);
  }
  return NULL;
}

static void test_bad_records(void) {
  sim c;
  sim_init(&c, NULL);
  ms_table_opts o;
  mto_init(&o);
  o.salt_buckets = 4;
  TU_OK(ms_create_table_opts(c.m, "s", NULL, 0, &o, c.now, NULL));
  uint64_t id = 0;
  TU_OK(ms_table_options(c.m, "s", &id, NULL));
  ms_close(c.m);
  c.m = NULL;

  struct {
    uint64_t table;
    ms_table_opts o;
    bool truncate;
  } cases[4];
  for (int i = 0; i < 4; i++) {
    cases[i].table = id;
    cases[i].o = o;
    cases[i].truncate = false;
  }
  cases[0].table = id + 100;  /* no such table */
  cases[1].o.salt_buckets = 8; /* a salt cannot change */
  cases[2].truncate = true;   /* malformed */
  cases[3].o.block_size = 5;  /* out of range */
  for (int i = 0; i < 4; i++) {
    /* A fresh copy of the good state for each case. */
    sim d;
    sim_init(&d, NULL);
    ms_close(d.m);
    d.m = NULL;
    char *from = path_join(c.o.data_root, "master");
    char *to = path_join(d.o.data_root, "master");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/LOCK'",
             to, from, to, to);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    free(from);
    free(to);
    buf p = BUF_INIT;
    put_varint64(&p, cases[i].table);
    if (cases[i].o.block_size == 5) {
      put_varint64(&p, 0);
      put_varint64(&p, 0);
      put_varint64(&p, 5);
      put_varint64(&p, 0);
      put_varint64(&p, cases[i].o.salt_buckets);
    } else {
      mto_encode(&cases[i].o, &p);
    }
    if (cases[i].truncate) p.len--;
    char *dir = path_join(d.o.data_root, "master");
    mlog *m = NULL;
    TU_OK(mlog_open(d.o.env, dir, keep_snapshot, NULL, &m));
    TU_OK(mlog_roll(m, REC_SNAPSHOT, buf_slice(&g_snap)));
    TU_OK(mlog_append(m, REC_TABLE_OPTIONS, buf_slice(&p)));
    mlog_close(m);
    free(dir);
    buf_free(&p);
    ms *bad = NULL;
    mica_err *e = ms_open(&d.o, d.now, &bad);
    CU_ASSERT_EQUAL(err_code(e), MICA_CORRUPTION);
    if (e != NULL) CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(e), "options"));
    err_free(e);
    ms_close(bad);
  }
  /* The original still opens, with its options. */
  TU_OK(ms_open(&c.o, c.now, &c.m));
  ms_table_opts got = opts_of(&c, "s");
  CU_ASSERT_EQUAL(got.salt_buckets, 4);
  sim_free(&c);
  buf_free(&g_snap);
}

static void test_encoding(void) {
  ms_table_opts o, back;
  mto_init(&o);
  o.compression = MTO_COMP_ZSTD;
  o.split_bytes = MTO_MAX_SPLIT_BYTES;
  o.block_size = MTO_MAX_BLOCK_SIZE;
  o.bloom_bits = 0;
  o.salt_buckets = 255;
  buf b = BUF_INIT;
  mto_encode(&o, &b);
  const uint8_t *end = mto_decode(b.data, b.data + b.len, &back);
  CU_ASSERT(end == b.data + b.len);
  CU_ASSERT(mto_equal(&o, &back));
  for (size_t cut = 0; cut < b.len; cut++)
    CU_ASSERT_PTR_NULL(mto_decode(b.data, b.data + cut, &back));
  int comp = -1;
  CU_ASSERT(mto_compression_parse("zstd", &comp) && comp == MTO_COMP_ZSTD);
  CU_ASSERT(mto_compression_parse("", &comp) && comp == MTO_COMP_DEFAULT);
  CU_ASSERT(!mto_compression_parse("gzip", &comp));
  CU_ASSERT_STRING_EQUAL(mto_compression_name(MTO_COMP_LZ4), "lz4");
  buf_free(&b);
}

static void add_suites(void) {
  static const CU_TestInfo tests[] = {
      {"create_and_alter", test_create_and_alter},
      {"refused", test_refused},
      {"salted_layout", test_salted_layout},
      {"sent_to_servers", test_sent_to_servers},
      {"sent_once_per_table", test_sent_once_per_table},
      {"bad_records", test_bad_records},
      {"encoding", test_encoding},
      CU_TEST_INFO_NULL};
  tu_add_suite("options", tests);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
