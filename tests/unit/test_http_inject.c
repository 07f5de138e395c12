/* Injection helpers: the header lines, the layout of an application write
 * with them inserted, and the accounting of partial sends: every split of
 * the bytes sent must report exactly the application bytes among them. */
#include <string.h>

#include "check.h"
#include "http_inject.h"

static const struct oa_span_context ctx = {
    .trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
		 0x47, 0x36},
    .span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
    .flags = 1,
};

static void test_format(void)
{
	char out[OA_INJECT_MAX];
	size_t n = oa_inject_format(&ctx, NULL, 0, out);
	const char *want =
	    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";
	CHECK_EQ_INT(n, strlen(want));
	CHECK(memcmp(out, want, n) == 0);
	n = oa_inject_format(&ctx, "a=1,b=2", 7, out);
	CHECK_EQ_INT(n, strlen(want) + strlen("tracestate: a=1,b=2\r\n"));
	CHECK(memcmp(out + strlen(want), "tracestate: a=1,b=2\r\n", 21) == 0);
	/* a tracestate that does not fit is left out, never cut */
	char big[200];
	memset(big, 'x', sizeof big);
	CHECK_EQ_INT(oa_inject_format(&ctx, big, sizeof big, out), strlen(want));
}

/* Concatenates the layout's unsent pieces. */
static size_t flatten(const struct oa_layout *l, char *out)
{
	size_t n = 0;
	for (int i = l->first; i < l->n; i++) {
		memcpy(out + n, l->iov[i].iov_base, l->iov[i].iov_len);
		n += l->iov[i].iov_len;
	}
	return n;
}

static void test_layout(void)
{
	char a[] = "GET / HTTP/1.1\r\nHost: x\r\n", b[] = "\r\nGET /2 HTTP/1.1\r\n\r\n";
	struct iovec app[2] = {{a, strlen(a)}, {b, strlen(b)}};
	size_t total = strlen(a) + strlen(b);
	struct oa_insert ins[3] = {
	    {.offset = 0, .bytes = "<cont>", .len = 6},
	    {.offset = strlen(a), .bytes = "<one>", .len = 5}, /* at a piece boundary */
	    {.offset = total - 2, .bytes = "<two>", .len = 5}, /* inside the last piece */
	};
	struct oa_layout l;
	CHECK(oa_layout_build(&l, app, 2, ins, 3));
	char flat[256];
	size_t n = flatten(&l, flat);
	flat[n] = '\0';
	CHECK_EQ_STR(flat,
		     "<cont>GET / HTTP/1.1\r\nHost: x\r\n<one>\r\nGET /2 HTTP/1.1\r\n<two>\r\n");
	CHECK_EQ_INT(l.n, 6);

	/* an insert at the very end, and empty application pieces */
	struct iovec sparse[3] = {{a, 0}, {a, 4}, {b, 0}};
	struct oa_insert end = {.offset = 4, .bytes = "<end>", .len = 5};
	CHECK(oa_layout_build(&l, sparse, 3, &end, 1));
	n = flatten(&l, flat);
	flat[n] = '\0';
	CHECK_EQ_STR(flat, "GET <end>");

	/* too many pieces */
	struct iovec many[OA_LAYOUT_MAX];
	for (int i = 0; i < OA_LAYOUT_MAX; i++)
		many[i] = (struct iovec){a, 1};
	struct oa_insert mid = {.offset = 3, .bytes = "x", .len = 1};
	CHECK(!oa_layout_build(&l, many, OA_LAYOUT_MAX, &mid, 1));
	CHECK(oa_layout_build(&l, many, OA_LAYOUT_MAX - 1, &mid, 1));
}

/* For every way the kernel can split the send into two calls, the
 * application bytes reported add up, and each insert's sent count is right. */
static void test_consume_all_splits(void)
{
	char a[] = "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
	size_t app_len = strlen(a);
	size_t at = strlen("POST /x HTTP/1.1\r\nContent-Length: 3\r\n");
	struct iovec app = {a, app_len};
	const char *line = "traceparent: t\r\n";
	size_t line_len = strlen(line);
	size_t total = app_len + line_len;
	for (size_t first = 0; first <= total; first++) {
		struct oa_insert ins = {.offset = at, .bytes = line, .len = line_len};
		struct oa_layout l;
		CHECK(oa_layout_build(&l, &app, 1, &ins, 1));
		size_t got1 = oa_layout_consume(&l, first, &ins);
		size_t want1 = first <= at ? first : first < at + line_len ? at : first - line_len;
		CHECK_EQ_INT(got1, want1);
		size_t want_sent = first <= at ? 0 : first - at < line_len ? first - at : line_len;
		CHECK_EQ_INT(ins.sent, want_sent);
		size_t got2 = oa_layout_consume(&l, total - first, &ins);
		CHECK_EQ_INT(got1 + got2, app_len);
		CHECK_EQ_INT(ins.sent, line_len);
		CHECK_EQ_INT(l.first, l.n);
	}
}

