/* Snapshots, clones and the garbage collector (docs/storage.md,
 * "Snapshots"), on real processes: one master with a tokens file and two
 * tablet servers.
 *
 *   clone_sees_old_values  snapshot, then overwrite and delete keys and
 *                          let the table compact (more snapshots flush it
 *                          into enough files); a clone reads exactly the
 *                          values of the moment of the snapshot, and the
 *                          source table the new ones.
 *   export_restore         a snapshot exported to a directory and restored
 *                          as a new table reads the same values; a damaged
 *                          copy fails naming the file and offset and
 *                          leaves no table; a missing export, an existing
 *                          destination or table name, a relative, empty
 *                          or malformed destination are refused. On an
 *                          S3 data root (the S3 rerun) the directory is
 *                          still a local one: the destination, not the
 *                          root, picks the storage.
 *   drop_source            the source table dropped: the snapshot's files
 *                          survive its deletion and the collector, a new
 *                          clone and the old one read; dropping the
 *                          snapshot then lets the collector delete the
 *                          dropped table's directories.
 *   bad_input              unknown table or snapshot, duplicate and bad
 *                          names: each refused with its code and a message
 *                          naming it, and the list of snapshots unchanged.
 *   roles                  a read token and a per-table admin outside its
 *                          table are refused; the per-table admin
 *                          snapshots, clones (into a table it administers)
 *                          and drops within its table; /api/snapshots
 *                          shows the snapshot.
 *   tserver_killed         a tablet server killed -9 just before a
 *                          snapshot: the master retries until the tablet
 *                          is served elsewhere, and the snapshot is whole.
 *   master_killed          the master killed -9 while a snapshot of a
 *                          table of many tablets runs, and right after a
 *                          drop of a table a snapshot references: after
 *                          the restart the snapshot is either whole or
 *                          gone (never left half made; its name is free
 *                          again), and the older snapshot still clones. */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mica/mica.h"
#include "tests/cluster/mcheck.h"
#include "tests/harness/cluster.h"
#include "tests/harness/testutil.h"

static cluster *g_c;
static char g_tokens[1024];

#define TOK_ADMIN "admin-token-0123456789abcdef"
#define TOK_OADMIN "orders-admin-token-0123456789"
#define TOK_READ "read-token-0123456789abcdef"

static mica_client *client(const char *token, int deadline_ms) {
  mica_options o;
  mica_options_init(&o);
  o.token = token;
  o.deadline_ms = deadline_ms;
  mica_client *c = NULL;
  CU_ASSERT_EQUAL_FATAL(mica_open(cl_master_address(g_c), &o, &c), MICA_OK);
  return c;
}

static void put(mica_client *c, const char *t, const char *k, const char *v) {
  int rc = mica_put(c, t, k, strlen(k), v, strlen(v));
  if (rc != MICA_OK) fprintf(stderr, "put %s %s: %s\n", t, k, mica_errmsg());
  CU_ASSERT_EQUAL(rc, MICA_OK);
}

/* The value of `k` in `t`, "-" when absent, "!" on an error. */
static void get(mica_client *c, const char *t, const char *k, char *out,
                size_t n) {
  void *v = NULL;
  size_t vl = 0;
  int rc = mica_get(c, t, k, strlen(k), &v, &vl);
  if (rc == MICA_OK) snprintf(out, n, "%.*s", (int)vl, (const char *)v);
  else snprintf(out, n, "%s", rc == MICA_NOT_FOUND ? "-" : "!");
  if (rc != MICA_OK && rc != MICA_NOT_FOUND)
    fprintf(stderr, "get %s %s: %s\n", t, k, mica_errmsg());
  mica_free(v);
}

/* Every key k000..k099 of `t` reads `want(i)`. */
static int check_all(mica_client *c, const char *t,
                     const char *(*want)(int, char *)) {
  int bad = 0;
  for (int i = 0; i < 100; i++) {
    char k[16], v[64], w[64];
    mcheck_key(i, k);
    get(c, t, k, v, sizeof v);
    const char *x = want(i, w);
    if (strcmp(v, x) != 0) {
      if (bad++ < 5)
        fprintf(stderr, "%s %s: read \"%s\", expected \"%s\"\n", t, k, v, x);
    }
  }
  return bad;
}

