/* Every OTEL_* and OTLPAUTO_* setting, parsed in one place.
 * Rules (OpenTelemetry SDK environment spec): an empty value is unset, enum
 * values are case-insensitive, a bad value gives one "otlpauto:" warning that
 * names the variable and the value used instead, and the default applies. */
#ifndef OTLPAUTO_CONFIG_H
#define OTLPAUTO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum oa_log_level {
	OA_LOG_NONE,
	OA_LOG_ERROR,
	OA_LOG_WARN,
	OA_LOG_INFO,
	OA_LOG_DEBUG,
};

enum oa_protocol {
	OA_PROTOCOL_PROTOBUF, /* http/protobuf */
	OA_PROTOCOL_JSON,     /* http/json */
};

enum oa_exporter_kind {
	OA_EXPORTER_OTLP,
	OA_EXPORTER_CONSOLE,
	OA_EXPORTER_FILE, /* otlp/file */
	OA_EXPORTER_NONE,
};

enum oa_sampler_kind {
	OA_SAMPLER_ALWAYS_ON,
	OA_SAMPLER_ALWAYS_OFF,
	OA_SAMPLER_TRACEIDRATIO,
	OA_SAMPLER_PARENTBASED_ALWAYS_ON,
	OA_SAMPLER_PARENTBASED_ALWAYS_OFF,
	OA_SAMPLER_PARENTBASED_TRACEIDRATIO,
	OA_SAMPLER_ADAPTIVE,
	OA_SAMPLER_PARENTBASED_ADAPTIVE,
};

/* OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE; for histograms,
 * lowmemory is delta. */
enum oa_temporality {
	OA_TEMPORALITY_CUMULATIVE,
	OA_TEMPORALITY_DELTA,
	OA_TEMPORALITY_LOWMEMORY,
};

enum oa_backpressure {
	OA_BACKPRESSURE_DROP,
	OA_BACKPRESSURE_BLOCK,
};

/* OTLPAUTO_REDACT_QUERY: which query-string values become REDACTED in
 * url.full, url.query and URLs on command lines. */
enum oa_redact_query {
	OA_REDACT_QUERY_SENSITIVE, /* credentials and known sensitive names */
	OA_REDACT_QUERY_ALL,	   /* every value */
	OA_REDACT_QUERY_NONE,	   /* none */
};

/* OTLPAUTO_DB_STATEMENT: what db.query.text a database span gets. */
enum oa_db_statement {
	OA_DB_STATEMENT_SANITIZED, /* the query with every literal replaced by '?' */
	OA_DB_STATEMENT_OFF,	   /* none */
};

/* OTLPAUTO_DB_PROPAGATION: whether a traced database client puts its span's
 * context into the queries it sends (it changes the statement text). */
enum oa_db_propagation {
	OA_DB_PROPAGATION_OFF,
	OA_DB_PROPAGATION_COMMENT, /* sqlcommenter's traceparent comment, appended */
};

/* OTLPAUTO_HOOKS families, a bit each. */
enum oa_hook_family {
	OA_HOOK_FUNCTIONS = 1u << 0,
	OA_HOOK_SOCKETS = 1u << 1,
	OA_HOOK_DNS = 1u << 2,
	OA_HOOK_HTTP = 1u << 3,
	OA_HOOK_PROCESS = 1u << 4,
	OA_HOOK_FILES = 1u << 5,
	OA_HOOK_TLS = 1u << 6, /* HTTP inside OpenSSL sessions: with OA_HOOK_HTTP */
};
#define OA_HOOKS_DEFAULT                                                                           \
	(OA_HOOK_FUNCTIONS | OA_HOOK_SOCKETS | OA_HOOK_DNS | OA_HOOK_HTTP | OA_HOOK_PROCESS |      \
	 OA_HOOK_TLS)

struct oa_kv {
	char *key;
	char *value;
};

struct oa_kv_list {
	struct oa_kv *items;
	size_t n;
};

/* A signal's OTLP/HTTP settings besides its endpoint (the traces' are the
 * fields of struct oa_config of the same names). */
