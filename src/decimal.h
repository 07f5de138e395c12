/* Decimal digits written by hand: the hooks' spans format numbers without
 * printf, which costs more than the rest of an attribute. */
#ifndef OTLPAUTO_DECIMAL_H
#define OTLPAUTO_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Room for any uint32_t's digits. */
#define OA_U32_DIGITS 10

/* v's decimal digits at out (no NUL); returns how many. */
static inline size_t oa_u32_decimal(uint32_t v, char out[OA_U32_DIGITS])
{
	char digits[OA_U32_DIGITS];
	size_t n = 0;
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = digits[n - 1 - i];
	return n;
}

#endif
