/* libFuzzer: the PostgreSQL protocol parser on arbitrary bytes. Beyond "no crash",
 * it checks that every event is well formed, that every call consumes what it
 * says, and that the events are the same whether the input is fed whole,
 * split at a fuzzer-chosen point or a byte at a time.
 *
 * Input: byte 0 = options (bit 0 backend, bit 1 an encryption answer
 * expected), bytes 1-2 = split point, then the stream. */
#include "pg_parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096

struct record {
	struct oa_pg_event ev;
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

static uint64_t hash_strings(const struct oa_pg_event *ev)
{
	const char *const strings[] = {ev->query,    ev->statement, ev->tag,	 ev->user,
				       ev->database, ev->sqlstate,  ev->severity};
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
		h = fnv1a_more(h, strings[i]) * (strings[i] ? 3 : 5);
	return h;
}

static void record(struct run *r, const struct oa_pg_event *ev, size_t end, bool backend)
{
	const struct record *prev = r->n ? &r->records[(r->n - 1) % MAX_RECORDS] : NULL;
	check(!prev || (prev->ev.kind != OA_PG_GAVE_UP && prev->ev.kind != OA_PG_ENCRYPTED));
	check_string(ev->query, OA_PG_TEXT_CAP);
	check_string(ev->statement, OA_PG_NAME_CAP);
	check_string(ev->tag, OA_PG_TEXT_CAP);
	check_string(ev->user, OA_PG_NAME_CAP);
	check_string(ev->database, OA_PG_TEXT_CAP);
	check_string(ev->sqlstate, 6);
	check_string(ev->severity, OA_PG_SEVERITY_CAP);
	switch (ev->kind) {
	case OA_PG_MESSAGE:
		check(ev->type && !ev->user && !ev->database);
		check(backend ? !ev->query && !ev->statement && ev->type != 'D' && ev->type != 'd'
			      : !ev->tag && !ev->sqlstate && ev->type != 'd');
		break;
	case OA_PG_STARTUP:
		check(!backend && ev->user && ev->database && ev->code >> 16 == 3);
		break;
	case OA_PG_SSL_REQUEST:
	case OA_PG_GSSENC_REQUEST:
	case OA_PG_CANCEL_REQUEST:
		check(!backend);
		break;
	case OA_PG_ENCRYPTION_REFUSED:
	case OA_PG_TLS:
	case OA_PG_ENCRYPTED:
		check(backend && !prev);
		break;
	case OA_PG_GAVE_UP:
		check(ev->reason >= OA_PG_NOT_PG && ev->reason <= OA_PG_TOO_LARGE);
		break;
	default:
		abort();
	}
	struct record *rec = &r->records[r->n++ % MAX_RECORDS];
	memcpy(&rec->ev, ev, sizeof rec->ev);
	rec->end = end;
	rec->strings_hash = hash_strings(ev);
	rec->ev.query = rec->ev.statement = rec->ev.tag = rec->ev.user = rec->ev.database = NULL;
	rec->ev.sqlstate = rec->ev.severity = NULL;
}

/* Feeds the stream in pieces of at most piece bytes, the first one ending at split. */
static void run(bool backend, bool answer, const uint8_t *data, size_t len, size_t split,
		size_t piece, struct run *r)
{
	struct oa_pg_parser p;
	oa_pg_parser_init(&p, backend ? OA_PG_BACKEND : OA_PG_FRONTEND);
	if (answer)
		oa_pg_expect_encryption_answer(&p);
	r->n = 0;
	for (size_t start = 0; start < len;) {
		size_t end = start < split ? split : start + piece;
		if (end > len)
			end = len;
		while (start < end) {
			struct oa_pg_event ev;
			size_t used = oa_pg_feed(&p, data + start, end - start, &ev);
			check(used > 0 && used <= end - start);
			start += used;
			if (ev.kind != OA_PG_NONE)
				record(r, &ev, start, backend);
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
	bool backend = data[0] & 1, answer = data[0] & 2;
	const uint8_t *stream = data + 3;
	size_t len = size - 3;
	size_t split_at = (data[1] | (size_t)data[2] << 8) % (len + 1);
	run(backend, answer, stream, len, len, len, &whole);
	run(backend, answer, stream, len, split_at, len, &split);
	check_same(&whole, &split);
	if (len <= 2048) {
		run(backend, answer, stream, len, 1, 1, &bytewise);
		check_same(&whole, &bytewise);
	}
	return 0;
}
