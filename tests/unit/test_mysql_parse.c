#include "check.h"
#include "mysql_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 64

/* An event with its strings copied and its end made absolute. */
struct record {
	struct oa_mysql_event ev;
	size_t end; /* bytes of the whole input consumed when it came */
	char text[OA_MYSQL_TEXT_CAP], database[OA_MYSQL_NAME_CAP], sqlstate[6];
};

struct run {
	struct record records[MAX_RECORDS];
	size_t n;
};

/* How the parser is set up: commands queued on a server parser before
 * feeding it, and the client's capabilities when known. */
struct setup {
	enum oa_mysql_role role;
	const uint8_t *commands;
	size_t n_commands;
	uint32_t client_capabilities; /* 0: not told */
};

static const struct setup client = {OA_MYSQL_CLIENT, NULL, 0, 0};

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
	struct oa_mysql_parser p;
	oa_mysql_parser_init(&p, s->role);
	for (size_t i = 0; i < s->n_commands; i++)
		oa_mysql_expect_response(&p, s->commands[i]);
	if (s->client_capabilities)
		oa_mysql_set_client_capabilities(&p, s->client_capabilities);
	memset(r, 0, sizeof *r);
	size_t start = 0;
	for (size_t c = 0; c <= n_cuts; c++) {
		size_t end = c < n_cuts ? cuts[c] : len;
		while (start < end) {
			struct oa_mysql_event ev;
			size_t used =
			    oa_mysql_feed(&p, (const uint8_t *)data + start, end - start, &ev);
			CHECK(used > 0 && used <= end - start);
			start += used;
			if (ev.kind == OA_MYSQL_NONE) {
				CHECK_EQ_INT(start, end);
				continue;
			}
			if (r->n == MAX_RECORDS)
				continue;
			struct record *rec = &r->records[r->n++];
			memcpy(&rec->ev, &ev, sizeof rec->ev);
			rec->end = start;
			copy_string(rec->text, ev.text, sizeof rec->text);
			copy_string(rec->database, ev.database, sizeof rec->database);
			copy_string(rec->sqlstate, ev.sqlstate, sizeof rec->sqlstate);
			/* Which strings were set, not where they were. */
			rec->ev.text = ev.text ? "" : NULL;
			rec->ev.database = ev.database ? "" : NULL;
			rec->ev.sqlstate = ev.sqlstate ? "" : NULL;
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

/* A stream built packet by packet: the header is computed. */
struct stream {
	char bytes[4096];
	size_t len;
};

static void put(struct stream *s, uint8_t seq, const char *payload, size_t n)
{
	s->bytes[s->len++] = (char)(n & 0xff);
	s->bytes[s->len++] = (char)(n >> 8 & 0xff);
	s->bytes[s->len++] = (char)(n >> 16);
	s->bytes[s->len++] = (char)seq;
	memcpy(s->bytes + s->len, payload, n);
	s->len += n;
}

#define PUT(s, seq, literal) put(s, seq, literal, sizeof literal - 1)

static void check_response(const struct record *rec, uint8_t command, uint16_t error_code,
			   const char *sqlstate, uint64_t rows, uint8_t flags)
{
	CHECK_EQ_INT(rec->ev.kind, OA_MYSQL_RESPONSE);
	CHECK_EQ_INT(rec->ev.command, command);
	CHECK_EQ_INT(rec->ev.error_code, error_code);
	CHECK_EQ_STR(rec->sqlstate, sqlstate);
	CHECK_EQ_INT(rec->ev.rows, rows);
	CHECK_EQ_INT(rec->ev.flags, flags);
}

/* MySQL 8.0.32 and its client, as captured by Klemen Kresnik ("Exploring
 * the MySQL protocol", 2024; caching_sha2_password's full authentication):
 * the client's handshake response (database "test"), the password, a
 * COM_QUERY and COM_QUIT; the server's greeting, AuthMoreData, OK, and a
 * result set of two columns and one row with EOF packets. */
static const char mysql80_client[] =
    "a\000\000\001\010\252\n\000\377\377\377\000\340\000\000\000\000\000\000\000\000\000\000"
    "\000\000\000\000\000\000\000\000\000\000\000\000\000root\000 8$\224\267u0\tOz\2405\036"
    "\356\241>\262\345\376E\177\033\264\331@rT\323\251\223\332\353Utest\000caching_sha2_passw"
    "ord\000\005\000\000\003test\000T\000\000\000\003SELECT user, plugin FROM mysql.user WHER"
    "E CONCAT(user, '@', host) = CURRENT_USER();\001\000\000\000\001";
static const char mysql80_server[] =
    "J\000\000\000\n8.0.32\000\010\000\000\000\034F\031FYv@K\000\377\377\377\002\000\377\337"
    "\025\000\000\000\000\000\000\000\000\000\000?q4qSE^]\"z2=\000caching_sha2_password\000"
    "\002\000\000\002\001\004\007\000\000\004\000\000\000\002\000\000\000\001\000\000\001\002"
    "+\000\000\002\003def\005mysql\004user\004user\004user\004User\014\340\000\200\000\000"
    "\000\376\203@\000\000\000/\000\000\003\003def\005mysql\004user\004user\006plugin\006plug"
    "in\014\340\000\000\001\000\000\376\201\000\000\000\000\005\000\000\004\376\000\000\"\000"
    "\035\000\000\005\006klemen\025caching_sha2_password\005\000\000\006\376\000\000\"\000";
/* Its SSLRequest: the 32 fixed bytes with CLIENT_SSL. */
static const char mysql80_ssl[] =
    " \000\000\001\010\252\n\000\377\377\377\000\340\000\000\000\000\000\000\000\000\000\000"
    "\000\000\000\000\000\000\000\000\000\000\000\000\000";

static void test_session(void)
{
	const struct run *r = PARSE(&client, mysql80_client);
	CHECK_EQ_INT(r->n, 3);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_MYSQL_HANDSHAKE_RESPONSE);
	CHECK_EQ_STR(r->records[0].text, "root");
	CHECK_EQ_STR(r->records[0].database, "test");
	CHECK_EQ_INT(r->records[0].ev.capabilities, 0x000aaa08);
	CHECK_EQ_INT(r->records[0].end, 4 + 97);
	/* The password packet (sequence 3) is no command. */
	CHECK_EQ_INT(r->records[1].ev.kind, OA_MYSQL_COMMAND);
	CHECK_EQ_INT(r->records[1].ev.command, OA_MYSQL_COM_QUERY);
	CHECK_EQ_STR(r->records[1].text, "SELECT user, plugin FROM mysql.user WHERE CONCAT(user, "
					 "'@', host) = CURRENT_USER();");
	CHECK_EQ_INT(r->records[1].ev.length, 84);
	CHECK_EQ_INT(r->records[2].ev.command, OA_MYSQL_COM_QUIT);
	CHECK(r->records[2].ev.text == NULL);
	CHECK_EQ_INT(r->records[2].end, sizeof mysql80_client - 1);

	static const uint8_t query[] = {OA_MYSQL_COM_QUERY};
	const struct setup server = {OA_MYSQL_SERVER, query, 1, 0x000aaa08};
	r = PARSE(&server, mysql80_server);
	CHECK_EQ_INT(r->n, 3);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_MYSQL_HANDSHAKE);
	CHECK_EQ_STR(r->records[0].text, "8.0.32");
	CHECK_EQ_INT(r->records[0].ev.capabilities, 0xdfffffff);
	check_response(&r->records[1], OA_MYSQL_CONNECT, 0, "", 0, 0);
	check_response(&r->records[2], OA_MYSQL_COM_QUERY, 0, "", 1, OA_MYSQL_RESULT_SET);
	CHECK_EQ_INT(r->records[2].end, sizeof mysql80_server - 1);
	/* Without the client's capabilities the same bytes end the same way:
	 * result sets need no knowledge of CLIENT_DEPRECATE_EOF. */
	const struct setup server_not_told = {OA_MYSQL_SERVER, NULL, 0, 0};
	r = PARSE(&server_not_told, mysql80_server);
	CHECK_EQ_INT(r->n, 3);
	check_response(&r->records[2], OA_MYSQL_COM_QUERY, 0, "", 1, OA_MYSQL_RESULT_SET);

	r = PARSE(&client, mysql80_ssl);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_MYSQL_SSL_REQUEST);
	CHECK_EQ_INT(r->records[0].ev.capabilities, 0x000aaa08);
	/* The login then comes inside TLS as sequence 2, and commands after
	 * it: the parser is fed the plaintext. */
	static char secured[sizeof mysql80_ssl - 1 + sizeof mysql80_client - 1];
	memcpy(secured, mysql80_ssl, sizeof mysql80_ssl - 1);
	memcpy(secured + sizeof mysql80_ssl - 1, mysql80_client, sizeof mysql80_client - 1);
	secured[sizeof mysql80_ssl - 1 + 3] = 2;
	r = parse(&client, secured, sizeof secured);
	CHECK_EQ_INT(r->n, 4);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_MYSQL_SSL_REQUEST);
	CHECK_EQ_INT(r->records[1].ev.kind, OA_MYSQL_HANDSHAKE_RESPONSE);
	CHECK_EQ_STR(r->records[1].text, "root");
	CHECK_EQ_INT(r->records[2].ev.command, OA_MYSQL_COM_QUERY);
	CHECK_EQ_INT(r->records[3].ev.command, OA_MYSQL_COM_QUIT);
}

