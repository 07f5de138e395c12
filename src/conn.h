/* The application's sockets and files in the fd table (src/fdtable.h): each
 * fd's slot, and the life of a socket in it: opened, connecting (its connect
 * span, ended by whichever call learns the outcome) or accepted, its
 * protocol decided from its first bytes, bytes in and out, closed. The
 * socket hooks (hooks/sockets.c) are thin: they tell the connection what
 * the application called and what it returned; the connection passes the
 * stream's events to its protocol (src/protocol.h). */
#ifndef OTLPAUTO_CONN_H
#define OTLPAUTO_CONN_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "db_inject.h"
#include "fdtable.h"
#include "protocol.h"
#include "runtime.h"

/* Kind bits of an fd (the fd table's byte). */
enum oa_fd_bits {
	OA_FD_SOCKET = 1 << 0, /* an AF_INET, AF_INET6 or AF_UNIX socket of the application */
	OA_FD_FILE = 1 << 1,   /* a regular file opened while the files family is on */
	OA_FD_WATCH = 1 << 2,  /* its reads and writes have work: a pending connect, a protocol */
	OA_FD_LOST = 1 << 3,   /* bytes passed by unseen: the protocol's state is out of step */
	OA_FD_OWED = 1 << 4,   /* bytes a protocol added go with the next write */
};

enum oa_fd_role {
	OA_ROLE_NONE,
	OA_ROLE_CLIENT,	  /* connected by this process */
	OA_ROLE_SERVER,	  /* accepted by this process */
	OA_ROLE_LISTENER, /* accepted from: its local port is remembered */
};

union oa_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_un un;
};

/* The protocol's state in a slot: the largest protocol's (HTTP's; each
 * checks that its state fits). */
#define OA_CONN_STATE_SIZE 5248

/* A connection whose protocol is fed a TLS session's plaintext (hooks/tls.c)
 * instead of the socket's bytes, which then go unwatched. */
/* The comments a database client's write inside TLS gets, at most. */
#define OA_TLS_DB_COMMENTS 2
_Static_assert(OA_TLS_DB_COMMENTS *OA_DB_COMMENT_LEN <= OA_INJECT_MAX,
	       "a TLS write's comments fit its session's lines");

struct oa_tls_conn {
	/* The session (an SSL*, a gnutls_session_t); NULL: the socket's own
	 * bytes. Kept after the protocol's state is dropped, so that the
	 * session is known to have none. */
	const void *session;
	char version[8]; /* tls.protocol.version: "1.3" */
	char cipher[48]; /* tls.cipher, the IANA name: "TLS_AES_256_GCM_SHA384" */
	/* The SNI the client sent (""; none, or longer than this holds): the
	 * server.address of spans whose request has no Host. */
	char server_name[96];
	/* Client: header lines inserted into the plaintext (or a rewritten
	 * traceparent value, which goes instead of the application's next
	 * `replaces` bytes), still to be written once `before` more
	 * application bytes have gone out. */
	uint16_t lines_len, lines_sent;
	uint8_t replaces;
	/* A read or write moved plaintext: the handshake is over, and a
	 * call's start needs no timestamp for a handshake failure's span. */
	bool data_moved;
	size_t before;
	char lines[OA_INJECT_MAX];
	/* Client: a write that failed (SSL_ERROR_WANT_WRITE) after taking
	 * retry_taken of its bytes; OpenSSL wants it repeated as it was (a
	 * GnuTLS send, and an OpenSSL one with partial writes, returns what
	 * it took instead). */
	const void *retry_buf;
	size_t retry_num, retry_taken;
	/* Client of a database (OTLPAUTO_DB_PROPAGATION=comment): the
	 * comments its write gets (text in `lines`, contexts kept for the
	 * query messages `ordinal`), where they and their messages' new
	 * length fields go; kept while the write fails, to build it again as
	 * it was when it is repeated. The bytes a partial write leaves owed
	 * are in the fd's db_owed (its `owing` stays 0: the socket's own
	 * bytes are TLS records). */
	uint8_t db_rewrites;
	struct {
		uint32_t length_at, comment_at, ordinal;
		uint8_t length_len, length[4];
	} db_rewrite[OA_TLS_DB_COMMENTS];
};

