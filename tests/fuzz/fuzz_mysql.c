/* libFuzzer: the MySQL/MariaDB protocol parser on arbitrary bytes. Beyond "no crash",
 * it checks that every event is well formed, that every call consumes what it
 * says, and that the events are the same whether the input is fed whole,
 * split at a fuzzer-chosen point or a byte at a time.
 *
 * Input: byte 0 = options (bit 0 server, bit 1 the client's capabilities
 * told: bytes 3-6, bits 4-7 commands queued: the bytes after), bytes 1-2 =
 * split point, then the stream. */
#include "mysql_parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096

struct record {
	struct oa_mysql_event ev;
	size_t end;
	uint64_t strings_hash;
};

struct run {
	struct record records[MAX_RECORDS];
	size_t n;
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

static uint64_t fnv1a_more(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3u;
	return (h ^ 0xff) * 0x100000001b3u;
}

static void check_string(const char *s, size_t cap)
{
	check(!s || strnlen(s, cap) < cap);
}

static uint64_t hash_strings(const struct oa_mysql_event *ev)
{
	const char *const strings[] = {ev->text, ev->database, ev->sqlstate};
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
		h = fnv1a_more(h, strings[i]) * (strings[i] ? 3 : 5);
	return h;
}

static void record(struct run *r, const struct oa_mysql_event *ev, size_t end, bool server)
{
	const struct record *prev = r->n ? &r->records[(r->n - 1) % MAX_RECORDS] : NULL;
	check(!prev || prev->ev.kind != OA_MYSQL_GAVE_UP);
	check_string(ev->text, OA_MYSQL_TEXT_CAP);
	check_string(ev->database, OA_MYSQL_NAME_CAP);
	check_string(ev->sqlstate, 6);
	switch (ev->kind) {
	case OA_MYSQL_HANDSHAKE:
		check(server && !prev && ev->text);
		break;
	case OA_MYSQL_HANDSHAKE_RESPONSE:
		check(!server && (!prev || prev->ev.kind == OA_MYSQL_SSL_REQUEST));
		break;
	case OA_MYSQL_SSL_REQUEST:
		check(!server && !prev);
		break;
	case OA_MYSQL_COMMAND:
		check(!server && prev && !ev->database && !ev->sqlstate);
		break;
	case OA_MYSQL_RESPONSE:
		check(server && ev->sqlstate && !ev->text);
		/* A SQLSTATE is five characters of [0-9A-Z], only with an error. */
		check(!ev->sqlstate[0] || (ev->error_code && strlen(ev->sqlstate) == 5));
		break;
	case OA_MYSQL_GAVE_UP:
		check(ev->reason >= OA_MYSQL_NOT_MYSQL && ev->reason <= OA_MYSQL_COMPRESSED);
		break;
	default:
		abort();
	}
	struct record *rec = &r->records[r->n++ % MAX_RECORDS];
	memcpy(&rec->ev, ev, sizeof rec->ev);
	rec->end = end;
	rec->strings_hash = hash_strings(ev);
	rec->ev.text = rec->ev.database = rec->ev.sqlstate = NULL;
}

struct options {
	bool server, told;
	uint32_t capabilities;
	const uint8_t *commands;
	size_t n_commands;
};

/* Feeds the stream in pieces of at most piece bytes, the first one ending at split. */
static void run(const struct options *o, const uint8_t *data, size_t len, size_t split,
		size_t piece, struct run *r)
{
	struct oa_mysql_parser p;
	oa_mysql_parser_init(&p, o->server ? OA_MYSQL_SERVER : OA_MYSQL_CLIENT);
	for (size_t i = 0; i < o->n_commands; i++)
		oa_mysql_expect_response(&p, o->commands[i]);
	if (o->told)
		oa_mysql_set_client_capabilities(&p, o->capabilities);
	r->n = 0;
	for (size_t start = 0; start < len;) {
		size_t end = start < split ? split : start + piece;
		if (end > len)
			end = len;
		while (start < end) {
			struct oa_mysql_event ev;
			size_t used = oa_mysql_feed(&p, data + start, end - start, &ev);
			check(used > 0 && used <= end - start);
			start += used;
			if (ev.kind != OA_MYSQL_NONE)
				record(r, &ev, start, o->server);
			else
				check(start == end);
		}
	}
}

static void check_same(const struct run *a, const struct run *b)
{
	check(a->n == b->n);
	for (size_t i = 0; i < a->n && i < MAX_RECORDS; i++)
		check(memcmp(&a->records[i], &b->records[i], sizeof a->records[i]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, split, bytewise;
	if (size < 3)
		return 0;
	size_t skip = 3;
	struct options o = {.server = data[0] & 1, .told = data[0] & 2};
	if (o.told && size >= skip + 4) {
		o.capabilities = (uint32_t)data[3] | (uint32_t)data[4] << 8 |
				 (uint32_t)data[5] << 16 | (uint32_t)data[6] << 24;
		skip += 4;
	}
	o.n_commands = data[0] >> 4;
	if (o.n_commands > size - skip)
		o.n_commands = size - skip;
	o.commands = data + skip;
	skip += o.n_commands;
	const uint8_t *stream = data + skip;
	size_t len = size - skip;
	size_t split_at = (data[1] | (size_t)data[2] << 8) % (len + 1);
	run(&o, stream, len, len, len, &whole);
	run(&o, stream, len, split_at, len, &split);
	check_same(&whole, &split);
	if (len <= 2048) {
		run(&o, stream, len, 1, 1, &bytewise);
		check_same(&whole, &bytewise);
	}
	return 0;
}
