/* test_http: the master's HTTP side against a core filled through its real
 * API (servers registering and heartbeating, tables with split keys, a
 * split, a merge, a server death, a move and opens left in transition).
 *
 * Every endpoint is fetched with libcurl. JSON is checked by python3's
 * strict parser (no NaN, no control characters, ASCII only) together with
 * assertions on its content against what the core says; the Prometheus
 * text by a small validator of the format. A table whose split keys are
 * hostile (markup, quotes, NUL, backslash, newline, invalid UTF-8) must
 * come back as escaped text and as the exact bytes in base64. Slow and
 * half-open clients must not stall other requests or the core. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master/http/mhttp.h"
#include "tests/master/http/hfix.h"
#include "tests/harness/testutil.h"

static hfix F;
static mhttp *H;
static int slot[4];
static char base[160];
static const char *tmp;

#define MiB (1024ull * 1024)

/* A server address with a quote, a backslash, a newline, a byte that is
 * not UTF-8 and markup, and its bytes in hex for the python checks. */
static const char kEvil[] = "evil\"\\\n\xff<b>:1";
static const char kEvilHex[] = "6576696c225c0aff3c623e3a31";

/* The hostile table's split keys, strictly increasing bytewise. */
static const struct {
  const char *bytes;
  size_t len;
  const char *text; /* as slice_escape shows it */
} hostile[] = {
    {"\"quoted\" 'single'", 17, "\"quoted\" 'single'"},
    {"</td><img src=x onerror=alert(2)>", 33,
     "</td><img src=x onerror=alert(2)>"},
    {"<script>alert(1)</script>", 25, "<script>alert(1)</script>"},
    {"back\\slash\nnewline", 18, "back\\x5cslash\\x0anewline"},
    {"caf\xc3\xa9", 5, "caf\\xc3\\xa9"},
    {"nul\0inside", 10, "nul\\x00inside"},
    {"\xff\xfe", 2, "\\xff\\xfe"},
};
#define N_HOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static void stats_of(const ms_tablet *t, ms_stats *out, void *ctx) {
  (void)ctx;
  out->bytes = (t->tablet_id % 7 + 1) * MiB;
  out->keys = out->bytes / 100;
  out->read_rate = (double)t->tablet_id * 1.5;
  out->write_rate = (double)t->tablet_id * 0.5;
}

/* ---- HTTP client ---- */

/* Whole-request limit of http(); the bound test lowers it. */
static long timeout_ms = 20000;

typedef struct resp {
  CURLcode cc;
  long code;
  buf body;
  char ctype[128];
  char allow[64];
  bool csp;
  double secs;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  buf_append(&((resp *)ud)->body, p, sz * n);
  return sz * n;
}

static void header_value(const char *line, size_t n, const char *name,
                         char *out, size_t cap) {
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) != 0) return;
  const char *v = line + k;
  size_t vn = n - k;
  while (vn && (*v == ' ')) v++, vn--;
  while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n')) vn--;
  if (vn >= cap) vn = cap - 1;
  memcpy(out, v, vn);
  out[vn] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  header_value(p, sz * n, "content-type:", r->ctype, sizeof(r->ctype));
  header_value(p, sz * n, "allow:", r->allow, sizeof(r->allow));
  if (sz * n > 24 && strncasecmp(p, "content-security-policy:", 24) == 0)
    r->csp = true;
  return sz * n;
}

static void http(const char *method, const char *path, const char *body,
                 resp *r) {
  memset(r, 0, sizeof(*r));
  CURL *c = curl_easy_init();
  char url[70000];
  snprintf(url, sizeof(url), "%s%s", base, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0 || body)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  r->cc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->secs);
  curl_easy_cleanup(c);
}

static void resp_free(resp *r) { buf_free(&r->body); }

/* GET `path` expecting 200 and `type`; the body stays in r. */
static void get_ok(const char *path, const char *type, resp *r) {
  http("GET", path, NULL, r);
  CU_ASSERT_EQUAL(r->cc, CURLE_OK);
  CU_ASSERT_EQUAL(r->code, 200);
  if (strcmp(r->ctype, type) != 0)
    fprintf(stderr, "\n%s: content type %s, want %s\n", path, r->ctype, type);
  CU_ASSERT_STRING_EQUAL(r->ctype, type);
}

/* ---- checks by python3 ---- */

static const char kPyPrelude[] =
    "import json, sys, base64, re\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "mode = sys.argv[2]\n"
    "assert mode == 'utf8' or all(b < 0x80 for b in raw), 'non-ASCII byte'\n"
    "def const(x): raise ValueError('non-standard constant ' + x)\n"
    "d = json.loads(raw.decode('ascii'), parse_constant=const) "
    "if mode == 'json' else raw.decode('utf-8')\n"
    "def esc(hexbytes):\n"
    "    return ''.join(chr(b) if 0x20 <= b < 0x7f and b != 0x5c\n"
    "                   else '\\\\x%02x' % b for b in bytes.fromhex(hexbytes))\n"
    "def label(hexbytes):\n"
    "    return esc(hexbytes).replace('\\\\', '\\\\\\\\').replace('\"', '\\\\\"')\n";

enum { PY_TEXT = 0, PY_JSON = 1, PY_UTF8 = 2 };

/* Runs `script` (after the prelude: `d` is the parsed JSON for PY_JSON,
 * else the text) over `body`; true when it exits 0. PY_JSON and PY_TEXT
 * also require the body to be ASCII. */
static bool py(const buf *body, int mode, const char *fmt, ...) {
  char bpath[512], spath[512];
  snprintf(bpath, sizeof(bpath), "%s/body", tmp);
  snprintf(spath, sizeof(spath), "%s/check.py", tmp);
  FILE *f = fopen(bpath, "wb");
  fwrite(body->data ? (const void *)body->data : "", 1, body->len, f);
  fclose(f);
  f = fopen(spath, "w");
  fputs(kPyPrelude, f);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fclose(f);
  char cmd[1200];
  static const char *modes[] = {"text", "json", "utf8"};
  snprintf(cmd, sizeof(cmd), "python3 %s %s %s", spath, bpath, modes[mode]);
  int rc = system(cmd);
  if (rc != 0) {
    fprintf(stderr, "\npython check failed on: %.*s\n",
            (int)(body->len > 2000 ? 2000 : body->len), body->data);
  }
  return rc == 0;
}

/* ---- the cluster ---- */

static uint64_t first_tablet(const char *table, size_t idx) {
  ms_tablet_list l = {NULL, 0};
  mica_err *err = hfix_tablets(&F, table, &l);
  err_free(err);
  uint64_t id = idx < l.n ? l.v[idx].tablet_id : 0;
  ms_tablet_list_free(&l);
  return id;
}

