#include "check.h"
#include "pg_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 128

/* An event with its strings copied and its end made absolute. */
struct record {
	struct oa_pg_event ev;
	size_t end; /* bytes of the whole input consumed when it came */
	char query[OA_PG_TEXT_CAP], statement[OA_PG_NAME_CAP], tag[OA_PG_TEXT_CAP];
	char user[OA_PG_NAME_CAP], database[OA_PG_TEXT_CAP];
	char sqlstate[6], severity[OA_PG_SEVERITY_CAP];
};

struct run {
	struct record records[MAX_RECORDS];
	size_t n;
};

/* How the parser is set up: the role, and whether the backend parser is
 * told of an SSLRequest before the first byte. */
struct setup {
	enum oa_pg_role role;
	bool expect_answer;
};

static const struct setup frontend = {OA_PG_FRONTEND, false};
static const struct setup backend = {OA_PG_BACKEND, false};
static const struct setup backend_after_ssl_request = {OA_PG_BACKEND, true};

static void copy_string(char *dst, const char *src, size_t cap)
{
	memset(dst, 0, cap);
	if (src) {
		CHECK(strlen(src) < cap);
		strncat(dst, src, cap - 1);
	}
}

/* Feeds data in pieces ending at each cut (and at len). */
static void run_cuts(const struct setup *s, const char *data, size_t len, const size_t *cuts,
		     size_t n_cuts, struct run *r)
{
	struct oa_pg_parser p;
	oa_pg_parser_init(&p, s->role);
	if (s->expect_answer)
		oa_pg_expect_encryption_answer(&p);
	memset(r, 0, sizeof *r);
	size_t start = 0;
	for (size_t c = 0; c <= n_cuts; c++) {
		size_t end = c < n_cuts ? cuts[c] : len;
		while (start < end) {
			struct oa_pg_event ev;
			size_t used =
			    oa_pg_feed(&p, (const uint8_t *)data + start, end - start, &ev);
			CHECK(used > 0 && used <= end - start);
			start += used;
			if (ev.kind == OA_PG_NONE) {
				CHECK_EQ_INT(start, end);
				continue;
			}
			if (r->n == MAX_RECORDS)
				continue;
			struct record *rec = &r->records[r->n++];
			memcpy(&rec->ev, &ev, sizeof rec->ev);
			rec->end = start;
			copy_string(rec->query, ev.query, sizeof rec->query);
			copy_string(rec->statement, ev.statement, sizeof rec->statement);
			copy_string(rec->tag, ev.tag, sizeof rec->tag);
			copy_string(rec->user, ev.user, sizeof rec->user);
			copy_string(rec->database, ev.database, sizeof rec->database);
			copy_string(rec->sqlstate, ev.sqlstate, sizeof rec->sqlstate);
			copy_string(rec->severity, ev.severity, sizeof rec->severity);
			/* Which strings were set, not where they were. */
			rec->ev.query = ev.query ? "" : NULL;
			rec->ev.statement = ev.statement ? "" : NULL;
			rec->ev.tag = ev.tag ? "" : NULL;
			rec->ev.user = ev.user ? "" : NULL;
			rec->ev.database = ev.database ? "" : NULL;
			rec->ev.sqlstate = ev.sqlstate ? "" : NULL;
			rec->ev.severity = ev.severity ? "" : NULL;
		}
	}
}

static bool same_runs(const struct run *a, const struct run *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (memcmp(&a->records[i], &b->records[i], sizeof a->records[i]) != 0)
			return false;
	return true;
}

/* The events of a whole feed equal those of every two-piece split, of a
 * byte-at-a-time feed and of random pieces. */
