/* The core's access to the system. The core never calls a function the shim
 * interposes: that would run our own hook, which passes through only because
 * the calling thread is marked internal. System calls are made raw
 * (syscall(2)); the libc functions that are more than a system call are
 * resolved past our definitions (RTLD_NEXT) on first use, here, in one
 * table (sys.c). One that cannot be found fails with ENOSYS instead of
 * calling NULL. */
#ifndef OTLPAUTO_SYS_H
#define OTLPAUTO_SYS_H

#include <pthread.h>
#include <stdbool.h>

/* The next definition of name, cached in *slot; NULL when there is none
 * (remembered: dlsym is not asked again). */
void *oa_sys_resolve(void **slot, const char *name);

/* Defines oa_sys_<name>: calls the next definition of name, or returns
 * `missing` when there is none. */
#define OA_SYS_FUNCTION(ret, name, params, args, missing)                                          \
	ret oa_sys_##name params                                                                   \
	{                                                                                          \
		static void *slot;                                                                 \
		ret(*fn) params = (ret(*) params)oa_sys_resolve(&slot, #name);                     \
		if (__builtin_expect(fn == NULL, 0))                                               \
			return missing;                                                            \
		return fn args;                                                                    \
	}

/* pthread_create without our hook (which would make the thread one of the
 * program's); ENOSYS when libc has none. */
int oa_sys_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
			  void *arg);

/* For big zero-initialised arrays: in .lbss, which GNU ld places after
 * .bss, so the small state variables pack into a few pages of their own. A
 * forked child writes many of those variables (its reset, its exit): spread
 * between the arrays they were a page fault each. x86-64 only, where GCC
 * emits .lbss as NOBITS (elsewhere it would be file content). */
#if defined(__x86_64__)
#define OA_LARGE_BSS __attribute__((section(".lbss")))
#else
#define OA_LARGE_BSS
#endif

struct addrinfo;
/* getaddrinfo past our DNS hook (which would make a span of our lookup);
 * EAI_SYSTEM with errno ENOSYS when libc has none. */
int oa_sys_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(OA_ASAN)
#define OA_ASAN 1
#endif

/* A thread the core starts bypasses ASan's pthread_create interceptor as
 * well, so ASan never clears the shadow of its stack: glibc reuses the stack
 * of a thread that ended (in a forked child, the parent's exporter's), and
 * the old frames' redzones made writes into the new frames there false
 * "stack-buffer-overflow" reports. Such a thread calls this first, holding
 * the lock a fork waits for (it may allocate). Nothing without ASan. */
#ifdef OA_ASAN
void oa_sys_clean_thread_stack(void);
#else
static inline void oa_sys_clean_thread_stack(void)
{
}
#endif

/* How long a fork waits for a core thread (the exporter, the relay host) to
 * finish a round of work inside libraries: the work takes far less; the
 * bound is for a preempted thread. Under ASan far longer: its allocator
 * (GCC 12's) takes no lock around a fork, so a child forked while one of
 * our threads allocated inherited the lock held and hung at its first
 * allocation (seen in CI). */
#ifdef OA_ASAN
#define OA_FORK_WAIT_NS (10 * 1000000000L)
#else
#define OA_FORK_WAIT_NS (50 * 1000000L)
#endif

/* Takes a core thread's work lock for a fork, waiting at most
 * OA_FORK_WAIT_NS: first yielding (the holder runs for microseconds, often on
 * the other CPU, and a sleep's timer slack would cost more than its work),
 * then in short sleeps (a preempted holder). False when not taken. Tries,
 * not pthread_mutex_clocklock: ThreadSanitizer (GCC 12) does not see that
 * one take the lock, and reports its unlock. */
bool oa_sys_fork_lock(pthread_mutex_t *lock);

#endif
