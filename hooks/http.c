/* HTTP/1.x spans from socket bytes: the glue between the socket hooks, the
 * parser (src/http_parse.h) and span records.
 *
 * Each connection has a request parser and a response parser. An accepted
 * socket reads requests and writes responses: a SERVER span runs from the
 * read that brought a request's first byte to the write that completed its
 * response; its context is pushed on the reading thread while the request is
 * handled (popped when the response ends, or replaced by that thread's next
 * request). A connected socket writes requests and reads responses: a CLIENT
 * span runs from the write of the request's first byte to the read that
 * completed its response. An event loop interleaves requests on one thread:
 * its pushed context is popped when it goes back to epoll_wait, so work done
 * later for one request never runs in another's context (it runs in none);
 * a read on a request's connection pushes it again, and a client connection
 * opened while a request was handled gives its first request that request's
 * context (a proxy's upstream request, written after epoll_wait).
 *
 * Client requests without a traceparent get "traceparent" (and the handled
 * request's "tracestate") header lines, inserted before the blank line ending
 * their head; a request passing on the handled request's traceparent (a
 * proxy) gets its value rewritten in place to name the CLIENT span. The
 * application's view stays exact: a dry run on a copy of the request parser
 * finds where heads end and where traceparent values are in the bytes it
 * writes; they go out with the lines inserted or the value replaced
 * (sendmsg); the return value counts only the application's bytes the
 * kernel took (a replaced byte counts as the one it replaces); inserted or
 * replacing bytes the kernel did not take are kept and sent before or
 * instead of the application's next bytes. A value not complete in a write
 * is held: its bytes are counted as sent and go out with the next write,
 * once its line shows whether it is rewritten.
 *
 * Spans are correct or absent: anything out of step (bytes passed by unseen,
 * a response without a request, a parser giving up) drops the connection's
 * HTTP state and its open spans. Under the fd's lock except the client dry
 * run, which only the (single) writer touches. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>

#include "clock.h"
#include "decimal.h"
#include "net.h"
#include "real.h"

OA_REAL(ssize_t, sendmsg, (int a0, const struct msghdr *a1, int a2), -1)
OA_REAL(int, epoll_wait, (int a0, struct epoll_event *a1, int a2, int a3), -1)
OA_REAL(int, epoll_pwait, (int a0, struct epoll_event *a1, int a2, int a3, const sigset_t *a4), -1)
OA_REAL(int, epoll_pwait2,
	(int a0, struct epoll_event *a1, int a2, const struct timespec *a3, const sigset_t *a4), -1)

/* The SERVER span this thread pushed as its context, if any. */
struct pushed_server {
	uint64_t span_id; /* 0: none */
	uint64_t remote_parent_id;
	uint32_t level;
	uint8_t trace_id[16];
	uint8_t tracestate_len;
	char tracestate[OA_HTTP_TRACESTATE_CAP];
};
static __thread struct pushed_server pushed __attribute__((tls_model("initial-exec")));
/* Whether this thread's last request served was sampled out: its next one
 * is parsed lean, as most likely to be sampled out too (always_off, a low
 * ratio), and parsed again in full if it is not. */
static __thread bool served_unsampled __attribute__((tls_model("initial-exec")));

/* Events per parser call; more are fetched by calling again. */
#define EVENTS_MAX 4
/* Heads ending in one write that can get inserted lines. */
#define PLAN_HEADS 4

static bool propagating(void)
{
	return oa_rt.cfg.propagate_tracecontext;
}

/* ---- context pushed while a request is handled */

static void unpush(struct oa_thread *t, uint64_t span_id)
{
	if (!span_id || pushed.span_id != span_id)
		return;
	if (t->ctx_depth == pushed.level && t->ctx[pushed.level].span_id == span_id)
		oa_ctx_pop(t);
	pushed.span_id = 0;
}

static void push(struct oa_thread *t, const struct oa_http_exchange *ex)
{
	unpush(t, pushed.span_id);
	if (!oa_ctx_push(t, &ex->ctx))
		return;
	pushed.span_id = ex->ctx.span_id;
	pushed.remote_parent_id = ex->parent.remote ? ex->parent.span_id : 0;
	pushed.level = t->ctx_depth;
	memcpy(pushed.trace_id, ex->ctx.trace_id, 16);
	/* W3C: a tracestate goes with the traceparent it came with, or not at all */
	pushed.tracestate_len = ex->parent.remote ? ex->head.tracestate_len : 0;
	memcpy(pushed.tracestate, ex->head.tracestate, pushed.tracestate_len);
}

/* The thread is back in its event loop: whatever request it was handling
 * waits for another event, and the next code it runs may be another's. */
static void leave_request(void)
{
	if (__builtin_expect(!pushed.span_id, 1) || oa_tls.guard || oa_tls.internal)
		return;
	struct oa_thread *t = oa_tls.state;
	if ((uintptr_t)t > 1)
		unpush(t, pushed.span_id);
}

OA_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	leave_request();
	return oa_real_epoll_wait()(epfd, events, max, timeout);
}

OA_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
			  const sigset_t *mask)
{
	leave_request();
	return oa_real_epoll_pwait()(epfd, events, max, timeout, mask);
}

OA_EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int max,
			   const struct timespec *timeout, const sigset_t *mask)
{
	leave_request();
	return oa_real_epoll_pwait2()(epfd, events, max, timeout, mask);
}

/* ---- connection state */

void oa_http_conn_start(struct oa_thread *t, struct oa_fd *f)
{
	struct oa_http_conn *h = oa_http_state(f);
	oa_http_parser_init(&h->requests, OA_HTTP_REQUESTS);
	oa_http_parser_init(&h->responses, OA_HTTP_RESPONSES);
	h->request_start = 0;
	h->first = h->count = 0;
	h->untracked = 0;
	h->out_decided = false;
	h->inject_len = h->inject_sent = 0;
	h->held = false;
	h->rewrite_len = h->rewrite_sent = 0;
	h->opener_set = t && pushed.span_id;
	if (h->opener_set) {
		oa_current_parent(t, &h->opener_parent);
		h->opener_remote_parent = pushed.remote_parent_id;
		h->opener_tracestate_len = pushed.tracestate_len;
		memcpy(h->opener_tracestate, pushed.tracestate, pushed.tracestate_len);
	}
	__atomic_store_n(&f->proto, &oa_conn_opening, __ATOMIC_RELEASE);
}

