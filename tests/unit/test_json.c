/* The otlpauto command's strict JSON parser: what it accepts, what it
 * refuses and where, and its memory limit. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* NULL if text parses; else the error message (offset in *offset). */
static const char *parse_error(const char *text, size_t len, size_t *offset)
{
	struct arena arena = {0};
	struct json_error err;
	struct json_value *v = json_parse(text, len, &arena, &err);
	arena_free(&arena);
	*offset = err.offset;
	return v ? NULL : err.message;
}

#define CHECK_REJECTS(text, expected_offset, expected_message)                                     \
	do {                                                                                       \
		size_t offset;                                                                     \
		const char *message = parse_error(text, sizeof(text) - 1, &offset);                \
		CHECK_EQ_STR(message, expected_message);                                           \
		CHECK_EQ_INT(offset, expected_offset);                                             \
	} while (0)

static void test_accepts(void)
{
	static const char text[] = " {\"a\": [1, -0.5e+3, \"x\\u00e9\\ud83d\\ude00\\n\\/\", true, "
				   "false, null], \"b\": {}, \"a\": 2, \"\": \"\\u0041\"}\r\n";
	struct arena arena = {0};
	struct json_error err;
	struct json_value *root = json_parse(text, sizeof text - 1, &arena, &err);
	CHECK(root != NULL);
	if (!root)
		return;
	CHECK_EQ_INT(root->type, JSON_OBJECT);
	CHECK_EQ_INT(root->count, 4);
	const struct json_value *a = json_get(root, "a");
	CHECK(a != NULL && a->type == JSON_ARRAY && a->count == 6);
	if (a && a->count == 6) {
		const struct json_value *v = a->first;
		CHECK_EQ_INT(v->type, JSON_NUMBER);
		CHECK_EQ_STR(v->text, "1");
		v = v->next;
		CHECK_EQ_STR(v->text, "-0.5e+3");
		v = v->next;
		CHECK_EQ_INT(v->type, JSON_STRING);
		CHECK_EQ_STR(v->text, "x\xc3\xa9\xf0\x9f\x98\x80\n/");
		CHECK_EQ_INT(v->len, 9);
		v = v->next;
		CHECK_EQ_INT(v->type, JSON_TRUE);
		CHECK_EQ_INT(v->next->type, JSON_FALSE);
		CHECK_EQ_INT(v->next->next->type, JSON_NULL);
	}
	const struct json_value *b = json_get(root, "b");
	CHECK(b && b->type == JSON_OBJECT && b->count == 0 && !b->first);
	CHECK_EQ_STR(json_get(root, "")->text, "A");
	CHECK(json_get(root, "missing") == NULL);
	CHECK(json_get(a, "a") == NULL); /* not an object */
	arena_free(&arena);
	CHECK(arena.blocks == NULL && arena.bytes == 0);
}

static void test_rejects(void)
{
	CHECK_REJECTS("", 0, "unexpected end of input");
	CHECK_REJECTS("  ", 2, "unexpected end of input");
	CHECK_REJECTS("{", 1, "member name expected");
	CHECK_REJECTS("[1,]", 3, "value expected");
	CHECK_REJECTS("{\"a\":1,}", 7, "member name expected");
	CHECK_REJECTS("[1 2]", 3, "',' or ']' expected");
	CHECK_REJECTS("{\"a\" 1}", 5, "':' expected");
	CHECK_REJECTS("{1:2}", 1, "member name expected");
	CHECK_REJECTS("01", 1, "leading zero in number");
	CHECK_REJECTS("1.", 2, "digit expected after decimal point");
	CHECK_REJECTS("-", 1, "digit expected after '-'");
	CHECK_REJECTS("+1", 0, "value expected");
	CHECK_REJECTS("1e", 2, "digit expected in exponent");
	CHECK_REJECTS("tru", 0, "invalid literal");
	CHECK_REJECTS("nul", 0, "invalid literal");
	CHECK_REJECTS("[1] x", 4, "unexpected data after the value");
	CHECK_REJECTS("\"abc", 0, "unterminated string");
	CHECK_REJECTS("\"\\x\"", 1, "invalid escape in string");
	CHECK_REJECTS("\"\\u12\"", 1, "invalid escape in string");
	CHECK_REJECTS("\"\\ud800\"", 1, "unpaired surrogate escape in string");
	CHECK_REJECTS("\"\\ud800\\u0041\"", 1, "unpaired surrogate escape in string");
	CHECK_REJECTS("\"\\udc00\"", 1, "unpaired surrogate escape in string");
	CHECK_REJECTS("\"a\tb\"", 2, "control character in string");
	CHECK_REJECTS("\"\xc0\xaf\"", 1, "invalid UTF-8 in string");	     /* overlong */
	CHECK_REJECTS("\"\xed\xa0\x80\"", 1, "invalid UTF-8 in string");     /* a surrogate */
	CHECK_REJECTS("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8 in string"); /* > U+10FFFF */
	CHECK_REJECTS("\"\xe2\x82\"", 1, "invalid UTF-8 in string");	     /* cut short */
	CHECK_REJECTS("[\x00]", 1, "value expected");
}

