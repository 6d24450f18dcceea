/* mica-clog-replay-bench: recovery time of the server commit log on S3
 * (tabletserver/clog.h object mode) for a log of --objects group objects,
 * interleaved in one run against the request pattern recovery had before
 * read-ahead: each object read one at a time with a HEAD and a GET
 * (env_read_file, which opens a reader: HEAD, then GET), in number order
 * (docs/benchmarks.md, "Commit log on S3 (issue 16)").
 *
 * Each round times both, alternating which goes first, and counts the
 * S3 requests each made (s3_get_stats). S3 settings come from the
 * environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY), the root from --s3-root s3://BUCKET/PREFIX.
 *
 * With --tablets=N (N > 1) it measures instead what a new owner of a dead
 * server's N tablets does: the log's objects each hold one record of each
 * tablet, and each round times N replays run at once (one per tablet, as
 * N concurrent tablet opens), with the replays sharing the log's reads
 * (clog.h, "one read of a log for every tablet recovering from it") and
 * with sharing off (clog_replay_cache_set_limit(0): every replay reads
 * every object, the behaviour before), alternating which goes first. */
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/path.h"
#include "common/s3/env_s3.h"
#include "common/s3/s3_client.h"
#include "tabletserver/clog.h"
#include "tabletserver/wbatch.h"

static void die(const char *what, mica_err *err) {
  fprintf(stderr, "mica-clog-replay-bench: %s: %s\n", what,
          err ? err_msg(err) : "");
  exit(1);
}

static mica_err *count_record(void *arg, slice batch, const char *path,
                              uint64_t offset) {
  (void)batch;
  (void)path;
  (void)offset;
  (*(uint64_t *)arg)++;
  return NULL;
}

typedef struct rjob {
  env *e;
  const char *dir;
  uint64_t tablet, n;
  mica_err *err;
} rjob;

static void *rjob_main(void *arg) {
  rjob *j = arg;
  j->err = clog_replay(j->e, j->dir, j->tablet, 1, 1, 0, count_record,
                       &j->n, NULL);
  return NULL;
}

static uint64_t reqs(const s3_stats *a, const s3_stats *b, int kind) {
  return b->requests[kind] - a->requests[kind];
}

