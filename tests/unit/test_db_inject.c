/* Database clients' propagation: where the comment goes into a query, the
 * framing of the messages a client writes, and a whole client's stream
 * written in every way (split into writes at every point, the kernel
 * taking every bounded part of each): the bytes on the wire are the
 * program's, with the comment and its length in exactly the messages the
 * rewrite committed to, and the program's counts stay its own. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "db_inject.h"
#include "db_stream.h"
#include "mysql_parse.h"
#include "pg_parse.h"

#define PG    OA_SQL_POSTGRESQL
#define MYSQL OA_SQL_MYSQL

static size_t comment_at(const char *query, enum oa_sql_dialect dialect)
{
	return oa_sql_comment_at(query, strlen(query), dialect);
}

static void test_comment_at(void)
{
	CHECK_EQ_INT(comment_at("SELECT 1", PG), 8);
	CHECK_EQ_INT(comment_at("SELECT 1;", PG), 8);
	CHECK_EQ_INT(comment_at("SELECT 1 ;\n", PG), 8);
	/* a line comment would swallow it */
	CHECK_EQ_INT(comment_at("SELECT 1 -- the first", PG), 8);
	CHECK_EQ_INT(comment_at("SELECT 1 # the first", MYSQL), 8);
	CHECK_EQ_INT(comment_at("SELECT 1 # the first", PG), 20);
	CHECK_EQ_INT(comment_at("SELECT 1 /* one */", PG), 8);
	CHECK_EQ_INT(comment_at("SELECT ';'", PG), 10);
	CHECK_EQ_INT(comment_at("SELECT 1; SELECT 2", PG), 18);
	CHECK_EQ_INT(comment_at("SELECT $$a;$$;", PG), 13);
	/* it would go into the string the text leaves open */
	CHECK_EQ_INT(comment_at("SELECT 'a", PG), SIZE_MAX);
	CHECK_EQ_INT(comment_at("SELECT $x$a", PG), SIZE_MAX);
	CHECK_EQ_INT(comment_at("SELECT \"a", PG), SIZE_MAX);
	CHECK_EQ_INT(comment_at("SELECT 'a\\'", MYSQL), SIZE_MAX);
	CHECK_EQ_INT(comment_at("SELECT 'a\\'", PG), 11);
	CHECK_EQ_INT(comment_at("SELECT $x$a$x$", PG), 14);
	CHECK_EQ_INT(comment_at("SELECT $", PG), 8);
	CHECK_EQ_INT(comment_at("", PG), SIZE_MAX);
	CHECK_EQ_INT(comment_at(" \n-- nothing", PG), SIZE_MAX);
	/* the program propagates itself */
	CHECK_EQ_INT(comment_at("SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
				"00f067aa0ba902b7-01'*/",
				PG),
		     SIZE_MAX);
	CHECK_EQ_INT(comment_at("SELECT 1 /*traceparent='bad'*/", PG), 8);
}

static const struct oa_span_context ctx = {
    .trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
		 0x47, 0x36},
    .span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
    .flags = 1,
};

static void test_comment(void)
{
	char out[OA_DB_COMMENT_LEN + 1];
	oa_db_comment(&ctx, out);
	CHECK_EQ_STR(out,
		     " /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/");
	CHECK_EQ_INT(strlen(out), OA_DB_COMMENT_LEN);
}

/* ---- streams built message by message */

struct stream {
	uint8_t bytes[8192];
	size_t len;
};

static void pg_put(struct stream *s, char type, const char *body, size_t n)
{
	s->bytes[s->len++] = (uint8_t)type;
	uint32_t length = (uint32_t)n + 4;
	for (int i = 0; i < 4; i++)
		s->bytes[s->len++] = (uint8_t)(length >> (24 - 8 * i));
	memcpy(s->bytes + s->len, body, n);
	s->len += n;
}

#define PG_PUT(s, type, literal) pg_put(s, type, literal, sizeof literal - 1)

static void mysql_put(struct stream *s, uint8_t seq, const char *payload, size_t n)
{
	s->bytes[s->len++] = (uint8_t)(n & 0xff);
	s->bytes[s->len++] = (uint8_t)(n >> 8 & 0xff);
	s->bytes[s->len++] = (uint8_t)(n >> 16);
	s->bytes[s->len++] = seq;
	memcpy(s->bytes + s->len, payload, n);
	s->len += n;
}

#define MYSQL_PUT(s, seq, literal) mysql_put(s, seq, literal, sizeof literal - 1)

