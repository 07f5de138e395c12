#include "resp_parse.h"

#include <string.h>

_Static_assert(sizeof(struct oa_resp_parser) <= 160, "parser state must stay small");

enum state {
	ST_IDLE,      /* before a command, or before any value of a reply */
	ST_NUMBER,    /* the digits after '*', '$', ':' and the other length types */
	ST_NUMBER_LF, /* the '\n' after them */
	/* commands */
	ST_BULK_TYPE, /* the '$' of the next argument */
	ST_INLINE,
	/* replies */
	ST_LINE, /* the rest of a simple string, error, double, boolean, big number, null */
	/* both: bulk payloads and their CRLF */
	ST_DATA,
	ST_DATA_CR,
	ST_DATA_LF,
	ST_DEAD,
};

/* Where a reply's current value is: the top-level value itself, or nested in
 * the top-level value or in an attribute preceding it. */
enum mode {
	MODE_TOP,
	MODE_IN_VALUE,
	MODE_IN_ATTRIBUTE,
};

enum capture {
	CAPTURE_NONE,
	CAPTURE_TEXT, /* all of it, to the capacity */
	CAPTURE_WORD, /* up to the first space: an error's prefix */
	CAPTURE_BOOL,
};

/* Limits beyond which a length is not believed: Redis's own bulk limit is
 * configurable (512 MB by default), its multibulk limit is INT_MAX. */
#define MAX_BULK	 ((uint64_t)1 << 40)
#define MAX_ELEMENTS	 ((uint64_t)1 << 32)
#define MAX_REMAINING	 ((uint64_t)1 << 62)
#define MAX_DIGITS	 20
#define MAX_COMMAND_ARGS 0x7fffffffu

void oa_resp_parser_init(struct oa_resp_parser *p, enum oa_resp_role role)
{
	memset(p, 0, sizeof *p);
	p->role = (uint8_t)role;
}

void oa_resp_expect_pubsub(struct oa_resp_parser *p)
{
	p->pubsub = true;
}

static uint8_t upper(uint8_t c)
{
	return c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c;
}

/* Appends to a captured string; false (and flagged) when it does not fit. */
static bool append(struct oa_resp_parser *p, char *buf, uint8_t *len, size_t cap, uint8_t c)
{
	if (*len + 1u < cap) {
		buf[(*len)++] = (char)c;
		buf[*len] = '\0';
		return true;
	}
	p->flags |= OA_RESP_TRUNCATED;
	return false;
}

static bool is_type_with_length(uint8_t c)
{
	return c == '$' || c == '*' || c == '!' || c == '=' || c == '%' || c == '~' || c == '>' ||
	       c == '|';
}

static bool is_line_type(uint8_t c)
{
	return c == '+' || c == '-' || c == ':' || c == ',' || c == '#' || c == '(' || c == '_';
}

static bool is_aggregate(uint8_t c)
{
	return c == '*' || c == '%' || c == '~' || c == '>' || c == '|';
}

/* Compared by length first: every command goes through these. */
static bool name_is_n(const struct oa_resp_parser *p, const char *name, size_t n)
{
	return p->name_len == n && memcmp(p->name, name, n) == 0;
}

#define name_is(p, literal) name_is_n(p, literal, sizeof literal - 1)

static void clear_event(struct oa_resp_event *ev, enum oa_resp_event_kind kind)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = (uint8_t)kind;
}

static void give_up(struct oa_resp_parser *p, struct oa_resp_event *ev,
		    enum oa_resp_gave_up_reason reason)
{
	clear_event(ev, OA_RESP_GAVE_UP);
	/* Garbage before anything parsed means the stream is not RESP at all. */
	ev->reason =
	    (uint8_t)(reason == OA_RESP_MALFORMED && !p->started ? OA_RESP_NOT_RESP : reason);
	p->state = ST_DEAD;
}

static void begin_command(struct oa_resp_parser *p)
{
	p->name_len = p->key_len = 0;
	p->name[0] = p->key[0] = '\0';
	p->flags = 0;
	p->argc = p->arg = p->line_len = 0;
	p->in_word = false;
	p->quote = 0;
}

