/* tt: the model map, the scan checker and the failure-at-every-call loop
 * shared by the tablet suites. */
#include "tests/tabletserver/tt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/layout.h"
#include "tabletserver/clog.h"
#include "tabletserver/manifest.h"
#include "tests/harness/testutil.h"

size_t tt_model_lower(const tt_model *m, slice k) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (slice_cmp(buf_slice(&m->keys[mid]), k) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

long tt_model_find(const tt_model *m, slice k) {
  size_t i = tt_model_lower(m, k);
  if (i < m->n && slice_eq(buf_slice(&m->keys[i]), k)) return (long)i;
  return -1;
}

void tt_model_put(tt_model *m, slice k, slice v) {
  size_t i = tt_model_lower(m, k);
  if (i < m->n && slice_eq(buf_slice(&m->keys[i]), k)) {
    buf_clear(&m->vals[i]);
    buf_append_slice(&m->vals[i], v);
    return;
  }
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 64;
    m->keys = xrealloc(m->keys, m->cap * sizeof(buf));
    m->vals = xrealloc(m->vals, m->cap * sizeof(buf));
  }
  memmove(&m->keys[i + 1], &m->keys[i], (m->n - i) * sizeof(buf));
  memmove(&m->vals[i + 1], &m->vals[i], (m->n - i) * sizeof(buf));
  m->keys[i] = (buf)BUF_INIT;
  m->vals[i] = (buf)BUF_INIT;
  buf_append_slice(&m->keys[i], k);
  buf_append_slice(&m->vals[i], v);
  m->n++;
}

void tt_model_del(tt_model *m, slice k) {
  long i = tt_model_find(m, k);
  if (i < 0) return;
  buf_free(&m->keys[i]);
  buf_free(&m->vals[i]);
  memmove(&m->keys[i], &m->keys[i + 1], (m->n - (size_t)i - 1) * sizeof(buf));
  memmove(&m->vals[i], &m->vals[i + 1], (m->n - (size_t)i - 1) * sizeof(buf));
  m->n--;
}

void tt_model_copy(tt_model *dst, const tt_model *src) {
  memset(dst, 0, sizeof(*dst));
  for (size_t i = 0; i < src->n; i++)
    tt_model_put(dst, buf_slice(&src->keys[i]), buf_slice(&src->vals[i]));
}

void tt_model_free(tt_model *m) {
  for (size_t i = 0; i < m->n; i++) {
    buf_free(&m->keys[i]);
    buf_free(&m->vals[i]);
  }
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof(*m));
}

static bool model_in_scan(slice k, const tab_scan_options *o, slice lo,
                          slice hi) {
  if (lo.len > 0 && slice_cmp(k, lo) < 0) return false;
  if (hi.len > 0 && slice_cmp(k, hi) >= 0) return false;
  if (o->start.len > 0 && slice_cmp(k, o->start) < 0) return false;
  if (o->end.len > 0 && slice_cmp(k, o->end) >= 0) return false;
  if (o->prefix.len > 0 && !slice_starts_with(k, o->prefix)) return false;
  return true;
}

