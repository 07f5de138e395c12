/* Socket hooks: thin interposers that tell the connection (src/conn.c)
 * what the application called and what it returned: a socket opened,
 * connected, accepted, duplicated or closed; the reads and writes of a
 * watched fd, which reach its connection (and so its protocol) or the file
 * spans (files.c). An fd with nothing to watch costs one load of its kind
 * byte per call, and one of the count of threads that want to know which
 * socket a TLS library call uses (tls.c). */

/* The hooks must have the libc names (sendfile, not the sendfile64 that
 * _FILE_OFFSET_BITS=64 redirects it to); both names are defined below. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

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

OA_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!addr || len < sizeof addr->sa_family || !oa_conn_tracked_family(addr->sa_family) ||
	    !oa_hook_enter())
		return oa_real_connect()(fd, addr, len);
	int saved = errno;
	struct oa_thread *t;
	bool again;
	struct oa_fd *f = oa_conn_connect_begin(fd, addr, len, &t, &again);
	errno = saved;
	if (!f) {
		oa_hook_leave();
		return oa_real_connect()(fd, addr, len);
	}
	int r = oa_real_connect()(fd, addr, len);
	int err = r ? errno : 0;
	oa_conn_connect_end(t, fd, f, again, r, err);
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
	oa_conn_connect_error(fd, *(int *)value);
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
	oa_conn_opened(fd, domain, type);
	oa_hook_leave();
	errno = saved;
	return fd;
}

static void accepted(int lfd, int fd, const struct sockaddr *addr, const socklen_t *addr_len)
{
	if (!oa_hook_enter()) {
		oa_fd_forget(fd);
		return;
	}
	int saved = errno;
	oa_conn_accepted(lfd, fd, addr, addr_len);
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

/* newfd now refers to oldfd's file (dup, dup2, dup3). */
void oa_tracked_dup(int oldfd, int newfd)
{
	if (oldfd == newfd)
		return;
	oa_fd_forget(newfd);
	if (!(oa_fd_kind(oldfd) & OA_FD_SOCKET) || !oa_hook_enter())
		return;
	int saved = errno;
	oa_conn_dup(oldfd, newfd);
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
	oa_conn_write_shut(fd);
	oa_hook_leave();
	errno = saved;
	return r;
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
		oa_conn_closing(t, fd, f);
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

static ssize_t recv_real(const void *call)
{
	const struct recv_call *c = call;
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

/* Calls in flight per direction: a second one overlapping the first makes
 * the order of their bytes unknowable. Each call marks the direction with
 * its thread, in plain stores (no read-modify-write, which costs a locked
 * instruction per call): a call finds another's mark when it starts, or at
 * its end when the other marked in between (the later mark stays), so one of
 * two overlapping calls sees the other. */
static uintptr_t inflight_self(void)
{
	return (uintptr_t)&oa_tls;
}

static void inflight_enter(int fd, uint8_t kind, uintptr_t *mark)
{
	if (__atomic_load_n(mark, __ATOMIC_RELAXED))
		oa_fd_mark_lost(fd, kind);
	__atomic_store_n(mark, inflight_self(), __ATOMIC_RELAXED);
}

/* Right after the call, before its bytes reach the protocol. */
static void inflight_check(int fd, uint8_t kind, const uintptr_t *mark)
{
	if (__atomic_load_n(mark, __ATOMIC_RELAXED) != inflight_self())
		oa_fd_mark_lost(fd, kind);
}

/* Once the bytes are fed: a call begun meanwhile saw the mark. */
static void inflight_leave(uintptr_t *mark)
{
	if (__atomic_load_n(mark, __ATOMIC_RELAXED) == inflight_self())
		__atomic_store_n(mark, 0, __ATOMIC_RELAXED);
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

/* The slow path every watched read and write shares: for a file, the call
 * and its span; for a socket, the call made as the connection's (`conn`,
 * which returns its errno in *err) among the calls in flight its way. `real`
 * makes the call alone, when the hook cannot follow it. Inlined into
 * recv_slow and send_slow, the calls through `real` and `conn` are direct. */
static inline __attribute__((always_inline)) ssize_t
io_slow(int fd, uint8_t kind, bool sending, const void *c, ssize_t (*real)(const void *),
	ssize_t (*conn)(struct oa_thread *, struct oa_fd *, const void *, uint8_t, int *))
{
	struct oa_thread *t;
	struct oa_fd *f;
	if (!io_enter(fd, kind, &t, &f))
		return real(c);
	ssize_t r;
	int err;
#if OA_FEATURE_FILES
	if (kind & OA_FD_FILE) {
		uint64_t start = oa_now();
		r = real(c);
		err = errno;
		oa_file_io_span(t, fd, sending ? "file write" : "file read", start, r, err);
		return io_leave(r, err);
	}
#endif
	uintptr_t *inflight = sending ? &f->writer : &f->reader;
	inflight_enter(fd, kind, inflight);
	r = conn(t, f, c, kind, &err);
	inflight_leave(inflight);
	return io_leave(r, err);
}

/* A read as the connection's: its bytes (or end) go to the connection
 * under the fd's lock. */
static ssize_t recv_conn(struct oa_thread *t, struct oa_fd *f, const void *call, uint8_t kind,
			 int *errp)
{
	const struct recv_call *c = call;
	ssize_t r = recv_real(c);
	int err = *errp = errno;
	inflight_check(c->fd, kind, &f->reader);
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
		oa_conn_read_done(t, c->fd, f, iov, iovcnt, r, err, peek);
		oa_fd_unlock_slot(c->fd, f);
	} else if (r > 0 && !peek) {
		oa_fd_mark_lost(c->fd, kind);
	}
	return r;
}

static ssize_t recv_slow(const struct recv_call *c, uint8_t kind)
{
	return io_slow(c->fd, kind, false, c, recv_real, recv_conn);
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
	struct oa_thread *t;
	struct oa_fd *f;
	if (!(kind & OA_FD_WATCH) || !io_enter(fd, kind, &t, &f))
		return oa_real_recvmmsg()(fd, vec, n, flags, timeout);
	inflight_enter(fd, kind, &f->reader);
	int r = oa_real_recvmmsg()(fd, vec, n, flags, timeout);
	int err = errno;
	inflight_check(fd, kind, &f->reader);
	oa_conn_received_batch(t, fd, f, kind, vec, r, err, flags & MSG_PEEK);
	inflight_leave(&f->reader);
	return (int)io_leave(r, err);
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

static ssize_t send_real_any(const void *c)
{
	return oa_send_real(c);
}

/* A write as the connection's: the first bytes decide the protocol, which
 * sends the call (it may add bytes to it); a pending connect learns its
 * outcome. */
static ssize_t send_conn(struct oa_thread *t, struct oa_fd *f, const void *call, uint8_t kind,
			 int *err)
{
	const struct oa_send_call *c = call;
	if (oa_conn_undecided(f) && oa_fd_lock_slot(t, c->fd, f)) {
		oa_conn_decide(t, f, c->iov, c->iovcnt, oa_iov_total(c->iov, c->iovcnt), true);
		oa_fd_unlock_slot(c->fd, f);
	}
	const struct oa_conn_protocol *sender = oa_conn_sender(f);
	ssize_t r = sender ? OA_CONN_CALL(sender, send, t, f, c, kind) : oa_send_real(c);
	*err = errno;
	inflight_check(c->fd, kind, &f->writer);
	oa_conn_write_done(t, c->fd, f, r, *err);
	return r;
}

static ssize_t send_slow(const struct oa_send_call *c, uint8_t kind)
{
	return io_slow(c->fd, kind, true, c, send_real_any, send_conn);
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
	struct oa_thread *t;
	struct oa_fd *f;
	if (!(kind & OA_FD_WATCH) || !io_enter(fd, kind, &t, &f))
		return oa_real_sendmmsg()(fd, vec, n, flags);
	inflight_enter(fd, kind, &f->writer);
	uint64_t start = oa_now();
	int r = oa_real_sendmmsg()(fd, vec, n, flags);
	int err = errno;
	inflight_check(fd, kind, &f->writer);
	oa_conn_sent_batch(t, fd, f, kind, vec, r, err, start);
	inflight_leave(&f->writer);
	return (int)io_leave(r, err);
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
		oa_conn_moved_unseen(fds[i], kind, r, err, i == 0);
		oa_hook_leave();
	}
}

/* sendfile and sendfile64: the same hook for either offset type. */
#define SENDFILE_HOOK(name, off_type)                                                              \
	OA_EXPORT ssize_t name(int out_fd, int in_fd, off_type *offset, size_t count)              \
	{                                                                                          \
		if (!oa_conn_pay_owed(out_fd))                                                     \
			return -1;                                                                 \
		ssize_t r = oa_real_##name()(out_fd, in_fd, offset, count);                        \
		if (oa_fd_kind(out_fd) & OA_FD_WATCH) {                                            \
			int err = errno;                                                           \
			moved_unseen(out_fd, -1, r, err);                                          \
			errno = err;                                                               \
		}                                                                                  \
		return r;                                                                          \
	}
SENDFILE_HOOK(sendfile, off_t)
SENDFILE_HOOK(sendfile64, off64_t)

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
