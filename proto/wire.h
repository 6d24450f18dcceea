/* wire: the messages of mica.proto as plain C structs, the vocabulary every
 * service and caller of Mica speaks.
 *
 * Each message of proto/mica.proto has one plain struct here, rpc_<name>,
 * where <name> is the message's snake_case name (GetRequest: rpc_get_request,
 * TabletDescriptor: rpc_tablet_descriptor). The structs are written once, as
 * field lists (RPC_FIELDS_<name>) from which both the struct and the table
 * that converts it to and from the wire are made, so a field cannot be in
 * one and missing from the other. Only proto/ sees protobuf-c: handlers
 * receive and fill these structs, and callers send and receive them.
 *
 * How a field of mica.proto appears in C:
 *   uint64, uint32, bool, double  uint64_t, uint32_t, bool, double
 *   enum                          int (the RPC_* constants below; Code is a
 *                                 mica_code from mica/status.h)
 *   string                        const char * (NULL is sent as ""; a
 *                                 decoded string is never NULL)
 *   bytes                         slice (empty = absent, by the protocol's
 *                                 convention)
 *   sub-message                   pointer to its struct; NULL = absent
 *   repeated X                    pointer to an array of X plus n_<field>
 *   bool in a one-field oneof     has_<field> plus the bool
 * Every response's Status is its first member, `status`, a pointer (NULL:
 * absent, which means OK); rpc_response_status() reads it from any response.
 *
 * Ownership. A message a caller sends (a request, or a response a handler
 * replies with) is borrowed: the transport encodes it before returning, so
 * it may live on the stack and point at anything. A message the transport
 * hands out (a decoded response, a handler's request) is one allocation
 * owning everything it points to; see rpc.h for who frees it.
 *
 * Decoding proves only that the bytes are a well-formed message of the
 * right type whose strings are all UTF-8 (a request that is not never
 * reaches its handler: INVALID_ARGUMENT names the first bad string field),
 * and encoding never sends a string that is not UTF-8 (its bytes outside
 * printable ASCII go as \xNN, as messages quote keys). What the
 * values mean is checked once by the service that receives them, with the
 * shared helpers of proto/: the limits of proto/limits.h and
 * rpc_check_desc() (proto/route.h) for descriptors.
 *
 * Thread-safety: plain values; no internal state. */
#ifndef MICA_PROTO_WIRE_H
#define MICA_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

/* ---- enums (numbers equal mica.proto's; proto/wire.c checks them) ---- */

enum rpc_tablet_state {
  RPC_TABLET_STATE_UNSPECIFIED = 0,
  RPC_TABLET_UNASSIGNED = 1,
  RPC_TABLET_OPENING = 2,
  RPC_TABLET_SERVING = 3,
  RPC_TABLET_CLOSING = 4,
  RPC_TABLET_SPLIT = 5,
  RPC_TABLET_MERGED = 6
};

enum rpc_scan_end {
  RPC_SCAN_END_UNSPECIFIED = 0,
  RPC_SCAN_END_RANGE = 1,
  RPC_SCAN_END_LIMIT = 2,
  RPC_SCAN_END_ERROR = 3
};

enum rpc_mutation_kind {
  RPC_MUTATION_UNSPECIFIED = 0,
  RPC_MUTATION_PUT = 1,
  RPC_MUTATION_DELETE = 2
};

enum rpc_server_state {
  RPC_SERVER_STATE_UNSPECIFIED = 0,
  RPC_SERVER_LIVE = 1,
  RPC_SERVER_SUSPECT = 2,
  RPC_SERVER_DEAD = 3
};

/* ---- the messages ---- */

