/* s3_xml: S3's XML answers, read with expat's streaming parser.
 *
 * Every answer Mica reads is shallow (ListBucketResult/Contents/Key is the
 * deepest path), so one walker serves them all: it keeps the names of the
 * open elements and the text of the innermost one, and at each end tag
 * hands (parent, name, text) to a per-answer callback. Depth and text
 * length are bounded, so a hostile body costs bounded memory per element. */
#include "common/s3/s3_xml.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

enum { XW_DEPTH = 16, XW_NAME = 64, XW_TEXT_MAX = 64 * 1024 };

typedef struct xml_walk {
  char names[XW_DEPTH][XW_NAME];
  int depth;     /* open elements; may exceed XW_DEPTH (not recorded) */
  buf text;      /* text of the innermost open element */
  bool too_long; /* an element's text passed XW_TEXT_MAX */
  void (*on_end)(void *arg, const char *parent, const char *name,
                 const char *text);
  void *arg;
} xml_walk;

static void xw_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
  (void)attrs;
  xml_walk *w = ud;
  if (w->depth < XW_DEPTH) {
    strncpy(w->names[w->depth], name, XW_NAME - 1);
    w->names[w->depth][XW_NAME - 1] = '\0';
  }
  w->depth++;
  buf_clear(&w->text);
}

static void xw_end(void *ud, const XML_Char *name) {
  (void)name;
  xml_walk *w = ud;
  w->depth--;
  if (w->depth < XW_DEPTH) {
    const char *parent = w->depth > 0 ? w->names[w->depth - 1] : "";
    buf_push(&w->text, 0);
    w->on_end(w->arg, parent, w->names[w->depth], (const char *)w->text.data);
  }
  buf_clear(&w->text);
}

static void xw_text(void *ud, const XML_Char *s, int len) {
  xml_walk *w = ud;
  if (w->text.len + (size_t)len > XW_TEXT_MAX) {
    w->too_long = true;
    return;
  }
  buf_append(&w->text, s, (size_t)len);
}

/* Runs `on_end` over every element of `body`. CORRUPTION names the parse
 * error and its position. */
static mica_err *xml_walk_body(slice body,
                               void (*on_end)(void *, const char *,
                                              const char *, const char *),
                               void *arg) {
  xml_walk w = {.on_end = on_end, .arg = arg};
  XML_Parser p = XML_ParserCreate(NULL);
  if (p == NULL) return err_new(MICA_RESOURCE_EXHAUSTED, "xml: out of memory");
  XML_SetUserData(p, &w);
  XML_SetElementHandler(p, xw_start, xw_end);
  XML_SetCharacterDataHandler(p, xw_text);
  mica_err *err = NULL;
  if (body.len > INT32_MAX) {
    err = err_new(MICA_CORRUPTION, "xml: answer of %zu bytes", body.len);
  } else if (XML_Parse(p, (const char *)body.data, (int)body.len, 1) ==
             XML_STATUS_ERROR) {
    err = err_new(MICA_CORRUPTION, "xml: %s at line %lu column %lu",
                  XML_ErrorString(XML_GetErrorCode(p)),
                  (unsigned long)XML_GetCurrentLineNumber(p),
                  (unsigned long)XML_GetCurrentColumnNumber(p));
  } else if (w.too_long) {
    err = err_new(MICA_CORRUPTION, "xml: element text over %d bytes",
                  XW_TEXT_MAX);
  }
  XML_ParserFree(p);
  buf_free(&w.text);
  return err;
}

/* ---- errors ---- */

typedef struct err_doc {
  bool is_error;
  char *code, *msg;
  size_t code_n, msg_n;
} err_doc;

static void copy_trunc(char *dst, size_t n, const char *src) {
  if (n == 0) return;
  size_t k = strlen(src);
  if (k >= n) k = n - 1;
  memcpy(dst, src, k);
  dst[k] = '\0';
}

static void err_on_end(void *arg, const char *parent, const char *name,
                       const char *text) {
  err_doc *d = arg;
  if (parent[0] == '\0' && strcmp(name, "Error") == 0) d->is_error = true;
  if (strcmp(parent, "Error") != 0) return;
  if (strcmp(name, "Code") == 0) copy_trunc(d->code, d->code_n, text);
  if (strcmp(name, "Message") == 0) copy_trunc(d->msg, d->msg_n, text);
}

