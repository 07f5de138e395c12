#include "json.h"
#include "hex.h"
#include "utf8.h"

#include <string.h>

struct parser {
	const char *start, *p, *end;
	struct arena *arena;
	struct json_error *err;
	int depth;
};

/* Records the first error only: later ones are consequences of it. */
static bool fail(struct parser *ps, const char *at, const char *message)
{
	if (!ps->err->message) {
		ps->err->offset = (size_t)(at - ps->start);
		ps->err->message = message;
	}
	return false;
}

static void skip_blanks(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool parse_literal(struct parser *ps, const char *word, enum json_type type,
			  struct json_value *out)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, ps->p, "invalid literal");
	ps->p += n;
	out->type = type;
	return true;
}

static bool parse_number(struct parser *ps, struct json_value *out)
{
	const char *start = ps->p, *p = ps->p, *end = ps->end;
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0') {
		p++;
		if (p < end && is_digit(*p))
			return fail(ps, p, "leading zero in number");
	} else if (p < end && is_digit(*p)) {
		while (p < end && is_digit(*p))
			p++;
	} else {
		return fail(ps, p, p == start ? "value expected" : "digit expected after '-'");
	}
	if (p < end && *p == '.') {
		if (++p == end || !is_digit(*p))
			return fail(ps, p, "digit expected after decimal point");
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			return fail(ps, p, "digit expected in exponent");
		while (p < end && is_digit(*p))
			p++;
	}
	out->type = JSON_NUMBER;
	out->len = (size_t)(p - start);
	out->text = arena_strndup(ps->arena, start, out->len);
	ps->p = p;
	return out->text ? true : fail(ps, start, "out of memory");
}

/* The four hex digits after "\u" at p; -1 if they are not all there. */
static long hex4(const char *p, const char *end)
{
	if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
		return -1;
	long value = 0;
	for (int i = 2; i < 6; i++) {
		int d = oa_hex_digit(p[i]);
		if (d < 0)
			return -1;
		value = value << 4 | d;
	}
	return value;
}

static size_t put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decodes the string at ps->p (on its opening quote) into the arena. Escapes
 * never decode longer than they are written, so the raw length bounds the
 * output. */
static bool parse_string(struct parser *ps, const char **text, size_t *len)
{
	const char *p = ps->p + 1, *end = ps->end;
	const char *close = p;
	while (close < end && *close != '"')
		close += *close == '\\' && close + 1 < end ? 2 : 1;
	if (close >= end)
		return fail(ps, ps->p, "unterminated string");
	char *out = arena_alloc(ps->arena, (size_t)(close - p) + 1);
	if (!out)
		return fail(ps, ps->p, "out of memory");
	size_t n = 0;
	while (p < close) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20)
			return fail(ps, p, "control character in string");
		if (c != '\\') {
			size_t seq = oa_utf8_char_len(p, (size_t)(close - p));
			if (!seq)
				return fail(ps, p, "invalid UTF-8 in string");
			memcpy(out + n, p, seq);
			n += seq;
			p += seq;
			continue;
		}
		static const char simple_from[] = "\"\\/bfnrt", simple_to[] = "\"\\/\b\f\n\r\t";
		const char *simple = p[1] ? strchr(simple_from, p[1]) : NULL;
		if (simple) {
			out[n++] = simple_to[simple - simple_from];
			p += 2;
			continue;
		}
		long unit = hex4(p, close);
		if (unit < 0)
			return fail(ps, p, "invalid escape in string");
		unsigned long cp = (unsigned long)unit;
		if (unit >= 0xDC00 && unit <= 0xDFFF)
			return fail(ps, p, "unpaired surrogate escape in string");
		if (unit >= 0xD800 && unit <= 0xDBFF) {
			long low = hex4(p + 6, close);
			if (low < 0xDC00 || low > 0xDFFF)
				return fail(ps, p, "unpaired surrogate escape in string");
			cp = 0x10000 + (((unsigned long)unit - 0xD800) << 10) +
			     ((unsigned long)low - 0xDC00);
			p += 6;
		}
		n += put_utf8(out + n, cp);
		p += 6;
	}
	out[n] = '\0';
	*text = out;
	*len = n;
	ps->p = close + 1;
	return true;
}

