#include "check.h"
#include "sql_sanitize.h"

#include <stdlib.h>
#include <string.h>

static const char *sanitized(const char *query, enum oa_sql_dialect dialect)
{
	static char out[1024];
	size_t n = oa_sql_sanitize(query, strlen(query), dialect, out, sizeof out);
	CHECK_EQ_INT(n, strlen(out));
	return out;
}

#define PG    OA_SQL_POSTGRESQL
#define MYSQL OA_SQL_MYSQL

static void test_literals(void)
{
	/* psql's queries of the PostgreSQL capture (tests/unit/test_pg_parse.c). */
	CHECK_EQ_STR(sanitized("INSERT INTO accounts VALUES (1, 'alice@example.com', 10.5), (2, "
			       "'bob@example.com', 20);",
			       PG),
		     "INSERT INTO accounts VALUES (?), (?);");
	CHECK_EQ_STR(sanitized("SELECT id, email FROM accounts WHERE balance > 5;", PG),
		     "SELECT id, email FROM accounts WHERE balance > ?;");
	CHECK_EQ_STR(sanitized("ALTER USER postgres PASSWORD 'hunter2';", PG),
		     "ALTER USER postgres PASSWORD ?;");
	CHECK_EQ_STR(sanitized("UPDATE accounts SET balance = balance + 1 WHERE id = 2;", PG),
		     "UPDATE accounts SET balance = balance + ? WHERE id = ?;");
	/* Parameters and identifiers with digits stay. */
	CHECK_EQ_STR(sanitized("SELECT email FROM accounts WHERE id = $1 AND t2.c3 = $12", PG),
		     "SELECT email FROM accounts WHERE id = $1 AND t2.c3 = $12");
	CHECK_EQ_STR(sanitized("SELECT * FROM t WHERE id = ? AND n IN (?, ?)", MYSQL),
		     "SELECT * FROM t WHERE id = ? AND n IN (?, ?)");
	/* Numbers of every form. */
	CHECK_EQ_STR(sanitized("SELECT 1e-5, .5, 0x1F, 1_000_000, 3.14E+2, -7", PG),
		     "SELECT ?, ?, ?, ?, ?, -?");
	/* Strings with doubled quotes and escapes, prefixed strings. */
	CHECK_EQ_STR(sanitized("SELECT 'it''s', E'a\\'b', B'0101', X'ff', N'n', U&'\\0041'", PG),
		     "SELECT ?, ?, ?, ?, ?, ?");
	CHECK_EQ_STR(sanitized("SELECT 'it\\'s', \"dq\", x'ff', b'01', _utf8mb4'x', 0b101", MYSQL),
		     "SELECT ?, ?, ?, ?, _utf8mb4?, ?");
	/* PostgreSQL: a backslash does not escape in a standard string. */
	CHECK_EQ_STR(sanitized("SELECT 'C:\\', 'x'", PG), "SELECT ?, ?");
	/* Dollar-quoted strings, tagged or not, with quotes inside. */
	CHECK_EQ_STR(sanitized("SELECT $$it's$$, $fn$ body $x$ 'q' $fn$, $1", PG),
		     "SELECT ?, ?, $1");
	/* Quoted identifiers stay; in MySQL "..." is a string. */
	CHECK_EQ_STR(sanitized("SELECT \"Name\" FROM \"My Table\" WHERE x = 'v'", PG),
		     "SELECT \"Name\" FROM \"My Table\" WHERE x = ?");
	CHECK_EQ_STR(sanitized("SELECT `Name` FROM `t` WHERE x = \"v\"", MYSQL),
		     "SELECT `Name` FROM `t` WHERE x = ?");
	/* IN lists collapse; function arguments that are not all literals do not. */
	CHECK_EQ_STR(sanitized("SELECT * FROM t WHERE a IN (1, 2, 3) AND f(a, 2) = lower('X')", PG),
		     "SELECT * FROM t WHERE a IN (?) AND f(a, ?) = lower(?)");
	CHECK_EQ_STR(sanitized("SELECT * FROM t LIMIT 10, 20", MYSQL),
		     "SELECT * FROM t LIMIT ?, ?");
}

