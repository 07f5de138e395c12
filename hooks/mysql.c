/* MySQL and MariaDB spans from socket bytes: the glue between the socket
 * hooks, the protocol parser (src/mysql_parse.h), the query sanitiser
 * (src/sql_sanitize.h) and span records.
 *
 * The server speaks first: a stream connection whose first bytes from the
 * server are an initial handshake (protocol 10; src/conn.c asks detect
 * before the HTTP parsers see them) is followed by a client
 * and a server parser. After a client's SSLRequest both go on inside the
 * TLS session that follows (tls.c feeds its plaintext here, the login
 * first); the compressed protocol ends the tracking.
 *
 * A span covers a command and its whole response (the rows skipped by
 * length): COM_QUERY, COM_STMT_PREPARE and COM_STMT_EXECUTE get one; the
 * other commands the server answers (COM_PING, COM_INIT_DB, ...) only keep
 * the pairing of responses to commands in order. The connected side gets a
 * CLIENT span, the accepted side (a mariadbd connection thread) a SERVER
 * span, timed as Redis's and PostgreSQL's. A query's text is sanitised as it
 * is read (OTLPAUTO_DB_STATEMENT=off: none) and summarised; an execution
 * takes the summary of its statement's PREPARE (the last
 * OA_MYSQL_PREPARED_MAX prepared per connection are remembered), no text.
 * An ERR packet's error code is db.response.status_code and error.type. A
 * SERVER span's parent is the traceparent of a sqlcommenter comment in its
 * query; without one it is a root. A client adds the comment to a COM_QUERY
 * or COM_STMT_PREPARE with OTLPAUTO_DB_PROPAGATION=comment (plan).
 *
 * Spans are correct or absent: anything out of step drops the state and its
 * open spans. Fixed-size state, under the fd's lock. */
#include <string.h>

#include "clock.h"
#include "decimal.h"
#include "net.h"

/* MySQL commands sent and not yet answered that get spans, per connection
 * (clients wait for each response: pipelines are rare); those beyond are
 * counted only. */
#define OA_MYSQL_OPEN_MAX     2
#define OA_MYSQL_QUERY_CAP    512 /* a sanitised query text, NUL included */
#define OA_MYSQL_PREPARED_MAX 4	  /* prepared statements whose summary is kept */

struct oa_mysql_pending {
	struct oa_span_ctx ctx, parent;
	uint64_t start;
	uint8_t command; /* enum oa_mysql_command */
	bool traced;	 /* a query, a prepare or an execution gets a span */
	uint16_t query_len;
	struct oa_sql_summary summary;
	char query[OA_MYSQL_QUERY_CAP];
};

struct oa_mysql_conn {
	struct oa_mysql_parser client, server;
	struct oa_db_client out;
	uint8_t first, count; /* open[] is a ring */
	uint8_t prepared_next;
	bool mariadb; /* the handshake's server version names MariaDB */
	uint8_t database_len;
	char database[63]; /* db.namespace: the login's database, then USE's */
	uint32_t untracked;
	struct oa_mysql_pending open[OA_MYSQL_OPEN_MAX];
	struct {
		uint32_t id; /* 0: none */
		struct oa_sql_summary summary;
	} prepared[OA_MYSQL_PREPARED_MAX];
};

OA_STATE_OF(struct oa_mysql_conn, oa_mysql_state)

extern const struct oa_conn_protocol oa_protocol_mysql; /* registered at the end */

static bool detect(const struct iovec *iov, int iovcnt, size_t n)
{
	uint8_t head[5];
	size_t have = oa_iov_head(iov, iovcnt, n, head, sizeof head);
	return oa_mysql_greeting_start(head, have);
}

static void reset(struct oa_fd *f)
{
	struct oa_mysql_conn *c = oa_mysql_state(f);
	oa_mysql_parser_init(&c->client, OA_MYSQL_CLIENT);
	oa_mysql_parser_init(&c->server, OA_MYSQL_SERVER);
	c->first = c->count = 0;
	c->untracked = 0;
	c->database_len = 0;
	c->prepared_next = 0;
	memset(c->prepared, 0, sizeof c->prepared);
	memset(&c->out, 0, sizeof c->out);
}

static struct oa_mysql_pending *front(struct oa_mysql_conn *c)
{
	return &c->open[c->first];
}

static void pop_front(struct oa_mysql_conn *c)
{
	/* an emptied queue starts over at its first entry: a keep-alive
	 * connection's next exchange reuses the cache lines the last one
	 * warmed (rotating, each went to a cold one) */
	c->first = c->count == 1 ? 0 : (uint8_t)((c->first + 1) % OA_MYSQL_OPEN_MAX);
	c->count--;
}

/* ---- span records */

#define SPAN_PAYLOAD (OA_MYSQL_QUERY_CAP + 512)