/* Suite setup cannot use CUnit assertions: it reports and fails instead. */
#define SETUP_OK(call)                                                    \
  do {                                                                    \
    mica_err *se_ = (call);                                               \
    if (se_) {                                                            \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,      \
              err_msg(se_));                                              \
      err_free(se_);                                                      \
      return 1;                                                           \
    }                                                                     \
  } while (0)

static int build(void) {
  tmp = tu_tmpdir();
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/root", tmp);
  SETUP_OK(hfix_open(&F, dir, 10 * 1000000ull, 2 * 1000000ull));
  bool off = false;
  SETUP_OK(ms_configure(F.m, &off, &off, NULL, NULL));
  SETUP_OK(hfix_register(&F, "127.0.0.1:7101", &slot[0]));
  SETUP_OK(hfix_register(&F, "127.0.0.1:7102", &slot[1]));
  SETUP_OK(hfix_register(&F, "127.0.0.1:7103", &slot[2]));

  slice users[3] = {slice_from_str("g"), slice_from_str("n"),
                    slice_from_str("t")};
  SETUP_OK(ms_create_table(F.m, "users", users, 3, hfix_now(&F), NULL));
  slice orders[1] = {slice_from_str("m")};
  SETUP_OK(ms_create_table(F.m, "orders", orders, 1, hfix_now(&F), NULL));
  slice hk[N_HOSTILE];
  for (size_t i = 0; i < N_HOSTILE; i++)
    hk[i] = slice_make(hostile[i].bytes, hostile[i].len);
  SETUP_OK(ms_create_table(F.m, "hostile", hk, N_HOSTILE, hfix_now(&F), NULL));
  SETUP_OK(hfix_settle(&F, 10, SIZE_MAX));
  for (int i = 0; i < 3; i++)
    SETUP_OK(hfix_heartbeat(&F, slot[i], stats_of, NULL));

  /* A split of users' first tablet, then a merge of orders' two. */
  SETUP_OK(hfix_split(&F, first_tablet("users", 0), slice_from_str("c")));
  SETUP_OK(ms_request_merge(F.m, first_tablet("orders", 0),
                         first_tablet("orders", 1), hfix_now(&F)));
  SETUP_OK(hfix_settle(&F, 10, SIZE_MAX));
  for (int i = 0; i < 3; i++)
    SETUP_OK(hfix_heartbeat(&F, slot[i], stats_of, NULL));

  /* Server 3 goes silent past lease + margin: dead, its tablets handed to
   * the others, only one of whose opens completes. */
  hfix_advance(&F, 7 * 1000000ull);
  SETUP_OK(hfix_heartbeat(&F, slot[0], stats_of, NULL));
  SETUP_OK(hfix_heartbeat(&F, slot[1], stats_of, NULL));
  hfix_advance(&F, 6 * 1000000ull);
  SETUP_OK(hfix_heartbeat(&F, slot[0], stats_of, NULL));
  SETUP_OK(hfix_heartbeat(&F, slot[1], stats_of, NULL));
  SETUP_OK(hfix_settle(&F, 1, 1));

  /* A move left half done: closing on its server. */
  ms_tablet_list l = {NULL, 0};
  SETUP_OK(hfix_tablets(&F, "users", &l));
  uint64_t mv = 0, to = 0;
  for (size_t i = 0; i < l.n && mv == 0; i++)
    if (l.v[i].state == MS_SERVING) {
      mv = l.v[i].tablet_id;
      to = l.v[i].server_id == F.ids[slot[0]] ? F.ids[slot[1]]
                                                : F.ids[slot[0]];
    }
  ms_tablet_list_free(&l);
  ms_move m;
  SETUP_OK(ms_request_move(F.m, mv, to, hfix_now(&F), &m));
  SETUP_OK(hfix_settle(&F, 1, 0));
  hfix_advance(&F, 500000);

  /* A server whose announced address is hostile, registered last. */
  SETUP_OK(hfix_register(&F, kEvil, &slot[3]));

  mhttp_opts o;
  mhttp_opts_init(&o);
  o.cluster_name = "test<cluster>";
  o.master_address = "127.0.0.1:7000";
  o.now_us = hfix_clock;
  o.now_ctx = &F;
  o.start_us = hfix_now(&F) - 42 * 1000000ull;
  o.max_connections = 16;
  o.timeout_s = 2;
  SETUP_OK(mhttp_start(&o, F.m, &H));
  snprintf(base, sizeof(base), "http://%s", mhttp_address(H));
  return 0;
}

static int teardown(void) {
  mhttp_stop(H);
  H = NULL;
  hfix_close(&F);
  return 0;
}

/* ---- tests ---- */

static void test_start_errors(void) {
  mhttp_opts o;
  mhttp_opts_init(&o);
  mhttp *h = NULL;
  const char *bad[] = {"nocolon", "127.0.0.1:99999", "127.0.0.1:x",
                       "127.0.0.1:", "127.0.0.1:-1", "[::1:0"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    o.listen = bad[i];
    TU_ERR(mhttp_start(&o, F.m, &h), MICA_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(h);
  }
  o.listen = mhttp_address(H); /* taken */
  TU_ERR(mhttp_start(&o, F.m, &h), MICA_UNAVAILABLE);
  o.listen = "[::1]:0";
  mica_err *err = mhttp_start(&o, F.m, &h);
  if (err == NULL) { /* hosts without IPv6 loopback skip this part */
    CU_ASSERT(strncmp(mhttp_address(h), "[::1]:", 6) == 0);
    CU_ASSERT(mhttp_port(h) > 0);
    mhttp_stop(h);
  }
  err_free(err);
  mhttp_stop(NULL);
  CU_ASSERT(mhttp_port(H) > 0);
  CU_ASSERT(strncmp(mhttp_address(H), "127.0.0.1:", 10) == 0);
}

static void test_healthz(void) {
  resp r;
  get_ok("/healthz", "text/plain; charset=utf-8", &r);
  CU_ASSERT_EQUAL(r.body.len, 3);
  CU_ASSERT(r.body.len == 3 && memcmp(r.body.data, "ok\n", 3) == 0);
  resp_free(&r);
}

static void test_cluster(void) {
  ms_tablet_list l = {NULL, 0};
  TU_OK(ms_list_tablets(F.m, NULL, false, &l));
  size_t current = l.n, unassigned = 0, moving = 0;
  for (size_t i = 0; i < l.n; i++) {
    if (l.v[i].state == MS_UNASSIGNED) unassigned++;
    if (l.v[i].state != MS_SERVING) moving++;
  }
  ms_tablet_list_free(&l);
  CU_ASSERT(moving >= 2);

  resp r;
  get_ok("/api/cluster", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "assert d['cluster'] == 'test<cluster>'\n"
      "assert d['master_address'] == '127.0.0.1:7000'\n"
      "assert d['http_address'] == '127.0.0.1:%d'\n"
      "assert d['version'] == '%s'\n"
      "assert d['uptime_s'] == 42, d['uptime_s']\n"
      "assert d['servers'] == {'live': 3, 'suspect': 0, 'dead': 1}\n"
      "assert d['tables'] == 3\n"
      "assert d['tablets']['current'] == %zu\n"
      "assert d['tablets']['in_transition'] >= %zu\n"
      "assert d['tablets']['split'] == 1 and d['tablets']['merged'] == 2\n"
      "assert d['balancer'] is False and d['merges'] is False\n"
      "kinds = [w['kind'] for w in d['warnings']]\n"
      "for k in ['server_down', 'tablets_in_transition', 'balancer_off',\n"
      "          'merges_off']:\n"
      "    assert k in kinds, (k, kinds)\n"
      "assert ('tablets_unassigned' in kinds) == (%zu > 0)\n"
      "down = [w for w in d['warnings'] if w['kind'] == 'server_down']\n"
      "assert len(down) == 1 and '127.0.0.1:7103' in down[0]['text']\n"
      "tr = d['transitions']\n"
      "assert len(tr) == d['tablets']['in_transition']\n"
      "assert any('to move to server' in t['transition'] and\n"
      "           t['state'] == 'closing' and t['table'] == 'users'\n"
      "           for t in tr), tr\n"
      "assert all(t['in_transition'] for t in tr)\n"
      "assert d['metalog']['generation'] >= 1\n"
      "assert d['metalog']['log_bytes'] > 0\n",
      mhttp_port(H), MICA_VERSION, current, moving, unassigned));
  resp_free(&r);
}