size_t tt_check_scan(tablet *t, const tab_scan_options *o, const tt_model *m,
                     slice lo, slice hi) {
  size_t *want = xcalloc(m->n + 1, sizeof(size_t));
  size_t nw = 0;
  for (size_t i = 0; i < m->n; i++)
    if (model_in_scan(buf_slice(&m->keys[i]), o, lo, hi)) want[nw++] = i;
  if (o->reverse)
    for (size_t i = 0; i < nw / 2; i++) {
      size_t x = want[i];
      want[i] = want[nw - 1 - i];
      want[nw - 1 - i] = x;
    }
  if (o->limit > 0 && nw > o->limit) nw = o->limit;
  iter *it = NULL;
  TU_OK(tab_scan(t, o, &it));
  size_t got = 0;
  for (; iter_valid(it); iter_next(it), got++) {
    if (got >= nw) {
      buf e = BUF_INIT;
      slice_escape(iter_key(it), &e);
      fprintf(stderr, "scan yields extra key %s\n", (char *)e.data);
      buf_free(&e);
      CU_FAIL("scan yields more entries than the model");
      break;
    }
    slice wk = buf_slice(&m->keys[want[got]]);
    if (!slice_eq(iter_key(it), wk)) {
      buf a = BUF_INIT, b = BUF_INIT;
      slice_escape(iter_key(it), &a);
      slice_escape(wk, &b);
      fprintf(stderr, "scan entry %zu: got %s want %s (reverse %d)\n", got,
              (char *)a.data, (char *)b.data, o->reverse);
      buf_free(&a);
      buf_free(&b);
      CU_FAIL("scan key differs from the model");
      break;
    }
    if (!slice_eq(iter_value(it), buf_slice(&m->vals[want[got]]))) {
      CU_FAIL("scan value differs from the model");
      break;
    }
  }
  CU_ASSERT_PTR_NULL(iter_status(it));
  if (got < nw && !iter_valid(it)) {
    fprintf(stderr, "scan ended after %zu of %zu entries\n", got, nw);
    CU_FAIL("scan yields fewer entries than the model");
  }
  iter_close(it);
  free(want);
  return got;
}

void tt_options(tab_options *o) {
  tab_options_init(o);
  o->memtable_bytes = 16 << 10;
  o->max_immutable = 3;
  o->compaction_trigger = 3;
  o->stall_sst_count = 40;
  o->create_if_missing = true;
  o->sst.block_size = 1024;
}

res_pool *tt_res(env *e, size_t budget) {
  res_options ro;
  res_options_init(&ro);
  ro.memtable_budget = budget;
  ro.block_cache_bytes = 1 << 20;
  res_pool *r = NULL;
  TU_OK(res_new(e, &ro, &r));
  return r;
}

const char *tt_tablet_dir(const char *root, uint64_t id) {
  static char pool[64][512];
  static int next;
  char *p = pool[next++ % 64];
  char *tablets = layout_tablets_dir(root);
  buf d = BUF_INIT;
  layout_tablet_dir(tablets, id, &d);
  snprintf(p, 512, "%s", (const char *)d.data);
  buf_free(&d);
  free(tablets);
  return p;
}

const char *tt_tablets_dir(const char *root) {
  static char pool[16][512];
  static int next;
  char *p = pool[next++ % 16];
  char *tablets = layout_tablets_dir(root);
  snprintf(p, 512, "%s", tablets);
  free(tablets);
  return p;
}

void tt_check_get(tablet *t, const tt_model *m, slice k) {
  buf v = BUF_INIT;
  mica_err *err = tab_get(t, NULL, k, &v);
  long at = tt_model_find(m, k);
  if (at < 0) {
    if (err_code(err) != MICA_NOT_FOUND)
      fprintf(stderr, "get %.*s: expected NOT_FOUND, got %s\n", (int)k.len,
              (const char *)k.data, err ? err_msg(err) : "a value");
    CU_ASSERT_EQUAL(err_code(err), MICA_NOT_FOUND);
  } else {
    if (err != NULL)
      fprintf(stderr, "get %.*s: %s\n", (int)k.len, (const char *)k.data,
              err_msg(err));
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT(slice_eq(buf_slice(&v), buf_slice(&m->vals[at])));
  }
  err_free(err);
  buf_free(&v);
}

const char *tt_logs_root(const char *root) {
  static char pool[16][600];
  static int next;
  char *p = pool[next++ % 16];
  char *r = clog_logs_root(tt_tablets_dir(root));
  snprintf(p, 600, "%s", r);
  free(r);
  return p;
}

void tt_put(tablet *t, const char *k, const char *v) {
  TU_OK(tab_put(t, slice_from_str(k), slice_from_str(v), true));
}

