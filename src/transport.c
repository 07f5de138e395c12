#include "transport.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if OA_FEATURE_GZIP
#include <zlib.h>
#endif

#include "dynlib.h"
#include "fdguard.h"
#include "http_client.h"
#include "log.h"
#include "trace_service.pb-c.h"

#define MAX_BODY_BYTES	   (64u << 20)
#define RESPONSE_KEEP	   (64u << 10) /* far more than any ExportTraceServiceResponse */
#define BACKOFF_FIRST_NS   100000000ull
#define BACKOFF_MAX_NS	   5000000000ull
#define NS_PER_MS	   1000000ull
#define NS_PER_S	   1000000000ull
#define LOGGED_BODY_CHARS  200
#define LOGGED_MESSAGE_MAX 256
/* Happy eyeballs opens two sockets per connection and MAXCONNECTS is 1. */
#define MAX_SOCKETS 8
/* What libcurl may ask us to wait on: our sockets and its resolver's pipe. */
#define MAX_WATCHED (MAX_SOCKETS + 2)
/* The longest single wait when libcurl set no timer (it always does while a
 * transfer runs); the deadline still bounds the whole transfer. */
#define IDLE_WAIT_MS 1000
/* libcurl ends a transfer at CURLOPT_TIMEOUT_MS with its own error; past
 * this much later, the transfer is ended here. */
#define TIMEOUT_GRACE_NS (200 * NS_PER_MS)

const char *oa_transport_libcurl = "libcurl.so.4";
bool oa_transport_builtin_http = true;

/* libcurl reads these for an http:// URL (not HTTP_PROXY: a CGI program's
 * environment may set it from a request header) and applies no_proxy. */
static bool proxy_configured(void)
{
	static const char *const names[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *value = getenv(names[i]);
		if (value && value[0])
			return true;
	}
	return false;
}

/* The built-in client serves plain http:// without userinfo or a proxy. */
static bool builtin_serves(const char *endpoint, struct oa_http_url *url)
{
	return oa_transport_builtin_http && oa_http_url_parse(endpoint, url) && !proxy_configured();
}

static bool uses_libcurl(const char *endpoint)
{
	struct oa_http_url url;
	return endpoint && !builtin_serves(endpoint, &url);
}

bool oa_transport_needs_libcurl(const struct oa_config *cfg)
{
	return uses_libcurl(cfg->endpoint) ||
	       (cfg->metrics_exporter == OA_EXPORTER_OTLP && uses_libcurl(cfg->metrics_endpoint));
}

/* libcurl (and its ~30 dependencies: TLS, krb5, ldap, ...) is opened when
 * first needed, not linked: a traced process that never exports does not
 * pay the ~3 ms and ~8 MB of RSS that loading and initialising it cost.
 * Only the types and constants of <curl/curl.h> are used; every call goes
 * through this table. */
static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURL *(*easy_duphandle)(CURL *curl);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *curl);
	const char *(*easy_strerror)(CURLcode code);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
	CURLMcode (*multi_add_handle)(CURLM *multi, CURL *curl);
	CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *curl);
	CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t fd, int ev_bitmask,
					 int *running);
	CURLMsg *(*multi_info_read)(CURLM *multi, int *left);
	CURLMcode (*multi_cleanup)(CURLM *multi);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *line);
	void (*slist_free_all)(struct curl_slist *list);
} lc;

/* Like libcurl, and opened with it: zlib when requests are compressed, and
 * protobuf-c to read the collector's protobuf responses. */
#if OA_FEATURE_GZIP
#define ZLIB_FUNCTIONS(X) X(deflateInit2_) X(deflateReset) X(deflateBound) X(deflate) X(deflateEnd)
static struct {
	ZLIB_FUNCTIONS(OA_DYNLIB_POINTER)
} zlib;
#define ZLIB_SYMBOL(name) OA_DYNLIB_SYMBOL(zlib, name)
static const struct oa_dynlib_symbol zlib_symbols[] = {ZLIB_FUNCTIONS(ZLIB_SYMBOL)};
static struct oa_dynlib zlib_lib =
    OA_DYNLIB("libz.so.1", zlib_symbols, "requests are sent uncompressed");
#endif

#define PROTOBUF_C_FUNCTIONS(X) X(protobuf_c_message_unpack) X(protobuf_c_message_free_unpacked)
static struct {
	PROTOBUF_C_FUNCTIONS(OA_DYNLIB_POINTER)
} protobuf_c;
#define PROTOBUF_C_SYMBOL(name) OA_DYNLIB_SYMBOL(protobuf_c, name)
static const struct oa_dynlib_symbol protobuf_c_symbols[] = {
    PROTOBUF_C_FUNCTIONS(PROTOBUF_C_SYMBOL)};
static struct oa_dynlib protobuf_c_lib =
    OA_DYNLIB("libprotobuf-c.so.1", protobuf_c_symbols, "the collector's responses are not read");

/* The generated descriptors and initialisers point string fields at this
 * empty string, which libprotobuf-c defines too: ours lets the shim load
 * without the library. Sound because libprotobuf-c never compares a field
 * with its own copy, only with the field descriptor's default_value (which
 * is this one); on Windows its header even gives every file a copy. */
const char protobuf_c_empty_string[] = "";

static bool lc_ready;
/* 0 before the load, LOAD_DONE after it (lc_ready tells how it went), and
 * meanwhile the pid of the process whose thread loads libcurl. */
static pid_t lc_state;
#define LOAD_DONE (-1)
/* Held while libcurl loads, and by a forking thread from the prepare handler
 * to the parent (or child) handler: a child never inherits libcurl, OpenSSL
 * or the dynamic loader's state halfway through a load. */
static pthread_mutex_t lc_fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t lc_fork_holder;
static bool lc_fork_held;

#define LOAD_WAIT_MS 5000