static const char *old_value(int i, char *w) {
  snprintf(w, 64, "old-%d", i);
  return w;
}

static const char *new_value(int i, char *w) {
  if (i % 3 == 0) return "-";
  snprintf(w, 64, i % 3 == 1 ? "new-%d" : "old-%d", i);
  return w;
}

static bool snapshot_listed(mica_client *c, const char *name,
                            const char *state) {
  mica_snapshot_info *v = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL(mica_snapshot_list(c, &v, &n), MICA_OK);
  bool hit = false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0 &&
        (state == NULL || strcmp(v[i].state, state) == 0))
      hit = true;
  mica_free(v);
  return hit;
}

static size_t snapshot_count(mica_client *c) {
  mica_snapshot_info *v = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL(mica_snapshot_list(c, &v, &n), MICA_OK);
  mica_free(v);
  return n;
}

static bool dir_exists(uint64_t tablet_id) {
  char p[1300];
  snprintf(p, sizeof p, "%s/tablets/%" PRIu64, cl_data_root(g_c), tablet_id);
  return env_exists(cl_data_env(g_c), p); /* POSIX or s3:// */
}

static size_t collect(char *p, size_t size, size_t n, void *ctx) {
  buf_append((buf *)ctx, p, size * n);
  return size * n;
}

/* GET http://<master http><path> with the admin token; the body in `out`
 * (NUL-terminated), the HTTP status returned (0: no answer). */
static long http_get(const char *path, buf *out) {
  char url[512];
  snprintf(url, sizeof url, "http://%s%s", cl_master_http_address(g_c), path);
  CURL *h = curl_easy_init();
  struct curl_slist *hdr =
      curl_slist_append(NULL, "Authorization: Bearer " TOK_ADMIN);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  long code = 0;
  if (curl_easy_perform(h) == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  buf_append(out, "", 1);
  return code;
}

/* ---- the suite ---- */

static int suite_init(void) {
  snprintf(g_tokens, sizeof g_tokens, "%s/tokens", tu_tmpdir());
  FILE *f = fopen(g_tokens, "w");
  if (f == NULL) return 1;
  fputs(TOK_ADMIN " alice admin\n"
        TOK_OADMIN " olga admin:orders admin:orders_copy\n"
        TOK_READ " carol read\n", f);
  fclose(f);
  static const char *args[3];
  args[0] = "--tokens";
  args[1] = g_tokens;
  args[2] = NULL;
  cl_options o;
  cl_options_init(&o);
  o.tservers = 2;
  o.master_args = args;
  return cl_suite_start(&o, &g_c);
}

static int suite_clean(void) { return cl_suite_stop(&g_c); }

static void test_clone_sees_old_values(void) {
  mica_client *c = client(TOK_ADMIN, 20000);
  mcheck_create(c, "t", 4);
  for (int i = 0; i < 100; i++) {
    char k[16], v[32];
    mcheck_key(i, k);
    old_value(i, v);
    put(c, "t", k, v);
  }
  mica_snapshot_info *info = NULL;
  int rc = mica_snapshot_create(c, "t", "s1", &info);
  mcheck_rc(rc, MICA_OK, NULL, "snapshot s1");
  if (info != NULL) {
    CU_ASSERT_EQUAL(info->tablets, 4);
    CU_ASSERT(info->files >= 4);
    CU_ASSERT_STRING_EQUAL(info->state, "ready");
  }
  mica_free(info);
  /* Overwrite a third, delete a third; flush the table into several files
   * (each snapshot flushes) so its compactions replace the files s1
   * references. */
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 100; i++) {
      char k[16], v[32];
      mcheck_key(i, k);
      if (i % 3 == 0) {
        CU_ASSERT_EQUAL(mica_delete(c, "t", k, strlen(k)), MICA_OK);
      } else if (i % 3 == 1) {
        put(c, "t", k, new_value(i, v));
      }
    }
    char tmp[16];
    snprintf(tmp, sizeof tmp, "tmp%d", round);
    mcheck_rc(mica_snapshot_create(c, "t", tmp, NULL), MICA_OK, NULL,
              "flushing snapshot");
    mcheck_rc(mica_snapshot_drop(c, tmp), MICA_OK, NULL, "drop tmp");
  }
  cl_sleep_ms(1500); /* background compactions */
  CU_ASSERT_EQUAL(check_all(c, "t", new_value), 0);
  mcheck_rc(mica_snapshot_clone(c, "s1", "c1"), MICA_OK, NULL, "clone c1");
  CU_ASSERT_EQUAL(check_all(c, "c1", old_value), 0);
  /* The clone is a table of its own: writes to it leave the source (and
   * the snapshot) alone. */
  put(c, "c1", "k001", "clone-write");
  char v[64];
  get(c, "t", "k001", v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "new-1");
  CU_ASSERT(snapshot_listed(c, "s1", "ready"));
  mica_close(c);
}

