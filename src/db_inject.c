#include "db_inject.h"

#include <string.h>

#include "pg_parse.h"

#define MYSQL_MAX_PAYLOAD 0xffffffu /* a longer payload continues in the next packet */

void oa_db_comment(const struct oa_span_context *ctx, char out[OA_DB_COMMENT_LEN + 1])
{
	out[0] = ' ';
	oa_sql_traceparent_comment(ctx, out + 1);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The comment's place for the query at text[0..len), from the frame's
 * start (text_at); 0 when it takes none. */
static uint32_t comment_place(const uint8_t *text, size_t len, size_t text_at,
			      enum oa_sql_dialect dialect)
{
	size_t at = oa_sql_comment_at((const char *)text, len, dialect);
	return at == SIZE_MAX ? 0 : (uint32_t)(text_at + at);
}

bool oa_pg_frame(const uint8_t *buf, size_t len, struct oa_db_frame *fr)
{
	memset(fr, 0, sizeof *fr);
	if (len < 5)
		return false;
	uint32_t length = be32(buf + 1);
	if (length < 4 || length > OA_PG_MAX_MESSAGE)
		return false; /* not the protocol: the parser gives up there */
	fr->type = buf[0];
	fr->command = true;
	fr->size = length + 1;
	fr->length_at = 1;
	fr->length_len = 4;
	if ((fr->type != 'Q' && fr->type != 'P') || fr->size > len ||
	    length > OA_PG_MAX_MESSAGE - OA_DB_COMMENT_LEN)
		return true;
	/* Query: the text and its NUL; Parse: the statement's name, the text,
	 * then the parameter types */
	const uint8_t *body = buf + 5, *end = buf + fr->size;
	if (fr->type == 'P') {
		const uint8_t *name_end = memchr(body, 0, (size_t)(end - body));
		if (!name_end)
			return true;
		body = name_end + 1;
	}
	const uint8_t *text_end = memchr(body, 0, (size_t)(end - body));
	if (!text_end || (fr->type == 'Q' && text_end != end - 1) ||
	    (fr->type == 'P' && end - text_end < 3))
		return true;
	fr->comment_at =
	    comment_place(body, (size_t)(text_end - body), (size_t)(body - buf), OA_SQL_POSTGRESQL);
	uint32_t longer = length + OA_DB_COMMENT_LEN;
	for (int i = 0; i < 4; i++)
		fr->length[i] = (uint8_t)(longer >> (24 - 8 * i));
	return true;
}

bool oa_mysql_frame(const uint8_t *buf, size_t len, bool attributes, struct oa_db_frame *fr)
{
	memset(fr, 0, sizeof *fr);
	if (len < 4)
		return false;
	uint32_t payload = buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16;
	fr->size = payload + 4;
	fr->command = buf[3] == 0;
	fr->continued = payload == MYSQL_MAX_PAYLOAD;
	fr->length_at = 0;
	fr->length_len = 3;
	if (!fr->command || !payload || len < 5)
		return true;
	fr->type = buf[4];
	if ((fr->type != 0x03 && fr->type != 0x16) || fr->size > len ||
	    payload + OA_DB_COMMENT_LEN >= MYSQL_MAX_PAYLOAD)
		return true;
	size_t text_at = 5;
	if (fr->type == 0x03 && attributes) {
		/* no attribute (a count of 0), one set of them */
		if (payload < 3 || buf[5] != 0 || buf[6] != 1)
			return true;
		text_at = 7;
	}
	fr->comment_at = comment_place(buf + text_at, fr->size - text_at, text_at, OA_SQL_MYSQL);
	uint32_t longer = payload + OA_DB_COMMENT_LEN;
	for (int i = 0; i < 3; i++)
		fr->length[i] = (uint8_t)(longer >> (8 * i));
	return true;
}

/* The insert of owed item i in a write of app_len bytes; false when it
 * does not go in this write (nor do the items after it). */
static bool owed_insert(const struct oa_db_owed *owed, int i, size_t app_len, struct oa_insert *in)
{
	size_t len = owed->item[i].len, before = owed->item[i].before, replaces = 0;
	if (before > app_len)
		return false;
	if (owed->item[i].replaces) /* a replaced range ends within the write */
		replaces = len = len < app_len - before ? len : app_len - before;
	else if (owed->item[i].holds_last)
		replaces = 1; /* the byte that went before it */
	if (!len || replaces > app_len - before)
		return false;
	*in = (struct oa_insert){
	    .offset = before, .bytes = owed->item[i].bytes, .len = len, .replaces = replaces};
	return true;
}

int oa_db_inserts(const struct oa_db_owed *owed, size_t app_len, const struct oa_db_rewrite *rw,
		  int n_rw, struct oa_insert *ins)
{
	int n = 0;
	while (n < owed->n && owed_insert(owed, n, app_len, &ins[n]))
		n++;
	for (int i = 0; i < n_rw; i++) {
		ins[n++] = (struct oa_insert){.offset = rw[i].length_at,
					      .bytes = (const char *)rw[i].length,
					      .len = rw[i].length_len,
					      .replaces = rw[i].length_len};
		ins[n++] = (struct oa_insert){
		    .offset = rw[i].comment_at, .bytes = rw[i].comment, .len = OA_DB_COMMENT_LEN};
	}
	return n;
}

/* What is left of bytes[0..len) after `sent` went out, owed from the
 * application offset `offset` (+ the replaced bytes taken) on. */
static void owe(struct oa_db_owed *next, const char *bytes, size_t len, bool replaces,
		bool holds_last, size_t offset, size_t sent, size_t app_taken)
{
	if (sent >= len || next->n == OA_DB_OWED_MAX)
		return;
	int i = next->n++;
	next->item[i].before = (uint32_t)(offset + (replaces ? sent : 0) - app_taken);
	next->item[i].len = (uint8_t)(len - sent);
	next->item[i].replaces = replaces;
	next->item[i].holds_last = holds_last;
	memcpy(next->item[i].bytes, bytes + sent, len - sent);
}

int oa_db_settle(struct oa_db_owed *owed, size_t app_len, const struct oa_db_rewrite *rw, int n_rw,
		 const struct oa_insert *ins, size_t app_sent, size_t *app_taken)
{
	struct oa_db_owed next = {0};
	int at = 0; /* the next insert */
	size_t taken = app_sent;
	/* the owed items that went into the layout, and what they really
	 * stand for: oa_layout_consume counts every byte of a replacing insert */
	size_t sent[OA_DB_OWED_MAX] = {0};
	struct oa_insert unused;
	for (; at < owed->n && owed_insert(owed, at, app_len, &unused); at++) {
		sent[at] = ins[at].sent;
		if (owed->item[at].holds_last)
			taken -= sent[at] - (sent[at] == owed->item[at].len ? 1 : 0);
	}
	for (int i = 0; i < owed->n; i++)
		owe(&next, owed->item[i].bytes, owed->item[i].len, owed->item[i].replaces,
		    owed->item[i].holds_last, owed->item[i].holds_last ? 0 : owed->item[i].before,
		    sent[i], owed->item[i].holds_last ? 0 : taken);
	int committed = 0;
	for (int i = 0; i < n_rw; i++, at += 2) {
		const struct oa_insert *length = &ins[at], *comment = &ins[at + 1];
		if (!length->sent)
			break;
		committed++;
		owe(&next, (const char *)rw[i].length, length->len, true, false, length->offset,
		    length->sent, taken);
		owe(&next, comment->bytes, comment->len, false, false, comment->offset,
		    comment->sent, taken);
	}
	/* a comment left owed at the end of the write holds its last byte */
	if (app_len && taken == app_len && next.n && !next.item[0].replaces &&
	    !next.item[0].holds_last) {
		next.item[0].holds_last = true;
		taken--;
	}
	*owed = next;
	*app_taken = taken;
	return committed;
}