/* Registered after OpenSSL's atexit cleanup (see openssl_usable), so it
 * runs before it: an exit that starts while libcurl loads waits rather than
 * have OpenSSL torn down under it. */
static void wait_for_load(void)
{
	struct timespec ms = {0, 1000000};
	for (int i = 0;
	     i < LOAD_WAIT_MS && __atomic_load_n(&lc_state, __ATOMIC_ACQUIRE) == getpid(); i++)
		nanosleep(&ms, NULL);
}

void oa_transport_atfork_prepare(void)
{
	/* Bounded: a loader stuck behind this fork must not hang it. */
	struct timespec ms = {0, 1000000};
	for (int i = 0; pthread_mutex_trylock(&lc_fork_lock) != 0; i++) {
		if (i == LOAD_WAIT_MS)
			return;
		nanosleep(&ms, NULL);
	}
	lc_fork_holder = pthread_self();
	__atomic_store_n(&lc_fork_held, true, __ATOMIC_RELEASE);
}

void oa_transport_atfork_parent(void)
{
	if (__atomic_load_n(&lc_fork_held, __ATOMIC_ACQUIRE) &&
	    pthread_equal(lc_fork_holder, pthread_self())) {
		__atomic_store_n(&lc_fork_held, false, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&lc_fork_lock);
	}
}

void oa_transport_atfork_child(void)
{
	/* The forking thread is the child's only thread: it unlocks what it
	 * took in prepare (ThreadSanitizer sees a re-initialised locked mutex
	 * as still held); a lock left by a thread gone with the fork is made
	 * anew. */
	if (__atomic_load_n(&lc_fork_held, __ATOMIC_ACQUIRE))
		pthread_mutex_unlock(&lc_fork_lock);
	else
		pthread_mutex_init(&lc_fork_lock, NULL);
	lc_fork_held = false;
}

/* OpenSSL shuts down in an atexit handler that its first initialisation
 * registers, and cannot be initialised again: libcurl initialised after or
 * during that shutdown uses freed state and crashes the process. So OpenSSL
 * is initialised here first, without that handler when nobody registered it
 * yet (it would run before our final flush); when the application did,
 * wait_for_load is registered after it. False once OpenSSL is shut down
 * (OPENSSL_init_crypto answers 0). */
static int (*openssl_init_crypto)(uint64_t opts, const void *settings);
static bool tls_ends_before_exit;
static bool loading_early; /* oa_transport_load_early's load */

static bool openssl_usable(void *libcurl)
{
	const uint64_t no_atexit = 0x80000; /* OPENSSL_INIT_NO_ATEXIT */
	openssl_init_crypto = dlsym(libcurl, "OPENSSL_init_crypto");
	return !openssl_init_crypto || openssl_init_crypto(no_atexit, NULL);
}

/* Whether OpenSSL, initialised, has shut down since (asked without adding
 * to its error queue, which is gone then). */
static bool openssl_shut_down(void)
{
	const uint64_t base_only = 0x40000; /* OPENSSL_INIT_BASE_ONLY */
	return openssl_init_crypto && !openssl_init_crypto(base_only, NULL);
}

/* Never closed: libcurl and its TLS library cannot be unloaded safely. */
static bool load_libcurl_locked(void)
{
	void *lib = dlopen(oa_transport_libcurl, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		oa_warn("cannot load %s (%s); spans will not be exported", oa_transport_libcurl,
			dlerror());
		return false;
	}
	bool ok = true;
#define RESOLVE(name) ok = ok && (lc.name = dlsym(lib, "curl_" #name)) != NULL
	RESOLVE(global_init);
	RESOLVE(easy_init);
	RESOLVE(easy_duphandle);
	RESOLVE(easy_setopt);
	RESOLVE(easy_getinfo);
	RESOLVE(easy_cleanup);
	RESOLVE(easy_strerror);
	RESOLVE(multi_init);
	RESOLVE(multi_setopt);
	RESOLVE(multi_add_handle);
	RESOLVE(multi_remove_handle);
	RESOLVE(multi_socket_action);
	RESOLVE(multi_info_read);
	RESOLVE(multi_cleanup);
	RESOLVE(slist_append);
	RESOLVE(slist_free_all);
#undef RESOLVE
	if (!ok) {
		oa_warn("%s lacks a function we use; spans will not be exported",
			oa_transport_libcurl);
		return false;
	}
	CURLcode code = CURLE_OK;
	bool usable = openssl_usable(lib);
	tls_ends_before_exit = openssl_init_crypto && !loading_early;
	if (usable) {
		atexit(wait_for_load);
		/* Again: a shutdown may have begun before the handler was in. */
		usable = openssl_usable(lib);
		/* Our reference keeps libcurl's global state standing when the
		 * application (sharing this libcurl) calls curl_global_cleanup. */
		if (usable)
			code = lc.global_init(CURL_GLOBAL_DEFAULT);
	}
	if (!usable)
		oa_warn("not initialising libcurl: the application's OpenSSL is already shut "
			"down (the process is exiting); spans will not be exported");
	else if (code != CURLE_OK)
		oa_warn("cannot initialise libcurl (%s); spans will not be exported",
			lc.easy_strerror(code));
	return usable && code == CURLE_OK;
}

