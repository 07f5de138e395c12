/* bench_tls [LIB]: what the tls hooks cost an SSL_read on a connection
 * whose plaintext is not HTTP (target: at most 20 ns over the untraced
 * call). A client and a server in one process over loopback TCP (a
 * self-signed certificate made in memory); the server sends 2 MB of
 * plaintext that is not HTTP, the client reads it one byte per SSL_read,
 * so nearly every call is served from OpenSSL's buffer without a system
 * call. Then what they cost a BIO that is not an SSL BIO: a BIO_write and
 * a BIO_read of one byte on a memory BIO, 2M pairs. Each configuration (no shim; the shim with its
 * default families, OTEL_TRACES_EXPORTER=none) runs in a process of its own; figures are the median
 * of 7 rounds, ns per call of the reading thread's CPU time. The library is the argument, else the
 * one built beside. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CASE_VAR "OTLPAUTO_BENCH_TLS_CASE"
#define ROUNDS	 7
#define BYTES	 (2u << 20)

static SSL_CTX *server_ctx;
static int server_fd;

static void die(const char *what)
{
	fprintf(stderr, "bench_tls: %s\n", what);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void make_certificate(SSL_CTX *ctx)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	if (!key || !cert)
		die("key");
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1, -1,
				   0);
	X509_set_issuer_name(cert, name);
	if (!X509_sign(cert, key, EVP_sha256()) || SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1)
		die("certificate");
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* The server: rounds of BYTES bytes that are not HTTP (a 0x01 first). */
static void *serve(void *arg)
{
	(void)arg;
	SSL *ssl = SSL_new(server_ctx);
	SSL_set_fd(ssl, server_fd);
	if (SSL_accept(ssl) != 1)
		die("SSL_accept");
	static char chunk[16384];
	memset(chunk, 0x01, sizeof chunk);
	for (unsigned round = 0; round <= ROUNDS; round++)
		for (unsigned sent = 0; sent < BYTES; sent += sizeof chunk)
			if (SSL_write(ssl, chunk, sizeof chunk) <= 0)
				die("SSL_write");
	SSL_shutdown(ssl);
	SSL_free(ssl);
	return NULL;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int run_case(const char *which)
{
	server_ctx = SSL_CTX_new(TLS_server_method());
	make_certificate(server_ctx);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1) ||
	    getsockname(listener, (struct sockaddr *)&addr, &len))
		die("listen");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr))
		die("connect");
	server_fd = accept(listener, NULL, NULL);
	pthread_t server;
	pthread_create(&server, NULL, serve, NULL);
	SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(client_ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		die("SSL_connect");
	char byte;
	double ns[ROUNDS];
	/* round 0 warms up (and makes the HTTP parser give up) */
	for (int round = -1; round < ROUNDS; round++) {
		uint64_t start = now_ns();
		for (unsigned i = 0; i < BYTES; i++)
			if (SSL_read(ssl, &byte, 1) != 1)
				die("SSL_read");
		if (round >= 0)
			ns[round] = (double)(now_ns() - start) / BYTES;
	}
	pthread_join(server, NULL);
	qsort(ns, ROUNDS, sizeof ns[0], compare);
	printf("%s %.1f %.1f %.1f", which, ns[ROUNDS / 2], ns[0], ns[ROUNDS - 1]);
	SSL_free(ssl);
	BIO *mem = BIO_new(BIO_s_mem());
	for (int round = -1; round < ROUNDS; round++) {
		uint64_t start = now_ns();
		for (unsigned i = 0; i < BYTES; i++)
			if (BIO_write(mem, &byte, 1) != 1 || BIO_read(mem, &byte, 1) != 1)
				die("BIO");
		if (round >= 0)
			ns[round] = (double)(now_ns() - start) / BYTES;
	}
	qsort(ns, ROUNDS, sizeof ns[0], compare);
	printf(" %.1f %.1f %.1f\n", ns[ROUNDS / 2], ns[0], ns[ROUNDS - 1]);
	BIO_free(mem);
	return 0;
}

extern char **environ;

/* Runs this program again for one configuration; the exec is the raw
 * system call: the shim's execve would hand its own LD_PRELOAD on. */
static int spawn_case(const char *which, const char *lib, char *out, size_t out_size)
{
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	const char **env = calloc(n + 4, sizeof *env);
	char preload[4096], case_var[64];
	if (!env)
		return 1;
	size_t k = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "OTEL_", 5) != 0 && strncmp(*e, "OTLPAUTO_", 9) != 0 &&
		    strncmp(*e, "LD_PRELOAD=", 11) != 0)
			env[k++] = *e;
	env[k++] = "OTEL_TRACES_EXPORTER=none";
	snprintf(case_var, sizeof case_var, "%s=%s", CASE_VAR, which);
	env[k++] = case_var;
	if (lib) {
		snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
		env[k++] = preload;
	}
	int pipe_fds[2];
	if (pipe(pipe_fds))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipe_fds[1], 1);
		char *argv[] = {"bench_tls", NULL};
		syscall(SYS_execve, "/proc/self/exe", argv, env);
		_exit(127);
	}
	close(pipe_fds[1]);
	free(env);
	ssize_t got = read(pipe_fds[0], out, out_size - 1);
	out[got > 0 ? got : 0] = 0;
	close(pipe_fds[0]);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	const char *which = getenv(CASE_VAR);
	if (which)
		return run_case(which);
	const char *lib = argc > 1 ? argv[1] : OTLPAUTO_BENCH_LIB;
	char plain[256], traced[256];
	if (spawn_case("untraced", NULL, plain, sizeof plain) ||
	    spawn_case("traced", lib, traced, sizeof traced))
		return 1;
	double base[6], ns[6];
	if (sscanf(plain, "%*s %lf %lf %lf %lf %lf %lf", &base[0], &base[1], &base[2], &base[3],
		   &base[4], &base[5]) != 6 ||
	    sscanf(traced, "%*s %lf %lf %lf %lf %lf %lf", &ns[0], &ns[1], &ns[2], &ns[3], &ns[4],
		   &ns[5]) != 6)
		return 1;
	printf("| ns per call (median, min-max of %d) | untraced | traced | overhead |\n", ROUNDS);
	printf("|---|---|---|---|\n");
	static const char *const rows[] = {"SSL_read of 1 byte, not HTTP",
					   "BIO_write + BIO_read of 1 byte, a memory BIO"};
	for (int r = 0; r < 2; r++)
		printf("| %s | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) | %.1f |\n", rows[r],
		       base[3 * r], base[3 * r + 1], base[3 * r + 2], ns[3 * r], ns[3 * r + 1],
		       ns[3 * r + 2], ns[3 * r] - base[3 * r]);
	return 0;
}
