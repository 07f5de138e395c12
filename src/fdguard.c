#include "fdguard.h"
#include "clock.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WORD_BITS 64
#define WORDS	  (OA_FD_GUARD_LIMIT / WORD_BITS)

/* Static and zero: untouched pages of the bitmaps cost no memory. The two
 * bits of an fd share a cache line and a page: a forked child that lets
 * its parent's descriptors go writes one page, not two. */
static struct {
	uint64_t protected_bits, hijacked_bits;
} fd_bits[WORDS] OA_LARGE_BSS;
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
	__atomic_fetch_and(&fd_bits[fd / WORD_BITS].hijacked_bits, ~bit(fd), __ATOMIC_RELAXED);
	__atomic_fetch_or(&fd_bits[fd / WORD_BITS].protected_bits, bit(fd), __ATOMIC_RELEASE);
}

void oa_fd_unprotect(int fd)
{
	if (in_range(fd))
		__atomic_fetch_and(&fd_bits[fd / WORD_BITS].protected_bits, ~bit(fd),
				   __ATOMIC_RELEASE);
}

bool oa_fd_is_protected(int fd)
{
	return in_range(fd) &&
	       (__atomic_load_n(&fd_bits[fd / WORD_BITS].protected_bits, __ATOMIC_ACQUIRE) &
		bit(fd));
}

int oa_fd_next_protected(int from)
{
	if (from < 0)
		from = 0;
	int end = __atomic_load_n(&protected_end, __ATOMIC_ACQUIRE);
	for (int word = from / WORD_BITS; word * WORD_BITS < end; word++) {
		uint64_t bits = __atomic_load_n(&fd_bits[word].protected_bits, __ATOMIC_ACQUIRE);
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
		__atomic_fetch_or(&fd_bits[fd / WORD_BITS].hijacked_bits, bit(fd),
				  __ATOMIC_RELEASE);
}

bool oa_fd_take_hijacked(int fd)
{
	return in_range(fd) && (__atomic_fetch_and(&fd_bits[fd / WORD_BITS].hijacked_bits, ~bit(fd),
						   __ATOMIC_ACQ_REL) &
				bit(fd));
}

/* Our threads between making a descriptor and protecting it, and program
 * threads inside a close or dup2 of an unprotected number: each side
 * announces itself, then looks at the other (sequentially consistent, so
 * that at least one of two racing sides sees the other). The program side
 * gives way: it steps back and waits while ours are made (microseconds),
 * so our side finds it gone at once. */
static int making, replacing;
/* This thread is making one: a signal handler's close on it must not wait
 * for the code it interrupted. */
static __thread bool making_here __attribute__((tls_model("initial-exec")));

/* How long our side waits for a program's close (one can block: a lingering
 * socket), and the program's side for ours (only a thread preempted in its
 * window takes more than microseconds). */
#define MAKE_WAIT_NS	2000000u
#define REPLACE_WAIT_NS 1000000000u

static bool waited(uint64_t *since, uint64_t limit_ns)
{
	uint64_t now = oa_mono_ns();
	if (!*since)
		*since = now;
	return now - *since >= limit_ns;
}

void oa_fd_make_begin(void)
{
	making_here = true;
	__atomic_fetch_add(&making, 1, __ATOMIC_SEQ_CST);
	for (uint64_t since = 0;
	     __atomic_load_n(&replacing, __ATOMIC_SEQ_CST) && !waited(&since, MAKE_WAIT_NS);)
		sched_yield();
}

void oa_fd_make_end(void)
{
	__atomic_fetch_sub(&making, 1, __ATOMIC_RELEASE);
	making_here = false;
}

void oa_fd_replace_begin(void)
{
	uint64_t since = 0;
	for (;;) {
		__atomic_fetch_add(&replacing, 1, __ATOMIC_SEQ_CST);
		if (making_here || !__atomic_load_n(&making, __ATOMIC_SEQ_CST))
			return;
		__atomic_fetch_sub(&replacing, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&making, __ATOMIC_ACQUIRE)) {
			if (waited(&since, REPLACE_WAIT_NS)) {
				__atomic_fetch_add(&replacing, 1, __ATOMIC_SEQ_CST);
				return;
			}
			sched_yield();
		}
	}
}

void oa_fd_replace_end(void)
{
	__atomic_fetch_sub(&replacing, 1, __ATOMIC_RELEASE);
}

void oa_fd_atfork_child(void)
{
	making = replacing = 0;
	making_here = false;
}

/* Numbers left free below the top for the program (and above ours). */
#define HIGH_FD_MARGIN 64
/* Our numbers stay below this even when RLIMIT_NOFILE is far higher: a fork
 * copies the descriptor table up to its highest open number (at 2^20, 8 MiB
 * per process), and growing a table shared by threads waits for an RCU
 * grace period (milliseconds on the exporter thread). */
#define HIGH_FD_TOP 1024

int oa_fd_high_floor(void)
{
	struct rlimit limit;
	rlim_t top = HIGH_FD_TOP;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < top)
		top = limit.rlim_cur;
	return top > HIGH_FD_MARGIN + 3 ? (int)(top - HIGH_FD_MARGIN) : 3;
}

void oa_fd_reserve_table(void)
{
	int saved = errno;
	int top = oa_fd_high_floor() + HIGH_FD_MARGIN - 1;
	for (int fd = 0; fd < 3; fd++) {
		int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, top);
		if (high >= 0) {
			syscall(SYS_close, high);
			break;
		}
	}
	errno = saved;
}

int oa_fd_own(int fd)
{
	if (fd < 0)
		return -1;
	int floor = oa_fd_high_floor();
	/* Protected while it moves, so that a dup2 onto it is seen. */
	oa_fd_protect(fd);
	if (fd >= floor)
		return fd;
	int saved = errno;
	int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor);
	errno = saved;
	if (high < 0)
		return fd; /* nothing free up there: it stays where it is */
	if (oa_fd_take_hijacked(fd)) {
		/* The program's file may be what was duplicated. */
		syscall(SYS_close, high);
		errno = EBUSY;
		return -1;
	}
	oa_fd_unprotect(fd);
	syscall(SYS_close, fd);
	oa_fd_protect(high);
	return high;
}

int oa_fd_open(const char *path, int flags, mode_t mode)
{
	oa_fd_make_begin();
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode);
	fd = fd < 0 ? -1 : oa_fd_own(fd);
	oa_fd_make_end();
	return fd;
}

int oa_fd_release(int fd)
{
	if (oa_fd_take_hijacked(fd))
		return 0;
	oa_fd_unprotect(fd); /* before close: a reused number must not look ours */
	return (int)syscall(SYS_close, fd);
}

ssize_t oa_fd_read_file(const char *path, char *buf, size_t size)
{
	int fd = oa_fd_open(path, O_RDONLY, 0);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < size) {
		/* pread: were the number the program's by now, its offset stays. */
		ssize_t n = (ssize_t)syscall(SYS_pread64, fd, buf + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	oa_fd_release(fd);
	return (ssize_t)got;
}
