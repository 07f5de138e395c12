/* The fd slots, the life of the application's sockets (opened, connecting
 * or accepted, closed) and the connections' protocols (conn.h, protocol.h):
 * the linker gathers every OA_PROTOCOL into the section oa_protocols and
 * defines its bounds.
 *
 * Non-blocking connects (EINPROGRESS): the span stays open in the fd's slot
 * and ends at the first of: getsockopt(SO_ERROR) reporting an error, or 0
 * with the peer known (getpeername); a read or write that succeeds or fails
 * with something other than EAGAIN/EINTR; connect called again (EISCONN,
 * or an error); close (SO_ERROR and getpeername asked then; still pending:
 * error.type "cancelled"). poll/select/epoll are not hooked: the end is the
 * first of those calls after the connection completed. The socket options
 * and names the core asks for are raw system calls (sys.h). */
#include "conn.h"

#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addr_text.h"
#include "clock.h"
#include "dns_names.h"
#include "payload.h"

extern const struct oa_conn_protocol __stop_oa_protocols[] __attribute__((visibility("hidden")));

static bool switched_on(const struct oa_conn_protocol *p)
{
	return (oa_rt.cfg.hooks & p->hooks) != 0;
}

/* ---- slots */

void oa_fd_forget(int fd)
{
	/* A vfork child's descriptors are its own; the table is its parent's. */
	if (oa_in_vfork_child())
		return;
	oa_fd_kind_clear(fd, UINT8_MAX);
}

struct oa_fd *oa_fd_claim(int fd)
{
	if (!oa_fdtable_init(sizeof(struct oa_fd), OA_FD_LOST))
		return NULL;
	struct oa_fd *f = oa_fd_slot(fd);
	if (!f || !oa_fd_lock(fd))
		return NULL;
	oa_fd_forget(fd);
	memset(f, 0, offsetof(struct oa_fd, state));
	return f;
}

void oa_fd_claim_end(int fd, uint8_t bits)
{
	oa_fd_kind_set(fd, bits);
	oa_fd_unlock(fd);
}

bool oa_fd_lock_slot(struct oa_thread *t, int fd, struct oa_fd *f)
{
	if (!oa_fd_lock(fd))
		return false;
	if (oa_fd_kind(fd) & OA_FD_LOST) {
		oa_conn_stop(t, f);
		oa_fd_kind_clear(fd, OA_FD_LOST);
	}
	return true;
}

void oa_fd_unlock_slot(int fd, struct oa_fd *f)
{
	if ((!f->proto || f->tls_next) && !f->connecting)
		oa_fd_kind_clear(fd, OA_FD_WATCH);
	oa_fd_unlock(fd);
}

/* ---- the socket's life */

bool oa_conn_tracking(void)
{
	return (oa_rt.cfg.hooks & (OA_HOOK_SOCKETS | oa_conn_switches())) != 0;
}

static int socket_option(int fd, int name, int *value)
{
	socklen_t len = sizeof *value;
	return (int)syscall(SYS_getsockopt, fd, SOL_SOCKET, name, value, &len);
}

static bool peer_known(int fd)
{
	union oa_sockaddr peer;
	socklen_t len = sizeof peer;
	return syscall(SYS_getpeername, fd, &peer.sa, &len) == 0;
}

void oa_conn_opened(int fd, int domain, int type)
{
	struct oa_fd *f =
	    oa_conn_tracked_family(domain) && oa_conn_tracking() ? oa_fd_claim(fd) : NULL;
	if (!f) {
		oa_fd_forget(fd);
		return;
	}
	f->family = (uint8_t)domain;
	f->transport = (uint8_t)(type & 0xf);
	oa_fd_claim_end(fd, OA_FD_SOCKET);
}

/* ---- connect */

#define CONNECT_PAYLOAD 512

static const char *network_type(int family)
{
	return family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : NULL;
}

