/* Protocols plug into a connection here (src/conn.h runs the connection).
 * A protocol whose spans come from a stream socket's bytes (HTTP, Redis,
 * PostgreSQL, MySQL) defines one struct oa_conn_protocol with OA_PROTOCOL; the
 * connection calls it through this table and never names it. The table is
 * a linker section, as the families' (src/family.h).
 *
 * Which protocol a connection has: a stream socket that gets its role (a
 * connect, an accept) starts with the opening protocol, the one without
 * `detect` (HTTP). The first bytes that go either way are shown to the
 * detectors of the others, each looking at one side's bytes (the client's
 * or the server's); of those that accept them, the lowest `order` takes the
 * connection over, else it stays with the opening protocol. Every callback
 * but `send` and `flush_owed` runs under the fd's lock. */
#ifndef OTLPAUTO_PROTOCOL_H
#define OTLPAUTO_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct oa_thread;
struct oa_fd;

/* An application send: the function it called and its arguments. */
enum oa_send_op {
	OA_SEND_WRITE,
	OA_SEND_SEND,
	OA_SEND_SENDTO,
	OA_SEND_WRITEV,
	OA_SEND_SENDMSG,
};
struct oa_send_call {
	enum oa_send_op op;
	int fd;
	int flags;
	const struct iovec *iov;
	int iovcnt;
	const struct msghdr *msg;  /* OA_SEND_SENDMSG */
	const struct sockaddr *to; /* OA_SEND_SENDTO */
	socklen_t to_len;
};

struct oa_conn_protocol {
	const char *name;
	/* The OTLPAUTO_HOOKS switch it runs under. */
	uint32_t hooks;
	/* Whether a connection whose first bytes from the client (from the
	 * server: server_first) are these speaks it. NULL: the opening
	 * protocol. */
	bool (*detect)(const struct iovec *iov, int iovcnt, size_t n);
	bool server_first;
	uint8_t order;
	/* Takes the connection (its state is the fd's, struct oa_fd's
	 * `state`); t: NULL on an accepted socket. stop drops the state: the
	 * spans it holds open are never sent. */
	void (*start)(struct oa_thread *t, struct oa_fd *f);
	void (*stop)(struct oa_thread *t, struct oa_fd *f);
	/* n bytes of iov were read (iov NULL: n bytes passed unseen, counted
	 * only by a protocol that counts_unseen; another is stopped). */
	void (*received)(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
			 int iovcnt, size_t n);
	/* The peer ended the stream (err 0), or reading failed with err. */
	void (*read_end)(struct oa_thread *t, int fd, struct oa_fd *f, int err);
	/* Sends the application's call (the fd's lock not held) and returns
	 * what the call returns; feeds what went out. kind: the fd's kind
	 * bits at the call. */
	ssize_t (*send)(struct oa_thread *t, struct oa_fd *f, const struct oa_send_call *c,
			uint8_t kind);
	/* n bytes of iov were sent by a call that changes nothing (sendmmsg;
	 * iov NULL: unseen, as received); start: the ticks before it began. */
	void (*sent)(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov,
		     int iovcnt, size_t n, uint64_t start);
	/* The write side was shut down; NULL: nothing ends then. */
	void (*write_end)(struct oa_thread *t, int fd, struct oa_fd *f);
	/* The fd is being closed: what can end ends, the state is dropped. */
	void (*close)(struct oa_thread *t, int fd, struct oa_fd *f);
	/* Bytes the protocol added to the stream and still owes it (the fd's
	 * `owing` names the protocol) go out before a call that cannot carry
	 * them (sendfile, splice, sendmmsg); false (errno set) when they could
	 * not: the call fails. */
	bool (*flush_owed)(int fd, struct oa_fd *f);
	bool counts_unseen;
};

#define OA_PROTOCOL(id)                                                                            \
	__attribute__((used, section("oa_protocols"), aligned(sizeof(void *))))                    \
	const struct oa_conn_protocol oa_protocol_##id

/* The opening protocol is defined with OA_OPENING_PROTOCOL instead, which
 * also names it: the reads and writes of its connections, the common
 * path, call it directly (conn.h: OA_CONN_CALL; the link-time optimiser
 * folds the loads from its table). */
extern const struct oa_conn_protocol oa_conn_opening;
#define OA_OPENING_PROTOCOL                                                                        \
	__attribute__((used, section("oa_protocols"), aligned(sizeof(void *))))                    \
	const struct oa_conn_protocol oa_conn_opening

#endif