/* Every message, by its snake_case name. */
#define RPC_MESSAGE_LIST(X)                                                  \
  X(status) X(tablet_descriptor) X(location) X(tablet_route)                 \
  X(routing_error) X(tablet_ref) X(tablet_stats)                             \
  X(get_request) X(get_response) X(multi_get_part) X(multi_get_request)      \
  X(get_result) X(multi_get_part_result) X(multi_get_response)               \
  X(put_request) X(put_response) X(delete_request) X(delete_response)        \
  X(mutation) X(batch_request) X(batch_response)                             \
  X(scan_request) X(key_value) X(scan_chunk)                                 \
  X(tablet_source) X(open_tablet_request) X(open_tablet_response)            \
  X(close_tablet_request) X(close_tablet_response)                           \
  X(ts_split_tablet_request) X(ts_split_tablet_response)                     \
  X(tablet_info_request) X(served_tablet) X(tablet_info_response)            \
  X(table_info) X(create_table_request) X(create_table_response)             \
  X(drop_table_request) X(drop_table_response)                               \
  X(list_tables_request) X(list_tables_response)                             \
  X(lookup_tablets_request) X(lookup_tablets_response)                       \
  X(list_tablets_request) X(tablet_entry) X(list_tablets_response)           \
  X(server_info) X(list_servers_request) X(list_servers_response)            \
  X(split_tablet_request) X(split_tablet_response)                           \
  X(move_tablet_request) X(move_tablet_response)                             \
  X(merge_tablets_request) X(merge_tablets_response)                         \
  X(planned_move) X(balance_request) X(balance_response)                     \
  X(configure_request) X(configure_response)                                 \
  X(event) X(list_events_request) X(list_events_response)                    \
  X(tablet_report) X(hot_key) X(tablet_load) X(load_split_config)            \
  X(register_server_request) X(register_server_response)                     \
  X(heartbeat_request) X(merged_input) X(table_grant) X(access_grant)       \
  X(access_table) X(heartbeat_response)                                      \
  X(report_split_request) X(report_split_response)                           \
  X(get_info_request) X(get_info_response)                                   \
  X(table_options) X(table_options_entry) X(alter_table_request)             \
  X(alter_table_response)                                                    \
  X(drain_server_request) X(drain_server_response)                           \
  X(snapshot_tablet_request) X(snapshot_tablet_response) X(snapshot_info)   \
  X(create_snapshot_request) X(create_snapshot_response)                     \
  X(list_snapshots_request) X(list_snapshots_response)                       \
  X(drop_snapshot_request) X(drop_snapshot_response)                         \
  X(clone_snapshot_request) X(clone_snapshot_response)                       \
  X(export_snapshot_request) X(export_snapshot_response)                     \
  X(restore_snapshot_request) X(restore_snapshot_response)                   \
  X(echo_request) X(echo_response)

/* Fields: F(kind, message type of a sub-message or _, name, field number).
 * The comments of mica.proto say what each field means. */
#define RPC_FIELDS_status(F) \
  F(ENUM, _, code, 1) F(STR, _, message, 2) F(MSG, routing_error, routing, 3)
#define RPC_FIELDS_tablet_descriptor(F)                                      \
  F(U64, _, tablet_id, 1) F(U64, _, table_id, 2) F(STR, _, table_name, 3)    \
  F(BYTES, _, start_key, 4) F(BYTES, _, end_key, 5) F(U64, _, range_epoch, 6)
#define RPC_FIELDS_location(F) \
  F(U64, _, server_id, 1) F(STR, _, address, 2) F(U64, _, assign_epoch, 3)
#define RPC_FIELDS_tablet_route(F) \
  F(MSG, tablet_descriptor, desc, 1) F(MSG, location, location, 2)
#define RPC_FIELDS_routing_error(F)                                          \
  F(U64, _, requested_tablet_id, 1) F(RMSG, tablet_route, current, 2)        \
  F(MSG, location, moved_to, 3)
#define RPC_FIELDS_tablet_ref(F) \
  F(U64, _, tablet_id, 1) F(U64, _, range_epoch, 2) F(U64, _, assign_epoch, 3)
#define RPC_FIELDS_tablet_stats(F)                                           \
  F(U64, _, approx_bytes, 1) F(U64, _, approx_keys, 2) F(U64, _, reads, 3)   \
  F(U64, _, writes, 4) F(U64, _, read_bytes, 5) F(U64, _, write_bytes, 6)    \
  F(U64, _, scans, 7) F(DBL, _, read_rate, 8) F(DBL, _, write_rate, 9)       \
  F(U64, _, memtable_bytes, 10) F(U32, _, sstable_count, 11)

