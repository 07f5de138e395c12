/* An HTTP/1.1 client for the socket tests, to 127.0.0.1:PORT.
 *
 *   http_client PORT MODE [N]
 *
 * Modes (stdout is the same with or without the shim):
 *   split        one GET written 1 byte per write()
 *   pipeline     three GETs in one write, then three responses
 *   keepalive N  N GETs one after the other on one connection, the last to
 *                /missing and the one before to /error
 *   nonhttp      "PING" twice and "QUIT": a line protocol, not HTTP
 *   traceparent  a GET that carries its own traceparent header
 *   unsampled    the same with the sampled flag off
 *   nohost       an HTTP/1.0 GET without a Host header
 *   nonblock     non-blocking connect (poll, SO_ERROR), then a GET
 *   refused      connect to PORT, where nobody listens
 *   bigpost N    N POSTs of 10007-byte bodies, non-blocking, a 4 KiB send
 *                buffer, each head written together with the previous
 *                body's end: the kernel cuts the writes anywhere
 * Each response prints as "status CODE body BODY". */
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

static char inbuf[1 << 16];
static size_t inlen;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void wait_for(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	if (poll(&p, 1, 10000) != 1)
		die("poll");
}

static int connect_to(int port, bool nonblocking)
{
	int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
		return fd;
	if (!nonblocking || errno != EINPROGRESS)
		return -1;
	wait_for(fd, POLLOUT);
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err)
		return -1;
	return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
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

static bool fill(int fd)
{
	for (;;) {
		ssize_t n = recv(fd, inbuf + inlen, sizeof inbuf - inlen, 0);
		if (n < 0 && errno == EAGAIN) {
			wait_for(fd, POLLIN);
			continue;
		}
		if (n <= 0)
			return false;
		inlen += (size_t)n;
		return true;
	}
}

/* Reads one response and prints it. */
static void read_response(int fd)
{
	char *end;
	while (!(end = memmem(inbuf, inlen, "\r\n\r\n", 4)))
		if (!fill(fd))
			die("response head");
	size_t head_len = (size_t)(end - inbuf) + 4;
	int status = atoi(inbuf + 9);
	char *cl = memmem(inbuf, head_len, "Content-Length: ", 16);
	size_t body_len = cl ? strtoul(cl + 16, NULL, 10) : 0;
	while (inlen < head_len + body_len)
		if (!fill(fd))
			die("response body");
	printf("status %d body %.*s", status, (int)body_len, inbuf + head_len);
	memmove(inbuf, inbuf + head_len + body_len, inlen - head_len - body_len);
	inlen -= head_len + body_len;
}

static void get(int fd, const char *path, const char *extra)
{
	char req[512];
	int n =
	    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path, extra);
	send_all(fd, req, (size_t)n);
}

static void split(int port)
{
	int fd = connect_to(port, false);
	const char req[] =
	    "GET /split?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: split\r\n\r\n";
	for (size_t i = 0; i < sizeof req - 1; i++)
		if (write(fd, &req[i], 1) != 1)
			die("write");
	read_response(fd);
	close(fd);
}

static void pipeline(int port)
{
	int fd = connect_to(port, false);
	const char reqs[] = "GET /p1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
			    "GET /p2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
			    "GET /p3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	send_all(fd, reqs, sizeof reqs - 1);
	for (int i = 0; i < 3; i++)
		read_response(fd);
	close(fd);
}

static void keepalive(int port, int n)
{
	int fd = connect_to(port, false);
	for (int i = 0; i < n; i++) {
		char path[32];
		snprintf(path, sizeof path, "/k%d", i);
		get(fd, i == n - 1 ? "/missing" : i == n - 2 ? "/error" : path, "");
		read_response(fd);
	}
	close(fd);
}

static void nonhttp(int port)
{
	int fd = connect_to(port, false);
	send_all(fd, "PING\r\nPING\r\n", 12);
	while (inlen < 14)
		if (!fill(fd))
			die("pong");
	printf("%.*s", (int)inlen, inbuf);
	send_all(fd, "QUIT\r\n", 6);
	close(fd);
}

static void with_traceparent(int port, bool sampled)
{
	int fd = connect_to(port, false);
	get(fd, "/own",
	    sampled ? "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
		    : "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\r\n");
	read_response(fd);
	close(fd);
}

static void nonblock(int port)
{
	int fd = connect_to(port, true);
	if (fd < 0)
		die("connect");
	get(fd, "/nb", "");
	read_response(fd);
	close(fd);
}

static void refused(int port)
{
	int fd = connect_to(port, false);
	printf("connect %s\n", fd < 0 ? strerrorname_np(errno) : "succeeded");
}

#define BIG_BODY 10007

static void bigpost(int port, int n)
{
	int fd = connect_to(port, true);
	if (fd < 0)
		die("connect");
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	static char body[BIG_BODY];
	for (size_t i = 0; i < sizeof body; i++)
		body[i] = (char)('a' + i % 26);
	char heads[64][128];
	struct iovec iov[130];
	int count = 0;
	/* head 0, then per request: its body and the next head */
	for (int i = 0; i < n && i < 64; i++) {
		int len = snprintf(
		    heads[i], sizeof heads[i],
		    "POST /big%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n", i,
		    BIG_BODY);
		iov[count++] = (struct iovec){heads[i], (size_t)len};
		iov[count++] = (struct iovec){body, sizeof body};
	}
	int first = 0;
	while (first < count) {
		ssize_t w = writev(fd, iov + first, count - first < 8 ? count - first : 8);
		if (w < 0 && errno == EAGAIN) {
			wait_for(fd, POLLOUT);
			continue;
		}
		if (w <= 0)
			die("writev");
		while (w > 0) {
			size_t take =
			    (size_t)w < iov[first].iov_len ? (size_t)w : iov[first].iov_len;
			iov[first].iov_base = (char *)iov[first].iov_base + take;
			iov[first].iov_len -= take;
			w -= (ssize_t)take;
			if (!iov[first].iov_len)
				first++;
		}
	}
	for (int i = 0; i < n && i < 64; i++)
		read_response(fd);
	close(fd);
}

static void nohost(int port)
{
	int fd = connect_to(port, false);
	send_all(fd, "GET /nohost HTTP/1.0\r\n\r\n", 24);
	read_response(fd);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PORT MODE [N]\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]);
	const char *mode = argv[2];
	int n = argc > 3 ? atoi(argv[3]) : 0;
	if (strcmp(mode, "split") == 0)
		split(port);
	else if (strcmp(mode, "pipeline") == 0)
		pipeline(port);
	else if (strcmp(mode, "keepalive") == 0)
		keepalive(port, n);
	else if (strcmp(mode, "nonhttp") == 0)
		nonhttp(port);
	else if (strcmp(mode, "traceparent") == 0 || strcmp(mode, "unsampled") == 0)
		with_traceparent(port, strcmp(mode, "traceparent") == 0);
	else if (strcmp(mode, "nohost") == 0)
		nohost(port);
	else if (strcmp(mode, "nonblock") == 0)
		nonblock(port);
	else if (strcmp(mode, "refused") == 0)
		refused(port);
	else if (strcmp(mode, "bigpost") == 0)
		bigpost(port, n);
	else
		return 2;
	return 0;
}
