/* Memory probe: starts N threads (0 for an idle process) that each make one
 * instrumented call, then wait; once all have made it and the tracer had
 * time to export, prints the process's resident set, in all and split
 * into anonymous and file-backed pages: rss_kb=K anon_kb=A file_kb=F.
 * Built with -finstrument-functions; only bench_span is instrumented, so
 * with OTLPAUTO_FUNCTION_THRESHOLD=0 each thread makes exactly one span. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOTRACE __attribute__((no_instrument_function))

static pthread_barrier_t made, done;

__attribute__((noipa)) void bench_span(void);
__attribute__((noipa)) void bench_span(void)
{
}

NOTRACE static void *thread_main(void *arg)
{
	(void)arg;
	bench_span();
	pthread_barrier_wait(&made);
	pthread_barrier_wait(&done);
	return NULL;
}

/* A "Name:   123 kB" line of /proc/self/status; -1 when absent. */
NOTRACE static long status_kb(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	size_t len = strlen(name);
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, name, len) == 0 && line[len] == ':')
			kb = atol(line + len + 1);
	if (f)
		fclose(f);
	return kb;
}

NOTRACE int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0;
	if (n < 0 || n > 4096) {
		fprintf(stderr, "usage: %s [threads]\n", argv[0]);
		return 2;
	}
	pthread_t *tids = calloc((size_t)n + 1, sizeof *tids);
	pthread_barrier_init(&made, NULL, (unsigned)n + 1);
	pthread_barrier_init(&done, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, thread_main, NULL) != 0) {
			perror("pthread_create");
			return 1;
		}
	pthread_barrier_wait(&made);
	/* Long enough for the exporter to wake, drain and send. */
	usleep(300000);
	printf("threads=%d rss_kb=%ld anon_kb=%ld file_kb=%ld\n", n, status_kb("VmRSS"),
	       status_kb("RssAnon"), status_kb("RssFile"));
	pthread_barrier_wait(&done);
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	return 0;
}
