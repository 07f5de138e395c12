/* TLS through OpenSSL and GnuTLS: the plaintext of SSL_read and SSL_write
 * (and their _ex variants; an SSL BIO's BIO_read and BIO_write),
 * gnutls_record_recv (_recv_seq, _recv_packet) and gnutls_record_send
 * (_send2, _send_range) goes to the connection of the socket the session
 * reads and writes (SSL_get_fd, gnutls_transport_get_int) as a plaintext
 * socket's bytes do: its protocol (HTTP, Redis, PostgreSQL, MySQL) is
 * decided by the plaintext's first bytes, or is the one that asked for
 * the session (PostgreSQL's SSLRequest answered 'S', MySQL's SSLRequest),
 * which goes on inside it. The first call on a session takes the
 * connection over (src/conn.h: oa_conn_tls_start), and the socket's own
 * reads and writes, the ciphertext, are no longer watched. A session whose
 * plaintext no protocol follows keeps the state given up: its calls pass
 * through after a look at the slot.
 *
 * A client request gets its traceparent as a plaintext one does, in header
 * lines inserted before the blank line ending its head, or, for a proxy's
 * request passing on the traceparent of the request it handles, a value
 * written instead of that one; they go out with the application's bytes
 * in one SSL_write of a copy when that fits 4 KB, else with SSL_write
 * calls of their own between the application's bytes, and the
 * application's call returns its own count. A call that fails part-way
 * (SSL_ERROR_WANT_WRITE) must be repeated by the program with the same
 * arguments: the repeat resumes where the failed call stopped, so OpenSSL
 * sees its own failed write repeated as it requires. With
 * SSL_MODE_ENABLE_PARTIAL_WRITE a call returns the application bytes that
 * went out, and the next one goes on, as a gnutls_record_send always does.
 *
 * A handshake that fails, in SSL_connect, SSL_accept, SSL_do_handshake,
 * gnutls_handshake or the first reads and writes that run it, gets a span,
 * as does a client's first read or write that fails for good (a TLS 1.3
 * server refuses the client's certificate after the client's handshake
 * ended). A request whose answer a TLS error cuts short has the library's
 * reason (the server's alert) as its error.type.
 *
 * The functions are found past our definitions, or, when the program's
 * global scope has no libssl (Python's _ssl, the libcurl our exporter opens
 * load theirs privately), in the libssl (libcrypto, libgnutls) already
 * loaded. The exporter's own HTTPS passes through: its threads are
 * internal. */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>

#include "clock.h"
#include "net.h"
#include "sys.h"

/* OpenSSL's declarations (ssl.h), without its headers: the build needs
 * none. */
typedef struct ssl_st SSL;
int SSL_read(SSL *ssl, void *buf, int num);
int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes);
int SSL_peek(SSL *ssl, void *buf, int num);
int SSL_peek_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes);
int SSL_write(SSL *ssl, const void *buf, int num);
int SSL_write_ex(SSL *ssl, const void *buf, size_t num, size_t *written);
int SSL_connect(SSL *ssl);
int SSL_accept(SSL *ssl);
int SSL_do_handshake(SSL *ssl);
int SSL_shutdown(SSL *ssl);
void SSL_free(SSL *ssl);
ssize_t SSL_sendfile(SSL *ssl, int fd, off_t offset, size_t size, int flags);

/* libcrypto's (bio.h). */
typedef struct bio_st BIO;
int BIO_read(BIO *bio, void *buf, int num);
int BIO_read_ex(BIO *bio, void *buf, size_t num, size_t *readbytes);
int BIO_write(BIO *bio, const void *buf, int num);
int BIO_write_ex(BIO *bio, const void *buf, size_t num, size_t *written);

/* GnuTLS's (gnutls.h). */
typedef struct gnutls_session_int *gnutls_session_t;
ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t size);
ssize_t gnutls_record_send(gnutls_session_t session, const void *data, size_t size);
ssize_t gnutls_record_send2(gnutls_session_t session, const void *data, size_t size, size_t pad,
			    unsigned flags);
ssize_t gnutls_record_recv_seq(gnutls_session_t session, void *data, size_t size,
			       unsigned char *seq);
typedef struct {
	size_t low, high;
} gnutls_range_st;
ssize_t gnutls_record_send_range(gnutls_session_t session, const void *data, size_t size,
				 const gnutls_range_st *range);
typedef struct mbuffer_st *gnutls_packet_t;
typedef struct {
	unsigned char *data;
	unsigned int size;
} gnutls_datum_t;
ssize_t gnutls_record_recv_packet(gnutls_session_t session, gnutls_packet_t *packet);
ssize_t gnutls_record_send_file(gnutls_session_t session, int fd, off_t *offset, size_t count);
int gnutls_handshake(gnutls_session_t session);
int gnutls_bye(gnutls_session_t session, int how);
void gnutls_deinit(gnutls_session_t session);

/* OpenSSL's constants (ssl.h, bio.h, stable across 1.1 and 3) and GnuTLS's
 * (gnutls.h). */
enum {
	X509_V_OK = 0,
	TLS_ST_OK = 1,
	BIO_TYPE_SSL = 7 | 0x0200,
	BIO_C_GET_SSL = 110,
	SSL_ERROR_SSL = 1,
	SSL_ERROR_SYSCALL = 5,
	SSL_ERROR_ZERO_RETURN = 6,
	SSL_WRITING = 2,
	SSL_READING = 3,
	SSL_CTRL_MODE = 33,
	SSL_MODE_ENABLE_PARTIAL_WRITE = 1,
	SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = 2,
	TLSEXT_NAMETYPE_host_name = 0,
	GNUTLS_NAME_DNS = 1,
	GNUTLS_E_INVALID_SESSION = -10,
	GNUTLS_E_FATAL_ALERT_RECEIVED = -12,
	GNUTLS_E_WARNING_ALERT_RECEIVED = -16,
	GNUTLS_E_AGAIN = -28,
	GNUTLS_E_REHANDSHAKE = -37,
	GNUTLS_E_INTERRUPTED = -52,
	GNUTLS_E_PREMATURE_TERMINATION = -110,
};

enum library { OPENSSL, GNUTLS };

/* ---- the real functions */

/* A slot's value once no definition was found. */
static char missing_mark;

static void *find_next(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);
	static const char *const libraries[] = {"libssl.so.3",	    "libssl.so.1.1",
						"libssl.so",	    "libcrypto.so.3",
						"libcrypto.so.1.1", "libgnutls.so.30"};
	for (size_t i = 0; !fn && i < sizeof libraries / sizeof *libraries; i++) {
		void *lib = dlopen(libraries[i], RTLD_LAZY | RTLD_NOLOAD);
		if (lib) {
			fn = dlsym(lib, name);
			dlclose(lib);
		}
	}
	return fn;
}

static __attribute__((noinline, cold)) void *resolve_first(void **slot, const char *name)
{
	void *fn = find_next(name);
	__atomic_store_n(slot, fn ? fn : (void *)&missing_mark, __ATOMIC_RELEASE);
	return fn ? fn : (void *)&missing_mark;
}

/* Inline: every hooked call asks for a few of these. */
static inline void *resolve(void **slot, const char *name)
{
	void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (__builtin_expect(fn == NULL, 0))
		fn = resolve_first(slot, name);
	return fn == (void *)&missing_mark ? NULL : fn;
}

