/* Socket hook costs, timed inside the process (run with and without the
 * shim by bench/sockets.sh):
 *
 *   bench_sockets pipe N     N 1-byte reads from a pipe: an fd the hooks
 *                            know nothing about (a socket exists, so the fd
 *                            table does too)             -> "ns_per_call=X"
 *                            With libnosyscall.so preloaded below the shim,
 *                            read() makes no system call: the hook alone.
 *   bench_sockets ping N     N 16-byte ping-pongs on a loopback TCP socket
 *                            that is not HTTP (the parser gave up)
 *                                                        -> "us_per_roundtrip=X"
 *   bench_sockets http N     N keep-alive HTTP/1.1 requests to a server
 *                            thread of the same process: a CLIENT and a
 *                            SERVER span each            -> "us_per_request=X"
 *   bench_sockets served N   N keep-alive requests served as nginx serves
 *                            wrk's (recv, a 2-piece writev, epoll_wait once
 *                            per 32) on an accepted socket whose recv and
 *                            writev make no system call (libnosyscall.so
 *                            below the shim): the server side's hooks alone,
 *                            a SERVER span each          -> "ns_per_request=X"
 *                            the calling thread's CPU time (time it was
 *                            preempted left out)     -> "cpu_ns_per_request=C"
 *                            and the CPU time of the other threads (the
 *                            shim's exporter) per request
 *                                     -> "other_threads_cpu_per_request_ns=Y" */
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char request[] = "GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n";
static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void pipe_reads(long n)
{
	int fds[2];
	int sock = socket(AF_INET, SOCK_STREAM, 0);
	/* non-blocking writes: with reads that take nothing, the pipe stays full */
	if (pipe2(fds, O_NONBLOCK) != 0 || sock < 0)
		die("pipe");
	static char block[4096];
	double spent = 0;
	for (long done = 0; done < n;) {
		long batch = n - done < (long)sizeof block ? n - done : (long)sizeof block;
		if (write(fds[1], block, (size_t)batch) != batch && errno != EAGAIN)
			die("write");
		double start = now_ns();
		char c;
		for (long i = 0; i < batch; i++)
			if (read(fds[0], &c, 1) != 1)
				die("read");
		spent += now_ns() - start;
		done += batch;
	}
	printf("ns_per_call=%.2f\n", spent / (double)n);
	close(sock);
}

/* Reads exactly len bytes (the messages have fixed sizes). */
static void read_exactly(int fd, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t r = recv(fd, buf + got, len - got, 0);
		if (r <= 0)
			die("recv");
		got += (size_t)r;
	}
}

struct server {
	int listener;
	int http;
	long n;
};

/* Reads one request head (the shim makes it longer: a traceparent line). */
static void read_head(int fd, char *buf, size_t cap, size_t *len)
{
	char *end;
	while (!(end = memmem(buf, *len, "\r\n\r\n", 4))) {
		ssize_t r = recv(fd, buf + *len, cap - *len, 0);
		if (r <= 0)
			die("recv");
		*len += (size_t)r;
	}
	size_t head = (size_t)(end - buf) + 4;
	memmove(buf, buf + head, *len - head);
	*len -= head;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	int fd = accept(s->listener, NULL, NULL);
	if (fd < 0)
		die("accept");
	char buf[1024];
	size_t buffered = 0;
	for (long i = 0; i < s->n; i++) {
		if (s->http) {
			read_head(fd, buf, sizeof buf, &buffered);
			if (send(fd, response, sizeof response - 1, 0) != sizeof response - 1)
				die("send");
		} else {
			read_exactly(fd, buf, 16);
			if (send(fd, buf, 16, 0) != 16)
				die("send");
		}
	}
	close(fd);
	return NULL;
}

