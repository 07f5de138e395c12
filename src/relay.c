#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fdguard.h"
#include "hex.h"
#include "log.h"
#include "mem.h"
#include "parcel.h"
#include "runtime.h"
#include "sys.h"
#include "text.h"

/* The exporter is told when this much waits, else it sends on its schedule. */
#define WAKE_BYTES (1u << 20)
/* Past this, the host stops reading: clients wait (boundedly) for room. */
#define QUEUE_LIMIT_BYTES (64u << 20)
#define MAX_EVENTS	  64

/* Defined by the exporter: the relay only queues, the exporter sends. */
void oa_exporter_parcels_queued(size_t bytes);

static void drop_fd(int *fd)
{
	if (*fd >= 0)
		oa_fd_release(*fd);
	*fd = -1;
}

static socklen_t abstract_address(struct sockaddr_un *sa, const char *name, size_t len)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	sa->sun_path[0] = '\0';
	memcpy(sa->sun_path + 1, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static uint64_t now_ns(void)
{
	return oa_mono_ns();
}

/* ---- client */

static struct {
	pthread_mutex_t lock; /* one sender at a time: exporter, exit or exec path */
	int fd;
	char name[100];
	size_t name_len;
	struct oa_relay_fingerprint ours;   /* of this process's settings */
	struct oa_relay_fingerprint relays; /* of the relay's (passed on to children) */
} client = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

bool oa_relay_applies(const struct oa_config *cfg)
{
	return cfg->exporter == OA_EXPORTER_OTLP || cfg->exporter == OA_EXPORTER_FILE;
}

/* A number in base 16 or 10, at most max: false when there is no digit or
 * it is larger. By hand: strtoull's code is pages that every command of a
 * traced script would touch for this alone. */
static bool parse_number(const char *s, unsigned base, uint64_t max, uint64_t *out,
			 const char **end)
{
	uint64_t v = 0;
	const char *p = s;
	for (int d; (d = oa_hex_digit(*p)) >= 0 && (unsigned)d < base; p++) {
		if (v > (max - (uint64_t)d) / base)
			return false;
		v = v * base + (uint64_t)d;
	}
	*out = v;
	*end = p;
	return p != s;
}

/* "FULL-OPEN@NAME[#FD]": the relay's fingerprints, its socket, and a
 * connection kept open across an exec. */
static bool parse_value(const char *value, struct oa_relay_fingerprint *fp, const char **name,
			size_t *name_len, int *fd)
{
	const char *end;
	uint64_t full, without_headers;
	if (!parse_number(value, 16, UINT64_MAX, &full, &end) || *end != '-' ||
	    !parse_number(end + 1, 16, UINT64_MAX, &without_headers, &end) || *end != '@')
		return false;
	const char *n = end + 1;
	const char *hash = strchr(n, '#');
	size_t len = hash ? (size_t)(hash - n) : strlen(n);
	if (len == 0 || len >= sizeof client.name)
		return false;
	*fd = -1;
	if (hash) {
		uint64_t v;
		if (!parse_number(hash + 1, 10, INT_MAX, &v, &end) || *end)
			return false;
		*fd = (int)v;
	}
	fp->full = full;
	fp->without_headers = without_headers;
	*name = n;
	*name_len = len;
	return true;
}

/* Adds the bytes written to *written. */
static bool write_all(int fd, const struct iovec *iov_in, int n_iov, uint64_t deadline_ns,
		      size_t *written)
{
	struct iovec iov[2];
	memcpy(iov, iov_in, (size_t)n_iov * sizeof *iov);
	int first = 0;
	while (first < n_iov) {
		struct msghdr msg = {.msg_iov = iov + first, .msg_iovlen = (size_t)(n_iov - first)};
		ssize_t w = syscall(SYS_sendmsg, fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return false;
			uint64_t now = now_ns();
			if (now >= deadline_ns)
				return false;
			uint64_t left = deadline_ns - now;
			struct timespec ts = {(time_t)(left / 1000000000u),
					      (long)(left % 1000000000u)};
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			syscall(SYS_ppoll, &p, 1, &ts, NULL, 0);
			continue;
		}
		size_t done = (size_t)w;
		*written += done;
		while (first < n_iov && done >= iov[first].iov_len)
			done -= iov[first++].iov_len;
		if (first < n_iov) {
			iov[first].iov_base = (char *)iov[first].iov_base + done;
			iov[first].iov_len -= done;
		}
	}
	return true;
}

static bool send_frame_locked(enum oa_relay_frame type, const void *payload, uint32_t len,
			      uint32_t spans, uint8_t format, uint64_t deadline_ns)
{
	if (client.fd < 0)
		return false;
	uint8_t header[OA_RELAY_HEADER_SIZE] = {0};
	memcpy(header, &len, 4);
	header[4] = (uint8_t)type;
	header[5] = format;
	memcpy(header + 8, &spans, 4);
	struct iovec iov[2] = {{header, sizeof header}, {(void *)payload, len}};
	size_t written = 0;
	if (write_all(client.fd, iov, len ? 2 : 1, deadline_ns, &written))
		return true;
	/* A frame cut short is discarded by the host: the caller sends it
	 * whole by itself. */
	oa_debug("the relay %.*s is gone (%s%s); exporting from this process", (int)client.name_len,
		 client.name, strerror(errno), written ? ", in the middle of a frame" : "");
	drop_fd(&client.fd);
	return false;
}

static bool say_hello(void)
{
	uint32_t hello[2] = {OA_RELAY_VERSION, (uint32_t)getpid()};
	return send_frame_locked(OA_RELAY_HELLO, hello, sizeof hello, 0, 0, now_ns() + 100000000u);
}

static bool connect_locked(void)
{
	oa_fd_make_begin();
	int fd = oa_fd_own((int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	oa_fd_make_end();
	if (fd < 0)
		return false;
	struct sockaddr_un sa;
	socklen_t sa_len = abstract_address(&sa, client.name, client.name_len);
	if (syscall(SYS_connect, fd, &sa, sa_len) != 0) {
		oa_fd_release(fd);
		return false;
	}
	client.fd = fd;
	return say_hello();
}

static bool adopt_locked(int fd)
{
	/* Only a socket connected to the relay named in the environment. */
	struct sockaddr_un peer;
	socklen_t peer_len = sizeof peer;
	if (syscall(SYS_getpeername, fd, &peer, &peer_len) != 0 || peer.sun_family != AF_UNIX ||
	    peer_len != offsetof(struct sockaddr_un, sun_path) + 1 + client.name_len ||
	    peer.sun_path[0] != '\0' ||
	    memcmp(peer.sun_path + 1, client.name, client.name_len) != 0)
		return false;
	syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
	client.fd = oa_fd_own(fd);
	/* Our first frame commits what the previous image left tentative. */
	return send_frame_locked(OA_RELAY_COMMIT, NULL, 0, 0, 0, now_ns() + 100000000u);
}

/* "<fingerprint>@<name>": how OTLPAUTO_RELAY names a relay. */
static void format_value(char *buf, size_t size, const struct oa_relay_fingerprint *fp,
			 const char *name, size_t name_len)
{
	struct oa_text t = oa_text_into(buf, size);
	oa_text_hex64(&t, fp->full);
	oa_text_mem(&t, "-", 1);
	oa_text_hex64(&t, fp->without_headers);
	oa_text_mem(&t, "@", 1);
	oa_text_mem(&t, name, name_len);
}

bool oa_relay_init(const char *value, const struct oa_relay_fingerprint *ours, bool has_headers)
{
	client.ours = *ours;
	const char *name;
	size_t len;
	int fd;
	/* A process without headers of its own (its parent's were kept out of
	 * its environment) sends through a relay that has some. */
	if (!value || !parse_value(value, &client.relays, &name, &len, &fd) ||
	    !(client.relays.full == ours->full ||
	      (!has_headers && client.relays.without_headers == ours->without_headers)))
		return false;
	pthread_mutex_lock(&client.lock);
	memcpy(client.name, name, len);
	client.name_len = len;
	bool ok = (fd >= 0 && adopt_locked(fd)) || connect_locked();
	pthread_mutex_unlock(&client.lock);
	return ok;
}

bool oa_relay_connected(void)
{
	return __atomic_load_n(&client.fd, __ATOMIC_RELAXED) >= 0;
}

bool oa_relay_send(enum oa_relay_frame type, const void *payload, uint32_t len, uint32_t spans,
		   uint8_t format, uint64_t deadline_ns)
{
	/* From a signal handler (mem.h), no lock is waited for. */
	if (oa_mem_signal_safe() ? pthread_mutex_trylock(&client.lock) != 0
				 : pthread_mutex_lock(&client.lock) != 0)
		return false;
	bool ok = send_frame_locked(type, payload, len, spans, format, deadline_ns);
	pthread_mutex_unlock(&client.lock);
	return ok;
}

int oa_relay_keep_across_exec(bool keep)
{
	int fd = client.fd;
	if (fd >= 0)
		syscall(SYS_fcntl, fd, F_SETFD, keep ? 0 : FD_CLOEXEC);
	return fd;
}

/* ---- host */

struct conn {
	struct conn *next;
	int fd;
	uint32_t got; /* bytes of the current frame read */
	uint8_t header[OA_RELAY_HEADER_SIZE];
	struct oa_parcel *parcel; /* the frame's payload, being read */
	uint8_t type;
	bool said_hello, reported;
	bool outlived; /* the client still ran when the relay ended */
	struct oa_parcel *tentative, **tentative_tail;
	/* payloads of control frames: the largest is the stats (a client of an
	 * older build sends a shorter one) */
	uint8_t scratch[sizeof(struct oa_relay_stats)];
};

/* ENDED: the host exits, its relay is shut (oa_relay_host_end). */
enum host_state { HOST_NONE, HOST_STARTING, HOST_RUNNING, HOST_FAILED, HOST_ENDED };

static struct {
	int state; /* enum host_state */
	int listen_fd, epoll_fd, event_fd;
	char value[160]; /* OTLPAUTO_RELAY naming this host */
	uid_t uid;
	struct conn *conns;
	bool paused; /* the queue is over its limit: clients are not read */
	uint32_t drain_requested, drain_done; /* futex words */
	bool drain_ends;		      /* this drain is the relay's end */
	uint64_t spans_in;
	struct oa_relay_totals totals; /* written by the relay thread alone */
	/* Held by the relay thread while it works (it allocates), not while it
	 * waits: a fork waits for it, as for the exporter's, so that no child
	 * inherits an allocator lock it held (allocators without fork
	 * handlers: ASan's). */
	pthread_mutex_t working;
	bool fork_holds_working;
} host = {.listen_fd = -1, .epoll_fd = -1, .event_fd = -1, .working = PTHREAD_MUTEX_INITIALIZER};

static void commit_tentative(struct conn *c)
{
	struct oa_parcel *p = c->tentative;
	c->tentative = NULL;
	c->tentative_tail = &c->tentative;
	size_t bytes = 0;
	while (p) {
		struct oa_parcel *next = p->next;
		bytes += p->len;
		host.spans_in += p->spans;
		oa_parcels_push(p);
		p = next;
	}
	if (bytes)
		oa_exporter_parcels_queued(bytes);
}

static void cancel_tentative(struct conn *c)
{
	while (c->tentative) {
		struct oa_parcel *next = c->tentative->next;
		oa_parcel_free(c->tentative);
		c->tentative = next;
	}
	c->tentative_tail = &c->tentative;
}

static void close_conn(struct conn **link)
{
	struct conn *c = *link;
	*link = c->next;
	/* The connection's end commits: an exec that succeeded, or a process
	 * that died after sending. */
	commit_tentative(c);
	if (c->said_hello && !c->reported && !c->outlived)
		host.totals.unreported++;
	oa_parcel_free(c->parcel);
	syscall(SYS_epoll_ctl, host.epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	drop_fd(&c->fd);
	oa_free(c);
}

static void frame_done(struct conn *c)
{
	uint32_t spans;
	memcpy(&spans, c->header + 8, 4);
	/* Any frame after a tentative one means the process lives on in a
	 * new image (exec succeeded), except a cancel. */
	if (c->type == OA_RELAY_HELLO && !c->said_hello) {
		c->said_hello = true;
		host.totals.processes++;
	} else if (c->type == OA_RELAY_STATS) {
		uint32_t len;
		memcpy(&len, c->header, 4);
		struct oa_relay_stats s = {0};
		memcpy(&s, c->scratch, len < sizeof s ? len : sizeof s);
		struct oa_relay_stats *sum = &host.totals.reported;
		sum->exported += s.exported;
		sum->sampled_out += s.sampled_out;
		for (size_t i = 0; i < sizeof s.lost / sizeof s.lost[0]; i++)
			sum->lost[i] += s.lost[i];
		c->reported = c->header[5] == 1;
	}
	if (c->type == OA_RELAY_CANCEL)
		cancel_tentative(c);
	else if (c->type != OA_RELAY_TENTATIVE && c->type != OA_RELAY_STATS &&
		 c->type != OA_RELAY_METRICS)
		commit_tentative(c);
	if (c->type == OA_RELAY_METRICS && c->parcel) {
		oa_metric_parcels_push(c->parcel);
		c->parcel = NULL;
		oa_exporter_start_if_needed();
	}
	if (c->type == OA_RELAY_TENTATIVE && c->parcel) {
		*c->tentative_tail = c->parcel;
		c->tentative_tail = &c->parcel->next;
		c->parcel->next = NULL;
		c->parcel = NULL;
	} else if (c->type == OA_RELAY_PARCEL && c->parcel) {
		host.spans_in += c->parcel->spans;
		size_t len = c->parcel->len;
		oa_parcels_push(c->parcel);
		c->parcel = NULL;
		oa_exporter_parcels_queued(len);
	}
	c->got = 0;
}

/* Reads what is there; false when the connection ended or broke the protocol. */
static bool read_conn(struct conn *c)
{
	for (;;) {
		uint32_t len;
		void *dst;
		size_t want;
		if (c->got < OA_RELAY_HEADER_SIZE) {
			dst = c->header + c->got;
			want = OA_RELAY_HEADER_SIZE - c->got;
		} else {
			memcpy(&len, c->header, 4);
			uint32_t at = c->got - OA_RELAY_HEADER_SIZE;
			uint8_t *base = c->parcel ? c->parcel->data : c->scratch;
			dst = base + at;
			want = len - at;
		}
		ssize_t n = syscall(SYS_recvfrom, c->fd, dst, want, MSG_DONTWAIT, NULL, NULL);
		if (n <= 0)
			return n < 0 && (errno == EAGAIN || errno == EINTR);
		c->got += (uint32_t)n;
		if (c->got == OA_RELAY_HEADER_SIZE) {
			memcpy(&len, c->header, 4);
			c->type = c->header[4];
			bool carries = c->type == OA_RELAY_PARCEL ||
				       c->type == OA_RELAY_TENTATIVE || c->type == OA_RELAY_METRICS;
			uint8_t format = c->header[5];
			if (c->type < OA_RELAY_HELLO || c->type > OA_RELAY_METRICS ||
			    (carries
				 ? len > OA_RELAY_MAX_PAYLOAD ||
				       (format != OA_PARCEL_PROTOBUF && format != OA_PARCEL_JSON)
				 : len > sizeof c->scratch))
				return false;
			uint32_t spans;
			memcpy(&spans, c->header + 8, 4);
			if (carries && !(c->parcel = oa_parcel_new(len, spans, format)))
				return false;
		}
		if (c->got >= OA_RELAY_HEADER_SIZE) {
			memcpy(&len, c->header, 4);
			if (c->got == OA_RELAY_HEADER_SIZE + len)
				frame_done(c);
		}
	}
}

static void watch(int fd, void *ptr, uint32_t events, int op)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};
	syscall(SYS_epoll_ctl, host.epoll_fd, op, fd, &ev);
}

static void accept_all(void)
{
	for (;;) {
		oa_fd_make_begin();
		int fd = oa_fd_own((int)syscall(SYS_accept4, host.listen_fd, NULL, NULL,
						SOCK_CLOEXEC | SOCK_NONBLOCK));
		oa_fd_make_end();
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t cred_len = sizeof cred;
		if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0 ||
		    (cred.uid != host.uid && cred.uid != 0)) {
			oa_fd_release(fd);
			continue;
		}
		struct conn *c = oa_calloc(1, sizeof *c);
		if (!c) {
			oa_fd_release(fd);
			continue;
		}
		c->fd = fd;
		c->tentative_tail = &c->tentative;
		c->next = host.conns;
		host.conns = c;
		watch(c->fd, c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
	}
}

static void read_all(void)
{
	accept_all();
	for (struct conn **link = &host.conns; *link;) {
		if (read_conn(*link))
			link = &(*link)->next;
		else
			close_conn(link);
	}
}

/* Over the queue limit, clients are not read (they wait for room); below
 * it again, they are. */
static void pace(void)
{
	bool over = oa_parcels_bytes() > QUEUE_LIMIT_BYTES;
	if (over == host.paused)
		return;
	host.paused = over;
	for (struct conn *c = host.conns; c; c = c->next)
		watch(c->fd, c, over ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
}

/* The relay's end, before the host's last flush: no client connects or
 * writes from now on (a connect is refused, a send fails with EPIPE: that
 * client exports by itself), so what they wrote before is all there is,
 * and it is read to its end. A frame cut short by the shutdown is
 * discarded: its sender did not see it sent, and sends it whole itself.
 * Tentative parcels are committed (close_conn). */
static void end_relay(void)
{
	syscall(SYS_shutdown, host.listen_fd, SHUT_RD);
	accept_all(); /* connected, not yet accepted: they may have written */
	syscall(SYS_epoll_ctl, host.epoll_fd, EPOLL_CTL_DEL, host.listen_fd, NULL);
	drop_fd(&host.listen_fd);
	for (struct conn *c = host.conns; c; c = c->next) {
		struct timespec now = {0, 0};
		struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
		c->outlived = syscall(SYS_ppoll, &p, 1, &now, NULL, 0) == 0;
		syscall(SYS_shutdown, c->fd, SHUT_RD);
	}
	/* Shut, a connection reads as ended once emptied. */
	while (host.conns) {
		read_conn(host.conns);
		close_conn(&host.conns);
	}
	host.paused = false;
}

static void *host_main(void *arg)
{
	(void)arg;
	oa_tls.internal = 1;
	pthread_mutex_lock(&host.working);
	oa_sys_clean_thread_stack();
	pthread_mutex_unlock(&host.working);
	struct epoll_event events[MAX_EVENTS];
	for (;;) {
		int n = (int)syscall(SYS_epoll_wait, host.epoll_fd, events, MAX_EVENTS,
				     host.paused ? 10 : -1);
		pthread_mutex_lock(&host.working);
		for (int i = 0; i < n; i++) {
			void *ptr = events[i].data.ptr;
			if (ptr == &host.listen_fd) {
				accept_all();
			} else if (ptr == &host.event_fd) {
				uint64_t v;
				syscall(SYS_read, host.event_fd, &v, sizeof v);
				uint32_t req =
				    __atomic_load_n(&host.drain_requested, __ATOMIC_ACQUIRE);
				if (__atomic_load_n(&host.drain_ends, __ATOMIC_ACQUIRE)) {
					end_relay();
				} else {
					read_all();
					for (struct conn *c = host.conns; c; c = c->next)
						commit_tentative(c);
				}
				__atomic_store_n(&host.drain_done, req, __ATOMIC_RELEASE);
				syscall(SYS_futex, &host.drain_done, FUTEX_WAKE_PRIVATE, INT_MAX,
					NULL, NULL, 0);
			} else {
				/* Read even when paused: a closing client's last
				 * bytes are read before its connection goes. */
				struct conn **link = &host.conns;
				while (*link && *link != ptr)
					link = &(*link)->next;
				if (*link && !read_conn(*link))
					close_conn(link);
			}
		}
		pace();
		pthread_mutex_unlock(&host.working);
	}
	return NULL;
}

static bool host_listen(void)
{
	uint64_t token;
	if (getrandom(&token, sizeof token, GRND_NONBLOCK) != sizeof token)
		token = now_ns() ^ ((uint64_t)getpid() << 32);
	char name[64];
	struct oa_text t = oa_text_into(name, sizeof name);
	oa_text_str(&t, "otlpauto.");
	oa_text_int(&t, getpid());
	oa_text_mem(&t, ".", 1);
	oa_text_hex64(&t, token);
	size_t name_len = (size_t)(t.at - name);
	oa_fd_make_begin();
	int fd = oa_fd_own(
	    (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	oa_fd_make_end();
	if (fd < 0)
		return false;
	struct sockaddr_un sa;
	socklen_t sa_len = abstract_address(&sa, name, name_len);
	if (syscall(SYS_bind, fd, &sa, sa_len) != 0 || syscall(SYS_listen, fd, SOMAXCONN) != 0) {
		oa_fd_release(fd);
		return false;
	}
	host.listen_fd = fd;
	host.uid = geteuid();
	format_value(host.value, sizeof host.value, &client.ours, name, name_len);
	return true;
}

/* The relay thread, on the listener (and connections) in place. */
static bool host_run(void)
{
	oa_fd_make_begin();
	host.epoll_fd = oa_fd_own((int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC));
	host.event_fd = oa_fd_own((int)syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK));
	oa_fd_make_end();
	if (host.epoll_fd < 0 || host.event_fd < 0)
		return false;
	watch(host.listen_fd, &host.listen_fd, EPOLLIN, EPOLL_CTL_ADD);
	for (struct conn *c = host.conns; c; c = c->next)
		watch(c->fd, c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
	watch(host.event_fd, &host.event_fd, EPOLLIN, EPOLL_CTL_ADD);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t thread;
	uint8_t was_internal = oa_tls.internal;
	oa_tls.internal = 1;
	int err = oa_sys_pthread_create(&thread, &attr, host_main, NULL);
	oa_tls.internal = was_internal;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err == 0;
}

static bool host_start(void)
{
	return host_listen() && host_run();
}

const char *oa_relay_for_child(char *buf, size_t size, bool own_ok)
{
	if (oa_relay_connected()) {
		format_value(buf, size, &client.relays, client.name, client.name_len);
		return buf;
	}
	int state = __atomic_load_n(&host.state, __ATOMIC_ACQUIRE);
	if (state == HOST_NONE && own_ok &&
	    __atomic_compare_exchange_n(&host.state, &state, HOST_STARTING, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		state = host_start() ? HOST_RUNNING : HOST_FAILED;
		if (state == HOST_FAILED) {
			drop_fd(&host.listen_fd);
			oa_debug("cannot host a relay: %s", strerror(errno));
		}
		__atomic_store_n(&host.state, state, __ATOMIC_RELEASE);
	}
	if (state != HOST_RUNNING)
		return NULL;
	struct oa_text t = oa_text_into(buf, size);
	oa_text_str(&t, host.value);
	return buf;
}

/* Reads the rest of a frame a client is writing now: a connection is
 * handed to the next image between frames. False when it does not come
 * before the deadline. */
static bool finish_frame(struct conn *c, uint64_t deadline_ns)
{
	while (c->got) {
		if (!read_conn(c))
			return false;
		if (!c->got)
			return true;
		uint64_t now = now_ns();
		if (now >= deadline_ns)
			return false;
		struct timespec ts = {0, 1000000};
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		syscall(SYS_ppoll, &p, 1, &ts, NULL, 0);
	}
	return true;
}

bool oa_relay_host_keep_across_exec(char *entry, size_t size, uint64_t deadline_ns)
{
	if (__atomic_load_n(&host.state, __ATOMIC_ACQUIRE) != HOST_RUNNING)
		return false;
	/* Held until the exec: the relay thread reads nothing meanwhile. */
	pthread_mutex_lock(&host.working);
	struct oa_text t = oa_text_into(entry, size);
	oa_text_str(&t, OA_RELAY_HOST_ENV "=");
	oa_text_int(&t, host.listen_fd);
	for (struct conn **link = &host.conns; *link;) {
		struct conn *c = *link;
		if (!finish_frame(c, deadline_ns)) {
			close_conn(link);
			continue;
		}
		/* Their parcels are ours to send before the exec (the caller's
		 * flush follows): the next image starts with clean connections. */
		commit_tentative(c);
		if (t.last - t.at > 16) {
			oa_text_mem(&t, ",", 1);
			oa_text_int(&t, c->fd);
			syscall(SYS_fcntl, c->fd, F_SETFD, 0);
		}
		link = &c->next;
	}
	syscall(SYS_fcntl, host.listen_fd, F_SETFD, 0);
	return true;
}

void oa_relay_host_exec_failed(void)
{
	if (__atomic_load_n(&host.state, __ATOMIC_ACQUIRE) != HOST_RUNNING)
		return;
	syscall(SYS_fcntl, host.listen_fd, F_SETFD, FD_CLOEXEC);
	for (struct conn *c = host.conns; c; c = c->next)
		syscall(SYS_fcntl, c->fd, F_SETFD, FD_CLOEXEC);
	pthread_mutex_unlock(&host.working);
}

bool oa_relay_host_adopt(const char *value)
{
	char *end;
	long fd = strtol(value, &end, 10);
	int listening = 0;
	socklen_t len = sizeof listening;
	struct sockaddr_un sa;
	socklen_t sa_len = sizeof sa;
	if (end == value || fd < 0 || fd > INT_MAX ||
	    syscall(SYS_getsockopt, (int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
	    !listening || syscall(SYS_getsockname, (int)fd, &sa, &sa_len) != 0 ||
	    sa.sun_family != AF_UNIX || sa_len <= offsetof(struct sockaddr_un, sun_path) + 1 ||
	    sa.sun_path[0] != '\0')
		return false;
	size_t name_len = sa_len - offsetof(struct sockaddr_un, sun_path) - 1;
	host.listen_fd = oa_fd_own((int)fd);
	syscall(SYS_fcntl, host.listen_fd, F_SETFD, FD_CLOEXEC);
	host.uid = geteuid();
	format_value(host.value, sizeof host.value, &client.ours, sa.sun_path + 1, name_len);
	while (*end == ',') {
		long c_fd = strtol(end + 1, &end, 10);
		struct conn *c = c_fd >= 0 && c_fd <= INT_MAX ? oa_calloc(1, sizeof *c) : NULL;
		if (!c)
			continue;
		c->fd = oa_fd_own((int)c_fd);
		syscall(SYS_fcntl, c->fd, F_SETFD, FD_CLOEXEC);
		c->said_hello = true; /* counted by the previous image */
		c->tentative_tail = &c->tentative;
		c->next = host.conns;
		host.conns = c;
	}
	bool running = host_run();
	__atomic_store_n(&host.state, running ? HOST_RUNNING : HOST_FAILED, __ATOMIC_RELEASE);
	return running;
}

/* Asks the relay thread for a round (`ends`: the last) and waits for it
 * until deadline_ns. */
static void drain(bool ends, uint64_t deadline_ns)
{
	__atomic_store_n(&host.drain_ends, ends, __ATOMIC_RELEASE);
	uint32_t req = __atomic_add_fetch(&host.drain_requested, 1, __ATOMIC_ACQ_REL);
	uint64_t one = 1;
	syscall(SYS_write, host.event_fd, &one, sizeof one);
	for (;;) {
		uint32_t done = __atomic_load_n(&host.drain_done, __ATOMIC_ACQUIRE);
		if ((int32_t)(done - req) >= 0)
			return;
		uint64_t now = now_ns();
		if (now >= deadline_ns)
			return;
		uint64_t left = deadline_ns - now;
		struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
		syscall(SYS_futex, &host.drain_done, FUTEX_WAIT_PRIVATE, done, &ts, NULL, 0);
	}
}

void oa_relay_host_drain(uint64_t deadline_ns)
{
	if (__atomic_load_n(&host.state, __ATOMIC_ACQUIRE) == HOST_RUNNING)
		drain(false, deadline_ns);
}

/* The relay's end is bounded work (what the sockets hold): waited for past
 * a deadline that is too close, so that the exit flush finds all of it. */
#define END_WAIT_MIN_NS 10000000u

void oa_relay_host_end(uint64_t deadline_ns)
{
	int running = HOST_RUNNING;
	if (!__atomic_compare_exchange_n(&host.state, &running, HOST_ENDED, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	uint64_t least = now_ns() + END_WAIT_MIN_NS;
	drain(true, deadline_ns > least ? deadline_ns : least);
}

bool oa_relay_hosting(void)
{
	return __atomic_load_n(&host.state, __ATOMIC_ACQUIRE) != HOST_NONE;
}

uint64_t oa_relay_host_spans_in(void)
{
	return __atomic_load_n(&host.spans_in, __ATOMIC_RELAXED);
}

void oa_relay_host_totals(struct oa_relay_totals *totals)
{
	*totals = host.totals;
	totals->spans_in = oa_relay_host_spans_in();
}

/* What the last report said, for the next to send the change. */
static struct oa_relay_stats last_report;

void oa_relay_report(bool final, bool async, uint64_t deadline_ns)
{
	struct oa_relay_stats last = last_report;
	struct oa_relay_stats now = {
	    .exported = __atomic_load_n(&oa_rt.spans_exported, __ATOMIC_RELAXED),
	    .sampled_out = __atomic_load_n(&oa_rt.spans_sampled_out, __ATOMIC_RELAXED),
	};
	_Static_assert(sizeof now.lost / sizeof now.lost[0] == OA_DROP_COUNT, "every reason");
	for (size_t i = 0; i < OA_DROP_COUNT; i++)
		now.lost[i] = __atomic_load_n(&oa_rt.dropped[i], __ATOMIC_RELAXED);
	struct oa_relay_stats delta = {.exported = now.exported - last.exported,
				       .sampled_out = now.sampled_out - last.sampled_out};
	for (size_t i = 0; i < OA_DROP_COUNT; i++)
		delta.lost[i] = now.lost[i] - last.lost[i];
	if (!oa_relay_connected())
		return;
	if (async ? pthread_mutex_trylock(&client.lock) != 0
		  : pthread_mutex_lock(&client.lock) != 0)
		return;
	if (send_frame_locked(OA_RELAY_STATS, &delta, sizeof delta, 0, final, deadline_ns))
		last_report = now;
	pthread_mutex_unlock(&client.lock);
}

void oa_relay_atfork_prepare(void)
{
	host.fork_holds_working = false;
	int state = __atomic_load_n(&host.state, __ATOMIC_ACQUIRE);
	if (state != HOST_RUNNING && state != HOST_ENDED)
		return;
	host.fork_holds_working = oa_sys_fork_lock(&host.working);
}

void oa_relay_atfork_parent(void)
{
	if (host.fork_holds_working)
		pthread_mutex_unlock(&host.working);
	host.fork_holds_working = false;
}

void oa_relay_atfork_child(void)
{
	if (host.fork_holds_working)
		pthread_mutex_unlock(&host.working);
	else
		pthread_mutex_init(&host.working, NULL);
	host.fork_holds_working = false;
	pthread_mutex_init(&client.lock, NULL);
	/* The parent's sockets stay the parent's: closing our copies does not
	 * end them. Leaked host memory, not freed: the relay thread may have
	 * been mid-update. */
	bool was_host = host.state == HOST_RUNNING;
	drop_fd(&host.listen_fd);
	drop_fd(&host.epoll_fd);
	drop_fd(&host.event_fd);
	for (struct conn *c = host.conns; c; c = c->next)
		drop_fd(&c->fd);
	host.conns = NULL;
	host.state = HOST_NONE;
	host.paused = false;
	host.spans_in = 0;
	memset(&last_report, 0, sizeof last_report);
	memset(&host.totals, 0, sizeof host.totals);
	bool had_client = client.fd >= 0;
	drop_fd(&client.fd);
	/* A child of a host relays to it; a child of a client to the same relay. */
	if (was_host) {
		struct oa_relay_fingerprint fp;
		const char *name;
		size_t len;
		int fd;
		if (parse_value(host.value, &fp, &name, &len, &fd)) {
			client.relays = fp;
			memcpy(client.name, name, len);
			client.name_len = len;
			had_client = true;
		}
	}
	if (had_client)
		connect_locked();
}