struct oa_otlp_settings {
	struct oa_kv_list headers;
	uint32_t timeout_ms;
	bool gzip;
	enum oa_protocol protocol;
	char *certificate, *client_key, *client_certificate;
};

struct oa_str_list {
	char **items;
	size_t n;
};

#define OA_LIMIT_NONE UINT32_MAX

struct oa_config {
	/* OpenTelemetry SDK */
	bool sdk_disabled;		       /* OTEL_SDK_DISABLED */
	enum oa_log_level log_level;	       /* OTEL_LOG_LEVEL, default info */
	char *service_name;		       /* OTEL_SERVICE_NAME, NULL if unset */
	struct oa_kv_list resource_attributes; /* OTEL_RESOURCE_ATTRIBUTES, decoded */
	enum oa_sampler_kind sampler;	       /* OTEL_TRACES_SAMPLER */
	double sampler_arg;	     /* OTEL_TRACES_SAMPLER_ARG: ratio, or roots/s for adaptive */
	bool propagate_tracecontext; /* OTEL_PROPAGATORS contains tracecontext */
	bool propagate_baggage;	     /* OTEL_PROPAGATORS contains baggage */
	uint32_t schedule_delay_ms;  /* OTEL_BSP_SCHEDULE_DELAY, 5000 */
	uint32_t export_timeout_ms;  /* OTEL_BSP_EXPORT_TIMEOUT, 30000 */
	uint32_t max_queue_size;     /* OTEL_BSP_MAX_QUEUE_SIZE, 2048 */
	uint32_t max_export_batch_size;	       /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512, <= queue */
	uint32_t attribute_count_limit;	       /* OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT >
						  OTEL_ATTRIBUTE_COUNT_LIMIT, 128 */
	uint32_t attribute_value_length_limit; /* ..._VALUE_LENGTH_LIMIT, OA_LIMIT_NONE */
	uint32_t event_count_limit;	       /* OTEL_SPAN_EVENT_COUNT_LIMIT, 128 */
	uint32_t link_count_limit;	       /* OTEL_SPAN_LINK_COUNT_LIMIT, 128 */

	/* Exporter */
	enum oa_exporter_kind exporter; /* OTEL_TRACES_EXPORTER */
	char *endpoint;			/* full traces URL, joined per the spec */
	struct oa_kv_list headers;	/* OTEL_EXPORTER_OTLP_[TRACES_]HEADERS */
	uint32_t otlp_timeout_ms;	/* OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT, 10000 */
	bool gzip;			/* ..._COMPRESSION=gzip */
	enum oa_protocol protocol;	/* ..._PROTOCOL; grpc -> warning, protobuf */
	char *certificate;		/* ..._CERTIFICATE */
	char *client_key;		/* ..._CLIENT_KEY */
	char *client_certificate;	/* ..._CLIENT_CERTIFICATE */
	char *file_path;		/* OTLPAUTO_FILE; NULL: otlpauto-<pid>.jsonl */

	/* Metrics (the other exporter settings are the traces') */
	/* OTEL_METRICS_EXPORTER: otlp, console, otlp/file, none; unset: the
	 * traces' otlp or otlp/file, else none */
	enum oa_exporter_kind metrics_exporter;
	char *metrics_endpoint;		    /* full metrics URL */
	uint32_t metric_export_interval_ms; /* OTEL_METRIC_EXPORT_INTERVAL, 60000 */
	uint32_t metric_export_timeout_ms;  /* OTEL_METRIC_EXPORT_TIMEOUT, 30000 */
	enum oa_temporality metrics_temporality;
	uint32_t metrics_max_series; /* OTLPAUTO_METRICS_MAX_SERIES, 2000 per metric */
	/* OTEL_EXPORTER_OTLP_[METRICS_]{HEADERS,TIMEOUT,COMPRESSION,PROTOCOL,
	 * CERTIFICATE,CLIENT_KEY,CLIENT_CERTIFICATE} */
	struct oa_otlp_settings metrics_otlp;

