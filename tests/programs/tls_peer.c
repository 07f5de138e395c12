/* An HTTPS client and server in one process, over loopback TCP, for the
 * writes the tls hooks must keep exact: the client's request (a 12 KB
 * header, a 256 KB body) goes out on a non-blocking socket with small
 * buffers while the server waits before reading, so OpenSSL answers
 * SSL_ERROR_WANT_WRITE and the call is repeated.
 *
 * Usage: tls_peer CERT KEY MODE
 *   retry    one SSL_write of the whole request, repeated after WANT_WRITE
 *   partial  SSL_write_ex with SSL_MODE_ENABLE_PARTIAL_WRITE, going on
 *            after each short write
 *   split    blocking SSL_writes, the first ending with the CR of the blank
 *            line that ends the head
 *   staged   a request small enough for the hooks to write with its header
 *            lines in one record (a copy), without a body, through a BIO
 *            that refuses its first write (as a full socket would), repeated
 *            from deeper on the stack: the copy moves
 *   cut      the staged request without the refusal; the server reads it and,
 *            while the client's non-blocking reads would block, closes the
 *            connection without answering or a close_notify: the client's
 *            read after them fails for good
 * Prints what the client sent and what the server received (the head, the
 * body's length and checksum). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAD_LEN	 12000
#define BODY_LEN (256 * 1024)

static SSL_CTX *server_ctx;
static int accepted_fd;
static bool cut;
static char received_head[PAD_LEN + 1024];

static void die(const char *what)
{
	fprintf(stderr, "tls_peer: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static unsigned checksum(const unsigned char *p, size_t n)
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = sum * 31 + p[i];
	return sum;
}

static void *serve(void *arg)
{
	(void)arg;
	SSL *ssl = SSL_new(server_ctx);
	SSL_set_fd(ssl, accepted_fd);
	if (SSL_accept(ssl) != 1)
		die("SSL_accept");
	usleep(200000); /* the client's buffers fill meanwhile */
	static unsigned char buf[BODY_LEN + sizeof received_head];
	size_t got = 0, head_len = 0, body_len = 0;
	for (;;) {
		int r = SSL_read(ssl, buf + got, 4096);
		if (r <= 0)
			die("SSL_read");
		got += (size_t)r;
		if (!head_len) {
			unsigned char *end = memmem(buf, got, "\r\n\r\n", 4);
			if (!end)
				continue;
			head_len = (size_t)(end + 4 - buf);
			const char *cl = strcasestr((char *)buf, "\r\ncontent-length: ");
			body_len = cl ? strtoul(cl + 18, NULL, 10) : 0;
		}
		if (got >= head_len + body_len)
			break;
	}
	memcpy(received_head, buf, head_len < sizeof received_head ? head_len : 0);
	printf("server body %zu %08x\n", body_len, checksum(buf + head_len, body_len));
	if (cut) {
		usleep(300000); /* the client's reads would block meanwhile */
		shutdown(accepted_fd, SHUT_RDWR);
		SSL_free(ssl);
		close(accepted_fd);
		return NULL;
	}
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	if (SSL_write(ssl, answer, sizeof answer - 1) <= 0)
		die("server SSL_write");
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(accepted_fd);
	return NULL;
}

/* staged: the client's writes go through this filter over its socket BIO,
 * which refuses the first record longer than 1000 bytes once. */
static bool refused;

static int refuse_once_write(BIO *bio, const char *data, int len)
{
	BIO_clear_retry_flags(bio);
	if (len > 1000 && !refused) {
		refused = true;
		BIO_set_retry_write(bio);
		return -1;
	}
	int r = BIO_write(BIO_next(bio), data, len);
	BIO_copy_next_retry(bio);
	return r;
}

static long refuse_once_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	return BIO_ctrl(BIO_next(bio), cmd, num, ptr);
}

static void refuse_first_write(SSL *ssl, int fd)
{
	BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "refuse once");
	BIO_meth_set_write(method, refuse_once_write);
	BIO_meth_set_ctrl(method, refuse_once_ctrl);
	BIO *filter = BIO_new(method);
	BIO_set_init(filter, 1);
	SSL_set_bio(ssl, BIO_new_socket(fd, BIO_NOCLOSE),
		    BIO_push(filter, BIO_new_socket(fd, BIO_NOCLOSE)));
}

/* Waits until the socket can take what OpenSSL asked for. */
static void wait_for(SSL *ssl, int ret)
{
	int err = SSL_get_error(ssl, ret);
	if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ)
		die("client: not a retry");
	struct pollfd p = {SSL_get_fd(ssl), err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
	poll(&p, 1, 1000);
}

