/* The OTLP JSON mapping of an ExportTraceServiceRequest (and of an
 * ExportMetricsServiceRequest): hex ids, integer
 * enums, lowerCamelCase keys, 64-bit integers as strings. One line, no
 * trailing newline. */
#ifndef OTLPAUTO_ENCODE_JSON_H
#define OTLPAUTO_ENCODE_JSON_H

#include <stdbool.h>

#include "buf.h"
#include "encode_metrics.h"
#include "export_model.h"

/* Appends to out; false when memory is short. */
bool oa_json_batch_encode(const struct oa_export_batch *batch, struct oa_buf *out);
/* The same for an ExportMetricsServiceRequest. */
bool oa_json_metrics_encode(const struct oa_metrics_export *m, struct oa_buf *out);

#endif
