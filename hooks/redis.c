/* Redis spans from socket bytes: the glue between the socket hooks, the RESP
 * parser (src/resp_parse.h) and span records.
 *
 * A stream connection whose first bytes from the client are a RESP array
 * (src/conn.c asks detect before the HTTP parsers see them) is
 * followed by a command parser and a reply parser. A connected socket
 * writes commands: a CLIENT span per command, from the write of its first
 * byte to the read that completed its reply. An accepted socket reads them:
 * a SERVER span per command, from the read of its first byte to the write
 * that completed its reply. Replies answer commands in order (pipelines,
 * MULTI's QUEUED replies); pushes (RESP3 '>', pub/sub messages once a
 * SUBSCRIBE was seen) answer none. A SUBSCRIBE-family command ends at the
 * last of its per-channel replies; an UNSUBSCRIBE-family command, whose
 * reply count only the server knows, drops the connection's state.
 *
 * Redis has no channel for trace context: a SERVER span is a root, and the
 * CLIENT span it answers is in another trace, linked by time only.
 * db.query.text is not recorded: a command's arguments are user data.
 *
 * Spans are correct or absent: anything out of step (bytes passed by
 * unseen, a reply without a command, a parser giving up) drops the state
 * and its open spans. State is fixed-size (OA_REDIS_OPEN_MAX commands
 * awaiting replies; those beyond get no span). Under the fd's lock. */
#include <string.h>

#include "clock.h"
#include "decimal.h"
#include "net.h"

/* Redis commands (a pipeline) whose replies have not come and that get
 * spans, per connection; commands beyond them are counted only (no span). */
#define OA_REDIS_OPEN_MAX 32

struct oa_redis_command {
	struct oa_span_ctx ctx, parent;
	uint64_t start;
	int32_t db;	   /* the SELECTed database it ran in; -1: unknown */
	int32_t select_to; /* SELECT: the index it asks for; RESET, HELLO: 0; else -1 */
	uint32_t replies;  /* replies still due (a SUBSCRIBE gets one per channel) */
	char name[OA_RESP_NAME_CAP];
};

struct oa_redis_conn {
	struct oa_resp_parser commands, replies;
	uint64_t command_start; /* ticks of the current command's first byte; 0: none yet */
	int32_t db;		/* the SELECTed database; a connection starts in 0 */
	uint8_t first, count;	/* open[] is a ring */
	/* Commands after open[]'s, with no span: while any is unanswered, new
	 * commands join them, so that replies keep matching in order. */
	uint32_t untracked;
	struct oa_redis_command open[OA_REDIS_OPEN_MAX];
};

OA_STATE_OF(struct oa_redis_conn, oa_redis_state)

extern const struct oa_conn_protocol oa_protocol_redis; /* registered at the end */

static bool detect(const struct iovec *iov, int iovcnt, size_t n)
{
	uint8_t head[2];
	size_t have = oa_iov_head(iov, iovcnt, n, head, sizeof head);
	return oa_resp_commands_start(head, have);
}

static void reset(struct oa_fd *f)
{
	struct oa_redis_conn *r = oa_redis_state(f);
	oa_resp_parser_init(&r->commands, OA_RESP_COMMANDS);
	oa_resp_parser_init(&r->replies, OA_RESP_REPLIES);
	r->command_start = 0;
	r->db = 0;
	r->first = r->count = 0;
	r->untracked = 0;
}

static struct oa_redis_command *front(struct oa_redis_conn *r)
{
	return &r->open[r->first];
}

static void pop_front(struct oa_redis_conn *r)
{
	/* an emptied queue starts over at its first entry: a keep-alive
	 * connection's next exchange reuses the cache lines the last one
	 * warmed (rotating, each went to a cold one) */
	r->first = r->count == 1 ? 0 : (uint8_t)((r->first + 1) % OA_REDIS_OPEN_MAX);
	r->count--;
}

/* ---- span records */

#define SPAN_PAYLOAD 512

/* A client command's duration, sampled or not. */
static void command_metric(const struct oa_fd *f, const struct oa_redis_command *c, uint64_t end,
			   const char *error, int err)
{
	char db[OA_U32_DIGITS];
	struct oa_db_metric_attrs attrs = {
	    .system = OA_DB_REDIS,
	    .error = error ? 0 : err,
	    .operation = c->name,
	    .operation_len = strlen(c->name),
	    .status = error,
	    .status_len = error ? strlen(error) : 0,
	};
	if (c->db >= 0) {
		attrs.name_space = db;
		attrs.name_space_len = oa_u32_decimal((uint32_t)c->db, db);
	}
	oa_db_metric(f, &attrs, c->start, end);
}

/* A command ended: its metric (a client's) and its span. error: the reply's
 * error prefix ("WRONGTYPE"); NULL when it is no error. err: the errno that
 * ended a client command without a reply. */
static void command_end(struct oa_thread *t, const struct oa_fd *f,
			const struct oa_redis_command *c, uint64_t end, const char *error, int err)
{
	bool server = f->role == OA_ROLE_SERVER;
	if (!server)
		command_metric(f, c, end, error, err);
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &c->parent, &c->ctx, server ? OA_KIND_SERVER : OA_KIND_CLIENT,
			       OA_SCOPE_REDIS, c->start, SPAN_PAYLOAD))
		return;
	size_t name_len = strlen(c->name);
	oa_payload_text(&w, OA_ITEM_NAME, name_len ? c->name : "redis", name_len ? name_len : 5);
	oa_payload_attr_static(&w, OA_KEY_DB_SYSTEM_NAME, "redis");
	if (name_len)
		oa_payload_attr_str(&w, OA_KEY_DB_OPERATION_NAME, c->name, name_len);
	if (c->db >= 0) {
		char db[OA_U32_DIGITS];
		oa_payload_attr_str(&w, OA_KEY_DB_NAMESPACE, db, oa_u32_decimal(c->db, db));
	}
	if (server) {
		if (f->local_port)
			oa_payload_attr_int(&w, OA_KEY_SERVER_PORT, f->local_port);
		oa_payload_attr_peer(&w, f, OA_KEY_CLIENT_ADDRESS, OA_KEY_CLIENT_PORT);
	} else {
		oa_payload_attr_peer(&w, f, OA_KEY_SERVER_ADDRESS, OA_KEY_SERVER_PORT);
	}
	if (error) {
		size_t len = strlen(error);
		oa_payload_attr_str(&w, OA_KEY_DB_RESPONSE_STATUS_CODE, error, len);
		oa_payload_attr_str(&w, OA_KEY_ERROR_TYPE, error, len);
	} else if (err) {
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	}
	oa_net_span_end(t, &w, end, error || err);
}