#define RPC_FIELDS_get_request(F) \
  F(MSG, tablet_ref, tablet, 1) F(BYTES, _, key, 2)
#define RPC_FIELDS_get_response(F) \
  F(MSG, status, status, 1) F(BOOL, _, found, 2) F(BYTES, _, value, 3)
#define RPC_FIELDS_multi_get_part(F) \
  F(MSG, tablet_ref, tablet, 1) F(RBYTES, _, keys, 2)
#define RPC_FIELDS_multi_get_request(F) F(RMSG, multi_get_part, parts, 1)
#define RPC_FIELDS_get_result(F) F(BOOL, _, found, 1) F(BYTES, _, value, 2)
#define RPC_FIELDS_multi_get_part_result(F) \
  F(MSG, status, status, 1) F(RMSG, get_result, results, 2)
#define RPC_FIELDS_multi_get_response(F) \
  F(MSG, status, status, 1) F(RMSG, multi_get_part_result, parts, 2)
#define RPC_FIELDS_put_request(F)                                            \
  F(MSG, tablet_ref, tablet, 1) F(BYTES, _, key, 2) F(BYTES, _, value, 3)
#define RPC_FIELDS_put_response(F) \
  F(MSG, status, status, 1) F(U64, _, sequence, 2)
#define RPC_FIELDS_delete_request(F) \
  F(MSG, tablet_ref, tablet, 1) F(BYTES, _, key, 2)
#define RPC_FIELDS_delete_response(F) \
  F(MSG, status, status, 1) F(U64, _, sequence, 2)
#define RPC_FIELDS_mutation(F) \
  F(ENUM, _, kind, 1) F(BYTES, _, key, 2) F(BYTES, _, value, 3)
#define RPC_FIELDS_batch_request(F) \
  F(MSG, tablet_ref, tablet, 1) F(RMSG, mutation, mutations, 2)
#define RPC_FIELDS_batch_response(F) \
  F(MSG, status, status, 1) F(U64, _, sequence, 2)
#define RPC_FIELDS_scan_request(F)                                           \
  F(MSG, tablet_ref, tablet, 1) F(BYTES, _, start_key, 2)                    \
  F(BYTES, _, end_key, 3) F(BYTES, _, prefix, 4) F(U64, _, limit, 5)         \
  F(BOOL, _, reverse, 6) F(BOOL, _, keys_only, 7)                            \
  F(U32, _, chunk_max_bytes, 8) F(U32, _, chunk_max_rows, 9)
#define RPC_FIELDS_key_value(F) F(BYTES, _, key, 1) F(BYTES, _, value, 2)
#define RPC_FIELDS_scan_chunk(F)                                             \
  F(MSG, status, status, 1) F(RMSG, key_value, rows, 2) F(BOOL, _, last, 3)  \
  F(ENUM, _, end, 4) F(MSG, tablet_descriptor, tablet, 5)

#define RPC_FIELDS_tablet_source(F) \
  F(U64, _, tablet_id, 1) F(STR, _, tablet_dir, 2)
#define RPC_FIELDS_open_tablet_request(F)                                    \
  F(MSG, tablet_descriptor, desc, 1) F(U64, _, assign_epoch, 2)              \
  F(STR, _, tablet_dir, 3) F(RMSG, tablet_source, sources, 4)                \
  F(MSG, tablet_descriptor, split_sibling, 5) F(U64, _, master_epoch, 6)              \
  F(MSG, table_options, options, 7)
#define RPC_FIELDS_open_tablet_response(F) \
  F(MSG, status, status, 1) F(MSG, tablet_stats, stats, 2)
#define RPC_FIELDS_close_tablet_request(F)                                   \
  F(MSG, tablet_ref, tablet, 1) F(MSG, location, moved_to, 2)                \
  F(BOOL, _, skip_flush, 3) F(U64, _, master_epoch, 4)
#define RPC_FIELDS_close_tablet_response(F) \
  F(MSG, status, status, 1) F(MSG, tablet_stats, stats, 2)
#define RPC_FIELDS_ts_split_tablet_request(F)                               \
  F(MSG, tablet_ref, tablet, 1) F(BYTES, _, split_key, 2)                    \
  F(U64, _, master_epoch, 3)
