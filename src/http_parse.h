/* Incremental, allocation-free HTTP/1.x parser for one direction of a stream
 * connection (pure: no I/O, no globals). A socket hook keeps one parser per
 * direction of each fd, feeds it the bytes it sees and turns the events into
 * spans. Anything that is not HTTP/1.x makes the parser give up for good, after
 * which feeding it costs nothing. */
#ifndef OTLPAUTO_HTTP_PARSE_H
#define OTLPAUTO_HTTP_PARSE_H

#include "config.h"
#include "traceparent.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest head (start line and header lines) or trailer section accepted;
 * more gives up with OA_HTTP_TOO_LARGE. */
#define OA_HTTP_MAX_HEAD 16384
/* Requests whose responses can be outstanding at once (pipelining depth). */
#define OA_HTTP_PENDING_MAX 8

/* Capacities of the captured strings, NUL included; longer values are cut
 * and flagged with the matching OA_HTTP_*_TRUNCATED. */
#define OA_HTTP_METHOD_CAP     16
#define OA_HTTP_SCHEME_CAP     8
#define OA_HTTP_PATH_CAP       96
#define OA_HTTP_QUERY_CAP      64
#define OA_HTTP_HOST_CAP       64
#define OA_HTTP_USER_AGENT_CAP 64
#define OA_HTTP_TRACESTATE_CAP 48

enum oa_http_role {
	OA_HTTP_REQUESTS,  /* client-to-server bytes */
	OA_HTTP_RESPONSES, /* server-to-client bytes */
};

enum oa_http_method {
	OA_HTTP_GET,
	OA_HTTP_HEAD,
	OA_HTTP_POST,
	OA_HTTP_PUT,
	OA_HTTP_DELETE,
	OA_HTTP_PATCH,
	OA_HTTP_OPTIONS,
	OA_HTTP_CONNECT,
	OA_HTTP_TRACE,
	OA_HTTP_OTHER, /* any other token; the original is in method_original */
};

enum oa_http_event_kind {
	OA_HTTP_MESSAGE_BEGIN = 1, /* head complete */
	OA_HTTP_MESSAGE_END,	   /* body complete */
	OA_HTTP_GAVE_UP,	   /* last event: the parser ignores all further bytes */
};

enum oa_http_gave_up_reason {
	OA_HTTP_NOT_HTTP = 1, /* the start line is not HTTP/1.x (TLS, HTTP/2, binary, ...) */
	OA_HTTP_MALFORMED,    /* bad header or body framing */
	OA_HTTP_TOO_LARGE,    /* head, chunk line or trailers over OA_HTTP_MAX_HEAD */
	OA_HTTP_UPGRADED,     /* after a 101 or a 2xx to CONNECT the bytes are a tunnel */
	OA_HTTP_INCOMPLETE,   /* oa_http_close in the middle of a message */
};

enum oa_http_head_flag {
	OA_HTTP_HAS_QUERY = 1 << 0,	    /* the target had a '?' (query may be empty) */
	OA_HTTP_ABSOLUTE_FORM = 1 << 1,	    /* proxy form: scheme and host came from the target */
	OA_HTTP_HAS_TRACEPARENT = 1 << 2,   /* a traceparent header was present */
	OA_HTTP_TRACEPARENT_VALID = 1 << 3, /* exactly one, valid: parent holds it */
	OA_HTTP_METHOD_TRUNCATED = 1 << 4,
	OA_HTTP_PATH_TRUNCATED = 1 << 5,
	OA_HTTP_QUERY_TRUNCATED = 1 << 6,
	OA_HTTP_HOST_TRUNCATED = 1 << 7,
	OA_HTTP_USER_AGENT_TRUNCATED = 1 << 8,
	OA_HTTP_TRACESTATE_TRUNCATED = 1 << 9, /* trailing list members were dropped */
	/* A request head parsed lean (oa_http_set_lean): scheme, path, query,
	 * host and user_agent are empty, and their flags clear, whatever it said. */
	OA_HTTP_LEAN = 1 << 10,
};

/* What a message head says. Strings are NUL-terminated, NUL-free, and may hold
 * any byte >= 0x80 (not necessarily UTF-8). */
