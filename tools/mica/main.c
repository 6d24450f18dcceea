/* mica: the command line of a Mica cluster, built on libmica.
 *
 * `mica [--master ADDR] COMMAND ...` reads and writes keys, scans ranges,
 * loads files, administers tables, tablets and servers, and summarises the
 * cluster from the master's JSON API (`status`, in mstatus.c). Keys and values
 * are bytes: every output escapes bytes outside printable ASCII (and the
 * backslash) as \xNN, and every key or value on the command line or in a
 * loaded file accepts the same escapes (plus \\, \n, \t, \0). JSON output
 * is valid JSON for any bytes: printable ASCII stays, JSON's own escapes are
 * used where JSON requires them, and every other byte b is written as
 * \u00XX, the code point with b's value, so a reader gets the bytes back by
 * taking each code point as one byte.
 *
 * Exit status: 0 success; 1 the operation failed (not found, master or
 * server unreachable, refused, output could not be written), with one line
 * on stderr; 2 bad usage (unknown command or flag, missing argument), with
 * the usage on stderr. A reader that closes the output early (`mica scan t |
 * head`) ends the output normally, as with ls or git log: no message, and
 * the command's own status (0 for a scan that ran fine). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/slice.h"
#include "mica/mica.h"
#include "tools/mica/cmd_hot.h"
#include "tools/mica/cmd_topts.h"
#include "tools/mica/cmd_balance.h"
#include "tools/mica/cmd_snapshot.h"
#include "tools/mica/mstatus.h"

#define DEFAULT_MASTER "127.0.0.1:7000"
#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char *prog = "mica";
static int64_t g_deadline_ms = 10000; /* --deadline */
static const char *g_token;         /* --token or $MICA_TOKEN; NULL = none */
static const char *g_ca;            /* --ca or $MICA_CA: HTTPS for status */

enum fmt { FMT_TEXT, FMT_TSV, FMT_JSON };

/* ---- help ---- */

typedef struct command {
  const char *name;
  int (*run)(mica_client *c, int argc, char **argv);
  const char *usage; /* arguments and flags */
  const char *help;  /* what it does, flags, an example */
} command;

static const command *find_command(const char *name);

static void main_usage(FILE *f) {
  fprintf(f,
          "usage: mica [--master HOST:PORT] [--deadline MS] COMMAND [ARGS...]\n"
          "\n"
          "Commands:\n"
          "  scan TABLE [--start K] [--end K] [--prefix P] [--limit N] [--reverse]\n"
          "             [--keys-only] [--format text|tsv|json]\n"
          "  get TABLE KEY [--format text|tsv|json|raw]\n"
          "  put TABLE KEY VALUE\n"
          "  del TABLE KEY\n"
          "  load TABLE FILE [--batch N]      tab-separated key/value lines\n"
          "  create TABLE [--splits K1,K2,...] [--salt N] [table options]\n"
          "  alter TABLE [--compression ...] [--split-threshold ...] [...]\n"
          "  describe TABLE [--format text|json]   its id, tablets and options\n"
          "  drop TABLE\n"
          "  tables [--format text|tsv|json]\n"
          "  tablets [TABLE] [--format text|tsv|json]\n"
          "  servers [--all] [--format text|tsv|json]\n"
          "  split TABLET [KEY]\n"
          "  move TABLET SERVER\n"
          "  balance [--dry-run | --plan | --apply FILE | --mode auto|suggest|off]\n"
          "  drain SERVER [--no-wait] [--timeout S]   move its tablets away\n"
          "  undrain SERVER\n"
          "  status [--json] [--http HOST:PORT]   cluster summary from the JSON API\n"
          "  hot [TABLE] [--limit N] [--format text|tsv|json] [--http HOST:PORT]\n"
          "  snapshot TABLE NAME | list | drop NAME   snapshots (no data copied)\n"
          "  snapshots                        the same as snapshot list\n"
          "  clone SNAPSHOT NEWTABLE          a table from a snapshot\n"
          "  snapshot --export NAME DEST      copy a snapshot out (backup)\n"
          "  restore SRC NEWTABLE             a table from such a copy\n"
          "  help [COMMAND]\n"
          "\n"
          "Options:\n"
          "  --master HOST:PORT  the master (default $MICA_MASTER, else %s); also\n"
          "                      HOST:PORT,HOST:PORT,... (candidate masters) or\n"
          "                      zk://HOST:PORT[,...]/chroot (the active master in\n"
          "                      ZooKeeper)\n"
          "  --deadline MS       time allowed per call, retries included (default 10000)\n"
          "  --token TOKEN       bearer token for a cluster with a tokens file\n"
          "                      (default $MICA_TOKEN; the variable keeps it out of\n"
          "                      the process list; docs/security.md)\n"
          "  --ca PATH           TLS: the CA the servers' certificates chain to\n"
          "                      (default $MICA_CA; unset = plaintext)\n"
          "  --cert PATH, --key PATH  TLS client certificate and key (default\n"
          "                      $MICA_CERT, $MICA_KEY)\n"
          "  --help              this text; `mica COMMAND --help` for a command\n"
          "  --version           the version\n"
          "\n"
          "Keys and values are bytes: output escapes non-printable bytes as \\xNN and\n"
          "input accepts the same escapes (and \\\\, \\n, \\t, \\0).\n"
          "\n"
          "Example:\n"
          "  mica --master 127.0.0.1:7000 scan users --prefix 'user:' --limit 10\n",
          DEFAULT_MASTER);
}

static void command_usage(FILE *f, const command *cmd) {
  fprintf(f, "usage: mica %s %s\n\n%s", cmd->name, cmd->usage, cmd->help);
}

/* Reports a usage error for `cmd` (NULL: the whole program). */
static int usage_error(const command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (cmd != NULL)
    command_usage(stderr, cmd);
  else
    main_usage(stderr);
  return EXIT_USAGE;
}

/* One line on stderr for a failed library call; exit status 1. */
static int fail(int code, const char *what) {
  fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, mica_errmsg(), mica_code_name(code));
  return EXIT_FAIL;
}

/* ---- the end of output ---- */

static int g_out_errno; /* errno of the first failed write to stdout */

/* True once a write to stdout has failed, remembering why. A long listing
 * checks it after each row, so that it stops once its reader has gone. */
static bool output_failed(void) {
  if (!ferror(stdout)) return false;
  if (g_out_errno == 0) g_out_errno = errno != 0 ? errno : EIO;
  return true;
}

/* Whether stdout is a pipe or socket whose reading end is closed. This
 * settles a failed write whose errno was not caught when it happened. */
static bool output_reader_gone(void) {
  struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
}

/* Flushes stdout at exit and returns the exit status. SIGPIPE is ignored
 * (see main), so a reader that went away shows up here as a write error
 * with EPIPE: that is a normal end of output, and `rc` stands. Any other
 * write error (a full disk) is reported, with status 1: output was lost. */
