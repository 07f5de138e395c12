#include "metrics_export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#if OA_FEATURE_JSON
#include "encode_json.h"
#endif
#include "encode_metrics.h"
#include "filesink.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "parcel.h"
#include "relay.h"
#include "resource.h"
#include "rings.h"
#include "runtime.h"
#include "sink.h"
#include "transport.h"

/* otlpauto.spans: produced, exported, sampled out, dropped by reason. */
#define SPAN_COUNTS_MAX (3 + OA_DROP_COUNT)

/* State of the exporter thread alone. */
static struct {
	bool set_up;
	struct oa_config cfg; /* the traces' settings with the metrics endpoint */
	struct oa_transport *transport;
	const struct oa_resource *resource;
	uint64_t next_due_ns;
	uint64_t last_unix_ns; /* end of the last interval exported */
	/* Per id, for the ids in use (grown as they are: a process making no
	 * request, as most forked children and commands, allocates nothing). */
	uint32_t capacity;
	struct oa_metric_cell *totals;	 /* this round's sums */
	struct oa_metric_cell *exported; /* what the last delta covered */
	struct oa_metric_point *points;
	struct oa_buf out;
	struct oa_buf relayed; /* a relayed JSON line with its newline */
	struct oa_span_count span_counts[SPAN_COUNTS_MAX];
	uint64_t span_counts_exported[SPAN_COUNTS_MAX]; /* what the last delta covered */
} ms;

static bool metrics_on(void)
{
	return oa_rt.cfg.metrics_exporter != OA_EXPORTER_NONE && oa_metrics_enabled();
}

static void set_up(uint64_t now_ns)
{
	ms.set_up = true;
	ms.next_due_ns = now_ns + (uint64_t)oa_rt.cfg.metric_export_interval_ms * 1000000u;
	ms.last_unix_ns = oa_metrics_start_unix_ns();
	ms.resource = oa_process_resource(&oa_rt.cfg);
	/* A shallow copy with the metrics' settings: the transport copies what
	 * it keeps. */
	const struct oa_otlp_settings *m = &oa_rt.cfg.metrics_otlp;
	ms.cfg = oa_rt.cfg;
	ms.cfg.endpoint = oa_rt.cfg.metrics_endpoint;
	ms.cfg.headers = m->headers;
	ms.cfg.otlp_timeout_ms = m->timeout_ms;
	ms.cfg.gzip = m->gzip;
	ms.cfg.protocol = m->protocol;
	ms.cfg.certificate = m->certificate;
	ms.cfg.client_key = m->client_key;
	ms.cfg.client_certificate = m->client_certificate;
}

static uint64_t unix_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Room for n ids; false when memory is short (the round then has no points). */
static bool reserve(uint32_t n)
{
	if (n <= ms.capacity)
		return true;
	uint32_t capacity = ms.capacity ? ms.capacity : 16;
	while (capacity < n)
		capacity *= 2;
	struct oa_metric_cell *totals = oa_realloc(ms.totals, capacity * sizeof *totals);
	if (totals)
		ms.totals = totals;
	struct oa_metric_cell *exported = oa_realloc(ms.exported, capacity * sizeof *exported);
	if (exported) {
		memset(exported + ms.capacity, 0, (capacity - ms.capacity) * sizeof *exported);
		ms.exported = exported;
	}
	struct oa_metric_point *points = oa_realloc(ms.points, capacity * sizeof *points);
	if (points)
		ms.points = points;
	if (!totals || !exported || !points)
		return false;
	ms.capacity = capacity;
	return true;
}

/* The points of this round, grouped by metric; with delta temporality, what
 * was added since the last round. */
static size_t make_points(bool delta)
{
	uint32_t n = oa_metrics_ids();
	if (!n || !reserve(n))
		return 0;
	oa_metrics_collect(ms.totals, n);
	size_t count = 0;
	for (uint8_t metric = 0; metric < OA_METRIC_COUNT; metric++) {
		for (uint32_t id = 0; id < n; id++) {
			uint8_t of;
			const struct oa_metric_key *key = oa_metrics_key(id, &of);
			if (of != metric)
				continue;
			struct oa_metric_cell cell = ms.totals[id];
			if (delta) {
				for (int b = 0; b < OA_METRIC_BUCKETS; b++)
					cell.buckets[b] -= ms.exported[id].buckets[b];
				cell.sum_ticks -= ms.exported[id].sum_ticks;
				ms.exported[id] = ms.totals[id];
			}
			struct oa_metric_point *p = &ms.points[count];
			p->count = 0;
			for (int b = 0; b < OA_METRIC_BUCKETS; b++) {
				p->buckets[b] = cell.buckets[b];
				p->count += cell.buckets[b];
			}
			if (!p->count)
				continue;
			p->metric = metric;
			p->key = key;
			p->sum_s = (double)oa_clock_ticks_to_ns(cell.sum_ticks) / 1e9;
			count++;
		}
	}
	return count;
}