static void test_servers(void) {
  ms_server_info *v;
  size_t n;
  TU_OK(ms_list_servers(F.m, true, hfix_now(&F), &v, &n));
  CU_ASSERT_EQUAL_FATAL(n, 4);
  resp r;
  get_ok("/api/servers", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "s = d['servers']\n"
      "assert [x['id'] for x in s] == [%" PRIu64 ", %" PRIu64 ", %" PRIu64
      ", %" PRIu64 "]\n"
      "assert [x['state'] for x in s] == ['live', 'live', 'dead', 'live']\n"
      "assert s[0]['address'] == '127.0.0.1:7101'\n"
      "assert s[3]['address'] == esc('%s'), s[3]\n"
      "assert s[0]['tablets'] == %u and s[1]['tablets'] == %u\n"
      "assert s[0]['bytes'] == %" PRIu64 " and s[1]['bytes'] == %" PRIu64 "\n"
      "assert s[2]['tablets'] == 0\n"
      "assert s[0]['lease_age_ms'] == 500 and s[2]['lease_age_ms'] == 13500\n"
      "assert s[0]['last_heartbeat_ms'] > 1.6e12\n"
      "assert abs(s[0]['read_rate'] - %f) < 0.01\n"
      "assert s[3]['tablets'] == 0 and s[3]['lease_age_ms'] == 0\n",
      v[0].server_id, v[1].server_id, v[2].server_id, v[3].server_id,
      kEvilHex, v[0].tablet_count, v[1].tablet_count, v[0].bytes, v[1].bytes,
      v[0].read_rate));
  ms_server_infos_free(v, n);
  resp_free(&r);
}

static void test_tables(void) {
  ms_table_info *v;
  size_t n;
  TU_OK(ms_list_tables(F.m, &v, &n));
  CU_ASSERT_EQUAL_FATAL(n, 3);
  resp r;
  get_ok("/api/tables", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "t = d['tables']\n"
      "assert [x['name'] for x in t] == ['hostile', 'orders', 'users']\n"
      "assert [x['tablets'] for x in t] == [%" PRIu64 ", %" PRIu64 ", %"
      PRIu64 "]\n"
      "assert [x['bytes'] for x in t] == [%" PRIu64 ", %" PRIu64 ", %" PRIu64
      "]\n"
      "assert t[2]['splits'] == 1 and t[1]['merges'] == 1\n"
      "assert t[0]['splits'] == 0 and t[0]['merges'] == 0\n"
      "assert t[2]['in_transition'] >= 1\n"
      "assert t[0]['tablets'] == %zu\n",
      v[0].tablet_count, v[1].tablet_count, v[2].tablet_count, v[0].bytes,
      v[1].bytes, v[2].bytes, N_HOSTILE + 1));
  ms_table_infos_free(v, n);
  resp_free(&r);
}

/* Python list literal of the hostile keys' base64 and escaped texts. */
static void hostile_lists(buf *b64s, buf *texts) {
  buf_append(b64s, "[''", 3);
  buf_append(texts, "[''", 3);
  for (size_t i = 0; i < N_HOSTILE; i++) {
    static const char pre[] = ", base64.b64encode(bytes.fromhex('";
    buf_append(b64s, pre, sizeof(pre) - 1);
    for (size_t j = 0; j < hostile[i].len; j++) {
      char hx[3];
      snprintf(hx, sizeof(hx), "%02x", (unsigned char)hostile[i].bytes[j]);
      buf_append(b64s, hx, 2);
    }
    static const char post[] = "')).decode()";
    buf_append(b64s, post, sizeof(post) - 1);
    /* As a python bytes literal of the text, to keep quotes out of it. */
    static const char tpre[] = ", bytes.fromhex('";
    buf_append(texts, tpre, sizeof(tpre) - 1);
    for (const char *p = hostile[i].text; *p; p++) {
      char hx[3];
      snprintf(hx, sizeof(hx), "%02x", (unsigned char)*p);
      buf_append(texts, hx, 2);
    }
    static const char tpost[] = "').decode()";
    buf_append(texts, tpost, sizeof(tpost) - 1);
  }
  buf_append(b64s, ", '']", 5);
  buf_append(texts, ", '']", 5);
  buf_push(b64s, 0);
  buf_push(texts, 0);
}

