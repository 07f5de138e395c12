/* RED metrics: request-duration histograms recorded on the application's
 * threads without locks, merged by the exporter.
 *
 * A series (one attribute set of one metric) gets a dense id from a global
 * lock-free table the first time any thread records it; each thread adds
 * into its own cells, indexed by that id, in one mapping of its own. The
 * hot path hashes the attributes, probes the table and adds to two words of
 * its cell: no allocation, lock, formatting or syscall after the thread's
 * first record. Past OTLPAUTO_METRICS_MAX_SERIES attribute sets of a metric,
 * records go to that metric's otel.metric.overflow=true series. */
#ifndef OTLPAUTO_METRICS_H
#define OTLPAUTO_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum oa_metric {
	OA_METRIC_HTTP_SERVER_DURATION, /* http.server.request.duration */
	OA_METRIC_HTTP_CLIENT_DURATION, /* http.client.request.duration */
	OA_METRIC_COUNT,
};

/* The semantic conventions' explicit bucket boundaries for HTTP durations,
 * in seconds; bucket i counts durations in (bound[i-1], bound[i]]. */
#define OA_METRIC_BOUNDS  14
#define OA_METRIC_BUCKETS (OA_METRIC_BOUNDS + 1)
extern const double oa_metric_bounds_s[OA_METRIC_BOUNDS];

extern const char *const oa_metric_names[OA_METRIC_COUNT];
extern const char *const oa_metric_descriptions[OA_METRIC_COUNT];

/* server.address beyond this many bytes is cut (its series then share). */
#define OA_METRIC_ADDRESS_MAX 116

/* The attributes of a series, raw: the exporter turns them into text. The
 * hash reads the address in whole words: zero the first 16 bytes and set the
 * address with oa_metric_key_set_address, which pads it. */
struct oa_metric_key {
	uint8_t metric;	     /* enum oa_metric */
	uint8_t method;	     /* enum oa_http_method: http.request.method */
	uint8_t https;	     /* url.scheme https, else http */
	uint8_t address_len; /* server.address (client side), 0: none */
	uint16_t status;     /* http.response.status_code, 0: none */
	uint16_t port;	     /* server.port (client side), 0: none */
	int32_t error;	     /* errno of an exchange that failed (error.type), 0: none */
	char address[OA_METRIC_ADDRESS_MAX];
};
_Static_assert(sizeof(struct oa_metric_key) == 128, "a key is two cache lines");

static inline void oa_metric_key_set_address(struct oa_metric_key *k, const char *address,
					     size_t len)
{
	if (len > OA_METRIC_ADDRESS_MAX)
		len = OA_METRIC_ADDRESS_MAX;
	memcpy(k->address, address, len);
	/* to the end of the word that holds its last byte */
	size_t end = (offsetof(struct oa_metric_key, address) + len + 7) / 8 * 8 -
		     offsetof(struct oa_metric_key, address);
	memset(k->address + len, 0, end - len);
	k->address_len = (uint8_t)len;
}

/* One series' histogram in one thread (or merged). */
struct oa_metric_cell {
	uint64_t buckets[OA_METRIC_BUCKETS];
	uint64_t sum_ticks; /* of the durations, in clock ticks */
};

/* Makes the series table for max_series attribute sets per metric and the
 * bucket boundaries in ticks (the clock must be set up). False when the
 * memory cannot be mapped: recording stays off. */
bool oa_metrics_init(uint32_t max_series);
bool oa_metrics_enabled(void);

/* Adds one duration (ticks) to the calling thread's cell of key's series.
 * Returns true when this call made the thread's cells (its first record):
 * the caller may start the exporter then. Call inside a hook (the guard set):
 * the thread's cells have one writer. */
bool oa_metrics_record(const struct oa_metric_key *key, uint64_t ticks);

/* ---- The exporter side (one thread at a time) */

/* Ids in use: [0, OA_METRIC_COUNT) are the overflow series, one per metric. */
uint32_t oa_metrics_ids(void);
/* The most ids there can be. */
uint32_t oa_metrics_ids_max(void);
/* When recording began (init, or the fork of this child): Unix ns. */
uint64_t oa_metrics_start_unix_ns(void);
/* The attributes of id; NULL for an overflow series (its metric in *metric)
 * or an id whose key is not published yet (*metric = OA_METRIC_COUNT). */
const struct oa_metric_key *oa_metrics_key(uint32_t id, uint8_t *metric);
/* Sums, for every id < n, the cells of every thread and of the threads gone
 * (their cells are folded in and unmapped once they are gone) into
 * totals[id]. Two ids with one key (two threads adding it at once) are
 * merged into the lower one. */
void oa_metrics_collect(struct oa_metric_cell *totals, uint32_t n);
/* Durations in the cells are ticks; the bucket boundaries in ticks. */
extern uint64_t oa_metric_bound_ticks[OA_METRIC_BOUNDS];

/* In a forked child: the parent's cells are the parent's. The table of
 * series stays; every thread's cells are dropped (the calling thread makes
 * new ones at its next record). */
void oa_metrics_atfork_child(void);

#endif
