/* example: a small program using libmica, the Mica C client library.
 *
 * Build against an installed libmica:
 *   cc example.c -o example $(pkg-config --cflags --libs mica)
 * Run against a cluster:
 *   ./example 127.0.0.1:7000
 *
 * It creates the table "example" pre-split at "m" (reusing it when it
 * exists), writes a few keys, one of them binary, reads one back, runs a
 * batch, scans the table forward and a prefix in reverse, and prints the
 * client's routing counters. Every call returns a mica_code; mica_errmsg()
 * says what went wrong. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <mica/mica.h>

static int check(int rc, const char *what) {
  if (rc != MICA_OK)
    fprintf(stderr, "example: %s: %s (%s)\n", what, mica_errmsg(), mica_code_name(rc));
  return rc;
}

/* Prints bytes with non-printable ones as \xNN, like the mica CLI. */
static void print_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
      putchar(s[i]);
    else
      printf("\\x%02x", s[i]);
  }
}

static int scan(mica_client *c, const mica_scan_options *o) {
  mica_scanner *s = NULL;
  if (check(mica_scan_open(c, "example", o, &s), "scan") != MICA_OK) return 1;
  int rc;
  for (;;) {
    int has = 0;
    const void *k, *v;
    size_t kl, vl;
    rc = mica_scan_next(s, &has, &k, &kl, &v, &vl);
    if (rc != MICA_OK || !has) break;
    printf("  ");
    print_bytes(k, kl);
    printf(" => ");
    print_bytes(v, vl);
    putchar('\n');
  }
  mica_scan_close(s);
  return check(rc, "scan") == MICA_OK ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *master = argc > 1 ? argv[1] : "127.0.0.1:7000";
  mica_options o;
  mica_options_init(&o);
  o.deadline_ms = 5000;
  mica_client *c = NULL;
  if (check(mica_open(master, &o, &c), "open") != MICA_OK) return 1;
  printf("libmica %s, master %s\n", mica_version(), mica_master_address(c));

  mica_key split = {"m", 1};
  int rc = mica_create_table(c, "example", &split, 1);
  if (rc != MICA_OK && rc != MICA_ALREADY_EXISTS) {
    check(rc, "create table");
    mica_close(c);
    return 1;
  }

  int failed = 0;
  failed |= check(mica_put(c, "example", "apple", 5, "red", 3), "put") != MICA_OK;
  failed |= check(mica_put(c, "example", "banana", 6, "yellow", 6), "put") != MICA_OK;
  failed |= check(mica_put(c, "example", "\x00\xff", 2, "binary", 6), "put") != MICA_OK;

  void *v = NULL;
  size_t vl = 0;
  if (check(mica_get(c, "example", "apple", 5, &v, &vl), "get") == MICA_OK) {
    printf("apple is %.*s\n", (int)vl, (const char *)v);
    mica_free(v);
  } else {
    failed = 1;
  }

  /* A batch over both tablets: atomic per tablet, cut in two here. */
  mica_batch *b = mica_batch_new();
  mica_batch_put(b, "cherry", 6, "dark red", 8);
  mica_batch_put(b, "plum", 4, "purple", 6);
  mica_batch_delete(b, "banana", 6);
  mica_batch_result br;
  failed |= check(mica_batch_write(c, "example", b, 0, &br), "batch") != MICA_OK;
  printf("batch applied in %zu part(s)\n", br.parts);
  mica_batch_free(b);

  printf("all rows:\n");
  failed |= scan(c, NULL);
  mica_scan_options so;
  memset(&so, 0, sizeof so);
  so.prefix = "c";
  so.prefix_len = 1;
  so.reverse = 1;
  printf("prefix \"c\", reverse:\n");
  failed |= scan(c, &so);

  mica_stats st;
  mica_get_stats(c, &st);
  printf("cache hits %" PRIu64 ", misses %" PRIu64 ", master lookups %" PRIu64 "\n",
         st.cache_hits, st.cache_misses, st.master_lookups);
  mica_close(c);
  return failed ? 1 : 0;
}
