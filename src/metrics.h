/* RED metrics: duration histograms of HTTP requests and database operations,
 * recorded on the application's threads without locks, merged by the
 * exporter.
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
	OA_METRIC_DB_CLIENT_DURATION,	/* db.client.operation.duration */
	OA_METRIC_COUNT,
};

/* A metric's name, scope and the semantic conventions' explicit bucket
 * boundaries, in seconds; bucket i counts durations in (bound[i-1], bound[i]]. */
#define OA_METRIC_BOUNDS_MAX 14
#define OA_METRIC_BUCKETS    (OA_METRIC_BOUNDS_MAX + 1)
struct oa_metric_info {
	const char *name, *description;
	const char *scope; /* instrumentation scope: metrics of one scope are adjacent */
	uint8_t n_bounds;
	double bounds_s[OA_METRIC_BOUNDS_MAX];
};
extern const struct oa_metric_info oa_metric_info[OA_METRIC_COUNT];

/* The attributes of a series, raw (the exporter turns them into text): two
 * words of small fields, then the instrument's strings, concatenated (their
 * lengths are in the words). head[0]'s low byte is the metric, its next the
 * text's length; the rest is the instrument's (oa_metric_key_http,
 * oa_metric_key_db). The words are stored whole: the hash reads them back
 * at once, and a word load over the byte stores that just built it would
 * wait for store forwarding to fail (measured: a third of the record's
 * cost). The text is hashed and compared in zero-padded words. */
#define OA_METRIC_TEXT_MAX 240
struct oa_metric_key {
	uint64_t head[2];
	char text[OA_METRIC_TEXT_MAX];
};
_Static_assert(sizeof(struct oa_metric_key) == 256, "a key is four cache lines at most");

static inline enum oa_metric oa_metric_key_metric(const struct oa_metric_key *k)
{
	return (enum oa_metric)(k->head[0] & 0xff);
}

static inline size_t oa_metric_key_text_len(const struct oa_metric_key *k)
{
	return (size_t)(k->head[0] >> 8 & 0xff);
}

/* Appends len bytes (cut to cap) at *at; their length. */
static inline size_t oa_metric_text_put(struct oa_metric_key *k, size_t *at, const void *p,
					size_t len, size_t cap)
{
	if (len > cap)
		len = cap;
	if (len)
		memcpy(k->text + *at, p, len);
	*at += len;
	return len;
}

/* Zeroes the text from len to the end of its last word. */
static inline void oa_metric_text_pad(struct oa_metric_key *k, size_t len)
{
	memset(k->text + len, 0, (len + 7) / 8 * 8 - len);
}

/* ---- HTTP: http.server.request.duration, http.client.request.duration */

/* server.address beyond this many bytes is cut (its series then share). */
#define OA_METRIC_ADDRESS_MAX 116
/* An error.type given as text (a TLS library's reason) beyond this is cut. */
#define OA_METRIC_ERROR_TEXT_MAX 64
_Static_assert(OA_METRIC_ADDRESS_MAX + OA_METRIC_ERROR_TEXT_MAX <= OA_METRIC_TEXT_MAX,
	       "an HTTP key's strings fit its text");

struct oa_http_metric_attrs {
	uint8_t method;		/* enum oa_http_method: http.request.method */
	bool https;		/* url.scheme https, else http */
	uint16_t status;	/* http.response.status_code, 0: none */
	uint16_t port;		/* server.port (client side), 0: none */
	int32_t error;		/* errno of an exchange that failed (error.type), 0: none */
	const char *address;	/* server.address (client side) */
	size_t address_len;	/* 0: none */
	const char *error_text; /* error.type instead of error's name (a TLS library's reason) */
	size_t error_text_len;	/* 0: none */
};

static inline void oa_metric_key_http(struct oa_metric_key *k, enum oa_metric metric,
				      const struct oa_http_metric_attrs *a)
{
	size_t len = 0;
	size_t address =
	    oa_metric_text_put(k, &len, a->address, a->address_len, OA_METRIC_ADDRESS_MAX);
	size_t error =
	    oa_metric_text_put(k, &len, a->error_text, a->error_text_len, OA_METRIC_ERROR_TEXT_MAX);
	oa_metric_text_pad(k, len);
	k->head[0] = (uint64_t)metric | (uint64_t)len << 8 | (uint64_t)a->method << 16 |
		     (uint64_t)a->https << 24 | (uint64_t)a->status << 32 | (uint64_t)a->port << 48;
	k->head[1] = (uint32_t)a->error | (uint64_t)address << 32 | (uint64_t)error << 40;
}

static inline void oa_metric_http_attrs(const struct oa_metric_key *k,
					struct oa_http_metric_attrs *a)
{
	a->method = (uint8_t)(k->head[0] >> 16);
	a->https = (k->head[0] >> 24 & 1) != 0;
	a->status = (uint16_t)(k->head[0] >> 32);
	a->port = (uint16_t)(k->head[0] >> 48);
	a->error = (int32_t)(uint32_t)k->head[1];
	a->address = k->text;
	a->address_len = (size_t)(k->head[1] >> 32 & 0xff);
	a->error_text = k->text + a->address_len;
	a->error_text_len = (size_t)(k->head[1] >> 40 & 0xff);
}

