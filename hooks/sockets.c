/* Socket hooks: bookkeeping of the application's sockets in the fd table
 * (family, role, peer), connect spans, and the entry points through which
 * every read and write of a watched fd reaches its connection (src/conn.h,
 * which passes it to the connection's protocol) or the file spans
 * (files.c). An fd with nothing to watch costs one load of its kind byte
 * per call, and one of the count of threads that want to know which socket
 * a TLS library call uses (tls.c).
 *
 * Non-blocking connects (EINPROGRESS): the span stays open in the fd's slot
 * and ends at the first of: getsockopt(SO_ERROR) reporting an error, or 0
 * with the peer known (getpeername); a read or write that succeeds or fails
 * with something other than EAGAIN/EINTR; connect called again (EISCONN,
 * or an error); close (SO_ERROR and getpeername asked then; still pending:
 * error.type "cancelled"). poll/select/epoll are not hooked: the end is the
 * first of those calls after the connection completed. */

/* The hooks must have the libc names (sendfile, not the sendfile64 that
 * _FILE_OFFSET_BITS=64 redirects it to); both names are defined below. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr_text.h"
#include "clock.h"
#include "family.h"
#include "net.h"
#include "real.h"

OA_REAL(int, socket, (int a0, int a1, int a2), -1)
OA_REAL(int, connect, (int a0, const struct sockaddr *a1, socklen_t a2), -1)
OA_REAL(int, accept, (int a0, struct sockaddr *a1, socklen_t *a2), -1)
OA_REAL(int, accept4, (int a0, struct sockaddr *a1, socklen_t *a2, int a3), -1)
OA_REAL(int, shutdown, (int a0, int a1), -1)
OA_REAL(int, dup, (int a0), -1)
OA_REAL(int, getsockopt, (int a0, int a1, int a2, void *a3, socklen_t *a4), -1)
OA_REAL(ssize_t, read, (int a0, void *a1, size_t a2), -1)
OA_REAL(ssize_t, __read_chk, (int a0, void *a1, size_t a2, size_t a3), -1)
OA_REAL(ssize_t, readv, (int a0, const struct iovec *a1, int a2), -1)
OA_REAL(ssize_t, recv, (int a0, void *a1, size_t a2, int a3), -1)
OA_REAL(ssize_t, __recv_chk, (int a0, void *a1, size_t a2, size_t a3, int a4), -1)
OA_REAL(ssize_t, recvfrom,
	(int a0, void *a1, size_t a2, int a3, struct sockaddr *a4, socklen_t *a5), -1)
OA_REAL(ssize_t, __recvfrom_chk,
	(int a0, void *a1, size_t a2, size_t a3, int a4, struct sockaddr *a5, socklen_t *a6), -1)
OA_REAL(ssize_t, recvmsg, (int a0, struct msghdr *a1, int a2), -1)
OA_REAL(int, recvmmsg, (int a0, struct mmsghdr *a1, unsigned int a2, int a3, struct timespec *a4),
	-1)
OA_REAL(ssize_t, write, (int a0, const void *a1, size_t a2), -1)
OA_REAL(ssize_t, writev, (int a0, const struct iovec *a1, int a2), -1)
OA_REAL(ssize_t, send, (int a0, const void *a1, size_t a2, int a3), -1)
OA_REAL(ssize_t, sendto,
	(int a0, const void *a1, size_t a2, int a3, const struct sockaddr *a4, socklen_t a5), -1)
OA_REAL(ssize_t, sendmsg, (int a0, const struct msghdr *a1, int a2), -1)
OA_REAL(int, sendmmsg, (int a0, struct mmsghdr *a1, unsigned int a2, int a3), -1)
OA_REAL(ssize_t, sendfile, (int a0, int a1, off_t *a2, size_t a3), -1)
OA_REAL(ssize_t, sendfile64, (int a0, int a1, off64_t *a2, size_t a3), -1)
OA_REAL(ssize_t, splice, (int a0, loff_t *a1, int a2, loff_t *a3, size_t a4, unsigned int a5), -1)

/* glibc's fortified variants, reached by programs built with
 * _FORTIFY_SOURCE; they have no public prototypes. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *from, socklen_t *from_len);

/* ---- span records */

