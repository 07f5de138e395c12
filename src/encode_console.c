/* One line per span, in key=value words so that grep and awk can pick spans
 * apart:
 *
 *   otlpauto span name="GET /users" kind=server trace=<32 hex> span=<16 hex>
 *     parent=<16 hex or -> start=<unix ns> dur=1.234ms status=error
 *     [status_message="..."] [trace_state="..."] scope="..." [scope_version="..."]
 *     attrs={http.request.method="GET", http.response.status_code=200}
 *     [events=[exception@+0.120ms{exception.type="E"}]] [links=[<trace>-<span>]]
 *     [dropped_attrs=N] [dropped_events=N] [dropped_links=N]
 *
 * (all on one line). Strings are quoted and escaped JSON-style, so a line
 * never breaks and never contains an unescaped '"'. */
#include "encode_console.h"

#include <locale.h>
#include <stdio.h>

struct console_out {
	struct oa_buf *buf;
	bool failed;
};

static void put(struct console_out *o, const char *s, size_t n)
{
	/* n == 0 comes with s == NULL for an empty oa_str. */
	if (n && !o->failed && !oa_buf_append(o->buf, s, n))
		o->failed = true;
}

static void put_cstr(struct console_out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* s with '"', '\\' and control characters escaped, so the line stays whole. */
static void put_escaped(struct console_out *o, struct oa_str s)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(o, s.ptr + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			put(o, esc, sizeof(esc));
		} else {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
			put(o, esc, sizeof(esc));
		}
	}
	put(o, s.ptr + run, s.len - run);
}

static void put_quoted(struct console_out *o, struct oa_str s)
{
	put(o, "\"", 1);
	put_escaped(o, s);
	put(o, "\"", 1);
}

static void put_hex(struct console_out *o, const uint8_t *id, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char text[2 * 16];
	for (size_t i = 0; i < n; i++) {
		text[2 * i] = hex[id[i] >> 4];
		text[2 * i + 1] = hex[id[i] & 0xF];
	}
	put(o, text, 2 * n);
}

static void put_uint(struct console_out *o, uint64_t v)
{
	char text[24];
	int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	put(o, text, (size_t)n);
}

/* Nanoseconds as milliseconds with three decimals, in integer arithmetic so
 * the host's locale cannot turn the point into a comma. */
static void put_millis(struct console_out *o, uint64_t ns)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%llu.%03llums", (unsigned long long)(ns / 1000000),
			 (unsigned long long)(ns / 1000 % 1000));
	put(o, text, (size_t)n);
}

static void put_double(struct console_out *o, double d)
{
	/* The host program may have set a locale with a decimal comma. */
	locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	locale_t previous = uselocale(c_locale);
	char text[32];
	int n = snprintf(text, sizeof(text), "%.15g", d);
	uselocale(previous);
	freelocale(c_locale);
	put(o, text, (size_t)n);
}

static void put_value(struct console_out *o, const struct oa_attr *a)
{
	switch (a->type) {
	case OA_VALUE_STRING:
		put_quoted(o, a->v.s);
		break;
	case OA_VALUE_BOOL:
		put_cstr(o, a->v.b ? "true" : "false");
		break;
	case OA_VALUE_INT: {
		char text[24];
		int n = snprintf(text, sizeof(text), "%lld", (long long)a->v.i);
		put(o, text, (size_t)n);
		break;
	}
	case OA_VALUE_DOUBLE:
		put_double(o, a->v.d);
		break;
	case OA_VALUE_STRING_ARRAY:
		put(o, "[", 1);
		for (uint32_t i = 0; i < a->v.array.n; i++) {
			if (i)
				put(o, ", ", 2);
			put_quoted(o, a->v.array.items[i]);
		}
		put(o, "]", 1);
		break;
	default: /* no value set */
		put(o, "-", 1);
		break;
	}
}

static void put_attrs(struct console_out *o, const struct oa_attr *attrs, size_t n)
{
	put(o, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			put(o, ", ", 2);
		put_escaped(o, attrs[i].key);
		put(o, "=", 1);
		put_value(o, &attrs[i]);
	}
	put(o, "}", 1);
}

