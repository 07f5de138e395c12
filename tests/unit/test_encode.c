/* The protobuf encoder must produce exactly the bytes protobuf-c packs for the
 * same message, and those bytes must unpack to the batch's values; the JSON
 * and console encoders are checked against expected text.
 *
 * `test_encode --dump DIR` writes batch.pb and batch.json of the rich batch
 * for tests/integration/test_encode_decode.py. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "encode_console.h"
#include "encode_json.h"
#include "encode_pb.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue PbAnyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue PbArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue PbKeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope PbScope;
typedef Opentelemetry__Proto__Resource__V1__Resource PbResource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans PbResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans PbScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span PbSpan;
typedef Opentelemetry__Proto__Trace__V1__Span__Event PbEvent;
typedef Opentelemetry__Proto__Trace__V1__Span__Link PbLink;
typedef Opentelemetry__Proto__Trace__V1__Status PbStatus;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest PbRequest;

/* Everything a test allocates goes here and is freed by arena_reset. */
static void **arena_blocks;
static size_t arena_count, arena_cap;

static void *arena_alloc(size_t size)
{
	if (arena_count == arena_cap) {
		arena_cap = arena_cap ? 2 * arena_cap : 256;
		arena_blocks = realloc(arena_blocks, arena_cap * sizeof(*arena_blocks));
		if (!arena_blocks)
			abort();
	}
	void *block = calloc(1, size ? size : 1);
	if (!block)
		abort();
	arena_blocks[arena_count++] = block;
	return block;
}

static void arena_reset(void)
{
	for (size_t i = 0; i < arena_count; i++)
		free(arena_blocks[i]);
	arena_count = 0;
}

#define ARENA_NEW(type, n) ((type *)arena_alloc(sizeof(type) * (n)))

/* ---- The reference: the same batch as a protobuf-c message. ---- */

static char *ref_string(struct oa_str s)
{
	char *copy = arena_alloc(s.len + 1);
	if (s.len)
		memcpy(copy, s.ptr, s.len);
	return copy;
}

static ProtobufCBinaryData ref_bytes(const uint8_t *data, size_t len)
{
	uint8_t *copy = arena_alloc(len);
	memcpy(copy, data, len);
	return (ProtobufCBinaryData){.len = len, .data = copy};
}

