/* ns per span of each encoder on a batch of 512 spans with 5 attributes each:
 * our protobuf encoder (size + encode, as the exporter calls it), our JSON
 * encoder, and protobuf-c (fill the message tree + get_packed_size + pack).
 * Each figure is the median of several runs of many batches.
 *
 * The protobuf-c fill reuses preallocated messages and points straight at the
 * model's strings (NUL-terminated literals here), so it is a lower bound of
 * what an exporter built on protobuf-c would pay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encode_json.h"
#include "encode_pb.h"
#include "trace_service.pb-c.h"

#define SPANS		512
#define ATTRS		5
#define RUNS		21
#define BATCHES_PER_RUN 200

#define STR(literal) ((struct oa_str){(literal), sizeof(literal) - 1})

static struct oa_attr attrs[SPANS][ATTRS];
static struct oa_export_span spans[SPANS];
static const struct oa_attr resource_attrs[] = {
    {.key = STR("service.name"), .type = OA_VALUE_STRING, .v.s = STR("bench")},
    {.key = STR("process.pid"), .type = OA_VALUE_INT, .v.i = 4242},
};
static const struct oa_export_scope scope = {
    .name = STR("otlpauto"), .version = STR("0.1.0"), .spans = spans, .n_spans = SPANS};
static const struct oa_export_batch batch = {
    .resource_attrs = resource_attrs, .n_resource_attrs = 2, .scopes = &scope, .n_scopes = 1};

static void build_batch(void)
{
	for (int i = 0; i < SPANS; i++) {
		struct oa_attr *a = attrs[i];
		a[0] = (struct oa_attr){
		    .key = STR("http.request.method"), .type = OA_VALUE_STRING, .v.s = STR("GET")};
		a[1] = (struct oa_attr){.key = STR("url.path"),
					.type = OA_VALUE_STRING,
					.v.s = STR("/api/v1/items/12345")};
		a[2] = (struct oa_attr){
		    .key = STR("http.response.status_code"), .type = OA_VALUE_INT, .v.i = 200};
		a[3] = (struct oa_attr){.key = STR("server.address"),
					.type = OA_VALUE_STRING,
					.v.s = STR("api.example.internal")};
		a[4] = (struct oa_attr){
		    .key = STR("network.peer.port"), .type = OA_VALUE_INT, .v.i = 40000 + i};
		struct oa_export_span *s = &spans[i];
		for (int b = 0; b < 16; b++)
			s->trace_id[b] = (uint8_t)(i * 31 + b * 7 + 1);
		for (int b = 0; b < 8; b++) {
			s->span_id[b] = (uint8_t)(i * 17 + b * 3 + 1);
			s->parent_span_id[b] = (uint8_t)(i * 13 + b * 5 + 1);
		}
		s->has_parent = i % 2;
		s->name = STR("GET /api/v1/items/{id}");
		s->kind = OA_KIND_SERVER;
		s->start_unix_nano = 1700000000000000000ull + (uint64_t)i * 1000000;
		s->end_unix_nano = s->start_unix_nano + 123456;
		s->attrs = a;
		s->n_attrs = ATTRS;
		s->status_code = i % 10 ? OA_STATUS_UNSET : OA_STATUS_ERROR;
		s->flags = OA_SPAN_FLAGS_SAMPLED | OA_SPAN_FLAGS_HAS_IS_REMOTE;
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Keeps the compiler from dropping the work. */
static volatile uint64_t sink;

static uint8_t *pb_out;

static void run_ours_pb(void)
{
	size_t size = oa_pb_batch_size(&batch);
	sink += oa_pb_batch_encode(&batch, pb_out, size) + pb_out[size / 2];
}

#if OA_FEATURE_JSON
static struct oa_buf json_out;

static void run_ours_json(void)
{
	json_out.len = 0;
	if (!oa_json_batch_encode(&batch, &json_out))
		abort();
	sink += json_out.len;
}
#endif

/* protobuf-c's message tree for the batch, allocated once. */
static Opentelemetry__Proto__Common__V1__AnyValue pc_values[SPANS][ATTRS];
static Opentelemetry__Proto__Common__V1__KeyValue pc_kvs[SPANS][ATTRS];
static Opentelemetry__Proto__Common__V1__KeyValue *pc_kv_ptrs[SPANS][ATTRS];
static Opentelemetry__Proto__Trace__V1__Status pc_status[SPANS];
static Opentelemetry__Proto__Trace__V1__Span pc_spans[SPANS];
static Opentelemetry__Proto__Trace__V1__Span *pc_span_ptrs[SPANS];
static Opentelemetry__Proto__Common__V1__AnyValue pc_resource_values[2];
static Opentelemetry__Proto__Common__V1__KeyValue pc_resource_kvs[2];
static Opentelemetry__Proto__Common__V1__KeyValue *pc_resource_kv_ptrs[2];

