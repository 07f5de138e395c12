/* An HTTPS client and server in one process over loopback TCP, both
 * GnuTLS, moving their plaintext with the record functions other than
 * gnutls_record_send and _recv: gnutls_record_send2 (with padding) and
 * gnutls_record_recv_seq, on both ends.
 *
 * Usage: gnutls_peer CERT KEY
 * Prints the request head as the server received it and the answer's
 * status line. */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Reads with gnutls_record_recv_seq until buf holds `until`. */
static size_t read_until(gnutls_session_t s, char *buf, size_t cap, const char *until)
{
	unsigned char seq[8];
	size_t got = 0;
	while (got < cap - 1) {
		ssize_t r = gnutls_record_recv_seq(s, buf + got, cap - 1 - got, seq);
		if (r <= 0)
			die("gnutls_record_recv_seq", r < 0 ? (int)r : 0);
		got += (size_t)r;
		buf[got] = 0;
		if (strstr(buf, until))
			break;
	}
	return got;
}

static void send_all(gnutls_session_t s, const char *buf, size_t len)
{
	while (len) {
		ssize_t r = gnutls_record_send2(s, buf, len, 16, 0);
		if (r < 0 && gnutls_error_is_fatal((int)r))
			die("gnutls_record_send2", (int)r);
		if (r > 0) {
			buf += r;
			len -= (size_t)r;
		}
	}
}

static void *serve(void *arg)
{
	(void)arg;
	gnutls_session_t s = session(GNUTLS_SERVER, server_credentials, accepted_fd);
	read_until(s, received_head, sizeof received_head, "\r\n\r\n");
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	send_all(s, answer, sizeof answer - 1);
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	close(accepted_fd);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: gnutls_peer CERT KEY", 0);
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
	char request[256];
	int head =
	    snprintf(request, sizeof request, "GET /seq HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
		     ntohs(addr.sin_port));
	send_all(s, request, (size_t)head);
	char answer[256];
	read_until(s, answer, sizeof answer, "\r\n\r\nok");
	pthread_join(server, NULL);
	printf("client answer %.15s\n", answer);
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