static void emit_command(struct oa_resp_parser *p, struct oa_resp_event *ev)
{
	bool ends_multi = name_is(p, "EXEC") || name_is(p, "DISCARD") || name_is(p, "RESET");
	if (p->multi)
		p->flags |= OA_RESP_QUEUED;
	if (name_is(p, "MULTI"))
		p->multi = true;
	else if (ends_multi)
		p->multi = false;
	if (name_is(p, "SUBSCRIBE") || name_is(p, "PSUBSCRIBE") || name_is(p, "SSUBSCRIBE"))
		p->flags |= OA_RESP_SUBSCRIBES;
	clear_event(ev, OA_RESP_COMMAND);
	ev->flags = p->flags;
	ev->argc = p->argc;
	ev->name = p->name;
	ev->key = p->key;
	p->started = true;
	p->state = ST_IDLE;
}

/* The first argument is a key for most commands; AUTH's is a password. */
static bool key_withheld(struct oa_resp_parser *p)
{
	if (!name_is(p, "AUTH"))
		return false;
	p->flags |= OA_RESP_KEY_WITHHELD;
	return true;
}

/* A RESP2 array in subscribe mode that is a message, not a reply. */
static bool is_pubsub_message(const struct oa_resp_parser *p)
{
	if (p->top != OA_RESP_ARRAY || !p->pubsub)
		return false;
	if (p->value == 3)
		return strcmp(p->text, "message") == 0 || strcmp(p->text, "smessage") == 0;
	return p->value == 4 && strcmp(p->text, "pmessage") == 0;
}

static void emit_reply(struct oa_resp_parser *p, struct oa_resp_event *ev)
{
	bool push = p->top == OA_RESP_PUSH_TYPE || is_pubsub_message(p);
	clear_event(ev, push ? OA_RESP_PUSH : OA_RESP_REPLY);
	ev->type = p->top;
	ev->flags = p->flags;
	ev->value = p->value;
	ev->text = p->text;
	p->started = true;
	p->mode = MODE_TOP;
	p->state = ST_IDLE;
}

/* The current value's own bytes are done; it has children more values
 * nested in it. Returns whether the top-level value is complete. */
static bool reply_value_done(struct oa_resp_parser *p, uint64_t children)
{
	bool attribute = p->type == '|';
	p->state = ST_IDLE;
	if (p->mode == MODE_TOP) {
		if (attribute) {
			/* Metadata before the reply: the reply is the value after it. */
			if (children) {
				p->mode = MODE_IN_ATTRIBUTE;
				p->remaining = children;
			}
			return false;
		}
		if (children) {
			p->mode = MODE_IN_VALUE;
			p->remaining = children;
			/* The kind of a push ("message", "invalidate"); not the data
			 * of a reply, which may be a user's. */
			p->want_first =
			    p->top == OA_RESP_PUSH_TYPE || (p->top == OA_RESP_ARRAY && p->pubsub);
			return false;
		}
		return true;
	}
	/* An attribute takes no place of its own: the value after it does. */
	p->remaining += children;
	if (!attribute)
		p->remaining--;
	if (p->remaining)
		return false;
	if (p->mode == MODE_IN_ATTRIBUTE) {
		p->mode = MODE_TOP;
		return false;
	}
	return true;
}

/* The type byte of a reply value. */
static bool reply_type(struct oa_resp_parser *p, uint8_t c)
{
	if (!is_line_type(c) && !is_type_with_length(c))
		return false;
	p->type = c;
	p->capture = CAPTURE_NONE;
	p->number = 0;
	p->negative = false;
	p->line_len = 0;
	if (p->mode == MODE_TOP && c != '|') {
		p->top = c == '_' ? OA_RESP_NULL : c;
		p->flags = 0;
		p->value = 0;
		p->text_len = 0;
		p->text[0] = '\0';
		p->want_first = false;
		if (c == '+')
			p->capture = CAPTURE_TEXT;
		else if (c == '-' || c == '!')
			p->capture = CAPTURE_WORD;
		else if (c == '#')
			p->capture = CAPTURE_BOOL;
	} else if (p->mode == MODE_IN_VALUE && p->want_first) {
		p->want_first = false;
		if (c == '+' || c == '$')
			p->capture = CAPTURE_TEXT;
	}
	p->state = c == ':' || is_type_with_length(c) ? ST_NUMBER : ST_LINE;
	return true;
}

static void capture_byte(struct oa_resp_parser *p, uint8_t c)
{
	switch (p->capture) {
	case CAPTURE_TEXT:
		if (!append(p, p->text, &p->text_len, sizeof p->text, c))
			p->capture = CAPTURE_NONE; /* the rest is skipped */
		break;
	case CAPTURE_WORD:
		if (c == ' ' || !append(p, p->text, &p->text_len, sizeof p->text, c))
			p->capture = CAPTURE_NONE;
		break;
	case CAPTURE_BOOL:
		p->value = c == 't';
		p->capture = CAPTURE_NONE;
		break;
	default:
		break;
	}
}

