/* A database client's stream through the comment rewrite, as the hooks do
 * it (hooks/sockets.c's db_send, hooks/pg.c's and mysql.c's plans, without
 * their span bookkeeping): the client writes its stream in writes ending at
 * given cuts, repeating what a call did not take; a kernel takes up to
 * kernel_max bytes per call. Shared by test_db_inject and fuzz_db. */
#ifndef OTLPAUTO_TEST_DB_STREAM_H
#define OTLPAUTO_TEST_DB_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "db_inject.h"
#include "mysql_parse.h"
#include "pg_parse.h"

#define DB_STREAM_MAX	  16384
#define DB_STREAM_REWRITE 64 /* comments recorded per stream */

struct db_client {
	bool mysql;
	struct oa_pg_parser pg;
	struct oa_mysql_parser my;
	uint32_t messages; /* message (command) events so far */
	size_t written;	   /* application bytes the calls took */
	struct oa_db_owed owed;
	size_t kernel_max; /* what the kernel takes per call */
	uint8_t wire[DB_STREAM_MAX + DB_STREAM_REWRITE * OA_DB_COMMENT_LEN];
	size_t wire_len;
	/* the rewrites that went out, at stream offsets */
	int n_done;
	struct oa_db_rewrite done[DB_STREAM_REWRITE];
	char comments[DB_STREAM_REWRITE][OA_DB_COMMENT_LEN + 1];
	int calls_took_nothing; /* calls that took no application byte */
};

static void db_client_feed(struct db_client *c, const uint8_t *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		if (c->mysql) {
			struct oa_mysql_event ev;
			off += oa_mysql_feed(&c->my, data + off, len - off, &ev);
			c->messages += ev.kind == OA_MYSQL_COMMAND;
		} else {
			struct oa_pg_event ev;
			off += oa_pg_feed(&c->pg, data + off, len - off, &ev);
			c->messages += ev.kind == OA_PG_MESSAGE;
		}
	}
}

/* The comments a write gets: every query message whole in it that takes
 * one (the hooks also ask whether a span follows it), each naming a span
 * id of its own. */
static int db_client_plan(struct db_client *c, const uint8_t *buf, size_t len,
			  struct oa_db_rewrite *rw, char comments[][OA_DB_COMMENT_LEN + 1])
{
	uint32_t gap;
	bool attributes = false;
	if (c->mysql) {
		struct oa_mysql_gap g;
		if (!oa_mysql_command_gap(&c->my, &g))
			return 0;
		gap = g.bytes;
		attributes = g.attributes;
	} else if (!oa_pg_message_gap(&c->pg, &gap)) {
		return 0;
	}
	int n = 0;
	struct oa_db_frame fr;
	for (size_t pos = gap; pos < len && n < 4; pos += fr.size) {
		bool framed = c->mysql ? oa_mysql_frame(buf + pos, len - pos, attributes, &fr)
				       : oa_pg_frame(buf + pos, len - pos, &fr);
		if (!framed || fr.continued)
			break;
		if (!fr.command || !fr.comment_at || c->n_done + n == DB_STREAM_REWRITE)
			continue;
		struct oa_span_context named = {.trace_id = {0x4b, 0xf9}, .flags = 1};
		named.span_id[7] = (uint8_t)(c->n_done + n + 1);
		oa_db_comment(&named, comments[n]);
		rw[n] = (struct oa_db_rewrite){.length_at = pos + fr.length_at,
					       .comment_at = pos + fr.comment_at,
					       .length_len = fr.length_len,
					       .comment = comments[n]};
		memcpy(rw[n].length, fr.length, 4);
		n++;
	}
	return n;
}

