/* Pure helpers of the database clients' trace propagation (hooks/pg.c,
 * hooks/mysql.c, hooks/sockets.c): the framing of the messages a client
 * writes, where sqlcommenter's comment goes into a query message and the
 * message's new length, and the rewritten bytes still owed to the stream
 * when the kernel takes only part of a write. */
#ifndef OTLPAUTO_DB_INJECT_H
#define OTLPAUTO_DB_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_inject.h"
#include "sql_sanitize.h"

/* What goes into a query: a blank, then the block comment whose text is
 * traceparent='00-...' (oa_sql_traceparent_comment). */
#define OA_DB_COMMENT_LEN (1 + OA_SQL_TRACEPARENT_COMMENT_LEN)

/* Writes the comment naming ctx (OA_DB_COMMENT_LEN chars and a NUL). */
void oa_db_comment(const struct oa_span_context *ctx, char out[OA_DB_COMMENT_LEN + 1]);

/* A message (PostgreSQL) or packet (MySQL) a client writes. */
struct oa_db_frame {
	uint32_t size; /* its bytes, header included */
	/* PostgreSQL: its type byte; MySQL: the command byte of a command
	 * packet (sequence 0; 0 for other packets or an empty one) */
	uint8_t type;
	bool command;	/* MySQL: sequence 0 (PostgreSQL: always) */
	bool continued; /* MySQL: 16 MiB - 1 bytes of payload, a continuation follows */
	uint8_t length_at, length_len; /* its length field, from the frame's start */
	/* When it takes a comment: where it goes, from the frame's start (0:
	 * it takes none), and the length field that counts it. */
	uint32_t comment_at;
	uint8_t length[4];
};

/* The frontend message at the start of buf (len bytes): false when its type
 * and length are not all there, or the length is not one the protocol
 * allows. A Query or Parse whole in buf whose query
 * has a token and no traceparent comment takes a comment (never past
 * PostgreSQL's 1 GB). */
bool oa_pg_frame(const uint8_t *buf, size_t len, struct oa_db_frame *fr);

/* The client packet (command phase) at the start of buf: false when its
 * header is not all there. A COM_QUERY or COM_STMT_PREPARE whole in buf
 * takes a comment as a Query does, unless the payload would reach 16 MiB -
 * 1 bytes (it would need a continuation packet). `attributes`: a COM_QUERY
 * starts with query attributes (CLIENT_QUERY_ATTRIBUTES); only one with
 * none takes a comment (the query is the rest of the payload). */
bool oa_mysql_frame(const uint8_t *buf, size_t len, bool attributes, struct oa_db_frame *fr);

/* A rewrite of one message of a write: its length field (at application
 * offset length_at) replaced, a comment inserted at comment_at. */
struct oa_db_rewrite {
	size_t length_at, comment_at;
	uint8_t length_len;
	uint8_t length[4];
	const char *comment; /* OA_DB_COMMENT_LEN bytes */
};

/* Rewritten bytes still owed to the stream, in stream order: each goes
 * after `before` more application bytes; a replacing one (the rest of a
 * length field) instead of the application's next `len` bytes. A write
 * cut by the kernel leaves at most one message's: its length's rest and
 * its comment.
 *
 * A comment that ends a write (a MySQL query's, without ';') must not be
 * left owed once the call returned all its bytes: the program would wait
 * for the answer to a message that never ends. So the call then reports
 * its last byte as not taken, and the comment's rest `holds_last`: when
 * the program writes that byte again, the rest goes instead, and the byte
 * counts as taken once the rest is all out. */
#define OA_DB_OWED_MAX 2
struct oa_db_owed {
	uint8_t n;
	struct {
		uint32_t before;
		uint8_t len;
		bool replaces;
		bool holds_last;
		char bytes[OA_DB_COMMENT_LEN];
	} item[OA_DB_OWED_MAX];
};

/* Room for the inserts of a write with n rewrites. */
#define OA_DB_INSERTS(n) (OA_DB_OWED_MAX + 2 * (n))

/* The inserts of a write of app_len application bytes, sorted: the owed
 * bytes that fall within it, then the rewrites (in order, inside
 * app_len, after every owed byte). Returns their count. */
int oa_db_inserts(const struct oa_db_owed *owed, size_t app_len, const struct oa_db_rewrite *rw,
		  int n_rw, struct oa_insert *ins);

/* After the write went out in part or whole (app_sent: what
 * oa_layout_consume counted; the inserts' `sent`), what is still owed, and
 * in *app_taken the application bytes the call took (0: only owed bytes
 * went). A rewrite whose length field did not start to go out is dropped:
 * the program sends those bytes again, as they are. Returns how many
 * rewrites are committed (went out at least in part): the first ones. */
int oa_db_settle(struct oa_db_owed *owed, size_t app_len, const struct oa_db_rewrite *rw, int n_rw,
		 const struct oa_insert *ins, size_t app_sent, size_t *app_taken);

#endif
