/* The function-hook workload: N calls of a tiny function, timed inside the
 * process so that start-up, symbol loading and the tracer's final flush are
 * not in the figure. Meson builds it twice, with and without
 * -finstrument-functions; every hook pair that runs is one bench_leaf call.
 *
 * Prints one line: calls=N ns_per_call=X cpu_ns_per_call=C thread_cpu_ns=Y.
 * X is wall time; C is the main thread's CPU time over the same loop, which
 * other processes on a busy machine do not inflate but which leaves out any
 * time the hooks wait. Y is the main thread's CPU time up to the end of the
 * loop: the rest of the process's CPU time belongs to threads the tracer
 * started (the exporter). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* noipa: no inlining, cloning or constant folding, so every iteration is a
 * real call (and, instrumented, a real enter/exit pair). */
__attribute__((noipa)) int bench_leaf(int x);
__attribute__((noipa)) int bench_leaf(int x)
{
	return x * 3 + 1;
}

static long long ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	if (n <= 0) {
		fprintf(stderr, "usage: %s [calls]\n", argv[0]);
		return 2;
	}
	unsigned acc = 0;
	long long c0 = ns(CLOCK_THREAD_CPUTIME_ID), t0 = ns(CLOCK_MONOTONIC);
	for (long i = 0; i < n; i++)
		acc += (unsigned)bench_leaf((int)i);
	long long t1 = ns(CLOCK_MONOTONIC), c1 = ns(CLOCK_THREAD_CPUTIME_ID);
	printf("calls=%ld ns_per_call=%.3f cpu_ns_per_call=%.3f thread_cpu_ns=%lld acc=%u\n", n,
	       (double)(t1 - t0) / (double)n, (double)(c1 - c0) / (double)n, c1, acc);
	return 0;
}
