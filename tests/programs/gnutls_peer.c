/* An HTTPS client and server in one process over loopback TCP, both
 * GnuTLS, moving their plaintext with the record functions a mode names.
 *
 * Usage: gnutls_peer CERT KEY MODE
 *   seq     gnutls_record_send2 (with padding) and gnutls_record_recv_seq,
 *           on both ends
 *   split   the client writes its request head in three gnutls_record_send
 *           calls: the request line, the Host line with the CR of the blank
 *           line, its LF
 *   packet  the client writes with gnutls_record_send_range and reads with
 *           gnutls_record_recv_packet; the server reads with
 *           gnutls_record_recv_packet, writes its response head with
 *           gnutls_record_send and the body, a file of 100000 bytes, with
 *           gnutls_record_send_file
 * Prints the request head as the server received it, the answer's status
 * line and the length of the answer's body. */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FILE_BODY_LEN 100000

enum mode { SEQ, SPLIT, PACKET };

static enum mode mode;
static gnutls_certificate_credentials_t server_credentials;
static int accepted_fd;
static char received_head[4096];

static void die(const char *what, int err)
{
	fprintf(stderr, "gnutls_peer: %s: %s\n", what, err ? gnutls_strerror(err) : "");
	exit(1);
}

static gnutls_session_t session(unsigned flags, gnutls_certificate_credentials_t credentials,
				int fd)
{
	gnutls_session_t s;
	int err = gnutls_init(&s, flags);
	if (!err)
		err = gnutls_set_default_priority(s);
	if (!err)
		err = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, credentials);
	if (err)
		die("session", err);
	gnutls_transport_set_int(s, fd);
	do
		err = gnutls_handshake(s);
	while (err < 0 && !gnutls_error_is_fatal(err));
	if (err < 0)
		die("handshake", err);
	return s;
}

/* One read with the mode's function into buf[0..cap). */
static size_t read_some(gnutls_session_t s, char *buf, size_t cap)
{
	ssize_t r;
	if (mode == SEQ) {
		unsigned char seq[8];
		r = gnutls_record_recv_seq(s, buf, cap, seq);
	} else if (mode == PACKET) {
		gnutls_packet_t packet = NULL;
		r = gnutls_record_recv_packet(s, &packet);
		if (r > 0) {
			gnutls_datum_t data;
			gnutls_packet_get(packet, &data, NULL);
			if (data.size > cap)
				die("packet larger than the buffer", 0);
			memcpy(buf, data.data, data.size);
			r = data.size;
		}
		if (packet)
			gnutls_packet_deinit(packet);
	} else {
		r = gnutls_record_recv(s, buf, cap);
	}
	if (r <= 0)
		die("read", r < 0 ? (int)r : 0);
	return (size_t)r;
}

/* Reads until buf holds a head and the body its Content-Length says. */
static size_t read_message(gnutls_session_t s, char *buf, size_t cap, size_t *body_len)
{
	size_t got = 0;
	while (got < cap - 1) {
		got += read_some(s, buf + got, cap - 1 - got);
		buf[got] = 0;
		const char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		const char *length = strcasestr(buf, "\r\ncontent-length: ");
		size_t head_len = (size_t)(end + 4 - buf);
		size_t body = length && length < end ? strtoul(length + 18, NULL, 10) : 0;
		if (got >= head_len + body) {
			*body_len = got - head_len;
			return got;
		}
	}
	die("message too long", 0);
	return 0;
}

static void send_all(gnutls_session_t s, const char *buf, size_t len)
{
	while (len) {
		ssize_t r;
		if (mode == SEQ) {
			r = gnutls_record_send2(s, buf, len, 16, 0);
		} else if (mode == PACKET) {
			gnutls_range_st range = {len, len + 32};
			r = gnutls_record_send_range(s, buf, len, &range);
		} else {
			r = gnutls_record_send(s, buf, len);
		}
		if (r < 0 && gnutls_error_is_fatal((int)r))
			die("send", (int)r);
		if (r > 0) {
			buf += r;
			len -= (size_t)r;
		}
	}
}

