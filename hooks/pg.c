/* PostgreSQL spans from socket bytes: the glue between the socket hooks, the
 * protocol parser (src/pg_parse.h), the query sanitiser (src/sql_sanitize.h)
 * and span records.
 *
 * A stream connection whose first bytes from the client are a StartupMessage
 * (protocol 3), an SSLRequest or a GSSENCRequest (src/conn.c asks detect
 * before the HTTP parsers see them) is followed by a frontend
 * and a backend parser. An SSLRequest answered 'N' stays plaintext; one
 * answered 'S' goes on inside the TLS session that follows (tls.c feeds
 * its plaintext here, the startup message first); GSSAPI's 'G' ends the
 * tracking: the rest is encrypted.
 *
 * A span covers one query cycle, the unit the server ends with
 * ReadyForQuery: a simple Query, or the extended-protocol messages (Parse,
 * Bind, Describe, Execute...) up to their Sync. The connected side (psql,
 * pgbench, libpq) gets a CLIENT span from the send of the cycle's first
 * message to the read that brought its ReadyForQuery; the accepted side (a
 * postgres backend, forked by the postmaster after the accept) a SERVER
 * span from the read of its first message to the send of its
 * ReadyForQuery. A cycle's query text is its Query's or its first Parse's;
 * a cycle that binds a named statement prepared earlier has none and the
 * statement's summary (the last OA_PG_PREPARED_MAX named per connection
 * are remembered), else the operation of its first CommandComplete tag.
 * Its first ErrorResponse's SQLSTATE is its status code.
 *
 * The query text is sanitised as it is read (literals become '?'), never
 * kept raw; OTLPAUTO_DB_STATEMENT=off records none. A SERVER span's parent
 * is the traceparent of a sqlcommenter comment in its query; without one it
 * is a root. A client adds the comment to a cycle's Query or first Parse
 * with OTLPAUTO_DB_PROPAGATION=comment (plan, db.c's oa_db_send):
 * the cycle's span then has the context the comment names.
 *
 * Spans are correct or absent: anything out of step (bytes passed by
 * unseen, a parser giving up) drops the state and its open spans. State is
 * fixed-size (OA_PG_OPEN_MAX cycles awaiting ReadyForQuery; those beyond get
 * no span). Under the fd's lock. */
#include <string.h>

#include "clock.h"
#include "net.h"

/* PostgreSQL query cycles sent and not yet answered by ReadyForQuery that
 * get spans, per connection; cycles beyond them are counted only. */
#define OA_PG_OPEN_MAX	4
#define OA_PG_QUERY_CAP 512 /* a sanitised query text, NUL included */
/* Named prepared statements whose summary is kept, per connection. */
#define OA_PG_PREPARED_MAX 4

struct oa_pg_cycle {
	struct oa_span_ctx ctx, parent;
	uint64_t start;
	bool traced;  /* a Sync alone gets no span */
	bool queried; /* summary and query come from a Query or a Parse */
	bool drawn;   /* ctx is drawn (a server's once its query named a parent, or not) */
	char sqlstate[6];
	uint16_t query_len;
	struct oa_sql_summary summary;
	char query[OA_PG_QUERY_CAP];
};

struct oa_pg_conn {
	struct oa_pg_parser frontend, backend;
	struct oa_db_client out;
	uint8_t first, count; /* open[] is a ring */
	/* The frontend is sending a cycle's extended messages (its Sync has
	 * not come): at open[first + count], or untracked. */
	bool building, building_untracked;
	uint8_t database_len;
	char database[63]; /* db.namespace: the startup's database (else user) */
	uint8_t prepared_next;
	uint32_t untracked;
	struct oa_pg_cycle open[OA_PG_OPEN_MAX];
	struct {
		char name[OA_PG_NAME_CAP]; /* "": none */
		struct oa_sql_summary summary;
	} prepared[OA_PG_PREPARED_MAX];
};

OA_STATE_OF(struct oa_pg_conn, oa_pg_state)

extern const struct oa_conn_protocol oa_protocol_pg; /* registered at the end */

static bool detect(const struct iovec *iov, int iovcnt, size_t n)
{
	uint8_t head[8];
	size_t have = oa_iov_head(iov, iovcnt, n, head, sizeof head);
	return oa_pg_frontend_start(head, have);
}

static void reset(struct oa_fd *f)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	oa_pg_parser_init(&c->frontend, OA_PG_FRONTEND);
	oa_pg_parser_init(&c->backend, OA_PG_BACKEND);
	c->first = c->count = 0;
	c->building = c->building_untracked = false;
	c->untracked = 0;
	c->database_len = 0;
	c->prepared_next = 0;
	memset(&c->out, 0, sizeof c->out);
	for (int i = 0; i < OA_PG_PREPARED_MAX; i++)
		c->prepared[i].name[0] = 0;
}