bool oa_transport_load(void)
{
	pid_t state = __atomic_load_n(&lc_state, __ATOMIC_ACQUIRE);
	if (state == LOAD_DONE)
		return lc_ready;
	/* A child made without atfork handlers (the prepare handler waits for
	 * a load) may come from the middle of another thread's load: libcurl,
	 * and maybe the dynamic loader's lock, stay half-taken here for good.
	 * This process goes without. */
	pid_t self = getpid();
	if (state != 0 && state != self)
		return false;
	pthread_mutex_lock(&lc_fork_lock);
	state = lc_state;
	if (state == 0) {
		__atomic_store_n(&lc_state, self, __ATOMIC_RELEASE);
		lc_ready = load_libcurl_locked();
		__atomic_store_n(&lc_state, LOAD_DONE, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lc_fork_lock);
	return lc_ready;
}

static int find_libcrypto(struct dl_phdr_info *info, size_t size, void *found)
{
	const char *slash = strrchr(info->dlpi_name, '/');
	const char *base = slash ? slash + 1 : info->dlpi_name;
	*(bool *)found = strncmp(base, "libcrypto.so", 12) == 0;
	return *(bool *)found;
}

void oa_transport_load_early(void)
{
	bool found = false;
	dl_iterate_phdr(find_libcrypto, &found);
	loading_early = found;
	if (found)
		oa_transport_load();
	loading_early = false;
}

bool oa_transport_tls_ends_before_exit(void)
{
	return tls_ends_before_exit;
}

struct oa_transport {
	/* The built-in client (http://), or NULL and libcurl's handles. */
	struct oa_http_client *plain;
	char *plain_head; /* the request head up to Content-Length */
	size_t plain_head_len;
	struct oa_http_response answer; /* keeps its body in response */
	/* Configured once and never performed: after a hijack the working
	 * handle is replaced by a duplicate of it. */
	CURL *template;
	CURL *curl;   /* NULL until the next send makes one */
	CURLM *multi; /* runs curl's transfers; holds the kept-alive connection */
	/* What libcurl waits for, told through its socket and timer callbacks:
	 * the waits happen here, in poll(), outside any libcurl call. */
	struct pollfd watched[MAX_WATCHED];
	size_t n_watched;
	bool timer_set;
	uint64_t timer_ns; /* CLOCK_MONOTONIC */
	pthread_mutex_t *released_while_waiting;
	struct curl_slist *headers;
	char *endpoint_for_logs; /* no userinfo, no query */
	uint32_t timeout_ms;
	enum oa_protocol protocol;
#if OA_FEATURE_GZIP
	bool gzip;
	z_stream deflater; /* reset between calls: its window is allocated once */
	bool deflater_ready;
	uint8_t *gzip_buf;
	size_t gzip_cap;
#endif
	char *response; /* RESPONSE_KEEP + 1 bytes */
	size_t response_len;
	int sockets[MAX_SOCKETS]; /* open, protected, created by open_socket */
	size_t n_sockets;
	uint64_t rng;
	bool no_connect_retry; /* see oa_transport_set_flushing */
	bool tls;	       /* an https endpoint */
};

enum warning_kind {
	WARN_PARTIAL,
	WARN_REFUSED,
	WARN_GAVE_UP,
	WARN_FAILED,
	WARN_HIJACKED,
	WARN_NO_HANDLE,
	WARN_GZIP,
	WARN_HEADER,
	WARN_TLS_SHUT_DOWN,
	WARN_KINDS,
};

static bool warned[WARN_KINDS];

/* The first occurrence of each kind per process is a warning; later ones
 * are debug lines, so a dead collector does not flood the application's
 * stderr. */
static void warn_once(enum warning_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void warn_once(enum warning_kind kind, const char *fmt, ...)
{
	enum oa_log_level level =
	    __atomic_exchange_n(&warned[kind], true, __ATOMIC_RELAXED) ? OA_LOG_DEBUG : OA_LOG_WARN;
	if (level > oa_log_threshold)
		return;
	char line[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	oa_log(level, "%s", line);
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Waits (backoff, network) run without the caller's working lock: a fork
 * waits for that lock, and must not wait for the collector. */
static void release_working(struct oa_transport *t)
{
	if (t->released_while_waiting)
		pthread_mutex_unlock(t->released_while_waiting);
}

static void retake_working(struct oa_transport *t)
{
	if (t->released_while_waiting)
		pthread_mutex_lock(t->released_while_waiting);
}

static void sleep_until(struct oa_transport *t, uint64_t when_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(when_ns / NS_PER_S),
			      .tv_nsec = (long)(when_ns % NS_PER_S)};
	release_working(t);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	retake_working(t);
}

/* splitmix64: jitter needs spread, not secrecy. */
static uint64_t next_random(struct oa_transport *t)
{
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Control characters and non-ASCII bytes become '?': the text comes from the
 * network and goes to the application's stderr. */
static void sanitize(char *out, size_t out_size, const char *in, size_t in_len)
{
	size_t n = in_len < out_size - 1 ? in_len : out_size - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
}

/* scheme://user:secret@host:port/path?key=... -> scheme://host:port/path */
static char *endpoint_without_secrets(const char *url)
{
	const char *scheme_end = strstr(url, "://");
	const char *authority = scheme_end ? scheme_end + 3 : url;
	size_t authority_len = strcspn(authority, "/?#");
	const char *host = authority;
	for (const char *p = authority; p < authority + authority_len; p++)
		if (*p == '@')
			host = p + 1;
	size_t tail_len = strcspn(host, "?#");
	size_t prefix_len = (size_t)(authority - url);
	char *out = malloc(prefix_len + tail_len + 1);
	if (!out)
		return NULL;
	memcpy(out, url, prefix_len);
	memcpy(out + prefix_len, host, tail_len);
	out[prefix_len + tail_len] = '\0';
	return out;
}

static bool append_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *grown = lc.slist_append(*list, line);
	if (!grown)
		return false;
	*list = grown;
	return true;
}

/* "key: value"; an empty value needs curl's "key;" form (a bare "key:"
 * removes the header). CR or LF would split the request: such a header is
 * skipped, and only its key is named. */
static bool header_malformed(const struct oa_kv *kv)
{
	if (!strpbrk(kv->key, "\r\n:") && !strpbrk(kv->value, "\r\n"))
		return false;
	char key[LOGGED_MESSAGE_MAX];
	sanitize(key, sizeof key, kv->key, strlen(kv->key));
	warn_once(WARN_HEADER, "skipping OTLP header \"%s\": its name or value is malformed", key);
	return true;
}

static bool append_configured_header(struct curl_slist **list, const struct oa_kv *kv)
{
	if (header_malformed(kv))
		return true;
	size_t size = strlen(kv->key) + strlen(kv->value) + 3;
	char *line = malloc(size);
	if (!line)
		return false;
	if (kv->value[0])
		snprintf(line, size, "%s: %s", kv->key, kv->value);
	else
		snprintf(line, size, "%s;", kv->key);
	bool ok = append_header(list, line);
	free(line);
	return ok;
}

static const char *content_type(const struct oa_config *cfg)
{
	return cfg->protocol == OA_PROTOCOL_JSON ? "Content-Type: application/json"
						 : "Content-Type: application/x-protobuf";
}

#define USER_AGENT "User-Agent: OTel-OTLP-Exporter-C/otlpauto-" OTLPAUTO_VERSION
/* Room after the head for "Content-Length: <20 digits>\r\n\r\n". */
#define CONTENT_LENGTH_ROOM 40

/* The built-in client's request head, all but its Content-Length. */
static bool configured(const struct oa_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->headers.n; i++)
		if (strcasecmp(cfg->headers.items[i].key, name) == 0)
			return true;
	return false;
}

/* The configured headers replace our Host, User-Agent and Content-Type (as
 * libcurl lets them); the body's framing and encoding stay ours. */
static bool ours_only(const char *name)
{
	return strcasecmp(name, "Content-Length") == 0 ||
	       strcasecmp(name, "Transfer-Encoding") == 0 || strcasecmp(name, "Connection") == 0 ||
	       strcasecmp(name, "Content-Encoding") == 0;
}

static size_t print_plain_head(char *out, size_t size, const struct oa_config *cfg,
			       const struct oa_http_url *url, bool gzip)
{
#define PRINT(...) (n += (size_t)snprintf(out ? out + n : NULL, out ? size - n : 0, __VA_ARGS__))
	size_t n = 0;
	/* "http://host?q" asks for "/?q" */
	const char *slash = url->target_len && url->target[0] == '/' ? "" : "/";
	PRINT("POST %s%.*s HTTP/1.1\r\n", slash, (int)url->target_len, url->target);
	if (!configured(cfg, "Host"))
		PRINT("Host: %.*s\r\n", (int)url->authority_len, url->authority);
	if (!configured(cfg, "User-Agent"))
		PRINT(USER_AGENT "\r\n");
	if (!configured(cfg, "Content-Type"))
		PRINT("%s\r\n", content_type(cfg));
	if (gzip)
		PRINT("Content-Encoding: gzip\r\n");
	for (size_t i = 0; i < cfg->headers.n; i++) {
		const struct oa_kv *kv = &cfg->headers.items[i];
		PRINT("%s:%s%s\r\n", kv->key, kv->value[0] ? " " : "", kv->value);
	}
	return n;
#undef PRINT
}

/* The built-in client's request head, all but its Content-Length (for
 * which CONTENT_LENGTH_ROOM bytes follow). Malformed headers are left out,
 * and those that would reframe the body. */
static char *build_plain_head(const struct oa_config *cfg, const struct oa_http_url *url, bool gzip,
			      size_t *len)
{
	struct oa_config valid = *cfg;
	struct oa_kv *kept = calloc(cfg->headers.n + 1, sizeof *kept);
	if (!kept)
		return NULL;
	valid.headers.items = kept;
	valid.headers.n = 0;
	for (size_t i = 0; i < cfg->headers.n; i++)
		if (!header_malformed(&cfg->headers.items[i]) &&
		    !ours_only(cfg->headers.items[i].key))
			kept[valid.headers.n++] = cfg->headers.items[i];
	size_t size = print_plain_head(NULL, 0, &valid, url, gzip) + 1;
	char *head = malloc(size + CONTENT_LENGTH_ROOM);
	if (head)
		*len = print_plain_head(head, size, &valid, url, gzip);
	free(kept);
	return head;
}

static struct curl_slist *build_headers(const struct oa_config *cfg, bool gzip)
{
	struct curl_slist *list = NULL;
	bool ok = append_header(&list, content_type(cfg)) &&
		  /* curl would wait up to 1 s for "100 Continue" on big bodies */
		  append_header(&list, "Expect:");
	if (gzip)
		ok = ok && append_header(&list, "Content-Encoding: gzip");
	for (size_t i = 0; ok && i < cfg->headers.n; i++)
		ok = append_configured_header(&list, &cfg->headers.items[i]);
	if (!ok) {
		lc.slist_free_all(list);
		return NULL;
	}
	return list;
}

/* Raw syscalls throughout: our own hooks (and other preloads') must not see
 * or veto our sockets. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct oa_transport *t = clientp;
	if (t->n_sockets == MAX_SOCKETS)
		return CURL_SOCKET_BAD;
	oa_fd_make_begin();
	int fd = (int)syscall(SYS_socket, address->family, address->socktype | SOCK_CLOEXEC,
			      address->protocol);
	fd = oa_fd_own(fd); /* above the program's usual range */
	oa_fd_make_end();
	if (fd < 0)
		return CURL_SOCKET_BAD;
	t->sockets[t->n_sockets++] = fd;
	return fd;
}

static void forget_socket(struct oa_transport *t, int fd)
{
	for (size_t i = 0; i < t->n_sockets; i++) {
		if (t->sockets[i] == fd) {
			t->sockets[i] = t->sockets[--t->n_sockets];
			return;
		}
	}
}

static int close_socket(void *clientp, curl_socket_t fd)
{
	forget_socket(clientp, fd);
	return oa_fd_release(fd);
}

static void release_all_sockets(struct oa_transport *t)
{
	for (size_t i = 0; i < t->n_sockets; i++)
		oa_fd_release(t->sockets[i]);
	t->n_sockets = 0;
}

/* After dup2/dup3 onto one of our sockets, libcurl must never touch that
 * number again (even curl_easy_cleanup may write a TLS close_notify to it),
 * so the handle is leaked and our other sockets are closed by hand. */
static void drop_hijacked_handle(struct oa_transport *t)
{
	size_t i = 0;
	while (i < t->n_sockets && !oa_fd_take_hijacked(t->sockets[i]))
		i++;
	if (i == t->n_sockets)
		return;
	forget_socket(t, t->sockets[i]); /* the application's now: not closed */
	warn_once(WARN_HIJACKED,
		  "the application replaced the descriptor of our connection to %s; reconnecting",
		  t->endpoint_for_logs);
	release_all_sockets(t);
	/* The multi handle keeps the connection: it goes with the handle. */
	t->curl = NULL;
	t->multi = NULL;
	t->n_watched = 0;
}

static size_t keep_response(char *data, size_t size, size_t count, void *clientp)
{
	struct oa_transport *t = clientp;
	size_t len = size * count;
	size_t room = RESPONSE_KEEP - t->response_len;
	size_t kept = len < room ? len : room;
	memcpy(t->response + t->response_len, data, kept);
	t->response_len += kept;
	return len;
}

static CURL *create_template(struct oa_transport *t, const struct oa_config *cfg)
{
	CURL *curl = lc.easy_init();
	if (!curl)
		return NULL;
	bool ok = lc.easy_setopt(curl, CURLOPT_URL, cfg->endpoint) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_POST, 1L) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_HTTPHEADER, t->headers) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_USERAGENT,
				 "OTel-OTLP-Exporter-C/otlpauto-" OTLPAUTO_VERSION) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_MAXCONNECTS, 1L) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_OPENSOCKETDATA, t) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, close_socket) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_CLOSESOCKETDATA, t) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_response) == CURLE_OK &&
		  lc.easy_setopt(curl, CURLOPT_WRITEDATA, t) == CURLE_OK;
	if (ok && cfg->certificate)
		ok = lc.easy_setopt(curl, CURLOPT_CAINFO, cfg->certificate) == CURLE_OK;
	if (ok && cfg->client_certificate)
		ok = lc.easy_setopt(curl, CURLOPT_SSLCERT, cfg->client_certificate) == CURLE_OK;
	if (ok && cfg->client_key)
		ok = lc.easy_setopt(curl, CURLOPT_SSLKEY, cfg->client_key) == CURLE_OK;
	if (!ok) {
		lc.easy_cleanup(curl);
		return NULL;
	}
	return curl;
}

