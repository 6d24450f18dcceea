/* mzk_view: what one master process knows of the election, gathered for
 * its status page, JSON API and metrics (see mzk_view_get in mzk.h). */
#include <stdio.h>
#include <string.h>

#include "master/zk/mzk.h"

void mzk_view_get(mzk_elector *e, mzk_reader *r, const char *self_rpc,
                  int asked_timeout_ms, mzk_view *v) {
  memset(v, 0, sizeof *v);
  v->session = MZK_SESSION_CONNECTING;
  v->session_timeout_ms = asked_timeout_ms;
  if (e != NULL) {
    mzk_elector_stats st;
    mzk_elector_get_stats(e, &st);
    v->session = st.session_state;
    v->session_id = st.session_id;
    if (st.session_timeout_ms > 0) v->session_timeout_ms = st.session_timeout_ms;
    uint64_t epoch = 0;
    if (mzk_elector_is_active(e, &epoch)) {
      v->self_active = true;
      v->self_epoch = epoch;
    }
  }
  if (r != NULL) v->have_active = mzk_reader_get(r, &v->active);
  if (v->self_active && self_rpc != NULL &&
      (!v->have_active || v->active.epoch < v->self_epoch)) {
    /* The reader has not seen this process's own record yet. */
    v->have_active = true;
    v->active.epoch = v->self_epoch;
    snprintf(v->active.rpc_addr, sizeof v->active.rpc_addr, "%s", self_rpc);
    v->active.http_addr[0] = '\0';
  }
  if (r == NULL) return;
  mzk_member all[MZK_MAX_MEMBERS];
  size_t n = 0;
  v->standbys_known = mzk_reader_candidates(r, all, MZK_MAX_MEMBERS, &n);
  if (!v->standbys_known) return;
  size_t kept = n < MZK_MAX_MEMBERS ? n : MZK_MAX_MEMBERS;
  for (size_t i = 0; i < kept; i++) {
    if (v->have_active && strcmp(all[i].rpc_addr, v->active.rpc_addr) == 0) {
      if (v->active.http_addr[0] == '\0')
        snprintf(v->active.http_addr, sizeof v->active.http_addr, "%s",
                 all[i].http_addr);
      continue;
    }
    v->standbys[v->n_shown++] = all[i];
  }
  /* Candidates beyond the list kept are counted as standbys. */
  v->n_standbys = v->n_shown + (n - kept);
}
