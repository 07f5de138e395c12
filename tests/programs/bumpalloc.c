/* A program that replaces malloc and friends with a bump allocator (free
 * does nothing), as some programs do: the shim, libcurl and the loader then
 * allocate from it. Instrumented; spans with OTLPAUTO_FUNCTION_THRESHOLD=0:
 * main, run_alloc, 2 x alloc_thread, 6 x alloc_leaf. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define PLAIN	 __attribute__((no_instrument_function))

/* Untouched pages of the arena cost nothing. */
static char arena[256u << 20] __attribute__((aligned(64)));
static size_t arena_used;

/* Each block is preceded by 16 bytes holding its size. */
PLAIN static void *bump(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	if (size > sizeof arena || align > 4096)
		return NULL;
	size_t need = (size + 16 + align - 1 + 15) & ~(size_t)15;
	size_t start = __atomic_fetch_add(&arena_used, need, __ATOMIC_RELAXED);
	if (start + need > sizeof arena) {
		errno = ENOMEM;
		return NULL;
	}
	uintptr_t p = ((uintptr_t)(arena + start + 16) + align - 1) & ~(uintptr_t)(align - 1);
	((size_t *)p)[-1] = size;
	return (void *)p;
}

PLAIN void *malloc(size_t size)
{
	return bump(size, 16);
}
PLAIN void free(void *p)
{
	(void)p;
}

PLAIN void *calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return bump(n * size, 16); /* fresh arena memory is zero */
}

PLAIN void *realloc(void *old, size_t size)
{
	void *p = bump(size, 16);
	if (p && old) {
		size_t old_size = ((size_t *)old)[-1];
		memcpy(p, old, old_size < size ? old_size : size);
	}
	return p;
}

PLAIN void *memalign(size_t align, size_t size)
{
	return bump(size, align);
}
PLAIN void *aligned_alloc(size_t align, size_t size)
{
	return bump(size, align);
}
PLAIN void *valloc(size_t size)
{
	return bump(size, 4096);
}
PLAIN void *pvalloc(size_t size)
{
	return bump((size + 4095) & ~(size_t)4095, 4096);
}
PLAIN size_t malloc_usable_size(void *p)
{
	return p ? ((size_t *)p)[-1] : 0;
}

PLAIN int posix_memalign(void **out, size_t align, size_t size)
{
	void *p = bump(size, align);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static volatile unsigned long sink;

NOINLINE static void alloc_leaf(int i)
{
	char *p = malloc(100 + (size_t)i);
	snprintf(p, 100, "leaf %d", i);
	sink += (unsigned long)strlen(p);
	free(p);
}

NOINLINE static void *alloc_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		alloc_leaf(i);
	return NULL;
}

NOINLINE static int run_alloc(void)
{
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, alloc_thread, NULL) != 0)
			return 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return 0;
}

int main(void)
{
	int r = run_alloc();
	printf("allocated %zu bytes\n", arena_used);
	return r;
}