static void test_export_restore(void) {
  mica_client *c = client(TOK_ADMIN, 20000);
  char dest[1200], bad[1300], cmd[5000];
  snprintf(dest, sizeof dest, "%s/export-s1", tu_tmpdir());
  snprintf(bad, sizeof bad, "%s/export-bad", tu_tmpdir());
  uint64_t files = 0, bytes = 0;
  mcheck_rc(mica_snapshot_export(c, "s1", dest, &files, &bytes), MICA_OK,
            NULL, "export s1");
  CU_ASSERT(files >= 4);
  CU_ASSERT(bytes > 0);
  mcheck_rc(mica_snapshot_export(c, "s1", dest, NULL, NULL),
            MICA_ALREADY_EXISTS, "already holds an export", "export twice");
  mcheck_rc(mica_snapshot_export(c, "nosuch", bad, NULL, NULL),
            MICA_NOT_FOUND, "nosuch", "export unknown");
  /* The destination picks its own storage (on an S3 data root too, a
   * directory is a directory); one that names none is refused. */
  mcheck_rc(mica_snapshot_export(c, "s1", "export-rel", NULL, NULL),
            MICA_INVALID_ARGUMENT, "dest 'export-rel': not an absolute path",
            "relative dest");
  mcheck_rc(mica_snapshot_export(c, "s1", "", NULL, NULL),
            MICA_INVALID_ARGUMENT, "dest: empty", "empty dest");
  mcheck_rc(mica_snapshot_export(c, "s1", "s3://Bad_Bucket/x", NULL, NULL),
            MICA_INVALID_ARGUMENT, "Bad_Bucket", "bad s3 dest");
  mcheck_rc(mica_snapshot_restore(c, "export-rel", "r4", NULL, NULL),
            MICA_INVALID_ARGUMENT, "source 'export-rel'", "relative source");
  CU_ASSERT(!mcheck_table_listed(c, "r4"));
  mcheck_rc(mica_snapshot_restore(c, dest, "r1", &files, &bytes), MICA_OK,
            NULL, "restore r1");
  CU_ASSERT_EQUAL(check_all(c, "r1", old_value), 0);
  mcheck_rc(mica_snapshot_restore(c, dest, "r1", NULL, NULL),
            MICA_ALREADY_EXISTS, "r1", "restore onto r1");
  char missing[1300];
  snprintf(missing, sizeof missing, "%s/no-export", tu_tmpdir());
  mcheck_rc(mica_snapshot_restore(c, missing, "r3", NULL, NULL),
            MICA_NOT_FOUND, "EXPORT", "restore from nothing");
  /* One byte flipped in the middle of one SSTable of a copy. */
  snprintf(cmd, sizeof cmd,
           "cp -r '%s' '%s' && f=$(ls '%s'/*.sst | head -1) && "
           "printf 'Z' | dd of=\"$f\" bs=1 seek=60 conv=notrunc 2>/dev/null",
           dest, bad, bad);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  int rc = mica_snapshot_restore(c, bad, "r2", NULL, NULL);
  mcheck_rc(rc, MICA_CORRUPTION, "checksum mismatch", "damaged export");
  if (rc == MICA_CORRUPTION) {
    CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), "export-bad/"));
    CU_ASSERT_PTR_NOT_NULL(strstr(mica_errmsg(), ".sst: offset 0"));
  }
  CU_ASSERT(!mcheck_table_listed(c, "r2"));
  /* A cut EXPORT file. */
  snprintf(cmd, sizeof cmd, "truncate -s 30 '%s/EXPORT'", bad);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  mcheck_rc(mica_snapshot_restore(c, bad, "r2", NULL, NULL), MICA_CORRUPTION,
            "EXPORT: offset 12", "cut EXPORT");
  CU_ASSERT(!mcheck_table_listed(c, "r2"));
  mica_close(c);
}