/* libmysqlclient 5.6's handshake response (no database, connection
 * attributes after the plugin name) and MySQL 5.5's greeting. */
static const char mysql56_response[] =
    "\262\000\000\001\205\242\036\000\000\000\000@\010\000\000\000\000\000\000\000\000\000"
    "\000\000\000\000\000\000\000\000\000\000\000\000\000\000root\000\024\"Py\242\022\324\350"
    "\202\345\263\364\032\227uk\310\276\333\237\200mysql_native_password\000a\003_os\tdebian6"
    ".0\014_client_name\010libmysql\004_pid\00522344\017_client_version\0105.6.6-m9\t_platfor"
    "m\006x86_64\003foo\003bar";
static const char mysql55_greeting[] =
    "[\000\000\000\n5.5.46-0ubuntu0.14.04.2\000_\000\000\000lb*Fc@Te\000\377\367\010\002\000"
    "\017\200\025\000\000\000\000\000\000\000\000\000\000~m&p(p~K7s_a\000mysql_native_passwor"
    "d\000";
/* The ERR packet of MySQL's documentation. */
static const char documented_error[] = "\027\000\000\001\377H\004#HY000No tables used";

static void test_older_versions(void)
{
	const struct run *r = PARSE(&client, mysql56_response);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_MYSQL_HANDSHAKE_RESPONSE);
	CHECK_EQ_STR(r->records[0].text, "root");
	CHECK_EQ_STR(r->records[0].database, "");
	const struct setup server = {OA_MYSQL_SERVER, NULL, 0, 0};
	r = PARSE(&server, mysql55_greeting);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_STR(r->records[0].text, "5.5.46-0ubuntu0.14.04.2");
	CHECK_EQ_INT(r->records[0].ev.capabilities, 0x800ff7ff);

	/* A greeting, then the documented ERR answering the login. */
	struct stream s = {.len = 0};
	memcpy(s.bytes, mysql55_greeting, sizeof mysql55_greeting - 1);
	s.len = sizeof mysql55_greeting - 1;
	memcpy(s.bytes + s.len, documented_error, sizeof documented_error - 1);
	s.len += sizeof documented_error - 1;
	r = parse(&server, s.bytes, s.len);
	CHECK_EQ_INT(r->n, 2);
	check_response(&r->records[1], OA_MYSQL_CONNECT, 1096, "HY000", 0, 0);
}