static const char *const drop_reasons[OA_DROP_COUNT] = {
    [OA_DROP_RING_FULL] = "ring_full",
    [OA_DROP_QUEUE_FULL] = "queue_full",
    [OA_DROP_EXPORT_FAILED] = "export_failed",
    [OA_DROP_REJECTED] = "rejected",
    [OA_DROP_UNSENT_AT_EXIT] = "unsent_at_exit",
    [OA_DROP_ENDED_AFTER_EXIT] = "ended_after_exit",
    [OA_DROP_CONNECTION_FULL] = "connection_full",
};

static uint64_t counter(const uint64_t *word)
{
	return __atomic_load_n(word, __ATOMIC_RELAXED);
}

/* This process's span counts, none before its first span; a reason appears
 * once a span was dropped for it; with delta temporality, only the counts
 * that grew. Produced counts every span that ended:
 * committed to a ring, sampled out, or dropped before it reached one. */
static size_t make_span_counts(bool delta)
{
	/* slots: produced, exported, sampled out, then one per drop reason */
	uint64_t totals[SPAN_COUNTS_MAX];
	uint64_t *dropped = totals + 3;
	for (int r = 0; r < OA_DROP_COUNT; r++)
		dropped[r] = counter(&oa_rt.dropped[r]);
	uint64_t recorded, sampled_out_in_rings;
	oa_rings_totals(&recorded, &sampled_out_in_rings);
	totals[2] = counter(&oa_rt.spans_sampled_out) + sampled_out_in_rings;
	totals[1] = counter(&oa_rt.spans_exported);
	totals[0] = recorded + totals[2] + dropped[OA_DROP_RING_FULL] +
		    dropped[OA_DROP_QUEUE_FULL] + dropped[OA_DROP_ENDED_AFTER_EXIT] +
		    dropped[OA_DROP_CONNECTION_FULL];
	if (!totals[0])
		return 0;
	static const char *const outcomes[3] = {"produced", "exported", "sampled_out"};
	size_t n = 0;
	for (int slot = 0; slot < SPAN_COUNTS_MAX; slot++) {
		if (slot >= 3 && !totals[slot])
			continue;
		uint64_t value = totals[slot];
		if (delta) {
			/* as for the histograms: an interval that added nothing sends nothing */
			value -= ms.span_counts_exported[slot];
			ms.span_counts_exported[slot] = totals[slot];
			if (!value)
				continue;
		}
		ms.span_counts[n++] =
		    slot < 3 ? (struct oa_span_count){outcomes[slot], NULL, value}
			     : (struct oa_span_count){"dropped", drop_reasons[slot - 3], value};
	}
	return n;
}