#define TLS_REAL(ret, name, params)                                                                \
	static inline ret(*oa_real_##name(void)) params                                            \
	{                                                                                          \
		static void *slot;                                                                 \
		return (ret(*) params)resolve(&slot, #name);                                       \
	}

TLS_REAL(int, SSL_read, (SSL *, void *, int))
TLS_REAL(int, SSL_read_ex, (SSL *, void *, size_t, size_t *))
TLS_REAL(int, SSL_peek, (SSL *, void *, int))
TLS_REAL(int, SSL_peek_ex, (SSL *, void *, size_t, size_t *))
TLS_REAL(int, SSL_write, (SSL *, const void *, int))
TLS_REAL(int, SSL_write_ex, (SSL *, const void *, size_t, size_t *))
TLS_REAL(int, SSL_connect, (SSL *))
TLS_REAL(int, SSL_accept, (SSL *))
TLS_REAL(int, SSL_do_handshake, (SSL *))
TLS_REAL(int, SSL_shutdown, (SSL *))
TLS_REAL(void, SSL_free, (SSL *))
TLS_REAL(ssize_t, SSL_sendfile, (SSL *, int, off_t, size_t, int))
TLS_REAL(int, SSL_get_fd, (const SSL *))
TLS_REAL(int, SSL_get_error, (const SSL *, int))
TLS_REAL(int, SSL_want, (const SSL *))
TLS_REAL(const char *, SSL_get_version, (const SSL *))
TLS_REAL(const void *, SSL_get_current_cipher, (const SSL *))
TLS_REAL(const char *, SSL_CIPHER_standard_name, (const void *))
TLS_REAL(long, SSL_ctrl, (SSL *, int, long, void *))
TLS_REAL(long, SSL_get_verify_result, (const SSL *))
TLS_REAL(int, SSL_get_state, (const SSL *))
TLS_REAL(int, BIO_read, (BIO *, void *, int))
TLS_REAL(int, BIO_read_ex, (BIO *, void *, size_t, size_t *))
TLS_REAL(int, BIO_write, (BIO *, const void *, int))
TLS_REAL(int, BIO_write_ex, (BIO *, const void *, size_t, size_t *))
TLS_REAL(int, BIO_method_type, (const BIO *))
TLS_REAL(long, BIO_ctrl, (BIO *, int, long, void *))
TLS_REAL(const char *, SSL_get_servername, (const SSL *, int))
TLS_REAL(const char *, X509_verify_cert_error_string, (long))
TLS_REAL(unsigned long, ERR_peek_last_error, (void))
TLS_REAL(const char *, ERR_reason_error_string, (unsigned long))
TLS_REAL(ssize_t, gnutls_record_recv, (gnutls_session_t, void *, size_t))
TLS_REAL(ssize_t, gnutls_record_send, (gnutls_session_t, const void *, size_t))
TLS_REAL(ssize_t, gnutls_record_send2, (gnutls_session_t, const void *, size_t, size_t, unsigned))
TLS_REAL(ssize_t, gnutls_record_recv_seq, (gnutls_session_t, void *, size_t, unsigned char *))
TLS_REAL(ssize_t, gnutls_record_send_range,
	 (gnutls_session_t, const void *, size_t, const gnutls_range_st *))
TLS_REAL(ssize_t, gnutls_record_recv_packet, (gnutls_session_t, gnutls_packet_t *))
TLS_REAL(void, gnutls_packet_get, (gnutls_packet_t, gnutls_datum_t *, unsigned char *))
TLS_REAL(ssize_t, gnutls_record_send_file, (gnutls_session_t, int, off_t *, size_t))
TLS_REAL(int, gnutls_handshake, (gnutls_session_t))
TLS_REAL(int, gnutls_bye, (gnutls_session_t, int))
TLS_REAL(void, gnutls_deinit, (gnutls_session_t))
TLS_REAL(int, gnutls_transport_get_int, (gnutls_session_t))
TLS_REAL(int, gnutls_protocol_get_version, (gnutls_session_t))
TLS_REAL(const char *, gnutls_protocol_get_name, (int))
TLS_REAL(const char *, gnutls_ciphersuite_get, (gnutls_session_t))
TLS_REAL(int, gnutls_error_is_fatal, (int))
TLS_REAL(int, gnutls_server_name_get,
	 (gnutls_session_t, void *, size_t *, unsigned int *, unsigned int))
TLS_REAL(const char *, gnutls_strerror_name, (int))
TLS_REAL(int, gnutls_alert_get, (gnutls_session_t))
TLS_REAL(const char *, gnutls_alert_get_strname, (int))

/* ---- the session's socket */

static bool tls_on(void)
{
	return (oa_rt.cfg.hooks & (OA_HOOK_TLS | OA_HOOK_HTTP)) == (OA_HOOK_TLS | OA_HOOK_HTTP);
}

static void copy_text(char *out, size_t cap, const char *text)
{
	size_t len = text ? strnlen(text, cap - 1) : 0;
	memcpy(out, text ? text : "", len);
	out[len] = 0;
}

/* tls.cipher: the suite's IANA name (OpenSSL's own names differ). */
static void set_cipher(enum library lib, void *session, struct oa_tls_conn *c)
{
	const char *name = NULL;
	if (lib == OPENSSL) {
		const void *(*current)(const SSL *) = oa_real_SSL_get_current_cipher();
		const char *(*standard_name)(const void *) = oa_real_SSL_CIPHER_standard_name();
		const void *cipher = current && standard_name ? current(session) : NULL;
		name = cipher ? standard_name(cipher) : NULL;
	} else {
		const char *(*suite)(gnutls_session_t) = oa_real_gnutls_ciphersuite_get();
		name = suite ? suite(session) : NULL;
	}
	copy_text(c->cipher, sizeof c->cipher, name);
}

/* "TLSv1.3" (OpenSSL), "TLS1.3" (GnuTLS) -> "1.3": the semantic
 * conventions' tls.protocol.version. */
static void set_version(enum library lib, void *session, struct oa_tls_conn *c)
{
	const char *v = NULL;
	if (lib == OPENSSL) {
		const char *(*get_version)(const SSL *) = oa_real_SSL_get_version();
		v = get_version ? get_version(session) : NULL;
	} else {
		int (*get_version)(gnutls_session_t) = oa_real_gnutls_protocol_get_version();
		const char *(*get_name)(int) = oa_real_gnutls_protocol_get_name();
		v = get_version && get_name ? get_name(get_version(session)) : NULL;
	}
	if (v && strncmp(v, "TLSv", 4) == 0)
		v += 4;
	else if (v && strncmp(v, "TLS", 3) == 0)
		v += 3;
	copy_text(c->version, sizeof c->version, v);
}

/* The server name indication: the name an OpenSSL client sent (or will
 * send), the one a server received; "" when none, or when it does not fit.
 * A GnuTLS client's is not known: gnutls_server_name_get answers servers
 * only. */
static void get_server_name(enum library lib, void *session, char *out, size_t cap)
{
	out[0] = 0;
	if (lib == OPENSSL) {
		const char *(*servername)(const SSL *, int) = oa_real_SSL_get_servername();
		const char *name =
		    servername ? servername(session, TLSEXT_NAMETYPE_host_name) : NULL;
		if (name && strnlen(name, cap) < cap)
			copy_text(out, cap, name);
		return;
	}
	int (*name_get)(gnutls_session_t, void *, size_t *, unsigned int *, unsigned int) =
	    oa_real_gnutls_server_name_get();
	size_t len = cap; /* written with its NUL when it fits */
	unsigned int type = 0;
	if (!name_get || name_get(session, out, &len, &type, 0) != 0 || type != GNUTLS_NAME_DNS ||
	    len >= cap)
		out[0] = 0;
}

/* What the session's spans say of it; known once its handshake is over. */
static void describe(enum library lib, void *ssl, struct oa_tls_conn *c)
{
	set_version(lib, ssl, c);
	set_cipher(lib, ssl, c);
	get_server_name(lib, ssl, c->server_name, sizeof c->server_name);
}

/* The first plaintext a session moves: a handshake run inside its first
 * calls (SSL_set_accept_state, an SSL BIO's) ended after the takeover. */
static void data_moved(enum library lib, void *ssl, struct oa_tls_conn *c)
{
	if (c->data_moved)
		return;
	describe(lib, ssl, c);
	__atomic_store_n(&c->data_moved, true, __ATOMIC_RELEASE);
}

/* Sessions and their sockets, an open-addressed table: a key is claimed
 * with a compare-and-swap, its fd (+1, 0: none yet) published after it. A
 * session is looked up by the threads that call it, which the program
 * already orders. Full: a session the library cannot name goes untraced,
 * another asks the library at each call. */
#define SESSIONS_MAX   1024
#define SESSIONS_PROBE 16
#define GONE	       ((const void *)1)

static struct {
	const void *ssl;
	int fd_plus_1;
	struct oa_fd *slot; /* the socket's, once the session took it over */
} sessions[SESSIONS_MAX] OA_LARGE_BSS;

static size_t session_hash(const void *ssl)
{
	return (size_t)(((uintptr_t)ssl >> 4) * UINT64_C(0x9e3779b97f4a7c15) >> 54);
}

/* The session's entry; SESSIONS_MAX: none. */
static inline size_t sessions_index(const void *ssl)
{
	size_t h = session_hash(ssl);
	for (size_t i = 0; i < SESSIONS_PROBE; i++) {
		size_t k = (h + i) % SESSIONS_MAX;
		const void *key = __atomic_load_n(&sessions[k].ssl, __ATOMIC_ACQUIRE);
		if (key == ssl)
			return k;
		if (!key)
			break;
	}
	return SESSIONS_MAX;
}

static int sessions_find(const void *ssl)
{
	size_t k = sessions_index(ssl);
	return k < SESSIONS_MAX ? __atomic_load_n(&sessions[k].fd_plus_1, __ATOMIC_ACQUIRE) - 1
				: -1;
}

/* The session's socket (slot: its slot, or NULL), in its entry if it has
 * one, else in the first free one. */
static void sessions_add(const void *ssl, int fd, struct oa_fd *slot)
{
	size_t k = sessions_index(ssl);
	for (size_t i = 0, h = session_hash(ssl); k == SESSIONS_MAX && i < SESSIONS_PROBE; i++) {
		size_t at = (h + i) % SESSIONS_MAX;
		const void *key = __atomic_load_n(&sessions[at].ssl, __ATOMIC_ACQUIRE);
		if ((key == GONE || !key) &&
		    __atomic_compare_exchange_n(&sessions[at].ssl, &key, ssl, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			k = at;
	}
	if (k == SESSIONS_MAX)
		return;
	__atomic_store_n(&sessions[k].slot, slot, __ATOMIC_RELAXED);
	__atomic_store_n(&sessions[k].fd_plus_1, fd + 1, __ATOMIC_RELEASE);
}

static void sessions_remove(const void *ssl)
{
	size_t h = session_hash(ssl);
	for (size_t i = 0; i < SESSIONS_PROBE; i++) {
		size_t k = (h + i) % SESSIONS_MAX;
		const void *key = __atomic_load_n(&sessions[k].ssl, __ATOMIC_ACQUIRE);
		if (!key)
			return;
		if (key == ssl) {
			__atomic_store_n(&sessions[k].fd_plus_1, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&sessions[k].slot, NULL, __ATOMIC_RELAXED);
			__atomic_store_n(&sessions[k].ssl, GONE, __ATOMIC_RELEASE);
			return;
		}
	}
}

/* The session's first call: the connection's protocol is fed its
 * plaintext, and the socket's own bytes go unwatched. A client restarting
 * HTTP keeps the request that opened its connection (http.c: the parent of
 * the first request), which a proxy may have left by now. */
static void take_over(struct oa_thread *t, int fd, struct oa_fd *f, enum library lib, void *ssl)
{
	struct oa_http_conn *h = oa_http_state(f);
	bool client = f->role == OA_ROLE_CLIENT;
	bool opener_set = f->opening_state && h->opener_set;
	struct oa_span_ctx opener_parent = h->opener_parent;
	uint64_t opener_remote_parent = h->opener_remote_parent;
	uint8_t opener_tracestate_len = h->opener_tracestate_len;
	char opener_tracestate[OA_HTTP_TRACESTATE_CAP];
	memcpy(opener_tracestate, h->opener_tracestate, sizeof opener_tracestate);
	oa_conn_tls_start(t, fd, f);
	if (client && opener_set && oa_http_on(f) && !h->opener_set) {
		h->opener_set = true;
		h->opener_parent = opener_parent;
		h->opener_remote_parent = opener_remote_parent;
		h->opener_tracestate_len = opener_tracestate_len;
		memcpy(h->opener_tracestate, opener_tracestate, sizeof opener_tracestate);
	}
	memset(&f->tls, 0, sizeof f->tls);
	if (!f->owing) /* the socket's, else: the session's plaintext owes nothing yet */
		f->db_owed.n = 0;
	describe(lib, ssl, &f->tls);
	__atomic_store_n(&f->tls.session, ssl, __ATOMIC_RELEASE);
	sessions_add(ssl, fd, f);
}

/* Whether a session's client has header lines or a failed write under
 * way: its writes must come here even when its protocol's state is gone. */
static bool writes_owed(const struct oa_tls_conn *c)
{
	return c->lines_len || c->retry_num;
}

/* ---- which socket a session uses */

/* SSL_get_fd names the socket of a session that reads and writes through
 * OpenSSL's socket BIO (gnutls_transport_get_int, one given as a number). A
 * program with a BIO of its own (curl) leaves it unnamed: then the socket
 * is the one the calling thread reads or writes during one of the
 * session's calls (the socket hooks tell, oa_tls_saw, while oa_tls_probes
 * is not zero), remembered here until SSL_free (gnutls_deinit). */
uint32_t oa_tls_probes;
static __thread bool probing __attribute__((tls_model("initial-exec")));
/* -1: no socket yet; -2: more than one */
static __thread int probed_fd __attribute__((tls_model("initial-exec")));

/* Only sockets count: a handshake may read a certificate file meanwhile. */
void oa_tls_saw(int fd)
{
	if (probing && (oa_fd_kind(fd) & OA_FD_SOCKET))
		probed_fd = probed_fd == -1 || probed_fd == fd ? fd : -2;
}

static void probe_begin(void)
{
	probed_fd = -1;
	probing = true;
	__atomic_add_fetch(&oa_tls_probes, 1, __ATOMIC_RELAXED);
}

static int probe_end(void)
{
	__atomic_sub_fetch(&oa_tls_probes, 1, __ATOMIC_RELAXED);
	probing = false;
	return probed_fd;
}

/* The session's socket; -1 when not known yet, -2 when it is none we
 * track. A session that took its socket over is in the table (take_over),
 * and a slot still taken over by it names the socket without asking the
 * library (SSL_get_fd walks the BIO chain: a third of what the hooks add to
 * a call); SSL_free and a new connection on the socket end the takeover. A
 * session the library cannot name is in the table from its first call
 * (probed). */
static int session_fd(enum library lib, void *ssl)
{
	int known = sessions_find(ssl);
	if (known >= 0 && (oa_fd_kind(known) & OA_FD_SOCKET)) {
		const struct oa_fd *f = oa_fd_slot(known);
		if (f && __atomic_load_n(&f->tls.session, __ATOMIC_ACQUIRE) == ssl)
			return known;
	}
	int fd = -1;
	if (lib == OPENSSL) {
		int (*get_fd)(const SSL *) = oa_real_SSL_get_fd();
		fd = get_fd ? get_fd(ssl) : -1;
	} else {
		int (*get_fd)(gnutls_session_t) = oa_real_gnutls_transport_get_int();
		fd = get_fd ? get_fd(ssl) : -1;
	}
	return fd < 0 ? known : fd;
}

/* After a call that probed: the socket it used, remembered (or that it
 * used none we track, when it used another or several). */
static int probed(void *ssl)
{
	int fd = probe_end();
	if (fd == -1)
		return -1;
	if (fd < 0 || !(oa_fd_kind(fd) & OA_FD_SOCKET))
		fd = -2;
	sessions_add(ssl, fd, NULL);
	return fd;
}

/* The slot of fd, whose connection is fed ssl's plaintext, locked; NULL
 * when there is nothing to do: the socket is not one we track, or no
 * protocol follows the session's plaintext. */
static struct oa_fd *session_slot(struct oa_thread *t, enum library lib, void *ssl, int fd)
{
	if (fd < 0 || !(oa_fd_kind(fd) & OA_FD_SOCKET))
		return NULL;
	struct oa_fd *f = oa_fd_slot(fd);
	if (!f)
		return NULL;
	/* no protocol: known without the lock, as only this session's calls
	 * change it (a new session on the socket starts with another pointer) */
	if (__atomic_load_n(&f->tls.session, __ATOMIC_ACQUIRE) == ssl &&
	    !__atomic_load_n(&f->proto, __ATOMIC_ACQUIRE) && !writes_owed(&f->tls) && !f->db_owed.n)
		return NULL;
	if (!oa_fd_lock_slot(t, fd, f))
		return NULL;
	if (f->tls.session == ssl)
		return f;
	bool trackable = (f->role == OA_ROLE_CLIENT || f->role == OA_ROLE_SERVER) &&
			 f->transport == SOCK_STREAM && !f->connecting;
	if (!trackable) {
		oa_fd_unlock(fd);
		return NULL;
	}
	take_over(t, fd, f, lib, ssl);
	return f;
}

/* The slot of a read or write call's socket (*fd): as session_slot's
 * (*locked), or, when the session took it over and moved plaintext,
 * unlocked, from the session's entry (only the session's calls change
 * that): a server's call, and a read, need nothing from it before the real
 * call, the slot is locked after it (relock). */
static inline struct oa_fd *call_slot(struct oa_thread *t, enum library lib, void *ssl,
				      bool writing, int *fd, bool *locked)
{
	*locked = false;
	size_t k = sessions_index(ssl);
	if (k < SESSIONS_MAX) {
		int n = __atomic_load_n(&sessions[k].fd_plus_1, __ATOMIC_ACQUIRE) - 1;
		struct oa_fd *f = __atomic_load_n(&sessions[k].slot, __ATOMIC_RELAXED);
		if (f && n >= 0 && (oa_fd_kind(n) & OA_FD_SOCKET) &&
		    __atomic_load_n(&f->tls.session, __ATOMIC_ACQUIRE) == ssl &&
		    __atomic_load_n(&f->tls.data_moved, __ATOMIC_ACQUIRE) &&
		    (!writing || f->role != OA_ROLE_CLIENT)) {
			*fd = n;
			return __atomic_load_n(&f->proto, __ATOMIC_ACQUIRE) ? f : NULL;
		}
	}
	*fd = session_fd(lib, ssl);
	struct oa_fd *f = session_slot(t, lib, ssl, *fd);
	*locked = f != NULL;
	return f;
}

/* The slot again after the real call, locked, when its connection still
 * has a protocol fed the session's plaintext. */
static bool relock(struct oa_thread *t, int fd, struct oa_fd *f, void *ssl)
{
	if (!oa_fd_lock_slot(t, fd, f))
		return false;
	if (f->proto && f->tls.session == ssl)
		return true;
	oa_fd_unlock(fd);
	return false;
}

/* ---- a read or write call */

/* The function the program called, with the arguments beside the buffer
 * that its real calls need again. An SSL BIO's read or write is its
 * session's. */
enum tls_op {
	READ,
	READ_EX,
	PEEK,
	PEEK_EX,
	BIO_READ,
	BIO_READ_EX,
	RECV,
	RECV_SEQ,
	RECV_PACKET,
	WRITE,
	WRITE_EX,
	BIO_WRITE,
	BIO_WRITE_EX,
	SEND,
	SEND2,
	SEND_RANGE,
};

struct tls_call {
	enum tls_op op;
	void *session; /* the SSL* (an SSL BIO's own), the gnutls_session_t */
	BIO *bio;
	unsigned char *seq;	      /* RECV_SEQ */
	gnutls_packet_t *packet;      /* RECV_PACKET */
	size_t pad;		      /* SEND2 */
	unsigned flags;		      /* SEND2 */
	const gnutls_range_st *range; /* SEND_RANGE */
};

static enum library call_library(const struct tls_call *call)
{
	switch (call->op) {
	case RECV:
	case RECV_SEQ:
	case RECV_PACKET:
	case SEND:
	case SEND2:
	case SEND_RANGE:
		return GNUTLS;
	default:
		return OPENSSL;
	}
}

/* ---- handshake failures */

/* Why OpenSSL's handshake failed: the certificate's verification result
 * when that was the reason, else the reason of the error it queued (peeked
 * at: the program reads the queue after us). */
static const char *openssl_failure(void *ssl)
{
	unsigned long (*last_error)(void) = oa_real_ERR_peek_last_error();
	const char *(*reason_string)(unsigned long) = oa_real_ERR_reason_error_string();
	unsigned long error = last_error ? last_error() : 0;
	const char *reason = error && reason_string ? reason_string(error) : NULL;
	if (reason && strcmp(reason, "certificate verify failed") == 0) {
		long (*verify_result)(const SSL *) = oa_real_SSL_get_verify_result();
		const char *(*verify_string)(long) = oa_real_X509_verify_cert_error_string();
		long verified = verify_result ? verify_result(ssl) : X509_V_OK;
		if (verified != X509_V_OK && verify_string)
			return verify_string(verified);
	}
	return reason ? reason : "SSL_ERROR_SSL";
}

/* Why a GnuTLS call failed: the alert the peer ended the session with
 * (GNUTLS_A_UNKNOWN_CA), also when an earlier call took it in (a session
 * made invalid), else the error's name. */
static const char *gnutls_failure(void *session, int ret)
{
	if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED || ret == GNUTLS_E_INVALID_SESSION) {
		int (*alert_get)(gnutls_session_t) = oa_real_gnutls_alert_get();
		const char *(*alert_name)(int) = oa_real_gnutls_alert_get_strname();
		/* 0, close_notify: none received */
		int alert = alert_get ? alert_get(session) : 0;
		const char *name = alert && alert_name ? alert_name(alert) : NULL;
		if (name)
			return name;
	}
	const char *(*error_name)(int) = oa_real_gnutls_strerror_name();
	const char *name = error_name ? error_name(ret) : NULL;
	return name ? name : "GNUTLS_E_UNKNOWN";
}

/* The failure's error.type (*err instead: an errno), NULL when the call
 * did not fail for good (a non-blocking handshake waits for the socket). */
static const char *handshake_failure(enum library lib, void *ssl, int ret, int *err)
{
	if (lib == GNUTLS) {
		int (*fatal)(int) = oa_real_gnutls_error_is_fatal();
		if (ret >= 0 || (fatal && !fatal(ret)))
			return NULL;
		*err = 0;
		return gnutls_failure(ssl, ret);
	}
	if (ret > 0)
		return NULL;
	int (*get_error)(const SSL *, int) = oa_real_SSL_get_error();
	int why = get_error ? get_error(ssl, ret) : SSL_ERROR_SSL;
	if (why == SSL_ERROR_SYSCALL && *err)
		return "";
	*err = 0;
	if (why == SSL_ERROR_SYSCALL)
		return "SSL_ERROR_SYSCALL";
	return why == SSL_ERROR_SSL ? openssl_failure(ssl) : NULL;
}

#define HANDSHAKE_PAYLOAD 512

/* The session whose failed handshake this thread reported last: a call
 * the program makes on it after that (curl reads once before
 * SSL_shutdown) fails again, without a span. */
static __thread const void *failed_session __attribute__((tls_model("initial-exec")));

/* "tls handshake <peer>", a child of the thread's current span. */
static void handshake_span(struct oa_thread *t, enum library lib, void *ssl, int fd, uint64_t start,
			   const char *error_type, int err)
{
	if (ssl == failed_session)
		return;
	failed_session = ssl;
	struct oa_span_ctx parent, ctx;
	oa_current_parent(t, &parent);
	oa_span_ctx_start(t, &parent, &ctx);
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &parent, &ctx, OA_KIND_INTERNAL, OA_SCOPE_SOCKETS, start,
			       HANDSHAKE_PAYLOAD))
		return;
	static const char name[] = "tls handshake";
	struct oa_fd *f = fd >= 0 && (oa_fd_kind(fd) & OA_FD_SOCKET) ? oa_fd_slot(fd) : NULL;
	if (f && oa_fd_lock_slot(t, fd, f)) {
		bool inet = f->family == AF_INET || f->family == AF_INET6;
		if (inet) {
			static const char prefix[] = "tls handshake ";
			oa_payload_name_peer(&w, prefix, sizeof prefix - 1, f->family, &f->peer.sa,
					     f->peer_len);
			oa_payload_attr_sockaddr(&w, OA_KEY_NETWORK_PEER_ADDRESS, &f->peer.sa,
						 f->peer_len);
			oa_payload_attr_int(&w, OA_KEY_NETWORK_PEER_PORT,
					    oa_sockaddr_port(&f->peer.sa));
			char server[sizeof f->tls.server_name];
			if (f->role == OA_ROLE_CLIENT) {
				get_server_name(lib, ssl, server, sizeof server);
				if (server[0])
					oa_payload_attr_str(&w, OA_KEY_SERVER_ADDRESS, server,
							    strlen(server));
			}
		} else {
			oa_payload_text(&w, OA_ITEM_NAME, name, sizeof name - 1);
		}
		oa_fd_unlock(fd);
	} else {
		oa_payload_text(&w, OA_ITEM_NAME, name, sizeof name - 1);
	}
	if (err)
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	else
		oa_payload_attr_str(&w, OA_KEY_ERROR_TYPE, error_type, strlen(error_type));
	oa_net_span_end(t, &w, oa_now(), true);
}

/* A read or write that failed for good before the session moved any
 * plaintext gets the span a failed SSL_connect does when it ran the
 * handshake (OpenSSL's start it on a session that SSL_set_connect_state
 * or SSL_set_accept_state prepared, an SSL BIO's too; the state the
 * handshake reached outlives the failure, one after it leaves
 * TLS_ST_OK), or when it is a client's: a TLS 1.3 server refuses the
 * client's certificate after the client's handshake ended, and the client
 * learns it in its first read or write (a server's first read that fails,
 * a peer gone without a request, is no handshake's). */
static void first_call_failed(struct oa_thread *t, enum library lib, void *ssl, int fd, bool client,
			      uint64_t start, ssize_t ret, int err)
{
	int failure_errno = err;
	const char *error_type = handshake_failure(lib, ssl, (int)ret, &failure_errno);
	if (!error_type || !oa_family_on(OA_HOOK_SOCKETS))
		return;
	int (*get_state)(const SSL *) = oa_real_SSL_get_state();
	bool handshaking = lib == OPENSSL && get_state && get_state(ssl) != TLS_ST_OK;
	if (handshaking || client)
		handshake_span(t, lib, ssl, fd, start, error_type, failure_errno);
}

/* ---- reads */

/* The session's reading ended (err 0: the peer closed): the protocol's
 * read_end, HTTP's with the library's reason as an HTTP request's
 * error.type (error_type, unless NULL). */
static void session_read_end(struct oa_thread *t, int fd, struct oa_fd *f, int err,
			     const char *error_type)
{
	if (oa_http_on(f))
		oa_http_read_end_why(t, fd, f, err, error_type);
	else
		f->proto->read_end(t, fd, f, err);
}

/* A GnuTLS read that returned nothing: the end of the stream (with or
 * without the peer's close_notify), or an error. */
static void recv_ended(struct oa_thread *t, int fd, struct oa_fd *f, void *session, ssize_t ret)
{
	if (!ret || ret == GNUTLS_E_PREMATURE_TERMINATION)
		session_read_end(t, fd, f, 0, NULL);
	else if (ret != GNUTLS_E_AGAIN && ret != GNUTLS_E_INTERRUPTED &&
		 ret != GNUTLS_E_REHANDSHAKE && ret != GNUTLS_E_WARNING_ALERT_RECEIVED)
		session_read_end(t, fd, f, EPROTO, gnutls_failure(session, (int)ret));
}

/* A read that returned nothing: the end of the stream, or an error, ends
 * the protocol's state as a socket's end or error does; an HTTP request
 * left without its response gets the library's reason (the alert a TLS 1.3
 * server refusing the client's certificate sends after the handshake). */
static void read_ended(struct oa_thread *t, int fd, struct oa_fd *f, const struct tls_call *call,
		       ssize_t ret, int err)
{
	if (call_library(call) == GNUTLS) {
		recv_ended(t, fd, f, call->session, ret);
		return;
	}
	int (*get_error)(const SSL *, int) = oa_real_SSL_get_error();
	int why = get_error ? get_error(call->session, (int)ret) : SSL_ERROR_SSL;
	if (why == SSL_ERROR_ZERO_RETURN || (why == SSL_ERROR_SYSCALL && !err))
		session_read_end(t, fd, f, 0, NULL);
	else if (why == SSL_ERROR_SYSCALL)
		session_read_end(t, fd, f, err, NULL);
	else if (why == SSL_ERROR_SSL)
		session_read_end(t, fd, f, EPROTO, openssl_failure(call->session));
}

/* An _ex function's result; *n: the bytes it moved. */
static ssize_t ex_result(int ret, size_t *n)
{
	if (ret <= 0)
		*n = 0;
	return ret;
}

static ssize_t read_real(const struct tls_call *call, void *buf, size_t num, size_t *n)
{
	void *s = call->session;
	ssize_t ret;
	switch (call->op) {
	case RECV:
		ret = oa_real_gnutls_record_recv()(s, buf, num);
		break;
	case RECV_SEQ:
		ret = oa_real_gnutls_record_recv_seq()(s, buf, num, call->seq);
		break;
	case RECV_PACKET:
		ret = oa_real_gnutls_record_recv_packet()(s, call->packet);
		break;
	case READ:
		ret = oa_real_SSL_read()(s, buf, (int)num);
		break;
	case PEEK:
		ret = oa_real_SSL_peek()(s, buf, (int)num);
		break;
	case BIO_READ:
		ret = oa_real_BIO_read()(call->bio, buf, (int)num);
		break;
	case READ_EX:
		return ex_result(oa_real_SSL_read_ex()(s, buf, num, n), n);
	case PEEK_EX:
		return ex_result(oa_real_SSL_peek_ex()(s, buf, num, n), n);
	default:
		return ex_result(oa_real_BIO_read_ex()(call->bio, buf, num, n), n);
	}
	*n = ret > 0 ? (size_t)ret : 0;
	return ret;
}

/* Whether a call may be the one that learns the handshake failed, and
 * needs its start: the session (its slot f, locked) moved no plaintext
 * yet, or its socket is still to be learnt. */
static bool may_handshake(const struct oa_fd *f, bool probe)
{
	return probe || (f && !f->tls.data_moved);
}

/* A packet's plaintext (*n: its length), in GnuTLS's buffer until the
 * program frees the packet. */
static void *packet_data(const struct tls_call *call, size_t *n)
{
	void (*get)(gnutls_packet_t, gnutls_datum_t *, unsigned char *) =
	    oa_real_gnutls_packet_get();
	gnutls_datum_t data = {NULL, 0};
	if (*n && *call->packet && get)
		get(*call->packet, &data, NULL);
	*n = data.size;
	return data.data;
}

/* Whether a read that moved nothing is to be repeated: its socket would
 * block, as OpenSSL tells after it cleared errno for its read (SSL_want;
 * SSL_get_error, which reads the error queue, costs as much as the rest of
 * the hook). Nothing ended then. */
static bool read_retried(const struct tls_call *call, ssize_t ret, int err)
{
	if (call_library(call) == GNUTLS)
		return ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED;
	if (ret >= 0 || !oa_errno_transient(err))
		return false;
	int (*want)(const SSL *) = oa_real_SSL_want();
	int state = want ? want(call->session) : 0;
	return state == SSL_READING || state == SSL_WRITING;
}

/* A peek takes the session over but feeds nothing: its bytes are read
 * again. */
static ssize_t read_hooked(const struct tls_call *call, void *buf, size_t num, size_t *n)
{
	int saved = errno;
	void *ssl = call->session;
	enum library lib = call_library(call);
	struct oa_thread *t = tls_on() ? oa_thread_get() : NULL;
	int fd = -1;
	bool locked = false;
	struct oa_fd *f = t ? call_slot(t, lib, ssl, false, &fd, &locked) : NULL;
	bool probe = t && fd == -1;
	bool client = f && f->role == OA_ROLE_CLIENT;
	uint64_t start = may_handshake(f, probe) ? oa_now() : 0;
	if (locked)
		oa_fd_unlock(fd);
	if (probe)
		probe_begin();
	errno = saved;
	ssize_t ret = read_real(call, buf, num, n);
	int err = errno;
	if (call->op == RECV_PACKET)
		buf = packet_data(call, n);
	if (probe && (fd = probed(ssl)) >= 0 && (f = session_slot(t, lib, ssl, fd)) != NULL) {
		client = f->role == OA_ROLE_CLIENT;
		oa_fd_unlock(fd);
	}
	if (start && !*n)
		first_call_failed(t, lib, ssl, fd, client, start, ret, err);
	if (f && call->op != PEEK && call->op != PEEK_EX && (*n || !read_retried(call, ret, err)) &&
	    relock(t, fd, f, ssl)) {
		if (*n) {
			data_moved(lib, ssl, &f->tls);
			struct iovec iov = {buf, *n};
			oa_conn_read(t, fd, f, &iov, 1, (ssize_t)*n, 0);
		} else if (num) {
			read_ended(t, fd, f, call, ret, err);
		}
		oa_fd_unlock_slot(fd, f);
	}
	oa_hook_leave();
	errno = err;
	return ret;
}

/* OpenSSL's reads and writes of plaintext: the SSL_ and BIO_ calls alike,
 * with an int count or as _ex (1 or 0, the count through *done). A BIO
 * call is followed when its BIO is an SSL BIO (bio_session), else it
 * passes through. */
static SSL *bio_session(BIO *bio);
#define OPENSSL_SESSION(obj, is_bio) ((is_bio) ? bio_session((BIO *)(obj)) : (SSL *)(obj))
#define OPENSSL_CALL(obj, op_, ssl, is_bio)                                                        \
	(&(struct tls_call){.op = (op_), .session = (ssl), .bio = (is_bio) ? (BIO *)(obj) : NULL})

/* ... with an int count: followed when it is positive. */
#define OPENSSL_INT_HOOK(name, obj_t, buf_t, op_, hooked, is_bio)                                  \
	OA_EXPORT int name(obj_t *obj, buf_t buf, int num)                                         \
	{                                                                                          \
		int (*real)(obj_t *, buf_t, int) = oa_real_##name();                               \
		if (!real) {                                                                       \
			errno = ENOSYS;                                                            \
			return -1;                                                                 \
		}                                                                                  \
		if (num <= 0 || !oa_hook_enter())                                                  \
			return real(obj, buf, num);                                                \
		SSL *ssl = OPENSSL_SESSION(obj, is_bio);                                           \
		if (!ssl) {                                                                        \
			oa_hook_leave();                                                           \
			return real(obj, buf, num);                                                \
		}                                                                                  \
		size_t n;                                                                          \
		return (int)hooked(OPENSSL_CALL(obj, op_, ssl, is_bio), buf, (size_t)num, &n);     \
	}

/* ... as _ex: a read is followed when it has somewhere to put its count, a
 * write when it has bytes to write (its count is optional). */
#define OPENSSL_EX_HOOK(name, obj_t, buf_t, op_, hooked, is_bio, follow)                           \
	OA_EXPORT int name(obj_t *obj, buf_t buf, size_t num, size_t *done)                        \
	{                                                                                          \
		int (*real)(obj_t *, buf_t, size_t, size_t *) = oa_real_##name();                  \
		if (!real) {                                                                       \
			errno = ENOSYS;                                                            \
			return 0;                                                                  \
		}                                                                                  \
		if (!(follow) || !oa_hook_enter())                                                 \
			return real(obj, buf, num, done);                                          \
		SSL *ssl = OPENSSL_SESSION(obj, is_bio);                                           \
		if (!ssl) {                                                                        \
			oa_hook_leave();                                                           \
			return real(obj, buf, num, done);                                          \
		}                                                                                  \
		size_t n = 0;                                                                      \
		return (int)hooked(OPENSSL_CALL(obj, op_, ssl, is_bio), buf, num,                  \
				   done ? done : &n);                                              \
	}

OPENSSL_INT_HOOK(SSL_read, SSL, void *, READ, read_hooked, false)
OPENSSL_EX_HOOK(SSL_read_ex, SSL, void *, READ_EX, read_hooked, false, done)
OPENSSL_INT_HOOK(SSL_peek, SSL, void *, PEEK, read_hooked, false)
OPENSSL_EX_HOOK(SSL_peek_ex, SSL, void *, PEEK_EX, read_hooked, false, done)

/* ---- writes */

/* One real write of the function the program called; *n: bytes taken. */
static ssize_t write_real(const struct tls_call *call, const void *buf, size_t len, size_t *n)
{
	void *s = call->session;
	ssize_t ret;
	switch (call->op) {
	case WRITE_EX:
		return ex_result(oa_real_SSL_write_ex()(s, buf, len, n), n);
	case BIO_WRITE_EX:
		return ex_result(oa_real_BIO_write_ex()(call->bio, buf, len, n), n);
	case SEND:
		ret = oa_real_gnutls_record_send()(s, buf, len);
		break;
	case SEND2:
		ret = oa_real_gnutls_record_send2()(s, buf, len, call->pad, call->flags);
		break;
	case SEND_RANGE: {
		/* a piece (the header lines, the bytes before or after them)
		 * hidden within the program's range, widened to its length */
		gnutls_range_st range = *call->range;
		if (range.low <= range.high && len < range.low)
			range.low = len;
		if (range.low <= range.high && len > range.high)
			range.high = len;
		ret = oa_real_gnutls_record_send_range()(s, buf, len, &range);
		break;
	}
	case BIO_WRITE:
		ret = oa_real_BIO_write()(call->bio, buf, (int)len);
		break;
	default:
		ret = oa_real_SSL_write()(s, buf, (int)len);
		break;
	}
	*n = ret > 0 ? (size_t)ret : 0;
	return ret;
}

/* What the first request head ending in buf[0..len) gets: header lines
 * before its blank line (at: the blank line's offset, or the CR that ends
 * the bytes when that begins it), or, when it has a traceparent, a new
 * value for it (at: the value's offset; only a version-00 value wholly in
 * these bytes). */
struct head_plan {
	size_t at; /* SIZE_MAX: nothing */
	bool rewrite;
	struct oa_http_tp_field tp;
};

static void plan_head(const struct oa_http_conn *h, const uint8_t *buf, size_t len,
		      struct head_plan *p)
{
	struct oa_http_parser dry = h->requests;
	struct oa_http_event ev[1];
	size_t off = 0, n, fed;
	p->at = SIZE_MAX;
	p->rewrite = false;
	do {
		fed = len - off;
		n = oa_http_feed(&dry, buf + off, fed, ev, 1);
		if (!n || ev[0].kind == OA_HTTP_GAVE_UP)
			break;
		if (ev[0].kind == OA_HTTP_MESSAGE_BEGIN) {
			int64_t head_at = (int64_t)(off + ev[0].offset) - ev[0].head_len;
			p->tp = oa_http_traceparent_field(&dry);
			if (!(ev[0].head->flags & OA_HTTP_HAS_TRACEPARENT)) {
				p->at =
				    ev[0].inject_at == SIZE_MAX ? SIZE_MAX : off + ev[0].inject_at;
			} else if (p->tp.state == OA_HTTP_TP_V00 && head_at + p->tp.value_at >= 0) {
				p->at = (size_t)(head_at + p->tp.value_at);
				p->rewrite = true;
			}
			return;
		}
		off += ev[0].offset;
	} while (oa_http_feed_again(ev, n, 1, fed));
	const struct oa_http_head *ending = oa_http_head_ending(&dry);
	if (ending && !(ending->flags & OA_HTTP_HAS_TRACEPARENT))
		p->at = len - 1;
}

/* A client's write (under the slot's lock): is it the repeat of a failed
 * one (its bytes already taken, returned), or does a head end in it that
 * gets header lines? */
static size_t plan_write(struct oa_thread *t, struct oa_fd *f, long mode, const void *buf,
			 size_t num)
{
	struct oa_tls_conn *c = &f->tls;
	bool moving = mode & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
	size_t taken = 0;
	if (c->retry_num && num == c->retry_num && (buf == c->retry_buf || moving))
		taken = c->retry_taken;
	c->retry_num = 0;
	/* a head whose lines went out (out_decided) until its end is fed */
	if (taken || c->lines_len || !oa_http_on(f) || oa_http_state(f)->out_decided)
		return taken;
	struct head_plan p;
	plan_head(oa_http_state(f), buf, num, &p);
	if (p.at == SIZE_MAX)
		return 0;
	if (p.rewrite)
		c->lines_len = oa_http_tls_rewrite(t, f, &p.tp, c->lines) ? OA_TRACEPARENT_LEN : 0;
	else
		c->lines_len = (uint16_t)oa_http_tls_lines(t, f, c->lines);
	c->replaces = p.rewrite ? OA_TRACEPARENT_LEN : 0;
	c->lines_sent = 0;
	c->before = p.at;
	return 0;
}

/* An OpenSSL write whose rest (`left` application bytes) fits here with
 * the header lines goes out in one call, one TLS record, so that a server
 * that answers after a single read (openssl s_server -www reads one line)
 * has the whole head. Larger ones, and GnuTLS's (a send repeated after
 * GNUTLS_E_AGAIN returns the count of the one it finishes), give the lines
 * records of their own. */
#define STAGE_MAX 4096

static bool stageable(const struct tls_call *call, const struct oa_tls_conn *c, size_t left)
{
	return call_library(call) == OPENSSL && c->lines_len && !c->lines_sent &&
	       c->before + c->replaces <= left && left - c->replaces + c->lines_len <= STAGE_MAX;
}

/* The staged write: *ret its result, the application bytes taken in all
 * returned, the lines' state moved on as write_with_lines does. One that
 * fails is repeated with a buffer built again, maybe elsewhere on the
 * stack: OpenSSL is told to accept a moving buffer (it checks only the
 * address, the record already made). Not inlined: its 4 KB frame only
 * when it copies. */
static __attribute__((noinline)) size_t write_staged(const struct tls_call *call,
						     struct oa_tls_conn *c, const void *buf,
						     size_t num, size_t taken, ssize_t *ret)
{
	char stage[STAGE_MAX];
	const char *app = (const char *)buf + taken;
	size_t before = c->before, after = num - taken - before - c->replaces, n;
	memcpy(stage, app, before);
	memcpy(stage + before, c->lines, c->lines_len);
	memcpy(stage + before + c->lines_len, app + before + c->replaces, after);
	*ret = write_real(call, stage, before + c->lines_len + after, &n);
	if (!n) {
		long (*ctrl)(SSL *, int, long, void *) = oa_real_SSL_ctrl();
		if (ctrl)
			ctrl(call->session, SSL_CTRL_MODE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
			     NULL);
		return taken;
	}
	if (n <= before) {
		c->before -= n;
		return taken + n;
	}
	if (n < before + c->lines_len) {
		c->before = 0;
		c->lines_sent = (uint16_t)(n - before);
		return taken + before;
	}
	/* the replaced bytes count as written */
	taken += n - c->lines_len + c->replaces;
	c->lines_len = c->lines_sent = c->replaces = 0;
	return taken;
}

/* ---- a database client's writes: comments into its queries */

/* A client's OpenSSL write whose query messages get sqlcommenter's comment
 * (OTLPAUTO_DB_PROPAGATION=comment), or after a partial write left
 * rewritten bytes owed, goes staged as a head with its lines does: one
 * call, the program's counts returned. At most OA_TLS_DB_COMMENTS comments
 * a write, and only in a write that fits the stage with them. */
static bool db_writes(const struct tls_call *call, const struct oa_fd *f)
{
	return (call->op == WRITE || call->op == WRITE_EX) && !oa_http_on(f) &&
	       (f->db_owed.n || f->tls.db_rewrites || oa_db_commenting(f));
}

static size_t db_owed_len(const struct oa_db_owed *o)
{
	size_t len = 0;
	for (int i = 0; i < o->n; i++)
		len += o->item[i].len;
	return len;
}

/* Under the lock: the comments from `first` on did not go out; their
 * contexts are forgotten (the messages go again as they are). */
static void db_drop_rewrites(struct oa_fd *f, int first)
{
	struct oa_tls_conn *c = &f->tls;
	const struct oa_db_protocol *db = c->db_rewrites > first ? oa_db_commenting(f) : NULL;
	for (int i = first; db && i < c->db_rewrites; i++)
		oa_db_forget(db->client(f), c->db_rewrite[i].ordinal);
	c->db_rewrites = 0;
}

/* Under the lock: the comments of the write, their contexts kept at once;
 * a write that repeats one that failed keeps that one's (OpenSSL lets the
 * repeat be longer: libpq's may carry messages added since, which go
 * without comments). */
static __attribute__((noinline)) void db_plan_write(struct oa_thread *t, struct oa_fd *f, long mode,
						    const void *buf, size_t num)
{
	struct oa_tls_conn *c = &f->tls;
	bool moving = mode & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
	bool repeat = c->retry_num && num >= c->retry_num && (buf == c->retry_buf || moving);
	c->retry_num = 0;
	if (repeat)
		return;
	db_drop_rewrites(f, 0); /* a failed write the program did not repeat */
	const struct oa_db_protocol *db = oa_db_commenting(f);
	if (!db ||
	    num + OA_TLS_DB_COMMENTS * OA_DB_COMMENT_LEN + db_owed_len(&f->db_owed) > STAGE_MAX)
		return;
	struct oa_db_plan plan;
	db->plan(t, f, &(struct iovec){(void *)buf, num}, 1, &plan);
	int n = plan.n < OA_TLS_DB_COMMENTS ? plan.n : OA_TLS_DB_COMMENTS;
	for (int i = 0; i < n; i++) {
		c->db_rewrite[i].length_at = (uint32_t)plan.rw[i].length_at;
		c->db_rewrite[i].comment_at = (uint32_t)plan.rw[i].comment_at;
		c->db_rewrite[i].ordinal = plan.ordinal[i];
		c->db_rewrite[i].length_len = plan.rw[i].length_len;
		memcpy(c->db_rewrite[i].length, plan.rw[i].length, sizeof plan.rw[i].length);
		memcpy(c->lines + i * OA_DB_COMMENT_LEN, plan.comment[i], OA_DB_COMMENT_LEN);
	}
	c->db_rewrites = (uint8_t)n;
	oa_db_keep(db->client(f), &plan, n);
}

/* A database client's write failed: its repeat is to be built as it was
 * (also one that went as written, which must not get comments then), in a
 * buffer OpenSSL is told may have moved. */
static void db_failed(const struct tls_call *call, struct oa_tls_conn *c, const void *buf,
		      size_t num)
{
	long (*ctrl)(SSL *, int, long, void *) = oa_real_SSL_ctrl();
	if (ctrl)
		ctrl(call->session, SSL_CTRL_MODE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, NULL);
	c->retry_buf = buf;
	c->retry_num = num;
	c->retry_taken = 0;
}

/* The staged write of a database client (writers' state, no lock): the
 * application's bytes with the owed bytes, the comments and their messages'
 * new length fields where they go. *ret: its result; *committed: the
 * comments that went out, at least in part. Returns the application bytes
 * taken: none when it fails (the comments stay, to build it again when it
 * is repeated, OpenSSL having made its record); a call that took only owed
 * bytes goes on. */
static __attribute__((noinline)) size_t write_db(const struct tls_call *call, struct oa_fd *f,
						 const void *buf, size_t num, ssize_t *ret,
						 int *committed)
{
	struct oa_tls_conn *c = &f->tls;
	size_t owed = db_owed_len(&f->db_owed), app_len = num, taken = 0, n;
	*committed = 0;
	if (!c->db_rewrites && !owed) {
		*ret = write_real(call, buf, num, &n);
		if (!n)
			db_failed(call, c, buf, num);
		return n;
	}
	struct oa_db_rewrite rw[OA_TLS_DB_COMMENTS];
	for (int i = 0; i < c->db_rewrites; i++) {
		rw[i] = (struct oa_db_rewrite){.length_at = c->db_rewrite[i].length_at,
					       .comment_at = c->db_rewrite[i].comment_at,
					       .length_len = c->db_rewrite[i].length_len,
					       .comment = c->lines + i * OA_DB_COMMENT_LEN};
		memcpy(rw[i].length, c->db_rewrite[i].length, sizeof rw[i].length);
	}
	/* a long write (owed bytes follow a partial one, a repeat may be
	 * longer) takes part */
	size_t extra = owed + c->db_rewrites * OA_DB_COMMENT_LEN;
	if (app_len + extra > STAGE_MAX)
		app_len = STAGE_MAX - extra;
	char stage[STAGE_MAX];
	struct oa_insert ins[OA_DB_INSERTS(OA_TLS_DB_COMMENTS)];
	_Static_assert(2 * OA_DB_INSERTS(OA_TLS_DB_COMMENTS) + 1 <= OA_LAYOUT_MAX,
		       "a write's layout always fits");
	struct oa_layout layout;
	do {
		int n_ins = oa_db_inserts(&f->db_owed, app_len, rw, c->db_rewrites, ins);
		oa_layout_build(&layout, &(struct iovec){(void *)buf, app_len}, 1, ins, n_ins);
		size_t len = 0;
		for (int i = layout.first; i < layout.n; i++) {
			memcpy(stage + len, layout.iov[i].iov_base, layout.iov[i].iov_len);
			len += layout.iov[i].iov_len;
		}
		*ret = write_real(call, stage, len, &n);
		if (!n) {
			db_failed(call, c, buf, num);
			return 0;
		}
		size_t app_sent = oa_layout_consume(&layout, n, ins);
		*committed =
		    oa_db_settle(&f->db_owed, app_len, rw, c->db_rewrites, ins, app_sent, &taken);
	} while (!taken);
	return taken;
}

/* Writes the application's bytes from `taken` on with the pending header
 * lines where they go; stops at the first failure (its return value in
 * *ret) or, with partial writes, a short write. Returns the application
 * bytes taken in all. */
static size_t write_with_lines(const struct tls_call *call, struct oa_tls_conn *c, bool partial,
			       const void *buf, size_t num, size_t taken, ssize_t *ret)
{
	if (stageable(call, c, num - taken))
		return write_staged(call, c, buf, num, taken, ret);
	size_t n;
	for (;;) {
		if (c->lines_len && !c->before) {
			*ret = write_real(call, c->lines + c->lines_sent,
					  (size_t)(c->lines_len - c->lines_sent), &n);
			if (!n)
				return taken;
			c->lines_sent = (uint16_t)(c->lines_sent + n);
			if (c->lines_sent == c->lines_len) {
				/* the replaced bytes count as written */
				taken += c->replaces;
				c->lines_len = c->lines_sent = c->replaces = 0;
			}
			continue;
		}
		size_t want = num - taken;
		if (c->lines_len && c->before < want)
			want = c->before;
		if (!want)
			return taken;
		*ret = write_real(call, (const char *)buf + taken, want, &n);
		if (!n)
			return taken;
		taken += n;
		if (c->lines_len)
			c->before -= n;
		if (n < want && partial)
			return taken;
	}
}

/* A GnuTLS send returns at most a record's bytes: partial writes, always. */
static long write_mode(const struct tls_call *call)
{
	if (call_library(call) == GNUTLS)
		return SSL_MODE_ENABLE_PARTIAL_WRITE;
	long (*ctrl)(SSL *, int, long, void *) = oa_real_SSL_ctrl();
	return ctrl ? ctrl(call->session, SSL_CTRL_MODE, 0, NULL) : 0;
}

/* The header lines go in TLS records of their own: with Nagle's algorithm
 * on (wget), each small record after the first would wait for the peer's
 * delayed ACK, 40 ms per request. The socket is corked meanwhile, unless
 * the program corked it: its records leave together at the uncork. */
static bool cork(int fd)
{
	int on = 0;
	socklen_t len = sizeof on;
	if (getsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, &len) != 0 || on)
		return false;
	on = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0;
}

