/* mica-netns-check: the "no acknowledged write is lost" checker of the
 * multi-host tests (tests/netns/). It talks to a cluster only through
 * libmica, so it follows the active master exactly as any client does
 * (`zk://HOST:PORT/chroot`, a comma-separated list, or one address).
 *
 *   load     writer threads put keys until a stop file appears (or SIGTERM
 *            or --duration-ms); every put that returned MICA_OK is appended
 *            to the ack file as "KEY VALUE ACK_UNIX_MS LATENCY_US" and
 *            flushed at once, so the file lists acknowledged puts only, and
 *            all of them, even if the process is killed. At the end it
 *            prints one summary line (acked, failed, latency percentiles,
 *            the longest time without an acknowledgement).
 *   verify   reads every key of one or more ack files back (multi-get in
 *            batches) and fails, naming keys, if any is missing or holds
 *            another value.
 *   failover measures, from a given instant, the time until a cold client
 *            (no cached route) gets a key, which needs a LookupTablets
 *            answered by the active master, and then until an admin change
 *            (CreateTable of a new table) succeeds.
 *
 * Keys are made from the tablets the table has when `load` starts: writer w
 * puts its n-th key into tablet (w + n) mod T as START.PREFIX.w.n, so every
 * tablet (or, with --server, every tablet that server serves) gets writes.
 * Each writer owns its keys and writes each once, so a key read back with
 * its value proves that very put survived. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mica/mica.h"

#define MAX_WRITERS 64
#define MAX_LAT (1 << 21) /* latency samples kept */

static const char *prog = "mica-netns-check";

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", prog);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(2);
}

static int64_t now_unix_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int64_t mono_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&t, NULL);
}

static long parse_num(const char *flag, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno != 0 || *v == '\0' || *end != '\0' || n < lo || n > hi) {
    fprintf(stderr, "%s: %s: '%s' is not a number in %ld..%ld\n", prog, flag,
            v, lo, hi);
    exit(2);
  }
  return n;
}

static mica_client *open_client(const char *master, int64_t deadline_ms) {
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = deadline_ms;
  o.backoff_max_ms = 200;
  mica_client *c = NULL;
  if (mica_open(master, &o, &c) != MICA_OK) die("mica_open: %s", mica_errmsg());
  return c;
}

/* ---- load ---- */

typedef struct range {
  char *start;
  size_t start_len;
  char *end;
  size_t end_len;
} range;