static int finish_output(int rc) {
  errno = 0;
  if (fflush(stdout) != 0 && g_out_errno == 0) g_out_errno = errno != 0 ? errno : EIO;
  if (!output_failed()) return rc;
  if (g_out_errno == EPIPE || output_reader_gone()) return rc;
  fprintf(stderr, "%s: writing output: %s\n", prog, strerror(g_out_errno));
  return EXIT_FAIL;
}

/* ---- bytes in and out ---- */

/* Unescapes `text` into `out`; false with a message for a bad escape. */
static bool parse_bytes(const command *cmd, const char *what, const char *text, buf *out,
                        int *rc) {
  buf_clear(out);
  if (!slice_unescape(text, out)) {
    *rc = usage_error(cmd, "bad escape in %s '%s'", what, text);
    return false;
  }
  return true;
}

static void put_escaped(FILE *f, const void *p, size_t n) {
  buf b = BUF_INIT;
  slice_escape(slice_make(p, n), &b);
  if (b.len > 0) fwrite(b.data, 1, b.len, f);
  buf_free(&b);
}

static void put_json_string(FILE *f, const void *p, size_t n) {
  const uint8_t *s = p;
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = s[i];
    switch (ch) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\t': fputs("\\t", f); break;
      case '\r': fputs("\\r", f); break;
      default:
        if (ch >= 0x20 && ch < 0x7f)
          fputc(ch, f);
        else
          fprintf(f, "\\u%04x", ch);
    }
  }
  fputc('"', f);
}

static bool parse_format(const char *s, enum fmt *f) {
  if (strcmp(s, "text") == 0) *f = FMT_TEXT;
  else if (strcmp(s, "tsv") == 0) *f = FMT_TSV;
  else if (strcmp(s, "json") == 0) *f = FMT_JSON;
  else return false;
  return true;
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (s == NULL || *s == '\0' || *s == '-') return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

/* ---- option parsing shared by the commands ---- */

enum {
  OPT_HELP = 'h',
  OPT_START = 1000,
  OPT_END,
  OPT_PREFIX,
  OPT_LIMIT,
  OPT_REVERSE,
  OPT_KEYS_ONLY,
  OPT_FORMAT,
  OPT_SPLITS,
  OPT_ALL,
  OPT_BATCH,
  OPT_JSON,
  OPT_HTTP,
};

/* Parses the flags of `cmd` (from `longopts`), leaving positionals in
 * argv[optind..]. Returns -1 to go on, else the exit status (help shown or
 * usage error). `handle` gets each flag. */
static int parse_flags(const command *cmd, int argc, char **argv,
                       const struct option *longopts,
                       bool (*handle)(int opt, const char *arg, void *ctx), void *ctx) {
  optind = 1;
  opterr = 0;
  for (;;) {
    int idx = 0;
    int opt = getopt_long(argc, argv, ":h", longopts, &idx);
    if (opt == -1) break;
    if (opt == OPT_HELP) {
      command_usage(stdout, cmd);
      return 0;
    }
    if (opt == '?') {
      const char *bad = argv[optind - 1];
      return usage_error(cmd, "unknown flag '%s'", bad != NULL ? bad : "?");
    }
    if (opt == ':') return usage_error(cmd, "flag '%s' needs a value", argv[optind - 1]);
    if (!handle(opt, optarg, ctx))
      return usage_error(cmd, "bad value '%s' for flag '--%s'", optarg ? optarg : "",
                         longopts[idx].name);
  }
  return -1;
}

static bool no_flags(int opt, const char *arg, void *ctx) {
  (void)opt, (void)arg, (void)ctx;
  return false;
}

static const struct option only_help[] = {{"help", no_argument, NULL, OPT_HELP},
                                          {NULL, 0, NULL, 0}};

static bool format_flag(int opt, const char *arg, void *ctx) {
  return opt == OPT_FORMAT && parse_format(arg, ctx);
}

static const struct option format_opts[] = {{"help", no_argument, NULL, OPT_HELP},
                                            {"format", required_argument, NULL, OPT_FORMAT},
                                            {NULL, 0, NULL, 0}};

/* Checks the positional count is within [min, max]. */
static int positionals(const command *cmd, int argc, int min, int max) {
  int n = argc - optind;
  if (n < min) return usage_error(cmd, "missing argument");
  if (n > max) return usage_error(cmd, "too many arguments");
  return -1;
}

/* ---- scan ---- */

typedef struct scan_args {
  const command *cmd;
  buf start, end, prefix;
  mica_scan_options o;
  enum fmt format;
  bool bad_escape;
} scan_args;

static bool scan_flag(int opt, const char *arg, void *ctx) {
  scan_args *a = ctx;
  switch (opt) {
    case OPT_START: buf_clear(&a->start); return slice_unescape(arg, &a->start) && a->start.len > 0;
    case OPT_END: buf_clear(&a->end); return slice_unescape(arg, &a->end) && a->end.len > 0;
    case OPT_PREFIX: buf_clear(&a->prefix); return slice_unescape(arg, &a->prefix);
    case OPT_LIMIT: return parse_u64(arg, &a->o.limit);
    case OPT_REVERSE: a->o.reverse = 1; return true;
    case OPT_KEYS_ONLY: a->o.keys_only = 1; return true;
    case OPT_FORMAT: return parse_format(arg, &a->format);
    default: return false;
  }
}

static int cmd_scan(mica_client *c, int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, NULL, OPT_HELP},
      {"start", required_argument, NULL, OPT_START},
      {"end", required_argument, NULL, OPT_END},
      {"prefix", required_argument, NULL, OPT_PREFIX},
      {"limit", required_argument, NULL, OPT_LIMIT},
      {"reverse", no_argument, NULL, OPT_REVERSE},
      {"keys-only", no_argument, NULL, OPT_KEYS_ONLY},
      {"format", required_argument, NULL, OPT_FORMAT},
      {NULL, 0, NULL, 0}};
  scan_args a;
  memset(&a, 0, sizeof a);
  a.cmd = find_command("scan");
  int rc = parse_flags(a.cmd, argc, argv, opts, scan_flag, &a);
  if (rc < 0) rc = positionals(a.cmd, argc, 1, 1);
  if (rc >= 0) goto out;
  a.o.start = a.start.data;
  a.o.start_len = a.start.len;
  a.o.end = a.end.data;
  a.o.end_len = a.end.len;
  a.o.prefix = a.prefix.data;
  a.o.prefix_len = a.prefix.len;
  const char *table = argv[optind];
  mica_scanner *s = NULL;
  int code = mica_scan_open(c, table, &a.o, &s);
  if (code != MICA_OK) {
    rc = fail(code, "scan");
    goto out;
  }
  if (a.format == FMT_JSON) fputs("[", stdout);
  uint64_t rows = 0;
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    code = mica_scan_next(s, &has, &k, &kl, &v, &vl);
    if (code != MICA_OK || !has) break;
    if (a.format == FMT_JSON) {
      fputs(rows ? ",\n  {\"key\": " : "\n  {\"key\": ", stdout);
      put_json_string(stdout, k, kl);
      if (!a.o.keys_only) {
        fputs(", \"value\": ", stdout);
        put_json_string(stdout, v, vl);
      }
      fputs("}", stdout);
    } else {
      put_escaped(stdout, k, kl);
      if (!a.o.keys_only) {
        fputs(a.format == FMT_TSV ? "\t" : " => ", stdout);
        put_escaped(stdout, v, vl);
      }
      fputc('\n', stdout);
    }
    rows++;
    if (output_failed()) break;
  }
  if (a.format == FMT_JSON) fputs(rows ? "\n]\n" : "]\n", stdout);
  fflush(stdout);
  rc = code == MICA_OK ? 0 : fail(code, "scan");
  mica_scan_close(s);
