#include "encode_metrics.h"

#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "addr_text.h"
#include "http_parse.h"
#include "utf8.h"

#define WT_VARINT	      0
#define WT_FIXED64	      1
#define WT_LEN		      2
#define TAG(field, wire_type) (((field) << 3) | (wire_type))

/* ---- attributes */

static struct oa_str cstr(const char *s)
{
	return (struct oa_str){s, (uint32_t)strlen(s)};
}

static struct oa_attr *attr(struct oa_attr *a, const char *key)
{
	a->key = cstr(key);
	return a;
}

/* Text from the application (a Host header, a database's name) as a
 * string attribute: receivers reject a request with invalid UTF-8. */
static void put_text(struct oa_attr *a, const char *key, const char *text, size_t len,
		     char *scratch)
{
	attr(a, key)->type = OA_VALUE_STRING;
	if (oa_utf8_valid(text, len))
		a->v.s = (struct oa_str){text, (uint32_t)len};
	else
		a->v.s = (struct oa_str){scratch, (uint32_t)oa_utf8_sanitize(text, len, scratch)};
}

static const char *errno_text(int err, struct oa_metric_attr_text *scratch)
{
	const char *name = strerrorname_np(err);
	if (name)
		return name;
	snprintf(scratch->error, sizeof scratch->error, "errno %d", err);
	return scratch->error;
}

static size_t http_attrs(const struct oa_metric_point *p, struct oa_attr *out,
			 struct oa_metric_attr_text *scratch)
{
	struct oa_http_metric_attrs k;
	oa_metric_http_attrs(p->key, &k);
	size_t n = 0;
	attr(&out[n], "http.request.method")->type = OA_VALUE_STRING;
	out[n++].v.s = cstr(oa_http_method_name((enum oa_http_method)k.method));
	attr(&out[n], "url.scheme")->type = OA_VALUE_STRING;
	out[n++].v.s = cstr(k.https ? "https" : "http");
	if (k.address_len)
		put_text(&out[n++], "server.address", k.address, k.address_len, scratch->address);
	if (k.port) {
		attr(&out[n], "server.port")->type = OA_VALUE_INT;
		out[n++].v.i = k.port;
	}
	if (k.status) {
		attr(&out[n], "http.response.status_code")->type = OA_VALUE_INT;
		out[n++].v.i = k.status;
	}
	/* The span's rule: 5xx on a server, 4xx and 5xx on a client, or the
	 * errno of an exchange that failed. */
	unsigned error_from = p->metric == OA_METRIC_HTTP_SERVER_DURATION ? 500 : 400;
	const char *error = NULL;
	if (k.error_text_len) {
		put_text(&out[n++], "error.type", k.error_text, k.error_text_len,
			 scratch->error_text);
	} else if (k.error) {
		error = errno_text(k.error, scratch);
	} else if (k.status >= error_from) {
		snprintf(scratch->status, sizeof scratch->status, "%u", k.status);
		error = scratch->status;
	}
	if (error) {
		attr(&out[n], "error.type")->type = OA_VALUE_STRING;
		out[n++].v.s = cstr(error);
	}
	return n;
}

static size_t db_attrs(const struct oa_metric_point *p, struct oa_attr *out,
		       struct oa_metric_attr_text *scratch)
{
	struct oa_db_metric_attrs k;
	oa_metric_db_attrs(p->key, &k);
	size_t n = 0;
	attr(&out[n], "db.system.name")->type = OA_VALUE_STRING;
	out[n++].v.s = cstr(oa_db_system_names[k.system]);
	if (k.name_space_len)
		put_text(&out[n++], "db.namespace", k.name_space, k.name_space_len,
			 scratch->name_space);
	if (k.operation_len)
		put_text(&out[n++], "db.operation.name", k.operation, k.operation_len,
			 scratch->operation);
	if (k.collection_len)
		put_text(&out[n++], "db.collection.name", k.collection, k.collection_len,
			 scratch->collection);
	if (k.ip_version) {
		union {
			struct sockaddr sa;
			struct sockaddr_in in;
			struct sockaddr_in6 in6;
		} peer = {.in6 = {.sin6_family = AF_INET6}};
		socklen_t len = sizeof peer.in6;
		if (k.ip_version == 4) {
			peer.in.sin_family = AF_INET;
			memcpy(&peer.in.sin_addr, k.address, 4);
			len = sizeof peer.in;
		} else {
			memcpy(&peer.in6.sin6_addr, k.address, 16);
		}
		if (oa_sockaddr_text(&peer.sa, len, scratch->address, sizeof scratch->address)) {
			attr(&out[n], "server.address")->type = OA_VALUE_STRING;
			out[n++].v.s = cstr(scratch->address);
		}
	}
	if (k.port) {
		attr(&out[n], "server.port")->type = OA_VALUE_INT;
		out[n++].v.i = k.port;
	}
	/* The span's rule: the error reply's status code, or the errno of an
	 * operation left without a reply. */
	if (k.status_len) {
		put_text(&out[n], "db.response.status_code", k.status, k.status_len,
			 scratch->status_code);
		out[n + 1] = out[n];
		attr(&out[n + 1], "error.type");
		n += 2;
	} else if (k.error) {
		attr(&out[n], "error.type")->type = OA_VALUE_STRING;
		out[n++].v.s = cstr(errno_text(k.error, scratch));
	}
	return n;
}

