/* Fork-like process creation for test_fork.py, built with
 * -finstrument-functions. Usage: forks MODE [ARGS]; the span counts with
 * OTLPAUTO_FUNCTION_THRESHOLD=0 are given at each mode. Timings are measured
 * here, around the calls, and printed. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define PLAIN	 __attribute__((no_instrument_function))

static volatile unsigned long sink;

NOINLINE static void leaf(int i)
{
	sink += (unsigned long)i;
}

NOINLINE static void child_work(void)
{
	leaf(7);
}

PLAIN static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

PLAIN static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

PLAIN static bool exited_zero(pid_t pid)
{
	int status;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

PLAIN static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ---- fork-loop N [WAIT_MS]: spans for the exporter to send, WAIT_MS (400)
 * for its first export to be under way, then N forks one after another,
 * each child leaving at once with _exit, and a span between forks, so that
 * the exporter always has a batch to send. Prints the loop's time and the
 * median of one fork's (fork to reaped child). Spans: main, run_fork_loop,
 * 20 + N x leaf. */
NOINLINE static int run_fork_loop(int n, long wait_ms)
{
	for (int i = 0; i < 20; i++)
		leaf(i);
	sleep_ms(wait_ms);
	double *each = calloc((size_t)n, sizeof *each);
	if (!each)
		return 1;
	double start = now_ms();
	for (int i = 0; i < n; i++) {
		leaf(i);
		double fork_start = now_ms();
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(0);
		if (!exited_zero(pid))
			return 1;
		each[i] = now_ms() - fork_start;
	}
	double total = now_ms() - start;
	qsort(each, (size_t)n, sizeof *each, by_value);
	printf("forks %d ms %.1f median_ms %.3f\n", n, total, each[n / 2]);
	free(each);
	return 0;
}

/* ---- raw-fork HOW EXIT [during-load]: a child made without atfork
 * handlers (HOW: _Fork, clone, clone-vfork, sys-fork) runs child_work,
 * then leaves with EXIT (exit or _exit). Made once the exporter runs, or
 * with during-load while it is held inside dlopen of libcurl (the dlopen
 * below). Prints the time from the call to the child's reaping. Spans:
 * main, run_raw_fork, leaf, and from the child child_work and leaf (none for
 * sys-fork, and none sent during-load: see test_fork.py). */
static const char *exit_how;
static int hold_load; /* 1: dlopen of libcurl waits; 2: it does (atomic) */

/* The shim opens libcurl with dlopen: this program's comes first in the
 * lookup order (-Wl,--export-dynamic-symbol). */
PLAIN void *dlopen(const char *file, int mode);
PLAIN void *dlopen(const char *file, int mode)
{
	static void *(*real)(const char *, int);
	if (!real)
		real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	if (__atomic_load_n(&hold_load, __ATOMIC_ACQUIRE) == 1 && file && strstr(file, "libcurl")) {
		__atomic_store_n(&hold_load, 2, __ATOMIC_RELEASE);
		sleep_ms(1000);
	}
	return real(file, mode);
}

PLAIN static void leave(void)
{
	if (strcmp(exit_how, "exit") == 0)
		exit(0);
	_exit(0);
}

PLAIN static int clone_main(void *arg)
{
	(void)arg;
	child_work();
	leave();
	return 0;
}

NOINLINE static int run_raw_fork(const char *how, bool during_load)
{
	__atomic_store_n(&hold_load, during_load, __ATOMIC_RELEASE);
	leaf(1); /* starts the exporter, which loads libcurl */
	if (during_load)
		while (__atomic_load_n(&hold_load, __ATOMIC_ACQUIRE) != 2)
			sleep_ms(1);
	else
		sleep_ms(300);
	double start = now_ms();
	pid_t pid;
	if (strcmp(how, "_Fork") == 0) {
		pid = _Fork();
	} else if (strcmp(how, "sys-fork") == 0) {
		pid = (pid_t)syscall(SYS_fork);
	} else {
		size_t size = 256 << 10;
		char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stack == MAP_FAILED)
			return 1;
		int flags = SIGCHLD | (strcmp(how, "clone-vfork") == 0 ? CLONE_VFORK : 0);
		pid = clone(clone_main, stack + size, flags, NULL);
	}
	if (pid < 0)
		return 1;
	if (pid == 0) {
		child_work();
		leave();
	}
	if (!exited_zero(pid))
		return 1;
	printf("child ms %.1f\n", now_ms() - start);
	return 0;
}

/* ---- fd-init: a fork lands while another thread builds the socket hooks'
 * descriptor table (held there by the getrlimit below); the child's first
 * socket must not wait for a builder it does not have. Prints "child ok"
 * or "child stuck" (killed after 5 s). Spans: main, run_fd_init. */
static __thread int is_builder;
static int building; /* 1: the builder is inside getrlimit (atomic) */

/* The shim sizes the table with getrlimit (getrlimit64 under
 * _FILE_OFFSET_BITS=64): this program's comes first in the lookup order
 * (-Wl,--export-dynamic-symbol) and holds the builder there a while. */
PLAIN int getrlimit64(__rlimit_resource_t resource, struct rlimit64 *limit);
PLAIN int getrlimit64(__rlimit_resource_t resource, struct rlimit64 *limit)
{
	static volatile int held;
	if (is_builder && !held) {
		held = 1;
		__atomic_store_n(&building, 1, __ATOMIC_RELEASE);
		sleep_ms(1000);
	}
	return (int)syscall(SYS_prlimit64, 0, resource, NULL, limit);
}