static int retries;

/* SSL_write, called `depth` KB deeper on the stack. */
static int write_deeper(SSL *ssl, const char *buf, size_t len, int depth)
{
	volatile char frame[1024];
	frame[0] = (char)depth;
	if (depth)
		return write_deeper(ssl, buf, len, depth - 1) + frame[0] - depth;
	return SSL_write(ssl, buf, (int)len);
}

/* SSL_write of buf, the same arguments again after WANT_WRITE (each time
 * from deeper on the stack). */
static void write_repeating(SSL *ssl, const char *buf, size_t len)
{
	for (;;) {
		int r = write_deeper(ssl, buf, len, retries % 4);
		if (r > 0) {
			if ((size_t)r != len)
				die("client: a short write without partial writes");
			return;
		}
		retries++;
		wait_for(ssl, r);
	}
}

static void write_partial(SSL *ssl, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		size_t n = 0;
		if (SSL_write_ex(ssl, buf + off, len - off, &n)) {
			off += n;
			continue;
		}
		retries++;
		wait_for(ssl, 0);
	}
}

int main(int argc, char **argv)
{
	if (argc != 4)
		die("usage: tls_peer CERT KEY retry|partial|split|staged|cut");
	const char *mode = argv[3];
	bool staged = strcmp(mode, "staged") == 0;
	cut = strcmp(mode, "cut") == 0;
	server_ctx = SSL_CTX_new(TLS_server_method());
	if (SSL_CTX_use_certificate_file(server_ctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(server_ctx, argv[2], SSL_FILETYPE_PEM) != 1)
		die("certificate");
	int small = 4096;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1) ||
	    getsockname(listener, (struct sockaddr *)&addr, &len))
		die("listen");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr))
		die("connect");
	accepted_fd = accept(listener, NULL, NULL);
	if (accepted_fd < 0)
		die("accept");
	pthread_t server;
	pthread_create(&server, NULL, serve, NULL);

	SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(client_ctx);
	SSL_set_fd(ssl, fd);
	if (staged)
		refuse_first_write(ssl, fd);
	if (SSL_connect(ssl) != 1)
		die("SSL_connect");
	refused = false;

	static char request[PAD_LEN + BODY_LEN + 256];
	int body = staged || cut ? 0 : BODY_LEN;
	int head = snprintf(request, sizeof request,
			    "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Pad: %0*d\r\n"
			    "Content-Length: %d\r\n\r\n",
			    ntohs(addr.sin_port), staged || cut ? 3000 : PAD_LEN, 0, body);
	for (int i = 0; i < body; i++)
		request[head + i] = (char)('a' + i % 26);
	size_t total = (size_t)head + (size_t)body;
	printf("client body %d %08x\n", body,
	       checksum((unsigned char *)request + head, (size_t)body));
	if (strcmp(mode, "split") == 0) {
		write_repeating(ssl, request, (size_t)head - 1);
		write_repeating(ssl, request + head - 1, total - (size_t)head + 1);
	} else {
		int flags = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		if (strcmp(mode, "partial") == 0) {
			SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
			write_partial(ssl, request, total);
		} else {
			write_repeating(ssl, request, total);
		}
	}
	char answer[256] = "";
	size_t got = 0;
	if (cut) {
		int r, waits = 0;
		while ((r = SSL_read(ssl, answer, sizeof answer)) <= 0 &&
		       SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ) {
			waits++;
			wait_for(ssl, r);
		}
		unsigned long error = ERR_peek_error();
		printf("client waits %d\n", waits);
		printf("client cut %d %s\n", r,
		       error ? ERR_reason_error_string(error) : "no error");
		pthread_join(server, NULL);
		SSL_free(ssl);
		close(fd);
		return 0;
	}
	while (got < sizeof answer - 1 && !memmem(answer, got, "\r\n\r\nok", 6)) {
		int r = SSL_read(ssl, answer + got, (int)(sizeof answer - 1 - got));
		if (r > 0)
			got += (size_t)r;
		else
			wait_for(ssl, r);
	}
	pthread_join(server, NULL);
	printf("client retries %d\n", retries);
	printf("client answer %.15s\n", answer);
	/* the head as received, its header lines but the padding */
	for (char *line = strtok(received_head, "\r\n"); line; line = strtok(NULL, "\r\n"))
		if (strncmp(line, "X-Pad:", 6) != 0)
			printf("server head %s\n", line);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	close(listener);
	SSL_CTX_free(client_ctx);
	SSL_CTX_free(server_ctx);
	return 0;
}