static void free_own_memory(struct oa_transport *t)
{
#if OA_FEATURE_GZIP
	if (t->deflater_ready)
		zlib.deflateEnd(&t->deflater);
	free(t->gzip_buf);
#endif
	if (t->headers)
		lc.slist_free_all(t->headers);
	oa_http_client_destroy(t->plain);
	free(t->plain_head);
	free(t->response);
	free(t->endpoint_for_logs);
	free(t);
}

struct oa_transport *oa_transport_create(const struct oa_config *cfg)
{
	struct oa_http_url url;
	bool builtin = builtin_serves(cfg->endpoint, &url);
	if (!builtin && !oa_transport_load())
		return NULL;
	struct oa_transport *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->timeout_ms = cfg->otlp_timeout_ms;
	t->protocol = cfg->protocol;
	bool gzip = false;
#if OA_FEATURE_GZIP
	t->gzip = gzip = cfg->gzip && oa_dynlib_load(&zlib_lib);
#endif
	if (t->protocol == OA_PROTOCOL_PROTOBUF)
		oa_dynlib_load(&protobuf_c_lib);
	t->rng = monotonic_ns() ^ (uint64_t)(uintptr_t)t ^ ((uint64_t)getpid() << 32);
	t->endpoint_for_logs = endpoint_without_secrets(cfg->endpoint);
	t->tls = strncasecmp(cfg->endpoint, "https:", 6) == 0;
	t->response = malloc(RESPONSE_KEEP + 1);
	bool ok = t->endpoint_for_logs && t->response;
	if (ok && builtin) {
		oa_http_response_init(&t->answer, t->response, RESPONSE_KEEP);
		t->plain_head = build_plain_head(cfg, &url, gzip, &t->plain_head_len);
		t->plain = t->plain_head ? oa_http_client_create(&url) : NULL;
		ok = t->plain != NULL;
	} else if (ok) {
		t->headers = build_headers(cfg, gzip);
		t->template = t->headers ? create_template(t, cfg) : NULL;
		ok = t->template != NULL;
	}
	if (!ok) {
		free_own_memory(t);
		return NULL;
	}
	return t;
}

