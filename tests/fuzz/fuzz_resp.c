/* libFuzzer: the Redis protocol parser on arbitrary bytes. Beyond "no crash",
 * it checks that every event is well formed, that every call consumes what it
 * says, and that the events are the same whether the input is fed whole,
 * split at a fuzzer-chosen point or a byte at a time.
 *
 * Input: byte 0 = options (bit 0 replies, bit 1 pub/sub expected), bytes 1-2 =
 * split point, then the stream. */
#include "resp_parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096

struct record {
	struct oa_resp_event ev;
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

static void record(struct run *r, const struct oa_resp_event *ev, size_t end, bool replies)
{
	const struct record *prev = r->n ? &r->records[(r->n - 1) % MAX_RECORDS] : NULL;
	check(!prev || prev->ev.kind != OA_RESP_GAVE_UP);
	check_string(ev->name, OA_RESP_NAME_CAP);
	check_string(ev->key, OA_RESP_KEY_CAP);
	check_string(ev->text, OA_RESP_TEXT_CAP);
	switch (ev->kind) {
	case OA_RESP_COMMAND:
		check(!replies && ev->argc > 0 && ev->name && ev->key && !ev->text);
		check(!(ev->flags & OA_RESP_KEY_WITHHELD) || !ev->key[0]);
		break;
	case OA_RESP_REPLY:
	case OA_RESP_PUSH:
		check(replies && ev->text && !ev->name && !ev->key && ev->type);
		break;
	case OA_RESP_GAVE_UP:
		check(ev->reason >= OA_RESP_NOT_RESP && ev->reason <= OA_RESP_TOO_LARGE);
		break;
	default:
		abort();
	}
	struct record *rec = &r->records[r->n++ % MAX_RECORDS];
	memcpy(&rec->ev, ev, sizeof rec->ev);
	rec->end = end;
	rec->strings_hash =
	    fnv1a_more(fnv1a_more(fnv1a_more(0xcbf29ce484222325u, ev->name), ev->key), ev->text);
	rec->ev.name = rec->ev.key = rec->ev.text = NULL;
}

/* Feeds the stream in pieces of at most piece bytes, the first one ending at split. */
static void run(bool replies, bool pubsub, const uint8_t *data, size_t len, size_t split,
		size_t piece, struct run *r)
{
	struct oa_resp_parser p;
	oa_resp_parser_init(&p, replies ? OA_RESP_REPLIES : OA_RESP_COMMANDS);
	if (pubsub)
		oa_resp_expect_pubsub(&p);
	r->n = 0;
	for (size_t start = 0; start < len;) {
		size_t end = start < split ? split : start + piece;
		if (end > len)
			end = len;
		while (start < end) {
			struct oa_resp_event ev;
			size_t used = oa_resp_feed(&p, data + start, end - start, &ev);
			check(used > 0 && used <= end - start);
			start += used;
			if (ev.kind != OA_RESP_NONE)
				record(r, &ev, start, replies);
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
	bool replies = data[0] & 1, pubsub = data[0] & 2;
	const uint8_t *stream = data + 3;
	size_t len = size - 3;
	size_t split_at = (data[1] | (size_t)data[2] << 8) % (len + 1);
	run(replies, pubsub, stream, len, len, len, &whole);
	run(replies, pubsub, stream, len, split_at, len, &split);
	check_same(&whole, &split);
	if (len <= 2048) {
		run(replies, pubsub, stream, len, 1, 1, &bytewise);
		check_same(&whole, &bytewise);
	}
	return 0;
}