/* A greeting of MariaDB 10.11 and the login's OK, for the streams below. */
static void put_mariadb_login(struct stream *s)
{
	PUT(s, 0,
	    "\n5.5.5-10.11.6-MariaDB-0+deb12u1\000\011\000\000\000abcdefgh\000\376\367\055\002"
	    "\000\377\201\025\000\000\000\000\000\035\000\000\000ijklmnopqrst\000"
	    "mysql_native_password\000");
	PUT(s, 2, "\000\000\000\002\000\000\000");
}

static void test_errors_and_multiple_results(void)
{
	/* Client: COM_INIT_DB, a syntax error, a duplicate key, a multi-statement. */
	struct stream c = {.len = 0};
	PUT(&c, 0, "\002shop");
	PUT(&c, 0, "\003SELEC 1");
	PUT(&c, 0, "\003INSERT INTO accounts VALUES (1, 'dup@example.com')");
	PUT(&c, 0, "\003SELECT 1; UPDATE accounts SET balance = 0");
	const struct run *r = parse(&client, c.bytes, c.len);
	/* Without a handshake response first, the stream is not a session's start. */
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->records[0].ev.kind, OA_MYSQL_GAVE_UP);
	CHECK_EQ_INT(r->records[0].ev.reason, OA_MYSQL_NOT_MYSQL);

	struct stream s = {.len = 0};
	put_mariadb_login(&s);
	PUT(&s, 1, "\000\000\000\002\000\000\000");
	PUT(&s, 1,
	    "\377\050\004#42000You have an error in your SQL syntax; check the manual that "
	    "corresponds to your MariaDB server version for the right syntax to use near 'SELEC "
	    "1' at line 1");
	PUT(&s, 1, "\377\046\004#23000Duplicate entry '1' for key 'PRIMARY'");
	/* A result set whose EOF says more results follow, then an OK. */
	PUT(&s, 1, "\001");
	PUT(&s, 2, "\003def\000\000\000\0011\000\014\077\000\001\000\000\000\010\201\000\000\000");
	PUT(&s, 3, "\376\000\000\012\000");
	PUT(&s, 4, "\0011");
	PUT(&s, 5, "\376\000\000\012\000");
	PUT(&s, 6, "\000\003\000\002\000\000\000");
	static const uint8_t commands[] = {OA_MYSQL_COM_INIT_DB, OA_MYSQL_COM_QUERY,
					   OA_MYSQL_COM_QUERY, OA_MYSQL_COM_QUERY};
	const struct setup server = {OA_MYSQL_SERVER, commands, 4, 0};
	r = parse(&server, s.bytes, s.len);
	CHECK_EQ_INT(r->n, 6);
	CHECK_EQ_STR(r->records[0].text, "5.5.5-10.11.6-MariaDB-0+deb12u1");
	check_response(&r->records[1], OA_MYSQL_CONNECT, 0, "", 0, 0);
	check_response(&r->records[2], OA_MYSQL_COM_INIT_DB, 0, "", 0, 0);
	check_response(&r->records[3], OA_MYSQL_COM_QUERY, 1064, "42000", 0, 0);
	check_response(&r->records[4], OA_MYSQL_COM_QUERY, 1062, "23000", 0, 0);
	/* One row of the SELECT and three rows the UPDATE changed. */
	check_response(&r->records[5], OA_MYSQL_COM_QUERY, 0, "", 4, OA_MYSQL_RESULT_SET);
	CHECK_EQ_INT(r->records[5].end, s.len);
}

