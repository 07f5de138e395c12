/* The transport against a scripted HTTP/1.1 responder on 127.0.0.1 (a thread
 * of this test), the fd guard's bitmaps, and how libcurl is loaded (in forked
 * children, before this process loads it). */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if OA_FEATURE_GZIP
#include <zlib.h>
#endif

#include "check.h"
#include "fdguard.h"
#include "log.h"
#include "trace_service.pb-c.h"
#include "transport.h"

#define MS 1000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- captured log lines (warnings only: the threshold stays at info) ---- */

#define MAX_LINES 64
static char log_lines[MAX_LINES][1024];
static int n_log_lines;

static void capture_line(const char *line)
{
	if (n_log_lines < MAX_LINES)
		snprintf(log_lines[n_log_lines++], sizeof log_lines[0], "%s", line);
}

static int lines_containing(const char *needle)
{
	int count = 0;
	for (int i = 0; i < n_log_lines; i++)
		count += strstr(log_lines[i], needle) != NULL;
	return count;
}

/* ---- the responder ---- */

enum action {
	RESPOND,
	STALL,	 /* never answer; wait for the client to give up */
	RESET,	 /* half a response, then RST */
	HANG_UP, /* close without a response */
};

struct reply {
	enum action action;
	int status;
	const char *headers; /* extra header lines, each ending in \r\n */
	const void *body;
	size_t body_len;
};

struct request {
	char head[4096];
	uint8_t *body; /* gunzipped when Content-Encoding: gzip */
	size_t body_len;
	int connection; /* 1-based index of the TCP connection it came on */
};

#define MAX_REQUESTS 16

struct server {
	int listen_fd;
	int port;
	pthread_t thread;
	int stop;
	const struct reply *replies; /* the last one repeats */
	size_t n_replies;
	struct request requests[MAX_REQUESTS];
	size_t n_requests;
	int connections;
};

/* Waits for fd to be readable; false once the test stops the server. */
static bool wait_readable(struct server *s, int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
		if (poll(&p, 1, 20) > 0)
			return true;
	return false;
}

static ssize_t read_some(struct server *s, int fd, void *buf, size_t len)
{
	return wait_readable(s, fd) ? read(fd, buf, len) : -1;
}

static void write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static size_t header_number(const char *head, const char *name)
{
	const char *p = strcasestr(head, name);
	return p ? strtoul(p + strlen(name), NULL, 10) : 0;
}

#if OA_FEATURE_GZIP
static void gunzip(struct request *r)
{
	size_t cap = 16 << 20;
	uint8_t *out = malloc(cap);
	z_stream z = {.next_in = r->body,
		      .avail_in = (uInt)r->body_len,
		      .next_out = out,
		      .avail_out = (uInt)cap};
	CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
	CHECK_EQ_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
	inflateEnd(&z);
	free(r->body);
	r->body = out;
	r->body_len = cap - z.avail_out;
}
#endif

