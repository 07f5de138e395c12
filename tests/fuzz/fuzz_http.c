/* libFuzzer: the HTTP/1.x parser on arbitrary bytes. Beyond "no crash", it
 * checks that every event is well formed and within its feed, and that the
 * events are the same whether the input is fed whole, split at a
 * fuzzer-chosen point with a fuzzer-chosen event array size, or a byte at a
 * time; that redacted queries and url.full never carry a query value; and
 * that a request's first traceparent line is found wherever the input is
 * split, a version-00 one at the offset where its value is. Requests and
 * responses are also parsed lean (oa_http_set_lean), whole and split: the
 * events must be the same (up to a message the full parse gives up on as
 * malformed, which a lean one may take), a lean head must be the full one
 * without what lean skips, and parsing its bytes again in full
 * (oa_http_parse_head) must give the full one.
 *
 * Input: byte 0 = options (bit 0 responses, bits 1-2 events per call - 1,
 * bit 3 close at the end, bits 4-7 requests pending), bytes 1-2 = split point,
 * then one byte per pending request (its method), then the stream. */
#include "http_parse.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096

struct record {
	enum oa_http_event_kind kind;
	enum oa_http_gave_up_reason reason;
	size_t offset, inject_at;
	uint32_t head_len;
	uint64_t body_len, head_hash;
	uint16_t status;
	uint8_t method;
	struct oa_http_tp_field tp; /* MESSAGE_BEGIN of a request */
};

struct run {
	struct record records[MAX_RECORDS];
	size_t n;
};

struct options {
	enum oa_http_role role;
	bool lean, all_lean; /* all_lean: fed whole, so every head is lean */
	size_t max_events;
	bool close;
	const uint8_t *pending;
	size_t n_pending;
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

static uint64_t fnv1a(const void *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3u;
	return h;
}

static uint64_t fnv1a_more(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3u;
	return h;
}

/* What a head says: its fixed fields, its strings up to their lengths and
 * the parent when valid (bytes past a string's NUL are not cleared). */
static uint64_t head_hash(const struct oa_http_head *h)
{
	uint64_t x = fnv1a(h, offsetof(struct oa_http_head, parent));
	x = fnv1a_more(x, h->method_original, h->method_original_len);
	x = fnv1a_more(x, h->scheme, h->scheme_len);
	x = fnv1a_more(x, h->path, h->path_len);
	x = fnv1a_more(x, h->query, h->query_len);
	x = fnv1a_more(x, h->host, h->host_len);
	x = fnv1a_more(x, h->user_agent, h->user_agent_len);
	x = fnv1a_more(x, h->tracestate, h->tracestate_len);
	if (h->flags & OA_HTTP_TRACEPARENT_VALID)
		x = fnv1a_more(x, &h->parent, sizeof h->parent);
	return x;
}

static void check_string(const char *s, uint8_t len, size_t cap)
{
	check(len < cap && s[len] == '\0' && strlen(s) == len);
}

/* After every '=' of a key comes nothing, or REDACTED, then '&' or the end. */
static void check_redacted(const char *out, size_t len)
{
	bool in_value = false;
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '&') {
			in_value = false;
		} else if (!in_value && out[i] == '=') {
			in_value = true;
			if (strncmp(out + i + 1, "REDACTED", 8) == 0)
				i += 8;
			check(i + 1 == len || out[i + 1] == '&');
		}
	}
}

