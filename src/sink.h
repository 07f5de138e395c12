/* Where the exporter's requests go: encoded once per batch (protobuf or
 * JSON, or the console's lines), then passed on (to the next program of an
 * exec, in its hand-over file, or to the relay host) or sent by this process
 * (posted by the transport, appended to the otlp/file sink, written to
 * stderr). Counts each request's spans as exported or failed, other
 * processes' (parcels) apart from ours. A round of metrics goes the same
 * ways, through a transport of its own. Used by the exporter's work alone
 * (its thread, or a thread doing its work). */
#ifndef OTLPAUTO_SINK_H
#define OTLPAUTO_SINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oa_batch;
struct oa_metrics_export;
struct oa_resource;

/* What the exporter's work does around a write or a send that may block. */
struct oa_sink_waits {
	pthread_mutex_t *working; /* the transport lets go of it while it waits */
	void (*blocking)(void);	  /* before the write or send */
	void (*resumed)(void);	  /* after it */
};

/* First, before anything is sent. */
void oa_sink_init(const struct oa_sink_waits *waits);
/* Creates the transport now when this process posts to a collector itself
 * (not while a relay sends for it). */
void oa_sink_prepare_transport(void);
/* Before a chroot or a change of user: opens the file, or creates the
 * transport, now. */
void oa_sink_prepare_confinement(void);
/* While flushing for exit or exec, a collector nobody listens on is not
 * retried. */
void oa_sink_set_flushing(bool flushing);

/* Sends every span of the batch (described by the resource), a request of
 * more than 64 MiB halved until it fits. */
void oa_sink_send_batch(struct oa_batch *batch, const struct oa_resource *resource,
			uint64_t deadline_ns);
/* Sends a round of metrics (m, nothing when it has no point and no span
 * count) with what relay clients sent: to the metrics endpoint (posted by
 * a transport of its own with the metrics' settings; flush: a collector
 * nobody listens on is not retried), stderr, the otlp/file sink, the
 * relay host, or during an exec the next program's hand-over file. Not
 * counted: a failure is a debug line. */
void oa_sink_send_metrics(const struct oa_metrics_export *m, bool flush, uint64_t deadline_ns);
/* Whether enough parcels wait to be sent before the schedule says so. */
bool oa_sink_parcels_due(void);
/* Sends the parcels waiting: all of them, or only when they are due. */
void oa_sink_send_parcels(bool everything, uint64_t deadline_ns);
/* OTEL_TRACES_EXPORTER=none: spans released unread count as exported. */
void oa_sink_discarded(uint64_t spans);
/* Spans of other processes (relayed, handed over) exported, lost, and, at
 * exit, not sent: still queued, or in a request the exit did not wait for. */
void oa_sink_parcel_totals(uint64_t *exported, uint64_t *failed, uint64_t *unsent_at_exit);

/* Exec: from begin on, requests go into handoff_fd (a file the new program
 * reads) when >= 0, else to the relay or the collector; from tentative on,
 * to the relay as tentative (held until the exec succeeded; the hand-over
 * file is only read by the new program), all_held saying whether every
 * request since was held so; failed takes back or cancels the tentative
 * part and ends the exec's routing. */
void oa_sink_exec_begin(int handoff_fd);
void oa_sink_exec_tentative(void);
bool oa_sink_exec_all_held(void);
void oa_sink_exec_failed(void);
/* Whether this exec hands requests (a metrics round's too) to the next
 * program in a file. */
bool oa_sink_exec_hands_over(void);
/* In the new program: queues the requests of the hand-over file fd as
 * parcels and closes it; returns their bytes. */
size_t oa_sink_adopt_handoff(int fd);

/* In a forked child: the parent's connection, file and counts are not ours. */
void oa_sink_atfork_child(void);

#endif
