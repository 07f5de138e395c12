#include "http_inject.h"

#include <string.h>

static size_t put(char *out, size_t at, const char *s, size_t n)
{
	memcpy(out + at, s, n);
	return at + n;
}

size_t oa_inject_format(const struct oa_span_context *ctx, const char *tracestate, size_t ts_len,
			char out[OA_INJECT_MAX])
{
	static const char tp_name[] = "traceparent: ", ts_name[] = "tracestate: ";
	char value[OA_TRACEPARENT_LEN + 1];
	oa_traceparent_format(ctx, value);
	size_t at = put(out, 0, tp_name, sizeof tp_name - 1);
	at = put(out, at, value, OA_TRACEPARENT_LEN);
	at = put(out, at, "\r\n", 2);
	if (ts_len && at + sizeof ts_name - 1 + ts_len + 2 <= OA_INJECT_MAX) {
		at = put(out, at, ts_name, sizeof ts_name - 1);
		at = put(out, at, tracestate, ts_len);
		at = put(out, at, "\r\n", 2);
	}
	return at;
}

void oa_traceparent_rewrite(const struct oa_span_context *received,
			    const struct oa_span_context *client, char out[OA_TRACEPARENT_LEN + 1])
{
	struct oa_span_context ctx = *client;
	ctx.flags = (uint8_t)((received->flags & ~1u) | (client->flags & 1u));
	oa_traceparent_format(&ctx, out);
}

static bool add_piece(struct oa_layout *l, const void *base, size_t len, int owner)
{
	if (!len)
		return true;
	if (l->n == OA_LAYOUT_MAX)
		return false;
	l->iov[l->n].iov_base = (void *)base;
	l->iov[l->n].iov_len = len;
	l->owner[l->n++] = (int8_t)owner;
	return true;
}

bool oa_layout_build(struct oa_layout *l, const struct iovec *app, int n_app,
		     const struct oa_insert *ins, int n_ins)
{
	l->first = l->n = 0;
	size_t app_at = 0;   /* application bytes before this piece */
	size_t replaced = 0; /* application bytes still replaced by the last insert */
	int next = 0;	     /* the next insert */
	for (int i = 0; i < n_app; i++) {
		const char *base = app[i].iov_base;
		size_t len = app[i].iov_len, used = 0;
		for (;;) {
			size_t skip = replaced < len - used ? replaced : len - used;
			used += skip;
			replaced -= skip;
			/* the next insert, when due inside (or at the start of) the rest */
			if (replaced || next == n_ins || ins[next].offset >= app_at + len)
				break;
			size_t cut = ins[next].offset - app_at;
			if (!add_piece(l, base + used, cut - used, -1) ||
			    !add_piece(l, ins[next].bytes, ins[next].len, next))
				return false;
			used = cut;
			replaced = ins[next++].replaces;
		}
		if (!add_piece(l, base + used, len - used, -1))
			return false;
		app_at += len;
	}
	/* inserts at the very end */
	for (; next < n_ins; next++)
		if (!add_piece(l, ins[next].bytes, ins[next].len, next))
			return false;
	return true;
}

size_t oa_layout_consume(struct oa_layout *l, size_t sent, struct oa_insert *ins)
{
	size_t app_bytes = 0;
	while (sent && l->first < l->n) {
		struct iovec *piece = &l->iov[l->first];
		size_t take = sent < piece->iov_len ? sent : piece->iov_len;
		int owner = l->owner[l->first];
		if (owner < 0 || ins[owner].replaces)
			app_bytes += take;
		if (owner >= 0)
			ins[owner].sent += take;
		piece->iov_base = (char *)piece->iov_base + take;
		piece->iov_len -= take;
		sent -= take;
		if (!piece->iov_len)
			l->first++;
	}
	return app_bytes;
}

bool oa_split_host_port(const char *host, size_t len, struct oa_host_port *out)
{
	const char *name_end, *port_text = NULL, *end = host + len;
	out->name = host;
	out->port = 0;
	if (len && host[0] == '[') {
		out->name = host + 1;
		name_end = memchr(host, ']', len);
		if (!name_end)
			return false;
		if (name_end + 1 < end && name_end[1] == ':')
			port_text = name_end + 2;
	} else {
		const char *colon = memchr(host, ':', len);
		/* two colons: a bare IPv6 address, no port */
		if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
			name_end = colon;
			port_text = colon + 1;
		} else {
			name_end = end;
		}
	}
	if (port_text && port_text < end) {
		unsigned long value = 0;
		const char *p = port_text;
		while (p < end && *p >= '0' && *p <= '9' && value < 65536)
			value = value * 10 + (unsigned long)(*p++ - '0');
		if (p == end && value < 65536)
			out->port = (uint16_t)value;
	}
	out->name_len = (size_t)(name_end - out->name);
	return out->name_len > 0;
}
