/* The database protocol parsers and the SQL sanitiser alone (src/resp_parse.c,
 * src/pg_parse.c, src/mysql_parse.c, src/sql_sanitize.c): ns per command with
 * its reply, each direction fed as the socket hooks would feed it.
 *
 *   bench_db_parse [N]    N commands per case (default 1000000), timed in 7
 *                         rounds: the median is printed
 *
 * Cases: redis-benchmark's SET and GET, one per feed and 16 per feed (-P 16);
 * pgbench's extended-protocol SELECT (Parse/Bind/Describe/Execute/Sync and
 * its answer) and a simple Query with its answer; a MySQL COM_QUERY with its
 * result set; and sanitising plus summarising pgbench's query text. */
#include "mysql_parse.h"
#include "pg_parse.h"
#include "resp_parse.h"
#include "sql_sanitize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* redis-benchmark's commands (key and value of its defaults) and replies. */
static const char redis_set[] = "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n";
static const char redis_set_reply[] = "+OK\r\n";
static const char redis_get[] = "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n";
static const char redis_get_reply[] = "$3\r\nxxx\r\n";

/* pgbench -M extended's select-only transaction, as captured from PostgreSQL 15. */
static const char pg_extended[] =
    "P\000\000\000\061\000SELECT email FROM accounts WHERE id = $1;\000\000\000"
    "B\000\000\000\023\000\000\000\000\000\001\000\000\000\0012\000\001\000\000"
    "D\000\000\000\006P\000E\000\000\000\011\000\000\000\000\000S\000\000\000\004";
static const char pg_extended_reply[] =
    "1\000\000\000\0042\000\000\000\004T\000\000\000\036\000\001email\000\000\000@\000\000\002"
    "\000\000\000\031\377\377\377\377\377\377\000\000D\000\000\000\031\000\001\000\000\000\017"
    "bob@example.comC\000\000\000\rSELECT 1\000Z\000\000\000\005I";
static const char pg_simple[] = "Q\000\000\000\066SELECT id, email FROM accounts WHERE balance > 5;"
				"\000";
static const char pg_simple_reply[] =
    "T\000\000\000\063\000\002id\000\000\000@\000\000\001\000\000\000\027\000\004\377\377\377"
    "\377\000\000email\000\000\000@\000\000\002\000\000\000\031\377\377\377\377\377\377\000"
    "\000D\000\000\000\036\000\002\000\000\000\0012\000\000\000\017bob@example.comC\000\000"
    "\000\rSELECT 1\000Z\000\000\000\005I";

/* A COM_QUERY and its one-column, one-row result set (CLIENT_DEPRECATE_EOF). */
static const char mysql_query[] = "\050\000\000\000\003SELECT email FROM accounts WHERE id = 2";
static const char mysql_result[] =
    "\001\000\000\001\001"
    "\064\000\000\002\003def\004shop\010accounts\010accounts\005email\005email\014\055\000"
    "\000\004\000\000\375\000\000\000\000\000"
    "\020\000\000\003\017bob@example.com"
    "\007\000\000\004\376\000\000\002\000\000\000";

/* CPU time: the machine is shared, time spent preempted is not the parser's. */
static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void fail(const char *what, size_t events, size_t expected)
{
	fprintf(stderr, "bench_db_parse: %s: %zu events, not %zu\n", what, events, expected);
	exit(1);
}

static size_t feed_resp(struct oa_resp_parser *p, const char *data, size_t len)
{
	size_t events = 0;
	struct oa_resp_event ev;
	for (size_t done = 0; done < len;) {
		done += oa_resp_feed(p, (const uint8_t *)data + done, len - done, &ev);
		events += ev.kind != OA_RESP_NONE;
	}
	return events;
}

static size_t feed_pg(struct oa_pg_parser *p, const char *data, size_t len)
{
	size_t events = 0;
	struct oa_pg_event ev;
	for (size_t done = 0; done < len;) {
		done += oa_pg_feed(p, (const uint8_t *)data + done, len - done, &ev);
		events += ev.kind != OA_PG_NONE;
	}
	return events;
}

static size_t feed_mysql(struct oa_mysql_parser *p, const char *data, size_t len)
{
	size_t events = 0;
	struct oa_mysql_event ev;
	for (size_t done = 0; done < len;) {
		done += oa_mysql_feed(p, (const uint8_t *)data + done, len - done, &ev);
		events += ev.kind != OA_MYSQL_NONE;
	}
	return events;
}

/* One case: ns per command (with its reply) over n commands. */
typedef double (*bench_fn)(long n);

/* redis-benchmark's SET then GET, `depth` commands per feed. */
static double redis_pipelined(long n, int depth)
{
	static char commands[64 * 128], replies[64 * 32];
	size_t commands_len = 0, replies_len = 0, events = 0;
	for (int i = 0; i < depth; i++) {
		const char *c = i % 2 ? redis_get : redis_set;
		const char *r = i % 2 ? redis_get_reply : redis_set_reply;
		memcpy(commands + commands_len, c, strlen(c));
		commands_len += strlen(c);
		memcpy(replies + replies_len, r, strlen(r));
		replies_len += strlen(r);
	}
	struct oa_resp_parser cp, rp;
	oa_resp_parser_init(&cp, OA_RESP_COMMANDS);
	oa_resp_parser_init(&rp, OA_RESP_REPLIES);
	long rounds = n / depth;
	double start = now_ns();
	for (long i = 0; i < rounds; i++) {
		events += feed_resp(&cp, commands, commands_len);
		events += feed_resp(&rp, replies, replies_len);
	}
	double ns = (now_ns() - start) / (double)(rounds * depth);
	if (events != (size_t)(rounds * depth * 2))
		fail("redis", events, (size_t)(rounds * depth * 2));
	return ns;
}

