#include "http_parse.h"

#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "decimal.h"
#include "hex.h"

_Static_assert(sizeof(struct oa_http_parser) <= 512, "parser state must stay small");

enum state {
	ST_IDLE, /* between messages */
	/* request line */
	ST_METHOD,
	ST_TARGET_START,
	ST_SCHEME,
	ST_SCHEME_SLASH1,
	ST_SCHEME_SLASH2,
	ST_AUTHORITY,
	ST_PATH,
	ST_QUERY,
	ST_FRAGMENT,
	ST_REQUEST_VERSION,
	/* status line */
	ST_RESPONSE_VERSION,
	ST_STATUS,
	ST_REASON,
	/* shared by both start lines and the header lines */
	ST_START_LINE_LF,
	ST_HEADER_LINE_START,
	ST_HEADER_NAME,
	ST_HEADER_VALUE_OWS,
	ST_HEADER_VALUE,
	ST_HEADER_VALUE_LF,
	ST_HEAD_END_LF,
	/* body */
	ST_BODY_LENGTH,
	ST_BODY_UNTIL_CLOSE,
	ST_CHUNK_SIZE,
	ST_CHUNK_EXT,
	ST_CHUNK_SIZE_LF,
	ST_CHUNK_DATA,
	ST_CHUNK_DATA_CR,
	ST_CHUNK_DATA_LF,
	ST_TRAILER_LINE_START,
	ST_TRAILER_LINE,
	ST_TRAILER_END_LF,
	/* emit an event without reading a byte */
	ST_MESSAGE_DONE,
	ST_TUNNEL,
	ST_DEAD,
};

/* Headers the parser looks at; the index is a bit in cur.name_match. */
enum field {
	FIELD_HOST,
	FIELD_USER_AGENT,
	FIELD_TRACEPARENT,
	FIELD_TRACESTATE,
	FIELD_CONTENT_LENGTH,
	FIELD_TRANSFER_ENCODING,
	FIELD_NONE,
};
static const char *const field_names[] = {
    "host", "user-agent", "traceparent", "tracestate", "content-length", "transfer-encoding",
};
/* Their lengths: header names are matched byte by byte, on the hot path. */
static const uint8_t field_lengths[] = {4, 10, 11, 10, 14, 17};
_Static_assert(sizeof field_lengths == FIELD_NONE, "a length per field name");
#define REQUEST_FIELDS ((1u << FIELD_NONE) - 1)
/* What a lean request head reads: propagation and framing. */
#define LEAN_REQUEST_FIELDS (REQUEST_FIELDS & ~(1u << FIELD_HOST | 1u << FIELD_USER_AGENT))
#define RESPONSE_FIELDS	    (1u << FIELD_CONTENT_LENGTH | 1u << FIELD_TRANSFER_ENCODING)

/* cur.bits: what the head said so far. */
enum {
	BIT_HOST_SET = 1 << 0,
	BIT_USER_AGENT_SET = 1 << 1,
	BIT_TRACEPARENT_CUT = 1 << 2, /* a non-blank byte did not fit */
	BIT_LENGTH_SET = 1 << 3,      /* a Content-Length header was complete */
	BIT_LENGTH_DIGIT = 1 << 4,    /* the current Content-Length value has a digit */
	BIT_LENGTH_BLANK = 1 << 5,    /* ... and a blank after it */
	BIT_CHUNKED = 1 << 6,	      /* the last transfer coding is chunked */
	BIT_TE_SET = 1 << 7,
	BIT_TE_BLANK = 1 << 8, /* blank after the current transfer-coding token */
	BIT_TUNNEL = 1 << 9,   /* the bytes after this message are not HTTP */
	BIT_LEAN = 1 << 10,    /* a lean head (oa_http_set_lean) */
};
#define TE_MISMATCH 0xff /* cur.te_pos: the current token is not "chunked" */

static const char *const method_names[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "_OTHER",
};
static const uint8_t method_lengths[] = {3, 4, 4, 3, 6, 5, 7, 7, 5};
_Static_assert(sizeof method_lengths == OA_HTTP_OTHER, "a length per method name");

const char *oa_http_method_name(enum oa_http_method method)
{
	return method <= OA_HTTP_OTHER ? method_names[method] : method_names[OA_HTTP_OTHER];
}

void oa_http_parser_init(struct oa_http_parser *p, enum oa_http_role role)
{
	memset(p, 0, sizeof *p);
	p->role = (uint8_t)role;
	p->state = ST_IDLE;
}

void oa_http_set_lean(struct oa_http_parser *p, bool lean)
{
	p->lean = lean;
}

bool oa_http_expect_response(struct oa_http_parser *p, enum oa_http_method method)
{
	if (p->role != OA_HTTP_RESPONSES || p->pending_count == OA_HTTP_PENDING_MAX)
		return false;
	p->pending[(p->pending_first + p->pending_count++) % OA_HTTP_PENDING_MAX] = (uint8_t)method;
	return true;
}

static enum oa_http_method pop_pending(struct oa_http_parser *p)
{
	if (!p->pending_count)
		return OA_HTTP_GET;
	enum oa_http_method method = p->pending[p->pending_first];
	p->pending_first = (p->pending_first + 1) % OA_HTTP_PENDING_MAX;
	p->pending_count--;
	return method;
}

/* RFC 9110 tchar, by table: header names are checked a byte at a time. */
static const bool token_chars[256] = {
    ['0' ... '9'] = true, ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['!'] = true,  ['#'] = true,
    ['$'] = true,	  ['%'] = true,		['&'] = true,	      ['\''] = true, ['*'] = true,
    ['+'] = true,	  ['-'] = true,		['.'] = true,	      ['^'] = true,  ['_'] = true,
    ['`'] = true,	  ['|'] = true,		['~'] = true,
};

static bool is_token(uint8_t c)
{
	return token_chars[c];
}

static bool is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}
static bool is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}
/* Visible ASCII or obs-text: what a request-target may hold. */
static bool is_visible(uint8_t c)
{
	return c > 0x20 && c != 0x7f;
}
static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Appends to a captured string; a non-blank byte that does not fit sets
 * cut_flag (blanks may be trailing whitespace, trimmed later anyway). */
static void append(char *buf, uint8_t *len, size_t cap, uint16_t *flags, uint16_t cut_flag,
		   uint8_t c)
{
	if (*len + 1u < cap) {
		buf[(*len)++] = (char)c;
		buf[*len] = '\0';
	} else if (!is_blank(c)) {
		*flags |= cut_flag;
	}
}

static void trim_trailing_blanks(char *buf, uint8_t *len)
{
	while (*len && is_blank((uint8_t)buf[*len - 1]))
		buf[--*len] = '\0';
}

#define APPEND(name, flag, c) append(h->name, &h->name##_len, sizeof h->name, &h->flags, flag, c)

/* append() of n bytes at once. */
static void append_bytes(char *buf, uint8_t *len, size_t cap, uint16_t *flags, uint16_t cut_flag,
			 const uint8_t *src, size_t n)
{
	size_t room = cap - 1 - *len, take = n < room ? n : room;
	memcpy(buf + *len, src, take);
	*len = (uint8_t)(*len + take);
	buf[*len] = '\0';
	for (size_t i = take; i < n; i++) {
		if (!is_blank(src[i])) {
			*flags |= cut_flag;
			break;
		}
	}
}