struct oa_http_head {
	uint16_t flags;	       /* enum oa_http_head_flag */
	uint16_t status;       /* responses: 101..999 (interim 1xx are skipped) */
	uint8_t method;	       /* enum oa_http_method; responses: of the request answered */
	uint8_t version_minor; /* HTTP/1.<version_minor> */
	uint8_t method_original_len, scheme_len, path_len, query_len, host_len, user_agent_len,
	    tracestate_len;
	/* The rest is filled for requests only; what a lean head has comes
	 * first (OA_HTTP_LEAN_HEAD_SIZE bytes). */
	struct oa_span_context parent;		  /* when OA_HTTP_TRACEPARENT_VALID */
	char tracestate[OA_HTTP_TRACESTATE_CAP];  /* all tracestate headers joined by ',' */
	char method_original[OA_HTTP_METHOD_CAP]; /* as sent, for http.request.method_original */
	char scheme[OA_HTTP_SCHEME_CAP];	  /* lowercase, absolute-form targets only */
	char path[OA_HTTP_PATH_CAP];		  /* "/" for an absolute-form target without one */
	char query[OA_HTTP_QUERY_CAP];		  /* raw, without '?': redact before export */
	char host[OA_HTTP_HOST_CAP]; /* target authority (no userinfo) or Host header */
	char user_agent[OA_HTTP_USER_AGENT_CAP];
};
#define OA_HTTP_LEAN_HEAD_SIZE offsetof(struct oa_http_head, scheme)

/* Copies a head as an assignment does, faster: GCC expands a fixed-size
 * copy of more than 256 bytes as `rep movsq`, several times slower at this
 * size than the vector moves it uses for two halves (bench/http_parse.c). */
static inline void oa_http_head_copy(struct oa_http_head *dst, const struct oa_http_head *src)
{
	const size_t half = sizeof *dst / 2;
	__builtin_memcpy(dst, src, half);
	__builtin_memcpy((char *)dst + half, (const char *)src + half, sizeof *dst - half);
}

/* Copies what a lean head holds (OA_HTTP_LEAN); the rest of dst is left as
 * it was, so only a reader of a lean head's fields may use it. */
static inline void oa_http_lean_head_copy(struct oa_http_head *dst, const struct oa_http_head *src)
{
	__builtin_memcpy(dst, src, OA_HTTP_LEAN_HEAD_SIZE);
}

struct oa_http_event {
	enum oa_http_event_kind kind;
	enum oa_http_gave_up_reason reason; /* GAVE_UP only */
	/* Bytes of this feed's data consumed when the event happened; for
	 * MESSAGE_BEGIN that is just past the blank line ending the head. */
	size_t offset;
	/* MESSAGE_BEGIN: offset in this feed's data of the blank line ending the
	 * head, where a header line can be inserted; SIZE_MAX when that line
	 * started in an earlier feed. */
	size_t inject_at;
	uint32_t head_len; /* MESSAGE_BEGIN: bytes of the head, across feeds */
	uint16_t status;   /* BEGIN and END of a response: its head's status */
	uint8_t method;	   /* BEGIN and END of a response: the request's method */
	uint64_t body_len; /* MESSAGE_END: body bytes without chunk framing */
	/* MESSAGE_BEGIN: the head, inside the parser (no copy per event): valid
	 * until the next call on the parser, which is why a feed that wrote an
	 * event returns before the next message begins. NULL for the other
	 * events. */
	const struct oa_http_head *head;
};

/* Fixed-size state meant to be embedded in a per-fd table; every field is
 * private. sizeof is 512 bytes on LP64 (checked in http_parse.c). */
struct oa_http_parser {
	uint8_t role, state, lean;
	uint8_t pending_first, pending_count, pending[OA_HTTP_PENDING_MAX];
	struct {
		uint8_t field, name_match, name_len, count, te_pos, traceparent_len;
		uint16_t bits;
		uint32_t framing_len;
		/* the first traceparent line: enum oa_http_tp_state, value offset */
		uint8_t tp_state;
		uint16_t tp_value_at;
		uint64_t number, remaining, body_len;
		/* 55 chars, then a later version's '-' and the NUL */
		char traceparent[OA_TRACEPARENT_LEN + 2];
		struct oa_http_head head;
	} cur;
};

void oa_http_parser_init(struct oa_http_parser *p, enum oa_http_role role);

/* Parses data, writing up to max_events events (max_events >= 1). Returns the
 * number written. It stops early when events is full, and before a message
 * begins once it wrote an event (oa_http_feed_again says when): then the
 * caller feeds data + events[n - 1].offset again (possibly zero bytes, since
 * an event such as MESSAGE_END can be due with nothing left to read). A
 * message's MESSAGE_BEGIN and MESSAGE_END may come from one feed. After GAVE_UP it
 * returns 0 at once. data may be NULL for len bytes the caller never saw
 * (sendfile, splice): taken as body bytes, anything else gives up
 * (OA_HTTP_MALFORMED). */
size_t oa_http_feed(struct oa_http_parser *p, const uint8_t *data, size_t len,
		    struct oa_http_event *events, size_t max_events);

/* Heads that begin from now on are parsed lean: only what framing and
 * propagation need is read. A request head (OA_HTTP_LEAN) keeps its method,
 * traceparent, tracestate and the body's framing, which skips the copies
 * and the lookups of the rest; a response head keeps all it has anyway
 * (status and framing). The header lines complete in a feed whose names do
 * not begin like Content-Length or Transfer-Encoding (or, in requests,
 * traceparent or tracestate) are passed over up to their LF without being
 * checked: a lean head takes a malformed one of those (a name that is no
 * token, no ':', a control byte in the value) where a full parse gives up
 * (OA_HTTP_MALFORMED). The framing, and every other event and error, are
 * the full parse's. Only a request head begun and ended within one feed is
 * lean, so that the caller can parse it again in full from that feed's
 * bytes (oa_http_parse_head): one that does not end there is parsed again
 * from its first byte, in full, before the feed returns. */