struct oa_record *oa_net_span_begin(struct oa_thread *t, struct oa_payload *w,
				    const struct oa_span_ctx *parent, const struct oa_span_ctx *ctx,
				    enum oa_span_kind kind, enum oa_scope scope, uint64_t start,
				    uint32_t payload_max)
{
	if (!(ctx->flags & 1)) {
		/* the thread's own word: no shared line on the unsampled path */
		__atomic_store_n(&t->ring->sampled_out, t->ring->sampled_out + 1, __ATOMIC_RELAXED);
		return NULL;
	}
	struct oa_record *rec = oa_record_begin(t, payload_max);
	if (!rec)
		return NULL;
	oa_record_head(rec, t, parent, ctx, ctx->span_id, kind, scope, OA_NAME_PAYLOAD, start);
	oa_payload_init(w, rec);
	return rec;
}

void oa_net_span_end(struct oa_thread *t, struct oa_payload *w, uint64_t end, bool error)
{
	w->rec->end = end;
	w->rec->status = error ? OA_STATUS_ERROR : OA_STATUS_UNSET;
	oa_payload_finish(w);
	/* The record keeps the slots its payload used, not the most it could
	 * have: an HTTP span reserves 9 and uses about 3. Only this thread has
	 * seen the reservation; the slots after it are reserved again. */
	w->rec->n_slots = (uint8_t)oa_record_slots(w->rec->payload_len);
	oa_record_commit(t, w->rec);
}

const char *oa_net_type(int family)
{
	return family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : NULL;
}

/* ---- slots */

/* Sockets are tracked for their connect spans or their protocols. */
static bool tracking_on(void)
{
	return oa_family_on(OA_HOOK_SOCKETS | oa_conn_switches());
}

static bool tracked_family(int family)
{
	return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
}

/* ---- connect */

#define CONNECT_PAYLOAD 512

static void connect_span(struct oa_thread *t, struct oa_fd *f, uint64_t end, int err,
			 const char *error_type)
{
	if (!oa_family_on(OA_HOOK_SOCKETS))
		return;
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &f->connect_parent, &f->connect_ctx, OA_KIND_INTERNAL,
			       OA_SCOPE_SOCKETS, f->connect_start, CONNECT_PAYLOAD))
		return;
	/* The address goes raw: the exporter formats it, off this thread. */
	static const char prefix[] = "socket connect ";
	oa_payload_name_peer(&w, prefix, sizeof prefix - 1, f->family, &f->peer.sa, f->peer_len);
	oa_payload_attr_sockaddr(&w, OA_KEY_NETWORK_PEER_ADDRESS, &f->peer.sa, f->peer_len);
	bool inet = f->family != AF_UNIX;
	const char *transport = f->family == AF_UNIX	     ? "unix"
				: f->transport == SOCK_DGRAM ? "udp"
							     : "tcp";
	oa_payload_attr_static(&w, OA_KEY_NETWORK_TRANSPORT, transport);
	if (inet) {
		uint16_t port = oa_sockaddr_port(&f->peer.sa);
		oa_payload_attr_int(&w, OA_KEY_NETWORK_PEER_PORT, port);
		oa_payload_attr_static(&w, OA_KEY_NETWORK_TYPE, oa_net_type(f->family));
		char server[OA_DNS_NAME_MAX];
		if (oa_dns_name_of(&f->peer.sa, server, sizeof server))
			oa_payload_attr_str(&w, OA_KEY_SERVER_ADDRESS, server, strlen(server));
		else
			oa_payload_attr_sockaddr(&w, OA_KEY_SERVER_ADDRESS, &f->peer.sa,
						 f->peer_len);
		oa_payload_attr_int(&w, OA_KEY_SERVER_PORT, port);
	}
	if (err)
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	else if (error_type)
		oa_payload_attr_static(&w, OA_KEY_ERROR_TYPE, error_type);
	oa_net_span_end(t, &w, end, err || error_type);
}

/* A pending connect's outcome is known (under the lock). */
static void connect_resolved(struct oa_thread *t, struct oa_fd *f, int err, const char *error_type)
{
	f->connecting = 0;
	connect_span(t, f, oa_now(), err, error_type);
	if (err || error_type)
		oa_conn_stop(t, f);
}

/* The slot of a socket connect() was called on; sockets created before us
 * or by means we do not see are registered here. NULL: not ours to track. */