	/* otlpauto's own */
	uint32_t buffer_spans;		       /* OTLPAUTO_BUFFER_SPANS, ring slots per thread */
	enum oa_backpressure backpressure;     /* OTLPAUTO_BACKPRESSURE=drop|block */
	int exporter_cpu;		       /* OTLPAUTO_EXPORTER_CPU, -1 = no affinity */
	uint32_t hooks;			       /* OTLPAUTO_HOOKS, OA_HOOK_* bits */
	uint64_t function_threshold_ns;	       /* OTLPAUTO_FUNCTION_THRESHOLD, 100us */
	struct oa_str_list function_include;   /* OTLPAUTO_FUNCTION_INCLUDE globs */
	struct oa_str_list function_exclude;   /* OTLPAUTO_FUNCTION_EXCLUDE globs */
	uint32_t function_max_depth;	       /* OTLPAUTO_FUNCTION_MAX_DEPTH, OA_LIMIT_NONE */
	bool stacktrace;		       /* OTLPAUTO_STACKTRACE */
	uint64_t stacktrace_threshold_ns;      /* OTLPAUTO_STACKTRACE_THRESHOLD, 10ms */
	uint64_t file_threshold_ns;	       /* OTLPAUTO_FILE_THRESHOLD, 1ms */
	enum oa_redact_query redact_query;     /* OTLPAUTO_REDACT_QUERY, sensitive */
	enum oa_db_statement db_statement;     /* OTLPAUTO_DB_STATEMENT, sanitized */
	enum oa_db_propagation db_propagation; /* OTLPAUTO_DB_PROPAGATION, off */
	uint64_t exit_timeout_ns;	       /* OTLPAUTO_EXIT_TIMEOUT, 2s: the final flush */
	/* How long, and for how many top-level spans, the process span is their
	 * parent: OTLPAUTO_PROCESS_TRACE_DURATION (60s), _SPANS (1000). */
	uint64_t process_trace_ns;
	uint32_t process_trace_spans;
};

/* Reads one variable; NULL when unset. Tests pass a fake environment. */
typedef const char *(*oa_getenv_fn)(const char *name, void *ctx);

void oa_config_defaults(struct oa_config *cfg);
/* Fills cfg from the environment; warnings go through oa_log(OA_LOG_WARN). */
void oa_config_parse(struct oa_config *cfg, oa_getenv_fn get, void *ctx);
void oa_config_free(struct oa_config *cfg);

/* A hash of everything that decides where and how spans are sent (exporter,
 * endpoint, protocol, TLS files, output file, and the headers when asked):
 * two processes with the same fingerprint can send through one exporter (the
 * relay). pid names the default output file. */
uint64_t oa_config_export_fingerprint(const struct oa_config *cfg, int pid, bool with_headers);

/* Pure parsers, shared with other modules and tested on their own. */
bool oa_parse_bool(const char *s, bool *out); /* true/false only */
bool oa_parse_uint(const char *s, uint64_t max, uint64_t *out);
bool oa_parse_duration_ns(const char *s, uint64_t *out); /* 0, 250ns, 100us, 5ms, 2s */
/* Decodes %XX; false on a bad escape. out needs len+1 bytes; NUL-terminated. */
bool oa_percent_decode(const char *in, size_t len, char *out, size_t *out_len);
/* "k=v,k2=v2": trimmed, percent-decoded; false (and nothing kept) on error. */
bool oa_parse_kv_list(const char *s, struct oa_kv_list *out);
void oa_kv_list_free(struct oa_kv_list *list);
/* Comma-separated, trimmed, empty items skipped. */
void oa_parse_str_list(const char *s, struct oa_str_list *out);
void oa_str_list_free(struct oa_str_list *list);
/* OTEL_EXPORTER_OTLP_ENDPOINT base -> base + "/v1/traces" with exactly one '/'. malloc'd. */
char *oa_endpoint_join(const char *base);
/* The same with another path ("v1/metrics"). */
char *oa_endpoint_join_path(const char *base, const char *path);

#endif
