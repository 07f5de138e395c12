/* DNS hooks: getaddrinfo, gethostbyname[2][_r] and getnameinfo give an
 * INTERNAL span "DNS lookup {name}" with dns.question.name, dns.answers (the
 * distinct addresses, an array of strings) and error.type on failure. Numeric hosts are not
 * lookups: no span. The answers are remembered in a small lock-free cache so
 * that a later connect to one of them can name its server.address
 * (src/dns_names.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "clock.h"
#include "dns_names.h"
#include "net.h"
#include "real.h"
#include "sys.h"

OA_REAL(int, getaddrinfo,
	(const char *a0, const char *a1, const struct addrinfo *a2, struct addrinfo **a3),
	EAI_SYSTEM)
OA_REAL(int, getnameinfo,
	(const struct sockaddr *a0, socklen_t a1, char *a2, socklen_t a3, char *a4, socklen_t a5,
	 int a6),
	EAI_SYSTEM)
OA_REAL(struct hostent *, gethostbyname, (const char *a0), NULL)
OA_REAL(struct hostent *, gethostbyname2, (const char *a0, int a1), NULL)
OA_REAL(int, gethostbyname_r,
	(const char *a0, struct hostent *a1, char *a2, size_t a3, struct hostent **a4, int *a5),
	ENOSYS)
OA_REAL(int, gethostbyname2_r,
	(const char *a0, int a1, struct hostent *a2, char *a3, size_t a4, struct hostent **a5,
	 int *a6),
	ENOSYS)

/* ---- spans */

#define DNS_PAYLOAD  1024
#define ANSWERS_MAX  256
#define NAME_MAX_LEN 255

/* Distinct answers, raw (the payload's address list: a family byte, then
 * 4 or 16 bytes): the exporter formats them, not the lookup's thread. */
struct answers {
	size_t len;
	uint8_t bytes[ANSWERS_MAX];
};

static void add_answer(struct answers *a, int family, const void *addr)
{
	size_t n = family == AF_INET ? 4 : 16;
	/* getaddrinfo lists an address once per socket type */
	for (size_t at = 0; at < a->len; at += 1 + (a->bytes[at] == AF_INET ? 4 : 16))
		if (a->bytes[at] == family && memcmp(a->bytes + at + 1, addr, n) == 0)
			return;
	if (a->len + 1 + n > sizeof a->bytes)
		return;
	a->bytes[a->len] = (uint8_t)family;
	memcpy(a->bytes + a->len + 1, addr, n);
	a->len += 1 + n;
}

/* The question: a name, or for a reverse lookup an address (raw: the
 * exporter formats it). */
struct lookup {
	struct oa_thread *t;
	struct oa_span_ctx parent, ctx;
	uint64_t start;
	int saved_errno;
	const char *name;
	const struct sockaddr *addr;
	socklen_t addr_len;
};

/* Enters the hook for a lookup of name (or addr); false: pass through. */
static bool lookup_begin(struct lookup *l, const char *name, const struct sockaddr *addr,
			 socklen_t addr_len)
{
	if ((!addr && (!name || !name[0])) || !oa_hook_enter())
		return false;
	l->t = oa_family_on(OA_HOOK_DNS) ? oa_thread_get() : NULL;
	if (!l->t) {
		oa_hook_leave();
		return false;
	}
	l->name = name;
	l->addr = addr;
	/* the address and port, not the caller's whole buffer */
	socklen_t family_len = addr && addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
								  : sizeof(struct sockaddr_in6);
	l->addr_len = addr_len < family_len ? addr_len : family_len;
	l->saved_errno = errno;
	oa_current_parent(l->t, &l->parent);
	oa_span_ctx_start(l->t, &l->parent, &l->ctx);
	l->start = oa_now();
	return true;
}