static void check_query_output(const struct oa_http_head *h, uint16_t port)
{
	char full[1024], small[24];
	const enum oa_redact_query all = OA_REDACT_QUERY_ALL;
	size_t len = oa_http_redact_query(h->query, h->query_len, all, full, sizeof full);
	check(len < sizeof full && strlen(full) == len);
	check_redacted(full, len);
	size_t small_len = oa_http_redact_query(h->query, h->query_len, all, small, sizeof small);
	check(small_len == len && strncmp(small, full, sizeof small - 1) == 0);
	/* none: the query as it is; sensitive: cut like the full output */
	len = oa_http_redact_query(h->query, h->query_len, OA_REDACT_QUERY_NONE, full, sizeof full);
	check(len == h->query_len && memcmp(full, h->query, len) == 0);
	len = oa_http_redact_query(h->query, h->query_len, OA_REDACT_QUERY_SENSITIVE, full,
				   sizeof full);
	small_len = oa_http_redact_query(h->query, h->query_len, OA_REDACT_QUERY_SENSITIVE, small,
					 sizeof small);
	check(len < sizeof full && strlen(full) == len && small_len == len &&
	      strncmp(small, full, sizeof small - 1) == 0);

	struct oa_http_url url = {
	    h->scheme_len ? h->scheme : NULL, h->host, port, h->path, NULL, all};
	size_t before_query = oa_http_url_full(&url, full, sizeof full);
	url.query = (h->flags & OA_HTTP_HAS_QUERY) ? h->query : NULL;
	len = oa_http_url_full(&url, full, sizeof full);
	check(len < sizeof full && strlen(full) == len);
	if (url.query) {
		check(full[before_query] == '?');
		check_redacted(full + before_query + 1, len - before_query - 1);
	}
	small_len = oa_http_url_full(&url, small, sizeof small);
	check(small_len == len && strncmp(small, full, sizeof small - 1) == 0);
}

static void check_head(const struct oa_http_head *h, enum oa_http_role role)
{
	check_string(h->method_original, h->method_original_len, sizeof h->method_original);
	check_string(h->scheme, h->scheme_len, sizeof h->scheme);
	check_string(h->path, h->path_len, sizeof h->path);
	check_string(h->query, h->query_len, sizeof h->query);
	check_string(h->host, h->host_len, sizeof h->host);
	check_string(h->user_agent, h->user_agent_len, sizeof h->user_agent);
	check_string(h->tracestate, h->tracestate_len, sizeof h->tracestate);
	check(h->method <= OA_HTTP_OTHER && h->version_minor <= 9);
	if (role == OA_HTTP_RESPONSES)
		check(h->status >= 101 && h->status <= 999);
	else
		check(h->method_original_len > 0 && h->status == 0);
	if (h->flags & OA_HTTP_TRACEPARENT_VALID)
		check(h->flags & OA_HTTP_HAS_TRACEPARENT);
}

/* A request head's first traceparent line, right after its MESSAGE_BEGIN:
 * a version-00 value is where the parser says, as it parsed it. */
static struct oa_http_tp_field tp_field(const struct oa_http_parser *p,
					const struct oa_http_event *ev, const uint8_t *stream,
					size_t end)
{
	struct oa_http_tp_field f = oa_http_traceparent_field(p);
	check(f.state != OA_HTTP_TP_OPEN);
	if (f.state != OA_HTTP_TP_V00) {
		memset(&f.value, 0, sizeof f.value);
		return f;
	}
	check(ev->head->flags & OA_HTTP_HAS_TRACEPARENT);
	size_t at = end - ev->head_len + f.value_at;
	check(f.value_at + OA_TRACEPARENT_LEN < ev->head_len);
	char value[OA_TRACEPARENT_LEN + 1];
	oa_traceparent_format(&f.value, value);
	check(memcmp(stream + at, value, OA_TRACEPARENT_LEN) == 0);
	return f;
}

/* A full head as a lean one has it (but for its OA_HTTP_LEAN flag). */
static uint64_t lean_hash(const struct oa_http_head *h)
{
	struct oa_http_head lean;
	oa_http_head_copy(&lean, h);
	lean.scheme_len = lean.path_len = lean.query_len = lean.host_len = lean.user_agent_len = 0;
	lean.scheme[0] = lean.path[0] = lean.query[0] = lean.host[0] = lean.user_agent[0] = '\0';
	lean.flags &=
	    (uint16_t) ~(OA_HTTP_HAS_QUERY | OA_HTTP_PATH_TRUNCATED | OA_HTTP_QUERY_TRUNCATED |
			 OA_HTTP_HOST_TRUNCATED | OA_HTTP_USER_AGENT_TRUNCATED | OA_HTTP_LEAN);
	return head_hash(&lean);
}

/* What a head says in full: a lean one's bytes (all in the feed that ended
 * it) parsed again, which must agree with what the lean one kept. */
