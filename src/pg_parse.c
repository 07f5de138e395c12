#include "pg_parse.h"

#include <string.h>

_Static_assert(sizeof(struct oa_pg_parser) <= 656, "parser state must stay small");

enum state {
	ST_TYPE,   /* the type byte of a typed message */
	ST_LENGTH, /* the four bytes of a length (a startup-phase message begins here) */
	ST_BODY,
	ST_ANSWER, /* the one-byte answer to an SSLRequest or GSSENCRequest */
	ST_DEAD,
};

/* Where the bytes of the current NUL-terminated string go. */
enum target {
	TARGET_NONE,
	TARGET_TEXT,
	TARGET_NAME,
	TARGET_KEY,
	TARGET_SQLSTATE,
	TARGET_SEVERITY,
};

void oa_pg_parser_init(struct oa_pg_parser *p, enum oa_pg_role role)
{
	memset(p, 0, sizeof *p);
	p->role = (uint8_t)role;
	/* Only the frontend starts without type bytes (StartupMessage, SSLRequest...). */
	p->typed = role == OA_PG_BACKEND;
	p->state = p->typed ? ST_TYPE : ST_LENGTH;
}

void oa_pg_expect_encryption_answer(struct oa_pg_parser *p)
{
	if (p->role == OA_PG_BACKEND && p->state == ST_TYPE)
		p->state = ST_ANSWER;
}

/* The type bytes each side sends, one bit per byte value below 128: a test
 * for every message, not a strchr. */
#define LO(c) (1ull << (c))
#define HI(c) (1ull << ((c)-64))
static const uint64_t frontend_types[2] = {0, HI('Q') | HI('P') | HI('B') | HI('E') | HI('D') |
						  HI('C') | HI('S') | HI('H') | HI('X') | HI('F') |
						  HI('d') | HI('c') | HI('f') | HI('p')};
static const uint64_t backend_types[2] = {
    LO('1') | LO('2') | LO('3'), HI('R') | HI('K') | HI('S') | HI('Z') | HI('T') | HI('D') |
				     HI('C') | HI('E') | HI('N') | HI('I') | HI('n') | HI('s') |
				     HI('t') | HI('G') | HI('H') | HI('W') | HI('d') | HI('c') |
				     HI('A') | HI('V') | HI('v')};
#undef LO
#undef HI

static bool is_message_type(const struct oa_pg_parser *p, uint8_t c)
{
	const uint64_t *types = p->role == OA_PG_FRONTEND ? frontend_types : backend_types;
	return c < 128 && (types[c >> 6] >> (c & 63) & 1);
}

/* Messages with fields the parser captures (the rest is skipped by length). */
static bool has_captured_fields(const struct oa_pg_parser *p)
{
	if (!p->typed)
		return true;
	if (p->role == OA_PG_FRONTEND)
		return p->type == 'Q' || p->type == 'P' || p->type == 'B';
	return p->type == 'C' || p->type == 'E' || p->type == 'N' || p->type == 'R' ||
	       p->type == 'Z';
}

static void clear_event(struct oa_pg_event *ev, enum oa_pg_event_kind kind)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = (uint8_t)kind;
}

static void give_up(struct oa_pg_parser *p, struct oa_pg_event *ev,
		    enum oa_pg_gave_up_reason reason)
{
	clear_event(ev, OA_PG_GAVE_UP);
	/* Before the first event, whatever went wrong says this is not PostgreSQL. */
	ev->reason = (uint8_t)(p->started ? reason : OA_PG_NOT_PG);
	p->state = ST_DEAD;
}

static void begin_body(struct oa_pg_parser *p)
{
	p->body_pos = p->number = 0;
	p->field = p->field_type = 0;
	p->flags = 0;
	p->text_len = p->name_len = p->key_len = p->sqlstate_len = p->severity_len = 0;
	p->text[0] = p->name[0] = p->key[0] = p->sqlstate[0] = p->severity[0] = '\0';
	p->severity_is_v = false;
	p->capturing = has_captured_fields(p);
	p->state = ST_BODY;
}

/* The length field is complete. */
static bool length_done(struct oa_pg_parser *p, enum oa_pg_gave_up_reason *reason)
{
	uint32_t min = p->typed ? 4 : 8, max = p->typed ? OA_PG_MAX_MESSAGE : OA_PG_MAX_STARTUP;
	*reason = OA_PG_MALFORMED;
	if (p->length < min)
		return false;
	if (p->length > max) {
		*reason = OA_PG_TOO_LARGE;
		return false;
	}
	p->remaining = p->length - 4;
	begin_body(p);
	return true;
}