static void test_tablets_hostile(void) {
  buf b64s = BUF_INIT, texts = BUF_INIT;
  hostile_lists(&b64s, &texts);
  resp r;
  get_ok("/api/tables/hostile/tablets", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "b = %s\n"
      "x = %s\n"
      "t = d['tablets']\n"
      "assert d['table']['name'] == 'hostile'\n"
      "assert len(t) == len(b) - 1\n"
      "for i, tab in enumerate(t):\n"
      "    assert tab['start']['b64'] == b[i], (i, tab['start'], b[i])\n"
      "    assert tab['end']['b64'] == b[i + 1]\n"
      "    assert tab['start']['text'] == x[i], (tab['start']['text'], x[i])\n"
      "    assert tab['end']['text'] == x[i + 1]\n"
      "    assert base64.b64decode(tab['start']['b64']) is not None\n"
      "assert base64.b64decode(t[6]['start']['b64']) == b'nul\\x00inside'\n"
      "assert base64.b64decode(t[7]['start']['b64']) == b'\\xff\\xfe'\n"
      "assert t[3]['start']['text'] == '<script>alert(1)</script>'\n"
      "assert all(tab['state'] in ('serving', 'opening', 'unassigned')\n"
      "           for tab in t)\n",
      (const char *)b64s.data, (const char *)texts.data));
  resp_free(&r);
  buf_free(&b64s);
  buf_free(&texts);
}

/* The hot list and the heat map over the fixture (no counters move, so
 * every rate is 0), and a hot key a server reports (ms_note_load): a
 * hostile key must come back escaped and exact, and (test_page_in_browser)
 * be shown as text. */
static const char kHotKey[] = "<script>alert(3)</script>\0\xff\"'";
#define HOT_KEY_LEN (sizeof(kHotKey) - 1)

static void test_hot_and_heatmap(void) {
  ms_tablet_list l = {NULL, 0};
  mica_err *e = hfix_tablets(&F, "hostile", &l);
  CU_ASSERT_FATAL(e == NULL);
  const ms_tablet *t = NULL;
  for (size_t i = 0; i < l.n && t == NULL; i++)
    if (l.v[i].state == MS_SERVING) t = &l.v[i];
  CU_ASSERT_FATAL(t != NULL);
  ms_hot_key k = {BUF_INIT, 4321.5, "read"};
  buf_append(&k.key, kHotKey, HOT_KEY_LEN);
  ms_load_report rep = {{t->tablet_id, t->range_epoch, t->assign_epoch},
                        {5000, 100000, true, &k, 1}};
  ms_note_load(F.m, t->server_id, &rep, 1, hfix_now(&F));
  buf_free(&k.key);
  uint64_t hot_id = t->tablet_id;
  ms_tablet_list_free(&l);

  resp r;
  get_ok("/api/hot", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "assert d['window_s'] == 10 and d['table'] is None\n"
      "assert d['tablets_total'] == len(d['tablets']) or len(d['tablets']) == 20\n"
      "assert all(t['ops_per_sec'] == 0 for t in d['tablets'])\n"
      "k = d['keys']\n"
      "assert len(k) == 1, k\n"
      "assert k[0]['table'] == 'hostile' and k[0]['tablet_id'] == %" PRIu64 "\n"
      "assert k[0]['kind'] == 'read' and k[0]['ops_per_sec'] == 4321.5\n"
      "assert base64.b64decode(k[0]['key']['b64']) == "
      "b'<script>alert(3)</script>\\x00\\xff\"\\''\n"
      "assert k[0]['key']['text'] == "
      "'<script>alert(3)</script>\\\\x00\\\\xff\"\\'', k[0]['key']\n",
      hot_id));
  resp_free(&r);
  get_ok("/api/hot?table=users&limit=1", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "assert d['table'] == 'users' and d['keys'] == []\n"
      "assert len(d['tablets']) <= 1\n"
      "assert all(t['table'] == 'users' for t in d['tablets'])\n"));
  resp_free(&r);

  buf b64s = BUF_INIT, texts = BUF_INIT;
  hostile_lists(&b64s, &texts);
  get_ok("/api/heatmap?table=hostile", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "b = %s\n"
      "x = %s\n"
      "assert d['table'] == 'hostile' and d['bucket_ms'] == 60000\n"
      "assert d['max_buckets'] == 60 and len(d['buckets']) == 60\n"
      "cur = [t for t in d['tablets'] if t['current']]\n"
      "assert [t['start']['b64'] for t in cur] == b[:-1], cur\n"
      "assert [t['end']['text'] for t in cur] == x[1:]\n"
      "cells = [c for bk in d['buckets'] for c in bk['cells']]\n"
      "assert cells and all(len(c) == 8 and c[0] < len(d['tablets']) "
      "for c in cells)\n",
      (const char *)b64s.data, (const char *)texts.data));
  resp_free(&r);
  buf_free(&b64s);
  buf_free(&texts);

  static const struct {
    const char *path, *want;
    long code;
  } bad[] = {
      {"/api/heatmap", "table is required: /api/heatmap?table=NAME", 400},
      {"/api/heatmap?table=nope", "no table nope", 404},
      {"/api/heatmap?table=%3Cb%3E",
       "table must be a table name ([A-Za-z0-9_.-], 1 to 128 bytes)", 400},
      {"/api/hot?table=nope", "no table nope", 404},
      {"/api/hot?limit=0", "limit must be a number from 1 to 1000", 400},
      {"/api/hot?limit=-1", "limit must be a number from 1 to 1000", 400},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    http("GET", bad[i].path, NULL, &r);
    CU_ASSERT_EQUAL(r.code, bad[i].code);
    CU_ASSERT(py(&r.body, PY_JSON, "assert d == {'error': '%s'}",
                 bad[i].want));
    resp_free(&r);
  }
}

static void test_tablets_urls(void) {
  resp r;
  get_ok("/api/tables/%75ser%73/tablets", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "assert d['table']['name'] == 'users'\n"
      "t = d['tablets']\n"
      "assert t[0]['start']['text'] == '' and t[-1]['end']['text'] == ''\n"
      "for a, b in zip(t, t[1:]):\n"
      "    assert a['end']['b64'] == b['start']['b64']\n"
      "assert [base64.b64decode(x['start']['b64']) for x in t] == "
      "[b'', b'c', b'g', b'n', b't']\n"));
  resp_free(&r);

  http("GET", "/api/tables/nosuch/tablets", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 404);
  CU_ASSERT_STRING_EQUAL(r.ctype, "application/json");
  CU_ASSERT(py(&r.body, PY_JSON, "assert d['error'] == 'no table nosuch'\n"));
  resp_free(&r);

  const char *bad[] = {"/api/tables/a%2Fb/tablets", "/api/tables/%00/tablets",
                       "/api/tables/%zz/tablets", "/api/tables/users%/tablets",
                       "/api/tables/us%2/tablets", "/api/tables/a%20b/tablets",
                       "/api/tables/%3Cscript%3E/tablets"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    http("GET", bad[i], NULL, &r);
    if (r.code != 400) fprintf(stderr, "\n%s -> %ld\n", bad[i], r.code);
    CU_ASSERT_EQUAL(r.code, 400);
    CU_ASSERT(py(&r.body, PY_JSON, "assert 'invalid table name' in d['error']"));
    resp_free(&r);
  }
  char longname[300] = "/api/tables/";
  memset(longname + 12, 'a', 129);
  strcpy(longname + 12 + 129, "/tablets");
  http("GET", longname, NULL, &r);
  CU_ASSERT_EQUAL(r.code, 400);
  resp_free(&r);
  http("GET", "/api/tables//tablets", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 404);
  resp_free(&r);
}