static void uncork(int fd)
{
	int off = 0;
	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
}

static ssize_t write_hooked(const struct tls_call *call, const void *buf, size_t num,
			    size_t *written)
{
	int saved = errno;
	void *ssl = call->session;
	enum library lib = call_library(call);
	struct oa_thread *t = tls_on() ? oa_thread_get() : NULL;
	int fd = -1;
	bool locked = false;
	struct oa_fd *f = t ? call_slot(t, lib, ssl, true, &fd, &locked) : NULL;
	struct oa_tls_conn *c = NULL;
	long mode = 0;
	size_t from = 0;
	bool client = f && f->role == OA_ROLE_CLIENT;
	struct iovec all = {(void *)buf, num};
	if (locked)
		oa_conn_decide(t, f, &all, 1, num, true);
	bool db = client && db_writes(call, f);
	if (db) {
		mode = write_mode(call);
		db_plan_write(t, f, mode, buf, num);
	} else if (client && (oa_http_on(f) || writes_owed(&f->tls))) {
		mode = write_mode(call);
		c = &f->tls;
		from = plan_write(t, f, mode, buf, num);
	}
	bool probe = t && fd == -1;
	uint64_t start = may_handshake(f, probe) ? oa_now() : 0;
	/* a database's operation starts when its send begins */
	uint64_t began =
	    f && __atomic_load_n(&f->proto, __ATOMIC_ACQUIRE) && !oa_http_on(f) ? oa_now() : 0;
	if (locked)
		oa_fd_unlock(fd);
	if (probe)
		probe_begin();
	errno = saved;
	ssize_t ret = 1;
	size_t taken;
	int err, committed = 0;
	if (db) {
		/* the program's count: its last byte when a comment holds it, or
		 * a long write's part */
		taken = write_db(call, f, buf, num, &ret, &committed);
		err = errno;
		if (taken)
			ret = call->op == WRITE_EX ? 1 : (ssize_t)taken;
	} else if (c && (from || c->lines_len)) {
		bool partial = mode & SSL_MODE_ENABLE_PARTIAL_WRITE;
		bool corked = !stageable(call, c, num - from) && cork(fd);
		taken = write_with_lines(call, c, partial, buf, num, from, &ret);
		err = errno;
		if (corked)
			uncork(fd);
		if (taken == num || (partial && taken)) {
			/* a repeated call returns what the first would have */
			ret = call->op == WRITE_EX || call->op == BIO_WRITE_EX ? 1 : (ssize_t)taken;
		} else if (!partial) {
			/* to be repeated: what went out stays taken */
			c->retry_buf = buf;
			c->retry_num = num;
			c->retry_taken = taken;
		}
	} else {
		ret = write_real(call, buf, num, &taken);
		err = errno;
	}
	*written = ret > 0 ? taken : 0;
	if (probe && (fd = probed(ssl)) >= 0 && (f = session_slot(t, lib, ssl, fd)) != NULL) {
		client = f->role == OA_ROLE_CLIENT;
		oa_fd_unlock(fd);
	}
	if (start && ret <= 0 && !taken)
		first_call_failed(t, lib, ssl, fd, client, start, ret, err);
	if (f && taken > from && relock(t, fd, f, ssl)) {
		/* a session whose socket the call itself told: started meanwhile */
		if (!began && !oa_http_on(f))
			began = start ? start : oa_now();
		if (db)
			db_drop_rewrites(f, committed);
		data_moved(lib, ssl, &f->tls);
		struct iovec iov = {(char *)buf + from, taken - from};
		oa_conn_sent(t, fd, f, &iov, 1, taken - from, began);
		oa_fd_unlock_slot(fd, f);
	}
	if (db && taken)
		f->tls.db_rewrites = 0; /* went out, or the connection is no longer followed */
	oa_hook_leave();
	errno = err;
	return ret;
}