static void check_split_invariance(const struct setup *s, const char *data, size_t len,
				   const struct run *whole)
{
	struct run *other = malloc(sizeof *other);
	size_t *cuts = malloc((len + 1) * sizeof *cuts);
	int failures = 0;
	for (size_t split = 0; split <= len; split++) {
		run_cuts(s, data, len, &split, 1, other);
		if (!same_runs(whole, other) && !failures++)
			fprintf(stderr, "first differing split point: %zu\n", split);
	}
	CHECK_EQ_INT(failures, 0);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	run_cuts(s, data, len, cuts, len ? len - 1 : 0, other);
	CHECK(same_runs(whole, other));
	srand(17);
	for (int round = 0; round < 50; round++) {
		size_t n = 0;
		for (size_t at = (size_t)rand() % 7; at < len; at += 1 + (size_t)rand() % 13)
			cuts[n++] = at;
		run_cuts(s, data, len, cuts, n, other);
		CHECK(same_runs(whole, other));
	}
	free(cuts);
	free(other);
}

static struct run *parse(const struct setup *s, const char *data, size_t len)
{
	static struct run r;
	run_cuts(s, data, len, NULL, 0, &r);
	check_split_invariance(s, data, len, &r);
	return &r;
}

#define PARSE(setup, literal) parse(setup, literal, sizeof literal - 1)

static void check_message(const struct record *rec, uint8_t type)
{
	CHECK_EQ_INT(rec->ev.kind, OA_PG_MESSAGE);
	CHECK_EQ_INT(rec->ev.type, type);
}

/* psql 15 against PostgreSQL 15 (sslmode=prefer, the server without SSL):
 * a script of simple queries, a syntax error, a unique-key violation, a
 * password change, a transaction, COPY out and COPY in. */
static const char psql_frontend[] =
    "\000\000\000\010\004\322\026/\000\000\000?\000\003\000\000user\000postgres\000database"
    "\000postgres\000application_name\000psql\000\000Q\000\000\000MCREATE TABLE accounts (id "
    "int PRIMARY KEY, email text, balance numeric);\000Q\000\000\000\\INSERT INTO accounts VA"
    "LUES (1, 'alice@example.com', 10.5), (2, 'bob@example.com', 20);\000Q\000\000\0006SELECT"
    " id, email FROM accounts WHERE balance > 5;\000Q\000\000\000\rSELEC 1;\000Q\000\000\000;"
    "INSERT INTO accounts VALUES (1, 'dup@example.com', 0);\000Q\000\000\000,ALTER USER postg"
    "res PASSWORD 'hunter2';\000Q\000\000\000\013BEGIN;\000Q\000\000\000<UPDATE accounts SET "
    "balance = balance + 1 WHERE id = 2;\000Q\000\000\000\014COMMIT;\000Q\000\000\000\035COPY"
    " accounts TO STDOUT;\000Q\000\000\000*COPY accounts (id, email) FROM STDIN;\000d\000\000"
    "\000\0333\tcarol@example.com\n\\.\nc\000\000\000\004X\000\000\000\004";