void tt_expect(tablet *t, const char *k, const char *v) {
  buf got = BUF_INIT;
  mica_err *err = tab_get(t, NULL, slice_from_str(k), &got);
  if (v == NULL) {
    if (err == NULL) fprintf(stderr, "%s: found '%.*s'\n", k, (int)got.len, got.data);
    CU_ASSERT_EQUAL(err_code(err), MICA_NOT_FOUND);
  } else {
    if (err != NULL) fprintf(stderr, "%s: %s\n", k, err_msg(err));
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT(err == NULL && slice_eq(buf_slice(&got), slice_from_str(v)));
  }
  err_free(err);
  buf_free(&got);
}

void tt_expect_err(mica_err *err, int code, const char *has,
                   const char *has2) {
  CU_ASSERT_EQUAL(err_code(err), code);
  if (has != NULL) CU_ASSERT(err != NULL && strstr(err_msg(err), has) != NULL);
  if (has2 != NULL)
    CU_ASSERT(err != NULL && strstr(err_msg(err), has2) != NULL);
  if (err != NULL) fprintf(stderr, "\n  (expected) %s\n", err_msg(err));
  err_free(err);
}

size_t tt_check_no_leaks(const char *root) {
  char tablets[1200];
  snprintf(tablets, sizeof(tablets), "%s", tt_tablets_dir(root));
  char **dirs;
  size_t nd;
  TU_OK(env_list(env_posix(), tablets, &dirs, &nd));
  char (*refs)[256] = xcalloc(512, 256);
  size_t nrefs = 0;
  for (size_t i = 0; i < nd; i++) {
    char d[1600];
    snprintf(d, sizeof(d), "%s/%s", tablets, dirs[i]);
    man_state m;
    man_init(&m);
    if (man_read(env_posix(), d, &m) != NULL) continue;
    if (m.state == MAN_LIVE || m.state == MAN_SPLITTING)
      for (size_t j = 0; j < m.n_ssts && nrefs < 512; j++) {
        if (strncmp(m.ssts[j].path, "../", 3) == 0)
          snprintf(refs[nrefs++], 256, "%s", m.ssts[j].path + 3);
        else
          snprintf(refs[nrefs++], 256, "%s/%s", dirs[i], m.ssts[j].path);
      }
    man_clear(&m);
  }
  for (size_t i = 0; i < nd; i++) {
    if (strstr(dirs[i], "-tmp") != NULL)
      fprintf(stderr, "left behind %s (%s)\n", dirs[i], root);
    CU_ASSERT(strstr(dirs[i], "-tmp") == NULL);
    char d[1600];
    snprintf(d, sizeof(d), "%s/%s", tablets, dirs[i]);
    char **files;
    size_t nf;
    if (env_list(env_posix(), d, &files, &nf) != NULL) continue;
    for (size_t j = 0; j < nf; j++) {
      if (strncmp(files[j], "wal-", 4) == 0 ||
          strstr(files[j], ".tmp.") != NULL)
        fprintf(stderr, "left behind %s/%s (%s)\n", dirs[i], files[j], root);
      CU_ASSERT(strncmp(files[j], "wal-", 4) != 0);
      CU_ASSERT(strstr(files[j], ".tmp.") == NULL);
      if (strncmp(files[j], "sst-", 4) != 0) continue;
      char c[1200];
      snprintf(c, sizeof(c), "%s/%s", dirs[i], files[j]);
      bool found = false;
      for (size_t k = 0; k < nrefs; k++) found |= strcmp(refs[k], c) == 0;
      if (!found) fprintf(stderr, "leaked %s (%s)\n", c, root);
      CU_ASSERT(found);
    }
    env_free_names(files, nf);
  }
  env_free_names(dirs, nd);
  free(refs);
  return nd;
}

/* ---- split daughters collecting their parent ---- */

bool tt_only_own_files(const char *dir) {
  man_state m;
  man_init(&m);
  mica_err *err = man_read(env_posix(), dir, &m);
  bool ok = err == NULL && m.n_ssts > 0;
  for (size_t i = 0; ok && i < m.n_ssts; i++)
    if (strchr(m.ssts[i].path, '/') != NULL) ok = false;
  err_free(err);
  man_clear(&m);
  return ok;
}

