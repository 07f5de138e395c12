#include "sql_sanitize.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "copy.h"

enum token_kind {
	TOKEN_END,
	TOKEN_BLANK,   /* blanks and comments */
	TOKEN_WORD,    /* keyword or identifier */
	TOKEN_QUOTED,  /* quoted identifier: "x" (PostgreSQL), `x` (MySQL) */
	TOKEN_LITERAL, /* string, number, hex, bit, dollar-quoted */
	TOKEN_PARAM,   /* $1, ? */
	TOKEN_PUNCT,   /* any other byte */
};

struct token {
	enum token_kind kind;
	size_t start, len;
	bool open; /* a string or quoted identifier the text ends inside */
};

/* Byte classes, one table lookup each: the lexer's loops run over every
 * byte of a query, twice (sanitised and summarised) on each side. */
enum {
	CLASS_BLANK = 1,      /* blanks, and control bytes outside literals */
	CLASS_WORD_START = 2, /* a letter, '_' or a byte of a UTF-8 sequence */
	CLASS_WORD = 4,	      /* a word start, a digit or '$' */
	CLASS_DIGIT = 8,
};

#define WORD_START (CLASS_WORD_START | CLASS_WORD)
#define RANGE_8(c, k)                                                                              \
	[(c)] = (k), [(c) + 1] = (k), [(c) + 2] = (k), [(c) + 3] = (k), [(c) + 4] = (k),           \
	[(c) + 5] = (k), [(c) + 6] = (k), [(c) + 7] = (k)
#define RANGE_32(c, k)                                                                             \
	RANGE_8(c, k), RANGE_8((c) + 8, k), RANGE_8((c) + 16, k), RANGE_8((c) + 24, k)
static const uint8_t byte_class[256] = {
    RANGE_32(0, CLASS_BLANK),
    [' '] = CLASS_BLANK,
    ['$'] = CLASS_WORD,
    RANGE_8('0', CLASS_DIGIT | CLASS_WORD),
    ['8'] = CLASS_DIGIT | CLASS_WORD,
    ['9'] = CLASS_DIGIT | CLASS_WORD,
    RANGE_8('A', WORD_START),
    RANGE_8('I', WORD_START),
    RANGE_8('Q', WORD_START),
    ['Y'] = WORD_START,
    ['Z'] = WORD_START,
    ['_'] = WORD_START,
    RANGE_8('a', WORD_START),
    RANGE_8('i', WORD_START),
    RANGE_8('q', WORD_START),
    ['y'] = WORD_START,
    ['z'] = WORD_START,
    [0x7f] = CLASS_BLANK,
    RANGE_32(0x80, WORD_START),
    RANGE_32(0xa0, WORD_START),
    RANGE_32(0xc0, WORD_START),
    RANGE_32(0xe0, WORD_START),
};

static bool is_blank(uint8_t c)
{
	return byte_class[c] & CLASS_BLANK;
}

static bool has_control_byte(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < ' ' || s[i] == 0x7f)
			return true;
	return false;
}

static bool is_digit(uint8_t c)
{
	return byte_class[c] & CLASS_DIGIT;
}

static bool is_word_start(uint8_t c)
{
	return byte_class[c] & CLASS_WORD_START;
}

static bool is_word_char(uint8_t c)
{
	return byte_class[c] & CLASS_WORD;
}

static uint8_t upper(uint8_t c)
{
	return c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c;
}

/* The end of a quoted run opened at q[start] (a quote doubled inside stays
 * inside; a backslash escapes the next byte where escapes is set); len, and
 * *closed false, when unterminated. */
static size_t quoted_end(const uint8_t *q, size_t len, size_t start, bool escapes, bool *closed)
{
	uint8_t quote = q[start];
	*closed = false;
	for (size_t i = start + 1; i < len; i++) {
		if (escapes && q[i] == '\\') {
			i++;
		} else if (q[i] == quote) {
			if (i + 1 < len && q[i + 1] == quote) {
				i++;
			} else {
				*closed = true;
				return i + 1;
			}
		}
	}
	return len;
}

