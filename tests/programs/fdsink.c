/* Programs that do to their descriptors what the otlp/file sink and the
 * exporter must survive (test_filesink.py). Spans are manual ones, named
 * after the step that made them; the sleeps let a batch go out (the tests
 * set OTEL_BSP_SCHEDULE_DELAY=100).
 *
 *   fdsink reopen LOG         closes fd 1, makes its log fd 1 again (open,
 *                             else dup2): spans "before", "after"
 *   fdsink hijack SINK LOG    closes, dup2s onto, close_ranges the sink's
 *                             own descriptor: spans "first", "after-close",
 *                             "after-dup2", "after-close-range"
 *   fdsink lowfd MS           4 threads "worker-N" make spans "tick"; main
 *                             renames the last "crossed-3", closes fd 1,
 *                             then opens and closes /dev/null for MS ms,
 *                             counting opens that did not get fd 1, while
 *                             the threads rename themselves "renamed-N"
 *   fdsink fsize BYTES        RLIMIT_FSIZE cuts the first batch (50 spans
 *                             "big") short, then is lifted: 5 spans "later"
 *   fdsink wait               after a line on stdin: spans "a", "b", "c"
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <otlpauto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void span(const char *name)
{
	otlpauto_span_end(otlpauto_span_start(name, OTLPAUTO_KIND_INTERNAL));
}

static int fail(const char *what)
{
	perror(what);
	return 1;
}

static int reopen(const char *log)
{
	close(1);
	span("before");
	sleep_ms(500); /* the sink is open now */
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("open");
	fprintf(stderr, "log fd %d\n", fd);
	if (fd != 1) {
		if (dup2(fd, 1) != 1)
			return fail("dup2");
		close(fd);
	}
	static const char line[] = "program output\n";
	if (write(1, line, sizeof line - 1) != (ssize_t)(sizeof line - 1))
		return fail("write");
	span("after");
	return 0;
}

/* The descriptor /proc/self/fd shows open on `path`, or -1. */
static int fd_open_on(const char *path)
{
	char want[PATH_MAX];
	if (!realpath(path, want))
		return -1;
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	int found = -1;
	for (struct dirent *e; found < 0 && (e = readdir(dir));) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dirfd(dir), e->d_name, target, sizeof target - 1);
		if (n > 0 && (target[n] = '\0', strcmp(target, want) == 0))
			found = atoi(e->d_name);
	}
	closedir(dir);
	return found;
}

static int hijack(const char *sink, const char *log)
{
	span("first");
	sleep_ms(500);
	int fd = fd_open_on(sink);
	fprintf(stderr, "sink fd %d\n", fd);
	if (fd < 0)
		return 1;
	if (close(fd) != 0)
		return fail("close");
	span("after-close");
	sleep_ms(500);
	int own = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (own < 0 || dup2(own, fd) != fd)
		return fail("dup2");
	close(own);
	static const char line[] = "program output\n";
	if (write(fd, line, sizeof line - 1) != (ssize_t)(sizeof line - 1))
		return fail("write");
	span("after-dup2");
	sleep_ms(500);
	if (close_range(3, ~0U, 0) != 0)
		return fail("close_range");
	span("after-close-range");
	return 0;
}

static volatile int stop, rename_now;
static unsigned long spans_made[4];

static void *lowfd_worker(void *arg)
{
	long i = (long)arg;
	char name[16];
	snprintf(name, sizeof name, "worker-%ld", i);
	pthread_setname_np(pthread_self(), name);
	int renamed = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		if (!renamed && __atomic_load_n(&rename_now, __ATOMIC_ACQUIRE)) {
			snprintf(name, sizeof name, "renamed-%ld", i);
			prctl(PR_SET_NAME, name);
			renamed = 1;
		}
		span("tick");
		spans_made[i]++;
		sleep_ms(1);
	}
	return NULL;
}

static int lowfd(long ms)
{
	pthread_t threads[4];
	for (long i = 0; i < 4; i++)
		if (pthread_create(&threads[i], NULL, lowfd_worker, (void *)i) != 0)
			return fail("pthread_create");
	sleep_ms(100);
	if (pthread_setname_np(threads[3], "crossed-3") != 0)
		return fail("pthread_setname_np");
	sleep_ms(400); /* the exporter has started and sent batches */
	close(1);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	unsigned long opens = 0, stolen = 0;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed =
		    (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= ms)
			break;
		if (elapsed >= ms / 2)
			__atomic_store_n(&rename_now, 1, __ATOMIC_RELEASE);
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			return fail("open");
		opens++;
		stolen += fd != 1;
		close(fd);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	unsigned long total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		total += spans_made[i];
	}
	fprintf(stderr, "lowfd: %lu opens, %lu not fd 1, %lu spans\n", opens, stolen, total);
	return 0;
}

static int fsize(long bytes)
{
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit limit;
	getrlimit(RLIMIT_FSIZE, &limit);
	rlim_t hard = limit.rlim_max;
	limit.rlim_cur = (rlim_t)bytes;
	if (setrlimit(RLIMIT_FSIZE, &limit) != 0)
		return fail("setrlimit");
	char padding[301];
	memset(padding, 'x', sizeof padding - 1);
	padding[sizeof padding - 1] = '\0';
	for (int i = 0; i < 50; i++) {
		otlpauto_span *s = otlpauto_span_start("big", OTLPAUTO_KIND_INTERNAL);
		otlpauto_span_set_str(s, "padding", padding);
		otlpauto_span_end(s);
	}
	sleep_ms(600);
	limit.rlim_cur = hard;
	if (setrlimit(RLIMIT_FSIZE, &limit) != 0)
		return fail("setrlimit");
	for (int i = 0; i < 5; i++)
		span("later");
	return 0;
}

static int wait_line(void)
{
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	span("a");
	span("b");
	span("c");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "reopen") == 0 && argc > 2)
		return reopen(argv[2]);
	if (strcmp(mode, "hijack") == 0 && argc > 3)
		return hijack(argv[2], argv[3]);
	if (strcmp(mode, "lowfd") == 0 && argc > 2)
		return lowfd(atol(argv[2]));
	if (strcmp(mode, "fsize") == 0 && argc > 2)
		return fsize(atol(argv[2]));
	if (strcmp(mode, "wait") == 0)
		return wait_line();
	fprintf(stderr, "fdsink: unknown mode %s\n", mode);
	return 2;
}
