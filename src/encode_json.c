/* Fields go out in field-number order and, as proto3 JSON says, default values
 * (0, empty strings, empty lists) are left out; oneof members of AnyValue are
 * written even when default. The resource and the scope are always written,
 * as in the protobuf encoding. */
#include "encode_json.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* After an allocation failure the output is incomplete; the caller, told
 * by the return value, discards it. */
struct json_out {
	struct oa_buf *buf;
	bool failed;
};

static void put_slow(struct json_out *o, const char *s, size_t n)
{
	if (!oa_buf_append(o->buf, s, n))
		o->failed = true;
}

/* Inline so that the many short constant pieces become plain stores. */
static inline void put(struct json_out *o, const char *s, size_t n)
{
	struct oa_buf *b = o->buf;
	/* n == 0 comes with s == NULL for an empty oa_str. */
	if (!n)
		return;
	if (b->len + n <= b->cap) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
	} else {
		put_slow(o, s, n);
	}
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

/* Writes "key": preceded by a comma unless it is the object's first member. */
static void put_key(struct json_out *o, bool *first, const char *quoted_key_colon, size_t n)
{
	if (!*first)
		PUT_LIT(o, ",");
	*first = false;
	put(o, quoted_key_colon, n);
}

#define PUT_KEY(o, first, name) put_key((o), (first), "\"" name "\":", sizeof("\"" name "\":") - 1)

/* Input is valid UTF-8, so only '"', '\\' and control characters need
 * escaping; runs of other bytes are copied whole. */
static void put_string(struct json_out *o, struct oa_str s)
{
	static const char hex[] = "0123456789abcdef";
	PUT_LIT(o, "\"");
	size_t run = 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(o, s.ptr + run, i - run);
		run = i + 1;
		if (c == '"') {
			PUT_LIT(o, "\\\"");
		} else if (c == '\\') {
			PUT_LIT(o, "\\\\");
		} else {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
			put(o, esc, sizeof(esc));
		}
	}
	put(o, s.ptr + run, s.len - run);
	PUT_LIT(o, "\"");
}

static void put_hex_id(struct json_out *o, const uint8_t *id, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char text[2 + 2 * 16];
	size_t len = 0;
	text[len++] = '"';
	for (size_t i = 0; i < n; i++) {
		text[len++] = hex[id[i] >> 4];
		text[len++] = hex[id[i] & 0xF];
	}
	text[len++] = '"';
	put(o, text, len);
}

