/* Socket addresses as text (addr_text.h). */
#include "addr_text.h"

#include <arpa/inet.h>
#include <stdio.h>

uint16_t oa_sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

bool oa_sockaddr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
	if (sa->sa_family == AF_INET)
		return oa_ipv4_text(&((const struct sockaddr_in *)sa)->sin_addr, out, cap);
	if (sa->sa_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
				 (socklen_t)cap) != NULL;
	if (sa->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) || !cap)
		return false;
	const char *path = ((const struct sockaddr_un *)sa)->sun_path;
	size_t n = len - offsetof(struct sockaddr_un, sun_path);
	if (n > sizeof(((struct sockaddr_un *)0)->sun_path))
		n = sizeof(((struct sockaddr_un *)0)->sun_path);
	/* an abstract name starts with a NUL: shown as '@' */
	bool abstract = path[0] == '\0';
	size_t at = 0;
	if (abstract && n > 1 && at + 1 < cap)
		out[at++] = '@';
	for (size_t i = abstract ? 1 : 0; i < n && at + 1 < cap; i++) {
		if (!path[i] && !abstract)
			break;
		out[at++] = path[i] ? path[i] : '@';
	}
	out[at] = '\0';
	return at > 0;
}

size_t oa_sockaddr_peer_text(int family, const struct sockaddr *sa, socklen_t len, char *out,
			     size_t cap)
{
	char addr[OA_SOCKADDR_TEXT_MAX] = "";
	oa_sockaddr_text(sa, len, addr, sizeof addr);
	uint16_t port = oa_sockaddr_port(sa);
	int n;
	if (family == AF_INET6)
		n = snprintf(out, cap, "[%s]:%u", addr, port);
	else if (family != AF_UNIX && family != AF_UNSPEC)
		n = snprintf(out, cap, "%s:%u", addr, port);
	else
		n = snprintf(out, cap, "%s", addr);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
