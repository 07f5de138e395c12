/* Incremental, allocation-free parser of the MySQL/MariaDB client/server
 * protocol for one direction of a connection (pure: no I/O, no globals). The
 * client's bytes give the handshake response and the commands; the server's
 * give the initial handshake and one event per complete response (an OK, an
 * ERR, or a whole result set). Packets are skipped by their length once their
 * first bytes are read: result sets cost no memory. Anything that is not the
 * protocol makes the parser give up for good, after which feeding it costs
 * nothing. */
#ifndef OTLPAUTO_MYSQL_PARSE_H
#define OTLPAUTO_MYSQL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capacities of the captured strings, NUL included; longer ones are cut and
 * flagged OA_MYSQL_TRUNCATED. */
#define OA_MYSQL_TEXT_CAP 512 /* query text, schema, server version, user */
#define OA_MYSQL_NAME_CAP 64  /* handshake response: database */
/* Responses that can be outstanding at once (pipelined commands). */
#define OA_MYSQL_PENDING_MAX 8

/* Commands (the first byte of a command packet) the parser reads fields of. */
enum oa_mysql_command {
	OA_MYSQL_COM_QUIT = 0x01,
	OA_MYSQL_COM_INIT_DB = 0x02,
	OA_MYSQL_COM_QUERY = 0x03,
	OA_MYSQL_COM_FIELD_LIST = 0x04,
	OA_MYSQL_COM_STATISTICS = 0x09,
	OA_MYSQL_COM_PING = 0x0e,
	OA_MYSQL_COM_CHANGE_USER = 0x11,
	OA_MYSQL_COM_STMT_PREPARE = 0x16,
	OA_MYSQL_COM_STMT_EXECUTE = 0x17,
	OA_MYSQL_COM_STMT_SEND_LONG_DATA = 0x18,
	OA_MYSQL_COM_STMT_CLOSE = 0x19,
	OA_MYSQL_COM_STMT_RESET = 0x1a,
	OA_MYSQL_COM_STMT_FETCH = 0x1c,
	/* Not a command: RESPONSE to the connection phase (authentication). */
	OA_MYSQL_CONNECT = 0xff,
};

/* Capability flags the parser reads. */
#define OA_MYSQL_CLIENT_CONNECT_WITH_DB		0x00000008u
#define OA_MYSQL_CLIENT_COMPRESS		0x00000020u
#define OA_MYSQL_CLIENT_PROTOCOL_41		0x00000200u
#define OA_MYSQL_CLIENT_SSL			0x00000800u
#define OA_MYSQL_CLIENT_SECURE_CONNECTION	0x00008000u
#define OA_MYSQL_CLIENT_PLUGIN_AUTH_LENENC_DATA 0x00200000u
#define OA_MYSQL_CLIENT_DEPRECATE_EOF		0x01000000u
#define OA_MYSQL_CLIENT_ZSTD_COMPRESSION	0x04000000u
#define OA_MYSQL_CLIENT_QUERY_ATTRIBUTES	0x08000000u

enum oa_mysql_role {
	OA_MYSQL_CLIENT, /* client-to-server bytes */
	OA_MYSQL_SERVER, /* server-to-client bytes */
};

enum oa_mysql_event_kind {
	OA_MYSQL_NONE,		     /* the data ran out before the next event */
	OA_MYSQL_HANDSHAKE,	     /* server: initial handshake (version, capabilities) */
	OA_MYSQL_HANDSHAKE_RESPONSE, /* client: user, database, capabilities */
	/* client: SSLRequest; TLS follows, and the parsers are to be fed its
	 * plaintext: the handshake response (sequence 2) next. */
	OA_MYSQL_SSL_REQUEST,
	OA_MYSQL_COMMAND,  /* client: a command packet */
	OA_MYSQL_RESPONSE, /* server: the whole response to a command (or to the login) */
	OA_MYSQL_GAVE_UP,  /* last event: the parser ignores all further bytes */
};

enum oa_mysql_gave_up_reason {
	OA_MYSQL_NOT_MYSQL = 1, /* the first bytes are not the protocol */
	OA_MYSQL_MALFORMED,	/* a bad packet later on */
	OA_MYSQL_COMPRESSED,	/* the compressed protocol was negotiated */
};

enum oa_mysql_flag {
	OA_MYSQL_TRUNCATED = 1 << 0,  /* a captured string was cut to its capacity */
	OA_MYSQL_RESULT_SET = 1 << 1, /* RESPONSE: it had a result set (rows counts them) */
	/* COMMAND COM_QUERY with query attributes: the text was not captured. */
	OA_MYSQL_ATTRIBUTES = 1 << 2,
};