static void test_events(void) {
  resp r;
  get_ok("/api/events", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "e = d['events']\n"
      "times = [x['time_ms'] for x in e]\n"
      "assert times == sorted(times, reverse=True)\n"
      "kinds = set(x['kind'] for x in e)\n"
      "for k in ['create', 'register', 'assign', 'split', 'merge',\n"
      "          'server_dead', 'move']:\n"
      "    assert k in kinds, (k, kinds)\n"
      "dead = [x for x in e if x['kind'] == 'server_dead']\n"
      "assert dead[0]['server_id'] == %" PRIu64 "\n"
      "ev = [x for x in e if x['kind'] == 'register' and x['server_id'] == "
      "%" PRIu64 "]\n"
      "assert esc('%s') in ev[0]['text'], ev\n",
      F.ids[slot[2]], F.ids[slot[3]], kEvilHex));
  resp_free(&r);
  get_ok("/api/events?limit=2", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON, "assert len(d['events']) == 2"));
  resp_free(&r);
  const char *bad[] = {"/api/events?limit=abc", "/api/events?limit=",
                       "/api/events?limit=100001", "/api/events?limit=-1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    http("GET", bad[i], NULL, &r);
    CU_ASSERT_EQUAL(r.code, 400);
    resp_free(&r);
  }
}

/* A validator of the Prometheus text format (0.0.4) as Prometheus parses
 * it: HELP and TYPE once per family, before its samples; samples of one
 * family together; names and label names legal; label values with only
 * the three escapes; values that parse as floats. */
static const char kPromCheck[] =
    "name_re = r'[a-zA-Z_:][a-zA-Z0-9_:]*'\n"
    "lab_re = r'[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\"'\n"
    "sample = re.compile(r'^(' + name_re + r')(?:\\{(' + lab_re + r'(?:,' + "
    "lab_re + r')*)?\\})? (\\S+)$')\n"
    "help, typ, seen, done, samples = {}, {}, set(), set(), {}\n"
    "cur = None\n"
    "assert d.endswith('\\n')\n"
    "for line in d.split('\\n')[:-1]:\n"
    "    if line.startswith('# HELP '):\n"
    "        n = line.split(' ')[2]\n"
    "        assert re.fullmatch(name_re, n) and n not in help, line\n"
    "        help[n] = line\n"
    "        continue\n"
    "    if line.startswith('# TYPE '):\n"
    "        _, _, n, t = line.split(' ')\n"
    "        assert n in help and n not in typ and n not in seen, line\n"
    "        assert t in ('gauge', 'counter'), line\n"
    "        assert (t == 'counter') == n.endswith('_total'), line\n"
    "        typ[n] = t\n"
    "        if cur: done.add(cur)\n"
    "        cur = n\n"
    "        continue\n"
    "    m = sample.match(line)\n"
    "    assert m, 'bad sample line: ' + repr(line)\n"
    "    n = m.group(1)\n"
    "    assert n == cur and n not in done, line\n"
    "    seen.add(n)\n"
    "    v = m.group(3)\n"
    "    assert v in ('NaN', '+Inf', '-Inf') or float(v) is not None\n"
    "    samples[n + ('{' + m.group(2) + '}' if m.group(2) else '')] = "
    "float(v)\n"
    "assert set(typ) == set(help)\n";

static void test_metrics(void) {
  resp r;
  get_ok("/metrics", "text/plain; version=0.0.4; charset=utf-8", &r);
  CU_ASSERT(py(&r.body, PY_TEXT,
      "%s"
      "s = samples\n"
      "assert s['mica_master_servers{state=\"live\"}'] == 3\n"
      "assert s['mica_master_servers{state=\"dead\"}'] == 1\n"
      "assert s['mica_master_tables'] == 3\n"
      "assert s['mica_master_uptime_seconds'] == 42\n"
      "assert s['mica_master_balancer_enabled'] == 0\n"
      "assert s['mica_master_tablets{state=\"split\"}'] == 1\n"
      "assert s['mica_master_tablets_in_transition'] >= 2\n"
      "assert s['mica_master_metalog_bytes'] > 0\n"
      "assert s['mica_table_splits_total{table=\"users\"}'] == 1\n"
      "assert s['mica_table_merges_total{table=\"orders\"}'] == 1\n"
      "assert s['mica_table_tablets{table=\"hostile\"}'] == %zu\n"
      "assert s['mica_server_up{server_id=\"%" PRIu64 "\","
      "address=\"127.0.0.1:7103\"}'] == 0\n"
      "assert s['mica_server_up{server_id=\"%" PRIu64 "\","
      "address=\"127.0.0.1:7101\"}'] == 1\n"
      "assert s['mica_server_lease_age_seconds{server_id=\"%" PRIu64 "\","
      "address=\"127.0.0.1:7103\"}'] == 13.5\n"
      "evil = [k for k in s if k.startswith('mica_server_up{server_id=\"%"
      PRIu64 "\"')]\n"
      "assert evil == ['mica_server_up{server_id=\"%" PRIu64 "\","
      "address=\"' + label('%s') + '\"}'], evil\n"
      "assert 'mica_master_info{version=\"%s\",cluster=\"test<cluster>\","
      "address=\"127.0.0.1:7000\"}' in s\n"
      "assert s['mica_master_http_responses_total{code=\"2xx\"}'] >= 1\n"
      "assert s['mica_master_heat_tablets'] >= %zu\n"
      "assert s['mica_master_heat_dropped_total'] == 0\n",
      kPromCheck, N_HOSTILE + 1, F.ids[slot[2]], F.ids[slot[0]],
      F.ids[slot[2]], F.ids[slot[3]], F.ids[slot[3]], kEvilHex, MICA_VERSION,
      N_HOSTILE + 1));
  resp_free(&r);
}