bool s3_xml_error(slice body, char *code, size_t code_n, char *msg,
                  size_t msg_n) {
  if (code_n > 0) code[0] = '\0';
  if (msg_n > 0) msg[0] = '\0';
  err_doc d = {false, code, msg, code_n, msg_n};
  mica_err *err = xml_walk_body(body, err_on_end, &d);
  if (err != NULL) {
    err_free(err);
    return false;
  }
  return d.is_error;
}

/* ---- listings ---- */

typedef struct list_doc {
  s3_list_page *p;
  size_t key_cap, prefix_cap;
  bool bad_size;
} list_doc;

static void list_on_end(void *arg, const char *parent, const char *name,
                        const char *text) {
  list_doc *d = arg;
  s3_list_page *p = d->p;
  if (strcmp(parent, "Contents") == 0 && strcmp(name, "Key") == 0) {
    if (p->nkeys == d->key_cap) {
      d->key_cap = d->key_cap ? d->key_cap * 2 : 64;
      p->keys = xrealloc(p->keys, d->key_cap * sizeof(*p->keys));
      p->sizes = xrealloc(p->sizes, d->key_cap * sizeof(*p->sizes));
    }
    p->keys[p->nkeys] = xstrdup(text);
    p->sizes[p->nkeys] = UINT64_MAX;
    p->nkeys++;
  } else if (strcmp(parent, "Contents") == 0 && strcmp(name, "Size") == 0) {
    /* Size follows Key inside one Contents element in S3's answers; a
     * Size before any Key is ignored rather than misattributed. */
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != '\0') d->bad_size = true;
    else if (p->nkeys > 0) p->sizes[p->nkeys - 1] = v;
  } else if (strcmp(parent, "CommonPrefixes") == 0 &&
             strcmp(name, "Prefix") == 0) {
    if (p->nprefixes == d->prefix_cap) {
      d->prefix_cap = d->prefix_cap ? d->prefix_cap * 2 : 16;
      p->prefixes = xrealloc(p->prefixes, d->prefix_cap * sizeof(char *));
    }
    p->prefixes[p->nprefixes++] = xstrdup(text);
  } else if (strcmp(parent, "ListBucketResult") == 0) {
    if (strcmp(name, "IsTruncated") == 0)
      p->truncated = strcmp(text, "true") == 0;
    else if (strcmp(name, "NextContinuationToken") == 0 && text[0] != '\0') {
      free(p->next_token);
      p->next_token = xstrdup(text);
    }
  }
}

mica_err *s3_xml_list(slice body, s3_list_page *out) {
  memset(out, 0, sizeof(*out));
  list_doc d = {.p = out};
  mica_err *err = xml_walk_body(body, list_on_end, &d);
  if (err != NULL) return err_wrap(err, "list answer");
  if (d.bad_size)
    return err_new(MICA_CORRUPTION, "list answer: a Size is not a number");
  if (out->truncated && out->next_token == NULL)
    return err_new(MICA_CORRUPTION,
                   "list answer: truncated page without NextContinuationToken");
  return NULL;
}

void s3_list_page_free(s3_list_page *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->nkeys; i++) free(p->keys[i]);
  for (size_t i = 0; i < p->nprefixes; i++) free(p->prefixes[i]);
  free(p->keys);
  free(p->sizes);
  free(p->prefixes);
  free(p->next_token);
  memset(p, 0, sizeof(*p));
}

/* ---- one element ---- */

typedef struct find_doc {
  const char *name;
  char *found;
} find_doc;

static void find_on_end(void *arg, const char *parent, const char *name,
                        const char *text) {
  (void)parent;
  find_doc *d = arg;
  if (d->found == NULL && strcmp(name, d->name) == 0) d->found = xstrdup(text);
}

mica_err *s3_xml_find(slice body, const char *name, char **out) {
  *out = NULL;
  find_doc d = {name, NULL};
  mica_err *err = xml_walk_body(body, find_on_end, &d);
  if (err != NULL) {
    free(d.found);
    return err;
  }
  if (d.found == NULL)
    return err_new(MICA_NOT_FOUND, "xml: no <%s> element", name);
  *out = d.found;
  return NULL;
}

void s3_xml_escape(const char *s, buf *out) {
  for (; *s != '\0'; s++) {
    switch (*s) {
      case '&': buf_append(out, "&amp;", 5); break;
      case '<': buf_append(out, "&lt;", 4); break;
      case '>': buf_append(out, "&gt;", 4); break;
      case '"': buf_append(out, "&quot;", 6); break;
      case '\'': buf_append(out, "&apos;", 6); break;
      default: buf_push(out, (uint8_t)*s);
    }
  }
}