struct oa_mysql_event {
	uint8_t kind;	 /* enum oa_mysql_event_kind */
	uint8_t reason;	 /* GAVE_UP: enum oa_mysql_gave_up_reason */
	uint8_t command; /* COMMAND: its first byte; RESPONSE: the command answered */
	uint8_t flags;	 /* enum oa_mysql_flag */
	/* RESPONSE: ERR's error code (1064 syntax, 1062 duplicate key), 0 for success. */
	uint16_t error_code;
	/* HANDSHAKE: the server's capabilities; HANDSHAKE_RESPONSE and
	 * SSL_REQUEST: the client's. */
	uint32_t capabilities;
	/* COMMAND: COM_STMT_EXECUTE, _CLOSE, _RESET, _FETCH, _SEND_LONG_DATA;
	 * RESPONSE to COM_STMT_PREPARE: the new statement. */
	uint32_t statement_id;
	uint32_t length; /* COMMAND: payload bytes, across continuation packets */
	/* RESPONSE: the rows of its result sets plus the affected rows of its
	 * OK packets (a multi-statement query may have both). */
	uint64_t rows;
	/* NUL-terminated, valid until the next call on the parser; NULL when the
	 * event has no such field. text: COMMAND COM_QUERY and COM_STMT_PREPARE:
	 * the query, raw (literals and all: sanitise it before it goes anywhere);
	 * COM_INIT_DB: the schema; HANDSHAKE: the server version;
	 * HANDSHAKE_RESPONSE: the user. */
	const char *text;
	const char *database; /* HANDSHAKE_RESPONSE: "" when absent */
	const char *sqlstate; /* RESPONSE with an error: "42000", "23000"; "" when absent */
};

/* Fixed-size state meant to be embedded in a per-fd table; every field is
 * private. */
struct oa_mysql_parser {
	uint8_t role, state, phase, seq, header_len, head_len, field, flags;
	uint8_t command, response, eofs, lenenc_left, lenenc_shift, login_fixed;
	uint8_t pending_first, pending_count, pending[OA_MYSQL_PENDING_MAX];
	bool started, continued, length_was_max, command_packet, client_known;
	bool secured; /* client: an SSLRequest went, the login follows inside TLS */
	uint16_t text_len, name_len, error_code;
	uint32_t length, remaining, total, capabilities, client_capabilities;
	uint32_t statement_id;
	uint64_t number, number_left, rows, defs_left;
	uint8_t head[32];
	char sqlstate[6];
	char name[OA_MYSQL_NAME_CAP], text[OA_MYSQL_TEXT_CAP];
};

void oa_mysql_parser_init(struct oa_mysql_parser *p, enum oa_mysql_role role);

/* Parses data until an event completes or the data runs out; returns the
 * bytes consumed and fills *event (kind OA_MYSQL_NONE when no event came).
 * Call again with the rest. An event completes on a byte, so every byte is
 * consumed by exactly one call. After GAVE_UP every call consumes all. */
size_t oa_mysql_feed(struct oa_mysql_parser *p, const uint8_t *data, size_t len,
		     struct oa_mysql_event *event);

/* Whether a connection whose server sent these first bytes (len of them, 5
 * looked at) speaks the protocol: the initial handshake's packet header
 * (a length under 64 KiB, sequence 0) and protocol version 10. MySQL's
 * server speaks first: its first bytes decide. */
bool oa_mysql_greeting_start(const uint8_t *head, size_t len);

/* Where the client parser p is between commands: how many bytes come
 * before the next packet that may be a command starts (0 between packets,
 * else the rest of the current one's payload), whether the current packet
 * is a command (its event comes at its end), and whether a COM_QUERY
 * starts with query attributes. */
struct oa_mysql_gap {
	uint32_t bytes;
	bool in_command;
	bool attributes;
};
/* False when not known: before the command phase, inside a header, a
 * continuation packet follows, the parser gave up. */
bool oa_mysql_command_gap(const struct oa_mysql_parser *p, struct oa_mysql_gap *gap);

/* The server parser p must know what each response answers: call this for
 * every COMMAND event of the client parser, in order. Commands the server
 * does not answer (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA) are
 * not queued. False when not queued (also when OA_MYSQL_PENDING_MAX are
 * outstanding); a response with nothing queued is taken as answering a
 * COM_QUERY. */
bool oa_mysql_expect_response(struct oa_mysql_parser *p, uint8_t command);

/* The capabilities of the client's HANDSHAKE_RESPONSE, for the server parser
 * p: whether EOF packets are sent (CLIENT_DEPRECATE_EOF) decides where the
 * response to a COM_STMT_PREPARE ends. Without this call the client is taken
 * to use every capability the server offers. */
void oa_mysql_set_client_capabilities(struct oa_mysql_parser *p, uint32_t capabilities);

#endif