/* The balancer's mode, suggestions and per-server load, drain marks. */
static void test_balance_api(void) {
  ms_server_info *v;
  size_t n;
  TU_OK(ms_list_servers(F.m, false, hfix_now(&F), &v, &n));
  CU_ASSERT_FATAL(n >= 2);
  uint64_t id = v[0].server_id;
  ms_server_infos_free(v, n);
  int mode = MS_BAL_SUGGEST;
  TU_OK(ms_set_balancer_mode(F.m, &mode, NULL));
  TU_OK(ms_drain(F.m, id, true, hfix_now(&F), NULL));
  resp r;
  get_ok("/api/balance", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "assert d['mode'] == 'suggest'\n"
      "assert isinstance(d['moves'], list)\n"
      "s = {x['id']: x for x in d['servers']}\n"
      "assert s[%" PRIu64 "]['draining'] is True\n"
      "assert all(set(x) == {'id', 'load', 'tablets', 'draining', 'hot'}\n"
      "           for x in d['servers'])\n", id));
  resp_free(&r);
  get_ok("/api/servers", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "s = [x for x in d['servers'] if x['id'] == %" PRIu64 "][0]\n"
      "assert s['draining'] is True and s['hot'] is False\n"
      "assert abs(s['load'] - s['read_rate'] - s['write_rate']) < 0.01\n"
      "assert all(x['draining'] is False for x in d['servers']\n"
      "           if x['id'] != %" PRIu64 ")\n", id, id));
  resp_free(&r);
  get_ok("/api/cluster", "application/json", &r);
  CU_ASSERT(py(&r.body, PY_JSON,
      "assert d['balancer_mode'] == 'suggest' and d['balancer'] is False\n"
      "kinds = [w['kind'] for w in d['warnings']]\n"
      "assert 'server_draining' in kinds and 'balancer_off' not in kinds\n"));
  resp_free(&r);
  get_ok("/metrics", "text/plain; version=0.0.4; charset=utf-8", &r);
  CU_ASSERT(py(&r.body, PY_TEXT,
      "%s"
      "s = samples\n"
      "assert s['mica_master_balancer_mode{mode=\"suggest\"}'] == 1\n"
      "assert s['mica_master_balancer_mode{mode=\"auto\"}'] == 0\n"
      "dr = [v for k, v in s.items()\n"
      "      if k.startswith('mica_server_draining{server_id=\"%" PRIu64
      "\"')]\n"
      "assert dr == [1], dr\n"
      "assert any(k.startswith('mica_server_load_ops_per_second{')\n"
      "           for k in s)\n", kPromCheck, id));
  resp_free(&r);
  TU_OK(ms_drain(F.m, id, false, hfix_now(&F), NULL));
  mode = MS_BAL_OFF;
  TU_OK(ms_set_balancer_mode(F.m, &mode, NULL));
}

static void test_page(void) {
  resp r, i2;
  get_ok("/", "text/html; charset=utf-8", &r);
  CU_ASSERT(r.csp);
  CU_ASSERT(py(&r.body, PY_TEXT,
      "assert '<script src=\"/static/status.js\"></script>' in d\n"
      "assert '/static/status.css' in d\n"
      "assert 'alert' not in d and 'hostile' not in d\n"));
  get_ok("/index.html", "text/html; charset=utf-8", &i2);
  CU_ASSERT(r.body.len == i2.body.len &&
            memcmp(r.body.data, i2.body.data, r.body.len) == 0);
  resp_free(&i2);
  resp_free(&r);
  get_ok("/static/status.js", "text/javascript; charset=utf-8", &r);
  CU_ASSERT(py(&r.body, PY_TEXT,
      "assert 'innerHTML' not in d and 'outerHTML' not in d\n"
      "assert 'insertAdjacentHTML' not in d and 'document.write' not in d\n"
      "assert 'textContent' in d and '/api/cluster' in d\n"));
  resp_free(&r);
  get_ok("/static/status.css", "text/css; charset=utf-8", &r);
  CU_ASSERT(r.body.len > 100);
  resp_free(&r);
  http("HEAD", "/", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 200);
  CU_ASSERT_EQUAL(r.body.len, 0);
  resp_free(&r);
  http("HEAD", "/api/cluster", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 200);
  resp_free(&r);
}

/* The page as a browser builds it: hostile keys and names end up as text
 * and attribute values, never as elements. Needs Debian's chromium;
 * skipped without it. */
static void test_page_in_browser(void) {
  if (system("command -v chromium >/dev/null 2>&1") != 0) {
    printf("\n  no chromium: skipped\n");
    return;
  }
  char cmd[1200];
  snprintf(cmd, sizeof(cmd),
           "timeout 120 chromium --headless --no-sandbox --disable-gpu "
           "--virtual-time-budget=4000 --dump-dom %s/ >%s/dom.html "
           "2>/dev/null", base, tmp);
  CU_ASSERT_FATAL(system(cmd) == 0);
  char path[600];
  snprintf(path, sizeof(path), "%s/dom.html", tmp);
  FILE *f = fopen(path, "rb");
  CU_ASSERT_FATAL(f != NULL);
  buf dom = BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    buf_append(&dom, chunk, n);
  fclose(f);
  CU_ASSERT(py(&dom, PY_UTF8,
      "from html.parser import HTMLParser\n"
      "class P(HTMLParser):\n"
      "    def __init__(self):\n"
      "        super().__init__()\n"
      "        self.tags, self.text, self.titles = [], [], []\n"
      "    def handle_starttag(self, tag, attrs):\n"
      "        self.tags.append(tag)\n"
      "        self.titles += [v for k, v in attrs if k == 'title' and v]\n"
      "    def handle_data(self, data):\n"
      "        self.text.append(data)\n"
      "p = P()\n"
      "p.feed(d)\n"
      "assert p.tags.count('script') == 1, p.tags.count('script')\n"
      "assert 'img' not in p.tags and 'b' not in p.tags\n"
      "text = ''.join(p.text)\n"
      "assert 'test<cluster>' in text\n"
      "assert '</td><img src=x onerror=alert(2)>' in text\n"
      "assert esc('%s') in text\n"
      "assert 'server 3 (127.0.0.1:7103) is dead' in text\n"
      "segs = [t for t in p.titles if t.startswith('tablet ')]\n"
      "assert len(segs) >= 12, len(segs)\n"
      "assert any('start: <script>alert(1)</script>' in t for t in segs)\n"
      "assert any('end:   \\\\xff\\\\xfe' in t for t in segs)\n"
      "assert any('start: nul\\\\x00inside' in t for t in segs)\n"
      "assert '<script>alert(3)</script>\\\\x00\\\\xff\"\\'' in text\n"
      "assert len([t for t in p.titles if t.startswith('tablet ') and "
      "'ops/s ' in t]) >= 4\n",
      kEvilHex));
  buf_free(&dom);
}

static int raw_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)mhttp_port(H));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends `req` raw and returns the status code of the answer (0 when the
 * connection closed without one). */