static void connect_span(struct oa_thread *t, struct oa_fd *f, uint64_t end, int err,
			 const char *error_type)
{
	if (!(oa_rt.cfg.hooks & OA_HOOK_SOCKETS))
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
		oa_payload_attr_static(&w, OA_KEY_NETWORK_TYPE, network_type(f->family));
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
	bool ok =
	    socket_option(fd, SO_TYPE, &type) == 0 && socket_option(fd, SO_DOMAIN, &domain) == 0;
	errno = saved;
	if (!ok || !oa_conn_tracked_family(domain))
		return NULL;
	struct oa_fd *f = oa_fd_claim(fd);
	if (!f)
		return NULL;
	f->family = (uint8_t)domain;
	f->transport = (uint8_t)type;
	oa_fd_claim_end(fd, OA_FD_SOCKET);
	return f;
}

struct oa_fd *oa_conn_connect_begin(int fd, const struct sockaddr *addr, socklen_t len,
				    struct oa_thread **tp, bool *again)
{
	struct oa_thread *t = oa_conn_tracking() ? oa_thread_get() : NULL;
	struct oa_fd *f = t ? connecting_slot(fd) : NULL;
	if (!f || !oa_fd_lock_slot(t, fd, f))
		return NULL;
	*tp = t;
	*again = f->connecting;
	if (!*again) {
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

void oa_conn_connect_end(struct oa_thread *t, int fd, struct oa_fd *f, bool again, int r, int err)
{
	if (!oa_fd_lock_slot(t, fd, f))
		return;
	/* an interrupted connect goes on in the background, as EINPROGRESS */
	if (again)
		connect_again(t, f, r, err);
	else if (r == 0 || err == EINPROGRESS || err == EINTR)
		connect_started(t, fd, f, r != 0);
	else
		connect_span(t, f, oa_now(), err, NULL);
	oa_fd_unlock_slot(fd, f);
}

void oa_conn_connect_error(int fd, int err)
{
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
	if (!t || !f || !oa_fd_lock_slot(t, fd, f))
		return;
	if (f->connecting) {
		if (err)
			connect_resolved(t, f, err, NULL);
		else if (peer_known(fd))
			connect_resolved(t, f, 0, NULL);
	}
	oa_fd_unlock_slot(fd, f);
}

void oa_conn_connect_io(struct oa_thread *t, struct oa_fd *f, ssize_t r, int err)
{
	if (r >= 0)
		connect_resolved(t, f, 0, NULL);
	else if (!oa_errno_transient(err))
		connect_resolved(t, f, err, NULL);
}

void oa_conn_connect_written(struct oa_thread *t, int fd, struct oa_fd *f, ssize_t r, int err)
{
	if (!oa_fd_lock_slot(t, fd, f))
		return;
	if (f->connecting)
		oa_conn_connect_io(t, f, r, err);
	oa_fd_unlock_slot(fd, f);
}

/* ---- accept, dup, close */

/* The local port of listening socket lfd, remembered in its slot. */
static uint16_t listener_port(int lfd, int fd)
{
	struct oa_fd *l = (oa_fd_kind(lfd) & OA_FD_SOCKET) ? oa_fd_slot(lfd) : NULL;
	if (l && l->role == OA_ROLE_LISTENER)
		return l->local_port;
	union oa_sockaddr local = {0};
	socklen_t len = sizeof local;
	uint16_t port =
	    syscall(SYS_getsockname, fd, &local.sa, &len) == 0 ? oa_sockaddr_port(&local.sa) : 0;
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

void oa_conn_accepted(int lfd, int fd, const struct sockaddr *addr, const socklen_t *addr_len)
{
	uint16_t port = oa_conn_tracking() ? listener_port(lfd, fd) : 0;
	struct oa_fd *f = oa_conn_tracking() ? oa_fd_claim(fd) : NULL;
	if (!f) {
		oa_fd_forget(fd);
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
		if (syscall(SYS_getpeername, fd, &f->peer.sa, &len) == 0)
			f->peer_len = len;
	}
	f->family = f->peer_len ? f->peer.sa.sa_family : AF_UNIX;
	uint8_t bits = OA_FD_SOCKET;
	if (oa_conn_tracked_family(f->family) && oa_conn_open(NULL, f))
		bits |= OA_FD_WATCH;
	oa_fd_claim_end(fd, bits);
}

void oa_conn_dup(int oldfd, int newfd)
{
	struct oa_fd *from = oa_fd_slot(oldfd);
	struct oa_fd *to = oa_fd_claim(newfd);
	if (!to)
		return;
	if (from && oa_fd_lock(oldfd)) {
		memcpy(to, from, offsetof(struct oa_fd, state));
		to->proto = NULL;
		to->tls_next = 0;
		memset(&to->tls, 0, sizeof to->tls);
		to->connecting = 0;
		to->reader = to->writer = 0;
		oa_fd_unlock(oldfd);
	}
	oa_fd_claim_end(newfd, OA_FD_SOCKET);
}

void oa_conn_closing(struct oa_thread *t, int fd, struct oa_fd *f)
{
	if (!oa_fd_lock_slot(t, fd, f))
		return;
	if (f->connecting) {
		int err = 0;
		socket_option(fd, SO_ERROR, &err);
		if (err)
			connect_resolved(t, f, err, NULL);
		else if (peer_known(fd))
			connect_resolved(t, f, 0, NULL);
		else
			connect_resolved(t, f, 0, "cancelled");
	}
	oa_conn_close(t, fd, f);
	oa_fd_unlock(fd);
}

/* ---- the connection's protocol */

uint32_t oa_conn_switches(void)
{
	uint32_t hooks = 0;
	for (const struct oa_conn_protocol *p = __start_oa_protocols; p < __stop_oa_protocols; p++)
		hooks |= p->hooks;
	return hooks;
}

bool oa_conn_open(struct oa_thread *t, struct oa_fd *f)
{
	if (f->transport != SOCK_STREAM)
		return false;
	for (const struct oa_conn_protocol *p = __start_oa_protocols; p < __stop_oa_protocols;
	     p++) {
		if (!p->detect && switched_on(p)) {
			p->start(t, f);
			f->opening_state = 1;
			return true;
		}
	}
	return false;
}

void oa_conn_stop(struct oa_thread *t, struct oa_fd *f)
{
	if (f->proto)
		f->proto->stop(t, f);
}

void oa_conn_detect(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		    size_t n, bool sent)
{
	/* only the opening protocol gives the connection up */
	if (f->wire_seen || !n || !f->proto || f->proto->detect)
		return;
	f->wire_seen = 1;
	bool from_client = sent == (f->role == OA_ROLE_CLIENT);
	const struct oa_conn_protocol *taker = NULL;
	for (const struct oa_conn_protocol *p = __start_oa_protocols; p < __stop_oa_protocols;
	     p++) {
		if (p->detect && p->server_first != from_client && switched_on(p) &&
		    (!taker || p->order < taker->order) && p->detect(iov, iovcnt, n))
			taker = p;
	}
	if (!taker)
		return;
	f->proto->stop(t, f);
	taker->start(t, f);
	f->opening_state = 0;
}

void oa_conn_read_any(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
		      int iovcnt, ssize_t r, int err)
{
	if (r > 0)
		oa_conn_decide(t, f, iov, iovcnt, (size_t)r, false);
	const struct oa_conn_protocol *p = f->proto;
	if (!p)
		return;
	if (r > 0)
		p->received(t, fd, f, iov, iovcnt, (size_t)r);
	else if (r == 0 && oa_iov_total(iov, iovcnt))
		p->read_end(t, fd, f, 0);
	else if (r < 0 && !oa_errno_transient(err))
		p->read_end(t, fd, f, err);
}

/* One read's result, as oa_conn_read_done (conn.h) has it for the hooks. */
static void read_done(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
		      int iovcnt, ssize_t r, int err, bool peek)
{
	if (f->connecting)
		oa_conn_connect_io(t, f, r, err);
	if (!peek)
		oa_conn_read_any(t, fd, f, iov, iovcnt, r, err);
}

void oa_conn_received_batch(struct oa_thread *t, int fd, struct oa_fd *f, uint8_t kind,
			    const struct mmsghdr *vec, int r, int err, bool peek)
{
	if (!oa_fd_lock_slot(t, fd, f)) {
		if (r > 0)
			oa_fd_mark_lost(fd, kind);
		return;
	}
	/* a failure is the stream's, peek or not */
	if (r < 0)
		read_done(t, fd, f, NULL, 0, r, err, false);
	for (int i = 0; i < r; i++)
		read_done(t, fd, f, vec[i].msg_hdr.msg_iov, (int)vec[i].msg_hdr.msg_iovlen,
			  vec[i].msg_len, 0, peek);
	oa_fd_unlock_slot(fd, f);
}

void oa_conn_sent(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		  size_t n, uint64_t start)
{
	oa_conn_decide(t, f, iov, iovcnt, n, true);
	if (f->proto)
		f->proto->sent(t, fd, f, iov, iovcnt, n, start);
}

void oa_conn_sent_batch(struct oa_thread *t, int fd, struct oa_fd *f, uint8_t kind,
			const struct mmsghdr *vec, int r, int err, uint64_t start)
{
	if (!oa_fd_lock_slot(t, fd, f)) {
		if (r > 0)
			oa_fd_mark_lost(fd, kind);
		return;
	}
	for (int i = 0; i < r && f->proto; i++)
		oa_conn_sent(t, fd, f, vec[i].msg_hdr.msg_iov, (int)vec[i].msg_hdr.msg_iovlen,
			     vec[i].msg_len, start);
	oa_fd_unlock_slot(fd, f);
	oa_conn_write_done(t, fd, f, r, err);
}

void oa_conn_unseen(struct oa_thread *t, int fd, struct oa_fd *f, size_t n, bool sent)
{
	/* bytes no one saw decide nothing: the opening protocol keeps them */
	f->wire_seen = 1;
	const struct oa_conn_protocol *p = f->proto;
	if (!p)
		return;
	if (!p->counts_unseen)
		p->stop(t, f);
	else if (sent)
		p->sent(t, fd, f, NULL, 0, n, 0);
	else
		p->received(t, fd, f, NULL, 0, n);
}

bool oa_conn_pay_owed(int fd)
{
	if (!(oa_fd_kind(fd) & OA_FD_OWED))
		return true;
	struct oa_fd *f = oa_fd_slot(fd);
	const struct oa_conn_protocol *owing =
	    f ? oa_conn_protocol_of(__atomic_load_n(&f->owing, __ATOMIC_ACQUIRE)) : NULL;
	return !owing || owing->flush_owed(fd, f);
}

void oa_conn_moved_unseen(int fd, uint8_t kind, ssize_t r, int err, bool sent)
{
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
	if (!t || !f || !oa_fd_lock_slot(t, fd, f)) {
		if (r > 0)
			oa_fd_mark_lost(fd, kind);
		return;
	}
	if (r > 0)
		oa_conn_unseen(t, fd, f, (size_t)r, sent);
	oa_fd_unlock_slot(fd, f);
	if (sent)
		oa_conn_write_done(t, fd, f, r, err);
}

void oa_conn_write_shut(int fd)
{
	struct oa_thread *t = oa_thread_get();
	struct oa_fd *f = oa_fd_slot(fd);
	if (!t || !f || !oa_fd_lock_slot(t, fd, f))
		return;
	oa_conn_write_end(t, fd, f);
	oa_fd_unlock_slot(fd, f);
}

void oa_conn_write_end(struct oa_thread *t, int fd, struct oa_fd *f)
{
	if (f->proto && f->proto->write_end)
		f->proto->write_end(t, fd, f);
}

void oa_conn_close(struct oa_thread *t, int fd, struct oa_fd *f)
{
	if (f->proto)
		f->proto->close(t, fd, f);
}

void oa_conn_tls_start(struct oa_thread *t, int fd, struct oa_fd *f)
{
	oa_fd_kind_clear(fd, OA_FD_WATCH);
	if (f->proto && f->tls_next) {
		f->tls_next = 0;
		return;
	}
	f->tls_next = 0;
	oa_conn_stop(t, f);
	f->wire_seen = 0;
	oa_conn_open(f->role == OA_ROLE_CLIENT ? t : NULL, f);
}