static PbAnyValue *ref_any_value(const struct oa_attr *a)
{
	PbAnyValue *v = ARENA_NEW(PbAnyValue, 1);
	*v = (PbAnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	switch (a->type) {
	case OA_VALUE_STRING:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		v->string_value = ref_string(a->v.s);
		break;
	case OA_VALUE_BOOL:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
		v->bool_value = a->v.b;
		break;
	case OA_VALUE_INT:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
		v->int_value = a->v.i;
		break;
	case OA_VALUE_DOUBLE:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
		v->double_value = a->v.d;
		break;
	case OA_VALUE_STRING_ARRAY: {
		PbArrayValue *array = ARENA_NEW(PbArrayValue, 1);
		*array = (PbArrayValue)OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
		array->n_values = a->v.array.n;
		array->values = ARENA_NEW(PbAnyValue *, a->v.array.n);
		for (uint32_t i = 0; i < a->v.array.n; i++) {
			struct oa_attr item = {.type = OA_VALUE_STRING, .v.s = a->v.array.items[i]};
			array->values[i] = ref_any_value(&item);
		}
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
		v->array_value = array;
		break;
	}
	}
	return v;
}

static PbKeyValue **ref_attrs(const struct oa_attr *attrs, size_t n)
{
	PbKeyValue **list = ARENA_NEW(PbKeyValue *, n);
	for (size_t i = 0; i < n; i++) {
		list[i] = ARENA_NEW(PbKeyValue, 1);
		*list[i] = (PbKeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
		list[i]->key = ref_string(attrs[i].key);
		list[i]->value = ref_any_value(&attrs[i]);
	}
	return list;
}

static PbSpan *ref_span(const struct oa_export_span *s)
{
	PbSpan *span = ARENA_NEW(PbSpan, 1);
	*span = (PbSpan)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
	span->trace_id = ref_bytes(s->trace_id, sizeof(s->trace_id));
	span->span_id = ref_bytes(s->span_id, sizeof(s->span_id));
	span->trace_state = ref_string(s->trace_state);
	if (s->has_parent)
		span->parent_span_id = ref_bytes(s->parent_span_id, sizeof(s->parent_span_id));
	span->flags = s->flags;
	span->name = ref_string(s->name);
	span->kind = s->kind;
	span->start_time_unix_nano = s->start_unix_nano;
	span->end_time_unix_nano = s->end_unix_nano;
	span->n_attributes = s->n_attrs;
	span->attributes = ref_attrs(s->attrs, s->n_attrs);
	span->dropped_attributes_count = s->dropped_attrs;
	span->n_events = s->n_events;
	span->events = ARENA_NEW(PbEvent *, s->n_events);
	for (uint32_t i = 0; i < s->n_events; i++) {
		const struct oa_event *e = &s->events[i];
		PbEvent *event = ARENA_NEW(PbEvent, 1);
		*event = (PbEvent)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
		event->time_unix_nano = e->time_unix_nano;
		event->name = ref_string(e->name);
		event->n_attributes = e->n_attrs;
		event->attributes = ref_attrs(e->attrs, e->n_attrs);
		event->dropped_attributes_count = e->dropped_attrs;
		span->events[i] = event;
	}
	span->dropped_events_count = s->dropped_events;
	span->n_links = s->n_links;
	span->links = ARENA_NEW(PbLink *, s->n_links);
	for (uint32_t i = 0; i < s->n_links; i++) {
		const struct oa_link *l = &s->links[i];
		PbLink *link = ARENA_NEW(PbLink, 1);
		*link = (PbLink)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
		link->trace_id = ref_bytes(l->trace_id, sizeof(l->trace_id));
		link->span_id = ref_bytes(l->span_id, sizeof(l->span_id));
		link->trace_state = ref_string(l->trace_state);
		link->n_attributes = l->n_attrs;
		link->attributes = ref_attrs(l->attrs, l->n_attrs);
		link->dropped_attributes_count = l->dropped_attrs;
		link->flags = l->flags;
		span->links[i] = link;
	}
	span->dropped_links_count = s->dropped_links;
	/* An unset status with no message is the default: no Status at all. */
	if (s->status_code || s->status_message.len) {
		PbStatus *status = ARENA_NEW(PbStatus, 1);
		*status = (PbStatus)OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
		status->message = ref_string(s->status_message);
		status->code = s->status_code;
		span->status = status;
	}
	return span;
}

static PbRequest *ref_request(const struct oa_export_batch *batch)
{
	PbResource *resource = ARENA_NEW(PbResource, 1);
	*resource = (PbResource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	resource->n_attributes = batch->n_resource_attrs;
	resource->attributes = ref_attrs(batch->resource_attrs, batch->n_resource_attrs);

	PbResourceSpans *resource_spans = ARENA_NEW(PbResourceSpans, 1);
	*resource_spans = (PbResourceSpans)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	resource_spans->resource = resource;
	resource_spans->n_scope_spans = batch->n_scopes;
	resource_spans->scope_spans = ARENA_NEW(PbScopeSpans *, batch->n_scopes);
	for (size_t i = 0; i < batch->n_scopes; i++) {
		const struct oa_export_scope *s = &batch->scopes[i];
		PbScope *scope = ARENA_NEW(PbScope, 1);
		*scope = (PbScope)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
		scope->name = ref_string(s->name);
		scope->version = ref_string(s->version);
		PbScopeSpans *scope_spans = ARENA_NEW(PbScopeSpans, 1);
		*scope_spans = (PbScopeSpans)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
		scope_spans->scope = scope;
		scope_spans->n_spans = s->n_spans;
		scope_spans->spans = ARENA_NEW(PbSpan *, s->n_spans);
		for (size_t j = 0; j < s->n_spans; j++)
			scope_spans->spans[j] = ref_span(&s->spans[j]);
		resource_spans->scope_spans[i] = scope_spans;
	}

	PbRequest *request = ARENA_NEW(PbRequest, 1);
	*request = (PbRequest)
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	request->n_resource_spans = 1;
	request->resource_spans = ARENA_NEW(PbResourceSpans *, 1);
	request->resource_spans[0] = resource_spans;
	return request;
}

/* ---- Checking unpacked messages against the batch. ---- */

static bool str_is(const char *actual, struct oa_str expected)
{
	return actual && strlen(actual) == expected.len &&
	       (!expected.len || memcmp(actual, expected.ptr, expected.len) == 0);
}

static bool bytes_are(ProtobufCBinaryData actual, const uint8_t *expected, size_t len)
{
	return actual.len == len && memcmp(actual.data, expected, len) == 0;
}

static void check_attrs(PbKeyValue **actual, size_t n_actual, const struct oa_attr *attrs, size_t n)
{
	CHECK_EQ_INT(n_actual, n);
	for (size_t i = 0; i < n && i < n_actual; i++) {
		const struct oa_attr *a = &attrs[i];
		const PbAnyValue *v = actual[i]->value;
		CHECK(str_is(actual[i]->key, a->key));
		CHECK(v != NULL);
		if (!v)
			continue;
		switch (a->type) {
		case OA_VALUE_STRING:
			CHECK_EQ_INT(
			    v->value_case,
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
			CHECK(str_is(v->string_value, a->v.s));
			break;
		case OA_VALUE_BOOL:
			CHECK_EQ_INT(v->value_case,
				     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
			CHECK_EQ_INT(v->bool_value, a->v.b);
			break;
		case OA_VALUE_INT:
			CHECK_EQ_INT(v->value_case,
				     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
			CHECK_EQ_INT(v->int_value, a->v.i);
			break;
		case OA_VALUE_DOUBLE:
			CHECK_EQ_INT(
			    v->value_case,
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
			/* Bit for bit, so NaN compares too. */
			CHECK(memcmp(&v->double_value, &a->v.d, sizeof(double)) == 0);
			break;
		case OA_VALUE_STRING_ARRAY:
			CHECK_EQ_INT(
			    v->value_case,
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
			if (v->value_case !=
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE)
				break;
			CHECK_EQ_INT(v->array_value->n_values, a->v.array.n);
			for (uint32_t j = 0; j < a->v.array.n && j < v->array_value->n_values; j++)
				CHECK(str_is(v->array_value->values[j]->string_value,
					     a->v.array.items[j]));
			break;
		}
	}
}

static void check_span(const PbSpan *actual, const struct oa_export_span *s)
{
	CHECK(bytes_are(actual->trace_id, s->trace_id, sizeof(s->trace_id)));
	CHECK(bytes_are(actual->span_id, s->span_id, sizeof(s->span_id)));
	CHECK(str_is(actual->trace_state, s->trace_state));
	if (s->has_parent)
		CHECK(bytes_are(actual->parent_span_id, s->parent_span_id,
				sizeof(s->parent_span_id)));
	else
		CHECK_EQ_INT(actual->parent_span_id.len, 0);
	CHECK(str_is(actual->name, s->name));
	CHECK_EQ_INT(actual->kind, s->kind);
	CHECK(actual->start_time_unix_nano == s->start_unix_nano);
	CHECK(actual->end_time_unix_nano == s->end_unix_nano);
	check_attrs(actual->attributes, actual->n_attributes, s->attrs, s->n_attrs);
	CHECK_EQ_INT(actual->dropped_attributes_count, s->dropped_attrs);
	CHECK_EQ_INT(actual->n_events, s->n_events);
	for (uint32_t i = 0; i < s->n_events && i < actual->n_events; i++) {
		const PbEvent *event = actual->events[i];
		const struct oa_event *e = &s->events[i];
		CHECK(event->time_unix_nano == e->time_unix_nano);
		CHECK(str_is(event->name, e->name));
		check_attrs(event->attributes, event->n_attributes, e->attrs, e->n_attrs);
		CHECK_EQ_INT(event->dropped_attributes_count, e->dropped_attrs);
	}
	CHECK_EQ_INT(actual->dropped_events_count, s->dropped_events);
	CHECK_EQ_INT(actual->n_links, s->n_links);
	for (uint32_t i = 0; i < s->n_links && i < actual->n_links; i++) {
		const PbLink *link = actual->links[i];
		const struct oa_link *l = &s->links[i];
		CHECK(bytes_are(link->trace_id, l->trace_id, sizeof(l->trace_id)));
		CHECK(bytes_are(link->span_id, l->span_id, sizeof(l->span_id)));
		CHECK(str_is(link->trace_state, l->trace_state));
		check_attrs(link->attributes, link->n_attributes, l->attrs, l->n_attrs);
		CHECK_EQ_INT(link->dropped_attributes_count, l->dropped_attrs);
		CHECK_EQ_INT(link->flags, l->flags);
	}
	CHECK_EQ_INT(actual->dropped_links_count, s->dropped_links);
	if (s->status_code || s->status_message.len) {
		CHECK(actual->status != NULL);
		if (actual->status) {
			CHECK_EQ_INT(actual->status->code, s->status_code);
			CHECK(str_is(actual->status->message, s->status_message));
		}
	} else {
		CHECK(actual->status == NULL);
	}
	CHECK_EQ_INT(actual->flags, s->flags);
}

static void check_unpacked(const uint8_t *bytes, size_t len, const struct oa_export_batch *batch)
{
	PbRequest *request =
	    opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, len, bytes);
	CHECK(request != NULL);
	if (!request)
		return;
	CHECK_EQ_INT(request->n_resource_spans, 1);
	const PbResourceSpans *resource_spans = request->resource_spans[0];
	CHECK(resource_spans->resource != NULL);
	check_attrs(resource_spans->resource->attributes, resource_spans->resource->n_attributes,
		    batch->resource_attrs, batch->n_resource_attrs);
	CHECK_EQ_INT(resource_spans->n_scope_spans, batch->n_scopes);
	for (size_t i = 0; i < batch->n_scopes && i < resource_spans->n_scope_spans; i++) {
		const PbScopeSpans *scope_spans = resource_spans->scope_spans[i];
		const struct oa_export_scope *scope = &batch->scopes[i];
		CHECK(scope_spans->scope != NULL);
		CHECK(str_is(scope_spans->scope->name, scope->name));
		CHECK(str_is(scope_spans->scope->version, scope->version));
		CHECK_EQ_INT(scope_spans->n_spans, scope->n_spans);
		for (size_t j = 0; j < scope->n_spans && j < scope_spans->n_spans; j++)
			check_span(scope_spans->spans[j], &scope->spans[j]);
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
	    request, NULL);
}

/* Our bytes against protobuf-c's, then against the batch's values. Guard
 * bytes on both sides catch a write outside the announced size. */
static bool check_pb(const struct oa_export_batch *batch)
{
	size_t size = oa_pb_batch_size(batch);
	uint8_t *ours = malloc(size + 32);
	if (!ours)
		abort();
	memset(ours, 0xA5, size + 32);
	CHECK_EQ_INT(oa_pb_batch_encode(batch, ours + 16, size), size);
	bool guards_intact = true;
	for (size_t i = 0; i < 16; i++)
		guards_intact &= ours[i] == 0xA5 && ours[16 + size + i] == 0xA5;
	CHECK(guards_intact);

	PbRequest *request = ref_request(batch);
	size_t ref_size = protobuf_c_message_get_packed_size(&request->base);
	uint8_t *ref = malloc(ref_size + 1);
	if (!ref)
		abort();
	CHECK_EQ_INT(protobuf_c_message_pack(&request->base, ref), ref_size);
	CHECK_EQ_INT(size, ref_size);
	bool same = size == ref_size && memcmp(ours + 16, ref, size) == 0;
	CHECK(same);
	if (!same) {
		for (size_t i = 0; i < size && i < ref_size; i++) {
			if (ours[16 + i] != ref[i]) {
				fprintf(stderr, "  first difference at byte %zu of %zu\n", i, size);
				break;
			}
		}
	}
	check_unpacked(ours + 16, size, batch);
	free(ref);
	free(ours);
	return same;
}

/* ---- Batches. ---- */

#define STR(literal) ((struct oa_str){(literal), sizeof(literal) - 1})
#define N(array)     (sizeof(array) / sizeof((array)[0]))
#define ATTR_STR(k, text)                                                                          \
	{                                                                                          \
		.key = STR(k), .type = OA_VALUE_STRING, .v.s = STR(text)                           \
	}
#define ATTR_BOOL(k, x)                                                                            \
	{                                                                                          \
		.key = STR(k), .type = OA_VALUE_BOOL, .v.b = (x)                                   \
	}
#define ATTR_INT(k, x)                                                                             \
	{                                                                                          \
		.key = STR(k), .type = OA_VALUE_INT, .v.i = (x)                                    \
	}
#define ATTR_DOUBLE(k, x)                                                                          \
	{                                                                                          \
		.key = STR(k), .type = OA_VALUE_DOUBLE, .v.d = (x)                                 \
	}
#define ATTR_ARRAY(k, items, count)                                                                \
	{                                                                                          \
		.key = STR(k), .type = OA_VALUE_STRING_ARRAY, .v.array = {(items), (count) }       \
	}

static const struct oa_str rich_tags[] = {STR("a"), STR("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
					  STR("")};

static const struct oa_attr rich_resource_attrs[] = {
    ATTR_STR("service.name", "checkout"),
    ATTR_INT("process.pid", 4242),
    ATTR_STR("telemetry.sdk.language", "c"),
};

static const struct oa_attr rich_span_attrs[] = {
    ATTR_STR("http.request.method", "GET"),
    ATTR_INT("http.response.status_code", 500),
    ATTR_STR("url.path", "/users/\"42\"\\\n\t\x01"),
    ATTR_BOOL("user.flag", true),
    ATTR_BOOL("user.off", false),
    ATTR_DOUBLE("load", 0.75),
    ATTR_DOUBLE("tiny", -1e-300),
    ATTR_INT("big", INT64_MAX),
    ATTR_INT("small", INT64_MIN),
    ATTR_INT("zero", 0),
    ATTR_INT("minus.one", -1),
    ATTR_ARRAY("tags", rich_tags, N(rich_tags)),
    ATTR_ARRAY("no.tags", NULL, 0),
    ATTR_STR("greeting", "h\xC3\xA9llo \xE2\x82\xAC\xF0\x9F\x98\x80"),
    ATTR_STR("empty.value", ""),
    ATTR_DOUBLE("nan", NAN),
    ATTR_DOUBLE("inf", INFINITY),
    ATTR_DOUBLE("ninf", -INFINITY),
    ATTR_STR("", "empty key"),
};

static const struct oa_attr rich_event_attrs[] = {
    ATTR_STR("exception.type", "E"),
    ATTR_STR("exception.message", "boom"),
};

static const struct oa_event rich_events[] = {
    {.time_unix_nano = 1700000000000000100ull,
     .name = STR("exception"),
     .attrs = rich_event_attrs,
     .n_attrs = N(rich_event_attrs),
     .dropped_attrs = 1},
    {0}, /* an event with nothing set */
};

static const struct oa_attr rich_link_attrs[] = {ATTR_STR("link.kind", "follows")};

static const struct oa_link rich_links[] = {
    {.trace_id = {0x02, 0x12, 0x22, 0x32, 0x42, 0x52, 0x62, 0x72, 0x82, 0x92, 0xa2, 0xb2, 0xc2,
		  0xd2, 0xe2, 0xf2},
     .span_id = {0x02, 0x13, 0x24, 0x35, 0x46, 0x57, 0x68, 0x79},
     .trace_state = STR("k=v"),
     .attrs = rich_link_attrs,
     .n_attrs = N(rich_link_attrs),
     .dropped_attrs = 4,
     .flags = OA_SPAN_FLAGS_SAMPLED | OA_SPAN_FLAGS_HAS_IS_REMOTE | OA_SPAN_FLAGS_IS_REMOTE},
    {.flags = 0}, /* zero ids, nothing else */
};

static char long_name[200];

static const struct oa_attr connect_attrs[] = {ATTR_INT("server.port", 443)};

static struct oa_export_span rich_spans[] = {
    {.trace_id = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
		  0x0e, 0x0f, 0x10},
     .span_id = {0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77},
     .parent_span_id = {0x01, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00},
     .has_parent = true,
     .trace_state = STR("vendor=abc"),
     .name = STR("GET /users/{id}"),
     .kind = OA_KIND_SERVER,
     .start_unix_nano = 1700000000000000000ull,
     .end_unix_nano = 1700000000001234567ull,
     .attrs = rich_span_attrs,
     .n_attrs = N(rich_span_attrs),
     .dropped_attrs = 3,
     .events = rich_events,
     .n_events = N(rich_events),
     .dropped_events = 2,
     .links = rich_links,
     .n_links = N(rich_links),
     .dropped_links = 5,
     .status_code = OA_STATUS_ERROR,
     .status_message = STR("Internal Server Error"),
     .flags = OA_SPAN_FLAGS_SAMPLED | OA_SPAN_FLAGS_HAS_IS_REMOTE | OA_SPAN_FLAGS_IS_REMOTE},
    {.trace_id = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
		  0x0e, 0x0f, 0x10},
     .span_id = {0x01, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33},
     .name = STR("connect"),
     .kind = OA_KIND_CLIENT,
     .start_unix_nano = 1700000000000500000ull,
     .end_unix_nano = 1700000000000600000ull,
     .attrs = connect_attrs,
     .n_attrs = N(connect_attrs),
     .status_code = OA_STATUS_OK,
     .flags = OA_SPAN_FLAGS_SAMPLED | OA_SPAN_FLAGS_HAS_IS_REMOTE},
    /* Every maximum; a status with a message but no code; a name whose
     * length needs a two-byte varint (filled in by init_rich_batch). */
    {.trace_id = {0x01},
     .span_id = {0x01},
     .kind = OA_KIND_CONSUMER,
     .start_unix_nano = UINT64_MAX,
     .end_unix_nano = UINT64_MAX,
     .dropped_attrs = UINT32_MAX,
     .dropped_events = UINT32_MAX,
     .dropped_links = UINT32_MAX,
     .status_message = STR("unset but described"),
     .flags = UINT32_MAX},
};

static const struct oa_export_span zero_span[] = {{.kind = OA_KIND_UNSPECIFIED}};

static struct oa_export_scope rich_scopes[] = {
    {.name = STR("otlpauto"),
     .version = STR("0.1.0"),
     .spans = rich_spans,
     .n_spans = N(rich_spans)},
    {.spans = zero_span, .n_spans = 1}, /* unnamed scope, all-zero span */
    {.name = STR("empty-scope")},	/* a scope with no spans */
};

static const struct oa_export_batch rich_batch = {
    .resource_attrs = rich_resource_attrs,
    .n_resource_attrs = N(rich_resource_attrs),
    .scopes = rich_scopes,
    .n_scopes = N(rich_scopes),
};

static void init_rich_batch(void)
{
	for (size_t i = 0; i < sizeof(long_name); i++)
		long_name[i] = (char)('a' + i % 26);
	rich_spans[2].name = (struct oa_str){long_name, sizeof(long_name)};
}

/* ---- Random batches: many shapes and sizes against protobuf-c. ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Mostly small values, sometimes huge ones, so every varint length occurs. */
static uint64_t random_scalar(void)
{
	switch (rng() % 4) {
	case 0:
		return 0;
	case 1:
		return rng() % 200;
	case 2:
		return rng() >> (rng() % 64);
	default:
		return rng();
	}
}

static struct oa_str random_string(void)
{
	static const char *const pieces[] = {
	    "a", "Z", " ", "\"", "\\", "\n", "\x1f", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
	    "/", "{"};
	size_t len;
	switch (rng() % 8) {
	case 0:
		len = 0;
		break;
	case 1:
		len = 100 + rng() % 300;
		break;
	case 2:
		len = rng() % 64 == 0 ? 17000 + rng() % 1000 : rng() % 10;
		break;
	default:
		len = rng() % 24;
		break;
	}
	char *s = arena_alloc(len + 4);
	size_t used = 0;
	while (used < len) {
		const char *piece = pieces[rng() % N(pieces)];
		size_t n = strlen(piece);
		memcpy(s + used, piece, n);
		used += n;
	}
	return (struct oa_str){s, (uint32_t)used};
}

static struct oa_attr *random_attrs(uint32_t n)
{
	struct oa_attr *attrs = ARENA_NEW(struct oa_attr, n);
	for (uint32_t i = 0; i < n; i++) {
		attrs[i].key = random_string();
		attrs[i].type = (uint8_t)(rng() % 5);
		switch (attrs[i].type) {
		case OA_VALUE_STRING:
			attrs[i].v.s = random_string();
			break;
		case OA_VALUE_BOOL:
			attrs[i].v.b = rng() & 1;
			break;
		case OA_VALUE_INT:
			attrs[i].v.i = (int64_t)random_scalar();
			break;
		case OA_VALUE_DOUBLE: {
			uint64_t bits = random_scalar();
			memcpy(&attrs[i].v.d, &bits, sizeof(bits));
			break;
		}
		case OA_VALUE_STRING_ARRAY: {
			uint32_t count = (uint32_t)(rng() % 4);
			struct oa_str *items = ARENA_NEW(struct oa_str, count);
			for (uint32_t j = 0; j < count; j++)
				items[j] = random_string();
			attrs[i].v.array.items = items;
			attrs[i].v.array.n = count;
			break;
		}
		}
	}
	return attrs;
}

static void random_bytes(uint8_t *out, size_t n)
{
	bool zero = rng() % 8 == 0;
	for (size_t i = 0; i < n; i++)
		out[i] = zero ? 0 : (uint8_t)rng();
}

static void random_span(struct oa_export_span *s)
{
	random_bytes(s->trace_id, sizeof(s->trace_id));
	random_bytes(s->span_id, sizeof(s->span_id));
	random_bytes(s->parent_span_id, sizeof(s->parent_span_id));
	s->has_parent = rng() & 1;
	s->trace_state = random_string();
	s->name = random_string();
	s->kind = (uint8_t)(rng() % 6);
	s->start_unix_nano = random_scalar();
	s->end_unix_nano = random_scalar();
	s->n_attrs = (uint32_t)(rng() % 8);
	s->attrs = random_attrs(s->n_attrs);
	s->dropped_attrs = (uint32_t)random_scalar();
	s->n_events = (uint32_t)(rng() % 3);
	struct oa_event *events = ARENA_NEW(struct oa_event, s->n_events);
	for (uint32_t i = 0; i < s->n_events; i++) {
		events[i].time_unix_nano = random_scalar();
		events[i].name = random_string();
		events[i].n_attrs = (uint32_t)(rng() % 3);
		events[i].attrs = random_attrs(events[i].n_attrs);
		events[i].dropped_attrs = (uint32_t)random_scalar();
	}
	s->events = events;
	s->dropped_events = (uint32_t)random_scalar();
	s->n_links = (uint32_t)(rng() % 3);
	struct oa_link *links = ARENA_NEW(struct oa_link, s->n_links);
	for (uint32_t i = 0; i < s->n_links; i++) {
		random_bytes(links[i].trace_id, sizeof(links[i].trace_id));
		random_bytes(links[i].span_id, sizeof(links[i].span_id));
		links[i].trace_state = random_string();
		links[i].n_attrs = (uint32_t)(rng() % 3);
		links[i].attrs = random_attrs(links[i].n_attrs);
		links[i].dropped_attrs = (uint32_t)random_scalar();
		links[i].flags = (uint32_t)random_scalar();
	}
	s->links = links;
	s->dropped_links = (uint32_t)random_scalar();
	s->status_code = (uint8_t)(rng() % 3);
	s->status_message = rng() & 1 ? random_string() : (struct oa_str){0};
	s->flags = (uint32_t)random_scalar();
}

static struct oa_export_batch random_batch(void)
{
	struct oa_export_batch batch = {0};
	batch.n_resource_attrs = rng() % 6;
	batch.resource_attrs = random_attrs((uint32_t)batch.n_resource_attrs);
	batch.n_scopes = rng() % 4;
	struct oa_export_scope *scopes = ARENA_NEW(struct oa_export_scope, batch.n_scopes);
	for (size_t i = 0; i < batch.n_scopes; i++) {
		scopes[i].name = random_string();
		scopes[i].version = random_string();
		/* Now and then enough spans that the scope needs a 3-byte length. */
		scopes[i].n_spans = rng() % 16 == 0 ? 300 : rng() % 5;
		struct oa_export_span *spans = ARENA_NEW(struct oa_export_span, scopes[i].n_spans);
		for (size_t j = 0; j < scopes[i].n_spans; j++)
			random_span(&spans[j]);
		scopes[i].spans = spans;
	}
	batch.scopes = scopes;
	return batch;
}

/* ---- Tests. ---- */

static void test_pb_fixed_batches(void)
{
	static const struct oa_export_batch empty = {0};
	CHECK(check_pb(&empty));
	/* Exactly one ResourceSpans holding an empty Resource. */
	uint8_t bytes[8];
	CHECK_EQ_INT(oa_pb_batch_size(&empty), 4);
	CHECK_EQ_INT(oa_pb_batch_encode(&empty, bytes, 4), 4);
	CHECK(memcmp(bytes, "\x0a\x02\x0a\x00", 4) == 0);

	struct oa_export_batch resource_only = {.resource_attrs = rich_resource_attrs,
						.n_resource_attrs = N(rich_resource_attrs)};
	CHECK(check_pb(&resource_only));
	CHECK(check_pb(&rich_batch));
	arena_reset();
}

static void test_pb_single_fields(void)
{
	/* Each scalar of a span alone at varint boundaries, so every omission
	 * rule and length is compared with protobuf-c on its own. */
	static const uint64_t values[] = {
	    0, 1, 127, 128, 16383, 16384, 0xFFFFFFFF, 0x100000000ull, INT64_MAX, UINT64_MAX};
	for (size_t i = 0; i < N(values); i++) {
		struct oa_export_span span = {.start_unix_nano = values[i]};
		struct oa_attr attr = {
		    .key = STR("k"), .type = OA_VALUE_INT, .v.i = (int64_t)values[i]};
		span.attrs = &attr;
		span.n_attrs = 1;
		span.dropped_attrs = (uint32_t)values[i];
		span.dropped_links = (uint32_t)values[i];
		span.flags = (uint32_t)values[i];
		span.status_code = (uint8_t)(values[i] % 3);
		struct oa_export_scope scope = {.spans = &span, .n_spans = 1};
		struct oa_export_batch batch = {.scopes = &scope, .n_scopes = 1};
		CHECK(check_pb(&batch));
	}
	arena_reset();
}

static void test_pb_random_batches(void)
{
	int mismatches = 0;
	for (int i = 0; i < 300; i++) {
		struct oa_export_batch batch = random_batch();
		if (!check_pb(&batch))
			mismatches++;
		arena_reset();
	}
	CHECK_EQ_INT(mismatches, 0);
}

static char *json_of(const struct oa_export_batch *batch)
{
	struct oa_buf buf = {0};
	CHECK(oa_json_batch_encode(batch, &buf));
	CHECK(oa_buf_append(&buf, "", 1));
	char *text = arena_alloc(buf.len);
	memcpy(text, buf.data, buf.len);
	oa_buf_free(&buf);
	return text;
}

static void test_json(void)
{
	static const struct oa_export_batch empty = {0};
	CHECK_EQ_STR(json_of(&empty), "{\"resourceSpans\":[{\"resource\":{}}]}");

	static const struct oa_attr resource[] = {ATTR_STR("service.name", "svc")};
	static const struct oa_attr attrs[] = {
	    ATTR_STR("s", "q\"b\\n\n\x01\xC3\xA9"),
	    ATTR_BOOL("t", true),
	    ATTR_BOOL("f", false),
	    ATTR_INT("i", -42),
	    ATTR_INT("min", INT64_MIN),
	    ATTR_DOUBLE("d", 0.1),
	    ATTR_DOUBLE("e", 1e300),
	    ATTR_DOUBLE("whole", 3),
	    ATTR_DOUBLE("nan", NAN),
	    ATTR_DOUBLE("inf", INFINITY),
	    ATTR_DOUBLE("ninf", -INFINITY),
	    ATTR_ARRAY("a", rich_tags, 2),
	    ATTR_ARRAY("none", NULL, 0),
	    ATTR_STR("", ""),
	};
	static const struct oa_export_span spans[] = {
	    {.trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
			  0x0e, 0x0e, 0x47, 0x36},
	     .span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	     .parent_span_id = {0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88},
	     .has_parent = true,
	     .name = STR("GET"),
	     .kind = OA_KIND_SERVER,
	     .start_unix_nano = 1,
	     .end_unix_nano = UINT64_MAX,
	     .attrs = attrs,
	     .n_attrs = N(attrs),
	     .events = rich_events,
	     .n_events = N(rich_events),
	     .dropped_events = 7,
	     .links = rich_links,
	     .n_links = N(rich_links),
	     .status_code = OA_STATUS_ERROR,
	     .flags = 0x301},
	    {.kind = OA_KIND_UNSPECIFIED}, /* all zero */
	};
	static const struct oa_export_scope scopes[] = {
	    {.name = STR("lib"), .version = STR("1.0"), .spans = spans, .n_spans = N(spans)},
	    {.n_spans = 0}, /* unnamed, no spans */
	};
	static const struct oa_export_batch batch = {.resource_attrs = resource,
						     .n_resource_attrs = N(resource),
						     .scopes = scopes,
						     .n_scopes = N(scopes)};
	CHECK_EQ_STR(
	    json_of(&batch),
	    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
	    "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\","
	    "\"version\":\"1.0\"},\"spans\":[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
	    "\"spanId\":\"00f067aa0ba902b7\",\"parentSpanId\":\"ffeeddccbbaa9988\",\"name\":"
	    "\"GET\","
	    "\"kind\":2,\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"18446744073709551615\","
	    "\"attributes\":["
	    "{\"key\":\"s\",\"value\":{\"stringValue\":\"q\\\"b\\\\n\\u000a\\u0001\xC3\xA9\"}},"
	    "{\"key\":\"t\",\"value\":{\"boolValue\":true}},"
	    "{\"key\":\"f\",\"value\":{\"boolValue\":false}},"
	    "{\"key\":\"i\",\"value\":{\"intValue\":\"-42\"}},"
	    "{\"key\":\"min\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
	    "{\"key\":\"d\",\"value\":{\"doubleValue\":0.1}},"
	    "{\"key\":\"e\",\"value\":{\"doubleValue\":1e+300}},"
	    "{\"key\":\"whole\",\"value\":{\"doubleValue\":3}},"
	    "{\"key\":\"nan\",\"value\":{\"doubleValue\":\"NaN\"}},"
	    "{\"key\":\"inf\",\"value\":{\"doubleValue\":\"Infinity\"}},"
	    "{\"key\":\"ninf\",\"value\":{\"doubleValue\":\"-Infinity\"}},"
	    "{\"key\":\"a\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
	    "{\"stringValue\":\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"}]}}},"
	    "{\"key\":\"none\",\"value\":{\"arrayValue\":{}}},"
	    "{\"value\":{\"stringValue\":\"\"}}],"
	    "\"events\":[{\"timeUnixNano\":\"1700000000000000100\",\"name\":\"exception\","
	    "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"E\"}},"
	    "{\"key\":\"exception.message\",\"value\":{\"stringValue\":\"boom\"}}],"
	    "\"droppedAttributesCount\":1},{}],\"droppedEventsCount\":7,"
	    "\"links\":[{\"traceId\":\"02122232425262728292a2b2c2d2e2f2\","
	    "\"spanId\":\"0213243546576879\",\"traceState\":\"k=v\",\"attributes\":[{\"key\":"
	    "\"link.kind\",\"value\":{\"stringValue\":\"follows\"}}],\"droppedAttributesCount\":4,"
	    "\"flags\":769},{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":"
	    "\"0000000000000000\"}],\"status\":{\"code\":2},\"flags\":769},"
	    "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"0000000000000000\"}]},"
	    "{\"scope\":{}}]}]}");

	/* The JSON is appended after what the buffer holds. */
	struct oa_buf buf = {0};
	CHECK(oa_buf_append(&buf, "x", 1));
	CHECK(oa_json_batch_encode(&empty, &buf));
	CHECK_EQ_INT(buf.len, 1 + strlen("{\"resourceSpans\":[{\"resource\":{}}]}"));
	CHECK(buf.data[0] == 'x');
	oa_buf_free(&buf);
	arena_reset();
}

