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
 *   Clients carry "authorization: Bearer <token>", or a client certificate
 *   the TLS layer verified against the cluster CA. A token or a
 *   certificate name (cert:NAME) maps to an identity and roles (read <
 *   write < admin) on every table and on named tables through the
 *   master's tokens file; servers keep only SHA-256 digests of the tokens
 *   and compare them in constant time.
 *
 * Every method needs one role (rpc_path_role) in one scope (rpc_path_scope:
 * per table, every table, or any table); member-only methods
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

/* A role on the tables a pattern names: "*" every table, "name" that
 * table, "prefix*" every table whose name starts with prefix. */
typedef struct rpc_table_role {
  char *table;
  rpc_role role;
} rpc_table_role;

/* One grant: a credential (the digest of a bearer token, or the name a
 * client certificate carries in its CN or a SAN), who it is, and what it
 * may do: `role` on every table plus `tables[]` on named ones (the role on
 * a table is the highest that applies). */
typedef struct rpc_grant {
  uint8_t sha[32];   /* token grants */
  char *cert;        /* certificate grants ("cert:NAME"); NULL for tokens */
  char *identity;
  rpc_role role;     /* on every table; RPC_ROLE_NONE when only per table */
  rpc_table_role *tables;
  size_t ntables;
} rpc_grant;

/* A client access table. enabled = false means client calls are open. */
typedef struct rpc_access {
  bool enabled;
  rpc_grant *grants;
  size_t n;
} rpc_access;

/* The role `g` has on `table` (NULL: on every table, i.e. its '*' role). */
rpc_role rpc_grant_table_role(const rpc_grant *g, const char *table);

/* Parses a tokens file (format in docs/security.md: one grant per line,
 * "<token|cert:NAME> <identity> <grant>...", each grant "read", "write",
 * "admin" (every table) or "<role>:<table pattern>"; '#' comments, blank
 * lines). INVALID_ARGUMENT naming the file and line (never the token) for
 * a bad line, a token shorter than 16 characters, a bad table pattern, or
 * a credential listed twice. The
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

/* How a caller proved who it is. */
typedef enum rpc_principal {
  RPC_BY_NOTHING = 0, /* not checked yet */
  RPC_BY_OPEN,        /* no tokens file: anonymous, may do anything */
  RPC_BY_MEMBER,      /* membership proof */
  RPC_BY_TOKEN,       /* bearer token (sha) */
  RPC_BY_CERT,        /* client certificate (cert) */
} rpc_principal;

/* Who made a call, as rpc_auth_check found it. */
typedef struct rpc_identity {
  rpc_role role;     /* what the caller may do (on every table for methods
                        of cluster scope, on some table otherwise) */
  char name[64];     /* "member", the grant's identity, or "anonymous" */
  rpc_principal by;
  /* The call's method needs a role that this identity holds only on some
   * tables: the server must check every table the request touches
   * (rpc_auth_check_table) before acting. */
  bool scoped;
  uint8_t sha[32];   /* RPC_BY_TOKEN: the token's digest */
  char cert[256];    /* RPC_BY_CERT: the certificate name that matched */
} rpc_identity;

/* The names a verified client certificate carries (its subject CN, then
 * its SANs), as the TLS layer reports them. */
typedef struct rpc_peer_names {
  const char *const *names;
  size_t n;
} rpc_peer_names;

/* Decides one call: `path` the method, `body` the request bytes, `member`
 * and `bearer` the values of the x-mica-member and authorization metadata
 * (NULL when absent; not NUL-terminated, lengths given), `peer` the names
 * of the client's verified certificate (NULL or n = 0 without one; a
 * bearer token, when given, takes precedence). NULL when allowed, *id
 * then set; else UNAUTHENTICATED (credentials missing or not verifying) or
 * PERMISSION_DENIED (a role too low), naming what is missing, or
 * UNAVAILABLE while the table is pending.
 *
 * Methods have a scope (rpc_path_scope). For a table-scoped method a
 * recognised caller passes here, and id->scoped says whether the server
 * must then check each table the request names with rpc_auth_check_table
 * (it must when the caller lacks the role on every table: the refusal
 * then names the table). Cluster-scoped methods need the role on every
 * table ('*'). */
mica_err *rpc_auth_check(rpc_auth *a, const char *path, slice body,
                         const char *member, size_t member_len,
                         const char *bearer, size_t bearer_len,
                         const rpc_peer_names *peer, rpc_identity *id);

/* Whether client credentials are checked now (a tokens file is in force):
 * when not, a server need not look at a client's certificate. */
bool rpc_auth_clients_checked(rpc_auth *a);

/* The scope of a method: whether its role applies per table. */
typedef enum rpc_scope {
  RPC_SCOPE_TABLE = 0,   /* names tables: the role is needed on each */
  RPC_SCOPE_CLUSTER = 1, /* the role is needed on every table ('*') */
  RPC_SCOPE_ANY = 2,     /* the role on any table (ListTables, GetInfo,
                            Echo); ListTables filters its answer */
} rpc_scope;
rpc_scope rpc_path_scope(const char *path);

/* The role identity `id` (from rpc_auth_check) holds on `table` (NULL:
 * on every table) under the current access table. A token or certificate
 * removed since the call was checked has RPC_ROLE_NONE. */
rpc_role rpc_auth_table_role(rpc_auth *a, const rpc_identity *id,
                             const char *table);

/* NULL when `id` holds role `need` on `table` (NULL: every table);
 * else PERMISSION_DENIED naming the method, the role, the table and the
 * identity (never the token), or UNAUTHENTICATED when its credential was
 * removed since the call was checked. */
mica_err *rpc_auth_check_table(rpc_auth *a, const rpc_identity *id,
                               const char *path, rpc_role need,
                               const char *table);

/* The same decision for an HTTP request needing `need` on every table
 * (the status page's API): `authorization` is the Authorization header
 * (NULL when absent), "Bearer <token>" or "Basic base64(<any user>:
 * <token>)" (what a browser's login box sends). Membership proofs do not
 * apply. */
mica_err *rpc_auth_check_http(rpc_auth *a, const char *what,
                              const char *authorization, rpc_role need,
                              rpc_identity *id);

/* The x-mica-member value for a call of `path` with request `body` at
 * `now_ms` (unix ms), written to out (room for RPC_MEMBER_PROOF_MAX). */
#define RPC_MEMBER_PROOF_MAX 96
void rpc_member_proof(const rpc_secret *s, const char *path, slice body,
                      uint64_t now_ms, char *out);

#endif