/* The writer's state (parser, decided context, unsent inserted bytes) is left
 * alone: a writer may be using it, and inserted bytes begun must be ended. */
void oa_http_conn_stop(struct oa_thread *t, struct oa_fd *f)
{
	struct oa_http_conn *h = oa_http_state(f);
	for (uint8_t i = 0; i < h->count; i++)
		unpush(t, h->open[(h->first + i) % OA_HTTP_OPEN_MAX].ctx.span_id);
	h->count = 0;
	h->untracked = 0;
	__atomic_store_n(&f->proto, NULL, __ATOMIC_RELEASE);
}

static struct oa_http_exchange *front(struct oa_http_conn *h)
{
	return &h->open[h->first];
}

static void pop_front(struct oa_http_conn *h)
{
	/* an emptied queue starts over at its first entry: a keep-alive
	 * connection's next exchange reuses the cache lines the last one
	 * warmed (rotating, each went to a cold one) */
	h->first = h->count == 1 ? 0 : (uint8_t)((h->first + 1) % OA_HTTP_OPEN_MAX);
	h->count--;
}

/* ---- span records */

#define SPAN_PAYLOAD 1024
#define URL_MAX	     384

static const char *span_name(const struct oa_http_head *head)
{
	return head->method == OA_HTTP_OTHER ? "HTTP" : oa_http_method_name(head->method);
}

static void put_method(struct oa_payload *w, const struct oa_http_head *head)
{
	const char *name = span_name(head);
	oa_payload_text(w, OA_ITEM_NAME, name, strlen(name));
	oa_payload_attr_static(w, OA_KEY_HTTP_REQUEST_METHOD, oa_http_method_name(head->method));
	if (head->method == OA_HTTP_OTHER) {
		static const char key[] = "http.request.method_original";
		oa_payload_attr_str_k(w, OA_KEY_CUSTOM, key, sizeof key - 1, head->method_original,
				      head->method_original_len);
	}
	if (head->version_minor <= 1)
		oa_payload_attr_static(w, OA_KEY_NETWORK_PROTOCOL_VERSION,
				       head->version_minor ? "1.1" : "1.0");
}

static void put_status(struct oa_payload *w, uint16_t status, bool is_error)
{
	if (!status)
		return;
	oa_payload_attr_int(w, OA_KEY_HTTP_RESPONSE_STATUS_CODE, status);
	if (is_error) {
		char code[OA_U32_DIGITS];
		oa_payload_attr_str(w, OA_KEY_ERROR_TYPE, code, oa_u32_decimal(status, code));
	}
}

static void put_peer(struct oa_payload *w, const struct oa_fd *f, enum oa_key address_key,
		     enum oa_key port_key)
{
	if (!f->peer_len)
		return;
	/* the exporter formats it, off the application's thread */
	if (f->peer.sa.sa_family == AF_INET || f->peer.sa.sa_family == AF_INET6) {
		oa_payload_attr_sockaddr(w, address_key, &f->peer.sa, f->peer_len);
		oa_payload_attr_int(w, port_key, oa_sockaddr_port(&f->peer.sa));
		return;
	}
	/* a Unix socket's path too; an unnamed socket (no path, or an empty
	 * abstract name) has none */
	size_t path_len = f->peer_len - offsetof(struct sockaddr_un, sun_path);
	if (f->peer.sa.sa_family == AF_UNIX && f->peer_len > offsetof(struct sockaddr_un, sun_path) &&
	    (f->peer.un.sun_path[0] || path_len > 1))
		oa_payload_attr_sockaddr(w, address_key, &f->peer.sa, f->peer_len);
}

static const char *url_scheme(const struct oa_fd *f)
{
	return f->tls.session ? "https" : "http";
}

static void put_tls(struct oa_payload *w, const struct oa_fd *f)
{
	static const char version_key[] = "tls.protocol.version", cipher_key[] = "tls.cipher";
	if (!f->tls.session)
		return;
	size_t len = strlen(f->tls.version);
	if (len)
		oa_payload_attr_str_k(w, OA_KEY_CUSTOM, version_key, sizeof version_key - 1,
				      f->tls.version, len);
	len = strlen(f->tls.cipher);
	if (len)
		oa_payload_attr_str_k(w, OA_KEY_CUSTOM, cipher_key, sizeof cipher_key - 1,
				      f->tls.cipher, len);
}

/* The tracestate that came with the traceparent a SERVER span continues. */
static void put_trace_state(struct oa_payload *w, const struct oa_http_exchange *ex)
{
	if (ex->parent.remote && ex->head.tracestate_len)
		oa_payload_text(w, OA_ITEM_TRACE_STATE, ex->head.tracestate,
				ex->head.tracestate_len);
}

static void server_span(struct oa_thread *t, const struct oa_fd *f,
			const struct oa_http_exchange *ex, uint64_t end)
{
	oa_http_metric(f, ex, end, 0, NULL);
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &ex->parent, &ex->ctx, OA_KIND_SERVER, OA_SCOPE_HTTP,
			       ex->start, SPAN_PAYLOAD))
		return;
	const struct oa_http_head *head = &ex->head;
	put_method(&w, head);
	oa_payload_attr_str(&w, OA_KEY_URL_PATH, head->path, head->path_len);
	if (head->flags & OA_HTTP_HAS_QUERY) {
		char query[2 * OA_HTTP_QUERY_CAP];
		size_t n = oa_http_redact_query(head->query, head->query_len,
						oa_rt.cfg.redact_query, query, sizeof query);
		oa_payload_attr_str(&w, OA_KEY_URL_QUERY, query,
				    n < sizeof query ? n : sizeof query - 1);
	}
	oa_payload_attr_static(&w, OA_KEY_URL_SCHEME, url_scheme(f));
	put_tls(&w, f);
	struct oa_host_port host;
	if (oa_split_host_port(head->host, head->host_len, &host))
		oa_payload_attr_str(&w, OA_KEY_SERVER_ADDRESS, host.name, host.name_len);
	else if (f->tls.server_name[0])
		oa_payload_attr_str(&w, OA_KEY_SERVER_ADDRESS, f->tls.server_name,
				    strlen(f->tls.server_name));
	if (f->local_port)
		oa_payload_attr_int(&w, OA_KEY_SERVER_PORT, f->local_port);
	put_peer(&w, f, OA_KEY_CLIENT_ADDRESS, OA_KEY_CLIENT_PORT);
	if (head->user_agent_len)
		oa_payload_attr_str(&w, OA_KEY_USER_AGENT_ORIGINAL, head->user_agent,
				    head->user_agent_len);
	bool is_error = ex->status >= 500;
	put_status(&w, ex->status, is_error);
	put_trace_state(&w, ex);
	oa_net_span_end(t, &w, end, is_error);
}