int main(int argc, char **argv) {
  int objects = 30, rounds = 3, value = 100, tablets = 1;
  const char *root = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0) {
      printf("usage: mica-clog-replay-bench --s3-root=s3://BUCKET/PREFIX "
             "[--objects=N] [--rounds=N] [--value_size=N] "
             "[--tablets=N]\n");
      return 0;
    } else if (strncmp(a, "--objects=", 10) == 0) objects = atoi(a + 10);
    else if (strncmp(a, "--rounds=", 9) == 0) rounds = atoi(a + 9);
    else if (strncmp(a, "--value_size=", 13) == 0) value = atoi(a + 13);
    else if (strncmp(a, "--tablets=", 10) == 0) tablets = atoi(a + 10);
    else if (strncmp(a, "--s3-root=", 10) == 0) root = a + 10;
    else {
      fprintf(stderr, "mica-clog-replay-bench: unknown option %s (see "
              "--help)\n", a);
      return 2;
    }
  }
  if (root == NULL || objects < 1 || rounds < 1 || value < 1 ||
      tablets < 1 || tablets > 256) {
    fprintf(stderr, "mica-clog-replay-bench: --s3-root=s3://BUCKET/PREFIX "
            "is required; --objects, --rounds, --value_size positive; "
            "--tablets 1 to 256\n");
    return 2;
  }
  s3_config c;
  mica_err *err = s3_config_from_environ(&c);
  env *e = NULL;
  if (err == NULL) err = env_s3_new(&c, &e);
  s3_config_free(&c);
  if (err != NULL) die("S3 env", err);
  char *logs = path_join(root, "logs");
  clog_options lo;
  clog_options_init(&lo);
  lo.batch_us = tablets > 1 ? 1000000 : 0; /* a sync closes each group */
  clog *l = NULL;
  if ((err = clog_open(e, logs, "r", &lo, &l)) != NULL) die("clog_open", err);
  char *v = calloc(1, (size_t)value + 1);
  memset(v, 'v', (size_t)value);
  for (int seq = 1; seq <= objects; seq++) {
    /* One group object: one record of each tablet, closed by the sync. */
    clog_ticket tk[256];
    for (int t = 0; t < tablets; t++) {
      wbatch *b = wbatch_new();
      wbatch_put(b, slice_from_str("k"), slice_from_str(v));
      wbatch_set_seq(b, (uint64_t)seq);
      if ((err = clog_add(l, 1 + (uint64_t)t, 1, wbatch_data(b), true,
                          &tk[t])) != NULL)
        die("write", err);
      wbatch_free(b);
    }
    if (tablets > 1 && (err = clog_sync(l)) != NULL) die("sync", err);
    for (int t = 0; t < tablets; t++)
      if ((err = clog_commit(l, &tk[t])) != NULL) die("write", err);
  }
  if ((err = clog_close(l)) != NULL) die("clog_close", err);
  free(v);
  char *dir = clog_dir_path(logs, "r");
  if (tablets > 1) {
    printf("%d objects of %d %d-byte records each (one per tablet); %d "
           "replays at once\n", objects, tablets, value, tablets);
    /* No linger: a round's kept objects must not serve the next round
     * (with sharing off it would take them from there). */
    clog_replay_cache_set_linger(0);
    for (int r = 0; r < rounds; r++) {
      for (int k = 0; k < 2; k++) {
        bool share = (k + r) % 2 == 0;
        clog_replay_cache_set_limit(share ? CLOG_REPLAY_CACHE_BYTES : 0);
        rjob jobs[256];
        pthread_t th[256];
        s3_stats a, b;
        s3_get_stats(&a);
        uint64_t t0 = env_now_micros(e), n = 0;
        for (int t = 0; t < tablets; t++) {
          jobs[t] = (rjob){e, dir, 1 + (uint64_t)t, 0, NULL};
          if (pthread_create(&th[t], NULL, rjob_main, &jobs[t]) != 0)
            die("pthread_create", NULL);
        }
        for (int t = 0; t < tablets; t++) {
          pthread_join(th[t], NULL);
          if (jobs[t].err != NULL) die("clog_replay", jobs[t].err);
          n += jobs[t].n;
        }
        uint64_t dt = env_now_micros(e) - t0;
        s3_get_stats(&b);
        printf("round %d %-26s %7.1f ms  %" PRIu64 " records  GET %" PRIu64
               " HEAD %" PRIu64 " LIST %" PRIu64 "\n", r + 1,
               share ? "shared reads" : "each replay reads all",
               dt / 1000.0, n, reqs(&a, &b, S3_REQ_GET),
               reqs(&a, &b, S3_REQ_HEAD), reqs(&a, &b, S3_REQ_LIST));
      }
    }
    free(dir);
    free(logs);
    env_s3_free(e);
    return 0;
  }
  printf("%d objects of one %d-byte record each\n", objects, value);
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < 2; k++) {
      bool ahead = (k + r) % 2 == 0;
      s3_stats a, b;
      s3_get_stats(&a);
      uint64_t t0 = env_now_micros(e), n = 0;
      if (ahead) {
        if ((err = clog_replay(e, dir, 1, 1, 1, 0, count_record, &n,
                               NULL)) != NULL)
          die("clog_replay", err);
      } else {
        /* Before: list, then each object one at a time, HEAD + GET. */
        char **names = NULL;
        size_t nn = 0;
        if ((err = env_list(e, dir, &names, &nn)) != NULL) die("list", err);
        env_free_names(names, nn);
        for (int i = 1; i <= objects; i++) {
          char name[64];
          char *p = path_join(dir, clog_segment_name(name, sizeof name,
                                                     (uint64_t)i));
          buf o = BUF_INIT;
          if ((err = env_read_file(e, p, 1u << 30, &o)) != NULL)
            die("read", err);
          n++;
          buf_free(&o);
          free(p);
        }
      }
      uint64_t dt = env_now_micros(e) - t0;
      s3_get_stats(&b);
      printf("round %d %-28s %7.1f ms  %" PRIu64 " objects  GET %" PRIu64
             " HEAD %" PRIu64 " LIST %" PRIu64 "\n", r + 1,
             ahead ? "read-ahead, one GET each" : "one at a time, HEAD+GET",
             dt / 1000.0, n, reqs(&a, &b, S3_REQ_GET),
             reqs(&a, &b, S3_REQ_HEAD), reqs(&a, &b, S3_REQ_LIST));
    }
  }
  free(dir);
  free(logs);
  env_s3_free(e);
  return 0;
}