/* Reads one request into s->requests; false at EOF or stop. */
static bool read_request(struct server *s, int fd, struct request *r)
{
	size_t got = 0;
	char *end = NULL;
	while (!end) {
		ssize_t n = read_some(s, fd, r->head + got, sizeof r->head - 1 - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
		r->head[got] = '\0';
		end = strstr(r->head, "\r\n\r\n");
	}
	size_t head_len = (size_t)(end + 4 - r->head);
	r->body_len = header_number(r->head, "\r\nContent-Length:");
	r->body = malloc(r->body_len + 1);
	size_t have = got - head_len;
	memcpy(r->body, r->head + head_len, have);
	r->head[head_len] = '\0';
	while (have < r->body_len) {
		ssize_t n = read_some(s, fd, r->body + have, r->body_len - have);
		if (n <= 0)
			return false;
		have += (size_t)n;
	}
#if OA_FEATURE_GZIP
	if (strcasestr(r->head, "\r\nContent-Encoding: gzip\r\n"))
		gunzip(r);
#endif
	return true;
}

/* Answers requests on one connection; false when the connection must end. */
static bool serve_one(struct server *s, int fd)
{
	if (s->n_requests == MAX_REQUESTS)
		return false;
	struct request *r = &s->requests[s->n_requests];
	memset(r, 0, sizeof *r);
	if (!read_request(s, fd, r)) {
		free(r->body);
		return false;
	}
	r->connection = s->connections;
	size_t index = s->n_requests < s->n_replies ? s->n_requests : s->n_replies - 1;
	const struct reply *reply = &s->replies[index];
	s->n_requests++;
	char head[1024];
	switch (reply->action) {
	case STALL:
		while (read_some(s, fd, head, sizeof head) > 0)
			;
		return false;
	case RESET: {
		const char partial[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
		write_all(fd, partial, sizeof partial - 1);
		struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
		return false;
	}
	case HANG_UP:
		return false;
	case RESPOND:
		break;
	}
	int n = snprintf(head, sizeof head, "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n%s\r\n",
			 reply->status, reply->body_len, reply->headers ? reply->headers : "");
	write_all(fd, head, (size_t)n);
	write_all(fd, reply->body, reply->body_len);
	return true;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	while (wait_readable(s, s->listen_fd)) {
		int fd = accept(s->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		s->connections++;
		while (serve_one(s, fd))
			;
		close(fd);
	}
	return NULL;
}

static int listen_on_ephemeral_port(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
	CHECK(listen(fd, 8) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
	*port = ntohs(addr.sin_port);
	return fd;
}

static void server_start(struct server *s, const struct reply *replies, size_t n_replies)
{
	memset(s, 0, sizeof *s);
	s->replies = replies;
	s->n_replies = n_replies;
	s->listen_fd = listen_on_ephemeral_port(&s->port);
	pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
}

static void server_free(struct server *s)
{
	for (size_t i = 0; i < s->n_requests; i++)
		free(s->requests[i].body);
}

/* ---- transports ---- */

static char endpoint[128];
static struct oa_config cfg;

static void configure(int port, enum oa_protocol protocol)
{
	memset(&cfg, 0, sizeof cfg);
	snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/v1/traces", port);
	cfg.endpoint = endpoint;
	cfg.otlp_timeout_ms = 10000;
	cfg.protocol = protocol;
}

static const uint8_t request_body[] = "\x0a\x03span";

static enum oa_send_result send_once(struct oa_transport *t, uint64_t deadline_ms,
				     uint64_t *rejected)
{
	return oa_transport_send(t, request_body, sizeof request_body - 1,
				 now_ns() + deadline_ms * MS, rejected);
}

/* Runs one transport against one script: the result, the time it took. */
static enum oa_send_result exchange(struct server *s, const struct reply *replies, size_t n,
				    uint64_t deadline_ms, uint64_t *rejected, uint64_t *elapsed_ms)
{
	server_start(s, replies, n);
	configure(s->port, OA_PROTOCOL_PROTOBUF);
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t start = now_ns();
	enum oa_send_result result = send_once(t, deadline_ms, rejected);
	*elapsed_ms = (now_ns() - start) / MS;
	oa_transport_destroy(t);
	server_stop(s);
	return result;
}

/* ---- tests ---- */

static void test_fdguard(void)
{
	CHECK_EQ_INT(oa_fd_next_protected(0), -1);
	oa_fd_protect(5);
	CHECK(oa_fd_is_protected(5));
	CHECK(!oa_fd_is_protected(4));
	CHECK(!oa_fd_is_protected(6));
	CHECK_EQ_INT(oa_fd_next_protected(0), 5);
	CHECK_EQ_INT(oa_fd_next_protected(5), 5);
	CHECK_EQ_INT(oa_fd_next_protected(6), -1);

	oa_fd_protect(-1);
	oa_fd_protect(OA_FD_GUARD_LIMIT);
	CHECK(!oa_fd_is_protected(-1));
	CHECK(!oa_fd_is_protected(OA_FD_GUARD_LIMIT));
	oa_fd_protect(OA_FD_GUARD_LIMIT - 1);
	CHECK(oa_fd_is_protected(OA_FD_GUARD_LIMIT - 1));
	CHECK_EQ_INT(oa_fd_next_protected(6), OA_FD_GUARD_LIMIT - 1);
	CHECK_EQ_INT(oa_fd_next_protected(OA_FD_GUARD_LIMIT), -1);
	oa_fd_protect(64);
	CHECK_EQ_INT(oa_fd_next_protected(6), 64);
	oa_fd_unprotect(64);
	oa_fd_unprotect(OA_FD_GUARD_LIMIT - 1);
	oa_fd_unprotect(5);
	CHECK(!oa_fd_is_protected(5));
	CHECK_EQ_INT(oa_fd_next_protected(0), -1);

	oa_fd_mark_hijacked(7);
	CHECK(oa_fd_take_hijacked(7));
	CHECK(!oa_fd_take_hijacked(7));
	oa_fd_mark_hijacked(7);
	oa_fd_protect(7); /* a new owner: the old mark is void */
	CHECK(!oa_fd_take_hijacked(7));
	oa_fd_unprotect(7);
	oa_fd_mark_hijacked(-1);
	CHECK(!oa_fd_take_hijacked(-1));
	CHECK(!oa_fd_take_hijacked(OA_FD_GUARD_LIMIT));
}

static void test_empty_success(void)
{
	struct server s;
	const struct reply ok = {RESPOND, 200, NULL, NULL, 0};
	uint64_t rejected = 99, elapsed;
	CHECK_EQ_INT(exchange(&s, &ok, 1, 2000, &rejected, &elapsed), OA_SEND_OK);
	CHECK_EQ_INT(rejected, 0);
	CHECK_EQ_INT(s.n_requests, 1);
	CHECK(strncmp(s.requests[0].head, "POST /v1/traces HTTP/1.1\r\n", 26) == 0);
	CHECK_EQ_INT(s.requests[0].body_len, sizeof request_body - 1);
	CHECK(memcmp(s.requests[0].body, request_body, sizeof request_body - 1) == 0);
	server_free(&s);
}

/* An endpoint without a path (or with a query only) asks for "/". */
static void test_target_forms(void)
{
	const struct reply ok = {RESPOND, 200, NULL, NULL, 0};
	struct server s;
	server_start(&s, &ok, 1);
	configure(s.port, OA_PROTOCOL_PROTOBUF);
	const char *forms[] = {"", "?tenant=a"};
	uint64_t rejected;
	for (size_t i = 0; i < 2; i++) {
		snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d%s", s.port, forms[i]);
		struct oa_transport *t = oa_transport_create(&cfg);
		CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
		oa_transport_destroy(t);
	}
	server_stop(&s);
	CHECK_EQ_INT(s.n_requests, 2);
	CHECK(strncmp(s.requests[0].head, "POST / HTTP/1.1\r\n", 17) == 0);
	CHECK(strncmp(s.requests[1].head, "POST /?tenant=a HTTP/1.1\r\n", 26) == 0);
	server_free(&s);
}

/* Headers, keep-alive, and our socket: high, close-on-exec, protected. */
static void test_headers_and_keepalive(void)
{
	struct server s;
	const struct reply ok = {RESPOND, 200, NULL, NULL, 0};
	server_start(&s, &ok, 1);
	configure(s.port, OA_PROTOCOL_PROTOBUF);
	struct oa_kv headers[] = {
	    {"api-key", "s3cr3t"},
	    {"x-empty", ""},
	    {"x-split", "a\r\nInjected: yes"},
	    {"host", "collector.example"},
	};
	cfg.headers.items = headers;
	cfg.headers.n = 4;
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t rejected;
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);

	struct rlimit limit;
	getrlimit(RLIMIT_NOFILE, &limit);
	int top = limit.rlim_cur < 1024 ? (int)limit.rlim_cur : 1024;
	int ours = oa_fd_next_protected(0);
	CHECK(ours >= top - 64 && ours < top);
	CHECK(fcntl(ours, F_GETFD) == FD_CLOEXEC);
	oa_transport_destroy(t);
	CHECK_EQ_INT(oa_fd_next_protected(0), -1);
	CHECK(fcntl(ours, F_GETFD) == -1 && errno == EBADF);
	server_stop(&s);

	CHECK_EQ_INT(s.n_requests, 3);
	CHECK_EQ_INT(s.connections, 1);
	CHECK_EQ_INT(s.requests[2].connection, 1);
	const char *head = s.requests[0].head;
	CHECK(strstr(head, "\r\napi-key: s3cr3t\r\n") != NULL);
	CHECK(strstr(head, "\r\nx-empty:\r\n") != NULL);
	CHECK(strstr(head, "Injected") == NULL);
	/* a configured Host replaces ours */
	CHECK(strcasestr(head, "\r\nhost: collector.example\r\n") != NULL);
	CHECK(strstr(head, "\r\nHost: 127.0.0.1") == NULL);
	CHECK(strstr(head, "\r\nContent-Type: application/x-protobuf\r\n") != NULL);
	CHECK(strstr(head, "\r\nUser-Agent: OTel-OTLP-Exporter-C/otlpauto-" OTLPAUTO_VERSION
			   "\r\n") != NULL);
	CHECK(strstr(head, "Expect") == NULL);
	CHECK(strstr(head, "Content-Encoding") == NULL);
	CHECK_EQ_INT(lines_containing("skipping OTLP header \"x-split\""), 1);
	server_free(&s);
}

static void test_partial_success_protobuf(void)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess partial =
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	partial.rejected_spans = 3;
	partial.error_message = "bad\nspan";
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse response =
	    OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	response.partial_success = &partial;
	uint8_t packed[64];
	size_t packed_len =
	    opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(
		&response, packed);
	const struct reply replies[] = {{RESPOND, 200, NULL, packed, packed_len}};

	struct server s;
	uint64_t rejected, elapsed;
	for (int round = 0; round < 2; round++) {
		CHECK_EQ_INT(exchange(&s, replies, 1, 2000, &rejected, &elapsed), OA_SEND_OK);
		CHECK_EQ_INT(rejected, 3);
		server_free(&s);
	}
	/* one warning per process, not one per batch */
	CHECK_EQ_INT(lines_containing("rejected 3 spans: bad?span"), 1);
	CHECK_EQ_INT(lines_containing("http://127.0.0.1:"), 1);
}

static void test_partial_success_json(void)
{
	static const char as_string[] =
	    "{\"partialSuccess\": {\"rejectedSpans\": \"2\", \"errorMessage\": \"x\\\"y\"}}";
	static const char as_number[] = "{\"partialSuccess\":{\"rejectedSpans\":7}}";
	static const char none[] = "{\"partialSuccess\":{}}";
	const struct reply replies[] = {
	    {RESPOND, 200, NULL, as_string, sizeof as_string - 1},
	    {RESPOND, 200, NULL, as_number, sizeof as_number - 1},
	    {RESPOND, 200, NULL, none, sizeof none - 1},
	};
	struct server s;
	server_start(&s, replies, 3);
	configure(s.port, OA_PROTOCOL_JSON);
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t rejected;
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
	CHECK_EQ_INT(rejected, 2);
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
	CHECK_EQ_INT(rejected, 7);
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
	CHECK_EQ_INT(rejected, 0);
	oa_transport_destroy(t);
	server_stop(&s);
	CHECK(strstr(s.requests[0].head, "\r\nContent-Type: application/json\r\n") != NULL);
	server_free(&s);
}

static void test_retry_after_seconds(void)
{
	const struct reply replies[] = {
	    {RESPOND, 503, "Retry-After: 1\r\n", NULL, 0},
	    {RESPOND, 503, "Retry-After: 1\r\n", NULL, 0},
	    {RESPOND, 200, NULL, NULL, 0},
	};
	struct server s;
	uint64_t rejected, elapsed;
	CHECK_EQ_INT(exchange(&s, replies, 3, 5000, &rejected, &elapsed), OA_SEND_OK);
	CHECK_EQ_INT(s.n_requests, 3);
	CHECK(elapsed >= 1900 && elapsed <= 2500);
	server_free(&s);
}

static void test_retry_after_date(void)
{
	char header[128];
	time_t later = time(NULL) + 2;
	struct tm tm;
	strftime(header, sizeof header, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
		 gmtime_r(&later, &tm));
	const struct reply replies[] = {
	    {RESPOND, 503, header, NULL, 0},
	    {RESPOND, 200, NULL, NULL, 0},
	};
	struct server s;
	uint64_t rejected, elapsed;
	CHECK_EQ_INT(exchange(&s, replies, 2, 5000, &rejected, &elapsed), OA_SEND_OK);
	CHECK_EQ_INT(s.n_requests, 2);
	/* whole seconds: 2 s from a clock that may tick right after */
	CHECK(elapsed >= 900 && elapsed <= 2500);
	server_free(&s);
}

static void test_retry_after_beyond_deadline(void)
{
	const struct reply replies[] = {{RESPOND, 503, "Retry-After: 30\r\n", NULL, 0}};
	struct server s;
	uint64_t rejected, elapsed;
	CHECK_EQ_INT(exchange(&s, replies, 1, 2000, &rejected, &elapsed), OA_SEND_GAVE_UP);
	CHECK_EQ_INT(s.n_requests, 1);
	CHECK(elapsed < 300);
	server_free(&s);
}

static void test_too_many_requests(void)
{
	const struct reply replies[] = {
	    {RESPOND, 429, NULL, NULL, 0},
	    {RESPOND, 502, NULL, NULL, 0},
	    {RESPOND, 504, NULL, NULL, 0},
	    {RESPOND, 200, NULL, NULL, 0},
	};
	struct server s;
	uint64_t rejected, elapsed;
	CHECK_EQ_INT(exchange(&s, replies, 4, 5000, &rejected, &elapsed), OA_SEND_OK);
	CHECK_EQ_INT(s.n_requests, 4);
	/* full jitter: at most 100 + 200 + 400 ms of waiting */
	CHECK(elapsed <= 900);
	server_free(&s);
}

static void test_refused(void)
{
	static const char why[] = "no\ttraces\nhere";
	const struct reply replies[] = {{RESPOND, 400, NULL, why, sizeof why - 1}};
	struct server s;
	server_start(&s, replies, 1);
	configure(s.port, OA_PROTOCOL_PROTOBUF);
	snprintf(endpoint, sizeof endpoint, "http://user:secretpw@127.0.0.1:%d/v1/traces?k=v",
		 s.port);
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t rejected;
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_REFUSED);
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_REFUSED);
	oa_transport_destroy(t);
	server_stop(&s);
	CHECK_EQ_INT(s.n_requests, 2);
	char expected[160];
	snprintf(
	    expected, sizeof expected,
	    "otlpauto: http://127.0.0.1:%d/v1/traces refused the spans: HTTP 400 no?traces?here",
	    s.port);
	CHECK_EQ_INT(lines_containing(expected), 1);
	CHECK_EQ_INT(lines_containing("refused the spans"), 1);
	server_free(&s);
}