void oa_transport_destroy(struct oa_transport *t)
{
	if (!t)
		return;
	if (!t->plain) {
		drop_hijacked_handle(t);
		if (t->curl)
			lc.easy_cleanup(t->curl);
		if (t->multi)
			lc.multi_cleanup(t->multi); /* closes our sockets through close_socket */
		lc.easy_cleanup(t->template);
	}
	free_own_memory(t);
}

/* In a forked child no libcurl call is safe (the parent's exporter thread may
 * have held its locks at fork time), so its handles are leaked, and so is
 * our memory: a child made without atfork handlers may find the allocator
 * locked by a thread that is gone, and the pages stay shared with the parent
 * until written. Our sockets are closed with raw syscalls: closing the
 * child's copy does not end the parent's connection (only the last reference
 * does), and keeping it would hold that connection open after the parent
 * closes it. */
void oa_transport_abandon(struct oa_transport *t)
{
	if (t) {
		release_all_sockets(t);
		oa_http_client_abandon(t->plain);
	}
}

#if OA_FEATURE_GZIP
/* gzip wrapper (windowBits 15 + 16) into a buffer reused between calls. */
static bool gzip_body(struct oa_transport *t, const uint8_t *body, size_t len, size_t *out_len)
{
	if (!t->deflater_ready) {
		/* What the deflateInit2 macro expands to. */
		if (zlib.deflateInit2_(&t->deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
				       Z_DEFAULT_STRATEGY, ZLIB_VERSION,
				       (int)sizeof(t->deflater)) != Z_OK)
			return false;
		t->deflater_ready = true;
	} else if (zlib.deflateReset(&t->deflater) != Z_OK) {
		return false;
	}
	size_t bound = zlib.deflateBound(&t->deflater, (uLong)len);
	if (bound > t->gzip_cap) {
		uint8_t *grown = realloc(t->gzip_buf, bound);
		if (!grown)
			return false;
		t->gzip_buf = grown;
		t->gzip_cap = bound;
	}
	t->deflater.next_in = (Bytef *)body;
	t->deflater.avail_in = (uInt)len;
	t->deflater.next_out = t->gzip_buf;
	t->deflater.avail_out = (uInt)t->gzip_cap;
	if (zlib.deflate(&t->deflater, Z_FINISH) != Z_STREAM_END)
		return false;
	*out_len = t->gzip_cap - t->deflater.avail_out;
	return true;
}
#endif