static void test_prepared_statements(void)
{
	/* A handshake response with CLIENT_DEPRECATE_EOF (and query attributes),
	 * then prepare, execute, close, ping, and two queries with attributes. */
	struct stream c = {.len = 0};
	PUT(&c, 1,
	    "\010\242\000\011\000\000\000\001\055\000\000\000\000\000\000\000\000\000\000\000\000"
	    "\000\000\000\000\000\000\000\000\000\000\000app\000\024abcdefghijklmnopqrst"
	    "shop\000");
	PUT(&c, 0, "\026SELECT email FROM accounts WHERE id = ?");
	PUT(&c, 0, "\027\001\000\000\000\000\001\000\000\000\000\001\003\000\002\000\000\000");
	PUT(&c, 0, "\031\001\000\000\000");
	PUT(&c, 0, "\016");
	PUT(&c, 0, "\003\000\001SELECT 1");
	PUT(&c, 0, "\003\001\001\000\001\376\000\003app\004demoSELECT 1");
	const struct run *r = parse(&client, c.bytes, c.len);
	CHECK_EQ_INT(r->n, 7);
	CHECK_EQ_INT(r->records[0].ev.capabilities, 0x0900a208);
	CHECK_EQ_STR(r->records[0].text, "app");
	CHECK_EQ_STR(r->records[0].database, "shop");
	CHECK_EQ_INT(r->records[1].ev.command, OA_MYSQL_COM_STMT_PREPARE);
	CHECK_EQ_STR(r->records[1].text, "SELECT email FROM accounts WHERE id = ?");
	CHECK_EQ_INT(r->records[2].ev.command, OA_MYSQL_COM_STMT_EXECUTE);
	CHECK_EQ_INT(r->records[2].ev.statement_id, 1);
	CHECK(r->records[2].ev.text == NULL);
	CHECK_EQ_INT(r->records[3].ev.command, OA_MYSQL_COM_STMT_CLOSE);
	CHECK_EQ_INT(r->records[3].ev.statement_id, 1);
	CHECK_EQ_INT(r->records[4].ev.command, OA_MYSQL_COM_PING);
	CHECK_EQ_STR(r->records[5].text, "SELECT 1");
	CHECK_EQ_INT(r->records[5].ev.flags, 0);
	CHECK_EQ_STR(r->records[6].text, "");
	CHECK_EQ_INT(r->records[6].ev.flags, OA_MYSQL_ATTRIBUTES);

	/* The server, with CLIENT_DEPRECATE_EOF: no EOF packets. */
	struct stream s = {.len = 0};
	put_mariadb_login(&s);
	PUT(&s, 1, "\000\001\000\000\000\001\000\001\000\000\000\000");
	PUT(&s, 2, "\003def\000\000\000\001?\000\014\077\000\000\000\000\000\375\200\000\000\000");
	PUT(&s, 3,
	    "\003def\004shop\010accounts\010accounts\005email\005email\014\055\000\000\004"
	    "\000\000\375\000\000\000\000");
	PUT(&s, 1, "\001");
	PUT(&s, 2,
	    "\003def\004shop\010accounts\010accounts\005email\005email\014\055\000\000\004"
	    "\000\000\375\000\000\000\000");
	PUT(&s, 3, "\000\000\017bob@example.com");
	PUT(&s, 4, "\376\000\000\002\000\000\000");
	PUT(&s, 1, "\000\000\000\002\000\000\000");
	static const uint8_t commands[] = {OA_MYSQL_COM_STMT_PREPARE, OA_MYSQL_COM_STMT_EXECUTE,
					   OA_MYSQL_COM_STMT_CLOSE, OA_MYSQL_COM_PING};
	const struct setup server = {OA_MYSQL_SERVER, commands, 4, 0x0900a208};
	r = parse(&server, s.bytes, s.len);
	CHECK_EQ_INT(r->n, 5);
	check_response(&r->records[2], OA_MYSQL_COM_STMT_PREPARE, 0, "", 0, 0);
	CHECK_EQ_INT(r->records[2].ev.statement_id, 1);
	check_response(&r->records[3], OA_MYSQL_COM_STMT_EXECUTE, 0, "", 1, OA_MYSQL_RESULT_SET);
	/* COM_STMT_CLOSE has no response: the OK answers the ping. */
	check_response(&r->records[4], OA_MYSQL_COM_PING, 0, "", 0, 0);
	CHECK_EQ_INT(r->records[4].end, s.len);

	/* The same prepare with EOF packets (a client without CLIENT_DEPRECATE_EOF). */
	s.len = 0;
	put_mariadb_login(&s);
	PUT(&s, 1, "\000\002\000\000\000\001\000\001\000\000\000\000");
	PUT(&s, 2, "\003def\000\000\000\001?\000\014\077\000\000\000\000\000\375\200\000\000\000");
	PUT(&s, 3, "\376\000\000\002\000");
	PUT(&s, 4,
	    "\003def\004shop\010accounts\010accounts\005email\005email\014\055\000\000\004"
	    "\000\000\375\000\000\000\000");
	PUT(&s, 5, "\376\000\000\002\000");
	PUT(&s, 1, "\000\000\000\002\000\000\000");
	const struct setup server_with_eofs = {OA_MYSQL_SERVER, commands + 3, 0, 0x0000a208};
	struct setup prepare_then_ping = server_with_eofs;
	static const uint8_t prepare_ping[] = {OA_MYSQL_COM_STMT_PREPARE, OA_MYSQL_COM_PING};
	prepare_then_ping.commands = prepare_ping;
	prepare_then_ping.n_commands = 2;
	r = parse(&prepare_then_ping, s.bytes, s.len);
	CHECK_EQ_INT(r->n, 4);
	check_response(&r->records[2], OA_MYSQL_COM_STMT_PREPARE, 0, "", 0, 0);
	CHECK_EQ_INT(r->records[2].ev.statement_id, 2);
	check_response(&r->records[3], OA_MYSQL_COM_PING, 0, "", 0, 0);

	/* MariaDB's metadata cache: a 0 after the column count, no definitions. */
	s.len = 0;
	put_mariadb_login(&s);
	PUT(&s, 1, "\001\000");
	PUT(&s, 2, "\000\000\003bob");
	PUT(&s, 3, "\000\000\005alice");
	PUT(&s, 4, "\376\000\000\002\000\000\000");
	static const uint8_t execute[] = {OA_MYSQL_COM_STMT_EXECUTE};
	const struct setup cached = {OA_MYSQL_SERVER, execute, 1, 0x0100a208};
	r = parse(&cached, s.bytes, s.len);
	CHECK_EQ_INT(r->n, 3);
	check_response(&r->records[2], OA_MYSQL_COM_STMT_EXECUTE, 0, "", 2, OA_MYSQL_RESULT_SET);
}