static double redis_one(long n)
{
	return redis_pipelined(n, 2);
}

static double redis_sixteen(long n)
{
	return redis_pipelined(n, 16);
}

static double pg_round(long n, const char *req, size_t req_len, const char *resp, size_t resp_len,
		       size_t expected)
{
	struct oa_pg_parser fp, bp;
	oa_pg_parser_init(&fp, OA_PG_FRONTEND);
	oa_pg_parser_init(&bp, OA_PG_BACKEND);
	/* Past the startup phase: a StartupMessage first. */
	feed_pg(&fp, "\000\000\000\011\000\003\000\000\000", 9);
	size_t events = 0;
	double start = now_ns();
	for (long i = 0; i < n; i++) {
		events += feed_pg(&fp, req, req_len);
		events += feed_pg(&bp, resp, resp_len);
	}
	double ns = (now_ns() - start) / (double)n;
	if (events != (size_t)n * expected)
		fail("pg", events, (size_t)n * expected);
	return ns;
}

static double pg_extended_round(long n)
{
	/* P B D E S; 1 2 T C Z (the DataRow is skipped). */
	return pg_round(n, pg_extended, sizeof pg_extended - 1, pg_extended_reply,
			sizeof pg_extended_reply - 1, 10);
}

static double pg_simple_round(long n)
{
	return pg_round(n, pg_simple, sizeof pg_simple - 1, pg_simple_reply,
			sizeof pg_simple_reply - 1, 4);
}

static double mysql_round(long n)
{
	struct oa_mysql_parser cp, sp;
	oa_mysql_parser_init(&cp, OA_MYSQL_CLIENT);
	oa_mysql_parser_init(&sp, OA_MYSQL_SERVER);
	/* Past the login: a handshake response, a greeting and its OK. */
	static const char login[] = "\045\000\000\001\010\242\000\001\000\000\000\001\055"
				    "\000\000\000\000\000\000\000\000\000\000\000\000\000\000"
				    "\000\000\000\000\000\000\000\000\000app\000\000";
	static const char greeting[] = "\044\000\000\000\n8.0\000\001\000\000\000abcdefgh\000"
				       "\377\377\377\002\000\377\337\000\000\000\000\000\000"
				       "\000\000\000\000\000"
				       "\007\000\000\002\000\000\000\002\000\000\000";
	feed_mysql(&cp, login, sizeof login - 1);
	feed_mysql(&sp, greeting, sizeof greeting - 1);
	oa_mysql_set_client_capabilities(&sp, 0x0100a208);
	size_t events = 0;
	double start = now_ns();
	for (long i = 0; i < n; i++) {
		events += feed_mysql(&cp, mysql_query, sizeof mysql_query - 1);
		oa_mysql_expect_response(&sp, OA_MYSQL_COM_QUERY);
		events += feed_mysql(&sp, mysql_result, sizeof mysql_result - 1);
	}
	double ns = (now_ns() - start) / (double)n;
	if (events != (size_t)n * 2)
		fail("mysql", events, (size_t)n * 2);
	return ns;
}

static double sanitize_round(long n)
{
	static const char query[] = "SELECT email FROM accounts WHERE id = 2 AND name = 'bob'";
	char out[128];
	struct oa_sql_summary s;
	size_t total = 0;
	double start = now_ns();
	for (long i = 0; i < n; i++) {
		total +=
		    oa_sql_sanitize(query, sizeof query - 1, OA_SQL_POSTGRESQL, out, sizeof out);
		oa_sql_summarize(query, sizeof query - 1, OA_SQL_POSTGRESQL, &s);
		total += strlen(s.collection);
	}
	double ns = (now_ns() - start) / (double)n;
	if (total != (size_t)n * (52 + 8))
		fail("sanitize", total, (size_t)n * (52 + 8));
	return ns;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of ROUNDS timings: the machine is shared. */
#define ROUNDS 7

static void run(const char *name, bench_fn fn, long n)
{
	double ns[ROUNDS];
	for (int r = 0; r < ROUNDS; r++)
		ns[r] = fn(n / ROUNDS);
	qsort(ns, ROUNDS, sizeof ns[0], by_value);
	printf("%-20s ns_per_command=%.1f\n", name, ns[ROUNDS / 2]);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	run("redis_set_get", redis_one, n);
	run("redis_set_get_P16", redis_sixteen, n);
	run("pg_extended_select", pg_extended_round, n);
	run("pg_simple_query", pg_simple_round, n);
	run("mysql_query", mysql_round, n);
	run("sql_sanitize_summary", sanitize_round, n);
	return 0;
}
