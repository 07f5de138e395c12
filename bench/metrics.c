/* The cost of recording one HTTP exchange's or database operation's
 * duration (src/metrics.c), as hooks/http_metrics.c and hooks/db_metrics.c
 * do it: the key built, the series looked up, the cell added to.
 *
 *   bench_metrics [N]    N records per case (default 10000000), timed in 7
 *                        rounds: the median is printed
 *
 * Cases: a server exchange (nginx's: method and status only), a client one
 * with a server address, 16 series in turn (a table lookup that misses the
 * last slot seen), a Redis command (redis-benchmark's GET: namespace,
 * operation, IPv4 server) and a PostgreSQL query with a collection. */
#include "metrics.h"

#include <netinet/in.h>
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

enum bench_case { SERVER, CLIENT, SIXTEEN, REDIS, POSTGRESQL, CASES };

static const struct in_addr loopback = {.s_addr = 0x0100007f};

/* As the hooks build it. */
static void make_key(struct oa_metric_key *k, enum bench_case c, long i)
{
	static const char host[] = "api.example.com";
	if (c == REDIS || c == POSTGRESQL) {
		bool redis = c == REDIS;
		struct oa_db_metric_attrs attrs = {
		    .system = redis ? OA_DB_REDIS : OA_DB_POSTGRESQL,
		    .ip_version = 4,
		    .address = &loopback,
		    .port = redis ? 6379 : 5432,
		    .name_space = redis ? "0" : "shop",
		    .name_space_len = redis ? 1 : 4,
		    .operation = redis ? "GET" : "SELECT",
		    .operation_len = redis ? 3 : 6,
		    .collection = redis ? NULL : "accounts",
		    .collection_len = redis ? 0 : 8,
		};
		oa_metric_key_db(k, &attrs);
		return;
	}
	struct oa_http_metric_attrs attrs = {
	    .status = c == SIXTEEN ? (uint16_t)(200 + (i & 15)) : 200,
	    .address = c == CLIENT ? host : NULL,
	    .address_len = c == CLIENT ? sizeof host - 1 : 0,
	    .port = c == CLIENT ? 8080 : 0,
	};
	oa_metric_key_http(
	    k, c == CLIENT ? OA_METRIC_HTTP_CLIENT_DURATION : OA_METRIC_HTTP_SERVER_DURATION,
	    &attrs);
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
	static const char *const names[CASES] = {"server exchange", "client exchange",
						 "16 series in turn", "redis command",
						 "postgresql query"};
	for (int c = SERVER; c < CASES; c++) {
		double rounds[7];
		time_case((enum bench_case)c, n / 10); /* warm: series made, pages touched */
		for (int r = 0; r < 7; r++)
			rounds[r] = time_case((enum bench_case)c, n);
		qsort(rounds, 7, sizeof rounds[0], compare);
		printf("%s: %.1f ns per record\n", names[c], rounds[3]);
	}
	return 0;
}
