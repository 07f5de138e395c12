/* The relay's end, driven directly: the runtime is linked into this test,
 * which hosts a relay and plays its clients over raw sockets, and plays a
 * relay to the runtime's client. Each case runs in a fresh copy of this
 * program (the runtime reads its settings once, at start-up): spans go to
 * /dev/null, on an hour's schedule, so nothing is sent meanwhile. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "parcel.h"
#include "relay.h"

static socklen_t address(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	size_t len = strlen(name);
	memcpy(sa->sun_path + 1, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

/* A connection to the relay named name, or -1 with errno set. */
static int connect_to(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa;
	socklen_t len = address(&sa, name);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, len) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Writes a frame's header and the first `send` bytes of its payload of
 * `len` (zeros); true when all of it was taken. */
static bool write_frame(int fd, enum oa_relay_frame type, uint32_t len, uint32_t spans,
			uint32_t send)
{
	uint8_t header[OA_RELAY_HEADER_SIZE] = {0};
	memcpy(header, &len, 4);
	header[4] = (uint8_t)type;
	header[5] = type == OA_RELAY_HELLO ? 0 : OA_PARCEL_PROTOBUF;
	memcpy(header + 8, &spans, 4);
	uint8_t payload[256] = {0};
	if (type == OA_RELAY_HELLO) {
		uint32_t hello[2] = {OA_RELAY_VERSION, (uint32_t)getpid()};
		memcpy(payload, hello, sizeof hello);
	}
	return send <= sizeof payload &&
	       syscall(SYS_sendto, fd, header, sizeof header, MSG_NOSIGNAL, NULL, 0) ==
		   (long)sizeof header &&
	       (send == 0 || syscall(SYS_sendto, fd, payload, send, MSG_NOSIGNAL, NULL, 0) == send);
}

/* The host's end: a client's frames written before it are taken in, a
 * frame cut short is discarded, a tentative one committed; a client's later
 * send fails (EPIPE), a connect is refused, a child gets no relay. */
static void case_host_end(void)
{
	char value[160];
	bool hosting = oa_relay_for_child(value, sizeof value, true) != NULL;
	CHECK(hosting);
	if (!hosting)
		return;
	const char *name = strchr(value, '@') + 1;
	int whole = connect_to(name), cut = connect_to(name), tentative = connect_to(name);
	CHECK(whole >= 0 && cut >= 0 && tentative >= 0);
	CHECK(write_frame(whole, OA_RELAY_HELLO, 8, 0, 8));
	CHECK(write_frame(whole, OA_RELAY_PARCEL, 100, 3, 100));
	CHECK(write_frame(cut, OA_RELAY_HELLO, 8, 0, 8));
	CHECK(write_frame(cut, OA_RELAY_PARCEL, 100, 5, 40));
	CHECK(write_frame(tentative, OA_RELAY_HELLO, 8, 0, 8));
	CHECK(write_frame(tentative, OA_RELAY_TENTATIVE, 100, 2, 100));
	oa_relay_host_end(oa_mono_ns() + 5000000000u);
	CHECK_EQ_INT(oa_relay_host_spans_in(), 3 + 2);
	CHECK_EQ_INT(oa_parcels_spans_pushed(), 3 + 2);
	/* The cut frame's sender goes on writing it: refused. */
	CHECK(!write_frame(cut, OA_RELAY_PARCEL, 100, 5, 60));
	CHECK_EQ_INT(errno, EPIPE);
	CHECK(!write_frame(whole, OA_RELAY_PARCEL, 100, 1, 100));
	CHECK_EQ_INT(errno, EPIPE);
	CHECK_EQ_INT(connect_to(name), -1);
	CHECK_EQ_INT(errno, ECONNREFUSED);
	CHECK(oa_relay_for_child(value, sizeof value, true) == NULL);
	struct oa_relay_totals totals;
	oa_relay_host_totals(&totals);
	/* Still connected at the end: they export by themselves, not "ended
	 * without reporting". */
	CHECK_EQ_INT(totals.processes, 3);
	CHECK_EQ_INT(totals.unreported, 0);
}

struct relay_side {
	int fd;
	size_t read; /* bytes, to the end */
};