static struct oa_pg_cycle *slot(struct oa_pg_conn *c, uint8_t i)
{
	return &c->open[(c->first + i) % OA_PG_OPEN_MAX];
}

/* ---- span records */

#define SPAN_PAYLOAD (OA_PG_QUERY_CAP + 512)

/* Draws a server cycle's context, once its parent is known. */
static void draw(struct oa_thread *t, struct oa_pg_cycle *cy)
{
	if (cy->drawn)
		return;
	oa_span_ctx_start(t, cy->parent.span_id ? &cy->parent : NULL, &cy->ctx);
	cy->drawn = true;
}

/* A client cycle's duration, sampled or not. */
static void cycle_metric(const struct oa_fd *f, const struct oa_pg_cycle *cy, uint64_t end, int err)
{
	struct oa_db_metric_attrs attrs = {
	    .system = OA_DB_POSTGRESQL,
	    .error = cy->sqlstate[0] ? 0 : err,
	    .name_space = oa_pg_state(f)->database,
	    .name_space_len = oa_pg_state(f)->database_len,
	    .operation = cy->summary.operation,
	    .operation_len = strlen(cy->summary.operation),
	    .collection = cy->summary.collection,
	    .collection_len = strlen(cy->summary.collection),
	    .status = cy->sqlstate,
	    .status_len = cy->sqlstate[0] ? 5 : 0,
	};
	oa_db_metric(f, &attrs, cy->start, end);
}

/* A cycle ended: its metric (a client's) and its span. err: the errno that
 * ended a client cycle without its ReadyForQuery. */
static void cycle_end(struct oa_thread *t, const struct oa_fd *f, struct oa_pg_cycle *cy,
		      uint64_t end, int err)
{
	bool server = f->role == OA_ROLE_SERVER;
	if (!server)
		cycle_metric(f, cy, end, err);
	draw(t, cy);
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &cy->parent, &cy->ctx,
			       server ? OA_KIND_SERVER : OA_KIND_CLIENT, OA_SCOPE_POSTGRESQL,
			       cy->start, SPAN_PAYLOAD))
		return;
	char summary[OA_SQL_OPERATION_CAP + OA_SQL_COLLECTION_CAP];
	size_t summary_len = oa_sql_summary_text(&cy->summary, summary, sizeof summary);
	if (summary_len >= sizeof summary)
		summary_len = sizeof summary - 1;
	size_t operation_len = strlen(cy->summary.operation);
	if (summary_len)
		oa_payload_text(&w, OA_ITEM_NAME, summary, summary_len);
	else
		oa_payload_text(&w, OA_ITEM_NAME, "postgresql", 10);
	oa_payload_attr_static(&w, OA_KEY_DB_SYSTEM_NAME, "postgresql");
	if (oa_pg_state(f)->database_len)
		oa_payload_attr_str(&w, OA_KEY_DB_NAMESPACE, oa_pg_state(f)->database,
				    oa_pg_state(f)->database_len);
	if (operation_len)
		oa_payload_attr_str(&w, OA_KEY_DB_OPERATION_NAME, cy->summary.operation,
				    operation_len);
	if (cy->summary.collection[0])
		oa_payload_attr_str(&w, OA_KEY_DB_COLLECTION_NAME, cy->summary.collection,
				    strlen(cy->summary.collection));
	if (cy->query_len)
		oa_payload_attr_str(&w, OA_KEY_DB_QUERY_TEXT, cy->query, cy->query_len);
	if (summary_len)
		oa_payload_attr_str(&w, OA_KEY_DB_QUERY_SUMMARY, summary, summary_len);
	if (server) {
		if (f->local_port)
			oa_payload_attr_int(&w, OA_KEY_SERVER_PORT, f->local_port);
		oa_payload_attr_peer(&w, f, OA_KEY_CLIENT_ADDRESS, OA_KEY_CLIENT_PORT);
	} else {
		oa_payload_attr_peer(&w, f, OA_KEY_SERVER_ADDRESS, OA_KEY_SERVER_PORT);
	}
	if (cy->sqlstate[0]) {
		oa_payload_attr_str(&w, OA_KEY_DB_RESPONSE_STATUS_CODE, cy->sqlstate, 5);
		oa_payload_attr_str(&w, OA_KEY_ERROR_TYPE, cy->sqlstate, 5);
	} else if (err) {
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	}
	oa_net_span_end(t, &w, end, cy->sqlstate[0] || err);
}

