/* Socket addresses as text, for the socket hooks and the exporter. */
#ifndef OTLPAUTO_ADDR_TEXT_H
#define OTLPAUTO_ADDR_TEXT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Room for any address's text: a Unix path with its '@' and NUL. */
#define OA_SOCKADDR_TEXT_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) + 2)

/* The port of an AF_INET/AF_INET6 address, else 0. */
uint16_t oa_sockaddr_port(const struct sockaddr *sa);
/* The address as text ("::1", "10.0.0.1", a unix path, an abstract one as
 * "@name"); false for others. */
bool oa_sockaddr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t cap);
/* The peer as a connect span names it: "[::1]:80", "10.0.0.1:80" or a unix
 * path, in the form of the socket's family (which its address should have;
 * AF_UNSPEC: the address alone, "::1"). Returns its length (cut to
 * cap - 1). */
size_t oa_sockaddr_peer_text(int family, const struct sockaddr *sa, socklen_t len, char *out,
			     size_t cap);

/* A dotted quad, as inet_ntop writes it without its sprintf: that call cost
 * more than the rest of an HTTP span's attributes. False when cap (NUL
 * included) is too small. */
static inline bool oa_ipv4_text(const struct in_addr *in, char *out, size_t cap)
{
	const uint8_t *a = (const uint8_t *)&in->s_addr;
	char text[INET_ADDRSTRLEN], *p = text;
	for (int i = 0; i < 4; i++) {
		if (a[i] >= 100)
			*p++ = (char)('0' + a[i] / 100);
		if (a[i] >= 10)
			*p++ = (char)('0' + a[i] / 10 % 10);
		*p++ = (char)('0' + a[i] % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
	if ((size_t)(p - text) > cap)
		return false;
	memcpy(out, text, (size_t)(p - text));
	return true;
}

/* One raw address of a list (OA_VAL_ADDR_LIST: a family byte, then 4 or 16
 * bytes) as text; false when cap is too small. */
static inline bool oa_addr_bytes_text(int family, const uint8_t *bytes, char *out, size_t cap)
{
	if (family == AF_INET) {
		struct in_addr in;
		memcpy(&in, bytes, sizeof in);
		return oa_ipv4_text(&in, out, cap);
	}
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	memcpy(&in6.sin6_addr, bytes, sizeof in6.sin6_addr);
	return oa_sockaddr_text((const struct sockaddr *)&in6, sizeof in6, out, cap);
}

#endif