out:
  buf_free(&a.start);
  buf_free(&a.end);
  buf_free(&a.prefix);
  return rc < 0 ? 0 : rc;
}

/* ---- get, put, del ---- */

typedef struct get_args {
  enum fmt format;
  bool raw;
} get_args;

static bool get_flag(int opt, const char *arg, void *ctx) {
  get_args *a = ctx;
  if (opt != OPT_FORMAT) return false;
  if (strcmp(arg, "raw") == 0) {
    a->raw = true;
    return true;
  }
  return parse_format(arg, &a->format);
}

static int cmd_get(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("get");
  get_args a = {FMT_TEXT, false};
  int rc = parse_flags(cmd, argc, argv, format_opts, get_flag, &a);
  if (rc < 0) rc = positionals(cmd, argc, 2, 2);
  if (rc >= 0) return rc;
  buf key = BUF_INIT;
  if (!parse_bytes(cmd, "key", argv[optind + 1], &key, &rc)) return rc;
  void *v = NULL;
  size_t vl = 0;
  int code = mica_get(c, argv[optind], key.data, key.len, &v, &vl);
  if (code != MICA_OK) {
    buf_free(&key);
    return fail(code, "get");
  }
  if (a.raw) {
    fwrite(v, 1, vl, stdout);
  } else if (a.format == FMT_JSON) {
    fputs("{\"key\": ", stdout);
    put_json_string(stdout, key.data, key.len);
    fputs(", \"value\": ", stdout);
    put_json_string(stdout, v, vl);
    fputs("}\n", stdout);
  } else if (a.format == FMT_TSV) {
    put_escaped(stdout, key.data, key.len);
    fputc('\t', stdout);
    put_escaped(stdout, v, vl);
    fputc('\n', stdout);
  } else {
    put_escaped(stdout, v, vl);
    fputc('\n', stdout);
  }
  mica_free(v);
  buf_free(&key);
  return 0;
}

static int cmd_put(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("put");
  int rc = parse_flags(cmd, argc, argv, only_help, no_flags, NULL);
  if (rc < 0) rc = positionals(cmd, argc, 3, 3);
  if (rc >= 0) return rc;
  buf key = BUF_INIT, val = BUF_INIT;
  if (parse_bytes(cmd, "key", argv[optind + 1], &key, &rc) &&
      parse_bytes(cmd, "value", argv[optind + 2], &val, &rc)) {
    int code = mica_put(c, argv[optind], key.data, key.len, val.data, val.len);
    rc = code == MICA_OK ? 0 : fail(code, "put");
  }
  buf_free(&key);
  buf_free(&val);
  return rc;
}

static int cmd_del(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("del");
  int rc = parse_flags(cmd, argc, argv, only_help, no_flags, NULL);
  if (rc < 0) rc = positionals(cmd, argc, 2, 2);
  if (rc >= 0) return rc;
  buf key = BUF_INIT;
  if (parse_bytes(cmd, "key", argv[optind + 1], &key, &rc)) {
    int code = mica_delete(c, argv[optind], key.data, key.len);
    rc = code == MICA_OK ? 0 : fail(code, "del");
  }
  buf_free(&key);
  return rc;
}

/* ---- load ---- */

static bool batch_flag(int opt, const char *arg, void *ctx) {
  uint64_t v = 0;
  if (opt != OPT_BATCH || !parse_u64(arg, &v) || v == 0 || v > 100000) return false;
  *(uint64_t *)ctx = v;
  return true;
}

static void progress(uint64_t rows, uint64_t bytes, bool final) {
  fprintf(stderr, "\rloaded %" PRIu64 " rows, %.1f MiB%s", rows,
          (double)bytes / (1024.0 * 1024.0), final ? "\n" : "");
  fflush(stderr);
}

static int cmd_load(mica_client *c, int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, OPT_HELP},
                                       {"batch", required_argument, NULL, OPT_BATCH},
                                       {NULL, 0, NULL, 0}};
  const command *cmd = find_command("load");
  uint64_t per_batch = 1000;
  int rc = parse_flags(cmd, argc, argv, opts, batch_flag, &per_batch);
  if (rc < 0) rc = positionals(cmd, argc, 2, 2);
  if (rc >= 0) return rc;
  const char *table = argv[optind], *path = argv[optind + 1];
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "%s: load: cannot open '%s': %s\n", prog, path, strerror(errno));
    return EXIT_FAIL;
  }
  bool tty = isatty(STDERR_FILENO);
  mica_batch *b = mica_batch_new();
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  uint64_t lineno = 0, rows = 0, bytes = 0, batch_bytes = 0;
  buf key = BUF_INIT, val = BUF_INIT;
  rc = 0;
  for (;;) {
    len = getline(&line, &cap, f);
    bool eof = len < 0;
    if (!eof) {
      lineno++;
      while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
      if (len == 0) continue;
      char *tab = strchr(line, '\t');
      if (tab == NULL) {
        fprintf(stderr, "%s: load: %s:%" PRIu64 ": no tab between key and value\n", prog,
                path, lineno);
        rc = EXIT_FAIL;
        break;
      }
      *tab = 0;
      buf_clear(&key);
      buf_clear(&val);
      if (!slice_unescape(line, &key) || !slice_unescape(tab + 1, &val) || key.len == 0) {
        fprintf(stderr, "%s: load: %s:%" PRIu64 ": %s\n", prog, path, lineno,
                key.len == 0 ? "empty key or bad escape" : "bad escape");
        rc = EXIT_FAIL;
        break;
      }
      int code = mica_batch_put(b, key.data, key.len, val.data, val.len);
      if (code != MICA_OK) {
        fprintf(stderr, "%s: load: %s:%" PRIu64 ": %s\n", prog, path, lineno, mica_errmsg());
        rc = EXIT_FAIL;
        break;
      }
      batch_bytes += key.len + val.len;
    }
    /* Batches stay well below the 32 MiB request limit. */
    if (mica_batch_count(b) > 0 &&
        (eof || mica_batch_count(b) >= per_batch || batch_bytes >= (16u << 20))) {
      int code = mica_batch_write(c, table, b, 0, NULL);
      if (code != MICA_OK) {
        if (tty) fputc('\n', stderr);
        fprintf(stderr, "%s: load: batch ending at %s:%" PRIu64 ": %s (%s)\n", prog, path,
                lineno, mica_errmsg(), mica_code_name(code));
        rc = EXIT_FAIL;
        break;
      }
      rows += mica_batch_count(b);
      bytes += batch_bytes;
      batch_bytes = 0;
      mica_batch_clear(b);
      if (tty) progress(rows, bytes, false);
    }
    if (eof) break;
  }
  if (rc == 0 && ferror(f)) {
    fprintf(stderr, "%s: load: reading '%s': %s\n", prog, path, strerror(errno));
    rc = EXIT_FAIL;
  }
  if (rc == 0) {
    if (tty)
      progress(rows, bytes, true);
    else
      fprintf(stderr, "loaded %" PRIu64 " rows\n", rows);
  }
  free(line);
  buf_free(&key);
  buf_free(&val);
  mica_batch_free(b);
  if (f != stdin) fclose(f);
  return rc;
}

