/* What the socket, DNS, HTTP, database and file hooks share (hooks/sockets.c,
 * dns.c, http.c, redis.c, pg.c, mysql.c, db.c, files.c): the protocols' states
 * kept in an fd's slot (src/conn.h), the span-writing helpers and the calls
 * between the files. */
#ifndef OTLPAUTO_HOOKS_NET_H
#define OTLPAUTO_HOOKS_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "addr_text.h"
#include "conn.h"
#include "db_inject.h"
#include "dns_names.h"
#include "http_inject.h"
#include "http_parse.h"
#include "ids.h"
#include "metrics.h"
#include "mysql_parse.h"
#include "payload.h"
#include "pg_parse.h"
#include "resp_parse.h"
#include "runtime.h"
#include "sql_sanitize.h"

#define OA_EXPORT __attribute__((visibility("default")))

/* Requests (a pipeline) whose responses have not ended and that get spans,
 * per connection; requests beyond them are counted only (no span). */
#define OA_HTTP_OPEN_MAX OA_HTTP_PENDING_MAX

struct oa_http_exchange {
	struct oa_span_ctx ctx, parent;
	uint64_t start;
	uint16_t status;
	struct oa_http_head head;
};

struct oa_http_conn {
	struct oa_http_parser requests, responses;
	uint64_t request_start; /* ticks of the current request's first byte; 0: none yet */
	uint8_t first, count;	/* open[] is a ring */
	/* Requests after open[]'s, with no span: while any is unanswered, new
	 * requests join them, so that responses keep matching in order. */
	uint32_t untracked;
	/* Client: the context of the request being written, decided when its
	 * header lines were inserted, before its head is complete. */
	bool out_decided;
	struct oa_span_ctx out_ctx, out_parent;
	/* Client: the request being handled when the connection was opened
	 * (its thread may be back in its event loop when the first request is
	 * written): that request's context is the parent of the first. */
	bool opener_set;
	struct oa_span_ctx opener_parent;
	uint64_t opener_remote_parent; /* the span id its traceparent named */
	uint8_t opener_tracestate_len;
	char opener_tracestate[OA_HTTP_TRACESTATE_CAP];
	/* Client: inserted header bytes the kernel has not taken yet; they go
	 * out before any further application byte. `held`: they are instead
	 * the application's bytes of a traceparent value whose line has not
	 * ended, kept back (and counted as sent) until it is known whether
	 * the value gets rewritten. */
	uint16_t inject_len, inject_sent;
	bool held;
	char inject[OA_INJECT_MAX];
	/* Client: the rest of a rewritten traceparent value, which goes out
	 * instead of the application's next bytes (the kernel took part). */
	uint8_t rewrite_len, rewrite_sent;
	char rewrite[OA_TRACEPARENT_LEN];
	struct oa_http_exchange open[OA_HTTP_OPEN_MAX];
};

/* A database client's propagation (OTLPAUTO_DB_PROPAGATION=comment): the
 * contexts decided for query messages that went out with a comment naming
 * them, kept until the parser reads the message (its ordinal among the
 * client's messages) and its span starts with that context. */
#define OA_DB_DECIDED_MAX 4
struct oa_db_client {
	uint32_t messages; /* messages (commands) the client parser has read */
	struct {
		bool set;
		uint32_t ordinal;
		struct oa_span_ctx ctx, parent;
	} decided[OA_DB_DECIDED_MAX];
};

/* The comments one write gets (as many as contexts can be kept). */
struct oa_db_plan {
	int n;
	struct oa_db_rewrite rw[OA_DB_DECIDED_MAX];
	char comment[OA_DB_DECIDED_MAX][OA_DB_COMMENT_LEN + 1];
	uint32_t ordinal[OA_DB_DECIDED_MAX];
	struct oa_span_ctx ctx[OA_DB_DECIDED_MAX], parent[OA_DB_DECIDED_MAX];
};