/* ---- cycles */

/* A cycle starts at the back of open[], or untracked past it (while any
 * untracked cycle is unanswered, new ones join them: ReadyForQuery messages
 * keep matching in order). */
/* type: the message that begins it. */
static void cycle_begin(struct oa_thread *t, struct oa_fd *f, uint8_t type, uint64_t now)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	c->building = true;
	c->building_untracked = c->untracked || c->count == OA_PG_OPEN_MAX;
	if (c->building_untracked) {
		oa_count_untracked_exchange();
		return;
	}
	struct oa_pg_cycle *cy = slot(c, c->count);
	cy->start = now;
	cy->traced = true;
	cy->queried = false;
	cy->query_len = 0;
	cy->sqlstate[0] = 0;
	cy->summary.operation[0] = cy->summary.collection[0] = 0;
	if (f->role == OA_ROLE_SERVER) {
		/* the context is drawn once the query is read (it may name a
		 * parent: server_parent), or when the span is written */
		memset(&cy->parent, 0, sizeof cy->parent);
		cy->drawn = false;
	} else {
		/* a Query or Parse sent with a comment has the context it names */
		bool carried = oa_db_decided(&c->out, c->out.messages, &cy->ctx, &cy->parent);
		if (!carried) {
			oa_current_parent(t, &cy->parent);
			oa_span_ctx_start(t, &cy->parent, &cy->ctx);
		}
		if (type == 'Q' || type == 'P')
			oa_db_count_comment(carried);
		cy->drawn = true;
	}
}

/* The cycle being built, NULL when it is untracked. */
static struct oa_pg_cycle *building(struct oa_pg_conn *c)
{
	return c->building && !c->building_untracked ? slot(c, c->count) : NULL;
}

/* A server cycle's parent: the traceparent of a comment in its query, as
 * sqlcommenter appends it (read when OTEL_PROPAGATORS has tracecontext). */
static void server_parent(struct oa_pg_cycle *cy, const char *query, size_t len)
{
	struct oa_span_context remote;
	if (!oa_rt.cfg.propagate_tracecontext ||
	    !oa_sql_find_traceparent(query, len, OA_SQL_POSTGRESQL, &remote))
		return;
	memcpy(cy->parent.trace_id, remote.trace_id, 16);
	cy->parent.span_id = oa_span_id_from_bytes(remote.span_id);
	cy->parent.flags = remote.flags & 1;
	cy->parent.remote = true;
}

/* The cycle's query: sanitised now (the raw text lives until the next feed). */
static void cycle_query(struct oa_thread *t, const struct oa_fd *f, struct oa_pg_cycle *cy,
			const char *query)
{
	if (!cy || cy->queried)
		return;
	cy->queried = true;
	size_t len = strlen(query);
	if (f->role == OA_ROLE_SERVER) {
		server_parent(cy, query, len);
		draw(t, cy);
	}
	bool sampled = cy->ctx.flags & 1;
	if (!sampled && !oa_db_metric_wants_summary(f))
		return; /* no span or metric will read them */
	oa_sql_summarize(query, len, OA_SQL_POSTGRESQL, &cy->summary);
	if (!sampled || oa_rt.cfg.db_statement == OA_DB_STATEMENT_OFF)
		return;
	size_t n = oa_sql_sanitize(query, len, OA_SQL_POSTGRESQL, cy->query, sizeof cy->query);
	cy->query_len = (uint16_t)(n < sizeof cy->query ? n : sizeof cy->query - 1);
}

/* A named statement's Parse: its summary is kept for the cycles that bind it
 * later (pgbench -M prepared), replacing an older one of the same name. */
static void statement_parsed(struct oa_pg_conn *c, const char *name, const char *query)
{
	size_t len = strlen(name);
	if (!len || len >= OA_PG_NAME_CAP)
		return;
	int at = c->prepared_next;
	for (int i = 0; i < OA_PG_PREPARED_MAX; i++)
		if (strcmp(c->prepared[i].name, name) == 0)
			at = i;
	if (at == c->prepared_next)
		c->prepared_next = (uint8_t)((c->prepared_next + 1) % OA_PG_PREPARED_MAX);
	memcpy(c->prepared[at].name, name, len + 1);
	oa_sql_summarize(query, strlen(query), OA_SQL_POSTGRESQL, &c->prepared[at].summary);
}

/* A Bind of a named statement in a cycle without query text: the
 * statement's summary, no text. */