/* A dollar-quoted string at q[start] == '$' ("$$...$$", "$tag$...$tag$",
 * tags of any length): its end (len when unterminated), or 0 when the '$'
 * does not open one. */
static size_t dollar_end(const uint8_t *q, size_t len, size_t start, bool *closed)
{
	*closed = false;
	size_t i = start + 1;
	if (i < len && q[i] != '$') {
		if (!is_word_start(q[i]))
			return 0;
		while (i < len && is_word_char(q[i]) && q[i] != '$')
			i++;
	}
	if (i >= len || q[i] != '$')
		return 0; /* no string follows (a text cut inside the tag has no value) */
	size_t tag_len = i + 1 - start;
	for (size_t k = i + 1; k + tag_len <= len; k++) {
		if (q[k] == '$' && memcmp(q + k, q + start, tag_len) == 0) {
			*closed = true;
			return k + tag_len;
		}
	}
	return len;
}

/* A number: digits, a point, an exponent with its sign, hex/octal/binary
 * prefixes and PostgreSQL's '_' separators. */
static size_t number_end(const uint8_t *q, size_t len, size_t i)
{
	while (i < len) {
		uint8_t c = q[i];
		if (is_digit(c) || c == '.' || c == '_' || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z'))
			i++;
		else if ((c == '+' || c == '-') && (q[i - 1] == 'e' || q[i - 1] == 'E'))
			i++;
		else
			break;
	}
	return i;
}

static bool is_string_prefix(uint8_t c, enum oa_sql_dialect dialect)
{
	c = upper(c);
	return c == 'B' || c == 'X' || c == 'N' || (dialect == OA_SQL_POSTGRESQL && c == 'E');
}

/* Any token: the rules in full (next_token takes blanks and plain words). */
static __attribute__((noinline)) void next_token_slow(const uint8_t *q, size_t len, size_t pos,
						      enum oa_sql_dialect dialect, struct token *t)
{
	bool mysql = dialect == OA_SQL_MYSQL;
	size_t end = pos + 1;
	t->start = pos;
	if (pos >= len) {
		t->kind = TOKEN_END;
		t->len = 0;
		return;
	}
	uint8_t c = q[pos], next = pos + 1 < len ? q[pos + 1] : 0;
	bool closed = true;
	if (is_blank(c)) {
		t->kind = TOKEN_BLANK;
		while (end < len && is_blank(q[end]))
			end++;
	} else if ((c == '-' && next == '-') || (mysql && c == '#')) {
		t->kind = TOKEN_BLANK;
		const uint8_t *lf = memchr(q + pos, '\n', len - pos);
		end = lf ? (size_t)(lf - q) + 1 : len;
	} else if (c == '/' && next == '*') {
		/* PostgreSQL nests block comments; MySQL does not. */
		unsigned depth = 1;
		t->kind = TOKEN_BLANK;
		for (end = pos + 2; end < len && depth; end++) {
			if (q[end] == '*' && end + 1 < len && q[end + 1] == '/') {
				depth--;
				end++;
			} else if (!mysql && q[end] == '/' && end + 1 < len && q[end + 1] == '*') {
				depth++;
				end++;
			}
		}
		if (end > len)
			end = len;
	} else if (c == '\'' || (mysql && c == '"')) {
		t->kind = TOKEN_LITERAL;
		end = quoted_end(q, len, pos, mysql, &closed);
	} else if (is_string_prefix(c, dialect) && next == '\'') {
		t->kind = TOKEN_LITERAL;
		end = quoted_end(q, len, pos + 1, mysql || upper(c) == 'E', &closed);
	} else if (!mysql && upper(c) == 'U' && next == '&' && pos + 2 < len &&
		   q[pos + 2] == '\'') {
		t->kind = TOKEN_LITERAL; /* U&'\0041' */
		end = quoted_end(q, len, pos + 2, false, &closed);
	} else if (c == '"' || (mysql && c == '`')) {
		end = quoted_end(q, len, pos, false, &closed);
		/* Unterminated, it may run over literals: hide it all; with control
		 * bytes it is no identifier a server takes. */
		t->kind =
		    closed && !has_control_byte(q + pos, end - pos) ? TOKEN_QUOTED : TOKEN_LITERAL;
	} else if (is_digit(c) || (c == '.' && is_digit(next))) {
		t->kind = TOKEN_LITERAL;
		end = number_end(q, len, pos + 1);
	} else if (is_word_start(c)) {
		t->kind = TOKEN_WORD;
		while (end < len && is_word_char(q[end]))
			end++;
	} else if (c == '$' && is_digit(next)) {
		t->kind = TOKEN_PARAM;
		while (end < len && is_digit(q[end]))
			end++;
	} else if (c == '$' && !mysql && (end = dollar_end(q, len, pos, &closed)) != 0) {
		t->kind = TOKEN_LITERAL;
	} else {
		t->kind = c == '?' ? TOKEN_PARAM : TOKEN_PUNCT;
		end = pos + 1;
		closed = true; /* (a '$' dollar_end did not take) */
	}
	t->len = end - t->start;
	t->open = !closed;
}

/* The token at pos (TOKEN_END at len). Blanks and words, most of a query,
 * are taken here, inline in the callers' loops; a word that may prefix a
 * string (E'', U&'') and the rest go the whole way. */
static inline void next_token(const uint8_t *q, size_t len, size_t pos, enum oa_sql_dialect dialect,
			      struct token *t)
{
	if (pos < len) {
		uint8_t k = byte_class[q[pos]];
		uint8_t next = pos + 1 < len ? q[pos + 1] : 0;
		size_t end = pos + 1;
		if (k & CLASS_BLANK) {
			while (end < len && (byte_class[q[end]] & CLASS_BLANK))
				end++;
			*t = (struct token){TOKEN_BLANK, pos, end - pos, false};
			return;
		}
		if ((k & CLASS_WORD_START) && next != '\'' && next != '&') {
			while (end < len && (byte_class[q[end]] & CLASS_WORD))
				end++;
			*t = (struct token){TOKEN_WORD, pos, end - pos, false};
			return;
		}
	}
	next_token_slow(q, len, pos, dialect, t);
}

/* Output like snprintf's: len counts everything, the buffer keeps what fits. */
struct out {
	char *buf;
	size_t cap, len;
};

static inline void put(struct out *o, const uint8_t *s, size_t n)
{
	if (o->len < o->cap - 1) {
		size_t room = o->cap - 1 - o->len, take = n < room ? n : room;
		oa_copy(o->buf + o->len, s, take);
	}
	o->len += n;
}

static inline void put_byte(struct out *o, uint8_t c)
{
	if (o->len < o->cap - 1)
		o->buf[o->len] = (char)c;
	o->len++;
}

/* Rewinds to an earlier length (only to drop what was just written). */
static void rewind_to(struct out *o, size_t len)
{
	o->len = len;
}

static void terminate(struct out *o)
{
	o->buf[o->len < o->cap - 1 ? o->len : o->cap - 1] = '\0';
}

size_t oa_sql_sanitize(const char *query, size_t len, enum oa_sql_dialect dialect, char *out,
		       size_t cap)
{
	const uint8_t *q = (const uint8_t *)query;
	struct out o = {out, cap, 0};
	/* In a parenthesised list of literals: where the last one ended, and
	 * where the comma after it was written. */
	enum { LIST_NONE, LIST_OPEN, LIST_LITERAL, LIST_COMMA } list = LIST_NONE;
	size_t comma_at = 0;
	bool blank = false;
	struct token t;
	for (size_t pos = 0; next_token(q, len, pos, dialect, &t), t.kind != TOKEN_END;
	     pos += t.len) {
		if (t.kind == TOKEN_BLANK) {
			blank = o.len > 0;
			continue;
		}
		bool literal = t.kind == TOKEN_LITERAL;
		if (literal && list == LIST_COMMA) {
			rewind_to(&o, comma_at); /* "(?, ?" is "(?" */
			list = LIST_LITERAL;
			blank = false;
			continue;
		}
		size_t before_blank = o.len;
		/* none before a ';': a client's comment goes there (oa_sql_comment_at) */
		if (blank && !(t.kind == TOKEN_PUNCT && q[t.start] == ';'))
			put_byte(&o, ' ');
		blank = false;
		if (literal) {
			put_byte(&o, '?');
			list = list == LIST_OPEN ? LIST_LITERAL : LIST_NONE;
			continue;
		}
		bool comma = t.kind == TOKEN_PUNCT && q[t.start] == ',';
		if (comma && list == LIST_LITERAL) {
			list = LIST_COMMA;
			comma_at = before_blank;
		} else {
			list = t.kind == TOKEN_PUNCT && q[t.start] == '(' ? LIST_OPEN : LIST_NONE;
		}
		put(&o, q + t.start, t.len);
	}
	terminate(&o);
	return o.len;
}

static bool word_is(const uint8_t *q, const struct token *t, const char *word)
{
	size_t n = strlen(word);
	if (t->kind != TOKEN_WORD || t->len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (upper(q[t->start + i]) != (uint8_t)word[i])
			return false;
	return true;
}

/* Token after pos that is not blank. */
static size_t next_solid(const uint8_t *q, size_t len, size_t pos, enum oa_sql_dialect dialect,
			 struct token *t)
{
	for (;;) {
		next_token(q, len, pos, dialect, t);
		if (t->kind != TOKEN_BLANK)
			return t->start + t->len;
		pos += t->len;
	}
}

/* Skips the words of list at pos (modifiers such as IF NOT EXISTS). */
static size_t skip_words(const uint8_t *q, size_t len, size_t pos, enum oa_sql_dialect dialect,
			 const char *const *words)
{
	struct token t;
	for (;;) {
		size_t after = next_solid(q, len, pos, dialect, &t);
		bool found = false;
		for (size_t i = 0; words[i] && !found; i++)
			found = word_is(q, &t, words[i]);
		if (!found)
			return pos;
		pos = after;
	}
}

/* A (schema-qualified) name at pos, copied as written. */
static void copy_name(const uint8_t *q, size_t len, size_t pos, enum oa_sql_dialect dialect,
		      char *out, size_t cap)
{
	struct token t;
	size_t n = 0;
	for (;;) {
		pos = next_solid(q, len, pos, dialect, &t);
		if (t.kind != TOKEN_WORD && t.kind != TOKEN_QUOTED)
			break;
		size_t take = t.len < cap - 1 - n ? t.len : cap - 1 - n;
		memcpy(out + n, q + t.start, take);
		n += take;
		/* A dot right after the part continues the name. */
		if (pos >= len || q[pos] != '.' || n + 1 >= cap)
			break;
		out[n++] = '.';
		pos++;
	}
	/* A name ending with a dot was not a name. */
	if (n && out[n - 1] == '.')
		n--;
	out[n] = '\0';
}

/* Position after the first FROM outside parentheses from pos, or len. */
static size_t after_from(const uint8_t *q, size_t len, size_t pos, enum oa_sql_dialect dialect)
{
	struct token t;
	int depth = 0;
	for (;;) {
		pos = next_solid(q, len, pos, dialect, &t);
		if (t.kind == TOKEN_END)
			return len;
		if (t.kind == TOKEN_PUNCT && q[t.start] == '(')
			depth++;
		else if (t.kind == TOKEN_PUNCT && q[t.start] == ')')
			depth--;
		else if (depth == 0 && word_is(q, &t, "FROM"))
			return pos;
	}
}

void oa_sql_summarize(const char *query, size_t len, enum oa_sql_dialect dialect,
		      struct oa_sql_summary *s)
{
	static const char *const statements[] = {"SELECT", "INSERT", "UPDATE",
						 "DELETE", "MERGE",  NULL};
	static const char *const insert_words[] = {"INTO",    "IGNORE",	       "LOW_PRIORITY",
						   "DELAYED", "HIGH_PRIORITY", NULL};
	static const char *const update_words[] = {"LOW_PRIORITY", "IGNORE", "ONLY", NULL};
	static const char *const delete_words[] = {"LOW_PRIORITY", "QUICK", "IGNORE", NULL};
	static const char *const table_words[] = {"IF", "NOT", "EXISTS", "ONLY", NULL};
	static const char *const create_words[] = {"OR",       "REPLACE", "TEMPORARY", "TEMP",
						   "UNLOGGED", "GLOBAL",  "LOCAL",     NULL};
	const uint8_t *q = (const uint8_t *)query;
	struct token t;
	size_t pos = 0;
	s->operation[0] = s->collection[0] = '\0';
	/* The first word, past opening parentheses. */
	do
		pos = next_solid(q, len, pos, dialect, &t);
	while (t.kind == TOKEN_PUNCT && q[t.start] == '(');
	if (t.kind != TOKEN_WORD)
		return;
	if (word_is(q, &t, "WITH")) {
		/* The statement after the common table expressions. */
		int depth = 0;
		for (;;) {
			pos = next_solid(q, len, pos, dialect, &t);
			if (t.kind == TOKEN_END)
				break;
			if (t.kind == TOKEN_PUNCT && q[t.start] == '(')
				depth++;
			else if (t.kind == TOKEN_PUNCT && q[t.start] == ')')
				depth--;
			bool statement = false;
			for (size_t i = 0; statements[i] && !statement; i++)
				statement = depth == 0 && word_is(q, &t, statements[i]);
			if (statement)
				break;
		}
		if (t.kind == TOKEN_END)
			return;
	}
	size_t n = t.len < sizeof s->operation - 1 ? t.len : sizeof s->operation - 1;
	for (size_t i = 0; i < n; i++)
		s->operation[i] = (char)upper(q[t.start + i]);
	s->operation[n] = '\0';

	const char *op = s->operation;
	if (strcmp(op, "SELECT") == 0) {
		pos = after_from(q, len, pos, dialect);
	} else if (strcmp(op, "INSERT") == 0 || strcmp(op, "REPLACE") == 0) {
		pos = skip_words(q, len, pos, dialect, insert_words);
	} else if (strcmp(op, "UPDATE") == 0) {
		pos = skip_words(q, len, pos, dialect, update_words);
	} else if (strcmp(op, "DELETE") == 0) {
		pos = skip_words(q, len, pos, dialect, delete_words);
		pos = next_solid(q, len, pos, dialect, &t);
		if (!word_is(q, &t, "FROM"))
			return;
		pos = skip_words(q, len, pos, dialect, table_words);
	} else if (strcmp(op, "CREATE") == 0 || strcmp(op, "DROP") == 0 ||
		   strcmp(op, "ALTER") == 0) {
		pos = skip_words(q, len, pos, dialect, create_words);
		pos = next_solid(q, len, pos, dialect, &t);
		if (!word_is(q, &t, "TABLE"))
			return;
		pos = skip_words(q, len, pos, dialect, table_words);
	} else if (strcmp(op, "TRUNCATE") == 0) {
		static const char *const truncate_words[] = {"TABLE", "ONLY", NULL};
		pos = skip_words(q, len, pos, dialect, truncate_words);
	} else if (strcmp(op, "COPY") != 0) {
		return;
	}
	copy_name(q, len, pos, dialect, s->collection, sizeof s->collection);
}

size_t oa_sql_summary_text(const struct oa_sql_summary *s, char *out, size_t cap)
{
	struct out o = {out, cap, 0};
	put(&o, (const uint8_t *)s->operation, strlen(s->operation));
	if (s->operation[0] && s->collection[0]) {
		put(&o, (const uint8_t *)" ", 1);
		put(&o, (const uint8_t *)s->collection, strlen(s->collection));
	}
	terminate(&o);
	return o.len;
}

void oa_sql_traceparent_comment(const struct oa_span_context *ctx,
				char out[OA_SQL_TRACEPARENT_COMMENT_LEN + 1])
{
	memcpy(out, "/*traceparent='", 15);
	oa_traceparent_format(ctx, out + 15);
	memcpy(out + 15 + OA_TRACEPARENT_LEN, "'*/", 4);
}

/* Whether a block comment opens in the text: '/' is rare in SQL outside one. */
static bool has_block_comment(const char *text, size_t len)
{
	const char *end = text + len;
	for (const char *p = text; (p = memchr(p, '/', (size_t)(end - p))) != NULL; p++)
		if (p + 1 < end && p[1] == '*')
			return true;
	return false;
}

/* The traceparent='...' of one comment's text, as a key of its own. */
static bool comment_traceparent(const uint8_t *text, size_t len, struct oa_span_context *ctx)
{
	static const char key[] = "traceparent='";
	size_t key_len = sizeof key - 1;
	for (size_t i = 0; i + key_len <= len; i++) {
		if (memcmp(text + i, key, key_len) != 0 ||
		    (i > 0 && text[i - 1] != ',' && !is_blank(text[i - 1])))
			continue;
		const uint8_t *value = text + i + key_len;
		const uint8_t *quote = memchr(value, '\'', len - i - key_len);
		return quote &&
		       oa_traceparent_parse((const char *)value, (size_t)(quote - value), ctx);
	}
	return false;
}

bool oa_sql_find_traceparent(const char *query, size_t len, enum oa_sql_dialect dialect,
			     struct oa_span_context *ctx)
{
	/* a comment's opening first: most queries have none, and lexing costs */
	if (!has_block_comment(query, len))
		return false;
	const uint8_t *q = (const uint8_t *)query;
	struct oa_span_context found;
	bool any = false;
	struct token t;
	for (size_t pos = 0; next_token(q, len, pos, dialect, &t), t.kind != TOKEN_END;
	     pos += t.len) {
		/* A block comment's text, without its delimiters (a text may end
		 * inside one). */
		if (t.kind != TOKEN_BLANK || t.len < 2 || q[t.start] != '/' ||
		    q[t.start + 1] != '*')
			continue;
		size_t text_len = t.len - 2;
		if (text_len >= 2 && q[t.start + t.len - 2] == '*' && q[t.start + t.len - 1] == '/')
			text_len -= 2;
		if (comment_traceparent(q + t.start + 2, text_len, &found)) {
			*ctx = found;
			any = true;
		}
	}
	return any;
}

size_t oa_sql_comment_at(const char *query, size_t len, enum oa_sql_dialect dialect)
{
	const uint8_t *q = (const uint8_t *)query;
	size_t at = SIZE_MAX, before_semicolon = SIZE_MAX;
	struct token t;
	for (size_t pos = 0; next_token(q, len, pos, dialect, &t), t.kind != TOKEN_END;
	     pos += t.len) {
		if (t.kind == TOKEN_BLANK)
			continue;
		if (t.open)
			return SIZE_MAX; /* the comment would go into the string */
		bool semicolon = t.kind == TOKEN_PUNCT && q[t.start] == ';';
		/* the end of the token before a last ';' */
		before_semicolon = semicolon && at != SIZE_MAX ? at : SIZE_MAX;
		at = t.start + t.len;
	}
	struct oa_span_context found;
	if (at == SIZE_MAX || oa_sql_find_traceparent(query, len, dialect, &found))
		return SIZE_MAX;
	return before_semicolon != SIZE_MAX ? before_semicolon : at;
}
