/* Lifecycle and load scenarios for test_lifecycle.py and test_faults.py,
 * built with -finstrument-functions. Every instrumented function is a span
 * when OTLPAUTO_FUNCTION_THRESHOLD=0; helpers that must not count are
 * no_instrument_function. Usage: stress MODE [ARGS]; see main(). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define PLAIN	 __attribute__((no_instrument_function))

/* Updated by every thread: relaxed atomics keep ThreadSanitizer runs clean. */
static unsigned long sink;
#define TOUCH() __atomic_fetch_add(&sink, 1, __ATOMIC_RELAXED)

PLAIN static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

PLAIN static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

PLAIN static void ignore(ssize_t r)
{
	(void)r;
}

/* ---- threads-seq N: N threads created and joined one after another.
 * Spans: main, run_threads_seq, N x (seq_worker, seq_leaf). */

NOINLINE static void seq_leaf(void)
{
	TOUCH();
}

NOINLINE static void *seq_worker(void *arg)
{
	(void)arg;
	seq_leaf();
	return NULL;
}

NOINLINE static int run_threads_seq(int n)
{
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, seq_worker, NULL) != 0)
			return 1;
		pthread_join(t, NULL);
	}
	return 0;
}

/* ---- threads-par T N: T threads at once, each calling par_leaf N times.
 * Spans: main, run_threads_par, T x (par_worker, N x par_leaf). */

static pthread_barrier_t par_start;
static long par_calls;

NOINLINE static void par_leaf(void)
{
	TOUCH();
}

NOINLINE static void *par_worker(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&par_start);
	for (long i = 0; i < par_calls; i++)
		par_leaf();
	return NULL;
}

NOINLINE static int run_threads_par(int n_threads, long calls)
{
	pthread_t t[256];
	if (n_threads > 256)
		return 2;
	par_calls = calls;
	pthread_barrier_init(&par_start, NULL, (unsigned)n_threads);
	for (int i = 0; i < n_threads; i++)
		if (pthread_create(&t[i], NULL, par_worker, NULL) != 0)
			return 1;
	for (int i = 0; i < n_threads; i++)
		pthread_join(t[i], NULL);
	printf("produced %ld\n", 2 + (long)n_threads * (calls + 1));
	return 0;
}

/* ---- fork-busy T F: T threads stay inside hooks (function hooks, socket
 * calls, thread creation) while the main thread forks F children one after
 * another. Each child runs fork_child_work -> fork_child_leaf and exits; a
 * child that does not exit within 10 s is reported stuck (exit status 3).
 * busy_tiny is meant to be excluded (OTLPAUTO_FUNCTION_EXCLUDE) so that the
 * busy threads spend their time in the hooks without flooding the receiver. */

static atomic_int busy_stop;
static atomic_int busy_running;

NOINLINE static void busy_tiny(void)
{
	TOUCH();
}
NOINLINE static void busy_mark(void)
{
	TOUCH();
}
NOINLINE static void *busy_short_thread(void *arg)
{
	return arg;
}

NOINLINE static void *busy_worker(void *arg)
{
	long index = (long)arg;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return NULL;
	char *scratch = NULL;
	atomic_fetch_add(&busy_running, 1);
	while (!atomic_load(&busy_stop)) {
		for (int i = 0; i < 256; i++)
			busy_tiny();
		busy_mark();
		char c = 'x';
		ignore(send(sv[0], &c, 1, 0));
		ignore(recv(sv[1], &c, 1, 0));
		free(scratch);
		scratch = malloc(64 + (size_t)(__atomic_load_n(&sink, __ATOMIC_RELAXED) & 1023));
		if (index == 0) {
			pthread_t t;
			if (pthread_create(&t, NULL, busy_short_thread, NULL) == 0)
				pthread_join(t, NULL);
		}
	}
	free(scratch);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

NOINLINE static void fork_child_leaf(void)
{
	TOUCH();
}
NOINLINE static void fork_child_work(void)
{
	fork_child_leaf();
}

/* Waits up to limit_s for the child; false (and a message) unless it
 * exited 0. */
PLAIN static bool wait_child(pid_t pid, int index, double limit_s)
{
	double until = now_s() + limit_s;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return true;
		if (r == pid) {
			fprintf(stderr, "child %d: status 0x%x\n", index, status);
			return false;
		}
		if (r < 0 || now_s() > until) {
			fprintf(stderr, "child %d: stuck\n", index);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return false;
		}
		sleep_ms(1);
	}
}

NOINLINE static int run_fork_busy(int n_threads, int forks)
{
	pthread_t t[64];
	if (n_threads > 64)
		return 2;
	for (long i = 0; i < n_threads; i++)
		if (pthread_create(&t[i], NULL, busy_worker, (void *)i) != 0)
			return 1;
	while (atomic_load(&busy_running) < n_threads)
		sleep_ms(1);
	int result = 0;
	for (int i = 0; i < forks && result == 0; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			result = 1;
		} else if (pid == 0) {
			fork_child_work();
			exit(0);
		} else if (!wait_child(pid, i, 10)) {
			result = 3;
		}
	}
	atomic_store(&busy_stop, 1);
	for (int i = 0; i < n_threads; i++)
		pthread_join(t[i], NULL);
	printf("forked %d\n", forks);
	return result;
}

