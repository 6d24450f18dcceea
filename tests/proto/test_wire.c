/* test_wire: the plain message structs (proto/wire.h), their converters and
 * the tablet route type (proto/route.h), without a server.
 *
 * Every message goes through the same table-driven encoder and decoder, so
 * these cases cover each kind of field once: nested and repeated
 * sub-messages, repeated bytes and integers, one-field oneofs, strings
 * (NULL sent as ""), empty messages, and bytes that do not decode. */
#include <string.h>

#include "proto/limits.h"
#include "proto/route.h"
#include "proto/rpc.h"
#include "tests/harness/testutil.h"

#define S(x) slice_make((x), sizeof(x) - 1)

/* Encodes `msg` as a message of `d` and decodes the bytes back. */
static void *round_trip(const rpc_msgdef *d, const void *msg) {
  buf b = BUF_INIT;
  rpc_msg_encode(d, msg, &b);
  void *out = NULL;
  mica_err *e = rpc_msg_decode(d, buf_slice(&b), &out);
  CU_ASSERT_PTR_NULL(e);
  err_free(e);
  buf_free(&b);
  return out;
}

static void test_tables_match_proto(void) { TU_OK(rpc_wire_check()); }

static void test_nested_and_repeated(void) {
  rpc_tablet_descriptor d[2] = {{0}, {0}};
  d[0].tablet_id = 10;
  d[0].table_id = 3;
  d[0].table_name = "t";
  d[0].end_key = S("m\0x");
  d[0].range_epoch = 7;
  d[1].tablet_id = 11;
  d[1].start_key = S("m\0x");
  d[1].range_epoch = 7;
  rpc_location loc = {.server_id = 4, .address = "127.0.0.1:9", .assign_epoch = 2};
  rpc_tablet_route r[2] = {{.desc = &d[0], .location = &loc}, {.desc = &d[1]}};
  rpc_location moved = {.server_id = 5, .address = "h:1", .assign_epoch = 9};
  rpc_routing_error re = {.requested_tablet_id = 8, .current = r, .n_current = 2,
                          .moved_to = &moved};
  rpc_status st = {.code = MICA_STALE_EPOCH, .message = "split", .routing = &re};
  rpc_status *back = round_trip(&rpc_def_status, &st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(back);
  CU_ASSERT_EQUAL(back->code, MICA_STALE_EPOCH);
  CU_ASSERT_STRING_EQUAL(back->message, "split");
  CU_ASSERT_PTR_NOT_NULL_FATAL(back->routing);
  const rpc_routing_error *b = back->routing;
  CU_ASSERT_EQUAL(b->requested_tablet_id, 8);
  CU_ASSERT_EQUAL_FATAL(b->n_current, 2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b->current[0].desc);
  CU_ASSERT_EQUAL(b->current[0].desc->tablet_id, 10);
  CU_ASSERT_EQUAL(b->current[0].desc->table_id, 3);
  CU_ASSERT_STRING_EQUAL(b->current[0].desc->table_name, "t");
  CU_ASSERT(slice_eq(b->current[0].desc->end_key, S("m\0x")));
  CU_ASSERT_EQUAL(b->current[0].desc->start_key.len, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b->current[0].location);
  CU_ASSERT_STRING_EQUAL(b->current[0].location->address, "127.0.0.1:9");
  CU_ASSERT_EQUAL(b->current[0].location->assign_epoch, 2);
  /* An absent sub-message stays absent; an absent string comes back "". */
  CU_ASSERT_PTR_NULL(b->current[1].location);
  CU_ASSERT_PTR_NOT_NULL(b->current[1].desc->table_name);
  CU_ASSERT_STRING_EQUAL(b->current[1].desc->table_name, "");
  CU_ASSERT(slice_eq(b->current[1].desc->start_key, S("m\0x")));
  CU_ASSERT_PTR_NOT_NULL_FATAL(b->moved_to);
  CU_ASSERT_EQUAL(b->moved_to->server_id, 5);
  CU_ASSERT_EQUAL(b->moved_to->assign_epoch, 9);
  rpc_msg_free(back);
}

static void test_repeated_scalars_and_bytes(void) {
  uint64_t ids[3] = {1, 1ull << 40, 3};
  rpc_tablet_info_request q = {.tablet_ids = ids, .n_tablet_ids = 3};
  rpc_tablet_info_request *bq = round_trip(&rpc_def_tablet_info_request, &q);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bq);
  CU_ASSERT_EQUAL_FATAL(bq->n_tablet_ids, 3);
  CU_ASSERT_EQUAL(bq->tablet_ids[1], 1ull << 40);
  rpc_msg_free(bq);

  slice keys[2] = {S("a\0b"), S("\xff")};
  rpc_create_table_request c = {.name = NULL, .split_keys = keys,
                                .n_split_keys = 2};
  rpc_create_table_request *bc = round_trip(&rpc_def_create_table_request, &c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bc);
  CU_ASSERT_STRING_EQUAL(bc->name, "");
  CU_ASSERT_EQUAL_FATAL(bc->n_split_keys, 2);
  CU_ASSERT(slice_eq(bc->split_keys[0], S("a\0b")));
  CU_ASSERT(slice_eq(bc->split_keys[1], S("\xff")));
  rpc_msg_free(bc);

  rpc_mutation mu[2] = {{.kind = RPC_MUTATION_PUT, .key = S("k"), .value = S("v")},
                        {.kind = RPC_MUTATION_DELETE, .key = S("d")}};
  rpc_batch_request br = {.mutations = mu, .n_mutations = 2};
  rpc_batch_request *bb = round_trip(&rpc_def_batch_request, &br);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bb);
  CU_ASSERT_PTR_NULL(bb->tablet);
  CU_ASSERT_EQUAL_FATAL(bb->n_mutations, 2);
  CU_ASSERT_EQUAL(bb->mutations[0].kind, RPC_MUTATION_PUT);
  CU_ASSERT(slice_eq(bb->mutations[0].value, S("v")));
  CU_ASSERT_EQUAL(bb->mutations[1].kind, RPC_MUTATION_DELETE);
  CU_ASSERT_EQUAL(bb->mutations[1].value.len, 0);
  rpc_msg_free(bb);
}