static struct {
  const char *master, *table, *prefix, *stop_file, *server;
  int writers;
  int64_t deadline_ms, until_mono_us, pause_ms;
  range *ranges;
  size_t n_ranges;
  FILE *acks;
  pthread_mutex_t mu; /* guards acks, lat, n_lat, last_ack_us, max_gap_us */
  int64_t *lat;
  size_t n_lat;
  int64_t last_ack_us, max_gap_us, first_ack_us;
  atomic_long acked, failed;
  atomic_bool stop;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_term(int sig) {
  (void)sig;
  atomic_store(&L.stop, true);
}

static bool should_stop(void) {
  if (atomic_load(&L.stop)) return true;
  if (L.until_mono_us > 0 && mono_us() >= L.until_mono_us) return true;
  if (L.stop_file != NULL && access(L.stop_file, F_OK) == 0) return true;
  return false;
}

static void *writer(void *arg) {
  int w = (int)(intptr_t)arg;
  mica_client *c = open_client(L.master, L.deadline_ms);
  char key[600], val[128];
  int printed = 0;
  for (long n = 0; !should_stop(); n++) {
    range *r = &L.ranges[(size_t)(w + n) % L.n_ranges];
    int kl = snprintf(key, sizeof key, "%.*s.%s.%d.%09ld", (int)r->start_len,
                      r->start, L.prefix, w, n);
    int vl = snprintf(val, sizeof val, "v.%s.%d.%ld.%ld", L.prefix, w, n,
                      (long)(mono_us() % 1000003));
    int64_t t0 = mono_us();
    int rc = mica_put(c, L.table, key, (size_t)kl, val,
                      (size_t)vl);
    int64_t t1 = mono_us();
    if (rc == MICA_OK) {
      int64_t ack_ms = now_unix_ms();
      pthread_mutex_lock(&L.mu);
      fprintf(L.acks, "%s %s %" PRId64 " %" PRId64 "\n", key, val, ack_ms,
              t1 - t0);
      fflush(L.acks);
      if (L.n_lat < MAX_LAT) L.lat[L.n_lat++] = t1 - t0;
      if (L.last_ack_us == 0) L.first_ack_us = t1;
      else if (t1 - L.last_ack_us > L.max_gap_us)
        L.max_gap_us = t1 - L.last_ack_us;
      if (t1 > L.last_ack_us) L.last_ack_us = t1;
      pthread_mutex_unlock(&L.mu);
      atomic_fetch_add(&L.acked, 1);
    } else {
      atomic_fetch_add(&L.failed, 1);
      if (printed++ < 3 || printed % 100 == 0)
        fprintf(stderr, "%s: %" PRId64 " writer %d: put %s: %s: %s\n", prog,
                now_unix_ms(), w, key, mica_code_name(rc), mica_errmsg());
    }
    if (L.pause_ms > 0) sleep_ms((int)L.pause_ms);
  }
  mica_close(c);
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static char *dup_bytes(const void *p, size_t n) {
  char *s = malloc(n + 1);
  if (s == NULL) die("%s", "out of memory");
  if (n > 0) memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* The tablets keys go to: all of the table's, or those served at
 * L.server. Waits (up to the deadline) until the table's tablets all have
 * a server, so a fresh table is fully open. */
static void load_ranges(mica_client *c) {
  int64_t until = mono_us() + L.deadline_ms * 1000;
  for (;;) {
    mica_tablet_info *t = NULL;
    size_t n = 0;
    int rc = mica_list_tablets(c, L.table, &t, &n);
    bool all_served = rc == MICA_OK;
    for (size_t i = 0; rc == MICA_OK && i < n; i++)
      if (strcmp(t[i].state, "serving") != 0) all_served = false;
    if (all_served) {
      L.ranges = calloc(n, sizeof *L.ranges);
      for (size_t i = 0; i < n; i++) {
        if (L.server != NULL && strcmp(t[i].address, L.server) != 0) continue;
        /* Keys start with the tablet's start key and the ack file is
         * text, one put per line: a start key must be printable. */
        for (size_t b = 0; b < t[i].start_len; b++) {
          unsigned char ch = ((const unsigned char *)t[i].start_key)[b];
          if (ch <= ' ' || ch > '~') {
            char id[32];
            snprintf(id, sizeof id, "%" PRIu64, t[i].tablet_id);
            die("tablet %s starts at a key with bytes outside '!'..'~'; "
                "the checker needs printable split keys", id);
          }
        }
        range *r = &L.ranges[L.n_ranges++];
        r->start = dup_bytes(t[i].start_key, t[i].start_len);
        r->start_len = t[i].start_len;
        r->end = dup_bytes(t[i].end_key, t[i].end_len);
        r->end_len = t[i].end_len;
      }
      mica_free(t);
      if (L.n_ranges == 0)
        die("no tablet of the table is served at '%s'", L.server);
      return;
    }
    if (rc != MICA_OK && rc != MICA_UNAVAILABLE &&
        rc != MICA_DEADLINE_EXCEEDED)
      die("listing the table's tablets: %s", mica_errmsg());
    mica_free(t);
    if (mono_us() > until) die("%s", "the table's tablets are not all serving");
    sleep_ms(100);
  }
}

static int cmd_load(int argc, char **argv) {
  const char *acks = NULL;
  long duration_ms = 0;
  L.writers = 4;
  L.deadline_ms = 10000;
  L.prefix = "p";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) die("%s needs a value", a);
    i++;
    if (strcmp(a, "--master") == 0) L.master = v;
    else if (strcmp(a, "--table") == 0) L.table = v;
    else if (strcmp(a, "--acks") == 0) acks = v;
    else if (strcmp(a, "--prefix") == 0) L.prefix = v;
    else if (strcmp(a, "--stop-file") == 0) L.stop_file = v;
    else if (strcmp(a, "--server") == 0) L.server = v;
    else if (strcmp(a, "--writers") == 0)
      L.writers = (int)parse_num(a, v, 1, MAX_WRITERS);
    else if (strcmp(a, "--deadline-ms") == 0)
      L.deadline_ms = parse_num(a, v, 1, 3600000);
    else if (strcmp(a, "--duration-ms") == 0)
      duration_ms = parse_num(a, v, 1, 86400000);
    else if (strcmp(a, "--pause-ms") == 0)
      L.pause_ms = parse_num(a, v, 0, 60000);
    else die("load: unknown flag '%s' (see --help)", a);
  }
  if (L.master == NULL || L.table == NULL || acks == NULL)
    die("%s", "load needs --master, --table and --acks");
  for (const char *p = L.prefix; *p; p++)
    if (*p == ' ' || *p == '.' || *p == '\n')
      die("--prefix '%s' may not hold spaces or dots", L.prefix);
  L.acks = fopen(acks, "a");
  if (L.acks == NULL) die("cannot open the ack file '%s'", acks);
  L.lat = malloc(MAX_LAT * sizeof *L.lat);
  if (L.lat == NULL) die("%s", "out of memory");
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  mica_client *c = open_client(L.master, L.deadline_ms);
  load_ranges(c);
  mica_close(c);
  if (duration_ms > 0) L.until_mono_us = mono_us() + duration_ms * 1000;
  printf("loading %zu tablets with %d writers\n", L.n_ranges, L.writers);
  fflush(stdout);

  pthread_t th[MAX_WRITERS];
  for (int w = 0; w < L.writers; w++)
    pthread_create(&th[w], NULL, writer, (void *)(intptr_t)w);
  for (int w = 0; w < L.writers; w++) pthread_join(th[w], NULL);
  fclose(L.acks);

  qsort(L.lat, L.n_lat, sizeof *L.lat, cmp_i64);
  int64_t p50 = 0, p99 = 0, mx = 0;
  if (L.n_lat > 0) {
    p50 = L.lat[L.n_lat / 2];
    p99 = L.lat[L.n_lat * 99 / 100];
    mx = L.lat[L.n_lat - 1];
  }
  double secs = L.n_lat > 1 ? (L.last_ack_us - L.first_ack_us) / 1e6 : 0;
  printf("acked %ld failed %ld p50_us %" PRId64 " p99_us %" PRId64
         " max_us %" PRId64 " max_gap_ms %" PRId64 " puts_per_s %.0f\n",
         atomic_load(&L.acked), atomic_load(&L.failed), p50, p99, mx,
         L.max_gap_us / 1000, secs > 0 ? (double)L.n_lat / secs : 0.0);
  for (size_t i = 0; i < L.n_ranges; i++) {
    free(L.ranges[i].start);
    free(L.ranges[i].end);
  }
  free(L.ranges);
  free(L.lat);
  return 0;
}

/* ---- verify ---- */

typedef struct ackrec {
  char *key, *val;
} ackrec;

static int cmd_verify(int argc, char **argv) {
  const char *master = NULL, *table = NULL;
  int first_file = argc;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) != 0) {
      first_file = i;
      break;
    }
    if (i + 1 >= argc) die("%s needs a value", argv[i]);
    if (strcmp(argv[i], "--master") == 0) master = argv[++i];
    else if (strcmp(argv[i], "--table") == 0) table = argv[++i];
    else die("verify: unknown flag '%s' (see --help)", argv[i]);
  }
  if (master == NULL || table == NULL || first_file >= argc)
    die("%s", "verify needs --master, --table and at least one ack file");

  ackrec *recs = NULL;
  size_t n = 0, cap = 0;
  for (int f = first_file; f < argc; f++) {
    FILE *in = fopen(argv[f], "r");
    if (in == NULL) die("cannot open the ack file '%s'", argv[f]);
    char line[1024];
    unsigned long lineno = 0;
    while (fgets(line, sizeof line, in) != NULL) {
      lineno++;
      char *nl = strchr(line, '\n');
      /* A line cut short by a kill mid-write was never complete: the put
       * it would record may or may not have been acknowledged. */
      if (nl == NULL) {
        fprintf(stderr, "%s: %s:%lu: incomplete last line ignored\n", prog,
                argv[f], lineno);
        break;
      }
      *nl = '\0';
      char *sp = strchr(line, ' ');
      char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
      if (sp == NULL || sp2 == NULL) {
        fprintf(stderr, "%s: %s:%lu: not 'KEY VALUE ...'\n", prog, argv[f],
                lineno);
        exit(2);
      }
      if (n == cap) {
        cap = cap ? cap * 2 : 4096;
        recs = realloc(recs, cap * sizeof *recs);
        if (recs == NULL) die("%s", "out of memory");
      }
      recs[n].key = dup_bytes(line, (size_t)(sp - line));
      recs[n].val = dup_bytes(sp + 1, (size_t)(sp2 - sp - 1));
      n++;
    }
    fclose(in);
  }

  mica_client *c = open_client(master, 30000);
  size_t missing = 0, wrong = 0, errors = 0;
  const size_t batch = 256;
  mica_key *keys = calloc(batch, sizeof *keys);
  for (size_t at = 0; at < n; at += batch) {
    size_t m = n - at < batch ? n - at : batch;
    for (size_t i = 0; i < m; i++) {
      keys[i].data = recs[at + i].key;
      keys[i].len = strlen(recs[at + i].key);
    }
    mica_value *v = NULL;
    int rc = MICA_UNAVAILABLE;
    /* The cluster may still be settling (a tablet reopening): retry a
     * batch whose keys did not all get an answer. */
    for (int attempt = 0; attempt < 10; attempt++) {
      mica_free(v);
      v = NULL;
      rc = mica_multi_get(c, table, keys, m, &v);
      if (rc == MICA_OK || rc == MICA_NOT_FOUND) break;
      sleep_ms(500);
    }
    for (size_t i = 0; i < m; i++) {
      ackrec *r = &recs[at + i];
      int code = v ? v[i].code : rc;
      if (code == MICA_NOT_FOUND) {
        if (missing++ < 20) fprintf(stderr, "LOST: %s\n", r->key);
      } else if (code != MICA_OK) {
        if (errors++ < 20)
          fprintf(stderr, "UNREADABLE: %s: %s\n", r->key,
                  mica_code_name(code));
      } else if (v[i].len != strlen(r->val) ||
                 memcmp(v[i].data, r->val, v[i].len) != 0) {
        if (wrong++ < 20)
          fprintf(stderr, "WRONG VALUE: %s: '%.*s', acknowledged '%s'\n",
                  r->key, (int)v[i].len, (const char *)v[i].data, r->val);
      }
    }
    mica_free(v);
  }
  printf("verified %zu acknowledged puts: missing %zu wrong %zu unreadable "
         "%zu\n",
         n, missing, wrong, errors);
  free(keys);
  for (size_t i = 0; i < n; i++) {
    free(recs[i].key);
    free(recs[i].val);
  }
  free(recs);
  mica_close(c);
  return missing == 0 && wrong == 0 && errors == 0 ? 0 : 1;
}