PLAIN static void *build_table(void *arg)
{
	(void)arg;
	is_builder = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0)
		close(fd);
	return NULL;
}

NOINLINE static int run_fd_init(void)
{
	pthread_t builder;
	if (pthread_create(&builder, NULL, build_table, NULL) != 0)
		return 1;
	while (!__atomic_load_n(&building, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		_exit(fd >= 0 ? 0 : 1);
	}
	double deadline = now_ms() + 5000;
	int status;
	pid_t done;
	while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(5);
	if (done == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		printf("child stuck\n");
	} else {
		printf("child %s\n",
		       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
	}
	pthread_join(builder, NULL);
	return 0;
}

/* ---- vfork-shared: what only a vfork child does: it runs before its
 * parent resumes, and its stores land in the parent's memory, as an exec
 * error reported that way (the exec fails: no such file). The child calls
 * an instrumented function, which must leave the parent's frames alone.
 * Prints "shared VALUE errno ERRNO". Spans: main, run_vfork_shared,
 * "exec missing", leaf (after the child). */
static volatile int shared_value;
static volatile int shared_errno;

NOINLINE static void in_vfork_child(void)
{
	shared_value = 1;
}

NOINLINE static int run_vfork_shared(void)
{
	pid_t pid = vfork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		in_vfork_child();
		execl("/nonexistent/missing", "missing", (char *)NULL);
		shared_errno = errno;
		_exit(0);
	}
	if (!exited_zero(pid))
		return 1;
	leaf(3);
	printf("shared %d errno %d\n", shared_value, shared_errno);
	return 0;
}

/* ---- vfork-big MB HOW: with MB of private writable memory (committed, not
 * touched), vfork (HOW vfork) or fork (HOW fork) a child that execs
 * /bin/true. Prints "ok" or the error: under vm.overcommit_memory=2 a
 * fork must commit as much again, a vfork nothing. Spans: main,
 * run_vfork_big, "exec true" (when the child starts). */
NOINLINE static int run_vfork_big(long mb, const char *how)
{
	size_t size = (size_t)mb << 20;
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("mmap %s\n", strerror(errno));
		return 1;
	}
	double start = now_ms();
	pid_t pid = strcmp(how, "vfork") == 0 ? vfork() : fork();
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		printf("%s %s\n", how, strerror(errno));
		return 0;
	}
	bool ok = exited_zero(pid);
	printf("%s ms %.2f\n", ok ? "ok" : "failed", now_ms() - start);
	return 0;
}

/* ---- relay-exit BURST GAP_MS [exec]: the parent, which hosts the relay,
 * exits while its child sends through it. The child makes BURST leaf spans
 * every GAP_MS (its exporter sends them as it goes:
 * OTEL_BSP_SCHEDULE_DELAY) until the parent is gone, then 5 bursts more,
 * and prints "child leaves N". The parent returns 50 ms after the child's
 * first burst, or with `exec` execs /bin/true, LD_PRELOAD removed. Spans:
 * main, run_relay_exit, relay_sender, N x leaf (and "exec true"). */
NOINLINE static void relay_sender(pid_t parent, int started_fd, int burst, long gap_ms)
{
	unsigned long made = 0;
	for (int after = 0; after < 5; after += getppid() != parent) {
		for (int i = 0; i < burst; i++)
			leaf((int)made++);
		if (started_fd >= 0 && (write(started_fd, "", 1) != 1 || close(started_fd) != 0))
			return;
		started_fd = -1;
		sleep_ms(gap_ms);
	}
	printf("child leaves %lu\n", made);
}

NOINLINE static int run_relay_exit(int burst, long gap_ms, bool exec_after)
{
	int started[2];
	if (pipe(started) != 0)
		return 1;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(started[0]);
		relay_sender(parent, started[1], burst, gap_ms);
		return 0;
	}
	close(started[1]);
	char byte;
	if (read(started[0], &byte, 1) != 1)
		return 1;
	sleep_ms(50);
	if (exec_after) {
		/* Not followed: the relay ends with this image. */
		unsetenv("LD_PRELOAD");
		execl("/bin/true", "true", (char *)NULL);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IONBF, 0); /* nothing buffered is written twice by children */
	if (strcmp(mode, "fork-loop") == 0 && argc > 2)
		return run_fork_loop(atoi(argv[2]), argc > 3 ? atol(argv[3]) : 400);
	if (strcmp(mode, "raw-fork") == 0 && argc > 3) {
		exit_how = argv[3];
		return run_raw_fork(argv[2], argc > 4 && strcmp(argv[4], "during-load") == 0);
	}
	if (strcmp(mode, "fd-init") == 0)
		return run_fd_init();
	if (strcmp(mode, "vfork-shared") == 0)
		return run_vfork_shared();
	if (strcmp(mode, "vfork-big") == 0 && argc > 3)
		return run_vfork_big(atol(argv[2]), argv[3]);
	if (strcmp(mode, "relay-exit") == 0 && argc > 3)
		return run_relay_exit(atoi(argv[2]), atol(argv[3]),
				      argc > 4 && strcmp(argv[4], "exec") == 0);
	fprintf(stderr, "forks: unknown mode %s\n", mode);
	return 2;
}