OPENSSL_INT_HOOK(SSL_write, SSL, const void *, WRITE, write_hooked, false)
OPENSSL_EX_HOOK(SSL_write_ex, SSL, const void *, WRITE_EX, write_hooked, false, num)

/* A file's n bytes the session sent (inside the guard): the parser
 * learns their count. */
static void file_sent(enum library lib, void *ssl, size_t n)
{
	int saved = errno;
	struct oa_thread *t = tls_on() ? oa_thread_get() : NULL;
	int sock = t ? session_fd(lib, ssl) : -1;
	struct oa_fd *f = session_slot(t, lib, ssl, sock);
	if (f) {
		if (f->proto && f->tls.session == ssl)
			oa_conn_unseen(t, sock, f, n, true);
		oa_fd_unlock_slot(sock, f);
	}
	errno = saved;
}

/* Kernel TLS: a file's bytes go to the socket without passing through our
 * hands (nginx's bodies with sendfile on). */
OA_EXPORT ssize_t SSL_sendfile(SSL *ssl, int fd, off_t offset, size_t size, int flags)
{
	ssize_t (*real)(SSL *, int, off_t, size_t, int) = oa_real_SSL_sendfile();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t r = real(ssl, fd, offset, size, flags);
	if (r <= 0 || !oa_hook_enter())
		return r;
	file_sent(OPENSSL, ssl, (size_t)r);
	oa_hook_leave();
	return r;
}