/* Each protocol's view of the state in a slot (struct oa_fd's `state`). */
#define OA_STATE_OF(type, name)                                                                    \
	_Static_assert(sizeof(type) <= OA_CONN_STATE_SIZE, #type " must fit the fd slot");         \
	static inline type *name(const struct oa_fd *f)                                            \
	{                                                                                          \
		return (type *)(void *)f->state;                                                   \
	}
OA_STATE_OF(struct oa_http_conn, oa_http_state)

/* From the descriptor hooks (fds.c): close of an fd with kind bits (ends
 * what it has open), and a dup2/dup3 that made newfd refer to oldfd's file. */
int oa_tracked_close(int fd, int (*real_close)(int));
void oa_tracked_dup(int oldfd, int newfd);

/* True when the given OTLPAUTO_HOOKS family is on. */
static inline bool oa_family_on(uint32_t family)
{
	return (oa_rt.cfg.hooks & family) != 0;
}

/* ---- HTTP (http.c): the opening protocol of every stream connection, and
 * what TLS sessions' plaintext goes through (tls.c) */

static inline bool oa_http_on(const struct oa_fd *f)
{
	return __atomic_load_n(&f->proto, __ATOMIC_ACQUIRE) == &oa_conn_opening;
}
/* Its callbacks (protocol.h), which tls.c calls for a session's plaintext. */
void oa_http_conn_start(struct oa_thread *t, struct oa_fd *f);
void oa_http_conn_stop(struct oa_thread *t, struct oa_fd *f);
void oa_http_received(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
		      int iovcnt, size_t n);
void oa_http_read_end(struct oa_thread *t, int fd, struct oa_fd *f, int err);
void oa_http_sent(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		  size_t n, uint64_t start);
void oa_http_write_end(struct oa_thread *t, int fd, struct oa_fd *f);
/* As read_end, with why the stream ended: error_type, unless NULL, instead
 * of err (a TLS library's reason). */
void oa_http_read_end_why(struct oa_thread *t, int fd, struct oa_fd *f, int err,
			  const char *error_type);

/* Calls the application's function unchanged (sockets.c). */
ssize_t oa_send_real(const struct oa_send_call *c);
/* Sends layout l for the application's call c (http.c); returns the
 * application bytes the kernel took, or -1 (errno set) when it took none of
 * them. Inserted bytes alone do not answer the call: sending goes on. */
ssize_t oa_send_layout(const struct oa_send_call *c, struct oa_layout *l, struct oa_insert *ins);
/* A client's request over TLS (tls.c), whose head ends in plaintext about
 * to be written: decides its context now (its feed takes it) and writes its
 * header lines into `lines`; returns their length, 0 when it gets none. */
size_t oa_http_tls_lines(struct oa_thread *t, struct oa_fd *f, char lines[OA_INJECT_MAX]);
/* ... and for such a request that passes on the traceparent of the request
 * being handled (a proxy): writes the value that replaces it (naming the
 * CLIENT span); false when it is not that one. */
bool oa_http_tls_rewrite(struct oa_thread *t, struct oa_fd *f, const struct oa_http_tp_field *tp,
			 char value[OA_TRACEPARENT_LEN + 1]);
/* Threads running a TLS library call whose socket is not known yet (tls.c):
 * while not zero, the socket hooks tell the socket they read or write. */
extern uint32_t oa_tls_probes;
void oa_tls_saw(int fd);
/* The exchange's duration into its metric (http_metrics.c); err: the errno
 * that ended a client exchange without a response; error_type, unless NULL,
 * its error.type instead (a TLS library's reason, as on the span). */
void oa_http_metric(const struct oa_fd *f, const struct oa_http_exchange *ex, uint64_t end, int err,
		    const char *error_type);

/* ---- database metrics (db_metrics.c) */

/* A client operation from start to end into db.client.operation.duration,
 * sampled or not: attrs has the database's attributes, the socket's peer
 * adds server.address and server.port. */
void oa_db_metric(const struct oa_fd *f, struct oa_db_metric_attrs *attrs, uint64_t start,
		  uint64_t end);
/* Whether a client operation needs its query summarised for the metric
 * (db.operation.name, db.collection.name) when its span does not. */
static inline bool oa_db_metric_wants_summary(const struct oa_fd *f)
{
	return f->role == OA_ROLE_CLIENT && oa_metrics_enabled();
}

/* ---- the database protocols (redis.c, pg.c, mysql.c; db.c) */

/* What a database protocol's file gives the connection callbacks every
 * database protocol shares (db.c; registered with OA_DB_PROTOCOL). */
struct oa_db_protocol {
	const struct oa_conn_protocol *protocol;
	/* Sets up the state of a connection it takes. */
	void (*reset)(struct oa_fd *f);
	/* One piece of the bytes that went one way (from the client, or from
	 * the server), with `later` more after it in the same call: sent by
	 * this process (now: the ticks before the send began) or read (now:
	 * after the read returned). Stops the state (oa_db_stop) when out of
	 * step. */
	void (*feed)(struct oa_thread *t, struct oa_fd *f, bool from_client, const uint8_t *data,
		     size_t len, size_t later, uint64_t now);
	/* Reading ended with err, or the fd closes (0): the client's commands
	 * the failure left without an answer end with err; the state is
	 * stopped after. */
	void (*end)(struct oa_thread *t, struct oa_fd *f, int err);
	/* A client's write (under the lock, before it is sent): the query
	 * messages starting in it, whole, that get a comment naming the
	 * context their span will have; NULL: none do (Redis). */
	void (*plan)(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		     struct oa_db_plan *plan);
	/* The contexts the client's comments decided. */
	struct oa_db_client *(*client)(struct oa_fd *f);
};

/* Whether a database protocol's state is on: its callbacks only ever drop
 * it (oa_db_stop), never hand it to another protocol. */
static inline bool oa_db_on(const struct oa_fd *f)
{
	return __atomic_load_n(&f->proto, __ATOMIC_ACQUIRE) != NULL;
}
/* Drops the state (a protocol's stop). */
void oa_db_stop(struct oa_thread *t, struct oa_fd *f);

/* An exchange pipelined past those its connection follows gets no span (nor
 * a duration in the metrics): counted as dropped, so that the loss shows. */
static inline void oa_count_untracked_exchange(void)
{
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_CONNECTION_FULL], 1, __ATOMIC_RELAXED);
}
/* The connection callbacks (protocol.h) of database protocol db. */
void oa_db_start(struct oa_thread *t, struct oa_fd *f, const struct oa_db_protocol *db);
void oa_db_received(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		    size_t n, const struct oa_db_protocol *db);
void oa_db_sent(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt, size_t n,
		uint64_t start, const struct oa_db_protocol *db);