/* A complete number line. Returns false to give up (*reason says why). */
static bool number_done(struct oa_resp_parser *p, struct oa_resp_event *ev, bool *emitted,
			enum oa_resp_gave_up_reason *reason)
{
	int64_t n = p->negative ? -(int64_t)p->number : (int64_t)p->number;
	*emitted = false;
	*reason = OA_RESP_MALFORMED;
	if (p->role == OA_RESP_COMMANDS) {
		if (p->type == '*') {
			if (n > (int64_t)MAX_COMMAND_ARGS) {
				*reason = OA_RESP_TOO_LARGE;
				return false;
			}
			/* Redis ignores an empty or negative multibulk. */
			p->argc = n > 0 ? (uint32_t)n : 0;
			p->state = n > 0 ? ST_BULK_TYPE : ST_IDLE;
			return true;
		}
		if (n < 0)
			return false;
		if ((uint64_t)n > MAX_BULK) {
			*reason = OA_RESP_TOO_LARGE;
			return false;
		}
		p->skip = (uint64_t)n;
		p->state = ST_DATA;
		return true;
	}
	if (p->type == ':') {
		if (p->mode == MODE_TOP)
			p->value = n;
		*emitted = reply_value_done(p, 0);
	} else if (n < 0) {
		if (n != -1 || (p->type != '$' && p->type != '*'))
			return false;
		if (p->mode == MODE_TOP)
			p->top = OA_RESP_NULL;
		*emitted = reply_value_done(p, 0);
	} else if (is_aggregate(p->type)) {
		uint64_t children = (uint64_t)n * (p->type == '%' || p->type == '|' ? 2 : 1);
		if ((uint64_t)n > MAX_ELEMENTS || p->remaining + children > MAX_REMAINING) {
			*reason = OA_RESP_TOO_LARGE;
			return false;
		}
		if (p->mode == MODE_TOP && p->type != '|')
			p->value = n;
		*emitted = reply_value_done(p, children);
	} else {
		if ((uint64_t)n > MAX_BULK) {
			*reason = OA_RESP_TOO_LARGE;
			return false;
		}
		if (p->mode == MODE_TOP)
			p->value = n;
		p->skip = (uint64_t)n;
		p->state = ST_DATA;
		return true;
	}
	if (*emitted)
		emit_reply(p, ev);
	return true;
}

/* Payload bytes of a bulk string: captured where wanted, else skipped. */
static size_t data_bytes(struct oa_resp_parser *p, const uint8_t *data, size_t len)
{
	size_t take = p->skip < len ? (size_t)p->skip : len;
	if (p->role == OA_RESP_COMMANDS) {
		if (p->arg == 0) {
			for (size_t i = 0; i < take; i++)
				append(p, p->name, &p->name_len, sizeof p->name, upper(data[i]));
		} else if (p->arg == 1 && !(p->flags & OA_RESP_KEY_WITHHELD)) {
			size_t room = sizeof p->key - 1 - p->key_len, n = take < room ? take : room;
			memcpy(p->key + p->key_len, data, n);
			p->key_len = (uint8_t)(p->key_len + n);
			p->key[p->key_len] = '\0';
			if (n < take)
				p->flags |= OA_RESP_TRUNCATED;
		}
	} else {
		for (size_t i = 0; i < take && p->capture != CAPTURE_NONE; i++)
			capture_byte(p, data[i]);
	}
	p->skip -= take;
	if (!p->skip)
		p->state = ST_DATA_CR;
	return take;
}

static bool is_inline_byte(uint8_t c)
{
	return c >= 0x20 ? c != 0x7f : c == '\t' || c == '\r' || c == '\n';
}

/* A byte of an inline command: words split at blanks, quotes group. */
static bool inline_byte(struct oa_resp_parser *p, uint8_t c, struct oa_resp_event *ev,
			bool *emitted)
{
	*emitted = false;
	if (!is_inline_byte(c) || ++p->line_len > OA_RESP_MAX_INLINE)
		return false;
	if (c == '\n') {
		if (!p->argc) {
			p->state = ST_IDLE; /* an empty line is no command */
			return true;
		}
		p->flags |= OA_RESP_INLINE;
		emit_command(p, ev);
		*emitted = true;
		return true;
	}
	if (p->quote) {
		if (c == p->quote) {
			p->quote = 0;
			return true;
		}
	} else if (c == ' ' || c == '\t' || c == '\r') {
		p->in_word = false;
		return true;
	} else if (!p->in_word) {
		p->in_word = true;
		p->argc++;
		if (p->argc == 2)
			key_withheld(p);
		if (c == '"' || c == '\'') {
			p->quote = c;
			return true;
		}
	}
	if (p->argc == 1)
		append(p, p->name, &p->name_len, sizeof p->name, upper(c));
	else if (p->argc == 2 && !(p->flags & OA_RESP_KEY_WITHHELD))
		append(p, p->key, &p->key_len, sizeof p->key, c);
	return true;
}

