/* Parcels: export requests already encoded by another process of the tree
 * (relayed to this one, or handed over across execve) and waiting for this
 * process's exporter to send them. A locked FIFO: filled by the relay thread
 * or at start-up, emptied by the exporter, never touched by hooks. */
#ifndef OTLPAUTO_PARCEL_H
#define OTLPAUTO_PARCEL_H

#include <stddef.h>
#include <stdint.h>

/* The encoding of a parcel: the format of the sink it was made for. */
enum oa_parcel_format {
	OA_PARCEL_PROTOBUF = 1, /* one ExportTraceServiceRequest (or Metrics) */
	OA_PARCEL_JSON = 2,	/* the same as OTLP JSON */
};

struct oa_parcel {
	struct oa_parcel *next;
	uint32_t len;
	uint32_t spans;
	uint8_t format; /* enum oa_parcel_format */
	uint8_t data[];
};

/* A parcel of len bytes, data uninitialised; NULL when memory is short. */
struct oa_parcel *oa_parcel_new(uint32_t len, uint32_t spans, uint8_t format);
void oa_parcel_free(struct oa_parcel *p);

void oa_parcels_push(struct oa_parcel *p);
/* Every queued parcel, oldest first; the queue is left empty. */
struct oa_parcel *oa_parcels_take(void);
/* Bytes queued and not yet taken. */
size_t oa_parcels_bytes(void);
/* Spans ever queued (taken or not): at exit, what the sink did not count as
 * sent or failed was not sent. */
uint64_t oa_parcels_spans_pushed(void);
/* The same for metrics requests (ExportMetricsServiceRequest) other
 * processes relayed: the metrics' exporter sends them with its own. */
void oa_metric_parcels_push(struct oa_parcel *p);
struct oa_parcel *oa_metric_parcels_take(void);
size_t oa_metric_parcels_bytes(void);
/* In a forked child: the parent's parcels are the parent's to send. */
void oa_parcels_atfork_child(void);

#endif