static const char psql_backend[] =
    "NR\000\000\000\010\000\000\000\000S\000\000\000\032application_name\000psql\000S\000\000"
    "\000\031client_encoding\000UTF8\000S\000\000\000\027DateStyle\000ISO, MDY\000S\000\000"
    "\000&default_transaction_read_only\000off\000S\000\000\000\027in_hot_standby\000off\000S"
    "\000\000\000\031integer_datetimes\000on\000S\000\000\000\033IntervalStyle\000postgres"
    "\000S\000\000\000\024is_superuser\000on\000S\000\000\000\031server_encoding\000UTF8\000S"
    "\000\000\0002server_version\00015.18 (Debian 15.18-0+deb12u1)\000S\000\000\000#session_a"
    "uthorization\000postgres\000S\000\000\000#standard_conforming_strings\000on\000S\000\000"
    "\000\025TimeZone\000Etc/UTC\000K\000\000\000\014\000\000$\032\336\375\005\367Z\000\000"
    "\000\005IC\000\000\000\021CREATE TABLE\000Z\000\000\000\005IC\000\000\000\017INSERT 0 2"
    "\000Z\000\000\000\005IT\000\000\0003\000\002id\000\000\000@\000\000\001\000\000\000\027"
    "\000\004\377\377\377\377\000\000email\000\000\000@\000\000\002\000\000\000\031\377\377"
    "\377\377\377\377\000\000D\000\000\000 \000\002\000\000\000\0011\000\000\000\021alice@exa"
    "mple.comD\000\000\000\036\000\002\000\000\000\0012\000\000\000\017bob@example.comC\000"
    "\000\000\rSELECT 2\000Z\000\000\000\005IE\000\000\000]SERROR\000VERROR\000C42601\000Msyn"
    "tax error at or near \"SELEC\"\000P1\000Fscan.l\000L1188\000Rscanner_yyerror\000\000Z"
    "\000\000\000\005IE\000\000\000\275SERROR\000VERROR\000C23505\000Mduplicate key value vio"
    "lates unique constraint \"accounts_pkey\"\000DKey (id)=(1) already exists.\000spublic"
    "\000taccounts\000naccounts_pkey\000Fnbtinsert.c\000L664\000R_bt_check_unique\000\000Z"
    "\000\000\000\005IC\000\000\000\017ALTER ROLE\000Z\000\000\000\005IC\000\000\000\nBEGIN"
    "\000Z\000\000\000\005TC\000\000\000\rUPDATE 1\000Z\000\000\000\005TC\000\000\000\013COMM"
    "IT\000Z\000\000\000\005IH\000\000\000\r\000\000\003\000\000\000\000\000\000d\000\000\000"
    "\0351\talice@example.com\t10.5\nd\000\000\000\0312\tbob@example.com\t21\nc\000\000\000"
    "\004C\000\000\000\013COPY 2\000Z\000\000\000\005IG\000\000\000\013\000\000\002\000\000"
    "\000\000C\000\000\000\013COPY 1\000Z\000\000\000\005I";

static void test_simple_query_session(void)
{
	const struct run *r = PARSE(&frontend, psql_frontend);
	CHECK_EQ_INT(r->n, 15);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_PG_SSL_REQUEST);
	CHECK_EQ_INT(r->records[0].end, 8);
	CHECK_EQ_INT(r->records[1].ev.kind, OA_PG_STARTUP);
	CHECK_EQ_INT(r->records[1].ev.code, 196608);
	CHECK_EQ_STR(r->records[1].user, "postgres");
	CHECK_EQ_STR(r->records[1].database, "postgres");
	static const char *const queries[] = {
	    "CREATE TABLE accounts (id int PRIMARY KEY, email text, balance numeric);",
	    ("INSERT INTO accounts VALUES (1, 'alice@example.com', 10.5), (2, 'bob@example.com', "
	     "20);"),
	    "SELECT id, email FROM accounts WHERE balance > 5;",
	    "SELEC 1;",
	    "INSERT INTO accounts VALUES (1, 'dup@example.com', 0);",
	    "ALTER USER postgres PASSWORD 'hunter2';",
	    "BEGIN;",
	    "UPDATE accounts SET balance = balance + 1 WHERE id = 2;",
	    "COMMIT;",
	    "COPY accounts TO STDOUT;",
	    "COPY accounts (id, email) FROM STDIN;",
	};
	for (size_t i = 0; i < 11; i++) {
		check_message(&r->records[2 + i], 'Q');
		CHECK_EQ_STR(r->records[2 + i].query, queries[i]);
		CHECK_EQ_INT(r->records[2 + i].ev.length, strlen(queries[i]) + 1);
		CHECK(r->records[2 + i].ev.statement == NULL);
	}
	/* CopyData is skipped; CopyDone and Terminate are events. */
	check_message(&r->records[13], 'c');
	check_message(&r->records[14], 'X');
	CHECK_EQ_INT(r->records[14].end, sizeof psql_frontend - 1);

	/* The backend's first byte answers the SSLRequest. */
	r = PARSE(&backend_after_ssl_request, psql_backend);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_PG_ENCRYPTION_REFUSED);
	CHECK_EQ_INT(r->records[0].end, 1);
	check_message(&r->records[1], 'R');
	CHECK_EQ_INT(r->records[1].ev.code, 0);
	char tags[512] = "", states[64] = "", statuses[32] = "", types[64] = "";
	for (size_t i = 1; i < r->n; i++) {
		const struct record *rec = &r->records[i];
		CHECK_EQ_INT(rec->ev.kind, OA_PG_MESSAGE);
		strncat(types, (const char *)&rec->ev.type, 1);
		if (rec->ev.type == 'C')
			strcat(strcat(tags, rec->tag), "|");
		if (rec->ev.type == 'E')
			strcat(strcat(strcat(strcat(states, rec->sqlstate), " "), rec->severity),
			       "|");
		if (rec->ev.type == 'Z')
			strncat(statuses, (const char *)&rec->ev.status, 1);
	}
	CHECK_EQ_STR(types, "RSSSSSSSSSSSSSKZCZCZTCZEZEZCZCZCZCZHcCZGCZ");
	CHECK_EQ_STR(tags, "CREATE TABLE|INSERT 0 2|SELECT 2|ALTER ROLE|BEGIN|UPDATE 1|COMMIT|"
			   "COPY 2|COPY 1|");
	CHECK_EQ_STR(states, "42601 ERROR|23505 ERROR|");
	CHECK_EQ_STR(statuses, "IIIIIIITTIII");
	CHECK_EQ_INT(r->records[r->n - 1].end, sizeof psql_backend - 1);
}