static struct oa_fd *connecting_slot(int fd)
{
	uint8_t kind = oa_fd_kind(fd);
	if (kind & OA_FD_SOCKET)
		return oa_fd_slot(fd);
	int saved = errno, type, domain;
	socklen_t len = sizeof type;
	bool ok = oa_real_getsockopt()(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	len = sizeof domain;
	ok = ok && oa_real_getsockopt()(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0;
	errno = saved;
	if (!ok || !tracked_family(domain))
		return NULL;
	struct oa_fd *f = oa_fd_claim(fd);
	if (!f)
		return NULL;
	f->family = (uint8_t)domain;
	f->transport = (uint8_t)type;
	oa_fd_claim_end(fd, OA_FD_SOCKET);
	return f;
}

/* connect() on a socket whose earlier non-blocking connect is pending. */
static void connect_again(struct oa_thread *t, struct oa_fd *f, int r, int err)
{
	if (r == 0 || err == EISCONN)
		connect_resolved(t, f, 0, NULL);
	else if (err != EALREADY && err != EINPROGRESS && !oa_errno_transient(err))
		connect_resolved(t, f, err, NULL);
}

/* The connect succeeded (its span ends now) or is under way: the socket is
 * a client. */
static void connect_started(struct oa_thread *t, int fd, struct oa_fd *f, bool pending)
{
	f->role = OA_ROLE_CLIENT;
	f->connecting = pending;
	if (!pending)
		connect_span(t, f, oa_now(), 0, NULL);
	if (oa_conn_open(t, f) || f->connecting)
		oa_fd_kind_set(fd, OA_FD_WATCH);
}

OA_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!addr || len < sizeof addr->sa_family || !tracked_family(addr->sa_family) ||
	    !oa_hook_enter())
		return oa_real_connect()(fd, addr, len);
	struct oa_thread *t = tracking_on() ? oa_thread_get() : NULL;
	struct oa_fd *f = t ? connecting_slot(fd) : NULL;
	if (!f || !oa_fd_lock_slot(t, fd, f)) {
		oa_hook_leave();
		return oa_real_connect()(fd, addr, len);
	}
	int saved = errno;
	bool again = f->connecting;
	if (!again) {
		/* a connect that started before would have left its state: fresh */
		oa_conn_stop(t, f);
		f->wire_seen = 0;
		f->peer_len = len < sizeof f->peer ? len : sizeof f->peer;
		memcpy(&f->peer, addr, f->peer_len);
		oa_current_parent(t, &f->connect_parent);
		oa_span_ctx_start(t, &f->connect_parent, &f->connect_ctx);
		f->connect_start = oa_now();
	}
	/* the lock is not held across a connect that may block */
	oa_fd_unlock(fd);
	errno = saved;
	int r = oa_real_connect()(fd, addr, len);
	int err = r ? errno : 0;
	if (oa_fd_lock_slot(t, fd, f)) {
		/* an interrupted connect goes on in the background, as EINPROGRESS */
		if (again)
			connect_again(t, f, r, err);
		else if (r == 0 || err == EINPROGRESS || err == EINTR)
			connect_started(t, fd, f, r != 0);
		else
			connect_span(t, f, oa_now(), err, NULL);
		oa_fd_unlock_slot(fd, f);
	}
	oa_hook_leave();
	errno = r ? err : saved;
	return r;
}

OA_EXPORT int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
	int r = oa_real_getsockopt()(fd, level, name, value, len);
	if (r != 0 || level != SOL_SOCKET || name != SO_ERROR || !value || !len ||
	    *len < sizeof(int) || !(oa_fd_kind(fd) & OA_FD_WATCH) || !oa_hook_enter())
		return r;
	int saved = errno;
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
	if (t && f && oa_fd_lock_slot(t, fd, f)) {
		if (f->connecting) {
			int err = *(int *)value;
			union oa_sockaddr peer;
			socklen_t peer_len = sizeof peer;
			if (err)
				connect_resolved(t, f, err, NULL);
			else if (getpeername(fd, &peer.sa, &peer_len) == 0)
				connect_resolved(t, f, 0, NULL);
		}
		oa_fd_unlock_slot(fd, f);
	}
	oa_hook_leave();
	errno = saved;
	return r;
}

/* ---- socket, accept, dup, shutdown, close */

OA_EXPORT int socket(int domain, int type, int protocol)
{
	int fd = oa_real_socket()(domain, type, protocol);
	if (fd < 0)
		return fd;
	if (!oa_hook_enter()) {
		/* the number is new: whatever the table says of it is stale */
		oa_fd_forget(fd);
		return fd;
	}
	int saved = errno;
	struct oa_fd *f = tracked_family(domain) && tracking_on() ? oa_fd_claim(fd) : NULL;
	if (f) {
		f->family = (uint8_t)domain;
		f->transport = (uint8_t)(type & 0xf);
		oa_fd_claim_end(fd, OA_FD_SOCKET);
	} else {
		oa_fd_forget(fd);
	}
	oa_hook_leave();
	errno = saved;
	return fd;
}