/* Points after `"key"` and the colon, or NULL. */
static const char *json_value(const char *json, size_t len, const char *quoted_key)
{
	const char *p = memmem(json, len, quoted_key, strlen(quoted_key));
	if (!p)
		return NULL;
	p += strlen(quoted_key);
	p += strspn(p, " \t\r\n");
	if (*p != ':')
		return NULL;
	p++;
	return p + strspn(p, " \t\r\n");
}

/* {"partialSuccess":{"rejectedSpans":"3","errorMessage":"..."}}: int64 may be
 * a string or a number in proto3 JSON. Escapes are reduced to the escaped
 * character: the message is only logged. */
static uint64_t parse_json_response(const char *json, size_t len, char *message,
				    size_t message_size)
{
	message[0] = '\0';
	const char *value = json_value(json, len, "\"rejectedSpans\"");
	if (!value)
		return 0;
	uint64_t rejected = strtoull(value + (*value == '"'), NULL, 10);
	value = json_value(json, len, "\"errorMessage\"");
	if (value && *value == '"') {
		char raw[LOGGED_MESSAGE_MAX];
		size_t n = 0;
		for (const char *p = value + 1; *p && *p != '"' && n < sizeof raw; p++) {
			if (*p == '\\' && p[1])
				p++;
			raw[n++] = *p;
		}
		sanitize(message, message_size, raw, n);
	}
	return rejected;
}

static uint64_t parse_protobuf_response(const uint8_t *data, size_t len, char *message,
					size_t message_size)
{
	message[0] = '\0';
	if (!oa_dynlib_load(&protobuf_c_lib))
		return 0;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *response =
	    (Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *)
		protobuf_c.protobuf_c_message_unpack(
		    &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor,
		    NULL, len, data);
	if (!response) {
		oa_debug("ignoring an unreadable ExportTraceServiceResponse (%zu bytes)", len);
		return 0;
	}
	uint64_t rejected = 0;
	if (response->partial_success) {
		int64_t count = response->partial_success->rejected_spans;
		rejected = count > 0 ? (uint64_t)count : 0;
		const char *text = response->partial_success->error_message;
		if (text)
			sanitize(message, message_size, text, strlen(text));
	}
	protobuf_c.protobuf_c_message_free_unpacked(&response->base, NULL);
	return rejected;
}

static uint64_t handle_success(struct oa_transport *t)
{
	char message[LOGGED_MESSAGE_MAX];
	t->response[t->response_len] = '\0';
	uint64_t rejected =
	    t->protocol == OA_PROTOCOL_JSON
		? parse_json_response(t->response, t->response_len, message, sizeof message)
		: parse_protobuf_response((const uint8_t *)t->response, t->response_len, message,
					  sizeof message);
	if (rejected > 0)
		warn_once(WARN_PARTIAL, "%s rejected %llu spans: %s", t->endpoint_for_logs,
			  (unsigned long long)rejected, message[0] ? message : "(no message)");
	return rejected;
}

static bool retryable_status(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Connection-level failures that another attempt may not meet. */
static bool retryable_error(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* Nobody listening (or no such host): waiting will not make a collector
 * appear while the process exits. */
static bool unreachable(CURLcode code)
{
	return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
	       code == CURLE_COULDNT_RESOLVE_PROXY;
}

void oa_transport_set_flushing(struct oa_transport *t, bool flushing)
{
	t->no_connect_retry = flushing;
}

static void describe_error(CURL *curl, CURLcode code, char *out, size_t out_size)
{
	long os_errno = 0;
	lc.easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno)
		snprintf(out, out_size, "%s (%s)", lc.easy_strerror(code), strerror((int)os_errno));
	else
		snprintf(out, out_size, "%s", lc.easy_strerror(code));
}

void oa_transport_release_while_waiting(struct oa_transport *t, pthread_mutex_t *lock)
{
	t->released_while_waiting = lock;
}

static int watch_socket(CURL *easy, curl_socket_t fd, int what, void *clientp, void *socketp)
{
	struct oa_transport *t = clientp;
	size_t i = 0;
	while (i < t->n_watched && t->watched[i].fd != fd)
		i++;
	if (what == CURL_POLL_REMOVE) {
		if (i < t->n_watched)
			t->watched[i] = t->watched[--t->n_watched];
		return 0;
	}
	if (i == t->n_watched) {
		if (i == MAX_WATCHED)
			return -1;
		t->n_watched++;
	}
	t->watched[i] = (struct pollfd){
	    .fd = fd,
	    .events =
		(short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0)),
	};
	return 0;
}