static int unused_port(void)
{
	int port;
	close(listen_on_ephemeral_port(&port));
	return port;
}

static void test_connection_refused(void)
{
	configure(unused_port(), OA_PROTOCOL_PROTOBUF);
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t rejected, start = now_ns();
	CHECK_EQ_INT(send_once(t, 1000, &rejected), OA_SEND_GAVE_UP);
	uint64_t elapsed = (now_ns() - start) / MS;
	CHECK(elapsed <= 1300);
	CHECK_EQ_INT(send_once(t, 200, &rejected), OA_SEND_GAVE_UP);
	oa_transport_destroy(t);
	CHECK_EQ_INT(lines_containing("gave up sending spans"), 1);
	CHECK_EQ_INT(lines_containing("Connection refused"), 1);
}

static void test_stall(void)
{
	const struct reply stall = {STALL, 0, NULL, NULL, 0};
	struct server s;
	uint64_t rejected, elapsed;
	/* one attempt, cut by the deadline */
	CHECK_EQ_INT(exchange(&s, &stall, 1, 1000, &rejected, &elapsed), OA_SEND_GAVE_UP);
	CHECK(elapsed >= 900 && elapsed <= 1300);
	CHECK_EQ_INT(s.n_requests, 1);
	server_free(&s);

	/* attempts cut by the OTLP timeout, retried until the deadline */
	server_start(&s, &stall, 1);
	configure(s.port, OA_PROTOCOL_PROTOBUF);
	cfg.otlp_timeout_ms = 300;
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t start = now_ns();
	CHECK_EQ_INT(send_once(t, 1000, &rejected), OA_SEND_GAVE_UP);
	elapsed = (now_ns() - start) / MS;
	oa_transport_destroy(t);
	server_stop(&s);
	CHECK(elapsed <= 1300);
	CHECK(s.n_requests >= 2);
	server_free(&s);
}