/* A client command's duration, sampled or not. */
static void command_metric(const struct oa_fd *f, const struct oa_mysql_pending *cmd, uint64_t end,
			   uint16_t error_code, int err)
{
	char code[OA_U32_DIGITS];
	struct oa_db_metric_attrs attrs = {
	    .system = oa_mysql_state(f)->mariadb ? OA_DB_MARIADB : OA_DB_MYSQL,
	    .error = error_code ? 0 : err,
	    .name_space = oa_mysql_state(f)->database,
	    .name_space_len = oa_mysql_state(f)->database_len,
	    .operation = cmd->summary.operation,
	    .operation_len = strlen(cmd->summary.operation),
	    .collection = cmd->summary.collection,
	    .collection_len = strlen(cmd->summary.collection),
	    .status = code,
	    .status_len = error_code ? oa_u32_decimal(error_code, code) : 0,
	};
	oa_db_metric(f, &attrs, cmd->start, end);
}

/* A command ended: its metric (a client's) and its span. error_code: the
 * ERR packet's, 0 for none; err: the errno that ended a client command
 * without a response. */
static void command_end(struct oa_thread *t, const struct oa_fd *f,
			const struct oa_mysql_pending *cmd, uint64_t end, uint16_t error_code,
			int err)
{
	bool server = f->role == OA_ROLE_SERVER;
	if (!server)
		command_metric(f, cmd, end, error_code, err);
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &cmd->parent, &cmd->ctx,
			       server ? OA_KIND_SERVER : OA_KIND_CLIENT, OA_SCOPE_MYSQL, cmd->start,
			       SPAN_PAYLOAD))
		return;
	char summary[OA_SQL_OPERATION_CAP + OA_SQL_COLLECTION_CAP];
	size_t summary_len = oa_sql_summary_text(&cmd->summary, summary, sizeof summary);
	if (summary_len >= sizeof summary)
		summary_len = sizeof summary - 1;
	if (summary_len)
		oa_payload_text(&w, OA_ITEM_NAME, summary, summary_len);
	else
		oa_payload_text(&w, OA_ITEM_NAME, "mysql", 5);
	oa_payload_attr_static(&w, OA_KEY_DB_SYSTEM_NAME,
			       oa_mysql_state(f)->mariadb ? "mariadb" : "mysql");
	if (oa_mysql_state(f)->database_len)
		oa_payload_attr_str(&w, OA_KEY_DB_NAMESPACE, oa_mysql_state(f)->database,
				    oa_mysql_state(f)->database_len);
	size_t operation_len = strlen(cmd->summary.operation);
	if (operation_len)
		oa_payload_attr_str(&w, OA_KEY_DB_OPERATION_NAME, cmd->summary.operation,
				    operation_len);
	if (cmd->summary.collection[0])
		oa_payload_attr_str(&w, OA_KEY_DB_COLLECTION_NAME, cmd->summary.collection,
				    strlen(cmd->summary.collection));
	if (cmd->query_len)
		oa_payload_attr_str(&w, OA_KEY_DB_QUERY_TEXT, cmd->query, cmd->query_len);
	if (summary_len)
		oa_payload_attr_str(&w, OA_KEY_DB_QUERY_SUMMARY, summary, summary_len);
	if (server) {
		if (f->local_port)
			oa_payload_attr_int(&w, OA_KEY_SERVER_PORT, f->local_port);
		oa_payload_attr_peer(&w, f, OA_KEY_CLIENT_ADDRESS, OA_KEY_CLIENT_PORT);
	} else {
		oa_payload_attr_peer(&w, f, OA_KEY_SERVER_ADDRESS, OA_KEY_SERVER_PORT);
	}
	if (error_code) {
		char code[OA_U32_DIGITS];
		size_t len = oa_u32_decimal(error_code, code);
		oa_payload_attr_str(&w, OA_KEY_DB_RESPONSE_STATUS_CODE, code, len);
		oa_payload_attr_str(&w, OA_KEY_ERROR_TYPE, code, len);
	} else if (err) {
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	}
	oa_net_span_end(t, &w, end, error_code || err);
}

/* ---- events */

static bool answered(uint8_t command)
{
	return command != OA_MYSQL_COM_QUIT && command != OA_MYSQL_COM_STMT_CLOSE &&
	       command != OA_MYSQL_COM_STMT_SEND_LONG_DATA;
}

/* A server command's parent: the traceparent of a comment in its query, as
 * sqlcommenter appends it (read when OTEL_PROPAGATORS has tracecontext). */
static bool server_parent(struct oa_span_ctx *parent, const char *query)
{
	struct oa_span_context remote;
	if (!oa_rt.cfg.propagate_tracecontext ||
	    !oa_sql_find_traceparent(query, strlen(query), OA_SQL_MYSQL, &remote))
		return false;
	memcpy(parent->trace_id, remote.trace_id, 16);
	parent->span_id = oa_span_id_from_bytes(remote.span_id);
	parent->flags = remote.flags & 1;
	parent->remote = true;
	return true;
}

