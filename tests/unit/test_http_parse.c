#include "check.h"
#include "http_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 32
#define MAX_INPUT   (OA_HTTP_MAX_HEAD + 256)

/* An event with offsets made absolute (relative to the whole input). */
struct record {
	enum oa_http_event_kind kind;
	enum oa_http_gave_up_reason reason;
	size_t offset, inject_at;
	uint32_t head_len;
	uint64_t body_len;
	struct oa_http_head head;
};

struct run {
	struct record records[MAX_RECORDS];
	size_t n;
	bool bounds_ok; /* every offset within its feed, inject_at before offset */
};

struct setup {
	enum oa_http_role role;
	const enum oa_http_method *pending; /* queued before feeding (responses) */
	size_t n_pending;
	bool close; /* call oa_http_close after the last byte */
	bool lean;  /* oa_http_set_lean */
};

static void record(struct run *r, const struct oa_http_event *ev, size_t base, size_t fed)
{
	if (ev->offset > fed || (ev->inject_at != SIZE_MAX && ev->inject_at >= ev->offset))
		r->bounds_ok = false;
	if (r->n == MAX_RECORDS)
		return;
	struct record *rec = &r->records[r->n++];
	rec->kind = ev->kind;
	rec->reason = ev->reason;
	rec->offset = base + ev->offset;
	rec->inject_at = ev->inject_at == SIZE_MAX ? SIZE_MAX : base + ev->inject_at;
	rec->head_len = ev->head_len;
	rec->body_len = ev->body_len;
	/* An END shows the head of the message it ends, as a BEGIN shows it. */
	if (ev->kind == OA_HTTP_MESSAGE_BEGIN) {
		CHECK(ev->head != NULL);
		memcpy(&rec->head, ev->head, sizeof rec->head);
		CHECK_EQ_INT(ev->status, ev->head->status);
		CHECK_EQ_INT(ev->method, ev->head->method);
	} else if (ev->kind == OA_HTTP_MESSAGE_END && r->n > 1 &&
		   r->records[r->n - 2].kind == OA_HTTP_MESSAGE_BEGIN) {
		CHECK(ev->head == NULL);
		rec->head = r->records[r->n - 2].head;
		CHECK_EQ_INT(ev->status, rec->head.status);
		CHECK_EQ_INT(ev->method, rec->head.method);
	} else {
		CHECK(ev->head == NULL);
		memset(&rec->head, 0, sizeof rec->head);
	}
}

/* Feeds data[0, len) in pieces ending at each cut (and at len), resuming
 * whenever max_events events filled the array. */
static void run_cuts(const struct setup *s, const char *data, size_t len, const size_t *cuts,
		     size_t n_cuts, size_t max_events, struct run *r)
{
	struct oa_http_parser p;
	struct oa_http_event events[4];
	memset(r, 0, sizeof *r);
	r->bounds_ok = true;
	oa_http_parser_init(&p, s->role);
	oa_http_set_lean(&p, s->lean);
	for (size_t i = 0; i < s->n_pending; i++)
		CHECK(oa_http_expect_response(&p, s->pending[i]));
	size_t start = 0;
	for (size_t c = 0; c <= n_cuts; c++) {
		size_t end = c < n_cuts ? cuts[c] : len;
		size_t done = start;
		for (;;) {
			size_t n = oa_http_feed(&p, (const uint8_t *)data + done, end - done,
						events, max_events);
			for (size_t i = 0; i < n; i++)
				record(r, &events[i], done, end - done);
			if (!oa_http_feed_again(events, n, max_events, end - done))
				break;
			done += events[n - 1].offset;
		}
		start = end;
	}
	if (s->close && oa_http_close(&p, &events[0]))
		record(r, &events[0], len, 0);
}

static void run_whole(const struct setup *s, const char *data, size_t len, struct run *r)
{
	run_cuts(s, data, len, NULL, 0, 4, r);
}

/* A cut inside a CRLF blank line leaves no place to inject in either piece. */
static bool same_inject(const struct record *whole, const struct record *piecewise,
			const size_t *cuts, size_t n_cuts)
{
	if (whole->inject_at == piecewise->inject_at)
		return true;
	if (piecewise->inject_at != SIZE_MAX || whole->inject_at == SIZE_MAX)
		return false;
	for (size_t i = 0; i < n_cuts; i++)
		if (cuts[i] > whole->inject_at && cuts[i] < whole->offset)
			return true;
	return false;
}

static bool same_runs(const struct run *a, const struct run *b, const size_t *cuts, size_t n_cuts)
{
	if (a->n != b->n || !b->bounds_ok)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct record *x = &a->records[i], *y = &b->records[i];
		if (x->kind != y->kind || x->reason != y->reason || x->offset != y->offset ||
		    x->head_len != y->head_len || x->body_len != y->body_len ||
		    memcmp(&x->head, &y->head, sizeof x->head) != 0 ||
		    !same_inject(x, y, cuts, n_cuts))
			return false;
	}
	return true;
}

/* The events of a whole feed equal those of every two-piece split, of a
 * byte-at-a-time feed and of one-event-per-call feeds. */
static void check_split_invariance(const struct setup *s, const char *data, const struct run *whole)
{
	static size_t cuts[MAX_INPUT];
	size_t len = strlen(data);
	struct run *other = malloc(sizeof *other);
	int split_failures = 0;
	for (size_t split = 0; split <= len; split++) {
		run_cuts(s, data, len, &split, 1, 4, other);
		if (!same_runs(whole, other, &split, 1)) {
			if (!split_failures++)
				fprintf(stderr, "first differing split point: %zu\n", split);
		}
	}
	CHECK_EQ_INT(split_failures, 0);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	run_cuts(s, data, len, cuts, len ? len - 1 : 0, 4, other);
	CHECK(same_runs(whole, other, cuts, len ? len - 1 : 0));
	run_cuts(s, data, len, NULL, 0, 1, other);
	CHECK(same_runs(whole, other, NULL, 0));
	free(other);
}

static const struct setup requests = {OA_HTTP_REQUESTS, NULL, 0, false, false};

static void test_simple_get(void)
{
	const char *req = "GET /api/items?id=7&sort=asc HTTP/1.1\r\n"
			  "Host: example.com:8080\r\n"
			  "User-Agent:   curl/8.0  \r\n"
			  "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
			  "TraceState: congo=t61rcWkgMzE\r\n"
			  "Accept: */*\r\n"
			  "\r\n";
	struct run r;
	run_whole(&requests, req, strlen(req), &r);
	CHECK_EQ_INT(r.n, 2);
	const struct record *b = &r.records[0];
	CHECK_EQ_INT(b->kind, OA_HTTP_MESSAGE_BEGIN);
	CHECK_EQ_INT(b->head.method, OA_HTTP_GET);
	CHECK_EQ_STR(b->head.method_original, "GET");
	CHECK_EQ_STR(b->head.path, "/api/items");
	CHECK_EQ_INT(b->head.path_len, 10);
	CHECK_EQ_STR(b->head.query, "id=7&sort=asc");
	CHECK_EQ_STR(b->head.host, "example.com:8080");
	CHECK_EQ_STR(b->head.user_agent, "curl/8.0");
	CHECK_EQ_STR(b->head.tracestate, "congo=t61rcWkgMzE");
	CHECK_EQ_STR(b->head.scheme, "");
	CHECK_EQ_INT(b->head.version_minor, 1);
	CHECK_EQ_INT(b->head.flags,
		     OA_HTTP_HAS_QUERY | OA_HTTP_HAS_TRACEPARENT | OA_HTTP_TRACEPARENT_VALID);
	CHECK_EQ_INT(b->head.parent.trace_id[0], 0x4b);
	CHECK_EQ_INT(b->head.parent.span_id[7], 0xb7);
	CHECK_EQ_INT(b->head.parent.flags, 1);
	CHECK_EQ_INT(b->offset, strlen(req));
	CHECK_EQ_INT(b->inject_at, strlen(req) - 2);
	CHECK_EQ_INT(b->head_len, strlen(req));
	CHECK_EQ_INT(r.records[1].kind, OA_HTTP_MESSAGE_END);
	CHECK_EQ_INT(r.records[1].offset, strlen(req));
	CHECK_EQ_INT(r.records[1].body_len, 0);
	CHECK_EQ_STR(r.records[1].head.path, "/api/items");
	check_split_invariance(&requests, req, &r);
}

