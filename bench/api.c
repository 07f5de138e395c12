/* The manual API's cost per operation, in ns: span start+end, a span with 1,
 * 10, 50 and 100 integer attributes (and the cost per attribute), the same
 * for an unsampled span (OTEL_TRACES_SAMPLER=always_off), and start+end
 * without the shim loaded. Targets: start+end <= 50 ns, <= 10 ns per
 * attribute.
 *
 *     bench_api [path/to/libotlpauto.so]
 *
 * The library is the argument, else LD_PRELOAD, else the one built beside.
 * Each configuration runs in a fresh process (the sampler is read at start)
 * with the default ring, no export (OTEL_TRACES_EXPORTER=none) and block
 * backpressure: every span is recorded (dropping would be cheaper), and the
 * producer sleeps while the exporter drains a full ring. Times are the
 * producing thread's CPU time, which counts neither those sleeps nor other
 * processes on a busy machine: the producer's cost per span, sustained over
 * runs of RUN_SLOTS ring slots. Each figure is the median of RUNS runs. */
#include <otlpauto.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS	  5
#define RUN_SLOTS 200000
#define MAX_ATTRS 100
#define CASE_VAR  "OTLPAUTO_BENCH_API_CASE"

static const int attr_counts[] = {1, 10, 50, 100};
#define N_ATTR_COUNTS (sizeof attr_counts / sizeof attr_counts[0])

static char keys[MAX_ATTRS][16];

/* The thread's CPU time: the figures hold on a loaded machine, where the
 * wall clock would count the time other processes ran. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ns per span of n spans with `attrs` integer attributes each. */
static double time_spans(int attrs, long n)
{
	uint64_t start = cpu_ns();
	for (long i = 0; i < n; i++) {
		otlpauto_span *span = otlpauto_span_start("bench.span", OTLPAUTO_KIND_INTERNAL);
		for (int k = 0; k < attrs; k++)
			otlpauto_span_set_int(span, keys[k], i);
		otlpauto_span_end(span);
	}
	return (double)(cpu_ns() - start) / (double)n;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median_ns(int attrs)
{
	/* A record: 72-byte header, the name, 19 bytes per attribute. */
	long slots = (72 + 16 + 19L * attrs + 127) / 128;
	long n = RUN_SLOTS / slots;
	double runs[RUNS];
	for (int r = 0; r < RUNS; r++)
		runs[r] = time_spans(attrs, n);
	qsort(runs, RUNS, sizeof runs[0], compare_double);
	return runs[RUNS / 2];
}

static int run_case(const char *which)
{
	for (int k = 0; k < MAX_ATTRS; k++)
		snprintf(keys[k], sizeof keys[k], "attr.%02d", k);
	time_spans(0, RUN_SLOTS); /* warm-up: pages, caches, the exporter thread */
	double base = median_ns(0);
	if (strcmp(which, "noshim") == 0) {
		printf("span start+end, no shim loaded: %.1f ns\n", base);
		return 0;
	}
	bool sampled = strcmp(which, "sampled") == 0;
	const char *label = sampled ? "" : "unsampled ";
	printf("%sspan start+end%s: %.1f ns%s\n", label, sampled ? "" : " (always_off)", base,
	       sampled ? " (target <= 50)" : "");
	for (size_t i = 0; i < N_ATTR_COUNTS; i++) {
		int attrs = attr_counts[i];
		double ns = median_ns(attrs);
		printf("%sspan with %d attribute%s: %.1f ns, %.1f ns per attribute%s\n", label,
		       attrs, attrs == 1 ? "" : "s", ns, (ns - base) / attrs,
		       sampled ? " (target <= 10)" : "");
	}
	return 0;
}

extern char **environ;

/* Runs this program again for one configuration. The exec is the raw system
 * call: the shim's execve would hand its own settings and LD_PRELOAD on. */
static int spawn_case(const char *which, const char *lib)
{
	static const char *const settings[] = {
	    "OTEL_TRACES_EXPORTER=none",
	    "OTLPAUTO_BACKPRESSURE=block",
	    /* No queue bound below the ring's: the exporter drains it in
	     * large batches, the producer sleeps seldom. */
	    "OTEL_BSP_MAX_QUEUE_SIZE=1048576",
	    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4096",
	    "OTEL_BSP_SCHEDULE_DELAY=5",
	};
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	const char **env = calloc(n + 16, sizeof *env);
	char preload[4096], sampler[64], case_var[64];
	if (!env)
		return 1;
	size_t out = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "OTEL_", 5) != 0 && strncmp(*e, "OTLPAUTO_", 9) != 0 &&
		    strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "TRACEPARENT=", 12) != 0)
			env[out++] = *e;
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
		env[out++] = settings[i];
	snprintf(sampler, sizeof sampler, "OTEL_TRACES_SAMPLER=%s",
		 strcmp(which, "unsampled") == 0 ? "always_off" : "always_on");
	env[out++] = sampler;
	snprintf(case_var, sizeof case_var, "%s=%s", CASE_VAR, which);
	env[out++] = case_var;
	if (strcmp(which, "noshim") != 0) {
		snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
		env[out++] = preload;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = {"bench_api", NULL};
		syscall(SYS_execve, "/proc/self/exe", argv, env);
		_exit(127);
	}
	free(env);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* The first entry of LD_PRELOAD naming libotlpauto, if any. */
static const char *preloaded_lib(char *buf, size_t size)
{
	const char *preload = getenv("LD_PRELOAD");
	if (!preload)
		return NULL;
	for (const char *p = preload; *p;) {
		size_t len = strcspn(p, ": ");
		if (len < size && len >= 14 && strncmp(p + len - 14, "libotlpauto.so", 14) == 0) {
			memcpy(buf, p, len);
			buf[len] = 0;
			return buf;
		}
		p += len;
		p += strspn(p, ": ");
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *which = getenv(CASE_VAR);
	if (which)
		return run_case(which);
	char buf[4096];
	const char *lib = argc > 1 ? argv[1] : preloaded_lib(buf, sizeof buf);
	if (!lib)
		lib = OTLPAUTO_BENCH_LIB;
	int failed = 0;
	failed |= spawn_case("sampled", lib);
	failed |= spawn_case("unsampled", lib);
	failed |= spawn_case("noshim", lib);
	return failed;
}