static void command_event(struct oa_thread *t, struct oa_fd *f, const struct oa_mysql_event *ev,
			  uint64_t now)
{
	struct oa_mysql_conn *c = oa_mysql_state(f);
	uint32_t ordinal = c->out.messages++;
	if (!answered(ev->command))
		return;
	if (!oa_mysql_expect_response(&c->server, ev->command)) {
		oa_db_stop(t, f); /* more outstanding than the parser follows */
		return;
	}
	if (c->untracked || c->count == OA_MYSQL_OPEN_MAX) {
		c->untracked++;
		oa_count_untracked_exchange();
		return;
	}
	struct oa_mysql_pending *cmd = &c->open[(c->first + c->count++) % OA_MYSQL_OPEN_MAX];
	cmd->start = now;
	cmd->command = ev->command;
	cmd->query_len = 0;
	cmd->summary.operation[0] = cmd->summary.collection[0] = 0;
	bool query = ev->command == OA_MYSQL_COM_QUERY || ev->command == OA_MYSQL_COM_STMT_PREPARE;
	cmd->traced = (query && ev->text) || ev->command == OA_MYSQL_COM_STMT_EXECUTE;
	if (!cmd->traced)
		return;
	if (f->role == OA_ROLE_SERVER) {
		memset(&cmd->parent, 0, sizeof cmd->parent);
		bool remote = ev->text && server_parent(&cmd->parent, ev->text);
		oa_span_ctx_start(t, remote ? &cmd->parent : NULL, &cmd->ctx);
	} else {
		/* one sent with a comment has the context it names */
		bool carried = oa_db_decided(&c->out, ordinal, &cmd->ctx, &cmd->parent);
		if (!carried) {
			oa_current_parent(t, &cmd->parent);
			oa_span_ctx_start(t, &cmd->parent, &cmd->ctx);
		}
		if (query)
			oa_db_count_comment(carried);
	}
	if (ev->command == OA_MYSQL_COM_STMT_EXECUTE) {
		for (int i = 0; i < OA_MYSQL_PREPARED_MAX; i++)
			if (c->prepared[i].id && c->prepared[i].id == ev->statement_id)
				cmd->summary = c->prepared[i].summary;
		return;
	}
	size_t len = strlen(ev->text);
	/* a prepare's summary names its executions, sampled or not */
	if ((cmd->ctx.flags & 1) || ev->command == OA_MYSQL_COM_STMT_PREPARE ||
	    oa_db_metric_wants_summary(f))
		oa_sql_summarize(ev->text, len, OA_SQL_MYSQL, &cmd->summary);
	if (!(cmd->ctx.flags & 1) || oa_rt.cfg.db_statement == OA_DB_STATEMENT_OFF)
		return; /* sampled out: no span will read it */
	size_t n = oa_sql_sanitize(ev->text, len, OA_SQL_MYSQL, cmd->query, sizeof cmd->query);
	cmd->query_len = (uint16_t)(n < sizeof cmd->query ? n : sizeof cmd->query - 1);
}

static void response_event(struct oa_thread *t, struct oa_fd *f, const struct oa_mysql_event *ev,
			   uint64_t now)
{
	struct oa_mysql_conn *c = oa_mysql_state(f);
	if (ev->command == OA_MYSQL_CONNECT)
		return; /* the login's */
	if (!c->count) {
		if (c->untracked)
			c->untracked--;
		else
			oa_db_stop(t, f); /* a response to no command: out of step */
		return;
	}
	struct oa_mysql_pending *cmd = front(c);
	if (cmd->command == OA_MYSQL_COM_STMT_PREPARE && !ev->error_code && ev->statement_id) {
		c->prepared[c->prepared_next].id = ev->statement_id;
		c->prepared[c->prepared_next].summary = cmd->summary;
		c->prepared_next = (uint8_t)((c->prepared_next + 1) % OA_MYSQL_PREPARED_MAX);
	}
	if (cmd->traced)
		command_end(t, f, cmd, now, ev->error_code, 0);
	pop_front(c);
}

static void handshake_response(struct oa_mysql_conn *c, const struct oa_mysql_event *ev)
{
	oa_mysql_set_client_capabilities(&c->server, ev->capabilities);
	size_t len = ev->database ? strlen(ev->database) : 0;
	if (len > sizeof c->database)
		len = sizeof c->database;
	if (len)
		memcpy(c->database, ev->database, len);
	c->database_len = (uint8_t)len;
}