static void put_question(struct oa_payload *w, const struct lookup *l)
{
	static const char prefix[] = "DNS lookup ";
	if (l->addr) {
		oa_payload_name_peer(w, prefix, sizeof prefix - 1, AF_UNSPEC, l->addr, l->addr_len);
		oa_payload_attr_sockaddr(w, OA_KEY_DNS_QUESTION_NAME, l->addr, l->addr_len);
		return;
	}
	size_t name_len = strnlen(l->name, NAME_MAX_LEN);
	char span_name[sizeof prefix - 1 + NAME_MAX_LEN];
	memcpy(span_name, prefix, sizeof prefix - 1);
	memcpy(span_name + sizeof prefix - 1, l->name, name_len);
	oa_payload_text(w, OA_ITEM_NAME, span_name, sizeof prefix - 1 + name_len);
	oa_payload_attr_str(w, OA_KEY_DNS_QUESTION_NAME, l->name, name_len);
}

/* Writes the span: the answers are addresses (a) or a reverse lookup's
 * name; error_type NULL on success. Leaves the hook. */
static void lookup_end(struct lookup *l, const struct answers *a, const char *answer_name,
		       const char *error_type)
{
	uint64_t end = oa_now();
	int err = errno;
	struct oa_payload w;
	if (oa_net_span_begin(l->t, &w, &l->parent, &l->ctx, OA_KIND_INTERNAL, OA_SCOPE_DNS,
			      l->start, DNS_PAYLOAD)) {
		put_question(&w, l);
		if (a && a->len)
			oa_payload_attr_addr_list(&w, OA_KEY_DNS_ANSWERS, a->bytes, a->len);
		if (answer_name) {
			/* a list of one string, ended by its NUL */
			char list[ANSWERS_MAX];
			size_t n = strnlen(answer_name, sizeof list - 1);
			memcpy(list, answer_name, n);
			list[n] = '\0';
			oa_payload_attr_str_list(&w, OA_KEY_DNS_ANSWERS, list, n + 1);
		}
		if (error_type)
			oa_payload_attr_static(&w, OA_KEY_ERROR_TYPE, error_type);
		oa_net_span_end(l->t, &w, end, error_type != NULL);
	}
	oa_hook_leave();
	errno = err;
}

static const char *eai_name(int code)
{
	switch (code) {
	case EAI_BADFLAGS:
		return "EAI_BADFLAGS";
	case EAI_NONAME:
		return "EAI_NONAME";
	case EAI_AGAIN:
		return "EAI_AGAIN";
	case EAI_FAIL:
		return "EAI_FAIL";
	case EAI_FAMILY:
		return "EAI_FAMILY";
	case EAI_SOCKTYPE:
		return "EAI_SOCKTYPE";
	case EAI_SERVICE:
		return "EAI_SERVICE";
	case EAI_MEMORY:
		return "EAI_MEMORY";
	case EAI_SYSTEM:
		return "EAI_SYSTEM";
	case EAI_OVERFLOW:
		return "EAI_OVERFLOW";
#ifdef EAI_NODATA
	case EAI_NODATA:
		return "EAI_NODATA";
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
		return "EAI_ADDRFAMILY";
#endif
	default:
		return "_OTHER";
	}
}

static const char *h_errno_name(int code)
{
	switch (code) {
	case HOST_NOT_FOUND:
		return "HOST_NOT_FOUND";
	case TRY_AGAIN:
		return "TRY_AGAIN";
	case NO_RECOVERY:
		return "NO_RECOVERY";
	case NO_DATA:
		return "NO_DATA";
	default:
		return "_OTHER";
	}
}

static bool is_numeric_host(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* ---- hooks */

OA_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
			  struct addrinfo **res)
{
	struct lookup l;
	bool numeric =
	    node && ((hints && (hints->ai_flags & AI_NUMERICHOST)) || is_numeric_host(node));
	if (numeric || !lookup_begin(&l, node, NULL, 0))
		return oa_real_getaddrinfo()(node, service, hints, res);
	errno = l.saved_errno;
	int r = oa_real_getaddrinfo()(node, service, hints, res);
	struct answers a = {0};
	for (const struct addrinfo *ai = r == 0 ? *res : NULL; ai; ai = ai->ai_next) {
		if (!ai->ai_addr)
			continue;
		const uint8_t *bytes;
		if (!oa_dns_addr_bytes(ai->ai_addr, &bytes))
			continue;
		add_answer(&a, ai->ai_addr->sa_family, bytes);
		oa_dns_remember(ai->ai_addr, node);
	}
	lookup_end(&l, &a, NULL, r ? eai_name(r) : NULL);
	return r;
}

