/* Metrics out of the exporter: an ExportMetricsServiceRequest (OTLP
 * protobuf) or console lines, from the sums of src/metrics.h. Off the hot
 * path and infrequent (one request per export interval): nested messages are
 * written forward and moved behind their length prefix. */
#ifndef OTLPAUTO_ENCODE_METRICS_H
#define OTLPAUTO_ENCODE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "export_model.h"
#include "metrics.h"

struct oa_metric_point {
	uint8_t metric;			 /* enum oa_metric */
	const struct oa_metric_key *key; /* NULL: the otel.metric.overflow series */
	uint64_t buckets[OA_METRIC_BUCKETS];
	uint64_t count;
	double sum_s;
};

/* A point of otlpauto.spans, the shim's own telemetry: how many of this
 * process's spans had an outcome (a monotonic sum, in the scope "otlpauto"). */
struct oa_span_count {
	const char *outcome; /* otlpauto.span.outcome: produced, exported, sampled_out, dropped */
	const char *reason;  /* otlpauto.drop.reason of dropped ones, else NULL */
	uint64_t value;
};
#define OA_SPANS_METRIC	     "otlpauto.spans"
#define OA_SPANS_DESCRIPTION "Spans this process produced, and what became of them"
#define OA_SPANS_SCOPE	     "otlpauto"

struct oa_metrics_export {
	const struct oa_attr *resource_attrs;
	size_t n_resource_attrs;
	struct oa_str scope_version; /* of every scope (the histograms': their metric's) */
	uint64_t start_unix_nano, time_unix_nano;
	bool delta;			      /* AGGREGATION_TEMPORALITY_DELTA, else CUMULATIVE */
	const struct oa_metric_point *points; /* grouped by metric */
	size_t n_points;
	const struct oa_span_count *span_counts; /* otlpauto.spans */
	size_t n_span_counts;
};

/* A span count's attributes (out holds 2). Returns the count. */
size_t oa_span_count_attrs(const struct oa_span_count *c, struct oa_attr *out);

/* A point's attributes; their text lives in scratch. Returns the count. */
#define OA_METRIC_ATTRS_MAX 8
struct oa_metric_attr_text {
	char status[8];
	char error[32];
	/* made valid UTF-8 (3 bytes per byte at most) */
	char address[3 * OA_METRIC_ADDRESS_MAX];
	char error_text[3 * OA_METRIC_ERROR_TEXT_MAX];
	char name_space[3 * OA_METRIC_DB_NAMESPACE_MAX];
	char operation[3 * OA_METRIC_DB_OPERATION_MAX];
	char collection[3 * OA_METRIC_DB_COLLECTION_MAX];
	char status_code[3 * OA_METRIC_DB_STATUS_MAX];
};
size_t oa_metric_point_attrs(const struct oa_metric_point *p, struct oa_attr *out,
			     struct oa_metric_attr_text *scratch);

/* Appends the request to out; false when memory is short. */
bool oa_metrics_pb_encode(const struct oa_metrics_export *m, struct oa_buf *out);
/* One line per point, for OTEL_METRICS_EXPORTER=console. */
bool oa_metrics_console_encode(const struct oa_metrics_export *m, struct oa_buf *out);

#endif
