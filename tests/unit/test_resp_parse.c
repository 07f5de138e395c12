#include "check.h"
#include "resp_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 64

/* An event with its strings copied and its end made absolute. */
struct record {
	struct oa_resp_event ev;
	size_t end; /* bytes of the whole input consumed when it came */
	char name[OA_RESP_NAME_CAP], key[OA_RESP_KEY_CAP], text[OA_RESP_TEXT_CAP];
};

struct run {
	struct record records[MAX_RECORDS];
	size_t n;
};

static void copy_string(char *dst, const char *src, size_t cap)
{
	dst[0] = '\0';
	if (src) {
		CHECK(strlen(src) < cap);
		strncat(dst, src, cap - 1);
	}
}

/* Feeds data in pieces ending at each cut (and at len); pubsub: the reply
 * parser was told of a SUBSCRIBE. */
static void run_cuts(enum oa_resp_role role, bool pubsub, const char *data, size_t len,
		     const size_t *cuts, size_t n_cuts, struct run *r)
{
	struct oa_resp_parser p;
	oa_resp_parser_init(&p, role);
	if (pubsub)
		oa_resp_expect_pubsub(&p);
	memset(r, 0, sizeof *r);
	size_t start = 0;
	for (size_t c = 0; c <= n_cuts; c++) {
		size_t end = c < n_cuts ? cuts[c] : len;
		while (start < end) {
			struct oa_resp_event ev;
			size_t used =
			    oa_resp_feed(&p, (const uint8_t *)data + start, end - start, &ev);
			CHECK(used <= end - start);
			CHECK(used > 0);
			start += used;
			if (ev.kind == OA_RESP_NONE) {
				CHECK_EQ_INT(start, end);
				continue;
			}
			if (r->n == MAX_RECORDS)
				continue;
			struct record *rec = &r->records[r->n++];
			memcpy(&rec->ev, &ev, sizeof rec->ev);
			rec->end = start;
			copy_string(rec->name, ev.name, sizeof rec->name);
			copy_string(rec->key, ev.key, sizeof rec->key);
			copy_string(rec->text, ev.text, sizeof rec->text);
			rec->ev.name = rec->ev.key = rec->ev.text = NULL;
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
static void check_split_invariance(enum oa_resp_role role, bool pubsub, const char *data,
				   size_t len, const struct run *whole)
{
	struct run *other = malloc(sizeof *other);
	size_t *cuts = malloc((len + 1) * sizeof *cuts);
	int failures = 0;
	for (size_t split = 0; split <= len; split++) {
		run_cuts(role, pubsub, data, len, &split, 1, other);
		if (!same_runs(whole, other) && !failures++)
			fprintf(stderr, "first differing split point: %zu\n", split);
	}
	CHECK_EQ_INT(failures, 0);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	run_cuts(role, pubsub, data, len, cuts, len ? len - 1 : 0, other);
	CHECK(same_runs(whole, other));
	srand(17);
	for (int round = 0; round < 50; round++) {
		size_t n = 0;
		for (size_t at = (size_t)rand() % 7; at < len; at += 1 + (size_t)rand() % 9)
			cuts[n++] = at;
		run_cuts(role, pubsub, data, len, cuts, n, other);
		CHECK(same_runs(whole, other));
	}
	free(cuts);
	free(other);
}

static void parse(enum oa_resp_role role, bool pubsub, const char *data, size_t len, struct run *r)
{
	run_cuts(role, pubsub, data, len, NULL, 0, r);
	check_split_invariance(role, pubsub, data, len, r);
}

#define PARSE(role, pubsub, literal, r) parse(role, pubsub, literal, sizeof literal - 1, r)

static void check_command(const struct record *rec, const char *name, const char *key,
			  uint32_t argc, uint8_t flags)
{
	CHECK_EQ_INT(rec->ev.kind, OA_RESP_COMMAND);
	CHECK_EQ_STR(rec->name, name);
	CHECK_EQ_STR(rec->key, key);
	CHECK_EQ_INT(rec->ev.argc, argc);
	CHECK_EQ_INT(rec->ev.flags, flags);
}

static void check_reply(const struct record *rec, enum oa_resp_event_kind kind, uint8_t type,
			int64_t value, const char *text)
{
	CHECK_EQ_INT(rec->ev.kind, kind);
	CHECK_EQ_INT(rec->ev.type, type);
	CHECK_EQ_INT(rec->ev.value, value);
	CHECK_EQ_STR(rec->text, text);
}

/* Bytes redis-server 7.0 exchanged with a client (a pipeline of nine). */
static const char basic_commands[] =
    "*3\r\n$3\r\nSET\r\n$6\r\nuser:1\r\n$5\r\nalice\r\n*2\r\n$3\r\nGET\r\n$6\r\nuser:1\r\n"
    "*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n"
    "*5\r\n$5\r\nLPUSH\r\n$4\r\nlist\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    "*4\r\n$6\r\nLRANGE\r\n$4\r\nlist\r\n$1\r\n0\r\n$2\r\n-1\r\n"
    "*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$4\r\nINCR\r\n$6\r\nuser:1\r\n"
    "*1\r\n$3\r\nFOO\r\n";
static const char basic_replies[] =
    "+OK\r\n$5\r\nalice\r\n$-1\r\n:1\r\n:3\r\n*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n:1\r\n"
    "-ERR value is not an integer or out of range\r\n"
    "-ERR unknown command 'FOO', with args beginning with: \r\n";

static void test_pipeline(void)
{
	struct run r;
	PARSE(OA_RESP_COMMANDS, false, basic_commands, &r);
	CHECK_EQ_INT(r.n, 9);
	check_command(&r.records[0], "SET", "user:1", 3, 0);
	CHECK_EQ_INT(r.records[0].end, 36);
	check_command(&r.records[1], "GET", "user:1", 2, 0);
	check_command(&r.records[4], "LPUSH", "list", 5, 0);
	check_command(&r.records[5], "LRANGE", "list", 4, 0);
	check_command(&r.records[8], "FOO", "", 1, 0);
	CHECK_EQ_INT(r.records[8].end, sizeof basic_commands - 1);

	PARSE(OA_RESP_REPLIES, false, basic_replies, &r);
	CHECK_EQ_INT(r.n, 9);
	check_reply(&r.records[0], OA_RESP_REPLY, OA_RESP_SIMPLE, 0, "OK");
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_BULK, 5, "");
	check_reply(&r.records[2], OA_RESP_REPLY, OA_RESP_NULL, 0, "");
	check_reply(&r.records[3], OA_RESP_REPLY, OA_RESP_INTEGER, 1, "");
	check_reply(&r.records[4], OA_RESP_REPLY, OA_RESP_INTEGER, 3, "");
	/* A reply's elements are a user's data: not captured. */
	check_reply(&r.records[5], OA_RESP_REPLY, OA_RESP_ARRAY, 3, "");
	CHECK_EQ_INT(r.records[5].end, 5 + 11 + 5 + 4 + 4 + 4 + 3 * 7);
	check_reply(&r.records[6], OA_RESP_REPLY, OA_RESP_INTEGER, 1, "");
	check_reply(&r.records[7], OA_RESP_REPLY, OA_RESP_ERROR, 0, "ERR");
	check_reply(&r.records[8], OA_RESP_REPLY, OA_RESP_ERROR, 0, "ERR");
	CHECK_EQ_INT(r.records[8].end, sizeof basic_replies - 1);
}

/* redis-benchmark 7.0 -c 1 -n 32 -P 16 -t set,get, as captured: CONFIG GET
 * on a first connection, then 32 SETs and 32 GETs of its value "VXK", in
 * pipelines of 16, on two more. */
static void test_redis_benchmark(void)
{
	static const char config[] = "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n"
				     "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nappendonly\r\n";
	static const char config_replies[] =
	    "*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n";
	struct run r;
	PARSE(OA_RESP_COMMANDS, false, config, &r);
	CHECK_EQ_INT(r.n, 2);
	check_command(&r.records[0], "CONFIG", "GET", 3, 0);
	PARSE(OA_RESP_REPLIES, false, config_replies, &r);
	CHECK_EQ_INT(r.n, 2);
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_ARRAY, 2, "");

	static const char set[] = "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n";
	static const char get[] = "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n";
	static char commands[32 * (sizeof set - 1)], replies[32 * 9];
	const char *const streams[][2] = {{set, "+OK\r\n"}, {get, "$3\r\nVXK\r\n"}};
	for (int kind = 0; kind < 2; kind++) {
		size_t command_len = strlen(streams[kind][0]), reply_len = strlen(streams[kind][1]);
		for (int i = 0; i < 32; i++) {
			memcpy(commands + i * command_len, streams[kind][0], command_len);
			memcpy(replies + i * reply_len, streams[kind][1], reply_len);
		}
		parse(OA_RESP_COMMANDS, false, commands, 32 * command_len, &r);
		CHECK_EQ_INT(r.n, 32);
		for (size_t i = 0; i < r.n; i++)
			check_command(&r.records[i], kind ? "GET" : "SET", "key:__rand_int__",
				      kind ? 2 : 3, 0);
		CHECK_EQ_INT(r.records[31].end, 32 * command_len);
		parse(OA_RESP_REPLIES, false, replies, 32 * reply_len, &r);
		CHECK_EQ_INT(r.n, 32);
		for (size_t i = 0; i < r.n; i++)
			check_reply(&r.records[i], OA_RESP_REPLY,
				    kind ? OA_RESP_BULK : OA_RESP_SIMPLE, kind ? 3 : 0,
				    kind ? "" : "OK");
	}
}

static void test_transaction(void)
{
	static const char commands[] =
	    "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"
	    "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*1\r\n$4\r\nEXEC\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
	    "MULTI\r\nRESET\r\nPING\r\n";
	static const char replies[] = "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n$1\r\n2\r\n";
	struct run r;
	PARSE(OA_RESP_COMMANDS, false, commands, &r);
	CHECK_EQ_INT(r.n, 8);
	check_command(&r.records[0], "MULTI", "", 1, 0);
	check_command(&r.records[1], "SET", "k", 3, OA_RESP_QUEUED);
	check_command(&r.records[2], "INCR", "k", 2, OA_RESP_QUEUED);
	check_command(&r.records[3], "EXEC", "", 1, OA_RESP_QUEUED);
	check_command(&r.records[4], "GET", "k", 2, 0);
	/* RESET leaves a transaction too. */
	check_command(&r.records[6], "RESET", "", 1, OA_RESP_INLINE | OA_RESP_QUEUED);
	check_command(&r.records[7], "PING", "", 1, OA_RESP_INLINE);
	PARSE(OA_RESP_REPLIES, false, replies, &r);
	CHECK_EQ_INT(r.n, 5);
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_SIMPLE, 0, "QUEUED");
	/* EXEC's array of results is one reply. */
	check_reply(&r.records[3], OA_RESP_REPLY, OA_RESP_ARRAY, 2, "");
	check_reply(&r.records[4], OA_RESP_REPLY, OA_RESP_BULK, 1, "");
}

