/* IPv4 addresses as text, for the socket hooks and the exporter. */
#ifndef OTLPAUTO_ADDR_TEXT_H
#define OTLPAUTO_ADDR_TEXT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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

#endif