static void test_drop_source(void) {
  mica_client *c = client(TOK_ADMIN, 20000);
  mica_tablet_info *tv = NULL;
  size_t tn = 0;
  CU_ASSERT_EQUAL_FATAL(mica_list_tablets(c, "t", &tv, &tn), MICA_OK);
  uint64_t ids[16];
  size_t nid = 0;
  for (size_t i = 0; i < tn && nid < 16; i++) ids[nid++] = tv[i].tablet_id;
  mica_free(tv);
  CU_ASSERT_EQUAL_FATAL(mica_drop_table(c, "t"), MICA_OK);
  /* The table is forgotten once its directories are retired and collected. */
  uint64_t until = cl_now_ms() + 15000;
  while (mcheck_table_listed(c, "t") && cl_now_ms() < until) cl_sleep_ms(100);
  cl_sleep_ms(500);
  mcheck_rc(mica_snapshot_clone(c, "s1", "c2"), MICA_OK, NULL, "clone c2");
  CU_ASSERT_EQUAL(check_all(c, "c2", old_value), 0);
  char v[64];
  get(c, "c1", "k001", v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "clone-write");
  get(c, "c1", "k002", v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "old-2");
  bool kept = false;
  for (size_t i = 0; i < nid; i++) kept |= dir_exists(ids[i]);
  CU_ASSERT(kept); /* the snapshot still references its files */
  /* Once the snapshot is gone and the clones compacted their own copies,
   * nothing references the dropped table's files. */
  mcheck_rc(mica_snapshot_drop(c, "s1"), MICA_OK, NULL, "drop s1");
  CU_ASSERT(!snapshot_listed(c, "s1", NULL));
  until = cl_now_ms() + 20000;
  for (;;) {
    kept = false;
    for (size_t i = 0; i < nid; i++) kept |= dir_exists(ids[i]);
    if (!kept || cl_now_ms() > until) break;
    /* A snapshot drop runs the collector; a throwaway one triggers it. */
    if (mica_snapshot_create(c, "c2", "gc", NULL) == MICA_OK)
      CU_ASSERT_EQUAL(mica_snapshot_drop(c, "gc"), MICA_OK);
    cl_sleep_ms(300);
  }
  CU_ASSERT(!kept);
  CU_ASSERT_EQUAL(check_all(c, "c2", old_value), 0);
  mica_close(c);
}

static void test_bad_input(void) {
  mica_client *c = client(TOK_ADMIN, 5000);
  mcheck_create(c, "b", 1);
  size_t before = snapshot_count(c);
  mcheck_rc(mica_snapshot_create(c, "nosuch", "x1", NULL), MICA_NOT_FOUND,
            "nosuch", "unknown table");
  mcheck_rc(mica_snapshot_create(c, "b", "bad name", NULL),
            MICA_INVALID_ARGUMENT, "bad name", "space in name");
  mcheck_rc(mica_snapshot_create(c, "b", "", NULL), MICA_INVALID_ARGUMENT,
            "snapshot name", "empty name");
  char long_name[200];
  memset(long_name, 'n', 150);
  long_name[150] = '\0';
  mcheck_rc(mica_snapshot_create(c, "b", long_name, NULL),
            MICA_INVALID_ARGUMENT, "snapshot name", "long name");
  mcheck_rc(mica_snapshot_create(c, "b", "sb", NULL), MICA_OK, NULL, "sb");
  mcheck_rc(mica_snapshot_create(c, "b", "sb", NULL), MICA_ALREADY_EXISTS,
            "sb", "duplicate");
  mcheck_rc(mica_snapshot_clone(c, "nosuch", "x2"), MICA_NOT_FOUND, "nosuch",
            "clone of unknown");
  mcheck_rc(mica_snapshot_clone(c, "sb", "b"), MICA_ALREADY_EXISTS, "b",
            "clone onto existing");
  mcheck_rc(mica_snapshot_clone(c, "sb", "bad/table"), MICA_INVALID_ARGUMENT,
            "bad/table", "clone to bad name");
  mcheck_rc(mica_snapshot_drop(c, "nosuch"), MICA_NOT_FOUND, "nosuch",
            "drop unknown");
  CU_ASSERT(!mcheck_table_listed(c, "x2"));
  CU_ASSERT_EQUAL(snapshot_count(c), before + 1);
  mcheck_rc(mica_snapshot_drop(c, "sb"), MICA_OK, NULL, "drop sb");
  CU_ASSERT_EQUAL(snapshot_count(c), before);
  /* The name is free again. */
  mcheck_rc(mica_snapshot_create(c, "b", "sb", NULL), MICA_OK, NULL,
            "sb again");
  mcheck_rc(mica_snapshot_drop(c, "sb"), MICA_OK, NULL, "drop sb again");
  mica_close(c);
}