/* A number line at data[at] (digits, an optional '-' where negative_ok,
 * CRLF), complete in len bytes: its value and the index past its CRLF, or
 * end 0 when it is not (the state machine then reads it, and says what is
 * wrong with it). Inlined and returned in registers: the fast paths call it
 * once per element. */
struct number_line {
	size_t end;
	int64_t value;
};

static inline __attribute__((always_inline)) struct number_line
fast_number(const uint8_t *data, size_t len, size_t at, bool negative_ok)
{
	bool negative = negative_ok && at < len && data[at] == '-';
	uint64_t n = 0;
	at += negative;
	size_t first = at;
	while (at < len && data[at] >= '0' && data[at] <= '9' && at - first < 18)
		n = n * 10 + (uint64_t)(data[at++] - '0');
	if (at == first || len - at < 2 || data[at] != '\r' || data[at + 1] != '\n')
		return (struct number_line){0, 0};
	return (struct number_line){at + 2, negative ? -(int64_t)n : (int64_t)n};
}

/* A whole multibulk command at data[0] == '*', parsed at once; returns its
 * length, or 0 to leave it to the state machine (incomplete, unusual or
 * malformed), which gives the same event. */
static size_t fast_command(struct oa_resp_parser *p, const uint8_t *data, size_t len,
			   struct oa_resp_event *ev)
{
	struct number_line count = fast_number(data, len, 1, false);
	int64_t argc = count.value, n;
	size_t i = count.end;
	if (!i || argc <= 0 || argc > MAX_COMMAND_ARGS)
		return 0;
	begin_command(p);
	for (int64_t arg = 0; arg < argc; arg++) {
		if (i >= len || data[i] != '$')
			return 0;
		struct number_line length = fast_number(data, len, i + 1, false);
		i = length.end;
		n = length.value;
		if (!i || (uint64_t)n > len - i || len - i - (uint64_t)n < 2 ||
		    data[i + n] != '\r' || data[i + n + 1] != '\n')
			return 0;
		if (arg == 0) {
			size_t take =
			    (size_t)n < sizeof p->name - 1 ? (size_t)n : sizeof p->name - 1;
			for (size_t k = 0; k < take; k++)
				p->name[k] = (char)upper(data[i + k]);
			p->name[take] = '\0';
			p->name_len = (uint8_t)take;
			if (take < (size_t)n)
				p->flags |= OA_RESP_TRUNCATED;
		} else if (arg == 1 && !key_withheld(p)) {
			size_t take = (size_t)n < sizeof p->key - 1 ? (size_t)n : sizeof p->key - 1;
			memcpy(p->key, data + i, take);
			p->key[take] = '\0';
			p->key_len = (uint8_t)take;
			if (take < (size_t)n)
				p->flags |= OA_RESP_TRUNCATED;
		}
		i += (size_t)n + 2;
	}
	p->argc = (uint32_t)argc;
	emit_command(p, ev);
	return i;
}

/* A whole top-level simple string, error, integer or bulk string at data[0],
 * parsed at once; returns its length, or 0 to leave it to the state machine. */
static size_t fast_reply(struct oa_resp_parser *p, const uint8_t *data, size_t len,
			 struct oa_resp_event *ev)
{
	uint8_t type = data[0];
	size_t i = 1;
	int64_t n;
	if (type == '+' || type == '-') {
		const uint8_t *lf = memchr(data + 1, '\n', len - 1);
		if (!lf)
			return 0;
		reply_type(p, type);
		for (const uint8_t *c = data + 1; c < lf && p->capture != CAPTURE_NONE; c++)
			if (*c != '\r')
				capture_byte(p, *c);
		i = (size_t)(lf - data) + 1;
	} else if (type == ':') {
		struct number_line integer = fast_number(data, len, 1, true);
		i = integer.end;
		n = integer.value;
		if (!i)
			return 0;
		reply_type(p, type);
		p->value = n;
	} else if (type == '$') {
		struct number_line length = fast_number(data, len, 1, true);
		i = length.end;
		n = length.value;
		if (!i || n < -1)
			return 0;
		if (n >= 0 && ((uint64_t)n > len - i || len - i - (uint64_t)n < 2 ||
			       data[i + n] != '\r' || data[i + n + 1] != '\n'))
			return 0;
		reply_type(p, type);
		p->top = n < 0 ? OA_RESP_NULL : OA_RESP_BULK;
		p->value = n < 0 ? 0 : n;
		i += n < 0 ? 0 : (size_t)n + 2;
	} else {
		return 0;
	}
	emit_reply(p, ev);
	return i;
}