static void statement_bound(struct oa_pg_conn *c, struct oa_pg_cycle *cy, const char *name)
{
	if (!cy || cy->queried || !name[0])
		return;
	for (int i = 0; i < OA_PG_PREPARED_MAX; i++) {
		if (strcmp(c->prepared[i].name, name) == 0) {
			cy->queried = true;
			cy->summary = c->prepared[i].summary;
			return;
		}
	}
}

/* The cycle is complete on the frontend's side: a ReadyForQuery ends it. */
static void cycle_sent(struct oa_pg_conn *c)
{
	if (c->building_untracked)
		c->untracked++;
	else
		c->count++;
	c->building = c->building_untracked = false;
}

/* ---- events */

static void startup_event(struct oa_pg_conn *c, const struct oa_pg_event *ev)
{
	/* the database defaults to the user's name */
	const char *database = ev->database && ev->database[0] ? ev->database : ev->user;
	size_t len = database ? strlen(database) : 0;
	if (len > sizeof c->database)
		len = sizeof c->database;
	memcpy(c->database, database, len);
	c->database_len = (uint8_t)len;
}

static void frontend_message(struct oa_thread *t, struct oa_fd *f, const struct oa_pg_event *ev,
			     uint64_t now)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	switch (ev->type) {
	case 'Q': /* Query, FunctionCall: a cycle of their own (one joins an unsynced one) */
	case 'F':
		if (!c->building)
			cycle_begin(t, f, ev->type, now);
		if (ev->query)
			cycle_query(t, f, building(c), ev->query);
		cycle_sent(c);
		break;
	case 'P': /* Parse, Bind, Describe, Execute, Close: the extended cycle */
	case 'B':
	case 'D':
	case 'E':
	case 'C':
		if (!c->building)
			cycle_begin(t, f, ev->type, now);
		if (ev->query)
			cycle_query(t, f, building(c), ev->query);
		if (ev->type == 'P' && ev->query && ev->statement)
			statement_parsed(c, ev->statement, ev->query);
		if (ev->type == 'B' && ev->statement)
			statement_bound(c, building(c), ev->statement);
		break;
	case 'S': /* Sync: a ReadyForQuery comes, also for a Sync alone (no span) */
		if (!c->building) {
			cycle_begin(t, f, ev->type, now);
			if (building(c))
				building(c)->traced = false;
		}
		cycle_sent(c);
		break;
	default: /* Flush, Terminate, COPY data, password messages */
		break;
	}
	/* a context decided for it and not taken (the plan misjudged) */
	oa_db_forget(&c->out, c->out.messages);
	c->out.messages++;
}

static void frontend_event(struct oa_thread *t, struct oa_fd *f, const struct oa_pg_event *ev,
			   uint64_t now)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	switch (ev->kind) {
	case OA_PG_MESSAGE:
		frontend_message(t, f, ev, now);
		break;
	case OA_PG_STARTUP:
		startup_event(c, ev);
		break;
	case OA_PG_SSL_REQUEST:
	case OA_PG_GSSENC_REQUEST:
		oa_pg_expect_encryption_answer(&c->backend);
		break;
	default: /* a CancelRequest's connection, or not the protocol */
		oa_db_stop(t, f);
		break;
	}
}

/* The cycle the backend answers: the oldest open one (an error may come
 * before the client's Sync: the one being built). */
static struct oa_pg_cycle *answered(struct oa_pg_conn *c)
{
	if (c->count)
		return slot(c, 0);
	return c->untracked ? NULL : building(c);
}

static void backend_message(struct oa_thread *t, struct oa_fd *f, const struct oa_pg_event *ev,
			    uint64_t now)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	struct oa_pg_cycle *cy = answered(c);
	switch (ev->type) {
	case 'E': /* ErrorResponse: the cycle's first SQLSTATE */
		if (cy && !cy->sqlstate[0] && ev->sqlstate && strlen(ev->sqlstate) == 5)
			memcpy(cy->sqlstate, ev->sqlstate, 6);
		break;
	case 'C': /* CommandComplete: the operation of a cycle without query text */
		if (cy && !cy->summary.operation[0] && ev->tag) {
			size_t len = strcspn(ev->tag, " ");
			if (len < sizeof cy->summary.operation) {
				memcpy(cy->summary.operation, ev->tag, len);
				cy->summary.operation[len] = 0;
			}
		}
		break;
	case 'Z': /* ReadyForQuery: the oldest cycle ends (the startup's has none) */
		if (c->count) {
			cy = slot(c, 0);
			if (cy->traced)
				cycle_end(t, f, cy, now, 0);
			c->first = (uint8_t)((c->first + 1) % OA_PG_OPEN_MAX);
			c->count--;
		} else if (c->untracked) {
			c->untracked--;
		}
		break;
	default:
		break;
	}
}