static uint64_t full_head_hash(const struct oa_http_event *ev, const uint8_t *stream, size_t end)
{
	if (!(ev->head->flags & OA_HTTP_LEAN))
		return head_hash(ev->head);
	struct oa_http_head full;
	check(ev->inject_at != SIZE_MAX && ev->head_len <= ev->offset);
	/* a lean head passes over lines it does not read: one that a full
	 * parse gives up on has no full head (and no counterpart in a full
	 * run, check_lean) */
	if (!oa_http_parse_head(stream + end - ev->head_len, ev->head_len, &full))
		return 0;
	check(!(full.flags & OA_HTTP_LEAN) && lean_hash(&full) == lean_hash(ev->head));
	return head_hash(&full);
}

/* Checks one event against the ones before it and records it with an
 * offset relative to the whole stream. */
static void record(struct run *r, const struct options *o, const struct oa_http_parser *p,
		   const struct oa_http_event *ev, const uint8_t *stream, size_t base, size_t fed,
		   uint16_t port)
{
	const struct record *prev = r->n ? &r->records[(r->n - 1) % MAX_RECORDS] : NULL;
	check(!prev || prev->kind != OA_HTTP_GAVE_UP);
	check(ev->offset <= fed);
	switch (ev->kind) {
	case OA_HTTP_MESSAGE_BEGIN:
		check(!prev || prev->kind == OA_HTTP_MESSAGE_END);
		check(ev->inject_at == SIZE_MAX || ev->inject_at < ev->offset);
		check(ev->head_len > 0 && ev->head_len <= OA_HTTP_MAX_HEAD);
		check(ev->head && ev->status == ev->head->status && ev->method == ev->head->method);
		check_head(ev->head, o->role);
		/* every head fed whole is lean when asked; no head is otherwise */
		check(!(ev->head->flags & OA_HTTP_LEAN) || o->lean);
		check(!o->all_lean || (ev->head->flags & OA_HTTP_LEAN));
		check_query_output(ev->head, port);
		break;
	case OA_HTTP_MESSAGE_END:
		check(prev && prev->kind == OA_HTTP_MESSAGE_BEGIN);
		check(!ev->head && ev->status == prev->status && ev->method == prev->method);
		break;
	case OA_HTTP_GAVE_UP:
		check(!ev->head);
		check(ev->reason >= OA_HTTP_NOT_HTTP && ev->reason <= OA_HTTP_INCOMPLETE);
		break;
	default:
		abort();
	}
	struct record *rec = &r->records[r->n++ % MAX_RECORDS];
	rec->kind = ev->kind;
	rec->reason = ev->reason;
	rec->offset = base + ev->offset;
	rec->inject_at = ev->inject_at == SIZE_MAX ? SIZE_MAX : base + ev->inject_at;
	rec->head_len = ev->head_len;
	rec->body_len = ev->body_len;
	rec->status = ev->status;
	rec->method = ev->method;
	rec->head_hash = ev->head ? full_head_hash(ev, stream, base + ev->offset)
			 : ev->kind == OA_HTTP_MESSAGE_END ? prev->head_hash
							   : 0;
	memset(&rec->tp, 0, sizeof rec->tp);
	if (ev->kind == OA_HTTP_MESSAGE_BEGIN && o->role == OA_HTTP_REQUESTS)
		rec->tp = tp_field(p, ev, stream, base + ev->offset);
}

/* Feeds the stream in pieces of at most piece bytes, the first one ending
 * at split. */
