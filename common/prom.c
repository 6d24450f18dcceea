/* prom: the Prometheus text format writer (see prom.h).
 *
 * Whether a sample line has labels yet is read from the line itself (the
 * bytes since its last newline): keeping no state between calls lets the
 * callers interleave plain buf writes with these helpers freely. */
#include "common/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void put(buf *out, const char *s) { buf_append(out, s, strlen(s)); }

/* True when the sample line being written already has a `{`. */
static bool in_labels(const buf *out) {
  for (size_t i = out->len; i > 0; i--) {
    uint8_t c = out->data[i - 1];
    if (c == '\n') return false;
    if (c == '{') return true;
  }
  return false;
}

void prom_head(buf *out, const char *name, const char *type,
               const char *help) {
  put(out, "# HELP ");
  put(out, name);
  buf_push(out, ' ');
  put(out, help);
  put(out, "\n# TYPE ");
  put(out, name);
  buf_push(out, ' ');
  put(out, type);
  buf_push(out, '\n');
}

void prom_gauge(buf *out, const char *name, uint64_t v, const char *help) {
  prom_head(out, name, "gauge", help);
  prom_sample_begin(out, name);
  prom_sample_end_u(out, v);
}

void prom_counter(buf *out, const char *name, uint64_t v, const char *help) {
  prom_head(out, name, "counter", help);
  prom_sample_begin(out, name);
  prom_sample_end_u(out, v);
}

void prom_sample_begin(buf *out, const char *name) { put(out, name); }

void prom_label(buf *out, const char *name, const char *value) {
  buf_push(out, in_labels(out) ? ',' : '{');
  put(out, name);
  put(out, "=\"");
  buf esc = BUF_INIT;
  slice_escape(slice_from_str(value), &esc);
  for (size_t i = 0; i < esc.len; i++) {
    if (esc.data[i] == '\\' || esc.data[i] == '"') buf_push(out, '\\');
    buf_push(out, esc.data[i]);
  }
  buf_free(&esc);
  buf_push(out, '"');
}

void prom_label_u(buf *out, const char *name, uint64_t v) {
  char num[24];
  snprintf(num, sizeof(num), "%" PRIu64, v);
  prom_label(out, name, num);
}

static void end_labels(buf *out) {
  if (in_labels(out)) buf_push(out, '}');
  buf_push(out, ' ');
}

void prom_num(buf *out, double v) {
  char num[40];
  if (isnan(v)) snprintf(num, sizeof(num), "NaN");
  else if (isinf(v)) snprintf(num, sizeof(num), v > 0 ? "+Inf" : "-Inf");
  else snprintf(num, sizeof(num), "%.17g", v);
  put(out, num);
}

void prom_sample_end(buf *out, double v) {
  end_labels(out);
  prom_num(out, v);
  buf_push(out, '\n');
}

void prom_sample_end_u(buf *out, uint64_t v) {
  char num[24];
  snprintf(num, sizeof(num), "%" PRIu64 "\n", v);
  end_labels(out);
  put(out, num);
}