#define APPEND_BYTES(name, flag, src, n)                                                           \
	append_bytes(h->name, &h->name##_len, sizeof h->name, &h->flags, flag, src, n)

/* One call of oa_http_feed: where events go, where the blank line began,
 * where the message being parsed began (SIZE_MAX: in an earlier feed) and
 * whether a head begun now is lean. */
struct feed {
	struct oa_http_parser *p;
	struct oa_http_event *events;
	size_t n, pos, blank_at, message_at;
	bool lean;
};

/* Clears what a head says without its string buffers' tails: readers go by
 * the lengths and the NULs (and parent by OA_HTTP_TRACEPARENT_VALID). */
static void clear_head(struct oa_http_head *h)
{
	memset(h, 0, offsetof(struct oa_http_head, parent));
	h->method_original[0] = h->scheme[0] = h->path[0] = h->query[0] = '\0';
	h->host[0] = h->user_agent[0] = h->tracestate[0] = '\0';
}

static struct oa_http_event *emit(struct feed *f, enum oa_http_event_kind kind)
{
	struct oa_http_event *ev = &f->events[f->n++];
	const struct oa_http_head *h = &f->p->cur.head;
	ev->kind = kind;
	ev->reason = 0;
	ev->offset = f->pos;
	ev->inject_at = SIZE_MAX;
	ev->head_len = 0;
	ev->body_len = 0;
	ev->status = kind == OA_HTTP_GAVE_UP ? 0 : h->status;
	ev->method = kind == OA_HTTP_GAVE_UP ? 0 : h->method;
	ev->head = kind == OA_HTTP_MESSAGE_BEGIN ? h : NULL;
	return ev;
}

static void give_up(struct feed *f, enum oa_http_gave_up_reason reason)
{
	emit(f, OA_HTTP_GAVE_UP)->reason = reason;
	f->p->state = ST_DEAD;
}

static void begin_message(struct oa_http_parser *p, enum state state, bool lean)
{
	/* the traceparent buffer is written before it is read */
	memset(&p->cur, 0, offsetof(__typeof__(p->cur), traceparent));
	clear_head(&p->cur.head);
	if (lean)
		p->cur.bits = BIT_LEAN;
	p->state = state;
}

/* What a lean head does not keep, cleared whichever path parsed it. */
static void strip_lean_head(struct oa_http_head *h)
{
	h->scheme_len = h->path_len = h->query_len = h->host_len = h->user_agent_len = 0;
	h->scheme[0] = h->path[0] = h->query[0] = h->host[0] = h->user_agent[0] = '\0';
	h->flags &=
	    (uint16_t) ~(OA_HTTP_HAS_QUERY | OA_HTTP_PATH_TRUNCATED | OA_HTTP_QUERY_TRUNCATED |
			 OA_HTTP_HOST_TRUNCATED | OA_HTTP_USER_AGENT_TRUNCATED);
	h->flags |= OA_HTTP_LEAN;
}

static void select_method(struct oa_http_head *h)
{
	h->method = OA_HTTP_OTHER;
	if (h->flags & OA_HTTP_METHOD_TRUNCATED)
		return;
	for (uint8_t m = 0; m < OA_HTTP_OTHER; m++)
		if (method_lengths[m] == h->method_original_len &&
		    memcmp(h->method_original, method_names[m], method_lengths[m]) == 0)
			h->method = m;
}

/* An absolute-form target without a path still asks for "/". */
static void default_path(struct oa_http_head *h)
{
	if (!h->path_len && h->method != OA_HTTP_CONNECT)
		APPEND(path, OA_HTTP_PATH_TRUNCATED, '/');
}

/* Bytes after "name:" up to the end of the line, leading blanks skipped. */
static bool header_value_byte(struct oa_http_parser *p, uint8_t c)
{
	struct oa_http_head *h = &p->cur.head;
	switch (p->cur.field) {
	case FIELD_HOST:
		APPEND(host, OA_HTTP_HOST_TRUNCATED, c);
		return true;
	case FIELD_USER_AGENT:
		APPEND(user_agent, OA_HTTP_USER_AGENT_TRUNCATED, c);
		return true;
	case FIELD_TRACEPARENT: {
		if (!p->cur.traceparent_len && !(h->flags & OA_HTTP_HAS_TRACEPARENT)) {
			/* framing_len counts this byte already */
			p->cur.tp_state = OA_HTTP_TP_OPEN;
			p->cur.tp_value_at = (uint16_t)(p->cur.framing_len - 1);
		}
		uint16_t cut = 0;
		append(p->cur.traceparent, &p->cur.traceparent_len, sizeof p->cur.traceparent, &cut,
		       BIT_TRACEPARENT_CUT, c);
		p->cur.bits |= cut;
		return true;
	}
	case FIELD_TRACESTATE:
		APPEND(tracestate, OA_HTTP_TRACESTATE_TRUNCATED, c);
		return true;
	case FIELD_CONTENT_LENGTH:
		if (is_blank(c)) {
			p->cur.bits |= BIT_LENGTH_BLANK;
			return true;
		}
		if (!is_digit(c) || (p->cur.bits & BIT_LENGTH_BLANK) ||
		    p->cur.number > (UINT64_MAX - 9) / 10)
			return false;
		p->cur.number = p->cur.number * 10 + (c - '0');
		p->cur.bits |= BIT_LENGTH_DIGIT;
		return true;
	case FIELD_TRANSFER_ENCODING:
		if (c == ',') {
			if (p->cur.te_pos) {
				p->cur.bits &= (uint16_t) ~(BIT_CHUNKED | BIT_TE_BLANK);
				if (p->cur.te_pos == 7)
					p->cur.bits |= BIT_CHUNKED;
			}
			p->cur.te_pos = 0;
		} else if (is_blank(c)) {
			if (p->cur.te_pos)
				p->cur.bits |= BIT_TE_BLANK;
		} else if ((p->cur.bits & BIT_TE_BLANK) || p->cur.te_pos >= 7 ||
			   lower(c) != (uint8_t) "chunked"[p->cur.te_pos]) {
			p->cur.te_pos = TE_MISMATCH;
		} else {
			p->cur.te_pos++;
		}
		return true;
	default:
		return true;
	}
}

/* W3C allows dropping tracestate members from the end: never keep half of one. */
static void drop_partial_tracestate_member(struct oa_http_head *h)
{
	while (h->tracestate_len && h->tracestate[h->tracestate_len - 1] != ',')
		h->tracestate[--h->tracestate_len] = '\0';
	if (h->tracestate_len)
		h->tracestate[--h->tracestate_len] = '\0';
	trim_trailing_blanks(h->tracestate, &h->tracestate_len);
}

static bool header_line_end(struct oa_http_parser *p)
{
	struct oa_http_head *h = &p->cur.head;
	p->state = ST_HEADER_LINE_START;
	switch (p->cur.field) {
	case FIELD_HOST:
		trim_trailing_blanks(h->host, &h->host_len);
		break;
	case FIELD_USER_AGENT:
		trim_trailing_blanks(h->user_agent, &h->user_agent_len);
		break;
	case FIELD_TRACEPARENT: {
		const char *tp = p->cur.traceparent;
		/* Only a later version's extra "-..." fields may be cut off. */
		bool cut = (p->cur.bits & BIT_TRACEPARENT_CUT) && tp[OA_TRACEPARENT_LEN] != '-';
		if (h->flags & OA_HTTP_HAS_TRACEPARENT) {
			h->flags &= (uint16_t)~OA_HTTP_TRACEPARENT_VALID;
		} else {
			if (!cut && oa_traceparent_parse(tp, p->cur.traceparent_len, &h->parent))
				h->flags |= OA_HTTP_TRACEPARENT_VALID;
			bool v00 =
			    (h->flags & OA_HTTP_TRACEPARENT_VALID) && tp[0] == '0' && tp[1] == '0';
			p->cur.tp_state = v00 ? OA_HTTP_TP_V00 : OA_HTTP_TP_OTHER;
		}
		h->flags |= OA_HTTP_HAS_TRACEPARENT;
		break;
	}
	case FIELD_TRACESTATE:
		trim_trailing_blanks(h->tracestate, &h->tracestate_len);
		if (h->flags & OA_HTTP_TRACESTATE_TRUNCATED)
			drop_partial_tracestate_member(h);
		break;
	case FIELD_CONTENT_LENGTH:
		if (!(p->cur.bits & BIT_LENGTH_DIGIT))
			return false;
		/* Repeated Content-Length headers must agree. */
		if ((p->cur.bits & BIT_LENGTH_SET) && p->cur.remaining != p->cur.number)
			return false;
		p->cur.remaining = p->cur.number;
		p->cur.bits |= BIT_LENGTH_SET;
		break;
	case FIELD_TRANSFER_ENCODING:
		header_value_byte(p, ',');
		p->cur.bits |= BIT_TE_SET;
		break;
	default:
		break;
	}
	return true;
}

/* The name is complete and names field: decide where its value goes. */
static void use_field(struct oa_http_parser *p, enum field field)
{
	struct oa_http_head *h = &p->cur.head;
	/* First Host / User-Agent wins; an absolute-form target beats Host. */
	if (field == FIELD_HOST && (p->cur.bits & BIT_HOST_SET))
		field = FIELD_NONE;
	if (field == FIELD_USER_AGENT && (p->cur.bits & BIT_USER_AGENT_SET))
		field = FIELD_NONE;
	if (field == FIELD_HOST)
		p->cur.bits |= BIT_HOST_SET;
	if (field == FIELD_USER_AGENT)
		p->cur.bits |= BIT_USER_AGENT_SET;
	if (field == FIELD_TRACEPARENT) {
		p->cur.traceparent_len = 0;
		p->cur.bits &= (uint16_t)~BIT_TRACEPARENT_CUT;
	}
	if (field == FIELD_TRACESTATE && h->tracestate_len)
		APPEND(tracestate, OA_HTTP_TRACESTATE_TRUNCATED, ',');
	if (field == FIELD_CONTENT_LENGTH) {
		p->cur.number = 0;
		p->cur.bits &= (uint16_t) ~(BIT_LENGTH_DIGIT | BIT_LENGTH_BLANK);
	}
	p->cur.field = (uint8_t)field;
}

static void header_name_end(struct oa_http_parser *p)
{
	enum field field = FIELD_NONE;
	for (unsigned k = 0; k < FIELD_NONE; k++)
		if ((p->cur.name_match & (1u << k)) && field_lengths[k] == p->cur.name_len)
			field = k;
	use_field(p, field);
}

static void header_name_byte(struct oa_http_parser *p, uint8_t c)
{
	for (unsigned k = 0; k < FIELD_NONE && p->cur.name_match; k++)
		if (p->cur.name_len >= field_lengths[k] ||
		    (uint8_t)field_names[k][p->cur.name_len] != lower(c))
			p->cur.name_match &= (uint8_t) ~(1u << k);
	if (p->cur.name_len < UINT8_MAX)
		p->cur.name_len++;
}

static void start_header_line(struct oa_http_parser *p, uint8_t c)
{
	p->cur.name_match = p->role == OA_HTTP_RESPONSES ? (uint8_t)RESPONSE_FIELDS
			    : (p->cur.bits & BIT_LEAN)	 ? (uint8_t)LEAN_REQUEST_FIELDS
							 : (uint8_t)REQUEST_FIELDS;
	p->cur.name_len = 0;
	header_name_byte(p, c);
	p->state = ST_HEADER_NAME;
}

static void enter_chunk_size(struct oa_http_parser *p)
{
	p->cur.number = 0;
	p->cur.count = 0;
	p->cur.framing_len = 0;
	p->state = ST_CHUNK_SIZE;
}

/* The blank line after the headers: pick the body framing (RFC 9112 6.3). */
static enum oa_http_gave_up_reason head_complete(struct feed *f)
{
	struct oa_http_parser *p = f->p;
	struct oa_http_head *h = &p->cur.head;
	uint16_t bits = p->cur.bits;
	bool length = bits & BIT_LENGTH_SET, chunked = bits & BIT_CHUNKED;
	enum state body;
	if (p->role == OA_HTTP_RESPONSES) {
		if (h->status < 200 && h->status != 101) {
			p->state = ST_IDLE; /* interim (100 Continue): the final one follows */
			return 0;
		}
		h->method = (uint8_t)pop_pending(p);
		if (h->status == 101 || (h->method == OA_HTTP_CONNECT && h->status < 300))
			p->cur.bits |= BIT_TUNNEL;
		if ((p->cur.bits & BIT_TUNNEL) || h->method == OA_HTTP_HEAD || h->status == 204 ||
		    h->status == 304)
			body = ST_MESSAGE_DONE;
		else if (bits & BIT_TE_SET)
			body = chunked ? ST_CHUNK_SIZE : ST_BODY_UNTIL_CLOSE;
		else if (length)
			body = p->cur.remaining ? ST_BODY_LENGTH : ST_MESSAGE_DONE;
		else
			body = ST_BODY_UNTIL_CLOSE;
	} else if (bits & BIT_TE_SET) {
		/* Another final coding leaves a request's length unknowable. */
		if (!chunked)
			return OA_HTTP_MALFORMED;
		body = ST_CHUNK_SIZE;
	} else {
		body = length && p->cur.remaining ? ST_BODY_LENGTH : ST_MESSAGE_DONE;
	}
	if ((bits & BIT_LEAN) && p->role == OA_HTTP_REQUESTS)
		strip_lean_head(h);
	struct oa_http_event *ev = emit(f, OA_HTTP_MESSAGE_BEGIN);
	ev->inject_at = f->blank_at;
	ev->head_len = p->cur.framing_len;
	if (body == ST_CHUNK_SIZE)
		enter_chunk_size(p);
	else
		p->state = (uint8_t)body;
	return 0;
}

/* Path, query and fragment bytes of the request-target. */
static enum oa_http_gave_up_reason path_byte(struct oa_http_parser *p, uint8_t c)
{
	struct oa_http_head *h = &p->cur.head;
	if (c == ' ') {
		p->cur.count = 0;
		p->state = ST_REQUEST_VERSION;
	} else if (!is_visible(c)) {
		return OA_HTTP_NOT_HTTP;
	} else if (p->state == ST_FRAGMENT) {
		/* not sent by clients; skipped, never captured */
	} else if (c == '#') {
		p->state = ST_FRAGMENT;
	} else if (p->state == ST_PATH && c == '?') {
		h->flags |= OA_HTTP_HAS_QUERY;
		p->state = ST_QUERY;
	} else if (p->state == ST_PATH) {
		APPEND(path, OA_HTTP_PATH_TRUNCATED, c);
	} else {
		APPEND(query, OA_HTTP_QUERY_TRUNCATED, c);
	}
	return 0;
}

/* "HTTP/1." and a digit, shared by request and status lines. */
static bool version_byte(struct oa_http_parser *p, uint8_t c)
{
	static const char prefix[] = "HTTP/1.";
	if (p->cur.count < sizeof prefix - 1) {
		if (c != (uint8_t)prefix[p->cur.count])
			return false;
	} else if (is_digit(c)) {
		p->cur.head.version_minor = c - '0';
	} else {
		return false;
	}
	p->cur.count++;
	return true;
}

#define VERSION_LEN 8 /* "HTTP/1.x" */

static enum oa_http_gave_up_reason start_line_end(struct oa_http_parser *p, uint8_t c)
{
	if (c == '\r')
		p->state = ST_START_LINE_LF;
	else if (c == '\n')
		p->state = ST_HEADER_LINE_START;
	else
		return OA_HTTP_NOT_HTTP;
	return 0;
}

static enum oa_http_gave_up_reason request_line_byte(struct oa_http_parser *p, uint8_t c)
{
	struct oa_http_head *h = &p->cur.head;
	switch (p->state) {
	case ST_METHOD:
		if (is_token(c)) {
			APPEND(method_original, OA_HTTP_METHOD_TRUNCATED, c);
			return 0;
		}
		if (c != ' ')
			return OA_HTTP_NOT_HTTP;
		select_method(h);
		p->state = ST_TARGET_START;
		return 0;
	case ST_TARGET_START:
		if (c == '/' || c == '*') {
			p->state = ST_PATH;
			return path_byte(p, c);
		}
		if (h->method == OA_HTTP_CONNECT && is_visible(c)) {
			/* authority-form: host:port */
			p->cur.bits |= BIT_HOST_SET;
			p->state = ST_AUTHORITY;
			APPEND(host, OA_HTTP_HOST_TRUNCATED, c);
			return 0;
		}
		if (!is_alpha(c))
			return OA_HTTP_NOT_HTTP;
		p->state = ST_SCHEME;
		APPEND(scheme, 0, lower(c));
		return 0;
	case ST_SCHEME:
		if (c == ':') {
			p->state = ST_SCHEME_SLASH1;
			return 0;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
			return OA_HTTP_NOT_HTTP;
		APPEND(scheme, 0, lower(c));
		return 0;
	case ST_SCHEME_SLASH1:
		if (c != '/')
			return OA_HTTP_NOT_HTTP;
		p->state = ST_SCHEME_SLASH2;
		return 0;
	case ST_SCHEME_SLASH2:
		if (c != '/')
			return OA_HTTP_NOT_HTTP;
		/* absolute-form (to a proxy): the target names the host, not Host */
		h->flags |= OA_HTTP_ABSOLUTE_FORM;
		p->cur.bits |= BIT_HOST_SET;
		p->state = ST_AUTHORITY;
		return 0;
	case ST_AUTHORITY:
		if (c == '@') {
			/* what came before was userinfo: never keep it */
			h->host_len = 0;
			h->host[0] = '\0';
			h->flags &= (uint16_t)~OA_HTTP_HOST_TRUNCATED;
			return 0;
		}
		if (c == '/' || c == '?' || c == '#' || c == ' ') {
			if (c != '/')
				default_path(h);
			p->state = ST_PATH;
			return path_byte(p, c);
		}
		if (!is_visible(c))
			return OA_HTTP_NOT_HTTP;
		APPEND(host, OA_HTTP_HOST_TRUNCATED, c);
		return 0;
	case ST_PATH:
	case ST_QUERY:
	case ST_FRAGMENT:
		return path_byte(p, c);
	default: /* ST_REQUEST_VERSION */
		if (p->cur.count == VERSION_LEN)
			return start_line_end(p, c);
		return version_byte(p, c) ? 0 : OA_HTTP_NOT_HTTP;
	}
}

static enum oa_http_gave_up_reason status_line_byte(struct oa_http_parser *p, uint8_t c)
{
	struct oa_http_head *h = &p->cur.head;
	switch (p->state) {
	case ST_RESPONSE_VERSION:
		if (p->cur.count == VERSION_LEN) {
			if (c != ' ')
				return OA_HTTP_NOT_HTTP;
			p->cur.count = 0;
			p->state = ST_STATUS;
			return 0;
		}
		return version_byte(p, c) ? 0 : OA_HTTP_NOT_HTTP;
	case ST_STATUS:
		if (p->cur.count < 3) {
			if (!is_digit(c))
				return OA_HTTP_NOT_HTTP;
			h->status = (uint16_t)(h->status * 10 + (c - '0'));
			p->cur.count++;
			return 0;
		}
		if (h->status < 100)
			return OA_HTTP_NOT_HTTP;
		if (c == ' ') {
			p->state = ST_REASON;
			return 0;
		}
		return start_line_end(p, c);
	default: /* ST_REASON: any text up to the line end */
		if (c == '\r' || c == '\n')
			return start_line_end(p, c);
		return 0;
	}
}

static enum oa_http_gave_up_reason header_byte(struct feed *f, uint8_t c)
{
	struct oa_http_parser *p = f->p;
	switch (p->state) {
	case ST_START_LINE_LF:
		if (c != '\n')
			return OA_HTTP_NOT_HTTP;
		p->state = ST_HEADER_LINE_START;
		return 0;
	case ST_HEADER_LINE_START:
		if (c == '\r' || c == '\n') {
			f->blank_at = f->pos - 1;
			if (c == '\n')
				return head_complete(f);
			p->state = ST_HEAD_END_LF;
			return 0;
		}
		if (is_blank(c)) {
			/* obs-fold: continues the previous value; ignored */
			p->cur.field = FIELD_NONE;
			p->state = ST_HEADER_VALUE;
			return 0;
		}
		if (!is_token(c))
			return OA_HTTP_MALFORMED;
		start_header_line(p, c);
		return 0;
	case ST_HEADER_NAME:
		if (is_token(c)) {
			header_name_byte(p, c);
			return 0;
		}
		if (c != ':')
			return OA_HTTP_MALFORMED;
		header_name_end(p);
		p->state = ST_HEADER_VALUE_OWS;
		return 0;
	case ST_HEADER_VALUE_OWS:
		if (is_blank(c))
			return 0;
		p->state = ST_HEADER_VALUE;
		/* fall through */
	case ST_HEADER_VALUE:
		if (c == '\r') {
			p->state = ST_HEADER_VALUE_LF;
			return 0;
		}
		if (c == '\n') {
			return header_line_end(p) ? 0 : OA_HTTP_MALFORMED;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return OA_HTTP_MALFORMED;
		return header_value_byte(p, c) ? 0 : OA_HTTP_MALFORMED;
	case ST_HEADER_VALUE_LF:
		if (c != '\n')
			return OA_HTTP_MALFORMED;
		return header_line_end(p) ? 0 : OA_HTTP_MALFORMED;
	default: /* ST_HEAD_END_LF */
		return c == '\n' ? head_complete(f) : OA_HTTP_MALFORMED;
	}
}

static void chunk_size_complete(struct oa_http_parser *p)
{
	p->cur.framing_len = 0;
	p->cur.remaining = p->cur.number;
	p->state = p->cur.number ? ST_CHUNK_DATA : ST_TRAILER_LINE_START;
}

/* Chunk-size lines, the line end after chunk data, and trailer lines. */
static enum oa_http_gave_up_reason chunk_byte(struct oa_http_parser *p, uint8_t c)
{
	switch (p->state) {
	case ST_CHUNK_SIZE: {
		int digit = oa_hex_digit((char)c);
		if (digit >= 0) {
			if (p->cur.number > UINT64_MAX >> 4)
				return OA_HTTP_MALFORMED;
			p->cur.number = p->cur.number << 4 | (uint64_t)digit;
			p->cur.count = 1;
			return 0;
		}
		if (!p->cur.count)
			return OA_HTTP_MALFORMED;
		if (c == ';' || is_blank(c))
			p->state = ST_CHUNK_EXT;
		else if (c == '\r')
			p->state = ST_CHUNK_SIZE_LF;
		else if (c == '\n')
			chunk_size_complete(p);
		else
			return OA_HTTP_MALFORMED;
		return 0;
	}
	case ST_CHUNK_EXT: /* extensions are skipped */
		if (c == '\r')
			p->state = ST_CHUNK_SIZE_LF;
		else if (c == '\n')
			chunk_size_complete(p);
		return 0;
	case ST_CHUNK_SIZE_LF:
		if (c != '\n')
			return OA_HTTP_MALFORMED;
		chunk_size_complete(p);
		return 0;
	case ST_CHUNK_DATA_CR:
		if (c == '\r')
			p->state = ST_CHUNK_DATA_LF;
		else if (c == '\n')
			enter_chunk_size(p);
		else
			return OA_HTTP_MALFORMED;
		return 0;
	case ST_CHUNK_DATA_LF:
		if (c != '\n')
			return OA_HTTP_MALFORMED;
		enter_chunk_size(p);
		return 0;
	case ST_TRAILER_LINE_START:
		if (c == '\r')
			p->state = ST_TRAILER_END_LF;
		else if (c == '\n')
			p->state = ST_MESSAGE_DONE;
		else
			p->state = ST_TRAILER_LINE;
		return 0;
	case ST_TRAILER_LINE: /* trailers are skipped */
		if (c == '\n')
			p->state = ST_TRAILER_LINE_START;
		return 0;
	default: /* ST_TRAILER_END_LF */
		if (c != '\n')
			return OA_HTTP_MALFORMED;
		p->state = ST_MESSAGE_DONE;
		return 0;
	}
}

static enum oa_http_gave_up_reason idle_byte(struct feed *f, uint8_t c)
{
	struct oa_http_parser *p = f->p;
	if (c == '\r' || c == '\n')
		return 0; /* stray blank lines between messages are tolerated */
	f->message_at = f->pos - 1;
	if (p->role == OA_HTTP_RESPONSES) {
		if (c != 'H')
			return OA_HTTP_NOT_HTTP;
		begin_message(p, ST_RESPONSE_VERSION, f->lean);
		p->cur.framing_len = 1;
		return version_byte(p, c) ? 0 : OA_HTTP_NOT_HTTP;
	}
	if (!is_token(c))
		return OA_HTTP_NOT_HTTP;
	begin_message(p, ST_METHOD, f->lean);
	p->cur.framing_len = 1;
	return request_line_byte(p, c);
}

/* States that count toward OA_HTTP_MAX_HEAD. */
static bool is_framing_state(uint8_t state)
{
	return (state >= ST_METHOD && state <= ST_HEAD_END_LF) ||
	       (state >= ST_CHUNK_SIZE && state <= ST_CHUNK_SIZE_LF) ||
	       (state >= ST_TRAILER_LINE_START && state <= ST_TRAILER_END_LF);
}

static enum oa_http_gave_up_reason byte(struct feed *f, uint8_t c)
{
	struct oa_http_parser *p = f->p;
	if (p->state == ST_IDLE)
		return idle_byte(f, c);
	if (is_framing_state(p->state) && ++p->cur.framing_len > OA_HTTP_MAX_HEAD)
		return OA_HTTP_TOO_LARGE;
	if (p->state <= ST_REQUEST_VERSION)
		return request_line_byte(p, c);
	if (p->state <= ST_REASON)
		return status_line_byte(p, c);
	if (p->state <= ST_HEAD_END_LF)
		return header_byte(f, c);
	return chunk_byte(p, c);
}

/* Bulk-skips body bytes; returns false when the state reads bytes one by one. */
static bool skip_body(struct feed *f, size_t len)
{
	struct oa_http_parser *p = f->p;
	size_t avail = len - f->pos, take;
	switch (p->state) {
	case ST_BODY_UNTIL_CLOSE:
		take = avail;
		break;
	case ST_BODY_LENGTH:
	case ST_CHUNK_DATA:
		take = p->cur.remaining < avail ? (size_t)p->cur.remaining : avail;
		p->cur.remaining -= take;
		if (!p->cur.remaining)
			p->state = p->state == ST_BODY_LENGTH ? ST_MESSAGE_DONE : ST_CHUNK_DATA_CR;
		break;
	default:
		return false;
	}
	f->pos += take;
	p->cur.body_len += take;
	return true;
}

/* ---- whole lines
 *
 * A line complete in this feed is parsed in bulk: one scan, eight bytes at a
 * time, finds its end and checks it holds no control byte; header names are
 * matched by length, then compared; captured values take one copy. The bulk
 * parsers take only well-formed lines within the head limit and change
 * nothing otherwise: the byte-by-byte states above then parse the line, and
 * stay the reference for every error and its offset (and for lines split
 * across feeds). */

#define ONES  0x0101010101010101u
#define HIGHS 0x8080808080808080u

static bool is_ctl(uint8_t c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The first of 8 bytes at s that is a control other than tab or DEL, or
 * NULL. */
static const uint8_t *word_ctl(const uint8_t *s)
{
	uint64_t w, del;
	memcpy(&w, s, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w); /* the first byte least significant */
#endif
	/* Bytes below 0x20 and DELs; above the lowest one (the first in
	 * memory), borrows may flag others. */
	del = w ^ (0x7f * ONES);
	uint64_t m = (((w - 0x20 * ONES) & ~w) | ((del - ONES) & ~del)) & HIGHS;
	if (!m)
		return NULL;
	/* tabs are rare: past the first flagged byte, byte by byte */
	for (int i = __builtin_ctzll(m) / 8; i < 8; i++)
		if (is_ctl(s[i]))
			return s + i;
	return NULL;
}

#ifdef __SSE2__
/* The first control byte (other than tab) or DEL among the 16 at s, or NULL. */
static const uint8_t *block_ctl(const uint8_t *s)
{
	__m128i v = _mm_loadu_si128((const __m128i *)s);
	/* unsigned v <= 0x1f: max(v, 0x1f) == 0x1f */
	__m128i low = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
	__m128i tab = _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'));
	__m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
	unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(tab, low), del));
	return m ? s + __builtin_ctz(m) : NULL;
}
#endif

/* The first byte in [s, end) that is a control other than tab (CR and LF
 * included) or DEL; end when there is none. Sixteen bytes at a time with
 * SSE2, else eight, the last block overlapping the one before. */
static const uint8_t *find_ctl(const uint8_t *s, const uint8_t *end)
{
	const uint8_t *c;
#ifdef __SSE2__
	if (end - s >= 16) {
		for (; end - s > 16; s += 16)
			if ((c = block_ctl(s)) != NULL)
				return c;
		c = block_ctl(end - 16);
		return c ? c : end;
	}
#endif
	if (end - s < 8) {
		for (; s < end; s++)
			if (is_ctl(*s))
				return s;
		return end;
	}
	for (; end - s > 8; s += 8)
		if ((c = word_ctl(s)) != NULL)
			return c;
	c = word_ctl(end - 8);
	return c ? c : end;
}

/* A word of 8 bytes with letters lowercased (and some other bytes changed:
 * a match may be wrong, never a mismatch). */
static uint64_t folded_word(const uint8_t *s)
{
	uint64_t w;
	memcpy(&w, s, 8);
	return w | 0x2020202020202020u;
}

static uint64_t name_word(const char *name)
{
	uint64_t w;
	memcpy(&w, name, 8);
	return w;
}

/* An origin-form (or '*') request line, "GET /path?query HTTP/1.1", without
 * its line end at e. */
static bool request_line(struct oa_http_parser *p, const uint8_t *s, const uint8_t *e, bool lean)
{
	const uint8_t *sp = s;
	while (is_token(*sp))
		sp++;
	/* method, ' ', a target of at least one byte, ' ', "HTTP/1.x" */
	if (sp == s || *sp != ' ' || e - sp < 11 || (sp[1] != '/' && sp[1] != '*'))
		return false;
	const uint8_t *target = sp + 1, *version = e - 8, *target_end = version - 1;
	if (*target_end != ' ' || memcmp(version, "HTTP/1.", 7) != 0 || !is_digit(version[7]))
		return false;
	for (const uint8_t *c = target; c < target_end; c++)
		if (!is_visible(*c))
			return false;
	begin_message(p, ST_HEADER_LINE_START, lean);
	struct oa_http_head *h = &p->cur.head;
	APPEND_BYTES(method_original, OA_HTTP_METHOD_TRUNCATED, s, (size_t)(sp - s));
	select_method(h);
	h->version_minor = version[7] - '0';
	if (lean)
		return true;
	const uint8_t *fragment = memchr(target, '#', (size_t)(target_end - target));
	const uint8_t *path_end = fragment ? fragment : target_end;
	const uint8_t *query = memchr(target, '?', (size_t)(path_end - target));
	APPEND_BYTES(path, OA_HTTP_PATH_TRUNCATED, target,
		     (size_t)((query ? query : path_end) - target));
	if (query) {
		h->flags |= OA_HTTP_HAS_QUERY;
		APPEND_BYTES(query, OA_HTTP_QUERY_TRUNCATED, query + 1,
			     (size_t)(path_end - query - 1));
	}
	return true;
}

/* A status line, "HTTP/1.1 200 OK", without its line end at e. */
static bool status_line(struct oa_http_parser *p, const uint8_t *s, const uint8_t *e, bool lean)
{
	if (e - s < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) || s[8] != ' ' ||
	    s[9] < '1' || s[9] > '9' || !is_digit(s[10]) || !is_digit(s[11]) ||
	    (e > s + 12 && s[12] != ' '))
		return false;
	begin_message(p, ST_HEADER_LINE_START, lean);
	p->cur.head.version_minor = s[7] - '0';
	p->cur.head.status = (uint16_t)((s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0'));
	return true;
}

/* The field a header name of n bytes is, among those the role reads. */
static enum field lookup_field(const struct oa_http_parser *p, const uint8_t *name, size_t n)
{
	enum field k;
	switch (n) {
	case 4:
		k = FIELD_HOST;
		break;
	case 10:
		k = (name[0] | 0x20) == 'u' ? FIELD_USER_AGENT : FIELD_TRACESTATE;
		break;
	case 11:
		k = FIELD_TRACEPARENT;
		break;
	case 14:
		k = FIELD_CONTENT_LENGTH;
		break;
	case 17:
		k = FIELD_TRANSFER_ENCODING;
		break;
	default:
		return FIELD_NONE;
	}
	unsigned mask = p->role == OA_HTTP_RESPONSES ? RESPONSE_FIELDS
			: (p->cur.bits & BIT_LEAN)   ? LEAN_REQUEST_FIELDS
						     : REQUEST_FIELDS;
	if (!(mask & 1u << k))
		return FIELD_NONE;
	/* name holds tokens only: | 0x20 lowercases letters and keeps '-',
	 * and maps no other token byte to a lowercase letter or '-' */
	const char *want = field_names[k];
	if (n == 4) {
		uint32_t w, x;
		memcpy(&w, name, 4);
		memcpy(&x, want, 4);
		return (w | 0x20202020u) == x ? k : FIELD_NONE;
	}
	/* n >= 10: words at 0, 8 (n > 16) and n - 8 */
	if (folded_word(name) != name_word(want) ||
	    folded_word(name + n - 8) != name_word(want + n - 8) ||
	    (n > 16 && folded_word(name + 8) != name_word(want + 8)))
		return FIELD_NONE;
	return k;
}

/* Value bytes [v, e), none a control, for the current field: what
 * header_value_byte does one at a time. False when the parser gave up. */
static bool value_bytes(struct feed *f, const uint8_t *data, const uint8_t *v, const uint8_t *e)
{
	struct oa_http_parser *p = f->p;
	struct oa_http_head *h = &p->cur.head;
	size_t n = (size_t)(e - v);
	switch (p->cur.field) {
	case FIELD_HOST:
		APPEND_BYTES(host, OA_HTTP_HOST_TRUNCATED, v, n);
		return true;
	case FIELD_USER_AGENT:
		APPEND_BYTES(user_agent, OA_HTTP_USER_AGENT_TRUNCATED, v, n);
		return true;
	case FIELD_TRACEPARENT:
		append_bytes(p->cur.traceparent, &p->cur.traceparent_len, sizeof p->cur.traceparent,
			     &p->cur.bits, BIT_TRACEPARENT_CUT, v, n);
		return true;
	case FIELD_TRACESTATE:
		APPEND_BYTES(tracestate, OA_HTTP_TRACESTATE_TRUNCATED, v, n);
		return true;
	case FIELD_CONTENT_LENGTH:
	case FIELD_TRANSFER_ENCODING:
		for (const uint8_t *c = v; c < e; c++) {
			if (!header_value_byte(p, *c)) {
				f->pos = (size_t)(c - data) + 1;
				give_up(f, OA_HTTP_MALFORMED);
				return false;
			}
		}
		return true;
	default:
		return true;
	}
}

/* A header line "name: value" at s, without its line end at e; nl is its
 * LF. True when it was taken (the parser may have given up on it). */
static bool header_line(struct feed *f, const uint8_t *data, const uint8_t *s, const uint8_t *e,
			const uint8_t *nl)
{
	struct oa_http_parser *p = f->p;
	const uint8_t *colon = s;
	while (is_token(*colon))
		colon++;
	if (colon == s || *colon != ':')
		return false;
	uint32_t line_at = p->cur.framing_len;
	p->cur.framing_len += (uint32_t)(nl - s + 1);
	enum field field = lookup_field(p, s, (size_t)(colon - s));
	if (field == FIELD_NONE) {
		/* most lines: a value no one reads, already checked for controls */
		p->cur.field = FIELD_NONE;
		f->pos = (size_t)(nl - data) + 1;
		return true;
	}
	const uint8_t *v = colon + 1;
	while (v < e && is_blank(*v))
		v++;
	if (field == FIELD_TRACEPARENT && v < e && !(p->cur.head.flags & OA_HTTP_HAS_TRACEPARENT)) {
		p->cur.tp_state = OA_HTTP_TP_OPEN;
		p->cur.tp_value_at = (uint16_t)(line_at + (uint32_t)(v - s));
	}
	use_field(p, field);
	if (!value_bytes(f, data, v, e))
		return true;
	f->pos = (size_t)(nl - data) + 1;
	if (!header_line_end(p))
		give_up(f, OA_HTTP_MALFORMED);
	return true;
}

/* Whether a lean head passes over the header line [s, lf] (lf its LF)
 * unread: a line that starts with a token byte and whose name does not
 * begin like one of the fields the head reads (Content-Length,
 * Transfer-Encoding; for requests traceparent and tracestate too), case
 * aside. Such a line is only split at its LF: whether its name is a token
 * followed by ':' and its value free of control bytes is not checked, which
 * is what a lean head accepts that a full one gives up on. Framing stays
 * the full parse's: line ends are found at LF as the byte-by-byte states
 * find them, a line that could name a field the head reads goes the exact
 * way (so "Content-Length :" still gives up), and blank lines, obs-folds and
 * lines starting with anything but a token byte still do. */
static bool lean_skips(const struct oa_http_parser *p, const uint8_t *s, const uint8_t *lf)
{
	if (!is_token(*s))
		return false;
	if (lf - s < 10) /* "tracestate" is the shortest */
		return true;
	uint64_t w = folded_word(s);
	if (w == name_word("content-"))
		return lf - s < 14 || folded_word(s + 6) != name_word("t-length");
	if (w == name_word("transfer"))
		return false;
	return p->role == OA_HTTP_RESPONSES ||
	       (w != name_word("tracepar") && w != name_word("tracesta"));
}

/* Takes the lines that are complete in data while the bulk parsers accept
 * them; false when the next one is left to byte-by-byte parsing. */
static bool whole_lines(struct feed *f, const uint8_t *data, size_t len)
{
	struct oa_http_parser *p = f->p;
	bool taken = false;
	for (;;) {
		uint32_t used;
		if (p->state == ST_IDLE) {
			/* stray blank lines between messages are tolerated */
			while (f->pos < len && (data[f->pos] == '\r' || data[f->pos] == '\n'))
				f->pos++;
			if (f->pos == len)
				return true;
			f->message_at = f->pos;
			used = 0;
		} else if (p->state == ST_HEADER_LINE_START) {
			used = p->cur.framing_len;
		} else {
			return taken;
		}
		/* only lines that keep the head within its limit */
		size_t avail = len - f->pos, room = OA_HTTP_MAX_HEAD - used;
		const uint8_t *s = data + f->pos, *end = s + (avail < room ? avail : room);
		if ((p->cur.bits & BIT_LEAN) && p->state == ST_HEADER_LINE_START) {
			const uint8_t *lf;
			while ((lf = memchr(s, '\n', (size_t)(end - s))) != NULL &&
			       lean_skips(p, s, lf))
				s = lf + 1;
			p->cur.framing_len += (uint32_t)(s - (data + f->pos));
			taken |= s != data + f->pos;
			f->pos = (size_t)(s - data);
			if (!lf)
				return taken;
			end = lf + 1; /* the next line is read the exact way */
		}
		const uint8_t *e = find_ctl(s, end), *nl = e;
		if (e < end && *e == '\r')
			nl = e + 1;
		if (nl == end || *nl != '\n')
			return taken;
		if (p->state == ST_HEADER_LINE_START) {
			if (e == s) {
				/* the blank line ending the head */
				f->blank_at = f->pos;
				f->pos = (size_t)(nl - data) + 1;
				p->cur.framing_len += (uint32_t)(nl - s + 1);
				enum oa_http_gave_up_reason reason = head_complete(f);
				if (reason)
					give_up(f, reason);
				return true;
			}
			if (!header_line(f, data, s, e, nl))
				return taken;
		} else {
			if (!(p->role == OA_HTTP_REQUESTS ? request_line(p, s, e, f->lean)
							  : status_line(p, s, e, f->lean)))
				return taken;
			p->cur.framing_len = (uint32_t)(nl - s + 1);
			f->pos = (size_t)(nl - data) + 1;
		}
		taken = true;
	}
}

/* The part of a header name in data when its line is not complete there,
 * after its first byte: what header_name_byte does one byte at a time. */
static bool name_part(struct feed *f, const uint8_t *data, size_t len)
{
	struct oa_http_parser *p = f->p;
	if (p->state != ST_HEADER_NAME)
		return false;
	size_t avail = len - f->pos, room = OA_HTTP_MAX_HEAD - p->cur.framing_len;
	const uint8_t *s = data + f->pos, *end = s + (avail < room ? avail : room), *t = s;
	while (t < end && is_token(*t))
		t++;
	size_t n = (size_t)(t - s);
	if (!n)
		return false;
	for (unsigned k = 0; k < FIELD_NONE; k++) {
		if (!(p->cur.name_match & 1u << k))
			continue;
		bool same = p->cur.name_len + n <= field_lengths[k];
		/* tokens: | 0x20 lowercases letters and keeps '-' */
		for (size_t i = 0; same && i < n; i++)
			same = (s[i] | 0x20) == (uint8_t)field_names[k][p->cur.name_len + i];
		if (!same)
			p->cur.name_match &= (uint8_t) ~(1u << k);
	}
	p->cur.name_len =
	    (uint8_t)(p->cur.name_len + n < UINT8_MAX ? p->cur.name_len + n : UINT8_MAX);
	p->cur.framing_len += (uint32_t)n;
	f->pos += n;
	return true;
}

/* The part of a header value in data when its line is not complete there
 * (or not taken whole): its bytes up to a control, in bulk, within the head
 * limit. False when there are none. */
static bool value_part(struct feed *f, const uint8_t *data, size_t len)
{
	struct oa_http_parser *p = f->p;
	if (p->state != ST_HEADER_VALUE)
		return false;
	size_t avail = len - f->pos, room = OA_HTTP_MAX_HEAD - p->cur.framing_len;
	const uint8_t *v = data + f->pos, *e = find_ctl(v, v + (avail < room ? avail : room));
	if (e == v)
		return false;
	p->cur.framing_len += (uint32_t)(e - v);
	if (value_bytes(f, data, v, e))
		f->pos = (size_t)(e - data);
	return true;
}

static bool is_head_state(uint8_t state)
{
	return state >= ST_METHOD && state <= ST_HEAD_END_LF;
}

static void parse(struct feed *f, const uint8_t *data, size_t len, size_t max_events)
{
	struct oa_http_parser *p = f->p;
	/* the next message would overwrite the head of a MESSAGE_BEGIN written */
	while (f->n < max_events && p->state != ST_DEAD && !(f->n && p->state == ST_IDLE)) {
		if (p->state == ST_MESSAGE_DONE) {
			emit(f, OA_HTTP_MESSAGE_END)->body_len = p->cur.body_len;
			p->state = (p->cur.bits & BIT_TUNNEL) ? ST_TUNNEL : ST_IDLE;
			continue;
		}
		if (p->state == ST_TUNNEL) {
			give_up(f, OA_HTTP_UPGRADED);
			continue;
		}
		if (f->pos == len)
			break;
		if (skip_body(f, len))
			continue;
		if (!data) {
			give_up(f, OA_HTTP_MALFORMED);
			continue;
		}
		if (whole_lines(f, data, len) || name_part(f, data, len) ||
		    value_part(f, data, len))
			continue;
		enum oa_http_gave_up_reason reason = byte(f, data[f->pos++]);
		if (reason)
			give_up(f, reason);
	}
}

size_t oa_http_feed(struct oa_http_parser *p, const uint8_t *data, size_t len,
		    struct oa_http_event *events, size_t max_events)
{
	struct feed f = {.p = p,
			 .events = events,
			 .blank_at = SIZE_MAX,
			 .message_at = SIZE_MAX,
			 .lean = p->lean};
	parse(&f, data, len, max_events);
	if ((p->cur.bits & BIT_LEAN) && p->role == OA_HTTP_REQUESTS && is_head_state(p->state)) {
		/* a lean head ends in the feed it began in: this one does not,
		 * so it is parsed again from its first byte, in full */
		p->state = ST_IDLE;
		f.pos = f.message_at;
		f.lean = false;
		parse(&f, data, len, max_events);
	}
	return f.n;
}

bool oa_http_parse_head(const uint8_t *data, size_t len, struct oa_http_head *head)
{
	struct oa_http_parser p;
	struct oa_http_event ev;
	oa_http_parser_init(&p, OA_HTTP_REQUESTS);
	if (oa_http_feed(&p, data, len, &ev, 1) != 1 || ev.kind != OA_HTTP_MESSAGE_BEGIN ||
	    ev.offset != len)
		return false;
	oa_http_head_copy(head, ev.head);
	return true;
}

const struct oa_http_head *oa_http_head_ending(const struct oa_http_parser *p)
{
	return p->state == ST_HEAD_END_LF ? &p->cur.head : NULL;
}

struct oa_http_tp_field oa_http_traceparent_field(const struct oa_http_parser *p)
{
	struct oa_http_tp_field f = {.state = p->cur.tp_state, .value_at = p->cur.tp_value_at};
	if (f.state == OA_HTTP_TP_V00)
		f.value = p->cur.head.parent;
	return f;
}

uint32_t oa_http_head_progress(const struct oa_http_parser *p)
{
	return p->state >= ST_METHOD && p->state <= ST_HEAD_END_LF ? p->cur.framing_len : 0;
}

bool oa_http_close(struct oa_http_parser *p, struct oa_http_event *event)
{
	struct feed f = {.p = p, .events = event, .blank_at = SIZE_MAX};
	switch (p->state) {
	case ST_DEAD:
		return false;
	case ST_IDLE:
		break;
	case ST_BODY_UNTIL_CLOSE:
	case ST_MESSAGE_DONE:
		emit(&f, OA_HTTP_MESSAGE_END)->body_len = p->cur.body_len;
		break;
	case ST_TUNNEL:
		give_up(&f, OA_HTTP_UPGRADED);
		break;
	default:
		give_up(&f, OA_HTTP_INCOMPLETE);
		break;
	}
	p->state = ST_DEAD;
	return f.n;
}

/* snprintf-like output: counts everything, stores what fits. */
struct writer {
	char *out;
	size_t cap, len;
};

static void put(struct writer *w, const char *s, size_t n)
{
	/* Room is left for the NUL; len counts on past cap (the full length).
	 * Written as a difference: GCC's overflow check otherwise assumes len
	 * may wrap to -1. */
	for (size_t i = 0; i < n; i++, w->len++)
		if (w->len < w->cap && w->cap - w->len > 1)
			w->out[w->len] = s[i];
}

static void put_str(struct writer *w, const char *s)
{
	put(w, s, strlen(s));
}

static size_t finish(struct writer *w)
{
	if (w->cap)
		w->out[w->len < w->cap ? w->len : w->cap - 1] = '\0';
	return w->len;
}

/* Whole names, and parts of names, of parameters that carry credentials
 * (lower case; names are compared without regard to case). */
static const char *const sensitive_names[] = {"sig", "key", "pwd", "pass", "auth", "code", "sid"};
static const char *const sensitive_parts[] = {
    "token",   "secret",  "passw",     "signature",  "credential", "apikey",
    "api_key", "api-key", "accesskey", "access_key", "session",	   "authorization",
};

static bool contains_ci(const char *s, size_t len, const char *part)
{
	size_t n = strlen(part);
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(s + i, part, n) == 0)
			return true;
	return false;
}

bool oa_http_sensitive_name(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof sensitive_names / sizeof sensitive_names[0]; i++)
		if (strlen(sensitive_names[i]) == len &&
		    strncasecmp(name, sensitive_names[i], len) == 0)
			return true;
	for (size_t i = 0; i < sizeof sensitive_parts / sizeof sensitive_parts[0]; i++)
		if (contains_ci(name, len, sensitive_parts[i]))
			return true;
	return false;
}

static void put_redacted_query(struct writer *w, const char *q, size_t len,
			       enum oa_redact_query mode)
{
	for (size_t start = 0; start <= len;) {
		const char *param = q + start;
		const char *amp = memchr(param, '&', len - start);
		size_t param_len = amp ? (size_t)(amp - param) : len - start;
		const char *eq = memchr(param, '=', param_len);
		size_t name_len = eq ? (size_t)(eq - param) : param_len;
		bool redact =
		    eq && name_len + 1 < param_len && mode != OA_REDACT_QUERY_NONE &&
		    (mode == OA_REDACT_QUERY_ALL || oa_http_sensitive_name(param, name_len));
		if (redact) {
			put(w, param, name_len + 1);
			put_str(w, "REDACTED");
		} else {
			put(w, param, param_len);
		}
		if (!amp)
			break;
		put(w, "&", 1);
		start += param_len + 1;
	}
}

size_t oa_http_redact_query(const char *q, size_t len, enum oa_redact_query mode, char *out,
			    size_t cap)
{
	struct writer w = {out, cap, 0};
	put_redacted_query(&w, q, len, mode);
	return finish(&w);
}

static uint16_t default_port(const char *scheme)
{
	if (strcmp(scheme, "http") == 0)
		return 80;
	if (strcmp(scheme, "https") == 0)
		return 443;
	return 0;
}

size_t oa_http_url_full(const struct oa_http_url *url, char *out, size_t cap)
{
	struct writer w = {out, cap, 0};
	const char *scheme = url->scheme ? url->scheme : "http";
	const char *host = url->host ? url->host : "";
	const char *at = strrchr(host, '@');
	if (at)
		host = at + 1;
	const char *colon = strchr(host, ':');
	bool bare_ipv6 = colon && strchr(colon + 1, ':') && host[0] != '[';
	bool has_port = host[0] == '[' ? strstr(host, "]:") != NULL : colon && !bare_ipv6;

	put_str(&w, scheme);
	put_str(&w, "://");
	if (bare_ipv6)
		put(&w, "[", 1);
	put_str(&w, host);
	if (bare_ipv6)
		put(&w, "]", 1);
	if (url->port && !has_port && url->port != default_port(scheme)) {
		char digits[1 + OA_U32_DIGITS] = ":";
		put(&w, digits, 1 + oa_u32_decimal(url->port, digits + 1));
	}
	if (!url->path || url->path[0] != '/')
		put(&w, "/", 1);
	if (url->path)
		put_str(&w, url->path);
	if (url->query) {
		put(&w, "?", 1);
		put_redacted_query(&w, url->query, strlen(url->query), url->redact);
	}
	return finish(&w);
}
