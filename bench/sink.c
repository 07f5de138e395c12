/* A minimal OTLP/HTTP sink for benchmarks: HTTP/1.1 keep-alive on loopback,
 * one epoll thread, reads each request's Content-Length body, discards it
 * and answers 200 with an empty body (a valid empty ExportTraceService-
 * Response in protobuf and JSON alike). Far faster than any exporter, so it
 * never is the bottleneck it measures.
 *
 *   sink [port]   port 0 (the default) picks a free one
 *
 * Prints "port=P" once listening, and "requests=R body_bytes=B" on SIGTERM
 * or SIGINT, then exits 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEADER_MAX 16384

static const char response[] = "HTTP/1.1 200 OK\r\n"
			       "Content-Type: application/x-protobuf\r\n"
			       "Content-Length: 0\r\n"
			       "\r\n";

struct conn {
	int fd;
	size_t header_len;
	unsigned long long body_left; /* > 0: inside a body */
	char header[HEADER_MAX];
};

static unsigned long long requests, body_bytes;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Content-Length of a complete header block; 0 when absent. */
static unsigned long long content_length(const char *h, size_t len)
{
	static const char name[] = "\r\ncontent-length:";
	for (size_t i = 0; i + sizeof name - 1 <= len; i++)
		if (strncasecmp(h + i, name, sizeof name - 1) == 0)
			return strtoull(h + i + sizeof name - 1, NULL, 10);
	return 0;
}

/* Consumes len bytes of the stream; false when the connection must close. */
static bool feed(struct conn *c, const char *p, size_t len)
{
	while (len > 0) {
		if (c->body_left > 0) {
			size_t n = len < c->body_left ? len : (size_t)c->body_left;
			c->body_left -= n;
			body_bytes += n;
			p += n;
			len -= n;
			if (c->body_left == 0) {
				requests++;
				if (write(c->fd, response, sizeof response - 1) !=
				    sizeof response - 1)
					return false;
			}
			continue;
		}
		/* Header bytes: copy up to the end of the block, which may span
		 * reads, so search from just before the new bytes. */
		size_t start = c->header_len > 3 ? c->header_len - 3 : 0;
		size_t n = len < HEADER_MAX - c->header_len ? len : HEADER_MAX - c->header_len;
		if (n == 0)
			return false;
		memcpy(c->header + c->header_len, p, n);
		c->header_len += n;
		char *end = memmem(c->header + start, c->header_len - start, "\r\n\r\n", 4);
		if (!end) {
			p += n;
			len -= n;
			continue;
		}
		size_t used = (size_t)(end + 4 - c->header) - (c->header_len - n);
		unsigned long long cl = content_length(c->header, (size_t)(end + 2 - c->header));
		c->header_len = 0;
		p += used;
		len -= used;
		if (cl == 0) {
			requests++;
			if (write(c->fd, response, sizeof response - 1) != sizeof response - 1)
				return false;
		}
		c->body_left = cl;
	}
	return true;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 0;
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	int sfd = signalfd(-1, &stop, SFD_CLOEXEC);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof addr;
	if (sfd < 0 || lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
	    listen(lfd, 128) < 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
		die("sink: listen");
	printf("port=%d\n", ntohs(addr.sin_port));
	fflush(stdout);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("sink: epoll");
	ev.data.ptr = &sfd; /* tells the signal fd apart from connections */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
		die("sink: epoll");

	static char buf[1 << 20];
	struct epoll_event events[64];
	for (;;) {
		int n = epoll_wait(ep, events, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("sink: epoll_wait");
		for (int i = 0; i < n; i++) {
			if (events[i].data.ptr == &sfd) {
				printf("requests=%llu body_bytes=%llu\n", requests, body_bytes);
				return 0;
			}
			if (events[i].data.ptr == NULL) {
				int cfd;
				while ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct conn *c = calloc(1, sizeof *c);
					if (!c)
						die("sink: calloc");
					c->fd = cfd;
					struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
					if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0)
						die("sink: epoll_ctl");
				}
				continue;
			}
			/* Blocking sockets, level-triggered: one read per event. */
			struct conn *c = events[i].data.ptr;
			ssize_t got = read(c->fd, buf, sizeof buf);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0 || !feed(c, buf, (size_t)got)) {
				close(c->fd); /* also leaves the epoll set */
				free(c);
			}
		}
	}
}