/* ---- sigstorm MS USEC: SIGALRM every USEC us of wall time and SIGPROF
 * every USEC us of CPU time (rounded up to the kernel tick) for MS ms while
 * two threads run instrumented loops; the handler calls an instrumented
 * function and write/send. Prints the number of ticks. */

static atomic_long ticks;
static int storm_fd = -1;
static int storm_sv[2] = {-1, -1};

NOINLINE static void tick_leaf(void)
{
	TOUCH();
}

NOINLINE static void tick_work(void)
{
	tick_leaf();
	char c = 't';
	ignore(write(storm_fd, &c, 1));
	ignore(send(storm_sv[0], &c, 1, MSG_DONTWAIT));
	ignore(recv(storm_sv[1], &c, 1, MSG_DONTWAIT));
}

NOINLINE static void on_prof(int sig)
{
	(void)sig;
	int saved = errno;
	atomic_fetch_add(&ticks, 1);
	tick_work();
	errno = saved;
}

static atomic_int storm_stop;

NOINLINE static void storm_leaf(void)
{
	TOUCH();
}

NOINLINE static void storm_unit(void)
{
	for (int i = 0; i < 8; i++)
		storm_leaf();
}

NOINLINE static void *storm_worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&storm_stop))
		storm_unit();
	return NULL;
}

NOINLINE static int run_sigstorm(long ms, long usec)
{
	storm_fd = open("/dev/null", O_WRONLY);
	if (storm_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, storm_sv) != 0)
		return 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_prof;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPROF, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, storm_worker, NULL) != 0)
		return 1;
	struct itimerval it = {{0, usec}, {0, usec}};
	setitimer(ITIMER_PROF, &it, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	double until = now_s() + (double)ms / 1000;
	while (now_s() < until)
		storm_unit();
	atomic_store(&storm_stop, 1);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_PROF, &off, NULL);
	setitimer(ITIMER_REAL, &off, NULL);
	pthread_join(t, NULL);
	printf("ticks %ld\n", atomic_load(&ticks));
	return 0;
}

/* ---- detached T MS: T detached threads loop in instrumented code (some of
 * it sleeping inside a frame) while main returns after MS ms. */

NOINLINE static void det_nap(void)
{
	sleep_ms(1);
}
NOINLINE static void det_leaf(void)
{
	TOUCH();
}

NOINLINE static void *det_worker(void *arg)
{
	(void)arg;
	for (;;) {
		for (int i = 0; i < 64; i++)
			det_leaf();
		det_nap();
	}
	return NULL;
}

NOINLINE static int run_detached(int n_threads, long ms)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < n_threads; i++) {
		pthread_t t;
		if (pthread_create(&t, &attr, det_worker, NULL) != 0)
			return 1;
	}
	sleep_ms(ms);
	printf("leaving\n");
	fflush(stdout);
	return 0;
}

/* ---- produce S T: T threads call prod_leaf as fast as they can for S
 * seconds (the collector-down memory test). Prints the call count. */

static double prod_until;
static atomic_long prod_calls;

NOINLINE static void prod_leaf(void)
{
	TOUCH();
}

NOINLINE static void *prod_worker(void *arg)
{
	(void)arg;
	long n = 0;
	while (now_s() < prod_until) {
		for (int i = 0; i < 1000; i++)
			prod_leaf();
		n += 1000;
	}
	atomic_fetch_add(&prod_calls, n);
	return NULL;
}

NOINLINE static int run_produce(double seconds, int n_threads)
{
	pthread_t t[64];
	if (n_threads > 64)
		return 2;
	prod_until = now_s() + seconds;
	printf("started\n");
	fflush(stdout);
	for (int i = 0; i < n_threads; i++)
		if (pthread_create(&t[i], NULL, prod_worker, NULL) != 0)
			return 1;
	for (int i = 0; i < n_threads; i++)
		pthread_join(t[i], NULL);
	printf("calls %ld\n", atomic_load(&prod_calls));
	return 0;
}

PLAIN static long arg(int argc, char **argv, int i, long fallback)
{
	return argc > i ? atol(argv[i]) : fallback;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "threads-seq") == 0)
		return run_threads_seq((int)arg(argc, argv, 2, 500));
	if (strcmp(mode, "threads-par") == 0)
		return run_threads_par((int)arg(argc, argv, 2, 32), arg(argc, argv, 3, 1000));
	if (strcmp(mode, "fork-busy") == 0)
		return run_fork_busy((int)arg(argc, argv, 2, 4), (int)arg(argc, argv, 3, 50));
	if (strcmp(mode, "sigstorm") == 0)
		return run_sigstorm(arg(argc, argv, 2, 1000), arg(argc, argv, 3, 100));
	if (strcmp(mode, "detached") == 0)
		return run_detached((int)arg(argc, argv, 2, 8), arg(argc, argv, 3, 100));
	if (strcmp(mode, "produce") == 0)
		return run_produce((double)arg(argc, argv, 2, 10), (int)arg(argc, argv, 3, 2));
	fprintf(stderr, "stress: unknown mode %s\n", mode);
	return 2;
}