static const char *kind_name(uint8_t kind)
{
	static const char *const names[] = {"unspecified", "internal", "server",
					    "client",	   "producer", "consumer"};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unspecified";
}

static const char *status_name(uint8_t code)
{
	static const char *const names[] = {"unset", "ok", "error"};
	return code < sizeof(names) / sizeof(names[0]) ? names[code] : "unset";
}

static void put_events(struct console_out *o, const struct oa_export_span *s)
{
	put_cstr(o, " events=[");
	for (uint32_t i = 0; i < s->n_events; i++) {
		const struct oa_event *e = &s->events[i];
		if (i)
			put(o, ", ", 2);
		put_escaped(o, e->name);
		/* Offset from the span's start: easier to read than a timestamp. */
		put(o, "@+", 2);
		put_millis(o, e->time_unix_nano > s->start_unix_nano
				  ? e->time_unix_nano - s->start_unix_nano
				  : 0);
		if (e->n_attrs)
			put_attrs(o, e->attrs, e->n_attrs);
	}
	put(o, "]", 1);
}

static void put_links(struct console_out *o, const struct oa_export_span *s)
{
	put_cstr(o, " links=[");
	for (uint32_t i = 0; i < s->n_links; i++) {
		const struct oa_link *l = &s->links[i];
		if (i)
			put(o, ", ", 2);
		put_hex(o, l->trace_id, sizeof(l->trace_id));
		put(o, "-", 1);
		put_hex(o, l->span_id, sizeof(l->span_id));
	}
	put(o, "]", 1);
}

static void put_span(struct console_out *o, const struct oa_export_scope *scope,
		     const struct oa_export_span *s)
{
	put_cstr(o, "otlpauto span name=");
	put_quoted(o, s->name);
	put_cstr(o, " kind=");
	put_cstr(o, kind_name(s->kind));
	put_cstr(o, " trace=");
	put_hex(o, s->trace_id, sizeof(s->trace_id));
	put_cstr(o, " span=");
	put_hex(o, s->span_id, sizeof(s->span_id));
	put_cstr(o, " parent=");
	if (s->has_parent)
		put_hex(o, s->parent_span_id, sizeof(s->parent_span_id));
	else
		put(o, "-", 1);
	put_cstr(o, " start=");
	put_uint(o, s->start_unix_nano);
	put_cstr(o, " dur=");
	put_millis(o, s->end_unix_nano > s->start_unix_nano ? s->end_unix_nano - s->start_unix_nano
							    : 0);
	put_cstr(o, " status=");
	put_cstr(o, status_name(s->status_code));
	if (s->status_message.len) {
		put_cstr(o, " status_message=");
		put_quoted(o, s->status_message);
	}
	if (s->trace_state.len) {
		put_cstr(o, " trace_state=");
		put_quoted(o, s->trace_state);
	}
	put_cstr(o, " scope=");
	put_quoted(o, scope->name);
	if (scope->version.len) {
		put_cstr(o, " scope_version=");
		put_quoted(o, scope->version);
	}
	put_cstr(o, " attrs=");
	put_attrs(o, s->attrs, s->n_attrs);
	if (s->n_events)
		put_events(o, s);
	if (s->n_links)
		put_links(o, s);
	if (s->dropped_attrs) {
		put_cstr(o, " dropped_attrs=");
		put_uint(o, s->dropped_attrs);
	}
	if (s->dropped_events) {
		put_cstr(o, " dropped_events=");
		put_uint(o, s->dropped_events);
	}
	if (s->dropped_links) {
		put_cstr(o, " dropped_links=");
		put_uint(o, s->dropped_links);
	}
	put(o, "\n", 1);
}

bool oa_console_batch_encode(const struct oa_export_batch *batch, struct oa_buf *out)
{
	struct console_out o = {.buf = out};
	for (size_t i = 0; i < batch->n_scopes; i++) {
		const struct oa_export_scope *scope = &batch->scopes[i];
		for (size_t j = 0; j < scope->n_spans; j++)
			put_span(&o, scope, &scope->spans[j]);
	}
	return !o.failed;
}