#define RPC_FIELDS_ts_split_tablet_response(F)                               \
  F(MSG, status, status, 1) F(MSG, tablet_route, left, 2)                    \
  F(MSG, tablet_route, right, 3)
#define RPC_FIELDS_tablet_info_request(F) F(RU64, _, tablet_ids, 1)
#define RPC_FIELDS_served_tablet(F)                                          \
  F(MSG, tablet_descriptor, desc, 1) F(U64, _, assign_epoch, 2)              \
  F(MSG, tablet_stats, stats, 3) F(BOOL, _, paused, 4)
#define RPC_FIELDS_tablet_info_response(F)                                   \
  F(MSG, status, status, 1) F(U64, _, server_id, 2)                          \
  F(RMSG, served_tablet, tablets, 3)

#define RPC_FIELDS_table_info(F)                                             \
  F(U64, _, table_id, 1) F(STR, _, name, 2) F(U64, _, tablet_count, 3)       \
  F(U64, _, approx_bytes, 4) F(U64, _, approx_keys, 5)                       \
  F(U64, _, created_ms, 6) F(MSG, table_options, options, 7)
#define RPC_FIELDS_create_table_request(F) \
  F(STR, _, name, 1) F(RBYTES, _, split_keys, 2)               \
  F(MSG, table_options, options, 3)
#define RPC_FIELDS_create_table_response(F)                                  \
  F(MSG, status, status, 1) F(MSG, table_info, table, 2)                     \
  F(RMSG, tablet_route, tablets, 3)
#define RPC_FIELDS_drop_table_request(F) F(STR, _, name, 1)
#define RPC_FIELDS_drop_table_response(F) F(MSG, status, status, 1)
#define RPC_FIELDS_list_tables_request(F) F(NONE, _, unused_, 0)
#define RPC_FIELDS_list_tables_response(F) \
  F(MSG, status, status, 1) F(RMSG, table_info, tables, 2)
#define RPC_FIELDS_lookup_tablets_request(F)                                 \
  F(STR, _, table, 1) F(BYTES, _, key, 2) F(U32, _, count, 3)                \
  F(BOOL, _, before, 4)
#define RPC_FIELDS_lookup_tablets_response(F) \
  F(MSG, status, status, 1) F(RMSG, tablet_route, tablets, 2)          \
  F(U32, _, salt_buckets, 3) F(U64, _, table_id, 4)
#define RPC_FIELDS_list_tablets_request(F) \
  F(STR, _, table, 1) F(BOOL, _, include_retired, 2)
#define RPC_FIELDS_tablet_entry(F)                                           \
  F(MSG, tablet_descriptor, desc, 1) F(MSG, location, location, 2)           \
  F(ENUM, _, state, 3) F(MSG, tablet_stats, stats, 4)
#define RPC_FIELDS_list_tablets_response(F) \
  F(MSG, status, status, 1) F(RMSG, tablet_entry, tablets, 2)
#define RPC_FIELDS_server_info(F)                                            \
  F(U64, _, server_id, 1) F(STR, _, address, 2) F(ENUM, _, state, 3)         \
  F(U64, _, lease_age_ms, 4) F(U32, _, tablet_count, 5)                      \
  F(U64, _, approx_bytes, 6) F(DBL, _, read_rate, 7)                         \
  F(DBL, _, write_rate, 8) F(U64, _, registered_ms, 9)                      \
  F(STR, _, http_address, 10) F(BOOL, _, draining, 11)
#define RPC_FIELDS_list_servers_request(F) F(BOOL, _, include_dead, 1)
#define RPC_FIELDS_list_servers_response(F) \
  F(MSG, status, status, 1) F(RMSG, server_info, servers, 2)
#define RPC_FIELDS_split_tablet_request(F) \
  F(U64, _, tablet_id, 1) F(BYTES, _, split_key, 2)
#define RPC_FIELDS_split_tablet_response(F)                                  \
  F(MSG, status, status, 1) F(MSG, tablet_route, left, 2)                    \
  F(MSG, tablet_route, right, 3)
#define RPC_FIELDS_move_tablet_request(F) \
  F(U64, _, tablet_id, 1) F(U64, _, target_server_id, 2)