/* ---- failover ---- */

static int cmd_failover(int argc, char **argv) {
  const char *master = NULL, *table = NULL, *key = NULL, *new_table = NULL;
  int64_t since = 0, timeout_ms = 60000, attempt_ms = 1000;
  for (int i = 0; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) die("%s needs a value", a);
    if (strcmp(a, "--master") == 0) master = v;
    else if (strcmp(a, "--table") == 0) table = v;
    else if (strcmp(a, "--key") == 0) key = v;
    else if (strcmp(a, "--create") == 0) new_table = v;
    else if (strcmp(a, "--since-ms") == 0)
      since = parse_num(a, v, 1, 0x7fffffffffffffffL);
    else if (strcmp(a, "--timeout-ms") == 0)
      timeout_ms = parse_num(a, v, 1, 3600000);
    else if (strcmp(a, "--attempt-ms") == 0)
      attempt_ms = parse_num(a, v, 1, 3600000);
    else die("failover: unknown flag '%s' (see --help)", a);
  }
  if (!master || !table || !key || !new_table || since == 0)
    die("%s", "failover needs --master, --table, --key, --create and "
              "--since-ms");
  int64_t until = now_unix_ms() + timeout_ms;
  int rc = MICA_UNAVAILABLE;
  while (now_unix_ms() < until) {
    /* A client with an empty routing cache: its get needs LookupTablets. */
    mica_client *c = open_client(master, attempt_ms);
    void *v = NULL;
    size_t vl = 0;
    rc = mica_get(c, table, key, strlen(key), &v, &vl);
    mica_free(v);
    mica_close(c);
    if (rc == MICA_OK) break;
    sleep_ms(20);
  }
  if (rc != MICA_OK) {
    printf("lookup_ms never (%s)\n", mica_code_name(rc));
    return 1;
  }
  printf("lookup_ms %" PRId64 "\n", now_unix_ms() - since);
  fflush(stdout);
  mica_client *c = open_client(master, attempt_ms);
  while (now_unix_ms() < until) {
    mica_key split = {"m", 1};
    rc = mica_create_table(c, new_table, &split, 1);
    /* A create whose answer was lost is already done. */
    if (rc == MICA_OK || rc == MICA_ALREADY_EXISTS) break;
    sleep_ms(20);
  }
  mica_close(c);
  if (rc != MICA_OK && rc != MICA_ALREADY_EXISTS) {
    printf("admin_ms never (%s: %s)\n", mica_code_name(rc), mica_errmsg());
    return 1;
  }
  printf("admin_ms %" PRId64 "\n", now_unix_ms() - since);
  return 0;
}

