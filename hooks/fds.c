/* The application cannot close or replace our descriptors (see fdguard.h).
 * close on one of ours pretends success and keeps the number ours, so no
 * later open reuses it under libcurl's feet; close_range/closefrom close
 * everything around ours; dup2/dup3 onto ours must succeed (the application
 * relies on the number), so the number is handed over and its owner told. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "family.h"
#include "fdguard.h"
#if OA_FEATURE_SOCKETS
#include "net.h"
#endif
#include "real.h"
#include "thread.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, close, (int fd), -1)
OA_REAL(int, close_range, (unsigned int first, unsigned int last, int flags), -1)
OA_REAL_VOID(closefrom, (int lowfd), syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0))
OA_REAL(int, dup2, (int oldfd, int newfd), -1)
OA_REAL(int, dup3, (int oldfd, int newfd, int flags), -1)

static bool guarded(int fd)
{
	return !oa_thread_is_internal() && oa_fd_is_protected(fd);
}

/* The first protected fd in [first, last], or -1. */
static int protected_in(unsigned int first, unsigned int last)
{
	if (first >= OA_FD_GUARD_LIMIT || oa_thread_is_internal())
		return -1;
	int fd = oa_fd_next_protected((int)first);
	return fd >= 0 && (unsigned int)fd <= last ? fd : -1;
}

/* Not while one of ours is being made at a low number (fdguard.h): the
 * program's second close of a number, or its dup2 onto one it believes
 * free, would take it. Our own threads' calls need no such wait. */
static bool replace_begin(void)
{
	if (oa_thread_is_internal())
		return false;
	oa_fd_replace_begin();
	return true;
}

static void replace_end(bool began)
{
	if (began)
		oa_fd_replace_end();
}

/* A vfork child's calls act on its own descriptor table: ours (in its
 * parent's memory) must not change, and our descriptors close on exec. */

static int close_unguarded(int fd)
{
	if (guarded(fd))
		return 0;
#if OA_FEATURE_SOCKETS
	if (oa_fd_kind(fd))
		return oa_tracked_close(fd, oa_real_close());
#endif
	return oa_real_close()(fd);
}

OA_EXPORT int close(int fd)
{
	if (oa_in_vfork_child())
		return oa_real_close()(fd);
	bool began = replace_begin();
	int r = close_unguarded(fd);
	replace_end(began);
	return r;
}

/* [first, last] holds no fd of ours; the range is below OA_FD_GUARD_LIMIT. */
static int close_gap(unsigned int first, unsigned int last, int flags)
{
	int saved = errno;
	if (oa_real_close_range()(first, last, flags) == 0)
		return 0;
	if (errno != ENOSYS || flags != 0)
		return -1;
	/* a kernel before 5.9: closefrom must work anyway */
	errno = saved;
	for (unsigned int fd = first; fd <= last; fd++)
		oa_real_close()((int)fd);
	return 0;
}

/* Closes [first, last] except our fds, gap by gap; *next receives the
 * first fd after our last one in the range. */
static int close_gaps(unsigned int first, unsigned int last, int flags, int ours,
		      unsigned int *next)
{
	int result = 0;
	*next = first;
	for (; ours >= 0; ours = protected_in(*next, last)) {
		if (*next < (unsigned int)ours &&
		    close_gap(*next, (unsigned int)ours - 1, flags) != 0)
			result = -1;
		*next = (unsigned int)ours + 1;
	}
	return result;
}

static int close_range_unguarded(unsigned int first, unsigned int last, int flags)
{
#if OA_FEATURE_SOCKETS
	if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		oa_fdtable_forget_range(first, last);
#endif
	int ours = first <= last ? protected_in(first, last) : -1;
	if (ours < 0)
		return oa_real_close_range()(first, last, flags);
	int saved = errno;
	/* the gaps are closed in the unshared table, as the kernel would */
	if ((flags & CLOSE_RANGE_UNSHARE) && unshare(CLONE_FILES) != 0)
		return -1;
	flags &= ~CLOSE_RANGE_UNSHARE;
	unsigned int next;
	int result = close_gaps(first, last, flags, ours, &next);
	if (next <= last && oa_real_close_range()(next, last, flags) != 0)
		result = -1;
	if (result == 0)
		errno = saved;
	return result;
}

OA_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	if (oa_in_vfork_child())
		return oa_real_close_range()(first, last, flags);
	bool began = replace_begin();
	int r = close_range_unguarded(first, last, flags);
	replace_end(began);
	return r;
}

static void closefrom_unguarded(int lowfd)
{
	unsigned int first = lowfd < 0 ? 0 : (unsigned int)lowfd;
#if OA_FEATURE_SOCKETS
	oa_fdtable_forget_range(first, UINT_MAX);
#endif
	int ours = protected_in(first, UINT_MAX);
	if (ours < 0) {
		oa_real_closefrom()(lowfd);
		return;
	}
	int saved = errno;
	unsigned int next;
	close_gaps(first, UINT_MAX, 0, ours, &next);
	oa_real_closefrom()((int)next);
	errno = saved;
}

OA_EXPORT void closefrom(int lowfd)
{
	if (oa_in_vfork_child()) {
		oa_real_closefrom()(lowfd);
		return;
	}
	bool began = replace_begin();
	closefrom_unguarded(lowfd);
	replace_end(began);
}

/* The application's new file takes the number: our owner learns it through
 * the hijacked mark and must forget the fd without closing it. */
static void hand_over(int oldfd, int newfd)
{
	if (oldfd == newfd || !guarded(newfd))
		return;
	/* a failing dup2 leaves newfd alone: keep it ours */
	int saved = errno;
	bool valid_source = fcntl(oldfd, F_GETFD) >= 0;
	errno = saved;
	if (!valid_source)
		return;
	oa_fd_mark_hijacked(newfd);
	oa_fd_unprotect(newfd);
}

OA_EXPORT int dup2(int oldfd, int newfd)
{
	if (oa_in_vfork_child())
		return oa_real_dup2()(oldfd, newfd);
	bool began = replace_begin();
	hand_over(oldfd, newfd);
	int r = oa_real_dup2()(oldfd, newfd);
	replace_end(began);
#if OA_FEATURE_SOCKETS
	if (r >= 0)
		oa_tracked_dup(oldfd, newfd);
#endif
	return r;
}

OA_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (oa_in_vfork_child())
		return oa_real_dup3()(oldfd, newfd, flags);
	bool began = replace_begin();
	if ((flags & ~O_CLOEXEC) == 0)
		hand_over(oldfd, newfd);
	int r = oa_real_dup3()(oldfd, newfd, flags);
	replace_end(began);
#if OA_FEATURE_SOCKETS
	if (r >= 0)
		oa_tracked_dup(oldfd, newfd);
#endif
	return r;
}

/* A shell's forked child redirects (dup2) and closes before its exec: the
 * real functions are found once in the parent, not in every child. */
static void resolve_for_children(void)
{
	oa_real_dup2();
	oa_real_close();
}

OA_FAMILY(fds) = {
    .name = "fds",
    .atfork_prepare = resolve_for_children,
};
