/* auth: who may call what (docs/security.md).
 *
 * Two kinds of caller prove who they are on every call, in gRPC metadata
 * that proto/ attaches (rpc_client.c) and checks (rpc_server.c) so that no
 * other part of Mica sees gRPC:
 *
 *   Cluster members (masters, tablet servers) share a 32-byte cluster
 *   secret. A member signs each call: "x-mica-member: v1 <unix ms> <hex>",
 *   the hex being HMAC-SHA256(secret, "mica-member-v1\n" path "\n" ms "\n"
 *   request bytes). The server recomputes it, compares in constant time
 *   (CRYPTO_memcmp) and accepts a timestamp within RPC_MEMBER_SKEW_MS of its
 *   own clock. The secret never crosses the wire; a captured proof only
 *   replays that same request to that same method within the window.
 *
 *   Clients carry "authorization: Bearer <token>". A token maps to an
 *   identity and a role (read < write < admin) through the master's tokens
 *   file; servers keep only SHA-256 digests of the tokens and compare them
 *   in constant time.
 *
 * Every method needs one role (rpc_method_role): member-only methods
 * (RegisterServer, Heartbeat, ReportSplit, OpenTablet, CloseTablet,
 * SplitTablet on a tablet server) need a member proof; admin, write and read
 * methods need a token of at least that role, or a member proof. With no
 * tokens file client calls are open (anonymous callers count as admin), as
 * before; membership is enforced either way.
 *
 * Thread-safety: an rpc_auth is shared by all of a server's threads; its
 * access table is replaced atomically (rpc_auth_set_access). rpc_secret and
 * rpc_tokens are plain values. */
#ifndef MICA_PROTO_AUTH_H
#define MICA_PROTO_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/wire.h"

#define RPC_SECRET_BYTES 32
#define RPC_MEMBER_SKEW_MS (5 * 60 * 1000)

/* The cluster secret file inside a data root. */
#define RPC_SECRET_FILE "cluster.secret"

typedef struct rpc_secret {
  uint8_t b[RPC_SECRET_BYTES];
} rpc_secret;

/* Roles, ordered: a higher role may do everything a lower one may. */
typedef enum rpc_role {
  RPC_ROLE_NONE = 0,
  RPC_ROLE_READ = 1,
  RPC_ROLE_WRITE = 2,
  RPC_ROLE_ADMIN = 3,
  RPC_ROLE_MEMBER = 4, /* cluster members only */
} rpc_role;

/* "read", "write", "admin", "member", "none". */
const char *rpc_role_name(rpc_role r);

/* The role a method needs (by its path, "/mica.v1.Master/DropTable").
 * Unknown paths need RPC_ROLE_MEMBER. */
rpc_role rpc_path_role(const char *path);

/* ---- the cluster secret ---- */

/* Reads the secret from `path`: a file of exactly 64 hex digits (and an
 * optional newline). INVALID_ARGUMENT naming the file when it is not;
 * NOT_FOUND when it does not exist; PERMISSION_DENIED when group or others
 * may read it. */
mica_err *rpc_secret_read(const char *path, rpc_secret *out);

/* The data root's secret (<root>/cluster.secret): read when it exists,
 * else created with 32 bytes from getrandom(2), mode 0600, atomically (a
 * temporary file linked into place, so concurrent creators agree on one
 * secret). *created tells which happened (may be NULL). */
mica_err *rpc_secret_load_or_create(const char *root, rpc_secret *out,
                                    bool *created);

/* ---- tokens ---- */

/* One grant: digest of a token, who it is, what it may do. */
typedef struct rpc_grant {
  uint8_t sha[32];
  char *identity;
  rpc_role role;
} rpc_grant;

/* A client access table. enabled = false means client calls are open. */
typedef struct rpc_access {
  bool enabled;
  rpc_grant *grants;
  size_t n;
} rpc_access;

/* Parses a tokens file (format in docs/security.md: one grant per line,
 * "<token> <identity> <read|write|admin>", '#' comments, blank lines).
 * INVALID_ARGUMENT naming the file and line (never the token) for a bad
 * line, a token shorter than 16 characters, or a token listed twice. The
 * result is enabled even when the file lists no grants (then nobody is
 * let in as a client). Caller frees with rpc_access_free(). */
mica_err *rpc_access_load(const char *path, rpc_access **out);

/* The table as the wire carries it (points into `a`; free the arrays with
 * rpc_access_wire_free), and back (INVALID_ARGUMENT for a digest that is
 * not 32 bytes or a role out of range). */
void rpc_access_to_wire(const rpc_access *a, rpc_access_table *w);
void rpc_access_wire_free(rpc_access_table *w);
mica_err *rpc_access_from_wire(const rpc_access_table *w, rpc_access **out);

void rpc_access_free(rpc_access *a);

/* ---- what a server checks ---- */

typedef struct rpc_auth rpc_auth;

/* Checks member proofs with `secret` and client tokens against the access
 * table, which starts as `initial` (taken; NULL = pending: every client
 * call is refused UNAVAILABLE until rpc_auth_set_access, for a tablet
 * server that has not heard from its master yet). */
rpc_auth *rpc_auth_new(const rpc_secret *secret, rpc_access *initial);
void rpc_auth_free(rpc_auth *a);

/* Replaces the access table (takes `acc`). */
void rpc_auth_set_access(rpc_auth *a, rpc_access *acc);

/* Who made a call, as rpc_auth_check found it. */
typedef struct rpc_identity {
  rpc_role role;     /* what the caller may do */
  char name[64];     /* "member", the token's identity, or "anonymous" */
} rpc_identity;

/* Decides one call: `path` the method, `body` the request bytes, `member`
 * and `bearer` the values of the x-mica-member and authorization metadata
 * (NULL when absent; not NUL-terminated, lengths given). NULL when allowed,
 * *id then set; else UNAUTHENTICATED (credentials missing or not
 * verifying) or PERMISSION_DENIED (a role too low), naming what is
 * missing, or UNAVAILABLE while the table is pending. */
mica_err *rpc_auth_check(rpc_auth *a, const char *path, slice body,
                         const char *member, size_t member_len,
                         const char *bearer, size_t bearer_len,
                         rpc_identity *id);

/* The same decision for an HTTP request needing `need` (the status
 * page's API): `authorization` is the Authorization header (NULL when
 * absent), "Bearer <token>" or "Basic base64(<any user>:<token>)" (what a
 * browser's login box sends). Membership proofs do not apply. */
mica_err *rpc_auth_check_http(rpc_auth *a, const char *what,
                              const char *authorization, rpc_role need,
                              rpc_identity *id);

/* The x-mica-member value for a call of `path` with request `body` at
 * `now_ms` (unix ms), written to out (room for RPC_MEMBER_PROOF_MAX). */
#define RPC_MEMBER_PROOF_MAX 96
void rpc_member_proof(const rpc_secret *s, const char *path, slice body,
                      uint64_t now_ms, char *out);

#endif
