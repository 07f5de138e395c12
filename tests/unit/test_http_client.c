/* The built-in client's pure parts: the endpoint URL and the response
 * reader, each response fed whole and split at every byte (the same result
 * either way). The exchanges themselves are in test_transport. */
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "http_client.h"

static void url_case(const char *url, const char *host, const char *port, const char *authority,
		     const char *target)
{
	struct oa_http_url u;
	bool ok = oa_http_url_parse(url, &u);
	CHECK(ok);
	if (!ok) {
		fprintf(stderr, "  url: %s\n", url);
		return;
	}
	CHECK_EQ_STR(u.host, host);
	CHECK_EQ_STR(u.port, port);
	CHECK_EQ_INT(u.authority_len, strlen(authority));
	CHECK(strncmp(u.authority, authority, u.authority_len) == 0);
	CHECK_EQ_INT(u.target_len, strlen(target));
	CHECK(strncmp(u.target, target, u.target_len) == 0);
}

static void test_urls(void)
{
	url_case("http://localhost:4318/v1/traces", "localhost", "4318", "localhost:4318",
		 "/v1/traces");
	url_case("HTTP://collector/v1/traces?x=1#frag", "collector", "80", "collector",
		 "/v1/traces?x=1");
	url_case("http://127.0.0.1:9", "127.0.0.1", "9", "127.0.0.1:9", "");
	url_case("http://[::1]:4318/v1/traces", "::1", "4318", "[::1]:4318", "/v1/traces");
	url_case("http://[fe80::1]/x", "fe80::1", "80", "[fe80::1]", "/x");
	url_case("http://h?q", "h", "80", "h", "?q");
	static const char *const not_ours[] = {
	    "https://collector/v1/traces",
	    "http://user:pw@collector/v1/traces",
	    "http:///v1/traces",
	    "http://host:/x",
	    "http://host:0/x",
	    "http://host:65536/x",
	    "http://host:12a/x",
	    "http://[::1/x",
	    "http://[::1]x/y",
	    "ftp://host/x",
	    "collector:4318",
	};
	struct oa_http_url u;
	for (size_t i = 0; i < sizeof not_ours / sizeof not_ours[0]; i++) {
		bool parsed = oa_http_url_parse(not_ours[i], &u);
		CHECK(!parsed);
		if (parsed)
			fprintf(stderr, "  parsed: %s\n", not_ours[i]);
	}
	char long_host[400] = "http://";
	memset(long_host + 7, 'a', 300);
	CHECK(!oa_http_url_parse(long_host, &u));
}

struct expected {
	enum oa_http_read result;
	int status;
	bool close;
	int64_t retry_after_s;
	const char *body;
	size_t used; /* 0: the whole text */
	bool ends_at_close;
};

static char kept[64];

/* Feeds text in pieces of `piece` bytes (0: whole), then the end of the
 * stream if asked; checks the outcome. */
static void feed(const char *text, size_t piece, const struct expected *e)
{
	struct oa_http_response r;
	oa_http_response_init(&r, kept, sizeof kept);
	size_t len = strlen(text), at = 0;
	enum oa_http_read result = OA_HTTP_READ_MORE;
	while (at < len && result == OA_HTTP_READ_MORE) {
		size_t n = piece && len - at > piece ? piece : len - at;
		size_t used;
		result = oa_http_response_feed(&r, text + at, n, &used);
		CHECK(used <= n);
		if (result == OA_HTTP_READ_MORE)
			CHECK_EQ_INT(used, n);
		at += used;
	}
	if (result == OA_HTTP_READ_MORE && e->ends_at_close)
		result = oa_http_response_end(&r);
	CHECK_EQ_INT(result, e->result);
	if (result != e->result)
		fprintf(stderr, "  piece %zu: %s\n", piece, text);
	if (e->result == OA_HTTP_READ_BAD)
		return;
	CHECK_EQ_INT(at, e->used ? e->used : len);
	CHECK_EQ_INT(r.status, e->status);
	CHECK_EQ_INT(r.close, e->close);
	CHECK_EQ_INT(r.retry_after_s, e->retry_after_s);
	CHECK_EQ_INT(r.body_len, strlen(e->body));
	CHECK(memcmp(r.body, e->body, r.body_len) == 0);
}

static void response_case(const char *text, struct expected e)
{
	for (size_t piece = 0; piece <= strlen(text); piece++)
		feed(text, piece, &e);
}