static void test_resp3(void)
{
	/* HELLO 3, HSET, HGETALL, SADD, SMEMBERS, GET (missing), INCRBYFLOAT,
	 * CLIENT TRACKING on, GET k, then another client's SET k: an
	 * invalidation push arrives after GET's reply. */
	static const char replies[] =
	    "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n"
	    ":3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaste"
	    "r\r\n$7\r\nmodules\r\n*0\r\n:2\r\n%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
	    ":1\r\n~1\r\n$1\r\nx\r\n_\r\n$3\r\n1.5\r\n+OK\r\n$1\r\n2\r\n"
	    ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n";
	struct run r;
	PARSE(OA_RESP_REPLIES, false, replies, &r);
	CHECK_EQ_INT(r.n, 10);
	check_reply(&r.records[0], OA_RESP_REPLY, OA_RESP_MAP, 7, "");
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_INTEGER, 2, "");
	check_reply(&r.records[2], OA_RESP_REPLY, OA_RESP_MAP, 2, "");
	check_reply(&r.records[4], OA_RESP_REPLY, OA_RESP_SET, 1, "");
	check_reply(&r.records[5], OA_RESP_REPLY, OA_RESP_NULL, 0, "");
	check_reply(&r.records[6], OA_RESP_REPLY, OA_RESP_BULK, 3, "");
	check_reply(&r.records[8], OA_RESP_REPLY, OA_RESP_BULK, 1, "");
	check_reply(&r.records[9], OA_RESP_PUSH, OA_RESP_PUSH_TYPE, 2, "invalidate");

	/* Types redis-server does not send here, nested, after an attribute. */
	static const char more[] =
	    "|1\r\n+ttl\r\n:3600\r\n*3\r\n,3.14\r\n#t\r\n(12345678901234567890\r\n"
	    "#f\r\n!21\r\nSYNTAX invalid syntax\r\n=15\r\ntxt:Some string\r\n"
	    "*2\r\n|1\r\n+a\r\n*1\r\n:1\r\n%1\r\n+k\r\n*-1\r\n:2\r\n"
	    ":-42\r\n";
	PARSE(OA_RESP_REPLIES, false, more, &r);
	CHECK_EQ_INT(r.n, 6);
	check_reply(&r.records[0], OA_RESP_REPLY, OA_RESP_ARRAY, 3, "");
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_BOOLEAN, 0, "");
	check_reply(&r.records[2], OA_RESP_REPLY, OA_RESP_BLOB_ERROR, 21, "SYNTAX");
	check_reply(&r.records[3], OA_RESP_REPLY, OA_RESP_VERBATIM, 15, "");
	check_reply(&r.records[4], OA_RESP_REPLY, OA_RESP_ARRAY, 2, "");
	check_reply(&r.records[5], OA_RESP_REPLY, OA_RESP_INTEGER, -42, "");
}

