/* The encoder writes back to front: a nested message is written before its
 * length prefix, so its length is simply how far the cursor moved and no
 * sub-message size is ever computed twice. Only the total is computed up
 * front, to know where the end is. Fields go out in field-number order and
 * proto3 defaults are omitted, exactly as protobuf-c packs the same message. */
#include "encode_pb.h"

#include <endian.h>
#include <string.h>

#include "copy.h"

/* Wire types. */
#define WT_VARINT	      0
#define WT_FIXED64	      1
#define WT_LEN		      2
#define WT_FIXED32	      5
#define TAG(field, wire_type) (((field) << 3) | (wire_type))

/* Every tag but Span.flags (field 16) fits one byte. */
#define SPAN_FLAGS_TAG_LEN 2

static inline size_t varint_size(uint64_t v)
{
	/* 7 payload bits per byte: ceil(significant bits / 7), at least 1. */
	unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
	return (bits * 9 + 64) / 64;
}

static inline size_t len_field_size(size_t body)
{
	return 1 + varint_size(body) + body;
}

static inline size_t str_field_size(struct oa_str s)
{
	return s.len ? len_field_size(s.len) : 0;
}

static inline size_t uint_field_size(uint64_t v)
{
	return v ? 1 + varint_size(v) : 0;
}

static inline size_t fixed64_field_size(uint64_t v)
{
	return v ? 1 + 8 : 0;
}

/* Body of the AnyValue: oneof members are written even when default. */
static size_t any_value_size(const struct oa_attr *a)
{
	switch (a->type) {
	case OA_VALUE_STRING:
		return len_field_size(a->v.s.len);
	case OA_VALUE_BOOL:
		return 2;
	case OA_VALUE_INT:
		return 1 + varint_size((uint64_t)a->v.i);
	case OA_VALUE_DOUBLE:
		return 1 + 8;
	case OA_VALUE_STRING_ARRAY: {
		size_t array = 0;
		for (uint32_t i = 0; i < a->v.array.n; i++)
			array += len_field_size(len_field_size(a->v.array.items[i].len));
		return len_field_size(array);
	}
	default: /* no value set */
		return 0;
	}
}

static size_t attrs_size(const struct oa_attr *attrs, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		size_t key_value =
		    str_field_size(attrs[i].key) + len_field_size(any_value_size(&attrs[i]));
		total += len_field_size(key_value);
	}
	return total;
}

static size_t event_size(const struct oa_event *e)
{
	return fixed64_field_size(e->time_unix_nano) + str_field_size(e->name) +
	       attrs_size(e->attrs, e->n_attrs) + uint_field_size(e->dropped_attrs);
}

static size_t link_size(const struct oa_link *l)
{
	return len_field_size(sizeof(l->trace_id)) + len_field_size(sizeof(l->span_id)) +
	       str_field_size(l->trace_state) + attrs_size(l->attrs, l->n_attrs) +
	       uint_field_size(l->dropped_attrs) + (l->flags ? 1 + 4 : 0);
}

static inline bool has_status(const struct oa_export_span *s)
{
	return s->status_code != OA_STATUS_UNSET || s->status_message.len;
}

static size_t span_size(const struct oa_export_span *s)
{
	size_t n = len_field_size(sizeof(s->trace_id)) + len_field_size(sizeof(s->span_id)) +
		   str_field_size(s->trace_state) +
		   (s->has_parent ? len_field_size(sizeof(s->parent_span_id)) : 0) +
		   str_field_size(s->name) + uint_field_size(s->kind) +
		   fixed64_field_size(s->start_unix_nano) + fixed64_field_size(s->end_unix_nano) +
		   attrs_size(s->attrs, s->n_attrs) + uint_field_size(s->dropped_attrs) +
		   uint_field_size(s->dropped_events) + uint_field_size(s->dropped_links);
	for (uint32_t i = 0; i < s->n_events; i++)
		n += len_field_size(event_size(&s->events[i]));
	for (uint32_t i = 0; i < s->n_links; i++)
		n += len_field_size(link_size(&s->links[i]));
	if (has_status(s))
		n += len_field_size(str_field_size(s->status_message) +
				    uint_field_size(s->status_code));
	if (s->flags)
		n += SPAN_FLAGS_TAG_LEN + 4;
	return n;
}

static size_t scope_spans_size(const struct oa_export_scope *scope)
{
	size_t n = len_field_size(str_field_size(scope->name) + str_field_size(scope->version));
	for (size_t i = 0; i < scope->n_spans; i++)
		n += len_field_size(span_size(&scope->spans[i]));
	return n;
}