/* pgbench -M extended: unnamed statements, Parse/Bind/Describe/Execute/Sync
 * per query; and -M prepared: named statements parsed once, then bound. */
static const char extended_frontend[] =
    "\000\000\000B\000\003\000\000user\000postgres\000database\000postgres\000application_nam"
    "e\000pgbench\000\000P\000\000\0001\000SELECT email FROM accounts WHERE id = $1;\000\000"
    "\000B\000\000\000\023\000\000\000\000\000\001\000\000\000\0012\000\001\000\000D\000\000"
    "\000\006P\000E\000\000\000\t\000\000\000\000\000S\000\000\000\004P\000\000\000@\000UPDAT"
    "E accounts SET balance = balance + 1 WHERE id = $1;\000\000\000B\000\000\000\023\000\000"
    "\000\000\000\001\000\000\000\0012\000\001\000\000D\000\000\000\006P\000E\000\000\000\t"
    "\000\000\000\000\000S\000\000\000\004P\000\000\0001\000SELECT email FROM accounts WHERE "
    "id = $1;\000\000\000B\000\000\000\023\000\000\000\000\000\001\000\000\000\0012\000\001"
    "\000\000D\000\000\000\006P\000E\000\000\000\t\000\000\000\000\000S\000\000\000\004P\000"
    "\000\000@\000UPDATE accounts SET balance = balance + 1 WHERE id = $1;\000\000\000B\000"
    "\000\000\023\000\000\000\000\000\001\000\000\000\0012\000\001\000\000D\000\000\000\006P"
    "\000E\000\000\000\t\000\000\000\000\000S\000\000\000\004X\000\000\000\004";