static void run(const struct options *o, const uint8_t *data, size_t len, size_t split,
		size_t piece, struct run *r)
{
	struct oa_http_parser p;
	struct oa_http_event events[4];
	r->n = 0;
	oa_http_parser_init(&p, o->role);
	oa_http_set_lean(&p, o->lean);
	for (size_t i = 0; i < o->n_pending; i++)
		check(oa_http_expect_response(&p, o->pending[i] % (OA_HTTP_OTHER + 1)) ==
		      (o->role == OA_HTTP_RESPONSES));
	uint16_t port = o->n_pending ? (uint16_t)(o->pending[0] * 257u) : 0;
	for (size_t start = 0; start < len || start == 0;) {
		size_t end = start < split ? split : start + piece;
		if (end > len)
			end = len;
		for (size_t done = start;;) {
			size_t n = oa_http_feed(&p, data + done, end - done, events, o->max_events);
			check(n <= o->max_events);
			for (size_t i = 0; i < n; i++)
				record(r, o, &p, &events[i], data, done, end - done, port);
			if (!oa_http_feed_again(events, n, o->max_events, end - done))
				break;
			done += events[n - 1].offset;
		}
		if (end == len)
			break;
		start = end;
	}
	if (o->close) {
		if (oa_http_close(&p, &events[0]))
			record(r, o, &p, &events[0], data, len, 0, port);
		check(!oa_http_close(&p, &events[0]));
	}
}

/* The first n records agree; inject_at may only differ when a piece
 * boundary fell inside the blank line. */
static void check_prefix(const struct run *a, const struct run *b, size_t n, const uint8_t *data)
{
	for (size_t i = 0; i < n && i < MAX_RECORDS; i++) {
		const struct record *x = &a->records[i], *y = &b->records[i];
		check(x->kind == y->kind && x->reason == y->reason && x->offset == y->offset);
		check(x->head_len == y->head_len && x->body_len == y->body_len);
		check(x->head_hash == y->head_hash);
		check(x->status == y->status && x->method == y->method);
		check(x->tp.state == y->tp.state && x->tp.value_at == y->tp.value_at &&
		      memcmp(&x->tp.value, &y->tp.value, sizeof x->tp.value) == 0);
		check(x->inject_at == y->inject_at ||
		      (y->inject_at == SIZE_MAX && x->inject_at != SIZE_MAX &&
		       data[x->inject_at] == '\r' && x->offset == x->inject_at + 2));
	}
}

static void check_same(const struct run *a, const struct run *b, const uint8_t *data)
{
	check(a->n == b->n);
	check_prefix(a, b, a->n, data);
}

/* A lean run agrees with the full run fed whole up to the message it gave
 * up on as malformed, if any (a lean head passes over the lines it does
 * not read, malformed or not), and everywhere else. */
static void check_lean(const struct run *whole, const struct run *lean, const uint8_t *data)
{
	size_t k = 0;
	while (k < whole->n && k < MAX_RECORDS && whole->records[k].kind != OA_HTTP_GAVE_UP)
		k++;
	if (k == whole->n || k == MAX_RECORDS || whole->records[k].reason != OA_HTTP_MALFORMED) {
		check_same(whole, lean, data);
		return;
	}
	check(lean->n >= k);
	check_prefix(whole, lean, k, data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, split, bytewise;
	if (size < 3)
		return 0;
	struct options o = {
	    .role = (data[0] & 1) ? OA_HTTP_RESPONSES : OA_HTTP_REQUESTS,
	    .max_events = 1 + (data[0] >> 1 & 3),
	    .close = data[0] & 8,
	    .pending = data + 3,
	    .n_pending = data[0] >> 4,
	};
	if (o.n_pending > OA_HTTP_PENDING_MAX || o.n_pending > size - 3)
		o.n_pending = size - 3 < OA_HTTP_PENDING_MAX ? size - 3 : OA_HTTP_PENDING_MAX;
	const uint8_t *stream = data + 3 + o.n_pending;
	size_t len = size - 3 - o.n_pending;
	size_t split_at = (data[1] | (size_t)data[2] << 8) % (len + 1);

	struct options whole_options = o;
	whole_options.max_events = 4;
	run(&whole_options, stream, len, len, len, &whole);
	run(&o, stream, len, split_at, len, &split);
	check_same(&whole, &split, stream);
	if (len <= 2048) {
		run(&o, stream, len, 1, 1, &bytewise);
		check_same(&whole, &bytewise, stream);
	}
	/* every request head fed whole is lean; response heads never say so */
	whole_options.lean = o.lean = true;
	whole_options.all_lean = o.role == OA_HTTP_REQUESTS;
	run(&whole_options, stream, len, len, len, &split);
	check_lean(&whole, &split, stream);
	run(&o, stream, len, split_at, len, &split);
	check_lean(&whole, &split, stream);
	return 0;
}