/* ---- tables ---- */

static bool splits_flag(int opt, const char *arg, void *ctx) {
  if (opt != OPT_SPLITS) return false;
  char **out = ctx;
  *out = (char *)arg;
  return true;
}

/* The flags of create and alter: splits and table options (cmd_topts.h). */
typedef struct table_flags {
  char *splits;
  mica_table_options o;
  unsigned mask;
} table_flags;

static bool table_flag(int opt, const char *arg, void *ctx) {
  table_flags *tf = ctx;
  if (opt == OPT_SPLITS) return splits_flag(opt, arg, &tf->splits);
  return mtopt_flag(opt, arg, &tf->o, &tf->mask);
}

static int cmd_create(mica_client *c, int argc, char **argv) {
  struct option opts[8] = {{"help", no_argument, NULL, OPT_HELP},
                           {"splits", required_argument, NULL, OPT_SPLITS}};
  mtopt_longopts(&opts[2], true);
  const command *cmd = find_command("create");
  table_flags tf = {0};
  mica_table_options_init(&tf.o);
  int rc = parse_flags(cmd, argc, argv, opts, table_flag, &tf);
  char *splits = tf.splits;
  if (rc < 0) rc = positionals(cmd, argc, 1, 1);
  if (rc >= 0) return rc;
  buf *keys = NULL;
  mica_key *mk = NULL;
  size_t n = 0;
  if (splits != NULL && *splits != '\0') {
    char *copy = strdup(splits);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
      keys = realloc(keys, (n + 1) * sizeof *keys);
      memset(&keys[n], 0, sizeof keys[n]);
      if (!slice_unescape(tok, &keys[n]) || keys[n].len == 0) {
        rc = usage_error(cmd, "bad split key '%s'", tok);
        n++;
        break;
      }
      n++;
    }
    free(copy);
  }
  if (rc < 0) {
    mk = calloc(n ? n : 1, sizeof *mk);
    for (size_t i = 0; i < n; i++) {
      mk[i].data = keys[i].data;
      mk[i].len = keys[i].len;
    }
    int code = mica_create_table_opts(c, argv[optind], mk, n, &tf.o);
    if (code == MICA_OK) {
      size_t buckets = tf.o.salt_buckets ? tf.o.salt_buckets : 1;
      printf("created table %s with %zu tablets\n", argv[optind], buckets * (n + 1));
      rc = 0;
    } else {
      rc = fail(code, "create");
    }
  }
  for (size_t i = 0; i < n; i++) buf_free(&keys[i]);
  free(keys);
  free(mk);
  return rc;
}

static int cmd_alter(mica_client *c, int argc, char **argv) {
  struct option opts[6] = {{"help", no_argument, NULL, OPT_HELP}};
  mtopt_longopts(&opts[1], false);
  const command *cmd = find_command("alter");
  table_flags tf = {0};
  mica_table_options_init(&tf.o);
  int rc = parse_flags(cmd, argc, argv, opts, table_flag, &tf);
  if (rc < 0) rc = positionals(cmd, argc, 1, 1);
  if (rc >= 0) return rc;
  if (tf.mask == 0) return usage_error(cmd, "no option to change");
  int code = mica_alter_table(c, argv[optind], &tf.o, tf.mask);
  if (code != MICA_OK) return fail(code, "alter");
  printf("altered table %s\n", argv[optind]);
  return 0;
}

static int cmd_describe(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("describe");
  enum fmt f = FMT_TEXT;
  int rc = parse_flags(cmd, argc, argv, format_opts, format_flag, &f);
  if (rc < 0) rc = positionals(cmd, argc, 1, 1);
  if (rc >= 0) return rc;
  mica_table_info *t = NULL;
  size_t n = 0;
  int code = mica_list_tables(c, &t, &n);
  if (code != MICA_OK) return fail(code, "describe");
  size_t i = 0;
  while (i < n && strcmp(t[i].name, argv[optind]) != 0) i++;
  if (i == n) {
    mica_free(t);
    fprintf(stderr, "%s: describe: no table %s (NOT_FOUND)\n", prog, argv[optind]);
    return EXIT_FAIL;
  }
  if (f == FMT_JSON) {
    printf("{\"name\": ");
    put_json_string(stdout, t[i].name, strlen(t[i].name));
    printf(", \"id\": %" PRIu64 ", \"tablets\": %" PRIu64 ", \"options\": ",
           t[i].table_id, t[i].tablet_count);
    mtopt_print(stdout, &t[i], true);
    printf("}\n");
  } else {
    printf("table:            %s\nid:               %" PRIu64
           "\ntablets:          %" PRIu64 "\n",
           t[i].name, t[i].table_id, t[i].tablet_count);
    mtopt_print(stdout, &t[i], false);
  }
  mica_free(t);
  return 0;
}

static int cmd_drop(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("drop");
  int rc = parse_flags(cmd, argc, argv, only_help, no_flags, NULL);
  if (rc < 0) rc = positionals(cmd, argc, 1, 1);
  if (rc >= 0) return rc;
  int code = mica_drop_table(c, argv[optind]);
  if (code != MICA_OK) return fail(code, "drop");
  printf("dropped table %s\n", argv[optind]);
  return 0;
}

