/* What the database protocols (redis.c, pg.c, mysql.c) share: their
 * connection callbacks (OA_DB_PROTOCOL binds them to a protocol's parsers),
 * a client's sends, with the sqlcommenter comments naming their spans
 * (OTLPAUTO_DB_PROPAGATION=comment) and the rewritten bytes still owed to
 * the stream, and the contexts those comments decided. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "net.h"
#include "real.h"

OA_REAL(ssize_t, send, (int a0, const void *a1, size_t a2, int a3), -1)

/* ---- the contexts comments decided */

int oa_db_room(const struct oa_db_client *out)
{
	int room = 0;
	for (int i = 0; i < OA_DB_DECIDED_MAX; i++)
		room += !out->decided[i].set;
	return room;
}

void oa_db_keep(struct oa_db_client *out, const struct oa_db_plan *plan, int committed)
{
	for (int k = 0, i = 0; k < committed && i < OA_DB_DECIDED_MAX; i++) {
		if (out->decided[i].set)
			continue;
		out->decided[i].set = true;
		out->decided[i].ordinal = plan->ordinal[k];
		out->decided[i].ctx = plan->ctx[k];
		out->decided[i].parent = plan->parent[k];
		k++;
	}
}

bool oa_db_decided(struct oa_db_client *out, uint32_t ordinal, struct oa_span_ctx *ctx,
		   struct oa_span_ctx *parent)
{
	for (int i = 0; i < OA_DB_DECIDED_MAX; i++) {
		if (out->decided[i].set && out->decided[i].ordinal == ordinal) {
			out->decided[i].set = false;
			*ctx = out->decided[i].ctx;
			*parent = out->decided[i].parent;
			return true;
		}
	}
	return false;
}

void oa_db_forget(struct oa_db_client *out, uint32_t ordinal)
{
	for (int i = 0; i < OA_DB_DECIDED_MAX; i++)
		if (out->decided[i].ordinal == ordinal)
			out->decided[i].set = false;
}

void oa_db_count_comment(bool carried)
{
	if (oa_rt.cfg.db_propagation == OA_DB_PROPAGATION_COMMENT &&
	    oa_rt.cfg.propagate_tracecontext)
		__atomic_fetch_add(carried ? &oa_rt.db_queries_commented
					   : &oa_rt.db_queries_uncommented,
				   1, __ATOMIC_RELAXED);
}

/* ---- the connection callbacks */

void oa_db_start(struct oa_thread *t, struct oa_fd *f, const struct oa_db_protocol *db)
{
	db->reset(f);
	__atomic_store_n(&f->proto, db->protocol, __ATOMIC_RELEASE);
}

void oa_db_stop(struct oa_thread *t, struct oa_fd *f)
{
	__atomic_store_n(&f->proto, NULL, __ATOMIC_RELEASE);
}

/* The first n bytes of iov went one way: `sent` by this process or read. */
static void feed(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		 size_t n, bool sent, uint64_t now, const struct oa_db_protocol *db)
{
	bool from_client = sent == (f->role == OA_ROLE_CLIENT);
	for (int i = 0; i < iovcnt && n && oa_db_on(f); i++) {
		size_t len = iov[i].iov_len < n ? iov[i].iov_len : n;
		n -= len;
		if (len)
			db->feed(t, f, from_client, iov[i].iov_base, len, n, now);
	}
}

void oa_db_received(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		    size_t n, const struct oa_db_protocol *db)
{
	feed(t, f, iov, iovcnt, n, false, oa_now(), db);
}

void oa_db_sent(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt, size_t n,
		uint64_t start, const struct oa_db_protocol *db)
{
	feed(t, f, iov, iovcnt, n, true, start, db);
}

void oa_db_read_end(struct oa_thread *t, struct oa_fd *f, int err, const struct oa_db_protocol *db)
{
	db->end(t, f, err);
	oa_db_stop(t, f);
}

/* ---- sends */

static bool db_propagating(const struct oa_fd *f, const struct oa_db_protocol *db)
{
	return f->role == OA_ROLE_CLIENT && oa_rt.cfg.db_propagation == OA_DB_PROPAGATION_COMMENT &&
	       oa_rt.cfg.propagate_tracecontext && db->plan &&
	       __atomic_load_n(&f->proto, __ATOMIC_ACQUIRE) == db->protocol;
}

/* Every database protocol's part (OA_DB_PROTOCOL). */
extern const struct oa_db_protocol *const __start_oa_db_protocols[]
    __attribute__((visibility("hidden")));
extern const struct oa_db_protocol *const __stop_oa_db_protocols[]
    __attribute__((visibility("hidden")));

const struct oa_db_protocol *oa_db_commenting(const struct oa_fd *f)
{
	for (const struct oa_db_protocol *const *db = __start_oa_db_protocols;
	     db < __stop_oa_db_protocols; db++)
		if (db_propagating(f, *db))
			return *db;
	return NULL;
}

/* What a database client's write gets: the comments planned into it and
 * the bytes owed from an earlier one, laid out. */
struct db_rewrite {
	struct oa_db_plan plan;
	int n_ins;
	struct oa_insert ins[OA_DB_INSERTS(OA_DB_DECIDED_MAX)];
	struct oa_layout layout;
	int iovcnt;	/* the application's iovecs laid out (all but for a long writev) */
	size_t app_len; /* their bytes */
};

/* comment: the queries may get comments (the fd's lock is held: the plan
 * reads the parsers); owed bytes go in any case. */