/* ---- SSL BIOs */

/* An SSL BIO (BIO_f_ssl; openssl s_server -www reads and writes through
 * one under a buffering BIO) moves its session's plaintext with libssl's
 * internal functions, past SSL_read and SSL_write: its own BIO_read and
 * BIO_write calls (the buffering BIO's come through libcrypto's PLT) are
 * the session's reads and writes. Another BIO passes through after a look
 * at its type; the calls our hooks make inside the library (libssl's on a
 * session's socket BIO, an SSL BIO's under SSL_read) pass at the guard,
 * so no plaintext is seen twice. */
static SSL *bio_session(BIO *bio)
{
	int (*method_type)(const BIO *) = oa_real_BIO_method_type();
	long (*ctrl)(BIO *, int, long, void *) = oa_real_BIO_ctrl();
	if (!bio || !method_type || !ctrl || !tls_on() || method_type(bio) != BIO_TYPE_SSL)
		return NULL;
	SSL *ssl = NULL;
	int saved = errno;
	ctrl(bio, BIO_C_GET_SSL, 0, &ssl);
	errno = saved;
	return ssl;
}

OPENSSL_INT_HOOK(BIO_read, BIO, void *, BIO_READ, read_hooked, true)
OPENSSL_EX_HOOK(BIO_read_ex, BIO, void *, BIO_READ_EX, read_hooked, true, done)
OPENSSL_INT_HOOK(BIO_write, BIO, const void *, BIO_WRITE, write_hooked, true)
OPENSSL_EX_HOOK(BIO_write_ex, BIO, const void *, BIO_WRITE_EX, write_hooked, true, num)