static int cmd_tables(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("tables");
  enum fmt f = FMT_TEXT;
  int rc = parse_flags(cmd, argc, argv, format_opts, format_flag, &f);
  if (rc < 0) rc = positionals(cmd, argc, 0, 0);
  if (rc >= 0) return rc;
  mica_table_info *t = NULL;
  size_t n = 0;
  int code = mica_list_tables(c, &t, &n);
  if (code != MICA_OK) return fail(code, "tables");
  if (f == FMT_JSON) fputs("[", stdout);
  if (f == FMT_TEXT) printf("%-24s %8s %8s %14s %12s\n", "TABLE", "ID", "TABLETS", "BYTES", "KEYS");
  for (size_t i = 0; i < n; i++) {
    if (f == FMT_JSON) {
      printf("%s\n  {\"name\": ", i ? "," : "");
      put_json_string(stdout, t[i].name, strlen(t[i].name));
      printf(", \"id\": %" PRIu64 ", \"tablets\": %" PRIu64 ", \"bytes\": %" PRIu64
             ", \"keys\": %" PRIu64 ", \"created_ms\": %" PRIu64,
             t[i].table_id, t[i].tablet_count, t[i].approx_bytes, t[i].approx_keys,
             t[i].created_ms);
      printf(", \"options\": ");
      mtopt_print(stdout, &t[i], true);
      printf("}");
    } else if (f == FMT_TSV) {
      printf("%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", t[i].name,
             t[i].table_id, t[i].tablet_count, t[i].approx_bytes, t[i].approx_keys);
    } else {
      printf("%-24s %8" PRIu64 " %8" PRIu64 " %14" PRIu64 " %12" PRIu64 "\n", t[i].name,
             t[i].table_id, t[i].tablet_count, t[i].approx_bytes, t[i].approx_keys);
    }
  }
  if (f == FMT_JSON) fputs(n ? "\n]\n" : "]\n", stdout);
  mica_free(t);
  return 0;
}

static int cmd_tablets(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("tablets");
  enum fmt f = FMT_TEXT;
  int rc = parse_flags(cmd, argc, argv, format_opts, format_flag, &f);
  if (rc < 0) rc = positionals(cmd, argc, 0, 1);
  if (rc >= 0) return rc;
  mica_tablet_info *t = NULL;
  size_t n = 0;
  int code = mica_list_tablets(c, optind < argc ? argv[optind] : NULL, &t, &n);
  if (code != MICA_OK) return fail(code, "tablets");
  if (f == FMT_JSON) fputs("[", stdout);
  /* Salted tables' boundaries are shown unsalted in text (cmd_topts.h). */
  mtopt_salts salts = {0};
  if (f == FMT_TEXT) mtopt_salts_load(c, &salts);
  if (f == FMT_TEXT)
    printf("%-8s %-16s %-20s %-20s %-10s %-22s %8s %8s\n", "TABLET", "TABLE", "START", "END",
           "STATE", "SERVER", "R-EPOCH", "A-EPOCH");
  for (size_t i = 0; i < n; i++) {
    const mica_tablet_info *x = &t[i];
    if (f == FMT_JSON) {
      printf("%s\n  {\"tablet_id\": %" PRIu64 ", \"table\": ", i ? "," : "", x->tablet_id);
      put_json_string(stdout, x->table_name, strlen(x->table_name));
      fputs(", \"start\": ", stdout);
      put_json_string(stdout, x->start_key, x->start_len);
      fputs(", \"end\": ", stdout);
      put_json_string(stdout, x->end_key, x->end_len);
      printf(", \"state\": \"%s\", \"server_id\": %" PRIu64 ", \"address\": ", x->state,
             x->server_id);
      put_json_string(stdout, x->address, strlen(x->address));
      printf(", \"range_epoch\": %" PRIu64 ", \"assign_epoch\": %" PRIu64
             ", \"bytes\": %" PRIu64 ", \"keys\": %" PRIu64 "}",
             x->range_epoch, x->assign_epoch, x->approx_bytes, x->approx_keys);
    } else {
      buf s = BUF_INIT, e = BUF_INIT;
      slice_escape(slice_make(x->start_key, x->start_len), &s);
      slice_escape(slice_make(x->end_key, x->end_len), &e);
      if (f == FMT_TEXT && mtopt_salt_of(&salts, x->table_name) > 0) {
        if (x->start_len) mtopt_unsalted(x->start_key, x->start_len, &s);
        if (x->end_len) mtopt_unsalted(x->end_key, x->end_len, &e);
      }
      const char *ss = x->start_len ? (char *)s.data : (f == FMT_TSV ? "" : "-inf");
      const char *es = x->end_len ? (char *)e.data : (f == FMT_TSV ? "" : "+inf");
      if (f == FMT_TSV)
        printf("%" PRIu64 "\t%s\t%s\t%s\t%s\t%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\n",
               x->tablet_id, x->table_name, ss, es, x->state, x->server_id, x->address,
               x->range_epoch, x->assign_epoch);
      else
        printf("%-8" PRIu64 " %-16s %-20s %-20s %-10s %-22s %8" PRIu64 " %8" PRIu64 "\n",
               x->tablet_id, x->table_name, ss, es, x->state,
               x->address[0] ? x->address : "-", x->range_epoch, x->assign_epoch);
      buf_free(&s);
      buf_free(&e);
    }
  }
  if (f == FMT_JSON) fputs(n ? "\n]\n" : "]\n", stdout);
  mtopt_salts_free(&salts);
  mica_free(t);
  return 0;
}

typedef struct servers_args {
  enum fmt format;
  bool all;
} servers_args;

static bool servers_flag(int opt, const char *arg, void *ctx) {
  servers_args *a = ctx;
  if (opt == OPT_ALL) {
    a->all = true;
    return true;
  }
  return opt == OPT_FORMAT && parse_format(arg, &a->format);
}

static int cmd_servers(mica_client *c, int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, OPT_HELP},
                                       {"format", required_argument, NULL, OPT_FORMAT},
                                       {"all", no_argument, NULL, OPT_ALL},
                                       {NULL, 0, NULL, 0}};
  const command *cmd = find_command("servers");
  servers_args a = {FMT_TEXT, false};
  int rc = parse_flags(cmd, argc, argv, opts, servers_flag, &a);
  if (rc < 0) rc = positionals(cmd, argc, 0, 0);
  if (rc >= 0) return rc;
  mica_server_info *s = NULL;
  size_t n = 0;
  int code = mica_list_servers(c, a.all, &s, &n);
  if (code != MICA_OK) return fail(code, "servers");
  if (a.format == FMT_JSON) fputs("[", stdout);
  if (a.format == FMT_TEXT)
    printf("%-6s %-22s %-8s %10s %8s %14s %10s %10s %s\n", "ID", "ADDRESS", "STATE", "LEASE-AGE",
           "TABLETS", "BYTES", "READS/S", "WRITES/S", "DRAINING");
  for (size_t i = 0; i < n; i++) {
    const mica_server_info *x = &s[i];
    if (a.format == FMT_JSON) {
      printf("%s\n  {\"server_id\": %" PRIu64 ", \"address\": ", i ? "," : "", x->server_id);
      put_json_string(stdout, x->address, strlen(x->address));
      printf(", \"state\": \"%s\", \"lease_age_ms\": %" PRIu64 ", \"tablets\": %u"
             ", \"bytes\": %" PRIu64 ", \"read_rate\": %.3f, \"write_rate\": %.3f"
             ", \"draining\": %s}",
             x->state, x->lease_age_ms, x->tablet_count, x->approx_bytes, x->read_rate,
             x->write_rate, x->draining ? "true" : "false");
    } else if (a.format == FMT_TSV) {
      printf("%" PRIu64 "\t%s\t%s\t%" PRIu64 "\t%u\t%" PRIu64 "\t%.3f\t%.3f\t%s\n",
             x->server_id, x->address, x->state, x->lease_age_ms, x->tablet_count,
             x->approx_bytes, x->read_rate, x->write_rate, x->draining ? "draining" : "-");
    } else {
      printf("%-6" PRIu64 " %-22s %-8s %8" PRIu64 "ms %8u %14" PRIu64 " %10.1f %10.1f %s\n",
             x->server_id, x->address, x->state, x->lease_age_ms, x->tablet_count,
             x->approx_bytes, x->read_rate, x->write_rate, x->draining ? "yes" : "no");
    }
  }
  if (a.format == FMT_JSON) fputs(n ? "\n]\n" : "]\n", stdout);
  mica_free(s);
  return 0;
}