/* The local port of listening socket lfd, remembered in its slot. */
static uint16_t listener_port(int lfd, int fd)
{
	struct oa_fd *l = (oa_fd_kind(lfd) & OA_FD_SOCKET) ? oa_fd_slot(lfd) : NULL;
	if (l && l->role == OA_ROLE_LISTENER)
		return l->local_port;
	union oa_sockaddr local = {0};
	socklen_t len = sizeof local;
	uint16_t port = getsockname(fd, &local.sa, &len) == 0 ? oa_sockaddr_port(&local.sa) : 0;
	if (!l && (l = oa_fd_claim(lfd)) != NULL) {
		l->family = local.sa.sa_family;
		l->transport = SOCK_STREAM;
		oa_fd_claim_end(lfd, OA_FD_SOCKET);
	}
	if (l && oa_fd_lock(lfd)) {
		l->role = OA_ROLE_LISTENER;
		l->local_port = port;
		oa_fd_unlock(lfd);
	}
	return port;
}

static void accepted(int lfd, int fd, const struct sockaddr *addr, const socklen_t *addr_len)
{
	if (!oa_hook_enter()) {
		oa_fd_forget(fd);
		return;
	}
	int saved = errno;
	uint16_t port = tracking_on() ? listener_port(lfd, fd) : 0;
	struct oa_fd *f = tracking_on() ? oa_fd_claim(fd) : NULL;
	if (!f) {
		oa_fd_forget(fd);
		oa_hook_leave();
		errno = saved;
		return;
	}
	f->role = OA_ROLE_SERVER;
	f->transport = SOCK_STREAM;
	f->local_port = port;
	socklen_t len = addr && addr_len ? *addr_len : 0;
	if (len > sizeof addr->sa_family && len <= sizeof f->peer) {
		memcpy(&f->peer, addr, len);
		f->peer_len = len;
	} else {
		len = sizeof f->peer;
		if (getpeername(fd, &f->peer.sa, &len) == 0)
			f->peer_len = len;
	}
	f->family = f->peer_len ? f->peer.sa.sa_family : AF_UNIX;
	uint8_t bits = OA_FD_SOCKET;
	if (tracked_family(f->family) && oa_conn_open(NULL, f))
		bits |= OA_FD_WATCH;
	oa_fd_claim_end(fd, bits);
	oa_hook_leave();
	errno = saved;
}

OA_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int r = oa_real_accept()(fd, addr, len);
	if (r >= 0)
		accepted(fd, r, addr, len);
	return r;
}

OA_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int r = oa_real_accept4()(fd, addr, len, flags);
	if (r >= 0)
		accepted(fd, r, addr, len);
	return r;
}

/* newfd now refers to oldfd's file: a socket keeps its role and peer, but
 * its protocol's state and TLS session stay with oldfd (two numbers cannot
 * share one stream's parsers). */
void oa_tracked_dup(int oldfd, int newfd)
{
	if (oldfd == newfd)
		return;
	oa_fd_forget(newfd);
	if (!(oa_fd_kind(oldfd) & OA_FD_SOCKET) || !oa_hook_enter())
		return;
	int saved = errno;
	struct oa_fd *from = oa_fd_slot(oldfd);
	struct oa_fd *to = oa_fd_claim(newfd);
	if (to) {
		if (from && oa_fd_lock(oldfd)) {
			memcpy(to, from, offsetof(struct oa_fd, state));
			to->proto = NULL;
			to->tls_next = 0;
			memset(&to->tls, 0, sizeof to->tls);
			to->connecting = 0;
			to->readers = to->writers = 0;
			oa_fd_unlock(oldfd);
		}
		oa_fd_claim_end(newfd, OA_FD_SOCKET);
	}
	oa_hook_leave();
	errno = saved;
}

OA_EXPORT int dup(int fd)
{
	int r = oa_real_dup()(fd);
	if (r >= 0 && (oa_fd_kind(r) | oa_fd_kind(fd)))
		oa_tracked_dup(fd, r);
	return r;
}

OA_EXPORT int shutdown(int fd, int how)
{
	int r = oa_real_shutdown()(fd, how);
	uint8_t kind = oa_fd_kind(fd);
	if (r != 0 || how == SHUT_RD || !(kind & OA_FD_WATCH) || !oa_hook_enter())
		return r;
	int saved = errno;
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
	if (t && f && oa_fd_lock_slot(t, fd, f)) {
		oa_conn_write_end(t, fd, f);
		oa_fd_unlock_slot(fd, f);
	}
	oa_hook_leave();
	errno = saved;
	return r;
}