/* The fields a read or write uses first, then the rest, packed: the state
 * starts 64-byte aligned (the slot's size is a multiple of 64). */
struct oa_fd {
	/* The protocol whose state `state` holds; NULL: none. */
	const struct oa_conn_protocol *proto;
	uint8_t role; /* enum oa_fd_role */
	uint8_t family;
	uint8_t transport;  /* SOCK_STREAM, SOCK_DGRAM, ... */
	uint8_t connecting; /* a non-blocking connect's span is open */
	uint8_t wire_seen;  /* a byte went either way: the protocol is decided */
	/* The protocol (oa_conn_protocol_id) that owes the stream bytes it
	 * added (with OA_FD_OWED): they go, also after its state is dropped. */
	uint8_t owing;
	/* The protocol's state is to go on inside the TLS session that
	 * follows (PostgreSQL's SSLRequest answered 'S', MySQL's SSLRequest):
	 * the socket's own bytes go unwatched meanwhile. */
	uint8_t tls_next;
	/* The state bytes are the opening protocol's (its start ran last). */
	uint8_t opening_state;
	uint16_t local_port;
	/* The thread (its &oa_tls) whose call, per direction, is in flight:
	 * overlapping calls lose the protocol's state (sockets.c). */
	uintptr_t reader, writer;
	uint64_t connect_start;
	struct oa_span_ctx connect_parent, connect_ctx;
	socklen_t peer_len;
	union oa_sockaddr peer;
	/* A database client's rewritten bytes still to go out (owing). */
	struct oa_db_owed db_owed;
	/* The TLS session whose plaintext the protocol is fed, if any. */
	struct oa_tls_conn tls;
	/* The protocol's state, or a file's path (hooks/files.c). */
	_Alignas(64) unsigned char state[OA_CONN_STATE_SIZE];
};

/* The slot of a tracked fd; only while holding its lock, or for fields
 * written before its kind bits were published. */
static inline struct oa_fd *oa_fd_slot(int fd)
{
	return oa_fdtable_slot(fd);
}

/* Locks the slot of a new fd (a socket, a file): kind bits cleared, the
 * fields before the state zeroed. NULL when the table cannot track it.
 * oa_fd_claim_end publishes the kind bits and unlocks. */
struct oa_fd *oa_fd_claim(int fd);
void oa_fd_claim_end(int fd, uint8_t bits);
/* Clears fd's kind bits: the number is closed or reused. */
void oa_fd_forget(int fd);

/* Locks fd's slot; a protocol's state that lost bytes (OA_FD_LOST) is
 * dropped first. False when the lock stays busy. */
bool oa_fd_lock_slot(struct oa_thread *t, int fd, struct oa_fd *f);
/* Unlocks, clearing OA_FD_WATCH when nothing is left to watch in the
 * socket's own bytes. */
void oa_fd_unlock_slot(int fd, struct oa_fd *f);

/* Bytes passed by a watched fd unseen: its protocol's state is out of step. */
static inline void oa_fd_mark_lost(int fd, uint8_t kind)
{
	if (kind & OA_FD_WATCH)
		oa_fd_kind_set(fd, OA_FD_LOST);
}