/* ---- tablets: split, move, balance ---- */

static int cmd_split(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("split");
  int rc = parse_flags(cmd, argc, argv, only_help, no_flags, NULL);
  if (rc < 0) rc = positionals(cmd, argc, 1, 2);
  if (rc >= 0) return rc;
  uint64_t id = 0;
  if (!parse_u64(argv[optind], &id) || id == 0)
    return usage_error(cmd, "bad tablet id '%s'", argv[optind]);
  buf key = BUF_INIT;
  if (optind + 1 < argc && !parse_bytes(cmd, "key", argv[optind + 1], &key, &rc)) return rc;
  if (optind + 1 < argc && key.len == 0) return usage_error(cmd, "empty split key");
  uint64_t d[2];
  int code = mica_split_tablet(c, id, key.data, key.len, d);
  buf_free(&key);
  if (code != MICA_OK) return fail(code, "split");
  printf("split tablet %" PRIu64 " into %" PRIu64 " and %" PRIu64 "\n", id, d[0], d[1]);
  return 0;
}

static int cmd_move(mica_client *c, int argc, char **argv) {
  const command *cmd = find_command("move");
  int rc = parse_flags(cmd, argc, argv, only_help, no_flags, NULL);
  if (rc < 0) rc = positionals(cmd, argc, 2, 2);
  if (rc >= 0) return rc;
  uint64_t id = 0, server = 0;
  if (!parse_u64(argv[optind], &id) || id == 0)
    return usage_error(cmd, "bad tablet id '%s'", argv[optind]);
  const char *target = argv[optind + 1];
  if (!parse_u64(target, &server)) {
    /* Not a number: a server address, resolved through the server list. */
    if (strchr(target, ':') == NULL)
      return usage_error(cmd, "bad server '%s' (an id or HOST:PORT)", target);
    mica_server_info *s = NULL;
    size_t n = 0;
    int code = mica_list_servers(c, 0, &s, &n);
    if (code != MICA_OK) return fail(code, "move");
    for (size_t i = 0; i < n; i++)
      if (strcmp(s[i].address, target) == 0) server = s[i].server_id;
    mica_free(s);
    if (server == 0) {
      fprintf(stderr, "%s: move: no live server at %s\n", prog, target);
      return EXIT_FAIL;
    }
  }
  int code = mica_move_tablet(c, id, server);
  if (code != MICA_OK) return fail(code, "move");
  printf("moved tablet %" PRIu64 " to server %" PRIu64 "\n", id, server);
  return 0;
}

/* ---- status ---- */

typedef struct status_args {
  bool json;
  const char *http;
} status_args;

static bool status_flag(int opt, const char *arg, void *ctx) {
  status_args *a = ctx;
  if (opt == OPT_JSON) {
    a->json = true;
    return true;
  }
  if (opt == OPT_HTTP && mstatus_valid_address(arg) && strlen(arg) <= 255) {
    a->http = arg;
    return true;
  }
  return false;
}

/* The master's HTTP address, asked of the master (GetInfo) unless *http is
 * set already; *info (caller frees with mica_free) holds the string. -1 to
 * go on, else the exit status after one line on stderr. */
static int master_http(mica_client *c, const char *what, const char **http,
                       mica_master_info **info) {
  *info = NULL;
  if (*http != NULL) return -1;
  int code = mica_get_master_info(c, info);
  if (code != MICA_OK) {
    fprintf(stderr, "%s: %s: cannot reach the master at %s: %s (%s)\n", prog, what,
            mica_master_address(c), mica_errmsg(), mica_code_name(code));
    return EXIT_FAIL;
  }
  const char *h = (*info)->http_address;
  if (h[0] == '\0' || strlen(h) > 255 || !mstatus_valid_address(h)) {
    fprintf(stderr, "%s: %s: the master at %s reports %s HTTP address%s%s; "
            "give one with --http HOST:PORT\n", prog, what, mica_master_address(c),
            h[0] ? "an unusable" : "no", h[0] ? " " : "", h);
    mica_free(*info);
    *info = NULL;
    return EXIT_FAIL;
  }
  *http = h;
  return -1;
}

static int cmd_status(mica_client *c, int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, OPT_HELP},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {"http", required_argument, NULL, OPT_HTTP},
                                       {NULL, 0, NULL, 0}};
  const command *cmd = find_command("status");
  status_args a = {false, NULL};
  int rc = parse_flags(cmd, argc, argv, opts, status_flag, &a);
  if (rc < 0) rc = positionals(cmd, argc, 0, 0);
  if (rc >= 0) return rc;
  mica_master_info *info = NULL;
  rc = master_http(c, "status", &a.http, &info);
  if (rc >= 0) return rc;
  mstatus_opts o = {a.http, a.json, g_deadline_ms, g_token};
  o.ca = g_ca;
  rc = mstatus_run(&o, stdout, stderr);
  mica_free(info);
  return rc;
}

/* ---- hot ---- */

static bool hot_flag(int opt, const char *arg, void *ctx) {
  mhot_opts *o = ctx;
  uint64_t v;
  enum fmt f;
  switch (opt) {
    case OPT_LIMIT:
      if (!parse_u64(arg, &v) || v == 0 || v > 1000) return false;
      o->limit = (unsigned)v;
      return true;
    case OPT_FORMAT:
      if (!parse_format(arg, &f)) return false;
      o->format = f == FMT_JSON ? MHOT_JSON : f == FMT_TSV ? MHOT_TSV : MHOT_TEXT;
      return true;
    case OPT_HTTP:
      if (!mstatus_valid_address(arg) || strlen(arg) > 255) return false;
      o->http = arg;
      return true;
    default:
      return false;
  }
}