/* ---- handshakes */

/* A handshake learns the socket of a session the library cannot name, so
 * that its first write can get header lines. A handshake that fails gets a
 * span of its own, an error: the socket's connect span has ended, and no
 * HTTP span begins. */
enum handshake_op { CONNECT, ACCEPT, DO_HANDSHAKE, GNUTLS_HANDSHAKE };

static int handshake_real(enum handshake_op op, void *ssl)
{
	switch (op) {
	case CONNECT:
		return oa_real_SSL_connect()(ssl);
	case ACCEPT:
		return oa_real_SSL_accept()(ssl);
	case DO_HANDSHAKE:
		return oa_real_SSL_do_handshake()(ssl);
	default:
		return oa_real_gnutls_handshake()(ssl);
	}
}

static int handshake(enum handshake_op op, void *ssl)
{
	if (!ssl || !oa_hook_enter())
		return handshake_real(op, ssl);
	int saved = errno;
	enum library lib = op == GNUTLS_HANDSHAKE ? GNUTLS : OPENSSL;
	struct oa_thread *t = tls_on() ? oa_thread_get() : NULL;
	int fd = t ? session_fd(lib, ssl) : -1;
	bool probe = t && fd == -1;
	if (probe)
		probe_begin();
	uint64_t start = t ? oa_now() : 0;
	errno = saved;
	int ret = handshake_real(op, ssl);
	int err = errno;
	if (probe)
		fd = probed(ssl);
	int failure_errno = err;
	const char *error_type =
	    t && ret <= 0 ? handshake_failure(lib, ssl, ret, &failure_errno) : NULL;
	if (error_type && oa_family_on(OA_HOOK_SOCKETS))
		handshake_span(t, lib, ssl, fd, start, error_type, failure_errno);
	oa_hook_leave();
	errno = err;
	return ret;
}

