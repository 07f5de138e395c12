/* Hexadecimal digits: the shim's parsers and the otlpauto command share
 * these. */
#ifndef OTLPAUTO_HEX_H
#define OTLPAUTO_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One hexadecimal digit, either case: its value, or -1. */
static inline int oa_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The n bytes written as the 2n hex digits at in (lowercase only when
 * lowercase_only, as W3C Trace Context requires); false at any other byte. */
static inline bool oa_hex_decode(const char *in, size_t n, uint8_t *out, bool lowercase_only)
{
	for (size_t i = 0; i < n; i++) {
		char h = in[2 * i], l = in[2 * i + 1];
		if (lowercase_only && ((h >= 'A' && h <= 'F') || (l >= 'A' && l <= 'F')))
			return false;
		int high = oa_hex_digit(h), low = oa_hex_digit(l);
		if (high < 0 || low < 0)
			return false;
		out[i] = (uint8_t)(high << 4 | low);
	}
	return true;
}

#endif