/* A table name as the master accepts one ([A-Za-z0-9_.-]{1,128}): it goes
 * into a URL as it is. */
static bool table_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 128) return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
      return false;
  return true;
}

static int cmd_hot(mica_client *c, int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, OPT_HELP},
                                       {"limit", required_argument, NULL, OPT_LIMIT},
                                       {"format", required_argument, NULL, OPT_FORMAT},
                                       {"http", required_argument, NULL, OPT_HTTP},
                                       {NULL, 0, NULL, 0}};
  const command *cmd = find_command("hot");
  mhot_opts o = {NULL, NULL, 20, MHOT_TEXT, g_deadline_ms, g_token, g_ca};
  int rc = parse_flags(cmd, argc, argv, opts, hot_flag, &o);
  if (rc < 0) rc = positionals(cmd, argc, 0, 1);
  if (rc >= 0) return rc;
  if (optind < argc) {
    if (!table_name_ok(argv[optind]))
      return usage_error(cmd, "bad table name '%s' (1 to 128 of A-Z a-z 0-9 _ . -)",
                         argv[optind]);
    o.table = argv[optind];
  }
  mica_master_info *info = NULL;
  rc = master_http(c, "hot", &o.http, &info);
  if (rc >= 0) return rc;
  rc = mhot_run(&o, stdout, stderr);
  mica_free(info);
  return rc;
}

/* ---- the command table ---- */

static int cmd_help(mica_client *c, int argc, char **argv);

static const command commands[] = {
    {"scan", cmd_scan,
     "TABLE [--start K] [--end K] [--prefix P] [--limit N] [--reverse] [--keys-only] "
     "[--format text|tsv|json]",
     "Prints the rows of TABLE in key order (descending with --reverse), from --start\n"
     "(inclusive) to --end (exclusive), only keys beginning with --prefix, at most\n"
     "--limit rows. The scan crosses tablets and survives splits and moves.\n"
     "Formats: text 'key => value', tsv 'key<TAB>value' (escaped), json an array of\n"
     "{\"key\", \"value\"} objects.\n"
     "\nExample:\n  mica scan users --prefix 'user:' --limit 10 --format json\n"},
    {"get", cmd_get, "TABLE KEY [--format text|tsv|json|raw]",
     "Prints the value of KEY (escaped; --format raw writes the bytes as they are).\n"
     "Exits 1 with a message when the key has no value.\n"
     "\nExample:\n  mica get users 'user:\\x00\\x01'\n"},
    {"put", cmd_put, "TABLE KEY VALUE",
     "Sets KEY to VALUE; returns once the write is durable.\n"
     "\nExample:\n  mica put users user:42 'Ada Lovelace'\n"},
    {"del", cmd_del, "TABLE KEY",
     "Deletes KEY (deleting a missing key succeeds).\n"
     "\nExample:\n  mica del users user:42\n"},
    {"load", cmd_load, "TABLE FILE [--batch N]",
     "Loads FILE ('-' for stdin): one 'key<TAB>value' per line, escapes allowed,\n"
     "empty lines skipped. Rows go in batches of N (default 1000), each batch split\n"
     "at tablet boundaries. A progress line is shown when stderr is a terminal.\n"
     "\nExample:\n  printf 'a\\t1\\nb\\t2\\n' | mica load users -\n"},
    {"create", cmd_create,
     "TABLE [--splits K1,K2,...] [--salt N] [--compression none|lz4|zstd]\n"
     "       [--split-threshold BYTES] [--block-size BYTES] [--bloom-bits 0..32]",
     "Creates TABLE, pre-split at the given keys (strictly increasing; write a comma\n"
     "inside a key as \\x2c), with the given options (docs/table-options.md; sizes\n"
     "take K, M, G, T suffixes; left out = the servers' default). --salt N (2..255)\n"
     "makes a salted table: each key is stored under a one-byte bucket hashed from\n"
     "it, so increasing keys spread over N tablets; scans fan out to all N buckets\n"
     "and merge, and keys are shown as written. Fixed at create.\n"
     "\nExample:\n  mica create users --splits g,n,t\n"
     "  mica create events --salt 16 --compression zstd\n"},
    {"alter", cmd_alter,
     "TABLE [--compression none|lz4|zstd|default] [--split-threshold BYTES|default]\n"
     "       [--block-size BYTES|default] [--bloom-bits 0..32|default]",
     "Changes options of TABLE. Servers apply them to the SSTables they write from\n"
     "then on and to split decisions, within one heartbeat. 'default' returns an\n"
     "option to the servers' default. The salt cannot change.\n"
     "\nExample:\n  mica alter users --compression zstd --split-threshold 256M\n"},
    {"describe", cmd_describe, "TABLE [--format text|json]",
     "Prints TABLE's id, tablet count and options.\n"
     "\nExample:\n  mica describe users\n"},
    {"drop", cmd_drop, "TABLE", "Drops TABLE and all its data.\n\nExample:\n  mica drop users\n"},
    {"tables", cmd_tables, "[--format text|tsv|json]",
     "Lists the tables with their tablet counts and sizes.\n\nExample:\n  mica tables\n"},
    {"tablets", cmd_tablets, "[TABLE] [--format text|tsv|json]",
     "Lists the tablets of TABLE (or of every table) with ranges, state, server and\n"
     "epochs. A salted table's boundaries are shown as [BUCKET] KEY in text; tsv and\n"
     "json show the stored key (the salt byte first), which `mica split` takes.\n"
     "\nExample:\n  mica tablets users --format tsv\n"},
    {"servers", cmd_servers, "[--all] [--format text|tsv|json]",
     "Lists the tablet servers (--all: dead ones too).\n\nExample:\n  mica servers\n"},
    {"split", cmd_split, "TABLET [KEY]",
     "Splits tablet TABLET at KEY (the first key of the right half), or at its middle\n"
     "by bytes when KEY is left out.\n\nExample:\n  mica split 7 user:5000\n"},
    {"move", cmd_move, "TABLET SERVER",
     "Moves tablet TABLET to SERVER (a server id or HOST:PORT, see `mica servers`).\n"
     "\nExample:\n  mica move 7 3\n"},
    {"balance", cmd_balance_run, CMD_BALANCE_USAGE, CMD_BALANCE_HELP},
    {"drain", cmd_drain_run, CMD_DRAIN_USAGE, CMD_DRAIN_HELP},
    {"undrain", cmd_undrain_run, CMD_UNDRAIN_USAGE, CMD_UNDRAIN_HELP},
    {"status", cmd_status, "[--json] [--http HOST:PORT]",
     "Prints a summary of the cluster: the master, its version and uptime, server,\n"
     "table and tablet counts, warnings, then one line per tablet server (id,\n"
     "address, state, tablets, bytes, reads/s, writes/s) and per table (tablets,\n"
     "bytes, keys). It reads the master's JSON API (/api/cluster, /api/servers,\n"
     "/api/tables), whose address it asks the master for, unless --http names it.\n"
     "--json prints {\"cluster\": ..., \"servers\": ..., \"tables\": ...} holding the\n"
     "three answers as the master sent them (docs/http-api.md). Each request may\n"
     "take up to --deadline ms. Exits 1 with one line naming the master or the URL\n"
     "when either cannot be read.\n"
     "\nExample:\n  mica --master 127.0.0.1:7000 status\n"
     "  mica status --http 127.0.0.1:7080 --json | python3 -m json.tool\n"},
    {"hot", cmd_hot, "[TABLE] [--limit N] [--format text|tsv|json] [--http HOST:PORT]",
     "Lists the hottest tablets (of TABLE, or of every table), busiest first, with\n"
     "their recent rates (weighted over about 10 s): operations (reads + writes +\n"
     "scans), reads, writes and scans per second and the key+value bytes read and\n"
     "written per second; then the hot keys the tablet servers reported, if any.\n"
     "At most --limit tablets (default 20, up to 1000). Keys are escaped as\n"
     "everywhere (-inf/+inf for the ends of the key space); tsv leaves out the\n"
     "header and the hot keys; json is the master's /api/hot answer as it came\n"
     "(docs/http-api.md). It reads the master's JSON API, whose address it asks\n"
     "the master for, unless --http names it.\n"
     "\nExample:\n  mica hot users --limit 5\n"},
    {"snapshot", cmd_snapshot_run, CMD_SNAPSHOT_USAGE, CMD_SNAPSHOT_HELP},
    {"snapshots", cmd_snapshots_run, CMD_SNAPSHOTS_USAGE, CMD_SNAPSHOTS_HELP},
    {"clone", cmd_clone_run, CMD_CLONE_USAGE, CMD_CLONE_HELP},
    {"restore", cmd_restore_run, CMD_RESTORE_USAGE, CMD_RESTORE_HELP},
    {"help", cmd_help, "[COMMAND]", "Shows the usage of mica or of COMMAND.\n"
                                    "\nExample:\n  mica help scan\n"},
};