static const char extended_backend[] =
    "R\000\000\000\010\000\000\000\000S\000\000\000\035application_name\000pgbench\000S\000"
    "\000\000\031client_encoding\000UTF8\000S\000\000\000\027DateStyle\000ISO, MDY\000S\000"
    "\000\000&default_transaction_read_only\000off\000S\000\000\000\027in_hot_standby\000off"
    "\000S\000\000\000\031integer_datetimes\000on\000S\000\000\000\033IntervalStyle\000postgr"
    "es\000S\000\000\000\024is_superuser\000on\000S\000\000\000\031server_encoding\000UTF8"
    "\000S\000\000\0002server_version\00015.18 (Debian 15.18-0+deb12u1)\000S\000\000\000#sess"
    "ion_authorization\000postgres\000S\000\000\000#standard_conforming_strings\000on\000S"
    "\000\000\000\025TimeZone\000Etc/UTC\000K\000\000\000\014\000\000$$X\366\224\177Z\000\000"
    "\000\005I1\000\000\000\0042\000\000\000\004T\000\000\000\036\000\001email\000\000\000@"
    "\000\000\002\000\000\000\031\377\377\377\377\377\377\000\000D\000\000\000\031\000\001"
    "\000\000\000\017bob@example.comC\000\000\000\rSELECT 1\000Z\000\000\000\005I1\000\000"
    "\000\0042\000\000\000\004n\000\000\000\004C\000\000\000\rUPDATE 1\000Z\000\000\000\005I1"
    "\000\000\000\0042\000\000\000\004T\000\000\000\036\000\001email\000\000\000@\000\000\002"
    "\000\000\000\031\377\377\377\377\377\377\000\000D\000\000\000\031\000\001\000\000\000"
    "\017bob@example.comC\000\000\000\rSELECT 1\000Z\000\000\000\005I1\000\000\000\0042\000"
    "\000\000\004n\000\000\000\004C\000\000\000\rUPDATE 1\000Z\000\000\000\005I";
static const char prepared_frontend[] =
    "\000\000\000B\000\003\000\000user\000postgres\000database\000postgres\000application_nam"
    "e\000pgbench\000\000P\000\000\0004P_0\000SELECT email FROM accounts WHERE id = $1;\000"
    "\000\000S\000\000\000\004B\000\000\000\026\000P_0\000\000\000\000\001\000\000\000\0012"
    "\000\001\000\000D\000\000\000\006P\000E\000\000\000\t\000\000\000\000\000S\000\000\000"
    "\004P\000\000\000CP_1\000UPDATE accounts SET balance = balance + 1 WHERE id = $1;\000"
    "\000\000S\000\000\000\004B\000\000\000\026\000P_1\000\000\000\000\001\000\000\000\0012"
    "\000\001\000\000D\000\000\000\006P\000E\000\000\000\t\000\000\000\000\000S\000\000\000"
    "\004X\000\000\000\004";

static void test_extended_query(void)
{
	const struct run *r = PARSE(&frontend, extended_frontend);
	CHECK_EQ_INT(r->n, 1 + 4 * 5 + 1);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_PG_STARTUP);
	CHECK_EQ_STR(r->records[0].user, "postgres");
	char types[64] = "";
	for (size_t i = 1; i < r->n; i++)
		strncat(types, (const char *)&r->records[i].ev.type, 1);
	CHECK_EQ_STR(types, "PBDESPBDESPBDESPBDESX");
	check_message(&r->records[1], 'P');
	CHECK_EQ_STR(r->records[1].query, "SELECT email FROM accounts WHERE id = $1;");
	CHECK_EQ_STR(r->records[1].statement, "");
	check_message(&r->records[2], 'B');
	CHECK_EQ_STR(r->records[2].statement, "");
	CHECK(r->records[2].ev.query == NULL);
	CHECK_EQ_STR(r->records[6].query,
		     "UPDATE accounts SET balance = balance + 1 WHERE id = $1;");

	r = PARSE(&backend, extended_backend);
	char tags[128] = "";
	types[0] = '\0';
	for (size_t i = 0; i < r->n; i++) {
		strncat(types, (const char *)&r->records[i].ev.type, 1);
		if (r->records[i].ev.type == 'C')
			strcat(strcat(tags, r->records[i].tag), "|");
	}
	/* DataRows are skipped. */
	CHECK_EQ_STR(types, "RSSSSSSSSSSSSSKZ12TCZ12nCZ12TCZ12nCZ");
	CHECK_EQ_STR(tags, "SELECT 1|UPDATE 1|SELECT 1|UPDATE 1|");

	r = PARSE(&frontend, prepared_frontend);
	types[0] = '\0';
	for (size_t i = 1; i < r->n; i++)
		strncat(types, (const char *)&r->records[i].ev.type, 1);
	CHECK_EQ_STR(types, "PSBDESPSBDESX");
	CHECK_EQ_STR(r->records[1].statement, "P_0");
	CHECK_EQ_STR(r->records[1].query, "SELECT email FROM accounts WHERE id = $1;");
	CHECK_EQ_STR(r->records[3].statement, "P_0");
	CHECK_EQ_STR(r->records[9].statement, "P_1");
}