static void test_oneof_presence(void) {
  /* A switch set to false is not the same as a switch left unset. */
  rpc_configure_request q = {.has_merge_enabled = true, .merge_enabled = false};
  rpc_configure_request *b = round_trip(&rpc_def_configure_request, &q);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT(b->has_merge_enabled);
  CU_ASSERT_FALSE(b->merge_enabled);
  CU_ASSERT_FALSE(b->has_balancer_enabled);
  rpc_msg_free(b);
  q.has_balancer_enabled = true;
  q.balancer_enabled = true;
  q.has_merge_enabled = false;
  b = round_trip(&rpc_def_configure_request, &q);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT(b->has_balancer_enabled && b->balancer_enabled);
  CU_ASSERT_FALSE(b->has_merge_enabled);
  rpc_msg_free(b);
}

static void test_empty_and_bad_bytes(void) {
  rpc_list_tables_request q = {0};
  buf b = BUF_INIT;
  rpc_msg_encode(&rpc_def_list_tables_request, &q, &b);
  CU_ASSERT_EQUAL(b.len, 0);
  /* Appends: what was there stays. */
  buf_append(&b, "x", 1);
  rpc_get_request g = {.key = S("k")};
  rpc_msg_encode(&rpc_def_get_request, &g, &b);
  CU_ASSERT(b.len > 1 && b.data[0] == 'x');
  buf_free(&b);

  /* A length prefix running past the end. */
  const uint8_t bad[] = {0x12, 0x09, 'k'};
  void *out = (void *)1;
  mica_err *e = rpc_msg_decode(&rpc_def_get_request, slice_make(bad, sizeof bad),
                               &out);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT(e != NULL && strstr(err_msg(e), "mica.v1.GetRequest") != NULL &&
            strstr(err_msg(e), "3 bytes") != NULL);
  CU_ASSERT_PTR_NULL(out);
  err_free(e);
  rpc_msg_free(NULL);
}

