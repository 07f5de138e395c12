/* The exporter thread's metrics round: every OTEL_METRIC_EXPORT_INTERVAL
 * and at a flush, the sums of src/metrics.h and the span counts become one
 * request's points, with the traces' resource, which the sink sends
 * (oa_sink_send_metrics). */
#ifndef OTLPAUTO_METRICS_EXPORT_H
#define OTLPAUTO_METRICS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

/* Exports when the interval has passed since the last export (or now, when
 * `flush`), sending until deadline_ns (CLOCK_MONOTONIC). Returns the ns
 * until the next export is due; UINT64_MAX when metrics are off. */
uint64_t oa_metrics_export_round(uint64_t now_ns, bool flush, uint64_t deadline_ns);
/* In a forked child: the parent's sums are not ours (nor its connection:
 * oa_sink_atfork_child). */
void oa_metrics_export_atfork_child(void);

#endif