void oa_http_set_lean(struct oa_http_parser *p, bool lean);

/* Parses len bytes that are exactly one request head (a lean head's
 * MESSAGE_BEGIN said where: data + offset - head_len, head_len bytes) into
 * *head, in full. False when they are not one well-formed head. */
bool oa_http_parse_head(const uint8_t *data, size_t len, struct oa_http_head *head);

/* Whether the n events oa_http_feed returned for len bytes may not be all
 * that they hold: feed data + events[n - 1].offset again. */
static inline bool oa_http_feed_again(const struct oa_http_event *events, size_t n,
				      size_t max_events, size_t len)
{
	/* else it stopped at the end of data, or after a MESSAGE_END before
	 * the next message */
	return n == max_events ||
	       (n && events[n - 1].kind == OA_HTTP_MESSAGE_END && events[n - 1].offset < len);
}

/* The head so far when the last byte fed was the CR starting the blank line
 * that ends it (its MESSAGE_BEGIN comes with the next byte), else NULL: a
 * caller inserting header lines must do it before that CR goes out. */
const struct oa_http_head *oa_http_head_ending(const struct oa_http_parser *p);

/* The first traceparent header line of a request head, for a client that
 * rewrites its value in place. Later traceparent lines are not looked at. */
enum oa_http_tp_state {
	OA_HTTP_TP_NONE,  /* no value byte yet */
	OA_HTTP_TP_OPEN,  /* its value began; its line has not ended */
	OA_HTTP_TP_V00,	  /* its line ended: a valid version-00 value, 55 chars */
	OA_HTTP_TP_OTHER, /* its line ended: empty, malformed or another version */
};
struct oa_http_tp_field {
	uint8_t state;		      /* enum oa_http_tp_state */
	uint16_t value_at;	      /* OPEN, V00: head offset of the value's first byte */
	struct oa_span_context value; /* V00: what it says */
};

/* That line in the request head being parsed, or in the last one whose
 * MESSAGE_BEGIN a feed wrote (until the next head begins). */
struct oa_http_tp_field oa_http_traceparent_field(const struct oa_http_parser *p);

/* Bytes of the head being parsed so far; 0 between heads and in bodies. */
uint32_t oa_http_head_progress(const struct oa_http_parser *p);

/* The connection closed: ends a response whose body runs until close
 * (MESSAGE_END), or reports a message cut short (GAVE_UP, OA_HTTP_INCOMPLETE).
 * Returns whether *event was written; the parser is dead afterwards. */
bool oa_http_close(struct oa_http_parser *p, struct oa_http_event *event);

/* A response parser must know each request's method (a response to HEAD has
 * no body; a 2xx to CONNECT starts a tunnel): call this for every request
 * sent, in order. False when the role is wrong or OA_HTTP_PENDING_MAX are
 * outstanding; a response with nothing queued is taken as answering a GET. */
bool oa_http_expect_response(struct oa_http_parser *p, enum oa_http_method method);

/* "GET" ... "TRACE", or "_OTHER" (semantic conventions' http.request.method). */
const char *oa_http_method_name(enum oa_http_method method);

/* The query q (without '?') with non-empty values replaced by REDACTED: every
 * one ("a=1&b&c=" -> "a=REDACTED&b&c="), those of sensitive names
 * (oa_http_sensitive_name), or none. Writes at most cap - 1 chars and a NUL
 * (cap > 0); returns the full length, as snprintf does. */
size_t oa_http_redact_query(const char *q, size_t len, enum oa_redact_query mode, char *out,
			    size_t cap);
/* Whether a query parameter's value is a credential by its name: the
 * semantic conventions' AWSAccessKeyId, Signature, sig, X-Goog-Signature,
 * and names that say what they hold (token, secret, password, key, ...). */
bool oa_http_sensitive_name(const char *name, size_t len);

struct oa_http_url {
	const char *scheme; /* "http" when NULL */
	const char *host;   /* may carry ":port" and "userinfo@" (dropped); bare IPv6 gets [] */
	uint16_t port;	    /* appended unless 0, the scheme's default, or host has one */
	const char *path;   /* "/" when NULL or empty; a '/' is put in front if missing */
	const char *query;  /* raw, redacted here; NULL: no '?' */
	enum oa_redact_query redact;
};
/* url.full for client spans: scheme://host[:port]/path[?query], never with
 * userinfo. Writes like snprintf (cap > 0) and returns the full length. */
size_t oa_http_url_full(const struct oa_http_url *url, char *out, size_t cap);

#endif
