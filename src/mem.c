#include "mem.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Enough for a full ring's batch and its encoding; reserved, not committed. */
#define ARENA_BYTES (64u << 20)
#define ALIGN	    16u

/* Each block starts with its size, for realloc. */
struct block {
	size_t size;
	size_t pad; /* keeps the payload 16-byte aligned */
};

static struct {
	int on;
	char *base, *next, *end;
} arena;

bool oa_mem_signal_safe(void)
{
	return __atomic_load_n(&arena.on, __ATOMIC_ACQUIRE);
}

bool oa_mem_signal_safe_begin(void)
{
	if (oa_mem_signal_safe())
		return true;
	void *mem = (void *)syscall(SYS_mmap, NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	arena.base = arena.next = mem;
	arena.end = arena.base + ARENA_BYTES;
	__atomic_store_n(&arena.on, 1, __ATOMIC_RELEASE);
	return true;
}

static bool in_arena(const void *p)
{
	return (const char *)p >= arena.base && (const char *)p < arena.end;
}

static void *arena_alloc(size_t size)
{
	size_t need = sizeof(struct block) + ((size + ALIGN - 1) & ~(size_t)(ALIGN - 1));
	if (need < size || need > ARENA_BYTES)
		return NULL;
	/* Atomic: another thread may be exporting meanwhile (an exec's flush). */
	char *at = __atomic_fetch_add(&arena.next, need, __ATOMIC_RELAXED);
	if (at > arena.end || (size_t)(arena.end - at) < need)
		return NULL;
	struct block *b = (struct block *)at;
	b->size = size;
	return b + 1; /* fresh pages: already zero */
}

void *oa_malloc(size_t size)
{
	return oa_mem_signal_safe() ? arena_alloc(size) : malloc(size);
}

void *oa_calloc(size_t n, size_t size)
{
	if (!oa_mem_signal_safe())
		return calloc(n, size);
	if (size && n > SIZE_MAX / size)
		return NULL;
	return arena_alloc(n * size);
}

void *oa_realloc(void *p, size_t size)
{
	if (!oa_mem_signal_safe())
		return realloc(p, size);
	if (!p)
		return arena_alloc(size);
	/* A block from before: malloc_usable_size reads its header, no lock. */
	size_t old = in_arena(p) ? ((struct block *)p - 1)->size : malloc_usable_size(p);
	void *fresh = arena_alloc(size);
	if (fresh)
		memcpy(fresh, p, old < size ? old : size);
	return fresh;
}

void oa_free(void *p)
{
	if (!oa_mem_signal_safe())
		free(p);
}

char *oa_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = oa_malloc(n);
	if (copy)
		memcpy(copy, s, n);
	return copy;
}
