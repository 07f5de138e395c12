/* The fd slots and the connections' protocols (conn.h, protocol.h): the
 * linker gathers every OA_PROTOCOL into the section oa_protocols and defines
 * its bounds. */
#include "conn.h"

#include <stddef.h>
#include <string.h>

#include "clock.h"

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
	oa_fd_kind_clear(fd, (uint8_t)~OA_FD_BUSY);
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

void oa_conn_sent(struct oa_thread *t, int fd, struct oa_fd *f, const struct iovec *iov, int iovcnt,
		  size_t n, uint64_t start)
{
	oa_conn_decide(t, f, iov, iovcnt, n, true);
	if (f->proto)
		f->proto->sent(t, fd, f, iov, iovcnt, n, start);
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