/* One write call: returns the application bytes it took. */
static size_t db_client_write(struct db_client *c, const uint8_t *buf, size_t len)
{
	struct oa_db_rewrite rw[4];
	char comments[4][OA_DB_COMMENT_LEN + 1];
	int n_rw = db_client_plan(c, buf, len, rw, comments);
	struct oa_insert ins[OA_DB_INSERTS(4)];
	int n_ins = oa_db_inserts(&c->owed, len, rw, n_rw, ins);
	struct iovec app = {(void *)buf, len};
	struct oa_layout l;
	if (!oa_layout_build(&l, &app, 1, ins, n_ins))
		return 0;
	/* the kernel takes up to kernel_max per call, until application bytes
	 * went (oa_send_layout) */
	size_t app_sent = 0;
	while (!app_sent && l.first < l.n) {
		size_t got = 0;
		for (int i = l.first; i < l.n && got < c->kernel_max; i++) {
			size_t part = l.iov[i].iov_len < c->kernel_max - got ? l.iov[i].iov_len
									     : c->kernel_max - got;
			memcpy(c->wire + c->wire_len, l.iov[i].iov_base, part);
			c->wire_len += part;
			got += part;
		}
		app_sent = oa_layout_consume(&l, got, ins);
	}
	size_t taken;
	int committed = oa_db_settle(&c->owed, len, rw, n_rw, ins, app_sent, &taken);
	for (int i = 0; i < committed; i++) {
		struct oa_db_rewrite *d = &c->done[c->n_done];
		*d = rw[i];
		d->length_at += c->written;
		d->comment_at += c->written;
		memcpy(c->comments[c->n_done], comments[i], sizeof comments[i]);
		d->comment = c->comments[c->n_done++];
	}
	db_client_feed(c, buf, taken);
	c->written += taken;
	/* only owed bytes went (the call fails with EINTR and is repeated) */
	c->calls_took_nothing += !taken;
	return taken;
}

/* The wire the stream must make: its bytes with each rewrite that went out
 * applied (the length replaced, the comment inserted). */
static size_t db_client_expected(const struct db_client *c, const uint8_t *stream, size_t len,
				 uint8_t *out)
{
	size_t n = 0, at = 0;
	for (int i = 0; i < c->n_done; i++) {
		const struct oa_db_rewrite *d = &c->done[i];
		memcpy(out + n, stream + at, d->comment_at - at);
		memcpy(out + n + (d->length_at - at), d->length, d->length_len);
		n += d->comment_at - at;
		memcpy(out + n, d->comment, OA_DB_COMMENT_LEN);
		n += OA_DB_COMMENT_LEN;
		at = d->comment_at;
	}
	memcpy(out + n, stream + at, len - at);
	return n + len - at;
}

/* The stream written after the login's prefix (written alone first, as
 * clients send it) in writes ending at the cuts: returns how many comments
 * went out, -1 when the wire is not the expected one, something is left
 * owed once the program's bytes all went, or calls kept taking none. */
static int db_client_run(struct db_client *c, bool mysql, const uint8_t *stream, size_t len,
			 size_t prefix, const size_t *cuts, int n_cuts, size_t kernel_max)
{
	static uint8_t want[sizeof c->wire];
	memset(c, 0, sizeof *c);
	c->mysql = mysql;
	c->kernel_max = kernel_max;
	oa_pg_parser_init(&c->pg, OA_PG_FRONTEND);
	oa_mysql_parser_init(&c->my, OA_MYSQL_CLIENT);
	/* a call that took nothing is repeated; each sent an owed byte at
	 * least, so there are no more of them than owed bytes */
#define DB_CLIENT_STUCK(c) ((c)->calls_took_nothing > ((c)->n_done + 1) * (OA_DB_COMMENT_LEN + 4))
	size_t at = 0;
	for (int k = -1; k <= n_cuts && !DB_CLIENT_STUCK(c); k++) {
		size_t end = k < 0 ? prefix : k < n_cuts ? cuts[k] : len;
		while (at < end && !DB_CLIENT_STUCK(c))
			at += db_client_write(c, stream + at, end - at);
	}
	if (DB_CLIENT_STUCK(c) || c->owed.n)
		return -1;
	size_t n = db_client_expected(c, stream, len, want);
	return c->wire_len == n && memcmp(c->wire, want, n) == 0 ? c->n_done : -1;
}

#endif
