/* test_cluster_split: growth through automatic splits and balancing.
 *
 * Three tablet servers with a 1 MiB split threshold; four writers load
 * ~50 MiB (20 MiB under AddressSanitizer, which is several times slower,
 * and on S3, where every flush, split and compaction goes through s3rver:
 * the same splits and balancing, fewer of them) of 1 KiB values through the protocol into one table that starts as a
 * single tablet. The table must split into many tablets, the balancer must
 * spread them over the three servers within its band (count within
 * max(1, 20%) of the mean, as the master's default band), and a full scan
 * across all tablets must return every key exactly once, in order, with
 * its value. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/cluster.h"
#include "tests/cluster/kvc.h"
#include "tests/harness/testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define FULL_LOAD_MB 20
#else
#define FULL_LOAD_MB 50
#endif
#define S3_LOAD_MB 20
static int g_load_mb; /* FULL_LOAD_MB, or S3_LOAD_MB on S3 */
#define LOAD_MB g_load_mb
#define VALUE_BYTES 1024
#define WRITERS 4
#define BATCH 128

static cluster *g_c;
static uint64_t g_keys; /* keys written: 0 .. g_keys-1 */

/* Key i is a scrambled 32-bit number, so every tablet of the growing table
 * takes writes. */
static uint32_t scramble(uint64_t i) {
  return (uint32_t)((i * 2654435761u) ^ (i >> 7));
}

static void key_of(uint64_t i, char *k, size_t n) {
  snprintf(k, n, "u%08x-%06" PRIu64, scramble(i), i);
}

static void value_of(uint64_t i, char *v) {
  for (size_t k = 0; k < VALUE_BYTES; k++)
    v[k] = (char)('a' + (i * 31 + k) % 26);
}

typedef struct kent {
  char key[32];
  uint64_t i;
} kent;

static int kent_cmp(const void *a, const void *b) {
  return strcmp(((const kent *)a)->key, ((const kent *)b)->key);
}

static atomic_int g_failed;

static void *writer_main(void *arg) {
  uint64_t w = (uint64_t)(uintptr_t)arg;
  kent ents[BATCH];
  slice keys[BATCH], vals[BATCH];
  char *vbuf = xmalloc((size_t)BATCH * VALUE_BYTES);
  for (uint64_t base = w * BATCH; base < g_keys; base += WRITERS * BATCH) {
    size_t n = 0;
    for (uint64_t i = base; i < base + BATCH && i < g_keys; i++, n++) {
      key_of(i, ents[n].key, sizeof(ents[n].key));
      ents[n].i = i;
    }
    qsort(ents, n, sizeof(ents[0]), kent_cmp);
    for (size_t k = 0; k < n; k++) {
      keys[k] = slice_from_str(ents[k].key);
      value_of(ents[k].i, vbuf + k * VALUE_BYTES);
      vals[k] = slice_make(vbuf + k * VALUE_BYTES, VALUE_BYTES);
    }
    mica_err *err = kvc_put_sorted(g_c, "big", keys, vals, n, 60000);
    if (err) {
      fprintf(stderr, "\nwriter %" PRIu64 ": %s\n", w, err_msg(err));
      err_free(err);
      atomic_store(&g_failed, 1);
      break;
    }
  }
  free(vbuf);
  return NULL;
}

typedef struct scan_state {
  kent *want; /* sorted */
  uint64_t n, at;
  uint64_t bad;
  char *vbuf;
} scan_state;

static bool on_row(void *arg, slice k, slice v) {
  scan_state *s = arg;
  if (s->at >= s->n) {
    s->bad++;
    return true;
  }
  const kent *e = &s->want[s->at++];
  value_of(e->i, s->vbuf);
  if (!slice_eq(k, slice_from_str(e->key)) ||
      !slice_eq(v, slice_make(s->vbuf, VALUE_BYTES))) {
    if (s->bad++ < 5)
      fprintf(stderr, "\nscan row %" PRIu64 ": got %.*s, want %s\n",
              s->at - 1, (int)(k.len < 40 ? k.len : 40), (const char *)k.data,
              e->key);
  }
  return true;
}

static void server_counts(uint64_t *counts, size_t *n) {
  rpc_list_servers_request q = {0};
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_servers, &q, 5000, &m));
  const rpc_list_servers_response *ls = (const void *)m;
  *n = 0;
  for (size_t i = 0; i < ls->n_servers && *n < 16; i++)
    if (ls->servers[i].state == RPC_SERVER_LIVE)
      counts[(*n)++] = ls->servers[i].tablet_count;
  rpc_msg_free(m);
}