_Static_assert(sizeof((struct oa_tls_conn *)0)->server_name <
		   sizeof((union oa_sockaddr *)0)->un.sun_path,
	       "a server name fits where a peer's address goes");

static void client_span(struct oa_thread *t, const struct oa_fd *f,
			const struct oa_http_exchange *ex, uint64_t end, int err,
			const char *error_type)
{
	oa_http_metric(f, ex, end, err, error_type);
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &ex->parent, &ex->ctx, OA_KIND_CLIENT, OA_SCOPE_HTTP,
			       ex->start, SPAN_PAYLOAD))
		return;
	const struct oa_http_head *head = &ex->head;
	put_method(&w, head);
	/* Without a usable Host, the name the TLS client sent (SNI) or the
	 * peer's address names the server. */
	char peer[sizeof f->peer.un.sun_path + 2] = "";
	struct oa_host_port host;
	if (!oa_split_host_port(head->host, head->host_len, &host)) {
		if (f->tls.server_name[0])
			memcpy(peer, f->tls.server_name, strlen(f->tls.server_name) + 1);
		else if (f->peer_len)
			oa_sockaddr_text(&f->peer.sa, f->peer_len, peer, sizeof peer);
		host.name = peer;
		host.name_len = strlen(peer);
		host.port = 0;
	}
	uint16_t port = host.port;
	const char *scheme = head->scheme_len ? head->scheme : url_scheme(f);
	bool https = strcmp(scheme, "https") == 0;
	if (!port)
		port = (head->flags & OA_HTTP_ABSOLUTE_FORM) ? (https ? 443 : 80)
							     : oa_sockaddr_port(&f->peer.sa);
	char url[URL_MAX];
	struct oa_http_url parts = {
	    .scheme = scheme,
	    .host = head->host_len ? head->host : peer,
	    .port = port,
	    .path = head->path,
	    .query = (head->flags & OA_HTTP_HAS_QUERY) ? head->query : NULL,
	    .redact = oa_rt.cfg.redact_query,
	};
	size_t url_len = oa_http_url_full(&parts, url, sizeof url);
	oa_payload_attr_str(&w, OA_KEY_URL_FULL, url,
			    url_len < sizeof url ? url_len : sizeof url - 1);
	if (host.name_len)
		oa_payload_attr_str(&w, OA_KEY_SERVER_ADDRESS, host.name, host.name_len);
	if (port)
		oa_payload_attr_int(&w, OA_KEY_SERVER_PORT, port);
	put_peer(&w, f, OA_KEY_NETWORK_PEER_ADDRESS, OA_KEY_NETWORK_PEER_PORT);
	put_tls(&w, f);
	bool is_error = ex->status >= 400 || err;
	put_status(&w, ex->status, ex->status >= 400);
	if (error_type)
		oa_payload_attr_str(&w, OA_KEY_ERROR_TYPE, error_type, strlen(error_type));
	else if (err)
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	oa_net_span_end(t, &w, end, is_error);
}

/* ---- contexts of new exchanges */

/* What one send decided for the heads ending in its bytes, in order, and
 * for the one still open at its end. */
struct head_plan {
	bool decided;  /* ctx and parent hold the request's context */
	bool from_out; /* ... the one decided by an earlier send (h->out_*) */
	/* its rewritten traceparent began in held bytes: owed whatever the
	 * kernel takes now */
	bool committed;
	int insert; /* its inserted lines or rewritten traceparent in the plan's inserts, or -1 */
	struct oa_span_ctx ctx, parent;
};

struct send_plan {
	int n_heads, n_ins;
	bool continuation;	  /* ins[0] is the unsent rest of earlier inserted lines */
	bool was_held;		  /* ... and those are held application bytes */
	int rewriting;		  /* the insert carrying the rest of a rewritten value, or -1 */
	size_t total;		  /* the application's bytes */
	size_t hold_at;		  /* application bytes from here on are held (SIZE_MAX: none) */
	bool hold_more;		  /* ... after those held before: nothing goes out */
	const char *held_rewrite; /* what the held bytes become, when rewritten */
	size_t held_rewrite_len;
	struct head_plan heads[PLAN_HEADS];
	struct oa_insert ins[PLAN_HEADS + 2];
	char lines[PLAN_HEADS][OA_INJECT_MAX];
};

/* Where a client request written now comes from: the request that opened
 * its connection, for the first one (an event loop may have left that
 * request's context since), else the thread's context. */
struct origin {
	struct oa_span_ctx parent;
	uint64_t remote_parent; /* of the handled request: a traceparent it came with */
	uint8_t tracestate_len;
	const char *tracestate;
};

static void client_origin(struct oa_thread *t, const struct oa_http_conn *h, struct origin *o)
{
	if (h->opener_set) {
		o->parent = h->opener_parent;
		o->remote_parent = h->opener_remote_parent;
		o->tracestate_len = h->opener_tracestate_len;
		o->tracestate = h->opener_tracestate;
		return;
	}
	oa_current_parent(t, &o->parent);
	bool in_request = pushed.span_id && memcmp(pushed.trace_id, o->parent.trace_id, 16) == 0;
	o->remote_parent = in_request ? pushed.remote_parent_id : 0;
	o->tracestate_len = in_request ? pushed.tracestate_len : 0;
	o->tracestate = pushed.tracestate;
}

static void new_client_ctx(struct oa_thread *t, const struct origin *o, struct oa_span_ctx *parent,
			   struct oa_span_ctx *ctx)
{
	*parent = o->parent;
	oa_span_ctx_start(t, parent, ctx);
}

/* A request that came with its own traceparent: that names the CLIENT span,
 * unless it is the one the handled request came with (a proxy passing it
 * on), which names another process's span. */
static bool reused_client_ctx(const struct origin *o, const struct oa_http_head *head,
			      struct oa_span_ctx *parent, struct oa_span_ctx *ctx)
{
	if (!(head->flags & OA_HTTP_TRACEPARENT_VALID))
		return false;
	uint64_t id = oa_span_id_from_bytes(head->parent.span_id);
	if (id == o->remote_parent)
		return false;
	memcpy(ctx->trace_id, head->parent.trace_id, 16);
	ctx->span_id = id;
	ctx->flags = head->parent.flags & 1;
	ctx->remote = false;
	*parent = o->parent;
	if (memcmp(parent->trace_id, ctx->trace_id, 16) != 0)
		memset(parent, 0, sizeof *parent);
	return true;
}