/* A socket listening on a free loopback port, which *addr gets. */
static int loopback_listener(struct sockaddr_in *addr)
{
	*addr =
	    (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof *addr;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(listener, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(listener, 1) ||
	    getsockname(listener, (struct sockaddr *)addr, &len) != 0)
		die("listen");
	return listener;
}

static void roundtrips(long n, int http)
{
	struct server s = {.http = http, .n = n};
	struct sockaddr_in addr;
	s.listener = loopback_listener(&addr);
	pthread_t thread;
	pthread_create(&thread, NULL, serve, &s);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
		die("connect");
	char buf[256], ping[16] = "ping-ping-ping!";
	double start = now_ns();
	for (long i = 0; i < n; i++) {
		if (http) {
			if (send(fd, request, sizeof request - 1, 0) != sizeof request - 1)
				die("send");
			read_exactly(fd, buf, sizeof response - 1);
		} else {
			if (send(fd, ping, 16, 0) != 16)
				die("send");
			read_exactly(fd, buf, 16);
		}
	}
	double spent = now_ns() - start;
	close(fd);
	pthread_join(thread, NULL);
	close(s.listener);
	printf("%s=%.2f\n", http ? "us_per_request" : "us_per_roundtrip", spent / (double)n / 1e3);
}

static const char wrk_request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
static const char nginx_head[] = "HTTP/1.1 200 OK\r\n"
				 "Server: nginx/1.22.1\r\n"
				 "Date: Thu, 26 Nov 2026 10:30:00 GMT\r\n"
				 "Content-Type: application/octet-stream\r\n"
				 "Content-Length: 3\r\n"
				 "Connection: keep-alive\r\n"
				 "\r\n";

/* CPU time of the process's threads but the calling one (the shim's
 * exporter), from /proc/self/task/<tid>/schedstat. */
static double other_threads_cpu_ns(void)
{
	DIR *tasks = opendir("/proc/self/task");
	if (!tasks)
		return 0;
	double total = 0;
	long self = syscall(SYS_gettid);
	struct dirent *d;
	while ((d = readdir(tasks)) != NULL) {
		if (d->d_name[0] == '.' || atol(d->d_name) == self)
			continue;
		char path[300];
		snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", d->d_name);
		FILE *f = fopen(path, "r");
		unsigned long long ns;
		if (f && fscanf(f, "%llu", &ns) == 1)
			total += (double)ns;
		if (f)
			fclose(f);
	}
	closedir(tasks);
	return total;
}

#define SERVED_ROUNDS 5

static void served(long n)
{
	void (*fake)(int, const char *, size_t) =
	    (void (*)(int, const char *, size_t))dlsym(RTLD_DEFAULT, "nosyscall_fake_socket");
	if (!fake) {
		fprintf(stderr, "bench_sockets served: preload libnosyscall.so\n");
		exit(2);
	}
	struct sockaddr_in addr;
	int listener = loopback_listener(&addr);
	int client = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(client, (struct sockaddr *)&addr, sizeof addr) != 0)
		die("connect");
	int fd = accept(listener, NULL, NULL);
	int ep = epoll_create1(0);
	if (fd < 0 || ep < 0)
		die("accept");
	fake(fd, wrk_request, sizeof wrk_request - 1);
	char buf[1024];
	struct iovec out[2] = {{(void *)nginx_head, sizeof nginx_head - 1}, {"ok\n", 3}};
	struct epoll_event ev;
	double best = 0, best_cpu = 0;
	/* the fastest round: the others met more of the machine's noise */
	for (int round = 0; round < SERVED_ROUNDS; round++) {
		double start = now_ns(), start_cpu = thread_cpu_ns();
		for (long i = 0; i < n; i++) {
			if (i % 32 == 0)
				epoll_wait(ep, &ev, 1, 0);
			if (recv(fd, buf, sizeof buf, 0) != sizeof wrk_request - 1 ||
			    writev(fd, out, 2) != (ssize_t)(sizeof nginx_head - 1 + 3))
				die("served");
		}
		double spent = now_ns() - start, spent_cpu = thread_cpu_ns() - start_cpu;
		if (round == 0 || spent < best)
			best = spent;
		if (round == 0 || spent_cpu < best_cpu)
			best_cpu = spent_cpu;
	}
	printf(
	    "ns_per_request=%.1f cpu_ns_per_request=%.1f other_threads_cpu_per_request_ns=%.1f\n",
	    best / (double)n, best_cpu / (double)n,
	    other_threads_cpu_ns() / (SERVED_ROUNDS * (double)n));
	close(fd);
	close(client);
	close(listener);
	close(ep);
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 0;
	if (argc != 3 || n <= 0) {
		fprintf(stderr, "usage: %s pipe|ping|http|served N\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "pipe") == 0)
		pipe_reads(n);
	else if (strcmp(argv[1], "ping") == 0)
		roundtrips(n, 0);
	else if (strcmp(argv[1], "http") == 0)
		roundtrips(n, 1);
	else if (strcmp(argv[1], "served") == 0)
		served(n);
	else
		return 2;
	return 0;
}
