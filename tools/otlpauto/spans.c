#include "spans.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hex.h"
#include "json.h"

/* One line may hold a 64 MiB export request (the most OTLP/HTTP sends); its
 * tree takes a few times that. Beyond this a line is refused, not a crash. */
#define LINE_MEMORY_LIMIT ((size_t)1 << 30)

struct line_error {
	char message[256];
};

static bool line_fail(struct line_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool line_fail(struct line_error *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return false;
}

/* ---- OTLP JSON to spans ---- */

struct line_reader {
	struct span_set *set;
	struct line_error *err;
};

static const struct json_value *get_typed(const struct json_value *object, const char *key,
					  enum json_type type)
{
	const struct json_value *v = json_get(object, key);
	return v && v->type == type ? v : NULL;
}

/* An optional member: absent is fine, the wrong type is not. */
static bool optional(const struct json_value *object, const char *key, enum json_type type,
		     const struct json_value **out, struct line_error *err)
{
	const struct json_value *v = json_get(object, key);
	*out = NULL;
	if (!v || v->type == JSON_NULL)
		return true;
	if (v->type != type)
		return line_fail(err, "%s has the wrong type", key);
	*out = v;
	return true;
}

/* Ids are hex of either case here (W3C headers want lowercase). */
static bool parse_hex(const char *s, size_t len, uint8_t *out, size_t n)
{
	return len == 2 * n && oa_hex_decode(s, n, out, false);
}

static bool all_zero(const uint8_t *bytes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (bytes[i])
			return false;
	return true;
}

static bool parse_span_id(const struct json_value *v, uint64_t *out)
{
	uint8_t bytes[8];
	if (!v || v->type != JSON_STRING || !parse_hex(v->text, v->len, bytes, sizeof bytes))
		return false;
	uint64_t id = 0;
	for (size_t i = 0; i < sizeof bytes; i++)
		id = id << 8 | bytes[i];
	*out = id;
	return true;
}

/* proto3 JSON writes enums as numbers (ours) or as their names. */
static bool parse_enum(const struct json_value *v, const char *const *names, size_t n_names,
		       int *out)
{
	uint64_t number;
	if (v->type == JSON_NUMBER && json_uint64(v, &number) && number <= INT32_MAX) {
		*out = (int)number;
		return true;
	}
	if (v->type != JSON_STRING)
		return false;
	for (size_t i = 0; i < n_names; i++) {
		if (strcmp(v->text, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	return false;
}

static bool render_any(FILE *out, const struct json_value *any, int depth);

/* Arrays as [a, b], kvlists as {k=v, ...}: for reading, not for parsing back. */
static bool render_list(FILE *out, const struct json_value *list, const char *member, bool kv,
			int depth)
{
	const struct json_value *values = json_get(list, member);
	if (values && values->type != JSON_ARRAY)
		return false;
	fputc(kv ? '{' : '[', out);
	for (const struct json_value *v = values ? values->first : NULL; v; v = v->next) {
		if (v != values->first)
			fputs(", ", out);
		const struct json_value *item = v;
		if (kv) {
			const struct json_value *key = get_typed(v, "key", JSON_STRING);
			if (!key)
				return false;
			fprintf(out, "%s=", key->text);
			item = json_get(v, "value");
			if (!item)
				continue;
		}
		if (!render_any(out, item, depth + 1))
			return false;
	}
	fputc(kv ? '}' : ']', out);
	return true;
}

static bool render_any(FILE *out, const struct json_value *any, int depth)
{
	if (any->type != JSON_OBJECT || depth > JSON_MAX_DEPTH)
		return false;
	const struct json_value *v = any->first;
	if (!v)
		return true; /* an empty AnyValue */
	int64_t i;
	if (strcmp(v->key, "stringValue") == 0 && v->type == JSON_STRING)
		fputs(v->text, out);
	else if (strcmp(v->key, "intValue") == 0 && json_int64(v, &i))
		fprintf(out, "%lld", (long long)i);
	else if (strcmp(v->key, "doubleValue") == 0 &&
		 (v->type == JSON_NUMBER || v->type == JSON_STRING))
		fputs(v->text, out);
	else if (strcmp(v->key, "boolValue") == 0 &&
		 (v->type == JSON_TRUE || v->type == JSON_FALSE))
		fputs(v->type == JSON_TRUE ? "true" : "false", out);
	else if (strcmp(v->key, "bytesValue") == 0 && v->type == JSON_STRING)
		fputs(v->text, out);
	else if (strcmp(v->key, "arrayValue") == 0 && v->type == JSON_OBJECT)
		return render_list(out, v, "values", false, depth);
	else if (strcmp(v->key, "kvlistValue") == 0 && v->type == JSON_OBJECT)
		return render_list(out, v, "values", true, depth);
	else
		return false;
	return true;
}

static enum attr_type attr_type_of(const struct json_value *any)
{
	const char *member = any->first ? any->first->key : "";
	if (strcmp(member, "stringValue") == 0)
		return ATTR_STRING;
	if (strcmp(member, "intValue") == 0)
		return ATTR_INT;
	/* proto3 JSON writes NaN and the infinities as strings. */
	if (strcmp(member, "doubleValue") == 0 && any->first->type == JSON_NUMBER)
		return ATTR_DOUBLE;
	if (strcmp(member, "boolValue") == 0)
		return ATTR_BOOL;
	return ATTR_OTHER;
}

static bool read_attributes(struct line_reader *r, const struct json_value *owner,
			    const struct attr **out, size_t *n_out)
{
	const struct json_value *list;
	*out = NULL;
	*n_out = 0;
	if (!optional(owner, "attributes", JSON_ARRAY, &list, r->err))
		return false;
	if (!list || !list->count)
		return true;
	struct attr *attrs = arena_alloc(&r->set->arena, list->count * sizeof *attrs);
	if (!attrs)
		return line_fail(r->err, "out of memory");
	size_t n = 0;
	for (const struct json_value *kv = list->first; kv; kv = kv->next) {
		const struct json_value *key = get_typed(kv, "key", JSON_STRING);
		const struct json_value *value = get_typed(kv, "value", JSON_OBJECT);
		if (!key || (json_get(kv, "value") && !value))
			return line_fail(r->err, "an attribute is not a key and an AnyValue");
		char *text = NULL;
		size_t text_len = 0;
		FILE *render = open_memstream(&text, &text_len);
		if (!render)
			return line_fail(r->err, "out of memory");
		static const struct json_value empty = {.type = JSON_OBJECT};
		bool ok = render_any(render, value ? value : &empty, 0);
		fclose(render);
		attrs[n] = (struct attr){
		    .key = arena_strndup(&r->set->arena, key->text, key->len),
		    .text = text ? arena_strndup(&r->set->arena, text, text_len) : NULL,
		    .type = attr_type_of(value ? value : &empty),
		};
		free(text);
		if (!ok)
			return line_fail(r->err, "attribute %s has an invalid value", key->text);
		if (!attrs[n].key || !attrs[n].text)
			return line_fail(r->err, "out of memory");
		n++;
	}
	*out = attrs;
	*n_out = n;
	return true;
}

static bool add_span(struct span_set *set, struct span *s)
{
	if (set->n_spans == set->cap_spans) {
		size_t cap = set->cap_spans ? 2 * set->cap_spans : 1024;
		struct span **spans = realloc(set->spans, cap * sizeof *spans);
		if (!spans)
			return false;
		set->spans = spans;
		set->cap_spans = cap;
	}
	set->spans[set->n_spans++] = s;
	return true;
}

static const char *const kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",	     "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
					   "STATUS_CODE_ERROR"};

static bool read_status(struct line_reader *r, const struct json_value *span, struct span *s)
{
	const struct json_value *status, *code, *message;
	if (!optional(span, "status", JSON_OBJECT, &status, r->err))
		return false;
	s->status_message = "";
	if (!status)
		return true;
	if (!optional(status, "message", JSON_STRING, &message, r->err))
		return false;
	if (message)
		s->status_message = arena_strndup(&r->set->arena, message->text, message->len);
	code = json_get(status, "code");
	if (code && !parse_enum(code, status_names, 3, &s->status_code))
		return line_fail(r->err, "status.code is not a status code");
	return s->status_message ? true : line_fail(r->err, "out of memory");
}

static bool read_span(struct line_reader *r, const struct json_value *span,
		      const struct process *process)
{
	if (span->type != JSON_OBJECT)
		return line_fail(r->err, "a span is not an object");
	struct span *s = arena_alloc(&r->set->arena, sizeof *s);
	if (!s)
		return line_fail(r->err, "out of memory");
	*s = (struct span){.process = process};
	const struct json_value *trace_id = get_typed(span, "traceId", JSON_STRING);
	if (!trace_id || !parse_hex(trace_id->text, trace_id->len, s->trace_id, 16) ||
	    all_zero(s->trace_id, 16))
		return line_fail(r->err,
				 "a span has no valid traceId (32 hex digits, not all zero)");
	if (!parse_span_id(json_get(span, "spanId"), &s->span_id) || s->span_id == 0)
		return line_fail(r->err,
				 "a span has no valid spanId (16 hex digits, not all zero)");
	const struct json_value *parent = json_get(span, "parentSpanId");
	if (parent && !(parent->type == JSON_STRING && parent->len == 0) &&
	    !parse_span_id(parent, &s->parent_id))
		return line_fail(r->err, "parentSpanId is not 16 hex digits");
	const struct json_value *name, *kind;
	if (!optional(span, "name", JSON_STRING, &name, r->err))
		return false;
	s->name = arena_strndup(&r->set->arena, name ? name->text : "", name ? name->len : 0);
	kind = json_get(span, "kind");
	if (kind && !parse_enum(kind, kind_names, 6, &s->kind))
		return line_fail(r->err, "kind is not a span kind");
	const struct json_value *start = json_get(span, "startTimeUnixNano");
	const struct json_value *end = json_get(span, "endTimeUnixNano");
	if ((start && !json_uint64(start, &s->start_ns)) || (end && !json_uint64(end, &s->end_ns)))
		return line_fail(r->err, "a span time is not a whole number of nanoseconds");
	if (!s->name || !read_status(r, span, s) ||
	    !read_attributes(r, span, &s->attrs, &s->n_attrs))
		return r->err->message[0] ? false : line_fail(r->err, "out of memory");
	return add_span(r->set, s) ? true : line_fail(r->err, "out of memory");
}

static bool read_process(struct line_reader *r, const struct json_value *resource_spans,
			 const struct process **out)
{
	const struct json_value *resource;
	struct process *p = arena_alloc(&r->set->arena, sizeof *p);
	if (!p)
		return line_fail(r->err, "out of memory");
	*p = (struct process){.executable = ""};
	*out = p;
	if (!optional(resource_spans, "resource", JSON_OBJECT, &resource, r->err))
		return false;
	if (!resource)
		return true;
	const struct attr *attrs;
	size_t n;
	if (!read_attributes(r, resource, &attrs, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(attrs[i].key, "process.pid") == 0 && attrs[i].type == ATTR_INT) {
			p->pid = strtoll(attrs[i].text, NULL, 10);
			p->has_pid = true;
		} else if (strcmp(attrs[i].key, "process.executable.name") == 0) {
			p->executable = attrs[i].text;
		}
	}
	return true;
}

static bool read_request(struct line_reader *r, const struct json_value *request)
{
	const struct json_value *resource_spans_list, *scope_spans_list, *spans;
	if (request->type != JSON_OBJECT)
		return line_fail(r->err, "not an ExportTraceServiceRequest object");
	if (!optional(request, "resourceSpans", JSON_ARRAY, &resource_spans_list, r->err))
		return false;
	for (const struct json_value *rs = resource_spans_list ? resource_spans_list->first : NULL;
	     rs; rs = rs->next) {
		const struct process *process = NULL; /* gcc -O3 without LTO warns otherwise */
		if (rs->type != JSON_OBJECT)
			return line_fail(r->err, "a resourceSpans entry is not an object");
		if (!read_process(r, rs, &process) ||
		    !optional(rs, "scopeSpans", JSON_ARRAY, &scope_spans_list, r->err))
			return false;
		for (const struct json_value *ss = scope_spans_list ? scope_spans_list->first
								    : NULL;
		     ss; ss = ss->next) {
			if (ss->type != JSON_OBJECT)
				return line_fail(r->err, "a scopeSpans entry is not an object");
			if (!optional(ss, "spans", JSON_ARRAY, &spans, r->err))
				return false;
			for (const struct json_value *s = spans ? spans->first : NULL; s;
			     s = s->next)
				if (!read_span(r, s, process))
					return false;
		}
	}
	return true;
}

static bool blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", line[i]))
			return false;
	return true;
}

static void read_line(struct span_set *set, const char *path, size_t line_number, const char *line,
		      size_t len)
{
	struct arena json_arena = {.limit = LINE_MEMORY_LIMIT};
	struct line_error err = {{0}};
	struct line_reader r = {.set = set, .err = &err};
	size_t spans_before = set->n_spans;
	struct json_error json_err;
	const struct json_value *request = json_parse(line, len, &json_arena, &json_err);
	if (!request)
		line_fail(&err, "invalid JSON at byte %zu: %s", json_err.offset + 1,
			  json_err.message);
	if (!request || !read_request(&r, request)) {
		/* All of the line or nothing: a half-read request would mislead. */
		set->n_spans = spans_before;
		fprintf(stderr, "otlpauto view: %s:%zu: %s; line skipped\n", path, line_number,
			err.message);
	}
	arena_free(&json_arena);
}

bool spans_load_file(struct span_set *set, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "otlpauto view: cannot open %s: %s\n", path, strerror(errno));
		return false;
	}
	char *line = NULL;
	size_t cap = 0, line_number = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		line_number++;
		if (!blank(line, (size_t)len))
			read_line(set, path, line_number, line, (size_t)len);
	}
	bool ok = !ferror(f);
	if (!ok)
		fprintf(stderr, "otlpauto view: cannot read %s: %s\n", path, strerror(errno));
	free(line);
	fclose(f);
	return ok;
}

