/* s3_xml: the few S3 XML answers Mica reads, parsed with expat.
 *
 * S3 answers errors, listings, multipart-upload starts and completions and
 * server-side copies in XML. Bodies come from the network and are never
 * trusted: a body that is not well-formed XML, or lacks what the caller
 * needs, is an error naming what was missing, never a crash. Keys and
 * tokens are returned decoded (expat resolves entities).
 *
 * Thread-safety: plain functions over caller-owned values. */
#ifndef MICA_COMMON_S3_S3_XML_H
#define MICA_COMMON_S3_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/slice.h"

/* True if `body` is an S3 <Error> document; then `code` and `msg` hold its
 * Code and Message (truncated to their sizes, "" when absent). */
bool s3_xml_error(slice body, char *code, size_t code_n, char *msg,
                  size_t msg_n);

/* One page of a ListObjectsV2 answer. */
typedef struct s3_list_page {
  char **keys;         /* Contents/Key, in the order given */
  uint64_t *sizes;     /* Contents/Size, parallel to keys */
  size_t nkeys;
  char **prefixes;     /* CommonPrefixes/Prefix */
  size_t nprefixes;
  bool truncated;      /* IsTruncated */
  char *next_token;    /* NextContinuationToken; NULL when absent */
} s3_list_page;

/* Parses a ListBucketResult. CORRUPTION names a malformed body or a
 * truncated page without a continuation token. Caller frees with
 * s3_list_page_free (also on failure). */
mica_err *s3_xml_list(slice body, s3_list_page *out);
void s3_list_page_free(s3_list_page *p);

/* The text of the first element called `name` anywhere in `body`
 * ("UploadId"); NOT_FOUND if there is none, CORRUPTION if the body is not
 * XML. Caller frees *out. */
mica_err *s3_xml_find(slice body, const char *name, char **out);

/* Appends `s` to `out` with &, <, >, " and ' escaped, for request bodies. */
void s3_xml_escape(const char *s, buf *out);

#endif