#define RPC_FIELDS_move_tablet_response(F) \
  F(MSG, status, status, 1) F(MSG, tablet_route, tablet, 2)
#define RPC_FIELDS_merge_tablets_request(F) \
  F(U64, _, left_tablet_id, 1) F(U64, _, right_tablet_id, 2)
#define RPC_FIELDS_merge_tablets_response(F) \
  F(MSG, status, status, 1) F(MSG, tablet_route, merged, 2)
#define RPC_FIELDS_planned_move(F)                                           \
  F(U64, _, tablet_id, 1) F(U64, _, from_server_id, 2)                       \
  F(U64, _, to_server_id, 3) F(STR, _, reason, 4)                           \
  F(U64, _, range_epoch, 5) F(U64, _, assign_epoch, 6)
#define RPC_FIELDS_balance_request(F) \
  F(BOOL, _, dry_run, 1) F(RMSG, planned_move, apply, 2)
#define RPC_FIELDS_balance_response(F)                                       \
  F(MSG, status, status, 1) F(RMSG, planned_move, moves, 2)                  \
  F(RMSG, planned_move, stale, 3)
#define RPC_FIELDS_configure_request(F)                                      \
  F(OBOOL, _, balancer_enabled, 1) F(OBOOL, _, merge_enabled, 2)             \
  F(STR, _, balancer_mode, 3)
#define RPC_FIELDS_configure_response(F)                                     \
  F(MSG, status, status, 1) F(BOOL, _, balancer_enabled, 2)                  \
  F(BOOL, _, merge_enabled, 3) F(STR, _, balancer_mode, 4)
#define RPC_FIELDS_drain_server_request(F) \
  F(U64, _, server_id, 1) F(STR, _, address, 2) F(BOOL, _, undrain, 3)
#define RPC_FIELDS_drain_server_response(F) \
  F(MSG, status, status, 1) F(MSG, server_info, server, 2)
#define RPC_FIELDS_event(F)                                                  \
  F(U64, _, time_ms, 1) F(STR, _, kind, 2) F(STR, _, text, 3)                \
  F(U64, _, tablet_id, 4) F(U64, _, server_id, 5)
#define RPC_FIELDS_list_events_request(F) F(U32, _, limit, 1)
#define RPC_FIELDS_list_events_response(F) \
  F(MSG, status, status, 1) F(RMSG, event, events, 2)

#define RPC_FIELDS_tablet_report(F) \
  F(MSG, tablet_ref, tablet, 1) F(MSG, tablet_stats, stats, 2)               \
  F(MSG, tablet_load, load, 3)
#define RPC_FIELDS_hot_key(F) \
  F(BYTES, _, key, 1) F(DBL, _, ops_per_sec, 2) F(STR, _, kind, 3)
#define RPC_FIELDS_tablet_load(F)                                            \
  F(DBL, _, ops_per_sec, 1) F(DBL, _, bytes_per_sec, 2) F(BOOL, _, hot, 3)   \
  F(RMSG, hot_key, hot_keys, 4)
#define RPC_FIELDS_load_split_config(F)                                      \
  F(BOOL, _, enabled, 1) F(DBL, _, ops_per_sec, 2)                           \
  F(U64, _, bytes_per_sec, 3) F(U64, _, window_ms, 4)
#define RPC_FIELDS_register_server_request(F)                                \
  F(STR, _, address, 1) F(U64, _, previous_server_id, 2)                     \
  F(RMSG, tablet_report, tablets, 3) F(U64, _, incarnation, 4)               \
  F(BOOL, _, can_merge, 5) F(STR, _, http_address, 6)
#define RPC_FIELDS_register_server_response(F)                               \
  F(MSG, status, status, 1) F(U64, _, server_id, 2) F(U64, _, lease_ms, 3)   \
  F(U64, _, heartbeat_interval_ms, 4) F(RMSG, tablet_ref, close_tablets, 5)  \
  F(U64, _, split_threshold_bytes, 6) F(U64, _, master_epoch, 7)           \
  F(MSG, access_table, access, 8) F(MSG, load_split_config, load_split, 9)
