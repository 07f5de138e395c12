/* What a fork costs a forking server (bench/run section 6), built with
 * -finstrument-functions:
 *
 *   forks fork N    N forks, each child leaving at once with _exit
 *   forks _Fork N   the same with _Fork: a child made without atfork handlers
 *
 * A span is made before each fork (with OTLPAUTO_FUNCTION_THRESHOLD=0), and
 * the loop starts 400 ms in, so the exporter has batches to send meanwhile.
 * Prints "per_fork_ms=A median_ms=M": the mean and the median time from one
 * fork to its child's reaping (a fork that waits for the exporter now and
 * then shows in the mean, not always in the median). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PLAIN __attribute__((no_instrument_function))

static volatile unsigned long sink;

__attribute__((noinline)) static void span(int i)
{
	sink += (unsigned long)i;
}

PLAIN static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

PLAIN static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "fork") != 0 && strcmp(argv[1], "_Fork") != 0)) {
		fprintf(stderr, "usage: forks fork|_Fork N\n");
		return 2;
	}
	bool raw = strcmp(argv[1], "_Fork") == 0;
	int n = atoi(argv[2]);
	double *each = calloc(n > 0 ? (size_t)n : 1, sizeof *each);
	if (!each || n <= 0)
		return 2;
	span(0);
	struct timespec settle = {0, 400000000};
	nanosleep(&settle, NULL);
	double start = now_ms();
	for (int i = 0; i < n; i++) {
		span(i);
		double t0 = now_ms();
		pid_t pid = raw ? _Fork() : fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(0);
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
			return 1;
		each[i] = now_ms() - t0;
	}
	double total = now_ms() - start;
	qsort(each, (size_t)n, sizeof *each, by_value);
	printf("per_fork_ms=%.3f median_ms=%.3f\n", total / n, each[n / 2]);
	free(each);
	return 0;
}