static void test_encryption(void)
{
	/* 'S': the messages go on inside TLS, whose plaintext the parser is
	 * fed: AuthenticationOk and ReadyForQuery here. */
	static const char tls[] = "S"
				  "R\000\000\000\010\000\000\000\000"
				  "Z\000\000\000\005I";
	const struct run *r = PARSE(&backend_after_ssl_request, tls);
	CHECK_EQ_INT(r->n, 3);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_PG_TLS);
	CHECK_EQ_INT(r->records[0].end, 1);
	check_message(&r->records[1], 'R');
	CHECK_EQ_INT(r->records[1].ev.code, 0);
	check_message(&r->records[2], 'Z');
	CHECK_EQ_INT(r->records[2].ev.status, 'I');
	static const char gss[] = "G\000\000\000\040";
	r = PARSE(&backend_after_ssl_request, gss);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_PG_ENCRYPTED);
	/* GSSENCRequest refused, then a StartupMessage without a database. */
	static const char gss_request[] = "\000\000\000\010\004\322\026\060"
					  "\000\000\000\022\000\003\000\000user\000app\000\000";
	r = PARSE(&frontend, gss_request);
	CHECK_EQ_INT(r->n, 2);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_PG_GSSENC_REQUEST);
	CHECK_EQ_INT(r->records[1].ev.kind, OA_PG_STARTUP);
	CHECK_EQ_STR(r->records[1].user, "app");
	CHECK_EQ_STR(r->records[1].database, "");
	/* An old server's ErrorResponse to an SSLRequest is a message. */
	static const char old[] = "E\000\000\000\014SFATAL\000\000";
	r = PARSE(&backend_after_ssl_request, old);
	CHECK_EQ_INT(r->n, 1);
	check_message(&r->records[0], 'E');
	CHECK_EQ_STR(r->records[0].severity, "FATAL");
	/* A CancelRequest: its own connection, pid and key. */
	static const char cancel[] =
	    "\000\000\000\020\004\322\026\056\000\000\060\071\022\064\126\170";
	r = PARSE(&frontend, cancel);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_PG_CANCEL_REQUEST);
}