#define RPC_FIELDS_heartbeat_request(F)                                      \
  F(U64, _, server_id, 1) F(U64, _, incarnation, 2)                          \
  F(RMSG, tablet_report, tablets, 3) F(BOOL, _, can_merge, 4)              \
  F(BOOL, _, disk_below_reserve, 5)
#define RPC_FIELDS_merged_input(F) \
  F(U64, _, tablet_id, 1) F(MSG, tablet_route, merged, 2)
#define RPC_FIELDS_heartbeat_response(F)                                     \
  F(MSG, status, status, 1) F(U64, _, lease_ms, 2)                           \
  F(RMSG, tablet_ref, close_tablets, 3) F(RMSG, merged_input, merged, 4)   \
  F(U64, _, master_epoch, 5) F(MSG, access_table, access, 6)                \
  F(MSG, load_split_config, load_split, 7)                                   \
  F(RMSG, table_options_entry, table_options, 8)
#define RPC_FIELDS_table_grant(F) F(STR, _, table, 1) F(U32, _, role, 2)
#define RPC_FIELDS_access_grant(F)                                          \
  F(BYTES, _, token_sha256, 1) F(STR, _, identity, 2) F(U32, _, role, 3)   \
  F(RMSG, table_grant, tables, 4) F(STR, _, cert, 5)
#define RPC_FIELDS_access_table(F) \
  F(BOOL, _, enabled, 1) F(RMSG, access_grant, grants, 2)
#define RPC_FIELDS_report_split_request(F)                                   \
  F(U64, _, server_id, 1) F(MSG, tablet_ref, parent, 2)                      \
  F(BYTES, _, split_key, 3) F(BOOL, _, for_load, 4)
#define RPC_FIELDS_report_split_response(F)                                  \
  F(MSG, status, status, 1) F(MSG, tablet_route, left, 2)                    \
  F(MSG, tablet_route, right, 3) F(U64, _, master_epoch, 4)
#define RPC_FIELDS_get_info_request(F) F(NONE, _, unused_, 0)
#define RPC_FIELDS_get_info_response(F)                                      \
  F(MSG, status, status, 1) F(STR, _, version, 2) F(STR, _, rpc_address, 3)  \
  F(STR, _, http_address, 4) F(U64, _, start_time_ms, 5)                     \
  F(STR, _, cluster_name, 6)
#define RPC_FIELDS_table_options(F)                                          \
  F(STR, _, compression, 1) F(U64, _, split_threshold_bytes, 2)              \
  F(U32, _, block_size, 3) F(U32, _, bloom_bits_per_key, 4)                  \
  F(BOOL, _, bloom_set, 5) F(U32, _, salt_buckets, 6)
#define RPC_FIELDS_table_options_entry(F) \
  F(U64, _, table_id, 1) F(MSG, table_options, options, 2)
#define RPC_FIELDS_alter_table_request(F)                                    \
  F(STR, _, table, 1) F(MSG, table_options, options, 2)                      \
  F(BOOL, _, set_compression, 3) F(BOOL, _, set_split_threshold, 4)         \
  F(BOOL, _, set_block_size, 5) F(BOOL, _, set_bloom_bits, 6)
#define RPC_FIELDS_alter_table_response(F) \
  F(MSG, status, status, 1) F(MSG, table_info, table, 2)
#define RPC_FIELDS_snapshot_tablet_request(F) \
  F(MSG, tablet_ref, tablet, 1) F(U64, _, snapshot_id, 2)                    \
  F(U64, _, master_epoch, 3)
#define RPC_FIELDS_snapshot_tablet_response(F) \
  F(MSG, status, status, 1) F(U64, _, files, 2) F(U64, _, bytes, 3)
#define RPC_FIELDS_snapshot_info(F)                                          \
  F(U64, _, snapshot_id, 1) F(STR, _, name, 2) F(STR, _, table, 3)           \
  F(U64, _, table_id, 4) F(U64, _, created_ms, 5) F(STR, _, state, 6)        \
  F(U64, _, tablets, 7) F(U64, _, files, 8) F(U64, _, bytes, 9)
