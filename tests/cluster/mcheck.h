/* mcheck: checks through the real client library (libmica, mica/mica.h)
 * that the snapshot suites (test_cluster_snapshot, test_cluster_s3_snapshot)
 * share. Each records CUnit failures and prints what it got. */
#ifndef MICA_TESTS_CLUSTER_MCHECK_H
#define MICA_TESTS_CLUSTER_MCHECK_H

#include <stdbool.h>

#include "mica/mica.h"

/* Fails `what` unless `rc` is `code` and, when `part` is not NULL, the
 * error message (mica_errmsg) contains it. */
void mcheck_rc(int rc, int code, const char *part, const char *what);

/* Key i as the suites write it: "k%03d" (out holds 16 bytes). */
void mcheck_key(int i, char *out);

/* Creates table `t` of `tablets` tablets (1 to 64) split evenly over the
 * keys k000..k099; fatal on failure. */
void mcheck_create(mica_client *c, const char *t, int tablets);

/* Whether ListTables names `t`. */
bool mcheck_table_listed(mica_client *c, const char *t);

#endif
