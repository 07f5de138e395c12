/* The exporter-side view of a batch: spans already decoded from ring records,
 * names resolved, strings valid UTF-8 and limits applied. Every encoder
 * (protobuf, JSON, console) reads only this, so they share no other state.
 * Nothing here owns memory: pointers refer into the exporter's arenas. */
#ifndef OTLPAUTO_EXPORT_MODEL_H
#define OTLPAUTO_EXPORT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oa_str {
	const char *ptr;
	uint32_t len;
};

enum oa_value_type {
	OA_VALUE_STRING,
	OA_VALUE_BOOL,
	OA_VALUE_INT,
	OA_VALUE_DOUBLE,
	OA_VALUE_STRING_ARRAY,
};

struct oa_attr {
	struct oa_str key;
	uint8_t type; /* enum oa_value_type */
	union {
		struct oa_str s;
		bool b;
		int64_t i;
		double d;
		struct {
			const struct oa_str *items;
			uint32_t n;
		} array;
	} v;
};

struct oa_event {
	uint64_t time_unix_nano;
	struct oa_str name;
	const struct oa_attr *attrs;
	uint32_t n_attrs;
	uint32_t dropped_attrs;
};

struct oa_link {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	struct oa_str trace_state;
	const struct oa_attr *attrs;
	uint32_t n_attrs;
	uint32_t dropped_attrs;
	uint32_t flags;
};

/* OTLP Span.flags bits (fixed32 field 16). */
#define OA_SPAN_FLAGS_SAMPLED	    0x01u
#define OA_SPAN_FLAGS_HAS_IS_REMOTE 0x100u
#define OA_SPAN_FLAGS_IS_REMOTE	    0x200u

enum oa_span_kind {
	OA_KIND_UNSPECIFIED = 0,
	OA_KIND_INTERNAL = 1,
	OA_KIND_SERVER = 2,
	OA_KIND_CLIENT = 3,
	OA_KIND_PRODUCER = 4,
	OA_KIND_CONSUMER = 5,
};

enum oa_status_code {
	OA_STATUS_UNSET = 0,
	OA_STATUS_OK = 1,
	OA_STATUS_ERROR = 2,
};

struct oa_export_span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];
	bool has_parent; /* parent_span_id is omitted when false */
	struct oa_str trace_state;
	struct oa_str name;
	uint8_t kind; /* enum oa_span_kind */
	uint64_t start_unix_nano;
	uint64_t end_unix_nano;
	const struct oa_attr *attrs;
	uint32_t n_attrs;
	uint32_t dropped_attrs;
	const struct oa_event *events;
	uint32_t n_events;
	uint32_t dropped_events;
	const struct oa_link *links;
	uint32_t n_links;
	uint32_t dropped_links;
	uint8_t status_code; /* enum oa_status_code */
	struct oa_str status_message;
	uint32_t flags; /* OA_SPAN_FLAGS_* */
};

struct oa_export_scope {
	struct oa_str name;
	struct oa_str version;
	const struct oa_export_span *spans;
	size_t n_spans;
};

struct oa_export_batch {
	const struct oa_attr *resource_attrs;
	size_t n_resource_attrs;
	const struct oa_export_scope *scopes;
	size_t n_scopes;
};

#endif
