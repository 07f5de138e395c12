/* The names DNS lookups of this process answered, by address: the DNS hooks
 * remember them (hooks/dns.c), a connect span names its server.address from
 * them (conn.c). A small lock-free cache. */
#ifndef OTLPAUTO_DNS_NAMES_H
#define OTLPAUTO_DNS_NAMES_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define OA_DNS_NAME_MAX 96

/* The address bytes of an IPv4 or IPv6 address (what the cache keys on);
 * 0 for others. */
static inline size_t oa_dns_addr_bytes(const struct sockaddr *sa, const uint8_t **bytes)
{
	if (sa->sa_family == AF_INET) {
		*bytes = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		*bytes = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		return 16;
	}
	return 0;
}

/* A lookup of name answered with the address of sa (IPv4, IPv6; others are
 * not kept). */
void oa_dns_remember(const struct sockaddr *sa, const char *name);
/* The name a lookup in this process answered with this address; false when
 * none is remembered. */
bool oa_dns_name_of(const struct sockaddr *sa, char *out, size_t cap);

#endif
