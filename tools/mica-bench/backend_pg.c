/* backend_pg.c: mica-bench's calls mapped onto PostgreSQL through libpq.
 *
 * A table becomes an SQL table of the same name,
 *     key bytea PRIMARY KEY, value bytea
 * (prepare() creates it when absent), and each call one prepared
 * statement, parameters and results in binary:
 *     read   SELECT value FROM t WHERE key = $1
 *     write  INSERT INTO t VALUES ($1, $2)
 *            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
 *     scan   SELECT key, value FROM t WHERE key >= $1 ORDER BY key LIMIT $2
 * Each statement runs in its own implicit transaction, so a write is
 * acknowledged after its commit record is flushed: every session sets
 * synchronous_commit = on, and open refuses a server with fsync off, so the
 * durability is the same as Mica's synced WAL and etcd's fsynced raft log.
 * The scan is an index range scan over the primary key's B-tree, the same
 * ordered read Mica's Scan does.
 *
 * Connections: libpq connections are not shared between threads, and the
 * other backends keep one call in flight per thread, so each worker thread
 * gets its own connection (and its own prepared statements), opened on its
 * first call and found again through a thread-specific key. The handle
 * keeps the list of every connection it opened and closes them in close().
 * A connection found broken at the start of a call is reset once and its
 * statements prepared again; the call's error says what failed. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/mica-bench/backend.h"

#define PG_OID_BYTEA 17
#define PG_OID_INT8 20

typedef struct pg_conn {
  PGconn *c;
  struct pg_conn *next; /* in bk_pg.conns */
} pg_conn;

typedef struct bk_pg {
  char *conninfo;
  char *ident;        /* the table name, quoted as an SQL identifier */
  int64_t timeout_ms;
  pthread_key_t key;  /* this thread's pg_conn */
  pthread_mutex_t mu; /* guards conns */
  pg_conn *conns;     /* every connection opened, for close() */
} bk_pg;

/* The Mica status for a failed result or connection: a statement timeout
 * is DEADLINE_EXCEEDED, a lost server UNAVAILABLE, anything else INTERNAL
 * (a bench against a healthy server should see none). */
static mica_err *pg_error(PGconn *c, const PGresult *r, const char *what) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
  if (msg == NULL || *msg == '\0') msg = PQerrorMessage(c);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
  mica_code code = MICA_INTERNAL;
  if (PQstatus(c) != CONNECTION_OK) code = MICA_UNAVAILABLE;
  else if (state && strcmp(state, "57014") == 0) code = MICA_DEADLINE_EXCEEDED;
  else if (state && strncmp(state, "08", 2) == 0) code = MICA_UNAVAILABLE;
  return err_new(code, "postgres %s: %.*s", what, (int)n, msg);
}

/* Runs a command that returns no rows; NULL when it succeeded. */
static mica_err *pg_exec(PGconn *c, const char *sql, const char *what) {
  PGresult *r = PQexec(c, sql);
  mica_err *e = NULL;
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    e = pg_error(c, r, what);
  PQclear(r);
  return e;
}

/* Session settings and the three prepared statements of a (re)opened
 * connection. */
static mica_err *pg_setup(bk_pg *b, PGconn *c) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SET synchronous_commit = on; SET statement_timeout = %lld",
           (long long)b->timeout_ms);
  mica_err *e = pg_exec(c, sql, "session settings");
  if (e) return e;
  static const Oid get_types[] = {PG_OID_BYTEA};
  static const Oid put_types[] = {PG_OID_BYTEA, PG_OID_BYTEA};
  static const Oid scan_types[] = {PG_OID_BYTEA, PG_OID_INT8};
  struct {
    const char *name, *fmt;
    int n;
    const Oid *types;
  } stmts[] = {
      {"mb_get", "SELECT value FROM %s WHERE key = $1", 1, get_types},
      {"mb_put",
       "INSERT INTO %s (key, value) VALUES ($1, $2) "
       "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
       2, put_types},
      {"mb_scan", "SELECT key, value FROM %s WHERE key >= $1 ORDER BY key LIMIT $2", 2,
       scan_types},
  };
  for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
    snprintf(sql, sizeof sql, stmts[i].fmt, b->ident);
    PGresult *r = PQprepare(c, stmts[i].name, sql, stmts[i].n, stmts[i].types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) e = pg_error(c, r, "prepare");
    PQclear(r);
    if (e) return e;
  }
  return NULL;
}

static mica_err *pg_connect(bk_pg *b, PGconn **out) {
  *out = NULL;
  /* connect_timeout is whole seconds, at least 2 (libpq's minimum). */
  char secs[32];
  snprintf(secs, sizeof secs, "%lld", (long long)(b->timeout_ms + 999) / 1000 < 2
                                          ? 2LL
                                          : (long long)(b->timeout_ms + 999) / 1000);
  const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *vals[] = {b->conninfo, secs, "mica-bench", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c == NULL) return err_new(MICA_RESOURCE_EXHAUSTED, "postgres: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    mica_err *e = pg_error(c, NULL, "connect");
    PQfinish(c);
    return e;
  }
  *out = c;
  return NULL;
}

/* This thread's connection, opened and prepared on first use, reset once
 * when found broken. */