static void test_injection_point(void)
{
	/* Inserting a header at inject_at yields a request that parses with it. */
	const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct run r;
	run_whole(&requests, req, strlen(req), &r);
	size_t at = r.records[0].inject_at;
	char injected[256];
	snprintf(injected, sizeof injected, "%.*s%s%s", (int)at, req,
		 "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n",
		 req + at);
	run_whole(&requests, injected, strlen(injected), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[0].head.flags, OA_HTTP_HAS_TRACEPARENT | OA_HTTP_TRACEPARENT_VALID);
	CHECK_EQ_STR(r.records[0].head.host, "a");
}

static const char pipelined_requests[] =
    "\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    "PUT /c?x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    "5;name=\"v\"\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nChecksum: 1\r\n\r\n"
    "HEAD /d HTTP/1.0\nHost: bare-lf\n\n"
    "DELETE /e HTTP/1.1\r\nContent-Length: 0\r\n\r\n";

static void test_pipelined_requests(void)
{
	struct run r;
	run_whole(&requests, pipelined_requests, strlen(pipelined_requests), &r);
	CHECK_EQ_INT(r.n, 10);
	static const enum oa_http_method methods[] = {OA_HTTP_GET, OA_HTTP_POST, OA_HTTP_PUT,
						      OA_HTTP_HEAD, OA_HTTP_DELETE};
	static const char *const paths[] = {"/a", "/b", "/c", "/d", "/e"};
	static const uint64_t body_lens[] = {0, 5, 21, 0, 0};
	for (size_t i = 0; i < 5 && r.n == 10; i++) {
		CHECK_EQ_INT(r.records[2 * i].kind, OA_HTTP_MESSAGE_BEGIN);
		CHECK_EQ_INT(r.records[2 * i].head.method, methods[i]);
		CHECK_EQ_STR(r.records[2 * i].head.path, paths[i]);
		CHECK_EQ_INT(r.records[2 * i + 1].kind, OA_HTTP_MESSAGE_END);
		CHECK_EQ_INT(r.records[2 * i + 1].body_len, body_lens[i]);
	}
	const char *post = strstr(pipelined_requests, "POST");
	const char *put = strstr(pipelined_requests, "PUT");
	const char *head = strstr(pipelined_requests, "HEAD");
	CHECK_EQ_INT(r.records[0].offset, post - pipelined_requests - 0);
	CHECK_EQ_INT(r.records[2].offset, put - pipelined_requests - 5);
	CHECK_EQ_INT(r.records[3].offset, put - pipelined_requests);
	CHECK_EQ_INT(r.records[5].offset, head - pipelined_requests);
	CHECK_EQ_INT(r.records[2].head_len,
		     strlen("POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\n"));
	CHECK_EQ_STR(r.records[6].head.host, "bare-lf");
	CHECK_EQ_INT(r.records[6].head.version_minor, 0);
	CHECK_EQ_INT(r.records[6].inject_at, r.records[6].offset - 1);
	CHECK_EQ_STR(r.records[4].head.query, "x");
	CHECK_EQ_INT(r.records[9].offset, strlen(pipelined_requests));
	check_split_invariance(&requests, pipelined_requests, &r);
}

static void test_methods(void)
{
	static const char *const names[] = {"GET",    "HEAD",	  "POST",    "PUT",
					    "DELETE", "PATCH",	  "OPTIONS", "CONNECT",
					    "TRACE",  "PROPFIND", "get",     "M-SEARCH"};
	static const enum oa_http_method expected[] = {
	    OA_HTTP_GET,    OA_HTTP_HEAD,  OA_HTTP_POST,    OA_HTTP_PUT,
	    OA_HTTP_DELETE, OA_HTTP_PATCH, OA_HTTP_OPTIONS, OA_HTTP_CONNECT,
	    OA_HTTP_TRACE,  OA_HTTP_OTHER, OA_HTTP_OTHER,   OA_HTTP_OTHER};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char req[128];
		snprintf(req, sizeof req, "%s /x HTTP/1.1\r\n\r\n", names[i]);
		struct run r;
		run_whole(&requests, req, strlen(req), &r);
		CHECK_EQ_INT(r.n, 2);
		CHECK_EQ_INT(r.records[0].head.method, expected[i]);
		CHECK_EQ_STR(r.records[0].head.method_original, names[i]);
		CHECK_EQ_STR(oa_http_method_name(r.records[0].head.method),
			     i < 9 ? names[i] : "_OTHER");
	}
	const char *long_method = "VERYLONGCUSTOMMETHOD / HTTP/1.1\r\n\r\n";
	struct run r;
	run_whole(&requests, long_method, strlen(long_method), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[0].head.method, OA_HTTP_OTHER);
	CHECK_EQ_STR(r.records[0].head.method_original, "VERYLONGCUSTOMM");
	CHECK_EQ_INT(r.records[0].head.flags, OA_HTTP_METHOD_TRUNCATED);
	CHECK_EQ_STR(oa_http_method_name((enum oa_http_method)200), "_OTHER");
}

static void test_absolute_form(void)
{
	const char *req = "GET http://user:secret@Example.com:8080/a/b?x=1#frag HTTP/1.1\r\n"
			  "Host: ignored.example\r\n\r\n"
			  "GET HTTPS://example.org HTTP/1.1\r\n\r\n"
			  "GET http://example.net?q=2 HTTP/1.1\r\nHost: other\r\n\r\n"
			  "OPTIONS * HTTP/1.1\r\nHost: star\r\n\r\n";
	struct run r;
	run_whole(&requests, req, strlen(req), &r);
	CHECK_EQ_INT(r.n, 8);
	const struct oa_http_head *h = &r.records[0].head;
	CHECK_EQ_STR(h->scheme, "http");
	CHECK_EQ_STR(h->host, "Example.com:8080");
	CHECK_EQ_STR(h->path, "/a/b");
	CHECK_EQ_STR(h->query, "x=1");
	CHECK_EQ_INT(h->flags, OA_HTTP_ABSOLUTE_FORM | OA_HTTP_HAS_QUERY);
	h = &r.records[2].head;
	CHECK_EQ_STR(h->scheme, "https");
	CHECK_EQ_STR(h->host, "example.org");
	CHECK_EQ_STR(h->path, "/");
	CHECK_EQ_INT(h->flags, OA_HTTP_ABSOLUTE_FORM);
	h = &r.records[4].head;
	CHECK_EQ_STR(h->host, "example.net");
	CHECK_EQ_STR(h->path, "/");
	CHECK_EQ_STR(h->query, "q=2");
	h = &r.records[6].head;
	CHECK_EQ_INT(h->method, OA_HTTP_OPTIONS);
	CHECK_EQ_STR(h->path, "*");
	CHECK_EQ_STR(h->host, "star");
	check_split_invariance(&requests, req, &r);
}