static void test_comments_and_blanks(void)
{
	CHECK_EQ_STR(sanitized("  SELECT /* a 'comment' */ 1 -- trailing 'x'\n  FROM\tt\n", PG),
		     "SELECT ? FROM t");
	CHECK_EQ_STR(sanitized("SELECT/* nested /* inner */ still */1", PG), "SELECT ?");
	CHECK_EQ_STR(sanitized("SELECT 1 # mysql comment 'secret'\n, 2", MYSQL), "SELECT ? , ?");
	CHECK_EQ_STR(sanitized("SELECT/*!40001 SQL_NO_CACHE */ a FROM t", MYSQL),
		     "SELECT a FROM t");
	/* An sqlcommenter comment goes too. */
	CHECK_EQ_STR(sanitized("SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
			       "00f067aa0ba902b7-01'*/",
			       PG),
		     "SELECT ?");
	CHECK_EQ_STR(sanitized("", PG), "");
	CHECK_EQ_STR(sanitized("   -- only a comment", PG), "");
}

/* Secrets in every literal form, cut at every length: no part of one gets out. */
static void test_never_a_literal(void)
{
	static const struct {
		const char *query;
		enum oa_sql_dialect dialect;
	} cases[] = {
	    {"ALTER USER app PASSWORD 'Zq8SECRETw'", PG},
	    {"SELECT * FROM users WHERE email = 'Zq8SECRETw@example.com' AND pin = 739184", PG},
	    {"SELECT E'Zq8SECRETw\\'more', $$Zq8SECRETw$$, $t$Zq8SECRETw$t$", PG},
	    {"SELECT 'a''Zq8SECRETw''b'", PG},
	    {"SET PASSWORD FOR 'app'@'%' = 'Zq8SECRETw'", MYSQL},
	    {"CREATE USER bob IDENTIFIED BY \"Zq8SECRETw\"", MYSQL},
	    {"INSERT INTO t VALUES ('it\\'s Zq8SECRETw', 739184, X'5A71')", MYSQL},
	    {"SELECT \"col\", 'Zq8SECRETw", PG},
	    {"SELECT \"unterminated 'Zq8SECRETw'", PG},
	    {"SELECT `unterminated 'Zq8SECRETw'", MYSQL},
	    {"SELECT $tag$ Zq8SECRETw", PG},
	    {"SELECT $averyveryveryveryveryveryveryveryveryveryveryveryveryverylongtag$Zq8SECRETw"
	     "$averyveryveryveryveryveryveryveryveryveryveryveryveryverylongtag$",
	     PG},
	};
	char out[512], small[8];
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		const char *q = cases[c].query;
		size_t len = strlen(q);
		for (size_t cut = 0; cut <= len; cut++) {
			size_t n = oa_sql_sanitize(q, cut, cases[c].dialect, out, sizeof out);
			CHECK(n <= cut);
			if (strstr(out, "Zq8") || strstr(out, "739") || strstr(out, "5A71")) {
				CHECK(!"a literal reached the output");
				fprintf(stderr, "  %.*s -> %s\n", (int)cut, q, out);
			}
			/* A small buffer gets the same text, cut. */
			size_t m = oa_sql_sanitize(q, cut, cases[c].dialect, small, sizeof small);
			CHECK_EQ_INT(m, n);
			CHECK(strncmp(small, out, sizeof small - 1) == 0 &&
			      strlen(small) == (n < sizeof small ? n : sizeof small - 1));
		}
	}
}

static const char *summary(const char *query, enum oa_sql_dialect dialect)
{
	static char text[128];
	struct oa_sql_summary s;
	oa_sql_summarize(query, strlen(query), dialect, &s);
	size_t n = oa_sql_summary_text(&s, text, sizeof text);
	CHECK_EQ_INT(n, strlen(text));
	return text;
}