size_t oa_metric_point_attrs(const struct oa_metric_point *p, struct oa_attr *out,
			     struct oa_metric_attr_text *scratch)
{
	if (!p->key) {
		attr(&out[0], "otel.metric.overflow")->type = OA_VALUE_BOOL;
		out[0].v.b = true;
		return 1;
	}
	return p->metric == OA_METRIC_DB_CLIENT_DURATION ? db_attrs(p, out, scratch)
							 : http_attrs(p, out, scratch);
}

size_t oa_span_count_attrs(const struct oa_span_count *c, struct oa_attr *out)
{
	size_t n = 0;
	attr(&out[n], "otlpauto.span.outcome")->type = OA_VALUE_STRING;
	out[n++].v.s = cstr(c->outcome);
	if (c->reason) {
		attr(&out[n], "otlpauto.drop.reason")->type = OA_VALUE_STRING;
		out[n++].v.s = cstr(c->reason);
	}
	return n;
}

/* ---- protobuf, written forward */

static bool put_varint(struct oa_buf *b, uint64_t v)
{
	uint8_t bytes[10];
	size_t n = 0;
	do {
		bytes[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return oa_buf_append(b, bytes, n);
}

static bool put_fixed64(struct oa_buf *b, unsigned field, uint64_t v)
{
	uint64_t le = htole64(v);
	return put_varint(b, TAG(field, WT_FIXED64)) && oa_buf_append(b, &le, 8);
}

static bool put_double(struct oa_buf *b, unsigned field, double d)
{
	uint64_t bits;
	memcpy(&bits, &d, 8);
	return put_fixed64(b, field, bits);
}

static bool put_bytes(struct oa_buf *b, unsigned field, const void *p, size_t len)
{
	return put_varint(b, TAG(field, WT_LEN)) && put_varint(b, len) && oa_buf_append(b, p, len);
}

static bool put_str(struct oa_buf *b, unsigned field, struct oa_str s)
{
	return !s.len || put_bytes(b, field, s.ptr, s.len);
}

/* A nested message: its body is written from `start`, then moved behind
 * its tag and length. */
static size_t open_msg(const struct oa_buf *b)
{
	return b->len;
}

static bool close_msg(struct oa_buf *b, unsigned field, size_t start)
{
	size_t body = b->len - start;
	uint8_t head[16];
	struct oa_buf h = {(char *)head, 0, sizeof head};
	if (!put_varint(&h, TAG(field, WT_LEN)) || !put_varint(&h, body) ||
	    !oa_buf_reserve(b, h.len))
		return false;
	memmove(b->data + start + h.len, b->data + start, body);
	memcpy(b->data + start, head, h.len);
	b->len += h.len;
	return true;
}

static bool put_any_value(struct oa_buf *b, const struct oa_attr *a)
{
	size_t value = open_msg(b);
	bool ok = true;
	switch (a->type) {
	case OA_VALUE_STRING:
		ok = put_bytes(b, 1, a->v.s.ptr, a->v.s.len);
		break;
	case OA_VALUE_BOOL:
		ok = put_varint(b, TAG(2, WT_VARINT)) && put_varint(b, a->v.b);
		break;
	case OA_VALUE_INT:
		ok = put_varint(b, TAG(3, WT_VARINT)) && put_varint(b, (uint64_t)a->v.i);
		break;
	case OA_VALUE_DOUBLE:
		ok = put_double(b, 4, a->v.d);
		break;
	case OA_VALUE_STRING_ARRAY: {
		size_t array = open_msg(b);
		for (uint32_t i = 0; ok && i < a->v.array.n; i++) {
			size_t item = open_msg(b);
			ok = put_bytes(b, 1, a->v.array.items[i].ptr, a->v.array.items[i].len) &&
			     close_msg(b, 1, item);
		}
		ok = ok && close_msg(b, 5, array);
		break;
	}
	}
	return ok && close_msg(b, 2, value);
}

static bool put_attrs(struct oa_buf *b, unsigned field, const struct oa_attr *attrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t kv = open_msg(b);
		if (!put_str(b, 1, attrs[i].key) || !put_any_value(b, &attrs[i]) ||
		    !close_msg(b, field, kv))
			return false;
	}
	return true;
}

static bool put_point(struct oa_buf *b, const struct oa_metrics_export *m,
		      const struct oa_metric_point *p)
{
	size_t point = open_msg(b);
	struct oa_attr attrs[OA_METRIC_ATTRS_MAX];
	struct oa_metric_attr_text text;
	size_t n_attrs = oa_metric_point_attrs(p, attrs, &text);
	bool ok = put_fixed64(b, 2, m->start_unix_nano) && put_fixed64(b, 3, m->time_unix_nano) &&
		  put_fixed64(b, 4, p->count) && put_double(b, 5, p->sum_s);
	/* packed repeated fixed64 and double */
	const struct oa_metric_info *info = &oa_metric_info[p->metric];
	uint64_t counts[OA_METRIC_BUCKETS], bounds[OA_METRIC_BOUNDS_MAX];
	for (int i = 0; i <= info->n_bounds; i++)
		counts[i] = htole64(p->buckets[i]);
	for (int i = 0; i < info->n_bounds; i++) {
		memcpy(&bounds[i], &info->bounds_s[i], 8);
		bounds[i] = htole64(bounds[i]);
	}
	ok = ok && put_bytes(b, 6, counts, 8 * ((size_t)info->n_bounds + 1)) &&
	     put_bytes(b, 7, bounds, 8 * (size_t)info->n_bounds);
	return ok && put_attrs(b, 9, attrs, n_attrs) && close_msg(b, 1, point);
}

/* One ScopeMetrics per run of points whose metrics share a scope. */
static bool put_histograms(struct oa_buf *out, const struct oa_metrics_export *m)
{
	for (size_t i = 0; i < m->n_points;) {
		const char *scope_name = oa_metric_info[m->points[i].metric].scope;
		size_t scope_metrics = open_msg(out);
		size_t scope = open_msg(out);
		if (!put_str(out, 1, cstr(scope_name)) || !put_str(out, 2, m->scope_version) ||
		    !close_msg(out, 1, scope))
			return false;
		while (i < m->n_points &&
		       strcmp(oa_metric_info[m->points[i].metric].scope, scope_name) == 0) {
			uint8_t metric = m->points[i].metric;
			const struct oa_metric_info *info = &oa_metric_info[metric];
			size_t msg = open_msg(out);
			if (!put_str(out, 1, cstr(info->name)) ||
			    !put_str(out, 2, cstr(info->description)) ||
			    !put_str(out, 3, cstr("s")))
				return false;
			size_t histogram = open_msg(out);
			for (; i < m->n_points && m->points[i].metric == metric; i++)
				if (!put_point(out, m, &m->points[i]))
					return false;
			if (!put_varint(out, TAG(2, WT_VARINT)) ||
			    !put_varint(out, m->delta ? 1 : 2) || !close_msg(out, 9, histogram) ||
			    !close_msg(out, 2, msg))
				return false;
		}
		if (!close_msg(out, 2, scope_metrics))
			return false;
	}
	return true;
}

/* otlpauto.spans: a monotonic Sum of NumberDataPoints (as_int). */
static bool put_span_counts(struct oa_buf *out, const struct oa_metrics_export *m)
{
	size_t scope_metrics = open_msg(out);
	size_t scope = open_msg(out);
	if (!put_str(out, 1, cstr(OA_SPANS_SCOPE)) || !put_str(out, 2, m->scope_version) ||
	    !close_msg(out, 1, scope))
		return false;
	size_t msg = open_msg(out);
	if (!put_str(out, 1, cstr(OA_SPANS_METRIC)) ||
	    !put_str(out, 2, cstr(OA_SPANS_DESCRIPTION)) || !put_str(out, 3, cstr("{span}")))
		return false;
	size_t sum = open_msg(out);
	for (size_t i = 0; i < m->n_span_counts; i++) {
		const struct oa_span_count *c = &m->span_counts[i];
		struct oa_attr attrs[2];
		size_t n_attrs = oa_span_count_attrs(c, attrs);
		size_t point = open_msg(out);
		if (!put_fixed64(out, 2, m->start_unix_nano) ||
		    !put_fixed64(out, 3, m->time_unix_nano) || !put_fixed64(out, 6, c->value) ||
		    !put_attrs(out, 7, attrs, n_attrs) || !close_msg(out, 1, point))
			return false;
	}
	return put_varint(out, TAG(2, WT_VARINT)) && put_varint(out, m->delta ? 1 : 2) &&
	       put_varint(out, TAG(3, WT_VARINT)) && put_varint(out, 1) && close_msg(out, 7, sum) &&
	       close_msg(out, 2, msg) && close_msg(out, 2, scope_metrics);
}

bool oa_metrics_pb_encode(const struct oa_metrics_export *m, struct oa_buf *out)
{
	size_t resource_metrics = open_msg(out);
	size_t resource = open_msg(out);
	if (!put_attrs(out, 1, m->resource_attrs, m->n_resource_attrs) ||
	    !close_msg(out, 1, resource))
		return false;
	if (m->n_points && !put_histograms(out, m))
		return false;
	if (m->n_span_counts && !put_span_counts(out, m))
		return false;
	return close_msg(out, 1, resource_metrics);
}

/* ---- console */

bool oa_metrics_console_encode(const struct oa_metrics_export *m, struct oa_buf *out)
{
	for (size_t i = 0; i < m->n_points; i++) {
		const struct oa_metric_point *p = &m->points[i];
		struct oa_attr attrs[OA_METRIC_ATTRS_MAX];
		struct oa_metric_attr_text text;
		size_t n_attrs = oa_metric_point_attrs(p, attrs, &text);
		char line[512];
		int len = snprintf(line, sizeof line, "otlpauto: metric %s {",
				   oa_metric_info[p->metric].name);
		for (size_t a = 0; a < n_attrs && len < (int)sizeof line; a++) {
			const char *sep = a ? ", " : "";
			const struct oa_attr *x = &attrs[a];
			if (x->type == OA_VALUE_STRING)
				len += snprintf(line + len, sizeof line - (size_t)len, "%s%s=%.*s",
						sep, x->key.ptr, (int)x->v.s.len, x->v.s.ptr);
			else if (x->type == OA_VALUE_INT)
				len += snprintf(line + len, sizeof line - (size_t)len, "%s%s=%lld",
						sep, x->key.ptr, (long long)x->v.i);
			else
				len += snprintf(line + len, sizeof line - (size_t)len, "%s%s=true",
						sep, x->key.ptr);
		}
		if (len < (int)sizeof line)
			len += snprintf(line + len, sizeof line - (size_t)len,
					"} count=%llu sum=%.6fs %s\n", (unsigned long long)p->count,
					p->sum_s, m->delta ? "delta" : "cumulative");
		if (len >= (int)sizeof line) {
			len = (int)sizeof line - 1;
			line[len - 1] = '\n';
		}
		if (!oa_buf_append(out, line, (size_t)len))
			return false;
	}
	for (size_t i = 0; i < m->n_span_counts; i++) {
		const struct oa_span_count *c = &m->span_counts[i];
		char line[160];
		int len = snprintf(line, sizeof line,
				   "otlpauto: metric " OA_SPANS_METRIC
				   " {otlpauto.span.outcome=%s%s%s} value=%llu %s\n",
				   c->outcome, c->reason ? ", otlpauto.drop.reason=" : "",
				   c->reason ? c->reason : "", (unsigned long long)c->value,
				   m->delta ? "delta" : "cumulative");
		if (len < 0 || !oa_buf_append(out, line, (size_t)len))
			return false;
	}
	return true;
}