static void server_ctx(struct oa_thread *t, struct oa_http_exchange *ex)
{
	const struct oa_http_head *head = &ex->head;
	memset(&ex->parent, 0, sizeof ex->parent);
	if (propagating() && (head->flags & OA_HTTP_TRACEPARENT_VALID)) {
		memcpy(ex->parent.trace_id, head->parent.trace_id, 16);
		ex->parent.span_id = oa_span_id_from_bytes(head->parent.span_id);
		ex->parent.flags = head->parent.flags & 1;
		ex->parent.remote = true;
		oa_span_ctx_start(t, &ex->parent, &ex->ctx);
	} else {
		oa_span_ctx_start(t, NULL, &ex->ctx);
	}
}

/* ---- feeding the parsers */

static bool is_server(const struct oa_fd *f)
{
	return f->role == OA_ROLE_SERVER;
}

struct feed {
	struct oa_thread *t;
	struct oa_fd *f;
	uint64_t now;
	struct send_plan *plan; /* client sends: the dry run's decisions */
	int heads_seen;		/* request MESSAGE_BEGINs so far in this feed */
};

/* The context of a client request whose head just ended; ex NULL for an
 * untracked one, which only uses up its place among the decisions. */
static void client_exchange_ctx(struct feed *fc, struct oa_http_exchange *ex)
{
	struct oa_http_conn *h = oa_http_state(fc->f);
	int j = fc->heads_seen++;
	const struct head_plan *hp = fc->plan && j < fc->plan->n_heads ? &fc->plan->heads[j] : NULL;
	if (!ex) {
		if ((hp && hp->from_out) || (!hp && j == 0))
			h->out_decided = false;
	} else if (hp && hp->decided) {
		ex->ctx = hp->ctx;
		ex->parent = hp->parent;
		if (hp->from_out)
			h->out_decided = false;
	} else if (j == 0 && h->out_decided) {
		ex->ctx = h->out_ctx;
		ex->parent = h->out_parent;
		h->out_decided = false;
	} else {
		struct origin o;
		client_origin(fc->t, h, &o);
		if (!propagating() || !reused_client_ctx(&o, &ex->head, &ex->parent, &ex->ctx))
			new_client_ctx(fc->t, &o, &ex->parent, &ex->ctx);
	}
	/* only the connection's first request comes from its opener */
	h->opener_set = false;
}

/* A server request's exchange from its head (data: the bytes fed, in which
 * a lean head lies whole); false when its head cannot be had. */
static bool server_exchange(struct feed *fc, struct oa_http_exchange *ex,
			    const struct oa_http_event *ev, const uint8_t *data)
{
	bool lean = ev->head->flags & OA_HTTP_LEAN;
	if (lean)
		oa_http_lean_head_copy(&ex->head, ev->head);
	else
		oa_http_head_copy(&ex->head, ev->head);
	server_ctx(fc->t, ex);
	bool sampled = ex->ctx.flags & 1;
	served_unsampled = !sampled;
	/* the span needs all the head says */
	if (lean && sampled &&
	    !oa_http_parse_head(data + ev->offset - ev->head_len, ev->head_len, &ex->head))
		return false;
	push(fc->t, ex);
	return true;
}

static void request_begun(struct feed *fc, const struct oa_http_event *ev, const uint8_t *data)
{
	struct oa_fd *f = fc->f;
	struct oa_http_conn *h = oa_http_state(f);
	enum oa_http_method method = (enum oa_http_method)ev->head->method;
	/* Beyond the parser's queue a response is framed as a GET's: wrong for
	 * HEAD and CONNECT only. */
	if (!oa_http_expect_response(&h->responses, method) &&
	    (method == OA_HTTP_HEAD || method == OA_HTTP_CONNECT)) {
		oa_http_conn_stop(fc->t, f);
		return;
	}
	if (h->untracked || h->count == OA_HTTP_OPEN_MAX) {
		h->untracked++;
		oa_count_untracked_exchange();
		if (f->role == OA_ROLE_CLIENT)
			client_exchange_ctx(fc, NULL);
		return;
	}
	struct oa_http_exchange *ex = &h->open[(h->first + h->count++) % OA_HTTP_OPEN_MAX];
	ex->start = h->request_start ? h->request_start : fc->now;
	ex->status = 0;
	if (f->role == OA_ROLE_SERVER) {
		if (!server_exchange(fc, ex, ev, data))
			oa_http_conn_stop(fc->t, f);
	} else {
		oa_http_head_copy(&ex->head, ev->head);
		client_exchange_ctx(fc, ex);
	}
}

static void response_event(struct feed *fc, const struct oa_http_event *ev)
{
	struct oa_fd *f = fc->f;
	struct oa_http_conn *h = oa_http_state(f);
	if (ev->kind == OA_HTTP_GAVE_UP || (!h->count && !h->untracked)) {
		/* a tunnel after a 101 or CONNECT ends HTTP here; its span is sent */
		oa_http_conn_stop(fc->t, f);
		return;
	}
	if (!h->count) {
		if (ev->kind == OA_HTTP_MESSAGE_END)
			h->untracked--;
		return;
	}
	struct oa_http_exchange *ex = front(h);
	ex->status = ev->status;
	if (ev->kind != OA_HTTP_MESSAGE_END)
		return;
	uint64_t end = oa_now();
	if (f->role == OA_ROLE_SERVER) {
		server_span(fc->t, f, ex, end);
		unpush(fc->t, ex->ctx.span_id);
	} else {
		client_span(fc->t, f, ex, end, 0, NULL);
	}
	pop_front(h);
}

static void request_event(struct feed *fc, const struct oa_http_event *ev, const uint8_t *data,
			  bool more)
{
	struct oa_http_conn *h = oa_http_state(fc->f);
	switch (ev->kind) {
	case OA_HTTP_MESSAGE_BEGIN:
		request_begun(fc, ev, data);
		break;
	case OA_HTTP_MESSAGE_END:
		/* bytes after it in this feed start the next request */
		h->request_start = more ? fc->now : 0;
		break;
	default:
		oa_http_conn_stop(fc->t, fc->f);
		break;
	}
}

