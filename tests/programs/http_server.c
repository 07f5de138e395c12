/* A small HTTP/1.1 server for the socket tests, on 127.0.0.1.
 *
 *   http_server MODE CONNECTIONS
 *
 * Prints "port N" first, then serves CONNECTIONS connections one after the
 * other and exits. MODE "normal" reads with recv(4096) and answers with one
 * write; "bytewise" reads 1 byte per read() and writes its answers 1 byte
 * per write(). Keep-alive and pipelining are honoured. A connection whose
 * first line is not an HTTP request line speaks a line protocol instead:
 * "PING" -> "+PONG", "QUIT" closes.
 *
 * stdout: one line per request, "request METHOD PATH BODY_LENGTH SUM", the
 * same with or without the shim. stderr: "traceparent VALUE" (or "-") per
 * request, and "tracestate VALUE" when there is one, for the tests to check
 * propagation. /missing answers 404,
 * /error 500, anything else 200 with body "PATH BODY_LENGTH\n". */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static bool bytewise;

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len; /* buffered bytes not yet consumed */
};

/* Reads more into c->buf; false at EOF or error. */
static bool fill(struct conn *c)
{
	if (c->len == sizeof c->buf)
		return false;
	ssize_t n = bytewise ? read(c->fd, c->buf + c->len, 1)
			     : recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
	if (n <= 0)
		return false;
	c->len += (size_t)n;
	return true;
}

static void consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, bytewise ? 1 : n);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* The value of header `name` in head (NUL-terminated), or NULL. */
static const char *header(const char *head, const char *name, size_t *len)
{
	size_t name_len = strlen(name);
	const char *line = strstr(head, "\r\n");
	for (; line && line[2]; line = strstr(line + 2, "\r\n")) {
		const char *p = line + 2;
		if (strncasecmp(p, name, name_len) == 0 && p[name_len] == ':') {
			p += name_len + 1;
			while (*p == ' ')
				p++;
			*len = (size_t)(strstr(p, "\r\n") - p);
			return p;
		}
	}
	return NULL;
}

static void line_protocol(struct conn *c)
{
	for (;;) {
		char *eol;
		while (!(eol = memchr(c->buf, '\n', c->len)))
			if (!fill(c))
				return;
		size_t line_len = (size_t)(eol - c->buf) + 1;
		bool quit = strncmp(c->buf, "QUIT", 4) == 0;
		consume(c, line_len);
		if (quit || !send_all(c->fd, "+PONG\r\n", 7))
			return;
	}
}

/* Answers one request (a function of its own: its span shows the context
 * the request is handled in). */
static bool respond(int fd, const char *path, size_t body_len, bool close_after)
{
	int status = strcmp(path, "/missing") == 0 ? 404 : strcmp(path, "/error") == 0 ? 500 : 200;
	char body[512], response[1024];
	int body_n = snprintf(body, sizeof body, "%s %zu\n", path, body_len);
	int n =
	    snprintf(response, sizeof response, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n%s",
		     status, status == 200 ? "OK" : "Oops", body_n,
		     close_after ? "Connection: close\r\n" : "", body);
	return send_all(fd, response, (size_t)n);
}

/* Serves requests until the client closes or asks to; false: not HTTP. */
static bool serve_http(struct conn *c)
{
	for (;;) {
		char *end;
		while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
			char *eol = memmem(c->buf, c->len, "\r\n", 2);
			if (eol && !memmem(c->buf, (size_t)(eol - c->buf), " HTTP/1.", 8))
				return false;
			if (!fill(c))
				return true;
		}
		size_t head_len = (size_t)(end - c->buf) + 4;
		char head[1 << 14];
		if (head_len >= sizeof head)
			return true;
		memcpy(head, c->buf, head_len);
		head[head_len] = '\0';
		char method[16], path[256];
		if (sscanf(head, "%15s %255s", method, path) != 2)
			return false;
		size_t len;
		const char *value = header(head, "Content-Length", &len);
		size_t body_len = value ? strtoul(value, NULL, 10) : 0;
		const char *tp = header(head, "traceparent", &len);
		fprintf(stderr, "traceparent %.*s\n", tp ? (int)len : 1, tp ? tp : "-");
		const char *ts = header(head, "tracestate", &len);
		if (ts)
			fprintf(stderr, "tracestate %.*s\n", (int)len, ts);
		const char *connection = header(head, "Connection", &len);
		bool close_after = connection && strncasecmp(connection, "close", 5) == 0;
		consume(c, head_len);
		unsigned long sum = 0;
		for (size_t got = 0; got < body_len;) {
			if (!c->len && !fill(c))
				return true;
			size_t take = c->len < body_len - got ? c->len : body_len - got;
			for (size_t i = 0; i < take; i++)
				sum = sum * 31 + (unsigned char)c->buf[i];
			consume(c, take);
			got += take;
		}
		printf("request %s %s %zu %lx\n", method, path, body_len, sum);
		fflush(stdout);
		if (!respond(c->fd, path, body_len, close_after) || close_after)
			return true;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s normal|bytewise CONNECTIONS\n", argv[0]);
		return 2;
	}
	bytewise = strcmp(argv[1], "bytewise") == 0;
	int connections = atoi(argv[2]);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t addr_len = sizeof addr;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
	    listen(lfd, 16) != 0 || getsockname(lfd, (struct sockaddr *)&addr, &addr_len) != 0) {
		perror("listen");
		return 1;
	}
	printf("port %u\n", ntohs(addr.sin_port));
	fflush(stdout);
	static struct conn c;
	for (int i = 0; i < connections; i++) {
		c.fd = accept(lfd, NULL, NULL);
		if (c.fd < 0) {
			perror("accept");
			return 1;
		}
		c.len = 0;
		if (!serve_http(&c))
			line_protocol(&c);
		close(c.fd);
	}
	close(lfd);
	return 0;
}