void oa_db_read_end(struct oa_thread *t, struct oa_fd *f, int err, const struct oa_db_protocol *db);
/* A send on a database connection (a protocol's send): a client's queries
 * get comments naming their spans (OTLPAUTO_DB_PROPAGATION=comment; inside
 * TLS, tls.c's OpenSSL writes do the same), the application's bytes are fed
 * as it wrote them (the protocol's sent), and its call returns its own
 * counts. Bytes still owed go first, also after the protocol's state was
 * dropped. */
ssize_t oa_db_send(struct oa_thread *t, struct oa_fd *f, const struct oa_send_call *c, uint8_t kind,
		   const struct oa_db_protocol *db);
/* Rewritten bytes still owed, before a call that cannot carry them (a
 * protocol's flush_owed). */
bool oa_db_flush_owed(int fd, struct oa_fd *f);
/* The database protocol of a client whose queries get comments (under the
 * lock; tls.c); NULL: none do. */
const struct oa_db_protocol *oa_db_commenting(const struct oa_fd *f);

/* The list of every database protocol's part (db.c's oa_db_commenting). */
#define OA_DB_PROTOCOL_ENTRY __attribute__((used, section("oa_db_protocols")))

/* Registers database protocol `id` (its struct oa_conn_protocol is
 * oa_protocol_<id>), whose file's part is `glue`, a struct oa_db_protocol:
 * the connection's callbacks are db.c's, bound to it. The fields that
 * differ follow (detect, server_first, order). */
#define OA_DB_PROTOCOL(id, glue, ...)                                                              \
	static void id##_start(struct oa_thread *t, struct oa_fd *f)                               \
	{                                                                                          \
		oa_db_start(t, f, &glue);                                                          \
	}                                                                                          \
	static void id##_received(struct oa_thread *t, int fd, struct oa_fd *f,                    \
				  const struct iovec *iov, int iovcnt, size_t n)                   \
	{                                                                                          \
		oa_db_received(t, f, iov, iovcnt, n, &glue);                                       \
	}                                                                                          \
	static void id##_sent(struct oa_thread *t, int fd, struct oa_fd *f,                        \
			      const struct iovec *iov, int iovcnt, size_t n, uint64_t start)       \
	{                                                                                          \
		oa_db_sent(t, f, iov, iovcnt, n, start, &glue);                                    \
	}                                                                                          \
	static void id##_read_end(struct oa_thread *t, int fd, struct oa_fd *f, int err)           \
	{                                                                                          \
		oa_db_read_end(t, f, err, &glue);                                                  \
	}                                                                                          \
	static void id##_close(struct oa_thread *t, int fd, struct oa_fd *f)                       \
	{                                                                                          \
		oa_db_read_end(t, f, 0, &glue);                                                    \
	}                                                                                          \
	static ssize_t id##_send(struct oa_thread *t, struct oa_fd *f,                             \
				 const struct oa_send_call *c, uint8_t kind)                       \
	{                                                                                          \
		return oa_db_send(t, f, c, kind, &glue);                                           \
	}                                                                                          \
	static const struct oa_db_protocol *const id##_db OA_DB_PROTOCOL_ENTRY = &glue;            \
	OA_PROTOCOL(id) = {.name = #id,                                                            \
			   .hooks = OA_HOOK_HTTP,                                                  \
			   .start = id##_start,                                                    \
			   .stop = oa_db_stop,                                                     \
			   .received = id##_received,                                              \
			   .read_end = id##_read_end,                                              \
			   .send = id##_send,                                                      \
			   .sent = id##_sent,                                                      \
			   .close = id##_close,                                                    \
			   .flush_owed = oa_db_flush_owed,                                         \
			   __VA_ARGS__}