static void test_pubsub(void)
{
	/* RESP2: SUBSCRIBE news sport, a PUBLISH from elsewhere, then PING. */
	static const char resp2[] = "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
				    "*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n"
				    "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
				    "*2\r\n$4\r\npong\r\n$0\r\n\r\n";
	struct run r;
	PARSE(OA_RESP_REPLIES, true, resp2, &r);
	CHECK_EQ_INT(r.n, 4);
	check_reply(&r.records[0], OA_RESP_REPLY, OA_RESP_ARRAY, 3, "subscribe");
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_ARRAY, 3, "subscribe");
	check_reply(&r.records[2], OA_RESP_PUSH, OA_RESP_ARRAY, 3, "message");
	check_reply(&r.records[3], OA_RESP_REPLY, OA_RESP_ARRAY, 2, "pong");
	/* The same bytes without a SUBSCRIBE sent are replies (an LRANGE could
	 * return them). */
	PARSE(OA_RESP_REPLIES, false, resp2, &r);
	check_reply(&r.records[2], OA_RESP_REPLY, OA_RESP_ARRAY, 3, "");

	static const char commands[] = "*3\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n$5\r\nsport\r\n"
				       "*2\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n";
	PARSE(OA_RESP_COMMANDS, false, commands, &r);
	CHECK_EQ_INT(r.n, 2);
	check_command(&r.records[0], "SUBSCRIBE", "news", 3, OA_RESP_SUBSCRIBES);
	check_command(&r.records[1], "PSUBSCRIBE", "n*", 2, OA_RESP_SUBSCRIBES);

	/* RESP3: the confirmation is a push too; GET's reply is between. */
	static const char resp3[] = ">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n$1\r\n2\r\n"
				    ">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n";
	PARSE(OA_RESP_REPLIES, false, resp3, &r);
	CHECK_EQ_INT(r.n, 3);
	check_reply(&r.records[0], OA_RESP_PUSH, OA_RESP_PUSH_TYPE, 3, "subscribe");
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_BULK, 1, "");
	check_reply(&r.records[2], OA_RESP_PUSH, OA_RESP_PUSH_TYPE, 3, "message");
}