static void test_errors_and_truncation(void)
{
	/* A localised severity is replaced by the non-localised one, wherever it comes. */
	static const char errors[] = "E\000\000\000\036SFEHLER\000C22012\000VERROR\000Mx\000\000"
				     "N\000\000\000\025SWARNING\000C01000\000\000"
				     "E\000\000\000\032VFATAL\000SFATAL\000C28P01\000\000";
	const struct run *r = PARSE(&backend, errors);
	CHECK_EQ_INT(r->n, 3);
	CHECK_EQ_STR(r->records[0].sqlstate, "22012");
	CHECK_EQ_STR(r->records[0].severity, "ERROR");
	check_message(&r->records[1], 'N');
	CHECK_EQ_STR(r->records[1].sqlstate, "01000");
	CHECK_EQ_STR(r->records[1].severity, "WARNING");
	CHECK_EQ_STR(r->records[2].severity, "FATAL");
	CHECK_EQ_STR(r->records[2].sqlstate, "28P01");
	/* A code that is not one is not passed on. */
	static const char odd[] = "E\000\000\000\014Cab\"x!\000\000";
	r = PARSE(&backend, odd);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_STR(r->records[0].sqlstate, "");

	/* A long query is cut to the capacity; a long SQLSTATE too. */
	char *q = malloc(2100);
	size_t body = 4 + 2000 + 1;
	memcpy(q, "Q\000\000\007\325", 5);
	CHECK_EQ_INT(body, 0x7d5);
	memset(q + 5, 'a', 2000);
	q[2005] = '\0';
	memcpy(q + 2006, "S\000\000\000\004", 5);
	r = parse(&frontend, q, 2011);
	/* In the startup phase "Q\0\0\7" is a length, far too long. */
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->records[0].ev.reason, OA_PG_NOT_PG);
	struct oa_pg_parser p;
	struct oa_pg_event ev;
	oa_pg_parser_init(&p, OA_PG_FRONTEND);
	size_t used =
	    oa_pg_feed(&p, (const uint8_t *)"\000\000\000\011\000\003\000\000\000", 9, &ev);
	CHECK_EQ_INT(used, 9);
	CHECK_EQ_INT(ev.kind, OA_PG_STARTUP);
	used = oa_pg_feed(&p, (const uint8_t *)q, 2011, &ev);
	CHECK_EQ_INT(used, 2006);
	CHECK_EQ_INT(ev.type, 'Q');
	CHECK_EQ_INT(strlen(ev.query), OA_PG_TEXT_CAP - 1);
	CHECK_EQ_INT(ev.flags, OA_PG_TRUNCATED);
	CHECK_EQ_INT(oa_pg_feed(&p, (const uint8_t *)q + used, 5, &ev), 5);
	CHECK_EQ_INT(ev.type, 'S');
	CHECK_EQ_INT(ev.flags, 0);
	free(q);
}

static void test_big_rows_skipped(void)
{
	/* A 10 MB DataRow and 10 MB of CopyData, fed in odd pieces. */
	size_t row = 10u << 20, len = 0;
	char *big = malloc(2 * row + 64);
	memcpy(big, "T\000\000\000\006\000\000", 7);
	len = 7;
	big[len++] = 'D';
	uint32_t n = (uint32_t)row + 4;
	for (int k = 3; k >= 0; k--)
		big[len++] = (char)(n >> (8 * k));
	memset(big + len, 'r', row);
	len += row;
	memcpy(big + len, "C\000\000\000\015SELECT 1\000H\000\000\000\007\000\000\000", 22);
	len += 22;
	big[len++] = 'd';
	for (int k = 3; k >= 0; k--)
		big[len++] = (char)(n >> (8 * k));
	memset(big + len, 'c', row);
	len += row;
	memcpy(big + len, "c\000\000\000\004C\000\000\000\013COPY 9\000", 17);
	len += 17;
	struct run *r = malloc(sizeof *r);
	size_t cuts[] = {3, 9, 5000, row, row + 30, 2 * row};
	run_cuts(&backend, big, len, cuts, 6, r);
	char types[16] = "";
	for (size_t i = 0; i < r->n; i++)
		strncat(types, (const char *)&r->records[i].ev.type, 1);
	CHECK_EQ_STR(types, "TCHcC");
	CHECK_EQ_STR(r->records[1].tag, "SELECT 1");
	CHECK_EQ_STR(r->records[4].tag, "COPY 9");
	CHECK_EQ_INT(r->records[4].end, len);
	free(r);
	free(big);
}

static void check_gave_up(const struct setup *s, const char *data, size_t len, size_t events,
			  enum oa_pg_gave_up_reason reason)
{
	const struct run *r = parse(s, data, len);
	CHECK_EQ_INT(r->n, events + 1);
	CHECK_EQ_INT(r->records[events].ev.kind, OA_PG_GAVE_UP);
	CHECK_EQ_INT(r->records[events].ev.reason, reason);
}