/* ---- both */

/* Keeps the contexts of the first `committed` comments of plan: they went
 * out (in part, the rest is owed). */
void oa_db_keep(struct oa_db_client *out, const struct oa_db_plan *plan, int committed);
/* The context a client's message (its ordinal) was given by its comment:
 * false when it went without one. */
bool oa_db_decided(struct oa_db_client *out, uint32_t ordinal, struct oa_span_ctx *ctx,
		   struct oa_span_ctx *parent);
/* A client's query whose span begins went with a comment (carried) or
 * without one (not whole in one write, its own traceparent, ...): counted
 * when OTLPAUTO_DB_PROPAGATION=comment, for the exit summary. */
void oa_db_count_comment(bool carried);
/* Drops a context decided for a message its span did not take. */
void oa_db_forget(struct oa_db_client *out, uint32_t ordinal);
/* The comment naming ctx. */
static inline void oa_db_comment_of(const struct oa_span_ctx *ctx, char out[OA_DB_COMMENT_LEN + 1])
{
	struct oa_span_context sc;
	memcpy(sc.trace_id, ctx->trace_id, 16);
	oa_span_id_to_bytes(ctx->span_id, sc.span_id);
	sc.flags = ctx->flags & 1;
	oa_db_comment(&sc, out);
}
/* Free room for decided contexts. */
int oa_db_room(const struct oa_db_client *out);
/* Where application offset pos of the write is: its bytes up to the end of
 * that iovec. False past the write's end. */
static inline bool oa_iov_at(const struct iovec *iov, int iovcnt, size_t pos, const uint8_t **at,
			     size_t *len)
{
	for (int i = 0; i < iovcnt; i++) {
		if (pos < iov[i].iov_len) {
			*at = (const uint8_t *)iov[i].iov_base + pos;
			*len = iov[i].iov_len - pos;
			return true;
		}
		pos -= iov[i].iov_len;
	}
	return false;
}

/* ---- files (files.c) */

#if OA_FEATURE_FILES
/* A read or write on a tracked file took from start to now: a span when
 * that is above OTLPAUTO_FILE_THRESHOLD. */
void oa_file_io_span(struct oa_thread *t, int fd, const char *name, uint64_t start, ssize_t result,
		     int err);
/* Closes a tracked file (timed like its reads); returns what close returns. */
int oa_file_close(struct oa_thread *t, int fd, struct oa_fd *f, int (*real_close)(int));
#endif

/* ---- shared by the database families (redis.c, pg.c, mysql.c) */

/* The first bytes (up to cap) of the n bytes spread over iov, into head;
 * how many there were. */
static inline size_t oa_iov_head(const struct iovec *iov, int iovcnt, size_t n, uint8_t *head,
				 size_t cap)
{
	size_t have = 0;
	for (int i = 0; i < iovcnt && have < cap && have < n; i++)
		for (size_t k = 0; k < iov[i].iov_len && have < cap && have < n; k++)
			head[have++] = ((const uint8_t *)iov[i].iov_base)[k];
	return have;
}

/* The peer's address and port, of an IP socket only; the exporter formats
 * the address, off the application's thread. */
static inline void oa_payload_attr_peer(struct oa_payload *w, const struct oa_fd *f,
					enum oa_key address_key, enum oa_key port_key)
{
	if (!f->peer_len || (f->peer.sa.sa_family != AF_INET && f->peer.sa.sa_family != AF_INET6))
		return;
	oa_payload_attr_sockaddr(w, address_key, &f->peer.sa, f->peer_len);
	oa_payload_attr_int(w, port_key, oa_sockaddr_port(&f->peer.sa));
}

#endif