/* Decimal digits of v, written back from end; returns where they start. */
static char *format_decimal(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static void put_uint(struct json_out *o, uint64_t v)
{
	char text[20];
	char *start = format_decimal(text + sizeof(text), v);
	put(o, start, (size_t)(text + sizeof(text) - start));
}

/* 64-bit integers are JSON strings in proto3 JSON. */
static void put_quoted_uint(struct json_out *o, uint64_t v)
{
	char text[22];
	text[sizeof(text) - 1] = '"';
	char *start = format_decimal(text + sizeof(text) - 1, v);
	*--start = '"';
	put(o, start, (size_t)(text + sizeof(text) - start));
}

static void put_quoted_int(struct json_out *o, int64_t v)
{
	char text[23];
	text[sizeof(text) - 1] = '"';
	/* Negating in unsigned arithmetic keeps INT64_MIN defined. */
	uint64_t magnitude = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	char *start = format_decimal(text + sizeof(text) - 1, magnitude);
	if (v < 0)
		*--start = '-';
	*--start = '"';
	put(o, start, (size_t)(text + sizeof(text) - start));
}

/* The shortest text that reads back as the same double. The host program may
 * have set a locale with a decimal comma, so format in the C locale; glibc's
 * "C" locale object is static, so this does not allocate. */
static void put_double(struct json_out *o, double d)
{
	if (isnan(d)) {
		PUT_LIT(o, "\"NaN\"");
		return;
	}
	if (isinf(d)) {
		if (d > 0)
			PUT_LIT(o, "\"Infinity\"");
		else
			PUT_LIT(o, "\"-Infinity\"");
		return;
	}
	locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	locale_t previous = uselocale(c_locale);
	char text[32];
	int n = 0;
	for (int precision = 15; precision <= 17; precision++) {
		n = snprintf(text, sizeof(text), "%.*g", precision, d);
		if (strtod_l(text, NULL, c_locale) == d)
			break;
	}
	uselocale(previous);
	freelocale(c_locale);
	put(o, text, (size_t)n);
}

static void put_any_value(struct json_out *o, const struct oa_attr *a)
{
	switch (a->type) {
	case OA_VALUE_STRING:
		PUT_LIT(o, "{\"stringValue\":");
		put_string(o, a->v.s);
		break;
	case OA_VALUE_BOOL:
		if (a->v.b)
			PUT_LIT(o, "{\"boolValue\":true");
		else
			PUT_LIT(o, "{\"boolValue\":false");
		break;
	case OA_VALUE_INT:
		PUT_LIT(o, "{\"intValue\":");
		put_quoted_int(o, a->v.i);
		break;
	case OA_VALUE_DOUBLE:
		PUT_LIT(o, "{\"doubleValue\":");
		put_double(o, a->v.d);
		break;
	case OA_VALUE_STRING_ARRAY:
		PUT_LIT(o, "{\"arrayValue\":{");
		if (a->v.array.n) {
			PUT_LIT(o, "\"values\":[");
			for (uint32_t i = 0; i < a->v.array.n; i++) {
				if (i)
					PUT_LIT(o, ",");
				PUT_LIT(o, "{\"stringValue\":");
				put_string(o, a->v.array.items[i]);
				PUT_LIT(o, "}");
			}
			PUT_LIT(o, "]");
		}
		PUT_LIT(o, "}");
		break;
	default: /* no value set */
		PUT_LIT(o, "{");
		break;
	}
	PUT_LIT(o, "}");
}

/* "attributes":[...] as a member of the current object, omitted when empty. */
static void put_attrs(struct json_out *o, bool *first, const struct oa_attr *attrs, size_t n)
{
	if (!n)
		return;
	PUT_KEY(o, first, "attributes");
	PUT_LIT(o, "[");
	for (size_t i = 0; i < n; i++) {
		bool first_member = true;
		if (i)
			PUT_LIT(o, ",");
		PUT_LIT(o, "{");
		if (attrs[i].key.len) {
			PUT_KEY(o, &first_member, "key");
			put_string(o, attrs[i].key);
		}
		PUT_KEY(o, &first_member, "value");
		put_any_value(o, &attrs[i]);
		PUT_LIT(o, "}");
	}
	PUT_LIT(o, "]");
}

static void put_str_member(struct json_out *o, bool *first, const char *quoted_key_colon,
			   size_t key_len, struct oa_str s)
{
	if (!s.len)
		return;
	put_key(o, first, quoted_key_colon, key_len);
	put_string(o, s);
}

#define PUT_STR_MEMBER(o, first, name, s)                                                          \
	put_str_member((o), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (s))

static void put_uint_member(struct json_out *o, bool *first, const char *quoted_key_colon,
			    size_t key_len, uint64_t v)
{
	if (!v)
		return;
	put_key(o, first, quoted_key_colon, key_len);
	put_uint(o, v);
}

#define PUT_UINT_MEMBER(o, first, name, v)                                                         \
	put_uint_member((o), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (v))

static void put_time_member(struct json_out *o, bool *first, const char *quoted_key_colon,
			    size_t key_len, uint64_t v)
{
	if (!v)
		return;
	put_key(o, first, quoted_key_colon, key_len);
	put_quoted_uint(o, v);
}

#define PUT_TIME_MEMBER(o, first, name, v)                                                         \
	put_time_member((o), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (v))

static void put_event(struct json_out *o, const struct oa_event *e)
{
	bool first = true;
	PUT_LIT(o, "{");
	PUT_TIME_MEMBER(o, &first, "timeUnixNano", e->time_unix_nano);
	PUT_STR_MEMBER(o, &first, "name", e->name);
	put_attrs(o, &first, e->attrs, e->n_attrs);
	PUT_UINT_MEMBER(o, &first, "droppedAttributesCount", e->dropped_attrs);
	PUT_LIT(o, "}");
}

static void put_link(struct json_out *o, const struct oa_link *l)
{
	bool first = true;
	PUT_LIT(o, "{");
	PUT_KEY(o, &first, "traceId");
	put_hex_id(o, l->trace_id, sizeof(l->trace_id));
	PUT_KEY(o, &first, "spanId");
	put_hex_id(o, l->span_id, sizeof(l->span_id));
	PUT_STR_MEMBER(o, &first, "traceState", l->trace_state);
	put_attrs(o, &first, l->attrs, l->n_attrs);
	PUT_UINT_MEMBER(o, &first, "droppedAttributesCount", l->dropped_attrs);
	PUT_UINT_MEMBER(o, &first, "flags", l->flags);
	PUT_LIT(o, "}");
}

static void put_span(struct json_out *o, const struct oa_export_span *s)
{
	bool first = true;
	PUT_LIT(o, "{");
	PUT_KEY(o, &first, "traceId");
	put_hex_id(o, s->trace_id, sizeof(s->trace_id));
	PUT_KEY(o, &first, "spanId");
	put_hex_id(o, s->span_id, sizeof(s->span_id));
	PUT_STR_MEMBER(o, &first, "traceState", s->trace_state);
	if (s->has_parent) {
		PUT_KEY(o, &first, "parentSpanId");
		put_hex_id(o, s->parent_span_id, sizeof(s->parent_span_id));
	}
	PUT_STR_MEMBER(o, &first, "name", s->name);
	PUT_UINT_MEMBER(o, &first, "kind", s->kind);
	PUT_TIME_MEMBER(o, &first, "startTimeUnixNano", s->start_unix_nano);
	PUT_TIME_MEMBER(o, &first, "endTimeUnixNano", s->end_unix_nano);
	put_attrs(o, &first, s->attrs, s->n_attrs);
	PUT_UINT_MEMBER(o, &first, "droppedAttributesCount", s->dropped_attrs);
	if (s->n_events) {
		PUT_KEY(o, &first, "events");
		PUT_LIT(o, "[");
		for (uint32_t i = 0; i < s->n_events; i++) {
			if (i)
				PUT_LIT(o, ",");
			put_event(o, &s->events[i]);
		}
		PUT_LIT(o, "]");
	}
	PUT_UINT_MEMBER(o, &first, "droppedEventsCount", s->dropped_events);
	if (s->n_links) {
		PUT_KEY(o, &first, "links");
		PUT_LIT(o, "[");
		for (uint32_t i = 0; i < s->n_links; i++) {
			if (i)
				PUT_LIT(o, ",");
			put_link(o, &s->links[i]);
		}
		PUT_LIT(o, "]");
	}
	PUT_UINT_MEMBER(o, &first, "droppedLinksCount", s->dropped_links);
	if (s->status_code != OA_STATUS_UNSET || s->status_message.len) {
		bool first_member = true;
		PUT_KEY(o, &first, "status");
		PUT_LIT(o, "{");
		PUT_STR_MEMBER(o, &first_member, "message", s->status_message);
		PUT_UINT_MEMBER(o, &first_member, "code", s->status_code);
		PUT_LIT(o, "}");
	}
	PUT_UINT_MEMBER(o, &first, "flags", s->flags);
	PUT_LIT(o, "}");
}

static void put_scope_spans(struct json_out *o, const struct oa_export_scope *scope)
{
	bool first = true;
	PUT_LIT(o, "{\"scope\":{");
	PUT_STR_MEMBER(o, &first, "name", scope->name);
	PUT_STR_MEMBER(o, &first, "version", scope->version);
	PUT_LIT(o, "}");
	if (scope->n_spans) {
		PUT_LIT(o, ",\"spans\":[");
		for (size_t i = 0; i < scope->n_spans; i++) {
			if (i)
				PUT_LIT(o, ",");
			put_span(o, &scope->spans[i]);
		}
		PUT_LIT(o, "]");
	}
	PUT_LIT(o, "}");
}

bool oa_json_batch_encode(const struct oa_export_batch *batch, struct oa_buf *out)
{
	struct json_out o = {.buf = out};
	bool first = true;
	PUT_LIT(&o, "{\"resourceSpans\":[{\"resource\":{");
	put_attrs(&o, &first, batch->resource_attrs, batch->n_resource_attrs);
	PUT_LIT(&o, "}");
	if (batch->n_scopes) {
		PUT_LIT(&o, ",\"scopeSpans\":[");
		for (size_t i = 0; i < batch->n_scopes; i++) {
			if (i)
				PUT_LIT(&o, ",");
			put_scope_spans(&o, &batch->scopes[i]);
		}
		PUT_LIT(&o, "]");
	}
	PUT_LIT(&o, "}]}");
	return !o.failed;
}

/* ---- metrics (ExportMetricsServiceRequest) */

static void put_histogram_point(struct json_out *o, const struct oa_metrics_export *m,
				const struct oa_metric_point *p)
{
	struct oa_attr attrs[OA_METRIC_ATTRS_MAX];
	struct oa_metric_attr_text text;
	size_t n_attrs = oa_metric_point_attrs(p, attrs, &text);
	bool first = true;
	PUT_LIT(o, "{");
	put_attrs(o, &first, attrs, n_attrs);
	PUT_TIME_MEMBER(o, &first, "startTimeUnixNano", m->start_unix_nano);
	PUT_TIME_MEMBER(o, &first, "timeUnixNano", m->time_unix_nano);
	PUT_TIME_MEMBER(o, &first, "count", p->count);
	PUT_KEY(o, &first, "sum"); /* optional: written when set, even as 0 */
	put_double(o, p->sum_s);
	PUT_LIT(o, ",\"bucketCounts\":[");
	const struct oa_metric_info *info = &oa_metric_info[p->metric];
	for (int b = 0; b <= info->n_bounds; b++) {
		if (b)
			PUT_LIT(o, ",");
		put_quoted_uint(o, p->buckets[b]);
	}
	PUT_LIT(o, "],\"explicitBounds\":[");
	for (int b = 0; b < info->n_bounds; b++) {
		if (b)
			PUT_LIT(o, ",");
		put_double(o, info->bounds_s[b]);
	}
	PUT_LIT(o, "]}");
}

static struct oa_str cstr(const char *s)
{
	return (struct oa_str){s, (uint32_t)strlen(s)};
}

static void put_span_counts(struct json_out *o, const struct oa_metrics_export *m)
{
	bool first = true;
	PUT_LIT(o, "{\"scope\":{");
	PUT_STR_MEMBER(o, &first, "name", cstr(OA_SPANS_SCOPE));
	PUT_STR_MEMBER(o, &first, "version", m->scope_version);
	PUT_LIT(o, "},\"metrics\":[{");
	first = true;
	PUT_STR_MEMBER(o, &first, "name", cstr(OA_SPANS_METRIC));
	PUT_STR_MEMBER(o, &first, "description", cstr(OA_SPANS_DESCRIPTION));
	PUT_STR_MEMBER(o, &first, "unit", cstr("{span}"));
	PUT_LIT(o, ",\"sum\":{\"dataPoints\":[");
	for (size_t i = 0; i < m->n_span_counts; i++) {
		struct oa_attr attrs[2];
		size_t n_attrs = oa_span_count_attrs(&m->span_counts[i], attrs);
		if (i)
			PUT_LIT(o, ",");
		first = true;
		PUT_LIT(o, "{");
		put_attrs(o, &first, attrs, n_attrs);
		PUT_TIME_MEMBER(o, &first, "startTimeUnixNano", m->start_unix_nano);
		PUT_TIME_MEMBER(o, &first, "timeUnixNano", m->time_unix_nano);
		PUT_KEY(o, &first, "asInt"); /* the oneof is set, even to 0 */
		put_quoted_uint(o, m->span_counts[i].value);
		PUT_LIT(o, "}");
	}
	if (m->delta)
		PUT_LIT(o, "],\"aggregationTemporality\":1,\"isMonotonic\":true}}]}");
	else
		PUT_LIT(o, "],\"aggregationTemporality\":2,\"isMonotonic\":true}}]}");
}

bool oa_json_metrics_encode(const struct oa_metrics_export *m, struct oa_buf *out)
{
	struct json_out o = {.buf = out};
	bool first = true;
	PUT_LIT(&o, "{\"resourceMetrics\":[{\"resource\":{");
	put_attrs(&o, &first, m->resource_attrs, m->n_resource_attrs);
	PUT_LIT(&o, "},\"scopeMetrics\":[");
	/* one ScopeMetrics per run of points whose metrics share a scope */
	for (size_t i = 0; i < m->n_points;) {
		const char *scope_name = oa_metric_info[m->points[i].metric].scope;
		if (i)
			PUT_LIT(&o, ",");
		PUT_LIT(&o, "{\"scope\":{");
		first = true;
		PUT_STR_MEMBER(&o, &first, "name", cstr(scope_name));
		PUT_STR_MEMBER(&o, &first, "version", m->scope_version);
		PUT_LIT(&o, "},\"metrics\":[");
		for (size_t k = i;
		     i < m->n_points &&
		     strcmp(oa_metric_info[m->points[i].metric].scope, scope_name) == 0;) {
			uint8_t metric = m->points[i].metric;
			if (i > k)
				PUT_LIT(&o, ",");
			first = true;
			PUT_LIT(&o, "{");
			PUT_STR_MEMBER(&o, &first, "name", cstr(oa_metric_info[metric].name));
			PUT_STR_MEMBER(&o, &first, "description",
				       cstr(oa_metric_info[metric].description));
			PUT_STR_MEMBER(&o, &first, "unit", cstr("s"));
			PUT_LIT(&o, ",\"histogram\":{\"dataPoints\":[");
			for (size_t j = i; i < m->n_points && m->points[i].metric == metric; i++) {
				if (i > j)
					PUT_LIT(&o, ",");
				put_histogram_point(&o, m, &m->points[i]);
			}
			if (m->delta)
				PUT_LIT(&o, "],\"aggregationTemporality\":1}}");
			else
				PUT_LIT(&o, "],\"aggregationTemporality\":2}}");
		}
		PUT_LIT(&o, "]}");
	}
	if (m->n_span_counts) {
		if (m->n_points)
			PUT_LIT(&o, ",");
		put_span_counts(&o, m);
	}
	PUT_LIT(&o, "]}]}");
	return !o.failed;
}