/* Shuts the connection for reading once the client is inside its frame,
 * then reads what it wrote, to the end (which lets it see EPIPE). */
static void *end_relay_side(void *arg)
{
	struct relay_side *side = arg;
	struct timespec pause = {0, 100000000};
	nanosleep(&pause, NULL);
	shutdown(side->fd, SHUT_RD);
	char buf[65536];
	long n;
	while ((n = syscall(SYS_recvfrom, side->fd, buf, sizeof buf, 0, NULL, 0)) > 0)
		side->read += (size_t)n;
	return NULL;
}

/* A client whose frame is cut short by the relay's end: the send fails and
 * the connection is dropped (the caller exports that request itself). */
static void case_client_cut(void)
{
	char name[64];
	snprintf(name, sizeof name, "otlpauto-test-relay.%d", (int)getpid());
	int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa;
	socklen_t len = address(&sa, name);
	CHECK(bind(listener, (struct sockaddr *)&sa, len) == 0 && listen(listener, 4) == 0);
	char value[160];
	snprintf(value, sizeof value, "%016x-%016x@%s", 1, 2, name);
	struct oa_relay_fingerprint ours = {1, 2};
	CHECK(oa_relay_init(value, &ours, false));
	struct relay_side side = {accept(listener, NULL, NULL), 0};
	CHECK(side.fd >= 0);
	pthread_t ender;
	CHECK(pthread_create(&ender, NULL, end_relay_side, &side) == 0);
	/* Far more than the socket holds: the write waits for room. */
	uint32_t payload_len = 16u << 20;
	void *payload = calloc(1, payload_len);
	CHECK(!oa_relay_send(OA_RELAY_PARCEL, payload, payload_len, 7, OA_PARCEL_PROTOBUF,
			     oa_mono_ns() + 5000000000u));
	CHECK(!oa_relay_connected());
	pthread_join(ender, NULL);
	/* The hello, then part of the frame. */
	CHECK(side.read < 2 * OA_RELAY_HEADER_SIZE + 8 + payload_len);
	free(payload);
}

/* A value that is not "FULL-OPEN@NAME[#FD]" (hexadecimal fingerprints, a
 * descriptor in decimal up to INT_MAX), or names other fingerprints, is
 * refused without a connection. */
static void case_values(void)
{
	struct oa_relay_fingerprint ours = {1, 2};
	const char *bad[] = {
	    "",
	    "1-2",
	    "x1-2@relay",
	    "1-x2@relay",
	    "1+2@relay",
	    "1-2#relay",
	    "1-2@",
	    "1-2@relay#",
	    "1-2@relay#x",
	    "1-2@relay#3x",
	    "1-2@relay#-3",
	    "1-2@relay#2147483648",
	    "10000000000000001-2@relay",
	    "3-4@relay",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK(!oa_relay_init(bad[i], &ours, false));
		CHECK(!oa_relay_connected());
	}
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
    {"host-end", case_host_end},
    {"client-cut", case_client_cut},
    {"values", case_values},
};

/* Runs a case in a new process image (raw execve: the hooks linked into
 * this test must not see it); the child's checks count in its status. */
static void run_case(const char *self, const char *name)
{
	char *env[] = {"OTEL_TRACES_EXPORTER=otlp/file", "OTLPAUTO_FILE=/dev/null",
		       "OTEL_BSP_SCHEDULE_DELAY=3600000", NULL};
	char *argv[] = {(char *)self, (char *)name, NULL};
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		syscall(SYS_execve, self, argv, env);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	bool passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!passed)
		fprintf(stderr, "case %s failed (status %d)\n", name, status);
	CHECK(passed);
}

int main(int argc, char **argv)
{
	size_t n = sizeof cases / sizeof cases[0];
	if (argc > 1) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[1], cases[i].name) == 0)
				cases[i].fn();
		fflush(NULL);
		/* Skip the exit flush: nothing here is meant to be exported. */
		syscall(SYS_exit_group, check_failed ? 1 : 0);
	}
	for (size_t i = 0; i < n; i++)
		run_case("/proc/self/exe", cases[i].name);
	CHECK_DONE();
}
