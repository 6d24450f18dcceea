#include "tests/cluster/mcheck.h"

#include <stdio.h>
#include <string.h>

#include "tests/harness/testutil.h"

void mcheck_rc(int rc, int code, const char *part, const char *what) {
  const char *msg = rc != MICA_OK ? mica_errmsg() : "";
  if (rc != code || (part != NULL && strstr(msg, part) == NULL)) {
    fprintf(stderr, "%s: got %s \"%s\", expected %s containing \"%s\"\n",
            what, mica_code_name(rc), msg, mica_code_name(code),
            part ? part : "");
    CU_FAIL(what);
  }
}

void mcheck_key(int i, char *out) { snprintf(out, 16, "k%03d", i); }

void mcheck_create(mica_client *c, const char *t, int tablets) {
  CU_ASSERT_FATAL(tablets >= 1 && tablets <= 64);
  mica_key splits[64] = {{0}};
  char keys[64][16];
  for (int i = 1; i < tablets; i++) {
    mcheck_key(i * 100 / tablets, keys[i]);
    splits[i - 1] = (mica_key){keys[i], strlen(keys[i])};
  }
  int rc = mica_create_table(c, t, splits, (size_t)(tablets - 1));
  if (rc != MICA_OK) fprintf(stderr, "create %s: %s\n", t, mica_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, MICA_OK);
}

bool mcheck_table_listed(mica_client *c, const char *t) {
  mica_table_info *v = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL(mica_list_tables(c, &v, &n), MICA_OK);
  bool hit = false;
  for (size_t i = 0; i < n; i++) hit |= strcmp(v[i].name, t) == 0;
  mica_free(v);
  return hit;
}