bool tt_wait_daughters_own(const char *root, uint64_t parent_id,
                           tablet *left, uint64_t left_id, tablet *right,
                           uint64_t right_id, slice key, const tt_model *m) {
  /* A daughter counts its compaction just after installing it, so the
   * counts are waited for too. */
  bool done = false;
  tab_stats ls, rs;
  for (int i = 0; i < 6000 && !done; i++) { /* 60 s */
    tab_get_stats(left, &ls);
    tab_get_stats(right, &rs);
    done = !env_exists(env_posix(), tt_tablet_dir(root, parent_id)) &&
           tt_only_own_files(tt_tablet_dir(root, left_id)) &&
           tt_only_own_files(tt_tablet_dir(root, right_id)) &&
           ls.compactions >= 1 && rs.compactions >= 1;
    if (!done) env_sleep_micros(env_posix(), 10000);
  }
  if (!done)
    fprintf(stderr, "parent %llu not collected: %s\n",
            (unsigned long long)parent_id, root);
  CU_ASSERT_TRUE(done);
  tab_get_stats(left, &ls);
  tab_get_stats(right, &rs);
  CU_ASSERT_EQUAL(ls.puts + rs.puts, 0);
  CU_ASSERT(ls.compactions >= 1 && rs.compactions >= 1);
  uint64_t removed = 0;
  TU_OK(tab_collect_garbage(env_posix(), tt_tablets_dir(root), &removed));
  CU_ASSERT_EQUAL(removed, 0);
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(left, &so, m, slice_make(NULL, 0), key);
  tt_check_scan(right, &so, m, key, slice_make(NULL, 0));
  return done;
}

void tt_check_settled(res_pool *r, const char *root, uint64_t id, slice lo,
                      slice hi, uint64_t epoch, const tab_options *o,
                      const tt_model *m) {
  tablet *t = NULL;
  TU_OK(tab_open(r, tt_tablet_dir(root, id), id, lo, hi, epoch, o, &t));
  if (t == NULL) return;
  tab_maintain(t);
  env_sleep_micros(env_posix(), 100000);
  tab_stats st;
  tab_get_stats(t, &st);
  CU_ASSERT_EQUAL(st.compactions, 0);
  tab_scan_options so;
  tab_scan_options_init(&so);
  tt_check_scan(t, &so, m, lo, hi);
  TU_OK(tab_close(t));
}

/* ---- a failure at every call of one kind ---- */

bool tt_run_step(tt_run *r, mica_err *err) {
  if (r->failed || err != NULL) {
    err_free(err);
    r->failed = true;
    return false;
  }
  return true;
}

static mica_err *model_apply(void *arg, uint64_t seq, uint8_t kind, slice key,
                             slice value) {
  (void)seq;
  tt_model *m = arg;
  if (kind == 1) tt_model_put(m, key, value);
  else tt_model_del(m, key);
  return NULL;
}

bool tt_run_write(tt_run *r, tablet *t, wbatch *b) {
  if (r->failed) return false;
  tt_model_free(&r->pending);
  tt_model_copy(&r->pending, &r->acked);
  TU_OK(wbatch_iterate(b, model_apply, &r->pending));
  if (!tt_run_step(r, tab_write(t, b, true))) return false;
  tt_model_free(&r->acked);
  tt_model_copy(&r->acked, &r->pending);
  return true;
}

bool tt_run_put(tt_run *r, tablet *t, slice key, slice value) {
  wbatch *b = wbatch_new();
  wbatch_put(b, key, value);
  bool ok = tt_run_write(r, t, b);
  wbatch_free(b);
  return ok;
}