/* A call that failed with err may be repeated: nothing ended. */
static inline bool oa_errno_transient(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static inline size_t oa_iov_total(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	return total;
}

/* ---- the socket's life; called inside a hook (oa_hook_enter) */

/* Sockets are followed for their connect spans or their protocols. */
bool oa_conn_tracking(void);
static inline bool oa_conn_tracked_family(int family)
{
	return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
}
/* socket() returned the new fd. */
void oa_conn_opened(int fd, int domain, int type);
/* connect(fd, addr, len) is about to run: its span starts (or the call
 * repeats a pending non-blocking connect: *again). Returns the fd's slot,
 * unlocked, and the thread in *t; NULL when the connect is not followed. */
struct oa_fd *oa_conn_connect_begin(int fd, const struct sockaddr *addr, socklen_t len,
				    struct oa_thread **t, bool *again);
/* ... and it returned r (err: its errno): the span ends, or stays open
 * while the connect is pending; the socket is a client, its protocol
 * starts. */
void oa_conn_connect_end(struct oa_thread *t, int fd, struct oa_fd *f, bool again, int r, int err);
/* getsockopt(SO_ERROR) read err on a watched socket. */
void oa_conn_connect_error(int fd, int err);
/* A read or write on a socket whose connect is pending returned r (err:
 * its errno); under the lock. */
void oa_conn_connect_io(struct oa_thread *t, struct oa_fd *f, ssize_t r, int err);
/* ... the same for a write, without the lock. */
void oa_conn_connect_written(struct oa_thread *t, int fd, struct oa_fd *f, ssize_t r, int err);
/* accept on lfd returned fd, with the peer's address when the caller asked
 * for it (addr, addr_len; else it is asked for). */
void oa_conn_accepted(int lfd, int fd, const struct sockaddr *addr, const socklen_t *addr_len);
/* newfd now refers to socket oldfd's file: it keeps its role and peer, but
 * its protocol's state and TLS session stay with oldfd (two numbers cannot
 * share one stream's parsers). */
void oa_conn_dup(int oldfd, int newfd);
/* A watched socket is being closed: a pending connect's outcome (asked of
 * the kernel now), then the protocol's close. */
void oa_conn_closing(struct oa_thread *t, int fd, struct oa_fd *f);

/* ---- the connection's protocol; under the fd's lock but oa_conn_sender */

extern const struct oa_conn_protocol __start_oa_protocols[] __attribute__((visibility("hidden")));
/* A protocol in one byte (oa_fd's owing): 1 + its place in the table; 0:
 * none. */
static inline uint8_t oa_conn_protocol_id(const struct oa_conn_protocol *p)
{
	return p ? (uint8_t)(p - __start_oa_protocols + 1) : 0;
}
static inline const struct oa_conn_protocol *oa_conn_protocol_of(uint8_t id)
{
	return id ? &__start_oa_protocols[id - 1] : NULL;
}

/* The OTLPAUTO_HOOKS switches of every protocol. */
uint32_t oa_conn_switches(void);

/* A stream socket got its role: it starts with the opening protocol, when
 * its switch is on; false when none started. t: NULL for an accepted one. */
bool oa_conn_open(struct oa_thread *t, struct oa_fd *f);
/* Drops the protocol's state. */
void oa_conn_stop(struct oa_thread *t, struct oa_fd *f);
/* The first n bytes of iov went one way (`sent` by this process, or read):
 * the first such bytes of a connection decide its protocol. */
void oa_conn_detect(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		    size_t n, bool sent);
static inline void oa_conn_decide(struct oa_thread *t, struct oa_fd *f, const struct iovec *iov,
				  int iovcnt, size_t n, bool sent)
{
	if (!f->wire_seen)
		oa_conn_detect(t, f, iov, iovcnt, n, sent);
}
/* Whether the next bytes are still to decide the protocol: read without
 * the lock, so that the first write only takes it then. */
static inline bool oa_conn_undecided(const struct oa_fd *f)
{
	const struct oa_conn_protocol *p = __atomic_load_n(&f->proto, __ATOMIC_ACQUIRE);
	return !f->wire_seen && p && !p->detect;
}
/* Calls protocol p's callback fn: directly when p is the opening one. */
#define OA_CONN_CALL(p, fn, ...)                                                                   \
	((p) == &oa_conn_opening ? oa_conn_opening.fn(__VA_ARGS__) : (p)->fn(__VA_ARGS__))
/* A read returned r (err: its errno) into iov, under the lock: its first
 * bytes decide the protocol, which is told of them, or of the stream's end,
 * through the table. */
void oa_conn_read_any(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
		      int iovcnt, ssize_t r, int err);
/* The same, for the hooks: bytes for a decided connection's opening
 * protocol, the common path, go to it directly. It names the opening
 * protocol, which the core may not (the layering test). */
static inline void oa_conn_read(struct oa_thread *t, int fd, struct oa_fd *f,
				const struct iovec *iov, int iovcnt, ssize_t r, int err)
{
	if (r > 0 && f->wire_seen && f->proto == &oa_conn_opening)
		oa_conn_opening.received(t, fd, f, iov, iovcnt, (size_t)r);
	else
		oa_conn_read_any(t, fd, f, iov, iovcnt, r, err);
}
/* A read on a watched socket returned r (under the lock): a pending
 * connect's outcome, then the protocol (not for a peek). */
static inline void oa_conn_read_done(struct oa_thread *t, int fd, struct oa_fd *f,
				     const struct iovec *iov, int iovcnt, ssize_t r, int err,
				     bool peek)
{
	if (f->connecting)
		oa_conn_connect_io(t, f, r, err);
	if (!peek)
		oa_conn_read(t, fd, f, iov, iovcnt, r, err);
}
/* recvmmsg returned r (err: its errno) into vec's messages, each a read
 * (peek: MSG_PEEK). Without the lock (taken here; when it cannot be, the
 * bytes went unseen: kind, the fd's kind bits at the call). */
void oa_conn_received_batch(struct oa_thread *t, int fd, struct oa_fd *f, uint8_t kind,
			    const struct mmsghdr *vec, int r, int err, bool peek);
/* A write on a watched socket returned r, its protocol's side done
 * (without the lock): a pending connect's outcome. */
static inline void oa_conn_write_done(struct oa_thread *t, int fd, struct oa_fd *f, ssize_t r,
				      int err)
{
	if (f->connecting)
		oa_conn_connect_written(t, fd, f, r, err);
}
/* The protocol that sends an application's call (the one owing bytes, else
 * the connection's); NULL: the call goes as it is. Without the lock. */
static inline const struct oa_conn_protocol *oa_conn_sender(const struct oa_fd *f)
{
	uint8_t owing = __atomic_load_n(&f->owing, __ATOMIC_ACQUIRE);
	return owing ? oa_conn_protocol_of(owing) : __atomic_load_n(&f->proto, __ATOMIC_ACQUIRE);
}
/* n bytes of iov went out in a call that changes nothing (sendmmsg, a TLS
 * session's write), which began at start. */
void oa_conn_sent(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		  size_t n, uint64_t start);
/* n bytes went out (sent) or came in without passing through our hands. */
void oa_conn_unseen(struct oa_thread *t, int fd, struct oa_fd *f, size_t n, bool sent);
/* sendmmsg, which began at start, returned r (err: its errno): r of vec's
 * messages went as they were (no protocol adds bytes to them). Without
 * the lock (taken here; when it cannot be, the bytes went unseen: kind,
 * the fd's kind bits at the call). */
void oa_conn_sent_batch(struct oa_thread *t, int fd, struct oa_fd *f, uint8_t kind,
			const struct mmsghdr *vec, int r, int err, uint64_t start);
/* A call that moves bytes without passing them through our hands
 * (sendfile, splice) returned r (err) for watched fd: they went out (sent)
 * or came in; the protocol learns their count only. Without the lock. */
void oa_conn_moved_unseen(int fd, uint8_t kind, ssize_t r, int err, bool sent);
/* Bytes owed to the stream go out before a call that cannot carry them;
 * false (errno set) when they could not. Without the lock. */
bool oa_conn_pay_owed(int fd);
/* The write side was shut down (under the lock). */
void oa_conn_write_end(struct oa_thread *t, int fd, struct oa_fd *f);
/* The write side of watched fd was shut down. Without the lock. */
void oa_conn_write_shut(int fd);
/* The fd is being closed. */
void oa_conn_close(struct oa_thread *t, int fd, struct oa_fd *f);

/* ---- TLS: a session's plaintext instead of the socket's bytes */

/* The protocol's next bytes come inside a TLS session (its peer agreed to
 * one): its state waits for the session, and the socket's own bytes, the
 * handshake's, go unwatched. */
static inline void oa_conn_tls_follows(struct oa_fd *f)
{
	f->tls_next = 1;
}
/* A TLS session takes the connection over (under the lock): a protocol
 * waiting for it goes on with the plaintext,
 * else the opening protocol starts afresh and the plaintext's first bytes
 * decide, as a socket's do. The socket's own bytes go unwatched. */
void oa_conn_tls_start(struct oa_thread *t, int fd, struct oa_fd *f);

#endif
