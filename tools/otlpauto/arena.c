#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE 65536

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	alignas(max_align_t) unsigned char data[];
};

void *arena_alloc(struct arena *a, size_t size)
{
	size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	struct arena_block *b = a->blocks;
	if (!b || b->size - b->used < size) {
		/* An allocation bigger than a block gets a block of its own. */
		size_t data_size = size > BLOCK_SIZE ? size : BLOCK_SIZE;
		if (data_size > SIZE_MAX - sizeof *b)
			return NULL;
		size_t total = sizeof *b + data_size;
		if (a->limit && (a->bytes > a->limit || total > a->limit - a->bytes))
			return NULL;
		b = malloc(total);
		if (!b)
			return NULL;
		*b = (struct arena_block){.next = a->blocks, .size = data_size};
		a->blocks = b;
		a->bytes += total;
	}
	void *p = b->data + b->used;
	b->used += size;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *copy = arena_alloc(a, n + 1);
	if (copy) {
		memcpy(copy, s, n);
		copy[n] = '\0';
	}
	return copy;
}

void arena_free(struct arena *a)
{
	for (struct arena_block *b = a->blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	a->blocks = NULL;
	a->bytes = 0;
}