static enum target string_target(const struct oa_pg_parser *p)
{
	if (!p->typed) {
		if (!(p->field & 1))
			return TARGET_KEY;
		if (strcmp(p->key, "user") == 0)
			return TARGET_NAME;
		return strcmp(p->key, "database") == 0 ? TARGET_TEXT : TARGET_NONE;
	}
	switch (p->type) {
	case 'Q':
		return TARGET_TEXT; /* frontend Query */
	case 'P':
		return p->field == 0 ? TARGET_NAME : TARGET_TEXT;
	case 'B':
		return p->field == 0 ? TARGET_NONE : TARGET_NAME; /* portal, then statement */
	case 'C':
		return TARGET_TEXT; /* backend CommandComplete */
	case 'E':
	case 'N':
		if (p->field_type == 'C')
			return TARGET_SQLSTATE;
		if (p->field_type == 'V' || (p->field_type == 'S' && !p->severity_is_v))
			return TARGET_SEVERITY;
		return TARGET_NONE;
	default:
		return TARGET_NONE;
	}
}

/* The strings that end a message's captured part: after them, skip. */
static bool last_captured_string(const struct oa_pg_parser *p)
{
	switch (p->type) {
	case 'Q':
	case 'C':
		return p->field == 0;
	case 'P':
	case 'B':
		return p->field == 1;
	default:
		return false;
	}
}

static void copy_into(struct oa_pg_parser *p, char *buf, uint16_t *len, size_t cap,
		      const uint8_t *src, size_t n)
{
	size_t room = cap - 1 - *len, take = n < room ? n : room;
	memcpy(buf + *len, src, take);
	*len = (uint16_t)(*len + take);
	buf[*len] = '\0';
	if (take < n)
		p->flags |= OA_PG_TRUNCATED;
}

/* Part of a NUL-terminated string field, up to and with its NUL. */
static size_t string_bytes(struct oa_pg_parser *p, const uint8_t *data, size_t n)
{
	const uint8_t *nul = memchr(data, '\0', n);
	size_t part = nul ? (size_t)(nul - data) : n;
	uint8_t flags = p->flags;
	switch (string_target(p)) {
	case TARGET_TEXT:
		copy_into(p, p->text, &p->text_len, sizeof p->text, data, part);
		break;
	case TARGET_NAME:
		copy_into(p, p->name, &p->name_len, sizeof p->name, data, part);
		break;
	case TARGET_KEY: /* a cut key matches nothing: no flag */
		copy_into(p, p->key, &p->key_len, sizeof p->key, data, part);
		p->flags = flags;
		break;
	case TARGET_SQLSTATE:
		copy_into(p, p->sqlstate, &p->sqlstate_len, sizeof p->sqlstate, data, part);
		break;
	case TARGET_SEVERITY:
		if (p->field_type == 'V' && !p->severity_is_v) {
			p->severity_is_v = true; /* replaces the localised one */
			p->severity_len = 0;
		}
		copy_into(p, p->severity, &p->severity_len, sizeof p->severity, data, part);
		break;
	default:
		break;
	}
	if (!nul)
		return n;
	if (!p->typed) {
		/* An empty key ends the parameters. */
		if (!(p->field & 1) && !p->key_len)
			p->capturing = false;
		if (p->field & 1)
			p->key_len = 0, p->key[0] = '\0';
	} else if (p->type == 'E' || p->type == 'N') {
		p->field_type = 0;
	} else if (last_captured_string(p)) {
		p->capturing = false;
	}
	p->field++;
	return part + 1;
}

/* Bytes of a message's captured part; n > 0. Returns how many it took, at
 * least one; false in *ok to give up. */
static size_t body_bytes(struct oa_pg_parser *p, const uint8_t *data, size_t n, bool *ok,
			 enum oa_pg_gave_up_reason *reason)
{
	uint8_t c = data[0];
	*ok = true;
	if (!p->typed || p->type == 'R') {
		/* A 32-bit code first: the startup-phase request, the authentication request. */
		if (p->body_pos < 4) {
			p->number = p->number << 8 | c;
			if (++p->body_pos < 4)
				return 1;
			if (p->typed) {
				p->capturing = false;
				return 1;
			}
			if (p->number >> 16 == 3)
				return 1; /* StartupMessage: key/value strings follow */
			p->capturing = false;
			if ((p->number == OA_PG_SSL_REQUEST_CODE ||
			     p->number == OA_PG_GSSENC_REQUEST_CODE) &&
			    p->length == 8)
				return 1;
			if (p->number == OA_PG_CANCEL_REQUEST_CODE && p->length >= 16)
				return 1;
			*reason = OA_PG_MALFORMED;
			*ok = false;
			return 1;
		}
		return string_bytes(p, data, n);
	}
	if (p->type == 'Z') {
		p->number = c;
		p->capturing = false;
		return 1;
	}
	if ((p->type == 'E' || p->type == 'N') && !p->field_type) {
		if (!c)
			p->capturing = false; /* the terminating NUL */
		p->field_type = c;
		return 1;
	}
	return string_bytes(p, data, n);
}

static bool is_sqlstate(const char *code, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z')))
			return false;
	return len == 5;
}