static void test_connect(void)
{
	const char *req = "CONNECT db.internal:5432 HTTP/1.1\r\nHost: ignored\r\n\r\n\x16\x03\x01";
	struct run r;
	run_whole(&requests, req, strlen(req), &r);
	CHECK_EQ_INT(r.n, 3);
	CHECK_EQ_INT(r.records[0].head.method, OA_HTTP_CONNECT);
	CHECK_EQ_STR(r.records[0].head.host, "db.internal:5432");
	CHECK_EQ_STR(r.records[0].head.path, "");
	CHECK_EQ_INT(r.records[2].kind, OA_HTTP_GAVE_UP);
	CHECK_EQ_INT(r.records[2].reason, OA_HTTP_NOT_HTTP);

	static const enum oa_http_method connect[] = {OA_HTTP_CONNECT};
	const struct setup s = {OA_HTTP_RESPONSES, connect, 1, false, false};
	const char *resp = "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03garbage";
	run_whole(&s, resp, strlen(resp), &r);
	CHECK_EQ_INT(r.n, 3);
	CHECK_EQ_INT(r.records[0].kind, OA_HTTP_MESSAGE_BEGIN);
	CHECK_EQ_INT(r.records[0].head.status, 200);
	CHECK_EQ_INT(r.records[0].head.method, OA_HTTP_CONNECT);
	CHECK_EQ_INT(r.records[1].kind, OA_HTTP_MESSAGE_END);
	CHECK_EQ_INT(r.records[2].kind, OA_HTTP_GAVE_UP);
	CHECK_EQ_INT(r.records[2].reason, OA_HTTP_UPGRADED);
	CHECK_EQ_INT(r.records[2].offset, strlen("HTTP/1.1 200 Connection established\r\n\r\n"));
	check_split_invariance(&s, resp, &r);

	/* A refused CONNECT keeps the connection HTTP. */
	const char *refused =
	    "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nnoHTTP/1.1 200 OK\r\n"
	    "Content-Length: 0\r\n\r\n";
	static const enum oa_http_method twice[] = {OA_HTTP_CONNECT, OA_HTTP_GET};
	const struct setup s2 = {OA_HTTP_RESPONSES, twice, 2, false, false};
	run_whole(&s2, refused, strlen(refused), &r);
	CHECK_EQ_INT(r.n, 4);
	CHECK_EQ_INT(r.records[0].head.status, 407);
	CHECK_EQ_INT(r.records[1].body_len, 2);
	CHECK_EQ_INT(r.records[2].head.status, 200);
}

static void test_upgrade(void)
{
	const struct setup s = {OA_HTTP_RESPONSES, NULL, 0, false, false};
	const char *resp =
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
	struct run r;
	run_whole(&s, resp, strlen(resp), &r);
	CHECK_EQ_INT(r.n, 3);
	CHECK_EQ_INT(r.records[0].head.status, 101);
	CHECK_EQ_INT(r.records[1].kind, OA_HTTP_MESSAGE_END);
	CHECK_EQ_INT(r.records[2].reason, OA_HTTP_UPGRADED);
	check_split_invariance(&s, resp, &r);
}

static const char pipelined_responses[] =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc"
    "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" /* answers HEAD: no body */
    "HTTP/1.1 204 No Content\r\n\r\n"
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\nA;ext\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n"
    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    "HTTP/1.0 500 Internal Server Error\n\nuntil close";

static void test_pipelined_responses(void)
{
	static const enum oa_http_method methods[] = {OA_HTTP_POST, OA_HTTP_HEAD, OA_HTTP_GET,
						      OA_HTTP_GET,  OA_HTTP_GET,  OA_HTTP_DELETE};
	const struct setup s = {OA_HTTP_RESPONSES, methods, 6, true, false};
	struct run r;
	run_whole(&s, pipelined_responses, strlen(pipelined_responses), &r);
	CHECK_EQ_INT(r.n, 12);
	static const uint16_t statuses[] = {201, 200, 204, 304, 200, 500};
	static const uint64_t body_lens[] = {3, 0, 0, 0, 13, 11};
	for (size_t i = 0; i < 6 && r.n == 12; i++) {
		CHECK_EQ_INT(r.records[2 * i].kind, OA_HTTP_MESSAGE_BEGIN);
		CHECK_EQ_INT(r.records[2 * i].head.status, statuses[i]);
		CHECK_EQ_INT(r.records[2 * i].head.method, methods[i]);
		CHECK_EQ_INT(r.records[2 * i + 1].kind, OA_HTTP_MESSAGE_END);
		CHECK_EQ_INT(r.records[2 * i + 1].body_len, body_lens[i]);
	}
	CHECK_EQ_INT(r.records[10].head.version_minor, 0);
	/* The last END comes from oa_http_close. */
	CHECK_EQ_INT(r.records[11].offset, strlen(pipelined_responses));
	check_split_invariance(&s, pipelined_responses, &r);
}

static void test_expect_continue(void)
{
	const char *req =
	    "POST /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
	struct oa_http_parser p;
	struct oa_http_event ev[4];
	oa_http_parser_init(&p, OA_HTTP_REQUESTS);
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)req, strlen(req), ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, OA_HTTP_MESSAGE_BEGIN);
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)req + ev[0].offset, 0, ev, 4), 0);
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)"da", 2, ev, 4), 0);
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)"ta", 2, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, OA_HTTP_MESSAGE_END);
	CHECK_EQ_INT(ev[0].body_len, 4);
	CHECK_EQ_INT(ev[0].offset, 2);

	struct oa_http_parser resp;
	oa_http_parser_init(&resp, OA_HTTP_RESPONSES);
	CHECK(oa_http_expect_response(&resp, OA_HTTP_POST));
	const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
	CHECK_EQ_INT(oa_http_feed(&resp, (const uint8_t *)cont, strlen(cont), ev, 4), 0);
	const char *final = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	/* a BEGIN and the END of the same message from one feed, which stops
	 * before the next message begins: the head stays valid until the next
	 * call */
	char twice[128];
	snprintf(twice, sizeof twice, "%s%s", final, final);
	CHECK(oa_http_expect_response(&resp, OA_HTTP_GET));
	CHECK_EQ_INT(oa_http_feed(&resp, (const uint8_t *)twice, strlen(twice), ev, 4), 2);
	CHECK_EQ_INT(ev[0].kind, OA_HTTP_MESSAGE_BEGIN);
	CHECK_EQ_INT(ev[0].head->status, 200);
	CHECK_EQ_INT(ev[0].head->method, OA_HTTP_POST);
	CHECK_EQ_INT(ev[0].head_len, strlen(final));
	CHECK_EQ_INT(ev[0].offset, strlen(final));
	CHECK_EQ_INT(ev[1].kind, OA_HTTP_MESSAGE_END);
	CHECK_EQ_INT(ev[1].status, 200);
	CHECK_EQ_INT(ev[1].method, OA_HTTP_POST);
	CHECK(ev[1].head == NULL);
	CHECK_EQ_INT(ev[1].offset, strlen(final));
	CHECK(oa_http_feed_again(ev, 2, 4, strlen(twice)));
	CHECK_EQ_INT(
	    oa_http_feed(&resp, (const uint8_t *)twice + strlen(final), strlen(final), ev, 4), 2);
	CHECK_EQ_INT(ev[0].head->method, OA_HTTP_GET);
	CHECK(!oa_http_feed_again(ev, 2, 4, strlen(final)));
	/* a body still to come: nothing more in these bytes */
	CHECK(oa_http_expect_response(&resp, OA_HTTP_GET));
	const char *longer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
	CHECK_EQ_INT(oa_http_feed(&resp, (const uint8_t *)longer, strlen(longer), ev, 4), 1);
	CHECK(!oa_http_feed_again(ev, 1, 4, strlen(longer)));
	CHECK(oa_http_feed_again(ev, 1, 1, strlen(longer)));
}