static const command *find_command(const char *name) {
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

static int cmd_help(mica_client *c, int argc, char **argv) {
  (void)c;
  if (argc < 2) {
    main_usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    command_usage(stdout, find_command("help"));
    return 0;
  }
  const command *cmd = find_command(argv[1]);
  if (cmd == NULL) return usage_error(NULL, "unknown command '%s'", argv[1]);
  command_usage(stdout, cmd);
  return 0;
}

static int run(int argc, char **argv) {
  const char *master = getenv("MICA_MASTER");
  if (master == NULL || *master == '\0') master = DEFAULT_MASTER;
  int64_t deadline = 10000;
  const char *token = getenv("MICA_TOKEN");
  if (token != NULL && *token == '\0') token = NULL;
  const char *tls[3] = {getenv("MICA_CA"), getenv("MICA_CERT"),
                        getenv("MICA_KEY")};
  static const char *const tls_flag[3] = {"--ca", "--cert", "--key"};
  for (int k = 0; k < 3; k++)
    if (tls[k] != NULL && *tls[k] == '\0') tls[k] = NULL;
  /* gRPC's own diagnostics would bury the one line a failed command
   * prints; they show only when asked for with MICA_LOG_LEVEL. */
  if (getenv("MICA_LOG_LEVEL") == NULL) log_set_level(LOG_ERROR + 1);

  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      main_usage(stdout);
      return 0;
    }
    if (strcmp(a, "--version") == 0) {
      printf("mica %s\n", mica_version());
      return 0;
    }
    if (strncmp(a, "--master=", 9) == 0) {
      master = a + 9;
      continue;
    }
    if (strncmp(a, "--token=", 8) == 0) {
      token = a + 8;
      continue;
    }
    bool tls_hit = false;
    for (int k = 0; k < 3 && !tls_hit; k++) {
      size_t fl = strlen(tls_flag[k]);
      if (strncmp(a, tls_flag[k], fl) == 0 && a[fl] == '=') {
        tls[k] = a + fl + 1;
        tls_hit = true;
      } else if (strcmp(a, tls_flag[k]) == 0) {
        if (i + 1 >= argc)
          return usage_error(NULL, "flag '%s' needs a value", a);
        tls[k] = argv[++i];
        tls_hit = true;
      }
    }
    if (tls_hit) continue;
    if (strcmp(a, "--token") == 0) {
      if (i + 1 >= argc) return usage_error(NULL, "flag '%s' needs a value", a);
      token = argv[++i];
      continue;
    }
    if (strncmp(a, "--deadline=", 11) == 0) {
      val = a + 11;
    } else if (strcmp(a, "--master") == 0 || strcmp(a, "--deadline") == 0) {
      if (i + 1 >= argc) return usage_error(NULL, "flag '%s' needs a value", a);
      if (strcmp(a, "--master") == 0) {
        master = argv[++i];
        continue;
      }
      val = argv[++i];
    } else {
      return usage_error(NULL, "unknown flag '%s'", a);
    }
    uint64_t d = 0;
    if (!parse_u64(val, &d) || d == 0 || d > 3600000)
      return usage_error(NULL, "bad value '%s' for --deadline (1..3600000 ms)", val);
    deadline = (int64_t)d;
  }
  g_deadline_ms = deadline;
  if (i >= argc) return usage_error(NULL, "no command given");
  const command *cmd = find_command(argv[i]);
  if (cmd == NULL) return usage_error(NULL, "unknown command '%s'", argv[i]);
  if (cmd->run == cmd_help) return cmd_help(NULL, argc - i, argv + i);

  /* A command's own --help and usage errors need no connection, so flags
   * are checked before opening the client: a first pass with no client. */
  int sub_argc = argc - i;
  char **sub_argv = argv + i;
  for (int k = 1; k < sub_argc; k++) {
    if (strcmp(sub_argv[k], "--help") == 0 || strcmp(sub_argv[k], "-h") == 0) {
      command_usage(stdout, cmd);
      return 0;
    }
  }
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = deadline;
  o.token = token;
  o.tls_ca = tls[0];
  o.tls_cert = tls[1];
  o.tls_key = tls[2];
  g_token = token;
  g_ca = tls[0];
  mica_client *c = NULL;
  int code = mica_open(master, &o, &c);
  if (code != MICA_OK) {
    fprintf(stderr, "%s: %s\n", prog, mica_errmsg());
    return EXIT_FAIL;
  }
  int rc = cmd->run(c, sub_argc, sub_argv);
  mica_close(c);
  return rc;
}

int main(int argc, char **argv) {
  /* A closed stdout must end the output, not kill the process half-way:
   * with SIGPIPE ignored it is a write error that finish_output handles. */
  signal(SIGPIPE, SIG_IGN);
  return finish_output(run(argc, argv));
}