/* Feeds one piece (data NULL: unseen bytes); `later` bytes follow it. */
static void feed_piece(struct feed *fc, bool requests, const uint8_t *data, size_t len,
		       size_t later)
{
	struct oa_http_conn *h = oa_http_state(fc->f);
	struct oa_http_parser *p = requests ? &h->requests : &h->responses;
	struct oa_http_event ev[EVENTS_MAX];
	if (requests && !h->request_start && len)
		h->request_start = fc->now;
	if (requests && is_server(fc->f))
		oa_http_set_lean(p, served_unsampled);
	size_t off = 0;
	for (;;) {
		/* a response head to a request sampled out is parsed lean: only
		 * its status and framing are read, for the metric and the next
		 * exchange */
		if (!requests && is_server(fc->f))
			oa_http_set_lean(p, h->count && !(front(h)->ctx.flags & 1));
		const uint8_t *piece = data ? data + off : NULL;
		size_t n = oa_http_feed(p, piece, len - off, ev, EVENTS_MAX);
		for (size_t i = 0; i < n; i++) {
			if (requests)
				request_event(fc, &ev[i], piece, off + ev[i].offset < len || later);
			else
				response_event(fc, &ev[i]);
			if (!oa_http_on(fc->f))
				return;
		}
		if (!oa_http_feed_again(ev, n, EVENTS_MAX, len - off))
			return;
		off += ev[n - 1].offset;
	}
}

/* Feeds the first n bytes of iov, or n unseen bytes when iov is NULL. */
static void feed(struct feed *fc, bool requests, const struct iovec *iov, int iovcnt, size_t n)
{
	if (!iov) {
		feed_piece(fc, requests, NULL, n, 0);
		return;
	}
	for (int i = 0; i < iovcnt && n && oa_http_on(fc->f); i++) {
		size_t len = iov[i].iov_len < n ? iov[i].iov_len : n;
		n -= len;
		if (len)
			feed_piece(fc, requests, iov[i].iov_base, len, n);
	}
}

void oa_http_received(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
		      int iovcnt, size_t n)
{
	struct feed fc = {.t = t, .f = f, .now = oa_now()};
	feed(&fc, is_server(f), iov, iovcnt, n);
	/* Reading a request's connection is handling that request again (an
	 * event loop back from epoll_wait with more of its body, say). */
	struct oa_http_conn *h = oa_http_state(f);
	if (is_server(f) && oa_http_on(f) && h->count) {
		const struct oa_http_exchange *latest =
		    &h->open[(h->first + h->count - 1) % OA_HTTP_OPEN_MAX];
		if (pushed.span_id != latest->ctx.span_id)
			push(t, latest);
	}
}

/* The parser's times are the feed's (start is a database's). */
void oa_http_sent(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		  size_t n, uint64_t start)
{
	struct feed fc = {.t = t, .f = f, .now = oa_now()};
	feed(&fc, !is_server(f), iov, iovcnt, n);
}

void oa_http_read_end_why(struct oa_thread *t, int fd, struct oa_fd *f, int err,
			  const char *error_type)
{
	struct oa_http_conn *h = oa_http_state(f);
	struct oa_http_event ev;
	if (is_server(f)) {
		/* no more requests; a half-closed client still gets its responses */
		if (err)
			oa_http_conn_stop(t, f);
		else
			oa_http_close(&h->requests, &ev);
		return;
	}
	struct feed fc = {.t = t, .f = f, .now = oa_now()};
	if (!err && oa_http_close(&h->responses, &ev))
		response_event(&fc, &ev);
	/* requests the failure left without a response */
	for (; err && oa_http_on(f) && h->count; pop_front(h))
		client_span(t, f, front(h), fc.now, err, error_type);
	if (oa_http_on(f))
		oa_http_conn_stop(t, f);
}

void oa_http_read_end(struct oa_thread *t, int fd, struct oa_fd *f, int err)
{
	oa_http_read_end_why(t, fd, f, err, NULL);
}

void oa_http_write_end(struct oa_thread *t, int fd, struct oa_fd *f)
{
	struct oa_http_conn *h = oa_http_state(f);
	struct oa_http_event ev;
	if (!is_server(f)) {
		oa_http_close(&h->requests, &ev);
		return;
	}
	struct feed fc = {.t = t, .f = f, .now = oa_now()};
	if (oa_http_close(&h->responses, &ev))
		response_event(&fc, &ev);
	if (oa_http_on(f))
		oa_http_conn_stop(t, f);
}

/* ---- client sends */

/* A span's context as a traceparent carries it. */
static void wire_context(const struct oa_span_ctx *ctx, struct oa_span_context *out)
{
	memcpy(out->trace_id, ctx->trace_id, 16);
	oa_span_id_to_bytes(ctx->span_id, out->span_id);
	out->flags = ctx->flags & 1;
}

/* As plan_head: a request that will get no span gets no traceparent. */
static bool tls_request_fits(const struct oa_http_conn *h)
{
	return propagating() && !__atomic_load_n(&h->untracked, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&h->count, __ATOMIC_RELAXED) < OA_HTTP_OPEN_MAX;
}

size_t oa_http_tls_lines(struct oa_thread *t, struct oa_fd *f, char lines[OA_INJECT_MAX])
{
	struct oa_http_conn *h = oa_http_state(f);
	if (!tls_request_fits(h))
		return 0;
	struct origin o;
	client_origin(t, h, &o);
	new_client_ctx(t, &o, &h->out_parent, &h->out_ctx);
	h->out_decided = true;
	struct oa_span_context sc;
	wire_context(&h->out_ctx, &sc);
	return oa_inject_format(&sc, o.tracestate, o.tracestate_len, lines);
}

bool oa_http_tls_rewrite(struct oa_thread *t, struct oa_fd *f, const struct oa_http_tp_field *tp,
			 char value[OA_TRACEPARENT_LEN + 1])
{
	struct oa_http_conn *h = oa_http_state(f);
	if (!tls_request_fits(h))
		return false;
	struct origin o;
	client_origin(t, h, &o);
	if (oa_span_id_from_bytes(tp->value.span_id) != o.remote_parent)
		return false;
	new_client_ctx(t, &o, &h->out_parent, &h->out_ctx);
	h->out_decided = true;
	struct oa_span_context sc;
	wire_context(&h->out_ctx, &sc);
	oa_traceparent_rewrite(&tp->value, &sc, value);
	return true;
}