static void check_gives_up(const struct setup *s, const char *data, size_t len,
			   enum oa_http_gave_up_reason reason, size_t offset)
{
	struct run r;
	run_whole(s, data, len, &r);
	CHECK(r.n >= 1);
	if (!r.n)
		return;
	const struct record *last = &r.records[r.n - 1];
	CHECK_EQ_INT(last->kind, OA_HTTP_GAVE_UP);
	CHECK_EQ_INT(last->reason, reason);
	CHECK_EQ_INT(last->offset, offset);
}

static void test_not_http(void)
{
	static const char client_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	check_gives_up(&requests, client_hello, sizeof client_hello - 1, OA_HTTP_NOT_HTTP, 1);
	const char *h2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	check_gives_up(&requests, h2, strlen(h2), OA_HTTP_NOT_HTTP, 12);
	static const char binary[] = "\x00\x00\x00\x08\x04\xd2\x16\x2f";
	check_gives_up(&requests, binary, sizeof binary - 1, OA_HTTP_NOT_HTTP, 1);
	const char *ssh = "SSH-2.0-OpenSSH_9.2\r\n";
	check_gives_up(&requests, ssh, strlen(ssh), OA_HTTP_NOT_HTTP, 20);
	const char *redis = "*1\r\n$4\r\nPING\r\n";
	check_gives_up(&requests, redis, strlen(redis), OA_HTTP_NOT_HTTP, 3);
	const char *http09 = "GET /index.html\r\n";
	check_gives_up(&requests, http09, strlen(http09), OA_HTTP_NOT_HTTP, 16);
	const char *opaque = "GET urn:isbn:1 HTTP/1.1\r\n\r\n";
	check_gives_up(&requests, opaque, strlen(opaque), OA_HTTP_NOT_HTTP, 9);

	const struct setup responses = {OA_HTTP_RESPONSES, NULL, 0, false, false};
	const char *h2resp = "\x00\x00\x12\x04\x00";
	check_gives_up(&responses, h2resp, 5, OA_HTTP_NOT_HTTP, 1);
	const char *status = "HTTP/1.1 20 OK\r\n\r\n";
	check_gives_up(&responses, status, strlen(status), OA_HTTP_NOT_HTTP, 12);
	const char *low = "HTTP/1.1 099 Low\r\n\r\n";
	check_gives_up(&responses, low, strlen(low), OA_HTTP_NOT_HTTP, 13);
	const char *v2 = "HTTP/2 200\r\n\r\n";
	check_gives_up(&responses, v2, strlen(v2), OA_HTTP_NOT_HTTP, 6);

	/* A dead parser ignores everything. */
	struct oa_http_parser p;
	struct oa_http_event ev[2];
	oa_http_parser_init(&p, OA_HTTP_REQUESTS);
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)client_hello, 3, ev, 2), 1);
	const char *get = "GET / HTTP/1.1\r\n\r\n";
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)get, strlen(get), ev, 2), 0);
	CHECK(!oa_http_close(&p, ev));
}

static void test_malformed(void)
{
	const char *space_before_colon = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
	check_gives_up(&requests, space_before_colon, strlen(space_before_colon), OA_HTTP_MALFORMED,
		       21);
	const char *bad_length = "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n";
	check_gives_up(&requests, bad_length, strlen(bad_length), OA_HTTP_MALFORMED, 35);
	const char *empty_length = "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n";
	check_gives_up(&requests, empty_length, strlen(empty_length), OA_HTTP_MALFORMED, 35);
	const char *two_numbers = "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n";
	check_gives_up(&requests, two_numbers, strlen(two_numbers), OA_HTTP_MALFORMED, 36);
	const char *conflict = "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
	check_gives_up(&requests, conflict, strlen(conflict), OA_HTTP_MALFORMED, 55);
	const char *huge = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n";
	check_gives_up(&requests, huge, strlen(huge), OA_HTTP_MALFORMED, 53);
	const char *gzip_only = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
	check_gives_up(&requests, gzip_only, strlen(gzip_only), OA_HTTP_MALFORMED,
		       strlen(gzip_only));
	const char *chunkedx = "POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n";
	check_gives_up(&requests, chunkedx, strlen(chunkedx), OA_HTTP_MALFORMED, strlen(chunkedx));
	const char *bad_chunk = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
	check_gives_up(&requests, bad_chunk, strlen(bad_chunk), OA_HTTP_MALFORMED,
		       strlen(bad_chunk) - 3);
	const char *chunk_overflow =
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n";
	check_gives_up(&requests, chunk_overflow, strlen(chunk_overflow), OA_HTTP_MALFORMED,
		       strlen(chunk_overflow) - 2);
	const char *no_crlf_after_data =
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naX";
	check_gives_up(&requests, no_crlf_after_data, strlen(no_crlf_after_data), OA_HTTP_MALFORMED,
		       strlen(no_crlf_after_data));
	const char *control = "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n";
	check_gives_up(&requests, control, strlen(control), OA_HTTP_MALFORMED, 21);
	const char *cr_alone = "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n";
	check_gives_up(&requests, cr_alone, strlen(cr_alone), OA_HTTP_MALFORMED, 22);

	/* Identical repeated lengths, and TE beating Content-Length, are fine. */
	const char *same = "POST / HTTP/1.1\r\nContent-Length: 2 \r\nContent-length:2\r\n\r\nok";
	struct run r;
	run_whole(&requests, same, strlen(same), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[1].body_len, 2);
	const char *both = "POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: "
			   "chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
	run_whole(&requests, both, strlen(both), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[1].body_len, 2);
	CHECK_EQ_INT(r.records[1].offset, strlen(both));
}

static void test_response_framing(void)
{
	/* A final coding other than chunked: the body runs until close. */
	const struct setup s = {OA_HTTP_RESPONSES, NULL, 0, true, false};
	const char *gzip = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxyz";
	struct run r;
	run_whole(&s, gzip, strlen(gzip), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[0].head.method, OA_HTTP_GET);
	CHECK_EQ_INT(r.records[1].kind, OA_HTTP_MESSAGE_END);
	CHECK_EQ_INT(r.records[1].body_len, 3);

	/* Close in the middle of a message. */
	const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
	run_whole(&s, cut, strlen(cut), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[1].kind, OA_HTTP_GAVE_UP);
	CHECK_EQ_INT(r.records[1].reason, OA_HTTP_INCOMPLETE);
	const char *cut_head = "HTTP/1.1 200 OK\r\nContent-";
	run_whole(&s, cut_head, strlen(cut_head), &r);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_INT(r.records[0].reason, OA_HTTP_INCOMPLETE);

	/* Close between messages reports nothing. */
	const char *done = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	run_whole(&s, done, strlen(done), &r);
	CHECK_EQ_INT(r.n, 2);
	struct oa_http_parser p;
	struct oa_http_event ev;
	oa_http_parser_init(&p, OA_HTTP_RESPONSES);
	CHECK(!oa_http_close(&p, &ev));
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)done, strlen(done), &ev, 1), 0);
}

static void test_pending_queue(void)
{
	struct oa_http_parser p;
	oa_http_parser_init(&p, OA_HTTP_RESPONSES);
	for (int i = 0; i < OA_HTTP_PENDING_MAX; i++)
		CHECK(oa_http_expect_response(&p, i == 0 ? OA_HTTP_HEAD : OA_HTTP_GET));
	CHECK(!oa_http_expect_response(&p, OA_HTTP_GET));
	struct oa_http_event ev[2];
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n";
	/* a response to HEAD has no body: it ends in the same feed */
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)resp, strlen(resp), ev, 2), 2);
	CHECK_EQ_INT(ev[0].head->method, OA_HTTP_HEAD);
	CHECK_EQ_INT(ev[1].kind, OA_HTTP_MESSAGE_END);
	CHECK(oa_http_expect_response(&p, OA_HTTP_POST));
	oa_http_parser_init(&p, OA_HTTP_REQUESTS);
	CHECK(!oa_http_expect_response(&p, OA_HTTP_GET));
}

