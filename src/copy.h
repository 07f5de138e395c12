/* Copies of the short strings span attributes are made of (keys, methods,
 * paths, addresses): inline, as two overlapping loads and stores, not
 * through a call of memcpy, whose call and size dispatch cost more than the
 * copy at these sizes. */
#ifndef OTLPAUTO_COPY_H
#define OTLPAUTO_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* memcpy(dst, src, len) for regions that do not overlap; len 0 reads
 * nothing (src may then be NULL). */
static inline void oa_copy(void *dst, const void *src, size_t len)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	if (len > 32) {
		memcpy(d, s, len);
	} else if (len >= 16) {
		uint64_t a[2], b[2];
		memcpy(a, s, 16);
		memcpy(b, s + len - 16, 16);
		memcpy(d, a, 16);
		memcpy(d + len - 16, b, 16);
	} else if (len >= 8) {
		uint64_t a, b;
		memcpy(&a, s, 8);
		memcpy(&b, s + len - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + len - 8, &b, 8);
	} else if (len >= 4) {
		uint32_t a, b;
		memcpy(&a, s, 4);
		memcpy(&b, s + len - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + len - 4, &b, 4);
	} else {
		for (size_t i = 0; i < len; i++)
			d[i] = s[i];
	}
}

#endif
