/* A reverse proxy in one thread, for the traceparent rewrite: for each
 * case it sends itself a request carrying traceparent X, reads it on an
 * accepted socket (the shim's SERVER span, X its remote parent), forwards
 * a head to its own sink over a new connection, written in pieces, and
 * checks the bytes the sink reads: a head that passes X on must arrive
 * with X's value rewritten (same trace id and flags, a new parent id, one
 * per request), everything else byte for byte as written.
 *
 *   tp_forward MODE [few]
 *
 * MODE: writes   each piece one write() (a short count is retried)
 *       writev   all pieces in one writev() (retried from where it stopped)
 *       nonblock each piece one send() on a non-blocking socket (EAGAIN polled)
 * Cases: a long head split at every byte; a short head split at every pair
 * of points; heads whose traceparent must stay (malformed, another
 * version, not the one received, a second line) split at every byte; two
 * heads written together, split at every byte and at every pair of points
 * around their values. With
 * "few", only three splits of the long head, each rewritten parent id
 * printed as "parent ID" (to compare with the exported CLIENT spans).
 * Without the shim nothing is rewritten: "expect none" checks that. Prints
 * "cases N rewritten R" and exits 1 at the first wrong byte. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define X_TRACE	 "4bf92f3577b34da6a3ce929d0e0e4736"
#define X_SPAN	 "00f067aa0ba902b7"
#define X_VALUE	 "00-" X_TRACE "-" X_SPAN "-01"
#define MAX_HEAD 512
#define MAX_IDS	 20000

enum mode { WRITES, WRITEV, NONBLOCK };
static enum mode mode;
static bool expect_rewrite = true, few;
static int proxy_listener, sink_listener;
static int proxy_port, sink_port;
static unsigned cases, rewritten;
static char ids[MAX_IDS][17];

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static size_t first_cut; /* of the case being checked */

static void fail(const char *what, const char *sent, size_t sent_len, const char *got,
		 size_t got_len)
{
	printf("FAIL %s (cut at %zu)\nsent %zu: %.*s\ngot  %zu: %.*s\n", what, first_cut, sent_len,
	       (int)sent_len, sent, got_len, (int)got_len, got);
	exit(1);
}

static int listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		die("listen");
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		die("connect");
	return fd;
}

static void wait_for(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	if (poll(&p, 1, 10000) != 1)
		die("poll");
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = mode == NONBLOCK ? send(fd, p, n, 0) : write(fd, p, n);
		if (w < 0 && errno == EAGAIN) {
			wait_for(fd, POLLOUT);
			continue;
		}
		if (w <= 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

static void writev_all(int fd, struct iovec *iov, int n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n);
		if (w <= 0)
			die("writev");
		for (; n && (size_t)w >= iov->iov_len; n--, iov++)
			w -= (ssize_t)iov->iov_len;
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
}

/* Reads a head, all the peer sends on the connection. */
static size_t read_head(int fd, char *buf)
{
	size_t n = 0;
	while (n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0) {
		if (n == MAX_HEAD)
			die("head too long");
		ssize_t r = read(fd, buf + n, MAX_HEAD - n);
		if (r <= 0)
			die("read head");
		n += (size_t)r;
	}
	return n;
}

/* Reads exactly n bytes (10 s at most for each read). */
static void read_exact(int fd, char *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) != 1)
			die("poll read");
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			die("read");
		got += (size_t)r;
	}
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Requests through the proxy: `bytes` (n_heads heads back to back)
 * forwarded in pieces cut at cuts[0..n_cuts) (increasing, inside them).
 * value_at[i] is where X's value is in head i when it passes X on
 * (rewritten), else -1. */
static void forward(const char *bytes, const int *value_at, int n_heads, const size_t *cuts,
		    int n_cuts)
{
	size_t len = strlen(bytes);
	first_cut = n_cuts ? cuts[0] : len;
	static const char incoming[] = "GET /in HTTP/1.1\r\nHost: proxy\r\n"
				       "traceparent: " X_VALUE "\r\ntracestate: k=v\r\n\r\n";
	int client = connect_to(proxy_port);
	send_all(client, incoming, sizeof incoming - 1);
	int served = accept(proxy_listener, NULL, NULL);
	char got[2 * MAX_HEAD];
	size_t got_len = read_head(served, got);
	if (got_len != sizeof incoming - 1 || memcmp(got, incoming, got_len) != 0)
		fail("incoming request changed", incoming, sizeof incoming - 1, got, got_len);

	int upstream = connect_to(sink_port);
	if (mode == NONBLOCK && fcntl(upstream, F_SETFL, O_NONBLOCK) != 0)
		die("fcntl");
	struct iovec iov[8];
	size_t at = 0;
	int n = 0;
	for (int i = 0; i <= n_cuts; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;
		iov[n++] = (struct iovec){(char *)bytes + at, end - at};
		at = end;
	}
	if (mode == WRITEV)
		writev_all(upstream, iov, n);
	else
		for (int i = 0; i < n; i++)
			send_all(upstream, iov[i].iov_base, iov[i].iov_len);

	int sink = accept(sink_listener, NULL, NULL);
	read_exact(sink, got, len);
	cases++;
	bool changed[2 * MAX_HEAD] = {0};
	size_t head_at = 0;
	for (int h = 0; h < n_heads; h++) {
		const char *end = strstr(bytes + head_at, "\r\n\r\n");
		if (value_at[h] >= 0 && expect_rewrite) {
			/* the parent id: 36 chars into the value, 16 of them */
			const char *id = got + head_at + (size_t)value_at[h] + 36;
			if (!is_hex(id, 16) || memcmp(id, X_SPAN, 16) == 0 ||
			    memcmp(id, "0000000000000000", 16) == 0)
				fail("parent id not rewritten", bytes, len, got, len);
			memset(changed + (id - got), 1, 16);
			if (rewritten == MAX_IDS)
				die("too many cases");
			memcpy(ids[rewritten], id, 16);
			ids[rewritten++][16] = '\0';
			if (few)
				printf("parent %.16s\n", id);
		}
		head_at = (size_t)(end + 4 - bytes);
	}
	for (size_t i = 0; i < len; i++)
		if (!changed[i] && got[i] != bytes[i])
			fail("a byte changed", bytes, len, got, len);

	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	for (int h = 0; h < n_heads; h++)
		send_all(sink, ok, sizeof ok - 1);
	read_exact(upstream, got, n_heads * (sizeof ok - 1));
	send_all(served, ok, sizeof ok - 1);
	read_exact(client, got, sizeof ok - 1);
	close(sink);
	close(upstream);
	close(served);
	close(client);
}