static void test_head_limit(void)
{
	static char big[MAX_INPUT];
	const char *start = "GET / HTTP/1.1\r\nX: ";
	/* A head of exactly OA_HTTP_MAX_HEAD bytes is accepted. */
	size_t filler = OA_HTTP_MAX_HEAD - strlen(start) - 4;
	snprintf(big, sizeof big, "%s%0*d\r\n\r\n", start, (int)filler, 0);
	CHECK_EQ_INT(strlen(big), OA_HTTP_MAX_HEAD);
	struct run r;
	run_whole(&requests, big, strlen(big), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[0].head_len, OA_HTTP_MAX_HEAD);
	/* One more byte is not. */
	snprintf(big, sizeof big, "%s%0*d\r\n\r\n", start, (int)filler + 1, 0);
	check_gives_up(&requests, big, strlen(big), OA_HTTP_TOO_LARGE, OA_HTTP_MAX_HEAD + 1);
	/* Endless header lines. */
	size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
	while (n + 8 < sizeof big)
		n += (size_t)snprintf(big + n, sizeof big - n, "A: b\r\n");
	check_gives_up(&requests, big, n, OA_HTTP_TOO_LARGE, OA_HTTP_MAX_HEAD + 1);
	/* Trailers and chunk extensions are bounded too. */
	const char *chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;";
	n = (size_t)snprintf(big, sizeof big, "%s", chunked);
	memset(big + n, 'e', sizeof big - n - 1);
	check_gives_up(&requests, big, sizeof big - 1, OA_HTTP_TOO_LARGE,
		       strlen(chunked) - 2 + OA_HTTP_MAX_HEAD + 1);
}

static void test_truncation(void)
{
	static char req[1024];
	char path[200];
	memset(path, 'p', sizeof path);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	snprintf(req, sizeof req,
		 "GET %s?%s HTTP/1.1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) "
		 "Gecko/20100101 Firefox/115.0\r\nHost: %s\r\n"
		 "tracestate: aaaaaaaaaa=1111111111,bbbbbbbbbb=2222222222,cccccccccc=3333333333\r\n"
		 "\r\n",
		 path, path + 100, path + 120);
	struct run r;
	run_whole(&requests, req, strlen(req), &r);
	CHECK_EQ_INT(r.n, 2);
	const struct oa_http_head *h = &r.records[0].head;
	CHECK_EQ_INT(h->path_len, OA_HTTP_PATH_CAP - 1);
	CHECK_EQ_INT(strlen(h->path), OA_HTTP_PATH_CAP - 1);
	CHECK_EQ_INT(h->query_len, OA_HTTP_QUERY_CAP - 1);
	CHECK_EQ_INT(h->host_len, OA_HTTP_HOST_CAP - 1);
	CHECK_EQ_STR(h->user_agent,
		     "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefo");
	/* Only whole tracestate members are kept. */
	CHECK_EQ_STR(h->tracestate, "aaaaaaaaaa=1111111111,bbbbbbbbbb=2222222222");
	CHECK_EQ_INT(h->flags, OA_HTTP_HAS_QUERY | OA_HTTP_PATH_TRUNCATED |
				   OA_HTTP_QUERY_TRUNCATED | OA_HTTP_HOST_TRUNCATED |
				   OA_HTTP_USER_AGENT_TRUNCATED | OA_HTTP_TRACESTATE_TRUNCATED);
	check_split_invariance(&requests, req, &r);
}

static void test_trace_context_headers(void)
{
	const char *req =
	    /* two tracestate headers are one list */
	    "GET /1 HTTP/1.1\r\ntracestate: a=1\r\ntracestate: b=2 \r\n\r\n"
	    /* invalid: uppercase */
	    "GET /2 HTTP/1.1\r\ntraceparent: "
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\r\n\r\n"
	    /* invalid: two of them */
	    "GET /3 HTTP/1.1\r\ntraceparent: "
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
	    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"
	    /* a future version with more fields than fit */
	    "GET /4 HTTP/1.1\r\ntraceparent: "
	    "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	    "-and-many-more-fields\r\n\r\n"
	    /* version 00 with trailing junk that does not fit */
	    "GET /5 HTTP/1.1\r\ntraceparent: "
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	    " x\r\n\r\n"
	    /* trailing blanks beyond the buffer are fine */
	    "GET /6 HTTP/1.1\r\ntraceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	    "    \t \r\n\r\n"
	    /* a folded line continues a value and is ignored */
	    "GET /7 HTTP/1.1\r\nUser-Agent: first\r\n  folded\r\n\r\n";
	struct run r;
	run_whole(&requests, req, strlen(req), &r);
	CHECK_EQ_INT(r.n, 14);
	CHECK_EQ_STR(r.records[0].head.tracestate, "a=1,b=2");
	CHECK_EQ_INT(r.records[0].head.flags, 0);
	CHECK_EQ_INT(r.records[2].head.flags, OA_HTTP_HAS_TRACEPARENT);
	CHECK_EQ_INT(r.records[4].head.flags, OA_HTTP_HAS_TRACEPARENT);
	CHECK_EQ_INT(r.records[6].head.flags, OA_HTTP_HAS_TRACEPARENT | OA_HTTP_TRACEPARENT_VALID);
	CHECK_EQ_INT(r.records[6].head.parent.flags, 0);
	CHECK_EQ_INT(r.records[8].head.flags, OA_HTTP_HAS_TRACEPARENT);
	CHECK_EQ_INT(r.records[10].head.flags, OA_HTTP_HAS_TRACEPARENT | OA_HTTP_TRACEPARENT_VALID);
	CHECK_EQ_STR(r.records[12].head.user_agent, "first");
	check_split_invariance(&requests, req, &r);
}

/* The first traceparent line as a client rewriting it sees it, with the
 * head cut at every point: while its value is not complete, OPEN at its
 * offset (and the head's bytes so far counted); after its line, V00 only
 * for a valid version-00 value; the same after MESSAGE_BEGIN. */