static void test_response_status(void) {
  rpc_status st = {.code = MICA_NOT_FOUND, .message = "gone"};
  rpc_get_response r = {.status = &st, .found = false};
  CU_ASSERT_PTR_EQUAL(rpc_response_status(&r), &st);
  rpc_get_response *b = round_trip(&rpc_def_get_response, &r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  mica_err *e = rpc_status_err(rpc_response_status(b));
  CU_ASSERT_EQUAL(err_code(e), MICA_NOT_FOUND);
  CU_ASSERT_STRING_EQUAL(err_msg(e), "gone");
  err_free(e);
  rpc_msg_free(b);
}

/* ---- route.h ---- */

static void expect_bad(const rpc_tablet_descriptor *d, const char *needle) {
  mica_err *e = rpc_check_desc(d, "desc");
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  CU_ASSERT(e != NULL && strstr(err_msg(e), needle) != NULL);
  if (e != NULL && strstr(err_msg(e), needle) == NULL)
    fprintf(stderr, "want \"%s\", got \"%s\"\n", needle, err_msg(e));
  err_free(e);
}

static void test_check_desc(void) {
  expect_bad(NULL, "desc: a descriptor with a non-zero tablet_id");
  rpc_tablet_descriptor d = {0};
  expect_bad(&d, "non-zero tablet_id");
  d.tablet_id = 1;
  TU_OK(rpc_check_desc(&d, "desc")); /* the whole key space */
  d.start_key = S("b");
  d.end_key = S("b");
  expect_bad(&d, "desc: start_key must be below end_key");
  d.end_key = S("a");
  expect_bad(&d, "start_key must be below end_key");
  d.end_key = S("c");
  TU_OK(rpc_check_desc(&d, "desc"));
  d.end_key = slice_make(NULL, 0);
  TU_OK(rpc_check_desc(&d, "desc")); /* unbounded end */
  buf big = BUF_INIT;
  buf_resize(&big, MICA_MAX_KEY + 1);
  memset(big.data, 'k', big.len);
  d.start_key = buf_slice(&big);
  expect_bad(&d, "range bounds are keys of at most 16384 bytes");
  d.start_key = slice_make(big.data, MICA_MAX_KEY);
  TU_OK(rpc_check_desc(&d, "desc"));
  buf_free(&big);
}

static void test_route_conversions(void) {
  rpc_tablet_descriptor d = {.tablet_id = 5, .table_id = 2, .table_name = "t",
                             .start_key = S("b"), .end_key = S("f"),
                             .range_epoch = 3};
  rpc_location noaddr = {.server_id = 9, .address = "", .assign_epoch = 4};
  rpc_tablet_route w = {.desc = &d, .location = &noaddr};
  rpc_route r;
  rpc_route_from_wire(&r, &w);
  CU_ASSERT_EQUAL(r.tablet_id, 5);
  CU_ASSERT_STRING_EQUAL(r.table_name, "t");
  /* A location without an address is no location. */
  CU_ASSERT_EQUAL(r.server_id, 0);
  CU_ASSERT_PTR_NULL(r.address);
  rpc_route_clear(&r);

  rpc_location loc = {.server_id = 9, .address = "h:1", .assign_epoch = 4};
  w.location = &loc;
  rpc_route_from_wire(&r, &w);
  CU_ASSERT_EQUAL(r.server_id, 9);
  CU_ASSERT_EQUAL(r.assign_epoch, 4);
  CU_ASSERT_STRING_EQUAL(r.address, "h:1");
  CU_ASSERT(rpc_route_contains(&r, S("b")));
  CU_ASSERT(rpc_route_contains(&r, S("e\xff")));
  CU_ASSERT_FALSE(rpc_route_contains(&r, S("f")));
  CU_ASSERT_FALSE(rpc_route_contains(&r, S("a")));

  /* A deep copy survives the original. */
  rpc_route c;
  rpc_route_copy(&c, &r);
  rpc_route_clear(&r);
  CU_ASSERT_STRING_EQUAL(c.address, "h:1");
  CU_ASSERT_STRING_EQUAL(c.table_name, "t");
  CU_ASSERT(slice_eq(buf_slice(&c.end_key), S("f")));

  rpc_route_wire ww;
  const rpc_tablet_route *back = rpc_route_to_wire(&c, true, &ww);
  CU_ASSERT_PTR_NOT_NULL_FATAL(back->location);
  CU_ASSERT_EQUAL(back->location->assign_epoch, 4);
  CU_ASSERT_EQUAL(back->desc->range_epoch, 3);
  CU_ASSERT(slice_eq(back->desc->start_key, S("b")));
  back = rpc_route_to_wire(&c, false, &ww);
  CU_ASSERT_PTR_NULL(back->location);

  rpc_route from_desc;
  rpc_route_from_desc(&from_desc, &d, 11);
  CU_ASSERT_EQUAL(from_desc.assign_epoch, 11);
  CU_ASSERT_PTR_NULL(from_desc.address);
  CU_ASSERT_PTR_NULL(rpc_route_to_wire(&from_desc, true, &ww)->location);
  rpc_route_clear(&from_desc);
  rpc_route_clear(&c);
  rpc_route_clear(NULL);
}

/* ---- strings must be UTF-8 ---- */

/* Appends field `num` of wire type 2 (string, bytes or sub-message). */
static void pb_len(buf *b, unsigned num, const void *data, size_t len) {
  buf_push(b, (uint8_t)(num << 3 | 2));
  CU_ASSERT_FATAL(len < 128);
  buf_push(b, (uint8_t)len);
  buf_append(b, data, len);
}

static void test_utf8_rule(void) {
  static const struct {
    const char *s;
    bool ok;
  } cases[] = {
      {"", true},
      {"plain", true},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true}, /* e-acute, euro, emoji */
      {"\xef\xbf\xbf", true},        /* U+FFFF */
      {"\xf4\x8f\xbf\xbf", true},    /* U+10FFFF */
      {"\xff\xfe", false},
      {"\xc0\x80", false},           /* overlong NUL */
      {"\xe0\x80\xaf", false},       /* overlong '/' */
      {"\xed\xa0\x80", false},       /* surrogate U+D800 */
      {"\xf4\x90\x80\x80", false},   /* above U+10FFFF */
      {"ok\xc3", false},             /* truncated */
      {"\xe2\x82", false},
      {"\x80", false},               /* lone continuation */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CU_ASSERT_EQUAL(rpc_utf8_valid(cases[i].s, strlen(cases[i].s)),
                    cases[i].ok);
}

/* Decodes `bytes` as `d` and expects INVALID_ARGUMENT naming `field`. */
static void expect_bad_text(const rpc_msgdef *d, const buf *bytes,
                            const char *field) {
  void *out = (void *)1;
  mica_err *e = rpc_msg_decode(d, buf_slice(bytes), &out);
  CU_ASSERT_PTR_NULL(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL(err_code(e), MICA_INVALID_ARGUMENT);
  if (strstr(err_msg(e), field) == NULL || strstr(err_msg(e), "UTF-8") == NULL)
    CU_FAIL_FATAL(err_msg(e));
  /* The message itself must be fit to send. */
  CU_ASSERT(rpc_utf8_valid(err_msg(e), strlen(err_msg(e))));
  err_free(e);
}

/* Every string field a request can carry, top-level and nested, with
 * ff fe in it, is refused naming that field. */
static void test_requests_with_bad_text(void) {
  static const uint8_t bad[] = {0xff, 0xfe};
  buf b = BUF_INIT, sub = BUF_INIT, sub2 = BUF_INIT;
  /* top-level strings */
  static const struct {
    const rpc_msgdef *d;
    unsigned num;
    const char *field;
  } top[] = {
      {&rpc_def_create_table_request, 1, "CreateTableRequest.name"},
      {&rpc_def_drop_table_request, 1, "DropTableRequest.name"},
      {&rpc_def_lookup_tablets_request, 1, "LookupTabletsRequest.table"},
      {&rpc_def_list_tablets_request, 1, "ListTabletsRequest.table"},
      {&rpc_def_register_server_request, 1, "RegisterServerRequest.address"},
      {&rpc_def_register_server_request, 6,
       "RegisterServerRequest.http_address"},
      {&rpc_def_open_tablet_request, 3, "OpenTabletRequest.tablet_dir"},
  };
  for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
    buf_clear(&b);
    pb_len(&b, top[i].num, bad, sizeof bad);
    expect_bad_text(top[i].d, &b, top[i].field);
  }
  /* nested: OpenTabletRequest.desc.table_name, .split_sibling.table_name */
  buf_clear(&sub);
  pb_len(&sub, 3, bad, sizeof bad);
  buf_clear(&b);
  pb_len(&b, 1, sub.data, sub.len);
  expect_bad_text(&rpc_def_open_tablet_request, &b,
                  "OpenTabletRequest.desc.table_name");
  buf_clear(&b);
  pb_len(&b, 5, sub.data, sub.len);
  expect_bad_text(&rpc_def_open_tablet_request, &b,
                  "OpenTabletRequest.split_sibling.table_name");
  /* repeated: OpenTabletRequest.sources[1].tablet_dir (the first is fine) */
  buf_clear(&sub);
  pb_len(&sub, 2, "ok", 2);
  buf_clear(&sub2);
  pb_len(&sub2, 2, bad, sizeof bad);
  buf_clear(&b);
  pb_len(&b, 4, sub.data, sub.len);
  pb_len(&b, 4, sub2.data, sub2.len);
  expect_bad_text(&rpc_def_open_tablet_request, &b,
                  "OpenTabletRequest.sources[1].tablet_dir");
  /* CloseTabletRequest.moved_to.address */
  buf_clear(&sub);
  pb_len(&sub, 2, bad, sizeof bad);
  buf_clear(&b);
  pb_len(&b, 2, sub.data, sub.len);
  expect_bad_text(&rpc_def_close_tablet_request, &b,
                  "CloseTabletRequest.moved_to.address");
  /* valid UTF-8 beyond ASCII passes */
  buf_clear(&b);
  pb_len(&b, 1, "t\xc3\xa9", 3);
  rpc_create_table_request *ok = NULL;
  TU_OK(rpc_msg_decode(&rpc_def_create_table_request, buf_slice(&b),
                       (void **)&ok));
  CU_ASSERT_PTR_NOT_NULL_FATAL(ok);
  CU_ASSERT_STRING_EQUAL(ok->name, "t\xc3\xa9");
  rpc_msg_free(ok);
  buf_free(&b);
  buf_free(&sub);
  buf_free(&sub2);
}

/* Whatever a process puts in a string field leaves it as UTF-8: a status
 * message quoting raw bytes is escaped the way keys are, and valid UTF-8
 * goes unchanged. */
static void test_encoding_escapes_bad_text(void) {
  rpc_status st = {.code = MICA_NOT_FOUND,
                   .message = "no table named \"\xff\xfe\""};
  rpc_status *back = round_trip(&rpc_def_status, &st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(back);
  CU_ASSERT_STRING_EQUAL(back->message, "no table named \"\\xff\\xfe\"");
  rpc_msg_free(back);
  st.message = "caf\xc3\xa9";
  back = round_trip(&rpc_def_status, &st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(back);
  CU_ASSERT_STRING_EQUAL(back->message, "caf\xc3\xa9");
  rpc_msg_free(back);
  /* nested: a descriptor's table name inside a routing error */
  rpc_tablet_descriptor d = {.tablet_id = 1, .table_name = "a\x80"};
  rpc_tablet_route r = {.desc = &d};
  rpc_routing_error re = {.requested_tablet_id = 1, .current = &r,
                          .n_current = 1};
  rpc_status st2 = {.code = MICA_STALE_EPOCH, .message = "x", .routing = &re};
  back = round_trip(&rpc_def_status, &st2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(back);
  CU_ASSERT_STRING_EQUAL(back->routing->current[0].desc->table_name,
                         "a\\x80");
  rpc_msg_free(back);
}

static void add_suites(void) {
  static const CU_TestInfo wire[] = {
      {"tables match mica.proto", test_tables_match_proto},
      {"nested and repeated", test_nested_and_repeated},
      {"repeated scalars and bytes", test_repeated_scalars_and_bytes},
      {"oneof presence", test_oneof_presence},
      {"empty messages and bad bytes", test_empty_and_bad_bytes},
      {"response status", test_response_status},
      {"utf8 rule", test_utf8_rule},
      {"requests with non-UTF-8 strings", test_requests_with_bad_text},
      {"encoding escapes non-UTF-8", test_encoding_escapes_bad_text},
      CU_TEST_INFO_NULL};
  static const CU_TestInfo route[] = {
      {"check_desc", test_check_desc},
      {"conversions", test_route_conversions},
      CU_TEST_INFO_NULL};
  tu_add_suite("wire", wire);
  tu_add_suite("route", route);
}

int main(int argc, char **argv) { return tu_main(argc, argv, add_suites); }