/* A whole message was read. Returns whether it is an event. */
static bool message_done(struct oa_pg_parser *p, struct oa_pg_event *ev)
{
	if (!p->typed) {
		p->state = ST_LENGTH;
		p->header_len = 0;
		p->length = 0;
		switch (p->number) {
		case OA_PG_SSL_REQUEST_CODE:
			clear_event(ev, OA_PG_SSL_REQUEST);
			break;
		case OA_PG_GSSENC_REQUEST_CODE:
			clear_event(ev, OA_PG_GSSENC_REQUEST);
			break;
		case OA_PG_CANCEL_REQUEST_CODE:
			clear_event(ev, OA_PG_CANCEL_REQUEST);
			break;
		default:
			clear_event(ev, OA_PG_STARTUP);
			ev->code = (int32_t)p->number;
			ev->user = p->name;
			ev->database = p->text;
			p->typed = true; /* typed messages from now on */
			p->state = ST_TYPE;
			break;
		}
	} else {
		p->state = ST_TYPE;
		/* Rows and COPY data are the bulk of a stream, and no one's span. */
		if (p->type == 'd' || (p->role == OA_PG_BACKEND && p->type == 'D'))
			return false;
		clear_event(ev, OA_PG_MESSAGE);
		ev->type = p->type;
		if (p->role == OA_PG_FRONTEND) {
			if (p->type == 'Q' || p->type == 'P')
				ev->query = p->text;
			if (p->type == 'P' || p->type == 'B')
				ev->statement = p->name;
		} else if (p->type == 'C') {
			ev->tag = p->text;
		} else if (p->type == 'E' || p->type == 'N') {
			/* Only a code of the SQLSTATE alphabet goes into spans. */
			if (!is_sqlstate(p->sqlstate, p->sqlstate_len))
				p->sqlstate[0] = '\0';
			ev->sqlstate = p->sqlstate;
			ev->severity = p->severity;
		} else if (p->type == 'Z') {
			ev->status = (uint8_t)p->number;
		} else if (p->type == 'R') {
			ev->code = (int32_t)p->number;
		}
	}
	ev->flags = p->flags;
	ev->length = p->length - 4;
	p->started = true;
	return true;
}

size_t oa_pg_feed(struct oa_pg_parser *p, const uint8_t *data, size_t len, struct oa_pg_event *ev)
{
	enum oa_pg_gave_up_reason reason = OA_PG_MALFORMED;
	size_t i = 0;
	ev->kind = OA_PG_NONE;
	if (p->state == ST_DEAD)
		return len;
	while (i < len) {
		uint8_t c = data[i];
		switch (p->state) {
		case ST_ANSWER:
			if (c == 'N' || c == 'S' || c == 'G') {
				i++;
				clear_event(ev, c == 'N'   ? OA_PG_ENCRYPTION_REFUSED
						: c == 'S' ? OA_PG_TLS
							   : OA_PG_ENCRYPTED);
				p->state = c == 'G' ? ST_DEAD : ST_TYPE;
				p->started = true;
				return i;
			}
			p->state = ST_TYPE; /* an old server's ErrorResponse */
			break;
		case ST_TYPE:
			i++;
			if (!is_message_type(p, c))
				goto fail;
			p->type = c;
			p->header_len = 0;
			p->length = 0;
			p->state = ST_LENGTH;
			if (len - i >= 4) {
				/* the whole length at once, as ST_LENGTH would take it */
				p->length = (uint32_t)data[i] << 24 | (uint32_t)data[i + 1] << 16 |
					    (uint32_t)data[i + 2] << 8 | data[i + 3];
				p->header_len = 4;
				i += 4;
				if (!length_done(p, &reason))
					goto fail;
				if (!p->remaining && message_done(p, ev))
					return i;
			}
			break;
		case ST_LENGTH:
			i++;
			p->length = p->length << 8 | c;
			if (++p->header_len < 4)
				break;
			if (!length_done(p, &reason))
				goto fail;
			if (!p->remaining && message_done(p, ev))
				return i;
			break;
		case ST_BODY: {
			size_t n = len - i < p->remaining ? len - i : p->remaining, used = n;
			bool ok = true;
			if (p->capturing)
				used = body_bytes(p, data + i, n, &ok, &reason);
			i += used;
			p->remaining -= (uint32_t)used;
			if (!ok)
				goto fail;
			if (!p->remaining && message_done(p, ev))
				return i;
			break;
		}
		default:
			return len;
		}
	}
	return i;
fail:
	give_up(p, ev, reason);
	return i;
}

bool oa_pg_frontend_start(const uint8_t *head, size_t len)
{
	if (len < 2 || head[0] || head[1])
		return false;
	if (len < 8)
		return true;
	uint32_t code =
	    (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 | (uint32_t)head[6] << 8 | head[7];
	return code == 3u << 16 || code == OA_PG_SSL_REQUEST_CODE ||
	       code == OA_PG_GSSENC_REQUEST_CODE;
}

bool oa_pg_message_gap(const struct oa_pg_parser *p, uint32_t *gap)
{
	if (!p->typed || (p->state != ST_TYPE && p->state != ST_BODY))
		return false;
	*gap = p->state == ST_BODY ? p->remaining : 0;
	return true;
}
