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

static struct arena_block *new_block(struct arena *a, size_t data_size)
{
	if (data_size > SIZE_MAX - sizeof(struct arena_block))
		return NULL;
	size_t total = sizeof(struct arena_block) + data_size;
	if (a->limit && (a->bytes > a->limit || total > a->limit - a->bytes))
		return NULL;
	struct arena_block *b = malloc(total);
	if (!b)
		return NULL;
	*b = (struct arena_block){.size = data_size};
	a->bytes += total;
	return b;
}

void *arena_alloc(struct arena *a, size_t size)
{
	if (size > SIZE_MAX - alignof(max_align_t))
		return NULL;
	size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	struct arena_block *b = a->blocks;
	if (size > BLOCK_SIZE / 4) {
		/* A big allocation gets a block of its own, behind the current one, whose
		 * free space stays in use. */
		b = new_block(a, size);
		if (!b)
			return NULL;
		b->used = size;
		if (a->blocks) {
			b->next = a->blocks->next;
			a->blocks->next = b;
		} else {
			a->blocks = b;
		}
		return b->data;
	}
	if (!b || b->size - b->used < size) {
		b = new_block(a, BLOCK_SIZE);
		if (!b)
			return NULL;
		b->next = a->blocks;
		a->blocks = b;
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