/* The head's first traceparent line, whose value starts at application
 * offset `value_at` (negative: in an earlier send). A version-00 value
 * that a proxy passes on (it names the handled request's remote parent)
 * is rewritten in place to name the CLIENT span, which continues that
 * trace; one the request made itself names the CLIENT span already
 * (reused_client_ctx). A value whose line has not ended yet is held. */
static void plan_traceparent(struct oa_thread *t, struct oa_http_conn *h, struct send_plan *pl,
			     struct head_plan *hp, const struct oa_http_tp_field *tp,
			     int64_t value_at)
{
	size_t held = pl->was_held ? h->inject_len : 0;
	/* its first bytes went out as they were */
	if (value_at < 0 && (uint64_t)-value_at != held)
		return;
	if (tp->state == OA_HTTP_TP_OPEN) {
		/* a value begun before this send has its first bytes held */
		size_t from = value_at < 0 ? 0 : (size_t)value_at;
		if ((value_at < 0 ? held : 0) + pl->total - from <= OA_INJECT_MAX) {
			pl->hold_at = from;
			pl->hold_more = value_at < 0;
		}
		return;
	}
	if (tp->state != OA_HTTP_TP_V00)
		return;
	struct origin o;
	client_origin(t, h, &o);
	if (oa_span_id_from_bytes(tp->value.span_id) != o.remote_parent)
		return;
	new_client_ctx(t, &o, &hp->parent, &hp->ctx);
	hp->decided = true;
	struct oa_span_context sc;
	wire_context(&hp->ctx, &sc);
	char *value = pl->lines[pl->n_heads - 1];
	oa_traceparent_rewrite(&tp->value, &sc, value);
	/* only a value that began before this send is in the held bytes */
	size_t in_held = value_at >= 0 ? 0 : held < OA_TRACEPARENT_LEN ? held : OA_TRACEPARENT_LEN;
	if (in_held) {
		pl->held_rewrite = value;
		pl->held_rewrite_len = in_held;
		hp->committed = true;
	}
	if (in_held == OA_TRACEPARENT_LEN)
		return;
	size_t len = OA_TRACEPARENT_LEN - in_held;
	hp->insert = pl->n_ins;
	pl->ins[pl->n_ins++] = (struct oa_insert){.offset = value_at < 0 ? 0 : (size_t)value_at,
						  .bytes = value + in_held,
						  .len = len,
						  .replaces = len};
}

/* A head ends in this send, or is still open at its end: decide its
 * context and whether lines go in before `at` (an application offset;
 * SIZE_MAX: its blank line began in an earlier send, or is not there yet)
 * or its traceparent gets rewritten. head_start is the application offset
 * of its first byte (negative: in an earlier send). */
static void plan_head(struct oa_thread *t, struct oa_http_conn *h, struct send_plan *pl,
		      const struct oa_http_head *head, size_t at, const struct oa_http_tp_field *tp,
		      int64_t head_start)
{
	if (pl->n_heads == PLAN_HEADS)
		return;
	struct head_plan *hp = &pl->heads[pl->n_heads++];
	hp->insert = -1;
	hp->decided = hp->from_out = hp->committed = false;
	if (pl->n_heads == 1 && h->out_decided) {
		hp->decided = hp->from_out = true;
		hp->ctx = h->out_ctx;
		hp->parent = h->out_parent;
		return;
	}
	/* A request that will get no span gets no traceparent either: its
	 * server would name a parent never sent. Racy reads of the queue only
	 * ever see it fuller than it is. */
	bool fits = !__atomic_load_n(&h->untracked, __ATOMIC_RELAXED) &&
		    __atomic_load_n(&h->count, __ATOMIC_RELAXED) + pl->n_heads <= OA_HTTP_OPEN_MAX;
	if (!propagating() || !fits)
		return;
	if (tp->state != OA_HTTP_TP_NONE) {
		plan_traceparent(t, h, pl, hp, tp, head_start + tp->value_at);
		return;
	}
	if (!head || (head->flags & OA_HTTP_HAS_TRACEPARENT) || at == SIZE_MAX)
		return;
	struct origin o;
	client_origin(t, h, &o);
	new_client_ctx(t, &o, &hp->parent, &hp->ctx);
	hp->decided = true;
	struct oa_span_context sc;
	wire_context(&hp->ctx, &sc);
	char *lines = pl->lines[pl->n_heads - 1];
	size_t len = oa_inject_format(&sc, o.tracestate, o.tracestate_len, lines);
	hp->insert = pl->n_ins;
	pl->ins[pl->n_ins++] = (struct oa_insert){.offset = at, .bytes = lines, .len = len};
}

/* The dry run: where do request heads end in these bytes, and where are
 * their traceparent values? */
static void plan_send(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		      struct send_plan *pl)
{
	struct oa_http_conn *h = oa_http_state(f);
	pl->n_heads = pl->n_ins = 0;
	pl->rewriting = -1;
	pl->total = oa_iov_total(iov, iovcnt);
	pl->hold_at = SIZE_MAX;
	pl->hold_more = false;
	pl->held_rewrite = NULL;
	pl->held_rewrite_len = 0;
	pl->continuation = h->inject_sent < h->inject_len;
	/* held bytes go out as they are unless this plan says otherwise */
	pl->was_held = h->held && pl->continuation;
	h->held = false;
	if (pl->continuation)
		pl->ins[pl->n_ins++] = (struct oa_insert){
		    .offset = 0,
		    .bytes = h->inject + h->inject_sent,
		    .len = (size_t)(h->inject_len - h->inject_sent),
		};
	if (h->rewrite_sent < h->rewrite_len && pl->total) {
		size_t rest = (size_t)(h->rewrite_len - h->rewrite_sent);
		size_t len = rest < pl->total ? rest : pl->total;
		pl->rewriting = pl->n_ins;
		pl->ins[pl->n_ins++] = (struct oa_insert){.offset = 0,
							  .bytes = h->rewrite + h->rewrite_sent,
							  .len = len,
							  .replaces = len};
	}
	if (!oa_http_on(f))
		return;
	struct oa_http_parser dry = h->requests;
	struct oa_http_event ev[EVENTS_MAX];
	size_t base = 0;
	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *data = iov[i].iov_base;
		size_t len = iov[i].iov_len, off = 0, n, fed;
		do {
			fed = len - off;
			n = oa_http_feed(&dry, data + off, fed, ev, EVENTS_MAX);
			for (size_t k = 0; k < n; k++) {
				if (ev[k].kind == OA_HTTP_GAVE_UP)
					return;
				if (ev[k].kind != OA_HTTP_MESSAGE_BEGIN)
					continue;
				size_t end = base + off + ev[k].offset;
				size_t at = ev[k].inject_at == SIZE_MAX
						? SIZE_MAX
						: base + off + ev[k].inject_at;
				struct oa_http_tp_field tp = oa_http_traceparent_field(&dry);
				plan_head(t, h, pl, ev[k].head, at, &tp,
					  (int64_t)end - (int64_t)ev[k].head_len);
			}
			if (n)
				off += ev[n - 1].offset;
		} while (oa_http_feed_again(ev, n, EVENTS_MAX, fed));
		base += len;
	}
	uint32_t progress = oa_http_head_progress(&dry);
	if (progress) {
		const struct oa_http_head *ending = oa_http_head_ending(&dry);
		struct oa_http_tp_field tp = oa_http_traceparent_field(&dry);
		plan_head(t, h, pl, ending, ending && base ? base - 1 : SIZE_MAX, &tp,
			  (int64_t)base - (int64_t)progress);
	}
}

