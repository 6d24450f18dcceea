/* prom: writing the Prometheus text exposition format (version 0.0.4)
 * into a buf, for the /metrics pages of the master and the tablet server.
 *
 * A metric family is written as its HELP and TYPE lines (prom_head) and
 * then its samples, each a name, optional labels and a value:
 *
 *   prom_head(out, "mica_x_total", "counter", "Things done.");
 *   prom_sample_begin(out, "mica_x_total");
 *   prom_label(out, "kind", kind);        // {kind="..."
 *   prom_sample_end(out, (double)n);      // } 12
 *
 * Label values may hold any bytes: they are written as ASCII through
 * slice_escape (every byte outside printable ASCII as \xNN) and then with
 * `\` and `"` escaped as the format asks, so a hostile name cannot break a
 * line or forge a label. Names and HELP texts are the caller's constants
 * and are written as given.
 *
 * Thread-safety: none needed; every call writes only to `out`. */
#ifndef MICA_COMMON_PROM_H
#define MICA_COMMON_PROM_H

#include <stdint.h>

#include "common/slice.h"

/* "# HELP name help\n# TYPE name type\n". */
void prom_head(buf *out, const char *name, const char *type, const char *help);

/* A whole label-less family: its head and its one sample. */
void prom_gauge(buf *out, const char *name, uint64_t v, const char *help);
void prom_counter(buf *out, const char *name, uint64_t v, const char *help);

/* Starts a sample line: writes `name`. */
void prom_sample_begin(buf *out, const char *name);
/* Adds label name="value" (the `{` or `,` before it is written as needed). */
void prom_label(buf *out, const char *name, const char *value);
/* Adds label name="v" for an unsigned number. */
void prom_label_u(buf *out, const char *name, uint64_t v);
/* Ends the line: closes the labels if any, then the value. */
void prom_sample_end(buf *out, double v);
/* The same with an exact unsigned value (counters past 2^53). */
void prom_sample_end_u(buf *out, uint64_t v);

/* A value as the format writes it: NaN, +Inf, -Inf, or %.17g. */
void prom_num(buf *out, double v);

#endif