#define RPC_FIELDS_create_snapshot_request(F) \
  F(STR, _, table, 1) F(STR, _, name, 2)
#define RPC_FIELDS_create_snapshot_response(F) \
  F(MSG, status, status, 1) F(MSG, snapshot_info, snapshot, 2)
#define RPC_FIELDS_list_snapshots_request(F) F(NONE, _, unused_, 0)
#define RPC_FIELDS_list_snapshots_response(F) \
  F(MSG, status, status, 1) F(RMSG, snapshot_info, snapshots, 2)
#define RPC_FIELDS_drop_snapshot_request(F) F(STR, _, name, 1)
#define RPC_FIELDS_drop_snapshot_response(F) F(MSG, status, status, 1)
#define RPC_FIELDS_clone_snapshot_request(F) \
  F(STR, _, snapshot, 1) F(STR, _, table, 2)
#define RPC_FIELDS_clone_snapshot_response(F) \
  F(MSG, status, status, 1) F(MSG, table_info, table, 2)
#define RPC_FIELDS_export_snapshot_request(F) \
  F(STR, _, snapshot, 1) F(STR, _, dest, 2)
#define RPC_FIELDS_export_snapshot_response(F) \
  F(MSG, status, status, 1) F(U64, _, files, 2) F(U64, _, bytes, 3)
#define RPC_FIELDS_restore_snapshot_request(F) \
  F(STR, _, source, 1) F(STR, _, table, 2)
#define RPC_FIELDS_restore_snapshot_response(F)                              \
  F(MSG, status, status, 1) F(MSG, table_info, table, 2)                     \
  F(U64, _, files, 3) F(U64, _, bytes, 4)
#define RPC_FIELDS_echo_request(F) \
  F(BYTES, _, payload, 1) F(U32, _, delay_ms, 2) F(U32, _, chunks, 3)
#define RPC_FIELDS_echo_response(F) \
  F(MSG, status, status, 1) F(BYTES, _, payload, 2) F(U32, _, index, 3)

/* The C member(s) of one field. */
#define RPC_MEMBER_U64(sub, name) uint64_t name;
#define RPC_MEMBER_U32(sub, name) uint32_t name;
#define RPC_MEMBER_BOOL(sub, name) bool name;
#define RPC_MEMBER_DBL(sub, name) double name;
#define RPC_MEMBER_ENUM(sub, name) int name;
#define RPC_MEMBER_STR(sub, name) const char *name;
#define RPC_MEMBER_BYTES(sub, name) slice name;
#define RPC_MEMBER_MSG(sub, name) struct rpc_##sub *name;
#define RPC_MEMBER_RMSG(sub, name) \
  struct rpc_##sub *name;          \
  size_t n_##name;
#define RPC_MEMBER_RBYTES(sub, name) \
  slice *name;                       \
  size_t n_##name;
#define RPC_MEMBER_RU64(sub, name) \
  uint64_t *name;                  \
  size_t n_##name;
#define RPC_MEMBER_OBOOL(sub, name) \
  bool has_##name;                  \
  bool name;
#define RPC_MEMBER_(kind, sub, name, num) RPC_MEMBER_##kind(sub, name)

/* A message without fields still needs a member in C: NONE gives one. */
#define RPC_MEMBER_NONE(sub, name) char name;
#define RPC_STRUCT_(n) \
  typedef struct rpc_##n { RPC_FIELDS_##n(RPC_MEMBER_) } rpc_##n;
RPC_MESSAGE_LIST(RPC_STRUCT_)
#undef RPC_STRUCT_

/* The description of one message for the converters (opaque outside
 * proto/): rpc_def_get_request and so on, one per message. */
typedef struct rpc_msgdef rpc_msgdef;
#define RPC_DEF_DECL_(n) extern const rpc_msgdef rpc_def_##n;
RPC_MESSAGE_LIST(RPC_DEF_DECL_)
#undef RPC_DEF_DECL_

/* True when s[0..n) is valid UTF-8, as every string field must be: decoding
 * rejects a message with any other string (INVALID_ARGUMENT naming the
 * field), and encoding escapes one as \xNN (see proto/wire.c). */
bool rpc_utf8_valid(const char *s, size_t n);

#endif
