/* cmd_balance: `mica balance`, `mica drain`, `mica undrain` (see
 * cmd_balance.h).
 *
 * A plan file is the JSON `mica balance --plan` writes:
 *
 *   {"version": 1, "moves": [{"tablet_id": 7, "from_server_id": 1,
 *     "to_server_id": 3, "range_epoch": 2, "assign_epoch": 4,
 *     "reason": "server 1 at 900 ops/s, mean 300"}, ...]}
 *
 * It is read back strictly (tools/mica/mjson.h): a missing or mistyped
 * field is an error naming the file and the field's path, and nothing is
 * sent. The master checks the moves themselves, all or nothing. */
#include "tools/mica/cmd_balance.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/mica/mjson.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define PLAN_MAX_BYTES ((size_t)16 << 20)

static int usage(const char *name, const char *use, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage(const char *name, const char *use, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "mica: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nusage: mica %s %s\n", name, use);
  va_end(ap);
  return EXIT_USAGE;
}

static int fail(int code, const char *what) {
  fprintf(stderr, "mica: %s: %s (%s)\n", what, mica_errmsg(),
          mica_code_name(code));
  return EXIT_FAIL;
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

/* A JSON string for any bytes: JSON's escapes where required, every byte
 * outside printable ASCII as \u00XX (as the rest of the CLI writes). */
static void put_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

/* ---- balance ---- */

static int write_plan(const mica_move *m, size_t n) {
  printf("{\"version\": 1, \"moves\": [");
  for (size_t i = 0; i < n; i++) {
    printf("%s\n  {\"tablet_id\": %" PRIu64 ", \"from_server_id\": %" PRIu64
           ", \"to_server_id\": %" PRIu64 ", \"range_epoch\": %" PRIu64
           ", \"assign_epoch\": %" PRIu64 ", \"reason\": ", i ? "," : "",
           m[i].tablet_id, m[i].from_server_id, m[i].to_server_id,
           m[i].range_epoch, m[i].assign_epoch);
    put_json_str(stdout, m[i].reason);
    printf("}");
  }
  printf("%s]}\n", n ? "\n" : "");
  return 0;
}

static char *read_file(const char *path, size_t *len, char *why,
                       size_t why_len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL) {
    snprintf(why, why_len, "%s", strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  for (;;) {
    if (n == cap) {
      if (cap >= PLAN_MAX_BYTES) {
        snprintf(why, why_len, "larger than %zu bytes", PLAN_MAX_BYTES);
        free(b);
        b = NULL;
        break;
      }
      cap *= 2;
      b = realloc(b, cap);
    }
    size_t got = fread(b + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) {
        snprintf(why, why_len, "%s", strerror(errno));
        free(b);
        b = NULL;
      }
      break;
    }
  }
  if (f != stdin) fclose(f);
  *len = n;
  return b;
}

/* The moves of plan `root`, or NULL with `why` naming the bad field. The
 * reasons point into `root`. Caller frees the array with free(). */
static mica_move *plan_moves(const mj_val *root, size_t *n, char *why,
                             size_t why_len) {
  uint64_t version = 0;
  const mj_val *moves = mj_get(root, "moves");
  if (root == NULL || root->type != MJ_OBJECT) {
    snprintf(why, why_len, "not a JSON object");
    return NULL;
  }
  if (!mj_u64(mj_get(root, "version"), &version) || version != 1) {
    snprintf(why, why_len, "version: expected 1");
    return NULL;
  }
  if (moves == NULL || moves->type != MJ_ARRAY) {
    snprintf(why, why_len, "moves: expected an array");
    return NULL;
  }
  static const char *fields[5] = {"tablet_id", "from_server_id",
                                  "to_server_id", "range_epoch",
                                  "assign_epoch"};
  mica_move *v = calloc(moves->len + 1, sizeof(*v));
  for (size_t i = 0; i < moves->len; i++) {
    const mj_val *mv = moves->items[i];
    uint64_t f[5];
    for (int k = 0; k < 5; k++)
      if (!mj_u64(mj_get(mv, fields[k]), &f[k]) ||
          (k < 4 && f[k] == 0)) {
        snprintf(why, why_len, "moves[%zu].%s: expected a positive whole "
                 "number", i, fields[k]);
        free(v);
        return NULL;
      }
    const mj_val *r = mj_get(mv, "reason");
    if (r != NULL && r->type != MJ_STRING) {
      snprintf(why, why_len, "moves[%zu].reason: expected a string", i);
      free(v);
      return NULL;
    }
    v[i] = (mica_move){f[0], f[1], f[2], r ? r->str : "", f[3], f[4]};
  }
  *n = moves->len;
  return v;
}

static int apply_plan(mica_client *c, const char *path) {
  char why[200];
  size_t len = 0;
  char *text = read_file(path, &len, why, sizeof(why));
  if (text == NULL) {
    fprintf(stderr, "mica: balance: %s: %s\n", path, why);
    return EXIT_FAIL;
  }
  mj_val *root = mj_parse(text, len, why, sizeof(why));
  free(text);
  size_t n = 0;
  mica_move *v = root ? plan_moves(root, &n, why, sizeof(why)) : NULL;
  if (v == NULL) {
    fprintf(stderr, "mica: balance: %s: %s\n", path, why);
    mj_free(root);
    return EXIT_FAIL;
  }
  int rc = 0;
  if (n == 0) {
    printf("the plan has no moves: nothing to do\n");
  } else {
    int code = mica_balance_apply(c, v, n);
    if (code != MICA_OK) {
      rc = fail(code, "balance --apply");
    } else {
      for (size_t i = 0; i < n; i++)
        printf("moving tablet %" PRIu64 " from server %" PRIu64
               " to server %" PRIu64 "\n", v[i].tablet_id,
               v[i].from_server_id, v[i].to_server_id);
    }
  }
  free(v);
  mj_free(root);
  return rc;
}

enum { O_DRY = 1000, O_PLAN, O_APPLY, O_MODE, O_NO_WAIT, O_TIMEOUT };

int cmd_balance_run(mica_client *c, int argc, char **argv) {
  static const struct option opts[] = {
      {"dry-run", no_argument, NULL, O_DRY},
      {"plan", no_argument, NULL, O_PLAN},
      {"apply", required_argument, NULL, O_APPLY},
      {"mode", required_argument, NULL, O_MODE},
      {NULL, 0, NULL, 0}};
  int what = 0, n_what = 0;
  const char *arg = NULL;
  optind = 1;
  opterr = 0;
  for (int o; (o = getopt_long(argc, argv, ":", opts, NULL)) != -1;) {
    if (o == '?' || o == ':')
      return usage("balance", CMD_BALANCE_USAGE, "bad or incomplete flag "
                   "'%s'", argv[optind - 1]);
    what = o;
    n_what++;
    if (o == O_APPLY || o == O_MODE) arg = optarg;
  }
  if (n_what > 1)
    return usage("balance", CMD_BALANCE_USAGE, "give at most one of "
                 "--dry-run, --plan, --apply and --mode");
  if (optind < argc)
    return usage("balance", CMD_BALANCE_USAGE, "unexpected argument '%s'",
                 argv[optind]);
  if (what == O_APPLY) return apply_plan(c, arg);
  if (what == O_MODE) {
    if (strcmp(arg, "auto") != 0 && strcmp(arg, "suggest") != 0 &&
        strcmp(arg, "off") != 0)
      return usage("balance", CMD_BALANCE_USAGE, "bad mode '%s' (auto, "
                   "suggest or off)", arg);
    char now[16];
    int code = mica_set_balancer_mode(c, arg, now);
    if (code != MICA_OK) return fail(code, "balance --mode");
    printf("balancer mode: %s\n", now);
    return 0;
  }
  bool dry = what == O_DRY || what == O_PLAN;
  mica_move *m = NULL;
  size_t n = 0;
  int code = mica_balance(c, dry, &m, &n);
  if (code != MICA_OK) return fail(code, "balance");
  if (what == O_PLAN) {
    write_plan(m, n);
  } else {
    if (n == 0) printf("balanced: no moves%s\n", dry ? " planned" : " needed");
    for (size_t i = 0; i < n; i++)
      printf("%s tablet %" PRIu64 " from server %" PRIu64 " to server %"
             PRIu64 ": %s\n", dry ? "would move" : "moving", m[i].tablet_id,
             m[i].from_server_id, m[i].to_server_id, m[i].reason);
  }
  mica_free(m);
  return 0;
}

/* ---- drain ---- */

/* SERVER as an id, or as HOST:PORT (sent as the address). */
static bool parse_server(const char *s, uint64_t *id, const char **addr) {
  *id = 0;
  *addr = NULL;
  if (parse_u64(s, id)) return *id != 0;
  if (strchr(s, ':') == NULL || strlen(s) > 255) return false;
  *addr = s;
  return true;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls the server's tablet count until it is 0; prints each change. */
static int wait_drained(mica_client *c, uint64_t id, uint64_t timeout_s) {
  uint64_t start = mono_ms();
  long last = -1;
  for (;;) {
    mica_server_info *s = NULL;
    size_t n = 0;
    int code = mica_list_servers(c, 0, &s, &n);
    if (code != MICA_OK) return fail(code, "drain");
    long left = -1;
    bool draining = false;
    for (size_t i = 0; i < n; i++)
      if (s[i].server_id == id) {
        left = (long)s[i].tablet_count;
        draining = s[i].draining != 0;
      }
    mica_free(s);
    if (left < 0) {
      fprintf(stderr, "mica: drain: server %" PRIu64 " is no longer live\n",
              id);
      return EXIT_FAIL;
    }
    if (!draining) {
      fprintf(stderr, "mica: drain: server %" PRIu64 " was undrained while "
              "%ld tablets were left\n", id, left);
      return EXIT_FAIL;
    }
    uint64_t el = mono_ms() - start;
    if (left != last) {
      printf("server %" PRIu64 ": %ld tablets left (%.1f s)\n", id, left,
             (double)el / 1000);
      fflush(stdout);
      last = left;
    }
    if (left == 0) {
      printf("server %" PRIu64 " drained\n", id);
      return 0;
    }
    if (el >= timeout_s * 1000) {
      fprintf(stderr, "mica: drain: server %" PRIu64 " still holds %ld "
              "tablets after %" PRIu64 " s (it stays draining)\n", id, left,
              timeout_s);
      return EXIT_FAIL;
    }
    sleep_ms(250);
  }
}

static int drain_common(mica_client *c, int argc, char **argv, bool undrain) {
  static const struct option opts[] = {
      {"no-wait", no_argument, NULL, O_NO_WAIT},
      {"timeout", required_argument, NULL, O_TIMEOUT},
      {NULL, 0, NULL, 0}};
  const char *name = undrain ? "undrain" : "drain";
  const char *use = undrain ? CMD_UNDRAIN_USAGE : CMD_DRAIN_USAGE;
  bool wait = !undrain;
  uint64_t timeout_s = 600;
  optind = 1;
  opterr = 0;
  for (int o; (o = getopt_long(argc, argv, ":", undrain ? opts + 2 : opts,
                               NULL)) != -1;) {
    if (o == O_NO_WAIT) {
      wait = false;
    } else if (o == O_TIMEOUT) {
      if (!parse_u64(optarg, &timeout_s) || timeout_s == 0 ||
          timeout_s > 86400)
        return usage(name, use, "bad --timeout '%s' (1..86400 seconds)",
                     optarg);
    } else {
      return usage(name, use, "bad or incomplete flag '%s'",
                   argv[optind - 1]);
    }
  }
  if (argc - optind != 1)
    return usage(name, use, argc - optind < 1 ? "missing SERVER"
                                              : "too many arguments");
  uint64_t id;
  const char *addr;
  if (!parse_server(argv[optind], &id, &addr))
    return usage(name, use, "bad server '%s' (an id or HOST:PORT)",
                 argv[optind]);
  int code = mica_drain_server(c, id, addr, undrain, &id);
  if (code != MICA_OK) return fail(code, name);
  printf("server %" PRIu64 " %s\n", id,
         undrain ? "takes tablets again" : "draining");
  fflush(stdout);
  return wait ? wait_drained(c, id, timeout_s) : 0;
}

int cmd_drain_run(mica_client *c, int argc, char **argv) {
  return drain_common(c, argc, argv, false);
}

int cmd_undrain_run(mica_client *c, int argc, char **argv) {
  return drain_common(c, argc, argv, true);
}