static bool db_rewrite_plan(struct oa_thread *t, struct oa_fd *f, const struct oa_send_call *c,
			    const struct oa_db_protocol *db, bool comment, struct db_rewrite *w)
{
	w->plan.n = 0;
	if (comment)
		db->plan(t, f, c->iov, c->iovcnt, &w->plan);
	w->iovcnt = c->iovcnt;
	w->app_len = oa_iov_total(c->iov, c->iovcnt);
	w->n_ins = oa_db_inserts(&f->db_owed, w->app_len, w->plan.rw, w->plan.n, w->ins);
	if (!w->n_ins || oa_layout_build(&w->layout, c->iov, w->iovcnt, w->ins, w->n_ins))
		return w->n_ins > 0;
	/* more pieces than a layout holds: no comment this time; owed bytes
	 * still go, with a short write of the first iovecs if need be */
	w->plan.n = 0;
	if (!f->db_owed.n)
		return false;
	if (w->iovcnt > OA_LAYOUT_MAX - 2 * OA_DB_OWED_MAX)
		w->iovcnt = OA_LAYOUT_MAX - 2 * OA_DB_OWED_MAX;
	w->app_len = oa_iov_total(c->iov, w->iovcnt);
	w->n_ins = oa_db_inserts(&f->db_owed, w->app_len, NULL, 0, w->ins);
	return w->n_ins && oa_layout_build(&w->layout, c->iov, w->iovcnt, w->ins, w->n_ins);
}

/* After a rewritten write (app_sent application bytes went out, as
 * oa_send_layout counts them): what is still owed (writers' state, as
 * HTTP's inserts: no lock), and in *app_taken what the call took. Returns
 * how many comments went out. */
static int db_rewrite_settle(int fd, struct oa_fd *f, const struct oa_db_protocol *db,
			     struct db_rewrite *w, size_t app_sent, size_t *app_taken)
{
	int committed = oa_db_settle(&f->db_owed, w->app_len, w->plan.rw, w->plan.n, w->ins,
				     app_sent, app_taken);
	__atomic_store_n(&f->owing, f->db_owed.n ? oa_conn_protocol_id(db->protocol) : 0,
			 __ATOMIC_RELEASE);
	if (f->db_owed.n)
		oa_fd_kind_set(fd, OA_FD_OWED);
	else
		oa_fd_kind_clear(fd, OA_FD_OWED);
	return committed;
}

ssize_t oa_db_send(struct oa_thread *t, struct oa_fd *f, const struct oa_send_call *c, uint8_t kind,
		   const struct oa_db_protocol *db)
{
	/* a command starts, and a reply ends, when its send begins: the peer
	 * may read it before the call returns */
	uint64_t start = oa_now();
	struct db_rewrite w;
	bool rewriting = false;
	if (db_propagating(f, db) || __atomic_load_n(&f->owing, __ATOMIC_ACQUIRE)) {
		bool locked = db_propagating(f, db) && oa_fd_lock_slot(t, c->fd, f);
		rewriting = db_rewrite_plan(t, f, c, db, locked && db_propagating(f, db), &w);
		if (locked)
			oa_fd_unlock_slot(c->fd, f);
	}
	ssize_t r = rewriting ? oa_send_layout(c, &w.layout, w.ins) : oa_send_real(c);
	int err = errno;
	int committed = 0;
	if (rewriting) {
		size_t taken;
		committed = db_rewrite_settle(c->fd, f, db, &w, r > 0 ? (size_t)r : 0, &taken);
		if (r > 0 && !taken) {
			/* only owed bytes went: the program repeats its call */
			r = -1;
			err = EINTR;
		} else if (r > 0) {
			r = (ssize_t)taken;
		}
	}
	if (r <= 0) {
		errno = err;
		return r;
	}
	if (oa_fd_lock_slot(t, c->fd, f)) {
		/* the spans of the queries that went with a comment take its context */
		if (f->proto == db->protocol) {
			if (committed)
				oa_db_keep(db->client(f), &w.plan, committed);
			oa_db_sent(t, f, c->iov, c->iovcnt, (size_t)r, start, db);
		}
		oa_fd_unlock_slot(c->fd, f);
	} else {
		oa_fd_mark_lost(c->fd, kind);
	}
	errno = err;
	return r;
}

/* A comment owed goes out when it is next in the stream. The rest of a
 * length field, a comment due inside the call's bytes or one holding the
 * program's last byte (which the call would send again) cannot be placed:
 * dropped, with the connection's tracking (a client sends its queries with
 * write or send). */
bool oa_db_flush_owed(int fd, struct oa_fd *f)
{
	struct oa_db_owed *o = &f->db_owed;
	while (o->n && !o->item[0].before && !o->item[0].replaces && !o->item[0].holds_last &&
	       o->item[0].len) {
		ssize_t r = oa_real_send()(fd, o->item[0].bytes, o->item[0].len, MSG_NOSIGNAL);
		if (r <= 0)
			return false; /* the call fails with this errno; the rest stays owed */
		o->item[0].len = (uint8_t)(o->item[0].len - r);
		memmove(o->item[0].bytes, o->item[0].bytes + r, o->item[0].len);
	}
	if (o->n > 1 || (o->n && o->item[0].len))
		oa_fd_kind_set(fd, OA_FD_LOST);
	o->n = 0;
	__atomic_store_n(&f->owing, 0, __ATOMIC_RELEASE);
	oa_fd_kind_clear(fd, OA_FD_OWED);
	return true;
}