/* What a fork's prepare handler does while the exporter sends: it waits at
 * most 50 ms for the exporter's working lock. The transport gives the lock
 * up while it waits on the network (a collector that never answers) or
 * backs off (one that refuses), and has it back when it returns. */
struct lock_probe {
	pthread_mutex_t *lock;
	bool stop; /* atomic */
	int taken, missed;
};

static void *probe_lock(void *arg)
{
	struct lock_probe *p = arg;
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		/* as the exporter's prepare handler: tries, 100 µs apart */
		struct timespec step = {0, 100000}, pause = {0, 10 * (long)MS};
		int tries = 0;
		while (pthread_mutex_trylock(p->lock) != 0 && ++tries < 500)
			nanosleep(&step, NULL);
		if (tries < 500) {
			p->taken++;
			pthread_mutex_unlock(p->lock);
		} else {
			p->missed++;
		}
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static void test_waits_release_lock(void)
{
	const struct reply stall = {STALL, 0, NULL, NULL, 0};
	struct server s;
	server_start(&s, &stall, 1);
	int ports[] = {s.port, unused_port()};
	for (size_t i = 0; i < 2; i++) {
		pthread_mutex_t working = PTHREAD_MUTEX_INITIALIZER;
		pthread_mutex_lock(&working);
		configure(ports[i], OA_PROTOCOL_PROTOBUF);
		struct oa_transport *t = oa_transport_create(&cfg);
		oa_transport_release_while_waiting(t, &working);
		struct lock_probe probe = {.lock = &working};
		pthread_t prober;
		pthread_create(&prober, NULL, probe_lock, &probe);
		uint64_t rejected;
		CHECK_EQ_INT(send_once(t, 1000, &rejected), OA_SEND_GAVE_UP);
		__atomic_store_n(&probe.stop, true, __ATOMIC_RELEASE);
		pthread_join(prober, NULL);
		/* a miss: the transport held it 50 ms at once (or this thread
		 * was preempted that long, rarely) */
		CHECK(probe.taken >= 10 && probe.missed * 10 <= probe.taken);
		CHECK_EQ_INT(pthread_mutex_trylock(&working), EBUSY); /* ours again */
		pthread_mutex_unlock(&working);
		oa_transport_destroy(t);
	}
	server_stop(&s);
	server_free(&s);
}

static void test_reset_and_empty_reply(void)
{
	const struct reply replies[] = {
	    {RESET, 0, NULL, NULL, 0},
	    {HANG_UP, 0, NULL, NULL, 0},
	    {RESPOND, 200, NULL, NULL, 0},
	};
	struct server s;
	uint64_t rejected, elapsed;
	CHECK_EQ_INT(exchange(&s, replies, 3, 3000, &rejected, &elapsed), OA_SEND_OK);
	CHECK_EQ_INT(s.n_requests, 3);
	CHECK_EQ_INT(s.connections, 3);
	server_free(&s);
}

#if OA_FEATURE_GZIP
static void test_gzip(void)
{
	const struct reply ok = {RESPOND, 200, NULL, NULL, 0};
	struct server s;
	server_start(&s, &ok, 1);
	configure(s.port, OA_PROTOCOL_PROTOBUF);
	cfg.gzip = true;
	struct oa_transport *t = oa_transport_create(&cfg);
	size_t len = 300000;
	uint8_t *body = malloc(len);
	for (size_t i = 0; i < len; i++)
		body[i] = (uint8_t)(i * 7 / 1000);
	uint64_t rejected;
	for (int i = 0; i < 2; i++)
		CHECK_EQ_INT(oa_transport_send(t, body, len, now_ns() + 2000 * MS, &rejected),
			     OA_SEND_OK);
	oa_transport_destroy(t);
	server_stop(&s);
	CHECK_EQ_INT(s.n_requests, 2);
	for (size_t i = 0; i < s.n_requests; i++) {
		CHECK(strstr(s.requests[i].head, "\r\nContent-Encoding: gzip\r\n") != NULL);
		CHECK(header_number(s.requests[i].head, "\r\nContent-Length:") < len / 10);
		CHECK_EQ_INT(s.requests[i].body_len, len);
		CHECK(memcmp(s.requests[i].body, body, len) == 0);
	}
	free(body);
	server_free(&s);
}
#endif

static void test_too_large(void)
{
	configure(unused_port(), OA_PROTOCOL_PROTOBUF);
	struct oa_transport *t = oa_transport_create(&cfg);
	size_t len = (64u << 20) + 1;
	uint8_t *body = malloc(len); /* never read: stays unbacked */
	uint64_t rejected = 5, start = now_ns();
	CHECK_EQ_INT(oa_transport_send(t, body, len, now_ns() + 1000 * MS, &rejected),
		     OA_SEND_TOO_LARGE);
	CHECK_EQ_INT(rejected, 0);
	CHECK((now_ns() - start) / MS < 50);
	free(body);
	oa_transport_destroy(t);
}

/* What hooks/fds.c does on dup2 onto our socket: the transport must reconnect
 * and leave the number, now the application's, open. */
static void test_hijacked_socket(void)
{
	const struct reply ok = {RESPOND, 200, NULL, NULL, 0};
	struct server s;
	server_start(&s, &ok, 1);
	configure(s.port, OA_PROTOCOL_PROTOBUF);
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t rejected;
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
	int ours = oa_fd_next_protected(0);
	CHECK(ours >= 0);
	int app_file = open("/dev/null", O_RDONLY | O_CLOEXEC);
	oa_fd_mark_hijacked(ours);
	oa_fd_unprotect(ours);
	CHECK_EQ_INT(dup2(app_file, ours), ours);
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
	int reconnected = oa_fd_next_protected(0);
	CHECK(reconnected >= 0 && reconnected != ours);
	oa_transport_destroy(t);
	server_stop(&s);
	CHECK_EQ_INT(s.connections, 2);
	struct stat kept, dev_null;
	CHECK(fstat(ours, &kept) == 0 && fstat(app_file, &dev_null) == 0);
	CHECK(kept.st_rdev == dev_null.st_rdev && S_ISCHR(kept.st_mode));
	CHECK_EQ_INT(lines_containing("replaced the descriptor of our connection"), 1);
	CHECK_EQ_INT(oa_fd_next_protected(0), -1);
	close(ours);
	close(app_file);
	server_free(&s);
}

/* A forked child drops its copies; the parent's connection lives on. */
static void test_abandon_in_child(void)
{
	const struct reply ok = {RESPOND, 200, NULL, NULL, 0};
	struct server s;
	server_start(&s, &ok, 1);
	configure(s.port, OA_PROTOCOL_PROTOBUF);
	struct oa_transport *t = oa_transport_create(&cfg);
	uint64_t rejected;
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
	int ours = oa_fd_next_protected(0);
	pid_t child = fork();
	if (child == 0) {
		oa_transport_abandon(t);
		bool closed = fcntl(ours, F_GETFD) == -1 && errno == EBADF;
		_exit(closed && !oa_fd_is_protected(ours) ? 0 : 1);
	}
	int status = -1;
	CHECK_EQ_INT(waitpid(child, &status, 0), child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(oa_fd_is_protected(ours));
	CHECK_EQ_INT(send_once(t, 2000, &rejected), OA_SEND_OK);
	oa_transport_destroy(t);
	server_stop(&s);
	CHECK_EQ_INT(s.n_requests, 2);
	CHECK_EQ_INT(s.connections, 1);
	server_free(&s);
}

/* ---- loading libcurl: each case in a child that has not loaded it yet ---- */

static bool libcurl_mapped(void)
{
	void *lib = dlopen(oa_transport_libcurl, RTLD_LAZY | RTLD_NOLOAD);
	if (lib)
		dlclose(lib);
	return lib != NULL;
}

static void in_child(void (*test)(void))
{
	pid_t child = fork();
	if (child == 0) {
		n_log_lines = 0;
		check_passed = check_failed = 0;
		test();
		_exit(check_failed ? 1 : 0);
	}
	int status = -1;
	CHECK_EQ_INT(waitpid(child, &status, 0), child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Fails open: no transport, one warning however often it is asked. */
static void missing_libcurl(void)
{
	oa_transport_builtin_http = false;
	oa_transport_libcurl = "libotlpauto-test-no-such-curl.so.4";
	configure(unused_port(), OA_PROTOCOL_PROTOBUF);
	CHECK(oa_transport_create(&cfg) == NULL);
	CHECK(oa_transport_create(&cfg) == NULL);
	CHECK_EQ_INT(n_log_lines, 1);
	CHECK_EQ_INT(lines_containing("cannot load libotlpauto-test-no-such-curl.so.4"), 1);
}

/* What an exit does when the application used OpenSSL: its atexit cleanup
 * runs before our final flush. libcurl initialised then would crash. */
static void openssl_shut_down(void)
{
	void *lib = dlopen(oa_transport_libcurl, RTLD_NOW | RTLD_LOCAL);
	int (*init_crypto)(uint64_t, const void *) = lib ? dlsym(lib, "OPENSSL_init_crypto") : NULL;
	void (*cleanup)(void) = lib ? dlsym(lib, "OPENSSL_cleanup") : NULL;
	if (!init_crypto || !cleanup) {
		printf("skipped: %s does not use OpenSSL\n", oa_transport_libcurl);
		return;
	}
	CHECK(init_crypto(0x2 /* OPENSSL_INIT_LOAD_CRYPTO_STRINGS */, NULL));
	cleanup();
	oa_transport_builtin_http = false;
	configure(unused_port(), OA_PROTOCOL_PROTOBUF);
	CHECK(oa_transport_create(&cfg) == NULL);
	CHECK(oa_transport_create(&cfg) == NULL);
	CHECK_EQ_INT(n_log_lines, 1);
	CHECK_EQ_INT(lines_containing("OpenSSL is already shut down"), 1);
}

/* Nothing is loaded before a transport is needed, unless OpenSSL is there. */
static void load_early(void)
{
	oa_transport_builtin_http = false;
	CHECK(!libcurl_mapped());
	oa_transport_load_early();
	CHECK(!libcurl_mapped());
	void *crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!crypto) {
		printf("skipped: no libcrypto.so.3\n");
		return;
	}
	oa_transport_load_early();
	CHECK(libcurl_mapped());
	CHECK_EQ_INT(n_log_lines, 0);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static void *load_in_thread(void *loaded)
{
	*(bool *)loaded = oa_transport_load();
	return NULL;
}

/* Forks while another thread loads libcurl (the exporter, in the shim): each
 * child finds it loaded wholly or not at all, never halfway. */
static void fork_during_load(void)
{
	oa_transport_builtin_http = false;
	pthread_atfork(oa_transport_atfork_prepare, oa_transport_atfork_parent,
		       oa_transport_atfork_child);
	bool loaded = false;
	pthread_t loader;
	pthread_create(&loader, NULL, load_in_thread, &loaded);
	pid_t children[20];
	for (int i = 0; i < 20; i++) {
		children[i] = fork();
		if (children[i] == 0) {
			alarm(10); /* a child stuck on an inherited lock fails */
			configure(unused_port(), OA_PROTOCOL_PROTOBUF);
			_exit(oa_transport_create(&cfg) ? 0 : 1);
		}
	}
	int children_ok = 0;
	for (int i = 0; i < 20; i++) {
		int status = -1;
		waitpid(children[i], &status, 0);
		children_ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	pthread_join(loader, NULL);
	CHECK(loaded);
	CHECK_EQ_INT(children_ok, 20);
}
#endif

/* The cases against the responder, with whichever client serves http://. */
static void exchange_cases(void)
{
	test_empty_success();
	test_target_forms();
	test_headers_and_keepalive();
	test_partial_success_protobuf();
	test_partial_success_json();
	test_connection_refused();
	test_retry_after_seconds();
	test_retry_after_date();
	test_retry_after_beyond_deadline();
	test_too_many_requests();
	test_stall();
	test_waits_release_lock();
	test_reset_and_empty_reply();
#if OA_FEATURE_GZIP
	test_gzip();
#endif
	test_too_large();
	test_hijacked_socket();
	test_abandon_in_child();
	/* The built-in client never needs libcurl; userinfo does. */
	CHECK(libcurl_mapped() == !oa_transport_builtin_http);
	test_refused();
	CHECK(libcurl_mapped());

	CHECK_EQ_INT(lines_containing("s3cr3t"), 0);
	CHECK_EQ_INT(lines_containing("secretpw"), 0);
	CHECK_EQ_INT(lines_containing("k=v"), 0);
	for (int i = 0; i < n_log_lines; i++)
		printf("logged: %s\n", log_lines[i]);
}

static void exchange_cases_with_libcurl(void)
{
	oa_transport_builtin_http = false;
	exchange_cases();
}

int main(void)
{
	oa_log_set_sink(capture_line);
	uint64_t start = now_ns();
	in_child(missing_libcurl);
	in_child(openssl_shut_down);
	in_child(load_early);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* The sanitizers' allocators are not safe to fork from while another
	 * thread allocates: only an uninstrumented build can test this. */
	in_child(fork_during_load);
#endif
	in_child(exchange_cases_with_libcurl);
	CHECK(!libcurl_mapped());
	test_fdguard();
	exchange_cases();
	printf("took %llu ms\n", (unsigned long long)((now_ns() - start) / MS));
	CHECK_DONE();
}
