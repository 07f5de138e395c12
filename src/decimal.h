/* Decimal digits written by hand: the hooks' spans format numbers without
 * printf, which costs more than the rest of an attribute, and the fork and
 * exec paths without its code pages (text.h). */
#ifndef OTLPAUTO_DECIMAL_H
#define OTLPAUTO_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Room for any uint32_t's and uint64_t's digits. */
#define OA_U32_DIGITS 10
#define OA_U64_DIGITS 20

/* v's decimal digits at out, which holds OA_U64_DIGITS (OA_U32_DIGITS for
 * a value that fits in 32 bits), no NUL; returns how many. */
static inline size_t oa_u64_decimal(uint64_t v, char *out)
{
	char digits[OA_U64_DIGITS];
	size_t n = 0;
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = digits[n - 1 - i];
	return n;
}

static inline size_t oa_u32_decimal(uint32_t v, char out[OA_U32_DIGITS])
{
	return oa_u64_decimal(v, out);
}

#endif