static int raw_status(const char *req, size_t len) {
  int fd = raw_connect();
  CU_ASSERT_FATAL(fd >= 0);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  size_t off = 0;
  while (off < len) {
    ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += (size_t)w;
  }
  char got[64] = {0};
  ssize_t n = recv(fd, got, sizeof(got) - 1, 0);
  close(fd);
  int code = 0;
  if (n > 12 && sscanf(got, "HTTP/1.%*d %d", &code) != 1) code = 0;
  return code;
}

static void test_errors(void) {
  resp r;
  http("GET", "/nope", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 404);
  CU_ASSERT_STRING_EQUAL(r.ctype, "text/plain; charset=utf-8");
  resp_free(&r);
  http("GET", "/api/nope", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 404);
  CU_ASSERT(py(&r.body, PY_JSON, "assert d == {'error': 'not found'}"));
  resp_free(&r);
  http("GET", "/healthz/", NULL, &r);
  CU_ASSERT_EQUAL(r.code, 404);
  resp_free(&r);

  const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    http(methods[i], "/api/cluster", NULL, &r);
    CU_ASSERT_EQUAL(r.code, 405);
    CU_ASSERT_STRING_EQUAL(r.allow, "GET, HEAD");
    resp_free(&r);
  }
  http("POST", "/metrics", "x=1", &r);
  CU_ASSERT_EQUAL(r.code, 405);
  CU_ASSERT_STRING_EQUAL(r.allow, "GET, HEAD");
  resp_free(&r);
  http("GET", "/api/cluster", "a body", &r);
  CU_ASSERT_EQUAL(r.code, 413);
  resp_free(&r);

  static char path[70000];
  memset(path, 'a', sizeof(path));
  path[0] = '/';
  path[3000] = '\0';
  http("GET", path, NULL, &r);
  CU_ASSERT_EQUAL(r.code, 414);
  resp_free(&r);
  /* Past the connection's memory: the library refuses it itself. */
  path[60000] = '\0';
  memset(path + 3000, 'a', 57000);
  http("GET", path, NULL, &r);
  CU_ASSERT(r.code == 414 || r.code == 431);
  resp_free(&r);

  char big[40000];
  int n = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 400; i++)
    n += snprintf(big + n, sizeof(big) - (size_t)n, "X-Pad-%d: %080d\r\n",
                  i, i);
  n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
  int code = raw_status(big, (size_t)n);
  CU_ASSERT(code == 431 || code == 413 || code == 400);
  static const char junk[] = "\x01\x02garbage not http\r\n\r\n";
  code = raw_status(junk, sizeof(junk) - 1);
  CU_ASSERT(code == 400 || code == 0);
  static const char chunked[] =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n";
  CU_ASSERT_EQUAL(raw_status(chunked, sizeof(chunked) - 1), 413);

  /* The server still answers. */
  get_ok("/healthz", "text/plain; charset=utf-8", &r);
  resp_free(&r);
}

static double secs_now(void) {
  return (double)env_now_micros(env_posix()) / 1e6;
}

typedef struct hammer {
  int id;
  int bad;
  int done;
} hammer;

static void *hammer_run(void *p) {
  hammer *h = p;
  const char *paths[] = {"/api/cluster", "/api/tables", "/metrics",
                         "/api/tables/churn/tablets", "/api/servers",
                         "/api/events", "/"};
  for (int i = 0; i < 60; i++) {
    resp r;
    http("GET", paths[(i + h->id) % 7], NULL, &r);
    if (r.cc != CURLE_OK || (r.code != 200 && r.code != 404)) h->bad++;
    h->done++;
    resp_free(&r);
  }
  return NULL;
}