static size_t resource_spans_size(const struct oa_export_batch *batch)
{
	size_t n = len_field_size(attrs_size(batch->resource_attrs, batch->n_resource_attrs));
	for (size_t i = 0; i < batch->n_scopes; i++)
		n += len_field_size(scope_spans_size(&batch->scopes[i]));
	return n;
}

size_t oa_pb_batch_size(const struct oa_export_batch *batch)
{
	return len_field_size(resource_spans_size(batch));
}

/* Writers: p is the cursor, everything from p on is already written; each
 * writer moves it back over what it writes and returns it. */

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	if (v < 0x80) {
		*--p = (uint8_t)v;
		return p;
	}
	p -= varint_size(v);
	uint8_t *w = p;
	while (v >= 0x80) {
		*w++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*w = (uint8_t)v;
	return p;
}

static inline uint8_t *put_tag(uint8_t *p, uint8_t tag)
{
	*--p = tag;
	return p;
}

/* Prefixes the body that starts at p and ends at end with its length and tag. */
static inline uint8_t *put_len_prefix(uint8_t *p, const uint8_t *end, uint8_t tag)
{
	return put_tag(put_varint(p, (uint64_t)(end - p)), tag);
}

static inline uint8_t *put_bytes_field(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
	p -= len;
	oa_copy(p, data, len); /* an empty oa_str may have a NULL ptr */
	return put_tag(put_varint(p, len), tag);
}

static inline uint8_t *put_str_field(uint8_t *p, uint8_t tag, struct oa_str s)
{
	return s.len ? put_bytes_field(p, tag, s.ptr, s.len) : p;
}

static inline uint8_t *put_uint_field(uint8_t *p, uint8_t tag, uint64_t v)
{
	return v ? put_tag(put_varint(p, v), tag) : p;
}

static inline uint8_t *put_fixed64(uint8_t *p, uint8_t tag, uint64_t v)
{
	uint64_t le = htole64(v);
	p -= sizeof(le);
	memcpy(p, &le, sizeof(le));
	return put_tag(p, tag);
}

static inline uint8_t *put_fixed64_field(uint8_t *p, uint8_t tag, uint64_t v)
{
	return v ? put_fixed64(p, tag, v) : p;
}

static inline uint8_t *put_fixed32(uint8_t *p, uint32_t v)
{
	uint32_t le = htole32(v);
	p -= sizeof(le);
	memcpy(p, &le, sizeof(le));
	return p;
}

static uint8_t *put_any_value(uint8_t *p, const struct oa_attr *a)
{
	switch (a->type) {
	case OA_VALUE_STRING:
		return put_bytes_field(p, TAG(1, WT_LEN), a->v.s.ptr, a->v.s.len);
	case OA_VALUE_BOOL:
		*--p = a->v.b ? 1 : 0;
		return put_tag(p, TAG(2, WT_VARINT));
	case OA_VALUE_INT:
		return put_tag(put_varint(p, (uint64_t)a->v.i), TAG(3, WT_VARINT));
	case OA_VALUE_DOUBLE: {
		uint64_t bits;
		memcpy(&bits, &a->v.d, sizeof(bits));
		return put_fixed64(p, TAG(4, WT_FIXED64), bits);
	}
	case OA_VALUE_STRING_ARRAY: {
		const uint8_t *array_end = p;
		for (uint32_t i = a->v.array.n; i-- > 0;) {
			const uint8_t *item_end = p;
			const struct oa_str *item = &a->v.array.items[i];
			p = put_bytes_field(p, TAG(1, WT_LEN), item->ptr, item->len);
			p = put_len_prefix(p, item_end, TAG(1, WT_LEN)); /* ArrayValue.values */
		}
		return put_len_prefix(p, array_end, TAG(5, WT_LEN));
	}
	default: /* no value set */
		return p;
	}
}

/* A repeated KeyValue field; items are written last to first so they read
 * first to last. */
static uint8_t *put_attrs(uint8_t *p, uint8_t tag, const struct oa_attr *attrs, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		const uint8_t *key_value_end = p;
		const uint8_t *value_end = p;
		p = put_any_value(p, &attrs[i]);
		p = put_len_prefix(p, value_end, TAG(2, WT_LEN));
		p = put_str_field(p, TAG(1, WT_LEN), attrs[i].key);
		p = put_len_prefix(p, key_value_end, tag);
	}
	return p;
}