#define HANDSHAKE_HOOK(name, op)                                                                   \
	OA_EXPORT int name(SSL *ssl)                                                               \
	{                                                                                          \
		if (!oa_real_##name()) {                                                           \
			errno = ENOSYS;                                                            \
			return -1;                                                                 \
		}                                                                                  \
		return handshake(op, ssl);                                                         \
	}

HANDSHAKE_HOOK(SSL_connect, CONNECT)
HANDSHAKE_HOOK(SSL_accept, ACCEPT)
HANDSHAKE_HOOK(SSL_do_handshake, DO_HANDSHAKE)

/* ---- the session's end */

/* The session's write side ends (after the real call): a response that
 * runs until the close ends. */
static void write_side_ended(enum library lib, void *ssl)
{
	if (!ssl || !oa_hook_enter())
		return;
	int saved = errno;
	struct oa_thread *t = tls_on() ? oa_thread_get() : NULL;
	int fd = t ? session_fd(lib, ssl) : -1;
	struct oa_fd *f = session_slot(t, lib, ssl, fd);
	if (f) {
		if (f->tls.session == ssl)
			oa_conn_write_end(t, fd, f);
		oa_fd_unlock_slot(fd, f);
	}
	oa_hook_leave();
	errno = saved;
}

/* The session goes away (before the real call): what its connection's
 * protocol has open ends, as at a close, and the socket is no longer the
 * session's. */