static void test_inline_and_secrets(void)
{
	/* redis-server answered +PONG, +OK (key "a b" set), :0. */
	static const char commands[] = "PING\r\nset \"a b\" c\r\n\r\nEXISTS a\n";
	struct run r;
	PARSE(OA_RESP_COMMANDS, false, commands, &r);
	CHECK_EQ_INT(r.n, 3);
	check_command(&r.records[0], "PING", "", 1, OA_RESP_INLINE);
	check_command(&r.records[1], "SET", "a b", 3, OA_RESP_INLINE);
	check_command(&r.records[2], "EXISTS", "a", 2, OA_RESP_INLINE);

	/* AUTH's argument is a password: never captured, array or inline. */
	static const char auth[] = "*2\r\n$4\r\nauth\r\n$7\r\nhunter2\r\nAUTH hunter2\r\n"
				   "*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$7\r\nhunter2\r\n";
	PARSE(OA_RESP_COMMANDS, false, auth, &r);
	CHECK_EQ_INT(r.n, 3);
	check_command(&r.records[0], "AUTH", "", 2, OA_RESP_KEY_WITHHELD);
	check_command(&r.records[1], "AUTH", "", 2, OA_RESP_INLINE | OA_RESP_KEY_WITHHELD);
	check_command(&r.records[2], "AUTH", "", 3, OA_RESP_KEY_WITHHELD);
	for (size_t i = 0; i < r.n; i++)
		CHECK(!strstr(r.records[i].key, "hunter2"));

	static const char errors[] =
	    "-ERR AUTH <password> called without any password configured for the default user. "
	    "Are you sure your configuration is correct?\r\n"
	    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
	PARSE(OA_RESP_REPLIES, false, errors, &r);
	CHECK_EQ_INT(r.n, 2);
	check_reply(&r.records[0], OA_RESP_REPLY, OA_RESP_ERROR, 0, "ERR");
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_ERROR, 0, "WRONGTYPE");
}