/* ---- events */

/* The argument of SELECT as a database index; -1 when it is not one. */
static int32_t select_index(const struct oa_resp_event *ev)
{
	if (ev->argc != 2 || !ev->key[0] || (ev->flags & OA_RESP_TRUNCATED))
		return -1;
	int32_t v = 0;
	for (const char *p = ev->key; *p; p++) {
		if (*p < '0' || *p > '9' || v > 100000)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

static bool is_unsubscribe(const char *name)
{
	return strcmp(name, "UNSUBSCRIBE") == 0 || strcmp(name, "PUNSUBSCRIBE") == 0 ||
	       strcmp(name, "SUNSUBSCRIBE") == 0;
}

static void command_event(struct oa_thread *t, struct oa_fd *f, const struct oa_resp_event *ev,
			  uint64_t now)
{
	struct oa_redis_conn *r = oa_redis_state(f);
	uint64_t start = r->command_start ? r->command_start : now;
	if (ev->flags & OA_RESP_SUBSCRIBES)
		oa_resp_expect_pubsub(&r->replies);
	else if (is_unsubscribe(ev->name)) {
		oa_db_stop(t, f);
		return;
	}
	if (r->untracked || r->count == OA_REDIS_OPEN_MAX) {
		r->untracked++;
		oa_count_untracked_exchange();
		return;
	}
	struct oa_redis_command *c = &r->open[(r->first + r->count++) % OA_REDIS_OPEN_MAX];
	c->start = start;
	c->db = r->db;
	memcpy(c->name, ev->name, sizeof c->name);
	c->replies = (ev->flags & OA_RESP_SUBSCRIBES) && ev->argc > 1 ? ev->argc - 1 : 1;
	c->select_to = -1;
	if (strcmp(ev->name, "SELECT") == 0)
		c->select_to = select_index(ev);
	else if (strcmp(ev->name, "RESET") == 0 || strcmp(ev->name, "HELLO") == 0)
		c->select_to = 0;
	if (f->role == OA_ROLE_SERVER) {
		memset(&c->parent, 0, sizeof c->parent);
		oa_span_ctx_start(t, NULL, &c->ctx);
	} else {
		oa_current_parent(t, &c->parent);
		oa_span_ctx_start(t, &c->parent, &c->ctx);
	}
}

static void reply_event(struct oa_thread *t, struct oa_fd *f, const struct oa_resp_event *ev,
			uint64_t now)
{
	struct oa_redis_conn *r = oa_redis_state(f);
	if (!r->count) {
		if (r->untracked)
			r->untracked--;
		else
			oa_db_stop(t, f); /* a reply to no command: out of step */
		return;
	}
	struct oa_redis_command *c = front(r);
	if (--c->replies)
		return;
	bool is_error = ev->type == OA_RESP_ERROR || ev->type == OA_RESP_BLOB_ERROR;
	if (c->select_to >= 0 && !is_error)
		r->db = c->select_to;
	command_end(t, f, c, now, is_error ? (ev->text && ev->text[0] ? ev->text : "ERR") : NULL,
		    0);
	pop_front(r);
}

/* Feeds one piece: commands from the client, replies from the server. */
static void feed(struct oa_thread *t, struct oa_fd *f, bool commands, const uint8_t *data,
		 size_t len, size_t later, uint64_t now)
{
	struct oa_redis_conn *r = oa_redis_state(f);
	struct oa_resp_parser *p = commands ? &r->commands : &r->replies;
	if (commands && !r->command_start)
		r->command_start = now;
	size_t off = 0;
	while (off < len && oa_db_on(f)) {
		struct oa_resp_event ev;
		off += oa_resp_feed(p, data + off, len - off, &ev);
		switch (ev.kind) {
		case OA_RESP_NONE:
			return;
		case OA_RESP_COMMAND:
			command_event(t, f, &ev, now);
			/* bytes after it in this call start the next command */
			r->command_start = off < len || later ? now : 0;
			break;
		case OA_RESP_REPLY:
			reply_event(t, f, &ev, now);
			break;
		case OA_RESP_PUSH:
			break;
		default:
			oa_db_stop(t, f);
			return;
		}
	}
}

/* Reading ended (err 0: the peer closed) or the socket is closed: commands
 * the client sent that the failure left without a reply end (error.type
 * from err). */
static void end(struct oa_thread *t, struct oa_fd *f, int err)
{
	struct oa_redis_conn *r = oa_redis_state(f);
	uint64_t now = oa_now();
	for (; err && f->role == OA_ROLE_CLIENT && r->count; pop_front(r))
		command_end(t, f, front(r), now, NULL, err);
}

static const struct oa_db_protocol db = {
    .protocol = &oa_protocol_redis,
    .reset = reset,
    .feed = feed,
    .end = end,
};

OA_DB_PROTOCOL(redis, db, .detect = detect, .order = 1);