size_t oa_resp_feed(struct oa_resp_parser *p, const uint8_t *data, size_t len,
		    struct oa_resp_event *ev)
{
	enum oa_resp_gave_up_reason reason = OA_RESP_MALFORMED;
	bool emitted = false;
	size_t i = 0;
	ev->kind = OA_RESP_NONE;
	if (p->state == ST_DEAD)
		return len;
	while (i < len) {
		uint8_t c = data[i];
		switch (p->state) {
		case ST_IDLE:
			if (p->role == OA_RESP_REPLIES) {
				size_t whole =
				    p->mode == MODE_TOP ? fast_reply(p, data + i, len - i, ev) : 0;
				if (whole)
					return i + whole;
				i++;
				if (!reply_type(p, c))
					goto fail;
				break;
			}
			if (c == '*') {
				size_t whole = fast_command(p, data + i, len - i, ev);
				if (whole)
					return i + whole;
			}
			begin_command(p);
			if (c == '*') {
				p->type = '*';
				p->number = 0;
				p->negative = false;
				p->line_len = 0;
				p->state = ST_NUMBER;
				i++;
			} else {
				p->state = ST_INLINE; /* the byte is the line's first */
			}
			break;
		case ST_NUMBER:
			i++;
			if (c == '-' && !p->line_len && !p->negative) {
				p->negative = true;
			} else if (c >= '0' && c <= '9') {
				if (++p->line_len > MAX_DIGITS ||
				    p->number > (uint64_t)(INT64_MAX - (c - '0')) / 10) {
					reason = OA_RESP_TOO_LARGE;
					goto fail;
				}
				p->number = p->number * 10 + (uint64_t)(c - '0');
			} else if (c == '\r' && p->line_len) {
				p->state = ST_NUMBER_LF;
			} else {
				goto fail;
			}
			break;
		case ST_NUMBER_LF:
			i++;
			if (c != '\n' || !number_done(p, ev, &emitted, &reason))
				goto fail;
			if (emitted)
				return i;
			break;
		case ST_BULK_TYPE:
			i++;
			if (c != '$')
				goto fail;
			p->type = '$';
			p->number = 0;
			p->negative = false;
			p->line_len = 0;
			if (p->arg == 1)
				key_withheld(p);
			p->state = ST_NUMBER;
			break;
		case ST_DATA:
			i += data_bytes(p, data + i, len - i);
			break;
		case ST_DATA_CR:
			i++;
			if (c != '\r')
				goto fail;
			p->state = ST_DATA_LF;
			break;
		case ST_DATA_LF:
			i++;
			if (c != '\n')
				goto fail;
			if (p->role == OA_RESP_COMMANDS) {
				if (++p->arg < p->argc) {
					p->state = ST_BULK_TYPE;
					break;
				}
				emit_command(p, ev);
				return i;
			}
			if (reply_value_done(p, 0)) {
				emit_reply(p, ev);
				return i;
			}
			break;
		case ST_INLINE:
			i++;
			if (!inline_byte(p, c, ev, &emitted)) {
				reason = p->line_len > OA_RESP_MAX_INLINE ? OA_RESP_TOO_LARGE
									  : OA_RESP_MALFORMED;
				goto fail;
			}
			if (emitted)
				return i;
			break;
		case ST_LINE:
			if (p->capture == CAPTURE_NONE) {
				const uint8_t *lf = memchr(data + i, '\n', len - i);
				if (!lf)
					return len;
				i = (size_t)(lf - data);
				c = '\n';
			}
			i++;
			if (c == '\n') {
				if (reply_value_done(p, 0)) {
					emit_reply(p, ev);
					return i;
				}
			} else if (c != '\r') {
				capture_byte(p, c);
			}
			break;
		default:
			return len;
		}
	}
	return i;
fail:
	give_up(p, ev, reason);
	return i;
}

bool oa_resp_commands_start(const uint8_t *head, size_t len)
{
	return len && head[0] == '*' && (len == 1 || (head[1] >= '0' && head[1] <= '9'));
}