static void session_ended(enum library lib, void *ssl)
{
	if (!ssl || !oa_hook_enter())
		return;
	int saved = errno;
	struct oa_thread *t = oa_thread_get();
	int fd = t ? session_fd(lib, ssl) : -1;
	sessions_remove(ssl);
	if (ssl == failed_session)
		failed_session = NULL;
	struct oa_fd *f = fd >= 0 && (oa_fd_kind(fd) & OA_FD_SOCKET) ? oa_fd_slot(fd) : NULL;
	if (f && oa_fd_lock_slot(t, fd, f)) {
		if (f->tls.session == ssl) {
			oa_conn_close(t, fd, f);
			memset(&f->tls, 0, sizeof f->tls);
		}
		oa_fd_unlock_slot(fd, f);
	}
	oa_hook_leave();
	errno = saved;
}

OA_EXPORT int SSL_shutdown(SSL *ssl)
{
	int (*real)(SSL *) = oa_real_SSL_shutdown();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real(ssl);
	write_side_ended(OPENSSL, ssl);
	return ret;
}

OA_EXPORT void SSL_free(SSL *ssl)
{
	void (*real)(SSL *) = oa_real_SSL_free();
	if (!real)
		return;
	session_ended(OPENSSL, ssl);
	real(ssl);
}

/* ---- GnuTLS */

OA_EXPORT ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t size)
{
	ssize_t (*real)(gnutls_session_t, void *, size_t) = oa_real_gnutls_record_recv();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!size || !oa_hook_enter())
		return real(session, data, size);
	size_t n;
	return read_hooked(&(struct tls_call){.op = RECV, .session = session}, data, size, &n);
}

OA_EXPORT ssize_t gnutls_record_send(gnutls_session_t session, const void *data, size_t size)
{
	ssize_t (*real)(gnutls_session_t, const void *, size_t) = oa_real_gnutls_record_send();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	/* (NULL, 0) flushes a send that failed with GNUTLS_E_AGAIN */
	if (!size || !oa_hook_enter())
		return real(session, data, size);
	size_t written;
	return write_hooked(&(struct tls_call){.op = SEND, .session = session}, data, size,
			    &written);
}

/* gnutls_record_send's own call of it passes at the guard. */
OA_EXPORT ssize_t gnutls_record_send2(gnutls_session_t session, const void *data, size_t size,
				      size_t pad, unsigned flags)
{
	ssize_t (*real)(gnutls_session_t, const void *, size_t, size_t, unsigned) =
	    oa_real_gnutls_record_send2();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!size || !oa_hook_enter())
		return real(session, data, size, pad, flags);
	size_t written;
	return write_hooked(
	    &(struct tls_call){.op = SEND2, .session = session, .pad = pad, .flags = flags}, data,
	    size, &written);
}

/* Length hiding: padded records. */
OA_EXPORT ssize_t gnutls_record_send_range(gnutls_session_t session, const void *data, size_t size,
					   const gnutls_range_st *range)
{
	ssize_t (*real)(gnutls_session_t, const void *, size_t, const gnutls_range_st *) =
	    oa_real_gnutls_record_send_range();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!size || !range || !oa_hook_enter())
		return real(session, data, size, range);
	size_t written;
	return write_hooked(
	    &(struct tls_call){.op = SEND_RANGE, .session = session, .range = range}, data, size,
	    &written);
}

/* A file's bytes: with kernel TLS its sendfile, else its reads and
 * gnutls_record_send calls (through the PLT), which pass at the guard held
 * meanwhile; either way counted, not parsed. The head the program sent
 * before with gnutls_record_send is parsed. */
OA_EXPORT ssize_t gnutls_record_send_file(gnutls_session_t session, int fd, off_t *offset,
					  size_t count)
{
	ssize_t (*real)(gnutls_session_t, int, off_t *, size_t) = oa_real_gnutls_record_send_file();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!count || !oa_hook_enter())
		return real(session, fd, offset, count);
	ssize_t r = real(session, fd, offset, count);
	if (r > 0)
		file_sent(GNUTLS, session, (size_t)r);
	oa_hook_leave();
	return r;
}

/* The plaintext of a record, in a packet the program frees. */
OA_EXPORT ssize_t gnutls_record_recv_packet(gnutls_session_t session, gnutls_packet_t *packet)
{
	ssize_t (*real)(gnutls_session_t, gnutls_packet_t *) = oa_real_gnutls_record_recv_packet();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!packet || !oa_hook_enter())
		return real(session, packet);
	size_t n;
	return read_hooked(
	    &(struct tls_call){.op = RECV_PACKET, .session = session, .packet = packet}, NULL,
	    SIZE_MAX, &n);
}

/* DTLS's: the record's sequence number goes to seq. */
OA_EXPORT ssize_t gnutls_record_recv_seq(gnutls_session_t session, void *data, size_t size,
					 unsigned char *seq)
{
	ssize_t (*real)(gnutls_session_t, void *, size_t, unsigned char *) =
	    oa_real_gnutls_record_recv_seq();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!size || !oa_hook_enter())
		return real(session, data, size, seq);
	size_t n;
	return read_hooked(&(struct tls_call){.op = RECV_SEQ, .session = session, .seq = seq}, data,
			   size, &n);
}

OA_EXPORT int gnutls_handshake(gnutls_session_t session)
{
	if (!oa_real_gnutls_handshake()) {
		errno = ENOSYS;
		return -1;
	}
	return handshake(GNUTLS_HANDSHAKE, session);
}

OA_EXPORT int gnutls_bye(gnutls_session_t session, int how)
{
	int (*real)(gnutls_session_t, int) = oa_real_gnutls_bye();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real(session, how);
	write_side_ended(GNUTLS, session);
	return ret;
}

OA_EXPORT void gnutls_deinit(gnutls_session_t session)
{
	void (*real)(gnutls_session_t) = oa_real_gnutls_deinit();
	if (!real)
		return;
	session_ended(GNUTLS, session);
	real(session);
}