static int set_timer(CURLM *multi, long timeout_ms, void *clientp)
{
	struct oa_transport *t = clientp;
	t->timer_set = timeout_ms >= 0;
	t->timer_ns = monotonic_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * NS_PER_MS;
	return 0;
}

static CURLM *create_multi(struct oa_transport *t)
{
	CURLM *multi = lc.multi_init();
	if (multi && (lc.multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, watch_socket) != CURLM_OK ||
		      lc.multi_setopt(multi, CURLMOPT_SOCKETDATA, t) != CURLM_OK ||
		      lc.multi_setopt(multi, CURLMOPT_TIMERFUNCTION, set_timer) != CURLM_OK ||
		      lc.multi_setopt(multi, CURLMOPT_TIMERDATA, t) != CURLM_OK ||
		      lc.multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1L) != CURLM_OK)) {
		lc.multi_cleanup(multi);
		return NULL;
	}
	t->n_watched = 0;
	t->timer_set = false;
	return multi;
}

static bool transfer_done(struct oa_transport *t, CURLcode *result)
{
	int left;
	CURLMsg *msg;
	while ((msg = lc.multi_info_read(t->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == t->curl) {
			*result = msg->data.result;
			return true;
		}
	}
	return false;
}

/* Waits for libcurl's sockets or timer, without the working lock; then
 * tells libcurl what happened (under it). */
static void wait_and_act(struct oa_transport *t, uint64_t until_ns)
{
	uint64_t now = monotonic_ns();
	uint64_t wake_ns = t->timer_set && t->timer_ns < until_ns ? t->timer_ns : until_ns;
	uint64_t wait_ms = wake_ns > now ? (wake_ns - now + NS_PER_MS - 1) / NS_PER_MS : 0;
	int timeout_ms = (int)(wait_ms < IDLE_WAIT_MS ? wait_ms : IDLE_WAIT_MS);
	struct pollfd ready[MAX_WATCHED];
	size_t n = t->n_watched;
	memcpy(ready, t->watched, n * sizeof *ready);
	release_working(t);
	int events = poll(ready, n, timeout_ms);
	retake_working(t);
	int running;
	/* Each call may change t->watched: act on the copy. */
	for (size_t i = 0; events > 0 && i < n; i++) {
		short r = ready[i].revents;
		if (!r)
			continue;
		int mask = (r & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) |
			   (r & POLLOUT ? CURL_CSELECT_OUT : 0) |
			   (r & (POLLERR | POLLNVAL) ? CURL_CSELECT_ERR : 0);
		lc.multi_socket_action(t->multi, ready[i].fd, mask, &running);
		/* Not open (libcurl was not told of its close): not polled again. */
		if (r & POLLNVAL)
			watch_socket(NULL, ready[i].fd, CURL_POLL_REMOVE, t, NULL);
	}
	if (t->timer_set && monotonic_ns() >= t->timer_ns) {
		t->timer_set = false;
		lc.multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

/* One attempt: t->curl's transfer on t->multi, ended by libcurl at
 * CURLOPT_TIMEOUT_MS or here shortly after until_ns. */
static CURLcode perform(struct oa_transport *t, uint64_t until_ns)
{
	if (!t->multi)
		t->multi = create_multi(t);
	if (!t->multi || lc.multi_add_handle(t->multi, t->curl) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	CURLcode result = CURLE_OPERATION_TIMEDOUT;
	uint64_t give_up_ns = until_ns + TIMEOUT_GRACE_NS;
	while (!transfer_done(t, &result) && monotonic_ns() < give_up_ns)
		wait_and_act(t, give_up_ns);
	lc.multi_remove_handle(t->multi, t->curl);
	return result;
}

/* What one attempt came to, whichever client made it. */
struct attempt {
	bool answered; /* status holds the HTTP answer */
	long status;
	int64_t retry_after_s; /* -1: no Retry-After */
	bool retryable;	       /* not answered: another attempt may fare better */
	bool unreachable;      /* not answered: nobody listens, or no such host */
	char error[LOGGED_MESSAGE_MAX];
};

static bool prepare_curl(struct oa_transport *t, const uint8_t *payload, size_t len)
{
	drop_hijacked_handle(t);
	if (!t->curl)
		t->curl = lc.easy_duphandle(t->template);
	if (!t->curl) {
		warn_once(WARN_NO_HANDLE, "cannot create a libcurl handle; spans dropped");
		return false;
	}
	lc.easy_setopt(t->curl, CURLOPT_POSTFIELDS, payload);
	lc.easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	return true;
}

static void curl_attempt(struct oa_transport *t, uint64_t attempt_ms, struct attempt *a)
{
	lc.easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)attempt_ms);
	lc.easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)attempt_ms);
	CURLcode code = perform(t, monotonic_ns() + attempt_ms * NS_PER_MS);
	if (code == CURLE_OK) {
		a->answered = true;
		lc.easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &a->status);
		curl_off_t retry_after_s = 0;
		lc.easy_getinfo(t->curl, CURLINFO_RETRY_AFTER, &retry_after_s);
		a->retry_after_s = retry_after_s > 0 ? (int64_t)retry_after_s : -1;
		return;
	}
	describe_error(t->curl, code, a->error, sizeof a->error);
	a->retryable = retryable_error(code);
	a->unreachable = unreachable(code);
}