static void test_local_infile_and_big_packets(void)
{
	/* LOAD DATA LOCAL INFILE: the file's packets are no commands. */
	struct stream c = {.len = 0};
	PUT(&c, 1,
	    "\010\242\000\000\000\000\000\001\055\000\000\000\000\000\000\000\000\000\000\000\000"
	    "\000\000\000\000\000\000\000\000\000\000\000app\000\000shop\000");
	PUT(&c, 0, "\003LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t");
	PUT(&c, 2, "1,a\n2,b\n");
	PUT(&c, 3, "");
	const struct run *r = parse(&client, c.bytes, c.len);
	CHECK_EQ_INT(r->n, 2);
	CHECK_EQ_INT(r->records[1].ev.command, OA_MYSQL_COM_QUERY);
	struct stream s = {.len = 0};
	put_mariadb_login(&s);
	PUT(&s, 1, "\373/tmp/x.csv");
	PUT(&s, 4, "\000\002\000\002\000\000\000");
	const struct setup server = {OA_MYSQL_SERVER, NULL, 0, 0};
	r = parse(&server, s.bytes, s.len);
	CHECK_EQ_INT(r->n, 3);
	check_response(&r->records[2], OA_MYSQL_COM_QUERY, 0, "", 2, 0);

	/* A 20 MB query in two packets, and a result set with a 20 MB row. */
	size_t big = 20u << 20, len = 0;
	char *q = malloc(2 * big + 4096);
	/* The handshake response first. */
	size_t response_len = 4 + (uint8_t)c.bytes[0];
	memcpy(q, c.bytes, response_len);
	len = response_len;
	memcpy(q + len, "\377\377\377\000\003", 5);
	len += 5;
	memset(q + len, 'x', 0xffffff - 1);
	len += 0xffffff - 1;
	size_t rest = big - 0xffffff;
	q[len++] = (char)(rest & 0xff);
	q[len++] = (char)(rest >> 8 & 0xff);
	q[len++] = (char)(rest >> 16);
	q[len++] = 1;
	memset(q + len, 'y', rest);
	len += rest;
	memcpy(q + len, "\001\000\000\000\016", 5);
	len += 5;
	struct run *runs = malloc(sizeof *runs);
	size_t cuts[] = {10, 60, 5000, 0xffffff, 0xffffff + 70};
	run_cuts(&client, q, len, cuts, 5, runs);
	CHECK_EQ_INT(runs->n, 3);
	CHECK_EQ_INT(runs->records[1].ev.command, OA_MYSQL_COM_QUERY);
	CHECK_EQ_INT(runs->records[1].ev.length, big);
	CHECK_EQ_INT(strlen(runs->records[1].text), OA_MYSQL_TEXT_CAP - 1);
	CHECK_EQ_INT(runs->records[1].ev.flags, OA_MYSQL_TRUNCATED);
	CHECK_EQ_INT(runs->records[2].ev.command, OA_MYSQL_COM_PING);

	struct stream login = {.len = 0};
	put_mariadb_login(&login);
	memcpy(q, login.bytes, login.len);
	len = login.len;
	memcpy(q + len, "\001\000\000\001\001", 5);
	len += 5;
	static const char column[] = "\027\000\000\002\003def\000\000\000\001b\000\014\077\000\000"
				     "\000\000\000\374\220\000\000\000\000";
	memcpy(q + len, column, sizeof column - 1);
	len += sizeof column - 1;
	memcpy(q + len, "\377\377\377\003\375", 5);
	len += 5;
	q[len++] = (char)(big & 0xff);
	q[len++] = (char)(big >> 8 & 0xff);
	q[len++] = (char)(big >> 16);
	memset(q + len, 'z', 0xffffff - 4);
	len += 0xffffff - 4;
	rest = big + 4 - 0xffffff;
	q[len++] = (char)(rest & 0xff);
	q[len++] = (char)(rest >> 8 & 0xff);
	q[len++] = (char)(rest >> 16);
	q[len++] = 4;
	memset(q + len, 'z', rest);
	len += rest;
	memcpy(q + len, "\007\000\000\005\376\000\000\002\000\000\000", 11);
	len += 11;
	run_cuts(&server, q, len, cuts, 5, runs);
	CHECK_EQ_INT(runs->n, 3);
	check_response(&runs->records[2], OA_MYSQL_COM_QUERY, 0, "", 1, OA_MYSQL_RESULT_SET);
	CHECK_EQ_INT(runs->records[2].end, len);
	free(runs);
	free(q);
}