static uint8_t *put_event(uint8_t *p, const struct oa_event *e)
{
	p = put_uint_field(p, TAG(4, WT_VARINT), e->dropped_attrs);
	p = put_attrs(p, TAG(3, WT_LEN), e->attrs, e->n_attrs);
	p = put_str_field(p, TAG(2, WT_LEN), e->name);
	return put_fixed64_field(p, TAG(1, WT_FIXED64), e->time_unix_nano);
}

static uint8_t *put_link(uint8_t *p, const struct oa_link *l)
{
	if (l->flags)
		p = put_tag(put_fixed32(p, l->flags), TAG(6, WT_FIXED32));
	p = put_uint_field(p, TAG(5, WT_VARINT), l->dropped_attrs);
	p = put_attrs(p, TAG(4, WT_LEN), l->attrs, l->n_attrs);
	p = put_str_field(p, TAG(3, WT_LEN), l->trace_state);
	p = put_bytes_field(p, TAG(2, WT_LEN), l->span_id, sizeof(l->span_id));
	return put_bytes_field(p, TAG(1, WT_LEN), l->trace_id, sizeof(l->trace_id));
}

static uint8_t *put_span(uint8_t *p, const struct oa_export_span *s)
{
	if (s->flags) {
		p = put_fixed32(p, s->flags);
		/* Field 16 needs a two-byte tag varint. */
		p = put_varint(p, TAG(16, WT_FIXED32));
	}
	if (has_status(s)) {
		const uint8_t *status_end = p;
		p = put_uint_field(p, TAG(3, WT_VARINT), s->status_code);
		p = put_str_field(p, TAG(2, WT_LEN), s->status_message);
		p = put_len_prefix(p, status_end, TAG(15, WT_LEN));
	}
	p = put_uint_field(p, TAG(14, WT_VARINT), s->dropped_links);
	for (uint32_t i = s->n_links; i-- > 0;) {
		const uint8_t *link_end = p;
		p = put_len_prefix(put_link(p, &s->links[i]), link_end, TAG(13, WT_LEN));
	}
	p = put_uint_field(p, TAG(12, WT_VARINT), s->dropped_events);
	for (uint32_t i = s->n_events; i-- > 0;) {
		const uint8_t *event_end = p;
		p = put_len_prefix(put_event(p, &s->events[i]), event_end, TAG(11, WT_LEN));
	}
	p = put_uint_field(p, TAG(10, WT_VARINT), s->dropped_attrs);
	p = put_attrs(p, TAG(9, WT_LEN), s->attrs, s->n_attrs);
	p = put_fixed64_field(p, TAG(8, WT_FIXED64), s->end_unix_nano);
	p = put_fixed64_field(p, TAG(7, WT_FIXED64), s->start_unix_nano);
	p = put_uint_field(p, TAG(6, WT_VARINT), s->kind);
	p = put_str_field(p, TAG(5, WT_LEN), s->name);
	if (s->has_parent)
		p = put_bytes_field(p, TAG(4, WT_LEN), s->parent_span_id,
				    sizeof(s->parent_span_id));
	p = put_str_field(p, TAG(3, WT_LEN), s->trace_state);
	p = put_bytes_field(p, TAG(2, WT_LEN), s->span_id, sizeof(s->span_id));
	return put_bytes_field(p, TAG(1, WT_LEN), s->trace_id, sizeof(s->trace_id));
}

static uint8_t *put_scope_spans(uint8_t *p, const struct oa_export_scope *scope)
{
	for (size_t i = scope->n_spans; i-- > 0;) {
		const uint8_t *span_end = p;
		p = put_len_prefix(put_span(p, &scope->spans[i]), span_end, TAG(2, WT_LEN));
	}
	const uint8_t *scope_end = p;
	p = put_str_field(p, TAG(2, WT_LEN), scope->version);
	p = put_str_field(p, TAG(1, WT_LEN), scope->name);
	return put_len_prefix(p, scope_end, TAG(1, WT_LEN));
}

size_t oa_pb_batch_encode(const struct oa_export_batch *batch, uint8_t *out, size_t size)
{
	uint8_t *end = out + size;
	uint8_t *p = end;
	for (size_t i = batch->n_scopes; i-- > 0;) {
		const uint8_t *scope_spans_end = p;
		p = put_scope_spans(p, &batch->scopes[i]);
		p = put_len_prefix(p, scope_spans_end, TAG(2, WT_LEN));
	}
	const uint8_t *resource_end = p;
	p = put_attrs(p, TAG(1, WT_LEN), batch->resource_attrs, batch->n_resource_attrs);
	p = put_len_prefix(p, resource_end, TAG(1, WT_LEN));
	p = put_len_prefix(p, end, TAG(1, WT_LEN)); /* ExportTraceServiceRequest.resource_spans */
	return size;
}