/* Ends what a watched socket has open before its number goes away. */
static void close_watched(struct oa_thread *t, int fd, struct oa_fd *f)
{
	if (!oa_fd_lock_slot(t, fd, f))
		return;
	if (f->connecting) {
		int err = 0;
		socklen_t len = sizeof err;
		union oa_sockaddr peer;
		socklen_t peer_len = sizeof peer;
		oa_real_getsockopt()(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			connect_resolved(t, f, err, NULL);
		else if (getpeername(fd, &peer.sa, &peer_len) == 0)
			connect_resolved(t, f, 0, NULL);
		else
			connect_resolved(t, f, 0, "cancelled");
	}
	oa_conn_close(t, fd, f);
	oa_fd_unlock(fd);
}

int oa_tracked_close(int fd, int (*real_close)(int))
{
	uint8_t kind = oa_fd_kind(fd);
	if (!oa_hook_enter()) {
		oa_fd_forget(fd);
		return real_close(fd);
	}
	int saved = errno;
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
#if OA_FEATURE_FILES
	if ((kind & OA_FD_FILE) && t && f) {
		int r = oa_file_close(t, fd, f, real_close);
		oa_hook_leave();
		if (r == 0)
			errno = saved;
		return r;
	}
#endif
	if ((kind & OA_FD_WATCH) && t && f)
		close_watched(t, fd, f);
	/* before the number can be reused by another thread */
	oa_fd_forget(fd);
	errno = saved;
	int r = real_close(fd);
	int err = errno;
	oa_hook_leave();
	errno = r ? err : saved;
	return r;
}

/* ---- reads */

enum recv_op {
	RECV_READ,
	RECV_READ_CHK,
	RECV_READV,
	RECV_RECV,
	RECV_RECV_CHK,
	RECV_RECVFROM,
	RECV_RECVFROM_CHK,
	RECV_RECVMSG
};

struct recv_call {
	enum recv_op op;
	int fd;
	int flags;
	void *buf;
	size_t len, buflen;
	struct sockaddr *from;
	socklen_t *from_len;
	const struct iovec *iov;
	int iovcnt;
	struct msghdr *msg;
};

static ssize_t recv_real(const struct recv_call *c)
{
	switch (c->op) {
	case RECV_READ:
		return oa_real_read()(c->fd, c->buf, c->len);
	case RECV_READ_CHK:
		return oa_real___read_chk()(c->fd, c->buf, c->len, c->buflen);
	case RECV_READV:
		return oa_real_readv()(c->fd, c->iov, c->iovcnt);
	case RECV_RECV:
		return oa_real_recv()(c->fd, c->buf, c->len, c->flags);
	case RECV_RECV_CHK:
		return oa_real___recv_chk()(c->fd, c->buf, c->len, c->buflen, c->flags);
	case RECV_RECVFROM:
		return oa_real_recvfrom()(c->fd, c->buf, c->len, c->flags, c->from, c->from_len);
	case RECV_RECVFROM_CHK:
		return oa_real___recvfrom_chk()(c->fd, c->buf, c->len, c->buflen, c->flags, c->from,
						c->from_len);
	default:
		return oa_real_recvmsg()(c->fd, c->msg, c->flags);
	}
}

/* After a read on a watched socket (under the lock): a pending connect's
 * outcome, then the connection's protocol. */
static void socket_read_done(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
			     int iovcnt, ssize_t r, int err, bool peek)
{
	if (f->connecting) {
		if (r >= 0)
			connect_resolved(t, f, 0, NULL);
		else if (!oa_errno_transient(err))
			connect_resolved(t, f, err, NULL);
	}
	if (!peek)
		oa_conn_read(t, fd, f, iov, iovcnt, r, err);
}

/* Calls in flight per direction: a second one overlapping the first makes
 * the order of their bytes unknowable. */
static void inflight_enter(int fd, uint8_t kind, uint32_t *count)
{
	if (__atomic_fetch_add(count, 1, __ATOMIC_ACQ_REL) != 0)
		oa_fd_mark_lost(fd, kind);
}

static void inflight_leave(uint32_t *count)
{
	__atomic_fetch_sub(count, 1, __ATOMIC_RELEASE);
}

/* The start of a read's or a write's slow path: false when the hook cannot
 * follow the call (nested, no thread state or slot), whose bytes then pass
 * unseen; else inside the hook, with the thread and the fd's slot. */
static bool io_enter(int fd, uint8_t kind, struct oa_thread **t, struct oa_fd **f)
{
	if (!oa_hook_enter()) {
		oa_fd_mark_lost(fd, kind);
		return false;
	}
	*t = oa_thread_get();
	*f = oa_fd_slot(fd);
	if (!*t || !*f) {
		oa_fd_mark_lost(fd, kind);
		oa_hook_leave();
		return false;
	}
	return true;
}

static ssize_t io_leave(ssize_t r, int err)
{
	oa_hook_leave();
	errno = err;
	return r;
}

static ssize_t recv_slow(const struct recv_call *c, uint8_t kind)
{
	struct oa_thread *t;
	struct oa_fd *f;
	if (!io_enter(c->fd, kind, &t, &f))
		return recv_real(c);
	ssize_t r;
	int err;
#if OA_FEATURE_FILES
	if (kind & OA_FD_FILE) {
		uint64_t start = oa_now();
		r = recv_real(c);
		err = errno;
		oa_file_io_span(t, c->fd, "file read", start, r, err);
		return io_leave(r, err);
	}
#endif
	inflight_enter(c->fd, kind, &f->readers);
	r = recv_real(c);
	err = errno;
	struct iovec one = {c->buf, (size_t)r};
	const struct iovec *iov = &one;
	int iovcnt = 1;
	if (c->op == RECV_READV) {
		iov = c->iov;
		iovcnt = c->iovcnt;
	} else if (c->op == RECV_RECVMSG) {
		iov = c->msg->msg_iov;
		iovcnt = (int)c->msg->msg_iovlen;
	} else if (r < 0) {
		one.iov_len = c->len;
	}
	bool peek = c->flags & MSG_PEEK;
	if (oa_fd_lock_slot(t, c->fd, f)) {
		socket_read_done(t, c->fd, f, iov, iovcnt, r, err, peek);
		oa_fd_unlock_slot(c->fd, f);
	} else if (r > 0 && !peek) {
		oa_fd_mark_lost(c->fd, kind);
	}
	inflight_leave(&f->readers);
	return io_leave(r, err);
}

#define WATCHED(kind) __builtin_expect((kind) & (OA_FD_WATCH | OA_FD_FILE | OA_FD_OWED), 0)

/* A read or write hook: a call on an fd with nothing to watch (or that
 * `bypass` says to leave alone) goes straight to libc, at the cost of one
 * load of the fd's kind byte (and of oa_tls_probes); the others describe
 * the call as `c` for the slow path. */
#define IO_HOOK(ret, name, params, args, bypass, slow, ...)                                        \
	OA_EXPORT ret name params                                                                  \
	{                                                                                          \
		uint8_t kind = oa_fd_kind(fd);                                                     \
		if (__builtin_expect(__atomic_load_n(&oa_tls_probes, __ATOMIC_RELAXED) != 0, 0))   \
			oa_tls_saw(fd);                                                            \
		if (!WATCHED(kind) || (bypass))                                                    \
			return oa_real_##name() args;                                              \
		__VA_ARGS__;                                                                       \
		return slow(&c, kind);                                                             \
	}

IO_HOOK(ssize_t, read, (int fd, void *buf, size_t len), (fd, buf, len), false, recv_slow,
	struct recv_call c = {.op = RECV_READ, .fd = fd, .buf = buf, .len = len})
IO_HOOK(ssize_t, __read_chk, (int fd, void *buf, size_t len, size_t buflen), (fd, buf, len, buflen),
	false, recv_slow,
	struct recv_call c = {
	    .op = RECV_READ_CHK, .fd = fd, .buf = buf, .len = len, .buflen = buflen})
IO_HOOK(ssize_t, readv, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt), false,
	recv_slow, struct recv_call c = {.op = RECV_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt})
