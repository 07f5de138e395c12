/* mem: the C library's memory until a signal handler's export begins, then
 * a mapped arena that never calls malloc or free (which the signal may have
 * interrupted). */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mem.h"

/* The arena never calls malloc: an allocation there cannot move it. */
static bool heap_moved(const struct mallinfo2 *before)
{
	struct mallinfo2 now = mallinfo2();
	return now.uordblks != before->uordblks;
}

int main(void)
{
	CHECK(!oa_mem_signal_safe());
	char *early = oa_malloc(100);
	CHECK(early != NULL);
	memset(early, 'e', 100);
	CHECK_EQ_INT((int)(malloc_usable_size(early) >= 100), 1); /* the C library's */
	char *copy = oa_strdup("libc");
	CHECK(copy && strcmp(copy, "libc") == 0);
	oa_free(copy);

	CHECK(oa_mem_signal_safe_begin());
	CHECK(oa_mem_signal_safe());
	CHECK(oa_mem_signal_safe_begin()); /* once for good */
	struct mallinfo2 before = mallinfo2();

	unsigned char *zeroed = oa_calloc(1000, 3);
	CHECK(zeroed != NULL && ((uintptr_t)zeroed & 15) == 0);
	bool all_zero = true;
	for (int i = 0; i < 3000; i++)
		all_zero = all_zero && zeroed[i] == 0;
	CHECK(all_zero);

	/* A block of the C library's grows into the arena, its bytes kept. */
	char *grown = oa_realloc(early, 4096);
	CHECK(grown != NULL && grown != early);
	CHECK(memcmp(grown, early, 100) == 0);
	/* An arena block grows and shrinks, its bytes kept. */
	memset(grown + 100, 'g', 4096 - 100);
	char *again = oa_realloc(grown, 1 << 20);
	CHECK(again && again[0] == 'e' && again[4095] == 'g' && again[(1 << 20) - 1] == 0);
	char *less = oa_realloc(again, 10);
	CHECK(less && memcmp(less, "eeeeeeeeee", 10) == 0);
	oa_free(less); /* never given back: the process is about to die */
	oa_free(early);

	char *dup = oa_strdup("arena");
	CHECK(dup && strcmp(dup, "arena") == 0);
	volatile size_t huge = SIZE_MAX / 2; /* not folded into a call the compiler rejects */
	CHECK(oa_malloc(huge * 2 - 8) == NULL);
	CHECK(oa_calloc(huge, 4) == NULL);
	CHECK(oa_malloc(1u << 30) == NULL); /* beyond the arena */
	CHECK(!heap_moved(&before));
	free(early); /* the C library's: oa_free left it, LeakSanitizer would not */
	CHECK_DONE();
}