/* The first `len` application bytes of iov into out (at most
 * OA_LAYOUT_MAX pieces); the number of pieces, or -1. */
static int iov_prefix(const struct iovec *iov, int iovcnt, size_t len, struct iovec *out)
{
	int n = 0;
	for (int i = 0; i < iovcnt && len; i++) {
		if (n == OA_LAYOUT_MAX)
			return -1;
		size_t take = iov[i].iov_len < len ? iov[i].iov_len : len;
		out[n].iov_base = iov[i].iov_base;
		out[n++].iov_len = take;
		len -= take;
	}
	return n;
}

/* What goes out: the application's bytes (up to the held ones) with the
 * plan's inserts. False when the call goes out unchanged. */
static bool lay_out(struct oa_http_conn *h, const struct oa_send_call *c, struct send_plan *pl,
		    struct oa_layout *l)
{
	/* ancillary data (descriptors) never waits with held bytes */
	if (pl->hold_at != SIZE_MAX && c->op == OA_SEND_SENDMSG && c->msg->msg_controllen)
		pl->hold_at = SIZE_MAX;
	if (pl->hold_at != SIZE_MAX && pl->hold_more) {
		/* they stay held, with these: nothing goes out */
		pl->continuation = false;
		pl->n_ins = 0;
		l->first = l->n = 0;
		return true;
	}
	size_t app_len = pl->hold_at == SIZE_MAX ? pl->total : pl->hold_at;
	const struct iovec *app = c->iov;
	int n_app = c->iovcnt;
	struct iovec prefix[OA_LAYOUT_MAX];
	if (app_len < pl->total) {
		n_app = iov_prefix(c->iov, c->iovcnt, app_len, prefix);
		app = prefix;
	}
	if (n_app >= 0 && (pl->n_ins || pl->hold_at != SIZE_MAX) &&
	    oa_layout_build(l, app, n_app, pl->ins, pl->n_ins)) {
		if (pl->held_rewrite_len)
			memcpy(h->inject, pl->held_rewrite, pl->held_rewrite_len);
		return true;
	}
	/* Too many pieces. A rewrite under way goes on alone: a short send
	 * of the bytes it replaces (with earlier inserted bytes owed). */
	pl->hold_at = SIZE_MAX;
	pl->n_heads = 0;
	if (pl->rewriting < 0)
		return false;
	pl->n_ins = pl->rewriting + 1;
	struct iovec replaced = {c->iov[0].iov_base, pl->ins[pl->rewriting].len};
	return oa_layout_build(l, &replaced, 1, pl->ins, pl->n_ins);
}

/* Sends the layout; returns the application bytes the kernel took, or -1
 * (errno set) when it took none of them. Inserted bytes alone do not answer
 * the application's call: sending goes on (a non-blocking socket then says
 * EAGAIN). */
ssize_t oa_send_layout(const struct oa_send_call *c, struct oa_layout *l, struct oa_insert *ins)
{
	size_t app = 0;
	bool first = true;
	int flags = c->op == OA_SEND_WRITE || c->op == OA_SEND_WRITEV ? 0 : c->flags;
	while (l->first < l->n) {
		struct msghdr m = {0};
		if (c->op == OA_SEND_SENDMSG && first) {
			m.msg_name = c->msg->msg_name;
			m.msg_namelen = c->msg->msg_namelen;
			/* ancillary data goes with the first byte only */
			m.msg_control = c->msg->msg_control;
			m.msg_controllen = c->msg->msg_controllen;
		} else if (c->op == OA_SEND_SENDTO) {
			m.msg_name = (void *)c->to;
			m.msg_namelen = c->to_len;
		}
		m.msg_iov = l->iov + l->first;
		m.msg_iovlen = (size_t)(l->n - l->first);
		ssize_t r = oa_real_sendmsg()(c->fd, &m, flags);
		if (r < 0)
			return app ? (ssize_t)app : -1;
		first = false;
		app += oa_layout_consume(l, (size_t)r, ins);
		if (app || r == 0)
			break;
	}
	return (ssize_t)app;
}

/* The unsent rest of earlier inserted lines, alone. False (errno set) when
 * it did not all go out. */
static bool send_continuation(int fd, int flags, struct oa_fd *f)
{
	struct oa_http_conn *h = oa_http_state(f);
	h->held = false; /* held bytes that go out here go as they are */
	while (h->inject_sent < h->inject_len) {
		struct iovec rest = {h->inject + h->inject_sent,
				     (size_t)(h->inject_len - h->inject_sent)};
		struct msghdr m = {.msg_iov = &rest, .msg_iovlen = 1};
		ssize_t r = oa_real_sendmsg()(fd, &m, flags);
		if (r <= 0)
			return false;
		h->inject_sent = (uint16_t)(h->inject_sent + r);
	}
	h->inject_len = h->inject_sent = 0;
	if (!h->rewrite_len) {
		__atomic_store_n(&f->owing, 0, __ATOMIC_RELEASE);
		oa_fd_kind_clear(fd, OA_FD_OWED);
	}
	return true;
}

/* Inserted header bytes (or held ones, as they are) still owed. The rest
 * of a rewritten value is dropped: the call sends the bytes it would have
 * replaced as they are, and the rest must not land on later ones. */
static bool flush_owed(int fd, struct oa_fd *f)
{
	struct oa_http_conn *h = oa_http_state(f);
	h->rewrite_len = h->rewrite_sent = 0;
	return send_continuation(fd, 0, f);
}