IO_HOOK(ssize_t, recv, (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags), false,
	recv_slow,
	struct recv_call c = {.op = RECV_RECV, .fd = fd, .buf = buf, .len = len, .flags = flags})
IO_HOOK(
    ssize_t, __recv_chk, (int fd, void *buf, size_t len, size_t buflen, int flags),
    (fd, buf, len, buflen, flags), false, recv_slow,
    struct recv_call c = {
	.op = RECV_RECV_CHK, .fd = fd, .buf = buf, .len = len, .buflen = buflen, .flags = flags})
IO_HOOK(ssize_t, recvfrom,
	(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *from_len),
	(fd, buf, len, flags, from, from_len), false, recv_slow,
	struct recv_call c = {.op = RECV_RECVFROM,
			      .fd = fd,
			      .buf = buf,
			      .len = len,
			      .flags = flags,
			      .from = from,
			      .from_len = from_len})
IO_HOOK(ssize_t, __recvfrom_chk,
	(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *from,
	 socklen_t *from_len),
	(fd, buf, len, buflen, flags, from, from_len), false, recv_slow,
	struct recv_call c = {.op = RECV_RECVFROM_CHK,
			      .fd = fd,
			      .buf = buf,
			      .len = len,
			      .buflen = buflen,
			      .flags = flags,
			      .from = from,
			      .from_len = from_len})