static void test_nesting(void)
{
	char deep[2 * JSON_MAX_DEPTH + 3];
	size_t offset;
	memset(deep, '[', JSON_MAX_DEPTH);
	memset(deep + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	CHECK(parse_error(deep, 2 * JSON_MAX_DEPTH, &offset) == NULL);
	memset(deep, '[', JSON_MAX_DEPTH + 1);
	memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
	CHECK_EQ_STR(parse_error(deep, 2 * JSON_MAX_DEPTH + 2, &offset), "nesting too deep");
	CHECK_EQ_INT(offset, JSON_MAX_DEPTH);
}

static void test_memory_limit(void)
{
	/* 10000 values need more than one 64 KiB block. */
	size_t n = 10000, len = 2 * n + 1;
	char *text = malloc(len + 1);
	text[0] = '[';
	for (size_t i = 0; i < n; i++) {
		text[1 + 2 * i] = '0';
		text[2 + 2 * i] = i + 1 < n ? ',' : ']';
	}
	struct json_error err;
	struct arena small = {.limit = 100000};
	CHECK(json_parse(text, len, &small, &err) == NULL);
	CHECK_EQ_STR(err.message, "out of memory");
	CHECK(small.bytes <= small.limit);
	arena_free(&small);
	struct arena enough = {0};
	struct json_value *v = json_parse(text, len, &enough, &err);
	CHECK(v && v->count == n);
	CHECK(enough.bytes > small.limit);
	arena_free(&enough);
	free(text);
}

static struct json_value parsed(struct arena *arena, const char *text)
{
	struct json_error err;
	struct json_value *v = json_parse(text, strlen(text), arena, &err);
	return v ? *v : (struct json_value){.type = JSON_NULL};
}

static void test_integers(void)
{
	struct arena arena = {0};
	uint64_t u = 0;
	int64_t i = 0;
	struct json_value v = parsed(&arena, "123");
	CHECK(json_uint64(&v, &u) && u == 123);
	v = parsed(&arena, "\"18446744073709551615\"");
	CHECK(json_uint64(&v, &u) && u == UINT64_MAX);
	v = parsed(&arena, "18446744073709551616");
	CHECK(!json_uint64(&v, &u));
	v = parsed(&arena, "1.0");
	CHECK(!json_uint64(&v, &u));
	v = parsed(&arena, "1e3");
	CHECK(!json_uint64(&v, &u));
	v = parsed(&arena, "\"\"");
	CHECK(!json_uint64(&v, &u));
	v = parsed(&arena, "-1");
	CHECK(!json_uint64(&v, &u));
	CHECK(json_int64(&v, &i) && i == -1);
	v = parsed(&arena, "\"-9223372036854775808\"");
	CHECK(json_int64(&v, &i) && i == INT64_MIN);
	v = parsed(&arena, "9223372036854775808");
	CHECK(!json_int64(&v, &i));
	v = parsed(&arena, "true");
	CHECK(!json_int64(&v, &i));
	arena_free(&arena);
}

int main(void)
{
	test_accepts();
	test_rejects();
	test_nesting();
	test_memory_limit();
	test_integers();
	CHECK_DONE();
}