static void write_stderr(const char *p, size_t len)
{
	while (len) {
		ssize_t w = (ssize_t)syscall(SYS_write, STDERR_FILENO, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

/* A relay client hands its request to the relay host (the process that
 * started it, or otlpauto run), which sends it with its own at its next
 * round: a short process neither loads libcurl nor waits for the collector
 * at its exit. */
static bool relayed(enum oa_parcel_format format, uint64_t deadline_ns)
{
	return oa_relay_connected() && oa_relay_send(OA_RELAY_METRICS, ms.out.data,
						     (uint32_t)ms.out.len, 0, format, deadline_ns);
}

static void send_body(const char *data, size_t len, size_t n_points, bool flush,
		      uint64_t deadline_ns, pthread_mutex_t *working)
{
	if (!ms.transport) {
		ms.transport = oa_transport_create(&ms.cfg);
		if (!ms.transport)
			return;
		oa_transport_release_while_waiting(ms.transport, working);
	}
	oa_transport_set_flushing(ms.transport, flush);
	uint64_t rejected = 0;
	enum oa_send_result r =
	    oa_transport_send(ms.transport, (const uint8_t *)data, len, deadline_ns, &rejected);
	if (r != OA_SEND_OK || rejected)
		oa_debug("%zu metric points not delivered (%s)", r != OA_SEND_OK ? n_points : 0,
			 r == OA_SEND_OK ? "partly rejected" : "send failed");
}

/* What relay clients sent, with this process's own request (ms.out, may be
 * empty): protobuf requests concatenated into one (their resource_metrics
 * add up), JSON ones one by one, lines of the file each. */
static void send_with_relayed(bool flush, uint64_t deadline_ns, pthread_mutex_t *working)
{
	struct oa_parcel *all = oa_metric_parcels_take();
	enum oa_exporter_kind exporter = oa_rt.cfg.metrics_exporter;
	bool json = exporter == OA_EXPORTER_FILE || ms.cfg.protocol == OA_PROTOCOL_JSON;
	for (struct oa_parcel *p = all; p; p = p->next) {
		if ((p->format == OA_PARCEL_JSON) != json)
			continue;
#if OA_FEATURE_JSON
		if (exporter == OA_EXPORTER_FILE) {
			if (oa_buf_append(&ms.relayed, (const char *)p->data, p->len) &&
			    oa_buf_append(&ms.relayed, "\n", 1))
				oa_filesink_write(ms.relayed.data, ms.relayed.len);
			ms.relayed.len = 0;
			continue;
		}
#endif
		if (json)
			send_body((const char *)p->data, p->len, 0, flush, deadline_ns, working);
		else
			oa_buf_append(&ms.out, (const char *)p->data, p->len);
	}
	while (all) {
		struct oa_parcel *next = all->next;
		oa_parcel_free(all);
		all = next;
	}
}

static void export_now(bool flush, uint64_t deadline_ns, pthread_mutex_t *working)
{
	bool delta = oa_rt.cfg.metrics_temporality != OA_TEMPORALITY_CUMULATIVE;
	size_t n_points = make_points(delta);
	uint64_t now_unix = unix_now_ns();
	struct oa_metrics_export m = {
	    .resource_attrs = ms.resource->attrs,
	    .n_resource_attrs = ms.resource->n_attrs,
	    .scope_version = {OTLPAUTO_VERSION, sizeof OTLPAUTO_VERSION - 1},
	    .start_unix_nano = delta ? ms.last_unix_ns : oa_metrics_start_unix_ns(),
	    .time_unix_nano = now_unix,
	    .delta = delta,
	    .points = ms.points,
	    .n_points = n_points,
	    .span_counts = ms.span_counts,
	    .n_span_counts = make_span_counts(delta),
	};
	ms.last_unix_ns = now_unix;
	ms.out.len = 0;
	enum oa_exporter_kind exporter = oa_rt.cfg.metrics_exporter;
	bool any = n_points || m.n_span_counts;
	if (exporter == OA_EXPORTER_CONSOLE) {
		if (any && oa_metrics_console_encode(&m, &ms.out))
			write_stderr(ms.out.data, ms.out.len);
		return;
	}
	bool encoded = any;
#if OA_FEATURE_JSON
	bool json = exporter == OA_EXPORTER_FILE || ms.cfg.protocol == OA_PROTOCOL_JSON;
	if (encoded)
		encoded =
		    json ? oa_json_metrics_encode(&m, &ms.out) : oa_metrics_pb_encode(&m, &ms.out);
#else
	bool json = false;
	if (encoded)
		encoded = oa_metrics_pb_encode(&m, &ms.out);
#endif
	uint8_t format = json ? OA_PARCEL_JSON : OA_PARCEL_PROTOBUF;
	if (encoded && (relayed(format, deadline_ns) ||
			oa_sink_hand_over_metrics(ms.out.data, (uint32_t)ms.out.len, format)))
		return;
#if OA_FEATURE_JSON
	if (exporter == OA_EXPORTER_FILE) {
		/* A sink that fails has said so once (filesink.c). */
		if (encoded && oa_buf_append(&ms.out, "\n", 1))
			oa_filesink_write(ms.out.data, ms.out.len);
		ms.out.len = 0;
		send_with_relayed(flush, deadline_ns, working);
		return;
	}
#endif
	if (!encoded)
		ms.out.len = 0;
	if (json && encoded) {
		send_body(ms.out.data, ms.out.len, n_points, flush, deadline_ns, working);
		ms.out.len = 0;
	}
	send_with_relayed(flush, deadline_ns, working);
	if (ms.out.len)
		send_body(ms.out.data, ms.out.len, n_points, flush, deadline_ns, working);
}

uint64_t oa_metrics_export_round(uint64_t now_ns, bool flush, uint64_t deadline_ns,
				 pthread_mutex_t *working)
{
	if (!metrics_on())
		return UINT64_MAX;
	if (!ms.set_up)
		set_up(now_ns);
	uint64_t interval = (uint64_t)oa_rt.cfg.metric_export_interval_ms * 1000000u;
	if (!flush && now_ns < ms.next_due_ns)
		return ms.next_due_ns - now_ns;
	if (!flush)
		deadline_ns = now_ns + (uint64_t)oa_rt.cfg.metric_export_timeout_ms * 1000000u;
	export_now(flush, deadline_ns, working);
	ms.next_due_ns = now_ns + interval;
	return interval;
}

void oa_metrics_export_atfork_child(void)
{
	if (ms.transport)
		oa_transport_abandon(ms.transport);
	memset(&ms, 0, sizeof ms);
}