static void check_tp_field(const char *req, enum oa_http_tp_state want, int value_at)
{
	size_t len = strlen(req);
	for (size_t cut = 0; cut <= len; cut++) {
		struct oa_http_parser p;
		struct oa_http_event ev[4];
		oa_http_parser_init(&p, OA_HTTP_REQUESTS);
		size_t n = oa_http_feed(&p, (const uint8_t *)req, cut, ev, 4);
		struct oa_http_tp_field f = oa_http_traceparent_field(&p);
		if (cut < len) {
			CHECK_EQ_INT(n, 0);
			CHECK_EQ_INT(oa_http_head_progress(&p), cut);
			/* the value's line ends with its LF */
			const char *lf = value_at >= 0 ? strchr(req + value_at, '\n') : NULL;
			if (value_at >= 0 && cut > (size_t)value_at && cut <= (size_t)(lf - req))
				CHECK(f.state == OA_HTTP_TP_OPEN && f.value_at == value_at);
			if (value_at >= 0 && cut > (size_t)(lf - req))
				CHECK_EQ_INT(f.state, want);
		}
		if (cut < len)
			n = oa_http_feed(&p, (const uint8_t *)req + cut, len - cut, ev, 4);
		/* no body: its END comes from the same feed, the field stays */
		CHECK(n == 2 && ev[0].kind == OA_HTTP_MESSAGE_BEGIN &&
		      ev[1].kind == OA_HTTP_MESSAGE_END);
		CHECK_EQ_INT(oa_http_head_progress(&p), 0);
		f = oa_http_traceparent_field(&p);
		CHECK_EQ_INT(f.state, want);
		if (want == OA_HTTP_TP_V00) {
			CHECK_EQ_INT(f.value_at, value_at);
			CHECK(memcmp(f.value.span_id, "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8) == 0);
			CHECK_EQ_INT(f.value.flags, 1);
		}
	}
}

#define TP_VALUE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_traceparent_field(void)
{
	check_tp_field("GET / HTTP/1.1\r\nHost: a\r\n\r\n", OA_HTTP_TP_NONE, -1);
	check_tp_field("GET / HTTP/1.1\r\ntraceparent: " TP_VALUE "\r\n\r\n", OA_HTTP_TP_V00, 29);
	check_tp_field("GET / HTTP/1.1\r\nTraceParent:\t  " TP_VALUE " \t\r\nX: y\r\n\r\n",
		       OA_HTTP_TP_V00, 31);
	check_tp_field("GET / HTTP/1.1\r\ntraceparent: " TP_VALUE "\n\n", OA_HTTP_TP_V00, 29);
	/* the first line decides: a second one is not looked at */
	check_tp_field("GET / HTTP/1.1\r\ntraceparent: " TP_VALUE "\r\ntraceparent: x\r\n\r\n",
		       OA_HTTP_TP_V00, 29);
	check_tp_field("GET / HTTP/1.1\r\ntraceparent:\r\ntraceparent: " TP_VALUE "\r\n\r\n",
		       OA_HTTP_TP_OTHER, -1);
	/* left alone: another version, malformed, junk after the value */
	check_tp_field("GET / HTTP/1.1\r\ntraceparent: "
		       "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x\r\n\r\n",
		       OA_HTTP_TP_OTHER, 29);
	check_tp_field("GET / HTTP/1.1\r\ntraceparent: "
		       "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01\r\n\r\n",
		       OA_HTTP_TP_OTHER, 29);
	check_tp_field("GET / HTTP/1.1\r\ntraceparent: " TP_VALUE "0\r\n\r\n", OA_HTTP_TP_OTHER,
		       29);
	check_tp_field("GET / HTTP/1.1\r\ntraceparent: " TP_VALUE " x\r\n\r\n", OA_HTTP_TP_OTHER,
		       29);
}

/* Whole lines are parsed in bulk, a word at a time; every split point makes
 * some of them go byte by byte: both must agree on what they capture and on
 * where they give up, wherever the odd byte falls in a word. */
static void test_bulk_lines(void)
{
	const char *req =
	    "GET /a/b?x=1&y=2#frag HTTP/1.1\r\n"
	    "hOsT:\t example.com:8080 \t \r\n"
	    "Hosx: no\r\n"
	    "User-Agenx: no\r\n"
	    "USER-AGENT: a\tb c\td e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 "
	    "6 7 8 9   \t\r\n"
	    "X-Long-Name-That-Is-Not-A-Field: \x80\xff obs-text\n"
	    "tracestate: a=1\r\n"
	    "Tracestatf: b=2\r\n"
	    "Accept: */*\r\n"
	    "\r\n";
	struct run r;
	run_whole(&requests, req, strlen(req), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_STR(r.records[0].head.path, "/a/b");
	CHECK_EQ_STR(r.records[0].head.query, "x=1&y=2");
	CHECK_EQ_STR(r.records[0].head.host, "example.com:8080");
	/* cut at the capacity, blanks after the cut trimmed */
	CHECK_EQ_STR(r.records[0].head.user_agent,
		     "a\tb c\td e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5");
	CHECK_EQ_INT(r.records[0].head.flags, OA_HTTP_HAS_QUERY | OA_HTTP_USER_AGENT_TRUNCATED);
	CHECK_EQ_STR(r.records[0].head.tracestate, "a=1");
	check_split_invariance(&requests, req, &r);

	/* A status line's reason may hold controls; headers a response does
	 * not read are only checked. */
	enum oa_http_method get = OA_HTTP_GET;
	struct setup s = {OA_HTTP_RESPONSES, &get, 1, false, false};
	const char *resp = "HTTP/1.0 404 Not\x01"
			   "Found\r\nHost: x\r\ncontent-LENGTH:  3\t\r\n\r\nabc";
	run_whole(&s, resp, strlen(resp), &r);
	CHECK_EQ_INT(r.n, 2);
	CHECK_EQ_INT(r.records[0].head.status, 404);
	CHECK_EQ_INT(r.records[0].head.version_minor, 0);
	CHECK_EQ_INT(r.records[1].body_len, 3);
	check_split_invariance(&s, resp, &r);

	/* Controls and DEL anywhere in a line, within or past its first word. */
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\nX: 12345678901234\x7f\r\n\r\n",
	    "GET / HTTP/1.1\r\nX: 1234567\t89\v\r\n\r\n",
	    "GET / HTTP/1.1\r\nLonger-Name: 12345678\r9\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\x1f\r\n\r\n",
	    "GET /\x7f HTTP/1.1\r\n\r\n",
	    "GET / HTTP/1.1\r\r\n\r\n",
	    "GET / HTTP/1.1 \r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		run_whole(&requests, bad[i], strlen(bad[i]), &r);
		CHECK_EQ_INT(r.records[r.n - 1].kind, OA_HTTP_GAVE_UP);
		check_split_invariance(&requests, bad[i], &r);
	}
	check_gives_up(&requests, bad[0], strlen(bad[0]), OA_HTTP_MALFORMED, 34);
}

/* What two heads say, field by field (bytes past a string's NUL differ). */
static bool same_head(const struct oa_http_head *a, const struct oa_http_head *b)
{
	return memcmp(a, b, offsetof(struct oa_http_head, parent)) == 0 &&
	       (!(a->flags & OA_HTTP_TRACEPARENT_VALID) ||
		memcmp(&a->parent, &b->parent, sizeof a->parent) == 0) &&
	       strcmp(a->tracestate, b->tracestate) == 0 &&
	       strcmp(a->method_original, b->method_original) == 0 &&
	       strcmp(a->scheme, b->scheme) == 0 && strcmp(a->path, b->path) == 0 &&
	       strcmp(a->query, b->query) == 0 && strcmp(a->host, b->host) == 0 &&
	       strcmp(a->user_agent, b->user_agent) == 0;
}

/* A lean run frames the stream as a full one does, wherever it is cut: its
 * heads are the full ones without what lean skips, and a lean head's bytes
 * parsed again in full give the full head. Returns the lean heads seen. */
static int check_lean_run(const char *data, const struct run *full, const struct run *lean,
			  const size_t *cuts, size_t n_cuts)
{
	int lean_heads = 0;
	CHECK_EQ_INT(lean->n, full->n);
	CHECK(lean->bounds_ok);
	for (size_t i = 0; i < full->n && i < lean->n; i++) {
		const struct record *x = &full->records[i], *y = &lean->records[i];
		CHECK(x->kind == y->kind && x->reason == y->reason && x->offset == y->offset);
		CHECK(x->head_len == y->head_len && x->body_len == y->body_len);
		CHECK(same_inject(x, y, cuts, n_cuts));
		if (y->kind != OA_HTTP_MESSAGE_BEGIN)
			continue;
		if (!(y->head.flags & OA_HTTP_LEAN)) {
			CHECK(same_head(&x->head, &y->head));
			continue;
		}
		lean_heads++;
		/* begun and ended in one feed */
		for (size_t c = 0; c < n_cuts; c++)
			CHECK(cuts[c] <= y->offset - y->head_len || cuts[c] >= y->offset);
		struct oa_http_head stripped, again;
		oa_http_head_copy(&stripped, &x->head);
		stripped.scheme_len = stripped.path_len = stripped.query_len = stripped.host_len =
		    stripped.user_agent_len = 0;
		stripped.scheme[0] = stripped.path[0] = stripped.query[0] = stripped.host[0] =
		    stripped.user_agent[0] = '\0';
		stripped.flags = (uint16_t)((stripped.flags &
					     ~(OA_HTTP_HAS_QUERY | OA_HTTP_PATH_TRUNCATED |
					       OA_HTTP_QUERY_TRUNCATED | OA_HTTP_HOST_TRUNCATED |
					       OA_HTTP_USER_AGENT_TRUNCATED)) |
					    OA_HTTP_LEAN);
		CHECK(same_head(&stripped, &y->head));
		CHECK(oa_http_parse_head((const uint8_t *)data + y->offset - y->head_len,
					 y->head_len, &again));
		CHECK(same_head(&x->head, &again));
	}
	return lean_heads;
}

/* Lean request heads (the unsampled server path) keep a keep-alive stream's
 * framing: pipelined requests, Content-Length and chunked bodies, a
 * traceparent cut anywhere, an absolute-form target and bare LFs. */
static void test_lean_heads(void)
{
	static const char stream[] =
	    "\r\nGET /a?q=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n"
	    "Content-Type: text/plain\r\nConnection: keep-alive\r\nTrace-Id: 7\r\n"
	    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
	    "tracestate: k=v\r\n\r\n"
	    "POST /b HTTP/1.1\r\nContent-Length: 5\r\nHost: h\r\n\r\nhello"
	    "PUT /c?x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	    "5;name=\"v\"\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nChecksum: 1\r\n\r\n"
	    "GET http://user@proxy.example/abs?k=v HTTP/1.1\r\nUser-Agent: u\r\n\r\n"
	    "HEAD /d HTTP/1.0\nHost: bare-lf\nTraceparent: "
	    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\n\n"
	    "DELETE /e HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
	const size_t len = strlen(stream);
	const struct setup lean = {OA_HTTP_REQUESTS, NULL, 0, false, true};
	struct run *full = malloc(sizeof *full), *other = malloc(sizeof *other);
	run_whole(&requests, stream, len, full);
	CHECK_EQ_INT(full->n, 12);
	run_whole(&lean, stream, len, other);
	CHECK_EQ_INT(check_lean_run(stream, full, other, NULL, 0), 6);
	CHECK_EQ_STR(other->records[0].head.path, "");
	CHECK_EQ_STR(other->records[0].head.tracestate, "k=v");
	CHECK_EQ_INT(other->records[0].head.parent.span_id[7], 0xb7);
	CHECK_EQ_INT(other->records[5].body_len, 21);
	int cut_heads = 0;
	for (size_t split = 0; split <= len; split++) {
		run_cuts(&lean, stream, len, &split, 1, 4, other);
		cut_heads += 6 - check_lean_run(stream, full, other, &split, 1);
	}
	/* every cut inside a head (but its stray leading CRLF) made it full */
	CHECK(cut_heads > 0);
	static size_t cuts[sizeof stream];
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	run_cuts(&lean, stream, len, cuts, len - 1, 4, other);
	CHECK_EQ_INT(check_lean_run(stream, full, other, cuts, len - 1), 0);
	run_cuts(&lean, stream, len, NULL, 0, 1, other);
	CHECK_EQ_INT(check_lean_run(stream, full, other, NULL, 0), 6);
	/* a lean response head keeps all a response head has: no OA_HTTP_LEAN */
	struct oa_http_parser p;
	struct oa_http_event ev;
	static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	oa_http_parser_init(&p, OA_HTTP_RESPONSES);
	oa_http_set_lean(&p, true);
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)response, sizeof response - 1, &ev, 1), 1);
	CHECK(ev.head && !(ev.head->flags & OA_HTTP_LEAN) && ev.head->status == 200);
	/* a lean request head passes over a malformed line it does not read;
	 * its full parse (a request sampled after all) gives up on it */
	static const char loose[] = "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n";
	oa_http_parser_init(&p, OA_HTTP_REQUESTS);
	oa_http_set_lean(&p, true);
	CHECK_EQ_INT(oa_http_feed(&p, (const uint8_t *)loose, sizeof loose - 1, &ev, 1), 1);
	CHECK(ev.kind == OA_HTTP_MESSAGE_BEGIN && (ev.head->flags & OA_HTTP_LEAN));
	struct oa_http_head head;
	CHECK(!oa_http_parse_head((const uint8_t *)loose, sizeof loose - 1, &head));
	/* not one whole head */
	CHECK(!oa_http_parse_head((const uint8_t *)stream + 2, 20, &head));
	CHECK(!oa_http_parse_head((const uint8_t *)"GET / HTTP/1.1\r\n\r\nX", 19, &head));
	free(full);
	free(other);
}

