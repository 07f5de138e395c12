/* Descriptors the shim owns: opened above the low numbers (64 below
 * RLIMIT_NOFILE or 1024, whichever is lower), protected, closed on release unless the program took
 * the number over, and left low only when nothing is free up there. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
	CHECK_DONE();
}