#define GAVE_UP(setup, literal, events, reason)                                                    \
	check_gave_up(setup, literal, sizeof literal - 1, events, reason)

static void test_malformed(void)
{
	/* TLS without SSLRequest (sslnegotiation=direct), HTTP, Redis. */
	GAVE_UP(&frontend, "\026\003\001\002\000\001\000\001\374\003\003", 0, OA_PG_NOT_PG);
	GAVE_UP(&backend, "HTTP/1.1 200 OK\r\n", 0, OA_PG_NOT_PG);
	GAVE_UP(&frontend, "*1\r\n$4\r\nPING\r\n", 0, OA_PG_NOT_PG);
	/* Protocol 2.0 and an unknown request code. */
	GAVE_UP(&frontend, "\000\000\000\010\000\002\000\000", 0, OA_PG_NOT_PG);
	GAVE_UP(&frontend, "\000\000\000\010\004\322\026\061", 0, OA_PG_NOT_PG);
	/* After a valid message: a bad type, a short length, a huge one. */
	GAVE_UP(&backend, "Z\000\000\000\005Iq", 1, OA_PG_MALFORMED);
	GAVE_UP(&backend, "Z\000\000\000\005IZ\000\000\000\003", 1, OA_PG_MALFORMED);
	GAVE_UP(&backend, "Z\000\000\000\005ID\100\000\000\005", 1, OA_PG_TOO_LARGE);
	GAVE_UP(&frontend, "\000\000\000\010\004\322\026\057\000\000\047\021", 1, OA_PG_TOO_LARGE);
	/* After giving up, nothing. */
	struct oa_pg_parser p;
	struct oa_pg_event ev;
	oa_pg_parser_init(&p, OA_PG_BACKEND);
	CHECK_EQ_INT(oa_pg_feed(&p, (const uint8_t *)"qZ\000\000\000\005I", 7, &ev), 1);
	CHECK_EQ_INT(ev.kind, OA_PG_GAVE_UP);
	CHECK_EQ_INT(oa_pg_feed(&p, (const uint8_t *)"Z\000\000\000\005I", 6, &ev), 6);
	CHECK_EQ_INT(ev.kind, OA_PG_NONE);
}

static void check_start(const char *bytes, size_t len, bool expected)
{
	CHECK(oa_pg_frontend_start((const uint8_t *)bytes, len) == expected);
}

/* The first bytes a client sends decide whether a connection is PostgreSQL's. */
static void test_frontend_start(void)
{
	check_start("\0\0\0\x08\x04\xd2\x16\x2f", 8, true);  /* SSLRequest */
	check_start("\0\0\0\x08\x04\xd2\x16\x30", 8, true);  /* GSSENCRequest */
	check_start("\0\0\0\x29\0\x03\0\0user", 12, true);   /* StartupMessage 3.0 */
	check_start("\0\0\0\x29\0\x02\0\0", 8, false);	     /* protocol 2 */
	check_start("\0\0\0\x10\x04\xd2\x16\x2e", 8, false); /* CancelRequest */
	check_start("\0\0\0", 3, true);			     /* the rest comes later */
	check_start("\0", 1, false);
	check_start("", 0, false);
	check_start("\0\x01\0\x08\x04\xd2\x16\x2f", 8, false); /* over 64 KiB */
	check_start("GET / HTTP/1.1\r\n", 16, false);
	check_start("*1\r\n$4\r\nPING\r\n", 14, false);
	check_start("\x16\x03\x01\x02\0\x01\0\x01", 8, false); /* TLS */
}

int main(void)
{
	test_frontend_start();
	test_simple_query_session();
	test_extended_query();
	test_encryption();
	test_errors_and_truncation();
	test_big_rows_skipped();
	test_malformed();
	CHECK_DONE();
}
