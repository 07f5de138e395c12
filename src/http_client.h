/* OTLP/HTTP to a plain http:// collector without libcurl: one POST at a time
 * on one kept-alive TCP connection. libcurl brings ~30 libraries; a process
 * that maps them pays for them at every fork (0.14 ms became 0.34-0.5 ms per
 * fork here, page tables and copy-on-write of their data) and every exec
 * tears them down. https endpoints and proxies still go through libcurl.
 *
 * The URL and response parsers are pure; the client makes raw system calls
 * (our hooks never see its socket) and waits in poll() with the caller's
 * working lock released, as the libcurl transport does. */
#ifndef OTLPAUTO_HTTP_CLIENT_H
#define OTLPAUTO_HTTP_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OA_HTTP_URL_HOST_MAX 256

struct oa_http_url {
	char host[OA_HTTP_URL_HOST_MAX]; /* an IPv6 literal without its brackets */
	char port[6];			 /* decimal, "80" when the URL has none */
	const char *authority;		 /* into the URL: the Host header's value */
	size_t authority_len;
	const char *target; /* into the URL: path and query; empty means "/" */
	size_t target_len;
};

/* "http://host[:port][/path][?query][#fragment]", scheme case-insensitive.
 * False for any other scheme, userinfo, an empty or over-long host or a bad
 * port: such URLs are libcurl's. */
bool oa_http_url_parse(const char *url, struct oa_http_url *out);

/* ---- reading one response (pure: bytes in, fields out) ---- */

enum oa_http_read {
	OA_HTTP_READ_MORE, /* feed more bytes (or the end of the stream) */
	OA_HTTP_READ_DONE, /* a final response was read whole */
	OA_HTTP_READ_BAD,  /* not an HTTP/1.x response, or bad framing */
};

struct oa_http_response {
	int status;	       /* of the final response; interim 1xx are skipped */
	bool close;	       /* the server ends the connection after it */
	int64_t retry_after_s; /* Retry-After in seconds from now; -1: none */
	char *body;	       /* the first body_cap bytes of the body are kept */
	size_t body_cap, body_len;
	/* The rest is private. */
	uint8_t state;
	bool chunked, has_length, keep_alive, http10;
	uint64_t remaining; /* of a fixed body or of the current chunk */
	size_t head_bytes;
	size_t line_len;
	bool line_cut;
	char line[512];
};

void oa_http_response_init(struct oa_http_response *r, char *body, size_t body_cap);
/* Consumes bytes up to the end of the response (*used of len). */
enum oa_http_read oa_http_response_feed(struct oa_http_response *r, const char *data, size_t len,
					size_t *used);
/* The server closed the connection: DONE when the body ran to the close. */
enum oa_http_read oa_http_response_end(struct oa_http_response *r);
/* Whether any byte of a response arrived (a kept-alive connection the
 * server had closed fails before that, and is tried again). */
bool oa_http_response_started(const struct oa_http_response *r);

/* ---- the client ---- */

enum oa_http_outcome {
	OA_HTTP_ANSWERED,	/* response->status holds the answer */
	OA_HTTP_CANNOT_CONNECT, /* no address, or every connect failed */
	OA_HTTP_TIMED_OUT,	/* until_ns passed first */
	OA_HTTP_BROKEN,		/* reset, or closed before the whole response */
	OA_HTTP_BAD_REPLY,	/* not an HTTP/1.x response */
};

struct oa_http_client;

struct oa_http_client *oa_http_client_create(const struct oa_http_url *url);
/* Closes the connection. */
void oa_http_client_destroy(struct oa_http_client *c);
/* In a forked child: closes this process's copy of the connection only. */
void oa_http_client_abandon(struct oa_http_client *c);

struct oa_http_post {
	const char *head; /* the request head, blank line included */
	size_t head_len;
	const uint8_t *body;
	size_t body_len;
	uint64_t until_ns; /* CLOCK_MONOTONIC */
	/* Released while waiting on the network (see oa_transport). */
	pthread_mutex_t *released_while_waiting;
	struct oa_http_response *response; /* initialised here */
	/* Out: errno of the failure (0: none), and whether the application
	 * had taken our descriptor's number (the client reconnected). */
	int os_errno;
	bool hijacked;
};

enum oa_http_outcome oa_http_client_post(struct oa_http_client *c, struct oa_http_post *p);

#endif
