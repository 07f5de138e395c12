/* A growable byte buffer for the exporter side (never used on the hot path). */
#ifndef OTLPAUTO_BUF_H
#define OTLPAUTO_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct oa_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Makes room for `more` bytes past len; false when memory is short. */
static inline bool oa_buf_reserve(struct oa_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return true;
	/* Small at first: a command of a traced script encodes a span or two,
	 * and each page it touches is a fault. */
	size_t cap = b->cap ? b->cap : 512;
	while (cap < b->len + more)
		cap *= 2;
	char *data = oa_realloc(b->data, cap);
	if (!data)
		return false;
	b->data = data;
	b->cap = cap;
	return true;
}

static inline bool oa_buf_append(struct oa_buf *b, const void *p, size_t n)
{
	if (!oa_buf_reserve(b, n))
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

static inline void oa_buf_free(struct oa_buf *b)
{
	oa_free(b->data);
	*b = (struct oa_buf){0};
}

#endif