/* Requests from two threads while the core changes under them. */
static void test_concurrent(void) {
  hammer h[2] = {{0, 0, 0}, {1, 0, 0}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    CU_ASSERT_FATAL(pthread_create(&t[i], NULL, hammer_run, &h[i]) == 0);
  slice k[2] = {slice_from_str("k"), slice_from_str("q")};
  for (int i = 0; i < 20; i++) {
    TU_OK(ms_create_table(F.m, "churn", k, 2, hfix_now(&F), NULL));
    TU_OK(hfix_heartbeat(&F, slot[0], stats_of, NULL));
    TU_OK(ms_drop_table(F.m, "churn", hfix_now(&F)));
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  CU_ASSERT_EQUAL(h[0].bad + h[1].bad, 0);
  CU_ASSERT_EQUAL(h[0].done + h[1].done, 120);
}

/* Half-sent requests and a client that never reads hold connections, not
 * threads: other requests and the core go on. */
static void test_slow_clients(void) {
  int fds[10];
  for (int i = 0; i < 10; i++) {
    fds[i] = raw_connect();
    CU_ASSERT_FATAL(fds[i] >= 0);
    static const char half[] = "GET /api/cluster HTTP/1.1\r\nHost: x\r\n";
    CU_ASSERT(send(fds[i], half, sizeof(half) - 1, MSG_NOSIGNAL) > 0);
  }
  /* One that asks for a large answer and never reads it. */
  int rd = raw_connect();
  int small = 1024;
  setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  static const char full[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  CU_ASSERT(send(rd, full, sizeof(full) - 1, MSG_NOSIGNAL) > 0);
  usleep(200 * 1000);

  double t0 = secs_now();
  resp r;
  get_ok("/api/cluster", "application/json", &r);
  double took = secs_now() - t0;
  CU_ASSERT(took < 2.0);
  resp_free(&r);
  t0 = secs_now();
  slice k[1] = {slice_from_str("m")};
  TU_OK(ms_create_table(F.m, "during_slow", k, 1, hfix_now(&F), NULL));
  TU_OK(hfix_heartbeat(&F, slot[0], stats_of, NULL));
  double mut = secs_now() - t0;
  CU_ASSERT(mut < 2.0);
  get_ok("/api/tables/during_slow/tablets", "application/json", &r);
  resp_free(&r);
  printf("\n  with 11 stalled clients: GET %.1f ms, create+heartbeat %.1f ms\n",
         took * 1000, mut * 1000);

  /* The idle timeout (2 s here) closes the half-sent requests. */
  struct timeval tv = {8, 0};
  setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  t0 = secs_now();
  char c;
  ssize_t n = recv(fds[0], &c, 1, 0);
  CU_ASSERT(n <= 0);
  CU_ASSERT(secs_now() - t0 < 7.0);
  for (int i = 0; i < 10; i++) close(fds[i]);
  close(rd);
}

/* Connections beyond the bound (16 here) wait unaccepted in the listen
 * backlog until a slot frees (a holder leaves or idles past 2 s). */
static void test_connection_bound(void) {
  /* More than the bound: libmicrohttpd splits it among its threads and
   * any of them may accept the probe. */
  int fds[40];
  for (int i = 0; i < 40; i++) fds[i] = raw_connect();
  usleep(300 * 1000);
  resp r;
  timeout_ms = 1000;
  http("GET", "/healthz", NULL, &r);
  timeout_ms = 20000;
  CU_ASSERT_EQUAL(r.cc, CURLE_OPERATION_TIMEDOUT);
  resp_free(&r);
  for (int i = 0; i < 40; i++)
    if (fds[i] >= 0) close(fds[i]);
  double t0 = secs_now();
  bool ok = false;
  while (!ok && secs_now() - t0 < 5.0) {
    http("GET", "/healthz", NULL, &r);
    ok = r.cc == CURLE_OK && r.code == 200;
    resp_free(&r);
    if (!ok) usleep(50 * 1000);
  }
  CU_ASSERT(ok);
}

/* The real mica-master process, when it serves HTTP (--http-listen). */
static void test_real_master(void) {
  const char *bin = getenv("MICA_BIN_DIR");
  char path[1024], help[1200];
  snprintf(path, sizeof(path), "%s/mica-master", bin ? bin : ".");
  snprintf(help, sizeof(help), "%s --help 2>&1 | grep -q -- --http-listen",
           path);
  if (access(path, X_OK) != 0 || system(help) != 0) {
    printf("\n  mica-master without --http-listen: skipped\n");
    return;
  }
  char dir[512], afile[600], cmd[3000];
  snprintf(dir, sizeof(dir), "%s/real", tmp);
  snprintf(afile, sizeof(afile), "%s/http.addr", tmp);
  snprintf(cmd, sizeof(cmd),
           "mkdir -p %s && %s --data-dir %s --http-listen 127.0.0.1:0 "
           "--http-address-file %s >%s/out 2>%s/err & echo $! >%s/pid",
           dir, path, dir, afile, tmp, tmp, tmp);
  CU_ASSERT_FATAL(system(cmd) == 0);
  char addr[128] = "";
  for (int i = 0; i < 100 && addr[0] == '\0'; i++) {
    FILE *f = fopen(afile, "r");
    if (f) {
      if (fgets(addr, sizeof(addr), f) == NULL) addr[0] = '\0';
      fclose(f);
    }
    addr[strcspn(addr, "\r\n")] = '\0';
    if (addr[0] == '\0') usleep(100 * 1000);
  }
  CU_ASSERT(addr[0] != '\0');
  char saved[160];
  snprintf(saved, sizeof(saved), "%s", base);
  snprintf(base, sizeof(base), "http://%s", addr);
  if (addr[0]) {
    resp r;
    get_ok("/healthz", "text/plain; charset=utf-8", &r);
    resp_free(&r);
    get_ok("/api/cluster", "application/json", &r);
    CU_ASSERT(py(&r.body, PY_JSON,
        "assert d['servers'] == {'live': 0, 'suspect': 0, 'dead': 0}\n"
        "assert d['tables'] == 0 and d['version'] == '%s'\n"
        "assert d['master_address'] != ''\n", MICA_VERSION));
    resp_free(&r);
  }
  snprintf(base, sizeof(base), "%s", saved);
  snprintf(cmd, sizeof(cmd), "kill -TERM $(cat %s/pid)", tmp);
  CU_ASSERT(system(cmd) == 0);
  snprintf(cmd, sizeof(cmd),
           "for i in $(seq 50); do kill -0 $(cat %s/pid) 2>/dev/null || "
           "exit 0; sleep 0.1; done; kill -KILL $(cat %s/pid); exit 1",
           tmp, tmp);
  CU_ASSERT(system(cmd) == 0);
}

/* A master that serves plaintext off loopback (--insecure) says so in
 * /api/cluster and as a warning; the page has the banner's element. The
 * default server above says nothing (insecure null). */
static void test_insecure_banner(void) {
  resp r;
  get_ok("/api/cluster", "application/json", &r);
  buf_push(&r.body, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)r.body.data, "\"insecure\":null"));
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)r.body.data, "\"https\":false"));
  CU_ASSERT_PTR_NULL(strstr((char *)r.body.data, "insecure_plaintext"));
  resp_free(&r);
  get_ok("/", "text/html; charset=utf-8", &r);
  buf_push(&r.body, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr((char *)r.body.data, "id=\"insecure-banner\""));
  resp_free(&r);

  mhttp_opts o;
  mhttp_opts_init(&o);
  o.insecure = "--listen 0.0.0.0:7000";
  o.rpc_tls = false;
  mhttp *h = NULL;
  TU_OK(mhttp_start(&o, F.m, &h));
  if (h == NULL) return;
  char saved[sizeof(base)];
  snprintf(saved, sizeof(saved), "%s", base);
  snprintf(base, sizeof(base), "http://%s", mhttp_address(h));
  get_ok("/api/cluster", "application/json", &r);
  buf_push(&r.body, 0);
  const char *b = (const char *)r.body.data;
  CU_ASSERT_PTR_NOT_NULL(strstr(b, "\"insecure\":\"--listen 0.0.0.0:7000\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(b, "{\"kind\":\"insecure_plaintext\","
                                   "\"text\":\"started with --insecure"));
  resp_free(&r);
  snprintf(base, sizeof(base), "%s", saved);
  mhttp_stop(h);
}

static void add_suites(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CU_pSuite s = CU_add_suite("http", build, teardown);
  CU_add_test(s, "start errors", test_start_errors);
  CU_add_test(s, "healthz", test_healthz);
  CU_add_test(s, "cluster", test_cluster);
  CU_add_test(s, "servers", test_servers);
  CU_add_test(s, "tables", test_tables);
  CU_add_test(s, "hostile keys", test_tablets_hostile);
  CU_add_test(s, "table names in URLs", test_tablets_urls);
  CU_add_test(s, "hot list, hot keys and heat map", test_hot_and_heatmap);
  CU_add_test(s, "events", test_events);
  CU_add_test(s, "metrics", test_metrics);
  CU_add_test(s, "balance", test_balance_api);
  CU_add_test(s, "page", test_page);
  CU_add_test(s, "page in a browser", test_page_in_browser);
  CU_add_test(s, "errors", test_errors);
  CU_add_test(s, "concurrent", test_concurrent);
  CU_add_test(s, "slow clients", test_slow_clients);
  CU_add_test(s, "connection bound", test_connection_bound);
  CU_add_test(s, "real mica-master", test_real_master);
  CU_add_test(s, "insecure banner", test_insecure_banner);
}

int main(int argc, char **argv) {
  int rc = tu_main(argc, argv, add_suites);
  curl_global_cleanup();
  return rc;
}
