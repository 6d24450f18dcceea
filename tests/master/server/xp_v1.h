/* xp_v1: EXPORT files of format version 1 (before levels), written the
 * way the code before version 2 wrote them, for the tests that check a
 * version 1 export still decodes and restores (test_export_fmt,
 * test_cluster_s3_snapshot). Nothing outside tests writes version 1. */
#ifndef MICA_TESTS_MASTER_SERVER_XP_V1_H
#define MICA_TESTS_MASTER_SERVER_XP_V1_H

#include <stdint.h>

#include "master/server/export_fmt.h"

/* Appends the version 1 payload of `x` (levels left out) to `p`. */
void xp_v1_payload(const xport *x, buf *p);
/* Appends `payload` framed as an EXPORT file of `version` to `out`. */
void xp_frame(const buf *payload, uint32_t version, buf *out);

#endif