static void test_truncation_and_big_values(void)
{
	/* A 100000-element LRANGE reply and a 1 MB bulk: skipped by length. */
	size_t n = 100000, cap = n * 16 + (1 << 20) + 64, len = 0;
	char *big = malloc(cap);
	len += (size_t)sprintf(big + len, "*%zu\r\n", n);
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(big + len, "$5\r\nv%04zu\r\n", i % 10000);
	len += (size_t)sprintf(big + len, "$%d\r\n", 1 << 20);
	memset(big + len, 'x', 1 << 20);
	len += 1 << 20;
	len += (size_t)sprintf(big + len, "\r\n");
	struct run r;
	size_t cuts[] = {3, 4000, 1000000};
	run_cuts(OA_RESP_REPLIES, false, big, len, cuts, 3, &r);
	CHECK_EQ_INT(r.n, 2);
	check_reply(&r.records[0], OA_RESP_REPLY, OA_RESP_ARRAY, 100000, "");
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_BULK, 1 << 20, "");
	CHECK_EQ_INT(r.records[1].end, len);
	free(big);

	static const char long_names[] =
	    "*2\r\n$30\r\nabcdefghijklmnopqrstuvwxyz0123\r\n"
	    "$60\r\nk123456789k123456789k123456789k123456789k123456789k123456789\r\n";
	PARSE(OA_RESP_COMMANDS, false, long_names, &r);
	CHECK_EQ_INT(r.n, 1);
	check_command(&r.records[0], "ABCDEFGHIJKLMNOPQRSTUVW",
		      "k123456789k123456789k123456789k123456789k123456", 2, OA_RESP_TRUNCATED);
	static const char long_status[] = "+abcdefghijklmnopqrstuvwxyz\r\n:9223372036854775807\r\n";
	PARSE(OA_RESP_REPLIES, false, long_status, &r);
	CHECK_EQ_INT(r.n, 2);
	check_reply(&r.records[0], OA_RESP_REPLY, OA_RESP_SIMPLE, 0, "abcdefghijklmnopqrstuvw");
	CHECK_EQ_INT(r.records[0].ev.flags, OA_RESP_TRUNCATED);
	check_reply(&r.records[1], OA_RESP_REPLY, OA_RESP_INTEGER, INT64_MAX, "");
}

static void check_gave_up(enum oa_resp_role role, const char *data, size_t len, size_t events,
			  enum oa_resp_gave_up_reason reason)
{
	struct run r;
	parse(role, false, data, len, &r);
	CHECK_EQ_INT(r.n, events + 1);
	CHECK_EQ_INT(r.records[events].ev.kind, OA_RESP_GAVE_UP);
	CHECK_EQ_INT(r.records[events].ev.reason, reason);
	/* Nothing after giving up. */
	struct oa_resp_parser p;
	struct oa_resp_event ev;
	oa_resp_parser_init(&p, role);
	size_t used = 0;
	for (size_t k = 0; k <= events; k++)
		used += oa_resp_feed(&p, (const uint8_t *)data + used, len - used, &ev);
	CHECK_EQ_INT(ev.kind, OA_RESP_GAVE_UP);
	CHECK_EQ_INT(oa_resp_feed(&p, (const uint8_t *)"+OK\r\n", 5, &ev), 5);
	CHECK_EQ_INT(ev.kind, OA_RESP_NONE);
}