bool tt_run_batch(tt_run *r, tablet *t, int first, int n, int gen) {
  wbatch *b = wbatch_new();
  char k[16], v[32];
  for (int i = first; i < first + n; i++) {
    snprintf(k, sizeof(k), "k%03d", i);
    snprintf(v, sizeof(v), "b%d-%d", i, gen);
    if (i % 3 == 0) wbatch_delete(b, slice_from_str(k));
    else wbatch_put(b, slice_from_str(k), slice_from_str(v));
  }
  bool ok = tt_run_write(r, t, b);
  wbatch_free(b);
  return ok;
}

static bool same(const tt_model *a, const tt_model *b) {
  if (a->n != b->n) return false;
  for (size_t i = 0; i < a->n; i++)
    if (!slice_eq(buf_slice(&a->keys[i]), buf_slice(&b->keys[i])) ||
        !slice_eq(buf_slice(&a->vals[i]), buf_slice(&b->vals[i])))
      return false;
  return true;
}

void tt_run_check(const tt_run *r, tablet **ts, size_t n, uint64_t at) {
  tt_model got;
  memset(&got, 0, sizeof(got));
  for (size_t i = 0; i < n; i++) {
    iter *it;
    TU_OK(tab_scan(ts[i], NULL, &it));
    for (; iter_valid(it); iter_next(it))
      tt_model_put(&got, iter_key(it), iter_value(it));
    CU_ASSERT_PTR_NULL(iter_status(it));
    iter_close(it);
  }
  bool ok = same(&got, &r->acked) || (r->failed && same(&got, &r->pending));
  if (!ok)
    fprintf(stderr,
            "failing call %llu: %zu keys read, %zu acknowledged, %zu with "
            "the write in flight\n",
            (unsigned long long)at, got.n, r->acked.n, r->pending.n);
  CU_ASSERT(ok);
  tt_model_free(&got);
}

void tt_run_free(tt_run *r) {
  tt_model_free(&r->acked);
  tt_model_free(&r->pending);
  r->failed = false;
}

/* A fresh root `name` under `base`, prepared when the plan says how. */
static void fresh_root(const tt_fail_plan *p, const char *base,
                       const char *name, char *root, size_t cap, tt_run *r) {
  snprintf(root, cap, "%s/%s", base, name);
  TU_OK(env_mkdirs(env_posix(), root));
  memset(r, 0, sizeof(*r));
  if (p->prepare != NULL) p->prepare(root, r, p->arg);
  tt_model_copy(&r->pending, &r->acked);
}

void tt_fail_every(const tt_fail_plan *p) {
  if (access("/dev/shm", W_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
  const char *base = tu_tmpdir();
  char root[600];
  tt_run r;
  /* Dry run: count the calls. */
  fresh_root(p, base, "dry", root, sizeof(root), &r);
  env_fault *f = env_fault_new(env_posix());
  p->workload(env_fault_env(f), root, &r, p->arg);
  CU_ASSERT_FALSE(r.failed);
  uint64_t calls = env_fault_count(f, p->op);
  env_fault_free(f);
  tt_run_free(&r);
  TU_OK(env_remove_tree(env_posix(), root));
  fprintf(stderr, "workload makes %llu %s\n", (unsigned long long)calls,
          p->what);
  CU_ASSERT(calls > p->min_calls);

  for (uint64_t i = 1; i <= calls + 1; i++) {
    char name[32];
    snprintf(name, sizeof(name), "fail%llu", (unsigned long long)i);
    fresh_root(p, base, name, root, sizeof(root), &r);
    f = env_fault_new(env_posix());
    env_fault_fail_nth(f, p->op, i, p->crash);
    p->workload(env_fault_env(f), root, &r, p->arg);
    if (p->crash) env_fault_crash(f);
    env_fault_free(f);
    if (i <= calls && p->crash && !r.failed)
      fprintf(stderr, "%s %llu failed silently\n", p->what,
              (unsigned long long)i);
    if (i <= calls && p->crash) CU_ASSERT(r.failed);
    p->verify(root, &r, i, p->arg);
    tt_run_free(&r);
    TU_OK(env_remove_tree(env_posix(), root));
  }
}
