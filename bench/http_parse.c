/* The HTTP/1.x parser alone (src/http_parse.c): ns per byte and per
 * request+response pair, each message fed whole and in two pieces, as the
 * socket hooks feed it (a request parser and a response parser, the
 * response's method queued when the request begins).
 *
 *   bench_http_parse [N]    N pairs per case (default 1000000), timed in 7
 *                           rounds: the median is printed
 *
 * Cases: wrk's request and nginx's `return 200` response (what
 * bench/sockets.sh measures), and a browser-like request with a traceparent
 * against a larger response. */
#include "http_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char wrk_request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
static const char nginx_response[] = "HTTP/1.1 200 OK\r\n"
				     "Server: nginx/1.22.1\r\n"
				     "Date: Thu, 26 Nov 2026 10:30:00 GMT\r\n"
				     "Content-Type: application/octet-stream\r\n"
				     "Content-Length: 3\r\n"
				     "Connection: keep-alive\r\n"
				     "\r\n"
				     "ok\n";
static const char browser_request[] =
    "GET /api/v1/items/12345?sort=desc&limit=20 HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
    "tracestate: congo=t61rcWkgMzE\r\n"
    "\r\n";
static const char browser_response[] = "HTTP/1.1 200 OK\r\n"
				       "Server: nginx/1.22.1\r\n"
				       "Date: Thu, 26 Nov 2026 10:30:00 GMT\r\n"
				       "Content-Type: application/json\r\n"
				       "Content-Length: 16\r\n"
				       "Connection: keep-alive\r\n"
				       "Cache-Control: no-cache\r\n"
				       "Vary: Accept-Encoding\r\n"
				       "\r\n"
				       "{\"items\":[1,2]}\n";

/* CPU time: the machine is shared, time spent preempted is not the parser's. */
static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Feeds data in `pieces` pieces; returns the events seen. */
static size_t feed(struct oa_http_parser *p, const char *data, size_t len, int pieces)
{
	struct oa_http_event ev[4];
	size_t events = 0, cut = pieces == 2 ? len / 2 : len;
	for (size_t start = 0; start < len;) {
		size_t end = start < cut ? cut : len;
		for (size_t done = start;;) {
			size_t n = oa_http_feed(p, (const uint8_t *)data + done, end - done, ev, 4);
			events += n;
			if (!oa_http_feed_again(ev, n, 4, end - done))
				break;
			done += ev[n - 1].offset;
		}
		start = end;
	}
	return events;
}

/* ns per pair over n pairs. */
static double time_pairs(const char *req, const char *resp, int pieces, long n)
{
	size_t req_len = strlen(req), resp_len = strlen(resp), events = 0;
	struct oa_http_parser rq, rs;
	oa_http_parser_init(&rq, OA_HTTP_REQUESTS);
	oa_http_parser_init(&rs, OA_HTTP_RESPONSES);
	double start = now_ns();
	for (long i = 0; i < n; i++) {
		events += feed(&rq, req, req_len, pieces);
		oa_http_expect_response(&rs, OA_HTTP_GET);
		events += feed(&rs, resp, resp_len, pieces);
	}
	double ns = (now_ns() - start) / (double)n;
	if (events != (size_t)n * 4) {
		fprintf(stderr, "bench_http_parse: %zu events, not 4 per pair\n", events);
		exit(1);
	}
	return ns;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of ROUNDS timings: the machine is shared. */
#define ROUNDS 7

static void run(const char *name, const char *req, const char *resp, int pieces, long n)
{
	double ns[ROUNDS];
	for (int r = 0; r < ROUNDS; r++)
		ns[r] = time_pairs(req, resp, pieces, n / ROUNDS);
	qsort(ns, ROUNDS, sizeof ns[0], by_value);
	size_t bytes = strlen(req) + strlen(resp);
	printf("%-8s %-6s bytes=%zu ns_per_pair=%.1f ns_per_byte=%.2f\n", name,
	       pieces == 2 ? "split" : "whole", bytes, ns[ROUNDS / 2],
	       ns[ROUNDS / 2] / (double)bytes);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	for (int pieces = 1; pieces <= 2; pieces++) {
		run("wrk", wrk_request, nginx_response, pieces, n);
		run("browser", browser_request, browser_response, pieces, n);
	}
	return 0;
}
