/* The cost of recording one HTTP exchange's duration (src/metrics.c), as
 * hooks/http_metrics.c does it: the key built, the series looked up, the
 * cell added to.
 *
 *   bench_metrics [N]    N records per case (default 10000000), timed in 7
 *                        rounds: the median is printed
 *
 * Cases: a server exchange (nginx's: method and status only), a client one
 * with a server address, and 16 series in turn (a table lookup that misses
 * the last slot seen). */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* CPU time: the machine is shared, time spent preempted is not ours. */
static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

enum bench_case { SERVER, CLIENT, SIXTEEN };

/* As the hook builds it. */
static void make_key(struct oa_metric_key *k, enum bench_case c, long i)
{
	bool server = c != CLIENT;
	memset(k, 0, 16);
	k->metric = server ? OA_METRIC_HTTP_SERVER_DURATION : OA_METRIC_HTTP_CLIENT_DURATION;
	k->method = 0;
	k->status = c == SIXTEEN ? (uint16_t)(200 + (i & 15)) : 200;
	if (!server) {
		static const char host[] = "api.example.com";
		oa_metric_key_set_address(k, host, sizeof host - 1);
		k->port = 8080;
	}
}

static double time_case(enum bench_case c, long n)
{
	struct oa_metric_key k;
	double start = now_ns();
	for (long i = 0; i < n; i++) {
		make_key(&k, c, i);
		oa_metrics_record(&k, (uint64_t)(i & 0xfffff));
	}
	return (now_ns() - start) / (double)n;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	oa_clock_init(false, NULL);
	if (!oa_metrics_init(2000))
		return 1;
	static const char *const names[] = {"server exchange", "client exchange",
					    "16 series in turn"};
	for (int c = SERVER; c <= SIXTEEN; c++) {
		double rounds[7];
		time_case((enum bench_case)c, n / 10); /* warm: series made, pages touched */
		for (int r = 0; r < 7; r++)
			rounds[r] = time_case((enum bench_case)c, n);
		qsort(rounds, 7, sizeof rounds[0], compare);
		printf("%s: %.1f ns per record\n", names[c], rounds[3]);
	}
	return 0;
}