static void check_gave_up(const struct setup *s, const char *data, size_t len, size_t events,
			  enum oa_mysql_gave_up_reason reason)
{
	const struct run *r = parse(s, data, len);
	CHECK_EQ_INT(r->n, events + 1);
	CHECK_EQ_INT(r->records[events].ev.kind, OA_MYSQL_GAVE_UP);
	CHECK_EQ_INT(r->records[events].ev.reason, reason);
}

#define GAVE_UP(setup, literal, events, reason)                                                    \
	check_gave_up(setup, literal, sizeof literal - 1, events, reason)

static void test_malformed(void)
{
	const struct setup server = {OA_MYSQL_SERVER, NULL, 0, 0};
	GAVE_UP(&client, "\026\003\001\002\000\001\000\001\374\003\003", 0, OA_MYSQL_NOT_MYSQL);
	GAVE_UP(&server, "HTTP/1.1 200 OK\r\n", 0, OA_MYSQL_NOT_MYSQL);
	GAVE_UP(&server, "\005\000\000\000\011abcd", 0, OA_MYSQL_NOT_MYSQL);
	/* A handshake response shorter than its fixed part. */
	GAVE_UP(&client, "\003\000\000\001\010\242\000", 0, OA_MYSQL_NOT_MYSQL);
	/* After a valid handshake response, an empty command packet. */
	struct stream c = {.len = 0};
	PUT(&c, 1,
	    "\010\242\000\000\000\000\000\001\055\000\000\000\000\000\000\000\000\000\000\000\000"
	    "\000\000\000\000\000\000\000\000\000\000\000app\000\000shop\000");
	memcpy(c.bytes + c.len, "\000\000\000\000", 4);
	check_gave_up(&client, c.bytes, c.len + 4, 1, OA_MYSQL_MALFORMED);
	/* The compressed protocol: reported, then given up. */
	c.bytes[4] |= 0x20;
	memcpy(c.bytes + c.len, "\011\000\000\000\005\000\000\003SELECT 1", 16);
	check_gave_up(&client, c.bytes, c.len + 16, 1, OA_MYSQL_COMPRESSED);
}

static void check_greeting(const char *bytes, size_t len, bool expected)
{
	CHECK(oa_mysql_greeting_start((const uint8_t *)bytes, len) == expected);
}

/* The first bytes a server sends decide whether a connection is MySQL's. */
static void test_greeting_start(void)
{
	check_greeting("\x5b\0\0\0\x0a"
		       "10.11.6",
		       12, true); /* MariaDB's handshake */
	check_greeting("\x4a\0\0\0\x0a"
		       "8.0.36",
		       11, true);		      /* MySQL's */
	check_greeting("\x4a\0\0\0\x09", 5, false);   /* protocol 9 */
	check_greeting("\x4a\0\0\x01\x0a", 5, false); /* sequence 1 */
	check_greeting("\0\0\0\0\x0a", 5, false);     /* empty */
	check_greeting("\x4a\0\0\0", 4, false);
	check_greeting("HTTP/1.1 200 OK\r\n", 17, false);
	check_greeting("+OK\r\n", 5, false);
}

int main(void)
{
	test_greeting_start();
	test_session();
	test_older_versions();
	test_errors_and_multiple_results();
	test_prepared_statements();
	test_local_infile_and_big_packets();
	test_malformed();
	CHECK_DONE();
}