/* The body as a file sent with gnutls_record_send_file. */
static void send_file_body(gnutls_session_t s)
{
	char path[] = "/tmp/gnutls_peer.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp", 0);
	unlink(path);
	static char body[FILE_BODY_LEN];
	memset(body, 'x', sizeof body);
	if (write(fd, body, sizeof body) != (ssize_t)sizeof body)
		die("write", 0);
	/* from the file's position: GnuTLS 3.7 moves an offset given from
	 * there (SEEK_CUR) */
	if (lseek(fd, 0, SEEK_SET) != 0)
		die("lseek", 0);
	size_t sent = 0;
	while (sent < FILE_BODY_LEN) {
		ssize_t r = gnutls_record_send_file(s, fd, NULL, FILE_BODY_LEN - sent);
		if (r == 0 || (r < 0 && gnutls_error_is_fatal((int)r)))
			die("gnutls_record_send_file", (int)r);
		if (r > 0)
			sent += (size_t)r;
	}
	close(fd);
}

static void *serve(void *arg)
{
	(void)arg;
	gnutls_session_t s = session(GNUTLS_SERVER, server_credentials, accepted_fd);
	size_t body_len;
	read_message(s, received_head, sizeof received_head, &body_len);
	if (mode == PACKET) {
		char head[128];
		int len = snprintf(head, sizeof head,
				   "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", FILE_BODY_LEN);
		if (gnutls_record_send(s, head, (size_t)len) != len)
			die("gnutls_record_send", 0);
		send_file_body(s);
	} else {
		static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
		send_all(s, answer, sizeof answer - 1);
	}
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	close(accepted_fd);
	return NULL;
}

static void send_request(gnutls_session_t s, int port)
{
	char request[256];
	int line = snprintf(request, sizeof request, "GET /%s HTTP/1.1\r\n",
			    mode == SEQ	    ? "seq"
			    : mode == SPLIT ? "split"
					    : "packet");
	int host = snprintf(request + line, sizeof request - (size_t)line,
			    "Host: 127.0.0.1:%d\r\n\r\n", port);
	if (mode != SPLIT) {
		send_all(s, request, (size_t)(line + host));
		return;
	}
	send_all(s, request, (size_t)line);
	send_all(s, request + line, (size_t)host - 1);
	send_all(s, "\n", 1);
}

int main(int argc, char **argv)
{
	if (argc != 4)
		die("usage: gnutls_peer CERT KEY seq|split|packet", 0);
	if (strcmp(argv[3], "seq") == 0)
		mode = SEQ;
	else if (strcmp(argv[3], "split") == 0)
		mode = SPLIT;
	else if (strcmp(argv[3], "packet") == 0)
		mode = PACKET;
	else
		die("unknown mode", 0);
	gnutls_certificate_credentials_t client_credentials;
	int err = gnutls_certificate_allocate_credentials(&server_credentials);
	if (!err)
		err = gnutls_certificate_set_x509_key_file(server_credentials, argv[1], argv[2],
							   GNUTLS_X509_FMT_PEM);
	if (!err)
		err = gnutls_certificate_allocate_credentials(&client_credentials);
	if (err)
		die("credentials", err);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1) ||
	    getsockname(listener, (struct sockaddr *)&addr, &len))
		die("listen", 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr))
		die("connect", 0);
	accepted_fd = accept(listener, NULL, NULL);
	if (accepted_fd < 0)
		die("accept", 0);
	pthread_t server;
	pthread_create(&server, NULL, serve, NULL);

	/* no verification: the certificate is the test's self-signed one */
	gnutls_session_t s = session(GNUTLS_CLIENT, client_credentials, fd);
	send_request(s, ntohs(addr.sin_port));
	static char answer[FILE_BODY_LEN + 256];
	size_t body_len;
	read_message(s, answer, sizeof answer, &body_len);
	pthread_join(server, NULL);
	printf("client answer %.15s\n", answer);
	printf("client body %zu\n", body_len);
	for (char *line = strtok(received_head, "\r\n"); line; line = strtok(NULL, "\r\n"))
		printf("server head %s\n", line);
	gnutls_bye(s, GNUTLS_SHUT_RDWR);
	gnutls_deinit(s);
	close(fd);
	close(listener);
	gnutls_certificate_free_credentials(client_credentials);
	gnutls_certificate_free_credentials(server_credentials);
	return 0;
}