IO_HOOK(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags), !msg,
	recv_slow, struct recv_call c = {.op = RECV_RECVMSG, .fd = fd, .msg = msg, .flags = flags})

OA_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags,
		       struct timespec *timeout)
{
	uint8_t kind = oa_fd_kind(fd);
	if (!(kind & OA_FD_WATCH) || !oa_hook_enter()) {
		oa_fd_mark_lost(fd, kind);
		return oa_real_recvmmsg()(fd, vec, n, flags, timeout);
	}
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
	if (f)
		inflight_enter(fd, kind, &f->readers);
	int r = oa_real_recvmmsg()(fd, vec, n, flags, timeout);
	int err = errno;
	if (t && f && oa_fd_lock_slot(t, fd, f)) {
		if (r < 0)
			socket_read_done(t, fd, f, NULL, 0, r, err, false);
		for (int i = 0; i < r; i++)
			socket_read_done(t, fd, f, vec[i].msg_hdr.msg_iov,
					 (int)vec[i].msg_hdr.msg_iovlen, vec[i].msg_len, 0,
					 flags & MSG_PEEK);
		oa_fd_unlock_slot(fd, f);
	} else if (r > 0) {
		oa_fd_mark_lost(fd, kind);
	}
	if (f)
		inflight_leave(&f->readers);
	oa_hook_leave();
	errno = err;
	return r;
}

/* ---- writes */

ssize_t oa_send_real(const struct oa_send_call *c)
{
	switch (c->op) {
	case OA_SEND_WRITE:
		return oa_real_write()(c->fd, c->iov[0].iov_base, c->iov[0].iov_len);
	case OA_SEND_SEND:
		return oa_real_send()(c->fd, c->iov[0].iov_base, c->iov[0].iov_len, c->flags);
	case OA_SEND_SENDTO:
		return oa_real_sendto()(c->fd, c->iov[0].iov_base, c->iov[0].iov_len, c->flags,
					c->to, c->to_len);
	case OA_SEND_WRITEV:
		return oa_real_writev()(c->fd, c->iov, c->iovcnt);
	default:
		return oa_real_sendmsg()(c->fd, c->msg, c->flags);
	}
}

/* After a write on a watched socket whose protocol's side is done: a pending
 * connect's outcome. */
static void socket_write_done(struct oa_thread *t, int fd, struct oa_fd *f, ssize_t r, int err)
{
	if (!f->connecting || !oa_fd_lock_slot(t, fd, f))
		return;
	if (f->connecting) {
		if (r >= 0)
			connect_resolved(t, f, 0, NULL);
		else if (!oa_errno_transient(err))
			connect_resolved(t, f, err, NULL);
	}
	oa_fd_unlock_slot(fd, f);
}

static ssize_t send_slow(const struct oa_send_call *c, uint8_t kind)
{
	struct oa_thread *t;
	struct oa_fd *f;
	if (!io_enter(c->fd, kind, &t, &f))
		return oa_send_real(c);
	ssize_t r;
	int err;
#if OA_FEATURE_FILES
	if (kind & OA_FD_FILE) {
		uint64_t start = oa_now();
		r = oa_send_real(c);
		err = errno;
		oa_file_io_span(t, c->fd, "file write", start, r, err);
		return io_leave(r, err);
	}
#endif
	inflight_enter(c->fd, kind, &f->writers);
	if (oa_conn_undecided(f) && oa_fd_lock_slot(t, c->fd, f)) {
		oa_conn_decide(t, f, c->iov, c->iovcnt, oa_iov_total(c->iov, c->iovcnt), true);
		oa_fd_unlock_slot(c->fd, f);
	}
	const struct oa_conn_protocol *sender = oa_conn_sender(f);
	r = sender ? OA_CONN_CALL(sender, send, t, f, c, kind) : oa_send_real(c);
	err = errno;
	socket_write_done(t, c->fd, f, r, err);
	inflight_leave(&f->writers);
	return io_leave(r, err);
}

IO_HOOK(ssize_t, write, (int fd, const void *buf, size_t len), (fd, buf, len), false, send_slow,
	struct iovec one = {(void *)buf, len};
	struct oa_send_call c = {.op = OA_SEND_WRITE, .fd = fd, .iov = &one, .iovcnt = 1})
IO_HOOK(ssize_t, send, (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags),
	false, send_slow, struct iovec one = {(void *)buf, len};
	struct oa_send_call c = {
	    .op = OA_SEND_SEND, .fd = fd, .flags = flags, .iov = &one, .iovcnt = 1})