static void test_rewrite(void)
{
	char out[OA_TRACEPARENT_LEN + 1];
	struct oa_span_context received = ctx,
			       client = {
				   .trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
						0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
				   .span_id = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
				   .flags = 1,
			       };
	oa_traceparent_rewrite(&received, &client, out);
	CHECK_EQ_STR(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01");
	/* the sampled bit is the CLIENT span's, the others the received ones */
	received.flags = 0x03;
	client.flags = 0;
	oa_traceparent_rewrite(&received, &client, out);
	CHECK_EQ_STR(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-02");
	received.flags = 0x80;
	client.flags = 1;
	client.trace_id[15] = 0x37;
	oa_traceparent_rewrite(&received, &client, out);
	CHECK_EQ_STR(out, "00-4bf92f3577b34da6a3ce929d0e0e4737-b7ad6b7169203331-81");
}

/* A replacing insert, the application's bytes in two pieces cut at every
 * point, the kernel's send cut at every point: the bytes laid out are the
 * rewritten head, and every byte that goes out counts as the
 * application's, except the inserted (not replacing) ones before it. */
static void test_replace_all_splits(void)
{
	static const char head[] = "GET / HTTP/1.1\r\ntraceparent: 00-aaaa-bbbb-01\r\n\r\n";
	static const char want[] = "<c>GET / HTTP/1.1\r\ntraceparent: 00-aaaa-cccc-01\r\n\r\n";
	size_t len = strlen(head), at = strlen("GET / HTTP/1.1\r\ntraceparent: 00-aaaa-");
	for (size_t cut = 0; cut <= len; cut++) {
		struct iovec app[2] = {{(char *)head, cut}, {(char *)head + cut, len - cut}};
		for (size_t first = 0; first <= len + 3; first++) {
			struct oa_insert ins[2] = {
			    {.offset = 0, .bytes = "<c>", .len = 3},
			    {.offset = at, .bytes = "cccc", .len = 4, .replaces = 4},
			};
			struct oa_layout l;
			CHECK(oa_layout_build(&l, app, 2, ins, 2));
			char flat[128];
			size_t n = flatten(&l, flat);
			CHECK(n == strlen(want) && memcmp(flat, want, n) == 0);
			size_t got1 = oa_layout_consume(&l, first, ins);
			CHECK_EQ_INT(got1, first < 3 ? 0 : first - 3);
			CHECK_EQ_INT(ins[1].sent, first <= at + 3      ? 0
						  : first - at - 3 < 4 ? first - at - 3
								       : 4);
			size_t got2 = oa_layout_consume(&l, len + 3 - first, ins);
			CHECK_EQ_INT(got1 + got2, len);
			CHECK_EQ_INT(l.first, l.n);
		}
	}
	/* a replacement over a piece boundary and over the last bytes */
	struct iovec app[3] = {{(char *)head, 3}, {(char *)head + 3, 0}, {(char *)head + 3, 4}};
	struct oa_insert end = {.offset = 2, .bytes = "xxxxx", .len = 5, .replaces = 5};
	struct oa_layout l;
	CHECK(oa_layout_build(&l, app, 3, &end, 1));
	char flat[16];
	size_t n = flatten(&l, flat);
	flat[n] = '\0';
	CHECK_EQ_STR(flat, "GExxxxx");
}

/* host splits into name and port (0: none). */
static void check_split(const char *host, const char *name, uint16_t port)
{
	struct oa_host_port hp;
	CHECK(oa_split_host_port(host, strlen(host), &hp));
	CHECK_EQ_INT(hp.name_len, strlen(name));
	CHECK(memcmp(hp.name, name, hp.name_len) == 0);
	CHECK_EQ_INT(hp.port, port);
}

static bool splits(const char *host)
{
	struct oa_host_port hp;
	return oa_split_host_port(host, strlen(host), &hp);
}

static void test_split_host_port(void)
{
	check_split("example.com", "example.com", 0);
	check_split("example.com:8080", "example.com", 8080);
	check_split("[::1]:443", "::1", 443);
	check_split("[::1]", "::1", 0);
	check_split("::1", "::1", 0); /* bare IPv6: no port */
	check_split("h:99999", "h", 0);
	check_split("h:8x", "h", 0);
	check_split("h:", "h", 0);
	CHECK(!splits(""));
	CHECK(!splits(":80"));
	CHECK(!splits("[::1"));
	CHECK(!splits("[]:80"));
	/* only the given length counts */
	struct oa_host_port hp;
	CHECK(oa_split_host_port("a.example:81xyz", 12, &hp));
	CHECK_EQ_INT(hp.name_len, 9);
	CHECK(memcmp(hp.name, "a.example", 9) == 0);
	CHECK_EQ_INT(hp.port, 81);
}

int main(void)
{
	test_format();
	test_layout();
	test_consume_all_splits();
	test_rewrite();
	test_replace_all_splits();
	test_split_host_port();
	CHECK_DONE();
}