/* Lean heads pass over the lines they do not read: response heads (the
 * lean ones answer requests sampled out) frame a keep-alive stream as full
 * ones do, whole, cut at every point and byte by byte. */
static void test_lean_responses(void)
{
	static const char nginx[] =
	    "HTTP/1.1 200 OK\r\n"
	    "Server: nginx/1.22.1\r\n"
	    "Date: Thu, 26 Nov 2026 10:30:00 GMT\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Length: 3\r\n"
	    "Connection: keep-alive\r\n"
	    "\r\n"
	    "ok\n"
	    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTRANSFER-ENCODING: "
	    "chunked\r\nTrailer: X-Sum\r\nTransfer-Type: x\r\n\r\n"
	    "3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
	    "HTTP/1.1 404 Not Found\nconTent-lEngth:   5  \ncontent-lengthy: 9\n"
	    "Content-Lengt: 8\nTransfer-Encodin: chunked\n\nnope!"
	    "HTTP/1.1 204 No Content\r\nContent-Language: en\r\n\r\n"
	    "HTTP/1.0 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
	    "until close";
	static const enum oa_http_method methods[] = {OA_HTTP_GET, OA_HTTP_GET, OA_HTTP_GET,
						      OA_HTTP_GET, OA_HTTP_GET};
	const struct setup full = {OA_HTTP_RESPONSES, methods, 5, true, false};
	const struct setup lean = {OA_HTTP_RESPONSES, methods, 5, true, true};
	struct run *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	run_whole(&full, nginx, strlen(nginx), a);
	CHECK_EQ_INT(a->n, 10);
	static const uint64_t body_lens[] = {3, 3, 5, 0, 11};
	for (size_t i = 0; i < 5 && a->n == 10; i++)
		CHECK_EQ_INT(a->records[2 * i + 1].body_len, body_lens[i]);
	run_whole(&lean, nginx, strlen(nginx), b);
	CHECK(same_runs(a, b, NULL, 0));
	check_split_invariance(&lean, nginx, a);
	const struct setup lean_pipelined = {
	    OA_HTTP_RESPONSES,
	    (const enum oa_http_method[]){OA_HTTP_POST, OA_HTTP_HEAD, OA_HTTP_GET, OA_HTTP_GET,
					  OA_HTTP_GET, OA_HTTP_DELETE},
	    6, true, true};
	run_whole(&lean_pipelined, pipelined_responses, strlen(pipelined_responses), b);
	CHECK_EQ_INT(b->n, 12);
	check_split_invariance(&lean_pipelined, pipelined_responses, b);

	/* What a lean head accepts that a full one gives up on: lines it does
	 * not read are only split at their LF. */
	static const char loose[] = "HTTP/1.1 200 OK\r\nBad Header: x\r\nno colon at all\r\n"
				    "X: a\x01\rb\r\nx(: y\r\nContent-Length: 2\r\n\r\nok";
	const struct setup full1 = {OA_HTTP_RESPONSES, methods, 1, false, false};
	const struct setup lean1 = {OA_HTTP_RESPONSES, methods, 1, false, true};
	run_whole(&full1, loose, strlen(loose), a);
	CHECK_EQ_INT(a->n, 1);
	CHECK_EQ_INT(a->records[0].reason, OA_HTTP_MALFORMED);
	run_whole(&lean1, loose, strlen(loose), b);
	CHECK_EQ_INT(b->n, 2);
	CHECK_EQ_INT(b->records[1].kind, OA_HTTP_MESSAGE_END);
	CHECK_EQ_INT(b->records[1].body_len, 2);
	/* Lines that may name a framing field, blank lines, obs-folds and lines
	 * starting with a control go the exact way: the same errors where the
	 * full parse gives them. */
	static const char *const exact[] = {
	    "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\ncontent-length: 2\x01\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\nContent-Length\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding\x7f: chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\rx\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: y\r\n folded\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\n\x01X: y\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: y\r\n\r\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok",
	};
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
		run_whole(&full1, exact[i], strlen(exact[i]), a);
		run_whole(&lean1, exact[i], strlen(exact[i]), b);
		if (!same_runs(a, b, NULL, 0))
			fprintf(stderr, "lean differs on exact[%zu]\n", i);
		CHECK(same_runs(a, b, NULL, 0));
	}
	/* A head longer than the limit is too large, lean or not. */
	static char big[OA_HTTP_MAX_HEAD + 64];
	strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
	size_t at = strlen(big);
	memset(big + at, 'a', OA_HTTP_MAX_HEAD);
	strcpy(big + at + OA_HTTP_MAX_HEAD - 10, "\r\nY: b\r\n\r\n");
	run_whole(&full1, big, strlen(big), a);
	run_whole(&lean1, big, strlen(big), b);
	CHECK_EQ_INT(a->records[0].reason, OA_HTTP_TOO_LARGE);
	CHECK(same_runs(a, b, NULL, 0));
	free(a);
	free(b);
}