static void one_case(const char *head, int value_at, const size_t *cuts, int n_cuts)
{
	forward(head, &value_at, 1, cuts, n_cuts);
}

/* The head with `line` among its header lines; where X's value is in it
 * (-1: nowhere). */
static int make_head(char *out, const char *line, bool long_head)
{
	if (long_head)
		snprintf(out, MAX_HEAD,
			 "GET /backend/path?q=1 HTTP/1.1\r\nHost: backend:8080\r\n"
			 "X-Forwarded-For: 127.0.0.1\r\n%stracestate: k=v\r\n"
			 "Connection: close\r\n\r\n",
			 line);
	else
		snprintf(out, MAX_HEAD, "GET / HTTP/1.1\r\n%s\r\n", line);
	const char *v = strstr(out, X_VALUE);
	return v ? (int)(v - out) : -1;
}

static void every_split(const char *head, int value_at)
{
	size_t len = strlen(head);
	for (size_t i = 1; i < len; i++)
		one_case(head, value_at, &i, 1);
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	mode = strcmp(argv[1], "writev") == 0	  ? WRITEV
	       : strcmp(argv[1], "nonblock") == 0 ? NONBLOCK
						  : WRITES;
	few = argc > 2 && strcmp(argv[2], "few") == 0;
	expect_rewrite = !(argc > 2 && strcmp(argv[2], "none") == 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	proxy_listener = listener(&proxy_port);
	sink_listener = listener(&sink_port);

	char head[MAX_HEAD];
	int at = make_head(head, "traceparent: " X_VALUE "\r\n", true);
	if (few) {
		size_t cuts[] = {1, (size_t)at + 20, strlen(head) - 1};
		for (int i = 0; i < 3; i++)
			one_case(head, at, &cuts[i], 1);
	} else {
		every_split(head, at);
		at = make_head(head, "traceparent: " X_VALUE "\r\n", false);
		size_t len = strlen(head);
		for (size_t i = 1; i < len; i++)
			for (size_t j = i + 1; j < len; j++)
				one_case(head, at, (size_t[]){i, j}, 2);
		/* left as they are */
		static const char *const kept[] = {
		    "traceparent: 00-" X_TRACE "-" X_SPAN "-01x\r\n",
		    "traceparent: 00-" X_TRACE "-" X_SPAN "-0\r\n",
		    "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-" X_SPAN "-01\r\n",
		    "traceparent: 01-" X_TRACE "-" X_SPAN "-01-later\r\n",
		    "traceparent: ff-" X_TRACE "-" X_SPAN "-01\r\n",
		    "traceparent: 00-" X_TRACE "-b7ad6b7169203331-01\r\n",
		    "traceparent: \r\ntraceparent: " X_VALUE "\r\n",
		};
		for (size_t k = 0; k < sizeof kept / sizeof *kept; k++) {
			make_head(head, kept[k], true);
			every_split(head, -1);
		}
		/* the first line is rewritten, a second one is left */
		at = make_head(head,
			       "traceparent: " X_VALUE "\r\ntraceparent: 00-" X_TRACE
			       "-b7ad6b7169203331-01\r\n",
			       true);
		every_split(head, at);
		/* blanks around the value */
		at = make_head(head, "traceparent:   " X_VALUE " \t \r\n", true);
		every_split(head, at);
		/* two heads in one write, each rewritten */
		at = make_head(head, "traceparent: " X_VALUE "\r\n", true);
		char two[2 * MAX_HEAD];
		snprintf(two, sizeof two, "%s%s", head, head);
		int ats[2] = {at, at};
		for (size_t i = 1; i < strlen(two); i++)
			forward(two, ats, 2, &i, 1);
		/* ... cut around each value */
		size_t second = strlen(head) + (size_t)at;
		for (size_t i = (size_t)at - 2; i < (size_t)at + 60; i++)
			for (size_t j = second - 2; j < second + 60; j++)
				forward(two, ats, 2, (size_t[]){i, j}, 2);
	}
	qsort(ids, rewritten, sizeof ids[0], compare_ids);
	for (unsigned i = 1; i < rewritten; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0) {
			printf("FAIL parent id %s used twice\n", ids[i]);
			return 1;
		}
	printf("cases %u rewritten %u\n", cases, rewritten);
	return 0;
}