static void fill_kv(Opentelemetry__Proto__Common__V1__KeyValue *kv,
		    Opentelemetry__Proto__Common__V1__AnyValue *value, const struct oa_attr *a)
{
	*value = (Opentelemetry__Proto__Common__V1__AnyValue)
	    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	if (a->type == OA_VALUE_STRING) {
		value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		value->string_value = (char *)a->v.s.ptr;
	} else {
		value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
		value->int_value = a->v.i;
	}
	*kv = (Opentelemetry__Proto__Common__V1__KeyValue)
	    OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	kv->key = (char *)a->key.ptr;
	kv->value = value;
}

static void run_protobuf_c(void)
{
	for (size_t i = 0; i < 2; i++) {
		fill_kv(&pc_resource_kvs[i], &pc_resource_values[i], &resource_attrs[i]);
		pc_resource_kv_ptrs[i] = &pc_resource_kvs[i];
	}
	Opentelemetry__Proto__Resource__V1__Resource resource =
	    OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	resource.n_attributes = 2;
	resource.attributes = pc_resource_kv_ptrs;

	for (int i = 0; i < SPANS; i++) {
		const struct oa_export_span *s = &spans[i];
		Opentelemetry__Proto__Trace__V1__Span *span = &pc_spans[i];
		*span = (Opentelemetry__Proto__Trace__V1__Span)
		    OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
		span->trace_id = (ProtobufCBinaryData){16, (uint8_t *)s->trace_id};
		span->span_id = (ProtobufCBinaryData){8, (uint8_t *)s->span_id};
		if (s->has_parent)
			span->parent_span_id =
			    (ProtobufCBinaryData){8, (uint8_t *)s->parent_span_id};
		span->name = (char *)s->name.ptr;
		span->kind = s->kind;
		span->start_time_unix_nano = s->start_unix_nano;
		span->end_time_unix_nano = s->end_unix_nano;
		for (int j = 0; j < ATTRS; j++) {
			fill_kv(&pc_kvs[i][j], &pc_values[i][j], &s->attrs[j]);
			pc_kv_ptrs[i][j] = &pc_kvs[i][j];
		}
		span->n_attributes = ATTRS;
		span->attributes = pc_kv_ptrs[i];
		if (s->status_code) {
			pc_status[i] = (Opentelemetry__Proto__Trace__V1__Status)
			    OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
			pc_status[i].code = s->status_code;
			span->status = &pc_status[i];
		}
		span->flags = s->flags;
		pc_span_ptrs[i] = span;
	}
	Opentelemetry__Proto__Common__V1__InstrumentationScope pc_scope =
	    OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	pc_scope.name = (char *)scope.name.ptr;
	pc_scope.version = (char *)scope.version.ptr;
	Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans =
	    OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	scope_spans.scope = &pc_scope;
	scope_spans.n_spans = SPANS;
	scope_spans.spans = pc_span_ptrs;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *scope_spans_ptr = &scope_spans;
	Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans =
	    OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	resource_spans.resource = &resource;
	resource_spans.n_scope_spans = 1;
	resource_spans.scope_spans = &scope_spans_ptr;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *resource_spans_ptr = &resource_spans;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest request =
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	request.n_resource_spans = 1;
	request.resource_spans = &resource_spans_ptr;

	size_t size = protobuf_c_message_get_packed_size(&request.base);
	sink += protobuf_c_message_pack(&request.base, pb_out) + pb_out[size / 2];
}

static double median_ns_per_span(void (*run)(void))
{
	double samples[RUNS];
	run(); /* warm caches and the JSON buffer */
	for (int r = 0; r < RUNS; r++) {
		uint64_t start = now_ns();
		for (int b = 0; b < BATCHES_PER_RUN; b++)
			run();
		samples[r] = (double)(now_ns() - start) / (BATCHES_PER_RUN * SPANS);
	}
	qsort(samples, RUNS, sizeof(samples[0]), compare_double);
	return samples[RUNS / 2];
}

int main(void)
{
	build_batch();
	size_t size = oa_pb_batch_size(&batch);
	pb_out = malloc(size);
	if (!pb_out)
		return 1;
	printf("batch: %d spans x %d attributes, %zu protobuf bytes\n", SPANS, ATTRS, size);
	printf("ours protobuf (size+encode):   %7.1f ns/span\n", median_ns_per_span(run_ours_pb));
#if OA_FEATURE_JSON
	double json_ns = median_ns_per_span(run_ours_json);
	printf("ours JSON:                     %7.1f ns/span (%zu bytes)\n", json_ns, json_out.len);
	oa_buf_free(&json_out);
#endif
	printf("protobuf-c (fill+size+pack):   %7.1f ns/span\n",
	       median_ns_per_span(run_protobuf_c));
	free(pb_out);
	return 0;
}
