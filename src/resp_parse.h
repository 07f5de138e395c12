/* Incremental, allocation-free parser of the Redis protocol (RESP2 and RESP3)
 * for one direction of a connection (pure: no I/O, no globals). Commands are
 * read from the client's bytes, replies and pushes from the server's. The
 * state is fixed-size: bulk payloads are skipped by their length and nested
 * aggregates are followed by one counter of values still to read, so a reply
 * of any size or depth costs no memory. Anything that is not RESP makes the
 * parser give up for good, after which feeding it costs nothing. */
#ifndef OTLPAUTO_RESP_PARSE_H
#define OTLPAUTO_RESP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capacities of the captured strings, NUL included; longer ones are cut and
 * flagged OA_RESP_TRUNCATED. */
#define OA_RESP_NAME_CAP 24 /* command name, upper-cased */
#define OA_RESP_KEY_CAP	 48 /* the first argument (raw user data) */
#define OA_RESP_TEXT_CAP 24 /* status text, error prefix, a push's kind */

/* An inline command line (telnet style) longer than this gives up, as Redis
 * refuses it (PROTO_INLINE_MAX_SIZE). */
#define OA_RESP_MAX_INLINE 65536

enum oa_resp_role {
	OA_RESP_COMMANDS, /* client-to-server bytes */
	OA_RESP_REPLIES,  /* server-to-client bytes */
};

enum oa_resp_event_kind {
	OA_RESP_NONE,	 /* the data ran out before the next event */
	OA_RESP_COMMAND, /* a whole command was read */
	OA_RESP_REPLY,	 /* a whole reply: answers the oldest command not answered */
	OA_RESP_PUSH,	 /* out-of-band data (pub/sub message), answers no command */
	OA_RESP_GAVE_UP, /* last event: the parser ignores all further bytes */
};

enum oa_resp_gave_up_reason {
	OA_RESP_NOT_RESP = 1, /* the first bytes are not RESP (TLS, another protocol) */
	OA_RESP_MALFORMED,    /* bad framing later on */
	OA_RESP_TOO_LARGE,    /* inline line, length or element count beyond limits */
};

/* The type byte of a reply's top-level value. Nulls of every flavour (RESP2
 * "$-1" and "*-1", RESP3 "_") are OA_RESP_NULL. */
enum oa_resp_type {
	OA_RESP_SIMPLE = '+',
	OA_RESP_ERROR = '-',
	OA_RESP_INTEGER = ':',
	OA_RESP_BULK = '$',
	OA_RESP_ARRAY = '*',
	OA_RESP_NULL = '_',
	OA_RESP_DOUBLE = ',',
	OA_RESP_BOOLEAN = '#',
	OA_RESP_BLOB_ERROR = '!',
	OA_RESP_VERBATIM = '=',
	OA_RESP_BIG_NUMBER = '(',
	OA_RESP_MAP = '%',
	OA_RESP_SET = '~',
	OA_RESP_PUSH_TYPE = '>',
};

enum oa_resp_flag {
	OA_RESP_TRUNCATED = 1 << 0,    /* name, key or text was cut to its capacity */
	OA_RESP_INLINE = 1 << 1,       /* COMMAND: sent as an inline line, not an array */
	OA_RESP_QUEUED = 1 << 2,       /* COMMAND: inside MULTI (EXEC, DISCARD, RESET included) */
	OA_RESP_SUBSCRIBES = 1 << 3,   /* COMMAND: SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE */
	OA_RESP_KEY_WITHHELD = 1 << 4, /* COMMAND: AUTH's first argument is not captured */
};

struct oa_resp_event {
	uint8_t kind;	/* enum oa_resp_event_kind */
	uint8_t reason; /* GAVE_UP: enum oa_resp_gave_up_reason */
	uint8_t type;	/* REPLY, PUSH: enum oa_resp_type of the top-level value */
	uint8_t flags;	/* enum oa_resp_flag */
	uint32_t argc;	/* COMMAND: elements including the name */
	/* REPLY: INTEGER's value, BOOLEAN's 1 or 0; bulk strings, blob errors
	 * and verbatim strings: payload bytes; aggregates: elements (map pairs). */
	int64_t value;
	/* NUL-terminated, valid until the next call on the parser. COMMAND: name
	 * (upper-cased) and first argument ("" when none). REPLY: SIMPLE's text,
	 * ERROR's and BLOB_ERROR's first word ("ERR", "WRONGTYPE"); the first
	 * element of a push, or of an array once pub/sub is expected, when it is
	 * a string ("message", "subscribe", "invalidate"); "" otherwise. NULL
	 * when unused. The key is a user's data, the text is not. */
	const char *name, *key, *text;
};

/* Fixed-size state meant to be embedded in a per-fd table; every field is
 * private. */
struct oa_resp_parser {
	uint8_t role, state, flags, mode, type, top, capture;
	uint8_t name_len, key_len, text_len, quote;
	bool negative, started, multi, pubsub, want_first, in_word;
	uint32_t argc, arg, line_len;
	uint64_t number, remaining, skip;
	int64_t value;
	char name[OA_RESP_NAME_CAP], key[OA_RESP_KEY_CAP], text[OA_RESP_TEXT_CAP];
};

void oa_resp_parser_init(struct oa_resp_parser *p, enum oa_resp_role role);

/* Parses data until an event completes or the data runs out; returns the
 * bytes consumed and fills *event (kind OA_RESP_NONE when no event came).
 * Call again with the rest. An event completes on a byte, so every byte is
 * consumed by exactly one call. After GAVE_UP every call consumes all. */
size_t oa_resp_feed(struct oa_resp_parser *p, const uint8_t *data, size_t len,
		    struct oa_resp_event *event);

/* Whether a connection whose client sent these first bytes (len of them,
 * 0 to 2 looked at) speaks RESP: an array header, "*" and a digit ("*"
 * alone: the digit may come later). Inline commands are not taken: an HTTP
 * request line reads as one. */
bool oa_resp_commands_start(const uint8_t *head, size_t len);

/* The client sent a SUBSCRIBE-family command (OA_RESP_SUBSCRIBES): from now
 * on the reply parser p takes RESP2 arrays ["message", channel, payload],
 * ["smessage", ...] and ["pmessage", pattern, channel, payload] for pushes.
 * (A reply to a command pipelined before the SUBSCRIBE that has this very
 * shape is taken for a push too.) RESP3 pushes need no call. */
void oa_resp_expect_pubsub(struct oa_resp_parser *p);

#endif