IO_HOOK(ssize_t, sendto,
	(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
	 socklen_t to_len),
	(fd, buf, len, flags, to, to_len), false, send_slow, struct iovec one = {(void *)buf, len};
	struct oa_send_call c = {.op = OA_SEND_SENDTO,
				 .fd = fd,
				 .flags = flags,
				 .iov = &one,
				 .iovcnt = 1,
				 .to = to,
				 .to_len = to_len})
IO_HOOK(ssize_t, writev, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt), false,
	send_slow,
	struct oa_send_call c = {.op = OA_SEND_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt})
IO_HOOK(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags), !msg,
	send_slow,
	struct oa_send_call c = {.op = OA_SEND_SENDMSG,
				 .fd = fd,
				 .flags = flags,
				 .iov = msg->msg_iov,
				 .iovcnt = (int)msg->msg_iovlen,
				 .msg = msg})

/* Batched sends are not given inserted headers: each message's bytes are
 * fed as sent. */
OA_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags)
{
	if (!oa_conn_pay_owed(fd))
		return -1;
	uint8_t kind = oa_fd_kind(fd);
	if (!(kind & OA_FD_WATCH) || !oa_hook_enter()) {
		oa_fd_mark_lost(fd, kind);
		return oa_real_sendmmsg()(fd, vec, n, flags);
	}
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
	if (f)
		inflight_enter(fd, kind, &f->writers);
	uint64_t start = oa_now();
	int r = oa_real_sendmmsg()(fd, vec, n, flags);
	int err = errno;
	if (t && f && oa_fd_lock_slot(t, fd, f)) {
		for (int i = 0; i < r && f->proto; i++)
			oa_conn_sent(t, fd, f, vec[i].msg_hdr.msg_iov,
				     (int)vec[i].msg_hdr.msg_iovlen, vec[i].msg_len, start);
		oa_fd_unlock_slot(fd, f);
		socket_write_done(t, fd, f, r, err);
	} else if (r > 0) {
		oa_fd_mark_lost(fd, kind);
	}
	if (f)
		inflight_leave(&f->writers);
	oa_hook_leave();
	errno = err;
	return r;
}

/* Bytes moved into or out of a watched socket without passing through our
 * hands: the parsers learn their count only. */
static void moved_unseen(int out_fd, int in_fd, ssize_t r, int err)
{
	int fds[2] = {out_fd, in_fd};
	for (int i = 0; i < 2; i++) {
		uint8_t kind = oa_fd_kind(fds[i]);
		if (!(kind & OA_FD_WATCH))
			continue;
		if (!oa_hook_enter()) {
			oa_fd_mark_lost(fds[i], kind);
			continue;
		}
		struct oa_thread *t = oa_thread_get();
		struct oa_fd *f = oa_fd_slot(fds[i]);
		if (t && f && oa_fd_lock_slot(t, fds[i], f)) {
			if (r > 0)
				oa_conn_unseen(t, fds[i], f, (size_t)r, i == 0);
			oa_fd_unlock_slot(fds[i], f);
			if (i == 0)
				socket_write_done(t, fds[i], f, r, err);
		} else if (r > 0) {
			oa_fd_mark_lost(fds[i], kind);
		}
		oa_hook_leave();
	}
}

OA_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	if (!oa_conn_pay_owed(out_fd))
		return -1;
	ssize_t r = oa_real_sendfile()(out_fd, in_fd, offset, count);
	if (oa_fd_kind(out_fd) & OA_FD_WATCH) {
		int err = errno;
		moved_unseen(out_fd, -1, r, err);
		errno = err;
	}
	return r;
}

OA_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t count)
{
	if (!oa_conn_pay_owed(out_fd))
		return -1;
	ssize_t r = oa_real_sendfile64()(out_fd, in_fd, offset, count);
	if (oa_fd_kind(out_fd) & OA_FD_WATCH) {
		int err = errno;
		moved_unseen(out_fd, -1, r, err);
		errno = err;
	}
	return r;
}

OA_EXPORT ssize_t splice(int in_fd, loff_t *in_off, int out_fd, loff_t *out_off, size_t len,
			 unsigned int flags)
{
	if (!oa_conn_pay_owed(out_fd))
		return -1;
	ssize_t r = oa_real_splice()(in_fd, in_off, out_fd, out_off, len, flags);
	if ((oa_fd_kind(out_fd) | oa_fd_kind(in_fd)) & OA_FD_WATCH) {
		int err = errno;
		moved_unseen(out_fd, in_fd, r, err);
		errno = err;
	}
	return r;
}

OA_FAMILY(sockets) = {
    .name = "sockets",
    .atfork_child = oa_fdtable_atfork_child,
};
