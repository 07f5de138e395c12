/* libFuzzer: the SQL sanitiser and summariser on arbitrary text. Beyond "no
 * crash", it checks that the output is never longer than the query, that a
 * small buffer gets the same text cut, that sanitising the output again
 * changes nothing (a literal left in it would become '?'), that the
 * summary is made of words, and that a traceparent read from a comment is
 * valid; and that a client's comment, put where oa_sql_comment_at says,
 * reads back and leaves the sanitised text as it was.
 *
 * Input: byte 0 = dialect (bit 0: MySQL), then the query. */
#include "sql_sanitize.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool is_summary_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
	       c >= 0x80;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum oa_sql_dialect dialect = data[0] & 1 ? OA_SQL_MYSQL : OA_SQL_POSTGRESQL;
	const char *query = (const char *)data + 1;
	size_t len = size - 1;
	char *out = malloc(len + 1), *again = malloc(len + 1), small[8];
	size_t n = oa_sql_sanitize(query, len, dialect, out, len + 1);
	check(n <= len && strlen(out) == n);
	check(oa_sql_sanitize(query, len, dialect, small, sizeof small) == n);
	check(strncmp(small, out, sizeof small - 1) == 0);
	check(oa_sql_sanitize(out, n, dialect, again, len + 1) == n && memcmp(again, out, n) == 0);

	struct oa_sql_summary s;
	oa_sql_summarize(query, len, dialect, &s);
	size_t op_len = strnlen(s.operation, sizeof s.operation);
	check(op_len < sizeof s.operation);
	check(strnlen(s.collection, sizeof s.collection) < sizeof s.collection);
	for (size_t i = 0; i < op_len; i++)
		check(is_summary_char((uint8_t)s.operation[i]));
	check(op_len || !s.collection[0]);
	char text[OA_SQL_OPERATION_CAP + OA_SQL_COLLECTION_CAP + 1];
	size_t t = oa_sql_summary_text(&s, text, sizeof text);
	check(t == strlen(text) && strncmp(text, s.operation, op_len) == 0);

	/* A context read from a comment is a valid one, and its comment reads back. */
	struct oa_span_context ctx, back;
	if (oa_sql_find_traceparent(query, len, dialect, &ctx)) {
		char comment[OA_SQL_TRACEPARENT_COMMENT_LEN + 1];
		oa_sql_traceparent_comment(&ctx, comment);
		check(oa_sql_find_traceparent(comment, strlen(comment), dialect, &back));
		check(memcmp(&ctx, &back, sizeof ctx) == 0);
	}

	/* A client's comment where oa_sql_comment_at puts it: none where the
	 * query has a traceparent; else the server reads that one back (unless
	 * it went into a literal the query leaves open) and the sanitised text
	 * is the query's. */
	size_t at = oa_sql_comment_at(query, len, dialect);
	check(at == SIZE_MAX || at <= len);
	check(at == SIZE_MAX || !oa_sql_find_traceparent(query, len, dialect, &ctx));
	if (at != SIZE_MAX) {
		static const struct oa_span_context mine = {
		    .trace_id = {1, 2, 3}, .span_id = {4, 5, 6}, .flags = 1};
		char comment[OA_SQL_TRACEPARENT_COMMENT_LEN + 1];
		oa_sql_traceparent_comment(&mine, comment);
		size_t comment_len = strlen(comment), with_len = len + 1 + comment_len;
		char *with = malloc(with_len), *with_out = malloc(with_len + 1);
		memcpy(with, query, at);
		with[at] = ' ';
		memcpy(with + at + 1, comment, comment_len);
		memcpy(with + at + 1 + comment_len, query + at, len - at);
		if (oa_sql_find_traceparent(with, with_len, dialect, &back))
			check(memcmp(&back, &mine, sizeof mine) == 0);
		check(oa_sql_sanitize(with, with_len, dialect, with_out, with_len + 1) == n &&
		      memcmp(with_out, out, n) == 0);
		free(with);
		free(with_out);
	}
	free(out);
	free(again);
	return 0;
}