static void test_summary(void)
{
	CHECK_EQ_STR(summary("SELECT id, email FROM accounts WHERE balance > 5;", PG),
		     "SELECT accounts");
	CHECK_EQ_STR(summary("insert into orders (id) values (1)", PG), "INSERT orders");
	CHECK_EQ_STR(summary("INSERT IGNORE INTO shop.orders SET a = 1", MYSQL),
		     "INSERT shop.orders");
	CHECK_EQ_STR(summary("UPDATE accounts SET balance = balance + 1 WHERE id = 2;", PG),
		     "UPDATE accounts");
	CHECK_EQ_STR(summary("DELETE FROM ONLY public.sessions WHERE expired", PG),
		     "DELETE public.sessions");
	CHECK_EQ_STR(summary("CREATE TABLE IF NOT EXISTS accounts (id int)", PG),
		     "CREATE accounts");
	CHECK_EQ_STR(summary("CREATE UNLOGGED TABLE \"Audit Log\" (id int)", PG),
		     "CREATE \"Audit Log\"");
	CHECK_EQ_STR(summary("DROP TABLE IF EXISTS `t1`", MYSQL), "DROP `t1`");
	CHECK_EQ_STR(summary("CREATE INDEX i ON t (a)", PG), "CREATE");
	CHECK_EQ_STR(summary("TRUNCATE TABLE logs", PG), "TRUNCATE logs");
	CHECK_EQ_STR(summary("COPY accounts (id, email) FROM STDIN;", PG), "COPY accounts");
	CHECK_EQ_STR(summary("COPY (SELECT 1) TO STDOUT", PG), "COPY");
	/* The FROM of a subquery in the select list is not the table's. */
	CHECK_EQ_STR(
	    summary("SELECT (SELECT max(id) FROM other), a FROM main_t JOIN x ON true", PG),
	    "SELECT main_t");
	CHECK_EQ_STR(summary("SELECT * FROM (SELECT 1) AS s", PG), "SELECT");
	CHECK_EQ_STR(summary("SELECT 1", PG), "SELECT");
	CHECK_EQ_STR(summary("  /* c */ (SELECT a FROM t1) UNION (SELECT a FROM t2)", PG),
		     "SELECT t1");
	CHECK_EQ_STR(summary("WITH recent AS (SELECT * FROM orders WHERE d > now()) "
			     "SELECT count(*) FROM recent",
			     PG),
		     "SELECT recent");
	CHECK_EQ_STR(summary("BEGIN;", PG), "BEGIN");
	CHECK_EQ_STR(summary("commit", MYSQL), "COMMIT");
	CHECK_EQ_STR(summary("'not sql'", PG), "");
	CHECK_EQ_STR(summary("", PG), "");
	/* Names are cut to the capacity, operations too. */
	char name[200] = "SELECT * FROM ";
	memset(name + strlen(name), 'n', 100);
	struct oa_sql_summary s;
	oa_sql_summarize(name, strlen(name), PG, &s);
	CHECK_EQ_INT(strlen(s.collection), OA_SQL_COLLECTION_CAP - 1);
	oa_sql_summarize(name + 14, 100, PG, &s);
	CHECK_EQ_INT(strlen(s.operation), OA_SQL_OPERATION_CAP - 1);
	CHECK_EQ_STR(s.collection, "");
	char text[8];
	CHECK_EQ_INT(oa_sql_summary_text(&s, text, sizeof text), OA_SQL_OPERATION_CAP - 1);
	CHECK_EQ_STR(text, "NNNNNNN");
}

static void test_traceparent_comment(void)
{
	static const struct oa_span_context ctx = {{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
						    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
						   {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
						   1};
	char comment[OA_SQL_TRACEPARENT_COMMENT_LEN + 1];
	oa_sql_traceparent_comment(&ctx, comment);
	CHECK_EQ_STR(comment, "/*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"
			      "01'*/");
	CHECK_EQ_INT(strlen(comment), OA_SQL_TRACEPARENT_COMMENT_LEN);

	/* Read back from a query it was appended to, and dropped from its text. */
	char query[256];
	snprintf(query, sizeof query, "SELECT * FROM t WHERE a = 'x' %s", comment);
	struct oa_span_context found;
	CHECK(oa_sql_find_traceparent(query, strlen(query), PG, &found));
	CHECK(memcmp(&found, &ctx, sizeof ctx) == 0);
	CHECK_EQ_STR(sanitized(query, PG), "SELECT * FROM t WHERE a = ?");
	/* sqlcommenter's other keys, MySQL. */
	static const char keyed[] =
	    "SELECT 1 /*action='run',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "00f067aa0ba902b7-01',tracestate='congo%3Dt61rcWkgMzE'*/";
	memset(&found, 0, sizeof found);
	CHECK(oa_sql_find_traceparent(keyed, sizeof keyed - 1, MYSQL, &found));
	CHECK(memcmp(&found, &ctx, sizeof ctx) == 0);
	/* Not a comment's, not a key of its own, not valid, or cut: none. */
	static const char *const none[] = {
	    "SELECT 'traceparent=''00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'''",
	    "SELECT 1 /*xtraceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
	    "SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'*/",
	    "SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9",
	    "SELECT 1 -- traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'",
	};
	for (size_t i = 0; i < sizeof none / sizeof *none; i++)
		CHECK(!oa_sql_find_traceparent(none[i], strlen(none[i]), PG, &found));
}

int main(void)
{
	test_literals();
	test_comments_and_blanks();
	test_never_a_literal();
	test_summary();
	test_traceparent_comment();
	CHECK_DONE();
}
