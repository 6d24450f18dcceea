/* tls_reload: a long-running client picks up renewed TLS files.
 *
 * A gRPC channel keeps the certificate, key and CA it was created with for
 * its whole life, reconnects included. So at most once per
 * MCL_TLS_CHECK_US, on the way to a connection, the client compares the
 * files' stamps (device, inode, size, modification time: a rename into
 * place or an edit is seen) with those its channels were made from. When
 * one changed and the new set loads (parses, key belongs to the
 * certificate, not expired), the TLS generation goes up, and each
 * connection, the next time it is used, replaces its channel by a new one
 * reading the new files; the old channel is retired (calls already on it
 * finish there) like a stuck master channel (client_int.h). A set that
 * does not load is logged once and changes nothing; it is tried again
 * while it keeps changing (docs/security.md, "Client-side reload"). */
#include <string.h>
#include <sys/stat.h>

#include "client/client_int.h"
#include "common/env.h"
#include "common/log.h"

static mcl_stamp stamp_of(const char *path) {
  struct stat st;
  mcl_stamp s = {0};
  if (path != NULL && stat(path, &st) == 0) {
    s.dev = (uint64_t)st.st_dev;
    s.ino = (uint64_t)st.st_ino;
    s.size = (uint64_t)st.st_size;
    s.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
  }
  return s;
}

static void stamps_now(const mica_client *c, mcl_stamp out[3]) {
  out[0] = stamp_of(c->opts.tls_cert);
  out[1] = stamp_of(c->opts.tls_key);
  out[2] = stamp_of(c->opts.tls_ca);
}

static bool stamps_equal(const mcl_stamp a[3], const mcl_stamp b[3]) {
  return memcmp(a, b, 3 * sizeof *a) == 0;
}

void mcl_tls_init(mica_client *c) {
  pthread_mutex_init(&c->tls_mu, NULL);
  atomic_init(&c->tls_gen, 0);
  atomic_init(&c->tls_next_check_us, 0);
  stamps_now(c, c->tls_seen);
  memcpy(c->tls_failed, c->tls_seen, sizeof c->tls_seen);
}

void mcl_tls_destroy(mica_client *c) { pthread_mutex_destroy(&c->tls_mu); }

/* Raises tls_gen when the files changed and load. */
static void check_files(mica_client *c) {
  uint64_t now = env_now_micros(env_posix());
  uint64_t next = atomic_load(&c->tls_next_check_us);
  if (now < next ||
      !atomic_compare_exchange_strong(&c->tls_next_check_us, &next, now + MCL_TLS_CHECK_US))
    return;
  mcl_stamp cur[3];
  stamps_now(c, cur);
  pthread_mutex_lock(&c->tls_mu);
  if (!stamps_equal(cur, c->tls_seen)) {
    rpc_tls t = {c->opts.tls_cert, c->opts.tls_key, c->opts.tls_ca};
    mica_err *e = rpc_tls_check_channel_files(&t);
    if (e == NULL) {
      memcpy(c->tls_seen, cur, sizeof cur);
      memcpy(c->tls_failed, cur, sizeof cur);
      atomic_fetch_add(&c->tls_gen, 1);
      LOG_I("client: TLS files changed (%s); new connections use them",
            c->opts.tls_cert != NULL ? c->opts.tls_cert : c->opts.tls_ca);
    } else {
      if (!stamps_equal(cur, c->tls_failed))
        LOG_W("client: TLS files changed but do not load, the previous ones stay "
              "in use: %s", err_msg(e));
      memcpy(c->tls_failed, cur, sizeof cur);
      err_free(e);
    }
  }
  pthread_mutex_unlock(&c->tls_mu);
}

void mcl_tls_refresh(mica_client *c, mcl_conn *k) {
  if (c->opts.tls_ca == NULL) return;
  check_files(c);
  unsigned gen = atomic_load(&c->tls_gen);
  if (atomic_load(&k->gen) == gen) return;
  pthread_mutex_lock(&k->mu);
  if (atomic_load(&k->gen) != gen) {
    if (k->n_retired < MCL_MAX_RETIRED) {
      k->retired[k->n_retired++] = atomic_load(&k->ch);
      atomic_store(&k->ch, mcl_new_channel(c, k->address));
      LOG_D("client: new channel to %s with the renewed TLS files", k->address);
    } else {
      LOG_W("client: %s has had %d channels replaced; it keeps its TLS files "
            "until the client is reopened", k->address, MCL_MAX_RETIRED);
    }
    atomic_store(&k->gen, gen);
  }
  pthread_mutex_unlock(&k->mu);
}