static void backend_event(struct oa_thread *t, struct oa_fd *f, const struct oa_pg_event *ev,
			  uint64_t now)
{
	switch (ev->kind) {
	case OA_PG_MESSAGE:
		backend_message(t, f, ev, now);
		break;
	case OA_PG_ENCRYPTION_REFUSED: /* 'N': the connection stays plaintext */
		break;
	case OA_PG_TLS: /* 'S': the startup message comes inside TLS */
		oa_conn_tls_follows(f);
		break;
	default: /* GSSAPI-encrypted from now on, or not the protocol */
		oa_db_stop(t, f);
		break;
	}
}

/* Feeds one piece: the frontend's messages, or the backend's. */
static void feed(struct oa_thread *t, struct oa_fd *f, bool frontend, const uint8_t *data,
		 size_t len, size_t later, uint64_t now)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	struct oa_pg_parser *p = frontend ? &c->frontend : &c->backend;
	size_t off = 0;
	while (off < len && oa_db_on(f)) {
		struct oa_pg_event ev;
		off += oa_pg_feed(p, data + off, len - off, &ev);
		if (ev.kind == OA_PG_NONE)
			return;
		if (frontend)
			frontend_event(t, f, &ev, now);
		else
			backend_event(t, f, &ev, now);
	}
}

/* ---- propagation: comments into the client's queries */

static void plan(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		 struct oa_db_plan *plan)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	uint32_t gap;
	plan->n = 0;
	if (!oa_pg_message_gap(&c->frontend, &gap))
		return;
	/* the cycles the messages begin, as frontend_message will see them */
	bool building = c->building, building_untracked = c->building_untracked;
	uint32_t count = c->count, untracked = c->untracked;
	uint32_t ordinal = c->out.messages + (gap ? 1 : 0);
	int room = oa_db_room(&c->out);
	const uint8_t *at;
	size_t len;
	for (size_t pos = gap; oa_iov_at(iov, iovcnt, pos, &at, &len); ordinal++) {
		struct oa_db_frame fr;
		if (!oa_pg_frame(at, len, &fr))
			return; /* a header cut by the iovec's or the write's end */
		/* as frontend_message: these begin a cycle or join it */
		bool cycle = fr.type && strchr("QFPBDECS", fr.type);
		bool begins = cycle && !building && fr.type != 'S';
		if (cycle && !building) {
			building_untracked = untracked || count == OA_PG_OPEN_MAX;
			building = true;
		}
		if (begins && !building_untracked && fr.comment_at && plan->n < room) {
			int i = plan->n++;
			oa_current_parent(t, &plan->parent[i]);
			oa_span_ctx_start(t, &plan->parent[i], &plan->ctx[i]);
			oa_db_comment_of(&plan->ctx[i], plan->comment[i]);
			plan->rw[i] = (struct oa_db_rewrite){.length_at = pos + fr.length_at,
							     .comment_at = pos + fr.comment_at,
							     .length_len = fr.length_len,
							     .comment = plan->comment[i]};
			memcpy(plan->rw[i].length, fr.length, sizeof fr.length);
			plan->ordinal[i] = ordinal;
		}
		if (fr.type == 'Q' || fr.type == 'F' || fr.type == 'S') {
			if (building_untracked)
				untracked++;
			else
				count++;
			building = false;
		}
		pos += fr.size;
	}
}

/* Reading ended (err 0: the peer closed) or the socket is closed: the
 * cycles the client sent that the failure left without an answer end
 * (error.type from err). */
static void end(struct oa_thread *t, struct oa_fd *f, int err)
{
	struct oa_pg_conn *c = oa_pg_state(f);
	uint64_t now = oa_now();
	for (; err && f->role == OA_ROLE_CLIENT && c->count; c->count--) {
		struct oa_pg_cycle *cy = slot(c, 0);
		if (cy->traced)
			cycle_end(t, f, cy, now, err);
		c->first = (uint8_t)((c->first + 1) % OA_PG_OPEN_MAX);
	}
}

static struct oa_db_client *client(struct oa_fd *f)
{
	return &oa_pg_state(f)->out;
}

static const struct oa_db_protocol db = {
    .protocol = &oa_protocol_pg,
    .reset = reset,
    .feed = feed,
    .end = end,
    .plan = plan,
    .client = client,
};

OA_DB_PROTOCOL(pg, db, .detect = detect, .server_first = false, .order = 2);