static void test_pg_frame(void)
{
	struct stream s = {.len = 0};
	struct oa_db_frame fr;
	PG_PUT(&s, 'Q', "SELECT 1;\0");
	CHECK(oa_pg_frame(s.bytes, s.len, &fr));
	CHECK_EQ_INT(fr.type, 'Q');
	CHECK_EQ_INT(fr.size, 15);
	CHECK_EQ_INT(fr.length_at, 1);
	CHECK_EQ_INT(fr.length_len, 4);
	CHECK_EQ_INT(fr.comment_at, 5 + 8);
	CHECK(memcmp(fr.length, "\0\0\0\x58", 4) == 0); /* 14 + 74 */
	/* not whole: no comment; no header: no frame */
	CHECK(oa_pg_frame(s.bytes, s.len - 1, &fr));
	CHECK_EQ_INT(fr.size, 15);
	CHECK_EQ_INT(fr.comment_at, 0);
	CHECK(!oa_pg_frame(s.bytes, 4, &fr));
	/* lengths the protocol has not: no frame (a walk would never end) */
	uint8_t bad[][5] = {{'Q', 0xff, 0xff, 0xff, 0xff}, {'Q', 0, 0, 0, 3}, {'Q', 0x40, 0, 0, 1}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(!oa_pg_frame(bad[i], 5, &fr));

	s.len = 0;
	PG_PUT(&s, 'P', "s1\0SELECT $1\0\0\1\0\0\0\x17");
	CHECK(oa_pg_frame(s.bytes, s.len, &fr));
	CHECK_EQ_INT(fr.comment_at, 5 + 3 + 9);
	/* a Parse without its parameter count, a Query whose text is not the
	 * whole body, a Bind: none */
	s.len = 0;
	PG_PUT(&s, 'P', "\0SELECT 1\0");
	CHECK(oa_pg_frame(s.bytes, s.len, &fr) && !fr.comment_at);
	s.len = 0;
	PG_PUT(&s, 'Q', "SELECT 1\0x\0");
	CHECK(oa_pg_frame(s.bytes, s.len, &fr) && !fr.comment_at);
	s.len = 0;
	PG_PUT(&s, 'B', "\0s1\0\0\0\0\0\0\0");
	CHECK(oa_pg_frame(s.bytes, s.len, &fr) && !fr.comment_at);
	CHECK_EQ_INT(fr.type, 'B');
	/* a length past PostgreSQL's limit once the comment is in */
	uint8_t huge[] = {'Q', 0x3f, 0xff, 0xff, 0xf0, 'S'};
	CHECK(oa_pg_frame(huge, sizeof huge, &fr) && !fr.comment_at);
	CHECK_EQ_INT(fr.size, 0x3ffffff1);
}

static void test_mysql_frame(void)
{
	struct stream s = {.len = 0};
	struct oa_db_frame fr;
	MYSQL_PUT(&s, 0, "\x03SELECT 1");
	CHECK(oa_mysql_frame(s.bytes, s.len, false, &fr));
	CHECK(fr.command);
	CHECK_EQ_INT(fr.type, 0x03);
	CHECK_EQ_INT(fr.size, 13);
	CHECK_EQ_INT(fr.length_at, 0);
	CHECK_EQ_INT(fr.length_len, 3);
	CHECK_EQ_INT(fr.comment_at, 13);
	CHECK(memcmp(fr.length, "\x53\0\0", 3) == 0); /* 9 + 74 */
	/* with query attributes: none (0, one set) before the text */
	s.len = 0;
	MYSQL_PUT(&s, 0, "\x03\x00\x01SELECT 1;");
	CHECK(oa_mysql_frame(s.bytes, s.len, true, &fr));
	CHECK_EQ_INT(fr.comment_at, 4 + 3 + 8);
	s.len = 0;
	MYSQL_PUT(&s, 0, "\x03\x01\x01\x08\x00\x01x\x01y1SELECT 1;");
	CHECK(oa_mysql_frame(s.bytes, s.len, true, &fr) && !fr.comment_at);
	s.len = 0;
	MYSQL_PUT(&s, 0, "\x16SELECT ?");
	CHECK(oa_mysql_frame(s.bytes, s.len, false, &fr));
	CHECK_EQ_INT(fr.comment_at, 13);
	/* not a command (a LOCAL INFILE's data), a COM_PING, not whole */
	s.len = 0;
	MYSQL_PUT(&s, 2, "\x03SELECT 1");
	CHECK(oa_mysql_frame(s.bytes, s.len, false, &fr) && !fr.command && !fr.comment_at);
	s.len = 0;
	MYSQL_PUT(&s, 0, "\x0e");
	CHECK(oa_mysql_frame(s.bytes, s.len, false, &fr) && fr.type == 0x0e && !fr.comment_at);
	s.len = 0;
	MYSQL_PUT(&s, 0, "\x03SELECT 1");
	CHECK(oa_mysql_frame(s.bytes, s.len - 1, false, &fr) && !fr.comment_at);
	CHECK(!oa_mysql_frame(s.bytes, 3, false, &fr));
	/* a payload the comment would take to 16 MiB - 1 bytes, a full one */
	uint8_t big[] = {0xb2, 0xff, 0xff, 0, 0x03};
	CHECK(oa_mysql_frame(big, sizeof big, false, &fr) && !fr.comment_at && !fr.continued);
	uint8_t full[] = {0xff, 0xff, 0xff, 0, 0x03};
	CHECK(oa_mysql_frame(full, sizeof full, false, &fr) && fr.continued);
}

/* ---- a client's stream through the rewrite */

/* Writes s (after its prefix) in writes ending at the cuts: the number of
 * comments that went out, -1 when the wire is wrong (db_client_run). */
static int write_stream(bool mysql, const struct stream *s, size_t prefix, const size_t *cuts,
			int n_cuts, size_t kernel_max)
{
	static struct db_client c;
	return db_client_run(&c, mysql, s->bytes, s->len, prefix, cuts, n_cuts, kernel_max);
}

/* Every split into two writes and three writes around the messages, the
 * kernel taking every part from 1 byte to all. */
static void check_every_way(bool mysql, const struct stream *s, size_t prefix, int queries)
{
	size_t all = DB_STREAM_MAX;
	CHECK_EQ_INT(write_stream(mysql, s, prefix, NULL, 0, all), queries);
	int broken = 0;
	for (size_t kernel = 1; kernel <= s->len + 2 * OA_DB_COMMENT_LEN;
	     kernel += kernel < 90 ? 1 : 37)
		for (size_t cut = 0; cut <= s->len; cut++)
			broken += write_stream(mysql, s, prefix, &cut, 1, kernel) < 0;
	CHECK_EQ_INT(broken, 0);
	/* a kernel taking everything: a query whole in a write gets its comment */
	for (size_t cut = 0; cut <= s->len; cut++)
		for (size_t cut2 = cut; cut2 <= s->len; cut2 += 3) {
			size_t cuts[2] = {cut, cut2};
			broken += write_stream(mysql, s, prefix, cuts, 2, all) < 0;
		}
	CHECK_EQ_INT(broken, 0);
	/* random writes and takes */
	srand(7);
	for (int round = 0; round < 300; round++) {
		size_t cuts[16];
		int n = 0;
		for (size_t at = (size_t)rand() % 9; at < s->len && n < 16;
		     at += 1 + (size_t)rand() % 40)
			cuts[n++] = at;
		broken += write_stream(mysql, s, prefix, cuts, n, 1 + (size_t)rand() % 120) < 0;
	}
	CHECK_EQ_INT(broken, 0);
}

static void test_pg_stream(void)
{
	struct stream s = {.len = 0};
	/* StartupMessage: protocol 3.0, user postgres */
	static const char startup[] = "\0\0\0\x17\0\3\0\0user\0postgres\0\0";
	memcpy(s.bytes, startup, sizeof startup - 1);
	s.len = sizeof startup - 1;
	size_t prefix = s.len;
	PG_PUT(&s, 'Q', "SELECT 1;\0");
	PG_PUT(&s, 'P', "\0SELECT $1 -- one\0\0\0");
	PG_PUT(&s, 'B', "\0\0\0\0\0\1\0\0\0\0011\0\0");
	PG_PUT(&s, 'E', "\0\0\0\0\0");
	PG_PUT(&s, 'S', "");
	PG_PUT(&s, 'Q',
	       "SELECT 2 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
	       "00f067aa0ba902b7-01'*/\0");
	PG_PUT(&s, 'Q', "UPDATE t SET a = 'x;y'\0");
	/* three queries take a comment */
	check_every_way(false, &s, prefix, 3);
}

static void test_mysql_stream(void)
{
	struct stream s = {.len = 0};
	/* a MySQL 8.0 client's login (database "test") and password packets */
	static const char login[] =
	    "a\000\000\001\010\252\n\000\377\377\377\000\340\000\000\000\000\000\000\000\000\000"
	    "\000\000\000\000\000\000\000\000\000\000\000\000\000\000root\000 8$\224\267u0\tOz"
	    "\2405\036\356\241>\262\345\376E\177\033\264\331@rT\323\251\223\332\353Utest\000cach"
	    "ing_sha2_password\000\005\000\000\003test\000";
	memcpy(s.bytes, login, sizeof login - 1);
	s.len = sizeof login - 1;
	size_t prefix = s.len;
	MYSQL_PUT(&s, 0, "\x03SELECT 1");
	MYSQL_PUT(&s, 0, "\x0e"); /* COM_PING */
	MYSQL_PUT(&s, 0, "\x16SELECT ? # one");
	MYSQL_PUT(&s, 0, "\x17\1\0\0\0\0\1\0\0\0");
	MYSQL_PUT(&s, 0, "\x03LOAD DATA LOCAL INFILE 'f' INTO TABLE t;");
	MYSQL_PUT(&s, 2, "1,2\n");
	MYSQL_PUT(&s, 3, "");
	check_every_way(true, &s, prefix, 3);
	/* a stream ending with a comment: it must all go out with the call
	 * that takes the program's last byte */
	s.len = prefix;
	MYSQL_PUT(&s, 0, "\x03SELECT 1");
	check_every_way(true, &s, prefix, 1);
}

int main(void)
{
	test_comment_at();
	test_comment();
	test_pg_frame();
	test_mysql_frame();
	test_pg_stream();
	test_mysql_stream();
	CHECK_DONE();
}