static void usage(FILE *to) {
  fprintf(to,
"usage: %s load --master SPEC --table T --acks FILE [--writers N]\n"
"              [--prefix P] [--stop-file F] [--duration-ms N]\n"
"              [--server HOST:PORT] [--deadline-ms N] [--pause-ms N]\n"
"       %s verify --master SPEC --table T ACKFILE...\n"
"       %s failover --master SPEC --table T --key K --create NEWTABLE\n"
"              --since-ms UNIX_MS [--timeout-ms N] [--attempt-ms N]\n"
"\n"
"The checker of tests/netns: records every acknowledged put and reads\n"
"them all back. SPEC is what mica_open takes: HOST:PORT, a comma-separated\n"
"list of masters, or zk://HOST:PORT[,...]/chroot.\n"
"\n"
"load      puts keys from N writer threads (default 4) into every tablet of\n"
"          T (with --server, only the tablets served at HOST:PORT when it\n"
"          starts) until F exists, SIGTERM, or N ms; appends each\n"
"          acknowledged put to FILE as 'KEY VALUE ACK_UNIX_MS LATENCY_US';\n"
"          --deadline-ms bounds each put (default 10000), --pause-ms\n"
"          sleeps between a writer's puts; prints 'acked A failed F p50_us\n"
"          p99_us max_us max_gap_ms puts_per_s'\n"
"verify    reads back every key of the ack files; exit 1 naming each key\n"
"          that is missing, unreadable or holds another value\n"
"failover  prints 'lookup_ms N': ms from UNIX_MS until a cold client got\n"
"          key K (a LookupTablets answered), then 'admin_ms N': until\n"
"          creating NEWTABLE succeeded; exit 1 if either never happens\n"
"          (each try, a new client, has --attempt-ms, default 1000)\n"
"\n"
"example:\n"
"  %s load --master zk://10.77.0.1:2181/mica --table t --acks a.txt \\\n"
"      --stop-file stop & sleep 10; touch stop; wait\n"
"  %s verify --master zk://10.77.0.1:2181/mica --table t a.txt\n",
          prog, prog, prog, prog, prog);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "load") == 0) return cmd_load(argc - 2, argv + 2);
  if (strcmp(argv[1], "verify") == 0) return cmd_verify(argc - 2, argv + 2);
  if (strcmp(argv[1], "failover") == 0)
    return cmd_failover(argc - 2, argv + 2);
  die("unknown command '%s' (see --help)", argv[1]);
  return 2;
}