/* ---- Trees ---- */

/* Spans by (trace id, span id), or by trace id alone: open addressing. */
struct id_table {
	struct span **slots;
	size_t mask;
	bool by_trace;
};

static bool table_init(struct id_table *t, size_t n, bool by_trace)
{
	t->by_trace = by_trace;
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	t->slots = calloc(cap, sizeof *t->slots);
	t->mask = cap - 1;
	return t->slots != NULL;
}

static uint64_t id_hash(const uint8_t trace_id[16], uint64_t span_id)
{
	uint64_t h = span_id;
	for (int i = 0; i < 16; i++)
		h = (h ^ trace_id[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

/* The slot of (trace_id, span_id): the span there, or an empty slot. A
 * by_trace table ignores span_id. */
static struct span **table_slot(struct id_table *t, const uint8_t trace_id[16], uint64_t span_id)
{
	if (t->by_trace)
		span_id = 0;
	for (size_t i = id_hash(trace_id, span_id) & t->mask;; i = (i + 1) & t->mask) {
		struct span *s = t->slots[i];
		if (!s || ((t->by_trace || s->span_id == span_id) &&
			   memcmp(s->trace_id, trace_id, 16) == 0))
			return &t->slots[i];
	}
}

uint64_t span_duration_ns(const struct span *s)
{
	return s->end_ns > s->start_ns ? s->end_ns - s->start_ns : 0;
}

static int by_start(const void *a, const void *b)
{
	const struct span *x = *(struct span *const *)a, *y = *(struct span *const *)b;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	/* At the same start the longer one is likely the parent: it goes first. */
	if (x->end_ns != y->end_ns)
		return x->end_ns > y->end_ns ? -1 : 1;
	int trace = memcmp(x->trace_id, y->trace_id, 16);
	if (trace)
		return trace;
	return x->span_id < y->span_id ? -1 : x->span_id > y->span_id;
}

/* Keeps the first copy of each span (a file given twice, say). */
static bool drop_duplicates(struct span_set *set, struct id_table *index)
{
	if (!table_init(index, set->n_spans, false))
		return false;
	size_t kept = 0;
	for (size_t i = 0; i < set->n_spans; i++) {
		struct span *s = set->spans[i];
		struct span **slot = table_slot(index, s->trace_id, s->span_id);
		if (*slot) {
			set->n_duplicates++;
			continue;
		}
		*slot = s;
		set->spans[kept++] = s;
	}
	set->n_spans = kept;
	return true;
}

/* A parent chain that comes back to a span (only a corrupt or hostile file
 * can say so) is cut there, and that span becomes a root. Each span is
 * walked once: 1 while on the current chain, 2 when known to end at a root. */
static bool cut_cycles(struct span_set *set)
{
	struct span **chain = malloc((set->n_spans + 1) * sizeof *chain);
	if (!chain)
		return false;
	for (size_t i = 0; i < set->n_spans; i++) {
		size_t n = 0;
		struct span *s = set->spans[i];
		for (; s && s->visit == 0; s = s->parent) {
			s->visit = 1;
			chain[n++] = s;
		}
		if (s && s->visit == 1) {
			s->parent = NULL;
			s->parent_cycle = true;
		}
		while (n)
			chain[--n]->visit = 2;
	}
	free(chain);
	return true;
}

static struct trace *trace_of(struct span_set *set, struct id_table *traces, struct span *s)
{
	/* The table holds each trace's first span, which knows its trace. */
	struct span **slot = table_slot(traces, s->trace_id, s->span_id);
	if (*slot)
		return (*slot)->trace;
	*slot = s;
	struct trace *t = &set->traces[set->n_traces++];
	*t = (struct trace){.start_ns = s->start_ns, .end_ns = s->end_ns};
	memcpy(t->trace_id, s->trace_id, 16);
	return t;
}

bool spans_build(struct span_set *set)
{
	struct id_table index = {0}, traces = {0};
	bool ok = false;
	if (!drop_duplicates(set, &index))
		goto out;
	for (size_t i = 0; i < set->n_spans; i++) {
		struct span *s = set->spans[i];
		if (!s->parent_id)
			continue;
		s->parent = *table_slot(&index, s->trace_id, s->parent_id);
		s->parent_missing = s->parent == NULL;
	}
	if (set->n_spans) /* an empty set has no array at all */
		qsort(set->spans, set->n_spans, sizeof *set->spans, by_start);
	if (!cut_cycles(set))
		goto out;
	set->traces = calloc(set->n_spans + 1, sizeof *set->traces);
	if (!set->traces || !table_init(&traces, set->n_spans, true))
		goto out;
	/* In start order, so that children, roots and traces come out sorted. */
	for (size_t i = 0; i < set->n_spans; i++) {
		struct span *s = set->spans[i];
		struct span *p = s->parent;
		if (p) {
			*(p->first_child ? &p->last_child->next_sibling : &p->first_child) = s;
			p->last_child = s;
			p->children_ns += span_duration_ns(s);
		}
	}
	for (size_t i = 0; i < set->n_spans; i++) {
		struct span *s = set->spans[i];
		struct trace *t = trace_of(set, &traces, s);
		s->trace = t;
		t->n_spans++;
		if (s->end_ns > t->end_ns)
			t->end_ns = s->end_ns;
		if (s->parent)
			continue;
		*(t->first_root ? &t->last_root->next_sibling : &t->first_root) = s;
		t->last_root = s;
		if (span_duration_ns(s) > t->longest_root_ns)
			t->longest_root_ns = span_duration_ns(s);
	}
	ok = true;
out:
	free(index.slots);
	free(traces.slots);
	return ok;
}

void spans_free(struct span_set *set)
{
	free(set->spans);
	free(set->traces);
	arena_free(&set->arena);
	*set = (struct span_set){0};
}

const struct attr *span_attr(const struct span *s, const char *key)
{
	for (size_t i = 0; i < s->n_attrs; i++)
		if (strcmp(s->attrs[i].key, key) == 0)
			return &s->attrs[i];
	return NULL;
}

struct span *span_next(const struct span *root, struct span *s, int *depth)
{
	if (s->first_child) {
		++*depth;
		return s->first_child;
	}
	for (; s != root; s = s->parent, --*depth)
		if (s->next_sibling)
			return s->next_sibling;
	return NULL;
}