/* ---- Databases: db.client.operation.duration */

enum oa_db_system { OA_DB_REDIS, OA_DB_POSTGRESQL, OA_DB_MYSQL, OA_DB_MARIADB, OA_DB_SYSTEMS };
extern const char *const oa_db_system_names[OA_DB_SYSTEMS]; /* db.system.name */

/* Strings beyond these lengths are cut (their series then share). */
#define OA_METRIC_DB_NAMESPACE_MAX  63
#define OA_METRIC_DB_OPERATION_MAX  32
#define OA_METRIC_DB_COLLECTION_MAX 63
#define OA_METRIC_DB_STATUS_MAX	    32
_Static_assert(OA_METRIC_DB_NAMESPACE_MAX + OA_METRIC_DB_OPERATION_MAX +
		       OA_METRIC_DB_COLLECTION_MAX + OA_METRIC_DB_STATUS_MAX + 16 <=
		   OA_METRIC_TEXT_MAX,
	       "a database key's strings fit its text");

struct oa_db_metric_attrs {
	uint8_t system;	     /* enum oa_db_system: db.system.name */
	uint8_t ip_version;  /* 4, 6: server.address is in address; 0: none */
	uint16_t port;	     /* server.port, 0: none */
	int32_t error;	     /* errno of an operation left without a reply (error.type) */
	const void *address; /* server.address: the peer's 4 or 16 bytes, as in its sockaddr */
	const char *name_space, *operation, *collection;
	const char *status; /* db.response.status_code (and error.type) of an error reply */
	size_t name_space_len, operation_len, collection_len, status_len; /* 0: none */
};

static inline size_t oa_metric_db_address_len(uint8_t ip_version)
{
	return ip_version == 4 ? 4 : ip_version == 6 ? 16 : 0;
}

static inline void oa_metric_key_db(struct oa_metric_key *k, const struct oa_db_metric_attrs *a)
{
	size_t len = 0;
	size_t ns = oa_metric_text_put(k, &len, a->name_space, a->name_space_len,
				       OA_METRIC_DB_NAMESPACE_MAX);
	size_t op =
	    oa_metric_text_put(k, &len, a->operation, a->operation_len, OA_METRIC_DB_OPERATION_MAX);
	size_t coll = oa_metric_text_put(k, &len, a->collection, a->collection_len,
					 OA_METRIC_DB_COLLECTION_MAX);
	size_t status =
	    oa_metric_text_put(k, &len, a->status, a->status_len, OA_METRIC_DB_STATUS_MAX);
	oa_metric_text_put(k, &len, a->address, oa_metric_db_address_len(a->ip_version), 16);
	oa_metric_text_pad(k, len);
	k->head[0] = (uint64_t)OA_METRIC_DB_CLIENT_DURATION | (uint64_t)len << 8 |
		     (uint64_t)a->system << 16 | (uint64_t)a->ip_version << 24 |
		     (uint64_t)a->port << 32 | (uint64_t)ns << 48 | (uint64_t)op << 56;
	k->head[1] = (uint32_t)a->error | (uint64_t)coll << 32 | (uint64_t)status << 40;
}

static inline void oa_metric_db_attrs(const struct oa_metric_key *k, struct oa_db_metric_attrs *a)
{
	a->ip_version = (uint8_t)(k->head[0] >> 24);
	a->system = (uint8_t)(k->head[0] >> 16);
	a->port = (uint16_t)(k->head[0] >> 32);
	a->name_space_len = (size_t)(k->head[0] >> 48 & 0xff);
	a->operation_len = (size_t)(k->head[0] >> 56);
	a->error = (int32_t)(uint32_t)k->head[1];
	a->collection_len = (size_t)(k->head[1] >> 32 & 0xff);
	a->status_len = (size_t)(k->head[1] >> 40 & 0xff);
	a->name_space = k->text;
	a->operation = a->name_space + a->name_space_len;
	a->collection = a->operation + a->operation_len;
	a->status = a->collection + a->collection_len;
	a->address = a->status + a->status_len;
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

/* Ids in use: [0, OA_METRIC_COUNT) are the overflow series, one per metric,
 * the others series; 0 before the first series is made. */
uint32_t oa_metrics_ids(void);
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
/* Durations in the cells are ticks; each metric's bucket boundaries in ticks. */
extern uint64_t oa_metric_bound_ticks[OA_METRIC_COUNT][OA_METRIC_BOUNDS_MAX];

/* In a forked child: the parent's cells are the parent's. The table of
 * series stays; every thread's cells are dropped (the calling thread makes
 * new ones at its next record). */
void oa_metrics_atfork_child(void);

#endif
