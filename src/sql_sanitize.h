/* SQL query texts made safe to export (pure: no I/O, no globals, no
 * allocation): every literal replaced by '?', comments dropped, blanks
 * collapsed; and the query summary of the database semantic conventions
 * ("SELECT accounts"). Literal values never reach the output: a string,
 * number, hex or bit literal, PostgreSQL dollar-quoted string or MySQL
 * double-quoted string becomes '?', also when the text ends inside it (a
 * query cut to a capture's capacity). */
#ifndef OTLPAUTO_SQL_SANITIZE_H
#define OTLPAUTO_SQL_SANITIZE_H

#include "traceparent.h"

#include <stdbool.h>
#include <stddef.h>

#define OA_SQL_OPERATION_CAP  24 /* NUL included */
#define OA_SQL_COLLECTION_CAP 64

/* Lexical rules differ: PostgreSQL has dollar-quoted strings, E'' strings
 * with backslash escapes and "identifiers"; MySQL has backslash escapes in
 * every string, "strings" (without ANSI_QUOTES), `identifiers` and '#'
 * comments. */
enum oa_sql_dialect {
	OA_SQL_POSTGRESQL,
	OA_SQL_MYSQL,
};

/* The query with each literal replaced by '?', a list of literals in
 * parentheses collapsed to one ("IN (?, ?, ?)" gives "IN (?)"), comments
 * removed and blank runs made one space (none before a ';'). Parameters
 * ($1, ?) stay. Writes at most cap - 1 chars and a NUL (cap > 0); returns
 * the full length, as snprintf does. */
size_t oa_sql_sanitize(const char *query, size_t len, enum oa_sql_dialect dialect, char *out,
		       size_t cap);

/* db.operation.name and db.collection.name, as far as they are cheap: the
 * first keyword (the statement after a WITH's common table expressions) and
 * the first table of a SELECT ... FROM, INSERT INTO, UPDATE, DELETE FROM,
 * CREATE/ALTER/DROP TABLE, TRUNCATE or COPY, schema-qualified as written.
 * Either is "" when not found; both are cut to their capacities. */
struct oa_sql_summary {
	char operation[OA_SQL_OPERATION_CAP];	/* upper-cased: "SELECT" */
	char collection[OA_SQL_COLLECTION_CAP]; /* as written: "public.accounts" */
};

void oa_sql_summarize(const char *query, size_t len, enum oa_sql_dialect dialect,
		      struct oa_sql_summary *summary);

/* db.query.summary and the span name: "SELECT accounts", "COMMIT", "" when
 * no operation was found. Writes like snprintf (cap > 0), returns the full
 * length. */
size_t oa_sql_summary_text(const struct oa_sql_summary *summary, char *out, size_t cap);

/* sqlcommenter's propagation. The block comment a client appends to a
 * query, its text being traceparent='00-<trace id>-<span id>-<flags>';
 * NUL-terminated. (oa_sql_sanitize drops it with every other comment.) */
#define OA_SQL_TRACEPARENT_COMMENT_LEN (15 + OA_TRACEPARENT_LEN + 3)
void oa_sql_traceparent_comment(const struct oa_span_context *ctx,
				char out[OA_SQL_TRACEPARENT_COMMENT_LEN + 1]);

/* The context a server reads back: the traceparent key of the query's last
 * comment that has a valid one (key='value' pairs separated by commas, as
 * sqlcommenter writes them). False when there is none. */
bool oa_sql_find_traceparent(const char *query, size_t len, enum oa_sql_dialect dialect,
			     struct oa_span_context *ctx);

/* Where a client's comment goes into a query it sends: after its last
 * token, before one final ';' (a comment after the statement's end is one
 * of its own to MySQL), so also before a trailing line comment, which
 * would swallow it. SIZE_MAX when the query has no token, ends inside a
 * string or quoted identifier, or already carries a traceparent comment
 * (the program propagates itself). */
size_t oa_sql_comment_at(const char *query, size_t len, enum oa_sql_dialect dialect);

#endif