/* Answers of a hostent, remembered as names of `name`. */
static void hostent_answers(const struct hostent *h, const char *name, struct answers *a)
{
	if (!h || (h->h_addrtype != AF_INET && h->h_addrtype != AF_INET6))
		return;
	for (char **p = h->h_addr_list; p && *p; p++) {
		add_answer(a, h->h_addrtype, *p);
		union oa_sockaddr sa = {0};
		sa.sa.sa_family = (sa_family_t)h->h_addrtype;
		if (h->h_addrtype == AF_INET)
			memcpy(&sa.in.sin_addr, *p, 4);
		else
			memcpy(&sa.in6.sin6_addr, *p, 16);
		oa_dns_remember(&sa.sa, name);
	}
}

/* gethostbyname and gethostbyname2: one hook, but for the family. */
#define HOSTENT_HOOK(fn, params, args)                                                             \
	OA_EXPORT struct hostent *fn params                                                        \
	{                                                                                          \
		struct lookup l;                                                                   \
		if (!name || is_numeric_host(name) || !lookup_begin(&l, name, NULL, 0))            \
			return oa_real_##fn() args;                                                \
		errno = l.saved_errno;                                                             \
		struct hostent *h = oa_real_##fn() args;                                           \
		struct answers a = {0};                                                            \
		hostent_answers(h, name, &a);                                                      \
		lookup_end(&l, &a, NULL, h ? NULL : h_errno_name(h_errno));                        \
		return h;                                                                          \
	}
HOSTENT_HOOK(gethostbyname, (const char *name), (name))
HOSTENT_HOOK(gethostbyname2, (const char *name, int af), (name, af))

/* The _r variants: ERANGE asks the caller to retry with a larger buffer,
 * which is no outcome yet: no span for it. */
static void hostent_r_end(struct lookup *l, int r, struct hostent **result, const int *h_errnop)
{
	if (r == ERANGE) {
		oa_hook_leave();
		return;
	}
	struct answers a = {0};
	bool found = r == 0 && result && *result;
	if (found)
		hostent_answers(*result, l->name, &a);
	lookup_end(l, &a, NULL, found ? NULL : h_errno_name(h_errnop ? *h_errnop : 0));
}

/* gethostbyname_r and gethostbyname2_r, the same way. */
#define HOSTENT_R_HOOK(fn, params, args)                                                           \
	OA_EXPORT int fn params                                                                    \
	{                                                                                          \
		struct lookup l;                                                                   \
		if (!name || is_numeric_host(name) || !lookup_begin(&l, name, NULL, 0))            \
			return oa_real_##fn() args;                                                \
		errno = l.saved_errno;                                                             \
		int r = oa_real_##fn() args;                                                       \
		hostent_r_end(&l, r, result, h_errnop);                                            \
		return r;                                                                          \
	}
HOSTENT_R_HOOK(gethostbyname_r,
	       (const char *name, struct hostent *ret, char *buf, size_t buflen,
		struct hostent **result, int *h_errnop),
	       (name, ret, buf, buflen, result, h_errnop))
HOSTENT_R_HOOK(gethostbyname2_r,
	       (const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
		struct hostent **result, int *h_errnop),
	       (name, af, ret, buf, buflen, result, h_errnop))

/* A reverse lookup: the question is the address, the answer the name. */
OA_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
			  char *serv, socklen_t servlen, int flags)
{
	struct lookup l;
	if (!sa || !host || !hostlen || (flags & NI_NUMERICHOST) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    !lookup_begin(&l, NULL, sa, salen))
		return oa_real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
	errno = l.saved_errno;
	int r = oa_real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
	bool found = r == 0;
	if (found && !is_numeric_host(host))
		oa_dns_remember(sa, host);
	lookup_end(&l, NULL, found ? host : NULL, r ? eai_name(r) : NULL);
	return r;
}