static void test_responses(void)
{
	response_case("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 200,
					.close = false,
					.retry_after_s = -1,
					.body = "hello"});
	/* bytes past the response are left */
	response_case("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXYZ",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 200,
					.close = false,
					.retry_after_s = -1,
					.body = "hi",
					.used = 40});
	response_case("HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 200,
					.close = false,
					.retry_after_s = -1,
					.body = ""});
	response_case("HTTP/1.1 204 No Content\r\n\r\n",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 204,
					.close = false,
					.retry_after_s = -1,
					.body = ""});
	response_case("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		      "3;ext=1\r\nabc\r\n0A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 200,
					.close = false,
					.retry_after_s = -1,
					.body = "abc0123456789"});
	/* bare LFs, an interim 100, Connection: close */
	response_case("HTTP/1.1 100 Continue\n\nHTTP/1.1 503 Busy\nConnection: Close\n"
		      "Retry-After: 7\nContent-Length: 1\n\nx",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 503,
					.close = true,
					.retry_after_s = 7,
					.body = "x"});
	/* no length: the body runs to the close */
	response_case("HTTP/1.1 400 Bad\r\n\r\nno traces",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 400,
					.close = true,
					.retry_after_s = -1,
					.body = "no traces",
					.used = 0,
					.ends_at_close = true});
	response_case("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nA",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 200,
					.close = true,
					.retry_after_s = -1,
					.body = "A"});
	response_case("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nA",
		      (struct expected){.result = OA_HTTP_READ_DONE,
					.status = 200,
					.close = false,
					.retry_after_s = -1,
					.body = "A"});
	/* a header line longer than the reader keeps is skipped */
	char long_header[2048] = "HTTP/1.1 200 OK\r\nX-Long: ";
	memset(long_header + strlen(long_header), 'v', 1500);
	strcat(long_header, "\r\nContent-Length: 2\r\n\r\nok");
	feed(long_header, 0,
	     &(struct expected){.result = OA_HTTP_READ_DONE,
				.status = 200,
				.close = false,
				.retry_after_s = -1,
				.body = "ok"});
	feed(long_header, 7,
	     &(struct expected){.result = OA_HTTP_READ_DONE,
				.status = 200,
				.close = false,
				.retry_after_s = -1,
				.body = "ok"});
	/* the body beyond what is kept is read and dropped */
	char big[256] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
	memset(big + strlen(big), 'b', 100);
	struct oa_http_response r;
	oa_http_response_init(&r, kept, sizeof kept);
	size_t used;
	CHECK_EQ_INT(oa_http_response_feed(&r, big, strlen(big), &used), OA_HTTP_READ_DONE);
	CHECK_EQ_INT(used, strlen(big));
	CHECK_EQ_INT(r.body_len, sizeof kept);

	/* not HTTP/1.x, or bad framing */
	static const char *const bad[] = {
	    "SSH-2.0-OpenSSH_9.2\r\n",
	    "HTTP/2 200\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	    "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		response_case(bad[i], (struct expected){.result = OA_HTTP_READ_BAD});
	/* cut short: not an answer */
	oa_http_response_init(&r, kept, sizeof kept);
	const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
	CHECK_EQ_INT(oa_http_response_feed(&r, cut, strlen(cut), &used), OA_HTTP_READ_MORE);
	CHECK(oa_http_response_started(&r));
	CHECK_EQ_INT(oa_http_response_end(&r), OA_HTTP_READ_BAD);
	oa_http_response_init(&r, kept, sizeof kept);
	CHECK(!oa_http_response_started(&r));
	CHECK_EQ_INT(oa_http_response_end(&r), OA_HTTP_READ_BAD);
}

static void test_retry_after_date(void)
{
	char text[256];
	time_t later = time(NULL) + 100;
	struct tm tm;
	strftime(text, sizeof text,
		 "HTTP/1.1 429 Slow down\r\nRetry-After: %a, %d %b %Y %H:%M:%S GMT\r\n"
		 "Content-Length: 0\r\n\r\n",
		 gmtime_r(&later, &tm));
	struct oa_http_response r;
	oa_http_response_init(&r, kept, sizeof kept);
	size_t used;
	CHECK_EQ_INT(oa_http_response_feed(&r, text, strlen(text), &used), OA_HTTP_READ_DONE);
	CHECK(r.retry_after_s >= 99 && r.retry_after_s <= 100);
	/* a date past, or not a date */
	static const char past[] =
	    "HTTP/1.1 503 x\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
	    "Content-Length: 0\r\n\r\n";
	oa_http_response_init(&r, kept, sizeof kept);
	CHECK_EQ_INT(oa_http_response_feed(&r, past, strlen(past), &used), OA_HTTP_READ_DONE);
	CHECK_EQ_INT(r.retry_after_s, 0);
	static const char junk[] =
	    "HTTP/1.1 503 x\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n";
	oa_http_response_init(&r, kept, sizeof kept);
	CHECK_EQ_INT(oa_http_response_feed(&r, junk, strlen(junk), &used), OA_HTTP_READ_DONE);
	CHECK_EQ_INT(r.retry_after_s, -1);
}

int main(void)
{
	test_urls();
	test_responses();
	test_retry_after_date();
	CHECK_DONE();
}