static void event(struct oa_thread *t, struct oa_fd *f, const struct oa_mysql_event *ev,
		  uint64_t now)
{
	struct oa_mysql_conn *c = oa_mysql_state(f);
	switch (ev->kind) {
	case OA_MYSQL_HANDSHAKE:
		c->mariadb = ev->text && strstr(ev->text, "MariaDB");
		break;
	case OA_MYSQL_HANDSHAKE_RESPONSE:
		handshake_response(c, ev);
		break;
	case OA_MYSQL_COMMAND:
		/* COM_INIT_DB (USE) changes the namespace: its text is the schema */
		if (ev->command == OA_MYSQL_COM_INIT_DB && ev->text) {
			size_t len = strlen(ev->text);
			c->database_len =
			    (uint8_t)(len < sizeof c->database ? len : sizeof c->database);
			memcpy(c->database, ev->text, c->database_len);
		}
		command_event(t, f, ev, now);
		/* a context decided for it and not taken (the plan misjudged) */
		oa_db_forget(&c->out, c->out.messages - 1);
		break;
	case OA_MYSQL_RESPONSE:
		response_event(t, f, ev, now);
		break;
	case OA_MYSQL_SSL_REQUEST: /* the login comes inside TLS */
		oa_conn_tls_follows(f);
		break;
	default: /* compression from now on, or not the protocol */
		oa_db_stop(t, f);
		break;
	}
}

/* Feeds one piece: the client's packets, or the server's. */
static void feed(struct oa_thread *t, struct oa_fd *f, bool from_client, const uint8_t *data,
		 size_t len, size_t later, uint64_t now)
{
	struct oa_mysql_parser *p =
	    from_client ? &oa_mysql_state(f)->client : &oa_mysql_state(f)->server;
	size_t off = 0;
	while (off < len && oa_db_on(f)) {
		struct oa_mysql_event ev;
		off += oa_mysql_feed(p, data + off, len - off, &ev);
		if (ev.kind == OA_MYSQL_NONE)
			return;
		event(t, f, &ev, now);
	}
}

/* ---- propagation: comments into the client's queries */

static void plan(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		 struct oa_db_plan *plan)
{
	struct oa_mysql_conn *c = oa_mysql_state(f);
	struct oa_mysql_gap gap;
	plan->n = 0;
	if (!oa_mysql_command_gap(&c->client, &gap))
		return;
	/* the commands that get spans, as command_event will see them */
	uint32_t count = c->count, untracked = c->untracked;
	uint32_t ordinal = c->out.messages + (gap.in_command ? 1 : 0);
	int room = oa_db_room(&c->out);
	const uint8_t *at;
	size_t len;
	for (size_t pos = gap.bytes; oa_iov_at(iov, iovcnt, pos, &at, &len);) {
		struct oa_db_frame fr;
		if (!oa_mysql_frame(at, len, gap.attributes, &fr))
			return; /* a header cut by the iovec's or the write's end */
		if (fr.continued)
			return; /* the next packet continues this one */
		pos += fr.size;
		if (!fr.command)
			continue;
		uint32_t this_ordinal = ordinal++;
		if (!answered(fr.type))
			continue;
		if (untracked || count == OA_MYSQL_OPEN_MAX) {
			untracked++;
			continue;
		}
		count++;
		if (!fr.comment_at || plan->n == room)
			continue;
		int i = plan->n++;
		oa_current_parent(t, &plan->parent[i]);
		oa_span_ctx_start(t, &plan->parent[i], &plan->ctx[i]);
		oa_db_comment_of(&plan->ctx[i], plan->comment[i]);
		plan->rw[i] = (struct oa_db_rewrite){.length_at = pos - fr.size + fr.length_at,
						     .comment_at = pos - fr.size + fr.comment_at,
						     .length_len = fr.length_len,
						     .comment = plan->comment[i]};
		memcpy(plan->rw[i].length, fr.length, sizeof fr.length);
		plan->ordinal[i] = this_ordinal;
	}
}

/* Reading ended (err 0: the peer closed) or the socket is closed: the
 * commands the client sent that the failure left without a response end
 * (error.type from err). */
static void end(struct oa_thread *t, struct oa_fd *f, int err)
{
	struct oa_mysql_conn *c = oa_mysql_state(f);
	uint64_t now = oa_now();
	for (; err && f->role == OA_ROLE_CLIENT && c->count; pop_front(c))
		if (front(c)->traced)
			command_end(t, f, front(c), now, 0, err);
}

static struct oa_db_client *client(struct oa_fd *f)
{
	return &oa_mysql_state(f)->out;
}

static const struct oa_db_protocol db = {
    .protocol = &oa_protocol_mysql,
    .reset = reset,
    .feed = feed,
    .end = end,
    .plan = plan,
    .client = client,
};

OA_DB_PROTOCOL(mysql, db, .detect = detect, .server_first = true, .order = 3);