static bool parse_value(struct parser *ps, struct json_value *out);

static struct json_value *new_value(struct parser *ps)
{
	struct json_value *v = arena_alloc(ps->arena, sizeof *v);
	if (!v) {
		fail(ps, ps->p, "out of memory");
		return NULL;
	}
	*v = (struct json_value){0};
	return v;
}

/* An array or an object; ps->p is on its opening bracket. */
static bool parse_container(struct parser *ps, struct json_value *out)
{
	bool object = *ps->p == '{';
	char close = object ? '}' : ']';
	if (++ps->depth > JSON_MAX_DEPTH)
		return fail(ps, ps->p, "nesting too deep");
	out->type = object ? JSON_OBJECT : JSON_ARRAY;
	ps->p++;
	skip_blanks(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return true;
	}
	struct json_value **tail = &out->first;
	for (;;) {
		struct json_value *item = new_value(ps);
		if (!item)
			return false;
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, ps->p, "member name expected");
			if (!parse_string(ps, &item->key, &item->key_len))
				return false;
			skip_blanks(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return fail(ps, ps->p, "':' expected");
			ps->p++;
			skip_blanks(ps);
		}
		if (!parse_value(ps, item))
			return false;
		*tail = item;
		tail = &item->next;
		out->count++;
		skip_blanks(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			skip_blanks(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			ps->depth--;
			return true;
		}
		return fail(ps, ps->p, object ? "',' or '}' expected" : "',' or ']' expected");
	}
}

static bool parse_value(struct parser *ps, struct json_value *out)
{
	if (ps->p >= ps->end)
		return fail(ps, ps->p, "unexpected end of input");
	switch (*ps->p) {
	case '{':
	case '[':
		return parse_container(ps, out);
	case '"':
		out->type = JSON_STRING;
		return parse_string(ps, &out->text, &out->len);
	case 't':
		return parse_literal(ps, "true", JSON_TRUE, out);
	case 'f':
		return parse_literal(ps, "false", JSON_FALSE, out);
	case 'n':
		return parse_literal(ps, "null", JSON_NULL, out);
	default:
		return parse_number(ps, out);
	}
}

struct json_value *json_parse(const char *text, size_t len, struct arena *arena,
			      struct json_error *err)
{
	struct parser ps = {
	    .start = text, .p = text, .end = text + len, .arena = arena, .err = err};
	*err = (struct json_error){0};
	struct json_value *root = new_value(&ps);
	if (!root)
		return NULL;
	skip_blanks(&ps);
	if (!parse_value(&ps, root))
		return NULL;
	skip_blanks(&ps);
	if (ps.p != ps.end) {
		fail(&ps, ps.p, "unexpected data after the value");
		return NULL;
	}
	return root;
}

const struct json_value *json_get(const struct json_value *object, const char *key)
{
	if (!object || object->type != JSON_OBJECT)
		return NULL;
	size_t key_len = strlen(key);
	for (const struct json_value *m = object->first; m; m = m->next)
		if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
			return m;
	return NULL;
}

/* Digits only; a NUMBER has been through the grammar, so a string is the one
 * that may be empty. */
static bool digits_to_uint64(const char *s, size_t len, uint64_t *out)
{
	if (len == 0)
		return false;
	uint64_t value = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		uint64_t digit = (uint64_t)(s[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*out = value;
	return true;
}

bool json_uint64(const struct json_value *v, uint64_t *out)
{
	if (!v || (v->type != JSON_NUMBER && v->type != JSON_STRING))
		return false;
	return digits_to_uint64(v->text, v->len, out);
}

bool json_int64(const struct json_value *v, int64_t *out)
{
	if (!v || (v->type != JSON_NUMBER && v->type != JSON_STRING))
		return false;
	bool negative = v->len > 0 && v->text[0] == '-';
	uint64_t magnitude;
	if (!digits_to_uint64(v->text + negative, v->len - negative, &magnitude))
		return false;
	if (magnitude > (uint64_t)INT64_MAX + negative)
		return false;
	*out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
	return true;
}