static void test_console(void)
{
	static const struct oa_attr attrs[] = {
	    ATTR_STR("http.request.method", "GET"),
	    ATTR_INT("http.response.status_code", 500),
	    ATTR_BOOL("ok", false),
	    ATTR_DOUBLE("ratio", 0.5),
	    ATTR_ARRAY("tags", rich_tags, 2),
	};
	static const struct oa_attr event_attrs[] = {ATTR_STR("exception.type", "E\"x")};
	static const struct oa_event events[] = {{.time_unix_nano = 1000120000,
						  .name = STR("exception"),
						  .attrs = event_attrs,
						  .n_attrs = 1}};
	static const struct oa_export_span spans[] = {
	    {.trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
			  0x0e, 0x0e, 0x47, 0x36},
	     .span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	     .parent_span_id = {0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88},
	     .has_parent = true,
	     .name = STR("GET /users/{id}"),
	     .kind = OA_KIND_SERVER,
	     .start_unix_nano = 1000000000,
	     .end_unix_nano = 1001234567,
	     .attrs = attrs,
	     .n_attrs = N(attrs),
	     .events = events,
	     .n_events = 1,
	     .links = rich_links,
	     .n_links = 1,
	     .dropped_attrs = 2,
	     .status_code = OA_STATUS_ERROR,
	     .status_message = STR("bad\ngateway")},
	    {.name = STR("tick"), .start_unix_nano = 5, .end_unix_nano = 3},
	};
	static const struct oa_export_scope scope = {
	    .name = STR("otlpauto"), .version = STR("0.1.0"), .spans = spans, .n_spans = 2};
	static const struct oa_export_batch batch = {.scopes = &scope, .n_scopes = 1};
	struct oa_buf buf = {0};
	CHECK(oa_console_batch_encode(&batch, &buf));
	CHECK(oa_buf_append(&buf, "", 1));
	CHECK_EQ_STR(
	    buf.data,
	    "otlpauto span name=\"GET /users/{id}\" kind=server "
	    "trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 "
	    "parent=ffeeddccbbaa9988 start=1000000000 dur=1.234ms status=error "
	    "status_message=\"bad\\u000agateway\" scope=\"otlpauto\" scope_version=\"0.1.0\" "
	    "attrs={http.request.method=\"GET\", http.response.status_code=500, ok=false, "
	    "ratio=0.5, tags=[\"a\", \"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"]} "
	    "events=[exception@+0.120ms{exception.type=\"E\\\"x\"}] "
	    "links=[02122232425262728292a2b2c2d2e2f2-0213243546576879] dropped_attrs=2\n"
	    "otlpauto span name=\"tick\" kind=unspecified trace=00000000000000000000000000000000 "
	    "span=0000000000000000 parent=- start=5 dur=0.000ms status=unset scope=\"otlpauto\" "
	    "scope_version=\"0.1.0\" attrs={}\n");
	oa_buf_free(&buf);
}

static int dump(const char *dir)
{
	init_rich_batch();
	char path[4096];
	size_t size = oa_pb_batch_size(&rich_batch);
	uint8_t *pb = malloc(size);
	struct oa_buf json = {0};
	if (!pb || !oa_json_batch_encode(&rich_batch, &json))
		return 1;
	oa_pb_batch_encode(&rich_batch, pb, size);
	const struct {
		const char *name;
		const void *data;
		size_t len;
	} files[] = {{"batch.pb", pb, size}, {"batch.json", json.data, json.len}};
	for (size_t i = 0; i < N(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(files[i].data, 1, files[i].len, f) != files[i].len ||
		    fclose(f) != 0) {
			fprintf(stderr, "test_encode: cannot write %s: %s\n", path,
				strerror(errno));
			return 1;
		}
	}
	free(pb);
	oa_buf_free(&json);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
		return dump(argv[2]);
	init_rich_batch();
	test_pb_fixed_batches();
	test_pb_single_fields();
	test_pb_random_batches();
	test_json();
	test_console();
	free(arena_blocks);
	CHECK_DONE();
}