static void test_redact_query(void)
{
	const enum oa_redact_query all = OA_REDACT_QUERY_ALL;
	const enum oa_redact_query sensitive = OA_REDACT_QUERY_SENSITIVE;
	char out[256];
	CHECK_EQ_INT(oa_http_redact_query("a=1&b&c=&d=x=y", 14, all, out, sizeof out), 26);
	CHECK_EQ_STR(out, "a=REDACTED&b&c=&d=REDACTED");
	CHECK_EQ_INT(oa_http_redact_query("", 0, all, out, sizeof out), 0);
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(oa_http_redact_query("&&k=v&", 6, all, out, sizeof out), 13);
	CHECK_EQ_STR(out, "&&k=REDACTED&");
	CHECK_EQ_INT(oa_http_redact_query("=secret", 7, all, out, sizeof out), 9);
	CHECK_EQ_STR(out, "=REDACTED");
	/* len bounds the input; cap bounds the output, snprintf-style */
	CHECK_EQ_INT(oa_http_redact_query("token=abc", 6, all, out, sizeof out), 6);
	CHECK_EQ_STR(out, "token=");
	CHECK_EQ_INT(oa_http_redact_query("token=abc", 9, all, out, 8), 14);
	CHECK_EQ_STR(out, "token=R");
	out[0] = 'x';
	CHECK_EQ_INT(oa_http_redact_query("a=b", 3, all, out, 1), 10);
	CHECK_EQ_STR(out, "");

	/* sensitive (the default): the semantic conventions' names and
	 * credential-like ones, whatever their case; other values kept */
	static const char signed_url[] = "AWSAccessKeyId=AKIA&Expires=1&Signature=s&sig=x"
					 "&X-Goog-Signature=g&q=cats&page=2&access_token=t"
					 "&Password=p&api_key=k&empty=&flag";
	oa_http_redact_query(signed_url, strlen(signed_url), sensitive, out, sizeof out);
	CHECK_EQ_STR(out, "AWSAccessKeyId=REDACTED&Expires=1&Signature=REDACTED&sig=REDACTED"
			  "&X-Goog-Signature=REDACTED&q=cats&page=2&access_token=REDACTED"
			  "&Password=REDACTED&api_key=REDACTED&empty=&flag");
	CHECK_EQ_INT(oa_http_redact_query("a=1&sig=", 8, sensitive, out, sizeof out), 8);
	CHECK_EQ_STR(out, "a=1&sig=");
	CHECK(!oa_http_sensitive_name("signal", 6));
	CHECK(oa_http_sensitive_name("SIG", 3));
	CHECK(oa_http_sensitive_name("X-Amz-Security-Token", 20));
	/* none: the query as it came */
	CHECK_EQ_INT(oa_http_redact_query("token=abc&a", 11, OA_REDACT_QUERY_NONE, out, sizeof out),
		     11);
	CHECK_EQ_STR(out, "token=abc&a");
}

static void test_url_full(void)
{
	char out[128];
	struct oa_http_url url = {"http", "example.com", 80, "/a", "q=1&r", OA_REDACT_QUERY_ALL};
	CHECK_EQ_INT(oa_http_url_full(&url, out, sizeof out), 33);
	CHECK_EQ_STR(out, "http://example.com/a?q=REDACTED&r");
	url.redact = OA_REDACT_QUERY_SENSITIVE;
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "http://example.com/a?q=1&r");
	url = (struct oa_http_url){"https", "u:pw@example.com",	 443, "/",
				   "k=v",   OA_REDACT_QUERY_NONE};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "https://example.com/?k=v");
	url = (struct oa_http_url){"https", "user:pw@example.com", 8443, "/",
				   NULL,    OA_REDACT_QUERY_ALL};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "https://example.com:8443/");
	url = (struct oa_http_url){"https", "example.com", 443, "", NULL, OA_REDACT_QUERY_ALL};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "https://example.com/");
	url = (struct oa_http_url){NULL, "example.com:8080", 9999, NULL, "", OA_REDACT_QUERY_ALL};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "http://example.com:8080/?");
	url = (struct oa_http_url){"http", "::1", 8080, "x", NULL, OA_REDACT_QUERY_ALL};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "http://[::1]:8080/x");
	url = (struct oa_http_url){"http", "[::1]:81", 8080, "/", NULL, OA_REDACT_QUERY_ALL};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "http://[::1]:81/");
	url = (struct oa_http_url){"http", "[::1]", 8080, "/", NULL, OA_REDACT_QUERY_ALL};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "http://[::1]:8080/");
	url = (struct oa_http_url){"http", "10.0.0.1", 0, "/", NULL, OA_REDACT_QUERY_ALL};
	oa_http_url_full(&url, out, sizeof out);
	CHECK_EQ_STR(out, "http://10.0.0.1/");
	url = (struct oa_http_url){"http", "h", 80, "/long/path", "k=v", OA_REDACT_QUERY_ALL};
	CHECK_EQ_INT(oa_http_url_full(&url, out, 12), 29);
	CHECK_EQ_STR(out, "http://h/lo");
}

int main(void)
{
	test_simple_get();
	test_injection_point();
	test_pipelined_requests();
	test_methods();
	test_absolute_form();
	test_connect();
	test_upgrade();
	test_pipelined_responses();
	test_expect_continue();
	test_not_http();
	test_malformed();
	test_response_framing();
	test_pending_queue();
	test_head_limit();
	test_truncation();
	test_trace_context_headers();
	test_traceparent_field();
	test_bulk_lines();
	test_lean_heads();
	test_lean_responses();
	test_redact_query();
	test_url_full();
	CHECK_DONE();
}
