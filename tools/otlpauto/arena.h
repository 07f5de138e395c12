/* A bump allocator: many small allocations, freed all at once. It counts the
 * bytes it holds so that a caller can refuse input that would need too much. */
#ifndef OTLPAUTO_CLI_ARENA_H
#define OTLPAUTO_CLI_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *blocks;
	size_t bytes; /* held from malloc, blocks included */
	size_t limit; /* 0: no limit */
};

/* Aligned for any type; NULL when out of memory or over the limit. */
void *arena_alloc(struct arena *a, size_t size);
/* A NUL-terminated copy of n bytes. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_free(struct arena *a);

#endif