static void test_roles(void) {
  mica_client *a = client(TOK_ADMIN, 10000), *o = client(TOK_OADMIN, 10000),
              *r = client(TOK_READ, 10000);
  mcheck_create(a, "orders", 2);
  put(a, "orders", "k001", "order-1");
  mcheck_create(a, "users", 1);
  mcheck_rc(mica_snapshot_create(r, "orders", "r1", NULL),
            MICA_PERMISSION_DENIED, NULL, "reader snapshots");
  mcheck_rc(mica_snapshot_create(o, "users", "o1", NULL),
            MICA_PERMISSION_DENIED, "users", "orders admin snapshots users");
  mcheck_rc(mica_snapshot_create(o, "orders", "o2", NULL), MICA_OK, NULL,
            "orders admin snapshots orders");
  mcheck_rc(mica_snapshot_clone(o, "o2", "users_copy"),
            MICA_PERMISSION_DENIED, "users_copy", "clone outside its tables");
  mcheck_rc(mica_snapshot_clone(r, "o2", "orders_copy"),
            MICA_PERMISSION_DENIED, NULL, "reader clones");
  mcheck_rc(mica_snapshot_clone(o, "o2", "orders_copy"), MICA_OK, NULL,
            "orders admin clones");
  char v[64];
  get(o, "orders_copy", "k001", v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "order-1");
  mcheck_rc(mica_snapshot_create(a, "users", "u1", NULL), MICA_OK, NULL,
            "admin snapshots users");
  mcheck_rc(mica_snapshot_drop(o, "u1"), MICA_PERMISSION_DENIED, "users",
            "orders admin drops a snapshot of users");
  mcheck_rc(mica_snapshot_drop(r, "o2"), MICA_PERMISSION_DENIED, NULL,
            "reader drops");
  CU_ASSERT(snapshot_listed(a, "u1", "ready"));
  CU_ASSERT(snapshot_listed(r, "o2", "ready")); /* reading the list is fine */
  buf b = BUF_INIT;
  CU_ASSERT_EQUAL(http_get("/api/snapshots", &b), 200);
  const char *json = (const char *)b.data;
  CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"name\":\"o2\",\"table\":\"orders\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"state\":\"ready\""));
  buf_free(&b);
  mcheck_rc(mica_snapshot_drop(o, "o2"), MICA_OK, NULL, "orders admin drops");
  mcheck_rc(mica_snapshot_drop(a, "u1"), MICA_OK, NULL, "admin drops");
  mica_close(a);
  mica_close(o);
  mica_close(r);
}

static void test_tserver_killed(void) {
  mica_client *c = client(TOK_ADMIN, 30000);
  mcheck_create(c, "k", 4);
  for (int i = 0; i < 100; i++) {
    char k[16], v[32];
    mcheck_key(i, k);
    put(c, "k", k, old_value(i, v));
  }
  /* The other server takes its tablets once the lease ran out; until then
   * the snapshot's rounds find them not serving and start over. */
  CU_ASSERT_EQUAL_FATAL(cl_kill_tserver(g_c, 1), NULL);
  mcheck_rc(mica_snapshot_create(c, "k", "sk", NULL), MICA_OK, NULL,
            "snapshot with a server killed");
  mcheck_rc(mica_snapshot_clone(c, "sk", "kc"), MICA_OK, NULL, "clone kc");
  CU_ASSERT_EQUAL(check_all(c, "kc", old_value), 0);
  CU_ASSERT_EQUAL(cl_restart_tserver(g_c, 1), NULL);
  mica_close(c);
}

