/* Short strings built by hand into a fixed buffer, for the start, fork and
 * exec paths: printf's code is pages that a short-lived process (a command
 * of a traced script) would otherwise touch only for this, at a page fault
 * each (see clock.c). */
#ifndef OTLPAUTO_TEXT_H
#define OTLPAUTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "decimal.h"

struct oa_text {
	char *at;
	char *last; /* room for the terminating NUL */
	bool cut;   /* something did not fit */
};

/* size > 0; the buffer holds "" from here on. */
static inline struct oa_text oa_text_into(char *buf, size_t size)
{
	*buf = '\0';
	return (struct oa_text){buf, buf + size - 1, false};
}

static inline void oa_text_mem(struct oa_text *t, const char *s, size_t n)
{
	size_t room = (size_t)(t->last - t->at);
	if (n > room) {
		n = room;
		t->cut = true;
	}
	memcpy(t->at, s, n);
	t->at += n;
	*t->at = '\0';
}

static inline void oa_text_str(struct oa_text *t, const char *s)
{
	oa_text_mem(t, s, strlen(s));
}

static inline void oa_text_uint(struct oa_text *t, uint64_t v)
{
	char digits[OA_U64_DIGITS];
	oa_text_mem(t, digits, oa_u64_decimal(v, digits));
}

static inline void oa_text_int(struct oa_text *t, int64_t v)
{
	if (v < 0) {
		oa_text_mem(t, "-", 1);
		oa_text_uint(t, (uint64_t)0 - (uint64_t)v);
	} else {
		oa_text_uint(t, (uint64_t)v);
	}
}

/* v as 16 lowercase hexadecimal digits. */
static inline void oa_text_hex64(struct oa_text *t, uint64_t v)
{
	char digits[16];
	for (int i = 15; i >= 0; i--, v >>= 4)
		digits[i] = "0123456789abcdef"[v & 15];
	oa_text_mem(t, digits, sizeof digits);
}

/* v in lowercase hexadecimal without leading zeros, as "%" PRIx64. */
static inline void oa_text_hex(struct oa_text *t, uint64_t v)
{
	char digits[16];
	size_t n = 0;
	do
		digits[sizeof digits - ++n] = "0123456789abcdef"[v & 15];
	while (v >>= 4);
	oa_text_mem(t, digits + sizeof digits - n, n);
}

#endif
