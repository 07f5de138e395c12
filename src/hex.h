/* One hexadecimal digit, either case: its value, or -1. */
#ifndef OTLPAUTO_HEX_H
#define OTLPAUTO_HEX_H

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

#endif