struct snap_job {
  const char *table, *name;
  int rc;
};

static void *snap_thread(void *arg) {
  struct snap_job *j = arg;
  mica_options o;
  mica_options_init(&o);
  o.token = TOK_ADMIN;
  o.deadline_ms = 3000;
  mica_client *c = NULL;
  j->rc = mica_open(cl_master_address(g_c), &o, &c);
  if (j->rc == MICA_OK) j->rc = mica_snapshot_create(c, j->table, j->name, NULL);
  mica_close(c);
  return NULL;
}

static void test_master_killed(void) {
  mica_client *c = client(TOK_ADMIN, 30000);
  mcheck_create(c, "m", 24);
  for (int i = 0; i < 100; i++) {
    char k[16], v[32];
    mcheck_key(i, k);
    put(c, "m", k, old_value(i, v));
  }
  mcheck_rc(mica_snapshot_create(c, "m", "m-before", NULL), MICA_OK, NULL,
            "m-before");
  /* A snapshot of 24 tablets (24 flushes) in flight when the master dies. */
  for (int i = 0; i < 100; i += 7) {
    char k[16];
    mcheck_key(i, k);
    put(c, "m", k, "newer");
  }
  struct snap_job j = {"m", "m-during", -1};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, snap_thread, &j), 0);
  cl_sleep_ms(40);
  CU_ASSERT_EQUAL_FATAL(cl_kill_master(g_c), NULL);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL_FATAL(cl_restart_master(g_c), NULL);
  /* Whole or gone, never "creating" once the new master ticked. */
  uint64_t until = cl_now_ms() + 15000;
  while (snapshot_listed(c, "m-during", "creating") && cl_now_ms() < until)
    cl_sleep_ms(100);
  CU_ASSERT(!snapshot_listed(c, "m-during", "creating"));
  if (snapshot_listed(c, "m-during", "ready")) {
    mcheck_rc(mica_snapshot_clone(c, "m-during", "md"), MICA_OK, NULL, "md");
    char v[64];
    get(c, "md", "k007", v, sizeof v);
    CU_ASSERT_STRING_EQUAL(v, "newer");
    mcheck_rc(mica_snapshot_drop(c, "m-during"), MICA_OK, NULL, "drop");
  } else {
    mcheck_rc(mica_snapshot_create(c, "m", "m-during", NULL), MICA_OK, NULL,
              "name free again");
    mcheck_rc(mica_snapshot_drop(c, "m-during"), MICA_OK, NULL, "drop");
  }
  /* kill -9 right after dropping the table m-before references. */
  CU_ASSERT_EQUAL(mica_drop_table(c, "m"), MICA_OK);
  cl_sleep_ms(30);
  CU_ASSERT_EQUAL_FATAL(cl_kill_master(g_c), NULL);
  CU_ASSERT_EQUAL_FATAL(cl_restart_master(g_c), NULL);
  until = cl_now_ms() + 20000;
  while (mcheck_table_listed(c, "m") && cl_now_ms() < until) cl_sleep_ms(100);
  CU_ASSERT(!mcheck_table_listed(c, "m"));
  mcheck_rc(mica_snapshot_clone(c, "m-before", "mb"), MICA_OK, NULL, "mb");
  CU_ASSERT_EQUAL(check_all(c, "mb", old_value), 0);
  mcheck_rc(mica_snapshot_drop(c, "m-before"), MICA_OK, NULL, "drop before");
  mica_close(c);
}

static void add_suites(void) {
  CU_pSuite s = CU_add_suite("snapshot", suite_init, suite_clean);
  CU_add_test(s, "clone_sees_old_values", test_clone_sees_old_values);
  CU_add_test(s, "export_restore", test_export_restore);
  CU_add_test(s, "drop_source", test_drop_source);
  CU_add_test(s, "bad_input", test_bad_input);
  CU_add_test(s, "roles", test_roles);
  CU_add_test(s, "tserver_killed", test_tserver_killed);
  CU_add_test(s, "master_killed", test_master_killed);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
