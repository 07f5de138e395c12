/* Descriptors the shim owns: opened above the low numbers (64 below
 * RLIMIT_NOFILE or 1024, whichever is lower), protected, closed on release unless the program took
 * the number over, and left low only when nothing is free up there. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fdguard.h"

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_open_high(void)
{
	int floor = oa_fd_high_floor();
	CHECK_EQ_INT(floor, 256 - 64);
	int fd = oa_fd_open("/dev/null", O_WRONLY, 0);
	CHECK(fd >= floor && fd < 256);
	CHECK(oa_fd_is_protected(fd));
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
	/* The low number it was opened at is free again. */
	int low = open("/dev/null", O_RDONLY);
	CHECK(low >= 0 && low < floor);
	CHECK_EQ_INT(oa_fd_release(fd), 0);
	CHECK(!is_open(fd) && !oa_fd_is_protected(fd));

	int owned = oa_fd_own(low);
	CHECK(owned >= floor && oa_fd_is_protected(owned));
	CHECK(!is_open(low) && !oa_fd_is_protected(low));
	oa_fd_release(owned);
}

/* A number the program dup2'd onto is its file: released, not closed. */
static void test_release_hijacked(void)
{
	int fd = oa_fd_open("/dev/null", O_WRONLY, 0);
	oa_fd_mark_hijacked(fd);
	oa_fd_unprotect(fd);
	CHECK_EQ_INT(oa_fd_release(fd), 0);
	CHECK(is_open(fd));
	close(fd);
}

static void test_read_file(const char *argv0)
{
	char buf[4096];
	ssize_t n = oa_fd_read_file("/proc/self/cmdline", buf, sizeof buf);
	CHECK(n == (ssize_t)strlen(argv0) + 1 && memcmp(buf, argv0, (size_t)n) == 0);
	CHECK_EQ_INT(oa_fd_read_file("/nonexistent/file", buf, sizeof buf), -1);
	/* Nothing stays open: the next number is the lowest free one. */
	int fd = open("/dev/null", O_RDONLY);
	int next = open("/dev/null", O_RDONLY);
	CHECK_EQ_INT(next, fd + 1);
	close(fd);
	close(next);
}

/* Every number above the floor taken: the descriptor stays low, and works. */
static void test_nothing_free_above(void)
{
	int floor = oa_fd_high_floor(), taken = 0;
	for (int fd = floor; fd < 256; fd++)
		taken += dup2(0, fd) == fd;
	CHECK_EQ_INT(taken, 256 - floor);
	int fd = oa_fd_open("/dev/null", O_WRONLY, 0);
	CHECK(fd >= 0 && fd < floor && oa_fd_is_protected(fd));
	CHECK(write(fd, "x", 1) == 1);
	oa_fd_release(fd);
	for (int high = floor; high < 256; high++)
		close(high);
}

/* A high limit does not send our numbers high: forks copy the table up to
 * them. Growing the table at start-up makes room for them. */
static void test_floor_under_high_limit(void)
{
	struct rlimit limit;
	getrlimit(RLIMIT_NOFILE, &limit);
	struct rlimit high = {limit.rlim_max < 4096 ? limit.rlim_max : 4096, limit.rlim_max};
	if (high.rlim_cur < 2048 || setrlimit(RLIMIT_NOFILE, &high) != 0) {
		printf("# skipped: RLIMIT_NOFILE hard limit %lu\n", (unsigned long)limit.rlim_max);
		return;
	}
	CHECK_EQ_INT(oa_fd_high_floor(), 1024 - 64);
	oa_fd_reserve_table();
	int fd = oa_fd_open("/dev/null", O_WRONLY, 0);
	CHECK(fd >= 1024 - 64 && fd < 1024);
	oa_fd_release(fd);
	/* The table holds 1024 numbers: dup2 to the last needs no growth
	 * (not observable directly; the number must at least be usable). */
	CHECK_EQ_INT(dup2(0, 1023), 1023);
	close(1023);
	setrlimit(RLIMIT_NOFILE, &limit);
}

/* The two sides of fdguard.h's exclusion, as the hooks and our threads use
 * them: a program closes a number the way bash closes a pipe's ends, twice,
 * while one of our threads makes sockets. A second close that fell between
 * the kernel's choice of number and its protection closed ours. */
static int stop_making;

static void *make_sockets(void *arg)
{
	int *lost = arg;
	while (!__atomic_load_n(&stop_making, __ATOMIC_ACQUIRE)) {
		oa_fd_make_begin();
		int fd = oa_fd_own(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
		oa_fd_make_end();
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
			(*lost)++;
		}
		if (fd >= 0)
			oa_fd_release(fd);
	}
	return NULL;
}

static void program_close(int fd)
{
	oa_fd_replace_begin();
	if (!oa_fd_is_protected(fd))
		close(fd);
	oa_fd_replace_end();
}

static void test_double_close_spares_ours(void)
{
	int lost = 0;
	pthread_t maker;
	CHECK_EQ_INT(pthread_create(&maker, NULL, make_sockets, &lost), 0);
	for (int i = 0; i < 20000; i++) {
		int p[2];
		if (pipe(p) != 0)
			break;
		program_close(p[1]);
		program_close(p[1]);
		program_close(p[0]);
		program_close(p[0]);
	}
	__atomic_store_n(&stop_making, 1, __ATOMIC_RELEASE);
	pthread_join(maker, NULL);
	CHECK_EQ_INT(lost, 0);
}

/* Each side waits for the other, on another thread, to leave. */
struct holder {
	void (*begin)(void), (*end)(void);
	int held, left;
};

static void *hold_briefly(void *arg)
{
	struct holder *h = arg;
	h->begin();
	__atomic_store_n(&h->held, 1, __ATOMIC_SEQ_CST);
	struct timespec pause = {0, 300000};
	nanosleep(&pause, NULL);
	__atomic_store_n(&h->left, 1, __ATOMIC_SEQ_CST);
	h->end();
	return NULL;
}

static void check_waits(void (*begin)(void), void (*end)(void), void (*other_begin)(void),
			void (*other_end)(void))
{
	struct holder h = {begin, end, 0, 0};
	pthread_t t;
	pthread_create(&t, NULL, hold_briefly, &h);
	while (!__atomic_load_n(&h.held, __ATOMIC_SEQ_CST))
		sched_yield();
	other_begin();
	CHECK_EQ_INT(__atomic_load_n(&h.left, __ATOMIC_SEQ_CST), 1);
	other_end();
	pthread_join(t, NULL);
}

static void test_sides_wait(void)
{
	check_waits(oa_fd_make_begin, oa_fd_make_end, oa_fd_replace_begin, oa_fd_replace_end);
	check_waits(oa_fd_replace_begin, oa_fd_replace_end, oa_fd_make_begin, oa_fd_make_end);
	/* A signal handler's close on the thread making one goes on. */
	oa_fd_make_begin();
	oa_fd_replace_begin();
	oa_fd_replace_end();
	oa_fd_make_end();
}

int main(int argc, char **argv)
{
	(void)argc;
	test_floor_under_high_limit();
	struct rlimit limit;
	getrlimit(RLIMIT_NOFILE, &limit);
	limit.rlim_cur = 256;
	if (limit.rlim_max < 256 || setrlimit(RLIMIT_NOFILE, &limit) != 0) {
		perror("setrlimit");
		return 1;
	}
	test_open_high();
	test_release_hijacked();
	test_read_file(argv[0]);
	test_nothing_free_above();
	test_sides_wait();
	test_double_close_spares_ours();
	CHECK_DONE();
}
