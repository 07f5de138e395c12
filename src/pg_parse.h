/* Incremental, allocation-free parser of the PostgreSQL frontend/backend
 * protocol v3 for one direction of a connection (pure: no I/O, no globals).
 * It reads message framing, captures the few fields a span needs (query text,
 * statement name, command tag, SQLSTATE, startup user and database) and skips
 * everything else by length: rows and COPY data cost no memory. Anything that
 * is not the protocol makes the parser give up for good, after which feeding
 * it costs nothing. */
#ifndef OTLPAUTO_PG_PARSE_H
#define OTLPAUTO_PG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capacities of the captured strings, NUL included; longer ones are cut and
 * flagged OA_PG_TRUNCATED. */
#define OA_PG_TEXT_CAP	   512 /* query text, command tag, startup database */
#define OA_PG_NAME_CAP	   64  /* prepared statement name, startup user */
#define OA_PG_SEVERITY_CAP 12

/* PostgreSQL refuses longer startup-phase messages (MAX_STARTUP_PACKET_LENGTH). */
#define OA_PG_MAX_STARTUP 10000
/* Nor does it send or accept longer messages (1 GB, MaxAllocSize). */
#define OA_PG_MAX_MESSAGE 0x40000000u

/* Codes of the messages without a type byte (the protocol version for a
 * StartupMessage: 3.0 is 196608). */
#define OA_PG_SSL_REQUEST_CODE	  80877103
#define OA_PG_GSSENC_REQUEST_CODE 80877104
#define OA_PG_CANCEL_REQUEST_CODE 80877102

enum oa_pg_role {
	OA_PG_FRONTEND, /* client-to-server bytes */
	OA_PG_BACKEND,	/* server-to-client bytes */
};

enum oa_pg_event_kind {
	OA_PG_NONE,		  /* the data ran out before the next event */
	OA_PG_MESSAGE,		  /* a typed message (type says which); not DataRow nor CopyData */
	OA_PG_STARTUP,		  /* frontend: StartupMessage */
	OA_PG_SSL_REQUEST,	  /* frontend: SSLRequest */
	OA_PG_GSSENC_REQUEST,	  /* frontend: GSSENCRequest */
	OA_PG_CANCEL_REQUEST,	  /* frontend: CancelRequest (on a connection of its own) */
	OA_PG_ENCRYPTION_REFUSED, /* backend: 'N' to an SSLRequest or GSSENCRequest */
	/* backend: 'S' answered an SSLRequest: the messages go on inside TLS
	 * (both parsers are to be fed its plaintext, the startup message next). */
	OA_PG_TLS,
	/* backend: 'G' answered a GSSENCRequest: the rest is encrypted. Last
	 * event; the frontend parser must be stopped too. */
	OA_PG_ENCRYPTED,
	OA_PG_GAVE_UP, /* last event: the parser ignores all further bytes */
};

enum oa_pg_gave_up_reason {
	OA_PG_NOT_PG = 1, /* the first bytes are not the protocol (TLS, another one) */
	OA_PG_MALFORMED,  /* an unknown message type or a bad length later on */
	OA_PG_TOO_LARGE,  /* a length over OA_PG_MAX_STARTUP or OA_PG_MAX_MESSAGE */
};

enum oa_pg_flag {
	OA_PG_TRUNCATED = 1 << 0, /* a captured string was cut to its capacity */
};

struct oa_pg_event {
	uint8_t kind;	/* enum oa_pg_event_kind */
	uint8_t reason; /* GAVE_UP: enum oa_pg_gave_up_reason */
	uint8_t type;	/* MESSAGE: the type byte ('Q', 'P', 'C', 'E', 'Z', ...) */
	uint8_t flags;	/* enum oa_pg_flag */
	/* MESSAGE 'Z' (ReadyForQuery): transaction status 'I', 'T' or 'E'. */
	uint8_t status;
	/* STARTUP: protocol version (major << 16 | minor); MESSAGE 'R'
	 * (Authentication): the request code (0 is AuthenticationOk). */
	int32_t code;
	uint32_t length; /* bytes of the message after its type and length fields */
	/* NUL-terminated, valid until the next call on the parser; NULL when
	 * the message has no such field. The query text is raw: literals and all
	 * (sanitise it before it goes anywhere). */
	const char *query;     /* frontend 'Q' (Query) and 'P' (Parse) */
	const char *statement; /* frontend 'P' and 'B' (Bind): prepared statement, "" unnamed */
	const char *tag;       /* backend 'C' (CommandComplete): "SELECT 5", "INSERT 0 1" */
	const char *user, *database; /* STARTUP ("" when absent) */
	/* backend 'E' (ErrorResponse) and 'N' (NoticeResponse): field 'C' (five
	 * characters of [0-9A-Z]) and the non-localised severity 'V' (else 'S');
	 * "" when absent or not a code. */
	const char *sqlstate, *severity;
};

/* Fixed-size state meant to be embedded in a per-fd table; every field is
 * private. */
struct oa_pg_parser {
	uint8_t role, state, type, field, field_type, flags, header_len;
	bool typed, started, severity_is_v, capturing;
	uint16_t text_len, name_len, key_len, sqlstate_len, severity_len;
	uint32_t length, remaining, number, body_pos;
	char key[16];
	char sqlstate[6], severity[OA_PG_SEVERITY_CAP];
	char name[OA_PG_NAME_CAP], text[OA_PG_TEXT_CAP];
};

void oa_pg_parser_init(struct oa_pg_parser *p, enum oa_pg_role role);

/* Parses data until an event completes or the data runs out; returns the
 * bytes consumed and fills *event (kind OA_PG_NONE when no event came). Call
 * again with the rest. An event completes on a byte, so every byte is
 * consumed by exactly one call. After GAVE_UP or ENCRYPTED every call
 * consumes all. */
size_t oa_pg_feed(struct oa_pg_parser *p, const uint8_t *data, size_t len,
		  struct oa_pg_event *event);

/* Whether a connection whose client sent these first bytes (len of them,
 * up to 8 looked at) speaks the protocol: a startup-phase message, whose
 * length's two high bytes are zero (no text protocol starts with them),
 * then protocol 3.0, an SSLRequest or a GSSENCRequest (fewer than 8 bytes:
 * the zeros suffice). A CancelRequest's connection is not taken: it has no
 * spans. */
bool oa_pg_frontend_start(const uint8_t *head, size_t len);

/* How many bytes come before the next typed message starts: 0 between
 * messages, the rest of the current one's body. False when that is not
 * known (the startup phase, inside a header, the parser gave up). */
bool oa_pg_message_gap(const struct oa_pg_parser *p, uint32_t *gap);

/* The frontend sent an SSLRequest or GSSENCRequest: the backend parser p
 * reads the one-byte answer before any message. */
void oa_pg_expect_encryption_answer(struct oa_pg_parser *p);

#endif