static mica_err *pg_thread_conn(bk_pg *b, PGconn **out) {
  pg_conn *pc = pthread_getspecific(b->key);
  if (pc != NULL && PQstatus(pc->c) == CONNECTION_OK) {
    *out = pc->c;
    return NULL;
  }
  if (pc != NULL) {
    PQreset(pc->c);
    if (PQstatus(pc->c) != CONNECTION_OK) return pg_error(pc->c, NULL, "reconnect");
    mica_err *e = pg_setup(b, pc->c);
    if (e) return e;
    *out = pc->c;
    return NULL;
  }
  PGconn *c = NULL;
  mica_err *e = pg_connect(b, &c);
  if (e == NULL) e = pg_setup(b, c);
  if (e) {
    PQfinish(c);
    return e;
  }
  pc = xcalloc(1, sizeof *pc);
  pc->c = c;
  pthread_mutex_lock(&b->mu);
  pc->next = b->conns;
  b->conns = pc;
  pthread_mutex_unlock(&b->mu);
  pthread_setspecific(b->key, pc);
  *out = c;
  return NULL;
}

static mica_err *p_prepare(void *h, const slice *splits, size_t n) {
  (void)splits; /* PostgreSQL's B-tree needs no pre-split */
  (void)n;
  bk_pg *b = h;
  PGconn *c = NULL;
  mica_err *e = pg_connect(b, &c);
  if (e) return e;
  char sql[512];
  snprintf(sql, sizeof sql,
           "CREATE TABLE IF NOT EXISTS %s (key bytea PRIMARY KEY, value bytea)", b->ident);
  e = pg_exec(c, sql, "create table");
  PQfinish(c);
  return e;
}

static mica_err *p_read(void *h, slice key, buf *value) {
  bk_pg *b = h;
  buf_clear(value);
  PGconn *c = NULL;
  mica_err *e = pg_thread_conn(b, &c);
  if (e) return e;
  const char *vals[] = {(const char *)key.data};
  const int lens[] = {(int)key.len};
  const int fmts[] = {1};
  PGresult *r = PQexecPrepared(c, "mb_get", 1, vals, lens, fmts, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) e = pg_error(c, r, "get");
  else if (PQntuples(r) == 0) e = err_new(MICA_NOT_FOUND, "postgres get: no such key");
  else buf_append(value, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
  PQclear(r);
  return e;
}

static mica_err *p_write(void *h, slice key, slice value) {
  bk_pg *b = h;
  PGconn *c = NULL;
  mica_err *e = pg_thread_conn(b, &c);
  if (e) return e;
  const char *vals[] = {(const char *)key.data, (const char *)value.data};
  const int lens[] = {(int)key.len, (int)value.len};
  const int fmts[] = {1, 1};
  PGresult *r = PQexecPrepared(c, "mb_put", 2, vals, lens, fmts, 1);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) e = pg_error(c, r, "upsert");
  PQclear(r);
  return e;
}

static mica_err *p_scan(void *h, slice start, uint32_t count, uint64_t *rows) {
  bk_pg *b = h;
  *rows = 0;
  PGconn *c = NULL;
  mica_err *e = pg_thread_conn(b, &c);
  if (e) return e;
  char limit[16];
  snprintf(limit, sizeof limit, "%u", count);
  const char *vals[] = {(const char *)start.data, limit};
  const int lens[] = {(int)start.len, 0};
  const int fmts[] = {1, 0}; /* the limit goes as text */
  PGresult *r = PQexecPrepared(c, "mb_scan", 2, vals, lens, fmts, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) e = pg_error(c, r, "scan");
  else *rows = (uint64_t)PQntuples(r);
  PQclear(r);
  return e;
}

static void p_close(void *h) {
  bk_pg *b = h;
  if (!b) return;
  for (pg_conn *pc = b->conns, *next; pc; pc = next) {
    next = pc->next;
    PQfinish(pc->c);
    free(pc);
  }
  pthread_key_delete(b->key);
  pthread_mutex_destroy(&b->mu);
  PQfreemem(b->ident);
  free(b->conninfo);
  free(b);
}

mica_err *bk_pg_open(const bk_config *cfg, backend *out) {
  bk_pg *b = xcalloc(1, sizeof *b);
  b->conninfo = xstrdup(cfg->address);
  b->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
  pthread_mutex_init(&b->mu, NULL);
  if (pthread_key_create(&b->key, NULL) != 0) {
    pthread_mutex_destroy(&b->mu);
    free(b->conninfo);
    free(b);
    return err_new(MICA_RESOURCE_EXHAUSTED, "postgres: no thread-specific key left");
  }
  /* One connection now: a wrong address or a server that would not keep
   * writes durable is reported before any thread starts. */
  PGconn *c = NULL;
  mica_err *e = pg_connect(b, &c);
  if (e == NULL) {
    b->ident = PQescapeIdentifier(c, cfg->table, strlen(cfg->table));
    if (b->ident == NULL) e = pg_error(c, NULL, "table name");
    else if (strlen(b->ident) > 200)
      e = err_new(MICA_INVALID_ARGUMENT, "postgres: table name '%s' is longer than 198 bytes",
                  cfg->table);
  }
  if (e == NULL) {
    PGresult *r = PQexec(c, "SHOW fsync");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) e = pg_error(c, r, "SHOW fsync");
    else if (strcmp(PQgetvalue(r, 0, 0), "on") != 0)
      e = err_new(MICA_INVALID_ARGUMENT,
                  "postgres: the server runs with fsync = %s, so its commits are not "
                  "durable; mica-bench compares durable writes only",
                  PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(c);
  if (e) {
    p_close(b);
    return e;
  }
  *out = (backend){.name = "postgres", .h = b, .prepare = p_prepare, .read = p_read,
                   .write = p_write, .scan = p_scan, .close = p_close};
  return NULL;
}
