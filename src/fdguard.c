#include "fdguard.h"

#include <stdint.h>

#define WORD_BITS 64
#define WORDS	  (OA_FD_GUARD_LIMIT / WORD_BITS)

/* Static and zero: untouched pages of the bitmaps cost no memory. */
static uint64_t protected_bits[WORDS];
static uint64_t hijacked_bits[WORDS];
/* One past the highest fd ever protected: close_range(3, ~0U) scans no
 * further. */
static int protected_end;

static bool in_range(int fd)
{
	return fd >= 0 && fd < OA_FD_GUARD_LIMIT;
}

static uint64_t bit(int fd)
{
	return (uint64_t)1 << (fd % WORD_BITS);
}

void oa_fd_protect(int fd)
{
	if (!in_range(fd))
		return;
	int end = __atomic_load_n(&protected_end, __ATOMIC_RELAXED);
	while (end <= fd && !__atomic_compare_exchange_n(&protected_end, &end, fd + 1, true,
							 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	__atomic_fetch_and(&hijacked_bits[fd / WORD_BITS], ~bit(fd), __ATOMIC_RELAXED);
	__atomic_fetch_or(&protected_bits[fd / WORD_BITS], bit(fd), __ATOMIC_RELEASE);
}

void oa_fd_unprotect(int fd)
{
	if (in_range(fd))
		__atomic_fetch_and(&protected_bits[fd / WORD_BITS], ~bit(fd), __ATOMIC_RELEASE);
}

bool oa_fd_is_protected(int fd)
{
	return in_range(fd) &&
	       (__atomic_load_n(&protected_bits[fd / WORD_BITS], __ATOMIC_ACQUIRE) & bit(fd));
}

int oa_fd_next_protected(int from)
{
	if (from < 0)
		from = 0;
	int end = __atomic_load_n(&protected_end, __ATOMIC_ACQUIRE);
	for (int word = from / WORD_BITS; word * WORD_BITS < end; word++) {
		uint64_t bits = __atomic_load_n(&protected_bits[word], __ATOMIC_ACQUIRE);
		if (word == from / WORD_BITS)
			bits &= ~(uint64_t)0 << (from % WORD_BITS);
		if (bits)
			return word * WORD_BITS + __builtin_ctzll(bits);
	}
	return -1;
}

void oa_fd_mark_hijacked(int fd)
{
	if (in_range(fd))
		__atomic_fetch_or(&hijacked_bits[fd / WORD_BITS], bit(fd), __ATOMIC_RELEASE);
}

bool oa_fd_take_hijacked(int fd)
{
	return in_range(fd) &&
	       (__atomic_fetch_and(&hijacked_bits[fd / WORD_BITS], ~bit(fd), __ATOMIC_ACQ_REL) &
		bit(fd));
}