static void plain_attempt(struct oa_transport *t, const uint8_t *payload, size_t len,
			  uint64_t attempt_ms, struct attempt *a)
{
	int n = snprintf(t->plain_head + t->plain_head_len, CONTENT_LENGTH_ROOM,
			 "Content-Length: %zu\r\n\r\n", len);
	struct oa_http_post post = {
	    .head = t->plain_head,
	    .head_len = t->plain_head_len + (size_t)n,
	    .body = payload,
	    .body_len = len,
	    .until_ns = monotonic_ns() + attempt_ms * NS_PER_MS,
	    .released_while_waiting = t->released_while_waiting,
	    .response = &t->answer,
	};
	enum oa_http_outcome outcome = oa_http_client_post(t->plain, &post);
	if (post.hijacked)
		warn_once(WARN_HIJACKED,
			  "the application replaced the descriptor of our connection to %s; "
			  "reconnecting",
			  t->endpoint_for_logs);
	t->response_len = t->answer.body_len;
	const char *why = post.os_errno ? strerror(post.os_errno) : NULL;
	switch (outcome) {
	case OA_HTTP_ANSWERED:
		a->answered = true;
		a->status = t->answer.status;
		a->retry_after_s = t->answer.retry_after_s;
		return;
	case OA_HTTP_CANNOT_CONNECT:
		a->retryable = a->unreachable = true;
		snprintf(a->error, sizeof a->error, "cannot connect (%s)",
			 why ? why : "no address");
		return;
	case OA_HTTP_TIMED_OUT:
		a->retryable = true;
		snprintf(a->error, sizeof a->error, "no answer within %llu ms",
			 (unsigned long long)attempt_ms);
		return;
	case OA_HTTP_BROKEN:
		a->retryable = true;
		snprintf(a->error, sizeof a->error, "the connection ended before the answer (%s)",
			 why ? why : "closed by the server");
		return;
	case OA_HTTP_BAD_REPLY:
		snprintf(a->error, sizeof a->error, "the answer is not HTTP/1.x");
		return;
	}
}

enum oa_send_result oa_transport_send(struct oa_transport *t, const uint8_t *body, size_t len,
				      uint64_t deadline_ns, uint64_t *rejected)
{
	*rejected = 0;
	if (len > MAX_BODY_BYTES) {
		oa_debug("not sending a %zu-byte request: over 64 MiB", len);
		return OA_SEND_TOO_LARGE;
	}
	const uint8_t *payload = body;
	size_t payload_len = len;
#if OA_FEATURE_GZIP
	if (t->gzip) {
		if (!gzip_body(t, body, len, &payload_len)) {
			warn_once(WARN_GZIP, "cannot compress a %zu-byte request; dropped", len);
			return OA_SEND_GAVE_UP;
		}
		payload = t->gzip_buf;
	}
#endif
	/* The application's OpenSSL ran its atexit cleanup before our final
	 * flush (it was initialised, with that handler, before we loaded
	 * libcurl): a TLS request now would use freed state and crash. */
	if (t->tls && openssl_shut_down()) {
		warn_once(WARN_TLS_SHUT_DOWN,
			  "not sending to %s: the application's OpenSSL is shut down (the process "
			  "is exiting); dropped",
			  t->endpoint_for_logs);
		return OA_SEND_GAVE_UP;
	}
	if (!t->plain && !prepare_curl(t, payload, payload_len))
		return OA_SEND_GAVE_UP;

	char last_error[LOGGED_MESSAGE_MAX] = "deadline reached before the first attempt";
	uint64_t backoff_ns = BACKOFF_FIRST_NS;
	for (unsigned attempt = 1;; attempt++) {
		uint64_t now = monotonic_ns();
		uint64_t left_ms = now < deadline_ns ? (deadline_ns - now) / NS_PER_MS : 0;
		if (left_ms == 0) /* 0 would mean "no timeout" to libcurl */
			break;
		uint64_t attempt_ms =
		    t->timeout_ms && t->timeout_ms < left_ms ? t->timeout_ms : left_ms;
		t->response_len = 0;
		struct attempt a = {.retry_after_s = -1};
		if (t->plain)
			plain_attempt(t, payload, payload_len, attempt_ms, &a);
		else
			curl_attempt(t, attempt_ms, &a);
		if (a.answered && a.status >= 200 && a.status < 300) {
			*rejected = handle_success(t);
			return OA_SEND_OK;
		}
		if (a.answered && !retryable_status(a.status)) {
			char excerpt[LOGGED_BODY_CHARS + 1];
			sanitize(excerpt, sizeof excerpt, t->response, t->response_len);
			warn_once(WARN_REFUSED, "%s refused the spans: HTTP %ld %s",
				  t->endpoint_for_logs, a.status, excerpt);
			return OA_SEND_REFUSED;
		}
		if (!a.answered) {
			snprintf(last_error, sizeof last_error, "%s", a.error);
			if (!a.retryable) {
				warn_once(WARN_FAILED, "cannot send spans to %s: %s",
					  t->endpoint_for_logs, last_error);
				return OA_SEND_REFUSED;
			}
			if (t->no_connect_retry && a.unreachable)
				break;
		} else {
			snprintf(last_error, sizeof last_error, "HTTP %ld", a.status);
		}
		oa_debug("attempt %u to %s failed: %s", attempt, t->endpoint_for_logs, last_error);

		uint64_t wait_ns = a.retry_after_s > 0 ? (uint64_t)a.retry_after_s * NS_PER_S
						       : next_random(t) % (backoff_ns + 1);
		backoff_ns = backoff_ns * 2 < BACKOFF_MAX_NS ? backoff_ns * 2 : BACKOFF_MAX_NS;
		uint64_t resume = monotonic_ns() + wait_ns;
		if (resume >= deadline_ns)
			break;
		sleep_until(t, resume);
	}
	warn_once(WARN_GAVE_UP, "gave up sending spans to %s before the deadline: %s",
		  t->endpoint_for_logs, last_error);
	return OA_SEND_GAVE_UP;
}