static void set_owed(int fd, struct oa_fd *f)
{
	const struct oa_http_conn *h = oa_http_state(f);
	bool owed = h->inject_len || h->rewrite_len;
	__atomic_store_n(&f->owing, owed ? oa_conn_protocol_id(&oa_conn_opening) : 0,
			 __ATOMIC_RELEASE);
	if (owed)
		oa_fd_kind_set(fd, OA_FD_OWED);
	else
		oa_fd_kind_clear(fd, OA_FD_OWED);
}

/* After a layout was sent: the inserted bytes still owed to the stream, and
 * the rest of a rewritten value still to replace the application's next
 * bytes. OA_FD_OWED keeps every later write coming here until they are
 * out, even after the HTTP state is dropped: a header line cut in two would
 * corrupt the request. */
static void settle_inserts(struct oa_http_conn *h, const struct send_plan *pl)
{
	if (pl->continuation) {
		h->inject_sent = (uint16_t)(h->inject_sent + pl->ins[0].sent);
		if (h->inject_sent >= h->inject_len)
			h->inject_len = h->inject_sent = 0;
	}
	if (pl->rewriting >= 0) {
		h->rewrite_sent = (uint8_t)(h->rewrite_sent + pl->ins[pl->rewriting].sent);
		if (h->rewrite_sent >= h->rewrite_len)
			h->rewrite_len = h->rewrite_sent = 0;
	}
	for (int i = pl->continuation ? 1 : 0; i < pl->n_ins; i++) {
		const struct oa_insert *in = &pl->ins[i];
		if (i == pl->rewriting || in->sent == in->len)
			continue;
		bool committed = false;
		for (int k = 0; k < pl->n_heads; k++)
			committed |= pl->heads[k].insert == i && pl->heads[k].committed;
		if (!in->sent && !committed)
			continue;
		if (in->replaces) {
			memcpy(h->rewrite, in->bytes + in->sent, in->len - in->sent);
			h->rewrite_len = (uint8_t)(in->len - in->sent);
			h->rewrite_sent = 0;
		} else {
			memcpy(h->inject, in->bytes + in->sent, in->len - in->sent);
			h->inject_len = (uint16_t)(in->len - in->sent);
			h->inject_sent = 0;
		}
	}
}

/* The application bytes from pl->hold_at on, kept back after all before
 * them went out. */
static void hold(struct oa_http_conn *h, const struct oa_send_call *c, const struct send_plan *pl)
{
	size_t skip = pl->hold_at, at = h->inject_len;
	for (int i = 0; i < c->iovcnt; i++) {
		size_t len = c->iov[i].iov_len, from = skip < len ? skip : len;
		skip -= from;
		if (from == len)
			continue;
		memcpy(h->inject + at, (const char *)c->iov[i].iov_base + from, len - from);
		at += len - from;
	}
	h->inject_len = (uint16_t)at;
	h->inject_sent = 0;
	h->held = true;
}

/* The request whose lines or rewritten value went out (or are owed) but
 * whose head did not end yet keeps the context they name. */
static void settle_decided(struct oa_http_conn *h, const struct send_plan *pl, int heads_seen)
{
	if (heads_seen >= pl->n_heads)
		return;
	const struct head_plan *hp = &pl->heads[heads_seen];
	if (!hp->decided || hp->from_out ||
	    !(hp->committed || (hp->insert >= 0 && pl->ins[hp->insert].sent)))
		return;
	h->out_decided = true;
	h->out_ctx = hp->ctx;
	h->out_parent = hp->parent;
}

/* Inserts trace context into client requests, feeds what was sent to the
 * parser, and returns what the application's call returns. */
static ssize_t send_call(struct oa_thread *t, struct oa_fd *f, const struct oa_send_call *c,
			 uint8_t kind)
{
	struct oa_http_conn *h = oa_http_state(f);
	int fd = c->fd;
	uint64_t start = oa_now();
	struct send_plan plan;
	struct oa_layout layout;
	bool laid_out = false;
	plan.n_heads = plan.n_ins = 0;
	plan.continuation = false;
	plan.hold_at = SIZE_MAX;
	if (f->role == OA_ROLE_CLIENT) {
		plan_send(t, f, c->iov, c->iovcnt, &plan);
		laid_out = lay_out(h, c, &plan, &layout);
		if (!laid_out) {
			/* nothing changed this time: decisions wait for the heads' ends */
			plan.n_heads = 0;
			int flags =
			    c->op == OA_SEND_WRITE || c->op == OA_SEND_WRITEV ? 0 : c->flags;
			if (plan.continuation && !send_continuation(fd, flags, f))
				return -1;
		}
	}
	ssize_t r = laid_out ? oa_send_layout(c, &layout, plan.ins) : oa_send_real(c);
	int err = errno;
	if (laid_out) {
		settle_inserts(h, &plan);
		/* all before the held bytes went out: the call took them all */
		if (plan.hold_at != SIZE_MAX && layout.first == layout.n) {
			hold(h, c, &plan);
			r = (ssize_t)plan.total;
		}
		set_owed(fd, f);
	}
	if (!oa_fd_lock_slot(t, fd, f)) {
		if (r > 0)
			oa_fd_kind_set(fd, OA_FD_LOST);
		errno = err;
		return r;
	}
	struct feed fc = {.t = t, .f = f, .now = start, .plan = laid_out ? &plan : NULL};
	if (oa_http_on(f) && r > 0)
		feed(&fc, !is_server(f), c->iov, c->iovcnt, (size_t)r);
	if (laid_out)
		settle_decided(h, &plan, fc.heads_seen);
	oa_fd_unlock_slot(fd, f);
	errno = err;
	return r;
}

static void conn_close(struct oa_thread *t, int fd, struct oa_fd *f)
{
	oa_http_write_end(t, fd, f);
	if (oa_http_on(f))
		oa_http_conn_stop(t, f);
}

/* The opening protocol: a connection is HTTP's until its first bytes are
 * another's. Bytes passed by unseen (sendfile, splice) are counted. */
OA_OPENING_PROTOCOL = {
    .name = "http",
    .hooks = OA_HOOK_HTTP,
    .start = oa_http_conn_start,
    .stop = oa_http_conn_stop,
    .received = oa_http_received,
    .read_end = oa_http_read_end,
    .send = send_call,
    .sent = oa_http_sent,
    .write_end = oa_http_write_end,
    .close = conn_close,
    .flush_owed = flush_owed,
    .counts_unseen = true,
};