#define GAVE_UP(role, literal, events, reason)                                                     \
	check_gave_up(role, literal, sizeof literal - 1, events, reason)

static void test_malformed(void)
{
	/* A TLS ClientHello, HTTP/2's preface and bytes after a valid command. */
	GAVE_UP(OA_RESP_COMMANDS, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0,
		OA_RESP_NOT_RESP);
	GAVE_UP(OA_RESP_REPLIES, "HTTP/1.1 200 OK\r\n", 0, OA_RESP_NOT_RESP);
	GAVE_UP(OA_RESP_COMMANDS, "*1\r\n$4\r\nPING\r\n*1\r\n+PING\r\n", 1, OA_RESP_MALFORMED);
	GAVE_UP(OA_RESP_COMMANDS, "*1\r\n$4\r\nPINGxx", 0, OA_RESP_NOT_RESP);
	GAVE_UP(OA_RESP_COMMANDS, "*1\r\n$-1\r\n", 0, OA_RESP_NOT_RESP);
	GAVE_UP(OA_RESP_COMMANDS, "*99999999999\r\n", 0, OA_RESP_TOO_LARGE);
	GAVE_UP(OA_RESP_REPLIES, "+OK\r\n$2000000000000\r\n", 1, OA_RESP_TOO_LARGE);
	GAVE_UP(OA_RESP_REPLIES, "+OK\r\n:12x\r\n", 1, OA_RESP_MALFORMED);
	GAVE_UP(OA_RESP_REPLIES, "+OK\r\n:99999999999999999999\r\n", 1, OA_RESP_TOO_LARGE);
	GAVE_UP(OA_RESP_REPLIES, "+OK\r\n$-2\r\n", 1, OA_RESP_MALFORMED);
	GAVE_UP(OA_RESP_REPLIES, "+OK\r\n*?\r\n", 1, OA_RESP_MALFORMED);
	GAVE_UP(OA_RESP_REPLIES, "+OK\r\n%-1\r\n", 1, OA_RESP_MALFORMED);
	/* An inline line over Redis's limit. */
	size_t len = OA_RESP_MAX_INLINE + 8;
	char *line = malloc(len);
	memset(line, 'a', len);
	struct oa_resp_parser p;
	struct oa_resp_event ev;
	oa_resp_parser_init(&p, OA_RESP_COMMANDS);
	CHECK_EQ_INT(oa_resp_feed(&p, (const uint8_t *)line, len, &ev), OA_RESP_MAX_INLINE + 1);
	CHECK_EQ_INT(ev.kind, OA_RESP_GAVE_UP);
	CHECK_EQ_INT(ev.reason, OA_RESP_TOO_LARGE);
	free(line);
	GAVE_UP(OA_RESP_REPLIES, "*1\r\n%4294967297\r\n", 0, OA_RESP_TOO_LARGE);
}

static void check_start(const char *bytes, bool expected)
{
	CHECK(oa_resp_commands_start((const uint8_t *)bytes, strlen(bytes)) == expected);
}

/* The first bytes a client sends decide whether a connection is Redis's. */
static void test_commands_start(void)
{
	check_start("*3\r\n$3\r\nSET\r\n", true);
	check_start("*1", true);
	check_start("*", true);
	check_start("", false);
	check_start("*x", false);
	check_start("**", false);
	check_start("PING\r\n", false); /* inline: not taken */
	check_start("GET / HTTP/1.1\r\n", false);
	check_start("PRI * HTTP/2.0\r\n", false);
	check_start("\x16\x03\x01", false); /* TLS */
}

int main(void)
{
	test_commands_start();
	test_pipeline();
	test_redis_benchmark();
	test_transaction();
	test_resp3();
	test_pubsub();
	test_inline_and_secrets();
	test_truncation_and_big_values();
	test_malformed();
	CHECK_DONE();
}
