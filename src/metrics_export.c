#include "metrics_export.h"

#include <string.h>
#include <time.h>

#include "clock.h"
#include "encode_metrics.h"
#include "mem.h"
#include "metrics.h"
#include "resource.h"
#include "rings.h"
#include "runtime.h"
#include "sink.h"

/* otlpauto.spans: produced, exported, sampled out, dropped by reason. */
#define SPAN_COUNTS_MAX (3 + OA_DROP_COUNT)

/* State of the exporter thread alone. */
static struct {
	bool set_up;
	const struct oa_resource *resource;
	uint64_t next_due_ns;
	uint64_t last_unix_ns; /* end of the last interval exported */
	/* Per id, for the ids in use (grown as they are: a process making no
	 * request, as most forked children and commands, allocates nothing). */
	uint32_t capacity;
	struct oa_metric_cell *totals;	 /* this round's sums */
	struct oa_metric_cell *exported; /* what the last delta covered */
	struct oa_metric_point *points;
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

static void export_now(bool flush, uint64_t deadline_ns)
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
	oa_sink_send_metrics(&m, flush, deadline_ns);
}

uint64_t oa_metrics_export_round(uint64_t now_ns, bool flush, uint64_t deadline_ns)
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
	export_now(flush, deadline_ns);
	ms.next_due_ns = now_ns + interval;
	return interval;
}

void oa_metrics_export_atfork_child(void)
{
	memset(&ms, 0, sizeof ms);
}