static bool in_band(const uint64_t *counts, size_t n) {
  if (n == 0) return false;
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += counts[i];
  double mean = (double)total / (double)n;
  double slack = mean * 0.2 > 1.0 ? mean * 0.2 : 1.0;
  for (size_t i = 0; i < n; i++)
    if ((double)counts[i] > mean + slack || (double)counts[i] < mean - slack)
      return false;
  return true;
}

static void test_split_and_balance(void) {
  cl_options o;
  cl_options_init(&o);
  g_load_mb = o.s3 ? S3_LOAD_MB : FULL_LOAD_MB;
  o.split_threshold = 1 << 20;
  static const char *const margs[] = {"--merge", "off", NULL};
  o.master_args = margs;
  TU_OK(cl_start(&o, &g_c));
  TU_OK(kvc_create_table(g_c, "big", NULL, 0));
  g_keys = (uint64_t)LOAD_MB * 1024 * 1024 / VALUE_BYTES;

  uint64_t t0 = cl_now_ms();
  pthread_t th[WRITERS];
  for (uintptr_t w = 0; w < WRITERS; w++)
    pthread_create(&th[w], NULL, writer_main, (void *)w);
  for (int w = 0; w < WRITERS; w++) pthread_join(th[w], NULL);
  CU_ASSERT_FALSE_FATAL(atomic_load(&g_failed));
  uint64_t t1 = cl_now_ms();

  /* Splits follow the load: many tablets, then the balancer spreads them
   * (splits keep both daughters on the server of the parent). */
  uint64_t counts[16];
  size_t n = 0, tablets = 0, last = 0;
  uint64_t until = cl_now_ms() + 90000, stable_since = cl_now_ms();
  for (;;) {
    server_counts(counts, &n);
    tablets = 0;
    for (size_t i = 0; i < n; i++) tablets += counts[i];
    if (tablets != last || !in_band(counts, n)) stable_since = cl_now_ms();
    last = tablets;
    /* Done once splitting has settled (no change for 3 s) in the band. */
    if (tablets >= (size_t)LOAD_MB / 4 && cl_now_ms() - stable_since > 3000)
      break;
    if (cl_now_ms() > until) break;
    cl_sleep_ms(250);
  }
  fprintf(stderr, "\n  %d MiB loaded in %" PRIu64 " ms; %zu tablets on %zu "
          "servers:", LOAD_MB, t1 - t0, tablets, n);
  for (size_t i = 0; i < n; i++) fprintf(stderr, " %" PRIu64, counts[i]);
  fprintf(stderr, "\n");
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT_TRUE(tablets >= (size_t)LOAD_MB / 4);
  CU_ASSERT_TRUE(in_band(counts, n));

  /* The table's tablets tile the key space. */
  rpc_list_tablets_request lq = {0};
  lq.table = "big";
  void *m = NULL;
  TU_OK(cl_call_master(g_c, &rpc_m_master_list_tablets, &lq, 5000, &m));
  const rpc_list_tablets_response *lt = (const void *)m;
  CU_ASSERT_TRUE(lt->n_tablets >= (size_t)LOAD_MB / 4);
  CU_ASSERT_EQUAL(lt->tablets[0].desc->start_key.len, 0);
  CU_ASSERT_EQUAL(lt->tablets[lt->n_tablets - 1].desc->end_key.len, 0);
  for (size_t i = 1; i < lt->n_tablets; i++) {
    const slice *a = &lt->tablets[i - 1].desc->end_key;
    const slice *b = &lt->tablets[i].desc->start_key;
    CU_ASSERT_TRUE(a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
  }
  rpc_msg_free(m);

  /* A full scan returns every key once, in order, with its value. */
  scan_state s = {0};
  s.n = g_keys;
  s.want = xcalloc(g_keys, sizeof(*s.want));
  s.vbuf = xmalloc(VALUE_BYTES);
  for (uint64_t i = 0; i < g_keys; i++) {
    key_of(i, s.want[i].key, sizeof(s.want[i].key));
    s.want[i].i = i;
  }
  qsort(s.want, g_keys, sizeof(*s.want), kent_cmp);
  TU_OK(kvc_scan(g_c, "big", on_row, &s, 120000));
  CU_ASSERT_EQUAL(s.at, g_keys);
  CU_ASSERT_EQUAL(s.bad, 0);
  free(s.want);
  free(s.vbuf);

  cl_free(g_c);
  g_c = NULL;
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("split", NULL, NULL);
  CU_add_test(s, "split_and_balance", test_split_and_balance);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
