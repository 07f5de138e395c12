/* The exporter thread's metrics work: every OTEL_METRIC_EXPORT_INTERVAL and
 * at a flush, the sums of src/metrics.h go out as one OTLP request to the
 * metrics endpoint (or to stderr), with the traces' resource. */
#ifndef OTLPAUTO_METRICS_EXPORT_H
#define OTLPAUTO_METRICS_EXPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Exports when the interval has passed since the last export (or now, when
 * `flush`), sending until deadline_ns (CLOCK_MONOTONIC). working is the
 * lock the transport lets go of while it waits on the network. Returns the
 * ns until the next export is due; UINT64_MAX when metrics are off. */
uint64_t oa_metrics_export_round(uint64_t now_ns, bool flush, uint64_t deadline_ns,
				 pthread_mutex_t *working);
/* In a forked child: the parent's connection and sums are not ours. */
void oa_metrics_export_atfork_child(void);

#endif
